package io.github.llmkernels.kvcache;

/**
 * SnapKV scoring options. The observation window is the length of the query tensor given to
 * {@link KvScores#snapKv}.
 *
 * @param pooling pooling along keys (SnapKV: AVG)
 * @param kernel odd pooling kernel >= 1, or 0 for the pooling's default (5 for AVG, 7 for MAX)
 * @param scale softmax scale > 0, or 0 for {@code 1 / sqrt(d)}
 */
public record SnapKvOptions(KvPooling pooling, int kernel, double scale) {
  public SnapKvOptions {
    if (pooling == null) {
      throw new IllegalArgumentException("pooling must not be null");
    }
    if (kernel < 0 || kernel != 0 && kernel % 2 == 0) {
      throw new IllegalArgumentException("kernel must be odd and >= 1 (or 0 for the default); got " + kernel);
    }
    if (!(scale >= 0) || Double.isInfinite(scale)) {
      throw new IllegalArgumentException("scale must be finite and > 0 (or 0 for 1/sqrt(d)); got " + scale);
    }
  }

  /** AVG pooling, kernel 5, scale 1/sqrt(d) (SnapKV's defaults). */
  public static SnapKvOptions defaults() {
    return new SnapKvOptions(KvPooling.AVG, 0, 0);
  }

  /** The given pooling with its default kernel and scale 1/sqrt(d). */
  public static SnapKvOptions pooling(KvPooling pooling) {
    return new SnapKvOptions(pooling, 0, 0);
  }

  public SnapKvOptions withKernel(int kernel) {
    return new SnapKvOptions(pooling, kernel, scale);
  }

  public SnapKvOptions withScale(double scale) {
    return new SnapKvOptions(pooling, kernel, scale);
  }

  /** The kernel actually used (the default when 0; 1 without pooling). */
  public int resolvedKernel() {
    if (pooling == KvPooling.NONE) {
      return 1;
    }
    return kernel == 0 ? pooling.defaultKernel() : kernel;
  }

  /** The scale actually used for head dimension d. */
  public double resolvedScale(long d) {
    return scale == 0 ? 1.0 / Math.sqrt(d) : scale;
  }
}
