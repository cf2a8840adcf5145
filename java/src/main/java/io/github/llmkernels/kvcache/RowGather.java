package io.github.llmkernels.kvcache;

import io.github.llmkernels.internal.Check;
import io.github.llmkernels.internal.Dispatch;
import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.internal.Operand;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Tensor;

/**
 * Row gather, the core of KV cache compaction: {@code dst[b, h, k, :] = src[b, h, idx[b, h, k], :]}.
 *
 * <p>Each (batch, head) picks its own rows, in the order idx lists them (duplicates allowed).
 * Every index is checked before anything is written: a negative or too-large index throws
 * {@link IllegalArgumentException} naming its position, e.g. {@code idx[0, 3, 17] = 4096 is
 * outside [0, N = 4096)}, and dst is left untouched, on every backend.
 *
 * <p>Requirements: src, idx and dst contiguous and on one device; src and dst of one dtype
 * (F32, F16 or BF16); idx I32; dst must not overlap src or idx (in-place compaction is a
 * separate operation). The CUDA backend validates on the device and waits for its 8-byte
 * verdict, so the call returns after the gather completed.
 */
public final class RowGather {
  private static final String OP = "gatherRows";

  private RowGather() {}

  /** Gathers into a new tensor on src's device, backend chosen automatically. */
  public static Tensor gatherRows(Tensor src, Tensor idx) {
    return gatherRows(src, idx, Exec.DEFAULT);
  }

  /**
   * Gathers into a new tensor on src's device.
   *
   * @param src (B, H, N, d) F32/F16/BF16
   * @param idx (B, H, K) I32, values in [0, N)
   * @return dst (B, H, K, d), same dtype and device as src
   */
  public static Tensor gatherRows(Tensor src, Tensor idx, Exec exec) {
    // Devices and backend first: a mixed-device call must fail as such, before any allocation.
    Dispatch.select(OP, exec, Operand.of("src", src), Operand.of("idx", idx));
    checkShapes(src, idx);
    Tensor dst = Tensor.allocate(src.dtype(), src.device(), src.shape(0), src.shape(1), idx.shape(2), src.shape(3));
    try {
      gatherRowsInto(src, idx, dst, exec);
      return dst;
    } catch (RuntimeException e) {
      dst.close();
      throw e;
    }
  }

  /**
   * Gathers into an existing tensor.
   *
   * @param src (B, H, N, d) F32/F16/BF16
   * @param idx (B, H, K) I32, values in [0, N)
   * @param dst (B, H, K, d), dtype of src; untouched if any index is invalid
   */
  public static void gatherRowsInto(Tensor src, Tensor idx, Tensor dst, Exec exec) {
    Operand[] operands = {Operand.of("src", src), Operand.of("idx", idx), Operand.of("dst", dst)};
    Backend backend = Dispatch.select(OP, exec, operands);
    checkShapes(src, idx);
    Check.rank("dst", dst, 4, "(B, H, K, d)");
    Check.sameDType("dst", dst, "src", src);
    Check.dim("dst", dst, 0, src.shape(0), "B (from src)");
    Check.dim("dst", dst, 1, src.shape(1), "H (from src)");
    Check.dim("dst", dst, 2, idx.shape(2), "K (from idx)");
    Check.dim("dst", dst, 3, src.shape(3), "d (from src)");
    dst.requireContiguous("dst");
    Check.noOverlap("dst", dst, "src", src);
    Check.noOverlap("dst", dst, "idx", idx);

    long b = src.shape(0);
    long h = src.shape(1);
    long n = src.shape(2);
    long k = idx.shape(2);
    long rowBytes = src.shape(3) * src.dtype().byteSize();
    try {
      switch (backend) {
        case JAVA -> RowGatherRef.gatherRows(src, idx, dst);
        case NATIVE -> NativeApi.gatherRowsCpu(src.address(), idx.address(), dst.address(), b, h, n, k, rowBytes);
        case CUDA -> NativeApi.gatherRowsCuda(src.device().index(), src.address(), idx.address(), dst.address(), b, h,
            n, k, rowBytes, exec.stream() == null ? 0 : exec.stream().handle());
        default -> throw new IllegalStateException("unresolved backend " + backend);
      }
    } finally {
      Dispatch.keepAlive(operands);
    }
  }

  private static void checkShapes(Tensor src, Tensor idx) {
    if (src == null || idx == null) {
      throw new IllegalArgumentException((src == null ? "src" : "idx") + " must not be null");
    }
    src.requireOpen("src");
    idx.requireOpen("idx");
    Check.rank("src", src, 4, "(B, H, N, d)");
    Check.rank("idx", idx, 3, "(B, H, K)");
    Check.dtype("src", src, DType.F32, DType.F16, DType.BF16);
    Check.dtype("idx", idx, DType.I32);
    Check.dim("idx", idx, 0, src.shape(0), "B (from src)");
    Check.dim("idx", idx, 1, src.shape(1), "H (from src)");
    src.requireContiguous("src");
    idx.requireContiguous("idx");
  }
}
