package io.github.llmkernels.attention;

import io.github.llmkernels.tensor.DType;

/**
 * Options of {@link SparseAttention#forward}; immutable, built with {@link #builder()}.
 *
 * <ul>
 *   <li>{@code scale}: scores are {@code scale * q . k}; default ({@link #SCALE_AUTO})
 *       {@code 1 / sqrt(d)}. Must be finite and > 0.
 *   <li>{@code softcap}: {@code s = cap * tanh(s / cap)} after scaling (Gemma 2 uses 50 for
 *       attention); 0 (default) is off. Finite and >= 0.
 *   <li>{@code outputDType}: the dtype of out, null (default) = the input dtype, or F32 (lse is
 *       always F32).
 * </ul>
 */
public final class AttentionOptions {
  /** Scale meaning 1 / sqrt(head dim). */
  public static final double SCALE_AUTO = Double.NaN;

  private static final AttentionOptions DEFAULTS = builder().build();

  /** Bounds of scale and softcap: the kernels compute in fp32, where 1e-30 .. 1e30 and the
   * reciprocals stay normal numbers (same rule as llmk_attn_args). */
  static final double MIN_FACTOR = 1e-30;
  static final double MAX_FACTOR = 1e30;

  private final double scale;
  private final double softcap;
  private final DType outputDType;

  private AttentionOptions(Builder b) {
    scale = b.scale;
    softcap = b.softcap;
    outputDType = b.outputDType;
  }

  /** Scale 1/sqrt(d), no softcap, output in the input dtype. */
  public static AttentionOptions defaults() {
    return DEFAULTS;
  }

  public static Builder builder() {
    return new Builder();
  }

  public Builder toBuilder() {
    Builder b = new Builder();
    b.scale = scale;
    b.softcap = softcap;
    b.outputDType = outputDType;
    return b;
  }

  /** The configured scale ({@link #SCALE_AUTO} = NaN, or a value). */
  public double scale() {
    return scale;
  }

  /** The scale used for head dimension d. */
  public double resolvedScale(long d) {
    return Double.isNaN(scale) ? 1.0 / Math.sqrt(d) : scale;
  }

  public double softcap() {
    return softcap;
  }

  /** Output dtype, or null for the input's. */
  public DType outputDType() {
    return outputDType;
  }

  /** Output dtype for inputs of this dtype. */
  public DType resolvedOutputDType(DType input) {
    return outputDType == null ? input : outputDType;
  }

  @Override
  public String toString() {
    return "AttentionOptions{scale=" + (Double.isNaN(scale) ? "1/sqrt(d)" : scale) + ", softcap=" + softcap
        + ", outputDType=" + (outputDType == null ? "input" : outputDType) + "}";
  }

  /** Builder; every setter checks its argument and names the rule it broke. */
  public static final class Builder {
    private double scale = SCALE_AUTO;
    private double softcap = 0;
    private DType outputDType = null;

    private Builder() {}

    /** Score scale in [1e-30, 1e30] (kernels compute in fp32), or {@link #SCALE_AUTO} for 1/sqrt(d). */
    public Builder scale(double scale) {
      if (!Double.isNaN(scale) && !(scale >= MIN_FACTOR && scale <= MAX_FACTOR)) {
        throw new IllegalArgumentException("scale must be in [1e-30, 1e30] (or SCALE_AUTO); got " + scale);
      }
      this.scale = scale;
      return this;
    }

    /** Score softcap {@code cap * tanh(s / cap)}, 0 (off) or in [1e-30, 1e30]. */
    public Builder softcap(double softcap) {
      if (!(softcap == 0 || (softcap >= MIN_FACTOR && softcap <= MAX_FACTOR))) {
        throw new IllegalArgumentException("softcap must be 0 (off) or in [1e-30, 1e30]; got " + softcap);
      }
      this.softcap = softcap;
      return this;
    }

    /** Output dtype: null for the input dtype, or F32. */
    public Builder outputDType(DType outputDType) {
      if (outputDType != null && outputDType != DType.F32 && outputDType != DType.F16 && outputDType != DType.BF16) {
        throw new IllegalArgumentException("outputDType must be null (the input dtype) or F32; got " + outputDType);
      }
      this.outputDType = outputDType;
      return this;
    }

    public AttentionOptions build() {
      return new AttentionOptions(this);
    }
  }
}
