package io.github.llmkernels.tensor;

import io.github.llmkernels.internal.Cleaners;
import java.lang.ref.Cleaner;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A block of bytes on one device, shared by a tensor and its views. Owned memory is freed by
 * {@link #close()} (or, as a safety net only, by the Cleaner when unreachable); borrowed memory
 * (wrapped buffers, pointers, raw addresses) is never freed here, only marked closed.
 */
abstract class Memory implements AutoCloseable {
  final Device device;
  final long byteSize;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final Cleaner.Cleanable cleanable;

  /** release frees the memory; it must not reference this object (it runs from the Cleaner). */
  Memory(Device device, long byteSize, Runnable release) {
    this.device = device;
    this.byteSize = byteSize;
    this.cleanable = release == null ? null : Cleaners.register(this, release);
  }

  boolean isClosed() {
    return closed.get();
  }

  /** Raw address of byte 0; throws if this memory has none (JDK-only host memory). */
  abstract long address();

  @Override
  public void close() {
    if (closed.compareAndSet(false, true) && cleanable != null) {
      cleanable.clean();
    }
  }
}
