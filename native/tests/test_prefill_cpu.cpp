// CPU prefill estimators: scores against straightforward double evaluations written here (small
// shapes, ragged blocks, GQA, F32 and BF16 inputs), selections against hand-made cases and an
// independent sort-based evaluation (forced items, budgets, ties, NaN, -0, cumulative rule exactly
// on its target), argument errors naming the argument, and the layout selection filter.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "expect.h"
#include "llmk/half_bits.h"
#include "llmk/llmk.h"

namespace {

struct Shape {
  int64_t B, Hq, Hkv, Sq, Sk, d, block, last_q, stride;
};

struct Problem {
  Shape s;
  std::vector<float> q, k;  // values exactly representable in BF16
  explicit Problem(const Shape& sh, uint32_t seed) : s(sh) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    q.resize(s.B * s.Hq * s.Sq * s.d);
    k.resize(s.B * s.Hkv * s.Sk * s.d);
    for (float& x : q) x = llmk::bf16_bits_to_f32(llmk::f32_to_bf16_bits(nd(rng) * 1.5f));
    for (float& x : k) x = llmk::bf16_bits_to_f32(llmk::f32_to_bf16_bits(nd(rng)));
  }
  double scale() const { return 1.0 / std::sqrt(static_cast<double>(s.d)); }
  const float* qrow(int64_t head, int64_t i) const { return &q[(head * s.Sq + i) * s.d]; }
  const float* krow(int64_t head, int64_t j) const {
    const int64_t b = head / s.Hq, h = head % s.Hq;
    return &k[((b * s.Hkv + h / (s.Hq / s.Hkv)) * s.Sk + j) * s.d];
  }
  double dot(const float* a, const float* b) const {
    double x = 0;
    for (int64_t c = 0; c < s.d; ++c) x += static_cast<double>(a[c]) * b[c];
    return x;
  }
  int64_t nqb() const { return (s.Sq + s.block - 1) / s.block; }
  int64_t nkb() const { return (s.Sk + s.block - 1) / s.block; }
  int64_t diag(int64_t qb) const {
    return (std::min((qb + 1) * s.block, s.Sq) - 1 + s.Sk - s.Sq) / s.block;
  }

  llmk_prefill_args args(int64_t method) const {
    llmk_prefill_args a;
    std::memset(&a, 0, sizeof a);
    a.struct_bytes = sizeof a;
    a.method = method;
    a.batch = s.B; a.heads_q = s.Hq; a.heads_kv = s.Hkv; a.seq_q = s.Sq; a.seq_k = s.Sk; a.head_dim = s.d;
    a.dtype = LLMK_F32;
    a.scale = scale();
    a.block_q = a.block_k = s.block;
    a.last_q = s.last_q;
    a.vertical_size = std::min<int64_t>(20, s.Sk);
    a.slash_size = std::min<int64_t>(12, s.Sk);
    a.forced_columns = 3;
    a.forced_slashes = 2;
    a.top_k = 3;
    a.gamma = 0.9;
    a.tau = 0.1;
    a.min_budget_blocks = 1;
    a.max_budget_blocks = nkb();
    a.stride = s.stride;
    a.threshold = 0.9;
    a.q = reinterpret_cast<int64_t>(q.data());
    a.k = reinterpret_cast<int64_t>(k.data());
    return a;
  }

  /* Row softmax of the last L queries (double): P[r][j], j < Sk (0 where masked). */
  std::vector<std::vector<double>> last_p(int64_t head) const {
    const int64_t L = s.last_q;
    std::vector<std::vector<double>> p(L, std::vector<double>(s.Sk, 0.0));
    for (int64_t r = 0; r < L; ++r) {
      const int64_t i = s.Sq - L + r, qa = i + s.Sk - s.Sq;
      double m = -INFINITY, z = 0;
      for (int64_t j = 0; j <= qa; ++j) {
        p[r][j] = scale() * dot(qrow(head, i), krow(head, j));
        m = std::max(m, p[r][j]);
      }
      for (int64_t j = 0; j <= qa; ++j) z += std::exp(p[r][j] - m);
      for (int64_t j = 0; j <= qa; ++j) p[r][j] = std::exp(p[r][j] - m) / z;
    }
    return p;
  }

  /* Reference scores of one head, in the layout of the ABI. */
  std::vector<double> ref_scores(int64_t method, int64_t head) const {
    std::vector<double> out;
    const int64_t L = s.last_q, d = s.d, nq = nqb(), nk = nkb();
    if (method == LLMK_PREFILL_VERTICAL_SLASH || method == LLMK_PREFILL_FLEX) {
      const auto p = last_p(head);
      out.assign(2 * s.Sk, 0.0);
      for (int64_t r = 0; r < L; ++r) {
        const int64_t qa = s.Sq - L + r + s.Sk - s.Sq;
        for (int64_t j = 0; j <= qa; ++j) {
          out[j] += p[r][j];
          out[s.Sk + qa - j] += p[r][j];
        }
      }
      if (method == LLMK_PREFILL_FLEX) for (double& x : out) x /= L;
    }
    if (method == LLMK_PREFILL_BLOCK_TOPK || method == LLMK_PREFILL_FLEX) {
      std::vector<double> qbar(nq * d, 0.0), kbar(nk * d, 0.0), qhat(d, 0.0);
      for (int64_t i = 0; i < s.Sq; ++i)
        for (int64_t c = 0; c < d; ++c) qbar[(i / s.block) * d + c] += scale() * qrow(head, i)[c];
      for (int64_t j = 0; j < s.Sk; ++j)
        for (int64_t c = 0; c < d; ++c) kbar[(j / s.block) * d + c] += krow(head, j)[c];
      for (int64_t b = 0; b < nq; ++b)
        for (int64_t c = 0; c < d; ++c) qbar[b * d + c] /= std::min(s.block, s.Sq - b * s.block);
      for (int64_t b = 0; b < nk; ++b)
        for (int64_t c = 0; c < d; ++c) kbar[b * d + c] /= std::min(s.block, s.Sk - b * s.block);
      for (int64_t i = s.Sq - L; i < s.Sq; ++i)
        for (int64_t c = 0; c < d; ++c) qhat[c] += scale() * qrow(head, i)[c] / L;
      if (method == LLMK_PREFILL_FLEX) {
        for (int64_t kb = 0; kb < nk; ++kb) {
          double x = 0;
          for (int64_t c = 0; c < d; ++c) x += qhat[c] * kbar[kb * d + c];
          out.push_back(x);
        }
      }
      for (int64_t i = 0; i < nq; ++i) {
        std::vector<double> row(nk);
        double m = -INFINITY, z = 0;
        for (int64_t kb = 0; kb <= diag(i); ++kb) {
          double x = 0;
          for (int64_t c = 0; c < d; ++c) x += qbar[i * d + c] * kbar[kb * d + c];
          row[kb] = x;
          m = std::max(m, x);
        }
        for (int64_t kb = 0; kb <= diag(i); ++kb) z += std::exp(row[kb] - m);
        for (int64_t kb = 0; kb < nk; ++kb) {
          if (method == LLMK_PREFILL_BLOCK_TOPK) out.push_back(kb <= diag(i) ? row[kb] : -INFINITY);
          else out.push_back(kb <= diag(i) ? std::exp(row[kb] - m) / z : 0.0);
        }
      }
    }
    if (method == LLMK_PREFILL_XATTN) {
      const int64_t S = s.stride, m = s.block / S, rq = (s.Sq + S - 1) / S, rk = (s.Sk + S - 1) / S;
      const int64_t offr = (s.Sk - s.Sq) / S;
      out.assign(nq * nk, 0.0);
      for (int64_t i = 0; i < rq; ++i) {
        const int64_t cols = std::min(rk, i + offr + 1);
        std::vector<double> z(cols, 0.0);
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < cols; ++j) {
          for (int64_t t = 0; t < S; ++t) {
            const int64_t qi = i * S + S - 1 - t, kj = j * S + t;
            if (qi < s.Sq && kj < s.Sk) z[j] += dot(qrow(head, qi), krow(head, kj));
          }
          z[j] *= scale() / S;
          mx = std::max(mx, z[j]);
        }
        for (int64_t j = 0; j < cols; ++j) sum += std::exp(z[j] - mx);
        for (int64_t j = 0; j < cols; ++j) out[(i / m) * nk + j / m] += std::exp(z[j] - mx) / sum;
      }
    }
    return out;
  }
};

std::vector<uint16_t> to_bf16(const std::vector<float>& x) {
  std::vector<uint16_t> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = llmk::f32_to_bf16_bits(x[i]);
  return out;
}

int64_t per_head(const llmk_prefill_args& a) {
  int64_t n = -1;
  EXPECT(llmk_prefill_scores_size(&a, &n) == LLMK_OK);
  return n;
}

void test_scores(const Shape& sh, uint32_t seed) {
  const Problem p(sh, seed);
  const auto qb = to_bf16(p.q), kb = to_bf16(p.k);
  const int64_t methods[] = {LLMK_PREFILL_VERTICAL_SLASH, LLMK_PREFILL_BLOCK_TOPK, LLMK_PREFILL_FLEX, LLMK_PREFILL_XATTN};
  for (int64_t method : methods) {
    for (int64_t dtype : {int64_t{LLMK_F32}, int64_t{LLMK_BF16}}) {
      llmk_prefill_args a = p.args(method);
      a.dtype = dtype;
      if (dtype == LLMK_BF16) {
        a.q = reinterpret_cast<int64_t>(qb.data());
        a.k = reinterpret_cast<int64_t>(kb.data());
      }
      const int64_t n = per_head(a), heads = sh.B * sh.Hq;
      std::vector<float> scores(heads * n, 12345.0f);
      a.scores = reinterpret_cast<int64_t>(scores.data());
      const int32_t rc = llmk_prefill_score_cpu(&a);
      EXPECT(rc == LLMK_OK);
      if (rc != LLMK_OK) std::fprintf(stderr, "score: %s\n", llmk_last_error());
      int bad = 0;
      double worst = 0;
      for (int64_t h = 0; h < heads; ++h) {
        const auto ref = p.ref_scores(method, h);
        EXPECT(static_cast<int64_t>(ref.size()) == n);
        for (int64_t i = 0; i < n && i < static_cast<int64_t>(ref.size()); ++i) {
          const double x = scores[h * n + i], r = ref[i];
          if (std::isinf(r)) {
            if (x != r) ++bad;
            continue;
          }
          const double err = std::fabs(x - r);
          worst = std::max(worst, err / (1e-4 * std::fabs(r) + 1e-5));
          if (!(err <= 1e-4 * std::fabs(r) + 1e-5)) ++bad;
        }
      }
      if (bad) std::fprintf(stderr, "scores method %ld dtype %ld Sq %ld Sk %ld: %d mismatches (worst %.2f of tol)\n",
                            static_cast<long>(method), static_cast<long>(dtype), static_cast<long>(sh.Sq),
                            static_cast<long>(sh.Sk), bad, worst);
      EXPECT(bad == 0);
      /* end to end: select runs, forced items present, nothing above the diagonal */
      std::vector<uint8_t> sel(heads * p.nqb() * p.nkb(), 7);
      std::vector<int64_t> counts(heads * 5, -1);
      std::vector<float> div(heads, 1.0f);
      a.selection = reinterpret_cast<int64_t>(sel.data());
      a.head_counts = reinterpret_cast<int64_t>(counts.data());
      a.head_divergence = reinterpret_cast<int64_t>(div.data());
      EXPECT(llmk_prefill_select_cpu(&a) == LLMK_OK);
      for (int64_t h = 0; h < heads; ++h) {
        int64_t blocks = 0;
        for (int64_t r = 0; r < p.nqb(); ++r) {
          for (int64_t c = 0; c < p.nkb(); ++c) {
            const uint8_t v = sel[(h * p.nqb() + r) * p.nkb() + c];
            EXPECT(v == 0 || v == 1);
            if (c > p.diag(r)) EXPECT(v == 0);
            blocks += v;
          }
          if (method == LLMK_PREFILL_XATTN) {
            EXPECT(sel[(h * p.nqb() + r) * p.nkb()] == 1);
            EXPECT(sel[(h * p.nqb() + r) * p.nkb() + p.diag(r)] == 1);
          }
          if (method == LLMK_PREFILL_VERTICAL_SLASH) EXPECT(sel[(h * p.nqb() + r) * p.nkb() + p.diag(r)] == 1);
        }
        EXPECT(counts[h * 5 + 3] == blocks);
        if (method != LLMK_PREFILL_FLEX) EXPECT(std::isnan(div[h]));
      }
    }
  }
}

/* ---- selection against hand-made cases ----------------------------------------------------- */

struct SelCase {
  llmk_prefill_args a;
  std::vector<float> scores;
  std::vector<uint8_t> sel;
  std::vector<int64_t> counts;
  std::vector<float> div;
  int64_t nqb, nkb;
  SelCase(int64_t method, int64_t sq, int64_t sk, int64_t block) {
    std::memset(&a, 0, sizeof a);
    a.struct_bytes = sizeof a;
    a.method = method;
    a.batch = 1; a.heads_q = 1; a.heads_kv = 1; a.seq_q = sq; a.seq_k = sk; a.head_dim = 8;
    a.dtype = LLMK_F32;
    a.scale = 1.0;
    a.block_q = a.block_k = block;
    a.last_q = 1;
    a.gamma = 0.5;
    a.threshold = 0.5;
    a.stride = 1;
    nqb = (sq + block - 1) / block;
    nkb = (sk + block - 1) / block;
    a.max_budget_blocks = nkb;
  }
  int32_t run() {
    int64_t n = 0;
    if (llmk_prefill_scores_size(&a, &n) != LLMK_OK) return -1;
    scores.resize(n, 0.0f);
    sel.assign(nqb * nkb, 9);
    counts.assign(5, -1);
    div.assign(1, 0.0f);
    a.scores = reinterpret_cast<int64_t>(scores.data());
    a.selection = reinterpret_cast<int64_t>(sel.data());
    a.head_counts = reinterpret_cast<int64_t>(counts.data());
    a.head_divergence = reinterpret_cast<int64_t>(div.data());
    const int32_t rc = llmk_prefill_select_cpu(&a);
    if (rc != LLMK_OK) std::fprintf(stderr, "select: %s\n", llmk_last_error());
    return rc;
  }
  std::string row(int64_t qb) const {
    std::string s;
    for (int64_t kb = 0; kb < nkb; ++kb) s += sel[qb * nkb + kb] ? '1' : '0';
    return s;
  }
};

void test_topk_select() {
  /* Sq = Sk = 8, block 2: 4 x 4, row qb reaches kb <= qb */
  SelCase c(LLMK_PREFILL_BLOCK_TOPK, 8, 8, 2);
  c.a.top_k = 2;
  c.scores.assign(16, 0.0f);
  const float nan = std::nanf("");
  const float row3[] = {-0.0f, 0.0f, nan, 0.0f};  // -0 ties +0: lowest index wins; NaN last
  const float row2[] = {5.0f, 7.0f, 7.0f, -INFINITY};
  EXPECT(c.run() == LLMK_OK && c.scores.size() == 16);
  std::vector<float> sc(16, 0.0f);
  sc[0 * 4 + 0] = 1.0f;
  sc[1 * 4 + 0] = 1.0f; sc[1 * 4 + 1] = 2.0f;
  for (int i = 0; i < 4; ++i) { sc[2 * 4 + i] = row2[i]; sc[3 * 4 + i] = row3[i]; }
  c.scores = sc;
  c.a.scores = reinterpret_cast<int64_t>(c.scores.data());
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  EXPECT(c.row(0) == "1000");
  EXPECT(c.row(1) == "1100");
  EXPECT(c.row(2) == "0110");  // 7 at kb 1 and 2 (tie by index), budget 2
  EXPECT(c.row(3) == "1100");  // -0 == +0: kb 0, 1 first; NaN (kb 2) never before a number
  EXPECT(c.counts[0] == LLMK_PREFILL_PAT_BLOCK_TOPK && c.counts[3] == 7 && std::isnan(c.div[0]));
  /* forced diagonal counts in the budget; budget 0 keeps only the forced */
  c.a.flags = LLMK_PREFILL_FORCE_DIAGONAL;
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  EXPECT(c.row(2) == "0110");  // diag 2 forced + best other (kb 1)
  EXPECT(c.row(3) == "1001");  // diag 3 forced + kb 0
  c.a.top_k = 0;
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  EXPECT(c.row(0) == "1000" && c.row(3) == "0001" && c.counts[3] == 4);
  c.a.flags = 0;
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  EXPECT(c.counts[3] == 0);
  c.a.top_k = 1000;  // budget above the reachable count keeps all reachable
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  EXPECT(c.row(0) == "1000" && c.row(3) == "1111" && c.counts[3] == 10);
}

void test_xattn_select() {
  /* Sq 4, Sk 8, block 2: off 4, diag(qb) = qb + 2; one row of interest (qb 1, diag 3) */
  SelCase c(LLMK_PREFILL_XATTN, 4, 8, 2);
  EXPECT(c.run() == LLMK_OK);
  EXPECT(c.row(0) == "1010" && c.row(1) == "1001");  // total 0: forced only
  std::vector<float> sc(8, 0.0f);
  // row 0 (diag 2): masses 0.25 (forced), 0.5, 0.25 (forced): target 0.5 * 1 reached by forced
  sc[0] = 0.25f; sc[1] = 0.5f; sc[2] = 0.25f;
  // row 1 (diag 3): 0.125 (forced), 0.25, 0.375, 0.25 (forced); target 0.9 -> 0.375 and then 0.25 (kb 1)
  sc[4] = 0.125f; sc[5] = 0.25f; sc[6] = 0.375f; sc[7] = 0.25f;
  c.scores = sc;
  c.a.scores = reinterpret_cast<int64_t>(c.scores.data());
  c.a.threshold = 0.5;
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  EXPECT(c.row(0) == "1010");  // cum 0.5 == target exactly: stop
  EXPECT(c.row(1) == "1011");  // 0.375 after the forced 0.375 reaches 0.75 >= 0.5
  c.a.threshold = 0.75;        // row 1: forced 0.375 + 0.375 = 0.75 exactly on target: stop
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  EXPECT(c.row(1) == "1011" && c.row(0) == "1110");
  c.a.threshold = 0.76;
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  EXPECT(c.row(1) == "1111" && c.counts[0] == LLMK_PREFILL_PAT_XATTN && c.counts[3] == 7);
  sc[5] = std::nanf("");  // NaN: no mass, ordered last
  c.scores = sc;
  c.a.scores = reinterpret_cast<int64_t>(c.scores.data());
  c.a.threshold = 1.0;
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  EXPECT(c.row(1) == "1011");  // total 0.75 reached without the NaN block
}

/* Independent evaluation of VS marking: tile (qb, kb) selected iff some causal pair (qa, k) of it
 * has k in C or qa - k in D. C and D by a full sort under the order. */
std::vector<int64_t> sorted_items(const float* v, int64_t lo, int64_t hi) {
  std::vector<int64_t> idx;
  for (int64_t i = lo; i < hi; ++i) idx.push_back(i);
  auto key = [](float x) { return std::isnan(x) ? -INFINITY : (x == 0.0f ? 0.0f : x); };
  std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    return key(v[a]) > key(v[b]) || (key(v[a]) == key(v[b]) && a < b);
  });
  return idx;
}

void test_vs_select(uint32_t seed) {
  const int64_t sq = 45, sk = 70, bq = 8, bk = 16;
  SelCase c(LLMK_PREFILL_VERTICAL_SLASH, sq, sk, bq);
  c.a.block_k = bk;
  c.nkb = (sk + bk - 1) / bk;
  c.a.vertical_size = 6;
  c.a.forced_columns = 2;
  c.a.slash_size = 5;
  c.a.forced_slashes = 1;
  EXPECT(c.run() == LLMK_OK);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pick(0, 5);
  std::vector<float> sc(2 * sk);
  const float vals[] = {0.0f, -0.0f, 1.0f, 1.0f, std::nanf(""), 0.5f};
  for (float& x : sc) x = vals[pick(rng)];
  c.scores = sc;
  c.a.scores = reinterpret_cast<int64_t>(c.scores.data());
  c.a.scores = reinterpret_cast<int64_t>(c.scores.data());
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  std::vector<bool> col(sk, false), sl2(sk, false);
  for (int64_t j = 0; j < 2; ++j) col[j] = true;
  const auto ov = sorted_items(sc.data(), 2, sk);
  for (int64_t i = 0; i < 4; ++i) col[ov[i]] = true;
  sl2[0] = true;
  const auto os = sorted_items(sc.data() + sk, 1, sk);
  for (int64_t i = 0; i < 4; ++i) sl2[os[i]] = true;
  /* tiles holding a chosen pair: columns count only when they are inflated to blocks */
  const auto mismatches = [&](bool with_columns) {
    int bad = 0;
    for (int64_t qb = 0; qb < c.nqb; ++qb) {
      for (int64_t kb = 0; kb < c.nkb; ++kb) {
        bool want = false;
        for (int64_t qq = qb * bq; qq < std::min((qb + 1) * bq, sq); ++qq) {
          const int64_t qa = qq + sk - sq;
          for (int64_t k = kb * bk; k < std::min((kb + 1) * bk, sk); ++k) {
            if (k <= qa && ((with_columns && col[k]) || sl2[qa - k])) want = true;
          }
        }
        if (want != (c.sel[qb * c.nkb + kb] == 1)) ++bad;
      }
    }
    return bad;
  };
  EXPECT(mismatches(true) == 0);
  EXPECT(c.counts[0] == LLMK_PREFILL_PAT_VERTICAL_SLASH && c.counts[1] == 6 && c.counts[2] == 5 && c.counts[4] == 6);
  /* token columns: the selection keeps the slashes only, the list holds C ascending */
  std::vector<int32_t> cols(6, -7);
  c.a.flags = LLMK_PREFILL_COLUMN_TOKENS;
  c.a.columns = reinterpret_cast<int64_t>(cols.data());
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  EXPECT(mismatches(false) == 0);
  std::vector<int32_t> want_cols;
  for (int64_t j = 0; j < sk; ++j) {
    if (col[j]) want_cols.push_back(static_cast<int32_t>(j));
  }
  EXPECT(cols == want_cols);
  EXPECT(c.counts[1] == 6 && c.counts[4] == 6);
}

void test_flex_select() {
  /* Sq = Sk = 16, block 2 (nqb = nkb = 8), min budget 1 block: not the dense fallback (16 > 4). */
  SelCase c(LLMK_PREFILL_FLEX, 16, 16, 2);
  c.a.min_budget_blocks = 1;
  c.a.max_budget_blocks = 8;
  c.a.gamma = 0.5;
  c.a.tau = 0.0;  // never query-aware
  EXPECT(c.run() == LLMK_OK);
  const int64_t sk = 16, nkb = 8;
  std::vector<float> sc(c.scores.size(), 0.0f);
  // vert: mass 0.5 on column 9 (block 4) and 0.25 on columns 2, 3 (block 1): t_v = 1 (0.5 >= 0.5)
  sc[9] = 0.5f; sc[2] = 0.25f; sc[3] = 0.25f;
  // slash: 1.0 on offset 5 (bin 2): t_s = 1
  sc[sk + 5] = 1.0f;
  c.scores = sc;
  c.a.scores = reinterpret_cast<int64_t>(c.scores.data());
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  // nV = nS = 1/2 + 1 = 1: forced block 0 and diagonal t = 0 only
  EXPECT(c.counts[0] == LLMK_PREFILL_PAT_VERTICAL_SLASH && c.counts[1] == 1 && c.counts[2] == 1);
  EXPECT(c.row(7) == "10000001" && c.row(0) == "10000000");
  c.a.min_budget_blocks = 3;  // 3 blocks each: vertical 0, 4, 1; diagonals 0, 2 (offset 5 -> bin 2), 1
  c.a.gamma = 1.0;
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  EXPECT(c.counts[1] == 3 && c.counts[2] == 3);
  EXPECT(c.row(7) == "11001111");  // verticals 0, 1, 4; diag 7, 6, 5
  EXPECT(c.row(2) == "11100000");  // verticals 0, 1 (4 unreachable); diag 2, 1, 0
  EXPECT(c.div[0] >= 0.0f && !std::isnan(c.div[0]));
  /* divergence: ahat logits all equal (uniform 1/8) against vb = uniform -> d = 0 -> query-aware with tau > 0 */
  std::vector<float> u(c.scores.size(), 0.0f);
  for (int64_t j = 0; j < sk; ++j) u[j] = 1.0f / 16;
  u[sk] = 1.0f;
  // A: row i has all mass on kb 0 (reachable kb <= i): global cover with gamma 0.5 of total 8 -> 4 rows' kb 0
  for (int64_t i = 0; i < 8; ++i) u[2 * sk + nkb + i * nkb] = 1.0f;
  c.scores = u;
  c.a.scores = reinterpret_cast<int64_t>(c.scores.data());
  c.a.tau = 0.5;
  c.a.gamma = 0.5;
  c.a.min_budget_blocks = 1;
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  EXPECT(c.counts[0] == LLMK_PREFILL_PAT_QUERY_AWARE);
  EXPECT(std::fabs(c.div[0]) < 1e-6f);
  for (int64_t i = 0; i < 8; ++i) EXPECT(c.sel[i * nkb] == 1 && c.sel[i * nkb + i] == 1);
  /* dense fallback: Sq <= max(2 * block, min * block) */
  c.a.min_budget_blocks = 8;
  EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
  EXPECT(c.counts[0] == LLMK_PREFILL_PAT_DENSE && c.counts[3] == 36 && std::isnan(c.div[0]));
}

/* ---- selections against an independent sort-based evaluation, random scores with ties ---- */

float okey(float x) { return std::isnan(x) ? -INFINITY : (x == 0.0f ? 0.0f : x); }
double mass(double x) { return x > 0 ? x : 0.0; }

/* items sorted by (value desc, index asc) under the key */
template <typename T>
std::vector<int64_t> order(const std::vector<int64_t>& items, const T* v) {
  std::vector<int64_t> o = items;
  std::sort(o.begin(), o.end(), [&](int64_t a, int64_t b) {
    const double ka = okey(static_cast<float>(v[a])), kb = okey(static_cast<float>(v[b]));
    return ka > kb || (ka == kb && a < b);
  });
  return o;
}
std::vector<int64_t> order_d(const std::vector<int64_t>& items, const double* v) {
  std::vector<int64_t> o = items;
  std::sort(o.begin(), o.end(), [&](int64_t a, int64_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  return o;
}

void test_random_select(uint32_t seed) {
  std::mt19937 rng(seed);
  const float vals[] = {0.0f, -0.0f, 0.0625f, 0.125f, 0.125f, 0.25f, std::nanf(""), 0.5f, 1.0f, 0.03125f};
  std::uniform_int_distribution<int> pick(0, 9);
  const int64_t sq = 37 + seed * 3, sk = sq + 16, block = 4;
  const int64_t nqb = (sq + block - 1) / block, nkb = (sk + block - 1) / block, off = sk - sq;
  auto diag = [&](int64_t qb) { return (std::min((qb + 1) * block, sq) - 1 + off) / block; };
  for (int64_t method : {int64_t{LLMK_PREFILL_BLOCK_TOPK}, int64_t{LLMK_PREFILL_XATTN}, int64_t{LLMK_PREFILL_FLEX}}) {
    SelCase c(method, sq, sk, block);
    c.a.top_k = 1 + seed % 4;
    c.a.flags = seed % 2 ? LLMK_PREFILL_FORCE_DIAGONAL : 0;
    c.a.threshold = 0.3 + 0.1 * (seed % 6);
    c.a.gamma = 0.5 + 0.1 * (seed % 5);
    c.a.tau = seed % 3 == 0 ? 1.0 : 0.0;  // all query-aware, or none
    c.a.min_budget_blocks = 1 + seed % 2;
    c.a.max_budget_blocks = 2 + seed % 3;
    EXPECT(c.run() == LLMK_OK);
    std::vector<float> sc(c.scores.size());
    for (float& x : sc) x = vals[pick(rng)];
    c.scores = sc;
    c.a.scores = reinterpret_cast<int64_t>(c.scores.data());
    EXPECT(llmk_prefill_select_cpu(&c.a) == LLMK_OK);
    std::vector<uint8_t> want(nqb * nkb, 0);
    if (method == LLMK_PREFILL_BLOCK_TOPK || method == LLMK_PREFILL_XATTN) {
      for (int64_t qb = 0; qb < nqb; ++qb) {
        const float* row = &sc[qb * nkb];
        const int64_t dg = diag(qb);
        std::vector<int64_t> forced, others;
        if (method == LLMK_PREFILL_XATTN) forced = dg > 0 ? std::vector<int64_t>{0, dg} : std::vector<int64_t>{0};
        else if (c.a.flags) forced = {dg};
        for (int64_t kb = 0; kb <= dg; ++kb)
          if (std::find(forced.begin(), forced.end(), kb) == forced.end()) others.push_back(kb);
        const auto o = order(others, row);
        for (int64_t kb : forced) want[qb * nkb + kb] = 1;
        if (method == LLMK_PREFILL_BLOCK_TOPK) {
          const int64_t budget = std::min<int64_t>(c.a.top_k, dg + 1);
          for (int64_t i = 0; i < budget - static_cast<int64_t>(forced.size()) && i < static_cast<int64_t>(o.size()); ++i)
            want[qb * nkb + o[i]] = 1;
        } else {
          double total = 0, cum = 0;
          for (int64_t kb = 0; kb <= dg; ++kb) total += mass(row[kb]);
          for (int64_t kb : forced) cum += mass(row[kb]);
          for (size_t i = 0; i < o.size() && !(cum >= c.a.threshold * total); ++i) {
            want[qb * nkb + o[i]] = 1;
            cum += mass(row[o[i]]);
          }
        }
      }
    } else {
      const float* vert = sc.data();
      const float* slash = vert + sk;
      const float* ahat = slash + sk;
      const float* am = ahat + nkb;
      auto cover = [&](const float* v) {
        std::vector<int64_t> all(sk);
        std::iota(all.begin(), all.end(), 0);
        double total = 0, cum = 0;
        for (int64_t j = 0; j < sk; ++j) total += mass(v[j]);
        int64_t n = 0;
        for (int64_t j : order(all, v)) {
          if (cum >= c.a.gamma * total) break;
          cum += mass(v[j]);
          ++n;
        }
        return n;
      };
      auto clampb = [&](int64_t x) { return std::max(c.a.min_budget_blocks, std::min(c.a.max_budget_blocks, x)); };
      int64_t nv = clampb(cover(vert) / block + 1), ns = clampb(cover(slash) / block + 1);
      std::vector<double> vb(nkb, 0.0), sb(nkb, 0.0);
      for (int64_t j = 0; j < sk; ++j) {
        vb[j / block] += mass(vert[j]);
        sb[j / block] += mass(slash[j]);
      }
      double mx = -INFINITY, z = 0, kl1 = 0, kl2 = 0;
      for (int64_t kb = 0; kb < nkb; ++kb) mx = std::max(mx, static_cast<double>(ahat[kb]));
      for (int64_t kb = 0; kb < nkb; ++kb) z += std::exp(ahat[kb] - mx);
      for (int64_t kb = 0; kb < nkb; ++kb) {
        const double x = std::exp(ahat[kb] - mx) / z, y = vb[kb], m = 0.5 * (x + y);
        if (x > 0) kl1 += x * std::log(x / m);
        if (y > 0) kl2 += y * std::log(y / m);
      }
      const double d = std::sqrt(std::max(0.0, 0.5 * kl1 + 0.5 * kl2));
      const bool qaware = d < c.a.tau;
      if (qaware) nv = ns = c.a.min_budget_blocks;
      std::vector<int64_t> rest;
      for (int64_t kb = 1; kb < nkb; ++kb) rest.push_back(kb);
      auto ov = order_d(rest, vb.data()), os = order_d(rest, sb.data());
      std::vector<int64_t> vs{0}, ss{0};
      for (int64_t i = 0; i + 1 < nv && i < static_cast<int64_t>(ov.size()); ++i) vs.push_back(ov[i]);
      for (int64_t i = 0; i + 1 < ns && i < static_cast<int64_t>(os.size()); ++i) ss.push_back(os[i]);
      for (int64_t qb = 0; qb < nqb; ++qb) {
        for (int64_t kb : vs) if (kb <= diag(qb)) want[qb * nkb + kb] = 1;
        for (int64_t t : ss) if (diag(qb) - t >= 0) want[qb * nkb + diag(qb) - t] = 1;
      }
      if (qaware) {
        std::vector<int64_t> items;
        double total = 0, cum = 0;
        for (int64_t i = 0; i < nqb; ++i)
          for (int64_t kb = 0; kb <= diag(i); ++kb) {
            items.push_back(i * nkb + kb);
            total += mass(am[i * nkb + kb]);
          }
        for (int64_t f : order(items, am)) {
          if (cum >= c.a.gamma * total) break;
          want[f] = 1;
          cum += mass(am[f]);
        }
      }
      EXPECT(c.counts[0] == (qaware ? LLMK_PREFILL_PAT_QUERY_AWARE : LLMK_PREFILL_PAT_VERTICAL_SLASH));
      EXPECT(c.counts[1] == static_cast<int64_t>(vs.size()) && c.counts[2] == static_cast<int64_t>(ss.size()));
      EXPECT(std::fabs(c.div[0] - d) <= 1e-6 * (1 + d));
    }
    const bool same = want == c.sel;
    EXPECT(same);
    if (!same) std::fprintf(stderr, "random select: method %ld seed %u differs\n", static_cast<long>(method), seed);
    int64_t blocks = 0;
    for (uint8_t v : want) blocks += v;
    EXPECT(c.counts[3] == blocks);
  }
}

/* ---- argument errors ----------------------------------------------------------------------- */

void expect_invalid(llmk_prefill_args a, const char* name, bool select = false) {
  std::vector<float> scores(1 << 16);
  std::vector<uint8_t> sel(1 << 16);
  std::vector<int64_t> counts(1 << 10);
  if (a.scores == 1) a.scores = reinterpret_cast<int64_t>(scores.data());
  if (a.selection == 1) a.selection = reinterpret_cast<int64_t>(sel.data());
  if (a.head_counts == 1) a.head_counts = reinterpret_cast<int64_t>(counts.data());
  const int32_t rc = select ? llmk_prefill_select_cpu(&a) : llmk_prefill_score_cpu(&a);
  const std::string msg = llmk_last_error();
  EXPECT(rc == LLMK_ERR_INVALID_ARGUMENT);
  EXPECT(msg.find(name) != std::string::npos);
  if (rc != LLMK_ERR_INVALID_ARGUMENT || msg.find(name) == std::string::npos) {
    std::fprintf(stderr, "  wanted '%s' in: %s (rc %d)\n", name, msg.c_str(), rc);
  }
}

void test_bad_args() {
  const Problem p({1, 2, 1, 40, 48, 8, 8, 4, 4}, 3);
  llmk_prefill_args a = p.args(LLMK_PREFILL_FLEX);
  a.scores = 1;
  { auto b = a; b.struct_bytes = 8; expect_invalid(b, "struct_bytes"); }
  { auto b = a; b.method = 9; expect_invalid(b, "method"); }
  { auto b = a; b.gamma = 0.0; expect_invalid(b, "gamma"); }
  { auto b = a; b.gamma = 1.01; expect_invalid(b, "gamma"); }
  { auto b = a; b.gamma = std::nan(""); expect_invalid(b, "gamma"); }
  { auto b = a; b.tau = 1.5; expect_invalid(b, "tau"); }
  { auto b = a; b.min_budget_blocks = -1; expect_invalid(b, "min_budget_blocks"); }
  { auto b = a; b.max_budget_blocks = 7; expect_invalid(b, "max_budget_blocks"); }
  { auto b = a; b.last_q = 41; expect_invalid(b, "last_q"); }
  { auto b = a; b.block_k = 16; expect_invalid(b, "block_q must equal block_k"); }
  { auto b = a; b.seq_q = 49; expect_invalid(b, "seq_q"); }
  { auto b = a; b.heads_kv = 3; expect_invalid(b, "heads_q"); }
  { auto b = a; b.dtype = LLMK_I32; expect_invalid(b, "dtype"); }
  { auto b = a; b.block_q = b.block_k = 0; expect_invalid(b, "block_q"); }
  { auto b = a; b.flags = 1; expect_invalid(b, "flags"); }
  { auto b = a; b.scores = 0; expect_invalid(b, "scores"); }
  { auto b = a; b.q = 0; expect_invalid(b, "q must not be"); }
  { auto b = a; b.scores = b.k; expect_invalid(b, "overlap"); }
  { auto b = a; b.selection = 1; b.head_counts = 0; expect_invalid(b, "head_counts", true); }
  { auto b = a; b.selection = 0; b.head_counts = 1; expect_invalid(b, "selection", true); }
  llmk_prefill_args v = p.args(LLMK_PREFILL_VERTICAL_SLASH);
  v.scores = 1;
  { auto b = v; b.vertical_size = -1; expect_invalid(b, "vertical_size"); }
  { auto b = v; b.vertical_size = 2; expect_invalid(b, "vertical_size"); }  // below forced_columns 3
  { auto b = v; b.slash_size = 49; expect_invalid(b, "slash_size"); }
  { auto b = v; b.forced_slashes = -1; expect_invalid(b, "forced_slashes"); }
  std::vector<int32_t> cols(64);
  {  // token columns: VS only, an address for them, no overlap with the other outputs
    auto b = a;
    b.flags = LLMK_PREFILL_COLUMN_TOKENS;
    expect_invalid(b, "COLUMN_TOKENS is for VERTICAL_SLASH only");
    b = v;
    b.flags = LLMK_PREFILL_COLUMN_TOKENS;
    b.selection = b.head_counts = 1;
    expect_invalid(b, "columns must not be", true);
    b.columns = reinterpret_cast<int64_t>(cols.data());
    b.head_divergence = reinterpret_cast<int64_t>(cols.data() + 8);
    expect_invalid(b, "overlap", true);
  }
  llmk_prefill_args t = p.args(LLMK_PREFILL_BLOCK_TOPK);
  t.scores = 1;
  { auto b = t; b.top_k = -1; expect_invalid(b, "top_k"); }
  llmk_prefill_args x = p.args(LLMK_PREFILL_XATTN);
  x.scores = 1;
  { auto b = x; b.stride = 0; expect_invalid(b, "stride"); }
  { auto b = x; b.stride = 3; expect_invalid(b, "stride must divide block_q"); }
  { auto b = x; b.stride = 8; b.seq_q = 44; expect_invalid(b, "stride must divide seq_k - seq_q"); }
  { auto b = x; b.threshold = 0.0; expect_invalid(b, "threshold"); }
  { auto b = x; b.threshold = 1.1; expect_invalid(b, "threshold"); }
  int64_t n = 0;
  EXPECT(llmk_prefill_scores_size(&x, &n) == LLMK_OK && n == 5 * 6);
  EXPECT(llmk_prefill_scores_size(&x, nullptr) == LLMK_ERR_INVALID_ARGUMENT);
}

/* ---- layout selection filter --------------------------------------------------------------- */

void test_layout_selection() {
  const int64_t sq = 40, sk = 64, bq = 16, bk = 16, nqb = 3, nkb = 4;  // off 24
  llmk_mask_node causal;
  std::memset(&causal, 0, sizeof causal);
  causal.op = LLMK_MASK_CAUSAL;
  causal.i1 = 1;
  std::vector<uint8_t> sel(nqb * nkb, 1);
  sel[0 * nkb + 1] = 0;  // row 0 (qa 24..39): drop kb 1 (FULL otherwise)
  std::vector<int64_t> pp(nqb + 1), fp(nqb + 1);
  llmk_layout_args a;
  std::memset(&a, 0, sizeof a);
  a.struct_bytes = sizeof a;
  a.batch = 1; a.layout_batch = 1; a.layout_heads = 1;
  a.seq_q = sq; a.seq_k = sk; a.block_q = bq; a.block_k = bk;
  a.nodes = reinterpret_cast<int64_t>(&causal);
  a.node_count = 1;
  a.partial_ptr = reinterpret_cast<int64_t>(pp.data());
  a.full_ptr = reinterpret_cast<int64_t>(fp.data());
  a.selection = reinterpret_cast<int64_t>(sel.data());
  EXPECT(llmk_layout_count_cpu(&a) == LLMK_OK);
  std::vector<int32_t> pi(pp[nqb] + 1), fi(fp[nqb] + 1);
  a.partial_idx = reinterpret_cast<int64_t>(pi.data());
  a.full_idx = reinterpret_cast<int64_t>(fi.data());
  EXPECT(llmk_layout_fill_cpu(&a) == LLMK_OK);
  // row 0: qa 24..39: kb 0 FULL, kb 1 dropped by the selection, kb 2 (32..47) PARTIAL, kb 3 above
  EXPECT(fp[1] - fp[0] == 1 && fi[0] == 0);
  EXPECT(pp[1] - pp[0] == 1 && pi[0] == 2);
  // row 1: qa 40..55: kb 0, 1 FULL, kb 2 crossing (PARTIAL), kb 3 above (dropped)
  EXPECT(fp[2] - fp[1] == 2 && fi[fp[1]] == 0 && fi[fp[1] + 1] == 1);
  EXPECT(pp[2] - pp[1] == 2 && pi[pp[1]] == 2 && pi[pp[1] + 1] == 3);
  // row 2: qa 56..63: kb 0..2 FULL, kb 3 PARTIAL
  EXPECT(fp[3] - fp[2] == 3 && pp[3] - pp[2] == 1 && pi[pp[2]] == 3);
  a.selection = reinterpret_cast<int64_t>(pp.data());  // overlapping the ptr arrays
  EXPECT(llmk_layout_count_cpu(&a) == LLMK_ERR_INVALID_ARGUMENT);
  EXPECT(std::string(llmk_last_error()).find("selection") != std::string::npos);
}

}  // namespace

int main() {
  test_scores({1, 2, 2, 97, 97, 16, 16, 16, 4}, 1);
  test_scores({2, 4, 2, 201, 257, 24, 32, 20, 8}, 2);   // GQA, Sq < Sk, ragged blocks
  test_scores({1, 3, 1, 257, 257, 40, 64, 64, 16}, 5);  // MQA, last_q = block
  test_topk_select();
  test_xattn_select();
  for (uint32_t seed = 1; seed <= 5; ++seed) test_vs_select(seed);
  test_flex_select();
  for (uint32_t seed = 1; seed <= 12; ++seed) test_random_select(seed);
  test_bad_args();
  test_layout_selection();
  if (failures) {
    std::printf("FAILED: %d expectation(s)\n", failures);
    return 1;
  }
  std::printf("prefill CPU tests passed\n");
  return 0;
}
