package io.github.llmkernels.attention;

import io.github.llmkernels.tensor.Device;
import java.util.Arrays;

/**
 * An immutable, composable description of which keys each query may attend to, evaluated
 * without ever materialising the dense mask.
 *
 * <p>Positions: query q in [0, qLen), key k in [0, kLen) of batch b and query head h, where qLen
 * and kLen are the sequence lengths of that batch (the padded seqQ / seqK, or the per-batch
 * lengths of a varlen layout). Positions outside the lengths are never visible. Several kinds
 * align queries to keys through the <em>aligned query</em> {@code qa = q + offset}, where the
 * offset is {@code kLen - qLen} for bottom-right alignment (the FlashAttention convention: the
 * last query sees the last key, as when a prompt of qLen tokens follows kLen - qLen cached
 * ones) or an explicit value for top-left alignment.
 *
 * <ul>
 *   <li>{@link #all()}: every pair. {@link #none()}: no pair.
 *   <li>{@link #causal()}: {@code k <= qa}, bottom-right aligned; {@link #causal(long)}: top-left
 *       with an explicit offset ({@code k <= q + offset}).
 *   <li>{@link #window(long, long)}: {@code qa - left <= k <= qa + right}, bottom-right aligned;
 *       {@link #slidingWindow(long)} = {@code window(left, 0)}, a causal sliding window of
 *       {@code left + 1} keys.
 *   <li>{@link #sinks(long)}: {@code k < n} (attention sinks, StreamingLLM's first tokens).
 *   <li>{@link #prefix(int...)}: {@code k < prefix[b]}; one value serves every batch.
 *       {@link #prefixLm(int...)} = {@code causal().or(prefix(...))}.
 *   <li>{@link #documents(int[][])}: {@code id[b][q] == id[b][k]} (packed documents: each token
 *       sees only its own document; combine with causal for causal packing).
 *       {@link #documents(int[][], int[][])} takes separate query and key ids;
 *       {@link #documentsFromCumulativeLengths(int...)} builds the ids of one packed batch from
 *       cu_seqlens. Ids that never decrease along the sequence make tile classification O(1).
 *   <li>{@link #blocks}: an explicit set of (query block, key block) pairs of a given mask block
 *       size, shared by every head or one set per query head. {@link #topK} derives one from
 *       block scores.
 *   <li>{@link #verticalSlash(int[][], int[][])}: MInference's pattern: keys in a list of columns,
 *       or on a list of diagonals {@code qa - k = s} (bottom-right aligned), per query head.
 *   <li>{@link #and}, {@link #or}, {@link #not}: composition. A mask encodes to at most
 *       {@value #MAX_NODES} nodes with an evaluation stack of at most {@value #MAX_DEPTH}.
 * </ul>
 *
 * <p>Tiles are classified conservatively as EMPTY / PARTIAL / FULL exactly as the native
 * kernels do ({@link #classify}): EMPTY and FULL are always right; every leaf is exact except
 * that DOCUMENT with unsorted or different query/key ids may call an empty tile PARTIAL, and
 * VERTICAL_SLASH calls a tile FULL only when its columns alone cover it; compositions combine
 * classes by min (AND), max (OR) and complement (NOT), which may say PARTIAL for a tile that is
 * empty or full.
 */
public final class MaskSpec {
  /** LLMK_MASK_MAX_NODES. */
  public static final int MAX_NODES = 32;
  /** LLMK_MASK_MAX_DEPTH. */
  public static final int MAX_DEPTH = 16;

  private static final MaskSpec ALL = new MaskSpec(new MaskNode.Constant(true));
  private static final MaskSpec NONE = new MaskSpec(new MaskNode.Constant(false));

  final MaskNode root;

  private MaskSpec(MaskNode root) {
    if (root.nodeCount() > MAX_NODES) {
      throw new IllegalArgumentException("mask has " + root.nodeCount() + " nodes; at most " + MAX_NODES
          + " are allowed (LLMK_MASK_MAX_NODES)");
    }
    if (root.depth() > MAX_DEPTH) {
      throw new IllegalArgumentException("mask needs an evaluation stack depth of " + root.depth() + "; at most "
          + MAX_DEPTH + " is allowed (LLMK_MASK_MAX_DEPTH): nest compositions less deeply");
    }
    this.root = root;
  }

  /**
   * Offsets, window sizes and sink counts beyond +-2^33 reach past any sequence (lengths are below
   * 2^31), so they are clamped there: the mask means the same, and the position arithmetic of the
   * kernels (q + offset - k in int64) cannot overflow. Long.MAX_VALUE is thus a fine "unbounded".
   */
  static final long MAX_REACH = 1L << 33;

  static long clampReach(long x) {
    return Math.max(-MAX_REACH, Math.min(MAX_REACH, x));
  }

  // ---- factories ---------------------------------------------------------------------------

  /** Every pair visible (dense attention). */
  public static MaskSpec all() {
    return ALL;
  }

  /** No pair visible. */
  public static MaskSpec none() {
    return NONE;
  }

  /** Causal, bottom-right aligned: {@code k <= q + (kLen - qLen)}. */
  public static MaskSpec causal() {
    return new MaskSpec(new MaskNode.Diagonal(false, 0, true, 0, 0));
  }

  /** Causal, top-left aligned with an explicit diagonal offset: {@code k <= q + offset}. */
  public static MaskSpec causal(long offset) {
    return new MaskSpec(new MaskNode.Diagonal(false, clampReach(offset), false, 0, 0));
  }

  /** Causal sliding window of {@code left + 1} keys ending at the aligned query: window(left, 0). */
  public static MaskSpec slidingWindow(long left) {
    return window(left, 0);
  }

  /**
   * Band {@code qa - left <= k <= qa + right} around the bottom-right aligned query
   * {@code qa = q + kLen - qLen}.
   */
  public static MaskSpec window(long left, long right) {
    if (left < 0 || right < 0) {
      throw new IllegalArgumentException("window: left and right must be >= 0; got left = " + left + ", right = "
          + right);
    }
    return new MaskSpec(new MaskNode.Diagonal(true, 0, true, clampReach(left), clampReach(right)));
  }

  /** The first n keys ({@code k < n}), visible to every query. */
  public static MaskSpec sinks(long n) {
    if (n < 0) {
      throw new IllegalArgumentException("sinks: n must be >= 0; got " + n);
    }
    return new MaskSpec(new MaskNode.Sinks(clampReach(n)));
  }

  /** {@code k < lengthsPerBatch[b]}; a single value applies to every batch. */
  public static MaskSpec prefix(int... lengthsPerBatch) {
    if (lengthsPerBatch == null || lengthsPerBatch.length == 0) {
      throw new IllegalArgumentException("prefix: lengthsPerBatch must hold one value, or one per batch");
    }
    for (int i = 0; i < lengthsPerBatch.length; i++) {
      if (lengthsPerBatch[i] < 0) {
        throw new IllegalArgumentException("prefix: lengthsPerBatch[" + i + "] = " + lengthsPerBatch[i]
            + " must be >= 0");
      }
    }
    return new MaskSpec(new MaskNode.Prefix(lengthsPerBatch.clone()));
  }

  /** Prefix-LM: the prefix is visible to every query, the rest causally: causal().or(prefix(...)). */
  public static MaskSpec prefixLm(int... lengthsPerBatch) {
    return causal().or(prefix(lengthsPerBatch));
  }

  /** Packed documents: {@code ids[b][q] == ids[b][k]} (one row shared by every batch, or B rows). */
  public static MaskSpec documents(int[][] segmentIds) {
    int[][] ids = copyRows("documents", "segmentIds", segmentIds);
    return new MaskSpec(new MaskNode.Document(ids, ids, nonDecreasing(ids)));
  }

  /** {@code qIds[b][q] == kIds[b][k]}: separate query and key segment ids ([B or 1][seqQ], [B or 1][seqK]). */
  public static MaskSpec documents(int[][] qIds, int[][] kIds) {
    int[][] q = copyRows("documents", "qIds", qIds);
    int[][] k = copyRows("documents", "kIds", kIds);
    if (q.length != k.length && q.length != 1 && k.length != 1) {
      throw new IllegalArgumentException("documents: qIds has " + q.length + " rows and kIds " + k.length
          + "; they must match (one row each per batch) or one must be shared (1 row)");
    }
    return new MaskSpec(new MaskNode.Document(q, k, nonDecreasing(q) && nonDecreasing(k)));
  }

  /**
   * Documents of one packed sequence (batch 1) given cumulative lengths {@code cu[0] = 0 <= cu[1]
   * <= ... <= cu[n]} (FlashAttention's cu_seqlens): token t belongs to document i when
   * {@code cu[i] <= t < cu[i + 1]}; the sequence has cu[n] tokens.
   */
  public static MaskSpec documentsFromCumulativeLengths(int... cuSeqlens) {
    if (cuSeqlens == null || cuSeqlens.length < 2) {
      throw new IllegalArgumentException("documentsFromCumulativeLengths: cuSeqlens needs at least 2 entries "
          + "(0 and the total)");
    }
    if (cuSeqlens[0] != 0) {
      throw new IllegalArgumentException("documentsFromCumulativeLengths: cuSeqlens[0] must be 0; got "
          + cuSeqlens[0]);
    }
    for (int i = 1; i < cuSeqlens.length; i++) {
      if (cuSeqlens[i] < cuSeqlens[i - 1]) {
        throw new IllegalArgumentException("documentsFromCumulativeLengths: cuSeqlens must be sorted "
            + "(non-decreasing); cuSeqlens[" + i + "] = " + cuSeqlens[i] + " < cuSeqlens[" + (i - 1) + "] = "
            + cuSeqlens[i - 1]);
      }
    }
    int[] ids = new int[cuSeqlens[cuSeqlens.length - 1]];
    for (int i = 0; i + 1 < cuSeqlens.length; i++) {
      Arrays.fill(ids, cuSeqlens[i], cuSeqlens[i + 1], i);
    }
    int[][] rows = {ids};
    return new MaskSpec(new MaskNode.Document(rows, rows, true));
  }

  /**
   * Explicit blocks: {@code bitmap[qb][kb]} says whether mask block (qb, kb) of
   * {@code blockRows x blockCols} positions is visible; positions beyond the bitmap are masked.
   * The mask block size need not equal the layout's tile size.
   */
  public static MaskSpec blocks(int blockRows, int blockCols, boolean[][] bitmap) {
    return blocks(blockRows, blockCols, new boolean[][][] {bitmap});
  }

  /** Explicit blocks per query head: {@code bitmapPerHead[h or 0][qb][kb]} (1 or Hq heads). */
  public static MaskSpec blocks(int blockRows, int blockCols, boolean[][][] bitmapPerHead) {
    checkBlockSize("blocks", blockRows, blockCols);
    if (bitmapPerHead == null || bitmapPerHead.length == 0) {
      throw new IllegalArgumentException("blocks: the bitmap must have at least one head");
    }
    int rows = -1;
    int cols = -1;
    byte[][] bits = new byte[bitmapPerHead.length][];
    for (int h = 0; h < bitmapPerHead.length; h++) {
      boolean[][] m = bitmapPerHead[h];
      if (m == null) {
        throw new IllegalArgumentException("blocks: bitmap of head " + h + " must not be null");
      }
      if (rows < 0) {
        rows = m.length;
        cols = m.length == 0 || m[0] == null ? 0 : m[0].length;
      }
      if (m.length != rows) {
        throw new IllegalArgumentException("blocks: every head's bitmap must have " + rows + " rows; head " + h
            + " has " + m.length);
      }
      bits[h] = new byte[rows * cols];
      for (int r = 0; r < rows; r++) {
        if (m[r] == null || m[r].length != cols) {
          throw new IllegalArgumentException("blocks: bitmap rows must all have " + cols + " columns; head " + h
              + " row " + r + " has " + (m[r] == null ? "null" : m[r].length));
        }
        for (int c = 0; c < cols; c++) {
          bits[h][r * cols + c] = (byte) (m[r][c] ? 1 : 0);
        }
      }
    }
    return new MaskSpec(new MaskNode.Blocks(blockRows, blockCols, rows, cols, bits));
  }

  /**
   * Explicit block list: {@code pairs[i] = {qBlock, kBlock}} in a grid of
   * {@code qBlocks x kBlocks} mask blocks of {@code blockRows x blockCols} positions.
   */
  public static MaskSpec blocks(int blockRows, int blockCols, int qBlocks, int kBlocks, int[][] pairs) {
    return blocks(blockRows, blockCols, qBlocks, kBlocks, new int[][][] {pairs});
  }

  /** Block lists per query head: {@code pairsPerHead[h or 0][i] = {qBlock, kBlock}}. */
  public static MaskSpec blocks(int blockRows, int blockCols, int qBlocks, int kBlocks, int[][][] pairsPerHead) {
    checkBlockSize("blocks", blockRows, blockCols);
    if (qBlocks < 0 || kBlocks < 0) {
      throw new IllegalArgumentException("blocks: qBlocks and kBlocks must be >= 0; got " + qBlocks + ", " + kBlocks);
    }
    if (pairsPerHead == null || pairsPerHead.length == 0) {
      throw new IllegalArgumentException("blocks: pairs must have at least one head");
    }
    boolean[][][] bitmap = new boolean[pairsPerHead.length][qBlocks][kBlocks];
    for (int h = 0; h < pairsPerHead.length; h++) {
      if (pairsPerHead[h] == null) {
        throw new IllegalArgumentException("blocks: pairs of head " + h + " must not be null");
      }
      for (int i = 0; i < pairsPerHead[h].length; i++) {
        int[] p = pairsPerHead[h][i];
        if (p == null || p.length != 2 || p[0] < 0 || p[0] >= qBlocks || p[1] < 0 || p[1] >= kBlocks) {
          throw new IllegalArgumentException("blocks: pair " + i + " of head " + h + " = " + Arrays.toString(p)
              + " must be {qBlock, kBlock} with 0 <= qBlock < " + qBlocks + " and 0 <= kBlock < " + kBlocks);
        }
        bitmap[h][p[0]][p[1]] = true;
      }
    }
    return blocks(blockRows, blockCols, bitmap);
  }

  /**
   * Vertical-slash pattern per query head ({@code [1 or Hq][*]}): key k is visible when it is one
   * of the head's columns, or when {@code qa - k} (qa bottom-right aligned) is one of its slash
   * offsets (0 = the causal diagonal, s > 0 = s keys before it). Columns must be >= 0; values must
   * be distinct per head and below {@code Integer.MAX_VALUE} (the encoding's padding); any order
   * (they are sorted here).
   */
  public static MaskSpec verticalSlash(int[][] columnsPerHead, int[][] slashesPerHead) {
    int[][] cols = sortedDistinct("columnsPerHead", columnsPerHead, 0);
    int[][] sl = sortedDistinct("slashesPerHead", slashesPerHead, Integer.MIN_VALUE);
    if (cols.length != sl.length && cols.length != 1 && sl.length != 1) {
      throw new IllegalArgumentException("verticalSlash: columnsPerHead has " + cols.length
          + " heads and slashesPerHead " + sl.length + "; they must match or one must be shared (1 head)");
    }
    return new MaskSpec(new MaskNode.VerticalSlash(cols, sl, 0, true));
  }

  /**
   * Top-k block selection: per head and query-block row of {@code scoresPerHead[h or 0][qb][kb]},
   * the k highest-scoring key blocks are visible (ties go to the lower block index), as mask
   * blocks of {@code blockRows x blockCols} positions. Scores must not be NaN; 0 <= k <= number
   * of key blocks.
   */
  public static MaskSpec topK(float[][][] scoresPerHead, int k, int blockRows, int blockCols) {
    checkBlockSize("topK", blockRows, blockCols);
    if (k < 0) {
      throw new IllegalArgumentException("topK: k must be >= 0; got " + k);
    }
    if (scoresPerHead == null || scoresPerHead.length == 0) {
      throw new IllegalArgumentException("topK: scoresPerHead must have at least one head");
    }
    boolean[][][] bitmap = new boolean[scoresPerHead.length][][];
    for (int h = 0; h < scoresPerHead.length; h++) {
      float[][] s = scoresPerHead[h];
      if (s == null) {
        throw new IllegalArgumentException("topK: scores of head " + h + " must not be null");
      }
      bitmap[h] = new boolean[s.length][];
      for (int r = 0; r < s.length; r++) {
        float[] row = s[r];
        if (row == null || (r > 0 && row.length != s[0].length)) {
          throw new IllegalArgumentException("topK: score rows must all have the same length; head " + h + " row "
              + r + " has " + (row == null ? "null" : row.length));
        }
        if (k > row.length) {
          throw new IllegalArgumentException("topK: k = " + k + " exceeds the number of key blocks (" + row.length
              + ")");
        }
        bitmap[h][r] = topRow(row, k, h, r);
      }
    }
    if (scoresPerHead.length > 1) {
      int rows = bitmap[0].length;
      for (int h = 1; h < bitmap.length; h++) {
        if (bitmap[h].length != rows || (rows > 0 && bitmap[h][0].length != bitmap[0][0].length)) {
          throw new IllegalArgumentException("topK: every head's scores must have the same shape as head 0");
        }
      }
    }
    return blocks(blockRows, blockCols, bitmap);
  }

  private static boolean[] topRow(float[] row, int k, int h, int r) {
    Integer[] order = new Integer[row.length];
    for (int i = 0; i < row.length; i++) {
      if (Float.isNaN(row[i])) {
        throw new IllegalArgumentException("topK: scoresPerHead[" + h + "][" + r + "][" + i + "] is NaN");
      }
      order[i] = i;
    }
    // Highest score first; equal scores: lower index first (Arrays.sort on objects is stable).
    Arrays.sort(order, (x, y) -> Float.compare(row[y], row[x]));
    boolean[] keep = new boolean[row.length];
    for (int i = 0; i < k; i++) {
      keep[order[i]] = true;
    }
    return keep;
  }

  // ---- composition -------------------------------------------------------------------------

  /** Visible where both are. */
  public MaskSpec and(MaskSpec other) {
    requireOperand("and", other);
    return new MaskSpec(new MaskNode.Binary(true, root, other.root));
  }

  /** Visible where either is. */
  public MaskSpec or(MaskSpec other) {
    requireOperand("or", other);
    return new MaskSpec(new MaskNode.Binary(false, root, other.root));
  }

  /** Visible where this is not (within the lengths). */
  public MaskSpec not() {
    return new MaskSpec(new MaskNode.Not(root));
  }

  // ---- evaluation --------------------------------------------------------------------------

  /**
   * The element predicate: may query q of batch b, query head h see key k, with this batch's
   * lengths qLen and kLen? False outside the lengths. This is the oracle the layouts and kernels
   * are tested against.
   */
  public boolean visible(int b, int h, long q, long k, long qLen, long kLen) {
    if (q < 0 || k < 0 || q >= qLen || k >= kLen) {
      return false;
    }
    return root.visible(b, h, q, k, qLen, kLen);
  }

  /**
   * The conservative class of tile {@code [q0, q1) x [k0, k1)} for batch b, query head h and
   * lengths qLen, kLen, exactly as {@code mask_tile_class} in mask_math.h: the tile is clipped
   * to the lengths (EMPTY if nothing is left), and a tile the lengths cut is at most PARTIAL.
   */
  public TileClass classify(int b, int h, long q0, long q1, long k0, long k1, long qLen, long kLen) {
    boolean cut = q1 > qLen || k1 > kLen;
    q1 = Math.min(q1, qLen);
    k1 = Math.min(k1, kLen);
    if (q0 >= q1 || k0 >= k1) {
      return TileClass.EMPTY;
    }
    int c = root.classify(b, h, q0, q1, k0, k1, qLen, kLen);
    return TileClass.of(cut && c == MaskNode.FULL ? MaskNode.PARTIAL : c);
  }

  /** True when the mask differs between batches (per-batch prefix or document ids). */
  public boolean dependsOnBatch() {
    return root.batchRows() > 1;
  }

  /** True when the mask differs between query heads (per-head blocks or vertical-slash). */
  public boolean dependsOnHeads() {
    return root.headRows() > 1;
  }

  /** Layout batch for a call with this batch: B when the mask depends on the batch, else 1. */
  public int layoutBatch(int batch) {
    return dependsOnBatch() ? batch : 1;
  }

  /** Layout heads for a call with Hq query heads: Hq when the mask depends on the head, else 1. */
  public int layoutHeads(int heads) {
    return dependsOnHeads() ? heads : 1;
  }

  /** Number of llmk_mask_node entries. */
  public int nodeCount() {
    return root.nodeCount();
  }

  /** Evaluation stack depth of the encoded program. */
  public int stackDepth() {
    return root.depth();
  }

  /**
   * Checks per-batch / per-head data against a call's geometry (rows 1 or B, 1 or Hq; one
   * document id per position); throws {@link IllegalArgumentException} naming the mask kind.
   */
  public void validate(int batch, int heads, long seqQ, long seqK) {
    root.validate(batch, heads, seqQ, seqK);
  }

  /**
   * Encodes the mask as llmk_mask_node words (host) with its data arrays uploaded to device.
   * The caller closes the result. Host encodings need the native library for raw addresses.
   */
  public EncodedMask encode(Device device) {
    return EncodedMask.of(root, device);
  }

  @Override
  public String toString() {
    return root.toString();
  }

  // ---- helpers -----------------------------------------------------------------------------

  private static void requireOperand(String op, MaskSpec other) {
    if (other == null) {
      throw new IllegalArgumentException(op + ": other mask must not be null");
    }
  }

  private static void checkBlockSize(String kind, int blockRows, int blockCols) {
    if (blockRows < 1 || blockCols < 1) {
      throw new IllegalArgumentException(kind + ": blockRows and blockCols must be >= 1; got " + blockRows + ", "
          + blockCols);
    }
  }

  private static int[][] copyRows(String kind, String name, int[][] rows) {
    if (rows == null || rows.length == 0) {
      throw new IllegalArgumentException(kind + ": " + name + " must have at least one row");
    }
    int[][] out = new int[rows.length][];
    for (int i = 0; i < rows.length; i++) {
      if (rows[i] == null || rows[i].length != rows[0].length) {
        throw new IllegalArgumentException(kind + ": " + name + " rows must all have the same length; row " + i
            + " has " + (rows[i] == null ? "null" : rows[i].length) + ", row 0 has " + rows[0].length);
      }
      out[i] = rows[i].clone();
    }
    return out;
  }

  private static boolean nonDecreasing(int[][] rows) {
    for (int[] r : rows) {
      for (int i = 1; i < r.length; i++) {
        if (r[i] < r[i - 1]) {
          return false;
        }
      }
    }
    return true;
  }

  private static int[][] sortedDistinct(String name, int[][] perHead, int min) {
    if (perHead == null || perHead.length == 0) {
      throw new IllegalArgumentException("verticalSlash: " + name + " must have at least one head");
    }
    int[][] out = new int[perHead.length][];
    for (int h = 0; h < perHead.length; h++) {
      if (perHead[h] == null) {
        throw new IllegalArgumentException("verticalSlash: " + name + "[" + h + "] must not be null");
      }
      int[] s = perHead[h].clone();
      Arrays.sort(s);
      for (int i = 0; i < s.length; i++) {
        if (s[i] < min || s[i] == Integer.MAX_VALUE) {
          throw new IllegalArgumentException("verticalSlash: " + name + "[" + h + "] holds " + s[i] + "; values must be"
              + (min == 0 ? " >= 0 and" : "") + " < Integer.MAX_VALUE (the padding value)");
        }
        if (i > 0 && s[i] == s[i - 1]) {
          throw new IllegalArgumentException("verticalSlash: " + name + "[" + h + "] holds " + s[i]
              + " twice; values must be distinct");
        }
      }
      out[h] = s;
    }
    return out;
  }
}
