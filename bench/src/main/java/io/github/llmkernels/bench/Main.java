package io.github.llmkernels.bench;

import java.util.Arrays;

/**
 * Command line of the benchmarks jar.
 *
 * <pre>
 *   java -jar llm-kernels-bench.jar info              JVM, native library, CPU variant, CUDA devices
 *   java -jar llm-kernels-bench.jar demo [--seq N] [--tokens N] [--attention-seq N]
 *                                               each kernel on realistic shapes, every backend
 *   java -jar llm-kernels-bench.jar gpubench          GPU timings (CUDA events) beside their baselines
 *   java -jar llm-kernels-bench.jar kvquality [N]     attention error after KV compaction, per scorer and budget
 *   java -jar llm-kernels-bench.jar prefillquality [--seq 4096,8192] [--svg prefill.svg] ...
 *                                               dynamic sparse prefill: density, recall, error, speedup
 *   java -jar llm-kernels-bench.jar jmh [JMH args]    the JMH benchmarks (e.g. jmh GatherBench)
 * </pre>
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    String command = args.length == 0 ? "demo" : args[0];
    String[] rest = Arrays.copyOfRange(args, Math.min(1, args.length), args.length);
    switch (command) {
      case "info" -> Info.print(System.out);
      case "demo" -> {
        Info.print(System.out);
        System.out.println();
        Demo.run(System.out, rest);
      }
      case "gpubench" -> GpuBench.run(System.out);
      case "kvquality" -> KvQuality.run(System.out, rest.length > 0 ? Integer.parseInt(rest[0]) : 4096);
      case "prefillquality" -> PrefillQuality.run(System.out, rest);
      case "jmh" -> org.openjdk.jmh.Main.main(rest);
      default -> {
        System.err.println("usage: llm-kernels-bench (info | demo [--seq N] [--tokens N] [--attention-seq N] | gpubench | kvquality [N] | prefillquality [--seq N,..] [--svg F] | jmh [JMH options])");
        System.exit(2);
      }
    }
  }
}
