/* KV cache compaction on the GPU: moving the kept rows.
 *
 * Varlen gather: dst[cu[bh] + i, :] = src[bh, kept[bh, i], :] for i < cu[bh + 1] - cu[bh].
 * In place (hole filling): per head, the kept slots at or beyond count move, in ascending order,
 * into the free slots below count, in ascending order; sources (>= count) and destinations
 * (< count) are disjoint, so every row of every head moves in parallel.
 *
 * Both validate first, on the device, like cuda/gather.cu: validation kernels record the lowest
 * bad position in a verdict (atomicMin), the move kernel reads the verdict and writes nothing if
 * it is set, and the host reads the verdict back (one small synchronous copy) to report the
 * position. The move kernels re-check every index they use (a concurrent change of kept is
 * reported, never an out-of-bounds access). All offsets are 64-bit.
 *
 * Row copies: lanes_per_row threads (a power of two <= 32) per row, with 16-byte words when the
 * row size and base pointers allow, else 4-byte words (positions, F32 rows), else bytes. */
#include <string>
#include <vector>

#include "cuda_check.cuh"
#include "kv_args.h"
#include "kv_common.cuh"
#include "launch.cuh"

namespace {

using llmk::kv::kClean;
constexpr int kThreads = 256;

// Varlen gather verdict slots.
constexpr int kBadCu = 0, kBadKept = 1, kNullData = 2, kKeptChanged = 3, kGatherSlots = 4;
// In-place verdict slots.
constexpr int kBadCount = 0, kBadSlot = 1, kSlotChanged = 2, kCompactSlots = 3;

__global__ void validate_cu(const int64_t* __restrict__ cu, int64_t heads, int64_t max_keep,
                            unsigned long long* verdict) {
  for (int64_t h = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; h < heads;
       h += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (h == 0 && cu[0] != 0) atomicMin(&verdict[kBadCu], 0ull);
    const int64_t count = cu[h + 1] - cu[h];
    if (count < 0 || count > max_keep) atomicMin(&verdict[kBadCu], static_cast<unsigned long long>(h + 1));
  }
}

__global__ void validate_varlen_kept(const int32_t* __restrict__ kept, const int64_t* __restrict__ cu, int64_t heads,
                                     int64_t N, int64_t max_keep, bool null_data, unsigned long long* verdict) {
  if (verdict[kBadCu] != kClean) return;  // counts unknown: kept cannot be judged
  if (blockIdx.x == 0 && threadIdx.x == 0 && null_data && cu[heads] > 0) atomicMin(&verdict[kNullData], 0ull);
  const int64_t total = heads * max_keep;
  for (int64_t f = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; f < total;
       f += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t h = f / max_keep, i = f - h * max_keep;
    if (i >= cu[h + 1] - cu[h]) continue;
    const int32_t v = kept[f];
    if (v < 0 || v >= N) atomicMin(&verdict[kBadKept], static_cast<unsigned long long>(f));
  }
}

template <typename Word>
__device__ __forceinline__ void copy_row(const unsigned char* in, unsigned char* out, int64_t words, int lane,
                                         int lanes) {
  const Word* s = reinterpret_cast<const Word*>(in);
  Word* d = reinterpret_cast<Word*>(out);
  for (int64_t w = lane; w < words; w += lanes) d[w] = s[w];
}

template <typename Word>
__global__ void gather_varlen_rows(const unsigned char* __restrict__ src, const int32_t* kept,
                                   const int64_t* __restrict__ cu, unsigned char* __restrict__ dst, int64_t heads,
                                   int64_t N, int64_t max_keep, int64_t row_bytes, int lanes,
                                   unsigned long long* verdict) {
  if (verdict[kBadCu] != kClean || verdict[kBadKept] != kClean || verdict[kNullData] != kClean) return;
  const int lane = threadIdx.x % lanes;
  const int64_t rows_per_block = blockDim.x / lanes;
  const int64_t total = heads * max_keep;
  const int64_t words = row_bytes / static_cast<int64_t>(sizeof(Word));
  for (int64_t f = blockIdx.x * rows_per_block + threadIdx.x / lanes; f < total;
       f += static_cast<int64_t>(gridDim.x) * rows_per_block) {
    const int64_t h = f / max_keep, i = f - h * max_keep;
    const int64_t base = cu[h];
    if (i >= cu[h + 1] - base) continue;
    const int32_t v = *reinterpret_cast<const volatile int32_t*>(kept + f);
    if (v < 0 || v >= N) {  // changed since validation
      if (lane == 0) atomicMin(&verdict[kKeptChanged], static_cast<unsigned long long>(f));
      continue;
    }
    copy_row<Word>(src + (h * N + v) * row_bytes, dst + (base + i) * row_bytes, words, lane, lanes);
  }
}

__global__ void validate_counts(const int32_t* __restrict__ counts, int64_t heads, int64_t limit,
                                unsigned long long* verdict) {
  for (int64_t h = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; h < heads;
       h += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t c = counts[h];
    if (c < 0 || c > limit) atomicMin(&verdict[kBadCount], static_cast<unsigned long long>(h));
  }
}

__global__ void validate_slots(const int32_t* __restrict__ kept, const int32_t* __restrict__ counts, int64_t heads,
                               int64_t capacity, int64_t max_keep, unsigned long long* verdict) {
  if (verdict[kBadCount] != kClean) return;
  const int64_t total = heads * max_keep;
  for (int64_t f = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; f < total;
       f += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t h = f / max_keep, i = f - h * max_keep;
    if (i >= counts[h]) continue;
    const int32_t v = kept[f];
    if (v < 0 || v >= capacity || (i > 0 && kept[f - 1] >= v)) {
      atomicMin(&verdict[kBadSlot], static_cast<unsigned long long>(f));
    }
  }
}

/* Item (h, i) with kept[h, i] >= count moves to the (i - m0)-th free slot below count, where m0
 * is the number of kept slots below count. Free slots before kept[e] number kept[e] - e (non-
 * decreasing in e), so the t-th free slot is t + #{e < m0 : kept[e] - e <= t}. */
template <typename Word>
__global__ void fill_holes(unsigned char* cache, const int32_t* kept, const int32_t* __restrict__ counts,
                           int64_t heads, int64_t capacity, int64_t max_keep, int64_t row_bytes, int lanes,
                           unsigned long long* verdict) {
  if (verdict[kBadCount] != kClean || verdict[kBadSlot] != kClean) return;
  const int lane = threadIdx.x % lanes;
  const int64_t rows_per_block = blockDim.x / lanes;
  const int64_t total = heads * max_keep;
  const int64_t words = row_bytes / static_cast<int64_t>(sizeof(Word));
  for (int64_t f = blockIdx.x * rows_per_block + threadIdx.x / lanes; f < total;
       f += static_cast<int64_t>(gridDim.x) * rows_per_block) {
    const int64_t h = f / max_keep, i = f - h * max_keep;
    const int64_t count = counts[h];
    if (i >= count) continue;
    const int32_t* row = kept + h * max_keep;
    const int64_t v = row[i];
    if (v < count) continue;  // already in place (or changed: caught below only if it moves)
    int64_t lo = 0, hi = i;   // m0 = first e in [0, i] with row[e] >= count
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (row[mid] >= count) hi = mid; else lo = mid + 1;
    }
    const int64_t m0 = lo, t = i - m0;
    lo = 0;
    hi = m0;  // a = #{e < m0 : row[e] - e <= t}
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (row[mid] - mid <= t) lo = mid + 1; else hi = mid;
    }
    const int64_t hole = t + lo;
    if (v >= capacity || hole < 0 || hole >= count) {  // kept changed since validation
      if (lane == 0) atomicMin(&verdict[kSlotChanged], static_cast<unsigned long long>(f));
      continue;
    }
    unsigned char* head = cache + h * capacity * row_bytes;
    copy_row<Word>(head + v * row_bytes, head + hole * row_bytes, words, lane, lanes);
  }
}

int lanes_for(int64_t words) {
  int lanes = 1;
  while (lanes < 32 && lanes < words) lanes *= 2;
  return lanes;
}

bool aligned(const void* p, uintptr_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

/* Word size for rows of row_bytes between the given base pointers. */
int word_bytes(int64_t row_bytes, const void* a, const void* b) {
  if (row_bytes % 16 == 0 && aligned(a, 16) && aligned(b, 16)) return 16;
  if (row_bytes % 4 == 0 && aligned(a, 4) && aligned(b, 4)) return 4;
  return 1;
}

std::string head_name(int64_t bh, int64_t H) { return std::to_string(bh / H) + ", " + std::to_string(bh % H); }

}  // namespace

extern "C" int32_t llmk_kv_gather_varlen_cuda(int32_t device, const void* src, const int32_t* kept,
                                              const int64_t* cu, void* dst, int64_t B, int64_t H, int64_t N,
                                              int64_t max_keep, int64_t row_bytes, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_kv_gather_varlen_args(src, kept, cu, dst, B, H, N, max_keep, row_bytes));
    const int64_t heads = B * H;
    if (heads == 0) return LLMK_OK;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    llmk::kv::Scratch verdict_buf(st);
    unsigned long long* verdict = nullptr;
    LLMK_TRY_STATUS(verdict_buf.alloc_verdict(kGatherSlots, &verdict));
    llmk::launch(validate_cu, llmk::kv::grid_for(heads, kThreads), kThreads, 0, st, cu, heads, max_keep, verdict);
    LLMK_CUDA_CHECK_LAUNCH("validate_cu");
    const int64_t items = heads * max_keep;
    const bool null_data = row_bytes > 0 && (src == nullptr || dst == nullptr);
    llmk::launch(validate_varlen_kept, llmk::kv::grid_for(items, kThreads), kThreads, 0, st, kept, cu, heads, N, max_keep,
                                                                                    null_data, verdict);
    LLMK_CUDA_CHECK_LAUNCH("validate_varlen_kept");
    if (row_bytes > 0 && items > 0 && !null_data) {
      const auto* in = static_cast<const unsigned char*>(src);
      auto* out = static_cast<unsigned char*>(dst);
      const int wb = word_bytes(row_bytes, src, dst);
      const int lanes = lanes_for(row_bytes / wb);
      const int grid = llmk::kv::grid_for(items, kThreads / lanes);
      if (wb == 16) {
        llmk::launch(gather_varlen_rows<uint4>, grid, kThreads, 0, st, in, kept, cu, out, heads, N, max_keep, row_bytes, lanes, verdict);
      } else if (wb == 4) {
        llmk::launch(gather_varlen_rows<uint32_t>, grid, kThreads, 0, st, in, kept, cu, out, heads, N, max_keep, row_bytes, lanes,
                                                                verdict);
      } else {
        llmk::launch(gather_varlen_rows<unsigned char>, grid, kThreads, 0, st, in, kept, cu, out, heads, N, max_keep, row_bytes,
                                                                     lanes, verdict);
      }
      LLMK_CUDA_CHECK_LAUNCH("gather_varlen_rows");
    }
    unsigned long long v[kGatherSlots];
    LLMK_CUDA_TRY(cudaMemcpyAsync(v, verdict, sizeof v, cudaMemcpyDeviceToHost, st));
    LLMK_CUDA_TRY(cudaStreamSynchronize(st));
    LLMK_TRY_STATUS(verdict_buf.release());
    if (v[kBadCu] != kClean) {
      std::vector<int64_t> host_cu(static_cast<size_t>(heads + 1));
      LLMK_CUDA_TRY(cudaMemcpyAsync(host_cu.data(), cu, host_cu.size() * sizeof(int64_t), cudaMemcpyDeviceToHost, st));
      LLMK_CUDA_TRY(cudaStreamSynchronize(st));
      LLMK_TRY_STATUS(llmk::check_kv_cu_host(host_cu.data(), heads, max_keep, "cu"));
      return llmk::fail(LLMK_ERR_OUT_OF_RANGE, "cu changed while the gather ran (head " +
                                                   std::to_string(v[kBadCu]) + ")");
    }
    if (v[kBadKept] != kClean) {
      const int64_t f = static_cast<int64_t>(v[kBadKept]);
      int32_t value = 0;
      LLMK_CUDA_TRY(cudaMemcpyAsync(&value, kept + f, sizeof(value), cudaMemcpyDeviceToHost, st));
      LLMK_CUDA_TRY(cudaStreamSynchronize(st));
      return llmk::fail(LLMK_ERR_OUT_OF_RANGE, "kept[" + head_name(f / max_keep, H) + ", " +
                                                   std::to_string(f % max_keep) + "] = " + std::to_string(value) +
                                                   " is outside [0, N = " + std::to_string(N) + "); nothing was written");
    }
    if (v[kNullData] != kClean) {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "src and dst must not be null when cu moves rows");
    }
    if (v[kKeptChanged] != kClean) {
      return llmk::fail(LLMK_ERR_OUT_OF_RANGE, "kept changed while the gather ran (flat position " +
                                                   std::to_string(v[kKeptChanged]) + "); dst is partly written");
    }
    return LLMK_OK;
  });
}

extern "C" int32_t llmk_kv_compact_inplace_cuda(int32_t device, void* cache, const int32_t* kept,
                                                const int32_t* counts, int64_t B, int64_t H, int64_t capacity,
                                                int64_t max_keep, int64_t row_bytes, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_kv_compact_args(cache, kept, counts, B, H, capacity, max_keep, row_bytes));
    const int64_t heads = B * H;
    if (heads == 0) return LLMK_OK;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    llmk::kv::Scratch verdict_buf(st);
    unsigned long long* verdict = nullptr;
    LLMK_TRY_STATUS(verdict_buf.alloc_verdict(kCompactSlots, &verdict));
    const int64_t limit = capacity < max_keep ? capacity : max_keep;
    llmk::launch(validate_counts, llmk::kv::grid_for(heads, kThreads), kThreads, 0, st, counts, heads, limit, verdict);
    LLMK_CUDA_CHECK_LAUNCH("validate_counts");
    const int64_t items = heads * max_keep;
    if (items > 0) {
      llmk::launch(validate_slots, llmk::kv::grid_for(items, kThreads), kThreads, 0, st, kept, counts, heads, capacity, max_keep,
                                                                                verdict);
      LLMK_CUDA_CHECK_LAUNCH("validate_slots");
    }
    if (items > 0 && row_bytes > 0 && capacity > 0) {
      auto* c = static_cast<unsigned char*>(cache);
      const int wb = word_bytes(row_bytes, cache, cache);
      const int lanes = lanes_for(row_bytes / wb);
      const int grid = llmk::kv::grid_for(items, kThreads / lanes);
      if (wb == 16) {
        llmk::launch(fill_holes<uint4>, grid, kThreads, 0, st, c, kept, counts, heads, capacity, max_keep, row_bytes, lanes, verdict);
      } else if (wb == 4) {
        llmk::launch(fill_holes<uint32_t>, grid, kThreads, 0, st, c, kept, counts, heads, capacity, max_keep, row_bytes, lanes,
                                                        verdict);
      } else {
        llmk::launch(fill_holes<unsigned char>, grid, kThreads, 0, st, c, kept, counts, heads, capacity, max_keep, row_bytes,
                                                             lanes, verdict);
      }
      LLMK_CUDA_CHECK_LAUNCH("fill_holes");
    }
    unsigned long long v[kCompactSlots];
    LLMK_CUDA_TRY(cudaMemcpyAsync(v, verdict, sizeof v, cudaMemcpyDeviceToHost, st));
    LLMK_CUDA_TRY(cudaStreamSynchronize(st));
    LLMK_TRY_STATUS(verdict_buf.release());
    if (v[kBadCount] != kClean) {
      const int64_t h = static_cast<int64_t>(v[kBadCount]);
      int32_t value = 0;
      LLMK_CUDA_TRY(cudaMemcpyAsync(&value, counts + h, sizeof(value), cudaMemcpyDeviceToHost, st));
      LLMK_CUDA_TRY(cudaStreamSynchronize(st));
      return llmk::fail(LLMK_ERR_OUT_OF_RANGE, "counts[" + head_name(h, H) + "] = " + std::to_string(value) +
                                                   " must be in [0, " + std::to_string(limit) +
                                                   " (min(capacity, max_keep))]; nothing was moved");
    }
    if (v[kBadSlot] != kClean) {
      const int64_t f = static_cast<int64_t>(v[kBadSlot]);
      const int64_t i = f % max_keep;
      int32_t pair[2] = {-1, 0};  // kept[f - 1] (if i > 0), kept[f]
      LLMK_CUDA_TRY(cudaMemcpyAsync(i > 0 ? pair : pair + 1, kept + (i > 0 ? f - 1 : f),
                                    (i > 0 ? 2 : 1) * sizeof(int32_t), cudaMemcpyDeviceToHost, st));
      LLMK_CUDA_TRY(cudaStreamSynchronize(st));
      std::string msg = "kept[" + head_name(f / max_keep, H) + ", " + std::to_string(i) + "] = " +
                        std::to_string(pair[1]);
      if (pair[1] < 0 || pair[1] >= capacity) {
        msg += " is outside [0, capacity = " + std::to_string(capacity) + ")";
      } else {
        msg += " is not above the previous kept slot " + std::to_string(pair[0]) + " (must be strictly ascending)";
      }
      return llmk::fail(LLMK_ERR_OUT_OF_RANGE, msg + "; nothing was moved");
    }
    if (v[kSlotChanged] != kClean) {
      return llmk::fail(LLMK_ERR_OUT_OF_RANGE, "kept changed while the compaction ran (flat position " +
                                                   std::to_string(v[kSlotChanged]) + "); the cache is partly moved");
    }
    return LLMK_OK;
  });
}
