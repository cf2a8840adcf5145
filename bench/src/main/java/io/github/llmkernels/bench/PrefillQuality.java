package io.github.llmkernels.bench;

import io.github.llmkernels.attention.AShapeOptions;
import io.github.llmkernels.attention.AttentionOptions;
import io.github.llmkernels.attention.AttentionOutput;
import io.github.llmkernels.attention.AttentionRecall;
import io.github.llmkernels.attention.BlockLayout;
import io.github.llmkernels.attention.BlockTopKOptions;
import io.github.llmkernels.attention.FlexPrefillOptions;
import io.github.llmkernels.attention.HeadInfo;
import io.github.llmkernels.attention.MaskSpec;
import io.github.llmkernels.attention.PrefillEstimate;
import io.github.llmkernels.attention.PrefillOptions;
import io.github.llmkernels.attention.SparseAttention;
import io.github.llmkernels.attention.SparsePrefill;
import io.github.llmkernels.attention.VerticalSlashOptions;
import io.github.llmkernels.attention.XAttentionOptions;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.CudaStream;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Npy;
import io.github.llmkernels.tensor.Tensor;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The {@code prefillquality} command and its metrics: what each dynamic sparse prefill estimator
 * keeps and loses, per method and head, against dense causal attention computed by the library's
 * own kernel.
 *
 * <pre>
 *   java -jar bench/target/llm-kernels-bench.jar prefillquality [--seq 4096,8192,16384,32768]
 *       [--methods vs,vsBlocks,vsScaled,ashape,topk,flex,xattn8,xattn16] [--dtype bf16|f32|f16] [--heads 8/2]
 *       [--dim 128] [--seed 42] [--profiles 0,1,..,7] [--npy DIR [--truncate 4096,8192]]
 *       [--per-head] [--svg prefill.svg] [--backend native|cuda|java] [--reps 3]
 * </pre>
 *
 * <p>Inputs: {@link SyntheticAttention} (default), or a dump from a real model: {@code --npy DIR}
 * reads {@code DIR/q.npy} [B, Hq, S, d] or [Hq, S, d] and {@code k.npy}, {@code v.npy}
 * [.., Hkv, S, d] (after RoPE; see {@link Npy}); {@code --truncate} evaluates prefixes (a prefix
 * of a causal prompt is itself a valid prefill).
 *
 * <p>Metrics per method and (batch, query head):
 * <ul>
 *   <li>density: {@link PrefillEstimate#density()} (computed pairs over Sq x Sk), and relative to
 *       the causal density;
 *   <li>recall, without materialising Sq x Sk ({@link AttentionRecall}): the estimated layout is
 *       a subset of the causal set and both passes use the same scores, so the share of query i's
 *       dense softmax mass inside the layout is exactly {@code exp(lse_sparse_i - lse_dense_i)}
 *       (clamped to 1; 0 when the query sees nothing). Head recall = mean over queries; also the
 *       lowest head and the lowest query block (mean over its queries);
 *   <li>output relative error {@code ||O_sparse - O_dense||_F / ||O_dense||_F} per head (F32
 *       outputs);
 *   <li>times: estimate (median of --reps), sparse attention and dense attention (median of
 *       --reps, 1 by default beyond 16K); speedup = dense / (estimate + sparse); est% = estimate /
 *       sparse.
 * </ul>
 * <p>Timings are wall-clock medians on whatever else the machine runs: on a shared CPU set
 * {@code OMP_WAIT_POLICY=PASSIVE}, or OpenMP threads spinning against other processes inflate
 * native estimation times several-fold (measured: A-shape layout 15 ms instead of 0.1 ms at 2K
 * under load 4 on 2 cores).
 *
 * <p>Methods: {@code vs} MInference vertical-slash defaults (tuned for 128K+; columns as a token
 * list), {@code vsBlocks} the same with each column inflated to its 64-key block (any vs method +
 * {@code Blocks}, e.g. {@code vsScaledBlocks}, inflates its columns), {@code vsScaled} the same
 * with budgets times S/131072 (the reference's minference_ratio), {@code vsFewSlashes} 1000 columns
 * with the 100 forced diagonals only (not in the default list),
 * {@code ashape} (sinks 128, local 3968, clamped to S), {@code topk} block top-k 100,
 * {@code flex} FlexPrefill (gamma 0.9, tau 0.1), {@code xattn8} / {@code xattn16} XAttention
 * stride 8 / 16 (threshold 0.9).
 */
public final class PrefillQuality {
  static final String DEFAULT_METHODS = "vs,vsBlocks,vsScaled,ashape,topk,flex,xattn8,xattn16";
  private static final int DENSE_BLOCK = 128;

  private PrefillQuality() {}

  /** The options of a method name at sequence length seq. */
  public static PrefillOptions options(String method, int seq) {
    if (method.startsWith("vs") && method.endsWith("Blocks") && !method.equals("vsBlocks")) {
      // vsScaledBlocks: a vertical-slash method with its columns inflated to key blocks
      PrefillOptions base = options(method.substring(0, method.length() - "Blocks".length()), seq);
      return ((VerticalSlashOptions) base).withColumnMode(VerticalSlashOptions.ColumnMode.BLOCKS);
    }
    return switch (method) {
      case "vs" -> VerticalSlashOptions.defaults();
      case "vsScaled" -> VerticalSlashOptions.defaults().scaled(seq / 131072.0);
      case "vsBlocks" -> VerticalSlashOptions.defaults().withColumnMode(VerticalSlashOptions.ColumnMode.BLOCKS);
      // 1000 columns but only the 100 forced diagonals: where the column list decides the density
      case "vsFewSlashes" -> VerticalSlashOptions.defaults().withBudgets(1000, 100);
      case "ashape" -> {
        AShapeOptions d = AShapeOptions.defaults();
        yield new AShapeOptions(Math.min(d.sinks(), seq), Math.min(d.local(), seq), d.block());
      }
      case "topk" -> BlockTopKOptions.defaults();
      case "flex" -> FlexPrefillOptions.defaults();
      case "xattn8" -> XAttentionOptions.defaults().withStride(8);
      case "xattn16" -> XAttentionOptions.defaults().withStride(16);
      default -> throw new IllegalArgumentException("method must be one of " + DEFAULT_METHODS + "; got " + method);
    };
  }

  /** Dense causal attention of one input set: lse and out (F32, host copies) and its time. */
  public record Dense(int batch, int heads, int seqQ, int dim, float[] lse, float[] out, double ms) {}

  /** One method on one input set; per-head arrays are batch-major (b * Hq + h). */
  public record Result(String method, int seq, double density, double causalDensity, double[] recall,
      double[] recallMinBlock, double[] relErr, double estMs, double sparseMs, double denseMs, List<HeadInfo> heads) {
    public double recallMean() {
      return Arrays.stream(recall).average().orElse(Double.NaN);
    }

    public double recallMinHead() {
      return Arrays.stream(recall).min().orElse(Double.NaN);
    }

    public double recallMinBlockAll() {
      return Arrays.stream(recallMinBlock).min().orElse(Double.NaN);
    }

    public double relErrMean() {
      return Arrays.stream(relErr).average().orElse(Double.NaN);
    }

    public double relErrMax() {
      return Arrays.stream(relErr).max().orElse(Double.NaN);
    }

    public double speedup() {
      return denseMs / (estMs + sparseMs);
    }
  }

  /** Causal (bottom-right aligned) pairs over Sq x Sk. */
  public static double causalDensity(long seqQ, long seqK) {
    double off = seqK - seqQ;
    double pairs = seqQ * (off + 1) + seqQ * (seqQ - 1) / 2.0;
    return pairs / ((double) seqQ * seqK);
  }

  /** Dense causal attention with the library's kernel (F32 output), timed (median of reps). */
  public static Dense dense(Tensor q, Tensor k, Tensor v, Exec exec, CudaStream stream, int reps) {
    int b = (int) q.shape(0);
    int hq = (int) q.shape(1);
    int sq = (int) q.shape(2);
    int sk = (int) k.shape(2);
    AttentionOptions f32 = AttentionOptions.builder().outputDType(DType.F32).build();
    double[] ms = new double[reps];
    float[] lse = null;
    float[] out = null;
    for (int r = 0; r < reps; r++) {
      long t0 = System.nanoTime();
      try (BlockLayout layout = BlockLayout.compile(MaskSpec.causal(), b, hq, sq, sk, DENSE_BLOCK, DENSE_BLOCK,
          q.device(), exec);
          AttentionOutput o = SparseAttention.forward(q, k, v, layout, f32, exec)) {
        sync(stream);
        ms[r] = (System.nanoTime() - t0) / 1e6;
        if (r == reps - 1) {
          lse = o.lse().toFloatArray();
          out = o.out().toFloatArray();
        }
      }
    }
    return new Dense(b, hq, sq, (int) q.shape(3), lse, out, median(ms));
  }

  /** Estimates (median time of reps), attends over the last estimate and compares with dense. */
  public static Result evaluate(String method, PrefillOptions options, Tensor q, Tensor k, Tensor v, Dense dense,
      Exec exec, CudaStream stream, int estReps, int attnReps) {
    double[] est = new double[estReps];
    for (int r = 0; r < estReps - 1; r++) {
      long t0 = System.nanoTime();
      PrefillEstimate e = SparsePrefill.estimate(q, k, options, exec);
      try {
        sync(stream);
        est[r] = (System.nanoTime() - t0) / 1e6;
      } finally {
        e.close();
      }
    }
    long t0 = System.nanoTime();
    try (PrefillEstimate e = SparsePrefill.estimate(q, k, options, exec)) {
      sync(stream);
      est[estReps - 1] = (System.nanoTime() - t0) / 1e6;
      AttentionOptions f32 = AttentionOptions.builder().outputDType(DType.F32).build();
      double[] attn = new double[attnReps];
      float[] lse = null;
      float[] out = null;
      for (int r = 0; r < attnReps; r++) {
        long t1 = System.nanoTime();
        try (AttentionOutput o = SparseAttention.forward(q, k, v, e.layout(), f32, exec)) {
          sync(stream);
          attn[r] = (System.nanoTime() - t1) / 1e6;
          if (r == attnReps - 1) {
            lse = o.lse().toFloatArray();
            out = o.out().toFloatArray();
          }
        }
      }
      int heads = dense.batch() * dense.heads();
      double[] recall = AttentionRecall.headMeanRecall(lse, dense.lse(), heads, dense.seqQ());
      double[] minBlock = AttentionRecall.headMinBlockRecall(lse, dense.lse(), heads, dense.seqQ(),
          e.layout().blockQ());
      double[] err = AttentionRecall.headRelativeError(out, dense.out(), heads, dense.seqQ(), dense.dim());
      return new Result(method, dense.seqQ(), e.density(), causalDensity(dense.seqQ(), k.shape(2)), recall, minBlock,
          err, median(est), median(attn), dense.ms(), e.heads());
    }
  }

  static double median(double[] x) {
    double[] s = x.clone();
    Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }

  private static void sync(CudaStream stream) {
    if (stream != null) {
      stream.synchronize();
    }
  }

  // ---- command -------------------------------------------------------------------------------

  /** Parsed command line. */
  record Args(int[] seqs, List<String> methods, DType dtype, int headsQ, int headsKv, int dim, long seed,
      List<SyntheticAttention.Profile> profiles, Path npy, int[] truncate, boolean perHead, Path svg, String backend,
      int reps) {}

  static Args parse(String[] argv) {
    Map<String, String> m = new LinkedHashMap<>();
    boolean perHead = false;
    for (int i = 0; i < argv.length; i++) {
      String a = argv[i];
      if (a.equals("--per-head")) {
        perHead = true;
      } else if (a.startsWith("--") && i + 1 < argv.length) {
        m.put(a.substring(2), argv[++i]);
      } else {
        throw new IllegalArgumentException("unexpected argument '" + a + "'; see the usage in PrefillQuality");
      }
    }
    for (String key : m.keySet()) {
      if (!List.of("seq", "methods", "dtype", "heads", "dim", "seed", "profiles", "npy", "truncate", "svg", "backend",
          "reps").contains(key)) {
        throw new IllegalArgumentException("unknown option --" + key);
      }
    }
    String[] heads = m.getOrDefault("heads", "8/2").split("/");
    List<SyntheticAttention.Profile> profiles = new ArrayList<>();
    for (String p : m.getOrDefault("profiles", "0,1,2,3,4,5,6,7").split(",")) {
      profiles.add(p.strip().matches("\\d+") ? SyntheticAttention.PROFILES.get(Integer.parseInt(p.strip()))
          : SyntheticAttention.Profile.parse(p));
    }
    return new Args(ints(m.getOrDefault("seq", "4096,8192,16384,32768")),
        List.of(m.getOrDefault("methods", DEFAULT_METHODS).split(",")),
        DType.valueOf(m.getOrDefault("dtype", "bf16").toUpperCase(Locale.ROOT)), Integer.parseInt(heads[0]),
        Integer.parseInt(heads.length > 1 ? heads[1] : heads[0]), Integer.parseInt(m.getOrDefault("dim", "128")),
        Long.parseLong(m.getOrDefault("seed", "42")), profiles, m.containsKey("npy") ? Path.of(m.get("npy")) : null,
        m.containsKey("truncate") ? ints(m.get("truncate")) : null, perHead,
        m.containsKey("svg") ? Path.of(m.get("svg")) : null, m.getOrDefault("backend", "native"),
        Integer.parseInt(m.getOrDefault("reps", "0")));
  }

  private static int[] ints(String csv) {
    return Arrays.stream(csv.split(",")).map(String::strip).mapToInt(s -> {
      String t = s.toUpperCase(Locale.ROOT);
      return t.endsWith("K") ? Integer.parseInt(t.substring(0, t.length() - 1)) * 1024 : Integer.parseInt(t);
    }).toArray();
  }

  public static void run(PrintStream out, String[] argv) throws IOException {
    Args a = parse(argv);
    Device device = a.backend().equals("cuda") ? Device.cuda(0) : Device.CPU;
    Backend backend = switch (a.backend()) {
      case "native" -> Backend.NATIVE;
      case "java" -> Backend.JAVA;
      case "cuda" -> Backend.CUDA;
      default -> throw new IllegalArgumentException("--backend must be native, cuda or java; got " + a.backend());
    };
    List<Result> results = new ArrayList<>();
    String shape;
    try (CudaStream stream = device.isCuda() ? CudaStream.create(0) : null) {
      Exec exec = stream == null ? Exec.backend(backend) : new Exec(backend, stream);
      if (a.npy() != null) {
        try (Tensor q = load(a.npy().resolve("q.npy"), a.dtype()); Tensor k = load(a.npy().resolve("k.npy"), a.dtype());
            Tensor v = load(a.npy().resolve("v.npy"), a.dtype())) {
          shape = String.format(Locale.ROOT, "npy %s: B %d, Hq %d / Hkv %d, d %d", a.npy().getFileName(), q.shape(0),
              q.shape(1), k.shape(1), q.shape(3));
          int full = (int) q.shape(2);
          int[] lengths = a.truncate() != null ? a.truncate() : new int[] {full};
          header(out, shape, a, device);
          for (int s : lengths) {
            if (s < 1 || s > full || k.shape(2) != full) {
              throw new IllegalArgumentException("--truncate lengths must lie in [1, " + full
                  + "] and q, k must have the same length; got " + s + " (k has " + k.shape(2) + ")");
            }
            try (Tensor qs = prefix(q, s, device); Tensor ks = prefix(k, s, device); Tensor vs = prefix(v, s, device)) {
              results.addAll(measure(out, a, qs, ks, vs, exec, stream));
            }
          }
        }
      } else {
        shape = String.format(Locale.ROOT, "synthetic seed %d: B 1, Hq %d / Hkv %d, d %d", a.seed(), a.headsQ(),
            a.headsKv(), a.dim());
        header(out, shape, a, device);
        for (int s : a.seqs()) {
          long t0 = System.nanoTime();
          SyntheticAttention.Config c = new SyntheticAttention.Config(s, a.headsQ(), a.headsKv(), a.dim(), a.dtype(),
              a.seed(), a.profiles());
          try (SyntheticAttention.Inputs in = SyntheticAttention.generate(c);
              Tensor q = onDevice(in.q(), device); Tensor k = onDevice(in.k(), device);
              Tensor v = onDevice(in.v(), device)) {
            out.printf(Locale.ROOT, "# S %d: inputs generated in %.1f s%n", s, (System.nanoTime() - t0) / 1e9);
            results.addAll(measure(out, a, q, k, v, exec, stream));
          }
        }
      }
    }
    if (a.svg() != null) {
      String title = "Dynamic sparse prefill: " + shape + ", " + a.dtype() + ", " + a.backend() + ", commit "
          + commit();
      Files.writeString(a.svg(), SvgPlot.render(title, series(results, a.methods())), StandardCharsets.UTF_8);
      out.println("# wrote " + a.svg());
    }
  }

  private static void header(PrintStream out, String shape, Args a, Device device) {
    out.printf(Locale.ROOT, "== Dynamic sparse prefill quality: %s, %s, backend %s (%s); dense = own causal kernel, "
        + "block %d, F32 output%n", shape, a.dtype(), a.backend(), device, DENSE_BLOCK);
    out.printf(Locale.ROOT, "%6s %-9s %8s %7s %8s %8s %8s %9s %9s %9s %9s %9s %8s %6s%n", "S", "method", "density",
        "vs-caus", "recall", "minHead", "minBlk", "errMean", "errMax", "est_ms", "sparse_ms", "dense_ms", "speedup",
        "est%");
    if (!a.backend().equals("cuda") && System.getenv("OMP_WAIT_POLICY") == null) {
      out.println("# note: OMP_WAIT_POLICY is unset; on a shared or loaded machine spinning OpenMP threads inflate "
          + "every native time (run with OMP_WAIT_POLICY=PASSIVE)");
    }
  }

  private static List<Result> measure(PrintStream out, Args a, Tensor q, Tensor k, Tensor v, Exec exec,
      CudaStream stream) {
    int s = (int) q.shape(2);
    int attnReps = a.reps() > 0 ? a.reps() : (s > 16384 ? 1 : 3);
    int estReps = a.reps() > 0 ? a.reps() : 3;
    warmUp(q, k, v, exec, stream);
    Dense dense = dense(q, k, v, exec, stream, attnReps);
    List<Result> rows = new ArrayList<>();
    for (String method : a.methods()) {
      Result r = evaluate(method, options(method, s), q, k, v, dense, exec, stream, estReps, attnReps);
      rows.add(r);
      out.printf(Locale.ROOT, "%6s %-9s %8.4f %7.3f %8.4f %8.4f %8.4f %9.2e %9.2e %9.2f %9.2f %9.2f %8.2f %6.1f%n",
          SvgPlot.lengthLabel(s), method, r.density(), r.density() / r.causalDensity(), r.recallMean(),
          r.recallMinHead(), r.recallMinBlockAll(), r.relErrMean(), r.relErrMax(), r.estMs(), r.sparseMs(),
          r.denseMs(), r.speedup(), 100 * r.estMs() / r.sparseMs());
      if (a.perHead()) {
        for (int i = 0; i < r.heads().size(); i++) {
          HeadInfo h = r.heads().get(i);
          out.printf(Locale.ROOT, "         b%d h%-2d %-15s verticals %6d slashes %6d blocks %7d columns %6d "
              + "div %6.3f recall %.4f minBlk %.4f err %.2e%n", h.batch(), h.head(), h.pattern(), h.verticals(),
              h.slashes(), h.blocks(), h.columns(), h.divergence(), r.recall()[i], r.recallMinBlock()[i],
              r.relErr()[i]);
        }
      }
      out.flush();
    }
    return rows;
  }

  /**
   * Dense attention over the first 512 positions, untimed: the first native call starts the
   * OpenMP pool and the first CUDA call loads modules, which must not land in a timed pass.
   */
  private static void warmUp(Tensor q, Tensor k, Tensor v, Exec exec, CudaStream stream) {
    int n = (int) Math.min(512, q.shape(2));
    if (q.device().isCuda() || k.shape(2) != q.shape(2)) {
      n = (int) q.shape(2); // slicing device tensors would need a device gather; warm up on the whole input
    }
    try (Tensor qs = prefix(q, n, q.device()); Tensor ks = prefix(k, n, k.device()); Tensor vs = prefix(v, n, v.device())) {
      dense(qs, ks, vs, exec, stream, 1);
    }
  }

  /** One plot series per method, in command-line order. */
  static List<SvgPlot.Series> series(List<Result> results, List<String> methods) {
    List<SvgPlot.Series> out = new ArrayList<>();
    for (String m : methods) {
      List<Result> rs = results.stream().filter(r -> r.method().equals(m)).toList();
      out.add(new SvgPlot.Series(m, rs.stream().mapToLong(Result::seq).toArray(),
          rs.stream().mapToDouble(Result::recallMean).toArray(), rs.stream().mapToDouble(Result::speedup).toArray()));
    }
    return out;
  }

  private static Tensor load(Path p, DType dtype) {
    Tensor t = Npy.read(p, dtype);
    if (t.rank() == 3) {
      try (t) {
        Tensor four = Tensor.allocate(dtype, Device.CPU, 1, t.shape(0), t.shape(1), t.shape(2));
        try {
          four.copyElements(t, 0, 0, t.numel());
          return four;
        } catch (RuntimeException e) {
          four.close();
          throw e;
        }
      }
    }
    if (t.rank() != 4) {
      t.close();
      throw new IllegalArgumentException(p + " must have shape [B, H, S, d] or [H, S, d]; got rank " + t.rank());
    }
    return t;
  }

  /** The first s positions of [B, H, S, d] as a contiguous tensor on device. */
  private static Tensor prefix(Tensor t, int s, Device device) {
    try (Tensor view = t.slice(2, 0, s)) {
      return view.to(device);
    }
  }

  private static Tensor onDevice(Tensor t, Device device) {
    return device.isCuda() ? t.to(device) : t.slice(0, 0, t.shape(0)); // a non-owning view of a host tensor
  }

  private static String commit() {
    try {
      Process p = new ProcessBuilder("git", "rev-parse", "--short", "HEAD").redirectErrorStream(true).start();
      String s = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      return p.waitFor() == 0 && s.matches("[0-9a-f]+") ? s : "unknown";
    } catch (IOException | InterruptedException e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      return "unknown";
    }
  }
}
