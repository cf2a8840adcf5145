package io.github.llmkernels.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.HalfFloats;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.Tolerances;
import java.util.SplittableRandom;

/**
 * Random attention inputs (host, rounded to the dtype) plus the two references the parity tests
 * compare against: the fp64 oracle ({@link SparseAttentionRef#dense}) and a naive computation at
 * the inputs' precision, which sets the error budget for F16/BF16 (FlashAttention's rule).
 */
final class AttentionCase implements AutoCloseable {
  final int b;
  final int hq;
  final int hkv;
  final int sq;
  final int sk;
  final int d;
  final DType dtype;
  final Tensor q; // [B, Hq, Sq, d]
  final Tensor k; // [B, Hkv, Sk, d]
  final Tensor v;

  AttentionCase(long seed, int b, int hq, int hkv, int sq, int sk, int d, DType dtype) {
    this.b = b;
    this.hq = hq;
    this.hkv = hkv;
    this.sq = sq;
    this.sk = sk;
    this.d = d;
    this.dtype = dtype;
    SplittableRandom rnd = new SplittableRandom(seed);
    q = RandomTensors.normal(rnd, dtype, b, hq, sq, d);
    k = RandomTensors.normal(rnd, dtype, b, hkv, sk, d);
    v = RandomTensors.normal(rnd, dtype, b, hkv, sk, d);
  }

  String describe() {
    return dtype + " B " + b + " Hq " + hq + " Hkv " + hkv + " Sq " + sq + " Sk " + sk + " d " + d;
  }

  @Override
  public void close() {
    q.close();
    k.close();
    v.close();
  }

  /**
   * Same-precision naive attention: fp32 scores and softmax from the rounded inputs, the
   * unnormalised probabilities rounded to the input dtype before P.V (as a tensor-core kernel
   * does), fp32 accumulation, the result rounded to outType.
   */
  float[] naive(MaskSpec mask, int[] qLens, int[] kLens, double scale, double softcap, DType outType) {
    float[] qf = q.toFloatArray();
    float[] kf = k.toFloatArray();
    float[] vf = v.toFloatArray();
    float[] out = new float[b * hq * sq * d];
    float[] s = new float[sk];
    float fs = (float) scale;
    float fc = (float) softcap;
    for (int bi = 0; bi < b; bi++) {
      int ql = qLens == null ? sq : qLens[bi];
      int kl = kLens == null ? sk : kLens[bi];
      for (int h = 0; h < hq; h++) {
        int kvh = h / (hq / hkv);
        for (int i = 0; i < sq; i++) {
          float max = Float.NEGATIVE_INFINITY;
          for (int j = 0; j < sk; j++) {
            if (!mask.visible(bi, h, i, j, ql, kl)) {
              s[j] = Float.NEGATIVE_INFINITY;
              continue;
            }
            float dot = 0;
            int qo = ((bi * hq + h) * sq + i) * d;
            int ko = ((bi * hkv + kvh) * sk + j) * d;
            for (int c = 0; c < d; c++) {
              dot += qf[qo + c] * kf[ko + c];
            }
            float x = dot * fs;
            if (softcap > 0) {
              x = fc * (float) Math.tanh(x / fc);
            }
            s[j] = x;
            max = Math.max(max, x);
          }
          if (max == Float.NEGATIVE_INFINITY) {
            continue;
          }
          float sum = 0;
          float[] acc = new float[d];
          for (int j = 0; j < sk; j++) {
            if (s[j] == Float.NEGATIVE_INFINITY) {
              continue;
            }
            float p = (float) Math.exp(s[j] - max);
            sum += p;
            float pr = round(p, dtype);
            int vo = ((bi * hkv + kvh) * sk + j) * d;
            for (int c = 0; c < d; c++) {
              acc[c] += pr * vf[vo + c];
            }
          }
          int oo = ((bi * hq + h) * sq + i) * d;
          for (int c = 0; c < d; c++) {
            out[oo + c] = round(acc[c] / sum, outType);
          }
        }
      }
    }
    return out;
  }

  static float round(float x, DType t) {
    return switch (t) {
      case BF16 -> HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(x));
      case F16 -> HalfFloats.f16ToFloat(HalfFloats.floatToF16(x));
      default -> x;
    };
  }

  /**
   * Checks a backend's out/lse against the oracle: rows without a visible key exactly (out 0,
   * lse -inf); F32 output of F32 inputs per element with atol/rtol; F16/BF16 inputs by the
   * 2x-naive rule on the maximum error; lse always with the lse tolerance.
   */
  void assertClose(Tensor out, Tensor lse, SparseAttentionRef.Result ref, float[] naive, String ctx) {
    float[] o = out.toFloatArray();
    float[] l = lse.toFloatArray();
    assertEquals(ref.out().length, o.length, ctx);
    for (int r = 0; r < l.length; r++) {
      double want = ref.lse()[r];
      if (want == Double.NEGATIVE_INFINITY) {
        assertEquals(Float.NEGATIVE_INFINITY, l[r], "lse of a row without visible keys, row " + r + ": " + ctx);
        for (int c = 0; c < d; c++) {
          if (o[r * d + c] != 0) {
            fail("out of a row without visible keys must be 0, row " + r + " col " + c + " = " + o[r * d + c] + ": "
                + ctx);
          }
        }
        continue;
      }
      double err = Math.abs(l[r] - want);
      if (!(err <= Tolerances.ATTN_LSE_ATOL + Tolerances.ATTN_LSE_RTOL * Math.abs(want))) {
        fail("lse row " + r + " = " + l[r] + ", reference " + want + ": " + ctx);
      }
    }
    if (dtype == DType.F32) {
      for (int i = 0; i < o.length; i++) {
        double want = ref.out()[i];
        double err = Math.abs(o[i] - want);
        if (!(err <= Tolerances.ATTN_F32_ATOL + Tolerances.ATTN_F32_RTOL * Math.abs(want))) {
          fail("out[" + i + "] = " + o[i] + ", reference " + want + ": " + ctx);
        }
      }
      return;
    }
    double maxErr = 0;
    double naiveErr = 0;
    int worst = -1;
    for (int i = 0; i < o.length; i++) {
      double want = ref.out()[i];
      double err = Math.abs(o[i] - want);
      if (!(err <= maxErr)) { // catches NaN
        maxErr = Double.isNaN(err) ? Double.POSITIVE_INFINITY : err;
        worst = i;
      }
      naiveErr = Math.max(naiveErr, Math.abs(naive[i] - want));
    }
    double bound = Tolerances.ATTN_HALF_FACTOR * naiveErr + Tolerances.attnHalfAtol(dtype);
    assertTrue(maxErr <= bound, "max |out - ref| = " + maxErr + " at " + worst + " exceeds " + bound
        + " (2 x naive same-precision error " + naiveErr + " + atol): " + ctx);
  }
}
