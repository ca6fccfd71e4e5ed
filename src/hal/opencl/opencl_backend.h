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

/* Work that a library enqueues on the queue's cl_command_queue itself
 * (CLBlast): fn(arg, queue, &event) runs in queue order, at the turn of
 * `keep_alive`, under the queue's lock, and sets the event of its last
 * enqueued command (NULL: nothing left to wait for).  It returns
 * LIGHTOS_UNSUPPORTED, raising nothing, when it refused the work before
 * enqueuing anything; any other failure is raised. */
typedef lightos_status_t (*lk_cl_native_fn)(void* arg, cl_command_queue queue, cl_event* event);

/* Submits native work.  When the queue can run it now and fn refuses,
 * returns LIGHTOS_UNSUPPORTED with nothing raised and keep_alive still the
 * caller's.  Otherwise the queue owns keep_alive and completes it after
 * the work (with fn's failure, or LIGHTOS_UNSUPPORTED raised when fn
 * refused once held back behind a wait).  arg is freed with free() in
 * every case. */
lightos_status_t lk_cl_queue_submit_native(lk_hal_queue_t* queue, lk_cmd_t* keep_alive,
                                           lk_cl_native_fn fn, void* arg);

#endif
