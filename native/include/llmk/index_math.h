/* Host+device index math. Everything is int64_t: B*H*N*row_bytes passes 2^31 for real KV caches
 * (a 128K-token Llama-3.1-8B layer is 8 heads x 131072 rows x 256 bytes = 256 MiB per tensor,
 * and a whole cache is 16 GiB). */
#ifndef LLMK_INDEX_MATH_H
#define LLMK_INDEX_MATH_H

#include <stdint.h>
#include "llmk/host_device.h"

namespace llmk {

/* Row-gather geometry: src (B, H, N, row_bytes), idx (B, H, K), dst (B, H, K, row_bytes). */
struct GatherShape {
  int64_t B, H, N, K, row_bytes;
};

/* Position of gathered row r = (bh, k) flattened as bh * K + k. */
LLMK_HD int64_t gather_dst_offset(const GatherShape& s, int64_t r) { return r * s.row_bytes; }

/* Byte offset of the source row that gathered row r = bh * K + k reads. */
LLMK_HD int64_t gather_src_offset(const GatherShape& s, int64_t r, int32_t index) {
  const int64_t bh = r / s.K;
  return (bh * s.N + static_cast<int64_t>(index)) * s.row_bytes;
}

LLMK_HD bool gather_index_valid(const GatherShape& s, int32_t index) {
  return index >= 0 && static_cast<int64_t>(index) < s.N;
}

/* a * b, or false on signed overflow (sizes arrive from Java as int64 and are re-checked). */
LLMK_HD bool checked_mul(int64_t a, int64_t b, int64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

}  // namespace llmk
#endif
