/* Block-sparse attention forward and state merging on the CPU.
 *
 * Flash-style: one task per (batch, query head, query block, chunk of <= kRowChunk rows) with
 * an online softmax over the layout's KV blocks (full and partial lists merged in ascending
 * order, so results do not depend on the thread count). Each KV block is cut into sub-tiles of
 * <= kColChunk keys: S = (scale Q) K^T with the cut cross-entropy's logit GEMM, the element
 * predicate on partial tiles only, the softmax step (isa), O = alpha O + P V with the CCE's
 * gemm_acc. F16/BF16 operands are widened to fp32 once per tile; all arithmetic is fp32. K / V
 * rows at or past the batch row's key length are never read (NaN padding must not reach P V). */
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <omp.h>

#include "attention_args.h"
#include "cpu/isa/isa_kernels.h"
#include "cpu/widen.h"
#include "error.h"
#include "llmk/mask_math.h"

namespace llmk {
namespace {

constexpr int64_t kRowChunk = 128;   // query rows per task
constexpr int64_t kColChunk = 128;   // keys per sub-tile (a multiple of kCcePanelCols)
constexpr int64_t kLds = kColChunk;  // score tile row stride

/* ---- element predicate over a row segment --------------------------------------------------- */

/* dst[j] = leaf visible at (q, k0 + j). Interval leaves fill a range; the rest ask mask_math. */
void fill_leaf(const llmk_mask_node& n, const MaskRow& mr, int64_t q, int64_t k0, int64_t cols, uint8_t* dst) {
  int64_t lo = 0, hi = -1;  // visible k range, inclusive
  switch (n.op) {
    case LLMK_MASK_ALL: lo = k0; hi = k0 + cols - 1; break;
    case LLMK_MASK_NONE: break;
    case LLMK_MASK_CAUSAL: lo = k0; hi = q + mask_diag_offset(n, mr); break;
    case LLMK_MASK_WINDOW: {
      const int64_t qa = q + mask_diag_offset(n, mr);
      lo = qa - n.i2;
      hi = qa + n.i3;
      break;
    }
    case LLMK_MASK_SINKS: lo = 0; hi = n.i2 - 1; break;
    case LLMK_MASK_PREFIX: lo = 0; hi = static_cast<int64_t>(*mask_i32(n.data0, mr.b * n.batch_stride)) - 1; break;
    default:
      for (int64_t j = 0; j < cols; ++j) dst[j] = mask_leaf_visible(n, mr, q, k0 + j) ? 1 : 0;
      return;
  }
  for (int64_t j = 0; j < cols; ++j) {
    const int64_t k = k0 + j;
    dst[j] = (k >= lo && k <= hi) ? 1 : 0;
  }
}

/* stack[0, cols) = visible(q, k0 + j) for the whole program and the lengths; stack holds
 * (LLMK_MASK_MAX_DEPTH + 1) * kColChunk bytes. */
void row_visibility(const llmk_mask_node* nodes, int64_t count, const MaskRow& mr, int64_t q, int64_t k0,
                    int64_t cols, uint8_t* stack) {
  if (q >= mr.q_len) {
    std::memset(stack, 0, static_cast<size_t>(cols));
    return;
  }
  int64_t depth = 0;
  for (int64_t i = 0; i < count; ++i) {
    const llmk_mask_node& n = nodes[i];
    if (n.op == LLMK_MASK_AND || n.op == LLMK_MASK_OR) {
      uint8_t* a = stack + (depth - 2) * kColChunk;
      const uint8_t* b = stack + (depth - 1) * kColChunk;
      if (n.op == LLMK_MASK_AND) {
        for (int64_t j = 0; j < cols; ++j) a[j] &= b[j];
      } else {
        for (int64_t j = 0; j < cols; ++j) a[j] |= b[j];
      }
      --depth;
    } else if (n.op == LLMK_MASK_NOT) {
      uint8_t* a = stack + (depth - 1) * kColChunk;
      for (int64_t j = 0; j < cols; ++j) a[j] ^= 1;
    } else {
      fill_leaf(n, mr, q, k0, cols, stack + depth * kColChunk);
      ++depth;
    }
  }
  for (int64_t j = mr.k_len - k0 > 0 ? mr.k_len - k0 : 0; j < cols; ++j) stack[j] = 0;
}

/* ---- forward ----------------------------------------------------------------------------- */

/* Per-thread buffers (fp32 unless noted). */
struct TileBuffers {
  float* q;      // [kRowChunk, d] scaled queries
  float* s;      // [kRowChunk, kLds] scores, then probabilities
  float* acc;    // [kRowChunk, d] unnormalised output
  float* panel;  // K sub-tile packed for the logit GEMM
  float* kf;     // [kColChunk, d] widened K (F16/BF16)
  float* vf;     // [kColChunk, d] widened V (F16/BF16)
  float* row_max;
  float* row_sum;
  float* alpha;
  uint8_t* vis;  // (LLMK_MASK_MAX_DEPTH + 1) * kColChunk
};

struct Arena {
  std::vector<float> floats;
  std::vector<uint8_t> bytes;
  int64_t floats_per_thread = 0, bytes_per_thread = 0;

  Arena(int threads, int64_t d) {
    floats_per_thread = 2 * kRowChunk * d + kRowChunk * kLds + kColChunk * d /* panel */ + 2 * kColChunk * d +
                        3 * kRowChunk + 16;
    bytes_per_thread = (LLMK_MASK_MAX_DEPTH + 1) * kColChunk;
    floats.resize(static_cast<size_t>(floats_per_thread * threads));
    bytes.resize(static_cast<size_t>(bytes_per_thread * threads));
  }

  TileBuffers for_thread(int t, int64_t d) {
    float* p = floats.data() + t * floats_per_thread;
    TileBuffers b;
    b.q = p; p += kRowChunk * d;
    b.s = p; p += kRowChunk * kLds;
    b.acc = p; p += kRowChunk * d;
    b.panel = p; p += kColChunk * d;
    b.kf = p; p += kColChunk * d;
    b.vf = p; p += kColChunk * d;
    b.row_max = p; p += kRowChunk;
    b.row_sum = p; p += kRowChunk;
    b.alpha = p;
    b.vis = bytes.data() + t * bytes_per_thread;
    return b;
  }
};

struct ForwardPlan {
  const llmk_attn_args& a;
  const llmk_mask_node* nodes;
  int64_t q_blocks, chunks_per_block, group, elem;
  const int64_t* partial_ptr;
  const int32_t* partial_idx;
  const int64_t* full_ptr;
  const int32_t* full_idx;
  const int32_t* columns;  // [layout rows of (b, h), col_cap] or null
  int64_t col_cap;

  explicit ForwardPlan(const llmk_attn_args& args)
      : a(args),
        nodes(reinterpret_cast<const llmk_mask_node*>(args.nodes)),
        q_blocks(ceil_div(args.seq_q, args.block_q)),
        chunks_per_block(ceil_div(args.block_q < args.seq_q ? args.block_q : args.seq_q, kRowChunk)),
        group(args.heads_q / args.heads_kv),
        elem(dtype_bytes(args.dtype)),
        partial_ptr(reinterpret_cast<const int64_t*>(args.partial_ptr)),
        partial_idx(reinterpret_cast<const int32_t*>(args.partial_idx)),
        full_ptr(reinterpret_cast<const int64_t*>(args.full_ptr)),
        full_idx(reinterpret_cast<const int32_t*>(args.full_idx)),
        columns(args.col_cap > 0 ? reinterpret_cast<const int32_t*>(args.columns) : nullptr),
        col_cap(args.col_cap) {}

  int64_t tasks() const { return a.batch * a.heads_q * q_blocks * chunks_per_block; }
};

/* One key sub-tile [k0, k0 + cols) against the task's rows [q0, q0 + rows). */
void visit_subtile(const ForwardPlan& p, TileBuffers& t, const MaskRow& mr, int64_t q0, int64_t rows, int64_t k0,
                   int64_t cols, bool partial, const char* k_head, const char* v_head) {
  const llmk_attn_args& a = p.a;
  const int64_t d = a.head_dim;
  if (partial) {
    const int cls = mask_tile_class(p.nodes, a.node_count, mr, q0, q0 + rows, k0, k0 + cols);
    if (cls == LLMK_TILE_EMPTY) return;
    partial = cls == LLMK_TILE_PARTIAL;
  }
  const IsaKernels& k = isa();
  const float* kf = widen(k_head + k0 * d * p.elem, a.dtype, cols * d, t.kf);
  k.cce_pack_panel(kf, cols, d, t.panel);
  k.cce_logits(t.q, rows, d, t.panel, cols, t.s, kLds);
  if (partial) {
    for (int64_t r = 0; r < rows; ++r) {
      row_visibility(p.nodes, a.node_count, mr, q0 + r, k0, cols, t.vis);
      float* sr = t.s + r * kLds;
      for (int64_t j = 0; j < cols; ++j) sr[j] = t.vis[j] ? sr[j] : -INFINITY;
    }
  }
  k.attn_tile_softmax(t.s, kLds, rows, cols, static_cast<float>(a.softcap), t.row_max, t.row_sum, t.alpha);
  k.attn_scale_rows(t.acc, d, rows, d, t.alpha);
  const float* vf = widen(v_head + k0 * d * p.elem, a.dtype, cols * d, t.vf);
  k.cce_gemm_acc(t.acc, d, t.s, kLds, rows, cols, vf, d);
}

/* Keys gathered from token columns: k/v rows idx[0, cols) against the task's rows. */
void visit_gathered(const ForwardPlan& p, TileBuffers& t, const MaskRow& mr, int64_t q0, int64_t rows,
                    const int64_t* idx, int64_t cols, bool partial, const char* k_head, const char* v_head) {
  const llmk_attn_args& a = p.a;
  const int64_t d = a.head_dim;
  const IsaKernels& k = isa();
  for (int64_t j = 0; j < cols; ++j) {  // widen (or copy) row idx[j] into row j of the buffers
    const float* kr = widen(k_head + idx[j] * d * p.elem, a.dtype, d, t.kf + j * d);
    const float* vr = widen(v_head + idx[j] * d * p.elem, a.dtype, d, t.vf + j * d);
    if (kr != t.kf + j * d) std::memcpy(t.kf + j * d, kr, static_cast<size_t>(d) * sizeof(float));
    if (vr != t.vf + j * d) std::memcpy(t.vf + j * d, vr, static_cast<size_t>(d) * sizeof(float));
  }
  k.cce_pack_panel(t.kf, cols, d, t.panel);
  k.cce_logits(t.q, rows, d, t.panel, cols, t.s, kLds);
  if (partial) {
    for (int64_t r = 0; r < rows; ++r) {
      float* sr = t.s + r * kLds;
      for (int64_t j = 0; j < cols; ++j) {
        if (!mask_visible(p.nodes, a.node_count, mr, q0 + r, idx[j])) sr[j] = -INFINITY;
      }
    }
  }
  k.attn_tile_softmax(t.s, kLds, rows, cols, static_cast<float>(a.softcap), t.row_max, t.row_sum, t.alpha);
  k.attn_scale_rows(t.acc, d, rows, d, t.alpha);
  k.cce_gemm_acc(t.acc, d, t.s, kLds, rows, cols, t.vf, d);
}

/* The row's token columns whose key block neither list holds (part / full: ascending), in
 * chunks of kColChunk gathered keys, one walk over the list: columns every row of the task sees
 * in full (no element mask) and partly visible ones fill separate chunks. Columns the mask hides
 * from all rows are dropped. */
void visit_columns(const ForwardPlan& p, TileBuffers& t, const MaskRow& mr, int64_t q0, int64_t rows,
                   const int32_t* cols, const int32_t* part, int64_t npart, const int32_t* full, int64_t nfull,
                   const char* k_head, const char* v_head) {
  const llmk_attn_args& a = p.a;
  int64_t idx[2][kColChunk];  // [0]: columns every row sees (no element mask), [1]: partly visible
  int64_t n[2] = {0, 0};
  int64_t pi = 0, fi = 0;
  for (int64_t c = 0; c < p.col_cap && cols[c] >= 0; ++c) {
    const int64_t j = cols[c], kb = j / a.block_k;
    while (pi < npart && part[pi] < kb) ++pi;  // columns ascend: the list cursors only advance
    while (fi < nfull && full[fi] < kb) ++fi;
    if ((pi < npart && part[pi] == kb) || (fi < nfull && full[fi] == kb)) continue;
    // EMPTY also for a key at or past k_len (the classifier clips to the lengths): its K / V rows
    // are never gathered, so padding cannot reach P V.
    const int cls = mask_tile_class(p.nodes, a.node_count, mr, q0, q0 + rows, j, j + 1);
    if (cls == LLMK_TILE_EMPTY) continue;
    const int g = cls == LLMK_TILE_PARTIAL ? 1 : 0;
    idx[g][n[g]++] = j;
    if (n[g] == kColChunk) {
      visit_gathered(p, t, mr, q0, rows, idx[g], n[g], g == 1, k_head, v_head);
      n[g] = 0;
    }
  }
  for (int g = 0; g < 2; ++g) {
    if (n[g] > 0) visit_gathered(p, t, mr, q0, rows, idx[g], n[g], g == 1, k_head, v_head);
  }
}

void run_task(const ForwardPlan& p, TileBuffers& t, int64_t task) {
  const llmk_attn_args& a = p.a;
  const int64_t d = a.head_dim;
  const int64_t chunk = task % p.chunks_per_block;
  const int64_t qb = (task / p.chunks_per_block) % p.q_blocks;
  const int64_t hq = (task / (p.chunks_per_block * p.q_blocks)) % a.heads_q;
  const int64_t b = task / (p.chunks_per_block * p.q_blocks * a.heads_q);
  const int64_t q0 = qb * a.block_q + chunk * kRowChunk;
  const int64_t block_end = (qb + 1) * a.block_q < a.seq_q ? (qb + 1) * a.block_q : a.seq_q;
  if (q0 >= block_end) return;
  const int64_t rows = block_end - q0 < kRowChunk ? block_end - q0 : kRowChunk;
  const int64_t hkv = hq / p.group;
  const MaskRow mr = mask_row(b, hq, a.q_lens, a.k_lens, a.seq_q, a.seq_k);

  const int64_t q_row0 = (b * a.heads_q + hq) * a.seq_q + q0;  // first row of q/out/lse
  const char* q_src = reinterpret_cast<const char*>(a.q) + q_row0 * d * p.elem;
  const float* qf = widen(q_src, a.dtype, rows * d, t.q);
  const float scale = static_cast<float>(a.scale);
  for (int64_t i = 0; i < rows * d; ++i) t.q[i] = qf[i] * scale;
  for (int64_t r = 0; r < rows; ++r) {
    t.row_max[r] = -INFINITY;
    t.row_sum[r] = 0.0f;
  }
  std::memset(t.acc, 0, static_cast<size_t>(rows * d) * sizeof(float));

  const int64_t kv_row0 = (b * a.heads_kv + hkv) * a.seq_k;
  const char* k_head = reinterpret_cast<const char*>(a.k) + kv_row0 * d * p.elem;
  const char* v_head = reinterpret_cast<const char*>(a.v) + kv_row0 * d * p.elem;
  const int64_t lb = a.layout_batch == 1 ? 0 : b, lh = a.layout_heads == 1 ? 0 : hq;
  const int64_t lrow = (lb * a.layout_heads + lh) * p.q_blocks + qb;
  int64_t pi = p.partial_ptr[lrow], fi = p.full_ptr[lrow];
  const int64_t pe = p.partial_ptr[lrow + 1], fe = p.full_ptr[lrow + 1];
  const int64_t p0 = pi, f0 = fi;
  // Listed blocks that touch form one key span, cut into sub-tiles of kColChunk keys: with blocks
  // narrower than kColChunk (MInference's 64) a sub-tile per block would run the logit and PV
  // GEMMs at a fraction of their width. A span with a partial block re-classifies each sub-tile
  // (visit_subtile), so its full parts still skip the element mask.
  // Spans end at k_lim = min(seq_k, k_len): keys at or past it do not exist for this batch row,
  // and their K / V rows (the padding of a KV cache, possibly NaN or Inf) are never read. Masking
  // them is not enough: P V would multiply them by P = 0, and 0 * NaN = 0 * Inf = NaN. A block
  // the cut shortens was PARTIAL (the lengths cut it), so its sub-tiles are re-classified anyway.
  const int64_t k_lim = mr.k_len < a.seq_k ? mr.k_len : a.seq_k;
  int64_t span_begin = -1, span_end = -1;
  bool span_partial = false;
  const auto visit_span = [&]() {
    for (int64_t k0 = span_begin; k0 < span_end; k0 += kColChunk) {
      const int64_t cols = span_end - k0 < kColChunk ? span_end - k0 : kColChunk;
      visit_subtile(p, t, mr, q0, rows, k0, cols, span_partial, k_head, v_head);
    }
  };
  while (pi < pe || fi < fe) {  // both lists ascending: merge them
    const bool take_partial = fi >= fe || (pi < pe && p.partial_idx[pi] < p.full_idx[fi]);
    const int64_t kb = take_partial ? p.partial_idx[pi++] : p.full_idx[fi++];
    const int64_t k_begin = kb * a.block_k;
    if (k_begin >= k_lim) continue;  // wholly past the row's keys: nothing to read
    const int64_t k_end = k_begin + a.block_k < k_lim ? k_begin + a.block_k : k_lim;
    if (k_begin == span_end) {
      span_end = k_end;
      span_partial = span_partial || take_partial;
      continue;
    }
    if (span_begin >= 0) visit_span();
    span_begin = k_begin;
    span_end = k_end;
    span_partial = take_partial;
  }
  if (span_begin >= 0) visit_span();
  if (p.columns != nullptr) {
    visit_columns(p, t, mr, q0, rows, p.columns + (lb * a.layout_heads + lh) * p.col_cap, p.partial_idx + p0, pe - p0,
                  p.full_idx + f0, fe - f0, k_head, v_head);
  }

  float* lse = reinterpret_cast<float*>(a.lse) + q_row0;
  for (int64_t r = 0; r < rows; ++r) {
    float* o = t.acc + r * d;
    const float l = t.row_sum[r];
    if (l > 0.0f) {
      const float inv = 1.0f / l;
      for (int64_t j = 0; j < d; ++j) o[j] *= inv;
      lse[r] = t.row_max[r] + std::log(l);
    } else {
      std::memset(o, 0, static_cast<size_t>(d) * sizeof(float));
      lse[r] = -INFINITY;
    }
  }
  narrow(t.acc, a.out_dtype, rows * d, static_cast<char*>(reinterpret_cast<void*>(a.out)) + q_row0 * d * dtype_bytes(a.out_dtype));
}

/* Column rows: strictly ascending keys in [0, seq_k), then only -1 (the same rule steers reads). */
int32_t check_columns(const ForwardPlan& p) {
  if (p.columns == nullptr) return LLMK_OK;
  const llmk_attn_args& a = p.a;
  for (int64_t r = 0; r < a.layout_batch * a.layout_heads; ++r) {
    const int32_t* c = p.columns + r * p.col_cap;
    int64_t n = 0;
    while (n < p.col_cap && c[n] >= 0) {
      if (c[n] >= a.seq_k || (n > 0 && c[n] <= c[n - 1])) {
        return fail(LLMK_ERR_OUT_OF_RANGE, "columns of layout (batch, head) row " + std::to_string(r) +
                                               " must be strictly ascending keys in [0, " + std::to_string(a.seq_k) +
                                               "); entry " + std::to_string(n) + " is " + std::to_string(c[n]));
      }
      ++n;
    }
    for (int64_t i = n; i < p.col_cap; ++i) {
      if (c[i] != -1) {
        return fail(LLMK_ERR_OUT_OF_RANGE, "columns of layout (batch, head) row " + std::to_string(r) +
                                               ": after the first negative entry only -1 padding may follow; entry " +
                                               std::to_string(i) + " is " + std::to_string(c[i]));
      }
    }
  }
  return LLMK_OK;
}

/* Layout lists must stay inside the KV blocks: a corrupted layout must not steer reads. */
int32_t check_layout_lists(const ForwardPlan& p) {
  const llmk_attn_args& a = p.a;
  const int64_t rows = a.layout_batch * a.layout_heads * p.q_blocks;
  const int64_t k_blocks = ceil_div(a.seq_k, a.block_k);
  const struct { const int64_t* ptr; const int32_t* idx; const char* name; } lists[] = {
      {p.partial_ptr, p.partial_idx, "partial"}, {p.full_ptr, p.full_idx, "full"}};
  const int64_t out_bytes = a.batch * a.heads_q * a.seq_q * a.head_dim * dtype_bytes(a.out_dtype);
  const int64_t lse_bytes = a.batch * a.heads_q * a.seq_q * 4;
  for (const auto& l : lists) {
    if (l.ptr[0] != 0) return fail(LLMK_ERR_INVALID_ARGUMENT, std::string(l.name) + "_ptr[0] must be 0");
    const int64_t idx_bytes = l.ptr[rows] * 4;  /* ptr is non-decreasing from 0: checked below */
    if (int32_t rc = require_disjoint(reinterpret_cast<void*>(a.out), out_bytes, "out", l.idx, idx_bytes, l.name)) return rc;
    if (int32_t rc = require_disjoint(reinterpret_cast<void*>(a.lse), lse_bytes, "lse", l.idx, idx_bytes, l.name)) return rc;
    for (int64_t r = 0; r < rows; ++r) {
      if (l.ptr[r + 1] < l.ptr[r]) {
        return fail(LLMK_ERR_INVALID_ARGUMENT, std::string(l.name) + "_ptr must be non-decreasing (row " + std::to_string(r) + ")");
      }
      for (int64_t i = l.ptr[r]; i < l.ptr[r + 1]; ++i) {
        if (l.idx == nullptr || l.idx[i] < 0 || l.idx[i] >= k_blocks || (i > l.ptr[r] && l.idx[i] <= l.idx[i - 1])) {
          return fail(LLMK_ERR_OUT_OF_RANGE, std::string(l.name) + "_idx of layout row " + std::to_string(r) +
                                                 " must hold ascending KV blocks in [0, " + std::to_string(k_blocks) + ")");
        }
      }
    }
  }
  return check_columns(p);
}

/* ---- merge ------------------------------------------------------------------------------- */

void merge_rows(const void* out_a, const float* lse_a, const void* out_b, const float* lse_b, void* out, float* lse,
                int64_t rows, int64_t d, int32_t dtype) {
  const int64_t elem = dtype_bytes(dtype);
  const int threads = omp_get_max_threads();
  std::vector<float> bufs(static_cast<size_t>(3 * d * threads));  // allocated outside the parallel region
#pragma omp parallel num_threads(threads)
  {
    float* buf = bufs.data() + 3 * d * omp_get_thread_num();
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float la = lse_a[r], lb = lse_b[r];
      const float m = la > lb ? la : lb;
      const int64_t off = r * d * elem;
      const float* oa = widen(static_cast<const char*>(out_a) + off, dtype, d, buf);
      const float* ob = widen(static_cast<const char*>(out_b) + off, dtype, d, buf + d);
      float* o = dtype == LLMK_F32 ? reinterpret_cast<float*>(static_cast<char*>(out) + off) : buf + 2 * d;
      if (m == -INFINITY) {
        for (int64_t j = 0; j < d; ++j) o[j] = 0.0f;
        lse[r] = -INFINITY;
      } else {
        const float wa = std::exp(la - m), wb = std::exp(lb - m), sum = wa + wb;
        const float ca = wa / sum, cb = wb / sum;
        for (int64_t j = 0; j < d; ++j) o[j] = oa[j] * ca + ob[j] * cb;
        lse[r] = m + std::log(sum);
      }
      if (dtype != LLMK_F32) narrow(o, dtype, d, static_cast<char*>(out) + off);
    }
  }
}

}  // namespace
}  // namespace llmk

extern "C" int32_t llmk_attn_forward_cpu(const llmk_attn_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_attn_args(args)) return rc;
    const llmk_attn_args& a = *args;
    if (a.seq_q == 0) return LLMK_OK;
    const ForwardPlan plan(a);
    if (int32_t rc = check_layout_lists(plan)) return rc;
    if (int32_t rc = check_host_lengths(a.q_lens, a.k_lens, a.batch, a.seq_q, a.seq_k)) return rc;
    const int threads = omp_get_max_threads();
    Arena arena(threads, a.head_dim);  // may throw bad_alloc here, outside the parallel region
    const int64_t tasks = plan.tasks();
#pragma omp parallel num_threads(threads)
    {
      TileBuffers t = arena.for_thread(omp_get_thread_num(), a.head_dim);
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < tasks; ++task) run_task(plan, t, task);
    }
    return LLMK_OK;
  });
}

extern "C" int32_t llmk_attn_merge_cpu(const void* out_a, const float* lse_a, const void* out_b, const float* lse_b,
                                       void* out, float* lse, int64_t rows, int64_t d, int32_t dtype) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_merge_args(out_a, lse_a, out_b, lse_b, out, lse, rows, d, dtype)) return rc;
    merge_rows(out_a, lse_a, out_b, lse_b, out, lse, rows, d, dtype);
    return LLMK_OK;
  });
}
