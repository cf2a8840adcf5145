package io.github.llmkernels.internal;

/** The C struct {@code llmk_prefill_args} (see {@link ArgStruct}); indices follow llmk.h. */
public final class PrefillArgs extends ArgStruct<PrefillArgs> {
  public static final int METHOD = 1;
  public static final int BATCH = 2;
  public static final int HEADS_Q = 3;
  public static final int HEADS_KV = 4;
  public static final int SEQ_Q = 5;
  public static final int SEQ_K = 6;
  public static final int HEAD_DIM = 7;
  public static final int DTYPE = 8;
  public static final int SCALE = 9; // double
  public static final int BLOCK_Q = 10;
  public static final int BLOCK_K = 11;
  public static final int FLAGS = 12;
  public static final int LAST_Q = 13;
  public static final int VERTICAL_SIZE = 14;
  public static final int SLASH_SIZE = 15;
  public static final int FORCED_COLUMNS = 16;
  public static final int FORCED_SLASHES = 17;
  public static final int TOP_K = 18;
  public static final int GAMMA = 19; // double
  public static final int TAU = 20; // double
  public static final int MIN_BUDGET_BLOCKS = 21;
  public static final int MAX_BUDGET_BLOCKS = 22;
  public static final int STRIDE = 23;
  public static final int THRESHOLD = 24; // double
  public static final int Q = 25;
  public static final int K = 26;
  public static final int SCORES = 27;
  public static final int SELECTION = 28;
  public static final int HEAD_COUNTS = 29;
  public static final int HEAD_DIVERGENCE = 30;
  public static final int DEVICE = 31;
  public static final int STREAM = 32;
  public static final int COLUMNS = 33;
  private static final int FIELDS = 34;

  /** llmk_prefill_method codes. */
  public static final long VERTICAL_SLASH = 0;
  public static final long BLOCK_TOPK = 1;
  public static final long FLEX = 2;
  public static final long XATTN = 3;

  /** LLMK_PREFILL_FORCE_DIAGONAL: BLOCK_TOPK always keeps diag(qb). */
  public static final long FORCE_DIAGONAL = 2;

  /** LLMK_PREFILL_COLUMN_TOKENS: VERTICAL_SLASH writes its columns as a token list. */
  public static final long COLUMN_TOKENS = 4;

  /** Entries per head of head_counts: pattern, verticals, slashes, blocks, columns. */
  public static final int HEAD_COUNT_FIELDS = 5;

  public PrefillArgs() {
    super(FIELDS);
  }
}
