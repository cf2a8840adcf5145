package io.github.llmkernels.kvcache;

import static io.github.llmkernels.kvcache.KvTestUtil.assertClose;
import static io.github.llmkernels.kvcache.KvTestUtil.on;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import io.github.llmkernels.testing.Tolerances;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every scorer on every backend against {@link KvScoresRef} on fresh random inputs: n 1, 97,
 * 1025 and ragged sizes, MHA / GQA / MQA, F32 / F16 / BF16, every pooling.
 */
class KvScoresParityTest {

  /** B, Hq, Hkv, n, d, window. */
  static final int[][] SHAPES = {
    {1, 1, 1, 1, 8, 1},
    {1, 4, 1, 97, 64, 16},    // MQA
    {2, 8, 2, 97, 16, 7},     // GQA 4
    {1, 2, 2, 1025, 64, 8},
    {3, 3, 3, 13, 5, 13},     // window = n
  };

  static Stream<Arguments> cases() {
    return casesFor(TestBackends.host());
  }

  static Stream<Arguments> gpuCases() {
    return casesFor(List.of(Backend.CUDA));
  }

  static Stream<Arguments> casesFor(List<Backend> backends) {
    return KvTestUtil.backendDtypeShapes(backends, SHAPES);
  }

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("cases")
  void everyScorerMatchesTheReference(Backend backend, DType dtype, int[] shape) {
    checkAll(backend, dtype, shape);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("gpuCases")
  void cudaScorersMatchTheReference(Backend backend, DType dtype, int[] shape) {
    TestBackends.assumeCuda();
    checkAll(backend, dtype, shape);
  }

  private static void checkAll(Backend backend, DType dtype, int[] shape) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int b = shape[0], hq = shape[1], hkv = shape[2], n = shape[3], d = shape[4], w = shape[5];
    Exec exec = Exec.backend(backend);
    Device device = backend == Backend.CUDA ? Device.cuda(0) : Device.CPU;
    String tag = backend + " " + dtype + " " + java.util.Arrays.toString(shape) + ", seed " + seed;
    try (Tensor kHost = RandomTensors.normal(rnd, dtype, b, hkv, n, d);
        Tensor qHost = RandomTensors.normal(rnd, dtype, b, hq, w, d);
        Tensor qLastHost = RandomTensors.normal(rnd, dtype, b, hq, 1, d);
        Tensor k = on(backend, kHost);
        Tensor q = on(backend, qHost);
        Tensor qLast = on(backend, qLastHost)) {
      try (Tensor s = KvScores.knorm(k, exec)) {
        assertClose(KvScoresRef.knorm(kHost), s.toFloatArray(), Tolerances.KV_SCORE_ATOL, Tolerances.KV_SCORE_RTOL,
            () -> "knorm " + tag);
      }
      try (Tensor s = KvScores.recency(b, hkv, n, device, exec)) {
        assertArrayEquals(KvTestUtil.floats(KvScoresRef.recency(b, hkv, n)), s.toFloatArray(), () -> "recency " + tag);
      }
      for (int[] lr : new int[][] {{0, 1}, {3, 4}, {5, 2}}) {
        try (Tensor s = KvScores.ladder(b, hkv, n, lr[0], lr[1], device, exec)) {
          assertArrayEquals(KvTestUtil.floats(KvScoresRef.ladder(b, hkv, n, lr[0], lr[1])), s.toFloatArray(),
              () -> "ladder " + lr[0] + "/" + lr[1] + " " + tag);
        }
      }
      for (KvPooling pooling : KvPooling.values()) {
        for (int kernel : pooling == KvPooling.NONE ? new int[] {0} : new int[] {0, 1, 3}) {
          SnapKvOptions o = SnapKvOptions.pooling(pooling).withKernel(kernel);
          try (Tensor s = KvScores.snapKv(q, k, o, exec)) {
            double[] ref = KvScoresRef.snapKv(qHost, kHost, pooling, o.resolvedKernel(), o.resolvedScale(d));
            assertClose(ref, s.toFloatArray(), Tolerances.KV_SCORE_ATOL, Tolerances.KV_SCORE_RTOL,
                () -> "snapKv " + o + " " + tag);
          }
        }
      }
      try (Tensor s = KvScores.tova(qLast, k, exec)) {
        double[] ref = KvScoresRef.snapKv(qLastHost, kHost, KvPooling.NONE, 1, 1 / Math.sqrt(d));
        assertClose(ref, s.toFloatArray(), Tolerances.KV_SCORE_ATOL, Tolerances.KV_SCORE_RTOL, () -> "tova " + tag);
      }
      try (ObservedAttention state = ObservedAttention.create(b, hkv, n, device);
          Tensor s = KvScores.observed(q, k, state, 0.5, exec)) {
        double[] sum = new double[b * hkv * n];
        double[] count = new double[b * hkv * n];
        double[] ref = KvScoresRef.observed(qHost, kHost, 0.5, sum, count);
        assertClose(ref, s.toFloatArray(), Tolerances.KV_SCORE_ATOL, Tolerances.KV_SCORE_RTOL,
            () -> "observed " + tag);
        assertClose(sum, state.attnSum().toFloatArray(), Tolerances.KV_SCORE_ATOL, Tolerances.KV_SCORE_RTOL,
            () -> "attn_sum " + tag);
        assertClose(count, state.attnCount().toFloatArray(), 0, 0, () -> "attn_count " + tag);
      }
    }
  }

  /**
   * H2O accumulation: three decode-style calls (the cache grows, each call's queries are the
   * newest positions) equal one call over all queries at the final length.
   */
  @Test
  void observedAccumulatesAcrossCalls() {
    for (Backend backend : TestBackends.host()) {
      long seed = RandomTensors.freshSeed();
      SplittableRandom rnd = new SplittableRandom(seed);
      int b = 2, hq = 4, hkv = 2, d = 16, n = 40;
      int[] chunks = {3, 1, 5};
      int m = 9;
      try (Tensor k = RandomTensors.normal(rnd, DType.F32, b, hkv, n, d);
          Tensor q = RandomTensors.normal(rnd, DType.F32, b, hq, m, d);
          ObservedAttention whole = ObservedAttention.create(b, hkv, n, Device.CPU);
          Tensor once = KvScores.observed(q, k, whole, 0, Exec.backend(backend));
          ObservedAttention steps = ObservedAttention.create(b, hkv, n - m + chunks[0], Device.CPU)) {
        int done = 0;
        Tensor last = null;
        for (int c : chunks) {
          int len = n - m + done + c;
          steps.grow(len);
          try (Tensor kc = prefix(k, len);
              Tensor qc = slice(q, done, done + c)) {
            if (last != null) {
              last.close();
            }
            last = KvScores.observed(qc, kc, steps, 0, Exec.backend(backend));
          }
          done += c;
        }
        try (Tensor l = last) {
          double[] ref = KvScores.asDoubleArray(once);
          assertClose(ref, l.toFloatArray(), Tolerances.KV_SCORE_ATOL, Tolerances.KV_SCORE_RTOL,
              () -> backend + " seed " + seed);
          assertClose(KvScores.asDoubleArray(whole.attnCount()), steps.attnCount().toFloatArray(), 0, 0,
              () -> backend + " counts, seed " + seed);
        }
      }
    }
  }

  /** The first len tokens of every head of x [B, H, n, d], contiguous (host). */
  static Tensor prefix(Tensor x, int len) {
    try (Tensor s = x.slice(2, 0, len)) {
      return s.contiguous();
    }
  }

  static Tensor slice(Tensor x, int from, int to) {
    try (Tensor s = x.slice(2, from, to)) {
      return s.contiguous();
    }
  }
}
