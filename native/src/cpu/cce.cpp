/* Cut cross-entropy on the CPU.
 *
 * Valid rows (target not ignored) are gathered into chunks of R rows, converted once to fp32.
 * For each chunk the vocabulary is cut into blocks of kBlockV columns handed to threads
 * round-robin (static schedule: deterministic for a fixed thread count). A thread recomputes the
 * logit tile S = E_chunk C_block^T (cpu/isa/cce_isa.cpp) and
 *   forward:  folds the tile into its per-row online log-sum-exp; thread states merge in order;
 *   backward: turns S into the gradient G in place, skips row groups whose |G| is below the
 *             filter threshold, and accumulates dE_chunk += G C_block into its own fp32 partial
 *             (summed over threads in order afterwards) and dC_block += G^T E_chunk (the block's
 *             rows belong to this thread alone).
 * Workspace: O(n + v) per-row/per-column arrays, per-thread tiles of fixed size, and, for F16/BF16
 * gradients with fp32 accumulation, the smaller of an fp32 copy of dC (several chunks) and
 * per-thread dE partials of all rows (one chunk). Never n x v. */
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "cce_args.h"
#include "cpu/isa/isa_kernels.h"
#include "error.h"
#include "llmk/cce_math.h"

namespace llmk {
namespace {

constexpr int64_t kBlockV = 128;                 // vocabulary columns per tile
constexpr int64_t kFilterRows = 64;              // rows per filtering decision ("a tile" in the statistics)
constexpr int64_t kPartialBytes = int64_t{16} << 20;  // target size of a per-thread dE partial
constexpr int64_t kMaxChunkRows = 2048;
constexpr size_t kAlign = 64;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* How dC is accumulated across chunks. */
enum class DcMode {
  InPlaceF32,  // F32 gradients: accumulate in grad_c itself
  SingleChunk, // F16/BF16 and one chunk: each block's rows are written once
  Fp32Buffer,  // F16/BF16, several chunks, fp32 accumulation: fp32 workspace, converted at the end
  InPlaceHalf  // F16/BF16, several chunks, no fp32 accumulation: read-add-write in the output dtype
};

/* Byte layout of the single workspace allocation; the same arithmetic sizes and carves it. */
struct Plan {
  int threads = 1;
  int64_t chunk_rows = 0;  // R
  int64_t lds = 0;         // S tile row stride (kBlockV rounded to the panel width)
  DcMode dc_mode = DcMode::InPlaceF32;
  bool sort = false;
  bool analytic_smoothing = false;
  size_t total = 0;
  // shared
  size_t rows = 0, tcol = 0, e_chunk = 0, row_f32 = 0;
  // forward
  size_t stats = 0;
  // backward
  size_t order = 0, position = 0, sort_key = 0, mean_e = 0, dbias = 0, dc_acc = 0, smooth = 0;
  // per thread (offset of thread 0; stride per_thread)
  size_t thread_base = 0, per_thread = 0;
  size_t t_cnat = 0, t_panel = 0, t_s = 0, t_bias = 0, t_tcol = 0, t_keep = 0, t_partial = 0, t_dc = 0,
         t_gt = 0, t_dbias = 0, t_rowstat = 0;
};

class Layout {
 public:
  size_t add(int64_t bytes) {
    const size_t at = end_;
    end_ += (static_cast<size_t>(bytes) + kAlign - 1) / kAlign * kAlign;
    return at;
  }
  size_t end() const { return end_; }

 private:
  size_t end_ = 0;
};

Plan make_plan(const llmk_cce_args& a, CcePass pass, int64_t valid_rows) {
  Plan p;
  p.threads = std::max(1, omp_get_max_threads());
  const int64_t n = a.n, d = a.d, v = a.v;
  int64_t r = kPartialBytes / (4 * d) / kFilterRows * kFilterRows;
  r = std::min(std::max(r, kFilterRows), kMaxChunkRows);
  const int64_t all_rows = round_up(std::max<int64_t>(valid_rows, 1), 8);
  p.chunk_rows = std::max<int64_t>(1, std::min(r, all_rows));
  p.lds = round_up(kBlockV, kCcePanelCols);
  const bool half = a.dtype != LLMK_F32;
  const bool backward = pass == CcePass::Backward;
  // F16/BF16 dC over several chunks needs an fp32 copy of dC (V x D); one chunk instead needs
  // per-thread dE partials of all rows (threads x N x D). Take whichever is smaller.
  if (backward && half && a.grad_c != 0 && (a.flags & LLMK_CCE_FP32_ACCUM) && all_rows > p.chunk_rows &&
      static_cast<int64_t>(p.threads) * all_rows <= v) {
    p.chunk_rows = all_rows;
  }
  const int64_t chunks = valid_rows == 0 ? 0 : (valid_rows + p.chunk_rows - 1) / p.chunk_rows;
  if (!half) {
    p.dc_mode = DcMode::InPlaceF32;
  } else if (chunks <= 1) {
    p.dc_mode = DcMode::SingleChunk;
  } else {
    p.dc_mode = (a.flags & LLMK_CCE_FP32_ACCUM) ? DcMode::Fp32Buffer : DcMode::InPlaceHalf;
  }
  p.sort = backward && (a.flags & LLMK_CCE_SORT_VOCAB) && a.filter_eps > 0;
  p.analytic_smoothing = backward && a.label_smoothing > 0;

  Layout l;
  const int64_t R = p.chunk_rows;
  p.rows = l.add(8 * n);
  p.tcol = l.add(8 * n);
  p.e_chunk = l.add(4 * R * d);
  p.row_f32 = l.add(4 * 6 * R);  // per-chunk row arrays: lse, a, b, u, threshold / target logit, sums
  if (!backward) {
    p.stats = l.add(8 * 3 * R);    // merged sums in double
  } else {
    if (p.sort) {
      p.order = l.add(8 * v);
      p.position = l.add(8 * v);
      p.sort_key = l.add(8 * v);
      p.mean_e = l.add(8 * d);
    }
    if (a.grad_bias != 0) p.dbias = l.add(4 * v);
    if (a.grad_c != 0 && p.dc_mode == DcMode::Fp32Buffer) p.dc_acc = l.add(4 * v * d);
    if (p.analytic_smoothing) p.smooth = l.add(8 * 2 * d);
  }
  // Per-thread tiles.
  Layout t;
  p.t_cnat = t.add(4 * kBlockV * d);
  p.t_panel = t.add(4 * p.lds * d);
  p.t_s = t.add(4 * R * p.lds);
  p.t_bias = t.add(4 * p.lds);
  if (!backward) {
    p.t_rowstat = t.add(4 * 3 * R + 8 * 3 * R);  // tile max/sumexp/sumz (f32) + running m, s, sumz
  } else {
    p.t_tcol = t.add(8 * R);
    p.t_keep = t.add(R);
    if (a.grad_e != 0) p.t_partial = t.add(4 * R * d);
    if (a.grad_c != 0) {
      p.t_dc = t.add(4 * kBlockV * d);
      p.t_gt = t.add(4 * kBlockV * R);  // G^T of a run of kept rows: [kBlockV, run]
    }
    p.t_dbias = t.add(4 * kBlockV);
  }
  p.per_thread = t.end();
  p.thread_base = l.end();
  p.total = p.thread_base + p.per_thread * static_cast<size_t>(p.threads);
  return p;
}

/* One aligned allocation, freed on scope exit. */
class Arena {
 public:
  explicit Arena(size_t bytes) : base_(bytes ? static_cast<unsigned char*>(std::aligned_alloc(kAlign, bytes)) : nullptr) {}
  ~Arena() { std::free(base_); }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  bool ok(size_t bytes) const { return bytes == 0 || base_ != nullptr; }
  template <typename T>
  T* at(size_t offset) const {
    return reinterpret_cast<T*>(base_ + offset);
  }

 private:
  unsigned char* base_;
};

void to_f32(const void* src, int64_t dtype, int64_t count, float* dst) {
  if (dtype == LLMK_F32) {
    std::memcpy(dst, src, static_cast<size_t>(count) * 4);
  } else if (dtype == LLMK_BF16) {
    isa().bf16_to_f32(static_cast<const uint16_t*>(src), dst, count);
  } else {
    isa().f16_to_f32(static_cast<const uint16_t*>(src), dst, count);
  }
}

void from_f32(const float* src, int64_t dtype, int64_t count, void* dst) {
  if (dtype == LLMK_F32) {
    std::memcpy(dst, src, static_cast<size_t>(count) * 4);
  } else if (dtype == LLMK_BF16) {
    isa().f32_to_bf16(src, static_cast<uint16_t*>(dst), count);
  } else {
    isa().f32_to_f16(src, static_cast<uint16_t*>(dst), count);
  }
}

/* Element i of an E/C-dtype array, as a pointer. */
const void* elem(int64_t base, int64_t dtype, int64_t i) {
  return reinterpret_cast<const unsigned char*>(base) + i * (dtype == LLMK_F32 ? 4 : 2);
}
void* elem_mut(int64_t base, int64_t dtype, int64_t i) {
  return reinterpret_cast<unsigned char*>(base) + i * (dtype == LLMK_F32 ? 4 : 2);
}

/* Reads every target once (atomically: a concurrent writer cannot make a checked value change
 * under us), validates it, and records the valid rows and their target column in this shard
 * (-1 when the target lies in another shard). Nothing is written to outputs before this passes. */
int32_t collect_rows(const llmk_cce_args& a, int64_t* rows, int64_t* tcol, int64_t* valid_rows) {
  int64_t valid = 0;
  for (int64_t i = 0; i + a.shift < a.n; ++i) {
    const int64_t pos = i + a.shift;
    const int64_t t = a.target_dtype == LLMK_I32
                          ? __atomic_load_n(reinterpret_cast<const int32_t*>(a.targets) + pos, __ATOMIC_RELAXED)
                          : __atomic_load_n(reinterpret_cast<const int64_t*>(a.targets) + pos, __ATOMIC_RELAXED);
    if (t == a.ignore_index) continue;
    if (t < 0 || t >= a.vocab_total) return fail_cce_target(a, pos, t);
    const int64_t col = t - a.vocab_offset;
    rows[valid] = i;
    tcol[valid] = col >= 0 && col < a.v ? col : -1;
    ++valid;
  }
  *valid_rows = valid;
  return LLMK_OK;
}

/* Counts valid rows without storing them (for the workspace query, which must not read targets). */
int64_t upper_bound_rows(const llmk_cce_args& a) { return std::max<int64_t>(0, a.n - a.shift); }

/* memset by all threads: a fresh multi-GiB gradient is first touched here, and the page faults
 * (the kernel zeroing each page) then run in parallel too. */
void parallel_zero(void* dst, int64_t bytes) {
  constexpr int64_t kChunk = int64_t{2} << 20;
  const int64_t chunks = (bytes + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t i = 0; i < chunks; ++i) {
    const int64_t at = i * kChunk;
    std::memset(static_cast<unsigned char*>(dst) + at, 0, static_cast<size_t>(std::min(kChunk, bytes - at)));
  }
}

/* Converts chunk rows of E to fp32: e_chunk[r, :] = E[rows[r], :]. */
void load_e_chunk(const llmk_cce_args& a, const Plan& p, const Arena& arena, const int64_t* rows, int64_t count) {
  float* e_chunk = arena.at<float>(p.e_chunk);
#pragma omp parallel for schedule(static) if (count * a.d > (1 << 16))
  for (int64_t r = 0; r < count; ++r) {
    to_f32(elem(a.e, a.dtype, rows[r] * a.d), a.dtype, a.d, e_chunk + r * a.d);
  }
}

/* Thread t's [kBlockV, d] fp32 block buffer, also its scratch outside the block loop (>= d floats). */
float* thread_scratch(const Plan& p, const Arena& arena, int t) {
  return arena.at<float>(p.thread_base + p.per_thread * static_cast<size_t>(t) + p.t_cnat);
}

/* One thread's buffers for a vocabulary block. */
struct BlockBuffers {
  float* cnat;   // [kBlockV, d] fp32 C rows
  float* panel;  // the logit GEMM's panel of them
  float* bias;   // [kBlockV] fp32 bias, or null
};

BlockBuffers block_buffers(const Plan& p, const llmk_cce_args& a, unsigned char* mine) {
  return BlockBuffers{reinterpret_cast<float*>(mine + p.t_cnat), reinterpret_cast<float*>(mine + p.t_panel),
                      a.bias ? reinterpret_cast<float*>(mine + p.t_bias) : nullptr};
}

/* Loads C rows order[j0 + j] (or j0 + j) of the block as fp32, packs the panel, and the bias. */
void load_c_block(const llmk_cce_args& a, const int64_t* order, int64_t j0, int64_t bv, const BlockBuffers& b) {
  for (int64_t j = 0; j < bv; ++j) {
    const int64_t row = order ? order[j0 + j] : j0 + j;
    to_f32(elem(a.c, a.dtype, row * a.d), a.dtype, a.d, b.cnat + j * a.d);
    if (b.bias) to_f32(elem(a.bias, a.dtype, row), a.dtype, 1, b.bias + j);
  }
  isa().cce_pack_panel(b.cnat, bv, a.d, b.panel);
}

/* S [count, lds] = E_chunk C_block^T. */
void block_logits(const Plan& p, const Arena& arena, const llmk_cce_args& a, int64_t count, int64_t bv,
                  const BlockBuffers& b, float* s) {
  isa().cce_logits(arena.at<float>(p.e_chunk), count, a.d, b.panel, bv, s, p.lds);
}

/* Everything before the kernel proper: validates the arguments, reads the targets once (nothing
 * is written before they all pass), plans and allocates the workspace, and stores the valid
 * rows and their target columns in it. */
int32_t prepare(llmk_cce_args& a, CcePass pass, Plan* plan, std::unique_ptr<Arena>* arena, int64_t* valid) {
  if (int32_t rc = check_cce_args(&a, pass)) return rc;
  std::vector<int64_t> rows(static_cast<size_t>(a.n)), tcol(static_cast<size_t>(a.n));
  if (int32_t rc = collect_rows(a, rows.data(), tcol.data(), valid)) return rc;
  *plan = make_plan(a, pass, *valid);
  *arena = std::make_unique<Arena>(plan->total);
  if (!(*arena)->ok(plan->total)) {
    return fail(LLMK_ERR_OUT_OF_MEMORY,
                "cce workspace of " + std::to_string(plan->total) + " bytes could not be allocated");
  }
  std::copy(rows.begin(), rows.begin() + *valid, (*arena)->at<int64_t>(plan->rows));
  std::copy(tcol.begin(), tcol.begin() + *valid, (*arena)->at<int64_t>(plan->tcol));
  return LLMK_OK;
}

// ---- forward ---------------------------------------------------------------------------------

int32_t forward(llmk_cce_args& a) {
  Plan p;
  std::unique_ptr<Arena> workspace;
  int64_t valid = 0;
  if (int32_t rc = prepare(a, CcePass::Forward, &p, &workspace, &valid)) return rc;
  const Arena& arena = *workspace;
  int64_t* rows = arena.at<int64_t>(p.rows);
  int64_t* tcol = arena.at<int64_t>(p.tcol);

  float* lse_out = reinterpret_cast<float*>(a.lse);
  float* tl_out = reinterpret_cast<float*>(a.target_logit);
  float* sl_out = reinterpret_cast<float*>(a.sum_logits);
  float* loss_out = reinterpret_cast<float*>(a.loss);
  for (float* out : {lse_out, tl_out, sl_out}) {
    if (out) std::fill(out, out + a.n, 0.0f);
  }
  if (loss_out && a.reduction == LLMK_REDUCTION_NONE) std::fill(loss_out, loss_out + a.n, 0.0f);

  const int64_t R = p.chunk_rows, v = a.v;
  const int64_t blocks = (v + kBlockV - 1) / kBlockV;
  const float softcap = static_cast<float>(a.softcap);
  const CceRowParams params = cce_row_params(a);
  float* target_logit = arena.at<float>(p.row_f32);
  double* merged = arena.at<double>(p.stats);  // [3][R]: m, s, sumz
  double loss_total = 0.0;

  for (int64_t start = 0; start < valid; start += R) {
    const int64_t count = std::min(R, valid - start);
    load_e_chunk(a, p, arena, rows + start, count);
    std::fill(target_logit, target_logit + count, 0.0f);
#pragma omp parallel num_threads(p.threads)
    {
      const int t = omp_get_thread_num();
      unsigned char* mine = arena.at<unsigned char>(p.thread_base + p.per_thread * static_cast<size_t>(t));
      const BlockBuffers buf = block_buffers(p, a, mine);
      float* s = reinterpret_cast<float*>(mine + p.t_s);
      float* tile_max = reinterpret_cast<float*>(mine + p.t_rowstat);
      float* tile_sumexp = tile_max + R;
      float* tile_sumz = tile_sumexp + R;
      double* run = reinterpret_cast<double*>(tile_sumz + R);  // [3][R]: running m, s, sumz
      for (int64_t r = 0; r < count; ++r) {
        run[r] = -HUGE_VAL;
        run[R + r] = 0.0;
        run[2 * R + r] = 0.0;
      }
#pragma omp for schedule(static, 1)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t j0 = blk * kBlockV, bv = std::min(kBlockV, v - j0);
        load_c_block(a, nullptr, j0, bv, buf);
        block_logits(p, arena, a, count, bv, buf, s);
        isa().cce_tile_forward(s, p.lds, count, bv, buf.bias, softcap, tile_max, tile_sumexp, tile_sumz);
        for (int64_t r = 0; r < count; ++r) {
          const double m = std::max<double>(run[r], tile_max[r]);
          run[R + r] = run[R + r] * std::exp(run[r] - m) + tile_sumexp[r] * std::exp(tile_max[r] - m);
          run[r] = m;
          run[2 * R + r] += tile_sumz[r];
          const int64_t tc = tcol[start + r];
          if (tc >= j0 && tc < j0 + bv) target_logit[r] = s[r * p.lds + (tc - j0)];
        }
      }
      // Merge the threads' running states in thread order (deterministic).
#pragma omp single
      for (int64_t r = 0; r < count; ++r) {
        merged[r] = -HUGE_VAL;
        merged[R + r] = 0.0;
        merged[2 * R + r] = 0.0;
      }
      for (int turn = 0; turn < p.threads; ++turn) {
        if (turn == t) {
          for (int64_t r = 0; r < count; ++r) {
            if (run[R + r] == 0.0) continue;  // this thread saw no block
            const double m = std::max(merged[r], run[r]);
            merged[R + r] = merged[R + r] * std::exp(merged[r] - m) + run[R + r] * std::exp(run[r] - m);
            merged[r] = m;
            merged[2 * R + r] += run[2 * R + r];
          }
        }
#pragma omp barrier
      }
    }
    for (int64_t r = 0; r < count; ++r) {
      const int64_t row = rows[start + r];
      const float lse = static_cast<float>(merged[r] + std::log(merged[R + r]));
      const float sumz = static_cast<float>(merged[2 * R + r]);
      lse_out[row] = lse;
      if (tl_out) tl_out[row] = target_logit[r];
      if (sl_out) sl_out[row] = sumz;
      if (loss_out) {
        const float l = cce_row_loss(params, lse, target_logit[r], sumz);
        if (a.reduction == LLMK_REDUCTION_NONE) loss_out[row] = l;
        loss_total += l;
      }
    }
  }
  if (loss_out && a.reduction != LLMK_REDUCTION_NONE) {
    // MEAN over zero valid rows is 0/0 = NaN, as in PyTorch.
    loss_out[0] = static_cast<float>(a.reduction == LLMK_REDUCTION_SUM ? loss_total
                                                                       : loss_total / static_cast<double>(valid));
  }
  return LLMK_OK;
}

// ---- backward --------------------------------------------------------------------------------

/* Vocabulary order for the backward pass: descending mean logit (ties by id), so the few
 * columns with large probabilities share tiles and the rest can be skipped. */
void sort_vocabulary(const llmk_cce_args& a, const Plan& p, const Arena& arena, const int64_t* rows, int64_t valid) {
  const int64_t d = a.d, v = a.v;
  double* mean_e = arena.at<double>(p.mean_e);
  double* key = arena.at<double>(p.sort_key);
  int64_t* order = arena.at<int64_t>(p.order);
  int64_t* position = arena.at<int64_t>(p.position);
  std::fill(mean_e, mean_e + d, 0.0);
  std::vector<float> row(static_cast<size_t>(d));
  for (int64_t r = 0; r < valid; ++r) {
    to_f32(elem(a.e, a.dtype, rows[r] * d), a.dtype, d, row.data());
    for (int64_t k = 0; k < d; ++k) mean_e[k] += row[static_cast<size_t>(k)];
  }
  for (int64_t k = 0; k < d; ++k) mean_e[k] /= static_cast<double>(std::max<int64_t>(valid, 1));
#pragma omp parallel num_threads(p.threads)
  {
    // No allocation inside the region: an exception there could not be caught (std::terminate).
    float* crow = thread_scratch(p, arena, omp_get_thread_num());
#pragma omp for schedule(static)
    for (int64_t j = 0; j < v; ++j) {
      to_f32(elem(a.c, a.dtype, j * d), a.dtype, d, crow);
      double dot = 0.0;
      for (int64_t k = 0; k < d; ++k) dot += mean_e[k] * crow[k];
      if (a.bias != 0) {
        float b = 0.0f;
        to_f32(elem(a.bias, a.dtype, j), a.dtype, 1, &b);
        dot += b;
      }
      key[j] = std::isnan(dot) ? -HUGE_VAL : dot;  // NaN would break the sort's strict weak order
      order[j] = j;
    }
  }
  std::sort(order, order + v, [key](int64_t x, int64_t y) { return key[x] > key[y] || (key[x] == key[y] && x < y); });
  for (int64_t j = 0; j < v; ++j) position[order[j]] = j;
}

/* gt[j, r] = g[r, j] for r < rows, j < cols (gt row stride rows), in 16 x 16 blocks so that
 * neither side walks memory with a large stride for long. */
void transpose_block(const float* g, int64_t ldg, int64_t rows, int64_t cols, float* gt) {
  constexpr int64_t kB = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kB) {
    const int64_t r1 = std::min(rows, r0 + kB);
    for (int64_t j0 = 0; j0 < cols; j0 += kB) {
      const int64_t j1 = std::min(cols, j0 + kB);
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t r = r0; r < r1; ++r) gt[j * rows + r] = g[r * ldg + j];
    }
  }
}

/* Adds a finished dC block (fp32 tile [bv, d]) into wherever dC accumulates. */
void flush_dc_block(const llmk_cce_args& a, const Plan& p, const Arena& arena, const int64_t* order, int64_t j0,
                    int64_t bv, float* tile, const double* u_e, float* scratch) {
  const int64_t d = a.d;
  for (int64_t j = 0; j < bv; ++j) {
    const int64_t row = order ? order[j0 + j] : j0 + j;
    const float* src = tile + j * d;
    switch (p.dc_mode) {
      case DcMode::InPlaceF32: {
        float* dst = reinterpret_cast<float*>(a.grad_c) + row * d;
        for (int64_t k = 0; k < d; ++k) dst[k] += src[k];
        break;
      }
      case DcMode::Fp32Buffer: {
        float* dst = arena.at<float>(p.dc_acc) + row * d;
        for (int64_t k = 0; k < d; ++k) dst[k] += src[k];
        break;
      }
      case DcMode::SingleChunk: {
        // Rounded once: the exact label-smoothing term (complete with one chunk) goes in first.
        float* t = tile + j * d;
        if (p.analytic_smoothing) {
          for (int64_t k = 0; k < d; ++k) t[k] -= static_cast<float>(u_e[k]);
        }
        from_f32(t, a.dtype, d, elem_mut(a.grad_c, a.dtype, row * d));
        break;
      }
      case DcMode::InPlaceHalf: {
        void* dst = elem_mut(a.grad_c, a.dtype, row * d);
        to_f32(dst, a.dtype, d, scratch);
        for (int64_t k = 0; k < d; ++k) scratch[k] += src[k];
        from_f32(scratch, a.dtype, d, dst);
        break;
      }
    }
  }
}

int32_t backward(llmk_cce_args& a) {
  Plan p;
  std::unique_ptr<Arena> workspace;
  int64_t valid = 0;
  if (int32_t rc = prepare(a, CcePass::Backward, &p, &workspace, &valid)) return rc;
  const Arena& arena = *workspace;
  int64_t* rows = arena.at<int64_t>(p.rows);
  int64_t* tcol = arena.at<int64_t>(p.tcol);

  const int64_t R = p.chunk_rows, d = a.d, v = a.v;
  const int64_t blocks = (v + kBlockV - 1) / kBlockV;
  const float softcap = static_cast<float>(a.softcap);
  const CceRowParams params = cce_row_params(a);
  const bool filter = a.filter_eps > 0;
  const float* lse_in = reinterpret_cast<const float*>(a.lse);
  const float* grad_loss = reinterpret_cast<const float*>(a.grad_loss);
  const float* grad_lse = reinterpret_cast<const float*>(a.grad_lse);
  const int64_t eb = cce_elem_bytes(a);

  // Outputs are overwritten: start from zero (ignored rows and untouched blocks stay zero).
  if (a.grad_e) parallel_zero(reinterpret_cast<void*>(a.grad_e), a.n * d * eb);
  if (a.grad_c && p.dc_mode != DcMode::Fp32Buffer) parallel_zero(reinterpret_cast<void*>(a.grad_c), v * d * eb);
  if (a.grad_c && p.dc_mode == DcMode::Fp32Buffer) parallel_zero(arena.at<float>(p.dc_acc), v * d * 4);
  float* dbias = a.grad_bias ? arena.at<float>(p.dbias) : nullptr;
  if (dbias) std::fill(dbias, dbias + v, 0.0f);

  const int64_t* order = nullptr;
  if (p.sort && valid > 0) {
    sort_vocabulary(a, p, arena, rows, valid);
    order = arena.at<int64_t>(p.order);
    const int64_t* position = arena.at<int64_t>(p.position);
    for (int64_t r = 0; r < valid; ++r) tcol[r] = tcol[r] >= 0 ? position[tcol[r]] : -1;
  }

  // Label smoothing without softcap: its uniform term -u_i on every logit is exact as rank-one
  // updates (dE_i -= u_i sum_j C_j, dC_j -= sum_i u_i E_i, dbias_j -= sum_i u_i), which keeps
  // filtering from dropping it.
  double* colsum_c = p.analytic_smoothing ? arena.at<double>(p.smooth) : nullptr;
  double* u_e = p.analytic_smoothing ? colsum_c + d : nullptr;
  double u_total = 0.0;
  if (p.analytic_smoothing) {
    std::fill(colsum_c, colsum_c + 2 * d, 0.0);
    std::vector<float> crow(static_cast<size_t>(d));
    for (int64_t j = 0; j < v; ++j) {
      to_f32(elem(a.c, a.dtype, j * d), a.dtype, d, crow.data());
      for (int64_t k = 0; k < d; ++k) colsum_c[k] += crow[static_cast<size_t>(k)];
    }
  }

  float* e_chunk = arena.at<float>(p.e_chunk);
  float* row_lse = arena.at<float>(p.row_f32);
  float* row_a = row_lse + R;
  float* row_b = row_a + R;
  float* row_u = row_b + R;
  float* row_thr = row_u + R;
  float* row_uan = row_thr + R;  // u_i of the analytic smoothing term
  int64_t tiles_total = 0, tiles_skipped = 0;

  for (int64_t start = 0; start < valid; start += R) {
    const int64_t count = std::min(R, valid - start);
    load_e_chunk(a, p, arena, rows + start, count);
    for (int64_t r = 0; r < count; ++r) {
      const int64_t row = rows[start + r];
      const float w = cce_row_weight(a.reduction, grad_loss, row, valid);
      const CceRowGrad g = cce_row_grad(params, lse_in[row], w, grad_lse ? grad_lse[row] : 0.0f);
      row_lse[r] = lse_in[row];
      row_a[r] = g.a;
      row_b[r] = g.b;
      row_u[r] = g.u;
      row_uan[r] = g.u;
      // A row with zero scale has zero gradient: with filtering on it never keeps a tile.
      row_thr[r] = !filter ? 0.0f : g.scale > 0 ? static_cast<float>(a.filter_eps) * g.scale : HUGE_VALF;
      if (p.analytic_smoothing) {
        u_total += g.u;
        for (int64_t k = 0; k < d; ++k) u_e[k] += static_cast<double>(g.u) * e_chunk[r * d + k];
      }
    }
#pragma omp parallel num_threads(p.threads) reduction(+ : tiles_total, tiles_skipped)
    {
      const int t = omp_get_thread_num();
      unsigned char* mine = arena.at<unsigned char>(p.thread_base + p.per_thread * static_cast<size_t>(t));
      const BlockBuffers buf = block_buffers(p, a, mine);
      float* cnat = buf.cnat;
      float* s = reinterpret_cast<float*>(mine + p.t_s);
      int64_t* tile_tcol = reinterpret_cast<int64_t*>(mine + p.t_tcol);
      uint8_t* keep = mine + p.t_keep;
      float* partial = a.grad_e ? reinterpret_cast<float*>(mine + p.t_partial) : nullptr;
      float* dc = a.grad_c ? reinterpret_cast<float*>(mine + p.t_dc) : nullptr;
      float* gt = a.grad_c ? reinterpret_cast<float*>(mine + p.t_gt) : nullptr;
      float* db = reinterpret_cast<float*>(mine + p.t_dbias);
      // OpenMP may grant fewer threads than planned (OMP_THREAD_LIMIT, OMP_DYNAMIC, nesting): only
      // the team's partials are written, so only they are summed.
      const int team = omp_get_num_threads();
      if (partial) std::fill(partial, partial + count * d, 0.0f);
      const CceTileRows rp{row_lse, row_a, row_b, row_u, row_thr, tile_tcol};
#pragma omp for schedule(static, 1)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t j0 = blk * kBlockV, bv = std::min(kBlockV, v - j0);
        load_c_block(a, order, j0, bv, buf);
        block_logits(p, arena, a, count, bv, buf, s);
        for (int64_t r = 0; r < count; ++r) {
          const int64_t tc = tcol[start + r];
          tile_tcol[r] = tc >= j0 && tc < j0 + bv ? tc - j0 : -1;
        }
        isa().cce_tile_backward(s, p.lds, count, bv, buf.bias, softcap, rp, keep);
        bool any = false;
        if (dc) std::fill(dc, dc + bv * d, 0.0f);
        std::fill(db, db + bv, 0.0f);
        // Row groups of kFilterRows are skipped when filtering finds them negligible; each run of
        // consecutive kept groups goes through the GEMMs in one call (longer inner dimension for
        // dC, fewer accumulator reloads).
        int64_t f0 = 0;
        while (f0 < count) {
          int64_t run_end = f0, next = f0;
          while (next < count) {
            const int64_t fr = std::min(kFilterRows, count - next);
            ++tiles_total;
            const bool kept = !filter || std::any_of(keep + next, keep + next + fr, [](uint8_t k) { return k != 0; });
            next += fr;
            if (!kept) {
              ++tiles_skipped;
              break;
            }
            run_end = next;
          }
          const int64_t rows_in_run = run_end - f0;
          if (rows_in_run > 0) {
            any = true;
            const float* g = s + f0 * p.lds;
            if (partial) isa().cce_gemm_acc(partial + f0 * d, d, g, p.lds, rows_in_run, bv, cnat, d);
            if (dc) {
              transpose_block(g, p.lds, rows_in_run, bv, gt);
              isa().cce_gemm_acc(dc, d, gt, rows_in_run, bv, rows_in_run, e_chunk + f0 * d, d);
            }
            for (int64_t r = 0; r < rows_in_run; ++r)
              for (int64_t j = 0; j < bv; ++j) db[j] += g[r * p.lds + j];
          }
          f0 = next;
        }
        // A single chunk writes each dC row once, the exact smoothing term included: every block.
        if (dc && (any || (p.dc_mode == DcMode::SingleChunk && p.analytic_smoothing))) {
          flush_dc_block(a, p, arena, order, j0, bv, dc, u_e, cnat);
        }
        if (dbias && any) {
          for (int64_t j = 0; j < bv; ++j) dbias[order ? order[j0 + j] : j0 + j] += db[j];
        }
      }
      // dE rows of this chunk: sum of the threads' partials in thread order.
      if (a.grad_e) {
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t r = 0; r < count; ++r) {
          float* acc = cnat;  // this thread's block buffer is free now: [d] scratch
          std::fill(acc, acc + d, 0.0f);
          for (int u = 0; u < team; ++u) {
            const float* part = arena.at<float>(p.thread_base + p.per_thread * static_cast<size_t>(u) + p.t_partial);
            for (int64_t k = 0; k < d; ++k) acc[k] += part[r * d + k];
          }
          if (p.analytic_smoothing) {
            for (int64_t k = 0; k < d; ++k) acc[k] -= static_cast<float>(row_uan[r] * colsum_c[k]);
          }
          from_f32(acc, a.dtype, d, elem_mut(a.grad_e, a.dtype, rows[start + r] * d));
        }
      }
    }
  }

  // Finish dC and dbias: the analytic smoothing terms, and fp32 accumulators to the output dtype.
  const bool smoothing_left = p.analytic_smoothing && p.dc_mode != DcMode::SingleChunk;
  if (a.grad_c && (p.dc_mode == DcMode::Fp32Buffer || smoothing_left)) {
#pragma omp parallel num_threads(p.threads)
    {
      float* row = thread_scratch(p, arena, omp_get_thread_num());
#pragma omp for schedule(static)
      for (int64_t j = 0; j < v; ++j) {
        float* buf = p.dc_mode == DcMode::Fp32Buffer ? arena.at<float>(p.dc_acc) + j * d : row;
        void* out = elem_mut(a.grad_c, a.dtype, j * d);
        if (p.dc_mode != DcMode::Fp32Buffer) to_f32(out, a.dtype, d, buf);
        if (smoothing_left) {
          for (int64_t k = 0; k < d; ++k) buf[k] -= static_cast<float>(u_e[k]);
        }
        from_f32(buf, a.dtype, d, out);
      }
    }
  }
  if (a.grad_bias) {
    for (int64_t j = 0; j < v; ++j) {
      const float b = dbias[j] - static_cast<float>(u_total);
      from_f32(&b, a.dtype, 1, elem_mut(a.grad_bias, a.dtype, j));
    }
  }
  a.tiles_total = tiles_total;
  a.tiles_skipped = tiles_skipped;
  return LLMK_OK;
}

}  // namespace
}  // namespace llmk

extern "C" int32_t llmk_cce_forward_cpu(llmk_cce_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    if (int32_t rc = llmk::check_cce_sizes(args)) return rc;
    return llmk::forward(*args);
  });
}

extern "C" int32_t llmk_cce_backward_cpu(llmk_cce_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    if (int32_t rc = llmk::check_cce_sizes(args)) return rc;
    args->tiles_total = 0;
    args->tiles_skipped = 0;
    return llmk::backward(*args);
  });
}

extern "C" int32_t llmk_cce_workspace_bytes_cpu(const llmk_cce_args* args, int32_t pass, int64_t* bytes) noexcept {
  return llmk::guarded([&]() -> int32_t {
    if (int32_t rc = llmk::check_cce_sizes(args)) return rc;
    if (int32_t rc = llmk::require_non_null(bytes, "bytes")) return rc;
    if (pass != 0 && pass != 1) {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "pass must be 0 (forward) or 1 (backward); got " + std::to_string(pass));
    }
    // Without reading targets, assume every row is valid (the most the call can allocate), and
    // that all gradients are wanted. The targets copy the call makes (2 x 8 bytes x n) is included.
    llmk_cce_args a = *args;
    a.grad_e = a.grad_c = 1;
    a.grad_bias = a.bias != 0 ? 1 : 0;
    const llmk::Plan p =
        llmk::make_plan(a, pass == 0 ? llmk::CcePass::Forward : llmk::CcePass::Backward, llmk::upper_bound_rows(a));
    *bytes = static_cast<int64_t>(p.total) + 16 * a.n;
    return LLMK_OK;
  });
}
