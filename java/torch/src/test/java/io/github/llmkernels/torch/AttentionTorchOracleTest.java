package io.github.llmkernels.torch;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.attention.AttentionOptions;
import io.github.llmkernels.attention.AttentionOutput;
import io.github.llmkernels.attention.BlockLayout;
import io.github.llmkernels.attention.MaskSpec;
import io.github.llmkernels.attention.SparseAttention;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import io.github.llmkernels.testing.Tolerances;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.BiPredicate;
import java.util.stream.Stream;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Block-sparse attention against libtorch, the outside oracle: {@code scaled_dot_product_attention}
 * (GQA via enable_gqa) with an explicit boolean mask on the CPU, F32. The boolean masks are
 * written here from their textbook definitions (not from MaskSpec), so a wrong mask semantics in
 * the library would show too. Odd lengths Sq 113, Sk 203 (bottom-right aligned causal), Hq 4 over
 * Hkv 2, d 64, blocks 32 x 48, on every host backend. Every query row keeps at least one visible
 * key (torch gives NaN for a fully masked row; the library's 0 / -inf rule is tested elsewhere).
 */
class AttentionTorchOracleTest {
  static final int B = 2;
  static final int HQ = 4;
  static final int HKV = 2;
  static final int SQ = 113;
  static final int SK = 203;
  static final int D = 64;
  static final int OFFSET = SK - SQ; // bottom-right alignment: query i is key position i + OFFSET
  static final long SEED = RandomTensors.freshSeed();
  static float[] q;
  static float[] k;
  static float[] v;
  static int[] docs;

  @BeforeAll
  static void inputs() {
    SplittableRandom rnd = new SplittableRandom(SEED);
    q = gaussian(rnd, B * HQ * SQ * D);
    k = gaussian(rnd, B * HKV * SK * D);
    v = gaussian(rnd, B * HKV * SK * D);
    docs = new int[SK]; // packed documents over key positions; query i sits at i + OFFSET
    for (int j = 0, doc = 0; j < SK; j++) {
      if (j > 0 && rnd.nextDouble() < 0.03) {
        doc++;
      }
      docs[j] = doc;
    }
    TestBackends.requireNativeUnlessSkipped();
  }

  static float[] gaussian(SplittableRandom rnd, int n) {
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = (float) RandomTensors.gaussian(rnd);
    }
    return out;
  }

  record MaskCase(String name, MaskSpec spec, BiPredicate<Integer, Integer> visible) {
    @Override
    public String toString() {
      return name;
    }
  }

  static List<MaskCase> masks() {
    int[][] qDocs = new int[1][SQ];
    for (int i = 0; i < SQ; i++) {
      qDocs[0][i] = docs[i + OFFSET];
    }
    return List.of(
        new MaskCase("none", MaskSpec.all(), (i, j) -> true),
        new MaskCase("causal", MaskSpec.causal(), (i, j) -> j <= i + OFFSET),
        new MaskCase("window 17 + 5 sinks", MaskSpec.slidingWindow(17).or(MaskSpec.sinks(5)),
            (i, j) -> (j <= i + OFFSET && j >= i + OFFSET - 17) || j < 5),
        new MaskCase("causal documents", MaskSpec.causal().and(MaskSpec.documents(qDocs, new int[][] {docs})),
            (i, j) -> j <= i + OFFSET && docs[j] == docs[i + OFFSET]),
        new MaskCase("not causal or diagonal", MaskSpec.causal().not().or(MaskSpec.window(0, 0)),
            (i, j) -> j >= i + OFFSET));
  }

  static Stream<Arguments> cases() {
    List<Arguments> out = new ArrayList<>();
    for (Backend b : TestBackends.host()) {
      for (MaskCase m : masks()) {
        out.add(Arguments.of(b, m));
      }
    }
    return out.stream();
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void matchesTorchSdpa(Backend backend, MaskCase mask) {
    float[] expected = torchSdpa(mask.visible());
    float[] got;
    try (Tensor tq = Tensor.of(q, B, HQ, SQ, D);
        Tensor tk = Tensor.of(k, B, HKV, SK, D);
        Tensor tv = Tensor.of(v, B, HKV, SK, D);
        BlockLayout layout = BlockLayout.compile(mask.spec(), B, HQ, SQ, SK, 32, 48);
        AttentionOutput o = SparseAttention.forward(tq, tk, tv, layout, AttentionOptions.defaults(),
            Exec.backend(backend))) {
      got = o.out().toFloatArray();
    }
    double worst = 0;
    for (int i = 0; i < got.length; i++) {
      worst = Math.max(worst, Math.abs(got[i] - expected[i]));
    }
    assertTrue(worst <= Tolerances.ATTN_TORCH_F32_ATOL,
        () -> backend + " " + mask + ": max |out - torch| = " + worstText(got, expected) + " (seed " + SEED + ")");
  }

  private static String worstText(float[] got, float[] expected) {
    double worst = 0;
    int at = 0;
    for (int i = 0; i < got.length; i++) {
      double e = Math.abs(got[i] - expected[i]);
      if (e > worst) {
        worst = e;
        at = i;
      }
    }
    return worst + " at flat index " + at;
  }

  /** libtorch SDPA (math on CPU, F32) with the mask expanded to [Sq, Sk] booleans. */
  static float[] torchSdpa(BiPredicate<Integer, Integer> visible) {
    byte[] bits = new byte[SQ * SK];
    for (int i = 0; i < SQ; i++) {
      for (int j = 0; j < SK; j++) {
        bits[i * SK + j] = (byte) (visible.test(i, j) ? 1 : 0);
      }
    }
    try (PointerScope scope = new PointerScope(); BytePointer p = new BytePointer(bits)) {
      org.bytedeco.pytorch.Tensor m = torch.from_blob(p, new long[] {SQ, SK}, new TensorOptions(ScalarType.Bool));
      org.bytedeco.pytorch.Tensor out = torch.scaled_dot_product_attention(TorchOracle.floats(q, B, HQ, SQ, D),
          TorchOracle.floats(k, B, HKV, SK, D), TorchOracle.floats(v, B, HKV, SK, D), new TensorOptional(m), 0.0,
          false, new DoubleOptional(), true);
      return TorchOracle.read(out);
    }
  }
}
