package io.github.llmkernels.attention;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.BiFunction;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The same crafted F32 score arrays into the Java reference and the CPU / CUDA selection: bit
 * for bit identical selections and head counts (divergence within one F32 rounding). Arrays: all
 * equal, few repeated values, +-0, NaN, -inf, infinities, negative values, powers of two whose
 * partial sums land exactly on the targets; budgets 0, budgets beyond the candidates, forced
 * counts beyond the budget, thresholds 1 and tiny, FlexPrefill's dense fallback and both decisions.
 */
class SparsePrefillSelectExactTest {

  static Stream<Arguments> cases() {
    return Stream.of(Arguments.of(Backend.NATIVE));
  }

  static Stream<Arguments> gpuCases() {
    return Stream.of(Arguments.of(Backend.CUDA));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void nativeSelectsLikeTheReference(Backend backend) {
    TestBackends.assumeNative();
    check(backend);
  }

  @Tag("gpu")
  @ParameterizedTest(name = "{0}")
  @MethodSource("gpuCases")
  void cudaSelectsLikeTheReference(Backend backend) {
    TestBackends.assumeCuda();
    check(backend);
  }

  /** Score generators: (random, index) -> value. */
  static List<BiFunction<SplittableRandom, Integer, Float>> generators() {
    List<BiFunction<SplittableRandom, Integer, Float>> g = new ArrayList<>();
    g.add((r, i) -> 0.5f); // all equal
    g.add((r, i) -> (float) r.nextInt(3)); // few repeated values
    g.add((r, i) -> r.nextBoolean() ? 0f : -0f); // signed zeros
    g.add((r, i) -> r.nextInt(4) == 0 ? Float.NaN : (float) r.nextInt(5)); // NaN among values
    g.add((r, i) -> r.nextInt(3) == 0 ? Float.NEGATIVE_INFINITY : r.nextFloat()); // -inf (unreachable-like)
    g.add((r, i) -> Float.NEGATIVE_INFINITY); // whole -inf rows
    g.add((r, i) -> r.nextInt(4) == 0 ? Float.POSITIVE_INFINITY : r.nextFloat()); // +inf masses
    g.add((r, i) -> (float) (r.nextDouble() - 0.5)); // negative values (mass 0)
    g.add((r, i) -> (float) Math.scalb(1.0, -r.nextInt(4))); // powers of two: sums hit targets exactly
    g.add((r, i) -> 0.25f); // equal quarters: cumulative sums land on 0.5, 0.75
    g.add((r, i) -> r.nextFloat()); // plain random
    return g;
  }

  /** Options whose selection rules differ; sizes for Sq 40, Sk 56, block 8. */
  static List<PrefillOptions> optionsList() {
    List<PrefillOptions> o = new ArrayList<>();
    for (VerticalSlashOptions.ColumnMode m : VerticalSlashOptions.ColumnMode.values()) {
      o.add(new VerticalSlashOptions(8, 5, 4, 2, 1, 8, 0, m));
      o.add(new VerticalSlashOptions(8, 0, 0, 0, 0, 8, 0, m)); // budgets 0
      o.add(new VerticalSlashOptions(8, 1000, 1000, 3, 3, 8, 0, m)); // budgets beyond Sk
      o.add(new VerticalSlashOptions(8, 1, 1, 10, 10, 8, 0, m)); // forced beyond the budget
    }
    o.add(new BlockTopKOptions(2, 8, false, 0));
    o.add(new BlockTopKOptions(0, 8, false, 0));
    o.add(new BlockTopKOptions(0, 8, true, 0));
    o.add(new BlockTopKOptions(3, 8, true, 0));
    o.add(new BlockTopKOptions(100, 8, false, 0));
    o.add(new FlexPrefillOptions(0.5, 0.1, 8, Integer.MAX_VALUE, 8, 8, 0));
    o.add(new FlexPrefillOptions(0.75, 1.0, 8, 24, 8, 8, 0)); // always query-aware
    o.add(new FlexPrefillOptions(1.0, 0.0, 0, Integer.MAX_VALUE, 8, 8, 0)); // never query-aware, minBudget 0
    o.add(new FlexPrefillOptions(0.9, 0.5, 0, 0, 8, 8, 0)); // maxBudget 0: forced blocks only
    o.add(new FlexPrefillOptions(0.9, 0.1, 320, Integer.MAX_VALUE, 8, 8, 0)); // dense fallback (Sq <= 40 blocks)
    o.add(new XAttentionOptions(4, 0.5, 8, 0));
    o.add(new XAttentionOptions(4, 1.0, 8, 0));
    o.add(new XAttentionOptions(8, 1e-9, 8, 0));
    return o;
  }

  private static void check(Backend backend) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    Exec exec = Exec.backend(backend);
    Device device = backend == Backend.CUDA ? Device.cuda(0) : Device.CPU;
    try (Tensor q = Tensor.zeros(DType.F32, Device.CPU, 2, 2, 40, 4);
        Tensor k = Tensor.zeros(DType.F32, Device.CPU, 2, 1, 56, 4)) {
      for (PrefillOptions o : optionsList()) {
        PrefillParams p = PrefillParams.resolve("test", q, k, o, 0);
        int n = (int) (p.scoresPerHead() * p.batch() * p.headsQ());
        List<BiFunction<SplittableRandom, Integer, Float>> gens = generators();
        for (int gi = 0; gi < gens.size(); gi++) {
          float[] scores = new float[n];
          for (int i = 0; i < n; i++) {
            scores[i] = gens.get(gi).apply(rnd, i);
          }
          String ctx = backend + " " + o + " generator " + gi + ", seed " + seed;
          try (Tensor host = Tensor.of(scores, p.batch(), p.headsQ(), p.scoresPerHead());
              Tensor t = backend == Backend.CUDA ? host.to(device) : host.view(host.shape())) {
            SparsePrefillParityTest.assertSelectsLikeTheReference(p, t, scores, backend, exec, ctx);
          }
        }
      }
    }
  }
}
