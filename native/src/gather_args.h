/* Argument checks and error messages for the row gather, shared by the CPU and CUDA entry
 * points so both report exactly the same text. */
#ifndef LLMK_GATHER_ARGS_H
#define LLMK_GATHER_ARGS_H

#include <cstdint>

#include "llmk/index_math.h"

namespace llmk {

/* Checks pointers, non-negative sizes, that every byte count fits int64, and that dst overlaps
 * neither src nor idx. On LLMK_OK with
 * B*H*K > 0 the caller must still validate every index (even when row_bytes is 0). */
int32_t check_gather_args(const void* src, const int32_t* idx, const void* dst, const GatherShape& s);

/* Records the out-of-range error for the index at flat position pos (= (b*H + h)*K + k). */
int32_t fail_gather_index(const GatherShape& s, int64_t pos, int32_t value);

/* Records that an index validated before the copy was invalid during it: idx was modified
 * concurrently. The copy skipped that row (memory stays safe) but dst is partially written. */
int32_t fail_gather_index_changed(const GatherShape& s, int64_t pos);

}  // namespace llmk
#endif
