package io.github.llmkernels.attention;

import java.util.List;

/**
 * The result of {@link SparsePrefill#estimate}: the block layout to attend with (base mask
 * causal, layout B x Hq, or 1 x 1 for A-shape), what each head chose, the density and the time
 * the estimate took. Closing it closes the layout.
 */
public final class PrefillEstimate implements AutoCloseable {
  private final PrefillOptions options;
  private final BlockLayout layout;
  private final List<HeadInfo> heads;
  private double density = Double.NaN; // computed on first use: it reads the whole layout on the host
  private final long estimateNanos;

  PrefillEstimate(PrefillOptions options, BlockLayout layout, List<HeadInfo> heads, long estimateNanos) {
    this.options = options;
    this.layout = layout;
    this.heads = List.copyOf(heads);
    this.estimateNanos = estimateNanos;
  }

  /** The layout (owned: closed with this estimate). */
  public BlockLayout layout() {
    layout.requireOpen();
    return layout;
  }

  public PrefillOptions options() {
    return options;
  }

  /** What query head h of batch b chose. */
  public HeadInfo head(int b, int h) {
    if (b < 0 || b >= layout.batch() || h < 0 || h >= layout.heads()) {
      throw new IllegalArgumentException("PrefillEstimate.head: (b, h) = (" + b + ", " + h + ") must lie in [0, "
          + layout.batch() + ") x [0, " + layout.heads() + ")");
    }
    return heads.get(b * layout.heads() + h);
  }

  /** Every head, batch-major. */
  public List<HeadInfo> heads() {
    return heads;
  }

  /**
   * Computed (query, key) pairs over all pairs B x Hq x Sq x Sk: every listed tile counts with
   * its area clipped to the sequence (PARTIAL tiles are computed whole by the kernels), every
   * token column outside its row's tiles with the causal pairs it adds.
   */
  public synchronized double density() {
    if (Double.isNaN(density)) {
      density = SparsePrefill.density(layout());
    }
    return density;
  }

  /** Wall time of score + select + layout build, device work included. */
  public long estimateNanos() {
    return estimateNanos;
  }

  @Override
  public String toString() {
    return "PrefillEstimate(" + options.method() + ", density " + String.format("%.4f", density()) + ", "
        + String.format("%.3f", estimateNanos / 1e6) + " ms, " + layout + ")";
  }

  /** Closes the layout. Idempotent. */
  @Override
  public void close() {
    layout.close();
  }
}
