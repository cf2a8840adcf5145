/* Argument checks for the cut cross-entropy, shared by the CPU and CUDA entry points so both
 * report the same text, and the unpacked view of llmk_cce_args the kernels use. */
#ifndef LLMK_CCE_ARGS_H
#define LLMK_CCE_ARGS_H

#include <cstdint>

#include "llmk/cce_math.h"
#include "llmk/llmk.h"

namespace llmk {

enum class CcePass { Forward = 0, Backward = 1 };

/* Checks struct size, sizes, dtypes and option ranges only (for workspace queries). */
int32_t check_cce_sizes(const llmk_cce_args* a);

/* Checks struct size, sizes, dtypes, option ranges, required pointers, that outputs overlap no
 * input, and that byte counts fit int64. Does not read targets (they may live on a device). */
int32_t check_cce_args(const llmk_cce_args* a, CcePass pass);

/* Records the error for the bad target at position pos (already shifted) with value value. */
int32_t fail_cce_target(const llmk_cce_args& a, int64_t pos, int64_t value);

/* Element size of the E/C dtype in bytes. */
int64_t cce_elem_bytes(const llmk_cce_args& a);

/* Sharded: C is a strict part of the vocabulary. */
inline bool cce_sharded(const llmk_cce_args& a) { return a.vocab_offset != 0 || a.v != a.vocab_total; }

inline CceRowParams cce_row_params(const llmk_cce_args& a) {
  return CceRowParams{a.label_smoothing, a.z_loss_scale, 1.0 / static_cast<double>(a.vocab_total)};
}

}  // namespace llmk
#endif
