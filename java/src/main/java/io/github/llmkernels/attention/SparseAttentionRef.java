package io.github.llmkernels.attention;

import io.github.llmkernels.tensor.Tensor;

/**
 * The Java reference of masked attention, written for clarity and accumulating in double.
 *
 * <p>{@link #dense} expands the mask element by element ({@link MaskSpec#visible}) over every
 * (query, key) pair: it is the oracle every backend is tested against. The JAVA backend of
 * {@link SparseAttention} runs {@link #blockSparse}, which visits only the layout's blocks and
 * evaluates the mask on PARTIAL ones, as the kernels do.
 *
 * <p>Definition: {@code s_ij = scale * q_i . k_j}, then {@code softcap * tanh(s / softcap)} when
 * softcap > 0; over the visible keys j of query i, {@code lse_i = log sum_j exp s_ij} and
 * {@code out_i = sum_j exp(s_ij - lse_i) v_j}. A query with no visible key has out 0 and
 * lse -inf. Query head h reads key/value head {@code h / (Hq / Hkv)} (GQA / MQA).
 */
public final class SparseAttentionRef {
  private SparseAttentionRef() {}

  /**
   * out [B, Hq, Sq, d] and lse [B, Hq, Sq] in double, row-major.
   *
   * @param out attention output
   * @param lse natural-log log-sum-exp (-inf for rows without a visible key)
   */
  public record Result(double[] out, double[] lse) {}

  /** Sizes of one problem, with inputs widened to float (exact for F16/BF16). */
  record Problem(float[] q, float[] k, float[] v, int b, int hq, int hkv, int sq, int sk, int d) {
    static Problem of(Tensor q, Tensor k, Tensor v) {
      return new Problem(q.toFloatArray(), k.toFloatArray(), v.toFloatArray(), (int) q.shape(0), (int) q.shape(1),
          (int) k.shape(1), (int) q.shape(2), (int) k.shape(2), (int) q.shape(3));
    }

    int qOffset(int bi, int h, int i) {
      return ((bi * hq + h) * sq + i) * d;
    }

    int kvOffset(int bi, int h, int j) {
      int kvHead = h / (hq / hkv);
      return ((bi * hkv + kvHead) * sk + j) * d;
    }
  }

  /**
   * The oracle: masked attention with the mask expanded element by element.
   *
   * @param q [B, Hq, Sq, d] host, F32/F16/BF16
   * @param k [B, Hkv, Sk, d] host
   * @param v [B, Hkv, Sk, d] host
   * @param qLens per-batch query lengths or null (= Sq)
   * @param kLens per-batch key lengths or null (= Sk)
   * @param softcap 0 = off
   */
  public static Result dense(Tensor q, Tensor k, Tensor v, MaskSpec mask, int[] qLens, int[] kLens, double scale,
      double softcap) {
    Problem p = Problem.of(q, k, v);
    double[] out = new double[p.b * p.hq * p.sq * p.d];
    double[] lse = new double[p.b * p.hq * p.sq];
    int[] keys = new int[p.sk];
    for (int bi = 0; bi < p.b; bi++) {
      int ql = qLens == null ? p.sq : qLens[bi];
      int kl = kLens == null ? p.sk : kLens[bi];
      for (int h = 0; h < p.hq; h++) {
        for (int i = 0; i < p.sq; i++) {
          int n = 0;
          for (int j = 0; j < p.sk; j++) {
            if (mask.visible(bi, h, i, j, ql, kl)) {
              keys[n++] = j;
            }
          }
          attendRow(p, bi, h, i, keys, n, scale, softcap, out, lse);
        }
      }
    }
    return new Result(out, lse);
  }

  /**
   * Attention over the layout's blocks only: FULL blocks without the mask, PARTIAL blocks with
   * the element predicate (and the lengths), then the token columns whose key block the row does
   * not list, with the predicate. Equal to {@link #dense} for any correct layout.
   */
  static Result blockSparse(Problem p, BlockLayout layout, double scale, double softcap) {
    MaskSpec mask = layout.mask();
    long[][] ptr = layout.hostPtrs();
    int[][] idx = layout.hostIdx();
    int bq = layout.blockQ();
    int bk = layout.blockK();
    double[] out = new double[p.b * p.hq * p.sq * p.d];
    double[] lse = new double[p.b * p.hq * p.sq];
    int[] keys = new int[p.sk];
    for (int bi = 0; bi < p.b; bi++) {
      int ql = layout.qLen(bi);
      int kl = layout.kLen(bi);
      int[][] columns = new int[p.hq][];
      for (int h = 0; h < p.hq; h++) {
        columns[h] = layout.columns(bi, h);
      }
      for (int h = 0; h < p.hq; h++) {
        for (int i = 0; i < p.sq; i++) {
          int r = layout.row(bi, h, i / bq);
          // Merge both lists in ascending block order so keys are visited in index order.
          int n = 0;
          int pp = (int) ptr[0][r];
          int pe = (int) ptr[0][r + 1];
          int fp = (int) ptr[1][r];
          int fe = (int) ptr[1][r + 1];
          while (pp < pe || fp < fe) {
            boolean full = pp >= pe || (fp < fe && idx[1][fp] < idx[0][pp]);
            int kb = full ? idx[1][fp++] : idx[0][pp++];
            // Keys at or past kLen do not exist for this batch: never gathered, as the kernels
            // never read their K / V rows (a FULL block of a compiled layout ends before kLen).
            int end = Math.min((kb + 1) * bk, Math.min(p.sk, kl));
            for (int j = kb * bk; j < end; j++) {
              if (full || mask.visible(bi, h, i, j, ql, kl)) {
                keys[n++] = j;
              }
            }
          }
          for (int j : columns[h]) {
            boolean listed = contains(idx[0], ptr[0][r], ptr[0][r + 1], j / bk)
                || contains(idx[1], ptr[1][r], ptr[1][r + 1], j / bk);
            if (!listed && mask.visible(bi, h, i, j, ql, kl)) {
              keys[n++] = j;
            }
          }
          attendRow(p, bi, h, i, keys, n, scale, softcap, out, lse);
        }
      }
    }
    return new Result(out, lse);
  }

  /** Whether the ascending list idx[from, to) holds kb. */
  private static boolean contains(int[] idx, long from, long to, int kb) {
    return java.util.Arrays.binarySearch(idx, (int) from, (int) to, kb) >= 0;
  }

  /** Softmax attention of query (bi, h, i) over keys[0, n). */
  private static void attendRow(Problem p, int bi, int h, int i, int[] keys, int n, double scale, double softcap,
      double[] out, double[] lse) {
    int row = (bi * p.hq + h) * p.sq + i;
    if (n == 0) {
      lse[row] = Double.NEGATIVE_INFINITY; // out stays 0
      return;
    }
    int qo = p.qOffset(bi, h, i);
    double[] s = new double[n];
    double max = Double.NEGATIVE_INFINITY;
    for (int t = 0; t < n; t++) {
      int ko = p.kvOffset(bi, h, keys[t]);
      double dot = 0;
      for (int c = 0; c < p.d; c++) {
        dot += (double) p.q[qo + c] * p.k[ko + c];
      }
      double x = scale * dot;
      if (softcap > 0) {
        x = softcap * Math.tanh(x / softcap);
      }
      s[t] = x;
      max = Math.max(max, x);
    }
    double sum = 0;
    for (int t = 0; t < n; t++) {
      s[t] = Math.exp(s[t] - max);
      sum += s[t];
    }
    lse[row] = max + Math.log(sum);
    int oo = row * p.d;
    for (int t = 0; t < n; t++) {
      int vo = p.kvOffset(bi, h, keys[t]);
      double w = s[t] / sum;
      for (int c = 0; c < p.d; c++) {
        out[oo + c] += w * p.v[vo + c];
      }
    }
  }

  /**
   * Merges two attention states over disjoint key sets (rows of d values plus one lse each):
   * {@code lse = log(exp lseA + exp lseB)}, {@code out = outA exp(lseA - lse) + outB exp(lseB -
   * lse)}; both -inf gives out 0 and lse -inf.
   */
  public static Result merge(double[] outA, double[] lseA, double[] outB, double[] lseB, int d) {
    int rows = lseA.length;
    double[] out = new double[rows * d];
    double[] lse = new double[rows];
    for (int r = 0; r < rows; r++) {
      double m = Math.max(lseA[r], lseB[r]);
      if (m == Double.NEGATIVE_INFINITY) {
        lse[r] = Double.NEGATIVE_INFINITY;
        continue;
      }
      double wa = Math.exp(lseA[r] - m);
      double wb = Math.exp(lseB[r] - m);
      double total = wa + wb;
      lse[r] = m + Math.log(total);
      wa /= total;
      wb /= total;
      for (int c = 0; c < d; c++) {
        out[r * d + c] = wa * outA[r * d + c] + wb * outB[r * d + c];
      }
    }
    return new Result(out, lse);
  }
}
