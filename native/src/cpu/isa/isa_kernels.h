/* Kernels that exist once per CPU variant. Declared for every variant namespace; the
 * dispatcher (cpu/isa_dispatch.cpp) picks one table at load time. */
#ifndef LLMK_ISA_KERNELS_H
#define LLMK_ISA_KERNELS_H

#include <cstdint>

namespace llmk {
/* Cut cross-entropy: columns per panel strip (a multiple of every variant's micro-kernel width). */
constexpr int64_t kCcePanelCols = 32;
/* Per-row inputs of cce_tile_backward, indexed by the tile's row. */
struct CceTileRows {
  const float* lse;          // whole-vocabulary log-sum-exp
  const float* a;            // multiplies p
  const float* b;            // subtracted at the target column
  const float* u;            // label smoothing's uniform term (applied exactly outside the tiles; with a
                             // softcap the tile holds the remainder +u t^2)
  const float* threshold;    // filter: the row matters if some |g| >= threshold (0: always)
  const int64_t* target_col; // target's column in this tile, or -1
};
}  // namespace llmk

#define LLMK_DECLARE_ISA_KERNELS(ns)                                 \
  namespace llmk {                                                   \
  namespace ns {                                                     \
  void f32_to_f16(const float* src, uint16_t* dst, int64_t n);       \
  void f16_to_f32(const uint16_t* src, float* dst, int64_t n);       \
  void f32_to_bf16(const float* src, uint16_t* dst, int64_t n);      \
  void bf16_to_f32(const uint16_t* src, float* dst, int64_t n);      \
  void copy_row_streaming(const unsigned char* src, unsigned char* dst, int64_t bytes); \
  void store_fence();                                                \
  void cce_pack_panel(const float* c, int64_t bv, int64_t d, float* panel); \
  void cce_logits(const float* e, int64_t rows, int64_t d, const float* panel, int64_t bv, float* s, int64_t lds); \
  void cce_gemm_acc(float* out, int64_t ldo, const float* coef, int64_t ldc, int64_t rows, int64_t inner, \
                    const float* src, int64_t d);                    \
  void cce_tile_forward(float* s, int64_t lds, int64_t rows, int64_t bv, const float* bias, float softcap, \
                        float* row_max, float* row_sumexp, float* row_sumz); \
  void cce_tile_backward(float* s, int64_t lds, int64_t rows, int64_t bv, const float* bias, float softcap, \
                         const CceTileRows& rp, uint8_t* row_keep);  \
  void attn_tile_softmax(float* s, int64_t lds, int64_t rows, int64_t cols, float softcap, float* row_max, \
                         float* row_sum, float* alpha);              \
  void attn_scale_rows(float* acc, int64_t ld, int64_t rows, int64_t d, const float* alpha); \
  void row_neg_norms(const float* x, int64_t rows, int64_t d, float* out); \
  void small_logits(const float* q, int64_t rows, int64_t d, const float* k, int64_t cols, float* s, int64_t lds); \
  void sp24_panel_rows(const float* xt, const void* vals, const uint16_t* meta, int64_t k, int64_t rows, \
                       int32_t dtype, float* acc);                          \
  void sp24_decode_rows(const float* x, int64_t nx, int64_t ldx, const void* vals, const uint16_t* meta, \
                        int64_t k, int64_t rows, int32_t dtype, float* scratch, float* out); \
  void dense_decode_rows(const float* x, int64_t nx, int64_t ldx, const void* w, int64_t k, int64_t rows, \
                         int32_t dtype, float* scratch, float* out);        \
  bool sp24_meta_valid(const uint16_t* meta, int64_t words);         \
  }                                                                  \
  }

LLMK_DECLARE_ISA_KERNELS(x86_64)
LLMK_DECLARE_ISA_KERNELS(avx2)
LLMK_DECLARE_ISA_KERNELS(avx512)

namespace llmk {
/* One variant's kernels; fields mirror LLMK_DECLARE_ISA_KERNELS. */
struct IsaKernels {
  const char* name;
  void (*f32_to_f16)(const float*, uint16_t*, int64_t);
  void (*f16_to_f32)(const uint16_t*, float*, int64_t);
  void (*f32_to_bf16)(const float*, uint16_t*, int64_t);
  void (*bf16_to_f32)(const uint16_t*, float*, int64_t);
  /* Copy with non-temporal stores (whole vectors where dst is aligned); follow with store_fence. */
  void (*copy_row_streaming)(const unsigned char*, unsigned char*, int64_t);
  void (*store_fence)();
  /* CCE tiles (cpu/isa/cce_isa.cpp). Panel: C block [bv, d] -> strips [bv/32][d][32], zero-padded. */
  void (*cce_pack_panel)(const float* c, int64_t bv, int64_t d, float* panel);
  /* s[r, j] = e[r, :] . c[j, :] for r < rows, j < round_up(bv, 32); e [rows, d], s row stride lds. */
  void (*cce_logits)(const float* e, int64_t rows, int64_t d, const float* panel, int64_t bv, float* s, int64_t lds);
  /* out[r, :d] += sum_m coef[r, m] * src[m, :d]   (r < rows, m < inner; src row stride d). */
  void (*cce_gemm_acc)(float* out, int64_t ldo, const float* coef, int64_t ldc, int64_t rows, int64_t inner,
                       const float* src, int64_t d);
  /* Adds bias, applies softcap (in place), and writes each row's max, sum exp(z - max), sum z. */
  void (*cce_tile_forward)(float* s, int64_t lds, int64_t rows, int64_t bv, const float* bias, float softcap,
                           float* row_max, float* row_sumexp, float* row_sumz);
  /* Turns raw logits into gradients g (softcap chain rule included), in place; row_keep[r] = 1
   * when some |g| in row r reaches the row's filter threshold. */
  void (*cce_tile_backward)(float* s, int64_t lds, int64_t rows, int64_t bv, const float* bias, float softcap,
                            const CceTileRows& rp, uint8_t* row_keep);
  /* Attention (cpu/isa/attention_isa.cpp): one online-softmax step over a score tile s [rows, lds]
   * with `cols` valid columns (masked entries -inf): softcap on finite entries, then per row
   * m' = max(m, max_j s), alpha = exp(m - m') (1 while nothing is visible), s <- exp(s - m')
   * (0 where masked), l = l * alpha + sum; row_max/row_sum updated in place. */
  void (*attn_tile_softmax)(float* s, int64_t lds, int64_t rows, int64_t cols, float softcap, float* row_max,
                            float* row_sum, float* alpha);
  /* acc[r, :d] *= alpha[r] (rows with alpha 1 untouched). */
  void (*attn_scale_rows)(float* acc, int64_t ld, int64_t rows, int64_t d, const float* alpha);
  /* out[r] = -||x[r, :d]||_2 (KNorm scores). */
  void (*row_neg_norms)(const float* x, int64_t rows, int64_t d, float* out);
  /* s[r, c] = q[r, :d] . k[c, :d] for r < rows <= kSmallLogitRows, c < cols (keys row-major, no
   * panel): the logit step of decode attention and few-query scoring. */
  void (*small_logits)(const float* q, int64_t rows, int64_t d, const float* k, int64_t cols, float* s, int64_t lds);
  /* 2:4 GEMM (cpu/isa/sp24_isa.cpp): acc[r, 0:width] = sum over the kept positions of row r
   * (values [rows, k/2] of dtype, meta [rows, k/16] as stored) of value * xt[k_kept][0:width], xt a
   * transposed panel [k][kSp24Panel] of X. */
  void (*sp24_panel_rows)(const float* xt, const void* vals, const uint16_t* meta, int64_t k, int64_t rows,
                          int32_t dtype, float* acc);
  /* Decode shapes (cpu/isa/sp24_decode_isa.cpp), nx <= kSp24DecodeMaxN rows of X (fp32 [nx][ldx]),
   * rows <= kSp24DecodeRows rows of W: out[r * nx + n] = W[r] . x[n], W 2:4 (values [rows, k/2]
   * and meta [rows, k/16] as stored) or dense ([rows, k]) of dtype; scratch: kSp24DecodeScratch
   * floats, 64-byte aligned. */
  void (*sp24_decode_rows)(const float* x, int64_t nx, int64_t ldx, const void* vals, const uint16_t* meta,
                           int64_t k, int64_t rows, int32_t dtype, float* scratch, float* out);
  void (*dense_decode_rows)(const float* x, int64_t nx, int64_t ldx, const void* w, int64_t k, int64_t rows,
                            int32_t dtype, float* scratch, float* out);
  /* True when every metadata nibble of meta[0:words] has idx0 < idx1. */
  bool (*sp24_meta_valid)(const uint16_t* meta, int64_t words);
};
/* 2:4 sparse GEMM: X rows per transposed panel (a multiple of every variant's vector width). */
constexpr int64_t kSp24Panel = 128;
/* Up to this many rows of X the matmuls take the decode kernels (bound by reading W once). */
constexpr int64_t kSp24DecodeMaxN = 16;
constexpr int64_t kSp24DecodeRows = 32;
constexpr int64_t kSp24DecodeScratch = kSp24DecodeRows * kSp24DecodeMaxN * 16 + 8192;
/* Query rows up to which small_logits beats packing K for cce_logits. */
constexpr int64_t kSmallLogitRows = 8;
/* The variant in use (chosen at load time, changeable by llmk_cpu_set_variant). */
const IsaKernels& isa();
}  // namespace llmk
#endif
