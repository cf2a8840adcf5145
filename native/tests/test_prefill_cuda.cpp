// CUDA prefill estimators vs the CPU entry points: scores within a tolerance (both fp32, different
// summation orders), selections, head_counts and divergences bit for bit from the same F32 scores
// (the CPU's scores, and crafted arrays with ties, NaN, -0 and -inf), and the layout selection
// filter giving the CPU's layout. SKIPs without a GPU.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.h"

namespace {

struct Shape {
  int64_t B, Hq, Hkv, Sq, Sk, d, block, last_q, stride;
};

llmk_prefill_args base_args(const Shape& s, int64_t method, int64_t dtype) {
  llmk_prefill_args a;
  std::memset(&a, 0, sizeof a);
  a.struct_bytes = sizeof a;
  a.method = method;
  a.batch = s.B; a.heads_q = s.Hq; a.heads_kv = s.Hkv; a.seq_q = s.Sq; a.seq_k = s.Sk; a.head_dim = s.d;
  a.dtype = dtype;
  a.scale = 1.0 / std::sqrt(static_cast<double>(s.d));
  a.block_q = a.block_k = s.block;
  a.last_q = s.last_q;
  a.vertical_size = std::min<int64_t>(40, s.Sk);
  a.slash_size = std::min<int64_t>(24, s.Sk);
  a.forced_columns = 4;
  a.forced_slashes = 3;
  a.top_k = 3;
  a.flags = LLMK_PREFILL_FORCE_DIAGONAL;
  a.gamma = 0.9;
  a.tau = 0.3;
  a.min_budget_blocks = 1;
  a.max_budget_blocks = (s.Sk + s.block - 1) / s.block;
  a.stride = s.stride;
  a.threshold = 0.9;
  a.device = kDevice;
  return a;
}

struct Outputs {
  std::vector<uint8_t> sel;
  std::vector<int64_t> counts;
  std::vector<float> div;
};

Outputs select_cpu(llmk_prefill_args a, std::vector<float>& scores, int64_t tiles) {
  const int64_t heads = a.batch * a.heads_q;
  Outputs o{std::vector<uint8_t>(heads * tiles, 5), std::vector<int64_t>(heads * 5, -1), std::vector<float>(heads, 2.0f)};
  a.scores = reinterpret_cast<int64_t>(scores.data());
  a.selection = reinterpret_cast<int64_t>(o.sel.data());
  a.head_counts = reinterpret_cast<int64_t>(o.counts.data());
  a.head_divergence = reinterpret_cast<int64_t>(o.div.data());
  EXPECT(llmk_prefill_select_cpu(&a) == LLMK_OK);
  return o;
}

Outputs select_cuda(llmk_prefill_args a, const std::vector<float>& scores, int64_t tiles) {
  const int64_t heads = a.batch * a.heads_q;
  Outputs o{std::vector<uint8_t>(heads * tiles, 6), std::vector<int64_t>(heads * 5, -2), std::vector<float>(heads, 3.0f)};
  DevBuf ds(bytes_of(scores)), dsel(bytes_of(o.sel)), dc(bytes_of(o.counts)), dd(bytes_of(o.div));
  ds.upload(scores.data());
  a.scores = ds.addr();
  a.selection = dsel.addr();
  a.head_counts = dc.addr();
  a.head_divergence = dd.addr();
  const int32_t rc = llmk_prefill_select_cuda(&a);
  EXPECT(rc == LLMK_OK);
  if (rc != LLMK_OK) std::fprintf(stderr, "select_cuda: %s\n", llmk_last_error());
  EXPECT(llmk_cuda_stream_synchronize(kDevice, nullptr) == LLMK_OK);
  dsel.download(o.sel.data());
  dc.download(o.counts.data());
  dd.download(o.div.data());
  return o;
}

void expect_same(const Outputs& c, const Outputs& g, const std::string& name) {
  const bool sel = c.sel == g.sel, counts = c.counts == g.counts;
  const bool div = std::memcmp(c.div.data(), g.div.data(), c.div.size() * sizeof(float)) == 0;
  EXPECT(sel);
  EXPECT(counts);
  EXPECT(div);
  if (!sel || !counts || !div) std::fprintf(stderr, "[%s] selection %d counts %d divergence %d\n", name.c_str(), sel, counts, div);
}

void test_method(const Shape& s, int64_t method, int64_t dtype, uint32_t seed) {
  const std::string name = "method " + std::to_string(method) + " dtype " + std::to_string(dtype) + " Sq " +
                           std::to_string(s.Sq) + " Sk " + std::to_string(s.Sk);
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> q(s.B * s.Hq * s.Sq * s.d), k(s.B * s.Hkv * s.Sk * s.d);
  for (float& x : q) x = nd(rng) * 1.5f;
  for (float& x : k) x = nd(rng);
  const auto qe = encode(q, dtype), ke = encode(k, dtype);
  llmk_prefill_args a = base_args(s, method, dtype);
  int64_t per_head = 0;
  EXPECT(llmk_prefill_scores_size(&a, &per_head) == LLMK_OK);
  const int64_t heads = s.B * s.Hq;
  std::vector<float> cpu(heads * per_head), gpu(heads * per_head, 7.0f);
  a.q = reinterpret_cast<int64_t>(qe.data());
  a.k = reinterpret_cast<int64_t>(ke.data());
  a.scores = reinterpret_cast<int64_t>(cpu.data());
  EXPECT(llmk_prefill_score_cpu(&a) == LLMK_OK);
  {
    DevBuf dq(static_cast<int64_t>(qe.size())), dk(static_cast<int64_t>(ke.size())), dsc(bytes_of(gpu));
    dq.upload(qe.data());
    dk.upload(ke.data());
    llmk_prefill_args g = a;
    g.q = dq.addr();
    g.k = dk.addr();
    g.scores = dsc.addr();
    const int32_t rc = llmk_prefill_score_cuda(&g);
    EXPECT(rc == LLMK_OK);
    if (rc != LLMK_OK) std::fprintf(stderr, "[%s] score_cuda: %s\n", name.c_str(), llmk_last_error());
    EXPECT(llmk_cuda_stream_synchronize(kDevice, nullptr) == LLMK_OK);
    dsc.download(gpu.data());
  }
  EXPECT(close("scores", name, gpu, cpu, 1e-4));
  const int64_t tiles = ((s.Sq + s.block - 1) / s.block) * ((s.Sk + s.block - 1) / s.block);
  expect_same(select_cpu(a, cpu, tiles), select_cuda(a, cpu, tiles), name + " (CPU scores)");
  /* crafted scores: few distinct values (ties), NaN, -0, -inf */
  const float vals[] = {0.0f, -0.0f, 0.25f, 0.25f, 1.0f, std::nanf(""), -INFINITY, 0.125f};
  std::uniform_int_distribution<int> pick(0, 7);
  std::vector<float> crafted(cpu.size());
  for (float& x : crafted) x = vals[pick(rng)];
  expect_same(select_cpu(a, crafted, tiles), select_cuda(a, crafted, tiles), name + " (crafted)");
}

void test_layout_selection() {
  const int64_t sq = 100, sk = 160, bq = 16, bk = 32, heads = 3;
  const int64_t nqb = (sq + bq - 1) / bq, nkb = (sk + bk - 1) / bk, rows = heads * nqb;
  llmk_mask_node causal;
  std::memset(&causal, 0, sizeof causal);
  causal.op = LLMK_MASK_CAUSAL;
  causal.i1 = 1;
  std::mt19937 rng(9);
  std::vector<uint8_t> sel(rows * nkb);
  for (auto& x : sel) x = static_cast<uint8_t>(rng() % 3 == 0 ? 0 : rng() % 5 + 1);
  llmk_layout_args a;
  std::memset(&a, 0, sizeof a);
  a.struct_bytes = sizeof a;
  a.batch = 1; a.layout_batch = 1; a.layout_heads = heads;
  a.seq_q = sq; a.seq_k = sk; a.block_q = bq; a.block_k = bk;
  a.nodes = reinterpret_cast<int64_t>(&causal);
  a.node_count = 1;
  a.device = kDevice;
  std::vector<int64_t> pp(rows + 1), fp(rows + 1);
  a.partial_ptr = reinterpret_cast<int64_t>(pp.data());
  a.full_ptr = reinterpret_cast<int64_t>(fp.data());
  a.selection = reinterpret_cast<int64_t>(sel.data());
  EXPECT(llmk_layout_count_cpu(&a) == LLMK_OK);
  std::vector<int32_t> pi(pp[rows] + 1), fi(fp[rows] + 1);
  a.partial_idx = reinterpret_cast<int64_t>(pi.data());
  a.full_idx = reinterpret_cast<int64_t>(fi.data());
  EXPECT(llmk_layout_fill_cpu(&a) == LLMK_OK);
  DevBuf dsel(bytes_of(sel)), dpp(bytes_of(pp)), dfp(bytes_of(fp)), dpi(bytes_of(pi)), dfi(bytes_of(fi));
  dsel.upload(sel.data());
  llmk_layout_args g = a;
  g.selection = dsel.addr();
  g.partial_ptr = dpp.addr();
  g.full_ptr = dfp.addr();
  g.partial_idx = dpi.addr();
  g.full_idx = dfi.addr();
  EXPECT(llmk_layout_count_cuda(&g) == LLMK_OK);
  EXPECT(llmk_layout_fill_cuda(&g) == LLMK_OK);
  EXPECT(llmk_cuda_stream_synchronize(kDevice, nullptr) == LLMK_OK);
  std::vector<int64_t> gpp(pp.size()), gfp(fp.size());
  std::vector<int32_t> gpi(pi.size()), gfi(fi.size());
  dpp.download(gpp.data());
  dfp.download(gfp.data());
  EXPECT(gpp == pp && gfp == fp);
  dpi.download(gpi.data());
  dfi.download(gfi.data());
  for (int64_t i = 0; i < pp[rows]; ++i) EXPECT(gpi[i] == pi[i]);
  for (int64_t i = 0; i < fp[rows]; ++i) EXPECT(gfi[i] == fi[i]);
}

/* A head_dim the CUDA scorer cannot stage (its query rows live in shared memory) is rejected with
 * a message before any device work, so this runs on machines without a GPU too; a build without
 * CUDA answers "unavailable" instead. (8193 once looped forever: 0 rows per staging step.) */
void test_unstageable_head_dim() {
  const Shape s{1, 1, 1, 64, 64, 8193, 16, 16, 4};
  std::vector<float> q(s.Sq * s.d), k(s.Sk * s.d), scores(2 * s.Sk);
  llmk_prefill_args a = base_args(s, LLMK_PREFILL_VERTICAL_SLASH, LLMK_F32);
  a.q = reinterpret_cast<int64_t>(q.data());
  a.k = reinterpret_cast<int64_t>(k.data());
  a.scores = reinterpret_cast<int64_t>(scores.data());
  const int32_t rc = llmk_prefill_score_cuda(&a);
  const bool rejected = rc == LLMK_ERR_INVALID_ARGUMENT && std::strstr(llmk_last_error(), "head_dim") != nullptr;
  EXPECT(rejected || rc == LLMK_ERR_UNAVAILABLE);
  if (!rejected && rc != LLMK_ERR_UNAVAILABLE) std::fprintf(stderr, "  head_dim 8193: rc %d, %s\n", rc, llmk_last_error());
}

}  // namespace

int main() {
  test_unstageable_head_dim();
  if (!cuda_device_present()) return failures ? 1 : 0;
  // the last shape: more than 256 reshaped key columns (XAttention's second pass tiles them by
  // 256) and key blocks of 3 reshaped columns that straddle those tiles
  const Shape shapes[] = {{1, 2, 2, 97, 97, 16, 16, 16, 4}, {2, 4, 2, 201, 257, 24, 32, 20, 8},
                          {1, 3, 1, 257, 257, 40, 64, 64, 16}, {1, 2, 1, 2100, 2100, 32, 24, 24, 8}};
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    for (int64_t method = LLMK_PREFILL_VERTICAL_SLASH; method <= LLMK_PREFILL_XATTN; ++method) {
      for (int64_t dtype : {int64_t{LLMK_F32}, int64_t{LLMK_F16}, int64_t{LLMK_BF16}}) test_method(s, method, dtype, seed++);
    }
  }
  test_layout_selection();
  if (failures) {
    std::printf("FAILED: %d expectation(s)\n", failures);
    return 1;
  }
  std::printf("prefill CUDA tests passed\n");
  return 0;
}
