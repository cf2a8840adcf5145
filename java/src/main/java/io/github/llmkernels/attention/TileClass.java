package io.github.llmkernels.attention;

/**
 * Class of a (query block, key block) tile under a mask, as the conservative classifier of
 * {@code native/include/llmk/mask_math.h} decides it: {@link #EMPTY} has no visible pair and is
 * skipped, {@link #FULL} has no masked pair and is computed without evaluating the mask,
 * {@link #PARTIAL} promises nothing (the kernels evaluate the element predicate on it).
 * The order EMPTY < PARTIAL < FULL is the one AND (minimum) and OR (maximum) use.
 */
public enum TileClass {
  EMPTY,
  PARTIAL,
  FULL;

  /** The C ABI code (llmk_tile_class): 0, 1, 2. */
  public int code() {
    return ordinal();
  }

  static TileClass of(int code) {
    return values()[code];
  }
}
