package io.github.llmkernels.kvcache;

import io.github.llmkernels.tensor.Tensor;

/**
 * Java reference of the row gather: the oracle of the parity tests and the fallback without
 * natives. Written for clarity: validate every index, then copy row by row.
 */
final class RowGatherRef {
  private RowGatherRef() {}

  /** src (B, H, N, d), idx (B, H, K) I32, dst (B, H, K, d); shapes already checked. */
  static void gatherRows(Tensor src, Tensor idx, Tensor dst) {
    long b = src.shape(0);
    long h = src.shape(1);
    long n = src.shape(2);
    long d = src.shape(3);
    long k = idx.shape(2);
    long rows = b * h * k;
    for (long r = 0; r < rows; r++) { // first pass: nothing is written if any index is bad
      long index = idx.getLong(r);
      if (index < 0 || index >= n) {
        throw new IllegalArgumentException("idx[" + (r / (h * k)) + ", " + (r / k % h) + ", " + (r % k) + "] = "
            + index + " is outside [0, N = " + n + "); nothing was written");
      }
    }
    for (long r = 0; r < rows; r++) {
      long bh = r / k;
      long srcRow = bh * n + idx.getLong(r);
      dst.copyElements(src, srcRow * d, r * d, d);
    }
  }
}
