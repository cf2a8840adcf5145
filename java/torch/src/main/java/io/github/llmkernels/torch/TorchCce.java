package io.github.llmkernels.torch;

import io.github.llmkernels.loss.CceOptions;
import io.github.llmkernels.loss.CutCrossEntropy;
import io.github.llmkernels.loss.Reduction;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * {@link CutCrossEntropy} called on Bytedeco PyTorch tensors: inputs are wrapped without copies,
 * outputs are allocated by torch (its caching allocator on CUDA) and returned as torch tensors.
 * CUDA tensors run on torch's current stream of their device ({@link TorchStreams}), so the call
 * is ordered with the torch work before and after it, as a torch operator would be.
 *
 * <pre>{@code
 * TorchCce.Loss f = TorchCce.forward(hidden, lmHead, labels, null, CceOptions.defaults());
 * float loss = f.loss().item_float();
 * TorchCce.Gradients g = TorchCce.backward(hidden, lmHead, labels, null, f.lse(), null, CceOptions.defaults());
 * }</pre>
 *
 * <p>Shapes, dtypes and options are those of {@link CutCrossEntropy} (E [N, D], C [V, D] in
 * float32/float16/bfloat16, targets [N] int32/int64, bias [V] or null); every tensor must be
 * contiguous (a strided view is an {@link IllegalArgumentException} naming it). This is not an
 * autograd function: call {@link #backward} yourself (or from a custom torch Function).
 */
public final class TorchCce {
  private TorchCce() {}

  /** Loss (float32 scalar for MEAN/SUM, [N] for NONE) and lse ([N] float32), torch tensors. */
  public record Loss(org.bytedeco.pytorch.Tensor loss, org.bytedeco.pytorch.Tensor lse) implements AutoCloseable {
    /** Releases both torch handles. */
    @Override
    public void close() {
      loss.close();
      lse.close();
    }
  }

  /**
   * dE, dC and dBias (null without bias) in E's dtype, torch tensors, and the logit tiles the
   * backward pass visited and skipped (0 and 0 on the JAVA backend).
   */
  public record Gradients(org.bytedeco.pytorch.Tensor gradE, org.bytedeco.pytorch.Tensor gradC,
      org.bytedeco.pytorch.Tensor gradBias, long tilesTotal, long tilesSkipped) implements AutoCloseable {
    /** Share of logit tiles skipped by gradient filtering, in [0, 1]. */
    public double skippedShare() {
      return tilesTotal == 0 ? 0 : (double) tilesSkipped / tilesTotal;
    }

    /** Releases the torch handles. */
    @Override
    public void close() {
      gradE.close();
      gradC.close();
      if (gradBias != null) {
        gradBias.close();
      }
    }
  }

  /** Forward on the backend AUTO picks (CUDA for device tensors, on torch's current stream). */
  public static Loss forward(org.bytedeco.pytorch.Tensor e, org.bytedeco.pytorch.Tensor c,
      org.bytedeco.pytorch.Tensor targets, org.bytedeco.pytorch.Tensor bias, CceOptions options) {
    return forward(e, c, targets, bias, options, Backend.AUTO);
  }

  /**
   * Forward: the loss as the options' reduction says and the per-row lse, which
   * {@link #backward} reuses.
   */
  public static Loss forward(org.bytedeco.pytorch.Tensor e, org.bytedeco.pytorch.Tensor c,
      org.bytedeco.pytorch.Tensor targets, org.bytedeco.pytorch.Tensor bias, CceOptions options, Backend backend) {
    requireInputs(e, c, targets, options, backend);
    try (Wrapped w = new Wrapped()) {
      Tensor ee = w.wrap("e", e);
      Tensor cc = w.wrap("c", c);
      Tensor tt = w.wrap("targets", targets);
      Tensor bb = w.wrap("bias", bias);
      long n = ee.rank() == 2 ? ee.shape(0) : 0;
      TensorOptions f32 = options(ScalarType.Float, ee.device());
      org.bytedeco.pytorch.Tensor loss = options.reduction() == Reduction.NONE
          ? torch.empty(new long[] {n}, f32, new MemoryFormatOptional())
          : torch.empty(new long[] {}, f32, new MemoryFormatOptional());
      org.bytedeco.pytorch.Tensor lse = torch.empty(new long[] {n}, f32, new MemoryFormatOptional());
      try {
        CutCrossEntropy.forwardInto(ee, cc, tt, bb, options, w.wrap("loss", loss), w.wrap("lse", lse),
            exec(backend, ee.device()));
        return new Loss(loss, lse);
      } catch (RuntimeException ex) {
        loss.close();
        lse.close();
        throw ex;
      }
    }
  }

  /** Backward of a plain {@code loss.backward()} on the backend AUTO picks; lse and gradLoss may be null. */
  public static Gradients backward(org.bytedeco.pytorch.Tensor e, org.bytedeco.pytorch.Tensor c,
      org.bytedeco.pytorch.Tensor targets, org.bytedeco.pytorch.Tensor bias, org.bytedeco.pytorch.Tensor lse,
      org.bytedeco.pytorch.Tensor gradLoss, CceOptions options) {
    return backward(e, c, targets, bias, lse, gradLoss, null, options, Backend.AUTO);
  }

  /**
   * Gradients dE, dC (and dBias when bias is given) in E's dtype.
   *
   * @param lse [N] float32 from {@link #forward}, or null to recompute it
   * @param gradLoss float32 upstream gradient of the loss (one element for MEAN/SUM, [N] for
   *     NONE), or null for ones
   * @param gradLse [N] float32 upstream gradient of lse, or null
   */
  public static Gradients backward(org.bytedeco.pytorch.Tensor e, org.bytedeco.pytorch.Tensor c,
      org.bytedeco.pytorch.Tensor targets, org.bytedeco.pytorch.Tensor bias, org.bytedeco.pytorch.Tensor lse,
      org.bytedeco.pytorch.Tensor gradLoss, org.bytedeco.pytorch.Tensor gradLse, CceOptions options,
      Backend backend) {
    requireInputs(e, c, targets, options, backend);
    List<org.bytedeco.pytorch.Tensor> made = new ArrayList<>();
    try (Wrapped w = new Wrapped()) {
      Tensor ee = w.wrap("e", e);
      Tensor cc = w.wrap("c", c);
      Tensor tt = w.wrap("targets", targets);
      Tensor bb = w.wrap("bias", bias);
      Exec exec = exec(backend, ee.device());
      long n = ee.rank() == 2 ? ee.shape(0) : 0;
      TensorOptions f32 = options(ScalarType.Float, ee.device());
      if (lse == null) {
        lse = keep(made, torch.empty(new long[] {n}, f32, new MemoryFormatOptional()));
        CutCrossEntropy.forwardInto(ee, cc, tt, bb, options, null, w.wrap("lse", lse), exec);
      }
      if (gradLoss == null) {
        gradLoss = keep(made, options.reduction() == Reduction.NONE ? torch.ones(new long[] {n}, f32)
            : torch.ones(new long[] {}, f32));
      }
      TensorOptions same = options(TorchTensors.scalarTypeOf(ee.dtype()), ee.device());
      org.bytedeco.pytorch.Tensor gradE = torch.empty(ee.shape(), same, new MemoryFormatOptional());
      org.bytedeco.pytorch.Tensor gradC = torch.empty(cc.shape(), same, new MemoryFormatOptional());
      org.bytedeco.pytorch.Tensor gradBias = bb == null ? null : torch.empty(bb.shape(), same, new MemoryFormatOptional());
      try {
        long[] tiles = CutCrossEntropy.backwardInto(ee, cc, tt, bb, w.wrap("lse", lse), w.wrap("gradLoss", gradLoss),
            w.wrap("gradLse", gradLse), options, w.wrap("gradE", gradE), w.wrap("gradC", gradC),
            w.wrap("gradBias", gradBias), exec);
        return new Gradients(gradE, gradC, gradBias, tiles[0], tiles[1]);
      } catch (RuntimeException ex) {
        gradE.close();
        gradC.close();
        if (gradBias != null) {
          gradBias.close();
        }
        throw ex;
      }
    } finally {
      // Temporaries: on CUDA the caching allocator reuses their blocks only after work queued
      // on the current stream, so releasing them here is stream-safe.
      made.forEach(org.bytedeco.pytorch.Tensor::close);
    }
  }

  private static void requireInputs(org.bytedeco.pytorch.Tensor e, org.bytedeco.pytorch.Tensor c,
      org.bytedeco.pytorch.Tensor targets, CceOptions options, Backend backend) {
    String missing = e == null ? "e" : c == null ? "c" : targets == null ? "targets" : null;
    if (missing != null) {
      throw new IllegalArgumentException(missing + " must not be null");
    }
    if (options == null) {
      throw new IllegalArgumentException("options must not be null");
    }
    if (backend == null) {
      throw new IllegalArgumentException("backend must not be null");
    }
  }

  private static org.bytedeco.pytorch.Tensor keep(List<org.bytedeco.pytorch.Tensor> made,
      org.bytedeco.pytorch.Tensor t) {
    made.add(t);
    return t;
  }

  private static TensorOptions options(ScalarType type, Device device) {
    return new TensorOptions(type).device(new DeviceOptional(TorchTensors.torchDevice(device)));
  }

  /** CUDA tensors: torch's current stream of their device; host tensors: no stream. */
  private static Exec exec(Backend backend, Device device) {
    return device.isCuda() ? new Exec(backend, TorchStreams.current(device.index())) : Exec.backend(backend);
  }

  /** The library wrappers of one call, closed together (closing a wrapper frees nothing). */
  private static final class Wrapped implements AutoCloseable {
    private final List<Tensor> tensors = new ArrayList<>();

    /** Wraps a torch tensor (null stays null); names the argument in errors. */
    Tensor wrap(String name, org.bytedeco.pytorch.Tensor t) {
      if (t == null) {
        return null;
      }
      Tensor w;
      try {
        w = TorchTensors.wrap(t);
      } catch (IllegalArgumentException ex) {
        throw new IllegalArgumentException(name + ": " + ex.getMessage(), ex);
      }
      tensors.add(w);
      return w;
    }

    @Override
    public void close() {
      tensors.forEach(Tensor::close);
    }
  }
}
