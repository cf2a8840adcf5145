/* Prefill scores on the CPU (llmk_prefill_score_cpu), per (batch, query head), never Sq x Sk:
 *   VS / FLEX last-q statistics: the last L queries against all keys in two passes over key
 *     chunks of kKeyChunk (pass 1 row max / sum, pass 2 recompute, normalise, accumulate the
 *     column sums and the diagonal sums), logits by the cut cross-entropy's GEMM (cce_logits);
 *   pooled scores (BLOCK_TOPK, FLEX ahat and A): block means of q and k in double, rounded to
 *     fp32, then one GEMM of the pooled rows;
 *   XATTN: stride-reshaped rows (queries reversed inside each group of `stride`) against the
 *     key rows read as [Sk / stride, stride * d], one strip of reshaped rows x reachable columns
 *     per task (a group of query blocks), row softmax, block sums in double.
 * Tasks are heads (VS, FLEX, BLOCK_TOPK) or (head, query-block group) (XATTN), OpenMP dynamic;
 * buffers are allocated per thread before the parallel region. */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <omp.h>

#include "cpu/isa/isa_kernels.h"
#include "cpu/widen.h"
#include "error.h"
#include "prefill_args.h"

namespace llmk {
namespace {

constexpr int64_t kKeyChunk = 512;     // keys per last-q pass step (a multiple of kCcePanelCols)
constexpr int64_t kPoolRows = 64;      // pooled query rows per GEMM step
constexpr int64_t kStripCols = 128;    // reshaped key rows per XATTN panel (a multiple of kCcePanelCols)
constexpr int64_t kStripFloats = int64_t{1} << 20;  // XATTN strip budget per thread (4 MiB)

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

struct Inputs {
  const llmk_prefill_args& a;
  PrefillGeom g;
  int64_t elem, group, per_head;
  const char* q;
  const char* k;
  float* scores;

  explicit Inputs(const llmk_prefill_args& args)
      : a(args),
        g(prefill_geom_of(args)),
        elem(args.dtype == LLMK_F32 ? 4 : 2),
        group(args.heads_q / args.heads_kv),
        per_head(prefill_scores_per_head(args)),
        q(reinterpret_cast<const char*>(args.q)),
        k(reinterpret_cast<const char*>(args.k)),
        scores(reinterpret_cast<float*>(args.scores)) {}

  /* Row i of query head `head` (= b * Hq + h) and key row j of its KV head. */
  const char* q_row(int64_t head, int64_t i) const { return q + (head * g.sq + i) * a.head_dim * elem; }
  const char* k_row(int64_t head, int64_t j) const {
    const int64_t b = head / a.heads_q, h = head % a.heads_q;
    return k + ((b * a.heads_kv + h / group) * g.sk + j) * a.head_dim * elem;
  }
};

/* ---- last-q statistics (VS, FLEX) --------------------------------------------------------- */

struct LastQBuffers {
  float* qs;     // [L, d] scaled queries
  float* kf;     // [kKeyChunk, d] widened keys
  float* panel;  // [kKeyChunk, d] packed
  float* s;      // [L, kKeyChunk]
  float* m;      // [L]
  float* l;      // [L]
};

/* vert[j] = sum_r P[r, j], slash[s] = sum_r P[r, qa_r - s] into out [2, Sk] (divided by L when mean). */
void last_q_stats(const Inputs& in, int64_t head, const LastQBuffers& t, bool mean, float* out) {
  const llmk_prefill_args& a = in.a;
  const int64_t d = a.head_dim, sk = in.g.sk, L = a.last_q;
  const int64_t qa0 = sk - L;  // aligned position of observation row 0
  const IsaKernels& isa_k = isa();
  const float* qf = widen(in.q_row(head, in.g.sq - L), a.dtype, L * d, t.qs);
  const float scale = static_cast<float>(a.scale);
  for (int64_t e = 0; e < L * d; ++e) t.qs[e] = qf[e] * scale;
  for (int64_t r = 0; r < L; ++r) {
    t.m[r] = -INFINITY;
    t.l[r] = 0.0f;
  }
  float* vert = out;
  float* slash = out + sk;
  std::memset(out, 0, static_cast<size_t>(2 * sk) * sizeof(float));
  for (int pass = 0; pass < 2; ++pass) {
    for (int64_t k0 = 0; k0 < sk; k0 += kKeyChunk) {
      const int64_t kc = std::min(kKeyChunk, sk - k0);
      const float* kf = widen(in.k_row(head, k0), a.dtype, kc * d, t.kf);
      isa_k.cce_pack_panel(kf, kc, d, t.panel);
      isa_k.cce_logits(t.qs, L, d, t.panel, kc, t.s, kKeyChunk);
      for (int64_t r = 0; r < L; ++r) {
        const int64_t qa = qa0 + r;
        const int64_t cols = std::min(kc, qa - k0 + 1);  // causal: keys <= qa
        if (cols <= 0) continue;
        float* sr = t.s + r * kKeyChunk;
        float alpha = 0.0f;
        if (pass == 0) {
          /* the attention kernel's vectorised online-softmax step updates the row max / sum */
          isa_k.attn_tile_softmax(sr, kKeyChunk, 1, cols, 0.0f, t.m + r, t.l + r, &alpha);
        } else {
          /* with the final max as the running max the same step leaves exp(s - max) in sr */
          float mx = t.m[r], scratch = 0.0f;
          isa_k.attn_tile_softmax(sr, kKeyChunk, 1, cols, 0.0f, &mx, &scratch, &alpha);
          const float inv = 1.0f / t.l[r];
          float* sl = slash + (qa - k0);  // slash offset of key k0 + j is qa - k0 - j
          for (int64_t j = 0; j < cols; ++j) {
            const float p = sr[j] * inv;
            vert[k0 + j] += p;
            sl[-j] += p;
          }
        }
      }
    }
  }
  if (mean) {
    const float inv_l = 1.0f / static_cast<float>(L);
    for (int64_t j = 0; j < 2 * sk; ++j) out[j] *= inv_l;
  }
}

/* ---- pooled scores (BLOCK_TOPK, FLEX) ----------------------------------------------------- */

struct PoolBuffers {
  float* qbar;   // [nqb, d] mean of scaled queries per block
  float* kbar;   // [nkb, d]
  float* panel;  // [round_up(nkb, 32), d] packed kbar
  float* s;      // [kPoolRows, round_up(nkb, 32)]
  float* row;    // [d] widened row
  float* qhat;   // [d] FLEX: mean of the last L scaled queries
  double* acc;   // [d]
};

/* dst [n_blocks, d] = fp32(mean in double of rows [i * block, min(.., n)) of `rows(i)`) * factor. */
template <typename RowFn>
void block_means(const Inputs& in, int64_t n, int64_t block, int64_t first, float factor, RowFn rows,
                 const PoolBuffers& t, float* dst) {
  const int64_t d = in.a.head_dim, blocks = (n - first + block - 1) / block;
  for (int64_t bi = 0; bi < blocks; ++bi) {
    const int64_t r0 = first + bi * block, r1 = std::min(r0 + block, n);
    std::fill(t.acc, t.acc + d, 0.0);
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = widen(rows(r), in.a.dtype, d, t.row);
      for (int64_t c = 0; c < d; ++c) t.acc[c] += x[c];
    }
    for (int64_t c = 0; c < d; ++c) {
      dst[bi * d + c] = static_cast<float>(t.acc[c] / static_cast<double>(r1 - r0)) * factor;
    }
  }
}

/* BLOCK_TOPK: out[i, kb] = qbar_i . kbar_kb (reachable) or -inf. FLEX (flex != nullptr, out = A):
 * row softmax over the reachable blocks (0 elsewhere), and ahat[kb] = qhat . kbar_kb. */
void pooled_scores(const Inputs& in, int64_t head, const PoolBuffers& t, float* out, float* ahat) {
  const llmk_prefill_args& a = in.a;
  const PrefillGeom& g = in.g;
  const int64_t d = a.head_dim, lds = round_up(g.nkb, kCcePanelCols);
  const float scale = static_cast<float>(a.scale);
  block_means(in, g.sq, g.bq, 0, scale, [&](int64_t r) { return in.q_row(head, r); }, t, t.qbar);
  block_means(in, g.sk, g.bk, 0, 1.0f, [&](int64_t r) { return in.k_row(head, r); }, t, t.kbar);
  const IsaKernels& isa_k = isa();
  isa_k.cce_pack_panel(t.kbar, g.nkb, d, t.panel);
  for (int64_t i0 = 0; i0 < g.nqb; i0 += kPoolRows) {
    const int64_t rows = std::min(kPoolRows, g.nqb - i0);
    isa_k.cce_logits(t.qbar + i0 * d, rows, d, t.panel, g.nkb, t.s, lds);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r, diag = prefill_diag(g, i);
      const float* sr = t.s + r * lds;
      float* o = out + i * g.nkb;
      if (ahat == nullptr) {
        for (int64_t kb = 0; kb < g.nkb; ++kb) o[kb] = kb <= diag ? sr[kb] : -INFINITY;
        continue;
      }
      float mx = -INFINITY;
      for (int64_t kb = 0; kb <= diag; ++kb) mx = std::max(mx, sr[kb]);
      float sum = 0.0f;
      for (int64_t kb = 0; kb <= diag; ++kb) sum += std::exp(sr[kb] - mx);
      const float inv = 1.0f / sum;
      for (int64_t kb = 0; kb < g.nkb; ++kb) o[kb] = kb <= diag ? std::exp(sr[kb] - mx) * inv : 0.0f;
    }
  }
  if (ahat != nullptr) {
    /* qhat: mean of the last L scaled queries (one block of L rows starting at Sq - L) */
    const int64_t L = a.last_q;
    block_means(in, g.sq, L, g.sq - L, scale, [&](int64_t r) { return in.q_row(head, r); }, t, t.qhat);
    for (int64_t kb = 0; kb < g.nkb; ++kb) {
      double dot = 0.0;
      for (int64_t c = 0; c < d; ++c) dot += static_cast<double>(t.qhat[c]) * t.kbar[kb * d + c];
      ahat[kb] = static_cast<float>(dot);
    }
  }
}

/* ---- XAttention --------------------------------------------------------------------------- */

struct XattnPlan {
  int64_t stride, m, rq, rk, off_r, dd, ld, blocks_per_task, tasks_per_head;
};

XattnPlan xattn_plan(const Inputs& in) {
  XattnPlan p;
  const PrefillGeom& g = in.g;
  p.stride = in.a.stride;
  p.m = g.bq / p.stride;
  p.rq = (g.sq + p.stride - 1) / p.stride;
  p.rk = (g.sk + p.stride - 1) / p.stride;
  p.off_r = g.off / p.stride;
  p.dd = p.stride * in.a.head_dim;
  p.ld = round_up(p.rk, kCcePanelCols);
  p.blocks_per_task = std::max<int64_t>(1, std::min<int64_t>(8, kStripFloats / (p.m * p.ld)));
  p.tasks_per_head = (g.nqb + p.blocks_per_task - 1) / p.blocks_per_task;
  return p;
}

struct XattnBuffers {
  float* qt;     // [rows, dd] reshaped, reversed, scaled queries
  float* kt;     // [kStripCols, dd] reshaped keys (zero-padded)
  float* panel;  // packed kt
  float* strip;  // [rows, ld] logits
  float* row;    // [d] widened query row
  double* acc;   // [nkb] block sums of one query block
};

void xattn_task(const Inputs& in, const XattnPlan& p, int64_t head, int64_t task, const XattnBuffers& t) {
  const llmk_prefill_args& a = in.a;
  const PrefillGeom& g = in.g;
  const int64_t d = a.head_dim, S = p.stride;
  const int64_t qb0 = task * p.blocks_per_task, qb1 = std::min(qb0 + p.blocks_per_task, g.nqb);
  const int64_t i0 = qb0 * p.m, i1 = std::min(qb1 * p.m, p.rq);  // reshaped rows of the task
  if (i0 >= i1) return;
  const float factor = static_cast<float>(a.scale / static_cast<double>(S));
  for (int64_t i = i0; i < i1; ++i) {
    float* dst = t.qt + (i - i0) * p.dd;
    for (int64_t u = 0; u < S; ++u) {
      const int64_t pos = i * S + S - 1 - u;
      if (pos < g.sq) {
        const float* x = widen(in.q_row(head, pos), a.dtype, d, t.row);
        for (int64_t c = 0; c < d; ++c) dst[u * d + c] = x[c] * factor;
      } else {
        std::fill(dst + u * d, dst + (u + 1) * d, 0.0f);
      }
    }
  }
  const int64_t jmax = std::min(p.rk - 1, i1 - 1 + p.off_r);  // last reachable reshaped column
  const IsaKernels& isa_k = isa();
  for (int64_t j0 = 0; j0 <= jmax; j0 += kStripCols) {
    const int64_t jc = std::min(kStripCols, jmax + 1 - j0);
    const int64_t keys = std::min(jc * S, g.sk - j0 * S);
    const float* kf = widen(in.k_row(head, j0 * S), a.dtype, keys * d, t.kt);
    if (kf != t.kt) std::memcpy(t.kt, kf, static_cast<size_t>(keys * d) * sizeof(float));
    std::fill(t.kt + keys * d, t.kt + jc * p.dd, 0.0f);
    isa_k.cce_pack_panel(t.kt, jc, p.dd, t.panel);
    isa_k.cce_logits(t.qt, i1 - i0, p.dd, t.panel, jc, t.strip + j0, p.ld);
  }
  float* out = in.scores + head * in.per_head;
  for (int64_t qb = qb0; qb < qb1; ++qb) {
    std::fill(t.acc, t.acc + g.nkb, 0.0);
    const int64_t r1 = std::min((qb + 1) * p.m, p.rq);
    for (int64_t i = qb * p.m; i < r1; ++i) {
      float* sr = t.strip + (i - i0) * p.ld;
      const int64_t cols = std::min(p.rk, i + p.off_r + 1);
      /* vectorised exp(s - max) in place and the row sum (the attention kernel's softmax step) */
      float mx = -INFINITY, sum = 0.0f, alpha = 0.0f;
      isa_k.attn_tile_softmax(sr, p.ld, 1, cols, 0.0f, &mx, &sum, &alpha);
      const double inv = 1.0 / static_cast<double>(sum);
      for (int64_t kb = 0; kb * p.m < cols; ++kb) {
        const int64_t j1 = std::min(cols, (kb + 1) * p.m);
        float part = 0.0f;
        for (int64_t j = kb * p.m; j < j1; ++j) part += sr[j];
        t.acc[kb] += part * inv;
      }
    }
    for (int64_t kb = 0; kb < g.nkb; ++kb) out[qb * g.nkb + kb] = static_cast<float>(t.acc[kb]);
  }
}

}  // namespace
}  // namespace llmk

extern "C" int32_t llmk_prefill_score_cpu(const llmk_prefill_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_prefill_args(args, PrefillStage::kScore)) return rc;
    const llmk_prefill_args& a = *args;
    const Inputs in(a);
    const PrefillGeom& g = in.g;
    const int64_t heads = a.batch * a.heads_q, d = a.head_dim;
    const int threads = omp_get_max_threads();
    if (a.method == LLMK_PREFILL_XATTN) {
      const XattnPlan p = xattn_plan(in);
      const int64_t rows = p.blocks_per_task * p.m;
      const int64_t per = rows * p.dd + 2 * kStripCols * p.dd + rows * p.ld + d + 16;
      std::vector<float> buf(static_cast<size_t>(per * threads));
      std::vector<double> acc(static_cast<size_t>(g.nkb * threads));
#pragma omp parallel for schedule(dynamic, 1)
      for (int64_t task = 0; task < heads * p.tasks_per_head; ++task) {
        const int tid = omp_get_thread_num();
        XattnBuffers t;
        t.qt = buf.data() + per * tid;
        t.kt = t.qt + rows * p.dd;
        t.panel = t.kt + kStripCols * p.dd;
        t.strip = t.panel + kStripCols * p.dd;
        t.row = t.strip + rows * p.ld;
        t.acc = acc.data() + g.nkb * tid;
        xattn_task(in, p, task / p.tasks_per_head, task % p.tasks_per_head, t);
      }
      return LLMK_OK;
    }
    const bool last_q = a.method != LLMK_PREFILL_BLOCK_TOPK;
    const bool pooled = a.method != LLMK_PREFILL_VERTICAL_SLASH;
    const int64_t L = last_q ? a.last_q : 0;
    const int64_t lds = round_up(g.nkb, kCcePanelCols);
    const int64_t lq_floats = L * d + 2 * kKeyChunk * d + L * kKeyChunk + 2 * L;
    const int64_t pool_floats = pooled ? (g.nqb + g.nkb + lds) * d + kPoolRows * lds + 2 * d : 0;
    const int64_t per = lq_floats + pool_floats + 16;
    std::vector<float> buf(static_cast<size_t>(per * threads));
    std::vector<double> acc(static_cast<size_t>(d * threads));
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t head = 0; head < heads; ++head) {
      const int tid = omp_get_thread_num();
      float* base = buf.data() + per * tid;
      float* out = in.scores + head * in.per_head;
      if (last_q) {
        LastQBuffers t;
        t.qs = base;
        t.kf = t.qs + L * d;
        t.panel = t.kf + kKeyChunk * d;
        t.s = t.panel + kKeyChunk * d;
        t.m = t.s + L * kKeyChunk;
        t.l = t.m + L;
        last_q_stats(in, head, t, a.method == LLMK_PREFILL_FLEX, out);
      }
      if (pooled) {
        PoolBuffers t;
        t.qbar = base + lq_floats;
        t.kbar = t.qbar + g.nqb * d;
        t.panel = t.kbar + g.nkb * d;
        t.s = t.panel + lds * d;
        t.row = t.s + kPoolRows * lds;
        t.qhat = t.row + d;
        t.acc = acc.data() + d * tid;
        if (a.method == LLMK_PREFILL_FLEX) {
          pooled_scores(in, head, t, out + 2 * g.sk + g.nkb, out + 2 * g.sk);
        } else {
          pooled_scores(in, head, t, out, nullptr);
        }
      }
    }
    return LLMK_OK;
  });
}
