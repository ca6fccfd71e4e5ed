/* The OpenCL backend's native GEMM: CLBlast (libclblast.so.1), loaded at
 * run time.  See opencl_blas.c. */
#ifndef LIGHTOS_HAL_OPENCL_BLAS_H
#define LIGHTOS_HAL_OPENCL_BLAS_H

#include "hal/opencl/opencl_backend.h"

/* The queue vtable's native_gemm (hal.h): LIGHTOS_UNSUPPORTED, nothing
 * raised and keep_alive still the caller's, when CLBlast is missing,
 * turned off (LIGHTOS_OPENCL_BLAS=0) or cannot do the case. */
lightos_status_t lk_cl_native_gemm(lk_hal_queue_t* queue, const lk_hal_gemm_t* gemm,
                                   lk_cmd_t* keep_alive);

/* How many GEMMs CLBlast has enqueued in this process (for tests). */
unsigned long long lk_cl_blas_call_count(void);

/* Whether CLBlast is loaded (loading it on first use); when not, why. */
bool lk_cl_blas_available(char* reason, size_t cap);

#endif
