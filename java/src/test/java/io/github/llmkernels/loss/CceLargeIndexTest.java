package io.github.llmkernels.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * N x V above 2^31 on the native CPU backend (small D keeps it a few seconds): 32-bit index math
 * anywhere would show up as wrong rows. Checked against the double reference on sampled rows
 * (lse, loss, dE) and sampled columns (dC, which needs every row: O(N D) per column).
 */
class CceLargeIndexTest {

  @Test
  void rowsAndColumnsPast2To31Logits() {
    TestBackends.requireNativeUnlessSkipped();
    TestBackends.assumeNative();
    int n = 66_000, d = 3, v = 32_771;
    assertTrue((long) n * v > (1L << 31));
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    float[] e = new float[n * d];
    float[] c = new float[v * d];
    for (int i = 0; i < e.length; i++) {
      e[i] = (float) RandomTensors.gaussian(rnd);
    }
    for (int i = 0; i < c.length; i++) {
      c[i] = (float) RandomTensors.gaussian(rnd);
    }
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = rnd.nextInt(10) == 0 ? -100 : rnd.nextInt(v);
    }
    CceOptions o = CceOptions.builder().reduction(Reduction.NONE).filterEps(0).build();
    Exec exec = Exec.backend(Backend.NATIVE);
    String ctx = "seed=" + seed;
    try (Tensor te = Tensor.of(e, n, d); Tensor tc = Tensor.of(c, v, d); Tensor tt = Tensor.of(t, n);
        CceForward f = CutCrossEntropy.forward(te, tc, tt, null, o, true, exec);
        Tensor gradLoss = Tensor.of(filledOnes(n), n);
        CceGradients g = CutCrossEntropy.backward(te, tc, tt, null, f.lse(), gradLoss, null, o, exec)) {
      float[] lse = f.lse().toFloatArray();
      float[] loss = f.loss().toFloatArray();
      float[] dE = g.gradE().toFloatArray();
      int[] rows = {0, 1, 65_535, 65_536, 65_999, rnd.nextInt(n), rnd.nextInt(n)};
      for (int i : rows) {
        if (t[i] == -100) {
          assertEquals(0f, lse[i], ctx);
          continue;
        }
        double[] z = new double[v];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < v; j++) {
          z[j] = dot(e, i, c, j, d);
          max = Math.max(max, z[j]);
        }
        double s = 0;
        for (double x : z) {
          s += Math.exp(x - max);
        }
        double refLse = max + Math.log(s);
        assertEquals(refLse, lse[i], 1e-4 * Math.abs(refLse) + 1e-4, "lse row " + i + "; " + ctx);
        assertEquals(refLse - z[t[i]], loss[i], 1e-4 * Math.abs(refLse) + 1e-4, "loss row " + i + "; " + ctx);
        for (int k = 0; k < d; k++) {
          double ref = 0;
          for (int j = 0; j < v; j++) {
            ref += (Math.exp(z[j] - refLse) - (j == t[i] ? 1 : 0)) * c[j * d + k];
          }
          assertEquals(ref, dE[i * d + k], 1e-3 * (1 + Math.abs(ref)), "dE row " + i + "; " + ctx);
        }
      }
      float[] dC = g.gradC().toFloatArray();
      int[] columns = {0, 32_770, rnd.nextInt(v)};
      for (int j : columns) {
        double[] ref = new double[d];
        for (int i = 0; i < n; i++) {
          if (t[i] == -100) {
            continue;
          }
          double gij = Math.exp(dot(e, i, c, j, d) - lse[i]) - (t[i] == j ? 1 : 0);
          for (int k = 0; k < d; k++) {
            ref[k] += gij * e[i * d + k];
          }
        }
        for (int k = 0; k < d; k++) {
          assertEquals(ref[k], dC[j * d + k], 2e-3 * (1 + Math.abs(ref[k])), "dC column " + j + "; " + ctx);
        }
      }
    }
  }

  private static float[] filledOnes(int n) {
    float[] a = new float[n];
    java.util.Arrays.fill(a, 1f);
    return a;
  }

  private static double dot(float[] e, int i, float[] c, int j, int d) {
    double s = 0;
    for (int k = 0; k < d; k++) {
      s += (double) e[i * d + k] * c[j * d + k];
    }
    return s;
  }
}
