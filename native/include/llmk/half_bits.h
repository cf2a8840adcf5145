/* F16/BF16 <-> F32 by bit manipulation, round to nearest even, host+device.
 * The Java class io.github.llmkernels.tensor.HalfFloats implements the same rules; the two are
 * compared over all 65536 half patterns and every rounding boundary in the tests.
 * NaN rule (matches x86 F16C hardware): the result is a quiet NaN with the same sign and the
 * payload truncated (F32 -> 16-bit) or shifted (16-bit -> F32). */
#ifndef LLMK_HALF_BITS_H
#define LLMK_HALF_BITS_H

#include <stdint.h>
#include <string.h>
#include "llmk/host_device.h"

namespace llmk {

LLMK_HD uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
LLMK_HD float f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

LLMK_HD uint16_t f32_to_f16_bits(float f) {
  const uint32_t x = f32_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: rounds to inf
  if (a < 0x38800000u) {
    // Below 2^-14 the result is subnormal: adding 0.5f aligns the value so that the FPU's own
    // round-to-nearest-even lands on the half subnormal grid (ulp 2^-24 in both).
    const float t = f32_from_bits(a) + 0.5f;
    return static_cast<uint16_t>(sign | (f32_bits(t) - 0x3f000000u));
  }
  const uint32_t odd = (a >> 13) & 1u;
  a += 0xc8000fffu + odd;  // rebias exponent 127 -> 15 and round half to even
  return static_cast<uint16_t>(sign | (a >> 13));
}

LLMK_HD float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  const uint32_t m = h & 0x3ffu;
  if (e == 0x1fu) return f32_from_bits(sign | 0x7f800000u | (m << 13) | (m ? 0x00400000u : 0u));
  if (e == 0) return f32_from_bits(sign | f32_bits(static_cast<float>(m) * 5.9604644775390625e-8f));
  return f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

LLMK_HD uint16_t f32_to_bf16_bits(float f) {
  const uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

LLMK_HD float bf16_bits_to_f32(uint16_t b) {
  uint32_t x = static_cast<uint32_t>(b) << 16;
  if ((x & 0x7fffffffu) > 0x7f800000u) x |= 0x00400000u;
  return f32_from_bits(x);
}

}  // namespace llmk
#endif
