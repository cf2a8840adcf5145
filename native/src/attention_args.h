/* Argument checks for mask layouts, block-sparse attention and state merging, shared by the CPU
 * and CUDA entry points so both report the same text. */
#ifndef LLMK_ATTENTION_ARGS_H
#define LLMK_ATTENTION_ARGS_H

#include <cstdint>

#include "llmk/llmk.h"

namespace llmk {

/* Blocks needed to cover n elements with blocks of size block. */
inline int64_t ceil_div(int64_t n, int64_t block) { return (n + block - 1) / block; }

/* Struct size, sizes, node program (ops, stack discipline, parameters, data pointers present),
 * required pointers. Reads only the host node array, never data arrays or lengths (which may
 * live on a device). With need_idx the idx arrays must be present too (fill pass). */
int32_t check_layout_args(const llmk_layout_args* a, bool need_idx);

/* Same for an attention call: sizes, dtypes, scale/softcap, layout geometry, mask program,
 * pointers, and that out/lse overlap none of the inputs. */
int32_t check_attn_args(const llmk_attn_args* a);

int32_t check_merge_args(const void* out_a, const float* lse_a, const void* out_b, const float* lse_b,
                         const void* out, const float* lse, int64_t rows, int64_t d, int32_t dtype);

/* Checks a mask program: 1..LLMK_MASK_MAX_NODES nodes, known ops, stack never under/overflows
 * and ends with one value, leaf parameters in range, data pointers present where needed. */
int32_t check_mask_program(const llmk_mask_node* nodes, int64_t count);

/* Host-side lengths (int32 [batch] or 0) must lie in [0, seq]: the classifier trusts them. */
int32_t check_host_lengths(int64_t q_lens, int64_t k_lens, int64_t batch, int64_t seq_q, int64_t seq_k);

/* Whether some node reads data that differs per batch / per head (non-zero data strides). */
bool mask_varies_by_batch(const llmk_mask_node* nodes, int64_t count);
bool mask_varies_by_head(const llmk_mask_node* nodes, int64_t count);

inline int64_t dtype_bytes(int64_t dtype) { return dtype == LLMK_F32 ? 4 : 2; }

}  // namespace llmk
#endif
