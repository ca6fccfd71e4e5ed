/* Queues: the runtime side.  Commands are built here and handed to the
 * backend's queue, which runs them in order and completes them through
 * lk_cmd_complete(). */
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "runtime/runtime.h"

static void lk_queue_destroy(lk_object_t* obj) {
  lk_queue_t* q = (lk_queue_t*)obj;
  if (q->hal) {
    q->hal->vtbl->finish(q->hal);
    q->hal->vtbl->destroy(q->hal);
  }
  if (q->context && !q->is_default) lk_object_unref(&q->context->obj);
  free(q);
}

/* A default queue (is_default) takes no reference on its context: the
 * context owns it and releases it when it goes. */
lightos_status_t lk_queue_create_internal(lk_context_t* c, uint32_t flags, bool is_default,
                                          lk_queue_t** out);
lightos_status_t lk_queue_create_internal(lk_context_t* c, uint32_t flags, bool is_default,
                                          lk_queue_t** out) {
  lk_queue_t* q = calloc(1, sizeof *q);
  if (!q) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a queue");
  lightos_status_t s = lk_object_init(&q->obj, LK_OBJ_QUEUE, lk_queue_destroy);
  if (s) {
    free(q);
    return s;
  }
  if (!is_default) lk_object_ref(&c->obj);
  q->context = c;
  q->is_default = is_default;
  q->flags = flags;
  s = c->hal->vtbl->queue_create(c->hal, flags, &q->hal);
  if (s) {
    lk_object_ext_release(&q->obj);
    return s;
  }
  *out = q;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_queue_create(lightos_context_t context, uint32_t flags,
                                                  lightos_queue_t* out_queue) {
  lk_context_t* c = NULL;
  LK_RESOLVE(c, context, LK_OBJ_CONTEXT, "context");
  LK_CHECK_OUT(out_queue, "out_queue");
  if (flags & ~(uint32_t)LIGHTOS_QUEUE_PROFILING)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "flags 0x%x has unknown bits", flags);
  lk_queue_t* q = NULL;
  lightos_status_t s = lk_queue_create_internal(c, flags, false, &q);
  if (s) return s;
  *out_queue = LK_HANDLE(q);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_queue_retain(lightos_queue_t queue) {
  lk_queue_t* q = NULL;
  LK_RESOLVE(q, queue, LK_OBJ_QUEUE, "queue");
  if (q->is_default)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "queue %p is its context's default queue: it lives exactly as long as the "
                   "context (retain the context instead)",
                   (void*)queue);
  lk_object_ext_retain(&q->obj);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_queue_release(lightos_queue_t queue) {
  lk_queue_t* q = NULL;
  LK_RESOLVE(q, queue, LK_OBJ_QUEUE, "queue");
  if (q->is_default)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "queue %p is its context's default queue: it is released with the context",
                   (void*)queue);
  lk_object_ext_release(&q->obj);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_queue_finish(lightos_queue_t queue) {
  lk_queue_t* q = NULL;
  LK_RESOLVE(q, queue, LK_OBJ_QUEUE, "queue");
  return q->hal->vtbl->finish(q->hal);
}

/* ---- launch command blocks ---------------------------------------------------
 *
 * A kernel launch is one allocation (the command, its argument arrays and
 * its buffer list: lightos_enqueue_kernel), made by the submitting thread
 * and freed by whichever thread completes it, on GPU backends the queue's
 * completion thread.  glibc's allocator serves that producer/consumer
 * pattern poorly: the freeing thread's per-thread cache fills up, the
 * allocating thread's stays empty, so every launch went through the arena
 * lock and bin bookkeeping that the other thread had just touched.  Blocks
 * of up to LK_CMD_BLOCK bytes are therefore recycled here:
 *   - a freed block is pushed onto a lock-free stack (compare-and-swap);
 *   - an allocating thread takes the whole stack with one atomic exchange
 *     (no ABA problem: nothing is ever popped from the shared stack one node
 *     at a time) into a list of its own and allocates from that list
 *     without atomics; the list goes back to the stack when the thread
 *     exits (a pthread key's destructor);
 *   - at most LK_CMD_POOL_MAX blocks are ever made for the pool (then plain
 *     malloc/free), so the memory kept is bounded (LK_CMD_POOL_MAX *
 *     LK_CMD_BLOCK bytes); pooled blocks stay reachable (stack, thread
 *     lists, queued commands) and are never returned to the system.
 * Each block starts with a header (lk_cmd_blk_t) that says whether it
 * belongs to the pool; the command follows it.  Only launch commands
 * (inline_arrays) are made here. */
#define LK_CMD_BLOCK 1024u
#define LK_CMD_POOL_MAX 2048

typedef struct lk_cmd_blk {
  struct lk_cmd_blk* next; /* in the stack or a thread's list */
  bool pooled;             /* LK_CMD_BLOCK bytes, recycled */
} lk_cmd_blk_t;

#define LK_CMD_HDR lk_align_up(sizeof(lk_cmd_blk_t), alignof(max_align_t))

/* The calling thread's own blocks, and whether its exit hands them back. */
typedef struct lk_pool_tls {
  lk_cmd_blk_t* mine;
  unsigned count; /* blocks this thread freed into mine (at most LK_CMD_TLS_MAX) */
  bool registered;
} lk_pool_tls_t;

/* A thread keeps up to this many freed blocks for itself (a backend that
 * retires launches on the submitting thread reuses them while they are
 * still in that core's cache); beyond, they go to the shared stack. */
#define LK_CMD_TLS_MAX 64u

static _Atomic(lk_cmd_blk_t*) lk_pool_head;
static atomic_int lk_pool_made;
static _Thread_local lk_pool_tls_t lk_pool_tls;
static pthread_key_t lk_pool_key;
static pthread_once_t lk_pool_once = PTHREAD_ONCE_INIT;
static bool lk_pool_key_ok;

static void lk_pool_push(lk_cmd_blk_t* first, lk_cmd_blk_t* last) {
  lk_cmd_blk_t* h = atomic_load_explicit(&lk_pool_head, memory_order_relaxed);
  do {
    last->next = h;
  } while (!atomic_compare_exchange_weak_explicit(&lk_pool_head, &h, first, memory_order_release,
                                                  memory_order_relaxed));
}

/* A thread that took blocks exits: its list goes back to the stack (an
 * allocation after this registers the thread again, and the destructor
 * runs again). */
static void lk_pool_thread_exit(void* arg) {
  lk_pool_tls_t* t = arg;
  lk_cmd_blk_t* first = t->mine;
  t->mine = NULL;
  t->count = 0;
  t->registered = false;
  if (!first) return;
  lk_cmd_blk_t* last = first;
  while (last->next) last = last->next;
  lk_pool_push(first, last);
}

static void lk_pool_init(void) {
  lk_pool_key_ok = pthread_key_create(&lk_pool_key, lk_pool_thread_exit) == 0;
}

/* Whether this thread may hold pooled blocks (its exit hands them back). */
static bool lk_pool_thread_ready(void) {
  if (lk_pool_tls.registered) return true;
  pthread_once(&lk_pool_once, lk_pool_init);
  lk_pool_tls.registered = lk_pool_key_ok && pthread_setspecific(lk_pool_key, &lk_pool_tls) == 0;
  return lk_pool_tls.registered;
}

lk_cmd_t* lk_cmd_new_launch(size_t bytes) {
  lk_cmd_blk_t* b = NULL;
  if (LK_CMD_HDR + bytes <= LK_CMD_BLOCK && lk_pool_thread_ready()) {
    if (!lk_pool_tls.mine) {
      lk_pool_tls.mine = atomic_exchange_explicit(&lk_pool_head, NULL, memory_order_acquire);
      lk_pool_tls.count = 0;
    }
    if (lk_pool_tls.mine) {
      b = lk_pool_tls.mine;
      lk_pool_tls.mine = b->next;
      if (lk_pool_tls.count) lk_pool_tls.count--; /* this thread's own come first */
    } else if (atomic_fetch_add_explicit(&lk_pool_made, 1, memory_order_relaxed) <
               LK_CMD_POOL_MAX) {
      b = malloc(LK_CMD_BLOCK);
      if (!b) {
        atomic_fetch_sub_explicit(&lk_pool_made, 1, memory_order_relaxed);
        return NULL;
      }
      b->pooled = true;
    } else {
      atomic_fetch_sub_explicit(&lk_pool_made, 1, memory_order_relaxed); /* pool full */
    }
  }
  if (!b) {
    b = malloc(LK_CMD_HDR + bytes);
    if (!b) return NULL;
    b->pooled = false;
  }
  b->next = NULL;
  lk_cmd_t* c = (lk_cmd_t*)(void*)((char*)b + LK_CMD_HDR);
  memset(c, 0, bytes);
  c->inline_arrays = true;
  return c;
}

/* Frees a command's memory (its references are gone). */
static void lk_cmd_free_block(lk_cmd_t* c) {
  if (!c->inline_arrays) {
    free(c);
    return;
  }
  lk_cmd_blk_t* b = (lk_cmd_blk_t*)(void*)((char*)c - LK_CMD_HDR);
  if (!b->pooled) {
    free(b);
  } else if (lk_pool_tls.registered && lk_pool_tls.count < LK_CMD_TLS_MAX) {
    b->next = lk_pool_tls.mine;
    lk_pool_tls.mine = b;
    lk_pool_tls.count++;
  } else {
    lk_pool_push(b, b);
  }
}

lk_cmd_t* lk_cmd_new(lk_cmd_kind_t kind) {
  lk_cmd_t* c = calloc(1, sizeof *c);
  if (c) c->kind = kind;
  return c;
}

/* ---- references from a queue's stock (hal.h) ---------------------------------- */

/* The stock's slot for o, or the first free one; -1 when full (slots are
 * filled in order and emptied all at once). */
static int lk_ref_slot(const lk_ref_cache_t* rc, const lk_object_t* o) {
  for (int i = 0; i < LK_REF_SLOTS; ++i)
    if (!rc->obj[i] || rc->obj[i] == o) return i;
  return -1;
}

static void lk_ref_take(lk_ref_cache_t* rc, lk_object_t* o) {
  int i = lk_ref_slot(rc, o);
  if (!rc->left[i]) {
    atomic_fetch_add(&o->refs, (int)LK_REF_CREDITS);
    rc->obj[i] = o;
    rc->left[i] = LK_REF_CREDITS;
    rc->taken[i] += LK_REF_CREDITS;
  }
  rc->left[i]--;
}

/* The command's objects: its kernel (if any) first, then its buffers. */
static lk_object_t* lk_cmd_ref_obj(const lk_cmd_t* c, uint32_t i) {
  if (c->kernel) {
    if (i == 0) return &c->kernel->obj;
    --i;
  }
  return &c->launch_bufs[i]->obj;
}

bool lk_cmd_take_stock(lk_cmd_t* c, lk_ref_cache_t* rc) {
  uint32_t n = c->num_launch_bufs + (c->kernel != NULL);
  /* Usually every object is in the stock already with credit left: the
   * credits are used in place (and given back if one runs short; an object
   * may come twice). */
  if (n <= LK_REF_SLOTS) {
    int8_t slot[LK_REF_SLOTS];
    uint32_t i = 0;
    for (; i < n; ++i) {
      lk_object_t* o = lk_cmd_ref_obj(c, i);
      int k = 0;
      while (k < LK_REF_SLOTS && rc->obj[k] && rc->obj[k] != o) ++k;
      if (k == LK_REF_SLOTS || rc->obj[k] != o || !rc->left[k]) break;
      rc->left[k]--;
      slot[i] = (int8_t)k;
    }
    if (i == n) {
      c->refs_pending = false;
      c->refs_stock = true;
      return true;
    }
    while (i--) rc->left[slot[i]]++;
  }
  /* Slots for the objects not in the stock yet (a copy is filled to see),
   * then credits, taken where they ran out. */
  lk_ref_cache_t probe = *rc;
  for (uint32_t i = 0; i < n; ++i) {
    lk_object_t* o = lk_cmd_ref_obj(c, i);
    int k = lk_ref_slot(&probe, o);
    if (k < 0) return false;
    probe.obj[k] = o;
  }
  for (uint32_t i = 0; i < n; ++i) lk_ref_take(rc, lk_cmd_ref_obj(c, i));
  c->refs_pending = false;
  c->refs_stock = true;
  return true;
}

void lk_cmd_take_refs(lk_cmd_t* c) {
  if (!c->refs_pending) return;
  c->refs_pending = false;
  if (c->kernel) lk_object_ref(&c->kernel->obj);
  for (uint32_t i = 0; i < c->num_launch_bufs; ++i) lk_object_ref(&c->launch_bufs[i]->obj);
}

bool lk_ref_cache_any(const lk_ref_cache_t* rc) { return rc->obj[0] != NULL; }

void lk_ref_cache_release(lk_ref_cache_t* rc) {
  for (int i = 0; i < LK_REF_SLOTS && rc->obj[i]; ++i)
    lk_object_unref_n(rc->obj[i], (int)rc->taken[i]);
  memset(rc, 0, sizeof *rc);
}

static void lk_cmd_drop_refs(lk_cmd_t* c) {
  for (int i = 0; i < 2; ++i)
    if (c->buf[i]) lk_object_unref(&c->buf[i]->obj);
  if (c->wait_event) lk_object_unref(&c->wait_event->obj);
  if (!c->refs_pending && !c->refs_stock) { /* else the command holds none */
    if (c->kernel) lk_object_unref(&c->kernel->obj);
    for (uint32_t i = 0; i < c->num_launch_bufs; ++i) lk_object_unref(&c->launch_bufs[i]->obj);
  }
  if (c->kind == LK_CMD_HOST) free(c->u.host.arg);
  if (c->inline_arrays) return;
  free(c->launch_bufs);
  if (c->kind == LK_CMD_KERNEL) {
    free(c->u.launch.values);
    free(c->u.launch.arg_ptrs);
    free(c->u.launch.mems);
  }
}

void lk_cmd_free_unsubmitted(lk_cmd_t* c) {
  if (!c) return;
  lk_cmd_drop_refs(c);
  if (c->event) lk_object_unref(&c->event->obj);
  lk_cmd_free_block(c);
}

void lk_cmd_complete(lk_cmd_t* c, lightos_status_t status, uint64_t t_start, uint64_t t_end) {
  if (c->event) {
    const lightos_error_info_t* e = lightos_last_error();
    lk_event_signal(c->event, status, status ? e->message : "", status ? e->backend : "",
                    t_start, t_end);
    lk_object_unref(&c->event->obj);
  }
  lk_cmd_drop_refs(c);
  lk_cmd_free_block(c);
}

lightos_status_t lk_queue_submit(lk_queue_t* q, lk_cmd_t* cmd, lightos_event_t* out_event) {
  if (out_event) {
    lk_event_t* e = NULL;
    lightos_status_t s = lk_event_create(&e);
    if (s) {
      lk_cmd_free_unsubmitted(cmd);
      return s;
    }
    e->profiled = (q->flags & LIGHTOS_QUEUE_PROFILING) != 0;
    lk_object_ref(&e->obj); /* the command's reference */
    cmd->event = e;
    *out_event = LK_HANDLE(e);
  }
  lightos_status_t s = q->hal->vtbl->submit(q->hal, cmd);
  if (s && out_event) {
    lk_object_t* o = NULL;
    if (lk_handle_resolve(*out_event, LK_OBJ_EVENT, "event", &o) == LIGHTOS_SUCCESS)
      lk_object_ext_release(o);
    *out_event = NULL;
  }
  return s;
}

LIGHTOS_API lightos_status_t lightos_queue_wait_event(lightos_queue_t queue,
                                                      lightos_event_t event) {
  lk_queue_t* q = NULL;
  lk_event_t* e = NULL;
  LK_RESOLVE(q, queue, LK_OBJ_QUEUE, "queue");
  LK_RESOLVE(e, event, LK_OBJ_EVENT, "event");
  lk_cmd_t* c = lk_cmd_new(LK_CMD_WAIT);
  if (!c) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a command");
  lk_object_ref(&e->obj);
  c->wait_event = e;
  return lk_queue_submit(q, c, NULL);
}

LIGHTOS_API lightos_status_t lightos_event_record(lightos_queue_t queue,
                                                  lightos_event_t* out_event) {
  lk_queue_t* q = NULL;
  LK_RESOLVE(q, queue, LK_OBJ_QUEUE, "queue");
  LK_CHECK_OUT(out_event, "out_event");
  lk_cmd_t* c = lk_cmd_new(LK_CMD_MARKER);
  if (!c) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a command");
  return lk_queue_submit(q, c, out_event);
}

lightos_status_t lk_queue_wait_and_release(lk_queue_t* q, lightos_event_t ev) {
  if (q->hal->vtbl->drain) q->hal->vtbl->drain(q->hal);
  lightos_status_t s = lightos_event_wait(ev);
  lightos_event_release(ev);
  return s;
}
