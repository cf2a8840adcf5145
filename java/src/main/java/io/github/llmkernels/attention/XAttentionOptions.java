package io.github.llmkernels.attention;

/**
 * XAttention ({@code xattn_estimate}, {@code find_blocks_chunked}): block importance from the
 * antidiagonals of every {@code stride x stride} sub-tile (queries reversed and keys reshaped
 * into rows of stride * d, softmax over the reshaped keys, summed per block); each query block
 * keeps key block 0 and its diagonal block, then the best blocks until their cumulative mass
 * reaches {@code threshold} of the row's. Needs {@code block % stride == 0} and
 * {@code (Sk - Sq) % stride == 0}; its cost is 1/(2 stride) of dense causal attention.
 *
 * @param stride antidiagonal stride S, >= 1, dividing block
 * @param threshold cumulative mass per query block, in (0, 1]
 * @param block query and key block of the layout
 * @param scale score scale, 0 = 1/sqrt(d) (divided by the stride, as the reference)
 */
public record XAttentionOptions(int stride, double threshold, int block, double scale) implements PrefillOptions {
  private static final String R = "XAttentionOptions";

  public XAttentionOptions {
    if (stride < 1) {
      throw PrefillChecks.bad(R, "stride", "be >= 1", stride);
    }
    PrefillChecks.fraction(R, "threshold", threshold);
    PrefillChecks.block(R, block);
    if (block % stride != 0) {
      throw PrefillChecks.bad(R, "block", "be a multiple of stride = " + stride, block);
    }
    PrefillChecks.scale(R, scale);
  }

  /** stride 8, threshold 0.9, block 128. */
  public static XAttentionOptions defaults() {
    return new XAttentionOptions(8, 0.9, 128, 0);
  }

  public XAttentionOptions withStride(int s) {
    return new XAttentionOptions(s, threshold, block, scale);
  }

  public XAttentionOptions withThreshold(double t) {
    return new XAttentionOptions(stride, t, block, scale);
  }

  public XAttentionOptions withBlock(int b) {
    return new XAttentionOptions(stride, threshold, b, scale);
  }

  public XAttentionOptions withScale(double s) {
    return new XAttentionOptions(stride, threshold, block, s);
  }

  @Override
  public PrefillMethod method() {
    return PrefillMethod.XATTENTION;
  }
}
