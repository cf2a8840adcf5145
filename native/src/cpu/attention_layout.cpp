/* Block layout compilation on the CPU: every tile of every layout row (or, with a selection, every
 * selected tile) is classified with the shared conservative classifier (llmk/mask_math.h); count
 * writes the CSR row pointers, fill the ascending KV block lists. Rows are independent, so both passes run in parallel over rows and
 * are deterministic. */
#include <cstdint>
#include <string>

#include "attention_args.h"
#include "error.h"
#include "llmk/mask_math.h"

namespace llmk {
namespace {

struct LayoutGeometry {
  int64_t q_blocks, k_blocks, rows;
};

LayoutGeometry geometry(const llmk_layout_args& a) {
  LayoutGeometry g;
  g.q_blocks = ceil_div(a.seq_q, a.block_q);
  g.k_blocks = ceil_div(a.seq_k, a.block_k);
  g.rows = a.layout_batch * a.layout_heads * g.q_blocks;
  return g;
}

/* Visits KV blocks [kb0, kb1) of one row in ascending order: visit(kb, cls) for non-empty ones.
 *
 * Spans first, tiles only where needed: the classifier is monotone (a span it calls EMPTY or
 * FULL has only EMPTY or FULL tiles under the same classifier: every leaf's test is a range
 * test, AND/OR/NOT take min/max/complement, and a FULL span is not cut by a length), so halving
 * PARTIAL spans gives exactly the per-tile result while a causal + window + sinks row of 1024
 * tiles costs a few dozen classifications instead of 1024. */
template <typename Visit>
void visit_span(const llmk_mask_node* nodes, int64_t count, const MaskRow& mr, const llmk_layout_args& a,
                int64_t q0, int64_t q1, int64_t kb0, int64_t kb1, Visit& visit) {
  const int64_t k0 = kb0 * a.block_k;
  const int64_t k_end = kb1 * a.block_k;
  const int64_t k1 = k_end < a.seq_k ? k_end : a.seq_k;
  const int cls = mask_tile_class(nodes, count, mr, q0, q1, k0, k1);
  if (cls == LLMK_TILE_EMPTY) return;
  if (cls == LLMK_TILE_FULL || kb1 - kb0 == 1) {
    for (int64_t kb = kb0; kb < kb1; ++kb) visit(kb, cls);
    return;
  }
  const int64_t mid = kb0 + (kb1 - kb0) / 2;
  visit_span(nodes, count, mr, a, q0, q1, kb0, mid, visit);
  visit_span(nodes, count, mr, a, q0, q1, mid, kb1, visit);
}

/* Visits row r's tiles in ascending KV block order: visit(kb, cls) for non-empty ones. */
template <typename Visit>
void classify_row(const llmk_layout_args& a, const LayoutGeometry& g, int64_t r, Visit&& visit) {
  const auto* nodes = reinterpret_cast<const llmk_mask_node*>(a.nodes);
  const int64_t qb = r % g.q_blocks;
  const int64_t lh = (r / g.q_blocks) % a.layout_heads;
  const int64_t lb = r / (g.q_blocks * a.layout_heads);
  const MaskRow mr = mask_row(lb, lh, a.q_lens, a.k_lens, a.seq_q, a.seq_k);
  const int64_t q0 = qb * a.block_q;
  const int64_t q1 = q0 + a.block_q < a.seq_q ? q0 + a.block_q : a.seq_q;
  if (a.selection != 0) {
    /* only the selected tiles, each classified on its own (a selection is not monotone, so no
     * span halving): O(nkb) bytes per row */
    const uint8_t* sel = reinterpret_cast<const uint8_t*>(a.selection) + r * g.k_blocks;
    for (int64_t kb = 0; kb < g.k_blocks; ++kb) {
      if (sel[kb] == 0) continue;
      const int64_t k0 = kb * a.block_k;
      const int64_t k1 = k0 + a.block_k < a.seq_k ? k0 + a.block_k : a.seq_k;
      const int cls = mask_tile_class(nodes, a.node_count, mr, q0, q1, k0, k1);
      if (cls != LLMK_TILE_EMPTY) visit(kb, cls);
    }
    return;
  }
  if (g.k_blocks > 0) visit_span(nodes, a.node_count, mr, a, q0, q1, 0, g.k_blocks, visit);
}

}  // namespace
}  // namespace llmk

extern "C" int32_t llmk_layout_count_cpu(const llmk_layout_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_layout_args(args, false)) return rc;
    const llmk_layout_args& a = *args;
    if (int32_t rc = check_host_lengths(a.q_lens, a.k_lens, a.batch, a.seq_q, a.seq_k)) return rc;
    const LayoutGeometry g = geometry(a);
    auto* pp = reinterpret_cast<int64_t*>(a.partial_ptr);
    auto* fp = reinterpret_cast<int64_t*>(a.full_ptr);
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t r = 0; r < g.rows; ++r) {
      int64_t partial = 0, full = 0;
      classify_row(a, g, r, [&](int64_t, int cls) { (cls == LLMK_TILE_FULL ? full : partial) += 1; });
      pp[r + 1] = partial;
      fp[r + 1] = full;
    }
    pp[0] = 0;
    fp[0] = 0;
    for (int64_t r = 0; r < g.rows; ++r) {
      pp[r + 1] += pp[r];
      fp[r + 1] += fp[r];
    }
    return LLMK_OK;
  });
}

extern "C" int32_t llmk_layout_fill_cpu(const llmk_layout_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_layout_args(args, true)) return rc;
    const llmk_layout_args& a = *args;
    if (int32_t rc = check_host_lengths(a.q_lens, a.k_lens, a.batch, a.seq_q, a.seq_k)) return rc;
    const LayoutGeometry g = geometry(a);
    const auto* pp = reinterpret_cast<const int64_t*>(a.partial_ptr);
    const auto* fp = reinterpret_cast<const int64_t*>(a.full_ptr);
    for (int64_t r = 0; r < g.rows; ++r) { /* a corrupted ptr array must not steer the writes */
      if (pp[0] != 0 || fp[0] != 0 || pp[r + 1] < pp[r] || fp[r + 1] < fp[r]) {
        return fail(LLMK_ERR_INVALID_ARGUMENT, "partial_ptr/full_ptr must start at 0 and be non-decreasing (row " +
                                                   std::to_string(r) + ")");
      }
    }
    if ((pp[g.rows] > 0 && a.partial_idx == 0) || (fp[g.rows] > 0 && a.full_idx == 0)) {
      return fail(LLMK_ERR_INVALID_ARGUMENT, "partial_idx and full_idx must not be null when their count is > 0");
    }
    auto* pi = reinterpret_cast<int32_t*>(a.partial_idx);
    auto* fi = reinterpret_cast<int32_t*>(a.full_idx);
    int64_t mismatched_row = -1;
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t r = 0; r < g.rows; ++r) {
      int64_t p = pp[r], f = fp[r];
      const int64_t p_end = pp[r + 1], f_end = fp[r + 1];
      bool fits = true;
      classify_row(a, g, r, [&](int64_t kb, int cls) {
        if (cls == LLMK_TILE_FULL) {
          if (f < f_end) fi[f] = static_cast<int32_t>(kb); else fits = false;
          ++f;
        } else {
          if (p < p_end) pi[p] = static_cast<int32_t>(kb); else fits = false;
          ++p;
        }
      });
      if (!fits || p != p_end || f != f_end) {
#pragma omp critical(llmk_layout_fill)
        mismatched_row = r;
      }
    }
    if (mismatched_row >= 0) {
      return fail(LLMK_ERR_INVALID_ARGUMENT, "layout row " + std::to_string(mismatched_row) +
                                                 ": ptr arrays do not match this mask (run count with the same arguments first)");
    }
    return LLMK_OK;
  });
}
