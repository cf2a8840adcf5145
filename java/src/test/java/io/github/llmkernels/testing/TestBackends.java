package io.github.llmkernels.testing;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.NativeCpu;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

/** Backends a parity test can run here, and the skip-with-reason rules for the others. */
public final class TestBackends {
  /**
   * llmk.cudaEmulated, which -Pcuda-emulated sets: the build made the emulated library, so the gpu
   * tests must run on its device (a missing CUDA backend fails them instead of skipping them).
   */
  private static final boolean EXPECT_EMULATED = Boolean.getBoolean("llmk.cudaEmulated");

  private TestBackends() {}

  /**
   * True when the CUDA backend is the SIMT emulator (cuda/emulator, built with -Pcuda-emulated):
   * every CUDA thread is a fiber on the CPU, so kernels run correctly but far slower than on a GPU,
   * and the device is no real one (compiled architectures "emulated").
   */
  public static boolean emulated() {
    return EXPECT_EMULATED || (Cuda.isAvailable() && "emulated".equals(Cuda.compiledArchitectures()));
  }

  /** Host backends that can run: JAVA always, NATIVE when the library loaded. */
  public static List<Backend> host() {
    List<Backend> out = new ArrayList<>(List.of(Backend.JAVA));
    if (NativeCpu.isAvailable()) {
      out.add(Backend.NATIVE);
    }
    return out;
  }

  /**
   * Fails (does not skip) when the build was expected to produce natives: a test run that
   * silently fell back to JAVA would prove nothing about the native kernels.
   */
  public static void requireNativeUnlessSkipped() {
    if (!Boolean.getBoolean("llmk.skipNatives")) {
      Assertions.assertTrue(NativeCpu.isAvailable(),
          "native library did not load (run with -Dllmk.skipNatives=true for a Java-only build): "
              + NativeCpu.unavailabilityCause());
    }
  }

  public static void assumeNative() {
    Assumptions.assumeTrue(NativeCpu.isAvailable(), () -> "native library unavailable: " + NativeCpu.unavailabilityCause());
  }

  public static void assumeCuda() {
    if (EXPECT_EMULATED) {
      Assertions.assertTrue(Cuda.isAvailable(),
          () -> "-Pcuda-emulated built the emulated CUDA library, but CUDA is unavailable: "
              + Cuda.unavailabilityCause().getMessage());
    }
    Assumptions.assumeTrue(Cuda.isAvailable(), () -> "skipped: " + Cuda.unavailabilityCause().getMessage());
  }
}
