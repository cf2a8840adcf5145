package io.github.llmkernels.attention;

/**
 * A block-sparse pattern as host CSR (FlashInfer's BSR plus a class flag per entry): the entries
 * of row r are {@code indices[indptr[r] .. indptr[r + 1])}, ascending, and {@code full[e]} says
 * whether entry e is a FULL block (no masked pair) rather than PARTIAL. Which rows and columns
 * these are depends on where it came from ({@link BlockLayout#toCsr()}: rows are (layout batch,
 * layout head, query block) and columns key blocks; {@link BlockLayout#transpose()}: rows are
 * (layout batch, layout head, key block) and columns query blocks).
 *
 * @param indptr int64 [rows + 1], indptr[0] = 0
 * @param indices int32 [indptr[rows]]
 * @param full one flag per entry
 */
public record BlockCsr(long[] indptr, int[] indices, boolean[] full) {
  /** Number of rows. */
  public int rows() {
    return indptr.length - 1;
  }

  /** Number of stored blocks. */
  public int nnz() {
    return indices.length;
  }
}
