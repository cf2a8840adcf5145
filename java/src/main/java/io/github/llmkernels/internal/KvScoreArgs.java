package io.github.llmkernels.internal;

/** The C struct {@code llmk_kv_score_args} (see {@link ArgStruct}); indices follow llmk.h. */
public final class KvScoreArgs extends ArgStruct<KvScoreArgs> {
  public static final int SCORER = 1;
  public static final int BATCH = 2;
  public static final int HEADS_Q = 3;
  public static final int HEADS_KV = 4;
  public static final int N = 5;
  public static final int HEAD_DIM = 6;
  public static final int DTYPE = 7;
  public static final int Q_LEN = 8;
  public static final int POOL = 9;
  public static final int POOL_KERNEL = 10;
  public static final int SCALE = 11;
  public static final int LADDER_LAYER = 12;
  public static final int LADDER_RUNG = 13;
  public static final int Q = 14;
  public static final int K = 15;
  public static final int SCORES = 16;
  public static final int ATTN_SUM = 17;
  public static final int ATTN_COUNT = 18;
  public static final int DEVICE = 19;
  public static final int STREAM = 20;
  private static final int FIELDS = 21;

  /** llmk_kv_scorer codes. */
  public static final long KNORM = 0;
  public static final long RECENCY = 1;
  public static final long SNAPKV = 2;
  public static final long OBSERVED = 3;
  public static final long LADDER = 4;

  /** llmk_kv_pool codes. */
  public static final long POOL_NONE = 0;
  public static final long POOL_AVG = 1;
  public static final long POOL_MAX = 2;

  public KvScoreArgs() {
    super(FIELDS);
  }
}
