package io.github.llmkernels.attention;

/**
 * Quality of a sparse attention pass against dense attention, from the outputs of two
 * {@link SparseAttention#forward} calls, without materialising the Sq x Sk probabilities.
 *
 * <p>Attention-mass recall of query i is the share of its dense softmax mass that falls inside
 * the sparse layout: {@code sum_{j in L_i} p_ij} with {@code p_ij = exp(s_ij) / sum_{j in C_i}
 * exp(s_ij)}, where C_i is the set of keys dense attention lets query i see (causal, say) and L_i
 * the keys the sparse layout lets it see. The forward returns {@code lse_i = log sum exp(s_ij)}
 * over the keys it attended, so
 * <pre>
 *   exp(lse_sparse_i - lse_dense_i) = sum_{j in L_i} exp(s_ij) / sum_{j in C_i} exp(s_ij)
 *                                   = sum_{j in L_i} p_ij
 * </pre>
 * exactly when two conditions hold: L_i is a subset of C_i (a layout estimated on top of the
 * dense mask, e.g. {@link BlockLayout#fromBlockMask} or a {@link SparsePrefill} estimate over
 * causal), and both passes see the same scores s_ij (same inputs, same scale, same softcap).
 * Otherwise the ratio measures nothing: a key outside C_i would add mass the denominator lacks
 * (the ratio can exceed 1), and a different scale or softcap changes every p_ij.
 *
 * <p>Edge cases: the two lse come from separate fp32 passes, so a layout that keeps everything
 * can give a ratio a few ulps above 1; recall is clamped to 1. A query whose sparse row sees no
 * key ({@code lse_sparse = -inf}) keeps no mass: recall 0, unless its dense row sees no key
 * either (it had nothing to lose: recall 1).
 *
 * <p>Arrays are the host copies of the forward's outputs, flattened row-major: lse [B, Hq, Sq]
 * and out [B, Hq, Sq, d] (F32 output). "Heads" below means B x Hq rows of Sq queries, indexed
 * {@code b * Hq + h}.
 */
public final class AttentionRecall {
  private AttentionRecall() {}

  /** Share of one query's dense softmax mass inside the layout, from its two log-sum-exps. */
  public static double queryRecall(float lseSparse, float lseDense) {
    if (lseSparse == Float.NEGATIVE_INFINITY) {
      return lseDense == Float.NEGATIVE_INFINITY ? 1 : 0;
    }
    return Math.min(1.0, Math.exp((double) lseSparse - lseDense));
  }

  /**
   * Recall of every query.
   *
   * @param lseSparse F32 [B, Hq, Sq] of the sparse pass
   * @param lseDense F32 [B, Hq, Sq] of the dense pass, same length
   * @return [B, Hq, Sq]
   */
  public static double[] queryRecalls(float[] lseSparse, float[] lseDense) {
    if (lseSparse == null) {
      throw new IllegalArgumentException("AttentionRecall: lseSparse must not be null");
    }
    requireLength("lseDense", lseDense, lseSparse.length, "lseSparse.length");
    double[] out = new double[lseSparse.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = queryRecall(lseSparse[i], lseDense[i]);
    }
    return out;
  }

  /**
   * Mean recall over the queries of each head.
   *
   * @param lseSparse F32 [heads, seqQ] (heads = B x Hq) of the sparse pass
   * @param lseDense F32 [heads, seqQ] of the dense pass
   * @return [heads]; NaN for a head when seqQ = 0
   */
  public static double[] headMeanRecall(float[] lseSparse, float[] lseDense, int heads, int seqQ) {
    checkLse(lseSparse, lseDense, heads, seqQ);
    double[] out = new double[heads];
    for (int head = 0; head < heads; head++) {
      double sum = 0;
      for (int i = head * seqQ; i < (head + 1) * seqQ; i++) {
        sum += queryRecall(lseSparse[i], lseDense[i]);
      }
      out[head] = sum / seqQ;
    }
    return out;
  }

  /**
   * Lowest query-block recall of each head: the mean recall of every block of blockQ consecutive
   * queries (the last block may be shorter), then the minimum over blocks. A block mean shows a
   * region the layout starves that the head mean would average away.
   *
   * @param lseSparse F32 [heads, seqQ] (heads = B x Hq) of the sparse pass
   * @param lseDense F32 [heads, seqQ] of the dense pass
   * @param blockQ queries per block, >= 1 (typically the layout's blockQ)
   * @return [heads]; +inf for a head when seqQ = 0
   */
  public static double[] headMinBlockRecall(float[] lseSparse, float[] lseDense, int heads, int seqQ, int blockQ) {
    checkLse(lseSparse, lseDense, heads, seqQ);
    if (blockQ < 1) {
      throw new IllegalArgumentException("AttentionRecall: blockQ must be >= 1; got " + blockQ);
    }
    double[] out = new double[heads];
    for (int head = 0; head < heads; head++) {
      double worst = Double.POSITIVE_INFINITY;
      int base = head * seqQ;
      for (int q0 = 0; q0 < seqQ; q0 += blockQ) {
        int q1 = Math.min(seqQ, q0 + blockQ);
        double block = 0;
        for (int i = q0; i < q1; i++) {
          block += queryRecall(lseSparse[base + i], lseDense[base + i]);
        }
        worst = Math.min(worst, block / (q1 - q0));
      }
      out[head] = worst;
    }
    return out;
  }

  /**
   * Relative Frobenius error of each head's output, {@code ||O_sparse - O_dense||_F /
   * ||O_dense||_F}: 0 when both are zero, +inf when only the dense output is zero.
   *
   * @param outSparse F32 [heads, seqQ, dim] (heads = B x Hq) of the sparse pass
   * @param outDense F32 [heads, seqQ, dim] of the dense pass
   * @return [heads]
   */
  public static double[] headRelativeError(float[] outSparse, float[] outDense, int heads, int seqQ, int dim) {
    if (heads < 0 || seqQ < 0 || dim < 0) {
      throw new IllegalArgumentException("AttentionRecall: heads, seqQ and dim must be >= 0; got " + heads + ", "
          + seqQ + ", " + dim);
    }
    long n = (long) heads * seqQ * dim;
    requireLength("outSparse", outSparse, n, "heads x seqQ x dim");
    requireLength("outDense", outDense, n, "heads x seqQ x dim");
    int perHead = seqQ * dim; // fits: heads x perHead <= an array length
    double[] out = new double[heads];
    for (int head = 0; head < heads; head++) {
      double num = 0;
      double den = 0;
      for (int i = head * perHead; i < (head + 1) * perHead; i++) {
        double o = outDense[i];
        double diff = outSparse[i] - o;
        num += diff * diff;
        den += o * o;
      }
      out[head] = den == 0 ? (num == 0 ? 0 : Double.POSITIVE_INFINITY) : Math.sqrt(num / den);
    }
    return out;
  }

  private static void checkLse(float[] lseSparse, float[] lseDense, int heads, int seqQ) {
    if (heads < 0 || seqQ < 0) {
      throw new IllegalArgumentException("AttentionRecall: heads and seqQ must be >= 0; got " + heads + ", " + seqQ);
    }
    long n = (long) heads * seqQ;
    requireLength("lseSparse", lseSparse, n, "heads x seqQ");
    requireLength("lseDense", lseDense, n, "heads x seqQ");
  }

  private static void requireLength(String name, float[] a, long want, String what) {
    if (a == null) {
      throw new IllegalArgumentException("AttentionRecall: " + name + " must not be null");
    }
    if (a.length != want) {
      throw new IllegalArgumentException("AttentionRecall: " + name + " must have " + what + " = " + want
          + " elements; got " + a.length);
    }
  }
}
