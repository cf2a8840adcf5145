package io.github.llmkernels.internal;

/**
 * A C argument struct made of 8-byte fields (int64 or double bits), held as a long[] whose memory
 * is the struct when passed to the library. Field 0 carries the struct size, which the library
 * checks, so a layout mismatch between binding and library fails loudly.
 */
public abstract class ArgStruct<T extends ArgStruct<T>> {
  private final long[] words;

  ArgStruct(int fields) {
    words = new long[fields];
    words[0] = fields * 8L;
  }

  @SuppressWarnings("unchecked")
  public T set(int field, long value) {
    words[field] = value;
    return (T) this;
  }

  @SuppressWarnings("unchecked")
  public T setDouble(int field, double value) {
    words[field] = Double.doubleToRawLongBits(value);
    return (T) this;
  }

  public long get(int field) {
    return words[field];
  }

  long[] words() {
    return words;
  }
}
