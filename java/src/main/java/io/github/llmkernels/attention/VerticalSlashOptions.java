package io.github.llmkernels.attention;

/**
 * MInference vertical-slash (MInference 1.0, {@code vertical_and_slash_kernel}): per (batch,
 * query head) the softmax attention of the last {@code lastQ} queries is summed per key column
 * and per diagonal; the head keeps the first {@code forcedColumns} columns and the
 * {@code forcedSlashes} diagonals nearest the causal one, then the best columns up to
 * {@code verticalSize} and the best diagonals up to {@code slashSize} (ties to the lower index).
 *
 * <p>Layout: every diagonal marks the key blocks it crosses in each query block. Columns, by
 * {@link ColumnMode}: TOKENS (the default, as the reference's {@code column_index}) keeps them as
 * a token list beside the tiles ({@link BlockLayout#columns}): a query computes a column only
 * where its key block is not already listed, so a column costs one key per query instead of a
 * block; BLOCKS inflates each column to its whole key block in the query blocks that can see it.
 * TOKENS never computes more pairs than BLOCKS (and so keeps at most the same mass); how much it
 * saves depends on how much of the grid the diagonals already cover: with the default 6096
 * diagonals they cover nearly every tile below 32K and the saving is small (BENCHMARKS.md).
 * {@link HeadInfo#columns()} reports |C| either way. Defaults are the reference's (tuned for
 * 128K+ prompts; see {@link #scaled(double)}).
 *
 * @param lastQ observation queries, 0 = min(64, Sq); at most Sq
 * @param verticalSize columns kept per head (clamped to Sk, at least forcedColumns)
 * @param slashSize diagonals kept per head (clamped to Sk, at least forcedSlashes)
 * @param forcedColumns always-kept first columns
 * @param forcedSlashes always-kept diagonals next to the causal one (offsets 0 ..)
 * @param block query and key block of the layout
 * @param scale score scale, 0 = 1/sqrt(d)
 * @param columnMode how the chosen columns enter the layout (not null)
 */
public record VerticalSlashOptions(int lastQ, int verticalSize, int slashSize, int forcedColumns, int forcedSlashes,
    int block, double scale, ColumnMode columnMode) implements PrefillOptions {
  private static final String R = "VerticalSlashOptions";

  /** How chosen columns enter the layout. */
  public enum ColumnMode {
    /** A token-level column list beside the tiles. */
    TOKENS,
    /** Each column inflated to its key block. */
    BLOCKS
  }
  /** The reference's observation window. */
  public static final int DEFAULT_LAST_Q = 64;

  public VerticalSlashOptions {
    PrefillChecks.nonNegative(R, "lastQ", lastQ);
    PrefillChecks.nonNegative(R, "verticalSize", verticalSize);
    PrefillChecks.nonNegative(R, "slashSize", slashSize);
    PrefillChecks.nonNegative(R, "forcedColumns", forcedColumns);
    PrefillChecks.nonNegative(R, "forcedSlashes", forcedSlashes);
    PrefillChecks.block(R, block);
    PrefillChecks.scale(R, scale);
    if (columnMode == null) {
      throw new IllegalArgumentException(R + ": columnMode must not be null (TOKENS or BLOCKS)");
    }
  }

  /** With the columns kept as tokens (the default mode). */
  public VerticalSlashOptions(int lastQ, int verticalSize, int slashSize, int forcedColumns, int forcedSlashes,
      int block, double scale) {
    this(lastQ, verticalSize, slashSize, forcedColumns, forcedSlashes, block, scale, ColumnMode.TOKENS);
  }

  /** lastQ 64, 1000 columns, 6096 diagonals, 30 forced columns, 100 forced diagonals, block 64, TOKENS. */
  public static VerticalSlashOptions defaults() {
    return new VerticalSlashOptions(0, 1000, 6096, 30, 100, 64, 0, ColumnMode.TOKENS);
  }

  public VerticalSlashOptions withColumnMode(ColumnMode mode) {
    return new VerticalSlashOptions(lastQ, verticalSize, slashSize, forcedColumns, forcedSlashes, block, scale, mode);
  }

  public VerticalSlashOptions withBudgets(int vertical, int slash) {
    return new VerticalSlashOptions(lastQ, vertical, slash, forcedColumns, forcedSlashes, block, scale, columnMode);
  }

  public VerticalSlashOptions withForced(int forcedColumnCount, int forcedSlashCount) {
    return new VerticalSlashOptions(lastQ, verticalSize, slashSize, forcedColumnCount, forcedSlashCount, block, scale,
        columnMode);
  }

  public VerticalSlashOptions withLastQ(int q) {
    return new VerticalSlashOptions(q, verticalSize, slashSize, forcedColumns, forcedSlashes, block, scale, columnMode);
  }

  public VerticalSlashOptions withBlock(int b) {
    return new VerticalSlashOptions(lastQ, verticalSize, slashSize, forcedColumns, forcedSlashes, b, scale, columnMode);
  }

  public VerticalSlashOptions withScale(double s) {
    return new VerticalSlashOptions(lastQ, verticalSize, slashSize, forcedColumns, forcedSlashes, block, s, columnMode);
  }

  /**
   * The reference's {@code minference_ratio}: verticalSize and slashSize times ratio (floor);
   * forced counts unchanged (sizes never drop below them at estimation).
   */
  public VerticalSlashOptions scaled(double ratio) {
    if (!(ratio >= 0) || Double.isInfinite(ratio)) {
      throw PrefillChecks.bad(R, "ratio", "be finite and >= 0", ratio);
    }
    return withBudgets((int) Math.min(Integer.MAX_VALUE, Math.floor(verticalSize * ratio)),
        (int) Math.min(Integer.MAX_VALUE, Math.floor(slashSize * ratio)));
  }

  /** lastQ for Sq queries: the value, or min(64, Sq) for 0. */
  public int resolvedLastQ(int seqQ) {
    return lastQ == 0 ? Math.min(DEFAULT_LAST_Q, seqQ) : lastQ;
  }

  @Override
  public PrefillMethod method() {
    return PrefillMethod.VERTICAL_SLASH;
  }
}
