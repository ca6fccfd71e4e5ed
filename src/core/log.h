/* Diagnostic logging to stderr, filtered by LIGHTOS_LOG
 * (error|warn|info|debug; default warn).  Thread-safe. */
#ifndef LIGHTOS_CORE_LOG_H
#define LIGHTOS_CORE_LOG_H

typedef enum lk_log_level {
  LK_LOG_ERROR = 0, LK_LOG_WARN = 1, LK_LOG_INFO = 2, LK_LOG_DEBUG = 3
} lk_log_level_t;

void lk_log(lk_log_level_t level, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));
int lk_log_enabled(lk_log_level_t level);

#define LK_LOG_WARN(...) lk_log(LK_LOG_WARN, __VA_ARGS__)
#define LK_LOG_INFO(...) lk_log(LK_LOG_INFO, __VA_ARGS__)
#define LK_LOG_DEBUG(...) lk_log(LK_LOG_DEBUG, __VA_ARGS__)

#endif
