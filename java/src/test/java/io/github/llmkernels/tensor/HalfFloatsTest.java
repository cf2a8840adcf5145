package io.github.llmkernels.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import org.junit.jupiter.api.Test;

/**
 * Exhaustive tests of the F16/BF16 conversions against an independent reference: the value
 * of each 16-bit pattern computed from its definition in exact decimal arithmetic, and rounding
 * judged by exact comparison with the neighbouring representable values.
 */
class HalfFloatsTest {

  /** Exact value of an F16 pattern from the IEEE definition (null for NaN). */
  static BigDecimal f16Value(int h) {
    int sign = h >>> 15;
    int e = (h >>> 10) & 0x1f;
    int m = h & 0x3ff;
    if (e == 0x1f) {
      return null;
    }
    BigDecimal mag = e == 0
        ? BigDecimal.valueOf(m).multiply(pow2(-24))
        : BigDecimal.valueOf(1024 + m).multiply(pow2(e - 15 - 10));
    return sign == 1 ? mag.negate() : mag;
  }

  static BigDecimal pow2(int k) {
    return k >= 0 ? BigDecimal.valueOf(2).pow(k) : BigDecimal.ONE.divide(BigDecimal.valueOf(2).pow(-k));
  }

  @Test
  void f16ToFloatMatchesDefinitionForAll65536Patterns() {
    for (int h = 0; h < 65536; h++) {
      float f = HalfFloats.f16ToFloat((short) h);
      int e = (h >>> 10) & 0x1f;
      int m = h & 0x3ff;
      if (e == 0x1f && m != 0) {
        int bits = Float.floatToRawIntBits(f);
        assertTrue(Float.isNaN(f), "pattern " + h);
        assertEquals(h >>> 15, bits >>> 31, "NaN sign kept, pattern " + h);
        assertTrue((bits & 0x00400000) != 0, "NaN is quiet, pattern " + h);
      } else if (e == 0x1f) {
        assertEquals((h & 0x8000) != 0 ? Float.NEGATIVE_INFINITY : Float.POSITIVE_INFINITY, f, "pattern " + h);
      } else {
        assertEquals(0, f16Value(h).compareTo(new BigDecimal(f)), "pattern " + h);
        assertEquals(h >>> 15, Float.floatToRawIntBits(f) >>> 31, "sign of zero kept, pattern " + h);
      }
    }
  }

  @Test
  void floatToF16RoundTripsEveryFiniteHalf() {
    for (int h = 0; h < 65536; h++) {
      if (((h >>> 10) & 0x1f) == 0x1f && (h & 0x3ff) != 0) {
        continue;
      }
      assertEquals((short) h, HalfFloats.floatToF16(HalfFloats.f16ToFloat((short) h)), "pattern " + h);
    }
  }

  /**
   * For each pair of adjacent non-negative halves (a, a+1): the exact midpoint goes to the even
   * one; one float ulp either side goes to the nearer one. This covers every rounding boundary,
   * including subnormals, the subnormal/normal edge and the overflow to infinity.
   */
  @Test
  void floatToF16RoundsToNearestEvenAtEveryBoundary() {
    for (int a = 0; a < 0x7c00; a++) {
      BigDecimal lo = f16Value(a);
      BigDecimal hi = a + 1 == 0x7c00 ? BigDecimal.valueOf(65536) : f16Value(a + 1); // 2^16: the next grid point
      float mid = new BigDecimal(lo.add(hi).toString()).divide(BigDecimal.valueOf(2)).floatValue();
      assertEquals(0, new BigDecimal(mid).compareTo(lo.add(hi).divide(BigDecimal.valueOf(2))), "midpoint exact in F32");
      int even = (a & 1) == 0 ? a : a + 1;
      assertEquals((short) even, HalfFloats.floatToF16(mid), "tie between " + a + " and " + (a + 1));
      assertEquals((short) a, HalfFloats.floatToF16(Math.nextDown(mid)), "below tie " + a);
      assertEquals((short) (a + 1), HalfFloats.floatToF16(Math.nextUp(mid)), "above tie " + a);
      assertEquals((short) (even | 0x8000), HalfFloats.floatToF16(-mid), "negative tie " + a);
    }
    assertEquals((short) 0x7bff, HalfFloats.floatToF16(65504f));
    assertEquals((short) 0x7c00, HalfFloats.floatToF16(65520f));
    assertEquals((short) 0x7c00, HalfFloats.floatToF16(Float.MAX_VALUE));
    assertEquals((short) 0xfc00, HalfFloats.floatToF16(Float.NEGATIVE_INFINITY));
    assertEquals((short) 0x0000, HalfFloats.floatToF16(Float.MIN_VALUE));
    assertEquals((short) 0x8000, HalfFloats.floatToF16(-0f));
  }

  @Test
  void floatToF16QuietsNaNKeepingSignAndTopPayload() {
    assertEquals((short) 0x7e00, HalfFloats.floatToF16(Float.NaN));
    assertEquals((short) 0x7e00, HalfFloats.floatToF16(Float.intBitsToFloat(0x7f800001))); // signalling
    assertEquals((short) 0xfe00, HalfFloats.floatToF16(Float.intBitsToFloat(0xff800001)));
    assertEquals((short) 0x7fff, HalfFloats.floatToF16(Float.intBitsToFloat(0x7fffffff)));
  }

  @Test
  void bf16ToFloatIsTheUpperHalfForAllPatterns() {
    for (int b = 0; b < 65536; b++) {
      int bits = Float.floatToRawIntBits(HalfFloats.bf16ToFloat((short) b));
      boolean nan = ((b >>> 7) & 0xff) == 0xff && (b & 0x7f) != 0;
      assertEquals(nan ? (b << 16) | 0x00400000 : b << 16, bits, "pattern " + b);
      if (!nan) {
        assertEquals((short) b, HalfFloats.floatToBf16(Float.intBitsToFloat(bits)), "round trip " + b);
      }
    }
  }

  @Test
  void floatToBf16RoundsToNearestEvenAtEveryBoundary() {
    for (int a = 0; a < 0x7f80; a++) { // every adjacent pair of finite non-negative BF16 values
      int lo = a << 16;
      int mid = lo | 0x8000; // exact midpoint in F32 bits
      int even = (a & 1) == 0 ? a : a + 1;
      assertEquals((short) even, HalfFloats.floatToBf16(Float.intBitsToFloat(mid)), "tie above " + a);
      assertEquals((short) a, HalfFloats.floatToBf16(Float.intBitsToFloat(mid - 1)), "below tie " + a);
      assertEquals((short) (a + 1), HalfFloats.floatToBf16(Float.intBitsToFloat(mid + 1)), "above tie " + a);
    }
    assertEquals((short) 0x7fc0, HalfFloats.floatToBf16(Float.NaN));
    assertEquals((short) 0x7fc0, HalfFloats.floatToBf16(Float.intBitsToFloat(0x7f800001)));
    assertEquals((short) 0x7f80, HalfFloats.floatToBf16(Float.MAX_VALUE)); // rounds up to infinity
  }
}
