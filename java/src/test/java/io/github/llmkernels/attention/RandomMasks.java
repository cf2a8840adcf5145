package io.github.llmkernels.attention;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/** Random masks of every kind for a geometry, with what the classifier promises for each. */
final class RandomMasks {
  private RandomMasks() {}

  /** Leaf kinds the generator draws from. */
  enum Kind { ALL, NONE, CAUSAL, CAUSAL_OFFSET, WINDOW, SLIDING, SINKS, PREFIX, PREFIX_LM, DOCS_SORTED, DOCS_UNSORTED,
    DOCS_QK, DOCS_CU, BLOCKS, BLOCKS_PER_HEAD, BLOCK_LIST, VERTICAL_SLASH, TOPK }

  /**
   * A mask with its description and exactness: {@code emptyExact} means the classifier calls a
   * tile EMPTY iff it has no visible pair, {@code fullExact} that it calls it FULL iff it has no
   * masked pair. Every leaf is EMPTY-exact except DOCUMENT whose ids are unsorted or differ
   * between queries and keys; VERTICAL_SLASH calls FULL only for tiles covered by columns.
   */
  record Drawn(MaskSpec mask, String desc, boolean emptyExact, boolean fullExact) {}

  static Drawn leaf(Kind kind, SplittableRandom rnd, int batch, int heads, int seqQ, int seqK) {
    switch (kind) {
      case ALL:
        return exact(MaskSpec.all(), "all");
      case NONE:
        return exact(MaskSpec.none(), "none");
      case CAUSAL:
        return exact(MaskSpec.causal(), "causal");
      case CAUSAL_OFFSET: {
        long off = rnd.nextInt(-seqQ - 2, seqK + 3);
        return exact(MaskSpec.causal(off), "causal(" + off + ")");
      }
      case WINDOW: {
        long l = rnd.nextInt(0, seqK + 2);
        long r = rnd.nextInt(0, Math.max(1, seqK / 4 + 1));
        return exact(MaskSpec.window(l, r), "window(" + l + ", " + r + ")");
      }
      case SLIDING: {
        long l = rnd.nextInt(0, Math.max(1, seqK / 2 + 1));
        return exact(MaskSpec.slidingWindow(l), "slidingWindow(" + l + ")");
      }
      case SINKS: {
        long n = rnd.nextInt(0, seqK + 3);
        return exact(MaskSpec.sinks(n), "sinks(" + n + ")");
      }
      case PREFIX: {
        int[] p = prefixes(rnd, batch, seqK);
        return exact(MaskSpec.prefix(p), "prefix" + Arrays.toString(p));
      }
      case PREFIX_LM: {
        int[] p = prefixes(rnd, batch, seqK);
        // an OR of two exact leaves is not exact in general (a tile half causal, half prefix)
        return new Drawn(MaskSpec.prefixLm(p), "prefixLm" + Arrays.toString(p), false, false);
      }
      case DOCS_SORTED: {
        if (seqQ != seqK) {
          return leaf(Kind.DOCS_QK, rnd, batch, heads, seqQ, seqK);
        }
        int[][] ids = new int[rnd.nextBoolean() ? batch : 1][];
        for (int b = 0; b < ids.length; b++) {
          ids[b] = sortedIds(rnd, seqQ);
        }
        return exact(MaskSpec.documents(ids), "documents(sorted, " + ids.length + " rows)");
      }
      case DOCS_UNSORTED: {
        if (seqQ != seqK) {
          return leaf(Kind.DOCS_QK, rnd, batch, heads, seqQ, seqK);
        }
        int[][] ids = new int[rnd.nextBoolean() ? batch : 1][seqQ];
        int range = 1 + rnd.nextInt(4);
        for (int[] row : ids) {
          for (int i = 0; i < row.length; i++) {
            row[i] = rnd.nextInt(range);
          }
        }
        boolean sorted = seqQ <= 1 || range == 1;
        // min/max ranges of unsorted ids may overlap without a common id: EMPTY is not exact
        return new Drawn(MaskSpec.documents(ids), "documents(unsorted, " + ids.length + " rows)", sorted, true);
      }
      case DOCS_QK: {
        int[][] q = new int[batch][];
        int[][] k = new int[batch][];
        for (int b = 0; b < batch; b++) {
          q[b] = sortedIds(rnd, seqQ);
          k[b] = sortedIds(rnd, seqK);
        }
        return new Drawn(MaskSpec.documents(q, k), "documents(q, k)", false, true);
      }
      case DOCS_CU: {
        if (batch != 1 || seqQ != seqK) {
          return leaf(Kind.DOCS_SORTED, rnd, batch, heads, seqQ, seqK);
        }
        List<Integer> cu = new ArrayList<>(List.of(0));
        int t = 0;
        while (t < seqQ) {
          t = Math.min(seqQ, t + rnd.nextInt(0, Math.max(2, seqQ / 3)));
          cu.add(t);
        }
        if (cu.size() < 2) {
          cu.add(0);
        }
        int[] c = cu.stream().mapToInt(Integer::intValue).toArray();
        return exact(MaskSpec.documentsFromCumulativeLengths(c), "cuSeqlens" + Arrays.toString(c));
      }
      case BLOCKS:
      case BLOCKS_PER_HEAD: {
        int br = 1 + rnd.nextInt(40);
        int bc = 1 + rnd.nextInt(40);
        int rows = (seqQ + br - 1) / br + rnd.nextInt(-1, 2);
        int cols = (seqK + bc - 1) / bc + rnd.nextInt(-1, 2);
        rows = Math.max(rows, 0);
        cols = Math.max(cols, 0);
        double p = rnd.nextDouble();
        int h = kind == Kind.BLOCKS_PER_HEAD ? heads : 1;
        boolean[][][] bits = new boolean[h][rows][cols];
        for (boolean[][] m : bits) {
          for (boolean[] row : m) {
            for (int c = 0; c < cols; c++) {
              row[c] = rnd.nextDouble() < p;
            }
          }
        }
        return exact(MaskSpec.blocks(br, bc, bits), "blocks(" + br + "x" + bc + ", " + h + " heads, p " + p + ")");
      }
      case BLOCK_LIST: {
        int br = 1 + rnd.nextInt(64);
        int bc = 1 + rnd.nextInt(64);
        int rows = (seqQ + br - 1) / br;
        int cols = (seqK + bc - 1) / bc;
        int n = rows * cols == 0 ? 0 : rnd.nextInt(rows * cols + 1);
        int[][] pairs = new int[n][];
        for (int i = 0; i < n; i++) {
          pairs[i] = new int[] {rnd.nextInt(rows), rnd.nextInt(cols)};
        }
        return exact(MaskSpec.blocks(br, bc, rows, cols, pairs), "blockList(" + br + "x" + bc + ", " + n + ")");
      }
      case VERTICAL_SLASH: {
        int h = rnd.nextBoolean() ? heads : 1;
        int[][] cols = new int[h][];
        int[][] slashes = new int[h][];
        for (int i = 0; i < h; i++) {
          cols[i] = distinct(rnd, rnd.nextInt(0, Math.max(1, seqK / 4 + 2)), 0, seqK + 5);
          slashes[i] = distinct(rnd, rnd.nextInt(0, 6), -8, seqK + 2);
        }
        // Vertical columns over a whole tile make it FULL; a tile covered by slashes is PARTIAL.
        return new Drawn(MaskSpec.verticalSlash(cols, slashes), "verticalSlash(" + h + " heads)", true, false);
      }
      case TOPK: {
        int br = 1 + rnd.nextInt(48);
        int bc = 1 + rnd.nextInt(48);
        int rows = (seqQ + br - 1) / br;
        int cols = (seqK + bc - 1) / bc;
        int h = rnd.nextBoolean() ? heads : 1;
        float[][][] s = new float[h][rows][cols];
        for (float[][] m : s) {
          for (float[] row : m) {
            for (int c = 0; c < cols; c++) {
              row[c] = rnd.nextInt(5); // many ties
            }
          }
        }
        int k = rnd.nextInt(cols + 1);
        return exact(MaskSpec.topK(s, k, br, bc), "topK(" + k + " of " + cols + ", " + br + "x" + bc + ")");
      }
      default:
        throw new AssertionError(kind);
    }
  }

  /** A random composition of 1..maxLeaves leaves with and/or/not. */
  static Drawn composite(SplittableRandom rnd, int maxLeaves, int batch, int heads, int seqQ, int seqK) {
    Kind[] kinds = Kind.values();
    Drawn d = leaf(kinds[rnd.nextInt(kinds.length)], rnd, batch, heads, seqQ, seqK);
    MaskSpec m = d.mask();
    String desc = d.desc();
    int leaves = 1 + rnd.nextInt(maxLeaves);
    for (int i = 1; i < leaves; i++) {
      Drawn o = leaf(kinds[rnd.nextInt(kinds.length)], rnd, batch, heads, seqQ, seqK);
      MaskSpec other = rnd.nextInt(4) == 0 ? o.mask().not() : o.mask();
      String od = other == o.mask() ? o.desc() : "!" + o.desc();
      if (rnd.nextBoolean()) {
        m = m.and(other);
        desc = "(" + desc + " & " + od + ")";
      } else {
        m = m.or(other);
        desc = "(" + desc + " | " + od + ")";
      }
      if (rnd.nextInt(5) == 0) {
        m = m.not();
        desc = "!" + desc;
      }
    }
    return new Drawn(m, desc, false, false);
  }

  private static Drawn exact(MaskSpec m, String desc) {
    return new Drawn(m, desc, true, true);
  }

  static int[] prefixes(SplittableRandom rnd, int batch, int seqK) {
    int[] p = new int[rnd.nextBoolean() ? batch : 1];
    for (int i = 0; i < p.length; i++) {
      p[i] = rnd.nextInt(0, seqK + 3);
    }
    return p;
  }

  /** Non-decreasing document ids with random document lengths (some empty documents skipped). */
  static int[] sortedIds(SplittableRandom rnd, int n) {
    int[] ids = new int[n];
    int id = rnd.nextInt(3);
    for (int i = 0; i < n; i++) {
      if (i > 0 && rnd.nextInt(Math.max(2, n / 4)) == 0) {
        id += 1 + rnd.nextInt(2);
      }
      ids[i] = id;
    }
    return ids;
  }

  static int[] distinct(SplittableRandom rnd, int count, int lo, int hi) {
    return rnd.ints(lo, hi).distinct().limit(Math.min(count, hi - lo)).toArray();
  }
}
