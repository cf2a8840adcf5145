package io.github.llmkernels.sparse;

import static io.github.llmkernels.sparse.Sp24TestUtil.bits;
import static io.github.llmkernels.sparse.Sp24TestUtil.on;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import io.github.llmkernels.testing.Tolerances;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Y = act(X W^T + bias) with a compressed 2:4 W: exact on integer-valued inputs (equal to the
 * dense matmul of the pruned weight, bit for bit), within {@link Tolerances#sp24Rtol} of the
 * double reference on random inputs, and within twice that of the library's dense matmul of the
 * decompressed weight; every activation, with and without bias, decode (N = 1) to prefill sizes.
 */
class Sparse24MatmulTest {

  /** N, M, K. */
  static final int[][] SHAPES = {
    {1, 97, 1024}, {3, 97, 1040}, {7, 64, 48}, {12, 35, 4112}, {16, 256, 256}, {17, 33, 160}, {300, 97, 256}};

  static Stream<Arguments> dtypeCases() {
    return dtypeCasesFor(TestBackends.host());
  }

  static Stream<Arguments> gpuDtypeCases() {
    return dtypeCasesFor(List.of(Backend.CUDA));
  }

  static Stream<Arguments> dtypeCasesFor(List<Backend> backends) {
    List<Arguments> out = new ArrayList<>();
    for (Backend backend : backends) {
      for (DType dtype : Sp24TestUtil.DTYPES) {
        if (backend != Backend.CUDA || dtype != DType.F32) {
          out.add(Arguments.of(backend, dtype));
        }
      }
    }
    return out.stream();
  }

  static Stream<Arguments> shapeCases() {
    return shapeCasesFor(TestBackends.host());
  }

  static Stream<Arguments> gpuShapeCases() {
    return shapeCasesFor(List.of(Backend.CUDA));
  }

  static Stream<Arguments> shapeCasesFor(List<Backend> backends) {
    List<Arguments> out = new ArrayList<>();
    dtypeCasesFor(backends).forEach(a -> {
      for (int[] shape : SHAPES) {
        out.add(Arguments.of(a.get()[0], a.get()[1], shape));
      }
    });
    return out.stream();
  }

  // ---- integer-valued inputs: exact ----------------------------------------------------------

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("dtypeCases")
  void integerInputsAreExact(Backend backend, DType dtype) {
    checkIntegers(backend, dtype);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("gpuDtypeCases")
  void cudaIntegerInputsAreExact(Backend backend, DType dtype) {
    TestBackends.assumeCuda();
    checkIntegers(backend, dtype);
  }

  private static void checkIntegers(Backend backend, DType dtype) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    Exec exec = Exec.backend(backend);
    for (int[] nmk : new int[][] {{1, 33, 96}, {7, 40, 16}, {16, 33, 96}, {17, 64, 64}}) {
      int n = nmk[0];
      int m = nmk[1];
      int k = nmk[2];
      try (Tensor xHost = Sp24TestUtil.smallInts(rnd, dtype, n, k);
          Tensor wHost = Sp24TestUtil.smallInts(rnd, dtype, m, k); // many ties: pruning picks by position
          Tensor bHost = Sp24TestUtil.smallInts(rnd, dtype, m);
          Tensor x = on(backend, xHost);
          Tensor w = on(backend, wHost);
          Tensor b = on(backend, bHost);
          Tensor pruned = Sparse24.prune(w, exec);
          Tensor prunedHost = pruned.to(Device.CPU);
          Sparse24Weight sw = Sparse24.compress(pruned, exec)) {
        for (Activation act : Activation.values()) {
          for (boolean withBias : new boolean[] {false, true}) {
            Tensor bias = withBias ? b : null;
            String tag = backend + " " + dtype + " N=" + n + " M=" + m + " K=" + k + " " + act + " bias=" + withBias
                + ", seed " + seed;
            try (Tensor ys = Sparse24.matmul(x, sw, bias, act, exec);
                Tensor yd = Sparse24.denseMatmul(x, pruned, bias, act, exec)) {
              assertArrayEquals(new long[] {n, m}, ys.shape(), tag);
              long[] sparseBits = bits(ys);
              assertEquals(Tolerances.SP24_INTEGER_MAX_BIT_DIFFERENCES, differences(bits(yd), sparseBits),
                  () -> tag + ": sparse != dense matmul of the pruned weight");
              if (act == Activation.NONE || act == Activation.RELU) {
                double[] ref = Sparse24Ref.denseMatmul(xHost, prunedHost, withBias ? bHost : null, act);
                double[] got = Sp24TestUtil.doubles(ys);
                for (int i = 0; i < ref.length; i++) {
                  if (got[i] != ref[i]) {
                    throw new AssertionError(tag + ": element " + i + " = " + got[i] + ", exact value " + ref[i]);
                  }
                }
              }
            }
          }
        }
      }
    }
  }

  // ---- random inputs: within tolerance ------------------------------------------------------

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("shapeCases")
  void randomInputsMatchTheReference(Backend backend, DType dtype, int[] shape) {
    checkRandom(backend, dtype, shape);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("gpuShapeCases")
  void cudaRandomInputsMatchTheReference(Backend backend, DType dtype, int[] shape) {
    TestBackends.assumeCuda();
    checkRandom(backend, dtype, shape);
  }

  private static void checkRandom(Backend backend, DType dtype, int[] shape) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    Exec exec = Exec.backend(backend);
    int n = shape[0];
    int m = shape[1];
    int k = shape[2];
    double rtol = Tolerances.sp24Rtol(dtype);
    double abs = Tolerances.SP24_ABS_SUM_FRACTION;
    try (Tensor xHost = RandomTensors.normal(rnd, dtype, n, k);
        Tensor wDense = RandomTensors.normal(rnd, dtype, m, k);
        Tensor wHost = Sparse24Ref.prune(wDense, null);
        Tensor bHost = RandomTensors.normal(rnd, dtype, m);
        Tensor x = on(backend, xHost);
        Tensor w = on(backend, wHost);
        Tensor b = on(backend, bHost);
        Sparse24Weight sw = Sparse24.compress(w, exec);
        Tensor decompressed = Sparse24.decompress(sw, exec);
        Tensor valuesHost = sw.values().to(Device.CPU);
        Tensor metaHost = sw.meta().to(Device.CPU);
        Tensor y = Tensor.allocate(dtype, x.device(), n, m)) {
      for (boolean withBias : new boolean[] {false, true}) {
        double[] scale = Sp24TestUtil.absScale(xHost, wHost, withBias ? bHost : null);
        for (Activation act : Activation.values()) {
          Tensor bias = withBias ? b : null;
          String tag = backend + " " + dtype + " " + Arrays.toString(shape) + " " + act + " bias=" + withBias
              + ", seed " + seed;
          double[] ref = Sparse24Ref.matmul(xHost, valuesHost, metaHost, withBias ? bHost : null, act);
          try (Tensor ys = Sparse24.matmul(x, sw, bias, act, exec);
              Tensor yd = Sparse24.denseMatmul(x, decompressed, bias, act, exec)) {
            double[] sparse = Sp24TestUtil.doubles(ys);
            Sp24TestUtil.assertClose(ref, sparse, scale, rtol, abs, 1, () -> tag + ": sparse vs reference");
            Sp24TestUtil.assertClose(ref, Sp24TestUtil.doubles(yd), scale, rtol, abs, 1,
                () -> tag + ": dense vs reference");
            Sp24TestUtil.assertClose(Sp24TestUtil.doubles(yd), sparse, scale, rtol, abs, 2,
                () -> tag + ": sparse vs the library's dense matmul of the decompressed weight");
            Sparse24.matmulInto(x, sw, bias, act, y, exec);
            assertArrayEquals(bits(ys), bits(y), tag + ": matmulInto differs from matmul");
          }
        }
      }
    }
  }

  /** N = 0 and M = 0 give empty outputs; K = 0 gives act(bias). */
  @Test
  void emptySizes() {
    for (Backend backend : TestBackends.host()) {
      Exec exec = Exec.backend(backend);
      try (Tensor x0 = Tensor.zeros(DType.F32, Device.CPU, 0, 32);
          Tensor w = Tensor.zeros(DType.F32, Device.CPU, 8, 32);
          Sparse24Weight sw = Sparse24.compress(w, exec);
          Tensor y0 = Sparse24.matmul(x0, sw, null, Activation.NONE, exec);
          Tensor xk = Tensor.zeros(DType.F32, Device.CPU, 3, 0);
          Tensor wk = Tensor.zeros(DType.F32, Device.CPU, 4, 0);
          Sparse24Weight swk = Sparse24.compress(wk, exec);
          Tensor bias = Tensor.of(new float[] {-1, 2, 0.5f, 0}, 4);
          Tensor yk = Sparse24.matmul(xk, swk, bias, Activation.RELU, exec)) {
        assertArrayEquals(new long[] {0, 8}, y0.shape(), backend.toString());
        assertArrayEquals(new float[] {0, 2, 0.5f, 0, 0, 2, 0.5f, 0, 0, 2, 0.5f, 0}, yk.toFloatArray(),
            backend.toString());
      }
    }
  }

  private static long differences(long[] a, long[] b) {
    long n = Math.abs(a.length - b.length);
    for (int i = 0; i < Math.min(a.length, b.length); i++) {
      n += a[i] != b[i] ? 1 : 0;
    }
    return n;
  }
}
