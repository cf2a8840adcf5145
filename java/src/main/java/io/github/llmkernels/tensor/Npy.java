package io.github.llmkernels.tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Reads and writes NumPy {@code .npy} files (a documented subset), so Q/K/V dumps from a real
 * model can be loaded into host tensors.
 *
 * <p>Format: magic {@code \x93NUMPY}, major and minor version bytes, the header length (u16
 * little-endian for version 1.0, u32 for 2.0 and 3.0), then the header: a Python dict literal with
 * the keys {@code 'descr'}, {@code 'fortran_order'} and {@code 'shape'} in any order (tuples may
 * have a trailing comma; whitespace is free). The data follow at byte {@code 10 + len} (version 1)
 * or {@code 12 + len} (versions 2 and 3) and must hold exactly {@code prod(shape) * itemsize} bytes.
 *
 * <p>Element types ({@code descr}), little-endian ({@code <}; {@code |} and {@code =} are read as
 * little-endian, big-endian {@code >} is rejected):
 * <ul>
 *   <li>{@code <f4} reads as F32, {@code <f2} as F16;
 *   <li>{@code <f8} reads as F32, rounded to nearest (the kernels have no F64);
 *   <li>{@code <u2} holds raw BF16 bits ({@code x.view(np.uint16)} of a bfloat16 array, or
 *       {@code t.view(torch.int16).numpy().view(np.uint16)} from PyTorch) and is only read by
 *       {@code read(path, DType.BF16)}: a plain {@code uint16} array must not pass for numbers.
 * </ul>
 * {@link #read(Path, DType)} converts any of these to F32, F16 or BF16 (round to nearest even;
 * {@code <f8} to F16 or BF16 goes through F32, so it rounds twice).
 * Fortran order is rejected (save with {@code np.ascontiguousarray}). Data stream into off-heap
 * host memory in 64 MiB chunks, so files past 2 GiB work.
 *
 * <p>{@link #write} produces version 1.0 (2.0 when the header needs more than 65535 bytes), the
 * header padded with spaces to a 64-byte boundary: F32 as {@code <f4}, F16 as {@code <f2}, BF16 as
 * {@code <u2} bits (read back with {@code read(path, DType.BF16)}).
 *
 * <p>Dump layout of the prefill quality harness: a directory with {@code q.npy} [B, Hq, S, d] or
 * [Hq, S, d], {@code k.npy} and {@code v.npy} [.., Hkv, S, d], taken after RoPE.
 */
public final class Npy {
  private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
  /** Bytes read or written per step; a multiple of every item size. */
  static final int CHUNK_BYTES = 64 << 20;
  private static final int MAX_HEADER_BYTES = 1 << 20;

  private Npy() {}

  /** What a file's header says (kind: f2, f4, f8 or u2; little-endian only). */
  public record Header(String descr, String kind, boolean fortranOrder, long[] shape, long dataOffset) {
    public Header {
      shape = shape.clone();
    }

    @Override
    public long[] shape() {
      return shape.clone();
    }

    /** Bytes per element. */
    public int itemSize() {
      return Integer.parseInt(kind.substring(1));
    }

    /** The dtype {@link Npy#read(Path)} returns for this descr (null for u2: BF16 must be asked for). */
    public DType naturalDType() {
      return switch (kind) {
        case "f4", "f8" -> DType.F32;
        case "f2" -> DType.F16;
        default -> null;
      };
    }
  }

  /** Reads a file as its natural dtype (f4 and f8 as F32, f2 as F16). */
  public static Tensor read(Path path) {
    Header h = header(path);
    if (h.naturalDType() == null) {
      throw new IllegalArgumentException(path + ": descr '" + h.descr() + "' holds raw 16-bit patterns; read it with "
          + "Npy.read(path, DType.BF16) if they are bfloat16 bits");
    }
    return read(path, h.naturalDType());
  }

  /** Reads a file converted to dtype (F32, F16 or BF16); u2 data only as BF16 (bits kept). */
  public static Tensor read(Path path, DType dtype) {
    Objects.requireNonNull(dtype, "dtype");
    if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
      throw new IllegalArgumentException("dtype must be F32, F16 or BF16; got " + dtype);
    }
    Header h = header(path);
    if (h.kind().equals("u2") && dtype != DType.BF16) {
      throw new IllegalArgumentException(path + ": descr '" + h.descr() + "' (raw bfloat16 bits) can only be read as "
          + "BF16; got dtype " + dtype);
    }
    try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
      long numel = Shapes.numel(h.shape());
      long dataBytes;
      try {
        dataBytes = Math.multiplyExact(numel, (long) h.itemSize());
      } catch (ArithmeticException e) {
        throw new IllegalArgumentException(path + ": shape " + Shapes.format(h.shape()) + " overflows a long", e);
      }
      long actual = ch.size() - h.dataOffset();
      if (actual != dataBytes) {
        throw new IllegalArgumentException(path + ": data must hold prod(shape " + Shapes.format(h.shape()) + ") * "
            + h.itemSize() + " = " + dataBytes + " bytes but the file has " + Math.max(actual, 0) + " after the header");
      }
      Tensor t = Tensor.allocate(dtype, Device.CPU, h.shape());
      try {
        readData(ch, h, t, dataBytes);
        return t;
      } catch (IOException | RuntimeException e) {
        t.close();
        throw e;
      }
    } catch (IOException e) {
      throw new UncheckedIOException("reading " + path, e);
    }
  }

  private static void readData(FileChannel ch, Header h, Tensor t, long dataBytes) throws IOException {
    int item = h.itemSize();
    boolean raw = (h.kind().equals("f4") && t.dtype() == DType.F32) || (h.kind().equals("f2") && t.dtype() == DType.F16)
        || (h.kind().equals("u2") && t.dtype() == DType.BF16);
    ByteBuffer in = ByteBuffer.allocateDirect((int) Math.min(CHUNK_BYTES, Math.max(dataBytes, 1)))
        .order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer out = raw ? in
        : ByteBuffer.allocateDirect((int) Math.max(1, in.capacity() / item * t.dtype().byteSize()))
            .order(ByteOrder.LITTLE_ENDIAN);
    HostMemory dst = t.host();
    long pos = h.dataOffset();
    long done = 0;
    long written = 0;
    while (done < dataBytes) {
      int n = (int) Math.min(in.capacity(), dataBytes - done);
      in.clear().limit(n);
      while (in.hasRemaining()) {
        int r = ch.read(in, pos + in.position());
        if (r < 0) {
          throw new IOException("file ended after " + (done + in.position()) + " of " + dataBytes + " data bytes");
        }
      }
      int outBytes = raw ? n : convert(in, h.kind(), n / item, out, t.dtype());
      dst.copyFrom(HostMemory.borrow(out.duplicate().clear().limit(outBytes)), 0, written, outBytes);
      done += n;
      pos += n;
      written += outBytes;
    }
  }

  /** Decodes count elements of kind from in and encodes them as dtype into out; returns bytes. */
  private static int convert(ByteBuffer in, String kind, int count, ByteBuffer out, DType dtype) {
    int size = dtype.byteSize();
    for (int i = 0; i < count; i++) {
      float x = switch (kind) {
        case "f4" -> in.getFloat(4 * i);
        case "f8" -> (float) in.getDouble(8 * i);
        case "f2" -> HalfFloats.f16ToFloat(in.getShort(2 * i));
        default -> HalfFloats.bf16ToFloat(in.getShort(2 * i));
      };
      switch (dtype) {
        case F32 -> out.putFloat(4 * i, x);
        case F16 -> out.putShort(2 * i, HalfFloats.floatToF16(x));
        default -> out.putShort(2 * i, HalfFloats.floatToBf16(x));
      }
    }
    return count * size;
  }

  /** Parses and checks a file's header without reading the data. */
  public static Header header(Path path) {
    Objects.requireNonNull(path, "path");
    try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
      ByteBuffer pre = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
      while (pre.hasRemaining() && ch.read(pre) >= 0) {
        // fill the fixed preamble (or stop at end of file)
      }
      if (pre.position() < 10 || !Arrays.equals(Arrays.copyOf(pre.array(), 6), MAGIC)) {
        throw new IllegalArgumentException(path + " is not a .npy file: it must start with \\x93NUMPY");
      }
      int major = pre.get(6) & 0xff;
      long len;
      long offset;
      if (major == 1) {
        len = pre.getShort(8) & 0xffff;
        offset = 10 + len;
      } else if (major == 2 || major == 3) {
        if (pre.position() < 12) {
          throw new IllegalArgumentException(path + ": .npy version " + major + " header is truncated");
        }
        len = pre.getInt(8) & 0xffffffffL;
        offset = 12 + len;
      } else {
        throw new IllegalArgumentException(path + ": .npy version " + major + "." + (pre.get(7) & 0xff)
            + " is not supported (1.0, 2.0 and 3.0 are)");
      }
      if (len > MAX_HEADER_BYTES || offset > ch.size()) {
        throw new IllegalArgumentException(path + ": header length " + len + " runs past the file (" + ch.size()
            + " bytes) or the 1 MiB limit");
      }
      ByteBuffer text = ByteBuffer.allocate((int) len);
      long p = offset - len;
      while (text.hasRemaining()) {
        int r = ch.read(text, p + text.position());
        if (r < 0) {
          throw new IllegalArgumentException(path + ": header is truncated");
        }
      }
      // Version 3 headers are UTF-8, 1 and 2 latin-1; the keys and values we accept are ASCII.
      String s = new String(text.array(), major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
      return parseHeader(path.toString(), s, offset);
    } catch (IOException e) {
      throw new UncheckedIOException("reading " + path, e);
    }
  }

  static Header parseHeader(String where, String text, long dataOffset) {
    Map<String, Object> dict = new DictParser(where, text).parse();
    for (String key : new String[] {"descr", "fortran_order", "shape"}) {
      if (!dict.containsKey(key)) {
        throw new IllegalArgumentException(where + ": header has no '" + key + "' key: " + text.strip());
      }
    }
    if (!(dict.get("descr") instanceof String descr)) {
      throw new IllegalArgumentException(where + ": 'descr' must be a string (structured dtypes are not supported); got "
          + dict.get("descr"));
    }
    if (!(dict.get("fortran_order") instanceof Boolean fortran)) {
      throw new IllegalArgumentException(where + ": 'fortran_order' must be True or False; got " + dict.get("fortran_order"));
    }
    if (!(dict.get("shape") instanceof long[] shape)) {
      throw new IllegalArgumentException(where + ": 'shape' must be a tuple of integers; got " + dict.get("shape"));
    }
    if (fortran) {
      throw new IllegalArgumentException(where + ": fortran_order True is not supported: save a C-ordered array "
          + "(np.ascontiguousarray(x))");
    }
    if (descr.length() < 3) {
      throw new IllegalArgumentException(where + ": descr '" + descr + "' is not supported");
    }
    char order = descr.charAt(0);
    String kind = descr.substring(1);
    if (order == '>') {
      throw new IllegalArgumentException(where + ": big-endian .npy is not supported: save with astype('<f4'); got descr '"
          + descr + "'");
    }
    if ((order != '<' && order != '|' && order != '=') || !List.of("f2", "f4", "f8", "u2").contains(kind)) {
      throw new IllegalArgumentException(where + ": descr '" + descr + "' is not supported: use '<f4', '<f2', '<f8' or "
          + "'<u2' (bfloat16 bits)");
    }
    Shapes.numel(shape); // rejects negative dimensions and overflow
    return new Header(descr, kind, false, shape, dataOffset);
  }

  /**
   * Writes a floating tensor as a C-ordered .npy file: host tensors with any strides, device
   * tensors contiguous (they are copied to the host first).
   */
  public static void write(Path path, Tensor t) {
    Objects.requireNonNull(path, "path");
    Objects.requireNonNull(t, "tensor");
    t.requireOpen("tensor");
    String descr = switch (t.dtype()) {
      case F32 -> "<f4";
      case F16 -> "<f2";
      case BF16 -> "<u2";
      default -> throw new IllegalArgumentException("tensor must be F32, F16 or BF16; got " + t.dtype());
    };
    boolean copy = t.device().isCuda() || !t.isContiguous();
    Tensor src = copy ? t.to(Device.CPU) : t;
    try (FileChannel ch = FileChannel.open(path, StandardOpenOption.WRITE, StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      ByteBuffer head = ByteBuffer.wrap(headerBytes(descr, t.shape()));
      while (head.hasRemaining()) {
        ch.write(head);
      }
      long total = src.byteSize();
      ByteBuffer buf = ByteBuffer.allocateDirect((int) Math.min(CHUNK_BYTES, Math.max(total, 1)))
          .order(ByteOrder.LITTLE_ENDIAN);
      HostMemory staging = HostMemory.borrow(buf);
      long done = 0;
      while (done < total) {
        int n = (int) Math.min(buf.capacity(), total - done);
        staging.copyFrom(src.host(), src.byteOffset + done, 0, n);
        buf.clear().limit(n);
        while (buf.hasRemaining()) {
          ch.write(buf);
        }
        done += n;
      }
    } catch (IOException e) {
      throw new UncheckedIOException("writing " + path, e);
    } finally {
      if (copy) {
        src.close();
      }
    }
  }

  /** Magic, version, length and the dict padded with spaces and a newline to 64 bytes. */
  static byte[] headerBytes(String descr, long[] shape) {
    StringBuilder tuple = new StringBuilder("(");
    for (int i = 0; i < shape.length; i++) {
      tuple.append(i == 0 ? "" : ", ").append(shape[i]);
    }
    tuple.append(shape.length == 1 ? ",)" : ")");
    String dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + tuple + ", }";
    int prefix = 10;
    int major = 1;
    int len = dict.length() + 1;
    int padded = (prefix + len + 63) / 64 * 64 - prefix;
    if (padded > 0xffff) {
      major = 2;
      prefix = 12;
      padded = (prefix + len + 63) / 64 * 64 - prefix;
    }
    ByteBuffer b = ByteBuffer.allocate(prefix + padded).order(ByteOrder.LITTLE_ENDIAN);
    b.put(MAGIC).put((byte) major).put((byte) 0);
    if (major == 1) {
      b.putShort((short) padded);
    } else {
      b.putInt(padded);
    }
    b.put(dict.getBytes(StandardCharsets.ISO_8859_1));
    while (b.position() < b.capacity() - 1) {
      b.put((byte) ' ');
    }
    b.put((byte) '\n');
    return b.array();
  }

  /** A parser for the header's dict literal: string keys; string, bool or int-tuple values. */
  private static final class DictParser {
    private final String where;
    private final String s;
    private int i;

    DictParser(String where, String s) {
      this.where = where;
      this.s = s;
    }

    Map<String, Object> parse() {
      Map<String, Object> out = new HashMap<>();
      expect('{');
      while (true) {
        skip();
        if (peek() == '}') {
          i++;
          break;
        }
        String key = string();
        expect(':');
        skip();
        Object value = value();
        if (out.put(key, value) != null) {
          throw error("key '" + key + "' appears twice");
        }
        skip();
        if (peek() == ',') {
          i++;
        } else if (peek() != '}') {
          throw error("expected ',' or '}'");
        }
      }
      skip();
      if (i != s.length()) {
        throw error("unexpected text after the dict");
      }
      return out;
    }

    private Object value() {
      char c = peek();
      if (c == '\'' || c == '"') {
        return string();
      }
      if (c == '(') {
        return tuple();
      }
      if (s.startsWith("True", i)) {
        i += 4;
        return Boolean.TRUE;
      }
      if (s.startsWith("False", i)) {
        i += 5;
        return Boolean.FALSE;
      }
      throw error("unsupported value");
    }

    private long[] tuple() {
      expect('(');
      List<Long> dims = new ArrayList<>();
      while (true) {
        skip();
        if (peek() == ')') {
          i++;
          break;
        }
        int start = i;
        while (i < s.length() && Character.isDigit(s.charAt(i))) {
          i++;
        }
        if (start == i) {
          throw error("shape entries must be non-negative integers");
        }
        try {
          dims.add(Long.parseLong(s.substring(start, i)));
        } catch (NumberFormatException e) {
          throw error("shape entry " + s.substring(start, i) + " does not fit a long");
        }
        // numpy writes 'L' suffixes in some Python 2 files
        if (i < s.length() && s.charAt(i) == 'L') {
          i++;
        }
        skip();
        if (peek() == ',') {
          i++;
        } else if (peek() != ')') {
          throw error("expected ',' or ')' in the shape");
        }
      }
      return dims.stream().mapToLong(Long::longValue).toArray();
    }

    private String string() {
      skip();
      char quote = peek();
      if (quote != '\'' && quote != '"') {
        throw error("expected a quoted string");
      }
      int end = s.indexOf(quote, i + 1);
      if (end < 0) {
        throw error("unterminated string");
      }
      String v = s.substring(i + 1, end);
      i = end + 1;
      return v;
    }

    private void expect(char c) {
      skip();
      if (peek() != c) {
        throw error("expected '" + c + "'");
      }
      i++;
    }

    private char peek() {
      if (i >= s.length()) {
        throw error("header ends early");
      }
      return s.charAt(i);
    }

    private void skip() {
      while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
        i++;
      }
    }

    private IllegalArgumentException error(String what) {
      return new IllegalArgumentException(where + ": bad .npy header at character " + i + " (" + what + "): "
          + s.strip());
    }
  }
}
