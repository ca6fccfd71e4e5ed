/* Run-time loading of libOpenCL: see opencl_loader.h. */
#include "hal/opencl/opencl_loader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dlsym returns an object pointer; POSIX guarantees it converts to a
 * function pointer of the same size, which memcpy does without a cast ISO C
 * frowns upon. */
_Static_assert(sizeof(void*) == sizeof(void (*)(void)),
               "function and object pointers must have the same size");

static void lk_cl_set_reason(char* reason, size_t cap, const char* fmt, const char* a,
                             const char* b) {
  if (reason == NULL || cap == 0) return;
  snprintf(reason, cap, fmt, a, b);
}

int lk_opencl_api_load(lk_opencl_api_t* api, char* reason, size_t cap) {
  if (api == NULL) {
    lk_cl_set_reason(reason, cap, "%s%s", "lk_opencl_api_load: api is NULL", "");
    return -1;
  }
  memset(api, 0, sizeof *api);
  if (reason != NULL && cap > 0) reason[0] = '\0';

  const char* names[2] = {"libOpenCL.so.1", "libOpenCL.so"};
  size_t name_count = 2;
  const char* env = getenv("LIGHTOS_OPENCL_LIBRARY");
  if (env != NULL && env[0] != '\0') {
    names[0] = env;
    name_count = 1;
  }

  void* lib = NULL;
  const char* opened = NULL;
  for (size_t i = 0; i < name_count && lib == NULL; ++i) {
    lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (lib != NULL) opened = names[i];
  }
  if (lib == NULL) {
    lk_cl_set_reason(reason, cap, "%s not found%s", names[0], "");
    return -1;
  }

  void* sym;
#define LK_OPENCL_RESOLVE_(ret, name, params)                                       \
  (void)dlerror();                                                                  \
  sym = dlsym(lib, #name);                                                          \
  if (sym == NULL) {                                                                \
    lk_cl_set_reason(reason, cap, "%s: symbol %s missing", opened, #name);          \
    dlclose(lib);                                                                   \
    memset(api, 0, sizeof *api);                                                    \
    return -1;                                                                      \
  }                                                                                 \
  memcpy(&api->name, &sym, sizeof sym);
  LK_OPENCL_SYMBOLS(LK_OPENCL_RESOLVE_)
#undef LK_OPENCL_RESOLVE_

  api->lib = lib;
  return 0;
}

void lk_opencl_api_unload(lk_opencl_api_t* api) {
  if (api == NULL) return;
  if (api->lib != NULL) dlclose(api->lib);
  memset(api, 0, sizeof *api);
}

static pthread_once_t lk_cl_global_once = PTHREAD_ONCE_INIT;
static lk_opencl_api_t lk_cl_global_api;
static int lk_cl_global_rc = -1;
static char lk_cl_global_reason[256];

static void lk_cl_global_init(void) {
  lk_cl_global_rc =
      lk_opencl_api_load(&lk_cl_global_api, lk_cl_global_reason, sizeof lk_cl_global_reason);
}

const lk_opencl_api_t* lk_opencl_api_get(char* reason, size_t cap) {
  pthread_once(&lk_cl_global_once, lk_cl_global_init);
  if (lk_cl_global_rc == 0) return &lk_cl_global_api;
  lk_cl_set_reason(reason, cap, "%s%s", lk_cl_global_reason, "");
  return NULL;
}

const char* lk_opencl_error_name(cl_int code) {
  switch (code) {
#define LK_CL_ERR_(name) \
  case name:             \
    return #name;
    LK_CL_ERR_(CL_SUCCESS)
    LK_CL_ERR_(CL_DEVICE_NOT_FOUND)
    LK_CL_ERR_(CL_DEVICE_NOT_AVAILABLE)
    LK_CL_ERR_(CL_COMPILER_NOT_AVAILABLE)
    LK_CL_ERR_(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    LK_CL_ERR_(CL_OUT_OF_RESOURCES)
    LK_CL_ERR_(CL_OUT_OF_HOST_MEMORY)
    LK_CL_ERR_(CL_PROFILING_INFO_NOT_AVAILABLE)
    LK_CL_ERR_(CL_MEM_COPY_OVERLAP)
    LK_CL_ERR_(CL_IMAGE_FORMAT_MISMATCH)
    LK_CL_ERR_(CL_IMAGE_FORMAT_NOT_SUPPORTED)
    LK_CL_ERR_(CL_BUILD_PROGRAM_FAILURE)
    LK_CL_ERR_(CL_MAP_FAILURE)
    LK_CL_ERR_(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    LK_CL_ERR_(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    LK_CL_ERR_(CL_COMPILE_PROGRAM_FAILURE)
    LK_CL_ERR_(CL_LINKER_NOT_AVAILABLE)
    LK_CL_ERR_(CL_LINK_PROGRAM_FAILURE)
    LK_CL_ERR_(CL_DEVICE_PARTITION_FAILED)
    LK_CL_ERR_(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    LK_CL_ERR_(CL_INVALID_VALUE)
    LK_CL_ERR_(CL_INVALID_DEVICE_TYPE)
    LK_CL_ERR_(CL_INVALID_PLATFORM)
    LK_CL_ERR_(CL_INVALID_DEVICE)
    LK_CL_ERR_(CL_INVALID_CONTEXT)
    LK_CL_ERR_(CL_INVALID_QUEUE_PROPERTIES)
    LK_CL_ERR_(CL_INVALID_COMMAND_QUEUE)
    LK_CL_ERR_(CL_INVALID_HOST_PTR)
    LK_CL_ERR_(CL_INVALID_MEM_OBJECT)
    LK_CL_ERR_(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    LK_CL_ERR_(CL_INVALID_IMAGE_SIZE)
    LK_CL_ERR_(CL_INVALID_SAMPLER)
    LK_CL_ERR_(CL_INVALID_BINARY)
    LK_CL_ERR_(CL_INVALID_BUILD_OPTIONS)
    LK_CL_ERR_(CL_INVALID_PROGRAM)
    LK_CL_ERR_(CL_INVALID_PROGRAM_EXECUTABLE)
    LK_CL_ERR_(CL_INVALID_KERNEL_NAME)
    LK_CL_ERR_(CL_INVALID_KERNEL_DEFINITION)
    LK_CL_ERR_(CL_INVALID_KERNEL)
    LK_CL_ERR_(CL_INVALID_ARG_INDEX)
    LK_CL_ERR_(CL_INVALID_ARG_VALUE)
    LK_CL_ERR_(CL_INVALID_ARG_SIZE)
    LK_CL_ERR_(CL_INVALID_KERNEL_ARGS)
    LK_CL_ERR_(CL_INVALID_WORK_DIMENSION)
    LK_CL_ERR_(CL_INVALID_WORK_GROUP_SIZE)
    LK_CL_ERR_(CL_INVALID_WORK_ITEM_SIZE)
    LK_CL_ERR_(CL_INVALID_GLOBAL_OFFSET)
    LK_CL_ERR_(CL_INVALID_EVENT_WAIT_LIST)
    LK_CL_ERR_(CL_INVALID_EVENT)
    LK_CL_ERR_(CL_INVALID_OPERATION)
    LK_CL_ERR_(CL_INVALID_GL_OBJECT)
    LK_CL_ERR_(CL_INVALID_BUFFER_SIZE)
    LK_CL_ERR_(CL_INVALID_MIP_LEVEL)
    LK_CL_ERR_(CL_INVALID_GLOBAL_WORK_SIZE)
    LK_CL_ERR_(CL_INVALID_PROPERTY)
    LK_CL_ERR_(CL_INVALID_IMAGE_DESCRIPTOR)
    LK_CL_ERR_(CL_INVALID_COMPILER_OPTIONS)
    LK_CL_ERR_(CL_INVALID_LINKER_OPTIONS)
    LK_CL_ERR_(CL_INVALID_DEVICE_PARTITION_COUNT)
    LK_CL_ERR_(CL_INVALID_PIPE_SIZE)
    LK_CL_ERR_(CL_INVALID_DEVICE_QUEUE)
    LK_CL_ERR_(CL_INVALID_SPEC_ID)
    LK_CL_ERR_(CL_MAX_SIZE_RESTRICTION_EXCEEDED)
    LK_CL_ERR_(CL_PLATFORM_NOT_FOUND_KHR)
#undef LK_CL_ERR_
    default:
      return "CL_UNKNOWN_ERROR";
  }
}
