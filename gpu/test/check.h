// Minimal test harness for the native unit tests: CHECK records a failure and continues.
#ifndef GRASS_TEST_CHECK_H
#define GRASS_TEST_CHECK_H

#include <cstdio>
#include <cstdlib>

static int g_failures = 0, g_checks = 0;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    g_checks++;                                                                      \
    if (!(cond)) {                                                                   \
      g_failures++;                                                                  \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);        \
    }                                                                                \
  } while (0)

#define CHECK_THROWS(expr, needle)                                                   \
  do {                                                                               \
    g_checks++;                                                                      \
    try {                                                                            \
      expr;                                                                          \
      g_failures++;                                                                  \
      fprintf(stderr, "%s:%d: expected an exception from %s\n", __FILE__, __LINE__, #expr); \
    } catch (const std::exception& e) {                                             \
      if (!strstr(e.what(), needle)) {                                               \
        g_failures++;                                                                \
        fprintf(stderr, "%s:%d: exception '%s' lacks '%s'\n", __FILE__, __LINE__, e.what(), needle); \
      }                                                                              \
    }                                                                                \
  } while (0)

static int check_report(const char* name) {
  printf("%s: %d checks, %d failed\n", name, g_checks, g_failures);
  return g_failures ? 1 : 0;
}

#endif
