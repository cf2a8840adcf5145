// CPU KV compaction against direct double-precision evaluations, on every CPU variant: SnapKV
// (window attention averaged over window and group, avg/max pooled) and observed attention
// (column sums over all queries, accumulated over two calls) without the flash-style passes;
// selection against a full sort under the shared order; varlen gather and in-place hole filling
// giving the same rows; decode attention over the compacted cache against a direct softmax.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "expect.h"
#include "llmk/kv_math.h"
#include "llmk/llmk.h"

namespace {

struct Problem {
  int64_t B = 2, Hq = 4, Hkv = 2, n = 301, d = 40, w = 7;
  std::vector<float> q, k, v;
  explicit Problem(uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    q.resize(B * Hq * w * d);
    k.resize(B * Hkv * n * d);
    v.resize(k.size());
    for (float& x : q) x = nd(rng);
    for (float& x : k) x = nd(rng);
    for (float& x : v) x = nd(rng);
  }
  llmk_kv_score_args args(int64_t scorer) const {
    llmk_kv_score_args a;
    std::memset(&a, 0, sizeof a);
    a.struct_bytes = sizeof a;
    a.scorer = scorer;
    a.batch = B; a.heads_q = Hq; a.heads_kv = Hkv; a.n = n; a.head_dim = d; a.dtype = LLMK_F32; a.q_len = w;
    a.scale = 1.0 / std::sqrt(static_cast<double>(d));
    a.q = reinterpret_cast<int64_t>(q.data());
    a.k = reinterpret_cast<int64_t>(k.data());
    return a;
  }
  /* Column sums of the window attention of KV head bh (double, direct). */
  std::vector<double> colsum(int64_t bh, double scale) const {
    const int64_t g = Hq / Hkv, b = bh / Hkv, hkv = bh % Hkv;
    std::vector<double> out(n, 0.0), s(n);
    for (int64_t hh = 0; hh < g; ++hh)
      for (int64_t i = 0; i < w; ++i) {
        const float* qi = &q[((b * Hq + hkv * g + hh) * w + i) * d];
        const int64_t pos = n - w + i;
        double m = -INFINITY, sum = 0;
        for (int64_t j = 0; j <= pos; ++j) {
          double dot = 0;
          for (int64_t t = 0; t < d; ++t) dot += static_cast<double>(qi[t]) * k[(bh * n + j) * d + t];
          s[j] = dot * scale;
          m = std::max(m, s[j]);
        }
        for (int64_t j = 0; j <= pos; ++j) sum += std::exp(s[j] - m);
        for (int64_t j = 0; j <= pos; ++j) out[j] += std::exp(s[j] - m) / sum;
      }
    return out;
  }
};

double max_rel_error(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0, scale = 1e-12;
  for (double x : want) scale = std::max(scale, std::fabs(x));
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(got[i] - want[i]) / scale;
    worst = (e <= worst) ? worst : (std::isnan(e) ? INFINITY : e);
  }
  return worst;
}

void test_scores(uint32_t seed) {
  const Problem p(seed);
  const int64_t heads = p.B * p.Hkv, g = p.Hq / p.Hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(p.d));
  for (int64_t pool : {LLMK_KV_POOL_NONE, LLMK_KV_POOL_AVG, LLMK_KV_POOL_MAX}) {
    llmk_kv_score_args a = p.args(LLMK_KV_SNAPKV);
    a.pool = pool;
    a.pool_kernel = 5;
    std::vector<float> scores(heads * p.n, NAN);
    a.scores = reinterpret_cast<int64_t>(scores.data());
    EXPECT(llmk_kv_score_cpu(&a) == LLMK_OK);
    std::vector<double> want(scores.size());
    for (int64_t bh = 0; bh < heads; ++bh) {
      const std::vector<double> c = p.colsum(bh, scale);
      for (int64_t j = 0; j < p.n; ++j) {
        double v = pool == LLMK_KV_POOL_MAX ? -INFINITY : 0.0;
        if (pool == LLMK_KV_POOL_NONE) v = c[j];
        for (int64_t t = llmk::kv_pool_lo(j, 5); pool != LLMK_KV_POOL_NONE && t <= llmk::kv_pool_hi(j, 5, p.n); ++t)
          v = pool == LLMK_KV_POOL_MAX ? std::max(v, c[t]) : v + c[t];
        if (pool == LLMK_KV_POOL_AVG) v /= 5;
        want[bh * p.n + j] = v / static_cast<double>(g * p.w);
      }
    }
    const double err = max_rel_error(scores, want);
    EXPECT(err < 1e-5);
    if (err >= 1e-5) std::fprintf(stderr, "  snapkv pool %ld: error %.3g\n", static_cast<long>(pool), err);
  }
  // observed attention, two calls: sums add up, counts are group x queries that see the key
  std::vector<float> sum(heads * p.n, 0.0f), count(heads * p.n, 0.0f), scores(heads * p.n);
  llmk_kv_score_args a = p.args(LLMK_KV_OBSERVED);
  a.scores = reinterpret_cast<int64_t>(scores.data());
  a.attn_sum = reinterpret_cast<int64_t>(sum.data());
  a.attn_count = reinterpret_cast<int64_t>(count.data());
  EXPECT(llmk_kv_score_cpu(&a) == LLMK_OK);
  EXPECT(llmk_kv_score_cpu(&a) == LLMK_OK);
  std::vector<double> want(scores.size());
  for (int64_t bh = 0; bh < heads; ++bh) {
    const std::vector<double> c = p.colsum(bh, scale);
    for (int64_t j = 0; j < p.n; ++j) {
      const double seen = static_cast<double>(g * std::min<int64_t>(p.w, p.n - j));
      want[bh * p.n + j] = c[j] / seen;
      EXPECT(count[bh * p.n + j] == static_cast<float>(2 * seen));
    }
  }
  const double err = max_rel_error(scores, want);
  EXPECT(err < 1e-5);
  if (err >= 1e-5) std::fprintf(stderr, "  observed: error %.3g\n", err);
}

/* Selection (with many ties), then varlen and in-place compaction of K, then decode attention. */
void test_select_compact_decode(uint32_t seed) {
  const int64_t B = 2, H = 3, n = 1025, d = 16, sinks = 4, recent = 32, max_keep = 600;
  std::mt19937 rng(seed);
  std::vector<float> scores(B * H * n), cache(B * H * n * d);
  for (float& x : scores) x = static_cast<float>(rng() % 7);  // heavy ties
  for (size_t i = 0; i < cache.size(); ++i) cache[i] = static_cast<float>(i);
  std::vector<int32_t> budgets = {36, 100, 600, 1025 - 425, 500, 36};
  std::vector<int32_t> kept(B * H * max_keep, 7);
  llmk_kv_select_args s;
  std::memset(&s, 0, sizeof s);
  s.struct_bytes = sizeof s;
  s.batch = B; s.heads = H; s.n = n; s.sinks = sinks; s.recent = recent; s.max_keep = max_keep;
  s.scores = reinterpret_cast<int64_t>(scores.data());
  s.budgets = reinterpret_cast<int64_t>(budgets.data());
  s.kept = reinterpret_cast<int64_t>(kept.data());
  EXPECT(llmk_kv_select_cpu(&s) == LLMK_OK);
  for (int64_t bh = 0; bh < B * H; ++bh) {  // the budget first entries of a full sort, ascending
    std::vector<int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    const float* sc = &scores[bh * n];
    std::sort(order.begin(), order.end(), [&](int32_t x, int32_t y) {
      return llmk::kv_before(llmk::kv_forced(x, n, sinks, recent), sc[x], x, llmk::kv_forced(y, n, sinks, recent), sc[y], y);
    });
    std::sort(order.begin(), order.begin() + budgets[bh]);
    EXPECT(std::equal(order.begin(), order.begin() + budgets[bh], &kept[bh * max_keep]));
    EXPECT(budgets[bh] == max_keep || kept[bh * max_keep + budgets[bh]] == -1);
  }
  budgets[1] = 35;  // below sinks + recent: rejected
  EXPECT(llmk_kv_select_cpu(&s) == LLMK_ERR_OUT_OF_RANGE);
  budgets[1] = 100;

  std::vector<int64_t> cu(B * H + 1, 0);
  for (int64_t bh = 0; bh < B * H; ++bh) cu[bh + 1] = cu[bh] + budgets[bh];
  std::vector<float> packed(cu.back() * d);
  EXPECT(llmk_kv_gather_varlen_cpu(cache.data(), kept.data(), cu.data(), packed.data(), B, H, n, max_keep, d * 4) == 0);
  std::vector<float> inplace = cache;
  EXPECT(llmk_kv_compact_inplace_cpu(inplace.data(), kept.data(), budgets.data(), B, H, n, max_keep, d * 4) == 0);
  for (int64_t bh = 0; bh < B * H; ++bh) {  // same rows (in-place order differs): compare as sets
    std::vector<float> a, b;
    for (int64_t i = 0; i < budgets[bh]; ++i) {
      a.push_back(packed[(cu[bh] + i) * d]);
      b.push_back(inplace[(bh * n + i) * d]);
      EXPECT(packed[(cu[bh] + i) * d] == cache[(bh * n + kept[bh * max_keep + i]) * d]);
    }
    std::sort(b.begin(), b.end());
    EXPECT(a == b);  // a is ascending already (kept ascends)
    for (int64_t i = budgets[bh]; i < n; ++i) {  // slots past the new length: untouched except for moved-from rows
      const float original = cache[(bh * n + i) * d];
      EXPECT(inplace[(bh * n + i) * d] == original);
    }
  }
  kept[5] = kept[4];  // not strictly ascending: rejected, nothing moved
  std::vector<float> before = inplace;
  EXPECT(llmk_kv_compact_inplace_cpu(inplace.data(), kept.data(), budgets.data(), B, H, n, max_keep, d * 4) ==
         LLMK_ERR_OUT_OF_RANGE);
  EXPECT(before == inplace);

  // decode attention over the packed cache (K = V = the packed rows scaled down), GQA 2 per head
  std::vector<float> kv(packed.size());
  for (size_t i = 0; i < kv.size(); ++i) kv[i] = std::sin(static_cast<float>(i) * 0.37f);
  const int64_t Hq = 2 * H;
  std::vector<float> q(B * Hq * d), out(B * Hq * d, NAN), lse(B * Hq, NAN);
  for (size_t i = 0; i < q.size(); ++i) q[i] = std::cos(static_cast<float>(i) * 0.11f);
  llmk_kv_decode_args da;
  std::memset(&da, 0, sizeof da);
  da.struct_bytes = sizeof da;
  da.batch = B; da.heads_q = Hq; da.heads_kv = H; da.head_dim = d; da.dtype = LLMK_F32; da.out_dtype = LLMK_F32;
  da.scale = 0.25;
  da.q = reinterpret_cast<int64_t>(q.data());
  da.k = da.v = reinterpret_cast<int64_t>(kv.data());
  da.cu = reinterpret_cast<int64_t>(cu.data());
  da.out = reinterpret_cast<int64_t>(out.data());
  da.lse = reinterpret_cast<int64_t>(lse.data());
  EXPECT(llmk_kv_decode_attn_cpu(&da) == LLMK_OK);
  double worst = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t bh = b * H + h / 2;
      double m = -INFINITY, sum = 0;
      std::vector<double> s(cu[bh + 1] - cu[bh]), o(d, 0.0);
      for (int64_t j = 0; j < static_cast<int64_t>(s.size()); ++j) {
        double dot = 0;
        for (int64_t t = 0; t < d; ++t) dot += static_cast<double>(q[(b * Hq + h) * d + t]) * kv[(cu[bh] + j) * d + t];
        s[j] = dot * 0.25;
        m = std::max(m, s[j]);
      }
      for (size_t j = 0; j < s.size(); ++j) {
        const double p = std::exp(s[j] - m);
        sum += p;
        for (int64_t t = 0; t < d; ++t) o[t] += p * kv[(cu[bh] + j) * d + t];
      }
      for (int64_t t = 0; t < d; ++t) {
        const double e = std::fabs(out[(b * Hq + h) * d + t] - o[t] / sum);
        worst = (e <= worst) ? worst : (std::isnan(e) ? INFINITY : e);
      }
      const double e = std::fabs(lse[b * Hq + h] - (m + std::log(sum)));
      worst = (e <= worst) ? worst : (std::isnan(e) ? INFINITY : e);
    }
  EXPECT(worst < 1e-4);
  if (worst >= 1e-4) std::fprintf(stderr, "  decode: error %.3g\n", worst);
}

/* A GQA group larger than a key tile (512 query heads over one KV head, BF16): the group's
 * queries must not spill out of the per-thread tiles (found by review under AddressSanitizer). */
void test_decode_large_group() {
  const int64_t Hq = 512, d = 64, rows = 300;
  std::vector<uint16_t> q(Hq * d), kv(rows * d);
  for (size_t i = 0; i < q.size(); ++i) q[i] = 0x3f80;   // 1.0 in BF16
  for (size_t i = 0; i < kv.size(); ++i) kv[i] = static_cast<uint16_t>(0x3f80 + (i % 64));
  std::vector<int64_t> cu = {0, rows};
  std::vector<uint16_t> out(Hq * d, 0xffff);
  llmk_kv_decode_args a;
  std::memset(&a, 0, sizeof a);
  a.struct_bytes = sizeof a;
  a.batch = 1; a.heads_q = Hq; a.heads_kv = 1; a.head_dim = d; a.dtype = LLMK_BF16; a.out_dtype = LLMK_BF16;
  a.scale = 0.125;
  a.q = reinterpret_cast<int64_t>(q.data());
  a.k = a.v = reinterpret_cast<int64_t>(kv.data());
  a.cu = reinterpret_cast<int64_t>(cu.data());
  a.out = reinterpret_cast<int64_t>(out.data());
  EXPECT(llmk_kv_decode_attn_cpu(&a) == LLMK_OK);
  bool same = true;  // every query head is identical, so every output row must be too
  for (int64_t h = 1; h < Hq; ++h) same = same && std::equal(&out[0], &out[d], &out[h * d]);
  EXPECT(same);
  // cu whose differences overflow int64 must be rejected, not walked
  cu = {0, INT64_MIN + 1};
  EXPECT(llmk_kv_decode_attn_cpu(&a) == LLMK_ERR_OUT_OF_RANGE);
}

}  // namespace

int main() {
  for (const char* v : {"avx512", "avx2", "x86-64"}) {
    if (!llmk_cpu_supports_variant(v)) continue;
    EXPECT(llmk_cpu_set_variant(v) == LLMK_OK);
    test_scores(3);
    test_select_compact_decode(5);
    test_decode_large_group();
  }
  if (failures) std::fprintf(stderr, "%d failure(s)\n", failures);
  else std::printf("KV CPU tests passed\n");
  return failures ? 1 : 0;
}
