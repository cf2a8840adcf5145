package io.github.llmkernels.runtime;

import io.github.llmkernels.internal.Cleaners;
import io.github.llmkernels.internal.NativeApi;
import java.lang.ref.Cleaner;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A CUDA stream: created here (owned, destroyed on close) or borrowed from another library
 * (e.g. PyTorch's current stream, as a raw cudaStream_t handle; never destroyed here).
 */
public final class CudaStream implements AutoCloseable {
  private final int device;
  private final long handle;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final Cleaner.Cleanable cleanable;

  private CudaStream(int device, long handle, boolean owned) {
    this.device = device;
    this.handle = handle;
    this.cleanable = owned ? Cleaners.register(this, () -> NativeApi.cudaStreamDestroy(device, handle)) : null;
  }

  /** A new non-blocking stream on the device. */
  public static CudaStream create(int device) {
    Cuda.ensureAvailability();
    return new CudaStream(device, NativeApi.cudaStreamCreate(device), true);
  }

  /** Wraps a stream owned elsewhere; handle 0 is the legacy default stream. */
  public static CudaStream borrow(int device, long handle) {
    return new CudaStream(device, handle, false);
  }

  public int device() {
    return device;
  }

  /** The raw cudaStream_t. */
  public long handle() {
    if (closed.get()) {
      throw new IllegalStateException("stream is closed");
    }
    return handle;
  }

  public void synchronize() {
    NativeApi.cudaStreamSynchronize(device, handle());
  }

  @Override
  public void close() {
    if (closed.compareAndSet(false, true) && cleanable != null) {
      cleanable.clean();
    }
  }
}
