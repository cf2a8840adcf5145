/* Vector helpers of the per-ISA tile kernels: GCC vector extensions whose width follows the
 * variant's flags (512, 256 or 128 bits), so one source serves every variant. Include only from
 * files compiled per ISA (LLMK_ISA_NS defined); everything has internal linkage, so variants
 * never share a weak symbol. */
#ifndef LLMK_CPU_ISA_VEC_H
#define LLMK_CPU_ISA_VEC_H

#include <cstdint>
#include <cstring>

namespace llmk {
namespace LLMK_ISA_NS {
namespace {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX2__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
typedef float vf __attribute__((vector_size(kVecBytes)));
typedef int32_t vi __attribute__((vector_size(kVecBytes)));
constexpr int kLanes = kVecBytes / 4;

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline vf splat(float x) { return vf{} + x; }
inline vi lane_index() {
  vi v;
  for (int l = 0; l < kLanes; ++l) v[l] = l;
  return v;
}

/* exp with ~2 ulp error on [-87, 88]; below -87 it returns ~1e-38 instead of 0 (harmless for
 * probabilities). Cody-Waite range reduction and a degree-6 polynomial. */
inline vf vexp(vf x) {
  x = x < splat(-87.0f) ? splat(-87.0f) : x;
  x = x > splat(88.0f) ? splat(88.0f) : x;
  const vf n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  const vf r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
  vf p = splat(1.0f / 720.0f);
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const vi bits = (__builtin_convertvector(n, vi) + 127) << 23;
  return p * (vf)bits;  // same-size vector cast: reinterprets the bits
}

inline float sexp(float x) { return vexp(splat(x))[0]; }

/* tanh through exp; small |x| by its series, where 1 - 2 / (e^2x + 1) would cancel. */
inline vf vtanh(vf x) {
  const vf ax = x < splat(0.0f) ? -x : x;
  const vf e = vexp(ax * 2.0f);
  vf big = 1.0f - 2.0f / (e + 1.0f);
  const vf x2 = ax * ax;
  const vf small = ax * (1.0f + x2 * (-1.0f / 3.0f + x2 * (2.0f / 15.0f + x2 * (-17.0f / 315.0f))));
  big = ax < splat(0.125f) ? small : big;
  return x < splat(0.0f) ? -big : big;
}

}  // namespace
}  // namespace LLMK_ISA_NS
}  // namespace llmk
#endif
