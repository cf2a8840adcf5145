/* 2:4 sparse GEMM tiles, compiled once per instruction-set variant (see vec.h).
 *
 * Y[n, m] = sum over kept positions j of row m of v[m, j] * X[n, k(m, j)], vectorised over n: X
 * is transposed into panels xt[k][kSp24Panel] (kSp24Panel consecutive rows of X per k), so a kept
 * value costs one broadcast and kSp24Panel / lanes vector loads of panel row k(m, j) and as many
 * FMAs. Values and metadata are read as stored (no repacked copy of W): the nibble decode and the
 * widening are scalar work on the integer ports, beside the FMAs. Every m row reads its own panel
 * rows, so the loop is bound by loads; it does half the FMAs of the dense product. */
#include <cstdint>
#include <cstring>

#include "cpu/isa/isa_kernels.h"
#include "cpu/isa/vec.h"
#include "llmk/half_bits.h"
#include "llmk/llmk.h"

namespace llmk {
namespace LLMK_ISA_NS {
namespace {

/* All lanes = x as one vbroadcastss: x - (+0) folds away exactly (IEEE: x - 0 == x, even for -0),
 * while splat()'s vf{} + x keeps a scalar add (+0 + -0 is +0) and a lane loop becomes masked
 * inserts. A broadcast per kept value is on the hot path here. */
inline vf broadcast(float x) { return x - vf{}; }

template <int Dtype>
inline float value_at(const void* vals, int64_t i) {
  if constexpr (Dtype == LLMK_F32) {
    return static_cast<const float*>(vals)[i];
  } else if constexpr (Dtype == LLMK_BF16) {
    return f32_from_bits(static_cast<uint32_t>(static_cast<const uint16_t*>(vals)[i]) << 16);
  } else {
    return f16_bits_to_f32(static_cast<const uint16_t*>(vals)[i]);
  }
}

/* R rows: acc[r] (Width floats each) += sum over groups [g0, g1) of the row's kept values; the
 * panel has Width floats per k. */
template <int R, int Width, int Dtype>
inline void sp24_rows(const float* xt, const void* vals, const uint16_t* meta, int64_t k, int64_t g0, int64_t g1,
                      float* acc_out) {
  constexpr int kVecsPerPanel = Width / kLanes;
  vf acc[R][kVecsPerPanel];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < kVecsPerPanel; ++c) acc[r][c] = load(acc_out + r * Width + c * kLanes);
  for (int64_t g = g0; g < g1; ++g) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const uint32_t code = (static_cast<uint32_t>(meta[r * (k / 16) + (g >> 2)]) >> ((g & 3) * 4)) & 15u;
      const int64_t base = r * (k / 2) + 2 * g;
      const float* row0 = xt + (4 * g + (code & 3u)) * Width;
      const float* row1 = xt + (4 * g + (code >> 2)) * Width;
      const vf v0 = broadcast(value_at<Dtype>(vals, base)), v1 = broadcast(value_at<Dtype>(vals, base + 1));
#pragma GCC unroll 16
      for (int c = 0; c < kVecsPerPanel; ++c) {  // two separate FMAs (a sum of products first costs an add)
        acc[r][c] += v0 * load(row0 + c * kLanes);
        acc[r][c] += v1 * load(row1 + c * kLanes);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < kVecsPerPanel; ++c) store(acc_out + r * Width + c * kLanes, acc[r][c]);
}

/* Groups per K-block: a block of the panel (kGroupBlock x 4 rows of kSp24Panel floats, 32 KB)
 * stays in L1 while every row of the task goes through it (from L2 the loads would bound the FMAs). */
constexpr int64_t kGroupBlock = 16;

template <int Width, int Dtype>
void panel_rows(const float* xt, const void* vals, const uint16_t* meta, int64_t k, int64_t rows, float* acc) {
  const int64_t eb = Dtype == LLMK_F32 ? 4 : 2, groups = k / 4;
  constexpr int kTile = Width >= 64 ? 3 : 8;  // accumulator rows: 24 vectors on AVX-512 either way
  const auto* v = static_cast<const unsigned char*>(vals);
  std::memset(acc, 0, static_cast<size_t>(rows * Width) * sizeof(float));
  for (int64_t g0 = 0; g0 < groups; g0 += kGroupBlock) {
    const int64_t g1 = g0 + kGroupBlock < groups ? g0 + kGroupBlock : groups;
    int64_t r = 0;
    for (; r + kTile <= rows; r += kTile)
      sp24_rows<kTile, Width, Dtype>(xt, v + r * (k / 2) * eb, meta + r * (k / 16), k, g0, g1, acc + r * Width);
    for (; r < rows; ++r)
      sp24_rows<1, Width, Dtype>(xt, v + r * (k / 2) * eb, meta + r * (k / 16), k, g0, g1, acc + r * Width);
  }
}

}  // namespace

void sp24_panel_rows(const float* xt, const void* vals, const uint16_t* meta, int64_t k, int64_t rows, int32_t dtype,
                     float* acc) {
  constexpr int kWidth = static_cast<int>(kSp24Panel);
  if (dtype == LLMK_F32) panel_rows<kWidth, LLMK_F32>(xt, vals, meta, k, rows, acc);
  else if (dtype == LLMK_BF16) panel_rows<kWidth, LLMK_BF16>(xt, vals, meta, k, rows, acc);
  else panel_rows<kWidth, LLMK_F16>(xt, vals, meta, k, rows, acc);
}

}  // namespace LLMK_ISA_NS
}  // namespace llmk
