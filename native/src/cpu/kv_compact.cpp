/* KV cache compaction on the CPU: out of place into a per-head variable-length cache, and in
 * place by hole filling. Both validate everything they will use (cu, counts, kept slots) before
 * the first byte moves, then copy rows in parallel (streaming stores for big outputs, as the
 * dense row gather does). */
#include <algorithm>
#include <cstring>
#include <string>

#include <omp.h>

#include "cpu/isa/isa_kernels.h"
#include "error.h"
#include "kv_args.h"

namespace llmk {
namespace {

constexpr int64_t kStreamingThresholdBytes = 8 << 20;  // as cpu/gather.cpp

std::string head_name(int64_t bh, int64_t H) {
  return "[" + std::to_string(bh / H) + ", " + std::to_string(bh % H) + "]";
}

std::string entry_name(const char* array, int64_t bh, int64_t H, int64_t i) {
  return std::string(array) + "[" + std::to_string(bh / H) + ", " + std::to_string(bh % H) + ", " + std::to_string(i) + "]";
}

}  // namespace
}  // namespace llmk

extern "C" int32_t llmk_kv_gather_varlen_cpu(const void* src, const int32_t* kept, const int64_t* cu, void* dst,
                                             int64_t B, int64_t H, int64_t N, int64_t max_keep,
                                             int64_t row_bytes) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_kv_gather_varlen_args(src, kept, cu, dst, B, H, N, max_keep, row_bytes)) return rc;
    const int64_t heads = B * H;
    if (heads == 0) return LLMK_OK;
    if (int32_t rc = check_kv_cu_host(cu, heads, max_keep, "cu")) return rc;
    const int64_t total = cu[heads];
    for (int64_t bh = 0; bh < heads; ++bh) {  // every index used, before anything is written
      for (int64_t i = 0; i < cu[bh + 1] - cu[bh]; ++i) {
        const int32_t j = kept[bh * max_keep + i];
        if (j < 0 || j >= N) {
          return fail(LLMK_ERR_OUT_OF_RANGE, entry_name("kept", bh, H, i) + " = " + std::to_string(j) + " is outside [0, N = " + std::to_string(N) +
                                                 "); nothing was written");
        }
      }
    }
    if (total == 0 || row_bytes == 0) return LLMK_OK;
    if (int32_t rc = require_non_null(src, "src")) return rc;
    if (int32_t rc = require_non_null(dst, "dst")) return rc;
    if (int32_t rc = require_disjoint(dst, total * row_bytes, "dst", src, B * H * N * row_bytes, "src")) return rc;
    const auto* in = static_cast<const unsigned char*>(src);
    auto* out = static_cast<unsigned char*>(dst);
    /* Row r of dst belongs to the head bh with cu[bh] <= r < cu[bh + 1]: each thread finds the
     * head of its first row once, then walks forward. */
    const bool streaming = total * row_bytes >= kStreamingThresholdBytes;
    const IsaKernels& k = isa();
#pragma omp parallel if (total * row_bytes > (1 << 20))
    {
      const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t r_begin = total * t / threads, r_end = total * (t + 1) / threads;
      int64_t bh = std::upper_bound(cu, cu + heads + 1, r_begin) - cu - 1;
      for (int64_t r = r_begin; r < r_end; ++r) {
        while (r >= cu[bh + 1]) ++bh;
        const unsigned char* from = in + (bh * N + kept[bh * max_keep + (r - cu[bh])]) * row_bytes;
        unsigned char* to = out + r * row_bytes;
        if (streaming) k.copy_row_streaming(from, to, row_bytes); else std::memcpy(to, from, static_cast<size_t>(row_bytes));
      }
      if (streaming) k.store_fence();
    }
    return LLMK_OK;
  });
}

extern "C" int32_t llmk_kv_compact_inplace_cpu(void* cache, const int32_t* kept, const int32_t* counts, int64_t B,
                                               int64_t H, int64_t capacity, int64_t max_keep,
                                               int64_t row_bytes) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_kv_compact_args(cache, kept, counts, B, H, capacity, max_keep, row_bytes)) return rc;
    const int64_t heads = B * H;
    const int64_t limit = capacity < max_keep ? capacity : max_keep;
    for (int64_t bh = 0; bh < heads; ++bh) {  // validate every head before moving anything
      if (counts[bh] < 0 || counts[bh] > limit) {
        return fail(LLMK_ERR_OUT_OF_RANGE, "counts" + head_name(bh, H) + " = " + std::to_string(counts[bh]) +
                                               " must be in [0, min(capacity, max_keep) = " + std::to_string(limit) + "]");
      }
      const int32_t* kb = kept + bh * max_keep;
      for (int64_t i = 0; i < counts[bh]; ++i) {
        if (kb[i] < 0 || kb[i] >= capacity || (i > 0 && kb[i] <= kb[i - 1])) {
          return fail(LLMK_ERR_OUT_OF_RANGE, "kept" + head_name(bh, H) + " must be strictly ascending slots in [0, " +
                                                 std::to_string(capacity) + "); entry " + std::to_string(i) + " is " +
                                                 std::to_string(kb[i]) + "; nothing was moved");
        }
      }
    }
    if (row_bytes == 0) return LLMK_OK;
    auto* base = static_cast<unsigned char*>(cache);
    int64_t moved_rows = 0;  // big moves go around the cache, as the gathers do
    for (int64_t bh = 0; bh < heads; ++bh) moved_rows += counts[bh];
    const bool streaming = moved_rows / 2 * row_bytes >= kStreamingThresholdBytes;
    const IsaKernels& k = isa();
    /* Per head: kept slots below the count stay (a prefix of kept, as it ascends); the rest move,
     * in order, into the free slots below the count, in order. Disjoint sources and destinations. */
#pragma omp parallel if (heads > 1)
    {
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t bh = 0; bh < heads; ++bh) {
      const int32_t* kb = kept + bh * max_keep;
      const int64_t count = counts[bh];
      unsigned char* head = base + bh * capacity * row_bytes;
      int64_t stay = 0;
      while (stay < count && kb[stay] < count) ++stay;
      int64_t hole = 0, next_kept = 0;
      for (int64_t m = stay; m < count; ++m) {
        while (next_kept < stay && kb[next_kept] == hole) {  // skip slots that hold kept rows
          ++hole;
          ++next_kept;
        }
        unsigned char* to = head + hole * row_bytes;
        const unsigned char* from = head + static_cast<int64_t>(kb[m]) * row_bytes;
        if (streaming) k.copy_row_streaming(from, to, row_bytes); else std::memcpy(to, from, static_cast<size_t>(row_bytes));
        ++hole;
      }
    }
    if (streaming) k.store_fence();  // each thread fences its own weakly ordered stores
    }
    return LLMK_OK;
  });
}
