/* Decode attention over a per-head variable-length KV cache on the CPU: one task per (batch,
 * KV head) takes the group's query heads together, so each cached row is read once per group
 * (decode is bound by reading K and V). Online softmax over key chunks with the attention
 * kernel's tiles (cce_logits, attn_tile_softmax, cce_gemm_acc). */
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <omp.h>

#include "cpu/isa/isa_kernels.h"
#include "cpu/widen.h"
#include "error.h"
#include "kv_args.h"

namespace llmk {
namespace {

constexpr int64_t kChunk = 128;  // keys per tile

}  // namespace
}  // namespace llmk

extern "C" int32_t llmk_kv_decode_attn_cpu(const llmk_kv_decode_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_kv_decode_args(args)) return rc;
    const llmk_kv_decode_args& a = *args;
    if (a.batch == 0) return LLMK_OK;
    const int64_t heads = a.batch * a.heads_kv, group = a.heads_q / a.heads_kv, d = a.head_dim;
    const auto* cu = reinterpret_cast<const int64_t*>(a.cu);
    if (int32_t rc = check_kv_cu_host(cu, heads, INT64_MAX, "cu")) return rc;
    const int64_t total = cu[heads], eb = a.dtype == LLMK_F32 ? 4 : 2;
    if (total > 0) {
      if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a.k), "k")) return rc;
      if (int32_t rc = require_non_null(reinterpret_cast<const void*>(a.v), "v")) return rc;
    }
    const int64_t out_bytes = a.batch * a.heads_q * d * (a.out_dtype == LLMK_F32 ? 4 : 2);
    for (int64_t addr : {a.k, a.v}) {
      if (int32_t rc = require_disjoint(reinterpret_cast<const void*>(a.out), out_bytes, "out",
                                        reinterpret_cast<const void*>(addr), total * d * eb, addr == a.k ? "k" : "v")) return rc;
      if (int32_t rc = require_disjoint(reinterpret_cast<const void*>(a.lse), a.lse ? a.batch * a.heads_q * 4 : 0, "lse",
                                        reinterpret_cast<const void*>(addr), total * d * eb, addr == a.k ? "k" : "v")) return rc;
    }
    const int threads = omp_get_max_threads();
    const int64_t g = group, per_thread = 2 * g * d + 3 * kChunk * d + g * kChunk + 3 * g;
    std::vector<float> mem(static_cast<size_t>(per_thread * threads));  // outside the parallel region
    const IsaKernels& k = isa();
#pragma omp parallel num_threads(threads)
    {
      float* q = mem.data() + omp_get_thread_num() * per_thread;  // [g, d] scaled queries
      float* acc = q + g * d;                                     // [g, d]
      float* kb = acc + g * d;                                    // [kChunk, d] widened K
      float* vb = kb + kChunk * d;                                // [kChunk, d] widened V
      float* panel = vb + kChunk * d;                             // packed K
      float* s = panel + kChunk * d;                              // [g, kChunk]
      float* m = s + g * kChunk;
      float* l = m + g;
      float* alpha = l + g;
#pragma omp for schedule(dynamic, 1)
      for (int64_t bh = 0; bh < heads; ++bh) {
        const int64_t b = bh / a.heads_kv, hkv = bh % a.heads_kv;
        const int64_t q_row0 = b * a.heads_q + hkv * g;  // first query head of the group
        const float* qf = widen(reinterpret_cast<const char*>(a.q) + q_row0 * d * eb, a.dtype, g * d, acc);
        for (int64_t i = 0; i < g * d; ++i) q[i] = qf[i] * static_cast<float>(a.scale);  // acc: g x d, zeroed next
        std::memset(acc, 0, static_cast<size_t>(g * d) * sizeof(float));
        for (int64_t r = 0; r < g; ++r) {
          m[r] = -INFINITY;
          l[r] = 0.0f;
        }
        for (int64_t j0 = cu[bh]; j0 < cu[bh + 1]; j0 += kChunk) {
          const int64_t nc = cu[bh + 1] - j0 < kChunk ? cu[bh + 1] - j0 : kChunk;
          const float* kf = widen(reinterpret_cast<const char*>(a.k) + j0 * d * eb, a.dtype, nc * d, kb);
          if (g > kSmallLogitRows) {
            k.cce_pack_panel(kf, nc, d, panel);
            k.cce_logits(q, g, d, panel, nc, s, kChunk);
          } else {
            k.small_logits(q, g, d, kf, nc, s, kChunk);
          }
          k.attn_tile_softmax(s, kChunk, g, nc, 0.0f, m, l, alpha);
          k.attn_scale_rows(acc, d, g, d, alpha);
          const float* vf = widen(reinterpret_cast<const char*>(a.v) + j0 * d * eb, a.dtype, nc * d, vb);
          k.cce_gemm_acc(acc, d, s, kChunk, g, nc, vf, d);
        }
        for (int64_t r = 0; r < g; ++r) {
          const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
          for (int64_t t = 0; t < d; ++t) acc[r * d + t] *= inv;
          if (a.lse) reinterpret_cast<float*>(a.lse)[q_row0 + r] = l[r] > 0.0f ? m[r] + std::log(l[r]) : -INFINITY;
        }
        narrow(acc, a.out_dtype, g * d,
               reinterpret_cast<char*>(a.out) + q_row0 * d * (a.out_dtype == LLMK_F32 ? 4 : 2));
      }
    }
    return LLMK_OK;
  });
}
