package io.github.llmkernels.bench.jmh;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.sparse.Activation;
import io.github.llmkernels.sparse.Sparse24;
import io.github.llmkernels.sparse.Sparse24Weight;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.torch.TorchTensors;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
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
 * Y [N, M] = X [N, K] W^T at LLM shapes (Llama-3-8B attention 4096 x 4096 and MLP 14336 x 4096),
 * W magnitude-pruned to 2:4: the native 2:4 kernel ({@code sparse}, values + metadata), the
 * library's own dense kernel on the pruned W ({@code ownDense}) and libtorch CPU
 * {@code linear(X, W)} ({@code torchDense}), all in the same run on the same data (made by torch,
 * wrapped zero-copy; outputs preallocated for the library, allocated by torch for torch).
 *
 * <pre>
 *   java -jar bench/target/llm-kernels-bench.jar jmh Sparse24Bench -p dtype=BF16
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx6g"})
public class Sparse24Bench {
  /** M x K. */
  @Param({"4096x4096", "14336x4096"})
  public String shape;

  @Param({"1", "16", "512", "4096"})
  public int n;

  @Param({"BF16", "F32"})
  public String dtype;

  private final Exec nativeExec = Exec.backend(Backend.NATIVE);
  private org.bytedeco.pytorch.Tensor tx;
  private org.bytedeco.pytorch.Tensor tw;
  private Tensor x;
  private Tensor w;
  private Tensor y;
  private Sparse24Weight sparse;

  @Setup(Level.Trial)
  public void setUp() {
    String[] p = shape.split("x");
    int m = Integer.parseInt(p[0]);
    int k = Integer.parseInt(p[1]);
    DType dt = DType.valueOf(dtype);
    torch.manual_seed(7);
    TensorOptions opts = new TensorOptions(TorchTensors.scalarTypeOf(dt));
    tx = torch.empty(new long[] {n, k}, opts, new MemoryFormatOptional());
    tw = torch.empty(new long[] {m, k}, opts, new MemoryFormatOptional());
    tx.normal_(0, 1, new GeneratorOptional());
    tw.normal_(0, 1, new GeneratorOptional());
    x = TorchTensors.wrap(tx);
    w = TorchTensors.wrap(tw);
    Sparse24.pruneInto(w, null, w, nativeExec); // in place: torch's W is the pruned weight too
    sparse = Sparse24.compress(w, nativeExec);
    y = Tensor.zeros(dt, Device.CPU, n, m);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    System.out.printf("SP24_STATS shape=%s n=%d dtype=%s sparseBytes=%d denseBytes=%d%n", shape, n, dtype,
        sparse.bytes(), sparse.denseBytes());
    sparse.close();
    y.close();
    x.close();
    w.close();
    tx.close();
    tw.close();
  }

  @Benchmark
  public void sparse() {
    Sparse24.matmulInto(x, sparse, null, Activation.NONE, y, nativeExec);
  }

  @Benchmark
  public void ownDense() {
    Sparse24.denseMatmulInto(x, w, null, Activation.NONE, y, nativeExec);
  }

  @Benchmark
  public long torchDense() {
    try (PointerScope scope = new PointerScope()) {
      return torch.linear(tx, tw, new TensorOptional()).numel();
    }
  }
}
