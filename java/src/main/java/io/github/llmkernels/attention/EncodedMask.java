package io.github.llmkernels.attention;

import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@link MaskSpec} as the C ABI sees it: the postfix program of {@code llmk_mask_node}
 * ({@value #WORDS_PER_NODE} int64 words per node: op, i0..i5, batch_stride, head_stride, data0,
 * data1) in host memory, and its data arrays (int32, U8 for block bitmaps) on the target device,
 * whose addresses the words carry. Closing it frees the data; the words then point nowhere.
 */
public final class EncodedMask implements AutoCloseable {
  /** int64 words per llmk_mask_node. */
  public static final int WORDS_PER_NODE = 11;

  private final long[] words;
  private final Device device;
  private final Tensor nodes; // I64 [count * 11], host
  private final List<Tensor> data;

  private EncodedMask(long[] words, Device device, Tensor nodes, List<Tensor> data) {
    this.words = words;
    this.device = device;
    this.nodes = nodes;
    this.data = data;
  }

  static EncodedMask of(MaskNode root, Device device) {
    Builder b = new Builder(device);
    try {
      root.encode(b);
      long[] words = new long[b.nodes.size() * WORDS_PER_NODE];
      for (int i = 0; i < b.nodes.size(); i++) {
        System.arraycopy(b.nodes.get(i), 0, words, i * WORDS_PER_NODE, WORDS_PER_NODE);
      }
      Tensor host = Tensor.of(words, words.length);
      return new EncodedMask(words, device, host, b.data);
    } catch (RuntimeException e) {
      for (Tensor t : b.data) {
        t.close();
      }
      throw e;
    }
  }

  /** The node words (a copy). */
  public long[] words() {
    return words.clone();
  }

  public int nodeCount() {
    return words.length / WORDS_PER_NODE;
  }

  /** Device of the data arrays. */
  public Device device() {
    return device;
  }

  /** Host address of the node array (needs the native library). */
  public long nodesAddress() {
    return nodes.address();
  }

  /** The host node array tensor, I64 [nodeCount * 11]. */
  Tensor nodesTensor() {
    return nodes;
  }

  List<Tensor> dataTensors() {
    return data;
  }

  @Override
  public void close() {
    nodes.close();
    for (Tensor t : data) {
      t.close();
    }
  }

  /** Collects nodes and uploads data while a tree encodes itself. */
  static final class Builder {
    final Device device;
    final List<long[]> nodes = new ArrayList<>();
    final List<Tensor> data = new ArrayList<>();

    Builder(Device device) {
      this.device = device;
    }

    /** Appends a node with this op; the caller fills the other words. */
    long[] node(long op) {
      long[] n = new long[WORDS_PER_NODE];
      n[0] = op;
      nodes.add(n);
      return n;
    }

    long upload(int[] values) {
      int[] v = values.length == 0 ? new int[1] : values; // never a null address for empty data
      return keep(Tensor.of(v, v.length));
    }

    long upload(int[][] rows) {
      int len = rows[0].length;
      int[] flat = new int[rows.length * len];
      for (int i = 0; i < rows.length; i++) {
        System.arraycopy(rows[i], 0, flat, i * len, len);
      }
      return upload(flat);
    }

    long upload(byte[][] rows) {
      int len = rows[0].length;
      byte[] flat = new byte[rows.length * len];
      for (int i = 0; i < rows.length; i++) {
        System.arraycopy(rows[i], 0, flat, i * len, len);
      }
      byte[] v = flat.length == 0 ? new byte[1] : flat;
      return keep(Tensor.of(v, DType.U8, v.length));
    }

    private long keep(Tensor host) {
      Tensor t = host;
      if (device.isCuda()) {
        try {
          t = host.to(device);
        } finally {
          host.close();
        }
      }
      data.add(t);
      return t.address();
    }
  }
}
