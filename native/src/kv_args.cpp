#include "kv_args.h"

#include <string>

#include "error.h"
#include "llmk/kv_math.h"

namespace llmk {
namespace {

int32_t invalid(const std::string& msg) { return fail(LLMK_ERR_INVALID_ARGUMENT, msg); }

int32_t check_struct(int64_t got, size_t want) {
  if (got == static_cast<int64_t>(want)) return LLMK_OK;
  return invalid("args.struct_bytes = " + std::to_string(got) + " but this library expects " + std::to_string(want) +
                 " (binding and library versions differ)");
}

bool float_dtype(int64_t t) { return t == LLMK_F32 || t == LLMK_F16 || t == LLMK_BF16; }

int32_t check_heads(int64_t heads_q, int64_t heads_kv) {
  if (heads_q < 1 || heads_kv < 1 || heads_q % heads_kv != 0) {
    return invalid("heads_q (" + std::to_string(heads_q) + ") must be a positive multiple of heads_kv (" +
                   std::to_string(heads_kv) + ")");
  }
  return LLMK_OK;
}

}  // namespace

int32_t check_kv_score_args(const llmk_kv_score_args* a) {
  if (a == nullptr) return invalid("args must not be null");
  if (int32_t rc = check_struct(a->struct_bytes, sizeof(llmk_kv_score_args))) return rc;
  if (a->scorer < LLMK_KV_KNORM || a->scorer > LLMK_KV_LADDER) return invalid("scorer: unknown code " + std::to_string(a->scorer));
  if (a->batch < 0 || a->n < 0) return invalid("batch and n must be >= 0");
  if (int32_t rc = check_heads(a->heads_q, a->heads_kv)) return rc;
  const bool uses_q = a->scorer == LLMK_KV_SNAPKV || a->scorer == LLMK_KV_OBSERVED;
  const bool uses_k = uses_q || a->scorer == LLMK_KV_KNORM;
  if (uses_k) {
    if (a->head_dim < 1) return invalid("head_dim must be >= 1; got " + std::to_string(a->head_dim));
    if (!float_dtype(a->dtype)) return invalid("dtype must be F32, F16 or BF16 (codes 0, 1, 2); got " + std::to_string(a->dtype));
  }
  if (uses_q) {
    if (a->q_len < 1 || a->q_len > a->n) {
      return invalid("q_len must be in [1, n = " + std::to_string(a->n) + "]; got " + std::to_string(a->q_len));
    }
    if (!(a->scale >= 1e-30 && a->scale <= 1e30)) return invalid("scale must be in [1e-30, 1e30]; got " + std::to_string(a->scale));
  }
  if (a->scorer == LLMK_KV_SNAPKV) {
    if (a->pool < LLMK_KV_POOL_NONE || a->pool > LLMK_KV_POOL_MAX) return invalid("pool: unknown code " + std::to_string(a->pool));
    if (a->pool != LLMK_KV_POOL_NONE && (a->pool_kernel < 1 || a->pool_kernel % 2 == 0)) {
      return invalid("pool_kernel must be odd and >= 1; got " + std::to_string(a->pool_kernel));
    }
  }
  if (a->scorer == LLMK_KV_LADDER && (a->ladder_layer < 0 || a->ladder_rung < 1)) {
    return invalid("ladder_layer must be >= 0 and ladder_rung >= 1; got " + std::to_string(a->ladder_layer) + ", " +
                   std::to_string(a->ladder_rung));
  }
  const int64_t eb = a->dtype == LLMK_F32 ? 4 : 2;
  int64_t q_bytes = 0, k_bytes = 0, s_bytes = 0;
  const int64_t qd[] = {a->batch, a->heads_q, uses_q ? a->q_len : 0, uses_q ? a->head_dim : 0, eb};
  const int64_t kd[] = {a->batch, a->heads_kv, a->n, uses_k ? a->head_dim : 0, eb};
  const int64_t sd[] = {a->batch, a->heads_kv, a->n, 4};
  if (int32_t rc = require_product(qd, 5, "q bytes", &q_bytes)) return rc;
  if (int32_t rc = require_product(kd, 5, "k bytes", &k_bytes)) return rc;
  if (int32_t rc = require_product(sd, 4, "scores bytes", &s_bytes)) return rc;
  if (s_bytes == 0) return LLMK_OK;
  if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->scores), "scores")) return rc;
  if (uses_k) { if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->k), "k")) return rc; }
  if (uses_q) { if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->q), "q")) return rc; }
  const auto* scores = reinterpret_cast<const void*>(a->scores);
  if (int32_t rc = require_disjoint(scores, s_bytes, "scores", reinterpret_cast<const void*>(a->k), k_bytes, "k")) return rc;
  if (int32_t rc = require_disjoint(scores, s_bytes, "scores", reinterpret_cast<const void*>(a->q), q_bytes, "q")) return rc;
  if (a->scorer == LLMK_KV_OBSERVED) {
    const void* sum = reinterpret_cast<const void*>(a->attn_sum);
    const void* count = reinterpret_cast<const void*>(a->attn_count);
    if (int32_t rc = require_non_null(sum, "attn_sum")) return rc;
    if (int32_t rc = require_non_null(count, "attn_count")) return rc;
    const struct { const void* p; const char* name; int64_t bytes; } others[] = {
        {scores, "scores", s_bytes}, {count, "attn_count", s_bytes}, {reinterpret_cast<const void*>(a->k), "k", k_bytes},
        {reinterpret_cast<const void*>(a->q), "q", q_bytes}};
    for (const auto& o : others) {
      if (int32_t rc = require_disjoint(sum, s_bytes, "attn_sum", o.p, o.bytes, o.name)) return rc;
    }
    for (int i = 0; i < 4; ++i) {
      if (i == 1) continue;
      if (int32_t rc = require_disjoint(count, s_bytes, "attn_count", others[i].p, others[i].bytes, others[i].name)) return rc;
    }
  }
  return LLMK_OK;
}

int32_t check_kv_select_args(const llmk_kv_select_args* a) {
  if (a == nullptr) return invalid("args must not be null");
  if (int32_t rc = check_struct(a->struct_bytes, sizeof(llmk_kv_select_args))) return rc;
  if (a->batch < 0 || a->heads < 0 || a->n < 0 || a->sinks < 0 || a->recent < 0 || a->max_keep < 0) {
    return invalid("batch, heads, n, sinks, recent and max_keep must be >= 0");
  }
  if (a->n > INT32_MAX) return invalid("n must be <= 2^31 - 1 (kept positions are int32)");
  int64_t s_bytes = 0, k_bytes = 0;
  const int64_t sd[] = {a->batch, a->heads, a->n, 4};
  const int64_t kd[] = {a->batch, a->heads, a->max_keep, 4};
  if (int32_t rc = require_product(sd, 4, "scores bytes", &s_bytes)) return rc;
  if (int32_t rc = require_product(kd, 4, "kept bytes", &k_bytes)) return rc;
  if (a->batch * a->heads == 0) return LLMK_OK;
  if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->budgets), "budgets")) return rc;
  if (s_bytes > 0) { if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->scores), "scores")) return rc; }
  if (k_bytes > 0) {
    if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->kept), "kept")) return rc;
    if (int32_t rc = require_disjoint(reinterpret_cast<const void*>(a->kept), k_bytes, "kept",
                                      reinterpret_cast<const void*>(a->scores), s_bytes, "scores")) return rc;
    if (int32_t rc = require_disjoint(reinterpret_cast<const void*>(a->kept), k_bytes, "kept",
                                      reinterpret_cast<const void*>(a->budgets), a->batch * a->heads * 4, "budgets")) return rc;
  }
  return LLMK_OK;
}

int32_t check_kv_budgets_host(const llmk_kv_select_args& a, const int32_t* budgets) {
  const int64_t lo = kv_forced_count(a.n, a.sinks, a.recent);
  const int64_t hi = a.n < a.max_keep ? a.n : a.max_keep;
  for (int64_t bh = 0; bh < a.batch * a.heads; ++bh) {
    if (budgets[bh] < lo || budgets[bh] > hi) {
      return fail(LLMK_ERR_OUT_OF_RANGE, "budgets[" + std::to_string(bh / a.heads) + ", " + std::to_string(bh % a.heads) +
                                             "] = " + std::to_string(budgets[bh]) + " must be in [" + std::to_string(lo) +
                                             " (sinks + recent), " + std::to_string(hi) + " (min(n, max_keep))]");
    }
  }
  return LLMK_OK;
}

int32_t check_kv_gather_varlen_args(const void* src, const int32_t* kept, const int64_t* cu, const void* dst,
                                    int64_t B, int64_t H, int64_t N, int64_t max_keep, int64_t row_bytes) {
  if (B < 0 || H < 0 || N < 0 || max_keep < 0 || row_bytes < 0) {
    return invalid("B, H, N, max_keep and row_bytes must be >= 0");
  }
  int64_t src_bytes = 0, kept_elems = 0;
  const int64_t sd[] = {B, H, N, row_bytes};
  const int64_t kd[] = {B, H, max_keep};
  if (int32_t rc = require_product(sd, 4, "src bytes", &src_bytes)) return rc;
  if (int32_t rc = require_product(kd, 3, "kept elements", &kept_elems)) return rc;
  if (B * H == 0) return LLMK_OK;
  if (int32_t rc = require_non_null(cu, "cu")) return rc;
  if (kept_elems > 0) { if (int32_t rc = require_non_null(kept, "kept")) return rc; }
  (void)src;
  (void)dst;  /* src/dst may be null when cu says nothing moves: checked with cu's total */
  return LLMK_OK;
}

int32_t check_kv_cu_host(const int64_t* cu, int64_t heads, int64_t max_keep, const char* name) {
  if (cu[0] != 0) return fail(LLMK_ERR_OUT_OF_RANGE, std::string(name) + "[0] = " + std::to_string(cu[0]) + " must be 0");
  for (int64_t h = 0; h < heads; ++h) {
    /* compare before subtracting: a difference of arbitrary int64 values can overflow */
    const bool ordered = cu[h + 1] >= cu[h];
    const int64_t count = ordered ? cu[h + 1] - cu[h] : -1;
    if (!ordered || count > max_keep) {
      return fail(LLMK_ERR_OUT_OF_RANGE, std::string(name) + "[" + std::to_string(h + 1) + "] - " + name + "[" +
                                             std::to_string(h) + "] must be in [0, " +
                                             std::to_string(max_keep) + "]");
    }
  }
  return LLMK_OK;
}

int32_t check_kv_compact_args(const void* cache, const int32_t* kept, const int32_t* counts, int64_t B, int64_t H,
                              int64_t capacity, int64_t max_keep, int64_t row_bytes) {
  if (B < 0 || H < 0 || capacity < 0 || max_keep < 0 || row_bytes < 0) {
    return invalid("B, H, capacity, max_keep and row_bytes must be >= 0");
  }
  if (capacity > INT32_MAX) return invalid("capacity must be <= 2^31 - 1 (slots are int32)");
  int64_t cache_bytes = 0, kept_elems = 0;
  const int64_t cd[] = {B, H, capacity, row_bytes};
  const int64_t kd[] = {B, H, max_keep};
  if (int32_t rc = require_product(cd, 4, "cache bytes", &cache_bytes)) return rc;
  if (int32_t rc = require_product(kd, 3, "kept elements", &kept_elems)) return rc;
  if (B * H == 0) return LLMK_OK;
  if (int32_t rc = require_non_null(counts, "counts")) return rc;
  if (kept_elems > 0) { if (int32_t rc = require_non_null(kept, "kept")) return rc; }
  if (cache_bytes > 0) {
    if (int32_t rc = require_non_null(cache, "cache")) return rc;
    if (int32_t rc = require_disjoint(cache, cache_bytes, "cache", kept, kept_elems * 4, "kept")) return rc;
    if (int32_t rc = require_disjoint(cache, cache_bytes, "cache", counts, B * H * 4, "counts")) return rc;
  }
  return LLMK_OK;
}

int32_t check_kv_decode_args(const llmk_kv_decode_args* a) {
  if (a == nullptr) return invalid("args must not be null");
  if (int32_t rc = check_struct(a->struct_bytes, sizeof(llmk_kv_decode_args))) return rc;
  if (a->batch < 0) return invalid("batch must be >= 0");
  if (int32_t rc = check_heads(a->heads_q, a->heads_kv)) return rc;
  if (a->head_dim < 1) return invalid("head_dim must be >= 1; got " + std::to_string(a->head_dim));
  if (!float_dtype(a->dtype)) return invalid("dtype must be F32, F16 or BF16 (codes 0, 1, 2); got " + std::to_string(a->dtype));
  if (a->out_dtype != a->dtype && a->out_dtype != LLMK_F32) return invalid("out_dtype must be dtype or F32");
  if (!(a->scale >= 1e-30 && a->scale <= 1e30)) return invalid("scale must be in [1e-30, 1e30]; got " + std::to_string(a->scale));
  int64_t q_elems = 0;
  const int64_t qd[] = {a->batch, a->heads_q, a->head_dim, 4};
  if (int32_t rc = require_product(qd, 4, "q bytes", &q_elems)) return rc;
  if (a->batch == 0) return LLMK_OK;
  const int64_t eb = a->dtype == LLMK_F32 ? 4 : 2, ob = a->out_dtype == LLMK_F32 ? 4 : 2;
  const int64_t rows = a->batch * a->heads_q;
  if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->q), "q")) return rc;
  if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->cu), "cu")) return rc;
  if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->out), "out")) return rc;
  const void* out = reinterpret_cast<const void*>(a->out);
  const void* lse = reinterpret_cast<const void*>(a->lse);
  if (int32_t rc = require_disjoint(out, rows * a->head_dim * ob, "out", reinterpret_cast<const void*>(a->q),
                                    rows * a->head_dim * eb, "q")) return rc;
  if (int32_t rc = require_disjoint(out, rows * a->head_dim * ob, "out", lse, a->lse ? rows * 4 : 0, "lse")) return rc;
  return require_disjoint(lse, a->lse ? rows * 4 : 0, "lse", reinterpret_cast<const void*>(a->q), rows * a->head_dim * eb, "q");
}

}  // namespace llmk
