/* Kernels that exist once per CPU variant. Declared for every variant namespace; the
 * dispatcher (cpu/isa_dispatch.cpp) picks one table at load time. */
#ifndef LLMK_ISA_KERNELS_H
#define LLMK_ISA_KERNELS_H

#include <cstdint>

#define LLMK_DECLARE_ISA_KERNELS(ns)                                 \
  namespace llmk {                                                   \
  namespace ns {                                                     \
  void f32_to_f16(const float* src, uint16_t* dst, int64_t n);       \
  void f16_to_f32(const uint16_t* src, float* dst, int64_t n);       \
  void f32_to_bf16(const float* src, uint16_t* dst, int64_t n);      \
  void bf16_to_f32(const uint16_t* src, float* dst, int64_t n);      \
  void copy_row_streaming(const unsigned char* src, unsigned char* dst, int64_t bytes); \
  void store_fence();                                                \
  }                                                                  \
  }

LLMK_DECLARE_ISA_KERNELS(x86_64)
LLMK_DECLARE_ISA_KERNELS(avx2)
LLMK_DECLARE_ISA_KERNELS(avx512)

namespace llmk {
/* One variant's kernels; fields mirror LLMK_DECLARE_ISA_KERNELS. */
struct IsaKernels {
  const char* name;
  void (*f32_to_f16)(const float*, uint16_t*, int64_t);
  void (*f16_to_f32)(const uint16_t*, float*, int64_t);
  void (*f32_to_bf16)(const float*, uint16_t*, int64_t);
  void (*bf16_to_f32)(const uint16_t*, float*, int64_t);
  /* Copy with non-temporal stores (whole vectors where dst is aligned); follow with store_fence. */
  void (*copy_row_streaming)(const unsigned char*, unsigned char*, int64_t);
  void (*store_fence)();
};
/* The variant in use (chosen at load time, changeable by llmk_cpu_set_variant). */
const IsaKernels& isa();
}  // namespace llmk
#endif
