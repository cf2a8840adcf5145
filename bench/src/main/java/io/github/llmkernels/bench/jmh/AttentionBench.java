package io.github.llmkernels.bench.jmh;

import io.github.llmkernels.attention.AttentionOptions;
import io.github.llmkernels.attention.AttentionOutput;
import io.github.llmkernels.attention.BlockLayout;
import io.github.llmkernels.attention.MaskSpec;
import io.github.llmkernels.attention.SparseAttention;
import io.github.llmkernels.bench.AttentionWorkloads;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.torch.TorchTensors;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
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
 * Block-sparse attention forward (NATIVE CPU kernel) against libtorch CPU
 * {@code scaled_dot_product_attention}, on the same tensors (made by torch, wrapped zero-copy):
 * B 1, H 4 (MHA), d 128, F32, 128 x 128 blocks.
 *
 * <ul>
 *   <li>{@code sparse}: the library on the mask's layout. With {@code mask=causal} this is the
 *       "same kernel on a dense causal layout" baseline of the other masks.
 *   <li>{@code torchMasked}: libtorch SDPA with the mask expanded to a [S, S] boolean tensor (what
 *       a libtorch user has for an arbitrary mask; built once in setup, not timed).
 *   <li>{@code torchDense}: libtorch SDPA without a mask (full attention): the dense baseline.
 *   <li>{@code torchCausal}: libtorch SDPA with {@code is_causal=true}.
 * </ul>
 *
 * <p>Masks: {@code causal}; {@code window} = sliding window 1024 (causal) OR 64 sinks; {@code random90}
 * = random 10% of the 128 x 128 blocks (seeded) AND causal-free. The teardown prints
 * {@code ATTN_STATS ... tiles=... gflop=...}: computed tiles and 4 * 128 * 128 * d * tiles * H FLOPs
 * per call, from which BENCHMARKS.md derives GFLOP/s over computed tiles.
 *
 * <pre>
 *   java -jar bench/target/llm-kernels-bench.jar jmh AttentionBench -p seq=16384 -p mask=random90
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx6g"})
public class AttentionBench {
  static final int HEADS = 4;
  static final int DIM = 128;
  static final int BLOCK = 128;

  @Param({"4096", "8192", "16384"})
  public int seq;

  @Param({"causal", "window", "random90"})
  public String mask;

  private final Exec nativeExec = Exec.backend(Backend.NATIVE);
  private org.bytedeco.pytorch.Tensor tq;
  private org.bytedeco.pytorch.Tensor tk;
  private org.bytedeco.pytorch.Tensor tv;
  private org.bytedeco.pytorch.Tensor tmask;
  private Tensor q;
  private Tensor k;
  private Tensor v;
  private BlockLayout layout;
  private MaskSpec spec;

  @Setup(Level.Trial)
  public void setUp(BenchmarkParams params) {
    torch.manual_seed(1234);
    TensorOptions opts = new TensorOptions(ScalarType.Float);
    long[] shape = {1, HEADS, seq, DIM};
    tq = torch.empty(shape, opts, new MemoryFormatOptional());
    tk = torch.empty(shape, opts, new MemoryFormatOptional());
    tv = torch.empty(shape, opts, new MemoryFormatOptional());
    tq.normal_(0, 1, new GeneratorOptional());
    tk.normal_(0, 1, new GeneratorOptional());
    tv.normal_(0, 1, new GeneratorOptional());
    q = TorchTensors.wrap(tq);
    k = TorchTensors.wrap(tk);
    v = TorchTensors.wrap(tv);
    spec = AttentionWorkloads.benchMask(mask, seq, BLOCK);
    layout = BlockLayout.compile(spec, 1, HEADS, seq, seq, BLOCK, BLOCK);
    if (params.getBenchmark().endsWith("torchMasked")) {
      tmask = expandedMask(spec, seq);
    }
  }

  /** The mask as a [S, S] torch bool tensor (row q, column k), for torch's masked SDPA. */
  private static org.bytedeco.pytorch.Tensor expandedMask(MaskSpec spec, int seq) {
    byte[] bits = new byte[seq * seq];
    for (int i = 0; i < seq; i++) {
      for (int j = 0; j < seq; j++) {
        bits[i * seq + j] = (byte) (spec.visible(0, 0, i, j, seq, seq) ? 1 : 0);
      }
    }
    try (BytePointer p = new BytePointer(bits)) {
      return torch.from_blob(p, new long[] {seq, seq}, new TensorOptions(ScalarType.Bool)).clone();
    }
  }

  @TearDown(Level.Trial)
  public void tearDown(BenchmarkParams params) {
    String bench = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
    long tiles = (layout.partialBlockCount() + layout.fullBlockCount()) * (layout.layoutHeads() == 1 ? HEADS : 1);
    double gflop = 4.0 * BLOCK * BLOCK * DIM * tiles / 1e9;
    System.out.printf("ATTN_STATS bench=%s seq=%d mask=%s tiles=%d density=%.4f gflop=%.3f%n", bench, seq, mask, tiles,
        layout.density(), gflop);
    layout.close();
    q.close();
    k.close();
    v.close();
    tq.close();
    tk.close();
    tv.close();
    if (tmask != null) {
      tmask.close();
    }
  }

  @Benchmark
  public void sparse(Blackhole bh) {
    try (AttentionOutput o = SparseAttention.forward(q, k, v, layout, AttentionOptions.defaults(), nativeExec)) {
      bh.consume(o.lse().address());
    }
  }

  @Benchmark
  public void torchMasked(Blackhole bh) {
    sdpa(bh, new TensorOptional(tmask), false);
  }

  @Benchmark
  public void torchDense(Blackhole bh) {
    sdpa(bh, new TensorOptional(), false);
  }

  @Benchmark
  public void torchCausal(Blackhole bh) {
    sdpa(bh, new TensorOptional(), true);
  }

  private void sdpa(Blackhole bh, TensorOptional attnMask, boolean causal) {
    try (PointerScope scope = new PointerScope()) {
      org.bytedeco.pytorch.Tensor out =
          torch.scaled_dot_product_attention(tq, tk, tv, attnMask, 0.0, causal, new DoubleOptional(), false);
      bh.consume(out.numel());
    }
  }
}
