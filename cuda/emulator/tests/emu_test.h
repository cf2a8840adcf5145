/* The CUDA emulator's unit tests: a small expect-style harness (as native/tests/expect.h: a
 * failed EXPECT is counted and reported, the program runs on and exits non-zero), device
 * buffers, and the launch check. Included by the test sources, which are compiled as emulated
 * CUDA (emu.h force-included) and linked against llmk_cuda_emu only. */
#ifndef LLMK_EMU_TEST_H
#define LLMK_EMU_TEST_H

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "launch.cuh"
#include "ptx.cuh"

namespace emu_test {

inline int& failures() {
  static int n = 0;
  return n;
}

/* Counts the failure; prints the first few only (a broken op fails every element). */
inline void report(const char* file, int line, const std::string& what) {
  if (++failures() <= 25) std::fprintf(stderr, "%s:%d: %s\n", file, line, what.c_str());
  if (failures() == 25) std::fprintf(stderr, "(further failures are counted, not printed)\n");
}

template <typename A, typename B>
inline void expect_eq(const A& a, const B& b, const char* sa, const char* sb, const char* file, int line) {
  if (a == b) return;
  char buf[128];
  std::snprintf(buf, sizeof(buf), " (0x%llx vs 0x%llx)", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  report(file, line, std::string("expected ") + sa + " == " + sb + buf);
}

inline void expect_contains(const std::string& text, const std::string& part, const char* file, int line) {
  if (text.find(part) == std::string::npos) report(file, line, "expected \"" + part + "\" in \"" + text + "\"");
}

/* The sticky launch outcome: cudaSuccess expected, anything else printed with the emulator's
 * explanation. */
inline void expect_launch_ok(const char* what, const char* file, int line) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) report(file, line, std::string(what) + ": launch failed: " + cudaGetErrorString(e));
}

inline int finish(const char* program) {
  if (failures()) {
    std::fprintf(stderr, "%s: %d failure(s)\n", program, failures());
    return 1;
  }
  std::printf("%s: all passed\n", program);
  return 0;
}

/* Device memory (the emulator's cudaMalloc: host memory, poisoned when allocated). */
template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  size_t n = 0;
  explicit DeviceBuffer(size_t count) : n(count) {
    if (cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T)) != cudaSuccess) std::abort();
  }
  explicit DeviceBuffer(const std::vector<T>& v) : DeviceBuffer(v.size()) { upload(v); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void upload(const std::vector<T>& v) {
    if (cudaMemcpy(ptr, v.data(), n * sizeof(T), cudaMemcpyHostToDevice) != cudaSuccess) std::abort();
  }
  void fill_zero() { cudaMemset(ptr, 0, n * sizeof(T)); }
  std::vector<T> download() const {
    std::vector<T> v(n);
    if (cudaMemcpy(v.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost) != cudaSuccess) std::abort();
    return v;
  }
};

}  // namespace emu_test

#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) ::emu_test::report(__FILE__, __LINE__, "expected " #cond);    \
  } while (0)
#define EXPECT_EQ(a, b) ::emu_test::expect_eq((a), (b), #a, #b, __FILE__, __LINE__)
#define EXPECT_CONTAINS(text, part) ::emu_test::expect_contains((text), (part), __FILE__, __LINE__)
#define EXPECT_LAUNCH_OK(what) ::emu_test::expect_launch_ok((what), __FILE__, __LINE__)

#endif
