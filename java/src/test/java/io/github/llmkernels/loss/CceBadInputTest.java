package io.github.llmkernels.loss;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.TestBackends;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Bad input gets an exception that names the argument and the rule, and nothing is written. */
class CceBadInputTest {

  static java.util.List<Backend> backends() {
    return TestBackends.host();
  }

  private static Tensor ones(long... shape) {
    Tensor t = Tensor.allocate(DType.F32, Device.CPU, shape);
    for (long i = 0; i < t.numel(); i++) {
      t.setDouble(i, 0.1 * (i % 7));
    }
    return t;
  }

  @ParameterizedTest
  @MethodSource("backends")
  void targetOutOfRangeNamesThePositionAndWritesNothing(Backend backend) {
    try (Tensor e = ones(6, 4); Tensor c = ones(10, 4); Tensor t = Tensor.of(new int[] {1, -100, 3, 10, 2, -1}, 6);
        Tensor lse = Tensor.of(new float[] {7, 7, 7, 7, 7, 7}, 6); Tensor loss = Tensor.of(new float[] {7});
        Tensor gradE = Tensor.of(new float[24], 6, 4)) {
      gradE.setDouble(0, 42);
      IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, () -> CutCrossEntropy.forwardInto(
          e, c, t, null, CceOptions.defaults(), loss, lse, Exec.backend(backend)));
      assertTrue(ex.getMessage().contains("targets[3] = 10"), ex.getMessage());
      assertTrue(ex.getMessage().contains("[0, V = 10)"), ex.getMessage());
      assertArrayEquals(new float[] {7, 7, 7, 7, 7, 7}, lse.toFloatArray(), "lse must be untouched");
      assertArrayEquals(new float[] {7}, loss.toFloatArray(), "loss must be untouched");
      try (Tensor one = Tensor.of(new float[] {1})) {
        IllegalArgumentException bwd = assertThrows(IllegalArgumentException.class, () ->
            CutCrossEntropy.backwardInto(e, c, t, null, lse, one.view(), null, CceOptions.defaults(), gradE, null,
                null, Exec.backend(backend)));
        assertTrue(bwd.getMessage().contains("targets[3] = 10"), bwd.getMessage());
      }
      assertTrue(gradE.getDouble(0) == 42, "gradE must be untouched");
      // With shift 1 the same bad value is the target of row 2, and -1 (not the ignore index) too.
      Tensor t2 = Tensor.of(new int[] {1, 2, 3, 4, 5, -1}, 6);
      IllegalArgumentException shifted = assertThrows(IllegalArgumentException.class, () -> CutCrossEntropy.forward(
          e, c, t2, null, CceOptions.builder().shift(1).build(), false, Exec.backend(backend)));
      assertTrue(shifted.getMessage().contains("targets[5] = -1 (the target of row 4)"), shifted.getMessage());
      t2.close();
    }
  }

  @Test
  void shapesDtypesAndClosedTensorsAreRejected() {
    try (Tensor e = ones(6, 4); Tensor c = ones(10, 4); Tensor t = Tensor.of(new int[] {1, 2, 3, 4, 5, 6}, 6)) {
      CceOptions o = CceOptions.defaults();
      assertMessage(() -> CutCrossEntropy.forward(e, ones(10, 5), t, null, o), "c dimension 1 must equal D");
      assertMessage(() -> CutCrossEntropy.forward(ones(6, 4, 1), c, t, null, o), "e must have rank 2");
      assertMessage(() -> CutCrossEntropy.forward(e, c, Tensor.of(new int[] {1, 2}, 2), null, o),
          "targets dimension 0 must equal N");
      assertMessage(() -> CutCrossEntropy.forward(e, c, Tensor.of(new float[6], 6), null, o),
          "targets must have dtype");
      assertMessage(() -> CutCrossEntropy.forward(e, Tensor.fromFloats(new float[40], DType.BF16, 10, 4), t, null, o),
          "c dtype BF16 must equal e dtype F32");
      assertMessage(() -> CutCrossEntropy.forward(e, c, t, ones(9), o), "bias dimension 0 must equal V");
      assertMessage(() -> CutCrossEntropy.forward(Tensor.of(new int[24], 6, 4), c, t, null, o), "e must have dtype");
      assertMessage(() -> CutCrossEntropy.forward(null, c, t, null, o), "e must not be null");
      try (Tensor lse = Tensor.allocate(DType.F32, Device.CPU, 6)) {
        assertMessage(() -> CutCrossEntropy.backward(e, c, t, null, lse, ones(6), null,
            CceOptions.builder().reduction(Reduction.MEAN).build(), Exec.DEFAULT), "gradLoss must hold one element");
        assertMessage(() -> CutCrossEntropy.backward(e, c, t, null, lse, ones(2), null,
            CceOptions.builder().reduction(Reduction.NONE).build(), Exec.DEFAULT), "gradLoss dimension 0 must equal N");
        try (Tensor one = Tensor.of(new float[] {1})) {
          assertMessage(() -> CutCrossEntropy.backwardInto(e, c, t, null, lse, one, null, o, e, null, null,
              Exec.DEFAULT), "gradE must not overlap e");
          assertMessage(() -> CutCrossEntropy.backwardInto(e, c, t, null, lse, one, null, o, null, null, ones(10),
              Exec.DEFAULT), "gradBias requires bias");
        }
      }
      assertMessage(() -> CutCrossEntropy.forward(e, c, t, null, o, false, Exec.backend(Backend.CUDA)),
          "backend CUDA needs device tensors");
      Tensor closed = ones(10, 4);
      closed.close();
      IllegalStateException ise = assertThrows(IllegalStateException.class,
          () -> CutCrossEntropy.forward(e, closed, t, null, o));
      assertTrue(ise.getMessage().contains("c"), ise.getMessage());
    }
  }

  @Test
  void optionsRejectOutOfRangeValues() {
    assertMessage(() -> CceOptions.builder().shift(-1), "shift must be >= 0");
    assertMessage(() -> CceOptions.builder().labelSmoothing(1.5), "labelSmoothing must be in [0, 1]");
    assertMessage(() -> CceOptions.builder().filterEps(2), "filterEps must be FILTER_AUTO (NaN) or in [0, 1]");
    assertMessage(() -> CceOptions.builder().softcap(Double.NaN), "softcap must be finite and >= 0");
    assertMessage(() -> CceOptions.builder().zLossScale(-1), "zLossScale must be finite and >= 0");
    assertMessage(() -> CutCrossEntropy.workspaceBytes(1, 1, 1, DType.F32, false, CceOptions.defaults(), false,
        Backend.JAVA), "backend must be NATIVE or CUDA");
  }

  private static void assertMessage(org.junit.jupiter.api.function.Executable call, String expected) {
    IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, call);
    assertTrue(ex.getMessage().contains(expected), "message \"" + ex.getMessage() + "\" should contain \"" + expected
        + "\"");
  }

  @Test
  void nativeBackendChecksTheSameTargetRule() {
    TestBackends.assumeNative();
    int[] targets = new int[1025];
    Arrays.fill(targets, 3);
    targets[1024] = 1 << 30;
    try (Tensor e = ones(1025, 3); Tensor c = ones(97, 3); Tensor t = Tensor.of(targets, 1025)) {
      assertMessage(() -> CutCrossEntropy.forward(e, c, t, null, CceOptions.defaults(), false,
          Exec.backend(Backend.NATIVE)), "targets[1024] = 1073741824 (the target of row 1024) is outside [0, V = 97)");
    }
  }
}
