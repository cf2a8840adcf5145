package io.github.llmkernels.loss;

import io.github.llmkernels.internal.CceArgs;
import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;

/**
 * Fused linear + cross-entropy ("Cut Your Losses in Large-Vocabulary Language Models"): the loss
 * of {@code softmax(E C^T + bias)} against targets, and its gradients, without ever storing the
 * N x V logits. Logits are recomputed tile by tile, the log-sum-exp is merged online across
 * vocabulary tiles, and the backward pass skips tiles whose gradient is negligible.
 *
 * <pre>{@code
 * CceOptions opts = CceOptions.defaults();                      // MEAN, ignore -100, filtering on
 * try (CceForward f = CutCrossEntropy.forward(e, c, targets, null, opts, true);
 *      CceGradients g = CutCrossEntropy.backward(e, c, targets, null, f.lse(), 1f, opts, Exec.DEFAULT)) {
 *   double loss = f.loss().getDouble(0);                        // then use g.gradE(), g.gradC()
 * }
 * }</pre>
 *
 * <p>Gradient filtering: a logit tile is skipped when every entry has {@code |g_ij| < eps *
 * max(|a_i|, |b_i|, |u_i|)} (see {@link CceOptions#filterEps}; a, b, u as in the README), so the
 * error of dE_ik is bounded by the sum of {@code |g_ij| |C_jk|} over entries below that threshold,
 * and likewise for dC and dBias. Label smoothing's uniform term is applied exactly outside the
 * tiles, so filtering never drops it.
 *
 * <p>Inputs: E [N, D] and C [V, D] in F32, F16 or BF16 (accumulation is always fp32 or wider),
 * bias [V] of the same dtype or null, targets [N] I32 or I64. Every target that is not the ignore
 * index must lie in [0, V): otherwise {@link IllegalArgumentException} names the position, before
 * anything is written. Memory: the native backends use O(N + V) workspace plus fixed-size tiles
 * ({@link #workspaceBytes}); the JAVA reference holds one row of logits at a time.
 *
 * <p>Backends: JAVA (the reference, double accumulation, exact gradients), NATIVE (C++ CPU kernel,
 * AVX-512/AVX2 tiles, OpenMP, deterministic for a fixed thread count) and CUDA (tensor cores for
 * F16/BF16). Dispatch follows the tensors' device (see {@link Exec}).
 */
public final class CutCrossEntropy {
  private static final String FORWARD = "CutCrossEntropy.forward";
  private static final String BACKWARD = "CutCrossEntropy.backward";

  private CutCrossEntropy() {}

  /** Forward with default execution; returns the loss only (lse is null). */
  public static CceForward forward(Tensor e, Tensor c, Tensor targets, Tensor bias, CceOptions options) {
    return forward(e, c, targets, bias, options, false, Exec.DEFAULT);
  }

  /** Forward with default execution; returns the lse [N] too when {@code returnLse}. */
  public static CceForward forward(Tensor e, Tensor c, Tensor targets, Tensor bias, CceOptions options,
      boolean returnLse) {
    return forward(e, c, targets, bias, options, returnLse, Exec.DEFAULT);
  }

  /**
   * Loss of E against targets.
   *
   * @param e [N, D] hidden states, F32/F16/BF16
   * @param c [V, D] classifier, dtype of e
   * @param targets [N] I32/I64 vocabulary ids or the ignore index
   * @param bias [V] dtype of e, or null
   * @param returnLse also return lse [N] (F32), which {@link #backward} can reuse
   * @return loss (F32 scalar for MEAN/SUM, [N] for NONE) and lse (or null), on e's device
   */
  public static CceForward forward(Tensor e, Tensor c, Tensor targets, Tensor bias, CceOptions options,
      boolean returnLse, Exec exec) {
    CceCall call = new CceCall(FORWARD, e, c, targets, bias, 0, c == null ? 1 : c.shape(0), options, exec);
    call.select(call.inputOperands());
    Device device = e.device();
    Tensor loss = options.reduction() == Reduction.NONE ? Tensor.allocate(DType.F32, device, call.n)
        : Tensor.allocate(DType.F32, device);
    Tensor lse = null;
    try {
      lse = Tensor.allocate(DType.F32, device, call.n);
      call.forward(loss, lse, null, null);
      if (!returnLse) {
        lse.close();
        lse = null;
      }
      return new CceForward(loss, lse);
    } catch (RuntimeException ex) {
      loss.close();
      if (lse != null) {
        lse.close();
      }
      throw ex;
    }
  }

  /** Forward into existing tensors: loss as the reduction says, lse [N] F32 (required). */
  public static void forwardInto(Tensor e, Tensor c, Tensor targets, Tensor bias, CceOptions options, Tensor loss,
      Tensor lse, Exec exec) {
    CceCall call = new CceCall(FORWARD, e, c, targets, bias, 0, c == null ? 1 : c.shape(0), options, exec);
    if (lse == null) {
      throw new IllegalArgumentException(FORWARD + ": lse must not be null");
    }
    call.forward(loss, lse, null, null);
  }

  /**
   * Gradients of the reduced loss (upstream gradient {@code gradLoss}) plus an optional upstream
   * gradient of lse (z-loss-style uses outside this call). Computes dE and dC, and dBias when
   * bias is given, in e's dtype.
   *
   * @param lse [N] F32 from {@link #forward} with {@code returnLse}, or null to recompute it
   * @param gradLoss F32, one element for MEAN/SUM, [N] for NONE
   * @param gradLse [N] F32 or null
   */
  public static CceGradients backward(Tensor e, Tensor c, Tensor targets, Tensor bias, Tensor lse, Tensor gradLoss,
      Tensor gradLse, CceOptions options, Exec exec) {
    CceCall call = new CceCall(BACKWARD, e, c, targets, bias, 0, c == null ? 1 : c.shape(0), options, exec);
    call.select(call.inputOperands());
    if (lse != null) {
      return call.backwardAllocating(lse, gradLoss, gradLse);
    }
    try (Tensor ownLse = Tensor.allocate(DType.F32, e.device(), call.n)) {
      call.forward(null, ownLse, null, null);
      return call.backwardAllocating(ownLse, gradLoss, gradLse);
    }
  }

  /** Backward for MEAN/SUM with a host scalar upstream gradient (1 for a plain loss.backward()). */
  public static CceGradients backward(Tensor e, Tensor c, Tensor targets, Tensor bias, Tensor lse, float gradLoss,
      CceOptions options, Exec exec) {
    if (options != null && options.reduction() == Reduction.NONE) {
      throw new IllegalArgumentException(BACKWARD + ": a scalar gradLoss needs reduction MEAN or SUM; NONE takes [N]");
    }
    try (Tensor host = Tensor.of(new float[] {gradLoss}); Tensor g = e == null ? null : host.to(e.device())) {
      return backward(e, c, targets, bias, lse, g, null, options, exec);
    }
  }

  /**
   * Backward into existing tensors; a null gradient is not computed (e.g. gradC null for a frozen
   * classifier), and each given one is overwritten. Returns {tiles visited, tiles skipped}.
   */
  public static long[] backwardInto(Tensor e, Tensor c, Tensor targets, Tensor bias, Tensor lse, Tensor gradLoss,
      Tensor gradLse, CceOptions options, Tensor gradE, Tensor gradC, Tensor gradBias, Exec exec) {
    CceCall call = new CceCall(BACKWARD, e, c, targets, bias, 0, c == null ? 1 : c.shape(0), options, exec);
    return call.backward(lse, gradLoss, gradLse, gradE, gradC, gradBias);
  }

  /**
   * Bytes of workspace the native forward ({@code backward} false) or backward pass allocates for
   * these shapes and options on this backend (NATIVE or CUDA), beyond inputs and outputs. It grows
   * with N + V, plus fp32 accumulators for F16/BF16 gradients with fp32 accumulation (CPU: the
   * smaller of V x D and threads x N x D floats; CUDA: N x D + V x D floats), never with N x V.
   * The JAVA backend holds one row of V doubles instead.
   */
  public static long workspaceBytes(long n, long d, long v, DType dtype, boolean hasBias, CceOptions options,
      boolean backward, Backend backend) {
    if (backend != Backend.NATIVE && backend != Backend.CUDA) {
      throw new IllegalArgumentException("workspaceBytes: backend must be NATIVE or CUDA, got " + backend);
    }
    if (options == null || dtype == null) {
      throw new IllegalArgumentException("workspaceBytes: " + (options == null ? "options" : "dtype")
          + " must not be null");
    }
    // The bias "address" only says that there is one: the query reads no memory.
    CceArgs a = CceCall.problemArgs(n, d, v, 0, v, dtype, DType.I32, options).set(CceArgs.BIAS, hasBias ? 1 : 0);
    return NativeApi.cceWorkspaceBytes(a, backward, backend == Backend.CUDA);
  }
}
