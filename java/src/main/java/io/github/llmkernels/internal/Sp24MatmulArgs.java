package io.github.llmkernels.internal;

/** The C struct {@code llmk_sp24_matmul_args} (see {@link ArgStruct}); indices follow llmk.h. */
public final class Sp24MatmulArgs extends ArgStruct<Sp24MatmulArgs> {
  public static final int N = 1;
  public static final int M = 2;
  public static final int K = 3;
  public static final int DTYPE = 4;
  public static final int ACTIVATION = 5;
  public static final int X = 6;
  public static final int VALUES = 7;
  public static final int META = 8;
  public static final int W = 9;
  public static final int BIAS = 10;
  public static final int Y = 11;
  public static final int DEVICE = 12;
  public static final int STREAM = 13;
  private static final int FIELDS = 14;

  public Sp24MatmulArgs() {
    super(FIELDS);
  }
}
