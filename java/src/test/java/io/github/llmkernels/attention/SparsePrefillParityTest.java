package io.github.llmkernels.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import io.github.llmkernels.testing.Tolerances;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * NATIVE and CUDA (tagged gpu) against {@link SparsePrefillRef} on fresh random inputs, every
 * method, F32 and BF16, MHA / GQA / MQA, Sq = Sk and Sq < Sk:
 *
 * <ol>
 *   <li>scores: every F32 score within the prefill score tolerance of the reference's (-inf
 *       exactly), and the library's scores size equal to the reference's;
 *   <li>selection: the backend's selection, head counts and divergence from its own scores equal
 *       what the reference selects from those same scores, bit for bit;
 *   <li>end to end: {@link SparsePrefill#estimate} layouts equal the JAVA backend's, except for
 *       heads whose reference decision margin is within what the score tolerance can flip (never
 *       for A-shape).
 * </ol>
 */
class SparsePrefillParityTest {

  @BeforeAll
  static void nativeLoadsUnlessSkipped() {
    TestBackends.requireNativeUnlessSkipped();
  }

  static Stream<Arguments> cases() {
    return casesFor(List.of(Backend.NATIVE));
  }

  static Stream<Arguments> gpuCases() {
    return casesFor(List.of(Backend.CUDA));
  }

  static Stream<Arguments> casesFor(List<Backend> backends) {
    Stream.Builder<Arguments> out = Stream.builder();
    for (Backend backend : backends) {
      for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
        for (PrefillTestUtil.Shape s : PrefillTestUtil.SHAPES) {
          out.add(Arguments.of(backend, dtype, s));
        }
      }
    }
    return out.build();
  }

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("cases")
  void nativeMatchesTheReference(Backend backend, DType dtype, PrefillTestUtil.Shape shape) {
    TestBackends.assumeNative();
    check(backend, dtype, shape);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("gpuCases")
  void cudaMatchesTheReference(Backend backend, DType dtype, PrefillTestUtil.Shape shape) {
    TestBackends.assumeCuda();
    check(backend, dtype, shape);
  }

  private static void check(Backend backend, DType dtype, PrefillTestUtil.Shape s) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    Exec exec = Exec.backend(backend);
    try (Tensor qHost = PrefillTestUtil.queries(rnd, dtype, s);
        Tensor kHost = PrefillTestUtil.keys(rnd, dtype, s);
        Tensor q = PrefillTestUtil.on(backend, qHost);
        Tensor k = PrefillTestUtil.on(backend, kHost)) {
      float[] qf = qHost.toFloatArray();
      float[] kf = kHost.toFloatArray();
      for (PrefillOptions o : PrefillTestUtil.options(s)) {
        String ctx = backend + " " + dtype + " " + s + " " + o + ", seed " + seed;
        double[] margins = new double[s.b() * s.hq()];
        if (!(o instanceof AShapeOptions)) {
          PrefillParams p = PrefillParams.resolve("test", q, k, o, 0);
          assertEquals(p.scoresPerHead(), PrefillKernels.scoresPerHead(p), () -> "scores per head: " + ctx);
          float[] ref = SparsePrefillRef.score(p, qf, kf);
          SparsePrefillRef.select(p, ref, margins);
          try (Tensor scores = PrefillKernels.score(p, q, k, backend, exec)) {
            float[] got = scores.toFloatArray();
            assertScoresClose(ref, got, p, ctx);
            assertSelectsLikeTheReference(p, scores, got, backend, exec, ctx);
          }
        }
        endToEnd(q, k, qHost, kHost, o, margins, exec, ctx);
      }
    }
  }

  static void assertScoresClose(float[] ref, float[] got, PrefillParams p, String ctx) {
    assertEquals(ref.length, got.length, ctx);
    long per = p.scoresPerHead();
    for (int i = 0; i < ref.length; i++) {
      float want = ref[i];
      float x = got[i];
      if (Float.isInfinite(want) || Float.isInfinite(x)) {
        if (want != x) {
          fail("score " + i + " (head " + i / per + ", entry " + i % per + ") = " + x + ", reference " + want + ": "
              + ctx);
        }
        continue;
      }
      double err = Math.abs((double) x - want);
      if (!(err <= Tolerances.PREFILL_SCORE_ATOL + Tolerances.PREFILL_SCORE_RTOL * Math.abs(want))) {
        fail("score " + i + " (head " + i / per + ", entry " + i % per + ") = " + x + ", reference " + want + ": "
            + ctx);
      }
    }
  }

  /** The backend's selection from its scores equals the reference's selection from the same scores. */
  static void assertSelectsLikeTheReference(PrefillParams p, Tensor scores, float[] scoreValues, Backend backend,
      Exec exec, String ctx) {
    SparsePrefillRef.Selection want = SparsePrefillRef.select(p, scoreValues);
    try (PrefillKernels.NativeSelection got = PrefillKernels.select(p, scores, backend, exec)) {
      byte[] sel = bytes(got.selection());
      int diff = PrefillTestUtil.firstDifference(want.selection(), sel);
      if (diff >= 0) {
        int tiles = p.numQBlocks() * p.numKBlocks();
        fail("selection differs first at head " + diff / tiles + ", tile (" + diff % tiles / p.numKBlocks() + ", "
            + diff % p.numKBlocks() + "): reference " + want.selection()[diff] + ", got " + sel[diff] + ": " + ctx);
      }
      long[] counts = new long[want.headCounts().length];
      try (Tensor h = got.headCounts().to(io.github.llmkernels.tensor.Device.CPU)) {
        for (int i = 0; i < counts.length; i++) {
          counts[i] = h.getLong(i);
        }
      }
      assertArrayEquals(want.headCounts(), counts, () -> "head counts (pattern, verticals, slashes, blocks, columns): "
          + ctx);
      if (want.columns() == null) {
        assertTrue(got.columns() == null, "no token columns expected: " + ctx);
      } else {
        try (Tensor h = got.columns().to(io.github.llmkernels.tensor.Device.CPU)) {
          assertArrayEquals(want.columns(), h.toIntArray(), () -> "token columns: " + ctx);
        }
      }
      float[] div = got.divergence().toFloatArray();
      for (int i = 0; i < div.length; i++) {
        float w = want.divergence()[i];
        if (Float.isNaN(w) || Float.isNaN(div[i])) {
          assertTrue(Float.isNaN(w) && Float.isNaN(div[i]), "divergence " + i + " = " + div[i] + ", reference " + w
              + ": " + ctx);
        } else {
          assertEquals(w, div[i], Tolerances.PREFILL_DIVERGENCE_ATOL, "divergence " + i + ": " + ctx);
        }
      }
    }
  }

  static byte[] bytes(Tensor u8) {
    try (Tensor h = u8.to(io.github.llmkernels.tensor.Device.CPU)) {
      byte[] out = new byte[(int) h.numel()];
      for (int i = 0; i < out.length; i++) {
        out[i] = (byte) h.getBits(i);
      }
      return out;
    }
  }

  private static void endToEnd(Tensor q, Tensor k, Tensor qHost, Tensor kHost, PrefillOptions o, double[] margins,
      Exec exec, String ctx) {
    try (PrefillEstimate got = SparsePrefill.estimate(q, k, o, exec);
        PrefillEstimate want = SparsePrefill.estimate(qHost, kHost, o, Exec.backend(Backend.JAVA))) {
      assertEquals(exec.backend(), got.layout().backend(), ctx);
      if (!(o instanceof AShapeOptions)) { // A-shape's PARTIAL tiles are those of its own mask
        PrefillTestUtil.assertCausalTiles(got.layout(), () -> ctx);
      }
      byte[] g = PrefillTestUtil.tiles(got.layout());
      byte[] w = PrefillTestUtil.tiles(want.layout());
      int heads = got.heads().size();
      int tiles = g.length / heads;
      List<Integer> differing = new ArrayList<>();
      for (int h = 0; h < heads; h++) {
        boolean same = true;
        for (int t = h * tiles; t < (h + 1) * tiles && same; t++) {
          same = g[t] == w[t];
        }
        HeadInfo a = got.heads().get(h);
        HeadInfo b = want.heads().get(h);
        same &= a.pattern() == b.pattern() && a.verticals() == b.verticals() && a.slashes() == b.slashes()
            && a.blocks() == b.blocks() && a.columns() == b.columns();
        if (!same) {
          differing.add(h);
        }
      }
      if (o instanceof AShapeOptions) {
        assertTrue(differing.isEmpty(), () -> "A-shape layouts differ in heads " + differing + ": " + ctx);
        assertEquals(want.density(), got.density(), 0, ctx);
      }
      for (int h : differing) {
        double m = o instanceof AShapeOptions ? Double.POSITIVE_INFINITY : margins[h];
        assertTrue(m < Tolerances.PREFILL_DECISION_MARGIN, () -> "head " + h + " differs from the reference end to end"
            + " although its decision margin is " + m + " (got " + got.heads().get(h) + ", reference "
            + want.heads().get(h) + "): " + ctx);
      }
      assertTrue(got.estimateNanos() > 0, ctx);
    }
  }
}
