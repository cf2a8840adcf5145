package io.github.llmkernels.torch;

import io.github.llmkernels.loss.CceShardStats;
import io.github.llmkernels.runtime.CudaStream;
import io.github.llmkernels.runtime.LlmKernelsException;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.nccl;
import org.bytedeco.cuda.nccl.ncclComm;
import org.bytedeco.javacpp.Pointer;

/**
 * Vocabulary-parallel cut cross-entropy across GPUs with NCCL (Bytedeco CUDA presets): combines
 * every rank's {@link CceShardStats} in place, so that each rank then holds the statistics of the
 * whole vocabulary. One rank per GPU, each with its rows C[offset, offset + V_shard):
 *
 * <pre>{@code
 * CudaStream stream = TorchStreams.current(device);            // torch's stream: the element-wise
 * Exec exec = Exec.stream(stream);                              // steps below run on it too
 * CceShardStats s = CceShards.forward(e, cShard, targets, null, offset, vocabTotal, opts, exec);
 * NcclCceShards.allReduce(s, comm, stream);                     // lse, target logit, logit sum
 * Tensor loss = CceShards.loss(s, targets, opts, vocabTotal);   // identical on every rank
 * CceGradients g = CceShards.backward(e, cShard, targets, null, offset, vocabTotal, s.lse(),
 *     gradLoss, null, opts, exec);
 * nccl.ncclAllReduce(gradEPointer, gradEPointer, n * d, nccl.ncclBfloat16, nccl.ncclSum, comm, cuStream);
 * }</pre>
 *
 * <p>lse combines by log-add-exp: an all-reduce MAX gives m, each rank replaces its lse by
 * exp(lse - m), an all-reduce SUM gives t, and lse = m + log t. The target logit and the logit sum
 * combine by SUM. Rows ignored on every rank hold 0 on each and log(ranks) in the combined lse,
 * which neither {@link io.github.llmkernels.loss.CceShards#loss} nor the backward reads.
 *
 * <p>Not yet run: no multi-GPU machine was available when this was written (it compiles against
 * the presets; the single-process equivalent, {@code CceShards.combine}, is tested).
 */
public final class NcclCceShards {
  private NcclCceShards() {}

  /**
   * Combines this rank's statistics (F32 [N] each, on the rank's GPU) with every other rank's, in
   * place, on {@code stream}, which must be torch's current stream of that device (the
   * element-wise steps run as torch operations there).
   */
  public static void allReduce(CceShardStats stats, ncclComm comm, CudaStream stream) {
    if (stats == null || comm == null || stream == null) {
      throw new IllegalArgumentException((stats == null ? "stats" : comm == null ? "comm" : "stream")
          + " must not be null");
    }
    long n = stats.lse().numel();
    CUstream_st cuStream = new CUstream_st(new RawAddress(stream.handle()));
    org.bytedeco.pytorch.Tensor lse = TorchTensors.toTorch(stats.lse());
    org.bytedeco.pytorch.Tensor max = lse.clone();
    allReduce(max, n, nccl.ncclMax, comm, cuStream);
    lse.sub_(max).exp_();
    allReduce(lse, n, nccl.ncclSum, comm, cuStream);
    lse.log_().add_(max);
    allReduce(TorchTensors.toTorch(stats.targetLogit()), n, nccl.ncclSum, comm, cuStream);
    allReduce(TorchTensors.toTorch(stats.sumLogits()), n, nccl.ncclSum, comm, cuStream);
  }

  private static void allReduce(org.bytedeco.pytorch.Tensor t, long count, int op, ncclComm comm,
      CUstream_st stream) {
    Pointer data = t.data_ptr();
    int status = nccl.ncclAllReduce(data, data, count, nccl.ncclFloat32, op, comm, stream);
    if (status != nccl.ncclSuccess) {
      throw new LlmKernelsException(status, "ncclAllReduce failed: " + nccl.ncclGetErrorString(status).getString());
    }
  }

  /** A borrowed raw address (the stream handle) as a JavaCPP pointer. */
  private static final class RawAddress extends Pointer {
    RawAddress(long address) {
      this.address = address;
    }
  }
}
