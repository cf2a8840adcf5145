package io.github.llmkernels.tensor;

/**
 * F16 and BF16 conversions to and from F32, round to nearest even, by bit manipulation.
 *
 * <p>The same rules as native/include/llmk/half_bits.h (compared over every 16-bit pattern in the
 * tests). NaN: the result is a quiet NaN with the same sign and the payload truncated (to 16-bit)
 * or shifted (to F32), which is what x86 F16C hardware does. Overflow rounds to infinity.
 */
public final class HalfFloats {
  private HalfFloats() {}

  public static short floatToF16(float value) {
    int x = Float.floatToRawIntBits(value);
    int sign = (x >>> 16) & 0x8000;
    int a = x & 0x7fffffff;
    if (a > 0x7f800000) {
      return (short) (sign | 0x7e00 | ((a >>> 13) & 0x3ff));
    }
    if (a >= 0x477ff000) { // >= 65520 rounds to infinity
      return (short) (sign | 0x7c00);
    }
    if (a < 0x38800000) {
      // Subnormal result: adding 0.5f puts the value on a grid whose ulp (2^-24) equals the
      // F16 subnormal ulp, so the float addition itself rounds to nearest even.
      float t = Float.intBitsToFloat(a) + 0.5f;
      return (short) (sign | (Float.floatToRawIntBits(t) - 0x3f000000));
    }
    int odd = (a >>> 13) & 1;
    a += 0xc8000fff + odd; // rebias exponent 127 -> 15, round half to even
    return (short) (sign | (a >>> 13));
  }

  public static float f16ToFloat(short bits) {
    int h = bits & 0xffff;
    int sign = (h & 0x8000) << 16;
    int e = (h >>> 10) & 0x1f;
    int m = h & 0x3ff;
    if (e == 0x1f) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (m << 13) | (m != 0 ? 0x00400000 : 0));
    }
    if (e == 0) {
      return Float.intBitsToFloat(sign | Float.floatToRawIntBits(m * 0x1p-24f));
    }
    return Float.intBitsToFloat(sign | ((e + 112) << 23) | (m << 13));
  }

  public static short floatToBf16(float value) {
    int x = Float.floatToRawIntBits(value);
    if ((x & 0x7fffffff) > 0x7f800000) {
      return (short) ((x >>> 16) | 0x0040);
    }
    return (short) ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16);
  }

  public static float bf16ToFloat(short bits) {
    int x = (bits & 0xffff) << 16;
    if ((x & 0x7fffffff) > 0x7f800000) {
      x |= 0x00400000;
    }
    return Float.intBitsToFloat(x);
  }
}
