package io.github.llmkernels.attention;

import io.github.llmkernels.internal.PrefillArgs;
import io.github.llmkernels.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The Java reference of the sparse prefill estimators (the JAVA backend of
 * {@link SparsePrefill}), written for clarity. Two stages, as the kernels:
 *
 * <ol>
 *   <li>{@code score}: per (batch, query head) F32 scores computed in double from the inputs
 *       (widened exactly) and rounded to float once. Layout per head (llmk_prefill_scores_size):
 *       vertical-slash {@code [vert[Sk], slash[Sk]]} (sums over the last queries of the causal
 *       softmax per key column and per diagonal offset s = qa - k); block top-k
 *       {@code [nQB, nKB]} ({@code scale * qbar . kbar}, -inf beyond the diagonal block);
 *       FlexPrefill {@code [vert[Sk], slash[Sk], ahat logits[nKB], A[nQB, nKB]]} (vert and slash
 *       averaged over the last queries, logits of the mean scaled last query against the pooled
 *       keys, and the row softmax of pooled block scores over the reachable blocks, 0 beyond);
 *       XAttention {@code [nQB, nKB]} (antidiagonal softmax mass per block).
 *   <li>{@code select}: the tile selection from F32 scores only, with the rules every backend
 *       shares (llmk/prefill_math.h) so that equal scores give bit-identical selections: forced
 *       items first; then score descending, index ascending (NaN counts as -inf, -0 as +0,
 *       compared with primitive operators); budgets include the forced items; cumulative sums of
 *       masses (a value not > 0, NaN included, counts 0) in double, sequentially in that order,
 *       keeping items until {@code cum >= fraction * total} (total summed in index order; total 0
 *       keeps the forced items only).
 * </ol>
 *
 * <p>Positions: Sq <= Sk, bottom-right aligned (aligned query {@code qa = q + Sk - Sq}); query
 * block qb's last aligned query is {@code last(qb)} and key blocks {@code 0 .. diag(qb) =
 * last(qb) / bk} are reachable. Query head h reads KV head {@code h / (Hq / Hkv)}.
 */
public final class SparsePrefillRef {
  private SparsePrefillRef() {}

  /**
   * A selection and its head statistics.
   *
   * @param selection U8 [B, Hq, nQB, nKB]: 1 where the tile is selected
   * @param headCounts I64 [B, Hq, 5]: pattern code, verticals, slashes, blocks, columns
   * @param divergence F32 [B, Hq]: FlexPrefill's divergence, NaN otherwise
   */
  public record Selection(byte[] selection, long[] headCounts, float[] divergence, int[] columns) {}

  // ---- public entry points (tensors) ---------------------------------------------------------

  /** Scores [B * Hq * perHead] of options on host tensors q [B, Hq, Sq, d], k [B, Hkv, Sk, d]. */
  public static float[] score(Tensor q, Tensor k, PrefillOptions options) {
    PrefillParams p = PrefillParams.resolve("SparsePrefillRef.score", q, k, options, 0);
    return score(p, q.toFloatArray(), k.toFloatArray());
  }

  /** The selection from scores (as {@link #score} returns them) for these inputs and options. */
  public static Selection select(Tensor q, Tensor k, PrefillOptions options, float[] scores) {
    PrefillParams p = PrefillParams.resolve("SparsePrefillRef.select", q, k, options, 0);
    return select(p, scores);
  }

  // ---- scores --------------------------------------------------------------------------------

  static float[] score(PrefillParams p, float[] q, float[] k) {
    long per = p.scoresPerHead();
    long total = per * p.batch() * p.headsQ();
    if (total > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("SparsePrefillRef: " + total + " scores do not fit a Java array");
    }
    float[] out = new float[(int) total];
    Inputs in = new Inputs(p, q, k);
    for (int b = 0; b < p.batch(); b++) {
      for (int h = 0; h < p.headsQ(); h++) {
        int base = (int) ((b * (long) p.headsQ() + h) * per);
        switch (p.method()) {
          case VERTICAL_SLASH -> lastQuerySums(in, b, h, 1.0, out, base);
          case BLOCK_TOP_K -> blockTopKScores(in, b, h, out, base);
          case FLEX_PREFILL -> flexScores(in, b, h, out, base);
          case XATTENTION -> xattnScores(in, b, h, out, base);
          default -> throw new IllegalArgumentException("A-shape has no scores");
        }
      }
    }
    return out;
  }

  /** Inputs widened to float with index helpers. */
  private record Inputs(PrefillParams p, float[] q, float[] k) {
    int qRow(int b, int h, int i) {
      return ((b * p.headsQ() + h) * p.seqQ() + i) * p.headDim();
    }

    int kRow(int b, int h, int j) {
      int g = h / (p.headsQ() / p.headsKv());
      return ((b * p.headsKv() + g) * p.seqK() + j) * p.headDim();
    }

    double dot(int qo, int ko) {
      double s = 0;
      for (int c = 0; c < p.headDim(); c++) {
        s += (double) q[qo + c] * k[ko + c];
      }
      return s;
    }

    /** Mean of rows [from, to) of k for head h (count = to - from), double [d]. */
    double[] keyMean(int b, int h, int from, int to) {
      double[] m = new double[p.headDim()];
      for (int j = from; j < to; j++) {
        int o = kRow(b, h, j);
        for (int c = 0; c < m.length; c++) {
          m[c] += k[o + c];
        }
      }
      for (int c = 0; c < m.length; c++) {
        m[c] /= to - from;
      }
      return m;
    }

    double[] queryMean(int b, int h, int from, int to) {
      double[] m = new double[p.headDim()];
      for (int i = from; i < to; i++) {
        int o = qRow(b, h, i);
        for (int c = 0; c < m.length; c++) {
          m[c] += q[o + c];
        }
      }
      for (int c = 0; c < m.length; c++) {
        m[c] /= to - from;
      }
      return m;
    }

    double[][] keyBlockMeans(int b, int h) {
      int nkb = p.numKBlocks();
      double[][] out = new double[nkb][];
      for (int kb = 0; kb < nkb; kb++) {
        out[kb] = keyMean(b, h, kb * p.blockK(), Math.min((kb + 1) * p.blockK(), p.seqK()));
      }
      return out;
    }

    double[][] queryBlockMeans(int b, int h) {
      int nqb = p.numQBlocks();
      double[][] out = new double[nqb][];
      for (int qb = 0; qb < nqb; qb++) {
        out[qb] = queryMean(b, h, qb * p.blockQ(), Math.min((qb + 1) * p.blockQ(), p.seqQ()));
      }
      return out;
    }
  }

  private static double dot(double[] a, double[] b) {
    double s = 0;
    for (int c = 0; c < a.length; c++) {
      s += a[c] * b[c];
    }
    return s;
  }

  /**
   * Causal softmax of the last L queries: {@code vert[j] = factor * sum_r P[r, j]} into
   * out[base, base + Sk) and {@code slash[s] = factor * sum_r P[r, qa_r - s]} into
   * out[base + Sk, base + 2 Sk).
   */
  private static void lastQuerySums(Inputs in, int b, int h, double factor, float[] out, int base) {
    PrefillParams p = in.p();
    int sk = p.seqK();
    int lastQ = p.lastQ();
    double[] vert = new double[sk];
    double[] slash = new double[sk];
    double[] z = new double[sk];
    for (int r = 0; r < lastQ; r++) {
      int i = p.seqQ() - lastQ + r;
      int qa = i + p.offset();
      int qo = in.qRow(b, h, i);
      double max = Double.NEGATIVE_INFINITY;
      for (int j = 0; j <= qa; j++) {
        z[j] = p.scale() * in.dot(qo, in.kRow(b, h, j));
        max = Math.max(max, z[j]);
      }
      double sum = 0;
      for (int j = 0; j <= qa; j++) {
        z[j] = Math.exp(z[j] - max);
        sum += z[j];
      }
      for (int j = 0; j <= qa; j++) {
        double prob = z[j] / sum;
        vert[j] += prob;
        slash[qa - j] += prob;
      }
    }
    for (int j = 0; j < sk; j++) {
      out[base + j] = (float) (factor * vert[j]);
      out[base + sk + j] = (float) (factor * slash[j]);
    }
  }

  private static void blockTopKScores(Inputs in, int b, int h, float[] out, int base) {
    PrefillParams p = in.p();
    double[][] qbar = in.queryBlockMeans(b, h);
    double[][] kbar = in.keyBlockMeans(b, h);
    int nkb = p.numKBlocks();
    for (int qb = 0; qb < qbar.length; qb++) {
      int diag = p.diag(qb);
      for (int kb = 0; kb < nkb; kb++) {
        out[base + qb * nkb + kb] = kb <= diag ? (float) (p.scale() * dot(qbar[qb], kbar[kb]))
            : Float.NEGATIVE_INFINITY;
      }
    }
  }

  private static void flexScores(Inputs in, int b, int h, float[] out, int base) {
    PrefillParams p = in.p();
    int sk = p.seqK();
    int nkb = p.numKBlocks();
    int nqb = p.numQBlocks();
    int lastQ = p.lastQ();
    lastQuerySums(in, b, h, 1.0 / lastQ, out, base);
    double[][] kbar = in.keyBlockMeans(b, h);
    // ahat logits: the mean of the last queries (scaled) against every pooled key block.
    double[] qhat = in.queryMean(b, h, p.seqQ() - lastQ, p.seqQ());
    for (int kb = 0; kb < nkb; kb++) {
      out[base + 2 * sk + kb] = (float) (p.scale() * dot(qhat, kbar[kb]));
    }
    // A: row softmax of the pooled block scores over the reachable blocks.
    double[][] qbar = in.queryBlockMeans(b, h);
    int a0 = base + 2 * sk + nkb;
    double[] row = new double[nkb];
    for (int qb = 0; qb < nqb; qb++) {
      int diag = p.diag(qb);
      double max = Double.NEGATIVE_INFINITY;
      for (int kb = 0; kb <= diag; kb++) {
        row[kb] = p.scale() * dot(qbar[qb], kbar[kb]);
        max = Math.max(max, row[kb]);
      }
      double sum = 0;
      for (int kb = 0; kb <= diag; kb++) {
        row[kb] = Math.exp(row[kb] - max);
        sum += row[kb];
      }
      for (int kb = 0; kb < nkb; kb++) {
        out[a0 + qb * nkb + kb] = kb <= diag ? (float) (row[kb] / sum) : 0f;
      }
    }
  }

  /**
   * XAttention: reshaped row i holds the reversed queries {@code q[iS + S - 1 - t]}, reshaped key
   * row j the keys {@code k[jS + t]} (missing positions are zeros), so their dot product is the
   * antidiagonal of the S x S tile; logits {@code scale / S * dot} for {@code j <= i + (Sk - Sq) / S},
   * softmax per reshaped row, then summed per (query block, key block).
   */
  private static void xattnScores(Inputs in, int b, int h, float[] out, int base) {
    PrefillParams p = in.p();
    int s = p.stride();
    int rq = (p.seqQ() + s - 1) / s;
    int rk = (p.seqK() + s - 1) / s;
    int offR = p.offset() / s;
    int m = p.blockQ() / s;
    int nkb = p.numKBlocks();
    double[] acc = new double[p.numQBlocks() * nkb];
    double[] z = new double[rk];
    for (int i = 0; i < rq; i++) {
      int reach = Math.min(rk - 1, i + offR);
      double max = Double.NEGATIVE_INFINITY;
      for (int j = 0; j <= reach; j++) {
        double dot = 0;
        for (int t = 0; t < s; t++) {
          int qi = i * s + s - 1 - t;
          int kj = j * s + t;
          if (qi < p.seqQ() && kj < p.seqK()) {
            dot += in.dot(in.qRow(b, h, qi), in.kRow(b, h, kj));
          }
        }
        z[j] = p.scale() / s * dot;
        max = Math.max(max, z[j]);
      }
      double sum = 0;
      for (int j = 0; j <= reach; j++) {
        z[j] = Math.exp(z[j] - max);
        sum += z[j];
      }
      int qb = i / m;
      for (int j = 0; j <= reach; j++) {
        acc[qb * nkb + j / m] += z[j] / sum;
      }
    }
    for (int t = 0; t < acc.length; t++) {
      out[base + t] = (float) acc[t];
    }
  }

  // ---- selection -----------------------------------------------------------------------------

  /** NaN as -inf and -0 as +0: the comparison key (and summed value) of a score. */
  static float key(float x) {
    return x != x ? Float.NEGATIVE_INFINITY : x == 0 ? 0f : x;
  }

  static double key(double x) {
    return x != x ? Double.NEGATIVE_INFINITY : x == 0 ? 0.0 : x;
  }

  /** Mass of a value in cumulative sums: values not > 0 (negative, NaN) count as 0. */
  static double mass(double x) {
    return x > 0 ? x : 0;
  }

  /** Candidates sorted by key(value) descending, index ascending. */
  static int[] order(int[] candidates, double[] value) {
    Integer[] boxed = new Integer[candidates.length];
    for (int i = 0; i < boxed.length; i++) {
      boxed[i] = candidates[i];
    }
    Arrays.sort(boxed, (a, c) -> {
      double va = key(value[a]);
      double vc = key(value[c]);
      if (va > vc) {
        return -1;
      }
      if (va < vc) {
        return 1;
      }
      return Integer.compare(a, c);
    });
    int[] out = new int[boxed.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = boxed[i];
    }
    return out;
  }

  /**
   * The smallest decision margin of one head's selection: how far the scores are from changing
   * it. Top-k boundaries give {@code |a - b| / max(|a|, |b|)} between the last kept and the first
   * dropped item, cumulative rules {@code min(cum_n - target, target - cum_(n-1)) / total} and that
   * boundary's gap, FlexPrefill's decision {@code |d - tau|}. A backend whose scores differ within
   * tolerance can only select differently where the margin is that small.
   */
  static final class Margin {
    private double value = Double.POSITIVE_INFINITY;

    double value() {
      return value;
    }

    void add(double m) {
      value = Math.min(value, m);
    }

    /** Two ordered values at a keep / drop boundary. */
    void gap(double a, double b) {
      double ka = key(a);
      double kb = key(b);
      if (ka == kb) {
        add(0);
      } else if (!Double.isInfinite(ka) && !Double.isInfinite(kb)) {
        add(Math.abs(ka - kb) / Math.max(Math.abs(ka), Math.abs(kb)));
      }
    }
  }

  /** Budgeted top-k: the forced items, then the best others until {@code budget} items in all. */
  static int[] budgeted(int[] forced, int[] others, double[] value, long budget) {
    return budgeted(forced, others, value, budget, null);
  }

  static int[] budgeted(int[] forced, int[] others, double[] value, long budget, Margin margin) {
    int[] sorted = order(others, value);
    int extra = (int) Math.max(0, Math.min(sorted.length, budget - forced.length));
    if (margin != null && extra > 0 && extra < sorted.length) {
      margin.gap(value[sorted[extra - 1]], value[sorted[extra]]);
    }
    int[] out = Arrays.copyOf(forced, forced.length + extra);
    System.arraycopy(sorted, 0, out, forced.length, extra);
    return out;
  }

  /**
   * Cumulative-mass rule: the forced items, then the others in order, each one's mass added to
   * a double sum, until {@code cum >= fraction * total}; total is the mass of every candidate
   * summed in index order ({@code candidatesInIndexOrder}).
   */
  static int[] cumulative(int[] forced, int[] others, double[] value, int[] candidatesInIndexOrder, double fraction) {
    return cumulative(forced, others, value, candidatesInIndexOrder, fraction, null);
  }

  static int[] cumulative(int[] forced, int[] others, double[] value, int[] candidatesInIndexOrder, double fraction,
      Margin margin) {
    double total = 0;
    for (int c : candidatesInIndexOrder) {
      total += mass(value[c]);
    }
    double target = fraction * total;
    double cum = 0;
    for (int f : forced) {
      cum += mass(value[f]);
    }
    if (cum >= target) {
      if (margin != null && total > 0 && others.length > 0) {
        margin.add((cum - target) / total);
      }
      return forced.clone();
    }
    int[] sorted = order(others, value);
    int n = 0;
    double before = cum;
    while (n < sorted.length) {
      before = cum;
      cum += mass(value[sorted[n++]]);
      if (cum >= target) {
        break;
      }
    }
    if (margin != null && cum >= target && total > 0) {
      margin.add(Math.min(cum - target, target - before) / total);
      if (n < sorted.length) {
        margin.gap(value[sorted[n - 1]], value[sorted[n]]);
      }
    }
    int[] out = Arrays.copyOf(forced, forced.length + n);
    System.arraycopy(sorted, 0, out, forced.length, n);
    return out;
  }

  private static int[] range(int from, int to) {
    int[] out = new int[Math.max(0, to - from)];
    for (int i = 0; i < out.length; i++) {
      out[i] = from + i;
    }
    return out;
  }

  /** scores[from, from + n) widened to double (keys and masses are taken where used). */
  private static double[] values(float[] scores, int from, int n) {
    double[] out = new double[n];
    for (int i = 0; i < n; i++) {
      out[i] = scores[from + i];
    }
    return out;
  }

  static Selection select(PrefillParams p, float[] scores) {
    return select(p, scores, null);
  }

  /** The selection, and per head (B x Hq) its smallest decision margin into margins when non-null. */
  static Selection select(PrefillParams p, float[] scores, double[] margins) {
    long per = p.scoresPerHead();
    int heads = p.batch() * p.headsQ();
    if (scores.length != per * heads) {
      throw new IllegalArgumentException("SparsePrefillRef.select: scores must have B x Hq x " + per + " = "
          + per * heads + " values; got " + scores.length);
    }
    int tiles = p.numQBlocks() * p.numKBlocks();
    byte[] selection = new byte[heads * tiles];
    long[] counts = new long[heads * PrefillArgs.HEAD_COUNT_FIELDS];
    float[] divergence = new float[heads];
    Arrays.fill(divergence, Float.NaN);
    int[] columns = p.tokenColumns() ? new int[heads * p.verticalSize()] : null;
    for (int bh = 0; bh < heads; bh++) {
      int base = (int) (bh * per);
      Head head = new Head(p, selection, bh * tiles);
      long[] stats = switch (p.method()) {
        case VERTICAL_SLASH -> selectVerticalSlash(p, scores, base, head, columns, bh * p.verticalSize());
        case BLOCK_TOP_K -> selectBlockTopK(p, scores, base, head);
        case FLEX_PREFILL -> selectFlex(p, scores, base, head, divergence, bh);
        case XATTENTION -> selectXAttention(p, scores, base, head);
        default -> throw new IllegalArgumentException("A-shape has no selection");
      };
      System.arraycopy(stats, 0, counts, bh * PrefillArgs.HEAD_COUNT_FIELDS, stats.length);
      if (margins != null) {
        margins[bh] = head.margin.value();
      }
      counts[bh * PrefillArgs.HEAD_COUNT_FIELDS + 3] = head.count();
    }
    return new Selection(selection, counts, divergence, columns);
  }

  /** The selection bytes of one head. */
  private static final class Head {
    final PrefillParams p;
    final byte[] sel;
    final int base;
    final Margin margin = new Margin();

    Head(PrefillParams p, byte[] sel, int base) {
      this.p = p;
      this.sel = sel;
      this.base = base;
    }

    void mark(int qb, int kb) {
      sel[base + qb * p.numKBlocks() + kb] = 1;
    }

    long count() {
      long n = 0;
      for (int t = 0; t < p.numQBlocks() * p.numKBlocks(); t++) {
        n += sel[base + t];
      }
      return n;
    }
  }

  /** {pattern, verticals, slashes, blocks (filled later), columns}. */
  private static long[] stats(HeadPattern pattern, long verticals, long slashes, long columns) {
    return new long[] {pattern.code(), verticals, slashes, 0, columns};
  }

  /** Token columns (when p.tokenColumns()) go ascending into columnsOut[at, at + |C|). */
  private static long[] selectVerticalSlash(PrefillParams p, float[] scores, int base, Head head, int[] columnsOut,
      int at) {
    int sk = p.seqK();
    int[] columns = budgeted(range(0, p.forcedColumns()), range(p.forcedColumns(), sk), values(scores, base, sk),
        p.verticalSize(), head.margin);
    int[] slashes = budgeted(range(0, p.forcedSlashes()), range(p.forcedSlashes(), sk),
        values(scores, base + sk, sk), p.slashSize(), head.margin);
    if (columnsOut != null) {
      int[] sorted = columns.clone();
      Arrays.sort(sorted);
      System.arraycopy(sorted, 0, columnsOut, at, sorted.length);
    }
    int bk = p.blockK();
    for (int qb = 0; qb < p.numQBlocks(); qb++) {
      long q0 = (long) qb * p.blockQ() + p.offset();
      long last = p.last(qb);
      for (int c : columns) {
        if (columnsOut == null && c <= last) {
          head.mark(qb, c / bk);
        }
      }
      // Diagonal s crosses keys [q0 - s, last - s] of this row (one per query).
      for (int s : slashes) {
        long hi = last - s;
        if (hi < 0) {
          continue;
        }
        long lo = Math.max(0, q0 - s);
        for (long kb = lo / bk; kb <= hi / bk; kb++) {
          head.mark(qb, (int) kb);
        }
      }
    }
    return stats(HeadPattern.VERTICAL_SLASH, columns.length, slashes.length, columns.length);
  }

  private static long[] selectBlockTopK(PrefillParams p, float[] scores, int base, Head head) {
    int nkb = p.numKBlocks();
    boolean force = (p.flags() & PrefillArgs.FORCE_DIAGONAL) != 0;
    for (int qb = 0; qb < p.numQBlocks(); qb++) {
      int diag = p.diag(qb);
      double[] value = values(scores, base + qb * nkb, nkb);
      int[] forced = force ? new int[] {diag} : new int[0];
      int[] others = force ? range(0, diag) : range(0, diag + 1);
      for (int kb : budgeted(forced, others, value, Math.min(p.topK(), diag + 1L), head.margin)) {
        head.mark(qb, kb);
      }
    }
    return stats(HeadPattern.BLOCK_TOP_K, 0, 0, 0);
  }

  private static long[] selectXAttention(PrefillParams p, float[] scores, int base, Head head) {
    int nkb = p.numKBlocks();
    for (int qb = 0; qb < p.numQBlocks(); qb++) {
      int diag = p.diag(qb);
      double[] value = values(scores, base + qb * nkb, nkb);
      int[] forced = diag == 0 ? new int[] {0} : new int[] {0, diag};
      int[] others = range(1, diag);
      for (int kb : cumulative(forced, others, value, range(0, diag + 1), p.threshold(), head.margin)) {
        head.mark(qb, kb);
      }
    }
    return stats(HeadPattern.XATTENTION, 0, 0, 0);
  }

  /** Items of the minimal prefix (order of section 0) whose cumulative value reaches fraction of the total. */
  private static int prefixLength(double[] value, double fraction, Margin margin) {
    int[] all = range(0, value.length);
    return cumulative(new int[0], all, value, all, fraction, margin).length;
  }

  private static long[] selectFlex(PrefillParams p, float[] scores, int base, Head head, float[] divergence, int bh) {
    int sk = p.seqK();
    int nkb = p.numKBlocks();
    int nqb = p.numQBlocks();
    int block = p.blockK();
    int minB = p.minBudgetBlocks();
    int maxB = p.maxBudgetBlocks();
    if (p.seqQ() <= Math.max(2L * block, (long) minB * block)) {
      for (int qb = 0; qb < nqb; qb++) {
        for (int kb = 0; kb <= p.diag(qb); kb++) {
          head.mark(qb, kb);
        }
      }
      return stats(HeadPattern.DENSE, 0, 0, 0);
    }
    double[] vert = values(scores, base, sk);
    double[] slash = values(scores, base + sk, sk);
    int tv = prefixLength(vert, p.gamma(), head.margin);
    int ts = prefixLength(slash, p.gamma(), head.margin);
    long nV = Math.max(minB, Math.min(tv / block + 1L, maxB));
    long nS = Math.max(minB, Math.min(ts / block + 1L, maxB));
    // Pool per key block (vertical) and per diagonal-offset bin of one block (slash).
    double[] vb = new double[nkb];
    double[] sb = new double[nkb];
    for (int j = 0; j < sk; j++) {
      vb[j / block] += mass(vert[j]);
      sb[j / block] += mass(slash[j]);
    }
    double d = divergence(values(scores, base + 2 * sk, nkb), vb);
    divergence[bh] = (float) d;
    boolean queryAware = d < p.tau();
    head.margin.add(Math.abs(d - p.tau()));
    if (queryAware) {
      nV = minB;
      nS = minB;
    }
    int[] verticals = budgeted(new int[] {0}, range(1, nkb), vb, nV, head.margin);
    int[] slashBins = budgeted(new int[] {0}, range(1, nkb), sb, nS, head.margin);
    for (int qb = 0; qb < nqb; qb++) {
      int diag = p.diag(qb);
      for (int kb : verticals) {
        if (kb <= diag) {
          head.mark(qb, kb);
        }
      }
      for (int t : slashBins) {
        if (diag - t >= 0) {
          head.mark(qb, diag - t);
        }
      }
    }
    if (queryAware) {
      // Global selection over every reachable (qb, kb), flat index qb * nKB + kb.
      int a0 = base + 2 * sk + nkb;
      double[] value = values(scores, a0, nqb * nkb);
      int reachable = 0;
      for (int qb = 0; qb < nqb; qb++) {
        reachable += p.diag(qb) + 1;
      }
      int[] candidates = new int[reachable];
      int n = 0;
      for (int qb = 0; qb < nqb; qb++) {
        for (int kb = 0; kb <= p.diag(qb); kb++) {
          candidates[n++] = qb * nkb + kb;
        }
      }
      for (int t : cumulative(new int[0], candidates, value, candidates, p.gamma(), head.margin)) {
        head.mark(t / nkb, t % nkb);
      }
    }
    return stats(queryAware ? HeadPattern.QUERY_AWARE : HeadPattern.VERTICAL_SLASH, verticals.length,
        slashBins.length, 0);
  }

  /**
   * sqrt of the Jensen-Shannon divergence between softmax(logits) and abar (natural log,
   * 0 log 0 = 0), clamped at 0 before the root (a NaN sum too).
   */
  static double divergence(double[] logits, double[] abar) {
    int n = logits.length;
    double max = Double.NEGATIVE_INFINITY;
    for (double x : logits) {
      max = x > max ? x : max; // a NaN logit is skipped here, as by the kernels
    }
    double[] a = new double[n];
    double sum = 0;
    for (int i = 0; i < n; i++) {
      a[i] = Math.exp(logits[i] - max);
      sum += a[i];
    }
    double klA = 0;
    double klB = 0;
    for (int i = 0; i < n; i++) {
      a[i] /= sum;
      double m = 0.5 * (a[i] + abar[i]);
      if (a[i] > 0) {
        klA += a[i] * Math.log(a[i] / m);
      }
      if (abar[i] > 0) {
        klB += abar[i] * Math.log(abar[i] / m);
      }
    }
    double js = 0.5 * klA + 0.5 * klB;
    return Math.sqrt(js > 0 ? js : 0);
  }

  /** Per-head tile counts of a layout ([B * Hq], broadcast rows counted for every head they serve). */
  static long[] headTiles(BlockLayout layout) {
    BlockCsr csr = layout.toCsr();
    int b = layout.batch();
    int hq = layout.heads();
    long[] out = new long[b * hq];
    for (int bi = 0; bi < b; bi++) {
      for (int h = 0; h < hq; h++) {
        for (int qb = 0; qb < layout.numQBlocks(); qb++) {
          int r = layout.row(bi, h, qb);
          out[bi * hq + h] += csr.indptr()[r + 1] - csr.indptr()[r];
        }
      }
    }
    return out;
  }

  /** Selected tiles of one head as (qb, kb) pairs, for messages. */
  static List<int[]> tiles(byte[] selection, int head, int nqb, int nkb) {
    List<int[]> out = new ArrayList<>();
    for (int t = 0; t < nqb * nkb; t++) {
      if (selection[head * nqb * nkb + t] != 0) {
        out.add(new int[] {t / nkb, t % nkb});
      }
    }
    return out;
  }
}
