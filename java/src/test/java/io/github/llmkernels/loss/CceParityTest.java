package io.github.llmkernels.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * NATIVE (and, tagged gpu, CUDA) against the Java reference (double accumulation) on fresh random
 * inputs, over a grid of options x dtypes x awkward shapes. Gradients with filtering on are held
 * to the documented error bound.
 */
class CceParityTest {

  /** N, D, V: Apple's ragged sizes, singletons, 97 and 1025, V smaller than one tile. */
  static final int[][] SHAPES = {{255, 123, 507}, {1, 1, 1}, {97, 97, 1025}, {1025, 33, 97}, {2, 1, 97}};

  /** Option variants; each also says whether the upstream lse gradient is used. */
  record Variant(String name, CceOptions options, boolean bias, boolean gradLse, DType targets) {}

  static List<Variant> variants() {
    CceOptions base = CceOptions.defaults();
    return List.of(
        new Variant("defaults", base, false, false, DType.I32),
        new Variant("exact", base.toBuilder().filterEps(0).sortVocab(false).build(), false, false, DType.I32),
        new Variant("sum-shift1-bias", base.toBuilder().reduction(Reduction.SUM).shift(1).build(), true, false,
            DType.I64),
        new Variant("none-shift2", base.toBuilder().reduction(Reduction.NONE).shift(2).build(), false, false,
            DType.I32),
        new Variant("softcap-smoothing", base.toBuilder().softcap(30).labelSmoothing(0.1).build(), true, false,
            DType.I32),
        new Variant("smoothing-unsorted", base.toBuilder().labelSmoothing(0.1).sortVocab(false).build(), false,
            false, DType.I32),
        new Variant("zloss-gradlse", base.toBuilder().zLossScale(1e-4).filterEps(0).build(), true, true,
            DType.I32),
        // A coarse threshold so that many tiles are skipped: the error bound is what is checked.
        new Variant("coarse-filter", base.toBuilder().filterEps(0.1).build(), true, false, DType.I32),
        new Variant("coarse-filter-unsorted-softcap", base.toBuilder().filterEps(0.1).sortVocab(false).softcap(20)
            .labelSmoothing(0.05).build(), false, false, DType.I32),
        new Variant("no-fp32-accum", base.toBuilder().fp32Accumulation(false).deterministic(true).build(), false,
            false, DType.I32));
  }

  static Stream<Arguments> nativeCases() {
    List<Arguments> out = new ArrayList<>();
    for (Variant variant : variants()) {
      for (DType dtype : new DType[] {DType.F32, DType.BF16, DType.F16}) {
        for (int[] shape : SHAPES) {
          out.add(Arguments.of(variant, dtype, shape));
        }
      }
    }
    return out.stream();
  }

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("nativeCases")
  void nativeMatchesReference(Variant variant, DType dtype, int[] shape) {
    TestBackends.requireNativeUnlessSkipped();
    TestBackends.assumeNative();
    check(Backend.NATIVE, variant, dtype, shape, Device.CPU);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "cuda {0} {1} {2}")
  @MethodSource("nativeCases")
  void cudaMatchesReference(Variant variant, DType dtype, int[] shape) {
    TestBackends.assumeCuda();
    check(Backend.CUDA, variant, dtype, shape, Device.cuda(0));
  }

  static void check(Backend backend, Variant variant, DType dtype, int[] shape, Device device) {
    long seed = RandomTensors.freshSeed();
    CceCase.Spec spec = CceCase.Spec.of(shape[0], shape[1], shape[2], dtype).withBias(variant.bias())
        .targets(variant.targets());
    try (CceCase k = CceCase.random(seed, spec, variant.options())) {
      String ctx = backend + " " + variant.name() + " " + k.describe();
      float[][] ref = k.referenceForward();
      SplittableRandom rnd = new SplittableRandom(seed + 1);
      boolean none = variant.options().reduction() == Reduction.NONE;
      float[] gradLossValues = new float[none ? k.n : 1];
      for (int i = 0; i < gradLossValues.length; i++) {
        gradLossValues[i] = none ? (float) RandomTensors.gaussian(rnd) : 0.75f;
      }
      float[] gradLseValues = null;
      if (variant.gradLse()) {
        gradLseValues = new float[k.n];
        for (int i = 0; i < k.n; i++) {
          gradLseValues[i] = (float) (0.01 * RandomTensors.gaussian(rnd));
        }
      }
      try (Tensor e = k.e.to(device);
          Tensor c = k.c.to(device);
          Tensor targets = k.targets.to(device);
          Tensor bias = k.bias == null ? null : k.bias.to(device);
          CceForward fwd = CutCrossEntropy.forward(e, c, targets, bias, variant.options(), true, Exec.backend(backend));
          Tensor refLse = Tensor.of(ref[1], k.n);
          Tensor gradLossHost = none ? Tensor.of(gradLossValues, k.n) : Tensor.of(gradLossValues);
          Tensor gradLseHost = gradLseValues == null ? null : Tensor.of(gradLseValues, k.n);
          Tensor gradLoss = gradLossHost.to(device);
          Tensor gradLse = gradLseHost == null ? null : gradLseHost.to(device);
          CceGradients grads = CutCrossEntropy.backward(e, c, targets, bias, fwd.lse(), gradLoss, gradLse,
              variant.options(), Exec.backend(backend))) {
        CceCase.assertForwardClose("loss", fwd.loss().toFloatArray(), ref[0], ctx);
        CceCase.assertForwardClose("lse", fwd.lse().toFloatArray(), ref[1], ctx);
        float[][] refGrad = k.referenceBackward(refLse, gradLossHost, gradLseHost);
        double eps = variant.options().resolvedFilterEps(dtype);
        double[][] bounds = eps > 0 ? filterBounds(k, ref[1], gradLossValues, gradLseValues, eps) : new double[3][];
        double rowScale = CceCase.maxAbs(k.rowScales(ref[1], gradLossValues, gradLseValues));
        double scaleE = rowScale * CceCase.maxAbs(k.c.toFloatArray());
        double scaleC = rowScale * CceCase.maxAbs(k.e.toFloatArray());
        CceCase.assertGradClose("dE", grads.gradE().toFloatArray(), refGrad[0], dtype, bounds[0], scaleE, ctx);
        CceCase.assertGradClose("dC", grads.gradC().toFloatArray(), refGrad[1], dtype, bounds[1], scaleC, ctx);
        if (bias != null) {
          CceCase.assertGradClose("dBias", grads.gradBias().toFloatArray(), refGrad[2], dtype, bounds[2], rowScale,
              ctx);
        }
        assertTrue(grads.tilesSkipped() <= grads.tilesTotal(), ctx);
        if (eps == 0) {
          assertEquals(0, grads.tilesSkipped(), "filtering off must skip nothing; " + ctx);
        }
      }
    }
  }

  /**
   * Per-element error bounds of filtering, {dE [N*D], dC [V*D], dBias [V]}: only an entry with
   * |g_ij| < eps * scale_i can be dropped (its whole tile is below the threshold), so the error
   * of dE_ik is at most the sum of |g_ij| |C_jk| over such entries, and likewise for dC and
   * dBias. g is the tile's gradient from the reference definitions (in double): label smoothing's
   * uniform -u is applied exactly outside the tiles, so a tile holds g + u (= +u t^2 with a softcap).
   */
  static double[][] filterBounds(CceCase k, float[] lse, float[] gradLoss, float[] gradLse, double eps) {
    CutCrossEntropyRef.Problem p = k.problem();
    CceOptions o = k.options;
    double[] scale = k.rowScales(lse, gradLoss, gradLse);
    double[][] coef = k.rowCoefficients(lse, gradLoss, gradLse);
    float[] e = k.e.toFloatArray();
    float[] c = k.c.toFloatArray();
    double[] be = new double[k.n * k.d];
    double[] bc = new double[k.v * k.d];
    double[] bb = new double[k.v];
    for (int i = 0; i < k.n; i++) {
      if (coef[i] == null) {
        continue;
      }
      double a = coef[i][0];
      double b = coef[i][1];
      double u = coef[i][2];
      double threshold = eps * scale[i] * (1 + 1e-5); // the kernel's threshold is a float
      double[] z = p.logits(i);
      int t = p.targetColumn(i);
      for (int j = 0; j < k.v; j++) {
        double g = Math.exp(z[j] - lse[i]) * a - (j == t ? b : 0);
        if (o.softcap() > 0) {
          double r = z[j] / o.softcap();
          g = (g - u) * (1 - r * r) + u;
        }
        double ag = Math.abs(g);
        if (ag >= threshold) {
          continue;
        }
        bb[j] += ag;
        for (int x = 0; x < k.d; x++) {
          be[i * k.d + x] += ag * Math.abs(c[j * k.d + x]);
          bc[j * k.d + x] += ag * Math.abs(e[i * k.d + x]);
        }
      }
    }
    return new double[][] {be, bc, bb};
  }

  /** Every CPU variant this machine can run (the widest is the default) against the reference. */
  @ParameterizedTest(name = "{0}")
  @org.junit.jupiter.params.provider.ValueSource(strings = {"x86-64", "avx2", "avx512"})
  void everyCpuVariantMatchesReference(String variant) {
    TestBackends.assumeNative();
    org.junit.jupiter.api.Assumptions.assumeTrue(io.github.llmkernels.runtime.NativeCpu.supportsVariant(variant),
        () -> "this CPU cannot run " + variant);
    String before = io.github.llmkernels.runtime.NativeCpu.variant();
    io.github.llmkernels.runtime.NativeCpu.useVariant(variant);
    try {
      for (Variant v : List.of(variants().get(0), variants().get(4), variants().get(7))) {
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
          check(Backend.NATIVE, v, dtype, new int[] {97, 97, 1025}, Device.CPU);
          check(Backend.NATIVE, v, dtype, new int[] {13, 1, 33}, Device.CPU);
        }
      }
    } finally {
      io.github.llmkernels.runtime.NativeCpu.useVariant(before);
    }
  }

  @Test
  void deterministicRunsAreBitwiseEqual() {
    TestBackends.requireNativeUnlessSkipped();
    TestBackends.assumeNative();
    CceOptions o = CceOptions.builder().deterministic(true).build();
    try (CceCase k = CceCase.random(RandomTensors.freshSeed(), CceCase.Spec.of(300, 70, 2000, DType.BF16), o)) {
      short[] first = null;
      for (int run = 0; run < 3; run++) {
        try (CceGradients g = CutCrossEntropy.backward(k.e, k.c, k.targets, null, null, 1f, o, Exec.backend(Backend.NATIVE))) {
          short[] bits = g.gradC().toBitsArray();
          if (first == null) {
            first = bits;
          } else {
            org.junit.jupiter.api.Assertions.assertArrayEquals(first, bits, "run " + run + " differs; " + k.describe());
          }
        }
      }
    }
  }
}
