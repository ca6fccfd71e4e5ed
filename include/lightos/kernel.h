/* Portable kernels: programs built from source, kernels, arguments and
 * launches.  The language is specified in docs/kernel-language.md.
 *
 * A program is built for its context's device.  Compiled binaries are
 * cached on disk (LIGHTOS_CACHE_DIR, LIGHTOS_CACHE=0 to disable), so a
 * second build of the same source with the same options on the same device
 * and driver skips the compiler.
 *
 * Thread-safety: programs may be built and kernels created from any thread.
 * A kernel object's arguments are not synchronised: do not set arguments of
 * one kernel object from two threads at once.  Arguments are captured at
 * enqueue time, so a kernel can be re-armed and enqueued again at once.
 */
#ifndef LIGHTOS_KERNEL_H
#define LIGHTOS_KERNEL_H

#include "lightos/queue.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lightos_program_s* lightos_program_t;
typedef struct lightos_kernel_s* lightos_kernel_t;

/* Creates a program from source (`length` 0 means NUL-terminated). */
LIGHTOS_API lightos_status_t lightos_program_create(lightos_context_t context,
                                                    const char* source, size_t length,
                                                    lightos_program_t* out_program);
/* Builds it.  Options: -D NAME[=VALUE], -I DIR, -cl-std=CL1.2, and
 * -w; anything else gives INVALID_ARGUMENT naming the option.  On a
 * compile error returns LIGHTOS_COMPILE_FAILED; the message says where, and
 * lightos_program_build_log() gives the full log.  A program can be built
 * once. */
LIGHTOS_API lightos_status_t lightos_program_build(lightos_program_t program,
                                                   const char* options);
/* The last build's log (compiler output, NUL-terminated, truncated to cap);
 * *out_len (optional) gets the full length + 1. */
LIGHTOS_API lightos_status_t lightos_program_build_log(lightos_program_t program,
                                                       char* buf, size_t cap,
                                                       size_t* out_len);
typedef struct lightos_program_info {
  bool built;
  bool from_cache;          /* the binary came from the on-disk cache     */
  double build_ms;          /* wall time of lightos_program_build         */
  uint32_t kernel_count;
} lightos_program_info_t;
LIGHTOS_API lightos_status_t lightos_program_get_info(lightos_program_t program,
                                                      lightos_program_info_t* out_info);
LIGHTOS_API lightos_status_t lightos_program_retain(lightos_program_t program);
LIGHTOS_API lightos_status_t lightos_program_release(lightos_program_t program);

/* ---- Kernels ----------------------------------------------------------- */

LIGHTOS_API lightos_status_t lightos_kernel_create(lightos_program_t program,
                                                   const char* name,
                                                   lightos_kernel_t* out_kernel);
LIGHTOS_API lightos_status_t lightos_kernel_retain(lightos_kernel_t kernel);
LIGHTOS_API lightos_status_t lightos_kernel_release(lightos_kernel_t kernel);

typedef enum lightos_arg_kind {
  LIGHTOS_ARG_GLOBAL = 1,    /* __global T*  : set with a buffer          */
  LIGHTOS_ARG_CONSTANT = 2,  /* __constant T*: set with a buffer          */
  LIGHTOS_ARG_LOCAL = 3,     /* __local T*   : set with a size in bytes   */
  LIGHTOS_ARG_SCALAR = 4     /* by value     : set with a scalar          */
} lightos_arg_kind_t;

typedef struct lightos_arg_info {
  const char* name;          /* valid while the kernel lives */
  const char* type;          /* e.g. "__global const float*", "uint" */
  lightos_arg_kind_t kind;
  size_t scalar_size;        /* bytes, for LIGHTOS_ARG_SCALAR */
} lightos_arg_info_t;

LIGHTOS_API lightos_status_t lightos_kernel_get_arg_count(lightos_kernel_t kernel,
                                                          uint32_t* out_count);
LIGHTOS_API lightos_status_t lightos_kernel_get_arg_info(lightos_kernel_t kernel,
                                                         uint32_t index,
                                                         lightos_arg_info_t* out_info);

/* Argument setters, checked against the parsed kernel signature: the index,
 * the kind (buffer / local / scalar), the scalar type and size, and that a
 * buffer belongs to the kernel's context. */
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_buffer(lightos_kernel_t kernel,
                                                           uint32_t index,
                                                           lightos_buffer_t buffer);
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_local(lightos_kernel_t kernel,
                                                          uint32_t index, size_t bytes);
/* Raw scalar: `size` must equal the parameter's size. */
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_scalar(lightos_kernel_t kernel,
                                                           uint32_t index, size_t size,
                                                           const void* value);
/* Typed scalars: the parameter's type must match (int for i32, uint for
 * u32, long for i64, ulong/size_t for u64, float for f32, double for f64). */
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_i32(lightos_kernel_t k, uint32_t index, int32_t v);
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_u32(lightos_kernel_t k, uint32_t index, uint32_t v);
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_i64(lightos_kernel_t k, uint32_t index, int64_t v);
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_u64(lightos_kernel_t k, uint32_t index, uint64_t v);
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_f32(lightos_kernel_t k, uint32_t index, float v);
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_f64(lightos_kernel_t k, uint32_t index, double v);

/* Enqueues a launch over a `work_dim`-dimensional range (1, 2 or 3).
 * `global_size` has work_dim entries, each >= 1.  `local_size` is NULL (the
 * runtime picks a work-group size) or has work_dim entries whose product is
 * at most the device's max_work_group_size; global sizes need not be
 * multiples of the local size (the last group in a dimension is smaller).
 * Every argument must have been set.  out_event may be NULL. */
LIGHTOS_API lightos_status_t lightos_enqueue_kernel(lightos_queue_t queue,
                                                    lightos_kernel_t kernel,
                                                    uint32_t work_dim,
                                                    const size_t* global_size,
                                                    const size_t* local_size,
                                                    lightos_event_t* out_event);

#ifdef __cplusplus
}
#endif
#endif
