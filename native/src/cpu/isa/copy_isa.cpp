/* Row copies with non-temporal (streaming) stores, compiled once per CPU variant.
 *
 * Why: a gather writes each destination line once and does not read it back soon. With
 * ordinary stores every destination line is first read into the cache (read-for-ownership),
 * so the gather moves 3 bytes per payload byte where a large memcpy, which glibc performs with
 * streaming stores, moves 2. Streaming stores skip that read. Only worth it when the output is
 * much larger than the cache (the caller decides). See LlmkIsa.cmake for the namespace rules. */
#include <emmintrin.h>
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/isa/isa_kernels.h"

namespace llmk {
namespace LLMK_ISA_NS {

void copy_row_streaming(const unsigned char* src, unsigned char* dst, int64_t bytes) {
  int64_t i = 0;
#if defined(__AVX512F__)
  constexpr int64_t kWidth = 64;
#elif defined(__AVX__)
  constexpr int64_t kWidth = 32;
#else
  constexpr int64_t kWidth = 16;
#endif
  if ((reinterpret_cast<uintptr_t>(dst) & (kWidth - 1)) == 0) {
    for (; i + kWidth <= bytes; i += kWidth) {
#if defined(__AVX512F__)
      _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i), _mm512_loadu_si512(src + i));
#elif defined(__AVX__)
      _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
#else
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
#endif
    }
  }
  if (i < bytes) std::memcpy(dst + i, src + i, static_cast<size_t>(bytes - i));
}

void store_fence() { _mm_sfence(); }

}  // namespace LLMK_ISA_NS
}  // namespace llmk
