package io.github.llmkernels.bench;

import io.github.llmkernels.attention.MaskSpec;
import java.util.SplittableRandom;

/** The masks the attention benchmarks and the demo use, by name. */
public final class AttentionWorkloads {
  private AttentionWorkloads() {}

  /** Sliding window of the window benchmark (tokens to the left, causal) and its sinks. */
  public static final int WINDOW = 1024;
  public static final int SINKS = 64;

  /**
   * {@code causal}; {@code window}: sliding window {@value #WINDOW} OR {@value #SINKS} sinks;
   * {@code random90}: a seeded random 10% of the block x block tiles (90% sparse).
   */
  public static MaskSpec benchMask(String name, int seq, int block) {
    return switch (name) {
      case "causal" -> MaskSpec.causal();
      case "window" -> MaskSpec.slidingWindow(WINDOW).or(MaskSpec.sinks(SINKS));
      case "random90" -> randomBlocks(seq, block, 0.1, 42);
      default -> throw new IllegalArgumentException("mask must be causal, window or random90; got " + name);
    };
  }

  /** Each block x block tile kept with probability density (seeded). */
  public static MaskSpec randomBlocks(int seq, int block, double density, long seed) {
    int nb = (seq + block - 1) / block;
    boolean[][] bits = new boolean[nb][nb];
    SplittableRandom rng = new SplittableRandom(seed);
    for (boolean[] row : bits) {
      for (int j = 0; j < nb; j++) {
        row[j] = rng.nextDouble() < density;
      }
    }
    return MaskSpec.blocks(block, block, bits);
  }
}
