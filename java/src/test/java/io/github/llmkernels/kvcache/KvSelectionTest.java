package io.github.llmkernels.kvcache;

import static io.github.llmkernels.kvcache.KvTestUtil.assertMentions;
import static io.github.llmkernels.kvcache.KvTestUtil.message;
import static io.github.llmkernels.kvcache.KvTestUtil.on;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Selection keeps the top-k by score with ties to the lower position (checked against a full
 * sort), forced sinks and recent tokens always, exactly the budget; AdaKV budgets then per-head
 * selection equal AdaKV's global top-k set.
 */
class KvSelectionTest {

  /** B, H, n, sinks, recent, distinct score values (few = many ties). */
  static final int[][] CASES = {
    {1, 1, 1, 0, 0, 1},
    {1, 2, 97, 4, 8, 3},
    {2, 3, 1025, 4, 32, 5},
    {3, 1, 13, 0, 0, 2},
    {1, 4, 64, 64, 0, 4},  // sinks cover everything
    {2, 2, 50, 3, 60, 7},  // recent > n - sinks
  };

  static Stream<Arguments> cases() {
    List<Arguments> out = new ArrayList<>();
    for (Backend backend : TestBackends.host()) {
      for (int[] c : CASES) {
        out.add(Arguments.of(backend, c));
      }
    }
    return out.stream();
  }

  static Stream<Arguments> gpuCases() {
    List<Arguments> out = new ArrayList<>();
    for (int[] c : CASES) {
      out.add(Arguments.of(Backend.CUDA, c));
    }
    return out.stream();
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void keepsTopKWithPositionTieBreaking(Backend backend, int[] c) {
    check(backend, c);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("gpuCases")
  void cudaKeepsTopKWithPositionTieBreaking(Backend backend, int[] c) {
    TestBackends.assumeCuda();
    check(backend, c);
  }

  private static void check(Backend backend, int[] c) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int b = c[0], h = c[1], n = c[2], sinks = c[3], recent = c[4], values = c[5];
    float[] scores = tiedScores(rnd, b * h * n, values);
    int forced = (int) KvSelectionRef.forcedCount(n, sinks, recent);
    int[][] budgets = new int[b][h];
    for (int[] row : budgets) {
      for (int i = 0; i < h; i++) {
        row[i] = forced + rnd.nextInt(n - forced + 1);
      }
    }
    budgets[0][0] = n; // keep all somewhere
    if (b * h > 1) {
      budgets[b - 1][h - 1] = forced; // keep only the forced ones somewhere
    }
    try (Tensor host = Tensor.of(scores, b, h, n);
        Tensor s = on(backend, host);
        KeptTokens kept = KvSelection.select(s, budgets, sinks, recent, Exec.backend(backend))) {
      int[] got = kept.kept().toIntArray();
      int maxKeep = kept.maxKeep();
      assertEquals(Arrays.stream(budgets).flatMapToInt(Arrays::stream).max().orElse(0), maxKeep);
      for (int bh = 0; bh < b * h; bh++) {
        int budget = budgets[bh / h][bh % h];
        int[] expected = fullSortTopK(scores, bh, n, budget, sinks, recent);
        int[] row = Arrays.copyOfRange(got, bh * maxKeep, (bh + 1) * maxKeep);
        for (int i = budget; i < maxKeep; i++) {
          assertEquals(-1, row[i], "padding");
        }
        int finalBh = bh;
        assertArrayEquals(expected, Arrays.copyOf(row, budget),
            () -> backend + " head " + finalBh + " budget " + budget + ", seed " + seed);
        Set<Integer> set = new HashSet<>();
        for (int j : expected) {
          set.add(j);
        }
        for (int j = 0; j < n; j++) {
          if (KvSelectionRef.forced(j, n, sinks, recent)) {
            assertTrue(set.contains(j), "forced token " + j + " must be kept, seed " + seed);
          }
        }
      }
      assertArrayEquals(budgets, kept.counts());
    }
  }

  /** Scores drawn from a few values, so most comparisons are ties. */
  static float[] tiedScores(SplittableRandom rnd, int count, int values) {
    float[] s = new float[count];
    for (int i = 0; i < count; i++) {
      s[i] = (float) (rnd.nextInt(values) * 0.25 - 1);
    }
    return s;
  }

  /** Independent oracle: sort (forced, -score, position) with a comparator over boxed keys, take budget. */
  static int[] fullSortTopK(float[] scores, int head, int n, int budget, int sinks, int recent) {
    List<int[]> keys = new ArrayList<>();
    for (int j = 0; j < n; j++) {
      keys.add(new int[] {j});
    }
    keys.sort((x, y) -> {
      int a = x[0], bb = y[0];
      int fa = (a < sinks || a >= n - recent) ? 0 : 1;
      int fb = (bb < sinks || bb >= n - recent) ? 0 : 1;
      if (fa != fb) {
        return fa - fb;
      }
      int cmp = Float.compare(scores[head * n + bb], scores[head * n + a]);
      return cmp != 0 ? cmp : Integer.compare(a, bb);
    });
    int[] out = new int[budget];
    for (int i = 0; i < budget; i++) {
      out[i] = keys.get(i)[0];
    }
    Arrays.sort(out);
    return out;
  }

  @Test
  void uniformBudgetEdgeCases() {
    for (Backend backend : TestBackends.host()) {
      float[] scores = {3, 1, 2, 2, 0};
      try (Tensor s = Tensor.of(scores, 1, 1, 5)) {
        try (KeptTokens all = KvSelection.select(s, 5, 0, 0, Exec.backend(backend))) {
          assertArrayEquals(new int[] {0, 1, 2, 3, 4}, all.kept().toIntArray());
        }
        try (KeptTokens none = KvSelection.select(s, 0, 0, 0, Exec.backend(backend))) {
          assertEquals(0, none.maxKeep());
          assertEquals(0, none.total());
        }
        try (KeptTokens two = KvSelection.select(s, 2, 0, 0, Exec.backend(backend))) {
          assertArrayEquals(new int[] {0, 2}, two.kept().toIntArray(), backend + ": tie 2 vs 2 goes to position 2");
        }
        try (KeptTokens forced = KvSelection.select(s, 2, 1, 1, Exec.backend(backend))) {
          assertArrayEquals(new int[] {0, 4}, forced.kept().toIntArray());
        }
      }
    }
  }

  @Test
  void badBudgetsNameTheHeadAndTheRule() {
    for (Backend backend : TestBackends.host()) {
      try (Tensor s = Tensor.of(new float[2 * 3 * 10], 2, 3, 10)) {
        int[][] budgets = KvBudgets.uniform(2, 3, 5);
        budgets[1][2] = 11;
        assertMentions(message(IllegalArgumentException.class,
            () -> KvSelection.select(s, budgets, 0, 0, Exec.backend(backend))), "budgets[1][2] = 11", "exceeds n = 10");
        assertMentions(message(IllegalArgumentException.class,
            () -> KvSelection.select(s, 0, 2, 1, Exec.backend(backend))), "budgets[0][0] = 0", "3 forced tokens",
            "sinks = 2, recent = 1");
        assertMentions(message(IllegalArgumentException.class,
            () -> KvSelection.select(s, new int[][] {{1, 1, 1}}, 0, 0, Exec.backend(backend))), "budgets must have B = 2");
        assertMentions(message(IllegalArgumentException.class,
            () -> KvSelection.select(s, 1, -1, 0, Exec.backend(backend))), "sinks and recent must be >= 0");
      }
      float[] withNan = new float[12];
      withNan[7] = Float.NaN;
      try (Tensor s = Tensor.of(withNan, 1, 2, 6)) {
        assertMentions(message(IllegalArgumentException.class,
            () -> KvSelection.select(s, 3, 0, 0, Exec.backend(backend))), "NaN");
      }
    }
  }

  @Test
  void adaKvBudgetsThenPerHeadSelectionEqualTheGlobalTopK() {
    for (Backend backend : TestBackends.host()) {
      for (int trial = 0; trial < 6; trial++) {
        long seed = RandomTensors.freshSeed();
        SplittableRandom rnd = new SplittableRandom(seed);
        int b = 1 + rnd.nextInt(2), h = 1 + rnd.nextInt(5), n = 1 + rnd.nextInt(80);
        int sinks = rnd.nextInt(3), recent = rnd.nextInt(4);
        int forced = (int) KvSelectionRef.forcedCount(n, sinks, recent);
        int total = h * forced + rnd.nextInt(h * (n - forced) + 1);
        double alpha = trial % 2 == 0 ? KvBudgets.ADAKV_ALPHA : rnd.nextDouble();
        float[] scores = tiedScores(rnd, b * h * n, 1 + rnd.nextInt(6));
        try (Tensor s = Tensor.of(scores, b, h, n)) {
          int[][] budgets = KvBudgets.adaKv(s, total, alpha, sinks, recent);
          try (KeptTokens kept = KvSelection.select(s, budgets, sinks, recent, Exec.backend(backend))) {
            int[] got = kept.kept().toIntArray();
            for (int bi = 0; bi < b; bi++) {
              assertEquals(total, Arrays.stream(budgets[bi]).sum(), "seed " + seed);
              Set<Long> expected = adaKvOracle(scores, bi, h, n, total, alpha, sinks, recent);
              Set<Long> actual = new HashSet<>();
              for (int hi = 0; hi < h; hi++) {
                for (int i = 0; i < budgets[bi][hi]; i++) {
                  actual.add((long) hi * n + got[((bi * h + hi) * kept.maxKeep()) + i]);
                }
              }
              assertEquals(expected, actual, backend + " seed " + seed);
            }
          }
        }
      }
    }
  }

  /**
   * AdaKV written out directly: every head's top floor(alpha * total / H) in its own order (at
   * least the forced ones), then a global sort of all other (head, position) pairs by (score desc,
   * head asc, position asc) filling the rest.
   */
  static Set<Long> adaKvOracle(float[] scores, int bi, int h, int n, int total, double alpha, int sinks,
      int recent) {
    int own = (int) Math.floor(alpha * ((double) total / h));
    int forced = (int) KvSelectionRef.forcedCount(n, sinks, recent);
    Set<Long> keep = new HashSet<>();
    List<long[]> rest = new ArrayList<>();
    for (int hi = 0; hi < h; hi++) {
      int head = bi * h + hi;
      int[] top = fullSortTopK(scores, head, n, Math.min(n, Math.max(own, forced)), sinks, recent);
      Set<Integer> mine = new HashSet<>();
      for (int j : top) {
        keep.add((long) hi * n + j);
        mine.add(j);
      }
      for (int j = 0; j < n; j++) {
        if (!mine.contains(j)) {
          rest.add(new long[] {hi, j});
        }
      }
    }
    rest.sort((x, y) -> {
      float sx = scores[(int) ((bi * h + x[0]) * n + x[1])];
      float sy = scores[(int) ((bi * h + y[0]) * n + y[1])];
      if (sx != sy) {
        return sx > sy ? -1 : 1;
      }
      return x[0] != y[0] ? Long.compare(x[0], y[0]) : Long.compare(x[1], y[1]);
    });
    for (int i = 0; keep.size() < total; i++) {
      keep.add(rest.get(i)[0] * n + rest.get(i)[1]);
    }
    return keep;
  }

  @Test
  void pyramidBudgetsFollowPyramidKv() {
    int layers = 32, avg = 1024;
    int[] b = new int[layers];
    for (int l = 0; l < layers; l++) {
      b[l] = KvBudgets.pyramid(l, layers, avg);
    }
    assertEquals(Math.round(2 * avg - avg / 20.0), b[0]);
    assertEquals(Math.round(avg / 20.0), b[layers - 1]);
    for (int l = 1; l < layers; l++) {
      assertTrue(b[l] <= b[l - 1], "non-increasing");
    }
    assertEquals(avg * layers, Arrays.stream(b).sum(), layers, "average budget kept (up to rounding)");
    assertEquals(77, KvBudgets.pyramid(0, 1, 77));
  }
}
