/* Backends, devices, device selection and contexts.
 *
 * The device registry is built on first use (any call below): every
 * backend compiled into the library is probed; one whose vendor runtime is
 * missing is skipped with a reason (lightos_backend_get_info).  The CPU
 * backend is always present.  The registry is immutable afterwards, so
 * device handles stay valid for the life of the process.
 *
 * Thread-safety: every function here is safe to call from any thread.
 */
#ifndef LIGHTOS_DEVICE_H
#define LIGHTOS_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lightos/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lightos_device_s* lightos_device_t;
typedef struct lightos_context_s* lightos_context_t;
typedef struct lightos_queue_s* lightos_queue_t;

typedef enum lightos_backend {
  LIGHTOS_BACKEND_CPU = 1,
  LIGHTOS_BACKEND_OPENCL = 2,
  LIGHTOS_BACKEND_CUDA = 3,
  LIGHTOS_BACKEND_HIP = 4
} lightos_backend_t;

/* What to ask for when creating a context or selecting a device. */
typedef enum lightos_device_kind {
  LIGHTOS_DEVICE_ANY = 0,          /* best device by score (LIGHTOS_DEVICE env first) */
  LIGHTOS_DEVICE_CPU = 1,          /* best CPU device of any backend                  */
  LIGHTOS_DEVICE_GPU = 2,          /* best GPU of any backend                         */
  LIGHTOS_DEVICE_ACCELERATOR = 3,  /* best non-CPU, non-GPU accelerator               */
  LIGHTOS_DEVICE_BACKEND_CPU = 16, /* first device of the named backend              */
  LIGHTOS_DEVICE_BACKEND_OPENCL = 17,
  LIGHTOS_DEVICE_BACKEND_CUDA = 18,
  LIGHTOS_DEVICE_BACKEND_HIP = 19
} lightos_device_kind_t;

typedef enum lightos_device_type {
  LIGHTOS_DEVICE_TYPE_CPU = 1,
  LIGHTOS_DEVICE_TYPE_GPU_DISCRETE = 2,
  LIGHTOS_DEVICE_TYPE_GPU_INTEGRATED = 3,
  LIGHTOS_DEVICE_TYPE_ACCELERATOR = 4
} lightos_device_type_t;

typedef struct lightos_device_info {
  lightos_backend_t backend;
  const char* backend_name;       /* "cpu", "opencl", "cuda", "hip"          */
  uint32_t index;                 /* index among the backend's devices       */
  char uri[64];                   /* "cpu", "cpu:1", "opencl:0", "cuda:1"    */
  char name[256];
  char vendor[128];
  char driver_version[128];
  lightos_device_type_t type;
  uint64_t global_mem_bytes;
  uint64_t local_mem_bytes;       /* per work-group                          */
  uint32_t compute_units;
  size_t max_work_group_size;
  bool fp16;                      /* half arithmetic in kernels             */
  bool fp64;                      /* double arithmetic in kernels           */
  bool host_visible_memory;       /* buffers can be mapped into the host    */
  char pci_bus_id[32];            /* "0000:3b:00.0", or "" when unknown      */
} lightos_device_info_t;

typedef struct lightos_backend_info {
  lightos_backend_t backend;
  const char* name;               /* "cpu", "opencl", "cuda", "hip"         */
  bool available;                 /* probed and usable                      */
  const char* reason;             /* why not, e.g. "libcuda.so.1 not found" */
  uint32_t device_count;
} lightos_backend_info_t;

/* Backends compiled into this library, available or not. */
LIGHTOS_API lightos_status_t lightos_backend_count(uint32_t* out_count);
LIGHTOS_API lightos_status_t lightos_backend_get_info(
    uint32_t index, lightos_backend_info_t* out_info);

/* All devices of all available backends, in registry order. */
LIGHTOS_API lightos_status_t lightos_device_count(uint32_t* out_count);
LIGHTOS_API lightos_status_t lightos_device_get(uint32_t index,
                                                lightos_device_t* out_device);
LIGHTOS_API lightos_status_t lightos_device_get_info(
    lightos_device_t device, lightos_device_info_t* out_info);

/* Selection score used by LIGHTOS_DEVICE_ANY (higher is better); see
 * docs/device-selection.md.  A device that is the same physical device as a
 * native-backend device (an OpenCL view of a CUDA GPU) scores below it. */
LIGHTOS_API lightos_status_t lightos_device_score(lightos_device_t device,
                                                  int64_t* out_score);

/* Picks a device for `kind`.  For LIGHTOS_DEVICE_ANY the environment
 * variable LIGHTOS_DEVICE (a URI or "cpu"/"gpu"/"any") is honoured first.
 * NOT_FOUND when no device of that kind exists. */
LIGHTOS_API lightos_status_t lightos_device_select(lightos_device_kind_t kind,
                                                   lightos_device_t* out_device);

/* A device by URI: "cpu", "cpu:N", "opencl:N", "cuda:N", "hip:N", or the
 * kinds "any", "gpu". NOT_FOUND / INVALID_ARGUMENT with a clear message. */
LIGHTOS_API lightos_status_t lightos_device_from_uri(const char* uri,
                                                     lightos_device_t* out_device);

/* Writes a human-readable explanation of what lightos_device_select(kind)
 * picks and why (every candidate with its score) into buf (NUL-terminated,
 * truncated to cap).  *out_len (optional) gets the full length needed. */
LIGHTOS_API lightos_status_t lightos_device_explain_selection(
    lightos_device_kind_t kind, char* buf, size_t cap, size_t* out_len);

/* ---- Contexts ----------------------------------------------------------
 * A context is one device opened for use: buffers, queues and programs
 * belong to a context.  Created with refcount 1; freed when the last
 * reference goes and everything created from it has been released. */

enum lightos_context_flags {
  LIGHTOS_CONTEXT_DEFAULT = 0,
  LIGHTOS_CONTEXT_DETERMINISTIC = 1u << 0  /* fixed-order ops (tensor ops) */
};

LIGHTOS_API lightos_status_t lightos_context_create(lightos_device_kind_t kind,
                                                    lightos_context_t* out_context);
LIGHTOS_API lightos_status_t lightos_context_create_for_device(
    lightos_device_t device, uint32_t flags, lightos_context_t* out_context);
LIGHTOS_API lightos_status_t lightos_context_create_from_uri(
    const char* uri, lightos_context_t* out_context);
LIGHTOS_API lightos_status_t lightos_context_retain(lightos_context_t context);
LIGHTOS_API lightos_status_t lightos_context_release(lightos_context_t context);
LIGHTOS_API lightos_status_t lightos_context_get_device(
    lightos_context_t context, lightos_device_t* out_device);
/* The context's default in-order queue (owned by the context: do not
 * release it).  Used by the blocking buffer calls and the seed API. */
LIGHTOS_API lightos_status_t lightos_context_default_queue(
    lightos_context_t context, lightos_queue_t* out_queue);

#ifdef __cplusplus
}
#endif
#endif
