/* Thread-local error state and the guard that keeps C++ exceptions from crossing the C ABI. */
#ifndef LLMK_ERROR_H
#define LLMK_ERROR_H

#include <cstdint>
#include <exception>
#include <new>
#include <string>

#include "llmk/llmk.h"

namespace llmk {

/* Records msg as this thread's last error and returns status, so callers can write
 * `return fail(LLMK_ERR_INVALID_ARGUMENT, "...")`. */
int32_t fail(int32_t status, const std::string& msg) noexcept;
void clear_error() noexcept;

/* Runs body (returning int32_t status) and converts any escaping exception to a status. */
template <typename F>
int32_t guarded(F&& body) noexcept {
  try {
    clear_error();
    return body();
  } catch (const std::bad_alloc&) {
    return fail(LLMK_ERR_OUT_OF_MEMORY, "host allocation failed (std::bad_alloc)");
  } catch (const std::exception& e) {
    return fail(LLMK_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(LLMK_ERR_INTERNAL, "internal error: unknown C++ exception");
  }
}

/* Shared argument checks for the C ABI entry points. */
int32_t require_non_null(const void* p, const char* name) noexcept;
int32_t require_non_negative(int64_t v, const char* name) noexcept;
/* Product of dims must fit int64 (it is a byte count); writes it to *out. */
int32_t require_product(const int64_t* dims, int n, const char* what, int64_t* out) noexcept;

}  // namespace llmk
#endif
