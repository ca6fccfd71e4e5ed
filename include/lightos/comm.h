/* Communicators and collectives.
 *
 * A communicator is a group of ranks, one device context per rank.
 * lightos_comm_init_all creates the communicators of an in-process group:
 * one per context, rank i on contexts[i].
 *
 * Status of this release: groups of one rank are complete (the seed
 * example); multi-rank groups, the deterministic levels and the transports
 * (in-process, MPI, NCCL) are being built (see docs/collectives.md), and
 * lightos_comm_init_all with more than one context currently returns
 * LIGHTOS_UNSUPPORTED.
 */
#ifndef LIGHTOS_COMM_H
#define LIGHTOS_COMM_H

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

LIGHTOS_API lightos_status_t lightos_comm_init_all(uint32_t ncontexts,
                                                   const lightos_context_t* contexts,
                                                   lightos_comm_t* out_comms);
LIGHTOS_API lightos_status_t lightos_comm_destroy(lightos_comm_t comm);
LIGHTOS_API lightos_status_t lightos_comm_rank(lightos_comm_t comm, uint32_t* out_rank);
LIGHTOS_API lightos_status_t lightos_comm_size(lightos_comm_t comm, uint32_t* out_size);

/* recv[i] = op over ranks of send[i], for i < count.  send == recv is
 * in place.  Enqueued on `queue` (a queue of the rank's context; NULL =
 * the context's default queue). */
LIGHTOS_API lightos_status_t lightos_comm_allreduce(lightos_buffer_t send,
                                                    lightos_buffer_t recv, size_t count,
                                                    lightos_dtype_t dtype,
                                                    lightos_reduce_op_t op,
                                                    lightos_comm_t comm,
                                                    lightos_queue_t queue);

#ifdef __cplusplus
}
#endif
#endif
