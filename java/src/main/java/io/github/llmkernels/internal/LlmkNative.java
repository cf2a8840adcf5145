package io.github.llmkernels.internal;

import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * The raw C ABI of libllmkernels (native/include/llmk/llmk.h), one Java method per C function.
 *
 * <p>Package-private on purpose: these methods trust their arguments as far as Java can (the C
 * side re-checks sizes and pointers, but cannot know whether an address is live). Only
 * {@link NativeApi} calls them, after validation, and turns status codes into exceptions.
 * Addresses cross as {@code long}; {@code int[]}/{@code long[]} are out-parameters.
 */
@Platform(
    value = "linux-x86_64",
    include = "llmk/llmk.h",
    preload = "gomp@.1",
    link = "llmkernels")
final class LlmkNative {
  private LlmkNative() {}

  static native String llmk_last_error();

  static native int llmk_version();

  static native String llmk_cpu_variant();

  static native int llmk_cpu_threads();

  static native int llmk_cpu_set_variant(String name);

  static native int llmk_cpu_supports_variant(String name);

  static native int llmk_host_alloc(long bytes, @Cast("void**") long[] out);

  static native int llmk_host_free(@Cast("void*") long ptr);

  static native int llmk_copy_cpu(@Cast("void*") long dst, @Cast("const void*") long src, long bytes);

  static native int llmk_convert_cpu(
      @Cast("const void*") long src, int srcDtype, @Cast("void*") long dst, int dstDtype, long n);

  static native int llmk_kv_gather_rows_cpu(
      @Cast("const void*") long src,
      @Cast("const int32_t*") long idx,
      @Cast("void*") long dst,
      long b,
      long h,
      long n,
      long k,
      long rowBytes);

  static native int llmk_cuda_compiled();

  static native String llmk_cuda_compiled_archs();

  static native int llmk_cuda_device_count(@Cast("int32_t*") int[] count);

  static native int llmk_cuda_device_info(
      int device,
      @Cast("char*") byte[] nameOut,
      int nameCapacity,
      @Cast("int32_t*") int[] ccMajor,
      @Cast("int32_t*") int[] ccMinor,
      @Cast("int64_t*") long[] totalBytes,
      @Cast("int32_t*") int[] multiprocessors,
      @Cast("int32_t*") int[] driverVersion,
      @Cast("int32_t*") int[] runtimeVersion);

  static native int llmk_cuda_malloc(int device, long bytes, @Cast("void**") long[] out);

  static native int llmk_cuda_free(int device, @Cast("void*") long ptr);

  static native int llmk_cuda_memcpy(
      int device,
      @Cast("void*") long dst,
      @Cast("const void*") long src,
      long bytes,
      int kind,
      @Cast("void*") long stream,
      int synchronize);

  static native int llmk_cuda_memset(
      int device, @Cast("void*") long dst, int value, long bytes, @Cast("void*") long stream);

  static native int llmk_cuda_stream_create(int device, @Cast("void**") long[] out);

  static native int llmk_cuda_stream_destroy(int device, @Cast("void*") long stream);

  static native int llmk_cuda_stream_synchronize(int device, @Cast("void*") long stream);

  static native int llmk_cuda_event_create(int device, @Cast("void**") long[] out);

  static native int llmk_cuda_event_destroy(int device, @Cast("void*") long event);

  static native int llmk_cuda_event_record(int device, @Cast("void*") long event, @Cast("void*") long stream);

  static native int llmk_cuda_event_synchronize(int device, @Cast("void*") long event);

  static native int llmk_cuda_event_elapsed_ms(
      @Cast("void*") long start, @Cast("void*") long end, float[] ms);

  static native int llmk_kv_gather_rows_cuda(
      int device,
      @Cast("const void*") long src,
      @Cast("const int32_t*") long idx,
      @Cast("void*") long dst,
      long b,
      long h,
      long n,
      long k,
      long rowBytes,
      @Cast("void*") long stream);

  // llmk_cce_args is a struct of 8-byte fields; the long[] is its memory (see CceArgs).
  static native int llmk_cce_forward_cpu(@Cast("llmk_cce_args*") long[] args);

  static native int llmk_cce_backward_cpu(@Cast("llmk_cce_args*") long[] args);

  static native int llmk_cce_workspace_bytes_cpu(
      @Cast("const llmk_cce_args*") long[] args, int pass, @Cast("int64_t*") long[] bytes);

  static native int llmk_cce_forward_cuda(@Cast("llmk_cce_args*") long[] args);

  static native int llmk_cce_backward_cuda(@Cast("llmk_cce_args*") long[] args);

  static native int llmk_cce_workspace_bytes_cuda(
      @Cast("const llmk_cce_args*") long[] args, int pass, @Cast("int64_t*") long[] bytes);

  // llmk_layout_args / llmk_attn_args: structs of 8-byte fields (see ArgStruct).
  static native int llmk_layout_count_cpu(@Cast("const llmk_layout_args*") long[] args);

  static native int llmk_layout_fill_cpu(@Cast("const llmk_layout_args*") long[] args);

  static native int llmk_layout_count_cuda(@Cast("const llmk_layout_args*") long[] args);

  static native int llmk_layout_fill_cuda(@Cast("const llmk_layout_args*") long[] args);

  static native int llmk_attn_forward_cpu(@Cast("const llmk_attn_args*") long[] args);

  static native int llmk_attn_forward_cuda(@Cast("const llmk_attn_args*") long[] args);

  static native int llmk_attn_merge_cpu(
      @Cast("const void*") long outA,
      @Cast("const float*") long lseA,
      @Cast("const void*") long outB,
      @Cast("const float*") long lseB,
      @Cast("void*") long out,
      @Cast("float*") long lse,
      long rows,
      long d,
      int dtype);

  static native int llmk_attn_merge_cuda(
      int device,
      @Cast("const void*") long outA,
      @Cast("const float*") long lseA,
      @Cast("const void*") long outB,
      @Cast("const float*") long lseB,
      @Cast("void*") long out,
      @Cast("float*") long lse,
      long rows,
      long d,
      int dtype,
      @Cast("void*") long stream);

  // KV cache compaction (llmk_kv_*_args: structs of 8-byte fields, see ArgStruct).
  static native int llmk_kv_score_cpu(@Cast("const llmk_kv_score_args*") long[] args);

  static native int llmk_kv_score_cuda(@Cast("const llmk_kv_score_args*") long[] args);

  static native int llmk_kv_select_cpu(@Cast("const llmk_kv_select_args*") long[] args);

  static native int llmk_kv_select_cuda(@Cast("const llmk_kv_select_args*") long[] args);

  static native int llmk_kv_decode_attn_cpu(@Cast("const llmk_kv_decode_args*") long[] args);

  static native int llmk_kv_decode_attn_cuda(@Cast("const llmk_kv_decode_args*") long[] args);

  static native int llmk_kv_gather_varlen_cpu(
      @Cast("const void*") long src,
      @Cast("const int32_t*") long kept,
      @Cast("const int64_t*") long cu,
      @Cast("void*") long dst,
      long b,
      long h,
      long n,
      long maxKeep,
      long rowBytes);

  static native int llmk_kv_gather_varlen_cuda(
      int device,
      @Cast("const void*") long src,
      @Cast("const int32_t*") long kept,
      @Cast("const int64_t*") long cu,
      @Cast("void*") long dst,
      long b,
      long h,
      long n,
      long maxKeep,
      long rowBytes,
      @Cast("void*") long stream);

  static native int llmk_kv_compact_inplace_cpu(
      @Cast("void*") long cache,
      @Cast("const int32_t*") long kept,
      @Cast("const int32_t*") long counts,
      long b,
      long h,
      long capacity,
      long maxKeep,
      long rowBytes);

  static native int llmk_kv_compact_inplace_cuda(
      int device,
      @Cast("void*") long cache,
      @Cast("const int32_t*") long kept,
      @Cast("const int32_t*") long counts,
      long b,
      long h,
      long capacity,
      long maxKeep,
      long rowBytes,
      @Cast("void*") long stream);

  // Dynamic sparse prefill (llmk_prefill_args: a struct of 8-byte fields, see ArgStruct).
  static native int llmk_prefill_scores_size(
      @Cast("const llmk_prefill_args*") long[] args, @Cast("int64_t*") long[] perHead);

  static native int llmk_prefill_score_cpu(@Cast("const llmk_prefill_args*") long[] args);

  static native int llmk_prefill_select_cpu(@Cast("const llmk_prefill_args*") long[] args);

  static native int llmk_prefill_score_cuda(@Cast("const llmk_prefill_args*") long[] args);

  static native int llmk_prefill_select_cuda(@Cast("const llmk_prefill_args*") long[] args);

  // 2:4 sparse (llmk_sp24_matmul_args: a struct of 8-byte fields, see ArgStruct).
  static native int llmk_sp24_prune_cpu(@Cast("const void*") long w, @Cast("const float*") long colScale,
      @Cast("void*") long out, long m, long k, int dtype);

  static native int llmk_sp24_prune_cuda(int device, @Cast("const void*") long w, @Cast("const float*") long colScale,
      @Cast("void*") long out, long m, long k, int dtype, @Cast("void*") long stream);

  static native int llmk_sp24_check_cpu(@Cast("const void*") long w, long m, long k, int dtype,
      @Cast("int64_t*") long[] badRow, @Cast("int64_t*") long[] badGroup);

  static native int llmk_sp24_check_cuda(int device, @Cast("const void*") long w, long m, long k, int dtype,
      @Cast("int64_t*") long[] badRow, @Cast("int64_t*") long[] badGroup, @Cast("void*") long stream);

  static native int llmk_sp24_compress_cpu(@Cast("const void*") long w, @Cast("void*") long values,
      @Cast("uint16_t*") long meta, long m, long k, int dtype);

  static native int llmk_sp24_compress_cuda(int device, @Cast("const void*") long w, @Cast("void*") long values,
      @Cast("uint16_t*") long meta, long m, long k, int dtype, @Cast("void*") long stream);

  static native int llmk_sp24_decompress_cpu(@Cast("const void*") long values, @Cast("const uint16_t*") long meta,
      @Cast("void*") long w, long m, long k, int dtype);

  static native int llmk_sp24_decompress_cuda(int device, @Cast("const void*") long values,
      @Cast("const uint16_t*") long meta, @Cast("void*") long w, long m, long k, int dtype,
      @Cast("void*") long stream);

  static native int llmk_sp24_matmul_cpu(@Cast("const llmk_sp24_matmul_args*") long[] args);

  static native int llmk_sp24_matmul_cuda(@Cast("const llmk_sp24_matmul_args*") long[] args);

  static native int llmk_dense_matmul_cpu(@Cast("const llmk_sp24_matmul_args*") long[] args);

  static native int llmk_dense_matmul_cuda(@Cast("const llmk_sp24_matmul_args*") long[] args);
}
