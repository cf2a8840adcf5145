package io.github.llmkernels.kvcache;

/**
 * Pooling of SnapKV scores along the keys (llmk_kv_pool): {@link #AVG} divides the window sum by
 * the kernel (zero padding at the edges, as PyTorch's avg_pool1d), {@link #MAX} takes the largest
 * score of the window clipped to [0, n).
 */
public enum KvPooling {
  NONE(0, 1),
  AVG(1, 5),
  MAX(2, 7);

  private final int code;
  private final int defaultKernel;

  KvPooling(int code, int defaultKernel) {
    this.code = code;
    this.defaultKernel = defaultKernel;
  }

  /** The llmk_kv_pool code. */
  public int code() {
    return code;
  }

  /** SnapKV's defaults: 5 for AVG, 7 for MAX (1 for NONE). */
  public int defaultKernel() {
    return defaultKernel;
  }
}
