/* Per-head top-k selection on the CPU: forced tokens (sinks, recent), then the highest scores,
 * ties to the lower position (llmk/kv_math.h's total order, shared with CUDA), written in
 * ascending position order. nth_element per head: O(n) expected. */
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <omp.h>

#include "error.h"
#include "kv_args.h"
#include "llmk/kv_math.h"

extern "C" int32_t llmk_kv_select_cpu(const llmk_kv_select_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_kv_select_args(args)) return rc;
    const llmk_kv_select_args& a = *args;
    const int64_t heads = a.batch * a.heads;
    if (heads == 0) return LLMK_OK;
    const auto* budgets = reinterpret_cast<const int32_t*>(a.budgets);
    if (int32_t rc = check_kv_budgets_host(a, budgets)) return rc;
    const auto* scores = reinterpret_cast<const float*>(a.scores);
    for (int64_t i = 0; i < heads * a.n; ++i) {
      if (std::isnan(scores[i])) {
        const int64_t bh = i / a.n;
        return fail(LLMK_ERR_INVALID_ARGUMENT, "scores[" + std::to_string(bh / a.heads) + ", " + std::to_string(bh % a.heads) +
                                                   ", " + std::to_string(i % a.n) + "] is NaN");
      }
    }
    auto* kept = reinterpret_cast<int32_t*>(a.kept);
    const int threads = omp_get_max_threads();
    std::vector<int32_t> order(static_cast<size_t>(a.n) * threads);  // outside the parallel region
#pragma omp parallel num_threads(threads)
    {
      int32_t* idx = order.data() + static_cast<int64_t>(omp_get_thread_num()) * a.n;
#pragma omp for schedule(dynamic, 1)
      for (int64_t bh = 0; bh < heads; ++bh) {
        const float* s = scores + bh * a.n;
        const int64_t budget = budgets[bh];
        for (int64_t j = 0; j < a.n; ++j) idx[j] = static_cast<int32_t>(j);
        const auto before = [&](int32_t x, int32_t y) {
          return kv_before(kv_forced(x, a.n, a.sinks, a.recent), s[x], x, kv_forced(y, a.n, a.sinks, a.recent), s[y], y);
        };
        if (budget < a.n) std::nth_element(idx, idx + budget, idx + a.n, before);
        std::sort(idx, idx + budget);
        int32_t* out = kept + bh * a.max_keep;
        std::copy(idx, idx + budget, out);
        std::fill(out + budget, out + a.max_keep, -1);
      }
    }
    return LLMK_OK;
  });
}
