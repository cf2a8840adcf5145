package io.github.llmkernels.bench;

import io.github.llmkernels.kvcache.RowGather;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.runtime.NativeCpu;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The `demo` command: every kernel family that has landed, on realistic LLM shapes, on every
 * available backend, with the time and the error against the Java reference. Timings here are
 * a quick look (median of a few runs); the JMH benchmarks are the measurement.
 */
final class Demo {
  private static final int RUNS = 5;
  /**
   * {@code --smoke}: one run per figure and small fixed shapes (CCE D 128 V 4000, 2:4 512 x 256),
   * so that the whole demo finishes on the emulated CUDA device; its timings mean nothing.
   */
  static boolean smoke;

  private Demo() {}

  static void run(PrintStream out, String[] args) {
    int seqLen = 32768;
    int tokens = 512;
    int attentionSeq = 8192;
    for (String a : args) {
      smoke |= a.equals("--smoke");
    }
    for (int i = 0; i + 1 < args.length; i++) {
      if (args[i].equals("--seq")) {
        seqLen = Integer.parseInt(args[i + 1]);
      } else if (args[i].equals("--tokens")) {
        tokens = Integer.parseInt(args[i + 1]);
      } else if (args[i].equals("--attention-seq")) {
        attentionSeq = Integer.parseInt(args[i + 1]);
      }
    }
    out.println("== demo (median of " + runs() + " runs after one warm-up; error vs the Java reference)"
        + (smoke ? " SMOKE shapes" : ""));
    out.printf("%-52s %-7s %10s %10s %s%n", "kernel / shape", "backend", "ms", "GB/s", "max error");
    gather(out, seqLen);
    out.println();
    CceDemo.run(out, tokens);
    out.println();
    AttentionDemo.run(out, attentionSeq);
    out.println();
    PrefillDemo.run(out, attentionSeq);
    out.println();
    KvDemo.run(out, seqLen);
    out.println();
    Sparse24Demo.run(out, tokens);
  }

  /** KV compaction's gather: keep half of a Llama-3.1-8B layer's cache, per head. */
  private static void gather(PrintStream out, int seqLen) {
    Workloads.KvLayer layer = Workloads.llama8bLayer(seqLen, 0.5);
    String label = String.format("gatherRows BF16 [1,%d,%d,%d] keep %d", layer.kvHeads(), layer.seqLen(),
        layer.headDim(), layer.kept());
    try (Tensor src = Workloads.randomCache(layer, DType.BF16, 1);
        Tensor idx = Workloads.keepIndices(layer, 2);
        Tensor reference = RowGather.gatherRows(src, idx, Exec.backend(Backend.JAVA))) {
      double bytes = reference.byteSize();
      List<Backend> backends = new ArrayList<>(List.of(Backend.JAVA));
      if (NativeCpu.isAvailable()) {
        backends.add(Backend.NATIVE);
      }
      if (Cuda.isAvailable()) {
        backends.add(Backend.CUDA);
      }
      for (Backend backend : backends) {
        boolean gpu = backend == Backend.CUDA;
        try (Tensor s = gpu ? src.to(Device.cuda(0)) : src.view(src.shape());
            Tensor i = gpu ? idx.to(Device.cuda(0)) : idx.view(idx.shape());
            Tensor dst = Tensor.allocate(DType.BF16, s.device(), reference.shape())) {
          double ms = medianMillis(() -> RowGather.gatherRowsInto(s, i, dst, Exec.backend(backend)));
          long diffs = bitDifferences(reference, dst);
          out.printf("%-52s %-7s %10.3f %10.2f %s%n", label, backend, ms, bytes / ms / 1e6,
              diffs == 0 ? "0 (bitwise equal)" : diffs + " elements differ");
        }
      }
    }
    if (!Cuda.isAvailable()) {
      out.printf("%-52s %-7s skipped: %s%n", label, "CUDA", Cuda.unavailabilityCause().getMessage());
    }
  }

  private static long bitDifferences(Tensor expected, Tensor actual) {
    short[] a = expected.toBitsArray();
    short[] b = actual.toBitsArray();
    long diffs = 0;
    for (int i = 0; i < a.length; i++) {
      diffs += a[i] == b[i] ? 0 : 1;
    }
    return diffs;
  }

  static int runs() {
    return smoke ? 1 : RUNS;
  }

  static double medianMillis(Runnable kernel) {
    kernel.run();
    double[] ms = new double[runs()];
    for (int r = 0; r < ms.length; r++) {
      long t0 = System.nanoTime();
      kernel.run();
      ms[r] = (System.nanoTime() - t0) / 1e6;
    }
    Arrays.sort(ms);
    return ms[ms.length / 2];
  }
}
