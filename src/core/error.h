/* Raising errors inside LightOS: fills the thread-local record that
 * lightos_last_error() returns and gives back the status, so that
 *     return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "size is 0");
 * is the usual way to fail. */
#ifndef LIGHTOS_CORE_ERROR_H
#define LIGHTOS_CORE_ERROR_H

#include <stdint.h>
#include "lightos/status.h"

lightos_status_t lk_error_set(lightos_status_t status, const char* backend,
                              const char* native_name, int64_t native_code,
                              const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 7, 8)));


#define LK_FAIL(status, ...) \
  lk_error_set((status), NULL, NULL, 0, __FILE__, __LINE__, __VA_ARGS__)
#define LK_FAIL_NATIVE(status, backend, native_name, native_code, ...)     \
  lk_error_set((status), (backend), (native_name), (native_code), __FILE__, \
               __LINE__, __VA_ARGS__)

#endif
