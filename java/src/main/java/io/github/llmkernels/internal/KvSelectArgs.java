package io.github.llmkernels.internal;

/** The C struct {@code llmk_kv_select_args} (see {@link ArgStruct}); indices follow llmk.h. */
public final class KvSelectArgs extends ArgStruct<KvSelectArgs> {
  public static final int BATCH = 1;
  public static final int HEADS = 2;
  public static final int N = 3;
  public static final int SINKS = 4;
  public static final int RECENT = 5;
  public static final int MAX_KEEP = 6;
  public static final int SCORES = 7;
  public static final int BUDGETS = 8;
  public static final int KEPT = 9;
  public static final int DEVICE = 10;
  public static final int STREAM = 11;
  private static final int FIELDS = 12;

  public KvSelectArgs() {
    super(FIELDS);
  }
}
