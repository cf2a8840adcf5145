package io.github.llmkernels.attention;

/** The dynamic sparse prefill estimators of {@link SparsePrefill} (one per options record). */
public enum PrefillMethod {
  /** MInference vertical-slash from the last queries ({@link VerticalSlashOptions}). */
  VERTICAL_SLASH,
  /** MInference A-shape: sinks plus a local window, no estimation ({@link AShapeOptions}). */
  A_SHAPE,
  /** MInference block top-k from mean-pooled queries and keys ({@link BlockTopKOptions}). */
  BLOCK_TOP_K,
  /** FlexPrefill: query-aware or vertical-slash per head ({@link FlexPrefillOptions}). */
  FLEX_PREFILL,
  /** XAttention: antidiagonal scoring, cumulative mass per query block ({@link XAttentionOptions}). */
  XATTENTION
}
