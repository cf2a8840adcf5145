package io.github.llmkernels.kvcache;

import io.github.llmkernels.internal.Check;
import io.github.llmkernels.internal.Dispatch;
import io.github.llmkernels.internal.KvScoreArgs;
import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.internal.Operand;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Shapes;
import io.github.llmkernels.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Per-token scores of a KV cache, per KV head (higher = keep): F32 [B, Hkv, n] on the inputs'
 * device, ready for {@link KvSelection#select}. Definitions in {@link KvScoresRef}.
 *
 * <pre>{@code
 * try (Tensor scores = KvScores.snapKv(qWindow, k, SnapKvOptions.defaults());   // SnapKV, avg-pool 5
 *      KeptTokens kept = KvSelection.select(scores, 1024, 4, qWindow.shape(2));  // keep sinks + window
 *      VarlenKvCache c = KvCompaction.varlen(k, v, null, kept)) { ... }
 * }</pre>
 *
 * <p>Inputs: k [B, Hkv, n, d], queries [B, Hq, q_len, d] with 1 <= q_len <= n and Hq a multiple
 * of Hkv (query head h belongs to KV head {@code h / (Hq / Hkv)}); one dtype among F32, F16 and
 * BF16; contiguous; one device. The query window holds the last q_len positions (query i sits at
 * {@code n - q_len + i}, causal). SnapKV's window should be kept whatever its scores: pass
 * {@code recent = q_len} to the selection.
 *
 * <p>Backends: JAVA ({@link KvScoresRef}, double, rounded to F32 once), NATIVE, CUDA; AUTO picks
 * from the tensors' device. Bad arguments throw {@link IllegalArgumentException} naming the
 * argument and the rule; a closed tensor throws {@link IllegalStateException}.
 */
public final class KvScores {
  private KvScores() {}

  // ---- KNorm --------------------------------------------------------------------------------

  /** KNorm: {@code -||k_j||_2} per cached token. */
  public static Tensor knorm(Tensor k) {
    return knorm(k, Exec.DEFAULT);
  }

  public static Tensor knorm(Tensor k, Exec exec) {
    String op = "KvScores.knorm";
    checkK(op, k);
    return run(new Call(op, KvScoreArgs.KNORM, null, k, k.shape(0), k.shape(1), k.shape(1), k.shape(2), k.shape(3),
        k.dtype(), 0, KvPooling.NONE, 1, 0, 0, 1, null, k.device()), exec);
  }

  // ---- position-only scores -------------------------------------------------------------------

  /** Recency (StreamingLLM with sinks forced at selection): score j, host tensor. */
  public static Tensor recency(long batch, long headsKv, long n) {
    return recency(batch, headsKv, n, Device.CPU, Exec.DEFAULT);
  }

  public static Tensor recency(long batch, long headsKv, long n, Device device, Exec exec) {
    String op = "KvScores.recency";
    checkSizes(op, batch, headsKv, n);
    return run(new Call(op, KvScoreArgs.RECENCY, null, null, batch, headsKv, headsKv, n, 0, DType.F32, 0,
        KvPooling.NONE, 1, 0, 0, 1, null, requireDevice(op, device)), exec);
  }

  /**
   * LaCache ladder for one layer: tokens at {@code j % rung == layer % rung} score {@code 2 + j/n},
   * the others {@code 1 + j/n}; host tensor.
   */
  public static Tensor ladder(long batch, long headsKv, long n, long layer, long rung) {
    return ladder(batch, headsKv, n, layer, rung, Device.CPU, Exec.DEFAULT);
  }

  public static Tensor ladder(long batch, long headsKv, long n, long layer, long rung, Device device, Exec exec) {
    String op = "KvScores.ladder";
    checkSizes(op, batch, headsKv, n);
    if (layer < 0) {
      throw new IllegalArgumentException(op + ": layer must be >= 0; got " + layer);
    }
    if (rung < 1) {
      throw new IllegalArgumentException(op + ": rung must be >= 1; got " + rung);
    }
    return run(new Call(op, KvScoreArgs.LADDER, null, null, batch, headsKv, headsKv, n, 0, DType.F32, 0,
        KvPooling.NONE, 1, 0, layer, rung, null, requireDevice(op, device)), exec);
  }

  // ---- attention-based scores ---------------------------------------------------------------

  /** SnapKV: the window's causal attention, averaged over the window and the GQA group, pooled. */
  public static Tensor snapKv(Tensor qWindow, Tensor k, SnapKvOptions options) {
    return snapKv(qWindow, k, options, Exec.DEFAULT);
  }

  public static Tensor snapKv(Tensor qWindow, Tensor k, SnapKvOptions options, Exec exec) {
    String op = "KvScores.snapKv";
    if (options == null) {
      throw new IllegalArgumentException(op + ": options must not be null");
    }
    checkQk(op, "qWindow", qWindow, k);
    return run(new Call(op, KvScoreArgs.SNAPKV, qWindow, k, k.shape(0), qWindow.shape(1), k.shape(1), k.shape(2),
        k.shape(3), k.dtype(), qWindow.shape(2), options.pooling(), options.resolvedKernel(),
        options.resolvedScale(k.shape(3)), 0, 1, null, k.device()), exec);
  }

  /** TOVA: attention of the last query (qLast [B, Hq, 1, d]) averaged over the GQA group. */
  public static Tensor tova(Tensor qLast, Tensor k) {
    return tova(qLast, k, Exec.DEFAULT);
  }

  public static Tensor tova(Tensor qLast, Tensor k, Exec exec) {
    String op = "KvScores.tova";
    checkQk(op, "qLast", qLast, k);
    if (qLast.shape(2) != 1) {
      throw new IllegalArgumentException(op + ": qLast must hold one query [B, Hq, 1, d], got shape "
          + Shapes.format(qLast.shape()));
    }
    return run(new Call(op, KvScoreArgs.SNAPKV, qLast, k, k.shape(0), qLast.shape(1), k.shape(1), k.shape(2),
        k.shape(3), k.dtype(), 1, KvPooling.NONE, 1, 1.0 / Math.sqrt(k.shape(3)), 0, 1, null, k.device()), exec);
  }

  /** H2O / observed attention with scale 1/sqrt(d); accumulates into state. */
  public static Tensor observed(Tensor q, Tensor k, ObservedAttention state) {
    return observed(q, k, state, 0, Exec.DEFAULT);
  }

  /**
   * H2O / observed attention: adds the causal attention of q [B, Hq, m, d] (the last m positions)
   * to the state and returns attn_sum / attn_count.
   *
   * @param scale softmax scale > 0, or 0 for 1/sqrt(d)
   */
  public static Tensor observed(Tensor q, Tensor k, ObservedAttention state, double scale, Exec exec) {
    String op = "KvScores.observed";
    if (state == null) {
      throw new IllegalArgumentException(op + ": state must not be null");
    }
    state.requireOpen();
    checkQk(op, "q", q, k);
    if (!(scale >= 0) || Double.isInfinite(scale)) {
      throw new IllegalArgumentException(op + ": scale must be finite and > 0 (or 0 for 1/sqrt(d)); got " + scale);
    }
    Check.dim("state.attnSum", state.attnSum(), 0, k.shape(0), "B (from k)");
    Check.dim("state.attnSum", state.attnSum(), 1, k.shape(1), "Hkv (from k)");
    Check.dim("state.attnSum", state.attnSum(), 2, k.shape(2), "n (from k; grow the state as the cache grows)");
    return run(new Call(op, KvScoreArgs.OBSERVED, q, k, k.shape(0), q.shape(1), k.shape(1), k.shape(2), k.shape(3),
        k.dtype(), q.shape(2), KvPooling.NONE, 1, scale == 0 ? 1.0 / Math.sqrt(k.shape(3)) : scale, 0, 1, state,
        k.device()), exec);
  }

  // ---- shared machinery ---------------------------------------------------------------------

  private record Call(String op, long scorer, Tensor q, Tensor k, long b, long hq, long hkv, long n, long d,
      DType dtype, long qLen, KvPooling pooling, int kernel, double scale, long layer, long rung,
      ObservedAttention state, Device device) {}

  private static Tensor run(Call c, Exec exec) {
    if (exec == null) {
      throw new IllegalArgumentException(c.op + ": exec must not be null");
    }
    Tensor scores = Tensor.allocate(DType.F32, c.device, c.b, c.hkv, c.n);
    try {
      List<Operand> ops = new ArrayList<>();
      if (c.q != null) {
        ops.add(Operand.of(c.scorer == KvScoreArgs.OBSERVED ? "q" : "qWindow", c.q));
      }
      if (c.k != null) {
        ops.add(Operand.of("k", c.k));
      }
      ops.add(Operand.of("scores", scores));
      if (c.state != null) {
        ops.add(Operand.of("state.attnSum", c.state.attnSum()));
        ops.add(Operand.of("state.attnCount", c.state.attnCount()));
      }
      Operand[] operands = ops.toArray(new Operand[0]);
      Backend backend = Dispatch.select(c.op, exec, operands);
      try {
        if (backend == Backend.JAVA) {
          runJava(c, scores);
        } else {
          NativeApi.kvScore(args(c, scores, backend, exec), backend == Backend.CUDA);
        }
      } finally {
        Dispatch.keepAlive(operands);
      }
      return scores;
    } catch (RuntimeException e) {
      scores.close();
      throw e;
    }
  }

  private static void runJava(Call c, Tensor scores) {
    double[] s;
    if (c.scorer == KvScoreArgs.KNORM) {
      s = KvScoresRef.knorm(c.k);
    } else if (c.scorer == KvScoreArgs.RECENCY) {
      s = KvScoresRef.recency(c.b, c.hkv, c.n);
    } else if (c.scorer == KvScoreArgs.LADDER) {
      s = KvScoresRef.ladder(c.b, c.hkv, c.n, c.layer, c.rung);
    } else if (c.scorer == KvScoreArgs.SNAPKV) {
      s = KvScoresRef.snapKv(c.q, c.k, c.pooling, c.kernel, c.scale);
    } else {
      Tensor sum = c.state.attnSum();
      Tensor count = c.state.attnCount();
      double[] sums = asDoubleArray(sum);
      double[] counts = asDoubleArray(count);
      s = KvScoresRef.observed(c.q, c.k, c.scale, sums, counts);
      write(sum, sums);
      write(count, counts);
    }
    write(scores, s);
  }

  private static KvScoreArgs args(Call c, Tensor scores, Backend backend, Exec exec) {
    KvScoreArgs a = new KvScoreArgs()
        .set(KvScoreArgs.SCORER, c.scorer).set(KvScoreArgs.BATCH, c.b).set(KvScoreArgs.HEADS_Q, c.hq)
        .set(KvScoreArgs.HEADS_KV, c.hkv).set(KvScoreArgs.N, c.n).set(KvScoreArgs.HEAD_DIM, c.d)
        .set(KvScoreArgs.DTYPE, c.dtype.code()).set(KvScoreArgs.Q_LEN, c.qLen)
        .set(KvScoreArgs.POOL, c.pooling.code()).set(KvScoreArgs.POOL_KERNEL, c.kernel)
        .setDouble(KvScoreArgs.SCALE, c.scale).set(KvScoreArgs.LADDER_LAYER, c.layer)
        .set(KvScoreArgs.LADDER_RUNG, c.rung)
        .set(KvScoreArgs.Q, c.q == null ? 0 : c.q.address()).set(KvScoreArgs.K, c.k == null ? 0 : c.k.address())
        .set(KvScoreArgs.SCORES, scores.address());
    if (c.state != null) {
      a.set(KvScoreArgs.ATTN_SUM, c.state.attnSum().address()).set(KvScoreArgs.ATTN_COUNT,
          c.state.attnCount().address());
    }
    if (backend == Backend.CUDA) {
      a.set(KvScoreArgs.DEVICE, c.device.index());
      a.set(KvScoreArgs.STREAM, exec.stream() == null ? 0 : exec.stream().handle());
    }
    return a;
  }

  static void checkK(String op, Tensor k) {
    if (k == null) {
      throw new IllegalArgumentException(op + ": k must not be null");
    }
    k.requireOpen("k");
    Check.rank("k", k, 4, "(B, Hkv, n, d)");
    Check.dtype("k", k, DType.F32, DType.F16, DType.BF16);
    if (k.shape(1) < 1 || k.shape(3) < 1) {
      throw new IllegalArgumentException(op + ": k must have Hkv >= 1 and d >= 1; got shape "
          + Shapes.format(k.shape()));
    }
    k.requireContiguous("k");
  }

  private static void checkQk(String op, String qName, Tensor q, Tensor k) {
    if (q == null) {
      throw new IllegalArgumentException(op + ": " + qName + " must not be null");
    }
    checkK(op, k);
    q.requireOpen(qName);
    Check.rank(qName, q, 4, "(B, Hq, q_len, d)");
    Check.sameDType(qName, q, "k", k);
    Check.dim(qName, q, 0, k.shape(0), "B (from k)");
    Check.dim(qName, q, 3, k.shape(3), "d (from k)");
    long hq = q.shape(1);
    long hkv = k.shape(1);
    if (hq < 1 || hq % hkv != 0) {
      throw new IllegalArgumentException(op + ": heads in " + qName + " (Hq = " + hq
          + ") must be a positive multiple of heads in k (Hkv = " + hkv + ")");
    }
    long w = q.shape(2);
    if (w < 1 || w > k.shape(2)) {
      throw new IllegalArgumentException(op + ": " + qName + " length q_len = " + w + " must be in [1, n = "
          + k.shape(2) + "] (the window is the last q_len cached positions)");
    }
    q.requireContiguous(qName);
  }

  private static void checkSizes(String op, long batch, long headsKv, long n) {
    if (batch < 0 || headsKv < 1 || n < 0) {
      throw new IllegalArgumentException(op + ": batch and n must be >= 0 and headsKv >= 1; got batch = " + batch
          + ", headsKv = " + headsKv + ", n = " + n);
    }
    if (n > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(op + ": n must be <= 2^31 - 1 (positions are int32); got " + n);
    }
  }

  private static Device requireDevice(String op, Device device) {
    if (device == null) {
      throw new IllegalArgumentException(op + ": device must not be null");
    }
    return device;
  }

  static double[] asDoubleArray(Tensor t) {
    float[] f = t.toFloatArray();
    double[] d = new double[f.length];
    for (int i = 0; i < f.length; i++) {
      d[i] = f[i];
    }
    return d;
  }

  static void write(Tensor t, double[] values) {
    for (int i = 0; i < values.length; i++) {
      t.setDouble(i, values[i]);
    }
  }
}
