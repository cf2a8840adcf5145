package io.github.llmkernels.attention;

/**
 * MInference block top-k ({@code _build_block_index}): block scores {@code scale * qbar . kbar}
 * from the mean of each query block's and key block's real rows; each query block keeps its
 * {@code topK} best causally reachable key blocks (ties to the lower block), plus its diagonal
 * block when {@code forceDiagonal} (counted in the budget).
 *
 * @param topK key blocks per query block, >= 0 (0 keeps nothing, or only the diagonal)
 * @param block query and key block of the layout
 * @param forceDiagonal always keep the key block holding the query block's last query
 * @param scale score scale, 0 = 1/sqrt(d)
 */
public record BlockTopKOptions(int topK, int block, boolean forceDiagonal, double scale) implements PrefillOptions {
  private static final String R = "BlockTopKOptions";

  public BlockTopKOptions {
    PrefillChecks.nonNegative(R, "topK", topK);
    PrefillChecks.block(R, block);
    PrefillChecks.scale(R, scale);
  }

  /** top 100 blocks of 64, no forced diagonal. */
  public static BlockTopKOptions defaults() {
    return new BlockTopKOptions(100, 64, false, 0);
  }

  public BlockTopKOptions withTopK(int k) {
    return new BlockTopKOptions(k, block, forceDiagonal, scale);
  }

  public BlockTopKOptions withBlock(int b) {
    return new BlockTopKOptions(topK, b, forceDiagonal, scale);
  }

  public BlockTopKOptions withForceDiagonal(boolean force) {
    return new BlockTopKOptions(topK, block, force, scale);
  }

  public BlockTopKOptions withScale(double s) {
    return new BlockTopKOptions(topK, block, forceDiagonal, s);
  }

  @Override
  public PrefillMethod method() {
    return PrefillMethod.BLOCK_TOP_K;
  }
}
