/* Argument checks of KV cache compaction (scoring, selection, varlen gather, in-place
 * compaction, decode attention), shared by the CPU and CUDA entry points so both report the same
 * text. They read only sizes and host-side structs, never tensor data (which may be on a device);
 * the kernels validate data (indices, counts, budgets, cu) themselves. */
#ifndef LLMK_KV_ARGS_H
#define LLMK_KV_ARGS_H

#include <cstdint>

#include "llmk/llmk.h"

namespace llmk {

int32_t check_kv_score_args(const llmk_kv_score_args* a);
int32_t check_kv_select_args(const llmk_kv_select_args* a);
/* Sizes and pointers of the varlen gather (dst size is only known from cu: not checked here). */
int32_t check_kv_gather_varlen_args(const void* src, const int32_t* kept, const int64_t* cu, const void* dst,
                                    int64_t B, int64_t H, int64_t N, int64_t max_keep, int64_t row_bytes);
int32_t check_kv_compact_args(const void* cache, const int32_t* kept, const int32_t* counts, int64_t B, int64_t H,
                              int64_t capacity, int64_t max_keep, int64_t row_bytes);
int32_t check_kv_decode_args(const llmk_kv_decode_args* a);

/* Host-side data checks (the CPU entry points call them; the CUDA kernels check the same rules
 * on the device): budgets in [forced, min(n, max_keep)]; cu starts at 0, non-decreasing, every
 * count <= max_keep (varlen gather) ; counts in [0, min(capacity, max_keep)] and kept strictly
 * ascending inside [0, capacity) (in-place). Messages name the head and the rule. */
int32_t check_kv_budgets_host(const llmk_kv_select_args& a, const int32_t* budgets);
int32_t check_kv_cu_host(const int64_t* cu, int64_t heads, int64_t max_keep, const char* name);

}  // namespace llmk
#endif
