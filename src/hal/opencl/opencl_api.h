/* LightOS's own declarations of the part of the OpenCL 1.2 host API it uses.
 *
 * LightOS never links against libOpenCL: the OpenCL backend (and the
 * benchmarks) load it at run time with dlopen (opencl_loader.h) and call it
 * through function pointers.  So this header only declares types, the
 * enumerants LightOS passes or reads, and the table of the entry points
 * (LK_OPENCL_SYMBOLS) from which the loader builds its pointer table.  The
 * numeric values are those of the OpenCL 1.2 specification (plus a few
 * extension enumerants, marked as such, that LightOS queries when present).
 *
 * Nothing here clashes with the Khronos headers' macros except the CL_*
 * names themselves: do not include both in one translation unit.
 */
#ifndef LIGHTOS_HAL_OPENCL_API_H
#define LIGHTOS_HAL_OPENCL_API_H

#include <stddef.h>
#include <stdint.h>

/* ---- Scalar types ------------------------------------------------------ */

typedef int8_t cl_char;
typedef uint8_t cl_uchar;
typedef int16_t cl_short;
typedef uint16_t cl_ushort;
typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef int64_t cl_long;
typedef uint64_t cl_ulong;
typedef float cl_float;
typedef double cl_double;

typedef cl_uint cl_bool;
typedef cl_ulong cl_bitfield;

/* ---- Opaque object handles --------------------------------------------- */

typedef struct lk_cl_platform_s* cl_platform_id;
typedef struct lk_cl_device_s* cl_device_id;
typedef struct lk_cl_context_s* cl_context;
typedef struct lk_cl_command_queue_s* cl_command_queue;
typedef struct lk_cl_mem_s* cl_mem;
typedef struct lk_cl_program_s* cl_program;
typedef struct lk_cl_kernel_s* cl_kernel;
typedef struct lk_cl_event_s* cl_event;

/* ---- Enumeration and bitfield types ------------------------------------ */

typedef cl_bitfield cl_device_type;
typedef cl_uint cl_platform_info;
typedef cl_uint cl_device_info;
typedef cl_bitfield cl_device_fp_config;
typedef cl_bitfield cl_device_exec_capabilities;
typedef cl_bitfield cl_command_queue_properties;
typedef intptr_t cl_context_properties;
typedef cl_uint cl_context_info;
typedef cl_uint cl_command_queue_info;
typedef cl_bitfield cl_mem_flags;
typedef cl_bitfield cl_map_flags;
typedef cl_uint cl_mem_info;
typedef cl_uint cl_program_info;
typedef cl_uint cl_program_build_info;
typedef cl_int cl_build_status;
typedef cl_uint cl_program_binary_type;
typedef cl_uint cl_kernel_info;
typedef cl_uint cl_kernel_work_group_info;
typedef cl_uint cl_event_info;
typedef cl_uint cl_command_type;
typedef cl_uint cl_profiling_info;

/* Callbacks.  (On the platforms LightOS supports the OpenCL calling
 * convention is the default C one.) */
typedef void (*lk_cl_context_notify_fn)(const char* errinfo, const void* private_info,
                                        size_t cb, void* user_data);
typedef void (*lk_cl_build_notify_fn)(cl_program program, void* user_data);

/* ---- Booleans ---------------------------------------------------------- */

#define CL_FALSE 0u
#define CL_TRUE 1u
#define CL_BLOCKING CL_TRUE
#define CL_NON_BLOCKING CL_FALSE

/* ---- Error codes (negative) -------------------------------------------- */

#define CL_SUCCESS 0
#define CL_DEVICE_NOT_FOUND (-1)
#define CL_DEVICE_NOT_AVAILABLE (-2)
#define CL_COMPILER_NOT_AVAILABLE (-3)
#define CL_MEM_OBJECT_ALLOCATION_FAILURE (-4)
#define CL_OUT_OF_RESOURCES (-5)
#define CL_OUT_OF_HOST_MEMORY (-6)
#define CL_PROFILING_INFO_NOT_AVAILABLE (-7)
#define CL_MEM_COPY_OVERLAP (-8)
#define CL_IMAGE_FORMAT_MISMATCH (-9)
#define CL_IMAGE_FORMAT_NOT_SUPPORTED (-10)
#define CL_BUILD_PROGRAM_FAILURE (-11)
#define CL_MAP_FAILURE (-12)
#define CL_MISALIGNED_SUB_BUFFER_OFFSET (-13)
#define CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST (-14)
#define CL_COMPILE_PROGRAM_FAILURE (-15)
#define CL_LINKER_NOT_AVAILABLE (-16)
#define CL_LINK_PROGRAM_FAILURE (-17)
#define CL_DEVICE_PARTITION_FAILED (-18)
#define CL_KERNEL_ARG_INFO_NOT_AVAILABLE (-19)

#define CL_INVALID_VALUE (-30)
#define CL_INVALID_DEVICE_TYPE (-31)
#define CL_INVALID_PLATFORM (-32)
#define CL_INVALID_DEVICE (-33)
#define CL_INVALID_CONTEXT (-34)
#define CL_INVALID_QUEUE_PROPERTIES (-35)
#define CL_INVALID_COMMAND_QUEUE (-36)
#define CL_INVALID_HOST_PTR (-37)
#define CL_INVALID_MEM_OBJECT (-38)
#define CL_INVALID_IMAGE_FORMAT_DESCRIPTOR (-39)
#define CL_INVALID_IMAGE_SIZE (-40)
#define CL_INVALID_SAMPLER (-41)
#define CL_INVALID_BINARY (-42)
#define CL_INVALID_BUILD_OPTIONS (-43)
#define CL_INVALID_PROGRAM (-44)
#define CL_INVALID_PROGRAM_EXECUTABLE (-45)
#define CL_INVALID_KERNEL_NAME (-46)
#define CL_INVALID_KERNEL_DEFINITION (-47)
#define CL_INVALID_KERNEL (-48)
#define CL_INVALID_ARG_INDEX (-49)
#define CL_INVALID_ARG_VALUE (-50)
#define CL_INVALID_ARG_SIZE (-51)
#define CL_INVALID_KERNEL_ARGS (-52)
#define CL_INVALID_WORK_DIMENSION (-53)
#define CL_INVALID_WORK_GROUP_SIZE (-54)
#define CL_INVALID_WORK_ITEM_SIZE (-55)
#define CL_INVALID_GLOBAL_OFFSET (-56)
#define CL_INVALID_EVENT_WAIT_LIST (-57)
#define CL_INVALID_EVENT (-58)
#define CL_INVALID_OPERATION (-59)
#define CL_INVALID_GL_OBJECT (-60)
#define CL_INVALID_BUFFER_SIZE (-61)
#define CL_INVALID_MIP_LEVEL (-62)
#define CL_INVALID_GLOBAL_WORK_SIZE (-63)
#define CL_INVALID_PROPERTY (-64)
#define CL_INVALID_IMAGE_DESCRIPTOR (-65)
#define CL_INVALID_COMPILER_OPTIONS (-66)
#define CL_INVALID_LINKER_OPTIONS (-67)
#define CL_INVALID_DEVICE_PARTITION_COUNT (-68)
/* Later core versions, returned by newer drivers. */
#define CL_INVALID_PIPE_SIZE (-69)
#define CL_INVALID_DEVICE_QUEUE (-70)
#define CL_INVALID_SPEC_ID (-71)
#define CL_MAX_SIZE_RESTRICTION_EXCEEDED (-72)
/* cl_khr_icd: the ICD loader found no platform. */
#define CL_PLATFORM_NOT_FOUND_KHR (-1001)

/* ---- Platforms --------------------------------------------------------- */

#define CL_PLATFORM_PROFILE 0x0900u
#define CL_PLATFORM_VERSION 0x0901u
#define CL_PLATFORM_NAME 0x0902u
#define CL_PLATFORM_VENDOR 0x0903u
#define CL_PLATFORM_EXTENSIONS 0x0904u

/* ---- Device types (cl_device_type) ------------------------------------- */

#define CL_DEVICE_TYPE_DEFAULT ((cl_device_type)1 << 0)
#define CL_DEVICE_TYPE_CPU ((cl_device_type)1 << 1)
#define CL_DEVICE_TYPE_GPU ((cl_device_type)1 << 2)
#define CL_DEVICE_TYPE_ACCELERATOR ((cl_device_type)1 << 3)
#define CL_DEVICE_TYPE_CUSTOM ((cl_device_type)1 << 4)
#define CL_DEVICE_TYPE_ALL ((cl_device_type)0xFFFFFFFFu)

/* ---- Device info (cl_device_info) -------------------------------------- */

#define CL_DEVICE_TYPE 0x1000u                    /* cl_device_type */
#define CL_DEVICE_VENDOR_ID 0x1001u               /* cl_uint */
#define CL_DEVICE_MAX_COMPUTE_UNITS 0x1002u       /* cl_uint */
#define CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS 0x1003u /* cl_uint */
#define CL_DEVICE_MAX_WORK_GROUP_SIZE 0x1004u     /* size_t */
#define CL_DEVICE_MAX_WORK_ITEM_SIZES 0x1005u     /* size_t[dims] */
#define CL_DEVICE_MAX_CLOCK_FREQUENCY 0x100Cu     /* cl_uint, MHz */
#define CL_DEVICE_ADDRESS_BITS 0x100Du            /* cl_uint */
#define CL_DEVICE_MAX_MEM_ALLOC_SIZE 0x1010u      /* cl_ulong */
#define CL_DEVICE_MEM_BASE_ADDR_ALIGN 0x1019u     /* cl_uint, bits */
#define CL_DEVICE_SINGLE_FP_CONFIG 0x101Bu        /* cl_device_fp_config */
#define CL_DEVICE_GLOBAL_MEM_CACHELINE_SIZE 0x101Du /* cl_uint */
#define CL_DEVICE_GLOBAL_MEM_CACHE_SIZE 0x101Eu   /* cl_ulong */
#define CL_DEVICE_GLOBAL_MEM_SIZE 0x101Fu         /* cl_ulong */
#define CL_DEVICE_MAX_CONSTANT_BUFFER_SIZE 0x1020u /* cl_ulong */
#define CL_DEVICE_MAX_CONSTANT_ARGS 0x1021u       /* cl_uint */
#define CL_DEVICE_LOCAL_MEM_TYPE 0x1022u          /* cl_uint: 1 local, 2 global */
#define CL_DEVICE_LOCAL_MEM_SIZE 0x1023u          /* cl_ulong */
#define CL_DEVICE_ERROR_CORRECTION_SUPPORT 0x1024u /* cl_bool */
#define CL_DEVICE_PROFILING_TIMER_RESOLUTION 0x1025u /* size_t, ns */
#define CL_DEVICE_ENDIAN_LITTLE 0x1026u           /* cl_bool */
#define CL_DEVICE_AVAILABLE 0x1027u               /* cl_bool */
#define CL_DEVICE_COMPILER_AVAILABLE 0x1028u      /* cl_bool */
#define CL_DEVICE_EXECUTION_CAPABILITIES 0x1029u  /* cl_device_exec_capabilities */
#define CL_DEVICE_QUEUE_PROPERTIES 0x102Au        /* cl_command_queue_properties */
#define CL_DEVICE_NAME 0x102Bu                    /* char[] */
#define CL_DEVICE_VENDOR 0x102Cu                  /* char[] */
#define CL_DRIVER_VERSION 0x102Du                 /* char[] */
#define CL_DEVICE_PROFILE 0x102Eu                 /* char[] */
#define CL_DEVICE_VERSION 0x102Fu                 /* char[] */
#define CL_DEVICE_EXTENSIONS 0x1030u              /* char[] */
#define CL_DEVICE_PLATFORM 0x1031u                /* cl_platform_id */
#define CL_DEVICE_DOUBLE_FP_CONFIG 0x1032u        /* cl_device_fp_config */
#define CL_DEVICE_HALF_FP_CONFIG 0x1033u          /* cl_device_fp_config (cl_khr_fp16) */
#define CL_DEVICE_HOST_UNIFIED_MEMORY 0x1035u     /* cl_bool */
#define CL_DEVICE_OPENCL_C_VERSION 0x103Du        /* char[] */
#define CL_DEVICE_LINKER_AVAILABLE 0x103Eu        /* cl_bool */
#define CL_DEVICE_PRINTF_BUFFER_SIZE 0x1049u      /* size_t */
/* Extension queries (the driver answers CL_INVALID_VALUE when absent). */
#define CL_DEVICE_PCI_BUS_INFO_KHR 0x410Fu        /* lk_cl_device_pci_bus_info_t */
#define CL_DEVICE_PCI_BUS_ID_NV 0x4008u           /* cl_uint (cl_nv_device_attribute_query) */
#define CL_DEVICE_PCI_SLOT_ID_NV 0x4009u          /* cl_uint */
#define CL_DEVICE_PCI_DOMAIN_ID_NV 0x400Au        /* cl_uint */

/* cl_khr_pci_bus_info's answer. */
typedef struct lk_cl_device_pci_bus_info {
  cl_uint pci_domain;
  cl_uint pci_bus;
  cl_uint pci_device;
  cl_uint pci_function;
} lk_cl_device_pci_bus_info_t;

/* cl_device_fp_config bits. */
#define CL_FP_DENORM ((cl_device_fp_config)1 << 0)
#define CL_FP_INF_NAN ((cl_device_fp_config)1 << 1)
#define CL_FP_ROUND_TO_NEAREST ((cl_device_fp_config)1 << 2)
#define CL_FP_ROUND_TO_ZERO ((cl_device_fp_config)1 << 3)
#define CL_FP_ROUND_TO_INF ((cl_device_fp_config)1 << 4)
#define CL_FP_FMA ((cl_device_fp_config)1 << 5)
#define CL_FP_SOFT_FLOAT ((cl_device_fp_config)1 << 6)
#define CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT ((cl_device_fp_config)1 << 7)

/* ---- Contexts ---------------------------------------------------------- */

#define CL_CONTEXT_REFERENCE_COUNT 0x1080u
#define CL_CONTEXT_DEVICES 0x1081u
#define CL_CONTEXT_PROPERTIES 0x1082u
#define CL_CONTEXT_NUM_DEVICES 0x1083u
#define CL_CONTEXT_PLATFORM 0x1084u  /* property key: the cl_platform_id follows */

/* ---- Command queues (cl_command_queue_properties) ---------------------- */

#define CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE ((cl_command_queue_properties)1 << 0)
#define CL_QUEUE_PROFILING_ENABLE ((cl_command_queue_properties)1 << 1)

/* ---- Memory objects ---------------------------------------------------- */

#define CL_MEM_READ_WRITE ((cl_mem_flags)1 << 0)
#define CL_MEM_WRITE_ONLY ((cl_mem_flags)1 << 1)
#define CL_MEM_READ_ONLY ((cl_mem_flags)1 << 2)
#define CL_MEM_USE_HOST_PTR ((cl_mem_flags)1 << 3)
#define CL_MEM_ALLOC_HOST_PTR ((cl_mem_flags)1 << 4)
#define CL_MEM_COPY_HOST_PTR ((cl_mem_flags)1 << 5)
#define CL_MEM_HOST_WRITE_ONLY ((cl_mem_flags)1 << 7)
#define CL_MEM_HOST_READ_ONLY ((cl_mem_flags)1 << 8)
#define CL_MEM_HOST_NO_ACCESS ((cl_mem_flags)1 << 9)

#define CL_MAP_READ ((cl_map_flags)1 << 0)
#define CL_MAP_WRITE ((cl_map_flags)1 << 1)
#define CL_MAP_WRITE_INVALIDATE_REGION ((cl_map_flags)1 << 2)

/* ---- Programs ---------------------------------------------------------- */

#define CL_PROGRAM_REFERENCE_COUNT 0x1160u
#define CL_PROGRAM_CONTEXT 0x1161u
#define CL_PROGRAM_NUM_DEVICES 0x1162u
#define CL_PROGRAM_DEVICES 0x1163u
#define CL_PROGRAM_SOURCE 0x1164u
#define CL_PROGRAM_BINARY_SIZES 0x1165u  /* size_t[num_devices] */
#define CL_PROGRAM_BINARIES 0x1166u      /* unsigned char*[num_devices] */
#define CL_PROGRAM_NUM_KERNELS 0x1167u
#define CL_PROGRAM_KERNEL_NAMES 0x1168u

#define CL_PROGRAM_BUILD_STATUS 0x1181u  /* cl_build_status */
#define CL_PROGRAM_BUILD_OPTIONS 0x1182u
#define CL_PROGRAM_BUILD_LOG 0x1183u     /* char[] */
#define CL_PROGRAM_BINARY_TYPE 0x1184u

#define CL_BUILD_SUCCESS 0
#define CL_BUILD_NONE (-1)
#define CL_BUILD_ERROR (-2)
#define CL_BUILD_IN_PROGRESS (-3)

/* ---- Kernels ----------------------------------------------------------- */

#define CL_KERNEL_FUNCTION_NAME 0x1190u
#define CL_KERNEL_NUM_ARGS 0x1191u

#define CL_KERNEL_WORK_GROUP_SIZE 0x11B0u                  /* size_t */
#define CL_KERNEL_COMPILE_WORK_GROUP_SIZE 0x11B1u          /* size_t[3] */
#define CL_KERNEL_LOCAL_MEM_SIZE 0x11B2u                   /* cl_ulong */
#define CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE 0x11B3u /* size_t */
#define CL_KERNEL_PRIVATE_MEM_SIZE 0x11B4u                 /* cl_ulong */

/* ---- Events and profiling ---------------------------------------------- */

#define CL_EVENT_COMMAND_QUEUE 0x11D0u
#define CL_EVENT_COMMAND_TYPE 0x11D1u
#define CL_EVENT_REFERENCE_COUNT 0x11D2u
#define CL_EVENT_COMMAND_EXECUTION_STATUS 0x11D3u  /* cl_int: a status below or an error */
#define CL_EVENT_CONTEXT 0x11D4u

#define CL_COMPLETE 0x0
#define CL_RUNNING 0x1
#define CL_SUBMITTED 0x2
#define CL_QUEUED 0x3

#define CL_PROFILING_COMMAND_QUEUED 0x1280u  /* cl_ulong, ns */
#define CL_PROFILING_COMMAND_SUBMIT 0x1281u
#define CL_PROFILING_COMMAND_START 0x1282u
#define CL_PROFILING_COMMAND_END 0x1283u

/* ---- Entry points ------------------------------------------------------ *
 * One X(return type, name, (parameters)) per OpenCL function LightOS calls.
 * The loader declares a pointer per line (lk_opencl_api_t) and resolves each
 * by name; adding a line here is all it takes to use another function. */
#define LK_OPENCL_SYMBOLS(X)                                                              \
  X(cl_int, clGetPlatformIDs,                                                             \
    (cl_uint num_entries, cl_platform_id * platforms, cl_uint * num_platforms))           \
  X(cl_int, clGetPlatformInfo,                                                            \
    (cl_platform_id platform, cl_platform_info param_name, size_t param_value_size,       \
     void* param_value, size_t* param_value_size_ret))                                    \
  X(cl_int, clGetDeviceIDs,                                                               \
    (cl_platform_id platform, cl_device_type device_type, cl_uint num_entries,            \
     cl_device_id * devices, cl_uint * num_devices))                                      \
  X(cl_int, clGetDeviceInfo,                                                              \
    (cl_device_id device, cl_device_info param_name, size_t param_value_size,             \
     void* param_value, size_t* param_value_size_ret))                                    \
  X(cl_context, clCreateContext,                                                          \
    (const cl_context_properties* properties, cl_uint num_devices,                        \
     const cl_device_id* devices, lk_cl_context_notify_fn pfn_notify, void* user_data,    \
     cl_int* errcode_ret))                                                                \
  X(cl_int, clReleaseContext, (cl_context context))                                       \
  X(cl_command_queue, clCreateCommandQueue,                                               \
    (cl_context context, cl_device_id device, cl_command_queue_properties properties,     \
     cl_int * errcode_ret))                                                               \
  X(cl_int, clReleaseCommandQueue, (cl_command_queue command_queue))                      \
  X(cl_mem, clCreateBuffer,                                                               \
    (cl_context context, cl_mem_flags flags, size_t size, void* host_ptr,                 \
     cl_int* errcode_ret))                                                                \
  X(cl_int, clReleaseMemObject, (cl_mem memobj))                                          \
  X(cl_int, clEnqueueWriteBuffer,                                                         \
    (cl_command_queue command_queue, cl_mem buffer, cl_bool blocking_write,               \
     size_t offset, size_t size, const void* ptr, cl_uint num_events_in_wait_list,        \
     const cl_event* event_wait_list, cl_event* event))                                   \
  X(cl_int, clEnqueueReadBuffer,                                                          \
    (cl_command_queue command_queue, cl_mem buffer, cl_bool blocking_read, size_t offset, \
     size_t size, void* ptr, cl_uint num_events_in_wait_list,                             \
     const cl_event* event_wait_list, cl_event* event))                                   \
  X(cl_int, clEnqueueCopyBuffer,                                                          \
    (cl_command_queue command_queue, cl_mem src_buffer, cl_mem dst_buffer,                \
     size_t src_offset, size_t dst_offset, size_t size, cl_uint num_events_in_wait_list,  \
     const cl_event* event_wait_list, cl_event* event))                                   \
  X(cl_int, clEnqueueFillBuffer,                                                          \
    (cl_command_queue command_queue, cl_mem buffer, const void* pattern,                  \
     size_t pattern_size, size_t offset, size_t size, cl_uint num_events_in_wait_list,    \
     const cl_event* event_wait_list, cl_event* event))                                   \
  X(void*, clEnqueueMapBuffer,                                                            \
    (cl_command_queue command_queue, cl_mem buffer, cl_bool blocking_map,                 \
     cl_map_flags map_flags, size_t offset, size_t size,                                  \
     cl_uint num_events_in_wait_list, const cl_event* event_wait_list, cl_event* event,   \
     cl_int* errcode_ret))                                                                \
  X(cl_int, clEnqueueUnmapMemObject,                                                      \
    (cl_command_queue command_queue, cl_mem memobj, void* mapped_ptr,                     \
     cl_uint num_events_in_wait_list, const cl_event* event_wait_list, cl_event* event))  \
  X(cl_program, clCreateProgramWithSource,                                                \
    (cl_context context, cl_uint count, const char** strings, const size_t* lengths,      \
     cl_int* errcode_ret))                                                                \
  X(cl_program, clCreateProgramWithBinary,                                                \
    (cl_context context, cl_uint num_devices, const cl_device_id* device_list,            \
     const size_t* lengths, const unsigned char** binaries, cl_int* binary_status,        \
     cl_int* errcode_ret))                                                                \
  X(cl_int, clBuildProgram,                                                               \
    (cl_program program, cl_uint num_devices, const cl_device_id* device_list,            \
     const char* options, lk_cl_build_notify_fn pfn_notify, void* user_data))             \
  X(cl_int, clGetProgramBuildInfo,                                                        \
    (cl_program program, cl_device_id device, cl_program_build_info param_name,           \
     size_t param_value_size, void* param_value, size_t* param_value_size_ret))           \
  X(cl_int, clGetProgramInfo,                                                             \
    (cl_program program, cl_program_info param_name, size_t param_value_size,             \
     void* param_value, size_t* param_value_size_ret))                                    \
  X(cl_int, clReleaseProgram, (cl_program program))                                       \
  X(cl_kernel, clCreateKernel,                                                            \
    (cl_program program, const char* kernel_name, cl_int* errcode_ret))                   \
  X(cl_int, clReleaseKernel, (cl_kernel kernel))                                          \
  X(cl_int, clSetKernelArg,                                                               \
    (cl_kernel kernel, cl_uint arg_index, size_t arg_size, const void* arg_value))        \
  X(cl_int, clEnqueueNDRangeKernel,                                                       \
    (cl_command_queue command_queue, cl_kernel kernel, cl_uint work_dim,                  \
     const size_t* global_work_offset, const size_t* global_work_size,                    \
     const size_t* local_work_size, cl_uint num_events_in_wait_list,                      \
     const cl_event* event_wait_list, cl_event* event))                                   \
  X(cl_int, clEnqueueMarkerWithWaitList,                                                  \
    (cl_command_queue command_queue, cl_uint num_events_in_wait_list,                     \
     const cl_event* event_wait_list, cl_event* event))                                   \
  X(cl_int, clEnqueueBarrierWithWaitList,                                                 \
    (cl_command_queue command_queue, cl_uint num_events_in_wait_list,                     \
     const cl_event* event_wait_list, cl_event* event))                                   \
  X(cl_int, clWaitForEvents, (cl_uint num_events, const cl_event* event_list))            \
  X(cl_int, clGetEventInfo,                                                               \
    (cl_event event, cl_event_info param_name, size_t param_value_size,                   \
     void* param_value, size_t* param_value_size_ret))                                    \
  X(cl_int, clGetEventProfilingInfo,                                                      \
    (cl_event event, cl_profiling_info param_name, size_t param_value_size,               \
     void* param_value, size_t* param_value_size_ret))                                    \
  X(cl_int, clReleaseEvent, (cl_event event))                                             \
  X(cl_int, clRetainEvent, (cl_event event))                                              \
  X(cl_int, clFlush, (cl_command_queue command_queue))                                    \
  X(cl_int, clFinish, (cl_command_queue command_queue))                                   \
  X(cl_int, clGetKernelWorkGroupInfo,                                                     \
    (cl_kernel kernel, cl_device_id device, cl_kernel_work_group_info param_name,         \
     size_t param_value_size, void* param_value, size_t* param_value_size_ret))

#endif
