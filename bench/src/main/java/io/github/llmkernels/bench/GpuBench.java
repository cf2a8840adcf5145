package io.github.llmkernels.bench;

import io.github.llmkernels.kvcache.RowGather;
import io.github.llmkernels.loss.CceGradients;
import io.github.llmkernels.loss.CceOptions;
import io.github.llmkernels.loss.CutCrossEntropy;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.CudaEvent;
import io.github.llmkernels.runtime.CudaStream;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.HalfFloats;
import io.github.llmkernels.tensor.Tensor;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * The `gpubench` command: GPU timings with CUDA events, each kernel beside its natural baseline
 * in the same run. (PyTorch baselines: bench/gpu/torch_baselines.py, same shapes.)
 *
 * <ul>
 *   <li>Gather: keep half of a Llama-3.1-8B layer's BF16 cache vs a device-to-device copy of the
 *       same bytes; mean over {@value #ITERS} calls after {@value #WARMUP}.
 *   <li>Cut cross-entropy (BF16, no bias, MEAN, ignore -100) on LM-like logits as
 *       {@link Workloads#lmHead}: E ~ N(0, 1), C ~ N(0, 1/D) plus a Zipf(1.5) unigram prior on the
 *       last hidden unit, Zipf targets with ~10% ignored. {@code fwd} is the forward
 *       with lse; {@code fwdbwd} is that forward then dE and dC (upstream gradient 1), into
 *       preallocated outputs. Options: {@code default} (filter AUTO, sorted vocabulary),
 *       {@code filter0} (filterEps 0: every tile computed), {@code determ} (deterministic). Median
 *       and minimum of per-call CUDA-event timings over {@value #CCE_ITERS} calls after
 *       {@value #CCE_WARMUP} warm-ups. {@code ws_MiB} is {@link CutCrossEntropy#workspaceBytes}
 *       (forward, or backward for fwdbwd); {@code alloc_MiB} is what the library allocates beyond
 *       the inputs (outputs plus that workspace; computed, not measured: the Java API exposes no
 *       device memory counters); {@code skipped} is the share of logit tiles the backward skipped.
 *
 *   <li>Attention: see {@link GpuAttentionBench}. KV compaction: see {@link GpuKvBench}. 2:4 sparse
 *       matmul: see {@link GpuSparse24Bench}.
 * </ul>
 *
 * <p>System properties (for quick or sanitizer runs): {@code llmk.gpubench.cases} (default
 * {@code gather,cce,attention,kv,sp24}), {@code llmk.gpubench.attentionSeqs} (default 8192 ... 131072), {@code llmk.gpubench.cceShapes} (default
 * {@code 8192x2304x256000,4096x512x32000}), {@code llmk.gpubench.cceWarmup},
 * {@code llmk.gpubench.cceIters}.
 */
final class GpuBench {
  private static final int WARMUP = 5;
  private static final int ITERS = 50;
  private static final int CCE_WARMUP = 3;
  private static final int CCE_ITERS = 10;
  private static final String DEFAULT_CCE_SHAPES = "8192x2304x256000,4096x512x32000";
  /**
   * {@code -Dllmk.gpubench.smoke=true}: tiny shapes and one timed call each, to check that the
   * harness runs end to end (on the emulated CUDA device, before a GPU session). Says nothing
   * about speed.
   */
  static final boolean SMOKE = Boolean.getBoolean("llmk.gpubench.smoke");

  private GpuBench() {}

  static void run(PrintStream out) {
    if (!Cuda.isAvailable()) {
      out.println("gpubench skipped: " + Cuda.unavailabilityCause().getMessage());
      return;
    }
    List<String> cases = Arrays.asList(System.getProperty("llmk.gpubench.cases", "gather,cce,attention,kv,sp24").split(","));
    String device = Cuda.devices().get(0).toString();
    out.println("== gpubench on " + device + (SMOKE ? " (smoke shapes)" : ""));
    if (device.contains("emulator")) {
      out.println("EMULATED CUDA device (the CPU): every timing below is meaningless; this run only checks the harness");
    }
    if (cases.contains("gather")) {
      gather(out);
    }
    if (cases.contains("cce")) {
      int warmup = Integer.getInteger("llmk.gpubench.cceWarmup", SMOKE ? 0 : CCE_WARMUP);
      int iters = Integer.getInteger("llmk.gpubench.cceIters", SMOKE ? 1 : CCE_ITERS);
      String shapes = System.getProperty("llmk.gpubench.cceShapes", SMOKE ? "64x64x1000" : DEFAULT_CCE_SHAPES);
      for (String shape : shapes.split(",")) {
        String[] p = shape.trim().split("x");
        if (p.length != 3) {
          throw new IllegalArgumentException("llmk.gpubench.cceShapes: expected NxDxV, got " + shape);
        }
        cce(out, Integer.parseInt(p[0]), Integer.parseInt(p[1]), Integer.parseInt(p[2]), warmup, iters);
      }
    }
    if (cases.contains("attention")) {
      String defaultSeqs = SMOKE ? "256" : "8192,16384,32768,65536,131072";
      int[] seqs = Arrays.stream(System.getProperty("llmk.gpubench.attentionSeqs", defaultSeqs)
          .split(",")).mapToInt(s -> Integer.parseInt(s.trim())).toArray();
      GpuAttentionBench.run(out, seqs);
    }
    if (cases.contains("kv")) {
      GpuKvBench.run(out, SMOKE ? new int[] {512} : new int[] {32768, 131072});
    }
    if (cases.contains("sp24")) {
      GpuSparse24Bench.run(out, SMOKE ? GpuSparse24Bench.SMOKE_SHAPES : GpuSparse24Bench.SHAPES);
    }
  }

  private static void gather(PrintStream out) {
    out.printf("%-40s %10s %10s %10s %10s %8s%n", "gather BF16 keep 50%", "gather ms", "GB/s", "copy ms", "GB/s",
        "ratio");
    for (int seqLen : SMOKE ? new int[] {512} : new int[] {4096, 32768, 131072}) {
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

  /** One CCE shape: every option variant, forward alone and forward + backward. */
  private static void cce(PrintStream out, int n, int d, int v, int warmup, int iters) {
    String shape = n + "x" + d + "x" + v;
    out.printf("%n%-20s %-8s %-7s %10s %10s %10s %10s %8s %10s%n", "cce BF16 NxDxV", "variant", "pass", "median_ms",
        "min_ms", "ws_MiB", "alloc_MiB", "skipped", "loss");
    CceOptions defaults = CceOptions.defaults();
    String[] names = {"default", "filter0", "determ"};
    CceOptions[] variants = {defaults, defaults.toBuilder().filterEps(0).build(),
        defaults.toBuilder().deterministic(true).build()};
    Device dev = Device.cuda(0);
    // LM-like logits, as Workloads.lmHead: N(0, 1) noise plus a Zipf unigram prior on the last unit.
    float[] ones = new float[n];
    java.util.Arrays.fill(ones, 1f);
    try (Tensor e = randomBf16(n, d, 1.0, ones, 11, dev);
        Tensor c = randomBf16(v, d, 1.0 / Math.sqrt(d), Workloads.zipfPrior(v), 12, dev);
        Tensor targetsHost = randomTargets(n, v, 13);
        Tensor targets = targetsHost.to(dev);
        Tensor oneHost = Tensor.of(new float[] {1f});
        Tensor gradLoss = oneHost.to(dev);
        Tensor loss = Tensor.allocate(DType.F32, dev);
        Tensor lse = Tensor.allocate(DType.F32, dev, n);
        Tensor gradE = Tensor.allocate(DType.BF16, dev, n, d);
        Tensor gradC = Tensor.allocate(DType.BF16, dev, v, d);
        CudaStream stream = CudaStream.create(0)) {
      Exec exec = Exec.stream(stream);
      List<String> wsErrors = new ArrayList<>();
      long outFwd = loss.byteSize() + lse.byteSize();
      long outBwd = outFwd + gradE.byteSize() + gradC.byteSize();
      for (int k = 0; k < names.length; k++) {
        CceOptions o = variants[k];
        long wsFwd = workspaceBytes(n, d, v, o, false, wsErrors);
        long wsBwd = workspaceBytes(n, d, v, o, true, wsErrors);
        double[] fwd = timeEach(stream, warmup, iters,
            () -> CutCrossEntropy.forwardInto(e, c, targets, null, o, loss, lse, exec));
        float lossValue = hostScalar(loss);
        long[][] tiles = new long[1][];
        double[] fwdBwd = timeEach(stream, warmup, iters, () -> {
          CutCrossEntropy.forwardInto(e, c, targets, null, o, loss, lse, exec);
          tiles[0] = CutCrossEntropy.backwardInto(e, c, targets, null, lse, gradLoss, null, o, gradE, gradC, null,
              exec);
        });
        double skipped;
        try (CceGradients counts = new CceGradients(null, null, null, tiles[0][0], tiles[0][1])) {
          skipped = counts.skippedShare();
        }
        out.printf("%-20s %-8s %-7s %10.3f %10.3f %10s %10s %8s %10.5f%n", shape, names[k], "fwd",
            median(fwd), min(fwd), mib(wsFwd), mib(wsFwd < 0 ? -1 : outFwd + wsFwd), "-", lossValue);
        out.printf("%-20s %-8s %-7s %10.3f %10.3f %10s %10s %8.4f %10.5f%n", shape, names[k], "fwdbwd",
            median(fwdBwd), min(fwdBwd), mib(wsBwd),
            mib(wsFwd < 0 || wsBwd < 0 ? -1 : outBwd + Math.max(wsFwd, wsBwd)), skipped, hostScalar(loss));
      }
      if (!wsErrors.isEmpty()) {
        out.println("ws_MiB/alloc_MiB n/a: CutCrossEntropy.workspaceBytes(..., CUDA) failed: " + wsErrors.get(0));
      }
    }
  }

  /**
   * [rows, cols] BF16 on the device, N(0, std^2) filled in parallel from a fixed seed, except the
   * last column, which holds lastColumn[row].
   */
  private static Tensor randomBf16(int rows, int cols, double std, float[] lastColumn, long seed, Device device) {
    long count = (long) rows * cols;
    if (count * 2 > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("randomBf16: " + rows + "x" + cols + " is over 2 GiB");
    }
    ByteBuffer bytes = ByteBuffer.allocateDirect((int) (count * 2)).order(ByteOrder.LITTLE_ENDIAN);
    ShortBuffer bits = bytes.asShortBuffer();
    int chunk = 1 << 20;
    int chunks = (int) ((count + chunk - 1) / chunk);
    IntStream.range(0, chunks).parallel().forEach(ch -> {
      SplittableRandom rnd = new SplittableRandom(seed * 1_000_003L + ch);
      int end = (int) Math.min(count, (long) (ch + 1) * chunk);
      for (int i = ch * chunk; i < end; i++) {
        float x = i % cols == cols - 1 ? lastColumn[i / cols] : (float) (rnd.nextGaussian() * std);
        bits.put(i, HalfFloats.floatToBf16(x));
      }
    });
    try (Tensor host = Tensor.wrap(bytes, DType.BF16, rows, cols)) {
      return host.to(device);
    }
  }

  /** [n] I32 targets from the Zipf law of {@link Workloads#lmHead}, each ignored (-100) with probability 0.1. */
  private static Tensor randomTargets(int n, int v, long seed) {
    long[] t = Workloads.zipfTargets(new SplittableRandom(seed), n, v, 0.1, -100);
    int[] t32 = new int[n];
    for (int i = 0; i < n; i++) {
      t32[i] = (int) t[i];
    }
    return Tensor.of(t32, n);
  }

  private static float hostScalar(Tensor deviceScalar) {
    try (Tensor h = deviceScalar.to(Device.CPU)) {
      return (float) h.getDouble(0);
    }
  }

  /** {@link CutCrossEntropy#workspaceBytes} on CUDA, or -1 (the message goes to errors). */
  private static long workspaceBytes(int n, int d, int v, CceOptions o, boolean backward, List<String> errors) {
    try {
      return CutCrossEntropy.workspaceBytes(n, d, v, DType.BF16, false, o, backward, Backend.CUDA);
    } catch (RuntimeException ex) {
      errors.add(ex.getMessage());
      return -1;
    }
  }

  /** Bytes as MiB with one decimal, "n/a" when negative (unknown). */
  private static String mib(long bytes) {
    return bytes < 0 ? "n/a" : String.format("%.1f", bytes / (1024.0 * 1024.0));
  }

  private static double median(double[] ms) {
    double[] s = ms.clone();
    Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }

  private static double min(double[] ms) {
    return Arrays.stream(ms).min().orElse(Double.NaN);
  }

  /** Milliseconds of each of {@code iters} calls (CUDA events around each) after {@code warmup} calls. */
  private static double[] timeEach(CudaStream stream, int warmup, int iters, Runnable call) {
    for (int i = 0; i < warmup; i++) {
      call.run();
    }
    stream.synchronize();
    List<Double> ms = new ArrayList<>();
    try (CudaEvent start = CudaEvent.create(stream.device()); CudaEvent end = CudaEvent.create(stream.device())) {
      for (int i = 0; i < Math.max(1, iters); i++) {
        start.record(stream);
        call.run();
        end.record(stream);
        end.synchronize();
        ms.add((double) CudaEvent.elapsedMillis(start, end));
      }
    }
    return ms.stream().mapToDouble(Double::doubleValue).toArray();
  }

  /** Mean milliseconds per call between CUDA events on the stream ({@value #WARMUP} + {@value #ITERS}). */
  private static double time(CudaStream stream, Runnable kernel) {
    return time(stream, WARMUP, ITERS, kernel);
  }

  /** Mean milliseconds per call of {@code iters} calls between CUDA events, after {@code warmup}. */
  static double time(CudaStream stream, int warmup, int iters, Runnable kernel) {
    if (SMOKE) {
      warmup = 0;
      iters = 1;
    }
    for (int i = 0; i < warmup; i++) {
      kernel.run();
    }
    try (CudaEvent start = CudaEvent.create(stream.device()); CudaEvent end = CudaEvent.create(stream.device())) {
      start.record(stream);
      for (int i = 0; i < iters; i++) {
        kernel.run();
      }
      end.record(stream);
      end.synchronize();
      return CudaEvent.elapsedMillis(start, end) / iters;
    }
  }
}
