/* Conversion loops, compiled once per instruction-set variant (see cmake/LlmkIsa.cmake):
 * LLMK_ISA_NS names the variant's namespace so the copies never collide at link time.
 * Only our own inline code is used here; the build checks these objects export no weak
 * (COMDAT) symbols outside llmk::<variant>, which could otherwise leak AVX-512 code into
 * the baseline path. */
#include <cstdint>

#include "cpu/isa/isa_kernels.h"
#include "llmk/half_bits.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace llmk {
namespace LLMK_ISA_NS {

void f32_to_f16(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
#if defined(__F16C__)
  // F16C rounds to nearest even (imm 0) and quiets NaNs exactly as f32_to_f16_bits does.
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(src + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
#endif
  for (; i < n; ++i) dst[i] = f32_to_f16_bits(src[i]);
}

void f16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
#endif
  for (; i < n; ++i) dst[i] = f16_bits_to_f32(src[i]);
}

void f32_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  // Branch-free integer form so the compiler vectorises it for the variant's vector width.
  const uint32_t* s = reinterpret_cast<const uint32_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t x = s[i];
    const uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (x >> 16) | 0x0040u;
    dst[i] = static_cast<uint16_t>((x & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
  }
}

void bf16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  uint32_t* d = reinterpret_cast<uint32_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t x = static_cast<uint32_t>(src[i]) << 16;
    d[i] = (x & 0x7fffffffu) > 0x7f800000u ? (x | 0x00400000u) : x;
  }
}

}  // namespace LLMK_ISA_NS
}  // namespace llmk
