package io.github.llmkernels.runtime;

import java.util.Objects;

/**
 * How to run one kernel call: the backend and, for CUDA, the stream (null: the legacy default
 * stream of the tensors' device).
 *
 * @param backend requested backend; {@link Backend#AUTO} to choose from the tensors
 * @param stream CUDA stream for device work, or null
 */
public record Exec(Backend backend, CudaStream stream) {
  /** AUTO backend, default stream. */
  public static final Exec DEFAULT = new Exec(Backend.AUTO, null);

  public Exec {
    Objects.requireNonNull(backend, "backend");
  }

  public static Exec backend(Backend backend) {
    return new Exec(backend, null);
  }

  /** AUTO backend (CUDA for device tensors) on the given stream. */
  public static Exec stream(CudaStream stream) {
    return new Exec(Backend.AUTO, Objects.requireNonNull(stream, "stream"));
  }

  public Exec withStream(CudaStream stream) {
    return new Exec(backend, stream);
  }
}
