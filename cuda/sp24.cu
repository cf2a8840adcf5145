/* 2:4 semi-structured sparsity on the GPU: prune, check, compress, decompress (PyTorch's
 * unreordered layout, rules in llmk/sp24_math.h, so the results equal the CPU's bit for bit).
 *
 * One thread per group of 4 (prune, check) or per metadata word of 16 columns (compress,
 * decompress), grid-stride loops with 64-bit indices. Element tests work on raw bits (-0 is
 * zero, as on the CPU); kept elements are copied as bits.
 *
 * Compress and decompress validate first: pass 1 records the flat index of the first bad group
 * (row-major) with atomicMin, pass 2 reads that verdict and writes nothing if it is set (no host
 * round trip between the passes); the host then reads the 8-byte verdict back (one small
 * synchronous copy per call, as check needs anyway) and names the row and group. */
#include <string>

#include "cuda_check.cuh"
#include "kv_common.cuh"
#include "launch.cuh"
#include "llmk/sp24_math.h"
#include "sp24_args.h"
#include "sp24_common.cuh"

namespace {

constexpr int kThreads = 256;
constexpr unsigned long long kClean = ~0ull;

template <typename T>
__device__ __forceinline__ bool nonzero_bits(T bits) {
  return (static_cast<uint32_t>(bits) & (sizeof(T) == 4 ? 0x7fffffffu : 0x7fffu)) != 0;  // -0 is zero
}

template <typename T>
__device__ __forceinline__ uint32_t group_mask(const T* e) {
  uint32_t mask = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) mask |= nonzero_bits(e[i]) ? (1u << i) : 0u;
  return mask;
}

template <int DT>
__device__ __forceinline__ float value_of(uint32_t bits) {
  if constexpr (DT == LLMK_F32) {
    return __uint_as_float(bits);
  } else {
    return llmk::sp24::widen<DT>(static_cast<uint16_t>(bits));
  }
}

/* out may alias w: each thread reads its group before writing it, and groups are disjoint. */
template <int DT, typename T>
__global__ void prune_groups(const T* w, const float* __restrict__ col_scale, T* out, int64_t groups, int64_t k) {
  const int64_t row_groups = k / 4;
  for (int64_t gi = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; gi < groups;
       gi += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t col = (gi % row_groups) * 4;
    T bits[4];
    float score[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      bits[i] = w[gi * 4 + i];
      const float v = value_of<DT>(static_cast<uint32_t>(bits[i]));
      score[i] = (v < 0 ? -v : v) * (col_scale ? col_scale[col + i] : 1.0f);
    }
    const uint32_t code = llmk::sp24_code_from_scores(score);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[gi * 4 + i] = (i == llmk::sp24_idx0(code) || i == llmk::sp24_idx1(code)) ? bits[i] : T(0);
    }
  }
}

/* verdict = lowest flat group index (row * K/4 + group) with more than 2 non-zeros. */
template <typename T>
__global__ void find_dense_violation(const T* __restrict__ w, int64_t groups, unsigned long long* verdict) {
  for (int64_t gi = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; gi < groups;
       gi += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (llmk::sp24_popcount4(group_mask(w + gi * 4)) > 2) atomicMin(verdict, static_cast<unsigned long long>(gi));
  }
}

/* One metadata word (16 columns, 4 groups) per thread: flat element 16 * wi, values 8 * wi. */
template <typename T>
__global__ void compress_words(const T* __restrict__ w, T* __restrict__ values, uint16_t* __restrict__ meta,
                               int64_t words, const unsigned long long* verdict) {
  if (*verdict != kClean) return;
  for (int64_t wi = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; wi < words;
       wi += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const T* in = w + wi * 16;
    T* v = values + wi * 8;
    uint32_t word = 0;
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      const uint32_t code = llmk::sp24_code_from_mask(group_mask(in + 4 * g));
      v[2 * g] = in[4 * g + llmk::sp24_idx0(code)];
      v[2 * g + 1] = in[4 * g + llmk::sp24_idx1(code)];
      word |= code << (4 * g);
    }
    meta[wi] = static_cast<uint16_t>(word);
  }
}

/* verdict = lowest flat group index whose nibble has idx0 >= idx1. */
__global__ void find_meta_violation(const uint16_t* __restrict__ meta, int64_t words, unsigned long long* verdict) {
  for (int64_t wi = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; wi < words;
       wi += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint32_t word = meta[wi];
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      if (!llmk::sp24_code_valid((word >> (4 * g)) & 15u)) {
        atomicMin(verdict, static_cast<unsigned long long>(wi * 4 + g));
        break;
      }
    }
  }
}

template <typename T>
__global__ void decompress_words(const T* __restrict__ values, const uint16_t* __restrict__ meta, T* __restrict__ w,
                                 int64_t words, const unsigned long long* verdict) {
  if (*verdict != kClean) return;
  for (int64_t wi = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; wi < words;
       wi += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint32_t word = meta[wi];
    const T* v = values + wi * 8;
    T* out = w + wi * 16;
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      const uint32_t code = (word >> (4 * g)) & 15u;
      const int i0 = llmk::sp24_idx0(code), i1 = llmk::sp24_idx1(code);
      const T v0 = v[2 * g], v1 = v[2 * g + 1];
#pragma unroll
      for (int i = 0; i < 4; ++i) out[4 * g + i] = i == i0 ? v0 : (i == i1 ? v1 : T(0));
    }
  }
}

/* Allocates the verdict, runs body(verdict) (its launches), reads the verdict back. */
template <typename Body>
int32_t with_verdict(cudaStream_t st, unsigned long long* host, Body&& body) {
  llmk::kv::Scratch scratch(st);
  LLMK_TRY_STATUS(scratch.alloc(sizeof(unsigned long long)));
  unsigned long long* verdict = scratch.as<unsigned long long>();
  LLMK_CUDA_TRY(cudaMemsetAsync(verdict, 0xff, sizeof(unsigned long long), st));
  LLMK_TRY_STATUS(body(verdict));
  LLMK_CUDA_TRY(cudaMemcpyAsync(host, verdict, sizeof(unsigned long long), cudaMemcpyDeviceToHost, st));
  LLMK_CUDA_TRY(cudaStreamSynchronize(st));
  return scratch.release();
}

int32_t find_violation(const void* w, int64_t m, int64_t k, int32_t dtype, cudaStream_t st, unsigned long long* first) {
  const int64_t groups = m * (k / 4);
  return with_verdict(st, first, [&](unsigned long long* verdict) -> int32_t {
    if (dtype == LLMK_F32) {
      llmk::launch(find_dense_violation<uint32_t>, llmk::kv::grid_for(groups, kThreads), kThreads, 0, st, static_cast<const uint32_t*>(w),
                                                                                      groups, verdict);
    } else {
      llmk::launch(find_dense_violation<uint16_t>, llmk::kv::grid_for(groups, kThreads), kThreads, 0, st, static_cast<const uint16_t*>(w),
                                                                                      groups, verdict);
    }
    LLMK_CUDA_CHECK_LAUNCH("find_dense_violation");
    return LLMK_OK;
  });
}

}  // namespace

extern "C" int32_t llmk_sp24_prune_cuda(int32_t device, const void* w, const float* col_scale, void* out, int64_t m,
                                        int64_t k, int32_t dtype, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_sp24_prune(w, col_scale, out, m, k, dtype));
    if (m * k == 0) return LLMK_OK;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    const int64_t groups = m * (k / 4);
    const int grid = llmk::kv::grid_for(groups, kThreads);
    if (dtype == LLMK_F32) {
      llmk::launch(prune_groups<LLMK_F32, uint32_t>, grid, kThreads, 0, st, static_cast<const uint32_t*>(w), col_scale,
                                                       static_cast<uint32_t*>(out), groups, k);
    } else if (dtype == LLMK_BF16) {
      llmk::launch(prune_groups<LLMK_BF16, uint16_t>, grid, kThreads, 0, st, static_cast<const uint16_t*>(w), col_scale,
                                                        static_cast<uint16_t*>(out), groups, k);
    } else {
      llmk::launch(prune_groups<LLMK_F16, uint16_t>, grid, kThreads, 0, st, static_cast<const uint16_t*>(w), col_scale,
                                                       static_cast<uint16_t*>(out), groups, k);
    }
    LLMK_CUDA_CHECK_LAUNCH("prune_groups");
    return LLMK_OK;
  });
}

extern "C" int32_t llmk_sp24_check_cuda(int32_t device, const void* w, int64_t m, int64_t k, int32_t dtype,
                                        int64_t* bad_row, int64_t* bad_group, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_sp24_shape(m, k, dtype));
    LLMK_TRY_STATUS(llmk::require_non_null(bad_row, "bad_row"));
    LLMK_TRY_STATUS(llmk::require_non_null(bad_group, "bad_group"));
    *bad_row = *bad_group = -1;
    if (m * k == 0) return LLMK_OK;
    LLMK_TRY_STATUS(llmk::require_non_null(w, "w"));
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    unsigned long long first = kClean;
    LLMK_TRY_STATUS(find_violation(w, m, k, dtype, static_cast<cudaStream_t>(stream), &first));
    if (first != kClean) {
      *bad_row = static_cast<int64_t>(first) / (k / 4);
      *bad_group = static_cast<int64_t>(first) % (k / 4);
    }
    return LLMK_OK;
  });
}

extern "C" int32_t llmk_sp24_compress_cuda(int32_t device, const void* w, void* values, uint16_t* meta, int64_t m,
                                           int64_t k, int32_t dtype, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_sp24_compress(w, values, meta, m, k, dtype));
    if (m * k == 0) return LLMK_OK;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    const int64_t groups = m * (k / 4), words = m * (k / 16);
    unsigned long long first = kClean;
    LLMK_TRY_STATUS(with_verdict(st, &first, [&](unsigned long long* verdict) -> int32_t {
      const int ggrid = llmk::kv::grid_for(groups, kThreads), wgrid = llmk::kv::grid_for(words, kThreads);
      if (dtype == LLMK_F32) {
        const auto* in = static_cast<const uint32_t*>(w);
        llmk::launch(find_dense_violation<uint32_t>, ggrid, kThreads, 0, st, in, groups, verdict);
        LLMK_CUDA_CHECK_LAUNCH("find_dense_violation");
        llmk::launch(compress_words<uint32_t>, wgrid, kThreads, 0, st, in, static_cast<uint32_t*>(values), meta, words, verdict);
      } else {
        const auto* in = static_cast<const uint16_t*>(w);
        llmk::launch(find_dense_violation<uint16_t>, ggrid, kThreads, 0, st, in, groups, verdict);
        LLMK_CUDA_CHECK_LAUNCH("find_dense_violation");
        llmk::launch(compress_words<uint16_t>, wgrid, kThreads, 0, st, in, static_cast<uint16_t*>(values), meta, words, verdict);
      }
      LLMK_CUDA_CHECK_LAUNCH("compress_words");
      return LLMK_OK;
    }));
    if (first != kClean) {
      return llmk::fail_sp24_group(static_cast<int64_t>(first) / (k / 4), static_cast<int64_t>(first) % (k / 4),
                                   "more than 2 non-zeros, so W is not 2:4");
    }
    return LLMK_OK;
  });
}

extern "C" int32_t llmk_sp24_decompress_cuda(int32_t device, const void* values, const uint16_t* meta, void* w,
                                             int64_t m, int64_t k, int32_t dtype, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_sp24_compress(w, values, meta, m, k, dtype));
    if (m * k == 0) return LLMK_OK;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    const int64_t words = m * (k / 16);
    unsigned long long first = kClean;
    LLMK_TRY_STATUS(with_verdict(st, &first, [&](unsigned long long* verdict) -> int32_t {
      const int grid = llmk::kv::grid_for(words, kThreads);
      llmk::launch(find_meta_violation, grid, kThreads, 0, st, meta, words, verdict);
      LLMK_CUDA_CHECK_LAUNCH("find_meta_violation");
      if (dtype == LLMK_F32) {
        llmk::launch(decompress_words<uint32_t>, grid, kThreads, 0, st, static_cast<const uint32_t*>(values), meta,
                                                    static_cast<uint32_t*>(w), words, verdict);
      } else {
        llmk::launch(decompress_words<uint16_t>, grid, kThreads, 0, st, static_cast<const uint16_t*>(values), meta,
                                                    static_cast<uint16_t*>(w), words, verdict);
      }
      LLMK_CUDA_CHECK_LAUNCH("decompress_words");
      return LLMK_OK;
    }));
    if (first != kClean) {
      return llmk::fail_sp24_group(static_cast<int64_t>(first) / (k / 4), static_cast<int64_t>(first) % (k / 4),
                                   "metadata nibble must have idx0 < idx1");
    }
    return LLMK_OK;
  });
}
