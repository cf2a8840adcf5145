/* 2:4 semi-structured sparsity on the GPU: prune, check, compress, decompress (stubs). */
#include "cuda_check.cuh"
#include "sp24_args.h"

extern "C" int32_t llmk_sp24_prune_cuda(int32_t device, const void* w, const float* col_scale, void* out, int64_t m,
                                        int64_t k, int32_t dtype, void* stream) noexcept {
  (void)device; (void)stream;
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_sp24_prune(w, col_scale, out, m, k, dtype));
    return llmk::fail(LLMK_ERR_UNAVAILABLE, "llmk_sp24_prune_cuda: not implemented yet");
  });
}
extern "C" int32_t llmk_sp24_check_cuda(int32_t device, const void* w, int64_t m, int64_t k, int32_t dtype,
                                        int64_t* bad_row, int64_t* bad_group, void* stream) noexcept {
  (void)device; (void)stream;
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::require_non_null(bad_row, "bad_row"));
    LLMK_TRY_STATUS(llmk::require_non_null(bad_group, "bad_group"));
    LLMK_TRY_STATUS(llmk::check_sp24_shape(m, k, dtype));
    if (m * k > 0) LLMK_TRY_STATUS(llmk::require_non_null(w, "w"));
    return llmk::fail(LLMK_ERR_UNAVAILABLE, "llmk_sp24_check_cuda: not implemented yet");
  });
}
extern "C" int32_t llmk_sp24_compress_cuda(int32_t device, const void* w, void* values, uint16_t* meta, int64_t m,
                                           int64_t k, int32_t dtype, void* stream) noexcept {
  (void)device; (void)stream;
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_sp24_compress(w, values, meta, m, k, dtype));
    return llmk::fail(LLMK_ERR_UNAVAILABLE, "llmk_sp24_compress_cuda: not implemented yet");
  });
}
extern "C" int32_t llmk_sp24_decompress_cuda(int32_t device, const void* values, const uint16_t* meta, void* w,
                                             int64_t m, int64_t k, int32_t dtype, void* stream) noexcept {
  (void)device; (void)stream;
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_sp24_compress(w, values, meta, m, k, dtype));
    return llmk::fail(LLMK_ERR_UNAVAILABLE, "llmk_sp24_decompress_cuda: not implemented yet");
  });
}
