package io.github.llmkernels.bench.jmh;

import io.github.llmkernels.runtime.NativeCpu;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.HalfFloats;
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
import org.openjdk.jmh.infra.Blackhole;

/**
 * F32 -> F16/BF16 conversion of one 4096 x 4096 weight (16 Mi elements): each CPU variant of the
 * native kernel against the plain-Java conversion loop (the baseline) in the same run. Shows
 * what the run-time ISA dispatch buys. Variants this CPU cannot run are skipped.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g"})
public class ConvertBench {
  private static final int ELEMENTS = 4096 * 4096;

  @Param({"BF16", "F16"})
  public DType target;

  /** Native CPU variant, or "java" for the plain-Java loop. */
  @Param({"java", "x86-64", "avx2", "avx512"})
  public String variant;

  private Tensor src;
  private Tensor dst;
  private float[] javaSrc;
  private short[] javaDst;
  private String variantBefore;

  @Setup(Level.Trial)
  public void setUp() {
    SplittableRandom rnd = new SplittableRandom(7);
    javaSrc = new float[ELEMENTS];
    for (int i = 0; i < ELEMENTS; i++) {
      javaSrc[i] = (float) (rnd.nextDouble() * 4 - 2);
    }
    javaDst = new short[ELEMENTS];
    src = Tensor.of(javaSrc, ELEMENTS);
    dst = Tensor.allocate(target, Device.CPU, ELEMENTS);
    if (!variant.equals("java")) {
      if (!NativeCpu.isAvailable() || !NativeCpu.supportsVariant(variant)) {
        throw new IllegalStateException("skipping: this CPU or build cannot run variant " + variant);
      }
      variantBefore = NativeCpu.variant();
      NativeCpu.useVariant(variant);
    }
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    src.close();
    dst.close();
    if (variantBefore != null) {
      NativeCpu.useVariant(variantBefore);
    }
  }

  @Benchmark
  public void convert(Blackhole bh) {
    if (variant.equals("java")) {
      boolean bf16 = target == DType.BF16;
      for (int i = 0; i < ELEMENTS; i++) {
        javaDst[i] = bf16 ? HalfFloats.floatToBf16(javaSrc[i]) : HalfFloats.floatToF16(javaSrc[i]);
      }
      bh.consume(javaDst);
    } else {
      dst.convertFrom(src);
    }
  }
}
