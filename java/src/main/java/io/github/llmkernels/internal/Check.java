package io.github.llmkernels.internal;

import io.github.llmkernels.tensor.DType;
import io.github.llmkernels.tensor.Shapes;
import io.github.llmkernels.tensor.Tensor;
import java.util.Arrays;

/** Argument checks whose messages name the argument and the rule. */
public final class Check {
  private Check() {}

  public static void rank(String name, Tensor t, int rank, String layout) {
    if (t.rank() != rank) {
      throw new IllegalArgumentException(name + " must have rank " + rank + " " + layout + ", got shape "
          + Shapes.format(t.shape()));
    }
  }

  public static void dtype(String name, Tensor t, DType... allowed) {
    for (DType d : allowed) {
      if (t.dtype() == d) {
        return;
      }
    }
    throw new IllegalArgumentException(name + " must have dtype " + (allowed.length == 1 ? allowed[0]
        : "in " + Arrays.toString(allowed)) + ", got " + t.dtype());
  }

  public static void sameDType(String name, Tensor t, String otherName, Tensor other) {
    if (t.dtype() != other.dtype()) {
      throw new IllegalArgumentException(name + " dtype " + t.dtype() + " must equal " + otherName + " dtype "
          + other.dtype());
    }
  }

  /** dim of t must equal expected (a size named what, e.g. "B (from src)"). */
  public static void dim(String name, Tensor t, int dim, long expected, String what) {
    if (t.shape(dim) != expected) {
      throw new IllegalArgumentException(name + " dimension " + dim + " must equal " + what + " = " + expected
          + ", got shape " + Shapes.format(t.shape()));
    }
  }

  /** Rejects outputs that share memory with an input (results would depend on the order of work). */
  public static void noOverlap(String name, Tensor t, String otherName, Tensor other) {
    if (t.overlaps(other)) {
      throw new IllegalArgumentException(name + " must not overlap " + otherName + " in memory");
    }
  }
}
