/* Prefill scores on the GPU (llmk_prefill_score_cuda), the quantities of the CPU kernels
 * (native/src/cpu/prefill_score.cpp) in fp32 with deterministic reductions (fixed trees, fixed
 * loop orders: the same inputs give the same scores on every run), never Sq x Sk:
 *   VS / FLEX: lastq_rowstats (CTA per observation row: max and sum over its causal keys), then
 *     lastq_vert (thread per key: sum over rows of P) and lastq_slash (thread per diagonal offset
 *     s: sum over rows of P[r, qa_r - s]); logits recomputed in each, never stored;
 *   BLOCK_TOPK / FLEX: block means (double accumulation per element), then a CTA per query block
 *     for the pooled logits (FLEX: row softmax over the reachable blocks, in place) and the ahat
 *     logits;
 *   XATTN: a CTA per (head, query block) walks its reshaped rows twice (max / sum, then block
 *     sums of the probabilities), the reshaped query row staged in shared memory.
 * Simple one-thread-per-output kernels: estimation work is a few percent of attention (design
 * cost table), and these are written to be correct on every target, not tuned. */
#include <string>

#include "attention_common.cuh"
#include "cuda_check.cuh"
#include "kv_common.cuh"
#include "launch.cuh"
#include "prefill_args.h"

namespace {

constexpr int kThreads = 256;
constexpr int kRows = 16;                 // observation rows staged per step
constexpr int64_t kMaxStageFloats = 8192; // shared floats for staged query rows (32 KiB)

struct ScoreParams {
  const void* q;
  const void* k;
  float* scores;
  int64_t heads_q, heads_kv, group, sq, sk, d, per_head, last_q, stride;
  llmk::PrefillGeom g;
  float scale;
  float* m;     // [heads, L] row max (VS / FLEX)
  float* l;     // [heads, L] row sum
  float* qbar;  // [heads, nqb, d]
  float* kbar;  // [heads, nkb, d]
  float* qhat;  // [heads, d]
};

__device__ __forceinline__ int64_t q_off(const ScoreParams& p, int64_t head, int64_t i) {
  return (head * p.sq + i) * p.d;
}
__device__ __forceinline__ int64_t k_off(const ScoreParams& p, int64_t head, int64_t j) {
  const int64_t b = head / p.heads_q, h = head % p.heads_q;
  return ((b * p.heads_kv + h / p.group) * p.sk + j) * p.d;
}

template <int DT>
__device__ __forceinline__ float dot_key(const ScoreParams& p, const float* qs, int64_t koff) {
  float acc = 0.0f;
  for (int64_t c = 0; c < p.d; ++c) acc = fmaf(qs[c], llmk::kv::load<DT>(p.k, koff + c), acc);
  return acc;
}

/* Deterministic block reduction of (max, sum of exp(x - max)) pairs; result in every thread. */
__device__ __forceinline__ void merge_ml(float& m, float& l, float m2, float l2) {
  const float mx = fmaxf(m, m2);
  if (mx == -INFINITY) return;
  l = l * llmk::kv::exp_diff(m, mx) + l2 * llmk::kv::exp_diff(m2, mx);
  m = mx;
}
__device__ void block_ml(float& m, float& l, float* red) {
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o), l2 = __shfl_xor_sync(0xffffffffu, l, o);
    merge_ml(m, l, m2, l2);
  }
  const int warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if ((threadIdx.x & 31) == 0) {
    red[2 * warp] = m;
    red[2 * warp + 1] = l;
  }
  __syncthreads();
  m = -INFINITY;
  l = 0.0f;
  for (int w = 0; w < nw; ++w) merge_ml(m, l, red[2 * w], red[2 * w + 1]);
}

__device__ float block_sum(float x, float* red) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;
  __syncthreads();
  float s = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) s += red[w];
  return s;
}
__device__ float block_max(float x, float* red) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;
  __syncthreads();
  float s = -INFINITY;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) s = fmaxf(s, red[w]);
  return s;
}

/* Scaled query rows [i0, i0 + n) of head into shared qs [n][d]. */
template <int DT>
__device__ void stage_rows(const ScoreParams& p, int64_t head, int64_t i0, int64_t n, float* qs) {
  const int64_t base = q_off(p, head, i0);
  for (int64_t e = threadIdx.x; e < n * p.d; e += blockDim.x) qs[e] = llmk::kv::load<DT>(p.q, base + e) * p.scale;
}

/* ---- last-q statistics ------------------------------------------------------------------------ */

/* grid (heads * L): row max / sum of observation row r over its causal keys. */
template <int DT>
__global__ void __launch_bounds__(kThreads) lastq_rowstats(const __grid_constant__ ScoreParams p) {
  float* qs = llmk::dynamic_smem<float>();  // [d]
  __shared__ float red[2 * (kThreads / 32)];
  const int64_t head = blockIdx.x / p.last_q, r = blockIdx.x % p.last_q;
  const int64_t i = p.sq - p.last_q + r, qa = i + p.sk - p.sq;
  stage_rows<DT>(p, head, i, 1, qs);
  __syncthreads();
  float m = -INFINITY, l = 0.0f;
  for (int64_t j = threadIdx.x; j <= qa; j += blockDim.x) {
    const float z = dot_key<DT>(p, qs, k_off(p, head, j));
    merge_ml(m, l, z, 1.0f);
  }
  block_ml(m, l, red);
  if (threadIdx.x == 0) {
    p.m[blockIdx.x] = m;
    p.l[blockIdx.x] = l;
  }
}

/* grid (heads, ceil(Sk / kThreads)): thread per key j (kSlash false) or diagonal offset s (true):
 * the sum over observation rows, in row order, of P[r, j] or P[r, qa_r - s]. */
template <int DT, bool kSlash>
__global__ void __launch_bounds__(kThreads) lastq_sums(const __grid_constant__ ScoreParams p, float mean) {
  float* qs = llmk::dynamic_smem<float>();  // [rows_per_step][d]
  const int64_t head = blockIdx.x;
  const int64_t x = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;  // j or s
  const int64_t L = p.last_q, qa0 = p.sk - L;
  const int64_t step = kMaxStageFloats / p.d < kRows ? kMaxStageFloats / p.d : kRows;
  float acc = 0.0f;
  for (int64_t r0 = 0; r0 < L; r0 += step) {
    const int64_t n = L - r0 < step ? L - r0 : step;
    __syncthreads();
    stage_rows<DT>(p, head, p.sq - L + r0, n, qs);
    __syncthreads();
    if (x >= p.sk) continue;
    for (int64_t rr = 0; rr < n; ++rr) {
      const int64_t r = r0 + rr, qa = qa0 + r;
      const int64_t j = kSlash ? qa - x : x;
      if (j < 0 || j > qa) continue;
      const float z = dot_key<DT>(p, qs + rr * p.d, k_off(p, head, j));
      const int64_t row = head * L + r;
      acc += expf(z - p.m[row]) * (1.0f / p.l[row]);
    }
  }
  if (x < p.sk) p.scores[head * p.per_head + (kSlash ? p.sk : 0) + x] = acc * mean;
}

/* ---- pooled scores ---------------------------------------------------------------------------- */

/* grid (heads, blocks): dst[head, bi, c] = fp32(mean in double of rows [first + bi * block, ..)) * factor. */
template <int DT>
__global__ void __launch_bounds__(kThreads) block_means(const __grid_constant__ ScoreParams p, bool keys, int64_t n,
                                                         int64_t block, int64_t first, float factor, float* dst,
                                                         int64_t blocks) {
  const int64_t head = blockIdx.x, bi = blockIdx.y;
  const int64_t r0 = first + bi * block, r1 = r0 + block < n ? r0 + block : n;
  for (int64_t c = threadIdx.x; c < p.d; c += blockDim.x) {
    double acc = 0.0;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t off = keys ? k_off(p, head, r) : q_off(p, head, r);
      acc += llmk::kv::load<DT>(keys ? p.k : p.q, off + c);
    }
    dst[(head * blocks + bi) * p.d + c] = static_cast<float>(acc / static_cast<double>(r1 - r0)) * factor;
  }
}

/* grid (heads, nqb): row i of the pooled logits; FLEX: row softmax in place over the reachable
 * blocks (0 elsewhere). */
__global__ void __launch_bounds__(kThreads) pooled_rows(const __grid_constant__ ScoreParams p, bool flex) {
  __shared__ float red[kThreads / 32];
  const int64_t head = blockIdx.x, i = blockIdx.y, nkb = p.g.nkb;
  const int64_t diag = llmk::prefill_diag(p.g, i);
  float* out = p.scores + head * p.per_head + (flex ? 2 * p.sk + nkb : 0) + i * nkb;
  const float* qb = p.qbar + (head * p.g.nqb + i) * p.d;
  float mx = -INFINITY;
  for (int64_t kb = threadIdx.x; kb < nkb; kb += blockDim.x) {
    float z = -INFINITY;
    if (kb <= diag) {
      const float* kr = p.kbar + (head * nkb + kb) * p.d;
      z = 0.0f;
      for (int64_t c = 0; c < p.d; ++c) z = fmaf(qb[c], kr[c], z);
    }
    out[kb] = z;
    mx = fmaxf(mx, z);
  }
  if (!flex) return;
  mx = block_max(mx, red);
  float sum = 0.0f;
  for (int64_t kb = threadIdx.x; kb <= diag; kb += blockDim.x) sum += expf(out[kb] - mx);
  sum = block_sum(sum, red);
  const float inv = 1.0f / sum;
  for (int64_t kb = threadIdx.x; kb < nkb; kb += blockDim.x) out[kb] = kb <= diag ? expf(out[kb] - mx) * inv : 0.0f;
}

/* grid (heads): FLEX ahat logits qhat . kbar[kb] (double dot, as the CPU). */
__global__ void __launch_bounds__(kThreads) ahat_logits(const __grid_constant__ ScoreParams p) {
  const int64_t head = blockIdx.x, nkb = p.g.nkb;
  const float* qh = p.qhat + head * p.d;
  for (int64_t kb = threadIdx.x; kb < nkb; kb += blockDim.x) {
    const float* kr = p.kbar + (head * nkb + kb) * p.d;
    double z = 0.0;
    for (int64_t c = 0; c < p.d; ++c) z += static_cast<double>(qh[c]) * kr[c];
    p.scores[head * p.per_head + 2 * p.sk + kb] = static_cast<float>(z);
  }
}

/* ---- XAttention ------------------------------------------------------------------------------- */

/* Reshaped row i (queries i*S + S-1-u, u < S, scaled by scale / S; zeros past Sq) into qs [S][d]. */
template <int DT>
__device__ void stage_reshaped(const ScoreParams& p, int64_t head, int64_t i, float* qs) {
  const int64_t S = p.stride;
  const float f = p.scale / static_cast<float>(S);
  for (int64_t e = threadIdx.x; e < S * p.d; e += blockDim.x) {
    const int64_t u = e / p.d, c = e - u * p.d, pos = i * S + S - 1 - u;
    qs[e] = pos < p.sq ? llmk::kv::load<DT>(p.q, q_off(p, head, pos) + c) * f : 0.0f;
  }
}

template <int DT>
__device__ __forceinline__ float reshaped_dot(const ScoreParams& p, const float* qs, int64_t head, int64_t j) {
  float acc = 0.0f;
  for (int64_t u = 0; u < p.stride; ++u) {
    const int64_t key = j * p.stride + u;
    if (key >= p.sk) break;
    const int64_t off = k_off(p, head, key);
    for (int64_t c = 0; c < p.d; ++c) acc = fmaf(qs[u * p.d + c], llmk::kv::load<DT>(p.k, off + c), acc);
  }
  return acc;
}

/* grid (heads, nqb). Shared: qs [S * d], row max / sum [m], column sums [kThreads]. */
template <int DT>
__global__ void __launch_bounds__(kThreads, 1) xattn_blocks(const __grid_constant__ ScoreParams p) {
  float* smem = llmk::dynamic_smem<float>();
  __shared__ float red[2 * (kThreads / 32)];
  const int64_t S = p.stride, mrows = p.g.bq / S;
  float* qs = smem;
  float* rm = qs + S * p.d;
  float* rl = rm + mrows;
  float* col = rl + mrows;
  const int64_t head = blockIdx.x, qb = blockIdx.y, nkb = p.g.nkb;
  const int64_t rq = (p.sq + S - 1) / S, rk = (p.sk + S - 1) / S, off_r = (p.sk - p.sq) / S;
  const int64_t i0 = qb * mrows, i1 = (qb + 1) * mrows < rq ? (qb + 1) * mrows : rq;
  float* out = p.scores + head * p.per_head + qb * nkb;
  for (int64_t kb = threadIdx.x; kb < nkb; kb += blockDim.x) out[kb] = 0.0f;
  for (int64_t i = i0; i < i1; ++i) {  // pass 1: row max / sum
    __syncthreads();
    stage_reshaped<DT>(p, head, i, qs);
    __syncthreads();
    const int64_t cols = rk < i + off_r + 1 ? rk : i + off_r + 1;
    float m = -INFINITY, l = 0.0f;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) merge_ml(m, l, reshaped_dot<DT>(p, qs, head, j), 1.0f);
    block_ml(m, l, red);
    if (threadIdx.x == 0) {
      rm[i - i0] = m;
      rl[i - i0] = l;
    }
  }
  const int64_t jmax = rk < i1 - 1 + off_r + 1 ? rk : i1 - 1 + off_r + 1;  // columns any row reaches
  for (int64_t j0 = 0; j0 < jmax; j0 += blockDim.x) {  // pass 2: block sums, a tile of columns at a time
    const int64_t j = j0 + threadIdx.x;
    float acc = 0.0f;
    for (int64_t i = i0; i < i1; ++i) {
      __syncthreads();
      stage_reshaped<DT>(p, head, i, qs);
      __syncthreads();
      if (j < jmax && j <= i + off_r) {
        acc += expf(reshaped_dot<DT>(p, qs, head, j) - rm[i - i0]) * (1.0f / rl[i - i0]);
      }
    }
    col[threadIdx.x] = acc;
    __syncthreads();
    /* thread t adds the tile's columns of key block kb0 + t in column order */
    const int64_t kb0 = j0 / mrows, kb1 = (j0 + blockDim.x - 1) / mrows;
    const int64_t kb = kb0 + threadIdx.x;
    if (kb <= kb1 && kb < nkb) {
      float s = 0.0f;
      const int64_t c0 = kb * mrows > j0 ? kb * mrows - j0 : 0;
      const int64_t c1 = (kb + 1) * mrows - j0 < static_cast<int64_t>(blockDim.x) ? (kb + 1) * mrows - j0 : blockDim.x;
      for (int64_t c = c0; c < c1; ++c) s += col[c];
      out[kb] += s;
    }
  }
}

/* ---- dispatch --------------------------------------------------------------------------------- */

template <int DT>
int32_t run(const llmk_prefill_args& a, ScoreParams p, cudaStream_t st) {
  const int64_t heads = a.batch * a.heads_q;
  const llmk::PrefillGeom& g = p.g;
  if (a.method == LLMK_PREFILL_XATTN) {
    const int64_t mrows = g.bq / p.stride;
    const size_t smem = static_cast<size_t>(p.stride * p.d + 2 * mrows + kThreads) * sizeof(float);
    LLMK_TRY_STATUS(llmk::kv::allow_smem(xattn_blocks<DT>, smem));
    llmk::launch(xattn_blocks<DT>, dim3(static_cast<unsigned>(heads), static_cast<unsigned>(g.nqb)), kThreads, smem, st, p);
    LLMK_CUDA_CHECK_LAUNCH("xattn_blocks");
    return LLMK_OK;
  }
  if (a.method != LLMK_PREFILL_BLOCK_TOPK) {
    const size_t row_smem = static_cast<size_t>(p.d) * sizeof(float);
    llmk::launch(lastq_rowstats<DT>, static_cast<unsigned>(heads * p.last_q), kThreads, row_smem, st, p);
    LLMK_CUDA_CHECK_LAUNCH("lastq_rowstats");
    const int64_t step = kMaxStageFloats / p.d < kRows ? kMaxStageFloats / p.d : kRows;
    const size_t smem = static_cast<size_t>(step * p.d) * sizeof(float);
    const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>((g.sk + kThreads - 1) / kThreads));
    const float mean = a.method == LLMK_PREFILL_FLEX ? 1.0f / static_cast<float>(p.last_q) : 1.0f;
    llmk::launch(lastq_sums<DT, false>, grid, kThreads, smem, st, p, mean);
    LLMK_CUDA_CHECK_LAUNCH("lastq_sums<vertical>");
    llmk::launch(lastq_sums<DT, true>, grid, kThreads, smem, st, p, mean);
    LLMK_CUDA_CHECK_LAUNCH("lastq_sums<slash>");
    if (a.method == LLMK_PREFILL_VERTICAL_SLASH) return LLMK_OK;
  }
  const unsigned h = static_cast<unsigned>(heads);
  llmk::launch(block_means<DT>, dim3(h, static_cast<unsigned>(g.nqb)), kThreads, 0, st, p, false, g.sq, g.bq, 0, p.scale, p.qbar, g.nqb);
  LLMK_CUDA_CHECK_LAUNCH("block_means<q>");
  llmk::launch(block_means<DT>, dim3(h, static_cast<unsigned>(g.nkb)), kThreads, 0, st, p, true, g.sk, g.bk, 0, 1.0f, p.kbar, g.nkb);
  LLMK_CUDA_CHECK_LAUNCH("block_means<k>");
  const bool flex = a.method == LLMK_PREFILL_FLEX;
  llmk::launch(pooled_rows, dim3(h, static_cast<unsigned>(g.nqb)), kThreads, 0, st, p, flex);
  LLMK_CUDA_CHECK_LAUNCH("pooled_rows");
  if (flex) {
    llmk::launch(block_means<DT>, dim3(h, 1), kThreads, 0, st, p, false, g.sq, p.last_q, g.sq - p.last_q, p.scale, p.qhat, 1);
    LLMK_CUDA_CHECK_LAUNCH("block_means<qhat>");
    llmk::launch(ahat_logits, h, kThreads, 0, st, p);
    LLMK_CUDA_CHECK_LAUNCH("ahat_logits");
  }
  return LLMK_OK;
}

int32_t device_of(int64_t device, int32_t* out) {
  if (device < 0 || device > INT32_MAX) {
    return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "device must be a CUDA device ordinal; got " + std::to_string(device));
  }
  *out = static_cast<int32_t>(device);
  return LLMK_OK;
}

}  // namespace

extern "C" int32_t llmk_prefill_score_cuda(const llmk_prefill_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_prefill_args(args, llmk::PrefillStage::kScore));
    const llmk_prefill_args& a = *args;
    int32_t device = 0;
    LLMK_TRY_STATUS(device_of(a.device, &device));
    /* Staged rows live in shared memory: a query row (d floats, within the 48 KiB every launch
     * gets), or for XATTN a reshaped row (stride * d) plus per-row statistics (opt-in, kept under
     * the 99 KiB of the smallest target). Grid y dimensions (query / key blocks) are < 2^16. */
    const int64_t stage = a.method == LLMK_PREFILL_XATTN ? a.stride * a.head_dim + 2 * (a.block_q / a.stride) + kThreads
                                                         : a.head_dim;
    // non-XATTN: lastq_sums stages whole query rows of kMaxStageFloats at most (a larger d would
    // leave it 0 rows per step)
    const int64_t stage_cap = a.method == LLMK_PREFILL_XATTN ? 24576 : kMaxStageFloats;
    if (stage > stage_cap) {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "CUDA prefill scores: " +
                                                       std::string(a.method == LLMK_PREFILL_XATTN ? "stride * head_dim + 2 * block_q / stride + 256"
                                                                                                  : "head_dim") +
                                                       " must be <= " + std::to_string(stage_cap) + "; got " + std::to_string(stage));
    }
    const llmk::PrefillGeom geom = llmk::prefill_geom_of(a);
    if ((a.method != LLMK_PREFILL_BLOCK_TOPK && a.method != LLMK_PREFILL_XATTN && (a.seq_k + kThreads - 1) / kThreads > 65535) ||
        (a.method != LLMK_PREFILL_VERTICAL_SLASH && (geom.nqb > 65535 || geom.nkb > 65535))) {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "CUDA prefill scores: seq_q / block_q and seq_k / block_k must be <= 65535 "
                                                   "blocks and seq_k <= 65535 * 256; got " + std::to_string(geom.nqb) + ", " +
                                                   std::to_string(geom.nkb) + " and " + std::to_string(a.seq_k));
    }
    // lastq_rowstats runs one block per (head, observation row) along grid x (< 2^31)
    if (a.method != LLMK_PREFILL_BLOCK_TOPK && a.method != LLMK_PREFILL_XATTN &&
        a.batch * a.heads_q > INT32_MAX / (a.last_q > 0 ? a.last_q : 1)) {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "CUDA prefill scores: batch * heads_q * last_q must be <= 2^31 - 1; got " +
                                                   std::to_string(a.batch) + " * " + std::to_string(a.heads_q) + " * " +
                                                   std::to_string(a.last_q));
    }
    const int64_t elem = a.dtype == LLMK_F32 ? 4 : 2;
    LLMK_TRY_STATUS(llmk::attn::require_aligned(a.q, elem, "q"));
    LLMK_TRY_STATUS(llmk::attn::require_aligned(a.k, elem, "k"));
    LLMK_TRY_STATUS(llmk::attn::require_aligned(a.scores, 4, "scores"));
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    cudaStream_t st = reinterpret_cast<cudaStream_t>(a.stream);
    ScoreParams p;
    p.q = reinterpret_cast<const void*>(a.q);
    p.k = reinterpret_cast<const void*>(a.k);
    p.scores = reinterpret_cast<float*>(a.scores);
    p.heads_q = a.heads_q;
    p.heads_kv = a.heads_kv;
    p.group = a.heads_q / a.heads_kv;
    p.sq = a.seq_q;
    p.sk = a.seq_k;
    p.d = a.head_dim;
    p.per_head = llmk::prefill_scores_per_head(a);
    p.last_q = a.last_q;
    p.stride = a.stride;
    p.g = llmk::prefill_geom_of(a);
    p.scale = static_cast<float>(a.scale);
    const int64_t heads = a.batch * a.heads_q;
    const bool last_q = a.method == LLMK_PREFILL_VERTICAL_SLASH || a.method == LLMK_PREFILL_FLEX;
    const bool pooled = a.method == LLMK_PREFILL_BLOCK_TOPK || a.method == LLMK_PREFILL_FLEX;
    const int64_t ml = last_q ? 2 * heads * a.last_q : 0;
    const int64_t pool = pooled ? heads * (p.g.nqb + p.g.nkb + 1) * p.d : 0;
    llmk::kv::Scratch scratch(st);
    LLMK_TRY_STATUS(scratch.alloc(static_cast<size_t>(ml + pool) * sizeof(float)));
    float* ws = scratch.as<float>();
    p.m = ws;
    p.l = ws + (last_q ? heads * a.last_q : 0);
    p.qbar = ws + ml;
    p.kbar = p.qbar + (pooled ? heads * p.g.nqb * p.d : 0);
    p.qhat = p.kbar + (pooled ? heads * p.g.nkb * p.d : 0);
    switch (a.dtype) {
      case LLMK_F32: LLMK_TRY_STATUS(run<LLMK_F32>(a, p, st)); break;
      case LLMK_F16: LLMK_TRY_STATUS(run<LLMK_F16>(a, p, st)); break;
      default: LLMK_TRY_STATUS(run<LLMK_BF16>(a, p, st)); break;
    }
    return scratch.release();
  });
}
