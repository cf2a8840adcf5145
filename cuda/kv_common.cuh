/* Shared pieces of the CUDA KV compaction kernels: dtype loads/stores (the bit rules of
 * llmk/half_bits.h, so stores round exactly as the CPU does), a device scratch buffer freed on
 * every path, grid sizing, the verdict helpers, and the dynamic shared-memory opt-in. */
#ifndef LLMK_KV_COMMON_CUH
#define LLMK_KV_COMMON_CUH

#include <cstdint>
#include <string>

#include "cuda_check.cuh"
#include "llmk/half_bits.h"
#include "llmk/llmk.h"

namespace llmk {
namespace kv {

constexpr unsigned long long kClean = ~0ull;  // verdict slot value: nothing found

/* Element i of a F32 (DT 0), F16 (1) or BF16 (2) array, as float (exact widening). */
template <int DT>
__device__ __forceinline__ float load(const void* p, int64_t i) {
  if constexpr (DT == LLMK_F32) {
    return static_cast<const float*>(p)[i];
  } else if constexpr (DT == LLMK_F16) {
    return f16_bits_to_f32(static_cast<const uint16_t*>(p)[i]);
  } else {
    return bf16_bits_to_f32(static_cast<const uint16_t*>(p)[i]);
  }
}

/* Stores x as F32 or as the 16-bit dtype (round to nearest even, the CPU's rule). */
__device__ __forceinline__ void store(void* p, int64_t i, float x, int dtype) {
  if (dtype == LLMK_F32) {
    static_cast<float*>(p)[i] = x;
  } else {
    static_cast<uint16_t*>(p)[i] = dtype == LLMK_F16 ? f32_to_f16_bits(x) : f32_to_bf16_bits(x);
  }
}

__device__ __forceinline__ float warp_max(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float warp_sum(float x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

/* exp(a - b) with exp(-inf - finite) = 0 and no NaN from -inf - -inf (gives 0). */
__device__ __forceinline__ float exp_diff(float a, float b) { return a == -INFINITY ? 0.0f : expf(a - b); }

inline int grid_for(int64_t items, int per_block) {
  const int64_t blocks = (items + per_block - 1) / per_block;
  return static_cast<int>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

/* Device scratch memory on a stream, released (stream-ordered) when the owner leaves scope. */
class Scratch {
 public:
  explicit Scratch(cudaStream_t st) : st_(st) {}
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    if (p_ != nullptr) cudaFreeAsync(p_, st_);
  }
  int32_t alloc(size_t bytes) {
    if (bytes == 0) bytes = 16;
    LLMK_CUDA_TRY(cudaMallocAsync(&p_, bytes, st_));
    return LLMK_OK;
  }
  /* A verdict of `slots` "lowest bad position" words, all set to "none" (~0) on the stream. */
  int32_t alloc_verdict(size_t slots, unsigned long long** verdict) {
    LLMK_TRY_STATUS(alloc(slots * sizeof(unsigned long long)));
    *verdict = as<unsigned long long>();
    LLMK_CUDA_TRY(cudaMemsetAsync(*verdict, 0xff, slots * sizeof(unsigned long long), st_));
    return LLMK_OK;
  }
  /* Frees now and reports a failure of the free (the destructor cannot). */
  int32_t release() {
    void* p = p_;
    p_ = nullptr;
    if (p != nullptr) LLMK_CUDA_TRY(cudaFreeAsync(p, st_));
    return LLMK_OK;
  }
  template <typename T>
  T* as(size_t byte_offset = 0) const {
    return reinterpret_cast<T*>(static_cast<unsigned char*>(p_) + byte_offset);
  }

 private:
  cudaStream_t st_;
  void* p_ = nullptr;
};

/* Largest dynamic shared memory a block may opt into on the current device. */
inline int32_t smem_optin(int* bytes) {
  int dev = 0;
  LLMK_CUDA_TRY(cudaGetDevice(&dev));
  LLMK_CUDA_TRY(cudaDeviceGetAttribute(bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  return LLMK_OK;
}

/* Allows `bytes` of dynamic shared memory for kernel (needed above 48 KiB). */
template <typename K>
int32_t allow_smem(K kernel, size_t bytes) {
  if (bytes > 48 * 1024) {
    LLMK_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  }
  return LLMK_OK;
}

/* Odd row stride (in floats) for a [rows][d] float tile read column-wise by consecutive threads:
 * consecutive rows then fall in distinct banks. */
__host__ __device__ __forceinline__ int64_t odd_stride(int64_t d) { return d | 1; }

}  // namespace kv
}  // namespace llmk
#endif
