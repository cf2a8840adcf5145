package io.github.llmkernels.internal;

import io.github.llmkernels.runtime.BackendUnavailableException;
import io.github.llmkernels.runtime.LlmKernelsException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.bytedeco.javacpp.Loader;

/**
 * Loads libllmkernels once and exposes its C ABI with status codes turned into exceptions.
 *
 * <p>Internal: public only so the API packages can reach it. Callers validate arguments first;
 * the native side re-checks, and its error message (naming the argument and the rule) becomes
 * the exception message: {@link IllegalArgumentException} for bad arguments and out-of-range
 * indices, {@link BackendUnavailableException} when CUDA is missing, {@link LlmKernelsException}
 * for runtime failures.
 *
 * <p>Loading: from the natives jar through JavaCPP's Loader (extracted to ~/.javacpp/cache), or,
 * when the system property {@value #LIBRARY_PATH_PROPERTY} names a folder, from that folder
 * (a custom build: libllmkernels.so, libjniLlmkNative.so and optionally libgomp.so.1).
 */
public final class NativeApi {
  /** System property naming a folder with a custom build of the native libraries. */
  public static final String LIBRARY_PATH_PROPERTY = "llmkernels.library.path";

  // C ABI status codes (native/include/llmk/llmk.h).
  static final int OK = 0;
  static final int ERR_INVALID_ARGUMENT = 1;
  static final int ERR_OUT_OF_RANGE = 2;
  static final int ERR_UNAVAILABLE = 3;

  /** cudaMemcpy directions of llmk_cuda_memcpy. */
  public static final int H2D = 0;
  public static final int D2H = 1;
  public static final int D2D = 2;
  public static final int H2H = 3;

  private static final Throwable LOAD_FAILURE = load();

  private NativeApi() {}

  private static Throwable load() {
    try {
      String dir = System.getProperty(LIBRARY_PATH_PROPERTY);
      if (dir != null && !dir.isBlank()) {
        loadFrom(Path.of(dir));
      } else {
        String loaded = Loader.load(LlmkNative.class);
        if (loaded == null) {
          return new UnsatisfiedLinkError(
              "no native library for platform " + Loader.getPlatform() + " (only linux-x86_64 is built)");
        }
      }
      LlmkNative.llmk_version(); // proves the JNI glue and the library are both there
      return null;
    } catch (Throwable t) { // UnsatisfiedLinkError, missing natives jar, SecurityException...
      return t;
    }
  }

  private static void loadFrom(Path dir) {
    Path gomp = dir.resolve("libgomp.so.1");
    if (Files.exists(gomp)) {
      System.load(gomp.toAbsolutePath().toString());
    }
    System.load(dir.resolve("libllmkernels.so").toAbsolutePath().toString());
    System.load(dir.resolve("libjniLlmkNative.so").toAbsolutePath().toString());
  }

  /** True when the native library and its JNI glue loaded. */
  public static boolean isLoaded() {
    return LOAD_FAILURE == null;
  }

  /** Why the library did not load, or null if it did. */
  public static Throwable loadFailure() {
    return LOAD_FAILURE;
  }

  /** Throws {@link BackendUnavailableException} with the load failure as cause. */
  public static void ensureLoaded() {
    if (LOAD_FAILURE != null) {
      throw new BackendUnavailableException(
          "llm-kernels native library unavailable: " + LOAD_FAILURE, LOAD_FAILURE);
    }
  }

  /** Turns a C ABI status into the matching exception (message from the native side). */
  static void check(int status) {
    if (status == OK) {
      return;
    }
    String message = LlmkNative.llmk_last_error();
    switch (status) {
      case ERR_INVALID_ARGUMENT:
      case ERR_OUT_OF_RANGE:
        throw new IllegalArgumentException(message);
      case ERR_UNAVAILABLE:
        throw new BackendUnavailableException(message, null);
      default:
        throw new LlmKernelsException(status, message);
    }
  }

  // ---- library ---------------------------------------------------------------------------

  public static String version() {
    ensureLoaded();
    int v = LlmkNative.llmk_version();
    return (v / 10000) + "." + (v / 100 % 100) + "." + (v % 100);
  }

  public static String cpuVariant() {
    ensureLoaded();
    return LlmkNative.llmk_cpu_variant();
  }

  public static int cpuThreads() {
    ensureLoaded();
    return LlmkNative.llmk_cpu_threads();
  }

  public static boolean cpuSupportsVariant(String name) {
    ensureLoaded();
    return LlmkNative.llmk_cpu_supports_variant(name) != 0;
  }

  public static void setCpuVariant(String name) {
    ensureLoaded();
    check(LlmkNative.llmk_cpu_set_variant(name));
  }

  // ---- host memory and CPU kernels -------------------------------------------------------

  public static long hostAlloc(long bytes) {
    ensureLoaded();
    long[] out = new long[1];
    check(LlmkNative.llmk_host_alloc(bytes, out));
    return out[0];
  }

  public static void hostFree(long address) {
    LlmkNative.llmk_host_free(address);
  }

  public static void copyCpu(long dst, long src, long bytes) {
    ensureLoaded();
    check(LlmkNative.llmk_copy_cpu(dst, src, bytes));
  }

  /** Converts n elements between F32 and F16/BF16 (dtype codes of DType). */
  public static void convertCpu(long src, int srcDtype, long dst, int dstDtype, long n) {
    ensureLoaded();
    check(LlmkNative.llmk_convert_cpu(src, srcDtype, dst, dstDtype, n));
  }

  /** src (B, H, N, rowBytes), idx (B, H, K) int32, dst (B, H, K, rowBytes), host addresses. */
  public static void gatherRowsCpu(long src, long idx, long dst, long b, long h, long n, long k, long rowBytes) {
    ensureLoaded();
    check(LlmkNative.llmk_kv_gather_rows_cpu(src, idx, dst, b, h, n, k, rowBytes));
  }

  // ---- CUDA ------------------------------------------------------------------------------

  public static boolean cudaCompiled() {
    return isLoaded() && LlmkNative.llmk_cuda_compiled() != 0;
  }

  public static String cudaCompiledArchs() {
    ensureLoaded();
    return LlmkNative.llmk_cuda_compiled_archs();
  }

  public static int cudaDeviceCount() {
    ensureLoaded();
    int[] count = new int[1];
    check(LlmkNative.llmk_cuda_device_count(count));
    return count[0];
  }

  /** Fields of one device, in the order of llmk_cuda_device_info. */
  public record DeviceInfo(
      String name, int ccMajor, int ccMinor, long totalBytes, int multiprocessors, int driverVersion,
      int runtimeVersion) {}

  public static DeviceInfo cudaDeviceInfo(int device) {
    ensureLoaded();
    byte[] name = new byte[256];
    int[] major = new int[1];
    int[] minor = new int[1];
    long[] total = new long[1];
    int[] sms = new int[1];
    int[] driver = new int[1];
    int[] runtime = new int[1];
    check(LlmkNative.llmk_cuda_device_info(device, name, name.length, major, minor, total, sms, driver, runtime));
    int len = 0;
    while (len < name.length && name[len] != 0) {
      len++;
    }
    return new DeviceInfo(
        new String(name, 0, len, StandardCharsets.UTF_8), major[0], minor[0], total[0], sms[0], driver[0], runtime[0]);
  }

  public static long cudaMalloc(int device, long bytes) {
    ensureLoaded();
    long[] out = new long[1];
    check(LlmkNative.llmk_cuda_malloc(device, bytes, out));
    return out[0];
  }

  /** Frees device memory; reports failure through the return value (used from cleaners). */
  public static boolean cudaFree(int device, long address) {
    return LlmkNative.llmk_cuda_free(device, address) == OK;
  }

  /** device: the CUDA device of the device-side pointer (whose legacy stream a 0 stream means). */
  public static void cudaMemcpy(
      int device, long dst, long src, long bytes, int kind, long stream, boolean synchronize) {
    ensureLoaded();
    check(LlmkNative.llmk_cuda_memcpy(device, dst, src, bytes, kind, stream, synchronize ? 1 : 0));
  }

  public static void cudaMemset(int device, long dst, int value, long bytes, long stream) {
    ensureLoaded();
    check(LlmkNative.llmk_cuda_memset(device, dst, value, bytes, stream));
  }

  public static long cudaStreamCreate(int device) {
    ensureLoaded();
    long[] out = new long[1];
    check(LlmkNative.llmk_cuda_stream_create(device, out));
    return out[0];
  }

  public static boolean cudaStreamDestroy(int device, long stream) {
    return LlmkNative.llmk_cuda_stream_destroy(device, stream) == OK;
  }

  public static void cudaStreamSynchronize(int device, long stream) {
    ensureLoaded();
    check(LlmkNative.llmk_cuda_stream_synchronize(device, stream));
  }

  public static long cudaEventCreate(int device) {
    ensureLoaded();
    long[] out = new long[1];
    check(LlmkNative.llmk_cuda_event_create(device, out));
    return out[0];
  }

  public static boolean cudaEventDestroy(int device, long event) {
    return LlmkNative.llmk_cuda_event_destroy(device, event) == OK;
  }

  public static void cudaEventRecord(int device, long event, long stream) {
    ensureLoaded();
    check(LlmkNative.llmk_cuda_event_record(device, event, stream));
  }

  public static void cudaEventSynchronize(int device, long event) {
    ensureLoaded();
    check(LlmkNative.llmk_cuda_event_synchronize(device, event));
  }

  public static float cudaEventElapsedMillis(long start, long end) {
    ensureLoaded();
    float[] ms = new float[1];
    check(LlmkNative.llmk_cuda_event_elapsed_ms(start, end, ms));
    return ms[0];
  }

  /** Same layout as {@link #gatherRowsCpu} with device addresses, on the given stream. */
  public static void gatherRowsCuda(
      int device, long src, long idx, long dst, long b, long h, long n, long k, long rowBytes, long stream) {
    ensureLoaded();
    check(LlmkNative.llmk_kv_gather_rows_cuda(device, src, idx, dst, b, h, n, k, rowBytes, stream));
  }

  // ---- cut cross-entropy -----------------------------------------------------------------

  /** Runs the CCE forward (backward when {@code backward}) on the CPU or a CUDA device. */
  public static void cce(CceArgs args, boolean backward, boolean cuda) {
    ensureLoaded();
    long[] w = args.words();
    int status;
    if (cuda) {
      status = backward ? LlmkNative.llmk_cce_backward_cuda(w) : LlmkNative.llmk_cce_forward_cuda(w);
    } else {
      status = backward ? LlmkNative.llmk_cce_backward_cpu(w) : LlmkNative.llmk_cce_forward_cpu(w);
    }
    check(status);
  }

  /** Workspace bytes the CCE forward ({@code backward} false) or backward allocates for args. */
  public static long cceWorkspaceBytes(CceArgs args, boolean backward, boolean cuda) {
    ensureLoaded();
    long[] out = new long[1];
    int pass = backward ? 1 : 0;
    check(cuda ? LlmkNative.llmk_cce_workspace_bytes_cuda(args.words(), pass, out)
        : LlmkNative.llmk_cce_workspace_bytes_cpu(args.words(), pass, out));
    return out[0];
  }

  // ---- block layouts and sparse attention ----------------------------------------------------

  /** Layout pass 1 (classify, write the ptr arrays) on the CPU or a CUDA device. */
  public static void layoutCount(LayoutArgs args, boolean cuda) {
    ensureLoaded();
    check(cuda ? LlmkNative.llmk_layout_count_cuda(args.words()) : LlmkNative.llmk_layout_count_cpu(args.words()));
  }

  /** Layout pass 2 (write the index arrays) on the CPU or a CUDA device. */
  public static void layoutFill(LayoutArgs args, boolean cuda) {
    ensureLoaded();
    check(cuda ? LlmkNative.llmk_layout_fill_cuda(args.words()) : LlmkNative.llmk_layout_fill_cpu(args.words()));
  }

  /** Block-sparse attention forward on the CPU or a CUDA device. */
  public static void attentionForward(AttnArgs args, boolean cuda) {
    ensureLoaded();
    check(cuda ? LlmkNative.llmk_attn_forward_cuda(args.words()) : LlmkNative.llmk_attn_forward_cpu(args.words()));
  }

  /** Merges two attention states ({@code device} < 0: host addresses, CPU kernel). */
  public static void attentionMerge(
      int device, long outA, long lseA, long outB, long lseB, long out, long lse, long rows, long d, int dtype,
      long stream) {
    ensureLoaded();
    check(device < 0 ? LlmkNative.llmk_attn_merge_cpu(outA, lseA, outB, lseB, out, lse, rows, d, dtype)
        : LlmkNative.llmk_attn_merge_cuda(device, outA, lseA, outB, lseB, out, lse, rows, d, dtype, stream));
  }

  // ---- dynamic sparse prefill estimators -----------------------------------------------------

  /** F32 scores per (batch, query head) the method writes (llmk_prefill_scores_size). */
  public static long prefillScoresSize(PrefillArgs args) {
    ensureLoaded();
    long[] out = new long[1];
    check(LlmkNative.llmk_prefill_scores_size(args.words(), out));
    return out[0];
  }

  /** Per-head estimator scores (llmk_prefill_score_*) on the CPU or a CUDA device. */
  public static void prefillScore(PrefillArgs args, boolean cuda) {
    ensureLoaded();
    check(cuda ? LlmkNative.llmk_prefill_score_cuda(args.words()) : LlmkNative.llmk_prefill_score_cpu(args.words()));
  }

  /** Tile selection and head statistics from the scores (llmk_prefill_select_*). */
  public static void prefillSelect(PrefillArgs args, boolean cuda) {
    ensureLoaded();
    check(cuda ? LlmkNative.llmk_prefill_select_cuda(args.words())
        : LlmkNative.llmk_prefill_select_cpu(args.words()));
  }

  // ---- KV cache compaction -------------------------------------------------------------------

  /** Scores cached tokens (llmk_kv_score_*) on the CPU or a CUDA device. */
  public static void kvScore(KvScoreArgs args, boolean cuda) {
    ensureLoaded();
    check(cuda ? LlmkNative.llmk_kv_score_cuda(args.words()) : LlmkNative.llmk_kv_score_cpu(args.words()));
  }

  /** Per-head top-k selection (llmk_kv_select_*). */
  public static void kvSelect(KvSelectArgs args, boolean cuda) {
    ensureLoaded();
    check(cuda ? LlmkNative.llmk_kv_select_cuda(args.words()) : LlmkNative.llmk_kv_select_cpu(args.words()));
  }

  /** Decode attention over a per-head variable-length cache (llmk_kv_decode_attn_*). */
  public static void kvDecodeAttention(KvDecodeArgs args, boolean cuda) {
    ensureLoaded();
    check(cuda ? LlmkNative.llmk_kv_decode_attn_cuda(args.words()) : LlmkNative.llmk_kv_decode_attn_cpu(args.words()));
  }

  /** Out-of-place varlen compaction ({@code device} < 0: host addresses, CPU kernel). */
  public static void kvGatherVarlen(int device, long src, long kept, long cu, long dst, long b, long h, long n,
      long maxKeep, long rowBytes, long stream) {
    ensureLoaded();
    check(device < 0 ? LlmkNative.llmk_kv_gather_varlen_cpu(src, kept, cu, dst, b, h, n, maxKeep, rowBytes)
        : LlmkNative.llmk_kv_gather_varlen_cuda(device, src, kept, cu, dst, b, h, n, maxKeep, rowBytes, stream));
  }

  /** In-place hole-filling compaction ({@code device} < 0: host addresses, CPU kernel). */
  public static void kvCompactInPlace(int device, long cache, long kept, long counts, long b, long h, long capacity,
      long maxKeep, long rowBytes, long stream) {
    ensureLoaded();
    check(device < 0 ? LlmkNative.llmk_kv_compact_inplace_cpu(cache, kept, counts, b, h, capacity, maxKeep, rowBytes)
        : LlmkNative.llmk_kv_compact_inplace_cuda(device, cache, kept, counts, b, h, capacity, maxKeep, rowBytes,
            stream));
  }

  // ---- 2:4 sparse --------------------------------------------------------------------------
  // device < 0: host addresses and the CPU kernel; otherwise that CUDA device and stream.

  /** Prunes W to 2:4 (colScale 0: magnitude; else Wanda column scales); out may alias w. */
  public static void sp24Prune(int device, long w, long colScale, long out, long m, long k, int dtype, long stream) {
    ensureLoaded();
    check(device < 0 ? LlmkNative.llmk_sp24_prune_cpu(w, colScale, out, m, k, dtype)
        : LlmkNative.llmk_sp24_prune_cuda(device, w, colScale, out, m, k, dtype, stream));
  }

  /** {badRow, badGroup} of the first group with more than 2 non-zeros, or {-1, -1}. */
  public static long[] sp24Check(int device, long w, long m, long k, int dtype, long stream) {
    ensureLoaded();
    long[] row = {-1};
    long[] group = {-1};
    check(device < 0 ? LlmkNative.llmk_sp24_check_cpu(w, m, k, dtype, row, group)
        : LlmkNative.llmk_sp24_check_cuda(device, w, m, k, dtype, row, group, stream));
    return new long[] {row[0], group[0]};
  }

  /** W -> values + meta (fails naming row and group when W is not 2:4; nothing written). */
  public static void sp24Compress(int device, long w, long values, long meta, long m, long k, int dtype, long stream) {
    ensureLoaded();
    check(device < 0 ? LlmkNative.llmk_sp24_compress_cpu(w, values, meta, m, k, dtype)
        : LlmkNative.llmk_sp24_compress_cuda(device, w, values, meta, m, k, dtype, stream));
  }

  /** values + meta -> W. */
  public static void sp24Decompress(int device, long values, long meta, long w, long m, long k, int dtype,
      long stream) {
    ensureLoaded();
    check(device < 0 ? LlmkNative.llmk_sp24_decompress_cpu(values, meta, w, m, k, dtype)
        : LlmkNative.llmk_sp24_decompress_cuda(device, values, meta, w, m, k, dtype, stream));
  }

  /** Y = act(X W^T + bias) with a compressed 2:4 W. */
  public static void sp24Matmul(Sp24MatmulArgs args, boolean cuda) {
    ensureLoaded();
    check(cuda ? LlmkNative.llmk_sp24_matmul_cuda(args.words()) : LlmkNative.llmk_sp24_matmul_cpu(args.words()));
  }

  /** Y = act(X W^T + bias) with a dense W (the library's own dense baseline). */
  public static void denseMatmul(Sp24MatmulArgs args, boolean cuda) {
    ensureLoaded();
    check(cuda ? LlmkNative.llmk_dense_matmul_cuda(args.words()) : LlmkNative.llmk_dense_matmul_cpu(args.words()));
  }
}
