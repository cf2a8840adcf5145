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

  // ---- LM head for the cut cross-entropy ---------------------------------------------------

  /** Exponent of the Zipf law of token frequencies in {@link #lmHead}. */
  public static final double ZIPF_EXPONENT = 1.5;

  /**
   * Inputs of a language-model head, shaped like a trained model's: E [N, D] ~ N(0, 1) and
   * C [V, D] ~ N(0, 1/D) give logits with N(0, 1) noise, and the last hidden unit carries a
   * unigram prior (E[:, D-1] = 1, C[j, D-1] = -1.5 ln(j + 1)): token frequencies follow a Zipf
   * law and a trained model's logits carry them, so most of the vocabulary is far below the top
   * (the loss is ~4 nats, a trained model's range, not the ln V of random logits). Targets follow
   * the same law; ignoreShare of them are the ignore index (-100).
   */
  public record LmHead(Tensor e, Tensor c, Tensor targets) implements AutoCloseable {
    @Override
    public void close() {
      e.close();
      c.close();
      targets.close();
    }
  }

  /** Builds {@link LmHead} inputs of dtype on the host. */
  public static LmHead lmHead(int n, int d, int v, DType dtype, double ignoreShare, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    float[] e = new float[Math.multiplyExact(n, d)];
    float[] c = new float[Math.multiplyExact(v, d)];
    double cStd = 1 / Math.sqrt(d);
    for (int i = 0; i < e.length; i++) {
      e[i] = (i % d == d - 1) ? 1f : (float) gaussian(rnd);
    }
    float[] prior = zipfPrior(v);
    for (int i = 0; i < c.length; i++) {
      c[i] = (i % d == d - 1) ? prior[i / d] : (float) (gaussian(rnd) * cStd);
    }
    long[] t = zipfTargets(rnd, n, v, ignoreShare, -100);
    int[] t32 = new int[n];
    for (int i = 0; i < n; i++) {
      t32[i] = (int) t[i];
    }
    return new LmHead(Tensor.fromFloats(e, dtype, n, d), Tensor.fromFloats(c, dtype, v, d), Tensor.of(t32, n));
  }

  /** -s ln(j + 1) for j < v: the log of Zipf(s) frequencies up to a constant. */
  public static float[] zipfPrior(int v) {
    float[] prior = new float[v];
    for (int j = 0; j < v; j++) {
      prior[j] = (float) (-ZIPF_EXPONENT * Math.log(j + 1.0));
    }
    return prior;
  }

  /** n targets drawn from Zipf(s) over [0, v), each replaced by ignore with probability ignoreShare. */
  public static long[] zipfTargets(SplittableRandom rnd, int n, int v, double ignoreShare, long ignore) {
    double[] cdf = new double[v];
    double sum = 0;
    for (int j = 0; j < v; j++) {
      sum += Math.pow(j + 1, -ZIPF_EXPONENT);
      cdf[j] = sum;
    }
    long[] t = new long[n];
    for (int i = 0; i < n; i++) {
      if (rnd.nextDouble() < ignoreShare) {
        t[i] = ignore;
        continue;
      }
      int j = Arrays.binarySearch(cdf, rnd.nextDouble() * sum);
      t[i] = Math.min(v - 1, j >= 0 ? j : -j - 1);
    }
    return t;
  }

  private static double gaussian(SplittableRandom rnd) {
    return Math.sqrt(-2 * Math.log(1 - rnd.nextDouble())) * Math.cos(2 * Math.PI * rnd.nextDouble());
  }
}
