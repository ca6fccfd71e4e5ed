/* The hardware abstraction layer: what a backend implements.
 *
 * Four levels, each a struct whose first member is its vtable pointer:
 *   backend  (a probe function: finds the vendor runtime and its devices)
 *   device   (static after the probe; opens contexts)
 *   context  (memory, queues, programs of one device)
 *   queue    (runs lk_cmd_t commands in order, completes their events)
 *   program  (a built program; looks up kernel entry points)
 *
 * Commands carry core objects (buffers, kernels, events) with references
 * taken by the runtime; a backend completes each command exactly once
 * through lk_cmd_complete(), which completes its event and drops the
 * references.  A backend never blocks forever: a command that waits on a
 * failed event completes with LIGHTOS_ABORTED.
 *
 * Backends register themselves in src/runtime/registry.c (lk_hal_backends).
 */
#ifndef LIGHTOS_HAL_H
#define LIGHTOS_HAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lightos/lightos.h"
#include "kernels/kparse.h"

#define LK_HAL_ABI_VERSION 1

typedef struct lk_hal_device lk_hal_device_t;
typedef struct lk_hal_context lk_hal_context_t;
typedef struct lk_hal_queue lk_hal_queue_t;
typedef struct lk_hal_program lk_hal_program_t;
typedef struct lk_cmd lk_cmd_t;
struct lk_event;

typedef struct lk_hal_backend {
  uint32_t abi_version;
  const char* name;           /* "cpu", "opencl" ... */
  lightos_backend_t id;
  /* Finds the vendor runtime and enumerates devices.  On success fills an
   * array of devices that live for the rest of the process.  When the
   * runtime is missing returns LIGHTOS_UNAVAILABLE with a one-line reason
   * ("libcuda.so.1 not found"). */
  lightos_status_t (*probe)(lk_hal_device_t*** out_devices, uint32_t* out_count,
                            char* reason, size_t reason_cap);
} lk_hal_backend_t;

typedef struct lk_hal_device_vtbl {
  lightos_status_t (*context_create)(lk_hal_device_t* device, uint32_t flags,
                                     lk_hal_context_t** out_context);
} lk_hal_device_vtbl_t;

struct lk_hal_device {
  const lk_hal_device_vtbl_t* vtbl;
  const lk_hal_backend_t* backend;
  lightos_device_info_t info;
  /* Stable identity of the physical device, for de-duplicating the same
   * GPU seen through two backends: PCI bus id, else vendor+name. */
};

/* Memory of one buffer allocation. */
typedef struct lk_hal_mem {
  void* device_ptr;  /* the address kernels see (CPU: a host pointer) */
  void* host_ptr;    /* host mapping when host visible, else NULL     */
  uintptr_t native;  /* backend handle (cl_mem ...), 0 when none      */
} lk_hal_mem_t;

/* What a program build gets. */
typedef struct lk_program_src {
  const char* source;
  size_t length;
  const char* options;            /* validated user options, or ""   */
  const lk_kparse_result_t* sig;  /* parsed kernels                   */
} lk_program_src_t;

typedef struct lk_hal_build_result {
  lk_hal_program_t* program;
  char* log;          /* malloc'ed, may be NULL */
  bool from_cache;
} lk_hal_build_result_t;

typedef struct lk_hal_context_vtbl {
  void (*destroy)(lk_hal_context_t* context);
  lightos_status_t (*mem_alloc)(lk_hal_context_t* context, size_t size, uint32_t flags,
                                lk_hal_mem_t* out_mem);
  void (*mem_free)(lk_hal_context_t* context, lk_hal_mem_t* mem);
  lightos_status_t (*queue_create)(lk_hal_context_t* context, uint32_t flags,
                                   lk_hal_queue_t** out_queue);
  /* Builds a program; on COMPILE_FAILED the log says why (the error
   * detail has the first lines). */
  lightos_status_t (*program_build)(lk_hal_context_t* context, const lk_program_src_t* src,
                                    lk_hal_build_result_t* out);
} lk_hal_context_vtbl_t;

struct lk_hal_context {
  const lk_hal_context_vtbl_t* vtbl;
  lk_hal_device_t* device;
};

/* A GEMM for a native fast path: C = alpha*op(A)*op(B) + beta*C over
 * `batch` matrices, column-major-free description: row-major matrices with
 * leading dimensions in elements, batch strides in elements. */
typedef struct lk_hal_gemm {
  lightos_dtype_t dtype;
  bool trans_a, trans_b;
  int64_t m, n, k;
  double alpha, beta;
  const lk_hal_mem_t* a_mem; size_t a_off; int64_t lda, a_batch_stride;
  const lk_hal_mem_t* b_mem; size_t b_off; int64_t ldb, b_batch_stride;
  const lk_hal_mem_t* c_mem; size_t c_off; int64_t ldc, c_batch_stride;
  int64_t batch;
} lk_hal_gemm_t;

typedef struct lk_hal_queue_vtbl {
  /* Called after finish; frees the queue. */
  void (*destroy)(lk_hal_queue_t* queue);
  /* Takes ownership of cmd (also when it fails). */
  lightos_status_t (*submit)(lk_hal_queue_t* queue, lk_cmd_t* cmd);
  /* Waits for all submitted commands.  Returns the first failure since the
   * previous finish and sets the thread's error detail from it. */
  lightos_status_t (*finish)(lk_hal_queue_t* queue);
  /* (optional) Runs pending commands on the calling thread, without
   * consuming the queue's error state: blocking calls use it to avoid a
   * thread hand-off.  NULL when the backend cannot. */
  void (*drain)(lk_hal_queue_t* queue);
  /* (optional) Enqueues a GEMM through the backend's vendor library.
   * Returns LIGHTOS_UNSUPPORTED (without raising an error) when the library
   * is missing or cannot do this case: the caller then takes the portable
   * kernel and still owns `keep_alive`.  Otherwise the backend owns
   * `keep_alive` (a command holding references to the buffers, and the
   * event to complete) and completes it once the GEMM has run. */
  lightos_status_t (*native_gemm)(lk_hal_queue_t* queue, const lk_hal_gemm_t* gemm,
                                  lk_cmd_t* keep_alive);
  /* submit takes the references of refs_pending commands (from its stock,
   * lk_cmd_take_stock, or lk_cmd_take_refs); false: the runtime takes them
   * before submit. */
  bool takes_refs;
  /* (optional) Issues a kernel launch nobody waits for (cmd has no event)
   * at once, keeping nothing of cmd: it and its arrays live on the
   * caller's stack, its references pending (a backend covers them with its
   * stock, lk_cmd_take_stock).  *issued false (and LIGHTOS_SUCCESS): the
   * queue cannot now — it is busy with deferred or failed work, or the
   * stock has no room — and the caller submits a command block instead.
   * An error: as submit's (some of the work may have been enqueued). */
  lightos_status_t (*launch_now)(lk_hal_queue_t* queue, lk_cmd_t* cmd, bool* issued);
} lk_hal_queue_vtbl_t;

struct lk_hal_queue {
  const lk_hal_queue_vtbl_t* vtbl;
  lk_hal_context_t* context;
  uint32_t flags;
};

typedef struct lk_hal_program_vtbl {
  void (*destroy)(lk_hal_program_t* program);
  /* The backend's handle for kernel `name` (CPU: its entry function). */
  lightos_status_t (*kernel_get)(lk_hal_program_t* program, const lk_kernel_sig_t* sig,
                                 void** out_kernel);
} lk_hal_program_vtbl_t;

struct lk_hal_program {
  const lk_hal_program_vtbl_t* vtbl;
  lk_hal_context_t* context;
};

/* ---- Commands ------------------------------------------------------------ */

typedef enum lk_cmd_kind {
  LK_CMD_WRITE = 1,
  LK_CMD_READ,
  LK_CMD_COPY,
  LK_CMD_FILL,
  LK_CMD_KERNEL,
  LK_CMD_MARKER,
  LK_CMD_WAIT,     /* wait for another event */
  LK_CMD_HOST,     /* run a host function in queue order (host-addressable memory) */
  LK_CMD_NATIVE    /* device work a backend's own function issues (CUDA: the NCCL path) */
} lk_cmd_kind_t;

#define LK_MAX_FILL_PATTERN 128

/* The memory behind a buffer argument: root allocation + offset. */
typedef struct lk_hal_arg_mem {
  const lk_hal_mem_t* mem;
  size_t offset;
  size_t size;
} lk_hal_arg_mem_t;

/* A captured kernel argument value. */
typedef union lk_arg_value {
  void* ptr;            /* global/constant: device address (base + offset) */
  size_t local_offset;  /* local: byte offset in the local arena          */
  uint8_t bytes[8];     /* scalar                                         */
} lk_arg_value_t;

struct lk_cmd {
  lk_cmd_kind_t kind;
  lk_cmd_t* next;             /* for the backend's lists */
  struct lk_event* event;     /* completed with the status; NULL when nobody asked */
  uint64_t t_submit_ns;
  /* References the command holds (dropped at completion). */
  struct lk_buffer* buf[2];
  struct lk_kernel* kernel;
  struct lk_event* wait_event;
  struct lk_buffer** launch_bufs;  /* buffers a kernel launch uses */
  uint32_t num_launch_bufs;
  bool inline_arrays;  /* launch_bufs and the launch arrays live in the command's block */
  /* kernel and launch_bufs are set but not referenced yet: a queue whose
   * vtbl says takes_refs takes the references in submit (lk_cmd_take_stock
   * or lk_cmd_take_refs),
   * before anything can complete the command. */
  bool refs_pending;
  /* Its kernel and launch_bufs are kept alive by the queue's stock of
   * references, not by references of its own. */
  bool refs_stock;
  union {
    /* write: host src -> buf[0]; read: buf[0] -> host dst; copy: buf[1] -> buf[0].
     * dst/src are the resolved addresses (device_ptr + offset, or the host
     * pointer); dst_off/src_off are offsets into the buffers' root
     * allocations, for backends whose memory is a handle (cl_mem). */
    struct { void* dst; const void* src; size_t size; size_t dst_off, src_off;
             const lk_hal_mem_t* dst_mem; const lk_hal_mem_t* src_mem;
             bool cross_context; /* host-addressable buffers of two contexts */ } copy;
    struct { void* dst; size_t dst_off; size_t size; uint8_t pattern[LK_MAX_FILL_PATTERN];
             size_t pattern_size; const lk_hal_mem_t* dst_mem; } fill;
    struct {
      void* hal_kernel;         /* from kernel_get */
      uint32_t work_dim;
      size_t global[3], local[3];
      size_t local_mem_bytes;   /* sum of __local arg sizes (64-aligned)  */
      uint32_t num_args;
      lk_arg_value_t* values;   /* num_args entries, owned by the command */
      lk_hal_arg_mem_t* mems;   /* num_args entries: the buffer behind each
                                   global/constant argument (mem NULL else) */
      void** arg_ptrs;          /* arg_ptrs[i] = &values[i]               */
      bool uses_item_blocks;
    } launch;
    /* fn(arg) runs in order on the queue; arg is freed with free() when
     * the command completes. */
    struct { lightos_status_t (*fn)(void* arg); void* arg; } host;
    /* fn(stream, arg) issues the work on the backend's stream; then done(arg,
     * status) runs with no queue lock held (it owns arg). */
    struct { lightos_status_t (*fn)(void* stream, void* arg);
             void (*done)(void* arg, lightos_status_t status); void* arg; } native;
  } u;
};

/* A queue's stock of references (under the queue's own submit lock).  A
 * launch keeps its kernel and each buffer argument alive until its device
 * work is done; taking those references one atomic increment at a time
 * (and dropping them on the completion thread) costs tens of nanoseconds
 * each right after a GPU launch, and makes the launching thread and the
 * completion thread trade cache lines.  A queue that takes_refs instead
 * takes LK_REF_CREDITS references on an object at once and lets launches
 * use them; the stock (all it took) is released once the device has
 * passed every launch that used it: with the next completion marker (one
 * at least every batch of commands, and one when the queue goes idle), or
 * after the stream synchronisation of finish or destroy.  Such a launch
 * holds no reference of its own (refs_stock). */
#define LK_REF_SLOTS 8
#define LK_REF_CREDITS 256u
typedef struct lk_ref_cache {
  struct lk_object* obj[LK_REF_SLOTS];
  uint32_t left[LK_REF_SLOTS];  /* taken and not used yet */
  uint32_t taken[LK_REF_SLOTS]; /* taken in all: what release drops */
} lk_ref_cache_t;

/* Gives a refs_pending command references of its own. */
void lk_cmd_take_refs(lk_cmd_t* cmd);
/* Gives a refs_pending command all its references from the stock rc
 * (refs_stock set) and returns true, or returns false when they do not all
 * fit, leaving cmd and rc as they were. */
bool lk_cmd_take_stock(lk_cmd_t* cmd, lk_ref_cache_t* rc);
/* Whether the stock holds anything. */
bool lk_ref_cache_any(const lk_ref_cache_t* rc);
/* Drops everything the stock took and empties it; may destroy objects, so
 * call it with no queue lock held. */
void lk_ref_cache_release(lk_ref_cache_t* rc);

/* Completes a command: its event gets `status` (and the current thread's
 * error message when status is a failure), timestamps are recorded, and
 * the command's references are dropped and the command freed. */
void lk_cmd_complete(lk_cmd_t* cmd, lightos_status_t status, uint64_t t_start_ns,
                     uint64_t t_end_ns);

/* Blocks until `event` completes; returns its status (for LK_CMD_WAIT). */
lightos_status_t lk_event_wait_internal(struct lk_event* event);

/* The backends compiled in. */
extern const lk_hal_backend_t lk_cpu_backend;
extern const lk_hal_backend_t lk_opencl_backend;
extern const lk_hal_backend_t lk_cuda_backend;
extern const lk_hal_backend_t lk_hip_backend;

#endif
