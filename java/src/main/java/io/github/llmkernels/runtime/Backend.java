package io.github.llmkernels.runtime;

/**
 * Which implementation runs a kernel.
 *
 * <p>{@link #AUTO} picks {@link #CUDA} for device tensors, {@link #NATIVE} for host tensors when
 * the native library loaded, else {@link #JAVA}. A backend requested by name never falls back:
 * if it cannot run, the call throws {@link BackendUnavailableException} with the reason.
 */
public enum Backend {
  /** Chosen from where the tensors live and what is loaded. */
  AUTO,
  /** Plain-Java reference: double accumulation, the oracle of the tests; host tensors only. */
  JAVA,
  /** C++ CPU kernels (OpenMP, vectorised); host tensors only. */
  NATIVE,
  /** CUDA kernels; device tensors only. */
  CUDA
}
