package io.github.llmkernels.tensor;

import java.util.Arrays;

/** Shape arithmetic with overflow checks: element and byte counts past 2^63 are errors. */
public final class Shapes {
  private Shapes() {}

  /** Product of the dimensions; throws if one is negative or the product overflows. */
  public static long numel(long[] shape) {
    long n = 1;
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] < 0) {
        throw new IllegalArgumentException("shape " + format(shape) + ": dimension " + i + " is negative");
      }
      try {
        n = Math.multiplyExact(n, shape[i]);
      } catch (ArithmeticException e) {
        throw new IllegalArgumentException("shape " + format(shape) + ": element count overflows a long", e);
      }
    }
    return n;
  }

  /** Byte count of numel elements of dtype, overflow-checked. */
  public static long byteSize(long numel, DType dtype) {
    try {
      return Math.multiplyExact(numel, (long) dtype.byteSize());
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException(numel + " elements of " + dtype + ": byte size overflows a long", e);
    }
  }

  /** Row-major strides (in elements) of a contiguous tensor of this shape. */
  public static long[] contiguousStrides(long[] shape) {
    long[] strides = new long[shape.length];
    long s = 1;
    for (int i = shape.length - 1; i >= 0; i--) {
      strides[i] = s;
      s *= Math.max(shape[i], 1);
    }
    return strides;
  }

  /**
   * Row-major with no gaps, as PyTorch's {@code is_contiguous}: the stride of a size-1 dimension
   * does not matter (a slice of one head of {@code [B, H, S, D]} is contiguous).
   */
  public static boolean isContiguous(long[] shape, long[] strides) {
    long expected = 1;
    for (int i = shape.length - 1; i >= 0; i--) {
      if (shape[i] == 0) {
        return true;  // no elements
      }
      if (shape[i] != 1) {
        if (strides[i] != expected) {
          return false;
        }
        expected *= shape[i];
      }
    }
    return true;
  }

  public static String format(long[] shape) {
    return Arrays.toString(shape);
  }
}
