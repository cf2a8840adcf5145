#include "error.h"

#include "llmk/index_math.h"

namespace llmk {
namespace {
thread_local std::string last_error;
}

int32_t fail(int32_t status, const std::string& msg) noexcept {
  try {
    last_error = msg;
  } catch (...) {
    // Out of memory while recording the message: keep the status, lose the text.
  }
  return status;
}

int32_t fail(int32_t status, const char* msg) noexcept { return fail(status, msg, ""); }

int32_t fail(int32_t status, const char* prefix, const char* detail) noexcept {
  try {
    last_error.assign(prefix);
    last_error.append(detail ? detail : "");
  } catch (...) {
    last_error.clear();  // no memory even for the message: keep the status
  }
  return status;
}

void clear_error() noexcept { last_error.clear(); }

int32_t require_non_null(const void* p, const char* name) {
  if (p) return LLMK_OK;
  return fail(LLMK_ERR_INVALID_ARGUMENT, std::string(name) + " must not be a null pointer");
}

int32_t require_non_negative(int64_t v, const char* name) {
  if (v >= 0) return LLMK_OK;
  return fail(LLMK_ERR_INVALID_ARGUMENT,
              std::string(name) + " must be >= 0, got " + std::to_string(v));
}

int32_t require_product(const int64_t* dims, int n, const char* what, int64_t* out) {
  int64_t p = 1;
  for (int i = 0; i < n; ++i) {
    if (dims[i] < 0 || !checked_mul(p, dims[i], &p)) {
      return fail(LLMK_ERR_INVALID_ARGUMENT,
                  std::string(what) + ": size overflows int64 or is negative");
    }
  }
  *out = p;
  return LLMK_OK;
}

int32_t require_disjoint(const void* a, int64_t a_bytes, const char* a_name, const void* b, int64_t b_bytes,
                         const char* b_name) {
  const auto pa = reinterpret_cast<uintptr_t>(a);
  const auto pb = reinterpret_cast<uintptr_t>(b);
  if (a_bytes <= 0 || b_bytes <= 0) return LLMK_OK;
  if (pa < pb + static_cast<uintptr_t>(b_bytes) && pb < pa + static_cast<uintptr_t>(a_bytes)) {
    return fail(LLMK_ERR_INVALID_ARGUMENT, std::string(a_name) + " must not overlap " + b_name + " in memory");
  }
  return LLMK_OK;
}

}  // namespace llmk

extern "C" const char* llmk_last_error(void) noexcept { return llmk::last_error.c_str(); }
