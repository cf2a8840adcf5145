/* Run-time choice of the CPU variant: the widest one this CPU supports, so one binary runs
 * on any x86-64 machine and still uses AVX-512 where it exists. */
#include <atomic>
#include <cstring>
#include <string>

#include "cpu/isa/isa_kernels.h"
#include "error.h"

namespace llmk {
namespace {

#define LLMK_ISA_TABLE(ns) \
  IsaKernels{#ns, ns::f32_to_f16, ns::f16_to_f32, ns::f32_to_bf16, ns::bf16_to_f32, \
             ns::copy_row_streaming, ns::store_fence, ns::cce_pack_panel, ns::cce_logits, ns::cce_gemm_acc, \
             ns::cce_tile_forward, ns::cce_tile_backward, ns::attn_tile_softmax, ns::attn_scale_rows, \
             ns::row_neg_norms, ns::small_logits, ns::sp24_panel_rows, ns::sp24_decode_rows, ns::dense_decode_rows, \
             ns::sp24_meta_valid}

const IsaKernels kX86_64 = LLMK_ISA_TABLE(x86_64);
const IsaKernels kAvx2 = LLMK_ISA_TABLE(avx2);
const IsaKernels kAvx512 = LLMK_ISA_TABLE(avx512);

bool cpu_supports(const IsaKernels& k) {
  __builtin_cpu_init();
  if (&k == &kAvx512) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }
  if (&k == &kAvx2) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
  }
  return true;
}

const IsaKernels* by_name(const char* name) {
  if (!name) return nullptr;
  for (const IsaKernels* k : {&kAvx512, &kAvx2, &kX86_64}) {
    if (std::strcmp(k->name, name) == 0 || (k == &kX86_64 && std::strcmp(name, "x86-64") == 0)) return k;
  }
  return nullptr;
}

const IsaKernels* best() {
  for (const IsaKernels* k : {&kAvx512, &kAvx2}) {
    if (cpu_supports(*k)) return k;
  }
  return &kX86_64;
}

std::atomic<const IsaKernels*> current{best()};

}  // namespace

const IsaKernels& isa() { return *current.load(std::memory_order_relaxed); }

}  // namespace llmk

extern "C" const char* llmk_cpu_variant(void) noexcept {
  const char* n = llmk::isa().name;
  return std::strcmp(n, "x86_64") == 0 ? "x86-64" : n;
}

extern "C" int32_t llmk_cpu_supports_variant(const char* name) noexcept {
  const llmk::IsaKernels* k = llmk::by_name(name);
  return k && llmk::cpu_supports(*k) ? 1 : 0;
}

extern "C" int32_t llmk_cpu_set_variant(const char* name) noexcept {
  return llmk::guarded([&]() -> int32_t {
    const llmk::IsaKernels* k = llmk::by_name(name);
    if (!k) {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT,
                        std::string("variant must be one of avx512, avx2, x86-64; got ") +
                            (name ? name : "null"));
    }
    if (!llmk::cpu_supports(*k)) {
      return llmk::fail(LLMK_ERR_UNAVAILABLE, std::string("this CPU cannot run variant ") + name);
    }
    llmk::current.store(k);
    return LLMK_OK;
  });
}
