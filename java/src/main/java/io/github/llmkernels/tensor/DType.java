package io.github.llmkernels.tensor;

/** Element types. {@link #code()} is the C ABI's llmk_dtype value. */
public enum DType {
  F32(0, 4, true),
  F16(1, 2, true),
  BF16(2, 2, true),
  I32(3, 4, false),
  I64(4, 8, false),
  I8(5, 1, false),
  U8(6, 1, false),
  U16(7, 2, false);

  private final int code;
  private final int byteSize;
  private final boolean floatingPoint;

  DType(int code, int byteSize, boolean floatingPoint) {
    this.code = code;
    this.byteSize = byteSize;
    this.floatingPoint = floatingPoint;
  }

  /** The llmk_dtype code used across the C ABI. */
  public int code() {
    return code;
  }

  public int byteSize() {
    return byteSize;
  }

  public boolean isFloatingPoint() {
    return floatingPoint;
  }
}
