package io.github.llmkernels.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.tensor.DType;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The generator is deterministic per seed, and a planted pattern shows in softmax(QK^T / sqrt(d)):
 * the streaming head (profile 0) keeps most of its attention mass on its local window and sinks.
 */
class SyntheticAttentionTest {
  private static final int SEQ = 1024;

  private static SyntheticAttention.Config config(long seed) {
    return new SyntheticAttention.Config(SEQ, 4, 2, 64, DType.F32, seed, SyntheticAttention.PROFILES);
  }

  @Test
  void sameSeedSameTensorsOtherSeedOtherTensors() {
    try (SyntheticAttention.Inputs a = SyntheticAttention.generate(config(7));
        SyntheticAttention.Inputs b = SyntheticAttention.generate(config(7));
        SyntheticAttention.Inputs c = SyntheticAttention.generate(config(8))) {
      assertArrayEquals(a.q().toFloatArray(), b.q().toFloatArray());
      assertArrayEquals(a.k().toFloatArray(), b.k().toFloatArray());
      assertArrayEquals(a.v().toFloatArray(), b.v().toFloatArray());
      assertFalse(Arrays.equals(a.q().toFloatArray(), c.q().toFloatArray()));
    }
  }

  /** Mean over sampled queries of the causal softmax mass on keys i - window < j <= i or j < sinks. */
  @Test
  void streamingHeadAttendsToItsWindowAndSinks() {
    SyntheticAttention.Profile streaming = SyntheticAttention.PROFILES.get(0);
    try (SyntheticAttention.Inputs in = SyntheticAttention.generate(config(3))) {
      float[] q = in.q().toFloatArray(); // [1, 4, S, d]: query head 0 has profile 0
      float[] k = in.k().toFloatArray(); // [1, 2, S, d]: KV head 0 serves query heads 0 and 1
      int d = 64;
      double massSum = 0;
      int rows = 0;
      for (int i = 256; i < SEQ; i += 37) {
        double[] logits = new double[i + 1];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j <= i; j++) {
          double dot = 0;
          for (int t = 0; t < d; t++) {
            dot += (double) q[i * d + t] * k[j * d + t];
          }
          logits[j] = dot / Math.sqrt(d);
          max = Math.max(max, logits[j]);
        }
        double total = 0;
        double planted = 0;
        for (int j = 0; j <= i; j++) {
          double p = Math.exp(logits[j] - max);
          total += p;
          if (j > i - streaming.window() || j < streaming.sinks()) {
            planted += p;
          }
        }
        massSum += planted / total;
        rows++;
      }
      double mean = massSum / rows;
      // a window of 64 and 4 sinks are 6-27% of these rows' keys: uniform attention would give ~0.12
      assertTrue(mean > 0.5, "streaming head's mass on window + sinks: " + mean);
    }
  }
}
