/* KV cache compaction on the GPU: decode attention over a varlen cache (work in progress). */
#include "cuda_check.cuh"
#include "kv_args.h"

extern "C" int32_t llmk_kv_decode_attn_cuda(const llmk_kv_decode_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_kv_decode_args(args));
    return llmk::fail(LLMK_ERR_UNAVAILABLE, "llmk_kv_decode_attn_cuda: not implemented yet");
  });
}
