package io.github.llmkernels.bench;

import io.github.llmkernels.kvcache.KeptTokens;
import io.github.llmkernels.kvcache.KvBudgets;
import io.github.llmkernels.kvcache.KvPooling;
import io.github.llmkernels.kvcache.KvScores;
import io.github.llmkernels.kvcache.KvSelection;
import io.github.llmkernels.kvcache.ObservedAttention;
import io.github.llmkernels.kvcache.SnapKvOptions;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.io.PrintStream;
import java.util.SplittableRandom;

/**
 * The `kvquality` command: how much attention output each scorer and budget rule loses when
 * the KV cache is compacted by 25%, 50%, 75% and 90%.
 *
 * <p>Inputs ({@link #synthetic}): one layer, B 1, Hq 8 over Hkv 2 (GQA), d 64, n cached tokens,
 * with the structure real caches show: attention sinks (the first 4 keys align with a direction
 * every query shares), a local window (queries and keys carry a position code, a sum of slow
 * sinusoids, so a query is most similar to recent keys), heavy hitters (2% of the keys carry a
 * second shared direction) and N(0, 1) noise; values N(0, 1). Each head mixes these with its own
 * weights. The 32 queries of the observation window sit at positions n - 32 .. n - 1; 16 later
 * queries (positions n .. n + 15, same law) are the test: for each, attention over the kept
 * tokens of its KV head against attention over the whole cache (double precision), relative L2
 * error of the output averaged over test queries and heads.
 *
 * <p>Scorers: KNorm, StreamingLLM (recency + 4 sinks), SnapKV (window 32, avg pool 5), TOVA (last
 * window query), H2O (observed attention of the window queries), LaCache ladder (layer 0, rung
 * 4). Budget rules: uniform per head, and AdaKV (alpha 0.2) for SnapKV. Every rule also keeps
 * the 4 sinks and, for SnapKV, the 32-token window.
 */
final class KvQuality {
  static final int HQ = 8;
  static final int HKV = 2;
  static final int D = 64;
  static final int WINDOW = 32;
  static final int TESTS = 16;
  static final int SINKS = 4;

  private KvQuality() {}

  /** q for positions 0 .. n + TESTS - 1 (window and test queries used), k and v for 0 .. n - 1. */
  record Inputs(float[][][] q, float[][][] k, float[][][] v, int n) {}

  static Inputs synthetic(int n, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    int total = n + TESTS;
    double[] sink = unit(rng);
    double[] heavy = unit(rng);
    double[][] freq = new double[4][D];
    for (double[] f : freq) {
      for (int t = 0; t < D; t++) {
        f[t] = rng.nextGaussian() / Math.sqrt(D);
      }
    }
    boolean[] hitter = new boolean[n];
    for (int j = 0; j < n; j++) {
      hitter[j] = rng.nextDouble() < 0.02;
    }
    float[][][] q = new float[HQ][total][D];
    float[][][] k = new float[HKV][n][D];
    float[][][] v = new float[HKV][n][D];
    for (int h = 0; h < HKV; h++) {
      double local = 2.0 + 2.0 * h;  // head 1 is more local than head 0
      for (int j = 0; j < n; j++) {
        double[] code = positionCode(freq, j);
        for (int t = 0; t < D; t++) {
          double x = rng.nextGaussian() + local * code[t];
          x += j < SINKS ? 4.0 * sink[t] * Math.sqrt(D) : 0;
          x += hitter[j] ? 2.5 * heavy[t] * Math.sqrt(D) : 0;
          k[h][j][t] = (float) x;
          v[h][j][t] = (float) rng.nextGaussian();
        }
      }
    }
    for (int h = 0; h < HQ; h++) {
      double local = 2.0 + 2.0 * (h / (HQ / HKV));
      for (int i = Math.max(0, n - WINDOW); i < total; i++) {
        double[] code = positionCode(freq, i);
        for (int t = 0; t < D; t++) {
          q[h][i][t] = (float) (0.5 * rng.nextGaussian() + local * code[t] + 1.0 * sink[t] + 0.6 * heavy[t]);
        }
      }
    }
    return new Inputs(q, k, v, n);
  }

  private static double[] unit(SplittableRandom rng) {
    double[] u = new double[D];
    double norm = 0;
    for (int t = 0; t < D; t++) {
      u[t] = rng.nextGaussian();
      norm += u[t] * u[t];
    }
    for (int t = 0; t < D; t++) {
      u[t] /= Math.sqrt(norm);
    }
    return u;
  }

  /** Slow sinusoids of the position along 4 random directions (periods 64 .. 512 tokens). */
  private static double[] positionCode(double[][] freq, int pos) {
    double[] c = new double[D];
    for (int f = 0; f < freq.length; f++) {
      double phase = 2 * Math.PI * pos / (64 << f);
      for (int t = 0; t < D; t++) {
        c[t] += (t % 2 == 0 ? Math.cos(phase) : Math.sin(phase)) * freq[f][t] * Math.sqrt(D) / 2;
      }
    }
    return c;
  }

  static void run(PrintStream out, int n) {
    Inputs in = synthetic(n, 7);
    out.printf("== KV compaction quality: B 1, Hq %d / Hkv %d, d %d, n %d; relative L2 error of the attention output"
        + " of %d later queries (kept tokens vs the full cache)%n", HQ, HKV, D, n, TESTS);
    double[] compressions = {0.25, 0.5, 0.75, 0.9};
    out.printf("%-28s", "scorer / budget");
    for (double c : compressions) {
      out.printf(" %9s", (int) (c * 100) + "%");
    }
    out.println();
    try (Tensor k = tensor(in.k(), n); Tensor qWin = window(in, n - WINDOW, WINDOW);
        Tensor qLast = window(in, n - 1, 1)) {
      float[] knorm = scores(KvScores.knorm(k));
      float[] recency = scores(KvScores.recency(1, HKV, n));
      float[] snap = scores(KvScores.snapKv(qWin, k, SnapKvOptions.pooling(KvPooling.AVG)));
      float[] tova = scores(KvScores.tova(qLast, k));
      float[] h2o;
      try (ObservedAttention state = ObservedAttention.create(1, HKV, n, Device.CPU)) {
        h2o = scores(KvScores.observed(qWin, k, state));
      }
      float[] ladder = scores(KvScores.ladder(1, HKV, n, 0, 4));
      row(out, in, "KNorm / uniform", knorm, compressions, SINKS, 0, false);
      row(out, in, "StreamingLLM / uniform", recency, compressions, SINKS, 0, false);
      row(out, in, "SnapKV / uniform", snap, compressions, SINKS, WINDOW, false);
      row(out, in, "SnapKV / AdaKV", snap, compressions, SINKS, WINDOW, true);
      row(out, in, "TOVA / uniform", tova, compressions, SINKS, 0, false);
      row(out, in, "H2O (observed) / uniform", h2o, compressions, SINKS, 0, false);
      row(out, in, "LaCache ladder / uniform", ladder, compressions, SINKS, 0, false);
    }
  }

  private static void row(PrintStream out, Inputs in, String label, float[] scores, double[] compressions, int sinks,
      int recent, boolean adaKv) {
    out.printf("%-28s", label);
    int n = in.n();
    try (Tensor s = Tensor.of(scores, 1, HKV, n)) {
      for (double c : compressions) {
        int budget = (int) Math.round(n * (1 - c));
        int[][] budgets = adaKv ? KvBudgets.adaKv(s, budget * HKV, sinks, recent)
            : KvBudgets.uniform(1, HKV, budget);
        try (KeptTokens kept = KvSelection.select(s, budgets, sinks, recent)) {
          out.printf(" %9.4f", outputError(in, kept));
        }
      }
    }
    out.println();
  }

  /** Mean relative L2 error of the test queries' attention output over the kept tokens. */
  private static double outputError(Inputs in, KeptTokens kept) {
    int[] idx = kept.kept().toIntArray();
    int maxKeep = kept.maxKeep();
    double sum = 0;
    int count = 0;
    for (int h = 0; h < HQ; h++) {
      int hk = h / (HQ / HKV);
      int keptCount = kept.count(0, hk);
      int[] keys = new int[keptCount];
      System.arraycopy(idx, hk * maxKeep, keys, 0, keptCount);
      int[] all = new int[in.n()];
      for (int j = 0; j < all.length; j++) {
        all[j] = j;
      }
      for (int i = in.n(); i < in.n() + TESTS; i++) {
        double[] full = attend(in, h, i, all);
        double[] part = attend(in, h, i, keys);
        double num = 0;
        double den = 0;
        for (int t = 0; t < D; t++) {
          num += (part[t] - full[t]) * (part[t] - full[t]);
          den += full[t] * full[t];
        }
        sum += Math.sqrt(num / den);
        count++;
      }
    }
    return sum / count;
  }

  private static double[] attend(Inputs in, int h, int i, int[] keys) {
    int hk = h / (HQ / HKV);
    double[] s = new double[keys.length];
    double m = Double.NEGATIVE_INFINITY;
    for (int a = 0; a < keys.length; a++) {
      double dot = 0;
      for (int t = 0; t < D; t++) {
        dot += (double) in.q()[h][i][t] * in.k()[hk][keys[a]][t];
      }
      s[a] = dot / Math.sqrt(D);
      m = Math.max(m, s[a]);
    }
    double[] o = new double[D];
    double z = 0;
    for (int a = 0; a < keys.length; a++) {
      double p = Math.exp(s[a] - m);
      z += p;
      for (int t = 0; t < D; t++) {
        o[t] += p * in.v()[hk][keys[a]][t];
      }
    }
    for (int t = 0; t < D; t++) {
      o[t] /= z;
    }
    return o;
  }

  private static float[] scores(Tensor t) {
    try (t) {
      return t.toFloatArray();
    }
  }

  private static Tensor tensor(float[][][] x, int n) {
    float[] flat = new float[x.length * n * D];
    for (int h = 0; h < x.length; h++) {
      for (int j = 0; j < n; j++) {
        System.arraycopy(x[h][j], 0, flat, (h * n + j) * D, D);
      }
    }
    return Tensor.fromFloats(flat, DType.F32, 1, x.length, n, D);
  }

  /** Queries at positions start .. start + len - 1 as [1, Hq, len, D]. */
  private static Tensor window(Inputs in, int start, int len) {
    float[] flat = new float[HQ * len * D];
    for (int h = 0; h < HQ; h++) {
      for (int i = 0; i < len; i++) {
        System.arraycopy(in.q()[h][start + i], 0, flat, (h * len + i) * D, D);
      }
    }
    return Tensor.fromFloats(flat, DType.F32, 1, HQ, len, D);
  }
}
