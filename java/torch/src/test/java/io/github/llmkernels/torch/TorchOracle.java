package io.github.llmkernels.torch;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The outside oracle: libtorch's materialising linear + cross_entropy and autograd, on copies of
 * the inputs that share no memory with the library's tensors.
 */
final class TorchOracle {
  private TorchOracle() {}

  /** Loss values (one, or N for NONE) and gradients as float arrays (gradBias null without bias). */
  record Result(float[] loss, float[] gradE, float[] gradC, float[] gradBias) {}

  /** torch Reduction code of the library's reduction names. */
  static long reductionCode(io.github.llmkernels.loss.Reduction r) {
    return switch (r) {
      case NONE -> torch.Reduction.None.value;
      case MEAN -> torch.Reduction.Mean.value;
      case SUM -> torch.Reduction.Sum.value;
    };
  }

  /** A torch-owned float32 tensor holding a copy of data. */
  static Tensor floats(float[] data, long... shape) {
    try (FloatPointer p = new FloatPointer(data)) {
      return torch.from_blob(p, shape).clone();
    }
  }

  /** A torch-owned int64 tensor holding a copy of data. */
  static Tensor longs(long[] data, long... shape) {
    try (LongPointer p = new LongPointer(data)) {
      return torch.from_blob(p, shape, new org.bytedeco.pytorch.TensorOptions(ScalarType.Long)).clone();
    }
  }

  /** A copy of a torch tensor's values as floats (converted to float32 first). */
  static float[] read(Tensor t) {
    Tensor f = t.to(ScalarType.Float).contiguous();
    float[] out = new float[(int) f.numel()];
    new FloatPointer(f.data_ptr()).get(out);
    return out;
  }

  /**
   * loss = cross_entropy(linear(E, C, bias), targets, ignore_index, label_smoothing, reduction),
   * then backward with upstream gradient {@code gradLoss} (one value, or N for NONE).
   */
  static Result crossEntropy(float[] e, float[] c, float[] bias, long[] targets, int n, int d, int v,
      io.github.llmkernels.loss.Reduction reduction, long ignoreIndex, double labelSmoothing, float[] gradLoss) {
    try (PointerScope scope = new PointerScope()) {
      Tensor te = floats(e, n, d).requires_grad_(true);
      Tensor tc = floats(c, v, d).requires_grad_(true);
      Tensor tb = bias == null ? null : floats(bias, v).requires_grad_(true);
      Tensor tt = longs(targets, n);
      Tensor logits = tb == null ? torch.linear(te, tc) : torch.linear(te, tc, new TensorOptional(tb));
      Tensor loss = torch.cross_entropy_loss(logits, tt, new TensorOptional(), reductionCode(reduction),
          ignoreIndex, labelSmoothing);
      Tensor weighted = reduction == io.github.llmkernels.loss.Reduction.NONE
          ? loss.mul(floats(gradLoss, n)).sum()
          : loss.mul(new Scalar(gradLoss[0]));
      weighted.backward();
      return new Result(read(loss), read(te.grad()), read(tc.grad()), tb == null ? null : read(tb.grad()));
    }
  }
}
