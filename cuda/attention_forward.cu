/* Block-sparse attention forward on the GPU (llmk_attn_forward_cuda), FlashAttention-2 style.
 *
 * A CTA owns a query tile of one (batch b, query head hq) and walks the KV blocks of its layout row
 * (lb = layout_batch == 1 ? 0 : b, lh = layout_heads == 1 ? 0 : hq): first the FULL blocks, then
 * the PARTIAL ones, each in the layout's ascending order (a fixed order: results are
 * deterministic). Online softmax in fp32 in the log2 domain (scale * log2 e folded into the
 * scores; with a softcap, s = softcap * tanh(scale * q.k / softcap) first). A running max of
 * -inf (nothing visible yet) uses 0 as the exponent base, so no inf - inf is ever formed; a row
 * that saw no visible key ends with out = 0 and lse = -inf.
 *
 * Tensor-core path (F16 / BF16, head_dim 64 or 128, block_q and block_k multiples of 64, 16-byte
 * aligned q/k/v): 128 threads, 4 warps x 16 query rows = 64 rows; KV sub-tiles of 64 keys.
 *   smem: 4 tiles of 64 x (d + 8) elements: K and V of two stages (cp.async double buffering; the
 *         +8 padding makes every ldmatrix row address fall in a different bank group). Q is
 *         staged once in stage 1's K tile, moved to registers (A fragments), and the tile is then
 *         reused. The mask program follows (<= 2816 bytes). d = 128: 72448 bytes, d = 64: 39680.
 *   S = Q K^T with mma.sync m16n8k16 (ldmatrix of K rows = col-major B), P stays in registers
 *   (the accumulator layout of S is the A-fragment layout of P V), V via ldmatrix.trans.
 *   Each 64 x 64 sub-tile of a PARTIAL block is re-classified with mask_tile_class (uniform over
 *   the CTA): EMPTY sub-tiles are skipped (no load), FULL ones skip the element mask, the rest
 *   evaluate llmk::mask_visible per element into a 32-bit visibility word per thread (one
 *   non-unrolled loop, so the interpreter is inlined once), applied to the unrolled scores.
 *   FULL blocks only mask key columns >= seq_k (ragged last block); out-of-range smem rows are
 *   zero-filled by cp.async, so no NaN can come from stale memory.
 * General path (any dtype, head_dim 1..256, any block sizes): exact fp32 FMA, 128 threads =
 *   16 query rows x 8 threads, keys in chunks of 16 (each thread scores 2 keys and owns
 *   ceil(d / 8) output columns); element mask on every PARTIAL block. Correctness over speed.
 * Rows q >= seq_q are never written. All tensor offsets are 64-bit. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>
#include <type_traits>

#include "attention_args.h"
#include "attention_common.cuh"
#include "cce_common.cuh"
#include "cuda_check.cuh"

namespace llmk {
namespace attn {
namespace {

using cce::cp_async16;
using cce::cp_async_commit;
using cce::cp_async_wait;
using cce::from_f32;
using cce::ldmatrix_x4;
using cce::ldmatrix_x4_trans;
using cce::mma16816;
using cce::to_f32;

constexpr int kThreads = 128;
constexpr int kMaxHeadDim = 256;
constexpr float kLn2 = 0.6931471805599453f;
constexpr size_t kNodeBytes = sizeof(llmk_mask_node) * LLMK_MASK_MAX_NODES;

struct FwdParams {
  MaskProgram prog;
  const void* q;
  const void* k;
  const void* v;
  void* out;
  float* lse;
  int64_t heads_q, group, seq_q, seq_k, d;  // group = heads_q / heads_kv
  int64_t layout_batch, layout_heads, block_q, block_k, nqb, nkb;
  int64_t q_lens, k_lens;
  const int64_t* partial_ptr;
  const int32_t* partial_idx;
  const int64_t* full_ptr;
  const int32_t* full_idx;
  int64_t subs_per_block;   // tensor-core path: 64-key sub-tiles per KV block that can hold keys
  int64_t q_tiles;          // query tiles per (b, hq)
  int64_t tiles_per_block;  // general path: 16-row tiles per query block
  int ld;                   // general path: smem row stride (odd, >= d)
  float score_mul;          // scores are dot * score_mul (scale * log2e without softcap, scale / softcap with)
  float cap_mul;            // softcap * log2e (0: no softcap)
  bool out_f32;
};

/* Log2-domain score of a raw dot product. */
__device__ __forceinline__ float score(float dot, const FwdParams& p) {
  const float s = dot * p.score_mul;
  return p.cap_mul > 0.0f ? p.cap_mul * tanhf(s) : s;
}

/* Where the CTA's layout row and lengths are. */
struct RowView {
  int64_t b, hq;
  MaskRow mr;
  int64_t k_lim;  // min(seq_k, k_len): keys at or past it are never visible
  const int32_t* full;
  const int32_t* part;
  int64_t nfull, npart;
};

__device__ __forceinline__ RowView row_view(const FwdParams& p, int64_t b, int64_t hq, int64_t qb) {
  RowView v;
  v.b = b;
  v.hq = hq;
  v.mr = mask_row(b, hq, p.q_lens, p.k_lens, p.seq_q, p.seq_k);
  v.k_lim = min64(p.seq_k, v.mr.k_len);
  const int64_t lb = p.layout_batch == 1 ? 0 : b, lh = p.layout_heads == 1 ? 0 : hq;
  const int64_t row = (lb * p.layout_heads + lh) * p.nqb + qb;
  const int64_t f0 = p.full_ptr[row], f1 = p.full_ptr[row + 1];
  const int64_t p0 = p.partial_ptr[row], p1 = p.partial_ptr[row + 1];
  v.full = p.full_idx + f0;
  v.part = p.partial_idx + p0;
  v.nfull = max64(f1 - f0, 0);
  v.npart = max64(p1 - p0, 0);
  return v;
}

__host__ __device__ __forceinline__ int64_t block_end(int64_t start, int64_t block, int64_t limit) {
  return limit - start < block ? limit : start + block;
}

/* =============================================================================================
 * Tensor-core path
 * =========================================================================================== */

constexpr int kMmaRows = 64;  // query rows per CTA
constexpr int kMmaKeys = 64;  // keys per sub-tile

enum SubMode : int { kSubFull = 0, kSubPartial = 1 };

template <typename T, int D>
struct MmaCfg {
  static constexpr int kLd = D + 8;  // (2D + 16)-byte rows: 8 ldmatrix rows hit 8 distinct 16-byte bank groups
  static constexpr int kTileElems = kMmaRows * kLd;
  static constexpr size_t kTileBytes = static_cast<size_t>(kTileElems) * sizeof(T);
  static constexpr size_t kSmemBytes = 4 * kTileBytes + kNodeBytes;
  // Register budget: 2 CTAs per SM (<= 255 registers). With the mask interpreter inlined, d = 64
  // needs ~235 and spills when cut to 3 CTAs per SM (168 registers).
  static constexpr int kMinBlocks = 2;
};

/* One 64-key sub-tile in the CTA's walk: position t in [0, (nfull + npart) * spb). */
struct Sub {
  int64_t t;
  int64_t k0;
  int mode;
};

/* First sub-tile at or after t that has something to compute: inside [0, k_lim) and, for a
 * PARTIAL block, not classified EMPTY for this CTA's 64 query rows. Uniform over the CTA. */
__device__ __forceinline__ Sub next_sub(const FwdParams& p, const RowView& rv, const llmk_mask_node* nodes,
                                        int64_t spb, int64_t total, int64_t t, int64_t q0, int64_t q1) {
  for (; t < total; ++t) {
    const int64_t item = t / spb, sub = t - item * spb;
    const bool partial = item >= rv.nfull;
    const int64_t kb = partial ? rv.part[item - rv.nfull] : rv.full[item];
    const bool valid = kb >= 0 && kb < p.nkb;  // a corrupt index must not steer loads
    const int64_t k0 = valid ? kb * p.block_k + sub * kMmaKeys : 0;  // <= k_lim + 63: see the skip
    // Past the keys: on to the next block (a huge block_k costs nothing).
    if (!valid || k0 >= rv.k_lim) {
      t = (item + 1) * spb - 1;
      continue;
    }
    if (!partial) return Sub{t, k0, kSubFull};
    const int c = mask_tile_class(nodes, p.prog.count, rv.mr, q0, q1, k0, block_end(k0, kMmaKeys, p.seq_k));
    if (c == LLMK_TILE_EMPTY) continue;
    return Sub{t, k0, c == LLMK_TILE_FULL ? kSubFull : kSubPartial};
  }
  return Sub{total, 0, kSubFull};
}

/* 64 rows x D of a [rows, D] matrix from row0 into smem (stride kLd); rows >= limit zero-filled. */
template <typename T, int D>
__device__ __forceinline__ void load_tile_async(T* s, const T* g, int64_t row0, int64_t limit) {
  constexpr int kChunks = D / 8;  // 16-byte pieces per row
  constexpr int kLd = MmaCfg<T, D>::kLd;
  static_assert((kMmaRows * kChunks) % kThreads == 0, "whole passes");
#pragma unroll
  for (int it = 0; it < kMmaRows * kChunks / kThreads; ++it) {
    const int i = it * kThreads + static_cast<int>(threadIdx.x);
    const int r = i / kChunks, c = i % kChunks;  // consecutive threads: consecutive 16 bytes of a row
    const bool ok = row0 + r < limit;
    cp_async16(s + r * kLd + c * 8, ok ? g + (row0 + r) * D + c * 8 : g, ok);
  }
}

template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  } else {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
}

template <typename T>
__device__ __forceinline__ void store2(void* out, bool out_f32, int64_t pos, float a, float b) {
  if (out_f32) {
    *reinterpret_cast<float2*>(static_cast<float*>(out) + pos) = make_float2(a, b);
  } else {
    *reinterpret_cast<uint32_t*>(static_cast<T*>(out) + pos) = pack2<T>(a, b);
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads, MmaCfg<T, D>::kMinBlocks) attn_fwd_mma(const __grid_constant__ FwdParams p) {
  using Cfg = MmaCfg<T, D>;
  constexpr int kLd = Cfg::kLd;
  constexpr int kTile = Cfg::kTileElems;
  constexpr int kKSteps = D / 16;  // k-steps of Q K^T
  constexpr int kDTiles = D / 8;   // n-tiles of the output
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  llmk_mask_node* s_nodes = reinterpret_cast<llmk_mask_node*>(smem_raw + 4 * Cfg::kTileBytes);
  load_program(p.prog, s_nodes);

  // Heavy tiles first: within a (b, hq) the CTAs take the query tiles from the last one down.
  const int64_t cta = blockIdx.x;
  const int64_t bh = cta / p.q_tiles;
  const int64_t qt = p.q_tiles - 1 - (cta - bh * p.q_tiles);
  const int64_t b = bh / p.heads_q, hq = bh - b * p.heads_q;
  const int64_t hkv = hq / p.group;
  const int64_t q0 = qt * kMmaRows;
  const int64_t q1 = block_end(q0, kMmaRows, p.seq_q);
  const RowView rv = row_view(p, b, hq, q0 / p.block_q);  // block_q % 64 == 0: one layout row
  const int64_t spb = p.subs_per_block;
  const int64_t total = (rv.nfull + rv.npart) * spb;

  const T* qg = static_cast<const T*>(p.q) + (bh * p.seq_q) * D;
  const int64_t kv_off = ((b * (p.heads_q / p.group) + hkv) * p.seq_k) * D;
  const T* kg = static_cast<const T*>(p.k) + kv_off;
  const T* vg = static_cast<const T*>(p.v) + kv_off;

  const int warp = static_cast<int>(threadIdx.x) >> 5, ln = static_cast<int>(threadIdx.x) & 31;
  const int g = ln >> 2, qd = ln & 3;

  __syncthreads();  // s_nodes visible to next_sub

  // Prologue: Q into stage 1's K tile, the first sub-tile into stage 0.
  T* sQ = smem + 2 * kTile;
  load_tile_async<T, D>(sQ, qg, q0, p.seq_q);
  Sub cur = next_sub(p, rv, s_nodes, spb, total, 0, q0, q1);
  if (cur.t < total) {
    load_tile_async<T, D>(smem, kg, cur.k0, p.seq_k);
    load_tile_async<T, D>(smem + kTile, vg, cur.k0, p.seq_k);
  }
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  uint32_t qf[kKSteps][4];
#pragma unroll
  for (int ks = 0; ks < kKSteps; ++ks) {
    ldmatrix_x4(qf[ks], sQ + (warp * 16 + (ln & 15)) * kLd + ks * 16 + (ln >> 4) * 8);
  }
  __syncthreads();  // every warp holds its Q fragments: stage 1 may be overwritten

  float o[kDTiles][4];
#pragma unroll
  for (int n = 0; n < kDTiles; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY;  // running max (log2 domain) of rows g and g + 8
  float l0 = 0.0f, l1 = 0.0f;            // this thread's part of the running sums

  int stage = 0;
  while (cur.t < total) {
    const Sub nxt = next_sub(p, rv, s_nodes, spb, total, cur.t + 1, q0, q1);
    if (nxt.t < total) {
      T* s = smem + (stage ^ 1) * 2 * kTile;
      load_tile_async<T, D>(s, kg, nxt.k0, p.seq_k);
      load_tile_async<T, D>(s + kTile, vg, nxt.k0, p.seq_k);
    }
    cp_async_commit();
    cp_async_wait<1>();  // everything but the group just issued: the current stage has landed
    __syncthreads();
    const T* sK = smem + stage * 2 * kTile;
    const T* sV = sK + kTile;

    // Element mask of a PARTIAL sub-tile, before the scores exist (fewer live registers): bit
    // j * 4 + e is entry (j, e) of the S fragment below.
    uint32_t visible = 0xffffffffu;
    if (cur.mode == kSubPartial) {
      visible = 0;
      const int64_t qrow = q0 + warp * 16 + g;
      const int64_t kcol = cur.k0 + 2 * qd;
#pragma unroll 1
      for (int i = 0; i < 32; ++i) {
        const int64_t qq = qrow + ((i >> 1) & 1) * 8;
        const int64_t kk = kcol + (i >> 2) * 8 + (i & 1);
        if (kk < p.seq_k && mask_visible(s_nodes, p.prog.count, rv.mr, qq, kk)) visible |= 1u << i;
      }
    }

    // S = Q K^T for this warp's 16 rows x 64 keys.
    float s[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
#pragma unroll
      for (int pp = 0; pp < 4; ++pp) {
        uint32_t t4[4];
        ldmatrix_x4(t4, sK + (pp * 16 + (ln >> 4) * 8 + (ln & 7)) * kLd + ks * 16 + ((ln >> 3) & 1) * 8);
        mma16816<T>(s[2 * pp][0], s[2 * pp][1], s[2 * pp][2], s[2 * pp][3], qf[ks], t4[0], t4[1]);
        mma16816<T>(s[2 * pp + 1][0], s[2 * pp + 1][1], s[2 * pp + 1][2], s[2 * pp + 1][3], qf[ks], t4[2], t4[3]);
      }
    }
    // Scores; entry (j, e) is row warp * 16 + g + (e >> 1) * 8, key j * 8 + 2 * qd + (e & 1).
    if (p.cap_mul > 0.0f) {
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[j][e] = p.cap_mul * tanhf(s[j][e] * p.score_mul);
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[j][e] *= p.score_mul;
    }
    if (cur.mode == kSubPartial) {
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (((visible >> (j * 4 + e)) & 1u) == 0) s[j][e] = -INFINITY;
    } else if (cur.k0 + kMmaKeys > p.seq_k) {
      const int64_t ncols = p.seq_k - cur.k0;  // ragged last block of a FULL walk
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (j * 8 + 2 * qd + (e & 1) >= ncols) s[j][e] = -INFINITY;
    }

    // Online softmax (rows g and g + 8; the 4 threads of a quad share a row).
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      mx0 = fmaxf(mx0, fmaxf(s[j][0], s[j][1]));
      mx1 = fmaxf(mx1, fmaxf(s[j][2], s[j][3]));
    }
#pragma unroll
    for (int o2 = 1; o2 <= 2; o2 <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, o2));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, o2));
    }
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    const float base0 = mn0 == -INFINITY ? 0.0f : mn0, base1 = mn1 == -INFINITY ? 0.0f : mn1;
    const float alpha0 = exp2f(m0 - base0), alpha1 = exp2f(m1 - base1);  // m = -inf: 0 (state was empty)
    m0 = mn0;
    m1 = mn1;
    float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      s[j][0] = exp2f(s[j][0] - base0);
      s[j][1] = exp2f(s[j][1] - base0);
      s[j][2] = exp2f(s[j][2] - base1);
      s[j][3] = exp2f(s[j][3] - base1);
      rs0 += s[j][0] + s[j][1];
      rs1 += s[j][2] + s[j][3];
    }
    l0 = l0 * alpha0 + rs0;
    l1 = l1 * alpha1 + rs1;
#pragma unroll
    for (int n = 0; n < kDTiles; ++n) {
      o[n][0] *= alpha0;
      o[n][1] *= alpha0;
      o[n][2] *= alpha1;
      o[n][3] *= alpha1;
    }

    // O += P V: the S accumulators of keys 16 kk .. 16 kk + 15 are the A fragment of k-step kk.
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      uint32_t a[4];
      a[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
      a[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
      a[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t t4[4];
        ldmatrix_x4_trans(t4, sV + (kk * 16 + ((ln >> 3) & 1) * 8 + (ln & 7)) * kLd + dp * 16 + (ln >> 4) * 8);
        mma16816<T>(o[2 * dp][0], o[2 * dp][1], o[2 * dp][2], o[2 * dp][3], a, t4[0], t4[1]);
        mma16816<T>(o[2 * dp + 1][0], o[2 * dp + 1][1], o[2 * dp + 1][2], o[2 * dp + 1][3], a, t4[2], t4[3]);
      }
    }
    __syncthreads();  // every warp is done with this stage before the next iteration refills it
    stage ^= 1;
    cur = nxt;
  }
  cp_async_wait<0>();  // nothing is in flight here, but leave no group behind

  // Epilogue: combine the quad's partial sums, normalise, write rows < seq_q.
#pragma unroll
  for (int o2 = 1; o2 <= 2; o2 <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, o2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, o2);
  }
  const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
  const int64_t r0 = q0 + warp * 16 + g, r1 = r0 + 8;
  const int64_t row_base = bh * p.seq_q;
  if (r0 < p.seq_q) {
#pragma unroll
    for (int n = 0; n < kDTiles; ++n)
      store2<T>(p.out, p.out_f32, (row_base + r0) * D + n * 8 + 2 * qd, o[n][0] * inv0, o[n][1] * inv0);
    if (qd == 0) p.lse[row_base + r0] = l0 > 0.0f ? (m0 + log2f(l0)) * kLn2 : -INFINITY;
  }
  if (r1 < p.seq_q) {
#pragma unroll
    for (int n = 0; n < kDTiles; ++n)
      store2<T>(p.out, p.out_f32, (row_base + r1) * D + n * 8 + 2 * qd, o[n][2] * inv1, o[n][3] * inv1);
    if (qd == 0) p.lse[row_base + r1] = l1 > 0.0f ? (m1 + log2f(l1)) * kLn2 : -INFINITY;
  }
}

/* =============================================================================================
 * General path
 * =========================================================================================== */

constexpr int kSimtRows = 16;  // query rows per CTA (8 threads each)
constexpr int kSimtKeys = 16;  // keys per chunk (each thread scores keys sub and sub + 8)

__host__ __device__ constexpr int simt_ld(int64_t d) { return static_cast<int>(d | 1); }  // odd: rows in distinct banks
inline size_t simt_smem_bytes(int64_t d) {
  return static_cast<size_t>(3 * kSimtRows) * simt_ld(d) * sizeof(float) + kNodeBytes;
}

template <typename T>
__device__ __forceinline__ void store1(void* out, bool out_f32, int64_t pos, float x) {
  if (out_f32) static_cast<float*>(out)[pos] = x;
  else static_cast<T*>(out)[pos] = from_f32<T>(x);
}

/* kJ = output columns per thread (ceil(d / 8) <= kJ). */
template <typename T, int kJ>
__global__ void __launch_bounds__(kThreads, 1) attn_fwd_simt(const __grid_constant__ FwdParams p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int ld = p.ld;
  const int64_t D = p.d;
  float* sQ = reinterpret_cast<float*>(smem_raw);
  float* sK = sQ + kSimtRows * ld;
  float* sV = sK + kSimtKeys * ld;
  // 3 * 16 * ld floats = 192 ld bytes: a multiple of 8, as the nodes need.
  llmk_mask_node* s_nodes = reinterpret_cast<llmk_mask_node*>(sV + kSimtKeys * ld);
  load_program(p.prog, s_nodes);

  const int64_t cta = blockIdx.x;
  const int64_t bh = cta / p.q_tiles;
  const int64_t idx = p.q_tiles - 1 - (cta - bh * p.q_tiles);
  const int64_t qb = idx / p.tiles_per_block, tq = idx - qb * p.tiles_per_block;
  const int64_t b = bh / p.heads_q, hq = bh - b * p.heads_q;
  const int64_t hkv = hq / p.group;
  const int64_t blk0 = qb * p.block_q;
  const int64_t blk1 = block_end(blk0, p.block_q, p.seq_q);
  const int64_t r0 = blk0 + tq * kSimtRows;
  if (r0 >= blk1) return;  // uniform: a tile past the end of a short (last) query block
  const int64_t r1 = block_end(r0, kSimtRows, blk1);
  const RowView rv = row_view(p, b, hq, qb);

  const T* qg = static_cast<const T*>(p.q) + (bh * p.seq_q) * D;
  const int64_t kv_off = ((b * (p.heads_q / p.group) + hkv) * p.seq_k) * D;
  const T* kg = static_cast<const T*>(p.k) + kv_off;
  const T* vg = static_cast<const T*>(p.v) + kv_off;

  const int tid = static_cast<int>(threadIdx.x);
  const int r = tid >> 3, sub = tid & 7;
  const int lane = tid & 31;
  const int src_base = lane & ~7;
  const int64_t q = r0 + r;
  const bool row_ok = q < r1;

  for (int i = tid; i < kSimtRows * D; i += kThreads) {
    const int rr = i / static_cast<int>(D), dd = i - rr * static_cast<int>(D);
    sQ[rr * ld + dd] = r0 + rr < r1 ? to_f32(qg[(r0 + rr) * D + dd]) : 0.0f;
  }

  float acc[kJ];
#pragma unroll
  for (int j = 0; j < kJ; ++j) acc[j] = 0.0f;
  float m = -INFINITY, l = 0.0f;

  const int64_t items = rv.nfull + rv.npart;
  for (int64_t it = 0; it < items; ++it) {
    const bool partial = it >= rv.nfull;
    const int64_t kb = partial ? rv.part[it - rv.nfull] : rv.full[it];
    if (kb < 0 || kb >= p.nkb) continue;  // a corrupt layout must not steer loads
    const int64_t kbeg = kb * p.block_k;
    if (kbeg >= rv.k_lim) continue;
    const int64_t kend = block_end(kbeg, p.block_k, rv.k_lim);
    for (int64_t kc = kbeg; kc < kend; kc += kSimtKeys) {
      __syncthreads();  // Q visible (first chunk); the previous chunk's K / V fully consumed
      for (int i = tid; i < kSimtKeys * D; i += kThreads) {
        const int kr = i / static_cast<int>(D), dd = i - kr * static_cast<int>(D);
        const bool ok = kc + kr < kend;
        sK[kr * ld + dd] = ok ? to_f32(kg[(kc + kr) * D + dd]) : 0.0f;
        sV[kr * ld + dd] = ok ? to_f32(vg[(kc + kr) * D + dd]) : 0.0f;
      }
      __syncthreads();
      float dot0 = 0.0f, dot1 = 0.0f;
      const float* qr = sQ + r * ld;
      const float* k0r = sK + sub * ld;
      const float* k1r = sK + (sub + 8) * ld;
      for (int dd = 0; dd < D; ++dd) {
        const float x = qr[dd];
        dot0 = fmaf(x, k0r[dd], dot0);
        dot1 = fmaf(x, k1r[dd], dot1);
      }
      const int64_t ka = kc + sub, kb2 = kc + sub + 8;
      bool va = row_ok && ka < kend, vb = row_ok && kb2 < kend;
      if (partial) {
        va = va && mask_visible(s_nodes, p.prog.count, rv.mr, q, ka);
        vb = vb && mask_visible(s_nodes, p.prog.count, rv.mr, q, kb2);
      }
      float xa = va ? score(dot0, p) : -INFINITY;
      float xb = vb ? score(dot1, p) : -INFINITY;
      float mx = fmaxf(xa, xb);
#pragma unroll
      for (int o2 = 1; o2 <= 4; o2 <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o2));
      const float mn = fmaxf(m, mx);
      const float base = mn == -INFINITY ? 0.0f : mn;
      const float alpha = exp2f(m - base);
      m = mn;
      xa = exp2f(xa - base);
      xb = exp2f(xb - base);
      l = l * alpha + xa + xb;
#pragma unroll
      for (int j = 0; j < kJ; ++j) acc[j] *= alpha;
#pragma unroll 4
      for (int kk = 0; kk < kSimtKeys; ++kk) {
        const float pk = __shfl_sync(0xffffffffu, kk < 8 ? xa : xb, src_base + (kk & 7));
        const float* vr = sV + kk * ld;
#pragma unroll
        for (int j = 0; j < kJ; ++j) {
          const int c = sub + 8 * j;
          if (c < D) acc[j] = fmaf(pk, vr[c], acc[j]);
        }
      }
    }
  }

#pragma unroll
  for (int o2 = 1; o2 <= 4; o2 <<= 1) l += __shfl_xor_sync(0xffffffffu, l, o2);
  if (!row_ok) return;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  const int64_t row = bh * p.seq_q + q;
#pragma unroll
  for (int j = 0; j < kJ; ++j) {
    const int c = sub + 8 * j;
    if (c < D) store1<T>(p.out, p.out_f32, row * D + c, acc[j] * inv);
  }
  if (sub == 0) p.lse[row] = l > 0.0f ? (m + log2f(l)) * kLn2 : -INFINITY;
}

/* =============================================================================================
 * Host side
 * =========================================================================================== */

int64_t blocks_of(int64_t n, int64_t block) { return n <= 0 ? 0 : (n - 1) / block + 1; }

bool aligned(int64_t address, int64_t bytes) { return (address % bytes) == 0; }

template <typename K>
cudaError_t launch(K kernel, size_t smem, int64_t ctas, const FwdParams& p, cudaStream_t st) {
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (err != cudaSuccess) return err;
  kernel<<<static_cast<unsigned>(ctas), kThreads, smem, st>>>(p);
  return cudaGetLastError();
}

template <typename T, int D>
cudaError_t launch_mma(const FwdParams& p, int64_t ctas, cudaStream_t st) {
  return launch(attn_fwd_mma<T, D>, MmaCfg<T, D>::kSmemBytes, ctas, p, st);
}

template <typename T>
cudaError_t launch_simt(const FwdParams& p, int64_t ctas, cudaStream_t st) {
  const size_t smem = simt_smem_bytes(p.d);
  if (p.d <= 64) return launch(attn_fwd_simt<T, 8>, smem, ctas, p, st);
  if (p.d <= 128) return launch(attn_fwd_simt<T, 16>, smem, ctas, p, st);
  return launch(attn_fwd_simt<T, 32>, smem, ctas, p, st);
}

/* The tensor-core kernel covers this call. */
bool mma_path(const llmk_attn_args& a) {
  if (a.dtype != LLMK_F16 && a.dtype != LLMK_BF16) return false;
  if (a.head_dim != 64 && a.head_dim != 128) return false;
  if (a.block_q % kMmaRows != 0 || a.block_k % kMmaKeys != 0) return false;
  if (!aligned(a.q, 16) || !aligned(a.k, 16) || !aligned(a.v, 16)) return false;
  return aligned(a.out, a.out_dtype == LLMK_F32 ? 8 : 4);
}

}  // namespace
}  // namespace attn
}  // namespace llmk

extern "C" int32_t llmk_attn_forward_cuda(const llmk_attn_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk::attn;
    LLMK_TRY_STATUS(llmk::check_attn_args(args));
    const llmk_attn_args& a = *args;
    if (a.head_dim > kMaxHeadDim) {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "the CUDA attention supports head_dim <= " +
                                                       std::to_string(kMaxHeadDim) + "; got " +
                                                       std::to_string(a.head_dim));
    }
    if (a.device < 0 || a.device > INT32_MAX) {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "device must be a CUDA device ordinal; got " + std::to_string(a.device));
    }
    if (a.seq_q == 0) return LLMK_OK;  // nothing to write
    const bool mma = mma_path(a);
    FwdParams p;
    p.prog = make_program(a.nodes, a.node_count);
    p.q = reinterpret_cast<const void*>(a.q);
    p.k = reinterpret_cast<const void*>(a.k);
    p.v = reinterpret_cast<const void*>(a.v);
    p.out = reinterpret_cast<void*>(a.out);
    p.lse = reinterpret_cast<float*>(a.lse);
    p.heads_q = a.heads_q;
    p.group = a.heads_q / a.heads_kv;
    p.seq_q = a.seq_q;
    p.seq_k = a.seq_k;
    p.d = a.head_dim;
    p.layout_batch = a.layout_batch;
    p.layout_heads = a.layout_heads;
    p.block_q = a.block_q;
    p.block_k = a.block_k;
    p.nqb = blocks_of(a.seq_q, a.block_q);
    p.nkb = blocks_of(a.seq_k, a.block_k);
    // block_k / 64, except that one block covering all keys (any block_k >= seq_k) needs only
    // ceil(seq_k / 64): keeps the walk's (blocks x sub-tiles) index far from overflow.
    p.subs_per_block = blocks_of(a.block_k < a.seq_k ? a.block_k : a.seq_k, kMmaKeys);
    if (p.subs_per_block < 1) p.subs_per_block = 1;
    p.q_lens = a.q_lens;
    p.k_lens = a.k_lens;
    p.partial_ptr = reinterpret_cast<const int64_t*>(a.partial_ptr);
    p.partial_idx = reinterpret_cast<const int32_t*>(a.partial_idx);
    p.full_ptr = reinterpret_cast<const int64_t*>(a.full_ptr);
    p.full_idx = reinterpret_cast<const int32_t*>(a.full_idx);
    p.tiles_per_block = blocks_of(a.block_q < a.seq_q ? a.block_q : a.seq_q, kSimtRows);
    p.q_tiles = mma ? blocks_of(a.seq_q, kMmaRows) : p.nqb * p.tiles_per_block;
    p.ld = simt_ld(a.head_dim);
    if (a.softcap > 0.0) {
      p.score_mul = static_cast<float>(a.scale / a.softcap);
      p.cap_mul = static_cast<float>(a.softcap * 1.4426950408889634);
    } else {
      p.score_mul = static_cast<float>(a.scale * 1.4426950408889634);
      p.cap_mul = 0.0f;
    }
    p.out_f32 = a.out_dtype == LLMK_F32;
    const int64_t eb = a.dtype == LLMK_F32 ? 4 : 2;
    LLMK_TRY_STATUS(require_aligned_program(p.prog));
    LLMK_TRY_STATUS(require_aligned(a.q, eb, "q"));
    LLMK_TRY_STATUS(require_aligned(a.k, eb, "k"));
    LLMK_TRY_STATUS(require_aligned(a.v, eb, "v"));
    LLMK_TRY_STATUS(require_aligned(a.out, p.out_f32 ? 4 : 2, "out"));
    LLMK_TRY_STATUS(require_aligned(a.lse, 4, "lse"));
    LLMK_TRY_STATUS(require_aligned(a.q_lens, 4, "q_lens"));
    LLMK_TRY_STATUS(require_aligned(a.k_lens, 4, "k_lens"));
    LLMK_TRY_STATUS(require_aligned(a.partial_ptr, 8, "partial_ptr"));
    LLMK_TRY_STATUS(require_aligned(a.full_ptr, 8, "full_ptr"));
    LLMK_TRY_STATUS(require_aligned(a.partial_idx, 4, "partial_idx"));
    LLMK_TRY_STATUS(require_aligned(a.full_idx, 4, "full_idx"));
    // One CTA per (b, hq, query tile): the grid must fit a 1-D launch.
    const int64_t bh = a.batch * a.heads_q;
    if (p.q_tiles > INT32_MAX / bh) {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "the CUDA attention launches one CTA per (batch, head, query tile) and "
                                                   "supports at most 2^31 - 1 of them; got " +
                                                       std::to_string(bh) + " x " + std::to_string(p.q_tiles));
    }
    const int64_t ctas = bh * p.q_tiles;

    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(static_cast<int32_t>(a.device)));
    cudaStream_t st = reinterpret_cast<cudaStream_t>(a.stream);
    if (a.partial_idx == 0 || a.full_idx == 0) {
      // Valid only if that list is empty: read its total back (the only synchronising path).
      const int64_t rows = a.layout_batch * a.layout_heads * p.nqb;
      const struct { int64_t idx, ptr; const char* name; } lists[] = {
          {a.partial_idx, a.partial_ptr, "partial_idx"}, {a.full_idx, a.full_ptr, "full_idx"}};
      for (const auto& x : lists) {
        if (x.idx != 0) continue;
        int64_t total = 0;
        LLMK_CUDA_TRY(cudaMemcpyAsync(&total, reinterpret_cast<const int64_t*>(x.ptr) + rows, sizeof(total),
                                      cudaMemcpyDeviceToHost, st));
        LLMK_CUDA_TRY(cudaStreamSynchronize(st));
        if (total != 0) {
          return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, std::string(x.name) + " must not be a null pointer: the layout has " +
                                                           std::to_string(total) + " such blocks");
        }
      }
    }
    cudaError_t err;
    if (mma) {
      if (a.dtype == LLMK_BF16) {
        err = a.head_dim == 64 ? launch_mma<__nv_bfloat16, 64>(p, ctas, st) : launch_mma<__nv_bfloat16, 128>(p, ctas, st);
      } else {
        err = a.head_dim == 64 ? launch_mma<__half, 64>(p, ctas, st) : launch_mma<__half, 128>(p, ctas, st);
      }
    } else {
      switch (a.dtype) {
        case LLMK_F32: err = launch_simt<float>(p, ctas, st); break;
        case LLMK_F16: err = launch_simt<__half>(p, ctas, st); break;
        default: err = launch_simt<__nv_bfloat16>(p, ctas, st); break;
      }
    }
    if (err != cudaSuccess) {
      return llmk::fail_cuda(err, mma ? "launch of attn_fwd_mma" : "launch of attn_fwd_simt", __FILE__, __LINE__);
    }
    return LLMK_OK;
  });
}
