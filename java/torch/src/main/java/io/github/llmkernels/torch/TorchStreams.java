package io.github.llmkernels.torch;

import io.github.llmkernels.runtime.BackendUnavailableException;
import io.github.llmkernels.runtime.CudaStream;

/**
 * PyTorch's current CUDA stream as a library {@link CudaStream}, so that kernels run in order
 * with the torch work around them: {@code Exec.stream(TorchStreams.current(device))}.
 *
 * <p>The stream is borrowed: closing it never destroys it. It is the stream current <em>now</em>
 * on this thread (as set by a torch {@code CUDAStreamGuard}); ask again after switching streams.
 *
 * <p>Loading this class never touches CUDA: the torch CUDA binding ({@code torch_cuda}, which
 * needs the GPU build of the presets, CUDA 13, cuDNN and NCCL, and at compile time the
 * {@code org.bytedeco:cuda} classes) is reached only inside {@link #current}, in a nested class.
 * On a CPU-only machine or with the CPU presets, {@link #current} throws
 * {@link BackendUnavailableException} with the cause and {@link #isAvailable()} returns false.
 */
public final class TorchStreams {
  private TorchStreams() {}

  /** The current torch CUDA stream of the device, borrowed (never destroyed here). */
  public static CudaStream current(int device) {
    if (device < 0) {
      throw new IllegalArgumentException("device must be >= 0, got " + device);
    }
    long handle;
    try {
      handle = TorchCuda.currentStream(device);
    } catch (LinkageError | RuntimeException e) {
      throw new BackendUnavailableException("PyTorch CUDA is unavailable (needs the GPU build of the "
          + "Bytedeco PyTorch presets and a CUDA device): " + e, e);
    }
    return CudaStream.borrow(device, handle);
  }

  /** True when torch reports a usable CUDA device; never throws. */
  public static boolean isAvailable() {
    try {
      return org.bytedeco.pytorch.global.torch.cuda_is_available();
    } catch (Throwable t) { // NOPMD: an availability probe must never throw (LinkageError included)
      return false;
    }
  }

  /** The only place that touches torch_cuda; loaded on the first call of {@link #current}. */
  private static final class TorchCuda {
    private TorchCuda() {}

    static long currentStream(int device) {
      try (org.bytedeco.pytorch.cuda.CUDAStream s =
               org.bytedeco.pytorch.global.torch_cuda.getCurrentCUDAStream((byte) device)) {
        org.bytedeco.cuda.cudart.CUstream_st raw = s.stream();
        return raw == null ? 0 : raw.address();
      }
    }
  }
}
