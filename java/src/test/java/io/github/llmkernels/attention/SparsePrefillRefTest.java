package io.github.llmkernels.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.Tolerances;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The Java reference against hand-built cases with closed forms: uniform attention (q = 0) and
 * one-hot attention (each query sees one key with logit 40), plus the selection rules on crafted
 * values.
 */
class SparsePrefillRefTest {
  private static final Exec JAVA = Exec.backend(Backend.JAVA);
  private static final double TOL = Tolerances.PREFILL_CLOSED_FORM_ATOL;

  private static Tensor zeros(long... shape) {
    return Tensor.fromFloats(new float[(int) Arrays.stream(shape).reduce(1, (a, b) -> a * b)], DType.F32, shape);
  }

  private static Tensor ones(long... shape) {
    float[] f = new float[(int) Arrays.stream(shape).reduce(1, (a, b) -> a * b)];
    Arrays.fill(f, 1f);
    return Tensor.fromFloats(f, DType.F32, shape);
  }

  /** Uniform causal attention of the last L queries: vert[j] and slash[s] in closed form. */
  private static double[][] uniformSums(int sq, int sk, int lastQ) {
    double[] vert = new double[sk];
    double[] slash = new double[sk];
    for (int r = 0; r < lastQ; r++) {
      int qa = sq - lastQ + r + sk - sq;
      for (int j = 0; j <= qa; j++) {
        vert[j] += 1.0 / (qa + 1);
        slash[qa - j] += 1.0 / (qa + 1);
      }
    }
    return new double[][] {vert, slash};
  }

  private static void assertNear(double want, float got, String what) {
    assertTrue(Math.abs(got - want) <= TOL * Math.max(1, Math.abs(want)), () -> what + ": got " + got + ", want "
        + want);
  }

  @Test
  void verticalSlashUniformAttention() {
    int sq = 50;
    int sk = 70;
    int lastQ = 10;
    int bk = 8;
    VerticalSlashOptions o = new VerticalSlashOptions(lastQ, 12, 5, 3, 2, bk, 0, VerticalSlashOptions.ColumnMode.BLOCKS);
    try (Tensor q = zeros(1, 2, sq, 8); Tensor k = ones(1, 1, sk, 8)) {
      float[] scores = SparsePrefillRef.score(q, k, o);
      double[] margins = new double[2];
      SparsePrefillRef.select(PrefillParams.resolve("test", q, k, o, 0), scores, margins);
      assertArrayEquals(new double[] {0, 0}, margins, "equal column sums: ties at the budget boundary");
      double[][] want = uniformSums(sq, sk, lastQ);
      for (int h = 0; h < 2; h++) {
        for (int j = 0; j < sk; j++) {
          assertNear(want[0][j], scores[h * 2 * sk + j], "vert[" + j + "] head " + h);
          assertNear(want[1][j], scores[h * 2 * sk + sk + j], "slash[" + j + "] head " + h);
        }
      }
      try (PrefillEstimate e = SparsePrefill.estimate(q, k, o, JAVA)) {
        // Columns 0..11 and diagonals 0..4 win (ties to the lower index), inflated to blocks.
        BlockLayout l = e.layout();
        byte[] tiles = PrefillTestUtil.tiles(l);
        PrefillTestUtil.Shape s = new PrefillTestUtil.Shape(1, 2, 1, sq, sk, 8, bk);
        for (int h = 0; h < 2; h++) {
          HeadInfo info = e.head(0, h);
          assertEquals(new HeadInfo(0, h, HeadPattern.VERTICAL_SLASH, 12, 5, info.blocks(), 12, Double.NaN), info);
          long count = 0;
          for (int qb = 0; qb < l.numQBlocks(); qb++) {
            long q0 = (long) qb * bk + sk - sq;
            long last = PrefillTestUtil.last(s, qb, bk);
            for (int kb = 0; kb < l.numKBlocks(); kb++) {
              boolean reachable = (long) kb * bk <= last;
              boolean column = kb * bk <= 11;
              boolean slash = (kb + 1L) * bk - 1 >= q0 - 4;
              boolean expected = reachable && (column || slash);
              assertEquals(expected, PrefillTestUtil.listed(tiles, l, 0, h, qb, kb), "tile " + qb + ", " + kb);
              count += expected ? 1 : 0;
            }
          }
          assertEquals(count, info.blocks());
        }
        PrefillTestUtil.assertCausalTiles(l, () -> "uniform VS");
      }
    }
  }

  /** Query i sees key i - 5 with logit 40 (d 64 >= Sk one-hot directions, scale 1). */
  private static Tensor[] oneHotSlash(int s, int offset) {
    float c = (float) Math.sqrt(40);
    float[] q = new float[s * 64];
    float[] k = new float[s * 64];
    for (int i = 0; i < s; i++) {
      k[i * 64 + i] = c;
      if (i >= offset) {
        q[i * 64 + i - offset] = c;
      }
    }
    return new Tensor[] {Tensor.fromFloats(q, DType.F32, 1, 1, s, 64), Tensor.fromFloats(k, DType.F32, 1, 1, s, 64)};
  }

  @Test
  void verticalSlashOneHotSlash() {
    int s = 48;
    Tensor[] qk = oneHotSlash(s, 5);
    VerticalSlashOptions o = new VerticalSlashOptions(8, 0, 1, 0, 0, 8, 1.0, VerticalSlashOptions.ColumnMode.BLOCKS);
    try (Tensor q = qk[0]; Tensor k = qk[1]) {
      float[] scores = SparsePrefillRef.score(q, k, o);
      assertNear(8, scores[s + 5], "slash[5]");
      double[] margins = new double[1];
      SparsePrefillRef.select(PrefillParams.resolve("test", q, k, o, 0), scores, margins);
      assertEquals(1, margins[0], 1e-6, "slash 5 (mass 8) against the next diagonal (mass ~1e-15)");
      for (int j = 35; j <= 42; j++) {
        assertNear(1, scores[j], "vert[" + j + "]");
      }
      try (PrefillEstimate e = SparsePrefill.estimate(q, k, o, JAVA)) {
        BlockLayout l = e.layout();
        byte[] tiles = PrefillTestUtil.tiles(l);
        for (int qb = 0; qb < l.numQBlocks(); qb++) {
          for (int kb = 0; kb < l.numKBlocks(); kb++) {
            boolean want = kb == qb || kb == qb - 1;
            assertEquals(want, PrefillTestUtil.listed(tiles, l, 0, 0, qb, kb), "tile " + qb + ", " + kb);
          }
        }
        // Every query's whole attention mass (key i - 5) lies in a listed tile.
        for (int i = 5; i < s; i++) {
          assertTrue(PrefillTestUtil.listed(tiles, l, 0, 0, i / 8, (i - 5) / 8), "query " + i);
        }
        assertEquals(new HeadInfo(0, 0, HeadPattern.VERTICAL_SLASH, 0, 1, 2 * l.numQBlocks() - 1, 0, Double.NaN),
            e.head(0, 0));
      }
    }
  }

  @Test
  void blockTopKUniformAndOneHot() {
    int sq = 40;
    int sk = 64;
    int bk = 8;
    try (Tensor q = zeros(1, 1, sq, 4); Tensor k = ones(1, 1, sk, 4)) {
      // All scores equal: each row keeps its lowest min(topK, reachable) blocks.
      try (PrefillEstimate e = SparsePrefill.estimate(q, k, new BlockTopKOptions(3, bk, false, 0), JAVA)) {
        byte[] tiles = PrefillTestUtil.tiles(e.layout());
        for (int qb = 0; qb < 5; qb++) {
          for (int kb = 0; kb < 8; kb++) {
            assertEquals(kb < 3, PrefillTestUtil.listed(tiles, e.layout(), 0, 0, qb, kb), "tile " + qb + ", " + kb);
          }
        }
      }
      // Forced diagonal counts in the budget: diag + the lowest other.
      try (PrefillEstimate e = SparsePrefill.estimate(q, k, new BlockTopKOptions(2, bk, true, 0), JAVA)) {
        byte[] tiles = PrefillTestUtil.tiles(e.layout());
        for (int qb = 0; qb < 5; qb++) {
          int diag = (qb * bk + bk - 1 + sk - sq) / bk;
          for (int kb = 0; kb < 8; kb++) {
            assertEquals(kb == 0 || kb == diag, PrefillTestUtil.listed(tiles, e.layout(), 0, 0, qb, kb),
                "forced tile " + qb + ", " + kb);
          }
        }
      }
      // topK 0 keeps nothing, or only the diagonal when forced.
      try (PrefillEstimate e = SparsePrefill.estimate(q, k, new BlockTopKOptions(0, bk, false, 0), JAVA)) {
        assertEquals(0, e.layout().partialBlockCount() + e.layout().fullBlockCount());
      }
      try (PrefillEstimate e = SparsePrefill.estimate(q, k, new BlockTopKOptions(0, bk, true, 0), JAVA)) {
        assertEquals(5, e.layout().partialBlockCount() + e.layout().fullBlockCount());
      }
    }
    // Key block 3 pooled along the query mean: score 5 * scale, all others 0.
    float[] kf = new float[sk * 4];
    for (int j = 24; j < 32; j++) {
      kf[j * 4] = 5;
    }
    try (Tensor q = ones(1, 1, sq, 4); Tensor k = Tensor.fromFloats(kf, DType.F32, 1, 1, sk, 4)) {
      float[] scores = SparsePrefillRef.score(q, k, new BlockTopKOptions(1, bk, false, 0));
      assertNear(2.5, scores[3], "score[0, 3] = scale 1/2 * 5");
      assertEquals(Float.NEGATIVE_INFINITY, scores[4], "row 0 (diagonal block 3) beyond its diagonal");
      try (PrefillEstimate e = SparsePrefill.estimate(q, k, new BlockTopKOptions(1, bk, false, 0), JAVA)) {
        for (int qb = 0; qb < 5; qb++) {
          BlockLayout.KvBlocks kv = e.layout().kvBlocks(0, 0, qb);
          int[] all = concat(kv.partial(), kv.full());
          assertArrayEquals(new int[] {3}, all, "row " + qb);
        }
      }
    }
  }

  private static int[] concat(int[] a, int[] b) {
    int[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    Arrays.sort(out);
    return out;
  }

  @Test
  void xattentionUniformAttention() {
    int sq = 40;
    int sk = 56;
    int stride = 4;
    int bk = 8;
    XAttentionOptions o = new XAttentionOptions(stride, 0.6, bk, 0);
    try (Tensor q = zeros(1, 1, sq, 4); Tensor k = ones(1, 1, sk, 4)) {
      float[] scores = SparsePrefillRef.score(q, k, o);
      int m = bk / stride;
      int offR = (sk - sq) / stride;
      int nkb = 7;
      double[] want = new double[5 * nkb];
      for (int i = 0; i < sq / stride; i++) {
        for (int j = 0; j <= i + offR; j++) {
          want[(i / m) * nkb + j / m] += 1.0 / (i + offR + 1);
        }
      }
      for (int t = 0; t < want.length; t++) {
        assertNear(want[t], scores[t], "A[" + t / nkb + ", " + t % nkb + "]");
      }
      try (PrefillEstimate e = SparsePrefill.estimate(q, k, o, JAVA)) {
        byte[] tiles = PrefillTestUtil.tiles(e.layout());
        for (int qb = 0; qb < 5; qb++) {
          int diag = (qb * bk + bk - 1 + sk - sq) / bk;
          // Equal interior masses: 0 and diag, then 1, 2, ... until 60% of the row's mass.
          double total = 0;
          for (int kb = 0; kb <= diag; kb++) {
            total += scores[qb * nkb + kb];
          }
          double cum = scores[qb * nkb] + (diag > 0 ? scores[qb * nkb + diag] : 0);
          int next = 1;
          while (cum < 0.6 * total && next < diag) {
            cum += scores[qb * nkb + next++];
          }
          for (int kb = 0; kb < nkb; kb++) {
            boolean wantTile = kb == 0 || kb == diag || (kb >= 1 && kb < next);
            assertEquals(wantTile, PrefillTestUtil.listed(tiles, e.layout(), 0, 0, qb, kb), "tile " + qb + ", " + kb);
          }
          assertTrue(next < diag || diag <= 1, "the threshold must leave some blocks out in row " + qb);
        }
        assertEquals(HeadPattern.XATTENTION, e.head(0, 0).pattern());
      }
    }
  }

  @Test
  void flexUniformScoresAndDecisions() {
    int s = 96;
    int bk = 16;
    int lastQ = 16;
    FlexPrefillOptions o = new FlexPrefillOptions(0.9, 0.1, 16, Integer.MAX_VALUE, bk, lastQ, 0);
    try (Tensor q = zeros(1, 1, s, 4); Tensor k = ones(1, 1, s, 4)) {
      float[] scores = SparsePrefillRef.score(q, k, o);
      double[][] want = uniformSums(s, s, lastQ);
      for (int j = 0; j < s; j++) {
        assertNear(want[0][j] / lastQ, scores[j], "vert[" + j + "]");
        assertNear(want[1][j] / lastQ, scores[s + j], "slash[" + j + "]");
      }
      int nkb = 6;
      for (int kb = 0; kb < nkb; kb++) {
        assertNear(0, scores[2 * s + kb], "ahat logit " + kb);
      }
      for (int qb = 0; qb < 6; qb++) {
        for (int kb = 0; kb < nkb; kb++) {
          assertNear(kb <= qb ? 1.0 / (qb + 1) : 0, scores[2 * s + nkb + qb * nkb + kb], "A[" + qb + ", " + kb + "]");
        }
      }
      // tau 1 > any divergence: query-aware; tau 0: vertical-slash.
      try (PrefillEstimate e = SparsePrefill.estimate(q, k, o.withTau(1), JAVA)) {
        HeadInfo info = e.head(0, 0);
        assertEquals(HeadPattern.QUERY_AWARE, info.pattern());
        assertTrue(info.divergence() >= 0 && info.divergence() <= Math.sqrt(Math.log(2)) + 1e-6, info::toString);
        assertEquals(1, info.verticals());
        assertEquals(1, info.slashes());
      }
      try (PrefillEstimate e = SparsePrefill.estimate(q, k, o.withTau(0), JAVA)) {
        assertEquals(HeadPattern.VERTICAL_SLASH, e.head(0, 0).pattern());
      }
      // Short prompt: Sq = 96 <= max(2 * 16, ceil(96 / 16) * 16) = 96: dense causal.
      try (PrefillEstimate e = SparsePrefill.estimate(q, k, o.withBudgets(96, Integer.MAX_VALUE), JAVA)) {
        HeadInfo info = e.head(0, 0);
        assertEquals(HeadPattern.DENSE, info.pattern());
        assertTrue(Double.isNaN(info.divergence()));
        assertEquals(21, info.blocks()); // 1 + 2 + ... + 6 reachable tiles
        assertEquals(21, e.layout().partialBlockCount() + e.layout().fullBlockCount());
        assertEquals(21 * 256.0 / (s * s), e.density(), 1e-12); // whole tiles count, PARTIAL ones included
      }
    }
  }

  @Test
  void divergenceEndpoints() {
    double[] uniformLogits = {0, 0, 0, 0};
    assertEquals(0, SparsePrefillRef.divergence(uniformLogits, new double[] {0.25, 0.25, 0.25, 0.25}), 1e-12);
    double[] peaked = {1000, 0, 0, 0};
    assertEquals(Math.sqrt(Math.log(2)), SparsePrefillRef.divergence(peaked, new double[] {0, 0.5, 0.5, 0}), 1e-12);
  }

  @Test
  void selectionRulesOnCraftedValues() {
    assertEquals(0f, SparsePrefillRef.key(-0f));
    assertEquals(Float.floatToRawIntBits(0f), Float.floatToRawIntBits(SparsePrefillRef.key(-0f)));
    assertEquals(Float.NEGATIVE_INFINITY, SparsePrefillRef.key(Float.NaN));
    double[] v = {1, Double.NEGATIVE_INFINITY, 2, 2, 0, 0, 5};
    int[] all = {0, 1, 2, 3, 4, 5, 6};
    // score descending, ties to the lower index, -inf (and so NaN) last
    assertArrayEquals(new int[] {6, 2, 3, 0, 4, 5, 1}, SparsePrefillRef.order(all, v));
    // forced first, counted in the budget; forced beyond the budget all kept
    assertArrayEquals(new int[] {1, 6, 2}, SparsePrefillRef.budgeted(new int[] {1}, new int[] {0, 2, 3, 4, 5, 6}, v,
        3));
    assertArrayEquals(new int[] {1, 4}, SparsePrefillRef.budgeted(new int[] {1, 4}, new int[] {0, 2}, v, 1));
    assertArrayEquals(new int[] {6, 2, 3, 0, 4, 5, 1}, SparsePrefillRef.budgeted(new int[0], all, v, 100));
    // cumulative: a partial sum landing exactly on the target stops there
    double[] w = {0.25, 0.25, 0.25, 0.25};
    int[] four = {0, 1, 2, 3};
    assertArrayEquals(new int[] {0, 1}, SparsePrefillRef.cumulative(new int[0], four, w, four, 0.5));
    assertArrayEquals(new int[] {0, 1, 2}, SparsePrefillRef.cumulative(new int[0], four, w, four, 0.51));
    assertArrayEquals(new int[] {3, 0}, SparsePrefillRef.cumulative(new int[] {3}, new int[] {0, 1, 2}, w, four, 0.5));
    // forced mass alone reaching the target keeps only the forced items; total 0 likewise
    assertArrayEquals(new int[] {3, 2}, SparsePrefillRef.cumulative(new int[] {3, 2}, new int[] {0, 1}, w, four, 0.5));
    double[] zero = {0, 0, 0};
    int[] three = {0, 1, 2};
    assertArrayEquals(new int[] {2}, SparsePrefillRef.cumulative(new int[] {2}, new int[] {0, 1}, zero, three, 0.9));
    assertArrayEquals(new int[0], SparsePrefillRef.cumulative(new int[0], three, zero, three, 0.9));
  }
}
