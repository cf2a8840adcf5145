/* The one launch form and the one dynamic-shared-memory form of the library's kernels.
 *
 *   llmk::launch(kernel<T>, grid, block, smem_bytes, stream, args...);   // never <<<>>>
 *   float* s = llmk::dynamic_smem<float>();                               // never extern __shared__
 *
 * Both compile to the plain CUDA forms under nvcc; the emulated build (cuda/emulator) runs the
 * same call on its CPU device. Check the launch afterwards with LLMK_CUDA_CHECK_LAUNCH. */
#ifndef LLMK_CUDA_LAUNCH_CUH
#define LLMK_CUDA_LAUNCH_CUH

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

namespace llmk {

template <typename... P, typename... A>
inline void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem_bytes, cudaStream_t stream,
                   A&&... args) {
#if defined(LLMK_CUDA_EMULATION)
  ::llmk_emu::launch(kernel, grid, block, smem_bytes, stream, std::forward<A>(args)...);
#else
  kernel<<<grid, block, smem_bytes, stream>>>(std::forward<A>(args)...);
#endif
}

/* The CTA's dynamic shared memory (16-byte aligned), viewed as T. */
template <typename T>
__device__ __forceinline__ T* dynamic_smem() {
#if defined(LLMK_CUDA_EMULATION)
  return reinterpret_cast<T*>(::llmk_emu::dynamic_smem());
#else
  extern __shared__ __align__(16) unsigned char llmk_dynamic_smem[];
  return reinterpret_cast<T*>(llmk_dynamic_smem);
#endif
}

}  // namespace llmk

#endif
