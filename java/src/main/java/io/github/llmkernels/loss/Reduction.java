package io.github.llmkernels.loss;

/** How per-row losses are reduced; codes match {@code llmk_reduction} in the C ABI. */
public enum Reduction {
  /** One loss per row of E, 0 at ignored rows. Shape [N]. */
  NONE(0),
  /** Sum over rows. A scalar. */
  SUM(1),
  /** Sum divided by the number of non-ignored rows; NaN when every row is ignored (as PyTorch). A scalar. */
  MEAN(2);

  final int code;

  Reduction(int code) {
    this.code = code;
  }
}
