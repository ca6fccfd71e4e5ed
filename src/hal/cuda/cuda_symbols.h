/* LightOS's own declarations of the part of the CUDA driver API and of
 * NVRTC that the CUDA backend uses.
 *
 * LightOS never includes the CUDA headers and never links against
 * libcuda or libnvrtc: both are opened with dlopen at run time
 * (cuda_loader.h) and called through function pointers, so the library
 * builds and runs where no CUDA toolkit or driver is installed (the
 * backend then reports itself unavailable, with the reason).
 *
 * This header declares the opaque handle types, the enumerants LightOS
 * passes or reads (numeric values of the CUDA driver API, stable across
 * releases), and one X-macro line per entry point:
 *     X(required, return type, exact symbol name, (parameters))
 * from which cuda_loader.h generates the pointer tables and cuda_loader.c
 * the resolver.  Versioned driver symbols (cuMemAlloc_v2 ...) are named
 * exactly as the library exports them: what the CUDA headers' #defines
 * would have picked.  A missing required symbol makes the load fail; a
 * missing optional one (required = 0) leaves its pointer NULL.
 */
#ifndef LIGHTOS_HAL_CUDA_SYMBOLS_H
#define LIGHTOS_HAL_CUDA_SYMBOLS_H

#include <stddef.h>

/* ---- Driver API types ---------------------------------------------------- */

typedef int CUresult;              /* CUDA_SUCCESS = 0, CUDA_ERROR_* */
typedef int CUdevice;
typedef unsigned long long CUdeviceptr; /* CUdeviceptr_v2 on 64-bit hosts */
typedef struct lk_CUctx_st* CUcontext;
typedef struct lk_CUmod_st* CUmodule;
typedef struct lk_CUfunc_st* CUfunction;
typedef struct lk_CUstream_st* CUstream;
typedef struct lk_CUevent_st* CUevent;
typedef struct lk_CUuuid_st {
  char bytes[16];
} CUuuid;
typedef int CUdevice_attribute;
typedef int CUfunction_attribute;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_NOT_INITIALIZED 3
#define CUDA_ERROR_DEINITIALIZED 4
#define CUDA_ERROR_STUB_LIBRARY 34
#define CUDA_ERROR_INSUFFICIENT_DRIVER 35
#define CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER 36
#define CUDA_ERROR_DEVICE_UNAVAILABLE 46
#define CUDA_ERROR_NO_DEVICE 100
#define CUDA_ERROR_INVALID_DEVICE 101
#define CUDA_ERROR_DEVICE_NOT_LICENSED 102
#define CUDA_ERROR_INVALID_IMAGE 200
#define CUDA_ERROR_INVALID_CONTEXT 201
#define CUDA_ERROR_NO_BINARY_FOR_GPU 209
#define CUDA_ERROR_ECC_UNCORRECTABLE 214
#define CUDA_ERROR_PEER_ACCESS_UNSUPPORTED 217
#define CUDA_ERROR_INVALID_PTX 218
#define CUDA_ERROR_NVLINK_UNCORRECTABLE 220
#define CUDA_ERROR_JIT_COMPILER_NOT_FOUND 221
#define CUDA_ERROR_UNSUPPORTED_PTX_VERSION 222
#define CUDA_ERROR_JIT_COMPILATION_DISABLED 223
#define CUDA_ERROR_CONTAINED 226
#define CUDA_ERROR_INVALID_SOURCE 300
#define CUDA_ERROR_FILE_NOT_FOUND 301
#define CUDA_ERROR_OPERATING_SYSTEM 304
#define CUDA_ERROR_INVALID_HANDLE 400
#define CUDA_ERROR_NOT_FOUND 500
#define CUDA_ERROR_NOT_READY 600
#define CUDA_ERROR_ILLEGAL_ADDRESS 700
#define CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES 701
#define CUDA_ERROR_LAUNCH_TIMEOUT 702
#define CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED 704
#define CUDA_ERROR_PEER_ACCESS_NOT_ENABLED 705
#define CUDA_ERROR_CONTEXT_IS_DESTROYED 709
#define CUDA_ERROR_ASSERT 710
#define CUDA_ERROR_TOO_MANY_PEERS 711
#define CUDA_ERROR_HARDWARE_STACK_ERROR 714
#define CUDA_ERROR_ILLEGAL_INSTRUCTION 715
#define CUDA_ERROR_MISALIGNED_ADDRESS 716
#define CUDA_ERROR_INVALID_ADDRESS_SPACE 717
#define CUDA_ERROR_INVALID_PC 718
#define CUDA_ERROR_LAUNCH_FAILED 719
#define CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE 720
#define CUDA_ERROR_NOT_PERMITTED 800
#define CUDA_ERROR_NOT_SUPPORTED 801
#define CUDA_ERROR_SYSTEM_NOT_READY 802
#define CUDA_ERROR_SYSTEM_DRIVER_MISMATCH 803
#define CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE 804
#define CUDA_ERROR_TIMEOUT 909
#define CUDA_ERROR_UNKNOWN 999

/* CUdevice_attribute */
#define CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK 1
#define CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X 2
#define CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y 3
#define CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z 4
#define CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X 5
#define CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y 6
#define CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z 7
#define CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK 8
#define CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT 16
#define CU_DEVICE_ATTRIBUTE_INTEGRATED 18
#define CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY 19
#define CU_DEVICE_ATTRIBUTE_PCI_BUS_ID 33
#define CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID 34
#define CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING 41
#define CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID 50
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR 76
#define CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN 97
#define CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED 115

/* CUfunction_attribute */
#define CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK 0
#define CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES 1
#define CU_FUNC_ATTRIBUTE_NUM_REGS 4
#define CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES 8

/* Flags */
#define CU_STREAM_NON_BLOCKING 0x1u
#define CU_EVENT_DEFAULT 0x0u
#define CU_EVENT_BLOCKING_SYNC 0x1u
#define CU_EVENT_DISABLE_TIMING 0x2u
#define CU_MEMHOSTALLOC_PORTABLE 0x1u
#define CU_MEMHOSTALLOC_DEVICEMAP 0x2u

/* ---- NVRTC types ----------------------------------------------------------- */

typedef int nvrtcResult; /* NVRTC_SUCCESS = 0 */
typedef struct lk_nvrtcProgram_st* nvrtcProgram;
#define NVRTC_SUCCESS 0
#define NVRTC_ERROR_OUT_OF_MEMORY 1
#define NVRTC_ERROR_INVALID_OPTION 5
#define NVRTC_ERROR_COMPILATION 6

/* ---- Entry points ---------------------------------------------------------- */

#define LK_CUDA_DRIVER_SYMBOLS(X)                                                             \
  X(1, CUresult, cuInit, (unsigned int flags))                                                \
  X(1, CUresult, cuDriverGetVersion, (int* version))                                          \
  X(1, CUresult, cuGetErrorName, (CUresult error, const char** name))                         \
  X(1, CUresult, cuGetErrorString, (CUresult error, const char** text))                       \
  X(1, CUresult, cuDeviceGetCount, (int* count))                                              \
  X(1, CUresult, cuDeviceGet, (CUdevice* device, int ordinal))                                \
  X(1, CUresult, cuDeviceGetName, (char* name, int len, CUdevice dev))                        \
  X(1, CUresult, cuDeviceGetAttribute, (int* value, CUdevice_attribute attrib, CUdevice dev)) \
  X(1, CUresult, cuDeviceTotalMem_v2, (size_t* bytes, CUdevice dev))                          \
  X(1, CUresult, cuDeviceGetPCIBusId, (char* bus_id, int len, CUdevice dev))                  \
  X(0, CUresult, cuDeviceGetUuid_v2, (CUuuid* uuid, CUdevice dev))                            \
  X(1, CUresult, cuDeviceCanAccessPeer, (int* can_access, CUdevice dev, CUdevice peer))       \
  X(1, CUresult, cuDevicePrimaryCtxRetain, (CUcontext* ctx, CUdevice dev))                    \
  X(1, CUresult, cuDevicePrimaryCtxRelease_v2, (CUdevice dev))                                \
  X(1, CUresult, cuCtxSetCurrent, (CUcontext ctx))                                            \
  X(1, CUresult, cuCtxGetCurrent, (CUcontext* ctx))                                           \
  X(1, CUresult, cuCtxEnablePeerAccess, (CUcontext peer, unsigned int flags))                 \
  X(1, CUresult, cuMemAlloc_v2, (CUdeviceptr* dptr, size_t size))                             \
  X(1, CUresult, cuMemFree_v2, (CUdeviceptr dptr))                                            \
  X(0, CUresult, cuMemAllocAsync, (CUdeviceptr* dptr, size_t size, CUstream stream))          \
  X(0, CUresult, cuMemFreeAsync, (CUdeviceptr dptr, CUstream stream))                         \
  X(1, CUresult, cuMemHostAlloc, (void** ptr, size_t size, unsigned int flags))               \
  X(1, CUresult, cuMemFreeHost, (void* ptr))                                                  \
  X(1, CUresult, cuMemHostGetDevicePointer_v2,                                                \
    (CUdeviceptr* dptr, void* ptr, unsigned int flags))                                       \
  X(1, CUresult, cuMemcpyHtoDAsync_v2,                                                        \
    (CUdeviceptr dst, const void* src, size_t size, CUstream stream))                         \
  X(1, CUresult, cuMemcpyDtoHAsync_v2,                                                        \
    (void* dst, CUdeviceptr src, size_t size, CUstream stream))                               \
  X(1, CUresult, cuMemcpyDtoDAsync_v2,                                                        \
    (CUdeviceptr dst, CUdeviceptr src, size_t size, CUstream stream))                         \
  X(1, CUresult, cuMemcpyAsync, (CUdeviceptr dst, CUdeviceptr src, size_t size, CUstream stream)) \
  X(1, CUresult, cuMemcpyPeerAsync,                                                           \
    (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t size,     \
     CUstream stream))                                                                        \
  X(1, CUresult, cuMemsetD8Async,                                                             \
    (CUdeviceptr dst, unsigned char value, size_t count, CUstream stream))                    \
  X(1, CUresult, cuMemsetD16Async,                                                            \
    (CUdeviceptr dst, unsigned short value, size_t count, CUstream stream))                   \
  X(1, CUresult, cuMemsetD32Async,                                                            \
    (CUdeviceptr dst, unsigned int value, size_t count, CUstream stream))                     \
  X(1, CUresult, cuMemsetD2D32Async,                                                          \
    (CUdeviceptr dst, size_t pitch, unsigned int value, size_t width, size_t height,          \
     CUstream stream))                                                                        \
  X(1, CUresult, cuStreamCreate, (CUstream* stream, unsigned int flags))                      \
  X(1, CUresult, cuStreamDestroy_v2, (CUstream stream))                                       \
  X(1, CUresult, cuStreamSynchronize, (CUstream stream))                                      \
  X(1, CUresult, cuStreamQuery, (CUstream stream))                                            \
  X(1, CUresult, cuEventCreate, (CUevent* event, unsigned int flags))                         \
  X(1, CUresult, cuEventDestroy_v2, (CUevent event))                                          \
  X(1, CUresult, cuEventRecord, (CUevent event, CUstream stream))                             \
  X(1, CUresult, cuEventSynchronize, (CUevent event))                                         \
  X(1, CUresult, cuEventQuery, (CUevent event))                                               \
  X(0, CUresult, cuEventElapsedTime_v2, (float* ms, CUevent start, CUevent end))              \
  X(0, CUresult, cuEventElapsedTime, (float* ms, CUevent start, CUevent end))                 \
  X(1, CUresult, cuModuleLoadData, (CUmodule* module, const void* image))                     \
  X(1, CUresult, cuModuleUnload, (CUmodule module))                                           \
  X(1, CUresult, cuModuleGetFunction, (CUfunction* fn, CUmodule module, const char* name))    \
  X(1, CUresult, cuFuncGetAttribute, (int* value, CUfunction_attribute attrib, CUfunction fn)) \
  X(1, CUresult, cuFuncSetAttribute, (CUfunction fn, CUfunction_attribute attrib, int value)) \
  X(1, CUresult, cuLaunchKernel,                                                              \
    (CUfunction fn, unsigned int grid_x, unsigned int grid_y, unsigned int grid_z,            \
     unsigned int block_x, unsigned int block_y, unsigned int block_z,                        \
     unsigned int shared_mem_bytes, CUstream stream, void** params, void** extra))

#define LK_NVRTC_SYMBOLS(X)                                                                   \
  X(1, const char*, nvrtcGetErrorString, (nvrtcResult result))                                \
  X(1, nvrtcResult, nvrtcVersion, (int* major, int* minor))                                   \
  X(0, nvrtcResult, nvrtcGetNumSupportedArchs, (int* count))                                  \
  X(0, nvrtcResult, nvrtcGetSupportedArchs, (int* archs))                                     \
  X(1, nvrtcResult, nvrtcCreateProgram,                                                       \
    (nvrtcProgram* prog, const char* src, const char* name, int num_headers,                  \
     const char* const* headers, const char* const* include_names))                           \
  X(1, nvrtcResult, nvrtcDestroyProgram, (nvrtcProgram* prog))                                \
  X(1, nvrtcResult, nvrtcCompileProgram,                                                      \
    (nvrtcProgram prog, int num_options, const char* const* options))                         \
  X(1, nvrtcResult, nvrtcGetProgramLogSize, (nvrtcProgram prog, size_t* size))                \
  X(1, nvrtcResult, nvrtcGetProgramLog, (nvrtcProgram prog, char* log))                       \
  X(1, nvrtcResult, nvrtcGetPTXSize, (nvrtcProgram prog, size_t* size))                       \
  X(1, nvrtcResult, nvrtcGetPTX, (nvrtcProgram prog, char* ptx))                              \
  X(0, nvrtcResult, nvrtcGetCUBINSize, (nvrtcProgram prog, size_t* size))                     \
  X(0, nvrtcResult, nvrtcGetCUBIN, (nvrtcProgram prog, char* cubin))

#endif
