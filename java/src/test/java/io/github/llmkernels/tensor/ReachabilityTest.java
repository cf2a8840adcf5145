package io.github.llmkernels.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.testing.TestBackends;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Tensors passed to native calls must stay reachable until the call returns
 * (Reference.reachabilityFence). Without that, a temporary argument's Cleaner can free its
 * memory mid-call. Runs the stress in a child JVM so a crash fails this test instead of
 * killing the test run.
 */
class ReachabilityTest {

  private static String runChild(String mode, int seconds) throws Exception {
    Path log = Files.createTempFile("llmk-reach", ".log");
    Path errFile = Files.createTempFile("llmk-hs_err", ".log");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    ProcessBuilder pb = new ProcessBuilder(List.of(java, "-Xmx512m", "-XX:ErrorFile=" + errFile,
        "-cp", System.getProperty("java.class.path"), ReachabilityStressMain.class.getName(), mode,
        Integer.toString(seconds)));
    pb.redirectErrorStream(true).redirectOutput(log.toFile());
    Process p = pb.start();
    if (!p.waitFor(seconds + 60L, TimeUnit.SECONDS)) {
      p.destroyForcibly();
    }
    String out = Files.readString(log, StandardCharsets.UTF_8);
    int rc = p.exitValue();
    new File(log.toString()).delete();
    new File(errFile.toString()).delete();
    return rc + "\n" + out;
  }

  @Test
  void temporarySourceOfCopyFromIsNotFreedDuringTheNativeCopy() throws Exception {
    TestBackends.assumeNative();
    String result = runChild("copy", 12);
    assertTrue(result.startsWith("0\n") && result.contains("survived"),
        "JVM crashed (use-after-free of a temporary tensor during llmk_copy_cpu):\n"
            + result.substring(0, Math.min(result.length(), 1500)));
  }

  @Test
  void temporarySourceOfGatherIsNotFreedDuringTheNativeGather() throws Exception {
    TestBackends.assumeNative();
    String result = runChild("gather", 6);
    assertEquals("0", result.substring(0, result.indexOf('\n')),
        "JVM crashed during the native gather:\n" + result.substring(0, Math.min(result.length(), 1500)));
  }
}
