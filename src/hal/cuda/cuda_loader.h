/* Run-time loading of the CUDA driver (libcuda.so.1) and of NVRTC.
 *
 * The pointer tables are generated from the X-macro lists of
 * cuda_symbols.h: one field per entry point, named as the symbol
 * (api->cuMemAlloc_v2(...)).  Every required symbol is resolved up front
 * with dlsym by its exact name, so a missing or too-old library is reported
 * once, with a reason, instead of failing later.
 *
 *   const lk_cuda_api_t* cu = lk_cuda_api_get(why, sizeof why);   // or NULL
 *   const lk_nvrtc_api_t* rtc = lk_nvrtc_api_get(why, sizeof why); // or NULL
 *
 * Both are process-wide, loaded once (thread-safe) and never unloaded.
 */
#ifndef LIGHTOS_HAL_CUDA_LOADER_H
#define LIGHTOS_HAL_CUDA_LOADER_H

#include <stddef.h>

#include "hal/cuda/cuda_symbols.h"

typedef struct lk_cuda_api {
  void* lib; /* the dlopen handle */
  int hip;   /* 1: the HIP vendor table (lk_hip_api_get), 0: CUDA */
  /* HIP only: hipGetErrorName (returns the name; NULL for CUDA). */
  const char* (*hip_error_name)(CUresult error);
  char path[256]; /* the library that was opened */
#define LK_CUDA_API_FIELD_(req, hreq, ret, name, hname, params) ret(*name) params;
  LK_CUDA_DRIVER_SYMBOLS(LK_CUDA_API_FIELD_)
#undef LK_CUDA_API_FIELD_
} lk_cuda_api_t;

typedef struct lk_nvrtc_api {
  void* lib;
  int major, minor; /* nvrtcVersion */
  char path[256];   /* the library that was opened */
#define LK_NVRTC_API_FIELD_(req, hreq, ret, name, hname, params) ret(*name) params;
  LK_NVRTC_SYMBOLS(LK_NVRTC_API_FIELD_)
#undef LK_NVRTC_API_FIELD_
} lk_nvrtc_api_t;

/* The driver: libcuda.so.1 (or only the file named by LIGHTOS_CUDA_LIBRARY
 * when that is set and not empty).  NULL when it cannot be loaded; reason
 * (when not NULL) then gets e.g. "libcuda.so.1 not found" or
 * "libcuda.so.1: symbol cuMemAllocAsync missing". */
const lk_cuda_api_t* lk_cuda_api_get(char* reason, size_t cap);

/* NVRTC: libnvrtc.so.13, libnvrtc.so.12, libnvrtc.so, then the newest
 * /usr/local/cuda/lib64/libnvrtc.so.* (or only LIGHTOS_NVRTC_LIBRARY when
 * set).  NULL with reason "libnvrtc not found (...)" when none loads. */
const lk_nvrtc_api_t* lk_nvrtc_api_get(char* reason, size_t cap);

/* The HIP vendor table: the same struct filled from the AMD runtime,
 * libamdhip64.so.6, .so.5, .so (or only LIGHTOS_HIP_LIBRARY when set), by
 * the HIP column of cuda_symbols.h; api->hip is 1.  NULL with reason
 * "libamdhip64.so not found (...)" when none loads. */
const lk_cuda_api_t* lk_hip_api_get(char* reason, size_t cap);

/* hiprtc in the nvrtc struct: hiprtc* symbols of libamdhip64 (ROCm 5.x
 * ships them there), else libhiprtc.so.6/.5/.so (or LIGHTOS_HIPRTC_LIBRARY).
 * nvrtcGetCUBIN/Size are hiprtcGetCode/Size (an AMD code object); the PTX
 * and supported-arch entries are NULL. */
const lk_nvrtc_api_t* lk_hiprtc_api_get(char* reason, size_t cap);

/* A CU_DEVICE_ATTRIBUTE_* as the vendor's enum value: itself for CUDA,
 * the hipDeviceAttribute_t value for HIP (-1 when HIP has none). */
int lk_cuda_attr_for(const lk_cuda_api_t* api, int cu_attribute);

/* "hipErrorNoDevice" / "CUDA_ERROR_NO_DEVICE" for the api's vendor. */
const char* lk_cuda_api_error_name(const lk_cuda_api_t* api, CUresult code);

/* "CUDA_ERROR_OUT_OF_MEMORY" for 2 ...: the driver's name (cuGetErrorName)
 * when the driver is loaded, else LightOS's own table; never NULL. */
const char* lk_cuda_error_name(CUresult code);
/* The driver's one-line description (cuGetErrorString), or "". */
const char* lk_cuda_error_text(CUresult code);

#endif
