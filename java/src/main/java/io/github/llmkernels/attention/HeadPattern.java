package io.github.llmkernels.attention;

/**
 * The pattern an estimator chose for one (batch, query head); {@link #code()} is the C ABI's
 * llmk_prefill_pattern value (the first entry of head_counts).
 */
public enum HeadPattern {
  A_SHAPE,
  VERTICAL_SLASH,
  BLOCK_TOP_K,
  /** FlexPrefill's query-aware pattern (pooled block attention, plus the minimum vertical-slash budget). */
  QUERY_AWARE,
  XATTENTION,
  /** Every causally reachable block (FlexPrefill's short-prompt fallback). */
  DENSE;

  /** The llmk_prefill_pattern code: 0 .. 5. */
  public int code() {
    return ordinal();
  }

  /** The pattern of a C ABI code; IllegalArgumentException for an unknown one. */
  public static HeadPattern of(long code) {
    if (code < 0 || code >= values().length) {
      throw new IllegalArgumentException("unknown llmk_prefill_pattern code " + code);
    }
    return values()[(int) code];
  }
}
