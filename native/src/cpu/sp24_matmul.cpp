/* Y [N, M] = act(X [N, K] W^T + bias) on the CPU, with W 2:4-compressed (llmk_sp24_matmul_cpu) or
 * dense (llmk_dense_matmul_cpu, the library's own dense baseline), fp32 accumulation.
 *
 * Sparse: X is transposed once into panels xt[p][k][kSp24Panel] (the calling thread's workspace,
 * kept between calls); tasks (panel, block of kRowBlock rows of W) run panel-major so both
 * threads share a panel in cache; each task reads values and metadata as stored (isa
 * sp24_panel_rows) and writes its Y tile with bias and activation.
 * Dense: tasks (block of 128 rows of W, chunk of N) pack the W block into the CCE logit panel and
 * run cce_logits over X rows (X widened once into the workspace when it is F16/BF16).
 * Decode (N <= kSp24DecodeMaxN, both): bound by reading W, so W is streamed once per call by the
 * decode kernels (isa sp24_decode_rows / dense_decode_rows) against X widened once. */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <omp.h>

#include "cpu/isa/isa_kernels.h"
#include "cpu/widen.h"
#include "error.h"
#include "llmk/sp24_math.h"
#include "sp24_args.h"

namespace llmk {
namespace {

constexpr int64_t kRowBlock = 96;    // rows of W per sparse task (multiple of the 3-row micro tile)
constexpr int64_t kDenseRows = 128;  // rows of W per dense task (one CCE panel strip group)
constexpr int64_t kDenseChunk = 512; // rows of X per dense task

/* Grow-only workspace of the calling thread: the transposed / widened X (allocation and page
 * faults of a fresh buffer would cost more than the transposition on big calls). */
std::vector<float>& thread_workspace() {
  static thread_local std::vector<float> ws;
  return ws;
}

float activate(float v, int64_t act) {
  switch (act) {
    case LLMK_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case LLMK_ACT_SILU: return v / (1.0f + std::exp(-v));
    case LLMK_ACT_GELU: {
      const float c = 0.7978845608028654f;  // sqrt(2 / pi)
      return 0.5f * v * (1.0f + std::tanh(c * (v + 0.044715f * v * v * v)));
    }
    default: return v;
  }
}

int64_t elem(int64_t dtype) { return dtype == LLMK_F32 ? 4 : 2; }

/* The bias as fp32 [M] (zeros without one), widened once per call rather than per output. */
std::vector<float> bias_f32(const llmk_sp24_matmul_args& a) {
  std::vector<float> b(static_cast<size_t>(a.m), 0.0f);
  if (a.bias != 0) {
    const float* f = widen(reinterpret_cast<const void*>(a.bias), a.dtype, a.m, b.data());
    if (f != b.data()) std::copy(f, f + a.m, b.begin());
  }
  return b;
}

/* Writes tile[r][c] (row stride ld) as Y[n0 + c, m0 + r] for r < rows, c < cols. */
void write_tile(const llmk_sp24_matmul_args& a, const float* bias, const float* tile, int64_t ld, bool tile_is_m_major, int64_t m0,
                int64_t rows, int64_t n0, int64_t cols, float* line) {
  for (int64_t c = 0; c < cols; ++c) {
    for (int64_t r = 0; r < rows; ++r) {
      const float acc = tile_is_m_major ? tile[r * ld + c] : tile[c * ld + r];
      line[r] = activate(acc + bias[m0 + r], a.activation);
    }
    narrow(line, a.dtype, rows, reinterpret_cast<char*>(a.y) + ((n0 + c) * a.m + m0) * elem(a.dtype));
  }
}

/* Every metadata nibble must name two distinct positions in order; the vectorised scan runs on
 * every call, the scalar one only to name the first bad group. */
int32_t check_meta(const llmk_sp24_matmul_args& a) {
  const auto* meta = reinterpret_cast<const uint16_t*>(a.meta);
  if (isa().sp24_meta_valid(meta, a.m * (a.k / 16))) return LLMK_OK;
  for (int64_t r = 0; r < a.m; ++r)
    for (int64_t g = 0; g < a.k / 4; ++g)
      if (!sp24_code_valid(sp24_group_code(meta + r * (a.k / 16), g))) {
        return fail_sp24_group(r, g, "metadata nibble must have idx0 < idx1");
      }
  return LLMK_OK;
}

float* align64(float* p) { return p + ((64 - reinterpret_cast<uintptr_t>(p) % 64) % 64) / sizeof(float); }

/* Decode shapes (N <= kSp24DecodeMaxN), sparse or dense W: X widened once into the workspace,
 * tasks of kSp24DecodeRows rows of W, each streaming its rows once. */
void decode_matmul(const llmk_sp24_matmul_args& a, bool sparse) {
  const int64_t eb = elem(a.dtype);
  // rows of X one cache line apart from a multiple of 4 KB: at k = 4096 the 16 rows would share
  // one L1 set (12 ways) and evict each other on every chunk
  const int64_t ldx = (a.k + 15) / 16 * 16 + 16;
  std::vector<float>& ws = thread_workspace();
  if (static_cast<int64_t>(ws.size()) < a.n * ldx + 16) ws.resize(static_cast<size_t>(a.n * ldx + 16));
  float* const x = align64(ws.data());
  for (int64_t n = 0; n < a.n; ++n) {
    const float* xr = widen(reinterpret_cast<const char*>(a.x) + n * a.k * eb, a.dtype, a.k, x + n * ldx);
    if (xr != x + n * ldx) std::memcpy(x + n * ldx, xr, static_cast<size_t>(a.k) * sizeof(float));
  }
  const std::vector<float> bias = bias_f32(a);
  const int threads = omp_get_max_threads();
  // per thread: kernel scratch, out tile [rows][n], one Y line; a multiple of 16 floats each. Kept
  // between calls (grow-only): zero-filling threads x 66 KB per call would cost a many-core host
  // more than a decode product takes
  const int64_t per_thread = kSp24DecodeScratch + kSp24DecodeRows * kSp24DecodeMaxN + kSp24DecodeRows;
  static thread_local std::vector<float> raw;
  if (static_cast<int64_t>(raw.size()) < threads * per_thread + 16) raw.resize(static_cast<size_t>(threads * per_thread + 16));
  float* const mem = align64(raw.data());
  const int64_t tasks = (a.m + kSp24DecodeRows - 1) / kSp24DecodeRows;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4)
  for (int64_t t = 0; t < tasks; ++t) {
    float* scratch = mem + omp_get_thread_num() * per_thread;
    float* out = scratch + kSp24DecodeScratch;
    float* line = out + kSp24DecodeRows * kSp24DecodeMaxN;
    const int64_t m0 = t * kSp24DecodeRows, rows = a.m - m0 < kSp24DecodeRows ? a.m - m0 : kSp24DecodeRows;
    if (sparse) {
      isa().sp24_decode_rows(x, a.n, ldx, reinterpret_cast<const char*>(a.values) + m0 * (a.k / 2) * eb,
                             reinterpret_cast<const uint16_t*>(a.meta) + m0 * (a.k / 16), a.k, rows,
                             static_cast<int32_t>(a.dtype), scratch, out);
    } else {
      isa().dense_decode_rows(x, a.n, ldx, reinterpret_cast<const char*>(a.w) + m0 * a.k * eb, a.k, rows,
                              static_cast<int32_t>(a.dtype), scratch, out);
    }
    write_tile(a, bias.data(), out, a.n, true, m0, rows, 0, a.n, line);
  }
}

}  // namespace
}  // namespace llmk

extern "C" int32_t llmk_sp24_matmul_cpu(const llmk_sp24_matmul_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_sp24_matmul(args, true, false)) return rc;
    const llmk_sp24_matmul_args& a = *args;
    if (a.n == 0 || a.m == 0) return LLMK_OK;
    if (a.k > 0) { if (int32_t rc = check_meta(a)) return rc; }
    if (a.n <= kSp24DecodeMaxN) {
      decode_matmul(a, true);
      return LLMK_OK;
    }
    const int64_t width = kSp24Panel;  // X rows per panel
    const int64_t panels = (a.n + width - 1) / width, eb = elem(a.dtype);
    std::vector<float>& ws = thread_workspace();
    // 16 floats of slack: the panels start on a 64-byte line, or every vector load would split
    // across two cache lines (and halve the loads the sparse loop is bound by)
    if (static_cast<int64_t>(ws.size()) < panels * a.k * width + 16) ws.resize(static_cast<size_t>(panels * a.k * width + 16));
    float* const xt_base = align64(ws.data());
    const std::vector<float> bias = bias_f32(a);
    const int threads = omp_get_max_threads();
    const int64_t tile_floats = (kRowBlock * kSp24Panel + a.k + kRowBlock + 15) / 16 * 16;  // 64-byte multiples
    std::vector<float> tiles_raw(static_cast<size_t>(threads * tile_floats + 16));
    float* const tiles = align64(tiles_raw.data());
#pragma omp parallel num_threads(threads)
    {
      float* scratch = tiles + omp_get_thread_num() * tile_floats;
      float* row = scratch + kRowBlock * kSp24Panel;  // one widened X row, then one Y line
#pragma omp for schedule(static)
      for (int64_t p = 0; p < panels; ++p) {  // transpose X into panels (zero rows past N)
        float* panel = xt_base + p * a.k * width;
        for (int64_t c = 0; c < width; ++c) {
          const int64_t n = p * width + c;
          const float* xr = n < a.n ? widen(reinterpret_cast<const char*>(a.x) + n * a.k * eb, a.dtype, a.k, row) : nullptr;
          for (int64_t kk = 0; kk < a.k; ++kk) panel[kk * width + c] = xr ? xr[kk] : 0.0f;
        }
      }
      const int64_t blocks = (a.m + kRowBlock - 1) / kRowBlock;
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < panels * blocks; ++t) {
        const int64_t p = t / blocks, m0 = (t % blocks) * kRowBlock;
        const int64_t rows = a.m - m0 < kRowBlock ? a.m - m0 : kRowBlock;
        const int64_t n0 = p * width, cols = a.n - n0 < width ? a.n - n0 : width;
        isa().sp24_panel_rows(xt_base + p * a.k * width,
                              reinterpret_cast<const char*>(a.values) + m0 * (a.k / 2) * eb,
                              reinterpret_cast<const uint16_t*>(a.meta) + m0 * (a.k / 16), a.k, rows,
                              static_cast<int32_t>(a.dtype), scratch);
        write_tile(a, bias.data(), scratch, width, true, m0, rows, n0, cols, row);
      }
    }
    return LLMK_OK;
  });
}

extern "C" int32_t llmk_dense_matmul_cpu(const llmk_sp24_matmul_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    using namespace llmk;
    if (int32_t rc = check_sp24_matmul(args, false, false)) return rc;
    const llmk_sp24_matmul_args& a = *args;
    if (a.n == 0 || a.m == 0) return LLMK_OK;
    if (a.n <= kSp24DecodeMaxN) {
      decode_matmul(a, false);
      return LLMK_OK;
    }
    const int64_t eb = elem(a.dtype);
    const float* x = reinterpret_cast<const float*>(a.x);
    if (a.dtype != LLMK_F32) {  // widen X once into the calling thread's workspace
      std::vector<float>& ws = thread_workspace();
      if (static_cast<int64_t>(ws.size()) < a.n * a.k) ws.resize(static_cast<size_t>(a.n * a.k));
#pragma omp parallel for schedule(static)
      for (int64_t n = 0; n < a.n; ++n) widen(reinterpret_cast<const char*>(a.x) + n * a.k * eb, a.dtype, a.k, ws.data() + n * a.k);
      x = ws.data();
    }
    const std::vector<float> bias = bias_f32(a);
    const int threads = omp_get_max_threads();
    // per-thread buffers start on 64-byte lines (a multiple of 16 floats each): aligned panel loads
    const int64_t per_thread = (2 * kDenseRows * a.k + kDenseChunk * kDenseRows + kDenseRows + 15) / 16 * 16;
    std::vector<float> raw(static_cast<size_t>(threads * per_thread + 16));
    float* const mem = align64(raw.data());
    const int64_t blocks = (a.m + kDenseRows - 1) / kDenseRows, chunks = (a.n + kDenseChunk - 1) / kDenseChunk;
#pragma omp parallel num_threads(threads)
    {
      float* wbuf = mem + omp_get_thread_num() * per_thread;  // widened W block
      float* panel = wbuf + kDenseRows * a.k;
      float* s = panel + kDenseRows * a.k;                          // [kDenseChunk, kDenseRows]
      float* line = s + kDenseChunk * kDenseRows;
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < blocks * chunks; ++t) {
        const int64_t m0 = (t / chunks) * kDenseRows, n0 = (t % chunks) * kDenseChunk;
        const int64_t rows = a.m - m0 < kDenseRows ? a.m - m0 : kDenseRows;
        const int64_t nrows = a.n - n0 < kDenseChunk ? a.n - n0 : kDenseChunk;
        const float* wf = widen(reinterpret_cast<const char*>(a.w) + m0 * a.k * eb, a.dtype, rows * a.k, wbuf);
        isa().cce_pack_panel(wf, rows, a.k, panel);
        isa().cce_logits(x + n0 * a.k, nrows, a.k, panel, rows, s, kDenseRows);
        write_tile(a, bias.data(), s, kDenseRows, false, m0, rows, n0, nrows, line);
      }
    }
    return LLMK_OK;
  });
}
