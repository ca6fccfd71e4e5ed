/* Communicators and the collectives' enqueue path.
 *
 * Each communicator has a proxy thread.  Enqueueing a collective records a
 * marker event on the caller's queue (the work before it), makes a second
 * event that the proxy signals, makes the queue wait for that one (the
 * work after it), and hands the operation to the proxy: the call never
 * blocks, and one thread can drive every rank of an in-process group.
 * The proxy waits for the marker, reads the buffers (directly on CPU
 * devices, through a staging queue elsewhere), runs the host algorithm
 * over the transport (comm_algo.c), writes the result back and signals.
 *
 * A failure of the transport (a timeout, a peer gone, abort) aborts the
 * communicator: its later operations fail at once with the first reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "comm/comm_internal.h"
#include "comm/comm_nccl.h"
#include "comm/comm_reduce.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/util.h"

/* ---- Configuration -------------------------------------------------------- */

LIGHTOS_API const char* lightos_determinism_name(lightos_determinism_t level) {
  switch (level) {
    case LIGHTOS_DETERMINISM_NONE: return "none";
    case LIGHTOS_DETERMINISM_RUN: return "run";
    case LIGHTOS_DETERMINISM_TOPOLOGY: return "topology";
    case LIGHTOS_DETERMINISM_STRICT: return "strict";
  }
  return "unknown";
}

LIGHTOS_API lightos_status_t lightos_comm_config_default(lightos_comm_config_t* out) {
  LK_CHECK_OUT(out, "out_config");
  memset(out, 0, sizeof *out);
  out->struct_size = sizeof *out;
  out->level = LIGHTOS_DETERMINISM_TOPOLOGY;
  const char* lv = getenv("LIGHTOS_COMM_LEVEL");
  if (lv && *lv) {
    lightos_determinism_t l;
    for (l = LIGHTOS_DETERMINISM_NONE; l <= LIGHTOS_DETERMINISM_STRICT; ++l)
      if (!strcasecmp(lv, lightos_determinism_name(l))) break;
    if (l > LIGHTOS_DETERMINISM_STRICT)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "LIGHTOS_COMM_LEVEL '%s' is not none, run, topology or strict", lv);
    out->level = l;
  }
  out->timeout_s = 300.0;
  const char* to = getenv("LIGHTOS_COMM_TIMEOUT");
  if (to && *to) {
    char* end = NULL;
    double t = strtod(to, &end);
    if (!end || *end || !(t > 0) || t > 1e9)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "LIGHTOS_COMM_TIMEOUT '%s' is not a positive number of seconds", to);
    out->timeout_s = t;
  }
  if (lk_env_flag("LIGHTOS_COMM_CHECK", false)) out->flags |= LIGHTOS_COMM_CHECK;
  return LIGHTOS_SUCCESS;
}

/* The effective configuration of `in` (NULL: defaults). */
static lightos_status_t lk_config_resolve(const lightos_comm_config_t* in,
                                          lightos_comm_config_t* out) {
  lightos_status_t s = lightos_comm_config_default(out);
  if (s) return s;
  if (!in) return LIGHTOS_SUCCESS;
  if (in->struct_size != sizeof *in)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "config->struct_size %u is not sizeof(lightos_comm_config_t) (%zu)",
                   in->struct_size, sizeof *in);
  if ((unsigned)in->level > LIGHTOS_DETERMINISM_STRICT)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "config->level %d is not a lightos_determinism_t",
                   (int)in->level);
  if (in->timeout_s < 0 || in->timeout_s != in->timeout_s || in->timeout_s > 1e9)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "config->timeout_s %g is not a valid timeout",
                   in->timeout_s);
  if (in->flags & ~LIGHTOS_COMM_CHECK)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "config->flags 0x%x has unknown bits", in->flags);
  double t = out->timeout_s;
  *out = *in;
  if (out->timeout_s == 0) out->timeout_s = t;
  return LIGHTOS_SUCCESS;
}

static uint64_t lk_deadline(const lk_comm_t* c) {
  double ns = c->config.timeout_s * 1e9;
  uint64_t now = lk_now_ns();
  return ns >= (double)(UINT64_MAX - now) ? UINT64_MAX : now + (uint64_t)ns;
}

/* ---- Objects -------------------------------------------------------------- */

static void lk_comm_free(lk_object_t* obj) {
  lk_comm_t* c = (lk_comm_t*)obj;
  if (c->xport) c->xport->vtbl->destroy(c->xport);
  free(c->spans);
  free(c->hier_span);
  lk_scratch_free(&c->scratch);
  pthread_mutex_destroy(&c->lock);
  pthread_cond_destroy(&c->cv);
  lk_object_unref(&c->context->obj);
  free(c);
}

/* The operation as the device path sees it. */
static lk_coll_desc_t lk_desc(const lk_coll_t* op) {
  return (lk_coll_desc_t){op->kind, op->sends, op->nsends, op->multi, op->recv,
                          op->count, op->dtype, op->op, op->root};
}

static void lk_coll_free(lk_coll_t* op) {
  for (uint32_t i = 0; i < op->nsends; ++i)
    if (op->sends[i]) lk_object_unref(&op->sends[i]->obj);
  free(op->sends);
  if (op->recv) lk_object_unref(&op->recv->obj);
  if (op->ready) lk_object_unref(&op->ready->obj);
  if (op->done) lightos_event_release(LK_HANDLE(op->done)); /* the handle made for it */
  if (op->wait_queue) lk_object_unref(&op->wait_queue->obj);
  if (op->comm) lk_object_unref(&op->comm->obj);
  free(op);
}

void lk_comm_set_aborted(lk_comm_t* c, const char* why) {
  pthread_mutex_lock(&c->lock);
  if (!atomic_load(&c->aborted)) {
    lk_strlcpy(c->abort_msg, why, sizeof c->abort_msg);
    atomic_store(&c->aborted, true);
  }
  pthread_mutex_unlock(&c->lock);
}

/* ---- Host views of buffers ------------------------------------------------ */

typedef struct lk_view {
  lk_buffer_t* buf;
  void* ptr;
  size_t bytes;
  bool staged; /* ptr is a host copy */
} lk_view_t;

static bool lk_same_memory(const lk_buffer_t* a, const lk_buffer_t* b) {
  return a == b || (a && b && a->mem.device_ptr == b->mem.device_ptr &&
                    a->mem.native == b->mem.native && a->offset == b->offset);
}

static lightos_status_t lk_view_open(lk_comm_t* c, lk_buffer_t* b, size_t bytes, bool read,
                                     lk_view_t* v) {
  *v = (lk_view_t){.buf = b, .bytes = bytes};
  if (c->context->device->hal->info.backend == LIGHTOS_BACKEND_CPU && b->mem.device_ptr) {
    v->ptr = (char*)b->mem.device_ptr + b->offset;
    return LIGHTOS_SUCCESS;
  }
  v->staged = true;
  v->ptr = malloc(bytes ? bytes : 1);
  if (!v->ptr)
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for %zu staging bytes", bytes);
  if (!read || !bytes) return LIGHTOS_SUCCESS;
  lightos_queue_t q = LK_HANDLE(c->staging_queue);
  lightos_status_t s = lightos_enqueue_read(q, LK_HANDLE(b), 0, bytes, v->ptr, NULL);
  if (!s) s = lightos_queue_finish(q);
  return s;
}

static lightos_status_t lk_view_close(lk_comm_t* c, lk_view_t* v, bool write,
                                      lightos_status_t s) {
  if (v->staged) {
    if (!s && write && v->bytes) {
      lightos_queue_t q = LK_HANDLE(c->staging_queue);
      s = lightos_enqueue_write(q, LK_HANDLE(v->buf), 0, v->bytes, v->ptr, NULL);
      if (!s) s = lightos_queue_finish(q);
    }
    free(v->ptr);
  }
  v->ptr = NULL;
  return s;
}

/* ---- Running one operation (proxy thread) ---------------------------------- */

static lightos_status_t lk_check_results(lk_comm_t* c, const lk_algo_t* a, const void* data,
                                         size_t bytes, const char* what) {
  uint8_t* all = malloc((size_t)c->size * 32);
  if (!all) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for the check");
  lk_sha256(data, bytes, all + (size_t)c->rank * 32);
  lightos_status_t s = lk_algo_allgather(a, all + (size_t)c->rank * 32, all, 32);
  for (uint32_t r = 1; !s && r < c->size; ++r)
    if (memcmp(all, all + (size_t)r * 32, 32))
      s = LK_FAIL(LIGHTOS_INTERNAL,
                  "check: %s result of rank %u differs from rank 0's (%zu bytes; the ranks hold "
                  "different results)",
                  what, r, bytes);
  free(all);
  return s;
}

static lightos_status_t lk_run_split(lk_comm_t* c, const lk_algo_t* a, lk_coll_t* op);

static lightos_status_t lk_run(lk_comm_t* c, lk_coll_t* op) {
  if (c->dev_vtbl && c->dev_vtbl->run && op->kind != LK_COLL_SPLIT) {
    lk_coll_desc_t d = lk_desc(op);
    lightos_status_t ds = c->dev_vtbl->run(c, &d);
    if (ds != LIGHTOS_UNSUPPORTED) return ds;
  }
  lk_algo_t a = {c->xport, c->rank, c->size, c->config.level, lk_deadline(c), &c->scratch,
                 c->spans};
  const size_t es = lightos_dtype_size(op->dtype);
  const size_t bytes = op->count * es;
  lightos_status_t s = LIGHTOS_SUCCESS;
  switch (op->kind) {
    case LK_COLL_BARRIER:
      return lk_algo_barrier(&a);
    case LK_COLL_SPLIT:
      return lk_run_split(c, &a, op);
    case LK_COLL_ALLREDUCE: {
      lk_view_t rv, sv[8];
      lk_view_t* svs = op->nsends <= 8 ? sv : calloc(op->nsends, sizeof *svs);
      const void** sp = malloc(op->nsends * sizeof *sp);
      if (!svs || !sp) {
        if (svs != sv) free(svs);
        free(sp);
        return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
      }
      bool recv_is_send = false;
      for (uint32_t i = 0; i < op->nsends; ++i) recv_is_send |= lk_same_memory(op->sends[i], op->recv);
      s = lk_view_open(c, op->recv, bytes, recv_is_send, &rv);
      uint32_t opened = 0;
      for (; !s && opened < op->nsends; ++opened) {
        if (lk_same_memory(op->sends[opened], op->recv)) {
          svs[opened] = (lk_view_t){0};
          sp[opened] = rv.ptr;
          continue;
        }
        s = lk_view_open(c, op->sends[opened], bytes, true, &svs[opened]);
        sp[opened] = svs[opened].ptr;
        if (s) break;
      }
      if (!s) s = lk_algo_allreduce(&a, sp, op->nsends, op->multi, rv.ptr, op->count, op->dtype, op->op);
      if (!s && (c->config.flags & LIGHTOS_COMM_CHECK)) s = lk_check_results(c, &a, rv.ptr, bytes, "allreduce");
      for (uint32_t i = 0; i < opened && i < op->nsends; ++i)
        if (svs[i].buf) lk_view_close(c, &svs[i], false, s);
      if (opened < op->nsends && svs[opened].buf) lk_view_close(c, &svs[opened], false, s);
      s = lk_view_close(c, &rv, true, s);
      if (svs != sv) free(svs);
      free(sp);
      return s;
    }
    case LK_COLL_REDUCE: {
      bool root = c->rank == op->root;
      lk_view_t sv = {0}, rv = {0};
      bool inplace = root && lk_same_memory(op->sends[0], op->recv);
      s = lk_view_open(c, op->sends[0], bytes, true, &sv);
      if (!s && root && !inplace) s = lk_view_open(c, op->recv, bytes, false, &rv);
      if (!s) s = lk_algo_reduce(&a, sv.ptr, root ? (inplace ? sv.ptr : rv.ptr) : NULL, op->count, op->dtype, op->op, op->root);
      if (rv.buf) s = lk_view_close(c, &rv, true, s);
      if (sv.buf) s = lk_view_close(c, &sv, inplace, s);
      return s;
    }
    case LK_COLL_BROADCAST: {
      bool root = c->rank == op->root;
      lk_view_t rv = {0};
      s = lk_view_open(c, op->recv, bytes, root && lk_same_memory(op->sends[0], op->recv), &rv);
      if (!s && root && !lk_same_memory(op->sends[0], op->recv)) {
        lk_view_t sv;
        s = lk_view_open(c, op->sends[0], bytes, true, &sv);
        if (!s) memcpy(rv.ptr, sv.ptr, bytes);
        lk_view_close(c, &sv, false, s);
      }
      if (!s) s = lk_algo_broadcast(&a, rv.ptr, bytes, op->root);
      if (!s && (c->config.flags & LIGHTOS_COMM_CHECK)) s = lk_check_results(c, &a, rv.ptr, bytes, "broadcast");
      return lk_view_close(c, &rv, true, s);
    }
    case LK_COLL_ALLGATHER:
    case LK_COLL_ALLTOALL:
    case LK_COLL_REDUCE_SCATTER: {
      /* Sizes: allgather sends count, receives size*count; alltoall both
       * size*count; reduce_scatter sends size*count, receives count. */
      size_t big = bytes * c->size;
      size_t sbytes = op->kind == LK_COLL_ALLGATHER ? bytes : big;
      size_t rbytes = op->kind == LK_COLL_REDUCE_SCATTER ? bytes : big;
      bool inplace = lk_same_memory(op->sends[0], op->recv);
      lk_view_t rv = {0}, sv = {0};
      s = lk_view_open(c, op->recv, rbytes, inplace, &rv);
      const void* sptr = NULL;
      if (!s && inplace) {
        sptr = op->kind == LK_COLL_ALLGATHER ? (char*)rv.ptr + (size_t)c->rank * bytes : rv.ptr;
      } else if (!s) {
        s = lk_view_open(c, op->sends[0], sbytes, true, &sv);
        sptr = sv.ptr;
      }
      if (!s) {
        if (op->kind == LK_COLL_ALLGATHER) s = lk_algo_allgather(&a, sptr, rv.ptr, bytes);
        else if (op->kind == LK_COLL_ALLTOALL) s = lk_algo_alltoall(&a, sptr, rv.ptr, bytes);
        else s = lk_algo_reduce_scatter(&a, sptr, rv.ptr, op->count, op->dtype, op->op);
      }
      if (!s && op->kind == LK_COLL_ALLGATHER && (c->config.flags & LIGHTOS_COMM_CHECK))
        s = lk_check_results(c, &a, rv.ptr, rbytes, "allgather");
      if (sv.buf) lk_view_close(c, &sv, false, s);
      return lk_view_close(c, &rv, true, s);
    }
    case LK_COLL_SEND:
    case LK_COLL_RECV:
      break; /* batched by lk_run_p2p */
  }
  return LK_FAIL(LIGHTOS_INTERNAL, "operation kind %d has no runner", (int)op->kind);
}

/* Consecutive sends and receives of one group progress together. */
static lightos_status_t lk_run_p2p(lk_comm_t* c, lk_coll_t** ops, size_t n) {
  lk_view_t* views = calloc(n, sizeof *views);
  lk_xop_t* xops = calloc(n, sizeof *xops);
  lightos_status_t s = LIGHTOS_SUCCESS;
  if (!views || !xops) {
    free(views);
    free(xops);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  }
  size_t opened = 0;
  for (; opened < n && !s; ++opened) {
    lk_coll_t* op = ops[opened];
    bool send = op->kind == LK_COLL_SEND;
    size_t bytes = op->count * lightos_dtype_size(op->dtype);
    s = lk_view_open(c, send ? op->sends[0] : op->recv, bytes, send, &views[opened]);
    xops[opened] = (lk_xop_t){send, op->root, views[opened].ptr, bytes};
  }
  if (!s) s = c->xport->vtbl->exchange(c->xport, xops, n, lk_deadline(c));
  for (size_t i = 0; i < opened; ++i)
    if (views[i].buf) {
      lightos_status_t t = lk_view_close(c, &views[i], ops[i]->kind == LK_COLL_RECV, s);
      if (!s) s = t;
    }
  free(views);
  free(xops);
  return s;
}

static bool lk_is_transport_failure(lightos_status_t s) {
  return s == LIGHTOS_TIMEOUT || s == LIGHTOS_ABORTED;
}

static lightos_status_t lk_fail_if_aborted(const lk_comm_t* c) {
  if (atomic_load(&c->aborted))
    return LK_FAIL(LIGHTOS_ABORTED, "communicator (rank %u of %u) was aborted: %s", c->rank,
                   c->size, c->abort_msg);
  return LIGHTOS_SUCCESS;
}

/* Waits for an operation's preceding work; SUCCESS or the reason to skip. */
static lightos_status_t lk_op_prologue(lk_comm_t* c, lk_coll_t* op) {
  if (op->ready && lk_event_wait_internal(op->ready))
    return LK_FAIL(LIGHTOS_ABORTED, "collective skipped: the queue's earlier work failed (%s)",
                   lightos_last_error()->message);
  return lk_fail_if_aborted(c);
}

/* A level of a composed group failed (c: a block's or the upper level's
 * communicator): the whole group is broken.  Its peers at this level learn
 * it from the transport, and this rank's other level and group are
 * aborted, so that the failure crosses to the ranks of the other levels
 * at once instead of at their timeout. */
void lk_hier_break(lk_comm_t* c, const char* why) {
  c->xport->vtbl->abort(c->xport, why);
  lk_comm_t* o = c->hier_owner;
  if (!o || atomic_load(&o->aborted)) return;
  lk_comm_set_aborted(o, why);
  o->xport->vtbl->abort(o->xport, why);
  lk_comm_t* other = o->hier_inner == c ? o->hier_outer : o->hier_inner;
  if (other) {
    lk_comm_set_aborted(other, why);
    other->xport->vtbl->abort(other->xport, why);
  }
}

static void lk_op_complete(lk_comm_t* c, lk_coll_t* op, lightos_status_t s) {
  if (s && lk_is_transport_failure(s)) {
    lk_comm_set_aborted(c, lightos_last_error()->message);
    if (c->hier_owner) lk_hier_break(c, lightos_last_error()->message);
  }
  const lightos_error_info_t* e = lightos_last_error();
  lk_event_signal(op->done, s, s ? e->message : "", s ? "comm" : "", 0, 0);
}

static void* lk_proxy_main(void* arg) {
  lk_comm_t* c = arg;
  pthread_mutex_lock(&c->lock);
  for (;;) {
    while (!c->head && !c->stop) pthread_cond_wait(&c->cv, &c->lock);
    if (!c->head) break;
    /* One group (or one operation). */
    lk_coll_t* batch = c->head;
    lk_coll_t* last = batch;
    size_t nb = 1;
    while (!last->batch_end && last->next) {
      last = last->next;
      nb++;
    }
    if (!last->batch_end) { /* the group is still being handed over */
      pthread_cond_wait(&c->cv, &c->lock);
      continue;
    }
    c->head = last->next;
    if (!c->head) c->tail = NULL;
    last->next = NULL;
    pthread_mutex_unlock(&c->lock);

    lk_coll_t** ops = malloc(nb * sizeof *ops);
    size_t i = 0;
    for (lk_coll_t* op = batch; op; op = op->next) {
      if (ops) ops[i] = op;
      i++;
    }
    if (!ops) {
      /* No memory to run the group: fail each operation. */
      for (lk_coll_t* op = batch, *nx; op; op = nx) {
        nx = op->next;
        lk_op_complete(c, op, LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory"));
        lk_coll_free(op);
      }
    } else {
      for (i = 0; i < nb;) {
        size_t j = i;
        bool p2p = ops[i]->kind == LK_COLL_SEND || ops[i]->kind == LK_COLL_RECV;
        if (p2p)
          while (j < nb && (ops[j]->kind == LK_COLL_SEND || ops[j]->kind == LK_COLL_RECV)) j++;
        else
          j = i + 1;
        lightos_status_t s = LIGHTOS_SUCCESS;
        for (size_t k = i; k < j && !s; ++k) s = lk_op_prologue(c, ops[k]);
        if (!s) s = p2p ? lk_run_p2p(c, ops + i, j - i) : lk_run(c, ops[i]);
        for (size_t k = i; k < j; ++k) lk_op_complete(c, ops[k], s);
        i = j;
      }
      for (i = 0; i < nb; ++i) lk_coll_free(ops[i]);
      free(ops);
    }
    pthread_mutex_lock(&c->lock);
    c->inflight -= nb;
    pthread_cond_broadcast(&c->cv);
  }
  pthread_mutex_unlock(&c->lock);
  return NULL;
}

/* ---- Creation --------------------------------------------------------------- */

/* A device path that could not attach leaves the host path: said in the
 * log, not an error of the call. */
static void lk_dev_attach_result(lightos_status_t s) {
  if (s == LIGHTOS_SUCCESS || s == LIGHTOS_UNSUPPORTED) {
    if (s) lightos_clear_error();
    return;
  }
  LK_LOG_INFO("comm: device path not used, the host path runs the collectives: %s",
              lightos_last_error()->message);
  lightos_clear_error();
}

static lightos_status_t lk_comm_new(lk_context_t* ctx, uint32_t rank, uint32_t size,
                                    lk_xport_t* x, const lightos_comm_config_t* cfg,
                                    lk_comm_t** out) {
  lk_comm_t* c = calloc(1, sizeof *c);
  if (!c) {
    x->vtbl->destroy(x);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a communicator");
  }
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->cv, NULL);
  lk_object_ref(&ctx->obj);
  c->context = ctx;
  c->rank = rank;
  c->size = size;
  c->config = *cfg;
  c->xport = x;
  lightos_status_t s = lk_object_init(&c->obj, LK_OBJ_COMM, lk_comm_free);
  if (s) {
    lk_comm_free(&c->obj);
    return s;
  }
  lightos_queue_t q = NULL;
  s = lightos_queue_create(LK_HANDLE(ctx), 0, &q);
  if (!s) {
    lk_object_t* o = NULL;
    lk_handle_resolve(q, LK_OBJ_QUEUE, "queue", &o);
    c->staging_queue = (lk_queue_t*)o;
  }
  if (!s && pthread_create(&c->proxy, NULL, lk_proxy_main, c) != 0)
    s = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "could not start the communicator's proxy thread");
  if (s) {
    if (c->staging_queue) lightos_queue_release(LK_HANDLE(c->staging_queue));
    c->staging_queue = NULL;
    lk_object_ext_release(&c->obj);
    return s;
  }
  c->proxy_started = true;
  *out = c;
  return LIGHTOS_SUCCESS;
}

/* ---- Composed groups ------------------------------------------------------- */

/* The backend of a communicator's device ("cuda", "cpu", "opencl"). */
void lk_uri_backend(const char* uri, char* out, size_t cap) {
  snprintf(out, cap, "%.*s", (int)strcspn(uri, ":"), uri);
}

static void lk_backend_of(const lk_comm_t* c, char* out, size_t cap) {
  lk_uri_backend(c->context->device->hal->info.uri, out, cap);
}

bool lk_hier_lib(const char* backend) {
  char why[256];
  return !strcmp(backend, "cuda") && lk_env_flag("LIGHTOS_COMM_NCCL", true) &&
         lk_nccl_library_version(why, sizeof why) > 0;
}

bool lk_hier_plan(uint32_t n, const char* const* backend, const bool* lib, long mode,
                  uint32_t* span) {
  bool any = false;
  if (mode == 0 || n < 3) {
    for (uint32_t r = 0; r < n; ++r) span[r] = 1;
    return false;
  }
  for (uint32_t r = 0; r < n;) {
    uint32_t e = r + 1;
    while (e < n && !strcmp(backend[e], backend[r])) ++e;
    /* The run [r, e) of one backend: its largest aligned power-of-two
     * blocks (the whole group one block: nothing to compose). */
    for (uint32_t p = r; p < e;) {
      uint32_t k = 1;
      while ((p % (k * 2)) == 0 && p + k * 2 <= e) k *= 2;
      bool can = true;
      for (uint32_t i = 0; i < k; ++i) can = can && lib[p + i];
      for (uint32_t i = 0; i < k; ++i) span[p + i] = 1;
      if (k >= 2 && k < n && (mode == 1 || can)) {
        for (uint32_t i = 1; i < k; ++i) span[p + i] = 0;
        span[p] = k;
        any = true;
      }
      p += k;
    }
    r = e;
  }
  return any;
}

/* A group of one process whose devices belong to several backends runs on
 * the host path.  Where a backend's devices form an aligned block of 2^j
 * ranks (first rank a multiple of 2^j) that gets a device library (NCCL on
 * CUDA), the group is composed: the block's own communicator sums inside
 * the block (its TOPOLOGY result is the subtree of TOPOLOGY's tree over the
 * block), an upper-level communicator over the blocks' first ranks and the
 * ranks in no such block sums the blocks as nodes of 2^j leaves (spans),
 * and a broadcast inside the block hands the result back.  Same bits as
 * the host path (f32, f64, integers; not f16/bf16, whose block sums would
 * be rounded twice, and not STRICT).  LIGHTOS_COMM_HIERARCHY=0: never;
 * =1: compose blocks of every backend (host path inside too: tests).
 * Failures leave the group flat (logged). */
static void lk_hier_setup(lk_comm_t* const* cs, uint32_t n, const lightos_comm_config_t* cfg) {
  const long mode = lk_env_long("LIGHTOS_COMM_HIERARCHY", -1);
  if (mode == 0 || n < 3 || cfg->level == LIGHTOS_DETERMINISM_STRICT) return;
  uint32_t* span = calloc(n, sizeof *span); /* block size at its first rank, 0 inside */
  lightos_comm_t* inner = calloc(n, sizeof *inner);
  lightos_context_t* ctxs = calloc(n, sizeof *ctxs);
  lightos_comm_t* outer = calloc(n, sizeof *outer);
  char(*names)[32] = calloc(n, sizeof *names);
  const char** bk = calloc(n, sizeof *bk);
  bool* lib = calloc(n, sizeof *lib);
  bool any = false;
  lightos_status_t s = span && inner && ctxs && outer && names && bk && lib
                           ? LIGHTOS_SUCCESS
                           : LIGHTOS_OUT_OF_MEMORY;
  for (uint32_t r = 0; !s && r < n; ++r) {
    lk_backend_of(cs[r], names[r], sizeof names[r]);
    bk[r] = names[r];
    lib[r] = !strcmp(names[r], "cuda"); /* whether NCCL comes: the block's setup says */
  }
  if (!s) lk_hier_plan(n, bk, lib, mode, span);
  /* Each planned block's communicator; a block that cannot have one (or,
   * unless forced, gets no device path) leaves its ranks alone. */
  for (uint32_t p = 0; !s && p < n; ++p) {
    const uint32_t k = span[p];
    if (k < 2) continue;
    for (uint32_t i = 0; i < k; ++i) ctxs[i] = LK_HANDLE(cs[p + i]->context);
    lightos_comm_t* blk = inner + p;
    bool kept = false;
    if (lightos_comm_init_all_config(k, ctxs, cfg, blk) == LIGHTOS_SUCCESS) {
      lk_object_t* o = NULL;
      lk_handle_resolve(blk[0], LK_OBJ_COMM, "comm", &o);
      kept = mode == 1 || ((lk_comm_t*)o)->dev_vtbl != NULL;
      if (!kept)
        for (uint32_t i = 0; i < k; ++i) {
          lightos_comm_destroy(blk[i]);
          blk[i] = NULL;
        }
    }
    if (kept) any = true;
    else
      for (uint32_t i = 0; i < k; ++i) span[p + i] = 1;
  }
  /* The upper level: one rank per block and per rank in none. */
  uint32_t m = 0;
  for (uint32_t r = 0; !s && any && r < n; ++r) m += span[r] != 0;
  if (!s && any) {
    lk_xport_id_t id;
    s = lk_inproc_new_id(m, &id);
    uint32_t made = 0;
    for (uint32_t r = 0; !s && r < n; ++r) {
      if (!span[r]) continue;
      lk_xport_t* x = NULL;
      lk_comm_t* c = NULL;
      s = lk_inproc_join(&id, m, made, &x);
      if (!s) s = lk_comm_new(cs[r]->context, made, m, x, cfg, &c);
      if (!s && !(c->spans = malloc(m * sizeof *c->spans))) s = LIGHTOS_OUT_OF_MEMORY;
      if (!s) {
        for (uint32_t q = 0, i = 0; q < n; ++q)
          if (span[q]) c->spans[i++] = span[q];
        outer[r] = LK_HANDLE(c);
        made++;
      } else if (c) {
        lightos_comm_destroy(LK_HANDLE(c));
      }
    }
    if (s && made < m) lk_inproc_drop_id(&id);
  }
  if (!s && any) {
    for (uint32_t r = 0; r < n; ++r) {
      uint32_t first = r;
      while (!span[first]) --first;
      lk_object_t* o = NULL;
      if (span[first] > 1) {
        lk_handle_resolve(inner[r], LK_OBJ_COMM, "comm", &o);
        cs[r]->hier_inner = (lk_comm_t*)o;
        cs[r]->hier_inner->hier_owner = cs[r];
      }
      if (outer[r]) {
        lk_handle_resolve(outer[r], LK_OBJ_COMM, "comm", &o);
        cs[r]->hier_outer = (lk_comm_t*)o;
        cs[r]->hier_outer->hier_owner = cs[r];
      }
      cs[r]->hier_span = malloc(n * sizeof *span);
      if (cs[r]->hier_span) memcpy(cs[r]->hier_span, span, n * sizeof *span);
    }
    LK_LOG_INFO("comm: %u ranks composed: %u at the upper level", n, m);
  } else {
    for (uint32_t r = 0; inner && r < n; ++r)
      if (inner[r]) lightos_comm_destroy(inner[r]);
    for (uint32_t r = 0; outer && r < n; ++r)
      if (outer[r]) lightos_comm_destroy(outer[r]);
    if (s) LK_LOG_INFO("comm: the group stays flat: %s", lightos_status_string(s));
  }
  free(span);
  free(inner);
  free(ctxs);
  free(outer);
  free(names);
  free(bk);
  free(lib);
}

LIGHTOS_API lightos_status_t lightos_comm_init_all_config(uint32_t ncontexts,
                                                          const lightos_context_t* contexts,
                                                          const lightos_comm_config_t* config,
                                                          lightos_comm_t* out_comms) {
  if (ncontexts == 0) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "ncontexts is 0");
  if (ncontexts > 65536)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "ncontexts %u is more than 65536", ncontexts);
  if (!contexts) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "contexts is NULL");
  LK_CHECK_OUT(out_comms, "out_comms");
  lightos_comm_config_t cfg;
  lightos_status_t s = lk_config_resolve(config, &cfg);
  if (s) return s;
  for (uint32_t i = 0; i < ncontexts; ++i) {
    lk_object_t* o = NULL;
    char what[32];
    snprintf(what, sizeof what, "contexts[%u]", i);
    s = lk_handle_resolve(contexts[i], LK_OBJ_CONTEXT, what, &o);
    if (s) return s;
  }
  lk_xport_id_t id;
  s = lk_inproc_new_id(ncontexts, &id);
  if (s) return s;
  uint32_t made = 0;
  for (; made < ncontexts; ++made) {
    lk_object_t* o = NULL;
    lk_handle_resolve(contexts[made], LK_OBJ_CONTEXT, "context", &o);
    lk_xport_t* x = NULL;
    s = lk_inproc_join(&id, ncontexts, made, &x);
    lk_comm_t* c = NULL;
    if (!s) s = lk_comm_new((lk_context_t*)o, made, ncontexts, x, &cfg, &c);
    if (s) break;
    out_comms[made] = LK_HANDLE(c);
  }
  if (s) {
    lightos_error_info_t saved = *lightos_last_error();
    lk_inproc_drop_id(&id);
    for (uint32_t i = 0; i < made; ++i) {
      lightos_comm_destroy(out_comms[i]);
      out_comms[i] = NULL;
    }
    return LK_FAIL(saved.status, "%s", saved.message);
  }
  lk_comm_t* made_comms[64];
  lk_comm_t** cs = ncontexts <= 64 ? made_comms : malloc(ncontexts * sizeof *cs);
  if (cs) {
    for (uint32_t i = 0; i < ncontexts; ++i) {
      lk_object_t* o = NULL;
      lk_handle_resolve(out_comms[i], LK_OBJ_COMM, "comm", &o);
      cs[i] = (lk_comm_t*)o;
    }
    lk_dev_attach_result(lk_nccl_attach_all(cs, ncontexts));
    if (!cs[0]->dev_vtbl) lk_hier_setup(cs, ncontexts, &cfg);
    if (cs != made_comms) free(cs);
  }
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_comm_init_all(uint32_t ncontexts,
                                                   const lightos_context_t* contexts,
                                                   lightos_comm_t* out_comms) {
  return lightos_comm_init_all_config(ncontexts, contexts, NULL, out_comms);
}

LIGHTOS_API lightos_status_t lightos_comm_get_unique_id(lightos_comm_unique_id_t* out_id) {
  LK_CHECK_OUT(out_id, "out_id");
  lk_xport_id_t id;
  lightos_status_t s = lk_tcp_new_id(&id);
  if (s) return s;
  memcpy(out_id, &id, sizeof id);
  return LIGHTOS_SUCCESS;
}

/* The checks every multi-process rank's creation shares. */
static lightos_status_t lk_rank_args(uint32_t nranks, uint32_t rank, lightos_context_t context,
                                     const lightos_comm_config_t* config,
                                     const lightos_comm_t* out_comm, lk_context_t** out_ctx,
                                     lightos_comm_config_t* out_cfg) {
  if (nranks == 0) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "nranks is 0");
  if (nranks > 65536) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "nranks %u is more than 65536", nranks);
  if (rank >= nranks)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "rank %u is not below nranks %u", rank, nranks);
  LK_CHECK_OUT(out_comm, "out_comm");
  LK_RESOLVE(*out_ctx, context, LK_OBJ_CONTEXT, "context");
  return lk_config_resolve(config, out_cfg);
}

/* The same composition for a group of processes (lightos_comm_init_rank,
 * lightos_comm_init_mpi): every rank learns every rank's backend and
 * whether it can load NCCL, plans the same blocks, and makes the block's
 * and the upper level's communicators with two splits (the block's gets
 * NCCL by the split).  Every rank keeps the composition only if every
 * rank made its part (and, unless forced, every CUDA block got NCCL). */
typedef struct lk_hier_hello {
  char backend[24];
  uint8_t lib;
} lk_hier_hello_t;

static void lk_hier_setup_rank(lk_comm_t* c) {
  const long mode = lk_env_long("LIGHTOS_COMM_HIERARCHY", -1);
  const uint32_t n = c->size, me = c->rank;
  if (mode == 0 || n < 3 || c->config.level == LIGHTOS_DETERMINISM_STRICT) return;
  lk_algo_t a = {c->xport, me, n, c->config.level, lk_deadline(c), NULL, NULL};
  lk_hier_hello_t mine;
  memset(&mine, 0, sizeof mine);
  lk_backend_of(c, mine.backend, sizeof mine.backend);
  mine.lib = lk_hier_lib(mine.backend);
  lk_hier_hello_t* all = calloc(n, sizeof *all);
  uint32_t* span = calloc(n, sizeof *span);
  lightos_status_t s = all && span ? LIGHTOS_SUCCESS : LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  if (!s) {
    all[me] = mine;
    s = lk_algo_allgather(&a, &all[me], all, sizeof mine);
  }
  /* The plan, the same on every rank. */
  bool any = false, mixed = false;
  const char** bk = !s ? calloc(n, sizeof *bk) : NULL;
  bool* lib = !s ? calloc(n, sizeof *lib) : NULL;
  if (!s && (!bk || !lib)) s = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  for (uint32_t r = 0; !s && r < n; ++r) {
    bk[r] = all[r].backend;
    lib[r] = all[r].lib != 0;
  }
  if (!s) any = lk_hier_plan(n, bk, lib, mode, span);
  free(bk);
  free(lib);
  /* The upper level must mix backends (else it could take a device path,
   * whose tree is over its ranks, not over the leaves). */
  for (uint32_t r = 0; !s && r < n; ++r)
    if (span[r] && strcmp(all[r].backend, all[0].backend)) mixed = true;
  if (s || !any || !mixed) {
    free(all);
    free(span);
    lightos_clear_error();
    return;
  }
  uint32_t first = me;
  while (!span[first]) --first;
  const bool in_block = span[first] > 1, upper = span[me] != 0;
  lightos_comm_t inner = NULL, outer = NULL;
  lightos_status_t si = lightos_comm_split(LK_HANDLE(c), in_block ? (int)first : LIGHTOS_COMM_SPLIT_NOCOLOR,
                                           (int)me, NULL, &inner);
  lightos_status_t so = lightos_comm_split(LK_HANDLE(c), upper ? 0 : LIGHTOS_COMM_SPLIT_NOCOLOR,
                                           (int)me, NULL, &outer);
  uint8_t ok = !si && !so && (!in_block || inner) && (!upper || outer);
  lk_object_t* o = NULL;
  lk_comm_t* ic = NULL;
  lk_comm_t* oc = NULL;
  if (ok && inner) {
    lk_handle_resolve(inner, LK_OBJ_COMM, "comm", &o);
    ic = (lk_comm_t*)o;
    if (mode != 1 && !ic->dev_vtbl) ok = 0;
  }
  if (ok && outer) {
    lk_handle_resolve(outer, LK_OBJ_COMM, "comm", &o);
    oc = (lk_comm_t*)o;
    if (oc->dev_vtbl || !(oc->spans = malloc(oc->size * sizeof *oc->spans))) ok = 0;
    for (uint32_t r = 0, i = 0; ok && r < n; ++r)
      if (span[r]) oc->spans[i++] = span[r];
  }
  uint8_t* oks = calloc(n, 1);
  s = oks ? LIGHTOS_SUCCESS : LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  if (!s) {
    oks[me] = ok;
    s = lk_algo_allgather(&a, &oks[me], oks, 1);
  }
  for (uint32_t r = 0; r < n; ++r) ok = ok && !s && oks[r];
  free(oks);
  if (ok) {
    c->hier_inner = ic;
    c->hier_outer = oc;
    c->hier_span = span;
    span = NULL;
    if (ic) ic->hier_owner = c;
    if (oc) oc->hier_owner = c;
    if (me == 0) LK_LOG_INFO("comm: %u processes composed", n);
  } else {
    if (inner) lightos_comm_destroy(inner);
    if (outer) lightos_comm_destroy(outer);
    LK_LOG_INFO("comm: rank %u: the group stays flat", me);
  }
  free(all);
  free(span);
  lightos_clear_error();
}

/* A joined rank's communicator over transport x (taken), with its device
 * path when the group can have one. */
static lightos_status_t lk_rank_comm(lk_context_t* ctx, uint32_t rank, uint32_t nranks,
                                     lk_xport_t* x, const lightos_comm_config_t* cfg,
                                     lightos_comm_t* out_comm) {
  lk_comm_t* c = NULL;
  lightos_status_t s = lk_comm_new(ctx, rank, nranks, x, cfg, &c);
  if (s) return s;
  lk_dev_attach_result(lk_nccl_attach_rank(c));
  if (!c->dev_vtbl) lk_hier_setup_rank(c);
  *out_comm = LK_HANDLE(c);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_comm_init_rank(uint32_t nranks,
                                                    const lightos_comm_unique_id_t* id,
                                                    uint32_t rank, lightos_context_t context,
                                                    const lightos_comm_config_t* config,
                                                    lightos_comm_t* out_comm) {
  if (!id) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "id is NULL");
  lk_context_t* ctx = NULL;
  lightos_comm_config_t cfg;
  lightos_status_t s = lk_rank_args(nranks, rank, context, config, out_comm, &ctx, &cfg);
  if (s) return s;
  lk_xport_id_t xid;
  memcpy(&xid, id, sizeof xid);
  if (xid.magic != LK_XPORT_ID_MAGIC || xid.kind != LK_XPORT_TCP)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "id is not a lightos_comm_get_unique_id result (bad magic or kind)");
  lk_xport_t* x = NULL;
  double ns = cfg.timeout_s * 1e9;
  s = lk_tcp_join(&xid, nranks, rank, lk_now_ns() + (uint64_t)ns, &x);
  return s ? s : lk_rank_comm(ctx, rank, nranks, x, &cfg, out_comm);
}

static lightos_status_t lk_init_transport(uint32_t nranks, uint32_t rank,
                                          const lightos_comm_transport_ops_t* ops,
                                          lightos_context_t context,
                                          const lightos_comm_config_t* config,
                                          lightos_comm_t* out_comm, bool* taken) {
  if (!ops->isend || !ops->irecv || !ops->test || !ops->cancel)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "ops: isend, irecv, test and cancel are required");
  lk_context_t* ctx = NULL;
  lightos_comm_config_t cfg;
  lightos_status_t s = lk_rank_args(nranks, rank, context, config, out_comm, &ctx, &cfg);
  if (s) return s;
  lk_xport_t* x = NULL;
  *taken = true; /* from here on the transport owns ops->state */
  s = lk_ext_create(nranks, rank, ops, &x);
  return s ? s : lk_rank_comm(ctx, rank, nranks, x, &cfg, out_comm);
}

LIGHTOS_API lightos_status_t lightos_comm_init_transport(uint32_t nranks, uint32_t rank,
                                                         const lightos_comm_transport_ops_t* ops,
                                                         lightos_context_t context,
                                                         const lightos_comm_config_t* config,
                                                         lightos_comm_t* out_comm) {
  if (!ops) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "ops is NULL");
  if (ops->struct_size != sizeof *ops)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "ops->struct_size %u is not sizeof(lightos_comm_transport_ops_t) (%zu)",
                   ops->struct_size, sizeof *ops);
  bool taken = false;
  lightos_status_t s = lk_init_transport(nranks, rank, ops, context, config, out_comm, &taken);
  if (s && !taken && ops->destroy) {
    lightos_error_info_t saved = *lightos_last_error();
    ops->destroy(ops->state);
    return LK_FAIL(saved.status, "%s", saved.message);
  }
  return s;
}

/* The split exchange: every rank's (color, key); each color's first rank
 * makes the new group's id and every member joins it. */
static lightos_status_t lk_run_split(lk_comm_t* c, const lk_algo_t* a, lk_coll_t* op) {
  typedef struct {
    int32_t color, key;
    lk_xport_id_t id;
  } entry_t;
  const uint32_t n = c->size;
  entry_t* all = calloc(n, sizeof *all);
  if (!all) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  entry_t* me = &all[c->rank];
  me->color = op->color;
  me->key = op->key;
  /* Order of the members: key, then old rank. */
  lightos_status_t s = lk_algo_allgather(a, me, all, sizeof *all);
  uint32_t new_rank = 0, new_size = 0, leader = UINT32_MAX;
  if (!s && op->color != LIGHTOS_COMM_SPLIT_NOCOLOR) {
    for (uint32_t r = 0; r < n; ++r) {
      if (all[r].color != op->color) continue;
      new_size++;
      if (all[r].key < op->key || (all[r].key == op->key && r < c->rank)) new_rank++;
      if (leader == UINT32_MAX) leader = r;
    }
  }
  /* Leaders make ids, then everyone learns them. */
  bool is_leader = !s && op->color != LIGHTOS_COMM_SPLIT_NOCOLOR && leader == c->rank;
  lightos_status_t made = LIGHTOS_SUCCESS;
  if (is_leader) {
    if (!strcmp(c->xport->vtbl->name, "inproc")) made = lk_inproc_new_id(new_size, &me->id);
    else made = lk_tcp_new_id(&me->id);
    if (made) memset(&me->id, 0, sizeof me->id); /* members then fail to join */
  }
  if (!s) s = lk_algo_allgather(a, me, all, sizeof *all);
  if (!s && op->color != LIGHTOS_COMM_SPLIT_NOCOLOR) {
    const lk_xport_id_t* id = &all[leader].id;
    lk_xport_t* x = NULL;
    if (id->magic != LK_XPORT_ID_MAGIC)
      s = LK_FAIL(LIGHTOS_INTERNAL, "split: rank %u could not make the new group's id", leader);
    else if (id->kind == LK_XPORT_INPROC)
      s = lk_inproc_join(id, new_size, new_rank, &x);
    else
      s = lk_tcp_join(id, new_size, new_rank, a->deadline_ns, &x);
    lightos_comm_config_t cfg = c->config;
    if (!s && op->split_config) s = lk_config_resolve(op->split_config, &cfg);
    if (!s) s = lk_comm_new(c->context, new_rank, new_size, x, &cfg, op->split_out);
    else if (x) x->vtbl->destroy(x);
    if (!s) lk_dev_attach_result(lk_nccl_attach_rank(*op->split_out));
  }
  (void)made;
  free(all);
  return s;
}

/* ---- Enqueueing ------------------------------------------------------------- */

static lightos_status_t lk_arm(lk_coll_t* op);

/* Group calls: operations wait here until the outermost group_end. */
static _Thread_local int lk_group_depth;
static _Thread_local lk_coll_t* lk_group_head;
static _Thread_local lk_coll_t* lk_group_tail;

/* Hands a list of operations of possibly several communicators to their
 * proxies, each communicator's operations as one batch. */
static void lk_hand_over(lk_coll_t* list) {
  while (list) {
    lk_comm_t* c = list->comm;
    lk_coll_t *mine = NULL, *mine_tail = NULL, *rest = NULL, *rest_tail = NULL;
    size_t n = 0;
    for (lk_coll_t *op = list, *nx; op; op = nx) {
      nx = op->next;
      op->next = NULL;
      if (op->comm == c) {
        if (mine_tail) mine_tail->next = op;
        else mine = op;
        mine_tail = op;
        op->batch_end = false;
        n++;
      } else {
        if (rest_tail) rest_tail->next = op;
        else rest = op;
        rest_tail = op;
      }
    }
    mine_tail->batch_end = true;
    pthread_mutex_lock(&c->lock);
    if (c->tail) c->tail->next = mine;
    else c->head = mine;
    c->tail = mine_tail;
    c->inflight += n;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->lock);
    list = rest;
  }
}

LIGHTOS_API lightos_status_t lightos_comm_group_start(void) {
  if (lk_group_depth >= 1 << 20)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "group calls nested more than %d deep", 1 << 20);
  lk_group_depth++;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_comm_group_end(void) {
  if (lk_group_depth == 0)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "lightos_comm_group_end without a matching lightos_comm_group_start");
  if (--lk_group_depth > 0) return LIGHTOS_SUCCESS;
  lk_coll_t* list = lk_group_head;
  lk_group_head = lk_group_tail = NULL;
  lightos_status_t first = LIGHTOS_SUCCESS;
  for (lk_coll_t* op = list; op; op = op->next) {
    lightos_status_t s = lk_arm(op);
    if (s && !first) first = s;
  }
  if (list) lk_hand_over(list);
  return first;
}

/* Resolves the queue argument (NULL: the context's default queue). */
static lightos_status_t lk_resolve_queue(const lk_comm_t* c, lightos_queue_t queue,
                                         lk_queue_t** out) {
  if (!queue) {
    *out = c->context->default_queue;
    return LIGHTOS_SUCCESS;
  }
  lk_queue_t* q = NULL;
  LK_RESOLVE(q, queue, LK_OBJ_QUEUE, "queue");
  if (q->context != c->context)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "queue belongs to context %s, not the communicator's (%s)",
                   q->context->device->hal->info.uri, c->context->device->hal->info.uri);
  *out = q;
  return LIGHTOS_SUCCESS;
}

/* Checks a buffer argument: in the comm's context and at least `bytes`. */
static lightos_status_t lk_check_buffer(const lk_comm_t* c, lightos_buffer_t h, const char* name,
                                        size_t bytes, lk_buffer_t** out) {
  lk_buffer_t* b = NULL;
  LK_RESOLVE(b, h, LK_OBJ_BUFFER, name);
  if (b->context != c->context)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "%s is a buffer of context %s, not of the communicator's (%s)", name,
                   b->context->device->hal->info.uri, c->context->device->hal->info.uri);
  if (bytes > b->size)
    return LK_FAIL(LIGHTOS_OUT_OF_RANGE,
                   "%s holds %zu bytes; the operation's count needs %zu bytes", name, b->size,
                   bytes);
  *out = b;
  return LIGHTOS_SUCCESS;
}

/* Validates dtype/op/count and returns count * dtype size (times mult). */
static lightos_status_t lk_check_elems(size_t count, lightos_dtype_t dtype, size_t mult,
                                       const char* count_name, size_t* out_bytes) {
  size_t es = lightos_dtype_size(dtype);
  if (!es || dtype == LIGHTOS_DTYPE_BOOL)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "dtype %d is not a collective type (f32, f64, f16, bf16, i32, i64, u8)",
                   (int)dtype);
  if (count == 0) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "%s is 0", count_name);
  size_t b;
  if (!lk_mul_ok(count, es, &b) || !lk_mul_ok(b, mult, &b))
    return LK_FAIL(LIGHTOS_OUT_OF_RANGE, "%s %zu of %s overflows a size", count_name, count,
                   lightos_dtype_name(dtype));
  *out_bytes = b;
  return LIGHTOS_SUCCESS;
}

static lightos_status_t lk_check_op(const lk_comm_t* c, lightos_reduce_op_t op,
                                    lightos_dtype_t dtype) {
  if (op < LIGHTOS_OP_SUM || op > LIGHTOS_OP_AVG)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "op %d is not a lightos_reduce_op_t", (int)op);
  if (c->config.level == LIGHTOS_DETERMINISM_STRICT && op == LIGHTOS_OP_PROD &&
      lk_red_dtype_is_float(dtype))
    return LK_FAIL(LIGHTOS_UNSUPPORTED,
                   "op prod of %s at STRICT: a floating-point product has no exact "
                   "order-independent form (use TOPOLOGY: one fixed tree)",
                   lightos_dtype_name(dtype));
  return LIGHTOS_SUCCESS;
}

/* Makes the queue's later work wait for the operation (its done event). */
static lightos_status_t lk_arm(lk_coll_t* op) {
  lk_queue_t* q = op->wait_queue;
  op->wait_queue = NULL;
  lightos_status_t s = lightos_queue_wait_event(LK_HANDLE(q), LK_HANDLE(op->done));
  lk_object_unref(&q->obj);
  return s;
}

/* Builds the events around an operation on queue q and hands it over (or
 * keeps it for the group).  Takes the operation (freed on failure).
 * In a group, the queue waits are enqueued at group_end, after every
 * operation's marker: a later operation of the group on the same queue
 * must not wait behind an earlier one's completion. */
static lightos_status_t lk_submit_ex(lk_coll_t* op, lk_queue_t* q, bool group_defers);

static lightos_status_t lk_submit(lk_coll_t* op, lk_queue_t* q) {
  return lk_submit_ex(op, q, true);
}

/* group_defers false: armed and handed over now even inside a group (the
 * steps of a composed allreduce, each of which reads what the one before
 * wrote on the same queue). */
static lightos_status_t lk_submit_ex(lk_coll_t* op, lk_queue_t* q, bool group_defers) {
  lightos_status_t s;
  lk_comm_t* c = op->comm;
  if (c->dev_vtbl && op->kind != LK_COLL_SPLIT) {
    lk_coll_desc_t d = lk_desc(op);
    s = c->dev_vtbl->enqueue(c, &d, q);
    if (s != LIGHTOS_UNSUPPORTED) {
      lk_coll_free(op);
      return s;
    }
  }
  lightos_event_t ready = NULL;
  s = lightos_event_record(LK_HANDLE(q), &ready);
  if (!s) {
    lk_object_t* o = NULL;
    lk_handle_resolve(ready, LK_OBJ_EVENT, "event", &o);
    lk_object_ref(o);
    op->ready = (lk_event_t*)o;
    lightos_event_release(ready);
  }
  if (!s) s = lk_event_create(&op->done);
  if (s) {
    lk_coll_free(op);
    return s;
  }
  /* The handle of done stays alive as long as the operation (released in
   * lk_coll_free through the internal reference taken here). */
  lk_object_ref(&q->obj);
  op->wait_queue = q;
  if (lk_group_depth > 0 && group_defers) {
    op->next = NULL;
    if (lk_group_tail) lk_group_tail->next = op;
    else lk_group_head = op;
    lk_group_tail = op;
    return LIGHTOS_SUCCESS;
  }
  s = lk_arm(op);
  if (s) {
    lk_coll_free(op);
    return s;
  }
  op->batch_end = true;
  lk_hand_over(op);
  return LIGHTOS_SUCCESS;
}

static lk_coll_t* lk_coll_new(lk_comm_t* c, lk_coll_kind_t kind, uint32_t nsends) {
  lk_coll_t* op = calloc(1, sizeof *op);
  if (!op) return NULL;
  op->sends = calloc(nsends ? nsends : 1, sizeof *op->sends);
  if (!op->sends) {
    free(op);
    return NULL;
  }
  op->nsends = nsends;
  op->kind = kind;
  lk_object_ref(&c->obj);
  op->comm = c;
  return op;
}

static void lk_coll_set_buffers(lk_coll_t* op, lk_buffer_t* send, lk_buffer_t* recv) {
  if (send) {
    lk_object_ref(&send->obj);
    op->sends[0] = send;
  }
  if (recv) {
    lk_object_ref(&recv->obj);
    op->recv = recv;
  }
}

#define LK_NEW_OP(var, c, kind, nsends)                                                   \
  lk_coll_t* var = lk_coll_new((c), (kind), (nsends));                                   \
  if (!var) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for an operation")


/* The common tail of an enqueue (after the argument checks): the queue,
 * the communicator's state, the operation. */
static lightos_status_t lk_enqueue_ex(lk_comm_t* c, lk_coll_kind_t kind, lk_buffer_t* sb,
                                      lk_buffer_t* rb, size_t count, lightos_dtype_t dtype,
                                      lightos_reduce_op_t op, uint32_t root,
                                      lightos_queue_t queue, bool group_defers) {
  lk_queue_t* q = NULL;
  lightos_status_t s = lk_resolve_queue(c, queue, &q);
  if (!s) s = lk_fail_if_aborted(c);
  if (s) return s;
  LK_NEW_OP(o, c, kind, 1);
  lk_coll_set_buffers(o, sb, rb);
  o->count = count;
  o->dtype = dtype;
  o->op = op;
  o->root = root;
  return lk_submit_ex(o, q, group_defers);
}

static lightos_status_t lk_enqueue(lk_comm_t* c, lk_coll_kind_t kind, lk_buffer_t* sb,
                                   lk_buffer_t* rb, size_t count, lightos_dtype_t dtype,
                                   lightos_reduce_op_t op, uint32_t root, lightos_queue_t queue) {
  return lk_enqueue_ex(c, kind, sb, rb, count, dtype, op, root, queue, true);
}

/* A step of a composed collective failed after the rank's earlier steps
 * were enqueued: the other ranks went on, so the group is broken; they
 * learn it from the block's and the upper level's communicators.  Returns
 * the step's failure. */
static lightos_status_t lk_hier_fail(lk_comm_t* c, const char* what) {
  const lightos_error_info_t saved = *lightos_last_error();
  char why[sizeof c->abort_msg];
  snprintf(why, sizeof why, "a composed %s failed on rank %u: %s", what, c->rank, saved.message);
  lk_comm_set_aborted(c, why);
  if (c->hier_inner) (void)lightos_comm_abort(LK_HANDLE(c->hier_inner));
  if (c->hier_outer) (void)lightos_comm_abort(LK_HANDLE(c->hier_outer));
  return LK_FAIL(saved.status, "%s", saved.message);
}

/* An allreduce of a composed group (lk_hier_setup): inside the rank's
 * block, at the upper level (the block's first rank, or a rank alone),
 * back inside the block; in stream order on the rank's queue.  Returns
 * LIGHTOS_UNSUPPORTED where the flat host path must take it. */
static lightos_status_t lk_hier_allreduce(lk_comm_t* c, lk_buffer_t* sb, lk_buffer_t* rb,
                                          size_t count, lightos_dtype_t dtype,
                                          lightos_reduce_op_t op, lightos_queue_t queue) {
  if (!c->hier_inner && !c->hier_outer) return LIGHTOS_UNSUPPORTED;
  if (dtype == LIGHTOS_DTYPE_F16 || dtype == LIGHTOS_DTYPE_BF16 ||
      c->config.level == LIGHTOS_DETERMINISM_STRICT || (c->config.flags & LIGHTOS_COMM_CHECK))
    return LIGHTOS_UNSUPPORTED;
  lightos_status_t s = lk_fail_if_aborted(c);
  if (s) return s;
  if (!c->hier_inner)
    return lk_enqueue(c->hier_outer, LK_COLL_ALLREDUCE, sb, rb, count, dtype, op, 0, queue);
  /* avg: the block's sum; the upper level divides by every leaf.  Each step
   * reads what the one before wrote on this queue: none is deferred to the
   * end of a group call. */
  const lightos_reduce_op_t iop = op == LIGHTOS_OP_AVG ? LIGHTOS_OP_SUM : op;
  s = lk_enqueue_ex(c->hier_inner, LK_COLL_ALLREDUCE, sb, rb, count, dtype, iop, 0, queue,
                    false);
  if (!s && c->hier_outer)
    s = lk_enqueue_ex(c->hier_outer, LK_COLL_ALLREDUCE, rb, rb, count, dtype, op, 0, queue,
                      false);
  if (!s)
    s = lk_enqueue_ex(c->hier_inner, LK_COLL_BROADCAST, rb, rb, count, dtype, LIGHTOS_OP_SUM, 0,
                      queue, false);
  return s ? lk_hier_fail(c, "allreduce") : LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_comm_allreduce_multi(const lightos_buffer_t* sends,
                                                          uint32_t nsends,
                                                          lightos_buffer_t recv, size_t count,
                                                          lightos_dtype_t dtype,
                                                          lightos_reduce_op_t op,
                                                          lightos_comm_t comm,
                                                          lightos_queue_t queue) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  if (!sends) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "sends is NULL");
  if (nsends == 0 || nsends > LK_STRICT_MAX_CONTRIB)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "nsends %u is not in 1..%d", nsends,
                   LK_STRICT_MAX_CONTRIB);
  size_t bytes;
  lightos_status_t s = lk_check_elems(count, dtype, 1, "count", &bytes);
  if (!s) s = lk_check_op(c, op, dtype);
  if (s) return s;
  lk_buffer_t* rb = NULL;
  s = lk_check_buffer(c, recv, "recv", bytes, &rb);
  if (s) return s;
  lk_buffer_t** sb = calloc(nsends, sizeof *sb);
  if (!sb) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  for (uint32_t i = 0; i < nsends && !s; ++i) {
    char name[32];
    snprintf(name, sizeof name, "sends[%u]", i);
    s = lk_check_buffer(c, sends[i], name, bytes, &sb[i]);
  }
  lk_queue_t* q = NULL;
  if (!s) s = lk_resolve_queue(c, queue, &q);
  if (!s) s = lk_fail_if_aborted(c);
  if (s) {
    free(sb);
    return s;
  }
  lk_coll_t* o = lk_coll_new(c, LK_COLL_ALLREDUCE, nsends);
  if (!o) {
    free(sb);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for an operation");
  }
  for (uint32_t i = 0; i < nsends; ++i) {
    lk_object_ref(&sb[i]->obj);
    o->sends[i] = sb[i];
  }
  free(sb);
  lk_coll_set_buffers(o, NULL, rb);
  o->multi = true;
  o->count = count;
  o->dtype = dtype;
  o->op = op;
  return lk_submit(o, q);
}

LIGHTOS_API lightos_status_t lightos_comm_allreduce(lightos_buffer_t send, lightos_buffer_t recv,
                                                    size_t count, lightos_dtype_t dtype,
                                                    lightos_reduce_op_t op, lightos_comm_t comm,
                                                    lightos_queue_t queue) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  size_t bytes;
  lightos_status_t s = lk_check_elems(count, dtype, 1, "count", &bytes);
  if (!s) s = lk_check_op(c, op, dtype);
  lk_buffer_t *sb = NULL, *rb = NULL;
  if (!s) s = lk_check_buffer(c, send, "send", bytes, &sb);
  if (!s) s = lk_check_buffer(c, recv, "recv", bytes, &rb);
  if (s) return s;
  s = lk_hier_allreduce(c, sb, rb, count, dtype, op, queue);
  if (s != LIGHTOS_UNSUPPORTED) return s;
  return lk_enqueue(c, LK_COLL_ALLREDUCE, sb, rb, count, dtype, op, 0, queue);
}

static lightos_status_t lk_check_root(const lk_comm_t* c, uint32_t root, const char* name) {
  if (root >= c->size)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "%s %u is not a rank of this %u-rank communicator",
                   name, root, c->size);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_comm_reduce(lightos_buffer_t send, lightos_buffer_t recv,
                                                 size_t count, lightos_dtype_t dtype,
                                                 lightos_reduce_op_t op, uint32_t root,
                                                 lightos_comm_t comm, lightos_queue_t queue) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  size_t bytes;
  lightos_status_t s = lk_check_elems(count, dtype, 1, "count", &bytes);
  if (!s) s = lk_check_op(c, op, dtype);
  if (!s) s = lk_check_root(c, root, "root");
  lk_buffer_t *sb = NULL, *rb = NULL;
  if (!s) s = lk_check_buffer(c, send, "send", bytes, &sb);
  if (!s && c->rank == root) s = lk_check_buffer(c, recv, "recv", bytes, &rb);
  return s ? s : lk_enqueue(c, LK_COLL_REDUCE, sb, rb, count, dtype, op, root, queue);
}

static lightos_status_t lk_hier_broadcast(lk_comm_t* c, lk_buffer_t* sb, lk_buffer_t* rb,
                                          size_t count, lightos_dtype_t dtype, uint32_t root,
                                          lightos_queue_t queue);

LIGHTOS_API lightos_status_t lightos_comm_broadcast(lightos_buffer_t send, lightos_buffer_t recv,
                                                    size_t count, lightos_dtype_t dtype,
                                                    uint32_t root, lightos_comm_t comm,
                                                    lightos_queue_t queue) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  size_t bytes;
  lightos_status_t s = lk_check_elems(count, dtype, 1, "count", &bytes);
  if (!s) s = lk_check_root(c, root, "root");
  lk_buffer_t *sb = NULL, *rb = NULL;
  if (!s && c->rank == root) s = lk_check_buffer(c, send, "send", bytes, &sb);
  if (!s) s = lk_check_buffer(c, recv, "recv", bytes, &rb);
  if (s) return s;
  s = lk_hier_broadcast(c, sb, rb, count, dtype, root, queue);
  if (s != LIGHTOS_UNSUPPORTED) return s;
  return lk_enqueue(c, LK_COLL_BROADCAST, sb, rb, count, dtype, LIGHTOS_OP_SUM, root, queue);
}

/* A broadcast of a composed group: inside the root's block (from the
 * root), at the upper level (from the root's block), inside the other
 * blocks (from their first ranks).  LIGHTOS_UNSUPPORTED: the flat path. */
static lightos_status_t lk_hier_broadcast(lk_comm_t* c, lk_buffer_t* sb, lk_buffer_t* rb,
                                          size_t count, lightos_dtype_t dtype, uint32_t root,
                                          lightos_queue_t queue) {
  const uint32_t* span = c->hier_span;
  if ((!c->hier_inner && !c->hier_outer) || !span || (c->config.flags & LIGHTOS_COMM_CHECK))
    return LIGHTOS_UNSUPPORTED;
  lightos_status_t s = lk_fail_if_aborted(c);
  if (s) return s;
  uint32_t rf = root, mf = c->rank, root_up = 0;
  while (!span[rf]) --rf;
  while (!span[mf]) --mf;
  for (uint32_t r = 0; r < rf; ++r) root_up += span[r] != 0;
  const lightos_dtype_t u8 = LIGHTOS_DTYPE_U8;
  const size_t bytes = count * lightos_dtype_size(dtype);
  lk_buffer_t* have = c->rank == root ? sb : NULL; /* where this rank holds the data */
  if (c->hier_inner && mf == rf) {
    s = lk_enqueue_ex(c->hier_inner, LK_COLL_BROADCAST, have, rb, bytes, u8, LIGHTOS_OP_SUM,
                      root - rf, queue, false);
    have = rb;
  }
  if (!s && c->hier_outer)
    s = lk_enqueue_ex(c->hier_outer, LK_COLL_BROADCAST, mf == rf ? have : NULL, rb, bytes, u8,
                      LIGHTOS_OP_SUM, root_up, queue, false);
  if (!s && c->hier_inner && mf != rf)
    s = lk_enqueue_ex(c->hier_inner, LK_COLL_BROADCAST, c->rank == mf ? rb : NULL, rb, bytes, u8,
                      LIGHTOS_OP_SUM, 0, queue, false);
  return s ? lk_hier_fail(c, "broadcast") : LIGHTOS_SUCCESS;
}

/* allgather / alltoall / reduce_scatter share their checks. */
static lightos_status_t lk_enqueue_sized(lk_coll_kind_t kind, lightos_buffer_t send,
                                         lightos_buffer_t recv, size_t count,
                                         lightos_dtype_t dtype, lightos_reduce_op_t op,
                                         lightos_comm_t comm, lightos_queue_t queue) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  size_t bytes, big;
  const char* cname = kind == LK_COLL_REDUCE_SCATTER ? "recvcount" : "count";
  lightos_status_t s = lk_check_elems(count, dtype, 1, cname, &bytes);
  if (!s) s = lk_check_elems(count, dtype, c->size, cname, &big);
  if (!s && kind == LK_COLL_REDUCE_SCATTER) s = lk_check_op(c, op, dtype);
  if (s) return s;
  size_t sbytes = kind == LK_COLL_ALLGATHER ? bytes : big;
  size_t rbytes = kind == LK_COLL_REDUCE_SCATTER ? bytes : big;
  lk_buffer_t *sb = NULL, *rb = NULL;
  s = lk_check_buffer(c, send, "send", sbytes, &sb);
  if (!s) s = lk_check_buffer(c, recv, "recv", rbytes, &rb);
  if (!s && kind == LK_COLL_ALLTOALL && lk_same_memory(sb, rb))
    s = LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "alltoall cannot run in place (send is recv)");
  return s ? s : lk_enqueue(c, kind, sb, rb, count, dtype, op, 0, queue);
}

LIGHTOS_API lightos_status_t lightos_comm_allgather(lightos_buffer_t send, lightos_buffer_t recv,
                                                    size_t count, lightos_dtype_t dtype,
                                                    lightos_comm_t comm, lightos_queue_t queue) {
  return lk_enqueue_sized(LK_COLL_ALLGATHER, send, recv, count, dtype, LIGHTOS_OP_SUM, comm,
                          queue);
}

LIGHTOS_API lightos_status_t lightos_comm_reduce_scatter(lightos_buffer_t send,
                                                         lightos_buffer_t recv, size_t recvcount,
                                                         lightos_dtype_t dtype,
                                                         lightos_reduce_op_t op,
                                                         lightos_comm_t comm,
                                                         lightos_queue_t queue) {
  return lk_enqueue_sized(LK_COLL_REDUCE_SCATTER, send, recv, recvcount, dtype, op, comm, queue);
}

LIGHTOS_API lightos_status_t lightos_comm_alltoall(lightos_buffer_t send, lightos_buffer_t recv,
                                                   size_t count, lightos_dtype_t dtype,
                                                   lightos_comm_t comm, lightos_queue_t queue) {
  return lk_enqueue_sized(LK_COLL_ALLTOALL, send, recv, count, dtype, LIGHTOS_OP_SUM, comm,
                          queue);
}

static lightos_status_t lk_enqueue_p2p(bool send, lightos_buffer_t buf, size_t count,
                                       lightos_dtype_t dtype, uint32_t peer, lightos_comm_t comm,
                                       lightos_queue_t queue) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  size_t bytes;
  lightos_status_t s = lk_check_elems(count, dtype, 1, "count", &bytes);
  if (!s) s = lk_check_root(c, peer, "peer");
  if (!s && peer == c->rank)
    s = LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "peer %u is this rank itself", peer);
  lk_buffer_t* b = NULL;
  if (!s) s = lk_check_buffer(c, buf, send ? "send" : "recv", bytes, &b);
  return s ? s
           : lk_enqueue(c, send ? LK_COLL_SEND : LK_COLL_RECV, send ? b : NULL, send ? NULL : b,
                        count, dtype, LIGHTOS_OP_SUM, peer, queue);
}

LIGHTOS_API lightos_status_t lightos_comm_send(lightos_buffer_t send, size_t count,
                                               lightos_dtype_t dtype, uint32_t peer,
                                               lightos_comm_t comm, lightos_queue_t queue) {
  return lk_enqueue_p2p(true, send, count, dtype, peer, comm, queue);
}

LIGHTOS_API lightos_status_t lightos_comm_recv(lightos_buffer_t recv, size_t count,
                                               lightos_dtype_t dtype, uint32_t peer,
                                               lightos_comm_t comm, lightos_queue_t queue) {
  return lk_enqueue_p2p(false, recv, count, dtype, peer, comm, queue);
}

LIGHTOS_API lightos_status_t lightos_comm_barrier(lightos_comm_t comm, lightos_queue_t queue) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  lk_queue_t* q = NULL;
  lightos_status_t s = lk_resolve_queue(c, queue, &q);
  if (!s) s = lk_fail_if_aborted(c);
  if (s) return s;
  LK_NEW_OP(o, c, LK_COLL_BARRIER, 0);
  o->dtype = LIGHTOS_DTYPE_U8;
  return lk_submit(o, q);
}

LIGHTOS_API lightos_status_t lightos_comm_split(lightos_comm_t comm, int color, int key,
                                                const lightos_comm_config_t* config,
                                                lightos_comm_t* out_comm) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  LK_CHECK_OUT(out_comm, "out_comm");
  if (color < 0 && color != LIGHTOS_COMM_SPLIT_NOCOLOR)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "color %d is negative (use LIGHTOS_COMM_SPLIT_NOCOLOR to opt out)", color);
  if (lk_group_depth > 0)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "lightos_comm_split inside a group call");
  lightos_comm_config_t check;
  lightos_status_t s = config ? lk_config_resolve(config, &check) : LIGHTOS_SUCCESS;
  if (!s) s = lk_fail_if_aborted(c);
  if (s) return s;
  LK_NEW_OP(o, c, LK_COLL_SPLIT, 0);
  o->dtype = LIGHTOS_DTYPE_U8;
  o->color = color;
  o->key = key;
  o->split_config = config;
  lk_comm_t* result = NULL;
  o->split_out = &result; /* written by the proxy before it signals done */
  s = lk_event_create(&o->done);
  if (s) {
    lk_coll_free(o);
    return s;
  }
  lk_event_t* done = o->done;
  lk_object_ref(&done->obj); /* ours: the operation releases the handle */
  o->batch_end = true;
  lk_hand_over(o);
  s = lk_event_wait_internal(done);
  lk_object_unref(&done->obj);
  *out_comm = !s && result ? LK_HANDLE(result) : NULL;
  return s;
}

LIGHTOS_API lightos_status_t lightos_comm_destroy(lightos_comm_t comm) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  /* Let the enqueued operations finish (or fail by timeout), then stop. */
  pthread_mutex_lock(&c->lock);
  while (c->inflight) pthread_cond_wait(&c->cv, &c->lock);
  c->stop = true;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->lock);
  if (c->proxy_started) pthread_join(c->proxy, NULL);
  c->proxy_started = false;
  if (c->staging_queue) lightos_queue_release(LK_HANDLE(c->staging_queue));
  c->staging_queue = NULL;
  if (c->dev_vtbl) c->dev_vtbl->destroy(c);
  c->dev_vtbl = NULL;
  if (c->hier_inner) lightos_comm_destroy(LK_HANDLE(c->hier_inner));
  if (c->hier_outer) lightos_comm_destroy(LK_HANDLE(c->hier_outer));
  c->hier_inner = c->hier_outer = NULL;
  lk_object_ext_release(&c->obj);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_comm_abort(lightos_comm_t comm) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  char why[64];
  snprintf(why, sizeof why, "lightos_comm_abort on rank %u", c->rank);
  lk_comm_set_aborted(c, why);
  c->xport->vtbl->abort(c->xport, why);
  if (c->dev_vtbl) c->dev_vtbl->abort(c);
  if (c->hier_inner) (void)lightos_comm_abort(LK_HANDLE(c->hier_inner));
  if (c->hier_outer) (void)lightos_comm_abort(LK_HANDLE(c->hier_outer));
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_comm_rank(lightos_comm_t comm, uint32_t* out_rank) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  LK_CHECK_OUT(out_rank, "out_rank");
  *out_rank = c->rank;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_comm_size(lightos_comm_t comm, uint32_t* out_size) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  LK_CHECK_OUT(out_size, "out_size");
  *out_size = c->size;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_comm_level(lightos_comm_t comm,
                                                lightos_determinism_t* out_level) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  LK_CHECK_OUT(out_level, "out_level");
  *out_level = c->config.level;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_comm_transport(lightos_comm_t comm, const char** out_name) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  LK_CHECK_OUT(out_name, "out_name");
  const char* ext = lk_ext_name(c->xport);
  *out_name = c->dev_vtbl ? c->dev_vtbl->name : ext ? ext : c->xport->vtbl->name;
  return LIGHTOS_SUCCESS;
}
