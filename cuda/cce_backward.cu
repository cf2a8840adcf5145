/* Backward logit tiles of the cut cross-entropy.
 *
 * A tile recomputes its logits, forms the gradient block g (cce_math.h) in registers, votes on
 * the filter (skipped when every |g_ij| < eps * scale_i), and if kept stores g in shared memory
 * and multiplies it into dE, dC (tensor cores for F16/BF16) and dbias.
 *
 * Work distribution (BwdMode):
 *   kAllTiles  one tile per CTA, every output at once, accumulated with atomics;
 *   kRowOwner  a CTA owns a row block and walks the vocab blocks in order: dE with plain adds;
 *   kColOwner  a CTA owns a vocab block and walks the row blocks in order: dC, dbias, plain adds.
 * The last two together are the deterministic path (two recomputations, no float atomics).
 *
 * The vocabulary is visited through perm (sorted by mean logit when requested), so a vocab block
 * is a set of columns perm[vb * BN .. vb * BN + BN), not a contiguous range. */
#include "cce_common.cuh"
#include "launch.cuh"

namespace llmk {
namespace cce {
namespace {

constexpr int kBwdStagesMma = 2;

template <typename T>
__host__ __device__ constexpr int bwd_stages() {
  return std::is_same<T, float>::value ? 1 : kBwdStagesMma;
}

/* Shared-memory carve-up of one backward CTA. */
template <typename T>
struct BwdSmem {
  using TL = typename TileFor<T>::type;
  static constexpr size_t kScratch = static_cast<size_t>(TL::kRowSlots) * TL::kBN * sizeof(float);
  static constexpr size_t kStageArea0 = TL::stage_bytes(bwd_stages<T>());
  static constexpr size_t kStageArea1 = kStageArea0 > TL::chunk_bytes() ? kStageArea0 : TL::chunk_bytes();
  static constexpr size_t kStageArea = kStageArea1 > kScratch ? kStageArea1 : kScratch;  // tiles / slices / dbias
  static constexpr size_t kGrad = kStageArea;                                         // offset of G
  static constexpr size_t kRows = kGrad + TL::grad_bytes();                            // RowCoef[BM]
  static constexpr size_t kCols = kRows + TL::kBM * sizeof(RowCoef);                   // int[BN]
  static constexpr size_t kBias = kCols + TL::kBN * sizeof(int);                       // float[BN]
  static constexpr size_t kMisc = kBias + TL::kBN * sizeof(float);                     // max |g| bits
  static constexpr size_t kTotal = kMisc + 16;
};

/* Scale that brings a tile's largest |g| near 1 before it is rounded to F16 (whose range would
 * flush the small gradients of a MEAN over many tokens to zero). A power of two: exact. */
__device__ __forceinline__ float f16_tile_scale(float max_abs) {
  if (!(max_abs > 0.0f) || !isfinite(max_abs)) return 1.0f;
  int exp2 = 0;
  frexpf(max_abs, &exp2);  // max_abs = f * 2^exp2, f in [0.5, 1)
  return ldexpf(1.0f, -exp2);
}

template <typename T, typename Acc>
struct TileWorker {
  using TL = typename TileFor<T>::type;
  using S = BwdSmem<T>;
  static constexpr int kR = TL::kR, kC = TL::kC;

  const BwdTileParams& p;
  Operands<T> op;
  unsigned char* smem;
  unsigned long long visited = 0, skipped = 0;

  __device__ RowCoef* rows() const { return reinterpret_cast<RowCoef*>(smem + S::kRows); }
  __device__ int* cols() const { return reinterpret_cast<int*>(smem + S::kCols); }
  __device__ float* bias() const { return reinterpret_cast<float*>(smem + S::kBias); }

  /* Loads the tile's row coefficients and columns; returns whether any row has a target. */
  __device__ bool load_tile_info(int64_t row0, int64_t pos0) {
    __syncthreads();  // the previous tile is done with these arrays
    int any = 0;
    for (int r = threadIdx.x; r < TL::kBM; r += kThreads) {
      RowCoef rc{0.0f, 0.0f, 0.0f, 0.0f, 0.0f, kIgnoredRow};
      if (row0 + r < p.n) rc = p.rows[row0 + r];
      rows()[r] = rc;
      any |= rc.tgt != kIgnoredRow;
    }
    for (int j = threadIdx.x; j < TL::kBN; j += kThreads) {
      const int64_t pos = pos0 + j;
      const int col = pos < p.v ? (p.perm != nullptr ? p.perm[pos] : static_cast<int>(pos)) : -1;
      cols()[j] = col;
      bias()[j] = (p.bias != nullptr && col >= 0) ? to_f32(static_cast<const T*>(p.bias)[col]) : 0.0f;
    }
    return __syncthreads_or(any) != 0;
  }

  /* Turns raw dot products into gradient entries in place; returns whether this thread holds an
   * entry at or above its row's filter threshold. */
  __device__ bool gradient(float (&acc)[kR][kC]) const {
    bool keep = false;
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const RowCoef rc = rows()[TL::row_of(r)];
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        const int j = TL::col_of(c);
        const int col = cols()[j];
        float g = 0.0f;
        if (rc.tgt != kIgnoredRow && col >= 0) {
          const float z = softcap_or_identity(acc[r][c] + bias()[j], p.softcap);
          const float prob = __expf(z - rc.lse);
          // p - 1 at the target is formed in fp32 here, before any rounding to the operand type.
          g = prob * rc.a - (col == rc.tgt ? rc.b : 0.0f);
          if (p.softcap > 0.0f) {
            // -u (1 - t^2): the -u part is applied exactly outside the tiles; the tile keeps +u t^2.
            const float t = z / p.softcap;
            g = (g - rc.u) * (1.0f - t * t) + rc.u;
          }
          keep |= fabsf(g) >= rc.thr;
        }
        acc[r][c] = g;
      }
    }
    return keep;
  }

  /* Largest |g| of the tile (every thread gets it); only F16 needs it. */
  __device__ float tile_max_abs(const float (&acc)[kR][kC]) const {
    float mx = 0.0f;
#pragma unroll
    for (int r = 0; r < kR; ++r)
#pragma unroll
      for (int c = 0; c < kC; ++c) mx = fmaxf(mx, fabsf(acc[r][c]));
    unsigned* slot = reinterpret_cast<unsigned*>(smem + S::kMisc);
    if (threadIdx.x == 0) *slot = 0u;
    __syncthreads();
    // Non-negative floats order like their bit patterns: an integer max is exact and order-free.
    atomicMax(slot, __float_as_uint(mx));
    __syncthreads();
    return __uint_as_float(*slot);
  }

  /* dbias[col] (+)= sum over the tile's rows of g, summed in fixed row-slot order. */
  __device__ void bias_grad(const float (&acc)[kR][kC], bool atomic) const {
    float* scratch = reinterpret_cast<float*>(smem);  // [kRowSlots][BN], stage area is free now
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      float sum = 0.0f;
#pragma unroll
      for (int r = 0; r < kR; ++r) sum += acc[r][c];
      scratch[TL::row_slot() * TL::kBN + TL::col_of(c)] = sum;
    }
    __syncthreads();
    for (int j = threadIdx.x; j < TL::kBN; j += kThreads) {
      const int col = cols()[j];
      if (col < 0) continue;
      float sum = 0.0f;
      for (int k = 0; k < TL::kRowSlots; ++k) sum += scratch[k * TL::kBN + j];
      if (atomic) {
        atomicAdd(p.dbias + col, sum);
      } else {
        p.dbias[col] += sum;
      }
    }
    __syncthreads();  // scratch is the stage area the products reuse
  }

  __device__ void process(int rb, int vb) {
    const int64_t row0 = static_cast<int64_t>(rb) * TL::kBM;
    const int64_t pos0 = static_cast<int64_t>(vb) * TL::kBN;
    ++visited;
    if (!load_tile_info(row0, pos0)) {
      skipped += p.filter ? 1 : 0;  // no row with a target: nothing to add (vacuously filtered)
      return;
    }
    float acc[kR][kC];
    TL::template logits<bwd_stages<T>()>(op, row0, cols(), reinterpret_cast<T*>(smem), acc);
    const bool keep = gradient(acc);
    if (p.filter && __syncthreads_or(keep) == 0) {
      ++skipped;
      return;
    }
    float scale = 1.0f;
    if (std::is_same<T, __half>::value) scale = f16_tile_scale(tile_max_abs(acc));
    using G = typename TL::GradElem;
    G* sG = reinterpret_cast<G*>(smem + S::kGrad);
#pragma unroll
    for (int r = 0; r < kR; ++r)
#pragma unroll
      for (int c = 0; c < kC; ++c) sG[TL::row_of(r) * TL::kLdG + TL::col_of(c)] = from_f32<G>(acc[r][c] * scale);
    const bool atomic = p.mode == BwdMode::kAllTiles;
    if (p.dbias != nullptr) bias_grad(acc, atomic);  // ends with a barrier
    else __syncthreads();                             // G complete before the products read it
    TL::template products<Acc>(op, row0, cols(), sG, reinterpret_cast<T*>(smem), static_cast<Acc*>(p.de),
                               static_cast<Acc*>(p.dc), 1.0f / scale, atomic);
  }
};

template <typename T, typename Acc>
__global__ void __launch_bounds__(kThreads, 1) backward_tiles_kernel(BwdTileParams p) {
  unsigned char* smem = llmk::dynamic_smem<unsigned char>();
  TileWorker<T, Acc> w{p, Operands<T>{static_cast<const T*>(p.e), static_cast<const T*>(p.c), p.n, p.d, p.vec16},
                       smem};
  // One call site of process() (inlined once) for every mode keeps register pressure down.
  const int steps = p.mode == BwdMode::kAllTiles ? 1 : (p.mode == BwdMode::kRowOwner ? p.vocab_blocks : p.row_blocks);
  for (int it = 0; it < steps; ++it) {
    int rb = 0, vb = 0;
    if (p.mode == BwdMode::kAllTiles) {
      const int64_t tile = blockIdx.x;
      rb = static_cast<int>(tile % p.row_blocks);
      vb = static_cast<int>(tile / p.row_blocks);
    } else if (p.mode == BwdMode::kRowOwner) {
      rb = static_cast<int>(blockIdx.x);
      vb = it;
    } else {
      rb = it;
      vb = static_cast<int>(blockIdx.x);
    }
    w.process(rb, vb);
  }
  if (p.count_tiles && threadIdx.x == 0) {
    atomicAdd(p.counters, w.visited);  // integer atomics: exact in any order
    atomicAdd(p.counters + 1, w.skipped);
  }
}

template <typename T, typename Acc>
cudaError_t launch_typed(const BwdTileParams& p, cudaStream_t st) {
  constexpr size_t smem = BwdSmem<T>::kTotal;
  cudaError_t err = cudaFuncSetAttribute(backward_tiles_kernel<T, Acc>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
  if (err != cudaSuccess) return err;
  int64_t blocks = 0;
  switch (p.mode) {
    case BwdMode::kAllTiles: blocks = static_cast<int64_t>(p.row_blocks) * p.vocab_blocks; break;
    case BwdMode::kRowOwner: blocks = p.row_blocks; break;
    case BwdMode::kColOwner: blocks = p.vocab_blocks; break;
  }
  if (blocks > 0x7fffffff) return cudaErrorInvalidConfiguration;
  llmk::launch(backward_tiles_kernel<T, Acc>, static_cast<unsigned>(blocks), kThreads, smem, st, p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_backward_tiles(int64_t dtype, bool acc_is_f32, const BwdTileParams& p, cudaStream_t st) {
  switch (dtype) {
    case LLMK_F32: return launch_typed<float, float>(p, st);
    case LLMK_F16: return acc_is_f32 ? launch_typed<__half, float>(p, st) : launch_typed<__half, __half>(p, st);
    default:
      return acc_is_f32 ? launch_typed<__nv_bfloat16, float>(p, st)
                        : launch_typed<__nv_bfloat16, __nv_bfloat16>(p, st);
  }
}

}  // namespace cce
}  // namespace llmk
