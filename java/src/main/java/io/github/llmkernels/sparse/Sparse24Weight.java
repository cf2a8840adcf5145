package io.github.llmkernels.sparse;

import io.github.llmkernels.internal.Check;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Shapes;
import io.github.llmkernels.tensor.Tensor;

/**
 * A 2:4 weight W [M, K] in compressed form (PyTorch's unreordered layout): {@link #values()}
 * [M, K/2] (F32, F16 or BF16) hold the two kept elements of every group of 4 along K in
 * increasing k, {@link #meta()} U16 [M, K/16] the positions, 4 groups per word, lowest nibble =
 * lowest group, nibble {@code idx0 | idx1 << 2} with idx0 < idx1. Both on one device, contiguous.
 *
 * <p>Made by {@link Sparse24#compress}, or from existing tensors with {@link #of}. Closing it
 * closes both tensors; use after close throws {@link IllegalStateException}.
 */
public final class Sparse24Weight implements AutoCloseable {
  private final Tensor values;
  private final Tensor meta;
  private final long m;
  private final long k;

  Sparse24Weight(Tensor values, Tensor meta, long m, long k) {
    this.values = values;
    this.meta = meta;
    this.m = m;
    this.k = k;
  }

  /**
   * Wraps compressed tensors (for example a PyTorch weight's values and int16 metadata viewed as
   * U16) and takes ownership: closing the weight closes them. Every metadata nibble is checked
   * here, once (device metadata is copied to the host for it, 1/8 of the values' bytes), since
   * the CUDA kernels do not re-check it per call; the CPU kernels and decompress check it again.
   *
   * @param values [M, K/2] F32, F16 or BF16, contiguous
   * @param meta U16 [M, K/16] on values' device, contiguous
   * @throws IllegalArgumentException for a nibble without idx0 < idx1, naming its row and group
   */
  public static Sparse24Weight of(Tensor values, Tensor meta) {
    if (values == null || meta == null) {
      throw new IllegalArgumentException("Sparse24Weight.of: " + (values == null ? "values" : "meta")
          + " must not be null");
    }
    values.requireOpen("values");
    meta.requireOpen("meta");
    Check.rank("values", values, 2, "(M, K/2)");
    Check.rank("meta", meta, 2, "(M, K/16)");
    Check.dtype("values", values, DType.F32, DType.F16, DType.BF16);
    Check.dtype("meta", meta, DType.U16);
    long m = values.shape(0);
    long k = values.shape(1) * 2;
    if (k % 16 != 0) {
      throw new IllegalArgumentException("values dimension 1 (K/2 = " + values.shape(1)
          + ") must be a multiple of 8: K must be a multiple of 16 (one metadata word covers 16 columns), got shape "
          + Shapes.format(values.shape()));
    }
    Check.dim("meta", meta, 0, m, "M (from values)");
    Check.dim("meta", meta, 1, k / 16, "K/16 (from values)");
    if (!values.device().equals(meta.device())) {
      throw new IllegalArgumentException("meta must be on values' device " + values.device() + ", is on "
          + meta.device());
    }
    values.requireContiguous("values");
    meta.requireContiguous("meta");
    checkCodes(meta, m, k);
    return new Sparse24Weight(values, meta, m, k);
  }

  private static void checkCodes(Tensor meta, long m, long k) {
    short[] words;
    if (!meta.device().isCuda()) {
      words = meta.toBitsArray();
    } else {
      try (Tensor host = meta.to(Device.CPU)) {
        words = host.toBitsArray();
      }
    }
    long perRow = k / 16;
    for (int i = 0; i < words.length; i++) {
      for (int nibble = 0; nibble < 4; nibble++) {
        int code = (words[i] >> (4 * nibble)) & 15;
        if (Sparse24Ref.idx0(code) >= Sparse24Ref.idx1(code)) {
          Sparse24.Violation at = new Sparse24.Violation(i / perRow, (i % perRow) * 4 + nibble);
          throw new IllegalArgumentException("meta: " + at + ": code " + code + " must have idx0 < idx1 (idx0 = "
              + Sparse24Ref.idx0(code) + ", idx1 = " + Sparse24Ref.idx1(code) + "); nothing was wrapped");
        }
      }
    }
  }

  /** Kept elements [M, K/2]. */
  public Tensor values() {
    return values;
  }

  /** Metadata U16 [M, K/16]. */
  public Tensor meta() {
    return meta;
  }

  /** Rows of W (output features). */
  public long m() {
    return m;
  }

  /** Columns of W (the reduction dimension, a multiple of 16). */
  public long k() {
    return k;
  }

  public DType dtype() {
    return values.dtype();
  }

  public Device device() {
    return values.device();
  }

  /** Bytes of values plus metadata. */
  public long bytes() {
    return values.byteSize() + meta.byteSize();
  }

  /** Bytes of the dense W [M, K] of the same dtype. */
  public long denseBytes() {
    return m * k * values.dtype().byteSize();
  }

  /**
   * {@link #bytes()} / {@link #denseBytes()}: 0.5625 for F16/BF16 (9 bits per dense element),
   * 0.53125 for F32; 0 for an empty weight.
   */
  public double bytesRatio() {
    long dense = denseBytes();
    return dense == 0 ? 0 : (double) bytes() / dense;
  }

  public boolean isClosed() {
    return values.isClosed() || meta.isClosed();
  }

  /** Throws {@link IllegalStateException} naming the weight if it (or one of its tensors) is closed. */
  public Sparse24Weight requireOpen(String name) {
    values.requireOpen(name + ".values");
    meta.requireOpen(name + ".meta");
    return this;
  }

  @Override
  public void close() {
    values.close();
    meta.close();
  }

  @Override
  public String toString() {
    return "Sparse24Weight(" + values.dtype() + ", [" + m + ", " + k + "], " + values.device()
        + (isClosed() ? ", closed" : "") + ")";
  }
}
