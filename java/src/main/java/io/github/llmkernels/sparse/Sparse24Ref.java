package io.github.llmkernels.sparse;

import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The Java reference of 2:4 semi-structured sparsity, written for clarity (the oracle of the
 * tests and the JAVA backend of {@link Sparse24}). Host tensors, contiguous, row-major; callers
 * validate shapes first ({@link Sparse24} does).
 *
 * <p>Rules (native/include/llmk/sp24_math.h): W [M, K] is 2:4 when every group of 4 consecutive
 * elements {@code W[m, 4g .. 4g + 3]} holds at most 2 non-zeros (NaN counts as non-zero, -0 as
 * zero). Compressed: values [M, K/2] hold the two kept elements of each group in increasing k
 * (raw bits), meta U16 [M, K/16] 4 groups per word, lowest nibble = lowest group, nibble
 * {@code idx0 | idx1 << 2} with idx0 < idx1. A group with fewer than 2 non-zeros keeps its
 * non-zero (if any) and fills up with its lowest zero positions. Pruning keeps the 2 highest fp32
 * scores {@code |w| * colScale[k]} (colScale 1 for magnitude) of each group, ties to the lower
 * position, and writes +0 elsewhere. Matmul is the dense product of the decompressed weight in
 * double: {@code Y[n, m] = act(sum_k X[n, k] W[m, k] + bias[m])}.
 */
public final class Sparse24Ref {
  private Sparse24Ref() {}

  // ---- group rules ------------------------------------------------------------------------

  /** Nibble of a group keeping positions i0 < i1. */
  public static int code(int i0, int i1) {
    return i0 | (i1 << 2);
  }

  public static int idx0(int code) {
    return code & 3;
  }

  public static int idx1(int code) {
    return (code >> 2) & 3;
  }

  /** Whether an element counts as a non-zero: NaN does, -0 does not. */
  public static boolean nonZero(double v) {
    return v != 0;
  }

  /** Kept positions of a group from its non-zero mask (bit i: element i, at most 2 bits set). */
  public static int codeFromMask(int nonZeroMask) {
    int[] kept = new int[2];
    int n = 0;
    for (int i = 0; i < 4 && n < 2; i++) { // the non-zeros first
      if ((nonZeroMask & (1 << i)) != 0) {
        kept[n++] = i;
      }
    }
    for (int i = 0; i < 4 && n < 2; i++) { // then the lowest zero positions
      if ((nonZeroMask & (1 << i)) == 0 && (n == 0 || kept[0] != i)) {
        kept[n++] = i;
      }
    }
    return code(Math.min(kept[0], kept[1]), Math.max(kept[0], kept[1]));
  }

  /**
   * Pruning's choice: the positions of the 2 highest scores, ties to the lower position (only a
   * strictly greater score displaces an earlier one; a NaN score is never preferred).
   */
  public static int codeFromScores(float[] s) {
    int best = 0;
    for (int i = 1; i < 4; i++) {
      if (s[i] > s[best]) {
        best = i;
      }
    }
    int second = best == 0 ? 1 : 0;
    for (int i = 0; i < 4; i++) {
      if (i != best && s[i] > s[second]) {
        second = i;
      }
    }
    return code(Math.min(best, second), Math.max(best, second));
  }

  /** The pruning score of one element: {@code |w| * scale} rounded to fp32 (as the kernels). */
  public static float score(double w, float scale) {
    return (float) (Math.abs(w) * scale); // w and scale are floats: the double product is exact
  }

  /** The group-addressed message, word for word the native kernels' (sp24_args.cpp). */
  static String groupMessage(long row, long group, String rule) {
    return "row " + row + ", group " + group + " (columns " + 4 * group + ".." + (4 * group + 3) + "): " + rule
        + "; nothing was written";
  }

  static final String TOO_MANY = "more than 2 non-zeros, so W is not 2:4";

  // ---- operations -------------------------------------------------------------------------

  /**
   * w [M, K] with the 2 lowest-scoring elements of every group set to +0.
   *
   * @param colScale F32 [K] (Wanda: the norm of input column k), or null for magnitude
   * @return a new host tensor of w's dtype
   */
  public static Tensor prune(Tensor w, Tensor colScale) {
    long m = w.shape(0);
    long k = w.shape(1);
    long[] in = bits(w);
    long[] out = new long[in.length];
    float[] scale = colScale == null ? null : colScale.toFloatArray();
    float[] s = new float[4];
    for (long r = 0; r < m; r++) {
      for (long g = 0; g < k / 4; g++) {
        long base = r * k + 4 * g;
        for (int i = 0; i < 4; i++) {
          s[i] = score(w.getDouble(base + i), scale == null ? 1f : scale[(int) (4 * g + i)]);
        }
        int c = codeFromScores(s);
        out[(int) (base + idx0(c))] = in[(int) (base + idx0(c))];
        out[(int) (base + idx1(c))] = in[(int) (base + idx1(c))];
      }
    }
    return fromBits(out, w.dtype(), m, k);
  }

  /** The first group (row-major order) with more than 2 non-zeros as {row, group}, or null. */
  public static long[] check(Tensor w) {
    long m = w.shape(0);
    long k = w.shape(1);
    for (long r = 0; r < m; r++) {
      for (long g = 0; g < k / 4; g++) {
        int count = 0;
        for (int i = 0; i < 4; i++) {
          count += nonZero(w.getDouble(r * k + 4 * g + i)) ? 1 : 0;
        }
        if (count > 2) {
          return new long[] {r, g};
        }
      }
    }
    return null;
  }

  /**
   * W [M, K] (2:4) -> {values [M, K/2] (w's dtype), meta U16 [M, K/16]}, new host tensors.
   *
   * @throws IllegalArgumentException naming the row and group of the first group with more
   *     than 2 non-zeros
   */
  public static Tensor[] compress(Tensor w) {
    long[] bad = check(w);
    if (bad != null) {
      throw new IllegalArgumentException(groupMessage(bad[0], bad[1], TOO_MANY));
    }
    long m = w.shape(0);
    long k = w.shape(1);
    long[] in = bits(w);
    long[] values = new long[(int) (m * k / 2)];
    long[] meta = new long[(int) (m * k / 16)];
    for (long r = 0; r < m; r++) {
      for (long g = 0; g < k / 4; g++) {
        long base = r * k + 4 * g;
        int mask = 0;
        for (int i = 0; i < 4; i++) {
          mask |= nonZero(w.getDouble(base + i)) ? 1 << i : 0;
        }
        int c = codeFromMask(mask);
        long v = r * (k / 2) + 2 * g;
        values[(int) v] = in[(int) (base + idx0(c))];
        values[(int) v + 1] = in[(int) (base + idx1(c))];
        meta[(int) (r * (k / 16) + g / 4)] |= (long) c << (4 * (g % 4));
      }
    }
    return new Tensor[] {fromBits(values, w.dtype(), m, k / 2), fromBits(meta, DType.U16, m, k / 16)};
  }

  /**
   * values [M, K/2] + meta U16 [M, K/16] -> W [M, K] (+0 at the positions not kept), a new host
   * tensor.
   *
   * @throws IllegalArgumentException naming the row and group of the first nibble with
   *     idx0 >= idx1
   */
  public static Tensor decompress(Tensor values, Tensor meta, long k) {
    long m = values.shape(0);
    long[] vals = bits(values);
    long[] words = bits(meta);
    long[] out = new long[(int) (m * k)];
    for (long r = 0; r < m; r++) {
      for (long g = 0; g < k / 4; g++) {
        int c = (int) (words[(int) (r * (k / 16) + g / 4)] >> (4 * (g % 4))) & 15;
        if (idx0(c) >= idx1(c)) {
          throw new IllegalArgumentException(groupMessage(r, g, "metadata nibble must have idx0 < idx1"));
        }
        long v = r * (k / 2) + 2 * g;
        out[(int) (r * k + 4 * g + idx0(c))] = vals[(int) v];
        out[(int) (r * k + 4 * g + idx1(c))] = vals[(int) v + 1];
      }
    }
    return fromBits(out, values.dtype(), m, k);
  }

  /** Y [N, M] (row-major) = act(X [N, K] W^T + bias) with W the decompressed weight, in double. */
  public static double[] matmul(Tensor x, Tensor values, Tensor meta, Tensor bias, Activation act) {
    try (Tensor w = decompress(values, meta, x.shape(1))) {
      return denseMatmul(x, w, bias, act);
    }
  }

  /** Y [N, M] (row-major) = act(X [N, K] W^T + bias) with a dense W [M, K], in double. */
  public static double[] denseMatmul(Tensor x, Tensor w, Tensor bias, Activation act) {
    int n = (int) x.shape(0);
    int k = (int) x.shape(1);
    int m = (int) w.shape(0);
    double[] xd = doubles(x);
    double[] wd = doubles(w);
    double[] bd = bias == null ? new double[m] : doubles(bias);
    double[] y = new double[n * m];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < m; j++) {
        double sum = 0;
        for (int c = 0; c < k; c++) {
          sum += xd[i * k + c] * wd[j * k + c];
        }
        y[i * m + j] = activate(act, sum + bd[j]);
      }
    }
    return y;
  }

  /** The activation in double (GELU in its tanh form). */
  public static double activate(Activation act, double x) {
    return switch (act) {
      case NONE -> x;
      case RELU -> x > 0 ? x : x < 0 ? 0 : x; // NaN stays NaN, -0 stays -0 when not negative
      case SILU -> x / (1 + Math.exp(-x));
      case GELU -> 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    };
  }

  // ---- raw bits ---------------------------------------------------------------------------

  /** Raw bits of every element (row-major). */
  static long[] bits(Tensor t) {
    long[] out = new long[Math.toIntExact(t.numel())];
    for (int i = 0; i < out.length; i++) {
      out[i] = t.getBits(i);
    }
    return out;
  }

  static double[] doubles(Tensor t) {
    double[] out = new double[Math.toIntExact(t.numel())];
    for (int i = 0; i < out.length; i++) {
      out[i] = t.getDouble(i);
    }
    return out;
  }

  /** A new host tensor holding these raw bits (NaN payloads and -0 preserved). */
  static Tensor fromBits(long[] bits, DType dtype, long... shape) {
    int size = dtype.byteSize();
    ByteBuffer buf = ByteBuffer.allocateDirect(Math.max(bits.length * size, 1)).order(ByteOrder.LITTLE_ENDIAN);
    for (long b : bits) {
      switch (size) {
        case 1 -> buf.put((byte) b);
        case 2 -> buf.putShort((short) b);
        case 4 -> buf.putInt((int) b);
        default -> buf.putLong(b);
      }
    }
    buf.clear();
    Tensor out = Tensor.allocate(dtype, Device.CPU, shape);
    try (Tensor staged = Tensor.wrap(buf, dtype, shape)) {
      out.copyFrom(staged);
      return out;
    } catch (RuntimeException e) {
      out.close();
      throw e;
    }
  }
}
