package io.github.llmkernels.tensor;

import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.internal.RawMemory;
import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.CudaStream;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import org.bytedeco.javacpp.Pointer;

/**
 * An n-dimensional array on the host or a CUDA device: dtype, shape, strides (in elements, all
 * >= 0, checked against the memory's size) and a byte offset into shared {@link Memory}.
 *
 * <p>Lifetime: tensors that allocate own their memory and free it on {@link #close()}; a Cleaner
 * frees it if a caller forgets (a safety net, not a plan: native memory is invisible to the GC).
 * Views ({@link #view}, {@link #slice}) and wrapped memory (buffers, pointers, addresses) never
 * free anything. Any use after close throws {@link IllegalStateException}; closing the owner also
 * closes its views. Kernels read and write through raw addresses, so do not close a tensor while
 * a kernel that uses it runs on another thread.
 *
 * <p>Element accessors ({@link #getDouble(long)} and friends) take the logical row-major index
 * and follow the strides; they are for tests, references and small data, not for hot loops.
 */
public final class Tensor implements AutoCloseable {
  final Memory memory;
  private final boolean owner;
  final long byteOffset;
  private final DType dtype;
  final long[] shape;
  final long[] strides;
  private final long numel;
  private final long byteSize;
  final boolean contiguous;
  private final AtomicBoolean closed = new AtomicBoolean();

  private Tensor(Memory memory, boolean owner, long byteOffset, DType dtype, long[] shape, long[] strides) {
    this.memory = memory;
    this.owner = owner;
    this.byteOffset = byteOffset;
    this.dtype = Objects.requireNonNull(dtype, "dtype");
    this.shape = shape.clone();
    this.strides = strides.clone();
    this.numel = Shapes.numel(this.shape);
    this.byteSize = Shapes.byteSize(numel, dtype);
    if (this.shape.length != this.strides.length) {
      throw new IllegalArgumentException(
          "strides " + Arrays.toString(strides) + " must have one entry per dimension of shape " + Shapes.format(shape));
    }
    checkFitsMemory();
    this.contiguous = Shapes.isContiguous(this.shape, this.strides) || numel <= 1;
  }

  private void checkFitsMemory() {
    if (byteOffset < 0 || byteOffset % dtype.byteSize() != 0) {
      throw new IllegalArgumentException("byte offset " + byteOffset + " must be >= 0 and a multiple of "
          + dtype.byteSize() + " (the size of " + dtype + ")");
    }
    if (numel == 0) {
      return;
    }
    long lastElement = 0;
    try {
      for (int i = 0; i < shape.length; i++) {
        if (strides[i] < 0) {
          throw new IllegalArgumentException("strides must be >= 0 (negative strides are not supported), got "
              + Arrays.toString(strides));
        }
        lastElement = Math.addExact(lastElement, Math.multiplyExact(shape[i] - 1, strides[i]));
      }
      long end = Math.addExact(byteOffset, Math.multiplyExact(lastElement + 1, (long) dtype.byteSize()));
      if (end > memory.byteSize) {
        throw new IllegalArgumentException("shape " + Shapes.format(shape) + " with strides " + Arrays.toString(strides)
            + " of " + dtype + " needs " + end + " bytes but the memory holds " + memory.byteSize);
      }
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException("shape " + Shapes.format(shape) + " with strides "
          + Arrays.toString(strides) + ": byte extent overflows a long", e);
    }
  }

  // ---- creation ----------------------------------------------------------------------------

  /** Uninitialised contiguous tensor (host: native allocator, or zeroed JDK memory without it). */
  public static Tensor allocate(DType dtype, Device device, long... shape) {
    long bytes = Shapes.byteSize(Shapes.numel(shape), dtype);
    Memory memory;
    if (device.isCuda()) {
      Cuda.ensureAvailability();
      memory = DeviceMemory.allocate(device, bytes);
    } else {
      memory = HostMemory.allocate(bytes);
    }
    return new Tensor(memory, true, 0, dtype, shape, Shapes.contiguousStrides(shape));
  }

  /** Zero-filled contiguous tensor. */
  public static Tensor zeros(DType dtype, Device device, long... shape) {
    Tensor t = allocate(dtype, device, shape);
    try {
      if (device.isCuda()) {
        NativeApi.cudaMemset(device.index(), t.address(), 0, t.byteSize(), 0);
        NativeApi.cudaStreamSynchronize(device.index(), 0);
      } else {
        ((HostMemory) t.memory).zero(0, t.byteSize());
      }
      return t;
    } catch (RuntimeException e) {
      t.close();
      throw e;
    }
  }

  /** F32 host tensor holding a copy of data. */
  public static Tensor of(float[] data, long... shape) {
    return hostCopy(DType.F32, data.length, shape, (m, i) -> m.putFloat(4L * i, data[i]));
  }

  /** I32 host tensor holding a copy of data. */
  public static Tensor of(int[] data, long... shape) {
    return hostCopy(DType.I32, data.length, shape, (m, i) -> m.putInt(4L * i, data[i]));
  }

  /** I64 host tensor holding a copy of data. */
  public static Tensor of(long[] data, long... shape) {
    return hostCopy(DType.I64, data.length, shape, (m, i) -> m.putLong(8L * i, data[i]));
  }

  /** Host tensor of a 16-bit dtype (F16, BF16 or U16) holding a copy of the raw bits. */
  public static Tensor ofBits(short[] bits, DType dtype, long... shape) {
    requireDType("bits", dtype, DType.F16, DType.BF16, DType.U16);
    return hostCopy(dtype, bits.length, shape, (m, i) -> m.putShort(2L * i, bits[i]));
  }

  /** Host tensor of an 8-bit dtype (I8 or U8) holding a copy of data. */
  public static Tensor of(byte[] data, DType dtype, long... shape) {
    requireDType("data", dtype, DType.I8, DType.U8);
    return hostCopy(dtype, data.length, shape, (m, i) -> m.putByte(i, data[i]));
  }

  /** Writes element i of a Java array into freshly allocated host memory. */
  private interface ElementWriter {
    void write(HostMemory memory, int i);
  }

  private static Tensor hostCopy(DType dtype, int length, long[] shape, ElementWriter writer) {
    Tensor t = allocateFor(dtype, length, shape);
    HostMemory m = t.host();
    for (int i = 0; i < length; i++) {
      writer.write(m, i);
    }
    return t;
  }

  /** Host tensor of a floating dtype from floats (F16/BF16 round to nearest even). */
  public static Tensor fromFloats(float[] data, DType dtype, long... shape) {
    requireDType("dtype", dtype, DType.F32, DType.F16, DType.BF16);
    Tensor t = allocateFor(dtype, data.length, shape);
    for (int i = 0; i < data.length; i++) {
      t.setDouble(i, data[i]);
    }
    return t;
  }

  private static Tensor allocateFor(DType dtype, int length, long[] shape) {
    long n = Shapes.numel(shape);
    if (n != length) {
      throw new IllegalArgumentException(
          "data has " + length + " elements but shape " + Shapes.format(shape) + " needs " + n);
    }
    return allocate(dtype, Device.CPU, shape);
  }

  /**
   * Borrows a direct buffer's bytes from its position to its limit (read as little-endian).
   * The tensor keeps the buffer reachable; closing the tensor does not free it.
   */
  public static Tensor wrap(ByteBuffer direct, DType dtype, long... shape) {
    Objects.requireNonNull(direct, "buffer");
    if (!direct.isDirect()) {
      throw new IllegalArgumentException("buffer must be a direct ByteBuffer (heap buffers move in memory)");
    }
    if (direct.isReadOnly()) {
      throw new IllegalArgumentException("buffer must be writable: kernels write through raw addresses, "
          + "so read-only buffers are not accepted");
    }
    HostMemory m = HostMemory.borrow(direct);
    return new Tensor(m, false, 0, dtype, shape, Shapes.contiguousStrides(shape));
  }

  /** Borrows a JavaCPP pointer's memory from its position (host memory). */
  public static Tensor wrap(Pointer pointer, DType dtype, long... shape) {
    Objects.requireNonNull(pointer, "pointer");
    if (pointer.isNull()) {
      throw new IllegalArgumentException("pointer must not be null");
    }
    long bytes = Shapes.byteSize(Shapes.numel(shape), dtype);
    long available = (pointer.limit() - pointer.position()) * pointer.sizeof();
    if (pointer.limit() > 0 && available < bytes) {
      throw new IllegalArgumentException(
          "pointer holds " + available + " bytes past its position but shape " + Shapes.format(shape) + " of "
              + dtype + " needs " + bytes);
    }
    HostMemory m = HostMemory.borrow(RawMemory.addressOf(pointer), bytes, pointer);
    return new Tensor(m, false, 0, dtype, shape, Shapes.contiguousStrides(shape));
  }

  /**
   * Borrows raw memory the caller owns and keeps alive: {@code byteCapacity} bytes at
   * {@code address} on {@code device}, viewed with the given shape and strides (in elements;
   * null for contiguous). Nothing is freed on close.
   */
  public static Tensor wrapAddress(
      long address, long byteCapacity, Device device, DType dtype, long[] shape, long[] strides) {
    if (address == 0) {
      throw new IllegalArgumentException("address must not be 0");
    }
    if (byteCapacity < 0) {
      throw new IllegalArgumentException("byteCapacity must be >= 0, got " + byteCapacity);
    }
    Memory m = device.isCuda()
        ? DeviceMemory.borrow(device, address, byteCapacity)
        : HostMemory.borrow(address, byteCapacity, null);
    return new Tensor(m, false, 0, dtype, shape, strides == null ? Shapes.contiguousStrides(shape) : strides);
  }

  // ---- metadata ----------------------------------------------------------------------------

  public DType dtype() {
    return dtype;
  }

  public Device device() {
    return memory.device;
  }

  public long[] shape() {
    return shape.clone();
  }

  public long shape(int dim) {
    return shape[dim];
  }

  public long[] strides() {
    return strides.clone();
  }

  public int rank() {
    return shape.length;
  }

  public long numel() {
    return numel;
  }

  /** numel x element size (the bytes a contiguous copy would hold; overflow-checked at creation). */
  public long byteSize() {
    return byteSize;
  }

  /** Row-major with no gaps; kernels that need it check with {@link #requireContiguous}. */
  public boolean isContiguous() {
    return contiguous;
  }

  public boolean isClosed() {
    return closed.get() || memory.isClosed();
  }

  /** Throws {@link IllegalStateException} naming the argument if this tensor is closed. */
  public Tensor requireOpen(String name) {
    if (isClosed()) {
      throw new IllegalStateException(name + " is closed");
    }
    return this;
  }

  /** Throws {@link IllegalArgumentException} naming the argument unless contiguous. */
  public Tensor requireContiguous(String name) {
    if (!contiguous) {
      throw new IllegalArgumentException(name + " must be contiguous (row-major, no gaps); got shape "
          + Shapes.format(shape) + " with strides " + Arrays.toString(strides) + "; copy it with contiguous()");
    }
    return this;
  }

  /** Raw address of the first element (host or device). */
  public long address() {
    requireOpen("tensor");
    return memory.address() + byteOffset;
  }

  /**
   * True if the byte ranges spanned by the two tensors may share memory (same allocation, or
   * borrowed ranges whose addresses intersect, on the same device). Conservative for strided
   * views: spans are compared, not individual elements.
   */
  public boolean overlaps(Tensor other) {
    requireOpen("tensor");
    other.requireOpen("other");
    if (numel == 0 || other.numel == 0 || !memory.device.equals(other.memory.device)) {
      return false;
    }
    long start;
    long otherStart;
    if (memory == other.memory) {
      start = byteOffset;
      otherStart = other.byteOffset;
    } else if (hasAddress() && other.hasAddress()) {
      start = address();
      otherStart = other.address();
    } else {
      return false; // distinct JDK-allocated buffers never alias
    }
    return start < otherStart + other.spanBytes() && otherStart < start + spanBytes();
  }

  /** Bytes from the first to one past the last element this tensor can touch. */
  private long spanBytes() {
    long last = 0;
    for (int i = 0; i < shape.length; i++) {
      last += (shape[i] - 1) * strides[i];
    }
    return (last + 1) * dtype.byteSize();
  }

  /** True if a native kernel can address this tensor (device, or host with a raw address). */
  public boolean hasAddress() {
    return memory.device.isCuda() || ((HostMemory) memory).hasAddress();
  }

  @Override
  public String toString() {
    return "Tensor(" + dtype + ", " + Shapes.format(shape) + ", " + memory.device + (isClosed() ? ", closed" : "") + ")";
  }

  // ---- views -------------------------------------------------------------------------------

  /** Same memory, new contiguous shape with the same element count (this must be contiguous). */
  public Tensor view(long... newShape) {
    requireOpen("tensor");
    requireContiguous("tensor");
    if (Shapes.numel(newShape) != numel) {
      throw new IllegalArgumentException("view shape " + Shapes.format(newShape) + " has " + Shapes.numel(newShape)
          + " elements but tensor " + Shapes.format(shape) + " has " + numel);
    }
    return new Tensor(memory, false, byteOffset, dtype, newShape, Shapes.contiguousStrides(newShape));
  }

  /** Elements [start, end) along dim, sharing memory (generally not contiguous). */
  public Tensor slice(int dim, long start, long end) {
    requireOpen("tensor");
    if (dim < 0 || dim >= shape.length) {
      throw new IllegalArgumentException("dim " + dim + " is outside [0, " + shape.length + ")");
    }
    if (start < 0 || end < start || end > shape[dim]) {
      throw new IllegalArgumentException(
          "slice [" + start + ", " + end + ") is outside [0, " + shape[dim] + "] along dim " + dim);
    }
    long[] s = shape.clone();
    s[dim] = end - start;
    long offset = byteOffset + start * strides[dim] * dtype.byteSize();
    return new Tensor(memory, false, offset, dtype, s, strides);
  }

  // ---- element access (host) ----------------------------------------------------------------

  HostMemory host() {
    requireOpen("tensor");
    if (memory.device.isCuda()) {
      throw new IllegalArgumentException("element access needs a host tensor; this one is on " + memory.device
          + " (copy it with to(Device.CPU))");
    }
    return (HostMemory) memory;
  }

  /** Byte offset in memory of the element at logical row-major index i. */
  long offsetOf(long i) {
    if (i < 0 || i >= numel) {
      throw new IndexOutOfBoundsException("index " + i + " is outside [0, " + numel + ")");
    }
    if (contiguous) {
      return byteOffset + i * dtype.byteSize();
    }
    long element = 0;
    for (int d = shape.length - 1; d >= 0; d--) {
      element += (i % shape[d]) * strides[d];
      i /= shape[d];
    }
    return byteOffset + element * dtype.byteSize();
  }

  /** Element i as a double (integers exactly up to 2^53; F16/BF16 widened exactly). */
  public double getDouble(long i) {
    HostMemory m = host();
    long o = offsetOf(i);
    return switch (dtype) {
      case F32 -> m.getFloat(o);
      case F16 -> HalfFloats.f16ToFloat(m.getShort(o));
      case BF16 -> HalfFloats.bf16ToFloat(m.getShort(o));
      case I32 -> m.getInt(o);
      case I64 -> m.getLong(o);
      case I8 -> m.getByte(o);
      case U8 -> m.getByte(o) & 0xff;
      case U16 -> m.getShort(o) & 0xffff;
    };
  }

  /** Stores v at i, rounding to nearest even for F16/BF16/F32 and truncating for integers. */
  public void setDouble(long i, double v) {
    HostMemory m = host();
    long o = offsetOf(i);
    switch (dtype) {
      case F32 -> m.putFloat(o, (float) v);
      case F16 -> m.putShort(o, HalfFloats.floatToF16((float) v));
      case BF16 -> m.putShort(o, HalfFloats.floatToBf16((float) v));
      case I32 -> m.putInt(o, (int) v);
      case I64 -> m.putLong(o, (long) v);
      case I8, U8 -> m.putByte(o, (byte) (long) v);
      case U16 -> m.putShort(o, (short) (long) v);
    }
  }

  /** Element i of an integer tensor (unsigned types zero-extended). */
  public long getLong(long i) {
    if (dtype.isFloatingPoint()) {
      throw new IllegalArgumentException("getLong needs an integer dtype, tensor is " + dtype);
    }
    return dtype == DType.I64 ? host().getLong(offsetOf(i)) : (long) getDouble(i);
  }

  /** Raw bits of element i, zero-extended (dtype-agnostic, exact: for comparisons and copies). */
  public long getBits(long i) {
    HostMemory m = host();
    long o = offsetOf(i);
    return switch (dtype.byteSize()) {
      case 1 -> m.getByte(o) & 0xffL;
      case 2 -> m.getShort(o) & 0xffffL;
      case 4 -> m.getInt(o) & 0xffffffffL;
      default -> m.getLong(o);
    };
  }

  /** Copies {@code count} contiguous elements from src (same dtype, both on the host). */
  public void copyElements(Tensor src, long srcIndex, long dstIndex, long count) {
    src.requireOpen("src");
    requireOpen("dst");
    if (src.dtype != dtype) {
      throw new IllegalArgumentException("src dtype " + src.dtype + " must equal " + dtype);
    }
    requireContiguous("dst");
    src.requireContiguous("src");
    if (count == 0) {
      return;
    }
    long srcOff = src.offsetOf(srcIndex);
    src.offsetOf(srcIndex + count - 1);
    long dstOff = offsetOf(dstIndex);
    offsetOf(dstIndex + count - 1);
    host().copyFrom(src.host(), srcOff, dstOff, count * dtype.byteSize());
  }

  // ---- bulk export -------------------------------------------------------------------------

  /** All elements as floats (any dtype; device tensors are copied to the host first). */
  public float[] toFloatArray() {
    return withHostCopy(t -> {
      float[] out = new float[checkedArrayLength(t.numel)];
      for (int i = 0; i < out.length; i++) {
        out[i] = (float) t.getDouble(i);
      }
      return out;
    });
  }

  /** All elements of an integer tensor as ints (I64 values must fit). */
  public int[] toIntArray() {
    return withHostCopy(t -> {
      int[] out = new int[checkedArrayLength(t.numel)];
      for (int i = 0; i < out.length; i++) {
        out[i] = Math.toIntExact(t.getLong(i));
      }
      return out;
    });
  }

  /** Raw 16-bit patterns of an F16/BF16/U16 tensor. */
  public short[] toBitsArray() {
    requireDType("tensor", dtype, DType.F16, DType.BF16, DType.U16);
    return withHostCopy(t -> {
      short[] out = new short[checkedArrayLength(t.numel)];
      for (int i = 0; i < out.length; i++) {
        out[i] = (short) t.getBits(i);
      }
      return out;
    });
  }

  private <T> T withHostCopy(java.util.function.Function<Tensor, T> read) {
    requireOpen("tensor");
    if (!memory.device.isCuda()) {
      return read.apply(this);
    }
    try (Tensor h = to(Device.CPU)) {
      return read.apply(h);
    }
  }

  private static int checkedArrayLength(long n) {
    if (n > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(n + " elements do not fit a Java array");
    }
    return (int) n;
  }

  // ---- copies ------------------------------------------------------------------------------

  /** A contiguous copy on the given device (synchronous). */
  public Tensor to(Device device) {
    requireOpen("tensor");
    if (!contiguous && memory.device.isCuda() != device.isCuda()) {
      if (memory.device.isCuda()) {
        throw new IllegalArgumentException("a strided device tensor must be made contiguous on its device first");
      }
      try (Tensor packed = contiguous()) { // gather on the host, then one transfer
        return packed.to(device);
      }
    }
    Tensor out = allocate(dtype, device, shape);
    try {
      out.copyFrom(this);
      return out;
    } catch (RuntimeException e) {
      out.close();
      throw e;
    }
  }

  /** A contiguous copy of this tensor on its own device. */
  public Tensor contiguous() {
    return to(memory.device);
  }

  /** Copies src into this tensor (same dtype and shape) and waits for the copy to finish. */
  public void copyFrom(Tensor src) {
    copy(src, null, true);
  }

  /**
   * Copies src into this tensor on the stream without waiting (both tensors contiguous, at least
   * one on a device). The caller keeps both alive until the stream has passed the copy.
   */
  public void copyFromAsync(Tensor src, CudaStream stream) {
    Objects.requireNonNull(stream, "stream");
    copy(src, stream, false);
  }

  private void copy(Tensor src, CudaStream stream, boolean synchronize) {
    TensorCopies.copy(this, src, stream, synchronize);
  }

  /**
   * A host copy converted to another floating dtype (F32 <-> F16/BF16 uses the native
   * vectorised conversion when available; results are identical either way).
   */
  public Tensor convertTo(DType target) {
    requireOpen("tensor");
    requireDType("target", target, DType.F32, DType.F16, DType.BF16);
    Tensor out = allocate(target, Device.CPU, shape);
    try {
      out.convertFrom(this);
      return out;
    } catch (RuntimeException e) {
      out.close();
      throw e;
    }
  }

  /**
   * Converting copy into this host tensor (same shape; both dtypes among F32, F16, BF16; F16
   * and BF16 round to nearest even). A device or strided source is staged on the host first.
   */
  public void convertFrom(Tensor src) {
    TensorCopies.convert(this, src);
  }

  static void requireDType(String name, DType actual, DType... allowed) {
    for (DType d : allowed) {
      if (d == actual) {
        return;
      }
    }
    throw new IllegalArgumentException(name + " must have dtype " + Arrays.toString(allowed) + ", got " + actual);
  }

  // ---- lifetime ----------------------------------------------------------------------------

  /** Closes this tensor; an owner also frees the memory (closing every view of it). Idempotent. */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true) && owner) {
      memory.close();
    }
  }
}
