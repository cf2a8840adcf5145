/* Argument checks of the 2:4 sparse family, shared by the CPU and CUDA entry points. They check
 * sizes, dtypes, pointers and overlaps only (data may live on a device). */
#ifndef LLMK_SP24_ARGS_H
#define LLMK_SP24_ARGS_H

#include <cstdint>

#include "llmk/llmk.h"

namespace llmk {

/* M >= 0, K >= 0 a multiple of 16 (a metadata word covers 16 columns), dtype F32/F16/BF16. */
int32_t check_sp24_shape(int64_t m, int64_t k, int32_t dtype);
int32_t check_sp24_prune(const void* w, const float* col_scale, const void* out, int64_t m, int64_t k, int32_t dtype);
int32_t check_sp24_compress(const void* w, const void* values, const uint16_t* meta, int64_t m, int64_t k, int32_t dtype);
/* sparse: values/meta present (else w); cuda: F32 rejected (tensor cores take 16-bit inputs). */
int32_t check_sp24_matmul(const llmk_sp24_matmul_args* a, bool sparse, bool cuda);
/* The error for group g of row r holding more than 2 non-zeros (or a bad nibble when decoding). */
int32_t fail_sp24_group(int64_t row, int64_t group, const char* rule);

}  // namespace llmk
#endif
