package io.github.llmkernels.internal;

import io.github.llmkernels.runtime.Backend;
import io.github.llmkernels.runtime.BackendUnavailableException;
import io.github.llmkernels.runtime.Cuda;
import io.github.llmkernels.runtime.CudaStream;
import io.github.llmkernels.runtime.Exec;
import io.github.llmkernels.tensor.Device;
import java.lang.ref.Reference;

/**
 * Chooses the backend for one call from where its tensors live and what is loaded.
 *
 * <p>Rules: all tensors open and on one device; AUTO picks CUDA for device tensors, NATIVE for
 * host tensors when the library loaded (and every host tensor has a raw address), else JAVA;
 * a backend named explicitly never falls back: if it cannot run, the call throws with the cause.
 */
public final class Dispatch {
  private Dispatch() {}

  /** Returns JAVA, NATIVE or CUDA for op on these operands. */
  public static Backend select(String op, Exec exec, Operand... operands) {
    Device device = commonDevice(op, operands);
    Backend requested = exec.backend();
    if (device.isCuda()) {
      if (requested != Backend.AUTO && requested != Backend.CUDA) {
        throw new IllegalArgumentException(op + ": backend " + requested + " needs host tensors; "
            + operands[0].name() + " is on " + device);
      }
      if (!Cuda.isAvailable()) {
        throw new BackendUnavailableException(op + ": " + Cuda.unavailabilityCause().getMessage(),
            Cuda.unavailabilityCause());
      }
      CudaStream stream = exec.stream();
      if (stream != null && stream.device() != device.index()) {
        throw new IllegalArgumentException(op + ": stream is on cuda:" + stream.device()
            + " but the tensors are on " + device);
      }
      return Backend.CUDA;
    }
    switch (requested) {
      case CUDA:
        throw new IllegalArgumentException(op + ": backend CUDA needs device tensors; "
            + operands[0].name() + " is on cpu (copy it with to(Device.cuda(n)))");
      case JAVA:
        return Backend.JAVA;
      case NATIVE:
        if (!NativeApi.isLoaded()) {
          throw new BackendUnavailableException(op + ": backend NATIVE unavailable: " + NativeApi.loadFailure(),
              NativeApi.loadFailure());
        }
        requireAddresses(op, operands);
        return Backend.NATIVE;
      default:
        return NativeApi.isLoaded() && allHaveAddresses(operands) ? Backend.NATIVE : Backend.JAVA;
    }
  }

  /**
   * Keeps the operands' tensors reachable until this point: call it in a finally block after a
   * native call, or the JIT may consider a tensor dead once its address was read and its
   * Cleaner may free the memory while the kernel still uses it.
   */
  public static void keepAlive(Operand... operands) {
    Reference.reachabilityFence(operands);
    for (Operand o : operands) {
      Reference.reachabilityFence(o.tensor());
    }
  }

  private static Device commonDevice(String op, Operand... operands) {
    Device device = null;
    String first = null;
    for (Operand o : operands) {
      o.tensor().requireOpen(o.name());
      Device d = o.tensor().device();
      if (device == null) {
        device = d;
        first = o.name();
      } else if (!device.equals(d)) {
        throw new IllegalArgumentException(op + ": all tensors must be on one device; " + first + " is on "
            + device + " but " + o.name() + " is on " + d);
      }
    }
    return device;
  }

  private static boolean allHaveAddresses(Operand... operands) {
    for (Operand o : operands) {
      if (!o.tensor().hasAddress()) {
        return false;
      }
    }
    return true;
  }

  private static void requireAddresses(String op, Operand... operands) {
    for (Operand o : operands) {
      if (!o.tensor().hasAddress()) {
        throw new IllegalArgumentException(op + ": backend NATIVE needs " + o.name()
            + " in natively addressable memory; it was allocated before the native library loaded");
      }
    }
  }
}
