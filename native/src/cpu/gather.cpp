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
    if (total >= kStreamingThresholdBytes) {
      const llmk::IsaKernels& isa = llmk::isa();
#pragma omp parallel
      {
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
          isa.copy_row_streaming(in + llmk::gather_src_offset(s, r, idx[r]), out + llmk::gather_dst_offset(s, r),
                                 row_bytes);
        }
        isa.store_fence();  // streaming stores are weakly ordered: publish them before returning
      }
      return LLMK_OK;
    }
    // Below ~1 MiB thread start-up costs more than the copy.
#pragma omp parallel for schedule(static) if (total > (1 << 20))
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(out + llmk::gather_dst_offset(s, r), in + llmk::gather_src_offset(s, r, idx[r]),
                  static_cast<size_t>(row_bytes));
    }
    return LLMK_OK;
  });
}
