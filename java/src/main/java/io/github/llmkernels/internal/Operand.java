package io.github.llmkernels.internal;

import io.github.llmkernels.tensor.Tensor;

/**
 * A kernel argument with the name its error messages use.
 *
 * @param name argument name as documented ("src", "idx", ...)
 * @param tensor the tensor (non-null)
 */
public record Operand(String name, Tensor tensor) {
  public static Operand of(String name, Tensor tensor) {
    if (tensor == null) {
      throw new IllegalArgumentException(name + " must not be null");
    }
    return new Operand(name, tensor);
  }
}
