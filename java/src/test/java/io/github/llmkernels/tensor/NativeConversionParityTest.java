package io.github.llmkernels.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.github.llmkernels.runtime.NativeCpu;
import io.github.llmkernels.testing.TestBackends;
import io.github.llmkernels.testing.Tolerances;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Native vectorised conversions equal the Java rules bit for bit, on every CPU variant this
 * machine can run (x86-64 baseline, AVX2, AVX-512), for every 16-bit pattern and for floats
 * at and around every rounding boundary plus random ones.
 */
class NativeConversionParityTest {
  private String variantBefore;

  @AfterEach
  void restoreVariant() {
    if (variantBefore != null) {
      NativeCpu.useVariant(variantBefore);
    }
  }

  private void useVariant(String variant) {
    TestBackends.assumeNative();
    org.junit.jupiter.api.Assumptions.assumeTrue(NativeCpu.supportsVariant(variant), "CPU cannot run " + variant);
    variantBefore = NativeCpu.variant();
    NativeCpu.useVariant(variant);
    assertEquals(variant, NativeCpu.variant());
  }

  @ParameterizedTest
  @ValueSource(strings = {"x86-64", "avx2", "avx512"})
  void sixteenBitToFloatForAllPatterns(String variant) {
    useVariant(variant);
    short[] all = new short[65536];
    for (int i = 0; i < all.length; i++) {
      all[i] = (short) i;
    }
    for (DType dtype : new DType[] {DType.F16, DType.BF16}) {
      try (Tensor src = Tensor.ofBits(all, dtype, all.length); Tensor out = src.convertTo(DType.F32)) {
        long diffs = 0;
        for (int i = 0; i < all.length; i++) {
          float expected = dtype == DType.F16 ? HalfFloats.f16ToFloat(all[i]) : HalfFloats.bf16ToFloat(all[i]);
          diffs += Float.floatToRawIntBits(expected) == Float.floatToRawIntBits((float) out.getDouble(i)) ? 0 : 1;
        }
        assertEquals(Tolerances.CONVERSION_MAX_BIT_DIFFERENCES, diffs, dtype + " on " + variant);
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"x86-64", "avx2", "avx512"})
  void floatToSixteenBitAtBoundariesAndRandom(String variant) {
    useVariant(variant);
    long seed = System.nanoTime();
    SplittableRandom rnd = new SplittableRandom(seed);
    List<Float> values = new ArrayList<>();
    for (int h = 0; h < 65536; h++) { // each half, and the F32 values around its upper midpoint
      float f = HalfFloats.f16ToFloat((short) h);
      values.add(f);
      int bits = Float.floatToRawIntBits(f) + (1 << 12); // midpoint to the next half (normals)
      values.add(Float.intBitsToFloat(bits));
      values.add(Float.intBitsToFloat(bits - 1));
      values.add(Float.intBitsToFloat(bits + 1));
      values.add(Float.intBitsToFloat((h << 16) | 0x8000)); // BF16 midpoints
    }
    for (int i = 0; i < 200_003; i++) { // odd count: exercises the vector tails
      values.add(Float.intBitsToFloat(rnd.nextInt()));
    }
    float[] data = new float[values.size()];
    for (int i = 0; i < data.length; i++) {
      data[i] = values.get(i);
    }
    try (Tensor src = Tensor.of(data, data.length)) {
      for (DType dtype : new DType[] {DType.F16, DType.BF16}) {
        try (Tensor out = src.convertTo(dtype)) {
          short[] bits = out.toBitsArray();
          long diffs = 0;
          for (int i = 0; i < data.length; i++) {
            short expected = dtype == DType.F16 ? HalfFloats.floatToF16(data[i]) : HalfFloats.floatToBf16(data[i]);
            diffs += expected == bits[i] ? 0 : 1;
          }
          assertEquals(Tolerances.CONVERSION_MAX_BIT_DIFFERENCES, diffs, dtype + " on " + variant + ", seed " + seed);
        }
      }
    }
  }
}
