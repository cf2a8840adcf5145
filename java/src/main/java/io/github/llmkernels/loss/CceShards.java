package io.github.llmkernels.loss;

import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.util.List;

/**
 * Vocabulary-parallel cut cross-entropy: the classifier is split by rows across devices (or
 * processes), each holding C[vocabOffset, vocabOffset + V_shard). Every shard runs
 * {@link #forward} for partial statistics; the statistics are combined (here with
 * {@link #combine(List, Tensor, CceOptions)}, or across GPUs with three NCCL all-reduces, see below); {@link #loss} turns
 * the combined statistics into the loss; and each shard runs {@link #backward} with the combined
 * lse to get its own dC, dBias and a partial dE that the shards sum.
 *
 * <p>Across GPUs with NCCL (Bytedeco {@code org.bytedeco.cuda.nccl}), on each rank's stream
 * ({@code io.github.llmkernels.torch.NcclCceShards.allReduce} in the optional torch module does
 * the combining step):
 * <pre>{@code
 * CceShardStats s = CceShards.forward(e, cShard, targets, null, offset, vocabTotal, opts, exec);
 * // lse: all-reduce MAX into m, then exp(lse - m) all-reduce SUM into t, lse = m + log(t)
 * // (or all-gather the [N] vectors and combine them with CceShards.combine(list, targets, opts));
 * // ignored rows then hold log(ranks) in lse, which no later step reads;
 * // targetLogit and sumLogits: all-reduce SUM (ncclAllReduce(ptr, ptr, n, ncclFloat, ncclSum, comm, stream)).
 * Tensor loss = CceShards.loss(combined, targets, opts, vocabTotal);
 * CceGradients g = CceShards.backward(e, cShard, targets, null, offset, vocabTotal, combined.lse(),
 *     gradLoss, null, opts, exec);
 * // g.gradE(): all-reduce SUM across ranks; g.gradC(): this rank's rows of dC.
 * }</pre>
 * The rows a shard reports as ignored hold 0 in every statistic, so combining needs no mask.
 */
public final class CceShards {
  private static final String FORWARD = "CceShards.forward";
  private static final String BACKWARD = "CceShards.backward";

  private CceShards() {}

  /**
   * Partial statistics of one shard.
   *
   * @param e [N, D] F32/F16/BF16
   * @param cShard [V_shard, D] rows vocabOffset .. vocabOffset + V_shard - 1 of the classifier
   * @param targets [N] ids in the whole vocabulary [0, vocabTotal) or the ignore index
   * @param biasShard [V_shard] or null
   */
  public static CceShardStats forward(Tensor e, Tensor cShard, Tensor targets, Tensor biasShard, long vocabOffset,
      long vocabTotal, CceOptions options, Exec exec) {
    CceCall call = new CceCall(FORWARD, e, cShard, targets, biasShard, vocabOffset, vocabTotal, options, exec);
    call.select(call.inputOperands());
    Device device = e.device();
    Tensor lse = Tensor.allocate(DType.F32, device, call.n);
    Tensor targetLogit = null;
    Tensor sumLogits = null;
    try {
      targetLogit = Tensor.allocate(DType.F32, device, call.n);
      sumLogits = Tensor.allocate(DType.F32, device, call.n);
      call.forward(null, lse, targetLogit, sumLogits);
      return new CceShardStats(lse, targetLogit, sumLogits);
    } catch (RuntimeException ex) {
      for (Tensor t : new Tensor[] {lse, targetLogit, sumLogits}) {
        if (t != null) {
          t.close();
        }
      }
      throw ex;
    }
  }

  /**
   * Combines shard statistics (any devices; the result is on the host, F32 [N]): lse by
   * log-add-exp in double, target logits and logit sums by summation, in list order. Ignored rows
   * (per targets and the options' ignore index and shift) are 0 in the result, as in
   * {@link CutCrossEntropy#forward}.
   */
  public static CceShardStats combine(List<CceShardStats> shards, Tensor targets, CceOptions options) {
    if (shards == null || shards.isEmpty()) {
      throw new IllegalArgumentException("combine: shards must hold at least one CceShardStats");
    }
    int n = Math.toIntExact(shards.get(0).lse().numel());
    double[] max = new double[n];
    java.util.Arrays.fill(max, Double.NEGATIVE_INFINITY);
    float[][] lses = new float[shards.size()][];
    double[] targetLogit = new double[n];
    double[] sumLogits = new double[n];
    for (int s = 0; s < shards.size(); s++) {
      CceShardStats st = shards.get(s);
      if (st.lse().numel() != n || st.targetLogit().numel() != n || st.sumLogits().numel() != n) {
        throw new IllegalArgumentException("combine: shard " + s + " has " + st.lse().numel()
            + " rows but shard 0 has " + n);
      }
      lses[s] = st.lse().toFloatArray();
      float[] t = st.targetLogit().toFloatArray();
      float[] z = st.sumLogits().toFloatArray();
      for (int i = 0; i < n; i++) {
        max[i] = Math.max(max[i], lses[s][i]);
        targetLogit[i] += t[i];
        sumLogits[i] += z[i];
      }
    }
    float[] lse = new float[n];
    float[] tl = new float[n];
    float[] sl = new float[n];
    boolean[] ignored = ignoredRows(targets, options, n);
    for (int i = 0; i < n; i++) {
      if (ignored[i]) {
        continue;
      }
      double sum = 0;
      for (float[] part : lses) {
        sum += Math.exp(part[i] - max[i]);
      }
      lse[i] = (float) (max[i] + Math.log(sum));
      tl[i] = (float) targetLogit[i];
      sl[i] = (float) sumLogits[i];
    }
    return new CceShardStats(Tensor.of(lse, n), Tensor.of(tl, n), Tensor.of(sl, n));
  }

  /**
   * The loss from combined statistics (host tensors): per row as {@link CutCrossEntropy}, 0 at
   * ignored rows, reduced as the options say. Returns a host F32 tensor (scalar or [N]).
   */
  public static Tensor loss(CceShardStats combined, Tensor targets, CceOptions options, long vocabTotal) {
    if (combined == null || targets == null || options == null) {
      throw new IllegalArgumentException("loss: " + (combined == null ? "combined" : targets == null ? "targets"
          : "options") + " must not be null");
    }
    int n = Math.toIntExact(targets.numel());
    float[] lse = combined.lse().toFloatArray();
    float[] tl = combined.targetLogit().toFloatArray();
    float[] sl = combined.sumLogits().toFloatArray();
    if (lse.length != n) {
      throw new IllegalArgumentException("loss: statistics have " + lse.length + " rows but targets has " + n);
    }
    float[] rows = new float[n];
    double total = 0;
    int valid = 0;
    boolean[] ignored = ignoredRows(targets, options, n);
    for (int i = 0; i < n; i++) {
      if (ignored[i]) {
        continue;
      }
      double l = CutCrossEntropyRef.rowLoss(options, vocabTotal, lse[i], tl[i], sl[i]);
      rows[i] = (float) l;
      total += l;
      valid++;
    }
    return switch (options.reduction()) {
      case NONE -> Tensor.of(rows, n);
      case SUM -> Tensor.of(new float[] {(float) total});
      case MEAN -> Tensor.of(new float[] {(float) (total / valid)});
    };
  }

  /** Rows whose target (after the shift) is the ignore index or past the end. */
  private static boolean[] ignoredRows(Tensor targets, CceOptions options, int n) {
    if (targets == null || options == null) {
      throw new IllegalArgumentException((targets == null ? "targets" : "options") + " must not be null");
    }
    if (targets.numel() != n) {
      throw new IllegalArgumentException("targets has " + targets.numel() + " rows but the statistics have " + n);
    }
    boolean[] ignored = new boolean[n];
    try (Tensor host = targets.to(Device.CPU)) {
      for (int i = 0; i < n; i++) {
        long pos = (long) i + options.shift();
        ignored[i] = pos >= n || host.getLong(pos) == options.ignoreIndex();
      }
    }
    return ignored;
  }

  /**
   * One shard's gradients given the combined lse [N]: dC and dBias of the shard's rows and this
   * shard's part of dE (sum the parts over shards). Arguments as {@link CutCrossEntropy#backward}.
   */
  public static CceGradients backward(Tensor e, Tensor cShard, Tensor targets, Tensor biasShard, long vocabOffset,
      long vocabTotal, Tensor combinedLse, Tensor gradLoss, Tensor gradLse, CceOptions options, Exec exec) {
    CceCall call = new CceCall(BACKWARD, e, cShard, targets, biasShard, vocabOffset, vocabTotal, options, exec);
    call.select(call.inputOperands());
    return call.backwardAllocating(combinedLse, gradLoss, gradLse);
  }
}
