/* Per-token rules of KV cache compaction shared by the CPU and CUDA kernels: the selection order
 * (forced tokens, then score, ties to the lower position), the position-only scores, and the
 * pooling window. LLMK_HD, so both backends use literally the same rules. */
#ifndef LLMK_KV_MATH_H
#define LLMK_KV_MATH_H

#include <stdint.h>

#include "llmk/host_device.h"

namespace llmk {

/* Always kept: the first `sinks` tokens and the last `recent` ones. */
LLMK_HD bool kv_forced(int64_t j, int64_t n, int64_t sinks, int64_t recent) { return j < sinks || j >= n - recent; }

/* Tokens a head must keep at least: the forced ones (clipped to n). */
LLMK_HD int64_t kv_forced_count(int64_t n, int64_t sinks, int64_t recent) {
  const int64_t s = sinks < n ? sinks : n;
  const int64_t r = recent < n - s ? recent : n - s;
  return s + r;
}

/* Selection order: does token (sa, ja) come before token (sb, jb)? Forced tokens first, then the
 * higher score, ties to the lower position (a total order: results never depend on the backend). */
LLMK_HD bool kv_before(bool fa, float sa, int64_t ja, bool fb, float sb, int64_t jb) {
  if (fa != fb) return fa;
  if (sa != sb) return sa > sb;
  return ja < jb;
}

/* LLMK_KV_LADDER score of token j of n for a layer and rung span. */
LLMK_HD float kv_ladder_score(int64_t j, int64_t n, int64_t layer, int64_t rung) {
  const float base = (j % rung == layer % rung) ? 2.0f : 1.0f;
  return base + static_cast<float>(j) / static_cast<float>(n);
}

/* Pooling window of key j: [j - kernel / 2, j + kernel / 2] clipped to [0, n). */
LLMK_HD int64_t kv_pool_lo(int64_t j, int64_t kernel) { return j - kernel / 2 < 0 ? 0 : j - kernel / 2; }
LLMK_HD int64_t kv_pool_hi(int64_t j, int64_t kernel, int64_t n) {
  return j + kernel / 2 >= n ? n - 1 : j + kernel / 2;
}

/* Query i of q_len sits at position n - q_len + i and sees keys 0 .. that position. */
LLMK_HD int64_t kv_query_position(int64_t i, int64_t q_len, int64_t n) { return n - q_len + i; }

}  // namespace llmk
#endif
