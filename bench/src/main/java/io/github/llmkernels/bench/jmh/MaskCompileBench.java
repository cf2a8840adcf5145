package io.github.llmkernels.bench.jmh;

import io.github.llmkernels.attention.BlockLayout;
import io.github.llmkernels.attention.MaskSpec;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.Device;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Mask compilation: causal AND sliding window 1024 OR 64 sinks (as a user would write it) over
 * 128K x 128K tokens into a block layout (1M tiles at block 128, 4M at block 64), on the native
 * CPU compiler and on the Java one (the JAVA backend, also the fallback without natives).
 *
 * <pre>
 *   java -jar bench/target/llm-kernels-bench.jar jmh MaskCompileBench
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(1)
public class MaskCompileBench {
  @Param({"131072"})
  public int seq;

  @Param({"128", "64"})
  public int block;

  @Param({"NATIVE", "JAVA"})
  public String backend;

  private final MaskSpec mask = MaskSpec.causal().and(MaskSpec.slidingWindow(1024)).or(MaskSpec.sinks(64));

  @Benchmark
  public long compile() {
    try (BlockLayout layout = BlockLayout.compile(mask, 1, 1, seq, seq, block, block, null, null, Device.CPU,
        Exec.backend(Backend.valueOf(backend)))) {
      return layout.partialBlockCount() + layout.fullBlockCount();
    }
  }
}
