package io.github.llmkernels.attention;

/**
 * FlexPrefill (Alg. 1-3; {@code get_active_blocks}): per head, the last {@code lastQ} queries'
 * attention gives vertical and slash distributions; a head whose pooled attention estimate is
 * close to the true pooled distribution (sqrt of the Jensen-Shannon divergence below
 * {@code tau}) is query-aware: it keeps the minimal set of pooled block scores reaching
 * {@code gamma} of the mass, plus the minimum vertical-slash budget; otherwise it keeps vertical
 * and slash blocks whose counts come from the tokens reaching {@code gamma} of the mass. Budgets
 * in blocks lie in [ceil(minBudget / block), ceil(maxBudget / block)]. Prompts with
 * Sq <= max(2 block, minBudget blocks) run dense causal.
 *
 * @param gamma cumulative attention mass to cover, in (0, 1]
 * @param tau divergence threshold of the query-aware decision, in [0, 1]
 * @param minBudget minimum budget in tokens, >= 0
 * @param maxBudget maximum budget in tokens, >= minBudget ({@link Integer#MAX_VALUE} = none)
 * @param block query and key block of the layout
 * @param lastQ observation queries, 0 = min(block, Sq); at most Sq
 * @param scale score scale, 0 = 1/sqrt(d)
 */
public record FlexPrefillOptions(double gamma, double tau, int minBudget, int maxBudget, int block, int lastQ,
    double scale) implements PrefillOptions {
  private static final String R = "FlexPrefillOptions";

  public FlexPrefillOptions {
    PrefillChecks.fraction(R, "gamma", gamma);
    if (!(tau >= 0 && tau <= 1)) {
      throw PrefillChecks.bad(R, "tau", "be in [0, 1]", tau);
    }
    PrefillChecks.nonNegative(R, "minBudget", minBudget);
    PrefillChecks.nonNegative(R, "maxBudget", maxBudget);
    if (maxBudget < minBudget) {
      throw PrefillChecks.bad(R, "maxBudget", "be >= minBudget = " + minBudget, maxBudget);
    }
    PrefillChecks.block(R, block);
    PrefillChecks.nonNegative(R, "lastQ", lastQ);
    PrefillChecks.scale(R, scale);
  }

  /** gamma 0.9, tau 0.1, minBudget 1024, no maxBudget, block 128, lastQ = block. */
  public static FlexPrefillOptions defaults() {
    return new FlexPrefillOptions(0.9, 0.1, 1024, Integer.MAX_VALUE, 128, 0, 0);
  }

  public FlexPrefillOptions withGamma(double g) {
    return new FlexPrefillOptions(g, tau, minBudget, maxBudget, block, lastQ, scale);
  }

  public FlexPrefillOptions withTau(double t) {
    return new FlexPrefillOptions(gamma, t, minBudget, maxBudget, block, lastQ, scale);
  }

  public FlexPrefillOptions withBudgets(int min, int max) {
    return new FlexPrefillOptions(gamma, tau, min, max, block, lastQ, scale);
  }

  public FlexPrefillOptions withBlock(int b) {
    return new FlexPrefillOptions(gamma, tau, minBudget, maxBudget, b, lastQ, scale);
  }

  public FlexPrefillOptions withLastQ(int q) {
    return new FlexPrefillOptions(gamma, tau, minBudget, maxBudget, block, q, scale);
  }

  public FlexPrefillOptions withScale(double s) {
    return new FlexPrefillOptions(gamma, tau, minBudget, maxBudget, block, lastQ, s);
  }

  /** lastQ for Sq queries: the value, or min(block, Sq) for 0. */
  public int resolvedLastQ(int seqQ) {
    return lastQ == 0 ? Math.min(block, seqQ) : lastQ;
  }

  @Override
  public PrefillMethod method() {
    return PrefillMethod.FLEX_PREFILL;
  }
}
