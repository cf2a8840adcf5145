/* Merge of two attention states over disjoint key sets (llmk_attn_merge_cuda), the same formula
 * as the CPU kernel: m = max(lse_a, lse_b); both -inf gives out 0 and lse -inf, otherwise
 * w = exp(lse - m), out = out_a w_a / (w_a + w_b) + out_b w_b / (w_a + w_b),
 * lse = m + log(w_a + w_b).
 *
 * One warp per row (grid-stride). In-place calls alias out/lse with one input exactly: every
 * element of out is read and written by the same lane, and the row's lse is written by lane 0
 * only after __syncwarp, when every lane has read lse_a / lse_b of that row. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>

#include "attention_args.h"
#include "attention_common.cuh"
#include "cce_common.cuh"
#include "cuda_check.cuh"
#include "launch.cuh"

namespace llmk {
namespace attn {
namespace {

constexpr int kMergeThreads = 256;
constexpr int kMergeWarps = kMergeThreads / 32;

/* No __restrict__: out may alias out_a or out_b, lse may alias lse_a or lse_b. */
template <typename T>
__global__ void __launch_bounds__(kMergeThreads) merge_states(const T* out_a, const float* lse_a, const T* out_b,
                                                               const float* lse_b, T* out, float* lse, int64_t rows,
                                                               int64_t d) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kMergeWarps;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kMergeWarps + (threadIdx.x >> 5); r < rows; r += stride) {
    const float la = lse_a[r], lb = lse_b[r];
    const float m = la > lb ? la : lb;
    float ca = 0.0f, cb = 0.0f, l = -INFINITY;
    const bool empty = m == -INFINITY;
    if (!empty) {
      const float wa = expf(la - m), wb = expf(lb - m), sum = wa + wb;
      ca = wa / sum;
      cb = wb / sum;
      l = m + logf(sum);
    }
    const int64_t off = r * d;
    for (int64_t j = lane; j < d; j += 32) {
      const float x = empty ? 0.0f : cce::to_f32(out_a[off + j]) * ca + cce::to_f32(out_b[off + j]) * cb;
      out[off + j] = cce::from_f32<T>(x);
    }
    __syncwarp();  // every lane has read lse_a[r] / lse_b[r] before an aliasing lse[r] changes
    if (lane == 0) lse[r] = l;
  }
}

template <typename T>
cudaError_t launch_merge(const void* out_a, const float* lse_a, const void* out_b, const float* lse_b, void* out,
                         float* lse, int64_t rows, int64_t d, cudaStream_t st) {
  const int64_t blocks = (rows + kMergeWarps - 1) / kMergeWarps;
  const unsigned grid = static_cast<unsigned>(blocks < 65536 ? blocks : 65536);  // the warp loop does the rest
  llmk::launch(merge_states<T>, grid, kMergeThreads, 0, st, static_cast<const T*>(out_a), lse_a, static_cast<const T*>(out_b),
                                                   lse_b, static_cast<T*>(out), lse, rows, d);
  return cudaGetLastError();
}

}  // namespace
}  // namespace attn
}  // namespace llmk

extern "C" int32_t llmk_attn_merge_cuda(int32_t device, const void* out_a, const float* lse_a, const void* out_b,
                                        const float* lse_b, void* out, float* lse, int64_t rows, int64_t d,
                                        int32_t dtype, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk::attn;
    LLMK_TRY_STATUS(llmk::check_merge_args(out_a, lse_a, out_b, lse_b, out, lse, rows, d, dtype));
    if (rows == 0) return LLMK_OK;
    const int64_t eb = dtype == LLMK_F32 ? 4 : 2;
    const struct { const void* p; int64_t alignment; const char* name; } arrays[] = {
        {out_a, eb, "out_a"}, {out_b, eb, "out_b"}, {out, eb, "out"}, {lse_a, 4, "lse_a"}, {lse_b, 4, "lse_b"},
        {lse, 4, "lse"}};
    for (const auto& x : arrays) LLMK_TRY_STATUS(require_aligned(reinterpret_cast<int64_t>(x.p), x.alignment, x.name));
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    cudaError_t err;
    switch (dtype) {
      case LLMK_F32: err = launch_merge<float>(out_a, lse_a, out_b, lse_b, out, lse, rows, d, st); break;
      case LLMK_F16: err = launch_merge<__half>(out_a, lse_a, out_b, lse_b, out, lse, rows, d, st); break;
      default: err = launch_merge<__nv_bfloat16>(out_a, lse_a, out_b, lse_b, out, lse, rows, d, st); break;
    }
    if (err != cudaSuccess) return llmk::fail_cuda(err, "launch of merge_states", __FILE__, __LINE__);
    return LLMK_OK;
  });
}
