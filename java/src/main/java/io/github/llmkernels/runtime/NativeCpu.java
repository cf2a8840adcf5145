package io.github.llmkernels.runtime;

import io.github.llmkernels.internal.NativeApi;

/**
 * Availability of the native CPU backend (netty Epoll style): never throws on a machine without
 * the natives jar, it records why instead.
 */
public final class NativeCpu {
  private NativeCpu() {}

  public static boolean isAvailable() {
    return NativeApi.isLoaded();
  }

  /** Why the native library could not be loaded, or null when it is available. */
  public static Throwable unavailabilityCause() {
    return NativeApi.loadFailure();
  }

  /** Throws {@link BackendUnavailableException} (with the cause) when unavailable. */
  public static void ensureAvailability() {
    NativeApi.ensureLoaded();
  }

  /** Native library version, e.g. "0.1.0". */
  public static String version() {
    return NativeApi.version();
  }

  /** CPU variant the kernels run: "avx512", "avx2" or "x86-64" (chosen at load time). */
  public static String variant() {
    return NativeApi.cpuVariant();
  }

  /** Whether this CPU can run the named variant. */
  public static boolean supportsVariant(String variant) {
    return NativeApi.cpuSupportsVariant(variant);
  }

  /**
   * Forces a CPU variant for the whole process (tests and benchmarks of the narrower paths).
   *
   * @throws IllegalArgumentException for an unknown name
   * @throws BackendUnavailableException if this CPU cannot run it
   */
  public static void useVariant(String variant) {
    NativeApi.setCpuVariant(variant);
  }

  /** OpenMP threads the native kernels use (OMP_NUM_THREADS sets it). */
  public static int threads() {
    return NativeApi.cpuThreads();
  }
}
