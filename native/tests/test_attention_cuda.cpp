// CUDA block-sparse attention against the CPU kernels (the reference): layouts (count + fill must
// match exactly, for every mask leaf kind, with lengths and mask data on the device), the forward
// pass (BF16 / F16 on the tensor-core path with d = 64 and 128, the general path for F32, an odd
// d and blocks that are not multiples of 64; GQA, ragged 97 / 113 sequences, causal + window +
// sinks, softcap, fully masked rows; token key columns beside a tile selection on both paths,
// with entries the kernels must skip), the state merge (also in place), and a 128K x 128K causal
// layout checked against its closed form. Without a CUDA device (or a library built without
// CUDA) it prints "SKIP: <reason>" and passes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "llmk/half_bits.h"
#include "llmk/llmk.h"

#include "cuda_test_util.h"
#include "expect.h"

namespace {


llmk_mask_node leaf(int64_t op, int64_t i0 = 0, int64_t i1 = 0, int64_t i2 = 0, int64_t i3 = 0, int64_t i4 = 0,
                    int64_t i5 = 0) {
  llmk_mask_node n;
  std::memset(&n, 0, sizeof n);
  n.op = op;
  n.i0 = i0;
  n.i1 = i1;
  n.i2 = i2;
  n.i3 = i3;
  n.i4 = i4;
  n.i5 = i5;
  return n;
}

/* Mask data arrays, kept on the host and mirrored on the device; nodes point at one or the other. */
struct MaskData {
  std::vector<std::vector<unsigned char>> host;
  std::vector<DevBuf*> dev;
  ~MaskData() {
    for (DevBuf* d : dev) delete d;
  }
  /* Registers an array; returns its index (data0/data1 of the nodes hold index + 1 until bound). */
  int64_t add(const void* p, int64_t bytes) {
    host.emplace_back(static_cast<const unsigned char*>(p), static_cast<const unsigned char*>(p) + bytes);
    DevBuf* d = new DevBuf(bytes);
    d->upload(host.back().data());
    dev.push_back(d);
    return static_cast<int64_t>(host.size());
  }
  /* Nodes with data0/data1 (array index + 1, 0 = none) replaced by host or device addresses. */
  std::vector<llmk_mask_node> bind(const std::vector<llmk_mask_node>& nodes, bool device) const {
    std::vector<llmk_mask_node> out = nodes;
    for (llmk_mask_node& n : out) {
      if (n.op >= LLMK_MASK_AND) continue;
      if (n.data0 != 0) n.data0 = device ? dev[n.data0 - 1]->addr() : reinterpret_cast<int64_t>(host[n.data0 - 1].data());
      if (n.data1 != 0) n.data1 = device ? dev[n.data1 - 1]->addr() : reinterpret_cast<int64_t>(host[n.data1 - 1].data());
    }
    return out;
  }
};

struct Problem {
  std::string name;
  int64_t B = 1, Hq = 1, Hkv = 1, Sq = 97, Sk = 113, d = 64, block_q = 64, block_k = 64;
  bool per_head = false;  // layout_heads = Hq
  std::vector<llmk_mask_node> nodes;  // data0/data1: MaskData indices + 1
  std::vector<int32_t> q_lens, k_lens;
  double softcap = 0.0;
  std::vector<llmk_mask_node> layout_nodes;  // the layout's mask when not `nodes` (a tile selection)
  int64_t col_cap = 0;
  std::vector<int32_t> columns;      // [layout (b, h) rows, col_cap] key columns, or empty
  std::vector<int32_t> gpu_columns;  // what the CUDA call gets when not `columns` (entries to skip)
  bool nan_kv_padding = false;  // K and V rows at and past k_lens[b] hold NaN / +Inf (an uninitialised cache)
};

struct HostLayout {
  std::vector<int64_t> pp, fp;
  std::vector<int32_t> pi, fi;
  int64_t layout_batch = 1, layout_heads = 1;
  bool ok = false;  // count and fill succeeded (else the arrays are not a layout)
};

const std::vector<llmk_mask_node>& layout_mask(const Problem& c) {
  return c.layout_nodes.empty() ? c.nodes : c.layout_nodes;
}

/* Whether a mask node reads per-batch data (a batch stride), as the argument checks judge it. */
bool node_varies_by_batch(const llmk_mask_node& n) {
  switch (n.op) {
    case LLMK_MASK_PREFIX: return n.batch_stride != 0;
    case LLMK_MASK_DOCUMENT: return n.i2 != 0 || n.i3 != 0;
    case LLMK_MASK_BLOCKS: return n.batch_stride != 0;
    case LLMK_MASK_VERTICAL_SLASH: return n.batch_stride != 0 || n.i4 != 0;
    default: return false;
  }
}

/* The layout's batch dimension: B when lengths are given or the layout's or the forward's mask has
 * per-batch data (either makes the layout differ per batch), else 1 (broadcast). The one place
 * that decides it: the layouts, the forward calls and the column rows all follow it. */
int64_t layout_batch_of(const Problem& c) {
  if (!c.q_lens.empty() || !c.k_lens.empty()) return c.B;
  for (const auto* nodes : {&c.nodes, &c.layout_nodes})
    for (const llmk_mask_node& n : *nodes)
      if (node_varies_by_batch(n)) return c.B;
  return 1;
}

llmk_layout_args base_layout_args(const Problem& c, const std::vector<llmk_mask_node>& nodes) {
  llmk_layout_args a;
  std::memset(&a, 0, sizeof a);
  a.struct_bytes = sizeof a;
  a.batch = c.B;
  a.layout_batch = layout_batch_of(c);
  a.layout_heads = c.per_head ? c.Hq : 1;
  a.seq_q = c.Sq;
  a.seq_k = c.Sk;
  a.block_q = c.block_q;
  a.block_k = c.block_k;
  a.nodes = reinterpret_cast<int64_t>(nodes.data());
  a.node_count = static_cast<int64_t>(nodes.size());
  return a;
}

int64_t layout_rows(const llmk_layout_args& a) {
  return a.layout_batch * a.layout_heads * ((a.seq_q + a.block_q - 1) / a.block_q);
}

HostLayout cpu_layout(const Problem& c, const MaskData& md) {
  const std::vector<llmk_mask_node> nodes = md.bind(layout_mask(c), false);
  llmk_layout_args a = base_layout_args(c, nodes);
  a.q_lens = c.q_lens.empty() ? 0 : reinterpret_cast<int64_t>(c.q_lens.data());
  a.k_lens = c.k_lens.empty() ? 0 : reinterpret_cast<int64_t>(c.k_lens.data());
  HostLayout l;
  l.layout_batch = a.layout_batch;
  l.layout_heads = a.layout_heads;
  const int64_t rows = layout_rows(a);
  l.pp.assign(rows + 1, -7);
  l.fp.assign(rows + 1, -7);
  a.partial_ptr = reinterpret_cast<int64_t>(l.pp.data());
  a.full_ptr = reinterpret_cast<int64_t>(l.fp.data());
  int32_t rc = llmk_layout_count_cpu(&a);
  EXPECT(rc == LLMK_OK);
  if (rc != LLMK_OK) {  // the ptr arrays still hold the poison: sizing from them would abort
    std::fprintf(stderr, "[%s] cpu layout count: %s\n", c.name.c_str(), llmk_last_error());
    return l;
  }
  l.pi.assign(l.pp.back() + 1, -1);
  l.fi.assign(l.fp.back() + 1, -1);
  a.partial_idx = reinterpret_cast<int64_t>(l.pi.data());
  a.full_idx = reinterpret_cast<int64_t>(l.fi.data());
  rc = llmk_layout_fill_cpu(&a);
  EXPECT(rc == LLMK_OK);
  if (rc != LLMK_OK) std::fprintf(stderr, "[%s] cpu layout fill: %s\n", c.name.c_str(), llmk_last_error());
  l.ok = rc == LLMK_OK;
  return l;
}

/* The same layout built on the device; device arrays are returned for the forward pass. */
struct DevLayout {
  DevBuf *pp = nullptr, *fp = nullptr, *pi = nullptr, *fi = nullptr;
  ~DevLayout() {
    delete pp;
    delete fp;
    delete pi;
    delete fi;
  }
};

void cuda_layout(const Problem& c, const MaskData& md, const DevBuf* q_lens, const DevBuf* k_lens, DevLayout& dl,
                 HostLayout& out) {
  const std::vector<llmk_mask_node> nodes = md.bind(layout_mask(c), true);
  llmk_layout_args a = base_layout_args(c, nodes);
  a.q_lens = q_lens ? q_lens->addr() : 0;
  a.k_lens = k_lens ? k_lens->addr() : 0;
  a.device = kDevice;
  const int64_t rows = layout_rows(a);
  dl.pp = new DevBuf((rows + 1) * 8);
  dl.fp = new DevBuf((rows + 1) * 8);
  std::vector<int64_t> poison(rows + 1, -7);
  dl.pp->upload(poison.data());
  dl.fp->upload(poison.data());
  a.partial_ptr = dl.pp->addr();
  a.full_ptr = dl.fp->addr();
  int32_t rc = llmk_layout_count_cuda(&a);
  EXPECT(rc == LLMK_OK);
  out.layout_batch = a.layout_batch;
  out.layout_heads = a.layout_heads;
  out.ok = false;
  if (rc != LLMK_OK) {  // the ptr arrays still hold the poison: sizing from them would abort
    std::fprintf(stderr, "[%s] layout count: %s\n", c.name.c_str(), llmk_last_error());
    return;
  }
  out.pp.assign(rows + 1, 0);
  out.fp.assign(rows + 1, 0);
  dl.pp->download(out.pp.data());
  dl.fp->download(out.fp.data());
  if (out.pp.back() < 0 || out.fp.back() < 0) {
    std::fprintf(stderr, "[%s] layout count wrote no totals\n", c.name.c_str());
    ++failures;
    return;
  }
  out.pi.assign(out.pp.back() + 1, -1);
  out.fi.assign(out.fp.back() + 1, -1);
  dl.pi = new DevBuf(bytes_of(out.pi));
  dl.fi = new DevBuf(bytes_of(out.fi));
  dl.pi->upload(out.pi.data());
  dl.fi->upload(out.fi.data());
  a.partial_idx = dl.pi->addr();
  a.full_idx = dl.fi->addr();
  rc = llmk_layout_fill_cuda(&a);
  EXPECT(rc == LLMK_OK);
  if (rc != LLMK_OK) std::fprintf(stderr, "[%s] layout fill: %s\n", c.name.c_str(), llmk_last_error());
  dl.pi->download(out.pi.data());
  dl.fi->download(out.fi.data());
  out.ok = rc == LLMK_OK;
}

bool same_layout(const std::string& name, const HostLayout& got, const HostLayout& ref) {
  const bool ok = got.pp == ref.pp && got.fp == ref.fp && got.pi == ref.pi && got.fi == ref.fi;
  if (!ok) {
    std::fprintf(stderr, "[%s] layout differs: partial %lld vs %lld, full %lld vs %lld\n", name.c_str(),
                 static_cast<long long>(got.pp.back()), static_cast<long long>(ref.pp.back()),
                 static_cast<long long>(got.fp.back()), static_cast<long long>(ref.fp.back()));
  }
  return ok;
}

/* Layout, then forward on both backends for each dtype / out dtype; compares out and lse. */
void run_problem(const Problem& c, MaskData& md, const std::vector<std::pair<int64_t, int64_t>>& dtypes,
                 uint32_t seed) {
  const HostLayout ref_layout = cpu_layout(c, md);
  DevBuf* dq = c.q_lens.empty() ? nullptr : new DevBuf(bytes_of(c.q_lens));
  DevBuf* dk = c.k_lens.empty() ? nullptr : new DevBuf(bytes_of(c.k_lens));
  if (dq) dq->upload(c.q_lens.data());
  if (dk) dk->upload(c.k_lens.data());
  DevLayout dl;
  HostLayout got_layout;
  cuda_layout(c, md, dq, dk, dl, got_layout);
  if (!ref_layout.ok || !got_layout.ok) {  // counted as failures already; no layout to run on
    delete dq;
    delete dk;
    return;
  }
  EXPECT(same_layout(c.name, got_layout, ref_layout));

  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(c.B * c.Hq * c.Sq * c.d), k(c.B * c.Hkv * c.Sk * c.d), v(k.size());
  for (float& x : q) x = normal(rng);
  for (float& x : k) x = normal(rng);
  for (float& x : v) x = normal(rng);
  // With nan_kv_padding, NaN and +Inf in every K and V row at and past k_lens[b], on both sides:
  // those keys do not exist, so neither backend may read them (P = 0 times NaN or Inf is NaN).
  if (c.nan_kv_padding) {
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t h = 0; h < c.Hkv; ++h)
        for (int64_t j = c.k_lens.empty() ? c.Sk : c.k_lens[b]; j < c.Sk; ++j)
          for (int64_t e = 0; e < c.d; ++e) {
            const int64_t i = ((b * c.Hkv + h) * c.Sk + j) * c.d + e;
            const bool odd = ((j + e) & 1) != 0;
            k[i] = odd ? INFINITY : NAN;
            v[i] = odd ? NAN : INFINITY;
          }
  }
  const std::vector<llmk_mask_node> host_nodes = md.bind(c.nodes, false);
  const std::vector<llmk_mask_node> dev_nodes = md.bind(c.nodes, true);
  const std::vector<int32_t>& gpu_cols = c.gpu_columns.empty() ? c.columns : c.gpu_columns;
  DevBuf gcols(bytes_of(gpu_cols));
  gcols.upload(gpu_cols.data());

  for (const auto& dt : dtypes) {
    const int64_t dtype = dt.first, out_dtype = dt.second;
    const std::string name = c.name + "/" + (dtype == LLMK_F32 ? "f32" : dtype == LLMK_F16 ? "f16" : "bf16") +
                             (out_dtype == LLMK_F32 && dtype != LLMK_F32 ? "->f32" : "");
    const auto qb = encode(q, dtype), kb = encode(k, dtype), vb = encode(v, dtype);
    const int64_t rows = c.B * c.Hq * c.Sq;
    llmk_attn_args a;
    std::memset(&a, 0, sizeof a);
    a.struct_bytes = sizeof a;
    a.batch = c.B;
    a.heads_q = c.Hq;
    a.heads_kv = c.Hkv;
    a.seq_q = c.Sq;
    a.seq_k = c.Sk;
    a.head_dim = c.d;
    a.dtype = dtype;
    a.out_dtype = out_dtype;
    a.scale = 1.0 / std::sqrt(static_cast<double>(c.d));
    a.softcap = c.softcap;
    a.layout_batch = ref_layout.layout_batch;
    a.layout_heads = ref_layout.layout_heads;
    a.block_q = c.block_q;
    a.block_k = c.block_k;
    a.node_count = static_cast<int64_t>(c.nodes.size());
    a.col_cap = c.columns.empty() ? 0 : c.col_cap;

    // CPU reference
    std::vector<unsigned char> out_cpu(rows * c.d * elem_bytes(out_dtype));
    std::vector<float> lse_cpu(rows, NAN);
    llmk_attn_args ac = a;
    ac.q = reinterpret_cast<int64_t>(qb.data());
    ac.k = reinterpret_cast<int64_t>(kb.data());
    ac.v = reinterpret_cast<int64_t>(vb.data());
    ac.out = reinterpret_cast<int64_t>(out_cpu.data());
    ac.lse = reinterpret_cast<int64_t>(lse_cpu.data());
    ac.nodes = reinterpret_cast<int64_t>(host_nodes.data());
    ac.q_lens = c.q_lens.empty() ? 0 : reinterpret_cast<int64_t>(c.q_lens.data());
    ac.k_lens = c.k_lens.empty() ? 0 : reinterpret_cast<int64_t>(c.k_lens.data());
    ac.partial_ptr = reinterpret_cast<int64_t>(ref_layout.pp.data());
    ac.partial_idx = reinterpret_cast<int64_t>(ref_layout.pi.data());
    ac.full_ptr = reinterpret_cast<int64_t>(ref_layout.fp.data());
    ac.full_idx = reinterpret_cast<int64_t>(ref_layout.fi.data());
    ac.columns = c.columns.empty() ? 0 : reinterpret_cast<int64_t>(c.columns.data());
    int32_t rc = llmk_attn_forward_cpu(&ac);
    EXPECT(rc == LLMK_OK);
    if (rc != LLMK_OK) std::fprintf(stderr, "[%s] cpu forward: %s\n", name.c_str(), llmk_last_error());
    if (!c.columns.empty()) {
      // The columns must move the result, or agreeing with the CPU would not test the column pass.
      std::vector<unsigned char> out_plain(out_cpu.size());
      std::vector<float> lse_plain(rows);
      llmk_attn_args ap = ac;
      ap.col_cap = 0;
      ap.columns = 0;
      ap.out = reinterpret_cast<int64_t>(out_plain.data());
      ap.lse = reinterpret_cast<int64_t>(lse_plain.data());
      EXPECT(llmk_attn_forward_cpu(&ap) == LLMK_OK);
      const std::vector<float> with = decode(out_cpu, out_dtype), without = decode(out_plain, out_dtype);
      double moved = 0.0;
      for (size_t i = 0; i < with.size(); ++i) moved = std::fmax(moved, std::fabs(with[i] - without[i]));
      EXPECT(moved > 0.05);
      if (!(moved > 0.05)) std::fprintf(stderr, "[%s] the columns move out by only %.3g\n", name.c_str(), moved);
    }

    // CUDA
    DevBuf gq(bytes_of(qb)), gk(bytes_of(kb)), gv(bytes_of(vb));
    DevBuf gout(bytes_of(out_cpu)), glse(rows * 4);
    gq.upload(qb.data());
    gk.upload(kb.data());
    gv.upload(vb.data());
    std::vector<unsigned char> poison(out_cpu.size(), 0xff);  // NaN in every dtype
    gout.upload(poison.data());
    glse.upload(poison.data());
    llmk_attn_args ag = a;
    ag.q = gq.addr();
    ag.k = gk.addr();
    ag.v = gv.addr();
    ag.out = gout.addr();
    ag.lse = glse.addr();
    ag.nodes = reinterpret_cast<int64_t>(dev_nodes.data());
    ag.q_lens = dq ? dq->addr() : 0;
    ag.k_lens = dk ? dk->addr() : 0;
    ag.partial_ptr = dl.pp->addr();
    ag.partial_idx = dl.pi->addr();
    ag.full_ptr = dl.fp->addr();
    ag.full_idx = dl.fi->addr();
    ag.columns = c.columns.empty() ? 0 : gcols.addr();
    ag.device = kDevice;
    rc = llmk_attn_forward_cuda(&ag);
    EXPECT(rc == LLMK_OK);
    if (rc != LLMK_OK) std::fprintf(stderr, "[%s] cuda forward: %s\n", name.c_str(), llmk_last_error());
    std::vector<unsigned char> out_gpu(out_cpu.size());
    std::vector<float> lse_gpu(rows);
    gout.download(out_gpu.data());
    glse.download(lse_gpu.data());

    // The tensor-core path rounds P to the input dtype before P V (as FlashAttention does).
    const double tol = dtype == LLMK_BF16 ? 2e-2 : dtype == LLMK_F16 ? 4e-3 : 2e-5;
    EXPECT(close("out", name, decode(out_gpu, out_dtype), decode(out_cpu, out_dtype), tol));
    EXPECT(close("lse", name, lse_gpu, lse_cpu, dtype == LLMK_F32 ? 2e-5 : 1e-3));
    if (c.nan_kv_padding) {  // close() matches NaN with NaN: neither side may hold any
      for (const auto* o : {&out_cpu, &out_gpu}) {
        const std::vector<float> f = decode(*o, out_dtype);
        const bool finite = std::all_of(f.begin(), f.end(), [](float x) { return std::isfinite(x); });
        EXPECT(finite);
        if (!finite) std::fprintf(stderr, "[%s] %s out has non-finite values\n", name.c_str(), o == &out_cpu ? "cpu" : "cuda");
      }
    }
  }
  delete dq;
  delete dk;
}

void test_forward() {
  MaskData md;
  const std::vector<std::pair<int64_t, int64_t>> all = {
      {LLMK_BF16, LLMK_BF16}, {LLMK_F16, LLMK_F16}, {LLMK_BF16, LLMK_F32}, {LLMK_F32, LLMK_F32}};
  uint32_t seed = 100;
  // causal AND (window OR sinks), bottom-right aligned, GQA, ragged 97 x 113: tensor-core path
  for (int64_t d : {64, 128}) {
    Problem c;
    c.name = "cws-gqa-d" + std::to_string(d);
    c.B = 2;
    c.Hq = 4;
    c.Hkv = 2;
    c.d = d;
    c.nodes = {leaf(LLMK_MASK_CAUSAL, 0, 1), leaf(LLMK_MASK_WINDOW, 0, 1, 40, 0), leaf(LLMK_MASK_SINKS, 0, 0, 4),
               leaf(LLMK_MASK_OR), leaf(LLMK_MASK_AND)};
    run_problem(c, md, all, seed++);
    c.name += "-blk128x192-softcap";
    c.block_q = 128;
    c.block_k = 192;
    c.softcap = 4.0;
    run_problem(c, md, all, seed++);
  }
  // odd head dim and blocks that are not multiples of 64: general path for every dtype
  {
    Problem c;
    c.name = "cws-odd-d72-blk32x48";
    c.B = 2;
    c.Hq = 3;
    c.Hkv = 1;
    c.d = 72;
    c.block_q = 32;
    c.block_k = 48;
    c.nodes = {leaf(LLMK_MASK_CAUSAL, 0, 1), leaf(LLMK_MASK_WINDOW, 0, 1, 30, 0), leaf(LLMK_MASK_SINKS, 0, 0, 3),
               leaf(LLMK_MASK_OR), leaf(LLMK_MASK_AND)};
    run_problem(c, md, all, seed++);
    c.name = "d37-blk64";
    c.d = 37;
    c.block_q = c.block_k = 64;
    run_problem(c, md, all, seed++);
    c.name = "d200-blk16x128";
    c.d = 200;
    c.block_q = 16;
    c.block_k = 128;
    run_problem(c, md, all, seed++);
  }
  // NOT(causal) leaves query row 0 with no visible key; per-head layout
  {
    Problem c;
    c.name = "anti-causal-per-head";
    c.Hq = 2;
    c.Hkv = 2;
    c.per_head = true;
    c.Sq = c.Sk = 130;
    c.nodes = {leaf(LLMK_MASK_CAUSAL, 0, 0), leaf(LLMK_MASK_NOT)};
    run_problem(c, md, all, seed++);
  }
  // varlen causal on the device: batch 1 has no queries at all, batch 0 keys cut inside a block
  {
    Problem c;
    c.name = "varlen-causal";
    c.B = 2;
    c.Hq = 2;
    c.Hkv = 1;
    c.Sq = 150;
    c.Sk = 150;
    c.q_lens = {150, 0};
    c.k_lens = {90, 150};
    c.nodes = {leaf(LLMK_MASK_CAUSAL, 0, 1)};
    run_problem(c, md, all, seed++);
    c.name = "varlen-causal-d128-blk128";
    c.d = 128;
    c.block_q = c.block_k = 128;
    run_problem(c, md, all, seed++);
  }
  // NaN and +Inf in the K / V rows past k_len (an uninitialised KV cache), seq_k 128, on both
  // backends: neither may read them (P = 0 times NaN or Inf is NaN). k_len 100 cuts the second
  // 64-key block, 40 the first (the second is then past the keys); every output must be finite
  // and the two backends must agree.
  {
    Problem c;
    c.name = "nan-kv-padding";
    c.B = 2;
    c.Hq = 2;
    c.Hkv = 1;
    c.Sq = 64;
    c.Sk = 128;
    c.q_lens = {64, 64};
    c.k_lens = {100, 40};
    c.nan_kv_padding = true;
    c.nodes = {leaf(LLMK_MASK_ALL)};
    run_problem(c, md, all, seed++);
    c.name = "nan-kv-padding-causal";
    c.nodes = {leaf(LLMK_MASK_CAUSAL, 0, 1)};
    run_problem(c, md, {{LLMK_BF16, LLMK_BF16}, {LLMK_F16, LLMK_F16}}, seed++);
  }
  // data-driven leaves with device data: documents, block bitmap, vertical-slash, prefix
  {
    Problem c;
    c.name = "document-or-prefix";
    c.B = 2;
    c.Hq = 2;
    c.Hkv = 2;
    c.Sq = 97;
    c.Sk = 113;
    std::vector<int32_t> qseg(2 * 97), kseg(2 * 113);
    for (int b = 0; b < 2; ++b) {
      for (int i = 0; i < 97; ++i) qseg[b * 97 + i] = (i * (3 + b)) / 97;
      for (int j = 0; j < 113; ++j) kseg[b * 113 + j] = (j * (3 + b)) / 113;
    }
    const int32_t prefix[2] = {5, 70};
    const int64_t iq = md.add(qseg.data(), bytes_of(qseg)), ik = md.add(kseg.data(), bytes_of(kseg));
    const int64_t ip = md.add(prefix, sizeof prefix);
    llmk_mask_node doc = leaf(LLMK_MASK_DOCUMENT, 0, 0, 97, 113, 1);
    doc.data0 = iq;
    doc.data1 = ik;
    llmk_mask_node pre = leaf(LLMK_MASK_PREFIX);
    pre.batch_stride = 1;
    pre.data0 = ip;
    c.nodes = {doc, pre, leaf(LLMK_MASK_OR), leaf(LLMK_MASK_CAUSAL, 0, 1), leaf(LLMK_MASK_AND)};
    run_problem(c, md, all, seed++);
    doc.i4 = 0;  // unsorted-ids classifier path
    c.nodes[0] = doc;
    c.name = "document-unsorted";
    run_problem(c, md, {{LLMK_BF16, LLMK_BF16}}, seed++);
  }
  {
    Problem c;
    c.name = "blocks-bitmap-per-head";
    c.B = 1;
    c.Hq = 2;
    c.Hkv = 1;
    c.Sq = 200;
    c.Sk = 260;
    c.per_head = true;
    const int64_t mb = 32, rows = (200 + mb - 1) / mb, cols = (260 + mb - 1) / mb;
    std::vector<uint8_t> bits(2 * rows * cols);
    std::mt19937 rng(5);
    for (auto& x : bits) x = (rng() % 3) != 0;
    const int64_t ib = md.add(bits.data(), bytes_of(bits));
    llmk_mask_node n = leaf(LLMK_MASK_BLOCKS, 0, 0, mb, mb, rows, cols);
    n.head_stride = rows * cols;
    n.data0 = ib;
    c.nodes = {n};
    run_problem(c, md, all, seed++);
  }
  {
    Problem c;
    c.name = "vertical-slash";
    c.B = 1;
    c.Hq = 2;
    c.Hkv = 2;
    c.Sq = 193;
    c.Sk = 193;
    c.per_head = true;
    const std::vector<int32_t> columns = {0, 1, 2, 50, 51, 120, INT32_MAX, INT32_MAX,  // head 0
                                          3, 64, 65, 66, 67, 190, INT32_MAX, INT32_MAX};
    const std::vector<int32_t> slashes = {0, 1, 7, 64, INT32_MAX, INT32_MAX, 0, 2, 3, 100, 150, INT32_MAX};
    const int64_t ic = md.add(columns.data(), bytes_of(columns)), is = md.add(slashes.data(), bytes_of(slashes));
    llmk_mask_node n = leaf(LLMK_MASK_VERTICAL_SLASH, 0, 1, 8, 6, 0, 6);
    n.head_stride = 8;
    n.data0 = ic;
    n.data1 = is;
    c.nodes = {n, leaf(LLMK_MASK_CAUSAL, 0, 1), leaf(LLMK_MASK_AND)};
    run_problem(c, md, all, seed++);
  }
}

/* A tile selection as the layout's mask: `mask` AND a per-head bitmap of mb x mb tiles, each tile
 * kept with probability 1/3, the (bottom-right) diagonal always, and the last head none at all (its
 * queries see columns only). The forward runs with `mask` alone, so every listed tile is visible. */
void select_tiles(Problem& c, MaskData& md, const std::vector<llmk_mask_node>& mask, int64_t mb, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t rows = (c.Sq + mb - 1) / mb, cols = (c.Sk + mb - 1) / mb;
  std::vector<uint8_t> bits(c.Hq * rows * cols, 0);
  for (int64_t h = 0; h + 1 < c.Hq; ++h) {
    uint8_t* t = bits.data() + h * rows * cols;
    for (int64_t qb = 0; qb < rows; ++qb) {
      for (int64_t kb = 0; kb < cols; ++kb) t[qb * cols + kb] = rng() % 3 == 0;
      const int64_t last = std::min((qb + 1) * mb, c.Sq) - 1;
      t[qb * cols + (last + c.Sk - c.Sq) / mb] = 1;
    }
  }
  llmk_mask_node n = leaf(LLMK_MASK_BLOCKS, 0, 0, mb, mb, rows, cols);
  n.head_stride = rows * cols;
  n.data0 = md.add(bits.data(), bytes_of(bits));
  c.per_head = true;
  c.nodes = mask;
  c.layout_nodes = mask;
  c.layout_nodes.push_back(n);
  c.layout_nodes.push_back(leaf(LLMK_MASK_AND));
}

/* Key columns of every layout (b, h) row, ascending, -1 padded to cap: key j with probability
 * 1 / (every << (row % 3)), so one row in three tends to fill its cap (no padding); rows with
 * row % 4 == 1 get none. With junk the CUDA call gets, in each row's padding, what its kernels
 * must skip: keys at and past seq_k (still ascending), then a negative entry other than -1. */
void add_columns(Problem& c, int64_t cap, uint32_t every, bool junk, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t rows = layout_batch_of(c) * (c.per_head ? c.Hq : 1);
  c.col_cap = cap;
  c.columns.assign(rows * cap, -1);
  for (int64_t r = 0; r < rows; ++r) {
    int32_t* row = c.columns.data() + r * cap;
    int64_t n = 0;
    for (int64_t j = 0; r % 4 != 1 && j < c.Sk && n < cap; ++j) {
      if (rng() % (every << (r % 3)) == 0) row[n++] = static_cast<int32_t>(j);
    }
  }
  c.gpu_columns.clear();
  if (!junk) return;
  c.gpu_columns = c.columns;
  const int32_t bad[] = {static_cast<int32_t>(c.Sk), static_cast<int32_t>(c.Sk) + 7, INT32_MAX, -5};
  for (int64_t r = 0; r < rows; ++r) {
    int32_t* row = c.gpu_columns.data() + r * cap;
    int64_t n = 0;
    while (n < cap && row[n] >= 0) ++n;
    for (int i = 0; i < 4 && n + i < cap; ++i) row[n + i] = bad[i];
  }
}

/* Token key columns beside a tile selection: the tensor-core path (d 64 / 128, 64-slot chunks,
 * layout blocks of 64 and 128), the general path (F32 and an odd d, 16-slot chunks, block 32),
 * a window (columns partly visible, far chunks skipped), varlen lengths (columns past k_len, whose
 * K / V rows hold NaN and +Inf on both sides), and junk entries only the CUDA side gets; every
 * case is compared with the CPU on the clean rows. */
void test_columns() {
  MaskData md;
  const std::vector<std::pair<int64_t, int64_t>> all = {
      {LLMK_BF16, LLMK_BF16}, {LLMK_F16, LLMK_F16}, {LLMK_BF16, LLMK_F32}, {LLMK_F32, LLMK_F32}};
  const std::vector<llmk_mask_node> causal = {leaf(LLMK_MASK_CAUSAL, 0, 1)};
  uint32_t seed = 300;
  for (int64_t d : {64, 128}) {
    Problem c;
    c.name = "columns-causal-gqa-d" + std::to_string(d);
    c.Hq = 4;
    c.Hkv = 2;
    c.Sq = c.Sk = 300;
    c.d = d;
    select_tiles(c, md, causal, 64, seed++);
    add_columns(c, 128, 2, d == 128, seed++);  // two 64-slot chunks
    run_problem(c, md, all, seed++);
  }
  {
    Problem c;
    c.name = "columns-causal-d64-blk128";  // 64-row CTAs inside 128-row layout blocks, half-listed tiles
    c.Hq = 3;
    c.Hkv = 1;
    c.Sq = c.Sk = 300;
    c.block_q = c.block_k = 128;
    select_tiles(c, md, causal, 64, seed++);
    add_columns(c, 150, 2, true, seed++);
    run_problem(c, md, {{LLMK_BF16, LLMK_BF16}, {LLMK_F32, LLMK_F32}}, seed++);
  }
  {
    Problem c;
    c.name = "columns-odd-d40-blk32";  // general path for every dtype
    c.Hq = 3;
    c.Hkv = 1;
    c.Sq = c.Sk = 197;
    c.d = 40;
    c.block_q = c.block_k = 32;
    select_tiles(c, md, causal, 32, seed++);
    add_columns(c, 48, 4, true, seed++);  // three 16-slot chunks
    run_problem(c, md, all, seed++);
  }
  {
    Problem c;
    c.name = "columns-window-d64";
    c.Hq = 3;
    c.Hkv = 1;
    c.Sq = c.Sk = 300;
    select_tiles(c, md, {leaf(LLMK_MASK_WINDOW, 0, 1, 40, 0)}, 64, seed++);
    add_columns(c, 128, 2, false, seed++);
    run_problem(c, md, all, seed++);
  }
  {
    Problem c;
    c.name = "columns-varlen";
    c.B = 2;
    c.Hq = 3;
    c.Hkv = 1;
    c.Sq = 150;
    c.Sk = 180;
    c.q_lens = {150, 100};
    c.k_lens = {180, 120};
    c.nan_kv_padding = true;  // the column pass must not gather the rows past k_len either
    select_tiles(c, md, causal, 64, seed++);
    add_columns(c, 64, 2, true, seed++);
    run_problem(c, md, all, seed++);
  }
}

/* 128K x 128K causal, block 128: every row qb has qb FULL blocks and one PARTIAL (the diagonal). */
void test_big_causal_layout() {
  const int64_t S = 131072, blk = 128, nb = S / blk;
  std::vector<llmk_mask_node> nodes = {leaf(LLMK_MASK_CAUSAL, 0, 0)};
  llmk_layout_args a;
  std::memset(&a, 0, sizeof a);
  a.struct_bytes = sizeof a;
  a.batch = 1;
  a.layout_batch = 1;
  a.layout_heads = 1;
  a.seq_q = a.seq_k = S;
  a.block_q = a.block_k = blk;
  a.nodes = reinterpret_cast<int64_t>(nodes.data());
  a.node_count = 1;
  a.device = kDevice;
  DevBuf pp((nb + 1) * 8), fp((nb + 1) * 8);
  const int64_t full_total = nb * (nb - 1) / 2;
  DevBuf pi(nb * 4), fi(full_total * 4);
  a.partial_ptr = pp.addr();
  a.full_ptr = fp.addr();
  a.partial_idx = pi.addr();
  a.full_idx = fi.addr();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT(llmk_layout_count_cuda(&a) == LLMK_OK);
  EXPECT(llmk_layout_fill_cuda(&a) == LLMK_OK);
  EXPECT(llmk_cuda_stream_synchronize(kDevice, nullptr) == LLMK_OK);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("128K x 128K causal layout (block 128): count + fill %.2f ms\n", ms);
  std::vector<int64_t> hp(nb + 1), hf(nb + 1);
  std::vector<int32_t> hpi(nb), hfi(full_total);
  pp.download(hp.data());
  fp.download(hf.data());
  pi.download(hpi.data());
  fi.download(hfi.data());
  bool ok = hp[0] == 0 && hf[0] == 0;
  for (int64_t r = 0; r < nb && ok; ++r) {
    ok = hp[r + 1] == r + 1 && hf[r + 1] == r * (r + 1) / 2 && hpi[r] == r;
    for (int64_t j = 0; j < r && ok; ++j) ok = hfi[hf[r] + j] == j;
  }
  EXPECT(ok);
}

void test_merge() {
  const int64_t rows = 37, d = 45;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> oa(rows * d), ob(rows * d), la(rows), lb(rows);
  for (float& x : oa) x = normal(rng);
  for (float& x : ob) x = normal(rng);
  for (int64_t r = 0; r < rows; ++r) {
    la[r] = r % 5 == 1 || r % 7 == 3 ? -INFINITY : 3.0f * normal(rng);
    lb[r] = r % 5 == 2 || r % 7 == 3 ? -INFINITY : 3.0f * normal(rng);
    if (la[r] == -INFINITY) for (int64_t j = 0; j < d; ++j) oa[r * d + j] = 0.0f;
    if (lb[r] == -INFINITY) for (int64_t j = 0; j < d; ++j) ob[r * d + j] = 0.0f;
  }
  for (int64_t dtype : {LLMK_F32, LLMK_F16, LLMK_BF16}) {
    const std::string name = std::string("merge/") + (dtype == LLMK_F32 ? "f32" : dtype == LLMK_F16 ? "f16" : "bf16");
    const auto ea = encode(oa, dtype), eb = encode(ob, dtype);
    std::vector<unsigned char> out_cpu(ea.size());
    std::vector<float> lse_cpu(rows);
    EXPECT(llmk_attn_merge_cpu(ea.data(), la.data(), eb.data(), lb.data(), out_cpu.data(), lse_cpu.data(), rows, d,
                               static_cast<int32_t>(dtype)) == LLMK_OK);
    DevBuf ga(bytes_of(ea)), gb(bytes_of(eb)), gla(rows * 4), glb(rows * 4), gout(bytes_of(ea)), glse(rows * 4);
    ga.upload(ea.data());
    gb.upload(eb.data());
    gla.upload(la.data());
    glb.upload(lb.data());
    int32_t rc = llmk_attn_merge_cuda(kDevice, ga.p, static_cast<const float*>(gla.p), gb.p,
                                      static_cast<const float*>(glb.p), gout.p, static_cast<float*>(glse.p), rows, d,
                                      static_cast<int32_t>(dtype), nullptr);
    EXPECT(rc == LLMK_OK);
    std::vector<unsigned char> out_gpu(ea.size());
    std::vector<float> lse_gpu(rows);
    gout.download(out_gpu.data());
    glse.download(lse_gpu.data());
    const double tol = dtype == LLMK_F32 ? 1e-6 : dtype == LLMK_F16 ? 1e-3 : 8e-3;
    EXPECT(close("out", name, decode(out_gpu, dtype), decode(out_cpu, dtype), tol));
    EXPECT(close("lse", name, lse_gpu, lse_cpu, 1e-6));
    // in place into state b
    rc = llmk_attn_merge_cuda(kDevice, ga.p, static_cast<const float*>(gla.p), gb.p, static_cast<const float*>(glb.p),
                              gb.p, static_cast<float*>(glb.p), rows, d, static_cast<int32_t>(dtype), nullptr);
    EXPECT(rc == LLMK_OK);
    gb.download(out_gpu.data());
    glb.download(lse_gpu.data());
    EXPECT(close("out in place", name, decode(out_gpu, dtype), decode(out_cpu, dtype), tol));
    EXPECT(close("lse in place", name, lse_gpu, lse_cpu, 1e-6));
  }
}

void test_errors() {
  // head_dim above the CUDA limit is a clear INVALID_ARGUMENT
  std::vector<llmk_mask_node> nodes = {leaf(LLMK_MASK_ALL)};
  DevBuf buf(1 << 20);
  llmk_attn_args a;
  std::memset(&a, 0, sizeof a);
  a.struct_bytes = sizeof a;
  a.batch = a.heads_q = a.heads_kv = 1;
  a.seq_q = a.seq_k = 1;
  a.head_dim = 300;
  a.dtype = a.out_dtype = LLMK_F32;
  a.scale = 1.0;
  const int64_t base = buf.addr();
  a.q = base;
  a.k = base + 4096;
  a.v = base + 8192;
  a.out = base + 12288;
  a.lse = base + 16384;
  a.layout_batch = a.layout_heads = 1;
  a.block_q = a.block_k = 1;
  a.nodes = reinterpret_cast<int64_t>(nodes.data());
  a.node_count = 1;
  a.partial_ptr = base + 20480;
  a.full_ptr = base + 24576;
  a.device = kDevice;
  EXPECT(llmk_attn_forward_cuda(&a) == LLMK_ERR_INVALID_ARGUMENT);
  EXPECT(std::strstr(llmk_last_error(), "head_dim") != nullptr);
}

}  // namespace

int main() {
  if (!cuda_device_present()) return 0;
  test_forward();
  test_columns();
  test_big_causal_layout();
  test_merge();
  test_errors();
  if (failures != 0) {
    std::fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  std::printf("OK\n");
  return 0;
}
