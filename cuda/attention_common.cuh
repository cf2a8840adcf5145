/* Shared pieces of the CUDA block-sparse attention (attention_layout.cu, attention_forward.cu):
 * the mask program carried by value in a kernel parameter block and copied to shared memory,
 * where llmk/mask_math.h (the same predicate and classifier as the CPU kernels) reads it. */
#ifndef LLMK_ATTENTION_COMMON_CUH
#define LLMK_ATTENTION_COMMON_CUH

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "error.h"
#include "llmk/llmk.h"
#include "llmk/mask_math.h"

namespace llmk {
namespace attn {

constexpr int kNodeWords = static_cast<int>(sizeof(llmk_mask_node) / sizeof(int64_t));
static_assert(sizeof(llmk_mask_node) % sizeof(int64_t) == 0, "mask node is a whole number of int64 words");

/* The node program, by value (the caller's array is host memory). Unused slots are zero. */
struct MaskProgram {
  llmk_mask_node nodes[LLMK_MASK_MAX_NODES];
  int64_t count;
};

/* count was validated (1..LLMK_MASK_MAX_NODES) by the shared argument checks. */
inline MaskProgram make_program(int64_t nodes_address, int64_t count) {
  MaskProgram p;
  std::memset(&p, 0, sizeof(p));
  p.count = count;
  std::memcpy(p.nodes, reinterpret_cast<const llmk_mask_node*>(nodes_address),
              static_cast<size_t>(count) * sizeof(llmk_mask_node));
  return p;
}

/* A misaligned device pointer would fault inside a kernel (a sticky error that poisons the
 * caller's CUDA context), so every array is checked on the host first. Inside guarded() only. */
inline int32_t require_aligned(int64_t address, int64_t alignment, const char* name) {
  if (address % alignment == 0) return LLMK_OK;
  return fail(LLMK_ERR_INVALID_ARGUMENT, std::string(name) + " must be " + std::to_string(alignment) +
                                             "-byte aligned on the CUDA backend; got address " +
                                             std::to_string(address));
}

/* Mask data arrays: int32 everywhere except the BLOCKS bitmap (bytes). */
inline int32_t require_aligned_program(const MaskProgram& p) {
  for (int64_t i = 0; i < p.count; ++i) {
    const llmk_mask_node& n = p.nodes[i];
    if (n.op == LLMK_MASK_BLOCKS || n.op >= LLMK_MASK_AND) continue;
    if (int32_t rc = require_aligned(n.data0, 4, "mask node data0 (int32)")) return rc;
    if (int32_t rc = require_aligned(n.data1, 4, "mask node data1 (int32)")) return rc;
  }
  return LLMK_OK;
}

/* Copies the program from the (__grid_constant__) parameter block into shared memory. Every
 * thread of the CTA calls it; the caller puts a barrier before the first use. */
__device__ __forceinline__ void load_program(const MaskProgram& p, llmk_mask_node* s_nodes) {
  const int words = static_cast<int>(p.count) * kNodeWords;
  const int64_t* src = reinterpret_cast<const int64_t*>(p.nodes);
  int64_t* dst = reinterpret_cast<int64_t*>(s_nodes);
  for (int i = static_cast<int>(threadIdx.x); i < words; i += static_cast<int>(blockDim.x)) dst[i] = src[i];
}

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

}  // namespace attn
}  // namespace llmk
#endif
