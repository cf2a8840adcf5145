package io.github.llmkernels.kvcache;

import static io.github.llmkernels.kvcache.KvTestUtil.assertMentions;
import static io.github.llmkernels.kvcache.KvTestUtil.message;
import static io.github.llmkernels.kvcache.KvTestUtil.on;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Dense, varlen and in-place compaction keep the same (position, K row, V row) sets, bit for
 * bit; in-place moves only the kept rows beyond the new length and leaves the slots at or beyond
 * it untouched.
 */
class KvCompactionTest {

  /** B, H, n, d. */
  static final int[][] SHAPES = {{1, 1, 1, 1}, {1, 2, 97, 64}, {2, 3, 1025, 8}, {3, 1, 13, 97}};

  static Stream<Arguments> cases() {
    return casesFor(TestBackends.host());
  }

  static Stream<Arguments> gpuCases() {
    return casesFor(List.of(Backend.CUDA));
  }

  static Stream<Arguments> casesFor(List<Backend> backends) {
    List<Arguments> out = new ArrayList<>();
    for (Backend backend : backends) {
      for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
        for (int[] shape : SHAPES) {
          for (boolean uniform : new boolean[] {true, false}) {
            out.add(Arguments.of(backend, dtype, shape, uniform));
          }
        }
      }
    }
    return out.stream();
  }

  @ParameterizedTest(name = "{0} {1} {2} uniform={3}")
  @MethodSource("cases")
  void layoutsAgreeBitForBit(Backend backend, DType dtype, int[] shape, boolean uniform) {
    check(backend, dtype, shape, uniform);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0} {1} {2} uniform={3}")
  @MethodSource("gpuCases")
  void cudaLayoutsAgreeBitForBit(Backend backend, DType dtype, int[] shape, boolean uniform) {
    TestBackends.assumeCuda();
    check(backend, dtype, shape, uniform);
  }

  private static void check(Backend backend, DType dtype, int[] shape, boolean uniform) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int b = shape[0], h = shape[1], n = shape[2], d = shape[3];
    Exec exec = Exec.backend(backend);
    String tag = backend + " " + dtype + " " + Arrays.toString(shape) + ", seed " + seed;
    int[] pos = new int[b * h * n];
    for (int i = 0; i < pos.length; i++) {
      pos[i] = 1000 + 3 * (i % n) + rnd.nextInt(3); // distinct per head, not equal to the slot
    }
    int[][] budgets = new int[b][h];
    int common = rnd.nextInt(n + 1);
    for (int[] row : budgets) {
      for (int i = 0; i < h; i++) {
        row[i] = uniform ? common : rnd.nextInt(n + 1);
      }
    }
    try (Tensor kHost = RandomTensors.normal(rnd, dtype, b, h, n, d);
        Tensor vHost = RandomTensors.normal(rnd, dtype, b, h, n, d);
        Tensor pHost = Tensor.of(pos, b, h, n);
        Tensor sHost = RandomTensors.normal(rnd, DType.F32, b, h, n);
        Tensor k = on(backend, kHost);
        Tensor v = on(backend, vHost);
        Tensor p = on(backend, pHost);
        Tensor s = on(backend, sHost);
        KeptTokens kept = KvSelection.select(s, budgets, 0, 0, exec)) {
      int[] idx = kept.kept().toIntArray();
      int maxKeep = kept.maxKeep();
      // Expected: per head, position -> (k bits, v bits) of every kept slot.
      List<Map<Integer, String>> expected = new ArrayList<>();
      for (int bh = 0; bh < b * h; bh++) {
        Map<Integer, String> m = new HashMap<>();
        for (int i = 0; i < budgets[bh / h][bh % h]; i++) {
          int slot = idx[bh * maxKeep + i];
          m.put(pos[bh * n + slot], rowBits(kHost, (long) bh * n + slot, d) + "|" + rowBits(vHost, (long) bh * n + slot, d));
        }
        expected.add(m);
      }
      try (VarlenKvCache c = KvCompaction.varlen(k, v, p, kept, exec);
          Tensor ck = c.k().to(Device.CPU);
          Tensor cv = c.v().to(Device.CPU)) {
        int[] cp = c.positions().toIntArray();
        long[] cu = c.cu();
        assertArrayEquals(kept.cumulative(), cu, tag);
        for (int bh = 0; bh < b * h; bh++) {
          Map<Integer, String> m = new HashMap<>();
          for (long r = cu[bh]; r < cu[bh + 1]; r++) {
            m.put(cp[(int) r], rowBits(ck, r, d) + "|" + rowBits(cv, r, d));
          }
          assertEquals(expected.get(bh), m, "varlen head " + bh + " " + tag);
        }
      }
      if (uniform) {
        try (DenseKvCache c = KvCompaction.dense(k, v, p, kept, exec);
            Tensor ck = c.k().to(Device.CPU);
            Tensor cv = c.v().to(Device.CPU)) {
          int[] cp = c.positions().toIntArray();
          for (int bh = 0; bh < b * h; bh++) {
            Map<Integer, String> m = new HashMap<>();
            for (int i = 0; i < common; i++) {
              long r = (long) bh * common + i;
              m.put(cp[(int) r], rowBits(ck, r, d) + "|" + rowBits(cv, r, d));
            }
            assertEquals(expected.get(bh), m, "dense head " + bh + " " + tag);
          }
        }
        try (DenseKvCache c = KvCompaction.dense(k, v, null, kept, exec)) {
          assertArrayEquals(Arrays.copyOf(idx, b * h * common), c.positions().toIntArray(), "null positions = slots");
        }
      }
      // In place on copies: moves only kept rows at or beyond the new length into the holes.
      try (Tensor k2 = k.to(k.device());
          Tensor v2 = v.to(v.device());
          Tensor p2 = p.to(p.device())) {
        int[][] lengths = KvCompaction.inPlace(k2, v2, p2, kept, exec);
        assertArrayEquals(budgets, lengths);
        try (Tensor hk = k2.to(Device.CPU);
            Tensor hv = v2.to(Device.CPU)) {
          int[] hp = p2.toIntArray();
          for (int bh = 0; bh < b * h; bh++) {
            int count = budgets[bh / h][bh % h];
            Map<Integer, String> m = new HashMap<>();
            boolean[] keptSlot = new boolean[n];
            for (int i = 0; i < count; i++) {
              keptSlot[idx[bh * maxKeep + i]] = true;
            }
            for (int slot = 0; slot < n; slot++) {
              long r = (long) bh * n + slot;
              String now = rowBits(hk, r, d) + "|" + rowBits(hv, r, d);
              if (slot < count) {
                m.put(hp[(int) r], now);
                if (keptSlot[slot]) { // kept below the length: must not have moved
                  assertEquals(rowBits(kHost, r, d) + "|" + rowBits(vHost, r, d), now, "kept slot moved " + tag);
                  assertEquals(pos[(int) r], hp[(int) r], tag);
                }
              } else { // beyond the length: untouched
                assertEquals(rowBits(kHost, r, d) + "|" + rowBits(vHost, r, d), now, "slot " + slot + " touched " + tag);
                assertEquals(pos[(int) r], hp[(int) r], tag);
              }
            }
            assertEquals(expected.get(bh), m, "in-place head " + bh + " " + tag);
          }
        }
      }
    }
  }

  static String rowBits(Tensor t, long row, int d) {
    StringBuilder sb = new StringBuilder();
    for (int e = 0; e < d; e++) {
      sb.append(Long.toHexString(t.getBits(row * d + e))).append(',');
    }
    return sb.toString();
  }

  @Test
  void inPlaceMovesAreTheDocumentedOnes() {
    // keep slots 1, 4, 6, 7 of 8: count 4; slot 1 stays; holes 0, 2, 3 take 4, 6, 7.
    List<KvCompactionRef.Move> moves = KvCompactionRef.inPlaceMoves(new int[] {1, 4, 6, 7}, 4);
    assertEquals(List.of(new KvCompactionRef.Move(4, 0), new KvCompactionRef.Move(6, 2),
        new KvCompactionRef.Move(7, 3)), moves);
    assertEquals(List.of(), KvCompactionRef.inPlaceMoves(new int[] {0, 1, 2}, 3));
  }

  @Test
  void badKeptIndicesAreRejectedBeforeAnythingMoves() {
    for (Backend backend : TestBackends.host()) {
      Exec exec = Exec.backend(backend);
      for (int bad : new int[] {-1, 6, Integer.MAX_VALUE}) {
        try (Tensor k = Tensor.of(filled(1 * 2 * 6 * 3, 1f), 1, 2, 6, 3);
            Tensor v = Tensor.of(filled(1 * 2 * 6 * 3, 2f), 1, 2, 6, 3);
            Tensor p = Tensor.of(new int[12], 1, 2, 6);
            KeptTokens kept = KeptTokens.of(Tensor.of(new int[] {0, 2, 1, bad}, 1, 2, 2),
                new int[][] {{2, 2}}, 6)) {
          String m = message(IllegalArgumentException.class, () -> KvCompaction.varlen(k, v, p, kept, exec));
          assertMentions(m, String.valueOf(bad));
          m = message(IllegalArgumentException.class, () -> KvCompaction.inPlace(k, v, p, kept, exec));
          assertMentions(m, String.valueOf(bad));
          m = message(IllegalArgumentException.class, () -> KvCompaction.dense(k, v, p, kept, exec));
          assertMentions(m, String.valueOf(bad));
          for (float x : k.toFloatArray()) {
            assertEquals(1f, x, backend + ": k untouched");
          }
        }
      }
      // Not ascending for in-place.
      try (Tensor k = Tensor.of(new float[12], 1, 1, 4, 3);
          Tensor v = Tensor.of(new float[12], 1, 1, 4, 3);
          KeptTokens kept = KeptTokens.of(Tensor.of(new int[] {2, 1}, 1, 1, 2), new int[][] {{2}}, 4)) {
        assertThrows(IllegalArgumentException.class, () -> KvCompaction.inPlace(k, v, null, kept, exec));
      }
    }
  }

  @Test
  void badShapesDtypesAndClosedTensors() {
    try (Tensor k = Tensor.of(new float[2 * 4 * 3], 1, 2, 4, 3);
        Tensor v = Tensor.of(new float[2 * 4 * 3], 1, 2, 4, 3);
        Tensor s = Tensor.of(new float[8], 1, 2, 4);
        KeptTokens kept = KvSelection.select(s, 2, 0, 0)) {
      try (Tensor v3 = Tensor.of(new float[3 * 4 * 3], 1, 3, 4, 3)) {
        assertMentions(message(IllegalArgumentException.class, () -> KvCompaction.varlen(k, v3, null, kept)),
            "v must have the shape of k");
      }
      try (Tensor p = Tensor.of(new float[8], 1, 2, 4)) {
        assertMentions(message(IllegalArgumentException.class, () -> KvCompaction.varlen(k, v, p, kept)),
            "positions must have dtype I32");
      }
      try (Tensor k3 = Tensor.of(new float[3 * 4 * 3], 1, 3, 4, 3);
          Tensor v3 = Tensor.of(new float[3 * 4 * 3], 1, 3, 4, 3)) {
        assertMentions(message(IllegalArgumentException.class, () -> KvCompaction.varlen(k3, v3, null, kept)),
            "kept is for [B, Hkv] = [1, 2]");
      }
      try (Tensor k5 = Tensor.of(new float[2 * 5 * 3], 1, 2, 5, 3);
          Tensor v5 = Tensor.of(new float[2 * 5 * 3], 1, 2, 5, 3)) {
        assertMentions(message(IllegalArgumentException.class, () -> KvCompaction.inPlace(k5, v5, null, kept)),
            "selected over n = 4");
      }
      try (Tensor ki = Tensor.of(new int[2 * 4 * 3], 1, 2, 4, 3)) {
        assertMentions(message(IllegalArgumentException.class, () -> KvCompaction.varlen(ki, ki, null, kept)),
            "k must have dtype");
      }
      Tensor closed = Tensor.of(new float[2 * 4 * 3], 1, 2, 4, 3);
      closed.close();
      assertThrows(IllegalStateException.class, () -> KvCompaction.varlen(closed, v, null, kept));
      try (Tensor s2 = Tensor.of(new float[16], 1, 2, 8);
          KeptTokens ragged = KvSelection.select(s2, new int[][] {{2, 3}}, 0, 0);
          Tensor k8 = Tensor.of(new float[2 * 8 * 3], 1, 2, 8, 3);
          Tensor v8 = Tensor.of(new float[2 * 8 * 3], 1, 2, 8, 3)) {
        assertMentions(message(IllegalArgumentException.class, () -> KvCompaction.dense(k8, v8, null, ragged)),
            "uniform budgets");
      }
    }
  }

  static float[] filled(int n, float value) {
    float[] f = new float[n];
    Arrays.fill(f, value);
    return f;
  }
}
