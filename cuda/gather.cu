/* Row gather on the GPU: dst[b, h, k, :] = src[b, h, idx[b, h, k], :].
 *
 * Pass 1 (validate_indices) records the lowest flat position of an invalid index with
 * atomicMin. Pass 2 (copy_rows) reads that verdict and does nothing if it is set, so a bad
 * index leaves dst untouched without a host round trip between the passes. The host then
 * waits for the 16-byte verdict to report the position (one small synchronous copy per call).
 * The copy re-checks each index it uses, so a concurrent change of idx is reported, not fatal.
 *
 * Copy: up to a warp per gathered row, 16-byte vector loads when the row and both base pointers
 * are 16-byte aligned (every F16/BF16 head dim that is a multiple of 8), byte copies otherwise. */
#include <string>

#include "cuda_check.cuh"
#include "gather_args.h"
#include "launch.cuh"
#include "llmk/index_math.h"

namespace {

constexpr int kThreads = 256;
constexpr unsigned long long kAllValid = ~0ull;
// Verdict slots: lowest position found invalid by validation, and by the copy (idx changed).
constexpr int kFirstInvalid = 0;
constexpr int kFirstChanged = 1;
constexpr int kVerdictSlots = 2;

__global__ void validate_indices(const int32_t* __restrict__ idx, llmk::GatherShape s, int64_t rows,
                                 unsigned long long* verdict) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (!llmk::gather_index_valid(s, idx[r])) atomicMin(&verdict[kFirstInvalid], static_cast<unsigned long long>(r));
  }
}

/* lanes_per_row threads (a power of two <= 32) copy one row together, so a 256-byte row
 * (BF16, d = 128: 16 x 16-byte words) keeps every lane of the warp busy on two rows. */
template <typename Word>
__global__ void copy_rows(const unsigned char* __restrict__ src, const int32_t* idx,
                          unsigned char* __restrict__ dst, llmk::GatherShape s, int64_t rows,
                          int lanes_per_row, unsigned long long* verdict) {
  if (verdict[kFirstInvalid] != kAllValid) return;
  const int lane = threadIdx.x % lanes_per_row;
  const int64_t rows_per_block = blockDim.x / lanes_per_row;
  const int64_t words = s.row_bytes / static_cast<int64_t>(sizeof(Word));
  for (int64_t r = blockIdx.x * rows_per_block + threadIdx.x / lanes_per_row; r < rows;
       r += static_cast<int64_t>(gridDim.x) * rows_per_block) {
    // Re-checked at use (one volatile load): if idx changed after validation, skip the row and
    // report it rather than read outside src, which would poison the whole CUDA context.
    const int32_t index = *reinterpret_cast<const volatile int32_t*>(idx + r);
    if (!llmk::gather_index_valid(s, index)) {
      if (lane == 0) atomicMin(&verdict[kFirstChanged], static_cast<unsigned long long>(r));
      continue;
    }
    const Word* in = reinterpret_cast<const Word*>(src + llmk::gather_src_offset(s, r, index));
    Word* out = reinterpret_cast<Word*>(dst + llmk::gather_dst_offset(s, r));
    for (int64_t w = lane; w < words; w += lanes_per_row) out[w] = in[w];
  }
}

/* Smallest power of two >= words, capped at a warp. */
int lanes_for(int64_t words) {
  int lanes = 1;
  while (lanes < 32 && lanes < words) lanes *= 2;
  return lanes;
}

int grid_for(int64_t work_items, int per_block) {
  const int64_t blocks = (work_items + per_block - 1) / per_block;
  // Grid-stride loops cover the rest; 65535 * 8 SM-waves is plenty to fill any GPU.
  return static_cast<int>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

extern "C" int32_t llmk_kv_gather_rows_cuda(int32_t device, const void* src, const int32_t* idx,
                                            void* dst, int64_t B, int64_t H, int64_t N, int64_t K,
                                            int64_t row_bytes, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    const llmk::GatherShape s{B, H, N, K, row_bytes};
    LLMK_TRY_STATUS(llmk::check_gather_args(src, idx, dst, s));
    const int64_t rows = B * H * K;  // fits: check_gather_args checked the product
    if (rows == 0) return LLMK_OK;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    cudaStream_t st = static_cast<cudaStream_t>(stream);

    unsigned long long* verdict = nullptr;
    const size_t verdict_bytes = kVerdictSlots * sizeof(unsigned long long);
    LLMK_CUDA_TRY(cudaMallocAsync(reinterpret_cast<void**>(&verdict), verdict_bytes, st));
    // From here on the verdict buffer must be freed on every path.
    auto run = [&]() -> int32_t {
      LLMK_CUDA_TRY(cudaMemsetAsync(verdict, 0xff, verdict_bytes, st));
      llmk::launch(validate_indices, grid_for(rows, kThreads), kThreads, 0, st, idx, s, rows, verdict);
      LLMK_CUDA_CHECK_LAUNCH("validate_indices");
      const auto* in = static_cast<const unsigned char*>(src);
      auto* out = static_cast<unsigned char*>(dst);
      if (row_bytes == 0) {
        // d = 0: nothing to copy, but the indices were still validated above.
      } else if (row_bytes % 16 == 0 && aligned16(src) && aligned16(dst)) {
        const int lanes = lanes_for(row_bytes / 16);
        llmk::launch(copy_rows<uint4>, grid_for(rows, kThreads / lanes), kThreads, 0, st, in, idx, out, s, rows, lanes, verdict);
      } else {
        const int lanes = lanes_for(row_bytes);
        llmk::launch(copy_rows<unsigned char>, grid_for(rows, kThreads / lanes), kThreads, 0, st, in, idx, out, s, rows, lanes,
                                                                                      verdict);
      }
      LLMK_CUDA_CHECK_LAUNCH("copy_rows");
      unsigned long long host_verdict[kVerdictSlots];
      LLMK_CUDA_TRY(cudaMemcpyAsync(host_verdict, verdict, verdict_bytes, cudaMemcpyDeviceToHost, st));
      LLMK_CUDA_TRY(cudaStreamSynchronize(st));
      if (host_verdict[kFirstInvalid] != kAllValid) {
        const int64_t pos = static_cast<int64_t>(host_verdict[kFirstInvalid]);
        int32_t value = 0;  // read back on the same stream, ordered after the kernels
        LLMK_CUDA_TRY(cudaMemcpyAsync(&value, idx + pos, sizeof(value), cudaMemcpyDeviceToHost, st));
        LLMK_CUDA_TRY(cudaStreamSynchronize(st));
        return llmk::fail_gather_index(s, pos, value);
      }
      if (host_verdict[kFirstChanged] != kAllValid) {
        return llmk::fail_gather_index_changed(s, static_cast<int64_t>(host_verdict[kFirstChanged]));
      }
      return LLMK_OK;
    };
    const int32_t rc = run();
    const cudaError_t free_err = cudaFreeAsync(verdict, st);
    if (rc != LLMK_OK) return rc;
    if (free_err != cudaSuccess) return llmk::fail_cuda(free_err, "cudaFreeAsync", __FILE__, __LINE__);
    return LLMK_OK;
  });
}
