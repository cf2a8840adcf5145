#include "sp24_args.h"

#include <string>

#include "error.h"

namespace llmk {
namespace {

int32_t invalid(const std::string& msg) { return fail(LLMK_ERR_INVALID_ARGUMENT, msg); }
int64_t elem(int64_t dtype) { return dtype == LLMK_F32 ? 4 : 2; }
const void* p(int64_t a) { return reinterpret_cast<const void*>(a); }

}  // namespace

int32_t check_sp24_shape(int64_t m, int64_t k, int32_t dtype) {
  if (m < 0 || k < 0) return invalid("M and K must be >= 0; got " + std::to_string(m) + ", " + std::to_string(k));
  if (k % 16 != 0) return invalid("K must be a multiple of 16 (one metadata word covers 16 columns); got " + std::to_string(k));
  if (dtype != LLMK_F32 && dtype != LLMK_F16 && dtype != LLMK_BF16) {
    return invalid("dtype must be F32, F16 or BF16 (codes 0, 1, 2); got " + std::to_string(dtype));
  }
  int64_t bytes = 0;
  const int64_t dims[] = {m, k, 4};
  return require_product(dims, 3, "W bytes", &bytes);
}

int32_t check_sp24_prune(const void* w, const float* col_scale, const void* out, int64_t m, int64_t k, int32_t dtype) {
  if (int32_t rc = check_sp24_shape(m, k, dtype)) return rc;
  if (m * k == 0) return LLMK_OK;
  if (int32_t rc = require_non_null(w, "w")) return rc;
  if (int32_t rc = require_non_null(out, "out")) return rc;
  const int64_t bytes = m * k * elem(dtype);
  if (out != w) {  // in place is allowed; any other overlap is not
    if (int32_t rc = require_disjoint(out, bytes, "out", w, bytes, "w")) return rc;
  }
  return require_disjoint(out, bytes, "out", col_scale, col_scale ? k * 4 : 0, "col_scale");
}

int32_t check_sp24_compress(const void* w, const void* values, const uint16_t* meta, int64_t m, int64_t k,
                            int32_t dtype) {
  if (int32_t rc = check_sp24_shape(m, k, dtype)) return rc;
  if (m * k == 0) return LLMK_OK;
  if (int32_t rc = require_non_null(w, "w")) return rc;
  if (int32_t rc = require_non_null(values, "values")) return rc;
  if (int32_t rc = require_non_null(meta, "meta")) return rc;
  const int64_t wb = m * k * elem(dtype), vb = wb / 2, mb = m * (k / 16) * 2;
  if (int32_t rc = require_disjoint(values, vb, "values", w, wb, "w")) return rc;
  if (int32_t rc = require_disjoint(meta, mb, "meta", w, wb, "w")) return rc;
  return require_disjoint(meta, mb, "meta", values, vb, "values");
}

int32_t check_sp24_matmul(const llmk_sp24_matmul_args* a, bool sparse, bool cuda) {
  if (a == nullptr) return invalid("args must not be null");
  if (a->struct_bytes != static_cast<int64_t>(sizeof(llmk_sp24_matmul_args))) {
    return invalid("args.struct_bytes = " + std::to_string(a->struct_bytes) + " but this library expects " +
                   std::to_string(sizeof(llmk_sp24_matmul_args)) + " (binding and library versions differ)");
  }
  if (a->n < 0) return invalid("N must be >= 0; got " + std::to_string(a->n));
  if (int32_t rc = check_sp24_shape(a->m, a->k, static_cast<int32_t>(a->dtype))) return rc;
  if (cuda && a->dtype == LLMK_F32) return invalid("dtype: the CUDA kernels take F16 or BF16 (tensor cores); got F32");
  if (a->activation < LLMK_ACT_NONE || a->activation > LLMK_ACT_GELU) {
    return invalid("activation must be 0 (none), 1 (relu), 2 (silu) or 3 (gelu); got " + std::to_string(a->activation));
  }
  int64_t xb = 0, yb = 0;
  const int64_t xd[] = {a->n, a->k, elem(a->dtype)};
  const int64_t yd[] = {a->n, a->m, elem(a->dtype)};
  if (int32_t rc = require_product(xd, 3, "X bytes", &xb)) return rc;
  if (int32_t rc = require_product(yd, 3, "Y bytes", &yb)) return rc;
  if (yb == 0) return LLMK_OK;
  const int64_t wb = a->m * a->k * elem(a->dtype);
  if (int32_t rc = require_non_null(p(a->y), "y")) return rc;
  if (xb > 0) { if (int32_t rc = require_non_null(p(a->x), "x")) return rc; }
  if (a->k > 0) {
    if (sparse) {
      if (int32_t rc = require_non_null(p(a->values), "values")) return rc;
      if (int32_t rc = require_non_null(p(a->meta), "meta")) return rc;
    } else {
      if (int32_t rc = require_non_null(p(a->w), "w")) return rc;
    }
  }
  const struct { int64_t addr; int64_t bytes; const char* name; } ins[] = {
      {a->x, xb, "x"}, {sparse ? a->values : a->w, sparse ? wb / 2 : wb, sparse ? "values" : "w"},
      {sparse ? a->meta : 0, sparse ? a->m * (a->k / 16) * 2 : 0, "meta"}, {a->bias, a->bias ? a->m * elem(a->dtype) : 0, "bias"}};
  for (const auto& in : ins) {
    if (int32_t rc = require_disjoint(p(a->y), yb, "y", p(in.addr), in.bytes, in.name)) return rc;
  }
  return LLMK_OK;
}

int32_t fail_sp24_group(int64_t row, int64_t group, const char* rule) {
  return fail(LLMK_ERR_INVALID_ARGUMENT, "row " + std::to_string(row) + ", group " + std::to_string(group) +
                                             " (columns " + std::to_string(4 * group) + ".." + std::to_string(4 * group + 3) +
                                             "): " + rule + "; nothing was written");
}

}  // namespace llmk
