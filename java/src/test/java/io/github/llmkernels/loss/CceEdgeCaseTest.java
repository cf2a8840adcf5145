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
import java.util.Arrays;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Edge cases on every host backend: ignored rows, empty inputs, ties, huge logits, V = 1. */
class CceEdgeCaseTest {

  static java.util.List<Backend> backends() {
    return TestBackends.host();
  }

  private static float[] filled(int count, float value) {
    float[] a = new float[count];
    Arrays.fill(a, value);
    return a;
  }

  @ParameterizedTest
  @MethodSource("backends")
  void allTargetsIgnoredFollowsPyTorch(Backend backend) {
    int n = 7, d = 5, v = 11;
    int[] ignored = new int[n];
    Arrays.fill(ignored, -100);
    try (Tensor e = Tensor.of(filled(n * d, 0.5f), n, d); Tensor c = Tensor.of(filled(v * d, 0.25f), v, d);
        Tensor t = Tensor.of(ignored, n)) {
      Exec exec = Exec.backend(backend);
      try (CceForward mean = CutCrossEntropy.forward(e, c, t, null, CceOptions.defaults(), true, exec);
          CceForward sum = CutCrossEntropy.forward(e, c, t, null,
              CceOptions.builder().reduction(Reduction.SUM).build(), false, exec);
          CceForward none = CutCrossEntropy.forward(e, c, t, null,
              CceOptions.builder().reduction(Reduction.NONE).build(), false, exec);
          CceGradients g = CutCrossEntropy.backward(e, c, t, null, null, 1f, CceOptions.defaults(), exec)) {
        assertTrue(Double.isNaN(mean.loss().getDouble(0)), "MEAN over no valid row is NaN (0/0), as PyTorch");
        assertEquals(0.0, sum.loss().getDouble(0));
        assertArrayEquals0(none.loss().toFloatArray());
        assertArrayEquals0(mean.lse().toFloatArray());
        assertArrayEquals0(g.gradE().toFloatArray());
        assertArrayEquals0(g.gradC().toFloatArray());
      }
    }
  }

  private static void assertArrayEquals0(float[] values) {
    for (int i = 0; i < values.length; i++) {
      assertEquals(0.0f, values[i], "element " + i);
    }
  }

  @ParameterizedTest
  @MethodSource("backends")
  void emptyBatchAndShiftPastTheEnd(Backend backend) {
    Exec exec = Exec.backend(backend);
    try (Tensor e = Tensor.allocate(DType.F32, Device.CPU, 0, 4); Tensor c = Tensor.of(filled(12, 1f), 3, 4);
        Tensor t = Tensor.allocate(DType.I32, Device.CPU, 0);
        CceForward mean = CutCrossEntropy.forward(e, c, t, null, CceOptions.defaults(), false, exec);
        CceGradients g = CutCrossEntropy.backward(e, c, t, null, null, 1f, CceOptions.defaults(), exec)) {
      assertTrue(Double.isNaN(mean.loss().getDouble(0)));
      assertEquals(0, g.gradE().numel());
      assertArrayEquals0(g.gradC().toFloatArray());
    }
    // shift >= N: every row's target lies past the end, so every row is ignored.
    try (Tensor e = Tensor.of(filled(8, 1f), 2, 4); Tensor c = Tensor.of(filled(12, 1f), 3, 4);
        Tensor t = Tensor.of(new int[] {0, 1}, 2);
        CceForward sum = CutCrossEntropy.forward(e, c, t, null,
            CceOptions.builder().shift(5).reduction(Reduction.SUM).build(), false, exec)) {
      assertEquals(0.0, sum.loss().getDouble(0));
    }
  }

  /** All logits equal: lse = log V exactly, loss = log V, p = 1/V for every column. */
  @ParameterizedTest
  @MethodSource("backends")
  void tiesGiveUniformSoftmax(Backend backend) {
    int n = 3, d = 4, v = 1025;
    try (Tensor e = Tensor.of(filled(n * d, 1f), n, d); Tensor c = Tensor.allocate(DType.F32, Device.CPU, v, d);
        Tensor t = Tensor.of(new int[] {0, 512, 1024}, n)) {
      c.copyFrom(Tensor.zeros(DType.F32, Device.CPU, v, d));
      CceOptions o = CceOptions.builder().filterEps(0).build();
      try (CceForward f = CutCrossEntropy.forward(e, c, t, null, o, true, Exec.backend(backend))) {
        assertEquals(Math.log(v), f.loss().getDouble(0), 1e-5);
        for (float lse : f.lse().toFloatArray()) {
          assertEquals(Math.log(v), lse, 1e-5);
        }
      }
    }
  }

  /** V = 1: the only class has p = 1, loss 0 and zero gradient. */
  @ParameterizedTest
  @MethodSource("backends")
  void singleClassHasZeroLoss(Backend backend) {
    try (Tensor e = Tensor.of(new float[] {3f, -2f}, 1, 2); Tensor c = Tensor.of(new float[] {0.5f, 4f}, 1, 2);
        Tensor t = Tensor.of(new int[] {0}, 1);
        CceForward f = CutCrossEntropy.forward(e, c, t, null, CceOptions.defaults(), true, Exec.backend(backend));
        CceGradients g = CutCrossEntropy.backward(e, c, t, null, f.lse(), 1f, CceOptions.defaults(),
            Exec.backend(backend))) {
      assertEquals(0.0, f.loss().getDouble(0), 1e-6);
      for (float x : g.gradE().toFloatArray()) {
        assertEquals(0.0, x, 1e-6);
      }
    }
  }

  /** Logits near +-100 and beyond: log-sum-exp must not overflow; results match the reference. */
  @ParameterizedTest
  @MethodSource("backends")
  void hugeLogitsStayFinite(Backend backend) {
    long seed = RandomTensors.freshSeed();
    CceOptions o = CceOptions.builder().filterEps(0).reduction(Reduction.NONE).build();
    CceCase.Spec spec = CceCase.Spec.of(97, 33, 507, DType.F32).logitStd(60).confident(false);
    try (CceCase k = CceCase.random(seed, spec, o);
        CceForward f = CutCrossEntropy.forward(k.e, k.c, k.targets, null, o, true, Exec.backend(backend))) {
      float[][] ref = k.referenceForward();
      float[] loss = f.loss().toFloatArray();
      for (float x : loss) {
        assertTrue(Float.isFinite(x), "loss must be finite; " + k.describe());
      }
      // Relative tolerance: lse values are ~100-300 here, fp32 carries ~1e-5 of them.
      for (int i = 0; i < loss.length; i++) {
        assertEquals(ref[0][i], loss[i], 1e-3 + 1e-4 * Math.abs(ref[1][i]), "row " + i + "; " + k.describe());
      }
    }
  }
}
