package io.github.llmkernels.attention;

/**
 * What an estimator chose for one (batch, query head).
 *
 * @param batch b
 * @param head query head h
 * @param pattern the chosen pattern
 * @param verticals kept vertical columns (vertical-slash: |C| tokens) or vertical blocks (FlexPrefill: nV); 0 otherwise
 * @param slashes kept slash diagonals (vertical-slash: |D| offsets) or slash blocks (FlexPrefill: nS); 0 otherwise
 * @param blocks tiles of this head in the layout (estimators select causally reachable tiles only,
 *     so every selected tile is listed; A-shape: the tiles of its compiled mask)
 * @param columns vertical-slash's column count |C| (in the layout's token list with
 *     ColumnMode.TOKENS, inflated to key blocks with BLOCKS), 0 for the other methods
 * @param divergence FlexPrefill's sqrt(Jensen-Shannon divergence), NaN for the other methods and
 *     for FlexPrefill's dense fallback
 */
public record HeadInfo(int batch, int head, HeadPattern pattern, long verticals, long slashes, long blocks,
    long columns, double divergence) {}
