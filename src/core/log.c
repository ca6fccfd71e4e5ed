/* Diagnostic logging to stderr, filtered by $LIGHTOS_LOG. */
#define _POSIX_C_SOURCE 200809L
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static pthread_once_t lk_log_once = PTHREAD_ONCE_INIT;
static lk_log_level_t lk_log_threshold = LK_LOG_WARN;

static void lk_log_init(void) {
  const char* v = getenv("LIGHTOS_LOG");
  lk_log_level_t lvl = LK_LOG_WARN;
  if (v && *v) {
    if (strcasecmp(v, "error") == 0) lvl = LK_LOG_ERROR;
    else if (strcasecmp(v, "warn") == 0 || strcasecmp(v, "warning") == 0) lvl = LK_LOG_WARN;
    else if (strcasecmp(v, "info") == 0) lvl = LK_LOG_INFO;
    else if (strcasecmp(v, "debug") == 0) lvl = LK_LOG_DEBUG;
    /* Unknown values keep the default. */
  }
  lk_log_threshold = lvl;
}

int lk_log_enabled(lk_log_level_t level) {
  pthread_once(&lk_log_once, lk_log_init);
  return (int)level <= (int)lk_log_threshold;
}

static const char* lk_log_name(lk_log_level_t level) {
  switch (level) {
    case LK_LOG_ERROR: return "error";
    case LK_LOG_WARN: return "warn";
    case LK_LOG_INFO: return "info";
    case LK_LOG_DEBUG: return "debug";
  }
  return "log";
}

void lk_log(lk_log_level_t level, const char* fmt, ...) {
  if (!fmt || !lk_log_enabled(level)) return;
  int saved_errno = errno; /* logging must not disturb the caller's errno */
  char buf[1024];
  int prefix = snprintf(buf, sizeof buf, "lightos: %s: ", lk_log_name(level));
  if (prefix < 0) prefix = 0;
  size_t used = (size_t)prefix;
  if (used >= sizeof buf) used = sizeof buf - 1;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + used, sizeof buf - used, fmt, ap);
  va_end(ap);
  if (n > 0) {
    used += (size_t)n;
    if (used > sizeof buf - 2) {
      /* Truncated: mark it and keep room for the newline. */
      used = sizeof buf - 2;
      memcpy(buf + used - 3, "...", 3);
    }
  }
  if (used > 0 && buf[used - 1] == '\n') used--; /* avoid a doubled newline */
  buf[used++] = '\n';
  /* One write(2) so concurrent messages do not interleave. */
  const char* p = buf;
  size_t left = used;
  while (left > 0) {
    ssize_t w = write(STDERR_FILENO, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      break;
    }
    p += (size_t)w;
    left -= (size_t)w;
  }
  errno = saved_errno;
}
