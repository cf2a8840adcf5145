/* Building blocks of the CUDA cut cross-entropy (cce.cu, cce_forward.cu, cce_backward.cu).
 *
 * Both passes are built from one "logit tile": a CTA of 256 threads computes the raw dot products
 * z_ij = E_i . C_j of a BM x BN block (rows of E x rows of C) with fp32 accumulation, and every
 * thread ends up owning a fixed R x C subset of that block (acc[r][c] at row row_of(r), column
 * col_of(c)). Everything after the dot products (softcap, online log-sum-exp, gradient
 * coefficients, filtering) is written once against that ownership map:
 *
 *   MmaTile<T>  (T = __half / __nv_bfloat16): 128 x 128 tile, D in chunks of 32, cp.async
 *               multi-stage shared-memory pipeline, ldmatrix + mma.sync.m16n8k16 (fp32 accum).
 *               8 warps as 2 (rows) x 4 (cols), each warp 64 x 32, each thread 8 x 8 entries.
 *   SimtTile    (T = float): 64 x 64 tile, exact fp32 FMA (no TF32), each thread 4 x 4 entries.
 *
 * Backward additionally multiplies a tile's gradient block G (kept in shared memory) by slices
 * of C and E: dE[rows] += G C[cols] and dC[cols] += G^T E[rows], D in chunks of kDC. */
#ifndef LLMK_CCE_COMMON_CUH
#define LLMK_CCE_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "llmk/cce_math.h"
#include "llmk/llmk.h"
#include "ptx.cuh"

namespace llmk {
namespace cce {

constexpr int kThreads = 256;
constexpr int kIgnoredRow = -2;   // RowCoef::tgt of a row without a target
constexpr int kTargetElsewhere = -1;  // valid row whose target lies in another shard

/* ---------------------------------------------------------------------------------------------
 * Small device helpers
 * ------------------------------------------------------------------------------------------- */

template <typename T>
__device__ __forceinline__ float to_f32(T x);
template <>
__device__ __forceinline__ float to_f32<float>(float x) { return x; }
template <>
__device__ __forceinline__ float to_f32<__half>(__half x) { return __half2float(x); }
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

/* Target of row i of E as a column of this shard: kIgnoredRow, kTargetElsewhere or [0, v). */
__device__ __forceinline__ int64_t load_target(const void* targets, bool i64, int64_t pos) {
  return i64 ? static_cast<const int64_t*>(targets)[pos] : static_cast<const int32_t*>(targets)[pos];
}

/* Everything a kernel needs to find row i's target (the values were validated on the device). */
struct TargetView {
  const void* targets;  // [n] I32 or I64
  int64_t n, shift, ignore_index, vocab_offset, v;
  bool i64;
  __device__ int local_target(int64_t i) const {
    if (i >= n || i + shift >= n) return kIgnoredRow;
    const int64_t t = load_target(targets, i64, i + shift);
    if (t == ignore_index) return kIgnoredRow;
    const int64_t local = t - vocab_offset;
    return (local >= 0 && local < v) ? static_cast<int>(local) : kTargetElsewhere;
  }
};

__device__ __forceinline__ float softcap_or_identity(float z, float cap) {
  return cap > 0.0f ? llmk::cce_softcap(z, cap) : z;
}

/* Per-row backward coefficients (see cce_math.h): g = p * a - b * [col == tgt] - u. */
struct RowCoef {
  float lse;
  float a, b, u;  // u: label smoothing's uniform term (outside the tiles; softcap remainder +u t^2)
  float thr;      // filter threshold eps * scale (the tile is kept if some |g| >= thr)
  int32_t tgt;    // local target column, kTargetElsewhere or kIgnoredRow
};

/* Adds (v0, v1) to p[0], p[1] (p[1] only when has1), atomically or as a plain read-modify-write
 * (the deterministic passes own their outputs exclusively). pair_ok: p is 4-byte aligned for a
 * 2 x 16-bit vector atomic. */
__device__ __forceinline__ void accumulate2(float* p, float v0, float v1, bool has1, bool atomic, bool) {
  if (atomic) {
    atomicAdd(p, v0);
    if (has1) atomicAdd(p + 1, v1);
  } else {
    p[0] += v0;
    if (has1) p[1] += v1;
  }
}

template <typename H>
__device__ __forceinline__ void accumulate2_half(H* p, float v0, float v1, bool has1, bool atomic, bool pair_ok) {
  using H2 = typename std::conditional<std::is_same<H, __half>::value, __half2, __nv_bfloat162>::type;
  if (atomic) {
    if (has1 && pair_ok) {
      H2 pair;
      pair.x = from_f32<H>(v0);
      pair.y = from_f32<H>(v1);
      atomicAdd(reinterpret_cast<H2*>(p), pair);
    } else {
      atomicAdd(p, from_f32<H>(v0));
      if (has1) atomicAdd(p + 1, from_f32<H>(v1));
    }
  } else {
    p[0] = from_f32<H>(to_f32(p[0]) + v0);
    if (has1) p[1] = from_f32<H>(to_f32(p[1]) + v1);
  }
}
__device__ __forceinline__ void accumulate2(__half* p, float v0, float v1, bool has1, bool atomic, bool pair_ok) {
  accumulate2_half(p, v0, v1, has1, atomic, pair_ok);
}
__device__ __forceinline__ void accumulate2(__nv_bfloat16* p, float v0, float v1, bool has1, bool atomic,
                                            bool pair_ok) {
  accumulate2_half(p, v0, v1, has1, atomic, pair_ok);
}

/* PTX wrappers: cuda/ptx.cuh (the one copy). */
using llmk::ptx::cp_async16;
using llmk::ptx::cp_async_commit;
using llmk::ptx::cp_async_wait;
using llmk::ptx::ldmatrix_x4;
using llmk::ptx::ldmatrix_x4_trans;
using llmk::ptx::mma_m16n8k16;

/* ---------------------------------------------------------------------------------------------
 * Operand view shared by both tiles: which rows of E and C a tile covers.
 * ------------------------------------------------------------------------------------------- */
template <typename T>
struct Operands {
  const T* e;   // [n, d]
  const T* c;   // [v, d]
  int64_t n, d;
  bool vec16;   // rows start 16-byte aligned (d % 8 == 0 and aligned bases): cp.async path
};

/* ---------------------------------------------------------------------------------------------
 * MmaTile<T>: tensor-core tile for F16 / BF16
 * ------------------------------------------------------------------------------------------- */
template <typename T>
struct MmaTile {
  static constexpr int kBM = 128, kBN = 128, kBK = 32;
  static constexpr int kR = 8, kC = 8;            // entries per thread: rows x columns
  static constexpr int kColSlots = 16;             // threads sharing one row of the tile
  static constexpr int kRowSlots = 16;             // threads sharing one column of the tile
  static constexpr int kLdK = kBK + 8;             // padded smem row (80 B): conflict-free ldmatrix
  static constexpr int kStageElems = (kBM + kBN) * kLdK;
  static constexpr int kDC = 64;                   // D chunk of the backward products
  static constexpr int kLdD = kDC + 8;             // 144 B rows
  static constexpr int kLdG = kBN + 8;             // 272 B rows of the gradient block
  using GradElem = T;

  __device__ static int warp() { return static_cast<int>(threadIdx.x) >> 5; }
  __device__ static int lane() { return static_cast<int>(threadIdx.x) & 31; }
  __device__ static int row_of(int r) {
    return (warp() >> 2) * 64 + (r >> 1) * 16 + (r & 1) * 8 + (lane() >> 2);
  }
  __device__ static int col_of(int c) { return (warp() & 3) * 32 + (c >> 1) * 8 + (lane() & 3) * 2 + (c & 1); }
  __device__ static int col_slot() { return (warp() & 3) * 4 + (lane() & 3); }
  __device__ static int row_slot() { return (warp() >> 2) * 8 + (lane() >> 2); }

  __host__ __device__ static constexpr size_t stage_bytes(int stages) { return static_cast<size_t>(stages) * kStageElems * sizeof(T); }
  __host__ __device__ static constexpr size_t chunk_bytes() { return static_cast<size_t>(kBM + kBN) * kLdD * sizeof(T); }
  __host__ __device__ static constexpr size_t grad_bytes() { return static_cast<size_t>(kBM) * kLdG * sizeof(T); }

  /* Loads D-slice [k0, k0 + width) of the tile's rows of E and C into sE / sC (row stride ld).
   * cols[j]: row of C for tile column j, or -1 (zero-filled). */
  template <int kWidth>
  __device__ static void load_slice(const Operands<T>& op, int64_t row0, const int* cols, int64_t k0, T* sE,
                                    T* sC, int ld) {
    if (op.vec16) {
      constexpr int kChunksPerRow = kWidth / 8;
      for (int idx = threadIdx.x; idx < kBM * kChunksPerRow; idx += kThreads) {
        const int r = idx / kChunksPerRow, ch = idx % kChunksPerRow;
        const int64_t k = k0 + ch * 8;
        const int64_t row = row0 + r;
        const bool ok = row < op.n && k < op.d;
        cp_async16(sE + r * ld + ch * 8, ok ? op.e + row * op.d + k : op.e, ok);
      }
      for (int idx = threadIdx.x; idx < kBN * kChunksPerRow; idx += kThreads) {
        const int j = idx / kChunksPerRow, ch = idx % kChunksPerRow;
        const int64_t k = k0 + ch * 8;
        const int col = cols[j];
        const bool ok = col >= 0 && k < op.d;
        cp_async16(sC + j * ld + ch * 8, ok ? op.c + static_cast<int64_t>(col) * op.d + k : op.c, ok);
      }
    } else {
      // Unaligned rows (d % 8 != 0): element loads, consecutive threads along D.
      const T zero = from_f32<T>(0.0f);
      for (int idx = threadIdx.x; idx < kBM * kWidth; idx += kThreads) {
        const int r = idx / kWidth, kk = idx % kWidth;
        const int64_t k = k0 + kk, row = row0 + r;
        sE[r * ld + kk] = (row < op.n && k < op.d) ? op.e[row * op.d + k] : zero;
      }
      for (int idx = threadIdx.x; idx < kBN * kWidth; idx += kThreads) {
        const int j = idx / kWidth, kk = idx % kWidth;
        const int64_t k = k0 + kk;
        const int col = cols[j];
        sC[j * ld + kk] = (col >= 0 && k < op.d) ? op.c[static_cast<int64_t>(col) * op.d + k] : zero;
      }
    }
  }

  /* acc[r][c] = E[row0 + row_of(r)] . C[cols[col_of(c)]] over all of D. stages: kStages
   * buffers of kStageElems. Ends with a barrier: the caller may reuse the stage memory. */
  template <int kStages>
  __device__ static void logits(const Operands<T>& op, int64_t row0, const int* cols, T* stages,
                                float (&acc)[kR][kC]) {
#pragma unroll
    for (int r = 0; r < kR; ++r)
#pragma unroll
      for (int c = 0; c < kC; ++c) acc[r][c] = 0.0f;
    const int64_t k_tiles = (op.d + kBK - 1) / kBK;
    auto load = [&](int64_t kt) {
      T* sE = stages + (kt % kStages) * kStageElems;
      load_slice<kBK>(op, row0, cols, kt * kBK, sE, sE + kBM * kLdK, kLdK);
    };
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < k_tiles) load(s);
      cp_async_commit();
    }
    const int wm = warp() >> 2, wn = warp() & 3, ln = lane();
    for (int64_t kt = 0; kt < k_tiles; ++kt) {
      cp_async_wait<kStages - 2>();
      __syncthreads();  // stage kt visible; stage kt - 1 fully consumed by every warp
      if (kt + kStages - 1 < k_tiles) load(kt + kStages - 1);
      cp_async_commit();
      const T* sE = stages + (kt % kStages) * kStageElems;
      const T* sC = sE + kBM * kLdK;
#pragma unroll
      for (int ks = 0; ks < kBK / 16; ++ks) {
        uint32_t a[4][4], b[4][2];
#pragma unroll
        for (int mi = 0; mi < 4; ++mi) {
          ldmatrix_x4(a[mi], sE + (wm * 64 + mi * 16 + (ln & 15)) * kLdK + ks * 16 + (ln >> 4) * 8);
        }
#pragma unroll
        for (int p = 0; p < 2; ++p) {
          uint32_t t[4];
          ldmatrix_x4(t, sC + (wn * 32 + p * 16 + (ln >> 4) * 8 + (ln & 7)) * kLdK + ks * 16 + ((ln >> 3) & 1) * 8);
          b[2 * p][0] = t[0];
          b[2 * p][1] = t[1];
          b[2 * p + 1][0] = t[2];
          b[2 * p + 1][1] = t[3];
        }
#pragma unroll
        for (int mi = 0; mi < 4; ++mi)
#pragma unroll
          for (int ni = 0; ni < 4; ++ni)
            mma_m16n8k16<T>(acc[2 * mi][2 * ni], acc[2 * mi][2 * ni + 1], acc[2 * mi + 1][2 * ni],
                        acc[2 * mi + 1][2 * ni + 1], a[mi], b[ni][0], b[ni][1]);
      }
    }
    cp_async_wait<0>();
    __syncthreads();
  }

  /* dE[rows] (+)= G C[cols] * inv_scale and dC[cols] (+)= G^T E[rows] * inv_scale, D in chunks.
   * sG: [kBM][kLdG] gradient block; chunk: smem for one (E, C) D-slice. Acc: float or T. */
  template <typename Acc>
  __device__ static void products(const Operands<T>& op, int64_t row0, const int* cols, const T* sG, T* chunk,
                                  Acc* de, Acc* dc, float inv_scale, bool atomic) {
    const int wm = warp() >> 2, wn = warp() & 3, ln = lane();
    const int g = ln >> 2, q = ln & 3;
    T* sE = chunk;
    T* sC = chunk + kBM * kLdD;
    const bool pair_ok = (op.d % 2 == 0) && ((reinterpret_cast<uintptr_t>(de) | reinterpret_cast<uintptr_t>(dc)) & 3) == 0;
    for (int64_t k0 = 0; k0 < op.d; k0 += kDC) {
      load_slice<kDC>(op, row0, cols, k0, sE, sC, kLdD);
      cp_async_commit();
      cp_async_wait<0>();
      __syncthreads();
      // B fragments of a [k][n] slice: two n8 tiles of the warp's 16 columns per ldmatrix.x4.trans.
      auto load_b = [&](const T* s, int ks, uint32_t (&b)[2][2]) {
        uint32_t t[4];
        ldmatrix_x4_trans(t, s + (ks * 16 + ((ln >> 3) & 1) * 8 + (ln & 7)) * kLdD + wn * 16 + (ln >> 4) * 8);
        b[0][0] = t[0];
        b[0][1] = t[1];
        b[1][0] = t[2];
        b[1][1] = t[3];
      };
      if (de != nullptr) {
        float acc[4][2][4] = {};
#pragma unroll 1
        for (int ks = 0; ks < kBN / 16; ++ks) {
          uint32_t b[2][2];
          load_b(sC, ks, b);
#pragma unroll
          for (int mi = 0; mi < 4; ++mi) {
            uint32_t a[4];
            ldmatrix_x4(a, sG + (wm * 64 + mi * 16 + (ln & 15)) * kLdG + ks * 16 + (ln >> 4) * 8);
#pragma unroll
            for (int ni = 0; ni < 2; ++ni)
              mma_m16n8k16<T>(acc[mi][ni][0], acc[mi][ni][1], acc[mi][ni][2], acc[mi][ni][3], a, b[ni][0], b[ni][1]);
          }
        }
#pragma unroll
        for (int mi = 0; mi < 4; ++mi)
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int64_t row = row0 + wm * 64 + mi * 16 + h * 8 + g;
            if (row >= op.n) continue;
#pragma unroll
            for (int ni = 0; ni < 2; ++ni) {
              const int64_t k = k0 + wn * 16 + ni * 8 + 2 * q;
              if (k >= op.d) continue;
              accumulate2(de + row * op.d + k, acc[mi][ni][2 * h] * inv_scale, acc[mi][ni][2 * h + 1] * inv_scale,
                          k + 1 < op.d, atomic, pair_ok);
            }
          }
      }
      if (dc != nullptr) {
        float acc[4][2][4] = {};
#pragma unroll 1
        for (int ks = 0; ks < kBM / 16; ++ks) {
          uint32_t b[2][2];
          load_b(sE, ks, b);
#pragma unroll
          for (int mi = 0; mi < 4; ++mi) {
            // A = G^T: G is stored [row = k][col = m], so the transposing load yields row-major A.
            uint32_t a[4];
            ldmatrix_x4_trans(a, sG + (ks * 16 + (ln >> 4) * 8 + (ln & 7)) * kLdG + wm * 64 + mi * 16 +
                                     ((ln >> 3) & 1) * 8);
#pragma unroll
            for (int ni = 0; ni < 2; ++ni)
              mma_m16n8k16<T>(acc[mi][ni][0], acc[mi][ni][1], acc[mi][ni][2], acc[mi][ni][3], a, b[ni][0], b[ni][1]);
          }
        }
#pragma unroll
        for (int mi = 0; mi < 4; ++mi)
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int col = cols[wm * 64 + mi * 16 + h * 8 + g];
            if (col < 0) continue;
#pragma unroll
            for (int ni = 0; ni < 2; ++ni) {
              const int64_t k = k0 + wn * 16 + ni * 8 + 2 * q;
              if (k >= op.d) continue;
              accumulate2(dc + static_cast<int64_t>(col) * op.d + k, acc[mi][ni][2 * h] * inv_scale,
                          acc[mi][ni][2 * h + 1] * inv_scale, k + 1 < op.d, atomic, pair_ok);
            }
          }
      }
      __syncthreads();  // the next slice overwrites sE / sC
    }
  }
};

/* ---------------------------------------------------------------------------------------------
 * SimtTile: exact fp32 tile for F32 operands
 * ------------------------------------------------------------------------------------------- */
struct SimtTile {
  static constexpr int kBM = 64, kBN = 64, kBK = 16;
  static constexpr int kR = 4, kC = 4;
  static constexpr int kColSlots = 16, kRowSlots = 16;
  static constexpr int kLdK = kBK + 1;  // odd stride: the 16 threads of a row read distinct banks
  static constexpr int kStageElems = (kBM + kBN) * kLdK;
  static constexpr int kDC = 32;
  static constexpr int kLdD = kDC + 1;
  static constexpr int kLdG = kBN + 1;
  using GradElem = float;

  __device__ static int ty() { return static_cast<int>(threadIdx.x) >> 4; }
  __device__ static int tx() { return static_cast<int>(threadIdx.x) & 15; }
  // Interleaved ownership (stride 16) keeps shared-memory reads conflict-free.
  __device__ static int row_of(int r) { return ty() + 16 * r; }
  __device__ static int col_of(int c) { return tx() + 16 * c; }
  __device__ static int col_slot() { return tx(); }
  __device__ static int row_slot() { return ty(); }

  __host__ __device__ static constexpr size_t stage_bytes(int) { return static_cast<size_t>(kStageElems) * sizeof(float); }
  __host__ __device__ static constexpr size_t chunk_bytes() { return static_cast<size_t>(kBM + kBN) * kLdD * sizeof(float); }
  __host__ __device__ static constexpr size_t grad_bytes() { return static_cast<size_t>(kBM) * kLdG * sizeof(float); }

  template <int kWidth>
  __device__ static void load_slice(const Operands<float>& op, int64_t row0, const int* cols, int64_t k0, float* sE,
                                    float* sC, int ld) {
    for (int idx = threadIdx.x; idx < kBM * kWidth; idx += kThreads) {
      const int r = idx / kWidth, kk = idx % kWidth;
      const int64_t k = k0 + kk, row = row0 + r;
      sE[r * ld + kk] = (row < op.n && k < op.d) ? op.e[row * op.d + k] : 0.0f;
    }
    for (int idx = threadIdx.x; idx < kBN * kWidth; idx += kThreads) {
      const int j = idx / kWidth, kk = idx % kWidth;
      const int64_t k = k0 + kk;
      const int col = cols[j];
      sC[j * ld + kk] = (col >= 0 && k < op.d) ? op.c[static_cast<int64_t>(col) * op.d + k] : 0.0f;
    }
  }

  template <int kStages>
  __device__ static void logits(const Operands<float>& op, int64_t row0, const int* cols, float* stage,
                                float (&acc)[kR][kC]) {
#pragma unroll
    for (int r = 0; r < kR; ++r)
#pragma unroll
      for (int c = 0; c < kC; ++c) acc[r][c] = 0.0f;
    float* sE = stage;
    float* sC = stage + kBM * kLdK;
    for (int64_t k0 = 0; k0 < op.d; k0 += kBK) {
      __syncthreads();  // previous slice consumed
      load_slice<kBK>(op, row0, cols, k0, sE, sC, kLdK);
      __syncthreads();
#pragma unroll
      for (int k = 0; k < kBK; ++k) {
        float a[kR], b[kC];
#pragma unroll
        for (int r = 0; r < kR; ++r) a[r] = sE[row_of(r) * kLdK + k];
#pragma unroll
        for (int c = 0; c < kC; ++c) b[c] = sC[col_of(c) * kLdK + k];
#pragma unroll
        for (int r = 0; r < kR; ++r)
#pragma unroll
          for (int c = 0; c < kC; ++c) acc[r][c] = fmaf(a[r], b[c], acc[r][c]);
      }
    }
    __syncthreads();
  }

  template <typename Acc>
  __device__ static void products(const Operands<float>& op, int64_t row0, const int* cols, const float* sG,
                                  float* chunk, Acc* de, Acc* dc, float inv_scale, bool atomic) {
    float* sE = chunk;
    float* sC = chunk + kBM * kLdD;
    for (int64_t k0 = 0; k0 < op.d; k0 += kDC) {
      load_slice<kDC>(op, row0, cols, k0, sE, sC, kLdD);
      __syncthreads();
      if (de != nullptr) {  // dE[row] += sum_j G[row][j] C[j]
        float acc[kR][2] = {};
        for (int j = 0; j < kBN; ++j) {
          const float b0 = sC[j * kLdD + tx()], b1 = sC[j * kLdD + tx() + 16];
#pragma unroll
          for (int r = 0; r < kR; ++r) {
            const float a = sG[row_of(r) * kLdG + j];
            acc[r][0] = fmaf(a, b0, acc[r][0]);
            acc[r][1] = fmaf(a, b1, acc[r][1]);
          }
        }
#pragma unroll
        for (int r = 0; r < kR; ++r) {
          const int64_t row = row0 + row_of(r);
          if (row >= op.n) continue;
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int64_t k = k0 + tx() + 16 * h;
            if (k < op.d) accumulate2(de + row * op.d + k, acc[r][h] * inv_scale, 0.0f, false, atomic, false);
          }
        }
      }
      if (dc != nullptr) {  // dC[col] += sum_i G[i][col] E[i]
        float acc[kC][2] = {};
        for (int i = 0; i < kBM; ++i) {
          const float b0 = sE[i * kLdD + tx()], b1 = sE[i * kLdD + tx() + 16];
#pragma unroll
          for (int c = 0; c < kC; ++c) {
            const float a = sG[i * kLdG + ty() + 16 * c];
            acc[c][0] = fmaf(a, b0, acc[c][0]);
            acc[c][1] = fmaf(a, b1, acc[c][1]);
          }
        }
#pragma unroll
        for (int c = 0; c < kC; ++c) {
          const int col = cols[ty() + 16 * c];
          if (col < 0) continue;
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int64_t k = k0 + tx() + 16 * h;
            if (k < op.d) {
              accumulate2(dc + static_cast<int64_t>(col) * op.d + k, acc[c][h] * inv_scale, 0.0f, false, atomic,
                          false);
            }
          }
        }
      }
      __syncthreads();
    }
  }
};

template <typename T>
struct TileFor {
  using type = MmaTile<T>;
};
template <>
struct TileFor<float> {
  using type = SimtTile;
};

/* ---------------------------------------------------------------------------------------------
 * Kernel parameter blocks and host-side launchers (defined in cce_forward.cu / cce_backward.cu)
 * ------------------------------------------------------------------------------------------- */

struct FwdTileParams {
  const void* e;     // [n, d] dtype
  const void* c;     // [v, d] dtype
  const void* bias;  // [v] dtype or null
  TargetView tv;
  int64_t d;
  float softcap;
  bool vec16;
  int row_blocks, vocab_blocks, splits;
  float4* partial;   // [splits, n]: (max, sum exp, target logit, sum of logits) of the split's columns
};

enum class BwdMode : int {
  kAllTiles = 0,  // one tile per CTA, atomics (fast, not bitwise reproducible)
  kRowOwner = 1,  // CTA owns a row block, walks every vocab block: dE only, plain adds
  kColOwner = 2,  // CTA owns a vocab block, walks every row block: dC and dbias, plain adds
};

struct BwdTileParams {
  const void* e;       // [n, d] dtype
  const void* c;       // [v, d] dtype
  const void* bias;    // [v] dtype or null
  const RowCoef* rows; // [n]
  const int32_t* perm; // [v] column visiting order (sorted vocabulary) or null for 0..v-1
  int64_t n, d, v;
  float softcap;
  bool filter;         // gradient filtering on
  bool vec16;
  int row_blocks, vocab_blocks;
  BwdMode mode;
  void* de;            // [n, d] accumulator (Acc) or null
  void* dc;            // [v, d] accumulator (Acc) or null
  float* dbias;        // [v] fp32 accumulator or null
  unsigned long long* counters;  // [2]: tiles visited, tiles skipped (counted where count_tiles)
  bool count_tiles;
};

/* dtype codes follow llmk_dtype. acc_is_f32: the de/dc accumulators are float (else dtype). */
cudaError_t launch_forward_tiles(int64_t dtype, const FwdTileParams& p, cudaStream_t st);
cudaError_t launch_backward_tiles(int64_t dtype, bool acc_is_f32, const BwdTileParams& p, cudaStream_t st);
/* Tile sizes of the dtype's tile (rows of E per block, columns of C per block). */
int tile_rows(int64_t dtype);
int tile_cols(int64_t dtype);

}  // namespace cce
}  // namespace llmk
#endif
