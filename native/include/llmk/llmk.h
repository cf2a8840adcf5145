/*
 * llm-kernels C ABI.
 *
 * Every function is extern "C", noexcept, takes flat arguments and returns an llmk_status.
 * On failure the calling thread's last error message (llmk_last_error) says what went wrong,
 * naming the argument and the rule. No function ever calls exit/abort or lets a C++ exception
 * escape: the library is loaded into a JVM, and either would kill it.
 *
 * Inputs are re-checked here even though the Java layer checks them first: this boundary is the
 * last line of defence against a corrupted heap.
 *
 * Pointers to tensor data are raw addresses (host or device as the function name says); sizes
 * and offsets are int64_t so that element counts past 2^31 are representable.
 */
#ifndef LLMK_LLMK_H
#define LLMK_LLMK_H

#include <stdint.h>

#ifdef __cplusplus
#define LLMK_NOEXCEPT noexcept
extern "C" {
#else
#define LLMK_NOEXCEPT
#endif

#if defined(_WIN32)
#define LLMK_API __declspec(dllexport)
#else
#define LLMK_API __attribute__((visibility("default")))
#endif

/* Status codes; keep in sync with io.github.llmkernels.runtime.NativeStatus. */
enum llmk_status {
  LLMK_OK = 0,
  LLMK_ERR_INVALID_ARGUMENT = 1, /* shape, dtype, null pointer, bad option */
  LLMK_ERR_OUT_OF_RANGE = 2,     /* an index value outside its valid range */
  LLMK_ERR_UNAVAILABLE = 3,      /* backend not compiled in, or no device/driver */
  LLMK_ERR_CUDA = 4,             /* a CUDA runtime call or kernel launch failed */
  LLMK_ERR_OUT_OF_MEMORY = 5,
  LLMK_ERR_INTERNAL = 6          /* a bug: an unexpected C++ exception was caught */
};

/* Element types; keep in sync with io.github.llmkernels.tensor.DType. */
enum llmk_dtype {
  LLMK_F32 = 0, LLMK_F16 = 1, LLMK_BF16 = 2, LLMK_I32 = 3,
  LLMK_I64 = 4, LLMK_I8 = 5, LLMK_U8 = 6, LLMK_U16 = 7
};

/* ---- library and error state ------------------------------------------------------------ */

/* Message of the last failed call on this thread ("" if none). Valid until the next call. */
LLMK_API const char* llmk_last_error(void) LLMK_NOEXCEPT;
/* Version as major * 10000 + minor * 100 + patch. */
LLMK_API int32_t llmk_version(void) LLMK_NOEXCEPT;
/* Instruction-set variant chosen at load time for the CPU kernels: "avx512", "avx2", "x86-64". */
LLMK_API const char* llmk_cpu_variant(void) LLMK_NOEXCEPT;
/* Number of OpenMP threads the CPU kernels use. */
LLMK_API int32_t llmk_cpu_threads(void) LLMK_NOEXCEPT;
/* Switches the CPU variant (for tests and benchmarks); fails if this CPU cannot run it. */
LLMK_API int32_t llmk_cpu_set_variant(const char* name) LLMK_NOEXCEPT;
/* 1 if this CPU can run the named variant, else 0. */
LLMK_API int32_t llmk_cpu_supports_variant(const char* name) LLMK_NOEXCEPT;

/* ---- host memory: 64-byte aligned (vector loads never straddle cache lines); from 4 MiB on,
 * 2 MiB aligned and advised for transparent huge pages (fewer TLB misses on random rows). --- */

LLMK_API int32_t llmk_host_alloc(int64_t bytes, void** out) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_host_free(void* ptr) LLMK_NOEXCEPT;

/* ---- CPU kernels -------------------------------------------------------------------------- */

/* Plain parallel copy of bytes (host to host): the baseline the gather is measured against,
 * and the host path of tensor copies. Ranges must not overlap. */
LLMK_API int32_t llmk_copy_cpu(void* dst, const void* src, int64_t bytes) LLMK_NOEXCEPT;

/*
 * Element conversion between F32 and F16/BF16 (round to nearest even; NaN stays NaN, quiet).
 * src (n) of src_dtype -> dst (n) of dst_dtype; one side must be F32.
 */
LLMK_API int32_t llmk_convert_cpu(const void* src, int32_t src_dtype, void* dst, int32_t dst_dtype,
                                  int64_t n) LLMK_NOEXCEPT;

/*
 * Row gather: dst[b, h, k, :] = src[b, h, idx[b, h, k], :]. All three tensors contiguous.
 * src (B, H, N, row_bytes), idx (B, H, K) int32, dst (B, H, K, row_bytes).
 * Every index is checked before any byte of dst is written: on LLMK_ERR_OUT_OF_RANGE dst is
 * untouched and the message names the first offending position.
 */
LLMK_API int32_t llmk_kv_gather_rows_cpu(const void* src, const int32_t* idx, void* dst, int64_t B,
                                         int64_t H, int64_t N, int64_t K,
                                         int64_t row_bytes) LLMK_NOEXCEPT;

/* ---- CUDA runtime ------------------------------------------------------------------------- */

/* 1 if the library was built with CUDA kernels, else 0 (then every llmk_cuda_* call reports why). */
LLMK_API int32_t llmk_cuda_compiled(void) LLMK_NOEXCEPT;
/* Comma-separated compiled targets, e.g. "sm_80,sm_86,sm_89,sm_90a,compute_90" ("" without CUDA). */
LLMK_API const char* llmk_cuda_compiled_archs(void) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cuda_device_count(int32_t* count) LLMK_NOEXCEPT;
/* name_out receives a NUL-terminated name truncated to name_capacity bytes. */
LLMK_API int32_t llmk_cuda_device_info(int32_t device, char* name_out, int32_t name_capacity,
                                       int32_t* cc_major, int32_t* cc_minor, int64_t* total_bytes,
                                       int32_t* multiprocessors, int32_t* driver_version,
                                       int32_t* runtime_version) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cuda_malloc(int32_t device, int64_t bytes, void** out) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cuda_free(int32_t device, void* ptr) LLMK_NOEXCEPT;
/* kind: 0 host->device, 1 device->host, 2 device->device, 3 host->host. stream may be null
 * (legacy default stream of `device`, the device of the device-side pointer). When
 * synchronize != 0 the call returns after the copy completed. */
LLMK_API int32_t llmk_cuda_memcpy(int32_t device, void* dst, const void* src, int64_t bytes,
                                  int32_t kind, void* stream, int32_t synchronize) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cuda_memset(int32_t device, void* dst, int32_t value, int64_t bytes,
                                  void* stream) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cuda_stream_create(int32_t device, void** out) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cuda_stream_destroy(int32_t device, void* stream) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cuda_stream_synchronize(int32_t device, void* stream) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cuda_event_create(int32_t device, void** out) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cuda_event_destroy(int32_t device, void* event) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cuda_event_record(int32_t device, void* event, void* stream) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cuda_event_synchronize(int32_t device, void* event) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cuda_event_elapsed_ms(void* start, void* end, float* ms) LLMK_NOEXCEPT;

/* ---- CUDA kernels ------------------------------------------------------------------------- */

/*
 * Same contract as llmk_kv_gather_rows_cpu with device pointers, on the given stream.
 * Indices are validated on the device first; the copy kernel does nothing if any is invalid,
 * and the call waits for the (16-byte) verdict so it can report the first offending position.
 * The CUDA entry points make the given device current only for the call and restore the
 * caller's current device before returning.
 */
LLMK_API int32_t llmk_kv_gather_rows_cuda(int32_t device, const void* src, const int32_t* idx,
                                          void* dst, int64_t B, int64_t H, int64_t N, int64_t K,
                                          int64_t row_bytes, void* stream) LLMK_NOEXCEPT;

/* ---- fused cut cross-entropy ---------------------------------------------------------------
 *
 * loss_i = (1 - ls) * (lse_i - z_{i,t_i}) + ls * (lse_i - sum_j z_ij / V_total) + zl * lse_i^2
 * for row i of E scored against target t_i = targets[i + shift] (rows with i + shift >= n, or
 * with t_i == ignore_index, are ignored: loss 0, lse 0, gradient 0). Logits z_ij = E_i . C_j
 * (+ bias_j), then softcap: z = cap * tanh(z / cap) when softcap > 0. lse_i = log sum_j exp z_ij.
 * Nothing of size n x v is ever stored; every backend uses O(n + v) workspace plus tiles.
 *
 * All arguments travel in one struct of 8-byte fields so that the layout is the same in C and
 * in the Java binding (a long[]); struct_bytes must equal sizeof(llmk_cce_args).
 *
 * Vocabulary sharding (tensor-parallel classifier): C holds rows [vocab_offset, vocab_offset + v)
 * of a vocabulary of vocab_total ids. Forward then writes partial statistics (lse over the shard,
 * target logit if the target is in the shard else 0, sum of the shard's logits) that combine
 * across shards by log-add-exp / sum / sum; backward takes the combined lse and writes dC and
 * dbias for the shard and this shard's partial dE (sum dE over shards). */
enum llmk_reduction { LLMK_REDUCTION_NONE = 0, LLMK_REDUCTION_SUM = 1, LLMK_REDUCTION_MEAN = 2 };

/* llmk_cce_args.flags */
#define LLMK_CCE_SORT_VOCAB 1    /* backward visits vocabulary tiles by descending mean logit */
#define LLMK_CCE_FP32_ACCUM 2    /* accumulate dE/dC in fp32 even when they are F16/BF16 */
#define LLMK_CCE_DETERMINISTIC 4 /* bitwise-reproducible results: fixed-order reductions only */

typedef struct llmk_cce_args {
  int64_t struct_bytes;   /* sizeof(llmk_cce_args) */
  /* problem */
  int64_t n;              /* rows of E (tokens), >= 0 */
  int64_t d;              /* hidden size, >= 1 */
  int64_t v;              /* rows of C in this call, >= 1 */
  int64_t vocab_offset;   /* vocabulary id of C's row 0 (0 unless sharded) */
  int64_t vocab_total;    /* whole vocabulary size (v unless sharded) */
  int64_t dtype;          /* llmk_dtype of E, C, bias and the gradients: F32, F16 or BF16 */
  int64_t target_dtype;   /* I32 or I64 */
  int64_t ignore_index;   /* targets equal to this are ignored (PyTorch default -100) */
  int64_t shift;          /* 0 <= shift: row i is scored against targets[i + shift] */
  int64_t reduction;      /* llmk_reduction */
  int64_t flags;          /* LLMK_CCE_* bits */
  double softcap;         /* > 0: z = softcap * tanh(z / softcap); 0: off */
  double label_smoothing; /* in [0, 1] */
  double z_loss_scale;    /* >= 0: adds z_loss_scale * lse^2 to each row's loss */
  double filter_eps;      /* >= 0: backward skips a tile whose |gradient| < eps * row scale; 0 off */
  /* operands (host or device addresses, matching the function's backend) */
  int64_t e;              /* [n, d] dtype, row-major contiguous */
  int64_t c;              /* [v, d] dtype, row-major contiguous */
  int64_t bias;           /* [v] dtype, or 0 for none */
  int64_t targets;        /* [n] target_dtype */
  /* forward outputs (f32) */
  int64_t loss;           /* [n] for NONE, [1] for SUM/MEAN; 0 to skip (required to be 0 when sharded) */
  int64_t lse;            /* [n]: forward writes it (required); backward reads it (required) */
  int64_t target_logit;   /* [n] or 0: z of the target when it lies in this shard, else 0 */
  int64_t sum_logits;     /* [n] or 0: sum_j z_ij over this shard's columns */
  /* backward inputs (f32) and outputs (dtype); a null output is not computed */
  int64_t grad_loss;      /* [n] for NONE, [1] for SUM/MEAN */
  int64_t grad_lse;       /* [n] or 0: upstream gradient of lse (added to the softmax term) */
  int64_t grad_e;         /* [n, d] or 0 (overwritten; a shard's partial when sharded) */
  int64_t grad_c;         /* [v, d] or 0 (overwritten) */
  int64_t grad_bias;      /* [v] or 0 (overwritten); requires bias */
  /* CUDA only: device ordinal and cudaStream_t (0 = legacy default stream) */
  int64_t device;
  int64_t stream;
  /* statistics written by backward */
  int64_t tiles_total;    /* logit tiles visited */
  int64_t tiles_skipped;  /* of those, skipped by gradient filtering */
} llmk_cce_args;

/* Forward on the CPU (host addresses). Targets are all checked before anything is written: a
 * target outside [0, vocab_total) that is not ignore_index fails with LLMK_ERR_OUT_OF_RANGE and a
 * message naming its position. */
LLMK_API int32_t llmk_cce_forward_cpu(llmk_cce_args* args) LLMK_NOEXCEPT;
/* Backward on the CPU: recomputes logit tiles, g = softmax - onehot (scaled), filtered per tile. */
LLMK_API int32_t llmk_cce_backward_cpu(llmk_cce_args* args) LLMK_NOEXCEPT;
/* Bytes of workspace the CPU forward (pass 0) or backward (pass 1) allocates for these args. */
LLMK_API int32_t llmk_cce_workspace_bytes_cpu(const llmk_cce_args* args, int32_t pass,
                                              int64_t* bytes) LLMK_NOEXCEPT;
/* Same contracts on a CUDA device (device addresses, args->device, args->stream). The calls
 * validate targets on the device and wait for that verdict; the rest is asynchronous on the
 * stream. */
LLMK_API int32_t llmk_cce_forward_cuda(llmk_cce_args* args) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cce_backward_cuda(llmk_cce_args* args) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_cce_workspace_bytes_cuda(const llmk_cce_args* args, int32_t pass,
                                               int64_t* bytes) LLMK_NOEXCEPT;

#ifdef __cplusplus
}
#endif
#endif /* LLMK_LLMK_H */
