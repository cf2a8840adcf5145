/* Block layouts of a mask program on the GPU (llmk_layout_count_cuda / llmk_layout_fill_cuda).
 *
 * Layout row r = (lb * layout_heads + lh) * num_q_blocks + qb. One warp per row: the 32 lanes
 * classify 32 consecutive KV blocks at a time with llmk::mask_tile_class (the CPU kernels'
 * classifier), and two ballots give the PARTIAL and FULL blocks of the group.
 *   count: popc of the ballots accumulates the row's counts, written to ptr[r + 1]; a single-CTA
 *          chunked scan (one CTA per array, 4096 rows per step) then turns the counts into the
 *          exclusive prefix sums in place and sets ptr[0] = 0. No allocation, no host sync.
 *   fill:  the same walk; a lane's slot is ptr[r] + popc(ballot & lanes below it), so the
 *          indices come out ascending. Writes never pass ptr[r + 1] even if ptr was changed.
 * KV blocks at or past min(seq_k, k_len) and rows at or past min(seq_q, q_len) are EMPTY by the
 * classifier's own rule, so the walk stops there without classifying them. With a selection
 * (U8 [rows, nkb]) a tile whose byte is 0 is EMPTY without classification (the CPU's rule). */
#include <string>

#include "attention_args.h"
#include "attention_common.cuh"
#include "cuda_check.cuh"
#include "launch.cuh"

namespace llmk {
namespace attn {
namespace {

constexpr int kLayoutThreads = 256;
constexpr int kLayoutWarps = kLayoutThreads / 32;
constexpr int kScanThreads = 1024;
constexpr int kScanItems = 4;
constexpr int kScanTile = kScanThreads * kScanItems;

/* ceil(n / block) for n >= 0, block >= 1, without overflow for huge blocks. */
__host__ __device__ __forceinline__ int64_t blocks_of(int64_t n, int64_t block) {
  return n <= 0 ? 0 : (n - 1) / block + 1;
}
/* min(start + block, limit) for start <= limit, without overflow. */
__host__ __device__ __forceinline__ int64_t block_end(int64_t start, int64_t block, int64_t limit) {
  return limit - start < block ? limit : start + block;
}

struct LayoutParams {
  MaskProgram prog;
  int64_t layout_heads, seq_q, seq_k, block_q, block_k, nqb, rows;
  int64_t q_lens, k_lens;  // device addresses of int32 [B] or 0
  int64_t* partial_ptr;
  int64_t* full_ptr;
  int32_t* partial_idx;  // fill only (may be null when nothing is partial)
  int32_t* full_idx;
  const uint8_t* selection;  // [rows, nkb] or null: only tiles with a non-zero byte are classified
  int64_t nkb;
};

template <bool kFill>
__global__ void __launch_bounds__(kLayoutThreads, 1) classify_rows(const __grid_constant__ LayoutParams p) {
  __shared__ llmk_mask_node s_nodes[LLMK_MASK_MAX_NODES];
  load_program(p.prog, s_nodes);
  __syncthreads();
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const unsigned lanes_below = (1u << lane) - 1u;
  const int64_t warp_stride = static_cast<int64_t>(gridDim.x) * kLayoutWarps;
  // Everything below is uniform across the warp (it depends on r only), so full-mask ballots are safe.
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kLayoutWarps + (threadIdx.x >> 5); r < p.rows;
       r += warp_stride) {
    const int64_t qb = r % p.nqb;
    const int64_t lh = (r / p.nqb) % p.layout_heads;
    const int64_t lb = r / p.nqb / p.layout_heads;
    const MaskRow mr = mask_row(lb, lh, p.q_lens, p.k_lens, p.seq_q, p.seq_k);
    const int64_t q0 = qb * p.block_q;
    const int64_t q1 = block_end(q0, p.block_q, p.seq_q);
    const int64_t k_lim = min64(p.seq_k, mr.k_len);
    const int64_t kb_end = (q0 < min64(q1, mr.q_len)) ? blocks_of(k_lim, p.block_k) : 0;
    const uint8_t* sel_row = p.selection != nullptr ? p.selection + r * p.nkb : nullptr;
    int64_t partial_pos = 0, full_pos = 0, partial_end = 0, full_end = 0;
    if (kFill) {
      partial_pos = p.partial_ptr[r];
      partial_end = p.partial_ptr[r + 1];
      full_pos = p.full_ptr[r];
      full_end = p.full_ptr[r + 1];
    }
    for (int64_t base = 0; base < kb_end; base += 32) {
      const int64_t kb = base + lane;
      int c = LLMK_TILE_EMPTY;
      if (kb < kb_end && (sel_row == nullptr || sel_row[kb] != 0)) {
        const int64_t k0 = kb * p.block_k;
        c = mask_tile_class(s_nodes, p.prog.count, mr, q0, q1, k0, block_end(k0, p.block_k, p.seq_k));
      }
      const unsigned partial = __ballot_sync(0xffffffffu, c == LLMK_TILE_PARTIAL);
      const unsigned full = __ballot_sync(0xffffffffu, c == LLMK_TILE_FULL);
      if (kFill) {
        if (c == LLMK_TILE_PARTIAL) {
          const int64_t pos = partial_pos + __popc(partial & lanes_below);
          if (pos < partial_end) p.partial_idx[pos] = static_cast<int32_t>(kb);
        } else if (c == LLMK_TILE_FULL) {
          const int64_t pos = full_pos + __popc(full & lanes_below);
          if (pos < full_end) p.full_idx[pos] = static_cast<int32_t>(kb);
        }
      }
      partial_pos += __popc(partial);
      full_pos += __popc(full);
    }
    if (!kFill && lane == 0) {
      p.partial_ptr[r + 1] = partial_pos;
      p.full_ptr[r + 1] = full_pos;
    }
  }
}

/* In place: ptr[1 .. rows] holds counts on entry and inclusive sums on exit; ptr[0] = 0. CTA 0
 * scans partial_ptr, CTA 1 full_ptr. Tiles of kScanTile rows staged in shared memory (coalesced
 * loads and stores); each thread scans kScanItems consecutive rows, then a block scan of the
 * thread totals (warp shuffles + one warp over the 32 warp totals) and a running carry. */
__global__ void __launch_bounds__(kScanThreads) scan_counts(int64_t* partial_ptr, int64_t* full_ptr, int64_t rows) {
  __shared__ int64_t tile[kScanTile];
  __shared__ int64_t warp_sums[kScanThreads / 32];
  int64_t* ptr = blockIdx.x == 0 ? partial_ptr : full_ptr;
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  int64_t carry = 0;
  for (int64_t base = 0; base < rows; base += kScanTile) {
    const int64_t n = min64(rows - base, kScanTile);
    __syncthreads();  // the previous tile's shared reads (tile, warp_sums) are done
#pragma unroll
    for (int i = 0; i < kScanItems; ++i) {
      const int idx = i * kScanThreads + tid;
      tile[idx] = idx < n ? ptr[1 + base + idx] : 0;
    }
    __syncthreads();
    int64_t local[kScanItems];
    int64_t total = 0;
#pragma unroll
    for (int i = 0; i < kScanItems; ++i) {
      total += tile[tid * kScanItems + i];
      local[i] = total;
    }
    int64_t x = total;  // inclusive warp scan of the thread totals
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int64_t y = __shfl_up_sync(0xffffffffu, x, o);
      if (lane >= o) x += y;
    }
    if (lane == 31) warp_sums[warp] = x;
    __syncthreads();
    if (warp == 0) {
      int64_t w = warp_sums[lane];
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int64_t y = __shfl_up_sync(0xffffffffu, w, o);
        if (lane >= o) w += y;
      }
      warp_sums[lane] = w;
    }
    __syncthreads();
    const int64_t prefix = carry + (x - total) + (warp > 0 ? warp_sums[warp - 1] : 0);
#pragma unroll
    for (int i = 0; i < kScanItems; ++i) tile[tid * kScanItems + i] = prefix + local[i];
    carry += warp_sums[kScanThreads / 32 - 1];
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kScanItems; ++i) {
      const int idx = i * kScanThreads + tid;
      if (idx < n) ptr[1 + base + idx] = tile[idx];
    }
  }
  if (tid == 0) ptr[0] = 0;
}

int grid_for_rows(int64_t rows) {
  const int64_t blocks = blocks_of(rows, kLayoutWarps);
  // The warp loop strides over the rest; 2^16 CTAs of 8 warps fill any GPU many times over.
  return static_cast<int>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

int32_t device_of(int64_t device, int32_t* out) {
  if (device < 0 || device > INT32_MAX) {
    return fail(LLMK_ERR_INVALID_ARGUMENT, "device must be a CUDA device ordinal; got " + std::to_string(device));
  }
  *out = static_cast<int32_t>(device);
  return LLMK_OK;
}

LayoutParams make_params(const llmk_layout_args& a) {
  LayoutParams p;
  p.prog = make_program(a.nodes, a.node_count);
  p.layout_heads = a.layout_heads;
  p.seq_q = a.seq_q;
  p.seq_k = a.seq_k;
  p.block_q = a.block_q;
  p.block_k = a.block_k;
  p.nqb = blocks_of(a.seq_q, a.block_q);
  p.rows = a.layout_batch * a.layout_heads * p.nqb;  // checked to fit by check_layout_args
  p.q_lens = a.q_lens;
  p.k_lens = a.k_lens;
  p.partial_ptr = reinterpret_cast<int64_t*>(a.partial_ptr);
  p.full_ptr = reinterpret_cast<int64_t*>(a.full_ptr);
  p.partial_idx = reinterpret_cast<int32_t*>(a.partial_idx);
  p.full_idx = reinterpret_cast<int32_t*>(a.full_idx);
  p.selection = reinterpret_cast<const uint8_t*>(a.selection);
  p.nkb = blocks_of(a.seq_k, a.block_k);
  return p;
}

int32_t check_alignment(const LayoutParams& p) {
  LLMK_TRY_STATUS(require_aligned_program(p.prog));
  LLMK_TRY_STATUS(require_aligned(p.q_lens, 4, "q_lens"));
  LLMK_TRY_STATUS(require_aligned(p.k_lens, 4, "k_lens"));
  LLMK_TRY_STATUS(require_aligned(reinterpret_cast<int64_t>(p.partial_ptr), 8, "partial_ptr"));
  LLMK_TRY_STATUS(require_aligned(reinterpret_cast<int64_t>(p.full_ptr), 8, "full_ptr"));
  LLMK_TRY_STATUS(require_aligned(reinterpret_cast<int64_t>(p.partial_idx), 4, "partial_idx"));
  return require_aligned(reinterpret_cast<int64_t>(p.full_idx), 4, "full_idx");
}

/* The fill pass with a null idx array is only valid if that array's total count is 0 (read back
 * here: this is the only synchronising path, and only taken with a null array). */
int32_t check_null_idx(const LayoutParams& p, cudaStream_t st) {
  const struct { const int32_t* idx; const int64_t* ptr; const char* name; } arrays[] = {
      {p.partial_idx, p.partial_ptr, "partial_idx"}, {p.full_idx, p.full_ptr, "full_idx"}};
  for (const auto& x : arrays) {
    if (x.idx != nullptr) continue;
    int64_t total = 0;
    LLMK_CUDA_TRY(cudaMemcpyAsync(&total, x.ptr + p.rows, sizeof(total), cudaMemcpyDeviceToHost, st));
    LLMK_CUDA_TRY(cudaStreamSynchronize(st));
    if (total != 0) {
      return fail(LLMK_ERR_INVALID_ARGUMENT, std::string(x.name) + " must not be a null pointer: the layout has " +
                                                 std::to_string(total) + " such blocks");
    }
  }
  return LLMK_OK;
}

}  // namespace
}  // namespace attn
}  // namespace llmk

extern "C" int32_t llmk_layout_count_cuda(const llmk_layout_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk::attn;
    LLMK_TRY_STATUS(llmk::check_layout_args(args, false));
    int32_t device = 0;
    LLMK_TRY_STATUS(device_of(args->device, &device));
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    cudaStream_t st = reinterpret_cast<cudaStream_t>(args->stream);
    const LayoutParams p = make_params(*args);
    LLMK_TRY_STATUS(check_alignment(p));
    if (p.rows > 0) {
      llmk::launch(classify_rows<false>, grid_for_rows(p.rows), kLayoutThreads, 0, st, p);
      LLMK_CUDA_CHECK_LAUNCH("classify_rows<count>");
    }
    llmk::launch(scan_counts, 2, kScanThreads, 0, st, p.partial_ptr, p.full_ptr, p.rows);
    LLMK_CUDA_CHECK_LAUNCH("scan_counts");
    return LLMK_OK;
  });
}

extern "C" int32_t llmk_layout_fill_cuda(const llmk_layout_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk::attn;
    LLMK_TRY_STATUS(llmk::check_layout_args(args, true));
    int32_t device = 0;
    LLMK_TRY_STATUS(device_of(args->device, &device));
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    cudaStream_t st = reinterpret_cast<cudaStream_t>(args->stream);
    const LayoutParams p = make_params(*args);
    LLMK_TRY_STATUS(check_alignment(p));
    if (p.rows == 0) return LLMK_OK;
    if (p.partial_idx == nullptr || p.full_idx == nullptr) LLMK_TRY_STATUS(check_null_idx(p, st));
    llmk::launch(classify_rows<true>, grid_for_rows(p.rows), kLayoutThreads, 0, st, p);
    LLMK_CUDA_CHECK_LAUNCH("classify_rows<fill>");
    return LLMK_OK;
  });
}
