package io.github.llmkernels.bench;

import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.CudaDeviceInfo;
import io.github.llmkernels.runtime.NativeCpu;
import java.io.PrintStream;

/** The `info` command: what this JVM can run and why not. */
final class Info {
  private Info() {}

  static void print(PrintStream out) {
    out.println("== llm-kernels info");
    out.printf("JVM      %s %s (%s), %s %s, %d cores%n", System.getProperty("java.vm.name"),
        System.getProperty("java.version"), System.getProperty("java.vendor"), System.getProperty("os.name"),
        System.getProperty("os.arch"), Runtime.getRuntime().availableProcessors());
    if (NativeCpu.isAvailable()) {
      out.printf("native   libllmkernels %s loaded; CPU variant %s (avx512 %s, avx2 %s); %d OpenMP threads%n",
          NativeCpu.version(), NativeCpu.variant(), yesNo(NativeCpu.supportsVariant("avx512")),
          yesNo(NativeCpu.supportsVariant("avx2")), NativeCpu.threads());
    } else {
      out.println("native   unavailable: " + NativeCpu.unavailabilityCause());
    }
    String archs = Cuda.compiledArchitectures();
    out.println("cuda     compiled targets: " + (archs.isEmpty() ? "none" : archs));
    if (Cuda.isAvailable()) {
      for (CudaDeviceInfo d : Cuda.devices()) {
        out.println("cuda     " + d);
      }
    } else {
      out.println("cuda     " + Cuda.unavailabilityCause().getMessage());
    }
  }

  private static String yesNo(boolean b) {
    return b ? "yes" : "no";
  }
}
