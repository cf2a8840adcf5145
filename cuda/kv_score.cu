/* KV scoring on the GPU (llmk_kv_score_cuda), the same rules as native/src/cpu/kv_score.cpp:
 *   KNORM: one warp per key row (-||k||_2);  RECENCY / LADDER: one thread per token;
 *   SNAPKV / OBSERVED: attention column sums in two flash-style passes, never the q x n matrix.
 * The query rows of KV head bh are its GQA group's heads x q_len queries (r = hh * q_len + i,
 * contiguous in q), at positions n - q_len + i, each seeing keys 0 .. its position.
 *
 * Both passes use one thread per key of a tile of TK keys (TK = blockDim.x): the tile sits in
 * shared memory as fp32 with an odd row stride (thread t reads row t column-wise: conflict-free),
 * the scaled query rows as fp32 (every thread reads the same address: broadcast), and each thread
 * accumulates RB query rows at once against its key.
 *   pass 1 (row_lse_partial): CTA = (bh, chunk of kRowChunk rows, range of key tiles); online
 *          max / sum per row over its range; partials merged per row by merge_lse.
 *   pass 2 (column_sums): CTA = (bh, key tile); for every row that sees the tile,
 *          colsum[j] += exp(s - lse).
 *   finalize: SNAPKV mean (and pooling) or OBSERVED accumulation, in the CPU's arithmetic. */
#include <algorithm>
#include <string>

#include "cuda_check.cuh"
#include "kv_args.h"
#include "kv_common.cuh"
#include "launch.cuh"
#include "llmk/kv_math.h"

namespace {

constexpr int kRowBatch = 8;    // RB: query rows per register batch
constexpr int kRowChunk = 16;   // rows of one pass-1 CTA (resident in shared memory)
constexpr int kTileKeys = 64;   // TK default; halved for very large head dims
constexpr int kSimpleThreads = 256;

struct ScoreDims {
  int64_t n, d, q_len, group, rows;  // rows = group * q_len per KV head
  float scale;
};

__device__ __forceinline__ int64_t row_position(const ScoreDims& s, int64_t r) {
  return llmk::kv_query_position(r % s.q_len, s.q_len, s.n);
}

template <int DT>
__global__ void knorm_kernel(const void* __restrict__ k, float* __restrict__ scores, int64_t rows, int64_t d) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
    float ss = 0.0f;
    for (int64_t c = lane; c < d; c += 32) {
      const float x = llmk::kv::load<DT>(k, r * d + c);
      ss += x * x;
    }
    ss = llmk::kv::warp_sum(ss);
    if (lane == 0) scores[r] = -sqrtf(ss);
  }
}

__global__ void position_kernel(float* __restrict__ scores, int64_t total, int64_t n, bool ladder, int64_t layer,
                                int64_t rung) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = i % n;
    scores[i] = ladder ? llmk::kv_ladder_score(j, n, layer, rung) : static_cast<float>(j);
  }
}

/* Keys j0 .. j0 + TK - 1 of head bh into ks (zeros past n). */
template <int DT>
__device__ __forceinline__ void load_key_tile(const void* k, const ScoreDims& s, int64_t bh, int64_t j0, float* ks,
                                              int64_t kstride) {
  const int64_t tk = blockDim.x;
  const int64_t valid = s.n - j0 < tk ? s.n - j0 : tk;
  const int64_t base = (bh * s.n + j0) * s.d;
  for (int64_t e = threadIdx.x; e < tk * s.d; e += blockDim.x) {
    const int64_t t = e / s.d, c = e - t * s.d;
    ks[t * kstride + c] = t < valid ? llmk::kv::load<DT>(k, base + e) : 0.0f;
  }
}

/* Scaled query rows r0 .. r0 + count - 1 of head bh into qs (zeros for rows >= s.rows). */
template <int DT>
__device__ __forceinline__ void load_query_rows(const void* q, const ScoreDims& s, int64_t bh, int64_t r0,
                                                int64_t count, float* qs) {
  const int64_t valid = s.rows - r0 < count ? s.rows - r0 : count;
  const int64_t base = (bh * s.rows + r0) * s.d;
  for (int64_t e = threadIdx.x; e < count * s.d; e += blockDim.x) {
    qs[e] = e < valid * s.d ? llmk::kv::load<DT>(q, base + e) * s.scale : 0.0f;
  }
}

/* acc[r] = qs[r, :] . ks[threadIdx.x, :] for kRowBatch rows. */
__device__ __forceinline__ void dot_rows(const float* qs, const float* kt, int64_t d, float (&acc)[kRowBatch]) {
#pragma unroll
  for (int r = 0; r < kRowBatch; ++r) acc[r] = 0.0f;
  for (int64_t c = 0; c < d; ++c) {
    const float kc = kt[c];
#pragma unroll
    for (int r = 0; r < kRowBatch; ++r) acc[r] = fmaf(qs[r * d + c], kc, acc[r]);
  }
}

/* Pass 1. grid.x = bh * row_chunks + chunk, grid.y = key-tile range; part[(bh * rows + r) * ranges + range]
 * = (max, sum of exp(s - max)) of row r over the range's keys ((-inf, 0) if it sees none). */
template <int DT>
__global__ void row_lse_partial(const void* __restrict__ q, const void* __restrict__ k, ScoreDims s,
                                int64_t row_chunks, int64_t tiles_per_range, float2* __restrict__ part) {
  float* smem = llmk::dynamic_smem<float>();
  const int64_t tk = blockDim.x, kstride = llmk::kv::odd_stride(s.d);
  const int nw = blockDim.x / 32, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float* ks = smem;                       // [tk][kstride]
  float* qs = ks + tk * kstride;          // [kRowChunk][d]
  float* m = qs + kRowChunk * s.d;        // [kRowChunk] running max
  float* l = m + kRowChunk;               // [kRowChunk] running sum
  float* redm = l + kRowChunk;            // [kRowBatch][nw] warp maxima
  float* reds = redm + kRowBatch * nw;    // [kRowBatch][nw] warp sums
  const int64_t bh = blockIdx.x / row_chunks, r0 = (blockIdx.x % row_chunks) * kRowChunk;
  const int64_t ranges = gridDim.y, range = blockIdx.y;
  const int64_t ntiles = (s.n + tk - 1) / tk;
  const int64_t t_lo = range * tiles_per_range;
  const int64_t t_hi = t_lo + tiles_per_range < ntiles ? t_lo + tiles_per_range : ntiles;
  __shared__ int64_t pos[kRowChunk];  // position of each row of the chunk, -1 past the last row
  load_query_rows<DT>(q, s, bh, r0, kRowChunk, qs);
  if (threadIdx.x < kRowChunk) {
    m[threadIdx.x] = -INFINITY;
    l[threadIdx.x] = 0.0f;
    const int64_t row = r0 + threadIdx.x;
    pos[threadIdx.x] = row < s.rows ? row_position(s, row) : -1;
  }
  int64_t last = 0;  // the last key any row of the chunk sees
  for (int64_t r = r0; r < r0 + kRowChunk && r < s.rows; ++r) last = max(last, row_position(s, r));
  for (int64_t t = t_lo; t < t_hi; ++t) {
    const int64_t j0 = t * tk;
    if (j0 > last) break;  // uniform across the block
    __syncthreads();       // the previous tile is fully used (and qs, m, l, pos are initialised)
    load_key_tile<DT>(k, s, bh, j0, ks, kstride);
    __syncthreads();
    const int64_t j = j0 + threadIdx.x;
    for (int rb = 0; rb < kRowChunk; rb += kRowBatch) {
      float acc[kRowBatch];
      dot_rows(qs + rb * s.d, ks + threadIdx.x * kstride, s.d, acc);
#pragma unroll
      for (int r = 0; r < kRowBatch; ++r) {
        if (j > pos[rb + r]) acc[r] = -INFINITY;  // masked (also rows past the last: -1)
        const float wm = llmk::kv::warp_max(acc[r]);
        if (lane == 0) redm[r * nw + warp] = wm;
      }
      __syncthreads();
#pragma unroll
      for (int r = 0; r < kRowBatch; ++r) {
        float tmax = -INFINITY;
        for (int w = 0; w < nw; ++w) tmax = fmaxf(tmax, redm[r * nw + w]);
        const float ws = llmk::kv::warp_sum(llmk::kv::exp_diff(acc[r], tmax));
        if (lane == 0) reds[r * nw + warp] = ws;
      }
      __syncthreads();
      if (threadIdx.x < kRowBatch) {
        const int r = threadIdx.x;
        float tmax = -INFINITY, tsum = 0.0f;
        for (int w = 0; w < nw; ++w) {
          tmax = fmaxf(tmax, redm[r * nw + w]);
          tsum += reds[r * nw + w];
        }
        if (tmax != -INFINITY) {
          const float m_old = m[rb + r], m_new = fmaxf(m_old, tmax);
          l[rb + r] = l[rb + r] * llmk::kv::exp_diff(m_old, m_new) + tsum * expf(tmax - m_new);
          m[rb + r] = m_new;
        }
      }
      __syncthreads();  // redm / reds are rewritten by the next batch
    }
  }
  __syncthreads();
  if (threadIdx.x < kRowChunk && r0 + threadIdx.x < s.rows) {
    part[(bh * s.rows + r0 + threadIdx.x) * ranges + range] = make_float2(m[threadIdx.x], l[threadIdx.x]);
  }
}

/* lse[row] from its ranges' partials. */
__global__ void merge_lse(const float2* __restrict__ part, int64_t total_rows, int64_t ranges, float* __restrict__ lse) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total_rows;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float2* p = part + i * ranges;
    float mx = -INFINITY;
    for (int64_t r = 0; r < ranges; ++r) mx = fmaxf(mx, p[r].x);
    float sum = 0.0f;
    for (int64_t r = 0; r < ranges; ++r) sum += p[r].y * llmk::kv::exp_diff(p[r].x, mx);
    lse[i] = mx + logf(sum);  // every row sees key 0: mx is finite for finite inputs
  }
}

/* Pass 2. grid.x = bh * tiles + tile: colsum[bh * n + j] = sum over the rows that see key j of
 * exp(s - lse), rows in ascending order. */
template <int DT>
__global__ void column_sums(const void* __restrict__ q, const void* __restrict__ k, ScoreDims s, int64_t ntiles,
                            const float* __restrict__ lse, float* __restrict__ colsum) {
  float* smem = llmk::dynamic_smem<float>();
  const int64_t tk = blockDim.x, kstride = llmk::kv::odd_stride(s.d);
  float* ks = smem;                   // [tk][kstride]
  float* qs = ks + tk * kstride;      // [kRowBatch][d]
  float* ls = qs + kRowBatch * s.d;   // [kRowBatch]
  __shared__ int64_t pos[kRowBatch];  // positions of the batch's rows, -1 past the last row
  const int64_t bh = blockIdx.x / ntiles, j0 = (blockIdx.x % ntiles) * tk;
  const int64_t j = j0 + threadIdx.x;
  load_key_tile<DT>(k, s, bh, j0, ks, kstride);
  float sum = 0.0f;
  for (int64_t r0 = 0; r0 < s.rows; r0 += kRowBatch) {
    // Rows of a head are (hh, i) with positions rising in i: skip batches that cannot see the tile.
    bool any = false;
    for (int64_t r = r0; r < r0 + kRowBatch && r < s.rows; ++r) any = any || row_position(s, r) >= j0;
    if (!any) continue;  // uniform across the block
    __syncthreads();     // the previous batch is fully used
    load_query_rows<DT>(q, s, bh, r0, kRowBatch, qs);
    if (threadIdx.x < kRowBatch) {
      const int64_t row = r0 + threadIdx.x;
      ls[threadIdx.x] = row < s.rows ? lse[bh * s.rows + row] : 0.0f;
      pos[threadIdx.x] = row < s.rows ? row_position(s, row) : -1;
    }
    __syncthreads();
    float acc[kRowBatch];
    dot_rows(qs, ks + threadIdx.x * kstride, s.d, acc);
#pragma unroll
    for (int r = 0; r < kRowBatch; ++r) {
      if (j <= pos[r]) sum += expf(acc[r] - ls[r]);  // positions are < n: j < n too
    }
  }
  if (j < s.n) colsum[bh * s.n + j] = sum;
}

/* SNAPKV: mean over the rows, then pooling (the CPU's double arithmetic). */
__global__ void finalize_snapkv(const float* __restrict__ colsum, float* __restrict__ scores, int64_t total, int64_t n,
                                int64_t rows, int64_t pool, int64_t kernel) {
  const double inv = 1.0 / static_cast<double>(rows);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (pool == LLMK_KV_POOL_NONE) {
      scores[i] = static_cast<float>(colsum[i] * inv);
      continue;
    }
    const int64_t j = i % n;
    const float* c = colsum + (i - j);
    const int64_t lo = llmk::kv_pool_lo(j, kernel), hi = llmk::kv_pool_hi(j, kernel, n);
    double v = pool == LLMK_KV_POOL_MAX ? -INFINITY : 0.0;
    for (int64_t t = lo; t <= hi; ++t) v = pool == LLMK_KV_POOL_MAX ? fmax(v, static_cast<double>(c[t])) : v + c[t];
    scores[i] = static_cast<float>(pool == LLMK_KV_POOL_MAX ? v * inv : v * inv / static_cast<double>(kernel));
  }
}

/* OBSERVED: key j is seen by group x min(q_len, n - j) (query, head) pairs. */
__global__ void finalize_observed(const float* __restrict__ colsum, float* __restrict__ sum, float* __restrict__ count,
                                  float* __restrict__ scores, int64_t total, int64_t n, int64_t q_len, int64_t group) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = i % n;
    const int64_t seen = n - j < q_len ? n - j : q_len;
    const float su = sum[i] + colsum[i];
    const float co = count[i] + static_cast<float>(group * seen);
    sum[i] = su;
    count[i] = co;
    scores[i] = co > 0.0f ? su / co : 0.0f;
  }
}

size_t align256(size_t x) { return (x + 255) / 256 * 256; }

int32_t sm_count(int* sms) {
  int dev = 0;
  LLMK_CUDA_TRY(cudaGetDevice(&dev));
  LLMK_CUDA_TRY(cudaDeviceGetAttribute(sms, cudaDevAttrMultiProcessorCount, dev));
  return LLMK_OK;
}

template <int DT>
int32_t run_attention_scores(const llmk_kv_score_args& a, cudaStream_t st) {
  ScoreDims s;
  s.n = a.n;
  s.d = a.head_dim;
  s.q_len = a.q_len;
  s.group = a.heads_q / a.heads_kv;
  s.rows = s.group * a.q_len;
  s.scale = static_cast<float>(a.scale);
  const int64_t heads = a.batch * a.heads_kv, total = heads * a.n;
  const int64_t kstride = llmk::kv::odd_stride(s.d);
  int optin = 0, sms = 0;
  LLMK_TRY_STATUS(llmk::kv::smem_optin(&optin));
  LLMK_TRY_STATUS(sm_count(&sms));
  // Tile keys: 64, or 32 when the head dim would not fit; both passes use the same tile.
  int tk = kTileKeys;
  const auto pass1_bytes = [&](int t) {
    return static_cast<size_t>(t * kstride + kRowChunk * s.d + 2 * kRowChunk + 2 * kRowBatch * (t / 32)) * sizeof(float);
  };
  const auto pass2_bytes = [&](int t) { return static_cast<size_t>(t * kstride + kRowBatch * s.d + kRowBatch) * sizeof(float); };
  const size_t limit = static_cast<size_t>(optin) - 256;  // room for the static pos[] arrays
  if (pass1_bytes(tk) > limit) tk = 32;
  if (pass1_bytes(tk) > limit || pass2_bytes(tk) > limit) {
    return llmk::fail(LLMK_ERR_UNAVAILABLE, "head_dim " + std::to_string(s.d) +
                                                " is too large for the CUDA scorer's shared-memory tiles on this device");
  }
  const int64_t ntiles = (a.n + tk - 1) / tk;
  const int64_t row_chunks = (s.rows + kRowChunk - 1) / kRowChunk;
  // Split the keys of pass 1 into ranges until the grid fills the GPU (4 CTAs per SM).
  const int64_t base_ctas = heads * row_chunks;
  int64_t ranges = std::min<int64_t>(std::max<int64_t>((4LL * sms + base_ctas - 1) / base_ctas, 1), ntiles);
  const int64_t tiles_per_range = (ntiles + ranges - 1) / ranges;
  ranges = (ntiles + tiles_per_range - 1) / tiles_per_range;
  if (base_ctas > INT32_MAX || heads * ntiles > INT32_MAX) {
    return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "too many query rows or keys for one CUDA grid");
  }

  const size_t part_bytes = align256(static_cast<size_t>(heads * s.rows * ranges) * sizeof(float2));
  const size_t lse_bytes = align256(static_cast<size_t>(heads * s.rows) * sizeof(float));
  const size_t col_bytes = align256(static_cast<size_t>(total) * sizeof(float));
  llmk::kv::Scratch scratch(st);
  LLMK_TRY_STATUS(scratch.alloc(part_bytes + lse_bytes + col_bytes));
  auto* part = scratch.as<float2>();
  auto* lse = scratch.as<float>(part_bytes);
  auto* colsum = scratch.as<float>(part_bytes + lse_bytes);
  const void* q = reinterpret_cast<const void*>(a.q);
  const void* k = reinterpret_cast<const void*>(a.k);

  const size_t b1 = pass1_bytes(tk), b2 = pass2_bytes(tk);
  LLMK_TRY_STATUS(llmk::kv::allow_smem(row_lse_partial<DT>, b1));
  LLMK_TRY_STATUS(llmk::kv::allow_smem(column_sums<DT>, b2));
  llmk::launch(row_lse_partial<DT>, dim3(static_cast<unsigned>(base_ctas), static_cast<unsigned>(ranges)), tk, b1, st, 
      q, k, s, row_chunks, tiles_per_range, part);
  LLMK_CUDA_CHECK_LAUNCH("row_lse_partial");
  llmk::launch(merge_lse, llmk::kv::grid_for(heads * s.rows, kSimpleThreads), kSimpleThreads, 0, st, part, heads * s.rows, ranges,
                                                                                            lse);
  LLMK_CUDA_CHECK_LAUNCH("merge_lse");
  llmk::launch(column_sums<DT>, static_cast<unsigned>(heads * ntiles), tk, b2, st, q, k, s, ntiles, lse, colsum);
  LLMK_CUDA_CHECK_LAUNCH("column_sums");
  auto* scores = reinterpret_cast<float*>(a.scores);
  const int grid = llmk::kv::grid_for(total, kSimpleThreads);
  if (a.scorer == LLMK_KV_SNAPKV) {
    llmk::launch(finalize_snapkv, grid, kSimpleThreads, 0, st, colsum, scores, total, a.n, s.rows, a.pool, a.pool_kernel);
    LLMK_CUDA_CHECK_LAUNCH("finalize_snapkv");
  } else {
    llmk::launch(finalize_observed, grid, kSimpleThreads, 0, st, colsum, reinterpret_cast<float*>(a.attn_sum),
                                                       reinterpret_cast<float*>(a.attn_count), scores, total, a.n,
                                                       a.q_len, s.group);
    LLMK_CUDA_CHECK_LAUNCH("finalize_observed");
  }
  return scratch.release();
}

}  // namespace

extern "C" int32_t llmk_kv_score_cuda(const llmk_kv_score_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_kv_score_args(args));
    const llmk_kv_score_args& a = *args;
    const int64_t total = a.batch * a.heads_kv * a.n;
    if (total == 0) return LLMK_OK;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(static_cast<int32_t>(a.device)));
    cudaStream_t st = reinterpret_cast<cudaStream_t>(a.stream);
    auto* scores = reinterpret_cast<float*>(a.scores);
    switch (a.scorer) {
      case LLMK_KV_RECENCY:
      case LLMK_KV_LADDER:
        llmk::launch(position_kernel, llmk::kv::grid_for(total, kSimpleThreads), kSimpleThreads, 0, st, 
            scores, total, a.n, a.scorer == LLMK_KV_LADDER, a.ladder_layer, a.ladder_rung);
        LLMK_CUDA_CHECK_LAUNCH("position_kernel");
        return LLMK_OK;
      case LLMK_KV_KNORM: {
        const void* k = reinterpret_cast<const void*>(a.k);
        const int grid = llmk::kv::grid_for(total, kSimpleThreads / 32);
        if (a.dtype == LLMK_F32) {
          llmk::launch(knorm_kernel<LLMK_F32>, grid, kSimpleThreads, 0, st, k, scores, total, a.head_dim);
        } else if (a.dtype == LLMK_F16) {
          llmk::launch(knorm_kernel<LLMK_F16>, grid, kSimpleThreads, 0, st, k, scores, total, a.head_dim);
        } else {
          llmk::launch(knorm_kernel<LLMK_BF16>, grid, kSimpleThreads, 0, st, k, scores, total, a.head_dim);
        }
        LLMK_CUDA_CHECK_LAUNCH("knorm_kernel");
        return LLMK_OK;
      }
      default:
        break;
    }
    if (a.dtype == LLMK_F32) return run_attention_scores<LLMK_F32>(a, st);
    if (a.dtype == LLMK_F16) return run_attention_scores<LLMK_F16>(a, st);
    return run_attention_scores<LLMK_BF16>(a, st);
  });
}
