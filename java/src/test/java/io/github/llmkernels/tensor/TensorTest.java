package io.github.llmkernels.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.testing.TestBackends;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.bytedeco.javacpp.FloatPointer;
import org.junit.jupiter.api.Test;

class TensorTest {

  @Test
  void nativeLibraryLoadedUnlessJavaOnlyBuild() {
    TestBackends.requireNativeUnlessSkipped();
  }

  @Test
  void arraysRoundTripWithShapeAndStrides() {
    float[] data = {1, 2, 3, 4, 5, 6};
    try (Tensor t = Tensor.of(data, 2, 3)) {
      assertEquals(DType.F32, t.dtype());
      assertArrayEquals(new long[] {2, 3}, t.shape());
      assertArrayEquals(new long[] {3, 1}, t.strides());
      assertEquals(6, t.numel());
      assertEquals(24, t.byteSize());
      assertTrue(t.isContiguous());
      assertArrayEquals(data, t.toFloatArray());
    }
    try (Tensor t = Tensor.of(new int[] {7, -8}, 2)) {
      assertArrayEquals(new int[] {7, -8}, t.toIntArray());
    }
    try (Tensor t = Tensor.of(new long[] {1L << 40}, 1)) {
      assertEquals(1L << 40, t.getLong(0));
    }
    try (Tensor t = Tensor.of(new byte[] {-1, 2}, DType.U8, 2)) {
      assertEquals(255, t.getLong(0));
    }
  }

  @Test
  void fromFloatsRoundsToNearestEven() {
    try (Tensor t = Tensor.fromFloats(new float[] {1f + 0x1p-11f, 1f + 3 * 0x1p-11f}, DType.F16, 2)) {
      assertArrayEquals(new short[] {0x3c00, 0x3c02}, t.toBitsArray());
    }
  }

  @Test
  void dataLengthMustMatchShape() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tensor.of(new float[5], 2, 3));
    assertTrue(e.getMessage().contains("5 elements") && e.getMessage().contains("[2, 3]"), e.getMessage());
  }

  @Test
  void negativeOrOverflowingShapesAreRejected() {
    assertThrows(IllegalArgumentException.class, () -> Tensor.allocate(DType.F32, Device.CPU, 2, -1));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Tensor.allocate(DType.F32, Device.CPU, 1L << 40, 1L << 40));
    assertTrue(e.getMessage().contains("overflows"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> Tensor.allocate(DType.I64, Device.CPU, 1L << 31, 1L << 31)); // 2^62 elements, 2^65 bytes
    assertTrue(e.getMessage().contains("overflows"), e.getMessage());
  }

  @Test
  void useAfterCloseThrowsAndCloseIsIdempotent() {
    Tensor t = Tensor.of(new float[] {1}, 1);
    Tensor view = t.view(1, 1);
    t.close();
    t.close();
    assertTrue(t.isClosed());
    assertTrue(view.isClosed(), "closing the owner closes its views");
    assertThrows(IllegalStateException.class, () -> t.getDouble(0));
    assertThrows(IllegalStateException.class, t::address);
    assertThrows(IllegalStateException.class, () -> view.getDouble(0));
  }

  @Test
  void closingAViewKeepsTheOwnerOpen() {
    try (Tensor t = Tensor.of(new float[] {1, 2}, 2)) {
      t.view(1, 2).close();
      assertFalse(t.isClosed());
      assertEquals(2.0, t.getDouble(1));
    }
  }

  @Test
  void sliceIsAStridedViewAndContiguousCopies() {
    try (Tensor t = Tensor.of(new float[] {0, 1, 2, 3, 4, 5}, 2, 3)) {
      Tensor s = t.slice(1, 1, 3);
      assertFalse(s.isContiguous());
      assertArrayEquals(new float[] {1, 2, 4, 5}, s.toFloatArray());
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.requireContiguous("src"));
      assertTrue(e.getMessage().startsWith("src must be contiguous"), e.getMessage());
      try (Tensor c = s.contiguous()) {
        assertTrue(c.isContiguous());
        assertArrayEquals(new float[] {1, 2, 4, 5}, c.toFloatArray());
      }
      assertThrows(IllegalArgumentException.class, () -> t.slice(1, 2, 4));
      assertThrows(IllegalArgumentException.class, () -> t.view(4));
    }
  }

  @Test
  void sliceOfOneAlongALeadingDimensionIsContiguous() {
    // One head of [1, H, S, D]: shape [1, 1, S, D], strides [H S D, S D, D, 1]. As in PyTorch, the
    // stride of a size-1 dimension does not matter; the GPU harness copies into such slices.
    try (Tensor t = Tensor.zeros(DType.F32, Device.CPU, 1, 3, 2, 2);
        Tensor head = Tensor.of(new float[] {1, 2, 3, 4}, 1, 1, 2, 2);
        Tensor s = t.slice(1, 1, 2)) {
      assertTrue(s.isContiguous());
      s.copyFrom(head);
      assertArrayEquals(new float[] {0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0}, t.toFloatArray());
      try (Tensor cols = t.slice(3, 0, 1)) {  // [1, 3, 2, 1]: strides still leave gaps
        assertFalse(cols.isContiguous());
      }
    }
  }

  @Test
  void wrapsDirectBuffersWithoutCopying() {
    ByteBuffer buffer = ByteBuffer.allocateDirect(16).order(ByteOrder.LITTLE_ENDIAN);
    buffer.putFloat(0, 1.5f).putFloat(12, -2f);
    try (Tensor t = Tensor.wrap(buffer, DType.F32, 2, 2)) {
      assertEquals(1.5, t.getDouble(0));
      t.setDouble(1, 7);
      assertEquals(7f, buffer.getFloat(4), "writes reach the caller's buffer");
    }
    assertThrows(IllegalArgumentException.class, () -> Tensor.wrap(ByteBuffer.allocate(16), DType.F32, 4));
    assertThrows(IllegalArgumentException.class, () -> Tensor.wrap(buffer, DType.F32, 5));
  }

  @Test
  void wrapsJavaCppPointersAndRawAddresses() {
    TestBackends.assumeNative();
    try (FloatPointer p = new FloatPointer(1f, 2f, 3f, 4f)) {
      try (Tensor t = Tensor.wrap(p, DType.F32, 4)) {
        assertArrayEquals(new float[] {1, 2, 3, 4}, t.toFloatArray());
        try (Tensor raw = Tensor.wrapAddress(t.address(), 16, Device.CPU, DType.F32, new long[] {2}, new long[] {2})) {
          assertArrayEquals(new float[] {1, 3}, raw.toFloatArray());
        }
      }
      assertThrows(IllegalArgumentException.class, () -> Tensor.wrap(p, DType.F32, 5));
      assertThrows(IllegalArgumentException.class,
          () -> Tensor.wrapAddress(p.address(), 16, Device.CPU, DType.F32, new long[] {3}, new long[] {2}));
    }
  }

  @Test
  void badStridesAreRejected() {
    assertThrows(IllegalArgumentException.class,
        () -> Tensor.wrapAddress(64, 64, Device.CPU, DType.F32, new long[] {2}, new long[] {-1}));
    assertThrows(IllegalArgumentException.class,
        () -> Tensor.wrapAddress(64, 64, Device.CPU, DType.F32, new long[] {2, 2}, new long[] {1}));
    assertThrows(IllegalArgumentException.class, () -> Tensor.wrapAddress(0, 64, Device.CPU, DType.F32, new long[] {2}, null));
  }

  @Test
  void hostCopiesAndConversions() {
    try (Tensor a = Tensor.of(new float[] {1, 2, 3}, 3); Tensor b = Tensor.zeros(DType.F32, Device.CPU, 3)) {
      b.copyFrom(a);
      assertArrayEquals(new float[] {1, 2, 3}, b.toFloatArray());
      try (Tensor h = a.convertTo(DType.BF16); Tensor back = h.convertTo(DType.F32)) {
        assertEquals(DType.BF16, h.dtype());
        assertArrayEquals(new float[] {1, 2, 3}, back.toFloatArray());
      }
      try (Tensor wrong = Tensor.zeros(DType.F32, Device.CPU, 4)) {
        assertThrows(IllegalArgumentException.class, () -> wrong.copyFrom(a));
      }
    }
  }

  @Test
  void convertFromChecksShapesAndStagesStridedSources() {
    try (Tensor src = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor dst = Tensor.allocate(DType.BF16, Device.CPU, 2, 2);
        Tensor wrong = Tensor.allocate(DType.BF16, Device.CPU, 3, 2)) {
      dst.convertFrom(src.slice(1, 1, 3)); // strided source
      assertArrayEquals(new float[] {2, 3, 5, 6}, dst.toFloatArray());
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> wrong.convertFrom(src));
      assertTrue(e.getMessage().contains("equal shapes"), e.getMessage());
      try (Tensor ints = Tensor.of(new int[4], 2, 2)) {
        e = assertThrows(IllegalArgumentException.class, () -> dst.convertFrom(ints));
        assertTrue(e.getMessage().startsWith("src must have dtype"), e.getMessage());
      }
    }
  }

  @Test
  void deviceTensorsNeedCudaAndSayWhy() {
    if (io.github.llmkernels.runtime.Cuda.isAvailable()) {
      return; // covered by the gpu-tagged tests
    }
    RuntimeException e = assertThrows(RuntimeException.class, () -> Tensor.allocate(DType.F32, Device.cuda(0), 4));
    assertTrue(e.getMessage().contains("CUDA unavailable"), e.getMessage());
  }

  @Test
  void largerThanTwoGiBIndexesWithLongOffsets() {
    // 2^31 + 8 bytes: the element past the first 2 GiB chunk boundary reads back (chunked views).
    long n = (1L << 29) + 2;
    try (Tensor t = Tensor.allocate(DType.F32, Device.CPU, n)) {
      t.setDouble(n - 1, 42);
      t.setDouble((1L << 28) - 1, 7); // last float of the first 1 GiB chunk
      assertEquals(42.0, t.getDouble(n - 1));
      assertEquals(7.0, t.getDouble((1L << 28) - 1));
    }
  }
}
