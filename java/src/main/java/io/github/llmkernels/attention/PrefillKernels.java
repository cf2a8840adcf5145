package io.github.llmkernels.attention;

import io.github.llmkernels.internal.Dispatch;
import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.internal.Operand;
import io.github.llmkernels.internal.PrefillArgs;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;

/**
 * The two native stages of an estimator (llmk_prefill_score_* then llmk_prefill_select_*) on
 * the CPU or a CUDA device; tensors live on q's device. Separate so that tests can feed the same
 * F32 scores to every backend's selection.
 */
final class PrefillKernels {
  private PrefillKernels() {}

  /**
   * Native outputs of the selection stage.
   *
   * @param selection U8 [B, Hq, nQB, nKB]
   * @param headCounts I64 [B, Hq, 5]
   * @param divergence F32 [B, Hq]
   * @param columns I32 [B, Hq, verticalSize] ascending per head (token columns), or null
   */
  record NativeSelection(Tensor selection, Tensor headCounts, Tensor divergence, Tensor columns)
      implements AutoCloseable {
    @Override
    public void close() {
      selection.close();
      headCounts.close();
      divergence.close();
      if (columns != null) {
        columns.close();
      }
    }
  }

  private static PrefillArgs device(PrefillArgs a, Device device, Backend backend, Exec exec) {
    if (backend == Backend.CUDA) {
      a.set(PrefillArgs.DEVICE, device.index());
      a.set(PrefillArgs.STREAM, exec.stream() == null ? 0 : exec.stream().handle());
    }
    return a;
  }

  /** Scores per head as the library counts them (llmk_prefill_scores_size). */
  static long scoresPerHead(PrefillParams p) {
    return NativeApi.prefillScoresSize(p.args());
  }

  /** F32 [B, Hq, perHead] scores on q's device. */
  static Tensor score(PrefillParams p, Tensor q, Tensor k, Backend backend, Exec exec) {
    Tensor scores = Tensor.allocate(DType.F32, q.device(), p.batch(), p.headsQ(), scoresPerHead(p));
    Operand[] operands = {Operand.of("q", q), Operand.of("k", k), Operand.of("scores", scores)};
    try {
      PrefillArgs a = device(p.args(), q.device(), backend, exec)
          .set(PrefillArgs.Q, q.address()).set(PrefillArgs.K, k.address()).set(PrefillArgs.SCORES, scores.address());
      NativeApi.prefillScore(a, backend == Backend.CUDA);
      return scores;
    } catch (RuntimeException e) {
      scores.close();
      throw e;
    } finally {
      Dispatch.keepAlive(operands);
    }
  }

  /** The selection from scores (F32 [B, Hq, perHead] on the backend's device). */
  static NativeSelection select(PrefillParams p, Tensor scores, Backend backend, Exec exec) {
    Device device = scores.device();
    Tensor selection = Tensor.allocate(DType.U8, device, p.batch(), p.headsQ(), p.numQBlocks(), p.numKBlocks());
    Tensor counts = null;
    Tensor divergence = null;
    Tensor columns = null;
    try {
      counts = Tensor.allocate(DType.I64, device, p.batch(), p.headsQ(), PrefillArgs.HEAD_COUNT_FIELDS);
      divergence = Tensor.allocate(DType.F32, device, p.batch(), p.headsQ());
      if (p.tokenColumns()) {
        columns = Tensor.allocate(DType.I32, device, p.batch(), p.headsQ(), p.verticalSize());
      }
      Operand[] operands = {Operand.of("scores", scores), Operand.of("selection", selection),
          Operand.of("headCounts", counts), Operand.of("divergence", divergence)};
      try {
        PrefillArgs a = device(p.args(), device, backend, exec)
            .set(PrefillArgs.SCORES, scores.address()).set(PrefillArgs.SELECTION, selection.address())
            .set(PrefillArgs.HEAD_COUNTS, counts.address()).set(PrefillArgs.HEAD_DIVERGENCE, divergence.address())
            .set(PrefillArgs.COLUMNS, columns == null ? 0 : columns.address());
        NativeApi.prefillSelect(a, backend == Backend.CUDA);
      } finally {
        Dispatch.keepAlive(operands);
        java.lang.ref.Reference.reachabilityFence(columns);
      }
      return new NativeSelection(selection, counts, divergence, columns);
    } catch (RuntimeException e) {
      selection.close();
      if (counts != null) {
        counts.close();
      }
      if (divergence != null) {
        divergence.close();
      }
      if (columns != null) {
        columns.close();
      }
      throw e;
    }
  }
}
