/* Run-time loading of the CUDA driver and NVRTC: see cuda_loader.h. */
#include "hal/cuda/cuda_loader.h"

#include <dlfcn.h>
#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dlsym returns an object pointer; POSIX guarantees it converts to a
 * function pointer of the same size (memcpy avoids the cast ISO C frowns
 * upon). */
_Static_assert(sizeof(void*) == sizeof(void (*)(void)),
               "function and object pointers must have the same size");

/* ---- the driver ------------------------------------------------------------ */

static pthread_once_t lk_cu_once = PTHREAD_ONCE_INIT;
static lk_cuda_api_t lk_cu_api;
static const lk_cuda_api_t* lk_cu_loaded; /* &lk_cu_api once loaded */
static char lk_cu_reason[256];

static void lk_cu_load(void) {
  const char* name = "libcuda.so.1";
  const char* env = getenv("LIGHTOS_CUDA_LIBRARY");
  if (env && env[0]) name = env;
  void* lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(lk_cu_reason, sizeof lk_cu_reason, "%s not found", name);
    return;
  }
  lk_cuda_api_t* api = &lk_cu_api;
  void* sym;
#define LK_CU_RESOLVE_(req, hreq, ret, fn, hfn, params)                                             \
  (void)dlerror();                                                                         \
  sym = dlsym(lib, #fn);                                                                   \
  if (!sym && (req)) {                                                                     \
    snprintf(lk_cu_reason, sizeof lk_cu_reason, "%s: symbol %s missing (driver too old?)", \
             name, #fn);                                                                   \
    dlclose(lib);                                                                          \
    memset(api, 0, sizeof *api);                                                           \
    return;                                                                                \
  }                                                                                        \
  memcpy(&api->fn, &sym, sizeof sym);
  LK_CUDA_DRIVER_SYMBOLS(LK_CU_RESOLVE_)
#undef LK_CU_RESOLVE_
  api->lib = lib;
  snprintf(api->path, sizeof api->path, "%s", name);
  lk_cu_loaded = api;
}

const lk_cuda_api_t* lk_cuda_api_get(char* reason, size_t cap) {
  pthread_once(&lk_cu_once, lk_cu_load);
  if (!lk_cu_loaded && reason && cap) snprintf(reason, cap, "%s", lk_cu_reason);
  return lk_cu_loaded;
}

/* ---- NVRTC ----------------------------------------------------------------- */

static pthread_once_t lk_rtc_once = PTHREAD_ONCE_INIT;
static lk_nvrtc_api_t lk_rtc_api;
static const lk_nvrtc_api_t* lk_rtc_loaded;
static char lk_rtc_reason[256];

/* Resolves every NVRTC symbol of an opened library; 0 on success. */
static int lk_rtc_resolve(void* lib, const char* path) {
  lk_nvrtc_api_t* api = &lk_rtc_api;
  memset(api, 0, sizeof *api);
  void* sym;
#define LK_RTC_RESOLVE_(req, hreq, ret, fn, hfn, params)                                        \
  (void)dlerror();                                                                     \
  sym = dlsym(lib, #fn);                                                               \
  if (!sym && (req)) {                                                                 \
    snprintf(lk_rtc_reason, sizeof lk_rtc_reason, "%s: symbol %s missing", path, #fn); \
    memset(api, 0, sizeof *api);                                                       \
    return -1;                                                                         \
  }                                                                                    \
  memcpy(&api->fn, &sym, sizeof sym);
  LK_NVRTC_SYMBOLS(LK_RTC_RESOLVE_)
#undef LK_RTC_RESOLVE_
  if (api->nvrtcVersion(&api->major, &api->minor) != NVRTC_SUCCESS) api->major = api->minor = 0;
  api->lib = lib;
  snprintf(api->path, sizeof api->path, "%s", path);
  return 0;
}

static int lk_rtc_try(const char* path) {
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) return -1;
  if (lk_rtc_resolve(lib, path) != 0) {
    dlclose(lib);
    return -1;
  }
  lk_rtc_loaded = &lk_rtc_api;
  return 0;
}

static void lk_rtc_load(void) {
  const char* env = getenv("LIGHTOS_NVRTC_LIBRARY");
  if (env && env[0]) {
    if (lk_rtc_try(env) != 0 && !lk_rtc_reason[0])
      snprintf(lk_rtc_reason, sizeof lk_rtc_reason, "libnvrtc not found (%s)", env);
    return;
  }
  static const char* const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
    if (lk_rtc_try(names[i]) == 0) return;
  /* The toolkit's default location, newest first (glob sorts). */
  glob_t g;
  memset(&g, 0, sizeof g);
  if (glob("/usr/local/cuda/lib64/libnvrtc.so.*", 0, NULL, &g) == 0) {
    for (size_t i = g.gl_pathc; i-- > 0;) {
      const char* p = g.gl_pathv[i];
      if (strstr(p, "builtins")) continue;
      if (lk_rtc_try(p) == 0) break;
    }
  }
  globfree(&g);
  if (!lk_rtc_loaded && !lk_rtc_reason[0])
    snprintf(lk_rtc_reason, sizeof lk_rtc_reason,
             "libnvrtc not found (tried libnvrtc.so.13, libnvrtc.so.12, libnvrtc.so and "
             "/usr/local/cuda/lib64)");
}

const lk_nvrtc_api_t* lk_nvrtc_api_get(char* reason, size_t cap) {
  pthread_once(&lk_rtc_once, lk_rtc_load);
  if (!lk_rtc_loaded && reason && cap) snprintf(reason, cap, "%s", lk_rtc_reason);
  return lk_rtc_loaded;
}

/* ---- the HIP vendor table ---------------------------------------------------- */

static pthread_once_t lk_hip_once = PTHREAD_ONCE_INIT;
static lk_cuda_api_t lk_hip_api;
static const lk_cuda_api_t* lk_hip_loaded;
static char lk_hip_reason[256];
static pthread_once_t lk_hiprtc_once = PTHREAD_ONCE_INIT;
static lk_nvrtc_api_t lk_hiprtc_api;
static const lk_nvrtc_api_t* lk_hiprtc_loaded;
static char lk_hiprtc_reason[256];

/* Resolves the HIP column into api; 0 on success, else -1 with reason. */
static int lk_hip_resolve(void* lib, const char* path, lk_cuda_api_t* api) {
  memset(api, 0, sizeof *api);
  void* sym;
#define LK_HIP_RESOLVE_(req, hreq, ret, fn, hfn, params)                                  \
  sym = NULL;                                                                              \
  if (strcmp(#hfn, "LK_NO_HIP") != 0) {                                                    \
    (void)dlerror();                                                                       \
    sym = dlsym(lib, #hfn);                                                                \
  }                                                                                        \
  if (!sym && (hreq)) {                                                                    \
    snprintf(lk_hip_reason, sizeof lk_hip_reason, "%s: symbol %s missing (ROCm too old?)", \
             path, #hfn);                                                                  \
    memset(api, 0, sizeof *api);                                                           \
    return -1;                                                                             \
  }                                                                                        \
  memcpy(&api->fn, &sym, sizeof sym);
  LK_CUDA_DRIVER_SYMBOLS(LK_HIP_RESOLVE_)
#undef LK_HIP_RESOLVE_
  (void)dlerror();
  sym = dlsym(lib, "hipGetErrorName");
  memcpy(&api->hip_error_name, &sym, sizeof sym);
  api->lib = lib;
  api->hip = 1;
  snprintf(api->path, sizeof api->path, "%s", path);
  return 0;
}

static void lk_hip_load(void) {
  const char* env = getenv("LIGHTOS_HIP_LIBRARY");
  static const char* const names[] = {"libamdhip64.so.6", "libamdhip64.so.5", "libamdhip64.so"};
  const char* const* list = names;
  size_t n = sizeof names / sizeof names[0];
  if (env && env[0]) list = &env, n = 1;
  for (size_t i = 0; i < n; ++i) {
    void* lib = dlopen(list[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib) continue;
    if (lk_hip_resolve(lib, list[i], &lk_hip_api) == 0) {
      lk_hip_loaded = &lk_hip_api;
      return;
    }
    dlclose(lib);
  }
  if (!lk_hip_reason[0])
    snprintf(lk_hip_reason, sizeof lk_hip_reason, "libamdhip64.so not found (tried %s)",
             env && env[0] ? env : "libamdhip64.so.6, libamdhip64.so.5, libamdhip64.so");
}

const lk_cuda_api_t* lk_hip_api_get(char* reason, size_t cap) {
  pthread_once(&lk_hip_once, lk_hip_load);
  if (!lk_hip_loaded && reason && cap) snprintf(reason, cap, "%s", lk_hip_reason);
  return lk_hip_loaded;
}

static int lk_hiprtc_resolve(void* lib, const char* path) {
  lk_nvrtc_api_t* api = &lk_hiprtc_api;
  memset(api, 0, sizeof *api);
  void* sym;
#define LK_HIPRTC_RESOLVE_(req, hreq, ret, fn, hfn, params)                                \
  sym = NULL;                                                                              \
  if (strcmp(#hfn, "LK_NO_HIP") != 0) {                                                    \
    (void)dlerror();                                                                       \
    sym = dlsym(lib, #hfn);                                                                \
  }                                                                                        \
  if (!sym && (hreq)) {                                                                    \
    snprintf(lk_hiprtc_reason, sizeof lk_hiprtc_reason, "%s: symbol %s missing", path, #hfn); \
    memset(api, 0, sizeof *api);                                                           \
    return -1;                                                                             \
  }                                                                                        \
  memcpy(&api->fn, &sym, sizeof sym);
  LK_NVRTC_SYMBOLS(LK_HIPRTC_RESOLVE_)
#undef LK_HIPRTC_RESOLVE_
  if (api->nvrtcVersion(&api->major, &api->minor) != NVRTC_SUCCESS) api->major = api->minor = 0;
  api->lib = lib;
  snprintf(api->path, sizeof api->path, "%s", path);
  return 0;
}

static void lk_hiprtc_load(void) {
  const char* env = getenv("LIGHTOS_HIPRTC_LIBRARY");
  /* ROCm 5.x has hiprtc inside libamdhip64; ROCm 6 split it out. */
  static const char* const names[] = {"libhiprtc.so.6", "libhiprtc.so.5", "libhiprtc.so",
                                      "libamdhip64.so.5", "libamdhip64.so"};
  const char* const* list = names;
  size_t n = sizeof names / sizeof names[0];
  if (env && env[0]) list = &env, n = 1;
  for (size_t i = 0; i < n; ++i) {
    void* lib = dlopen(list[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib) continue;
    if (lk_hiprtc_resolve(lib, list[i]) == 0) {
      lk_hiprtc_loaded = &lk_hiprtc_api;
      return;
    }
    dlclose(lib);
  }
  if (!lk_hiprtc_reason[0])
    snprintf(lk_hiprtc_reason, sizeof lk_hiprtc_reason, "hiprtc not found (tried %s)",
             env && env[0] ? env
                           : "libhiprtc.so.6, libhiprtc.so.5, libhiprtc.so, libamdhip64.so.5, "
                             "libamdhip64.so");
}

const lk_nvrtc_api_t* lk_hiprtc_api_get(char* reason, size_t cap) {
  pthread_once(&lk_hiprtc_once, lk_hiprtc_load);
  if (!lk_hiprtc_loaded && reason && cap) snprintf(reason, cap, "%s", lk_hiprtc_reason);
  return lk_hiprtc_loaded;
}

int lk_cuda_attr_for(const lk_cuda_api_t* api, int a) {
  if (!api || !api->hip) return a;
  switch (a) {
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: return LK_HIP_ATTR_MAX_THREADS_PER_BLOCK;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X:
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y:
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z:
      return LK_HIP_ATTR_MAX_BLOCK_DIM_X + (a - CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X);
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X:
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y:
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z:
      return LK_HIP_ATTR_MAX_GRID_DIM_X + (a - CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X);
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK:
      return LK_HIP_ATTR_MAX_SHARED_MEMORY_PER_BLOCK;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: return LK_HIP_ATTR_MULTIPROCESSOR_COUNT;
    case CU_DEVICE_ATTRIBUTE_INTEGRATED: return LK_HIP_ATTR_INTEGRATED;
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY: return LK_HIP_ATTR_CAN_MAP_HOST_MEMORY;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: return LK_HIP_ATTR_PCI_BUS_ID;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: return LK_HIP_ATTR_PCI_DEVICE_ID;
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: return LK_HIP_ATTR_UNIFIED_ADDRESSING;
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: return LK_HIP_ATTR_PCI_DOMAIN_ID;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: return LK_HIP_ATTR_COMPUTE_CAPABILITY_MAJOR;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: return LK_HIP_ATTR_COMPUTE_CAPABILITY_MINOR;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN:
      return LK_HIP_ATTR_SHARED_MEM_PER_BLOCK_OPTIN;
    case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED: return LK_HIP_ATTR_MEMORY_POOLS_SUPPORTED;
    default: return -1;
  }
}

const char* lk_cuda_api_error_name(const lk_cuda_api_t* api, CUresult code) {
  if (api && api->hip) {
    const char* name = api->hip_error_name ? api->hip_error_name(code) : NULL;
    return name && name[0] ? name : "hipErrorUnknown";
  }
  return lk_cuda_error_name(code);
}

/* ---- error names ----------------------------------------------------------- */

static const char* lk_cu_own_name(CUresult code) {
  switch (code) {
#define LK_CU_ERR_(name) \
  case name:             \
    return #name;
    LK_CU_ERR_(CUDA_SUCCESS)
    LK_CU_ERR_(CUDA_ERROR_INVALID_VALUE)
    LK_CU_ERR_(CUDA_ERROR_OUT_OF_MEMORY)
    LK_CU_ERR_(CUDA_ERROR_NOT_INITIALIZED)
    LK_CU_ERR_(CUDA_ERROR_DEINITIALIZED)
    LK_CU_ERR_(CUDA_ERROR_STUB_LIBRARY)
    LK_CU_ERR_(CUDA_ERROR_INSUFFICIENT_DRIVER)
    LK_CU_ERR_(CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER)
    LK_CU_ERR_(CUDA_ERROR_DEVICE_UNAVAILABLE)
    LK_CU_ERR_(CUDA_ERROR_NO_DEVICE)
    LK_CU_ERR_(CUDA_ERROR_INVALID_DEVICE)
    LK_CU_ERR_(CUDA_ERROR_DEVICE_NOT_LICENSED)
    LK_CU_ERR_(CUDA_ERROR_INVALID_IMAGE)
    LK_CU_ERR_(CUDA_ERROR_INVALID_CONTEXT)
    LK_CU_ERR_(CUDA_ERROR_NO_BINARY_FOR_GPU)
    LK_CU_ERR_(CUDA_ERROR_ECC_UNCORRECTABLE)
    LK_CU_ERR_(CUDA_ERROR_PEER_ACCESS_UNSUPPORTED)
    LK_CU_ERR_(CUDA_ERROR_INVALID_PTX)
    LK_CU_ERR_(CUDA_ERROR_NVLINK_UNCORRECTABLE)
    LK_CU_ERR_(CUDA_ERROR_JIT_COMPILER_NOT_FOUND)
    LK_CU_ERR_(CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
    LK_CU_ERR_(CUDA_ERROR_JIT_COMPILATION_DISABLED)
    LK_CU_ERR_(CUDA_ERROR_CONTAINED)
    LK_CU_ERR_(CUDA_ERROR_INVALID_SOURCE)
    LK_CU_ERR_(CUDA_ERROR_FILE_NOT_FOUND)
    LK_CU_ERR_(CUDA_ERROR_OPERATING_SYSTEM)
    LK_CU_ERR_(CUDA_ERROR_INVALID_HANDLE)
    LK_CU_ERR_(CUDA_ERROR_NOT_FOUND)
    LK_CU_ERR_(CUDA_ERROR_NOT_READY)
    LK_CU_ERR_(CUDA_ERROR_ILLEGAL_ADDRESS)
    LK_CU_ERR_(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES)
    LK_CU_ERR_(CUDA_ERROR_LAUNCH_TIMEOUT)
    LK_CU_ERR_(CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED)
    LK_CU_ERR_(CUDA_ERROR_PEER_ACCESS_NOT_ENABLED)
    LK_CU_ERR_(CUDA_ERROR_CONTEXT_IS_DESTROYED)
    LK_CU_ERR_(CUDA_ERROR_ASSERT)
    LK_CU_ERR_(CUDA_ERROR_TOO_MANY_PEERS)
    LK_CU_ERR_(CUDA_ERROR_HARDWARE_STACK_ERROR)
    LK_CU_ERR_(CUDA_ERROR_ILLEGAL_INSTRUCTION)
    LK_CU_ERR_(CUDA_ERROR_MISALIGNED_ADDRESS)
    LK_CU_ERR_(CUDA_ERROR_INVALID_ADDRESS_SPACE)
    LK_CU_ERR_(CUDA_ERROR_INVALID_PC)
    LK_CU_ERR_(CUDA_ERROR_LAUNCH_FAILED)
    LK_CU_ERR_(CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE)
    LK_CU_ERR_(CUDA_ERROR_NOT_PERMITTED)
    LK_CU_ERR_(CUDA_ERROR_NOT_SUPPORTED)
    LK_CU_ERR_(CUDA_ERROR_SYSTEM_NOT_READY)
    LK_CU_ERR_(CUDA_ERROR_SYSTEM_DRIVER_MISMATCH)
    LK_CU_ERR_(CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE)
    LK_CU_ERR_(CUDA_ERROR_TIMEOUT)
    LK_CU_ERR_(CUDA_ERROR_UNKNOWN)
#undef LK_CU_ERR_
    default:
      return "CUDA_ERROR_UNKNOWN";
  }
}

const char* lk_cuda_error_name(CUresult code) {
  const char* name = NULL;
  if (lk_cu_loaded && lk_cu_loaded->cuGetErrorName(code, &name) == CUDA_SUCCESS && name)
    return name;
  return lk_cu_own_name(code);
}

const char* lk_cuda_error_text(CUresult code) {
  const char* text = NULL;
  if (lk_cu_loaded && lk_cu_loaded->cuGetErrorString(code, &text) == CUDA_SUCCESS && text)
    return text;
  return "";
}
