package io.github.llmkernels.loss;

import io.github.llmkernels.tensor.Tensor;

/**
 * Result of {@link CutCrossEntropy#backward}: dE [N, D], dC [V, D] and dBias [V] (null when not
 * computed) in the dtype of E, and how many logit tiles gradient filtering skipped (0 of 0 on
 * the JAVA backend, which computes the exact gradient).
 */
public record CceGradients(Tensor gradE, Tensor gradC, Tensor gradBias, long tilesTotal, long tilesSkipped)
    implements AutoCloseable {

  /** Share of logit tiles the backward pass skipped, in [0, 1] (0 when no tile was visited). */
  public double skippedShare() {
    return tilesTotal == 0 ? 0 : (double) tilesSkipped / tilesTotal;
  }

  @Override
  public void close() {
    for (Tensor t : new Tensor[] {gradE, gradC, gradBias}) {
      if (t != null) {
        t.close();
      }
    }
  }
}
