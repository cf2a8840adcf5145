/* Library-level entry points: version, threads, aligned host memory. */
#include <cstdint>
#include <cstdlib>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <sys/mman.h>

#include "error.h"

namespace {
constexpr int64_t kHostAlignment = 64;
// Large tensors (KV caches, weights) are read at random rows: with 4 KiB pages every few rows
// cost a TLB miss. Where transparent huge pages are in "madvise" mode (the default on many
// distributions) memory only gets 2 MiB pages if asked for, so large allocations are aligned
// to 2 MiB and advised. Best effort: madvise failing changes nothing but speed.
constexpr int64_t kHugePage = 2 << 20;
constexpr int64_t kHugePageThreshold = 4 << 20;
}

extern "C" int32_t llmk_version(void) noexcept { return 0 * 10000 + 1 * 100 + 0; }

extern "C" int32_t llmk_cpu_threads(void) noexcept {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

extern "C" int32_t llmk_host_alloc(int64_t bytes, void** out) noexcept {
  return llmk::guarded([&]() -> int32_t {
    if (int32_t rc = llmk::require_non_null(out, "out")) return rc;
    if (int32_t rc = llmk::require_non_negative(bytes, "bytes")) return rc;
    *out = nullptr;
    // aligned_alloc needs a size that is a multiple of the alignment; round up (and never 0).
    if (bytes > INT64_MAX - kHostAlignment) {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "bytes too large: " + std::to_string(bytes));
    }
    const bool huge = bytes >= kHugePageThreshold && bytes <= INT64_MAX - kHugePage;
    const int64_t alignment = huge ? kHugePage : kHostAlignment;
    const int64_t padded = (bytes + alignment - 1) / alignment * alignment;
    void* p = std::aligned_alloc(static_cast<size_t>(alignment), static_cast<size_t>(padded > 0 ? padded : alignment));
#ifdef MADV_HUGEPAGE
    if (p && huge) madvise(p, static_cast<size_t>(padded), MADV_HUGEPAGE);
#endif
    if (!p) {
      return llmk::fail(LLMK_ERR_OUT_OF_MEMORY,
                        "host allocation of " + std::to_string(bytes) + " bytes failed");
    }
    *out = p;
    return LLMK_OK;
  });
}

extern "C" int32_t llmk_host_free(void* ptr) noexcept {
  std::free(ptr);
  return LLMK_OK;
}
