package io.github.llmkernels.kvcache;

import io.github.llmkernels.internal.Check;
import io.github.llmkernels.internal.Dispatch;
import io.github.llmkernels.internal.KvSelectArgs;
import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.internal.Operand;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Tensor;

/**
 * Deterministic per-head top-k over scores: head (b, h) keeps budgets[b][h] tokens, first the
 * forced ones (positions < sinks and >= n - recent), then the highest scores, ties to the lower
 * position, so every backend keeps the same set (bf16 KNorm scores are mostly ties). The result
 * lists each head's kept positions in ascending order ({@link KeptTokens}).
 *
 * <p>Rules: scores F32 [B, H, n], contiguous, no NaN (a NaN is an error naming its position);
 * sinks, recent >= 0; every budget in {@code [min(n, sinks + recent), n]}: a budget of 0 is
 * allowed only without forced tokens, a budget above n is an error (a head cannot keep more than
 * it holds). Backends: JAVA ({@link KvSelectionRef}), NATIVE, CUDA.
 */
public final class KvSelection {
  private static final String OP = "KvSelection.select";

  private KvSelection() {}

  /** The same budget for every head. */
  public static KeptTokens select(Tensor scores, int budget, int sinks, int recent) {
    return select(scores, budget, sinks, recent, Exec.DEFAULT);
  }

  public static KeptTokens select(Tensor scores, int budget, int sinks, int recent, Exec exec) {
    checkScores(scores);
    int[][] budgets = new int[(int) scores.shape(0)][(int) scores.shape(1)];
    for (int[] row : budgets) {
      java.util.Arrays.fill(row, budget);
    }
    return select(scores, budgets, sinks, recent, exec);
  }

  /** Per-head budgets [B][H] (e.g. from {@link KvBudgets#adaKv}). */
  public static KeptTokens select(Tensor scores, int[][] budgets, int sinks, int recent) {
    return select(scores, budgets, sinks, recent, Exec.DEFAULT);
  }

  public static KeptTokens select(Tensor scores, int[][] budgets, int sinks, int recent, Exec exec) {
    checkScores(scores);
    if (exec == null) {
      throw new IllegalArgumentException(OP + ": exec must not be null");
    }
    int b = (int) scores.shape(0);
    int h = (int) scores.shape(1);
    long n = scores.shape(2);
    int maxKeep = checkBudgets(budgets, b, h, n, sinks, recent);
    Tensor kept = Tensor.allocate(DType.I32, scores.device(), b, h, maxKeep);
    try {
      Operand[] operands = {Operand.of("scores", scores), Operand.of("kept", kept)};
      Backend backend = Dispatch.select(OP, exec, operands);
      try {
        if (backend == Backend.JAVA) {
          int[][] rows = KvSelectionRef.select(scores.toFloatArray(), b, h, (int) n, budgets, sinks, recent);
          for (int bh = 0; bh < b * h; bh++) {
            for (int i = 0; i < maxKeep; i++) {
              kept.setDouble((long) bh * maxKeep + i, i < rows[bh].length ? rows[bh][i] : -1);
            }
          }
        } else {
          int[] flat = new int[b * h];
          for (int bh = 0; bh < b * h; bh++) {
            flat[bh] = budgets[bh / h][bh % h];
          }
          boolean cuda = backend == Backend.CUDA;
          try (Tensor hostBudgets = Tensor.of(flat, b, h);
              Tensor budgetTensor = cuda ? hostBudgets.to(scores.device()) : null) {
            Tensor bt = cuda ? budgetTensor : hostBudgets;
            KvSelectArgs a = new KvSelectArgs().set(KvSelectArgs.BATCH, b).set(KvSelectArgs.HEADS, h)
                .set(KvSelectArgs.N, n).set(KvSelectArgs.SINKS, sinks).set(KvSelectArgs.RECENT, recent)
                .set(KvSelectArgs.MAX_KEEP, maxKeep).set(KvSelectArgs.SCORES, scores.address())
                .set(KvSelectArgs.BUDGETS, bt.address()).set(KvSelectArgs.KEPT, kept.address());
            if (cuda) {
              a.set(KvSelectArgs.DEVICE, scores.device().index());
              a.set(KvSelectArgs.STREAM, exec.stream() == null ? 0 : exec.stream().handle());
            }
            NativeApi.kvSelect(a, cuda);
          }
        }
      } finally {
        Dispatch.keepAlive(operands);
      }
      int[][] counts = new int[b][];
      for (int i = 0; i < b; i++) {
        counts[i] = budgets[i].clone();
      }
      return new KeptTokens(kept, counts, n);
    } catch (RuntimeException e) {
      kept.close();
      throw e;
    }
  }

  private static void checkScores(Tensor scores) {
    if (scores == null) {
      throw new IllegalArgumentException(OP + ": scores must not be null");
    }
    scores.requireOpen("scores");
    Check.rank("scores", scores, 3, "(B, H, n)");
    Check.dtype("scores", scores, DType.F32);
    scores.requireContiguous("scores");
    if (scores.shape(2) > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(OP + ": n must be <= 2^31 - 1 (kept positions are int32); got "
          + scores.shape(2));
    }
  }

  /** Checks every budget; returns the largest (the row length of kept). */
  static int checkBudgets(int[][] budgets, int b, int h, long n, int sinks, int recent) {
    if (sinks < 0 || recent < 0) {
      throw new IllegalArgumentException(OP + ": sinks and recent must be >= 0; got " + sinks + ", " + recent);
    }
    if (budgets == null || budgets.length != b) {
      throw new IllegalArgumentException(OP + ": budgets must have B = " + b + " rows, got "
          + (budgets == null ? "null" : budgets.length));
    }
    long lo = KvSelectionRef.forcedCount(n, sinks, recent);
    int max = 0;
    for (int i = 0; i < b; i++) {
      if (budgets[i] == null || budgets[i].length != h) {
        throw new IllegalArgumentException(OP + ": budgets[" + i + "] must have H = " + h + " entries, got "
            + (budgets[i] == null ? "null" : budgets[i].length));
      }
      for (int j = 0; j < h; j++) {
        int budget = budgets[i][j];
        if (budget > n) {
          throw new IllegalArgumentException(OP + ": budgets[" + i + "][" + j + "] = " + budget + " (head b = " + i
              + ", h = " + j + ") exceeds n = " + n + ": a head cannot keep more tokens than it holds");
        }
        if (budget < lo) {
          throw new IllegalArgumentException(OP + ": budgets[" + i + "][" + j + "] = " + budget + " (head b = " + i
              + ", h = " + j + ") is below the " + lo + " forced tokens (min(n, sinks + recent) with sinks = "
              + sinks + ", recent = " + recent + "); a budget of 0 needs sinks + recent = 0");
        }
        max = Math.max(max, budget);
      }
    }
    return max;
  }
}
