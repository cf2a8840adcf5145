package io.github.llmkernels.sparse;

import static io.github.llmkernels.sparse.Sp24TestUtil.bits;
import static io.github.llmkernels.sparse.Sp24TestUtil.on;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
 * Compression and decompression are exact (bit for bit) and agree with the reference layout on
 * every backend, for weights drawn from the 6 valid patterns plus groups with 0 or 1 non-zeros.
 */
class Sparse24RoundTripTest {

  static final long[] ROWS = {1, 97, 256};
  static final long[] COLS = {16, 48, 1024};

  static Stream<Arguments> cases() {
    return casesFor(TestBackends.host());
  }

  static Stream<Arguments> gpuCases() {
    return casesFor(List.of(Backend.CUDA));
  }

  static Stream<Arguments> casesFor(List<Backend> backends) {
    List<Arguments> out = new ArrayList<>();
    for (Backend backend : backends) {
      for (DType dtype : Sp24TestUtil.DTYPES) {
        for (long m : ROWS) {
          for (long k : COLS) {
            out.add(Arguments.of(backend, dtype, m, k));
          }
        }
      }
    }
    return out.stream();
  }

  @Test
  void nativeLoadsUnlessSkipped() {
    TestBackends.requireNativeUnlessSkipped();
  }

  @ParameterizedTest(name = "{0} {1} M={2} K={3}")
  @MethodSource("cases")
  void roundTripIsExact(Backend backend, DType dtype, long m, long k) {
    check(backend, dtype, m, k);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0} {1} M={2} K={3}")
  @MethodSource("gpuCases")
  void cudaRoundTripIsExact(Backend backend, DType dtype, long m, long k) {
    TestBackends.assumeCuda();
    check(backend, dtype, m, k);
  }

  private static void check(Backend backend, DType dtype, long m, long k) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    Exec exec = Exec.backend(backend);
    String tag = backend + " " + dtype + " [" + m + ", " + k + "], seed " + seed;
    try (Tensor host = Sp24TestUtil.random24(rnd, dtype, m, k);
        Tensor w = on(backend, host);
        Sparse24Weight sw = Sparse24.compress(w, exec);
        Tensor back = Sparse24.decompress(sw, exec)) {
      assertNull(Sparse24.check(w, exec), tag);
      assertTrue(Sparse24.isSparse24(w, exec), tag);
      assertEquals(m, sw.m(), tag);
      assertEquals(k, sw.k(), tag);
      assertEquals(dtype, sw.dtype(), tag);
      assertEquals(w.device(), sw.device(), tag);
      assertEquals(DType.U16, sw.meta().dtype(), tag);
      assertArrayEquals(new long[] {m, k / 2}, sw.values().shape(), tag);
      assertArrayEquals(new long[] {m, k / 16}, sw.meta().shape(), tag);
      Tensor[] ref = Sparse24Ref.compress(host);
      try (Tensor values = ref[0]; Tensor meta = ref[1]) {
        assertArrayEquals(bits(values), bits(sw.values()), () -> tag + ": values differ from the reference");
        assertArrayEquals(bits(meta), bits(sw.meta()), () -> tag + ": meta differs from the reference");
      }
      assertEquals(Tolerances.SP24_ROUND_TRIP_MAX_BIT_DIFFERENCES, differences(bits(host), bits(back)),
          () -> tag + ": decompress(compress(w)) != w");
      // A weight wrapped from the same tensors (the interop path) decompresses the same way.
      try (Sparse24Weight wrapped = Sparse24Weight.of(sw.values().view(m, k / 2), sw.meta().view(m, k / 16));
          Tensor again = Sparse24.decompress(wrapped, exec)) {
        assertArrayEquals(bits(host), bits(again), tag);
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

  /** The nibbles of the anchors' examples and the fill rule of groups with 0 or 1 non-zeros. */
  @Test
  void metadataLayout() {
    float[] row = {
      1, 1, 0, 0, /* {0, 1}: 0b0100 */ 0, 0, 1, 1, /* {2, 3}: 0b1110 */
      0, 0, 0, 0, /* none: {0, 1} */ 0, 5, 0, 0, /* {1} + lowest zero 0: {0, 1} */
      0, 0, 0, 7, /* {0, 3}: 0b1100 */ 0, 0, 7, 0, /* {0, 2}: 0b1000 */
      3, 0, 0, 4, /* {0, 3} */ 0, -2, 0, 6, /* {1, 3}: 0b1101 */
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -9 /* {0, 3} */
    };
    int[] codes = {0b0100, 0b1110, 0b0100, 0b0100, 0b1100, 0b1000, 0b1100, 0b1101, 4, 4, 4, 4, 4, 4, 4, 0b1100};
    float[] values = {1, 1, 1, 1, 0, 0, 0, 5, 0, 7, 0, 7, 3, 4, -2, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -9};
    for (Backend backend : TestBackends.host()) {
      for (DType dtype : Sp24TestUtil.DTYPES) {
        String tag = backend + " " + dtype;
        try (Tensor w = Tensor.fromFloats(row, dtype, 1, 64);
            Sparse24Weight sw = Sparse24.compress(w, Exec.backend(backend))) {
          long[] meta = bits(sw.meta());
          for (int g = 0; g < codes.length; g++) {
            assertEquals(codes[g], (meta[g / 4] >> (4 * (g % 4))) & 15, tag + ": nibble of group " + g);
          }
          float[] got = sw.values().toFloatArray();
          assertArrayEquals(values, got, tag);
        }
      }
    }
  }

  @Test
  void compressedBytes() {
    for (DType dtype : Sp24TestUtil.DTYPES) {
      try (Tensor w = Tensor.zeros(dtype, Device.CPU, 64, 256); Sparse24Weight sw = Sparse24.compress(w)) {
        assertEquals(64L * 256 * dtype.byteSize(), sw.denseBytes());
        assertEquals(64L * 128 * dtype.byteSize() + 64L * 16 * 2, sw.bytes());
        assertEquals(dtype == DType.F32 ? 0.53125 : 0.5625, sw.bytesRatio(), 0.0, dtype.toString());
      }
    }
  }

  /** -0 counts as zero and NaN as a non-zero, as in the kernels. */
  @Test
  void signedZerosAndNaNs() {
    for (Backend backend : TestBackends.host()) {
      Exec exec = Exec.backend(backend);
      float[] row = new float[16];
      row[0] = -0f;
      row[1] = 1;
      row[2] = -0f;
      row[3] = 2;
      row[4] = Float.NaN;
      row[5] = 1;
      try (Tensor ok = Tensor.of(row, 1, 16)) {
        assertNull(Sparse24.check(ok, exec), backend.toString());
      }
      row[6] = 3;
      try (Tensor bad = Tensor.of(row, 1, 16)) {
        assertEquals(new Sparse24.Violation(0, 1), Sparse24.check(bad, exec), backend.toString());
      }
    }
  }
}
