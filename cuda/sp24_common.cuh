/* Shared pieces of the CUDA 2:4 kernels: 16-bit element conversions (stores round with the bit
 * rules of llmk/half_bits.h, as the CPU does), the activations (the CPU formulas), and the
 * element type of each dtype for bit copies. */
#ifndef LLMK_SP24_COMMON_CUH
#define LLMK_SP24_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda_check.cuh"
#include "llmk/half_bits.h"
#include "llmk/llmk.h"

namespace llmk {
namespace sp24 {

/* Exact widening of a F16 / BF16 element. */
template <int DT>
__device__ __forceinline__ float widen(uint16_t b) {
  if constexpr (DT == LLMK_BF16) {
    return __uint_as_float(static_cast<uint32_t>(b) << 16);
  } else {
    return __half2float(__ushort_as_half(b));
  }
}

/* Round to nearest even, the CPU's rule (llmk/half_bits.h). */
template <int DT>
__device__ __forceinline__ uint16_t narrow(float x) {
  if constexpr (DT == LLMK_BF16) {
    return f32_to_bf16_bits(x);
  } else {
    return f32_to_f16_bits(x);
  }
}

/* The CPU's activation formulas (native/src/cpu/sp24_matmul.cpp). */
__device__ __forceinline__ float activate(float v, int act) {
  switch (act) {
    case LLMK_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case LLMK_ACT_SILU: return v / (1.0f + expf(-v));
    case LLMK_ACT_GELU: {
      const float c = 0.7978845608028654f;  // sqrt(2 / pi)
      return 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
    }
    default: return v;
  }
}

}  // namespace sp24
}  // namespace llmk
#endif
