package io.github.llmkernels.kvcache;

import io.github.llmkernels.internal.Check;
import io.github.llmkernels.internal.Dispatch;
import io.github.llmkernels.internal.KvDecodeArgs;
import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.internal.Operand;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Shapes;
import io.github.llmkernels.tensor.Tensor;

/**
 * One decode step of attention over a compacted cache: query head h of batch b attends over all
 * tokens of its KV head {@code h / (Hq / Hkv)} (GQA / MQA), whatever their count:
 * {@code out = softmax(scale q . k) v}, lse the natural-log log-sum-exp of the scores; an empty
 * head gives out 0 and lse -inf. Key order does not matter, so a compacted cache needs no mask.
 *
 * <p>q [B, Hq, d] of the cache's dtype, contiguous, on its device; out in q's dtype (or F32 when
 * asked), lse F32. Backends: JAVA ({@link DecodeAttentionRef}, double), NATIVE, CUDA.
 */
public final class DecodeAttention {
  private static final String OP = "DecodeAttention.forward";

  private DecodeAttention() {}

  /** Over a varlen cache with scale 1/sqrt(d). */
  public static DecodeOutput forward(Tensor q, VarlenKvCache cache) {
    return forward(q, cache, 0, Exec.DEFAULT);
  }

  /** @param scale > 0, or 0 for 1/sqrt(d) */
  public static DecodeOutput forward(Tensor q, VarlenKvCache cache, double scale) {
    return forward(q, cache, scale, Exec.DEFAULT);
  }

  public static DecodeOutput forward(Tensor q, VarlenKvCache cache, double scale, Exec exec) {
    if (cache == null) {
      throw new IllegalArgumentException(OP + ": cache must not be null");
    }
    cache.requireOpen("cache");
    return run(q, cache.k(), cache.v(), cache.cu(), cache.cuHost(), cache.cuOnDevice(), cache.headsKv(), scale, exec);
  }

  /** Over a dense cache with scale 1/sqrt(d). */
  public static DecodeOutput forward(Tensor q, DenseKvCache cache) {
    return forward(q, cache, 0, Exec.DEFAULT);
  }

  public static DecodeOutput forward(Tensor q, DenseKvCache cache, double scale) {
    return forward(q, cache, scale, Exec.DEFAULT);
  }

  /** A dense cache [B, Hkv, K, d] is the varlen layout with cu = 0, K, 2K, ...: same kernel. */
  public static DecodeOutput forward(Tensor q, DenseKvCache cache, double scale, Exec exec) {
    if (cache == null) {
      throw new IllegalArgumentException(OP + ": cache must not be null");
    }
    Tensor k = cache.k();
    Tensor v = cache.v();
    k.requireOpen("cache.k");
    v.requireOpen("cache.v");
    Check.rank("cache.k", k, 4, "(B, Hkv, K, d)");
    // The cache is a public record: v must really be k's twin before both are viewed as rows.
    if (!java.util.Arrays.equals(v.shape(), k.shape()) || v.dtype() != k.dtype() || !v.device().equals(k.device())) {
      throw new IllegalArgumentException(OP + ": cache.v must have cache.k's shape, dtype and device; got v "
          + v.dtype() + Shapes.format(v.shape()) + " on " + v.device() + ", k " + k.dtype() + Shapes.format(k.shape())
          + " on " + k.device());
    }
    k.requireContiguous("cache.k");
    v.requireContiguous("cache.v");
    long len = k.shape(2);
    long[] cu = new long[(int) (k.shape(0) * k.shape(1)) + 1];
    for (int i = 1; i < cu.length; i++) {
      cu[i] = cu[i - 1] + len;
    }
    long rows = k.shape(0) * k.shape(1) * len;
    try (Tensor kFlat = k.view(rows, k.shape(3));
        Tensor vFlat = v.view(rows, v.shape(3));
        Tensor cuHost = Tensor.of(cu, cu.length);
        Tensor cuDevice = k.device().isCuda() ? cuHost.to(k.device()) : null) {
      return run(q, kFlat, vFlat, cu, cuHost, cuDevice != null ? cuDevice : cuHost, (int) k.shape(1), scale, exec);
    } finally {
      java.lang.ref.Reference.reachabilityFence(cache);
    }
  }

  private static DecodeOutput run(Tensor q, Tensor k, Tensor v, long[] cu, Tensor cuHost, Tensor cuDev, int hkv,
      double scale, Exec exec) {
    if (q == null || exec == null) {
      throw new IllegalArgumentException(OP + ": " + (q == null ? "q" : "exec") + " must not be null");
    }
    q.requireOpen("q");
    Check.rank("q", q, 3, "(B, Hq, d)");
    Check.dtype("q", q, DType.F32, DType.F16, DType.BF16);
    Check.sameDType("cache.k", k, "q", q);
    long b = q.shape(0);
    long hq = q.shape(1);
    long d = q.shape(2);
    if (hq < 1 || d < 1) {
      throw new IllegalArgumentException(OP + ": q must have Hq >= 1 and d >= 1; got shape " + Shapes.format(q.shape()));
    }
    if (hq % hkv != 0) {
      throw new IllegalArgumentException(OP + ": heads in the cache (Hkv = " + hkv
          + ") must divide heads in q (Hq = " + hq + ")");
    }
    if (cu.length != b * hkv + 1) {
      throw new IllegalArgumentException(OP + ": q has B = " + b + " but the cache holds "
          + (cu.length - 1) / hkv + " batch rows");
    }
    Check.dim("cache.k", k, 1, d, "d (from q)");
    if (!(scale >= 0) || Double.isInfinite(scale)) {
      throw new IllegalArgumentException(OP + ": scale must be finite and > 0 (or 0 for 1/sqrt(d)); got " + scale);
    }
    double s = scale == 0 ? 1.0 / Math.sqrt(d) : scale;
    q.requireContiguous("q");
    Operand[] operands = {Operand.of("q", q), Operand.of("cache.k", k), Operand.of("cache.v", v),
        Operand.of("cache.cu", cuDev)};
    Backend backend = Dispatch.select(OP, exec, operands);
    Tensor out = Tensor.allocate(q.dtype(), q.device(), b, hq, d);
    Tensor lse = null;
    try {
      lse = Tensor.allocate(DType.F32, q.device(), b, hq);
      if (backend == Backend.JAVA) {
        DecodeAttentionRef.Result r = DecodeAttentionRef.varlen(q, k, v, cu, hkv, s);
        KvScores.write(out, r.out());
        KvScores.write(lse, r.lse());
      } else {
        boolean cuda = backend == Backend.CUDA;
        KvDecodeArgs a = new KvDecodeArgs().set(KvDecodeArgs.BATCH, b).set(KvDecodeArgs.HEADS_Q, hq)
            .set(KvDecodeArgs.HEADS_KV, hkv).set(KvDecodeArgs.HEAD_DIM, d).set(KvDecodeArgs.DTYPE, q.dtype().code())
            .set(KvDecodeArgs.OUT_DTYPE, out.dtype().code()).setDouble(KvDecodeArgs.SCALE, s)
            .set(KvDecodeArgs.Q, q.address()).set(KvDecodeArgs.K, k.address()).set(KvDecodeArgs.V, v.address())
            .set(KvDecodeArgs.CU, cuDev.address()).set(KvDecodeArgs.OUT, out.address())
            .set(KvDecodeArgs.LSE, lse.address());
        if (cuda) {
          a.set(KvDecodeArgs.DEVICE, q.device().index());
          a.set(KvDecodeArgs.STREAM, exec.stream() == null ? 0 : exec.stream().handle());
        }
        try {
          NativeApi.kvDecodeAttention(a, cuda);
        } finally {
          Dispatch.keepAlive(operands);
          java.lang.ref.Reference.reachabilityFence(cuHost);
        }
      }
      return new DecodeOutput(out, lse);
    } catch (RuntimeException e) {
      out.close();
      if (lse != null) {
        lse.close();
      }
      throw e;
    }
  }
}
