package io.github.llmkernels.runtime;

/**
 * One CUDA device as the runtime reports it.
 *
 * @param index device ordinal
 * @param name e.g. "NVIDIA H100 80GB HBM3"
 * @param computeCapabilityMajor e.g. 9 for sm_90
 * @param computeCapabilityMinor e.g. 0 for sm_90
 * @param totalMemoryBytes global memory
 * @param multiprocessors SM count
 * @param driverVersion CUDA driver API version, e.g. 13000 for 13.0
 * @param runtimeVersion CUDA runtime version linked into the library, e.g. 13000
 */
public record CudaDeviceInfo(
    int index,
    String name,
    int computeCapabilityMajor,
    int computeCapabilityMinor,
    long totalMemoryBytes,
    int multiprocessors,
    int driverVersion,
    int runtimeVersion) {

  /** "sm_90" style name of the compute capability. */
  public String smName() {
    return "sm_" + computeCapabilityMajor + computeCapabilityMinor;
  }

  @Override
  public String toString() {
    return String.format(
        "cuda:%d %s (%s, %d SMs, %.1f GiB, driver %s, runtime %s)",
        index, name, smName(), multiprocessors, totalMemoryBytes / (double) (1L << 30),
        Cuda.formatVersion(driverVersion), Cuda.formatVersion(runtimeVersion));
  }
}
