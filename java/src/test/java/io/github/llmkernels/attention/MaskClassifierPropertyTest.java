package io.github.llmkernels.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The tile classifier against the expanded mask on random geometry: never EMPTY with a visible
 * pair, never FULL with a masked one; leaves exact where the header promises it; compiled
 * layouts (JAVA, and NATIVE when loaded) hold exactly the non-empty tiles and agree bit for bit.
 */
class MaskClassifierPropertyTest {

  /** Random geometry of one trial. */
  record Geometry(int batch, int heads, int seqQ, int seqK, int blockQ, int blockK, int[] qLens, int[] kLens) {
    static Geometry random(SplittableRandom rnd) {
      int batch = 1 + rnd.nextInt(2);
      int heads = 1 + rnd.nextInt(3);
      int seqQ = rnd.nextInt(8) == 0 ? rnd.nextInt(3) : 1 + rnd.nextInt(300);
      int seqK = rnd.nextInt(3) == 0 ? seqQ : rnd.nextInt(8) == 0 ? rnd.nextInt(3) : 1 + rnd.nextInt(300);
      int blockQ = 1 + rnd.nextInt(64);
      int blockK = 1 + rnd.nextInt(64);
      int[] ql = null;
      int[] kl = null;
      if (rnd.nextInt(3) == 0) {
        ql = new int[batch];
        kl = new int[batch];
        for (int b = 0; b < batch; b++) {
          ql[b] = rnd.nextInt(seqQ + 1);
          kl[b] = rnd.nextInt(seqK + 1);
        }
      }
      return new Geometry(batch, heads, seqQ, seqK, blockQ, blockK, ql, kl);
    }

    int qLen(int b) {
      return qLens == null ? seqQ : qLens[b];
    }

    int kLen(int b) {
      return kLens == null ? seqK : kLens[b];
    }

    @Override
    public String toString() {
      return "B " + batch + " H " + heads + " " + seqQ + "x" + seqK + " tiles " + blockQ + "x" + blockK
          + (qLens == null ? "" : " qLens " + java.util.Arrays.toString(qLens) + " kLens "
              + java.util.Arrays.toString(kLens));
    }
  }

  /** Checks every tile of every (b, h) of g against the expanded mask; returns non-empty tiles. */
  static long checkTiles(RandomMasks.Drawn d, Geometry g, String ctx) {
    MaskSpec m = d.mask();
    long nonEmpty = 0;
    int nqb = (g.seqQ + g.blockQ - 1) / g.blockQ;
    int nkb = (g.seqK + g.blockK - 1) / g.blockK;
    for (int b = 0; b < g.batch; b++) {
      int ql = g.qLen(b);
      int kl = g.kLen(b);
      for (int h = 0; h < g.heads; h++) {
        boolean[][] vis = new boolean[g.seqQ][g.seqK];
        for (int q = 0; q < g.seqQ; q++) {
          for (int k = 0; k < g.seqK; k++) {
            vis[q][k] = m.visible(b, h, q, k, ql, kl);
          }
        }
        for (int qb = 0; qb < nqb; qb++) {
          int q0 = qb * g.blockQ;
          int q1 = Math.min(q0 + g.blockQ, g.seqQ);
          for (int kb = 0; kb < nkb; kb++) {
            int k0 = kb * g.blockK;
            int k1 = Math.min(k0 + g.blockK, g.seqK);
            boolean any = false;
            boolean all = true;
            for (int q = q0; q < q1; q++) {
              for (int k = k0; k < k1; k++) {
                any |= vis[q][k];
                all &= vis[q][k];
              }
            }
            TileClass c = m.classify(b, h, q0, q1, k0, k1, ql, kl);
            String where = ctx + " b " + b + " h " + h + " tile (" + qb + ", " + kb + ")";
            if (c == TileClass.EMPTY && any) {
              fail("EMPTY tile has a visible pair: " + where);
            }
            if (c == TileClass.FULL && !all) {
              fail("FULL tile has a masked pair: " + where);
            }
            if (d.emptyExact() && any && c == TileClass.EMPTY || d.emptyExact() && !any && c != TileClass.EMPTY) {
              fail("leaf should be EMPTY-exact: " + c + " but any = " + any + ": " + where);
            }
            if (d.fullExact() && all != (c == TileClass.FULL)) {
              fail("leaf should be FULL-exact: " + c + " but all = " + all + ": " + where);
            }
            nonEmpty += any ? 1 : 0;
          }
        }
      }
    }
    return nonEmpty;
  }

  @Test
  void everyLeafKindIsSoundAndExactWherePromised() {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    for (RandomMasks.Kind kind : RandomMasks.Kind.values()) {
      for (int trial = 0; trial < 6; trial++) {
        Geometry g = Geometry.random(rnd);
        RandomMasks.Drawn d = RandomMasks.leaf(kind, rnd, g.batch, g.heads, g.seqQ, g.seqK);
        String ctx = "seed " + seed + " " + d.desc() + " " + g;
        long nonEmpty = checkTiles(d, g, ctx);
        for (Backend backend : TestBackends.host()) {
          try (BlockLayout layout = compile(d.mask(), g, backend)) {
            checkLayoutAgainstPredicate(layout, d, g, ctx + " " + backend);
            if (d.emptyExact()) {
              double t = tiles(g);
              assertEquals(t == 0 ? 0 : nonEmpty / t, layout.density(), 1e-12, "density: " + ctx);
            }
          }
        }
      }
    }
  }

  @Test
  void randomCompositionsAreSound() {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    for (int trial = 0; trial < 60; trial++) {
      Geometry g = Geometry.random(rnd);
      RandomMasks.Drawn d = RandomMasks.composite(rnd, 5, g.batch, g.heads, g.seqQ, g.seqK);
      String ctx = "seed " + seed + " " + d.desc() + " " + g;
      checkTiles(d, g, ctx);
      for (Backend backend : TestBackends.host()) {
        try (BlockLayout layout = compile(d.mask(), g, backend)) {
          checkLayoutAgainstPredicate(layout, d, g, ctx + " " + backend);
        }
      }
    }
  }

  @Test
  void javaAndNativeLayoutsAreIdentical() {
    TestBackends.requireNativeUnlessSkipped();
    TestBackends.assumeNative();
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    for (int trial = 0; trial < 150; trial++) {
      Geometry g = Geometry.random(rnd);
      RandomMasks.Drawn d = trial < 2 * RandomMasks.Kind.values().length
          ? RandomMasks.leaf(RandomMasks.Kind.values()[trial / 2], rnd, g.batch, g.heads, g.seqQ, g.seqK)
          : RandomMasks.composite(rnd, 6, g.batch, g.heads, g.seqQ, g.seqK);
      String ctx = "seed " + seed + " " + d.desc() + " " + g;
      try (BlockLayout j = compile(d.mask(), g, Backend.JAVA); BlockLayout n = compile(d.mask(), g, Backend.NATIVE)) {
        assertLayoutsEqual(j, n, ctx);
      }
    }
  }

  static void assertLayoutsEqual(BlockLayout a, BlockLayout b, String ctx) {
    assertEquals(a.layoutBatch(), b.layoutBatch(), ctx);
    assertEquals(a.layoutHeads(), b.layoutHeads(), ctx);
    assertEquals(a.partialBlockCount(), b.partialBlockCount(), "partial blocks: " + ctx);
    assertEquals(a.fullBlockCount(), b.fullBlockCount(), "full blocks: " + ctx);
    BlockCsr ca = a.toCsr();
    BlockCsr cb = b.toCsr();
    assertArrayEquals(ca.indptr(), cb.indptr(), "indptr: " + ctx);
    assertArrayEquals(ca.indices(), cb.indices(), "indices: " + ctx);
    assertArrayEquals(ca.full(), cb.full(), "full flags: " + ctx);
  }

  static BlockLayout compile(MaskSpec m, Geometry g, Backend backend) {
    return BlockLayout.compile(m, g.batch, g.heads, g.seqQ, g.seqK, g.blockQ, g.blockK, g.qLens, g.kLens, Device.CPU,
        Exec.backend(backend));
  }

  static double tiles(Geometry g) {
    double t = (double) g.batch * g.heads * ((g.seqQ + g.blockQ - 1) / g.blockQ) * ((g.seqK + g.blockK - 1) / g.blockK);
    return t;
  }

  /** The layout's tiles are the classifier's non-empty tiles, with the classifier's classes. */
  static void checkLayoutAgainstPredicate(BlockLayout layout, RandomMasks.Drawn d, Geometry g, String ctx) {
    MaskSpec m = d.mask();
    for (int b = 0; b < g.batch; b++) {
      for (int h = 0; h < g.heads; h++) {
        for (int qb = 0; qb < layout.numQBlocks(); qb++) {
          BlockLayout.KvBlocks kv = layout.kvBlocks(b, h, qb);
          TileClass[] cls = new TileClass[layout.numKBlocks()];
          java.util.Arrays.fill(cls, TileClass.EMPTY);
          int last = -1;
          for (int kb : kv.partial()) {
            assertTrue(kb > last, "partial list ascending: " + ctx);
            last = kb;
            cls[kb] = TileClass.PARTIAL;
          }
          last = -1;
          for (int kb : kv.full()) {
            assertTrue(kb > last, "full list ascending: " + ctx);
            last = kb;
            assertNotEquals(TileClass.PARTIAL, cls[kb], "block in both lists: " + ctx);
            cls[kb] = TileClass.FULL;
          }
          int q0 = qb * g.blockQ;
          int q1 = Math.min(q0 + g.blockQ, g.seqQ);
          for (int kb = 0; kb < cls.length; kb++) {
            int k0 = kb * g.blockK;
            int k1 = Math.min(k0 + g.blockK, g.seqK);
            assertEquals(m.classify(b, h, q0, q1, k0, k1, g.qLen(b), g.kLen(b)), cls[kb],
                "layout tile (" + qb + ", " + kb + ") of b " + b + " h " + h + ": " + ctx);
          }
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(names = {"JAVA", "NATIVE"})
  void transposeAndCsrAreConsistent(Backend backend) {
    if (backend == Backend.NATIVE) {
      TestBackends.assumeNative();
    }
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    for (int trial = 0; trial < 20; trial++) {
      Geometry g = Geometry.random(rnd);
      RandomMasks.Drawn d = RandomMasks.composite(rnd, 3, g.batch, g.heads, g.seqQ, g.seqK);
      String ctx = "seed " + seed + " " + d.desc() + " " + g;
      try (BlockLayout layout = compile(d.mask(), g, backend)) {
        BlockCsr csr = layout.toCsr();
        BlockCsr t = layout.transpose();
        assertEquals(csr.nnz(), t.nnz(), ctx);
        assertEquals(layout.partialBlockCount() + layout.fullBlockCount(), csr.nnz(), ctx);
        int groups = layout.layoutBatch() * layout.layoutHeads();
        assertEquals(groups * layout.numKBlocks(), t.rows(), ctx);
        // every (group, qb, kb, full) of the CSR appears in the transpose and vice versa
        java.util.Set<String> a = new java.util.HashSet<>();
        for (int r = 0; r < csr.rows(); r++) {
          int grp = r / layout.numQBlocks();
          for (long e = csr.indptr()[r]; e < csr.indptr()[r + 1]; e++) {
            a.add(grp + "/" + (r % layout.numQBlocks()) + "/" + csr.indices()[(int) e] + "/" + csr.full()[(int) e]);
          }
        }
        java.util.Set<String> bset = new java.util.HashSet<>();
        for (int r = 0; r < t.rows(); r++) {
          int grp = r / layout.numKBlocks();
          int last = -1;
          for (long e = t.indptr()[r]; e < t.indptr()[r + 1]; e++) {
            assertTrue(t.indices()[(int) e] > last, "transpose rows ascending: " + ctx);
            last = t.indices()[(int) e];
            bset.add(grp + "/" + t.indices()[(int) e] + "/" + (r % layout.numKBlocks()) + "/" + t.full()[(int) e]);
          }
        }
        assertEquals(a, bset, ctx);
      }
    }
  }

  @Test
  void layoutDimensionsFollowTheMask() {
    try (BlockLayout l = BlockLayout.compile(MaskSpec.causal(), 3, 4, 100, 100, 32, 32)) {
      assertEquals(1, l.layoutBatch());
      assertEquals(1, l.layoutHeads());
      assertEquals(4, l.numQBlocks());
      // causal 100x100 in 32-blocks: diagonal tiles partial (the last one cut by seq is clipped: 4x4 lower triangle)
      assertEquals(4, l.partialBlockCount());
      assertEquals(6, l.fullBlockCount());
      assertEquals(10.0 / 16, l.density(), 1e-12);
    }
    boolean[][][] perHead = new boolean[2][1][1];
    perHead[0][0][0] = true;
    try (BlockLayout l = BlockLayout.compile(MaskSpec.blocks(64, 64, perHead).and(MaskSpec.prefix(10, 20)), 2, 2, 64,
        64, 16, 16)) {
      assertEquals(2, l.layoutBatch());
      assertEquals(2, l.layoutHeads());
      assertEquals(0, l.kvBlocks(1, 1, 0).partial().length + l.kvBlocks(1, 1, 0).full().length);
      assertArrayEquals(new int[] {0}, l.kvBlocks(0, 0, 3).partial()); // keys 0..9 of 0..15
      assertArrayEquals(new int[] {}, l.kvBlocks(0, 0, 3).full());
      assertArrayEquals(new int[] {0}, l.kvBlocks(1, 0, 3).full());
      assertArrayEquals(new int[] {1}, l.kvBlocks(1, 0, 3).partial()); // keys 16..19 of 16..31
    }
    try (BlockLayout l = BlockLayout.compile(MaskSpec.all(), 2, 1, 10, 10, 4, 4, new int[] {10, 5}, null)) {
      assertEquals(2, l.layoutBatch(), "lengths make the layout per batch");
      assertEquals(0, l.kvBlocks(1, 0, 2).partial().length + l.kvBlocks(1, 0, 2).full().length);
    }
  }
}
