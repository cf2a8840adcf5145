#include "prefill_args.h"

#include <cstdio>
#include <string>

#include "error.h"

namespace llmk {
namespace {

int32_t invalid(const std::string& msg) { return fail(LLMK_ERR_INVALID_ARGUMENT, msg); }
std::string str(int64_t v) { return std::to_string(v); }
std::string str(double v) {  // round-trip precision: "got 1.0000001", never "got 1.000000"
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

const char* method_name(int64_t m) {
  switch (m) {
    case LLMK_PREFILL_VERTICAL_SLASH: return "VERTICAL_SLASH";
    case LLMK_PREFILL_BLOCK_TOPK: return "BLOCK_TOPK";
    case LLMK_PREFILL_FLEX: return "FLEX";
    default: return "XATTN";
  }
}

int32_t in_range(int64_t v, int64_t lo, int64_t hi, const std::string& what) {
  if (v >= lo && v <= hi) return LLMK_OK;
  return invalid(what + " must be in [" + str(lo) + ", " + str(hi) + "]; got " + str(v));
}

int32_t check_method_params(const llmk_prefill_args& a) {
  const std::string m = std::string(method_name(a.method)) + ": ";
  const int64_t nkb = (a.seq_k + a.block_k - 1) / a.block_k;
  if (a.method != LLMK_PREFILL_VERTICAL_SLASH && a.block_q != a.block_k) {
    return invalid(m + "block_q must equal block_k; got " + str(a.block_q) + " and " + str(a.block_k));
  }
  switch (a.method) {
    case LLMK_PREFILL_VERTICAL_SLASH:
      if (int32_t rc = in_range(a.last_q, 1, a.seq_q, m + "last_q")) return rc;
      if (int32_t rc = in_range(a.forced_columns, 0, a.seq_k, m + "forced_columns")) return rc;
      if (int32_t rc = in_range(a.vertical_size, a.forced_columns, a.seq_k, m + "vertical_size (>= forced_columns, <= seq_k)")) return rc;
      if (int32_t rc = in_range(a.forced_slashes, 0, a.seq_k, m + "forced_slashes")) return rc;
      return in_range(a.slash_size, a.forced_slashes, a.seq_k, m + "slash_size (>= forced_slashes, <= seq_k)");
    case LLMK_PREFILL_BLOCK_TOPK:
      if (a.top_k < 0) return invalid(m + "top_k must be >= 0; got " + str(a.top_k));
      return LLMK_OK;
    case LLMK_PREFILL_FLEX:
      if (int32_t rc = in_range(a.last_q, 1, a.seq_q, m + "last_q")) return rc;
      if (!(a.gamma > 0.0 && a.gamma <= 1.0)) return invalid(m + "gamma must be in (0, 1]; got " + str(a.gamma));
      if (!(a.tau >= 0.0 && a.tau <= 1.0)) return invalid(m + "tau must be in [0, 1]; got " + str(a.tau));
      if (int32_t rc = in_range(a.max_budget_blocks, 0, nkb, m + "max_budget_blocks")) return rc;
      return in_range(a.min_budget_blocks, 0, a.max_budget_blocks, m + "min_budget_blocks (<= max_budget_blocks)");
    default:
      if (a.stride < 1) return invalid(m + "stride must be >= 1; got " + str(a.stride));
      if (a.block_q % a.stride != 0) {
        return invalid(m + "stride must divide block_q (" + str(a.block_q) + "); got " + str(a.stride));
      }
      if ((a.seq_k - a.seq_q) % a.stride != 0) {
        return invalid(m + "stride must divide seq_k - seq_q (" + str(a.seq_k - a.seq_q) + "); got " + str(a.stride));
      }
      if (!(a.threshold > 0.0 && a.threshold <= 1.0)) {
        return invalid(m + "threshold must be in (0, 1]; got " + str(a.threshold));
      }
      return LLMK_OK;
  }
}

}  // namespace

int64_t prefill_scores_per_head(const llmk_prefill_args& a) {
  const PrefillGeom g = prefill_geom_of(a);
  switch (a.method) {
    case LLMK_PREFILL_VERTICAL_SLASH: return 2 * g.sk;
    case LLMK_PREFILL_FLEX: return 2 * g.sk + g.nkb + g.nqb * g.nkb;
    default: return g.nqb * g.nkb;
  }
}

int32_t check_prefill_args(const llmk_prefill_args* a, PrefillStage stage) {
  if (a == nullptr) return invalid("args must not be null");
  if (a->struct_bytes != static_cast<int64_t>(sizeof(llmk_prefill_args))) {
    return invalid("args.struct_bytes = " + str(a->struct_bytes) + " but this library expects " +
                   str(static_cast<int64_t>(sizeof(llmk_prefill_args))) + " (binding and library versions differ)");
  }
  if (a->method < LLMK_PREFILL_VERTICAL_SLASH || a->method > LLMK_PREFILL_XATTN) {
    return invalid("method must be a llmk_prefill_method (0 .. 3); got " + str(a->method));
  }
  if (a->batch < 1) return invalid("batch must be >= 1; got " + str(a->batch));
  if (a->heads_q < 1 || a->heads_kv < 1 || a->heads_q % a->heads_kv != 0) {
    return invalid("heads_q (" + str(a->heads_q) + ") must be a positive multiple of heads_kv (" + str(a->heads_kv) + ")");
  }
  if (a->head_dim < 1 || a->head_dim > 65536) return invalid("head_dim must be in [1, 65536]; got " + str(a->head_dim));
  if (a->seq_k < 1 || a->seq_k > INT32_MAX) return invalid("seq_k must be in [1, 2^31 - 1]; got " + str(a->seq_k));
  if (int32_t rc = in_range(a->seq_q, 1, a->seq_k, "seq_q (<= seq_k)")) return rc;
  if (a->dtype != LLMK_F32 && a->dtype != LLMK_F16 && a->dtype != LLMK_BF16) {
    return invalid("dtype must be F32, F16 or BF16 (codes 0, 1, 2); got " + str(a->dtype));
  }
  if (!(a->scale >= 1e-30 && a->scale <= 1e30)) return invalid("scale must be in [1e-30, 1e30]; got " + str(a->scale));
  if (int32_t rc = in_range(a->block_q, 1, int64_t{1} << 20, "block_q")) return rc;
  if (int32_t rc = in_range(a->block_k, 1, int64_t{1} << 20, "block_k")) return rc;
  if ((a->flags & ~int64_t{LLMK_PREFILL_FORCE_DIAGONAL | LLMK_PREFILL_COLUMN_TOKENS}) != 0) {
    return invalid("flags may only hold LLMK_PREFILL_FORCE_DIAGONAL (2) and LLMK_PREFILL_COLUMN_TOKENS (4); got " +
                   str(a->flags));
  }
  if ((a->flags & LLMK_PREFILL_COLUMN_TOKENS) != 0 && a->method != LLMK_PREFILL_VERTICAL_SLASH) {
    return invalid(std::string("flag LLMK_PREFILL_COLUMN_TOKENS is for VERTICAL_SLASH only; method is ") +
                   method_name(a->method));
  }
  const PrefillGeom g = prefill_geom_of(*a);
  if (g.nqb * g.nkb > int64_t{INT32_MAX} - 8) {
    return invalid("nqb * nkb (" + str(g.nqb * g.nkb) + " tiles) must be <= 2^31 - 9: use larger blocks");
  }
  if (int32_t rc = check_method_params(*a)) return rc;
  if (stage == PrefillStage::kSize) return LLMK_OK;

  const int64_t heads = a->batch * a->heads_q;
  int64_t score_bytes = 0, q_bytes = 0, k_bytes = 0;
  const int64_t sd[] = {heads, prefill_scores_per_head(*a), 4};
  const int64_t qd[] = {heads, a->seq_q, a->head_dim, a->dtype == LLMK_F32 ? 4 : 2};
  const int64_t kd[] = {a->batch * a->heads_kv, a->seq_k, a->head_dim, a->dtype == LLMK_F32 ? 4 : 2};
  if (int32_t rc = require_product(sd, 3, "scores bytes", &score_bytes)) return rc;
  if (int32_t rc = require_product(qd, 4, "q bytes", &q_bytes)) return rc;
  if (int32_t rc = require_product(kd, 4, "k bytes", &k_bytes)) return rc;
  if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->scores), "scores")) return rc;
  const auto* scores = reinterpret_cast<const void*>(a->scores);
  if (stage == PrefillStage::kScore) {
    if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->q), "q")) return rc;
    if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->k), "k")) return rc;
    if (int32_t rc = require_disjoint(scores, score_bytes, "scores", reinterpret_cast<const void*>(a->q), q_bytes, "q")) return rc;
    return require_disjoint(scores, score_bytes, "scores", reinterpret_cast<const void*>(a->k), k_bytes, "k");
  }
  if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->selection), "selection")) return rc;
  if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->head_counts), "head_counts")) return rc;
  int64_t selection_bytes = 0;
  const int64_t seld[] = {heads, g.nqb, g.nkb};
  if (int32_t rc = require_product(seld, 3, "selection bytes", &selection_bytes)) return rc;
  const bool tokens = (a->flags & LLMK_PREFILL_COLUMN_TOKENS) != 0;
  int64_t column_bytes = 0;
  if (tokens) {
    const int64_t cd[] = {heads, a->vertical_size, 4};
    if (int32_t rc = require_product(cd, 3, "columns bytes", &column_bytes)) return rc;
  }
  if (column_bytes > 0) {
    if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->columns), "columns")) return rc;
  }
  const struct { int64_t address; int64_t bytes; const char* name; } outs[] = {
      {a->selection, selection_bytes, "selection"},
      {a->head_counts, heads * 5 * 8, "head_counts"},
      {a->head_divergence, a->head_divergence != 0 ? heads * 4 : 0, "head_divergence"},
      {a->columns, column_bytes, "columns"}};
  constexpr int kOuts = sizeof(outs) / sizeof(outs[0]);
  for (int i = 0; i < kOuts; ++i) {
    const void* p = reinterpret_cast<const void*>(outs[i].address);
    if (int32_t rc = require_disjoint(p, outs[i].bytes, outs[i].name, scores, score_bytes, "scores")) return rc;
    for (int j = i + 1; j < kOuts; ++j) {
      if (int32_t rc = require_disjoint(p, outs[i].bytes, outs[i].name, reinterpret_cast<const void*>(outs[j].address),
                                        outs[j].bytes, outs[j].name)) return rc;
    }
  }
  return LLMK_OK;
}

}  // namespace llmk

extern "C" int32_t llmk_prefill_scores_size(const llmk_prefill_args* args, int64_t* per_head) noexcept {
  return llmk::guarded([&]() -> int32_t {
    if (int32_t rc = llmk::check_prefill_args(args, llmk::PrefillStage::kSize)) return rc;
    if (int32_t rc = llmk::require_non_null(per_head, "per_head")) return rc;
    *per_head = llmk::prefill_scores_per_head(*args);
    return LLMK_OK;
  });
}

#ifdef LLMK_NO_CUDA_REASON
/* CPU-only build: the CUDA entry points exist (the Java binding links them) and report why. */
extern "C" int32_t llmk_prefill_score_cuda(const llmk_prefill_args*) noexcept {
  return llmk::fail(LLMK_ERR_UNAVAILABLE, "this native library was built without CUDA (" LLMK_NO_CUDA_REASON ")");
}
extern "C" int32_t llmk_prefill_select_cuda(const llmk_prefill_args*) noexcept {
  return llmk::fail(LLMK_ERR_UNAVAILABLE, "this native library was built without CUDA (" LLMK_NO_CUDA_REASON ")");
}
#endif
