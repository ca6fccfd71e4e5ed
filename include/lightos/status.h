/* LightOS status codes and the thread-local error detail.
 *
 * Every fallible LightOS function returns a lightos_status_t.  When it is
 * not LIGHTOS_SUCCESS, the calling thread's error record
 * (lightos_last_error()) says what went wrong: a message that names the
 * argument and the bad value, the backend involved, the native error name
 * and code where a vendor runtime reported it, and the source location in
 * LightOS that raised it.  A successful call leaves the record as it was.
 */
#ifndef LIGHTOS_STATUS_H
#define LIGHTOS_STATUS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define LIGHTOS_API __declspec(dllexport)
#else
#define LIGHTOS_API __attribute__((visibility("default")))
#endif

typedef enum lightos_status {
  LIGHTOS_SUCCESS = 0,
  LIGHTOS_INVALID_ARGUMENT = 1,  /* a bad handle, size, offset, pointer, flag */
  LIGHTOS_NOT_FOUND = 2,         /* no such device, kernel, URI ...           */
  LIGHTOS_UNAVAILABLE = 3,       /* a backend/library/compiler is missing     */
  LIGHTOS_UNSUPPORTED = 4,       /* valid request the device cannot do       */
  LIGHTOS_OUT_OF_MEMORY = 5,
  LIGHTOS_OUT_OF_RANGE = 6,      /* offset+size past the end of a buffer     */
  LIGHTOS_DEVICE_LOST = 7,       /* sticky: the device is unusable           */
  LIGHTOS_TIMEOUT = 8,
  LIGHTOS_ABORTED = 9,           /* work skipped because work it depends on failed */
  LIGHTOS_COMPILE_FAILED = 10,   /* kernel build failed: see the build log   */
  LIGHTOS_NOT_READY = 11,        /* event/queue query: work still pending     */
  LIGHTOS_INTERNAL = 12
} lightos_status_t;

/* Stable, human-readable name of a status ("LIGHTOS_INVALID_ARGUMENT").
 * Never NULL; unknown values give "LIGHTOS_UNKNOWN_STATUS".
 * Thread-safe. */
LIGHTOS_API const char* lightos_status_string(lightos_status_t status);

typedef struct lightos_error_info {
  lightos_status_t status;  /* status of the last failed call on this thread */
  const char* message;      /* names the argument and the bad value          */
  const char* backend;      /* "cpu", "cuda", "opencl" ... or ""             */
  const char* native_name;  /* e.g. "CUDA_ERROR_OUT_OF_MEMORY", or ""        */
  int64_t native_code;      /* the vendor's code, 0 when none                */
  const char* file;         /* where in LightOS it was raised                 */
  int line;
} lightos_error_info_t;

/* The calling thread's last error.  The pointer and the strings in it stay
 * valid until the next LightOS call on the same thread.  Never NULL: with
 * no error yet, status is LIGHTOS_SUCCESS and the strings are "". */
LIGHTOS_API const lightos_error_info_t* lightos_last_error(void);

/* Resets the calling thread's error record to LIGHTOS_SUCCESS. */
LIGHTOS_API void lightos_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
