package io.github.llmkernels.bench;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.CudaStream;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.runtime.NativeCpu;
import io.github.llmkernels.sparse.Activation;
import io.github.llmkernels.sparse.Sparse24;
import io.github.llmkernels.sparse.Sparse24Ref;
import io.github.llmkernels.sparse.Sparse24Weight;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The 2:4 part of the demo: a Llama-3-8B MLP projection (W [14336, 4096], BF16) pruned to 2:4 by
 * magnitude and compressed, then Y = X W^T for a decode step (N = 1) and a prefill chunk (N =
 * `--tokens`), 2:4 against the library's dense kernel on the same pruned weight, with the first
 * rows of Y checked against the Java reference (double accumulation).
 */
final class Sparse24Demo {
  private static final int M = 14336;
  private static final int K = 4096;
  private static final int CHECKED_ROWS = 2;

  private Sparse24Demo() {}

  static void run(PrintStream out, int tokens) {
    final int M = Demo.smoke ? 512 : Sparse24Demo.M;
    final int K = Demo.smoke ? 256 : Sparse24Demo.K;
    out.printf("%-52s %-7s %10s %10s %8s %s%n", "kernel / shape", "backend", "2:4 ms", "dense ms", "speedup",
        "max |y - ref| (" + CHECKED_ROWS + " rows)");
    List<Backend> backends = new ArrayList<>();
    if (NativeCpu.isAvailable()) {
      backends.add(Backend.NATIVE);
    }
    if (Cuda.isAvailable()) {
      backends.add(Backend.CUDA);
    }
    try (Tensor dense = random(M, K, 1); Tensor xDecode = random(1, K, 2); Tensor xPrefill = random(tokens, K, 3)) {
      for (Backend backend : backends) {
        boolean gpu = backend == Backend.CUDA;
        Device device = gpu ? Device.cuda(0) : Device.CPU;
        try (CudaStream stream = gpu ? CudaStream.create(0) : null; Tensor w = dense.to(device)) {
          Exec exec = gpu ? Exec.stream(stream) : Exec.backend(backend);
          Timer timer = kernel -> gpu ? GpuBench.time(stream, 1, 5, kernel) : Demo.medianMillis(kernel);
          double pruneMs = timer.millis(() -> Sparse24.prune(w, exec).close());
          try (Tensor pruned = Sparse24.prune(w, exec)) {
            double compressMs = timer.millis(() -> Sparse24.compress(pruned, exec).close());
            try (Sparse24Weight sparse = Sparse24.compress(pruned, exec)) {
              out.printf("%-52s %-7s %10.2f%n", String.format("prune 2:4 by magnitude BF16 [%d,%d]", M, K), backend,
                  pruneMs);
              out.printf("%-52s %-7s %10.2f %21s %s%n", String.format("compress -> values + meta (%.4f of dense bytes)",
                  sparse.bytesRatio()), backend, compressMs, "", "");
              for (Tensor xHost : List.of(xDecode, xPrefill)) {
                matmulRow(out, backend, exec, timer, xHost, pruned, sparse);
              }
            }
          }
        }
      }
    }
    if (!Cuda.isAvailable()) {
      out.printf("%-52s %-7s skipped: %s%n", "2:4 sparse matmul", "CUDA", Cuda.unavailabilityCause().getMessage());
    }
  }

  /** Milliseconds per call: CUDA events on the stream for the GPU, wall clock for the CPU. */
  private interface Timer {
    double millis(Runnable kernel);
  }

  private static void matmulRow(PrintStream out, Backend backend, Exec exec, Timer timer, Tensor xHost,
      Tensor pruned, Sparse24Weight sparse) {
    long n = xHost.shape(0);
    long M = pruned.shape(0);
    long K = pruned.shape(1);
    try (Tensor x = xHost.to(pruned.device());
        Tensor y = Tensor.allocate(DType.BF16, pruned.device(), n, M);
        Tensor yDense = Tensor.allocate(DType.BF16, pruned.device(), n, M)) {
      double sparseMs = timer.millis(() -> Sparse24.matmulInto(x, sparse, null, Activation.NONE, y, exec));
      double denseMs = timer.millis(() -> Sparse24.denseMatmulInto(x, pruned, null, Activation.NONE, yDense, exec));
      double error = checkFirstRows(xHost, pruned, y);
      out.printf("%-52s %-7s %10.2f %10.2f %7.2fx %.2e%n",
          String.format("2:4 matmul BF16 N %d x [%d,%d]^T (%s)", n, M, K, n <= 16 ? "decode" : "prefill"), backend,
          sparseMs, denseMs, denseMs / sparseMs, error);
    }
  }

  /** Largest |y - reference| over the first rows of Y (the double reference is too slow for all). */
  private static double checkFirstRows(Tensor xHost, Tensor pruned, Tensor y) {
    long rows = Math.min(CHECKED_ROWS, xHost.shape(0));
    try (Tensor xRows = xHost.slice(0, 0, rows).contiguous();
        Tensor wHost = pruned.to(Device.CPU);
        Tensor yHost = y.to(Device.CPU);
        Tensor yRows = yHost.slice(0, 0, rows).contiguous()) {
      double[] ref = Sparse24Ref.denseMatmul(xRows, wHost, null, Activation.NONE);
      float[] got = yRows.toFloatArray();
      double worst = 0;
      for (int i = 0; i < got.length; i++) {
        worst = Math.max(worst, Math.abs(got[i] - ref[i]));
      }
      return worst;
    }
  }

  /** [rows, cols] BF16 with N(0, 1/sqrt(cols)) values: outputs of order 1, like a trained layer's. */
  private static Tensor random(int rows, int cols, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    float[] data = new float[rows * cols];
    double std = 1 / Math.sqrt(cols);
    for (int i = 0; i < data.length; i++) {
      data[i] = (float) (rng.nextGaussian() * std);
    }
    return Tensor.fromFloats(data, DType.BF16, rows, cols);
  }
}
