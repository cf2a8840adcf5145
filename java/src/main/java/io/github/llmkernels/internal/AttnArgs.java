package io.github.llmkernels.internal;

/** The C struct {@code llmk_attn_args} (see {@link ArgStruct}); indices follow llmk.h. */
public final class AttnArgs extends ArgStruct<AttnArgs> {
  public static final int BATCH = 1;
  public static final int HEADS_Q = 2;
  public static final int HEADS_KV = 3;
  public static final int SEQ_Q = 4;
  public static final int SEQ_K = 5;
  public static final int HEAD_DIM = 6;
  public static final int DTYPE = 7;
  public static final int OUT_DTYPE = 8;
  public static final int SCALE = 9;
  public static final int SOFTCAP = 10;
  public static final int Q = 11;
  public static final int K = 12;
  public static final int V = 13;
  public static final int OUT = 14;
  public static final int LSE = 15;
  public static final int LAYOUT_BATCH = 16;
  public static final int LAYOUT_HEADS = 17;
  public static final int BLOCK_Q = 18;
  public static final int BLOCK_K = 19;
  public static final int NODES = 20;
  public static final int NODE_COUNT = 21;
  public static final int Q_LENS = 22;
  public static final int K_LENS = 23;
  public static final int PARTIAL_PTR = 24;
  public static final int PARTIAL_IDX = 25;
  public static final int FULL_PTR = 26;
  public static final int FULL_IDX = 27;
  public static final int DEVICE = 28;
  public static final int STREAM = 29;
  public static final int COL_CAP = 30;
  public static final int COLUMNS = 31;
  private static final int FIELDS = 32;

  public AttnArgs() {
    super(FIELDS);
  }
}
