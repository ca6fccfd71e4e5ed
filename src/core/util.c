#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/util.h"

long lk_env_long(const char* name, long def) {
  const char* v = getenv(name);
  if (!v || !*v) return def;
  char* end = NULL;
  errno = 0;
  long r = strtol(v, &end, 10);
  if (errno || end == v) return def;
  while (*end && isspace((unsigned char)*end)) end++;
  return *end ? def : r;
}

bool lk_env_flag(const char* name, bool def) {
  const char* v = getenv(name);
  if (!v || !*v) return def;
  if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "off") ||
      !strcasecmp(v, "no"))
    return false;
  return true;
}

uint64_t lk_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void* lk_dynlib_open(const char* const* names, const char** out_name, char* reason,
                     size_t cap) {
  for (const char* const* n = names; *n; ++n) {
    void* h = dlopen(*n, RTLD_NOW | RTLD_LOCAL);
    if (h) {
      if (out_name) *out_name = *n;
      return h;
    }
  }
  if (reason && cap) snprintf(reason, cap, "%s not found", names[0]);
  return NULL;
}

void* lk_dynlib_sym(void* lib, const char* name) { return dlsym(lib, name); }

void lk_dynlib_close(void* lib) {
  if (lib) dlclose(lib);
}

void lk_strlcpy(char* dst, const char* src, size_t cap) {
  if (!cap) return;
  if (!src) src = "";
  size_t n = strlen(src);
  if (n >= cap) n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

void lk_sbprintf(char* buf, size_t cap, size_t* len, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t at = *len;
  int n;
  if (buf && at < cap) {
    n = vsnprintf(buf + at, cap - at, fmt, ap);
  } else {
    char dummy[1];
    n = vsnprintf(dummy, 0, fmt, ap);
  }
  va_end(ap);
  if (n > 0) *len += (size_t)n;
}
