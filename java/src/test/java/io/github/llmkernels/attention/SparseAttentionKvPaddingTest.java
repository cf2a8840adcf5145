package io.github.llmkernels.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Varlen: K and V rows at and past {@code kLens[b]} are not part of the input (the padding of an
 * uninitialised KV cache may hold NaN or Inf), so no backend may read them. With NaN and +Inf in
 * that padding every output must be finite, match the fp64 oracle, and equal bit for bit the same
 * backend's output for zero padding. Shape as the native tests': d 64, blocks 64 x 64 (the
 * tensor-core path on CUDA, the vectorised ISA tiles on the CPU), seq_k 128, kLens {100, 40}
 * (100 cuts the second key block, 40 the first, the second is then past the keys).
 */
class SparseAttentionKvPaddingTest {
  static final int B = 2;
  static final int HQ = 2;
  static final int HKV = 1;
  static final int SQ = 64;
  static final int SK = 128;
  static final int D = 64;
  static final int BLOCK = 64;
  static final int[] Q_LENS = {64, 64};
  static final int[] K_LENS = {100, 40};

  static Stream<Arguments> cases() {
    List<Arguments> out = new ArrayList<>();
    for (String mask : new String[] {"all", "causal"}) {
      for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
        out.add(Arguments.of(mask, dtype));
      }
    }
    return out.stream();
  }

  @ParameterizedTest(name = "java {0} {1}")
  @MethodSource("cases")
  void javaIgnoresPadding(String mask, DType dtype) {
    check(Backend.JAVA, Device.CPU, mask, dtype);
  }

  @ParameterizedTest(name = "native {0} {1}")
  @MethodSource("cases")
  void nativeIgnoresPadding(String mask, DType dtype) {
    TestBackends.requireNativeUnlessSkipped();
    TestBackends.assumeNative();
    check(Backend.NATIVE, Device.CPU, mask, dtype);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "cuda {0} {1}")
  @MethodSource("cases")
  void cudaIgnoresPadding(String mask, DType dtype) {
    TestBackends.assumeCuda();
    check(Backend.CUDA, Device.cuda(0), mask, dtype);
  }

  /** values with every row at and past kLens[b] replaced: NaN / +Inf alternating, or zero. */
  static float[] padded(float[] values, boolean nonFinite, boolean inK) {
    float[] out = values.clone();
    for (int b = 0; b < B; b++) {
      for (int h = 0; h < HKV; h++) {
        for (int j = K_LENS[b]; j < SK; j++) {
          for (int e = 0; e < D; e++) {
            boolean odd = ((j + e) & 1) != 0; // both NaN and +Inf in K and in V
            float bad = odd == inK ? Float.POSITIVE_INFINITY : Float.NaN;
            out[((b * HKV + h) * SK + j) * D + e] = nonFinite ? bad : 0.0f;
          }
        }
      }
    }
    return out;
  }

  static void check(Backend backend, Device device, String maskName, DType dtype) {
    long seed = RandomTensors.freshSeed();
    MaskSpec mask = maskName.equals("all") ? MaskSpec.all() : MaskSpec.causal();
    AttentionOptions opts = AttentionOptions.defaults();
    DType outType = opts.resolvedOutputDType(dtype);
    double scale = opts.resolvedScale(D);
    Exec exec = Exec.backend(backend);
    try (AttentionCase c = new AttentionCase(seed, B, HQ, HKV, SQ, SK, D, dtype);
        Tensor kZero = Tensor.fromFloats(padded(c.k.toFloatArray(), false, true), dtype, B, HKV, SK, D);
        Tensor vZero = Tensor.fromFloats(padded(c.v.toFloatArray(), false, false), dtype, B, HKV, SK, D);
        Tensor kBad = Tensor.fromFloats(padded(c.k.toFloatArray(), true, true), dtype, B, HKV, SK, D);
        Tensor vBad = Tensor.fromFloats(padded(c.v.toFloatArray(), true, false), dtype, B, HKV, SK, D);
        BlockLayout layout = BlockLayout.compile(mask, B, HQ, SQ, SK, BLOCK, BLOCK, Q_LENS, K_LENS, device, exec);
        Tensor q = c.q.to(device);
        Tensor kz = kZero.to(device);
        Tensor vz = vZero.to(device);
        Tensor kb = kBad.to(device);
        Tensor vb = vBad.to(device);
        AttentionOutput zero = SparseAttention.forward(q, kz, vz, layout, opts, exec);
        AttentionOutput bad = SparseAttention.forward(q, kb, vb, layout, opts, exec)) {
      String ctx = backend + " " + maskName + " " + c.describe() + " kLens " + Arrays.toString(K_LENS) + " seed "
          + seed;
      float[] out = bad.out().toFloatArray();
      for (int i = 0; i < out.length; i++) {
        int at = i;
        assertTrue(Float.isFinite(out[i]), () -> "out[" + at + "] = " + out[at] + " with NaN/Inf K/V padding: " + ctx);
      }
      // The oracle never reads a key past kLen, so it may see the padded tensors themselves.
      SparseAttentionRef.Result ref = SparseAttentionRef.dense(c.q, kBad, vBad, mask, Q_LENS, K_LENS, scale,
          opts.softcap());
      float[] naive = dtype == DType.F32 ? null : c.naive(mask, Q_LENS, K_LENS, scale, opts.softcap(), outType);
      c.assertClose(bad.out(), bad.lse(), ref, naive, ctx);
      assertArrayEquals(zero.out().toFloatArray(), out, "out differs from zero padding: " + ctx);
      assertArrayEquals(zero.lse().toFloatArray(), bad.lse().toFloatArray(), "lse differs from zero padding: " + ctx);
    }
  }
}
