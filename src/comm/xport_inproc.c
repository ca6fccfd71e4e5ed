/* In-process transport: the ranks are threads of one process.
 *
 * A send is posted as a descriptor (address, length) on the channel from
 * its rank to the peer; the receiver copies straight from the sender's
 * memory into its own (one memcpy per message, copies of different
 * receivers run in parallel), then marks the descriptor done.  A batch
 * returns once its receives are copied and its sends were taken and
 * copied.
 *
 * Any failure (a timeout, a length mismatch, abort) fails the whole group:
 * every rank's pending and later exchanges return at once, so no rank
 * waits for a peer that will never come.  A failing sender first takes its
 * descriptors back, and waits for copies already running from its memory,
 * so nothing reads a buffer after its exchange returned. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "comm/xport.h"
#include "core/error.h"
#include "core/util.h"
#include <pthread.h>

typedef struct lk_ip_msg {
  struct lk_ip_msg* next;
  const void* buf;
  size_t bytes;
  bool in_copy; /* a receiver is copying from buf */
  bool done;    /* copied */
} lk_ip_msg_t;

typedef struct lk_ip_group {
  struct lk_ip_group* next; /* the registry */
  uint64_t nonce;
  uint32_t nranks;
  uint32_t joined;          /* bit set of joined ranks is `joined_mask` */
  unsigned char* joined_mask;
  int refs;                 /* endpoints + the id (until every rank joined) */
  bool id_ref;
  pthread_mutex_t lock;
  pthread_cond_t cv;
  bool failed;
  lightos_status_t fail_status;
  char why[384];
  lk_ip_msg_t** head;       /* channel src->dst: index src * nranks + dst */
  lk_ip_msg_t** tail;
} lk_ip_group_t;

typedef struct lk_ip_xport {
  lk_xport_t base;
  lk_ip_group_t* g;
} lk_ip_xport_t;

static pthread_mutex_t lk_ip_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static lk_ip_group_t* lk_ip_registry;

static void lk_ip_group_free(lk_ip_group_t* g) {
  pthread_mutex_destroy(&g->lock);
  pthread_cond_destroy(&g->cv);
  free(g->head);
  free(g->tail);
  free(g->joined_mask);
  free(g);
}

/* Drops one reference (registry lock held). */
static void lk_ip_unref_locked(lk_ip_group_t* g) {
  if (--g->refs > 0) return;
  for (lk_ip_group_t** p = &lk_ip_registry; *p; p = &(*p)->next)
    if (*p == g) {
      *p = g->next;
      break;
    }
  lk_ip_group_free(g);
}

lightos_status_t lk_inproc_new_id(uint32_t nranks, lk_xport_id_t* out_id) {
  if (nranks == 0) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "nranks is 0");
  size_t nn;
  if (!lk_mul_ok(nranks, nranks, &nn) || nn > (SIZE_MAX / sizeof(void*)))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "nranks %u is too large", nranks);
  lk_ip_group_t* g = calloc(1, sizeof *g);
  if (g) {
    g->head = calloc(nn, sizeof *g->head);
    g->tail = calloc(nn, sizeof *g->tail);
    g->joined_mask = calloc(nranks, 1);
  }
  if (!g || !g->head || !g->tail || !g->joined_mask) {
    if (g) {
      free(g->head);
      free(g->tail);
      free(g->joined_mask);
      free(g);
    }
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a group of %u ranks", nranks);
  }
  pthread_mutex_init(&g->lock, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->nranks = nranks;
  g->refs = 1;
  g->id_ref = true;
  uint64_t nonce = 0;
  if (getrandom(&nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce) nonce = lk_now_ns();
  memset(out_id, 0, sizeof *out_id);
  out_id->magic = LK_XPORT_ID_MAGIC;
  out_id->kind = LK_XPORT_INPROC;
  pthread_mutex_lock(&lk_ip_registry_lock);
  /* Nonces are unique among live groups. */
  for (lk_ip_group_t* o = lk_ip_registry; o; o = o->next)
    if (o->nonce == nonce) {
      nonce++;
      o = lk_ip_registry;
    }
  g->nonce = nonce;
  g->next = lk_ip_registry;
  lk_ip_registry = g;
  pthread_mutex_unlock(&lk_ip_registry_lock);
  out_id->nonce = nonce;
  return LIGHTOS_SUCCESS;
}

static lk_ip_group_t* lk_ip_find_locked(uint64_t nonce) {
  for (lk_ip_group_t* g = lk_ip_registry; g; g = g->next)
    if (g->nonce == nonce) return g;
  return NULL;
}

void lk_inproc_drop_id(const lk_xport_id_t* id) {
  if (!id || id->magic != LK_XPORT_ID_MAGIC || id->kind != LK_XPORT_INPROC) return;
  pthread_mutex_lock(&lk_ip_registry_lock);
  lk_ip_group_t* g = lk_ip_find_locked(id->nonce);
  if (g && g->id_ref) {
    g->id_ref = false;
    lk_ip_unref_locked(g);
  }
  pthread_mutex_unlock(&lk_ip_registry_lock);
}

/* Fails the group (lock held): every rank's exchange returns. */
static void lk_ip_fail_locked(lk_ip_group_t* g, lightos_status_t s, const char* why) {
  if (g->failed) return;
  g->failed = true;
  g->fail_status = s;
  lk_strlcpy(g->why, why, sizeof g->why);
  pthread_cond_broadcast(&g->cv);
}

/* Takes back this batch's descriptors that no receiver took, and waits for
 * copies running from them (lock held). */
static void lk_ip_withdraw_locked(lk_ip_group_t* g, uint32_t rank, lk_ip_msg_t* msgs,
                                  size_t nmsgs) {
  for (size_t i = 0; i < nmsgs; ++i) {
    lk_ip_msg_t* m = &msgs[i];
    if (m->done || m->in_copy) continue;
    for (uint32_t d = 0; d < g->nranks; ++d) {
      size_t ch = (size_t)rank * g->nranks + d;
      lk_ip_msg_t* prev = NULL;
      for (lk_ip_msg_t* it = g->head[ch]; it; prev = it, it = it->next) {
        if (it != m) continue;
        if (prev) prev->next = it->next;
        else g->head[ch] = it->next;
        if (g->tail[ch] == it) g->tail[ch] = prev;
        m->done = true;
        break;
      }
      if (m->done) break;
    }
  }
  for (;;) {
    bool busy = false;
    for (size_t i = 0; i < nmsgs; ++i) busy |= msgs[i].in_copy;
    if (!busy) break;
    pthread_cond_wait(&g->cv, &g->lock);
  }
}

static lightos_status_t lk_ip_failure(const lk_ip_group_t* g, uint32_t rank) {
  return LK_FAIL(g->fail_status ? g->fail_status : LIGHTOS_ABORTED, "rank %u: group failed: %s",
                 rank, g->why);
}

static lightos_status_t lk_ip_exchange(lk_xport_t* x, const lk_xop_t* ops, size_t n,
                                       uint64_t deadline_ns) {
  lk_ip_xport_t* ip = (lk_ip_xport_t*)x;
  lk_ip_group_t* g = ip->g;
  const uint32_t me = x->rank, nr = g->nranks;
  size_t nsend = 0, nrecv = 0;
  for (size_t i = 0; i < n; ++i) {
    if (ops[i].peer >= nr)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "peer %u is not a rank of a %u-rank group",
                     ops[i].peer, nr);
    if (!ops[i].bytes) continue;
    if (ops[i].is_send) nsend++;
    else nrecv++;
  }
  lk_ip_msg_t stack_msgs[16];
  lk_ip_msg_t* msgs = nsend <= 16 ? stack_msgs : calloc(nsend, sizeof *msgs);
  const lk_xop_t* stack_recvs[16];
  const lk_xop_t** recvs = nrecv <= 16 ? stack_recvs : calloc(nrecv, sizeof *recvs);
  if (!msgs || !recvs) {
    if (msgs != stack_msgs) free(msgs);
    if (recvs != stack_recvs) free(recvs);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for an exchange of %zu ops", n);
  }
  lightos_status_t s = LIGHTOS_SUCCESS;
  pthread_mutex_lock(&g->lock);
  if (g->failed) {
    s = lk_ip_failure(g, me);
    pthread_mutex_unlock(&g->lock);
    goto out;
  }
  size_t k = 0, nr_left = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!ops[i].bytes) continue;
    if (!ops[i].is_send) {
      recvs[nr_left++] = &ops[i];
      continue;
    }
    lk_ip_msg_t* m = &msgs[k++];
    *m = (lk_ip_msg_t){.buf = ops[i].buf, .bytes = ops[i].bytes};
    size_t ch = (size_t)me * nr + ops[i].peer;
    if (g->tail[ch]) g->tail[ch]->next = m;
    else g->head[ch] = m;
    g->tail[ch] = m;
  }
  if (nsend) pthread_cond_broadcast(&g->cv);

  size_t recv_done = 0;
  for (;;) {
    if (g->failed) {
      s = lk_ip_failure(g, me);
      break;
    }
    bool progress = false;
    /* The first pending receive of each peer takes that channel's head. */
    for (size_t i = 0; i < nr_left; ++i) {
      const lk_xop_t* op = recvs[i];
      if (!op) continue;
      bool earlier = false;
      for (size_t j = 0; j < i && !earlier; ++j) earlier = recvs[j] && recvs[j]->peer == op->peer;
      if (earlier) continue;
      size_t ch = (size_t)op->peer * nr + me;
      lk_ip_msg_t* m = g->head[ch];
      if (!m) continue;
      g->head[ch] = m->next;
      if (!g->head[ch]) g->tail[ch] = NULL;
      if (m->bytes != op->bytes) {
        char why[256];
        snprintf(why, sizeof why,
                 "rank %u expected %zu bytes from rank %u, got %zu: the ranks issued different "
                 "operations",
                 me, op->bytes, op->peer, m->bytes);
        m->done = true;
        lk_ip_fail_locked(g, LIGHTOS_INVALID_ARGUMENT, why);
        progress = true;
        break;
      }
      m->in_copy = true;
      pthread_mutex_unlock(&g->lock);
      memcpy(op->buf, m->buf, op->bytes);
      pthread_mutex_lock(&g->lock);
      m->in_copy = false;
      m->done = true;
      pthread_cond_broadcast(&g->cv);
      recvs[i] = NULL;
      recv_done++;
      progress = true;
    }
    if (g->failed) continue;
    if (recv_done == nr_left) {
      bool sends_done = true;
      for (size_t i = 0; i < nsend && sends_done; ++i) sends_done = msgs[i].done;
      if (sends_done) break;
    }
    if (progress) continue;
    uint64_t now = lk_now_ns();
    if (now >= deadline_ns) {
      char why[256];
      size_t len = 0;
      lk_sbprintf(why, sizeof why, &len, "rank %u timed out waiting for", me);
      for (size_t i = 0; i < nr_left; ++i)
        if (recvs[i]) lk_sbprintf(why, sizeof why, &len, " a message from rank %u;", recvs[i]->peer);
      for (size_t i = 0, j = 0; i < n; ++i) {
        if (!ops[i].bytes || !ops[i].is_send) continue;
        if (!msgs[j++].done) lk_sbprintf(why, sizeof why, &len, " rank %u to take a message;", ops[i].peer);
      }
      lk_ip_fail_locked(g, LIGHTOS_TIMEOUT, why);
      continue;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wait = deadline_ns - now;
    if (wait > 1000000000ull) wait = 1000000000ull; /* re-check the clock each second */
    ts.tv_sec += (time_t)(wait / 1000000000ull);
    ts.tv_nsec += (long)(wait % 1000000000ull);
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    int rc = pthread_cond_timedwait(&g->cv, &g->lock, &ts);
    (void)rc;
  }
  if (s) lk_ip_withdraw_locked(g, me, msgs, nsend);
  pthread_mutex_unlock(&g->lock);
out:
  if (msgs != stack_msgs) free(msgs);
  if (recvs != stack_recvs) free(recvs);
  return s;
}

static void lk_ip_abort(lk_xport_t* x, const char* why) {
  lk_ip_group_t* g = ((lk_ip_xport_t*)x)->g;
  char msg[384];
  snprintf(msg, sizeof msg, "rank %u aborted: %s", x->rank, why ? why : "abort requested");
  pthread_mutex_lock(&g->lock);
  lk_ip_fail_locked(g, LIGHTOS_ABORTED, msg);
  pthread_mutex_unlock(&g->lock);
}

static void lk_ip_destroy(lk_xport_t* x) {
  lk_ip_xport_t* ip = (lk_ip_xport_t*)x;
  pthread_mutex_lock(&lk_ip_registry_lock);
  lk_ip_unref_locked(ip->g);
  pthread_mutex_unlock(&lk_ip_registry_lock);
  free(ip);
}

static const lk_xport_vtbl_t lk_ip_vtbl = {"inproc", lk_ip_exchange, lk_ip_abort, lk_ip_destroy, NULL};

lightos_status_t lk_inproc_join(const lk_xport_id_t* id, uint32_t nranks, uint32_t rank,
                                lk_xport_t** out) {
  if (!id || id->magic != LK_XPORT_ID_MAGIC || id->kind != LK_XPORT_INPROC)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "id is not an in-process group id");
  lk_ip_xport_t* ip = calloc(1, sizeof *ip);
  if (!ip) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for an endpoint");
  pthread_mutex_lock(&lk_ip_registry_lock);
  lk_ip_group_t* g = lk_ip_find_locked(id->nonce);
  lightos_status_t s = LIGHTOS_SUCCESS;
  if (!g || !g->id_ref)
    s = LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "id names no group of this process that is still open");
  else if (nranks != g->nranks)
    s = LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "nranks %u differs from the group's %u", nranks,
                g->nranks);
  else if (rank >= nranks)
    s = LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "rank %u is not below nranks %u", rank, nranks);
  else if (g->joined_mask[rank])
    s = LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "rank %u has already joined the group", rank);
  if (s) {
    pthread_mutex_unlock(&lk_ip_registry_lock);
    free(ip);
    return s;
  }
  g->joined_mask[rank] = 1;
  g->refs++;
  if (++g->joined == g->nranks) {
    g->id_ref = false;
    lk_ip_unref_locked(g); /* cannot free: this endpoint holds a reference */
  }
  pthread_mutex_unlock(&lk_ip_registry_lock);
  ip->base.vtbl = &lk_ip_vtbl;
  ip->base.rank = rank;
  ip->base.size = nranks;
  ip->g = g;
  *out = &ip->base;
  return LIGHTOS_SUCCESS;
}
