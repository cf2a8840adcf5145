package io.github.llmkernels.bench.jmh;

import io.github.llmkernels.bench.Workloads;
import io.github.llmkernels.kvcache.RowGather;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
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
 * KV-cache row gather (keep half of one Llama-3.1-8B layer's K cache: 8 KV heads, head dim 128,
 * BF16) against a plain parallel memcpy of the same number of bytes, the physical baseline.
 * The {@code bytes} counter is the payload gathered per second (dst bytes; a copy of X bytes
 * reads X and writes X, and so does the gather).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g"})
public class GatherBench {
  /** Cached tokens per head; half of them are kept. */
  @Param({"4096", "32768"})
  public int seqLen;

  private Tensor src;
  private Tensor idx;
  private Tensor dst;
  private Tensor copySrc;
  private long payloadBytes;

  @AuxCounters(AuxCounters.Type.OPERATIONS)
  @State(Scope.Thread)
  public static class Bytes {
    public long bytes;

    @Setup(Level.Iteration)
    public void reset() {
      bytes = 0;
    }
  }

  @Setup(Level.Trial)
  public void setUp() {
    Workloads.KvLayer layer = Workloads.llama8bLayer(seqLen, 0.5);
    src = Workloads.randomCache(layer, DType.BF16, 1);
    idx = Workloads.keepIndices(layer, 2);
    dst = Tensor.allocate(DType.BF16, Device.CPU, 1, layer.kvHeads(), layer.kept(), layer.headDim());
    copySrc = Tensor.allocate(DType.BF16, Device.CPU, dst.shape());
    copySrc.copyFrom(dst);
    payloadBytes = dst.byteSize();
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    src.close();
    idx.close();
    dst.close();
    copySrc.close();
  }

  @Benchmark
  public void gatherJava(Bytes counter) {
    RowGather.gatherRowsInto(src, idx, dst, Exec.backend(Backend.JAVA));
    counter.bytes += payloadBytes;
  }

  @Benchmark
  public void gatherNative(Bytes counter) {
    RowGather.gatherRowsInto(src, idx, dst, Exec.backend(Backend.NATIVE));
    counter.bytes += payloadBytes;
  }

  /** Baseline: the same bytes moved by one contiguous parallel memcpy (same thread pool). */
  @Benchmark
  public void copyBaseline(Bytes counter) {
    dst.copyFrom(copySrc);
    counter.bytes += payloadBytes;
  }
}
