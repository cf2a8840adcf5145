/* 2:4 sparse and dense matmul on the GPU: Y [N, M] = act(X [N, K] W^T + bias), F16 / BF16 inputs,
 * fp32 accumulation, stores rounded as the CPU rounds (llmk/half_bits.h).
 *
 * Prefill (N > 16): tensor cores on Y^T = W X^T, W the A operand (its M is the MMA M), X the B
 * operand ("col": X rows are B columns, so both tiles are K-contiguous rows). CTA tile 128 (M) x
 * 128 (N) x 32 (K), 8 warps as 2 (M) x 4 (N), each warp 64 x 32 = 4 x 4 MMA tiles; a 3-stage
 * cp.async pipeline (16-byte chunks, zero-filled outside M, N and K, so ragged tails and
 * K % 32 == 16 need no special step). Sparse: mma.sp::ordered_metadata m16n8k32 (a k32 step is
 * 16 stored values = 32 dense columns per row); dense baseline: mma.sync m16n8k16, two per stage.
 *
 * Metadata: read in the unreordered layout (no reorder pass, no new API). A k32 step of row m is
 * two consecutive uint16 words meta[m][2 kt], meta[m][2 kt + 1] (columns 0-15 and 16-31). Per stage
 * thread r < 128 loads them for row r into one 32-bit shared word (a plain load issued before the
 * stage's MMAs and stored after them, so the latency hides behind the math; K % 32 == 16 pads the
 * missing upper half with code 0b0100 over zero values). The mma.sp fragment (sparsity selector 0:
 * lanes with threadID_in_group 0 and 1 supply it) wants, for lane (group g, t in {0, 1}), bits
 * 0-15 = row g, columns 16t..16t+15 and bits 16-31 = row g + 8, same columns, lowest nibble = lowest
 * group: one __byte_perm of the two rows' shared words. Values keep their layout: a 32-bit word
 * of a stored row = the 2 kept values of one group, exactly the m16n8k16-style A fragment of the
 * compressed 16 x 16 tile.
 *
 * Decode (N <= 16): memory-bound, one pass over W. A block of 8 warps owns 32 rows of W (4 per
 * warp); X is staged as fp32 in shared memory [NB][Kt] (NB = N rounded up to a power of two, rows
 * past N zero; Kt = 8192 / NB columns per tile, a pad word every 32 columns against bank
 * conflicts). Sparse: a lane takes one metadata word (16 columns) per step and its 8 values in one
 * 16-byte load, decodes the 4 nibbles and does 8 x NB FMAs; dense: a lane takes 8 columns (16 bytes)
 * of each of its warp's 4 rows and reuses each X value over those rows. Warp-sum reduction at the
 * end, then the epilogue.
 *
 * Index math is 64-bit; grid: N tiles on x, M tiles on y (M <= 65535 * 128). */
#include <string>
#include <type_traits>

#include "cuda_check.cuh"
#include "kv_common.cuh"
#include "launch.cuh"
#include "ptx.cuh"
#include "sp24_args.h"
#include "sp24_common.cuh"

namespace {

using llmk::sp24::activate;
using llmk::sp24::narrow;
using llmk::sp24::widen;

struct Params {
  const uint16_t* x;     // [N, K]
  const uint16_t* a;     // values [M, K/2] (sparse) or W [M, K] (dense)
  const uint16_t* meta;  // [M, K/16] (sparse)
  const uint16_t* bias;  // [M] or null
  uint16_t* y;           // [N, M]
  int64_t n, m, k;
  int act;
  int aligned;  // x and a 16-byte aligned: cp.async / vector loads
};

template <int DT>
__device__ __forceinline__ void store_out(const Params& p, int64_t n, int64_t m, float v) {
  if (p.bias) v += widen<DT>(p.bias[m]);
  p.y[n * p.m + m] = narrow<DT>(activate(v, p.act));
}

// ---- prefill: tensor-core tiles -------------------------------------------------------------

constexpr int kBM = 128, kBN = 128, kBK = 32, kStages = 3, kThreads = 256;
constexpr int kBW = 20;  // X tile row stride in 32-bit words (16 data + 4 pad: conflict-free fragments)
template <bool Sparse>
struct Tile {
  static constexpr int kAW = Sparse ? 12 : 20;  // A tile row stride in words (8 or 16 data + 4 pad)
  static constexpr int kAStage = kBM * kAW, kBStage = kBN * kBW, kEStage = Sparse ? kBM : 0;
  static constexpr size_t kSmemBytes = size_t(kStages) * (kAStage + kBStage + kEStage) * 4;
};

using llmk::ptx::cp_async16;
using llmk::ptx::cp_async_commit;
using llmk::ptx::cp_async_wait;

/* 8 consecutive 16-bit elements to shared memory (16-byte aligned), zeros when !valid. */
__device__ __forceinline__ void load_chunk(uint32_t* dst, const uint16_t* src, const uint16_t* safe, bool valid,
                                           bool aligned) {
  if (aligned) {
    cp_async16(dst, valid ? src : safe, valid);
  } else {
    uint32_t w[4] = {0u, 0u, 0u, 0u};
    if (valid) {
#pragma unroll
      for (int i = 0; i < 4; ++i) w[i] = static_cast<uint32_t>(src[2 * i]) | (static_cast<uint32_t>(src[2 * i + 1]) << 16);
    }
    *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
  }
}

template <int DT>
using MmaElem = std::conditional_t<DT == LLMK_BF16, __nv_bfloat16, __half>;

template <int DT>
__device__ __forceinline__ void mma_sp(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[4], uint32_t e) {
  llmk::ptx::mma_sp_m16n8k32<MmaElem<DT>>(c, a, b, e);
}

template <int DT>
__device__ __forceinline__ void mma_dense(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  llmk::ptx::mma_m16n8k16<MmaElem<DT>>(c[0], c[1], c[2], c[3], a, b0, b1);
}

template <int DT, bool Sparse>
__global__ void __launch_bounds__(kThreads) mma_gemm(const Params p) {
  using T = Tile<Sparse>;
  uint32_t* smem = llmk::dynamic_smem<uint32_t>();
  uint32_t* sA = smem;
  uint32_t* sB = sA + kStages * T::kAStage;
  uint32_t* sE = sB + kStages * T::kBStage;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wm = warp & 1, wn = warp >> 1;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kBN, m0 = static_cast<int64_t>(blockIdx.y) * kBM;
  const int64_t K = p.k;
  const int64_t ktiles = (K + kBK - 1) / kBK;
  const bool aligned = p.aligned != 0;

  auto load_stage = [&](int64_t kt, int s) {
    const int64_t kb = kt * kBK;
#pragma unroll
    for (int i = 0; i < 2; ++i) {  // X: 128 rows x 4 chunks
      const int c = tid + i * kThreads, r = c >> 2, q = c & 3;
      const int64_t n = n0 + r, col = kb + q * 8;
      const bool valid = n < p.n && col < K;
      load_chunk(sB + s * T::kBStage + r * kBW + q * 4, p.x + (valid ? n * K + col : 0), p.x, valid, aligned);
    }
    if constexpr (Sparse) {  // values: 128 rows x 2 chunks of 8 values
      const int r = tid >> 1, q = tid & 1;
      const int64_t m = m0 + r, col = kb / 2 + q * 8;
      const bool valid = m < p.m && col < K / 2;
      load_chunk(sA + s * T::kAStage + r * T::kAW + q * 4, p.a + (valid ? m * (K / 2) + col : 0), p.a, valid, aligned);
    } else {
#pragma unroll
      for (int i = 0; i < 2; ++i) {  // W: 128 rows x 4 chunks
        const int c = tid + i * kThreads, r = c >> 2, q = c & 3;
        const int64_t m = m0 + r, col = kb + q * 8;
        const bool valid = m < p.m && col < K;
        load_chunk(sA + s * T::kAStage + r * T::kAW + q * 4, p.a + (valid ? m * K + col : 0), p.a, valid, aligned);
      }
    }
  };
  // Metadata of row m0 + tid (tid < kBM) for k32 step kt: columns 0-15 low, 16-31 high.
  auto load_meta = [&](int64_t kt) -> uint32_t {
    const int64_t m = m0 + tid, words = K / 16, w0 = 2 * kt;
    uint32_t lo = 0x4444u, hi = 0x4444u;  // code 0b0100 (positions 0, 1) over zero values
    if (m < p.m) {
      const uint16_t* row = p.meta + m * words;
      lo = row[w0];
      if (w0 + 1 < words) hi = row[w0 + 1];
    }
    return lo | (hi << 16);
  };

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[i][j][c] = 0.0f;

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < ktiles) {
      load_stage(s, s);
      if (Sparse && tid < kBM) sE[s * T::kEStage + tid] = load_meta(s);
    }
    cp_async_commit();
  }

  for (int64_t kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // stage kt landed for everyone; stage kt - 1 is free for the refill below
    const int64_t nk = kt + kStages - 1;
    const int ns = static_cast<int>(nk % kStages), s = static_cast<int>(kt % kStages);
    uint32_t meta_next = 0;
    if (nk < ktiles) {
      load_stage(nk, ns);
      if (Sparse && tid < kBM) meta_next = load_meta(nk);
    }
    cp_async_commit();

    const uint32_t* as = sA + s * T::kAStage;
    const uint32_t* bs = sB + s * T::kBStage;
    if constexpr (Sparse) {
      uint32_t b[4][4];
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const uint32_t* br = bs + (wn * 32 + nt * 8 + g) * kBW + t;
#pragma unroll
        for (int j = 0; j < 4; ++j) b[nt][j] = br[4 * j];  // k = 2t + 8j, 2t + 8j + 1
      }
      const uint32_t* es = sE + s * T::kEStage;
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) {
        const int r = wm * 64 + mt * 16 + g;
        const uint32_t* ar0 = as + r * T::kAW + t;
        const uint32_t* ar1 = ar0 + 8 * T::kAW;
        const uint32_t a[4] = {ar0[0], ar1[0], ar0[4], ar1[4]};
        const uint32_t e = __byte_perm(es[r], es[r + 8], (t & 1) ? 0x7632 : 0x5410);
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) mma_sp<DT>(acc[mt][nt], a, b[nt], e);
      }
    } else {
#pragma unroll
      for (int ks = 0; ks < 2; ++ks) {
        uint32_t b[4][2];
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          const uint32_t* br = bs + (wn * 32 + nt * 8 + g) * kBW + ks * 8 + t;
          b[nt][0] = br[0];
          b[nt][1] = br[4];
        }
#pragma unroll
        for (int mt = 0; mt < 4; ++mt) {
          const uint32_t* ar0 = as + (wm * 64 + mt * 16 + g) * T::kAW + ks * 8 + t;
          const uint32_t* ar1 = ar0 + 8 * T::kAW;
          const uint32_t a[4] = {ar0[0], ar1[0], ar0[4], ar1[4]};
#pragma unroll
          for (int nt = 0; nt < 4; ++nt) mma_dense<DT>(acc[mt][nt], a, b[nt][0], b[nt][1]);
        }
      }
    }
    if (Sparse && nk < ktiles && tid < kBM) sE[ns * T::kEStage + tid] = meta_next;  // read after a later barrier
  }
  cp_async_wait<0>();

#pragma unroll
  for (int mt = 0; mt < 4; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t m = m0 + wm * 64 + mt * 16 + g + h * 8;
      if (m >= p.m) continue;
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int64_t n = n0 + wn * 32 + nt * 8 + 2 * t + j;
          if (n < p.n) store_out<DT>(p, n, m, acc[mt][nt][2 * h + j]);
        }
      }
    }
  }
}

// ---- decode: N <= 16 --------------------------------------------------------------------------

constexpr int kDecWarps = 8, kDecRows = 4, kDecThreads = kDecWarps * 32;
constexpr int kDecSmemFloats = 8192;  // X tile: NB x Kt floats (+ pads)

__device__ __forceinline__ int swz(int c) { return c + (c >> 5); }

/* 8 consecutive 16-bit elements (16 bytes) from global memory. */
__device__ __forceinline__ uint4 load8(const uint16_t* src, bool aligned) {
  if (aligned) return __ldg(reinterpret_cast<const uint4*>(src));
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) w[i] = static_cast<uint32_t>(src[2 * i]) | (static_cast<uint32_t>(src[2 * i + 1]) << 16);
  return make_uint4(w[0], w[1], w[2], w[3]);
}

template <int DT>
__device__ __forceinline__ void unpack8(const uint4& v, float (&f)[8]) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = widen<DT>(static_cast<uint16_t>(w[i] & 0xffffu));
    f[2 * i + 1] = widen<DT>(static_cast<uint16_t>(w[i] >> 16));
  }
}

template <int DT, bool Sparse, int NB>
__global__ void __launch_bounds__(kDecThreads) decode_gemm(const Params p) {
  constexpr int kKt = kDecSmemFloats / NB;  // columns per X tile (a multiple of 512)
  constexpr int kStride = kKt + kKt / 32;
  __shared__ float xs[NB * kStride];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t K = p.k;
  const int64_t mbase = (static_cast<int64_t>(blockIdx.x) * kDecWarps + warp) * kDecRows;
  const bool aligned = p.aligned != 0;

  float acc[kDecRows][NB];
#pragma unroll
  for (int r = 0; r < kDecRows; ++r)
#pragma unroll
    for (int n = 0; n < NB; ++n) acc[r][n] = 0.0f;

  for (int64_t k0 = 0; k0 < K; k0 += kKt) {
    const int cols = static_cast<int>(K - k0 < kKt ? K - k0 : kKt);  // a multiple of 16
    __syncthreads();  // the previous tile is consumed
    for (int i = threadIdx.x; i < NB * cols; i += kDecThreads) {
      const int r = i / cols, c = i - r * cols;
      xs[r * kStride + swz(c)] = r < p.n ? widen<DT>(p.x[r * K + k0 + c]) : 0.0f;
    }
    __syncthreads();
    if constexpr (Sparse) {
      const int words = cols / 16;
      for (int c = lane; c < words; c += 32) {
        uint4 v[kDecRows];
        uint32_t word[kDecRows];
#pragma unroll
        for (int r = 0; r < kDecRows; ++r) {  // issue every load first
          const int64_t m = mbase + r;
          if (m < p.m) {
            v[r] = load8(p.a + m * (K / 2) + k0 / 2 + static_cast<int64_t>(c) * 8, aligned);
            word[r] = p.meta[m * (K / 16) + k0 / 16 + c];
          } else {
            v[r] = make_uint4(0u, 0u, 0u, 0u);
            word[r] = 0x4444u;
          }
        }
#pragma unroll
        for (int r = 0; r < kDecRows; ++r) {
          float f[8];
          unpack8<DT>(v[r], f);
#pragma unroll
          for (int gi = 0; gi < 4; ++gi) {
            const uint32_t code = (word[r] >> (4 * gi)) & 15u;
            const int c0 = swz(c * 16 + 4 * gi + static_cast<int>(code & 3u));
            const int c1 = swz(c * 16 + 4 * gi + static_cast<int>(code >> 2));
#pragma unroll
            for (int n = 0; n < NB; ++n) {
              acc[r][n] = fmaf(f[2 * gi], xs[n * kStride + c0], acc[r][n]);
              acc[r][n] = fmaf(f[2 * gi + 1], xs[n * kStride + c1], acc[r][n]);
            }
          }
        }
      }
    } else {
      const int chunks = cols / 8;
      for (int c = lane; c < chunks; c += 32) {
        float f[kDecRows][8];
#pragma unroll
        for (int r = 0; r < kDecRows; ++r) {
          const int64_t m = mbase + r;
          const uint4 v = m < p.m ? load8(p.a + m * K + k0 + static_cast<int64_t>(c) * 8, aligned) : make_uint4(0u, 0u, 0u, 0u);
          unpack8<DT>(v, f[r]);
        }
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const int cc = swz(c * 8 + e);
#pragma unroll
          for (int n = 0; n < NB; ++n) {
            const float xv = xs[n * kStride + cc];
#pragma unroll
            for (int r = 0; r < kDecRows; ++r) acc[r][n] = fmaf(f[r][e], xv, acc[r][n]);
          }
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kDecRows; ++r) {
    const int64_t m = mbase + r;
#pragma unroll
    for (int n = 0; n < NB; ++n) {
      const float s = llmk::kv::warp_sum(acc[r][n]);
      if (lane == n && m < p.m && n < p.n) store_out<DT>(p, n, m, s);
    }
  }
}

// ---- host ---------------------------------------------------------------------------------------

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; }

template <int DT, bool Sparse, int NB>
int32_t launch_decode(const Params& p, cudaStream_t st) {
  const int64_t rows_per_block = kDecWarps * kDecRows;
  const int64_t blocks = (p.m + rows_per_block - 1) / rows_per_block;
  if (blocks > 0x7fffffffLL) return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "M is too large for the CUDA decode grid");
  llmk::launch(decode_gemm<DT, Sparse, NB>, static_cast<unsigned>(blocks), kDecThreads, 0, st, p);
  LLMK_CUDA_CHECK_LAUNCH("decode_gemm");
  return LLMK_OK;
}

template <int DT, bool Sparse>
int32_t run_typed(const Params& p, cudaStream_t st) {
  if (p.n <= 16) {
    if (p.n <= 1) return launch_decode<DT, Sparse, 1>(p, st);
    if (p.n <= 2) return launch_decode<DT, Sparse, 2>(p, st);
    if (p.n <= 4) return launch_decode<DT, Sparse, 4>(p, st);
    if (p.n <= 8) return launch_decode<DT, Sparse, 8>(p, st);
    return launch_decode<DT, Sparse, 16>(p, st);
  }
  const int64_t gx = (p.n + kBN - 1) / kBN, gy = (p.m + kBM - 1) / kBM;
  if (gx > 0x7fffffffLL || gy > 65535) {
    return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "N or M is too large for the CUDA matmul grid (M <= " +
                                                     std::to_string(65535LL * kBM) + ")");
  }
  const size_t smem = Tile<Sparse>::kSmemBytes;
  LLMK_TRY_STATUS(llmk::kv::allow_smem(mma_gemm<DT, Sparse>, smem));
  llmk::launch(mma_gemm<DT, Sparse>, dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), kThreads, smem, st, p);
  LLMK_CUDA_CHECK_LAUNCH("mma_gemm");
  return LLMK_OK;
}

int32_t run_matmul(const llmk_sp24_matmul_args* args, bool sparse) {
  LLMK_TRY_STATUS(llmk::check_sp24_matmul(args, sparse, true));
  if (args->n == 0 || args->m == 0) return LLMK_OK;
  llmk::DeviceGuard guard;
  LLMK_TRY_STATUS(guard.enter(static_cast<int32_t>(args->device)));
  cudaStream_t st = reinterpret_cast<cudaStream_t>(args->stream);
  Params p{};
  p.x = reinterpret_cast<const uint16_t*>(args->x);
  p.a = reinterpret_cast<const uint16_t*>(sparse ? args->values : args->w);
  p.meta = reinterpret_cast<const uint16_t*>(args->meta);
  p.bias = reinterpret_cast<const uint16_t*>(args->bias);
  p.y = reinterpret_cast<uint16_t*>(args->y);
  p.n = args->n;
  p.m = args->m;
  p.k = args->k;
  p.act = static_cast<int>(args->activation);
  p.aligned = aligned16(p.x) && aligned16(p.a);
  if (args->dtype == LLMK_BF16) return sparse ? run_typed<LLMK_BF16, true>(p, st) : run_typed<LLMK_BF16, false>(p, st);
  return sparse ? run_typed<LLMK_F16, true>(p, st) : run_typed<LLMK_F16, false>(p, st);
}

}  // namespace

extern "C" int32_t llmk_sp24_matmul_cuda(const llmk_sp24_matmul_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t { return run_matmul(args, true); });
}

extern "C" int32_t llmk_dense_matmul_cuda(const llmk_sp24_matmul_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t { return run_matmul(args, false); });
}
