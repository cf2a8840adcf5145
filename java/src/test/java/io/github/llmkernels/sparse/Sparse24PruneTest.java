package io.github.llmkernels.sparse;

import static io.github.llmkernels.sparse.Sp24TestUtil.bits;
import static io.github.llmkernels.sparse.Sp24TestUtil.on;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Pruning keeps the 2 highest scores of every group (|w|, or |w| * colNorms[k] for Wanda), ties
 * to the lower position, bit for bit on every backend; its output is 2:4.
 */
class Sparse24PruneTest {

  /** Groups and the expected pruned groups (magnitude). */
  static final float[][][] GROUPS = {
    {{1, -3, 2, 0.5f}, {0, -3, 2, 0}},
    {{1, 1, 1, 1}, {1, 1, 0, 0}}, // all tied: the two lowest positions
    {{2, 1, 2, 2}, {2, 0, 2, 0}},
    {{-1, 2, 1, -2}, {0, 2, 0, -2}}, // |.| ties between positions 1 and 3, and 0 and 2
    {{3, 1, 1, 1}, {3, 1, 0, 0}},
    {{1, 1, 3, 1}, {1, 0, 3, 0}},
    {{0, 0, 0, 0}, {0, 0, 0, 0}},
    {{0, 0, -5, 0}, {0, 0, -5, 0}},
    {{0.25f, -0.25f, 0.5f, -0.25f}, {0.25f, 0, 0.5f, 0}},
  };

  @Test
  void keepsTheTwoLargestTiesToTheLowerPosition() {
    float[] w = new float[16 * ((GROUPS.length + 3) / 4)];
    float[] expected = new float[w.length];
    for (int g = 0; g < GROUPS.length; g++) {
      System.arraycopy(GROUPS[g][0], 0, w, 4 * g, 4);
      System.arraycopy(GROUPS[g][1], 0, expected, 4 * g, 4);
    }
    for (Backend backend : TestBackends.host()) {
      for (DType dtype : Sp24TestUtil.DTYPES) {
        try (Tensor t = Tensor.fromFloats(w, dtype, 1, w.length);
            Tensor p = Sparse24.prune(t, Exec.backend(backend))) {
          assertArrayEquals(expected, p.toFloatArray(), backend + " " + dtype);
        }
      }
    }
  }

  /** Wanda: column norms change the choice: [1, 2, 3, 4] keeps {2, 3} by magnitude, {0, 3} with norms [10, 1, 1, 1]. */
  @Test
  void wandaColumnNormsChangeTheChoice() {
    float[] w = new float[16];
    float[] norms = new float[16];
    Arrays.fill(norms, 1);
    System.arraycopy(new float[] {1, 2, 3, 4}, 0, w, 0, 4);
    norms[0] = 10;
    System.arraycopy(new float[] {4, 3, 2, 1}, 0, w, 4, 4);
    norms[6] = 1.75f; // scores 4, 3, 3.5, 1: keeps {0, 2}
    System.arraycopy(new float[] {2, 1, 1, 2}, 0, w, 8, 4);
    norms[9] = 2; // scores 2, 2, 1, 2: ties keep {0, 1}
    float[] magnitude = new float[16];
    System.arraycopy(new float[] {0, 0, 3, 4, 4, 3, 0, 0, 2, 0, 0, 2}, 0, magnitude, 0, 12);
    float[] wanda = new float[16];
    System.arraycopy(new float[] {1, 0, 0, 4, 4, 0, 2, 0, 2, 1, 0, 0}, 0, wanda, 0, 12);
    for (Backend backend : TestBackends.host()) {
      for (DType dtype : Sp24TestUtil.DTYPES) {
        Exec exec = Exec.backend(backend);
        try (Tensor t = Tensor.fromFloats(w, dtype, 1, 16);
            Tensor n = Tensor.of(norms, 16);
            Tensor pm = Sparse24.prune(t, exec);
            Tensor pw = Sparse24.prune(t, n, exec)) {
          assertArrayEquals(magnitude, pm.toFloatArray(), backend + " " + dtype + " magnitude");
          assertArrayEquals(wanda, pw.toFloatArray(), backend + " " + dtype + " Wanda");
        }
      }
    }
  }

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
        for (boolean wanda : new boolean[] {false, true}) {
          out.add(Arguments.of(backend, dtype, wanda));
        }
      }
    }
    return out.stream();
  }

  @ParameterizedTest(name = "{0} {1} wanda={2}")
  @MethodSource("cases")
  void randomWeights(Backend backend, DType dtype, boolean wanda) {
    check(backend, dtype, wanda);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0} {1} wanda={2}")
  @MethodSource("gpuCases")
  void cudaRandomWeights(Backend backend, DType dtype, boolean wanda) {
    TestBackends.assumeCuda();
    check(backend, dtype, wanda);
  }

  /**
   * Random weights with many ties (values from a small set): the kept positions are the first two
   * of the group's positions sorted by (score descending, position ascending); the result is 2:4,
   * equals the reference bit for bit, and in-place pruning gives the same.
   */
  private static void check(Backend backend, DType dtype, boolean wanda) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    Exec exec = Exec.backend(backend);
    String tag = backend + " " + dtype + " wanda=" + wanda + ", seed " + seed;
    int m = 97;
    int k = 208;
    float[] raw = new float[m * k];
    for (int i = 0; i < raw.length; i++) {
      raw[i] = rnd.nextInt(4) == 0 ? (rnd.nextInt(7) - 3) * 0.5f : (float) RandomTensors.gaussian(rnd);
    }
    float[] norms = new float[k];
    for (int i = 0; i < k; i++) {
      norms[i] = rnd.nextInt(3) == 0 ? 1 : (float) (0.1 + 2 * rnd.nextDouble());
    }
    try (Tensor host = Tensor.fromFloats(raw, dtype, m, k);
        Tensor normsHost = Tensor.of(norms, k);
        Tensor w = on(backend, host);
        Tensor n = on(backend, normsHost);
        Tensor pruned = Sparse24.prune(w, wanda ? n : null, exec);
        Tensor inPlace = on(backend, host);
        Tensor refPruned = Sparse24Ref.prune(host, wanda ? normsHost : null)) {
      Sparse24.pruneInto(inPlace, wanda ? n : null, inPlace, exec);
      assertNull(Sparse24.check(pruned, exec), tag);
      long[] got = bits(pruned);
      long[] in = bits(host);
      double[] values = Sp24TestUtil.doubles(host);
      for (int r = 0; r < m; r++) {
        for (int g = 0; g < k / 4; g++) {
          int base = r * k + 4 * g;
          int group = g;
          Integer[] order = {0, 1, 2, 3};
          Arrays.sort(order, Comparator.comparingDouble(
                  (Integer i) -> -(float) (Math.abs(values[base + i]) * (wanda ? norms[4 * group + i] : 1f)))
              .thenComparingInt(i -> i));
          for (int i = 0; i < 4; i++) {
            boolean kept = i == order[0] || i == order[1];
            long expected = kept ? in[base + i] : 0;
            if (got[base + i] != expected) {
              throw new AssertionError(tag + ": row " + r + ", group " + g + ", position " + i + " has bits 0x"
                  + Long.toHexString(got[base + i]) + ", expected 0x" + Long.toHexString(expected)
                  + " (group " + Arrays.toString(Arrays.copyOfRange(values, base, base + 4)) + ")");
            }
          }
        }
      }
      assertArrayEquals(bits(refPruned), got, tag + ": differs from the reference");
      assertArrayEquals(got, bits(inPlace), tag + ": in-place pruning differs");
      // A 2:4 weight is left as it is.
      try (Tensor again = Sparse24.prune(pruned, exec)) {
        assertArrayEquals(got, bits(again), tag + ": pruning a 2:4 weight changed it");
      }
    }
  }

  @Test
  void emptyWeights() {
    for (Backend backend : TestBackends.host()) {
      Exec exec = Exec.backend(backend);
      try (Tensor w = Tensor.zeros(DType.BF16, Device.CPU, 0, 32);
          Tensor p = Sparse24.prune(w, exec);
          Sparse24Weight sw = Sparse24.compress(w, exec);
          Tensor back = Sparse24.decompress(sw, exec);
          Tensor w0 = Tensor.zeros(DType.F16, Device.CPU, 5, 0);
          Sparse24Weight sw0 = Sparse24.compress(w0, exec)) {
        assertArrayEquals(new long[] {0, 32}, p.shape());
        assertArrayEquals(new long[] {0, 32}, back.shape());
        assertArrayEquals(new long[] {5, 0}, sw0.values().shape());
        assertEquals(0, sw0.bytes());
      }
    }
  }
}
