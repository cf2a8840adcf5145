package io.github.llmkernels.tensor;

import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.runtime.CudaStream;
import java.lang.ref.Reference;
import java.util.Arrays;
import java.util.Objects;

/**
 * The copy and conversion machinery behind {@link Tensor#copyFrom}, {@link Tensor#copyFromAsync}
 * and {@link Tensor#convertFrom}: host, device and host<->device paths, overlap handling
 * (memmove semantics), and reachability of both tensors while native code runs.
 */
final class TensorCopies {
  private TensorCopies() {}

  /** dst := src (same dtype and shape); waits for device copies when synchronize is set. */
  static void copy(Tensor dst, Tensor src, CudaStream stream, boolean synchronize) {
    Objects.requireNonNull(src, "src");
    src.requireOpen("src");
    dst.requireOpen("dst");
    if (src.dtype() != dst.dtype() || !Arrays.equals(src.shape, dst.shape)) {
      throw new IllegalArgumentException("copy needs equal dtype and shape: src " + src.dtype()
          + Shapes.format(src.shape) + ", dst " + dst.dtype() + Shapes.format(dst.shape));
    }
    if (dst.overlaps(src)) {
      if (dst.memory == src.memory && dst.byteOffset == src.byteOffset && Arrays.equals(dst.strides, src.strides)) {
        return; // copying a tensor onto itself
      }
      try (Tensor staged = src.contiguous()) { // memmove semantics: read everything first
        copy(dst, staged, stream, true);
      }
      return;
    }
    try {
      boolean srcCuda = src.memory.device.isCuda();
      boolean dstCuda = dst.memory.device.isCuda();
      if (!srcCuda && !dstCuda) {
        copyHost(dst, src);
        return;
      }
      src.requireContiguous("src");
      dst.requireContiguous("dst");
      int kind = srcCuda && dstCuda ? NativeApi.D2D : srcCuda ? NativeApi.D2H : NativeApi.H2D;
      int device = dstCuda ? dst.memory.device.index() : src.memory.device.index();
      NativeApi.cudaMemcpy(device, dst.address(), src.address(), dst.byteSize(), kind,
          stream == null ? 0 : stream.handle(), synchronize);
    } finally {
      // The native call reads raw addresses: neither tensor may become unreachable (and have its
      // memory freed by the Cleaner) before it returns.
      Reference.reachabilityFence(src);
      Reference.reachabilityFence(dst);
    }
  }

  private static void copyHost(Tensor dst, Tensor src) {
    if (dst.contiguous && src.contiguous) {
      if (NativeApi.isLoaded() && dst.hasAddress() && src.hasAddress()) {
        NativeApi.copyCpu(dst.address(), src.address(), dst.byteSize());
      } else {
        dst.host().copyFrom(src.host(), src.byteOffset, dst.byteOffset, dst.byteSize());
      }
      return;
    }
    HostMemory m = dst.host();
    int elementBytes = dst.dtype().byteSize();
    for (long i = 0; i < dst.numel(); i++) { // strided: element by element, bits preserved
      long bits = src.getBits(i);
      long o = dst.offsetOf(i);
      switch (elementBytes) {
        case 1 -> m.putByte(o, (byte) bits);
        case 2 -> m.putShort(o, (short) bits);
        case 4 -> m.putInt(o, (int) bits);
        default -> m.putLong(o, bits);
      }
    }
  }

  /** dst := src converted between F32, F16 and BF16 (dst a contiguous host tensor). */
  static void convert(Tensor dst, Tensor src) {
    Objects.requireNonNull(src, "src");
    src.requireOpen("src");
    dst.requireOpen("dst");
    Tensor.requireDType("src", src.dtype(), DType.F32, DType.F16, DType.BF16);
    Tensor.requireDType("dst", dst.dtype(), DType.F32, DType.F16, DType.BF16);
    if (!Arrays.equals(src.shape, dst.shape)) {
      throw new IllegalArgumentException("convertFrom needs equal shapes: src " + Shapes.format(src.shape)
          + ", dst " + Shapes.format(dst.shape));
    }
    dst.host();
    dst.requireContiguous("dst");
    if (dst.overlaps(src) || src.memory.device.isCuda() || !src.contiguous) {
      try (Tensor staged = src.to(Device.CPU)) {
        convert(dst, staged);
      }
      return;
    }
    try {
      boolean oneSideF32 = (src.dtype() == DType.F32) != (dst.dtype() == DType.F32);
      if (oneSideF32 && NativeApi.isLoaded() && src.hasAddress() && dst.hasAddress()) {
        NativeApi.convertCpu(src.address(), src.dtype().code(), dst.address(), dst.dtype().code(), dst.numel());
      } else {
        for (long i = 0; i < dst.numel(); i++) {
          dst.setDouble(i, src.getDouble(i));
        }
      }
    } finally {
      Reference.reachabilityFence(src);
      Reference.reachabilityFence(dst);
    }
  }
}
