package io.github.llmkernels.sparse;

/**
 * The activation applied after the bias by {@link Sparse24#matmul} and {@link Sparse24#denseMatmul}:
 * {@code Y = act(X W^T + bias)}. {@link #code()} is the C ABI's llmk_activation value. Definitions
 * (in double) in {@link Sparse24Ref#activate}.
 */
public enum Activation {
  /** Identity. */
  NONE(0),
  /** max(x, 0). */
  RELU(1),
  /** x * sigmoid(x) = x / (1 + exp(-x)). */
  SILU(2),
  /** GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
  GELU(3);

  private final int code;

  Activation(int code) {
    this.code = code;
  }

  /** The llmk_activation code used across the C ABI. */
  public int code() {
    return code;
  }
}
