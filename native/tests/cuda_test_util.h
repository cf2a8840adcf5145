// Host helpers of the CUDA-vs-CPU native tests: a device buffer freed on scope exit, F32/F16/BF16
// encoding of test data, and the closeness check (shared so both test programs judge alike).
#ifndef LLMK_TESTS_CUDA_TEST_UTIL_H
#define LLMK_TESTS_CUDA_TEST_UTIL_H

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dtype_codec.h"
#include "expect.h"
#include "llmk/half_bits.h"
#include "llmk/llmk.h"

namespace {

constexpr int32_t kDevice = 0;

/* Device buffer freed on scope exit. */
struct DevBuf {
  void* p = nullptr;
  int64_t bytes = 0;
  explicit DevBuf(int64_t b) : bytes(b) {
    if (b > 0 && llmk_cuda_malloc(kDevice, b, &p) != LLMK_OK) {
      std::fprintf(stderr, "cuda malloc failed: %s\n", llmk_last_error());
      ++failures;
      p = nullptr;
    }
  }
  ~DevBuf() {
    if (p) llmk_cuda_free(kDevice, p);
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  int64_t addr() const { return reinterpret_cast<int64_t>(p); }
  void upload(const void* src) const {
    if (bytes > 0) EXPECT(llmk_cuda_memcpy(kDevice, p, src, bytes, 0, nullptr, 1) == LLMK_OK);
  }
  void download(void* dst) const {
    if (bytes > 0) EXPECT(llmk_cuda_memcpy(kDevice, dst, p, bytes, 1, nullptr, 1) == LLMK_OK);
  }
};

template <typename V>
int64_t bytes_of(const V& v) {
  return static_cast<int64_t>(v.size() * sizeof(v[0]));
}


/* max |got - ref| <= tol * max(|finite ref|, 1e-3); infinities must match exactly (lse of empty
 * rows), NaN only NaN (a MEAN over zero valid rows). */
inline bool close(const char* what, const std::string& name, const std::vector<float>& got, const std::vector<float>& ref,
           double tol) {
  double max_ref = 1e-3, max_err = 0.0;
  size_t worst = 0;
  for (float r : ref) {
    if (std::isfinite(r)) max_ref = std::fmax(max_ref, std::fabs(r));
  }
  for (size_t i = 0; i < ref.size(); ++i) {
    double err;
    if (std::isnan(ref[i]) || std::isnan(got[i])) {
      err = (std::isnan(ref[i]) && std::isnan(got[i])) ? 0.0 : INFINITY;  // NaN matches only NaN
    } else if (std::isinf(ref[i]) || std::isinf(got[i])) {
      err = (got[i] == ref[i]) ? 0.0 : INFINITY;
    } else {
      err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    }
    if (err > max_err) {
      max_err = err;
      worst = i;
    }
  }
  const bool ok = max_err <= tol * max_ref;
  if (!ok) {
    std::fprintf(stderr, "[%s] %s: max error %.3g (tol %.3g x max|ref| %.3g) at %zu: got %.7g want %.7g\n",
                 name.c_str(), what, max_err, tol, max_ref, worst, got[worst], ref[worst]);
  }
  return ok;
}

/* False (after printing "SKIP: <reason>") when no CUDA device can run the tests. */
inline bool cuda_device_present() {
  int32_t count = 0;
  if (llmk_cuda_device_count(&count) != LLMK_OK) {
    std::printf("SKIP: %s\n", llmk_last_error());
    return false;
  }
  if (count == 0) {
    std::printf("SKIP: no CUDA device\n");
    return false;
  }
  return true;
}

}  // namespace
#endif
