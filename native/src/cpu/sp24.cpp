/* 2:4 pruning, checking, compression and decompression on the CPU (PyTorch's unreordered
 * layout, rules in llmk/sp24_math.h). Compression and decompression validate the whole input
 * first, so an invalid group leaves the outputs untouched. Rows are independent: OpenMP over rows. */
#include <cstdint>
#include <cstring>

#include "error.h"
#include "llmk/half_bits.h"
#include "llmk/sp24_math.h"
#include "sp24_args.h"

namespace llmk {
namespace {

int64_t elem(int32_t dtype) { return dtype == LLMK_F32 ? 4 : 2; }

/* Element e of a row as raw bits (the width of dtype). */
uint32_t bits_at(const unsigned char* row, int64_t e, int64_t eb) {
  if (eb == 4) {
    uint32_t u;
    std::memcpy(&u, row + e * 4, 4);
    return u;
  }
  uint16_t h;
  std::memcpy(&h, row + e * 2, 2);
  return h;
}

bool nonzero(uint32_t bits, int64_t eb) { return (bits & (eb == 4 ? 0x7fffffffu : 0x7fffu)) != 0; }  // -0 is zero

float value_of(uint32_t bits, int32_t dtype) {
  if (dtype == LLMK_F32) return f32_from_bits(bits);
  return dtype == LLMK_BF16 ? bf16_bits_to_f32(static_cast<uint16_t>(bits)) : f16_bits_to_f32(static_cast<uint16_t>(bits));
}

uint32_t group_mask(const unsigned char* row, int64_t g, int64_t eb) {
  uint32_t mask = 0;
  for (int i = 0; i < 4; ++i) mask |= nonzero(bits_at(row, 4 * g + i, eb), eb) ? (1u << i) : 0u;
  return mask;
}

/* First (row, group) in row-major order with more than 2 non-zeros, or row = -1. */
void find_violation(const void* w, int64_t m, int64_t k, int32_t dtype, int64_t* bad_row, int64_t* bad_group) {
  const int64_t eb = elem(dtype), groups = k / 4;
  int64_t first = m * groups;  // flat index of the first bad group
#pragma omp parallel for schedule(static) reduction(min : first)
  for (int64_t r = 0; r < m; ++r) {
    const auto* row = static_cast<const unsigned char*>(w) + r * k * eb;
    for (int64_t g = 0; g < groups; ++g) {
      if (sp24_popcount4(group_mask(row, g, eb)) > 2) {
        first = r * groups + g < first ? r * groups + g : first;
        break;
      }
    }
  }
  *bad_row = first < m * groups ? first / groups : -1;
  *bad_group = first < m * groups ? first % groups : -1;
}

}  // namespace
}  // namespace llmk

extern "C" int32_t llmk_sp24_prune_cpu(const void* w, const float* col_scale, void* out, int64_t m, int64_t k,
                                       int32_t dtype) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_sp24_prune(w, col_scale, out, m, k, dtype)) return rc;
    const int64_t eb = elem(dtype), groups = k / 4;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < m; ++r) {
      const auto* in = static_cast<const unsigned char*>(w) + r * k * eb;
      auto* dst = static_cast<unsigned char*>(out) + r * k * eb;
      for (int64_t g = 0; g < groups; ++g) {
        uint32_t bits[4];
        float score[4];
        for (int i = 0; i < 4; ++i) {
          bits[i] = bits_at(in, 4 * g + i, eb);
          const float v = value_of(bits[i], dtype);
          score[i] = (v < 0 ? -v : v) * (col_scale ? col_scale[4 * g + i] : 1.0f);
        }
        const uint32_t code = sp24_code_from_scores(score);
        for (int i = 0; i < 4; ++i) {
          const uint32_t b = (i == sp24_idx0(code) || i == sp24_idx1(code)) ? bits[i] : 0u;
          std::memcpy(dst + (4 * g + i) * eb, &b, static_cast<size_t>(eb));  // little endian: low bytes
        }
      }
    }
    return LLMK_OK;
  });
}

extern "C" int32_t llmk_sp24_check_cpu(const void* w, int64_t m, int64_t k, int32_t dtype, int64_t* bad_row,
                                       int64_t* bad_group) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_sp24_shape(m, k, dtype)) return rc;
    if (int32_t rc = require_non_null(bad_row, "bad_row")) return rc;
    if (int32_t rc = require_non_null(bad_group, "bad_group")) return rc;
    *bad_row = *bad_group = -1;
    if (m * k == 0) return LLMK_OK;
    if (int32_t rc = require_non_null(w, "w")) return rc;
    find_violation(w, m, k, dtype, bad_row, bad_group);
    return LLMK_OK;
  });
}

extern "C" int32_t llmk_sp24_compress_cpu(const void* w, void* values, uint16_t* meta, int64_t m, int64_t k,
                                          int32_t dtype) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_sp24_compress(w, values, meta, m, k, dtype)) return rc;
    if (m * k == 0) return LLMK_OK;
    int64_t bad_row = -1, bad_group = -1;
    find_violation(w, m, k, dtype, &bad_row, &bad_group);
    if (bad_row >= 0) return fail_sp24_group(bad_row, bad_group, "more than 2 non-zeros, so W is not 2:4");
    const int64_t eb = elem(dtype), groups = k / 4;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < m; ++r) {
      const auto* in = static_cast<const unsigned char*>(w) + r * k * eb;
      auto* vals = static_cast<unsigned char*>(values) + r * (k / 2) * eb;
      uint16_t* mrow = meta + r * (k / 16);
      for (int64_t q = 0; q < k / 16; ++q) mrow[q] = 0;
      for (int64_t g = 0; g < groups; ++g) {
        const uint32_t code = sp24_code_from_mask(group_mask(in, g, eb));
        std::memcpy(vals + (2 * g) * eb, in + (4 * g + sp24_idx0(code)) * eb, static_cast<size_t>(eb));
        std::memcpy(vals + (2 * g + 1) * eb, in + (4 * g + sp24_idx1(code)) * eb, static_cast<size_t>(eb));
        mrow[g >> 2] = static_cast<uint16_t>(mrow[g >> 2] | (code << ((g & 3) * 4)));
      }
    }
    return LLMK_OK;
  });
}

extern "C" int32_t llmk_sp24_decompress_cpu(const void* values, const uint16_t* meta, void* w, int64_t m, int64_t k,
                                            int32_t dtype) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_sp24_compress(w, values, meta, m, k, dtype)) return rc;
    if (m * k == 0) return LLMK_OK;
    const int64_t groups = k / 4;
    for (int64_t r = 0; r < m; ++r) {  // validate every nibble first
      for (int64_t g = 0; g < groups; ++g) {
        if (!sp24_code_valid(sp24_group_code(meta + r * (k / 16), g))) {
          return fail_sp24_group(r, g, "metadata nibble must have idx0 < idx1");
        }
      }
    }
    const int64_t eb = elem(dtype);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < m; ++r) {
      const auto* vals = static_cast<const unsigned char*>(values) + r * (k / 2) * eb;
      auto* out = static_cast<unsigned char*>(w) + r * k * eb;
      std::memset(out, 0, static_cast<size_t>(k * eb));
      for (int64_t g = 0; g < groups; ++g) {
        const uint32_t code = sp24_group_code(meta + r * (k / 16), g);
        std::memcpy(out + (4 * g + sp24_idx0(code)) * eb, vals + (2 * g) * eb, static_cast<size_t>(eb));
        std::memcpy(out + (4 * g + sp24_idx1(code)) * eb, vals + (2 * g + 1) * eb, static_cast<size_t>(eb));
      }
    }
    return LLMK_OK;
  });
}
