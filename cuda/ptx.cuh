/* Every inline-PTX statement of the library, one wrapper each (sm_80+). Kernels call these and
 * never write asm themselves: the emulated build (cuda/emulator) gives each wrapper its own
 * branch, and keeping one copy stops the drift two copies had (asm vs asm volatile).
 *
 * All are asm volatile with a "memory" clobber where they touch memory: the compiler must not
 * move a cp.async across its wait, or an mma across the loads that fill its operands. */
#ifndef LLMK_CUDA_PTX_CUH
#define LLMK_CUDA_PTX_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

namespace llmk {
namespace ptx {

#if defined(LLMK_CUDA_EMULATION)
template <typename T>
constexpr ::llmk_emu::MmaType mma_type() {
  static_assert(std::is_same<T, __half>::value || std::is_same<T, __nv_bfloat16>::value, "f16 or bf16 operands");
  return std::is_same<T, __half>::value ? ::llmk_emu::kF16 : ::llmk_emu::kBF16;
}
#else
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
#endif

/* cp.async.cg 16 bytes global -> shared; with !valid nothing is read and the 16 bytes are zeroed
 * (src must still be a valid address expression: pass a safe base). */
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
#if defined(LLMK_CUDA_EMULATION)
  ::llmk_emu::cp_async(LLMK_EMU_SITE, dst, src, 16, valid ? 16 : 0);
#else
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0)
               : "memory");
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(LLMK_CUDA_EMULATION)
  ::llmk_emu::cp_async_commit();
#else
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

/* Waits until at most kPending of this thread's committed groups are in flight. Other threads'
 * copies become visible only after a barrier. */
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
#if defined(LLMK_CUDA_EMULATION)
  ::llmk_emu::cp_async_wait(kPending);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
#endif
}

/* ldmatrix.m8n8.x4.b16: lane l gives the 16-byte row l % 8 of matrix l / 8. */
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
#if defined(LLMK_CUDA_EMULATION)
  ::llmk_emu::ldmatrix_x4(LLMK_EMU_SITE, r, row, false);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row))
               : "memory");
#endif
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
#if defined(LLMK_CUDA_EMULATION)
  ::llmk_emu::ldmatrix_x4(LLMK_EMU_SITE, r, row, true);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row))
               : "memory");
#endif
}

/* d += A (16 x 16, row) * B (16 x 8, col), T = __half or __nv_bfloat16, fp32 accumulators. */
template <typename T>
__device__ __forceinline__ void mma_m16n8k16(float& d0, float& d1, float& d2, float& d3, const uint32_t (&a)[4],
                                             uint32_t b0, uint32_t b1) {
#if defined(LLMK_CUDA_EMULATION)
  float d[4] = {d0, d1, d2, d3};
  const uint32_t b[2] = {b0, b1};
  ::llmk_emu::mma_m16n8k16(LLMK_EMU_SITE, mma_type<T>(), d, a, b);
  d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
#else
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d0), "+f"(d1), "+f"(d2), "+f"(d3)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    static_assert(std::is_same<T, __half>::value, "f16 or bf16 operands");
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d0), "+f"(d1), "+f"(d2), "+f"(d3)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
#endif
}

/* d += A (16 x 32, 2:4 sparse: the 16 x 16 kept values in a, metadata e) * B (32 x 8, col),
 * mma.sp::ordered_metadata, sparsity selector 0 (lanes with threadID_in_group 0 and 1 give e). */
template <typename T>
__device__ __forceinline__ void mma_sp_m16n8k32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[4],
                                                uint32_t e) {
#if defined(LLMK_CUDA_EMULATION)
  ::llmk_emu::mma_sp_m16n8k32(LLMK_EMU_SITE, mma_type<T>(), d, a, b, e, 0);
#else
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    asm volatile(
        "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(e));
  } else {
    static_assert(std::is_same<T, __half>::value, "f16 or bf16 operands");
    asm volatile(
        "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(e));
  }
#endif
}

}  // namespace ptx
}  // namespace llmk

#endif
