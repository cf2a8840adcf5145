package io.github.llmkernels.torch;

import io.github.llmkernels.testing.Tolerances;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.llmkernels.loss.CceForward;
import io.github.llmkernels.loss.CceGradients;
import io.github.llmkernels.loss.CceOptions;
import io.github.llmkernels.loss.CutCrossEntropy;
import io.github.llmkernels.loss.Reduction;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Cut cross-entropy against libtorch, the outside oracle: {@code cross_entropy(linear(E, C, b),
 * targets, ignore_index=-100, label_smoothing, reduction)} and its autograd gradients of E, C and
 * the bias, on a moderate F32 problem (N = 257, D = 64, V = 1031, ~20% ignored targets, logits of
 * std ~2), for every host backend; exact (filterEps 0) and with the default gradient filtering.
 */
class CceTorchOracleTest {
  static final int N = 257;
  static final int D = 64;
  static final int V = 1031;
  static final long IGNORE = -100;
  static final long SEED = RandomTensors.freshSeed();

  static float[] e;
  static float[] c;
  static float[] bias;
  static long[] targets;
  static float[] rowWeights;
  static final Map<String, TorchOracle.Result> ORACLE = new ConcurrentHashMap<>();
  static Tensor libE;
  static Tensor libC;
  static Tensor libBias;
  static Tensor libTargets;

  @BeforeAll
  static void inputs() {
    SplittableRandom rnd = new SplittableRandom(SEED);
    e = gaussian(rnd, N * D, 1);
    c = gaussian(rnd, V * D, 2 / Math.sqrt(D)); // logits E C^T of std ~2
    bias = gaussian(rnd, V, 0.5);
    targets = new long[N];
    for (int i = 0; i < N; i++) {
      targets[i] = rnd.nextDouble() < 0.2 ? IGNORE : rnd.nextLong(V);
    }
    targets[0] = 0;
    targets[1] = V - 1;
    targets[2] = IGNORE;
    rowWeights = new float[N];
    for (int i = 0; i < N; i++) {
      rowWeights[i] = (float) (0.5 + rnd.nextDouble());
    }
    libE = Tensor.of(e, N, D);
    libC = Tensor.of(c, V, D);
    libBias = Tensor.of(bias, V);
    libTargets = Tensor.of(targets, N);
    TestBackends.requireNativeUnlessSkipped();
  }

  @AfterAll
  static void close() {
    for (Tensor t : new Tensor[] {libE, libC, libBias, libTargets}) {
      if (t != null) {
        t.close();
      }
    }
  }

  static float[] gaussian(SplittableRandom rnd, int n, double scale) {
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = (float) (RandomTensors.gaussian(rnd) * scale);
    }
    return out;
  }

  /** Upstream gradient of the loss: per-row weights for NONE, 0.75 for MEAN/SUM. */
  static float[] gradLoss(Reduction r) {
    return r == Reduction.NONE ? rowWeights : new float[] {0.75f};
  }

  static TorchOracle.Result oracle(Reduction r, double ls, boolean withBias) {
    return ORACLE.computeIfAbsent(r + "/" + ls + "/" + withBias, k -> TorchOracle.crossEntropy(e, c,
        withBias ? bias : null, targets, N, D, V, r, IGNORE, ls, gradLoss(r)));
  }

  static Stream<Arguments> cases() {
    List<Arguments> out = new ArrayList<>();
    for (Backend b : TestBackends.host()) {
      for (Reduction r : Reduction.values()) {
        for (double ls : new double[] {0, 0.1}) {
          for (boolean withBias : new boolean[] {false, true}) {
            for (boolean filtered : new boolean[] {false, true}) {
              out.add(Arguments.of(b, r, ls, withBias, filtered));
            }
          }
        }
      }
    }
    return out.stream();
  }

  @ParameterizedTest(name = "{0} {1} ls={2} bias={3} filtered={4}")
  @MethodSource("cases")
  void matchesLibtorch(Backend backend, Reduction reduction, double ls, boolean withBias, boolean filtered) {
    CceOptions opts = CceOptions.builder().reduction(reduction).labelSmoothing(ls).ignoreIndex(IGNORE)
        .filterEps(filtered ? CceOptions.FILTER_AUTO : 0).build();
    TorchOracle.Result want = oracle(reduction, ls, withBias);
    double atol = filtered ? Tolerances.CCE_TORCH_F32_FILTERED_ATOL : Tolerances.CCE_TORCH_F32_EXACT_ATOL;
    double rtol = filtered ? Tolerances.CCE_TORCH_F32_FILTERED_RTOL : Tolerances.CCE_TORCH_F32_EXACT_RTOL;
    String what = backend + " " + opts + " bias=" + withBias + " seed=" + SEED;
    Exec exec = Exec.backend(backend);
    Tensor b = withBias ? libBias : null;
    float[] g = gradLoss(reduction);
    try (CceForward f = CutCrossEntropy.forward(libE, libC, libTargets, b, opts, true, exec);
         Tensor gl = reduction == Reduction.NONE ? Tensor.of(g, N) : Tensor.of(g);
         CceGradients grads = CutCrossEntropy.backward(libE, libC, libTargets, b, f.lse(), gl, null, opts, exec)) {
      assertClose("loss", want.loss(), f.loss().toFloatArray(), Tolerances.CCE_TORCH_F32_EXACT_ATOL,
          Tolerances.CCE_TORCH_F32_EXACT_RTOL, what);
      assertClose("gradE", want.gradE(), grads.gradE().toFloatArray(), atol, rtol, what);
      assertClose("gradC", want.gradC(), grads.gradC().toFloatArray(), atol, rtol, what);
      if (withBias) {
        assertClose("gradBias", want.gradBias(), grads.gradBias().toFloatArray(), atol, rtol, what);
      } else {
        assertNull(grads.gradBias(), "no bias, no gradBias");
      }
      if (backend == Backend.JAVA || !filtered) {
        assertEquals(0, grads.tilesSkipped(), "exact gradients skip nothing: " + what);
      }
      System.out.printf("oracle %s: loss err %.2e, gradE err %.2e, gradC err %.2e, skipped %d/%d%n", what,
          maxError(want.loss(), f.loss().toFloatArray()), maxError(want.gradE(), grads.gradE().toFloatArray()),
          maxError(want.gradC(), grads.gradC().toFloatArray()), grads.tilesSkipped(), grads.tilesTotal());
    }
  }

  /** The same problem through {@link TorchCce} on torch tensors, against the same oracle. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("hostBackends")
  void torchCceMatchesLibtorch(Backend backend) {
    for (Reduction reduction : new Reduction[] {Reduction.MEAN, Reduction.NONE}) {
      CceOptions opts = CceOptions.builder().reduction(reduction).labelSmoothing(0.1).filterEps(0).build();
      TorchOracle.Result want = oracle(reduction, 0.1, true);
      String what = "TorchCce " + backend + " " + reduction + " seed=" + SEED;
      try (PointerScope scope = new PointerScope()) {
        org.bytedeco.pytorch.Tensor te = TorchOracle.floats(e, N, D);
        org.bytedeco.pytorch.Tensor tc = TorchOracle.floats(c, V, D);
        org.bytedeco.pytorch.Tensor tb = TorchOracle.floats(bias, V);
        org.bytedeco.pytorch.Tensor tt = TorchOracle.longs(targets, N);
        float[] g = gradLoss(reduction);
        org.bytedeco.pytorch.Tensor gl = reduction == Reduction.NONE ? TorchOracle.floats(g, N)
            : TorchOracle.floats(g);
        TorchCce.Loss f = TorchCce.forward(te, tc, tt, tb, opts, backend);
        TorchCce.Gradients grads = TorchCce.backward(te, tc, tt, tb, f.lse(), gl, null, opts, backend);
        assertClose("loss", want.loss(), TorchOracle.read(f.loss()), Tolerances.CCE_TORCH_F32_EXACT_ATOL,
            Tolerances.CCE_TORCH_F32_EXACT_RTOL, what);
        assertClose("gradE", want.gradE(), TorchOracle.read(grads.gradE()), Tolerances.CCE_TORCH_F32_EXACT_ATOL,
            Tolerances.CCE_TORCH_F32_EXACT_RTOL, what);
        assertClose("gradC", want.gradC(), TorchOracle.read(grads.gradC()), Tolerances.CCE_TORCH_F32_EXACT_ATOL,
            Tolerances.CCE_TORCH_F32_EXACT_RTOL, what);
        assertClose("gradBias", want.gradBias(), TorchOracle.read(grads.gradBias()),
            Tolerances.CCE_TORCH_F32_EXACT_ATOL, Tolerances.CCE_TORCH_F32_EXACT_RTOL, what);
        // lse recomputed when not given, gradLoss defaulting to ones: same as an explicit 1.
        if (reduction == Reduction.MEAN) {
          TorchCce.Gradients again = TorchCce.backward(te, tc, tt, tb, null, null, opts.toBuilder().build());
          float[] unit = TorchOracle.read(again.gradE());
          float[] scaled = TorchOracle.read(grads.gradE());
          for (int i = 0; i < unit.length; i++) {
            unit[i] *= g[0];
          }
          assertClose("gradE (lse recomputed, gradLoss 1)", scaled, unit, Tolerances.CCE_TORCH_F32_EXACT_ATOL,
              Tolerances.CCE_TORCH_F32_EXACT_RTOL, what);
        }
      }
    }
  }

  static Stream<Backend> hostBackends() {
    return TestBackends.host().stream();
  }

  @Test
  void oracleSeesIgnoredTargets() {
    long ignored = java.util.Arrays.stream(targets).filter(t -> t == IGNORE).count();
    org.junit.jupiter.api.Assertions.assertTrue(ignored > N / 10 && ignored < N / 3,
        "about 20% ignored targets, got " + ignored + " of " + N + " (seed " + SEED + ")");
  }

  static double maxError(float[] expected, float[] actual) {
    double err = 0;
    for (int i = 0; i < expected.length; i++) {
      err = Math.max(err, Math.abs(actual[i] - expected[i]));
    }
    return err / Math.max(maxAbs(expected), Double.MIN_NORMAL);
  }

  static double maxAbs(float[] x) {
    double m = 0;
    for (float v : x) {
      m = Math.max(m, Math.abs(v));
    }
    return m;
  }

  /** |actual - expected| <= atol * max|expected| + rtol * |expected|, element by element. */
  static void assertClose(String name, float[] expected, float[] actual, double atol, double rtol, String what) {
    assertEquals(expected.length, actual.length, name + " length: " + what);
    double scale = maxAbs(expected);
    for (int i = 0; i < expected.length; i++) {
      double diff = Math.abs((double) actual[i] - expected[i]);
      if (!(diff <= atol * scale + rtol * Math.abs(expected[i]))) {
        fail(name + "[" + i + "] = " + actual[i] + " but libtorch gives " + expected[i] + " (|diff| " + diff
            + " > " + atol + " * " + scale + " + " + rtol + " * |expected|); " + what);
      }
    }
  }
}
