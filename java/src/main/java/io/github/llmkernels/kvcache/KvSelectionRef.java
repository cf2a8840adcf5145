package io.github.llmkernels.kvcache;

import java.util.Arrays;

/**
 * The Java reference of the per-head top-k selection (kv_math.h, written for clarity): head
 * (b, h) keeps budgets[b][h] tokens, first the forced ones (positions < sinks and >= n - recent),
 * then the highest scores, ties to the lower position (a total order, so every backend keeps the
 * same set). Scores are compared as F32 values, as the kernels do.
 */
public final class KvSelectionRef {
  private KvSelectionRef() {}

  /** Always kept: the first sinks tokens and the last recent ones (kv_forced). */
  public static boolean forced(long j, long n, long sinks, long recent) {
    return j < sinks || j >= n - recent;
  }

  /** Tokens a head must keep at least (kv_forced_count). */
  public static long forcedCount(long n, long sinks, long recent) {
    long s = Math.min(sinks, n);
    long r = Math.min(recent, n - s);
    return s + r;
  }

  /**
   * The positions of one head in selection order (forced first, then score descending, ties to
   * the lower position).
   *
   * @param scores [B, H, n] row-major F32 scores
   * @param head b * H + h
   */
  public static int[] order(float[] scores, int head, int n, int sinks, int recent) {
    Integer[] idx = new Integer[n];
    for (int j = 0; j < n; j++) {
      idx[j] = j;
      float s = scores[head * n + j];
      if (Float.isNaN(s)) {
        throw new IllegalArgumentException("scores[" + head + " (b * H + h), " + j + "] is NaN; scores must not be NaN");
      }
    }
    Arrays.sort(idx, (a, b) -> {
      boolean fa = forced(a, n, sinks, recent);
      boolean fb = forced(b, n, sinks, recent);
      if (fa != fb) {
        return fa ? -1 : 1;
      }
      float sa = scores[head * n + a];
      float sb = scores[head * n + b];
      if (sa != sb) {
        return sa > sb ? -1 : 1;
      }
      return Integer.compare(a, b);
    });
    int[] out = new int[n];
    for (int j = 0; j < n; j++) {
      out[j] = idx[j];
    }
    return out;
  }

  /**
   * Kept positions per head, ascending.
   *
   * @param scores [B, H, n] row-major
   * @param budgets [B][H], each in [forcedCount, n] (checked by the caller)
   * @return [B * H][budget] ascending positions
   */
  public static int[][] select(float[] scores, int batch, int heads, int n, int[][] budgets, int sinks, int recent) {
    int[][] out = new int[batch * heads][];
    for (int bh = 0; bh < batch * heads; bh++) {
      int[] order = order(scores, bh, n, sinks, recent);
      int[] keep = Arrays.copyOf(order, budgets[bh / heads][bh % heads]);
      Arrays.sort(keep);
      out[bh] = keep;
    }
    return out;
  }
}
