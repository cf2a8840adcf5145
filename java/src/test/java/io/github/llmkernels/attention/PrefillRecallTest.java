package io.github.llmkernels.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import io.github.llmkernels.testing.Tolerances;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link AttentionRecall} on hand-built cases run through the real kernels
 * ({@link SparseAttention#forward} over {@link BlockLayout#fromBlockMask} on causal, against the
 * dense causal layout): uniform attention (recall = visible keys / causal keys, counted here),
 * one-hot attention (recall 1 or 0 per row), the dense layout (recall 1, no error), random inputs
 * against a double evaluation of the softmax mass inside the layout, and rows that see nothing.
 */
class PrefillRecallTest {
  private static final AttentionOptions F32 = AttentionOptions.builder().outputDType(DType.F32).build();

  static Stream<Backend> backends() {
    return TestBackends.host().stream();
  }

  /** Host copies of one forward: lse [B, Hq, Sq] and out [B, Hq, Sq, d]. */
  private record Pass(float[] lse, float[] out) {}

  private static Pass attend(Tensor q, Tensor k, Tensor v, BlockLayout layout, AttentionOptions o, Exec exec) {
    try (AttentionOutput r = SparseAttention.forward(q, k, v, layout, o, exec)) {
      return new Pass(r.lse().toFloatArray(), r.out().toFloatArray());
    }
  }

  /** Sparse pass over the tiles of bits [B][Hq][nQB][nKB] (classified against causal) and the dense causal pass. */
  private static Pass[] sparseAndDense(Tensor q, Tensor k, Tensor v, boolean[][][][] bits, int blockQ, int blockK,
      AttentionOptions o, Backend backend) {
    int b = (int) q.shape(0);
    int hq = (int) q.shape(1);
    int sq = (int) q.shape(2);
    int sk = (int) k.shape(2);
    Exec exec = Exec.backend(backend);
    try (Tensor mask = Tensor.of(bytes(bits), DType.U8, b, hq, bits[0][0].length, bits[0][0][0].length);
        BlockLayout sparse = BlockLayout.fromBlockMask(MaskSpec.causal(), b, hq, sq, sk, blockQ, blockK, mask,
            Device.CPU, exec);
        BlockLayout dense = BlockLayout.compile(MaskSpec.causal(), b, hq, sq, sk, 64, 64, Device.CPU, exec)) {
      return new Pass[] {attend(q, k, v, sparse, o, exec), attend(q, k, v, dense, o, exec)};
    }
  }

  private static byte[] bytes(boolean[][][][] bits) {
    List<Byte> out = new ArrayList<>();
    for (boolean[][][] perBatch : bits) {
      for (boolean[][] perHead : perBatch) {
        for (boolean[] row : perHead) {
          for (boolean on : row) {
            out.add((byte) (on ? 1 : 0));
          }
        }
      }
    }
    byte[] a = new byte[out.size()];
    for (int i = 0; i < a.length; i++) {
      a[i] = out.get(i);
    }
    return a;
  }

  /** Random tile selections [B][Hq][nQB][nKB], each head with its own density in [0.2, 0.8]. */
  private static boolean[][][][] randomBits(SplittableRandom rnd, int b, int hq, int nqb, int nkb) {
    boolean[][][][] bits = new boolean[b][hq][nqb][nkb];
    for (boolean[][][] perBatch : bits) {
      for (boolean[][] perHead : perBatch) {
        double p = 0.2 + 0.6 * rnd.nextDouble();
        for (boolean[] row : perHead) {
          for (int kb = 0; kb < nkb; kb++) {
            row[kb] = rnd.nextDouble() < p;
          }
        }
      }
    }
    return bits;
  }

  /** Keys query i of a head with selection bits sees: causal (k <= i + Sk - Sq) and in a selected tile. */
  private static boolean visible(boolean[][] headBits, int i, int j, int sq, int sk, int blockQ, int blockK) {
    return j <= i + sk - sq && headBits[i / blockQ][j / blockK];
  }

  /** Recall tolerance: one F32 rounding of each lse (JAVA) or fp32 kernel sums (NATIVE). */
  private static double tol(Backend backend) {
    return backend == Backend.JAVA ? Tolerances.PREFILL_RECALL_ATOL : Tolerances.PREFILL_RECALL_FP32_ATOL;
  }

  private static int ceilDiv(int a, int b) {
    return (a + b - 1) / b;
  }

  // ---- (a) uniform attention -----------------------------------------------------------------

  /**
   * q = 0: every visible key has score 0, so the sparse row's mass is |L_i| / (qa_i + 1), with
   * L_i counted here key by key from the selected tiles (Sq < Sk checks the bottom-right alignment).
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("backends")
  void uniformAttentionRecallIsTheShareOfVisibleKeys(Backend backend) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int[][] geometries = {{1, 2, 1, 257, 257, 16, 16, 24}, {2, 2, 2, 100, 230, 8, 16, 32}}; // B Hq Hkv Sq Sk d bq bk
    for (int[] g : geometries) {
      int b = g[0], hq = g[1], hkv = g[2], sq = g[3], sk = g[4], d = g[5], bq = g[6], bk = g[7];
      boolean[][][][] bits = randomBits(rnd, b, hq, ceilDiv(sq, bq), ceilDiv(sk, bk));
      String ctx = backend + " " + java.util.Arrays.toString(g) + ", seed " + seed;
      try (Tensor q = Tensor.zeros(DType.F32, Device.CPU, b, hq, sq, d);
          Tensor k = RandomTensors.normal(rnd, DType.F32, b, hkv, sk, d);
          Tensor v = RandomTensors.normal(rnd, DType.F32, b, hkv, sk, d)) {
        Pass[] p = sparseAndDense(q, k, v, bits, bq, bk, F32, backend);
        double[] recall = AttentionRecall.queryRecalls(p[0].lse(), p[1].lse());
        for (int x = 0; x < b; x++) {
          for (int h = 0; h < hq; h++) {
            for (int i = 0; i < sq; i++) {
              int seen = 0;
              for (int j = 0; j < sk; j++) {
                seen += visible(bits[x][h], i, j, sq, sk, bq, bk) ? 1 : 0;
              }
              double want = (double) seen / (i + sk - sq + 1);
              double got = recall[(x * hq + h) * sq + i];
              if (Math.abs(got - want) > tol(backend)) {
                fail("recall of (b " + x + ", h " + h + ", q " + i + ") = " + got + ", want " + seen + " / "
                    + (i + sk - sq + 1) + " = " + want + ": " + ctx);
              }
            }
          }
        }
      }
    }
  }

  // ---- (b) one-hot attention -----------------------------------------------------------------

  /**
   * Query i puts score 40 on one key pi(i) and 0 on every other (scale 1, orthogonal one-hot
   * keys): its recall is 1 - O(S e^-40) when pi(i) is visible in the layout and O(S e^-40)
   * otherwise, so a head's mean recall is the share of rows whose pi(i) the layout keeps.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("backends")
  void oneHotAttentionRecallIsOneOrZeroPerRow(Backend backend) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int b = 2, hq = 2, hkv = 1, s = 130, d = 64, bq = 16, bk = 16;
    String ctx = backend + ", seed " + seed;
    // targets: key 0 (visible to every row) and up to d - 1 other keys, each with its own unit vector
    int[] slot = new int[s];
    java.util.Arrays.fill(slot, -1);
    List<Integer> targets = new ArrayList<>(List.of(0));
    slot[0] = 0;
    while (targets.size() < d) {
      int j = rnd.nextInt(s);
      if (slot[j] < 0) {
        slot[j] = targets.size();
        targets.add(j);
      }
    }
    float[] kData = new float[b * hkv * s * d];
    for (int x = 0; x < b; x++) {
      for (int j = 0; j < s; j++) {
        if (slot[j] >= 0) {
          kData[(x * s + j) * d + slot[j]] = 1;
        }
      }
    }
    int[][][] pi = new int[b][hq][s];
    float[] qData = new float[b * hq * s * d];
    for (int x = 0; x < b; x++) {
      for (int h = 0; h < hq; h++) {
        for (int i = 0; i < s; i++) {
          int t;
          do {
            t = targets.get(rnd.nextInt(targets.size()));
          } while (t > i); // causal: pi(i) <= i
          pi[x][h][i] = t;
          qData[((x * hq + h) * s + i) * d + slot[t]] = 40;
        }
      }
    }
    boolean[][][][] bits = randomBits(rnd, b, hq, ceilDiv(s, bq), ceilDiv(s, bk));
    AttentionOptions unitScale = F32.toBuilder().scale(1.0).build();
    try (Tensor q = Tensor.of(qData, b, hq, s, d); Tensor k = Tensor.of(kData, b, hkv, s, d);
        Tensor v = RandomTensors.normal(rnd, DType.F32, b, hkv, s, d)) {
      Pass[] p = sparseAndDense(q, k, v, bits, bq, bk, unitScale, backend);
      double[] recall = AttentionRecall.queryRecalls(p[0].lse(), p[1].lse());
      double[] mean = AttentionRecall.headMeanRecall(p[0].lse(), p[1].lse(), b * hq, s);
      for (int x = 0; x < b; x++) {
        for (int h = 0; h < hq; h++) {
          int kept = 0;
          for (int i = 0; i < s; i++) {
            boolean in = visible(bits[x][h], i, pi[x][h][i], s, s, bq, bk);
            kept += in ? 1 : 0;
            double got = recall[(x * hq + h) * s + i];
            if (Math.abs(got - (in ? 1 : 0)) > tol(backend)) {
              fail("recall of (b " + x + ", h " + h + ", q " + i + "), pi = " + pi[x][h][i] + " "
                  + (in ? "kept" : "dropped") + ": " + got + ": " + ctx);
            }
          }
          assertEquals((double) kept / s, mean[x * hq + h], Tolerances.PREFILL_RECALL_ONE_HOT_MEAN_ATOL,
              "mean recall of (b " + x + ", h " + h + ") against the share of kept rows: " + ctx);
        }
      }
    }
  }

  // ---- (c) the dense layout ------------------------------------------------------------------

  /** Every tile selected (blocks 16 x 24 on 257, ragged) is the dense causal set: recall 1, same output. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("backends")
  void denseLayoutKeepsEverything(Backend backend) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int b = 1, hq = 4, hkv = 2, s = 257, d = 32, bq = 16, bk = 24;
    String ctx = backend + ", seed " + seed;
    boolean[][][][] bits = new boolean[b][hq][ceilDiv(s, bq)][ceilDiv(s, bk)];
    for (boolean[][] row : bits[0]) {
      for (boolean[] r : row) {
        java.util.Arrays.fill(r, true);
      }
    }
    try (Tensor q = RandomTensors.normal(rnd, DType.F32, b, hq, s, d);
        Tensor k = RandomTensors.normal(rnd, DType.F32, b, hkv, s, d);
        Tensor v = RandomTensors.normal(rnd, DType.F32, b, hkv, s, d)) {
      Pass[] p = sparseAndDense(q, k, v, bits, bq, bk, F32, backend);
      double[] recall = AttentionRecall.queryRecalls(p[0].lse(), p[1].lse());
      for (int i = 0; i < recall.length; i++) {
        assertEquals(1, recall[i], tol(backend), "recall of row " + i + ": " + ctx);
      }
      double[] mean = AttentionRecall.headMeanRecall(p[0].lse(), p[1].lse(), b * hq, s);
      double[] minBlock = AttentionRecall.headMinBlockRecall(p[0].lse(), p[1].lse(), b * hq, s, bq);
      double[] err = AttentionRecall.headRelativeError(p[0].out(), p[1].out(), b * hq, s, d);
      for (int h = 0; h < b * hq; h++) {
        assertEquals(1, mean[h], tol(backend), "mean recall of head " + h + ": " + ctx);
        assertEquals(1, minBlock[h], tol(backend), "min block recall of head " + h + ": " + ctx);
        assertTrue(err[h] <= Tolerances.PREFILL_DENSE_REL_ERR, "relative error of head " + h + " = " + err[h]
            + ": " + ctx);
      }
    }
  }

  // ---- (d) random inputs against a double evaluation ------------------------------------------

  /**
   * Random N(0, 1) inputs, S = 257, blocks 16 x 24 (both ragged), GQA 4 / 2, two batches with their
   * own selections, default scale and then scale 0.5 with softcap 3: the lse-based recall equals
   * the softmax mass inside the layout evaluated row by row in double; head means and block minima
   * equal those of the double recalls.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("backends")
  void lseRecallEqualsTheMassInsideTheLayout(Backend backend) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int b = 2, hq = 4, hkv = 2, s = 257, d = 32, bq = 16, bk = 24;
    boolean[][][][] bits = randomBits(rnd, b, hq, ceilDiv(s, bq), ceilDiv(s, bk));
    try (Tensor q = RandomTensors.normal(rnd, DType.F32, b, hq, s, d);
        Tensor k = RandomTensors.normal(rnd, DType.F32, b, hkv, s, d);
        Tensor v = RandomTensors.normal(rnd, DType.F32, b, hkv, s, d)) {
      float[] qh = q.toFloatArray();
      float[] kh = k.toFloatArray();
      for (AttentionOptions o : new AttentionOptions[] {F32, F32.toBuilder().scale(0.5).softcap(3).build()}) {
        String ctx = backend + " " + o + ", seed " + seed;
        Pass[] p = sparseAndDense(q, k, v, bits, bq, bk, o, backend);
        double[] recall = AttentionRecall.queryRecalls(p[0].lse(), p[1].lse());
        double[] want = new double[b * hq * s];
        double scale = o.resolvedScale(d);
        double[] scores = new double[s];
        for (int x = 0; x < b; x++) {
          for (int h = 0; h < hq; h++) {
            int kvHead = h / (hq / hkv);
            for (int i = 0; i < s; i++) {
              double max = Double.NEGATIVE_INFINITY;
              for (int j = 0; j <= i; j++) {
                double dot = 0;
                for (int c = 0; c < d; c++) {
                  dot += (double) qh[((x * hq + h) * s + i) * d + c] * kh[((x * hkv + kvHead) * s + j) * d + c];
                }
                double sc = scale * dot;
                scores[j] = o.softcap() > 0 ? o.softcap() * Math.tanh(sc / o.softcap()) : sc;
                max = Math.max(max, scores[j]);
              }
              double total = 0;
              double inside = 0;
              for (int j = 0; j <= i; j++) {
                double e = Math.exp(scores[j] - max);
                total += e;
                inside += visible(bits[x][h], i, j, s, s, bq, bk) ? e : 0;
              }
              int row = (x * hq + h) * s + i;
              want[row] = inside / total;
              if (Math.abs(recall[row] - want[row]) > tol(backend)) {
                fail("recall of (b " + x + ", h " + h + ", q " + i + ") = " + recall[row] + ", mass inside the "
                    + "layout = " + want[row] + ": " + ctx);
              }
            }
          }
        }
        double[] mean = AttentionRecall.headMeanRecall(p[0].lse(), p[1].lse(), b * hq, s);
        double[] minBlock = AttentionRecall.headMinBlockRecall(p[0].lse(), p[1].lse(), b * hq, s, bq);
        for (int head = 0; head < b * hq; head++) {
          double sum = 0;
          double worst = Double.POSITIVE_INFINITY;
          for (int qb = 0; qb < ceilDiv(s, bq); qb++) {
            double block = 0;
            int q1 = Math.min(s, (qb + 1) * bq);
            for (int i = qb * bq; i < q1; i++) {
              block += want[head * s + i];
            }
            sum += block;
            worst = Math.min(worst, block / (q1 - qb * bq));
          }
          assertEquals(sum / s, mean[head], tol(backend), "mean recall of head " + head + ": "
              + ctx);
          assertEquals(worst, minBlock[head], tol(backend), "min block recall of head " + head
              + ": " + ctx);
        }
      }
    }
  }

  // ---- (e) rows that see nothing -------------------------------------------------------------

  /**
   * Sq 40 > Sk 24 (bottom-right: queries 0..15 see no key even densely) with query blocks 0 and 3
   * selecting nothing: rows 24..31 lose everything (recall 0), rows 0..15 had nothing to lose
   * (recall 1).
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("backends")
  void rowsThatSeeNothing(Backend backend) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int b = 1, hq = 2, hkv = 1, sq = 40, sk = 24, d = 16, bq = 8, bk = 8;
    String ctx = backend + ", seed " + seed;
    boolean[][][][] bits = new boolean[b][hq][ceilDiv(sq, bq)][ceilDiv(sk, bk)];
    for (boolean[][] head : bits[0]) {
      for (int qb = 0; qb < head.length; qb++) {
        java.util.Arrays.fill(head[qb], qb != 0 && qb != 3);
      }
    }
    try (Tensor q = RandomTensors.normal(rnd, DType.F32, b, hq, sq, d);
        Tensor k = RandomTensors.normal(rnd, DType.F32, b, hkv, sk, d);
        Tensor v = RandomTensors.normal(rnd, DType.F32, b, hkv, sk, d)) {
      Pass[] p = sparseAndDense(q, k, v, bits, bq, bk, F32, backend);
      double[] recall = AttentionRecall.queryRecalls(p[0].lse(), p[1].lse());
      double[] minBlock = AttentionRecall.headMinBlockRecall(p[0].lse(), p[1].lse(), b * hq, sq, bq);
      for (int h = 0; h < hq; h++) {
        for (int i = 0; i < sq; i++) {
          int row = h * sq + i;
          String where = "(h " + h + ", q " + i + "), lse sparse " + p[0].lse()[row] + ", dense " + p[1].lse()[row]
              + ": " + ctx;
          if (i < sq - sk) {
            assertEquals(Float.NEGATIVE_INFINITY, p[1].lse()[row], "dense lse " + where);
            assertEquals(1.0, recall[row], "recall of a row dense attention also leaves empty " + where);
          } else if (i / bq == 3) {
            assertEquals(Float.NEGATIVE_INFINITY, p[0].lse()[row], "sparse lse " + where);
            assertEquals(0.0, recall[row], "recall of a row the layout leaves empty " + where);
          } else {
            assertEquals(1, recall[row], tol(backend), "recall of a fully kept row " + where);
          }
        }
        assertEquals(0.0, minBlock[h], "min block recall of head " + h + ": " + ctx);
      }
    }
  }

  // ---- the arithmetic alone --------------------------------------------------------------------

  @Test
  void arithmeticOnHandBuiltArrays() {
    float ninf = Float.NEGATIVE_INFINITY;
    assertEquals(1.0, AttentionRecall.queryRecall(ninf, ninf));
    assertEquals(0.0, AttentionRecall.queryRecall(ninf, 3f));
    assertEquals(1.0, AttentionRecall.queryRecall(2.5f, 2.4999998f)); // fp32 noise above 1 is clamped
    assertEquals(0.25, AttentionRecall.queryRecall((float) (1 + Math.log(0.25)), 1f), 1e-7);
    // one head of 5 queries in blocks of 2 (last block ragged): recalls 1, 1 | 0.5, 1 | 0.25
    float half = (float) Math.log(0.5);
    float quarter = (float) Math.log(0.25);
    float[] sparse = {0, 0, half, 0, quarter, 0, 0, 0, 0, ninf};
    float[] dense = new float[10];
    assertEquals(0.25, AttentionRecall.headMinBlockRecall(sparse, dense, 2, 5, 2)[0], 1e-7);
    assertEquals(0.625, AttentionRecall.headMinBlockRecall(sparse, dense, 2, 5, 3)[0], 1e-7); // 2.5 / 3, 1.25 / 2
    assertEquals(0.0, AttentionRecall.headMinBlockRecall(sparse, dense, 2, 5, 2)[1]); // 1, 1 | 1, 1 | 0
    assertEquals(0.8, AttentionRecall.headMinBlockRecall(sparse, dense, 2, 5, 5)[1], 1e-7); // one block
    double[] mean = AttentionRecall.headMeanRecall(sparse, dense, 2, 5);
    assertEquals(3.75 / 5, mean[0], 1e-7);
    assertEquals(4.0 / 5, mean[1], 1e-7);
    // ||(0, 0.5)|| / ||(3, 4)|| = 0.1; zero against zero is 0; anything against zero is +inf
    double[] err = AttentionRecall.headRelativeError(new float[] {3, 4.5f, 0, 0, 1, 0}, new float[] {3, 4, 0, 0, 0, 0},
        3, 1, 2);
    assertEquals(0.1, err[0], 1e-12);
    assertEquals(0.0, err[1]);
    assertEquals(Double.POSITIVE_INFINITY, err[2]);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> AttentionRecall.headMeanRecall(sparse, new float[9], 2, 5));
    assertTrue(e.getMessage().contains("lseDense must have heads x seqQ = 10 elements; got 9"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> AttentionRecall.headMinBlockRecall(sparse, dense, 2, 5, 0));
    assertTrue(e.getMessage().contains("blockQ must be >= 1; got 0"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> AttentionRecall.queryRecalls(sparse, new float[3]));
    assertTrue(e.getMessage().contains("lseDense must have lseSparse.length = 10 elements; got 3"), e.getMessage());
  }
}
