package io.github.llmkernels.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Bad parameters are rejected before anything runs, with a message naming the record or method,
 * the parameter, the rule and the value.
 */
class SparsePrefillBadInputTest {

  private static void rejects(Executable call, String... fragments) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), () -> "message \"" + e.getMessage() + "\" lacks \"" + f + "\"");
    }
  }

  @Test
  void optionRecordsRejectBadParameters() {
    for (double g : new double[] {0, -0.1, 1.01, Double.NaN}) {
      rejects(() -> FlexPrefillOptions.defaults().withGamma(g), "FlexPrefillOptions: gamma must be in (0, 1]; got "
          + g);
    }
    for (double t : new double[] {-0.1, 1.5, Double.NaN}) {
      rejects(() -> FlexPrefillOptions.defaults().withTau(t), "FlexPrefillOptions: tau must be in [0, 1]; got " + t);
    }
    for (double t : new double[] {0, 1.1, Double.NaN}) {
      rejects(() -> XAttentionOptions.defaults().withThreshold(t),
          "XAttentionOptions: threshold must be in (0, 1]; got " + t);
    }
    rejects(() -> FlexPrefillOptions.defaults().withBudgets(-1, 10), "minBudget must be >= 0; got -1");
    rejects(() -> FlexPrefillOptions.defaults().withBudgets(512, 256), "maxBudget must be >= minBudget = 512; got 256");
    rejects(() -> FlexPrefillOptions.defaults().withLastQ(-1), "lastQ must be >= 0; got -1");
    rejects(() -> VerticalSlashOptions.defaults().withBudgets(-1, 10), "VerticalSlashOptions: verticalSize must be >= 0; got -1");
    rejects(() -> VerticalSlashOptions.defaults().withBudgets(10, -1), "slashSize must be >= 0; got -1");
    rejects(() -> VerticalSlashOptions.defaults().withForced(-1, 0), "forcedColumns must be >= 0; got -1");
    rejects(() -> VerticalSlashOptions.defaults().withForced(0, -1), "forcedSlashes must be >= 0; got -1");
    rejects(() -> VerticalSlashOptions.defaults().withLastQ(-1), "lastQ must be >= 0; got -1");
    rejects(() -> VerticalSlashOptions.defaults().scaled(-1), "ratio must be finite and >= 0");
    rejects(() -> new BlockTopKOptions(-1, 64, false, 0), "BlockTopKOptions: topK must be >= 0; got -1");
    rejects(() -> new AShapeOptions(-1, 64, 64), "AShapeOptions: sinks must be >= 0; got -1");
    rejects(() -> new AShapeOptions(4, 0, 64), "AShapeOptions: local must be >= 1; got 0");
    rejects(() -> XAttentionOptions.defaults().withStride(0), "XAttentionOptions: stride must be >= 1; got 0");
    rejects(() -> XAttentionOptions.defaults().withStride(48), "block must be a multiple of stride = 48; got 128");
    for (int bad : new int[] {0, -3, (1 << 20) + 1}) {
      rejects(() -> new BlockTopKOptions(1, bad, false, 0), "block must be in [1, 2^20]; got " + bad);
      rejects(() -> VerticalSlashOptions.defaults().withBlock(bad), "block must be in [1, 2^20]; got " + bad);
      rejects(() -> AShapeOptions.defaults().withBlock(bad), "block must be in [1, 2^20]; got " + bad);
      rejects(() -> FlexPrefillOptions.defaults().withBlock(bad), "block must be in [1, 2^20]; got " + bad);
    }
    for (double s : new double[] {-1, Double.NaN, Double.POSITIVE_INFINITY, 1e-31}) {
      rejects(() -> VerticalSlashOptions.defaults().withScale(s), "scale must be 0 (= 1/sqrt(d)) or in [1e-30, 1e30]");
      rejects(() -> XAttentionOptions.defaults().withScale(s), "scale must be 0");
    }
  }

  @Test
  void defaultsAreThePapers() {
    VerticalSlashOptions vs = VerticalSlashOptions.defaults();
    assertEquals(new VerticalSlashOptions(0, 1000, 6096, 30, 100, 64, 0, VerticalSlashOptions.ColumnMode.TOKENS), vs);
    assertEquals(64, vs.resolvedLastQ(10_000));
    assertEquals(10, vs.resolvedLastQ(10));
    assertEquals(new AShapeOptions(128, 3968, 64), AShapeOptions.defaults());
    assertEquals(new BlockTopKOptions(100, 64, false, 0), BlockTopKOptions.defaults());
    assertEquals(new FlexPrefillOptions(0.9, 0.1, 1024, Integer.MAX_VALUE, 128, 0, 0), FlexPrefillOptions.defaults());
    assertEquals(128, FlexPrefillOptions.defaults().resolvedLastQ(4096));
    assertEquals(new XAttentionOptions(8, 0.9, 128, 0), XAttentionOptions.defaults());
    assertEquals(new VerticalSlashOptions(0, 500, 3048, 30, 100, 64, 0, VerticalSlashOptions.ColumnMode.TOKENS), vs.scaled(0.5));
    assertEquals(1 / Math.sqrt(128), vs.resolvedScale(128), 0);
    assertEquals(0.25, vs.withScale(0.25).resolvedScale(128), 0);
  }

  @Test
  void estimateRejectsSequenceDependentParameters() {
    SplittableRandom rnd = new SplittableRandom(RandomTensors.freshSeed());
    try (Tensor q = RandomTensors.normal(rnd, DType.F32, 1, 2, 40, 16);
        Tensor k = RandomTensors.normal(rnd, DType.F32, 1, 2, 60, 16);
        Tensor k61 = RandomTensors.normal(rnd, DType.F32, 1, 2, 61, 16);
        Tensor qLong = RandomTensors.normal(rnd, DType.F32, 1, 2, 61, 16)) {
      Exec java = Exec.backend(Backend.JAVA);
      rejects(() -> SparsePrefill.estimate(q, k, VerticalSlashOptions.defaults().withLastQ(41), java),
          "SparsePrefill.estimate (VERTICAL_SLASH): lastQ must be <= Sq = 40; got 41");
      rejects(() -> SparsePrefill.estimate(q, k, FlexPrefillOptions.defaults().withLastQ(41), java),
          "(FLEX_PREFILL): lastQ must be <= Sq = 40; got 41");
      rejects(() -> SparsePrefill.estimate(q, k, new AShapeOptions(61, 4, 16), java),
          "(A_SHAPE): sinks must be <= Sk = 60; got 61");
      rejects(() -> SparsePrefill.estimate(q, k, new AShapeOptions(4, 61, 16), java),
          "(A_SHAPE): local must be <= Sk = 60; got 61");
      rejects(() -> SparsePrefill.estimate(q, k61, new XAttentionOptions(4, 0.9, 16, 0), java),
          "(XATTENTION): Sk - Sq must be a multiple of stride = 4; got Sk - Sq = 21");
      rejects(() -> SparsePrefill.estimate(qLong, k, new BlockTopKOptions(1, 16, false, 0), java),
          "Sq must be <= Sk", "got Sq = 61, Sk = 60");
    }
  }

  @Test
  void estimateRejectsBadTensors() {
    SplittableRandom rnd = new SplittableRandom(RandomTensors.freshSeed());
    PrefillOptions o = new BlockTopKOptions(2, 16, false, 0);
    Exec java = Exec.backend(Backend.JAVA);
    try (Tensor q = RandomTensors.normal(rnd, DType.F32, 1, 3, 40, 16);
        Tensor k = RandomTensors.normal(rnd, DType.F32, 1, 2, 60, 16);
        Tensor q4 = RandomTensors.normal(rnd, DType.F32, 1, 4, 40, 16);
        Tensor kHalf = RandomTensors.normal(rnd, DType.BF16, 1, 2, 60, 16);
        Tensor kD = RandomTensors.normal(rnd, DType.F32, 1, 2, 60, 8);
        Tensor qI = Tensor.zeros(DType.I32, Device.CPU, 1, 4, 40, 16);
        Tensor q3 = RandomTensors.normal(rnd, DType.F32, 4, 40, 16)) {
      rejects(() -> SparsePrefill.estimate(q, k, o, java), "heads in k (Hkv = 2) must divide heads in q (Hq = 3)");
      rejects(() -> SparsePrefill.estimate(q4, kHalf, o, java), "k dtype BF16 must equal q dtype F32");
      rejects(() -> SparsePrefill.estimate(q4, kD, o, java), "k dimension 3 must equal d (from q) = 16");
      rejects(() -> SparsePrefill.estimate(qI, k, o, java), "q must have dtype in");
      rejects(() -> SparsePrefill.estimate(q3, k, o, java), "q must have rank 4");
      rejects(() -> SparsePrefill.estimate(null, k, o, java), "q must not be null");
      rejects(() -> SparsePrefill.estimate(q4, k, null, java), "options must not be null");
      Tensor closed = RandomTensors.normal(rnd, DType.F32, 1, 2, 60, 16);
      closed.close();
      assertThrows(IllegalStateException.class, () -> SparsePrefill.estimate(q4, closed, o, java));
    }
  }

  @Tag("gpu")
  @Test
  void deviceMismatchIsRejected() {
    TestBackends.assumeCuda();
    SplittableRandom rnd = new SplittableRandom(RandomTensors.freshSeed());
    try (Tensor q = RandomTensors.normal(rnd, DType.F32, 1, 2, 40, 16);
        Tensor kHost = RandomTensors.normal(rnd, DType.F32, 1, 2, 40, 16);
        Tensor k = kHost.to(Device.cuda(0))) {
      rejects(() -> SparsePrefill.estimate(q, k, new BlockTopKOptions(2, 16, false, 0)), "all tensors must be on one device");
    }
  }
}
