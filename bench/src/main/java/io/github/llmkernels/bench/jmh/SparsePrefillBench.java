package io.github.llmkernels.bench.jmh;

import io.github.llmkernels.attention.AttentionOptions;
import io.github.llmkernels.attention.AttentionOutput;
import io.github.llmkernels.attention.BlockLayout;
import io.github.llmkernels.attention.MaskSpec;
import io.github.llmkernels.attention.PrefillEstimate;
import io.github.llmkernels.attention.PrefillOptions;
import io.github.llmkernels.attention.SparseAttention;
import io.github.llmkernels.attention.SparsePrefill;
import io.github.llmkernels.bench.PrefillQuality;
import io.github.llmkernels.bench.SyntheticAttention;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Npy;
import io.github.llmkernels.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
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
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.Blackhole;

/**
 * Dynamic sparse prefill on the CPU (NATIVE): estimation alone and estimation + block-sparse
 * attention, against dense causal attention (the same kernel on the causal layout) in the same
 * run. B 1, Hq 8 / Hkv 2, d 128, BF16, {@link SyntheticAttention} inputs (seed 42, all 8
 * profiles).
 *
 * <ul>
 *   <li>{@code estimate}: {@code SparsePrefill.estimate} + close (for {@code method=dense}: compiling
 *       the causal layout).
 *   <li>{@code prefill}: estimate + {@code SparseAttention.forward} over the estimated layout (for
 *       dense: compile + forward), output in the input dtype.
 * </ul>
 * Methods as the prefillquality command ({@link PrefillQuality#options}): vs (MInference
 * vertical-slash defaults, columns as tokens), vsBlocks (the same with columns inflated to key
 * blocks), vsScaled (budgets x S/131072), ashape,
 * topk, flex, xattn8, xattn16, plus dense.
 *
 * <p>The setup of {@code prefill} also measures quality (not timed): density, recall (mean and
 * lowest head, from the lse of both passes) and output relative error against dense attention
 * whose F32 lse and output are cached as .npy under {@code java.io.tmpdir} (keyed by shape, seed
 * and generator version), so dense runs once per length across forks. The teardown prints
 * {@code PREFILL_STATS seq=.. method=.. density=.. causalDensity=.. recall=.. recallMin=..
 * relErr=.. estMs=..}.
 *
 * <pre>
 *   java -jar bench/target/llm-kernels-bench.jar jmh SparsePrefillBench
 *   java -jar bench/target/llm-kernels-bench.jar jmh SparsePrefillBench -p seq=8192 -p method=dense,flex
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx6g"})
public class SparsePrefillBench {
  static final int HEADS_Q = 8;
  static final int HEADS_KV = 2;
  static final int DIM = 128;
  static final long SEED = 42;

  @Param({"8192", "16384", "32768"})
  public int seq;

  @Param({"dense", "vs", "vsBlocks", "vsScaled", "ashape", "topk", "flex", "xattn8", "xattn16"})
  public String method;

  private final Exec nativeExec = Exec.backend(Backend.NATIVE);
  private SyntheticAttention.Inputs inputs;
  private PrefillOptions options;
  private String stats;

  @Setup(Level.Trial)
  public void setUp(BenchmarkParams params) {
    inputs = SyntheticAttention.generate(new SyntheticAttention.Config(seq, HEADS_Q, HEADS_KV, DIM, DType.BF16, SEED,
        SyntheticAttention.PROFILES));
    options = method.equals("dense") ? null : PrefillQuality.options(method, seq);
    if (params.getBenchmark().endsWith("prefill")) {
      PrefillQuality.Dense dense = cachedDense();
      if (options == null) {
        stats = String.format(Locale.ROOT, "density=%.4f causalDensity=%.4f recall=1 recallMin=1 relErr=0 estMs=0",
            PrefillQuality.causalDensity(seq, seq), PrefillQuality.causalDensity(seq, seq));
      } else {
        PrefillQuality.Result r = PrefillQuality.evaluate(method, options, inputs.q(), inputs.k(), inputs.v(), dense,
            nativeExec, null, 3, 1);
        stats = String.format(Locale.ROOT, "density=%.4f causalDensity=%.4f recall=%.4f recallMin=%.4f relErr=%.3e "
            + "estMs=%.2f", r.density(), r.causalDensity(), r.recallMean(), r.recallMinHead(), r.relErrMean(),
            r.estMs());
      }
    }
  }

  /** Dense causal lse and output (F32), from the tmpdir cache or computed and stored there. */
  private PrefillQuality.Dense cachedDense() {
    String key = String.format(Locale.ROOT, "llmk-prefill-dense-v%d-s%d-h%d-%d-d%d-bf16-seed%d",
        SyntheticAttention.VERSION, seq, HEADS_Q, HEADS_KV, DIM, SEED);
    Path dir = Path.of(System.getProperty("java.io.tmpdir"));
    Path lsePath = dir.resolve(key + "-lse.npy");
    Path outPath = dir.resolve(key + "-out.npy");
    if (Files.isRegularFile(lsePath) && Files.isRegularFile(outPath)) {
      try (Tensor lse = Npy.read(lsePath); Tensor out = Npy.read(outPath)) {
        return new PrefillQuality.Dense(1, HEADS_Q, seq, DIM, lse.toFloatArray(), out.toFloatArray(), Double.NaN);
      } catch (RuntimeException e) {
        System.out.println("# dense cache unreadable (" + e.getMessage() + "), recomputing");
      }
    }
    PrefillQuality.Dense d = PrefillQuality.dense(inputs.q(), inputs.k(), inputs.v(), nativeExec, null, 1);
    try (Tensor lse = Tensor.of(d.lse(), 1, HEADS_Q, seq); Tensor out = Tensor.of(d.out(), 1, HEADS_Q, seq, DIM)) {
      Path tmpLse = dir.resolve(key + "-lse.npy.tmp");
      Path tmpOut = dir.resolve(key + "-out.npy.tmp");
      Npy.write(tmpLse, lse);
      Npy.write(tmpOut, out);
      Files.move(tmpOut, outPath, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      Files.move(tmpLse, lsePath, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    } catch (java.io.IOException | RuntimeException e) {
      System.out.println("# dense cache not written: " + e.getMessage());
    }
    return d;
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    if (stats != null) {
      System.out.printf(Locale.ROOT, "PREFILL_STATS seq=%d method=%s %s%n", seq, method, stats);
    }
    inputs.close();
  }

  private BlockLayout denseLayout() {
    return BlockLayout.compile(MaskSpec.causal(), 1, HEADS_Q, seq, seq, 128, 128);
  }

  @Benchmark
  public void estimate(Blackhole bh) {
    if (options == null) {
      try (BlockLayout layout = denseLayout()) {
        bh.consume(layout.fullBlockCount());
      }
      return;
    }
    try (PrefillEstimate e = SparsePrefill.estimate(inputs.q(), inputs.k(), options, nativeExec)) {
      bh.consume(e.density());
    }
  }

  @Benchmark
  public void prefill(Blackhole bh) {
    if (options == null) {
      try (BlockLayout layout = denseLayout();
          AttentionOutput o = SparseAttention.forward(inputs.q(), inputs.k(), inputs.v(), layout,
              AttentionOptions.defaults(), nativeExec)) {
        bh.consume(o.lse().address());
      }
      return;
    }
    try (PrefillEstimate e = SparsePrefill.estimate(inputs.q(), inputs.k(), options, nativeExec);
        AttentionOutput o = SparseAttention.forward(inputs.q(), inputs.k(), inputs.v(), e.layout(),
            AttentionOptions.defaults(), nativeExec)) {
      bh.consume(o.lse().address());
    }
  }
}
