package io.github.llmkernels.tensor;

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

/** Tensor edge cases found in review: overflow, overlapping copies, read-only buffers, positions, closed views. */
class TensorEdgeCaseTest {


  /** Byte sizes are overflow-checked: a stride-0 view with 2^61 F32 elements has 2^63 bytes. */
  @Test
  void byteSizeNeverOverflowsSilently() {
    try (Tensor base = Tensor.allocate(DType.F32, Device.CPU, 1)) {
      Tensor broadcast;
      try {
        broadcast = Tensor.wrapAddress(base.address(), 4, Device.CPU, DType.F32, new long[] {1L << 61},
            new long[] {0});
      } catch (IllegalArgumentException rejected) {
        return; // acceptable: refused up front
      } catch (IllegalStateException noAddress) {
        return; // java-only build: no raw address to borrow
      }
      assertEquals(1L << 61, broadcast.numel());
      try {
        long bytes = broadcast.byteSize();
        assertTrue(bytes >= 0, "byteSize() overflowed to " + bytes);
      } catch (IllegalArgumentException | ArithmeticException checked) {
        // acceptable: overflow reported
      }
    }
  }

  /**
   * copyFrom between two contiguous views of the same memory that overlap: the Java path
   * (ByteBuffer bulk put) copies correctly, the native path hands memcpy-style llmk_copy_cpu an
   * overlapping range and throws "dst and src ranges overlap" - so the result depends on
   * whether the natives loaded, and the documented copy fails.
   */
  @Test
  void copyFromBetweenOverlappingViewsCopiesLikeMemmove() {
    try (Tensor t = Tensor.of(new float[] {0, 1, 2, 3, 4, 5, 6, 7}, 8)) {
      Tensor dst = t.slice(0, 0, 6);
      Tensor src = t.slice(0, 2, 8);
      dst.copyFrom(src);
      assertArrayEquals(new float[] {2, 3, 4, 5, 6, 7, 6, 7}, t.toFloatArray());
    }
  }

  @Test
  void copyFromItselfIsANoOp() {
    try (Tensor t = Tensor.of(new float[] {1, 2, 3}, 3)) {
      t.copyFrom(t);
      assertArrayEquals(new float[] {1, 2, 3}, t.toFloatArray());
    }
  }

  /**
   * A read-only direct buffer is wrapped as a writable tensor: Java-side writes fail with a raw
   * ReadOnlyBufferException, while native kernels write straight through its address.
   */
  @Test
  void readOnlyBuffersAreNotWrittenByNativeKernels() {
    TestBackends.assumeNative();
    ByteBuffer backing = ByteBuffer.allocateDirect(8).order(ByteOrder.LITTLE_ENDIAN);
    backing.putFloat(0, -1f).putFloat(4, -1f);
    ByteBuffer readOnly = backing.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    Tensor dst;
    try {
      dst = Tensor.wrap(readOnly, DType.F32, 1, 1, 1, 2);
    } catch (IllegalArgumentException rejected) {
      return; // acceptable: read-only buffers refused
    }
    try (Tensor src = Tensor.of(new float[] {5, 6, 7, 8}, 1, 1, 2, 2);
        Tensor idx = Tensor.of(new int[] {1}, 1, 1, 1)) {
      try {
        RowGather.gatherRowsInto(src, idx, dst, Exec.backend(Backend.NATIVE));
      } catch (IllegalArgumentException | IllegalStateException refused) {
        // acceptable
      }
      assertEquals(-1f, readOnly.getFloat(0), "native kernel wrote into a read-only buffer");
      assertEquals(-1f, readOnly.getFloat(4), "native kernel wrote into a read-only buffer");
    }
  }

  @Test
  void setOnAReadOnlyBufferTensorIsAnIllegalStateOrArgument() {
    ByteBuffer readOnly = ByteBuffer.allocateDirect(8).asReadOnlyBuffer();
    Tensor t;
    try {
      t = Tensor.wrap(readOnly, DType.F32, 2);
    } catch (IllegalArgumentException rejected) {
      return;
    }
    try {
      t.setDouble(0, 1);
      fail("wrote into a read-only buffer");
    } catch (IllegalArgumentException | IllegalStateException expected) {
      // documented exception types
    } catch (RuntimeException other) {
      fail("undocumented exception " + other);
    }
  }

  /** Wrapped direct buffer with a non-zero position: Java and native must see the same bytes. */
  @Test
  void wrappedBufferWithPositionIsReadFromItsPositionNatively() {
    TestBackends.assumeNative();
    ByteBuffer buf = ByteBuffer.allocateDirect(64).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 16; i++) {
      buf.putFloat(4 * i, i);
    }
    buf.position(8).limit(8 + 4 * 4);
    try (Tensor src = Tensor.wrap(buf, DType.F32, 1, 1, 2, 2);
        Tensor idx = Tensor.of(new int[] {1, 0}, 1, 1, 2)) {
      assertArrayEquals(new float[] {2, 3, 4, 5}, src.toFloatArray());
      for (Backend backend : TestBackends.host()) {
        try (Tensor out = RowGather.gatherRows(src, idx, Exec.backend(backend))) {
          assertArrayEquals(new float[] {4, 5, 2, 3}, out.toFloatArray(), backend.toString());
        }
      }
    }
  }

  /** JavaCPP pointer at a non-zero position: Java and native views agree. */
  @Test
  void wrappedPointerWithPositionIsReadFromItsPosition() {
    TestBackends.assumeNative();
    try (FloatPointer p = new FloatPointer(0f, 1f, 2f, 3f, 4f, 5f)) {
      p.position(2);
      try (Tensor src = Tensor.wrap(p, DType.F32, 1, 1, 2, 2);
          Tensor idx = Tensor.of(new int[] {1, 0}, 1, 1, 2)) {
        assertArrayEquals(new float[] {2, 3, 4, 5}, src.toFloatArray());
        try (Tensor out = RowGather.gatherRows(src, idx, Exec.backend(Backend.NATIVE))) {
          assertArrayEquals(new float[] {4, 5, 2, 3}, out.toFloatArray());
        }
      }
      assertThrows(IllegalArgumentException.class, () -> Tensor.wrap(p, DType.F32, 5));
    }
  }

  /** Closing the owner closes its views; every accessor then throws IllegalStateException. */
  @Test
  void viewsOfAClosedOwnerThrowIllegalState() {
    Tensor t = Tensor.of(new float[] {1, 2, 3, 4}, 4);
    Tensor v = t.slice(0, 1, 3);
    t.close();
    assertTrue(v.isClosed());
    assertThrows(IllegalStateException.class, () -> v.getDouble(0));
    assertThrows(IllegalStateException.class, v::toFloatArray);
    assertThrows(IllegalStateException.class, v::address);
    assertThrows(IllegalStateException.class, () -> v.convertTo(DType.BF16));
    assertThrows(IllegalStateException.class, v::contiguous);
  }

  /** copyElements names the closed argument (src), as every other API does. */
  @Test
  void copyElementsFromAClosedSourceNamesSrc() {
    try (Tensor dst = Tensor.of(new float[4], 4)) {
      Tensor src = Tensor.of(new float[4], 4);
      src.close();
      IllegalStateException e = assertThrows(IllegalStateException.class, () -> dst.copyElements(src, 0, 0, 4));
      assertTrue(e.getMessage().contains("src"), e.getMessage());
    }
  }

  /** NATIVE by name never falls back, and reports a closed input as IllegalStateException. */
  @Test
  void namedNativeBackendWithClosedIdxIsIllegalState() {
    try (Tensor src = Tensor.of(new float[8], 1, 1, 4, 2)) {
      Tensor idx = Tensor.of(new int[] {0}, 1, 1, 1);
      idx.close();
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> RowGather.gatherRows(src, idx, Exec.backend(Backend.NATIVE)));
      assertTrue(e.getMessage().contains("idx"), e.getMessage());
    }
  }

  @Test
  void nativeIsReallyLoadedForThisReview() {
    TestBackends.requireNativeUnlessSkipped();
    assertTrue(NativeCpu.isAvailable() || Boolean.getBoolean("llmk.skipNatives"));
  }
}
