/* C ABI for element conversion on the CPU: validates, splits into chunks for OpenMP and calls
 * the variant's loop. */
#include <string>

#include "cpu/isa/isa_kernels.h"
#include "error.h"

namespace {
// Large enough that thread start-up is amortised, small enough to balance on many cores.
constexpr int64_t kChunk = 1 << 16;

template <typename S, typename D>
void parallel_convert(const S* src, D* dst, int64_t n, void (*fn)(const S*, D*, int64_t)) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    const int64_t len = n - begin < kChunk ? n - begin : kChunk;
    fn(src + begin, dst + begin, len);
  }
}
}  // namespace

extern "C" int32_t llmk_convert_cpu(const void* src, int32_t src_dtype, void* dst, int32_t dst_dtype,
                                    int64_t n) noexcept {
  return llmk::guarded([&]() -> int32_t {
    if (int32_t rc = llmk::require_non_negative(n, "n")) return rc;
    if (n == 0) return LLMK_OK;
    if (int32_t rc = llmk::require_non_null(src, "src")) return rc;
    if (int32_t rc = llmk::require_non_null(dst, "dst")) return rc;
    const llmk::IsaKernels& k = llmk::isa();
    const auto* f32_in = static_cast<const float*>(src);
    const auto* u16_in = static_cast<const uint16_t*>(src);
    if (src_dtype == LLMK_F32 && dst_dtype == LLMK_F16) {
      parallel_convert(f32_in, static_cast<uint16_t*>(dst), n, k.f32_to_f16);
    } else if (src_dtype == LLMK_F32 && dst_dtype == LLMK_BF16) {
      parallel_convert(f32_in, static_cast<uint16_t*>(dst), n, k.f32_to_bf16);
    } else if (src_dtype == LLMK_F16 && dst_dtype == LLMK_F32) {
      parallel_convert(u16_in, static_cast<float*>(dst), n, k.f16_to_f32);
    } else if (src_dtype == LLMK_BF16 && dst_dtype == LLMK_F32) {
      parallel_convert(u16_in, static_cast<float*>(dst), n, k.bf16_to_f32);
    } else {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT,
                        "conversion supports F32 <-> F16 and F32 <-> BF16; got dtype codes " +
                            std::to_string(src_dtype) + " -> " + std::to_string(dst_dtype));
    }
    return LLMK_OK;
  });
}
