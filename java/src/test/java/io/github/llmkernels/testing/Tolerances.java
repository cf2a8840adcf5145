package io.github.llmkernels.testing;

/**
 * Every tolerance the tests use, in one place. Kernels that move bits (gather, compaction,
 * conversions) must be exact; arithmetic kernels add their atol/rtol here with the reason.
 */
public final class Tolerances {
  private Tolerances() {}

  /** Row gather copies bits: any difference, even in a NaN payload, is a bug. */
  public static final long GATHER_MAX_BIT_DIFFERENCES = 0;

  /** F16/BF16 conversions are defined to the bit (round to nearest even, quiet NaN rule). */
  public static final long CONVERSION_MAX_BIT_DIFFERENCES = 0;

  // ---- cut cross-entropy ----------------------------------------------------------------
  // Backends read the same (already rounded) inputs; the reference accumulates in double, the
  // kernels in fp32, so forward statistics differ by fp32 summation error only.

  /** Loss, lse, target logit, logit sums: |x - ref| <= CCE_FWD_ATOL + CCE_FWD_RTOL * |ref|. */
  public static final double CCE_FWD_RTOL = 2e-5;
  public static final double CCE_FWD_ATOL = 1e-4;

  /**
   * Gradients, by output dtype: |x - ref| <= rtol * |ref| + atolFraction * max|ref| (the atol is
   * relative to the largest entry because gradients near zero carry only absolute error). F16/BF16
   * outputs are rounded once at the end: half an ulp is 2^-11 and 2^-8 relative.
   */
  public static double cceGradRtol(io.github.llmkernels.tensor.DType dtype) {
    return switch (dtype) {
      case BF16 -> 8e-3;
      case F16 -> 1e-3;
      default -> 2e-4;
    };
  }

  public static double cceGradAtolFraction(io.github.llmkernels.tensor.DType dtype) {
    return switch (dtype) {
      case BF16 -> 4e-3;
      case F16 -> 1e-3;
      default -> 1e-4; // p = exp(z - lse) carries ~|lse| ulps of fp32 error: 30 * 2^-24 ~ 2e-6 per entry
    };
  }

  /**
   * With gradient filtering the documented bound is added on top: a skipped entry has
   * |g_ij| < eps * scale_i, so |dE_ik error| <= eps * scale_i * sum_j |C_jk| and
   * |dC_jk error| <= eps * sum_i scale_i |E_ik| (CutCrossEntropy javadoc). Nothing else is loosened.
   */
  public static final double CCE_FILTER_BOUND_FACTOR = 1.0;

  // ---- CCE against libtorch (java/torch module): |x - ref| <= atol * max|ref| + rtol * |ref| ----

  /**
   * F32 inputs, no filtering: libtorch accumulates logits, log-softmax and the two gradient GEMMs
   * in fp32, the library in fp32 or wider. Observed ~1e-6 of the largest magnitude; 1e-5 leaves
   * margin for BLAS blocking order.
   */
  public static final double CCE_TORCH_F32_EXACT_ATOL = 1e-5;
  public static final double CCE_TORCH_F32_EXACT_RTOL = 1e-4;

  /** F32 inputs, default filtering (eps 2^-28 x row scale per entry): well under 1e-4 of max. */
  public static final double CCE_TORCH_F32_FILTERED_ATOL = 1e-4;
  public static final double CCE_TORCH_F32_FILTERED_RTOL = 1e-3;

  // ---- block-sparse attention -------------------------------------------------------------
  // The oracle is SparseAttentionRef.dense (double, mask expanded element by element) on the
  // same rounded inputs. Kernels accumulate in fp32 and use an online softmax.

  /** F32 inputs and output: |x - ref| <= ATTN_F32_ATOL + ATTN_F32_RTOL * |ref| (fp32 sums of <= 1025 terms). */
  public static final double ATTN_F32_ATOL = 2e-5;
  public static final double ATTN_F32_RTOL = 1e-4;

  /**
   * F16/BF16 inputs (anchors section 2, FlashAttention's rule): max|out - ref| <= ATTN_HALF_FACTOR
   * x max|naive - ref| + atol, where naive is the same-precision computation of the test helper
   * (scores and softmax in float from the rounded inputs, P rounded to the dtype before P.V, the
   * output rounded to the output dtype). atol covers cases where the naive error happens to be tiny.
   */
  public static final double ATTN_HALF_FACTOR = 2.0;

  public static double attnHalfAtol(io.github.llmkernels.tensor.DType dtype) {
    return dtype == io.github.llmkernels.tensor.DType.BF16 ? 4e-3 : 5e-4;
  }

  /** lse (always F32, from fp32 scores of the rounded inputs): |x - ref| <= atol + rtol * |ref|. */
  public static final double ATTN_LSE_ATOL = 1e-4;
  public static final double ATTN_LSE_RTOL = 1e-5;

  /** The JAVA backend (double, same key order as the oracle) differs by the output rounding only. */
  public static final double ATTN_JAVA_F32_RTOL = 1e-6;

  /** mergeStates: two F32 states merged in fp32 against the whole computed at once. */
  public static final double ATTN_MERGE_F32_ATOL = 2e-5;
  public static final double ATTN_MERGE_F32_RTOL = 1e-4;

  /**
   * libtorch CPU scaled_dot_product_attention (F32, its own summation order) against the library,
   * both fp32 with <= 203 keys of N(0, 1) data: max |out - torch|.
   */
  public static final double ATTN_TORCH_F32_ATOL = 5e-5;

  // ---- KV cache compaction ----------------------------------------------------------------
  // The references (KvScoresRef, DecodeAttentionRef) compute in double from the same rounded
  // inputs; the kernels in fp32. Selection and compaction move or compare bits: exact.

  /**
   * Attention-based scores (SNAPKV, TOVA, OBSERVED; probabilities <= 1) and KNORM:
   * |x - ref| <= KV_SCORE_ATOL + KV_SCORE_RTOL * |ref|. fp32 dot products of <= 128 terms and
   * softmax sums of <= 1025 terms give ~1e-6 relative; the F32 rounding of the result 6e-8.
   */
  public static final double KV_SCORE_ATOL = 1e-6;
  public static final double KV_SCORE_RTOL = 1e-4;

  /** Position-only scores (RECENCY, LADDER) are defined in float: bit-exact. */
  public static final long KV_POSITION_SCORE_MAX_BIT_DIFFERENCES = 0;

  /** Kept sets, compacted rows and positions: bit-exact on every backend. */
  public static final long KV_COMPACTION_MAX_BIT_DIFFERENCES = 0;

  /**
   * Decode attention out, by output dtype: |x - ref| <= atol + rtol * |ref|, ref in double over the
   * same rounded inputs; F16/BF16 outputs add half an ulp (2^-11, 2^-8 relative) of final rounding.
   */
  public static double kvDecodeRtol(io.github.llmkernels.tensor.DType dtype) {
    return switch (dtype) {
      case BF16 -> 8e-3;
      case F16 -> 1e-3;
      default -> 1e-4;
    };
  }

  public static double kvDecodeAtol(io.github.llmkernels.tensor.DType dtype) {
    return switch (dtype) {
      case BF16 -> 4e-3;
      case F16 -> 5e-4;
      default -> 2e-5;
    };
  }

  /** Decode lse (F32 from fp32 scores): |x - ref| <= atol + rtol * |ref|. */
  public static final double KV_DECODE_LSE_ATOL = 1e-4;
  public static final double KV_DECODE_LSE_RTOL = 1e-5;

  // ---- 2:4 sparse matmul --------------------------------------------------------------------
  // Pruning, checking, compression and decompression move bits: exact. The matmul reference is
  // Sparse24Ref (the dense product of the decompressed weight in double, same rounded inputs);
  // the kernels accumulate in fp32 and round the output once.

  /** decompress(compress(w)) == w, and compressed values/meta equal the reference's, bit for bit. */
  public static final long SP24_ROUND_TRIP_MAX_BIT_DIFFERENCES = 0;

  /**
   * Matmul Y[n, m] = act(sum_k X W^T + bias): |y - ref| <= sp24Rtol * |ref| + sp24AbsSumFraction *
   * (sum_k |x[n, k] w[m, k]| + |bias[m]|). rtol is the output rounding (half an ulp: 2^-24, 2^-11,
   * 2^-8 relative) with 2x margin, plus fp32 activation error (expf/tanhf, a few ulps) for F32. The
   * second term bounds fp32 summation error (random-walk ~ sqrt(K/2) * 2^-24 of the absolute sum for
   * <= 512 kept terms, ~1e-7) and the cancellation of GELU/SiLU near large negative inputs
   * (~|pre| * 2^-24 after the activation's slope <= 1.13); 2e-6 leaves 10x margin.
   * Sparse against the library's dense matmul (two independent roundings): twice the bound.
   */
  public static double sp24Rtol(io.github.llmkernels.tensor.DType dtype) {
    return switch (dtype) {
      case BF16 -> 8e-3;
      case F16 -> 1e-3;
      default -> 1e-5;
    };
  }

  public static final double SP24_ABS_SUM_FRACTION = 2e-6;

  /**
   * Integer-valued inputs in [-2, 2] with K <= 96 (|sum + bias| <= 4 * 48 + 2 = 194 < 2^8: exact in
   * fp32 whatever the summation order, and in BF16/F16 outputs): sparse == dense matmul of the
   * pruned weight, bit for bit, for every activation (same fp32 pre-activation, same epilogue), and
   * == the reference for NONE and RELU.
   */
  public static final long SP24_INTEGER_MAX_BIT_DIFFERENCES = 0;

  // ---- dynamic sparse prefill estimators -----------------------------------------------------
  // SparsePrefillRef scores in double from the same rounded inputs and rounds to F32 once; the
  // kernels compute in fp32 (probabilities <= 1, block sums of <= a few hundred of them, pooled
  // dot products of d terms). Selections depend only on the F32 scores: exact on every backend.

  /** Scores: |x - ref| <= PREFILL_SCORE_ATOL + PREFILL_SCORE_RTOL * |ref|; -inf entries exactly. */
  public static final double PREFILL_SCORE_RTOL = 1e-4;
  public static final double PREFILL_SCORE_ATOL = 1e-6;

  /** Selections, head counts and layouts from identical F32 scores: bit for bit. */
  public static final long PREFILL_SELECTION_MAX_DIFFERENCES = 0;

  /**
   * FlexPrefill divergence from identical scores: both sides sum in the same order in double, but
   * exp/log come from two math libraries (1 ulp apart at most), so the F32 result may differ by
   * one rounding step.
   */
  public static final double PREFILL_DIVERGENCE_ATOL = 1e-6;

  /** Hand-built cases (uniform or one-hot attention): reference scores against the closed form. */
  public static final double PREFILL_CLOSED_FORM_ATOL = 1e-5;

  /**
   * End to end (each backend scores its own way): a (batch, head) layout may differ from the
   * reference's only where the reference's decision margin (SparsePrefillRef.Margin: relative gap
   * at a top-k boundary, distance of a cumulative sum from its target over the total, |d - tau|)
   * is below this: 5x twice the score tolerance, so that scores within tolerance can flip it.
   */
  public static final double PREFILL_DECISION_MARGIN = 1e-3;

  /**
   * Recall exp(lse_sparse - lse_dense) (AttentionRecall) against the mass inside the layout
   * counted or evaluated in double (PrefillRecallTest), where every |lse| is below 9 (log 257 plus
   * N(0, 1) scores or scores capped at 3; mostly below 8, where an ulp is 4.8e-7). JAVA computes
   * each lse in double and rounds it to F32 once: within half an ulp each (at most 4.8e-7 below
   * 16), so the recall is within 9.5e-7 (measured: at most 4.0e-7).
   */
  public static final double PREFILL_RECALL_ATOL = 1e-6;

  /**
   * The same for fp32 kernels (NATIVE, CUDA): the online-softmax sums add their rounding to each
   * lse. Measured on ten fresh seeds: up to 7.9e-7 against double and 9.5e-7 (two ulps) between
   * the dense causal pass and an all-tiles layout of other blocks; 3e-6 (six ulps) leaves 3x.
   */
  public static final double PREFILL_RECALL_FP32_ATOL = 3e-6;

  /**
   * One-hot rows (score 40 on one key, 0 elsewhere) give recall 1 or 0 up to S e^-40 ~ 1e-15 after
   * the F32 rounding of the lse (40 + log1p(S e^-40) rounds to 40): a head mean equals the share of
   * kept rows far below this.
   */
  public static final double PREFILL_RECALL_ONE_HOT_MEAN_ATOL = 1e-9;

  /**
   * Dense causal attention with every tile selected (blocks 16 x 24) against the dense layout
   * (blocks 64 x 64): the same sums in another tile order, F32 output. JAVA: 0; NATIVE: measured
   * 0.9e-7 to 1.03e-7 of relative Frobenius error (fp32 rounding) on ten seeds; 1e-6 leaves 10x.
   */
  public static final double PREFILL_DENSE_REL_ERR = 1e-6;
}
