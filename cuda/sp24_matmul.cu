/* 2:4 sparse and dense matmul on the GPU (stubs). */
#include "cuda_check.cuh"
#include "sp24_args.h"

extern "C" int32_t llmk_sp24_matmul_cuda(const llmk_sp24_matmul_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_sp24_matmul(args, true, true));
    return llmk::fail(LLMK_ERR_UNAVAILABLE, "llmk_sp24_matmul_cuda: not implemented yet");
  });
}
extern "C" int32_t llmk_dense_matmul_cuda(const llmk_sp24_matmul_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_sp24_matmul(args, false, true));
    return llmk::fail(LLMK_ERR_UNAVAILABLE, "llmk_dense_matmul_cuda: not implemented yet");
  });
}
