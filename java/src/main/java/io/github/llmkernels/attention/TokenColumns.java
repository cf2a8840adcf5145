package io.github.llmkernels.attention;

import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Shapes;
import io.github.llmkernels.tensor.Tensor;
import java.util.Arrays;

/**
 * Token-level key columns of a {@link BlockLayout} (MInference's vertical {@code column_index}):
 * per layout (batch, head) up to {@code capacity} strictly ascending keys in [0, seqK), then -1
 * padding. A query attends to a column when the column's key block is in neither list of its
 * query block and the mask allows the pair. The layout owns a validated copy: a host array (the
 * JAVA backend and the accessors) and the I32 [layoutBatch, layoutHeads, capacity] tensor the
 * kernels read.
 */
final class TokenColumns {
  private final int capacity;
  private final int layoutHeads;
  private final int[] host;

  private TokenColumns(int capacity, int layoutHeads, int[] host) {
    this.capacity = capacity;
    this.layoutHeads = layoutHeads;
    this.host = host;
  }

  /**
   * Checks columns (I32 [1 or B, 1 or Hq, capacity], contiguous, on any device) and copies them
   * to the host, repeated along dimensions the layout (lb x lh) has and columns broadcast.
   */
  static TokenColumns of(String op, Tensor columns, int batch, int heads, int lb, int lh, int seqK) {
    columns.requireOpen("columns");
    if (columns.dtype() != DType.I32) {
      throw new IllegalArgumentException(op + ": columns must have dtype I32; got " + columns.dtype());
    }
    long[] shape = columns.shape();
    if (shape.length != 3 || (shape[0] != 1 && shape[0] != batch) || (shape[1] != 1 && shape[1] != heads)
        || shape[2] < 1 || shape[2] > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(op + ": columns must have shape [1 or B = " + batch + ", 1 or Hq = " + heads
          + ", capacity >= 1]; got " + Shapes.format(shape));
    }
    columns.requireContiguous("columns");
    int cb = (int) shape[0];
    int ch = (int) shape[1];
    int cap = (int) shape[2];
    if ((double) lb * lh * cap > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(op + ": layout batch x layout heads x column capacity must be < 2^31 - 8; got "
          + lb + " x " + lh + " x " + cap);
    }
    int[] src;
    try (Tensor h = columns.to(Device.CPU)) {
      src = h.toIntArray();
    }
    for (int r = 0; r < cb * ch; r++) {
      checkRow(op, src, r * cap, cap, r / ch, r % ch, seqK);
    }
    int[] host = new int[lb * lh * cap];
    for (int b = 0; b < lb; b++) {
      for (int h = 0; h < lh; h++) {
        int from = ((cb == 1 ? 0 : b) * ch + (ch == 1 ? 0 : h)) * cap;
        System.arraycopy(src, from, host, (b * lh + h) * cap, cap);
      }
    }
    return new TokenColumns(cap, lh, host);
  }

  private static void checkRow(String op, int[] c, int at, int cap, int b, int h, int seqK) {
    int n = 0;
    while (n < cap && c[at + n] >= 0) {
      int x = c[at + n];
      if (x >= seqK || (n > 0 && x <= c[at + n - 1])) {
        throw new IllegalArgumentException(op + ": columns of (batch " + b + ", head " + h
            + ") must be strictly ascending keys in [0, seqK = " + seqK + ") followed by -1 padding; entry " + n
            + " is " + x + (n > 0 ? " after " + c[at + n - 1] : ""));
      }
      n++;
    }
    for (int i = n; i < cap; i++) {
      if (c[at + i] != -1) {
        throw new IllegalArgumentException(op + ": columns of (batch " + b + ", head " + h
            + ") may hold only -1 padding after the first negative entry; entry " + i + " is " + c[at + i]);
      }
    }
  }

  int capacity() {
    return capacity;
  }

  /** The valid columns (ascending) of layout batch lb, layout head lh. */
  int[] row(int lb, int lh) {
    int at = (lb * layoutHeads + lh) * capacity;
    int n = 0;
    while (n < capacity && host[at + n] >= 0) {
      n++;
    }
    return Arrays.copyOfRange(host, at, at + n);
  }

  /** Every row, -1 padded: [layoutBatch, layoutHeads, capacity]. */
  int[] padded() {
    return host;
  }
}
