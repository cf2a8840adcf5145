/* F32 / F16 / BF16 tensors as the bytes the C ABI takes, for the native tests (the conversions
 * are the library's own round-to-nearest-even bits, llmk/half_bits.h). */
#ifndef LLMK_TESTS_DTYPE_CODEC_H
#define LLMK_TESTS_DTYPE_CODEC_H

#include <cstdint>
#include <cstring>
#include <vector>

#include "llmk/half_bits.h"
#include "llmk/llmk.h"

inline int64_t elem_bytes(int64_t dtype) { return dtype == LLMK_F32 ? 4 : 2; }

inline std::vector<unsigned char> encode(const std::vector<float>& x, int64_t dtype) {
  std::vector<unsigned char> out(x.size() * elem_bytes(dtype));
  for (size_t i = 0; i < x.size(); ++i) {
    if (dtype == LLMK_F32) {
      std::memcpy(&out[i * 4], &x[i], 4);
    } else {
      const uint16_t h = dtype == LLMK_F16 ? llmk::f32_to_f16_bits(x[i]) : llmk::f32_to_bf16_bits(x[i]);
      std::memcpy(&out[i * 2], &h, 2);
    }
  }
  return out;
}

inline std::vector<float> decode(const std::vector<unsigned char>& b, int64_t dtype) {
  const size_t n = b.size() / elem_bytes(dtype);
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (dtype == LLMK_F32) {
      std::memcpy(&out[i], &b[i * 4], 4);
    } else {
      uint16_t h;
      std::memcpy(&h, &b[i * 2], 2);
      out[i] = dtype == LLMK_F16 ? llmk::f16_bits_to_f32(h) : llmk::bf16_bits_to_f32(h);
    }
  }
  return out;
}

#endif
