// CUDA KV cache compaction against the CPU kernels (the reference): every scorer (F32 / BF16,
// GQA, ragged n 1 / 97 / 1025 / 4099, odd head dims, observed attention accumulated over two
// calls), selection (exactly the CPU's set, with heavy ties and -0 / +0 scores), varlen gather and
// in-place hole filling (byte-exact, row sizes 4 / 6 / 256), decode attention over varlen caches
// (empty heads, every dtype and out dtype); bad budgets, NaN scores, bad cu, bad kept indices and
// unsorted slots are rejected with nothing written. Without a CUDA device (or a library built
// without CUDA) it prints "SKIP: <reason>" and passes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "llmk/kv_math.h"
#include "llmk/llmk.h"

#include "cuda_test_util.h"
#include "expect.h"

namespace {

std::mt19937 rng(1234);

std::vector<float> randn(size_t n, float sd = 1.0f) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

const int64_t kSizes[] = {1, 97, 1025, 4099};

void report(int32_t rc, const std::string& what) {
  if (rc != LLMK_OK) std::fprintf(stderr, "[%s] rc %d: %s\n", what.c_str(), rc, llmk_last_error());
}

/* ---- scoring ---- */

void score_case(int64_t scorer, int64_t dtype, int64_t n, int64_t d, int64_t q_len, int64_t pool, int64_t kernel) {
  const int64_t B = 2, Hkv = 2, Hq = 4;
  const std::string name = "score s" + std::to_string(scorer) + " t" + std::to_string(dtype) + " n" + std::to_string(n) +
                           " d" + std::to_string(d) + " q" + std::to_string(q_len) + " p" + std::to_string(pool);
  const auto qf = randn(static_cast<size_t>(B * Hq * q_len * d));
  const auto kf = randn(static_cast<size_t>(B * Hkv * n * d));
  const auto qb = encode(qf, dtype), kb = encode(kf, dtype);
  const size_t total = static_cast<size_t>(B * Hkv * n);
  std::vector<float> sum0(total), cnt0(total);
  for (size_t i = 0; i < total; ++i) {
    sum0[i] = 0.01f * static_cast<float>(i % 7);
    cnt0[i] = static_cast<float>(i % 3);
  }
  llmk_kv_score_args a;
  std::memset(&a, 0, sizeof a);
  a.struct_bytes = sizeof a;
  a.scorer = scorer;
  a.batch = B;
  a.heads_q = Hq;
  a.heads_kv = Hkv;
  a.n = n;
  a.head_dim = d;
  a.dtype = dtype;
  a.q_len = q_len;
  a.pool = pool;
  a.pool_kernel = kernel;
  a.scale = 1.0 / std::sqrt(static_cast<double>(d));
  a.ladder_layer = 3;
  a.ladder_rung = 4;
  // CPU
  std::vector<float> s_cpu(total), sum_cpu = sum0, cnt_cpu = cnt0;
  llmk_kv_score_args c = a;
  c.q = reinterpret_cast<int64_t>(qb.data());
  c.k = reinterpret_cast<int64_t>(kb.data());
  c.scores = reinterpret_cast<int64_t>(s_cpu.data());
  c.attn_sum = reinterpret_cast<int64_t>(sum_cpu.data());
  c.attn_count = reinterpret_cast<int64_t>(cnt_cpu.data());
  const int calls = scorer == LLMK_KV_OBSERVED ? 2 : 1;
  for (int i = 0; i < calls; ++i) {
    const int32_t rc = llmk_kv_score_cpu(&c);
    report(rc, name + " cpu");
    EXPECT(rc == LLMK_OK);
  }
  // CUDA
  DevBuf dq(bytes_of(qb)), dk(bytes_of(kb)), ds(static_cast<int64_t>(total * 4)), dsum(static_cast<int64_t>(total * 4)),
      dcnt(static_cast<int64_t>(total * 4));
  dq.upload(qb.data());
  dk.upload(kb.data());
  dsum.upload(sum0.data());
  dcnt.upload(cnt0.data());
  llmk_kv_score_args g = a;
  g.q = dq.addr();
  g.k = dk.addr();
  g.scores = ds.addr();
  g.attn_sum = dsum.addr();
  g.attn_count = dcnt.addr();
  for (int i = 0; i < calls; ++i) {
    const int32_t rc = llmk_kv_score_cuda(&g);
    report(rc, name + " cuda");
    EXPECT(rc == LLMK_OK);
  }
  std::vector<float> s_gpu(total), sum_gpu(total), cnt_gpu(total);
  ds.download(s_gpu.data());
  const double tol = (scorer == LLMK_KV_RECENCY || scorer == LLMK_KV_LADDER) ? 0.0 : 2e-5;
  EXPECT(close("scores", name, s_gpu, s_cpu, tol));
  if (scorer == LLMK_KV_OBSERVED) {
    dsum.download(sum_gpu.data());
    dcnt.download(cnt_gpu.data());
    EXPECT(close("attn_sum", name, sum_gpu, sum_cpu, 2e-5));
    EXPECT(close("attn_count", name, cnt_gpu, cnt_cpu, 0.0));
  }
}

void test_score() {
  for (int64_t n : kSizes) {
    for (int64_t dtype : {LLMK_F32, LLMK_BF16}) {
      score_case(LLMK_KV_KNORM, dtype, n, 64, 1, 0, 1);
      const int64_t q_len = std::min<int64_t>(n, 32);
      score_case(LLMK_KV_SNAPKV, dtype, n, 64, q_len, LLMK_KV_POOL_AVG, 5);
      score_case(LLMK_KV_OBSERVED, dtype, n, 64, q_len, 0, 1);
    }
    score_case(LLMK_KV_RECENCY, LLMK_F32, n, 64, 1, 0, 1);
    score_case(LLMK_KV_LADDER, LLMK_F32, n, 64, 1, 0, 1);
    score_case(LLMK_KV_SNAPKV, LLMK_F16, n, 37, 1, LLMK_KV_POOL_NONE, 1);  // TOVA, odd d
    score_case(LLMK_KV_SNAPKV, LLMK_F32, n, 128, std::min<int64_t>(n, 19), LLMK_KV_POOL_MAX, 7);
    score_case(LLMK_KV_OBSERVED, LLMK_F16, n, 37, n < 200 ? n : 200, 0, 1);  // many query rows
  }
}

/* ---- selection ---- */

llmk_kv_select_args select_args(int64_t B, int64_t H, int64_t n, int64_t sinks, int64_t recent, int64_t max_keep) {
  llmk_kv_select_args a;
  std::memset(&a, 0, sizeof a);
  a.struct_bytes = sizeof a;
  a.batch = B;
  a.heads = H;
  a.n = n;
  a.sinks = sinks;
  a.recent = recent;
  a.max_keep = max_keep;
  return a;
}

/* Runs the CUDA selection; kept starts filled with 7777 (to see what was written). The call's
 * error message is saved in *error before the download (a later successful call clears it). */
int32_t select_cuda(llmk_kv_select_args a, const std::vector<float>& scores, const std::vector<int32_t>& budgets,
                    std::vector<int32_t>* kept, std::string* error) {
  DevBuf ds(bytes_of(scores)), db(bytes_of(budgets)), dk(bytes_of(*kept));
  ds.upload(scores.data());
  db.upload(budgets.data());
  std::fill(kept->begin(), kept->end(), 7777);
  dk.upload(kept->data());
  a.scores = ds.addr();
  a.budgets = db.addr();
  a.kept = dk.addr();
  const int32_t rc = llmk_kv_select_cuda(&a);
  *error = rc == LLMK_OK ? std::string() : std::string(llmk_last_error());
  dk.download(kept->data());
  return rc;
}

void test_select() {
  const int64_t B = 2, H = 3, sinks = 4, recent = 8;
  for (int64_t n : kSizes) {
    for (int ties = 0; ties < 2; ++ties) {
      const std::string name = "select n" + std::to_string(n) + (ties ? " ties" : "");
      std::vector<float> scores = randn(static_cast<size_t>(B * H * n));
      for (size_t i = 0; i < scores.size(); ++i) {
        if (ties) scores[i] = std::round(scores[i] * 2.0f) / 2.0f;  // a handful of values, long runs
        if (i % 11 == 0) scores[i] = (i % 22 == 0) ? -0.0f : 0.0f;
        if (i % 97 == 5) scores[i] = i % 2 ? INFINITY : -INFINITY;
      }
      const int64_t lo = llmk::kv_forced_count(n, sinks, recent);
      const int64_t max_keep = n / 2 + 5;
      const int64_t hi = std::min(n, max_keep);
      std::vector<int32_t> budgets(static_cast<size_t>(B * H));
      for (size_t h = 0; h < budgets.size(); ++h) {
        budgets[h] = static_cast<int32_t>(h == 0 ? lo : h == 1 ? hi : lo + (hi - lo) * static_cast<int64_t>(h) / 7);
      }
      llmk_kv_select_args a = select_args(B, H, n, sinks, recent, max_keep);
      std::vector<int32_t> cpu(static_cast<size_t>(B * H * max_keep)), gpu(cpu.size());
      llmk_kv_select_args c = a;
      c.scores = reinterpret_cast<int64_t>(scores.data());
      c.budgets = reinterpret_cast<int64_t>(budgets.data());
      c.kept = reinterpret_cast<int64_t>(cpu.data());
      int32_t rc = llmk_kv_select_cpu(&c);
      report(rc, name + " cpu");
      EXPECT(rc == LLMK_OK);
      std::string err;
      rc = select_cuda(a, scores, budgets, &gpu, &err);
      if (rc != LLMK_OK) std::fprintf(stderr, "[%s cuda] rc %d: %s\n", name.c_str(), rc, err.c_str());
      EXPECT(rc == LLMK_OK);
      EXPECT(gpu == cpu);
      if (gpu != cpu) std::fprintf(stderr, "[%s] kept differs\n", name.c_str());
      // A budget below the forced count, and one above max_keep: rejected, nothing written.
      for (int32_t bad : {static_cast<int32_t>(lo - 1), static_cast<int32_t>(hi + 1)}) {
        if (bad < 0) continue;
        std::vector<int32_t> bb = budgets;
        bb.back() = bad;
        rc = select_cuda(a, scores, bb, &gpu, &err);
        EXPECT(rc == LLMK_ERR_OUT_OF_RANGE);
        EXPECT(err.find("budgets[1, 2]") != std::string::npos);
        EXPECT(std::all_of(gpu.begin(), gpu.end(), [](int32_t x) { return x == 7777; }));
      }
      std::vector<float> nan_scores = scores;
      nan_scores[nan_scores.size() - 1] = NAN;
      rc = select_cuda(a, nan_scores, budgets, &gpu, &err);
      EXPECT(rc == LLMK_ERR_INVALID_ARGUMENT);
      EXPECT(err.find("is NaN") != std::string::npos);
      EXPECT(std::all_of(gpu.begin(), gpu.end(), [](int32_t x) { return x == 7777; }));
    }
  }
}

/* ---- moving rows ---- */

std::vector<unsigned char> random_bytes(size_t n) {
  std::vector<unsigned char> v(n);
  for (auto& x : v) x = static_cast<unsigned char>(rng());
  return v;
}

/* kept rows: ascending random subsets of [0, N) of random sizes <= max_keep, -1 padded. */
void random_kept(int64_t heads, int64_t N, int64_t max_keep, std::vector<int32_t>* kept, std::vector<int32_t>* counts) {
  kept->assign(static_cast<size_t>(heads * max_keep), -1);
  counts->assign(static_cast<size_t>(heads), 0);
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t limit = std::min(N, max_keep);
    const int64_t c = h == 0 ? 0 : h == 1 ? limit : static_cast<int64_t>(rng() % (limit + 1));
    std::vector<int32_t> all(static_cast<size_t>(N));
    for (int64_t j = 0; j < N; ++j) all[j] = static_cast<int32_t>(j);
    std::shuffle(all.begin(), all.end(), rng);
    std::sort(all.begin(), all.begin() + c);
    std::copy(all.begin(), all.begin() + c, kept->begin() + h * max_keep);
    (*counts)[h] = static_cast<int32_t>(c);
  }
}

void test_gather_varlen() {
  const int64_t B = 2, H = 3, heads = B * H;
  for (int64_t N : kSizes) {
    for (int64_t row_bytes : {4, 6, 256}) {
      const std::string name = "varlen N" + std::to_string(N) + " row" + std::to_string(row_bytes);
      const int64_t max_keep = N / 2 + 3;
      std::vector<int32_t> kept, counts;
      random_kept(heads, N, max_keep, &kept, &counts);
      std::vector<int64_t> cu(static_cast<size_t>(heads + 1), 0);
      for (int64_t h = 0; h < heads; ++h) cu[h + 1] = cu[h] + counts[h];
      const auto src = random_bytes(static_cast<size_t>(heads * N * row_bytes));
      std::vector<unsigned char> cpu(static_cast<size_t>(cu[heads] * row_bytes) + 1), gpu(cpu.size());
      int32_t rc = llmk_kv_gather_varlen_cpu(src.data(), kept.data(), cu.data(), cpu.data(), B, H, N, max_keep, row_bytes);
      report(rc, name + " cpu");
      EXPECT(rc == LLMK_OK);
      DevBuf dsrc(bytes_of(src)), dkept(bytes_of(kept)), dcu(bytes_of(cu)), ddst(bytes_of(gpu));
      dsrc.upload(src.data());
      dkept.upload(kept.data());
      dcu.upload(cu.data());
      std::vector<unsigned char> fill(gpu.size(), 0xab);
      ddst.upload(fill.data());
      const auto run = [&]() {
        return llmk_kv_gather_varlen_cuda(kDevice, dsrc.p, static_cast<const int32_t*>(dkept.p),
                                          static_cast<const int64_t*>(dcu.p), ddst.p, B, H, N, max_keep, row_bytes, nullptr);
      };
      rc = run();
      report(rc, name + " cuda");
      EXPECT(rc == LLMK_OK);
      ddst.download(gpu.data());
      EXPECT(std::equal(gpu.begin(), gpu.end() - 1, cpu.begin()));
      EXPECT(gpu.back() == 0xab);
      // A bad index in the last head's used part, then a bad cu: rejected, dst untouched.
      ddst.upload(fill.data());
      std::vector<int32_t> bad = kept;
      bad[(heads - 1) * max_keep + std::max(counts[heads - 1] - 1, 0)] = static_cast<int32_t>(N);
      dkept.upload(bad.data());
      rc = run();
      EXPECT(counts[heads - 1] == 0 || rc == LLMK_ERR_OUT_OF_RANGE);
      dkept.upload(kept.data());
      // (With the last head empty the bad index is unused: that run succeeds and writes dst.)
      ddst.upload(fill.data());
      std::vector<int64_t> bad_cu = cu;
      bad_cu[heads] = bad_cu[heads - 1] + max_keep + 1;
      dcu.upload(bad_cu.data());
      rc = run();
      EXPECT(rc == LLMK_ERR_OUT_OF_RANGE);
      EXPECT(std::strstr(llmk_last_error(), "cu[") != nullptr);
      ddst.download(gpu.data());
      EXPECT(std::all_of(gpu.begin(), gpu.end(), [](unsigned char x) { return x == 0xab; }));
    }
  }
}

void test_compact_inplace() {
  const int64_t B = 2, H = 3, heads = B * H;
  for (int64_t cap : kSizes) {
    for (int64_t row_bytes : {4, 6, 256}) {
      const std::string name = "inplace cap" + std::to_string(cap) + " row" + std::to_string(row_bytes);
      const int64_t max_keep = cap - cap / 3;
      std::vector<int32_t> kept, counts;
      random_kept(heads, cap, max_keep, &kept, &counts);
      const auto cache = random_bytes(static_cast<size_t>(heads * cap * row_bytes));
      std::vector<unsigned char> cpu = cache, gpu(cache.size());
      int32_t rc = llmk_kv_compact_inplace_cpu(cpu.data(), kept.data(), counts.data(), B, H, cap, max_keep, row_bytes);
      report(rc, name + " cpu");
      EXPECT(rc == LLMK_OK);
      DevBuf dc(bytes_of(cache)), dkept(bytes_of(kept)), dcnt(bytes_of(counts));
      dc.upload(cache.data());
      dkept.upload(kept.data());
      dcnt.upload(counts.data());
      const auto run = [&]() {
        return llmk_kv_compact_inplace_cuda(kDevice, dc.p, static_cast<const int32_t*>(dkept.p),
                                            static_cast<const int32_t*>(dcnt.p), B, H, cap, max_keep, row_bytes, nullptr);
      };
      rc = run();
      report(rc, name + " cuda");
      EXPECT(rc == LLMK_OK);
      dc.download(gpu.data());
      EXPECT(gpu == cpu);
      // Unsorted slots, then a count above max_keep: rejected, cache untouched.
      dc.upload(cache.data());
      if (counts[1] >= 2) {
        std::vector<int32_t> bad = kept;
        std::swap(bad[max_keep], bad[max_keep + 1]);
        dkept.upload(bad.data());
        rc = run();
        EXPECT(rc == LLMK_ERR_OUT_OF_RANGE);
        EXPECT(std::strstr(llmk_last_error(), "kept[0, 1, 1]") != nullptr);
        dkept.upload(kept.data());
      }
      std::vector<int32_t> bad_counts = counts;
      bad_counts.back() = static_cast<int32_t>(max_keep + 1);
      dcnt.upload(bad_counts.data());
      rc = run();
      EXPECT(rc == LLMK_ERR_OUT_OF_RANGE);
      dc.download(gpu.data());
      EXPECT(gpu == cache);
    }
  }
}

/* ---- decode attention ---- */

void decode_case(int64_t dtype, int64_t out_dtype, int64_t d, int64_t Hq, int64_t Hkv) {
  const int64_t B = 2, heads = B * Hkv, rows = B * Hq;
  const std::string name = "decode t" + std::to_string(dtype) + " o" + std::to_string(out_dtype) + " d" +
                           std::to_string(d) + " g" + std::to_string(Hq / Hkv);
  std::vector<int64_t> cu(static_cast<size_t>(heads + 1), 0);
  for (int64_t h = 0; h < heads; ++h) cu[h + 1] = cu[h] + kSizes[h % 4] - (h == 1 ? 97 : 0);  // head 1 empty
  const int64_t total = cu[heads];
  const auto q = encode(randn(static_cast<size_t>(rows * d)), dtype);
  const auto k = encode(randn(static_cast<size_t>(total * d)), dtype);
  const auto v = encode(randn(static_cast<size_t>(total * d)), dtype);
  llmk_kv_decode_args a;
  std::memset(&a, 0, sizeof a);
  a.struct_bytes = sizeof a;
  a.batch = B;
  a.heads_q = Hq;
  a.heads_kv = Hkv;
  a.head_dim = d;
  a.dtype = dtype;
  a.out_dtype = out_dtype;
  a.scale = 1.0 / std::sqrt(static_cast<double>(d));
  const int64_t ob = elem_bytes(out_dtype);
  std::vector<unsigned char> out_cpu(static_cast<size_t>(rows * d * ob)), out_gpu(out_cpu.size());
  std::vector<float> lse_cpu(static_cast<size_t>(rows)), lse_gpu(lse_cpu.size());
  llmk_kv_decode_args c = a;
  c.q = reinterpret_cast<int64_t>(q.data());
  c.k = reinterpret_cast<int64_t>(k.data());
  c.v = reinterpret_cast<int64_t>(v.data());
  c.cu = reinterpret_cast<int64_t>(cu.data());
  c.out = reinterpret_cast<int64_t>(out_cpu.data());
  c.lse = reinterpret_cast<int64_t>(lse_cpu.data());
  int32_t rc = llmk_kv_decode_attn_cpu(&c);
  report(rc, name + " cpu");
  EXPECT(rc == LLMK_OK);
  DevBuf dq(bytes_of(q)), dk(bytes_of(k)), dv(bytes_of(v)), dcu(bytes_of(cu)), dout(bytes_of(out_gpu)),
      dlse(bytes_of(lse_gpu));
  dq.upload(q.data());
  dk.upload(k.data());
  dv.upload(v.data());
  dcu.upload(cu.data());
  llmk_kv_decode_args g = a;
  g.q = dq.addr();
  g.k = dk.addr();
  g.v = dv.addr();
  g.cu = dcu.addr();
  g.out = dout.addr();
  g.lse = dlse.addr();
  rc = llmk_kv_decode_attn_cuda(&g);
  report(rc, name + " cuda");
  EXPECT(rc == LLMK_OK);
  dout.download(out_gpu.data());
  dlse.download(lse_gpu.data());
  const double tol = out_dtype == LLMK_F32 ? 1e-5 : out_dtype == LLMK_F16 ? 2e-3 : 1e-2;
  EXPECT(close("out", name, decode(out_gpu, out_dtype), decode(out_cpu, out_dtype), tol));
  EXPECT(close("lse", name, lse_gpu, lse_cpu, 1e-5));
  // Decreasing cu: rejected, out untouched.
  std::vector<unsigned char> fill(out_gpu.size(), 0xcd);
  dout.upload(fill.data());
  std::vector<int64_t> bad = cu;
  bad[2] = bad[1] - 1;
  dcu.upload(bad.data());
  rc = llmk_kv_decode_attn_cuda(&g);
  EXPECT(rc == LLMK_ERR_OUT_OF_RANGE);
  dout.download(out_gpu.data());
  EXPECT(out_gpu == fill);
}

void test_decode() {
  for (int64_t dtype : {LLMK_F32, LLMK_F16, LLMK_BF16}) {
    decode_case(dtype, dtype, 128, 8, 2);
    decode_case(dtype, LLMK_F32, 37, 4, 4);
  }
  decode_case(LLMK_BF16, LLMK_BF16, 64, 20, 2);  // group of 10: two query-head chunks
}

}  // namespace

int main() {
  if (!cuda_device_present()) return 0;
  test_score();
  test_select();
  test_gather_varlen();
  test_compact_inplace();
  test_decode();
  if (failures != 0) {
    std::fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  std::printf("OK\n");
  return 0;
}
