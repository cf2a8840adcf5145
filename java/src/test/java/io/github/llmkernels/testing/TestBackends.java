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
  private TestBackends() {}

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
    Assumptions.assumeTrue(Cuda.isAvailable(), () -> "skipped: " + Cuda.unavailabilityCause().getMessage());
  }
}
