package io.github.llmkernels.kvcache;

import io.github.llmkernels.internal.Check;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Shapes;
import io.github.llmkernels.tensor.Tensor;

/**
 * A KV cache of one layer under a fixed token budget, for streaming generation: capacity =
 * budget + slack slots per head; {@link #append} writes new tokens after the current ones and,
 * when they would not fit, first re-scores the cache with its {@link StreamingPolicy} and compacts
 * it in place back to the budget (iterative compaction: LaCache's ladder, StreamingLLM, KNorm,
 * SnapKV). Every head keeps the same number of tokens, so there is one {@link #length()}: after
 * the first compaction it stays within [budget, budget + slack].
 *
 * <p>k and v [B, Hkv, capacity, d] and positions I32 [B, Hkv, capacity] (each token's original
 * position, 0 for the first appended) are exposed as they are: slots at or beyond the length hold
 * stale rows (garbage); within the length, slot order is not position order (hole filling moves
 * newer tokens into older holes), which attention does not care about. The first {@code sinks}
 * positions are always kept, whatever the policy.
 *
 * <p>Scores are computed on the cache's device by {@link KvScores} (KNORM, SNAPKV) or on the
 * host from the positions (RECENCY, LADDER: positions are scored as F32, exact below 2^24), then
 * adjusted on the host (sinks, SnapKV's window forced), selected by {@link KvSelection} and applied
 * by {@link KvCompaction#inPlace}. Appends take at most slack tokens once the cache is full.
 */
public final class StreamingKvCache implements AutoCloseable {
  private final int batch;
  private final int headsKv;
  private final int headDim;
  private final int budget;
  private final int slack;
  private final int sinks;
  private final StreamingPolicy policy;
  private final Exec exec;
  private final Tensor k;
  private final Tensor v;
  private final Tensor positions;
  private Tensor lastQueries;
  private int length;
  private long seen;
  private int compactions;

  private StreamingKvCache(int batch, int headsKv, int headDim, int budget, int slack, int sinks,
      StreamingPolicy policy, Exec exec, Tensor k, Tensor v, Tensor positions) {
    this.batch = batch;
    this.headsKv = headsKv;
    this.headDim = headDim;
    this.budget = budget;
    this.slack = slack;
    this.sinks = sinks;
    this.policy = policy;
    this.exec = exec;
    this.k = k;
    this.v = v;
    this.positions = positions;
  }

  /** A cache with the default execution (backend from the device). */
  public static StreamingKvCache create(int batch, int headsKv, int headDim, DType dtype, Device device, int budget,
      int slack, int sinks, StreamingPolicy policy) {
    return create(batch, headsKv, headDim, dtype, device, budget, slack, sinks, policy, Exec.DEFAULT);
  }

  /**
   * @param budget tokens kept per head after a compaction, >= max(1, sinks)
   * @param slack extra slots (>= 1): compaction runs once every slack tokens at most
   * @param sinks first positions always kept (StreamingLLM's attention sinks; 0 for none)
   */
  public static StreamingKvCache create(int batch, int headsKv, int headDim, DType dtype, Device device, int budget,
      int slack, int sinks, StreamingPolicy policy, Exec exec) {
    String op = "StreamingKvCache.create";
    if (policy == null || device == null || dtype == null || exec == null) {
      throw new IllegalArgumentException(op + ": policy, device, dtype and exec must not be null");
    }
    if (batch < 1 || headsKv < 1 || headDim < 1) {
      throw new IllegalArgumentException(op + ": batch, headsKv and headDim must be >= 1; got " + batch + ", "
          + headsKv + ", " + headDim);
    }
    if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
      throw new IllegalArgumentException(op + ": dtype must be F32, F16 or BF16; got " + dtype);
    }
    if (sinks < 0 || budget < Math.max(1, sinks)) {
      throw new IllegalArgumentException(op + ": budget = " + budget + " must be >= max(1, sinks = " + sinks
          + ") and sinks >= 0");
    }
    if (slack < 1 || (long) budget + slack > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(op + ": slack must be >= 1 and budget + slack <= 2^31 - 1; got slack = "
          + slack);
    }
    int capacity = budget + slack;
    Tensor k = Tensor.zeros(dtype, device, batch, headsKv, capacity, headDim);
    Tensor v = null;
    try {
      v = Tensor.zeros(dtype, device, batch, headsKv, capacity, headDim);
      Tensor p = Tensor.zeros(DType.I32, device, batch, headsKv, capacity);
      return new StreamingKvCache(batch, headsKv, headDim, budget, slack, sinks, policy, exec, k, v, p);
    } catch (RuntimeException e) {
      k.close();
      if (v != null) {
        v.close();
      }
      throw e;
    }
  }

  /** Appends tokens (policies other than SNAPKV). */
  public void append(Tensor kNew, Tensor vNew) {
    append(kNew, vNew, null);
  }

  /**
   * Appends t tokens: kNew and vNew [B, Hkv, t, d] (the cache's dtype and device), positions
   * continuing the stream. When length + t exceeds the capacity, the cache is first compacted to
   * the budget (then t must be <= slack).
   *
   * @param qWindow for SNAPKV: queries [B, Hq, w, d] of the last w (<= t) appended tokens, used at
   *     the next compaction; null otherwise
   */
  public void append(Tensor kNew, Tensor vNew, Tensor qWindow) {
    String op = "StreamingKvCache.append";
    requireOpen();
    if (kNew == null || vNew == null) {
      throw new IllegalArgumentException(op + ": " + (kNew == null ? "kNew" : "vNew") + " must not be null");
    }
    kNew.requireOpen("kNew");
    vNew.requireOpen("vNew");
    Check.rank("kNew", kNew, 4, "(B, Hkv, t, d)");
    Check.sameDType("kNew", kNew, "cache", k);
    Check.sameDType("vNew", vNew, "cache", k);
    Check.dim("kNew", kNew, 0, batch, "B (of the cache)");
    Check.dim("kNew", kNew, 1, headsKv, "Hkv (of the cache)");
    Check.dim("kNew", kNew, 3, headDim, "d (of the cache)");
    if (!java.util.Arrays.equals(kNew.shape(), vNew.shape())) {
      throw new IllegalArgumentException(op + ": vNew must have the shape of kNew " + Shapes.format(kNew.shape())
          + ", got " + Shapes.format(vNew.shape()));
    }
    for (Tensor t : new Tensor[] {kNew, vNew}) {
      if (!t.device().equals(k.device())) {
        throw new IllegalArgumentException(op + ": " + (t == kNew ? "kNew" : "vNew") + " is on " + t.device()
            + " but the cache is on " + k.device());
      }
    }
    kNew.requireContiguous("kNew");
    vNew.requireContiguous("vNew");
    int t = Math.toIntExact(kNew.shape(2));
    boolean snap = policy instanceof StreamingPolicy.SnapKv;
    if (qWindow != null) {
      qWindow.requireOpen("qWindow");
      Check.rank("qWindow", qWindow, 4, "(B, Hq, w, d)");
      Check.sameDType("qWindow", qWindow, "cache", k);
      Check.dim("qWindow", qWindow, 0, batch, "B (of the cache)");
      Check.dim("qWindow", qWindow, 3, headDim, "d (of the cache)");
      if (!qWindow.device().equals(k.device())) {
        throw new IllegalArgumentException(op + ": qWindow is on " + qWindow.device() + " but the cache is on "
            + k.device());
      }
      if (sinks + qWindow.shape(2) > budget) {  // forced tokens beyond the budget would be dropped silently
        throw new IllegalArgumentException(op + ": sinks (" + sinks + ") + window (" + qWindow.shape(2)
            + ") must be <= budget (" + budget + ")");
      }
      if (qWindow.shape(1) % headsKv != 0 || qWindow.shape(2) < 1 || qWindow.shape(2) > t) {
        throw new IllegalArgumentException(op + ": qWindow must have Hq a multiple of Hkv = " + headsKv
            + " and 1 <= w <= t = " + t + " (the queries of the last appended tokens); got shape "
            + Shapes.format(qWindow.shape()));
      }
    }
    int capacity = budget + slack;
    if (length + t > capacity) {
      if (t > slack) {
        throw new IllegalArgumentException(op + ": kNew holds t = " + t + " tokens but at most slack = " + slack
            + " fit after compacting to the budget " + budget + "; append at most slack tokens at a time");
      }
      compact();
    }
    write(kNew, vNew, t);
    if (snap) {
      if (lastQueries != null) {
        lastQueries.close();
        lastQueries = null;
      }
      if (qWindow != null) {
        lastQueries = qWindow.to(qWindow.device());
      }
    }
  }

  /** Compacts to the budget now (no-op when the length is within the budget). */
  public void compact() {
    requireOpen();
    if (length <= budget) {
      return;
    }
    float[] scores = scores();
    int[] pos = firstSlots(positions, length);
    for (int bh = 0; bh < batch * headsKv; bh++) {
      for (int j = 0; j < length; j++) {
        if (pos[bh * length + j] < sinks) {
          scores[bh * length + j] = Float.POSITIVE_INFINITY;
        }
      }
    }
    Tensor scoresT = onDevice(Tensor.of(scores, batch, headsKv, length));
    try (Tensor s = scoresT;
        KeptTokens selected = KvSelection.select(s, budget, 0, 0, exec);
        KeptTokens kept = KeptTokens.of(selected.kept(), selected.counts(), budget + slack)) {
      KvCompaction.inPlace(k, v, positions, kept, exec);
    }
    length = budget;
    compactions++;
  }

  private float[] scores() {
    int n = length;
    float[] s = new float[batch * headsKv * n];
    if (policy instanceof StreamingPolicy.Recency || policy instanceof StreamingPolicy.Ladder) {
      int[] pos = firstSlots(positions, n);
      for (int i = 0; i < s.length; i++) {
        s[i] = policy instanceof StreamingPolicy.Ladder l
            ? KvScoresRef.ladderScore(pos[i], seen, l.layer(), l.rung())
            : (float) pos[i];
      }
      return s;
    }
    try (Tensor kView = firstSlotsTensor(k, n)) {
      if (policy instanceof StreamingPolicy.Knorm) {
        try (Tensor scores = KvScores.knorm(kView, exec)) {
          return scores.toFloatArray();
        }
      }
      StreamingPolicy.SnapKv snap = (StreamingPolicy.SnapKv) policy;
      if (lastQueries == null) {
        throw new IllegalStateException("StreamingKvCache: the SNAPKV policy needs the queries of the last append "
            + "(append(kNew, vNew, qWindow)) before the cache can be compacted");
      }
      int w = (int) lastQueries.shape(2);
      try (Tensor scores = KvScores.snapKv(lastQueries, kView, snap.options(), exec)) {
        s = scores.toFloatArray();
      }
      for (int bh = 0; bh < batch * headsKv; bh++) { // the window is always kept
        for (int j = n - w; j < n; j++) {
          s[bh * n + j] = Float.POSITIVE_INFINITY;
        }
      }
      return s;
    }
  }

  private void write(Tensor kNew, Tensor vNew, int t) {
    int capacity = budget + slack;
    int[] newPositions = new int[batch * headsKv * t];
    for (int i = 0; i < newPositions.length; i++) {
      newPositions[i] = Math.toIntExact(seen + i % t);
    }
    try (Tensor pHost = Tensor.of(newPositions, batch, headsKv, t);
        Tensor pNew = onDeviceCopy(pHost);
        Tensor kDst = k.view((long) batch * headsKv * capacity, headDim);
        Tensor vDst = v.view((long) batch * headsKv * capacity, headDim);
        Tensor pDst = positions.view((long) batch * headsKv * capacity);
        Tensor kSrc = kNew.view((long) batch * headsKv * t, headDim);
        Tensor vSrc = vNew.view((long) batch * headsKv * t, headDim);
        Tensor pSrc = (pNew == null ? pHost : pNew).view((long) batch * headsKv * t)) {
      for (int bh = 0; bh < batch * headsKv; bh++) {
        long at = (long) bh * capacity + length;
        copyRows(kDst, at, kSrc, (long) bh * t, t);
        copyRows(vDst, at, vSrc, (long) bh * t, t);
        copyRows(pDst, at, pSrc, (long) bh * t, t);
      }
    }
    length += t;
    seen += t;
  }

  private static void copyRows(Tensor dst, long dstRow, Tensor src, long srcRow, long rows) {
    try (Tensor d = dst.slice(0, dstRow, dstRow + rows);
        Tensor s = src.slice(0, srcRow, srcRow + rows)) {
      d.copyFrom(s);
    }
  }

  /** Slots 0 .. n - 1 of every head as a contiguous [B, H, n, ...] tensor on the cache's device. */
  private Tensor firstSlotsTensor(Tensor cache, int n) {
    int capacity = budget + slack;
    if (n == capacity) {
      return cache.view(cache.shape());
    }
    long row = cache.rank() == 4 ? headDim : 1;
    Tensor out = Tensor.allocate(cache.dtype(), cache.device(), cache.rank() == 4
        ? new long[] {batch, headsKv, n, headDim} : new long[] {batch, headsKv, n});
    try (Tensor src = cache.view((long) batch * headsKv * capacity, row);
        Tensor dst = out.view((long) batch * headsKv * n, row)) {
      for (int bh = 0; bh < batch * headsKv; bh++) {
        copyRows(dst, (long) bh * n, src, (long) bh * capacity, n);
      }
      return out;
    } catch (RuntimeException e) {
      out.close();
      throw e;
    }
  }

  private int[] firstSlots(Tensor cache, int n) {
    try (Tensor t = firstSlotsTensor(cache, n)) {
      return t.toIntArray();
    }
  }

  private Tensor onDevice(Tensor host) {
    if (!k.device().isCuda()) {
      return host;
    }
    try (Tensor h = host) {
      return h.to(k.device());
    }
  }

  private Tensor onDeviceCopy(Tensor host) {
    return k.device().isCuda() ? host.to(k.device()) : null;
  }

  /** Keys [B, Hkv, capacity, d]; slots >= length are garbage. */
  public Tensor k() {
    requireOpen();
    return k;
  }

  /** Values [B, Hkv, capacity, d]; slots >= length are garbage. */
  public Tensor v() {
    requireOpen();
    return v;
  }

  /** Original positions I32 [B, Hkv, capacity]; slots >= length are garbage. */
  public Tensor positions() {
    requireOpen();
    return positions;
  }

  /** Tokens per head (the same for every head). */
  public int length() {
    return length;
  }

  /** Tokens per head as [B][Hkv] (uniform). */
  public int[][] lengths() {
    return KvBudgets.uniform(batch, headsKv, length);
  }

  public int budget() {
    return budget;
  }

  public int capacity() {
    return budget + slack;
  }

  /** Tokens appended so far (the next token's position). */
  public long seen() {
    return seen;
  }

  /** Compactions run so far. */
  public int compactions() {
    return compactions;
  }

  private void requireOpen() {
    if (k.isClosed()) {
      throw new IllegalStateException("StreamingKvCache is closed");
    }
  }

  @Override
  public void close() {
    k.close();
    v.close();
    positions.close();
    if (lastQueries != null) {
      lastQueries.close();
    }
  }
}
