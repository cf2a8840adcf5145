package io.github.llmkernels.bench;

import io.github.llmkernels.loss.CceForward;
import io.github.llmkernels.loss.CceGradients;
import io.github.llmkernels.loss.CceOptions;
import io.github.llmkernels.loss.CutCrossEntropy;
import io.github.llmkernels.loss.Reduction;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.runtime.NativeCpu;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/**
 * The cut cross-entropy part of the demo: a Llama-3.2-1B head (D 2048, V 128256) in BF16 on LM-like
 * logits ({@link Workloads#lmHead}): loss, then loss and gradients, on every available backend,
 * with the workspace next to the N x V logits a materialising implementation holds, and the
 * per-row loss of a few rows checked against the Java reference (which is too slow for all rows).
 */
final class CceDemo {
  private static final int D = 2048;
  private static final int V = 128_256;
  private static final int CHECKED_ROWS = 4;

  private CceDemo() {}

  static void run(PrintStream out, int tokens) {
    final int D = Demo.smoke ? 128 : CceDemo.D;
    final int V = Demo.smoke ? 4000 : CceDemo.V;
    String label = String.format("cut cross-entropy BF16 N %d D %d V %d", tokens, D, V);
    out.printf("%-52s %-7s %10s %10s %10s %12s %s%n", "kernel / shape", "backend", "fwd ms", "fwd+bwd ms",
        "skipped", "workspace", "max |loss - ref| (" + CHECKED_ROWS + " rows)");
    CceOptions options = CceOptions.defaults();
    CceOptions perRow = options.toBuilder().reduction(Reduction.NONE).build();
    try (Workloads.LmHead head = Workloads.lmHead(tokens, D, V, DType.BF16, 0.1, 11);
        Tensor eRows = head.e().slice(0, 0, CHECKED_ROWS).contiguous();
        Tensor tRows = head.targets().slice(0, 0, CHECKED_ROWS).contiguous();
        CceForward ref = CutCrossEntropy.forward(eRows, head.c(), tRows, null, perRow, false,
            Exec.backend(Backend.JAVA))) {
      float[] refLoss = ref.loss().toFloatArray();
      List<Backend> backends = new ArrayList<>();
      if (NativeCpu.isAvailable()) {
        backends.add(Backend.NATIVE);
      }
      if (Cuda.isAvailable()) {
        backends.add(Backend.CUDA);
      }
      for (Backend backend : backends) {
        Device device = backend == Backend.CUDA ? Device.cuda(0) : Device.CPU;
        Exec exec = Exec.backend(backend);
        try (Tensor e = head.e().to(device); Tensor c = head.c().to(device); Tensor t = head.targets().to(device)) {
          double fwd = Demo.medianMillis(() -> {
            try (CceForward f = CutCrossEntropy.forward(e, c, t, null, options, false, exec)) {
              f.loss().numel();
            }
          });
          double[] skipped = {0};
          double both = Demo.medianMillis(() -> {
            try (CceForward f = CutCrossEntropy.forward(e, c, t, null, options, true, exec);
                CceGradients g = CutCrossEntropy.backward(e, c, t, null, f.lse(), 1f, options, exec)) {
              skipped[0] = g.skippedShare();
            }
          });
          double maxError;
          try (Tensor er = eRows.to(device); Tensor tr = tRows.to(device);
              CceForward rows = CutCrossEntropy.forward(er, c, tr, null, perRow, false, exec)) {
            float[] got = rows.loss().toFloatArray();
            maxError = 0;
            for (int i = 0; i < got.length; i++) {
              maxError = Math.max(maxError, Math.abs(got[i] - refLoss[i]));
            }
          }
          long workspace = CutCrossEntropy.workspaceBytes(tokens, D, V, DType.BF16, false, options, true, backend);
          out.printf("%-52s %-7s %10.1f %10.1f %9.1f%% %9.1f MiB %.2e%n", label, backend, fwd, both,
              100 * skipped[0], workspace / 1048576.0, maxError);
        }
      }
      out.printf("%-52s (a materialising loss holds N x V fp32 logits: %.1f MiB, twice that with their gradient)%n",
          "", (double) tokens * V * 4 / 1048576.0);
      if (!Cuda.isAvailable()) {
        out.printf("%-52s %-7s skipped: %s%n", label, "CUDA", Cuda.unavailabilityCause().getMessage());
      }
    }
  }
}
