package io.github.llmkernels.kvcache;

import io.github.llmkernels.tensor.Tensor;

/**
 * Result of {@link DecodeAttention#forward}: out [B, Hq, d] and the natural-log log-sum-exp of the
 * scores lse [B, Hq] F32 (-inf, with out 0, for a head whose cache is empty). Closing it closes both.
 */
public record DecodeOutput(Tensor out, Tensor lse) implements AutoCloseable {
  @Override
  public void close() {
    out.close();
    lse.close();
  }
}
