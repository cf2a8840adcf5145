package io.github.llmkernels.tensor;

import io.github.llmkernels.internal.NativeApi;

/** CUDA device memory: allocated with cudaMalloc (owned) or borrowed from a raw device address. */
final class DeviceMemory extends Memory {
  private final long address;

  private DeviceMemory(Device device, long address, long byteSize, Runnable release) {
    super(device, byteSize, release);
    this.address = address;
  }

  static DeviceMemory allocate(Device device, long bytes) {
    long address = NativeApi.cudaMalloc(device.index(), bytes);
    int ordinal = device.index();
    return new DeviceMemory(device, address, bytes, () -> NativeApi.cudaFree(ordinal, address));
  }

  static DeviceMemory borrow(Device device, long address, long bytes) {
    return new DeviceMemory(device, address, bytes, null);
  }

  @Override
  long address() {
    return address;
  }
}
