package io.github.llmkernels.loss;

import io.github.llmkernels.tensor.Tensor;

/**
 * The Java reference of the cut cross-entropy: written for clarity, accumulating in double, one
 * row of logits at a time (never N x V). It is the oracle every other backend is tested against,
 * and the JAVA backend. It never filters gradients: its result is the exact gradient.
 *
 * <p>All tensors are host tensors, validated by the caller ({@link CutCrossEntropy}).
 */
public final class CutCrossEntropyRef {
  private CutCrossEntropyRef() {}

  /** Inputs as Java arrays, with the shard's place in the vocabulary. */
  record Problem(float[] e, float[] c, float[] bias, long[] targets, int n, int d, int v, long vocabOffset,
      long vocabTotal, CceOptions options) {

    static Problem of(Tensor e, Tensor c, Tensor targets, Tensor bias, long vocabOffset, long vocabTotal,
        CceOptions options) {
      long[] t = new long[Math.toIntExact(targets.numel())];
      for (int i = 0; i < t.length; i++) {
        t[i] = targets.getLong(i);
      }
      return new Problem(e.toFloatArray(), c.toFloatArray(), bias == null ? null : bias.toFloatArray(), t,
          Math.toIntExact(e.shape(0)), Math.toIntExact(e.shape(1)), Math.toIntExact(c.shape(0)), vocabOffset,
          vocabTotal, options);
    }

    /** Target of row i after the shift, or the ignore index. */
    long target(int i) {
      int pos = i + options.shift();
      return pos < n ? targets[pos] : options.ignoreIndex();
    }

    boolean valid(int i) {
      return target(i) != options.ignoreIndex();
    }

    int validRows() {
      int count = 0;
      for (int i = 0; i < n; i++) {
        count += valid(i) ? 1 : 0;
      }
      return count;
    }

    /** Logits of row i over this shard's columns, in double: bias added, then softcap. */
    double[] logits(int i) {
      double[] z = new double[v];
      double cap = options.softcap();
      for (int j = 0; j < v; j++) {
        double dot = 0;
        for (int k = 0; k < d; k++) {
          dot += (double) e[i * d + k] * c[j * d + k];
        }
        if (bias != null) {
          dot += bias[j];
        }
        z[j] = cap > 0 ? cap * Math.tanh(dot / cap) : dot;
      }
      return z;
    }

    /** Column of the target in this shard, or -1 when the target lies outside it. */
    int targetColumn(int i) {
      long col = target(i) - vocabOffset;
      return col >= 0 && col < v ? (int) col : -1;
    }
  }

  /** Per-row statistics over the shard: log-sum-exp, target logit (0 if absent), sum of logits. */
  record RowStats(double lse, double targetLogit, double sumLogits) {
    static RowStats of(double[] z, int targetColumn) {
      double max = Double.NEGATIVE_INFINITY;
      double sum = 0;
      for (double x : z) {
        max = Math.max(max, x);
        sum += x;
      }
      double s = 0;
      for (double x : z) {
        s += Math.exp(x - max);
      }
      return new RowStats(max + Math.log(s), targetColumn >= 0 ? z[targetColumn] : 0, sum);
    }
  }

  /** loss_i from whole-vocabulary statistics (see cce_math.h). */
  static double rowLoss(CceOptions o, long vocabTotal, double lse, double targetLogit, double sumLogits) {
    double ls = o.labelSmoothing();
    return (1 - ls) * (lse - targetLogit) + ls * (lse - sumLogits / vocabTotal) + o.zLossScale() * lse * lse;
  }

  /**
   * Forward. Writes lse [N] (0 at ignored rows); targetLogit and sumLogits [N] when non-null; loss
   * ([N] for NONE, a scalar otherwise) when non-null (whole vocabulary only).
   */
  static void forward(Problem p, Tensor loss, Tensor lse, Tensor targetLogit, Tensor sumLogits) {
    double total = 0;
    for (int i = 0; i < p.n; i++) {
      RowStats s = p.valid(i) ? RowStats.of(p.logits(i), p.targetColumn(i)) : new RowStats(0, 0, 0);
      lse.setDouble(i, s.lse);
      if (targetLogit != null) {
        targetLogit.setDouble(i, s.targetLogit);
      }
      if (sumLogits != null) {
        sumLogits.setDouble(i, s.sumLogits);
      }
      double rowLoss = p.valid(i) ? rowLoss(p.options, p.vocabTotal, s.lse, s.targetLogit, s.sumLogits) : 0;
      if (loss != null && p.options.reduction() == Reduction.NONE) {
        loss.setDouble(i, rowLoss);
      }
      total += rowLoss;
    }
    if (loss != null && p.options.reduction() != Reduction.NONE) {
      loss.setDouble(0, p.options.reduction() == Reduction.SUM ? total : total / p.validRows());
    }
  }

  /**
   * Backward: exact gradients given the whole-vocabulary lse [N], gradLoss ([N] or scalar) and
   * optional gradLse [N]. Each non-null output is overwritten; gradE is this shard's part.
   */
  static void backward(Problem p, Tensor lse, Tensor gradLoss, Tensor gradLse, Tensor gradE, Tensor gradC,
      Tensor gradBias) {
    CceOptions o = p.options;
    int d = p.d;
    double[] dE = new double[p.n * d];
    double[] dC = new double[p.v * d];
    double[] dBias = new double[p.v];
    int validRows = p.validRows();
    for (int i = 0; i < p.n; i++) {
      if (!p.valid(i)) {
        continue;
      }
      double w = switch (o.reduction()) {
        case NONE -> gradLoss.getDouble(i);
        case SUM -> gradLoss.getDouble(0);
        case MEAN -> gradLoss.getDouble(0) / validRows;
      };
      double l = lse.getDouble(i);
      double dl = gradLse == null ? 0 : gradLse.getDouble(i);
      double a = w * (1 + 2 * o.zLossScale() * l) + dl;
      double b = w * (1 - o.labelSmoothing());
      double u = w * o.labelSmoothing() / p.vocabTotal;
      double[] z = p.logits(i);
      int t = p.targetColumn(i);
      for (int j = 0; j < p.v; j++) {
        double g = Math.exp(z[j] - l) * a - (j == t ? b : 0) - u;
        if (o.softcap() > 0) {
          double r = z[j] / o.softcap();
          g *= 1 - r * r;
        }
        if (g == 0) {
          continue;
        }
        dBias[j] += g;
        for (int k = 0; k < d; k++) {
          dE[i * d + k] += g * p.c[j * d + k];
          dC[j * d + k] += g * p.e[i * d + k];
        }
      }
    }
    store(gradE, dE);
    store(gradC, dC);
    store(gradBias, dBias);
  }

  private static void store(Tensor out, double[] values) {
    if (out == null) {
      return;
    }
    for (int i = 0; i < values.length; i++) {
      out.setDouble(i, values[i]);
    }
  }
}
