package io.github.llmkernels.loss;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.NativeCpu;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.testing.TestBackends;
import org.junit.jupiter.api.Test;

/**
 * The native workspace never grows with N x V: it is O(N + V) per-row/per-column arrays plus
 * fixed per-thread tiles (plus an fp32 copy of dC for F16/BF16 gradients with fp32 accumulation
 * over several row chunks). The kernel allocates exactly what workspaceBytes reports (one
 * allocation sized by the same plan), so bounding the report bounds the memory.
 */
class CceWorkspaceTest {
  /** Bytes per row of E and per classifier row the plan may use (indices, targets, statistics). */
  static final long PER_ROW_OR_COLUMN = 64;

  @Test
  void workspaceIsLinearInNPlusV() {
    TestBackends.requireNativeUnlessSkipped();
    TestBackends.assumeNative();
    CceOptions o = CceOptions.defaults();
    long d = 512;
    for (boolean backward : new boolean[] {false, true}) {
      long base = CutCrossEntropy.workspaceBytes(8192, d, 32000, DType.F32, false, o, backward, Backend.NATIVE);
      long moreRows = CutCrossEntropy.workspaceBytes(4 * 8192, d, 32000, DType.F32, false, o, backward,
          Backend.NATIVE);
      long moreVocab = CutCrossEntropy.workspaceBytes(8192, d, 4 * 32000, DType.F32, false, o, backward,
          Backend.NATIVE);
      String ctx = (backward ? "backward" : "forward") + ": base " + base + ", 4x rows " + moreRows + ", 4x vocab "
          + moreVocab;
      assertTrue(moreRows - base <= PER_ROW_OR_COLUMN * 3 * 8192, ctx);
      assertTrue(moreVocab - base <= PER_ROW_OR_COLUMN * 3 * 32000, ctx);
      // Against the logits a materialising implementation stores: N x V x 4 bytes = 1 GiB here.
      assertTrue(base < 8192L * 32000 * 4 / 20, ctx);
      // Fixed per-thread tiles: at most 16 MiB per thread at this D.
      long fixed = base - PER_ROW_OR_COLUMN * (8192 + 32000);
      assertTrue(fixed <= (16L << 20) * NativeCpu.threads(), ctx);
    }
  }

  @Test
  void fp32AccumulationOfHalfGradientsCostsOneFp32CopyOfDc() {
    TestBackends.assumeNative();
    long n = 1 << 15, d = 256, v = 50000;
    CceOptions on = CceOptions.defaults();
    CceOptions off = on.toBuilder().fp32Accumulation(false).build();
    long withAcc = CutCrossEntropy.workspaceBytes(n, d, v, DType.BF16, false, on, true, Backend.NATIVE);
    long without = CutCrossEntropy.workspaceBytes(n, d, v, DType.BF16, false, off, true, Backend.NATIVE);
    assertTrue(withAcc - without == v * d * 4, "fp32 dC accumulator: " + withAcc + " - " + without);
  }
}
