package io.github.llmkernels.kvcache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.BackendUnavailableException;
import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.TestBackends;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Bad input gets an exception naming the argument and the rule, and dst stays untouched. */
class RowGatherBadInputTest {

  private static String message(Class<? extends Throwable> type, Executable call) {
    return assertThrows(type, call).getMessage();
  }

  private static void assertMentions(String message, String... parts) {
    for (String p : parts) {
      assertTrue(message.contains(p), "message '" + message + "' should mention '" + p + "'");
    }
  }

  @Test
  void outOfRangeIndicesNameTheirPositionAndWriteNothing() {
    for (Backend backend : TestBackends.host()) {
      for (int bad : new int[] {-1, 5, Integer.MIN_VALUE, Integer.MAX_VALUE}) {
        try (Tensor src = Tensor.of(new float[2 * 5 * 3], 1, 2, 5, 3);
            Tensor idx = Tensor.of(new int[] {0, 1, 4, 2, bad, 1}, 1, 2, 3);
            Tensor dst = Tensor.of(filled(2 * 3 * 3, -9f), 1, 2, 3, 3)) {
          String m = message(IllegalArgumentException.class,
              () -> RowGather.gatherRowsInto(src, idx, dst, Exec.backend(backend)));
          assertMentions(m, "idx[0, 1, 1] = " + bad, "[0, N = 5)");
          for (float v : dst.toFloatArray()) {
            assertEquals(-9f, v, backend + ": dst must be untouched");
          }
        }
      }
    }
  }

  @Test
  void firstBadIndexIsReportedWhenThereAreMany() {
    for (Backend backend : TestBackends.host()) {
      int[] values = new int[4 * 1000];
      values[1234] = 77;
      values[3999] = -3;
      try (Tensor src = Tensor.of(new float[4 * 10], 1, 4, 10, 1);
          Tensor idx = Tensor.of(values, 1, 4, 1000)) {
        assertMentions(message(IllegalArgumentException.class,
            () -> RowGather.gatherRows(src, idx, Exec.backend(backend))), "idx[0, 1, 234] = 77");
      }
    }
  }

  @Test
  void emptySourceRejectsAnyRequest() {
    for (Backend backend : TestBackends.host()) {
      try (Tensor src = Tensor.allocate(DType.F32, Device.CPU, 1, 1, 0, 4);
          Tensor idx = Tensor.of(new int[] {0}, 1, 1, 1)) {
        assertThrows(IllegalArgumentException.class, () -> RowGather.gatherRows(src, idx, Exec.backend(backend)));
      }
    }
  }

  @Test
  void wrongRanksDtypesAndShapes() {
    try (Tensor src = Tensor.of(new float[24], 1, 2, 3, 4);
        Tensor idx = Tensor.of(new int[] {0, 1}, 1, 2, 1)) {
      try (Tensor flat = Tensor.of(new float[24], 24)) {
        assertMentions(message(IllegalArgumentException.class, () -> RowGather.gatherRows(flat, idx)),
            "src must have rank 4", "(B, H, N, d)");
      }
      try (Tensor ints = Tensor.of(new int[24], 1, 2, 3, 4)) {
        assertMentions(message(IllegalArgumentException.class, () -> RowGather.gatherRows(ints, idx)),
            "src must have dtype", "I32");
      }
      try (Tensor longIdx = Tensor.of(new long[] {0, 1}, 1, 2, 1)) {
        assertMentions(message(IllegalArgumentException.class, () -> RowGather.gatherRows(src, longIdx)),
            "idx must have dtype I32", "I64");
      }
      try (Tensor wrongHeads = Tensor.of(new int[] {0, 1, 2}, 1, 3, 1)) {
        assertMentions(message(IllegalArgumentException.class, () -> RowGather.gatherRows(src, wrongHeads)),
            "idx dimension 1 must equal H (from src) = 2");
      }
      try (Tensor dst = Tensor.allocate(DType.F16, Device.CPU, 1, 2, 1, 4)) {
        assertMentions(message(IllegalArgumentException.class,
            () -> RowGather.gatherRowsInto(src, idx, dst, Exec.DEFAULT)), "dst dtype F16 must equal src dtype F32");
      }
      try (Tensor dst = Tensor.allocate(DType.F32, Device.CPU, 1, 2, 2, 4)) {
        assertMentions(message(IllegalArgumentException.class,
            () -> RowGather.gatherRowsInto(src, idx, dst, Exec.DEFAULT)), "dst dimension 2 must equal K (from idx) = 1");
      }
      assertMentions(message(IllegalArgumentException.class, () -> RowGather.gatherRows(null, idx)), "src");
    }
  }

  @Test
  void nonContiguousInputsAreRejected() {
    try (Tensor big = Tensor.of(new float[2 * 3 * 8], 1, 2, 3, 8);
        Tensor idx = Tensor.of(new int[] {0, 1}, 1, 2, 1)) {
      Tensor strided = big.slice(3, 0, 4);
      assertMentions(message(IllegalArgumentException.class, () -> RowGather.gatherRows(strided, idx)),
          "src must be contiguous");
    }
  }

  @Test
  void closedTensorsAreRejected() {
    Tensor src = Tensor.of(new float[4], 1, 1, 2, 2);
    Tensor idx = Tensor.of(new int[] {1}, 1, 1, 1);
    src.close();
    assertMentions(message(IllegalStateException.class, () -> RowGather.gatherRows(src, idx)), "src is closed");
    idx.close();
  }

  @Test
  void backendByNameNeverFallsBackAndDevicesMustMatch() {
    try (Tensor src = Tensor.of(new float[4], 1, 1, 2, 2);
        Tensor idx = Tensor.of(new int[] {1}, 1, 1, 1)) {
      assertMentions(message(IllegalArgumentException.class,
          () -> RowGather.gatherRows(src, idx, Exec.backend(Backend.CUDA))), "backend CUDA needs device tensors");
      // A device tensor that is never touched: dispatch must refuse before any memory access.
      try (Tensor fakeDevice = Tensor.wrapAddress(0x1000, 4, Device.cuda(0), DType.I32, new long[] {1, 1, 1}, null)) {
        Class<? extends Throwable> expected = IllegalArgumentException.class;
        assertMentions(message(expected, () -> RowGather.gatherRows(src, fakeDevice)),
            "all tensors must be on one device", "src is on cpu", "idx is on cuda:0");
      }
    }
  }

  @Test
  void cudaBackendOnAMachineWithoutCudaReportsTheCause() {
    if (Cuda.isAvailable()) {
      return;
    }
    try (Tensor src = Tensor.wrapAddress(0x1000, 16, Device.cuda(0), DType.F32, new long[] {1, 1, 2, 2}, null);
        Tensor idx = Tensor.wrapAddress(0x2000, 4, Device.cuda(0), DType.I32, new long[] {1, 1, 1}, null);
        Tensor dst = Tensor.wrapAddress(0x3000, 8, Device.cuda(0), DType.F32, new long[] {1, 1, 1, 2}, null)) {
      assertMentions(message(BackendUnavailableException.class,
          () -> RowGather.gatherRowsInto(src, idx, dst, Exec.DEFAULT)), "CUDA unavailable");
    }
  }

  @Tag("gpu")
  @Test
  void cudaRejectsOutOfRangeIndicesAndWritesNothing() {
    TestBackends.assumeCuda();
    try (Tensor src = Tensor.of(new float[2 * 5 * 3], 1, 2, 5, 3).to(Device.cuda(0));
        Tensor idx = Tensor.of(new int[] {0, 1, 4, 2, 5, 1}, 1, 2, 3).to(Device.cuda(0));
        Tensor dst = Tensor.of(filled(2 * 3 * 3, -9f), 1, 2, 3, 3).to(Device.cuda(0))) {
      assertMentions(message(IllegalArgumentException.class,
          () -> RowGather.gatherRowsInto(src, idx, dst, Exec.DEFAULT)), "idx[0, 1, 1] = 5", "[0, N = 5)");
      for (float v : dst.toFloatArray()) {
        assertEquals(-9f, v, "dst must be untouched");
      }
    }
  }

  private static float[] filled(int n, float v) {
    float[] a = new float[n];
    java.util.Arrays.fill(a, v);
    return a;
  }
}
