package io.github.llmkernels.kvcache;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.provider.Arguments;

/** Shared helpers of the KV cache tests. */
final class KvTestUtil {
  private KvTestUtil() {}

  /** Every (backend, dtype F32/F16/BF16, shape) combination, for parameterized tests. */
  static Stream<Arguments> backendDtypeShapes(List<Backend> backends, int[][] shapes) {
    List<Arguments> out = new ArrayList<>();
    for (Backend backend : backends) {
      for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
        for (int[] shape : shapes) {
          out.add(Arguments.of(backend, dtype, shape));
        }
      }
    }
    return out.stream();
  }

  /** |x - ref| <= atol + rtol |ref| everywhere (infinities must match exactly). */
  static void assertClose(double[] ref, float[] got, double atol, double rtol, Supplier<String> what) {
    if (ref.length != got.length) {
      throw new AssertionError(what.get() + ": length " + got.length + " != " + ref.length);
    }
    for (int i = 0; i < ref.length; i++) {
      double r = ref[i];
      double g = got[i];
      boolean ok = Double.isInfinite(r) ? g == r : Math.abs(g - r) <= atol + rtol * Math.abs(r);
      if (!ok) {
        throw new AssertionError(what.get() + ": element " + i + " = " + g + " but the reference is " + r);
      }
    }
  }

  static String message(Class<? extends Throwable> type, Executable call) {
    return assertThrows(type, call).getMessage();
  }

  static void assertMentions(String message, String... parts) {
    for (String p : parts) {
      assertTrue(message != null && message.contains(p), "message '" + message + "' should mention '" + p + "'");
    }
  }

  /** The tensor on the device the backend runs on (a copy for CUDA, the tensor itself otherwise). */
  static Tensor on(Backend backend, Tensor host) {
    return backend == Backend.CUDA ? host.to(Device.cuda(0)) : host.view(host.shape());
  }

  static float[] floats(double[] d) {
    float[] f = new float[d.length];
    for (int i = 0; i < d.length; i++) {
      f[i] = (float) d[i];
    }
    return f;
  }
}
