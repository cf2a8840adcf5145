package io.github.llmkernels.bench.jmh;

import io.github.llmkernels.loss.CceForward;
import io.github.llmkernels.loss.CceGradients;
import io.github.llmkernels.loss.CceOptions;
import io.github.llmkernels.loss.CutCrossEntropy;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.torch.TorchTensors;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.PointerScope;
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
 * Fused cut cross-entropy (NATIVE CPU kernel) against the materialising baseline in libtorch CPU:
 * {@code cross_entropy(linear(E, C).float(), targets, ignore_index=-100)} (the upcast is what
 * Hugging Face's causal-LM loss does), and autograd backward for {@code fwdbwd}. Both read the
 * same tensors: E and C are made by torch and wrapped zero-copy for the library.
 *
 * <p>Inputs shaped like a trained LM head's (see {@code Workloads.lmHead}): E ~ N(0, 1) and
 * C ~ N(0, 1/D) give logits with N(0, 1) noise, and the last hidden unit carries a unigram prior
 * (E[:, D-1] = 1, C[j, D-1] = -1.5 ln(j + 1): token frequencies follow a Zipf law, and so do a
 * trained model's logits); targets are drawn from the same law, 10% set to the ignore index;
 * MEAN reduction, no bias, default options (gradient filtering on). With i.i.d. Gaussian logits
 * (no prior) no tile is ever negligible and filtering skips nothing; a real LM is far from that.
 * {@code javaRef} (the Java reference, double accumulation) runs a small slice only: the first
 * {@value #REF_ROWS} rows of E against the first {@value #REF_VOCAB} rows of C, so compare it per
 * token, not per call.
 *
 * <p>Each benchmark runs in its own JVM fork; its {@code @TearDown} prints
 * {@code PEAK_MEM bench=... params=... MiB=...}: the peak resident set during the run minus the
 * resident set right after the inputs were made (the kernel's own memory: logits, workspace,
 * outputs, allocator caches), and for the native CCE a {@code CCE_STATS} line with its workspace
 * bytes and the share of logit tiles the backward pass skipped.
 *
 * <pre>
 *   java -jar bench/target/llm-kernels-bench.jar jmh CceBench -f 1 -wi 1 -i 1 \
 *       -p shape=4096x512x32000 -p dtype=F32 -p pass=fwd
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx6g"})
public class CceBench {
  static final int REF_ROWS = 16;
  static final int REF_VOCAB = 32000;
  static final long IGNORE = -100;

  /** N x D x V: tokens, hidden size, vocabulary (Llama-2-7B-like head; Gemma-2-2B head). */
  @Param({"4096x512x32000", "1024x2304x256000"})
  public String shape;

  @Param({"F32", "BF16"})
  public String dtype;

  /** fwd: the loss only; fwdbwd: the loss, then dE and dC. */
  @Param({"fwd", "fwdbwd"})
  public String pass;

  private int n;
  private int d;
  private int v;
  private DType libDtype;
  private boolean backward;
  private final CceOptions options = CceOptions.defaults();
  private final Exec nativeExec = Exec.backend(Backend.NATIVE);
  private final Exec javaExec = Exec.backend(Backend.JAVA);

  // torch views of the inputs (they own the memory) and the library wrappers of the same memory
  private org.bytedeco.pytorch.Tensor te;
  private org.bytedeco.pytorch.Tensor tc;
  private org.bytedeco.pytorch.Tensor tt;
  private Tensor e;
  private Tensor c;
  private Tensor targets;
  private long rssAfterInputsKb;
  private boolean peakReset;
  private double skippedShare = Double.NaN;

  @Setup(Level.Trial)
  public void setUp(BenchmarkParams params) {
    String[] parts = shape.split("x");
    n = Integer.parseInt(parts[0]);
    d = Integer.parseInt(parts[1]);
    v = Integer.parseInt(parts[2]);
    libDtype = DType.valueOf(dtype);
    backward = switch (pass) {
      case "fwd" -> false;
      case "fwdbwd" -> true;
      default -> throw new IllegalArgumentException("pass must be fwd or fwdbwd, got " + pass);
    };
    if (params.getBenchmark().endsWith("javaRef")) {
      n = REF_ROWS;
      v = Math.min(v, REF_VOCAB);
      System.out.println("REF_SIZE javaRef runs N x D x V = " + n + "x" + d + "x" + v);
    }
    torch.manual_seed(1234);
    ScalarType type = TorchTensors.scalarTypeOf(libDtype);
    // Filled in place: no temporaries that malloc would keep resident and the kernels then reuse
    // (which would hide their allocations from the peak-memory figure).
    TensorOptions opts = new TensorOptions(type);
    te = torch.empty(new long[] {n, d}, opts, new MemoryFormatOptional());
    tc = torch.empty(new long[] {v, d}, opts, new MemoryFormatOptional());
    te.normal_(0, 1, new GeneratorOptional()); // returns te itself: do not close the result
    tc.normal_(0, 1 / Math.sqrt(d), new GeneratorOptional());
    te.select(1, d - 1).fill_(new org.bytedeco.pytorch.Scalar(1.0));
    try (FloatPointer prior = new FloatPointer(io.github.llmkernels.bench.Workloads.zipfPrior(v))) {
      tc.select(1, d - 1).copy_(torch.from_blob(prior, new long[] {v}, new TensorOptions(ScalarType.Float)));
    }
    long[] t = io.github.llmkernels.bench.Workloads.zipfTargets(new SplittableRandom(42), n, v, 0.1, IGNORE);
    try (LongPointer p = new LongPointer(t)) {
      tt = torch.from_blob(p, new long[] {n}, new TensorOptions(ScalarType.Long)).clone();
    }
    e = TorchTensors.wrap(te);
    c = TorchTensors.wrap(tc);
    targets = TorchTensors.wrap(tt);
    System.gc();
    peakReset = resetPeak();
    // After a reset VmHWM is the resident set now; without one, VmRSS is the best baseline there is.
    rssAfterInputsKb = procStatusKb(peakReset ? "VmHWM" : "VmRSS");
  }

  @TearDown(Level.Trial)
  public void tearDown(BenchmarkParams params) {
    long peakKb = procStatusKb("VmHWM");
    String bench = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
    String p = "shape=" + shape + ",dtype=" + dtype + ",pass=" + pass;
    System.out.printf("PEAK_MEM bench=%s params=%s MiB=%.1f%s%n", bench, p, (peakKb - rssAfterInputsKb) / 1024.0,
        peakReset ? "" : " (VmHWM could not be reset: includes the process's peak before setup)");
    if (bench.equals("cceNative")) {
      System.out.printf("CCE_STATS bench=%s params=%s workspaceFwdBytes=%s workspaceBwdBytes=%s tilesSkippedShare=%s%n",
          bench, p, workspace(false), workspace(true), Double.isNaN(skippedShare) ? "n/a" : String.format("%.4f",
              skippedShare));
    }
    e.close();
    c.close();
    targets.close();
    te.close();
    tc.close();
    tt.close();
  }

  private String workspace(boolean bwd) {
    try {
      return Long.toString(CutCrossEntropy.workspaceBytes(n, d, v, libDtype, false, options, bwd, Backend.NATIVE));
    } catch (RuntimeException ex) {
      return "unavailable(" + ex.getMessage() + ")";
    }
  }

  /** The native CCE kernel: forward (with lse when the backward pass follows), then dE and dC. */
  @Benchmark
  public void cceNative(Blackhole bh) {
    runCce(nativeExec, bh);
  }

  /** The Java reference on the small slice (see the class comment). */
  @Benchmark
  public void javaRef(Blackhole bh) {
    runCce(javaExec, bh);
  }

  private void runCce(Exec exec, Blackhole bh) {
    try (CceForward f = CutCrossEntropy.forward(e, c, targets, null, options, backward, exec)) {
      bh.consume(f.loss().getDouble(0));
      if (backward) {
        try (CceGradients g = CutCrossEntropy.backward(e, c, targets, null, f.lse(), 1f, options, exec)) {
          skippedShare = g.skippedShare();
          bh.consume(g.gradE());
          bh.consume(g.gradC());
        }
      }
    }
  }

  /** libtorch CPU: logits = E C^T (N x V, materialised), upcast, cross_entropy; autograd backward. */
  @Benchmark
  public void torchBaseline(Blackhole bh) {
    try (PointerScope scope = new PointerScope()) {
      org.bytedeco.pytorch.Tensor x = te;
      org.bytedeco.pytorch.Tensor w = tc;
      if (backward) { // fresh leaves sharing the inputs' memory, so gradients never accumulate
        x = te.detach().requires_grad_(true);
        w = tc.detach().requires_grad_(true);
      }
      org.bytedeco.pytorch.Tensor logits = torch.linear(x, w).to(ScalarType.Float);
      org.bytedeco.pytorch.Tensor loss = torch.cross_entropy_loss(logits, tt, new TensorOptional(),
          torch.Reduction.Mean.value, IGNORE, 0.0);
      if (backward) {
        loss.backward();
        bh.consume(x.grad().numel());
        bh.consume(w.grad().numel());
      }
      bh.consume(loss.item_float());
    }
  }

  /** A "Name:   123 kB" field of /proc/self/status, in kB (-1 when unreadable). */
  static long procStatusKb(String field) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"), StandardCharsets.US_ASCII)) {
        if (line.startsWith(field + ":")) {
          return Long.parseLong(line.substring(field.length() + 1).replace("kB", "").trim());
        }
      }
    } catch (IOException | NumberFormatException ex) {
      return -1;
    }
    return -1;
  }

  /** Resets VmHWM to the current RSS (Linux >= 4.0: "5" into clear_refs); false if not allowed. */
  static boolean resetPeak() {
    try {
      Files.writeString(Path.of("/proc/self/clear_refs"), "5");
      return true;
    } catch (IOException | RuntimeException ex) {
      return false;
    }
  }
}
