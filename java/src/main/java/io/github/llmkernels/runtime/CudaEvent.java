package io.github.llmkernels.runtime;

import io.github.llmkernels.internal.Cleaners;
import io.github.llmkernels.internal.NativeApi;
import java.lang.ref.Cleaner;
import java.util.concurrent.atomic.AtomicBoolean;

/** A CUDA event, for ordering work across streams and timing GPU work. */
public final class CudaEvent implements AutoCloseable {
  private final int device;
  private final long handle;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final Cleaner.Cleanable cleanable;

  private CudaEvent(int device, long handle) {
    this.device = device;
    this.handle = handle;
    this.cleanable = Cleaners.register(this, () -> NativeApi.cudaEventDestroy(device, handle));
  }

  public static CudaEvent create(int device) {
    Cuda.ensureAvailability();
    return new CudaEvent(device, NativeApi.cudaEventCreate(device));
  }

  private long handle() {
    if (closed.get()) {
      throw new IllegalStateException("event is closed");
    }
    return handle;
  }

  /** Records the event on the stream (null: legacy default stream). */
  public void record(CudaStream stream) {
    NativeApi.cudaEventRecord(device, handle(), stream == null ? 0 : stream.handle());
  }

  public void synchronize() {
    NativeApi.cudaEventSynchronize(device, handle());
  }

  /** Milliseconds between two recorded, completed events. */
  public static float elapsedMillis(CudaEvent start, CudaEvent end) {
    return NativeApi.cudaEventElapsedMillis(start.handle(), end.handle());
  }

  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      cleanable.clean();
    }
  }
}
