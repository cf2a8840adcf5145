package io.github.llmkernels.kvcache;

import io.github.llmkernels.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * The Java reference of the row moves of KV cache compaction, written for clarity. Rows are
 * moved as raw bits (any dtype): a cache [B, H, N, d] has rows of d elements, a positions array
 * [B, H, N] rows of one element. Every index is checked before anything is written.
 */
public final class KvCompactionRef {
  private KvCompactionRef() {}

  /** One row move of the in-place compaction: slot {@code from} to slot {@code to} of one head. */
  public record Move(int from, int to) {}

  /**
   * The moves of in-place hole filling for one head keeping {@code count} slots listed (strictly
   * ascending) in {@code kept[0 .. count)}: the kept slots at or beyond count move, in ascending
   * order, into the free slots below count, in ascending order. Sources (>= count) and
   * destinations (< count) are disjoint, so the moves may run in any order.
   */
  public static List<Move> inPlaceMoves(int[] kept, int count) {
    List<Move> moves = new ArrayList<>();
    boolean[] keptBelow = new boolean[count];
    List<Integer> sources = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      if (kept[i] < count) {
        keptBelow[kept[i]] = true;
      } else {
        sources.add(kept[i]);
      }
    }
    int next = 0;
    for (int slot = 0; slot < count; slot++) {
      if (!keptBelow[slot]) {
        moves.add(new Move(sources.get(next++), slot));
      }
    }
    return moves;
  }

  /**
   * dst[cu[bh] + i] = src[bh, kept[bh, i]] for i < cu[bh + 1] - cu[bh].
   *
   * @param src [B, H, N, ...] host
   * @param kept I32 [B, H, maxKeep] host
   * @param cu [B * H + 1]
   * @param dst [cu[B * H], ...] host, same dtype as src
   */
  public static void gatherVarlen(Tensor src, Tensor kept, long[] cu, Tensor dst) {
    long b = src.shape(0);
    long h = src.shape(1);
    long n = src.shape(2);
    long row = rowElements(src);
    int maxKeep = (int) kept.shape(2);
    int[] idx = kept.toIntArray();
    for (int bh = 0; bh < b * h; bh++) { // first pass: nothing is written if any index is bad
      for (int i = 0; i < cu[bh + 1] - cu[bh]; i++) {
        int j = idx[bh * maxKeep + i];
        if (j < 0 || j >= n) {
          throw new IllegalArgumentException(keptName(bh, h, i) + " = " + j + " is outside [0, N = " + n
              + "); nothing was written");
        }
      }
    }
    for (int bh = 0; bh < b * h; bh++) {
      for (int i = 0; i < cu[bh + 1] - cu[bh]; i++) {
        dst.copyElements(src, (bh * n + idx[bh * maxKeep + i]) * row, (cu[bh] + i) * row, row);
      }
    }
  }

  /** Checks kept lists for in-place compaction: strictly ascending, in [0, capacity). */
  public static void checkInPlace(int[] idx, int[][] counts, long h, int maxKeep, long capacity) {
    for (int bh = 0; bh < counts.length * h; bh++) {
      int c = counts[(int) (bh / h)][(int) (bh % h)];
      for (int i = 0; i < c; i++) {
        int j = idx[bh * maxKeep + i];
        if (j < 0 || j >= capacity) {
          throw new IllegalArgumentException(keptName(bh, h, i) + " = " + j + " is outside [0, capacity = "
              + capacity + "); nothing was written");
        }
        if (i > 0 && j <= idx[bh * maxKeep + i - 1]) {
          throw new IllegalArgumentException(keptName(bh, h, i) + " = " + j + " must be greater than "
              + keptName(bh, h, i - 1) + " = " + idx[bh * maxKeep + i - 1]
              + " (kept slots strictly ascending); nothing was written");
        }
      }
    }
  }

  /**
   * In-place hole filling of cache [B, H, capacity, ...] (host): afterwards slots 0 .. counts - 1
   * of each head hold exactly its kept rows; slots at or beyond the count are unchanged.
   */
  public static void compactInPlace(Tensor cache, Tensor kept, int[][] counts) {
    long h = cache.shape(1);
    long capacity = cache.shape(2);
    long row = rowElements(cache);
    int maxKeep = (int) kept.shape(2);
    int[] idx = kept.toIntArray();
    checkInPlace(idx, counts, h, maxKeep, capacity);
    for (int bh = 0; bh < counts.length * h; bh++) {
      int c = counts[(int) (bh / h)][(int) (bh % h)];
      int[] list = java.util.Arrays.copyOfRange(idx, bh * maxKeep, bh * maxKeep + c);
      for (Move m : inPlaceMoves(list, c)) {
        cache.copyElements(cache, (bh * capacity + m.from()) * row, (bh * capacity + m.to()) * row, row);
      }
    }
  }

  static long rowElements(Tensor t) {
    long rows = t.shape(0) * t.shape(1) * t.shape(2);
    return rows == 0 ? 1 : t.numel() / rows;
  }

  static String keptName(long bh, long h, long i) {
    return "kept[" + bh / h + ", " + bh % h + ", " + i + "]";
  }
}
