package io.github.llmkernels.attention;

/** Parameter checks of the prefill options records: "Record: param must rule; got value". */
final class PrefillChecks {
  /** Largest block: tiles stay far from int overflow in every index computation. */
  static final int MAX_BLOCK = 1 << 20;

  private PrefillChecks() {}

  static IllegalArgumentException bad(String record, String param, String rule, Object value) {
    return new IllegalArgumentException(record + ": " + param + " must " + rule + "; got " + value);
  }

  static void nonNegative(String record, String param, long value) {
    if (value < 0) {
      throw bad(record, param, "be >= 0", value);
    }
  }

  static void block(String record, int block) {
    if (block < 1 || block > MAX_BLOCK) {
      throw bad(record, "block", "be in [1, 2^20]", block);
    }
  }

  /** 0 (= 1/sqrt(d)) or in [1e-30, 1e30]; NaN rejected. */
  static void scale(String record, double scale) {
    if (!(scale == 0 || (scale >= AttentionOptions.MIN_FACTOR && scale <= AttentionOptions.MAX_FACTOR))) {
      throw bad(record, "scale", "be 0 (= 1/sqrt(d)) or in [1e-30, 1e30]", scale);
    }
  }

  /** A fraction in (0, 1]; NaN rejected. */
  static void fraction(String record, String param, double value) {
    if (!(value > 0 && value <= 1)) {
      throw bad(record, param, "be in (0, 1]", value);
    }
  }
}
