package io.github.llmkernels.attention;

import io.github.llmkernels.internal.Dispatch;
import io.github.llmkernels.internal.Operand;
import io.github.llmkernels.internal.PrefillArgs;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Dynamic sparse prefill: estimators that look at a prompt's queries and keys and choose, per
 * (batch, query head), which tiles of causal attention to compute, without materialising
 * Sq x Sk. MInference vertical-slash ({@link VerticalSlashOptions}), A-shape
 * ({@link AShapeOptions}) and block top-k ({@link BlockTopKOptions}), FlexPrefill
 * ({@link FlexPrefillOptions}) and XAttention ({@link XAttentionOptions}).
 *
 * <pre>{@code
 * try (PrefillEstimate e = SparsePrefill.estimate(q, k, FlexPrefillOptions.defaults());
 *      AttentionOutput o = SparseAttention.forward(q, k, v, e.layout(), AttentionOptions.defaults())) {
 *   // e.density(), e.head(0, h).pattern(), o.out() ...
 * }
 * }</pre>
 *
 * <p>Inputs: q [B, Hq, Sq, d], k [B, Hkv, Sk, d] (v is not read), contiguous, one dtype among
 * F32, F16 and BF16, one device; Hkv divides Hq (query head h reads KV head
 * {@code h / (Hq / Hkv)}); 1 <= Sq <= Sk, bottom-right aligned as {@link MaskSpec#causal()}
 * (the queries are the last Sq positions). Varlen is not supported. The layout has base mask
 * causal: selected tiles crossing the diagonal are PARTIAL, those below it FULL; vertical-slash
 * in its default TOKENS mode adds its columns as the layout's token list
 * ({@link BlockLayout#columns}), which the attention computes outside the listed tiles.
 *
 * <p>Backends: JAVA ({@link SparsePrefillRef}), NATIVE and CUDA (llmk_prefill_score then
 * llmk_prefill_select, then the layout from the selection). Given the same F32 scores every
 * backend selects the same tiles (one exception: FlexPrefill's divergence uses each platform's
 * exp and log, so a head whose divergence lies within about an ulp of tau may decide
 * differently); scores themselves differ by floating-point rounding. A-shape
 * compiles its mask on every backend. Bad arguments throw {@link IllegalArgumentException}
 * naming the method, the parameter, the rule and the value; a closed tensor throws
 * {@link IllegalStateException}.
 */
public final class SparsePrefill {
  private static final String OP = "SparsePrefill.estimate";

  private SparsePrefill() {}

  /** Estimate with default execution (backend from the tensors' device). */
  public static PrefillEstimate estimate(Tensor q, Tensor k, PrefillOptions options) {
    return estimate(q, k, options, Exec.DEFAULT);
  }

  /** Estimate the layout of q and k with the given options, backend and stream. */
  public static PrefillEstimate estimate(Tensor q, Tensor k, PrefillOptions options, Exec exec) {
    return estimate(q, k, options, exec, 0);
  }

  /**
   * Estimate, attend over the estimated layout, close the estimate. The estimator scale is the
   * options' scale, or the attention scale when the options leave it at 0.
   */
  public static AttentionOutput forward(Tensor q, Tensor k, Tensor v, PrefillOptions prefill,
      AttentionOptions attention, Exec exec) {
    if (q == null || attention == null) {
      throw new IllegalArgumentException("SparsePrefill.forward: " + (q == null ? "q" : "attention")
          + " must not be null");
    }
    q.requireOpen("q");
    double scale = q.rank() == 4 ? attention.resolvedScale(q.shape(3)) : 0;
    try (PrefillEstimate e = estimate(q, k, prefill, exec, scale)) {
      return SparseAttention.forward(q, k, v, e.layout(), attention, exec);
    }
  }

  static PrefillEstimate estimate(Tensor q, Tensor k, PrefillOptions options, Exec exec, double scaleOverride) {
    if (exec == null) {
      throw new IllegalArgumentException(OP + ": exec must not be null");
    }
    PrefillParams p = PrefillParams.resolve(OP, q, k, options, scaleOverride);
    Operand[] operands = {Operand.of("q", q), Operand.of("k", k)};
    Backend backend = Dispatch.select(OP + " (" + options.method() + ")", exec, operands);
    Exec layoutExec = new Exec(backend == Backend.CUDA ? Backend.AUTO : backend, exec.stream());
    long t0 = System.nanoTime();
    BlockLayout layout = null;
    try {
      long[] counts;
      float[] divergence;
      long nanos;
      if (options instanceof AShapeOptions a) {
        layout = BlockLayout.compile(a.mask(), p.batch(), p.headsQ(), p.seqQ(), p.seqK(), a.block(), a.block(), null,
            null, q.device(), layoutExec);
        nanos = System.nanoTime() - t0; // the per-head statistics below are bookkeeping, not estimation
        counts = new long[p.batch() * p.headsQ() * PrefillArgs.HEAD_COUNT_FIELDS];
        long[] tiles = SparsePrefillRef.headTiles(layout);
        for (int i = 0; i < tiles.length; i++) {
          counts[i * PrefillArgs.HEAD_COUNT_FIELDS] = HeadPattern.A_SHAPE.code();
          counts[i * PrefillArgs.HEAD_COUNT_FIELDS + 3] = tiles[i];
        }
        divergence = null;
      } else if (backend == Backend.JAVA) {
        float[] scores = SparsePrefillRef.score(p, q.toFloatArray(), k.toFloatArray());
        SparsePrefillRef.Selection s = SparsePrefillRef.select(p, scores);
        try (Tensor bm = Tensor.of(s.selection(), DType.U8, p.batch(), p.headsQ(), p.numQBlocks(), p.numKBlocks());
            Tensor cols = s.columns() == null ? null
                : Tensor.of(s.columns(), p.batch(), p.headsQ(), p.verticalSize())) {
          layout = BlockLayout.fromBlockMask(MaskSpec.causal(), p.batch(), p.headsQ(), p.seqQ(), p.seqK(), p.blockQ(),
              p.blockK(), bm, cols, Device.CPU, layoutExec);
        }
        counts = s.headCounts();
        divergence = s.divergence();
        nanos = System.nanoTime() - t0;
      } else {
        try (Tensor scores = PrefillKernels.score(p, q, k, backend, exec);
            PrefillKernels.NativeSelection s = PrefillKernels.select(p, scores, backend, exec)) {
          layout = BlockLayout.fromBlockMask(MaskSpec.causal(), p.batch(), p.headsQ(), p.seqQ(), p.seqK(), p.blockQ(),
              p.blockK(), s.selection(), s.columns(), q.device(), layoutExec);
          counts = longs(s.headCounts());
          divergence = s.divergence().toFloatArray();
        }
        nanos = System.nanoTime() - t0;
      }
      return new PrefillEstimate(options, layout, heads(p, counts, divergence), nanos);
    } catch (RuntimeException e) {
      if (layout != null) {
        layout.close();
      }
      throw e;
    } finally {
      Dispatch.keepAlive(operands);
    }
  }

  /** Pairs the token columns add over the layout's rows (see {@link #density}); 0 without columns. */
  private static double columnPairs(BlockLayout layout, BlockCsr csr) {
    if (layout.columnCapacity() == 0) {
      return 0;
    }
    double pairs = 0;
    long off = (long) layout.seqK() - layout.seqQ();
    int nqb = layout.numQBlocks();
    for (int b = 0; b < layout.layoutBatch(); b++) {
      for (int h = 0; h < layout.layoutHeads(); h++) {
        int[] cols = layout.columns(b, h);
        for (int qb = 0; qb < nqb; qb++) {
          int r = layout.row(b, h, qb);
          long q0 = (long) qb * layout.blockQ();
          long q1 = Math.min(q0 + layout.blockQ(), layout.seqQ());
          int e = (int) csr.indptr()[r];
          int to = (int) csr.indptr()[r + 1];
          for (int j : cols) {
            if (j > q1 - 1 + off) {
              break; // ascending: no later column is visible either
            }
            int kb = j / layout.blockK();
            while (e < to && csr.indices()[e] < kb) {
              e++; // columns and the row's blocks both ascend: one merge walk
            }
            if (e == to || csr.indices()[e] != kb) {
              pairs += q1 - Math.max(q0, j - off);
            }
          }
        }
      }
    }
    return pairs;
  }

  private static long[] longs(Tensor t) {
    try (Tensor h = t.to(Device.CPU)) {
      long[] out = new long[(int) h.numel()];
      for (int i = 0; i < out.length; i++) {
        out[i] = h.getLong(i);
      }
      return out;
    }
  }

  private static List<HeadInfo> heads(PrefillParams p, long[] counts, float[] divergence) {
    List<HeadInfo> out = new ArrayList<>(p.batch() * p.headsQ());
    int f = PrefillArgs.HEAD_COUNT_FIELDS;
    for (int b = 0; b < p.batch(); b++) {
      for (int h = 0; h < p.headsQ(); h++) {
        int i = b * p.headsQ() + h;
        double div = divergence == null || p.method() != PrefillMethod.FLEX_PREFILL ? Double.NaN : divergence[i];
        out.add(new HeadInfo(b, h, HeadPattern.of(counts[i * f]), counts[i * f + 1], counts[i * f + 2],
            counts[i * f + 3], counts[i * f + 4], div));
      }
    }
    return out;
  }

  /**
   * Pairs computed over B x Hq x Sq x Sk: listed tiles whole (clipped to the sequence), plus each
   * token column outside its row's listed tiles for the rows of the query block that see it
   * under the base mask causal (bottom-right: query q sees key j iff j <= q + Sk - Sq).
   */
  static double density(BlockLayout layout) {
    BlockCsr csr = layout.toCsr();
    double pairs = 0;
    int rows = layout.rows();
    int nqb = layout.numQBlocks();
    for (int r = 0; r < rows; r++) {
      int qb = r % nqb;
      long qRows = Math.min((long) (qb + 1) * layout.blockQ(), layout.seqQ()) - (long) qb * layout.blockQ();
      long cols = 0;
      for (long e = csr.indptr()[r]; e < csr.indptr()[r + 1]; e++) {
        int kb = csr.indices()[(int) e];
        cols += Math.min((long) (kb + 1) * layout.blockK(), layout.seqK()) - (long) kb * layout.blockK();
      }
      pairs += (double) qRows * cols;
    }
    pairs += columnPairs(layout, csr);
    double serves = (double) layout.batch() / layout.layoutBatch() * layout.heads() / layout.layoutHeads();
    double all = (double) layout.batch() * layout.heads() * layout.seqQ() * layout.seqK();
    return all == 0 ? 0 : pairs * serves / all;
  }
}
