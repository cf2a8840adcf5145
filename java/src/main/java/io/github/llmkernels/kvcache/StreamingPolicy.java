package io.github.llmkernels.kvcache;

/**
 * How a {@link StreamingKvCache} scores its tokens when it must shrink back to its budget.
 * Position-based policies score the tokens' original positions (not their slots: in-place
 * compaction reorders slots).
 */
public sealed interface StreamingPolicy {
  /** KNorm: keep the keys of smallest norm. */
  record Knorm() implements StreamingPolicy {}

  /** StreamingLLM: the sinks plus the most recent tokens. */
  record Recency() implements StreamingPolicy {}

  /**
   * LaCache ladder: tokens whose position p has {@code p % rung == layer % rung} first (newest
   * first), then the newest of the rest ({@code kv_ladder_score(p, positions seen, layer, rung)}).
   */
  record Ladder(int layer, int rung) implements StreamingPolicy {
    public Ladder {
      if (layer < 0 || rung < 1) {
        throw new IllegalArgumentException("Ladder: layer must be >= 0 and rung >= 1; got " + layer + ", " + rung);
      }
    }
  }

  /**
   * SnapKV with the queries given to the last {@link StreamingKvCache#append(io.github.llmkernels.tensor.Tensor,
   * io.github.llmkernels.tensor.Tensor, io.github.llmkernels.tensor.Tensor)}; the window's own tokens are
   * always kept.
   */
  record SnapKv(SnapKvOptions options) implements StreamingPolicy {
    public SnapKv {
      if (options == null) {
        throw new IllegalArgumentException("SnapKv: options must not be null");
      }
    }
  }

  static StreamingPolicy knorm() {
    return new Knorm();
  }

  static StreamingPolicy recency() {
    return new Recency();
  }

  static StreamingPolicy ladder(int layer, int rung) {
    return new Ladder(layer, rung);
  }

  static StreamingPolicy snapKv(SnapKvOptions options) {
    return new SnapKv(options);
  }
}
