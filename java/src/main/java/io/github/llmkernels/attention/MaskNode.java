package io.github.llmkernels.attention;

import java.util.Arrays;

/**
 * The expression tree behind a {@link MaskSpec}. Each node answers three questions in plain
 * Java: the element predicate (the oracle, written from the definitions in {@link MaskSpec}),
 * the tile class of the conservative classifier (the same arithmetic as
 * {@code native/include/llmk/mask_math.h}, so JAVA and native layouts are identical), and its
 * encoding as {@code llmk_mask_node} words (postfix).
 *
 * <p>Per-batch / per-head data is held as arrays of rows; a single row is shared by every batch
 * or head (stride 0 in the encoding).
 */
abstract class MaskNode {
  static final int EMPTY = 0;
  static final int PARTIAL = 1;
  static final int FULL = 2;

  // llmk_mask_op codes (llmk.h)
  static final long OP_ALL = 0;
  static final long OP_NONE = 1;
  static final long OP_CAUSAL = 2;
  static final long OP_WINDOW = 3;
  static final long OP_SINKS = 4;
  static final long OP_PREFIX = 5;
  static final long OP_DOCUMENT = 6;
  static final long OP_BLOCKS = 7;
  static final long OP_VERTICAL_SLASH = 8;
  static final long OP_AND = 16;
  static final long OP_OR = 17;
  static final long OP_NOT = 18;

  /** Number of llmk_mask_node entries of the postfix program. */
  abstract int nodeCount();

  /** Evaluation stack depth of the postfix program (deeper operand encoded first). */
  abstract int depth();

  /** Visibility of (q, k) for batch b, query head h, with q < qLen and k < kLen already checked. */
  abstract boolean visible(int b, int h, long q, long k, long qLen, long kLen);

  /** Class of the tile [q0, q1) x [k0, k1), non-empty and inside the lengths. */
  abstract int classify(int b, int h, long q0, long q1, long k0, long k1, long qLen, long kLen);

  /** Appends the postfix program. */
  abstract void encode(EncodedMask.Builder out);

  /** Rows of per-batch data (1 when the node is the same for every batch). */
  int batchRows() {
    return 1;
  }

  /** Rows of per-head data (1 when the node is the same for every head). */
  int headRows() {
    return 1;
  }

  /** Checks the node's data against the call's geometry; messages name the mask kind. */
  void validate(int batch, int heads, long seqQ, long seqK) {}

  static long diagOffset(long offset, boolean bottomRight, long qLen, long kLen) {
    return offset + (bottomRight ? kLen - qLen : 0);
  }

  /** Class of the integer range [lo, hi] against the accepted range [a, b] (inclusive). */
  static int intervalClass(long lo, long hi, long a, long b) {
    if (hi < a || lo > b) {
      return EMPTY;
    }
    return lo >= a && hi <= b ? FULL : PARTIAL;
  }

  static int row(int index, int rows) {
    return rows == 1 ? 0 : index;
  }

  static void requireRows(String kind, String what, int rows, int expected, String name) {
    if (rows != 1 && rows != expected) {
      throw new IllegalArgumentException(kind + ": " + what + " has " + rows + " rows; it must have 1 (shared) or "
          + name + " = " + expected);
    }
  }

  // ---- composition ---------------------------------------------------------------------------

  static final class Binary extends MaskNode {
    final boolean and;
    final MaskNode a;
    final MaskNode b;

    Binary(boolean and, MaskNode a, MaskNode b) {
      this.and = and;
      this.a = a;
      this.b = b;
    }

    @Override
    int nodeCount() {
      return a.nodeCount() + b.nodeCount() + 1;
    }

    @Override
    int depth() {
      int da = Math.max(a.depth(), b.depth());
      int db = Math.min(a.depth(), b.depth());
      return Math.max(da, db + 1);
    }

    @Override
    boolean visible(int bi, int h, long q, long k, long qLen, long kLen) {
      return and ? a.visible(bi, h, q, k, qLen, kLen) && b.visible(bi, h, q, k, qLen, kLen)
          : a.visible(bi, h, q, k, qLen, kLen) || b.visible(bi, h, q, k, qLen, kLen);
    }

    @Override
    int classify(int bi, int h, long q0, long q1, long k0, long k1, long qLen, long kLen) {
      int ca = a.classify(bi, h, q0, q1, k0, k1, qLen, kLen);
      int cb = b.classify(bi, h, q0, q1, k0, k1, qLen, kLen);
      return and ? Math.min(ca, cb) : Math.max(ca, cb);
    }

    @Override
    void encode(EncodedMask.Builder out) {
      // AND/OR commute: the deeper operand first keeps the stack shallow.
      MaskNode first = a.depth() >= b.depth() ? a : b;
      MaskNode second = first == a ? b : a;
      first.encode(out);
      second.encode(out);
      out.node(and ? OP_AND : OP_OR);
    }

    @Override
    int batchRows() {
      return Math.max(a.batchRows(), b.batchRows());
    }

    @Override
    int headRows() {
      return Math.max(a.headRows(), b.headRows());
    }

    @Override
    void validate(int batch, int heads, long seqQ, long seqK) {
      a.validate(batch, heads, seqQ, seqK);
      b.validate(batch, heads, seqQ, seqK);
    }

    @Override
    public String toString() {
      return "(" + a + (and ? " & " : " | ") + b + ")";
    }
  }

  static final class Not extends MaskNode {
    final MaskNode a;

    Not(MaskNode a) {
      this.a = a;
    }

    @Override
    int nodeCount() {
      return a.nodeCount() + 1;
    }

    @Override
    int depth() {
      return a.depth();
    }

    @Override
    boolean visible(int b, int h, long q, long k, long qLen, long kLen) {
      return !a.visible(b, h, q, k, qLen, kLen);
    }

    @Override
    int classify(int b, int h, long q0, long q1, long k0, long k1, long qLen, long kLen) {
      return FULL - a.classify(b, h, q0, q1, k0, k1, qLen, kLen);
    }

    @Override
    void encode(EncodedMask.Builder out) {
      a.encode(out);
      out.node(OP_NOT);
    }

    @Override
    int batchRows() {
      return a.batchRows();
    }

    @Override
    int headRows() {
      return a.headRows();
    }

    @Override
    void validate(int batch, int heads, long seqQ, long seqK) {
      a.validate(batch, heads, seqQ, seqK);
    }

    @Override
    public String toString() {
      return "!" + a;
    }
  }

  // ---- leaves --------------------------------------------------------------------------------

  abstract static class Leaf extends MaskNode {
    @Override
    final int nodeCount() {
      return 1;
    }

    @Override
    final int depth() {
      return 1;
    }
  }

  static final class Constant extends Leaf {
    final boolean value;

    Constant(boolean value) {
      this.value = value;
    }

    @Override
    boolean visible(int b, int h, long q, long k, long qLen, long kLen) {
      return value;
    }

    @Override
    int classify(int b, int h, long q0, long q1, long k0, long k1, long qLen, long kLen) {
      return value ? FULL : EMPTY;
    }

    @Override
    void encode(EncodedMask.Builder out) {
      out.node(value ? OP_ALL : OP_NONE);
    }

    @Override
    public String toString() {
      return value ? "all" : "none";
    }
  }

  /** CAUSAL (right = 0, left unbounded) and WINDOW: left <= aligned q - k <= ... */
  static final class Diagonal extends Leaf {
    final boolean window;
    final long offset;
    final boolean bottomRight;
    final long left;
    final long right;

    Diagonal(boolean window, long offset, boolean bottomRight, long left, long right) {
      this.window = window;
      this.offset = offset;
      this.bottomRight = bottomRight;
      this.left = left;
      this.right = right;
    }

    @Override
    boolean visible(int b, int h, long q, long k, long qLen, long kLen) {
      long aligned = q + diagOffset(offset, bottomRight, qLen, kLen);
      if (!window) {
        return k <= aligned;
      }
      return k >= aligned - left && k <= aligned + right;
    }

    @Override
    int classify(int b, int h, long q0, long q1, long k0, long k1, long qLen, long kLen) {
      long off = diagOffset(offset, bottomRight, qLen, kLen);
      long lo = k0 - (q1 - 1 + off);
      long hi = (k1 - 1) - (q0 + off);
      return window ? intervalClass(lo, hi, -left, right) : intervalClass(lo, hi, -(Long.MAX_VALUE / 4), 0);
    }

    @Override
    void encode(EncodedMask.Builder out) {
      long[] n = out.node(window ? OP_WINDOW : OP_CAUSAL);
      n[1] = offset;
      n[2] = bottomRight ? 1 : 0;
      if (window) {
        n[3] = left;
        n[4] = right;
      }
    }

    @Override
    public String toString() {
      String align = (bottomRight ? "bottom-right" : "top-left") + (offset != 0 ? " offset " + offset : "");
      return window ? "window(" + left + ", " + right + ", " + align + ")" : "causal(" + align + ")";
    }
  }

  static final class Sinks extends Leaf {
    final long count;

    Sinks(long count) {
      this.count = count;
    }

    @Override
    boolean visible(int b, int h, long q, long k, long qLen, long kLen) {
      return k < count;
    }

    @Override
    int classify(int b, int h, long q0, long q1, long k0, long k1, long qLen, long kLen) {
      return intervalClass(k0, k1 - 1, -(Long.MAX_VALUE / 4), count - 1);
    }

    @Override
    void encode(EncodedMask.Builder out) {
      out.node(OP_SINKS)[3] = count;
    }

    @Override
    public String toString() {
      return "sinks(" + count + ")";
    }
  }

  static final class Prefix extends Leaf {
    final int[] lengths; // [B or 1]

    Prefix(int[] lengths) {
      this.lengths = lengths;
    }

    @Override
    boolean visible(int b, int h, long q, long k, long qLen, long kLen) {
      return k < lengths[row(b, lengths.length)];
    }

    @Override
    int classify(int b, int h, long q0, long q1, long k0, long k1, long qLen, long kLen) {
      return intervalClass(k0, k1 - 1, -(Long.MAX_VALUE / 4), (long) lengths[row(b, lengths.length)] - 1);
    }

    @Override
    void encode(EncodedMask.Builder out) {
      long[] n = out.node(OP_PREFIX);
      n[7] = lengths.length == 1 ? 0 : 1;
      n[9] = out.upload(lengths);
    }

    @Override
    int batchRows() {
      return lengths.length;
    }

    @Override
    void validate(int batch, int heads, long seqQ, long seqK) {
      requireRows("prefix", "lengths", lengths.length, batch, "batch");
    }

    @Override
    public String toString() {
      return "prefix" + Arrays.toString(lengths);
    }
  }

  static final class Document extends Leaf {
    final int[][] qIds; // [B or 1][seqQ]
    final int[][] kIds; // [B or 1][seqK]
    final boolean sorted;

    Document(int[][] qIds, int[][] kIds, boolean sorted) {
      this.qIds = qIds;
      this.kIds = kIds;
      this.sorted = sorted;
    }

    @Override
    boolean visible(int b, int h, long q, long k, long qLen, long kLen) {
      return qIds[row(b, qIds.length)][(int) q] == kIds[row(b, kIds.length)][(int) k];
    }

    @Override
    int classify(int b, int h, long q0, long q1, long k0, long k1, long qLen, long kLen) {
      int[] qs = qIds[row(b, qIds.length)];
      int[] ks = kIds[row(b, kIds.length)];
      int qmin = qs[(int) q0];
      int qmax = qs[(int) q1 - 1];
      int kmin = ks[(int) k0];
      int kmax = ks[(int) k1 - 1];
      if (!sorted) {
        for (int q = (int) q0; q < q1; q++) {
          qmin = Math.min(qmin, qs[q]);
          qmax = Math.max(qmax, qs[q]);
        }
        for (int k = (int) k0; k < k1; k++) {
          kmin = Math.min(kmin, ks[k]);
          kmax = Math.max(kmax, ks[k]);
        }
      }
      if (qmax < kmin || kmax < qmin) {
        return EMPTY;
      }
      return qmin == qmax && kmin == kmax && qmin == kmin ? FULL : PARTIAL;
    }

    @Override
    void encode(EncodedMask.Builder out) {
      long[] n = out.node(OP_DOCUMENT);
      n[3] = qIds.length == 1 ? 0 : qIds[0].length;
      n[4] = kIds.length == 1 ? 0 : kIds[0].length;
      n[5] = sorted ? 1 : 0;
      n[9] = out.upload(qIds);
      n[10] = kIds == qIds ? n[9] : out.upload(kIds);
    }

    @Override
    int batchRows() {
      return Math.max(qIds.length, kIds.length);
    }

    @Override
    void validate(int batch, int heads, long seqQ, long seqK) {
      requireRows("documents", "query segment ids", qIds.length, batch, "batch");
      requireRows("documents", "key segment ids", kIds.length, batch, "batch");
      if (qIds[0].length != seqQ) {
        throw new IllegalArgumentException("documents: query segment ids have " + qIds[0].length
            + " entries per batch but seqQ = " + seqQ + "; there must be one id per query position");
      }
      if (kIds[0].length != seqK) {
        throw new IllegalArgumentException("documents: key segment ids have " + kIds[0].length
            + " entries per batch but seqK = " + seqK + "; there must be one id per key position");
      }
    }

    @Override
    public String toString() {
      return "documents(" + qIds.length + " x " + qIds[0].length + (kIds == qIds ? "" : ", keys " + kIds.length
          + " x " + kIds[0].length) + (sorted ? ", sorted" : "") + ")";
    }
  }

  static final class Blocks extends Leaf {
    final int blockRows;
    final int blockCols;
    final int rows;
    final int cols;
    final byte[][] bitmap; // [H or 1][rows * cols], 0 or 1

    Blocks(int blockRows, int blockCols, int rows, int cols, byte[][] bitmap) {
      this.blockRows = blockRows;
      this.blockCols = blockCols;
      this.rows = rows;
      this.cols = cols;
      this.bitmap = bitmap;
    }

    boolean set(int h, long qb, long kb) {
      return qb < rows && kb < cols && bitmap[row(h, bitmap.length)][(int) (qb * cols + kb)] != 0;
    }

    @Override
    boolean visible(int b, int h, long q, long k, long qLen, long kLen) {
      return set(h, q / blockRows, k / blockCols);
    }

    @Override
    int classify(int b, int h, long q0, long q1, long k0, long k1, long qLen, long kLen) {
      long qb1 = (q1 - 1) / blockRows;
      long kb1 = (k1 - 1) / blockCols;
      boolean any = false;
      boolean all = true;
      for (long qb = q0 / blockRows; qb <= qb1; qb++) {
        for (long kb = k0 / blockCols; kb <= kb1; kb++) {
          boolean s = set(h, qb, kb);
          any |= s;
          all &= s;
        }
      }
      return all ? FULL : any ? PARTIAL : EMPTY;
    }

    @Override
    void encode(EncodedMask.Builder out) {
      long[] n = out.node(OP_BLOCKS);
      n[3] = blockRows;
      n[4] = blockCols;
      n[5] = rows;
      n[6] = cols;
      n[8] = bitmap.length == 1 ? 0 : (long) rows * cols;
      n[9] = out.upload(bitmap);
    }

    @Override
    int headRows() {
      return bitmap.length;
    }

    @Override
    void validate(int batch, int heads, long seqQ, long seqK) {
      requireRows("blocks", "the block bitmap", bitmap.length, heads, "heads");
    }

    @Override
    public String toString() {
      return "blocks(" + bitmap.length + " x " + rows + " x " + cols + " of " + blockRows + " x " + blockCols + ")";
    }
  }

  static final class VerticalSlash extends Leaf {
    final int[][] columns; // [H or 1][*] sorted ascending, distinct
    final int[][] slashes; // [H or 1][*] sorted ascending, distinct
    final long offset;
    final boolean bottomRight;

    VerticalSlash(int[][] columns, int[][] slashes, long offset, boolean bottomRight) {
      this.columns = columns;
      this.slashes = slashes;
      this.offset = offset;
      this.bottomRight = bottomRight;
    }

    private static boolean contains(int[] sorted, long x) {
      return x >= Integer.MIN_VALUE && x <= Integer.MAX_VALUE && Arrays.binarySearch(sorted, (int) x) >= 0;
    }

    @Override
    boolean visible(int b, int h, long q, long k, long qLen, long kLen) {
      long diag = q + diagOffset(offset, bottomRight, qLen, kLen) - k;
      return contains(columns[row(h, columns.length)], k) || contains(slashes[row(h, slashes.length)], diag);
    }

    /** First index with a[i] >= x (a sorted). */
    private static int lowerBound(int[] a, long x) {
      int lo = 0;
      int hi = a.length;
      while (lo < hi) {
        int mid = (lo + hi) >>> 1;
        if (a[mid] < x) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      return lo;
    }

    @Override
    int classify(int b, int h, long q0, long q1, long k0, long k1, long qLen, long kLen) {
      int[] cols = columns[row(h, columns.length)];
      long count = lowerBound(cols, k1) - lowerBound(cols, k0);
      if (count == k1 - k0) {
        return FULL;
      }
      int[] sl = slashes[row(h, slashes.length)];
      long off = diagOffset(offset, bottomRight, qLen, kLen);
      long dlo = q0 + off - (k1 - 1);
      long dhi = q1 - 1 + off - k0;
      int s = lowerBound(sl, dlo);
      boolean slash = s < sl.length && sl[s] <= dhi;
      return count > 0 || slash ? PARTIAL : EMPTY;
    }

    private static int maxLength(int[][] rows) {
      int m = 0;
      for (int[] r : rows) {
        m = Math.max(m, r.length);
      }
      return m;
    }

    /** Rows padded at the end with INT32_MAX to a common length. */
    private static int[][] padded(int[][] rows, int length) {
      int[][] out = new int[rows.length][];
      for (int i = 0; i < rows.length; i++) {
        out[i] = Arrays.copyOf(rows[i], length);
        Arrays.fill(out[i], rows[i].length, length, Integer.MAX_VALUE);
      }
      return out;
    }

    @Override
    void encode(EncodedMask.Builder out) {
      int colLen = maxLength(columns);
      int slashLen = maxLength(slashes);
      long[] n = out.node(OP_VERTICAL_SLASH);
      n[1] = offset;
      n[2] = bottomRight ? 1 : 0;
      n[3] = colLen;
      n[4] = slashLen;
      n[5] = 0;
      n[6] = slashes.length == 1 ? 0 : slashLen;
      n[7] = 0;
      n[8] = columns.length == 1 ? 0 : colLen;
      n[9] = colLen == 0 ? 0 : out.upload(padded(columns, colLen));
      n[10] = slashLen == 0 ? 0 : out.upload(padded(slashes, slashLen));
    }

    @Override
    int headRows() {
      return Math.max(columns.length, slashes.length);
    }

    @Override
    void validate(int batch, int heads, long seqQ, long seqK) {
      requireRows("verticalSlash", "columnsPerHead", columns.length, heads, "heads");
      requireRows("verticalSlash", "slashesPerHead", slashes.length, heads, "heads");
    }

    @Override
    public String toString() {
      return "verticalSlash(" + columns.length + " heads, " + maxLength(columns) + " columns, " + maxLength(slashes)
          + " slashes)";
    }
  }
}
