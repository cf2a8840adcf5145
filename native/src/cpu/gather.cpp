/* Row gather on the CPU: dst[b, h, k, :] = src[b, h, idx[b, h, k], :].
 * Two passes: validate every index (so a bad one leaves dst untouched), then copy rows in
 * parallel. Small outputs: one memcpy per row. Large outputs: streaming stores of the CPU
 * variant (cpu/isa/copy_isa.cpp), which avoid reading each destination line before writing it. */
#include <cstring>

#include "cpu/isa/isa_kernels.h"
#include "error.h"
#include "gather_args.h"

namespace {
// Outputs at least this large go around the cache (streaming stores): far bigger than any L2,
// and a KV compaction output is not read back right away.
constexpr int64_t kStreamingThresholdBytes = 8 << 20;
}  // namespace

extern "C" int32_t llmk_kv_gather_rows_cpu(const void* src, const int32_t* idx, void* dst, int64_t B,
                                           int64_t H, int64_t N, int64_t K,
                                           int64_t row_bytes) noexcept {
  return llmk::guarded([&]() -> int32_t {
    const llmk::GatherShape s{B, H, N, K, row_bytes};
    if (int32_t rc = llmk::check_gather_args(src, idx, dst, s)) return rc;
    const int64_t rows = B * H * K;  // fits: check_gather_args checked the product
    if (rows == 0) return LLMK_OK;

    int64_t first_bad = rows;  // lowest flat position holding an invalid index
#pragma omp parallel for reduction(min : first_bad) schedule(static) if (rows > 65536)
    for (int64_t r = 0; r < rows; ++r) {
      if (!llmk::gather_index_valid(s, idx[r]) && r < first_bad) first_bad = r;
    }
    if (first_bad < rows) return llmk::fail_gather_index(s, first_bad, idx[first_bad]);
    if (row_bytes == 0) return LLMK_OK;

    const auto* in = static_cast<const unsigned char*>(src);
    auto* out = static_cast<unsigned char*>(dst);
    const int64_t total = rows * row_bytes;
    // Each index is re-checked as it is used: if another thread changed idx after validation,
    // the row is skipped and reported, instead of reading outside src (which would kill the JVM).
    int64_t first_changed = rows;
    const bool streaming = total >= kStreamingThresholdBytes;
    const llmk::IsaKernels& isa = llmk::isa();
#pragma omp parallel if (total > (1 << 20)) reduction(min : first_changed)
    {
#pragma omp for schedule(static) nowait
      for (int64_t r = 0; r < rows; ++r) {
        // One explicit load: the compiler must not re-read idx[r] after the check below.
        const int32_t index = __atomic_load_n(idx + r, __ATOMIC_RELAXED);
        if (!llmk::gather_index_valid(s, index)) {
          if (r < first_changed) first_changed = r;
          continue;
        }
        const unsigned char* from = in + llmk::gather_src_offset(s, r, index);
        unsigned char* to = out + llmk::gather_dst_offset(s, r);
        if (streaming) {
          isa.copy_row_streaming(from, to, row_bytes);
        } else {
          std::memcpy(to, from, static_cast<size_t>(row_bytes));
        }
      }
      // Streaming stores are weakly ordered: each thread fences its own before the region ends.
      if (streaming) isa.store_fence();
    }
    if (first_changed < rows) return llmk::fail_gather_index_changed(s, first_changed);
    return LLMK_OK;
  });
}
