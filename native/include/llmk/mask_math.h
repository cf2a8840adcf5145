/* Element predicate and conservative tile classifier of a mask program (llmk_mask_node[],
 * postfix). Compiled by g++ for the CPU kernels and by nvcc for the CUDA kernels, so both
 * backends decide visibility with literally the same arithmetic.
 *
 * Classifier contract (tested against the expanded mask): a tile called EMPTY has no visible
 * pair, a tile called FULL has no masked pair; PARTIAL promises nothing. ALL, NONE, CAUSAL,
 * WINDOW, SINKS, PREFIX and BLOCKS are exact. VERTICAL_SLASH is exact about EMPTY but says FULL
 * only when its columns cover the tile (slash lines alone give PARTIAL). DOCUMENT compares the id
 * ranges of the tile's queries and keys: exact when queries and keys share one sorted id array,
 * conservative otherwise (ids {1, 3} against {2} give PARTIAL for an empty tile). AND/OR/NOT
 * combine classes conservatively (min / max / swap). */
#ifndef LLMK_MASK_MATH_H
#define LLMK_MASK_MATH_H

#include <stdint.h>

#include "llmk/host_device.h"
#include "llmk/llmk.h"

namespace llmk {

/* Per-batch view the predicates need: effective lengths (q_len <= seq_q, k_len <= seq_k). */
struct MaskRow {
  int64_t b, h;      /* batch and (query) head, used to index per-(b, h) data */
  int64_t q_len, k_len;
};

/* First index in sorted a[0, n) with a[i] >= x (n if none). */
LLMK_HD int64_t mask_lower_bound(const int32_t* a, int64_t n, int64_t x) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = (lo + hi) >> 1;
    if (static_cast<int64_t>(a[mid]) < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/* Diagonal offset of CAUSAL / WINDOW / VERTICAL_SLASH: aligned query = q + offset. */
LLMK_HD int64_t mask_diag_offset(const llmk_mask_node& n, const MaskRow& r) {
  return n.i0 + (n.i1 != 0 ? r.k_len - r.q_len : 0);
}

LLMK_HD const int32_t* mask_i32(int64_t address, int64_t element_offset) {
  return reinterpret_cast<const int32_t*>(address) + element_offset;
}

LLMK_HD const int32_t* vs_columns(const llmk_mask_node& n, const MaskRow& r) {
  return mask_i32(n.data0, r.b * n.batch_stride + r.h * n.head_stride);
}
LLMK_HD const int32_t* vs_slashes(const llmk_mask_node& n, const MaskRow& r) {
  return mask_i32(n.data1, r.b * n.i4 + r.h * n.i5);
}
LLMK_HD const uint8_t* blocks_bitmap(const llmk_mask_node& n, const MaskRow& r) {
  return reinterpret_cast<const uint8_t*>(n.data0) + r.b * n.batch_stride + r.h * n.head_stride;
}

/* Leaf predicate: is (q, k) visible? (q < q_len and k < k_len are checked by the caller.) */
LLMK_HD bool mask_leaf_visible(const llmk_mask_node& n, const MaskRow& r, int64_t q, int64_t k) {
  switch (n.op) {
    case LLMK_MASK_ALL: return true;
    case LLMK_MASK_NONE: return false;
    case LLMK_MASK_CAUSAL: return k <= q + mask_diag_offset(n, r);
    case LLMK_MASK_WINDOW: {
      const int64_t rel = k - (q + mask_diag_offset(n, r));
      return rel >= -n.i2 && rel <= n.i3;
    }
    case LLMK_MASK_SINKS: return k < n.i2;
    case LLMK_MASK_PREFIX: return k < *mask_i32(n.data0, r.b * n.batch_stride);
    case LLMK_MASK_DOCUMENT:
      return *mask_i32(n.data0, r.b * n.i2 + q) == *mask_i32(n.data1, r.b * n.i3 + k);
    case LLMK_MASK_BLOCKS: {
      const int64_t qb = q / n.i2, kb = k / n.i3;
      return qb < n.i4 && kb < n.i5 && blocks_bitmap(n, r)[qb * n.i5 + kb] != 0;
    }
    case LLMK_MASK_VERTICAL_SLASH: {
      const int32_t* cols = vs_columns(n, r);
      const int64_t c = mask_lower_bound(cols, n.i2, k);
      if (c < n.i2 && cols[c] == k) return true;
      const int32_t* sl = vs_slashes(n, r);
      const int64_t diag = q + mask_diag_offset(n, r) - k;
      const int64_t s = mask_lower_bound(sl, n.i3, diag);
      return s < n.i3 && sl[s] == diag;
    }
    default: return false;
  }
}

/* Full predicate: lengths, then the program. Stack of booleans as bits (depth <= 32). */
LLMK_HD bool mask_visible(const llmk_mask_node* nodes, int64_t count, const MaskRow& r, int64_t q,
                          int64_t k) {
  if (q >= r.q_len || k >= r.k_len) return false;
  uint32_t stack = 0;
  int depth = 0;
  for (int64_t i = 0; i < count; ++i) {
    const llmk_mask_node& n = nodes[i];
    if (n.op == LLMK_MASK_AND || n.op == LLMK_MASK_OR) {
      const uint32_t a = (stack >> (depth - 2)) & 1u, b = (stack >> (depth - 1)) & 1u;
      const uint32_t v = n.op == LLMK_MASK_AND ? (a & b) : (a | b);
      depth -= 2;
      stack = (stack & ~(3u << depth)) | (v << depth);
      ++depth;
    } else if (n.op == LLMK_MASK_NOT) {
      stack ^= 1u << (depth - 1);
    } else {
      const uint32_t v = mask_leaf_visible(n, r, q, k) ? 1u : 0u;
      stack = (stack & ~(1u << depth)) | (v << depth);
      ++depth;
    }
  }
  return (stack & 1u) != 0;
}

/* Class of a range [lo, hi] of some quantity against the accepted range [a, b] (all inclusive). */
LLMK_HD int interval_class(int64_t lo, int64_t hi, int64_t a, int64_t b) {
  if (hi < a || lo > b) return LLMK_TILE_EMPTY;
  return (lo >= a && hi <= b) ? LLMK_TILE_FULL : LLMK_TILE_PARTIAL;
}

/* Leaf class of the tile [q0, q1) x [k0, k1) (non-empty, inside the lengths). */
LLMK_HD int mask_leaf_class(const llmk_mask_node& n, const MaskRow& r, int64_t q0, int64_t q1,
                            int64_t k0, int64_t k1) {
  const int64_t big = INT64_MAX / 4;
  switch (n.op) {
    case LLMK_MASK_ALL: return LLMK_TILE_FULL;
    case LLMK_MASK_NONE: return LLMK_TILE_EMPTY;
    case LLMK_MASK_CAUSAL: case LLMK_MASK_WINDOW: {
      /* rel = k - aligned q takes every integer value in [lo, hi] over the tile */
      const int64_t off = mask_diag_offset(n, r);
      const int64_t lo = k0 - (q1 - 1 + off), hi = (k1 - 1) - (q0 + off);
      return n.op == LLMK_MASK_CAUSAL ? interval_class(lo, hi, -big, 0)
                                      : interval_class(lo, hi, -n.i2, n.i3);
    }
    case LLMK_MASK_SINKS: return interval_class(k0, k1 - 1, -big, n.i2 - 1);
    case LLMK_MASK_PREFIX:
      return interval_class(k0, k1 - 1, -big, static_cast<int64_t>(*mask_i32(n.data0, r.b * n.batch_stride)) - 1);
    case LLMK_MASK_DOCUMENT: {
      const int32_t* qs = mask_i32(n.data0, r.b * n.i2);
      const int32_t* ks = mask_i32(n.data1, r.b * n.i3);
      int32_t qmin = qs[q0], qmax = qs[q1 - 1], kmin = ks[k0], kmax = ks[k1 - 1];
      if (n.i4 == 0) { /* unsorted ids: scan for the ranges */
        for (int64_t q = q0; q < q1; ++q) { qmin = qs[q] < qmin ? qs[q] : qmin; qmax = qs[q] > qmax ? qs[q] : qmax; }
        for (int64_t k = k0; k < k1; ++k) { kmin = ks[k] < kmin ? ks[k] : kmin; kmax = ks[k] > kmax ? ks[k] : kmax; }
      }
      if (qmax < kmin || kmax < qmin) return LLMK_TILE_EMPTY;
      return (qmin == qmax && kmin == kmax && qmin == kmin) ? LLMK_TILE_FULL : LLMK_TILE_PARTIAL;
    }
    case LLMK_MASK_BLOCKS: {
      const uint8_t* bits = blocks_bitmap(n, r);
      const int64_t qb0 = q0 / n.i2, qb1 = (q1 - 1) / n.i2, kb0 = k0 / n.i3, kb1 = (k1 - 1) / n.i3;
      bool any = false, all = true;
      for (int64_t qb = qb0; qb <= qb1; ++qb)
        for (int64_t kb = kb0; kb <= kb1; ++kb) {
          const bool set = qb < n.i4 && kb < n.i5 && bits[qb * n.i5 + kb] != 0;
          any = any || set;
          all = all && set;
        }
      return all ? LLMK_TILE_FULL : (any ? LLMK_TILE_PARTIAL : LLMK_TILE_EMPTY);
    }
    case LLMK_MASK_VERTICAL_SLASH: {
      const int32_t* cols = vs_columns(n, r);
      const int64_t columns = mask_lower_bound(cols, n.i2, k1) - mask_lower_bound(cols, n.i2, k0);
      if (columns == k1 - k0) return LLMK_TILE_FULL;
      const int32_t* sl = vs_slashes(n, r);
      const int64_t off = mask_diag_offset(n, r);
      const int64_t dlo = q0 + off - (k1 - 1), dhi = q1 - 1 + off - k0;
      const int64_t s = mask_lower_bound(sl, n.i3, dlo);
      const bool slash = s < n.i3 && static_cast<int64_t>(sl[s]) <= dhi;
      return (columns > 0 || slash) ? LLMK_TILE_PARTIAL : LLMK_TILE_EMPTY;
    }
    default: return LLMK_TILE_PARTIAL;
  }
}

/* Class of tile [q0, q1) x [k0, k1) under lengths and program. A tile cut by a length is at
 * most PARTIAL, so FULL tiles never need the length check in the kernels. */
LLMK_HD int mask_tile_class(const llmk_mask_node* nodes, int64_t count, const MaskRow& r, int64_t q0,
                            int64_t q1, int64_t k0, int64_t k1) {
  const bool cut = q1 > r.q_len || k1 > r.k_len;
  q1 = q1 < r.q_len ? q1 : r.q_len;
  k1 = k1 < r.k_len ? k1 : r.k_len;
  if (q0 >= q1 || k0 >= k1) return LLMK_TILE_EMPTY;
  uint64_t stack = 0; /* 2 bits per entry */
  int depth = 0;
  for (int64_t i = 0; i < count; ++i) {
    const llmk_mask_node& n = nodes[i];
    int v;
    if (n.op == LLMK_MASK_AND || n.op == LLMK_MASK_OR) {
      const int a = static_cast<int>((stack >> (2 * (depth - 2))) & 3u);
      const int b = static_cast<int>((stack >> (2 * (depth - 1))) & 3u);
      /* EMPTY < PARTIAL < FULL: AND is the minimum, OR the maximum (both conservative) */
      v = n.op == LLMK_MASK_AND ? (a < b ? a : b) : (a > b ? a : b);
      depth -= 2;
    } else if (n.op == LLMK_MASK_NOT) {
      v = 2 - static_cast<int>((stack >> (2 * (depth - 1))) & 3u);
      depth -= 1;
    } else {
      v = mask_leaf_class(n, r, q0, q1, k0, k1);
    }
    stack = (stack & ~(uint64_t{3} << (2 * depth))) | (static_cast<uint64_t>(v) << (2 * depth));
    ++depth;
  }
  const int c = static_cast<int>(stack & 3u);
  return (cut && c == LLMK_TILE_FULL) ? LLMK_TILE_PARTIAL : c;
}

/* MaskRow of layout/attention batch b and query head h (lengths from q_lens/k_lens or the sequence). */
LLMK_HD MaskRow mask_row(int64_t b, int64_t h, int64_t q_lens, int64_t k_lens, int64_t seq_q, int64_t seq_k) {
  MaskRow r;
  r.b = b;
  r.h = h;
  r.q_len = q_lens != 0 ? static_cast<int64_t>(reinterpret_cast<const int32_t*>(q_lens)[b]) : seq_q;
  r.k_len = k_lens != 0 ? static_cast<int64_t>(reinterpret_cast<const int32_t*>(k_lens)[b]) : seq_k;
  return r;
}

}  // namespace llmk
#endif
