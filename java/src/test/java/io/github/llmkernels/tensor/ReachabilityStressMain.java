package io.github.llmkernels.tensor;

import io.github.llmkernels.kvcache.RowGather;
import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Device;
import io.github.llmkernels.tensor.Tensor;

/**
 * Child-process driver for {@link ReachabilityTest}: passes freshly allocated tensors that the
 * caller never touches again to native calls while another thread forces GCs. If the library
 * does not keep the tensors reachable for the duration of the native call, the Cleaner frees
 * the memory while the kernel still reads it and the JVM dies with SIGSEGV.
 */
public final class ReachabilityStressMain {
  private ReachabilityStressMain() {}

  static void copyFromTemporary(Tensor dst) {
    dst.copyFrom(Tensor.allocate(DType.F32, Device.CPU, dst.numel()));
  }

  static Tensor gatherFromTemporary(Tensor idx, long n, long d) {
    return RowGather.gatherRows(Tensor.allocate(DType.F32, Device.CPU, 1, 1, n, d), idx, Exec.backend(Backend.NATIVE));
  }

  public static void main(String[] args) throws Exception {
    String mode = args[0];
    long seconds = Long.parseLong(args[1]);
    Thread gc = new Thread(() -> {
      while (true) {
        System.gc();
        try {
          Thread.sleep(1);
        } catch (InterruptedException e) {
          return;
        }
      }
    });
    gc.setDaemon(true);
    gc.start();
    long end = System.nanoTime() + seconds * 1_000_000_000L;
    int iterations = 0;
    if (mode.equals("copy")) {
      try (Tensor dst = Tensor.allocate(DType.F32, Device.CPU, 1L << 24)) {
        while (System.nanoTime() < end) {
          copyFromTemporary(dst);
          iterations++;
        }
      }
    } else {
      long n = 1L << 14;
      long d = 1024;
      int k = 1 << 14;
      int[] ix = new int[k];
      for (int i = 0; i < k; i++) {
        ix[i] = (int) ((i * 7919L) % n);
      }
      try (Tensor idx = Tensor.of(ix, 1, 1, k)) {
        while (System.nanoTime() < end) {
          gatherFromTemporary(idx, n, d).close();
          iterations++;
        }
      }
    }
    System.out.println("survived " + iterations + " iterations");
  }
}
