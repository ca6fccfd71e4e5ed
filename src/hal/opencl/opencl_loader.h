/* Run-time loading of the OpenCL ICD loader (libOpenCL.so.1).
 *
 * LightOS does not link against libOpenCL: the library is opened with
 * dlopen when the OpenCL backend is probed (or by a tool that wants to talk
 * to OpenCL directly, such as bench/bench_kernels.c), and every entry point
 * named in LK_OPENCL_SYMBOLS is resolved up front, so a missing or too-old
 * library is reported once, with a reason, instead of failing later.
 *
 * Usage:
 *   lk_opencl_api_t cl;
 *   char why[256];
 *   if (lk_opencl_api_load(&cl, why, sizeof why) != 0) { ... why ... }
 *   cl.clGetPlatformIDs(0, NULL, &n);
 *   ...
 *   lk_opencl_api_unload(&cl);
 *
 * or, for a process-wide table loaded once: lk_opencl_api_get().
 */
#ifndef LIGHTOS_HAL_OPENCL_LOADER_H
#define LIGHTOS_HAL_OPENCL_LOADER_H

#include <stddef.h>

#include "hal/opencl/opencl_api.h"

/* One pointer per OpenCL entry point, named as the function. */
typedef struct lk_opencl_api {
  void* lib; /* the dlopen handle; NULL when not loaded */
#define LK_OPENCL_API_FIELD_(ret, name, params) ret(*name) params;
  LK_OPENCL_SYMBOLS(LK_OPENCL_API_FIELD_)
#undef LK_OPENCL_API_FIELD_
} lk_opencl_api_t;

/* Opens libOpenCL.so.1 (then libOpenCL.so; or only the file named by the
 * environment variable LIGHTOS_OPENCL_LIBRARY when it is set and not empty)
 * and resolves every symbol.  Returns 0 on success with every pointer set.
 * On failure returns -1, leaves *api all zero (nothing stays open) and
 * writes a one-line reason into reason[cap] (when reason is not NULL):
 *   "libOpenCL.so.1 not found"
 *   "libOpenCL.so.1: symbol clEnqueueFillBuffer missing"
 * Thread-safe (each call opens its own reference to the library). */
int lk_opencl_api_load(lk_opencl_api_t* api, char* reason, size_t cap);

/* Closes what lk_opencl_api_load opened and zeroes *api.  Safe on a zeroed
 * or already unloaded table.  No OpenCL object may be used afterwards. */
void lk_opencl_api_unload(lk_opencl_api_t* api);

/* The process-wide table, loaded on first call (thread-safe, once) and
 * never unloaded.  NULL when loading failed; then reason (when not NULL)
 * gets the same reason every time. */
const lk_opencl_api_t* lk_opencl_api_get(char* reason, size_t cap);

/* "CL_OUT_OF_RESOURCES" for -5 ...; "CL_UNKNOWN_ERROR" for codes outside
 * the OpenCL 1.2 .. 3.0 core (and cl_khr_icd) sets.  Never NULL. */
const char* lk_opencl_error_name(cl_int code);

#endif
