/* A transport supplied by the application (lightos_comm_transport_ops_t),
 * e.g. MPI through lightos/comm_mpi.h.
 *
 * exchange() starts every send and receive of the batch (messages over
 * 1 GiB go as several, in order), then tests the pending requests until all
 * are done, the deadline passes or the endpoint is aborted.  Polling backs
 * off from a busy loop to short sleeps so a rank waiting for a slow peer
 * does not burn a core.  After any failure the pending requests are
 * cancelled and the endpoint stays failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/xport.h"
#include "core/error.h"
#include "core/util.h"
#include <stdatomic.h>

#define LK_EXT_PIECE ((size_t)1 << 30)

typedef struct lk_ext_xport {
  lk_xport_t base;
  lightos_comm_transport_ops_t ops;
  atomic_bool aborted;
  bool failed;
  char why[256];
} lk_ext_xport_t;

typedef struct lk_ext_req {
  void* handle;
  uint32_t peer;
  bool is_send, done;
} lk_ext_req_t;

static void lk_ext_fail(lk_ext_xport_t* e, const char* why) {
  if (!e->failed) lk_strlcpy(e->why, why, sizeof e->why);
  e->failed = true;
}

static lightos_status_t lk_ext_exchange(lk_xport_t* x, const lk_xop_t* ops, size_t n,
                                        uint64_t deadline_ns) {
  lk_ext_xport_t* e = (lk_ext_xport_t*)x;
  if (e->failed || atomic_load(&e->aborted))
    return LK_FAIL(LIGHTOS_ABORTED, "rank %u: the %s transport failed earlier: %s", x->rank,
                   e->ops.name, e->failed ? e->why : "aborted");
  size_t npieces = 0;
  for (size_t i = 0; i < n; ++i) {
    if (ops[i].peer >= x->size)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "peer %u is not a rank of a %u-rank group",
                     ops[i].peer, x->size);
    npieces += (ops[i].bytes + LK_EXT_PIECE - 1) / LK_EXT_PIECE;
  }
  lk_ext_req_t* reqs = calloc(npieces ? npieces : 1, sizeof *reqs);
  if (!reqs) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for %zu requests", npieces);
  lightos_status_t s = LIGHTOS_SUCCESS;
  size_t k = 0;
  for (size_t i = 0; i < n && !s; ++i) {
    for (size_t off = 0; off < ops[i].bytes && !s; off += LK_EXT_PIECE) {
      size_t len = ops[i].bytes - off < LK_EXT_PIECE ? ops[i].bytes - off : LK_EXT_PIECE;
      lk_ext_req_t* r = &reqs[k];
      r->peer = ops[i].peer;
      r->is_send = ops[i].is_send;
      int rc = ops[i].is_send
                   ? e->ops.isend(e->ops.state, (const char*)ops[i].buf + off, len, r->peer, &r->handle)
                   : e->ops.irecv(e->ops.state, (char*)ops[i].buf + off, len, r->peer, &r->handle);
      if (rc) {
        char why[160];
        snprintf(why, sizeof why, "%s: starting a %s of %zu bytes %s rank %u failed (%d)",
                 e->ops.name, r->is_send ? "send" : "receive", len, r->is_send ? "to" : "from",
                 r->peer, rc);
        lk_ext_fail(e, why);
        s = LK_FAIL(LIGHTOS_ABORTED, "rank %u: %s", x->rank, why);
        break;
      }
      k++;
    }
  }
  size_t left = k;
  unsigned idle = 0;
  while (!s && left) {
    bool progress = false;
    for (size_t i = 0; i < k && !s; ++i) {
      if (reqs[i].done) continue;
      int done = 0;
      int rc = e->ops.test(e->ops.state, reqs[i].handle, &done);
      if (rc) {
        char why[160];
        snprintf(why, sizeof why, "%s: a %s %s rank %u failed (%d: lengths differ, or the peer "
                 "is gone)", e->ops.name, reqs[i].is_send ? "send" : "receive",
                 reqs[i].is_send ? "to" : "from", reqs[i].peer, rc);
        reqs[i].done = true; /* released by the transport on error */
        left--;
        lk_ext_fail(e, why);
        s = LK_FAIL(LIGHTOS_ABORTED, "rank %u: %s", x->rank, why);
      } else if (done) {
        reqs[i].done = true;
        left--;
        progress = true;
      }
    }
    if (s || !left) break;
    if (atomic_load(&e->aborted)) {
      lk_ext_fail(e, "aborted");
      s = LK_FAIL(LIGHTOS_ABORTED, "rank %u: the communicator was aborted", x->rank);
      break;
    }
    if (lk_now_ns() >= deadline_ns) {
      char why[200];
      size_t len = 0;
      lk_sbprintf(why, sizeof why, &len, "rank %u timed out waiting for", x->rank);
      for (size_t i = 0; i < k; ++i)
        if (!reqs[i].done)
          lk_sbprintf(why, sizeof why, &len, " %s rank %u;", reqs[i].is_send ? "a send to" : "a message from",
                      reqs[i].peer);
      lk_ext_fail(e, why);
      s = LK_FAIL(LIGHTOS_TIMEOUT, "%s", why);
      break;
    }
    if (progress) {
      idle = 0;
    } else if (++idle > 1000) {
      struct timespec ts = {0, idle > 100000 ? 1000000 : 20000};
      nanosleep(&ts, NULL);
    }
  }
  if (s)
    for (size_t i = 0; i < k; ++i)
      if (!reqs[i].done) e->ops.cancel(e->ops.state, reqs[i].handle);
  free(reqs);
  return s;
}

static void lk_ext_abort(lk_xport_t* x, const char* why) {
  (void)why;
  atomic_store(&((lk_ext_xport_t*)x)->aborted, true);
}

static void lk_ext_destroy(lk_xport_t* x) {
  lk_ext_xport_t* e = (lk_ext_xport_t*)x;
  if (e->ops.destroy) e->ops.destroy(e->ops.state);
  free(e);
}

static const lk_xport_vtbl_t lk_ext_vtbl = {"ext", lk_ext_exchange, lk_ext_abort, lk_ext_destroy, NULL};

lightos_status_t lk_ext_create(uint32_t nranks, uint32_t rank,
                               const lightos_comm_transport_ops_t* ops, lk_xport_t** out) {
  lk_ext_xport_t* e = calloc(1, sizeof *e);
  if (!e) {
    if (ops->destroy) ops->destroy(ops->state);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a transport");
  }
  e->base.vtbl = &lk_ext_vtbl;
  e->base.rank = rank;
  e->base.size = nranks;
  e->ops = *ops;
  if (!e->ops.name) e->ops.name = "ext";
  *out = &e->base;
  return LIGHTOS_SUCCESS;
}

const char* lk_ext_name(const lk_xport_t* x) {
  return x->vtbl == &lk_ext_vtbl ? ((const lk_ext_xport_t*)x)->ops.name : NULL;
}
