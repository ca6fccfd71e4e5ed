/* Minimal test harness shared by the LightOS test programs.
 *
 * A test program defines test functions and runs them with LK_RUN(fn).
 * Checks record a failure with file:line, the expression, and what was
 * expected and what came, then carry on (the test function returns on the
 * first failed LK_REQUIRE).  lk_test_finish() prints
 *     "<program>: N passed, N failed, N skipped"
 * and returns the process exit status (0 only when nothing failed).
 */
#ifndef LIGHTOS_TEST_H
#define LIGHTOS_TEST_H

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lk_test_state {
  const char* program;
  const char* current;
  int passed, failed, skipped;
  int current_failed, current_skipped;
} lk_test_state_t;

static lk_test_state_t lk_t = {"test", "", 0, 0, 0, 0, 0};

static inline void lk_test_fail(const char* file, int line, const char* fmt, ...) {
  va_list ap;
  fprintf(stderr, "FAIL %s [%s:%d]: ", lk_t.current, file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  lk_t.current_failed++;
}

/* Marks the running test skipped, printing why. */
static inline void lk_test_skip(const char* fmt, ...) {
  va_list ap;
  fprintf(stderr, "SKIP %s: ", lk_t.current);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  lk_t.current_skipped = 1;
}

#define LK_CHECK(cond)                                                   \
  ((cond) ? 1 : (lk_test_fail(__FILE__, __LINE__, "expected %s", #cond), 0))
#define LK_CHECK_MSG(cond, ...) \
  ((cond) ? 1 : (lk_test_fail(__FILE__, __LINE__, __VA_ARGS__), 0))
#define LK_REQUIRE(cond) \
  do { if (!LK_CHECK(cond)) return; } while (0)
#define LK_CHECK_INT(got, want)                                                     \
  do {                                                                              \
    long long g_ = (long long)(got), w_ = (long long)(want);                         \
    if (g_ != w_)                                                                   \
      lk_test_fail(__FILE__, __LINE__, "%s: expected %lld, got %lld", #got, w_, g_); \
  } while (0)
#define LK_CHECK_STR(got, want)                                                       \
  do {                                                                                \
    const char *g_ = (got), *w_ = (want);                                             \
    if (!g_ || strcmp(g_, w_) != 0)                                                   \
      lk_test_fail(__FILE__, __LINE__, "%s: expected \"%s\", got \"%s\"", #got, w_,   \
                   g_ ? g_ : "(null)");                                               \
  } while (0)
/* Checks a LightOS call's status; prints the error detail on mismatch. */
#define LK_CHECK_STATUS(call, want)                                              \
  do {                                                                           \
    lightos_status_t s_ = (call);                                                \
    if (s_ != (want))                                                            \
      lk_test_fail(__FILE__, __LINE__, "%s: expected %s, got %s (%s)", #call,     \
                   lightos_status_string(want), lightos_status_string(s_),       \
                   lightos_last_error()->message);                               \
  } while (0)
#define LK_REQUIRE_OK(call)                                                      \
  do {                                                                           \
    lightos_status_t s_ = (call);                                                \
    if (s_ != LIGHTOS_SUCCESS) {                                                 \
      lk_test_fail(__FILE__, __LINE__, "%s failed: %s (%s)", #call,               \
                   lightos_status_string(s_), lightos_last_error()->message);    \
      return;                                                                    \
    }                                                                            \
  } while (0)

static inline void lk_test_begin(const char* name) {
  lk_t.current = name;
  lk_t.current_failed = 0;
  lk_t.current_skipped = 0;
}

static inline void lk_test_end(void) {
  if (lk_t.current_failed) lk_t.failed++;
  else if (lk_t.current_skipped) lk_t.skipped++;
  else lk_t.passed++;
}

/* LK_TEST_ONLY=text: run only the tests whose name contains text. */
static inline int lk_test_selected(const char* name) {
  const char* only = getenv("LK_TEST_ONLY");
  return !only || !only[0] || strstr(name, only) != NULL;
}

#define LK_RUN(fn)                                     \
  do {                                                 \
    if (!lk_test_selected(#fn)) break;                 \
    lk_test_begin(#fn);                                \
    fn();                                              \
    lk_test_end();                                     \
  } while (0)
/* For data-driven tests: run fn(arg) under a computed name. */
#define LK_RUN_NAMED(name, call)                       \
  do {                                                 \
    if (!lk_test_selected(name)) break;                \
    lk_test_begin(name);                               \
    call;                                              \
    lk_test_end();                                     \
  } while (0)

static inline int lk_test_finish(void) {
  printf("%s: %d passed, %d failed, %d skipped\n", lk_t.program, lk_t.passed,
         lk_t.failed, lk_t.skipped);
  return lk_t.failed ? 1 : 0;
}

#endif
