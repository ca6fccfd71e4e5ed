/* Communicators and collectives.
 *
 * A communicator is one rank of a group; each rank has one device context.
 * Groups are made
 *   - in one process, over several contexts (devices of any backends,
 *     mixed): lightos_comm_init_all;
 *   - across processes and machines: one rank calls
 *     lightos_comm_get_unique_id, passes the id to the others over any
 *     channel (a file, MPI, a socket), and every rank calls
 *     lightos_comm_init_rank.  lightos/comm_mpi.h does the exchange over MPI;
 *   - from an existing group: lightos_comm_split.
 *
 * Every collective is enqueued on a queue of the rank's context (NULL: the
 * context's default queue): it starts after the queue's earlier work and the
 * queue's later work starts after it (stream order).  Calls return at once.
 * Every rank must issue the same collectives in the same order, as in NCCL.
 *
 * Determinism (docs/determinism.md), chosen per communicator:
 *   NONE      the fastest path (the vendor library's, NCCL for CUDA groups);
 *   RUN       bit-identical run to run for the same group and sizes;
 *   TOPOLOGY  one fixed summation tree over rank index, whatever the
 *             algorithm, transport or vendor: identical across topologies,
 *             and across rank counts when the same data is split over ranks
 *             in aligned power-of-two parts (the default);
 *   STRICT    exact order-independent accumulation (integer fixed point with
 *             a shared exponent per block of 256 elements), rounded once:
 *             identical for any number of ranks, any split, any backend.
 */
#ifndef LIGHTOS_COMM_H
#define LIGHTOS_COMM_H

#include <stdint.h>

#include "lightos/dtype.h"
#include "lightos/queue.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lightos_comm_s* lightos_comm_t;

typedef enum lightos_reduce_op {
  LIGHTOS_OP_SUM = 1,
  LIGHTOS_OP_PROD = 2,
  LIGHTOS_OP_MIN = 3,
  LIGHTOS_OP_MAX = 4,
  LIGHTOS_OP_AVG = 5
} lightos_reduce_op_t;

typedef enum lightos_determinism {
  LIGHTOS_DETERMINISM_NONE = 0,
  LIGHTOS_DETERMINISM_RUN = 1,
  LIGHTOS_DETERMINISM_TOPOLOGY = 2,
  LIGHTOS_DETERMINISM_STRICT = 3
} lightos_determinism_t;

/* "none", "run", "topology", "strict"; "unknown" otherwise. */
LIGHTOS_API const char* lightos_determinism_name(lightos_determinism_t level);

/* Communicator flags. */
#define LIGHTOS_COMM_CHECK 0x1u /* after each collective, verify that every
                                   rank holds identical results (a hash
                                   exchange); a mismatch fails the operation */

typedef struct lightos_comm_config {
  uint32_t struct_size;          /* sizeof(lightos_comm_config_t) */
  lightos_determinism_t level;   /* default TOPOLOGY */
  /* Seconds an operation may wait for the other ranks before it fails with
   * LIGHTOS_TIMEOUT and the communicator is aborted; 0 = the environment's
   * LIGHTOS_COMM_TIMEOUT, else 300. */
  double timeout_s;
  uint32_t flags;                /* LIGHTOS_COMM_CHECK */
} lightos_comm_config_t;

/* The defaults, after the environment: LIGHTOS_COMM_LEVEL (none, run,
 * topology, strict), LIGHTOS_COMM_TIMEOUT (seconds), LIGHTOS_COMM_CHECK=1. */
LIGHTOS_API lightos_status_t lightos_comm_config_default(lightos_comm_config_t* out_config);

#define LIGHTOS_COMM_UNIQUE_ID_BYTES 128
typedef struct lightos_comm_unique_id {
  char internal[LIGHTOS_COMM_UNIQUE_ID_BYTES];
} lightos_comm_unique_id_t;

/* In-process group: one communicator per context, rank i on contexts[i].
 * config may be NULL (defaults). */
LIGHTOS_API lightos_status_t lightos_comm_init_all(uint32_t ncontexts,
                                                   const lightos_context_t* contexts,
                                                   lightos_comm_t* out_comms);
LIGHTOS_API lightos_status_t lightos_comm_init_all_config(uint32_t ncontexts,
                                                          const lightos_context_t* contexts,
                                                          const lightos_comm_config_t* config,
                                                          lightos_comm_t* out_comms);

/* Multi-process group.  The id names a rendezvous point that this process
 * serves until every rank has joined (or the timeout passes); the address
 * it advertises is LIGHTOS_COMM_ADDR when set (an IPv4 address), else the
 * host's first non-loopback IPv4 address, else 127.0.0.1. */
LIGHTOS_API lightos_status_t lightos_comm_get_unique_id(lightos_comm_unique_id_t* out_id);
/* Blocks until all nranks ranks have joined (or the timeout). */
LIGHTOS_API lightos_status_t lightos_comm_init_rank(uint32_t nranks,
                                                    const lightos_comm_unique_id_t* id,
                                                    uint32_t rank, lightos_context_t context,
                                                    const lightos_comm_config_t* config,
                                                    lightos_comm_t* out_comm);

/* A transport the application supplies (lightos/comm_mpi.h builds one on
 * MPI, so the collectives' bytes travel over MPI: shared memory, InfiniBand
 * ...).  Messages between two ranks must arrive in the order they were
 * started (MPI's non-overtaking rule); each is at most 1 GiB (LightOS
 * splits larger ones).  Callbacks return 0 on success; any other value
 * fails the operation (and the communicator).  They are called from the
 * communicator's proxy thread, one call at a time. */
typedef struct lightos_comm_transport_ops {
  uint32_t struct_size;   /* sizeof(lightos_comm_transport_ops_t) */
  const char* name;       /* e.g. "mpi" (lightos_comm_transport) */
  void* state;            /* passed to every callback */
  int (*isend)(void* state, const void* buf, size_t bytes, uint32_t peer, void** request);
  int (*irecv)(void* state, void* buf, size_t bytes, uint32_t peer, void** request);
  /* *done = 1 once complete (the request is then released); a receive
   * that got another length than posted must return nonzero. */
  int (*test)(void* state, void* request, int* done);
  /* Abandons an incomplete request after a failure or timeout. */
  void (*cancel)(void* state, void* request);
  /* Called once, when the communicator is destroyed (or its creation fails). */
  void (*destroy)(void* state);
} lightos_comm_transport_ops_t;

/* Multi-process group over an application transport (not collective:
 * the transport already connects the ranks).  ops is copied. */
LIGHTOS_API lightos_status_t lightos_comm_init_transport(uint32_t nranks, uint32_t rank,
                                                         const lightos_comm_transport_ops_t* ops,
                                                         lightos_context_t context,
                                                         const lightos_comm_config_t* config,
                                                         lightos_comm_t* out_comm);

/* Splits a group (collective over comm; blocks): ranks passing the same
 * color form a new communicator, ordered by key then by old rank.  color
 * LIGHTOS_COMM_SPLIT_NOCOLOR gives *out_comm = NULL.  config NULL: the
 * parent's configuration. */
#define LIGHTOS_COMM_SPLIT_NOCOLOR (-1)
LIGHTOS_API lightos_status_t lightos_comm_split(lightos_comm_t comm, int color, int key,
                                                const lightos_comm_config_t* config,
                                                lightos_comm_t* out_comm);

/* Waits for the communicator's enqueued operations, then frees it. */
LIGHTOS_API lightos_status_t lightos_comm_destroy(lightos_comm_t comm);
/* Fails the communicator's pending and future operations with
 * LIGHTOS_ABORTED at once, and tells the other ranks where the transport
 * can (they then fail too).  Still destroy it afterwards. */
LIGHTOS_API lightos_status_t lightos_comm_abort(lightos_comm_t comm);

LIGHTOS_API lightos_status_t lightos_comm_rank(lightos_comm_t comm, uint32_t* out_rank);
LIGHTOS_API lightos_status_t lightos_comm_size(lightos_comm_t comm, uint32_t* out_size);
LIGHTOS_API lightos_status_t lightos_comm_level(lightos_comm_t comm,
                                                lightos_determinism_t* out_level);
/* The transport and algorithm in use, e.g. "inproc", "tcp", "nccl". */
LIGHTOS_API lightos_status_t lightos_comm_transport(lightos_comm_t comm, const char** out_name);

/* Group calls: operations issued between group_start and group_end (by
 * this thread) are handed over together at group_end, so sends and
 * receives between the same ranks do not wait for one another, and one
 * thread can drive several ranks of an in-process group.  Nestable. */
LIGHTOS_API lightos_status_t lightos_comm_group_start(void);
LIGHTOS_API lightos_status_t lightos_comm_group_end(void);

/* Collectives.  Counts are elements of dtype.  send == recv (the same
 * buffer, or buffers over the same memory) is in place where noted. */

/* recv[i] = op over ranks of send[i], i < count.  In place allowed. */
LIGHTOS_API lightos_status_t lightos_comm_allreduce(lightos_buffer_t send,
                                                    lightos_buffer_t recv, size_t count,
                                                    lightos_dtype_t dtype,
                                                    lightos_reduce_op_t op,
                                                    lightos_comm_t comm,
                                                    lightos_queue_t queue);
/* Allreduce where this rank contributes nsends buffers (micro-batches,
 * say): the result is op over every rank's every contribution.  At
 * TOPOLOGY the tree takes a rank's contributions as leaves in order, so
 * 1 rank x 4 contributions, 2 x 2 and 4 x 1 give the same bits; at STRICT
 * any split does.  recv may be one of sends. */
LIGHTOS_API lightos_status_t lightos_comm_allreduce_multi(const lightos_buffer_t* sends,
                                                          uint32_t nsends,
                                                          lightos_buffer_t recv, size_t count,
                                                          lightos_dtype_t dtype,
                                                          lightos_reduce_op_t op,
                                                          lightos_comm_t comm,
                                                          lightos_queue_t queue);
/* recv (read only on root; may be NULL elsewhere) = op over ranks. */
LIGHTOS_API lightos_status_t lightos_comm_reduce(lightos_buffer_t send, lightos_buffer_t recv,
                                                 size_t count, lightos_dtype_t dtype,
                                                 lightos_reduce_op_t op, uint32_t root,
                                                 lightos_comm_t comm, lightos_queue_t queue);
/* recv = root's send (send is read on root only; may be NULL elsewhere). */
LIGHTOS_API lightos_status_t lightos_comm_broadcast(lightos_buffer_t send,
                                                    lightos_buffer_t recv, size_t count,
                                                    lightos_dtype_t dtype, uint32_t root,
                                                    lightos_comm_t comm,
                                                    lightos_queue_t queue);
/* recv[r*count + i] = rank r's send[i]; recv holds size*count elements.
 * In place when send is recv at offset rank*count (pass recv as send). */
LIGHTOS_API lightos_status_t lightos_comm_allgather(lightos_buffer_t send,
                                                    lightos_buffer_t recv, size_t count,
                                                    lightos_dtype_t dtype,
                                                    lightos_comm_t comm,
                                                    lightos_queue_t queue);
/* send holds size*recvcount elements; recv[i] = op over ranks of
 * send[rank*recvcount + i]. */
LIGHTOS_API lightos_status_t lightos_comm_reduce_scatter(lightos_buffer_t send,
                                                         lightos_buffer_t recv,
                                                         size_t recvcount,
                                                         lightos_dtype_t dtype,
                                                         lightos_reduce_op_t op,
                                                         lightos_comm_t comm,
                                                         lightos_queue_t queue);
/* recv[p*count + i] = rank p's send[rank*count + i]; not in place. */
LIGHTOS_API lightos_status_t lightos_comm_alltoall(lightos_buffer_t send,
                                                   lightos_buffer_t recv, size_t count,
                                                   lightos_dtype_t dtype,
                                                   lightos_comm_t comm,
                                                   lightos_queue_t queue);
/* Point to point; a send and a receive between two ranks that wait on each
 * other in one rank's order belong in one group. */
LIGHTOS_API lightos_status_t lightos_comm_send(lightos_buffer_t send, size_t count,
                                               lightos_dtype_t dtype, uint32_t peer,
                                               lightos_comm_t comm, lightos_queue_t queue);
LIGHTOS_API lightos_status_t lightos_comm_recv(lightos_buffer_t recv, size_t count,
                                               lightos_dtype_t dtype, uint32_t peer,
                                               lightos_comm_t comm, lightos_queue_t queue);
LIGHTOS_API lightos_status_t lightos_comm_barrier(lightos_comm_t comm, lightos_queue_t queue);

#ifdef __cplusplus
}
#endif
#endif
