/* The CUDA backend's native GEMM: cuBLAS, loaded at run time.
 *
 * As with the driver (cuda_symbols.h), LightOS never includes a cuBLAS
 * header and never links cuBLAS: the part of its C API that LightOS uses is
 * declared here (opaque handle, the enumerant values it passes, one X-macro
 * line per entry point) and the library is opened with dlopen on first use
 * (lk_cublas_api_get).  When it is missing, lk_cuda_native_gemm answers
 * LIGHTOS_UNSUPPORTED and the tensor op runs the portable kernel.
 */
#ifndef LIGHTOS_HAL_CUDA_BLAS_H
#define LIGHTOS_HAL_CUDA_BLAS_H

#include <stdint.h>

#include "hal/cuda/cuda_symbols.h"
#include "hal/hal.h"

/* ---- cuBLAS types and enumerant values (cublas_api.h, library_types.h) ---- */

typedef int cublasStatus_t;
typedef struct lk_cublasContext_st* cublasHandle_t;

#define CUBLAS_STATUS_SUCCESS 0
#define CUBLAS_STATUS_NOT_INITIALIZED 1
#define CUBLAS_STATUS_ALLOC_FAILED 3
#define CUBLAS_STATUS_INVALID_VALUE 7
#define CUBLAS_STATUS_ARCH_MISMATCH 8
#define CUBLAS_STATUS_MAPPING_ERROR 11
#define CUBLAS_STATUS_EXECUTION_FAILED 13
#define CUBLAS_STATUS_INTERNAL_ERROR 14
#define CUBLAS_STATUS_NOT_SUPPORTED 15
#define CUBLAS_STATUS_LICENSE_ERROR 16

/* cublasOperation_t */
#define CUBLAS_OP_N 0
#define CUBLAS_OP_T 1

/* cudaDataType */
#define CUDA_R_32F 0
#define CUDA_R_64F 1
#define CUDA_R_16F 2
#define CUDA_R_16BF 14

/* cublasComputeType_t */
#define CUBLAS_COMPUTE_32F 68
#define CUBLAS_COMPUTE_32F_FAST_TF32 77
#define CUBLAS_COMPUTE_64F 70

/* cublasGemmAlgo_t */
#define CUBLAS_GEMM_DEFAULT (-1)

/* cublasMath_t (flags) */
#define CUBLAS_DEFAULT_MATH 0
#define CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION 16

/* libraryPropertyType */
#define LK_CUBLAS_MAJOR_VERSION 0
#define LK_CUBLAS_MINOR_VERSION 1
#define LK_CUBLAS_PATCH_LEVEL 2

/* X(required, return type, exact symbol name, (parameters)).  Enum
 * parameters are passed as int (the C ABI of the enums). */
#define LK_CUBLAS_SYMBOLS(X)                                                                    \
  X(1, cublasStatus_t, cublasCreate_v2, (cublasHandle_t * handle))                              \
  X(1, cublasStatus_t, cublasDestroy_v2, (cublasHandle_t handle))                               \
  X(1, cublasStatus_t, cublasSetStream_v2, (cublasHandle_t handle, CUstream stream))            \
  X(1, cublasStatus_t, cublasSetMathMode, (cublasHandle_t handle, int mode))                    \
  X(1, cublasStatus_t, cublasGemmEx,                                                            \
    (cublasHandle_t handle, int transa, int transb, int m, int n, int k, const void* alpha,     \
     const void* A, int Atype, int lda, const void* B, int Btype, int ldb, const void* beta,    \
     void* C, int Ctype, int ldc, int compute_type, int algo))                                  \
  X(1, cublasStatus_t, cublasGemmStridedBatchedEx,                                              \
    (cublasHandle_t handle, int transa, int transb, int m, int n, int k, const void* alpha,     \
     const void* A, int Atype, int lda, long long strideA, const void* B, int Btype, int ldb,   \
     long long strideB, const void* beta, void* C, int Ctype, int ldc, long long strideC,       \
     int batch_count, int compute_type, int algo))                                              \
  X(0, cublasStatus_t, cublasGemmEx_64,                                                         \
    (cublasHandle_t handle, int transa, int transb, int64_t m, int64_t n, int64_t k,            \
     const void* alpha, const void* A, int Atype, int64_t lda, const void* B, int Btype,        \
     int64_t ldb, const void* beta, void* C, int Ctype, int64_t ldc, int compute_type,          \
     int algo))                                                                                 \
  X(0, cublasStatus_t, cublasGemmStridedBatchedEx_64,                                           \
    (cublasHandle_t handle, int transa, int transb, int64_t m, int64_t n, int64_t k,            \
     const void* alpha, const void* A, int Atype, int64_t lda, long long strideA,               \
     const void* B, int Btype, int64_t ldb, long long strideB, const void* beta, void* C,       \
     int Ctype, int64_t ldc, long long strideC, int64_t batch_count, int compute_type,          \
     int algo))                                                                                 \
  X(0, cublasStatus_t, cublasGetProperty, (int type, int* value))                               \
  X(0, const char*, cublasGetStatusName, (cublasStatus_t status))                               \
  X(0, const char*, cublasGetStatusString, (cublasStatus_t status))

typedef struct lk_cublas_api {
  void* lib;
  char path[256];         /* the library that was opened */
  int major, minor, patch; /* cublasGetProperty, 0 when unknown */
#define LK_CUBLAS_API_FIELD_(req, ret, name, params) ret(*name) params;
  LK_CUBLAS_SYMBOLS(LK_CUBLAS_API_FIELD_)
#undef LK_CUBLAS_API_FIELD_
} lk_cublas_api_t;

/* cuBLAS, loaded once per process (thread-safe) and never unloaded:
 * only the file named by LIGHTOS_CUBLAS_LIBRARY when that is set, else
 * libcublas.so.13, libcublas.so.12, libcublas.so, skipping a library whose
 * major version is newer than the CUDA driver supports.  NULL when none
 * loads (or LIGHTOS_CUDA_BLAS=0); reason then says why.  Needs the driver
 * loaded (lk_cuda_api_get) to compare versions; without it any version is
 * accepted. */
const lk_cublas_api_t* lk_cublas_api_get(char* reason, size_t cap);

/* "CUBLAS_STATUS_NOT_SUPPORTED" for 15 ...; never NULL. */
const char* lk_cublas_status_name(cublasStatus_t status);

/* The queue vtable's native_gemm (hal.h): the GEMM on the queue's stream
 * through cublasGemmEx / cublasGemmStridedBatchedEx with the queue's own
 * cuBLAS handle.  LIGHTOS_UNSUPPORTED (no error raised, keep_alive left to
 * the caller) when cuBLAS is missing or refuses the case. */
lightos_status_t lk_cuda_native_gemm(lk_hal_queue_t* queue, const lk_hal_gemm_t* gemm,
                                     lk_cmd_t* keep_alive);

/* Releases the queue's cuBLAS handle, if it has one.  For the queue's
 * destroy, once its work has finished and before its stream goes; the
 * context must still be alive.  (Without this call a handle stays until
 * the process ends, or until a queue at the same address reuses it.) */
void lk_cuda_blas_queue_destroyed(lk_hal_queue_t* queue);

/* GEMMs enqueued through cuBLAS so far (for tests and benchmarks). */
unsigned long long lk_cuda_blas_call_count(void);

#endif
