package io.github.llmkernels.internal;

/** The C struct {@code llmk_layout_args} (see {@link ArgStruct}); indices follow llmk.h. */
public final class LayoutArgs extends ArgStruct<LayoutArgs> {
  public static final int BATCH = 1;
  public static final int LAYOUT_BATCH = 2;
  public static final int LAYOUT_HEADS = 3;
  public static final int SEQ_Q = 4;
  public static final int SEQ_K = 5;
  public static final int BLOCK_Q = 6;
  public static final int BLOCK_K = 7;
  public static final int NODES = 8;
  public static final int NODE_COUNT = 9;
  public static final int Q_LENS = 10;
  public static final int K_LENS = 11;
  public static final int PARTIAL_PTR = 12;
  public static final int FULL_PTR = 13;
  public static final int PARTIAL_IDX = 14;
  public static final int FULL_IDX = 15;
  public static final int DEVICE = 16;
  public static final int STREAM = 17;
  /** U8 [layout_batch, layout_heads, nqb, nkb] tile selection, or 0 (every tile is classified). */
  public static final int SELECTION = 18;
  private static final int FIELDS = 19;

  public LayoutArgs() {
    super(FIELDS);
  }
}
