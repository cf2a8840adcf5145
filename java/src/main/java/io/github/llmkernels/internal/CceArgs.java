package io.github.llmkernels.internal;

/**
 * The C struct {@code llmk_cce_args} as a long[] (see {@link ArgStruct}); indices follow the
 * field order of llmk.h.
 */
public final class CceArgs extends ArgStruct<CceArgs> {
  public static final int STRUCT_BYTES = 0;
  public static final int N = 1;
  public static final int D = 2;
  public static final int V = 3;
  public static final int VOCAB_OFFSET = 4;
  public static final int VOCAB_TOTAL = 5;
  public static final int DTYPE = 6;
  public static final int TARGET_DTYPE = 7;
  public static final int IGNORE_INDEX = 8;
  public static final int SHIFT = 9;
  public static final int REDUCTION = 10;
  public static final int FLAGS = 11;
  public static final int SOFTCAP = 12;
  public static final int LABEL_SMOOTHING = 13;
  public static final int Z_LOSS_SCALE = 14;
  public static final int FILTER_EPS = 15;
  public static final int E = 16;
  public static final int C = 17;
  public static final int BIAS = 18;
  public static final int TARGETS = 19;
  public static final int LOSS = 20;
  public static final int LSE = 21;
  public static final int TARGET_LOGIT = 22;
  public static final int SUM_LOGITS = 23;
  public static final int GRAD_LOSS = 24;
  public static final int GRAD_LSE = 25;
  public static final int GRAD_E = 26;
  public static final int GRAD_C = 27;
  public static final int GRAD_BIAS = 28;
  public static final int DEVICE = 29;
  public static final int STREAM = 30;
  public static final int TILES_TOTAL = 31;
  public static final int TILES_SKIPPED = 32;
  private static final int FIELDS = 33;

  public static final long FLAG_SORT_VOCAB = 1;
  public static final long FLAG_FP32_ACCUM = 2;
  public static final long FLAG_DETERMINISTIC = 4;

  public CceArgs() {
    super(FIELDS);
  }
}
