/* Block-sparse attention forward on the GPU (llmk_attn_forward_cuda), FlashAttention-2 style.
 *
 * A CTA owns a query tile of one (batch b, query head hq) and walks the KV blocks of its layout row
 * (lb = layout_batch == 1 ? 0 : b, lh = layout_heads == 1 ? 0 : hq): first the FULL blocks, then
 * the PARTIAL ones, each in the layout's ascending order, then the row's token-level key columns
 * (llmk_attn_args.columns, in slot order) whose key block neither list holds. A fixed order:
 * results are deterministic. Online softmax in fp32 in the log2 domain (scale * log2 e folded
 * into the scores; with a softcap, s = softcap * tanh(scale * q.k / softcap) first). A running max
 * of -inf (nothing visible yet) uses 0 as the exponent base, so no inf - inf is ever formed; a row
 * that saw no visible key ends with out = 0 and lse = -inf.
 *
 * Column pass. Columns are gathered keys: chunks of the row's column slots are loaded row by row
 * by key index into the same smem tiles as a block's keys and always take the element mask. A
 * slot's key j counts when 0 <= j < min(seq_k, k_len) (the kernels cannot validate the list: an
 * entry outside [0, seq_k) is read as padding, its K / V rows zero-filled), when j / block_k is
 * in neither ascending list of the layout row (binary search; a listed block already holds j, and
 * a key must not count twice) and when mask_visible(q, j). Those per-slot keys (-1 for a slot that
 * does not count) are computed once per chunk by as many threads as the chunk has slots, into a
 * small smem array next to the K / V tiles, so the per-element mask reads one int instead of
 * searching the lists. A chunk is skipped without loading when the mask classifies the key span
 * [first entry, last non-negative entry] EMPTY for the CTA's query rows, and the pass stops at a
 * chunk that starts with padding or past the keys: both rely on the documented row order
 * (ascending, then -1), which the kernels trust; a row that breaks it gives wrong sums, never a
 * wild memory access.
 *
 * Tensor-core path (F16 / BF16, head_dim 64 or 128, block_q and block_k multiples of 64, 16-byte
 * aligned q/k/v): 128 threads, 4 warps x 16 query rows = 64 rows; KV sub-tiles of 64 keys, whose
 * K / V rows at or past min(seq_k, k_len) are zero-filled, not loaded (as the column pass and the
 * general path do: P = 0 times NaN padding of a KV cache would be NaN).
 *   smem: 4 tiles of 64 x (d + 8) elements: K and V of two stages (cp.async double buffering; the
 *         +8 padding makes every ldmatrix row address fall in a different bank group). Q is
 *         staged once in stage 1's K tile, moved to registers (A fragments), and the tile is then
 *         reused. The mask program follows (<= 2816 bytes), then the slot keys of a column chunk
 *         per stage (2 x 64 int32, written with that stage's loads and read after the same wait +
 *         barrier). d = 128: 72960 bytes, d = 64: 40192. The walk's invariants (the layout row,
 *         step counts) sit in a static shared Walk: registers are all taken by the tile body.
 *   S = Q K^T with mma.sync m16n8k16 (ldmatrix of K rows = col-major B), P stays in registers
 *   (the accumulator layout of S is the A-fragment layout of P V), V via ldmatrix.trans.
 *   The walk is one index t: [0, total) the 64-key sub-tiles of the listed blocks, then one step
 *   per 64 column slots. Each 64 x 64 sub-tile of a PARTIAL block is re-classified with
 *   mask_tile_class (uniform over the CTA): EMPTY sub-tiles are skipped (no load), FULL ones skip
 *   the element mask, the rest (and every column chunk) evaluate llmk::mask_visible per element
 *   into a 32-bit visibility word per thread (one non-unrolled loop, so the interpreter is inlined
 *   once), applied to the unrolled scores. FULL blocks only mask key columns >= seq_k (ragged last
 *   block); out-of-range smem rows are zero-filled by cp.async, so no NaN can come from stale
 *   memory.
 * General path (any dtype, head_dim 1..256, any block sizes): exact fp32 FMA, 128 threads =
 *   16 query rows x 8 threads, keys in chunks of 16 (each thread scores 2 keys and owns
 *   ceil(d / 8) output columns); element mask on every PARTIAL block and every column chunk (16
 *   slots). Correctness over speed.
 * Rows q >= seq_q are never written. All tensor offsets are 64-bit. */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>
#include <type_traits>

#include "attention_args.h"
#include "attention_common.cuh"
#include "cce_common.cuh"
#include "cuda_check.cuh"
#include "launch.cuh"

namespace llmk {
namespace attn {
namespace {

using cce::cp_async16;
using cce::cp_async_commit;
using cce::cp_async_wait;
using cce::from_f32;
using cce::ldmatrix_x4;
using cce::ldmatrix_x4_trans;
using cce::mma_m16n8k16;
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
  const int32_t* columns;   // [layout_batch, layout_heads, col_cap] key columns, or null (col_cap = 0)
  int64_t col_cap;
  int64_t col_chunks;       // tensor-core path: 64-slot column chunks per row (ceil(col_cap / 64))
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
  const int32_t* cols;  // the (b, h) row of the key columns (col_cap slots), or null
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
  v.cols = p.col_cap > 0 ? p.columns + (lb * p.layout_heads + lh) * p.col_cap : nullptr;
  return v;
}

/* The key of a column entry if it counts for this row, else -1: inside [0, k_lim) (an entry the
 * host could not vet must not steer a load) and in a key block that neither list holds (that
 * block's walk already sees it). The lists ascend: binary search. */
__device__ __forceinline__ int32_t column_key(const FwdParams& p, const RowView& rv, int64_t j) {
  if (j < 0 || j >= rv.k_lim) return -1;
  const int64_t kb = j / p.block_k;
  const int64_t f = mask_lower_bound(rv.full, rv.nfull, kb);
  if (f < rv.nfull && rv.full[f] == kb) return -1;
  const int64_t pi = mask_lower_bound(rv.part, rv.npart, kb);
  if (pi < rv.npart && rv.part[pi] == kb) return -1;
  return static_cast<int32_t>(j);
}

/* Key span [lo, hi) holding every valid entry of column slots cols[0, n) (n >= 1), by the row
 * format: ascending keys, then -1. lo < 0: the chunk is padding. hi is cut at k_lim. */
__device__ __forceinline__ void column_span(const int32_t* cols, int64_t n, int64_t k_lim, int64_t& lo, int64_t& hi) {
  int64_t a = 0, b = n;  // first slot holding padding
  while (a < b) {
    const int64_t mid = (a + b) >> 1;
    if (cols[mid] >= 0) a = mid + 1; else b = mid;
  }
  lo = cols[0];
  hi = a > 0 ? min64(static_cast<int64_t>(cols[a - 1]) + 1, k_lim) : 0;
}

__host__ __device__ __forceinline__ int64_t block_end(int64_t start, int64_t block, int64_t limit) {
  return limit - start < block ? limit : start + block;
}

/* =============================================================================================
 * Tensor-core path
 * =========================================================================================== */

constexpr int kMmaRows = 64;  // query rows per CTA
constexpr int kMmaKeys = 64;  // keys per sub-tile

enum SubMode : int { kSubFull = 0, kSubPartial = 1, kSubColumn = 2 };

template <typename T, int D>
struct MmaCfg {
  static constexpr int kLd = D + 8;  // (2D + 16)-byte rows: 8 ldmatrix rows hit 8 distinct 16-byte bank groups
  static constexpr int kTileElems = kMmaRows * kLd;
  static constexpr size_t kTileBytes = static_cast<size_t>(kTileElems) * sizeof(T);
  static constexpr size_t kKeysOffset = 4 * kTileBytes + kNodeBytes;  // 2 stages x 64 slot keys
  static constexpr size_t kSmemBytes = kKeysOffset + 2 * kMmaKeys * sizeof(int32_t);
  // Register budget: 2 CTAs per SM (<= 255 registers). With the mask interpreter inlined, d = 64
  // needs ~235 and spills when cut to 3 CTAs per SM (168 registers).
  static constexpr int kMinBlocks = 2;
};

/* The walk's invariants. The tensor-core kernel keeps them in shared memory, not registers: the
 * S / P V body of d = 128 needs nearly all 255 registers, and these are read only between steps
 * (next_sub, issue_sub, the element mask), where a shared load is cheap. */
struct Walk {
  RowView rv;
  int64_t total;  // block sub-tiles: steps [0, total)
  int64_t end;    // total + column chunks
};

/* One step of the CTA's walk: position t in [0, end). t < total: a 64-key sub-tile of a listed
 * block starting at key k0 (kSubFull / kSubPartial); t >= total: the column chunk of slots
 * [k0, k0 + 64) (kSubColumn). */
struct Sub {
  int64_t t;
  int64_t k0;
  int mode;
};

/* First step at or after t that has something to compute: a block sub-tile inside [0, k_lim)
 * and, for a PARTIAL block, not classified EMPTY for this CTA's 64 query rows; a column chunk
 * whose key span is not EMPTY. Uniform over the CTA. One mask_tile_class call site for both
 * kinds keeps a single inlined copy of the classifier. */
__device__ __forceinline__ Sub next_sub(const FwdParams& p, const Walk& w, const llmk_mask_node* nodes, int64_t t,
                                        int64_t q0, int64_t q1) {
  const RowView& rv = w.rv;
  const int64_t spb = p.subs_per_block, total = w.total, end = w.end;
  for (; t < end; ++t) {
    int64_t k0, k1;
    if (t < total) {
      const int64_t item = t / spb, sub = t - item * spb;
      const bool partial = item >= rv.nfull;
      const int64_t kb = partial ? rv.part[item - rv.nfull] : rv.full[item];
      const bool valid = kb >= 0 && kb < p.nkb;  // a corrupt index must not steer loads
      k0 = valid ? kb * p.block_k + sub * kMmaKeys : 0;  // <= k_lim + 63: see the skip
      // Past the keys: on to the next block (a huge block_k costs nothing).
      if (!valid || k0 >= rv.k_lim) {
        t = (item + 1) * spb - 1;
        continue;
      }
      if (!partial) return Sub{t, k0, kSubFull};
      k1 = block_end(k0, kMmaKeys, p.seq_k);
    } else {
      const int64_t c0 = (t - total) * kMmaKeys;
      column_span(rv.cols + c0, min64(kMmaKeys, p.col_cap - c0), rv.k_lim, k0, k1);
      // Padding, or keys past k_lim: by the row order nothing later can count.
      if (k0 < 0 || k0 >= rv.k_lim) break;
    }
    const int c = mask_tile_class(nodes, p.prog.count, rv.mr, q0, q1, k0, k1);
    if (c == LLMK_TILE_EMPTY) continue;
    if (t >= total) return Sub{t, (t - total) * kMmaKeys, kSubColumn};
    return Sub{t, k0, c == LLMK_TILE_FULL ? kSubFull : kSubPartial};
  }
  return Sub{end, 0, kSubFull};
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

/* K and V rows of the column slots idx[0, n) into smem rows 0..63 (stride kLd); slots past n or
 * holding a key outside [0, limit) (limit = min(seq_k, k_len)) are zero-filled: they are masked
 * later, and zeros never turn into NaN in P V the way padding past k_len could. */
template <typename T, int D>
__device__ __forceinline__ void gather_kv_async(T* sk, T* sv, const T* kg, const T* vg, const int32_t* idx,
                                                int64_t n, int64_t limit) {
  constexpr int kChunks = D / 8;
  constexpr int kLd = MmaCfg<T, D>::kLd;
#pragma unroll
  for (int it = 0; it < kMmaRows * kChunks / kThreads; ++it) {
    const int i = it * kThreads + static_cast<int>(threadIdx.x);
    const int r = i / kChunks, c = i % kChunks;
    const int64_t j = r < n ? static_cast<int64_t>(idx[r]) : -1;
    const bool ok = j >= 0 && j < limit;
    const int64_t off = ok ? j * D + c * 8 : 0;
    cp_async16(sk + r * kLd + c * 8, kg + off, ok);
    cp_async16(sv + r * kLd + c * 8, vg + off, ok);
  }
}

/* Issues the loads of step u into a stage (K tile s, V tile s + kTile, slot keys s_key[0, 64)).
 * A column chunk also writes its slot keys: threads 0..63 (warps 0 and 1, no divergence inside
 * a warp) each settle one slot. The consumer reads them after the cp.async wait + barrier that
 * publishes the tiles, and the stage is rewritten only after the barrier that ends its use. */
template <typename T, int D>
__device__ __forceinline__ void issue_sub(const FwdParams& p, const RowView& rv, const Sub& u, T* s, int32_t* s_key,
                                          const T* kg, const T* vg) {
  constexpr int kTile = MmaCfg<T, D>::kTileElems;
  if (u.mode != kSubColumn) {
    // Rows at and past k_lim (= min(seq_k, k_len)) are masked, but P V would still multiply them
    // by P = 0, and 0 * NaN = NaN (padding of an uninitialised KV cache): zero-fill them instead.
    load_tile_async<T, D>(s, kg, u.k0, rv.k_lim);
    load_tile_async<T, D>(s + kTile, vg, u.k0, rv.k_lim);
    return;
  }
  const int64_t n = min64(kMmaKeys, p.col_cap - u.k0);
  const int32_t* idx = rv.cols + u.k0;
  gather_kv_async<T, D>(s, s + kTile, kg, vg, idx, n, rv.k_lim);  // keys past k_len stay zeros
  const int slot = static_cast<int>(threadIdx.x);
  if (slot < kMmaKeys) s_key[slot] = slot < n ? column_key(p, rv, idx[slot]) : -1;
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
  unsigned char* smem_raw = llmk::dynamic_smem<unsigned char>();
  T* smem = reinterpret_cast<T*>(smem_raw);
  llmk_mask_node* s_nodes = reinterpret_cast<llmk_mask_node*>(smem_raw + 4 * Cfg::kTileBytes);
  int32_t* s_keys = reinterpret_cast<int32_t*>(smem_raw + Cfg::kKeysOffset);  // [stage][slot]
  load_program(p.prog, s_nodes);

  // Heavy tiles first: within a (b, hq) the CTAs take the query tiles from the last one down.
  const int64_t cta = blockIdx.x;
  const int64_t bh = cta / p.q_tiles;
  const int64_t qt = p.q_tiles - 1 - (cta - bh * p.q_tiles);
  const int64_t b = bh / p.heads_q, hq = bh - b * p.heads_q;
  const int64_t hkv = hq / p.group;
  const int64_t q0 = qt * kMmaRows;
  const int64_t q1 = block_end(q0, kMmaRows, p.seq_q);
  __shared__ Walk s_walk;
  if (threadIdx.x == 0) {
    s_walk.rv = row_view(p, b, hq, q0 / p.block_q);  // block_q % 64 == 0: one layout row
    s_walk.total = (s_walk.rv.nfull + s_walk.rv.npart) * p.subs_per_block;
    s_walk.end = s_walk.total + (s_walk.rv.cols != nullptr ? p.col_chunks : 0);
  }
  const Walk& w = s_walk;

  const T* qg = static_cast<const T*>(p.q) + (bh * p.seq_q) * D;
  const int64_t kv_off = ((b * (p.heads_q / p.group) + hkv) * p.seq_k) * D;
  const T* kg = static_cast<const T*>(p.k) + kv_off;
  const T* vg = static_cast<const T*>(p.v) + kv_off;

  const int warp = static_cast<int>(threadIdx.x) >> 5, ln = static_cast<int>(threadIdx.x) & 31;
  const int g = ln >> 2, qd = ln & 3;

  __syncthreads();  // s_nodes and s_walk visible to next_sub

  // Prologue: Q into stage 1's K tile, the first sub-tile into stage 0.
  T* sQ = smem + 2 * kTile;
  load_tile_async<T, D>(sQ, qg, q0, p.seq_q);
  Sub cur = next_sub(p, w, s_nodes, 0, q0, q1);
  if (cur.t < w.end) issue_sub<T, D>(p, w.rv, cur, smem, s_keys, kg, vg);
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
  while (cur.t < w.end) {
    const Sub nxt = next_sub(p, w, s_nodes, cur.t + 1, q0, q1);
    if (nxt.t < w.end) {
      issue_sub<T, D>(p, w.rv, nxt, smem + (stage ^ 1) * 2 * kTile, s_keys + (stage ^ 1) * kMmaKeys, kg, vg);
    }
    cp_async_commit();
    cp_async_wait<1>();  // everything but the group just issued: the current stage has landed
    // The barrier also asks whether a column chunk keeps any slot (thread t wrote slot t's key
    // itself): a chunk whose columns all fall in listed blocks or past the keys computes nothing.
    const bool kept = cur.mode != kSubColumn ||
                      (threadIdx.x < kMmaKeys && s_keys[stage * kMmaKeys + threadIdx.x] >= 0);
    if (!__syncthreads_or(kept)) {
      stage ^= 1;  // nobody reads this stage again: the next issue into it follows this barrier
      cur = nxt;
      continue;
    }
    const T* sK = smem + stage * 2 * kTile;
    const T* sV = sK + kTile;

    // Element mask of a PARTIAL sub-tile or a column chunk, before the scores exist (fewer live
    // registers): bit j * 4 + e is entry (j, e) of the S fragment below. A chunk's slot keys are
    // -1 where the slot does not count (see issue_sub).
    uint32_t visible = 0xffffffffu;
    if (cur.mode != kSubFull) {
      visible = 0;
      const int64_t qrow = q0 + warp * 16 + g;
      const bool column = cur.mode == kSubColumn;
      const int32_t* keys = s_keys + stage * kMmaKeys;
#pragma unroll 1
      for (int i = 0; i < 32; ++i) {
        const int64_t qq = qrow + ((i >> 1) & 1) * 8;
        const int slot = (i >> 2) * 8 + 2 * qd + (i & 1);
        const int64_t kk = column ? static_cast<int64_t>(keys[slot]) : cur.k0 + slot;
        if (kk >= 0 && kk < p.seq_k && mask_visible(s_nodes, p.prog.count, w.rv.mr, qq, kk)) visible |= 1u << i;
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
        mma_m16n8k16<T>(s[2 * pp][0], s[2 * pp][1], s[2 * pp][2], s[2 * pp][3], qf[ks], t4[0], t4[1]);
        mma_m16n8k16<T>(s[2 * pp + 1][0], s[2 * pp + 1][1], s[2 * pp + 1][2], s[2 * pp + 1][3], qf[ks], t4[2], t4[3]);
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
    if (cur.mode != kSubFull) {
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
        mma_m16n8k16<T>(o[2 * dp][0], o[2 * dp][1], o[2 * dp][2], o[2 * dp][3], a, t4[0], t4[1]);
        mma_m16n8k16<T>(o[2 * dp + 1][0], o[2 * dp + 1][1], o[2 * dp + 1][2], o[2 * dp + 1][3], a, t4[2], t4[3]);
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
/* sQ, sK, sV (16 x ld floats each), the mask program, then the 16 slot keys of a column chunk. */
inline size_t simt_keys_offset(int64_t d) {
  return static_cast<size_t>(3 * kSimtRows) * simt_ld(d) * sizeof(float) + kNodeBytes;
}
inline size_t simt_smem_bytes(int64_t d) { return simt_keys_offset(d) + kSimtKeys * sizeof(int32_t); }

template <typename T>
__device__ __forceinline__ void store1(void* out, bool out_f32, int64_t pos, float x) {
  if (out_f32) static_cast<float*>(out)[pos] = x;
  else static_cast<T*>(out)[pos] = from_f32<T>(x);
}

/* One 16-key chunk staged in sK / sV against this thread's query row r: keys sub and sub + 8
 * (visibility va / vb, decided by the caller), online softmax over the row's 8 threads, then
 * acc += P V for the thread's output columns sub + 8 j. */
template <int kJ>
__device__ __forceinline__ void simt_chunk(const FwdParams& p, const float* sQ, const float* sK, const float* sV,
                                           int ld, int r, int sub, int src_base, bool va, bool vb, float (&acc)[kJ],
                                           float& m, float& l) {
  const int64_t D = p.d;
  float dot0 = 0.0f, dot1 = 0.0f;
  const float* qr = sQ + r * ld;
  const float* k0r = sK + sub * ld;
  const float* k1r = sK + (sub + 8) * ld;
  for (int dd = 0; dd < D; ++dd) {
    const float x = qr[dd];
    dot0 = fmaf(x, k0r[dd], dot0);
    dot1 = fmaf(x, k1r[dd], dot1);
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

/* Position of the general path's walk: 16-key chunks of the listed blocks (FULL, then PARTIAL,
 * as listed), then 16-slot chunks of the row's columns. */
struct SimtStep {
  int64_t item;  // next layout item (block) to open
  int64_t kc;    // the chunk's first key (block) or first column slot (kSubColumn)
  int64_t kend;  // end of the current block's keys (cut at k_lim) or of the chunk's slots
  int kind;      // SubMode of the chunk; kSimtEnd past the last one
};
constexpr int kSimtEnd = -1;

/* The step after s: the rest of the current block, the next listed block that starts before
 * k_lim, then the column chunks whose key span the mask does not classify EMPTY for rows
 * [r0, r1). Uniform over the CTA. Not inlined: the classifier inlined into the chunk loop made
 * ptxas hold ~40 more registers at kJ = 32 (196 instead of ~155), costing an SM's third CTA;
 * one call per 16-key chunk is cheap next to the chunk's work. */
__device__ __noinline__ SimtStep simt_advance(const FwdParams& p, const RowView& rv, const llmk_mask_node* nodes,
                                             int64_t r0, int64_t r1, SimtStep s) {
  if (s.kind != kSubColumn) {
    s.kc += kSimtKeys;
    if (s.kc < s.kend) return s;
    while (s.item < rv.nfull + rv.npart) {
      const int64_t it = s.item++;
      const bool partial = it >= rv.nfull;
      const int64_t kb = partial ? rv.part[it - rv.nfull] : rv.full[it];
      if (kb < 0 || kb >= p.nkb) continue;  // a corrupt layout must not steer loads
      const int64_t kbeg = kb * p.block_k;
      if (kbeg >= rv.k_lim) continue;
      s.kc = kbeg;
      s.kend = block_end(kbeg, p.block_k, rv.k_lim);
      s.kind = partial ? kSubPartial : kSubFull;
      return s;
    }
    s.kind = kSubColumn;
    s.kc = -kSimtKeys;
  }
  if (rv.cols != nullptr) {
    for (s.kc += kSimtKeys; s.kc < p.col_cap; s.kc += kSimtKeys) {
      s.kend = min64(s.kc + kSimtKeys, p.col_cap);
      int64_t lo, hi;
      column_span(rv.cols + s.kc, s.kend - s.kc, rv.k_lim, lo, hi);
      if (lo < 0 || lo >= rv.k_lim) break;  // padding or past the keys: by the row order, nothing later counts
      if (mask_tile_class(nodes, p.prog.count, rv.mr, r0, r1, lo, hi) != LLMK_TILE_EMPTY) return s;
    }
  }
  s.kind = kSimtEnd;
  return s;
}

/* kJ = output columns per thread (ceil(d / 8) <= kJ). */
template <typename T, int kJ>
__global__ void __launch_bounds__(kThreads, 1) attn_fwd_simt(const __grid_constant__ FwdParams p) {
  unsigned char* smem_raw = llmk::dynamic_smem<unsigned char>();
  const int ld = p.ld;
  const int64_t D = p.d;
  float* sQ = reinterpret_cast<float*>(smem_raw);
  float* sK = sQ + kSimtRows * ld;
  float* sV = sK + kSimtKeys * ld;
  // 3 * 16 * ld floats = 192 ld bytes: a multiple of 8, as the nodes need.
  llmk_mask_node* s_nodes = reinterpret_cast<llmk_mask_node*>(sV + kSimtKeys * ld);
  int32_t* s_keys = reinterpret_cast<int32_t*>(s_nodes + LLMK_MASK_MAX_NODES);
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
  __shared__ RowView s_rv;  // read between chunks (simt_advance, slot keys, mask), like the mma path's Walk
  if (tid == 0) s_rv = row_view(p, b, hq, qb);
  const RowView& rv = s_rv;

  for (int i = tid; i < kSimtRows * D; i += kThreads) {
    const int rr = i / static_cast<int>(D), dd = i - rr * static_cast<int>(D);
    sQ[rr * ld + dd] = r0 + rr < r1 ? to_f32(qg[(r0 + rr) * D + dd]) : 0.0f;
  }

  float acc[kJ];
#pragma unroll
  for (int j = 0; j < kJ; ++j) acc[j] = 0.0f;
  float m = -INFINITY, l = 0.0f;

  __syncthreads();  // s_nodes and s_rv visible to simt_advance
  for (SimtStep st = simt_advance(p, rv, s_nodes, r0, r1, SimtStep{0, 0, 0, kSubFull}); st.kind != kSimtEnd;
       st = simt_advance(p, rv, s_nodes, r0, r1, st)) {
    const bool column = st.kind == kSubColumn;
    __syncthreads();  // Q visible (first chunk); the previous chunk's K / V / keys fully consumed
    // Row kr of the chunk is slot st.kc + kr: key st.kc + kr of a block, or a column's key.
    for (int i = tid; i < kSimtKeys * D; i += kThreads) {
      const int kr = i / static_cast<int>(D), dd = i - kr * static_cast<int>(D);
      const int64_t slot = st.kc + kr;
      const int64_t j = slot < st.kend ? (column ? static_cast<int64_t>(rv.cols[slot]) : slot) : -1;
      const bool ok = j >= 0 && j < rv.k_lim;  // keys past k_len stay zeros (never NaN from padding)
      sK[kr * ld + dd] = ok ? to_f32(kg[j * D + dd]) : 0.0f;
      sV[kr * ld + dd] = ok ? to_f32(vg[j * D + dd]) : 0.0f;
    }
    bool kept = !column;
    if (column && tid < kSimtKeys) {
      s_keys[tid] = st.kc + tid < st.kend ? column_key(p, rv, rv.cols[st.kc + tid]) : -1;
      kept = s_keys[tid] >= 0;
    }
    // A column chunk whose slots all fall in listed blocks or past the keys computes nothing.
    if (!__syncthreads_or(kept)) continue;
    // This thread's two keys, -1 for none: a block's keys before kend, a column chunk's slot keys.
    const int64_t sa = st.kc + sub, sb = sa + 8;
    const int64_t ka = column ? s_keys[sub] : (sa < st.kend ? sa : -1);
    const int64_t kb2 = column ? s_keys[sub + 8] : (sb < st.kend ? sb : -1);
    const bool masked = st.kind != kSubFull;
    const bool va = row_ok && ka >= 0 && (!masked || mask_visible(s_nodes, p.prog.count, rv.mr, q, ka));
    const bool vb = row_ok && kb2 >= 0 && (!masked || mask_visible(s_nodes, p.prog.count, rv.mr, q, kb2));
    simt_chunk<kJ>(p, sQ, sK, sV, ld, r, sub, src_base, va, vb, acc, m, l);
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
  llmk::launch(kernel, static_cast<unsigned>(ctas), kThreads, smem, st, p);
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
    p.columns = reinterpret_cast<const int32_t*>(a.columns);  // null exactly when col_cap = 0 (checked)
    p.col_cap = a.col_cap;
    p.col_chunks = blocks_of(a.col_cap, kMmaKeys);
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
    LLMK_TRY_STATUS(require_aligned(a.columns, 4, "columns"));
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
