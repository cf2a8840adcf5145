package io.github.llmkernels.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.llmkernels.testing.TestBackends;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.Pointer;
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
    List<String> command = new ArrayList<>(List.of(java, "-Xmx512m", "-XX:ErrorFile=" + errFile));
    for (String property : new String[] {"llmkernels.library.path", "org.bytedeco.javacpp.cachedir"}) {
      if (System.getProperty(property) != null) { // e.g. the GPU bundle's custom natives
        command.add("-D" + property + "=" + System.getProperty(property));
      }
    }
    command.addAll(List.of("-cp", childClassPath(), ReachabilityStressMain.class.getName(), mode,
        Integer.toString(seconds)));
    ProcessBuilder pb = new ProcessBuilder(command);
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

  /**
   * The JVM class path plus where the test, library and JavaCPP classes were actually loaded
   * from: under a launcher with its own class loader (the JUnit console in the GPU bundle),
   * java.class.path does not contain them.
   */
  private static String childClassPath() throws Exception {
    List<String> entries = new ArrayList<>(List.of(System.getProperty("java.class.path")));
    for (Class<?> c : new Class<?>[] {ReachabilityStressMain.class, Tensor.class, Pointer.class}) {
      entries.add(Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString());
    }
    return String.join(File.pathSeparator, entries);
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
