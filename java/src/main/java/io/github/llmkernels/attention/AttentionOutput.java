package io.github.llmkernels.attention;

import io.github.llmkernels.tensor.Tensor;

/**
 * Result of {@link SparseAttention#forward} or {@link SparseAttention#mergeStates}: out
 * [B, Hq, Sq, d] and the natural-log log-sum-exp of the scores, lse [B, Hq, Sq] F32 (-inf, with
 * out 0, for a query that sees no key). Closing it closes both.
 */
public record AttentionOutput(Tensor out, Tensor lse) implements AutoCloseable {
  @Override
  public void close() {
    out.close();
    lse.close();
  }
}
