package io.github.llmkernels.bench;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.CudaStream;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.runtime.NativeCpu;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/**
 * The dynamic sparse prefill part of the demo: synthetic attention heads with planted patterns
 * ({@link SyntheticAttention}: Hq 8 / Hkv 2, d 128, BF16, seed 42) at `--attention-seq` tokens;
 * dense causal attention once, then XAttention, FlexPrefill and A-shape: estimate, attend over the
 * estimated layout, and report density, attention-mass recall and the time against dense (one
 * run each: the prefillquality command and SparsePrefillBench measure properly).
 */
final class PrefillDemo {
  private static final List<String> METHODS = List.of("xattn8", "flex", "ashape");

  private PrefillDemo() {}

  static void run(PrintStream out, int seq) {
    out.printf("%-52s %-7s %8s %8s %9s %9s %9s %8s%n", "dynamic sparse prefill (synthetic heads)", "backend", "density",
        "recall", "est ms", "attn ms", "dense ms", "speedup");
    List<Backend> backends = new ArrayList<>();
    if (NativeCpu.isAvailable()) {
      backends.add(Backend.NATIVE);
    }
    if (Cuda.isAvailable()) {
      backends.add(Backend.CUDA);
    }
    try (SyntheticAttention.Inputs in = SyntheticAttention.generate(SyntheticAttention.Config.defaults(seq))) {
      for (Backend backend : backends) {
        boolean gpu = backend == Backend.CUDA;
        Device device = gpu ? Device.cuda(0) : Device.CPU;
        try (CudaStream stream = gpu ? CudaStream.create(0) : null;
            Tensor q = in.q().to(device); Tensor k = in.k().to(device); Tensor v = in.v().to(device)) {
          Exec exec = gpu ? Exec.stream(stream) : Exec.backend(backend);
          PrefillQuality.Dense dense = PrefillQuality.dense(q, k, v, exec, stream, 1);
          for (String method : METHODS) {
            PrefillQuality.Result r = PrefillQuality.evaluate(method, PrefillQuality.options(method, seq), q, k, v, dense,
                exec, stream, 1, 1);
            out.printf("%-52s %-7s %8.4f %8.4f %9.1f %9.1f %9.1f %7.2fx%n",
                String.format("%s BF16 [1,8/2,%d,128]", method, seq), backend, r.density(), r.recallMean(), r.estMs(),
                r.sparseMs(), r.denseMs(), r.speedup());
          }
        }
      }
    }
    if (!Cuda.isAvailable()) {
      out.printf("%-52s %-7s skipped: %s%n", "dynamic sparse prefill", "CUDA", Cuda.unavailabilityCause().getMessage());
    }
  }
}
