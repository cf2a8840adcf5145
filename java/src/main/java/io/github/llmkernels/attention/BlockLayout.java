package io.github.llmkernels.attention;

import io.github.llmkernels.internal.LayoutArgs;
import io.github.llmkernels.internal.NativeApi;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.BackendUnavailableException;
import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.CudaStream;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.lang.ref.Reference;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A mask compiled to the tiles block-sparse attention computes (FlexAttention's BlockMask as
 * CSR): for every (layout batch, layout head, query block) the ascending lists of PARTIAL key
 * blocks (the kernels evaluate the mask on them) and FULL key blocks (no masked pair, computed
 * without the mask). EMPTY tiles are skipped.
 *
 * <p>Geometry: B batches, Hq query heads, seqQ x seqK positions in tiles of blockQ x blockK;
 * {@code numQBlocks = ceil(seqQ / blockQ)}, {@code numKBlocks = ceil(seqK / blockK)}. The layout
 * has {@code layoutBatch} (B if the mask depends on the batch or lengths are given, else 1) x
 * {@code layoutHeads} (Hq if the mask depends on the head, else 1) x numQBlocks rows; row
 * {@code r = (lb * layoutHeads + lh) * numQBlocks + qb}. A broadcast dimension (1) serves every
 * batch / head. Tile (qb, kb) covers queries [qb * blockQ, min((qb + 1) * blockQ, seqQ)) and keys
 * likewise; a tile that a per-batch length cuts is at most PARTIAL, so FULL tiles never need a
 * length check.
 *
 * <p>Varlen: per-batch lengths {@code 0 <= qLens[b] <= seqQ}, {@code 0 <= kLens[b] <= seqK}
 * (positions beyond them are masked, and bottom-right alignment uses them).
 *
 * <p>{@link #fromBlockMask} builds the layout of an explicit tile selection (a user's block mask,
 * or a {@link SparsePrefill} estimate) classified against a base mask, optionally with token-level
 * key columns beside the tiles ({@link #columns}: a query also attends to a listed column whose
 * key block its query block does not list, where the mask allows the pair).
 *
 * <p>Backends: JAVA classifies tiles with {@link MaskSpec#classify} (the same arithmetic as the
 * native classifier, so all backends give identical layouts); NATIVE runs llmk_layout_count_cpu
 * then llmk_layout_fill_cpu; CUDA does the same on the device (only the two block totals come to
 * the host). The index tensors live on the layout's device; accessors copy them to the host once.
 */
public final class BlockLayout implements AutoCloseable {
  private static final String OP = "BlockLayout.compile";

  private final MaskSpec mask;
  private final int batch;
  private final int heads;
  private final int layoutBatch;
  private final int layoutHeads;
  private final int seqQ;
  private final int seqK;
  private final int blockQ;
  private final int blockK;
  private final int numQBlocks;
  private final int numKBlocks;
  private final int[] qLens;
  private final int[] kLens;
  private final Device device;
  private final Backend backend;
  private final List<Tensor> owned = new ArrayList<>();
  private final AtomicBoolean closed = new AtomicBoolean();
  private EncodedMask encoded; // null for a JAVA layout built without the native library
  private Tensor qLensTensor;
  private Tensor kLensTensor;
  private Tensor partialPtr;
  private Tensor fullPtr;
  private Tensor partialIdx;
  private Tensor fullIdx;
  private TokenColumns tokenColumns; // null: no token columns
  private Tensor columnsTensor;
  private long partialCount;
  private long fullCount;
  // host mirror, filled on first use
  private long[] hostPartialPtr;
  private long[] hostFullPtr;
  private int[] hostPartialIdx;
  private int[] hostFullIdx;

  private BlockLayout(MaskSpec mask, int batch, int heads, int seqQ, int seqK, int blockQ, int blockK, int[] qLens,
      int[] kLens, Device device, Backend backend) {
    this(mask, batch, heads, seqQ, seqK, blockQ, blockK, qLens, kLens, device, backend,
        qLens != null || kLens != null ? batch : mask.layoutBatch(batch), mask.layoutHeads(heads));
  }

  private BlockLayout(MaskSpec mask, int batch, int heads, int seqQ, int seqK, int blockQ, int blockK, int[] qLens,
      int[] kLens, Device device, Backend backend, int layoutBatch, int layoutHeads) {
    this.mask = mask;
    this.batch = batch;
    this.heads = heads;
    this.seqQ = seqQ;
    this.seqK = seqK;
    this.blockQ = blockQ;
    this.blockK = blockK;
    this.qLens = qLens;
    this.kLens = kLens;
    this.device = device;
    this.backend = backend;
    this.layoutBatch = layoutBatch;
    this.layoutHeads = layoutHeads;
    this.numQBlocks = ceilDiv(seqQ, blockQ);
    this.numKBlocks = ceilDiv(seqK, blockK);
  }

  // ---- compile -----------------------------------------------------------------------------

  /** Compiles on the host (AUTO: NATIVE when the library loaded, else JAVA). */
  public static BlockLayout compile(MaskSpec mask, int batch, int heads, int seqQ, int seqK, int blockQ, int blockK) {
    return compile(mask, batch, heads, seqQ, seqK, blockQ, blockK, null, null, Device.CPU, Exec.DEFAULT);
  }

  /** Compiles for tensors on device (CUDA devices compile there) with the given backend/stream. */
  public static BlockLayout compile(MaskSpec mask, int batch, int heads, int seqQ, int seqK, int blockQ, int blockK,
      Device device, Exec exec) {
    return compile(mask, batch, heads, seqQ, seqK, blockQ, blockK, null, null, device, exec);
  }

  /** Varlen on the host: per-batch lengths (either may be null = the padded length). */
  public static BlockLayout compile(MaskSpec mask, int batch, int heads, int seqQ, int seqK, int blockQ, int blockK,
      int[] qLens, int[] kLens) {
    return compile(mask, batch, heads, seqQ, seqK, blockQ, blockK, qLens, kLens, Device.CPU, Exec.DEFAULT);
  }

  /**
   * The general form.
   *
   * @param mask the mask (its per-batch / per-head data must have 1 or B / 1 or heads rows)
   * @param batch B of the attention calls this layout serves
   * @param heads Hq, the query heads
   * @param qLens per-batch query lengths [B] in [0, seqQ], or null
   * @param kLens per-batch key lengths [B] in [0, seqK], or null
   * @param device where the layout (and the attention tensors) live
   * @param exec backend (AUTO, JAVA, NATIVE for host; AUTO or CUDA for a device) and CUDA stream
   */
  public static BlockLayout compile(MaskSpec mask, int batch, int heads, int seqQ, int seqK, int blockQ, int blockK,
      int[] qLens, int[] kLens, Device device, Exec exec) {
    if (mask == null || device == null || exec == null) {
      throw new IllegalArgumentException(OP + ": " + (mask == null ? "mask" : device == null ? "device" : "exec")
          + " must not be null");
    }
    if (batch < 1 || heads < 1) {
      throw new IllegalArgumentException(OP + ": batch and heads must be >= 1; got batch = " + batch + ", heads = "
          + heads);
    }
    if (seqQ < 0 || seqK < 0) {
      throw new IllegalArgumentException(OP + ": seqQ and seqK must be >= 0; got " + seqQ + ", " + seqK);
    }
    if (blockQ < 1 || blockK < 1) {
      throw new IllegalArgumentException(OP + ": blockQ and blockK must be >= 1; got " + blockQ + ", " + blockK);
    }
    int[] ql = checkLengths("qLens", qLens, batch, seqQ, "seqQ");
    int[] kl = checkLengths("kLens", kLens, batch, seqK, "seqK");
    mask.validate(batch, heads, seqQ, seqK);
    // Rows and the tile grid are indexed with int on the host side (CSR arrays, transpose):
    // reject geometries past that up front instead of failing halfway with an overflow.
    long qBlocks = (seqQ + (long) blockQ - 1) / blockQ;
    long kBlocks = (seqK + (long) blockK - 1) / blockK;
    double layoutBatch = (qLens != null || kLens != null) ? batch : mask.layoutBatch(batch);
    double tiles = layoutBatch * mask.layoutHeads(heads) * qBlocks * kBlocks; // double: no overflow
    if (tiles > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(OP + ": layout batch x layout heads x query blocks x key blocks = "
          + String.format("%.0f", tiles) + " tiles; at most 2^31 - 9 are supported (use larger blocks)");
    }
    Backend backend = selectBackend(device, exec);
    BlockLayout layout = new BlockLayout(mask, batch, heads, seqQ, seqK, blockQ, blockK, ql, kl, device, backend);
    try {
      if (backend == Backend.JAVA) {
        layout.buildJava();
      } else {
        layout.buildNative(exec.stream());
      }
      return layout;
    } catch (RuntimeException e) {
      layout.close();
      throw e;
    }
  }

  // ---- from a block selection ---------------------------------------------------------------

  /**
   * The layout of the tiles where {@code blockMask != 0}, each classified against {@code base}
   * (EMPTY dropped, PARTIAL tiles evaluate {@code base} only, FULL tiles nothing): a user- or
   * estimator-supplied block mask, like FlashInfer's BSR. {@link #mask()} of the result is
   * {@code base}. For per-head bitmaps this equals, tile for tile,
   * {@code compile(base.and(MaskSpec.blocks(blockQ, blockK, bitmaps)))}.
   *
   * <p>Layout batch / heads: those of blockMask, or B / Hq where the base mask needs them (a
   * broadcast blockMask is then repeated). JAVA evaluates the selection on the host; NATIVE and
   * CUDA pass it to llmk_layout_count / fill.
   *
   * @param base the mask every selected tile is classified against (e.g. causal); no varlen
   * @param blockMask U8 [1 or B, 1 or Hq, ceil(seqQ / blockQ), ceil(seqK / blockK)], contiguous,
   *     on {@code device}
   * @param device where the layout lives
   * @param exec backend (AUTO, JAVA, NATIVE on the host; AUTO or CUDA on a device) and stream
   */
  public static BlockLayout fromBlockMask(MaskSpec base, int batch, int heads, int seqQ, int seqK, int blockQ,
      int blockK, Tensor blockMask, Device device, Exec exec) {
    return fromBlockMask(base, batch, heads, seqQ, seqK, blockQ, blockK, blockMask, null, device, exec);
  }

  /**
   * {@link #fromBlockMask(MaskSpec, int, int, int, int, int, int, Tensor, Device, Exec)} plus
   * token-level key columns.
   *
   * @param columns null, or I32 [1 or B, 1 or Hq, capacity] on any device, contiguous: per
   *     (batch, head) strictly ascending keys in [0, seqK) followed by -1 padding (checked on the
   *     host; the layout keeps its own copy, so the caller may close columns afterwards)
   */
  public static BlockLayout fromBlockMask(MaskSpec base, int batch, int heads, int seqQ, int seqK, int blockQ,
      int blockK, Tensor blockMask, Tensor columns, Device device, Exec exec) {
    String op = "BlockLayout.fromBlockMask";
    if (base == null || blockMask == null || device == null || exec == null) {
      throw new IllegalArgumentException(op + ": " + (base == null ? "base" : blockMask == null ? "blockMask"
          : device == null ? "device" : "exec") + " must not be null");
    }
    if (batch < 1 || heads < 1) {
      throw new IllegalArgumentException(op + ": batch and heads must be >= 1; got batch = " + batch + ", heads = "
          + heads);
    }
    if (seqQ < 0 || seqK < 0) {
      throw new IllegalArgumentException(op + ": seqQ and seqK must be >= 0; got " + seqQ + ", " + seqK);
    }
    if (blockQ < 1 || blockK < 1) {
      throw new IllegalArgumentException(op + ": blockQ and blockK must be >= 1; got " + blockQ + ", " + blockK);
    }
    base.validate(batch, heads, seqQ, seqK);
    blockMask.requireOpen("blockMask");
    if (blockMask.dtype() != DType.U8) {
      throw new IllegalArgumentException(op + ": blockMask must have dtype U8; got " + blockMask.dtype());
    }
    long qBlocks = (seqQ + (long) blockQ - 1) / blockQ;
    long kBlocks = (seqK + (long) blockK - 1) / blockK;
    long[] shape = blockMask.shape();
    if (shape.length != 4 || (shape[0] != 1 && shape[0] != batch) || (shape[1] != 1 && shape[1] != heads)
        || shape[2] != qBlocks || shape[3] != kBlocks) {
      throw new IllegalArgumentException(op + ": blockMask must have shape [1 or B = " + batch + ", 1 or Hq = "
          + heads + ", " + qBlocks + ", " + kBlocks + "] (query blocks x key blocks); got "
          + io.github.llmkernels.tensor.Shapes.format(shape));
    }
    blockMask.requireContiguous("blockMask");
    if (!blockMask.device().equals(device)) {
      throw new IllegalArgumentException(op + ": blockMask is on " + blockMask.device() + " but the layout is for "
          + device);
    }
    int lb = Math.max((int) shape[0], base.layoutBatch(batch));
    int lh = Math.max((int) shape[1], base.layoutHeads(heads));
    if (columns != null) { // per-head columns make the layout per head
      columns.requireOpen("columns");
      lb = columns.rank() == 3 ? Math.max(lb, (int) Math.min(columns.shape(0), batch)) : lb;
      lh = columns.rank() == 3 ? Math.max(lh, (int) Math.min(columns.shape(1), heads)) : lh;
    }
    TokenColumns tokens = columns == null ? null : TokenColumns.of(op, columns, batch, heads, lb, lh, seqK);
    double tiles = (double) lb * lh * qBlocks * kBlocks;
    if (tiles > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(op + ": layout batch x layout heads x query blocks x key blocks = "
          + String.format("%.0f", tiles) + " tiles; at most 2^31 - 9 are supported (use larger blocks)");
    }
    Backend backend = selectBackend(device, exec);
    BlockLayout layout = new BlockLayout(base, batch, heads, seqQ, seqK, blockQ, blockK, null, null, device, backend,
        lb, lh);
    boolean broadcast = lb != shape[0] || lh != shape[1];
    try {
      if (backend == Backend.JAVA || broadcast) {
        byte[] bits = expand(blockMask, lb, lh, (int) qBlocks * (int) kBlocks);
        if (backend == Backend.JAVA) {
          layout.buildJava(bits);
        } else {
          try (Tensor host = Tensor.of(bits, DType.U8, lb, lh, qBlocks, kBlocks)) {
            if (device.isCuda()) {
              try (Tensor sel = host.to(device)) {
                layout.buildNative(exec.stream(), sel);
              }
            } else {
              layout.buildNative(exec.stream(), host);
            }
          }
        }
      } else {
        layout.buildNative(exec.stream(), blockMask);
      }
      if (tokens != null) {
        layout.tokenColumns = tokens;
        try (Tensor host = Tensor.of(tokens.padded(), lb, lh, tokens.capacity())) {
          layout.columnsTensor = layout.own(device.isCuda() ? host.to(device) : host.to(Device.CPU));
        }
      }
      return layout;
    } catch (RuntimeException e) {
      layout.close();
      throw e;
    }
  }

  /** The host bytes of mask [mb, mh, tiles] repeated to [lb, lh, tiles] along broadcast dimensions. */
  private static byte[] expand(Tensor mask, int lb, int lh, int tiles) {
    int mb = (int) mask.shape(0);
    int mh = (int) mask.shape(1);
    byte[] src = new byte[(int) mask.numel()];
    try (Tensor h = mask.to(Device.CPU)) {
      for (int i = 0; i < src.length; i++) {
        src[i] = (byte) h.getBits(i);
      }
    }
    if (mb == lb && mh == lh) {
      return src;
    }
    byte[] out = new byte[lb * lh * tiles];
    for (int b = 0; b < lb; b++) {
      for (int h = 0; h < lh; h++) {
        int from = ((mb == 1 ? 0 : b) * mh + (mh == 1 ? 0 : h)) * tiles;
        System.arraycopy(src, from, out, (b * lh + h) * tiles, tiles);
      }
    }
    return out;
  }

  private static int[] checkLengths(String name, int[] lens, int batch, int seq, String seqName) {
    if (lens == null) {
      return null;
    }
    if (lens.length != batch) {
      throw new IllegalArgumentException(OP + ": " + name + " must have one entry per batch (" + batch + "); got "
          + lens.length);
    }
    for (int b = 0; b < batch; b++) {
      if (lens[b] < 0 || lens[b] > seq) {
        throw new IllegalArgumentException(OP + ": " + name + "[" + b + "] = " + lens[b] + " must be in [0, "
            + seqName + " = " + seq + "]");
      }
    }
    return lens.clone();
  }

  private static Backend selectBackend(Device device, Exec exec) {
    Backend requested = exec.backend();
    if (device.isCuda()) {
      if (requested != Backend.AUTO && requested != Backend.CUDA) {
        throw new IllegalArgumentException(OP + ": backend " + requested + " needs a host layout; device is " + device);
      }
      if (!Cuda.isAvailable()) {
        throw new BackendUnavailableException(OP + ": " + Cuda.unavailabilityCause().getMessage(),
            Cuda.unavailabilityCause());
      }
      CudaStream stream = exec.stream();
      if (stream != null && stream.device() != device.index()) {
        throw new IllegalArgumentException(OP + ": stream is on cuda:" + stream.device() + " but device is " + device);
      }
      return Backend.CUDA;
    }
    switch (requested) {
      case CUDA:
        throw new IllegalArgumentException(OP + ": backend CUDA needs a CUDA device (compile with Device.cuda(n))");
      case JAVA:
        return Backend.JAVA;
      case NATIVE:
        if (!NativeApi.isLoaded()) {
          throw new BackendUnavailableException(OP + ": backend NATIVE unavailable: " + NativeApi.loadFailure(),
              NativeApi.loadFailure());
        }
        return Backend.NATIVE;
      default:
        return NativeApi.isLoaded() ? Backend.NATIVE : Backend.JAVA;
    }
  }

  private Tensor own(Tensor t) {
    owned.add(t);
    return t;
  }

  /** Host or device copy of int values (null stays null). */
  private Tensor upload(int[] values) {
    if (values == null) {
      return null;
    }
    try (Tensor host = Tensor.of(values, values.length)) {
      return own(device.isCuda() ? host.to(device) : host.to(Device.CPU));
    }
  }

  private void encodeCommon() {
    encoded = mask.encode(device);
    qLensTensor = upload(qLens);
    kLensTensor = upload(kLens);
  }

  private void buildJava() {
    buildJava(null);
  }

  /** selection: null, or U8 [layoutBatch, layoutHeads, numQBlocks, numKBlocks] (0 = tile skipped). */
  private void buildJava(byte[] selection) {
    if (NativeApi.isLoaded()) {
      encodeCommon(); // so that a NATIVE attention call can use this layout too
    }
    int rows = rows();
    long[] pPtr = new long[rows + 1];
    long[] fPtr = new long[rows + 1];
    int[] pIdx = new int[16];
    int[] fIdx = new int[16];
    int np = 0;
    int nf = 0;
    for (int lb = 0; lb < layoutBatch; lb++) {
      long ql = qLens == null ? seqQ : qLens[lb];
      long kl = kLens == null ? seqK : kLens[lb];
      for (int lh = 0; lh < layoutHeads; lh++) {
        for (int qb = 0; qb < numQBlocks; qb++) {
          int r = (lb * layoutHeads + lh) * numQBlocks + qb;
          long q0 = (long) qb * blockQ;
          for (int kb = 0; kb < numKBlocks; kb++) {
            if (selection != null && selection[r * numKBlocks + kb] == 0) {
              continue;
            }
            long k0 = (long) kb * blockK;
            TileClass c = mask.classify(lb, lh, q0, Math.min(q0 + blockQ, seqQ), k0, Math.min(k0 + blockK, seqK),
                ql, kl);
            if (c == TileClass.PARTIAL) {
              if (np == pIdx.length) {
                pIdx = java.util.Arrays.copyOf(pIdx, np * 2);
              }
              pIdx[np++] = kb;
            } else if (c == TileClass.FULL) {
              if (nf == fIdx.length) {
                fIdx = java.util.Arrays.copyOf(fIdx, nf * 2);
              }
              fIdx[nf++] = kb;
            }
          }
          pPtr[r + 1] = np;
          fPtr[r + 1] = nf;
        }
      }
    }
    hostPartialPtr = pPtr;
    hostFullPtr = fPtr;
    hostPartialIdx = java.util.Arrays.copyOf(pIdx, np);
    hostFullIdx = java.util.Arrays.copyOf(fIdx, nf);
    partialCount = np;
    fullCount = nf;
    partialPtr = own(Tensor.of(pPtr, pPtr.length));
    fullPtr = own(Tensor.of(fPtr, fPtr.length));
    partialIdx = own(Tensor.of(atLeastOne(hostPartialIdx), Math.max(np, 1)));
    fullIdx = own(Tensor.of(atLeastOne(hostFullIdx), Math.max(nf, 1)));
  }

  private static int[] atLeastOne(int[] a) {
    return a.length == 0 ? new int[1] : a;
  }

  private void buildNative(CudaStream stream) {
    buildNative(stream, null);
  }

  /** selection: null, or U8 [layoutBatch, layoutHeads, numQBlocks, numKBlocks] on the layout's device. */
  private void buildNative(CudaStream stream, Tensor selection) {
    boolean cuda = backend == Backend.CUDA;
    encodeCommon();
    int rows = rows();
    partialPtr = own(Tensor.allocate(DType.I64, device, rows + 1L));
    fullPtr = own(Tensor.allocate(DType.I64, device, rows + 1L));
    long streamHandle = stream == null ? 0 : stream.handle();
    LayoutArgs a = new LayoutArgs()
        .set(LayoutArgs.BATCH, batch).set(LayoutArgs.LAYOUT_BATCH, layoutBatch)
        .set(LayoutArgs.LAYOUT_HEADS, layoutHeads).set(LayoutArgs.SEQ_Q, seqQ).set(LayoutArgs.SEQ_K, seqK)
        .set(LayoutArgs.BLOCK_Q, blockQ).set(LayoutArgs.BLOCK_K, blockK)
        .set(LayoutArgs.NODES, encoded.nodesAddress()).set(LayoutArgs.NODE_COUNT, encoded.nodeCount())
        .set(LayoutArgs.Q_LENS, qLensTensor == null ? 0 : qLensTensor.address())
        .set(LayoutArgs.K_LENS, kLensTensor == null ? 0 : kLensTensor.address())
        .set(LayoutArgs.PARTIAL_PTR, partialPtr.address()).set(LayoutArgs.FULL_PTR, fullPtr.address())
        .set(LayoutArgs.SELECTION, selection == null ? 0 : selection.address());
    if (cuda) {
      a.set(LayoutArgs.DEVICE, device.index()).set(LayoutArgs.STREAM, streamHandle);
    }
    try {
      NativeApi.layoutCount(a, cuda);
      if (cuda) {
        NativeApi.cudaStreamSynchronize(device.index(), streamHandle);
      }
      partialCount = lastEntry(partialPtr, rows);
      fullCount = lastEntry(fullPtr, rows);
      partialIdx = own(Tensor.allocate(DType.I32, device, Math.max(partialCount, 1)));
      fullIdx = own(Tensor.allocate(DType.I32, device, Math.max(fullCount, 1)));
      a.set(LayoutArgs.PARTIAL_IDX, partialIdx.address()).set(LayoutArgs.FULL_IDX, fullIdx.address());
      NativeApi.layoutFill(a, cuda);
      if (cuda) {
        NativeApi.cudaStreamSynchronize(device.index(), streamHandle);
      }
    } finally {
      Reference.reachabilityFence(this);
      Reference.reachabilityFence(selection);
    }
  }

  private static long lastEntry(Tensor ptr, int rows) {
    if (!ptr.device().isCuda()) {
      return ptr.getLong(rows);
    }
    try (Tensor v = ptr.slice(0, rows, rows + 1L); Tensor h = v.to(Device.CPU)) {
      return h.getLong(0);
    }
  }

  // ---- accessors ---------------------------------------------------------------------------

  public MaskSpec mask() {
    return mask;
  }

  public int batch() {
    return batch;
  }

  /** Hq the layout was compiled for. */
  public int heads() {
    return heads;
  }

  public int layoutBatch() {
    return layoutBatch;
  }

  public int layoutHeads() {
    return layoutHeads;
  }

  public int seqQ() {
    return seqQ;
  }

  public int seqK() {
    return seqK;
  }

  public int blockQ() {
    return blockQ;
  }

  public int blockK() {
    return blockK;
  }

  public int numQBlocks() {
    return numQBlocks;
  }

  public int numKBlocks() {
    return numKBlocks;
  }

  /** Rows of the layout: layoutBatch x layoutHeads x numQBlocks. */
  public int rows() {
    return Math.multiplyExact(Math.multiplyExact(layoutBatch, layoutHeads), numQBlocks);
  }

  /** Per-batch query lengths (a copy), or null when every batch has seqQ. */
  public int[] qLens() {
    return qLens == null ? null : qLens.clone();
  }

  public int[] kLens() {
    return kLens == null ? null : kLens.clone();
  }

  public Device device() {
    return device;
  }

  /** The backend that compiled the layout (JAVA, NATIVE or CUDA). */
  public Backend backend() {
    return backend;
  }

  /** Stored PARTIAL blocks (over the layout's rows, broadcast dimensions counted once). */
  public long partialBlockCount() {
    requireOpen();
    return partialCount;
  }

  /** Stored FULL blocks. */
  public long fullBlockCount() {
    requireOpen();
    return fullCount;
  }

  /**
   * Computed tiles over all tiles of the B x Hq x numQBlocks x numKBlocks grid (a broadcast
   * layout row counts for every batch / head it serves); 0 when there are no tiles. Token columns
   * are not tiles and do not count here ({@link PrefillEstimate#density()} counts their pairs).
   */
  public double density() {
    requireOpen();
    double tiles = (double) layoutBatch * layoutHeads * numQBlocks * numKBlocks;
    return tiles == 0 ? 0 : (partialCount + fullCount) / tiles;
  }

  /** Token columns per (batch, head) as stored (-1 padded); 0 when the layout has none. */
  public int columnCapacity() {
    requireOpen();
    return tokenColumns == null ? 0 : tokenColumns.capacity();
  }

  /**
   * The token-level key columns of batch b, query head h, ascending (empty when the layout has
   * none). Query block qb computes those whose key block {@link #kvBlocks} does not list.
   */
  public int[] columns(int b, int h) {
    requireOpen();
    if (b < 0 || b >= batch || h < 0 || h >= heads) {
      throw new IllegalArgumentException("columns: (b, h) = (" + b + ", " + h + ") must lie in [0, " + batch
          + ") x [0, " + heads + ")");
    }
    return tokenColumns == null ? new int[0]
        : tokenColumns.row(layoutBatch == 1 ? 0 : b, layoutHeads == 1 ? 0 : h);
  }

  /** Key blocks of one query block: PARTIAL and FULL lists. */
  public record KvBlocks(int[] partial, int[] full) {}

  /** The key blocks query block qb of batch b, query head h attends to (host copy). */
  public KvBlocks kvBlocks(int b, int h, int qb) {
    requireOpen();
    if (b < 0 || b >= batch || h < 0 || h >= heads || qb < 0 || qb >= numQBlocks) {
      throw new IllegalArgumentException("kvBlocks: (b, h, qBlock) = (" + b + ", " + h + ", " + qb
          + ") must lie in [0, " + batch + ") x [0, " + heads + ") x [0, " + numQBlocks + ")");
    }
    mirror();
    int r = row(b, h, qb);
    return new KvBlocks(slice(hostPartialIdx, hostPartialPtr, r), slice(hostFullIdx, hostFullPtr, r));
  }

  /** Layout row of batch b, query head h, query block qb (broadcast dimensions map to 0). */
  public int row(int b, int h, int qb) {
    int lb = layoutBatch == 1 ? 0 : b;
    int lh = layoutHeads == 1 ? 0 : h;
    return (lb * layoutHeads + lh) * numQBlocks + qb;
  }

  private static int[] slice(int[] idx, long[] ptr, int r) {
    return java.util.Arrays.copyOfRange(idx, (int) ptr[r], (int) ptr[r + 1]);
  }

  /** PARTIAL and FULL merged per layout row into one ascending CSR with a FULL flag per entry. */
  public BlockCsr toCsr() {
    requireOpen();
    mirror();
    int rows = rows();
    long[] indptr = new long[rows + 1];
    int total = (int) (partialCount + fullCount);
    int[] indices = new int[total];
    boolean[] full = new boolean[total];
    int n = 0;
    for (int r = 0; r < rows; r++) {
      int p = (int) hostPartialPtr[r];
      int pe = (int) hostPartialPtr[r + 1];
      int f = (int) hostFullPtr[r];
      int fe = (int) hostFullPtr[r + 1];
      while (p < pe || f < fe) {
        boolean takeFull = p >= pe || (f < fe && hostFullIdx[f] < hostPartialIdx[p]);
        indices[n] = takeFull ? hostFullIdx[f++] : hostPartialIdx[p++];
        full[n++] = takeFull;
      }
      indptr[r + 1] = n;
    }
    return new BlockCsr(indptr, indices, full);
  }

  /**
   * Per key block the query blocks that attend to it (for a backward pass): rows
   * {@code (lb * layoutHeads + lh) * numKBlocks + kb}, ascending query blocks, FULL flags.
   */
  public BlockCsr transpose() {
    BlockCsr csr = toCsr();
    int groups = layoutBatch * layoutHeads;
    int rows = groups * numKBlocks;
    long[] indptr = new long[rows + 1];
    for (int g = 0; g < groups; g++) {
      for (int qb = 0; qb < numQBlocks; qb++) {
        int r = g * numQBlocks + qb;
        for (long e = csr.indptr()[r]; e < csr.indptr()[r + 1]; e++) {
          indptr[g * numKBlocks + csr.indices()[(int) e] + 1]++;
        }
      }
    }
    for (int r = 0; r < rows; r++) {
      indptr[r + 1] += indptr[r];
    }
    long[] next = java.util.Arrays.copyOf(indptr, rows);
    int[] indices = new int[csr.nnz()];
    boolean[] full = new boolean[csr.nnz()];
    for (int g = 0; g < groups; g++) {
      for (int qb = 0; qb < numQBlocks; qb++) { // ascending qb keeps each output row sorted
        int r = g * numQBlocks + qb;
        for (long e = csr.indptr()[r]; e < csr.indptr()[r + 1]; e++) {
          int t = g * numKBlocks + csr.indices()[(int) e];
          int pos = (int) next[t]++;
          indices[pos] = qb;
          full[pos] = csr.full()[(int) e];
        }
      }
    }
    return new BlockCsr(indptr, indices, full);
  }

  private synchronized void mirror() {
    if (hostPartialPtr != null) {
      return;
    }
    long[] pp = longs(partialPtr);
    long[] fp = longs(fullPtr);
    int[] pi = ints(partialIdx, partialCount);
    int[] fi = ints(fullIdx, fullCount);
    hostPartialPtr = pp;
    hostFullPtr = fp;
    hostPartialIdx = pi;
    hostFullIdx = fi;
  }

  private static long[] longs(Tensor t) {
    try (Tensor h = t.to(Device.CPU)) {
      long[] out = new long[(int) h.numel()];
      for (int i = 0; i < out.length; i++) {
        out[i] = h.getLong(i);
      }
      return out;
    }
  }

  private static int[] ints(Tensor t, long count) {
    if (count == 0) {
      return new int[0];
    }
    try (Tensor v = t.slice(0, 0, count); Tensor h = v.to(Device.CPU)) {
      return h.toIntArray();
    }
  }

  // ---- for SparseAttention -----------------------------------------------------------------

  void requireOpen() {
    if (closed.get()) {
      throw new IllegalStateException("layout is closed");
    }
  }

  /** Encoded mask, or null when the layout was built by JAVA without the native library. */
  EncodedMask encoded() {
    return encoded;
  }

  Tensor qLensTensor() {
    return qLensTensor;
  }

  Tensor kLensTensor() {
    return kLensTensor;
  }

  Tensor partialPtr() {
    return partialPtr;
  }

  Tensor fullPtr() {
    return fullPtr;
  }

  Tensor partialIdx() {
    return partialIdx;
  }

  Tensor fullIdx() {
    return fullIdx;
  }

  /** I32 [layoutBatch, layoutHeads, columnCapacity()] on the layout's device, or null. */
  Tensor columnsTensor() {
    return columnsTensor;
  }

  /** Host copies {partialPtr, fullPtr} and {partialIdx, fullIdx} for the JAVA attention loop. */
  long[][] hostPtrs() {
    mirror();
    return new long[][] {hostPartialPtr, hostFullPtr};
  }

  int[][] hostIdx() {
    mirror();
    return new int[][] {hostPartialIdx, hostFullIdx};
  }

  /** Query length of batch b (seqQ without varlen). */
  int qLen(int b) {
    return qLens == null ? seqQ : qLens[b];
  }

  int kLen(int b) {
    return kLens == null ? seqK : kLens[b];
  }

  @Override
  public String toString() {
    return "BlockLayout(" + mask + ", B " + batch + ", Hq " + heads + ", " + seqQ + " x " + seqK + " in " + blockQ
        + " x " + blockK + " tiles, layout " + layoutBatch + " x " + layoutHeads + " x " + numQBlocks + ", "
        + partialCount + " partial + " + fullCount + " full"
        + (tokenColumns == null ? "" : ", " + tokenColumns.capacity() + " columns per head") + ", " + device
        + (closed.get() ? ", closed" : "") + ")";
  }

  /** Frees the index tensors, lengths and mask data. Idempotent. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    for (Tensor t : owned) {
      t.close();
    }
    if (encoded != null) {
      encoded.close();
    }
  }

  private static int ceilDiv(int n, int block) {
    return (int) (((long) n + block - 1) / block);
  }
}
