package io.github.llmkernels.kvcache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.llmkernels.kvcache.RowGather;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.runtime.NativeCpu;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.TestBackends;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.bytedeco.javacpp.FloatPointer;
import org.junit.jupiter.api.Test;

/** Gather edge cases found in review: empty rows, aliasing, mixed devices, offsets, threads, the streaming path. */
class RowGatherEdgeCaseTest {


  /**
   * d = 0 (rows of zero bytes): the Java reference still validates every index, but the native
   * kernel returns OK as soon as dst has zero bytes, so an out-of-range index is silently accepted.
   */
  @Test
  void outOfRangeIndexIsRejectedOnEveryBackendEvenWhenRowsAreEmpty() {
    for (Backend backend : TestBackends.host()) {
      try (Tensor src = Tensor.allocate(DType.F32, Device.CPU, 1, 1, 4, 0);
          Tensor idx = Tensor.of(new int[] {0, 99}, 1, 1, 2)) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> RowGather.gatherRows(src, idx, Exec.backend(backend)).close(),
            backend + " accepted idx[0, 0, 1] = 99 with N = 4");
        assertTrue(e.getMessage().contains("idx[0, 0, 1]"), backend + ": " + e.getMessage());
      }
      try (Tensor src = Tensor.allocate(DType.BF16, Device.CPU, 1, 1, 4, 0);
          Tensor idx = Tensor.of(new int[] {-1}, 1, 1, 1)) {
        assertThrows(IllegalArgumentException.class,
            () -> RowGather.gatherRows(src, idx, Exec.backend(backend)).close(),
            backend + " accepted a negative index with d = 0");
      }
    }
  }

  /** Same with N = 0 and d = 0: any request must be rejected (the JAVA backend does). */
  @Test
  void emptySourceWithEmptyRowsRejectsAnyRequestOnEveryBackend() {
    for (Backend backend : TestBackends.host()) {
      try (Tensor src = Tensor.allocate(DType.F16, Device.CPU, 1, 1, 0, 0);
          Tensor idx = Tensor.of(new int[] {0}, 1, 1, 1)) {
        assertThrows(IllegalArgumentException.class,
            () -> RowGather.gatherRows(src, idx, Exec.backend(backend)).close(), backend.toString());
      }
    }
  }

  /**
   * dst aliasing src (K == N): the rows are copied one by one from memory that is being
   * overwritten, so a permutation silently produces duplicated rows. Either reject the aliasing
   * with an IllegalArgumentException or compute the documented result.
   */
  @Test
  void gatherIntoItsOwnSourceIsRejectedOrCorrect() {
    for (Backend backend : TestBackends.host()) {
      try (Tensor src = Tensor.of(new float[] {10, 11, 20, 21}, 1, 1, 2, 2);
          Tensor idx = Tensor.of(new int[] {1, 0}, 1, 1, 2)) {
        try {
          RowGather.gatherRowsInto(src, idx, src, Exec.backend(backend));
        } catch (IllegalArgumentException rejected) {
          continue; // acceptable: aliasing refused
        }
        assertArrayEquals(new float[] {20, 21, 10, 11}, src.toFloatArray(),
            backend + ": in-place gather silently produced wrong rows");
      }
    }
  }

  /** A dst that overlaps src only partly (a view of the same memory) is the same problem. */
  @Test
  void gatherIntoAnOverlappingViewIsRejectedOrCorrect() {
    for (Backend backend : TestBackends.host()) {
      try (Tensor buf = Tensor.of(new float[] {0, 1, 2, 3, 4, 5}, 6)) {
        Tensor src = buf.slice(0, 0, 4).view(1, 1, 4, 1);
        Tensor dst = buf.slice(0, 2, 6).view(1, 1, 4, 1);
        try (Tensor idx = Tensor.of(new int[] {0, 1, 2, 3}, 1, 1, 4)) {
          try {
            RowGather.gatherRowsInto(src, idx, dst, Exec.backend(backend));
          } catch (IllegalArgumentException rejected) {
            continue;
          }
          assertArrayEquals(new float[] {0, 1, 0, 1, 2, 3}, buf.toFloatArray(),
              backend + ": overlapping gather silently produced wrong rows");
        }
      }
    }
  }

  /**
   * Mixing devices must be an IllegalArgumentException (README). gatherRows allocates dst on
   * src's device before checking, so with src on a GPU and idx on the host a machine without
   * CUDA reports "CUDA unavailable" instead of the device mismatch.
   */
  @Test
  void mixedDevicesAreAnIllegalArgumentWhicheverSideIsOnTheGpu() {
    if (Cuda.isAvailable()) {
      return; // on a GPU machine the order of the checks does not show
    }
    try (Tensor gpuSrc = Tensor.wrapAddress(1L << 20, 1L << 20, Device.cuda(0), DType.F32,
            new long[] {1, 1, 4, 2}, null);
        Tensor hostIdx = Tensor.of(new int[] {0}, 1, 1, 1)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> RowGather.gatherRows(gpuSrc, hostIdx).close());
      assertTrue(e.getMessage().contains("device"), e.getMessage());
    }
  }

  @Test
  void mixedDevicesViaGatherRowsIntoAreAnIllegalArgument() {
    try (Tensor src = Tensor.of(new float[8], 1, 1, 4, 2);
        Tensor idx = Tensor.of(new int[] {0}, 1, 1, 1);
        Tensor gpuDst = Tensor.wrapAddress(1L << 20, 1L << 20, Device.cuda(0), DType.F32,
            new long[] {1, 1, 1, 2}, null)) {
      for (Backend b : Backend.values()) {
        assertThrows(IllegalArgumentException.class,
            () -> RowGather.gatherRowsInto(src, idx, gpuDst, Exec.backend(b)), b.toString());
      }
    }
  }

  /** Closed dst: IllegalStateException naming dst, on every backend; nothing crashes. */
  @Test
  void closedDstIsAnIllegalStateNamingDst() {
    for (Backend backend : TestBackends.host()) {
      try (Tensor src = Tensor.of(new float[8], 1, 1, 4, 2);
          Tensor idx = Tensor.of(new int[] {0}, 1, 1, 1)) {
        Tensor dst = Tensor.allocate(DType.F32, Device.CPU, 1, 1, 1, 2);
        Tensor view = dst.view(1, 1, 1, 2);
        dst.close();
        IllegalStateException e = assertThrows(IllegalStateException.class,
            () -> RowGather.gatherRowsInto(src, idx, view, Exec.backend(backend)));
        assertTrue(e.getMessage().contains("dst"), e.getMessage());
      }
    }
  }

  /** A source that is a contiguous view at a byte offset is read from that offset natively. */
  @Test
  void gatherFromAnOffsetViewReadsTheRightRows() {
    for (Backend backend : TestBackends.host()) {
      float[] data = new float[2 * 4 * 2];
      for (int i = 0; i < data.length; i++) {
        data[i] = i;
      }
      try (Tensor all = Tensor.of(data, 2, 1, 4, 2); Tensor idx = Tensor.of(new int[] {3, 0}, 1, 1, 2)) {
        Tensor second = all.slice(0, 1, 2);
        try (Tensor out = RowGather.gatherRows(second, idx, Exec.backend(backend))) {
          assertArrayEquals(new float[] {14, 15, 8, 9}, out.toFloatArray(), backend.toString());
        }
      }
    }
  }

  /** The thread-local native error message must belong to the failing call's own thread. */
  @Test
  void concurrentFailingGathersReportTheirOwnPositions() throws Exception {
    TestBackends.assumeNative();
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      List<Future<String>> results = new ArrayList<>();
      for (int t = 0; t < 64; t++) {
        final int bad = t % 16;
        results.add(pool.submit((Callable<String>) () -> {
          int[] ix = new int[16];
          ix[bad] = 1000 + bad;
          try (Tensor src = Tensor.of(new float[4 * 4], 1, 1, 4, 4); Tensor idx = Tensor.of(ix, 1, 1, 16)) {
            for (int rep = 0; rep < 200; rep++) {
              try {
                RowGather.gatherRows(src, idx, Exec.backend(Backend.NATIVE)).close();
                return "no exception";
              } catch (IllegalArgumentException e) {
                if (!e.getMessage().contains("idx[0, 0, " + bad + "] = " + (1000 + bad))) {
                  return e.getMessage();
                }
              }
            }
          }
          return "ok";
        }));
      }
      for (Future<String> f : results) {
        assertEquals("ok", f.get());
      }
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * Outputs of 8 MiB or more take the per-ISA streaming-store path: compare it with the Java
   * reference on every variant this CPU runs, with row sizes that are not a multiple of the
   * vector width and a destination that is not vector-aligned.
   */
  @Test
  void largeGatherStreamingPathMatchesJavaOnEveryVariant() {
    TestBackends.assumeNative();
    String original = NativeCpu.variant();
    try {
      for (String variant : new String[] {"x86-64", "avx2", "avx512"}) {
        if (!NativeCpu.supportsVariant(variant)) {
          continue;
        }
        NativeCpu.useVariant(variant);
        for (int d : new int[] {35, 64}) {
          int n = 257;
          int k = (9 << 20) / (4 * d) | 1; // odd, so the second half of dst starts misaligned
          float[] data = new float[n * d];
          for (int i = 0; i < data.length; i++) {
            data[i] = i * 0.5f - 3;
          }
          int[] ix = new int[k];
          for (int i = 0; i < k; i++) {
            ix[i] = (int) ((i * 2654435761L) % n);
          }
          try (Tensor src = Tensor.of(data, 1, 1, n, d);
              Tensor idx = Tensor.of(ix, 1, 1, k);
              Tensor expected = RowGather.gatherRows(src, idx, Exec.backend(Backend.JAVA));
              Tensor big = Tensor.zeros(DType.F32, Device.CPU, 2, 1, k, d)) {
            Tensor dst = big.slice(0, 1, 2);
            RowGather.gatherRowsInto(src, idx, dst, Exec.backend(Backend.NATIVE));
            assertArrayEquals(expected.toFloatArray(), dst.toFloatArray(), variant + " d=" + d);
            try (Tensor fresh = RowGather.gatherRows(src, idx, Exec.backend(Backend.NATIVE))) {
              assertArrayEquals(expected.toFloatArray(), fresh.toFloatArray(), variant + " d=" + d + " aligned");
            }
          }
        }
      }
    } finally {
      NativeCpu.useVariant(original);
    }
  }
}
