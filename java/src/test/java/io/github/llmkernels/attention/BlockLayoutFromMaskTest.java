package io.github.llmkernels.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link BlockLayout#fromBlockMask} equals {@code compile(base AND blocks(bitmap))} tile for tile
 * (PARTIAL / FULL included) on every backend: per-head bitmaps, per-batch bitmaps, broadcast
 * bitmaps, Sq < Sk, ragged last blocks, base masks causal and sliding window.
 */
class BlockLayoutFromMaskTest {

  /** B, Hq, Sq, Sk, blockQ, blockK. */
  static final int[][] GEOMETRIES = {
      {1, 2, 97, 97, 16, 16},
      {2, 3, 100, 230, 32, 16},
      {1, 1, 1, 1, 64, 64},
      {2, 2, 130, 130, 64, 64}};

  static Stream<Arguments> cases() {
    return casesFor(TestBackends.host());
  }

  static Stream<Arguments> gpuCases() {
    return casesFor(List.of(Backend.CUDA));
  }

  static Stream<Arguments> casesFor(List<Backend> backends) {
    Stream.Builder<Arguments> out = Stream.builder();
    for (Backend backend : backends) {
      for (int[] g : GEOMETRIES) {
        out.add(Arguments.of(backend, g));
      }
    }
    return out.build();
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void equalsCompileOfBaseAndBlocks(Backend backend, int[] g) {
    check(backend, g);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("gpuCases")
  void cudaEqualsCompileOfBaseAndBlocks(Backend backend, int[] g) {
    TestBackends.assumeCuda();
    check(backend, g);
  }

  private static void check(Backend backend, int[] g) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int b = g[0], hq = g[1], sq = g[2], sk = g[3], bq = g[4], bk = g[5];
    int nqb = (sq + bq - 1) / bq;
    int nkb = (sk + bk - 1) / bk;
    Device device = backend == Backend.CUDA ? Device.cuda(0) : Device.CPU;
    Exec exec = Exec.backend(backend);
    for (MaskSpec base : new MaskSpec[] {MaskSpec.causal(), MaskSpec.causal().and(MaskSpec.slidingWindow(40)),
        MaskSpec.all()}) {
      for (int[] dims : new int[][] {{1, hq}, {b, hq}, {1, 1}, {b, 1}}) {
        int mb = dims[0];
        int mh = dims[1];
        double p = rnd.nextDouble();
        boolean[][][][] bits = new boolean[mb][mh][nqb][nkb];
        byte[] bytes = new byte[mb * mh * nqb * nkb];
        int n = 0;
        for (int x = 0; x < mb; x++) {
          for (int h = 0; h < mh; h++) {
            for (int qb = 0; qb < nqb; qb++) {
              for (int kb = 0; kb < nkb; kb++) {
                boolean on = rnd.nextDouble() < p;
                bits[x][h][qb][kb] = on;
                bytes[n++] = (byte) (on ? 1 + rnd.nextInt(255) : 0); // any non-zero byte selects
              }
            }
          }
        }
        String ctx = backend + " " + java.util.Arrays.toString(g) + " base " + base + " mask " + mb + "x" + mh
            + ", seed " + seed;
        try (Tensor host = Tensor.of(bytes, DType.U8, mb, mh, nqb, nkb);
            Tensor mask = PrefillTestUtil.on(backend, host);
            BlockLayout got = BlockLayout.fromBlockMask(base, b, hq, sq, sk, bq, bk, mask, device, exec)) {
          assertEquals(base, got.mask(), ctx);
          assertEquals(Math.max(mb, base.layoutBatch(b)), got.layoutBatch(), ctx);
          assertEquals(backend, got.backend(), ctx);
          for (int x = 0; x < b; x++) {
            // one batch at a time: MaskSpec.blocks is per head only
            boolean[][][] perHead = bits[mb == 1 ? 0 : x];
            try (BlockLayout want = BlockLayout.compile(base.and(MaskSpec.blocks(bq, bk, perHead)), 1, hq, sq, sk,
                bq, bk, null, null, Device.CPU, Exec.backend(Backend.JAVA))) {
              for (int h = 0; h < hq; h++) {
                for (int qb = 0; qb < nqb; qb++) {
                  BlockLayout.KvBlocks w = want.kvBlocks(0, h, qb);
                  BlockLayout.KvBlocks a = got.kvBlocks(x, h, qb);
                  String where = " (b " + x + ", h " + h + ", qb " + qb + "): " + ctx;
                  assertArrayEquals(w.partial(), a.partial(), "PARTIAL" + where);
                  assertArrayEquals(w.full(), a.full(), "FULL" + where);
                }
              }
            }
          }
        }
      }
    }
  }

  @Test
  void rejectsBadMasks() {
    Exec java = Exec.backend(Backend.JAVA);
    try (Tensor ok = Tensor.zeros(DType.U8, Device.CPU, 1, 2, 4, 4);
        Tensor i32 = Tensor.zeros(DType.I32, Device.CPU, 1, 2, 4, 4);
        Tensor wrongGrid = Tensor.zeros(DType.U8, Device.CPU, 1, 2, 4, 5);
        Tensor wrongHeads = Tensor.zeros(DType.U8, Device.CPU, 1, 3, 4, 4);
        Tensor rank3 = Tensor.zeros(DType.U8, Device.CPU, 2, 4, 4)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> BlockLayout.fromBlockMask(MaskSpec.causal(), 1, 2, 64, 64, 16, 16, i32, Device.CPU, java));
      assertTrue(e.getMessage().contains("blockMask must have dtype U8; got I32"), e.getMessage());
      for (Tensor bad : new Tensor[] {wrongGrid, wrongHeads, rank3}) {
        e = assertThrows(IllegalArgumentException.class,
            () -> BlockLayout.fromBlockMask(MaskSpec.causal(), 1, 2, 64, 64, 16, 16, bad, Device.CPU, java));
        assertTrue(e.getMessage().contains("blockMask must have shape [1 or B = 1, 1 or Hq = 2, 4, 4]"),
            e.getMessage());
      }
      e = assertThrows(IllegalArgumentException.class,
          () -> BlockLayout.fromBlockMask(null, 1, 2, 64, 64, 16, 16, ok, Device.CPU, java));
      assertTrue(e.getMessage().contains("base must not be null"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> BlockLayout.fromBlockMask(MaskSpec.causal(), 1, 2, 64, 64, 0, 16, ok, Device.CPU, java));
      assertTrue(e.getMessage().contains("blockQ and blockK must be >= 1"), e.getMessage());
      Tensor closed = Tensor.zeros(DType.U8, Device.CPU, 1, 2, 4, 4);
      closed.close();
      assertThrows(IllegalStateException.class,
          () -> BlockLayout.fromBlockMask(MaskSpec.causal(), 1, 2, 64, 64, 16, 16, closed, Device.CPU, java));
    }
  }

  @Tag("gpu")
  @Test
  void rejectsAMaskOnAnotherDevice() {
    TestBackends.assumeCuda();
    try (Tensor host = Tensor.zeros(DType.U8, Device.CPU, 1, 1, 4, 4)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> BlockLayout.fromBlockMask(MaskSpec.causal(), 1, 1, 64, 64, 16, 16, host, Device.cuda(0),
              Exec.DEFAULT));
      assertTrue(e.getMessage().contains("blockMask is on cpu but the layout is for cuda:0"), e.getMessage());
    }
  }
}
