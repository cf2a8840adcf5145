package io.github.llmkernels.bench;

import io.github.llmkernels.attention.AttentionOptions;
import io.github.llmkernels.attention.AttentionOutput;
import io.github.llmkernels.attention.BlockLayout;
import io.github.llmkernels.attention.MaskSpec;
import io.github.llmkernels.attention.SparseAttention;
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
 * The block-sparse attention part of the demo: a quarter of a Llama-3.1-8B attention layer
 * (Hq 8, Hkv 2 (GQA), d 128, BF16) under three masks (causal; sliding window 1024 + 64 sinks;
 * random 90%-sparse 128 x 128 blocks), on every available backend: mask compile time, layout
 * density, forward time, GFLOP/s over computed tiles, and the error of a few sampled query rows
 * against a double-precision evaluation of the expanded mask (the whole Java reference would take
 * minutes at this size).
 */
final class AttentionDemo {
  private static final int HQ = 8;
  private static final int HKV = 2;
  private static final int D = 128;
  private static final int BLOCK = 128;
  private static final int SAMPLED_ROWS = 6;

  private AttentionDemo() {}

  static void run(PrintStream out, int seq) {
    out.printf("%-52s %-7s %10s %10s %10s %10s %s%n", "kernel / shape", "backend", "compile ms", "density", "fwd ms",
        "GFLOP/s", "max error (" + SAMPLED_ROWS + " rows)");
    try (Tensor q = random(new long[] {1, HQ, seq, D}, 1);
        Tensor k = random(new long[] {1, HKV, seq, D}, 2);
        Tensor v = random(new long[] {1, HKV, seq, D}, 3)) {
      for (String mask : List.of("causal", "window", "random90")) {
        MaskSpec spec = AttentionWorkloads.benchMask(mask, seq, BLOCK);
        String label = String.format("sparse attention BF16 [1,%d/%d,%d,%d] %s", HQ, HKV, seq, D, mask);
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
          long t0 = System.nanoTime();
          try (BlockLayout layout = BlockLayout.compile(spec, 1, HQ, seq, seq, BLOCK, BLOCK, device, exec);
              Tensor qd = q.to(device); Tensor kd = k.to(device); Tensor vd = v.to(device)) {
            double compileMs = (System.nanoTime() - t0) / 1e6;
            AttentionOptions options = AttentionOptions.defaults();
            double ms = Demo.medianMillis(() -> {
              try (AttentionOutput o = SparseAttention.forward(qd, kd, vd, layout, options, exec)) {
                o.lse().numel();
              }
            });
            double tiles = (layout.partialBlockCount() + layout.fullBlockCount())
                * (layout.layoutHeads() == 1 ? (double) HQ : 1.0);
            double gflops = 4.0 * BLOCK * BLOCK * D * tiles / ms / 1e6;
            double error;
            try (AttentionOutput o = SparseAttention.forward(qd, kd, vd, layout, options, exec);
                Tensor outHost = o.out().to(Device.CPU)) {
              error = sampledError(q, k, v, outHost, spec, seq, options.resolvedScale(D));
            }
            out.printf("%-52s %-7s %10.1f %10.4f %10.1f %10.1f %.2e%n", label, backend, compileMs, layout.density(),
                ms, gflops, error);
          }
        }
        if (!Cuda.isAvailable()) {
          out.printf("%-52s %-7s skipped: %s%n", label, "CUDA", Cuda.unavailabilityCause().getMessage());
        }
      }
      out.printf("%-52s (dense attention would compute every tile: density 1; the Java backend is the oracle in tests)%n",
          "");
    }
  }

  private static Tensor random(long[] shape, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    float[] x = new float[Math.toIntExact(shape[0] * shape[1] * shape[2] * shape[3])];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (rng.nextGaussian());
    }
    return Tensor.fromFloats(x, DType.BF16, shape);
  }

  /** Largest |out - reference| over sampled query rows of every head (reference in double). */
  private static double sampledError(Tensor q, Tensor k, Tensor v, Tensor out, MaskSpec spec, int seq, double scale) {
    float[] qf = q.toFloatArray();
    float[] kf = k.toFloatArray();
    float[] vf = v.toFloatArray();
    float[] of = out.toFloatArray();
    SplittableRandom rng = new SplittableRandom(5);
    double worst = 0;
    double[] s = new double[seq];
    for (int h = 0; h < HQ; h++) {
      int hk = h / (HQ / HKV);
      for (int n = 0; n < SAMPLED_ROWS; n++) {
        int i = n == 0 ? seq - 1 : rng.nextInt(seq);
        double m = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < seq; j++) {
          s[j] = Double.NEGATIVE_INFINITY;
          if (spec.visible(0, h, i, j, seq, seq)) {
            double dot = 0;
            for (int t = 0; t < D; t++) {
              dot += (double) qf[(h * seq + i) * D + t] * kf[(hk * seq + j) * D + t];
            }
            s[j] = dot * scale;
            m = Math.max(m, s[j]);
          }
        }
        double[] ref = new double[D];
        double sum = 0;
        for (int j = 0; j < seq && m > Double.NEGATIVE_INFINITY; j++) {
          if (s[j] > Double.NEGATIVE_INFINITY) {
            double p = Math.exp(s[j] - m);
            sum += p;
            for (int t = 0; t < D; t++) {
              ref[t] += p * vf[(hk * seq + j) * D + t];
            }
          }
        }
        for (int t = 0; t < D; t++) {
          double r = sum > 0 ? ref[t] / sum : 0;
          worst = Math.max(worst, Math.abs(of[(h * seq + i) * D + t] - r));
        }
      }
    }
    return worst;
  }
}
