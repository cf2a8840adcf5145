package io.github.llmkernels.kvcache;

import io.github.llmkernels.tensor.Tensor;

/**
 * The Java reference of the KV token scorers (higher = keep), written for clarity and computed in
 * double from the (already rounded) inputs. Scores come back as double[] in [B, Hkv, n] row-major
 * order. Definitions (llmk.h, llmk_kv_scorer; kv_math.h):
 *
 * <ul>
 *   <li>KNORM: {@code -||k_j||_2}.
 *   <li>RECENCY: {@code j} (with sinks forced at selection: StreamingLLM).
 *   <li>SNAPKV: query i of the q_len window sits at position {@code n - q_len + i} and sees keys
 *       {@code 0 .. n - q_len + i}; its softmax over those keys (scale {@code s}) is averaged over
 *       the window (divided by q_len) and over the GQA group (divided by Hq / Hkv), then pooled
 *       along keys: AVG sums {@code [j - kernel/2, j + kernel/2]} clipped to [0, n) and divides by
 *       kernel; MAX takes the largest value of that clipped window. TOVA = SNAPKV with q_len 1 and
 *       no pooling.
 *   <li>OBSERVED (H2O): the same causal probabilities summed per key over queries and the group
 *       into attn_sum; attn_count counts the (query, head) pairs that saw the key; score = sum /
 *       count (0 where count is 0). Both accumulate across calls.
 *   <li>LADDER (LaCache): {@code (j % rung == layer % rung ? 2 : 1) + j / n}, evaluated in float
 *       exactly as kv_math.h does (position-only scores must match bit for bit).
 * </ul>
 */
public final class KvScoresRef {
  private KvScoresRef() {}

  /** KNORM scores of k [B, Hkv, n, d] (host). */
  public static double[] knorm(Tensor k) {
    float[] kv = k.toFloatArray();
    int rows = (int) (k.shape(0) * k.shape(1) * k.shape(2));
    int d = (int) k.shape(3);
    double[] out = new double[rows];
    for (int r = 0; r < rows; r++) {
      double sum = 0;
      for (int e = 0; e < d; e++) {
        double x = kv[r * d + e];
        sum += x * x;
      }
      out[r] = -Math.sqrt(sum);
    }
    return out;
  }

  /** RECENCY scores: the position j. */
  public static double[] recency(long batch, long headsKv, long n) {
    double[] out = new double[Math.toIntExact(batch * headsKv * n)];
    for (int i = 0; i < out.length; i++) {
      out[i] = i % n;
    }
    return out;
  }

  /** LADDER scores (float arithmetic of kv_ladder_score, widened). */
  public static double[] ladder(long batch, long headsKv, long n, long layer, long rung) {
    double[] out = new double[Math.toIntExact(batch * headsKv * n)];
    for (int i = 0; i < out.length; i++) {
      out[i] = ladderScore(i % n, n, layer, rung);
    }
    return out;
  }

  /** kv_ladder_score of kv_math.h, in float as the kernels compute it. */
  public static float ladderScore(long j, long n, long layer, long rung) {
    float base = j % rung == layer % rung ? 2.0f : 1.0f;
    return base + (float) j / (float) n;
  }

  /**
   * SNAPKV scores.
   *
   * @param q [B, Hq, q_len, d] host (the observation window, last q_len positions)
   * @param k [B, Hkv, n, d] host, q_len <= n
   * @param pooling NONE, AVG or MAX
   * @param kernel odd pooling kernel (ignored for NONE)
   * @param scale softmax scale
   */
  public static double[] snapKv(Tensor q, Tensor k, KvPooling pooling, int kernel, double scale) {
    Dims s = Dims.of(q, k);
    double[] out = new double[s.b * s.hkv * s.n];
    double[] p = new double[s.n];
    double[] acc = new double[s.n];
    int group = s.hq / s.hkv;
    for (int bi = 0; bi < s.b; bi++) {
      for (int h = 0; h < s.hkv; h++) {
        java.util.Arrays.fill(acc, 0);
        for (int g = 0; g < group; g++) {
          for (int i = 0; i < s.w; i++) {
            int seen = softmaxRow(s, bi, h * group + g, i, scale, p);
            for (int j = 0; j < seen; j++) {
              acc[j] += p[j];
            }
          }
        }
        int base = (bi * s.hkv + h) * s.n;
        for (int j = 0; j < s.n; j++) {
          acc[j] /= (double) s.w * group;
        }
        for (int j = 0; j < s.n; j++) {
          out[base + j] = pool(acc, j, s.n, pooling, kernel);
        }
      }
    }
    return out;
  }

  /**
   * OBSERVED scores; attnSum and attnCount ([B, Hkv, n]) are updated in place (accumulated).
   */
  public static double[] observed(Tensor q, Tensor k, double scale, double[] attnSum, double[] attnCount) {
    Dims s = Dims.of(q, k);
    double[] p = new double[s.n];
    int group = s.hq / s.hkv;
    for (int bi = 0; bi < s.b; bi++) {
      for (int h = 0; h < s.hkv; h++) {
        int base = (bi * s.hkv + h) * s.n;
        for (int g = 0; g < group; g++) {
          for (int i = 0; i < s.w; i++) {
            int seen = softmaxRow(s, bi, h * group + g, i, scale, p);
            for (int j = 0; j < seen; j++) {
              attnSum[base + j] += p[j];
              attnCount[base + j] += 1;
            }
          }
        }
      }
    }
    double[] out = new double[attnSum.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = attnCount[i] == 0 ? 0 : attnSum[i] / attnCount[i];
    }
    return out;
  }

  /** Pooled value at key j of one head's averaged attention. */
  static double pool(double[] acc, int j, int n, KvPooling pooling, int kernel) {
    if (pooling == KvPooling.NONE) {
      return acc[j];
    }
    int lo = Math.max(0, j - kernel / 2);
    int hi = Math.min(n - 1, j + kernel / 2);
    if (pooling == KvPooling.AVG) {
      double sum = 0;
      for (int t = lo; t <= hi; t++) {
        sum += acc[t];
      }
      return sum / kernel;
    }
    double max = Double.NEGATIVE_INFINITY;
    for (int t = lo; t <= hi; t++) {
      max = Math.max(max, acc[t]);
    }
    return max;
  }

  /** Causal softmax of query i of query head hq into p[0 .. seen); returns seen. */
  private static int softmaxRow(Dims s, int bi, int hq, int i, double scale, double[] p) {
    int seen = s.n - s.w + i + 1;
    int kvHead = hq / (s.hq / s.hkv);
    int qOff = ((bi * s.hq + hq) * s.w + i) * s.d;
    double max = Double.NEGATIVE_INFINITY;
    for (int j = 0; j < seen; j++) {
      int kOff = ((bi * s.hkv + kvHead) * s.n + j) * s.d;
      double dot = 0;
      for (int e = 0; e < s.d; e++) {
        dot += (double) s.q[qOff + e] * s.k[kOff + e];
      }
      p[j] = scale * dot;
      max = Math.max(max, p[j]);
    }
    double sum = 0;
    for (int j = 0; j < seen; j++) {
      p[j] = Math.exp(p[j] - max);
      sum += p[j];
    }
    for (int j = 0; j < seen; j++) {
      p[j] /= sum;
    }
    return seen;
  }

  private record Dims(float[] q, float[] k, int b, int hq, int hkv, int w, int n, int d) {
    static Dims of(Tensor q, Tensor k) {
      return new Dims(q.toFloatArray(), k.toFloatArray(), (int) q.shape(0), (int) q.shape(1), (int) k.shape(1),
          (int) q.shape(2), (int) k.shape(2), (int) q.shape(3));
    }
  }
}
