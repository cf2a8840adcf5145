package io.github.llmkernels.internal;

import java.lang.ref.Cleaner;

/** The library's one Cleaner: a safety net that frees native memory a caller forgot to close. */
public final class Cleaners {
  private static final Cleaner CLEANER = Cleaner.create();

  private Cleaners() {}

  public static Cleaner.Cleanable register(Object owner, Runnable release) {
    return CLEANER.register(owner, release);
  }
}
