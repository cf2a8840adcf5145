/* Tile kernels of block-sparse attention, compiled once per instruction-set variant (see vec.h).
 * The GEMMs reuse the cut cross-entropy's tiles (cce_pack_panel / cce_logits for S = Q K^T,
 * cce_gemm_acc for O += P V); this file holds the online-softmax step between them.
 *
 * Score tile s [rows, lds], fp32, `cols` valid columns; masked entries are -inf. */
#include <cmath>
#include <cstdint>

#include "cpu/isa/isa_kernels.h"
#include "cpu/isa/vec.h"

namespace llmk {
namespace LLMK_ISA_NS {

void attn_tile_softmax(float* s, int64_t lds, int64_t rows, int64_t cols, float softcap, float* row_max,
                       float* row_sum, float* alpha) {
  const float neg_inf = -INFINITY;
  const vf vneg_inf = splat(neg_inf);
  const vi lanes = lane_index();
  for (int64_t r = 0; r < rows; ++r) {
    float* sr = s + r * lds;
    /* softcap (finite entries only: a masked -inf stays -inf) and the row maximum */
    vf vmax = vneg_inf;
    for (int64_t j = 0; j < cols; j += kLanes) {
      vf x = load(sr + j);
      const vi live = lanes < static_cast<int32_t>(cols - j);
      x = live ? x : vneg_inf;
      if (softcap > 0.0f) {
        const vf capped = vtanh(x * (1.0f / softcap)) * softcap;
        x = x == vneg_inf ? x : capped;
      }
      store(sr + j, x);
      vmax = x > vmax ? x : vmax;
    }
    float m_tile = neg_inf;
    for (int l = 0; l < kLanes; ++l) m_tile = vmax[l] > m_tile ? vmax[l] : m_tile;
    const float m_old = row_max[r];
    const float m_new = m_tile > m_old ? m_tile : m_old;
    if (m_new == neg_inf) { /* nothing visible yet: p = 0, state unchanged */
      for (int64_t j = 0; j < cols; j += kLanes) store(sr + j, vf{});
      alpha[r] = 1.0f;
      continue;
    }
    const float a = m_old == neg_inf ? 0.0f : sexp(m_old - m_new);
    vf vsum = vf{};
    const vf vm = splat(m_new);
    for (int64_t j = 0; j < cols; j += kLanes) {
      const vf x = load(sr + j);
      vf p = vexp(x - vm);
      p = x == vneg_inf ? vf{} : p;  /* exact zeros for masked keys (vexp floors at ~1e-38) */
      store(sr + j, p);
      vsum += p;
    }
    float sum = 0.0f;
    for (int l = 0; l < kLanes; ++l) sum += vsum[l];
    row_sum[r] = row_sum[r] * a + sum;
    row_max[r] = m_new;
    alpha[r] = a;
  }
}

void attn_scale_rows(float* acc, int64_t ld, int64_t rows, int64_t d, const float* alpha) {
  for (int64_t r = 0; r < rows; ++r) {
    if (alpha[r] == 1.0f) continue;
    float* ar = acc + r * ld;
    const vf va = splat(alpha[r]);
    int64_t j = 0;
    for (; j + kLanes <= d; j += kLanes) store(ar + j, load(ar + j) * va);
    for (; j < d; ++j) ar[j] *= alpha[r];
  }
}

void small_logits(const float* q, int64_t rows, int64_t d, const float* k, int64_t cols, float* s, int64_t lds) {
  /* Few query rows (decode, TOVA): packing K into panels would cost more than the dot products.
   * Keys are read once, straight from their rows; partial sums stay in vector registers. */
  constexpr int kMaxRows = 8;
  for (int64_t c = 0; c < cols; ++c) {
    const float* kc = k + c * d;
    vf acc[kMaxRows];
    for (int64_t r = 0; r < rows; ++r) acc[r] = vf{};
    int64_t j = 0;
    for (; j + kLanes <= d; j += kLanes) {
      const vf kv = load(kc + j);
      for (int64_t r = 0; r < rows; ++r) acc[r] += load(q + r * d + j) * kv;
    }
    for (int64_t r = 0; r < rows; ++r) {
      float dot = 0.0f;
      for (int l = 0; l < kLanes; ++l) dot += acc[r][l];
      for (int64_t t = j; t < d; ++t) dot += q[r * d + t] * kc[t];
      s[r * lds + c] = dot;
    }
  }
}

void row_neg_norms(const float* x, int64_t rows, int64_t d, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    vf acc0 = vf{}, acc1 = vf{};
    int64_t j = 0;
    for (; j + 2 * kLanes <= d; j += 2 * kLanes) {
      const vf a = load(xr + j), b = load(xr + j + kLanes);
      acc0 += a * a;
      acc1 += b * b;
    }
    for (; j + kLanes <= d; j += kLanes) {
      const vf a = load(xr + j);
      acc0 += a * a;
    }
    acc0 += acc1;
    float ss = 0.0f;
    for (int l = 0; l < kLanes; ++l) ss += acc0[l];
    for (; j < d; ++j) ss += xr[j] * xr[j];
    out[r] = -std::sqrt(ss);
  }
}

}  // namespace LLMK_ISA_NS
}  // namespace llmk
