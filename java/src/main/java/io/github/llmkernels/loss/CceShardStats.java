package io.github.llmkernels.loss;

import io.github.llmkernels.tensor.Tensor;

/**
 * Per-row statistics of one vocabulary shard, each [N] F32: the log-sum-exp over the shard's
 * columns, the target's logit (0 when the target lies in another shard), and the sum of the
 * shard's logits (used by label smoothing). Shards combine by log-add-exp, sum and sum
 * ({@link CceShards#combine}); with NCCL that is an all-reduce MAX, then SUM of exp(lse - max),
 * and a SUM of the other two. Ignored rows hold 0 everywhere.
 */
public record CceShardStats(Tensor lse, Tensor targetLogit, Tensor sumLogits) implements AutoCloseable {
  @Override
  public void close() {
    lse.close();
    targetLogit.close();
    sumLogits.close();
  }
}
