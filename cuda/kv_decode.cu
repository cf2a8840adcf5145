/* Decode attention over a per-head variable-length KV cache on the GPU (split-K flash decoding).
 *
 * decode_partial: CTA = (split, KV head bh, chunk of up to kGroupChunk query heads of its GQA
 * group). The group's queries share every K/V tile load. The rows cu[bh] .. cu[bh + 1] - 1 are
 * cut into gridDim.y equal splits; each CTA runs an online softmax over its split in tiles of TK
 * keys (K with an odd row stride so a warp's 32 keys hit 32 banks, V row-major so a warp's 32
 * columns do) and writes its unnormalised state (m, l, o[d]) per query head.
 * decode_merge: one CTA per query head combines the splits; lse = m + log(l) (natural log),
 * -inf and out 0 for an empty head; out stored as F32 or the 16-bit dtype (the CPU's rounding).
 *
 * cu is validated on the device first (cu[0] = 0, non-decreasing; k and v non-null when rows
 * exist): both kernels read the verdict and write nothing when it is set, and the host reports
 * with the CPU's text. */
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda_check.cuh"
#include "kv_args.h"
#include "kv_common.cuh"
#include "launch.cuh"

namespace {

using llmk::kv::kClean;
constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kGroupChunk = 8;  // query heads per CTA
constexpr int kBadCu = 0, kNullKv = 1, kSlots = 2;

struct DecodeDims {
  int64_t heads_q, heads_kv, group, d;
  float scale;
};

__global__ void validate_decode_cu(const int64_t* __restrict__ cu, int64_t heads, bool null_kv,
                                   unsigned long long* verdict) {
  for (int64_t h = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; h < heads;
       h += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (h == 0 && cu[0] != 0) atomicMin(&verdict[kBadCu], 0ull);
    if (cu[h + 1] < cu[h]) atomicMin(&verdict[kBadCu], static_cast<unsigned long long>(h + 1));
    if (h == 0 && null_kv && cu[heads] > 0) atomicMin(&verdict[kNullKv], 0ull);
  }
}

template <int DT>
__global__ void __launch_bounds__(kThreads, 1) decode_partial(const void* __restrict__ q, const void* __restrict__ k,
                                                           const void* __restrict__ v, const int64_t* __restrict__ cu,
                                                           DecodeDims s, int64_t group_chunks, int tk,
                                                           const unsigned long long* verdict, float* __restrict__ part_o,
                                                           float2* __restrict__ part_ml) {
  if (verdict[kBadCu] != kClean || verdict[kNullKv] != kClean) return;
  float* smem = llmk::dynamic_smem<float>();
  const int64_t d = s.d, kstride = llmk::kv::odd_stride(d);
  float* qs = smem;                         // [kGroupChunk][d] scaled queries
  float* ks = qs + kGroupChunk * d;         // [tk][kstride]
  float* vs = ks + tk * kstride;            // [tk][d]
  float* ps = vs + tk * d;                  // [kGroupChunk][tk] scores, then probabilities
  float* os = ps + kGroupChunk * tk;        // [kGroupChunk][d] unnormalised output
  float* ms = os + kGroupChunk * d;         // [kGroupChunk] running max
  float* ls = ms + kGroupChunk;             // [kGroupChunk] running sum
  float* al = ls + kGroupChunk;             // [kGroupChunk] rescale of this tile
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t cta = blockIdx.x;  // (bh, group chunk) on x: up to 2^31 - 1 CTAs; splits on y (<= 64)
  const int64_t bh = cta / group_chunks, g0 = (cta % group_chunks) * kGroupChunk;
  const int gc = static_cast<int>(s.group - g0 < kGroupChunk ? s.group - g0 : kGroupChunk);
  const int64_t b = bh / s.heads_kv, hkv = bh % s.heads_kv;
  const int64_t row0 = b * s.heads_q + hkv * s.group + g0;  // first query head of this CTA
  const int64_t splits = gridDim.y, split = blockIdx.y;
  const int64_t begin = cu[bh], end = cu[bh + 1];
  const int64_t chunk = (end - begin + splits - 1) / splits;
  const int64_t lo = begin + split * chunk;
  const int64_t hi = lo + chunk < end ? lo + chunk : end;

  for (int64_t e = tid; e < gc * d; e += kThreads) qs[e] = llmk::kv::load<DT>(q, row0 * d + e) * s.scale;
  for (int64_t e = tid; e < kGroupChunk * d; e += kThreads) os[e] = 0.0f;
  if (tid < kGroupChunk) {
    ms[tid] = -INFINITY;
    ls[tid] = 0.0f;
  }
  for (int64_t j0 = lo; j0 < hi; j0 += tk) {
    const int64_t nc = hi - j0 < tk ? hi - j0 : tk;
    __syncthreads();  // the previous tile is fully used (and qs, os, ms, ls are initialised)
    for (int64_t e = tid; e < tk * d; e += kThreads) {
      const int64_t t = e / d, c = e - t * d;
      const bool ok = t < nc;
      ks[t * kstride + c] = ok ? llmk::kv::load<DT>(k, j0 * d + e) : 0.0f;
      vs[e] = ok ? llmk::kv::load<DT>(v, j0 * d + e) : 0.0f;
    }
    __syncthreads();
    for (int idx = tid; idx < gc * tk; idx += kThreads) {
      const int g = idx / tk, t = idx - g * tk;
      float dot = 0.0f;
      const float* qg = qs + g * d;
      const float* kt = ks + t * kstride;
      for (int64_t c = 0; c < d; ++c) dot = fmaf(qg[c], kt[c], dot);
      ps[g * tk + t] = t < nc ? dot : -INFINITY;
    }
    __syncthreads();
    for (int g = warp; g < gc; g += kWarps) {
      float tmax = -INFINITY;
      for (int t = lane; t < tk; t += 32) tmax = fmaxf(tmax, ps[g * tk + t]);
      tmax = llmk::kv::warp_max(tmax);
      const float m_old = ms[g], m_new = fmaxf(m_old, tmax);
      float sum = 0.0f;
      for (int t = lane; t < tk; t += 32) {
        const float p = llmk::kv::exp_diff(ps[g * tk + t], m_new);
        ps[g * tk + t] = p;
        sum += p;
      }
      sum = llmk::kv::warp_sum(sum);
      // Every lane read ms[g] above; a shuffle orders no memory, so lane 0 waits for those reads
      // here before it overwrites ms[g] (ThreadSanitizer on the emulated device reported the race).
      __syncwarp();
      if (lane == 0) {
        const float alpha = llmk::kv::exp_diff(m_old, m_new);
        al[g] = alpha;
        ls[g] = ls[g] * alpha + sum;
        ms[g] = m_new;
      }
    }
    __syncthreads();
    for (int64_t idx = tid; idx < gc * d; idx += kThreads) {
      const int64_t g = idx / d, c = idx - g * d;
      float o = os[idx] * al[g];
      const float* pg = ps + g * tk;
      for (int64_t t = 0; t < nc; ++t) o = fmaf(pg[t], vs[t * d + c], o);
      os[idx] = o;
    }
  }
  __syncthreads();
  for (int64_t idx = tid; idx < gc * d; idx += kThreads) {
    const int64_t g = idx / d, c = idx - g * d;
    part_o[((row0 + g) * splits + split) * d + c] = os[idx];
  }
  if (tid < gc) part_ml[(row0 + tid) * splits + split] = make_float2(ms[tid], ls[tid]);
}

__global__ void __launch_bounds__(kThreads) decode_merge(const float* __restrict__ part_o,
                                                         const float2* __restrict__ part_ml, int64_t rows,
                                                         int64_t splits, int64_t d, void* __restrict__ out,
                                                         int out_dtype, float* __restrict__ lse,
                                                         const unsigned long long* verdict) {
  if (verdict[kBadCu] != kClean || verdict[kNullKv] != kClean) return;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float2* ml = part_ml + row * splits;
    float mx = -INFINITY;
    for (int64_t p = 0; p < splits; ++p) mx = fmaxf(mx, ml[p].x);
    float l = 0.0f;
    for (int64_t p = 0; p < splits; ++p) l += ml[p].y * llmk::kv::exp_diff(ml[p].x, mx);
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int64_t c = threadIdx.x; c < d; c += kThreads) {
      float o = 0.0f;
      for (int64_t p = 0; p < splits; ++p) {
        const float w = llmk::kv::exp_diff(ml[p].x, mx);
        if (w != 0.0f) o = fmaf(part_o[(row * splits + p) * d + c], w, o);
      }
      llmk::kv::store(out, row * d + c, o * inv, out_dtype);
    }
    if (lse != nullptr && threadIdx.x == 0) lse[row] = l > 0.0f ? mx + logf(l) : -INFINITY;
  }
}

size_t align256(size_t x) { return (x + 255) / 256 * 256; }

template <int DT>
int32_t run_decode(const llmk_kv_decode_args& a, cudaStream_t st, const unsigned long long* verdict) {
  DecodeDims s;
  s.heads_q = a.heads_q;
  s.heads_kv = a.heads_kv;
  s.group = a.heads_q / a.heads_kv;
  s.d = a.head_dim;
  s.scale = static_cast<float>(a.scale);
  const int64_t heads = a.batch * a.heads_kv, rows = a.batch * a.heads_q;
  const int64_t group_chunks = (s.group + kGroupChunk - 1) / kGroupChunk;
  const int64_t kstride = llmk::kv::odd_stride(s.d);
  int optin = 0, dev = 0, sms = 0;
  LLMK_TRY_STATUS(llmk::kv::smem_optin(&optin));
  LLMK_CUDA_TRY(cudaGetDevice(&dev));
  LLMK_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const auto bytes_for = [&](int t) {
    return static_cast<size_t>(2 * kGroupChunk * s.d + t * kstride + t * s.d + kGroupChunk * t + 3 * kGroupChunk) *
           sizeof(float);
  };
  int tk = 32;
  while (tk > 8 && bytes_for(tk) > static_cast<size_t>(optin)) tk /= 2;
  if (bytes_for(tk) > static_cast<size_t>(optin)) {
    return llmk::fail(LLMK_ERR_UNAVAILABLE, "head_dim " + std::to_string(s.d) +
                                                " is too large for the CUDA decode kernel's shared-memory tiles");
  }
  const int64_t ctas = heads * group_chunks;
  if (ctas > INT32_MAX) return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "batch * heads_kv is too large for one CUDA grid");
  // Splits fill the GPU (2 CTAs per SM) without knowing the lengths (cu is on the device).
  const int64_t splits = std::min<int64_t>(std::max<int64_t>((2LL * sms + ctas - 1) / ctas, 1), 64);
  const size_t o_bytes = align256(static_cast<size_t>(rows * splits * s.d) * sizeof(float));
  const size_t ml_bytes = align256(static_cast<size_t>(rows * splits) * sizeof(float2));
  llmk::kv::Scratch scratch(st);
  LLMK_TRY_STATUS(scratch.alloc(o_bytes + ml_bytes));
  auto* part_o = scratch.as<float>();
  auto* part_ml = scratch.as<float2>(o_bytes);
  const size_t smem = bytes_for(tk);
  LLMK_TRY_STATUS(llmk::kv::allow_smem(decode_partial<DT>, smem));
  const auto* cu = reinterpret_cast<const int64_t*>(a.cu);
  llmk::launch(decode_partial<DT>, dim3(static_cast<unsigned>(ctas), static_cast<unsigned>(splits)), kThreads, smem, st, 
      reinterpret_cast<const void*>(a.q), reinterpret_cast<const void*>(a.k), reinterpret_cast<const void*>(a.v), cu,
      s, group_chunks, tk, verdict, part_o, part_ml);
  LLMK_CUDA_CHECK_LAUNCH("decode_partial");
  llmk::launch(decode_merge, static_cast<unsigned>(rows < 65535 ? rows : 65535), kThreads, 0, st, 
      part_o, part_ml, rows, splits, s.d, reinterpret_cast<void*>(a.out), static_cast<int>(a.out_dtype),
      reinterpret_cast<float*>(a.lse), verdict);
  LLMK_CUDA_CHECK_LAUNCH("decode_merge");
  return scratch.release();
}

}  // namespace

extern "C" int32_t llmk_kv_decode_attn_cuda(const llmk_kv_decode_args* args) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::check_kv_decode_args(args));
    const llmk_kv_decode_args& a = *args;
    if (a.batch == 0) return LLMK_OK;
    const int64_t heads = a.batch * a.heads_kv;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(static_cast<int32_t>(a.device)));
    cudaStream_t st = reinterpret_cast<cudaStream_t>(a.stream);
    const auto* cu = reinterpret_cast<const int64_t*>(a.cu);
    llmk::kv::Scratch verdict_buf(st);
    unsigned long long* verdict = nullptr;
    LLMK_TRY_STATUS(verdict_buf.alloc_verdict(kSlots, &verdict));
    llmk::launch(validate_decode_cu, llmk::kv::grid_for(heads, 256), 256, 0, st, cu, heads, a.k == 0 || a.v == 0, verdict);
    LLMK_CUDA_CHECK_LAUNCH("validate_decode_cu");
    int32_t rc;
    if (a.dtype == LLMK_F32) {
      rc = run_decode<LLMK_F32>(a, st, verdict);
    } else if (a.dtype == LLMK_F16) {
      rc = run_decode<LLMK_F16>(a, st, verdict);
    } else {
      rc = run_decode<LLMK_BF16>(a, st, verdict);
    }
    if (rc != LLMK_OK) return rc;
    unsigned long long v[kSlots];
    LLMK_CUDA_TRY(cudaMemcpyAsync(v, verdict, sizeof v, cudaMemcpyDeviceToHost, st));
    LLMK_CUDA_TRY(cudaStreamSynchronize(st));
    LLMK_TRY_STATUS(verdict_buf.release());
    if (v[kBadCu] != kClean) {
      std::vector<int64_t> host(static_cast<size_t>(heads + 1));
      LLMK_CUDA_TRY(cudaMemcpyAsync(host.data(), cu, host.size() * sizeof(int64_t), cudaMemcpyDeviceToHost, st));
      LLMK_CUDA_TRY(cudaStreamSynchronize(st));
      LLMK_TRY_STATUS(llmk::check_kv_cu_host(host.data(), heads, INT64_MAX, "cu"));  // the CPU's message
      return llmk::fail(LLMK_ERR_OUT_OF_RANGE, "cu changed while the decode attention ran");
    }
    if (v[kNullKv] != kClean) return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "k and v must not be null when cu has rows");
    return LLMK_OK;
  });
}
