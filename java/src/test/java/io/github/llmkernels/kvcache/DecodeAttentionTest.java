package io.github.llmkernels.kvcache;

import static io.github.llmkernels.kvcache.KvTestUtil.assertClose;
import static io.github.llmkernels.kvcache.KvTestUtil.assertMentions;
import static io.github.llmkernels.kvcache.KvTestUtil.message;
import static io.github.llmkernels.kvcache.KvTestUtil.on;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import io.github.llmkernels.testing.Tolerances;
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
 * Decode attention over a compacted cache (varlen and dense) equals dense attention over the full
 * cache restricted to the kept tokens ({@link DecodeAttentionRef#keptDense}), with GQA / MQA and
 * empty heads (out 0, lse -inf).
 */
class DecodeAttentionTest {

  /** B, Hq, Hkv, n, d. */
  static final int[][] SHAPES = {{1, 1, 1, 1, 8}, {1, 4, 1, 97, 64}, {2, 8, 2, 97, 16}, {1, 4, 4, 1025, 128},
    {3, 6, 3, 13, 5}};

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
  void compactedDecodeEqualsDenseOverKeptTokens(Backend backend, DType dtype, int[] shape) {
    check(backend, dtype, shape);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("gpuCases")
  void cudaCompactedDecodeEqualsDenseOverKeptTokens(Backend backend, DType dtype, int[] shape) {
    TestBackends.assumeCuda();
    check(backend, dtype, shape);
  }

  private static void check(Backend backend, DType dtype, int[] shape) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int b = shape[0], hq = shape[1], hkv = shape[2], n = shape[3], d = shape[4];
    Exec exec = Exec.backend(backend);
    String tag = backend + " " + dtype + " " + Arrays.toString(shape) + ", seed " + seed;
    int[][] budgets = new int[b][hkv];
    for (int[] row : budgets) {
      for (int i = 0; i < hkv; i++) {
        row[i] = rnd.nextInt(n + 1);
      }
    }
    budgets[0][0] = b * hkv > 1 ? 0 : budgets[0][0]; // an empty head where there are several
    double scale = 0.5 / Math.sqrt(d);
    try (Tensor kHost = RandomTensors.normal(rnd, dtype, b, hkv, n, d);
        Tensor vHost = RandomTensors.normal(rnd, dtype, b, hkv, n, d);
        Tensor qHost = RandomTensors.normal(rnd, dtype, b, hq, d);
        Tensor sHost = RandomTensors.normal(rnd, DType.F32, b, hkv, n);
        Tensor k = on(backend, kHost);
        Tensor v = on(backend, vHost);
        Tensor q = on(backend, qHost);
        Tensor s = on(backend, sHost);
        KeptTokens kept = KvSelection.select(s, budgets, 0, 0, exec);
        VarlenKvCache cache = KvCompaction.varlen(k, v, null, kept, exec);
        DecodeOutput o = DecodeAttention.forward(q, cache, scale, exec)) {
      int[] idx = kept.kept().toIntArray();
      int[][] perHead = new int[b * hkv][];
      for (int bh = 0; bh < b * hkv; bh++) {
        perHead[bh] = Arrays.copyOfRange(idx, bh * kept.maxKeep(), bh * kept.maxKeep() + budgets[bh / hkv][bh % hkv]);
      }
      DecodeAttentionRef.Result ref = DecodeAttentionRef.keptDense(qHost, kHost, vHost, perHead, scale);
      assertClose(ref.out(), o.out().toFloatArray(), Tolerances.kvDecodeAtol(dtype), Tolerances.kvDecodeRtol(dtype),
          () -> "out " + tag);
      assertClose(ref.lse(), o.lse().toFloatArray(), Tolerances.KV_DECODE_LSE_ATOL, Tolerances.KV_DECODE_LSE_RTOL,
          () -> "lse " + tag);
      if (b * hkv > 1) {
        float[] out = o.out().toFloatArray();
        for (int h = 0; h < hq / hkv; h++) { // query heads of the empty KV head (0, 0)
          assertEquals(Float.NEGATIVE_INFINITY, o.lse().toFloatArray()[h], tag);
          for (int e = 0; e < d; e++) {
            assertEquals(0f, out[h * d + e], tag);
          }
        }
      }
    }
    // Dense cache with uniform budgets.
    int common = 1 + rnd.nextInt(n);
    try (Tensor kHost = RandomTensors.normal(rnd, dtype, b, hkv, n, d);
        Tensor vHost = RandomTensors.normal(rnd, dtype, b, hkv, n, d);
        Tensor qHost = RandomTensors.normal(rnd, dtype, b, hq, d);
        Tensor sHost = RandomTensors.normal(rnd, DType.F32, b, hkv, n);
        Tensor k = on(backend, kHost);
        Tensor v = on(backend, vHost);
        Tensor q = on(backend, qHost);
        Tensor s = on(backend, sHost);
        KeptTokens kept = KvSelection.select(s, common, 0, 0, exec);
        DenseKvCache cache = KvCompaction.dense(k, v, null, kept, exec);
        DecodeOutput o = DecodeAttention.forward(q, cache, 0, exec)) {
      int[] idx = kept.kept().toIntArray();
      int[][] perHead = new int[b * hkv][];
      for (int bh = 0; bh < b * hkv; bh++) {
        perHead[bh] = Arrays.copyOfRange(idx, bh * common, (bh + 1) * common);
      }
      DecodeAttentionRef.Result ref = DecodeAttentionRef.keptDense(qHost, kHost, vHost, perHead, 1 / Math.sqrt(d));
      assertClose(ref.out(), o.out().toFloatArray(), Tolerances.kvDecodeAtol(dtype), Tolerances.kvDecodeRtol(dtype),
          () -> "dense out " + tag);
      assertClose(ref.lse(), o.lse().toFloatArray(), Tolerances.KV_DECODE_LSE_ATOL, Tolerances.KV_DECODE_LSE_RTOL,
          () -> "dense lse " + tag);
    }
  }

  @Test
  void badInputs() {
    try (Tensor k = Tensor.of(new float[2 * 4 * 8], 1, 2, 4, 8);
        Tensor v = Tensor.of(new float[2 * 4 * 8], 1, 2, 4, 8);
        Tensor s = Tensor.of(new float[8], 1, 2, 4);
        KeptTokens kept = KvSelection.select(s, 2, 0, 0);
        VarlenKvCache cache = KvCompaction.varlen(k, v, null, kept)) {
      try (Tensor q3 = Tensor.of(new float[3 * 8], 1, 3, 8)) {
        assertMentions(message(IllegalArgumentException.class, () -> DecodeAttention.forward(q3, cache)),
            "Hkv = 2", "Hq = 3");
      }
      try (Tensor qh = Tensor.fromFloats(new float[2 * 8], DType.BF16, 1, 2, 8)) {
        assertMentions(message(IllegalArgumentException.class, () -> DecodeAttention.forward(qh, cache)),
            "dtype");
      }
      try (Tensor qd = Tensor.of(new float[2 * 4], 1, 2, 4)) {
        assertMentions(message(IllegalArgumentException.class, () -> DecodeAttention.forward(qd, cache)),
            "d (from q) = 4");
      }
      try (Tensor q2 = Tensor.of(new float[2 * 2 * 8], 2, 2, 8)) {
        assertMentions(message(IllegalArgumentException.class, () -> DecodeAttention.forward(q2, cache)),
            "B = 2");
      }
      try (Tensor q = Tensor.of(new float[2 * 8], 1, 2, 8)) {
        assertMentions(message(IllegalArgumentException.class, () -> DecodeAttention.forward(q, cache, -1)),
            "scale");
      }
    }
    // A dense cache is a public record: a v that is not k's twin must be rejected before any
    // native call would read it as k's shape (review finding: v in BF16 under an F32 k).
    try (Tensor q = Tensor.of(new float[2 * 8], 1, 2, 8);
        Tensor k = Tensor.of(new float[2 * 4 * 8], 1, 2, 4, 8);
        Tensor vHalf = Tensor.fromFloats(new float[2 * 4 * 8], DType.BF16, 1, 2, 4, 8);
        Tensor vFolded = Tensor.of(new float[2 * 4 * 8], 1, 2, 8, 4)) {
      for (Tensor v : new Tensor[] {vHalf, vFolded}) {
        DenseKvCache cache = new DenseKvCache(k, v, null);
        assertMentions(message(IllegalArgumentException.class, () -> DecodeAttention.forward(q, cache)),
            "cache.v must have cache.k's shape, dtype and device");
      }
    }
  }
}
