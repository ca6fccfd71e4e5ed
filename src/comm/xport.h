/* Transports: how the ranks of a group move bytes to one another.
 *
 * A transport endpoint belongs to one rank.  The only data operation is
 * exchange(): a batch of sends and receives that progress together and
 * complete together.  Messages between one ordered pair of ranks match in
 * the order they were posted, and their lengths must agree (a mismatch is
 * an error naming both lengths: the ranks issued different operations).
 *
 * Implementations: xport_inproc.c (threads of one process, one memcpy per
 * message, done by the receiver) and xport_tcp.c (processes and machines,
 * sockets in a full mesh).
 *
 * Group ids: a transport's join information fits in lk_xport_id_t (the
 * public lightos_comm_unique_id_t carries it); the first bytes say which
 * transport made it. */
#ifndef LK_COMM_XPORT_H
#define LK_COMM_XPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lightos/comm.h"

typedef struct lk_xop {
  bool is_send;
  uint32_t peer;
  void* buf;          /* send: read; receive: written */
  size_t bytes;       /* 0: nothing is sent (the op is skipped) */
} lk_xop_t;

typedef struct lk_xport lk_xport_t;

typedef struct lk_xport_vtbl {
  const char* name; /* "inproc", "tcp" */
  /* Runs the batch.  Returns SUCCESS; LIGHTOS_TIMEOUT when deadline_ns
   * (lk_now_ns() clock) passes first; LIGHTOS_ABORTED after abort() or when
   * a peer is gone (the message names the peer).  After a failure the
   * endpoint is unusable: later calls fail at once. */
  lightos_status_t (*exchange)(lk_xport_t* x, const lk_xop_t* ops, size_t n,
                               uint64_t deadline_ns);
  /* Makes pending and later exchanges fail with LIGHTOS_ABORTED and, where
   * the transport can, makes the peers' exchanges fail too.  Callable from
   * any thread, also while exchange() runs, and more than once. */
  void (*abort)(lk_xport_t* x, const char* why);
  /* Frees the endpoint (no exchange may be running). */
  void (*destroy)(lk_xport_t* x);
  /* Optional (NULL: cannot tell): true when a peer's connection is gone
   * (closed, reset) or the endpoint has failed, with why.  Does not block
   * or consume data; callable from any thread, also while exchange() runs.
   * A peer that destroyed its communicator looks the same as one that
   * died: callers decide by what they still wait for. */
  bool (*peer_lost)(lk_xport_t* x, char* why, size_t cap);
} lk_xport_vtbl_t;

struct lk_xport {
  const lk_xport_vtbl_t* vtbl;
  uint32_t rank, size;
};

#define LK_XPORT_ID_MAGIC 0x4c4b4944u /* "LKID" */
enum { LK_XPORT_INPROC = 1, LK_XPORT_TCP = 2 };

typedef struct lk_xport_id {
  uint32_t magic;
  uint32_t kind;               /* LK_XPORT_INPROC / LK_XPORT_TCP */
  uint64_t nonce;              /* random: tells groups apart */
  unsigned char data[LIGHTOS_COMM_UNIQUE_ID_BYTES - 16];
} lk_xport_id_t;

_Static_assert(sizeof(lk_xport_id_t) == LIGHTOS_COMM_UNIQUE_ID_BYTES, "id size");

/* In-process groups.  lk_inproc_new_id makes a group of nranks ranks
 * (referenced by the id until every rank joined); lk_inproc_join attaches
 * rank `rank` without waiting for the others. */
lightos_status_t lk_inproc_new_id(uint32_t nranks, lk_xport_id_t* out_id);
lightos_status_t lk_inproc_join(const lk_xport_id_t* id, uint32_t nranks, uint32_t rank,
                                lk_xport_t** out);
/* Drops an id's group when not every rank will join (init failed). */
void lk_inproc_drop_id(const lk_xport_id_t* id);

/* TCP groups.  lk_tcp_new_id starts this process's rendezvous service
 * (a thread that exits once every rank has joined, or after
 * LIGHTOS_COMM_TIMEOUT seconds);
 * lk_tcp_join connects rank `rank` to every other rank, blocking until the
 * mesh is complete or deadline_ns. */
lightos_status_t lk_tcp_new_id(lk_xport_id_t* out_id);
lightos_status_t lk_tcp_join(const lk_xport_id_t* id, uint32_t nranks, uint32_t rank,
                             uint64_t deadline_ns, lk_xport_t** out);

/* Application transports (xport_ext.c): ops is copied; on failure
 * ops->destroy has been called. */
lightos_status_t lk_ext_create(uint32_t nranks, uint32_t rank,
                               const lightos_comm_transport_ops_t* ops, lk_xport_t** out);
/* The application transport's name, or NULL for the other transports. */
const char* lk_ext_name(const lk_xport_t* x);

#endif
