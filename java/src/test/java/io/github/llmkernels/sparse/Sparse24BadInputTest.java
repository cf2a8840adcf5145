package io.github.llmkernels.sparse;

import static io.github.llmkernels.sparse.Sp24TestUtil.assertMentions;
import static io.github.llmkernels.sparse.Sp24TestUtil.message;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.TestBackends;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Bad 2:4 arguments get an exception naming the argument (or row and group) and the rule, on every backend. */
class Sparse24BadInputTest {

  /** A [4, 32] weight, 2:4 except row 3, group 5 (columns 20..23) and a later group. */
  private static Tensor invalidWeight(DType dtype) {
    float[] w = new float[4 * 32];
    for (int r = 0; r < 4; r++) {
      for (int g = 0; g < 8; g++) {
        w[r * 32 + 4 * g + (g + r) % 4] = 1 + g;
        w[r * 32 + 4 * g + (g + r + 2) % 4] = -1 - r;
      }
    }
    w[3 * 32 + 21] = 0.5f; // row 3, group 5 now has 3 non-zeros (positions 20, 21, 22)
    w[3 * 32 + 28] = 7; // row 3, group 7: 3 non-zeros too, but later
    w[3 * 32 + 29] = 7;
    return Tensor.fromFloats(w, dtype, 4, 32);
  }

  @Test
  void nonSparseWeightsNameRowAndGroup() {
    for (Backend backend : TestBackends.host()) {
      for (DType dtype : Sp24TestUtil.DTYPES) {
        Exec exec = Exec.backend(backend);
        String tag = backend + " " + dtype;
        try (Tensor w = invalidWeight(dtype)) {
          assertEquals(new Sparse24.Violation(3, 5), Sparse24.check(w, exec), tag);
          assertEquals("row 3, group 5 (columns 20..23)", Sparse24.check(w, exec).toString(), tag);
          assertFalse(Sparse24.isSparse24(w, exec), tag);
          assertMentions(message(IllegalArgumentException.class, () -> Sparse24.compress(w, exec)),
              "row 3, group 5 (columns 20..23)", "more than 2 non-zeros");
          try (Tensor pruned = Sparse24.prune(w, exec)) {
            assertTrue(Sparse24.isSparse24(pruned, exec), tag);
          }
        }
      }
    }
  }

  @Test
  void invalidMetadataNamesRowAndGroup() {
    short[] meta = new short[2 * 2];
    java.util.Arrays.fill(meta, (short) 0x4444); // {0, 1} everywhere
    meta[3] = (short) 0x4474; // row 1, group 4 + 1 = 5: nibble 7 = idx0 3, idx1 1
    try (Tensor values = Tensor.fromFloats(new float[2 * 16], DType.F16, 2, 16);
        Tensor metaT = Tensor.ofBits(meta, DType.U16, 2, 2)) {
      assertMentions(message(IllegalArgumentException.class, () -> Sparse24Weight.of(values, metaT)),
          "meta: row 1, group 5 (columns 20..23)", "idx0 < idx1", "nothing was wrapped");
      // past the wrap-time check (a weight built around it): decompress and matmul check again
      Sparse24Weight sw = new Sparse24Weight(values, metaT, 2, 32);
      try (Tensor x = Tensor.zeros(DType.F16, Device.CPU, 3, 32)) {
        for (Backend backend : TestBackends.host()) {
          Exec exec = Exec.backend(backend);
          assertMentions(message(IllegalArgumentException.class, () -> Sparse24.decompress(sw, exec)),
              "row 1, group 5 (columns 20..23)", "idx0 < idx1");
          assertMentions(message(IllegalArgumentException.class,
              () -> Sparse24.matmul(x, sw, null, Activation.NONE, exec)), "row 1, group 5 (columns 20..23)", "idx0 < idx1");
        }
      }
    }
  }

  @Test
  void kMustBeAMultipleOf16() {
    for (Backend backend : TestBackends.host()) {
      Exec exec = Exec.backend(backend);
      try (Tensor w = Tensor.zeros(DType.BF16, Device.CPU, 4, 20);
          Tensor x = Tensor.zeros(DType.BF16, Device.CPU, 2, 20);
          Tensor norms = Tensor.zeros(DType.F32, Device.CPU, 20)) {
        for (String m : new String[] {
          message(IllegalArgumentException.class, () -> Sparse24.prune(w, exec)),
          message(IllegalArgumentException.class, () -> Sparse24.prune(w, norms, exec)),
          message(IllegalArgumentException.class, () -> Sparse24.check(w, exec)),
          message(IllegalArgumentException.class, () -> Sparse24.compress(w, exec)),
          message(IllegalArgumentException.class, () -> Sparse24.denseMatmul(x, w, null, Activation.NONE, exec))}) {
          assertMentions(m, "K = 20", "multiple of 16");
        }
        assertMentions(message(IllegalArgumentException.class,
            () -> Sparse24Weight.of(Tensor.zeros(DType.BF16, Device.CPU, 4, 10), Tensor.zeros(DType.U16, Device.CPU, 4, 1))),
            "multiple of 16");
      }
    }
  }

  @Test
  void shapeAndDtypeMismatches() {
    for (Backend backend : TestBackends.host()) {
      Exec exec = Exec.backend(backend);
      try (Tensor w = Tensor.zeros(DType.F16, Device.CPU, 8, 32);
          Sparse24Weight sw = Sparse24.compress(w, exec);
          Tensor x48 = Tensor.zeros(DType.F16, Device.CPU, 3, 48);
          Tensor xBf = Tensor.zeros(DType.BF16, Device.CPU, 3, 32);
          Tensor x1 = Tensor.zeros(DType.F16, Device.CPU, 96);
          Tensor x = Tensor.zeros(DType.F16, Device.CPU, 3, 32);
          Tensor bias7 = Tensor.zeros(DType.F16, Device.CPU, 7);
          Tensor biasF32 = Tensor.zeros(DType.F32, Device.CPU, 8);
          Tensor bias2d = Tensor.zeros(DType.F16, Device.CPU, 1, 8);
          Tensor y = Tensor.zeros(DType.F16, Device.CPU, 3, 7);
          Tensor yBf = Tensor.zeros(DType.BF16, Device.CPU, 3, 8);
          Tensor norms = Tensor.zeros(DType.F32, Device.CPU, 16);
          Tensor normsF16 = Tensor.zeros(DType.F16, Device.CPU, 32);
          Tensor wInt = Tensor.of(new int[8 * 32], 8, 32);
          Tensor w3 = Tensor.zeros(DType.F16, Device.CPU, 2, 4, 32);
          Tensor out = Tensor.zeros(DType.F16, Device.CPU, 8, 16)) {
        Activation none = Activation.NONE;
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.matmul(x48, sw, null, none, exec)),
            "x dimension 1 must equal K (from weight) = 32", "[3, 48]");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.matmul(xBf, sw, null, none, exec)),
            "x dtype BF16 must equal weight dtype F16");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.matmul(x1, sw, null, none, exec)),
            "x must have rank 2");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.matmul(x, sw, bias7, none, exec)),
            "bias dimension 0 must equal M (from weight) = 8");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.matmul(x, sw, biasF32, none, exec)),
            "bias dtype F32 must equal x dtype F16");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.matmul(x, sw, bias2d, none, exec)),
            "bias must have rank 1");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.matmulInto(x, sw, null, none, y, exec)),
            "y must have shape [3, 8]");
        assertMentions(message(IllegalArgumentException.class,
            () -> Sparse24.matmulInto(x, sw, null, none, yBf, exec)), "y must have dtype F16");
        assertMentions(message(IllegalArgumentException.class,
            () -> Sparse24.denseMatmul(x48, w, null, none, exec)), "x dimension 1 must equal K (from w) = 32");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.matmul(x, sw, null, null, exec)),
            "act must not be null");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.matmul(x, sw, null, none, null)),
            "exec must not be null");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.matmul(null, sw, null, none, exec)),
            "x must not be null");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.matmul(x, null, null, none, exec)),
            "weight must not be null");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.prune(w, norms, exec)),
            "colNorms dimension 0 must equal K (from w) = 32");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.prune(w, normsF16, exec)),
            "colNorms must have dtype F32");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.compress(wInt, exec)), "w must have dtype");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.compress(w3, exec)), "w must have rank 2");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24.pruneInto(w, null, out, exec)),
            "out must have shape [8, 32]");
        assertMentions(message(IllegalArgumentException.class, () -> Sparse24Weight.of(sw.values(), null)),
            "meta must not be null");
      }
    }
  }

  @Test
  void overlappingOutputs() {
    for (Backend backend : TestBackends.host()) {
      Exec exec = Exec.backend(backend);
      try (Tensor w = Tensor.zeros(DType.F32, Device.CPU, 16, 16);
          Sparse24Weight sw = Sparse24.compress(w, exec);
          Tensor x = Tensor.zeros(DType.F32, Device.CPU, 4, 16);
          Tensor xView = x.view(4, 16);
          Tensor wView = w.view(16, 16)) {
        if (x.hasAddress()) { // views of JDK-allocated memory are not seen as overlapping
          assertMentions(message(IllegalArgumentException.class,
              () -> Sparse24.matmulInto(x, sw, null, Activation.NONE, xView, exec)), "y must not overlap x");
        }
        assertMentions(message(IllegalArgumentException.class,
            () -> Sparse24.matmulInto(x, sw, null, Activation.NONE, x, exec)), "y must not overlap x");
        assertMentions(message(IllegalArgumentException.class,
            () -> Sparse24.denseMatmulInto(x, w, null, Activation.NONE, x, exec)), "y must not overlap x");
        Sparse24.pruneInto(w, null, wView, exec); // same memory: in place, allowed
      }
    }
  }

  @Test
  void closedTensorsAndWeights() {
    for (Backend backend : TestBackends.host()) {
      Exec exec = Exec.backend(backend);
      Tensor closed = Tensor.zeros(DType.F32, Device.CPU, 4, 16);
      closed.close();
      Sparse24Weight closedWeight;
      try (Tensor w = Tensor.zeros(DType.F32, Device.CPU, 4, 16)) {
        closedWeight = Sparse24.compress(w, exec);
      }
      closedWeight.close();
      assertTrue(closedWeight.isClosed());
      try (Tensor w = Tensor.zeros(DType.F32, Device.CPU, 4, 16);
          Sparse24Weight sw = Sparse24.compress(w, exec);
          Tensor x = Tensor.zeros(DType.F32, Device.CPU, 2, 16)) {
        assertMentions(message(IllegalStateException.class, () -> Sparse24.prune(closed, exec)), "w is closed");
        assertMentions(message(IllegalStateException.class, () -> Sparse24.compress(closed, exec)), "w is closed");
        assertMentions(message(IllegalStateException.class, () -> Sparse24.check(closed, exec)), "w is closed");
        assertMentions(message(IllegalStateException.class, () -> Sparse24.prune(w, closed.view(), exec)),
            "closed");
        assertMentions(message(IllegalStateException.class,
            () -> Sparse24.matmul(closed, sw, null, Activation.NONE, exec)), "x is closed");
        assertMentions(message(IllegalStateException.class,
            () -> Sparse24.matmul(x, closedWeight, null, Activation.NONE, exec)), "weight.values is closed");
        assertMentions(message(IllegalStateException.class, () -> Sparse24.decompress(closedWeight, exec)),
            "weight.values is closed");
        try (Tensor bias = Tensor.zeros(DType.F32, Device.CPU, 4)) {
          bias.close();
          assertMentions(message(IllegalStateException.class, () -> Sparse24.matmul(x, sw, bias, Activation.NONE,
              exec)), "bias is closed");
        }
      }
    }
  }

  @Test
  void cudaBackendNeedsDeviceTensors() {
    try (Tensor w = Tensor.zeros(DType.BF16, Device.CPU, 4, 16)) {
      assertMentions(message(IllegalArgumentException.class, () -> Sparse24.prune(w, Exec.backend(Backend.CUDA))),
          "backend CUDA needs device tensors");
      assertMentions(message(IllegalArgumentException.class, () -> Sparse24.compress(w, Exec.backend(Backend.CUDA))),
          "backend CUDA needs device tensors");
    }
  }

  /**
   * Argument checks only: runs before the CUDA kernels are called (weights built around zero
   * tensors, neither compressed nor wrapped with {@link Sparse24Weight#of}, which would reject
   * the all-zero codes).
   */
  @Tag("gpu")
  @Test
  void cudaRejectsF32AndMixedDevices() {
    TestBackends.assumeCuda();
    Device gpu = Device.cuda(0);
    try (Sparse24Weight sw = new Sparse24Weight(Tensor.zeros(DType.F32, gpu, 8, 16), Tensor.zeros(DType.U16, gpu, 8, 2),
            8, 32);
        Sparse24Weight swBf = new Sparse24Weight(Tensor.zeros(DType.BF16, gpu, 8, 16),
            Tensor.zeros(DType.U16, gpu, 8, 2), 8, 32);
        Tensor w = Tensor.zeros(DType.F32, gpu, 8, 32);
        Tensor x = Tensor.zeros(DType.F32, gpu, 2, 32);
        Tensor xHost = Tensor.zeros(DType.F32, Device.CPU, 2, 32);
        Tensor xBfHost = Tensor.zeros(DType.BF16, Device.CPU, 2, 32);
        Tensor xBf = Tensor.zeros(DType.BF16, gpu, 2, 32);
        Tensor biasHost = Tensor.zeros(DType.BF16, Device.CPU, 8)) {
      assertMentions(message(IllegalArgumentException.class, () -> Sparse24.matmul(x, sw, null, Activation.NONE)),
          "F32", "CUDA", "F16 or BF16");
      assertMentions(message(IllegalArgumentException.class, () -> Sparse24.denseMatmul(x, w, null, Activation.NONE)),
          "F32", "CUDA");
      assertMentions(message(IllegalArgumentException.class,
          () -> Sparse24.matmul(xHost, sw, null, Activation.NONE)), "one device");
      assertMentions(message(IllegalArgumentException.class,
          () -> Sparse24.matmul(xBfHost, swBf, null, Activation.NONE)), "one device");
      assertMentions(message(IllegalArgumentException.class,
          () -> Sparse24.matmul(xBf, swBf, biasHost, Activation.NONE)), "one device");
      assertMentions(message(IllegalArgumentException.class,
          () -> Sparse24.matmul(xBf, swBf, null, Activation.NONE, Exec.backend(Backend.NATIVE))), "host tensors");
      assertThrows(IllegalArgumentException.class, () -> Sparse24.prune(w, Exec.backend(Backend.JAVA)));
    }
  }
}
