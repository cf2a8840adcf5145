package io.github.llmkernels.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import io.github.llmkernels.testing.Tolerances;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Attention over two disjoint key ranges merged by lse equals attention over all keys. */
class MergeStatesTest {

  static List<Backend> backends() {
    return TestBackends.host();
  }

  static void assertStatesClose(Tensor out, Tensor lse, Tensor wantOut, Tensor wantLse, double atol, double rtol,
      String ctx) {
    float[] o = out.toFloatArray();
    float[] w = wantOut.toFloatArray();
    float[] l = lse.toFloatArray();
    float[] wl = wantLse.toFloatArray();
    int d = o.length / Math.max(1, l.length);
    for (int r = 0; r < l.length; r++) {
      if (wl[r] == Float.NEGATIVE_INFINITY) {
        assertEquals(Float.NEGATIVE_INFINITY, l[r], "lse row " + r + ": " + ctx);
      } else if (!(Math.abs(l[r] - wl[r]) <= atol + rtol * Math.abs(wl[r]))) {
        fail("lse row " + r + " = " + l[r] + ", want " + wl[r] + ": " + ctx);
      }
      for (int c = 0; c < d; c++) {
        int i = r * d + c;
        if (!(Math.abs(o[i] - w[i]) <= atol + rtol * Math.abs(w[i]))) {
          fail("out[" + r + ", " + c + "] = " + o[i] + ", want " + w[i] + ": " + ctx);
        }
      }
    }
  }

  @ParameterizedTest
  @MethodSource("backends")
  void splitKeysThenMergeEqualsWhole(Backend backend) {
    run(backend, Device.CPU);
  }

  @Tag("gpu")
  @Test
  void splitKeysThenMergeEqualsWholeOnCuda() {
    TestBackends.assumeCuda();
    run(Backend.CUDA, Device.cuda(0));
  }

  static void run(Backend backend, Device device) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int b = 2;
    int hq = 4;
    int hkv = 2;
    int sq = 97;
    int sk = 97;
    int d = 40;
    int split = 1 + rnd.nextInt(sk - 1);
    String ctx = backend + " seed " + seed + " split " + split;
    Exec exec = Exec.backend(backend);
    MaskSpec base = MaskSpec.causal();
    MaskSpec first = base.and(MaskSpec.prefix(split));
    MaskSpec second = base.and(MaskSpec.prefix(split).not());
    try (AttentionCase c = new AttentionCase(seed, b, hq, hkv, sq, sk, d, DType.F32);
        Tensor q = c.q.to(device);
        Tensor k = c.k.to(device);
        Tensor v = c.v.to(device);
        BlockLayout whole = BlockLayout.compile(base, b, hq, sq, sk, 32, 32, null, null, device, exec);
        BlockLayout la = BlockLayout.compile(first, b, hq, sq, sk, 32, 32, null, null, device, exec);
        BlockLayout lb = BlockLayout.compile(second, b, hq, sq, sk, 64, 16, null, null, device, exec);
        AttentionOutput w = SparseAttention.forward(q, k, v, whole, AttentionOptions.defaults(), exec);
        AttentionOutput a = SparseAttention.forward(q, k, v, la, AttentionOptions.defaults(), exec);
        AttentionOutput bo = SparseAttention.forward(q, k, v, lb, AttentionOptions.defaults(), exec);
        AttentionOutput m = SparseAttention.mergeStates(a.out(), a.lse(), bo.out(), bo.lse(), exec)) {
      // queries before split see only the first range: the second state is -inf there
      assertStatesClose(m.out(), m.lse(), w.out(), w.lse(), Tolerances.ATTN_MERGE_F32_ATOL,
          Tolerances.ATTN_MERGE_F32_RTOL, ctx);
      // in place into the first state
      SparseAttention.mergeStatesInto(a.out(), a.lse(), bo.out(), bo.lse(), a.out(), a.lse(), exec);
      assertStatesClose(a.out(), a.lse(), w.out(), w.lse(), Tolerances.ATTN_MERGE_F32_ATOL,
          Tolerances.ATTN_MERGE_F32_RTOL, ctx + " in place A");
    }
  }

  @ParameterizedTest
  @MethodSource("backends")
  void infinityCasesAndHalfStates(Backend backend) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int rows = 37;
    int d = 24;
    for (DType dtype : new DType[] {DType.F32, DType.BF16, DType.F16}) {
      String ctx = backend + " " + dtype + " seed " + seed;
      float[] la = new float[rows];
      float[] lb = new float[rows];
      for (int r = 0; r < rows; r++) {
        switch (r % 4) {
          case 0 -> { // both empty
            la[r] = Float.NEGATIVE_INFINITY;
            lb[r] = Float.NEGATIVE_INFINITY;
          }
          case 1 -> { // only B
            la[r] = Float.NEGATIVE_INFINITY;
            lb[r] = (float) (3 * RandomTensors.gaussian(rnd));
          }
          case 2 -> { // only A
            la[r] = (float) (3 * RandomTensors.gaussian(rnd));
            lb[r] = Float.NEGATIVE_INFINITY;
          }
          default -> { // both, far apart sometimes
            la[r] = (float) (20 * RandomTensors.gaussian(rnd));
            lb[r] = (float) (20 * RandomTensors.gaussian(rnd));
          }
        }
      }
      try (Tensor outA = RandomTensors.normal(rnd, dtype, rows, d);
          Tensor outB = RandomTensors.normal(rnd, dtype, rows, d);
          Tensor lseA = Tensor.of(la, rows);
          Tensor lseB = Tensor.of(lb, rows)) {
        // rows without keys carry out 0 by contract
        for (int r = 0; r < rows; r++) {
          for (int c = 0; c < d; c++) {
            if (la[r] == Float.NEGATIVE_INFINITY) {
              outA.setDouble((long) r * d + c, 0);
            }
            if (lb[r] == Float.NEGATIVE_INFINITY) {
              outB.setDouble((long) r * d + c, 0);
            }
          }
        }
        SparseAttentionRef.Result ref = SparseAttentionRef.merge(doubles(outA), doubles(lseA), doubles(outB),
            doubles(lseB), d);
        try (AttentionOutput m = SparseAttention.mergeStates(outA, lseA, outB, lseB, Exec.backend(backend));
            Tensor wantOut = Tensor.allocate(dtype, Device.CPU, rows, d);
            Tensor wantLse = Tensor.allocate(DType.F32, Device.CPU, rows)) {
          for (int i = 0; i < ref.out().length; i++) {
            wantOut.setDouble(i, ref.out()[i]);
          }
          for (int i = 0; i < rows; i++) {
            wantLse.setDouble(i, ref.lse()[i]);
          }
          double atol = dtype == DType.F32 ? 1e-5 : dtype == DType.BF16 ? 1.6e-2 : 2e-3; // one output ulp at |x| ~ 4
          double rtol = dtype == DType.F32 ? 1e-5 : dtype == DType.BF16 ? 8e-3 : 1e-3;
          assertStatesClose(m.out(), m.lse(), wantOut, wantLse, atol, rtol, ctx);
          // in place into B
          SparseAttention.mergeStatesInto(outA, lseA, outB, lseB, outB, lseB, Exec.backend(backend));
          assertStatesClose(outB, lseB, wantOut, wantLse, atol, rtol, ctx + " in place B");
        }
      }
    }
  }

  static double[] doubles(Tensor t) {
    float[] f = t.toFloatArray();
    double[] out = new double[f.length];
    for (int i = 0; i < f.length; i++) {
      out[i] = f[i];
    }
    return out;
  }
}
