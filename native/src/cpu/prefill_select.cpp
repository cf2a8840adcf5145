/* Prefill selection on the CPU (llmk_prefill_select_cpu): the rules of llmk/prefill_math.h, the
 * same functions the CUDA kernels run, so both backends select bit-identically. Heads (VS, FLEX)
 * or rows (BLOCK_TOPK, XATTN) are independent tasks; each task's scans are sequential, so the
 * result does not depend on the thread count. */
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <omp.h>

#include "error.h"
#include "llmk/prefill_math.h"
#include "prefill_args.h"

namespace llmk {
namespace {

void write_counts(const llmk_prefill_args& a, int64_t head, const PrefillHeadInfo& info, const uint8_t* sel,
                  int64_t tiles) {
  int64_t blocks = 0;
  for (int64_t t = 0; t < tiles; ++t) blocks += sel[t] != 0;
  int64_t* hc = reinterpret_cast<int64_t*>(a.head_counts) + head * 5;
  hc[0] = info.pattern;
  hc[1] = info.verticals;
  hc[2] = info.slashes;
  hc[3] = blocks;
  hc[4] = info.columns;
  if (a.head_divergence != 0) reinterpret_cast<float*>(a.head_divergence)[head] = static_cast<float>(info.divergence);
}

}  // namespace
}  // namespace llmk

extern "C" int32_t llmk_prefill_select_cpu(const llmk_prefill_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_prefill_args(args, PrefillStage::kSelect)) return rc;
    const llmk_prefill_args& a = *args;
    const PrefillGeom g = prefill_geom_of(a);
    const int64_t heads = a.batch * a.heads_q, tiles = g.nqb * g.nkb, per_head = prefill_scores_per_head(a);
    const float* scores = reinterpret_cast<const float*>(a.scores);
    auto* selection = reinterpret_cast<uint8_t*>(a.selection);
    const int threads = omp_get_max_threads();
    const bool per_row = a.method == LLMK_PREFILL_BLOCK_TOPK || a.method == LLMK_PREFILL_XATTN;
    /* row tasks need one row heap per thread; head tasks the whole head workspace */
    const int64_t ws_bytes = per_row ? 4 * g.nkb : prefill_ws_bytes(g);
    std::vector<double> ws_all(static_cast<size_t>((ws_bytes + 7) / 8 * threads));
    if (per_row) {
      const bool force = (a.flags & LLMK_PREFILL_FORCE_DIAGONAL) != 0;
#pragma omp parallel for schedule(dynamic, 16)
      for (int64_t r = 0; r < heads * g.nqb; ++r) {
        auto* heap = reinterpret_cast<int32_t*>(ws_all.data() + (ws_bytes + 7) / 8 * omp_get_thread_num());
        const int64_t head = r / g.nqb, qb = r % g.nqb;
        uint8_t* row = selection + r * g.nkb;
        std::memset(row, 0, static_cast<size_t>(g.nkb));
        const float* sc = scores + head * per_head;
        if (a.method == LLMK_PREFILL_BLOCK_TOPK) {
          prefill_topk_row(sc, row, qb, g, a.top_k, force, heap);
        } else {
          prefill_xattn_row(sc, row, qb, g, a.threshold, heap);
        }
      }
      PrefillHeadInfo info;
      info.pattern = a.method == LLMK_PREFILL_BLOCK_TOPK ? LLMK_PREFILL_PAT_BLOCK_TOPK : LLMK_PREFILL_PAT_XATTN;
      info.verticals = info.slashes = info.columns = 0;
      info.divergence = NAN;
#pragma omp parallel for schedule(static)
      for (int64_t h = 0; h < heads; ++h) write_counts(a, h, info, selection + h * tiles, tiles);
      return LLMK_OK;
    }
    const PrefillFlexParams fp = prefill_flex_params(a);
    const bool tokens = (a.flags & LLMK_PREFILL_COLUMN_TOKENS) != 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t h = 0; h < heads; ++h) {
      const PrefillWs ws = prefill_ws(ws_all.data() + (ws_bytes + 7) / 8 * omp_get_thread_num(), g);
      uint8_t* sel = selection + h * tiles;
      std::memset(sel, 0, static_cast<size_t>(tiles));
      const float* sc = scores + h * per_head;
      PrefillHeadInfo info;
      if (a.method == LLMK_PREFILL_VERTICAL_SLASH) {
        int32_t* cols = tokens ? reinterpret_cast<int32_t*>(a.columns) + h * a.vertical_size : nullptr;
        info = prefill_vs_choose(sc, g, a.vertical_size, a.slash_size, a.forced_columns, a.forced_slashes, ws, cols);
        for (int64_t qb = 0; qb < g.nqb; ++qb) prefill_vs_mark_row(sel + qb * g.nkb, qb, g, ws, !tokens);
      } else {
        info = prefill_flex_choose(sc, sel, g, fp, ws);
        for (int64_t qb = 0; qb < g.nqb; ++qb) prefill_flex_mark_row(sel + qb * g.nkb, qb, g, info, ws);
      }
      write_counts(a, h, info, sel, tiles);
    }
    return LLMK_OK;
  });
}
