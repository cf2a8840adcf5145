// CPU 2:4 sparse kernels: prune keeps the 2 highest scores (ties to the lower position),
// compress/decompress round trip bitwise, an invalid group is named and nothing is written, and
// the sparse matmul equals the dense product of the decompressed weight: exactly with
// integer-valued inputs, and against a double evaluation with random inputs, on every CPU variant.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "expect.h"
#include "llmk/half_bits.h"
#include "llmk/llmk.h"

namespace {

uint16_t to_bf16(float f) { return llmk::f32_to_bf16_bits(f); }

void test_prune_compress() {
  const int64_t m = 3, k = 16;
  std::vector<float> w(m * k);
  for (int64_t i = 0; i < m * k; ++i) w[i] = static_cast<float>((i * 7) % 11) - 5.0f;
  w[0] = w[1] = w[2] = w[3] = 2.0f;  // a tie: positions 0 and 1 stay
  std::vector<float> pruned(m * k);
  EXPECT(llmk_sp24_prune_cpu(w.data(), nullptr, pruned.data(), m, k, LLMK_F32) == LLMK_OK);
  EXPECT(pruned[0] == 2.0f && pruned[1] == 2.0f && pruned[2] == 0.0f && pruned[3] == 0.0f);
  int64_t row = 0, group = 0;
  EXPECT(llmk_sp24_check_cpu(pruned.data(), m, k, LLMK_F32, &row, &group) == LLMK_OK && row == -1);
  std::vector<float> vals(m * k / 2, 7.0f), back(m * k, 9.0f);
  std::vector<uint16_t> meta(m * k / 16, 0xffff);
  EXPECT(llmk_sp24_compress_cpu(pruned.data(), vals.data(), meta.data(), m, k, LLMK_F32) == LLMK_OK);
  EXPECT((meta[0] & 15u) == 4u);  // group 0 keeps positions 0 and 1: 0 | 1 << 2
  EXPECT(llmk_sp24_decompress_cpu(vals.data(), meta.data(), back.data(), m, k, LLMK_F32) == LLMK_OK);
  EXPECT(std::memcmp(back.data(), pruned.data(), back.size() * 4) == 0);
  // Wanda: a large column scale on position 3 makes it win
  std::vector<float> scale(k, 1.0f);
  scale[3] = 100.0f;
  EXPECT(llmk_sp24_prune_cpu(w.data(), scale.data(), pruned.data(), m, k, LLMK_F32) == LLMK_OK);
  EXPECT(pruned[3] == 2.0f && pruned[0] == 2.0f && pruned[1] == 0.0f);
  // three non-zeros in row 2, group 1: named, and nothing written
  std::vector<float> bad(m * k, 0.0f);
  bad[2 * k + 4] = bad[2 * k + 5] = bad[2 * k + 6] = 1.0f;
  std::fill(vals.begin(), vals.end(), 7.0f);
  EXPECT(llmk_sp24_compress_cpu(bad.data(), vals.data(), meta.data(), m, k, LLMK_F32) == LLMK_ERR_INVALID_ARGUMENT);
  EXPECT(std::strstr(llmk_last_error(), "row 2, group 1") != nullptr);
  EXPECT(vals[0] == 7.0f);
  EXPECT(llmk_sp24_check_cpu(bad.data(), m, k, LLMK_F32, &row, &group) == LLMK_OK && row == 2 && group == 1);
}

llmk_sp24_matmul_args args(int64_t n, int64_t m, int64_t k, int64_t dtype, int64_t act) {
  llmk_sp24_matmul_args a;
  std::memset(&a, 0, sizeof a);
  a.struct_bytes = sizeof a;
  a.n = n; a.m = m; a.k = k; a.dtype = dtype; a.activation = act;
  return a;
}

/* Sparse vs dense (decompressed) vs double; integer inputs must match exactly. */
void test_matmul(int64_t n, int64_t m, int64_t k, bool integer, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> small(-2, 2);
  std::normal_distribution<float> nd;
  std::vector<float> x(n * k), w(m * k), bias(m);
  for (float& v : x) v = integer ? static_cast<float>(small(rng)) : nd(rng);
  for (float& v : w) v = integer ? static_cast<float>(small(rng)) : nd(rng);
  for (float& v : bias) v = integer ? static_cast<float>(small(rng)) : nd(rng);
  EXPECT(llmk_sp24_prune_cpu(w.data(), nullptr, w.data(), m, k, LLMK_F32) == LLMK_OK);
  std::vector<float> vals(m * k / 2);
  std::vector<uint16_t> meta(m * k / 16);
  EXPECT(llmk_sp24_compress_cpu(w.data(), vals.data(), meta.data(), m, k, LLMK_F32) == LLMK_OK);
  for (int64_t act : {LLMK_ACT_NONE, LLMK_ACT_RELU, LLMK_ACT_SILU, LLMK_ACT_GELU}) {
    if (integer && act >= LLMK_ACT_SILU) continue;
    std::vector<float> ys(n * m, NAN), yd(n * m, NAN);
    llmk_sp24_matmul_args a = args(n, m, k, LLMK_F32, act);
    a.x = reinterpret_cast<int64_t>(x.data());
    a.values = reinterpret_cast<int64_t>(vals.data());
    a.meta = reinterpret_cast<int64_t>(meta.data());
    a.bias = reinterpret_cast<int64_t>(bias.data());
    a.y = reinterpret_cast<int64_t>(ys.data());
    EXPECT(llmk_sp24_matmul_cpu(&a) == LLMK_OK);
    a.w = reinterpret_cast<int64_t>(w.data());
    a.y = reinterpret_cast<int64_t>(yd.data());
    EXPECT(llmk_dense_matmul_cpu(&a) == LLMK_OK);
    double worst = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) {
        double acc = bias[j];
        for (int64_t t = 0; t < k; ++t) acc += static_cast<double>(x[i * k + t]) * w[j * k + t];
        if (act == LLMK_ACT_RELU) acc = acc > 0 ? acc : 0;
        if (act == LLMK_ACT_SILU) acc = acc / (1 + std::exp(-acc));
        if (act == LLMK_ACT_GELU) acc = 0.5 * acc * (1 + std::tanh(0.7978845608028654 * (acc + 0.044715 * acc * acc * acc)));
        for (double got : {static_cast<double>(ys[i * m + j]), static_cast<double>(yd[i * m + j])}) {
          const double e = std::fabs(got - acc);
          worst = (e <= worst) ? worst : (std::isnan(e) ? INFINITY : e);
        }
      }
    const double tol = integer ? 0.0 : 2e-4 * std::sqrt(static_cast<double>(k));
    EXPECT(worst <= tol);
    if (worst > tol) std::fprintf(stderr, "  matmul n=%ld m=%ld k=%ld act=%ld: error %.3g\n", (long)n, (long)m, (long)k, (long)act, worst);
  }
}

/* BF16: the sparse product equals the dense product of the same (rounded) operands closely. */
void test_bf16(uint32_t seed, int64_t n, int64_t k) {
  const int64_t m = 97;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<uint16_t> x(n * k), w(m * k), vals(m * k / 2), ys(n * m), yd(n * m);
  std::vector<uint16_t> meta(m * k / 16);
  for (auto& v : x) v = to_bf16(nd(rng));
  for (auto& v : w) v = to_bf16(nd(rng));
  EXPECT(llmk_sp24_prune_cpu(w.data(), nullptr, w.data(), m, k, LLMK_BF16) == LLMK_OK);
  EXPECT(llmk_sp24_compress_cpu(w.data(), vals.data(), meta.data(), m, k, LLMK_BF16) == LLMK_OK);
  llmk_sp24_matmul_args a = args(n, m, k, LLMK_BF16, LLMK_ACT_NONE);
  a.x = reinterpret_cast<int64_t>(x.data());
  a.values = reinterpret_cast<int64_t>(vals.data());
  a.meta = reinterpret_cast<int64_t>(meta.data());
  a.w = reinterpret_cast<int64_t>(w.data());
  a.y = reinterpret_cast<int64_t>(ys.data());
  EXPECT(llmk_sp24_matmul_cpu(&a) == LLMK_OK);
  a.y = reinterpret_cast<int64_t>(yd.data());
  EXPECT(llmk_dense_matmul_cpu(&a) == LLMK_OK);
  double worst = 0;
  for (size_t i = 0; i < ys.size(); ++i) worst = std::fmax(worst, std::fabs(llmk::bf16_bits_to_f32(ys[i]) - llmk::bf16_bits_to_f32(yd[i])));
  EXPECT(worst < 0.05);  // one BF16 rounding of outputs of size ~5
}

/* Matmul rejects every invalid nibble code (idx0 >= idx1) at every nibble and word position,
 * including the tails of the vectorised scan, names its row and group and writes nothing; valid
 * codes pass. */
void test_invalid_metadata() {
  const int64_t n = 2, m = 3;
  for (int64_t words_per_row : {1, 11}) {  // m * words: 3 and 33 words in all
    const int64_t k = 16 * words_per_row;
    std::vector<float> x(n * k, 1.0f), vals(m * k / 2, 1.0f), y(n * m);
    for (uint32_t code = 0; code < 16; ++code) {
      const bool valid = (code & 3u) < (code >> 2);
      for (int64_t word : {int64_t{0}, m * words_per_row - 1, m * words_per_row / 2}) {
        for (int nibble = 0; nibble < 4; ++nibble) {
          std::vector<uint16_t> meta(m * words_per_row, 0x4444);  // {0, 1} everywhere
          meta[word] = static_cast<uint16_t>((meta[word] & ~(15u << (4 * nibble))) | (code << (4 * nibble)));
          std::fill(y.begin(), y.end(), -7.0f);
          llmk_sp24_matmul_args a = args(n, m, k, LLMK_F32, LLMK_ACT_NONE);
          a.x = reinterpret_cast<int64_t>(x.data());
          a.values = reinterpret_cast<int64_t>(vals.data());
          a.meta = reinterpret_cast<int64_t>(meta.data());
          a.y = reinterpret_cast<int64_t>(y.data());
          const int32_t rc = llmk_sp24_matmul_cpu(&a);
          if (valid) {
            EXPECT(rc == LLMK_OK);
            continue;
          }
          EXPECT(rc == LLMK_ERR_INVALID_ARGUMENT);
          char expected[64];
          std::snprintf(expected, sizeof expected, "row %ld, group %ld", static_cast<long>(word / words_per_row),
                        static_cast<long>((word % words_per_row) * 4 + nibble));
          EXPECT(std::strstr(llmk_last_error(), expected) != nullptr);
          EXPECT(y[0] == -7.0f && y[n * m - 1] == -7.0f);
        }
      }
    }
  }
}

}  // namespace

int main() {
  for (const char* v : {"avx512", "avx2", "x86-64"}) {
    if (!llmk_cpu_supports_variant(v)) continue;
    EXPECT(llmk_cpu_set_variant(v) == LLMK_OK);
    test_prune_compress();
    test_matmul(7, 97, 48, true, 1);
    test_matmul(300, 97, 1024, true, 2);
    test_matmul(1, 1, 16, false, 3);
    test_matmul(17, 97, 1024, false, 4);
    test_matmul(300, 5, 48, false, 5);
    // decode shapes (N <= 16): every x-row block size, K-blocks and a K tail past the last chunk
    for (int64_t n : {1, 2, 3, 7, 8, 15, 16}) test_matmul(n, 97, 1040, true, 10 + n);
    test_matmul(16, 33, 8208, false, 30);
    test_matmul(5, 64, 16, false, 31);
    // odd task heights (pairs of rows and a lone last row) and K tails of 32 and 48 after whole chunks
    for (int64_t n : {2, 5, 12}) test_matmul(n, 37, 1072, true, 40 + n);
    test_matmul(4, 37, 1056, true, 50);
    test_invalid_metadata();
    test_bf16(6, 17, 48);
    test_bf16(7, 5, 1040);
  }
  if (failures) std::fprintf(stderr, "%d failure(s)\n", failures);
  else std::printf("2:4 CPU tests passed\n");
  return failures ? 1 : 0;
}
