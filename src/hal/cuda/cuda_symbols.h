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
 *     X(required, hip_required, return type, CUDA symbol, HIP symbol,
 *       (parameters))
 * from which cuda_loader.h generates the pointer tables and cuda_loader.c
 * the resolvers.  The HIP column is the AMD runtime's (libamdhip64, hiprtc)
 * spelling of the same call with the same C ABI, so that the HIP vendor
 * table (lk_hip_api_get) fills the same struct; LK_NO_HIP marks a call
 * HIP has no ABI-compatible twin for (its pointer stays NULL there).  Error
 * codes, stream/event/host-allocation flags and function attributes have
 * the same numeric values in both; device attributes do not (see
 * LK_HIP_ATTR_* below).  Versioned driver symbols (cuMemAlloc_v2 ...) are named
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
/* A context-independent library (CUDA 12.0+: cuLibraryLoadData) and one of
 * its kernels; a CUkernel cast to CUfunction launches in the context of the
 * stream it is launched on, whichever context is current. */
typedef struct lk_CUlib_st* CUlibrary;
typedef struct lk_CUkern_st* CUkernel;
typedef int CUjit_option;
typedef int CUlibraryOption;
typedef struct lk_CUstream_st* CUstream;
typedef struct lk_CUevent_st* CUevent;
typedef struct lk_CUuuid_st {
  char bytes[16];
} CUuuid;
typedef int CUdevice_attribute;
typedef struct lk_CUmempool_st* CUmemoryPool;
/* An exported device allocation (cuIpcGetMemHandle): 64 opaque bytes. */
typedef struct lk_CUipcMemHandle {
  char reserved[64];
} CUipcMemHandle;
#define CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS 0x1u
#define CU_MEMHOSTREGISTER_PORTABLE 0x1u
#define CU_MEMHOSTREGISTER_DEVICEMAP 0x2u
/* CUmemAccessDesc: a device (location type 1, id = ordinal) and its
 * access (3: read and write). */
typedef struct lk_CUmemAccessDesc {
  struct {
    int type;
    int id;
  } location;
  int flags;
} CUmemAccessDesc;
#define CU_MEM_LOCATION_TYPE_DEVICE 1
#define CU_MEM_ACCESS_FLAGS_PROT_READWRITE 3
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
/* Stream memory operations: wait until (int32_t)(*addr - value) >= 0;
 * a plain 32-bit write ordered after the stream's earlier work. */
#define CU_STREAM_WAIT_VALUE_GEQ 0x0u
#define CU_STREAM_WRITE_VALUE_DEFAULT 0x0u
/* One operation of cuStreamBatchMemOp (CUstreamBatchMemOpParams_v1: 48
 * bytes, the operation code first; wait and write share one layout). */
#define CU_STREAM_MEM_OP_WAIT_VALUE_32 1u
#define CU_STREAM_MEM_OP_WRITE_VALUE_32 2u
typedef union lk_CUstreamBatchMemOpParams {
  unsigned int operation;
  struct {
    unsigned int operation;
    CUdeviceptr address;
    union {
      unsigned int value;
      unsigned long long value64;
    } v;
    unsigned int flags;
    CUdeviceptr alias;
  } value; /* waitValue and writeValue */
  unsigned long long pad[6];
} CUstreamBatchMemOpParams;

/* hipDeviceAttribute_t values (ROCm >= 5.0 numbering, hip_runtime_api.h)
 * for the CU_DEVICE_ATTRIBUTE_* the backend reads; lk_hip_attr() maps. */
#define LK_HIP_ATTR_CAN_MAP_HOST_MEMORY 3
#define LK_HIP_ATTR_INTEGRATED 16
#define LK_HIP_ATTR_COMPUTE_CAPABILITY_MAJOR 23
#define LK_HIP_ATTR_MAX_BLOCK_DIM_X 26 /* Y 27, Z 28 */
#define LK_HIP_ATTR_MAX_GRID_DIM_X 29  /* Y 30, Z 31 */
#define LK_HIP_ATTR_MAX_THREADS_PER_BLOCK 56
#define LK_HIP_ATTR_COMPUTE_CAPABILITY_MINOR 61
#define LK_HIP_ATTR_MULTIPROCESSOR_COUNT 63
#define LK_HIP_ATTR_PCI_BUS_ID 67
#define LK_HIP_ATTR_PCI_DEVICE_ID 68
#define LK_HIP_ATTR_PCI_DOMAIN_ID 69
#define LK_HIP_ATTR_MAX_SHARED_MEMORY_PER_BLOCK 74
#define LK_HIP_ATTR_SHARED_MEM_PER_BLOCK_OPTIN 75
#define LK_HIP_ATTR_UNIFIED_ADDRESSING 85
#define LK_HIP_ATTR_MEMORY_POOLS_SUPPORTED 88

/* ---- NVRTC types ----------------------------------------------------------- */

typedef int nvrtcResult; /* NVRTC_SUCCESS = 0 */
typedef struct lk_nvrtcProgram_st* nvrtcProgram;
#define NVRTC_SUCCESS 0
#define NVRTC_ERROR_OUT_OF_MEMORY 1
#define NVRTC_ERROR_INVALID_OPTION 5
#define NVRTC_ERROR_COMPILATION 6

/* ---- Entry points ---------------------------------------------------------- */

#define LK_CUDA_DRIVER_SYMBOLS(X)                                                             \
  X(1, 1, CUresult, cuInit, hipInit, (unsigned int flags))                                    \
  X(1, 1, CUresult, cuDriverGetVersion, hipDriverGetVersion, (int* version))                  \
  X(1, 0, CUresult, cuGetErrorName, hipDrvGetErrorName, (CUresult error, const char** name))  \
  X(1, 0, CUresult, cuGetErrorString, hipDrvGetErrorString,                                   \
    (CUresult error, const char** text))                                                      \
  X(1, 1, CUresult, cuDeviceGetCount, hipGetDeviceCount, (int* count))                        \
  X(1, 1, CUresult, cuDeviceGet, hipDeviceGet, (CUdevice* device, int ordinal))               \
  X(1, 1, CUresult, cuDeviceGetName, hipDeviceGetName, (char* name, int len, CUdevice dev))   \
  X(1, 1, CUresult, cuDeviceGetAttribute, hipDeviceGetAttribute,                              \
    (int* value, CUdevice_attribute attrib, CUdevice dev))                                    \
  X(1, 1, CUresult, cuDeviceTotalMem_v2, hipDeviceTotalMem, (size_t* bytes, CUdevice dev))    \
  X(1, 1, CUresult, cuDeviceGetPCIBusId, hipDeviceGetPCIBusId,                                \
    (char* bus_id, int len, CUdevice dev))                                                    \
  X(0, 0, CUresult, cuDeviceGetUuid_v2, hipDeviceGetUuid, (CUuuid* uuid, CUdevice dev))       \
  X(1, 1, CUresult, cuDeviceCanAccessPeer, hipDeviceCanAccessPeer,                            \
    (int* can_access, CUdevice dev, CUdevice peer))                                           \
  X(1, 1, CUresult, cuDevicePrimaryCtxRetain, hipDevicePrimaryCtxRetain,                      \
    (CUcontext* ctx, CUdevice dev))                                                           \
  X(1, 1, CUresult, cuDevicePrimaryCtxRelease_v2, hipDevicePrimaryCtxRelease, (CUdevice dev)) \
  X(1, 1, CUresult, cuCtxSetCurrent, hipCtxSetCurrent, (CUcontext ctx))                       \
  X(1, 1, CUresult, cuCtxGetCurrent, hipCtxGetCurrent, (CUcontext* ctx))                      \
  X(1, 1, CUresult, cuCtxEnablePeerAccess, hipCtxEnablePeerAccess,                            \
    (CUcontext peer, unsigned int flags))                                                     \
  X(1, 1, CUresult, cuMemAlloc_v2, hipMalloc, (CUdeviceptr* dptr, size_t size))               \
  X(1, 1, CUresult, cuMemFree_v2, hipFree, (CUdeviceptr dptr))                                \
  X(0, 0, CUresult, cuMemAllocAsync, hipMallocAsync,                                          \
    (CUdeviceptr* dptr, size_t size, CUstream stream))                                        \
  X(0, 0, CUresult, cuMemFreeAsync, hipFreeAsync, (CUdeviceptr dptr, CUstream stream))        \
  X(0, 0, CUresult, cuDeviceGetMemPool, LK_NO_HIP, (CUmemoryPool* pool, CUdevice dev))      \
  X(0, 0, CUresult, cuMemPoolSetAccess, LK_NO_HIP,                                            \
    (CUmemoryPool pool, const CUmemAccessDesc* map, size_t count))                            \
  X(1, 1, CUresult, cuMemHostAlloc, hipHostMalloc,                                            \
    (void** ptr, size_t size, unsigned int flags))                                            \
  X(1, 1, CUresult, cuMemFreeHost, hipHostFree, (void* ptr))                                  \
  X(0, 0, CUresult, cuMemHostRegister_v2, LK_NO_HIP,                                          \
    (void* ptr, size_t size, unsigned int flags))                                             \
  X(0, 0, CUresult, cuMemHostUnregister, LK_NO_HIP, (void* ptr))                              \
  X(0, 0, CUresult, cuIpcGetMemHandle, LK_NO_HIP, (CUipcMemHandle* handle, CUdeviceptr dptr)) \
  X(0, 0, CUresult, cuIpcOpenMemHandle_v2, LK_NO_HIP,                                         \
    (CUdeviceptr* dptr, CUipcMemHandle handle, unsigned int flags))                           \
  X(0, 0, CUresult, cuIpcCloseMemHandle, LK_NO_HIP, (CUdeviceptr dptr))                       \
  X(1, 1, CUresult, cuMemHostGetDevicePointer_v2, hipHostGetDevicePointer,                    \
    (CUdeviceptr* dptr, void* ptr, unsigned int flags))                                       \
  X(1, 1, CUresult, cuMemcpyHtoDAsync_v2, hipMemcpyHtoDAsync,                                 \
    (CUdeviceptr dst, const void* src, size_t size, CUstream stream))                         \
  X(1, 1, CUresult, cuMemcpyDtoHAsync_v2, hipMemcpyDtoHAsync,                                 \
    (void* dst, CUdeviceptr src, size_t size, CUstream stream))                               \
  X(1, 1, CUresult, cuMemcpyDtoDAsync_v2, hipMemcpyDtoDAsync,                                 \
    (CUdeviceptr dst, CUdeviceptr src, size_t size, CUstream stream))                         \
  X(1, 0, CUresult, cuMemcpyAsync, LK_NO_HIP,                                                 \
    (CUdeviceptr dst, CUdeviceptr src, size_t size, CUstream stream))                         \
  X(1, 0, CUresult, cuMemcpyPeerAsync, LK_NO_HIP,                                             \
    (CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t size,     \
     CUstream stream))                                                                        \
  X(1, 1, CUresult, cuMemsetD8Async, hipMemsetD8Async,                                        \
    (CUdeviceptr dst, unsigned char value, size_t count, CUstream stream))                    \
  X(1, 1, CUresult, cuMemsetD16Async, hipMemsetD16Async,                                      \
    (CUdeviceptr dst, unsigned short value, size_t count, CUstream stream))                   \
  X(1, 1, CUresult, cuMemsetD32Async, hipMemsetD32Async,                                      \
    (CUdeviceptr dst, unsigned int value, size_t count, CUstream stream))                     \
  X(1, 0, CUresult, cuMemsetD2D32Async, LK_NO_HIP,                                            \
    (CUdeviceptr dst, size_t pitch, unsigned int value, size_t width, size_t height,          \
     CUstream stream))                                                                        \
  X(1, 1, CUresult, cuStreamCreate, hipStreamCreateWithFlags,                                 \
    (CUstream* stream, unsigned int flags))                                                   \
  X(1, 1, CUresult, cuStreamDestroy_v2, hipStreamDestroy, (CUstream stream))                  \
  X(1, 1, CUresult, cuStreamSynchronize, hipStreamSynchronize, (CUstream stream))             \
  X(1, 1, CUresult, cuStreamQuery, hipStreamQuery, (CUstream stream))                         \
  X(0, 0, CUresult, cuStreamWaitValue32_v2, LK_NO_HIP,                                        \
    (CUstream stream, CUdeviceptr addr, unsigned int value, unsigned int flags))              \
  X(0, 0, CUresult, cuStreamWriteValue32_v2, LK_NO_HIP,                                       \
    (CUstream stream, CUdeviceptr addr, unsigned int value, unsigned int flags))              \
  X(0, 0, CUresult, cuStreamBatchMemOp_v2, LK_NO_HIP,                                         \
    (CUstream stream, unsigned int count, CUstreamBatchMemOpParams* params, unsigned int flags)) \
  X(1, 1, CUresult, cuEventCreate, hipEventCreateWithFlags,                                   \
    (CUevent* event, unsigned int flags))                                                     \
  X(1, 1, CUresult, cuEventDestroy_v2, hipEventDestroy, (CUevent event))                      \
  X(1, 1, CUresult, cuEventRecord, hipEventRecord, (CUevent event, CUstream stream))          \
  X(1, 1, CUresult, cuEventSynchronize, hipEventSynchronize, (CUevent event))                 \
  X(1, 1, CUresult, cuEventQuery, hipEventQuery, (CUevent event))                             \
  X(0, 0, CUresult, cuEventElapsedTime_v2, LK_NO_HIP, (float* ms, CUevent start, CUevent end)) \
  X(0, 0, CUresult, cuEventElapsedTime, hipEventElapsedTime,                                  \
    (float* ms, CUevent start, CUevent end))                                                  \
  X(1, 1, CUresult, cuModuleLoadData, hipModuleLoadData,                                      \
    (CUmodule* module, const void* image))                                                    \
  X(1, 1, CUresult, cuModuleUnload, hipModuleUnload, (CUmodule module))                       \
  X(1, 1, CUresult, cuModuleGetFunction, hipModuleGetFunction,                                \
    (CUfunction* fn, CUmodule module, const char* name))                                      \
  X(0, 0, CUresult, cuLibraryLoadData, LK_NO_HIP,                                            \
    (CUlibrary* library, const void* code, CUjit_option* jit_options, void** jit_values,      \
     unsigned int num_jit_options, CUlibraryOption* library_options, void** library_values,   \
     unsigned int num_library_options))                                                       \
  X(0, 0, CUresult, cuLibraryUnload, LK_NO_HIP, (CUlibrary library))                          \
  X(0, 0, CUresult, cuLibraryGetKernel, LK_NO_HIP,                                            \
    (CUkernel* kernel, CUlibrary library, const char* name))                                  \
  X(0, 0, CUresult, cuKernelGetFunction, LK_NO_HIP, (CUfunction* fn, CUkernel kernel))        \
  X(1, 0, CUresult, cuFuncGetAttribute, hipFuncGetAttribute,                                  \
    (int* value, CUfunction_attribute attrib, CUfunction fn))                                 \
  X(1, 0, CUresult, cuFuncSetAttribute, LK_NO_HIP,                                            \
    (CUfunction fn, CUfunction_attribute attrib, int value))                                  \
  X(1, 1, CUresult, cuLaunchKernel, hipModuleLaunchKernel,                                    \
    (CUfunction fn, unsigned int grid_x, unsigned int grid_y, unsigned int grid_z,            \
     unsigned int block_x, unsigned int block_y, unsigned int block_z,                        \
     unsigned int shared_mem_bytes, CUstream stream, void** params, void** extra))

#define LK_NVRTC_SYMBOLS(X)                                                                   \
  X(1, 1, const char*, nvrtcGetErrorString, hiprtcGetErrorString, (nvrtcResult result))       \
  X(1, 1, nvrtcResult, nvrtcVersion, hiprtcVersion, (int* major, int* minor))                 \
  X(0, 0, nvrtcResult, nvrtcGetNumSupportedArchs, LK_NO_HIP, (int* count))                    \
  X(0, 0, nvrtcResult, nvrtcGetSupportedArchs, LK_NO_HIP, (int* archs))                       \
  X(1, 1, nvrtcResult, nvrtcCreateProgram, hiprtcCreateProgram,                               \
    (nvrtcProgram* prog, const char* src, const char* name, int num_headers,                  \
     const char* const* headers, const char* const* include_names))                           \
  X(1, 1, nvrtcResult, nvrtcDestroyProgram, hiprtcDestroyProgram, (nvrtcProgram* prog))       \
  X(1, 1, nvrtcResult, nvrtcCompileProgram, hiprtcCompileProgram,                             \
    (nvrtcProgram prog, int num_options, const char* const* options))                         \
  X(1, 1, nvrtcResult, nvrtcGetProgramLogSize, hiprtcGetProgramLogSize,                       \
    (nvrtcProgram prog, size_t* size))                                                        \
  X(1, 1, nvrtcResult, nvrtcGetProgramLog, hiprtcGetProgramLog,                               \
    (nvrtcProgram prog, char* log))                                                           \
  X(1, 0, nvrtcResult, nvrtcGetPTXSize, LK_NO_HIP, (nvrtcProgram prog, size_t* size))         \
  X(1, 0, nvrtcResult, nvrtcGetPTX, LK_NO_HIP, (nvrtcProgram prog, char* ptx))                \
  X(0, 1, nvrtcResult, nvrtcGetCUBINSize, hiprtcGetCodeSize,                                  \
    (nvrtcProgram prog, size_t* size))                                                        \
  X(0, 1, nvrtcResult, nvrtcGetCUBIN, hiprtcGetCode, (nvrtcProgram prog, char* cubin))

#endif
