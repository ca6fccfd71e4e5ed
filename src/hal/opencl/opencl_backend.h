/* The OpenCL backend: every OpenCL device (PoCL, NVIDIA, AMD, Intel,
 * Mali ...) through libOpenCL.so.1 loaded at run time. */
#ifndef LIGHTOS_OPENCL_BACKEND_H
#define LIGHTOS_OPENCL_BACKEND_H

#include <pthread.h>

#include "hal/hal.h"
#include "hal/opencl/opencl_loader.h"

typedef struct lk_cl_device {
  lk_hal_device_t base;
  const lk_opencl_api_t* api;
  cl_platform_id platform;
  cl_device_id id;
  char platform_name[128];
} lk_cl_device_t;

typedef struct lk_cl_context {
  lk_hal_context_t base;
  lk_cl_device_t* device;
  const lk_opencl_api_t* api;
  cl_context ctx;
  /* Serialises clSetKernelArg + clEnqueueNDRangeKernel on shared
   * cl_kernel objects. */
  pthread_mutex_t launch_lock;
} lk_cl_context_t;

/* Raises an error for a failed OpenCL call. */
lightos_status_t lk_cl_fail(cl_int err, const char* call, const char* what);

lightos_status_t lk_cl_queue_create(lk_hal_context_t* context, uint32_t flags,
                                    lk_hal_queue_t** out_queue);
lightos_status_t lk_cl_program_build(lk_hal_context_t* context, const lk_program_src_t* src,
                                     lk_hal_build_result_t* out);
/* Sets the arguments of a launch and enqueues it (under launch_lock). */
lightos_status_t lk_cl_enqueue_launch(lk_cl_context_t* c, cl_command_queue q, lk_cmd_t* cmd,
                                      cl_event* out_event);

#endif
