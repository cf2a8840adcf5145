package io.github.llmkernels.kvcache;

import io.github.llmkernels.tensor.Tensor;

/**
 * A compacted cache with a variable number of tokens per head, heads one after another: head
 * bh = b * Hkv + h holds rows {@code cu[bh] .. cu[bh + 1] - 1} of k and v [total, d] and of the
 * original positions I32 [total] (ascending per head). cu is int64 [B * Hkv + 1]: a host array,
 * a host tensor, and, for device caches, a device copy (what the CUDA kernels read). Closing it
 * closes every tensor.
 */
public final class VarlenKvCache implements AutoCloseable {
  private final Tensor k;
  private final Tensor v;
  private final Tensor positions;
  private final long[] cu;
  private final Tensor cuHost;
  private final Tensor cuDevice;
  private final int batch;
  private final int headsKv;

  VarlenKvCache(Tensor k, Tensor v, Tensor positions, long[] cu, Tensor cuHost, Tensor cuDevice, int batch,
      int headsKv) {
    this.k = k;
    this.v = v;
    this.positions = positions;
    this.cu = cu;
    this.cuHost = cuHost;
    this.cuDevice = cuDevice;
    this.batch = batch;
    this.headsKv = headsKv;
  }

  /** Keys [total, d]. */
  public Tensor k() {
    return k;
  }

  /** Values [total, d]. */
  public Tensor v() {
    return v;
  }

  /** Original positions I32 [total]. */
  public Tensor positions() {
    return positions;
  }

  /** cu int64 [B * Hkv + 1] (a copy). */
  public long[] cu() {
    return cu.clone();
  }

  /** cu as a host I64 tensor. */
  public Tensor cuHost() {
    return cuHost;
  }

  /** cu on the cache's device: the device copy for CUDA caches, else the host tensor. */
  public Tensor cuOnDevice() {
    return cuDevice != null ? cuDevice : cuHost;
  }

  public int batch() {
    return batch;
  }

  public int headsKv() {
    return headsKv;
  }

  /** Tokens of head (b, h). */
  public long length(int b, int h) {
    int bh = b * headsKv + h;
    return cu[bh + 1] - cu[bh];
  }

  /** All tokens. */
  public long total() {
    return cu[cu.length - 1];
  }

  public long headDim() {
    return k.shape(1);
  }

  void requireOpen(String name) {
    k.requireOpen(name + ".k");
    v.requireOpen(name + ".v");
    positions.requireOpen(name + ".positions");
    cuHost.requireOpen(name + ".cu");
  }

  @Override
  public void close() {
    k.close();
    v.close();
    positions.close();
    cuHost.close();
    if (cuDevice != null) {
      cuDevice.close();
    }
  }
}
