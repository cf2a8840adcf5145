// The native tests' one assertion: counts failures and reports the condition and line, so a test
// program runs to the end and exits non-zero when anything failed.
#ifndef LLMK_TESTS_EXPECT_H
#define LLMK_TESTS_EXPECT_H

#include <cstdio>

static int failures = 0;
#define EXPECT(cond)                                                             \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);   \
      ++failures;                                                                \
    }                                                                            \
  } while (0)

#endif
