package io.github.llmkernels.runtime;

/**
 * A backend was asked for by name (or is needed for a device tensor) but cannot run here.
 * The message says why; {@link #getCause()} holds the original load failure where there is one.
 */
public final class BackendUnavailableException extends LlmKernelsException {
  private static final long serialVersionUID = 1L;

  /** Status code for "unavailable" in the C ABI. */
  static final int STATUS_UNAVAILABLE = 3;

  public BackendUnavailableException(String message, Throwable cause) {
    super(STATUS_UNAVAILABLE, message, cause);
  }
}
