#include "attention_args.h"

#include <cmath>
#include <string>

#include "error.h"

namespace llmk {
namespace {

int32_t invalid(const std::string& msg) { return fail(LLMK_ERR_INVALID_ARGUMENT, msg); }

std::string node_name(int64_t i) { return "mask node " + std::to_string(i); }

bool is_float_dtype(int64_t t) { return t == LLMK_F32 || t == LLMK_F16 || t == LLMK_BF16; }

int32_t check_leaf(const llmk_mask_node& n, int64_t i) {
  const auto need = [&](int64_t address, const char* what) -> int32_t {
    if (address != 0) return LLMK_OK;
    return invalid(node_name(i) + ": " + what + " must not be a null pointer");
  };
  /* positions are < 2^31; bounding offsets and reaches keeps q + offset - k far from overflow */
  constexpr int64_t reach = int64_t{1} << 40;
  if (n.i0 < -reach || n.i0 > reach) {
    return invalid(node_name(i) + ": offset i0 must be in [-2^40, 2^40]; got " + std::to_string(n.i0));
  }
  if ((n.op == LLMK_MASK_WINDOW || n.op == LLMK_MASK_SINKS) && (n.i2 > reach || n.i3 > reach)) {
    return invalid(node_name(i) + ": window/sink reach must be <= 2^40");
  }
  const auto at_least = [&](int64_t v, int64_t lo, const char* what) -> int32_t {
    if (v >= lo) return LLMK_OK;
    return invalid(node_name(i) + ": " + what + " must be >= " + std::to_string(lo) + "; got " + std::to_string(v));
  };
  switch (n.op) {
    case LLMK_MASK_ALL: case LLMK_MASK_NONE: case LLMK_MASK_CAUSAL: return LLMK_OK;
    case LLMK_MASK_WINDOW:
      if (int32_t rc = at_least(n.i2, 0, "window left")) return rc;
      return at_least(n.i3, 0, "window right");
    case LLMK_MASK_SINKS: return at_least(n.i2, 0, "sink count");
    case LLMK_MASK_PREFIX:
      if (int32_t rc = at_least(n.batch_stride, 0, "prefix batch stride")) return rc;
      return need(n.data0, "prefix lengths");
    case LLMK_MASK_DOCUMENT:
      if (int32_t rc = at_least(n.i2, 0, "query segment batch stride")) return rc;
      if (int32_t rc = at_least(n.i3, 0, "key segment batch stride")) return rc;
      if (int32_t rc = need(n.data0, "query segment ids")) return rc;
      return need(n.data1, "key segment ids");
    case LLMK_MASK_BLOCKS:
      if (int32_t rc = at_least(n.i2, 1, "mask block rows")) return rc;
      if (int32_t rc = at_least(n.i3, 1, "mask block cols")) return rc;
      if (int32_t rc = at_least(n.i4, 0, "bitmap rows")) return rc;
      if (int32_t rc = at_least(n.i5, 0, "bitmap cols")) return rc;
      if (int32_t rc = at_least(n.batch_stride, 0, "bitmap batch stride")) return rc;
      if (int32_t rc = at_least(n.head_stride, 0, "bitmap head stride")) return rc;
      return need(n.data0, "block bitmap");
    case LLMK_MASK_VERTICAL_SLASH:
      if (int32_t rc = at_least(n.i2, 0, "vertical column count")) return rc;
      if (int32_t rc = at_least(n.i3, 0, "slash count")) return rc;
      if (int32_t rc = at_least(n.batch_stride, 0, "column batch stride")) return rc;
      if (int32_t rc = at_least(n.head_stride, 0, "column head stride")) return rc;
      if (int32_t rc = at_least(n.i4, 0, "slash batch stride")) return rc;
      if (int32_t rc = at_least(n.i5, 0, "slash head stride")) return rc;
      if (n.i2 > 0) { if (int32_t rc = need(n.data0, "vertical columns")) return rc; }
      if (n.i3 > 0) { if (int32_t rc = need(n.data1, "slash offsets")) return rc; }
      return LLMK_OK;
    default:
      return invalid(node_name(i) + ": unknown op " + std::to_string(n.op));
  }
}

}  // namespace

bool mask_varies_by_batch(const llmk_mask_node* nodes, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const llmk_mask_node& n = nodes[i];
    if ((n.op == LLMK_MASK_PREFIX && n.batch_stride != 0) || (n.op == LLMK_MASK_DOCUMENT && (n.i2 != 0 || n.i3 != 0)) ||
        (n.op == LLMK_MASK_BLOCKS && n.batch_stride != 0) ||
        (n.op == LLMK_MASK_VERTICAL_SLASH && (n.batch_stride != 0 || n.i4 != 0))) {
      return true;
    }
  }
  return false;
}

bool mask_varies_by_head(const llmk_mask_node* nodes, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const llmk_mask_node& n = nodes[i];
    if ((n.op == LLMK_MASK_BLOCKS && n.head_stride != 0) ||
        (n.op == LLMK_MASK_VERTICAL_SLASH && (n.head_stride != 0 || n.i5 != 0))) {
      return true;
    }
  }
  return false;
}

int32_t check_mask_program(const llmk_mask_node* nodes, int64_t count) {
  if (nodes == nullptr) return invalid("mask nodes must not be a null pointer");
  if (count < 1 || count > LLMK_MASK_MAX_NODES) {
    return invalid("mask node_count must be in [1, " + std::to_string(LLMK_MASK_MAX_NODES) + "]; got " +
                   std::to_string(count));
  }
  int64_t depth = 0;
  for (int64_t i = 0; i < count; ++i) {
    const llmk_mask_node& n = nodes[i];
    if (n.op == LLMK_MASK_AND || n.op == LLMK_MASK_OR) {
      if (depth < 2) return invalid(node_name(i) + ": AND/OR needs two operands on the stack");
      --depth;
    } else if (n.op == LLMK_MASK_NOT) {
      if (depth < 1) return invalid(node_name(i) + ": NOT needs an operand on the stack");
    } else {
      if (int32_t rc = check_leaf(n, i)) return rc;
      if (++depth > LLMK_MASK_MAX_DEPTH) {
        return invalid("mask program needs a stack deeper than " + std::to_string(LLMK_MASK_MAX_DEPTH));
      }
    }
  }
  if (depth != 1) return invalid("mask program must leave exactly one value; leaves " + std::to_string(depth));
  return LLMK_OK;
}

namespace {

/* Geometry shared by layouts and attention calls. */
int32_t check_geometry(int64_t batch, int64_t layout_batch, int64_t layout_heads, int64_t heads_q,
                       int64_t seq_q, int64_t seq_k, int64_t block_q, int64_t block_k) {
  if (batch < 1) return invalid("batch must be >= 1; got " + std::to_string(batch));
  if (layout_batch != 1 && layout_batch != batch) {
    return invalid("layout_batch must be 1 or batch (" + std::to_string(batch) + "); got " + std::to_string(layout_batch));
  }
  if (layout_heads < 1 || (heads_q > 0 && layout_heads != 1 && layout_heads != heads_q)) {
    return invalid("layout_heads must be 1 or heads_q; got " + std::to_string(layout_heads));
  }
  if (seq_q < 0 || seq_k < 0) return invalid("seq_q and seq_k must be >= 0");
  if (seq_q > INT32_MAX || seq_k > INT32_MAX) return invalid("seq_q and seq_k must be <= 2^31 - 1");
  if (block_q < 1 || block_k < 1 || block_q > INT32_MAX || block_k > INT32_MAX) {
    return invalid("block_q and block_k must be in [1, 2^31 - 1]");
  }
  int64_t rows = 0;
  const int64_t dims[] = {layout_batch, layout_heads, ceil_div(seq_q, block_q) + 1};
  return require_product(dims, 3, "layout rows", &rows);
}

}  // namespace

int32_t check_layout_args(const llmk_layout_args* a, bool need_idx) {
  if (a == nullptr) return invalid("args must not be null");
  if (a->struct_bytes != static_cast<int64_t>(sizeof(llmk_layout_args))) {
    return invalid("args.struct_bytes = " + std::to_string(a->struct_bytes) + " but this library expects " +
                   std::to_string(sizeof(llmk_layout_args)) + " (binding and library versions differ)");
  }
  if (int32_t rc = check_geometry(a->batch, a->layout_batch, a->layout_heads, 0, a->seq_q, a->seq_k,
                                  a->block_q, a->block_k)) return rc;
  if (a->layout_batch != a->batch && (a->q_lens != 0 || a->k_lens != 0)) {
    return invalid("sequence lengths make the layout per batch: layout_batch must equal batch");
  }
  const auto* nodes = reinterpret_cast<const llmk_mask_node*>(a->nodes);
  if (int32_t rc = check_mask_program(nodes, a->node_count)) return rc;
  if (a->layout_batch != a->batch && mask_varies_by_batch(nodes, a->node_count)) {
    return invalid("the mask has per-batch data: layout_batch must equal batch");
  }
  if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->partial_ptr), "partial_ptr")) return rc;
  if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a->full_ptr), "full_ptr")) return rc;
  (void)need_idx; /* idx arrays may be null when their count is 0: the fill pass checks them */
  if (a->selection != 0) {
    /* the selection is read while ptr arrays are written: they must not share bytes */
    const int64_t rows = a->layout_batch * a->layout_heads * ceil_div(a->seq_q, a->block_q);
    int64_t sel_bytes = 0;
    const int64_t dims[] = {rows, ceil_div(a->seq_k, a->block_k)};
    if (int32_t rc = require_product(dims, 2, "selection bytes", &sel_bytes)) return rc;
    const auto* sel = reinterpret_cast<const void*>(a->selection);
    if (int32_t rc = require_disjoint(sel, sel_bytes, "selection", reinterpret_cast<const void*>(a->partial_ptr),
                                      (rows + 1) * 8, "partial_ptr")) return rc;
    if (int32_t rc = require_disjoint(sel, sel_bytes, "selection", reinterpret_cast<const void*>(a->full_ptr),
                                      (rows + 1) * 8, "full_ptr")) return rc;
  }
  return LLMK_OK;
}

int32_t check_attn_args(const llmk_attn_args* a) {
  if (a == nullptr) return invalid("args must not be null");
  if (a->struct_bytes != static_cast<int64_t>(sizeof(llmk_attn_args))) {
    return invalid("args.struct_bytes = " + std::to_string(a->struct_bytes) + " but this library expects " +
                   std::to_string(sizeof(llmk_attn_args)) + " (binding and library versions differ)");
  }
  if (a->heads_q < 1 || a->heads_kv < 1 || a->heads_q % a->heads_kv != 0) {
    return invalid("heads_q (" + std::to_string(a->heads_q) + ") must be a positive multiple of heads_kv (" +
                   std::to_string(a->heads_kv) + ")");
  }
  if (a->head_dim < 1) return invalid("head_dim must be >= 1; got " + std::to_string(a->head_dim));
  if (int32_t rc = check_geometry(a->batch, a->layout_batch, a->layout_heads, a->heads_q, a->seq_q, a->seq_k,
                                  a->block_q, a->block_k)) return rc;
  if (a->layout_batch != a->batch && (a->q_lens != 0 || a->k_lens != 0)) {
    return invalid("sequence lengths make the layout per batch: layout_batch must equal batch");
  }
  if (!is_float_dtype(a->dtype)) return invalid("dtype must be F32, F16 or BF16 (codes 0, 1, 2); got " + std::to_string(a->dtype));
  if (a->out_dtype != a->dtype && a->out_dtype != LLMK_F32) return invalid("out_dtype must be dtype or F32");
  /* fp32 kernels: the factors and their reciprocals must stay normal floats */
  if (!(a->scale >= 1e-30 && a->scale <= 1e30)) return invalid("scale must be in [1e-30, 1e30]; got " + std::to_string(a->scale));
  if (!(a->softcap == 0.0 || (a->softcap >= 1e-30 && a->softcap <= 1e30))) {
    return invalid("softcap must be 0 (off) or in [1e-30, 1e30]; got " + std::to_string(a->softcap));
  }
  const auto* nodes = reinterpret_cast<const llmk_mask_node*>(a->nodes);
  if (int32_t rc = check_mask_program(nodes, a->node_count)) return rc;
  /* a broadcast layout would apply batch 0's / head 0's blocks to every batch / head */
  if (a->layout_batch != a->batch && mask_varies_by_batch(nodes, a->node_count)) {
    return invalid("the mask has per-batch data: layout_batch must equal batch");
  }
  if (a->layout_heads != a->heads_q && mask_varies_by_head(nodes, a->node_count)) {
    return invalid("the mask has per-head data: layout_heads must equal heads_q");
  }
  if (a->col_cap < 0) return invalid("col_cap must be >= 0; got " + std::to_string(a->col_cap));
  if ((a->col_cap > 0) != (a->columns != 0)) {
    return invalid("columns must be given exactly when col_cap > 0; col_cap = " + std::to_string(a->col_cap) +
                   ", columns " + (a->columns != 0 ? "given" : "null"));
  }
  int64_t col_bytes = 0;
  const int64_t cd[] = {a->layout_batch, a->layout_heads, a->col_cap, 4};
  if (int32_t rc = require_product(cd, 4, "columns bytes", &col_bytes)) return rc;
  int64_t q_elems = 0, kv_elems = 0, lse_elems = 0;
  const int64_t qd[] = {a->batch, a->heads_q, a->seq_q, a->head_dim, 4};
  const int64_t kd[] = {a->batch, a->heads_kv, a->seq_k, a->head_dim, 4};
  const int64_t ld[] = {a->batch, a->heads_q, a->seq_q, 4};
  if (int32_t rc = require_product(qd, 5, "q bytes", &q_elems)) return rc;
  if (int32_t rc = require_product(kd, 5, "k bytes", &kv_elems)) return rc;
  if (int32_t rc = require_product(ld, 4, "lse bytes", &lse_elems)) return rc;
  const int64_t eb = dtype_bytes(a->dtype);
  const int64_t q_bytes = q_elems / 4 * eb, kv_bytes = kv_elems / 4 * eb;
  const int64_t out_bytes = q_elems / 4 * dtype_bytes(a->out_dtype), lse_bytes = lse_elems;
  const int64_t ptr_bytes = (a->layout_batch * a->layout_heads * ceil_div(a->seq_q, a->block_q) + 1) * 8;
  const struct { int64_t address; const char* name; int64_t bytes; } regions[] = {
      {a->out, "out", out_bytes},     {a->lse, "lse", lse_bytes}, {a->q, "q", q_bytes},
      {a->k, "k", kv_bytes},          {a->v, "v", kv_bytes},      {a->partial_ptr, "partial_ptr", ptr_bytes},
      {a->full_ptr, "full_ptr", ptr_bytes}, {a->columns, "columns", col_bytes}};
  constexpr int kRegions = sizeof(regions) / sizeof(regions[0]);
  for (const auto& r : regions) {
    if (r.bytes > 0 && r.address == 0) return invalid(std::string(r.name) + " must not be a null pointer");
  }
  /* outputs (the first two regions) overlap nothing else: not the inputs, not the layout */
  for (int o = 0; o < 2; ++o) {
    for (int i = o + 1; i < kRegions; ++i) {
      if (int32_t rc = require_disjoint(reinterpret_cast<const void*>(regions[o].address), regions[o].bytes,
                                        regions[o].name, reinterpret_cast<const void*>(regions[i].address),
                                        regions[i].bytes, regions[i].name)) return rc;
    }
  }
  return LLMK_OK;
}

int32_t check_merge_args(const void* out_a, const float* lse_a, const void* out_b, const float* lse_b,
                         const void* out, const float* lse, int64_t rows, int64_t d, int32_t dtype) {
  if (rows < 0) return invalid("rows must be >= 0; got " + std::to_string(rows));
  if (d < 1) return invalid("d must be >= 1; got " + std::to_string(d));
  if (!is_float_dtype(dtype)) return invalid("dtype must be F32, F16 or BF16 (codes 0, 1, 2); got " + std::to_string(dtype));
  int64_t elems = 0;
  const int64_t dims[] = {rows, d, 4};
  if (int32_t rc = require_product(dims, 3, "state bytes", &elems)) return rc;
  if (rows == 0) return LLMK_OK;
  const void* ptrs[] = {out_a, lse_a, out_b, lse_b, out, lse};
  const char* names[] = {"out_a", "lse_a", "out_b", "lse_b", "out", "lse"};
  for (int i = 0; i < 6; ++i) {
    if (int32_t rc = require_non_null(ptrs[i], names[i])) return rc;
  }
  const int64_t ob = rows * d * dtype_bytes(dtype), lb = rows * 4;
  /* outputs may alias an input exactly (in place), otherwise nothing overlaps */
  const struct { const void* p; int64_t bytes; const char* name; } outs[] = {{out, ob, "out"}, {lse, lb, "lse"}};
  const struct { const void* p; int64_t bytes; const char* name; } ins[] = {
      {out_a, ob, "out_a"}, {lse_a, lb, "lse_a"}, {out_b, ob, "out_b"}, {lse_b, lb, "lse_b"}};
  for (const auto& o : outs) {
    for (const auto& i : ins) {
      if (o.p == i.p && o.bytes == i.bytes) continue;
      if (int32_t rc = require_disjoint(o.p, o.bytes, o.name, i.p, i.bytes, i.name)) return rc;
    }
  }
  if (int32_t rc = require_disjoint(out, ob, "out", lse, lb, "lse")) return rc;
  if ((out == out_a) != (lse == lse_a) || (out == out_b) != (lse == lse_b)) {
    return invalid("in-place merge must alias out and lse of the same input state");
  }
  return LLMK_OK;
}

int32_t check_host_lengths(int64_t q_lens, int64_t k_lens, int64_t batch, int64_t seq_q, int64_t seq_k) {
  const struct { int64_t address; int64_t seq; const char* name; } lens[] = {{q_lens, seq_q, "q_lens"}, {k_lens, seq_k, "k_lens"}};
  for (const auto& l : lens) {
    if (l.address == 0) continue;
    const int32_t* p = reinterpret_cast<const int32_t*>(l.address);
    for (int64_t b = 0; b < batch; ++b) {
      if (p[b] < 0 || p[b] > l.seq) {
        return fail(LLMK_ERR_OUT_OF_RANGE, std::string(l.name) + "[" + std::to_string(b) + "] = " + std::to_string(p[b]) +
                                               " must be in [0, " + std::to_string(l.seq) + "]");
      }
    }
  }
  return LLMK_OK;
}

}  // namespace llmk
