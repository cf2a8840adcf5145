#include "cce_args.h"

#include <cmath>
#include <string>

#include "error.h"

namespace llmk {
namespace {

int32_t invalid(const std::string& msg) { return fail(LLMK_ERR_INVALID_ARGUMENT, msg); }

const void* ptr(int64_t address) { return reinterpret_cast<const void*>(address); }

/* A finite option in [lo, hi]. */
int32_t require_range(double x, double lo, double hi, const char* name) {
  if (!(x >= lo && x <= hi)) {
    return invalid(std::string(name) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                   "]; got " + std::to_string(x));
  }
  return LLMK_OK;
}

struct Region {
  const char* name;
  int64_t address;
  int64_t bytes;
};

}  // namespace

int64_t cce_elem_bytes(const llmk_cce_args& a) { return a.dtype == LLMK_F32 ? 4 : 2; }

int32_t check_cce_sizes(const llmk_cce_args* a) {
  if (a == nullptr) return fail(LLMK_ERR_INVALID_ARGUMENT, "args must not be null");
  if (a->struct_bytes != static_cast<int64_t>(sizeof(llmk_cce_args))) {
    return invalid("args.struct_bytes = " + std::to_string(a->struct_bytes) + " but this library expects " +
                   std::to_string(sizeof(llmk_cce_args)) + " (binding and library versions differ)");
  }
  if (int32_t rc = require_non_negative(a->n, "n")) return rc;
  if (a->d < 1) return invalid("d must be >= 1; got " + std::to_string(a->d));
  if (a->v < 1) return invalid("v must be >= 1; got " + std::to_string(a->v));
  if (a->vocab_offset < 0 || a->vocab_total < 1 || a->vocab_offset > a->vocab_total - a->v) {
    return invalid("shard [vocab_offset, vocab_offset + v) = [" + std::to_string(a->vocab_offset) + ", " +
                   std::to_string(a->vocab_offset) + " + " + std::to_string(a->v) +
                   ") must lie inside [0, vocab_total = " + std::to_string(a->vocab_total) + ")");
  }
  if (a->dtype != LLMK_F32 && a->dtype != LLMK_F16 && a->dtype != LLMK_BF16) {
    return invalid("dtype must be F32, F16 or BF16 (codes 0, 1, 2); got code " + std::to_string(a->dtype));
  }
  if (a->target_dtype != LLMK_I32 && a->target_dtype != LLMK_I64) {
    return invalid("target_dtype must be I32 or I64 (codes 3, 4); got code " + std::to_string(a->target_dtype));
  }
  if (a->shift < 0) return invalid("shift must be >= 0; got " + std::to_string(a->shift));
  if (a->reduction < LLMK_REDUCTION_NONE || a->reduction > LLMK_REDUCTION_MEAN) {
    return invalid("reduction must be 0 (NONE), 1 (SUM) or 2 (MEAN); got " + std::to_string(a->reduction));
  }
  if ((a->flags & ~int64_t{7}) != 0) return invalid("flags has unknown bits: " + std::to_string(a->flags));
  if (int32_t rc = require_range(a->softcap, 0.0, HUGE_VAL, "softcap")) return rc;
  if (int32_t rc = require_range(a->label_smoothing, 0.0, 1.0, "label_smoothing")) return rc;
  if (int32_t rc = require_range(a->z_loss_scale, 0.0, HUGE_VAL, "z_loss_scale")) return rc;
  if (int32_t rc = require_range(a->filter_eps, 0.0, 1.0, "filter_eps")) return rc;
  if (std::isinf(a->softcap) || std::isinf(a->z_loss_scale)) return invalid("softcap and z_loss_scale must be finite");
  const int64_t e_dims[] = {a->n, a->d};
  const int64_t c_dims[] = {a->v, a->d};
  int64_t e_elems = 0, c_elems = 0;
  if (int32_t rc = require_product(e_dims, 2, "E elements", &e_elems)) return rc;
  if (int32_t rc = require_product(c_dims, 2, "C elements", &c_elems)) return rc;
  if (e_elems > INT64_MAX / 8 || c_elems > INT64_MAX / 8) return invalid("E or C byte size overflows int64");
  return LLMK_OK;
}

int32_t check_cce_args(const llmk_cce_args* a, CcePass pass) {
  if (int32_t rc = check_cce_sizes(a)) return rc;

  const int64_t e_elems = a->n * a->d;
  const int64_t c_elems = a->v * a->d;
  const int64_t eb = cce_elem_bytes(*a);
  const int64_t tb = a->target_dtype == LLMK_I32 ? 4 : 8;

  const bool sharded = cce_sharded(*a);
  const int64_t per_row = a->n * 4;
  const int64_t loss_bytes = a->reduction == LLMK_REDUCTION_NONE ? per_row : 4;
  if (int32_t rc = require_non_null(ptr(a->c), "c")) return rc;
  if (a->n > 0) {
    if (int32_t rc = require_non_null(ptr(a->e), "e")) return rc;
    if (int32_t rc = require_non_null(ptr(a->targets), "targets")) return rc;
    if (int32_t rc = require_non_null(ptr(a->lse), "lse")) return rc;
  }
  if (pass == CcePass::Forward) {
    if (sharded && a->loss != 0) {
      return invalid("loss must be null for a vocabulary shard (combine the shards' statistics first)");
    }
  } else {
    if (a->n > 0 || a->reduction != LLMK_REDUCTION_NONE) {
      if (int32_t rc = require_non_null(ptr(a->grad_loss), "grad_loss")) return rc;
    }
    if (a->grad_bias != 0 && a->bias == 0) return invalid("grad_bias requires bias");
  }

  // Outputs must not overlap inputs or each other: the kernels read inputs while writing outputs.
  const Region inputs[] = {{"e", a->e, e_elems * eb},
                           {"c", a->c, c_elems * eb},
                           {"bias", a->bias, a->v * eb},
                           {"targets", a->targets, a->n * tb},
                           {"grad_loss", pass == CcePass::Backward ? a->grad_loss : 0, loss_bytes},
                           {"grad_lse", pass == CcePass::Backward ? a->grad_lse : 0, per_row},
                           {"lse", pass == CcePass::Backward ? a->lse : 0, per_row}};
  Region outputs[5];
  int n_out = 0;
  if (pass == CcePass::Forward) {
    outputs[n_out++] = {"loss", a->loss, loss_bytes};
    outputs[n_out++] = {"lse", a->lse, per_row};
    outputs[n_out++] = {"target_logit", a->target_logit, per_row};
    outputs[n_out++] = {"sum_logits", a->sum_logits, per_row};
  } else {
    outputs[n_out++] = {"grad_e", a->grad_e, e_elems * eb};
    outputs[n_out++] = {"grad_c", a->grad_c, c_elems * eb};
    outputs[n_out++] = {"grad_bias", a->grad_bias, a->v * eb};
  }
  for (int o = 0; o < n_out; ++o) {
    if (outputs[o].address == 0 || outputs[o].bytes == 0) continue;
    for (const Region& in : inputs) {
      if (in.address == 0 || in.bytes == 0) continue;
      if (int32_t rc = require_disjoint(ptr(outputs[o].address), outputs[o].bytes, outputs[o].name, ptr(in.address),
                                        in.bytes, in.name)) {
        return rc;
      }
    }
    for (int p = o + 1; p < n_out; ++p) {
      if (outputs[p].address == 0 || outputs[p].bytes == 0) continue;
      if (int32_t rc = require_disjoint(ptr(outputs[o].address), outputs[o].bytes, outputs[o].name,
                                        ptr(outputs[p].address), outputs[p].bytes, outputs[p].name)) {
        return rc;
      }
    }
  }
  return LLMK_OK;
}

int32_t fail_cce_target(const llmk_cce_args& a, int64_t pos, int64_t value) {
  return fail(LLMK_ERR_OUT_OF_RANGE,
              "targets[" + std::to_string(pos) + "] = " + std::to_string(value) + " (the target of row " +
                  std::to_string(pos - a.shift) + ") is outside [0, V = " + std::to_string(a.vocab_total) +
                  ") and is not ignore_index (" + std::to_string(a.ignore_index) + "); nothing was written");
}

}  // namespace llmk
