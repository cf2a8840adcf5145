/* Selection rules of the dynamic sparse prefill estimators (llmk_prefill_select_*), compiled by
 * g++ for the CPU and by nvcc for the CUDA kernels, so that the same F32 scores give bit-identical
 * selections on every backend: one comparator, one heap, one cumulative-mass rule, one sequence
 * of double additions.
 *
 * Order: a precedes b iff key(a) > key(b), or equal keys and index(a) < index(b), with NaN taken
 * as -inf and -0 as +0. The order is total, so the heap below (used by both backends) yields the
 * unique sorted sequence, whatever the sort would have been.
 *
 * Per head, a caller provides a workspace of prefill_ws_bytes() bytes (PrefillWs), zeroes the
 * head's selection [nqb, nkb] and then runs, per method:
 *   VS:    prefill_vs_choose (one thread), prefill_vs_mark_row (any thread per row);
 *   TOPK:  prefill_topk_row (one thread per row, row heap at ws.heap + qb * nkb);
 *   XATTN: prefill_xattn_row (likewise);
 *   FLEX:  prefill_flex_choose (one thread; marks the query-aware entries), prefill_flex_mark_row;
 * and counts the selected tiles. */
#ifndef LLMK_PREFILL_MATH_H
#define LLMK_PREFILL_MATH_H

#include <math.h>
#include <stdint.h>

#include "llmk/host_device.h"
#include "llmk/llmk.h"

namespace llmk {

/* Tile geometry of one (b, h): off = Sk - Sq (bottom-right alignment). */
struct PrefillGeom {
  int64_t sq, sk, bq, bk, nqb, nkb, off;
};

LLMK_HD PrefillGeom prefill_geom(int64_t sq, int64_t sk, int64_t bq, int64_t bk) {
  PrefillGeom g;
  g.sq = sq;
  g.sk = sk;
  g.bq = bq;
  g.bk = bk;
  g.nqb = (sq + bq - 1) / bq;
  g.nkb = (sk + bk - 1) / bk;
  g.off = sk - sq;
  return g;
}

/* First and last aligned query of query block qb, and the key block holding the last one. */
LLMK_HD int64_t prefill_first(const PrefillGeom& g, int64_t qb) { return qb * g.bq + g.off; }
LLMK_HD int64_t prefill_last(const PrefillGeom& g, int64_t qb) {
  const int64_t end = (qb + 1) * g.bq < g.sq ? (qb + 1) * g.bq : g.sq;
  return end - 1 + g.off;
}
/* kb is reachable from row qb (some pair is causal) iff kb <= prefill_diag(g, qb). */
LLMK_HD int64_t prefill_diag(const PrefillGeom& g, int64_t qb) { return prefill_last(g, qb) / g.bk; }

/* Comparison key: NaN -> -inf, -0 -> +0. */
LLMK_HD float prefill_key(float x) { return x != x ? -INFINITY : (x == 0.0f ? 0.0f : x); }
LLMK_HD double prefill_key(double x) { return x != x ? -HUGE_VAL : (x == 0.0 ? 0.0 : x); }

template <typename T>
LLMK_HD bool prefill_precedes(T va, int64_t ia, T vb, int64_t ib) {
  va = prefill_key(va);
  vb = prefill_key(vb);
  return va > vb || (va == vb && ia < ib);
}

/* a * b rounded on its own: nvcc would otherwise fuse it with a following addition (FMA), which
 * the host compiler does not do, and the backends would round differently. */
LLMK_HD double prefill_dmul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

/* Mass of a value in cumulative sums: values not > 0 (negative, NaN) count as 0. */
LLMK_HD double prefill_mass(double x) { return x > 0.0 ? x : 0.0; }

/* Item values by index: F32 scores or double pooled masses. */
struct PrefillF32 {
  const float* p;
  LLMK_HD float operator()(int32_t i) const { return p[i]; }
};
struct PrefillF64 {
  const double* p;
  LLMK_HD double operator()(int32_t i) const { return p[i]; }
};

/* Max-heap of item indices under the order (root = the item preceding all others). */
template <typename V>
LLMK_HD void prefill_sift(int32_t* h, int64_t n, int64_t i, const V& val) {
  const int32_t x = h[i];
  for (;;) {
    int64_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && prefill_precedes(val(h[c + 1]), h[c + 1], val(h[c]), h[c])) ++c;
    if (!prefill_precedes(val(h[c]), h[c], val(x), x)) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = x;
}
template <typename V>
LLMK_HD void prefill_heapify(int32_t* h, int64_t n, const V& val) {
  for (int64_t i = n / 2; i-- > 0;) prefill_sift(h, n, i, val);
}
template <typename V>
LLMK_HD int32_t prefill_pop(int32_t* h, int64_t* n, const V& val) {
  const int32_t top = h[0];
  *n -= 1;
  if (*n > 0) {
    h[0] = h[*n];
    prefill_sift(h, *n, 0, val);
  }
  return top;
}

/* Index order alone (every value equal): the heap's root is the smallest index. */
struct PrefillByIndex {
  LLMK_HD float operator()(int32_t) const { return 0.0f; }
};

/* a[0, n) sorted ascending in place (heap sort: no allocation, same on host and device). */
LLMK_HD void prefill_sort_ascending(int32_t* a, int64_t n) {
  const PrefillByIndex by_index;
  prefill_heapify(a, n, by_index);
  for (int64_t m = n; m > 0;) {
    const int32_t smallest = prefill_pop(a, &m, by_index);
    a[m] = smallest;  // the slot the heap just released: smallest last, so a ends descending
  }
  for (int64_t i = 0, j = n - 1; i < j; ++i, --j) {
    const int32_t t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/* ---- workspace ------------------------------------------------------------------------------ */

struct PrefillWs {
  int32_t* heap;  // [max(Sk + 1, nqb * nkb)]; VS after choose: prefix counts of the chosen offsets
  int32_t* list;  // [Sk + 2 * nkb]: VS slash offsets; FLEX vertical blocks, slash diagonals
  double* dbl;    // [2 * nkb]: VS column minimum per key block (as int64); FLEX vb, sb
};

LLMK_HD int64_t prefill_round8(int64_t bytes) { return (bytes + 7) / 8 * 8; }
LLMK_HD int64_t prefill_heap_items(const PrefillGeom& g) {
  return g.sk + 1 > g.nqb * g.nkb ? g.sk + 1 : g.nqb * g.nkb;
}
LLMK_HD int64_t prefill_ws_bytes(const PrefillGeom& g) {
  const int64_t heap = prefill_heap_items(g);
  return prefill_round8(4 * heap) + prefill_round8(4 * (g.sk + 2 * g.nkb)) + 16 * g.nkb;
}
LLMK_HD PrefillWs prefill_ws(void* base, const PrefillGeom& g) {
  unsigned char* p = static_cast<unsigned char*>(base);
  const int64_t heap = prefill_heap_items(g);
  PrefillWs w;
  w.heap = reinterpret_cast<int32_t*>(p);
  p += prefill_round8(4 * heap);
  w.list = reinterpret_cast<int32_t*>(p);
  p += prefill_round8(4 * (g.sk + 2 * g.nkb));
  w.dbl = reinterpret_cast<double*>(p);
  return w;
}

/* Per-head summary of a choose step: the head_counts fields other than blocks. */
struct PrefillHeadInfo {
  int64_t pattern, verticals, slashes, columns;
  double divergence;  // FLEX only, else NaN
};

/* ---- MInference vertical-slash ------------------------------------------------------------- */

/* Columns C = [0, fc) + best (vsize - fc) of vert[fc:]; slashes D = [0, fs) + best (ssize - fs) of
 * slash[fs:]. Writes colmin[kb] (smallest chosen column in key block kb, or INT64_MAX) into
 * ws.dbl, D into ws.list[0 : ssize] and the prefix counts of D (heap[s] = |D ∩ [0, s)|, s <= Sk)
 * into ws.heap, so a row tests each key block in O(1); and, if cols is not null, C ascending into
 * cols[0, vsize) (the token-level column list). Requires fc <= vsize <= Sk, fs <= ssize <= Sk. */
LLMK_HD PrefillHeadInfo prefill_vs_choose(const float* scores, const PrefillGeom& g, int64_t vsize, int64_t ssize,
                                          int64_t fc, int64_t fs, const PrefillWs& ws, int32_t* cols) {
  int64_t* colmin = reinterpret_cast<int64_t*>(ws.dbl);
  for (int64_t kb = 0; kb < g.nkb; ++kb) colmin[kb] = INT64_MAX;
  for (int64_t j = 0; j < fc; ++j) {
    if (colmin[j / g.bk] > j) colmin[j / g.bk] = j;
    if (cols != nullptr) cols[j] = static_cast<int32_t>(j);
  }
  const PrefillF32 vert{scores};
  int64_t n = g.sk - fc;
  for (int64_t i = 0; i < n; ++i) ws.heap[i] = static_cast<int32_t>(fc + i);
  prefill_heapify(ws.heap, n, vert);
  for (int64_t kept = fc; kept < vsize && n > 0; ++kept) {
    const int64_t j = prefill_pop(ws.heap, &n, vert);
    if (colmin[j / g.bk] > j) colmin[j / g.bk] = j;
    if (cols != nullptr) cols[kept] = static_cast<int32_t>(j);
  }
  if (cols != nullptr) prefill_sort_ascending(cols, vsize);
  const PrefillF32 slash{scores + g.sk};
  for (int64_t s = 0; s < fs; ++s) ws.list[s] = static_cast<int32_t>(s);
  n = g.sk - fs;
  for (int64_t i = 0; i < n; ++i) ws.heap[i] = static_cast<int32_t>(fs + i);
  prefill_heapify(ws.heap, n, slash);
  for (int64_t kept = fs; kept < ssize && n > 0; ++kept) ws.list[kept] = prefill_pop(ws.heap, &n, slash);
  for (int64_t i = 0; i <= g.sk; ++i) ws.heap[i] = 0;
  for (int64_t i = 0; i < ssize; ++i) ws.heap[ws.list[i] + 1] = 1;
  for (int64_t i = 0; i < g.sk; ++i) ws.heap[i + 1] += ws.heap[i];
  PrefillHeadInfo info;
  info.pattern = LLMK_PREFILL_PAT_VERTICAL_SLASH;
  info.verticals = vsize;
  info.slashes = ssize;
  info.columns = vsize;
  info.divergence = NAN;
  return info;
}

/* Row qb: every key block whose chosen column is <= last(qb) (unless the columns stay tokens:
 * inflate false), and every block a chosen slash touches: some query qa in [first(qb), last(qb)]
 * and key k in the block with qa - k = s in D, i.e. D meets [first - k_hi, last - k_lo] (s >= 0
 * makes the pair causal). O(nkb) per row. */
LLMK_HD void prefill_vs_mark_row(uint8_t* row, int64_t qb, const PrefillGeom& g, const PrefillWs& ws, bool inflate) {
  const int64_t* colmin = reinterpret_cast<const int64_t*>(ws.dbl);
  const int32_t* below = ws.heap;  // below[s] = |D ∩ [0, s)|
  const int64_t first = prefill_first(g, qb), last = prefill_last(g, qb);
  const int64_t diag = last / g.bk;
  for (int64_t kb = 0; kb <= diag; ++kb) {
    const int64_t k_lo = kb * g.bk, k_hi = (kb + 1) * g.bk - 1 < g.sk - 1 ? (kb + 1) * g.bk - 1 : g.sk - 1;
    int64_t s_lo = first - k_hi, s_hi = last - k_lo;
    if (s_lo < 0) s_lo = 0;
    if (s_hi > g.sk - 1) s_hi = g.sk - 1;
    if ((inflate && colmin[kb] <= last) || (s_lo <= s_hi && below[s_hi + 1] > below[s_lo])) row[kb] = 1;
  }
}

/* ---- block top-k ------------------------------------------------------------------------------ */

/* Row qb of [nqb, nkb] scores: (diag if forced) + best reachable blocks, max(forced, min(top_k,
 * reachable)) in all. heap: nkb entries. */
LLMK_HD void prefill_topk_row(const float* scores, uint8_t* row, int64_t qb, const PrefillGeom& g, int64_t top_k,
                              bool force_diag, int32_t* heap) {
  const int64_t diag = prefill_diag(g, qb), reach = diag + 1;
  const PrefillF32 val{scores + qb * g.nkb};
  int64_t kept = 0, n = 0;
  if (force_diag) {
    row[diag] = 1;
    kept = 1;
  }
  for (int64_t kb = 0; kb < reach; ++kb) {
    if (!(force_diag && kb == diag)) heap[n++] = static_cast<int32_t>(kb);
  }
  const int64_t budget = top_k < reach ? top_k : reach;
  prefill_heapify(heap, n, val);
  for (; kept < budget && n > 0; ++kept) row[prefill_pop(heap, &n, val)] = 1;
}

/* ---- XAttention ------------------------------------------------------------------------------- */

/* Row qb of the block masses: forced kb 0 and diag(qb), then the others by mass until the
 * cumulative mass reaches threshold * (row total). heap: nkb entries. */
LLMK_HD void prefill_xattn_row(const float* scores, uint8_t* row, int64_t qb, const PrefillGeom& g, double threshold,
                               int32_t* heap) {
  const int64_t diag = prefill_diag(g, qb);
  const float* a = scores + qb * g.nkb;
  const PrefillF32 val{a};
  double total = 0.0;
  for (int64_t kb = 0; kb <= diag; ++kb) total += prefill_mass(a[kb]);
  const double target = prefill_dmul(threshold, total);
  double cum = prefill_mass(a[0]);
  row[0] = 1;
  if (diag > 0) {
    cum += prefill_mass(a[diag]);
    row[diag] = 1;
  }
  int64_t n = 0;
  for (int64_t kb = 1; kb < diag; ++kb) heap[n++] = static_cast<int32_t>(kb);
  prefill_heapify(heap, n, val);
  while (!(cum >= target) && n > 0) {
    const int32_t kb = prefill_pop(heap, &n, val);
    row[kb] = 1;
    cum += prefill_mass(a[kb]);
  }
}

/* ---- FlexPrefill ------------------------------------------------------------------------------ */

/* Length of the minimal prefix of items [0, n) (ordered, no forced items) whose cumulative mass
 * reaches frac * total; heap: n entries. */
LLMK_HD int64_t prefill_cover_count(const float* v, int64_t n, double frac, int32_t* heap) {
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += prefill_mass(v[i]);
  const double target = prefill_dmul(frac, total);
  const PrefillF32 val{v};
  for (int64_t i = 0; i < n; ++i) heap[i] = static_cast<int32_t>(i);
  prefill_heapify(heap, n, val);
  double cum = 0.0;
  int64_t count = 0;
  while (!(cum >= target) && n > 0) {
    cum += prefill_mass(v[prefill_pop(heap, &n, val)]);
    ++count;
  }
  return count;
}

/* Forced item 0, then the best of [1, n) by v: max(1, min(budget, n)) items into out; returns the count. */
LLMK_HD int64_t prefill_top_blocks(const double* v, int64_t n, int64_t budget, int32_t* heap, int32_t* out) {
  out[0] = 0;
  int64_t kept = 1, m = 0;
  for (int64_t i = 1; i < n; ++i) heap[m++] = static_cast<int32_t>(i);
  const PrefillF64 val{v};
  prefill_heapify(heap, m, val);
  for (; kept < budget && m > 0; ++kept) out[kept] = prefill_pop(heap, &m, val);
  return kept;
}

struct PrefillFlexParams {
  double gamma, tau;
  int64_t last_q, min_blocks, max_blocks;
};

LLMK_HD int64_t prefill_clamp(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : (x > hi ? hi : x); }

/* Whether the head falls back to dense (short prompt), as the reference implementation. */
LLMK_HD bool prefill_flex_dense(const PrefillGeom& g, const PrefillFlexParams& p) {
  const int64_t a = 2 * g.bq, b = p.min_blocks * g.bq;
  return g.sq <= (a > b ? a : b);
}

/* FLEX head: budgets from the cumulative vertical / slash mass, the JS decision, the vertical and
 * slash block lists (ws.list: [nkb] verticals then [nkb] diagonals; counts in info.verticals /
 * info.slashes) and, for a query-aware head, the global cover of A marked into sel [nqb, nkb].
 * Scores: vert [Sk], slash [Sk], ahat logits [nkb], A [nqb, nkb]. */
LLMK_HD PrefillHeadInfo prefill_flex_choose(const float* scores, uint8_t* sel, const PrefillGeom& g,
                                            const PrefillFlexParams& p, const PrefillWs& ws) {
  PrefillHeadInfo info;
  info.columns = 0;
  info.divergence = NAN;
  if (prefill_flex_dense(g, p)) {
    info.pattern = LLMK_PREFILL_PAT_DENSE;
    info.verticals = 0;
    info.slashes = 0;
    return info;
  }
  const float* vert = scores;
  const float* slash = scores + g.sk;
  const float* ahat = scores + 2 * g.sk;
  const float* amat = ahat + g.nkb;
  const int64_t bs = g.bk;
  const int64_t tv = prefill_cover_count(vert, g.sk, p.gamma, ws.heap);
  const int64_t ts = prefill_cover_count(slash, g.sk, p.gamma, ws.heap);
  int64_t nv = prefill_clamp(tv / bs + 1, p.min_blocks, p.max_blocks);
  int64_t ns = prefill_clamp(ts / bs + 1, p.min_blocks, p.max_blocks);
  double* vb = ws.dbl;
  double* sb = ws.dbl + g.nkb;
  for (int64_t kb = 0; kb < g.nkb; ++kb) {
    double v = 0.0, s = 0.0;
    const int64_t j1 = (kb + 1) * bs < g.sk ? (kb + 1) * bs : g.sk;
    for (int64_t j = kb * bs; j < j1; ++j) {
      v += prefill_mass(vert[j]);
      s += prefill_mass(slash[j]);
    }
    vb[kb] = v;
    sb[kb] = s;
  }
  /* sqrt(JS(softmax(ahat) || vb)), natural log, 0 log 0 = 0 */
  double mx = -HUGE_VAL;
  for (int64_t kb = 0; kb < g.nkb; ++kb) mx = ahat[kb] > mx ? static_cast<double>(ahat[kb]) : mx;
  double z = 0.0;
  for (int64_t kb = 0; kb < g.nkb; ++kb) z += exp(static_cast<double>(ahat[kb]) - mx);
  double kl_a = 0.0, kl_b = 0.0;
  for (int64_t kb = 0; kb < g.nkb; ++kb) {
    const double a = exp(static_cast<double>(ahat[kb]) - mx) / z, b = vb[kb], m = prefill_dmul(0.5, a + b);
    if (a > 0.0) kl_a += prefill_dmul(a, log(a / m));
    if (b > 0.0) kl_b += prefill_dmul(b, log(b / m));
  }
  const double js = prefill_dmul(0.5, kl_a) + prefill_dmul(0.5, kl_b);
  const double d = sqrt(js > 0.0 ? js : 0.0);
  info.divergence = d;
  const bool query_aware = d < p.tau;
  if (query_aware) {
    nv = p.min_blocks;
    ns = p.min_blocks;
  }
  info.pattern = query_aware ? LLMK_PREFILL_PAT_QUERY_AWARE : LLMK_PREFILL_PAT_VERTICAL_SLASH;
  info.verticals = prefill_top_blocks(vb, g.nkb, nv, ws.heap, ws.list);
  info.slashes = prefill_top_blocks(sb, g.nkb, ns, ws.heap, ws.list + g.nkb);
  if (query_aware) {
    /* global cover of the reachable entries i * nkb + kb in index order */
    double total = 0.0;
    int64_t n = 0;
    for (int64_t i = 0; i < g.nqb; ++i) {
      const int64_t diag = prefill_diag(g, i);
      for (int64_t kb = 0; kb <= diag; ++kb) {
        total += prefill_mass(amat[i * g.nkb + kb]);
        ws.heap[n++] = static_cast<int32_t>(i * g.nkb + kb);
      }
    }
    const double target = prefill_dmul(p.gamma, total);
    const PrefillF32 val{amat};
    prefill_heapify(ws.heap, n, val);
    double cum = 0.0;
    while (!(cum >= target) && n > 0) {
      const int32_t f = prefill_pop(ws.heap, &n, val);
      sel[f] = 1;
      cum += prefill_mass(amat[f]);
    }
  }
  return info;
}

/* Row qb of a FLEX head: dense fallback, or the chosen vertical blocks <= diag(qb) and the blocks
 * diag(qb) - t of the chosen diagonals t. */
LLMK_HD void prefill_flex_mark_row(uint8_t* row, int64_t qb, const PrefillGeom& g, const PrefillHeadInfo& info,
                                   const PrefillWs& ws) {
  const int64_t diag = prefill_diag(g, qb);
  if (info.pattern == LLMK_PREFILL_PAT_DENSE) {
    for (int64_t kb = 0; kb <= diag; ++kb) row[kb] = 1;
    return;
  }
  for (int64_t i = 0; i < info.verticals; ++i) {
    const int64_t kb = ws.list[i];
    if (kb <= diag) row[kb] = 1;
  }
  for (int64_t i = 0; i < info.slashes; ++i) {
    const int64_t kb = diag - ws.list[g.nkb + i];
    if (kb >= 0) row[kb] = 1;
  }
}

}  // namespace llmk
#endif
