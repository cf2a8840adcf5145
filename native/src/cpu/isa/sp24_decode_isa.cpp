/* Decode-shaped (N <= kSp24DecodeMaxN) products against a 2:4 or dense weight, compiled once per
 * instruction-set variant (see vec.h), and the metadata validity scan.
 *
 * With a few rows of X the product is bound by reading W, so W is streamed once, as stored, and
 * X (widened to fp32, [nx][k]) is what gets re-read: a K-block of X stays in L1 while the task's
 * rows go through it. Sparse: a chunk of 2 * kLanes kept values covers 4 * kLanes consecutive k;
 * their k positions come from the chunk's metadata bits (value j's 2-bit index at bit 2j) and the
 * X values are picked with two-register permutes (vpermt2ps on AVX-512), so a kept value costs a
 * permute lane and an FMA lane and no scalar work. Dense: the same loop without the permute. Each
 * (row, x row) pair accumulates a vector of partial sums, summed across lanes once per task. */
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cpu/isa/isa_kernels.h"
#include "cpu/isa/vec.h"
#include "llmk/llmk.h"

namespace llmk {
namespace LLMK_ISA_NS {
namespace {

constexpr int kChunkK = 4 * kLanes;          // k positions per sparse chunk (2 * kLanes kept values)
constexpr int kMetaBytesPerChunk = kChunkK / 8;  // 2 bits per kept value

/* The k span per K-block: the block of X (nx * kblock floats) stays in L1 while the task's rows go
 * through it. */
int64_t k_block(int64_t nx) {
  int64_t kb = (8192 / nx) / kChunkK * kChunkK;  // 32 KB of X
  kb = kb > 4096 ? 4096 : kb;  // two rows of widened W (dense) fit the scratch's 8192 floats
  return kb < kChunkK ? kChunkK : kb;
}

/* Lane l of a chunk half reads k offset 4 * (l / 2) + its 2-bit index. */
inline vi pair_base() {
  vi v;
  for (int l = 0; l < kLanes; ++l) v[l] = 4 * (l / 2);
  return v;
}
inline vi two_bit_shifts() {
  vi v;
  for (int l = 0; l < kLanes; ++l) v[l] = 2 * l;
  return v;
}

/* acc[r * nx + n] += the kept values of row r (r < R) times x row n (n < NB), over `chunks`
 * chunks: x rows at stride ldx, v[r] the row's kept values (fp32), meta[r] its metadata bits.
 * R = 2 rows share each load of X (the loads, not the FMAs, bind this loop). */
template <int R, int NB>
inline void sparse_chunks(const float* x, int64_t ldx, const float* const* v, const unsigned char* const* meta,
                          int64_t chunks, vf* acc_out, int64_t nx) {
  vf lo_acc[R][NB], hi_acc[R][NB];  // two chains per pair: an FMA's latency would bind N = 1
  for (int r = 0; r < R; ++r)
    for (int n = 0; n < NB; ++n) {
      lo_acc[r][n] = acc_out[r * nx + n];
      hi_acc[r][n] = vf{};
    }
  const vi base = pair_base(), shifts = two_bit_shifts();
  const uint64_t half_mask = (uint64_t{1} << (2 * kLanes)) - 1;  // 2 * kLanes <= 32 bits
  for (int64_t c = 0; c < chunks; ++c) {
    vi lo[R], hi[R];
    vf v_lo[R], v_hi[R];
    for (int r = 0; r < R; ++r) {
      uint64_t bits = 0;
      std::memcpy(&bits, meta[r] + c * kMetaBytesPerChunk, kMetaBytesPerChunk);
      lo[r] = base + ((vi{} + static_cast<int32_t>(bits & half_mask)) >> shifts & 3);
      hi[r] = base + ((vi{} + static_cast<int32_t>((bits >> (2 * kLanes)) & half_mask)) >> shifts & 3);
      v_lo[r] = load(v[r] + c * 2 * kLanes);
      v_hi[r] = load(v[r] + c * 2 * kLanes + kLanes);
    }
#pragma GCC unroll 8
    for (int n = 0; n < NB; ++n) {
      const float* xn = x + n * ldx + c * kChunkK;
      const vf x0 = load(xn), x1 = load(xn + kLanes), x2 = load(xn + 2 * kLanes), x3 = load(xn + 3 * kLanes);
      for (int r = 0; r < R; ++r) {
        lo_acc[r][n] += v_lo[r] * __builtin_shuffle(x0, x1, lo[r]);
        hi_acc[r][n] += v_hi[r] * __builtin_shuffle(x2, x3, hi[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int n = 0; n < NB; ++n) acc_out[r * nx + n] = lo_acc[r][n] + hi_acc[r][n];
}

/* acc[r * nx + n] += w[r][0:len] . x[n][0:len] (len a multiple of 2 * kLanes), R rows sharing
 * each load of X. */
template <int R, int NB>
inline void dense_span(const float* x, int64_t ldx, const float* const* w, int64_t len, vf* acc_out, int64_t nx) {
  vf even[R][NB], odd[R][NB];
  for (int r = 0; r < R; ++r)
    for (int n = 0; n < NB; ++n) {
      even[r][n] = acc_out[r * nx + n];
      odd[r][n] = vf{};
    }
  for (int64_t i = 0; i < len; i += 2 * kLanes) {
    vf w0[R], w1[R];
    for (int r = 0; r < R; ++r) {
      w0[r] = load(w[r] + i);
      w1[r] = load(w[r] + i + kLanes);
    }
#pragma GCC unroll 8
    for (int n = 0; n < NB; ++n) {
      const vf x0 = load(x + n * ldx + i), x1 = load(x + n * ldx + i + kLanes);
      for (int r = 0; r < R; ++r) {
        even[r][n] += w0[r] * x0;
        odd[r][n] += w1[r] * x1;
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int n = 0; n < NB; ++n) acc_out[r * nx + n] = even[r][n] + odd[r][n];
}

/* X rows per block: with two W rows, 4 on AVX-512 (16 accumulators of 32 registers) and 2 on
 * narrower vectors (16 registers: 8 accumulators plus the pair's indices, values and X); alone, twice
 * that. */
constexpr int kPairRowsOfX = kLanes >= 16 ? 4 : 2;
constexpr int kSingleRowsOfX = 2 * kPairRowsOfX;

/* fn(i, n0, R, NB) over the blocks of one pair of W rows (i: the first row's offset in the pair):
 * both rows with kPairRowsOfX x rows at a time, or row by row for the last odd row or when nx is
 * below kPairRowsOfX. */
template <typename Fn>
inline void for_blocks(int64_t rows_left, int64_t nx, Fn&& fn) {
  using std::integral_constant;
  using One = integral_constant<int, 1>;
  using Two = integral_constant<int, 2>;
  if (rows_left >= 2 && nx >= kPairRowsOfX) {
    int64_t n0 = 0;
    for (; n0 + kPairRowsOfX <= nx; n0 += kPairRowsOfX) fn(0, n0, Two{}, integral_constant<int, kPairRowsOfX>{});
    if (kPairRowsOfX > 2 && nx - n0 >= 2) { fn(0, n0, Two{}, Two{}); n0 += 2; }
    if (nx - n0 == 1) fn(0, n0, Two{}, One{});
    return;
  }
  for (int64_t i = 0; i < 2 && i < rows_left; ++i) {
    int64_t n0 = 0;
    for (; n0 + kSingleRowsOfX <= nx; n0 += kSingleRowsOfX) fn(i, n0, One{}, integral_constant<int, kSingleRowsOfX>{});
    if (kSingleRowsOfX > 4 && nx - n0 >= 4) { fn(i, n0, One{}, integral_constant<int, 4>{}); n0 += 4; }
    if (nx - n0 >= 2) { fn(i, n0, One{}, Two{}); n0 += 2; }
    if (nx - n0 == 1) fn(i, n0, One{}, One{});
  }
}

void widen_values(const void* src, int32_t dtype, int64_t n, float* dst) {
  if (dtype == LLMK_F32) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  else if (dtype == LLMK_BF16) bf16_to_f32(static_cast<const uint16_t*>(src), dst, n);
  else f16_to_f32(static_cast<const uint16_t*>(src), dst, n);
}

/* Rows of W are 4 KB or more apart, so a K-block's segments of consecutive rows lie on different
 * pages and the hardware streamer does not fetch ahead: the segment kPrefetchRows rows ahead is
 * requested while this one computes. */
constexpr int64_t kPrefetchRows = 4;
inline void prefetch_span(const unsigned char* p, int64_t bytes) {
  for (int64_t i = 0; i < bytes; i += 64) __builtin_prefetch(p + i);
}

inline float lane_sum(vf v) {
  float s = 0.0f;
  for (int l = 0; l < kLanes; ++l) s += v[l];
  return s;
}

/* out[r * nx + n] = the lane sums of acc[(r * nx + n)]. */
void reduce_out(const vf* acc, int64_t rows, int64_t nx, float* out) {
  for (int64_t i = 0; i < rows * nx; ++i) out[i] = lane_sum(acc[i]);
}

}  // namespace

void sp24_decode_rows(const float* x, int64_t nx, int64_t ldx, const void* vals, const uint16_t* meta, int64_t k, int64_t rows,
                      int32_t dtype, float* scratch, float* out) {
  const int64_t eb = dtype == LLMK_F32 ? 4 : 2, kb = k_block(nx), whole = k / kChunkK * kChunkK;
  vf* acc = reinterpret_cast<vf*>(scratch);  // [rows][nx] vectors (scratch is 64-byte aligned)
  float* v = scratch + rows * nx * kLanes;   // two rows' kept values of a K-block, fp32
  std::memset(acc, 0, static_cast<size_t>(rows * nx) * sizeof(vf));
  const auto* vbytes = static_cast<const unsigned char*>(vals);
  const auto* mbytes = reinterpret_cast<const unsigned char*>(meta);
  for (int64_t k0 = 0; k0 < whole; k0 += kb) {
    const int64_t span = whole - k0 < kb ? whole - k0 : kb, chunks = span / kChunkK;
    for (int64_t r = 0; r < rows; r += 2) {
      const float* vr[2] = {v, v + span / 2};
      const unsigned char* mr[2] = {mbytes + r * (k / 8) + k0 / 8,
                                    mbytes + (r + 1 < rows ? r + 1 : r) * (k / 8) + k0 / 8};
      for (int64_t i = 0; i < 2 && r + i < rows; ++i) {
        widen_values(vbytes + ((r + i) * (k / 2) + k0 / 2) * eb, dtype, span / 2, v + i * (span / 2));
        if (r + i + kPrefetchRows < rows) {
          prefetch_span(vbytes + ((r + i + kPrefetchRows) * (k / 2) + k0 / 2) * eb, span / 2 * eb);
          prefetch_span(mbytes + (r + i + kPrefetchRows) * (k / 8) + k0 / 8, span / 8);
        }
      }
      for_blocks(rows - r, nx, [&](int64_t i, int64_t n0, auto rr, auto nb) {
        sparse_chunks<decltype(rr)::value, decltype(nb)::value>(x + n0 * ldx + k0, ldx, vr + i, mr + i, chunks,
                                                                 acc + (r + i) * nx + n0, nx);
      });
    }
  }
  reduce_out(acc, rows, nx, out);
  if (whole == k) return;
  for (int64_t r = 0; r < rows; ++r) {  // k past the last whole chunk (k % kChunkK, a multiple of 16): scalar
    widen_values(vbytes + (r * (k / 2) + whole / 2) * eb, dtype, (k - whole) / 2, v);
    for (int64_t g = whole / 4; g < k / 4; ++g) {
      const uint32_t code = (static_cast<uint32_t>(meta[r * (k / 16) + g / 4]) >> ((g % 4) * 4)) & 15u;
      const float v0 = v[2 * (g - whole / 4)], v1 = v[2 * (g - whole / 4) + 1];
      for (int64_t n = 0; n < nx; ++n)
        out[r * nx + n] += v0 * x[n * ldx + 4 * g + (code & 3u)] + v1 * x[n * ldx + 4 * g + (code >> 2)];
    }
  }
}

void dense_decode_rows(const float* x, int64_t nx, int64_t ldx, const void* w, int64_t k, int64_t rows, int32_t dtype,
                       float* scratch, float* out) {
  const int64_t eb = dtype == LLMK_F32 ? 4 : 2, kb = k_block(nx), whole = k / (2 * kLanes) * (2 * kLanes);
  vf* acc = reinterpret_cast<vf*>(scratch);
  float* wf = scratch + rows * nx * kLanes;
  std::memset(acc, 0, static_cast<size_t>(rows * nx) * sizeof(vf));
  const auto* wbytes = static_cast<const unsigned char*>(w);
  for (int64_t k0 = 0; k0 < whole; k0 += kb) {
    const int64_t span = whole - k0 < kb ? whole - k0 : kb;
    for (int64_t r = 0; r < rows; r += 2) {
      const float* wr[2] = {wf, wf + span};
      for (int64_t i = 0; i < 2 && r + i < rows; ++i) {
        widen_values(wbytes + ((r + i) * k + k0) * eb, dtype, span, wf + i * span);
        if (r + i + kPrefetchRows < rows) prefetch_span(wbytes + ((r + i + kPrefetchRows) * k + k0) * eb, span * eb);
      }
      for_blocks(rows - r, nx, [&](int64_t i, int64_t n0, auto rr, auto nb) {
        dense_span<decltype(rr)::value, decltype(nb)::value>(x + n0 * ldx + k0, ldx, wr + i, span,
                                                             acc + (r + i) * nx + n0, nx);
      });
    }
  }
  reduce_out(acc, rows, nx, out);
  if (whole == k) return;
  for (int64_t r = 0; r < rows; ++r) {
    widen_values(wbytes + (r * k + whole) * eb, dtype, k - whole, wf);
    for (int64_t n = 0; n < nx; ++n)
      for (int64_t i = whole; i < k; ++i) out[r * nx + n] += wf[i - whole] * x[n * ldx + i];
  }
}

bool sp24_meta_valid(const uint16_t* meta, int64_t words) {
  /* Each nibble (idx1 << 2 | idx0) must have idx0 < idx1: d = (idx1 + 4) - idx0 is in [1, 7] per
   * nibble (no borrow crosses nibbles) and is >= 5 exactly when valid: bit 2 set and bits 0-1 not
   * both clear. An OR over all words of the invalid flags; vectorised by the compiler. */
  uint16_t bad = 0;
  for (int64_t i = 0; i < words; ++i) {
    const uint16_t w = meta[i];
    const uint16_t d = static_cast<uint16_t>(((w >> 2) & 0x3333u) + 0x4444u - (w & 0x3333u));
    bad |= static_cast<uint16_t>(~((d >> 2) & (d | (d >> 1))) & 0x1111u);
  }
  return bad == 0;
}

}  // namespace LLMK_ISA_NS
}  // namespace llmk
