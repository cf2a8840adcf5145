package io.github.llmkernels.bench;

import io.github.llmkernels.attention.AttentionOptions;
import io.github.llmkernels.attention.BlockLayout;
import io.github.llmkernels.attention.MaskSpec;
import io.github.llmkernels.attention.SparseAttention;
import io.github.llmkernels.runtime.CudaStream;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.io.PrintStream;
import java.util.SplittableRandom;

/**
 * The attention part of `gpubench`: a Llama-3.1-8B attention layer (B 1, Hq 32, Hkv 8, d 128,
 * BF16, 128 x 128 blocks) at 8K to 128K tokens, block-sparse forward under a dense layout
 * ({@code all}: every tile, the kernel's own dense figure), causal, sliding window 1024 + 64
 * sinks, and random 90%-sparse blocks; TFLOP/s over computed tiles (4 * 128 * 128 * d FLOPs per
 * tile and head), comparable with bench/gpu/torch_baselines.py's attention table (torch SDPA
 * flash and FlexAttention on the same shapes). Mask compile time on the GPU is reported beside.
 * Inputs: one random head repeated over the heads (values do not change the work).
 */
final class GpuAttentionBench {
  private static final int HQ = 32;
  private static final int HKV = 8;
  private static final int D = 128;
  private static final int BLOCK = 128;
  private static final int WARMUP = 2;
  private static final int ITERS = 5;

  private GpuAttentionBench() {}

  static void run(PrintStream out, int[] seqs) {
    out.printf("%n%-44s %10s %10s %10s %10s%n", "attention BF16 B1 Hq32 Hkv8 d128", "compile_ms", "density", "fwd_ms",
        "TFLOP/s");
    Device gpu = Device.cuda(0);
    for (int seq : seqs) {
      try (CudaStream stream = CudaStream.create(0);
          Tensor q = repeatedHeads(HQ, seq, 1, gpu);
          Tensor k = repeatedHeads(HKV, seq, 2, gpu);
          Tensor v = repeatedHeads(HKV, seq, 3, gpu);
          Tensor o = Tensor.allocate(DType.BF16, gpu, 1, HQ, seq, D);
          Tensor lse = Tensor.allocate(DType.F32, gpu, 1, HQ, seq)) {
        Exec exec = Exec.stream(stream);
        for (String mask : new String[] {"all", "causal", "window", "random90"}) {
          MaskSpec spec = mask.equals("all") ? MaskSpec.all() : AttentionWorkloads.benchMask(mask, seq, BLOCK);
          long t0 = System.nanoTime();
          try (BlockLayout layout = BlockLayout.compile(spec, 1, HQ, seq, seq, BLOCK, BLOCK, gpu, exec)) {
            stream.synchronize();
            double compileMs = (System.nanoTime() - t0) / 1e6;
            AttentionOptions options = AttentionOptions.defaults();
            double ms = GpuBench.time(stream, WARMUP, ITERS, () -> SparseAttention.forwardInto(q, k, v, layout, options, o, lse, exec));
            double tiles = (layout.partialBlockCount() + layout.fullBlockCount())
                * (layout.layoutHeads() == 1 ? (double) HQ : 1.0);
            out.printf("%-44s %10.2f %10.4f %10.3f %10.1f%n", mask + " S=" + seq, compileMs, layout.density(), ms,
                4.0 * BLOCK * BLOCK * D * tiles / ms / 1e9);
          }
        }
      }
    }
  }

  /** [1, heads, seq, D] BF16 on the device, every head holding the same random values. */
  private static Tensor repeatedHeads(int heads, int seq, long seed, Device device) {
    SplittableRandom rng = new SplittableRandom(seed);
    float[] x = new float[seq * D];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rng.nextGaussian();
    }
    Tensor out = Tensor.allocate(DType.BF16, device, 1, heads, seq, D);
    try (Tensor head = Tensor.fromFloats(x, DType.BF16, 1, 1, seq, D)) {
      for (int h = 0; h < heads; h++) {
        try (Tensor dst = out.slice(1, h, h + 1)) {
          dst.copyFrom(head);
        }
      }
    }
    return out;
  }
}
