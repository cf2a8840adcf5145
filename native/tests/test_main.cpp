// Native tests of what Java cannot see directly: index math at sizes past 2^31, and that the
// C ABI reports errors as status + message without writing anything.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "llmk/half_bits.h"
#include "llmk/index_math.h"
#include "llmk/llmk.h"

#include "expect.h"

static void index_math_is_64_bit() {
  // 8 heads x 2^20 rows x 512 bytes: offsets pass 2^32.
  const llmk::GatherShape s{1, 8, 1 << 20, 4, 512};
  const int64_t r = 7 * 4 + 3;  // head 7, k 3
  EXPECT(llmk::gather_src_offset(s, r, (1 << 20) - 1) == (7LL * (1 << 20) + (1 << 20) - 1) * 512);
  int64_t out = 0;
  EXPECT(!llmk::checked_mul(INT64_MAX / 2 + 1, 2, &out));
  EXPECT(llmk::checked_mul(1LL << 31, 1LL << 31, &out) && out == (1LL << 62));
}

static void half_rounding_ties_to_even() {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even -> 1.0 (0x3c00).
  EXPECT(llmk::f32_to_f16_bits(1.0f + 0x1p-11f) == 0x3c00);
  EXPECT(llmk::f32_to_f16_bits(1.0f + 3 * 0x1p-11f) == 0x3c02);
  EXPECT(llmk::f32_to_f16_bits(65520.0f) == 0x7c00);
  EXPECT(llmk::f32_to_f16_bits(65519.99f) == 0x7bff);
  EXPECT(llmk::f32_to_bf16_bits(1.0f + 0x1p-8f) == 0x3f80);
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = llmk::f16_bits_to_f32(static_cast<uint16_t>(h));
    if (f == f) EXPECT(llmk::f32_to_f16_bits(f) == h);
  }
}

static void gather_rejects_bad_index_without_writing() {
  std::vector<float> src(2 * 3 * 4, 1.0f), dst(2 * 2 * 4, -7.0f);
  const int32_t idx[] = {0, 2, 1, 3 /* bad: N = 3 */};
  const int32_t rc = llmk_kv_gather_rows_cpu(src.data(), idx, dst.data(), 1, 2, 3, 2, 16);
  EXPECT(rc == LLMK_ERR_OUT_OF_RANGE);
  EXPECT(std::strstr(llmk_last_error(), "idx[0, 1, 1] = 3") != nullptr);
  for (float v : dst) EXPECT(v == -7.0f);
  EXPECT(llmk_kv_gather_rows_cpu(nullptr, idx, dst.data(), 1, 2, 3, 2, 16) == LLMK_ERR_INVALID_ARGUMENT);
  EXPECT(llmk_kv_gather_rows_cpu(src.data(), idx, dst.data(), 1, -2, 3, 2, 16) == LLMK_ERR_INVALID_ARGUMENT);
  EXPECT(llmk_kv_gather_rows_cpu(src.data(), idx, dst.data(), 1LL << 40, 1LL << 40, 3, 2, 16) ==
         LLMK_ERR_INVALID_ARGUMENT);
  // Rows of zero bytes still have their indices checked (every backend agrees on errors).
  EXPECT(llmk_kv_gather_rows_cpu(src.data(), idx, dst.data(), 1, 2, 3, 2, 0) == LLMK_ERR_OUT_OF_RANGE);
  const int32_t good[] = {0, 2, 1, 2};
  EXPECT(llmk_kv_gather_rows_cpu(nullptr, good, nullptr, 1, 2, 3, 2, 0) == LLMK_OK);
  EXPECT(llmk_host_alloc(INT64_MAX - 10, nullptr) == LLMK_ERR_INVALID_ARGUMENT);
  void* p = nullptr;
  EXPECT(llmk_host_alloc(INT64_MAX - 10, &p) == LLMK_ERR_INVALID_ARGUMENT && p == nullptr);
}

static void gather_rejects_aliasing_at_the_c_boundary() {
  std::vector<float> buf(64, 0.0f);
  const int32_t idx[] = {0, 1};
  // dst overlapping src (in-place) and dst overlapping idx are refused before anything runs.
  EXPECT(llmk_kv_gather_rows_cpu(buf.data(), idx, buf.data() + 4, 1, 1, 4, 2, 16) == LLMK_ERR_INVALID_ARGUMENT);
  EXPECT(std::strstr(llmk_last_error(), "dst must not overlap src") != nullptr);
  std::vector<int32_t> shared(64, 0);
  EXPECT(llmk_kv_gather_rows_cpu(buf.data(), shared.data(), shared.data() + 1, 1, 1, 4, 2, 4) ==
         LLMK_ERR_INVALID_ARGUMENT);
}

// Another thread flips an index between valid and invalid while gathers run: each call must
// return a status (OK, out of range, or "idx was modified"), never read outside src.
static void gather_survives_concurrent_index_changes() {
  const int64_t n = 1 << 12, k = 1 << 14, row = 64;
  std::vector<unsigned char> src(n * row, 1), dst(k * row, 0);
  std::vector<int32_t> idx(k, 0);
  std::atomic<bool> stop{false};
  std::thread flipper([&] {
    while (!stop.load()) {
      __atomic_store_n(&idx[k - 1], 1 << 30, __ATOMIC_RELAXED);
      __atomic_store_n(&idx[k - 1], 5, __ATOMIC_RELAXED);
    }
  });
  int statuses[8] = {0};
  for (int i = 0; i < 2000; ++i) {
    const int32_t rc = llmk_kv_gather_rows_cpu(src.data(), idx.data(), dst.data(), 1, 1, n, k, row);
    if (rc >= 0 && rc < 8) ++statuses[rc];
  }
  stop = true;
  flipper.join();
  EXPECT(statuses[LLMK_OK] + statuses[LLMK_ERR_OUT_OF_RANGE] + statuses[LLMK_ERR_INVALID_ARGUMENT] == 2000);
}

static void every_cpu_variant_converts_identically() {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  for (const char* v : {"x86-64", "avx2", "avx512"}) {
    if (!llmk_cpu_supports_variant(v)) continue;
    EXPECT(llmk_cpu_set_variant(v) == LLMK_OK);
    std::vector<float> f(65536);
    std::vector<uint16_t> back(65536);
    EXPECT(llmk_convert_cpu(all.data(), LLMK_F16, f.data(), LLMK_F32, 65536) == LLMK_OK);
    EXPECT(llmk_convert_cpu(f.data(), LLMK_F32, back.data(), LLMK_F16, 65536) == LLMK_OK);
    for (uint32_t i = 0; i < 65536; ++i) {
      EXPECT(llmk::f32_bits(f[i]) == llmk::f32_bits(llmk::f16_bits_to_f32(all[i])));
      EXPECT(back[i] == llmk::f32_to_f16_bits(f[i]));
    }
  }
  EXPECT(llmk_cpu_set_variant("sse9") == LLMK_ERR_INVALID_ARGUMENT);
}

int main() {
  index_math_is_64_bit();
  half_rounding_ties_to_even();
  gather_rejects_bad_index_without_writing();
  gather_rejects_aliasing_at_the_c_boundary();
  gather_survives_concurrent_index_changes();
  every_cpu_variant_converts_identically();
  std::printf("%s (%d failures)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}
