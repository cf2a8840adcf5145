/* Per-head top-k selection on the GPU, exactly the CPU's set (llmk/kv_math.h's total order).
 *
 * Every token maps to a unique 64-bit key whose unsigned order is the selection order:
 *   forced (sinks, recent):  bit 63 set, then (2^31 - 1 - j)
 *   others:                  order-preserving uint32 of the score (-0 folded onto +0, since
 *                            kv_before treats them as equal) in bits 62..31, then (2^31 - 1 - j)
 * so higher keys come first and equal scores fall to the lower position. One CTA per head finds
 * the budget-th largest key by an 8-pass radix select (8-bit digits, shared-memory histogram with
 * warp-aggregated atomics, so long runs of tied scores do not serialise on one bin); the kept
 * tokens are those with key >= that key (exactly `budget` of them, keys being unique), written in
 * ascending position order by a block-wide ballot scan, then -1 up to max_keep.
 *
 * Validation first (like cuda/gather.cu): a kernel records the first bad budget and the first NaN
 * score in a device verdict; the select kernel writes nothing if either is set; the host reads the
 * verdict back and reports with the CPU's text. The select kernel re-reads the budget and bounds
 * every write, so a concurrent change of budgets or scores is reported, never out of bounds. */
#include <string>
#include <vector>

#include "cuda_check.cuh"
#include "kv_args.h"
#include "kv_common.cuh"
#include "launch.cuh"
#include "llmk/kv_math.h"

namespace {

using llmk::kv::kClean;
constexpr int kThreads = 512;  // select kernel: one CTA per head
constexpr int kWarps = kThreads / 32;
constexpr int kCheckThreads = 256;
constexpr int kBadBudget = 0, kNanScore = 1, kChanged = 2, kSlots = 3;

__global__ void validate_select(const float* __restrict__ scores, const int32_t* __restrict__ budgets, int64_t heads,
                                int64_t n, int64_t lo, int64_t hi, unsigned long long* verdict) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  for (int64_t h = first; h < heads; h += stride) {
    const int32_t b = budgets[h];
    if (b < lo || b > hi) atomicMin(&verdict[kBadBudget], static_cast<unsigned long long>(h));
  }
  const int64_t total = heads * n;
  for (int64_t i = first; i < total; i += stride) {
    if (isnan(scores[i])) atomicMin(&verdict[kNanScore], static_cast<unsigned long long>(i));
  }
}

__device__ __forceinline__ unsigned long long select_key(const float* row, int64_t j, int64_t n, int64_t sinks,
                                                         int64_t recent) {
  const unsigned long long low = static_cast<unsigned long long>(0x7fffffffLL - j);
  if (llmk::kv_forced(j, n, sinks, recent)) return (1ull << 63) | low;
  float s = row[j];
  if (s == 0.0f) s = 0.0f;  // -0 == +0 in kv_before
  const unsigned int u = __float_as_uint(s);
  const unsigned int ordered = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return (static_cast<unsigned long long>(ordered) << 31) | low;
}

__global__ void __launch_bounds__(kThreads) select_topk(const float* __restrict__ scores, const int32_t* budgets,
                                                        int32_t* __restrict__ kept, int64_t heads, int64_t n,
                                                        int64_t sinks, int64_t recent, int64_t max_keep, int64_t lo,
                                                        int64_t hi, unsigned long long* verdict) {
  if (verdict[kBadBudget] != kClean || verdict[kNanScore] != kClean) return;
  __shared__ unsigned int hist[256];
  __shared__ unsigned int warp_total[kWarps];
  __shared__ unsigned long long s_prefix;
  __shared__ unsigned int s_remaining;
  __shared__ int64_t s_budget;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  for (int64_t bh = blockIdx.x; bh < heads; bh += gridDim.x) {
    if (tid == 0) s_budget = *reinterpret_cast<const volatile int32_t*>(budgets + bh);
    __syncthreads();
    const int64_t budget = s_budget;
    const float* row = scores + bh * n;
    int32_t* out = kept + bh * max_keep;
    if (budget < lo || budget > hi) {  // changed since validation: write nothing for this head
      if (tid == 0) atomicMin(&verdict[kChanged], static_cast<unsigned long long>(bh));
      __syncthreads();  // s_budget is rewritten next iteration
      continue;
    }
    int64_t written = 0;
    if (budget > 0) {
      // Radix select of the budget-th largest key (budget == n keeps everything: threshold 0).
      unsigned long long prefix = 0, mask = 0;
      unsigned int remaining = static_cast<unsigned int>(budget);
      if (budget < n) {
        for (int shift = 56; shift >= 0; shift -= 8) {
          for (int i = tid; i < 256; i += kThreads) hist[i] = 0;
          __syncthreads();
          for (int64_t base = 0; base < n; base += kThreads) {  // uniform trip count: full warps
            const int64_t j = base + tid;
            unsigned int bin = 256;
            if (j < n) {
              const unsigned long long key = select_key(row, j, n, sinks, recent);
              if ((key & mask) == prefix) bin = static_cast<unsigned int>(key >> shift) & 255u;
            }
            const unsigned int peers = __match_any_sync(0xffffffffu, bin);
            if (bin < 256 && lane == __ffs(peers) - 1) atomicAdd(&hist[bin], __popc(peers));
          }
          __syncthreads();
          if (tid == 0) {
            unsigned int acc = 0, digit = 0, rem = remaining;
            for (int d = 255; d >= 0; --d) {
              const unsigned int c = hist[d];
              if (acc + c >= remaining) {
                digit = static_cast<unsigned int>(d);
                rem = remaining - acc;
                break;
              }
              acc += c;
            }
            s_prefix = prefix | (static_cast<unsigned long long>(digit) << shift);
            s_remaining = rem;
          }
          __syncthreads();
          prefix = s_prefix;
          remaining = s_remaining;
          mask |= 255ull << shift;
        }
      }
      const unsigned long long threshold = prefix;
      // Kept tokens (key >= threshold) in ascending position order.
      for (int64_t base = 0; base < n; base += kThreads) {
        const int64_t j = base + tid;
        const bool take = j < n && select_key(row, j, n, sinks, recent) >= threshold;
        const unsigned int ballot = __ballot_sync(0xffffffffu, take);
        if (lane == 0) warp_total[warp] = __popc(ballot);
        __syncthreads();
        int64_t offset = 0, chunk = 0;
        for (int w = 0; w < kWarps; ++w) {
          const unsigned int c = warp_total[w];
          offset += w < warp ? c : 0;
          chunk += c;
        }
        if (take) {
          const int64_t idx = written + offset + __popc(ballot & ((1u << lane) - 1u));
          if (idx < budget) out[idx] = static_cast<int32_t>(j);
        }
        written += chunk;
        __syncthreads();  // warp_total is rewritten next chunk
      }
      if (written != budget && tid == 0) atomicMin(&verdict[kChanged], static_cast<unsigned long long>(bh));
    }
    for (int64_t i = budget + tid; i < max_keep; i += kThreads) out[i] = -1;
    __syncthreads();  // s_budget and the shared scratch are reused by the next head
  }
}

}  // namespace

extern "C" int32_t llmk_kv_select_cuda(const llmk_kv_select_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_kv_select_args(args));
    const llmk_kv_select_args& a = *args;
    const int64_t heads = a.batch * a.heads;
    if (heads == 0) return LLMK_OK;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(static_cast<int32_t>(a.device)));
    cudaStream_t st = reinterpret_cast<cudaStream_t>(a.stream);
    const auto* scores = reinterpret_cast<const float*>(a.scores);
    const auto* budgets = reinterpret_cast<const int32_t*>(a.budgets);
    auto* kept = reinterpret_cast<int32_t*>(a.kept);
    const int64_t lo = llmk::kv_forced_count(a.n, a.sinks, a.recent);
    const int64_t hi = a.n < a.max_keep ? a.n : a.max_keep;

    llmk::kv::Scratch verdict_buf(st);
    unsigned long long* verdict = nullptr;
    LLMK_TRY_STATUS(verdict_buf.alloc_verdict(kSlots, &verdict));
    const int64_t checks = heads * a.n > heads ? heads * a.n : heads;
    llmk::launch(validate_select, llmk::kv::grid_for(checks, kCheckThreads), kCheckThreads, 0, st, scores, budgets, heads, a.n, lo,
                                                                                          hi, verdict);
    LLMK_CUDA_CHECK_LAUNCH("validate_select");
    if (a.max_keep > 0) {  // max_keep == 0: every budget is 0 and kept is empty
      const int grid = static_cast<int>(heads < 65535 ? heads : 65535);
      llmk::launch(select_topk, grid, kThreads, 0, st, scores, budgets, kept, heads, a.n, a.sinks, a.recent, a.max_keep, lo, hi,
                                             verdict);
      LLMK_CUDA_CHECK_LAUNCH("select_topk");
    }
    unsigned long long v[kSlots];
    LLMK_CUDA_TRY(cudaMemcpyAsync(v, verdict, sizeof v, cudaMemcpyDeviceToHost, st));
    LLMK_CUDA_TRY(cudaStreamSynchronize(st));
    LLMK_TRY_STATUS(verdict_buf.release());
    if (v[kBadBudget] != kClean) {
      std::vector<int32_t> host(static_cast<size_t>(heads));
      LLMK_CUDA_TRY(cudaMemcpyAsync(host.data(), budgets, host.size() * sizeof(int32_t), cudaMemcpyDeviceToHost, st));
      LLMK_CUDA_TRY(cudaStreamSynchronize(st));
      LLMK_TRY_STATUS(llmk::check_kv_budgets_host(a, host.data()));  // the CPU's message
      return llmk::fail(LLMK_ERR_OUT_OF_RANGE, "budgets changed while the selection ran; nothing was written");
    }
    if (v[kNanScore] != kClean) {
      const int64_t i = static_cast<int64_t>(v[kNanScore]);
      const int64_t bh = i / a.n;
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "scores[" + std::to_string(bh / a.heads) + ", " +
                                                       std::to_string(bh % a.heads) + ", " + std::to_string(i % a.n) +
                                                       "] is NaN");
    }
    if (v[kChanged] != kClean) {
      const int64_t bh = static_cast<int64_t>(v[kChanged]);
      return llmk::fail(LLMK_ERR_OUT_OF_RANGE, "budgets or scores of head [" + std::to_string(bh / a.heads) + ", " +
                                                   std::to_string(bh % a.heads) +
                                                   "] changed while the selection ran; kept is partly written");
    }
    return LLMK_OK;
  });
}
