package io.github.llmkernels.sparse;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import java.util.SplittableRandom;
import java.util.function.Supplier;
import org.junit.jupiter.api.function.Executable;

/** Shared helpers of the 2:4 tests. */
final class Sp24TestUtil {
  private Sp24TestUtil() {}

  static final DType[] DTYPES = {DType.F32, DType.F16, DType.BF16};

  /** The 6 valid 2-of-4 patterns as kept-position pairs. */
  static final int[][] PATTERNS = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};

  /**
   * A random 2:4 weight [m, k] (host): each group draws one of the 6 two-position patterns (80%),
   * a single non-zero (10%) or no non-zero (10%); non-zeros are N(0, 1) values that stay non-zero
   * in dtype.
   */
  static Tensor random24(SplittableRandom rnd, DType dtype, long m, long k) {
    Tensor w = Tensor.zeros(dtype, Device.CPU, m, k);
    for (long r = 0; r < m; r++) {
      for (long g = 0; g < k / 4; g++) {
        double u = rnd.nextDouble();
        int[] kept = u < 0.8 ? PATTERNS[rnd.nextInt(6)] : u < 0.9 ? new int[] {rnd.nextInt(4)} : new int[0];
        for (int i : kept) {
          long e = r * k + 4 * g + i;
          do {
            w.setDouble(e, RandomTensors.gaussian(rnd));
          } while (w.getDouble(e) == 0);
        }
      }
    }
    return w;
  }

  /** Integers in [-2, 2] (exact in every dtype), host. */
  static Tensor smallInts(SplittableRandom rnd, DType dtype, long... shape) {
    Tensor t = Tensor.allocate(dtype, Device.CPU, shape);
    for (long i = 0; i < t.numel(); i++) {
      t.setDouble(i, rnd.nextInt(5) - 2);
    }
    return t;
  }

  /** Raw bits of every element (device tensors copied to the host first). */
  static long[] bits(Tensor t) {
    if (t.device().isCuda()) {
      try (Tensor h = t.to(Device.CPU)) {
        return bits(h);
      }
    }
    long[] out = new long[Math.toIntExact(t.numel())];
    for (int i = 0; i < out.length; i++) {
      out[i] = t.getBits(i);
    }
    return out;
  }

  static double[] doubles(Tensor t) {
    float[] f = t.toFloatArray();
    double[] d = new double[f.length];
    for (int i = 0; i < f.length; i++) {
      d[i] = f[i];
    }
    return d;
  }

  /** The tensor on the device the backend runs on (a copy for CUDA, a view otherwise). */
  static Tensor on(Backend backend, Tensor host) {
    return backend == Backend.CUDA ? host.to(Device.cuda(0)) : host.view(host.shape());
  }

  /**
   * Per output element: sum_k |x[n, k] w[m, k]| + |bias[m]|, the scale of the fp32 accumulation
   * error of Y[n, m].
   */
  static double[] absScale(Tensor x, Tensor w, Tensor bias) {
    int n = (int) x.shape(0);
    int k = (int) x.shape(1);
    int m = (int) w.shape(0);
    double[] xd = doubles(x);
    double[] wd = doubles(w);
    double[] bd = bias == null ? new double[m] : doubles(bias);
    double[] s = new double[n * m];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < m; j++) {
        double sum = Math.abs(bd[j]);
        for (int c = 0; c < k; c++) {
          sum += Math.abs(xd[i * k + c] * wd[j * k + c]);
        }
        s[i * m + j] = sum;
      }
    }
    return s;
  }

  /** |got - ref| <= factor * (rtol |ref| + atolFraction * scale) everywhere (NaN must match NaN). */
  static void assertClose(double[] ref, double[] got, double[] scale, double rtol, double atolFraction,
      double factor, Supplier<String> what) {
    if (ref.length != got.length) {
      throw new AssertionError(what.get() + ": length " + got.length + " != " + ref.length);
    }
    for (int i = 0; i < ref.length; i++) {
      double bound = factor * (rtol * Math.abs(ref[i]) + atolFraction * scale[i]);
      boolean ok = Double.isNaN(ref[i]) ? Double.isNaN(got[i]) : Math.abs(got[i] - ref[i]) <= bound;
      if (!ok) {
        throw new AssertionError(what.get() + ": element " + i + " = " + got[i] + " but the reference is " + ref[i]
            + " (bound " + bound + ")");
      }
    }
  }

  static String message(Class<? extends Throwable> type, Executable call) {
    return assertThrows(type, call).getMessage();
  }

  static void assertMentions(String message, String... parts) {
    for (String p : parts) {
      assertTrue(message != null && message.contains(p), "message '" + message + "' should mention '" + p + "'");
    }
  }
}
