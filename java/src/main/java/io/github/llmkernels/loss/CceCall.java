package io.github.llmkernels.loss;

import io.github.llmkernels.internal.CceArgs;
import io.github.llmkernels.internal.Check;
import io.github.llmkernels.internal.Dispatch;
import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.internal.Operand;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * One validated CCE call (whole vocabulary or one shard): checks the inputs, picks the backend,
 * and runs forward or backward on it. Shared by {@link CutCrossEntropy} and {@link CceShards}.
 */
final class CceCall {
  final String op;
  final Tensor e;
  final Tensor c;
  final Tensor targets;
  final Tensor bias;
  final long vocabOffset;
  final long vocabTotal;
  final CceOptions options;
  final Exec exec;
  final long n;
  final long d;
  final long v;

  /**
   * @param e [N, D] F32/F16/BF16 hidden states
   * @param c [V, D] classifier rows (the shard's when sharded), dtype of e
   * @param targets [N] I32/I64 vocabulary ids (whole vocabulary), or the ignore index
   * @param bias [V] dtype of e, or null
   */
  CceCall(String op, Tensor e, Tensor c, Tensor targets, Tensor bias, long vocabOffset, long vocabTotal,
      CceOptions options, Exec exec) {
    this.op = op;
    if (e == null || c == null || targets == null) {
      throw new IllegalArgumentException(op + ": " + (e == null ? "e" : c == null ? "c" : "targets")
          + " must not be null");
    }
    if (options == null || exec == null) {
      throw new IllegalArgumentException(op + ": " + (options == null ? "options" : "exec") + " must not be null");
    }
    this.e = e;
    this.c = c;
    this.targets = targets;
    this.bias = bias;
    this.options = options;
    this.exec = exec;
    e.requireOpen("e");
    c.requireOpen("c");
    targets.requireOpen("targets");
    Check.rank("e", e, 2, "(N, D)");
    Check.rank("c", c, 2, "(V, D)");
    Check.rank("targets", targets, 1, "(N)");
    Check.dtype("e", e, DType.F32, DType.F16, DType.BF16);
    Check.sameDType("c", c, "e", e);
    Check.dtype("targets", targets, DType.I32, DType.I64);
    n = e.shape(0);
    d = e.shape(1);
    v = c.shape(0);
    if (d < 1) {
      throw new IllegalArgumentException(op + ": e must have D >= 1 columns, got shape [" + n + ", " + d + "]");
    }
    if (v < 1) {
      throw new IllegalArgumentException(op + ": c must have V >= 1 rows, got shape [" + v + ", " + c.shape(1) + "]");
    }
    Check.dim("c", c, 1, d, "D (from e)");
    Check.dim("targets", targets, 0, n, "N (from e)");
    if (bias != null) {
      bias.requireOpen("bias");
      Check.rank("bias", bias, 1, "(V)");
      Check.sameDType("bias", bias, "e", e);
      Check.dim("bias", bias, 0, v, "V (from c)");
    }
    if (vocabOffset < 0 || vocabTotal < 1 || vocabOffset > vocabTotal - v) {
      throw new IllegalArgumentException(op + ": shard [vocabOffset, vocabOffset + V) = [" + vocabOffset + ", "
          + (vocabOffset + v) + ") must lie inside [0, vocabTotal = " + vocabTotal + ")");
    }
    this.vocabOffset = vocabOffset;
    this.vocabTotal = vocabTotal;
  }

  boolean sharded() {
    return vocabOffset != 0 || v != vocabTotal;
  }

  List<Operand> inputOperands() {
    List<Operand> ops = new ArrayList<>(List.of(Operand.of("e", e), Operand.of("c", c),
        Operand.of("targets", targets)));
    if (bias != null) {
      ops.add(Operand.of("bias", bias));
    }
    return ops;
  }

  /** Backend for these inputs plus the given extra operands (outputs, upstream gradients). */
  Backend select(List<Operand> operands) {
    Backend backend = Dispatch.select(op, exec, operands.toArray(new Operand[0]));
    for (Operand o : operands) {
      o.tensor().requireContiguous(o.name());
    }
    return backend;
  }

  /** A per-row F32 vector [N]: lse, gradLse, statistics. */
  void checkRowVector(String name, Tensor t) {
    t.requireOpen(name);
    Check.rank(name, t, 1, "(N)");
    Check.dtype(name, t, DType.F32);
    Check.dim(name, t, 0, n, "N (from e)");
  }

  /** The loss shape of the reduction: [N] for NONE, one element otherwise. */
  void checkLossShaped(String name, Tensor t) {
    t.requireOpen(name);
    Check.dtype(name, t, DType.F32);
    if (options.reduction() == Reduction.NONE) {
      Check.rank(name, t, 1, "(N) for reduction NONE");
      Check.dim(name, t, 0, n, "N (from e)");
    } else if (t.numel() != 1) {
      throw new IllegalArgumentException(name + " must hold one element for reduction " + options.reduction()
          + ", got shape " + java.util.Arrays.toString(t.shape()));
    }
  }

  void checkOutputs(List<Operand> outputs) {
    List<Operand> all = new ArrayList<>(inputOperands());
    for (Operand out : outputs) {
      for (Operand other : all) {
        Check.noOverlap(out.name(), out.tensor(), other.name(), other.tensor());
      }
      all.add(out);
    }
  }

  /** Java-side target check (the native backends repeat it with the same message). */
  void checkTargets() {
    long shift = options.shift();
    for (long pos = shift; pos < n; pos++) {
      long t = targets.getLong(pos);
      if (t != options.ignoreIndex() && (t < 0 || t >= vocabTotal)) {
        throw new IllegalArgumentException("targets[" + pos + "] = " + t + " (the target of row " + (pos - shift)
            + ") is outside [0, V = " + vocabTotal + ") and is not ignore_index (" + options.ignoreIndex()
            + "); nothing was written");
      }
    }
  }

  CceArgs args(Backend backend) {
    CceArgs a = problemArgs(n, d, v, vocabOffset, vocabTotal, e.dtype(), targets.dtype(), options)
        .set(CceArgs.E, address(e)).set(CceArgs.C, address(c)).set(CceArgs.BIAS, address(bias))
        .set(CceArgs.TARGETS, address(targets));
    if (backend == Backend.CUDA) {
      a.set(CceArgs.DEVICE, e.device().index());
      a.set(CceArgs.STREAM, exec.stream() == null ? 0 : exec.stream().handle());
    }
    return a;
  }

  /** The sizes and options of a call as llmk_cce_args (no tensor addresses yet). */
  static CceArgs problemArgs(long n, long d, long v, long vocabOffset, long vocabTotal, DType dtype,
      DType targetDType, CceOptions options) {
    long flags = (options.sortVocab() ? CceArgs.FLAG_SORT_VOCAB : 0)
        | (options.fp32Accumulation() ? CceArgs.FLAG_FP32_ACCUM : 0)
        | (options.deterministic() ? CceArgs.FLAG_DETERMINISTIC : 0);
    return new CceArgs()
        .set(CceArgs.N, n).set(CceArgs.D, d).set(CceArgs.V, v)
        .set(CceArgs.VOCAB_OFFSET, vocabOffset).set(CceArgs.VOCAB_TOTAL, vocabTotal)
        .set(CceArgs.DTYPE, dtype.code()).set(CceArgs.TARGET_DTYPE, targetDType.code())
        .set(CceArgs.IGNORE_INDEX, options.ignoreIndex()).set(CceArgs.SHIFT, options.shift())
        .set(CceArgs.REDUCTION, options.reduction().code).set(CceArgs.FLAGS, flags)
        .setDouble(CceArgs.SOFTCAP, options.softcap())
        .setDouble(CceArgs.LABEL_SMOOTHING, options.labelSmoothing())
        .setDouble(CceArgs.Z_LOSS_SCALE, options.zLossScale())
        .setDouble(CceArgs.FILTER_EPS, options.resolvedFilterEps(dtype));
  }

  static long address(Tensor t) {
    return t == null ? 0 : t.address();
  }

  /** Forward into caller-provided outputs (loss may be null; targetLogit/sumLogits may be null). */
  void forward(Tensor loss, Tensor lse, Tensor targetLogit, Tensor sumLogits) {
    List<Operand> outputs = new ArrayList<>();
    addIfPresent(outputs, "loss", loss);
    addIfPresent(outputs, "lse", lse);
    addIfPresent(outputs, "targetLogit", targetLogit);
    addIfPresent(outputs, "sumLogits", sumLogits);
    List<Operand> operands = new ArrayList<>(inputOperands());
    operands.addAll(outputs);
    Backend backend = select(operands);
    if (loss != null) {
      checkLossShaped("loss", loss);
    }
    checkRowVector("lse", lse);
    if (targetLogit != null) {
      checkRowVector("targetLogit", targetLogit);
    }
    if (sumLogits != null) {
      checkRowVector("sumLogits", sumLogits);
    }
    checkOutputs(outputs);
    Operand[] fence = operands.toArray(new Operand[0]);
    try {
      if (backend == Backend.JAVA) {
        checkTargets();
        CutCrossEntropyRef.forward(problem(), loss, lse, targetLogit, sumLogits);
      } else {
        CceArgs a = args(backend).set(CceArgs.LOSS, address(loss)).set(CceArgs.LSE, address(lse))
            .set(CceArgs.TARGET_LOGIT, address(targetLogit)).set(CceArgs.SUM_LOGITS, address(sumLogits));
        NativeApi.cce(a, false, backend == Backend.CUDA);
      }
    } finally {
      Dispatch.keepAlive(fence);
    }
  }

  /** Backward into caller-provided outputs (each may be null = not wanted); returns tile counts. */
  long[] backward(Tensor lse, Tensor gradLoss, Tensor gradLse, Tensor gradE, Tensor gradC, Tensor gradBias) {
    if (lse == null || gradLoss == null) {
      throw new IllegalArgumentException(op + ": " + (lse == null ? "lse" : "gradLoss") + " must not be null");
    }
    if (gradBias != null && bias == null) {
      throw new IllegalArgumentException(op + ": gradBias requires bias");
    }
    List<Operand> outputs = new ArrayList<>();
    addIfPresent(outputs, "gradE", gradE);
    addIfPresent(outputs, "gradC", gradC);
    addIfPresent(outputs, "gradBias", gradBias);
    List<Operand> operands = new ArrayList<>(inputOperands());
    operands.add(Operand.of("lse", lse));
    operands.add(Operand.of("gradLoss", gradLoss));
    addIfPresent(operands, "gradLse", gradLse);
    operands.addAll(outputs);
    Backend backend = select(operands);
    checkRowVector("lse", lse);
    checkLossShaped("gradLoss", gradLoss);
    if (gradLse != null) {
      checkRowVector("gradLse", gradLse);
    }
    checkGradient("gradE", gradE, e);
    checkGradient("gradC", gradC, c);
    checkGradient("gradBias", gradBias, bias);
    checkOutputs(outputs);
    for (Operand out : outputs) {
      Check.noOverlap(out.name(), out.tensor(), "lse", lse);
      Check.noOverlap(out.name(), out.tensor(), "gradLoss", gradLoss);
      if (gradLse != null) {
        Check.noOverlap(out.name(), out.tensor(), "gradLse", gradLse);
      }
    }
    Operand[] fence = operands.toArray(new Operand[0]);
    try {
      if (backend == Backend.JAVA) {
        checkTargets();
        CutCrossEntropyRef.backward(problem(), lse, gradLoss, gradLse, gradE, gradC, gradBias);
        return new long[] {0, 0};
      }
      CceArgs a = args(backend).set(CceArgs.LSE, address(lse)).set(CceArgs.GRAD_LOSS, address(gradLoss))
          .set(CceArgs.GRAD_LSE, address(gradLse)).set(CceArgs.GRAD_E, address(gradE))
          .set(CceArgs.GRAD_C, address(gradC)).set(CceArgs.GRAD_BIAS, address(gradBias));
      NativeApi.cce(a, true, backend == Backend.CUDA);
      return new long[] {a.get(CceArgs.TILES_TOTAL), a.get(CceArgs.TILES_SKIPPED)};
    } finally {
      Dispatch.keepAlive(fence);
    }
  }

  /** Backward into new gradient tensors on e's device (dBias when there is a bias). */
  CceGradients backwardAllocating(Tensor lse, Tensor gradLoss, Tensor gradLse) {
    Tensor gradE = null;
    Tensor gradC = null;
    Tensor gradBias = null;
    try {
      gradE = Tensor.allocate(e.dtype(), e.device(), e.shape());
      gradC = Tensor.allocate(e.dtype(), e.device(), c.shape());
      gradBias = bias == null ? null : Tensor.allocate(e.dtype(), e.device(), bias.shape());
      long[] tiles = backward(lse, gradLoss, gradLse, gradE, gradC, gradBias);
      return new CceGradients(gradE, gradC, gradBias, tiles[0], tiles[1]);
    } catch (RuntimeException ex) {
      for (Tensor t : new Tensor[] {gradE, gradC, gradBias}) {
        if (t != null) {
          t.close();
        }
      }
      throw ex;
    }
  }

  private void checkGradient(String name, Tensor grad, Tensor of) {
    if (grad == null) {
      return;
    }
    grad.requireOpen(name);
    Check.sameDType(name, grad, "e", e);
    if (!java.util.Arrays.equals(grad.shape(), of.shape())) {
      throw new IllegalArgumentException(name + " must have shape " + java.util.Arrays.toString(of.shape())
          + ", got " + java.util.Arrays.toString(grad.shape()));
    }
  }

  CutCrossEntropyRef.Problem problem() {
    return CutCrossEntropyRef.Problem.of(e, c, targets, bias, vocabOffset, vocabTotal, options);
  }

  private static void addIfPresent(List<Operand> list, String name, Tensor t) {
    if (t != null) {
      list.add(Operand.of(name, t));
    }
  }
}
