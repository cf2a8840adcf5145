package io.github.llmkernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.github.llmkernels.attention.AttentionOptions;
import io.github.llmkernels.attention.AttentionOutput;
import io.github.llmkernels.attention.BlockLayout;
import io.github.llmkernels.attention.MaskSpec;
import io.github.llmkernels.attention.SparseAttention;
import io.github.llmkernels.kvcache.DecodeAttention;
import io.github.llmkernels.kvcache.DecodeOutput;
import io.github.llmkernels.kvcache.KeptTokens;
import io.github.llmkernels.kvcache.KvCompaction;
import io.github.llmkernels.kvcache.KvPooling;
import io.github.llmkernels.kvcache.KvScores;
import io.github.llmkernels.kvcache.KvSelection;
import io.github.llmkernels.kvcache.RowGather;
import io.github.llmkernels.kvcache.SnapKvOptions;
import io.github.llmkernels.kvcache.VarlenKvCache;
import io.github.llmkernels.loss.CceForward;
import io.github.llmkernels.loss.CceGradients;
import io.github.llmkernels.loss.CceOptions;
import io.github.llmkernels.loss.CutCrossEntropy;
import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.CudaStream;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.runtime.NativeCpu;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** The README's quickstart, kept compiling and running (update both together). */
class ReadmeExampleTest {

  @Test
  void quickstartRuns() {
    // Keep 2 of 4 cached tokens per head: dst[b, h, k, :] = src[b, h, idx[b, h, k], :]
    try (Tensor cache = Tensor.fromFloats(new float[1 * 2 * 4 * 8], DType.BF16, 1, 2, 4, 8);
        Tensor keep = Tensor.of(new int[] {0, 3, 1, 2}, 1, 2, 2);
        Tensor kept = RowGather.gatherRows(cache, keep)) { // AUTO: NATIVE here
      System.out.println(kept + " on " + (NativeCpu.isAvailable() ? NativeCpu.variant() : "java"));
      assertArrayEquals(new long[] {1, 2, 2, 8}, kept.shape());
    }

    // On a GPU: same call, device tensors, optional stream; Cuda.isAvailable() says why not.
    if (Cuda.isAvailable()) {
      try (Tensor src = Tensor.zeros(DType.BF16, Device.cuda(0), 1, 8, 4096, 128);
          Tensor host = Tensor.of(new int[8 * 16], 1, 8, 16);
          Tensor idx = host.to(Device.cuda(0));
          CudaStream stream = CudaStream.create(0);
          Tensor out = RowGather.gatherRows(src, idx, Exec.stream(stream))) {
        assertArrayEquals(new long[] {1, 8, 16, 128}, out.shape());
      }
    }
  }

  @Test
  void cutCrossEntropyRuns() {
    CceOptions opts = CceOptions.builder().labelSmoothing(0.1).build(); // MEAN, ignore -100, filter AUTO
    try (Tensor hidden = Tensor.fromFloats(new float[8 * 64], DType.BF16, 8, 64); // E [N, D]
        Tensor classifier = Tensor.fromFloats(new float[1000 * 64], DType.BF16, 1000, 64); // C [V, D]
        Tensor labels = Tensor.of(new int[] {1, 2, 3, -100, 5, 6, 7, 8}, 8); // [N]
        CceForward f = CutCrossEntropy.forward(hidden, classifier, labels, null, opts, true);
        CceGradients g = CutCrossEntropy.backward(hidden, classifier, labels, null, f.lse(), 1f, opts,
            Exec.DEFAULT)) {
      double loss = f.loss().getDouble(0); // scalar for MEAN/SUM, [N] for NONE
      // All-zero inputs: every logit is 0, so the loss is log V.
      org.junit.jupiter.api.Assertions.assertEquals(Math.log(1000), loss, 1e-4);
      assertArrayEquals(new long[] {8, 64}, g.gradE().shape());
      assertArrayEquals(new long[] {1000, 64}, g.gradC().shape());
    }
  }

  @Test
  void sparseAttentionRuns() {
    // Causal sliding window of 1024 keys plus 64 attention sinks, 128 x 128 blocks, GQA 8 over 2 heads.
    MaskSpec mask = MaskSpec.slidingWindow(1024).or(MaskSpec.sinks(64));
    int seq = 4096;
    try (BlockLayout layout = BlockLayout.compile(mask, 1, 8, seq, seq, 128, 128);
        Tensor q = Tensor.zeros(DType.BF16, Device.CPU, 1, 8, seq, 128); // [B, Hq, Sq, d]
        Tensor k = Tensor.zeros(DType.BF16, Device.CPU, 1, 2, seq, 128); // [B, Hkv, Sk, d]
        Tensor v = Tensor.zeros(DType.BF16, Device.CPU, 1, 2, seq, 128);
        AttentionOutput o = SparseAttention.forward(q, k, v, layout, AttentionOptions.defaults())) {
      double density = layout.density(); // share of the 32 x 32 tiles computed
      // o.out() [1, 8, 4096, 128] BF16, o.lse() [1, 8, 4096] F32
      org.junit.jupiter.api.Assertions.assertTrue(density > 0.25 && density < 0.35, "density " + density);
      assertArrayEquals(new long[] {1, 8, seq}, o.lse().shape());
    }
  }

  @Test
  void kvCompactionRuns() {
    int n = 256;
    try (Tensor k = Tensor.fromFloats(ramp(2 * n * 64), DType.BF16, 1, 2, n, 64);
        Tensor v = Tensor.fromFloats(ramp(2 * n * 64), DType.BF16, 1, 2, n, 64);
        Tensor qWindow = Tensor.fromFloats(ramp(4 * 64 * 64), DType.BF16, 1, 4, 64, 64);
        Tensor qNew = Tensor.fromFloats(ramp(4 * 64), DType.BF16, 1, 4, 64)) {
      int N = n;
      // As in the README:
      try (Tensor scores = KvScores.snapKv(qWindow, k, SnapKvOptions.pooling(KvPooling.AVG)); // [B, Hkv, N]
          KeptTokens kept = KvSelection.select(scores, N / 2, 4, 64); // half per head; 4 sinks, window kept
          VarlenKvCache cache = KvCompaction.varlen(k, v, null, kept); // [sum of lengths, d] + cu + positions
          DecodeOutput o = DecodeAttention.forward(qNew, cache)) { // qNew [B, Hq, d]
        assertArrayEquals(new long[] {1, 4, 64}, o.out().shape());
        assertArrayEquals(new long[] {2L * N / 2, 64}, cache.k().shape());
      }
    }
  }

  private static float[] ramp(int n) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) Math.sin(i * 0.37);
    }
    return x;
  }
}
