package io.github.llmkernels.sparse;

import io.github.llmkernels.internal.Check;
import io.github.llmkernels.internal.Dispatch;
import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.internal.Operand;
import io.github.llmkernels.internal.Sp24MatmulArgs;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Shapes;
import io.github.llmkernels.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * 2:4 semi-structured sparsity: prune a weight W [M, K] to 2:4 along K (magnitude or Wanda),
 * compress it to values + U16 metadata ({@link Sparse24Weight}, 0.5625 of the dense bytes for
 * F16/BF16), and multiply: {@code Y [N, M] = act(X [N, K] W^T + bias [M])}.
 *
 * <pre>{@code
 * try (Tensor pruned = Sparse24.prune(w, colNorms);              // Wanda: |W| * ||X[:, k]||
 *      Sparse24Weight sw = Sparse24.compress(pruned);
 *      Tensor y = Sparse24.matmul(x, sw, bias, Activation.SILU)) { ... }
 * }</pre>
 *
 * <p>Rules ({@link Sparse24Ref}, native/include/llmk/sp24_math.h): every group of 4 consecutive
 * elements along K holds at most 2 non-zeros (NaN counts as a non-zero, -0 does not). Pruning
 * keeps, per group, the 2 highest fp32 scores {@code |w| * colNorms[k]} (colNorms = 1 for
 * magnitude), ties to the lower position, and sets the others to +0. Compression keeps a group's
 * non-zeros and fills up with its lowest zero positions, so decompression restores W bit for bit.
 *
 * <p>Arguments: W, X, bias and Y share one dtype among F32, F16 and BF16 (F32 on the host only:
 * the CUDA matmul runs on tensor cores), K is a multiple of 16 (one metadata word covers 16
 * columns), tensors are contiguous row-major and on one device. The matmul accumulates in fp32
 * (JAVA: double, rounded once). {@link #denseMatmul} is the library's own dense baseline with the
 * same arguments and dispatch.
 *
 * <p>Backends: JAVA ({@link Sparse24Ref}), NATIVE, CUDA; AUTO picks from the tensors' device.
 * Bad arguments throw {@link IllegalArgumentException} naming the argument and the rule (a
 * non-2:4 weight: its row and group); a closed tensor or weight throws
 * {@link IllegalStateException}.
 */
public final class Sparse24 {
  private Sparse24() {}

  /**
   * The first group (row-major order) of a weight with more than 2 non-zeros: row {@code row},
   * columns {@code 4 * group .. 4 * group + 3}.
   */
  public record Violation(long row, long group) {
    public long firstColumn() {
      return 4 * group;
    }

    @Override
    public String toString() {
      return "row " + row + ", group " + group + " (columns " + 4 * group + ".." + (4 * group + 3) + ")";
    }
  }

  // ---- pruning ------------------------------------------------------------------------------

  /** Magnitude pruning: a new tensor holding w with the 2 smallest |w| of every group set to 0. */
  public static Tensor prune(Tensor w) {
    return prune(w, null, Exec.DEFAULT);
  }

  public static Tensor prune(Tensor w, Exec exec) {
    return prune(w, null, exec);
  }

  /**
   * Wanda pruning: keeps the 2 highest {@code |w[m, k]| * colNorms[k]} of every group.
   *
   * @param colNorms F32 [K], the norm of each input column over calibration activations
   *     ({@code ||X[:, k]||_2}, or sqrt of the mean square: the scale does not change the choice);
   *     null for magnitude pruning
   */
  public static Tensor prune(Tensor w, Tensor colNorms) {
    return prune(w, colNorms, Exec.DEFAULT);
  }

  public static Tensor prune(Tensor w, Tensor colNorms, Exec exec) {
    String op = "Sparse24.prune";
    checkWeight(op, "w", w);
    Tensor out = Tensor.allocate(w.dtype(), w.device(), w.shape());
    try {
      runPrune(op, w, colNorms, out, exec);
      return out;
    } catch (RuntimeException e) {
      out.close();
      throw e;
    }
  }

  /** Prunes into out ([M, K], w's dtype and device; out may be w itself for in-place pruning). */
  public static void pruneInto(Tensor w, Tensor colNorms, Tensor out) {
    pruneInto(w, colNorms, out, Exec.DEFAULT);
  }

  public static void pruneInto(Tensor w, Tensor colNorms, Tensor out, Exec exec) {
    String op = "Sparse24.pruneInto";
    checkWeight(op, "w", w);
    checkOutput(op, "out", out, w.dtype(), w.shape(0), w.shape(1), "(M, K)");
    // In place (out at w's address) is allowed, any other overlap is not. Without raw addresses
    // only the JAVA backend can run, and it reads all of w before writing out.
    if (out.overlaps(w) && out.hasAddress() && w.hasAddress() && out.address() != w.address()) {
      throw new IllegalArgumentException(op + ": out must be w itself (in-place pruning) or not overlap w in memory");
    }
    runPrune(op, w, colNorms, out, exec);
  }

  private static void runPrune(String op, Tensor w, Tensor colNorms, Tensor out, Exec exec) {
    requireExec(op, exec);
    if (colNorms != null) {
      colNorms.requireOpen("colNorms");
      Check.rank("colNorms", colNorms, 1, "(K)");
      Check.dtype("colNorms", colNorms, DType.F32);
      Check.dim("colNorms", colNorms, 0, w.shape(1), "K (from w)");
      colNorms.requireContiguous("colNorms");
      Check.noOverlap("out", out, "colNorms", colNorms);
    }
    List<Operand> list = new ArrayList<>(List.of(Operand.of("w", w), Operand.of("out", out)));
    if (colNorms != null) {
      list.add(Operand.of("colNorms", colNorms));
    }
    Operand[] operands = list.toArray(new Operand[0]);
    Backend backend = Dispatch.select(op, exec, operands);
    try {
      if (backend == Backend.JAVA) {
        try (Tensor pruned = Sparse24Ref.prune(w, colNorms)) {
          out.copyFrom(pruned);
        }
      } else {
        NativeApi.sp24Prune(deviceIndex(backend, w), w.address(), colNorms == null ? 0 : colNorms.address(),
            out.address(), w.shape(0), w.shape(1), w.dtype().code(), stream(backend, exec));
      }
    } finally {
      Dispatch.keepAlive(operands);
    }
  }

  // ---- checking -----------------------------------------------------------------------------

  /** The first group of w [M, K] with more than 2 non-zeros, or null when w is 2:4. */
  public static Violation check(Tensor w) {
    return check(w, Exec.DEFAULT);
  }

  public static Violation check(Tensor w, Exec exec) {
    String op = "Sparse24.check";
    checkWeight(op, "w", w);
    requireExec(op, exec);
    Operand[] operands = {Operand.of("w", w)};
    Backend backend = Dispatch.select(op, exec, operands);
    try {
      long[] bad = backend == Backend.JAVA ? Sparse24Ref.check(w)
          : NativeApi.sp24Check(deviceIndex(backend, w), w.address(), w.shape(0), w.shape(1), w.dtype().code(),
              stream(backend, exec));
      return bad == null || bad[0] < 0 ? null : new Violation(bad[0], bad[1]);
    } finally {
      Dispatch.keepAlive(operands);
    }
  }

  /** Whether w [M, K] has at most 2 non-zeros in every group of 4 along K. */
  public static boolean isSparse24(Tensor w) {
    return check(w) == null;
  }

  public static boolean isSparse24(Tensor w, Exec exec) {
    return check(w, exec) == null;
  }

  // ---- compression --------------------------------------------------------------------------

  /**
   * Compresses a 2:4 weight W [M, K] into values [M, K/2] and U16 metadata [M, K/16] on W's device.
   *
   * @throws IllegalArgumentException when W is not 2:4, naming the first offending row and group
   *     ("row 3, group 5 (columns 20..23): more than 2 non-zeros, so W is not 2:4; ...")
   */
  public static Sparse24Weight compress(Tensor w) {
    return compress(w, Exec.DEFAULT);
  }

  public static Sparse24Weight compress(Tensor w, Exec exec) {
    String op = "Sparse24.compress";
    checkWeight(op, "w", w);
    requireExec(op, exec);
    long m = w.shape(0);
    long k = w.shape(1);
    Tensor values = Tensor.allocate(w.dtype(), w.device(), m, k / 2);
    Tensor meta = null;
    try {
      meta = Tensor.allocate(DType.U16, w.device(), m, k / 16);
      Operand[] operands = {Operand.of("w", w), Operand.of("values", values), Operand.of("meta", meta)};
      Backend backend = Dispatch.select(op, exec, operands);
      try {
        if (backend == Backend.JAVA) {
          Tensor[] ref = Sparse24Ref.compress(w);
          try (Tensor v = ref[0]; Tensor mt = ref[1]) {
            values.copyFrom(v);
            meta.copyFrom(mt);
          }
        } else {
          NativeApi.sp24Compress(deviceIndex(backend, w), w.address(), values.address(), meta.address(), m, k,
              w.dtype().code(), stream(backend, exec));
        }
      } finally {
        Dispatch.keepAlive(operands);
      }
      return new Sparse24Weight(values, meta, m, k);
    } catch (RuntimeException e) {
      values.close();
      if (meta != null) {
        meta.close();
      }
      throw e;
    }
  }

  /**
   * The dense W [M, K] of a compressed weight (zeros at the positions not kept), on its device.
   *
   * @throws IllegalArgumentException when a metadata nibble has idx0 >= idx1, naming its row and
   *     group
   */
  public static Tensor decompress(Sparse24Weight weight) {
    return decompress(weight, Exec.DEFAULT);
  }

  public static Tensor decompress(Sparse24Weight weight, Exec exec) {
    String op = "Sparse24.decompress";
    requireWeight(op, weight);
    requireExec(op, exec);
    Tensor w = Tensor.allocate(weight.dtype(), weight.device(), weight.m(), weight.k());
    try {
      Operand[] operands = {Operand.of("weight.values", weight.values()), Operand.of("weight.meta", weight.meta()),
          Operand.of("w", w)};
      Backend backend = Dispatch.select(op, exec, operands);
      try {
        if (backend == Backend.JAVA) {
          try (Tensor ref = Sparse24Ref.decompress(weight.values(), weight.meta(), weight.k())) {
            w.copyFrom(ref);
          }
        } else {
          NativeApi.sp24Decompress(deviceIndex(backend, w), weight.values().address(), weight.meta().address(),
              w.address(), weight.m(), weight.k(), weight.dtype().code(), stream(backend, exec));
        }
      } finally {
        Dispatch.keepAlive(operands);
      }
      return w;
    } catch (RuntimeException e) {
      w.close();
      throw e;
    }
  }

  // ---- matmul -------------------------------------------------------------------------------

  /** Y [N, M] = act(X [N, K] W^T + bias) with W compressed; bias [M] or null. */
  public static Tensor matmul(Tensor x, Sparse24Weight weight, Tensor bias, Activation act) {
    return matmul(x, weight, bias, act, Exec.DEFAULT);
  }

  public static Tensor matmul(Tensor x, Sparse24Weight weight, Tensor bias, Activation act, Exec exec) {
    String op = "Sparse24.matmul";
    requireWeight(op, weight);
    return allocateAndRun(op, x, weight, null, bias, act, exec);
  }

  /** {@link #matmul} into y [N, M] (x's dtype and device; must not overlap an input). */
  public static void matmulInto(Tensor x, Sparse24Weight weight, Tensor bias, Activation act, Tensor y) {
    matmulInto(x, weight, bias, act, y, Exec.DEFAULT);
  }

  public static void matmulInto(Tensor x, Sparse24Weight weight, Tensor bias, Activation act, Tensor y,
      Exec exec) {
    String op = "Sparse24.matmulInto";
    requireWeight(op, weight);
    runMatmul(op, x, weight, null, bias, act, y, exec);
  }

  /** The library's dense baseline: Y [N, M] = act(X [N, K] W^T + bias) with a dense W [M, K]. */
  public static Tensor denseMatmul(Tensor x, Tensor w, Tensor bias, Activation act) {
    return denseMatmul(x, w, bias, act, Exec.DEFAULT);
  }

  public static Tensor denseMatmul(Tensor x, Tensor w, Tensor bias, Activation act, Exec exec) {
    String op = "Sparse24.denseMatmul";
    checkWeight(op, "w", w);
    return allocateAndRun(op, x, null, w, bias, act, exec);
  }

  public static void denseMatmulInto(Tensor x, Tensor w, Tensor bias, Activation act, Tensor y) {
    denseMatmulInto(x, w, bias, act, y, Exec.DEFAULT);
  }

  public static void denseMatmulInto(Tensor x, Tensor w, Tensor bias, Activation act, Tensor y, Exec exec) {
    String op = "Sparse24.denseMatmulInto";
    checkWeight(op, "w", w);
    runMatmul(op, x, null, w, bias, act, y, exec);
  }

  private static Tensor allocateAndRun(String op, Tensor x, Sparse24Weight sparse, Tensor dense, Tensor bias,
      Activation act, Exec exec) {
    checkX(op, x, sparse, dense);
    long m = sparse != null ? sparse.m() : dense.shape(0);
    Tensor y = Tensor.allocate(x.dtype(), x.device(), x.shape(0), m);
    try {
      runMatmul(op, x, sparse, dense, bias, act, y, exec);
      return y;
    } catch (RuntimeException e) {
      y.close();
      throw e;
    }
  }

  /** One of sparse / dense is non-null (and already checked). */
  private static void runMatmul(String op, Tensor x, Sparse24Weight sparse, Tensor dense, Tensor bias,
      Activation act, Tensor y, Exec exec) {
    checkX(op, x, sparse, dense);
    String wName = sparse != null ? "weight" : "w";
    long m = sparse != null ? sparse.m() : dense.shape(0);
    long k = x.shape(1);
    if (act == null) {
      throw new IllegalArgumentException(op + ": act must not be null (Activation.NONE for none)");
    }
    requireExec(op, exec);
    if (bias != null) {
      bias.requireOpen("bias");
      Check.rank("bias", bias, 1, "(M)");
      Check.sameDType("bias", bias, "x", x);
      Check.dim("bias", bias, 0, m, "M (from " + wName + ")");
      bias.requireContiguous("bias");
    }
    checkOutput(op, "y", y, x.dtype(), x.shape(0), m, "(N, M)");
    Check.noOverlap("y", y, "x", x);
    if (sparse != null) {
      Check.noOverlap("y", y, "weight.values", sparse.values());
      Check.noOverlap("y", y, "weight.meta", sparse.meta());
    } else {
      Check.noOverlap("y", y, "w", dense);
    }
    if (bias != null) {
      Check.noOverlap("y", y, "bias", bias);
    }
    if (x.device().isCuda() && x.dtype() == DType.F32) {
      throw new IllegalArgumentException(op + ": x dtype F32 is not supported on CUDA (the CUDA kernels run on "
          + "tensor cores and take F16 or BF16); convert x, the weight and bias to F16 or BF16");
    }
    List<Operand> list = new ArrayList<>();
    list.add(Operand.of("x", x));
    if (sparse != null) {
      list.add(Operand.of("weight.values", sparse.values()));
      list.add(Operand.of("weight.meta", sparse.meta()));
    } else {
      list.add(Operand.of("w", dense));
    }
    if (bias != null) {
      list.add(Operand.of("bias", bias));
    }
    list.add(Operand.of("y", y));
    Operand[] operands = list.toArray(new Operand[0]);
    Backend backend = Dispatch.select(op, exec, operands);
    try {
      if (backend == Backend.JAVA) {
        double[] ref = sparse != null ? Sparse24Ref.matmul(x, sparse.values(), sparse.meta(), bias, act)
            : Sparse24Ref.denseMatmul(x, dense, bias, act);
        for (int i = 0; i < ref.length; i++) {
          y.setDouble(i, ref[i]);
        }
      } else {
        Sp24MatmulArgs a = new Sp24MatmulArgs()
            .set(Sp24MatmulArgs.N, x.shape(0)).set(Sp24MatmulArgs.M, m).set(Sp24MatmulArgs.K, k)
            .set(Sp24MatmulArgs.DTYPE, x.dtype().code()).set(Sp24MatmulArgs.ACTIVATION, act.code())
            .set(Sp24MatmulArgs.X, x.address()).set(Sp24MatmulArgs.BIAS, bias == null ? 0 : bias.address())
            .set(Sp24MatmulArgs.Y, y.address());
        if (sparse != null) {
          a.set(Sp24MatmulArgs.VALUES, sparse.values().address()).set(Sp24MatmulArgs.META, sparse.meta().address());
        } else {
          a.set(Sp24MatmulArgs.W, dense.address());
        }
        if (backend == Backend.CUDA) {
          a.set(Sp24MatmulArgs.DEVICE, x.device().index()).set(Sp24MatmulArgs.STREAM, stream(backend, exec));
        }
        if (sparse != null) {
          NativeApi.sp24Matmul(a, backend == Backend.CUDA);
        } else {
          NativeApi.denseMatmul(a, backend == Backend.CUDA);
        }
      }
    } finally {
      Dispatch.keepAlive(operands);
    }
  }

  // ---- argument checks ----------------------------------------------------------------------

  /** A weight-shaped tensor [M, K]: open, rank 2, F32/F16/BF16, K % 16 == 0, contiguous. */
  private static void checkWeight(String op, String name, Tensor w) {
    if (w == null) {
      throw new IllegalArgumentException(op + ": " + name + " must not be null");
    }
    w.requireOpen(name);
    Check.rank(name, w, 2, "(M, K)");
    Check.dtype(name, w, DType.F32, DType.F16, DType.BF16);
    if (w.shape(1) % 16 != 0) {
      throw new IllegalArgumentException(op + ": " + name + " K = " + w.shape(1) + " (dimension 1 of shape "
          + Shapes.format(w.shape()) + ") must be a multiple of 16 (one metadata word covers 16 columns)");
    }
    w.requireContiguous(name);
  }

  private static void checkX(String op, Tensor x, Sparse24Weight sparse, Tensor dense) {
    if (x == null) {
      throw new IllegalArgumentException(op + ": x must not be null");
    }
    x.requireOpen("x");
    Check.rank("x", x, 2, "(N, K)");
    Check.dtype("x", x, DType.F32, DType.F16, DType.BF16);
    if (sparse != null) {
      Check.dim("x", x, 1, sparse.k(), "K (from weight)");
      Check.sameDType("x", x, "weight", sparse.values());
    } else {
      Check.dim("x", x, 1, dense.shape(1), "K (from w)");
      Check.sameDType("x", x, "w", dense);
    }
    x.requireContiguous("x");
  }

  private static void checkOutput(String op, String name, Tensor out, DType dtype, long rows, long cols,
      String layout) {
    if (out == null) {
      throw new IllegalArgumentException(op + ": " + name + " must not be null");
    }
    out.requireOpen(name);
    Check.rank(name, out, 2, layout);
    if (out.dtype() != dtype) {
      throw new IllegalArgumentException(name + " must have dtype " + dtype + " (the inputs'), got " + out.dtype());
    }
    if (out.shape(0) != rows || out.shape(1) != cols) {
      throw new IllegalArgumentException(name + " must have shape [" + rows + ", " + cols + "] " + layout + ", got "
          + Shapes.format(out.shape()));
    }
    out.requireContiguous(name);
  }

  private static void requireWeight(String op, Sparse24Weight weight) {
    if (weight == null) {
      throw new IllegalArgumentException(op + ": weight must not be null");
    }
    weight.requireOpen("weight");
  }

  private static void requireExec(String op, Exec exec) {
    if (exec == null) {
      throw new IllegalArgumentException(op + ": exec must not be null");
    }
  }

  private static int deviceIndex(Backend backend, Tensor t) {
    return backend == Backend.CUDA ? t.device().index() : -1;
  }

  private static long stream(Backend backend, Exec exec) {
    return backend == Backend.CUDA && exec.stream() != null ? exec.stream().handle() : 0;
  }
}
