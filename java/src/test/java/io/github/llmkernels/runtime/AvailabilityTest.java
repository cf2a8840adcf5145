package io.github.llmkernels.runtime;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.testing.TestBackends;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

class AvailabilityTest {

  @Test
  void probesNeverThrow() {
    assertDoesNotThrow(NativeCpu::isAvailable);
    assertDoesNotThrow(Cuda::isAvailable);
    assertDoesNotThrow(Cuda::devices);
    assertDoesNotThrow(Cuda::deviceCount);
    assertDoesNotThrow(Cuda::compiledArchitectures);
  }

  @Test
  void causeIsNullExactlyWhenAvailable() {
    assertEquals(NativeCpu.isAvailable(), NativeCpu.unavailabilityCause() == null);
    assertEquals(Cuda.isAvailable(), Cuda.unavailabilityCause() == null);
    if (!Cuda.isAvailable()) {
      assertTrue(Cuda.unavailabilityCause().getMessage().startsWith("CUDA unavailable: "),
          Cuda.unavailabilityCause().getMessage());
      assertEquals(List.of(), Cuda.devices());
      assertThrows(BackendUnavailableException.class, Cuda::ensureAvailability);
    }
  }

  @Test
  void nativeLibraryReportsItsVariant() {
    TestBackends.assumeNative();
    assertNull(NativeCpu.unavailabilityCause());
    assertTrue(Set.of("avx512", "avx2", "x86-64").contains(NativeCpu.variant()), NativeCpu.variant());
    assertTrue(NativeCpu.supportsVariant("x86-64"), "every x86-64 CPU runs the baseline");
    assertFalse(NativeCpu.supportsVariant("no-such-isa"));
    assertThrows(IllegalArgumentException.class, () -> NativeCpu.useVariant("no-such-isa"));
    assertTrue(NativeCpu.threads() >= 1);
    assertEquals("0.1.0", NativeCpu.version());
  }

  @Test
  void compiledArchitecturesNameTheTargetsWhenBuiltWithCuda() {
    TestBackends.assumeNative();
    String archs = Cuda.compiledArchitectures();
    if (TestBackends.emulated()) {
      assertEquals("emulated", archs, "the emulated build (-Pcuda-emulated) names no real target");
    } else if (!archs.isEmpty()) {
      assertTrue(archs.contains("sm_"), archs);
    } else {
      assertTrue(Cuda.unavailabilityCause().getMessage().contains("without CUDA"));
    }
  }

  @Tag("gpu")
  @Test
  void devicesDescribeTheGpu() {
    TestBackends.assumeCuda();
    List<CudaDeviceInfo> devices = Cuda.devices();
    assertFalse(devices.isEmpty());
    CudaDeviceInfo d = devices.get(0);
    assertNotNull(d.name());
    assertTrue(d.computeCapabilityMajor() >= 8, d.toString());
    assertTrue(d.totalMemoryBytes() > 0 && d.multiprocessors() > 0 && d.runtimeVersion() >= 13000, d.toString());
  }

  @Tag("gpu")
  @Test
  void streamsAndEventsTimeWork() {
    TestBackends.assumeCuda();
    try (CudaStream s = CudaStream.create(0);
        CudaEvent start = CudaEvent.create(0);
        CudaEvent end = CudaEvent.create(0)) {
      start.record(s);
      end.record(s);
      end.synchronize();
      assertTrue(CudaEvent.elapsedMillis(start, end) >= 0);
      s.synchronize();
    }
  }
}
