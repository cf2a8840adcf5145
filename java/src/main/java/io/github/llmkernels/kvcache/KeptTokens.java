package io.github.llmkernels.kvcache;

import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Shapes;
import io.github.llmkernels.tensor.Tensor;

/**
 * The tokens each KV head keeps, as {@link KvSelection#select} returns them: kept I32
 * [B, Hkv, maxKeep] on the scores' device, each row the kept positions (slots of the cache) in
 * ascending order padded with -1, and counts[b][h] (= the budget) on the host. Closing it closes
 * the tensors it owns.
 */
public final class KeptTokens implements AutoCloseable {
  private final Tensor kept;
  private final int[][] counts;
  private final long n;
  private Tensor countsTensor;

  KeptTokens(Tensor kept, int[][] counts, long n) {
    this.kept = kept;
    this.counts = counts;
    this.n = n;
  }

  /**
   * Wraps caller-made kept lists (e.g. from another selection rule); the result owns kept.
   *
   * @param kept I32 [B, H, maxKeep], row (b, h) listing counts[b][h] strictly ascending positions
   *     in [0, n) first (validated by the compaction that uses them)
   * @param counts [B][H], each in [0, maxKeep]
   * @param n length (capacity) of the cache the positions refer to
   */
  public static KeptTokens of(Tensor kept, int[][] counts, long n) {
    if (kept == null || counts == null) {
      throw new IllegalArgumentException((kept == null ? "kept" : "counts") + " must not be null");
    }
    kept.requireOpen("kept");
    if (kept.rank() != 3 || kept.dtype() != DType.I32) {
      throw new IllegalArgumentException("kept must be I32 of rank 3 (B, H, maxKeep), got " + kept.dtype()
          + Shapes.format(kept.shape()));
    }
    kept.requireContiguous("kept");
    if (counts.length != kept.shape(0)) {
      throw new IllegalArgumentException("counts must have B = " + kept.shape(0) + " rows, got " + counts.length);
    }
    int[][] copy = new int[counts.length][];
    for (int b = 0; b < counts.length; b++) {
      if (counts[b] == null || counts[b].length != kept.shape(1)) {
        throw new IllegalArgumentException("counts[" + b + "] must have H = " + kept.shape(1) + " entries");
      }
      for (int h = 0; h < counts[b].length; h++) {
        if (counts[b][h] < 0 || counts[b][h] > kept.shape(2) || counts[b][h] > n) {
          throw new IllegalArgumentException("counts[" + b + "][" + h + "] = " + counts[b][h] + " must be in [0, min("
              + "maxKeep = " + kept.shape(2) + ", n = " + n + ")]");
        }
      }
      copy[b] = counts[b].clone();
    }
    if (n < 0 || n > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("n must be in [0, 2^31 - 1], got " + n);
    }
    return new KeptTokens(kept, copy, n);
  }

  /** I32 [B, H, maxKeep], ascending positions padded with -1. */
  public Tensor kept() {
    kept.requireOpen("kept");
    return kept;
  }

  /** Kept tokens per head [B][H] (a copy). */
  public int[][] counts() {
    int[][] out = new int[counts.length][];
    for (int b = 0; b < counts.length; b++) {
      out[b] = counts[b].clone();
    }
    return out;
  }

  /** Same as {@link #counts()}: selection keeps exactly the budget. */
  public int[][] budgets() {
    return counts();
  }

  public int count(int b, int h) {
    return counts[b][h];
  }

  public int batch() {
    return (int) kept.shape(0);
  }

  public int heads() {
    return (int) kept.shape(1);
  }

  public int maxKeep() {
    return (int) kept.shape(2);
  }

  /** Length of the cache the kept positions refer to. */
  public long n() {
    return n;
  }

  /** Sum of all counts. */
  public long total() {
    long t = 0;
    for (int[] row : counts) {
      for (int c : row) {
        t += c;
      }
    }
    return t;
  }

  /** True when every head keeps the same number of tokens (what a dense cache needs). */
  public boolean isUniform() {
    for (int[] row : counts) {
      for (int c : row) {
        if (c != counts[0][0]) {
          return false;
        }
      }
    }
    return true;
  }

  /** counts as I32 [B, H] on kept's device (made once, owned by this object). */
  Tensor countsTensor() {
    if (countsTensor == null) {
      int[] flat = new int[counts.length * heads()];
      for (int b = 0; b < counts.length; b++) {
        System.arraycopy(counts[b], 0, flat, b * heads(), heads());
      }
      Tensor host = Tensor.of(flat, counts.length, heads());
      if (kept.device().isCuda()) {
        try (Tensor h = host) {
          countsTensor = h.to(kept.device());
        }
      } else {
        countsTensor = host;
      }
    }
    return countsTensor;
  }

  /** Cumulative counts [B * H + 1] (the varlen layout's cu). */
  long[] cumulative() {
    long[] cu = new long[counts.length * heads() + 1];
    for (int bh = 0; bh < counts.length * heads(); bh++) {
      cu[bh + 1] = cu[bh] + counts[bh / heads()][bh % heads()];
    }
    return cu;
  }

  @Override
  public void close() {
    kept.close();
    if (countsTensor != null) {
      countsTensor.close();
    }
  }

  @Override
  public String toString() {
    return "KeptTokens" + Shapes.format(kept.shape()) + " of n = " + n + " on " + kept.device();
  }
}
