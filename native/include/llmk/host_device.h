/* One header compiles under g++ and nvcc: index math shared by the CPU and CUDA kernels is
 * marked LLMK_HD so both backends use literally the same arithmetic. */
#ifndef LLMK_HOST_DEVICE_H
#define LLMK_HOST_DEVICE_H

#if defined(__CUDACC__)
#define LLMK_HD __host__ __device__ __forceinline__
#else
#define LLMK_HD inline
#endif

#endif
