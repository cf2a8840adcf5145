/* 2:4 metadata rules shared by the CPU and CUDA kernels (LLMK_HD): the nibble of a group from
 * its kept positions and back, pruning's choice of the 2 kept positions, and the check. */
#ifndef LLMK_SP24_MATH_H
#define LLMK_SP24_MATH_H

#include <stdint.h>

#include "llmk/host_device.h"

namespace llmk {

/* Nibble of a group keeping positions i0 < i1 (in 0..3). */
LLMK_HD uint32_t sp24_code(int i0, int i1) { return static_cast<uint32_t>(i0 | (i1 << 2)); }
LLMK_HD int sp24_idx0(uint32_t code) { return static_cast<int>(code & 3u); }
LLMK_HD int sp24_idx1(uint32_t code) { return static_cast<int>((code >> 2) & 3u); }
LLMK_HD bool sp24_code_valid(uint32_t code) { return sp24_idx0(code) < sp24_idx1(code); }

/* Nibble of group g (of 4 columns) of a metadata row. */
LLMK_HD uint32_t sp24_group_code(const uint16_t* meta_row, int64_t g) {
  return (static_cast<uint32_t>(meta_row[g >> 2]) >> ((g & 3) * 4)) & 15u;
}

/* Kept positions of a group from its non-zero mask (bit i = element i non-zero, at most 2 set):
 * the non-zeros, filled up with the lowest zero positions. */
LLMK_HD uint32_t sp24_code_from_mask(uint32_t nonzero) {
  int kept[2];
  int n = 0;
  for (int i = 0; i < 4 && n < 2; ++i)
    if (nonzero & (1u << i)) kept[n++] = i;
  for (int i = 0; i < 4 && n < 2; ++i)
    if (!(nonzero & (1u << i)) && (n == 0 || kept[0] != i)) kept[n++] = i;
  const int a = kept[0] < kept[1] ? kept[0] : kept[1], b = kept[0] < kept[1] ? kept[1] : kept[0];
  return sp24_code(a, b);
}

/* Pruning: the 2 positions with the highest scores, ties to the lower position. */
LLMK_HD uint32_t sp24_code_from_scores(const float s[4]) {
  int best = 0;
  for (int i = 1; i < 4; ++i)
    if (s[i] > s[best]) best = i;
  int second = best == 0 ? 1 : 0;
  for (int i = 0; i < 4; ++i)
    if (i != best && s[i] > s[second]) second = i;
  /* ties: for equal scores the lower index wins because only a strictly greater score replaces */
  return sp24_code(best < second ? best : second, best < second ? second : best);
}

LLMK_HD int sp24_popcount4(uint32_t x) { return static_cast<int>((x & 1u) + ((x >> 1) & 1u) + ((x >> 2) & 1u) + ((x >> 3) & 1u)); }

}  // namespace llmk
#endif
