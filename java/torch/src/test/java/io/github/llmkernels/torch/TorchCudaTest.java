package io.github.llmkernels.torch;

import io.github.llmkernels.testing.Tolerances;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.loss.CceOptions;
import io.github.llmkernels.loss.Reduction;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.CudaStream;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.TestBackends;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** CUDA interop: needs a GPU, the library's CUDA backend and the GPU build of the torch presets. */
@Tag("gpu")
class TorchCudaTest {
  @BeforeEach
  void assumeGpu() {
    TestBackends.assumeCuda();
    Assumptions.assumeFalse(TestBackends.emulated(),
        "skipped: the CUDA device is the emulator (-Pcuda-emulated): these tests need libtorch's CUDA build on a"
            + " real GPU; torch's CUDA tensors and streams are not the emulated device's");
    Assumptions.assumeTrue(TorchStreams.isAvailable(),
        "skipped: torch reports no CUDA (the CPU build of the Bytedeco PyTorch presets is on the class path)");
  }

  static org.bytedeco.pytorch.Tensor cuda(org.bytedeco.pytorch.Tensor host) {
    return host.to(TorchTensors.torchDevice(Device.cuda(0)), host.scalar_type().intern());
  }

  @Test
  void wrapsDeviceTensorsWithTheirDevice() {
    try (PointerScope scope = new PointerScope()) {
      org.bytedeco.pytorch.Tensor t = cuda(TorchOracle.floats(new float[] {1, 2, 3, 4}, 2, 2));
      try (Tensor lib = TorchTensors.wrap(t)) {
        assertEquals(Device.cuda(0), lib.device());
        assertEquals(DType.F32, lib.dtype());
        assertEquals(t.data_ptr().address(), lib.address());
        org.junit.jupiter.api.Assertions.assertArrayEquals(new float[] {1, 2, 3, 4}, lib.toFloatArray());
        org.bytedeco.pytorch.Tensor back = TorchTensors.toTorch(lib);
        assertTrue(back.is_cuda());
        assertEquals(10f, back.sum().item_float());
        back.close();
      }
    }
  }

  @Test
  void currentStreamIsBorrowed() {
    CudaStream s = TorchStreams.current(0);
    assertNotNull(s);
    assertEquals(0, s.device());
    s.synchronize();
    s.close(); // borrowed: torch's stream lives on
    TorchStreams.current(0).synchronize();
  }

  @Test
  void cceOnTorchCudaTensorsMatchesLibtorch() {
    int n = 257;
    int d = 64;
    int v = 1031;
    java.util.SplittableRandom rnd = new java.util.SplittableRandom(7);
    float[] e = CceTorchOracleTest.gaussian(rnd, n * d, 1);
    float[] c = CceTorchOracleTest.gaussian(rnd, v * d, 2 / Math.sqrt(d));
    long[] targets = new long[n];
    for (int i = 0; i < n; i++) {
      targets[i] = rnd.nextDouble() < 0.2 ? -100 : rnd.nextLong(v);
    }
    TorchOracle.Result want = TorchOracle.crossEntropy(e, c, null, targets, n, d, v, Reduction.MEAN, -100, 0.1,
        new float[] {1f});
    try (PointerScope scope = new PointerScope()) {
      org.bytedeco.pytorch.Tensor te = cuda(TorchOracle.floats(e, n, d));
      org.bytedeco.pytorch.Tensor tc = cuda(TorchOracle.floats(c, v, d));
      org.bytedeco.pytorch.Tensor tt = cuda(TorchOracle.longs(targets, n));
      CceOptions opts = CceOptions.builder().labelSmoothing(0.1).filterEps(0).build();
      TorchCce.Loss f = TorchCce.forward(te, tc, tt, null, opts, Backend.CUDA);
      TorchCce.Gradients g = TorchCce.backward(te, tc, tt, null, f.lse(), null, null, opts, Backend.CUDA);
      assertTrue(f.loss().is_cuda() && g.gradE().is_cuda());
      CceTorchOracleTest.assertClose("loss", want.loss(), TorchOracle.read(f.loss().cpu()),
          Tolerances.CCE_TORCH_F32_EXACT_ATOL, Tolerances.CCE_TORCH_F32_EXACT_RTOL, "cuda");
      CceTorchOracleTest.assertClose("gradE", want.gradE(), TorchOracle.read(g.gradE().cpu()),
          Tolerances.CCE_TORCH_F32_EXACT_ATOL, Tolerances.CCE_TORCH_F32_EXACT_RTOL, "cuda");
      CceTorchOracleTest.assertClose("gradC", want.gradC(), TorchOracle.read(g.gradC().cpu()),
          Tolerances.CCE_TORCH_F32_EXACT_ATOL, Tolerances.CCE_TORCH_F32_EXACT_RTOL, "cuda");
      assertNotNull(new TensorOptional());
      assertNotNull(torch.class);
    }
  }
}
