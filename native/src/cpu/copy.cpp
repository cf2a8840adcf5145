/* Parallel host copy: split into per-thread chunks of whole cache lines, each one memcpy. */
#include <cstring>

#include "error.h"

namespace {
// Below this, one thread's memcpy beats waking the pool.
constexpr int64_t kParallelThreshold = 1 << 20;
constexpr int64_t kChunk = 1 << 20;
}  // namespace

extern "C" int32_t llmk_copy_cpu(void* dst, const void* src, int64_t bytes) noexcept {
  return llmk::guarded([&]() -> int32_t {
    if (int32_t rc = llmk::require_non_negative(bytes, "bytes")) return rc;
    if (bytes == 0) return LLMK_OK;
    if (int32_t rc = llmk::require_non_null(dst, "dst")) return rc;
    if (int32_t rc = llmk::require_non_null(src, "src")) return rc;
    auto* out = static_cast<unsigned char*>(dst);
    const auto* in = static_cast<const unsigned char*>(src);
    if (out < in + bytes && in < out + bytes) {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "dst and src ranges overlap");
    }
    const int64_t chunks = (bytes + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (bytes > kParallelThreshold)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t begin = c * kChunk;
      const int64_t len = bytes - begin < kChunk ? bytes - begin : kChunk;
      std::memcpy(out + begin, in + begin, static_cast<size_t>(len));
    }
    return LLMK_OK;
  });
}
