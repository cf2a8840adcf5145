package io.github.llmkernels.bench;

import io.github.llmkernels.kvcache.DecodeAttention;
import io.github.llmkernels.kvcache.DecodeAttentionRef;
import io.github.llmkernels.kvcache.DecodeOutput;
import io.github.llmkernels.kvcache.DenseKvCache;
import io.github.llmkernels.kvcache.KeptTokens;
import io.github.llmkernels.kvcache.KvCompaction;
import io.github.llmkernels.kvcache.KvPooling;
import io.github.llmkernels.kvcache.KvScores;
import io.github.llmkernels.kvcache.KvSelection;
import io.github.llmkernels.kvcache.SnapKvOptions;
import io.github.llmkernels.kvcache.VarlenKvCache;
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
import java.util.SplittableRandom;

/**
 * The KV compaction part of the demo: one Llama-3.1-8B layer (Hq 32 over Hkv 8, d 128, BF16) with
 * a cache of `--seq` tokens: SnapKV scores from the last 64 queries, keep half per head (4 sinks
 * and the 64-token window forced), compact K and V out of place (dense and per-head varlen) and
 * in place, then decode attention of one new query per head over the compacted cache, checked
 * against the Java reference restricted to the kept tokens.
 */
final class KvDemo {
  private static final int HQ = 32;
  private static final int HKV = 8;
  private static final int D = 128;
  private static final int WINDOW = 64;

  private KvDemo() {}

  static void run(PrintStream out, int seq) {
    out.printf("%-52s %-7s %10s %10s %s%n", "kernel / shape", "backend", "ms", "GB/s", "check");
    Workloads.KvLayer layer = Workloads.llama8bLayer(seq, 0.5);
    try (Tensor k = Workloads.randomCache(layer, DType.BF16, 1);
        Tensor v = Workloads.randomCache(layer, DType.BF16, 2);
        Tensor qWindow = random(new long[] {1, HQ, WINDOW, D}, 3);
        Tensor qNew = random(new long[] {1, HQ, D}, 4)) {
      List<Backend> backends = new ArrayList<>();
      if (NativeCpu.isAvailable()) {
        backends.add(Backend.NATIVE);
      }
      if (Cuda.isAvailable()) {
        backends.add(Backend.CUDA);
      }
      String shape = String.format("[1,%d,%d,%d]", HKV, seq, D);
      for (Backend backend : backends) {
        Device device = backend == Backend.CUDA ? Device.cuda(0) : Device.CPU;
        Exec exec = Exec.backend(backend);
        try (Tensor kd = k.to(device); Tensor vd = v.to(device); Tensor qw = qWindow.to(device);
            Tensor qn = qNew.to(device)) {
          SnapKvOptions snap = SnapKvOptions.pooling(KvPooling.AVG);
          double scoreMs = Demo.medianMillis(() -> KvScores.snapKv(qw, kd, snap, exec).close());
          out.printf("%-52s %-7s %10.2f %10s%n", "snapKv BF16 " + shape + " window " + WINDOW, backend, scoreMs, "");
          try (Tensor scores = KvScores.snapKv(qw, kd, snap, exec)) {
            int budget = layer.kept();
            double selectMs = Demo.medianMillis(() -> KvSelection.select(scores, budget, 4, WINDOW, exec).close());
            out.printf("%-52s %-7s %10.2f %10s%n", "select top " + budget + " per head", backend, selectMs, "");
            try (KeptTokens kept = KvSelection.select(scores, budget, 4, WINDOW, exec)) {
              double bytes = 2.0 * HKV * budget * D * 2;  // K and V
              double denseMs = Demo.medianMillis(() -> KvCompaction.dense(kd, vd, null, kept, exec).close());
              out.printf("%-52s %-7s %10.2f %10.2f%n", "compact dense K+V -> [1,8," + budget + ",128]", backend, denseMs,
                  bytes / denseMs / 1e6);
              double varlenMs = Demo.medianMillis(() -> KvCompaction.varlen(kd, vd, null, kept, exec).close());
              out.printf("%-52s %-7s %10.2f %10.2f%n", "compact varlen K+V -> [" + HKV * budget + ",128]", backend,
                  varlenMs, bytes / varlenMs / 1e6);
              try (Tensor kw = kd.to(device); Tensor vw = vd.to(device)) {
                long t0 = System.nanoTime();
                KvCompaction.inPlace(kw, vw, null, kept, exec);
                out.printf("%-52s %-7s %10.2f %10s%n", "compact in place K+V (moves only rows past " + budget + ")",
                    backend, (System.nanoTime() - t0) / 1e6, "");
              }
              try (VarlenKvCache cache = KvCompaction.varlen(kd, vd, null, kept, exec)) {
                double decodeMs = Demo.medianMillis(() -> DecodeAttention.forward(qn, cache, 1 / Math.sqrt(D), exec)
                    .close());
                double error = decodeError(qNew, k, v, kept, qn, cache, exec);
                out.printf("%-52s %-7s %10.2f %10.2f max |out - ref| %.2e%n", "decode attention over the compacted cache",
                    backend, decodeMs, bytes / decodeMs / 1e6, error);
              }
            }
          }
        }
      }
      if (!Cuda.isAvailable()) {
        out.printf("%-52s %-7s skipped: %s%n", "kv compaction " + shape, "CUDA", Cuda.unavailabilityCause().getMessage());
      }
    }
  }

  private static double decodeError(Tensor qHost, Tensor k, Tensor v, KeptTokens kept, Tensor qn, VarlenKvCache cache,
      Exec exec) {
    int[] idx = kept.kept().to(Device.CPU).toIntArray();
    int[][] perHead = new int[HKV][];
    for (int h = 0; h < HKV; h++) {
      perHead[h] = new int[kept.count(0, h)];
      System.arraycopy(idx, h * kept.maxKeep(), perHead[h], 0, perHead[h].length);
    }
    DecodeAttentionRef.Result ref = DecodeAttentionRef.keptDense(qHost, k, v, perHead, 1 / Math.sqrt(D));
    try (DecodeOutput o = DecodeAttention.forward(qn, cache, 1 / Math.sqrt(D), exec); Tensor got = o.out().to(Device.CPU)) {
      float[] g = got.toFloatArray();
      double worst = 0;
      for (int i = 0; i < g.length; i++) {
        worst = Math.max(worst, Math.abs(g[i] - ref.out()[i]));
      }
      return worst;
    }
  }

  private static Tensor random(long[] shape, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    long n = 1;
    for (long s : shape) {
      n *= s;
    }
    float[] x = new float[Math.toIntExact(n)];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rng.nextGaussian();
    }
    return Tensor.fromFloats(x, DType.BF16, shape);
  }
}
