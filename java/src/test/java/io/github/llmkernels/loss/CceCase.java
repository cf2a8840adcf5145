package io.github.llmkernels.loss;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.Tolerances;
import java.util.SplittableRandom;

/**
 * One random CCE problem and its reference results. Inputs follow Apple's test recipe: about a
 * fifth of the targets ignored, and (optionally) classifier rows copied from hidden states so
 * that some rows are confident (p_target >= 0.999), which exercises the p_target - 1 cancellation.
 */
final class CceCase implements AutoCloseable {
  final long seed;
  final int n;
  final int d;
  final int v;
  final DType dtype;
  final Tensor e;
  final Tensor c;
  final Tensor targets;
  final Tensor bias;
  final CceOptions options;

  private CceCase(long seed, int n, int d, int v, DType dtype, Tensor e, Tensor c, Tensor targets, Tensor bias,
      CceOptions options) {
    this.seed = seed;
    this.n = n;
    this.d = d;
    this.v = v;
    this.dtype = dtype;
    this.e = e;
    this.c = c;
    this.targets = targets;
    this.bias = bias;
    this.options = options;
  }

  /** Builder-style knobs of the generated inputs. */
  record Spec(int n, int d, int v, DType dtype, boolean withBias, double ignoreShare, boolean confident,
      double logitStd, DType targetDType) {
    static Spec of(int n, int d, int v, DType dtype) {
      return new Spec(n, d, v, dtype, false, 0.2, true, 2.0, DType.I32);
    }

    Spec withBias(boolean b) {
      return new Spec(n, d, v, dtype, b, ignoreShare, confident, logitStd, targetDType);
    }

    Spec ignoring(double share) {
      return new Spec(n, d, v, dtype, withBias, share, confident, logitStd, targetDType);
    }

    Spec confident(boolean conf) {
      return new Spec(n, d, v, dtype, withBias, ignoreShare, conf, logitStd, targetDType);
    }

    Spec logitStd(double std) {
      return new Spec(n, d, v, dtype, withBias, ignoreShare, confident, std, targetDType);
    }

    Spec targets(DType t) {
      return new Spec(n, d, v, dtype, withBias, ignoreShare, confident, logitStd, t);
    }
  }

  static CceCase random(long seed, Spec s, CceOptions options) {
    SplittableRandom rnd = new SplittableRandom(seed);
    int n = s.n(), d = s.d(), v = s.v();
    float[] e = new float[n * d];
    float[] c = new float[v * d];
    // E ~ N(0, 1); C ~ N(0, std^2 / d): logits have standard deviation about logitStd.
    double cScale = s.logitStd() / Math.sqrt(d);
    for (int i = 0; i < e.length; i++) {
      e[i] = (float) RandomTensors.gaussian(rnd);
    }
    for (int i = 0; i < c.length; i++) {
      c[i] = (float) (RandomTensors.gaussian(rnd) * cScale);
    }
    long[] t = new long[n];
    for (int i = 0; i < n; i++) {
      t[i] = rnd.nextDouble() < s.ignoreShare() ? options.ignoreIndex() : rnd.nextLong(v);
    }
    if (s.confident()) {
      // Up to half of C's rows point along a row of E (every other row of E at most), scaled so
      // that the target logit is 20: those rows are confident (p_target >= 0.999) and the rest
      // are not. The row's target is set to the copied column.
      int copies = Math.min(v / 2, n / 2);
      for (int j = 0; j < copies; j++) {
        int row = (int) ((long) j * n / Math.max(copies, 1));
        double norm2 = 0;
        for (int k = 0; k < d; k++) {
          norm2 += (double) e[row * d + k] * e[row * d + k];
        }
        // A tiny row (likely at D = 1) would need a huge classifier row, and logits of 1e4, whose
        // fp32 rounding (|lse| ulps in p) no tolerance here is meant for: such a row gets less.
        double scale = 20.0 / Math.max(norm2, 0.25 * d);
        for (int k = 0; k < d; k++) {
          c[j * d + k] = (float) (e[row * d + k] * scale);
        }
        int targetPos = row + options.shift();
        if (targetPos < n && t[targetPos] != options.ignoreIndex()) {
          t[targetPos] = j;
        }
      }
    }
    Tensor bias = null;
    if (s.withBias()) {
      float[] b = new float[v];
      for (int j = 0; j < v; j++) {
        b[j] = (float) (0.5 * RandomTensors.gaussian(rnd));
      }
      bias = Tensor.fromFloats(b, s.dtype(), v);
    }
    Tensor targets = s.targetDType() == DType.I64 ? Tensor.of(t, n) : Tensor.of(toInts(t), n);
    return new CceCase(seed, n, d, v, s.dtype(), Tensor.fromFloats(e, s.dtype(), n, d),
        Tensor.fromFloats(c, s.dtype(), v, d), targets, bias, options);
  }

  private static int[] toInts(long[] t) {
    int[] out = new int[t.length];
    for (int i = 0; i < t.length; i++) {
      out[i] = Math.toIntExact(t[i]);
    }
    return out;
  }

  CutCrossEntropyRef.Problem problem() {
    return CutCrossEntropyRef.Problem.of(e, c, targets, bias, 0, v, options);
  }

  /** Reference forward: {loss (N or 1 values), lse [N]}. */
  float[][] referenceForward() {
    try (Tensor loss = options.reduction() == Reduction.NONE ? Tensor.allocate(DType.F32, Device.CPU, n)
        : Tensor.allocate(DType.F32, Device.CPU, 1);
        Tensor lse = Tensor.allocate(DType.F32, Device.CPU, n)) {
      CutCrossEntropyRef.forward(problem(), loss, lse, null, null);
      return new float[][] {loss.toFloatArray(), lse.toFloatArray()};
    }
  }

  /** Reference gradients in F32: {dE, dC, dBias or null}. */
  float[][] referenceBackward(Tensor lse, Tensor gradLoss, Tensor gradLse) {
    try (Tensor ge = Tensor.allocate(DType.F32, Device.CPU, n, d);
        Tensor gc = Tensor.allocate(DType.F32, Device.CPU, v, d);
        Tensor gb = Tensor.allocate(DType.F32, Device.CPU, v)) {
      CutCrossEntropyRef.backward(problem(), lse, gradLoss, gradLse, ge, gc, bias == null ? null : gb);
      return new float[][] {ge.toFloatArray(), gc.toFloatArray(), bias == null ? null : gb.toFloatArray()};
    }
  }

  /**
   * Per-row gradient coefficients {a_i, b_i, u_i} of cce_math.h from the reference definitions
   * (null at ignored rows): w is the row's upstream weight, lse its log-sum-exp.
   */
  double[][] rowCoefficients(float[] lse, float[] gradLoss, float[] gradLse) {
    CutCrossEntropyRef.Problem p = problem();
    int valid = p.validRows();
    double[][] out = new double[n][];
    for (int i = 0; i < n; i++) {
      if (!p.valid(i)) {
        continue;
      }
      double w = switch (options.reduction()) {
        case NONE -> gradLoss[i];
        case SUM -> gradLoss[0];
        case MEAN -> gradLoss[0] / valid;
      };
      double a = w * (1 + 2 * options.zLossScale() * lse[i]) + (gradLse == null ? 0 : gradLse[i]);
      out[i] = new double[] {a, w * (1 - options.labelSmoothing()), w * options.labelSmoothing() / v};
    }
    return out;
  }

  /** Per-row filter scale max(|a_i|, |b_i|, |u_i|), 0 at ignored rows. */
  double[] rowScales(float[] lse, float[] gradLoss, float[] gradLse) {
    double[][] coef = rowCoefficients(lse, gradLoss, gradLse);
    double[] out = new double[n];
    for (int i = 0; i < n; i++) {
      if (coef[i] != null) {
        out[i] = Math.max(Math.max(Math.abs(coef[i][0]), Math.abs(coef[i][1])), Math.abs(coef[i][2]));
      }
    }
    return out;
  }

  static double maxAbs(float[] values) {
    double m = 0;
    for (float x : values) {
      m = Math.max(m, Math.abs(x));
    }
    return m;
  }

  static double maxAbs(double[] values) {
    double m = 0;
    for (double x : values) {
      m = Math.max(m, Math.abs(x));
    }
    return m;
  }

  String describe() {
    return "seed=" + seed + " n=" + n + " d=" + d + " v=" + v + " " + dtype + " bias=" + (bias != null) + " "
        + options;
  }

  @Override
  public void close() {
    e.close();
    c.close();
    targets.close();
    if (bias != null) {
      bias.close();
    }
  }

  // ---- comparisons -------------------------------------------------------------------------

  static void assertForwardClose(String what, float[] actual, float[] expected, String context) {
    assertTrue(actual.length == expected.length, what + ": length " + actual.length + " != " + expected.length);
    for (int i = 0; i < actual.length; i++) {
      double tol = Tolerances.CCE_FWD_ATOL + Tolerances.CCE_FWD_RTOL * Math.abs(expected[i]);
      if (Float.isNaN(expected[i]) != Float.isNaN(actual[i]) || Math.abs(actual[i] - expected[i]) > tol) {
        fail(what + "[" + i + "] = " + actual[i] + ", reference " + expected[i] + " (tolerance " + tol + "); "
            + context);
      }
    }
  }

  /**
   * Element-wise gradient check. The absolute tolerance is a fraction of the larger of max|ref|
   * and naturalScale, the size of one whole target contribution (max row scale x max |input|):
   * when every row is confident the true gradient is tiny and fp32 rounding of p near 1 is what
   * is left. extraBound (or null) adds the filtering bound per element.
   */
  static void assertGradClose(String what, float[] actual, float[] expected, DType dtype, double[] extraBound,
      double naturalScale, String context) {
    assertTrue(actual.length == expected.length, what + ": length " + actual.length + " != " + expected.length);
    double max = naturalScale;
    for (float x : expected) {
      max = Math.max(max, Math.abs(x));
    }
    double atol = Tolerances.cceGradAtolFraction(dtype) * max;
    double rtol = Tolerances.cceGradRtol(dtype);
    for (int i = 0; i < actual.length; i++) {
      double tol = atol + rtol * Math.abs(expected[i])
          + (extraBound == null ? 0 : Tolerances.CCE_FILTER_BOUND_FACTOR * extraBound[i]);
      if (!(Math.abs(actual[i] - expected[i]) <= tol)) {
        fail(what + "[" + i + "] = " + actual[i] + ", reference " + expected[i] + " (tolerance " + tol
            + ", scale " + max + "); " + context);
      }
    }
  }
}
