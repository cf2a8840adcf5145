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
 * Token-level key columns beside a tile selection ({@link BlockLayout#fromBlockMask} with
 * columns): every backend's attention equals the oracle over base AND (selected tiles OR the
 * columns), with columns inside listed tiles, columns past the diagonal, -1 padding, more columns
 * than one kernel chunk, GQA, Sq < Sk, and sizes 1, 97, 1025; the layout's accessors and density;
 * bad column tensors rejected by name.
 */
class TokenColumnsTest {

  /** B, Hq, Hkv, Sq, Sk, d, block, columns per head. */
  static final int[][] GEOMETRIES = {
      {1, 2, 1, 1, 1, 16, 16, 1},
      {1, 2, 2, 97, 97, 40, 16, 23},
      {2, 4, 2, 100, 230, 64, 32, 150},
      {1, 2, 1, 1025, 1025, 64, 64, 200}};

  static Stream<Arguments> cases() {
    return casesFor(TestBackends.host());
  }

  static Stream<Arguments> gpuCases() {
    return casesFor(List.of(Backend.CUDA));
  }

  static Stream<Arguments> casesFor(List<Backend> backends) {
    Stream.Builder<Arguments> out = Stream.builder();
    for (Backend backend : backends) {
      for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
        for (int[] g : GEOMETRIES) {
          out.add(Arguments.of(backend, dtype, g));
        }
      }
    }
    return out.build();
  }

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("cases")
  void attentionSeesTilesAndColumns(Backend backend, DType dtype, int[] g) {
    check(backend, dtype, g);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("gpuCases")
  void cudaAttentionSeesTilesAndColumns(Backend backend, DType dtype, int[] g) {
    TestBackends.assumeCuda();
    check(backend, dtype, g);
  }

  private static void check(Backend backend, DType dtype, int[] g) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int b = g[0], hq = g[1], hkv = g[2], sq = g[3], sk = g[4], d = g[5], bl = g[6], count = Math.min(g[7], sk);
    int nqb = (sq + bl - 1) / bl;
    int nkb = (sk + bl - 1) / bl;
    Device device = backend == Backend.CUDA ? Device.cuda(0) : Device.CPU;
    Exec exec = Exec.backend(backend);
    byte[] bits = new byte[hq * nqb * nkb];
    boolean[][][] tiles = new boolean[hq][nqb][nkb];
    for (int h = 0; h < hq; h++) {
      for (int qb = 0; qb < nqb; qb++) {
        for (int kb = 0; kb < nkb; kb++) {
          tiles[h][qb][kb] = rnd.nextInt(5) == 0;
        }
        tiles[h][qb][(int) (Math.min((qb + 1L) * bl, sq) - 1 + sk - sq) / bl] = true; // the diagonal
        for (int kb = 0; kb < nkb; kb++) {
          bits[(h * nqb + qb) * nkb + kb] = (byte) (tiles[h][qb][kb] ? 1 : 0);
        }
      }
    }
    int pad = 3;
    int[][] columns = new int[hq][];
    int[] flat = new int[hq * (count + pad)];
    for (int h = 0; h < hq; h++) {
      int n = h == 0 ? count : rnd.nextInt(count + 1); // ragged: head 0 full, others fewer
      columns[h] = rnd.ints(0, sk).distinct().limit(n).sorted().toArray();
      java.util.Arrays.fill(flat, h * (count + pad), (h + 1) * (count + pad), -1);
      System.arraycopy(columns[h], 0, flat, h * (count + pad), columns[h].length);
    }
    String ctx = backend + " " + dtype + " " + java.util.Arrays.toString(g) + ", seed " + seed;
    MaskSpec oracle = MaskSpec.causal().and(MaskSpec.blocks(bl, bl, tiles)
        .or(MaskSpec.verticalSlash(columns, new int[hq][0])));
    double scale = 1 / Math.sqrt(d);
    try (AttentionCase c = new AttentionCase(seed, b, hq, hkv, sq, sk, d, dtype);
        Tensor q = PrefillTestUtil.on(backend, c.q);
        Tensor k = PrefillTestUtil.on(backend, c.k);
        Tensor v = PrefillTestUtil.on(backend, c.v);
        Tensor bmHost = Tensor.of(bits, DType.U8, 1, hq, nqb, nkb);
        Tensor bm = PrefillTestUtil.on(backend, bmHost);
        Tensor colsHost = Tensor.of(flat, 1, hq, count + pad);
        Tensor cols = PrefillTestUtil.on(backend, colsHost);
        BlockLayout layout = BlockLayout.fromBlockMask(MaskSpec.causal(), b, hq, sq, sk, bl, bl, bm, cols, device,
            exec)) {
      assertEquals(count + pad, layout.columnCapacity(), ctx);
      for (int bi = 0; bi < b; bi++) {
        for (int h = 0; h < hq; h++) {
          assertArrayEquals(columns[h], layout.columns(bi, h), "columns(" + bi + ", " + h + "): " + ctx);
        }
      }
      try (AttentionOutput out = SparseAttention.forward(q, k, v, layout, AttentionOptions.defaults(), exec)) {
        SparseAttentionRef.Result ref = SparseAttentionRef.dense(c.q, c.k, c.v, oracle, null, null, scale, 0);
        c.assertClose(out.out(), out.lse(), ref, c.naive(oracle, null, null, scale, 0, dtype), ctx);
      }
    }
  }

  /**
   * The same vertical-slash choice as tokens computes a subset of what it computes as blocks:
   * every TOKENS tile is a BLOCKS tile, the token list is the head's |C| columns, and the density
   * is never larger (each column adds at most the pairs of the block it would have inflated to).
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("hostBackends")
  void tokensComputeASubsetOfBlocks(Backend backend) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    Exec exec = Exec.backend(backend);
    try (Tensor q = RandomTensors.normal(rnd, DType.F32, 2, 4, 300, 32);
        Tensor k = RandomTensors.normal(rnd, DType.F32, 2, 2, 420, 32)) {
      VerticalSlashOptions blocks = new VerticalSlashOptions(32, 40, 12, 4, 3, 32, 0,
          VerticalSlashOptions.ColumnMode.BLOCKS);
      try (PrefillEstimate b = SparsePrefill.estimate(q, k, blocks, exec);
          PrefillEstimate t = SparsePrefill.estimate(q, k, blocks.withColumnMode(VerticalSlashOptions.ColumnMode.TOKENS),
              exec)) {
        String ctx = backend + ", seed " + seed;
        assertTrue(t.density() <= b.density() + 1e-12, "density tokens " + t.density() + " > blocks " + b.density()
            + ": " + ctx);
        assertTrue(t.density() < b.density(), "40 columns of 420 keys must save pairs: " + ctx);
        byte[] tb = PrefillTestUtil.tiles(b.layout());
        byte[] tt = PrefillTestUtil.tiles(t.layout());
        for (int i = 0; i < tt.length; i++) {
          assertTrue(tt[i] == 0 || tb[i] != 0, "TOKENS tile " + i + " not in BLOCKS: " + ctx);
        }
        for (int bi = 0; bi < 2; bi++) {
          for (int h = 0; h < 4; h++) {
            assertEquals(t.head(bi, h).columns(), t.layout().columns(bi, h).length, ctx);
            assertEquals(0, b.layout().columns(bi, h).length, ctx);
          }
        }
      }
    }
  }

  static Stream<Backend> hostBackends() {
    return TestBackends.host().stream();
  }

  /** Hand-counted: Sq = Sk = 8, blocks 4, diagonal tiles listed, columns 0 and 5. */
  @Test
  void densityCountsColumnPairsOutsideListedTiles() {
    byte[] bits = {1, 0, 0, 1}; // (0, 0) and (1, 1)
    try (Tensor bm = Tensor.of(bits, DType.U8, 1, 1, 2, 2);
        Tensor cols = Tensor.of(new int[] {0, 5, -1}, 1, 1, 3);
        BlockLayout l = BlockLayout.fromBlockMask(MaskSpec.causal(), 1, 1, 8, 8, 4, 4, bm, cols, Device.CPU,
            Exec.backend(Backend.JAVA))) {
      // tiles 2 x 16 pairs; column 0 adds rows 4..7 of query block 1 (its block 0 is not listed
      // there); column 5 lies in listed tile (1, 1) and after every query of block 0
      assertEquals((32 + 4) / 64.0, SparsePrefill.density(l), 1e-15);
      assertTrue(l.toString().contains("3 columns per head"), l.toString());
    }
    // the same selection broadcast over B 2 x H 2 (one layout row set serves all four heads)
    try (Tensor bm = Tensor.of(bits, DType.U8, 1, 1, 2, 2);
        Tensor cols = Tensor.of(new int[] {0, 5, -1}, 1, 1, 3);
        BlockLayout l = BlockLayout.fromBlockMask(MaskSpec.causal(), 2, 2, 8, 8, 4, 4, bm, cols, Device.CPU,
            Exec.backend(Backend.JAVA))) {
      assertEquals(1, l.layoutBatch());
      assertEquals(1, l.layoutHeads());
      assertEquals((32 + 4) / 64.0, SparsePrefill.density(l), 1e-15);
    }
  }

  /** Broadcast columns [1, 1, cap] serve every (batch, head); per-head columns make the layout per head. */
  @Test
  void broadcastAndPerHeadColumns() {
    byte[] bits = {1, 0, 1, 1};
    try (Tensor bm = Tensor.of(bits, DType.U8, 1, 1, 2, 2);
        Tensor shared = Tensor.of(new int[] {1, 6}, 1, 1, 2);
        Tensor perHead = Tensor.of(new int[] {1, -1, 2, 3}, 1, 2, 2);
        BlockLayout a = BlockLayout.fromBlockMask(MaskSpec.causal(), 2, 2, 8, 8, 4, 4, bm, shared, Device.CPU,
            Exec.DEFAULT);
        BlockLayout p = BlockLayout.fromBlockMask(MaskSpec.causal(), 2, 2, 8, 8, 4, 4, bm, perHead, Device.CPU,
            Exec.DEFAULT)) {
      assertEquals(1, a.layoutHeads());
      assertArrayEquals(new int[] {1, 6}, a.columns(1, 1));
      assertEquals(2, p.layoutHeads());
      assertArrayEquals(new int[] {1}, p.columns(1, 0));
      assertArrayEquals(new int[] {2, 3}, p.columns(0, 1));
    }
    try (Tensor bm = Tensor.of(bits, DType.U8, 1, 1, 2, 2);
        BlockLayout none = BlockLayout.fromBlockMask(MaskSpec.causal(), 1, 1, 8, 8, 4, 4, bm, Device.CPU,
            Exec.DEFAULT)) {
      assertEquals(0, none.columnCapacity());
      assertArrayEquals(new int[0], none.columns(0, 0));
    }
  }

  @Test
  void badColumnsAreRejectedByName() {
    byte[] bits = {1, 1, 1, 1};
    List<Object[]> bad = new ArrayList<>();
    bad.add(new Object[] {new int[] {3, 3}, new long[] {1, 1, 2}, "strictly ascending"});
    bad.add(new Object[] {new int[] {5, 2}, new long[] {1, 1, 2}, "strictly ascending"});
    bad.add(new Object[] {new int[] {2, 8}, new long[] {1, 1, 2}, "[0, seqK = 8)"});
    bad.add(new Object[] {new int[] {-1, 4}, new long[] {1, 1, 2}, "only -1 padding"});
    bad.add(new Object[] {new int[] {1, -7}, new long[] {1, 1, 2}, "only -1 padding"});
    bad.add(new Object[] {new int[] {1, 2, 3}, new long[] {1, 3, 1}, "shape"});
    bad.add(new Object[] {new int[] {1, 2}, new long[] {2}, "shape"});
    for (Object[] x : bad) {
      try (Tensor bm = Tensor.of(bits, DType.U8, 1, 1, 2, 2);
          Tensor cols = Tensor.of((int[]) x[0], (long[]) x[1])) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> BlockLayout.fromBlockMask(MaskSpec.causal(), 1, 2, 8, 8, 4, 4, bm, cols, Device.CPU, Exec.DEFAULT));
        assertTrue(e.getMessage().contains("columns") && e.getMessage().contains((String) x[2]), e.getMessage());
      }
    }
    try (Tensor bm = Tensor.of(bits, DType.U8, 1, 1, 2, 2);
        Tensor cols = Tensor.of(new float[] {1, 2}, 1, 1, 2)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> BlockLayout.fromBlockMask(MaskSpec.causal(), 1, 1, 8, 8, 4, 4, bm, cols, Device.CPU, Exec.DEFAULT));
      assertTrue(e.getMessage().contains("columns must have dtype I32"), e.getMessage());
    }
    Tensor closed = Tensor.of(new int[] {1}, 1, 1, 1);
    closed.close();
    try (Tensor bm = Tensor.of(bits, DType.U8, 1, 1, 2, 2)) {
      assertThrows(IllegalStateException.class,
          () -> BlockLayout.fromBlockMask(MaskSpec.causal(), 1, 1, 8, 8, 4, 4, bm, closed, Device.CPU, Exec.DEFAULT));
    }
  }
}
