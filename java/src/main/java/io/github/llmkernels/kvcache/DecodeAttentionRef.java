package io.github.llmkernels.kvcache;

import io.github.llmkernels.tensor.Tensor;

/**
 * The Java reference of decode attention over a compacted cache, in double: query head h of batch
 * b attends over the rows of its KV head {@code bh = b * Hkv + h / (Hq / Hkv)}:
 * {@code s_j = scale * q . k_j}, {@code lse = log sum_j exp s_j}, {@code out = sum_j exp(s_j - lse) v_j};
 * an empty head gives out 0 and lse -inf. Key order does not matter.
 */
public final class DecodeAttentionRef {
  private DecodeAttentionRef() {}

  /** out [B * Hq * d] and lse [B * Hq] in double. */
  public record Result(double[] out, double[] lse) {}

  /**
   * Over a varlen layout.
   *
   * @param q [B, Hq, d] host
   * @param k [total, d] host
   * @param v [total, d] host
   * @param cu [B * Hkv + 1]
   */
  public static Result varlen(Tensor q, Tensor k, Tensor v, long[] cu, int headsKv) {
    return varlen(q, k, v, cu, headsKv, 1.0 / Math.sqrt(q.shape(2)));
  }

  /**
   * Dense attention of q [B, Hq, d] over the full cache k, v [B, Hkv, N, d] restricted to the
   * kept tokens of each KV head (keptPerHead[b * Hkv + h] lists slots in [0, N)): the oracle of
   * "decode over the compacted cache".
   */
  public static Result keptDense(Tensor q, Tensor k, Tensor v, int[][] keptPerHead, double scale) {
    int b = (int) q.shape(0);
    int hq = (int) q.shape(1);
    int d = (int) q.shape(2);
    int hkv = (int) k.shape(1);
    int n = (int) k.shape(2);
    int[][] rows = new int[b * hkv][];
    for (int bh = 0; bh < rows.length; bh++) {
      rows[bh] = new int[keptPerHead[bh].length];
      for (int i = 0; i < rows[bh].length; i++) {
        rows[bh][i] = bh * n + keptPerHead[bh][i];
      }
    }
    return attend(q.toFloatArray(), k.toFloatArray(), v.toFloatArray(), rows, b, hq, hkv, d, scale);
  }

  /** Same as {@link #varlen} with an explicit scale. */
  public static Result varlen(Tensor q, Tensor k, Tensor v, long[] cu, int headsKv, double scale) {
    int b = (int) q.shape(0);
    int[][] rows = new int[b * headsKv][];
    for (int bh = 0; bh < rows.length; bh++) {
      rows[bh] = new int[(int) (cu[bh + 1] - cu[bh])];
      for (int i = 0; i < rows[bh].length; i++) {
        rows[bh][i] = (int) (cu[bh] + i);
      }
    }
    return attend(q.toFloatArray(), k.toFloatArray(), v.toFloatArray(), rows, b, (int) q.shape(1), headsKv,
        (int) q.shape(2), scale);
  }

  /** rows[bh] lists the row indices (of d elements) of k and v that KV head bh attends over. */
  static Result attend(float[] q, float[] k, float[] v, int[][] rows, int b, int hq, int hkv, int d, double scale) {
    double[] out = new double[b * hq * d];
    double[] lse = new double[b * hq];
    int group = hq / hkv;
    for (int bi = 0; bi < b; bi++) {
      for (int h = 0; h < hq; h++) {
        int qi = bi * hq + h;
        int[] r = rows[bi * hkv + h / group];
        if (r.length == 0) {
          lse[qi] = Double.NEGATIVE_INFINITY;
          continue;
        }
        double[] s = new double[r.length];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < r.length; j++) {
          double dot = 0;
          for (int e = 0; e < d; e++) {
            dot += (double) q[qi * d + e] * k[r[j] * d + e];
          }
          s[j] = scale * dot;
          max = Math.max(max, s[j]);
        }
        double sum = 0;
        for (int j = 0; j < r.length; j++) {
          s[j] = Math.exp(s[j] - max);
          sum += s[j];
        }
        for (int j = 0; j < r.length; j++) {
          double p = s[j] / sum;
          for (int e = 0; e < d; e++) {
            out[qi * d + e] += p * v[r[j] * d + e];
          }
        }
        lse[qi] = max + Math.log(sum);
      }
    }
    return new Result(out, lse);
  }
}
