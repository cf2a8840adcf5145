package io.github.llmkernels.attention;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/** Shapes, options and layout helpers shared by the sparse prefill tests. */
final class PrefillTestUtil {
  private PrefillTestUtil() {}

  /** B, Hq, Hkv, Sq, Sk, d and the block the options use. */
  record Shape(int b, int hq, int hkv, int sq, int sk, int d, int block) {
    @Override
    public String toString() {
      return b + "x" + hq + "/" + hkv + " " + sq + "x" + sk + " d" + d + " blk" + block;
    }
  }

  /** The design's shapes (block 16 on 97, 64 on 1025, 128 on 2048; Sq < Sk) over MHA, GQA, MQA. */
  static final Shape[] SHAPES = {
      new Shape(1, 2, 2, 97, 97, 64, 16),
      new Shape(2, 4, 2, 97, 97, 32, 16),
      new Shape(1, 4, 1, 1025, 1025, 64, 64),
      new Shape(1, 2, 2, 1000, 1536, 64, 64),
      new Shape(1, 2, 1, 2048, 2048, 64, 128)};

  /** Small shapes for the slower sweeps (monotonicity, crafted cases). */
  static final Shape[] SMALL = {
      new Shape(1, 2, 2, 97, 97, 32, 16),
      new Shape(2, 4, 1, 120, 200, 16, 8)};

  /** One options record per method, selective at this shape (budgets well below the sequence). */
  static List<PrefillOptions> options(Shape s) {
    int bl = s.block();
    int lastQ = Math.min(bl, s.sq());
    int stride = s.block() >= 64 && (s.sk() - s.sq()) % 8 == 0 ? 8 : 4;
    List<PrefillOptions> out = new ArrayList<>();
    for (VerticalSlashOptions.ColumnMode m : VerticalSlashOptions.ColumnMode.values()) {
      out.add(new VerticalSlashOptions(lastQ, Math.max(1, s.sk() / 8), Math.max(1, s.sk() / 16), 3, 2, bl, 0, m));
    }
    out.add(new AShapeOptions(4, 2 * bl, bl));
    out.add(new BlockTopKOptions(3, bl, false, 0));
    out.add(new BlockTopKOptions(2, bl, true, 0));
    out.add(new FlexPrefillOptions(0.9, 0.1, bl, Integer.MAX_VALUE, bl, lastQ, 0));
    out.add(new FlexPrefillOptions(0.7, 1.0, bl, 3 * bl, bl, lastQ, 0)); // tau 1: every head query-aware
    out.add(new XAttentionOptions(stride, 0.9, bl, 0));
    return out;
  }

  static Tensor on(Backend backend, Tensor host) {
    return backend == Backend.CUDA ? host.to(Device.cuda(0)) : host.view(host.shape());
  }

  static Tensor queries(SplittableRandom rnd, DType dtype, Shape s) {
    return RandomTensors.normal(rnd, dtype, s.b(), s.hq(), s.sq(), s.d());
  }

  static Tensor keys(SplittableRandom rnd, DType dtype, Shape s) {
    return RandomTensors.normal(rnd, dtype, s.b(), s.hkv(), s.sk(), s.d());
  }

  /** The layout's tiles as U8 [B, Hq, nQB, nKB] (1 listed, 0 not). */
  static byte[] tiles(BlockLayout layout) {
    int nqb = layout.numQBlocks();
    int nkb = layout.numKBlocks();
    byte[] out = new byte[layout.batch() * layout.heads() * nqb * nkb];
    for (int b = 0; b < layout.batch(); b++) {
      for (int h = 0; h < layout.heads(); h++) {
        for (int qb = 0; qb < nqb; qb++) {
          BlockLayout.KvBlocks kv = layout.kvBlocks(b, h, qb);
          int base = ((b * layout.heads() + h) * nqb + qb) * nkb;
          for (int kb : kv.partial()) {
            out[base + kb] = 1;
          }
          for (int kb : kv.full()) {
            out[base + kb] = 2;
          }
        }
      }
    }
    return out;
  }

  /** Last aligned query of query block qb. */
  static long last(Shape s, int qb, int blockQ) {
    return Math.min((long) (qb + 1) * blockQ, s.sq()) - 1 + s.sk() - s.sq();
  }

  /** Every listed tile is causally reachable and classified as causal alone would classify it. */
  static void assertCausalTiles(BlockLayout layout, Supplier<String> ctx) {
    MaskSpec causal = MaskSpec.causal();
    for (int b = 0; b < layout.batch(); b++) {
      for (int h = 0; h < layout.heads(); h++) {
        for (int qb = 0; qb < layout.numQBlocks(); qb++) {
          BlockLayout.KvBlocks kv = layout.kvBlocks(b, h, qb);
          long q0 = (long) qb * layout.blockQ();
          long q1 = Math.min(q0 + layout.blockQ(), layout.seqQ());
          for (int pass = 0; pass < 2; pass++) {
            int[] list = pass == 0 ? kv.partial() : kv.full();
            TileClass want = pass == 0 ? TileClass.PARTIAL : TileClass.FULL;
            for (int kb : list) {
              long k0 = (long) kb * layout.blockK();
              TileClass c = causal.classify(b, h, q0, q1, k0, Math.min(k0 + layout.blockK(), layout.seqK()),
                  layout.seqQ(), layout.seqK());
              if (c != want) {
                fail("tile (b " + b + ", h " + h + ", qb " + qb + ", kb " + kb + ") is listed " + want
                    + " but causal classifies it " + c + ": " + ctx.get());
              }
            }
          }
        }
      }
    }
  }

  /** Tile (qb, kb) of head (b, h) is listed. */
  static boolean listed(byte[] tiles, BlockLayout layout, int b, int h, int qb, int kb) {
    return tiles[((b * layout.heads() + h) * layout.numQBlocks() + qb) * layout.numKBlocks() + kb] != 0;
  }

  /** Every tile of a is listed in b (per head). */
  static void assertSubset(byte[] a, byte[] b, Supplier<String> ctx) {
    assertTrue(a.length == b.length, ctx);
    for (int i = 0; i < a.length; i++) {
      if (a[i] != 0 && b[i] == 0) {
        fail("tile " + i + " is selected with the smaller parameter but not with the larger: " + ctx.get());
      }
    }
  }

  /** Index of the first differing byte, or -1. */
  static int firstDifference(byte[] a, byte[] b) {
    for (int i = 0; i < Math.min(a.length, b.length); i++) {
      if ((a[i] != 0) != (b[i] != 0)) {
        return i;
      }
    }
    return a.length == b.length ? -1 : Math.min(a.length, b.length);
  }
}
