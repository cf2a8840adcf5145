package io.github.llmkernels.attention;

import io.github.llmkernels.internal.AttnArgs;
import io.github.llmkernels.internal.Check;
import io.github.llmkernels.internal.Dispatch;
import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.internal.Operand;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Shapes;
import io.github.llmkernels.tensor.Tensor;
import java.util.Arrays;

/**
 * Block-sparse attention forward (prefill) over a {@link BlockLayout}, with GQA/MQA, varlen and
 * softcap, plus merging of partial attention states by their log-sum-exp.
 *
 * <pre>{@code
 * try (BlockLayout layout = BlockLayout.compile(MaskSpec.causal().and(MaskSpec.slidingWindow(1024)),
 *          1, 32, 4096, 4096, 128, 128);
 *      AttentionOutput o = SparseAttention.forward(q, k, v, layout, AttentionOptions.defaults())) {
 *   // o.out() [1, 32, 4096, 128], o.lse() [1, 32, 4096] F32
 * }
 * }</pre>
 *
 * <p>Inputs: q [B, Hq, Sq, d], k and v [B, Hkv, Sk, d], contiguous, one dtype among F32, F16 and
 * BF16, on the layout's device; Hkv must divide Hq (query head h uses key/value head
 * {@code h / (Hq / Hkv)}). The layout must have been compiled for B, Sq and Sk, with layout heads
 * 1 or Hq. Outputs: out [B, Hq, Sq, d] in the options' output dtype (input dtype or F32), lse
 * [B, Hq, Sq] F32 (natural log; -inf and out 0 for a query that sees no key, including queries
 * beyond their batch's length). Only the layout's tiles are computed: FULL tiles without the
 * mask, PARTIAL tiles with the element predicate; plus the layout's token columns
 * ({@link BlockLayout#columns}) outside the listed tiles, with the predicate.
 *
 * <p>Backends: JAVA ({@link SparseAttentionRef}, double), NATIVE (C++ CPU kernel), CUDA.
 * Bad arguments throw {@link IllegalArgumentException} naming the argument and the rule before
 * anything runs; a closed tensor or layout throws {@link IllegalStateException}.
 */
public final class SparseAttention {
  private static final String FORWARD = "SparseAttention.forward";
  private static final String MERGE = "SparseAttention.mergeStates";

  private SparseAttention() {}

  /** Forward with default execution (backend from the tensors' device). */
  public static AttentionOutput forward(Tensor q, Tensor k, Tensor v, BlockLayout layout, AttentionOptions options) {
    return forward(q, k, v, layout, options, Exec.DEFAULT);
  }

  /** Forward into new out and lse tensors on q's device. */
  public static AttentionOutput forward(Tensor q, Tensor k, Tensor v, BlockLayout layout, AttentionOptions options,
      Exec exec) {
    checkInputs(q, k, v, layout, options, exec);
    Device device = q.device();
    Tensor out = Tensor.allocate(options.resolvedOutputDType(q.dtype()), device, q.shape());
    Tensor lse = null;
    try {
      lse = Tensor.allocate(DType.F32, device, q.shape(0), q.shape(1), q.shape(2));
      forwardInto(q, k, v, layout, options, out, lse, exec);
      return new AttentionOutput(out, lse);
    } catch (RuntimeException e) {
      out.close();
      if (lse != null) {
        lse.close();
      }
      throw e;
    }
  }

  /** Forward into caller-provided out [B, Hq, Sq, d] and lse [B, Hq, Sq] F32. */
  public static void forwardInto(Tensor q, Tensor k, Tensor v, BlockLayout layout, AttentionOptions options,
      Tensor out, Tensor lse, Exec exec) {
    checkInputs(q, k, v, layout, options, exec);
    if (out == null || lse == null) {
      throw new IllegalArgumentException(FORWARD + ": " + (out == null ? "out" : "lse") + " must not be null");
    }
    Operand[] operands = {Operand.of("q", q), Operand.of("k", k), Operand.of("v", v), Operand.of("out", out),
        Operand.of("lse", lse)};
    Backend backend = Dispatch.select(FORWARD, exec, operands);
    for (Operand o : operands) {
      o.tensor().requireContiguous(o.name());
    }
    if (!layout.device().equals(q.device())) {
      throw new IllegalArgumentException(FORWARD + ": layout is on " + layout.device() + " but q is on " + q.device()
          + "; compile the layout for the tensors' device");
    }
    long b = q.shape(0);
    long hq = q.shape(1);
    long sq = q.shape(2);
    long d = q.shape(3);
    DType outType = options.resolvedOutputDType(q.dtype());
    Check.dtype("out", out, outType);
    Check.rank("out", out, 4, "(B, Hq, Sq, d)");
    Check.dim("out", out, 0, b, "B (from q)");
    Check.dim("out", out, 1, hq, "Hq (from q)");
    Check.dim("out", out, 2, sq, "Sq (from q)");
    Check.dim("out", out, 3, d, "d (from q)");
    Check.dtype("lse", lse, DType.F32);
    Check.rank("lse", lse, 3, "(B, Hq, Sq)");
    Check.dim("lse", lse, 0, b, "B (from q)");
    Check.dim("lse", lse, 1, hq, "Hq (from q)");
    Check.dim("lse", lse, 2, sq, "Sq (from q)");
    for (Operand o : new Operand[] {operands[3], operands[4]}) {
      for (Operand in : new Operand[] {operands[0], operands[1], operands[2]}) {
        Check.noOverlap(o.name(), o.tensor(), in.name(), in.tensor());
      }
    }
    Check.noOverlap("out", out, "lse", lse);
    double scale = options.resolvedScale(d);
    try {
      if (backend == Backend.JAVA) {
        SparseAttentionRef.Result r = SparseAttentionRef.blockSparse(SparseAttentionRef.Problem.of(q, k, v), layout,
            scale, options.softcap());
        write(out, r.out());
        write(lse, r.lse());
      } else {
        if (layout.encoded() == null) {
          throw new IllegalArgumentException(FORWARD + ": layout was compiled by the JAVA backend without the native "
              + "library; compile it again to use backend " + backend);
        }
        NativeApi.attentionForward(args(q, k, v, out, lse, layout, options, scale, backend, exec),
            backend == Backend.CUDA);
      }
    } finally {
      Dispatch.keepAlive(operands);
      java.lang.ref.Reference.reachabilityFence(layout);
    }
  }

  private static AttnArgs args(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, BlockLayout layout,
      AttentionOptions options, double scale, Backend backend, Exec exec) {
    EncodedMask mask = layout.encoded();
    AttnArgs a = new AttnArgs()
        .set(AttnArgs.BATCH, q.shape(0)).set(AttnArgs.HEADS_Q, q.shape(1)).set(AttnArgs.HEADS_KV, k.shape(1))
        .set(AttnArgs.SEQ_Q, q.shape(2)).set(AttnArgs.SEQ_K, k.shape(2)).set(AttnArgs.HEAD_DIM, q.shape(3))
        .set(AttnArgs.DTYPE, q.dtype().code()).set(AttnArgs.OUT_DTYPE, out.dtype().code())
        .setDouble(AttnArgs.SCALE, scale).setDouble(AttnArgs.SOFTCAP, options.softcap())
        .set(AttnArgs.Q, q.address()).set(AttnArgs.K, k.address()).set(AttnArgs.V, v.address())
        .set(AttnArgs.OUT, out.address()).set(AttnArgs.LSE, lse.address())
        .set(AttnArgs.LAYOUT_BATCH, layout.layoutBatch()).set(AttnArgs.LAYOUT_HEADS, layout.layoutHeads())
        .set(AttnArgs.BLOCK_Q, layout.blockQ()).set(AttnArgs.BLOCK_K, layout.blockK())
        .set(AttnArgs.NODES, mask.nodesAddress()).set(AttnArgs.NODE_COUNT, mask.nodeCount())
        .set(AttnArgs.Q_LENS, layout.qLensTensor() == null ? 0 : layout.qLensTensor().address())
        .set(AttnArgs.K_LENS, layout.kLensTensor() == null ? 0 : layout.kLensTensor().address())
        .set(AttnArgs.PARTIAL_PTR, layout.partialPtr().address())
        .set(AttnArgs.PARTIAL_IDX, layout.partialIdx().address())
        .set(AttnArgs.FULL_PTR, layout.fullPtr().address()).set(AttnArgs.FULL_IDX, layout.fullIdx().address())
        .set(AttnArgs.COL_CAP, layout.columnsTensor() == null ? 0 : layout.columnCapacity())
        .set(AttnArgs.COLUMNS, layout.columnsTensor() == null ? 0 : layout.columnsTensor().address());
    if (backend == Backend.CUDA) {
      a.set(AttnArgs.DEVICE, q.device().index());
      a.set(AttnArgs.STREAM, exec.stream() == null ? 0 : exec.stream().handle());
    }
    return a;
  }

  private static void checkInputs(Tensor q, Tensor k, Tensor v, BlockLayout layout, AttentionOptions options,
      Exec exec) {
    if (q == null || k == null || v == null) {
      throw new IllegalArgumentException(FORWARD + ": " + (q == null ? "q" : k == null ? "k" : "v")
          + " must not be null");
    }
    if (layout == null || options == null || exec == null) {
      throw new IllegalArgumentException(FORWARD + ": " + (layout == null ? "layout" : options == null ? "options"
          : "exec") + " must not be null");
    }
    q.requireOpen("q");
    k.requireOpen("k");
    v.requireOpen("v");
    layout.requireOpen();
    Check.rank("q", q, 4, "(B, Hq, Sq, d)");
    Check.rank("k", k, 4, "(B, Hkv, Sk, d)");
    Check.rank("v", v, 4, "(B, Hkv, Sk, d)");
    Check.dtype("q", q, DType.F32, DType.F16, DType.BF16);
    Check.sameDType("k", k, "q", q);
    Check.sameDType("v", v, "q", q);
    long b = q.shape(0);
    long hq = q.shape(1);
    long d = q.shape(3);
    if (b < 1 || hq < 1 || d < 1) {
      throw new IllegalArgumentException(FORWARD + ": q must have B, Hq and d >= 1; got shape " + Shapes.format(q.shape()));
    }
    Check.dim("k", k, 0, b, "B (from q)");
    Check.dim("k", k, 3, d, "d (from q)");
    if (!Arrays.equals(k.shape(), v.shape())) {
      throw new IllegalArgumentException(FORWARD + ": v must have the shape of k " + Shapes.format(k.shape())
          + ", got " + Shapes.format(v.shape()));
    }
    long hkv = k.shape(1);
    if (hkv < 1 || hq % hkv != 0) {
      throw new IllegalArgumentException(FORWARD + ": heads in key/value (Hkv = " + hkv
          + ") must divide heads in query (Hq = " + hq + ")");
    }
    DType outType = options.resolvedOutputDType(q.dtype());
    if (outType != q.dtype() && outType != DType.F32) {
      throw new IllegalArgumentException(FORWARD + ": options.outputDType must be the input dtype (" + q.dtype()
          + ") or F32; got " + outType);
    }
    if (b != layout.batch()) {
      throw new IllegalArgumentException(FORWARD + ": q has B = " + b + " but the layout was compiled for batch "
          + layout.batch());
    }
    if (layout.layoutHeads() != 1 && layout.layoutHeads() != hq) {
      throw new IllegalArgumentException(FORWARD + ": the layout has " + layout.layoutHeads()
          + " heads; it must have 1 or Hq = " + hq + " (from q)");
    }
    if (q.shape(2) != layout.seqQ()) {
      throw new IllegalArgumentException(FORWARD + ": q has Sq = " + q.shape(2)
          + " but the layout was compiled for seqQ = " + layout.seqQ());
    }
    if (k.shape(2) != layout.seqK()) {
      throw new IllegalArgumentException(FORWARD + ": k has Sk = " + k.shape(2)
          + " but the layout was compiled for seqK = " + layout.seqK());
    }
  }

  // ---- merging states ----------------------------------------------------------------------

  /** Merges two attention states over disjoint key sets into new tensors (default execution). */
  public static AttentionOutput mergeStates(Tensor outA, Tensor lseA, Tensor outB, Tensor lseB) {
    return mergeStates(outA, lseA, outB, lseB, Exec.DEFAULT);
  }

  /**
   * The state over the union of two disjoint key sets: {@code lse = log(exp lseA + exp lseB)},
   * {@code out = outA exp(lseA - lse) + outB exp(lseB - lse)}; both -inf gives out 0, lse -inf.
   *
   * @param outA [..., d] F32/F16/BF16 (e.g. [B, Hq, Sq, d])
   * @param lseA [...] F32 (out's shape without d)
   * @param outB like outA
   * @param lseB like lseA
   */
  public static AttentionOutput mergeStates(Tensor outA, Tensor lseA, Tensor outB, Tensor lseB, Exec exec) {
    checkMerge(outA, lseA, outB, lseB);
    Tensor out = Tensor.allocate(outA.dtype(), outA.device(), outA.shape());
    Tensor lse = null;
    try {
      lse = Tensor.allocate(DType.F32, outA.device(), lseA.shape());
      mergeStatesInto(outA, lseA, outB, lseB, out, lse, exec);
      return new AttentionOutput(out, lse);
    } catch (RuntimeException e) {
      out.close();
      if (lse != null) {
        lse.close();
      }
      throw e;
    }
  }

  /**
   * Merge into out / lse, which may be exactly outA / lseA or outB / lseB (in place); no other
   * overlap is allowed.
   */
  public static void mergeStatesInto(Tensor outA, Tensor lseA, Tensor outB, Tensor lseB, Tensor out, Tensor lse,
      Exec exec) {
    checkMerge(outA, lseA, outB, lseB);
    if (out == null || lse == null || exec == null) {
      throw new IllegalArgumentException(MERGE + ": " + (out == null ? "out" : lse == null ? "lse" : "exec")
          + " must not be null");
    }
    Operand[] operands = {Operand.of("outA", outA), Operand.of("lseA", lseA), Operand.of("outB", outB),
        Operand.of("lseB", lseB), Operand.of("out", out), Operand.of("lse", lse)};
    Backend backend = Dispatch.select(MERGE, exec, operands);
    for (Operand o : operands) {
      o.tensor().requireContiguous(o.name());
    }
    Check.sameDType("out", out, "outA", outA);
    requireShape("out", out, outA.shape());
    Check.dtype("lse", lse, DType.F32);
    requireShape("lse", lse, lseA.shape());
    boolean inPlaceA = same(out, outA) && same(lse, lseA);
    boolean inPlaceB = same(out, outB) && same(lse, lseB);
    if ((same(out, outA) || same(lse, lseA)) && !inPlaceA || (same(out, outB) || same(lse, lseB)) && !inPlaceB) {
      throw new IllegalArgumentException(MERGE + ": an in-place merge must write out and lse over the same input "
          + "state (out == outA and lse == lseA, or out == outB and lse == lseB)");
    }
    for (Operand o : new Operand[] {operands[4], operands[5]}) {
      for (int i = 0; i < 4; i++) {
        Operand in = operands[i];
        if (!same(o.tensor(), in.tensor())) {
          Check.noOverlap(o.name(), o.tensor(), in.name(), in.tensor());
        }
      }
    }
    Check.noOverlap("out", out, "lse", lse);
    long rows = lseA.numel();
    long d = outA.shape(outA.rank() - 1);
    try {
      if (backend == Backend.JAVA) {
        double[][] a = {doubles(outA), doubles(lseA), doubles(outB), doubles(lseB)};
        SparseAttentionRef.Result r = SparseAttentionRef.merge(a[0], a[1], a[2], a[3], (int) d);
        write(out, r.out());
        write(lse, r.lse());
      } else {
        boolean cuda = backend == Backend.CUDA;
        NativeApi.attentionMerge(cuda ? outA.device().index() : -1, outA.address(), lseA.address(), outB.address(),
            lseB.address(), out.address(), lse.address(), rows, d, outA.dtype().code(),
            cuda && exec.stream() != null ? exec.stream().handle() : 0);
      }
    } finally {
      Dispatch.keepAlive(operands);
    }
  }

  private static void checkMerge(Tensor outA, Tensor lseA, Tensor outB, Tensor lseB) {
    if (outA == null || lseA == null || outB == null || lseB == null) {
      throw new IllegalArgumentException(MERGE + ": " + (outA == null ? "outA" : lseA == null ? "lseA"
          : outB == null ? "outB" : "lseB") + " must not be null");
    }
    outA.requireOpen("outA");
    lseA.requireOpen("lseA");
    outB.requireOpen("outB");
    lseB.requireOpen("lseB");
    Check.dtype("outA", outA, DType.F32, DType.F16, DType.BF16);
    Check.sameDType("outB", outB, "outA", outA);
    Check.dtype("lseA", lseA, DType.F32);
    Check.dtype("lseB", lseB, DType.F32);
    if (outA.rank() < 1 || outA.shape(outA.rank() - 1) < 1) {
      throw new IllegalArgumentException(MERGE + ": outA must have a last dimension d >= 1, got shape "
          + Shapes.format(outA.shape()));
    }
    requireShape("outB", outB, outA.shape());
    long[] rowShape = Arrays.copyOf(outA.shape(), outA.rank() - 1);
    requireShape("lseA", lseA, rowShape);
    requireShape("lseB", lseB, rowShape);
  }

  private static void requireShape(String name, Tensor t, long[] shape) {
    if (!Arrays.equals(t.shape(), shape)) {
      throw new IllegalArgumentException(MERGE + ": " + name + " must have shape " + Shapes.format(shape) + ", got "
          + Shapes.format(t.shape()));
    }
  }

  /** Same tensor object, or the same bytes of the same device (an exact alias). */
  private static boolean same(Tensor a, Tensor b) {
    if (a == b) {
      return true;
    }
    return a.device().equals(b.device()) && a.hasAddress() && b.hasAddress() && a.address() == b.address()
        && a.byteSize() == b.byteSize();
  }

  private static double[] doubles(Tensor t) {
    float[] f = t.toFloatArray();
    double[] d = new double[f.length];
    for (int i = 0; i < f.length; i++) {
      d[i] = f[i];
    }
    return d;
  }

  private static void write(Tensor t, double[] values) {
    for (int i = 0; i < values.length; i++) {
      t.setDouble(i, values[i]);
    }
  }
}
