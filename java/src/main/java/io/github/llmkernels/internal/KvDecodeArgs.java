package io.github.llmkernels.internal;

/** The C struct {@code llmk_kv_decode_args} (see {@link ArgStruct}); indices follow llmk.h. */
public final class KvDecodeArgs extends ArgStruct<KvDecodeArgs> {
  public static final int BATCH = 1;
  public static final int HEADS_Q = 2;
  public static final int HEADS_KV = 3;
  public static final int HEAD_DIM = 4;
  public static final int DTYPE = 5;
  public static final int OUT_DTYPE = 6;
  public static final int SCALE = 7;
  public static final int Q = 8;
  public static final int K = 9;
  public static final int V = 10;
  public static final int CU = 11;
  public static final int OUT = 12;
  public static final int LSE = 13;
  public static final int DEVICE = 14;
  public static final int STREAM = 15;
  private static final int FIELDS = 16;

  public KvDecodeArgs() {
    super(FIELDS);
  }
}
