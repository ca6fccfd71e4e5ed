/* The CPU backend: the host as a LightOS device.  Kernels are compiled by
 * the system C compiler into shared objects (cpu_program.c); work-groups run
 * on a per-device thread pool (cpu_queue.c). */
#ifndef LIGHTOS_CPU_BACKEND_H
#define LIGHTOS_CPU_BACKEND_H

#include <pthread.h>

#include "core/pool.h"
#include "hal/hal.h"

typedef struct lk_cpu_device {
  lk_hal_device_t base;
  unsigned threads;
  pthread_mutex_t pool_lock;
  lk_pool_t* pool;      /* created with the first context */
} lk_cpu_device_t;

typedef struct lk_cpu_context {
  lk_hal_context_t base;
  lk_cpu_device_t* device;
} lk_cpu_context_t;

lightos_status_t lk_cpu_queue_create(lk_hal_context_t* context, uint32_t flags,
                                     lk_hal_queue_t** out_queue);
lightos_status_t lk_cpu_program_build(lk_hal_context_t* context, const lk_program_src_t* src,
                                      lk_hal_build_result_t* out);
/* The queue's native_gemm (cpu_blas.c): OpenBLAS loaded at run time, run
 * as a host command in queue order; LIGHTOS_UNSUPPORTED when OpenBLAS is
 * absent or for f16/bf16. */
lightos_status_t lk_cpu_native_gemm(lk_hal_queue_t* queue, const lk_hal_gemm_t* gemm,
                                    lk_cmd_t* keep_alive);
/* GEMM commands run through the library so far (tests check the path). */
unsigned long long lk_cpu_blas_call_count(void);
/* Runs a kernel launch command on the device's pool (blocking). */
lightos_status_t lk_cpu_run_kernel(lk_cpu_device_t* dev, lk_cmd_t* cmd);

#endif
