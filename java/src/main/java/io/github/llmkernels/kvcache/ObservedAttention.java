package io.github.llmkernels.kvcache;

import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Shapes;
import io.github.llmkernels.tensor.Tensor;

/**
 * H2O / observed-attention state of one layer: attn_sum and attn_count, F32 [B, Hkv, n], which
 * {@link KvScores#observed} accumulates across calls (decode steps): attn_sum gains the attention
 * probabilities each key received, attn_count the number of (query, head) pairs that could see
 * it; the score is their ratio. As the cache grows, {@link #grow} extends both with zeros; after
 * a compaction, {@link #compact} keeps the statistics of the kept tokens.
 */
public final class ObservedAttention implements AutoCloseable {
  private Tensor attnSum;
  private Tensor attnCount;

  private ObservedAttention(Tensor attnSum, Tensor attnCount) {
    this.attnSum = attnSum;
    this.attnCount = attnCount;
  }

  /** Zeroed state for n tokens per head on the given device. */
  public static ObservedAttention create(long batch, long headsKv, long n, Device device) {
    if (batch < 0 || headsKv < 1 || n < 0) {
      throw new IllegalArgumentException("ObservedAttention.create: batch and n must be >= 0 and headsKv >= 1; got "
          + batch + ", " + headsKv + ", " + n);
    }
    Tensor sum = Tensor.zeros(DType.F32, device, batch, headsKv, n);
    try {
      return new ObservedAttention(sum, Tensor.zeros(DType.F32, device, batch, headsKv, n));
    } catch (RuntimeException e) {
      sum.close();
      throw e;
    }
  }

  /** attn_sum F32 [B, Hkv, n] (owned by this state). */
  public Tensor attnSum() {
    requireOpen();
    return attnSum;
  }

  /** attn_count F32 [B, Hkv, n] (owned by this state). */
  public Tensor attnCount() {
    requireOpen();
    return attnCount;
  }

  public long batch() {
    return attnSum.shape(0);
  }

  public long headsKv() {
    return attnSum.shape(1);
  }

  public long n() {
    return attnSum.shape(2);
  }

  public Device device() {
    return attnSum.device();
  }

  /** Extends every head to newN tokens (the new ones with zero statistics). */
  public void grow(long newN) {
    requireOpen();
    long n = n();
    if (newN < n) {
      throw new IllegalArgumentException("ObservedAttention.grow: newN = " + newN + " must be >= n = " + n);
    }
    if (newN == n) {
      return;
    }
    attnSum = regrow(attnSum, n, newN);
    attnCount = regrow(attnCount, n, newN);
  }

  /**
   * Keeps the statistics of the kept tokens in kept order: head (b, h) then holds counts[b][h]
   * tokens, padded with zeros. This is the slot order of {@link KvCompaction#dense} and
   * {@link KvCompaction#varlen}; after {@link KvCompaction#inPlace} use {@link #compactInPlace}.
   */
  public void compact(KeptTokens kept) {
    requireOpen();
    if (kept.batch() != batch() || kept.heads() != headsKv()) {
      throw new IllegalArgumentException("ObservedAttention.compact: kept is for [B, H] = [" + kept.batch() + ", "
          + kept.heads() + "] but the state has " + Shapes.format(attnSum.shape()));
    }
    int[] idx = kept.kept().toIntArray();
    int[][] counts = kept.counts();
    long n = n();
    attnSum = gathered(attnSum, n, idx, counts, kept.maxKeep());
    attnCount = gathered(attnCount, n, idx, counts, kept.maxKeep());
  }

  /**
   * Keeps the statistics of the kept tokens in the slot order {@link KvCompaction#inPlace} leaves
   * (hole filling: kept slots below the new length stay, the others move into the free slots in
   * ascending order), so the statistics stay with their tokens.
   */
  public void compactInPlace(KeptTokens kept) {
    requireOpen();
    if (kept.batch() != batch() || kept.heads() != headsKv()) {
      throw new IllegalArgumentException("ObservedAttention.compactInPlace: kept is for [B, H] = [" + kept.batch()
          + ", " + kept.heads() + "] but the state has " + Shapes.format(attnSum.shape()));
    }
    int[] idx = kept.kept().toIntArray();
    int[][] counts = kept.counts();
    long n = n();
    attnSum = movedInPlace(attnSum, n, idx, counts, kept.maxKeep());
    attnCount = movedInPlace(attnCount, n, idx, counts, kept.maxKeep());
  }

  private Tensor movedInPlace(Tensor t, long n, int[] idx, int[][] counts, int maxKeep) {
    float[] values = t.toFloatArray();
    long h = headsKv();
    for (int bh = 0; bh < batch() * h; bh++) {
      int c = counts[(int) (bh / h)][(int) (bh % h)];
      int[] headKept = java.util.Arrays.copyOfRange(idx, bh * maxKeep, bh * maxKeep + c);
      for (KvCompactionRef.Move m : KvCompactionRef.inPlaceMoves(headKept, c)) {
        values[(int) (bh * n + m.to())] = values[(int) (bh * n + m.from())];
      }
    }
    try (Tensor host = Tensor.of(values, t.shape())) {
      Tensor next = host.to(t.device());
      t.close();
      return next;
    }
  }

  private Tensor gathered(Tensor t, long n, int[] idx, int[][] counts, int maxKeep) {
    float[] old = t.toFloatArray();
    long b = batch();
    long h = headsKv();
    float[] next = new float[Math.toIntExact(b * h * maxKeep)];
    for (int bh = 0; bh < b * h; bh++) {
      int c = counts[(int) (bh / h)][(int) (bh % h)];
      for (int i = 0; i < c; i++) {
        int j = idx[bh * maxKeep + i];
        if (j < 0 || j >= n) {
          throw new IllegalArgumentException("ObservedAttention.compact: kept[" + bh / h + ", " + bh % h + ", " + i
              + "] = " + j + " is outside [0, n = " + n + ")");
        }
        next[bh * maxKeep + i] = old[(int) (bh * n + j)];
      }
    }
    return replace(t, next, maxKeep);
  }

  private Tensor regrow(Tensor t, long n, long newN) {
    float[] old = t.toFloatArray();
    long bh = batch() * headsKv();
    float[] next = new float[Math.toIntExact(bh * newN)];
    for (int r = 0; r < bh; r++) {
      System.arraycopy(old, (int) (r * n), next, (int) (r * newN), (int) n);
    }
    return replace(t, next, newN);
  }

  private Tensor replace(Tensor t, float[] values, long newN) {
    Tensor host = Tensor.of(values, batch(), headsKv(), newN);
    Tensor next = host;
    if (t.device().isCuda()) {
      try (Tensor h = host) {
        next = h.to(t.device());
      }
    }
    t.close();
    return next;
  }

  void requireOpen() {
    if (attnSum.isClosed() || attnCount.isClosed()) {
      throw new IllegalStateException("ObservedAttention is closed");
    }
  }

  @Override
  public void close() {
    attnSum.close();
    attnCount.close();
  }
}
