/* Built when nvcc was not found (or LLMK_CUDA=OFF): every CUDA entry point exists, so the Java
 * binding links, and reports why the CUDA backend is missing. */
#include "error.h"

namespace {
int32_t unavailable() noexcept {
  return llmk::fail(LLMK_ERR_UNAVAILABLE,
                    "this native library was built without CUDA (" LLMK_NO_CUDA_REASON ")");
}
}  // namespace

extern "C" {
int32_t llmk_cuda_compiled(void) noexcept { return 0; }
const char* llmk_cuda_compiled_archs(void) noexcept { return ""; }
int32_t llmk_cuda_device_count(int32_t*) noexcept { return unavailable(); }
int32_t llmk_cuda_device_info(int32_t, char*, int32_t, int32_t*, int32_t*, int64_t*, int32_t*,
                              int32_t*, int32_t*) noexcept { return unavailable(); }
int32_t llmk_cuda_malloc(int32_t, int64_t, void**) noexcept { return unavailable(); }
int32_t llmk_cuda_free(int32_t, void*) noexcept { return unavailable(); }
int32_t llmk_cuda_memcpy(int32_t, void*, const void*, int64_t, int32_t, void*, int32_t) noexcept { return unavailable(); }
int32_t llmk_cuda_memset(int32_t, void*, int32_t, int64_t, void*) noexcept { return unavailable(); }
int32_t llmk_cuda_stream_create(int32_t, void**) noexcept { return unavailable(); }
int32_t llmk_cuda_stream_destroy(int32_t, void*) noexcept { return unavailable(); }
int32_t llmk_cuda_stream_synchronize(int32_t, void*) noexcept { return unavailable(); }
int32_t llmk_cuda_event_create(int32_t, void**) noexcept { return unavailable(); }
int32_t llmk_cuda_event_destroy(int32_t, void*) noexcept { return unavailable(); }
int32_t llmk_cuda_event_record(int32_t, void*, void*) noexcept { return unavailable(); }
int32_t llmk_cuda_event_synchronize(int32_t, void*) noexcept { return unavailable(); }
int32_t llmk_cuda_event_elapsed_ms(void*, void*, float*) noexcept { return unavailable(); }
int32_t llmk_kv_gather_rows_cuda(int32_t, const void*, const int32_t*, void*, int64_t, int64_t,
                                 int64_t, int64_t, int64_t, void*) noexcept { return unavailable(); }
int32_t llmk_cce_forward_cuda(llmk_cce_args*) noexcept { return unavailable(); }
int32_t llmk_cce_backward_cuda(llmk_cce_args*) noexcept { return unavailable(); }
int32_t llmk_cce_workspace_bytes_cuda(const llmk_cce_args*, int32_t, int64_t*) noexcept { return unavailable(); }
int32_t llmk_layout_count_cuda(const llmk_layout_args*) noexcept { return unavailable(); }
int32_t llmk_layout_fill_cuda(const llmk_layout_args*) noexcept { return unavailable(); }
int32_t llmk_attn_forward_cuda(const llmk_attn_args*) noexcept { return unavailable(); }
int32_t llmk_attn_merge_cuda(int32_t, const void*, const float*, const void*, const float*, void*, float*, int64_t,
                             int64_t, int32_t, void*) noexcept { return unavailable(); }
int32_t llmk_kv_score_cuda(const llmk_kv_score_args*) noexcept { return unavailable(); }
int32_t llmk_kv_select_cuda(const llmk_kv_select_args*) noexcept { return unavailable(); }
int32_t llmk_kv_gather_varlen_cuda(int32_t, const void*, const int32_t*, const int64_t*, void*, int64_t, int64_t,
                                   int64_t, int64_t, int64_t, void*) noexcept { return unavailable(); }
int32_t llmk_kv_compact_inplace_cuda(int32_t, void*, const int32_t*, const int32_t*, int64_t, int64_t, int64_t,
                                     int64_t, int64_t, void*) noexcept { return unavailable(); }
int32_t llmk_kv_decode_attn_cuda(const llmk_kv_decode_args*) noexcept { return unavailable(); }
int32_t llmk_sp24_prune_cuda(int32_t, const void*, const float*, void*, int64_t, int64_t, int32_t, void*) noexcept { return unavailable(); }
int32_t llmk_sp24_check_cuda(int32_t, const void*, int64_t, int64_t, int32_t, int64_t*, int64_t*, void*) noexcept { return unavailable(); }
int32_t llmk_sp24_compress_cuda(int32_t, const void*, void*, uint16_t*, int64_t, int64_t, int32_t, void*) noexcept { return unavailable(); }
int32_t llmk_sp24_decompress_cuda(int32_t, const void*, const uint16_t*, void*, int64_t, int64_t, int32_t, void*) noexcept { return unavailable(); }
int32_t llmk_sp24_matmul_cuda(const llmk_sp24_matmul_args*) noexcept { return unavailable(); }
int32_t llmk_dense_matmul_cuda(const llmk_sp24_matmul_args*) noexcept { return unavailable(); }
}
