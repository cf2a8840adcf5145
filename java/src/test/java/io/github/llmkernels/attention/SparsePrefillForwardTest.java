package io.github.llmkernels.attention;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link SparsePrefill#forward} attends over the estimated layout: equal to the fp64 oracle
 * restricted to the layout's tiles (base causal, or A-shape's mask), and to dense causal attention
 * when FlexPrefill falls back to dense. Estimated layouts serve every attention backend.
 */
class SparsePrefillForwardTest {

  static Stream<Arguments> cases() {
    return casesFor(TestBackends.host());
  }

  static Stream<Arguments> gpuCases() {
    return casesFor(List.of(Backend.CUDA));
  }

  static Stream<Arguments> casesFor(List<Backend> backends) {
    Stream.Builder<Arguments> out = Stream.builder();
    for (Backend backend : backends) {
      for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
        out.add(Arguments.of(backend, dtype));
      }
    }
    return out.build();
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void forwardAttendsOverTheEstimate(Backend backend, DType dtype) {
    check(backend, dtype);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("gpuCases")
  void cudaForwardAttendsOverTheEstimate(Backend backend, DType dtype) {
    TestBackends.assumeCuda();
    check(backend, dtype);
  }

  /**
   * The oracle over exactly the layout's tiles and token columns: the mask() base within the
   * selected tiles or on a column (a column inside a listed tile adds nothing, as in the kernels).
   */
  private static MaskSpec tilesMask(BlockLayout l) {
    int nqb = l.numQBlocks();
    int nkb = l.numKBlocks();
    boolean[][][] bits = new boolean[l.heads()][nqb][nkb];
    byte[] tiles = PrefillTestUtil.tiles(l);
    for (int h = 0; h < l.heads(); h++) {
      for (int qb = 0; qb < nqb; qb++) {
        for (int kb = 0; kb < nkb; kb++) {
          bits[h][qb][kb] = PrefillTestUtil.listed(tiles, l, 0, h, qb, kb);
        }
      }
    }
    MaskSpec tileMask = MaskSpec.blocks(l.blockQ(), l.blockK(), bits);
    if (l.columnCapacity() == 0) {
      return l.mask().and(tileMask);
    }
    int[][] columns = new int[l.heads()][];
    int[][] noSlashes = new int[l.heads()][0];
    for (int h = 0; h < l.heads(); h++) {
      columns[h] = l.columns(0, h);
    }
    return l.mask().and(tileMask.or(MaskSpec.verticalSlash(columns, noSlashes)));
  }

  private static void check(Backend backend, DType dtype) {
    long seed = RandomTensors.freshSeed();
    Exec exec = Exec.backend(backend);
    try (AttentionCase c = new AttentionCase(seed, 1, 4, 2, 97, 113, 32, dtype);
        Tensor q = PrefillTestUtil.on(backend, c.q);
        Tensor k = PrefillTestUtil.on(backend, c.k);
        Tensor v = PrefillTestUtil.on(backend, c.v)) {
      double scale = 1 / Math.sqrt(c.d);
      List<PrefillOptions> options = List.of(new VerticalSlashOptions(16, 9, 5, 2, 2, 16, 0, VerticalSlashOptions.ColumnMode.BLOCKS),
          new VerticalSlashOptions(16, 9, 5, 2, 2, 16, 0, VerticalSlashOptions.ColumnMode.TOKENS),
          new AShapeOptions(3, 20, 16), new BlockTopKOptions(2, 16, true, 0),
          new FlexPrefillOptions(0.8, 0.1, 16, Integer.MAX_VALUE, 16, 16, 0), new XAttentionOptions(8, 0.8, 16, 0));
      for (PrefillOptions o : options) {
        String ctx = backend + " " + c.describe() + " " + o + ", seed " + seed;
        // the oracle attends over the tiles this backend's own estimate chose (forward estimates
        // on the backend too, so a near-tie decided differently by JAVA cannot make this flaky)
        MaskSpec mask;
        try (PrefillEstimate e = SparsePrefill.estimate(q, k, o, exec)) {
          mask = tilesMask(e.layout());
        }
        try (AttentionOutput out = SparsePrefill.forward(q, k, v, o, AttentionOptions.defaults(), exec)) {
          SparseAttentionRef.Result ref = SparseAttentionRef.dense(c.q, c.k, c.v, mask, null, null, scale, 0);
          c.assertClose(out.out(), out.lse(), ref, c.naive(mask, null, null, scale, 0, dtype), ctx);
        }
        // a JAVA estimate serves a host backend's attention: same oracle over the JAVA tiles
        Backend host = backend == Backend.CUDA ? Backend.NATIVE : backend;
        try (PrefillEstimate e = SparsePrefill.estimate(c.q, c.k, o, Exec.backend(Backend.JAVA));
            AttentionOutput out = SparseAttention.forward(c.q, c.k, c.v, e.layout(), AttentionOptions.defaults(),
                Exec.backend(host))) {
          MaskSpec javaMask = tilesMask(e.layout());
          SparseAttentionRef.Result ref = SparseAttentionRef.dense(c.q, c.k, c.v, javaMask, null, null, scale, 0);
          c.assertClose(out.out(), out.lse(), ref, c.naive(javaMask, null, null, scale, 0, dtype),
              ctx + " (JAVA estimate on " + host + ")");
        } catch (IllegalArgumentException unavailable) {
          assertTrue(unavailable.getMessage().contains("without the native library"), unavailable.getMessage());
        }
      }
      // FlexPrefill's short-prompt fallback is dense causal attention.
      FlexPrefillOptions dense = new FlexPrefillOptions(0.9, 0.1, 112, Integer.MAX_VALUE, 16, 0, 0);
      try (PrefillEstimate e = SparsePrefill.estimate(q, k, dense, exec);
          AttentionOutput out = SparsePrefill.forward(q, k, v, dense, AttentionOptions.defaults(), exec)) {
        assertTrue(e.heads().stream().allMatch(h -> h.pattern() == HeadPattern.DENSE), e::toString);
        SparseAttentionRef.Result ref = SparseAttentionRef.dense(c.q, c.k, c.v, MaskSpec.causal(), null, null, scale,
            0);
        c.assertClose(out.out(), out.lse(), ref, c.naive(MaskSpec.causal(), null, null, scale, 0, dtype),
            "dense fallback " + backend + " " + dtype + ", seed " + seed);
      }
      assertThrows(IllegalArgumentException.class,
          () -> SparsePrefill.forward(q, k, v, new BlockTopKOptions(1, 16, false, 0), null, exec));
    }
  }
}
