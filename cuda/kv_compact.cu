/* KV cache compaction on the GPU: varlen gather and in-place hole filling (work in progress). */
#include "cuda_check.cuh"
#include "kv_args.h"

extern "C" int32_t llmk_kv_gather_varlen_cuda(int32_t device, const void* src, const int32_t* kept,
                                              const int64_t* cu, void* dst, int64_t B, int64_t H, int64_t N,
                                              int64_t max_keep, int64_t row_bytes, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    (void)device;
    (void)stream;
    LLMK_TRY_STATUS(llmk::check_kv_gather_varlen_args(src, kept, cu, dst, B, H, N, max_keep, row_bytes));
    return llmk::fail(LLMK_ERR_UNAVAILABLE, "llmk_kv_gather_varlen_cuda: not implemented yet");
  });
}

extern "C" int32_t llmk_kv_compact_inplace_cuda(int32_t device, void* cache, const int32_t* kept,
                                                const int32_t* counts, int64_t B, int64_t H, int64_t capacity,
                                                int64_t max_keep, int64_t row_bytes, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    (void)device;
    (void)stream;
    LLMK_TRY_STATUS(llmk::check_kv_compact_args(cache, kept, counts, B, H, capacity, max_keep, row_bytes));
    return llmk::fail(LLMK_ERR_UNAVAILABLE, "llmk_kv_compact_inplace_cuda: not implemented yet");
  });
}
