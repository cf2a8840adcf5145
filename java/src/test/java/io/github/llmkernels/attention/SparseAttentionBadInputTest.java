package io.github.llmkernels.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.TestBackends;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Bad input gets an exception that names the argument and the rule, before anything is written. */
class SparseAttentionBadInputTest {

  static List<Backend> backends() {
    return TestBackends.host();
  }

  static Tensor filled(DType dtype, long... shape) {
    Tensor t = Tensor.allocate(dtype, Device.CPU, shape);
    for (long i = 0; i < t.numel(); i++) {
      t.setDouble(i, 0.1 * (i % 7));
    }
    return t;
  }

  static void assertMessage(Class<? extends Throwable> type, Executable call, String expected) {
    Throwable ex = assertThrows(type, call);
    assertTrue(ex.getMessage() != null && ex.getMessage().contains(expected),
        "message should contain \"" + expected + "\": " + ex.getMessage());
  }

  static void assertIllegal(Executable call, String expected) {
    assertMessage(IllegalArgumentException.class, call, expected);
  }

  @ParameterizedTest
  @MethodSource("backends")
  void shapesDtypesHeadsAndLayoutMismatchesAreRejected(Backend backend) {
    Exec exec = Exec.backend(backend);
    AttentionOptions o = AttentionOptions.defaults();
    try (Tensor q = filled(DType.F32, 2, 4, 8, 16);
        Tensor k = filled(DType.F32, 2, 2, 10, 16);
        Tensor v = filled(DType.F32, 2, 2, 10, 16);
        BlockLayout layout = BlockLayout.compile(MaskSpec.causal(), 2, 4, 8, 10, 4, 4, null, null, Device.CPU, exec)) {
      assertIllegal(() -> SparseAttention.forward(filled(DType.F32, 4, 8, 16), k, v, layout, o, exec),
          "q must have rank 4");
      assertIllegal(() -> SparseAttention.forward(q, filled(DType.BF16, 2, 2, 10, 16), v, layout, o, exec),
          "k dtype BF16 must equal q dtype F32");
      assertIllegal(() -> SparseAttention.forward(filled(DType.I32, 2, 4, 8, 16), k, v, layout, o, exec),
          "q must have dtype in");
      assertIllegal(() -> SparseAttention.forward(q, k, filled(DType.F32, 2, 2, 11, 16), layout, o, exec),
          "v must have the shape of k");
      assertIllegal(() -> SparseAttention.forward(q, filled(DType.F32, 2, 2, 10, 8), v, layout, o, exec),
          "k dimension 3 must equal d (from q)");
      assertIllegal(() -> SparseAttention.forward(q, filled(DType.F32, 2, 3, 10, 16), filled(DType.F32, 2, 3, 10, 16),
          layout, o, exec), "heads in key/value (Hkv = 3) must divide heads in query (Hq = 4)");
      assertIllegal(() -> SparseAttention.forward(q, k, v, layout,
          AttentionOptions.builder().outputDType(DType.F16).build(), exec), "options.outputDType must be the input dtype");
      assertIllegal(() -> SparseAttention.forward(null, k, v, layout, o, exec), "q must not be null");
      assertIllegal(() -> SparseAttention.forward(q, k, v, null, o, exec), "layout must not be null");
      // layout geometry
      try (BlockLayout other = BlockLayout.compile(MaskSpec.causal(), 2, 4, 9, 10, 4, 4)) {
        assertIllegal(() -> SparseAttention.forward(q, k, v, other, o, exec),
            "q has Sq = 8 but the layout was compiled for seqQ = 9");
      }
      try (BlockLayout other = BlockLayout.compile(MaskSpec.causal(), 2, 4, 8, 12, 4, 4)) {
        assertIllegal(() -> SparseAttention.forward(q, k, v, other, o, exec),
            "k has Sk = 10 but the layout was compiled for seqK = 12");
      }
      try (BlockLayout other = BlockLayout.compile(MaskSpec.causal(), 1, 4, 8, 10, 4, 4)) {
        assertIllegal(() -> SparseAttention.forward(q, k, v, other, o, exec),
            "q has B = 2 but the layout was compiled for batch 1");
      }
      boolean[][][] twoHeads = {{{true}}, {{false}}};
      try (BlockLayout other = BlockLayout.compile(MaskSpec.blocks(8, 8, twoHeads), 2, 2, 8, 10, 4, 4)) {
        assertIllegal(() -> SparseAttention.forward(q, k, v, other, o, exec),
            "the layout has 2 heads; it must have 1 or Hq = 4");
      }
      // outputs
      try (Tensor out = filled(DType.F32, 2, 4, 8, 16); Tensor lse = filled(DType.F32, 2, 4, 8)) {
        float[] before = out.toFloatArray();
        assertIllegal(() -> SparseAttention.forwardInto(q, k, v, layout, o, out, filled(DType.F32, 2, 4, 7), exec),
            "lse dimension 2 must equal Sq (from q) = 8");
        assertIllegal(() -> SparseAttention.forwardInto(q, k, v, layout, o, out, filled(DType.F16, 2, 4, 8), exec),
            "lse must have dtype F32");
        assertIllegal(() -> SparseAttention.forwardInto(q, k, v, layout, o, filled(DType.F32, 2, 4, 8, 15), lse, exec),
            "out dimension 3 must equal d (from q) = 16");
        assertIllegal(() -> SparseAttention.forwardInto(q, k, v, layout, o, filled(DType.BF16, 2, 4, 8, 16), lse, exec),
            "out must have dtype F32");
        assertIllegal(() -> SparseAttention.forwardInto(q, k, v, layout, o, q, lse, exec), "out must not overlap q");
        try (Tensor wide = filled(DType.F32, 2, 4, 8, 32)) {
          assertIllegal(() -> SparseAttention.forwardInto(wide.slice(3, 0, 16), k, v, layout, o, out, lse, exec),
              "q must be contiguous");
        }
        assertArrayEquals(before, out.toFloatArray(), "out must be untouched by rejected calls");
      }
      // CUDA asked for with host tensors
      assertIllegal(() -> SparseAttention.forward(q, k, v, layout, o, Exec.backend(Backend.CUDA)),
          "backend CUDA needs device tensors");
    }
  }

  @Test
  void closedTensorsAndLayoutsThrowIllegalState() {
    try (Tensor q = filled(DType.F32, 1, 1, 4, 8);
        Tensor k = filled(DType.F32, 1, 1, 4, 8);
        Tensor v = filled(DType.F32, 1, 1, 4, 8)) {
      BlockLayout layout = BlockLayout.compile(MaskSpec.all(), 1, 1, 4, 4, 2, 2);
      layout.close();
      layout.close(); // idempotent
      assertMessage(IllegalStateException.class,
          () -> SparseAttention.forward(q, k, v, layout, AttentionOptions.defaults()), "layout is closed");
      assertMessage(IllegalStateException.class, layout::density, "layout is closed");
      try (BlockLayout open = BlockLayout.compile(MaskSpec.all(), 1, 1, 4, 4, 2, 2)) {
        Tensor closed = filled(DType.F32, 1, 1, 4, 8);
        closed.close();
        assertMessage(IllegalStateException.class,
            () -> SparseAttention.forward(closed, k, v, open, AttentionOptions.defaults()), "q is closed");
        assertMessage(IllegalStateException.class,
            () -> SparseAttention.forward(q, k, closed, open, AttentionOptions.defaults()), "v is closed");
      }
    }
  }

  @Test
  void badOptionsAreRejected() {
    assertIllegal(() -> AttentionOptions.builder().scale(-1), "scale must be in [1e-30, 1e30]");
    assertIllegal(() -> AttentionOptions.builder().scale(Double.POSITIVE_INFINITY), "scale must be in [1e-30, 1e30]");
    // fp32 kernels: a factor that would become inf or 0 in float is rejected, not silently changed
    assertIllegal(() -> AttentionOptions.builder().scale(1e39), "scale must be in [1e-30, 1e30]");
    assertIllegal(() -> AttentionOptions.builder().softcap(-0.5), "softcap must be 0 (off) or in [1e-30, 1e30]");
    assertIllegal(() -> AttentionOptions.builder().softcap(1e39), "softcap must be 0 (off) or in [1e-30, 1e30]");
    assertIllegal(() -> AttentionOptions.builder().softcap(1e-46), "softcap must be 0 (off) or in [1e-30, 1e30]");
    assertIllegal(() -> AttentionOptions.builder().outputDType(DType.I32), "outputDType must be null");
  }

  @Test
  void badMasksAreRejected() {
    assertIllegal(() -> MaskSpec.window(-1, 0), "window: left and right must be >= 0; got left = -1");
    assertIllegal(() -> MaskSpec.slidingWindow(-3), "window: left and right must be >= 0");
    assertIllegal(() -> MaskSpec.sinks(-1), "sinks: n must be >= 0");
    assertIllegal(() -> MaskSpec.prefix(4, -2), "prefix: lengthsPerBatch[1] = -2 must be >= 0");
    assertIllegal(() -> MaskSpec.prefix(), "prefix: lengthsPerBatch must hold one value");
    assertIllegal(() -> MaskSpec.documentsFromCumulativeLengths(0, 5, 3, 9),
        "cuSeqlens must be sorted (non-decreasing); cuSeqlens[2] = 3 < cuSeqlens[1] = 5");
    assertIllegal(() -> MaskSpec.documentsFromCumulativeLengths(1, 5), "cuSeqlens[0] must be 0");
    assertIllegal(() -> MaskSpec.documents(new int[][] {{0, 0}, {1}}), "rows must all have the same length");
    assertIllegal(() -> MaskSpec.documents(new int[][] {{0}, {0}}, new int[][] {{0}, {0}, {0}}),
        "qIds has 2 rows and kIds 3");
    float[][][] scores = {{{1, 2, 3}, {3, 2, 1}}};
    assertIllegal(() -> MaskSpec.topK(scores, -1, 8, 8), "topK: k must be >= 0");
    assertIllegal(() -> MaskSpec.topK(scores, 4, 8, 8), "topK: k = 4 exceeds the number of key blocks (3)");
    assertIllegal(() -> MaskSpec.topK(new float[][][] {{{1, Float.NaN}}}, 1, 8, 8), "is NaN");
    assertIllegal(() -> MaskSpec.topK(scores, 1, 0, 8), "topK: blockRows and blockCols must be >= 1");
    assertIllegal(() -> MaskSpec.verticalSlash(new int[][] {{3, -1}}, new int[][] {{0}}), "values must be >= 0");
    assertIllegal(() -> MaskSpec.verticalSlash(new int[][] {{3, 3}}, new int[][] {{0}}), "holds 3 twice");
    assertIllegal(() -> MaskSpec.verticalSlash(new int[][] {{1}, {2}}, new int[][] {{0}, {1}, {2}}),
        "columnsPerHead has 2 heads and slashesPerHead 3");
    assertIllegal(() -> MaskSpec.blocks(4, 4, 2, 2, new int[][] {{0, 2}}), "pair 0 of head 0 = [0, 2]");
    assertIllegal(() -> MaskSpec.blocks(4, 4, new boolean[][] {{true}, {true, false}}),
        "bitmap rows must all have 1 columns");
    assertIllegal(() -> MaskSpec.causal().and(null), "and: other mask must not be null");
    MaskSpec chain = MaskSpec.sinks(1);
    for (int i = 0; i < 15; i++) {
      chain = chain.and(MaskSpec.sinks(i + 2)); // 31 nodes
    }
    MaskSpec full = chain;
    assertIllegal(() -> full.or(MaskSpec.causal()), "mask has 33 nodes; at most 32 are allowed");
    // geometry checked at compile
    assertIllegal(() -> BlockLayout.compile(MaskSpec.documents(new int[][] {{0, 0, 1, 1, 1}}), 1, 1, 8, 8, 4, 4),
        "documents: query segment ids have 5 entries per batch but seqQ = 8");
    assertIllegal(() -> BlockLayout.compile(MaskSpec.prefix(1, 2, 3), 2, 1, 8, 8, 4, 4),
        "prefix: lengths has 3 rows; it must have 1 (shared) or batch = 2");
    assertIllegal(() -> BlockLayout.compile(MaskSpec.blocks(4, 4, new boolean[3][2][2]), 1, 4, 8, 8, 4, 4),
        "blocks: the block bitmap has 3 rows; it must have 1 (shared) or heads = 4");
  }

  @Test
  void badLayoutGeometryIsRejected() {
    MaskSpec m = MaskSpec.causal();
    assertIllegal(() -> BlockLayout.compile(m, 2, 1, 8, 8, 4, 4, new int[] {8, 9}, null),
        "qLens[1] = 9 must be in [0, seqQ = 8]");
    assertIllegal(() -> BlockLayout.compile(m, 2, 1, 8, 8, 4, 4, null, new int[] {-1, 2}),
        "kLens[0] = -1 must be in [0, seqK = 8]");
    assertIllegal(() -> BlockLayout.compile(m, 2, 1, 8, 8, 4, 4, new int[] {8}, null),
        "qLens must have one entry per batch (2)");
    assertIllegal(() -> BlockLayout.compile(m, 1, 1, 8, 8, 0, 4), "blockQ and blockK must be >= 1");
    assertIllegal(() -> BlockLayout.compile(m, 0, 1, 8, 8, 4, 4), "batch and heads must be >= 1");
    assertIllegal(() -> BlockLayout.compile(m, 1, 1, -1, 8, 4, 4), "seqQ and seqK must be >= 0");
    assertIllegal(() -> BlockLayout.compile(null, 1, 1, 8, 8, 4, 4), "mask must not be null");
    assertIllegal(() -> BlockLayout.compile(m, 1, 1, 8, 8, 4, 4, Device.CPU, Exec.backend(Backend.CUDA)),
        "backend CUDA needs a CUDA device");
    try (BlockLayout l = BlockLayout.compile(m, 1, 2, 8, 8, 4, 4)) {
      assertIllegal(() -> l.kvBlocks(0, 2, 0), "kvBlocks: (b, h, qBlock) = (0, 2, 0) must lie in");
    }
  }

  @ParameterizedTest
  @MethodSource("backends")
  void badMergeInputsAreRejected(Backend backend) {
    Exec exec = Exec.backend(backend);
    try (Tensor outA = filled(DType.F32, 3, 4);
        Tensor outB = filled(DType.F32, 3, 4);
        Tensor lseA = filled(DType.F32, 3);
        Tensor lseB = filled(DType.F32, 3)) {
      assertIllegal(() -> SparseAttention.mergeStates(outA, lseA, filled(DType.F32, 3, 5), lseB, exec),
          "outB must have shape [3, 4]");
      assertIllegal(() -> SparseAttention.mergeStates(outA, filled(DType.F32, 4), outB, lseB, exec),
          "lseA must have shape [3]");
      assertIllegal(() -> SparseAttention.mergeStates(outA, lseA, filled(DType.BF16, 3, 4), lseB, exec),
          "outB dtype BF16 must equal outA dtype F32");
      assertIllegal(() -> SparseAttention.mergeStates(outA, lseA, outB, filled(DType.F16, 3), exec),
          "lseB must have dtype F32");
      assertIllegal(() -> SparseAttention.mergeStatesInto(outA, lseA, outB, lseB, outA, lseB, exec),
          "an in-place merge must write out and lse over the same input state");
      try (Tensor big = filled(DType.F32, 4, 4)) {
        assertIllegal(() -> SparseAttention.mergeStatesInto(outA, lseA, outB, lseB, big.slice(0, 1, 4), lseA, exec),
            "an in-place merge");
      }
      try (Tensor big = filled(DType.F32, 4, 4); Tensor lse = filled(DType.F32, 3)) {
        assertIllegal(() -> SparseAttention.mergeStatesInto(big.slice(0, 0, 3), lseA, outB, lseB, big.slice(0, 1, 4),
            lse, exec), "out must not overlap outA");
      }
      assertIllegal(() -> SparseAttention.mergeStates(null, lseA, outB, lseB, exec), "outA must not be null");
    }
  }
}
