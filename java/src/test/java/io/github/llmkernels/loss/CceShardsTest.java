package io.github.llmkernels.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Vocabulary-parallel CCE: shards combined equal the unsharded call, forward and backward. */
class CceShardsTest {

  static List<Backend> backends() {
    return TestBackends.host();
  }

  @ParameterizedTest
  @MethodSource("backends")
  void combinedShardsEqualTheWholeVocabulary(Backend backend) {
    long seed = RandomTensors.freshSeed();
    int v = 507;
    int[] bounds = {0, 130, 131, 507}; // uneven shards, one of a single row
    CceOptions o = CceOptions.builder().labelSmoothing(0.1).shift(1).zLossScale(1e-4).filterEps(0).build();
    Exec exec = Exec.backend(backend);
    try (CceCase k = CceCase.random(seed, CceCase.Spec.of(97, 33, v, DType.F32).withBias(true), o);
        CceForward whole = CutCrossEntropy.forward(k.e, k.c, k.targets, k.bias, o, true, exec);
        CceGradients wholeGrad = CutCrossEntropy.backward(k.e, k.c, k.targets, k.bias, whole.lse(), 1f, o, exec);
        Tensor one = Tensor.of(new float[] {1f})) {
      String ctx = backend + " " + k.describe();
      List<CceShardStats> parts = new ArrayList<>();
      List<Tensor> slices = new ArrayList<>();
      try {
        for (int s = 0; s + 1 < bounds.length; s++) {
          Tensor cs = k.c.slice(0, bounds[s], bounds[s + 1]).contiguous();
          Tensor bs = k.bias.slice(0, bounds[s], bounds[s + 1]).contiguous();
          slices.add(cs);
          slices.add(bs);
          parts.add(CceShards.forward(k.e, cs, k.targets, bs, bounds[s], v, o, exec));
        }
        try (CceShardStats combined = CceShards.combine(parts, k.targets, o);
            Tensor loss = CceShards.loss(combined, k.targets, o, v)) {
          CceCase.assertForwardClose("combined lse", combined.lse().toFloatArray(), whole.lse().toFloatArray(), ctx);
          CceCase.assertForwardClose("loss", loss.toFloatArray(), whole.loss().toFloatArray(), ctx);
          float[] dE = new float[k.n * k.d];
          float[] dC = new float[v * k.d];
          float[] dB = new float[v];
          for (int s = 0; s + 1 < bounds.length; s++) {
            try (CceGradients g = CceShards.backward(k.e, slices.get(2 * s), k.targets, slices.get(2 * s + 1),
                bounds[s], v, combined.lse(), one, null, o, exec)) {
              float[] ge = g.gradE().toFloatArray();
              for (int i = 0; i < ge.length; i++) {
                dE[i] += ge[i];
              }
              System.arraycopy(g.gradC().toFloatArray(), 0, dC, bounds[s] * k.d, (bounds[s + 1] - bounds[s]) * k.d);
              System.arraycopy(g.gradBias().toFloatArray(), 0, dB, bounds[s], bounds[s + 1] - bounds[s]);
            }
          }
          CceCase.assertGradClose("summed dE", dE, wholeGrad.gradE().toFloatArray(), DType.F32, null, 0, ctx);
          CceCase.assertGradClose("joined dC", dC, wholeGrad.gradC().toFloatArray(), DType.F32, null, 0, ctx);
          CceCase.assertGradClose("joined dBias", dB, wholeGrad.gradBias().toFloatArray(), DType.F32, null, 0, ctx);
        }
      } finally {
        parts.forEach(CceShardStats::close);
        slices.forEach(Tensor::close);
      }
    }
  }

  @ParameterizedTest
  @MethodSource("backends")
  void shardOutsideTheVocabularyIsRejected(Backend backend) {
    try (Tensor e = Tensor.of(new float[4], 1, 4); Tensor c = Tensor.of(new float[8], 2, 4);
        Tensor t = Tensor.of(new int[] {0}, 1)) {
      IllegalArgumentException ex = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
          () -> CceShards.forward(e, c, t, null, 9, 10, CceOptions.defaults(), Exec.backend(backend)));
      assertEquals(true, ex.getMessage().contains("must lie inside [0, vocabTotal = 10)"), ex.getMessage());
    }
  }
}
