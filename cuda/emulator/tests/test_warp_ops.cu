/* Warp and block intrinsics of the emulated dialect (emu.h) against plain loops written from the
 * CUDA programming guide's definitions: shuffles (all four kinds, widths 32/16/8, 64-bit values),
 * ballot, match_any, the predicate barriers, __syncwarp, atomics, __byte_perm, __popc, __ffs.
 * Every result is independent of the order in which the emulator resumes threads. */
#include <algorithm>
#include <random>

#include "emu_test.h"

namespace {

constexpr int kThreads = 64;  // two warps: warp 1's lanes must not see warp 0's values

// ---- shuffles ------------------------------------------------------------------------------------
constexpr int kWidths[3] = {32, 16, 8};
enum ShuffleCase { kIdx, kUp, kDown, kXor, kXorWide, kShuffleCases };
constexpr int kUpDelta = 3, kDownDelta = 5, kXorMask = 5;
int src_lane(int lane) { return (lane * 7 + 3) % 37; }  // also >= width and >= 32: taken modulo width

__global__ void shuffle_kernel(const int64_t* vals, int64_t* out, int64_t* partial) {
  const int tid = threadIdx.x, lane = tid % 32;
  const int64_t v = vals[tid];
  for (int w = 0; w < 3; ++w) {
    const int width = kWidths[w];
    int64_t* o = out + w * kShuffleCases * kThreads + tid;
    o[kIdx * kThreads] = __shfl_sync(0xffffffffu, v, src_lane(lane), width);
    o[kUp * kThreads] = __shfl_up_sync(0xffffffffu, v, kUpDelta, width);
    o[kDown * kThreads] = __shfl_down_sync(0xffffffffu, v, kDownDelta, width);
    o[kXor * kThreads] = __shfl_xor_sync(0xffffffffu, v, kXorMask, width);
    // A lane mask reaching past the segment: earlier segments are readable, later ones not.
    o[kXorWide * kThreads] = __shfl_xor_sync(0xffffffffu, v, width == 32 ? 16 : width, width);
  }
  // Partial masks: only the named lanes take part; the others do no further collective (the
  // emulator keeps one pending collective per warp: emu_internal.h, WarpSlot).
  partial[tid] = -1;
  if (tid < 32 && lane % 2 == 0) partial[tid] = __shfl_xor_sync(0x55555555u, v, 2);
  if (tid >= 32 && lane < 16) partial[tid] = __shfl_sync(0x0000ffffu, v, (lane + 1) % 16, 16);
}

void test_shuffles(std::mt19937_64& rng) {
  std::vector<int64_t> vals(kThreads);
  for (int64_t& v : vals) v = static_cast<int64_t>(rng());  // both halves random: 64-bit transfer
  emu_test::DeviceBuffer<int64_t> d_vals(vals), d_out(3 * kShuffleCases * kThreads), d_partial(kThreads);
  llmk::launch(shuffle_kernel, dim3(1), dim3(kThreads), 0, nullptr, d_vals.ptr, d_out.ptr, d_partial.ptr);
  EXPECT_LAUNCH_OK("shuffles");
  const std::vector<int64_t> out = d_out.download(), partial = d_partial.download();
  for (int w = 0; w < 3; ++w) {
    const int width = kWidths[w];
    for (int tid = 0; tid < kThreads; ++tid) {
      const int warp_base = tid / 32 * 32, lane = tid % 32;
      const int seg = lane / width * width, in_seg = lane % width;  // segment start, position in it
      auto v = [&](int l) { return vals[static_cast<size_t>(warp_base + l)]; };
      int64_t want[kShuffleCases];
      want[kIdx] = v(seg + src_lane(lane) % width);
      want[kUp] = in_seg >= kUpDelta ? v(lane - kUpDelta) : v(lane);
      want[kDown] = in_seg + kDownDelta < width ? v(lane + kDownDelta) : v(lane);
      const int x = lane ^ kXorMask;
      want[kXor] = x < seg + width ? v(x) : v(lane);
      const int xw = lane ^ (width == 32 ? 16 : width);
      want[kXorWide] = xw < seg + width ? v(xw) : v(lane);
      for (int c = 0; c < kShuffleCases; ++c) {
        const int64_t got = out[static_cast<size_t>((w * kShuffleCases + c) * kThreads + tid)];
        if (got != want[c])
          emu_test::report(__FILE__, __LINE__,
                           "shuffle case " + std::to_string(c) + " width " + std::to_string(width) + " thread " +
                               std::to_string(tid) + ": wrong value");
      }
    }
  }
  for (int tid = 0; tid < kThreads; ++tid) {
    const int base = tid / 32 * 32, lane = tid % 32;
    if (tid < 32) EXPECT_EQ(partial[tid], lane % 2 == 0 ? vals[base + (lane ^ 2)] : -1);
    else EXPECT_EQ(partial[tid], lane < 16 ? vals[base + (lane + 1) % 16] : -1);
  }
}

// ---- ballot, match_any ---------------------------------------------------------------------------
__global__ void vote_kernel(const int* pred, const int64_t* key, unsigned* ballot, unsigned* half_ballot,
                            unsigned* match) {
  const int tid = threadIdx.x;
  ballot[tid] = __ballot_sync(0xffffffffu, pred[tid]);
  match[tid] = __match_any_sync(0xffffffffu, key[tid]);
  half_ballot[tid] = 0xdeadu;
  if (tid % 32 < 16) half_ballot[tid] = __ballot_sync(0x0000ffffu, pred[tid]);  // last: lanes 16-31 exit
}

void test_votes(std::mt19937_64& rng) {
  std::vector<int> pred(kThreads);
  std::vector<int64_t> key(kThreads);
  for (int tid = 0; tid < kThreads; ++tid) {
    pred[tid] = rng() % 3 == 0 ? static_cast<int>(rng() % 100) - 50 : 0;  // any nonzero value counts
    // Five classes that differ only in the upper 32 bits: match_any compares all 64.
    key[tid] = static_cast<int64_t>(((rng() % 5) << 40) | 0x1234);
  }
  emu_test::DeviceBuffer<int> d_pred(pred);
  emu_test::DeviceBuffer<int64_t> d_key(key);
  emu_test::DeviceBuffer<unsigned> d_ballot(kThreads), d_half(kThreads), d_match(kThreads);
  llmk::launch(vote_kernel, dim3(1), dim3(kThreads), 0, nullptr, d_pred.ptr, d_key.ptr, d_ballot.ptr, d_half.ptr,
               d_match.ptr);
  EXPECT_LAUNCH_OK("votes");
  const std::vector<unsigned> ballot = d_ballot.download(), half = d_half.download(), match = d_match.download();
  for (int tid = 0; tid < kThreads; ++tid) {
    const int base = tid / 32 * 32;
    unsigned want_ballot = 0, want_match = 0;
    for (int l = 0; l < 32; ++l) {
      if (pred[base + l] != 0) want_ballot |= 1u << l;
      if (key[base + l] == key[tid]) want_match |= 1u << l;
    }
    EXPECT_EQ(ballot[tid], want_ballot);
    EXPECT_EQ(half[tid], tid % 32 < 16 ? (want_ballot & 0xffffu) : 0xdeadu);  // only the mask's lanes
    EXPECT_EQ(match[tid], want_match);
  }
}

// ---- __syncthreads_or / _count / _and, __syncwarp ------------------------------------------------
constexpr int kBarThreads = 80;  // a partial last warp: the barrier counts threads, not warps
constexpr int kPatterns = 4;

__global__ void barrier_kernel(const int* pred, int* out) {
  const int tid = threadIdx.x;
  for (int p = 0; p < kPatterns; ++p) {
    const int x = pred[p * kBarThreads + tid];
    out[(p * 3 + 0) * kBarThreads + tid] = __syncthreads_or(x);
    out[(p * 3 + 1) * kBarThreads + tid] = __syncthreads_count(x);
    out[(p * 3 + 2) * kBarThreads + tid] = __syncthreads_and(x);
  }
}

void test_block_votes(std::mt19937_64& rng) {
  std::vector<int> pred(kPatterns * kBarThreads, 0);  // pattern 0: none
  pred[1 * kBarThreads + kBarThreads - 1] = 7;         // pattern 1: only the last thread (value 7)
  for (int t = 0; t < kBarThreads; ++t) {
    pred[2 * kBarThreads + t] = -1 - t;                // pattern 2: all, with different values
    pred[3 * kBarThreads + t] = static_cast<int>(rng() % 2);
  }
  emu_test::DeviceBuffer<int> d_pred(pred), d_out(kPatterns * 3 * kBarThreads);
  llmk::launch(barrier_kernel, dim3(1), dim3(kBarThreads), 0, nullptr, d_pred.ptr, d_out.ptr);
  EXPECT_LAUNCH_OK("predicate barriers");
  const std::vector<int> out = d_out.download();
  for (int p = 0; p < kPatterns; ++p) {
    int any = 0, count = 0, all = 1;
    for (int t = 0; t < kBarThreads; ++t) {
      const bool x = pred[p * kBarThreads + t] != 0;
      any = any || x;
      count += x;
      all = all && x;
    }
    for (int t = 0; t < kBarThreads; ++t) {
      EXPECT_EQ(out[(p * 3 + 0) * kBarThreads + t] != 0, any != 0);
      EXPECT_EQ(out[(p * 3 + 1) * kBarThreads + t], count);
      EXPECT_EQ(out[(p * 3 + 2) * kBarThreads + t] != 0, all != 0);
    }
  }
}

/* Each lane writes its word, syncs, reads its neighbour's. Without a working __syncwarp the
 * first (or, resumed in reverse, the last) lane to run reads the neighbour's slot while it still
 * holds the shared-memory poison. Second round: half a warp syncs on its own mask (the low half
 * in warp 0, the high half in warp 1); the other half exits. */
__global__ void syncwarp_kernel(int* out) {
  __shared__ int words[kThreads];
  const int tid = threadIdx.x, lane = tid % 32, base = tid - lane;
  words[tid] = 1000 + tid;
  __syncwarp();
  out[tid] = words[base + (lane + 1) % 32];
  __syncwarp();  // every read above is done before the words change
  const int half = tid < 32 ? 0 : 16;
  out[kThreads + tid] = -1;
  if ((lane & 16) != half) return;
  words[tid] = 2000 + tid;
  __syncwarp(0xffffu << half);
  out[kThreads + tid] = words[base + half + (lane + 1) % 16];
}

void test_syncwarp() {
  emu_test::DeviceBuffer<int> d_out(2 * kThreads);
  llmk::launch(syncwarp_kernel, dim3(1), dim3(kThreads), 0, nullptr, d_out.ptr);
  EXPECT_LAUNCH_OK("__syncwarp");
  const std::vector<int> out = d_out.download();
  for (int tid = 0; tid < kThreads; ++tid) {
    const int lane = tid % 32, base = tid - lane, half = tid < 32 ? 0 : 16;
    EXPECT_EQ(out[tid], 1000 + base + (lane + 1) % 32);
    EXPECT_EQ(out[kThreads + tid], (lane & 16) == half ? 2000 + base + half + (lane + 1) % 16 : -1);
  }
}

// ---- atomics -------------------------------------------------------------------------------------
constexpr int kAtomicBlocks = 4, kAtomicThreads = 128, kAtomicAll = kAtomicBlocks * kAtomicThreads;
constexpr uint32_t kU32Step = 0x10000001u;  // wraps around: the sum is taken modulo 2^32

struct Sums {
  float f;
  unsigned u32;
  unsigned long long u64;
  __half h;
  __nv_bfloat16 b;
  __half2 h2;
  __nv_bfloat162 b2;
  int imin, imax;
  unsigned umin, umax;
  unsigned long long lmin, lmax;
};

/* Increments chosen so that every partial sum is exact in its type (f16: integers to 2048,
 * bf16: to 256, hence bf16 only from 256 threads): the result does not depend on the order. */
__global__ void atomic_kernel(Sums* s, const int* ival, const unsigned long long* lval, float* f_old, unsigned* u_old) {
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  f_old[g] = atomicAdd(&s->f, 0.5f);
  u_old[g] = atomicAdd(&s->u32, kU32Step);
  atomicAdd(&s->u64, (1ull << 33) + static_cast<unsigned long long>(g));
  atomicAdd(&s->h, __float2half_rn(1.0f));
  atomicAdd(&s->h2, __floats2half2_rn(1.0f, -2.0f));
  if (threadIdx.x < 64) {
    atomicAdd(&s->b, __float2bfloat16_rn(1.0f));
    atomicAdd(&s->b2, __floats2bfloat162_rn(0.5f, -1.0f));
  }
  atomicMin(&s->imin, ival[g]);
  atomicMax(&s->imax, ival[g]);
  atomicMin(&s->umin, static_cast<unsigned>(ival[g]));
  atomicMax(&s->umax, static_cast<unsigned>(ival[g]));
  atomicMin(&s->lmin, lval[g]);
  atomicMax(&s->lmax, lval[g]);
}

void test_atomics(std::mt19937_64& rng) {
  std::vector<int> ival(kAtomicAll);
  std::vector<unsigned long long> lval(kAtomicAll);
  for (int g = 0; g < kAtomicAll; ++g) {
    ival[g] = static_cast<int>(rng());
    lval[g] = rng();
  }
  Sums init;
  std::memset(static_cast<void*>(&init), 0, sizeof(init));
  init.imin = 0x7fffffff, init.imax = -0x7fffffff - 1;
  init.umin = 0xffffffffu, init.umax = 0;
  init.lmin = ~0ull, init.lmax = 0;
  emu_test::DeviceBuffer<Sums> d_s(std::vector<Sums>{init});
  emu_test::DeviceBuffer<int> d_ival(ival);
  emu_test::DeviceBuffer<unsigned long long> d_lval(lval);
  emu_test::DeviceBuffer<float> d_fold(kAtomicAll);
  emu_test::DeviceBuffer<unsigned> d_uold(kAtomicAll);
  llmk::launch(atomic_kernel, dim3(kAtomicBlocks), dim3(kAtomicThreads), 0, nullptr, d_s.ptr, d_ival.ptr,
               d_lval.ptr, d_fold.ptr, d_uold.ptr);
  EXPECT_LAUNCH_OK("atomics");
  const Sums s = d_s.download()[0];
  EXPECT(s.f == 0.5f * kAtomicAll);
  EXPECT_EQ(s.u32, static_cast<uint32_t>(kAtomicAll * kU32Step));
  unsigned long long u64 = 0;
  for (int g = 0; g < kAtomicAll; ++g) u64 += (1ull << 33) + static_cast<unsigned long long>(g);
  EXPECT_EQ(s.u64, u64);
  EXPECT(__half2float(s.h) == kAtomicAll);
  EXPECT(__half2float(s.h2.x) == kAtomicAll && __half2float(s.h2.y) == -2.0f * kAtomicAll);
  EXPECT(__bfloat162float(s.b) == 64 * kAtomicBlocks);
  EXPECT(__bfloat162float(s.b2.x) == 32 * kAtomicBlocks && __bfloat162float(s.b2.y) == -64 * kAtomicBlocks);
  EXPECT_EQ(s.imin, *std::min_element(ival.begin(), ival.end()));
  EXPECT_EQ(s.imax, *std::max_element(ival.begin(), ival.end()));
  std::vector<unsigned> uval(ival.begin(), ival.end());
  EXPECT_EQ(s.umin, *std::min_element(uval.begin(), uval.end()));
  EXPECT_EQ(s.umax, *std::max_element(uval.begin(), uval.end()));
  EXPECT_EQ(s.lmin, *std::min_element(lval.begin(), lval.end()));
  EXPECT_EQ(s.lmax, *std::max_element(lval.begin(), lval.end()));
  // The returned old values: each intermediate sum exactly once.
  std::vector<float> f_old = d_fold.download();
  std::vector<unsigned> u_old = d_uold.download(), u_want(kAtomicAll);
  std::sort(f_old.begin(), f_old.end());
  for (int k = 0; k < kAtomicAll; ++k) {
    EXPECT(f_old[k] == 0.5f * k);
    u_want[k] = static_cast<uint32_t>(k * kU32Step);
  }
  std::sort(u_old.begin(), u_old.end());
  std::sort(u_want.begin(), u_want.end());
  EXPECT(u_old == u_want);
}

// ---- __byte_perm, __popc, __ffs ----------------------------------------------------------------
constexpr unsigned kSelectors[] = {0x3210u, 0x0123u, 0x7654u, 0x5140u, 0x4444u, 0x1706u, 0x2637u,
                                   0x8880u, 0xc9a3u};  // the last two: PTX prmt's sign-replicate bit
constexpr int kNumSelectors = sizeof(kSelectors) / sizeof(kSelectors[0]);

__global__ void bits_kernel(const unsigned* x, const unsigned* y, unsigned* perm, int* popc, int* ffs) {
  const int tid = threadIdx.x;
  for (int s = 0; s < kNumSelectors; ++s) perm[s * blockDim.x + tid] = __byte_perm(x[tid], y[tid], kSelectors[s]);
  popc[tid] = __popc(x[tid]);
  ffs[tid] = __ffs(static_cast<int>(x[tid]));
}

void test_bits(std::mt19937_64& rng) {
  std::vector<unsigned> x(kThreads), y(kThreads);
  for (int i = 0; i < kThreads; ++i) x[i] = static_cast<unsigned>(rng()), y[i] = static_cast<unsigned>(rng());
  x[0] = 0, x[1] = 1, x[2] = 0x80000000u, x[3] = 0xffffffffu, x[4] = 0x00010000u;
  emu_test::DeviceBuffer<unsigned> d_x(x), d_y(y), d_perm(kNumSelectors * kThreads);
  emu_test::DeviceBuffer<int> d_popc(kThreads), d_ffs(kThreads);
  llmk::launch(bits_kernel, dim3(1), dim3(kThreads), 0, nullptr, d_x.ptr, d_y.ptr, d_perm.ptr, d_popc.ptr,
               d_ffs.ptr);
  EXPECT_LAUNCH_OK("bit intrinsics");
  const std::vector<unsigned> perm = d_perm.download();
  const std::vector<int> popc = d_popc.download(), ffs = d_ffs.download();
  for (int i = 0; i < kThreads; ++i) {
    // Bytes 0-3 are x's, 4-7 y's, lowest first; result byte n is the byte that selector nibble
    // n names (bits 0-2); with bit 3 set, the sign bit of that byte fills the result byte.
    uint8_t in[8];
    for (int b = 0; b < 4; ++b) in[b] = static_cast<uint8_t>(x[i] >> (8 * b)), in[4 + b] = static_cast<uint8_t>(y[i] >> (8 * b));
    for (int s = 0; s < kNumSelectors; ++s) {
      unsigned want = 0;
      for (int n = 0; n < 4; ++n) {
        const unsigned nib = (kSelectors[s] >> (4 * n)) & 0xfu;
        unsigned byte = in[nib & 7u];
        if (nib & 8u) byte = (byte & 0x80u) ? 0xffu : 0x00u;
        want |= byte << (8 * n);
      }
      EXPECT_EQ(perm[s * kThreads + i], want);
    }
    int count = 0, first = 0;
    for (int b = 31; b >= 0; --b) {
      if (x[i] >> b & 1u) count++, first = b + 1;  // ends with the lowest set bit, 1-based
    }
    EXPECT_EQ(popc[i], count);
    EXPECT_EQ(ffs[i], first);
  }
}

}  // namespace

int main() {
  std::mt19937_64 rng(7);
  test_shuffles(rng);
  test_votes(rng);
  test_block_votes(rng);
  test_syncwarp();
  test_atomics(rng);
  test_bits(rng);
  return emu_test::finish("llmk_emu_warp_ops");
}
