package io.github.llmkernels.kvcache;

import static io.github.llmkernels.kvcache.KvTestUtil.assertMentions;
import static io.github.llmkernels.kvcache.KvTestUtil.message;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;
import io.github.llmkernels.testing.RandomTensors;
import io.github.llmkernels.testing.TestBackends;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeSet;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Streaming cache: after many appends of random sizes the length stays within [budget, budget +
 * slack], the kept positions are the expected ones (RECENCY + sinks, LADDER simulated on sets),
 * and every kept slot still holds the K/V row appended at its position.
 */
class StreamingKvCacheTest {

  @Test
  void recencyKeepsSinksAndTheNewest() {
    for (Backend backend : TestBackends.host()) {
      run(backend, Device.CPU, new StreamingPolicy.Recency());
    }
  }

  @Test
  void ladderKeepsTheSimulatedPositions() {
    for (Backend backend : TestBackends.host()) {
      run(backend, Device.CPU, new StreamingPolicy.Ladder(3, 4));
      run(backend, Device.CPU, new StreamingPolicy.Ladder(0, 1));
    }
  }

  @Tag("gpu")
  @Test
  void cudaStreaming() {
    TestBackends.assumeCuda();
    run(Backend.CUDA, Device.cuda(0), new StreamingPolicy.Recency());
    run(Backend.CUDA, Device.cuda(0), new StreamingPolicy.Ladder(3, 4));
  }

  private static void run(Backend backend, Device device, StreamingPolicy policy) {
    long seed = RandomTensors.freshSeed();
    SplittableRandom rnd = new SplittableRandom(seed);
    int b = 2, h = 2, d = 4, budget = 24, slack = 7, sinks = 3;
    String tag = backend + " " + policy + ", seed " + seed;
    TreeSet<Integer> expected = new TreeSet<>();
    Map<Integer, float[]> rows = new HashMap<>(); // position -> k row of (b, h) = (1, 1)
    long seen = 0;
    try (StreamingKvCache cache = StreamingKvCache.create(b, h, d, DType.F32, device, budget, slack, sinks, policy,
        Exec.backend(backend))) {
      for (int step = 0; step < 40; step++) {
        int t = 1 + rnd.nextInt(slack);
        if (cache.length() + t > cache.capacity()) { // the cache compacts: simulate it on the set
          expected = keepTop(expected, budget, sinks, policy, seen);
        }
        try (Tensor kNew = RandomTensors.normal(rnd, DType.F32, b, h, t, d);
            Tensor vNew = RandomTensors.normal(rnd, DType.F32, b, h, t, d);
            Tensor kd = kNew.to(device);
            Tensor vd = vNew.to(device)) {
          float[] kf = kNew.toFloatArray();
          for (int i = 0; i < t; i++) {
            float[] row = new float[d];
            System.arraycopy(kf, ((3 * t) + i) * d, row, 0, d); // head (1, 1) = bh 3
            rows.put((int) seen + i, row);
            expected.add((int) seen + i);
          }
          cache.append(kd, vd);
        }
        seen += t;
        assertEquals(expected.size(), cache.length(), tag);
        if (cache.compactions() > 0) {
          assertTrue(cache.length() >= budget && cache.length() <= budget + slack, "length " + cache.length() + " " + tag);
        }
        float[] k = cache.k().toFloatArray();
        int[] pos = cache.positions().toIntArray();
        int cap = cache.capacity();
        for (int bh = 0; bh < b * h; bh++) {
          TreeSet<Integer> got = new TreeSet<>();
          for (int j = 0; j < cache.length(); j++) {
            got.add(pos[bh * cap + j]);
          }
          assertEquals(expected, got, "head " + bh + " step " + step + " " + tag);
        }
        for (int j = 0; j < cache.length(); j++) {
          float[] want = rows.get(pos[3 * cap + j]);
          for (int e = 0; e < d; e++) {
            assertEquals(want[e], k[(3 * cap + j) * d + e], "row of position " + pos[3 * cap + j] + " " + tag);
          }
        }
      }
      assertTrue(cache.compactions() >= 5, tag);
    }
  }

  /** The policy's kept set: sinks, then the highest position-based scores. */
  static TreeSet<Integer> keepTop(TreeSet<Integer> positions, int budget, int sinks, StreamingPolicy policy,
      long seen) {
    List<Integer> order = new ArrayList<>(positions);
    order.sort(Comparator.comparingDouble((Integer p) -> p < sinks ? Double.POSITIVE_INFINITY : score(p, policy, seen))
        .reversed());
    return new TreeSet<>(order.subList(0, Math.min(budget, order.size())));
  }

  static double score(int p, StreamingPolicy policy, long seen) {
    if (policy instanceof StreamingPolicy.Ladder l) {
      return KvScoresRef.ladderScore(p, seen, l.layer(), l.rung());
    }
    return p;
  }

  @Test
  void knormAndSnapKvStayWithinBudget() {
    for (Backend backend : TestBackends.host()) {
      SplittableRandom rnd = new SplittableRandom(RandomTensors.freshSeed());
      for (StreamingPolicy policy : new StreamingPolicy[] {new StreamingPolicy.Knorm(),
          new StreamingPolicy.SnapKv(SnapKvOptions.defaults())}) {
        try (StreamingKvCache cache = StreamingKvCache.create(1, 2, 8, DType.BF16, Device.CPU, 16, 5, 2, policy,
            Exec.backend(backend))) {
          for (int step = 0; step < 20; step++) {
            int t = 1 + rnd.nextInt(5);
            try (Tensor kNew = RandomTensors.normal(rnd, DType.BF16, 1, 2, t, 8);
                Tensor vNew = RandomTensors.normal(rnd, DType.BF16, 1, 2, t, 8);
                Tensor q = RandomTensors.normal(rnd, DType.BF16, 1, 4, Math.min(t, 2), 8)) {
              cache.append(kNew, vNew, q);
            }
            assertTrue(cache.length() <= 21);
          }
          int[] pos = cache.positions().toIntArray();
          for (int bh = 0; bh < 2; bh++) {
            TreeSet<Integer> got = new TreeSet<>();
            for (int j = 0; j < cache.length(); j++) {
              got.add(pos[bh * cache.capacity() + j]);
            }
            assertTrue(got.contains(0) && got.contains(1), "sinks kept " + policy);
            assertTrue(got.contains((int) cache.seen() - 1), "newest kept " + policy);
          }
        }
      }
    }
  }

  @Test
  void badAppends() {
    try (StreamingKvCache cache = StreamingKvCache.create(1, 2, 4, DType.F32, Device.CPU, 8, 3, 0,
        new StreamingPolicy.Recency())) {
      try (Tensor big = Tensor.of(new float[2 * 12 * 4], 1, 2, 12, 4)) {
        assertMentions(message(IllegalArgumentException.class, () -> cache.append(big, big)), "slack = 3");
      }
      try (Tensor wrongHeads = Tensor.of(new float[3 * 4], 1, 3, 1, 4)) {
        assertMentions(message(IllegalArgumentException.class, () -> cache.append(wrongHeads, wrongHeads)),
            "Hkv (of the cache) = 2");
      }
      try (Tensor bf = Tensor.fromFloats(new float[2 * 4], DType.BF16, 1, 2, 1, 4)) {
        assertMentions(message(IllegalArgumentException.class, () -> cache.append(bf, bf)), "dtype");
      }
    }
    assertMentions(message(IllegalArgumentException.class, () -> StreamingKvCache.create(1, 1, 4, DType.F32,
        Device.CPU, 2, 1, 4, new StreamingPolicy.Recency())), "budget = 2", "sinks = 4");
    // SnapKV's window and the sinks are forced: more of them than the budget must not be dropped silently
    try (StreamingKvCache snap = StreamingKvCache.create(1, 1, 4, DType.F32, Device.CPU, 4, 4, 2,
        new StreamingPolicy.SnapKv(SnapKvOptions.defaults()));
        Tensor three = Tensor.of(new float[3 * 4], 1, 1, 3, 4)) {
      assertMentions(message(IllegalArgumentException.class, () -> snap.append(three, three, three)),
          "sinks (2) + window (3) must be <= budget (4)");
    }
    try (StreamingKvCache snap = StreamingKvCache.create(1, 1, 4, DType.F32, Device.CPU, 2, 1, 0,
        new StreamingPolicy.SnapKv(SnapKvOptions.defaults()));
        Tensor one = Tensor.of(new float[4], 1, 1, 1, 4)) {
      snap.append(one, one);
      snap.append(one, one);
      snap.append(one, one);
      assertMentions(message(IllegalStateException.class, () -> snap.append(one, one)), "SNAPKV", "queries");
    }
  }
}
