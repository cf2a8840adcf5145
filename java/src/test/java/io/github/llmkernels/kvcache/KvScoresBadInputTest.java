package io.github.llmkernels.kvcache;

import static io.github.llmkernels.kvcache.KvTestUtil.assertMentions;
import static io.github.llmkernels.kvcache.KvTestUtil.message;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.TestBackends;
import org.junit.jupiter.api.Test;

/** Bad scorer arguments get an exception naming the argument and the rule, on every backend. */
class KvScoresBadInputTest {

  @Test
  void badQueriesAndKeys() {
    for (Backend backend : TestBackends.host()) {
      Exec exec = Exec.backend(backend);
      try (Tensor k = Tensor.of(new float[2 * 10 * 4], 1, 2, 10, 4);
          Tensor q3 = Tensor.of(new float[3 * 2 * 4], 1, 3, 2, 4);
          Tensor qLong = Tensor.of(new float[2 * 11 * 4], 1, 2, 11, 4);
          Tensor qD = Tensor.of(new float[2 * 2 * 5], 1, 2, 2, 5);
          Tensor qBf = Tensor.fromFloats(new float[2 * 2 * 4], DType.BF16, 1, 2, 2, 4);
          Tensor q2 = Tensor.of(new float[2 * 2 * 4], 1, 2, 2, 4);
          Tensor kInt = Tensor.of(new int[2 * 10 * 4], 1, 2, 10, 4);
          Tensor k3 = Tensor.of(new float[20], 2, 10)) {
        SnapKvOptions o = SnapKvOptions.defaults();
        assertMentions(message(IllegalArgumentException.class, () -> KvScores.snapKv(q3, k, o, exec)),
            "Hq = 3", "Hkv = 2");
        assertMentions(message(IllegalArgumentException.class, () -> KvScores.snapKv(qLong, k, o, exec)),
            "q_len = 11", "[1, n = 10]");
        assertMentions(message(IllegalArgumentException.class, () -> KvScores.snapKv(qD, k, o, exec)),
            "d (from k) = 4");
        assertMentions(message(IllegalArgumentException.class, () -> KvScores.snapKv(qBf, k, o, exec)),
            "qWindow dtype BF16 must equal k dtype F32");
        assertMentions(message(IllegalArgumentException.class, () -> KvScores.tova(q2, k, exec)), "one query");
        assertMentions(message(IllegalArgumentException.class, () -> KvScores.knorm(kInt, exec)), "k must have dtype");
        assertMentions(message(IllegalArgumentException.class, () -> KvScores.knorm(k3, exec)), "k must have rank 4");
        assertMentions(message(IllegalArgumentException.class, () -> KvScores.ladder(1, 2, 10, 0, 0)),
            "rung must be >= 1");
        assertMentions(message(IllegalArgumentException.class, () -> KvScores.recency(1, 0, 10)), "headsKv >= 1");
        assertMentions(message(IllegalArgumentException.class, () -> SnapKvOptions.defaults().withKernel(4)),
            "odd");
        try (ObservedAttention state = ObservedAttention.create(1, 2, 9, Device.CPU)) {
          assertMentions(message(IllegalArgumentException.class, () -> KvScores.observed(q2, k, state, 0, exec)),
              "state.attnSum dimension 2", "n (from k");
        }
        Tensor closed = Tensor.of(new float[2 * 10 * 4], 1, 2, 10, 4);
        closed.close();
        assertThrows(IllegalStateException.class, () -> KvScores.knorm(closed, exec));
        assertThrows(IllegalStateException.class, () -> KvScores.snapKv(q2, closed, o, exec));
      }
    }
  }

  @Test
  void cudaBackendNeedsDeviceTensors() {
    try (Tensor k = Tensor.of(new float[2 * 10 * 4], 1, 2, 10, 4)) {
      assertMentions(message(IllegalArgumentException.class, () -> KvScores.knorm(k, Exec.backend(Backend.CUDA))),
          "backend CUDA needs device tensors");
    }
  }
}
