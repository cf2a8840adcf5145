/* Forward logit tiles of the cut cross-entropy.
 *
 * Grid (row_blocks, splits): the CTA at (rb, s) owns rows [rb * BM, rb * BM + BM) and walks the
 * vocabulary blocks s, s + splits, s + 2 * splits, ... in order. Each thread keeps, for each row
 * it owns, an online log-sum-exp state (running max m and sum of exp(z - m)) plus the target logit
 * and the sum of logits over its own columns, in registers, for the whole walk. Only at the end
 * are the 16 threads sharing a row combined (in shared memory, fixed order) into one float4 per
 * (split, row). No atomics anywhere: the result is bitwise reproducible and the state is O(n)
 * per split. cce.cu merges the splits in split order. */
#include "cce_common.cuh"
#include "launch.cuh"

namespace llmk {
namespace cce {
namespace {

constexpr int kFwdStagesMma = 3;

template <typename T>
__device__ __forceinline__ float load_bias(const void* bias, int col) {
  return (bias != nullptr && col >= 0) ? to_f32(static_cast<const T*>(bias)[col]) : 0.0f;
}

template <typename T, int kStages>
__host__ __device__ constexpr size_t fwd_smem_bytes() {
  using TL = typename TileFor<T>::type;
  const size_t tiles = TL::stage_bytes(kStages);
  const size_t red = static_cast<size_t>(TL::kBM) * TL::kColSlots * sizeof(float4);
  return (tiles > red ? tiles : red) + TL::kBN * (sizeof(int) + sizeof(float));
}

template <typename T>
__host__ __device__ constexpr int fwd_stages() {
  return std::is_same<T, float>::value ? 1 : kFwdStagesMma;
}

template <typename T>
__global__ void __launch_bounds__(kThreads, 1) forward_tiles_kernel(FwdTileParams p) {
  using TL = typename TileFor<T>::type;
  constexpr int kStages = fwd_stages<T>();
  constexpr int kR = TL::kR, kC = TL::kC;
  unsigned char* smem = llmk::dynamic_smem<unsigned char>();
  T* stages = reinterpret_cast<T*>(smem);
  float4* red = reinterpret_cast<float4*>(smem);  // reused after the walk: [BM][kColSlots]
  constexpr size_t kMain = fwd_smem_bytes<T, kStages>() - TL::kBN * (sizeof(int) + sizeof(float));
  int* s_cols = reinterpret_cast<int*>(smem + kMain);    // [BN] column of C, or -1 past v
  float* s_bias = reinterpret_cast<float*>(s_cols + TL::kBN);  // [BN]

  const Operands<T> op{static_cast<const T*>(p.e), static_cast<const T*>(p.c), p.tv.n, p.d, p.vec16};
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * TL::kBM;
  const int split = static_cast<int>(blockIdx.y);

  float m[kR], s[kR], zt[kR], zs[kR];
  int tgt[kR];
#pragma unroll
  for (int r = 0; r < kR; ++r) {
    tgt[r] = p.tv.local_target(row0 + TL::row_of(r));
    m[r] = -INFINITY;
    s[r] = 0.0f;
    zt[r] = 0.0f;
    zs[r] = 0.0f;
  }

  for (int vb = split; vb < p.vocab_blocks; vb += p.splits) {
    const int64_t col0 = static_cast<int64_t>(vb) * TL::kBN;
    __syncthreads();  // the previous block's s_cols / s_bias are no longer read
    for (int j = threadIdx.x; j < TL::kBN; j += kThreads) {
      const int col = col0 + j < p.tv.v ? static_cast<int>(col0 + j) : -1;
      s_cols[j] = col;
      s_bias[j] = load_bias<T>(p.bias, col);
    }
    __syncthreads();
    float acc[kR][kC];
    TL::template logits<kStages>(op, row0, s_cols, stages, acc);

#pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int j = TL::col_of(c);
      const int col = s_cols[j];
      const float b = s_bias[j];
#pragma unroll
      for (int r = 0; r < kR; ++r) {
        const float z = softcap_or_identity(acc[r][c] + b, p.softcap);
        acc[r][c] = col >= 0 ? z : -INFINITY;
        if (col >= 0) zs[r] += z;
        if (col >= 0 && col == tgt[r]) zt[r] = z;
      }
    }
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      float tile_max = -INFINITY;
#pragma unroll
      for (int c = 0; c < kC; ++c) tile_max = fmaxf(tile_max, acc[r][c]);
      if (tile_max == -INFINITY) continue;  // no valid column of this thread in the block
      const float new_m = fmaxf(m[r], tile_max);
      float sum = s[r] * __expf(m[r] - new_m);
#pragma unroll
      for (int c = 0; c < kC; ++c) sum += __expf(acc[r][c] - new_m);
      m[r] = new_m;
      s[r] = sum;
    }
  }

  // Combine the kColSlots threads of each row in slot order (deterministic).
  __syncthreads();
#pragma unroll
  for (int r = 0; r < kR; ++r) red[TL::row_of(r) * TL::kColSlots + TL::col_slot()] = make_float4(m[r], s[r], zt[r], zs[r]);
  __syncthreads();
  for (int r = threadIdx.x; r < TL::kBM; r += kThreads) {
    const int64_t row = row0 + r;
    if (row >= p.tv.n) continue;
    float mm = -INFINITY;
    for (int k = 0; k < TL::kColSlots; ++k) mm = fmaxf(mm, red[r * TL::kColSlots + k].x);
    float ss = 0.0f, tt = 0.0f, sl = 0.0f;
    for (int k = 0; k < TL::kColSlots; ++k) {
      const float4 x = red[r * TL::kColSlots + k];
      if (x.x != -INFINITY) ss += x.y * __expf(x.x - mm);
      tt += x.z;
      sl += x.w;
    }
    p.partial[static_cast<int64_t>(split) * p.tv.n + row] = make_float4(mm, ss, tt, sl);
  }
}

template <typename T>
cudaError_t launch_typed(const FwdTileParams& p, cudaStream_t st) {
  constexpr int kStages = fwd_stages<T>();
  constexpr size_t smem = fwd_smem_bytes<T, kStages>();
  cudaError_t err = cudaFuncSetAttribute(forward_tiles_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
  if (err != cudaSuccess) return err;
  const dim3 grid(static_cast<unsigned>(p.row_blocks), static_cast<unsigned>(p.splits));
  llmk::launch(forward_tiles_kernel<T>, grid, kThreads, smem, st, p);
  return cudaGetLastError();
}

}  // namespace

int tile_rows(int64_t dtype) { return dtype == LLMK_F32 ? SimtTile::kBM : MmaTile<__half>::kBM; }
int tile_cols(int64_t dtype) { return dtype == LLMK_F32 ? SimtTile::kBN : MmaTile<__half>::kBN; }

cudaError_t launch_forward_tiles(int64_t dtype, const FwdTileParams& p, cudaStream_t st) {
  switch (dtype) {
    case LLMK_F32: return launch_typed<float>(p, st);
    case LLMK_F16: return launch_typed<__half>(p, st);
    default: return launch_typed<__nv_bfloat16>(p, st);
  }
}

}  // namespace cce
}  // namespace llmk
