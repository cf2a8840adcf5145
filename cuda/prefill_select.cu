/* Prefill selection on the GPU (llmk_prefill_select_cuda): the functions of llmk/prefill_math.h,
 * which the CPU runs too, so the same F32 scores give bit-identical selections.
 *   VS, FLEX: one thread per head runs the sequential choose step (heap order, double cumulative
 *             sums), then one thread per (head, query block) marks its row;
 *   BLOCK_TOPK, XATTN: one thread per (head, query block) row;
 *   counts: one CTA per head sums its selected tiles (integers: order-free) and writes head_counts.
 * Heads run in groups whose workspace (prefill_ws_bytes each) fits kWorkspaceCap. */
#include <string>

#include "attention_common.cuh"
#include "cuda_check.cuh"
#include "kv_common.cuh"
#include "launch.cuh"
#include "llmk/prefill_math.h"
#include "prefill_args.h"

namespace {

using llmk::PrefillGeom;
using llmk::PrefillHeadInfo;
using llmk::PrefillWs;

constexpr int64_t kWorkspaceCap = int64_t{256} << 20;
constexpr int kHeadThreads = 32;
constexpr int kRowThreads = 128;
constexpr int kCountThreads = 256;

struct SelectParams {
  int64_t method, head0, heads, per_head, tiles, ws_bytes;
  PrefillGeom g;
  llmk::PrefillFlexParams flex;
  int64_t vsize, ssize, fc, fs, top_k;
  int force_diag;
  bool tokens;            // VS columns as a token list (LLMK_PREFILL_COLUMN_TOKENS)
  double threshold;
  int32_t* columns;       // [B * Hq, vsize] when tokens
  const float* scores;
  uint8_t* selection;
  int64_t* head_counts;
  float* divergence;
  PrefillHeadInfo* infos;  // [heads] of the group
  unsigned char* ws;       // [heads][ws_bytes]
};

__global__ void choose_heads(const __grid_constant__ SelectParams p) {
  const int64_t h = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (h >= p.heads) return;
  const int64_t head = p.head0 + h;
  const PrefillWs ws = llmk::prefill_ws(p.ws + h * p.ws_bytes, p.g);
  const float* sc = p.scores + head * p.per_head;
  if (p.method == LLMK_PREFILL_VERTICAL_SLASH) {
    int32_t* cols = p.tokens ? p.columns + head * p.vsize : nullptr;
    p.infos[h] = llmk::prefill_vs_choose(sc, p.g, p.vsize, p.ssize, p.fc, p.fs, ws, cols);
  } else {
    p.infos[h] = llmk::prefill_flex_choose(sc, p.selection + head * p.tiles, p.g, p.flex, ws);
  }
}

__global__ void select_rows(const __grid_constant__ SelectParams p) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= p.heads * p.g.nqb) return;
  const int64_t h = r / p.g.nqb, qb = r % p.g.nqb, head = p.head0 + h;
  uint8_t* row = p.selection + head * p.tiles + qb * p.g.nkb;
  const PrefillWs ws = llmk::prefill_ws(p.ws + h * p.ws_bytes, p.g);
  const float* sc = p.scores + head * p.per_head;
  switch (p.method) {
    case LLMK_PREFILL_VERTICAL_SLASH: llmk::prefill_vs_mark_row(row, qb, p.g, ws, !p.tokens); break;
    case LLMK_PREFILL_FLEX: llmk::prefill_flex_mark_row(row, qb, p.g, p.infos[h], ws); break;
    case LLMK_PREFILL_BLOCK_TOPK:
      llmk::prefill_topk_row(sc, row, qb, p.g, p.top_k, p.force_diag != 0, ws.heap + qb * p.g.nkb);
      break;
    default: llmk::prefill_xattn_row(sc, row, qb, p.g, p.threshold, ws.heap + qb * p.g.nkb); break;
  }
}

__global__ void __launch_bounds__(kCountThreads) count_heads(const __grid_constant__ SelectParams p) {
  __shared__ int64_t warp_sums[kCountThreads / 32];
  const int64_t h = blockIdx.x, head = p.head0 + h;
  const uint8_t* sel = p.selection + head * p.tiles;
  int64_t n = 0;
  for (int64_t t = threadIdx.x; t < p.tiles; t += blockDim.x) n += sel[t] != 0;
  for (int o = 16; o > 0; o >>= 1) n += __shfl_xor_sync(0xffffffffu, n, o);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = n;
  __syncthreads();
  if (threadIdx.x != 0) return;
  int64_t blocks = 0;
  for (int w = 0; w < kCountThreads / 32; ++w) blocks += warp_sums[w];
  PrefillHeadInfo info;
  if (p.method == LLMK_PREFILL_VERTICAL_SLASH || p.method == LLMK_PREFILL_FLEX) {
    info = p.infos[h];
  } else {
    info.pattern = p.method == LLMK_PREFILL_BLOCK_TOPK ? LLMK_PREFILL_PAT_BLOCK_TOPK : LLMK_PREFILL_PAT_XATTN;
    info.verticals = info.slashes = info.columns = 0;
    info.divergence = NAN;
  }
  int64_t* hc = p.head_counts + head * 5;
  hc[0] = info.pattern;
  hc[1] = info.verticals;
  hc[2] = info.slashes;
  hc[3] = blocks;
  hc[4] = info.columns;
  if (p.divergence != nullptr) p.divergence[head] = static_cast<float>(info.divergence);
}

int32_t device_of(int64_t device, int32_t* out) {
  if (device < 0 || device > INT32_MAX) {
    return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "device must be a CUDA device ordinal; got " + std::to_string(device));
  }
  *out = static_cast<int32_t>(device);
  return LLMK_OK;
}

}  // namespace

extern "C" int32_t llmk_prefill_select_cuda(const llmk_prefill_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_prefill_args(args, llmk::PrefillStage::kSelect));
    const llmk_prefill_args& a = *args;
    int32_t device = 0;
    LLMK_TRY_STATUS(device_of(a.device, &device));
    LLMK_TRY_STATUS(llmk::attn::require_aligned(a.scores, 4, "scores"));
    LLMK_TRY_STATUS(llmk::attn::require_aligned(a.head_counts, 8, "head_counts"));
    LLMK_TRY_STATUS(llmk::attn::require_aligned(a.head_divergence, 4, "head_divergence"));
    LLMK_TRY_STATUS(llmk::attn::require_aligned(a.columns, 4, "columns"));
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    cudaStream_t st = reinterpret_cast<cudaStream_t>(a.stream);
    SelectParams p;
    p.method = a.method;
    p.g = llmk::prefill_geom_of(a);
    p.flex = llmk::prefill_flex_params(a);
    p.per_head = llmk::prefill_scores_per_head(a);
    p.tiles = p.g.nqb * p.g.nkb;
    p.ws_bytes = llmk::prefill_ws_bytes(p.g);
    p.vsize = a.vertical_size;
    p.ssize = a.slash_size;
    p.fc = a.forced_columns;
    p.fs = a.forced_slashes;
    p.top_k = a.top_k;
    p.force_diag = (a.flags & LLMK_PREFILL_FORCE_DIAGONAL) != 0;
    p.threshold = a.threshold;
    p.tokens = a.method == LLMK_PREFILL_VERTICAL_SLASH && (a.flags & LLMK_PREFILL_COLUMN_TOKENS) != 0;
    p.columns = reinterpret_cast<int32_t*>(a.columns);
    p.scores = reinterpret_cast<const float*>(a.scores);
    p.selection = reinterpret_cast<uint8_t*>(a.selection);
    p.head_counts = reinterpret_cast<int64_t*>(a.head_counts);
    p.divergence = reinterpret_cast<float*>(a.head_divergence);
    const int64_t heads = a.batch * a.heads_q;
    const int64_t info_bytes = llmk::prefill_round8(static_cast<int64_t>(sizeof(PrefillHeadInfo)));
    int64_t group = kWorkspaceCap / (p.ws_bytes + info_bytes);
    group = group < 1 ? 1 : (group > heads ? heads : group);
    llmk::kv::Scratch scratch(st);
    LLMK_TRY_STATUS(scratch.alloc(static_cast<size_t>(group * (p.ws_bytes + info_bytes))));
    p.infos = scratch.as<PrefillHeadInfo>();
    p.ws = scratch.as<unsigned char>(static_cast<size_t>(group * info_bytes));
    LLMK_CUDA_TRY(cudaMemsetAsync(p.selection, 0, static_cast<size_t>(heads * p.tiles), st));
    const bool per_head = a.method == LLMK_PREFILL_VERTICAL_SLASH || a.method == LLMK_PREFILL_FLEX;
    for (int64_t h0 = 0; h0 < heads; h0 += group) {
      p.head0 = h0;
      p.heads = heads - h0 < group ? heads - h0 : group;
      if (per_head) {
        llmk::launch(choose_heads, static_cast<unsigned>((p.heads + kHeadThreads - 1) / kHeadThreads), kHeadThreads, 0, st, p);
        LLMK_CUDA_CHECK_LAUNCH("choose_heads");
      }
      const int64_t rows = p.heads * p.g.nqb;
      llmk::launch(select_rows, static_cast<unsigned>((rows + kRowThreads - 1) / kRowThreads), kRowThreads, 0, st, p);
      LLMK_CUDA_CHECK_LAUNCH("select_rows");
      llmk::launch(count_heads, static_cast<unsigned>(p.heads), kCountThreads, 0, st, p);
      LLMK_CUDA_CHECK_LAUNCH("count_heads");
    }
    return scratch.release();
  });
}
