// CUDA 2:4 kernels vs the CPU entry points: prune / check / compress / decompress must match bit
// for bit (bad input rejected with nothing written); sparse and dense matmul on ragged shapes,
// both dtypes, every activation, with and without bias; on the tensor-core path, rows g and g + 8
// of every MMA tile with different metadata patterns in every group (K = 48). Integer-valued
// inputs (+-2) keep every sum exact, so NONE / RELU must match exactly; SILU / GELU within a
// rounding step. SKIPs without a GPU.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.h"

namespace {

std::mt19937 rng(1234);

int irand(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

/* W [m, k] 2:4 along k: each group keeps a random one of the 6 patterns, values in {+-1, +-2}
 * (sometimes a kept value is 0, so groups with fewer non-zeros occur too). */
std::vector<float> random_24(int64_t m, int64_t k) {
  static const int pairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
  std::vector<float> w(static_cast<size_t>(m * k), 0.0f);
  for (int64_t g = 0; g < m * k / 4; ++g) {
    const int* p = pairs[irand(0, 5)];
    for (int j = 0; j < 2; ++j) {
      int v = irand(-2, 2);
      if (v == 0 && irand(0, 3) != 0) v = 1;
      w[static_cast<size_t>(4 * g + p[j])] = static_cast<float>(v);
    }
  }
  return w;
}

std::vector<float> random_ints(int64_t count, int lo, int hi) {
  std::vector<float> v(static_cast<size_t>(count));
  for (auto& x : v) x = static_cast<float>(irand(lo, hi));
  return v;
}

std::string tag(const char* what, int64_t dtype, int64_t a, int64_t b, int64_t c = -1) {
  return std::string(what) + " dtype=" + std::to_string(dtype) + " " + std::to_string(a) + "x" + std::to_string(b) +
         (c >= 0 ? "x" + std::to_string(c) : "");
}

void test_conversions() {
  const int64_t shapes[][2] = {{1, 16}, {7, 48}, {97, 1024}, {256, 32}};
  for (int64_t dtype : {LLMK_F32, LLMK_F16, LLMK_BF16}) {
    for (const auto& s : shapes) {
      const int64_t m = s[0], k = s[1], eb = elem_bytes(dtype);
      const std::string name = tag("conv", dtype, m, k);
      // prune, magnitude and Wanda-style scores (ties included: small integers)
      const auto dense = encode(random_ints(m * k, -3, 3), dtype);
      std::vector<float> scale(static_cast<size_t>(k));
      for (auto& x : scale) x = static_cast<float>(irand(1, 4)) * 0.5f;
      for (bool use_scale : {false, true}) {
        std::vector<unsigned char> ref(dense.size()), got(dense.size());
        EXPECT(llmk_sp24_prune_cpu(dense.data(), use_scale ? scale.data() : nullptr, ref.data(), m, k,
                                   static_cast<int32_t>(dtype)) == LLMK_OK);
        DevBuf dw(bytes_of(dense)), dscale(bytes_of(scale));
        dw.upload(dense.data());
        dscale.upload(scale.data());
        // in place
        EXPECT(llmk_sp24_prune_cuda(kDevice, dw.p, use_scale ? static_cast<const float*>(dscale.p) : nullptr, dw.p, m, k,
                                    static_cast<int32_t>(dtype), nullptr) == LLMK_OK);
        dw.download(got.data());
        if (got != ref) {
          std::fprintf(stderr, "[%s] prune (scale=%d) differs from the CPU\n", name.c_str(), use_scale);
          ++failures;
        }
      }
      // check / compress / decompress on a valid 2:4 W
      const auto w = encode(random_24(m, k), dtype);
      std::vector<unsigned char> vref(static_cast<size_t>(m * k / 2 * eb)), vgot(vref.size());
      std::vector<uint16_t> mref(static_cast<size_t>(m * k / 16)), mgot(mref.size());
      EXPECT(llmk_sp24_compress_cpu(w.data(), vref.data(), mref.data(), m, k, static_cast<int32_t>(dtype)) == LLMK_OK);
      DevBuf dw(bytes_of(w)), dv(bytes_of(vref)), dm(bytes_of(mref)), dback(bytes_of(w));
      dw.upload(w.data());
      int64_t row = 7, group = 7;
      EXPECT(llmk_sp24_check_cuda(kDevice, dw.p, m, k, static_cast<int32_t>(dtype), &row, &group, nullptr) == LLMK_OK);
      EXPECT(row == -1 && group == -1);
      EXPECT(llmk_sp24_compress_cuda(kDevice, dw.p, dv.p, static_cast<uint16_t*>(dm.p), m, k,
                                     static_cast<int32_t>(dtype), nullptr) == LLMK_OK);
      dv.download(vgot.data());
      dm.download(mgot.data());
      if (vgot != vref || mgot != mref) {
        std::fprintf(stderr, "[%s] compress differs from the CPU\n", name.c_str());
        ++failures;
      }
      EXPECT(llmk_sp24_decompress_cuda(kDevice, dv.p, static_cast<const uint16_t*>(dm.p), dback.p, m, k,
                                       static_cast<int32_t>(dtype), nullptr) == LLMK_OK);
      std::vector<unsigned char> back(w.size());
      dback.download(back.data());
      if (back != w) {
        std::fprintf(stderr, "[%s] decompress does not restore W\n", name.c_str());
        ++failures;
      }
      // a bad group: 3 non-zeros at a late row/group and at an earlier one; the first is reported
      auto bad = random_24(m, k);
      const int64_t groups = k / 4, late = m * groups - 1, early = (m / 2) * groups + groups / 2;
      for (int64_t gi : {late, early})
        for (int i = 0; i < 3; ++i) bad[static_cast<size_t>(4 * gi + i)] = 1.0f;
      const auto badb = encode(bad, dtype);
      dw.upload(badb.data());
      EXPECT(llmk_sp24_check_cuda(kDevice, dw.p, m, k, static_cast<int32_t>(dtype), &row, &group, nullptr) == LLMK_OK);
      EXPECT(row == early / groups && group == early % groups);
      std::vector<unsigned char> sentinel(vref.size(), 0xab), vafter(vref.size());
      std::vector<uint16_t> msent(mref.size(), 0xabab), mafter(mref.size());
      dv.upload(sentinel.data());
      dm.upload(msent.data());
      EXPECT(llmk_sp24_compress_cuda(kDevice, dw.p, dv.p, static_cast<uint16_t*>(dm.p), m, k,
                                     static_cast<int32_t>(dtype), nullptr) == LLMK_ERR_INVALID_ARGUMENT);
      const std::string want = "row " + std::to_string(early / groups) + ", group " + std::to_string(early % groups) + " ";
      EXPECT(std::string(llmk_last_error()).find(want) != std::string::npos);
      dv.download(vafter.data());
      dm.download(mafter.data());
      EXPECT(vafter == sentinel && mafter == msent);
      // a bad nibble (idx0 >= idx1): decompress rejects it and writes nothing
      std::vector<uint16_t> mbad = mref;
      mbad[mbad.size() - 1] = static_cast<uint16_t>(mbad[mbad.size() - 1] & 0xff0f);  // group 1 of the last word: 0b0000
      dv.upload(vref.data());
      dm.upload(mbad.data());
      std::vector<unsigned char> wsent(w.size(), 0xcd), wafter(w.size());
      dback.upload(wsent.data());
      EXPECT(llmk_sp24_decompress_cuda(kDevice, dv.p, static_cast<const uint16_t*>(dm.p), dback.p, m, k,
                                       static_cast<int32_t>(dtype), nullptr) == LLMK_ERR_INVALID_ARGUMENT);
      const int64_t bad_group = static_cast<int64_t>(mbad.size() - 1) * 4 + 1;
      const std::string want2 = "row " + std::to_string(bad_group / groups) + ", group " + std::to_string(bad_group % groups) + " ";
      EXPECT(std::string(llmk_last_error()).find(want2) != std::string::npos);
      dback.download(wafter.data());
      EXPECT(wafter == wsent);
    }
  }
  // F32 is rejected by the CUDA matmul
  llmk_sp24_matmul_args a{};
  a.struct_bytes = sizeof(a);
  a.dtype = LLMK_F32;
  a.n = a.m = 1;
  a.k = 16;
  EXPECT(llmk_sp24_matmul_cuda(&a) == LLMK_ERR_INVALID_ARGUMENT);
}

void test_matmul() {
  const int64_t ns[] = {1, 7, 16, 17, 300}, ms[] = {1, 97, 256}, ks[] = {16, 48, 1024};
  for (int64_t dtype : {LLMK_F16, LLMK_BF16}) {
    for (int64_t k : ks) {
      for (int64_t m : ms) {
        const auto w = random_24(m, k);
        const auto wb = encode(w, dtype);
        const int64_t eb = 2;
        std::vector<unsigned char> values(static_cast<size_t>(m * k / 2 * eb));
        std::vector<uint16_t> meta(static_cast<size_t>(m * k / 16));
        EXPECT(llmk_sp24_compress_cpu(wb.data(), values.data(), meta.data(), m, k, static_cast<int32_t>(dtype)) == LLMK_OK);
        const auto bias = encode(random_ints(m, -3, 3), dtype);
        DevBuf dw(bytes_of(wb)), dv(bytes_of(values)), dm(bytes_of(meta)), db(bytes_of(bias));
        dw.upload(wb.data());
        dv.upload(values.data());
        dm.upload(meta.data());
        db.upload(bias.data());
        for (int64_t n : ns) {
          const auto x = encode(random_ints(n * k, -2, 2), dtype);
          DevBuf dx(bytes_of(x)), dy(n * m * eb);
          dx.upload(x.data());
          for (int64_t act = LLMK_ACT_NONE; act <= LLMK_ACT_GELU; ++act) {
            for (bool with_bias : {false, true}) {
              for (bool sparse : {true, false}) {
                llmk_sp24_matmul_args a{};
                a.struct_bytes = sizeof(a);
                a.n = n;
                a.m = m;
                a.k = k;
                a.dtype = dtype;
                a.activation = act;
                a.x = reinterpret_cast<int64_t>(x.data());
                a.values = reinterpret_cast<int64_t>(values.data());
                a.meta = reinterpret_cast<int64_t>(meta.data());
                a.w = reinterpret_cast<int64_t>(wb.data());
                a.bias = with_bias ? reinterpret_cast<int64_t>(bias.data()) : 0;
                std::vector<unsigned char> ref(static_cast<size_t>(n * m * eb)), got(ref.size());
                a.y = reinterpret_cast<int64_t>(ref.data());
                EXPECT((sparse ? llmk_sp24_matmul_cpu(&a) : llmk_dense_matmul_cpu(&a)) == LLMK_OK);
                a.x = dx.addr();
                a.values = dv.addr();
                a.meta = dm.addr();
                a.w = dw.addr();
                a.bias = with_bias ? db.addr() : 0;
                a.y = dy.addr();
                a.device = kDevice;
                const int32_t rc = sparse ? llmk_sp24_matmul_cuda(&a) : llmk_dense_matmul_cuda(&a);
                const std::string name = tag(sparse ? "sp24" : "dense", dtype, n, m, k) + " act=" +
                                         std::to_string(act) + " bias=" + std::to_string(with_bias);
                if (rc != LLMK_OK) {
                  std::fprintf(stderr, "[%s] failed: %s\n", name.c_str(), llmk_last_error());
                  ++failures;
                  continue;
                }
                dy.download(got.data());
                if (act <= LLMK_ACT_RELU) {
                  if (got != ref) {
                    close("exact", name, decode(got, dtype), decode(ref, dtype), 0.0);
                    ++failures;
                  }
                } else if (!close("y", name, decode(got, dtype), decode(ref, dtype), 1e-2)) {
                  ++failures;
                }
              }
            }
          }
        }
      }
    }
  }
}

/* The mma.sp metadata of rows g and g + 8 of a tile share one 32-bit fragment (bits 0-15 row g,
 * bits 16-31 row g + 8): a lane or half mix-up goes unseen when both rows have equal patterns.
 * Row i, group j keeps positions pairs[(i + j) % 6]: rows r and r + 8 differ in every group (8 = 2
 * mod 6), and every pattern occurs in every column. K = 48: the second k32 step is the padded
 * half. Prefill (tensor-core) path, M over two CTA rows; kept values are +-1 / +-2 (never 0, so
 * the compressed metadata is exactly the pattern), X in [-2, 2]: every sum is exact, so the
 * result must equal the CPU kernel and a double reference bit for bit. */
void test_matmul_meta_rows() {
  static const int pairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
  const int64_t m = 150, k = 48, groups = k / 4;
  std::vector<float> w(static_cast<size_t>(m * k), 0.0f);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < groups; ++j) {
      const int* pr = pairs[(i + j) % 6];
      for (int e = 0; e < 2; ++e) w[static_cast<size_t>(i * k + 4 * j + pr[e])] = static_cast<float>((irand(0, 1) ? 1 : -1) * irand(1, 2));
    }
  }
  for (int64_t dtype : {LLMK_F16, LLMK_BF16}) {
    const auto wb = encode(w, dtype);
    std::vector<unsigned char> values(static_cast<size_t>(m * k / 2 * 2));
    std::vector<uint16_t> meta(static_cast<size_t>(m * k / 16));
    EXPECT(llmk_sp24_compress_cpu(wb.data(), values.data(), meta.data(), m, k, static_cast<int32_t>(dtype)) == LLMK_OK);
    // The premise: every nibble of row r differs from row r + 8's (within each 16-row tile).
    bool differ = true;
    for (int64_t i = 0; i + 8 < m; ++i) {
      if (i % 16 >= 8) continue;
      for (int64_t wd = 0; wd < k / 16; ++wd) {
        const uint16_t a = meta[static_cast<size_t>(i * (k / 16) + wd)], b = meta[static_cast<size_t>((i + 8) * (k / 16) + wd)];
        for (int nb = 0; nb < 4; ++nb) differ = differ && ((a >> (4 * nb)) & 0xf) != ((b >> (4 * nb)) & 0xf);
      }
    }
    EXPECT(differ);
    const auto bias_f = random_ints(m, -3, 3);
    const auto bias = encode(bias_f, dtype);
    DevBuf dv(bytes_of(values)), dm(bytes_of(meta)), db(bytes_of(bias));
    dv.upload(values.data());
    dm.upload(meta.data());
    db.upload(bias.data());
    for (int64_t n : {17, 40}) {
      const auto xf = random_ints(n * k, -2, 2);
      const auto x = encode(xf, dtype);
      DevBuf dx(bytes_of(x)), dy(n * m * 2);
      dx.upload(x.data());
      for (bool with_bias : {false, true}) {
        const std::string name = tag("sp24 meta rows", dtype, n, m, k) + " bias=" + std::to_string(with_bias);
        std::vector<float> want(static_cast<size_t>(n * m));
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t c = 0; c < m; ++c) {
            double acc = with_bias ? bias_f[static_cast<size_t>(c)] : 0.0;
            for (int64_t kk = 0; kk < k; ++kk)
              acc += static_cast<double>(xf[static_cast<size_t>(r * k + kk)]) * w[static_cast<size_t>(c * k + kk)];
            want[static_cast<size_t>(r * m + c)] = static_cast<float>(acc);
          }
        }
        llmk_sp24_matmul_args a{};
        a.struct_bytes = sizeof(a);
        a.n = n;
        a.m = m;
        a.k = k;
        a.dtype = dtype;
        a.activation = LLMK_ACT_NONE;
        a.x = reinterpret_cast<int64_t>(x.data());
        a.values = reinterpret_cast<int64_t>(values.data());
        a.meta = reinterpret_cast<int64_t>(meta.data());
        a.bias = with_bias ? reinterpret_cast<int64_t>(bias.data()) : 0;
        std::vector<unsigned char> ref(static_cast<size_t>(n * m * 2)), got(ref.size());
        a.y = reinterpret_cast<int64_t>(ref.data());
        EXPECT(llmk_sp24_matmul_cpu(&a) == LLMK_OK);
        a.x = dx.addr();
        a.values = dv.addr();
        a.meta = dm.addr();
        a.bias = with_bias ? db.addr() : 0;
        a.y = dy.addr();
        a.device = kDevice;
        const int32_t rc = llmk_sp24_matmul_cuda(&a);
        if (rc != LLMK_OK) {
          std::fprintf(stderr, "[%s] failed: %s\n", name.c_str(), llmk_last_error());
          ++failures;
          continue;
        }
        dy.download(got.data());
        if (!close("cpu vs double", name, decode(ref, dtype), want, 0.0)) ++failures;
        if (got != ref) {
          close("exact", name, decode(got, dtype), decode(ref, dtype), 0.0);
          ++failures;
        }
      }
    }
  }
}

}  // namespace

int main() {
  if (!cuda_device_present()) return 0;
  test_conversions();
  test_matmul();
  test_matmul_meta_rows();
  if (failures != 0) {
    std::fprintf(stderr, "%d failure(s)\n", failures);
    return 1;
  }
  std::printf("OK\n");
  return 0;
}
