#include "gather_args.h"

#include <string>

#include "error.h"

namespace llmk {

int32_t check_gather_args(const void* src, const int32_t* idx, const void* dst, const GatherShape& s) {
  if (int32_t rc = require_non_negative(s.B, "B")) return rc;
  if (int32_t rc = require_non_negative(s.H, "H")) return rc;
  if (int32_t rc = require_non_negative(s.N, "N")) return rc;
  if (int32_t rc = require_non_negative(s.K, "K")) return rc;
  if (int32_t rc = require_non_negative(s.row_bytes, "row_bytes")) return rc;
  const int64_t src_dims[] = {s.B, s.H, s.N, s.row_bytes};
  const int64_t dst_dims[] = {s.B, s.H, s.K, s.row_bytes};
  const int64_t idx_dims[] = {s.B, s.H, s.K};
  int64_t src_bytes = 0, dst_bytes = 0, rows = 0;
  if (int32_t rc = require_product(src_dims, 4, "src bytes", &src_bytes)) return rc;
  if (int32_t rc = require_product(dst_dims, 4, "dst bytes", &dst_bytes)) return rc;
  if (int32_t rc = require_product(idx_dims, 3, "idx elements", &rows)) return rc;
  if (rows == 0) return LLMK_OK;  // nothing to check, read or write; pointers may be null
  // Indices are checked even when rows are empty (d = 0): every backend must agree on errors.
  if (s.N == 0) {
    return fail(LLMK_ERR_OUT_OF_RANGE, "idx: K = " + std::to_string(s.K) +
                                           " rows requested from a source with N = 0 rows");
  }
  if (int32_t rc = require_non_null(idx, "idx")) return rc;
  if (dst_bytes == 0) return LLMK_OK;  // d = 0: only idx is read
  if (int32_t rc = require_non_null(src, "src")) return rc;
  if (int32_t rc = require_non_null(dst, "dst")) return rc;
  if (int32_t rc = require_disjoint(dst, dst_bytes, "dst", src, src_bytes, "src")) return rc;
  return require_disjoint(dst, dst_bytes, "dst", idx, rows * static_cast<int64_t>(sizeof(int32_t)), "idx");
}

int32_t fail_gather_index(const GatherShape& s, int64_t pos, int32_t value) {
  const int64_t k = pos % s.K;
  const int64_t h = (pos / s.K) % s.H;
  const int64_t b = pos / (s.K * s.H);
  return fail(LLMK_ERR_OUT_OF_RANGE,
              "idx[" + std::to_string(b) + ", " + std::to_string(h) + ", " + std::to_string(k) +
                  "] = " + std::to_string(value) + " is outside [0, N = " + std::to_string(s.N) +
                  "); nothing was written");
}

int32_t fail_gather_index_changed(const GatherShape& s, int64_t pos) {
  return fail(LLMK_ERR_INVALID_ARGUMENT,
              "idx was modified while the gather ran (flat position " + std::to_string(pos) + " of " +
                  std::to_string(s.B * s.H * s.K) +
                  " became invalid after validation); that row was skipped and dst is partially written");
}

}  // namespace llmk
