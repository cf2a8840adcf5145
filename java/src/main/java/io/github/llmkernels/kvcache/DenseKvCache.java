package io.github.llmkernels.kvcache;

import io.github.llmkernels.tensor.Tensor;

/**
 * A compacted cache with the same number K of tokens per head: k and v [B, Hkv, K, d] and the
 * tokens' original positions I32 [B, Hkv, K] (ascending per head). Closing it closes all three.
 */
public record DenseKvCache(Tensor k, Tensor v, Tensor positions) implements AutoCloseable {
  public long batch() {
    return k.shape(0);
  }

  public long headsKv() {
    return k.shape(1);
  }

  /** Tokens per head. */
  public long length() {
    return k.shape(2);
  }

  @Override
  public void close() {
    k.close();
    v.close();
    positions.close();
  }
}
