/* Communicators: the objects behind lightos_comm_t, the operations the
 * proxy thread runs, and the host algorithms (comm_algo.c). */
#ifndef LK_COMM_INTERNAL_H
#define LK_COMM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "comm/xport.h"
#include "runtime/runtime.h"

typedef enum lk_coll_kind {
  LK_COLL_ALLREDUCE = 1,
  LK_COLL_REDUCE,
  LK_COLL_BROADCAST,
  LK_COLL_ALLGATHER,
  LK_COLL_REDUCE_SCATTER,
  LK_COLL_ALLTOALL,
  LK_COLL_SEND,
  LK_COLL_RECV,
  LK_COLL_BARRIER,
  LK_COLL_SPLIT /* internal: lightos_comm_split's exchange */
} lk_coll_kind_t;

struct lk_comm;

typedef struct lk_coll {
  struct lk_coll* next;
  lk_coll_kind_t kind;
  struct lk_comm* comm;       /* referenced */
  lk_buffer_t** sends;        /* referenced; nsends entries (NULL where unused) */
  uint32_t nsends;
  bool multi;                 /* lightos_comm_allreduce_multi */
  lk_buffer_t* recv;          /* referenced or NULL */
  size_t count;
  lightos_dtype_t dtype;
  lightos_reduce_op_t op;
  uint32_t root;              /* root, or the peer of send/recv */
  lk_event_t* ready;          /* the queue's earlier work (referenced), or NULL */
  lk_event_t* done;           /* signalled by the proxy (its handle is the operation's) */
  lk_queue_t* wait_queue;     /* referenced until the queue's wait is enqueued */
  bool batch_end;             /* the last operation of a group */
  /* LK_COLL_SPLIT */
  int color, key;
  const lightos_comm_config_t* split_config;
  struct lk_comm** split_out;  /* where the new communicator goes */
} lk_coll_t;

/* Grow-only work buffers of a communicator's proxy thread, reused from one
 * operation to the next (fresh large allocations cost page faults). */
enum { LK_SCR_RECV, LK_SCR_ACC, LK_SCR_FIXED, LK_SCR_SUM, LK_SCR_LOCAL, LK_SCRATCH_SLOTS };
typedef struct lk_scratch {
  void* p[LK_SCRATCH_SLOTS];
  size_t cap[LK_SCRATCH_SLOTS];
} lk_scratch_t;
void lk_scratch_free(lk_scratch_t* s);

/* One operation as the API call described it. */
typedef struct lk_coll_desc {
  lk_coll_kind_t kind;
  lk_buffer_t* const* sends;  /* nsends entries (NULL where the rank sends nothing) */
  uint32_t nsends;
  bool multi;
  lk_buffer_t* recv;          /* NULL where the rank receives nothing */
  size_t count;
  lightos_dtype_t dtype;
  lightos_reduce_op_t op;
  uint32_t root;              /* root, or the peer of send/recv */
} lk_coll_desc_t;

/* A device-side path of a communicator (NCCL for groups of CUDA devices,
 * comm_nccl.c).  enqueue() puts the operation on queue q in stream order,
 * or returns LIGHTOS_UNSUPPORTED without raising an error and without
 * enqueueing anything: the host path then runs it.  The choice must
 * depend only on the operation and the communicator's configuration, so
 * that every rank takes the same path. */
typedef struct lk_comm_dev_vtbl {
  const char* name;
  lightos_status_t (*enqueue)(struct lk_comm* c, const lk_coll_desc_t* op, lk_queue_t* q);
  /* (optional) Runs an operation on the proxy thread, synchronously: its
   * queue's earlier work is complete and later work waits for the return.
   * LIGHTOS_UNSUPPORTED (no error raised): the host algorithm runs it. */
  lightos_status_t (*run)(struct lk_comm* c, const lk_coll_desc_t* op);
  void (*abort)(struct lk_comm* c);
  /* Frees the device path (the comm's queues have been finished). */
  void (*destroy)(struct lk_comm* c);
} lk_comm_dev_vtbl_t;

typedef struct lk_comm {
  lk_object_t obj;
  lk_context_t* context;      /* referenced */
  uint32_t rank, size;
  lightos_comm_config_t config;
  lk_xport_t* xport;          /* owned */
  lk_queue_t* staging_queue;  /* owned (a queue of context) for host staging */

  pthread_mutex_t lock;
  pthread_cond_t cv;
  lk_coll_t* head;            /* the proxy's FIFO */
  lk_coll_t* tail;
  size_t inflight;            /* queued + running */
  bool stop;
  pthread_t proxy;
  bool proxy_started;
  atomic_bool aborted;
  char abort_msg[384];

  lk_scratch_t scratch;       /* the proxy thread's work buffers */
  const lk_comm_dev_vtbl_t* dev_vtbl; /* NULL: host path only */
  void* dev;

  /* A composed group (lightos_comm_init_all over devices of several
   * backends, comm.c): the communicator of this rank's vendor block (NULL
   * when the rank is alone in it) and of the upper level, where the
   * block's first rank stands for the block (NULL for the block's other
   * ranks).  Both referenced, destroyed with this one. */
  struct lk_comm* hier_inner;
  struct lk_comm* hier_outer;
  struct lk_comm* hier_owner; /* of a block's or an upper level's: its rank's group */
  uint32_t* hier_span;        /* a composed group's plan (lk_hier_plan; owned), else NULL */
  uint32_t* spans;            /* upper levels: leaves per rank (owned), else NULL */
} lk_comm_t;

/* Marks the communicator aborted (the first reason stays): its later
 * operations fail at once. */
void lk_comm_set_aborted(lk_comm_t* c, const char* why);
/* A level of a composed group (c->hier_owner set) failed: aborts c's
 * transport, c's owner and the owner's other level (comm.c). */
void lk_hier_break(lk_comm_t* c, const char* why);
/* The blocks a group over devices of these backends (rank order) is
 * composed of: span[r] = 2^j at the first rank of a block to compose (an
 * aligned run of one backend whose ranks all can[] have a device library,
 * or any backend with mode 1), 0 at its other ranks, 1 at a rank alone at
 * the upper level.  mode: LIGHTOS_COMM_HIERARCHY (0 never, -1 default, 1
 * every backend).  Returns whether a block is composed (comm.c). */
bool lk_hier_plan(uint32_t n, const char* const* backend, const bool* can, long mode,
                  uint32_t* span);
/* Whether a block of this backend's devices gets its device library (CUDA
 * with NCCL loadable and not turned off): the plan's can[] (comm.c). */
bool lk_hier_lib(const char* backend);
/* The backend part of a device URI ("cuda" of "cuda:1"). */
void lk_uri_backend(const char* uri, char* out, size_t cap);

/* Device paths (comm_nccl.c).  Both are collective over the group and
 * leave the communicator on the host path (returning a failure that the
 * caller logs) when the devices, the library or any rank cannot take it.
 * attach_all: the communicators of one lightos_comm_init_all, before any
 * operation; attach_rank: one rank of a multi-process group (exchanges
 * over c->xport before any operation). */
lightos_status_t lk_nccl_attach_all(lk_comm_t* const* comms, uint32_t n);
lightos_status_t lk_nccl_attach_rank(lk_comm_t* c);


/* Host algorithms over the comm's transport.  Pointers are host memory of
 * this rank; deadline in lk_now_ns() time.  scratch may be NULL (then
 * work buffers are allocated per operation). */
typedef struct lk_algo {
  lk_xport_t* x;
  uint32_t rank, size;
  lightos_determinism_t level;
  uint64_t deadline_ns;
  lk_scratch_t* scratch;
  /* Leaves per rank for TOPOLOGY's tree (NULL: one each): the upper level
   * of a composed group, where a rank stands for its vendor block. */
  const uint32_t* spans;
} lk_algo_t;

lightos_status_t lk_algo_allreduce(const lk_algo_t* a, const void* const* sends, uint32_t nsends,
                                   bool multi, void* recv, size_t count, lightos_dtype_t dt,
                                   lightos_reduce_op_t op);
/* recv is written on root only. */
lightos_status_t lk_algo_reduce(const lk_algo_t* a, const void* send, void* recv, size_t count,
                                lightos_dtype_t dt, lightos_reduce_op_t op, uint32_t root);
/* buf: the source on root, the destination elsewhere. */
lightos_status_t lk_algo_broadcast(const lk_algo_t* a, void* buf, size_t bytes, uint32_t root);
/* send may be recv + rank * bytes (in place). */
lightos_status_t lk_algo_allgather(const lk_algo_t* a, const void* send, void* recv,
                                   size_t bytes);
lightos_status_t lk_algo_reduce_scatter(const lk_algo_t* a, const void* send, void* recv,
                                        size_t recvcount, lightos_dtype_t dt,
                                        lightos_reduce_op_t op);
lightos_status_t lk_algo_alltoall(const lk_algo_t* a, const void* send, void* recv,
                                  size_t bytes);
lightos_status_t lk_algo_barrier(const lk_algo_t* a);

#endif
