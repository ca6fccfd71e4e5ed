/* Thread-local error detail behind lightos_last_error(). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

typedef struct lk_error_record {
  lightos_error_info_t info;
  char message[1024];
  char backend[32];
  char native_name[96];
} lk_error_record_t;

static _Thread_local lk_error_record_t lk_err_tls;

static void lk_copy(char* dst, size_t cap, const char* src) {
  if (!src) src = "";
  size_t n = strlen(src);
  if (n >= cap) n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

static lk_error_record_t* lk_err_record(void) {
  lk_error_record_t* r = &lk_err_tls;
  /* Point the public strings at the record's own storage on first use. */
  if (!r->info.message) {
    r->info.message = r->message;
    r->info.backend = r->backend;
    r->info.native_name = r->native_name;
    r->info.file = "";
  }
  return r;
}

lightos_status_t lk_error_set(lightos_status_t status, const char* backend,
                              const char* native_name, int64_t native_code,
                              const char* file, int line, const char* fmt, ...) {
  lk_error_record_t* r = lk_err_record();
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->message, sizeof r->message, fmt, ap);
  va_end(ap);
  r->info.status = status;
  lk_copy(r->backend, sizeof r->backend, backend);
  lk_copy(r->native_name, sizeof r->native_name, native_name);
  r->info.native_code = native_code;
  r->info.file = file ? file : "";
  r->info.line = line;
  return status;
}

LIGHTOS_API const lightos_error_info_t* lightos_last_error(void) {
  return &lk_err_record()->info;
}

LIGHTOS_API void lightos_clear_error(void) {
  lk_error_record_t* r = lk_err_record();
  r->info.status = LIGHTOS_SUCCESS;
  r->message[0] = r->backend[0] = r->native_name[0] = '\0';
  r->info.native_code = 0;
  r->info.file = "";
  r->info.line = 0;
}

LIGHTOS_API const char* lightos_status_string(lightos_status_t status) {
  switch (status) {
    case LIGHTOS_SUCCESS: return "LIGHTOS_SUCCESS";
    case LIGHTOS_INVALID_ARGUMENT: return "LIGHTOS_INVALID_ARGUMENT";
    case LIGHTOS_NOT_FOUND: return "LIGHTOS_NOT_FOUND";
    case LIGHTOS_UNAVAILABLE: return "LIGHTOS_UNAVAILABLE";
    case LIGHTOS_UNSUPPORTED: return "LIGHTOS_UNSUPPORTED";
    case LIGHTOS_OUT_OF_MEMORY: return "LIGHTOS_OUT_OF_MEMORY";
    case LIGHTOS_OUT_OF_RANGE: return "LIGHTOS_OUT_OF_RANGE";
    case LIGHTOS_DEVICE_LOST: return "LIGHTOS_DEVICE_LOST";
    case LIGHTOS_TIMEOUT: return "LIGHTOS_TIMEOUT";
    case LIGHTOS_ABORTED: return "LIGHTOS_ABORTED";
    case LIGHTOS_COMPILE_FAILED: return "LIGHTOS_COMPILE_FAILED";
    case LIGHTOS_NOT_READY: return "LIGHTOS_NOT_READY";
    case LIGHTOS_INTERNAL: return "LIGHTOS_INTERNAL";
  }
  return "LIGHTOS_UNKNOWN_STATUS";
}
