/* Argument checks of the dynamic sparse prefill estimators, shared by the CPU and CUDA entry
 * points so both report the same text. */
#ifndef LLMK_PREFILL_ARGS_H
#define LLMK_PREFILL_ARGS_H

#include <cstdint>

#include "llmk/llmk.h"
#include "llmk/prefill_math.h"

namespace llmk {

enum class PrefillStage { kSize, kScore, kSelect };

/* Struct size, method, shapes, dtype, scale, blocks, the method's own parameters and (for
 * kScore / kSelect) the addresses it reads and writes, and that outputs overlap no input. */
int32_t check_prefill_args(const llmk_prefill_args* a, PrefillStage stage);

/* F32 scores per (b, h) for valid args. */
int64_t prefill_scores_per_head(const llmk_prefill_args& a);

inline PrefillGeom prefill_geom_of(const llmk_prefill_args& a) {
  return prefill_geom(a.seq_q, a.seq_k, a.block_q, a.block_k);
}

inline PrefillFlexParams prefill_flex_params(const llmk_prefill_args& a) {
  PrefillFlexParams p;
  p.gamma = a.gamma;
  p.tau = a.tau;
  p.last_q = a.last_q;
  p.min_blocks = a.min_budget_blocks;
  p.max_blocks = a.max_budget_blocks;
  return p;
}

}  // namespace llmk
#endif
