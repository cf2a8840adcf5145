/* KV scoring on the CPU (llmk_kv_score_cpu): KNORM, RECENCY and LADDER row by row; SNAPKV and
 * OBSERVED through attention column sums computed flash-style in two passes, never the
 * queries x keys matrix:
 *   pass 1, per (b, kv head, chunk of query rows): the log-sum-exp of each query over its causal
 *           keys (online, key chunks of kChunk);
 *   pass 2, per (b, kv head, chunk of keys): p = exp(s - lse) recomputed for every query that sees
 *           the chunk, summed per key (in double, in a fixed order: deterministic).
 * The query rows of a KV head are its GQA group's heads x q_len queries, contiguous in q. The
 * GEMMs and the exp step are the attention kernel's (cce_logits, attn_tile_softmax). */
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <omp.h>

#include "cpu/isa/isa_kernels.h"
#include "cpu/widen.h"
#include "error.h"
#include "kv_args.h"
#include "llmk/kv_math.h"

namespace llmk {
namespace {

constexpr int64_t kChunk = 128;  // query rows and keys per tile (a multiple of kCcePanelCols)

struct ScoreShape {
  const llmk_kv_score_args& a;
  int64_t group, rows, elem;  // rows = group x q_len query rows per KV head

  explicit ScoreShape(const llmk_kv_score_args& args)
      : a(args), group(args.heads_q / args.heads_kv), rows(args.heads_q / args.heads_kv * args.q_len),
        elem(args.dtype == LLMK_F32 ? 4 : 2) {}

  /* Position of query row r (head-major: r = hh * q_len + i). */
  int64_t position(int64_t r) const { return kv_query_position(r % a.q_len, a.q_len, a.n); }
  const char* q_rows(int64_t bh) const {  // bh = b * Hkv + hkv: the group's rows are contiguous
    return reinterpret_cast<const char*>(a.q) + bh * rows * a.head_dim * elem;
  }
  const char* k_rows(int64_t bh) const { return reinterpret_cast<const char*>(a.k) + bh * a.n * a.head_dim * elem; }
};

/* Per-thread fp32 tiles. */
struct Tiles {
  int64_t per_thread;
  std::vector<float> mem;
  explicit Tiles(int threads, int64_t d)
      : per_thread(3 * kChunk * d + kChunk * kChunk + 3 * kChunk), mem(static_cast<size_t>(threads * per_thread)) {}
  float* q(int t, int64_t) { return mem.data() + t * per_thread; }
  float* k(int t, int64_t d) { return q(t, d) + kChunk * d; }
  float* panel(int t, int64_t d) { return k(t, d) + kChunk * d; }
  float* s(int t, int64_t d) { return panel(t, d) + kChunk * d; }
  float* row_max(int t, int64_t d) { return s(t, d) + kChunk * kChunk; }
  float* row_sum(int t, int64_t d) { return row_max(t, d) + kChunk; }
  float* alpha(int t, int64_t d) { return row_sum(t, d) + kChunk; }
};

/* Scaled query rows [r0, r0 + nr) of KV head bh into qs. */
void load_queries(const ScoreShape& sh, int64_t bh, int64_t r0, int64_t nr, float* qs, float* tmp) {
  const int64_t d = sh.a.head_dim;
  const float* src = widen(sh.q_rows(bh) + r0 * d * sh.elem, sh.a.dtype, nr * d, tmp);
  const float scale = static_cast<float>(sh.a.scale);
  for (int64_t i = 0; i < nr * d; ++i) qs[i] = src[i] * scale;
}

/* Keys [j0, j0 + nc) of a KV head, ready for chunk_logits: widened rows (returned) and, when
 * the head has more query rows than small_logits serves, packed into the panel. */
const float* pack_keys(const ScoreShape& sh, int64_t bh, int64_t j0, int64_t nc, float* kbuf, float* panel) {
  const int64_t d = sh.a.head_dim;
  const float* kf = widen(sh.k_rows(bh) + j0 * d * sh.elem, sh.a.dtype, nc * d, kbuf);
  if (sh.rows > kSmallLogitRows) isa().cce_pack_panel(kf, nc, d, panel);
  return kf;
}

/* Scores of rows [r0, r0 + nr) against keys [j0, j0 + nc) into s (row stride kChunk); keys past
 * a row's position are -inf. kf / panel: the keys as pack_keys left them. */
void chunk_logits(const ScoreShape& sh, const float* qs, int64_t r0, int64_t nr, const float* kf, const float* panel,
                  int64_t j0, int64_t nc, float* s) {
  if (sh.rows > kSmallLogitRows) {
    isa().cce_logits(qs, nr, sh.a.head_dim, panel, nc, s, kChunk);
  } else {
    isa().small_logits(qs, nr, sh.a.head_dim, kf, nc, s, kChunk);
  }
  for (int64_t r = 0; r < nr; ++r) {
    const int64_t first_masked = sh.position(r0 + r) + 1 - j0;
    for (int64_t c = first_masked < 0 ? 0 : first_masked; c < nc; ++c) s[r * kChunk + c] = -INFINITY;
  }
}

/* Pass 1: lse[bh * rows + r] of every query row over its causal keys. */
void row_lse(const ScoreShape& sh, Tiles& tiles, float* lse) {
  const llmk_kv_score_args& a = sh.a;
  const int64_t d = a.head_dim, heads = a.batch * a.heads_kv;
  const int64_t row_chunks = (sh.rows + kChunk - 1) / kChunk;
#pragma omp parallel
  {
    const int t = omp_get_thread_num();
    float *qs = tiles.q(t, d), *kb = tiles.k(t, d), *panel = tiles.panel(t, d), *s = tiles.s(t, d);
    float *m = tiles.row_max(t, d), *l = tiles.row_sum(t, d), *alpha = tiles.alpha(t, d);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < heads * row_chunks; ++task) {
      const int64_t bh = task / row_chunks, r0 = (task % row_chunks) * kChunk;
      const int64_t nr = sh.rows - r0 < kChunk ? sh.rows - r0 : kChunk;
      load_queries(sh, bh, r0, nr, qs, kb);  // kb is free until the first key chunk
      int64_t last = 0;  // keys any row of the chunk sees
      for (int64_t r = 0; r < nr; ++r) last = sh.position(r0 + r) > last ? sh.position(r0 + r) : last;
      for (int64_t r = 0; r < nr; ++r) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
      }
      for (int64_t j0 = 0; j0 <= last; j0 += kChunk) {
        const int64_t nc = a.n - j0 < kChunk ? a.n - j0 : kChunk;
        const float* kf = pack_keys(sh, bh, j0, nc, kb, panel);
        chunk_logits(sh, qs, r0, nr, kf, panel, j0, nc, s);
        isa().attn_tile_softmax(s, kChunk, nr, nc, 0.0f, m, l, alpha);
      }
      for (int64_t r = 0; r < nr; ++r) lse[bh * sh.rows + r0 + r] = m[r] + std::log(l[r]);
    }
  }
}

/* Pass 2: colsum[bh * n + j] = sum over the rows that see key j of exp(s - lse). */
void column_sums(const ScoreShape& sh, Tiles& tiles, const float* lse, float* colsum) {
  const llmk_kv_score_args& a = sh.a;
  const int64_t d = a.head_dim, heads = a.batch * a.heads_kv;
  const int64_t key_chunks = (a.n + kChunk - 1) / kChunk;
#pragma omp parallel
  {
    const int t = omp_get_thread_num();
    float *qs = tiles.q(t, d), *kb = tiles.k(t, d), *panel = tiles.panel(t, d), *s = tiles.s(t, d);
    float *m = tiles.row_max(t, d), *l = tiles.row_sum(t, d), *alpha = tiles.alpha(t, d);
    double acc[kChunk];
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < heads * key_chunks; ++task) {
      const int64_t bh = task / key_chunks, j0 = (task % key_chunks) * kChunk;
      const int64_t nc = a.n - j0 < kChunk ? a.n - j0 : kChunk;
      for (int64_t c = 0; c < nc; ++c) acc[c] = 0.0;
      const float* kf = pack_keys(sh, bh, j0, nc, kb, panel);
      float* qbuf = sh.rows > kSmallLogitRows ? kb : panel;  // whichever of the two the keys do not use
      for (int64_t r0 = 0; r0 < sh.rows; r0 += kChunk) {
        const int64_t nr = sh.rows - r0 < kChunk ? sh.rows - r0 : kChunk;
        bool any = false;  // does some row of this chunk see key j0?
        for (int64_t r = 0; r < nr && !any; ++r) any = sh.position(r0 + r) >= j0;
        if (!any) continue;
        load_queries(sh, bh, r0, nr, qs, qbuf);
        chunk_logits(sh, qs, r0, nr, kf, panel, j0, nc, s);
        for (int64_t r = 0; r < nr; ++r) {  // exp(s - lse): the running max starts at lse
          m[r] = lse[bh * sh.rows + r0 + r];
          l[r] = 0.0f;
        }
        isa().attn_tile_softmax(s, kChunk, nr, nc, 0.0f, m, l, alpha);
        for (int64_t r = 0; r < nr; ++r)
          for (int64_t c = 0; c < nc; ++c) acc[c] += s[r * kChunk + c];
      }
      for (int64_t c = 0; c < nc; ++c) colsum[bh * a.n + j0 + c] = static_cast<float>(acc[c]);
    }
  }
}

/* SNAPKV: mean over the window and the group, then pooled along keys. */
void snapkv(const ScoreShape& sh, const float* colsum, float* scores) {
  const llmk_kv_score_args& a = sh.a;
  const int64_t n = a.n, heads = a.batch * a.heads_kv;
  const double inv = 1.0 / static_cast<double>(sh.rows);
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < heads; ++bh) {
    const float* c = colsum + bh * n;
    float* out = scores + bh * n;
    for (int64_t j = 0; j < n; ++j) {
      if (a.pool == LLMK_KV_POOL_NONE) {
        out[j] = static_cast<float>(c[j] * inv);
        continue;
      }
      const int64_t lo = kv_pool_lo(j, a.pool_kernel), hi = kv_pool_hi(j, a.pool_kernel, n);
      double v = a.pool == LLMK_KV_POOL_MAX ? -INFINITY : 0.0;
      for (int64_t t = lo; t <= hi; ++t) v = a.pool == LLMK_KV_POOL_MAX ? std::fmax(v, c[t]) : v + c[t];
      out[j] = static_cast<float>(a.pool == LLMK_KV_POOL_MAX ? v * inv : v * inv / static_cast<double>(a.pool_kernel));
    }
  }
}

/* OBSERVED: accumulate and normalise; key j is seen by group x min(q_len, n - j) (query, head) pairs. */
void observed(const ScoreShape& sh, const float* colsum, float* sum, float* count, float* scores) {
  const llmk_kv_score_args& a = sh.a;
  const int64_t n = a.n, total = a.batch * a.heads_kv * n;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < total; ++i) {
    const int64_t j = i % n;
    const int64_t seen = n - j < a.q_len ? n - j : a.q_len;
    sum[i] += colsum[i];
    count[i] += static_cast<float>(sh.group * seen);
    scores[i] = count[i] > 0.0f ? sum[i] / count[i] : 0.0f;
  }
}

void knorm(const ScoreShape& sh, Tiles& tiles, float* scores) {
  const llmk_kv_score_args& a = sh.a;
  const int64_t d = a.head_dim, rows = a.batch * a.heads_kv * a.n;
  const int64_t chunks = (rows + kChunk - 1) / kChunk;
#pragma omp parallel
  {
    float* buf = tiles.k(omp_get_thread_num(), d);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t r0 = c * kChunk, nr = rows - r0 < kChunk ? rows - r0 : kChunk;
      const float* k = widen(reinterpret_cast<const char*>(a.k) + r0 * d * sh.elem, a.dtype, nr * d, buf);
      isa().row_neg_norms(k, nr, d, scores + r0);
    }
  }
}

}  // namespace
}  // namespace llmk

extern "C" int32_t llmk_kv_score_cpu(const llmk_kv_score_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_kv_score_args(args)) return rc;
    const llmk_kv_score_args& a = *args;
    const int64_t total = a.batch * a.heads_kv * a.n;
    if (total == 0) return LLMK_OK;
    auto* scores = reinterpret_cast<float*>(a.scores);
    const ScoreShape sh(a);
    switch (a.scorer) {
      case LLMK_KV_RECENCY:
      case LLMK_KV_LADDER:
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < total; ++i) {
          const int64_t j = i % a.n;
          scores[i] = a.scorer == LLMK_KV_RECENCY ? static_cast<float>(j) : kv_ladder_score(j, a.n, a.ladder_layer, a.ladder_rung);
        }
        return LLMK_OK;
      default: break;
    }
    const int threads = omp_get_max_threads();
    Tiles tiles(threads, a.head_dim);  // allocations happen here, outside the parallel regions
    if (a.scorer == LLMK_KV_KNORM) {
      knorm(sh, tiles, scores);
      return LLMK_OK;
    }
    std::vector<float> lse(static_cast<size_t>(a.batch * a.heads_kv * sh.rows));
    std::vector<float> colsum(static_cast<size_t>(total));
    row_lse(sh, tiles, lse.data());
    column_sums(sh, tiles, lse.data(), colsum.data());
    if (a.scorer == LLMK_KV_SNAPKV) {
      snapkv(sh, colsum.data(), scores);
    } else {
      observed(sh, colsum.data(), reinterpret_cast<float*>(a.attn_sum), reinterpret_cast<float*>(a.attn_count), scores);
    }
    return LLMK_OK;
  });
}
