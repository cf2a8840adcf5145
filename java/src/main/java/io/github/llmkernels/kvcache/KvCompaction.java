package io.github.llmkernels.kvcache;

import io.github.llmkernels.internal.Check;
import io.github.llmkernels.internal.Dispatch;
import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.internal.Operand;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Shapes;
import io.github.llmkernels.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Moves the kept rows of a KV cache ({@link KeptTokens}) and their original positions (so RoPE
 * stays right): out of place into a {@link DenseKvCache} (same count per head) or a
 * {@link VarlenKvCache} (per-head lengths, e.g. AdaKV budgets), or in place by hole filling.
 *
 * <p>Inputs: k and v [B, Hkv, N, d] of one dtype (F32, F16, BF16), positions I32 [B, Hkv, N] or
 * null (= 0 .. N - 1), all contiguous on the kept tokens' device; kept selected over N tokens.
 * Rows move as raw bits: compaction is exact. Every used kept index is checked (in [0, N)) before
 * anything is written, on every backend. Backends: JAVA ({@link KvCompactionRef}), NATIVE, CUDA.
 */
public final class KvCompaction {
  private KvCompaction() {}

  // ---- dense ----------------------------------------------------------------------------------

  public static DenseKvCache dense(Tensor k, Tensor v, Tensor positions, KeptTokens kept) {
    return dense(k, v, positions, kept, Exec.DEFAULT);
  }

  /**
   * Dense compaction (uniform budgets only): k and v [B, Hkv, K, d] by {@link RowGather}, positions
   * [B, Hkv, K] gathered as 4-byte rows.
   */
  public static DenseKvCache dense(Tensor k, Tensor v, Tensor positions, KeptTokens kept, Exec exec) {
    String op = "KvCompaction.dense";
    Backend backend = check(op, k, v, positions, kept, exec, "N");
    if (!kept.isUniform()) {
      int[][] c = kept.counts();
      throw new IllegalArgumentException(op + ": needs uniform budgets (every head keeps the same count); head [0, 0] "
          + "keeps " + c[0][0] + " but another keeps a different count; use varlen for per-head budgets");
    }
    int count = kept.batch() * kept.heads() == 0 ? kept.maxKeep() : kept.count(0, 0);
    if (kept.maxKeep() != count) {
      throw new IllegalArgumentException(op + ": kept rows must hold exactly the kept count (maxKeep = "
          + kept.maxKeep() + ", count = " + count + ")");
    }
    Exec resolved = new Exec(backend, exec.stream());
    Tensor kOut = null;
    Tensor vOut = null;
    Tensor pOut = null;
    try {
      kOut = RowGather.gatherRows(k, kept.kept(), resolved);
      vOut = RowGather.gatherRows(v, kept.kept(), resolved);
      pOut = Tensor.allocate(DType.I32, k.device(), k.shape(0), k.shape(1), count);
      if (positions == null) {
        pOut.copyFrom(kept.kept()); // the kept slots are the positions
      } else if (backend == Backend.JAVA) {
        long[] cu = uniformCu(kept, count);
        KvCompactionRef.gatherVarlen(positions, kept.kept(), cu, pOut);
      } else {
        // Positions are int32 rows of 4 bytes: gather them as one-element F32 rows (bits are moved, not read).
        Tensor src = Tensor.wrapAddress(positions.address(), positions.byteSize(), positions.device(), DType.F32,
            new long[] {k.shape(0), k.shape(1), k.shape(2), 1}, null);
        Tensor dst = Tensor.wrapAddress(pOut.address(), pOut.byteSize(), pOut.device(), DType.F32,
            new long[] {k.shape(0), k.shape(1), count, 1}, null);
        try {
          RowGather.gatherRowsInto(src, kept.kept(), dst, resolved);
        } finally {
          java.lang.ref.Reference.reachabilityFence(positions);
          src.close();
          dst.close();
        }
      }
      return new DenseKvCache(kOut, vOut, pOut);
    } catch (RuntimeException e) {
      for (Tensor t : new Tensor[] {kOut, vOut, pOut}) {
        if (t != null) {
          t.close();
        }
      }
      throw e;
    }
  }

  // ---- varlen ---------------------------------------------------------------------------------

  public static VarlenKvCache varlen(Tensor k, Tensor v, Tensor positions, KeptTokens kept) {
    return varlen(k, v, positions, kept, Exec.DEFAULT);
  }

  /** Per-head variable-length compaction: head bh's kept rows at rows cu[bh] .. cu[bh + 1] - 1. */
  public static VarlenKvCache varlen(Tensor k, Tensor v, Tensor positions, KeptTokens kept, Exec exec) {
    String op = "KvCompaction.varlen";
    Backend backend = check(op, k, v, positions, kept, exec, "N");
    long[] cu = kept.cumulative();
    long total = cu[cu.length - 1];
    long d = k.shape(3);
    Device device = k.device();
    List<Tensor> made = new ArrayList<>();
    try {
      Tensor kOut = track(made, Tensor.allocate(k.dtype(), device, total, d));
      Tensor vOut = track(made, Tensor.allocate(k.dtype(), device, total, d));
      Tensor pOut = track(made, Tensor.allocate(DType.I32, device, total));
      Tensor cuHost = track(made, Tensor.of(cu, cu.length));
      Tensor cuDevice = backend == Backend.CUDA ? track(made, cuHost.to(device)) : null;
      Tensor pos = positions != null ? positions : track(made, iota(k.shape(0), k.shape(1), k.shape(2), device));
      Tensor[][] jobs = {{k, kOut}, {v, vOut}, {pos, pOut}};
      Operand[] operands = {Operand.of("k", k), Operand.of("v", v), Operand.of("positions", pos),
          Operand.of("kept", kept.kept())};
      try {
        for (Tensor[] job : jobs) {
          if (backend == Backend.JAVA) {
            KvCompactionRef.gatherVarlen(job[0], kept.kept(), cu, job[1]);
          } else {
            boolean cuda = backend == Backend.CUDA;
            long rowBytes = KvCompactionRef.rowElements(job[0]) * job[0].dtype().byteSize();
            NativeApi.kvGatherVarlen(cuda ? device.index() : -1, job[0].address(), kept.kept().address(),
                cuda ? cuDevice.address() : cuHost.address(), job[1].address(), k.shape(0), k.shape(1), k.shape(2),
                kept.maxKeep(), rowBytes, cuda && exec.stream() != null ? exec.stream().handle() : 0);
          }
        }
      } finally {
        Dispatch.keepAlive(operands);
        java.lang.ref.Reference.reachabilityFence(made);
      }
      if (positions == null) {
        pos.close();
      }
      return new VarlenKvCache(kOut, vOut, pOut, cu, cuHost, cuDevice, kept.batch(), kept.heads());
    } catch (RuntimeException e) {
      for (Tensor t : made) {
        t.close();
      }
      throw e;
    }
  }

  // ---- in place -------------------------------------------------------------------------------

  public static int[][] inPlace(Tensor k, Tensor v, Tensor positions, KeptTokens kept) {
    return inPlace(k, v, positions, kept, Exec.DEFAULT);
  }

  /**
   * In-place compaction by hole filling: afterwards slots 0 .. counts[b][h] - 1 of head (b, h) of
   * k, v and positions hold exactly its kept rows (kept slots must be strictly ascending in [0,
   * capacity)). Rows already below the count stay; only kept rows at or beyond it move, into the
   * holes, so at most min(kept, dropped) rows move per head. The tensors keep their capacity:
   * slots at or beyond the new length hold stale rows (garbage) to be overwritten by later appends.
   *
   * @param k [B, Hkv, capacity, d]
   * @param positions I32 [B, Hkv, capacity] or null (then only k and v move)
   * @return the new length of each head [B][Hkv] (= kept.counts())
   */
  public static int[][] inPlace(Tensor k, Tensor v, Tensor positions, KeptTokens kept, Exec exec) {
    String op = "KvCompaction.inPlace";
    Backend backend = check(op, k, v, positions, kept, exec, "capacity");
    List<Tensor> caches = new ArrayList<>(List.of(k, v));
    if (positions != null) {
      caches.add(positions);
    }
    Operand[] operands = {Operand.of("k", k), Operand.of("v", v), Operand.of("kept", kept.kept())};
    try {
      if (backend == Backend.JAVA) {
        KvCompactionRef.checkInPlace(kept.kept().toIntArray(), kept.counts(), k.shape(1), kept.maxKeep(),
            k.shape(2));
        for (Tensor t : caches) {
          KvCompactionRef.compactInPlace(t, kept.kept(), kept.counts());
        }
      } else {
        boolean cuda = backend == Backend.CUDA;
        Tensor counts = kept.countsTensor();
        for (Tensor t : caches) {
          long rowBytes = KvCompactionRef.rowElements(t) * t.dtype().byteSize();
          NativeApi.kvCompactInPlace(cuda ? k.device().index() : -1, t.address(), kept.kept().address(),
              counts.address(), k.shape(0), k.shape(1), k.shape(2), kept.maxKeep(), rowBytes,
              cuda && exec.stream() != null ? exec.stream().handle() : 0);
        }
      }
    } finally {
      Dispatch.keepAlive(operands);
      java.lang.ref.Reference.reachabilityFence(positions);
    }
    return kept.counts();
  }

  // ---- shared ---------------------------------------------------------------------------------

  private static Backend check(String op, Tensor k, Tensor v, Tensor positions, KeptTokens kept, Exec exec,
      String nName) {
    if (k == null || v == null || kept == null || exec == null) {
      throw new IllegalArgumentException(op + ": " + (k == null ? "k" : v == null ? "v" : kept == null ? "kept"
          : "exec") + " must not be null");
    }
    k.requireOpen("k");
    v.requireOpen("v");
    Tensor keptTensor = kept.kept();
    List<Operand> ops = new ArrayList<>(List.of(Operand.of("k", k), Operand.of("v", v), Operand.of("kept",
        keptTensor)));
    if (positions != null) {
      positions.requireOpen("positions");
      ops.add(Operand.of("positions", positions));
    }
    Backend backend = Dispatch.select(op, exec, ops.toArray(new Operand[0]));
    Check.rank("k", k, 4, "(B, Hkv, " + nName + ", d)");
    Check.dtype("k", k, DType.F32, DType.F16, DType.BF16);
    if (!Arrays.equals(k.shape(), v.shape())) {
      throw new IllegalArgumentException(op + ": v must have the shape of k " + Shapes.format(k.shape()) + ", got "
          + Shapes.format(v.shape()));
    }
    Check.sameDType("v", v, "k", k);
    k.requireContiguous("k");
    v.requireContiguous("v");
    if (positions != null) {
      Check.rank("positions", positions, 3, "(B, Hkv, " + nName + ")");
      Check.dtype("positions", positions, DType.I32);
      for (int i = 0; i < 3; i++) {
        Check.dim("positions", positions, i, k.shape(i), new String[] {"B", "Hkv", nName}[i] + " (from k)");
      }
      positions.requireContiguous("positions");
      Check.noOverlap("positions", positions, "k", k);
      Check.noOverlap("positions", positions, "v", v);
    }
    if (kept.batch() != k.shape(0) || kept.heads() != k.shape(1)) {
      throw new IllegalArgumentException(op + ": kept is for [B, Hkv] = [" + kept.batch() + ", " + kept.heads()
          + "] but k has shape " + Shapes.format(k.shape()));
    }
    if (kept.n() != k.shape(2)) {
      throw new IllegalArgumentException(op + ": kept was selected over n = " + kept.n() + " tokens but k holds "
          + nName + " = " + k.shape(2));
    }
    if (k.overlaps(v)) {
      throw new IllegalArgumentException(op + ": k and v must not overlap in memory");
    }
    return backend;
  }

  private static Tensor track(List<Tensor> made, Tensor t) {
    made.add(t);
    return t;
  }

  private static long[] uniformCu(KeptTokens kept, int count) {
    long[] cu = new long[kept.batch() * kept.heads() + 1];
    for (int i = 1; i < cu.length; i++) {
      cu[i] = cu[i - 1] + count;
    }
    return cu;
  }

  /** Positions 0 .. n - 1 for every head, I32 [B, H, n] on device. */
  static Tensor iota(long b, long h, long n, Device device) {
    int[] values = new int[Math.toIntExact(b * h * n)];
    for (int i = 0; i < values.length; i++) {
      values[i] = (int) (i % n);
    }
    Tensor host = Tensor.of(values, b, h, n);
    if (!device.isCuda()) {
      return host;
    }
    try (Tensor t = host) {
      return t.to(device);
    }
  }
}
