package io.github.llmkernels.loss;

import io.github.llmkernels.tensor.DType;

/**
 * Options of {@link CutCrossEntropy}; immutable, built with {@link #builder()}. Defaults follow
 * PyTorch's {@code cross_entropy} (ignore index -100, mean reduction, no smoothing) and Apple's CCE
 * (automatic gradient filtering, vocabulary sorting, fp32 accumulation).
 *
 * <p>Where the references differ, this library chooses:
 * <ul>
 *   <li>every target ignored with MEAN: NaN (PyTorch; Apple's CCE returns 0), gradients all zero;
 *   <li>label smoothing as in PyTorch: {@code (1 - ls) * nll + ls * (lse - mean_j z_j)} per row,
 *       averaged over non-ignored rows only (Liger's formulation gives the same value);
 *   <li>z-loss as Liger's {@code lse_square_scale}: {@code + zLossScale * lse^2} per row, included in
 *       the reduction;
 *   <li>softcap is applied after the bias: {@code z = cap * tanh((e . c + bias) / cap)} (Gemma 2, Apple);
 *   <li>shift s pairs row i of E with target {@code i + s}; the last s rows are ignored, and NONE
 *       still returns N losses (those rows give 0), so shapes never depend on the shift.
 * </ul>
 */
public final class CceOptions {
  /** Filter threshold meaning "machine epsilon of the input dtype / 32" (Apple's default). */
  public static final double FILTER_AUTO = Double.NaN;

  private final long ignoreIndex;
  private final int shift;
  private final double softcap;
  private final double labelSmoothing;
  private final double zLossScale;
  private final Reduction reduction;
  private final double filterEps;
  private final boolean sortVocab;
  private final boolean fp32Accumulation;
  private final boolean deterministic;

  private CceOptions(Builder b) {
    ignoreIndex = b.ignoreIndex;
    shift = b.shift;
    softcap = b.softcap;
    labelSmoothing = b.labelSmoothing;
    zLossScale = b.zLossScale;
    reduction = b.reduction;
    filterEps = b.filterEps;
    sortVocab = b.sortVocab;
    fp32Accumulation = b.fp32Accumulation;
    deterministic = b.deterministic;
  }

  /** The defaults: ignore -100, MEAN, automatic filtering, sorted vocabulary, fp32 accumulation. */
  public static CceOptions defaults() {
    return builder().build();
  }

  public static Builder builder() {
    return new Builder();
  }

  public Builder toBuilder() {
    Builder b = new Builder();
    b.ignoreIndex = ignoreIndex;
    b.shift = shift;
    b.softcap = softcap;
    b.labelSmoothing = labelSmoothing;
    b.zLossScale = zLossScale;
    b.reduction = reduction;
    b.filterEps = filterEps;
    b.sortVocab = sortVocab;
    b.fp32Accumulation = fp32Accumulation;
    b.deterministic = deterministic;
    return b;
  }

  public long ignoreIndex() {
    return ignoreIndex;
  }

  public int shift() {
    return shift;
  }

  /** Softcap (0 = off). */
  public double softcap() {
    return softcap;
  }

  public double labelSmoothing() {
    return labelSmoothing;
  }

  public double zLossScale() {
    return zLossScale;
  }

  public Reduction reduction() {
    return reduction;
  }

  /** The configured threshold: {@link #FILTER_AUTO} (NaN), 0 (off), or an explicit value. */
  public double filterEps() {
    return filterEps;
  }

  /**
   * The threshold used for inputs of this dtype: AUTO resolves to the dtype's machine epsilon / 32,
   * i.e. 2^-12 for BF16, 2^-15 for F16 and 2^-28 for F32.
   */
  public double resolvedFilterEps(DType dtype) {
    if (!Double.isNaN(filterEps)) {
      return filterEps;
    }
    return switch (dtype) {
      case BF16 -> 0x1p-12;
      case F16 -> 0x1p-15;
      default -> 0x1p-28;
    };
  }

  public boolean sortVocab() {
    return sortVocab;
  }

  public boolean fp32Accumulation() {
    return fp32Accumulation;
  }

  public boolean deterministic() {
    return deterministic;
  }

  @Override
  public String toString() {
    return "CceOptions{ignoreIndex=" + ignoreIndex + ", shift=" + shift + ", softcap=" + softcap
        + ", labelSmoothing=" + labelSmoothing + ", zLossScale=" + zLossScale + ", reduction=" + reduction
        + ", filterEps=" + (Double.isNaN(filterEps) ? "AUTO" : filterEps) + ", sortVocab=" + sortVocab
        + ", fp32Accumulation=" + fp32Accumulation + ", deterministic=" + deterministic + "}";
  }

  /** Builder; every setter checks its argument and names the rule it broke. */
  public static final class Builder {
    private long ignoreIndex = -100;
    private int shift = 0;
    private double softcap = 0;
    private double labelSmoothing = 0;
    private double zLossScale = 0;
    private Reduction reduction = Reduction.MEAN;
    private double filterEps = FILTER_AUTO;
    private boolean sortVocab = true;
    private boolean fp32Accumulation = true;
    private boolean deterministic = false;

    private Builder() {}

    /** Targets equal to this value are ignored (default -100, as PyTorch). */
    public Builder ignoreIndex(long ignoreIndex) {
      this.ignoreIndex = ignoreIndex;
      return this;
    }

    /** Pairs row i of E with target i + shift (1 for next-token prediction over unshifted labels). */
    public Builder shift(int shift) {
      if (shift < 0) {
        throw new IllegalArgumentException("shift must be >= 0; got " + shift);
      }
      this.shift = shift;
      return this;
    }

    /** Logit softcap {@code cap * tanh(z / cap)} (Gemma 2 uses 30); 0 turns it off. */
    public Builder softcap(double softcap) {
      if (!(softcap >= 0) || Double.isInfinite(softcap)) {
        throw new IllegalArgumentException("softcap must be finite and >= 0 (0 = off); got " + softcap);
      }
      this.softcap = softcap;
      return this;
    }

    /** Label smoothing in [0, 1], as PyTorch's cross_entropy. */
    public Builder labelSmoothing(double labelSmoothing) {
      if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) {
        throw new IllegalArgumentException("labelSmoothing must be in [0, 1]; got " + labelSmoothing);
      }
      this.labelSmoothing = labelSmoothing;
      return this;
    }

    /** Adds {@code zLossScale * lse^2} per row (PaLM's z-loss; 1e-4 is typical). */
    public Builder zLossScale(double zLossScale) {
      if (!(zLossScale >= 0) || Double.isInfinite(zLossScale)) {
        throw new IllegalArgumentException("zLossScale must be finite and >= 0; got " + zLossScale);
      }
      this.zLossScale = zLossScale;
      return this;
    }

    public Builder reduction(Reduction reduction) {
      if (reduction == null) {
        throw new IllegalArgumentException("reduction must not be null");
      }
      this.reduction = reduction;
      return this;
    }

    /**
     * Gradient filtering threshold in [0, 1]: the backward pass skips a logit tile when every
     * gradient entry there is below {@code eps * rowScale}, where rowScale is the size of the row's
     * gradient coefficients, max(|a|, |b|, |u|) (the row's upstream weight in the plain case; see
     * {@link CutCrossEntropy}). {@link #FILTER_AUTO} (the default) picks the input dtype's epsilon /
     * 32; 0 disables filtering.
     */
    public Builder filterEps(double filterEps) {
      if (!Double.isNaN(filterEps) && !(filterEps >= 0 && filterEps <= 1)) {
        throw new IllegalArgumentException("filterEps must be FILTER_AUTO (NaN) or in [0, 1]; got " + filterEps);
      }
      this.filterEps = filterEps;
      return this;
    }

    /** Backward visits vocabulary tiles by descending mean logit so more tiles can be skipped. */
    public Builder sortVocab(boolean sortVocab) {
      this.sortVocab = sortVocab;
      return this;
    }

    /** Accumulate dE and dC in fp32 when they are F16/BF16 (always the case on the CPU). */
    public Builder fp32Accumulation(boolean fp32Accumulation) {
      this.fp32Accumulation = fp32Accumulation;
      return this;
    }

    /**
     * Bitwise-reproducible results run to run (fixed-order reductions, no floating-point atomics).
     * The CPU kernels are always deterministic for a fixed thread count; on CUDA this costs time.
     */
    public Builder deterministic(boolean deterministic) {
      this.deterministic = deterministic;
      return this;
    }

    public CceOptions build() {
      return new CceOptions(this);
    }
  }
}
