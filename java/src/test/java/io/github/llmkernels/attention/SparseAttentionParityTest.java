package io.github.llmkernels.attention;

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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * NATIVE, CUDA (tagged gpu) and JAVA against the dense fp64 oracle on fresh random inputs: every
 * mask kind and some compositions, MHA/GQA/MQA, odd head dims and lengths (1, 97, 113, 1025),
 * Sq != Sk, varlen, fully masked rows, softcap, explicit scale, F32 output of half inputs.
 */
class SparseAttentionParityTest {

  /** B, Hq, Hkv, Sq, Sk, d. */
  record Shape(int b, int hq, int hkv, int sq, int sk, int d) {
    @Override
    public String toString() {
      return b + "x" + hq + "/" + hkv + " " + sq + "x" + sk + " d" + d;
    }
  }

  static final Shape[] SHAPES = {
      new Shape(1, 2, 2, 97, 97, 64), // MHA
      new Shape(2, 4, 2, 113, 113, 128), // GQA
      new Shape(1, 4, 1, 97, 203, 40), // MQA, Sq < Sk, odd d
      new Shape(2, 2, 1, 113, 61, 80), // Sq > Sk
      new Shape(1, 3, 3, 1, 1, 64), // single position
      new Shape(2, 2, 2, 1, 97, 64)}; // one query over many keys

  static final Shape LARGE = new Shape(1, 2, 1, 1025, 1025, 64);

  // blocks beyond 128 rows or keys are cut into sub-tiles by the kernels
  static final int[][] TILES = {{64, 64}, {128, 128}, {32, 64}, {64, 32}, {16, 16}, {128, 64}, {256, 192}, {130, 200}};

  /** A mask for a geometry (random parts from rnd). */
  interface MaskMaker {
    MaskSpec make(SplittableRandom rnd, Shape s);
  }

  record Variant(String name, MaskMaker mask, boolean varlen, double softcap, double scale, boolean outF32) {
    Variant(String name, MaskMaker mask) {
      this(name, mask, false, 0, AttentionOptions.SCALE_AUTO, false);
    }

    @Override
    public String toString() {
      return name;
    }
  }

  static MaskSpec randomBlocks(SplittableRandom rnd, Shape s, double p, int block, int heads) {
    boolean[][][] bits = new boolean[heads][(s.sq + block - 1) / block][(s.sk + block - 1) / block];
    for (boolean[][] m : bits) {
      for (boolean[] row : m) {
        for (int c = 0; c < row.length; c++) {
          row[c] = rnd.nextDouble() < p;
        }
      }
    }
    return MaskSpec.blocks(block, block, bits);
  }

  static int[][] sortedIdRows(SplittableRandom rnd, int rows, int n) {
    int[][] ids = new int[rows][];
    for (int r = 0; r < rows; r++) {
      ids[r] = RandomMasks.sortedIds(rnd, n);
    }
    return ids;
  }

  static List<Variant> maskVariants() {
    return List.of(
        new Variant("all", (r, s) -> MaskSpec.all()),
        new Variant("none", (r, s) -> MaskSpec.none()),
        new Variant("causal", (r, s) -> MaskSpec.causal()),
        new Variant("causal-topleft-7", (r, s) -> MaskSpec.causal(-7)),
        new Variant("sliding-33", (r, s) -> MaskSpec.slidingWindow(33)),
        new Variant("window-20-9", (r, s) -> MaskSpec.window(20, 9)),
        new Variant("sinks-or-sliding", (r, s) -> MaskSpec.sinks(4).or(MaskSpec.slidingWindow(24))),
        new Variant("prefix-lm", (r, s) -> MaskSpec.prefixLm(RandomMasks.prefixes(r, s.b, s.sk))),
        new Variant("documents-causal", (r, s) -> s.sq == s.sk
            ? MaskSpec.documents(sortedIdRows(r, s.b, s.sq)).and(MaskSpec.causal())
            : MaskSpec.documents(sortedIdRows(r, s.b, s.sq), sortedIdRows(r, s.b, s.sk))),
        new Variant("documents-unsorted", (r, s) -> {
          int[][] q = new int[s.b][s.sq];
          int[][] k = new int[s.b][s.sk];
          for (int b = 0; b < s.b; b++) {
            for (int i = 0; i < s.sq; i++) {
              q[b][i] = r.nextInt(3);
            }
            for (int i = 0; i < s.sk; i++) {
              k[b][i] = r.nextInt(4); // id 3 appears only among keys
            }
          }
          return MaskSpec.documents(q, k);
        }),
        new Variant("cu-seqlens-causal", (r, s) -> {
          if (s.b != 1 || s.sq != s.sk) {
            return MaskSpec.causal().and(MaskSpec.sinks(s.sk / 3).not());
          }
          int third = s.sq / 3;
          return MaskSpec.documentsFromCumulativeLengths(0, third, third, 2 * third + 1, s.sq).and(MaskSpec.causal());
        }),
        new Variant("blocks-0.0", (r, s) -> randomBlocks(r, s, 0.0, 64, 1)),
        new Variant("blocks-0.3", (r, s) -> randomBlocks(r, s, 0.3, 48, 1)),
        new Variant("blocks-0.7-per-head", (r, s) -> randomBlocks(r, s, 0.7, 32, s.hq)),
        new Variant("blocks-1.0", (r, s) -> randomBlocks(r, s, 1.0, 64, 1)),
        new Variant("vertical-slash", (r, s) -> {
          int[][] cols = new int[s.hq][];
          int[][] slashes = new int[s.hq][];
          for (int h = 0; h < s.hq; h++) {
            cols[h] = RandomMasks.distinct(r, 1 + r.nextInt(8), 0, s.sk);
            slashes[h] = RandomMasks.distinct(r, 1 + r.nextInt(4), 0, Math.max(1, s.sk));
          }
          return MaskSpec.verticalSlash(cols, slashes);
        }),
        new Variant("topk", (r, s) -> {
          int block = 32;
          float[][][] scores = new float[s.hq][(s.sq + block - 1) / block][(s.sk + block - 1) / block];
          for (float[][] m : scores) {
            for (float[] row : m) {
              for (int c = 0; c < row.length; c++) {
                row[c] = r.nextInt(6);
              }
            }
          }
          int kBlocks = scores[0].length == 0 ? 0 : scores[0][0].length;
          return MaskSpec.topK(scores, Math.min(2, kBlocks), block, block);
        }),
        new Variant("causal-and-not-window", (r, s) -> MaskSpec.causal().and(MaskSpec.window(8, 0).not())),
        // reaches past any sequence (clamped by MaskSpec): every key left of the query, 3 to its right
        new Variant("unbounded-window", (r, s) -> MaskSpec.window(Long.MAX_VALUE, 3).and(MaskSpec.causal(Long.MIN_VALUE)
            .not())));
  }

  static List<Arguments> cases(boolean includeLarge) {
    List<Arguments> out = new ArrayList<>();
    DType[] dtypes = {DType.F32, DType.BF16, DType.F16};
    List<Variant> variants = maskVariants();
    for (int i = 0; i < variants.size(); i++) {
      for (int j = 0; j < dtypes.length; j++) {
        out.add(Arguments.of(variants.get(i), dtypes[j], SHAPES[(i + 2 * j) % SHAPES.length], TILES[(i + j) % TILES.length]));
      }
    }
    Variant varlen = new Variant("varlen-causal", (r, s) -> MaskSpec.causal(), true, 0, AttentionOptions.SCALE_AUTO, false);
    Variant varlenDocs = new Variant("varlen-sliding-or-sinks", (r, s) -> MaskSpec.slidingWindow(17).or(MaskSpec.sinks(2)),
        true, 0, AttentionOptions.SCALE_AUTO, false);
    Variant softcap = new Variant("softcap-2-causal", (r, s) -> MaskSpec.causal(), false, 2.0, AttentionOptions.SCALE_AUTO,
        false);
    Variant scale = new Variant("scale-0.3-prefix-lm", (r, s) -> MaskSpec.prefixLm(5), false, 0, 0.3, false);
    Variant outF32 = new Variant("out-f32-blocks", (r, s) -> randomBlocks(r, s, 0.5, 64, 1), false, 0,
        AttentionOptions.SCALE_AUTO, true);
    for (DType dt : dtypes) {
      out.add(Arguments.of(varlen, dt, SHAPES[1], TILES[0]));
      out.add(Arguments.of(varlenDocs, dt, SHAPES[3], TILES[2]));
      out.add(Arguments.of(softcap, dt, SHAPES[0], TILES[1]));
    }
    out.add(Arguments.of(scale, DType.F32, SHAPES[2], TILES[3]));
    out.add(Arguments.of(outF32, DType.BF16, SHAPES[1], TILES[0]));
    out.add(Arguments.of(outF32, DType.F16, SHAPES[2], TILES[1]));
    if (includeLarge) {
      out.add(Arguments.of(new Variant("causal", (r, s) -> MaskSpec.causal()), DType.F32, LARGE, TILES[1]));
      out.add(Arguments.of(new Variant("blocks-0.3", (r, s) -> randomBlocks(r, s, 0.3, 128, 1)), DType.BF16, LARGE,
          TILES[1]));
      out.add(Arguments.of(new Variant("sliding-200", (r, s) -> MaskSpec.slidingWindow(200)), DType.F16, LARGE,
          TILES[0]));
    }
    return out;
  }

  static Stream<Arguments> nativeCases() {
    return cases(true).stream();
  }

  /** The JAVA backend is slow (double, per element): every third case, no large ones. */
  static Stream<Arguments> javaCases() {
    List<Arguments> all = cases(false);
    List<Arguments> out = new ArrayList<>();
    for (int i = 0; i < all.size(); i += 3) {
      out.add(all.get(i));
    }
    return out.stream();
  }

  @ParameterizedTest(name = "native {0} {1} {2} tiles {3}")
  @MethodSource("nativeCases")
  void nativeMatchesOracle(Variant variant, DType dtype, Shape shape, int[] tiles) {
    TestBackends.requireNativeUnlessSkipped();
    TestBackends.assumeNative();
    check(Backend.NATIVE, Device.CPU, variant, dtype, shape, tiles);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "cuda {0} {1} {2} tiles {3}")
  @MethodSource("nativeCases")
  void cudaMatchesOracle(Variant variant, DType dtype, Shape shape, int[] tiles) {
    TestBackends.assumeCuda();
    check(Backend.CUDA, Device.cuda(0), variant, dtype, shape, tiles);
  }

  @ParameterizedTest(name = "java {0} {1} {2} tiles {3}")
  @MethodSource("javaCases")
  void javaMatchesOracle(Variant variant, DType dtype, Shape shape, int[] tiles) {
    check(Backend.JAVA, Device.CPU, variant, dtype, shape, tiles);
  }

  static void check(Backend backend, Device device, Variant variant, DType dtype, Shape s, int[] tiles) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    MaskSpec mask = variant.mask().make(rnd, s);
    int[] qLens = null;
    int[] kLens = null;
    if (variant.varlen()) {
      qLens = new int[s.b];
      kLens = new int[s.b];
      for (int b = 0; b < s.b; b++) {
        qLens[b] = b == 0 ? s.sq : rnd.nextInt(s.sq + 1);
        kLens[b] = b == 1 ? 0 : rnd.nextInt(s.sk + 1); // batch 1 sees no key at all
      }
    }
    AttentionOptions.Builder ob = AttentionOptions.builder().softcap(variant.softcap()).scale(variant.scale());
    if (variant.outF32()) {
      ob.outputDType(DType.F32);
    }
    AttentionOptions opts = ob.build();
    DType outType = opts.resolvedOutputDType(dtype);
    try (AttentionCase c = new AttentionCase(seed + 1, s.b, s.hq, s.hkv, s.sq, s.sk, s.d, dtype)) {
      String ctx = backend + " " + variant + " " + c.describe() + " tiles " + tiles[0] + "x" + tiles[1] + " seed " + seed
          + " mask " + mask + (qLens == null ? "" : " qLens " + java.util.Arrays.toString(qLens) + " kLens "
              + java.util.Arrays.toString(kLens));
      double scale = opts.resolvedScale(s.d);
      SparseAttentionRef.Result ref = SparseAttentionRef.dense(c.q, c.k, c.v, mask, qLens, kLens, scale,
          opts.softcap());
      float[] naive = dtype == DType.F32 ? null : c.naive(mask, qLens, kLens, scale, opts.softcap(), outType);
      Exec exec = Exec.backend(backend);
      try (BlockLayout layout = BlockLayout.compile(mask, s.b, s.hq, s.sq, s.sk, tiles[0], tiles[1], qLens, kLens,
              device, exec);
          Tensor q = c.q.to(device);
          Tensor k = c.k.to(device);
          Tensor v = c.v.to(device);
          AttentionOutput o = SparseAttention.forward(q, k, v, layout, opts, exec)) {
        c.assertClose(o.out(), o.lse(), ref, naive, ctx);
        org.junit.jupiter.api.Assertions.assertEquals(outType, o.out().dtype(), ctx);
      }
    }
  }
}
