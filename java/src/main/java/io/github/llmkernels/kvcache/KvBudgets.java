package io.github.llmkernels.kvcache;

import io.github.llmkernels.internal.Check;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Tensor;
import java.util.Arrays;
import java.util.PriorityQueue;

/**
 * Token budgets: how many tokens each layer and each KV head keeps. Budgets are plain host
 * integers, computed in Java (they steer the selection, they are not a kernel); per-head budgets
 * go to {@link KvSelection#select(Tensor, int[][], int, int)}.
 */
public final class KvBudgets {
  /** PyramidKV's beta. */
  public static final double PYRAMID_BETA = 20;
  /** AdaKV's share of each head's budget kept by the head itself. */
  public static final double ADAKV_ALPHA = 0.2;

  private KvBudgets() {}

  /** The same budget for every head: [batch][headsKv] filled with budget. */
  public static int[][] uniform(int batch, int headsKv, int budget) {
    if (batch < 0 || headsKv < 0 || budget < 0) {
      throw new IllegalArgumentException("KvBudgets.uniform: batch, headsKv and budget must be >= 0; got " + batch
          + ", " + headsKv + ", " + budget);
    }
    int[][] out = new int[batch][headsKv];
    for (int[] row : out) {
      Arrays.fill(row, budget);
    }
    return out;
  }

  /** PyramidKV with beta 20. */
  public static int pyramid(int layer, int layers, int averageBudget) {
    return pyramid(layer, layers, averageBudget, PYRAMID_BETA);
  }

  /**
   * PyramidKV's budget of one layer: linear in the layer index from {@code 2B - min} (layer 0)
   * down to {@code min = B / beta} (the last layer), B the average budget, rounded half to even
   * (as Python's round). The budgets of all layers average B (up to rounding). One layer: B.
   */
  public static int pyramid(int layer, int layers, int averageBudget, double beta) {
    if (layers < 1 || layer < 0 || layer >= layers) {
      throw new IllegalArgumentException("KvBudgets.pyramid: layer must be in [0, layers), layers >= 1; got layer = "
          + layer + ", layers = " + layers);
    }
    if (averageBudget < 0) {
      throw new IllegalArgumentException("KvBudgets.pyramid: averageBudget must be >= 0; got " + averageBudget);
    }
    if (!(beta >= 1) || Double.isInfinite(beta)) {
      throw new IllegalArgumentException("KvBudgets.pyramid: beta must be finite and >= 1; got " + beta);
    }
    if (layers == 1) {
      return averageBudget;
    }
    double min = averageBudget / beta;
    double max = 2.0 * averageBudget - min;
    double steps = (max - min) / (layers - 1);
    return (int) Math.rint(max - layer * steps);
  }

  /** AdaKV with alpha 0.2. */
  public static int[][] adaKv(Tensor scores, int totalPerBatch, int sinks, int recent) {
    return adaKv(scores, totalPerBatch, ADAKV_ALPHA, sinks, recent);
  }

  /**
   * AdaKV head-wise budgets over one layer: each head first keeps its top
   * {@code floor(alpha * totalPerBatch / Hkv)} tokens (at least its forced ones, at most n), then
   * one global top-k over the remaining tokens of all heads of the batch row (score descending,
   * then KV head ascending, then position ascending) fills the rest of totalPerBatch.
   *
   * <p>Computed on the host: device scores are copied to the host first. Selecting each head's
   * budget with {@link KvSelection#select(Tensor, int[][], int, int)} (same sinks and recent) keeps
   * exactly the global top-k set, since the per-head order is the global order restricted to the
   * head.
   *
   * @param scores F32 [B, Hkv, n], no NaN
   * @param totalPerBatch tokens kept over all heads of one batch row, in [Hkv * min(n, sinks +
   *     recent), Hkv * n]
   * @return budgets [B][Hkv], summing to totalPerBatch per row
   */
  public static int[][] adaKv(Tensor scores, int totalPerBatch, double alpha, int sinks, int recent) {
    String op = "KvBudgets.adaKv";
    if (scores == null) {
      throw new IllegalArgumentException(op + ": scores must not be null");
    }
    scores.requireOpen("scores");
    Check.rank("scores", scores, 3, "(B, Hkv, n)");
    Check.dtype("scores", scores, DType.F32);
    if (!(alpha >= 0 && alpha <= 1)) {
      throw new IllegalArgumentException(op + ": alpha must be in [0, 1]; got " + alpha);
    }
    if (sinks < 0 || recent < 0) {
      throw new IllegalArgumentException(op + ": sinks and recent must be >= 0; got " + sinks + ", " + recent);
    }
    int b = (int) scores.shape(0);
    int h = (int) scores.shape(1);
    int n = Math.toIntExact(scores.shape(2));
    int forced = (int) KvSelectionRef.forcedCount(n, sinks, recent);
    if (totalPerBatch < (long) h * forced || totalPerBatch > (long) h * n) {
      throw new IllegalArgumentException(op + ": totalPerBatch = " + totalPerBatch + " must be in [Hkv * "
          + forced + " (forced tokens per head) = " + (long) h * forced + ", Hkv * n = " + (long) h * n + "]");
    }
    float[] s = scores.toFloatArray();
    int own = (int) Math.floor(alpha * ((double) totalPerBatch / h));
    int[][] budgets = new int[b][h];
    for (int bi = 0; bi < b; bi++) {
      int[][] orders = new int[h][];
      int used = 0;
      for (int hi = 0; hi < h; hi++) {
        orders[hi] = KvSelectionRef.order(s, bi * h + hi, n, sinks, recent);
        budgets[bi][hi] = Math.min(n, Math.max(own, forced));
        used += budgets[bi][hi];
      }
      // Global top-k over the rest: each head's remaining tokens come in its own order (score
      // descending, then position ascending), so merging the heads' queues by (score, head) is
      // the global order (score descending, head ascending, position ascending).
      int rest = totalPerBatch - used;
      final int row = bi;
      PriorityQueue<Integer> heads = new PriorityQueue<>((x, y) -> {
        float sx = s[(row * h + x) * n + orders[x][budgets[row][x]]];
        float sy = s[(row * h + y) * n + orders[y][budgets[row][y]]];
        if (sx != sy) {
          return sx > sy ? -1 : 1;
        }
        return Integer.compare(x, y);
      });
      for (int hi = 0; hi < h; hi++) {
        if (budgets[bi][hi] < n) {
          heads.add(hi);
        }
      }
      while (rest > 0) {
        int hi = heads.poll();
        budgets[bi][hi]++;
        rest--;
        if (budgets[bi][hi] < n) {
          heads.add(hi);
        }
      }
      if (rest < 0) { // own shares alone exceed the total (forced tokens): cannot happen given the range check
        throw new IllegalStateException(op + ": forced tokens exceed totalPerBatch");
      }
    }
    return budgets;
  }
}
