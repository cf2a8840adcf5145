package io.github.llmkernels.internal;

import java.nio.Buffer;
import java.nio.ByteBuffer;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/** Bridges raw addresses, JavaCPP Pointers and direct NIO buffers (JavaCPP's core natives). */
public final class RawMemory {
  private RawMemory() {}

  /** A ByteBuffer viewing bytes [address, address + bytes); bytes must fit an int. */
  public static ByteBuffer view(long address, long bytes) {
    if (bytes < 0 || bytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("view size must be in [0, 2^31), got " + bytes);
    }
    return new AddressPointer(address, bytes).asByteBuffer();
  }

  /** Address of the element at the buffer's position (the buffer must be direct). */
  public static long addressOf(Buffer direct) {
    Pointer p = new Pointer(direct);
    return p.address() + p.position();
  }

  /** Address of the pointer's element at its position, as JavaCPP defines it. */
  public static long addressOf(Pointer pointer) {
    return pointer.address() + pointer.position() * pointer.sizeof();
  }

  private static final class AddressPointer extends BytePointer {
    AddressPointer(long address, long bytes) {
      this.address = address;
      this.capacity = bytes;
      this.limit = bytes;
    }
  }
}
