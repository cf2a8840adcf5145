/* Fused cut cross-entropy on CUDA: C ABI entry points, workspace plan and the small kernels
 * (target validation, split merge, loss reduction, backward row coefficients, column sums,
 * vocabulary sort, gradient finalisation). The logit tiles are in cce_forward.cu and
 * cce_backward.cu; the per-row math is llmk/cce_math.h, shared with the CPU kernel.
 *
 * Forward:  validate targets (device, verdict read back)  ->  tiles: per (split, row) online
 *           log-sum-exp partials  ->  merge splits in order, write lse / target_logit /
 *           sum_logits / per-row loss  ->  [SUM/MEAN] one-CTA fixed-order reduction.
 * Backward: validate + count valid rows  ->  per-row coefficients  ->  [SORT] mean of E over valid
 *           rows, mean logit per column, radix sort (stable: ties stay in id order)  ->  tiles
 *           (atomics, or two owner passes when DETERMINISTIC)  ->  analytic label-smoothing
 *           terms and conversion to the output dtype.
 *
 * Workspace (one cudaMallocAsync block, carved in 256-byte aligned regions; see make_plan):
 *   forward:  32 + 16 * splits * n + 4 * n (SUM/MEAN loss)
 *   backward: 32 + 24 n + 4 n (label smoothing) + [sort: 4 n + 16 v + cub temp]
 *             + column-sum partials (<= 256 * d floats) + 3 d + 1 floats
 *             + [F16/BF16: 4 v for dbias, and with FP32_ACCUM 4 n d + 4 v d]
 * Nothing is of size n x v. */
#include <cub/device/device_radix_sort.cuh>

#include <string>

#include "cce_args.h"
#include "cce_common.cuh"
#include "cuda_check.cuh"
#include "launch.cuh"

namespace llmk {
namespace cce {
namespace {

constexpr int kSmallThreads = 256;
constexpr unsigned long long kNoBadTarget = ~0ull;

int grid_for(int64_t items, int per_block) {
  const int64_t blocks = (items + per_block - 1) / per_block;
  return static_cast<int>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);  // grid-stride loops do the rest
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

TargetView target_view(const llmk_cce_args& a) {
  return TargetView{reinterpret_cast<const void*>(a.targets), a.n, a.shift, a.ignore_index, a.vocab_offset, a.v,
                    a.target_dtype == LLMK_I64};
}

/* ---- small kernels ------------------------------------------------------------------------ */

/* verdict[0]: smallest position of a bad target (atomicMin), verdict[1]: rows with a target. */
__global__ void validate_targets(const void* targets, bool i64, int64_t n, int64_t shift, int64_t ignore_index,
                                 int64_t vocab_total, unsigned long long* verdict) {
  const int64_t rows = n > shift ? n - shift : 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  unsigned valid_here = 0;
  // Uniform trip count per block, so that __syncthreads_count sees every thread each time.
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * blockDim.x; base < rows; base += stride) {
    const int64_t i = base + threadIdx.x;
    bool valid = false;
    if (i < rows) {
      const int64_t t = load_target(targets, i64, i + shift);
      if (t != ignore_index) {
        if (t < 0 || t >= vocab_total) atomicMin(&verdict[0], static_cast<unsigned long long>(i + shift));
        else valid = true;
      }
    }
    valid_here += __syncthreads_count(valid);
  }
  if (threadIdx.x == 0 && valid_here != 0) atomicAdd(&verdict[1], static_cast<unsigned long long>(valid_here));
}

/* Merges the splits of each row in split order and writes the forward outputs. loss_rows is
 * the loss output (NONE), the workspace for the reduction (SUM/MEAN), or null. */
__global__ void finalize_forward(const float4* __restrict__ partial, int splits, TargetView tv, CceRowParams rp,
                                 float* lse, float* target_logit, float* sum_logits, float* loss_rows) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < tv.n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float l = 0.0f, t = 0.0f, s = 0.0f, loss = 0.0f;
    if (tv.local_target(i) != kIgnoredRow) {
      float m = -INFINITY;
      for (int k = 0; k < splits; ++k) m = fmaxf(m, partial[k * tv.n + i].x);
      float sum = 0.0f;
      for (int k = 0; k < splits; ++k) {
        const float4 x = partial[k * tv.n + i];
        if (x.x != -INFINITY) sum += x.y * expf(x.x - m);
        t += x.z;
        s += x.w;
      }
      l = m + logf(sum);
      loss = cce_row_loss(rp, l, t, s);
    }
    lse[i] = l;
    if (target_logit != nullptr) target_logit[i] = t;
    if (sum_logits != nullptr) sum_logits[i] = s;
    if (loss_rows != nullptr) loss_rows[i] = loss;
  }
}

/* loss[0] = sum (or mean over valid rows) of row_loss, in a fixed order (one CTA). */
__global__ void reduce_loss(const float* row_loss, int64_t n, bool mean, int64_t valid_rows, float* loss) {
  __shared__ double part[kSmallThreads];
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kSmallThreads) sum += row_loss[i];
  part[threadIdx.x] = sum;
  __syncthreads();
  for (int width = kSmallThreads / 2; width > 0; width /= 2) {
    if (static_cast<int>(threadIdx.x) < width) part[threadIdx.x] += part[threadIdx.x + width];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    // MEAN with no valid row is 0 / 0 = NaN, as in PyTorch.
    loss[0] = static_cast<float>(mean ? part[0] / static_cast<double>(valid_rows) : part[0]);
  }
}

struct RowPrep {
  const float* lse;        // [n]
  const float* grad_loss;  // [n] (NONE) or [1]
  const float* grad_lse;   // [n] or null
  int64_t reduction, valid_rows;
  CceRowParams rp;
  float filter_eps;
  bool analytic_u;         // label smoothing's uniform term handled outside the tiles
};

__global__ void prepare_rows(TargetView tv, RowPrep rp, RowCoef* rows, float* u_rows, float* mean_w) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < tv.n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int tgt = tv.local_target(i);
    RowCoef rc{0.0f, 0.0f, 0.0f, 0.0f, 0.0f, kIgnoredRow};
    float u = 0.0f;
    if (tgt != kIgnoredRow) {
      const float w = cce_row_weight(rp.reduction, rp.grad_loss, i, rp.valid_rows);
      const float dl = rp.grad_lse != nullptr ? rp.grad_lse[i] : 0.0f;
      const CceRowGrad g = cce_row_grad(rp.rp, rp.lse[i], w, dl);
      // u stays in the row too: with a softcap the tile keeps the remainder +u t^2 (cce_math.h).
      rc = RowCoef{rp.lse[i], g.a, g.b, g.u, rp.filter_eps * g.scale, tgt};
      u = g.u;
    }
    rows[i] = rc;
    if (u_rows != nullptr) u_rows[i] = rp.analytic_u ? u : 0.0f;
    if (mean_w != nullptr) mean_w[i] = tgt != kIgnoredRow ? static_cast<float>(1.0 / static_cast<double>(rp.valid_rows)) : 0.0f;
  }
}

/* part[s, j] = sum over rows r of split s of w[r] * x[r, j] (w null: 1). */
template <typename X>
__global__ void column_sum_partial(const X* __restrict__ x, const float* __restrict__ w, int64_t rows, int64_t cols,
                                   int64_t rows_per_split, float* __restrict__ part) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  const int64_t r0 = blockIdx.y * rows_per_split;
  const int64_t r1 = r0 + rows_per_split < rows ? r0 + rows_per_split : rows;
  float sum = 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    const float weight = w != nullptr ? w[r] : 1.0f;
    if (weight != 0.0f) sum += weight * to_f32(x[r * cols + j]);
  }
  part[blockIdx.y * cols + j] = sum;
}

__global__ void column_sum_final(const float* __restrict__ part, int splits, int64_t cols, float* __restrict__ out) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  float sum = 0.0f;
  for (int s = 0; s < splits; ++s) sum += part[s * cols + j];
  out[j] = sum;
}

/* keys[j] = C_j . mean_e + bias_j (a warp per column), vals[j] = j. */
template <typename T>
__global__ void mean_logits(const T* __restrict__ c, const T* __restrict__ bias, const float* __restrict__ mean_e,
                            int64_t v, int64_t d, float* __restrict__ keys, int32_t* __restrict__ vals) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t j = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; j < v; j += warps) {
    float dot = 0.0f;
    for (int64_t k = lane; k < d; k += 32) dot += to_f32(c[j * d + k]) * mean_e[k];
    for (int off = 16; off > 0; off /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, off);
    if (lane == 0) {
      const float z = dot + (bias != nullptr ? to_f32(bias[j]) : 0.0f);
      keys[j] = z + 0.0f;  // -0 -> +0: equal logits must tie (and keep id order) in the sort
      vals[j] = static_cast<int32_t>(j);
    }
  }
}

/* dst[r, j] = acc[r, j] - (coef ? coef[r] : 1) * vec[j] (vec null: 0), converted to T. acc and
 * dst may be the same buffer (in-place accumulation). */
template <typename Acc, typename T>
__global__ void finalize_grad(const Acc* acc, T* dst, int64_t rows, int64_t cols, const float* coef, const float* vec) {
  const int64_t total = rows * cols;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float x = to_f32(acc[idx]);
    if (vec != nullptr) {
      const int64_t r = idx / cols, j = idx - r * cols;
      x -= (coef != nullptr ? coef[r] : 1.0f) * vec[j];
    }
    dst[idx] = from_f32<T>(x);
  }
}

/* ---- workspace plan ----------------------------------------------------------------------- */

struct Region {
  size_t offset = 0, bytes = 0;
};

struct Plan {
  bool half = false;         // F16 / BF16 operands
  bool analytic_u = false;   // label smoothing: its uniform -u term is applied outside the tiles
  bool sort = false, det = false, fp32_acc = false;
  int row_blocks = 0, vocab_blocks = 0, splits = 0;
  int64_t colsum_splits_max = 0;
  size_t cub_temp = 0;
  // forward
  Region verdict, partial, row_loss;
  // backward
  Region rows, u_rows, mean_w, colsum_part, mean_e, colsum_c, ue, u_total;
  Region keys_in, keys_out, vals_in, perm, cub;
  Region de_acc, dc_acc, dbias_acc;
  size_t total = 0;

  void add(Region& r, size_t bytes) {
    if (bytes == 0) return;
    r.offset = total;
    r.bytes = bytes;
    total += (bytes + 255) / 256 * 256;
  }
};

int64_t colsum_splits(int64_t rows) {
  const int64_t s = ceil_div(rows, 512);
  return s < 1 ? 1 : (s > 256 ? 256 : s);
}

int forward_splits(int row_blocks, int vocab_blocks) {
  // Enough CTAs to fill any current GPU several times over, never more splits than blocks.
  int64_t s = ceil_div(1024, row_blocks > 0 ? row_blocks : 1);
  if (s > 32) s = 32;
  if (s > vocab_blocks) s = vocab_blocks;
  return static_cast<int>(s < 1 ? 1 : s);
}

/* The one place that decides what a call allocates, so the size query cannot disagree. */
int32_t make_plan(const llmk_cce_args& a, CcePass pass, Plan* out) {
  Plan p;
  const int64_t n = a.n, d = a.d, v = a.v;
  p.half = a.dtype != LLMK_F32;
  p.row_blocks = static_cast<int>(ceil_div(n, tile_rows(a.dtype)));
  p.vocab_blocks = static_cast<int>(ceil_div(v, tile_cols(a.dtype)));
  p.sort = (a.flags & LLMK_CCE_SORT_VOCAB) != 0;
  p.det = (a.flags & LLMK_CCE_DETERMINISTIC) != 0;
  p.fp32_acc = (a.flags & LLMK_CCE_FP32_ACCUM) != 0;
  p.analytic_u = a.label_smoothing > 0.0;
  const size_t f = sizeof(float);
  p.add(p.verdict, 4 * sizeof(unsigned long long));  // bad position, valid rows, tiles visited, skipped
  if (n == 0) {
    *out = p;
    return LLMK_OK;
  }
  if (pass == CcePass::Forward) {
    p.splits = forward_splits(p.row_blocks, p.vocab_blocks);
    p.add(p.partial, static_cast<size_t>(p.splits) * n * sizeof(float4));
    if (a.loss != 0 && a.reduction != LLMK_REDUCTION_NONE) p.add(p.row_loss, n * f);
    *out = p;
    return LLMK_OK;
  }
  const bool want_e = a.grad_e != 0, want_c = a.grad_c != 0, want_b = a.grad_bias != 0;
  p.add(p.rows, n * sizeof(RowCoef));
  if (p.analytic_u) p.add(p.u_rows, n * f);
  int64_t splits_max = 0;
  auto need_colsum = [&](int64_t rows) {
    const int64_t s = colsum_splits(rows);
    if (s > splits_max) splits_max = s;
  };
  if (p.sort) {
    p.add(p.mean_w, n * f);
    need_colsum(n);
    p.add(p.mean_e, d * f);
    p.add(p.keys_in, v * f);
    p.add(p.keys_out, v * f);
    p.add(p.vals_in, v * sizeof(int32_t));
    p.add(p.perm, v * sizeof(int32_t));
    size_t temp = 0;
    LLMK_CUDA_TRY(cub::DeviceRadixSort::SortPairsDescending(nullptr, temp, static_cast<const float*>(nullptr),
                                                            static_cast<float*>(nullptr),
                                                            static_cast<const int32_t*>(nullptr),
                                                            static_cast<int32_t*>(nullptr), static_cast<int>(v)));
    p.cub_temp = temp;
    p.add(p.cub, temp);
  }
  if (p.analytic_u) {
    if (want_e) {
      need_colsum(v);
      p.add(p.colsum_c, d * f);
    }
    if (want_c) {
      need_colsum(n);
      p.add(p.ue, d * f);
    }
    if (want_b) {
      need_colsum(n);
      p.add(p.u_total, f);
    }
  }
  p.colsum_splits_max = splits_max;
  // Partials of the widest column sum (d columns; the bias total has 1).
  if (splits_max > 0) p.add(p.colsum_part, static_cast<size_t>(splits_max) * d * f);
  if (p.half) {
    if (p.fp32_acc && want_e) p.add(p.de_acc, static_cast<size_t>(n) * d * f);
    if (p.fp32_acc && want_c) p.add(p.dc_acc, static_cast<size_t>(v) * d * f);
    if (want_b) p.add(p.dbias_acc, v * f);
  }
  *out = p;
  return LLMK_OK;
}

template <typename P>
P* at(void* base, const Region& r) {
  return r.bytes == 0 ? nullptr : reinterpret_cast<P*>(static_cast<unsigned char*>(base) + r.offset);
}

int32_t check_cuda_limits(const llmk_cce_args& a) {
  if (a.v > INT32_MAX) {
    return fail(LLMK_ERR_INVALID_ARGUMENT, "v = " + std::to_string(a.v) +
                                               " is too large for the CUDA kernels (column ids are 32-bit: v < 2^31)");
  }
  return LLMK_OK;
}

/* Allocates the plan's workspace on the stream, runs body(base) and frees it on every path. */
template <typename Body>
int32_t with_workspace(const Plan& plan, cudaStream_t st, Body&& body) {
  void* base = nullptr;
  LLMK_CUDA_TRY(cudaMallocAsync(&base, plan.total, st));
  const int32_t rc = body(base);
  const cudaError_t free_err = cudaFreeAsync(base, st);
  if (rc != LLMK_OK) return rc;
  if (free_err != cudaSuccess) return fail_cuda(free_err, "cudaFreeAsync", __FILE__, __LINE__);
  return LLMK_OK;
}

/* Validates every target on the device and waits for the verdict; *valid_rows on success. */
int32_t validate_on_device(const llmk_cce_args& a, unsigned long long* verdict, cudaStream_t st, int64_t* valid_rows) {
  LLMK_CUDA_TRY(cudaMemsetAsync(verdict, 0xff, sizeof(unsigned long long), st));
  LLMK_CUDA_TRY(cudaMemsetAsync(verdict + 1, 0, 3 * sizeof(unsigned long long), st));
  const int64_t rows = a.n > a.shift ? a.n - a.shift : 0;
  llmk::launch(validate_targets, grid_for(rows, kSmallThreads), kSmallThreads, 0, st, 
      reinterpret_cast<const void*>(a.targets), a.target_dtype == LLMK_I64, a.n, a.shift, a.ignore_index,
      a.vocab_total, verdict);
  LLMK_CUDA_CHECK_LAUNCH("validate_targets");
  unsigned long long host[2];
  LLMK_CUDA_TRY(cudaMemcpyAsync(host, verdict, sizeof(host), cudaMemcpyDeviceToHost, st));
  LLMK_CUDA_TRY(cudaStreamSynchronize(st));
  if (host[0] != kNoBadTarget) {
    const int64_t pos = static_cast<int64_t>(host[0]);
    int64_t value = 0;
    if (a.target_dtype == LLMK_I64) {
      LLMK_CUDA_TRY(cudaMemcpyAsync(&value, reinterpret_cast<const int64_t*>(a.targets) + pos, sizeof(int64_t),
                                    cudaMemcpyDeviceToHost, st));
    } else {
      int32_t v32 = 0;
      LLMK_CUDA_TRY(cudaMemcpyAsync(&v32, reinterpret_cast<const int32_t*>(a.targets) + pos, sizeof(int32_t),
                                    cudaMemcpyDeviceToHost, st));
      LLMK_CUDA_TRY(cudaStreamSynchronize(st));
      value = v32;
    }
    LLMK_CUDA_TRY(cudaStreamSynchronize(st));
    return fail_cce_target(a, pos, value);
  }
  *valid_rows = static_cast<int64_t>(host[1]);
  return LLMK_OK;
}

/* Deterministic two-stage column sum of a [rows, cols] matrix with optional row weights. */
template <typename X>
int32_t column_sum(const Plan& plan, void* ws, const X* x, const float* w, int64_t rows, int64_t cols, float* out,
                   cudaStream_t st) {
  const int64_t splits = colsum_splits(rows);
  float* part = at<float>(ws, plan.colsum_part);
  const dim3 grid(static_cast<unsigned>(ceil_div(cols, kSmallThreads)), static_cast<unsigned>(splits));
  llmk::launch(column_sum_partial<X>, grid, kSmallThreads, 0, st, x, w, rows, cols, ceil_div(rows, splits), part);
  LLMK_CUDA_CHECK_LAUNCH("column_sum_partial");
  llmk::launch(column_sum_final, static_cast<unsigned>(ceil_div(cols, kSmallThreads)), kSmallThreads, 0, st, 
      part, static_cast<int>(splits), cols, out);
  LLMK_CUDA_CHECK_LAUNCH("column_sum_final");
  return LLMK_OK;
}

/* ---- forward ------------------------------------------------------------------------------ */

template <typename T>
int32_t forward_typed(const llmk_cce_args& a, const Plan& plan, void* ws, cudaStream_t st) {
  auto* verdict = at<unsigned long long>(ws, plan.verdict);
  auto* loss = reinterpret_cast<float*>(a.loss);
  const bool reduced = a.reduction != LLMK_REDUCTION_NONE;
  int64_t valid_rows = 0;
  if (a.n > 0) {
    LLMK_TRY_STATUS(validate_on_device(a, verdict, st, &valid_rows));
    FwdTileParams p{};
    p.e = reinterpret_cast<const void*>(a.e);
    p.c = reinterpret_cast<const void*>(a.c);
    p.bias = reinterpret_cast<const void*>(a.bias);
    p.tv = target_view(a);
    p.d = a.d;
    p.softcap = static_cast<float>(a.softcap);
    p.vec16 = std::is_same<T, float>::value ? false
                                            : (a.d % 8 == 0 && (a.e % 16) == 0 && (a.c % 16) == 0);
    p.row_blocks = plan.row_blocks;
    p.vocab_blocks = plan.vocab_blocks;
    p.splits = plan.splits;
    p.partial = at<float4>(ws, plan.partial);
    LLMK_CUDA_TRY(launch_forward_tiles(a.dtype, p, st));
    float* loss_rows = loss == nullptr ? nullptr : (reduced ? at<float>(ws, plan.row_loss) : loss);
    llmk::launch(finalize_forward, grid_for(a.n, kSmallThreads), kSmallThreads, 0, st, 
        p.partial, plan.splits, p.tv, cce_row_params(a), reinterpret_cast<float*>(a.lse),
        reinterpret_cast<float*>(a.target_logit), reinterpret_cast<float*>(a.sum_logits), loss_rows);
    LLMK_CUDA_CHECK_LAUNCH("finalize_forward");
  }
  if (loss != nullptr && reduced) {
    llmk::launch(reduce_loss, 1, kSmallThreads, 0, st, at<float>(ws, plan.row_loss), a.n, a.reduction == LLMK_REDUCTION_MEAN,
                                             valid_rows, loss);
    LLMK_CUDA_CHECK_LAUNCH("reduce_loss");
  }
  return LLMK_OK;
}

/* ---- backward ----------------------------------------------------------------------------- */

/* Sorted visiting order of the vocabulary: descending mean logit over the valid rows. */
template <typename T>
int32_t sort_vocabulary(const llmk_cce_args& a, const Plan& plan, void* ws, cudaStream_t st) {
  float* mean_e = at<float>(ws, plan.mean_e);
  LLMK_TRY_STATUS(column_sum<T>(plan, ws, reinterpret_cast<const T*>(a.e), at<float>(ws, plan.mean_w), a.n, a.d,
                                mean_e, st));
  float* keys = at<float>(ws, plan.keys_in);
  int32_t* ids = at<int32_t>(ws, plan.vals_in);
  llmk::launch(mean_logits<T>, grid_for(a.v * 32, kSmallThreads), kSmallThreads, 0, st, 
      reinterpret_cast<const T*>(a.c), reinterpret_cast<const T*>(a.bias), mean_e, a.v, a.d, keys, ids);
  LLMK_CUDA_CHECK_LAUNCH("mean_logits");
  size_t temp = plan.cub_temp;
  LLMK_CUDA_TRY(cub::DeviceRadixSort::SortPairsDescending(at<void>(ws, plan.cub), temp, keys,
                                                          at<float>(ws, plan.keys_out), ids,
                                                          at<int32_t>(ws, plan.perm), static_cast<int>(a.v), 0,
                                                          static_cast<int>(sizeof(float) * 8), st));
  return LLMK_OK;
}

template <typename Acc, typename T>
int32_t finalize(const Acc* acc, T* dst, int64_t rows, int64_t cols, const float* coef, const float* vec,
                 cudaStream_t st) {
  llmk::launch(finalize_grad<Acc, T>, grid_for(rows * cols, kSmallThreads), kSmallThreads, 0, st, acc, dst, rows, cols, coef,
                                                                                       vec);
  LLMK_CUDA_CHECK_LAUNCH("finalize_grad");
  return LLMK_OK;
}

template <typename T>
int32_t backward_typed(llmk_cce_args& a, const Plan& plan, void* ws, cudaStream_t st) {
  auto* verdict = at<unsigned long long>(ws, plan.verdict);
  T* grad_e = reinterpret_cast<T*>(a.grad_e);
  T* grad_c = reinterpret_cast<T*>(a.grad_c);
  T* grad_b = reinterpret_cast<T*>(a.grad_bias);
  const size_t es = sizeof(T);
  if (a.n == 0) {  // no rows: dC and dbias are zero, dE is empty
    if (grad_c != nullptr) LLMK_CUDA_TRY(cudaMemsetAsync(grad_c, 0, a.v * a.d * es, st));
    if (grad_b != nullptr) LLMK_CUDA_TRY(cudaMemsetAsync(grad_b, 0, a.v * es, st));
    a.tiles_total = 0;
    a.tiles_skipped = 0;
    return LLMK_OK;
  }
  int64_t valid_rows = 0;
  LLMK_TRY_STATUS(validate_on_device(a, verdict, st, &valid_rows));

  RowCoef* rows = at<RowCoef>(ws, plan.rows);
  float* u_rows = at<float>(ws, plan.u_rows);
  RowPrep prep{reinterpret_cast<const float*>(a.lse), reinterpret_cast<const float*>(a.grad_loss),
               reinterpret_cast<const float*>(a.grad_lse), a.reduction, valid_rows, cce_row_params(a),
               static_cast<float>(a.filter_eps), plan.analytic_u};
  llmk::launch(prepare_rows, grid_for(a.n, kSmallThreads), kSmallThreads, 0, st, target_view(a), prep, rows, u_rows,
                                                                        at<float>(ws, plan.mean_w));
  LLMK_CUDA_CHECK_LAUNCH("prepare_rows");
  if (plan.sort) LLMK_TRY_STATUS(sort_vocabulary<T>(a, plan, ws, st));

  // Accumulators: the outputs themselves (F32, or F16/BF16 without FP32_ACCUM), else fp32 workspace.
  const bool acc_f32 = !plan.half || plan.fp32_acc;
  void* de = plan.de_acc.bytes ? at<void>(ws, plan.de_acc) : static_cast<void*>(grad_e);
  void* dc = plan.dc_acc.bytes ? at<void>(ws, plan.dc_acc) : static_cast<void*>(grad_c);
  float* db = plan.dbias_acc.bytes ? at<float>(ws, plan.dbias_acc) : reinterpret_cast<float*>(grad_b);
  const size_t acc_es = acc_f32 ? sizeof(float) : es;
  if (de != nullptr) LLMK_CUDA_TRY(cudaMemsetAsync(de, 0, a.n * a.d * acc_es, st));
  if (dc != nullptr) LLMK_CUDA_TRY(cudaMemsetAsync(dc, 0, a.v * a.d * acc_es, st));
  if (db != nullptr) LLMK_CUDA_TRY(cudaMemsetAsync(db, 0, a.v * sizeof(float), st));

  BwdTileParams p{};
  p.e = reinterpret_cast<const void*>(a.e);
  p.c = reinterpret_cast<const void*>(a.c);
  p.bias = reinterpret_cast<const void*>(a.bias);
  p.rows = rows;
  p.perm = at<int32_t>(ws, plan.perm);
  p.n = a.n;
  p.d = a.d;
  p.v = a.v;
  p.softcap = static_cast<float>(a.softcap);
  p.filter = a.filter_eps > 0.0;
  p.vec16 = plan.half && a.d % 8 == 0 && (a.e % 16) == 0 && (a.c % 16) == 0;
  p.row_blocks = plan.row_blocks;
  p.vocab_blocks = plan.vocab_blocks;
  p.counters = verdict + 2;
  if (plan.det) {
    bool counted = false;
    if (de != nullptr) {
      p.mode = BwdMode::kRowOwner;
      p.de = de;
      p.count_tiles = true;
      counted = true;
      LLMK_CUDA_TRY(launch_backward_tiles(a.dtype, acc_f32, p, st));
    }
    if (dc != nullptr || db != nullptr) {
      p.mode = BwdMode::kColOwner;
      p.de = nullptr;
      p.dc = dc;
      p.dbias = db;
      p.count_tiles = !counted;
      LLMK_CUDA_TRY(launch_backward_tiles(a.dtype, acc_f32, p, st));
    }
  } else if (de != nullptr || dc != nullptr || db != nullptr) {
    p.mode = BwdMode::kAllTiles;
    p.de = de;
    p.dc = dc;
    p.dbias = db;
    p.count_tiles = true;
    LLMK_CUDA_TRY(launch_backward_tiles(a.dtype, acc_f32, p, st));
  }

  // Label smoothing's uniform term, exactly: dE_i -= u_i sum_j C_j, dC_j -= sum_i u_i E_i,
  // dbias_j -= sum_i u_i. Then every accumulator becomes its output.
  const float* colsum_c = nullptr;
  const float* ue = nullptr;
  const float* u_total = nullptr;
  if (plan.analytic_u) {
    if (grad_e != nullptr) {
      LLMK_TRY_STATUS(column_sum<T>(plan, ws, reinterpret_cast<const T*>(a.c), nullptr, a.v, a.d,
                                    at<float>(ws, plan.colsum_c), st));
      colsum_c = at<float>(ws, plan.colsum_c);
    }
    if (grad_c != nullptr) {
      LLMK_TRY_STATUS(column_sum<T>(plan, ws, reinterpret_cast<const T*>(a.e), u_rows, a.n, a.d,
                                    at<float>(ws, plan.ue), st));
      ue = at<float>(ws, plan.ue);
    }
    if (grad_b != nullptr) {
      LLMK_TRY_STATUS(column_sum<float>(plan, ws, u_rows, nullptr, a.n, 1, at<float>(ws, plan.u_total), st));
      u_total = at<float>(ws, plan.u_total);
    }
  }
  if (grad_e != nullptr && (colsum_c != nullptr || de != grad_e)) {
    if (acc_f32) LLMK_TRY_STATUS(finalize(static_cast<const float*>(de), grad_e, a.n, a.d, u_rows, colsum_c, st));
    else LLMK_TRY_STATUS(finalize(static_cast<const T*>(de), grad_e, a.n, a.d, u_rows, colsum_c, st));
  }
  if (grad_c != nullptr && (ue != nullptr || dc != grad_c)) {
    if (acc_f32) LLMK_TRY_STATUS(finalize(static_cast<const float*>(dc), grad_c, a.v, a.d, nullptr, ue, st));
    else LLMK_TRY_STATUS(finalize(static_cast<const T*>(dc), grad_c, a.v, a.d, nullptr, ue, st));
  }
  if (grad_b != nullptr && (u_total != nullptr || static_cast<void*>(db) != static_cast<void*>(grad_b))) {
    // One column of v rows: dbias_j = acc_j - U (coef null: 1 x vec[0]).
    LLMK_TRY_STATUS(finalize(static_cast<const float*>(db), grad_b, a.v, 1, nullptr, u_total, st));
  }

  unsigned long long tiles[2];
  LLMK_CUDA_TRY(cudaMemcpyAsync(tiles, verdict + 2, sizeof(tiles), cudaMemcpyDeviceToHost, st));
  LLMK_CUDA_TRY(cudaStreamSynchronize(st));
  a.tiles_total = static_cast<int64_t>(tiles[0]);
  a.tiles_skipped = static_cast<int64_t>(tiles[1]);
  return LLMK_OK;
}

/* Common prologue of the entry points: checks, device, plan, workspace; then the typed body. */
template <typename Run>
int32_t run_pass(llmk_cce_args* args, CcePass pass, Run&& run) {
  LLMK_TRY_STATUS(check_cce_args(args, pass));
  LLMK_TRY_STATUS(check_cuda_limits(*args));
  DeviceGuard guard;
  LLMK_TRY_STATUS(guard.enter(static_cast<int32_t>(args->device)));
  cudaStream_t st = reinterpret_cast<cudaStream_t>(args->stream);
  Plan plan;
  LLMK_TRY_STATUS(make_plan(*args, pass, &plan));
  return with_workspace(plan, st, [&](void* ws) -> int32_t { return run(plan, ws, st); });
}

}  // namespace
}  // namespace cce
}  // namespace llmk

extern "C" int32_t llmk_cce_forward_cuda(llmk_cce_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk::cce;
    return run_pass(args, llmk::CcePass::Forward, [&](const Plan& plan, void* ws, cudaStream_t st) -> int32_t {
      switch (args->dtype) {
        case LLMK_F32: return forward_typed<float>(*args, plan, ws, st);
        case LLMK_F16: return forward_typed<__half>(*args, plan, ws, st);
        default: return forward_typed<__nv_bfloat16>(*args, plan, ws, st);
      }
    });
  });
}

extern "C" int32_t llmk_cce_backward_cuda(llmk_cce_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk::cce;
    return run_pass(args, llmk::CcePass::Backward, [&](const Plan& plan, void* ws, cudaStream_t st) -> int32_t {
      switch (args->dtype) {
        case LLMK_F32: return backward_typed<float>(*args, plan, ws, st);
        case LLMK_F16: return backward_typed<__half>(*args, plan, ws, st);
        default: return backward_typed<__nv_bfloat16>(*args, plan, ws, st);
      }
    });
  });
}

extern "C" int32_t llmk_cce_workspace_bytes_cuda(const llmk_cce_args* args, int32_t pass, int64_t* bytes) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::require_non_null(bytes, "bytes"));
    if (pass != 0 && pass != 1) {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT,
                        "pass must be 0 (forward) or 1 (backward); got " + std::to_string(pass));
    }
    const auto which = pass == 0 ? llmk::CcePass::Forward : llmk::CcePass::Backward;
    // Sizes only: the query carries no tensors. Plan for everything a call may produce (the loss
    // unless sharded, every gradient), the most a call with these sizes allocates.
    LLMK_TRY_STATUS(llmk::check_cce_sizes(args));
    llmk_cce_args a = *args;
    a.loss = llmk::cce_sharded(a) ? 0 : 1;
    a.grad_e = a.grad_c = 1;
    a.grad_bias = a.bias != 0 ? 1 : 0;
    LLMK_TRY_STATUS(llmk::cce::check_cuda_limits(a));
    llmk::DeviceGuard guard;  // the sort's scratch size is asked of CUB on the target device
    LLMK_TRY_STATUS(guard.enter(static_cast<int32_t>(a.device)));
    llmk::cce::Plan plan;
    LLMK_TRY_STATUS(llmk::cce::make_plan(a, which, &plan));
    *bytes = static_cast<int64_t>(plan.total);
    return LLMK_OK;
  });
}
