package io.github.llmkernels.bench;

import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.kvcache.KvPooling;
import io.github.llmkernels.kvcache.KvScores;
import io.github.llmkernels.kvcache.KvSelection;
import io.github.llmkernels.kvcache.SnapKvOptions;
import io.github.llmkernels.runtime.CudaStream;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.io.PrintStream;
import java.util.SplittableRandom;

/**
 * The KV compaction part of `gpubench`: one Llama-3.1-8B layer's K cache (B 1, Hkv 8, d 128, BF16)
 * at 32K and 128K tokens, a seeded random half kept per head: dense gather, varlen gather and
 * in-place hole filling against a device-to-device copy of the same bytes (the goal: at
 * least 85% of copy bandwidth), then SnapKV scoring (window 64, Hq 32) and selection against one
 * copy of K. Outputs preallocated; CUDA events, mean of 20 calls after 3.
 */
final class GpuKvBench {
  private static final int HKV = 8;
  private static final int HQ = 32;
  private static final int D = 128;
  private static final int WARMUP = 3;
  private static final int ITERS = 20;

  private GpuKvBench() {}

  static void run(PrintStream out, int[] seqs) {
    out.printf("%n%-44s %10s %10s %10s%n", "kv compaction BF16 Hkv 8 d 128, keep 50%", "ms", "GB/s", "vs copy");
    Device gpu = Device.cuda(0);
    for (int n : seqs) {
      int half = n / 2;
      int[] idx = new int[HKV * half];
      long[] cuHost = new long[HKV + 1];
      int[] countsHost = new int[HKV];
      long movedRows = 0;
      SplittableRandom rng = new SplittableRandom(2);
      for (int h = 0; h < HKV; h++) {
        int taken = 0;
        for (int j = 0; j < n && taken < half; j++) {
          if (rng.nextInt(n - j) < half - taken) {
            idx[h * half + taken++] = j;
            movedRows += j >= half ? 1 : 0;
          }
        }
        cuHost[h + 1] = cuHost[h] + half;
        countsHost[h] = half;
      }
      Workloads.KvLayer layer = new Workloads.KvLayer(HKV, n, D, half);
      try (CudaStream stream = CudaStream.create(0);
          Tensor kHost = Workloads.randomCache(layer, DType.BF16, 1);
          Tensor k = kHost.to(gpu);
          Tensor work = kHost.to(gpu);
          Tensor keptHost = Tensor.of(idx, 1, HKV, half);
          Tensor kept = keptHost.to(gpu);
          Tensor cuH = Tensor.of(cuHost, HKV + 1);
          Tensor cu = cuH.to(gpu);
          Tensor countsH = Tensor.of(countsHost, 1, HKV);
          Tensor counts = countsH.to(gpu);
          Tensor dst = Tensor.zeros(DType.BF16, gpu, 1, HKV, half, D);
          Tensor copySrc = Tensor.zeros(DType.BF16, gpu, 1, HKV, half, D)) {
        long s = stream.handle();
        long keptBytes = (long) HKV * half * D * 2;
        long movedBytes = movedRows * D * 2;
        double copyMs = GpuBench.time(stream, WARMUP, ITERS, () -> dst.copyFromAsync(copySrc, stream));
        double denseMs = GpuBench.time(stream, WARMUP, ITERS, () -> NativeApi.gatherRowsCuda(0, k.address(),
            kept.address(), dst.address(), 1, HKV, n, half, D * 2L, s));
        double varlenMs = GpuBench.time(stream, WARMUP, ITERS, () -> NativeApi.kvGatherVarlen(0, k.address(),
            kept.address(), cu.address(), dst.address(), 1, HKV, n, half, D * 2L, s));
        double inPlaceMs = GpuBench.time(stream, WARMUP, ITERS, () -> NativeApi.kvCompactInPlace(0, work.address(),
            kept.address(), counts.address(), 1, HKV, n, half, D * 2L, s));
        double copyMovedMs = GpuBench.time(stream, WARMUP, ITERS, () -> NativeApi.cudaMemcpy(0, dst.address(),
            copySrc.address(), movedBytes, NativeApi.D2D, s, false));
        print(out, "copy kept bytes S=" + n, copyMs, keptBytes, copyMs);
        print(out, "dense gather S=" + n, denseMs, keptBytes, copyMs);
        print(out, "varlen gather S=" + n, varlenMs, keptBytes, copyMs);
        print(out, "copy moved bytes S=" + n, copyMovedMs, movedBytes, copyMovedMs);
        print(out, "in place S=" + n, inPlaceMs, movedBytes, copyMovedMs);
        try (Tensor qHost = Tensor.zeros(DType.BF16, Device.CPU, 1, HQ, 64, D); Tensor q = qHost.to(gpu)) {
          Exec exec = Exec.stream(stream);
          SnapKvOptions snap = SnapKvOptions.pooling(KvPooling.AVG);
          double copyK = GpuBench.time(stream, WARMUP, ITERS, () -> work.copyFromAsync(k, stream));
          double snapMs = GpuBench.time(stream, WARMUP, ITERS, () -> KvScores.snapKv(q, k, snap, exec).close());
          print(out, "copy K S=" + n, copyK, (long) HKV * n * D * 2, copyK);
          print(out, "snapKv window 64 S=" + n, snapMs, (long) HKV * n * D * 2, copyK);
          try (Tensor scores = KvScores.snapKv(q, k, snap, exec)) {
            double selectMs = GpuBench.time(stream, WARMUP, ITERS, () -> KvSelection.select(scores, half, 4, 64, exec)
                .close());
            print(out, "select top n/2 S=" + n, selectMs, (long) HKV * n * 4, copyK);
          }
        }
      }
    }
  }

  private static void print(PrintStream out, String label, double ms, long bytes, double baselineMs) {
    out.printf("%-44s %10.4f %10.1f %9.2fx%n", label, ms, bytes / ms / 1e6, baselineMs / ms);
  }
}
