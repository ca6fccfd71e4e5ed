/* Runtime objects behind the public handles. */
#ifndef LIGHTOS_RUNTIME_H
#define LIGHTOS_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/error.h"
#include "core/object.h"
#include "hal/hal.h"

typedef struct lk_device {
  lk_object_t obj;
  lk_hal_device_t* hal;
  uint32_t registry_index;
  /* Another device (of a native backend) that is the same hardware, or
   * NULL: this one is then not chosen by ANY/GPU selection. */
  struct lk_device* same_as;
} lk_device_t;

typedef struct lk_context {
  lk_object_t obj;
  lk_device_t* device;
  lk_hal_context_t* hal;
  uint32_t flags;
  struct lk_queue* default_queue; /* created with the context */
  /* Tensor-op state (program cache ...), created on first use by
   * src/ops; freed with the context. */
  pthread_mutex_t ops_lock;
  void* ops;
  void (*ops_destroy)(void* ops);
} lk_context_t;

typedef struct lk_buffer {
  lk_object_t obj;
  lk_context_t* context;          /* referenced */
  struct lk_buffer* parent;       /* referenced, sub-buffers only */
  lk_hal_mem_t mem;               /* the root allocation */
  size_t offset;                  /* from the root allocation's start */
  size_t size;
  uint32_t flags;
  pthread_mutex_t map_lock;
  void** maps;                    /* live mappings (lightos_buffer_map) */
  size_t num_maps, cap_maps;
} lk_buffer_t;

typedef struct lk_queue {
  lk_object_t obj;
  lk_context_t* context;          /* referenced */
  lk_hal_queue_t* hal;
  uint32_t flags;
  bool is_default;                /* the context's own queue (no reference) */
} lk_queue_t;

typedef struct lk_event {
  lk_object_t obj;
  pthread_mutex_t lock;
  pthread_cond_t cv;
  atomic_int done;
  lightos_status_t status;
  bool profiled;
  uint64_t t_start_ns, t_end_ns;
  char message[512];              /* failure detail */
  char backend[16];
} lk_event_t;

typedef struct lk_program {
  lk_object_t obj;
  lk_context_t* context;          /* referenced */
  char* source;
  size_t length;
  lk_kparse_result_t sig;
  lk_hal_program_t* hal;
  pthread_mutex_t lock;           /* build state */
  bool built;
  bool from_cache;
  double build_ms;
  char* log;
} lk_program_t;

typedef struct lk_kernel_arg {
  bool set;
  lk_buffer_t* buffer;            /* referenced while set */
  lk_arg_value_t value;
  size_t local_bytes;
} lk_kernel_arg_t;

typedef struct lk_kernel {
  lk_object_t obj;
  lk_program_t* program;          /* referenced */
  const lk_kernel_sig_t* sig;
  void* hal_kernel;
  lk_kernel_arg_t* args;
} lk_kernel_t;

/* Registry (registry.c). */
lightos_status_t lk_registry_init(void);

/* Events (event.c). */
lightos_status_t lk_event_create(lk_event_t** out);
void lk_event_signal(lk_event_t* ev, lightos_status_t status, const char* message,
                     const char* backend, uint64_t t_start, uint64_t t_end);

/* Queues (queue.c): submits a prepared command; optionally hands back its
 * event as a user handle. */
lightos_status_t lk_queue_submit(lk_queue_t* q, lk_cmd_t* cmd, lightos_event_t* out_event);
lk_cmd_t* lk_cmd_new(lk_cmd_kind_t kind);
/* A zeroed kernel-launch command block of `bytes` bytes (inline_arrays
 * set; recycled through a pool), or NULL. */
lk_cmd_t* lk_cmd_new_launch(size_t bytes);
/* Waits for `ev` (of queue q), running q's pending work on this thread
 * where the backend allows, then releases ev. */
lightos_status_t lk_queue_wait_and_release(lk_queue_t* q, lightos_event_t ev);
void lk_cmd_free_unsubmitted(lk_cmd_t* cmd);

/* Resolve helpers: LK_RESOLVE(var, handle, TYPE, "what"). */
#define LK_RESOLVE(var, handle, otype, what)                                  \
  do {                                                                        \
    lk_object_t* o_;                                                          \
    lightos_status_t s_ = lk_handle_resolve((handle), (otype), (what), &o_); \
    if (s_) return s_;                                                        \
    (var) = (void*)o_;                                                        \
  } while (0)

#define LK_CHECK_OUT(ptr, name)                                                  \
  do {                                                                           \
    if (!(ptr)) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "%s is NULL", (name)); \
  } while (0)

#endif
