/* The emulated PTX operations of cuda/ptx.cuh (ldmatrix, mma, mma.sp, cp.async), called as the
 * library's kernels call them, against scalar loops written from the PTX ISA's definitions:
 * every fragment below is built element by element from the ISA's row/col formulas
 * (groupID = %laneid >> 2, threadID_in_group = %laneid % 4, element i of a fragment lives in
 * register i / 2, half i % 2), not from the emulator's register-wise transcription. */
#include <algorithm>
#include <cmath>
#include <random>

#include "emu_test.h"

namespace {

// ---- 16-bit element types on the host (the toolkit's own conversions, not the emulator's)
template <typename H, H (*kRound)(float), float (*kWiden)(H)>
struct Half16 {
  using T = H;
  static uint16_t bits(float f) {
    const H h = kRound(f);
    uint16_t u;
    std::memcpy(&u, static_cast<const void*>(&h), 2);
    return u;
  }
  static double value(uint16_t u) {
    H h;
    std::memcpy(static_cast<void*>(&h), &u, 2);
    return kWiden(h);
  }
};
struct F16 : Half16<__half, __float2half_rn, __half2float> {
  static constexpr const char* name = "f16";
};
struct BF16 : Half16<__nv_bfloat16, __float2bfloat16_rn, __bfloat162float> {
  static constexpr const char* name = "bf16";
};

/* Puts 16-bit element i of a fragment into its register (i / 2), low half first. */
void put_half(uint32_t* regs, int i, uint16_t v) { regs[i / 2] |= static_cast<uint32_t>(v) << (16 * (i % 2)); }

/* A float result within `bound` * 2e-6 of the double reference: 17 to 33 float additions of
 * exact products, in any order, stay within 33 * 2^-24 * (sum of |terms|). */
bool close(float got, double want, double bound) { return std::fabs(static_cast<double>(got) - want) <= 2e-6 * bound; }

// ---- ldmatrix .x4 / .x4.trans ----------------------------------------------------------------
constexpr int kTileHalves = 4096;  // 8 KiB of 16-bit data: 512 16-byte slots to place rows in

/* Lane l passes the address of row l % 8 of matrix l / 8, at 16-byte slot slot[l]. The plain
 * form reads static __shared__ memory, the .trans form dynamic shared memory. */
__global__ void ldmatrix_kernel(const uint16_t* data, const int* slot, uint32_t* plain, uint32_t* trans) {
  __shared__ uint16_t tile[kTileHalves];
  uint16_t* dyn = llmk::dynamic_smem<uint16_t>();
  const int lane = threadIdx.x;
  for (int i = lane; i < kTileHalves; i += 32) tile[i] = dyn[i] = data[i];
  __syncwarp();
  uint32_t r[4];
  llmk::ptx::ldmatrix_x4(r, tile + 8 * slot[lane]);
  for (int i = 0; i < 4; ++i) plain[4 * lane + i] = r[i];
  llmk::ptx::ldmatrix_x4_trans(r, dyn + 8 * slot[lane]);
  for (int i = 0; i < 4; ++i) trans[4 * lane + i] = r[i];
}

void test_ldmatrix(std::mt19937& rng) {
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<uint16_t> data(kTileHalves);
    for (uint16_t& v : data) v = static_cast<uint16_t>(rng());
    // 32 distinct slots in random order: rows at irregular (16-byte aligned) addresses.
    std::vector<int> slot(kTileHalves / 8);
    for (size_t i = 0; i < slot.size(); ++i) slot[i] = static_cast<int>(i);
    std::shuffle(slot.begin(), slot.end(), rng);
    slot.resize(32);
    emu_test::DeviceBuffer<uint16_t> d_data(data);
    emu_test::DeviceBuffer<int> d_slot(slot);
    emu_test::DeviceBuffer<uint32_t> d_plain(128), d_trans(128);
    llmk::launch(ldmatrix_kernel, dim3(1), dim3(32), kTileHalves * sizeof(uint16_t), nullptr, d_data.ptr,
                 d_slot.ptr, d_plain.ptr, d_trans.ptr);
    EXPECT_LAUNCH_OK("ldmatrix");
    const std::vector<uint32_t> plain = d_plain.download(), trans = d_trans.download();
    // Element (row, col) of 8x8 matrix m as stored: column col of the row whose address lane
    // 8 m + row gave.
    auto stored = [&](int m, int row, int col) { return data[static_cast<size_t>(8 * slot[8 * m + row] + col)]; };
    for (int lane = 0; lane < 32; ++lane) {
      const int g = lane >> 2, t = lane % 4;
      for (int m = 0; m < 4; ++m) {
        // The fragment of matrix m held by the lane: row g, columns 2t and 2t + 1. With .trans
        // the matrix read is the transpose of the stored one.
        uint32_t want_plain[1] = {0}, want_trans[1] = {0};
        for (int i = 0; i < 2; ++i) {
          put_half(want_plain, i, stored(m, g, 2 * t + i));
          put_half(want_trans, i, stored(m, 2 * t + i, g));
        }
        EXPECT_EQ(plain[4 * lane + m], want_plain[0]);
        EXPECT_EQ(trans[4 * lane + m], want_trans[0]);
      }
    }
  }
}

// ---- mma.sync m16n8k16 .row.col f32 <- f16/bf16 x f16/bf16 + f32 --------------------------------
template <typename T>
__global__ void mma_kernel(const uint32_t* a, const uint32_t* b, const float* c, float* d) {
  const int lane = threadIdx.x;
  const uint32_t ar[4] = {a[4 * lane], a[4 * lane + 1], a[4 * lane + 2], a[4 * lane + 3]};
  float d0 = c[4 * lane], d1 = c[4 * lane + 1], d2 = c[4 * lane + 2], d3 = c[4 * lane + 3];
  llmk::ptx::mma_m16n8k16<T>(d0, d1, d2, d3, ar, b[2 * lane], b[2 * lane + 1]);
  d[4 * lane] = d0, d[4 * lane + 1] = d1, d[4 * lane + 2] = d2, d[4 * lane + 3] = d3;
}

/* Row and column of element i of the A fragment (m16n8k16 .f16/.bf16; also the compressed A of
 * the sparse m16n8k32). */
int a_row(int g, int i) { return (i < 2 || (i >= 4 && i < 6)) ? g : g + 8; }
int a_col(int t, int i) { return t * 2 + (i & 1) + (i >= 4 ? 8 : 0); }
// C and D: c0, c1 in row g, c2, c3 in row g + 8, columns 2t, 2t + 1.
int c_row(int g, int i) { return i < 2 ? g : g + 8; }
int c_col(int t, int i) { return t * 2 + (i & 1); }

template <typename Ty>
void test_mma(std::mt19937& rng) {
  std::uniform_real_distribution<float> val(-2.f, 2.f);
  for (int trial = 0; trial < 8; ++trial) {
    uint16_t A[16][16], B[16][8];
    float C[16][8];
    for (auto& row : A)
      for (uint16_t& v : row) v = Ty::bits(val(rng));
    for (auto& row : B)
      for (uint16_t& v : row) v = Ty::bits(val(rng));
    for (auto& row : C)
      for (float& v : row) v = 2 * val(rng);
    std::vector<uint32_t> a(32 * 4, 0), b(32 * 2, 0);
    std::vector<float> c(32 * 4);
    for (int lane = 0; lane < 32; ++lane) {
      const int g = lane >> 2, t = lane % 4;
      for (int i = 0; i < 8; ++i) put_half(&a[4 * lane], i, A[a_row(g, i)][a_col(t, i)]);
      // B: b0, b1 in rows 2t, 2t + 1, b2, b3 in rows 2t + 8, 2t + 9; column g.
      for (int i = 0; i < 4; ++i) put_half(&b[2 * lane], i, B[t * 2 + (i & 1) + (i >= 2 ? 8 : 0)][g]);
      for (int i = 0; i < 4; ++i) c[4 * lane + i] = C[c_row(g, i)][c_col(t, i)];
    }
    emu_test::DeviceBuffer<uint32_t> d_a(a), d_b(b);
    emu_test::DeviceBuffer<float> d_c(c), d_d(128);
    llmk::launch(mma_kernel<typename Ty::T>, dim3(1), dim3(32), 0, nullptr, d_a.ptr, d_b.ptr, d_c.ptr, d_d.ptr);
    EXPECT_LAUNCH_OK(Ty::name);
    const std::vector<float> d = d_d.download();
    for (int lane = 0; lane < 32; ++lane) {
      const int g = lane >> 2, t = lane % 4;
      for (int i = 0; i < 4; ++i) {
        const int r = c_row(g, i), col = c_col(t, i);
        double want = C[r][col], bound = std::fabs(C[r][col]);
        for (int k = 0; k < 16; ++k) {
          want += Ty::value(A[r][k]) * Ty::value(B[k][col]);
          bound += std::fabs(Ty::value(A[r][k]) * Ty::value(B[k][col]));
        }
        if (!close(d[4 * lane + i], want, bound)) {
          char buf[160];
          std::snprintf(buf, sizeof(buf), "mma %s lane %d d%d: got %.9g, want %.9g", Ty::name, lane, i,
                        d[4 * lane + i], want);
          emu_test::report(__FILE__, __LINE__, buf);
        }
      }
    }
  }
}

// ---- mma.sp::ordered_metadata m16n8k32 -------------------------------------------------------------
/* kSelector 0 goes through cuda/ptx.cuh as the kernels do; ptx.cuh has no selector-1 form, so
 * selector 1 calls the emulator's entry point directly. */
template <typename T, int kSelector>
__global__ void mma_sp_kernel(const uint32_t* a, const uint32_t* b, const uint32_t* e, const float* c, float* d) {
  const int lane = threadIdx.x;
  const uint32_t ar[4] = {a[4 * lane], a[4 * lane + 1], a[4 * lane + 2], a[4 * lane + 3]};
  const uint32_t br[4] = {b[4 * lane], b[4 * lane + 1], b[4 * lane + 2], b[4 * lane + 3]};
  float acc[4] = {c[4 * lane], c[4 * lane + 1], c[4 * lane + 2], c[4 * lane + 3]};
  if constexpr (kSelector == 0) {
    llmk::ptx::mma_sp_m16n8k32<T>(acc, ar, br, e[lane]);
  } else {
    ::llmk_emu::mma_sp_m16n8k32(LLMK_EMU_SITE, llmk::ptx::mma_type<T>(), acc, ar, br, e[lane], kSelector);
  }
  for (int i = 0; i < 4; ++i) d[4 * lane + i] = acc[i];
}

template <typename Ty, int kSelector>
void test_mma_sp(std::mt19937& rng) {
  static const int kPairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
  std::uniform_real_distribution<float> val(-2.f, 2.f);
  for (int trial = 0; trial < 8; ++trial) {
    // Kept positions per row and group of 4; rows g and g + 8 differ in every group, so metadata
    // read from the wrong half of e cannot pass.
    int kept[16][8][2];
    for (int g = 0; g < 8; ++g)
      for (int grp = 0; grp < 8; ++grp) {
        const int p = static_cast<int>(rng() % 6), q = (p + 1 + static_cast<int>(rng() % 5)) % 6;
        for (int j = 0; j < 2; ++j) kept[g][grp][j] = kPairs[p][j], kept[g + 8][grp][j] = kPairs[q][j];
      }
    double Adense[16][32] = {};
    uint16_t V[16][16];  // the stored (compressed) A: the two kept values of each group, in order
    for (int r = 0; r < 16; ++r)
      for (int grp = 0; grp < 8; ++grp)
        for (int j = 0; j < 2; ++j) {
          float x;
          do x = val(rng);
          while (std::fabs(x) < 0.1f);  // nonzero: a value moved to a wrong column always shows
          V[r][2 * grp + j] = Ty::bits(x);
          Adense[r][4 * grp + kept[r][grp][j]] = Ty::value(V[r][2 * grp + j]);
        }
    uint16_t B[32][8];
    float C[16][8];
    for (auto& row : B)
      for (uint16_t& v : row) v = Ty::bits(val(rng));
    for (auto& row : C)
      for (float& v : row) v = 2 * val(rng);
    // The metadata nibble of (row, group): two 2-bit indices, ascending, the lower one first.
    auto nibble = [&](int r, int grp) { return static_cast<uint32_t>(kept[r][grp][0] | (kept[r][grp][1] << 2)); };
    std::vector<uint32_t> a(32 * 4, 0), b(32 * 4, 0), e(32);
    std::vector<float> c(32 * 4);
    for (int lane = 0; lane < 32; ++lane) {
      const int g = lane >> 2, t = lane % 4;
      for (int i = 0; i < 8; ++i) put_half(&a[4 * lane], i, V[a_row(g, i)][a_col(t, i)]);
      // B (32 x 8): b_i in row 2t + (i & 1) + 8 (i / 2), column g.
      for (int i = 0; i < 8; ++i) put_half(&b[4 * lane], i, B[t * 2 + (i & 1) + 8 * (i >> 1)][g]);
      for (int i = 0; i < 4; ++i) c[4 * lane + i] = C[c_row(g, i)][c_col(t, i)];
      // Lanes with threadID_in_group 2s, 2s + 1 give the metadata of columns 0-15 and 16-31:
      // bits 0-15 for row g, 16-31 for row g + 8, one nibble per group, lowest group lowest.
      // The other lanes pass garbage, which must be ignored.
      const int half = t - 2 * kSelector;
      if (half == 0 || half == 1) {
        e[lane] = 0;
        for (int q = 0; q < 4; ++q) {
          e[lane] |= nibble(g, 4 * half + q) << (4 * q);
          e[lane] |= nibble(g + 8, 4 * half + q) << (16 + 4 * q);
        }
      } else {
        e[lane] = static_cast<uint32_t>(rng());
      }
    }
    emu_test::DeviceBuffer<uint32_t> d_a(a), d_b(b), d_e(e);
    emu_test::DeviceBuffer<float> d_c(c), d_d(128);
    llmk::launch(mma_sp_kernel<typename Ty::T, kSelector>, dim3(1), dim3(32), 0, nullptr, d_a.ptr, d_b.ptr, d_e.ptr,
                 d_c.ptr, d_d.ptr);
    EXPECT_LAUNCH_OK(Ty::name);
    const std::vector<float> d = d_d.download();
    for (int lane = 0; lane < 32; ++lane) {
      const int g = lane >> 2, t = lane % 4;
      for (int i = 0; i < 4; ++i) {
        const int r = c_row(g, i), col = c_col(t, i);
        double want = C[r][col], bound = std::fabs(C[r][col]);
        for (int k = 0; k < 32; ++k) {
          want += Adense[r][k] * Ty::value(B[k][col]);
          bound += std::fabs(Adense[r][k] * Ty::value(B[k][col]));
        }
        if (!close(d[4 * lane + i], want, bound)) {
          char buf[160];
          std::snprintf(buf, sizeof(buf), "mma.sp %s selector %d lane %d d%d: got %.9g, want %.9g", Ty::name,
                        kSelector, lane, i, d[4 * lane + i], want);
          emu_test::report(__FILE__, __LINE__, buf);
        }
      }
    }
  }
}

// ---- cp.async 16 bytes, commit_group / wait_group --------------------------------------------------
constexpr int kCpThreads = 64;
constexpr int kCpSlots = 4;      // 16-byte destinations per thread
constexpr int kCpSnapshots = 6;  // before any wait, after wait 3, 2, 1, 0, then a neighbour's slots
constexpr uint32_t kPoison = 0x7fffffffu;

/* Each thread copies into its own 4 slots in 4 groups: G0 = slot 0, G1 = slot 1 zero-filled
 * (src-size 0), G2 = slots 2 and 3, G3 = empty (an empty group still counts). After each wait
 * it records all its slots: wait_group N must leave exactly the N newest groups in flight. */
__global__ void cp_async_kernel(const uint4* src, uint32_t* seen) {
  uint4* slots = llmk::dynamic_smem<uint4>();
  const int tid = threadIdx.x;
  auto slot = [&](int owner, int k) { return &slots[k * kCpThreads + owner]; };
  auto record = [&](int snapshot, int owner) {
    for (int k = 0; k < kCpSlots; ++k) {
      const uint32_t* w = reinterpret_cast<const uint32_t*>(slot(owner, k));
      for (int j = 0; j < 4; ++j) seen[((tid * kCpSnapshots + snapshot) * kCpSlots + k) * 4 + j] = w[j];
    }
  };
  const uint4* mine = src + tid * kCpSlots;
  llmk::ptx::cp_async16(slot(tid, 0), mine + 0, true);
  llmk::ptx::cp_async_commit();
  llmk::ptx::cp_async16(slot(tid, 1), src, false);  // zero-fill: src is only a safe address
  llmk::ptx::cp_async_commit();
  llmk::ptx::cp_async16(slot(tid, 2), mine + 2, true);
  llmk::ptx::cp_async16(slot(tid, 3), mine + 3, true);
  llmk::ptx::cp_async_commit();
  llmk::ptx::cp_async_commit();
  record(0, tid);
  llmk::ptx::cp_async_wait<3>();
  record(1, tid);
  llmk::ptx::cp_async_wait<2>();
  record(2, tid);
  llmk::ptx::cp_async_wait<1>();
  record(3, tid);
  llmk::ptx::cp_async_wait<0>();
  record(4, tid);
  __syncthreads();  // another thread's completed copies are visible after a barrier
  record(5, (tid + 1) % kCpThreads);
}

void test_cp_async(std::mt19937& rng) {
  std::vector<uint4> src(kCpThreads * kCpSlots);
  for (uint4& v : src) {
    v = make_uint4(static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()),
                   static_cast<uint32_t>(rng()));
    if (v.x == kPoison || v.x == 0) v.x = 1;  // tells copied data from poison and from zero-fill
  }
  emu_test::DeviceBuffer<uint4> d_src(src);
  emu_test::DeviceBuffer<uint32_t> d_seen(kCpThreads * kCpSnapshots * kCpSlots * 4);
  llmk::launch(cp_async_kernel, dim3(1), dim3(kCpThreads), kCpThreads * kCpSlots * sizeof(uint4), nullptr, d_src.ptr,
               d_seen.ptr);
  EXPECT_LAUNCH_OK("cp.async");
  const std::vector<uint32_t> seen = d_seen.download();
  // Groups complete before each snapshot: none, G0, G0-G1, G0-G2 (G3 is empty), all, all.
  const int groups_done[kCpSnapshots] = {0, 1, 2, 3, 4, 4};
  const int slot_group[kCpSlots] = {0, 1, 2, 2};
  int poison_words = 0;
  for (int tid = 0; tid < kCpThreads; ++tid)
    for (int s = 0; s < kCpSnapshots; ++s) {
      const int owner = s == 5 ? (tid + 1) % kCpThreads : tid;
      for (int k = 0; k < kCpSlots; ++k) {
        const bool done = slot_group[k] < groups_done[s];
        const uint32_t* data = reinterpret_cast<const uint32_t*>(&src[static_cast<size_t>(owner * kCpSlots + k)]);
        for (int j = 0; j < 4; ++j) {
          const uint32_t got = seen[static_cast<size_t>(((tid * kCpSnapshots + s) * kCpSlots + k) * 4 + j)];
          const uint32_t want = !done ? kPoison : k == 1 ? 0u : data[j];
          if (got != want) {
            char buf[160];
            std::snprintf(buf, sizeof(buf), "cp.async thread %d snapshot %d slot %d word %d: 0x%08x, want 0x%08x%s",
                          tid, s, k, j, got, want, done ? "" : " (poison: the copy is not complete yet)");
            emu_test::report(__FILE__, __LINE__, buf);
          }
          poison_words += got == kPoison;
        }
      }
    }
  // The poison word reads as a float NaN: a stage used before its wait shows in the results.
  EXPECT(std::isnan(__uint_as_float(kPoison)));
  EXPECT(poison_words > 0);
}

}  // namespace

int main() {
  std::mt19937 rng(20240611);
  test_ldmatrix(rng);
  test_mma<F16>(rng);
  test_mma<BF16>(rng);
  test_mma_sp<F16, 0>(rng);
  test_mma_sp<BF16, 0>(rng);
  test_mma_sp<F16, 1>(rng);
  test_mma_sp<BF16, 1>(rng);
  test_cp_async(rng);
  return emu_test::finish("llmk_emu_ptx_ops");
}
