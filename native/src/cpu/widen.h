/* F16/BF16 operands are widened to fp32 once per tile by the CPU kernels that compute in fp32
 * (attention, KV scoring, decode attention). */
#ifndef LLMK_CPU_WIDEN_H
#define LLMK_CPU_WIDEN_H

#include <cstdint>

#include "cpu/isa/isa_kernels.h"
#include "llmk/llmk.h"

namespace llmk {

/* n elements of dtype at src as fp32: src itself for F32, else widened into buf. */
inline const float* widen(const void* src, int64_t dtype, int64_t n, float* buf) {
  if (dtype == LLMK_F32) return static_cast<const float*>(src);
  const auto* h = static_cast<const uint16_t*>(src);
  if (dtype == LLMK_BF16) isa().bf16_to_f32(h, buf, n); else isa().f16_to_f32(h, buf, n);
  return buf;
}

/* n fp32 values into dst of dtype (F32 copy, or rounded to F16/BF16). */
inline void narrow(const float* src, int64_t dtype, int64_t n, void* dst) {
  if (dtype == LLMK_F32) {
    float* d = static_cast<float*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = src[i];
  } else if (dtype == LLMK_BF16) {
    isa().f32_to_bf16(src, static_cast<uint16_t*>(dst), n);
  } else {
    isa().f32_to_f16(src, static_cast<uint16_t*>(dst), n);
  }
}

}  // namespace llmk
#endif
