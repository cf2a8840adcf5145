package io.github.llmkernels.testing;

import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.util.SplittableRandom;

/** Fresh random inputs; each test logs its seed through the message of its assertions. */
public final class RandomTensors {
  private RandomTensors() {}

  /** Normal(0, 1) values of dtype (F16/BF16 rounded to nearest even), host memory. */
  public static Tensor normal(SplittableRandom rnd, DType dtype, long... shape) {
    Tensor t = Tensor.allocate(dtype, Device.CPU, shape);
    for (long i = 0; i < t.numel(); i++) {
      t.setDouble(i, gaussian(rnd));
    }
    return t;
  }

  /** Uniform integers in [0, bound) as I32, host memory. */
  public static Tensor indices(SplittableRandom rnd, long bound, long... shape) {
    Tensor t = Tensor.allocate(DType.I32, Device.CPU, shape);
    for (long i = 0; i < t.numel(); i++) {
      t.setDouble(i, rnd.nextLong(bound));
    }
    return t;
  }

  public static double gaussian(SplittableRandom rnd) {
    double u = 1.0 - rnd.nextDouble();
    double v = rnd.nextDouble();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A seed from the clock, so every run sees fresh inputs (printed on failure). */
  public static long freshSeed() {
    return System.nanoTime();
  }
}
