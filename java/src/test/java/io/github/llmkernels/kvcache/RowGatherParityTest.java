package io.github.llmkernels.kvcache;

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
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every backend against an independent oracle (element-wise from the definition, raw bits),
 * on fresh random inputs, over dtype x awkward shapes (1, 97, 1025 and ragged mixes).
 */
class RowGatherParityTest {

  /** B, H, N, K, d: singletons, odd sizes, K > N (duplicates), d not a multiple of 8. */
  static final long[][] SHAPES = {
    {1, 1, 1, 1, 1},
    {1, 1, 97, 1, 64},
    {1, 2, 97, 97, 1},
    {2, 3, 1025, 97, 128},
    {1, 8, 1025, 1025, 8},
    {3, 1, 5, 13, 97},
    {1, 1, 4, 0, 16},
  };

  static Stream<Arguments> cases() {
    List<Arguments> out = new ArrayList<>();
    for (Backend backend : TestBackends.host()) {
      for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
        for (long[] shape : SHAPES) {
          out.add(Arguments.of(backend, dtype, shape));
        }
      }
    }
    return out.stream();
  }

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("cases")
  void matchesDefinitionBitForBit(Backend backend, DType dtype, long[] shape) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    long b = shape[0], h = shape[1], n = shape[2], k = shape[3], d = shape[4];
    try (Tensor src = RandomTensors.normal(rnd, dtype, b, h, n, d);
        Tensor idx = RandomTensors.indices(rnd, n, b, h, k);
        Tensor dst = RowGather.gatherRows(src, idx, Exec.backend(backend))) {
      assertEquals(Tolerances.GATHER_MAX_BIT_DIFFERENCES, bitDifferences(src, idx, dst), () -> backend + " " + dtype + ", seed " + seed);
    }
  }

  /** Special values (NaN payloads, infinities, signed zeros) are moved, never interpreted. */
  @Test
  void specialValuesKeepTheirBits() {
    short[] bits = {0x7e01, (short) 0xfc00, (short) 0x8000, 0x0001, 0x7bff, 0x7c01};
    for (Backend backend : TestBackends.host()) {
      try (Tensor src = Tensor.ofBits(bits, DType.F16, 1, 1, 3, 2);
          Tensor idx = Tensor.of(new int[] {2, 0, 1, 2}, 1, 1, 4);
          Tensor dst = RowGather.gatherRows(src, idx, Exec.backend(backend))) {
        assertEquals(Tolerances.GATHER_MAX_BIT_DIFFERENCES, bitDifferences(src, idx, dst), backend.toString());
      }
    }
  }

  @Test
  void autoPicksNativeForHostTensorsWhenLoaded() {
    TestBackends.assumeNative();
    SplittableRandom rnd = new SplittableRandom(RandomTensors.freshSeed());
    try (Tensor src = RandomTensors.normal(rnd, DType.BF16, 1, 2, 33, 16);
        Tensor idx = RandomTensors.indices(rnd, 33, 1, 2, 9);
        Tensor viaAuto = RowGather.gatherRows(src, idx)) {
      assertEquals(Tolerances.GATHER_MAX_BIT_DIFFERENCES, bitDifferences(src, idx, viaAuto));
    }
  }

  @Tag("gpu")
  @ParameterizedTest(name = "cuda {0}")
  @MethodSource("gpuCases")
  void cudaMatchesJava(DType dtype, long[] shape) {
    TestBackends.assumeCuda();
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    long b = shape[0], h = shape[1], n = shape[2], k = shape[3], d = shape[4];
    try (Tensor src = RandomTensors.normal(rnd, dtype, b, h, n, d);
        Tensor idx = RandomTensors.indices(rnd, n, b, h, k);
        Tensor srcGpu = src.to(Device.cuda(0));
        Tensor idxGpu = idx.to(Device.cuda(0));
        Tensor dstGpu = RowGather.gatherRows(srcGpu, idxGpu, Exec.backend(Backend.CUDA));
        Tensor dst = dstGpu.to(Device.CPU)) {
      assertEquals(Tolerances.GATHER_MAX_BIT_DIFFERENCES, bitDifferences(src, idx, dst), () -> "cuda " + dtype + ", seed " + seed);
    }
  }

  static Stream<Arguments> gpuCases() {
    List<Arguments> out = new ArrayList<>();
    for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
      for (long[] shape : SHAPES) {
        out.add(Arguments.of(dtype, shape));
      }
    }
    return out.stream();
  }

  /** Count of dst elements whose bits differ from src[b, h, idx[b, h, k], e]. */
  static long bitDifferences(Tensor src, Tensor idx, Tensor dst) {
    long n = src.shape(2), d = src.shape(3), k = idx.shape(2);
    long rows = idx.numel();
    long diffs = 0;
    for (long r = 0; r < rows; r++) {
      long bh = r / k;
      long srcRow = bh * n + idx.getLong(r);
      for (long e = 0; e < d; e++) {
        if (src.getBits(srcRow * d + e) != dst.getBits(r * d + e)) {
          diffs++;
        }
      }
    }
    return diffs;
  }
}
