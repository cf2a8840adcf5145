// CPU block-sparse attention against a direct double-precision evaluation of the same mask
// (every key visited, element predicate from llmk/mask_math.h), on every CPU variant this
// machine runs. The Java tests hold the independent oracle; this one catches kernel bugs
// (tile tails, sub-tiles, online softmax, GQA indexing) close to the code, in seconds.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "dtype_codec.h"
#include "expect.h"
#include "llmk/half_bits.h"
#include "llmk/llmk.h"
#include "llmk/mask_math.h"

namespace {

struct Case {
  int64_t B, Hq, Hkv, Sq, Sk, d, block_q, block_k;
  std::vector<llmk_mask_node> nodes;
  std::vector<int32_t> q_lens, k_lens;  // empty: full lengths
  float softcap = 0.0f;
  std::vector<uint8_t> selection;  // [nqb, nkb] tiles to list (empty: all the mask needs)
  std::vector<int32_t> columns;    // token columns of the one layout row, -1 padded (empty: none)
};

bool has_column(const Case& c, int64_t j) {
  for (int32_t x : c.columns) {
    if (x == j) return true;
  }
  return false;
}

llmk_mask_node leaf(int64_t op, int64_t i0 = 0, int64_t i1 = 0, int64_t i2 = 0, int64_t i3 = 0) {
  llmk_mask_node n;
  std::memset(&n, 0, sizeof n);
  n.op = op;
  n.i0 = i0;
  n.i1 = i1;
  n.i2 = i2;
  n.i3 = i3;
  return n;
}

struct Layout {
  std::vector<int64_t> pp, fp;
  std::vector<int32_t> pi, fi;
};

llmk_layout_args layout_args(const Case& c, Layout& l) {
  llmk_layout_args a;
  std::memset(&a, 0, sizeof a);
  a.struct_bytes = sizeof a;
  a.batch = c.B;
  a.layout_batch = c.q_lens.empty() ? 1 : c.B;
  a.layout_heads = 1;
  a.seq_q = c.Sq;
  a.seq_k = c.Sk;
  a.block_q = c.block_q;
  a.block_k = c.block_k;
  a.nodes = reinterpret_cast<int64_t>(c.nodes.data());
  a.node_count = static_cast<int64_t>(c.nodes.size());
  a.q_lens = c.q_lens.empty() ? 0 : reinterpret_cast<int64_t>(c.q_lens.data());
  a.k_lens = c.k_lens.empty() ? 0 : reinterpret_cast<int64_t>(c.k_lens.data());
  const int64_t rows = a.layout_batch * ((c.Sq + c.block_q - 1) / c.block_q);
  l.pp.assign(rows + 1, 0);
  l.fp.assign(rows + 1, 0);
  a.partial_ptr = reinterpret_cast<int64_t>(l.pp.data());
  a.full_ptr = reinterpret_cast<int64_t>(l.fp.data());
  a.selection = c.selection.empty() ? 0 : reinterpret_cast<int64_t>(c.selection.data());
  return a;
}

/* The case's layout: count, size the index lists, fill. */
llmk_layout_args build_layout(const Case& c, Layout& l) {
  llmk_layout_args la = layout_args(c, l);
  EXPECT(llmk_layout_count_cpu(&la) == LLMK_OK);
  l.pi.assign(l.pp.back() + 1, -1);
  l.fi.assign(l.fp.back() + 1, -1);
  la.partial_idx = reinterpret_cast<int64_t>(l.pi.data());
  la.full_idx = reinterpret_cast<int64_t>(l.fi.data());
  EXPECT(llmk_layout_fill_cpu(&la) == LLMK_OK);
  return la;
}

/* The forward arguments of case c over layout la: shapes, dtypes, layout and columns
 * ([layout_batch, layout_heads, col_cap] as given); tensors, scale and softcap left to the caller. */
llmk_attn_args forward_args(const Case& c, const llmk_layout_args& la, int64_t dtype,
                            const std::vector<int32_t>& columns) {
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
  a.out_dtype = LLMK_F32;
  a.layout_batch = la.layout_batch;
  a.layout_heads = la.layout_heads;
  a.block_q = c.block_q;
  a.block_k = c.block_k;
  a.nodes = la.nodes;
  a.node_count = la.node_count;
  a.q_lens = la.q_lens;
  a.k_lens = la.k_lens;
  a.partial_ptr = la.partial_ptr;
  a.partial_idx = la.partial_idx;
  a.full_ptr = la.full_ptr;
  a.full_idx = la.full_idx;
  a.col_cap = static_cast<int64_t>(c.columns.size());
  a.columns = columns.empty() ? 0 : reinterpret_cast<int64_t>(columns.data());
  return a;
}

void run_case(const Case& c, uint32_t seed) {
  Layout l;
  const llmk_layout_args la = build_layout(c, l);

  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(c.B * c.Hq * c.Sq * c.d), k(c.B * c.Hkv * c.Sk * c.d), v(k.size());
  for (float& x : q) x = normal(rng);
  for (float& x : k) x = normal(rng);
  for (float& x : v) x = normal(rng);
  std::vector<float> out(q.size(), NAN), lse(c.B * c.Hq * c.Sq, NAN);
  llmk_attn_args a = forward_args(c, la, LLMK_F32, c.columns);
  a.scale = 1.0 / std::sqrt(static_cast<double>(c.d));
  a.softcap = c.softcap;
  a.q = reinterpret_cast<int64_t>(q.data());
  a.k = reinterpret_cast<int64_t>(k.data());
  a.v = reinterpret_cast<int64_t>(v.data());
  a.out = reinterpret_cast<int64_t>(out.data());
  a.lse = reinterpret_cast<int64_t>(lse.data());
  const int32_t rc = llmk_attn_forward_cpu(&a);
  EXPECT(rc == LLMK_OK);
  if (rc != LLMK_OK) std::fprintf(stderr, "  %s\n", llmk_last_error());

  double worst = 0.0;
  int64_t bad_empty = 0;
  std::vector<double> s(c.Sk);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.Hq; ++h) {
      const llmk::MaskRow mr = llmk::mask_row(b, h, a.q_lens, a.k_lens, c.Sq, c.Sk);
      const int64_t hk = h / (c.Hq / c.Hkv);
      for (int64_t i = 0; i < c.Sq; ++i) {
        const float* qi = &q[((b * c.Hq + h) * c.Sq + i) * c.d];
        double m = -INFINITY;
        for (int64_t j = 0; j < c.Sk; ++j) {
          s[j] = -INFINITY;
          if (!llmk::mask_visible(c.nodes.data(), a.node_count, mr, i, j)) continue;
          const int64_t nkb = (c.Sk + c.block_k - 1) / c.block_k;
          const bool listed = c.selection.empty() || c.selection[(i / c.block_q) * nkb + j / c.block_k] != 0;
          if (!listed && !has_column(c, j)) continue;
          const float* kj = &k[((b * c.Hkv + hk) * c.Sk + j) * c.d];
          double dot = 0.0;
          for (int64_t t = 0; t < c.d; ++t) dot += static_cast<double>(qi[t]) * kj[t];
          dot *= a.scale;
          if (c.softcap > 0) dot = c.softcap * std::tanh(dot / c.softcap);
          s[j] = dot;
          m = dot > m ? dot : m;
        }
        const int64_t row = (b * c.Hq + h) * c.Sq + i;
        if (m == -INFINITY) {
          bool zero = lse[row] == -INFINITY;
          for (int64_t t = 0; t < c.d; ++t) zero = zero && out[row * c.d + t] == 0.0f;
          bad_empty += zero ? 0 : 1;
          continue;
        }
        double sum = 0.0;
        std::vector<double> o(c.d, 0.0);
        for (int64_t j = 0; j < c.Sk; ++j) {
          if (s[j] == -INFINITY) continue;
          const double p = std::exp(s[j] - m);
          sum += p;
          const float* vj = &v[((b * c.Hkv + hk) * c.Sk + j) * c.d];
          for (int64_t t = 0; t < c.d; ++t) o[t] += p * vj[t];
        }
        /* a NaN (or an unwritten, NaN-prefilled) output must count as the worst error */
        const auto track = [&](double err) { worst = (err <= worst) ? worst : (std::isnan(err) ? INFINITY : err); };
        track(std::fabs(lse[row] - (m + std::log(sum))));
        for (int64_t t = 0; t < c.d; ++t) track(std::fabs(out[row * c.d + t] - o[t] / sum));
      }
    }
  EXPECT(bad_empty == 0);
  EXPECT(worst < 2e-4);
  if (worst >= 2e-4 || bad_empty) {
    std::fprintf(stderr, "  case Sq=%ld Sk=%ld d=%ld blocks %ldx%ld: worst %.3g, bad empty rows %ld\n", (long)c.Sq,
                 (long)c.Sk, (long)c.d, (long)c.block_q, (long)c.block_k, worst, (long)bad_empty);
  }
}

/* Token columns beside a tile selection: a random selection (diagonal kept) plus ascending
 * columns, some inside listed tiles (must not count twice), more than one 128-key chunk of them,
 * -1 padding; causal square and bottom-right aligned, and a window mask (columns partly visible). */
void run_column_cases(uint32_t seed) {
  std::mt19937 rng(seed);
  const auto with_columns = [&](Case c, int64_t count, int64_t pad) {
    const int64_t nqb = (c.Sq + c.block_q - 1) / c.block_q, nkb = (c.Sk + c.block_k - 1) / c.block_k;
    c.selection.assign(nqb * nkb, 0);
    for (int64_t qb = 0; qb < nqb; ++qb) {
      for (int64_t kb = 0; kb < nkb; ++kb) c.selection[qb * nkb + kb] = rng() % 4 == 0;
      const int64_t last = (qb + 1) * c.block_q < c.Sq ? (qb + 1) * c.block_q - 1 : c.Sq - 1;
      c.selection[qb * nkb + (last + c.Sk - c.Sq) / c.block_k] = 1;
    }
    std::vector<uint8_t> pick(c.Sk, 0);
    for (int64_t n = 0; n < count;) {
      const int64_t j = static_cast<int64_t>(rng() % c.Sk);
      if (!pick[j]) { pick[j] = 1; ++n; }
    }
    for (int64_t j = 0; j < c.Sk; ++j) {
      if (pick[j]) c.columns.push_back(static_cast<int32_t>(j));
    }
    c.columns.insert(c.columns.end(), pad, -1);
    return c;
  };
  Case square{1, 2, 1, 200, 200, 40, 32, 32, {}, {}, {}};
  square.nodes = {leaf(LLMK_MASK_CAUSAL, 0, 1)};
  run_case(with_columns(square, 37, 8), seed);
  Case tall{2, 2, 2, 130, 300, 64, 64, 64, {}, {}, {}};
  tall.nodes = {leaf(LLMK_MASK_CAUSAL, 0, 1)};
  run_case(with_columns(tall, 150, 0), seed + 1);  // two chunks of gathered keys
  Case window{1, 2, 1, 97, 97, 24, 16, 16, {}, {}, {}};
  window.nodes = {leaf(LLMK_MASK_WINDOW, 0, 1, 20, 0)};
  run_case(with_columns(window, 40, 3), seed + 2);
}

/* Column rows that break the rule are rejected by name before anything is read or written. */
void bad_columns() {
  Case c{1, 1, 1, 8, 8, 4, 4, 4, {}, {}, {}};
  c.nodes = {leaf(LLMK_MASK_CAUSAL, 0, 1)};
  Layout l;
  const llmk_layout_args la = build_layout(c, l);
  std::vector<float> q(32, 1.0f), k(32, 1.0f), v(32, 1.0f), out(32, 7.0f), lse(8, 7.0f);
  llmk_attn_args a;
  std::memset(&a, 0, sizeof a);
  a.struct_bytes = sizeof a;
  a.batch = a.heads_q = a.heads_kv = 1;
  a.seq_q = a.seq_k = 8;
  a.head_dim = 4;
  a.scale = 0.5;
  a.q = reinterpret_cast<int64_t>(q.data());
  a.k = reinterpret_cast<int64_t>(k.data());
  a.v = reinterpret_cast<int64_t>(v.data());
  a.out = reinterpret_cast<int64_t>(out.data());
  a.lse = reinterpret_cast<int64_t>(lse.data());
  a.layout_batch = a.layout_heads = 1;
  a.block_q = a.block_k = 4;
  a.nodes = la.nodes;
  a.node_count = la.node_count;
  a.partial_ptr = la.partial_ptr;
  a.partial_idx = la.partial_idx;
  a.full_ptr = la.full_ptr;
  a.full_idx = la.full_idx;
  const struct { std::vector<int32_t> cols; int32_t rc; const char* needle; } cases[] = {
      {{1, 3, 3}, LLMK_ERR_OUT_OF_RANGE, "strictly ascending"},
      {{2, 8}, LLMK_ERR_OUT_OF_RANGE, "strictly ascending"},
      {{0, -1, 5}, LLMK_ERR_OUT_OF_RANGE, "padding"},
      {{-2}, LLMK_ERR_OUT_OF_RANGE, "padding"}};
  for (const auto& x : cases) {
    a.col_cap = static_cast<int64_t>(x.cols.size());
    a.columns = reinterpret_cast<int64_t>(x.cols.data());
    EXPECT(llmk_attn_forward_cpu(&a) == x.rc);
    EXPECT(std::strstr(llmk_last_error(), "columns") != nullptr && std::strstr(llmk_last_error(), x.needle) != nullptr);
  }
  a.col_cap = 2;
  a.columns = 0;
  EXPECT(llmk_attn_forward_cpu(&a) == LLMK_ERR_INVALID_ARGUMENT);
  EXPECT(std::strstr(llmk_last_error(), "col_cap") != nullptr);
  EXPECT(out[0] == 7.0f && lse[0] == 7.0f);  // nothing written by a rejected call
}

/* K and V rows at and past k_len[b] are not part of the input (an uninitialised KV cache may hold
 * NaN or Inf there): the output must be finite and equal, bit for bit, to the same problem with
 * zero padding, for every dtype. d 64, blocks 64 x 64, seq_k 128: k_len 100 cuts the second key
 * block (PARTIAL), 40 the first (the second is past the keys); ALL and bottom-right causal; a
 * second run adds token columns, some past k_len, beside a tile selection. */
void nan_kv_padding_cases(uint32_t seed) {
  const int64_t B = 2, Hq = 2, Hkv = 1, Sq = 64, Sk = 128, d = 64;
  const std::vector<int32_t> k_lens = {100, 40};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(B * Hq * Sq * d), k(B * Hkv * Sk * d), v(k.size());
  for (float& x : q) x = normal(rng);
  for (float& x : k) x = normal(rng);
  for (float& x : v) x = normal(rng);
  std::vector<float> k_zero = k, v_zero = v, k_bad = k, v_bad = v;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hkv; ++h)
      for (int64_t j = k_lens[b]; j < Sk; ++j)
        for (int64_t e = 0; e < d; ++e) {
          const int64_t i = ((b * Hkv + h) * Sk + j) * d + e;
          k_zero[i] = v_zero[i] = 0.0f;
          const bool odd = ((j + e) & 1) != 0;  // both NaN and +Inf in K and in V
          k_bad[i] = odd ? INFINITY : NAN;
          v_bad[i] = odd ? NAN : INFINITY;
        }
  for (int with_columns = 0; with_columns < 2; ++with_columns)
    for (const int64_t op : {LLMK_MASK_ALL, LLMK_MASK_CAUSAL}) {
      Case c{B, Hq, Hkv, Sq, Sk, d, 64, 64, {}, {64, 64}, k_lens};
      c.nodes = {leaf(op, 0, 1)};
      std::vector<int32_t> columns;  // [layout_batch = B, 1, col_cap]
      if (with_columns) {  // key block 0 listed, block 1 through columns (60..127, those past k_len too)
        c.selection = {1, 0, 1, 0};  // [B, 1, nqb 1, nkb 2]
        for (int32_t j = 60; j < Sk; j += 3) c.columns.push_back(j);
        c.columns.insert(c.columns.end(), 2, -1);
        for (int64_t b = 0; b < B; ++b) columns.insert(columns.end(), c.columns.begin(), c.columns.end());
      } else {
        run_case(c, seed + static_cast<uint32_t>(op));  // the geometry itself against the direct evaluation
      }
      Layout l;
      const llmk_layout_args la = build_layout(c, l);
      for (const int64_t dtype : {LLMK_F32, LLMK_F16, LLMK_BF16}) {
        const auto qb = encode(q, dtype), kz = encode(k_zero, dtype), vz = encode(v_zero, dtype);
        const auto kn = encode(k_bad, dtype), vn = encode(v_bad, dtype);
        const int64_t rows = B * Hq * Sq;
        std::vector<float> out_zero(rows * d, -1.0f), out_bad(rows * d, -2.0f), lse_zero(rows, -1.0f),
            lse_bad(rows, -2.0f);
        llmk_attn_args a = forward_args(c, la, dtype, columns);
        a.scale = 0.125;
        a.q = reinterpret_cast<int64_t>(qb.data());
        llmk_attn_args az = a, an = a;
        az.k = reinterpret_cast<int64_t>(kz.data());
        az.v = reinterpret_cast<int64_t>(vz.data());
        az.out = reinterpret_cast<int64_t>(out_zero.data());
        az.lse = reinterpret_cast<int64_t>(lse_zero.data());
        an.k = reinterpret_cast<int64_t>(kn.data());
        an.v = reinterpret_cast<int64_t>(vn.data());
        an.out = reinterpret_cast<int64_t>(out_bad.data());
        an.lse = reinterpret_cast<int64_t>(lse_bad.data());
        EXPECT(llmk_attn_forward_cpu(&az) == LLMK_OK);
        EXPECT(llmk_attn_forward_cpu(&an) == LLMK_OK);
        int64_t non_finite = 0, differ = 0;
        for (int64_t i = 0; i < rows * d; ++i) {
          non_finite += std::isfinite(out_bad[i]) ? 0 : 1;
          differ += std::memcmp(&out_bad[i], &out_zero[i], 4) != 0 ? 1 : 0;
        }
        for (int64_t i = 0; i < rows; ++i) differ += std::memcmp(&lse_bad[i], &lse_zero[i], 4) != 0 ? 1 : 0;
        EXPECT(non_finite == 0);
        EXPECT(differ == 0);
        if (non_finite != 0 || differ != 0) {
          std::fprintf(stderr, "  nan-kv-padding %s%s/%s: %ld non-finite outputs, %ld values differ from zero padding\n",
                       op == LLMK_MASK_ALL ? "all" : "causal", with_columns ? "+columns" : "",
                       dtype == LLMK_F32 ? "f32" : dtype == LLMK_F16 ? "f16" : "bf16", (long)non_finite, (long)differ);
        }
      }
    }
}

void run_all(uint32_t seed) {
  // sliding window (bottom-right aligned) OR sinks, GQA, ragged lengths, blocks smaller than
  // the kernel's sub-tiles and larger than them
  Case window{2, 4, 2, 97, 113, 40, 32, 48, {}, {}, {}};
  window.nodes = {leaf(LLMK_MASK_WINDOW, 0, 1, 20, 0), leaf(LLMK_MASK_SINKS, 0, 0, 5), leaf(LLMK_MASK_OR)};
  run_case(window, seed);
  Case big = window;
  big.Sq = 300; big.Sk = 300; big.d = 128; big.block_q = 256; big.block_k = 192; big.Hkv = 1;
  big.softcap = 5.0f;
  run_case(big, seed + 1);
  // causal with varlen: one batch has an empty query range, one has keys cut short
  Case var{2, 2, 2, 150, 150, 64, 64, 64, {}, {150, 0}, {90, 150}};
  var.nodes = {leaf(LLMK_MASK_CAUSAL, 0, 1)};
  run_case(var, seed + 2);
  // no mask but keys cut by a length inside a block: the cut block must not count as FULL
  Case cut{2, 2, 1, 70, 130, 32, 64, 64, {}, {70, 33}, {100, 7}};
  cut.nodes = {leaf(LLMK_MASK_ALL)};
  run_case(cut, seed + 4);
  // NOT(causal) leaves the first query row with no key at all
  Case anti{1, 1, 1, 65, 65, 16, 16, 16, {}, {}, {}};
  anti.nodes = {leaf(LLMK_MASK_CAUSAL, 0, 0), leaf(LLMK_MASK_NOT)};
  run_case(anti, seed + 3);
  run_column_cases(seed + 5);
  nan_kv_padding_cases(seed + 6);
}

}  // namespace

int main() {
  const char* variants[] = {"avx512", "avx2", "x86-64"};
  for (const char* v : variants) {
    if (!llmk_cpu_supports_variant(v)) continue;
    EXPECT(llmk_cpu_set_variant(v) == LLMK_OK);
    run_all(11);
  }
  bad_columns();
  // merge: halves of a state merge back; -inf + -inf gives 0 / -inf
  std::vector<float> oa = {1, 2, 0, 0}, ob = {3, 4, 0, 0}, out(4);
  std::vector<float> la = {0.0f, -INFINITY}, lb = {0.0f, -INFINITY}, lse(2);
  EXPECT(llmk_attn_merge_cpu(oa.data(), la.data(), ob.data(), lb.data(), out.data(), lse.data(), 2, 2, LLMK_F32) == 0);
  EXPECT(std::fabs(out[0] - 2.0f) < 1e-6f && std::fabs(out[1] - 3.0f) < 1e-6f);
  EXPECT(std::fabs(lse[0] - std::log(2.0f)) < 1e-6f && lse[1] == -INFINITY && out[2] == 0.0f && out[3] == 0.0f);
  if (failures) std::fprintf(stderr, "%d failure(s)\n", failures);
  else std::printf("attention CPU tests passed\n");
  return failures ? 1 : 0;
}
