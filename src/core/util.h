/* Small shared helpers: environment, clocks, dynamic libraries, strings. */
#ifndef LIGHTOS_CORE_UTIL_H
#define LIGHTOS_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Environment variable as an integer; `def` when unset or not a number. */
long lk_env_long(const char* name, long def);
/* True unless the variable is set to 0/false/off/no. */
bool lk_env_flag(const char* name, bool def);

/* Monotonic clock in nanoseconds. */
uint64_t lk_now_ns(void);

/* dlopen the first library of a NULL-terminated list of names that loads.
 * On failure returns NULL and writes "NAME not found" (the first name) into
 * reason.  On success *out_name (optional) is the name that loaded. */
void* lk_dynlib_open(const char* const* names, const char** out_name,
                     char* reason, size_t cap);
void* lk_dynlib_sym(void* lib, const char* name);
void lk_dynlib_close(void* lib);

/* Bounded string helpers: always NUL-terminate. */
void lk_strlcpy(char* dst, const char* src, size_t cap);
/* Appends printf output at *len within buf[cap]; keeps *len = full length
 * wanted (like snprintf), never writes past cap. */
void lk_sbprintf(char* buf, size_t cap, size_t* len, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline size_t lk_align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }
/* a*b with overflow check; returns false on overflow. */
static inline bool lk_mul_ok(size_t a, size_t b, size_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
static inline bool lk_add_ok(size_t a, size_t b, size_t* out) {
  return !__builtin_add_overflow(a, b, out);
}

#endif
