package io.github.llmkernels.bench;

import io.github.llmkernels.runtime.CudaStream;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.sparse.Activation;
import io.github.llmkernels.sparse.Sparse24;
import io.github.llmkernels.sparse.Sparse24Weight;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.io.PrintStream;
import java.util.SplittableRandom;

/**
 * The 2:4 part of `gpubench`: Y [N, M] = X [N, K] W^T in BF16, W magnitude-pruned to 2:4, the 2:4
 * kernel (mma.sp prefill, values + metadata decode for N <= 16) against the library's dense CUDA
 * kernel on the same pruned weight, at a square 8192^3 problem and the Llama-3-8B shapes
 * (4096 x 4096 and 14336 x 4096, N 1, 16 and 4096). PyTorch's cuBLAS dense and
 * to_sparse_semi_structured on the same shapes: bench/gpu/torch_baselines.py sp24. Outputs
 * preallocated; CUDA events, mean of 20 calls after 3.
 */
final class GpuSparse24Bench {
  private static final int WARMUP = 3;
  private static final int ITERS = 20;
  /** {N, M, K}. */
  static final int[][] SHAPES = {
    {8192, 8192, 8192}, {1, 4096, 4096}, {16, 4096, 4096}, {4096, 4096, 4096}, {1, 14336, 4096}, {16, 14336, 4096},
    {4096, 14336, 4096}};
  /** {N, M, K} for {@code llmk.gpubench.smoke}: decode and prefill paths, ragged M and K. */
  static final int[][] SMOKE_SHAPES = {{1, 200, 256}, {16, 136, 160}, {130, 264, 96}};

  private GpuSparse24Bench() {}

  static void run(PrintStream out, int[][] shapes) {
    out.printf("%n%-40s %10s %10s %8s %10s%n", "2:4 matmul BF16 (N x M x K)", "2:4 ms", "dense ms", "speedup",
        "2:4 TFLOP/s");
    Device gpu = Device.cuda(0);
    for (int[] s : shapes) {
      int n = s[0];
      int m = s[1];
      int k = s[2];
      try (CudaStream stream = CudaStream.create(0);
          Tensor wHost = random(m, k, 1);
          Tensor xHost = random(n, k, 2);
          Tensor w = wHost.to(gpu);
          Tensor x = xHost.to(gpu);
          Tensor y = Tensor.zeros(DType.BF16, gpu, n, m)) {
        Exec exec = Exec.stream(stream);
        Sparse24.pruneInto(w, null, w, exec);
        try (Sparse24Weight sparse = Sparse24.compress(w, exec)) {
          double sparseMs = GpuBench.time(stream, WARMUP, ITERS,
              () -> Sparse24.matmulInto(x, sparse, null, Activation.NONE, y, exec));
          double denseMs = GpuBench.time(stream, WARMUP, ITERS,
              () -> Sparse24.denseMatmulInto(x, w, null, Activation.NONE, y, exec));
          double denseFlops = 2.0 * n * m * k;  // the dense problem's FLOPs, as cuSPARSELt reports
          out.printf("%-40s %10.4f %10.4f %7.2fx %10.1f%n", String.format("%d x %d x %d", n, m, k), sparseMs, denseMs,
              denseMs / sparseMs, denseFlops / sparseMs / 1e9);
        }
      }
    }
  }

  private static Tensor random(int rows, int cols, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    float[] data = new float[rows * cols];
    for (int i = 0; i < data.length; i++) {
      data[i] = (float) rng.nextGaussian();
    }
    return Tensor.fromFloats(data, DType.BF16, rows, cols);
  }
}
