package io.github.llmkernels.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * .npy reading and writing: files built byte by byte here (as numpy writes them: versions 1.0
 * and 2.0, keys in any order, 1-tuples) read back exactly; writer round trips; every rejection
 * names what is wrong.
 */
class NpyTest {
  @TempDir
  Path dir;

  /** A .npy file from a header dict literal and raw little-endian data. */
  private Path file(String name, int major, String dict, byte[] data) throws IOException {
    byte[] text = (dict + "\n").getBytes(StandardCharsets.ISO_8859_1);
    int prefix = major == 1 ? 10 : 12;
    ByteBuffer b = ByteBuffer.allocate(prefix + text.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', (byte) major, 0});
    if (major == 1) {
      b.putShort((short) text.length);
    } else {
      b.putInt(text.length);
    }
    b.put(text).put(data);
    Path p = dir.resolve(name);
    Files.write(p, b.array());
    return p;
  }

  private static byte[] floats(float... x) {
    ByteBuffer b = ByteBuffer.allocate(4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : x) {
      b.putFloat(v);
    }
    return b.array();
  }

  private static byte[] doubles(double... x) {
    ByteBuffer b = ByteBuffer.allocate(8 * x.length).order(ByteOrder.LITTLE_ENDIAN);
    for (double v : x) {
      b.putDouble(v);
    }
    return b.array();
  }

  private static byte[] shorts(short... x) {
    ByteBuffer b = ByteBuffer.allocate(2 * x.length).order(ByteOrder.LITTLE_ENDIAN);
    for (short v : x) {
      b.putShort(v);
    }
    return b.array();
  }

  @Test
  void readsF4VersionOne() throws IOException {
    float[] x = {1.5f, -2f, 3.25f, 0f, Float.NEGATIVE_INFINITY, 1e-20f};
    Path p = file("a.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", floats(x));
    try (Tensor t = Npy.read(p)) {
      assertEquals(DType.F32, t.dtype());
      assertArrayEquals(new long[] {2, 3}, t.shape());
      assertArrayEquals(x, t.toFloatArray());
    }
  }

  @Test
  void readsVersionTwoKeysInAnyOrderAndOneTuples() throws IOException {
    float[] x = {7f, 8f, 9f};
    Path p = file("b.npy", 2, "{ \"shape\" : (3,) ,'fortran_order':False,'descr':'<f4'}", floats(x));
    try (Tensor t = Npy.read(p)) {
      assertArrayEquals(new long[] {3}, t.shape());
      assertArrayEquals(x, t.toFloatArray());
    }
    Path q = file("c.npy", 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 3)}", floats(x));
    try (Tensor t = Npy.read(q)) {
      assertArrayEquals(new long[] {1, 1, 3}, t.shape());
    }
  }

  @Test
  void readsF2AndF8AndBf16Bits() throws IOException {
    short[] half = {HalfFloats.floatToF16(0.5f), HalfFloats.floatToF16(-3f)};
    try (Tensor t = Npy.read(file("h.npy", 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }",
        shorts(half)))) {
      assertEquals(DType.F16, t.dtype());
      assertArrayEquals(new float[] {0.5f, -3f}, t.toFloatArray());
    }
    double third = 1.0 / 3;
    try (Tensor t = Npy.read(file("d.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
        doubles(third, 1e300)))) {
      assertEquals(DType.F32, t.dtype());
      assertArrayEquals(new float[] {(float) third, Float.POSITIVE_INFINITY}, t.toFloatArray());
    }
    short[] bf = {HalfFloats.floatToBf16(1.25f), HalfFloats.floatToBf16(-0.75f), (short) 0x7f80};
    Path p = file("bf.npy", 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }", shorts(bf));
    try (Tensor t = Npy.read(p, DType.BF16)) {
      assertArrayEquals(bf, t.toBitsArray());
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Npy.read(p));
    assertTrue(e.getMessage().contains("DType.BF16"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> Npy.read(p, DType.F32));
    assertTrue(e.getMessage().contains("only be read as BF16"), e.getMessage());
  }

  @Test
  void convertsOnRead() throws IOException {
    float[] x = {1f + 0x1p-10f, -2.5f, 65536f * 2};
    Path p = file("conv.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", floats(x));
    try (Tensor t = Npy.read(p, DType.BF16)) {
      assertEquals(DType.BF16, t.dtype());
      for (int i = 0; i < x.length; i++) {
        assertEquals(HalfFloats.floatToBf16(x[i]), t.toBitsArray()[i]);
      }
    }
    try (Tensor t = Npy.read(p, DType.F16)) {
      assertEquals(Float.POSITIVE_INFINITY, t.toFloatArray()[2]); // 131072 overflows F16
    }
  }

  @Test
  void roundTripsEveryFloatDtypeAndStridedViews() {
    float[] x = new float[4 * 5 * 6];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) Math.sin(i) * 100;
    }
    for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
      Path p = dir.resolve("rt-" + dtype + ".npy");
      try (Tensor t = Tensor.fromFloats(x, dtype, 4, 5, 6)) {
        Npy.write(p, t);
        try (Tensor back = Npy.read(p, dtype)) {
          assertArrayEquals(t.shape(), back.shape());
          assertArrayEquals(t.toFloatArray(), back.toFloatArray(), dtype.toString());
        }
        assertEquals(0, Npy.header(p).dataOffset() % 64, "data aligned to 64 bytes");
        try (Tensor view = t.slice(1, 1, 4)) { // strided: written C-ordered
          Npy.write(p, view);
          try (Tensor back = Npy.read(p, dtype); Tensor packed = view.contiguous()) {
            assertArrayEquals(new long[] {4, 3, 6}, back.shape());
            assertArrayEquals(packed.toFloatArray(), back.toFloatArray());
          }
        }
      }
    }
    try (Tensor one = Tensor.of(new float[] {42f}, 1)) {
      Path p = dir.resolve("one.npy");
      Npy.write(p, one);
      assertArrayEquals(new long[] {1}, Npy.header(p).shape());
    }
  }

  @Test
  void writerHeaderIsWhatNumpyWrites() {
    String text = new String(Npy.headerBytes("<f4", new long[] {3}), StandardCharsets.ISO_8859_1);
    assertTrue(text.startsWith("\u0093NUMPY\u0001\u0000"));
    assertTrue(text.contains("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"), text);
    assertTrue(text.endsWith("\n"));
    assertEquals(0, text.length() % 64);
  }

  private void rejects(Path p, String fragment) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Npy.read(p));
    assertTrue(e.getMessage().contains(fragment), "expected '" + fragment + "' in: " + e.getMessage());
  }

  @Test
  void rejectsBadFiles() throws IOException {
    byte[] six = floats(1, 2, 3, 4, 5, 6);
    Path magic = dir.resolve("magic.npy");
    Files.write(magic, "NUMPY not really".getBytes(StandardCharsets.ISO_8859_1));
    rejects(magic, "must start with");
    rejects(file("be.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", six), "big-endian");
    rejects(file("fo.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", six), "fortran_order");
    rejects(file("short.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }", six),
        "28 bytes but the file has 24");
    rejects(file("long.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", six),
        "20 bytes but the file has 24");
    rejects(file("nodescr.npy", 1, "{'fortran_order': False, 'shape': (6,), }", six), "no 'descr' key");
    rejects(file("noshape.npy", 1, "{'descr': '<f4', 'fortran_order': False}", six), "no 'shape' key");
    rejects(file("noorder.npy", 1, "{'descr': '<f4', 'shape': (6,)}", six), "no 'fortran_order' key");
    rejects(file("int.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (6,), }", six), "'<i4' is not supported");
    rejects(file("struct.npy", 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", six),
        "bad .npy header");
    rejects(file("neg.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", six), "non-negative");
    byte[] v9 = Files.readAllBytes(file("v9.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", six));
    v9[6] = 9;
    Files.write(dir.resolve("v9.npy"), v9);
    rejects(dir.resolve("v9.npy"), "version 9.0 is not supported");
    Path trunc = dir.resolve("trunc.npy");
    Files.write(trunc, Arrays.copyOf(Files.readAllBytes(dir.resolve("long.npy")), 30));
    rejects(trunc, "runs past the file");
  }
}
