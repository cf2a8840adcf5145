/* Tile kernels of the cut cross-entropy, compiled once per instruction-set variant. Written with
 * GCC vector extensions so that one source gives 512-, 256- and 128-bit code; this file is
 * compiled with -ffp-contract=fast so that `acc += x * v` becomes a fused multiply-add.
 *
 * Layouts (all fp32):
 *   E rows   [rows, d] row-major (the chunk of valid rows, converted once per chunk)
 *   C block  [bv, d] row-major ("natural"), and a panel: strips of kCcePanelCols columns,
 *            [strip][d][kCcePanelCols], zero-padded past bv, for the logit GEMM's broadcast loop
 *   S tile   [rows, lds] logits, then (backward) gradients, in place */
#include <cstdint>
#include <cstring>

#include "cpu/isa/isa_kernels.h"
#include "cpu/isa/vec.h"

namespace llmk {
namespace LLMK_ISA_NS {
namespace {

// Register tiles: M rows x kVecs vectors of accumulators. With 32 vector registers (AVX-512)
// 6 x 4 = 24 accumulators, so each loaded vector feeds 6 FMAs and each broadcast 4; with 16
// (AVX2, SSE) 4 x 3 = 12.
#if defined(__AVX512F__)
constexpr int kTileRows = 6;
constexpr int kVecs = 4;
#else
constexpr int kTileRows = 4;
constexpr int kVecs = 3;
#endif
constexpr int64_t kBlockK = 128;      // k-block: a panel slice (kBlockK x kVecs vectors) stays in L1
constexpr int64_t kBlockInner = 256;  // inner block of gemm_acc (see cce_gemm_acc)

/* S[r, cols of the kVecs vectors] (+)= E[r, k0 .. k0 + kc) . panel, for M rows; col[v] points at
 * vector v's column group in the panel at k0 (row stride kCcePanelCols). */
template <int M, int V>
inline void logit_micro(const float* e, int64_t lde, int64_t kc, const float* const* col, float* s, int64_t lds,
                        const int64_t* s_col, bool accumulate) {
  vf acc[M][V];
  for (int r = 0; r < M; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = accumulate ? load(s + r * lds + s_col[v]) : vf{};
  for (int64_t k = 0; k < kc; ++k) {
    vf c[V];
    for (int v = 0; v < V; ++v) c[v] = load(col[v] + k * kCcePanelCols);
    for (int r = 0; r < M; ++r) {
      const float x = e[r * lde + k];
      for (int v = 0; v < V; ++v) acc[r][v] += x * c[v];
    }
  }
  for (int r = 0; r < M; ++r)
    for (int v = 0; v < V; ++v) store(s + r * lds + s_col[v], acc[r][v]);
}

/* All rows for one group of V vectors (columns), k-block [k0, k0 + kc). */
template <int V>
void logit_rows(const float* e, int64_t rows, int64_t d, int64_t k0, int64_t kc, const float* const* col,
                float* s, int64_t lds, const int64_t* s_col) {
  const bool acc = k0 > 0;
  int64_t r = 0;
  for (; r + kTileRows <= rows; r += kTileRows) {
    logit_micro<kTileRows, V>(e + r * d + k0, d, kc, col, s + r * lds, lds, s_col, acc);
  }
  const float* er = e + r * d + k0;
  float* sr = s + r * lds;
  switch (rows - r) {
    case 5: logit_micro<5, V>(er, d, kc, col, sr, lds, s_col, acc); break;
    case 4: logit_micro<4, V>(er, d, kc, col, sr, lds, s_col, acc); break;
    case 3: logit_micro<3, V>(er, d, kc, col, sr, lds, s_col, acc); break;
    case 2: logit_micro<2, V>(er, d, kc, col, sr, lds, s_col, acc); break;
    case 1: logit_micro<1, V>(er, d, kc, col, sr, lds, s_col, acc); break;
    default: break;
  }
}

/* out[r, k .. k + Q*kLanes) += sum_m coef[r, m] * src[m, k ..], for R rows. */
template <int R, int Q>
inline void gemm_acc_micro(float* out, int64_t ldo, const float* coef, int64_t ldc, int64_t inner, const float* src,
                           int64_t lds) {
  vf acc[R][Q];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < Q; ++q) acc[r][q] = load(out + r * ldo + q * kLanes);
  for (int64_t m = 0; m < inner; ++m) {
    vf v[Q];
    for (int q = 0; q < Q; ++q) v[q] = load(src + m * lds + q * kLanes);
    for (int r = 0; r < R; ++r) {
      const float g = coef[r * ldc + m];
      for (int q = 0; q < Q; ++q) acc[r][q] += g * v[q];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < Q; ++q) store(out + r * ldo + q * kLanes, acc[r][q]);
}

/* Columns [k, k + Q*kLanes) of out for every row; the src slice (inner x Q vectors) stays in L1
 * across row groups. */
template <int Q>
void gemm_acc_columns(float* out, int64_t ldo, const float* coef, int64_t ldc, int64_t rows, int64_t inner,
                      const float* src, int64_t d) {
  int64_t r = 0;
  for (; r + kTileRows <= rows; r += kTileRows) {
    gemm_acc_micro<kTileRows, Q>(out + r * ldo, ldo, coef + r * ldc, ldc, inner, src, d);
  }
  float* o = out + r * ldo;
  const float* g = coef + r * ldc;
  switch (rows - r) {
    case 5: gemm_acc_micro<5, Q>(o, ldo, g, ldc, inner, src, d); break;
    case 4: gemm_acc_micro<4, Q>(o, ldo, g, ldc, inner, src, d); break;
    case 3: gemm_acc_micro<3, Q>(o, ldo, g, ldc, inner, src, d); break;
    case 2: gemm_acc_micro<2, Q>(o, ldo, g, ldc, inner, src, d); break;
    case 1: gemm_acc_micro<1, Q>(o, ldo, g, ldc, inner, src, d); break;
    default: break;
  }
}

}  // namespace

void cce_pack_panel(const float* c, int64_t bv, int64_t d, float* panel) {
  const int64_t strips = (bv + kCcePanelCols - 1) / kCcePanelCols;
  for (int64_t st = 0; st < strips; ++st) {
    float* dst = panel + st * d * kCcePanelCols;
    const int64_t j0 = st * kCcePanelCols;
    const int64_t cols = bv - j0 < kCcePanelCols ? bv - j0 : kCcePanelCols;
    // Row by row: sequential reads; the strided writes stay inside one strip (d x 128 bytes).
    for (int64_t j = 0; j < kCcePanelCols; ++j) {
      const float* row = c + (j0 + j) * d;
      if (j < cols) {
        for (int64_t k = 0; k < d; ++k) dst[k * kCcePanelCols + j] = row[k];
      } else {
        for (int64_t k = 0; k < d; ++k) dst[k * kCcePanelCols + j] = 0.0f;
      }
    }
  }
}

void cce_logits(const float* e, int64_t rows, int64_t d, const float* panel, int64_t bv, float* s, int64_t lds) {
  // Columns in groups of kVecs vectors (the last group narrower), each vector inside one strip.
  const int64_t cols = (bv + kCcePanelCols - 1) / kCcePanelCols * kCcePanelCols;
  for (int64_t k0 = 0; k0 < d; k0 += kBlockK) {
    const int64_t kc = d - k0 < kBlockK ? d - k0 : kBlockK;
    for (int64_t c0 = 0; c0 < cols; c0 += kVecs * kLanes) {
      const float* col[kVecs];
      int64_t s_col[kVecs];
      int vecs = 0;
      for (; vecs < kVecs && c0 + vecs * kLanes < cols; ++vecs) {
        const int64_t c = c0 + vecs * kLanes;
        col[vecs] = panel + (c / kCcePanelCols) * d * kCcePanelCols + k0 * kCcePanelCols + c % kCcePanelCols;
        s_col[vecs] = c;
      }
      switch (vecs) {
        case 4: logit_rows<4>(e, rows, d, k0, kc, col, s, lds, s_col); break;
        case 3: logit_rows<3>(e, rows, d, k0, kc, col, s, lds, s_col); break;
        case 2: logit_rows<2>(e, rows, d, k0, kc, col, s, lds, s_col); break;
        case 1: logit_rows<1>(e, rows, d, k0, kc, col, s, lds, s_col); break;
        default: break;
      }
    }
  }
}

void cce_gemm_acc(float* out, int64_t ldo, const float* coef, int64_t ldc, int64_t rows, int64_t inner,
                  const float* src, int64_t d) {
  // Inner dimension in blocks, so that a src slice (block x kVecs vectors) stays in L1/L2 while
  // the row groups sweep over it; accumulators are reloaded once per block.
  for (int64_t m0 = 0; m0 < inner; m0 += kBlockInner) {
    const int64_t mb = inner - m0 < kBlockInner ? inner - m0 : kBlockInner;
    const float* c = coef + m0;
    const float* sr = src + m0 * d;
    int64_t k = 0;
    for (; k + kVecs * kLanes <= d; k += kVecs * kLanes) {
      gemm_acc_columns<kVecs>(out + k, ldo, c, ldc, rows, mb, sr + k, d);
    }
    for (; k + kLanes <= d; k += kLanes) gemm_acc_columns<1>(out + k, ldo, c, ldc, rows, mb, sr + k, d);
    for (; k < d; ++k) {  // columns past the last whole vector
      for (int64_t r = 0; r < rows; ++r) {
        float acc = out[r * ldo + k];
        for (int64_t m = 0; m < mb; ++m) acc += c[r * ldc + m] * sr[m * d + k];
        out[r * ldo + k] = acc;
      }
    }
  }
}

void cce_tile_forward(float* s, int64_t lds, int64_t rows, int64_t bv, const float* bias, float softcap,
                      float* row_max, float* row_sumexp, float* row_sumz) {
  const int64_t whole = bv / kLanes * kLanes;
  for (int64_t r = 0; r < rows; ++r) {
    float* z = s + r * lds;
    // Bias, then softcap, in place: S becomes the logits the loss sees.
    if (bias != nullptr || softcap > 0) {
      for (int64_t j = 0; j < bv; j += kLanes) {
        if (j < whole) {
          vf x = load(z + j);
          if (bias != nullptr) x += load(bias + j);
          if (softcap > 0) x = softcap * vtanh(x * (1.0f / softcap));
          store(z + j, x);
        } else {
          for (int64_t t = j; t < bv; ++t) {
            float x = z[t] + (bias != nullptr ? bias[t] : 0.0f);
            z[t] = softcap > 0 ? softcap * vtanh(splat(x * (1.0f / softcap)))[0] : x;
          }
        }
      }
    }
    vf vmax = splat(-__builtin_huge_valf());
    vf vsum = vf{};
    int64_t j = 0;
    for (; j < whole; j += kLanes) {
      const vf x = load(z + j);
      vmax = x > vmax ? x : vmax;
      vsum += x;
    }
    float m = -__builtin_huge_valf(), sz = 0.0f;
    for (int l = 0; l < kLanes; ++l) {
      m = vmax[l] > m ? vmax[l] : m;
      sz += vsum[l];
    }
    for (; j < bv; ++j) {
      m = z[j] > m ? z[j] : m;
      sz += z[j];
    }
    vf vexps = vf{};
    for (j = 0; j < whole; j += kLanes) vexps += vexp(load(z + j) - m);
    float se = 0.0f;
    for (int l = 0; l < kLanes; ++l) se += vexps[l];
    for (; j < bv; ++j) se += sexp(z[j] - m);
    row_max[r] = m;
    row_sumexp[r] = se;
    row_sumz[r] = sz;
  }
}

void cce_tile_backward(float* s, int64_t lds, int64_t rows, int64_t bv, const float* bias, float softcap,
                       const CceTileRows& rp, uint8_t* row_keep) {
  const int64_t whole = bv / kLanes * kLanes;
  const float inv_cap = softcap > 0 ? 1.0f / softcap : 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    float* z = s + r * lds;
    const float lse = rp.lse[r], a = rp.a[r], b = rp.b[r], u = rp.u[r], thr = rp.threshold[r];
    // The target column (if in this tile) also loses b: p_t * a - b, formed in fp32 from p_t
    // directly so that a confident row (p_t ~ 1) keeps its small, accurate gradient.
    const int32_t tc = static_cast<int32_t>(rp.target_col[r]);
    vf vflag = vf{};
    for (int64_t j = 0; j < bv; j += kLanes) {
      if (j < whole) {
        vf x = load(z + j);
        if (bias != nullptr) x += load(bias + j);
        vf dcap = splat(1.0f);
        if (softcap > 0) {
          const vf t = vtanh(x * inv_cap);
          x = softcap * t;
          dcap = 1.0f - t * t;
        }
        const vi col = lane_index() + static_cast<int32_t>(j);
        const vf bt = col == tc ? splat(b) : vf{};
        vf g = vexp(x - lse) * a - bt;
        // With a softcap, label smoothing's -u (applied exactly outside the tiles) becomes
        // -u (1 - t^2): the tile keeps the rest, +u t^2.
        if (softcap > 0) g = (g - u) * dcap + u;
        const vf ag = g < splat(0.0f) ? -g : g;
        vflag = ag >= thr ? splat(1.0f) : vflag;
        store(z + j, g);
      } else {
        for (int64_t t = j; t < bv; ++t) {
          float x = z[t] + (bias != nullptr ? bias[t] : 0.0f);
          float dcap = 1.0f;
          if (softcap > 0) {
            const float th = vtanh(splat(x * inv_cap))[0];
            x = softcap * th;
            dcap = 1.0f - th * th;
          }
          float g = sexp(x - lse) * a - (t == tc ? b : 0.0f);
          if (softcap > 0) g = (g - u) * dcap + u;
          if ((g < 0 ? -g : g) >= thr) vflag[0] = 1.0f;
          z[t] = g;
        }
      }
    }
    float any = 0.0f;
    for (int l = 0; l < kLanes; ++l) any = vflag[l] > any ? vflag[l] : any;
    row_keep[r] = any > 0.0f;
  }
}

}  // namespace LLMK_ISA_NS
}  // namespace llmk
