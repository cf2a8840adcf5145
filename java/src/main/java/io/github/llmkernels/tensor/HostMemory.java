package io.github.llmkernels.tensor;

import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.internal.RawMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Host memory seen from Java as chunks of at most 2^30 bytes (ByteBuffers index with int), so
 * tensors past 2 GiB work on every backend. Element accessors take byte offsets; elements are
 * little-endian (the native layout on x86-64).
 *
 * <p>Sources: the native allocator (64-byte aligned, one raw address), direct ByteBuffers when
 * the native library is absent (then there is no raw address: only the Java backend can use
 * it), or borrowed memory (a caller's buffer, pointer or address).
 */
final class HostMemory extends Memory {
  static final int CHUNK_SHIFT = 30;
  static final long CHUNK_BYTES = 1L << CHUNK_SHIFT;
  private static final long CHUNK_MASK = CHUNK_BYTES - 1;

  private final ByteBuffer[] chunks;
  private final long address; // 0 when unknown
  @SuppressWarnings("unused") // held only so a borrowed buffer or pointer outlives this memory
  private final Object keepAlive;

  private HostMemory(long byteSize, ByteBuffer[] chunks, long address, Runnable release, Object keepAlive) {
    super(Device.CPU, byteSize, release);
    this.chunks = chunks;
    this.address = address;
    this.keepAlive = keepAlive;
  }

  /** Uninitialised memory from the native allocator, or zeroed direct buffers without it. */
  static HostMemory allocate(long bytes) {
    if (NativeApi.isLoaded()) {
      long address = NativeApi.hostAlloc(bytes);
      return new HostMemory(bytes, views(address, bytes), address, () -> NativeApi.hostFree(address), null);
    }
    ByteBuffer[] chunks = new ByteBuffer[chunkCount(bytes)];
    for (int i = 0; i < chunks.length; i++) {
      long len = Math.min(CHUNK_BYTES, bytes - ((long) i << CHUNK_SHIFT));
      chunks[i] = ByteBuffer.allocateDirect((int) Math.max(len, 0)).order(ByteOrder.LITTLE_ENDIAN);
    }
    return new HostMemory(bytes, chunks, 0, null, null);
  }

  /** Borrows a direct buffer's bytes [position, limit). */
  static HostMemory borrow(ByteBuffer direct) {
    ByteBuffer view = direct.slice().order(ByteOrder.LITTLE_ENDIAN);
    long address = NativeApi.isLoaded() ? RawMemory.addressOf(direct) : 0;
    return new HostMemory(view.capacity(), new ByteBuffer[] {view}, address, null, direct);
  }

  /** Borrows bytes [address, address + bytes) that the caller keeps alive (keepAlive may be null). */
  static HostMemory borrow(long address, long bytes, Object keepAlive) {
    return new HostMemory(bytes, views(address, bytes), address, null, keepAlive);
  }

  /** Number of 2^30-byte chunks (at least 1) viewing bytes; the array index must fit an int. */
  private static int chunkCount(long bytes) {
    if (bytes > ((long) Integer.MAX_VALUE - 1) << CHUNK_SHIFT) {
      throw new IllegalArgumentException("host memory of " + bytes + " bytes is beyond the 2^61-byte limit");
    }
    return (int) Math.max(1, (bytes + CHUNK_MASK) >>> CHUNK_SHIFT);
  }

  private static ByteBuffer[] views(long address, long bytes) {
    ByteBuffer[] chunks = new ByteBuffer[chunkCount(bytes)];
    for (int i = 0; i < chunks.length; i++) {
      long offset = (long) i << CHUNK_SHIFT;
      long len = Math.max(0, Math.min(CHUNK_BYTES, bytes - offset));
      chunks[i] = RawMemory.view(address + offset, len).order(ByteOrder.LITTLE_ENDIAN);
    }
    return chunks;
  }

  boolean hasAddress() {
    return address != 0;
  }

  @Override
  long address() {
    if (address == 0) {
      throw new IllegalStateException(
          "this host tensor was allocated without the native library and has no raw address");
    }
    return address;
  }

  // Elements never straddle chunks: chunk size is a multiple of 8 and offsets are aligned to
  // the element size (tensors store element-aligned byte offsets).

  byte getByte(long offset) {
    return chunks[(int) (offset >>> CHUNK_SHIFT)].get((int) (offset & CHUNK_MASK));
  }

  short getShort(long offset) {
    return chunks[(int) (offset >>> CHUNK_SHIFT)].getShort((int) (offset & CHUNK_MASK));
  }

  int getInt(long offset) {
    return chunks[(int) (offset >>> CHUNK_SHIFT)].getInt((int) (offset & CHUNK_MASK));
  }

  long getLong(long offset) {
    return chunks[(int) (offset >>> CHUNK_SHIFT)].getLong((int) (offset & CHUNK_MASK));
  }

  float getFloat(long offset) {
    return chunks[(int) (offset >>> CHUNK_SHIFT)].getFloat((int) (offset & CHUNK_MASK));
  }

  void putByte(long offset, byte v) {
    chunks[(int) (offset >>> CHUNK_SHIFT)].put((int) (offset & CHUNK_MASK), v);
  }

  void putShort(long offset, short v) {
    chunks[(int) (offset >>> CHUNK_SHIFT)].putShort((int) (offset & CHUNK_MASK), v);
  }

  void putInt(long offset, int v) {
    chunks[(int) (offset >>> CHUNK_SHIFT)].putInt((int) (offset & CHUNK_MASK), v);
  }

  void putLong(long offset, long v) {
    chunks[(int) (offset >>> CHUNK_SHIFT)].putLong((int) (offset & CHUNK_MASK), v);
  }

  void putFloat(long offset, float v) {
    chunks[(int) (offset >>> CHUNK_SHIFT)].putFloat((int) (offset & CHUNK_MASK), v);
  }

  /** Copies len bytes from src at srcOffset to this at dstOffset, splitting at chunk edges. */
  void copyFrom(HostMemory src, long srcOffset, long dstOffset, long len) {
    while (len > 0) {
      int si = (int) (srcOffset >>> CHUNK_SHIFT);
      int di = (int) (dstOffset >>> CHUNK_SHIFT);
      int so = (int) (srcOffset & CHUNK_MASK);
      int dOff = (int) (dstOffset & CHUNK_MASK);
      int n = (int) Math.min(len, Math.min(CHUNK_BYTES - so, CHUNK_BYTES - dOff));
      chunks[di].put(dOff, src.chunks[si], so, n);
      srcOffset += n;
      dstOffset += n;
      len -= n;
    }
  }

  /** Sets len bytes at offset to zero. */
  void zero(long offset, long len) {
    byte[] zeros = new byte[(int) Math.min(len, 1 << 16)];
    while (len > 0) {
      int ci = (int) (offset >>> CHUNK_SHIFT);
      int co = (int) (offset & CHUNK_MASK);
      int n = (int) Math.min(Math.min(len, zeros.length), CHUNK_BYTES - co);
      chunks[ci].put(co, zeros, 0, n);
      offset += n;
      len -= n;
    }
  }
}
