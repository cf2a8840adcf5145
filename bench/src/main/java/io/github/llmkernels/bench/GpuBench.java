package io.github.llmkernels.bench;

import io.github.llmkernels.kvcache.RowGather;
import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.CudaEvent;
import io.github.llmkernels.runtime.CudaStream;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.io.PrintStream;

/**
 * The `gpubench` command: GPU timings with CUDA events, each kernel beside its natural baseline
 * in the same run. Gather: keep half of a Llama-3.1-8B layer's BF16 cache vs a device-to-device
 * copy of the same bytes. (PyTorch baselines: bench/gpu/torch_baselines.py, same shapes.)
 */
final class GpuBench {
  private static final int WARMUP = 5;
  private static final int ITERS = 50;

  private GpuBench() {}

  static void run(PrintStream out) {
    if (!Cuda.isAvailable()) {
      out.println("gpubench skipped: " + Cuda.unavailabilityCause().getMessage());
      return;
    }
    out.println("== gpubench on " + Cuda.devices().get(0));
    out.printf("%-40s %10s %10s %10s %10s %8s%n", "gather BF16 keep 50%", "gather ms", "GB/s", "copy ms", "GB/s",
        "ratio");
    for (int seqLen : new int[] {4096, 32768, 131072}) {
      Workloads.KvLayer layer = Workloads.llama8bLayer(seqLen, 0.5);
      try (Tensor srcHost = Workloads.randomCache(layer, DType.BF16, 1);
          Tensor idxHost = Workloads.keepIndices(layer, 2);
          Tensor src = srcHost.to(Device.cuda(0));
          Tensor idx = idxHost.to(Device.cuda(0));
          Tensor dst = Tensor.zeros(DType.BF16, Device.cuda(0), 1, layer.kvHeads(), layer.kept(), layer.headDim());
          Tensor copySrc = Tensor.zeros(DType.BF16, Device.cuda(0), dst.shape());
          CudaStream stream = CudaStream.create(0)) {
        Exec exec = Exec.stream(stream);
        double gatherMs = time(stream, () -> RowGather.gatherRowsInto(src, idx, dst, exec));
        double copyMs = time(stream, () -> dst.copyFromAsync(copySrc, stream));
        double bytes = dst.byteSize();
        out.printf("%-40s %10.4f %10.1f %10.4f %10.1f %8.2f%n",
            String.format("[1,%d,%d,%d] -> %d rows", layer.kvHeads(), seqLen, layer.headDim(), layer.kept()),
            gatherMs, bytes / gatherMs / 1e6, copyMs, bytes / copyMs / 1e6, copyMs / gatherMs);
      }
    }
  }

  /** Mean milliseconds per call between CUDA events on the stream. */
  private static double time(CudaStream stream, Runnable kernel) {
    for (int i = 0; i < WARMUP; i++) {
      kernel.run();
    }
    try (CudaEvent start = CudaEvent.create(stream.device()); CudaEvent end = CudaEvent.create(stream.device())) {
      start.record(stream);
      for (int i = 0; i < ITERS; i++) {
        kernel.run();
      }
      end.record(stream);
      end.synchronize();
      return CudaEvent.elapsedMillis(start, end) / ITERS;
    }
  }
}
