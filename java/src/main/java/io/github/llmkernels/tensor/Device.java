package io.github.llmkernels.tensor;

/**
 * Where a tensor's memory lives: host memory, or the memory of CUDA device {@code index}.
 *
 * @param kind CPU or CUDA
 * @param index CUDA device ordinal; 0 for CPU
 */
public record Device(Kind kind, int index) {
  /** Host memory. */
  public static final Device CPU = new Device(Kind.CPU, 0);

  public enum Kind {
    CPU,
    CUDA
  }

  public Device {
    if (kind == null) {
      throw new IllegalArgumentException("kind must not be null");
    }
    if (index < 0 || (kind == Kind.CPU && index != 0)) {
      throw new IllegalArgumentException("device index must be >= 0 (and 0 for CPU), got " + index);
    }
  }

  public static Device cuda(int index) {
    return new Device(Kind.CUDA, index);
  }

  public boolean isCuda() {
    return kind == Kind.CUDA;
  }

  @Override
  public String toString() {
    return kind == Kind.CPU ? "cpu" : "cuda:" + index;
  }
}
