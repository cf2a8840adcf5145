package io.github.llmkernels.torch;

import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.WeakHashMap;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.PointerConsumer;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.DeviceType;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Zero-copy conversions between Bytedeco PyTorch tensors ({@code org.bytedeco.pytorch.Tensor})
 * and this library's {@link Tensor}, on the host and on CUDA devices.
 *
 * <p>DTypes: float32 {@code <->} F32, float16 {@code <->} F16, bfloat16 {@code <->} BF16,
 * int32 {@code <->} I32, int64 {@code <->} I64, int8 {@code <->} I8, uint8 {@code <->} U8,
 * uint16 {@code <->} U16. Anything else (float64, bool, complex, quantized, float8) is an
 * {@link IllegalArgumentException} naming the dtype; convert it in torch first.
 *
 * <p>Lifetimes:
 * <ul>
 *   <li>{@link #wrap}: the library tensor keeps the torch tensor (and so its storage) reachable
 *       for as long as the wrapper, or any view of a contiguous host wrapper, is reachable.
 *       Closing the wrapper frees nothing. Torch may still free or resize the storage if the
 *       torch side does so explicitly (e.g. {@code resize_}, {@code set_}); don't.
 *   <li>{@link #toTorch}: the torch tensor's deleter keeps the library tensor from being
 *       garbage-collected until torch frees the storage. It cannot stop an explicit
 *       {@link Tensor#close()}: do not close the library tensor (or its owner) while the torch
 *       view is in use.
 * </ul>
 * Device tensors are wrapped by address; the caller orders work on streams as usual (see
 * {@link TorchStreams}).
 */
public final class TorchTensors {
  private TorchTensors() {}

  /** Torch tensors kept reachable by the library tensors that wrap them (strided or device ones). */
  private static final Map<Tensor, org.bytedeco.pytorch.Tensor> WRAPPED =
      Collections.synchronizedMap(new WeakHashMap<>());

  /** Library tensors pinned by live torch views, by data address (released by the deleter). */
  private static final Map<Long, ArrayDeque<Tensor>> PINNED = new HashMap<>();

  /** The one deleter of {@link #toTorch}; a static field, so the native callback never goes away. */
  private static final Unpin UNPIN = new Unpin();

  /** The library dtype of a torch scalar type. */
  public static DType dtypeOf(ScalarType type) {
    Objects.requireNonNull(type, "type");
    // JavaCPP may hand back a fresh enum object for a native return value: intern() gives the constant.
    return switch (type.intern()) {
      case Float -> DType.F32;
      case Half -> DType.F16;
      case BFloat16 -> DType.BF16;
      case Int -> DType.I32;
      case Long -> DType.I64;
      case Char -> DType.I8;
      case Byte -> DType.U8;
      case UInt16 -> DType.U16;
      default -> throw new IllegalArgumentException("torch dtype " + type + " is not supported: the library "
          + "takes Float, Half, BFloat16, Int, Long, Char (int8), Byte (uint8) and UInt16; convert it first "
          + "(e.g. t.to(ScalarType.Float))");
    };
  }

  /** The torch scalar type of a library dtype. */
  public static ScalarType scalarTypeOf(DType dtype) {
    Objects.requireNonNull(dtype, "dtype");
    return switch (dtype) {
      case F32 -> ScalarType.Float;
      case F16 -> ScalarType.Half;
      case BF16 -> ScalarType.BFloat16;
      case I32 -> ScalarType.Int;
      case I64 -> ScalarType.Long;
      case I8 -> ScalarType.Char;
      case U8 -> ScalarType.Byte;
      case U16 -> ScalarType.UInt16;
    };
  }

  /** The library device of a torch device (CPU or CUDA with its index). */
  public static Device deviceOf(org.bytedeco.pytorch.Device device) {
    Objects.requireNonNull(device, "device");
    if (device.is_cpu()) {
      return Device.CPU;
    }
    if (device.is_cuda()) {
      return Device.cuda(device.has_index() ? device.index() : 0);
    }
    throw new IllegalArgumentException("torch device " + device.str().getString()
        + " is not supported: the library takes cpu and cuda tensors");
  }

  /** The torch device of a library device. */
  public static org.bytedeco.pytorch.Device torchDevice(Device device) {
    Objects.requireNonNull(device, "device");
    return device.isCuda() ? new org.bytedeco.pytorch.Device(DeviceType.CUDA, (byte) device.index())
        : new org.bytedeco.pytorch.Device(DeviceType.CPU);
  }

  /**
   * A library tensor over the torch tensor's memory (no copy): same dtype, shape, strides and
   * device, starting at its storage offset. Strided views (transposes, slices, expands) keep
   * their strides; kernels that need contiguous input reject them with a message naming the
   * argument. Throws {@link IllegalArgumentException} for an undefined, sparse or non-CPU/CUDA
   * tensor and for an unsupported dtype.
   */
  public static Tensor wrap(org.bytedeco.pytorch.Tensor t) {
    checkWrappable(t);
    DType dtype = dtypeOf(t.scalar_type());
    Device device = deviceOf(t.device());
    long[] shape = sizesOf(t);
    long[] strides = stridesOf(t);
    long numel = t.numel();
    Pointer data = t.data_ptr();
    long address = data == null ? 0 : data.address();
    if (numel == 0 || address == 0) {
      if (numel != 0) {
        throw new IllegalArgumentException("torch tensor of shape " + Arrays.toString(shape)
            + " has no data pointer (a meta or lazy tensor?)");
      }
      return Tensor.allocate(dtype, device, shape); // nothing to share
    }
    if (!device.isCuda() && t.is_contiguous()) {
      // Host and contiguous: the memory itself holds the torch tensor, so views of the
      // wrapper keep it alive too.
      return Tensor.wrap(new TorchData(data, t), dtype, shape);
    }
    long lastElement = 0;
    for (int i = 0; i < shape.length; i++) {
      lastElement += (shape[i] - 1) * strides[i];
    }
    long byteCapacity = (lastElement + 1) * dtype.byteSize();
    Tensor wrapper = Tensor.wrapAddress(address, byteCapacity, device, dtype, shape, strides);
    WRAPPED.put(wrapper, t);
    return wrapper;
  }

  /**
   * As {@link #wrap}, but requires a contiguous (row-major, no gaps) torch tensor, naming the
   * argument in the {@link IllegalArgumentException} otherwise.
   */
  public static Tensor wrapContiguous(String name, org.bytedeco.pytorch.Tensor t) {
    checkWrappable(t);
    if (!t.is_contiguous()) {
      throw new IllegalArgumentException(name + " must be a contiguous torch tensor (row-major, no gaps); got sizes "
          + Arrays.toString(sizesOf(t)) + " with strides " + Arrays.toString(stridesOf(t))
          + "; call contiguous() on it first");
    }
    return wrap(t);
  }

  /** The sizes of a torch tensor. */
  public static long[] sizesOf(org.bytedeco.pytorch.Tensor t) {
    long[] out = new long[(int) t.dim()];
    for (int i = 0; i < out.length; i++) {
      out[i] = t.size(i);
    }
    return out;
  }

  /** The strides of a torch tensor, in elements. */
  public static long[] stridesOf(org.bytedeco.pytorch.Tensor t) {
    long[] out = new long[(int) t.dim()];
    for (int i = 0; i < out.length; i++) {
      out[i] = t.stride(i);
    }
    return out;
  }

  private static void checkWrappable(org.bytedeco.pytorch.Tensor t) {
    if (t == null || t.isNull()) {
      throw new IllegalArgumentException("torch tensor must not be null");
    }
    if (!t.defined()) {
      throw new IllegalArgumentException("torch tensor must be defined (this one is an undefined Tensor())");
    }
    torch.Layout layout = t.layout().intern();
    if (t.is_sparse() || layout != torch.Layout.Strided) {
      throw new IllegalArgumentException("torch tensor must have the strided layout, got " + layout);
    }
  }

  /**
   * A torch tensor over the library tensor's memory (no copy) with the same sizes, strides,
   * dtype and device. The torch tensor's deleter keeps {@code t} reachable until torch releases
   * the storage; do not {@link Tensor#close()} {@code t} while the torch tensor is in use.
   */
  public static org.bytedeco.pytorch.Tensor toTorch(Tensor t) {
    Objects.requireNonNull(t, "tensor");
    t.requireOpen("tensor");
    if (!t.hasAddress()) {
      throw new IllegalArgumentException("tensor has no raw address (JDK-allocated host memory); "
          + "allocate it with the native library loaded, or copy it into a wrapped buffer first");
    }
    long[] shape = t.shape();
    long[] strides = t.strides();
    TensorOptions options = new TensorOptions(scalarTypeOf(t.dtype()))
        .device(new DeviceOptional(torchDevice(t.device())));
    long address = t.address();
    if (t.numel() == 0) {
      return torch.empty(shape, options, new MemoryFormatOptional());
    }
    synchronized (PINNED) {
      PINNED.computeIfAbsent(address, a -> new ArrayDeque<>()).add(t);
    }
    try {
      return torch.from_blob(new RawPointer(address), shape, strides, UNPIN, options, new DeviceOptional());
    } catch (RuntimeException e) {
      unpin(address);
      throw e;
    }
  }

  /** Number of library tensors currently pinned by torch views (for tests and diagnostics). */
  public static int pinnedCount() {
    synchronized (PINNED) {
      return PINNED.values().stream().mapToInt(ArrayDeque::size).sum();
    }
  }

  private static void unpin(long address) {
    synchronized (PINNED) {
      ArrayDeque<Tensor> q = PINNED.get(address);
      if (q != null) {
        q.poll();
        if (q.isEmpty()) {
          PINNED.remove(address);
        }
      }
    }
  }

  /** Deleter of {@link #toTorch}'s storages: releases one pin of that address. */
  private static final class Unpin extends PointerConsumer {
    @Override
    public void call(Pointer data) {
      unpin(data == null ? 0 : data.address());
    }
  }

  /** A raw address as a JavaCPP pointer. */
  private static final class RawPointer extends Pointer {
    RawPointer(long address) {
      this.address = address;
    }
  }

  /** The torch data pointer, holding the torch tensor that owns the storage. */
  private static final class TorchData extends Pointer {
    @SuppressWarnings("unused")
    private final org.bytedeco.pytorch.Tensor owner;

    TorchData(Pointer data, org.bytedeco.pytorch.Tensor owner) {
      super(data);
      this.owner = owner;
    }
  }
}
