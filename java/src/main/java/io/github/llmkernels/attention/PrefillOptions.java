package io.github.llmkernels.attention;

/**
 * Options of one dynamic sparse prefill estimator ({@link SparsePrefill#estimate}). Each record
 * validates its own parameters in its constructor; checks that depend on the sequence (windows
 * longer than the sequence, stride alignment) happen in {@code estimate}.
 */
public sealed interface PrefillOptions permits VerticalSlashOptions, AShapeOptions, BlockTopKOptions,
    FlexPrefillOptions, XAttentionOptions {

  /** The estimator these options select. */
  PrefillMethod method();

  /** Tile side of the produced layout (every estimator uses square tiles). */
  int block();

  /** Query block (tile rows) of the produced layout. */
  default int blockQ() {
    return block();
  }

  /** Key block (tile columns) of the produced layout. */
  default int blockK() {
    return block();
  }

  /** Estimator score scale; 0 = 1 / sqrt(d). */
  double scale();

  /** The scale used for head dimension d. */
  default double resolvedScale(long d) {
    return scale() == 0 ? 1.0 / Math.sqrt(d) : scale();
  }
}
