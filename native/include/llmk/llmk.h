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


/* ---- sparse attention masks and block layouts ----------------------------------------------
 *
 * A mask is a postfix program of llmk_mask_node (leaves push a predicate, AND/OR pop two and
 * push one, NOT flips the top); the program must leave exactly one value. The element
 * predicate visible(b, h, q, k) and the conservative tile classifier EMPTY/PARTIAL/FULL are in
 * llmk/mask_math.h, shared by the CPU and CUDA kernels. "Aligned query" qa = q + diagonal offset:
 * the offset is node.i0, plus (k_len[b] - q_len[b]) when node.i1 != 0 and lengths are given, or
 * plus (seq_k - seq_q) when node.i1 != 0 and no lengths (bottom-right alignment, as FlashAttention).
 * Sequence lengths (q_lens/k_lens, int32 [B]) act as an implicit AND: k < k_len[b] and q < q_len[b].
 * Data arrays are int32 (U8 for BLOCKS) at host or device addresses matching the call's backend;
 * per-(batch, head) arrays use element strides node.batch_stride / node.head_stride (0 = shared).
 * The node array itself is always in host memory (the CUDA calls pass it by value).
 */
enum llmk_mask_op {
  LLMK_MASK_ALL = 0,       /* every pair */
  LLMK_MASK_NONE = 1,      /* no pair */
  LLMK_MASK_CAUSAL = 2,    /* k <= qa                                        i0 offset, i1 align */
  LLMK_MASK_WINDOW = 3,    /* qa - i2 <= k <= qa + i3                 i0, i1 as causal; i2 left, i3 right >= 0 */
  LLMK_MASK_SINKS = 4,     /* k < i2 */
  LLMK_MASK_PREFIX = 5,    /* k < data0[b] (int32 [B], batch_stride 1 or 0)  */
  LLMK_MASK_DOCUMENT = 6,  /* data0[b, q] == data1[b, k]: segment ids int32 [B, seq_q] and [B, seq_k];
                              i2 = q batch stride, i3 = k batch stride (0 = shared); i4 != 0 promises
                              both are non-decreasing along the sequence (packed documents), which
                              makes the tile classifier O(1) */
  LLMK_MASK_BLOCKS = 7,    /* data0[b, h, q / i2, k / i3] != 0: U8 bitmap of i4 x i5 mask blocks
                              (rows x cols) per (b, h); a block list or a top-k selection */
  LLMK_MASK_VERTICAL_SLASH = 8, /* k in data0[b, h, 0:i2] (vertical columns) or qa - k in
                              data1[b, h, 0:i3] (slash lines = diagonal offsets). Both int32, strictly
                              ascending, padded at the end with INT32_MAX; i0, i1 as causal; columns
                              use batch_stride/head_stride, slashes use i4 (batch) / i5 (head) */
  LLMK_MASK_AND = 16,
  LLMK_MASK_OR = 17,
  LLMK_MASK_NOT = 18
};

#define LLMK_MASK_MAX_NODES 32
#define LLMK_MASK_MAX_DEPTH 16 /* evaluation stack depth */

typedef struct llmk_mask_node {
  int64_t op;                  /* llmk_mask_op */
  int64_t i0, i1, i2, i3, i4, i5;
  int64_t batch_stride;        /* per-(b, h) data: element strides (see each op) */
  int64_t head_stride;
  int64_t data0, data1;        /* addresses, 0 when unused */
} llmk_mask_node;

/* Tile classes of the conservative classifier. */
enum llmk_tile_class { LLMK_TILE_EMPTY = 0, LLMK_TILE_PARTIAL = 1, LLMK_TILE_FULL = 2 };

/*
 * Block layout (FlexAttention's BlockMask as CSR): rows r = (lb * layout_heads + lh) * num_q_blocks
 * + qb over layout_batch (1 or B) x layout_heads (1 or Hq) x num_q_blocks; partial_ptr/full_ptr
 * int64 [rows + 1] (exclusive prefix sums, ptr[0] = 0), partial_idx/full_idx int32 [ptr[rows]]
 * ascending KV block indices. A PARTIAL block has at least one masked pair (or may: the
 * classifier is conservative), and the kernels evaluate the element predicate on it; a FULL block
 * has none. A broadcast layout dimension (1) serves every batch / head of the attention call.
 */
typedef struct llmk_layout_args {
  int64_t struct_bytes;   /* sizeof(llmk_layout_args) */
  int64_t batch;          /* B of the attention call */
  int64_t layout_batch;   /* 1 or B */
  int64_t layout_heads;   /* 1 or Hq (mask heads are query heads) */
  int64_t seq_q, seq_k;   /* >= 0 */
  int64_t block_q, block_k;  /* >= 1 */
  int64_t nodes;          /* host address of llmk_mask_node[node_count] */
  int64_t node_count;     /* 1 .. LLMK_MASK_MAX_NODES */
  int64_t q_lens, k_lens; /* int32 [B] or 0 (then seq_q / seq_k for every batch) */
  int64_t partial_ptr, full_ptr; /* int64 [rows + 1]: written by count, read by fill */
  int64_t partial_idx, full_idx; /* int32 [nnz]: written by fill */
  int64_t device, stream; /* CUDA only */
  int64_t selection;      /* U8 [layout_batch, layout_heads, nqb, nkb] or 0: only tiles with a non-zero
                             byte are classified (EMPTY dropped), e.g. a prefill estimator's choice */
} llmk_layout_args;

/* Pass 1: classifies every tile and writes partial_ptr and full_ptr. */
LLMK_API int32_t llmk_layout_count_cpu(const llmk_layout_args* args) LLMK_NOEXCEPT;
/* Pass 2 (after count, ptr arrays unchanged): writes partial_idx and full_idx. */
LLMK_API int32_t llmk_layout_fill_cpu(const llmk_layout_args* args) LLMK_NOEXCEPT;
/* Same on a CUDA device (device addresses except nodes). Asynchronous on the stream. */
LLMK_API int32_t llmk_layout_count_cuda(const llmk_layout_args* args) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_layout_fill_cuda(const llmk_layout_args* args) LLMK_NOEXCEPT;

/* ---- block-sparse attention forward ----------------------------------------------------------
 *
 * out[b, h, i, :] = sum_j p_ij v[b, h / (Hq / Hkv), j, :] over the visible keys j of query i, with
 * s_ij = scale * q_i . k_j, then softcap: s = softcap * tanh(s / softcap) when softcap > 0,
 * p = softmax over visible j; lse[b, h, i] = log sum_j exp s_ij (natural log). Only the layout's
 * blocks are computed. A query with no visible key gets out = 0 and lse = -inf. q [B, Hq, Sq, d],
 * k and v [B, Hkv, Sk, d], out [B, Hq, Sq, d] (dtype or F32), lse [B, Hq, Sq] F32: contiguous.
 */
typedef struct llmk_attn_args {
  int64_t struct_bytes;   /* sizeof(llmk_attn_args) */
  int64_t batch, heads_q, heads_kv, seq_q, seq_k, head_dim;
  int64_t dtype;          /* of q, k, v: F32, F16 or BF16 */
  int64_t out_dtype;      /* dtype or F32 */
  double scale;           /* > 0 */
  double softcap;         /* >= 0; 0 = off */
  int64_t q, k, v, out, lse;
  /* layout and mask, as llmk_layout_args (ptr/idx arrays already filled) */
  int64_t layout_batch, layout_heads, block_q, block_k;
  int64_t nodes, node_count, q_lens, k_lens;
  int64_t partial_ptr, partial_idx, full_ptr, full_idx;
  int64_t device, stream; /* CUDA only */
  /* Token-level key columns beside the block lists (MInference's vertical column_index), or
   * col_cap = 0 / columns = 0 for none. columns I32 [layout_batch, layout_heads, col_cap]: per
   * layout (batch, head) strictly ascending keys in [0, seq_k), then -1 padding to col_cap. Query q
   * of query block qb also attends to column j when j's key block is in neither list of its layout
   * row (a listed block already holds it) and the mask allows (q, j); so a layout plus columns
   * never counts a key twice. The CPU checks the rows; the CUDA kernels skip entries outside
   * [0, seq_k) and trust the order. */
  int64_t col_cap, columns;
} llmk_attn_args;

LLMK_API int32_t llmk_attn_forward_cpu(const llmk_attn_args* args) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_attn_forward_cuda(const llmk_attn_args* args) LLMK_NOEXCEPT;

/*
 * Merge two attention states over disjoint key sets into the state over their union:
 * lse = log(exp lse_a + exp lse_b), out = out_a exp(lse_a - lse) + out_b exp(lse_b - lse);
 * both -inf gives out 0, lse -inf. out_* [rows, d] of dtype (F32, F16 or BF16), lse_* [rows] F32.
 * out/lse may alias out_a/lse_a or out_b/lse_b exactly (in-place), nothing else overlaps.
 */
LLMK_API int32_t llmk_attn_merge_cpu(const void* out_a, const float* lse_a, const void* out_b,
                                     const float* lse_b, void* out, float* lse, int64_t rows,
                                     int64_t d, int32_t dtype) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_attn_merge_cuda(int32_t device, const void* out_a, const float* lse_a,
                                      const void* out_b, const float* lse_b, void* out, float* lse,
                                      int64_t rows, int64_t d, int32_t dtype,
                                      void* stream) LLMK_NOEXCEPT;

/* ---- dynamic sparse prefill estimators ------------------------------------------------------
 *
 * q [B, Hq, Sq, d], k [B, Hkv, Sk, d] (F32/F16/BF16, contiguous), 1 <= Sq <= Sk, bottom-right
 * aligned (aligned query qa = q + Sk - Sq); query head h reads KV head h / (Hq / Hkv). score writes
 * F32 per-head scores into `scores` (layout per method below); select reads only them and writes
 * `selection` (every byte: 1 = compute the tile, 0 = skip; only causally reachable tiles, kb <=
 * diag(qb) = (min((qb + 1) * block_q, Sq) - 1 + Sk - Sq) / block_k, are ever selected) and the
 * head statistics. The layout is then built by llmk_layout_count/fill_* with that selection and
 * the base mask causal() (llmk_layout_args.selection).
 *
 * Selections depend only on the F32 scores and are bit-identical on every backend (one code path,
 * llmk/prefill_math.h): items are ordered by value descending, then index ascending, with NaN
 * taken as -inf and -0 as +0; forced items come first and count in a budget; cumulative-mass
 * rules keep the minimal prefix of (forced, then ordered others) whose sequential double sum
 * reaches frac * total (total: double sum of all candidates in index order; total 0 keeps the
 * forced items only). In mass sums a value that is not > 0 (negative, NaN) counts as 0.
 *
 * Scores per head (F32), by method (choices where the design text left the layout open):
 *   VERTICAL_SLASH [2, Sk]: vert[j] = sum_r P[r, j], slash[s] = sum_r P[r, qa_r - s] over the last
 *     last_q queries r (P the causal row softmax of scale * q . k). Columns are inflated to whole
 *     key blocks, or with LLMK_PREFILL_COLUMN_TOKENS written as the token list `columns` (C ascending,
 *     exactly vertical_size entries) for llmk_attn_args.columns; head_counts[4] reports |C|.
 *   BLOCK_TOPK [nqb, nkb]: scale * mean(q of block) . mean(k of block), -inf where unreachable.
 *   FLEX [2 * Sk + nkb + nqb * nkb]: vert and slash divided by last_q; then the logits
 *     qhat . kbar[kb] (qhat = mean of the last last_q scaled queries) over all nkb blocks; then
 *     A[qb, kb] as row-softmax PROBABILITIES over the reachable blocks of row qb (0 where
 *     unreachable). Pooled vertical / slash block masses are double sums in index order (slash
 *     offsets binned by s / block_k) and are ordered as doubles. The short-prompt fallback
 *     (Sq <= max(2 * block, min_budget_blocks * block)) selects every reachable tile, pattern
 *     DENSE, verticals = slashes = 0, divergence NaN. The divergence d uses exp/log in double (a
 *     device libm may differ from the host's in the last bit: the query-aware decision d < tau
 *     can then differ only for d within ~1e-15 of tau).
 *   XATTN [nqb, nkb]: antidiagonal block masses A[qb, kb] (row softmax of the stride-reshaped
 *     logits, summed over the block's reshaped rows and columns).
 * head_counts [B, Hq, 5] int64: pattern (llmk_prefill_pattern), verticals (VS |C|, FLEX vertical
 * blocks), slashes (VS |D|, FLEX slash blocks), blocks (selected tiles), columns (VS |C|, else 0).
 * Fields a method does not use are ignored (not checked). */
enum llmk_prefill_method { LLMK_PREFILL_VERTICAL_SLASH = 0, LLMK_PREFILL_BLOCK_TOPK = 1,
                           LLMK_PREFILL_FLEX = 2, LLMK_PREFILL_XATTN = 3 };
enum llmk_prefill_pattern { LLMK_PREFILL_PAT_A_SHAPE = 0, LLMK_PREFILL_PAT_VERTICAL_SLASH = 1,
  LLMK_PREFILL_PAT_BLOCK_TOPK = 2, LLMK_PREFILL_PAT_QUERY_AWARE = 3, LLMK_PREFILL_PAT_XATTN = 4,
  LLMK_PREFILL_PAT_DENSE = 5 };
#define LLMK_PREFILL_FORCE_DIAGONAL 2 /* BLOCK_TOPK: always keep diag(qb) */
/* VERTICAL_SLASH: keep the chosen columns as tokens in `columns` (llmk_attn_args.columns) instead
 * of inflating each to its key block in the selection; the selection then holds the slashes only. */
#define LLMK_PREFILL_COLUMN_TOKENS 4

typedef struct llmk_prefill_args {
  int64_t struct_bytes;            /* sizeof(llmk_prefill_args) */
  int64_t method;                  /* llmk_prefill_method */
  int64_t batch, heads_q, heads_kv, seq_q, seq_k, head_dim;
  int64_t dtype;                   /* of q and k */
  double scale;                    /* > 0 (in [1e-30, 1e30]) */
  int64_t block_q, block_k;        /* in [1, 2^20]; BLOCK_TOPK, FLEX, XATTN need block_q == block_k */
  int64_t flags;                   /* LLMK_PREFILL_* bits */
  int64_t last_q;                  /* VS, FLEX: 1 .. seq_q */
  int64_t vertical_size, slash_size, forced_columns, forced_slashes; /* VS, resolved: forced <= size <= seq_k */
  int64_t top_k;                   /* BLOCK_TOPK, >= 0 (larger than a row's reachable count keeps them all) */
  double gamma, tau;               /* FLEX: (0, 1], [0, 1] */
  int64_t min_budget_blocks, max_budget_blocks; /* FLEX: 0 <= min <= max <= nkb */
  int64_t stride;                  /* XATTN: >= 1, divides block_q, divides seq_k - seq_q */
  double threshold;                /* XATTN: (0, 1] */
  int64_t q, k;                    /* inputs (score only) */
  int64_t scores;                  /* F32 [B, Hq, per_head]: written by score, read by select */
  int64_t selection;               /* out U8 [B, Hq, nqb, nkb] (select) */
  int64_t head_counts;             /* out I64 [B, Hq, 5] (select) */
  int64_t head_divergence;         /* out F32 [B, Hq] (FLEX d, NaN otherwise) or 0 (select) */
  int64_t device, stream;          /* CUDA only */
  int64_t columns;                 /* out I32 [B, Hq, vertical_size], ascending (select, VS with
                                      LLMK_PREFILL_COLUMN_TOKENS; else ignored) */
} llmk_prefill_args;

/* per_head F32 count: VS 2*Sk; BLOCK_TOPK nqb*nkb; FLEX 2*Sk + nkb + nqb*nkb; XATTN nqb*nkb.
 * Checks every argument except the addresses. */
LLMK_API int32_t llmk_prefill_scores_size(const llmk_prefill_args* args, int64_t* per_head) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_prefill_score_cpu(const llmk_prefill_args* args) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_prefill_select_cpu(const llmk_prefill_args* args) LLMK_NOEXCEPT;
/* Device addresses, asynchronous on args->stream (workspace is stream-ordered device memory). */
LLMK_API int32_t llmk_prefill_score_cuda(const llmk_prefill_args* args) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_prefill_select_cuda(const llmk_prefill_args* args) LLMK_NOEXCEPT;


/* ---- KV cache compaction -------------------------------------------------------------------
 *
 * Score cached tokens per KV head (higher = keep), choose a budget per head, select the kept
 * tokens (top-k, ties to the lower position), and move their rows: out of place into a dense or
 * a per-head variable-length cache, or in place by hole filling. Every kept row keeps its original
 * position (an int32 "positions" array moved like any other row of 4 bytes) so RoPE stays right.
 * Caches are [B, Hkv, N, row] contiguous; queries [B, Hq, q_len, d]; Hq a multiple of Hkv and
 * query head h belongs to KV head h / (Hq / Hkv). Scores and attention statistics are F32.
 */
enum llmk_kv_scorer {
  LLMK_KV_KNORM = 0,    /* -||k_j||_2 */
  LLMK_KV_RECENCY = 1,  /* j (newer is better): with sinks forced at selection = StreamingLLM */
  LLMK_KV_SNAPKV = 2,   /* attention of the q_len window queries (positions n - q_len + i, causal
                           inside the window), softmax over keys in fp32, mean over the window and
                           over the GQA group, then pooled along keys (pool, pool_kernel).
                           TOVA = SNAPKV with q_len 1 (the last query) and no pooling. */
  LLMK_KV_OBSERVED = 3, /* H2O / observed attention: attention probabilities of the q_len queries
                           (positions n - q_len + i, causal) summed per key over queries and the
                           GQA group into attn_sum, attn_count += how many (query, head) pairs saw
                           the key; score = attn_sum / attn_count (0 where count is 0). Both
                           accumulate across calls (decode steps); two flash-style passes, never
                           the q_len x n matrix. */
  LLMK_KV_LADDER = 4    /* LaCache ladder, position only: j % rung == layer % rung scores 2 + j/n,
                           other tokens 1 + j/n (each layer keeps its own rung offset first, newest
                           first, then the newest of the rest) */
};
enum llmk_kv_pool { LLMK_KV_POOL_NONE = 0, LLMK_KV_POOL_AVG = 1, LLMK_KV_POOL_MAX = 2 };

typedef struct llmk_kv_score_args {
  int64_t struct_bytes;  /* sizeof(llmk_kv_score_args) */
  int64_t scorer;        /* llmk_kv_scorer */
  int64_t batch, heads_q, heads_kv, n, head_dim;
  int64_t dtype;         /* of q and k: F32, F16 or BF16 */
  int64_t q_len;         /* SNAPKV / OBSERVED: queries in q, 1 .. n */
  int64_t pool;          /* SNAPKV: llmk_kv_pool */
  int64_t pool_kernel;   /* SNAPKV with pooling: odd, >= 1; window j - kernel/2 .. j + kernel/2,
                            AVG divides by kernel (zero padding, as PyTorch's avg_pool1d), MAX
                            ignores positions outside [0, n) */
  double scale;          /* softmax scale (> 0) for SNAPKV / OBSERVED */
  int64_t ladder_layer;  /* LADDER: layer index >= 0 */
  int64_t ladder_rung;   /* LADDER: rung span >= 1 */
  int64_t q;             /* [B, Hq, q_len, d] (SNAPKV, OBSERVED) */
  int64_t k;             /* [B, Hkv, n, d] (KNORM, SNAPKV, OBSERVED) */
  int64_t scores;        /* out [B, Hkv, n] F32 */
  int64_t attn_sum;      /* OBSERVED: in/out [B, Hkv, n] F32 */
  int64_t attn_count;    /* OBSERVED: in/out [B, Hkv, n] F32 */
  int64_t device, stream; /* CUDA only */
} llmk_kv_score_args;

LLMK_API int32_t llmk_kv_score_cpu(const llmk_kv_score_args* args) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_kv_score_cuda(const llmk_kv_score_args* args) LLMK_NOEXCEPT;

/*
 * Top-k per head: head (b, h) keeps budgets[b, h] tokens: first the forced ones (positions
 * < sinks and >= n - recent), then the highest scores, ties to the lower position; kept[b, h, :]
 * lists them in ascending position order, padded with -1 up to max_keep. Every budget must lie in
 * [min(n, sinks + recent), n] and be <= max_keep; a NaN score is an error naming its position.
 */
typedef struct llmk_kv_select_args {
  int64_t struct_bytes;  /* sizeof(llmk_kv_select_args) */
  int64_t batch, heads, n;
  int64_t sinks, recent; /* >= 0 */
  int64_t max_keep;      /* >= 0: row length of kept */
  int64_t scores;        /* [B, H, n] F32 */
  int64_t budgets;       /* int32 [B, H] (host memory for the CPU call, device memory for CUDA) */
  int64_t kept;          /* out int32 [B, H, max_keep] */
  int64_t device, stream; /* CUDA only */
} llmk_kv_select_args;

LLMK_API int32_t llmk_kv_select_cpu(const llmk_kv_select_args* args) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_kv_select_cuda(const llmk_kv_select_args* args) LLMK_NOEXCEPT;

/*
 * Out-of-place compaction into a per-head variable-length cache: for head bh = b * H + h and
 * i < cu[bh + 1] - cu[bh], dst[cu[bh] + i, :] = src[bh, kept[bh, i], :]. src [B, H, N, row_bytes],
 * kept int32 [B, H, max_keep], cu int64 [B * H + 1] (cu[0] = 0, non-decreasing, each count
 * <= max_keep), dst [cu[B * H], row_bytes]. Every used index is checked (in [0, N)) before any
 * byte is written. (The dense layout is llmk_kv_gather_rows_*; positions move as 4-byte rows.)
 */
LLMK_API int32_t llmk_kv_gather_varlen_cpu(const void* src, const int32_t* kept, const int64_t* cu, void* dst,
                                           int64_t B, int64_t H, int64_t N, int64_t max_keep,
                                           int64_t row_bytes) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_kv_gather_varlen_cuda(int32_t device, const void* src, const int32_t* kept, const int64_t* cu,
                                            void* dst, int64_t B, int64_t H, int64_t N, int64_t max_keep,
                                            int64_t row_bytes, void* stream) LLMK_NOEXCEPT;

/*
 * In-place compaction by hole filling: head bh keeps the counts[bh] slots listed (strictly
 * ascending, in [0, capacity)) in kept[bh, 0 : counts[bh]]; afterwards slots 0 .. counts[bh] - 1
 * hold exactly those rows. Kept rows already below counts[bh] stay; the kept rows at or beyond it
 * move, in ascending order, into the free slots below it, in ascending order (sources and
 * destinations are disjoint, so all moves run in parallel). cache [B, H, capacity, row_bytes].
 * Call it once per tensor (K, V, positions as 4-byte rows) with the same kept/counts.
 */
LLMK_API int32_t llmk_kv_compact_inplace_cpu(void* cache, const int32_t* kept, const int32_t* counts, int64_t B,
                                             int64_t H, int64_t capacity, int64_t max_keep,
                                             int64_t row_bytes) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_kv_compact_inplace_cuda(int32_t device, void* cache, const int32_t* kept, const int32_t* counts,
                                              int64_t B, int64_t H, int64_t capacity, int64_t max_keep,
                                              int64_t row_bytes, void* stream) LLMK_NOEXCEPT;

/*
 * Decode attention over a per-head variable-length cache: query head h of batch b attends over
 * the rows cu[bh] .. cu[bh + 1] - 1 of its KV head bh = b * Hkv + h / (Hq / Hkv):
 * out[b, h] = softmax(scale q . k) v, lse[b, h] (natural log; -inf and out 0 for an empty head).
 * q [B, Hq, d], k and v [cu[B * Hkv], d] (dtype), out [B, Hq, d] (dtype or F32), lse [B, Hq] F32 or 0.
 */
typedef struct llmk_kv_decode_args {
  int64_t struct_bytes;  /* sizeof(llmk_kv_decode_args) */
  int64_t batch, heads_q, heads_kv, head_dim;
  int64_t dtype, out_dtype;
  double scale;          /* > 0 */
  int64_t q, k, v;
  int64_t cu;            /* int64 [B * Hkv + 1] (host memory for the CPU call, device for CUDA) */
  int64_t out, lse;
  int64_t device, stream; /* CUDA only */
} llmk_kv_decode_args;

LLMK_API int32_t llmk_kv_decode_attn_cpu(const llmk_kv_decode_args* args) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_kv_decode_attn_cuda(const llmk_kv_decode_args* args) LLMK_NOEXCEPT;


/* ---- 2:4 semi-structured sparse matmul -----------------------------------------------------
 *
 * W [M, K] (K the reduction dimension, a multiple of 16) is 2:4 along K when every group of 4
 * consecutive elements W[m, 4g .. 4g + 3] holds at most 2 non-zeros. Compressed form (PyTorch's
 * unreordered layout): values [M, K/2] (dtype) hold, per group, the two kept elements in increasing
 * k; meta uint16 [M, K/16] holds 4 groups per word, lowest nibble = lowest group, each nibble
 * idx0 | idx1 << 2 with idx0 < idx1 the positions of the kept elements in their group. A group with
 * fewer than 2 non-zeros keeps its non-zero (if any) and fills up with the lowest zero positions
 * (so compression is a function of W and decompression restores W exactly). Scores for pruning:
 * |W| (magnitude) or |W| * col_scale[k] (Wanda: col_scale = the norm of input column k); in each
 * group the 2 highest scores stay, ties to the lower position.
 */
enum llmk_activation { LLMK_ACT_NONE = 0, LLMK_ACT_RELU = 1, LLMK_ACT_SILU = 2, LLMK_ACT_GELU = 3 /* tanh form */ };

/* out [M, K] = W with the 2 lowest-scoring elements of every group set to 0 (out may alias w).
 * col_scale: F32 [K] or null. */
LLMK_API int32_t llmk_sp24_prune_cpu(const void* w, const float* col_scale, void* out, int64_t m, int64_t k,
                                     int32_t dtype) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_sp24_prune_cuda(int32_t device, const void* w, const float* col_scale, void* out, int64_t m,
                                      int64_t k, int32_t dtype, void* stream) LLMK_NOEXCEPT;
/* Finds the first group (row-major order) with more than 2 non-zeros: *bad_row / *bad_group, or
 * -1 / -1 when W is 2:4 (the CUDA version waits for the answer). */
LLMK_API int32_t llmk_sp24_check_cpu(const void* w, int64_t m, int64_t k, int32_t dtype, int64_t* bad_row,
                                     int64_t* bad_group) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_sp24_check_cuda(int32_t device, const void* w, int64_t m, int64_t k, int32_t dtype,
                                      int64_t* bad_row, int64_t* bad_group, void* stream) LLMK_NOEXCEPT;
/* W [M, K] -> values [M, K/2], meta [M, K/16]. A group with more than 2 non-zeros fails with
 * LLMK_ERR_INVALID_ARGUMENT naming its row and group, and nothing is written. */
LLMK_API int32_t llmk_sp24_compress_cpu(const void* w, void* values, uint16_t* meta, int64_t m, int64_t k,
                                        int32_t dtype) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_sp24_compress_cuda(int32_t device, const void* w, void* values, uint16_t* meta, int64_t m,
                                         int64_t k, int32_t dtype, void* stream) LLMK_NOEXCEPT;
/* values, meta -> W [M, K] (zeros elsewhere). A nibble with idx0 >= idx1 fails naming row and group. */
LLMK_API int32_t llmk_sp24_decompress_cpu(const void* values, const uint16_t* meta, void* w, int64_t m, int64_t k,
                                          int32_t dtype) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_sp24_decompress_cuda(int32_t device, const void* values, const uint16_t* meta, void* w,
                                           int64_t m, int64_t k, int32_t dtype, void* stream) LLMK_NOEXCEPT;

/*
 * Y [N, M] = act(X [N, K] W^T + bias [M]) with W given compressed (values, meta) or dense (w, for
 * the dense baseline entry points). X, W, bias and Y share dtype (F32 on the CPU only, F16, BF16);
 * accumulation in fp32. All tensors contiguous row-major. Metadata: the CPU entry point checks
 * every nibble on every call (a vectorised pass; a bad one fails naming row and group, nothing
 * written); the CUDA one does not (a separate device pass on every call would add ~1/9 of a BF16
 * decode call's bytes plus a launch): a bad nibble there gives unspecified values of Y, never an
 * access outside the operands. Metadata made by llmk_sp24_compress_* is valid; the Java API
 * checks wrapped metadata once.
 */
typedef struct llmk_sp24_matmul_args {
  int64_t struct_bytes;  /* sizeof(llmk_sp24_matmul_args) */
  int64_t n, m, k;       /* k a multiple of 16 */
  int64_t dtype;
  int64_t activation;    /* llmk_activation */
  int64_t x;             /* [N, K] */
  int64_t values;        /* [M, K/2] (sparse entry points) */
  int64_t meta;          /* uint16 [M, K/16] (sparse entry points) */
  int64_t w;             /* [M, K] (dense entry points) */
  int64_t bias;          /* [M] or 0 */
  int64_t y;             /* [N, M] */
  int64_t device, stream; /* CUDA only */
} llmk_sp24_matmul_args;

LLMK_API int32_t llmk_sp24_matmul_cpu(const llmk_sp24_matmul_args* args) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_sp24_matmul_cuda(const llmk_sp24_matmul_args* args) LLMK_NOEXCEPT;
/* The same product with a dense W: the library's own dense baseline. */
LLMK_API int32_t llmk_dense_matmul_cpu(const llmk_sp24_matmul_args* args) LLMK_NOEXCEPT;
LLMK_API int32_t llmk_dense_matmul_cuda(const llmk_sp24_matmul_args* args) LLMK_NOEXCEPT;

#ifdef __cplusplus
}
#endif
#endif /* LLMK_LLMK_H */
