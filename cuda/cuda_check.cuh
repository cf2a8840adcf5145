/* CUDA error handling for the C ABI: every runtime call and every launch is checked, and a
 * failure becomes LLMK_ERR_CUDA with the call, the CUDA error name and the source line. */
#ifndef LLMK_CUDA_CHECK_CUH
#define LLMK_CUDA_CHECK_CUH

#include <cuda_runtime.h>

#include <cstring>
#include <string>

#include "error.h"

namespace llmk {

/* Builds a message (may throw std::bad_alloc): use inside guarded() only. */
inline int32_t fail_cuda(cudaError_t err, const char* what, const char* file, int line) {
  const char* slash = std::strrchr(file, '/');
  file = slash ? slash + 1 : file;  // the build machine's paths mean nothing to a user
  return fail(err == cudaErrorMemoryAllocation ? LLMK_ERR_OUT_OF_MEMORY : LLMK_ERR_CUDA,
              std::string(what) + " failed: " + cudaGetErrorName(err) + " (" +
                  cudaGetErrorString(err) + ") at " + file + ":" + std::to_string(line));
}

/*
 * Makes `device` current for this thread for the lifetime of the guard, validating the ordinal
 * first, and restores the caller's device afterwards: the current device is shared with every
 * other CUDA user in the process (PyTorch, ...), so the library must not change it behind
 * their back. enter() also clears a stale, non-sticky error left by earlier CUDA work on this
 * thread, so that launch checks report this call's failures only.
 */
class DeviceGuard {
 public:
  DeviceGuard() = default;
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  ~DeviceGuard() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  int32_t enter(int32_t device);

 private:
  int previous_ = -1;  // device to restore, or -1 when nothing was switched
};

}  // namespace llmk

/* Returns from the enclosing function with a status if the call fails. */
#define LLMK_CUDA_TRY(call)                                                         \
  do {                                                                              \
    cudaError_t llmk_err_ = (call);                                                 \
    if (llmk_err_ != cudaSuccess) return ::llmk::fail_cuda(llmk_err_, #call, __FILE__, __LINE__); \
  } while (0)

/* After a <<<>>> launch: catches bad configurations (and sticky errors from earlier work). */
#define LLMK_CUDA_CHECK_LAUNCH(kernel_name)                                            \
  do {                                                                                 \
    cudaError_t llmk_err_ = cudaGetLastError();                                        \
    if (llmk_err_ != cudaSuccess)                                                      \
      return ::llmk::fail_cuda(llmk_err_, "launch of " kernel_name, __FILE__, __LINE__); \
  } while (0)

#define LLMK_TRY_STATUS(expr)              \
  do {                                     \
    int32_t llmk_rc_ = (expr);             \
    if (llmk_rc_ != LLMK_OK) return llmk_rc_; \
  } while (0)

#endif
