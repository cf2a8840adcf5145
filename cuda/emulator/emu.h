/* The CUDA dialect as host C++: force-included (g++ -include) before every .cu file of cuda/ in
 * the emulated build (cmake -DLLMK_CUDA_EMULATION=ON). It supplies what nvcc would: the execution
 * space keywords, threadIdx and friends, __shared__, the warp and block intrinsics, atomics, the
 * launch behind llmk::launch, and the entry points of cuda/ptx.cuh's emulation branches.
 *
 * Model (README.md beside this file): a launch runs its CTAs one after another on the calling
 * thread; a CTA's threads are fibers that run until they reach a barrier or a warp collective.
 * Nothing here is used by the nvcc build. */
#ifndef LLMK_CUDA_EMU_H
#define LLMK_CUDA_EMU_H

#define LLMK_CUDA_EMULATION 1

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>  // before __noinline__ is defined: libstdc++ spells __attribute__((__noinline__))
#include <tuple>
#include <type_traits>
#include <utility>

// ---- execution spaces: host mode already maps __device__, __global__, __host__ to nothing.
#undef __shared__
#undef __launch_bounds__
#undef __grid_constant__
#define __launch_bounds__(...)
#define __grid_constant__
#ifndef __noinline__
#define __noinline__ __attribute__((noinline))
#endif
/* Static __shared__ variables live in one linker section, poisoned at every CTA start: CTAs run
 * one at a time, so one copy serves every CTA. (Dynamic shared memory: llmk::dynamic_smem<T>().) */
#define __shared__ static __attribute__((section("llmk_emu_shared"), aligned(16)))

namespace llmk_emu {

/* Where a collective or barrier was called: named in every deadlock and mismatch report. */
struct Site {
  const char* file;
  int line;
  /* The caller's location when used in a default argument (the source_location::current()
   * form; GCC evaluates __builtin_LINE() inside a braced Site{...} at the declaration). */
  static constexpr Site here(const char* f = __builtin_FILE(), int l = __builtin_LINE()) { return Site{f, l}; }
};

struct ThreadCoords {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
/* The running fiber's coordinates. (Not initial-exec TLS: that marks the whole library
 * STATIC_TLS, and a JVM then cannot dlopen it. CMake uses TLS descriptors instead.) */
extern thread_local const ThreadCoords* g_coords;

// ---- block and warp synchronisation (scheduler.cpp, collectives.cpp)
int barrier(Site site, int kind, int pred);  // kind: 0 plain, 1 or, 2 count, 3 and
void syncwarp(Site site, unsigned mask);
uint64_t shuffle(Site site, unsigned mask, int mode, uint64_t value, int b, int c);
unsigned ballot(Site site, unsigned mask, int pred);
unsigned match_any(Site site, unsigned mask, uint64_t value);
enum ShuffleMode { kShflUp = 0, kShflDown = 1, kShflBfly = 2, kShflIdx = 3 };

// ---- cuda/ptx.cuh emulation branches (ptx.cpp)
enum MmaType { kF16 = 0, kBF16 = 1 };
void cp_async(Site site, void* dst, const void* src, int cp_size, int src_size);
void cp_async_commit();
void cp_async_wait(int pending);
void ldmatrix_x4(Site site, uint32_t (&r)[4], const void* row, bool trans);
void mma_m16n8k16(Site site, MmaType type, float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
void mma_sp_m16n8k32(Site site, MmaType type, float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[4],
                     uint32_t e, int selector);

// ---- launch (scheduler.cpp)
unsigned char* dynamic_smem();
using KernelInvoker = void (*)(const void* closure);
/* Validates the configuration as the hardware would, then runs every CTA; the outcome is left
 * for cudaGetLastError (launches are synchronous). */
void run_grid(const void* kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t stream, KernelInvoker invoke,
              const void* closure);

template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
  // Converted once, as at a call; every thread then gets its own by-value copy.
  using Params = std::tuple<std::decay_t<P>...>;
  struct Closure {
    void (*kernel)(P...);
    Params params;
  } closure{kernel, Params(std::forward<A>(args)...)};
  run_grid(reinterpret_cast<const void*>(kernel), grid, block, smem, stream,
           [](const void* c) {
             const Closure* cl = static_cast<const Closure*>(c);
             std::apply(cl->kernel, cl->params);
           },
           &closure);
}

template <typename T>
inline uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffled types are at most 64 bits");
  uint64_t u = 0;
  std::memcpy(&u, static_cast<const void*>(&v), sizeof(T));
  return u;
}
template <typename T>
inline T from_bits(uint64_t u) {
  T v;
  std::memcpy(static_cast<void*>(&v), &u, sizeof(T));
  return v;
}
inline int shfl_c(int width) { return (32 - width) << 8; }

/* Read-modify-write of *p through a compare-and-swap on its bits: device-wide atomic even if CTAs
 * ever run in parallel, and visible as an atomic to ThreadSanitizer. */
template <typename T, typename F>
inline T atomic_rmw(T* p, F f) {
  using U = std::conditional_t<sizeof(T) == 2, uint16_t, std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>;
  static_assert(sizeof(T) == sizeof(U), "atomics on 16, 32 or 64-bit types");
  U* q = reinterpret_cast<U*>(p);
  U old = __atomic_load_n(q, __ATOMIC_RELAXED);
  for (;;) {
    T cur;
    std::memcpy(static_cast<void*>(&cur), &old, sizeof(T));
    const T next = f(cur);
    U want;
    std::memcpy(&want, static_cast<const void*>(&next), sizeof(T));
    if (__atomic_compare_exchange_n(q, &old, want, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return cur;
  }
}

}  // namespace llmk_emu

/* nvcc's cuda_runtime.h has this overload for kernels; host mode lacks it. */
template <typename... P>
inline cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}

#define LLMK_EMU_SITE ::llmk_emu::Site::here()

// ---- built-in variables of the running fiber
#define threadIdx (::llmk_emu::g_coords->thread_idx)
#define blockIdx (::llmk_emu::g_coords->block_idx)
#define blockDim (::llmk_emu::g_coords->block_dim)
#define gridDim (::llmk_emu::g_coords->grid_dim)
static constexpr int warpSize = 32;

// ---- barriers and warp collectives (default arguments record the caller's line)
inline void __syncthreads(::llmk_emu::Site s = LLMK_EMU_SITE) { ::llmk_emu::barrier(s, 0, 0); }
inline int __syncthreads_or(int p, ::llmk_emu::Site s = LLMK_EMU_SITE) { return ::llmk_emu::barrier(s, 1, p); }
inline int __syncthreads_count(int p, ::llmk_emu::Site s = LLMK_EMU_SITE) { return ::llmk_emu::barrier(s, 2, p); }
inline int __syncthreads_and(int p, ::llmk_emu::Site s = LLMK_EMU_SITE) { return ::llmk_emu::barrier(s, 3, p); }
inline void __syncwarp(unsigned mask = 0xffffffffu, ::llmk_emu::Site s = LLMK_EMU_SITE) {
  ::llmk_emu::syncwarp(s, mask);
}
template <typename T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32, ::llmk_emu::Site s = LLMK_EMU_SITE) {
  return ::llmk_emu::from_bits<T>(::llmk_emu::shuffle(s, mask, ::llmk_emu::kShflIdx, ::llmk_emu::to_bits(v), src,
                                                      ::llmk_emu::shfl_c(width) | 0x1f));
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32, ::llmk_emu::Site s = LLMK_EMU_SITE) {
  return ::llmk_emu::from_bits<T>(::llmk_emu::shuffle(s, mask, ::llmk_emu::kShflUp, ::llmk_emu::to_bits(v),
                                                      static_cast<int>(delta), ::llmk_emu::shfl_c(width)));
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32, ::llmk_emu::Site s = LLMK_EMU_SITE) {
  return ::llmk_emu::from_bits<T>(::llmk_emu::shuffle(s, mask, ::llmk_emu::kShflDown, ::llmk_emu::to_bits(v),
                                                      static_cast<int>(delta), ::llmk_emu::shfl_c(width) | 0x1f));
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32, ::llmk_emu::Site s = LLMK_EMU_SITE) {
  return ::llmk_emu::from_bits<T>(::llmk_emu::shuffle(s, mask, ::llmk_emu::kShflBfly, ::llmk_emu::to_bits(v),
                                                      lane_mask, ::llmk_emu::shfl_c(width) | 0x1f));
}
inline unsigned __ballot_sync(unsigned mask, int pred, ::llmk_emu::Site s = LLMK_EMU_SITE) {
  return ::llmk_emu::ballot(s, mask, pred);
}
inline int __any_sync(unsigned mask, int pred, ::llmk_emu::Site s = LLMK_EMU_SITE) {
  return (::llmk_emu::ballot(s, mask, pred) & mask) != 0;
}
inline int __all_sync(unsigned mask, int pred, ::llmk_emu::Site s = LLMK_EMU_SITE) {
  return (::llmk_emu::ballot(s, mask, pred) & mask) == mask;
}
template <typename T>
inline unsigned __match_any_sync(unsigned mask, T v, ::llmk_emu::Site s = LLMK_EMU_SITE) {
  return ::llmk_emu::match_any(s, mask, ::llmk_emu::to_bits(v));
}

// ---- integer and bit intrinsics
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const uint64_t bytes = static_cast<uint64_t>(x) | (static_cast<uint64_t>(y) << 32);
  unsigned r = 0;
  for (int i = 0; i < 4; ++i) {
    const unsigned sel = (s >> (4 * i)) & 0xfu;
    unsigned b = static_cast<unsigned>(bytes >> (8 * (sel & 7))) & 0xffu;
    if (sel & 8) b = (b & 0x80u) ? 0xffu : 0u;  // sign-replicate mode
    r |= b << (8 * i);
  }
  return r;
}
inline unsigned __float_as_uint(float f) { return ::llmk_emu::from_bits<unsigned>(::llmk_emu::to_bits(f)); }
inline int __float_as_int(float f) { return ::llmk_emu::from_bits<int>(::llmk_emu::to_bits(f)); }
inline float __uint_as_float(unsigned u) { return ::llmk_emu::from_bits<float>(u); }
inline float __int_as_float(int i) { return ::llmk_emu::from_bits<float>(static_cast<uint32_t>(i)); }
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}
// Fast-math intrinsics: the exact functions (the hardware's are approximations within a few ulp).
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }

// ---- the math library's global names device code uses unqualified (CUDA declares them globally)
using std::isfinite;
using std::isinf;
using std::isnan;
template <typename A, typename B>
inline std::common_type_t<A, B> max(A a, B b) {
  return a > b ? a : b;
}
template <typename A, typename B>
inline std::common_type_t<A, B> min(A a, B b) {
  return a < b ? a : b;
}

// ---- atomics (device-wide, atomic on the host too)
#define LLMK_EMU_ATOMIC_OP(NAME, T, EXPR)                                                   \
  inline T NAME(T* p, T v) {                                                                \
    return ::llmk_emu::atomic_rmw(p, [v](T old) -> T { return EXPR; });                     \
  }
LLMK_EMU_ATOMIC_OP(atomicAdd, int, old + v)
LLMK_EMU_ATOMIC_OP(atomicAdd, unsigned, old + v)
LLMK_EMU_ATOMIC_OP(atomicAdd, unsigned long long, old + v)
LLMK_EMU_ATOMIC_OP(atomicAdd, float, old + v)
LLMK_EMU_ATOMIC_OP(atomicAdd, double, old + v)
LLMK_EMU_ATOMIC_OP(atomicAdd, __half, __float2half_rn(__half2float(old) + __half2float(v)))
LLMK_EMU_ATOMIC_OP(atomicAdd, __nv_bfloat16, __float2bfloat16_rn(__bfloat162float(old) + __bfloat162float(v)))
LLMK_EMU_ATOMIC_OP(atomicAdd, __half2,
                   __floats2half2_rn(__half2float(old.x) + __half2float(v.x), __half2float(old.y) + __half2float(v.y)))
LLMK_EMU_ATOMIC_OP(atomicAdd, __nv_bfloat162,
                   __floats2bfloat162_rn(__bfloat162float(old.x) + __bfloat162float(v.x),
                                         __bfloat162float(old.y) + __bfloat162float(v.y)))
LLMK_EMU_ATOMIC_OP(atomicMin, int, v < old ? v : old)
LLMK_EMU_ATOMIC_OP(atomicMin, unsigned, v < old ? v : old)
LLMK_EMU_ATOMIC_OP(atomicMin, unsigned long long, v < old ? v : old)
LLMK_EMU_ATOMIC_OP(atomicMax, int, v > old ? v : old)
LLMK_EMU_ATOMIC_OP(atomicMax, unsigned, v > old ? v : old)
LLMK_EMU_ATOMIC_OP(atomicMax, unsigned long long, v > old ? v : old)
LLMK_EMU_ATOMIC_OP(atomicExch, unsigned, ((void)old, v))
#undef LLMK_EMU_ATOMIC_OP

#endif  // LLMK_CUDA_EMU_H
