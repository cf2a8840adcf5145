package io.github.llmkernels.loss;

import io.github.llmkernels.tensor.Tensor;

/**
 * Result of {@link CutCrossEntropy#forward}: the loss (F32 scalar for MEAN/SUM, [N] for NONE) and
 * the per-row log-sum-exp [N] F32 (0 at ignored rows; null unless asked for). Closing it closes both.
 */
public record CceForward(Tensor loss, Tensor lse) implements AutoCloseable {
  @Override
  public void close() {
    loss.close();
    if (lse != null) {
      lse.close();
    }
  }
}
