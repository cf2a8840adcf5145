package io.github.llmkernels.runtime;

/**
 * A failure inside a native kernel or the CUDA runtime (not a bad argument: those are
 * {@link IllegalArgumentException}s). {@link #status()} is the C ABI status code.
 */
public class LlmKernelsException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** C ABI status: 3 unavailable, 4 CUDA error, 5 out of memory, 6 internal error. */
  private final int status;

  public LlmKernelsException(int status, String message) {
    super(message);
    this.status = status;
  }

  public LlmKernelsException(int status, String message, Throwable cause) {
    super(message, cause);
    this.status = status;
  }

  public int status() {
    return status;
  }
}
