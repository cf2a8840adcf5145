package io.github.llmkernels.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Properties of every estimator on every backend, on fresh random inputs: forced items always
 * present, budgets respected, no tile above the causal diagonal (and tiles classified as causal
 * alone would), XAttention's kept mass reaches the threshold minimally, FlexPrefill's budgets lie
 * in [minB, maxB], A-shape is exactly its mask, head statistics agree with the layout, and larger
 * budgets / gamma / threshold never remove a tile.
 */
class SparsePrefillPropertyTest {

  static Stream<Arguments> cases() {
    return casesFor(TestBackends.host(), PrefillTestUtil.SHAPES);
  }

  static Stream<Arguments> gpuCases() {
    return casesFor(List.of(Backend.CUDA), PrefillTestUtil.SHAPES);
  }

  static Stream<Arguments> casesFor(List<Backend> backends, PrefillTestUtil.Shape[] shapes) {
    Stream.Builder<Arguments> out = Stream.builder();
    for (Backend backend : backends) {
      for (PrefillTestUtil.Shape s : shapes) {
        out.add(Arguments.of(backend, s));
      }
    }
    return out.build();
  }

  static Stream<Arguments> monotoneCases() {
    return casesFor(TestBackends.host(), PrefillTestUtil.SMALL);
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void propertiesHold(Backend backend, PrefillTestUtil.Shape shape) {
    check(backend, shape);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("gpuCases")
  void cudaPropertiesHold(Backend backend, PrefillTestUtil.Shape shape) {
    TestBackends.assumeCuda();
    check(backend, shape);
  }

  private static void check(Backend backend, PrefillTestUtil.Shape s) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    Exec exec = Exec.backend(backend);
    try (Tensor qHost = PrefillTestUtil.queries(rnd, DType.F32, s);
        Tensor kHost = PrefillTestUtil.keys(rnd, DType.F32, s);
        Tensor q = PrefillTestUtil.on(backend, qHost);
        Tensor k = PrefillTestUtil.on(backend, kHost)) {
      for (PrefillOptions o : PrefillTestUtil.options(s)) {
        String ctx = backend + " " + s + " " + o + ", seed " + seed;
        try (PrefillEstimate e = SparsePrefill.estimate(q, k, o, exec)) {
          BlockLayout l = e.layout();
          assertEquals(o, e.options(), ctx);
          assertEquals(s.b() * s.hq(), e.heads().size(), ctx);
          assertTrue(e.density() > 0 && e.density() <= 1, () -> "density " + e.density() + ": " + ctx);
          if (o instanceof AShapeOptions a) {
            checkAShape(l, a, ctx);
            continue;
          }
          PrefillTestUtil.assertCausalTiles(l, () -> ctx);
          byte[] tiles = PrefillTestUtil.tiles(l);
          for (int b = 0; b < s.b(); b++) {
            for (int h = 0; h < s.hq(); h++) {
              HeadInfo info = e.head(b, h);
              assertEquals(b, info.batch(), ctx);
              assertEquals(h, info.head(), ctx);
              long listed = 0;
              for (int qb = 0; qb < l.numQBlocks(); qb++) {
                for (int kb = 0; kb < l.numKBlocks(); kb++) {
                  listed += PrefillTestUtil.listed(tiles, l, b, h, qb, kb) ? 1 : 0;
                }
              }
              assertEquals(listed, info.blocks(), () -> "blocks of head " + info + ": " + ctx);
              String where = " head (" + b + ", " + h + "): " + ctx;
              if (o instanceof VerticalSlashOptions v) {
                checkVerticalSlash(s, l, tiles, b, h, v, info, where);
              } else if (o instanceof BlockTopKOptions t) {
                checkTopK(s, l, tiles, b, h, t, where);
              } else if (o instanceof FlexPrefillOptions f) {
                checkFlex(s, l, tiles, b, h, f, info, where);
              } else if (o instanceof XAttentionOptions) {
                checkForcedPair(s, l, tiles, b, h, where);
                assertEquals(HeadPattern.XATTENTION, info.pattern(), where);
              }
            }
          }
          if (o instanceof XAttentionOptions x) {
            checkXAttentionMass(q, k, x, tiles, backend, exec, ctx);
          }
        }
      }
    }
  }

  private static void checkAShape(BlockLayout l, AShapeOptions a, String ctx) {
    try (BlockLayout want = BlockLayout.compile(a.mask(), l.batch(), l.heads(), l.seqQ(), l.seqK(), a.block(),
        a.block(), null, null, io.github.llmkernels.tensor.Device.CPU, Exec.backend(Backend.JAVA))) {
      assertEquals(1, l.layoutBatch(), ctx);
      assertEquals(1, l.layoutHeads(), ctx);
      for (int qb = 0; qb < l.numQBlocks(); qb++) {
        assertEquals(java.util.Arrays.toString(want.kvBlocks(0, 0, qb).partial()),
            java.util.Arrays.toString(l.kvBlocks(0, 0, qb).partial()), ctx);
        assertEquals(java.util.Arrays.toString(want.kvBlocks(0, 0, qb).full()),
            java.util.Arrays.toString(l.kvBlocks(0, 0, qb).full()), ctx);
      }
    }
  }

  private static void checkVerticalSlash(PrefillTestUtil.Shape s, BlockLayout l, byte[] tiles, int b, int h,
      VerticalSlashOptions v, HeadInfo info, String where) {
    int sk = s.sk();
    int fc = Math.min(v.forcedColumns(), sk);
    int fs = Math.min(v.forcedSlashes(), sk);
    assertEquals(HeadPattern.VERTICAL_SLASH, info.pattern(), where);
    assertEquals(Math.min(sk, Math.max(v.verticalSize(), fc)), info.verticals(), where);
    assertEquals(Math.min(sk, Math.max(v.slashSize(), fs)), info.slashes(), where);
    assertEquals(info.verticals(), info.columns(), where);
    int bk = l.blockK();
    boolean tokens = v.columnMode() == VerticalSlashOptions.ColumnMode.TOKENS;
    int[] columns = l.columns(b, h);
    if (tokens) { // the token list: |C| ascending keys, the forced ones first
      assertEquals(info.verticals(), columns.length, "token columns" + where);
      for (int i = 0; i < columns.length; i++) {
        assertTrue(columns[i] >= 0 && columns[i] < sk && (i == 0 || columns[i] > columns[i - 1]),
            "token columns ascending in [0, Sk)" + where);
        assertTrue(i >= fc || columns[i] == i, "forced column " + i + " in the token list" + where);
      }
    } else {
      assertEquals(0, columns.length, "BLOCKS keeps no token list" + where);
    }
    for (int qb = 0; qb < l.numQBlocks(); qb++) {
      long last = PrefillTestUtil.last(s, qb, l.blockQ());
      long first = (long) qb * l.blockQ() + sk - s.sq();
      for (int c = 0; c < fc && !tokens; c++) {
        if (c <= last && !PrefillTestUtil.listed(tiles, l, b, h, qb, c / bk)) {
          fail("forced column " + c + " missing in row " + qb + where);
        }
      }
      for (int d = 0; d < fs; d++) {
        for (long key = Math.max(0, first - d); key <= last - d; key++) {
          if (!PrefillTestUtil.listed(tiles, l, b, h, qb, (int) (key / bk))) {
            fail("forced diagonal " + d + " (key " + key + ") missing in row " + qb + where);
          }
        }
      }
    }
  }

  private static void checkTopK(PrefillTestUtil.Shape s, BlockLayout l, byte[] tiles, int b, int h,
      BlockTopKOptions t, String where) {
    for (int qb = 0; qb < l.numQBlocks(); qb++) {
      int diag = (int) (PrefillTestUtil.last(s, qb, l.blockQ()) / l.blockK());
      int count = 0;
      for (int kb = 0; kb < l.numKBlocks(); kb++) {
        count += PrefillTestUtil.listed(tiles, l, b, h, qb, kb) ? 1 : 0;
      }
      int want = Math.max(t.forceDiagonal() ? 1 : 0, Math.min(t.topK(), diag + 1));
      assertEquals(want, count, "tiles in row " + qb + where);
      if (t.forceDiagonal()) {
        assertTrue(PrefillTestUtil.listed(tiles, l, b, h, qb, diag), "forced diagonal of row " + qb + where);
      }
    }
  }

  private static void checkForcedPair(PrefillTestUtil.Shape s, BlockLayout l, byte[] tiles, int b, int h,
      String where) {
    for (int qb = 0; qb < l.numQBlocks(); qb++) {
      int diag = (int) (PrefillTestUtil.last(s, qb, l.blockQ()) / l.blockK());
      assertTrue(PrefillTestUtil.listed(tiles, l, b, h, qb, 0), "block 0 of row " + qb + where);
      assertTrue(PrefillTestUtil.listed(tiles, l, b, h, qb, diag), "diagonal block of row " + qb + where);
    }
  }

  private static void checkFlex(PrefillTestUtil.Shape s, BlockLayout l, byte[] tiles, int b, int h,
      FlexPrefillOptions f, HeadInfo info, String where) {
    int nkb = l.numKBlocks();
    long minB = Math.min((f.minBudget() + (long) f.block() - 1) / f.block(), Math.min((f.maxBudget() + (long) f
        .block() - 1) / f.block(), nkb));
    long maxB = Math.min((f.maxBudget() + (long) f.block() - 1) / f.block(), nkb);
    checkForcedPair(s, l, tiles, b, h, where);
    assertTrue(info.divergence() >= 0 && info.divergence() <= Math.sqrt(Math.log(2)) + 1e-6, where);
    assertEquals(info.divergence() < f.tau(), info.pattern() == HeadPattern.QUERY_AWARE, where);
    if (info.pattern() == HeadPattern.QUERY_AWARE) {
      assertEquals(Math.max(1, minB), info.verticals(), where);
      assertEquals(Math.max(1, minB), info.slashes(), where);
    } else {
      assertEquals(HeadPattern.VERTICAL_SLASH, info.pattern(), where);
      assertTrue(info.verticals() >= Math.max(1, minB) && info.verticals() <= Math.max(1, maxB), where);
      assertTrue(info.slashes() >= Math.max(1, minB) && info.slashes() <= Math.max(1, maxB), where);
    }
  }

  /** Per row: forced + kept others reach threshold x row mass, and dropping the last kept other falls short. */
  private static void checkXAttentionMass(Tensor q, Tensor k, XAttentionOptions x, byte[] tiles, Backend backend,
      Exec exec, String ctx) {
    PrefillParams p = PrefillParams.resolve("test", q, k, x, 0);
    float[] scores = backend == Backend.JAVA ? SparsePrefillRef.score(p, q.toFloatArray(), k.toFloatArray())
        : scoresOf(p, q, k, backend, exec);
    int nqb = p.numQBlocks();
    int nkb = p.numKBlocks();
    for (int head = 0; head < p.batch() * p.headsQ(); head++) {
      for (int qb = 0; qb < nqb; qb++) {
        int diag = p.diag(qb);
        int row = head * nqb * nkb + qb * nkb;
        double total = 0;
        for (int kb = 0; kb <= diag; kb++) {
          total += SparsePrefillRef.mass(scores[row + kb]);
        }
        double cum = SparsePrefillRef.mass(scores[row]) + (diag > 0 ? SparsePrefillRef.mass(scores[row + diag]) : 0);
        int others = 0;
        double lastOther = Double.NaN;
        int[] all = new int[Math.max(0, diag - 1)];
        for (int i = 0; i < all.length; i++) {
          all[i] = i + 1;
        }
        double[] v = new double[nkb];
        for (int kb = 0; kb < nkb; kb++) {
          v[kb] = scores[row + kb];
        }
        double before = cum;
        for (int kb : SparsePrefillRef.order(all, v)) {
          if (tiles[row + kb] == 0) {
            break; // kept others form a prefix of the order
          }
          before = cum;
          cum += SparsePrefillRef.mass(v[kb]);
          others++;
          lastOther = v[kb];
        }
        int keptOthers = 0;
        for (int kb = 1; kb < diag; kb++) {
          keptOthers += tiles[row + kb] != 0 ? 1 : 0;
        }
        String where = "row " + qb + " of head " + head + ": " + ctx;
        assertEquals(keptOthers, others, "kept blocks are not a prefix of the order in " + where);
        double target = x.threshold() * total;
        assertTrue(cum >= target || others == all.length, () -> "kept mass below the target in " + where);
        if (others > 0) {
          double dropped = before;
          assertTrue(dropped < target, () -> "not minimal: mass without the last kept block (" + dropped
              + ") already reaches " + target + " in " + where);
        }
        assertTrue(others == 0 || !Double.isNaN(lastOther), where);
      }
    }
  }

  private static float[] scoresOf(PrefillParams p, Tensor q, Tensor k, Backend backend, Exec exec) {
    try (Tensor t = PrefillKernels.score(p, q, k, backend, exec)) {
      return t.toFloatArray();
    }
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("monotoneCases")
  void largerBudgetsNeverRemoveATile(Backend backend, PrefillTestUtil.Shape s) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    Exec exec = Exec.backend(backend);
    int bl = s.block();
    int lastQ = Math.min(bl, s.sq());
    PrefillOptions[][] pairs = {
        {new VerticalSlashOptions(lastQ, 4, 3, 1, 1, bl, 0, VerticalSlashOptions.ColumnMode.BLOCKS), new VerticalSlashOptions(lastQ, 9, 7, 1, 1, bl, 0, VerticalSlashOptions.ColumnMode.BLOCKS)},
        {new BlockTopKOptions(1, bl, false, 0), new BlockTopKOptions(3, bl, false, 0)},
        {new BlockTopKOptions(1, bl, true, 0), new BlockTopKOptions(2, bl, true, 0)},
        {new FlexPrefillOptions(0.5, 0.1, bl, Integer.MAX_VALUE, bl, lastQ, 0),
            new FlexPrefillOptions(0.95, 0.1, bl, Integer.MAX_VALUE, bl, lastQ, 0)},
        {new FlexPrefillOptions(0.5, 1.0, bl, Integer.MAX_VALUE, bl, lastQ, 0),
            new FlexPrefillOptions(0.9, 1.0, bl, Integer.MAX_VALUE, bl, lastQ, 0)},
        {new XAttentionOptions(4, 0.5, bl, 0), new XAttentionOptions(4, 0.95, bl, 0)},
        {new XAttentionOptions(4, 0.95, bl, 0), new XAttentionOptions(4, 1.0, bl, 0)}};
    try (Tensor q = RandomTensors.normal(rnd, DType.F32, s.b(), s.hq(), s.sq(), s.d());
        Tensor k = RandomTensors.normal(rnd, DType.F32, s.b(), s.hkv(), s.sk(), s.d())) {
      for (PrefillOptions[] pair : pairs) {
        try (PrefillEstimate small = SparsePrefill.estimate(q, k, pair[0], exec);
            PrefillEstimate large = SparsePrefill.estimate(q, k, pair[1], exec)) {
          String ctx = backend + " " + s + " " + pair[0] + " -> " + pair[1] + ", seed " + seed;
          PrefillTestUtil.assertSubset(PrefillTestUtil.tiles(small.layout()), PrefillTestUtil.tiles(large.layout()),
              () -> ctx);
          assertTrue(small.density() <= large.density(), ctx);
        }
      }
    }
  }
}
