package io.github.llmkernels.attention;

/**
 * MInference A-shape ({@code streaming_forward(n_init, n_local)}): the first {@code sinks} keys
 * plus a causal window of {@code local} keys ending at each query, with no estimation: the
 * layout is {@code BlockLayout.compile(causal AND (sinks(sinks) OR slidingWindow(local - 1)))},
 * token-exact (PARTIAL tiles evaluate the mask), on every backend.
 *
 * @param sinks first keys every query sees, 0 .. Sk
 * @param local window length including the query's own key, 1 .. Sk
 * @param block query and key block of the layout
 */
public record AShapeOptions(int sinks, int local, int block) implements PrefillOptions {
  private static final String R = "AShapeOptions";

  public AShapeOptions {
    PrefillChecks.nonNegative(R, "sinks", sinks);
    if (local < 1) {
      throw PrefillChecks.bad(R, "local", "be >= 1", local);
    }
    PrefillChecks.block(R, block);
  }

  /** 128 sinks, local 3968, block 64. */
  public static AShapeOptions defaults() {
    return new AShapeOptions(128, 3968, 64);
  }

  public AShapeOptions withBlock(int b) {
    return new AShapeOptions(sinks, local, b);
  }

  /** The mask this layout compiles. */
  public MaskSpec mask() {
    return MaskSpec.causal().and(MaskSpec.sinks(sinks).or(MaskSpec.slidingWindow(local - 1L)));
  }

  @Override
  public PrefillMethod method() {
    return PrefillMethod.A_SHAPE;
  }

  /** A-shape scores nothing: always 0. */
  @Override
  public double scale() {
    return 0;
  }
}
