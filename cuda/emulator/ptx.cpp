/* The PTX operations behind cuda/ptx.cuh, transcribed from the PTX ISA's fragment tables
 * (groupID g = lane >> 2, threadID_in_group t = lane & 3):
 *   ldmatrix .m8n8.x4.b16: lane l gives the address of row l % 8 of matrix l / 8 (16 bytes);
 *     register i of lane l = matrix i, row l / 4, columns 2 (l % 4), 2 (l % 4) + 1 (.trans: rows
 *     2 (l % 4), 2 (l % 4) + 1 of column l / 4).
 *   mma.m16n8k16 .f16/.bf16, f32 accumulators: a0 = A[g][2t, 2t+1], a1 = A[g+8][2t, 2t+1],
 *     a2 = A[g][2t+8, 2t+9], a3 = A[g+8][2t+8, 2t+9]; b0 = B[2t, 2t+1][g], b1 = B[2t+8, 2t+9][g];
 *     c0, c1 = C[g][2t, 2t+1], c2, c3 = C[g+8][2t, 2t+1].
 *   mma.sp::ordered_metadata m16n8k32: A is the compressed 16 x 16 tile in the a-layout above;
 *     b_i = B[2t + 8 (i)..][g] for i = 0..3; sparsity selector s: lanes with t = 2s, 2s + 1 give
 *     the metadata; bits 0-15 = row g, bits 16-31 = row g + 8, each for dense columns
 *     16 (t - 2s) .. 16 (t - 2s) + 15, one nibble per group of 4 (lowest nibble first): two 2-bit
 *     indices, ascending, of the group's kept values, the first stored value at the lower index.
 * Products of 16-bit inputs are exact in float; they are added to C in k order. */
#include <cstring>
#include <string>
#include <vector>

#include "emu_internal.h"

namespace llmk_emu {

namespace {

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        man <<= 1;
        ++e;
      } while (!(man & 0x400u));
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
  } else {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/* Every f16 value as float, built once: the conversion runs for each of the 384 operands of
 * every emulated mma. */
const float* half_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = half_to_float(static_cast<uint16_t>(h));
    return t;
  }();
  return table.data();
}

inline float element(uint32_t reg, int half, int type) {
  const uint16_t v = static_cast<uint16_t>(reg >> (16 * half));
  return type == kBF16 ? bf16_to_float(v) : half_table()[v];
}

float f32(uint64_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint64_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

std::string compute_ldmatrix(WarpSlot& w, bool trans) {
  unsigned char rows[4][8][16];
  for (int l = 0; l < 32; ++l) {
    const void* p = reinterpret_cast<const void*>(w.in[l][0]);
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0)
      return "lane " + std::to_string(l) + " row address is not 16-byte aligned";
    if (!is_shared(p, 16)) return "lane " + std::to_string(l) + " row address is not in shared memory";
    std::memcpy(rows[l / 8][l % 8], p, 16);  // memcpy: checked by the sanitizers as a read
  }
  for (int l = 0; l < 32; ++l) {
    for (int i = 0; i < 4; ++i) {
      uint16_t lo, hi;
      if (!trans) {
        std::memcpy(&lo, &rows[i][l / 4][4 * (l % 4)], 2);
        std::memcpy(&hi, &rows[i][l / 4][4 * (l % 4) + 2], 2);
      } else {
        std::memcpy(&lo, &rows[i][2 * (l % 4)][2 * (l / 4)], 2);
        std::memcpy(&hi, &rows[i][2 * (l % 4) + 1][2 * (l / 4)], 2);
      }
      w.out[l][i] = static_cast<uint64_t>(lo) | (static_cast<uint64_t>(hi) << 16);
    }
  }
  return std::string();
}

/* Lane l's part of the 16 x 16 A tile (the a-layout; for mma.sp the kept values) from its four
 * registers in[0..3], and of the 16 x 8 accumulator from the float bits in[c0], in[c0 + 1]
 * (row g) and in[c0 + 2], in[c0 + 3] (row g + 8). */
void unpack_a_c(const uint64_t* in, int l, int type, int c0, float (&A)[16][16], float (&C)[16][8]) {
  const int g = l >> 2, t = l & 3;
  for (int h = 0; h < 2; ++h) {
    A[g][2 * t + h] = element(static_cast<uint32_t>(in[0]), h, type);
    A[g + 8][2 * t + h] = element(static_cast<uint32_t>(in[1]), h, type);
    A[g][2 * t + 8 + h] = element(static_cast<uint32_t>(in[2]), h, type);
    A[g + 8][2 * t + 8 + h] = element(static_cast<uint32_t>(in[3]), h, type);
    C[g][2 * t + h] = f32(in[c0 + h]);
    C[g + 8][2 * t + h] = f32(in[c0 + 2 + h]);
  }
}

/* D = A (16 x K) B (K x 8) + C into every lane's four accumulator registers, k in order. */
template <int K>
void store_d(WarpSlot& w, const float (&A)[16][K], const float (&B)[K][8], const float (&C)[16][8]) {
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l & 3;
    for (int i = 0; i < 4; ++i) {
      const int r = g + 8 * (i >> 1), c = 2 * t + (i & 1);
      float acc = C[r][c];
      for (int k = 0; k < K; ++k) acc += A[r][k] * B[k][c];
      w.out[l][i] = bits_of(acc);
    }
  }
}

/* in: a[0..3], b[0..1], c[0..3] (float bits), type. */
std::string compute_mma(WarpSlot& w) {
  const int type = static_cast<int>(w.in[0][10]);
  float A[16][16], B[16][8], C[16][8];
  for (int l = 0; l < 32; ++l) {
    if (static_cast<int>(w.in[l][10]) != type) return "lanes disagree on the element type";
    const int g = l >> 2, t = l & 3;
    unpack_a_c(w.in[l], l, type, 6, A, C);
    for (int h = 0; h < 2; ++h) {
      B[2 * t + h][g] = element(static_cast<uint32_t>(w.in[l][4]), h, type);
      B[2 * t + 8 + h][g] = element(static_cast<uint32_t>(w.in[l][5]), h, type);
    }
  }
  store_d<16>(w, A, B, C);
  return std::string();
}

/* in: a[0..3], b[0..3], c[0..3], e, selector, type. */
std::string compute_mma_sp(WarpSlot& w) {
  const int type = static_cast<int>(w.in[0][14]);
  const int selector = static_cast<int>(w.in[0][13]);
  if (selector != 0 && selector != 1) return "sparsity selector " + std::to_string(selector) + " (0 or 1)";
  float V[16][16], B[32][8], C[16][8];
  uint32_t meta[16][2] = {};  // [row][column half]: 4 nibbles each
  for (int l = 0; l < 32; ++l) {
    if (static_cast<int>(w.in[l][14]) != type || static_cast<int>(w.in[l][13]) != selector)
      return "lanes disagree on the element type or the sparsity selector";
    const int g = l >> 2, t = l & 3;
    unpack_a_c(w.in[l], l, type, 8, V, C);
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 4; ++i) B[2 * t + 8 * i + h][g] = element(static_cast<uint32_t>(w.in[l][4 + i]), h, type);
    if (t == 2 * selector || t == 2 * selector + 1) {
      const uint32_t e = static_cast<uint32_t>(w.in[l][12]);
      meta[g][t - 2 * selector] = e & 0xffffu;
      meta[g + 8][t - 2 * selector] = e >> 16;
    }
  }
  float A[16][32] = {};
  for (int r = 0; r < 16; ++r) {
    for (int grp = 0; grp < 8; ++grp) {
      const uint32_t nib = (meta[r][grp / 4] >> (4 * (grp % 4))) & 0xfu;
      const int i0 = static_cast<int>(nib & 3u), i1 = static_cast<int>(nib >> 2);
      if (i0 >= i1)
        return "row " + std::to_string(r) + " group " + std::to_string(grp) + ": metadata nibble " +
               std::to_string(nib) + " is not two ascending indices";
      A[r][4 * grp + i0] = V[r][2 * grp];
      A[r][4 * grp + i1] = V[r][2 * grp + 1];
    }
  }
  store_d<32>(w, A, B, C);
  return std::string();
}

void perform(const CpAsyncCopy& c) {
  // memcpy / memset on purpose: the sanitizers check them as this fiber's accesses.
  if (c.src_size > 0) std::memcpy(c.dst, c.src, static_cast<size_t>(c.src_size));
  if (c.src_size < c.cp_size)
    std::memset(static_cast<unsigned char*>(c.dst) + c.src_size, 0, static_cast<size_t>(c.cp_size - c.src_size));
}

const uint64_t* full_warp(Site site, int kind, const uint64_t* in, int words) {
  // .aligned matrix operations: all 32 lanes execute the same instruction.
  return warp_collective(site, kind, 0xffffffffu, in, words);
}

}  // namespace

std::string compute_matrix_collective(WarpSlot& w) {
  if (w.arrived != 0xffffffffu) return "needs all 32 lanes (the CTA's last warp is partial)";
  switch (w.kind) {
    case kLdmatrix: return compute_ldmatrix(w, false);
    case kLdmatrixTrans: return compute_ldmatrix(w, true);
    case kMma: return compute_mma(w);
    case kMmaSp: return compute_mma_sp(w);
    default: return "unknown collective";
  }
}

void cp_async(Site site, void* dst, const void* src, int cp_size, int src_size) {
  ThreadCtx& t = current_thread();
  if (src_size < 0 || src_size > cp_size)
    fail_kernel("cp.async at " + format_site(site) + ": src-size " + std::to_string(src_size) + " outside 0.." +
                std::to_string(cp_size));
  if (reinterpret_cast<uintptr_t>(dst) % static_cast<uintptr_t>(cp_size) != 0 ||
      (src_size > 0 && reinterpret_cast<uintptr_t>(src) % static_cast<uintptr_t>(cp_size) != 0))
    fail_kernel("cp.async at " + format_site(site) + ": addresses must be aligned to " + std::to_string(cp_size) +
                " bytes");
  if (!is_shared(dst, static_cast<size_t>(cp_size)))
    fail_kernel("cp.async at " + format_site(site) + ": destination is not in shared memory");
  t.uncommitted.push_back(CpAsyncCopy{dst, src, cp_size, src_size});
}

void cp_async_commit() {
  ThreadCtx& t = current_thread();
  t.groups.push_back(std::move(t.uncommitted));  // an empty group is legal and counts
  t.uncommitted.clear();
}

/* The copies land here, the latest point the PTX memory model allows: reading a stage before
 * its wait sees poisoned shared memory. */
void cp_async_wait(int pending) {
  ThreadCtx& t = current_thread();
  while (t.groups.size() > static_cast<size_t>(pending)) {
    for (const CpAsyncCopy& c : t.groups.front()) perform(c);
    t.groups.erase(t.groups.begin());
  }
}

void ldmatrix_x4(Site site, uint32_t (&r)[4], const void* row, bool trans) {
  const uint64_t in[1] = {reinterpret_cast<uint64_t>(row)};
  const uint64_t* out = full_warp(site, trans ? kLdmatrixTrans : kLdmatrix, in, 1);
  for (int i = 0; i < 4; ++i) r[i] = static_cast<uint32_t>(out[i]);
}

void mma_m16n8k16(Site site, MmaType type, float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  uint64_t in[11];
  for (int i = 0; i < 4; ++i) in[i] = a[i];
  for (int i = 0; i < 2; ++i) in[4 + i] = b[i];
  for (int i = 0; i < 4; ++i) in[6 + i] = bits_of(d[i]);
  in[10] = static_cast<uint64_t>(type);
  const uint64_t* out = full_warp(site, kMma, in, 11);
  for (int i = 0; i < 4; ++i) d[i] = f32(out[i]);
}

void mma_sp_m16n8k32(Site site, MmaType type, float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[4],
                     uint32_t e, int selector) {
  uint64_t in[15];
  for (int i = 0; i < 4; ++i) in[i] = a[i];
  for (int i = 0; i < 4; ++i) in[4 + i] = b[i];
  for (int i = 0; i < 4; ++i) in[8 + i] = bits_of(d[i]);
  in[12] = e;
  in[13] = static_cast<uint64_t>(selector);
  in[14] = static_cast<uint64_t>(type);
  const uint64_t* out = full_warp(site, kMmaSp, in, 15);
  for (int i = 0; i < 4; ++i) d[i] = f32(out[i]);
}

}  // namespace llmk_emu
