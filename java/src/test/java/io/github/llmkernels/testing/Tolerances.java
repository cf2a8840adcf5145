package io.github.llmkernels.testing;

/**
 * Every tolerance the tests use, in one place. Kernels that move bits (gather, compaction,
 * conversions) must be exact; arithmetic kernels add their atol/rtol here with the reason.
 */
public final class Tolerances {
  private Tolerances() {}

  /** Row gather copies bits: any difference, even in a NaN payload, is a bug. */
  public static final long GATHER_MAX_BIT_DIFFERENCES = 0;

  /** F16/BF16 conversions are defined to the bit (round to nearest even, quiet NaN rule). */
  public static final long CONVERSION_MAX_BIT_DIFFERENCES = 0;
}
