package io.github.llmkernels.bench.jmh;

import io.github.llmkernels.bench.Workloads;
import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.kvcache.KeptTokens;
import io.github.llmkernels.kvcache.KvPooling;
import io.github.llmkernels.kvcache.KvScores;
import io.github.llmkernels.kvcache.KvSelection;
import io.github.llmkernels.kvcache.ObservedAttention;
import io.github.llmkernels.kvcache.RowGather;
import io.github.llmkernels.kvcache.SnapKvOptions;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * KV cache compaction on the native CPU backend, one Llama-3.1-8B layer's K cache (B 1, Hkv 8,
 * d 128, BF16, n tokens; V costs the same again), each beside its baseline in the same run:
 *
 * <ul>
 *   <li>{@code compactDense} (row gather into [1, 8, n/2, 128]), {@code compactVarlen} (into
 *       [sum of lengths, 128] with cu), {@code copyKept}: a plain parallel copy of the same
 *       n/2 x 8 rows of bytes (the bandwidth bound). Kept: a seeded random half per head.
 *   <li>{@code compactInPlace}: hole filling, which moves only the kept rows beyond the new
 *       length (here about n/4 per head; {@code copyMoved} copies that many rows).
 *   <li>Scorers: {@code knorm}; {@code snapKv} (32 query heads over the 8 KV heads, window 64,
 *       avg pool 5); {@code tova} (the last query); {@code observed} (H2O update with the 64 window
 *       queries); {@code select} (top n/2 per head of SnapKV-like scores); baseline
 *       {@code copyK}: one parallel copy of K (a read and a write of its bytes).
 * </ul>
 * All outputs are preallocated (fresh pages would measure the kernel's page faults, not the
 * kernel); the in-place kernel repeats the same moves on a cache that already holds its result.
 *
 * <pre>
 *   java -jar bench/target/llm-kernels-bench.jar jmh KvBench
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx6g"})
public class KvBench {
  static final int HKV = 8;
  static final int HQ = 32;
  static final int D = 128;
  static final int WINDOW = 64;

  @Param({"8192", "32768"})
  public int n;

  private final Exec nativeExec = Exec.backend(Backend.NATIVE);
  private Tensor k;
  private Tensor qWindow;
  private Tensor qLast;
  private Tensor kept;
  private Tensor cu;
  private Tensor counts;
  private Tensor dense;
  private Tensor varlen;
  private Tensor work;
  private Tensor scores;
  private Tensor copySrc;
  private ObservedAttention observedState;
  private int half;
  private long movedRows;

  @Setup(Level.Trial)
  public void setUp() {
    half = n / 2;
    Workloads.KvLayer layer = new Workloads.KvLayer(HKV, n, D, half);
    k = Workloads.randomCache(layer, DType.BF16, 1);
    qWindow = randomBf16(new long[] {1, HQ, WINDOW, D}, 3);
    qLast = qWindow.slice(2, WINDOW - 1, WINDOW).contiguous();
    int[] idx = new int[HKV * half];
    SplittableRandom rng = new SplittableRandom(2);
    long[] cuHost = new long[HKV + 1];
    int[] countsHost = new int[HKV];
    for (int h = 0; h < HKV; h++) {
      int taken = 0;
      for (int j = 0; j < n && taken < half; j++) {  // a uniform random half, ascending
        if (rng.nextInt(n - j) < half - taken) {
          idx[h * half + taken++] = j;
          movedRows += j >= half ? 1 : 0;
        }
      }
      cuHost[h + 1] = cuHost[h] + half;
      countsHost[h] = half;
    }
    kept = Tensor.of(idx, 1, HKV, half);
    cu = Tensor.of(cuHost, HKV + 1);
    counts = Tensor.of(countsHost, 1, HKV);
    dense = Tensor.zeros(DType.BF16, Device.CPU, 1, HKV, half, D);
    varlen = Tensor.zeros(DType.BF16, Device.CPU, (long) HKV * half, D);
    copySrc = Tensor.zeros(DType.BF16, Device.CPU, 1, HKV, n, D);
    work = Tensor.zeros(DType.BF16, Device.CPU, 1, HKV, n, D);
    work.copyFrom(k);
    float[] s = new float[HKV * n];
    for (int i = 0; i < s.length; i++) {
      s[i] = (float) rng.nextDouble();
    }
    scores = Tensor.of(s, 1, HKV, n);
    observedState = ObservedAttention.create(1, HKV, n, Device.CPU);
  }

  private static Tensor randomBf16(long[] shape, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    float[] x = new float[Math.toIntExact(shape[0] * shape[1] * shape[2] * shape[3])];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rng.nextGaussian();
    }
    return Tensor.fromFloats(x, DType.BF16, shape);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    System.out.printf("KV_STATS n=%d keptBytes=%d movedBytes=%d kBytes=%d%n", n, (long) HKV * half * D * 2,
        movedRows * D * 2, (long) HKV * n * D * 2);
    for (Tensor t : new Tensor[] {k, qWindow, qLast, kept, cu, counts, dense, varlen, work, scores, copySrc}) {
      t.close();
    }
    observedState.close();
  }

  @Benchmark
  public void compactDense() {
    RowGather.gatherRowsInto(k, kept, dense, nativeExec);
  }

  @Benchmark
  public void compactVarlen() {
    NativeApi.kvGatherVarlen(-1, k.address(), kept.address(), cu.address(), varlen.address(), 1, HKV, n, half, D * 2L,
        0);
  }

  @Benchmark
  public void copyKept() {
    NativeApi.copyCpu(dense.address(), copySrc.address(), (long) HKV * half * D * 2);
  }

  @Benchmark
  public void compactInPlace() {
    NativeApi.kvCompactInPlace(-1, work.address(), kept.address(), counts.address(), 1, HKV, n, half, D * 2L, 0);
  }

  @Benchmark
  public void copyMoved() {
    NativeApi.copyCpu(dense.address(), copySrc.address(), movedRows * D * 2);
  }

  @Benchmark
  public void copyK() {
    NativeApi.copyCpu(work.address(), k.address(), (long) HKV * n * D * 2);
  }

  @Benchmark
  public double knorm() {
    try (Tensor s = KvScores.knorm(k, nativeExec)) {
      return s.getDouble(0);
    }
  }

  @Benchmark
  public double snapKv() {
    try (Tensor s = KvScores.snapKv(qWindow, k, SnapKvOptions.pooling(KvPooling.AVG), nativeExec)) {
      return s.getDouble(0);
    }
  }

  @Benchmark
  public double tova() {
    try (Tensor s = KvScores.tova(qLast, k, nativeExec)) {
      return s.getDouble(0);
    }
  }

  @Benchmark
  public double observed() {
    try (Tensor s = KvScores.observed(qWindow, k, observedState, 1 / Math.sqrt(D), nativeExec)) {
      return s.getDouble(0);
    }
  }

  @Benchmark
  public int select() {
    try (KeptTokens t = KvSelection.select(scores, half, 4, 64, nativeExec)) {
      return t.count(0, 0);
    }
  }
}
