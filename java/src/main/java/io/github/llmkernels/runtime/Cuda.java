package io.github.llmkernels.runtime;

import io.github.llmkernels.internal.NativeApi;
import java.util.ArrayList;
import java.util.List;

/**
 * Availability of the CUDA backend (netty Epoll style). The probe runs once; it never throws on
 * a machine without a GPU, a driver or the natives: {@link #unavailabilityCause()} says which.
 */
public final class Cuda {
  private static final Throwable CAUSE = probe();

  private Cuda() {}

  private static Throwable probe() {
    try {
      if (!NativeApi.isLoaded()) {
        return new BackendUnavailableException(
            "CUDA unavailable: native library not loaded: " + NativeApi.loadFailure(), NativeApi.loadFailure());
      }
      if (!NativeApi.cudaCompiled()) {
        NativeApi.cudaDeviceCount(); // throws with the build-time reason
      }
      if (NativeApi.cudaDeviceCount() == 0) {
        return new BackendUnavailableException("CUDA unavailable: no CUDA device found", null);
      }
      return null;
    } catch (Throwable t) {
      return new BackendUnavailableException("CUDA unavailable: " + t.getMessage(), t);
    }
  }

  public static boolean isAvailable() {
    return CAUSE == null;
  }

  /** Why CUDA cannot be used (no natives, built without nvcc, no driver, no device), or null. */
  public static Throwable unavailabilityCause() {
    return CAUSE;
  }

  public static void ensureAvailability() {
    if (CAUSE != null) {
      throw new BackendUnavailableException(CAUSE.getMessage(), CAUSE.getCause());
    }
  }

  /** The CUDA targets compiled into the native library ("" when built without CUDA). */
  public static String compiledArchitectures() {
    return NativeApi.isLoaded() ? NativeApi.cudaCompiledArchs() : "";
  }

  public static int deviceCount() {
    return isAvailable() ? NativeApi.cudaDeviceCount() : 0;
  }

  /** All visible devices; empty (never an exception) when CUDA is unavailable. */
  public static List<CudaDeviceInfo> devices() {
    List<CudaDeviceInfo> out = new ArrayList<>();
    for (int i = 0; i < deviceCount(); i++) {
      NativeApi.DeviceInfo d = NativeApi.cudaDeviceInfo(i);
      out.add(new CudaDeviceInfo(
          i, d.name(), d.ccMajor(), d.ccMinor(), d.totalBytes(), d.multiprocessors(), d.driverVersion(),
          d.runtimeVersion()));
    }
    return out;
  }

  /** 13000 -> "13.0". */
  static String formatVersion(int v) {
    return (v / 1000) + "." + (v % 1000 / 10);
  }
}
