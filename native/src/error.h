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
 * `return fail(LLMK_ERR_INVALID_ARGUMENT, "...")`. Building a std::string can throw
 * std::bad_alloc, so string-building helpers are NOT noexcept: call them only inside guarded(),
 * which turns the exception into a status. The const char* forms never throw. */
int32_t fail(int32_t status, const std::string& msg) noexcept;
int32_t fail(int32_t status, const char* msg) noexcept;
int32_t fail(int32_t status, const char* prefix, const char* detail) noexcept;
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
    return fail(LLMK_ERR_INTERNAL, "internal error: ", e.what());
  } catch (...) {
    return fail(LLMK_ERR_INTERNAL, "internal error: unknown C++ exception");
  }
}

/* Shared argument checks for the C ABI entry points (inside guarded() only: they may throw
 * std::bad_alloc while building a message). */
int32_t require_non_null(const void* p, const char* name);
int32_t require_non_negative(int64_t v, const char* name);
/* Product of dims must fit int64 (it is a byte count); writes it to *out. */
int32_t require_product(const int64_t* dims, int n, const char* what, int64_t* out);
/* Rejects intersecting byte ranges [a, a + a_bytes) and [b, b + b_bytes) (host or device). */
int32_t require_disjoint(const void* a, int64_t a_bytes, const char* a_name, const void* b, int64_t b_bytes,
                         const char* b_name);

}  // namespace llmk
#endif
