package io.github.llmkernels.bench;

import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.util.Arrays;
import java.util.SplittableRandom;

/** Realistic LLM shapes and inputs shared by the demo and the JMH benchmarks. */
public final class Workloads {
  private Workloads() {}

  /**
   * One layer of a KV cache.
   *
   * @param kvHeads key/value heads (Llama-3.1-8B: 8)
   * @param seqLen cached tokens per head
   * @param headDim head dimension (Llama-3.1-8B: 128)
   * @param kept tokens kept per head after compaction
   */
  public record KvLayer(int kvHeads, int seqLen, int headDim, int kept) {}

  /** Llama-3.1-8B: 8 KV heads of dim 128; keep the given fraction of seqLen tokens. */
  public static KvLayer llama8bLayer(int seqLen, double keepFraction) {
    return new KvLayer(8, seqLen, 128, Math.max(1, (int) (seqLen * keepFraction)));
  }

  /** src (1, kvHeads, seqLen, headDim) of dtype with normal values. */
  public static Tensor randomCache(KvLayer layer, DType dtype, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    Tensor t = Tensor.allocate(DType.F32, Device.CPU, 1, layer.kvHeads(), layer.seqLen(), layer.headDim());
    try {
      for (long i = 0; i < t.numel(); i++) {
        t.setDouble(i, rnd.nextDouble() * 2 - 1);
      }
      return dtype == DType.F32 ? t : t.convertTo(dtype);
    } finally {
      if (dtype != DType.F32) {
        t.close();
      }
    }
  }

  /** idx (1, kvHeads, kept): per head a random sorted subset of positions, as compaction keeps. */
  public static Tensor keepIndices(KvLayer layer, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    int[] all = new int[layer.kvHeads() * layer.kept()];
    int[] positions = new int[layer.seqLen()];
    for (int h = 0; h < layer.kvHeads(); h++) {
      for (int i = 0; i < positions.length; i++) {
        positions[i] = i;
      }
      for (int i = 0; i < layer.kept(); i++) { // partial Fisher-Yates: first `kept` are a sample
        int j = i + rnd.nextInt(positions.length - i);
        int tmp = positions[i];
        positions[i] = positions[j];
        positions[j] = tmp;
      }
      int[] chosen = Arrays.copyOf(positions, layer.kept());
      Arrays.sort(chosen);
      System.arraycopy(chosen, 0, all, h * layer.kept(), layer.kept());
    }
    return Tensor.of(all, 1, layer.kvHeads(), layer.kept());
  }
}
