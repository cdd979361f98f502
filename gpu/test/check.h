// Minimal test harness for the native unit tests: CHECK records a failure and continues.
#ifndef GRASS_TEST_CHECK_H
#define GRASS_TEST_CHECK_H

#include <cstdio>
#include <cstddef>
#include <cstdlib>

static int g_failures = 0, g_checks = 0;

// CRC32C from its definition, one bit at a time (reflected polynomial 0x82f63b78, initial and
// final inversion): the reference for the monitor's table and instruction code.
static inline unsigned reference_crc32c(const void* data, size_t n) {
  const unsigned char* p = (const unsigned char*)data;
  unsigned crc = 0xffffffffu;
  while (n--) {
    crc ^= *p++;
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
  }
  return crc ^ 0xffffffffu;
}

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
