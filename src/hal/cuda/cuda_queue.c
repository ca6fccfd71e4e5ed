/* CUDA queues: commands become work on a non-blocking CUstream; LightOS
 * commands (events, references) are completed in order by a completion
 * thread, in batches.
 *
 * Dispatch stays cheap: submit enqueues the driver work and appends the
 * command to a list of pending entries; it records no CUevent per command.
 * A "marker" CUevent is recorded after a command only when
 *   - the command has a user event (someone may wait for it),
 *   - LK_CU_BATCH commands went by without one (LIGHTOS_CUDA_BATCH
 *     overrides it, 1..65536),
 * and finish/drain synchronise the stream instead.  The completion thread
 * waits for the first marker (cuEventSynchronize) and then completes every
 * command queued before it, in order.  Commands with no device work at the
 * head of the list complete at once; unmarked leftovers are swept with
 * cuStreamQuery after a short idle pause, so their buffers are released
 * even when nobody calls finish.
 *
 * The launching thread shares as little as it can with the completion
 * thread: on the GPU hosts a locked instruction right after a launch costs
 * about 45 ns, and every cache line the other thread touched costs a
 * transfer.  So the pending list is published without a lock
 * (lk_cu_push); a launch takes its kernel's and buffers' references from
 * the queue's stock (hal.h), which goes with the next marker and is
 * released when the marker completes; and a launch on the stock that
 * nobody waits for (no event, no failure) gets no entry at all: its
 * command block is freed at once, on the launching thread, and reused by
 * its next launch while still in that core's cache.  The completion
 * thread covers a stock in use with a marker when it finds the queue idle
 * (the references of unwaited launches are released then, as their
 * entries' were).
 *
 * Commands done on the host (a wait for another event, a host function, a
 * copy between host-addressable buffers of two contexts) never block the
 * submitting thread: they go to the queue's host thread, and the commands
 * submitted after them wait in a deferred list until it has run them, in
 * order (the queue is "gated" meanwhile).
 *
 * Locks: submit_lock serialises submitters and is held across the driver
 * calls that enqueue work (stream order = list order); `lock` guards the
 * marker count, the event pools, the completer's wake-ups and the error
 * state, and is never held across a driver call that waits.  Exactly one thread at a time completes entries
 * (`completing`): the completion thread, or finish/drain.
 *
 * The completion thread polls a marker whose command has an event
 * (cuEventQuery) for a short while (LIGHTOS_CUDA_SPIN_US, default 100 us)
 * so short work completes with little latency, then sleeps in
 * cuEventSynchronize (markers are blocking-sync events), so long work does
 * not cost a spinning core; batch markers, which nobody waits for, it
 * does not poll.  Device work nobody waits for (batch markers included)
 * does not wake it: while idle it waits 10 ms at a time and finds such work
 * then; only after about a second without work does it sleep until woken.
 * So a thread that enqueues and finishes in a loop pays no wake-up system
 * call per command, and the completion thread does not run beside its
 * launches.
 *
 * Profiling queues record a timing CUevent before and after each command
 * that has a user event; timestamps are nanoseconds on the host clock,
 * anchored when the queue was created (a reference event) and re-anchored
 * on a later event every second, so cuEventElapsedTime's float
 * milliseconds keep their precision.
 */
#include <errno.h>
#include <sched.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/util.h"
#include "hal/cuda/cuda_backend.h"
#include "hal/cuda/cuda_blas.h"

/* Commands between two batch markers.  Each marker costs the submitting
 * thread a cuEventRecord and a wake-up of the completion thread (a futex
 * system call), and its completion is a burst of work on the other thread.
 * On an H200 that came to about 4.5 us per marker, i.e. 0.14 us per launch
 * when it was 32; at 256 it is under 0.02 us.  The price: without a finish
 * or an event, a command's buffers are released up to 256 commands (or one
 * idle sweep) later. */
#define LK_CU_BATCH 256u
#define LK_CU_CHUNK 64u
#define LK_CU_SEG 256u /* entries per segment of the pending list */

/* The completer's idle wait: LK_CU_IDLE_MS at a time, so device work
 * pushed onto an empty list need not wake it; after LK_CU_IDLE_ROUNDS
 * empty waits in a row (about a second) it sleeps until woken. */
#define LK_CU_IDLE_MS 10u
#define LK_CU_IDLE_ROUNDS 100u

typedef struct lk_cu_entry {
  lk_cmd_t* cmd;           /* NULL: work with no command (enqueue_native) */
  CUevent done;            /* marker recorded after the work, or NULL */
  CUevent start;           /* profiling: recorded before the work, or NULL */
  lightos_status_t status; /* failure decided at submit */
  bool host_only;          /* no device work of its own */
  bool done_timed;         /* done comes from the timing pool */
  char* msg;               /* the failure's message (malloc'ed) */
  lk_ref_cache_t* stock;   /* references released once done is reached (malloc'ed) */
} lk_cu_entry_t;

typedef struct lk_cu_seg {
  _Atomic(struct lk_cu_seg*) next;
  lk_cu_entry_t e[LK_CU_SEG];
} lk_cu_seg_t;

typedef struct lk_cu_evpool {
  CUevent* ev;
  size_t n, cap;
  unsigned flags;
} lk_cu_evpool_t;

typedef struct lk_cu_queue {
  lk_hal_queue_t base;
  lk_cu_context_t* ctx;
  const lk_cuda_api_t* api;
  CUstream stream;
  bool profiling;
  pthread_mutex_t submit_lock;
  unsigned since_mark;       /* under submit_lock */
  lk_ref_cache_t refs;       /* the stock of references for launches (hal.h;
                                under submit_lock): goes with the next marker */
  unsigned batch;            /* LK_CU_BATCH, or LIGHTOS_CUDA_BATCH */
  /* Host work (waits for events, host functions, copies across contexts)
   * runs on the queue's host thread; while it has work the queue is
   * `gated` and later commands wait in `deferred` (under submit_lock). */
  pthread_cond_t gcv;        /* deferred work came, or the gate opened */
  lk_cmd_t *dhead, *dtail;
  bool gated, gstop, gate_started;
  pthread_t gate;
  /* The pending entries: a list of segments, written by the submitter
   * (under submit_lock) and read by the completing thread without a lock;
   * see lk_cu_push. */
  /* The submitter's side and the completing thread's side each have a
   * cache line of their own: the submitter reads `head` for every push,
   * which changes once per chunk of completed entries. */
  alignas(64) lk_cu_seg_t* pseg; /* the submitter's segment (under submit_lock) */
  unsigned pidx;             /* its next free slot */
  atomic_size_t tail;        /* entries ever pushed (published with release) */
  alignas(64) lk_cu_seg_t* cseg; /* the completing thread's segment (`completing`) */
  unsigned cidx;             /* the next entry to complete in it */
  atomic_size_t head;        /* entries ever completed */
  alignas(64) _Atomic(lk_cu_seg_t*) spare; /* a used segment kept for reuse */
  atomic_bool deep;          /* the completer sleeps untimed: wake it for any work */
  atomic_bool stock_pending; /* the stock is not empty (set and cleared with it):
                                the completer covers it with a marker when idle */
  pthread_mutex_t lock;
  pthread_cond_t cv;         /* work for the completer (see lk_cu_push), or stop */
  pthread_cond_t done_cv;    /* `completing` was released: entries completed */
  size_t marked;             /* pending entries with a marker (under lock) */
  bool completing, stop;
  unsigned idle_rounds;      /* the completer's empty idle waits in a row */
  pthread_t completer;
  lk_cu_evpool_t marks, timed;
  atomic_int error;          /* first failure since the last finish */
  char error_msg[512];       /* under lock, with the native error: */
  char error_name[64];
  int64_t error_code;
  CUevent tref;              /* profiling: time reference (completing thread only) */
  uint64_t tref_ns;
  uint64_t spin_ns;          /* polling before a blocking wait */
} lk_cu_queue_t;

/* ---- small helpers ---------------------------------------------------------- */

/* Records the first failure since the last finish (the calling thread's
 * error record gives its native name and code). */
static void lk_cu_record_error(lk_cu_queue_t* q, lightos_status_t s, const char* msg) {
  pthread_mutex_lock(&q->lock);
  if (!atomic_load(&q->error)) {
    lk_strlcpy(q->error_msg, msg, sizeof q->error_msg);
    lk_strlcpy(q->error_name, lightos_last_error()->native_name, sizeof q->error_name);
    q->error_code = lightos_last_error()->native_code;
    atomic_store(&q->error, (int)s);
  }
  pthread_mutex_unlock(&q->lock);
}

/* An event from a pool (lock held); NULL when none can be made. */
static CUevent lk_cu_ev_get(lk_cu_queue_t* q, lk_cu_evpool_t* p) {
  if (p->n) return p->ev[--p->n];
  CUevent e = NULL;
  if (q->api->cuEventCreate(&e, p->flags) != CUDA_SUCCESS) return NULL;
  return e;
}

static void lk_cu_ev_put(lk_cu_queue_t* q, lk_cu_evpool_t* p, CUevent e) {
  if (!e) return;
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    CUevent* grown = realloc(p->ev, cap * sizeof *grown);
    if (!grown) {
      q->api->cuEventDestroy_v2(e);
      return;
    }
    p->ev = grown;
    p->cap = cap;
  }
  p->ev[p->n++] = e;
}

static void lk_cu_pool_free(lk_cu_queue_t* q, lk_cu_evpool_t* p) {
  for (size_t i = 0; i < p->n; ++i) q->api->cuEventDestroy_v2(p->ev[i]);
  free(p->ev);
  memset(p, 0, sizeof *p);
}

/* Pending entries (the calling thread owns `completing` or holds lock). */
static size_t lk_cu_count(lk_cu_queue_t* q) {
  return atomic_load_explicit(&q->tail, memory_order_acquire) -
         atomic_load_explicit(&q->head, memory_order_relaxed);
}

/* The k-th pending entry (k < lk_cu_count; the caller owns `completing`).
 * Entries are not changed once published, so no lock is needed. */
static lk_cu_entry_t* lk_cu_pending(lk_cu_queue_t* q, size_t k) {
  lk_cu_seg_t* g = q->cseg;
  size_t i = q->cidx + k;
  while (i >= LK_CU_SEG) {
    g = atomic_load_explicit(&g->next, memory_order_acquire);
    i -= LK_CU_SEG;
  }
  return &g->e[i];
}

/* Takes the next pending entry off the list (the caller owns `completing`,
 * has seen it with lk_cu_count, and advances `head` after a chunk).  A
 * segment is left only for an entry beyond it, so the submitter has moved
 * on from it: it is kept for reuse. */
static lk_cu_entry_t lk_cu_pop(lk_cu_queue_t* q) {
  if (q->cidx == LK_CU_SEG) {
    lk_cu_seg_t* used = q->cseg;
    q->cseg = atomic_load_explicit(&used->next, memory_order_acquire);
    q->cidx = 0;
    free(atomic_exchange_explicit(&q->spare, used, memory_order_acq_rel));
  }
  return q->cseg->e[q->cidx++];
}

/* Wakes the completion thread (from its idle or deep sleep). */
static void lk_cu_wake(lk_cu_queue_t* q) {
  pthread_mutex_lock(&q->lock);
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->lock);
}

/* Moves the stock of references out of the queue into *out (submit_lock
 * held); the completer has nothing to cover after this. */
static void lk_cu_take_stock(lk_cu_queue_t* q, lk_ref_cache_t* out) {
  *out = q->refs;
  memset(&q->refs, 0, sizeof q->refs);
  atomic_store_explicit(&q->stock_pending, false, memory_order_release);
}

/* Appends an entry (submit_lock held); -1 when no segment can be had.
 *
 * The submitter takes no lock for plain device work: the entry is written
 * into the submitter's segment and published by a release store of `tail`;
 * the completing thread reads entries below `tail` (acquire) without a
 * lock.  A locked instruction costs tens of nanoseconds right after a
 * kernel launch (measured: about 45 ns each on the GPU hosts), and a
 * launch's whole budget is a few microseconds.
 *
 * The completer is woken (under lock) for host work and for a command with
 * an event, for which it may have to act now; device work without one,
 * batch markers included, does not wake it (its idle wait ends within
 * LK_CU_IDLE_MS and completes it then: a wake-up is a system call on the
 * launching thread, and the woken completer's driver calls would run
 * beside its launches), except from its deep sleep: a push onto an empty
 * list publishes `tail` and then reads `deep`, the completer sets `deep`
 * and then reads `tail`, all four sequentially consistent, so at least one
 * sees the other's store (for a marker, `deep` is read under the lock the
 * completer holds from its store of `deep` to its wait). */
static int lk_cu_push(lk_cu_queue_t* q, const lk_cu_entry_t* e) {
  if (q->pidx == LK_CU_SEG) {
    lk_cu_seg_t* g = atomic_exchange_explicit(&q->spare, NULL, memory_order_acq_rel);
    if (!g && !(g = malloc(sizeof *g))) return -1;
    atomic_store_explicit(&g->next, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->pseg->next, g, memory_order_release);
    q->pseg = g;
    q->pidx = 0;
  }
  q->pseg->e[q->pidx++] = *e;
  size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
  bool was_empty = atomic_load_explicit(&q->head, memory_order_acquire) == t;
  /* Onto an empty list the store is sequentially consistent, ordered with
   * the completer's store of `deep` before its last look at `tail`. */
  atomic_store_explicit(&q->tail, t + 1, was_empty ? memory_order_seq_cst : memory_order_release);
  if (e->done || e->host_only) {
    bool waited = e->host_only || (e->cmd && e->cmd->event);
    pthread_mutex_lock(&q->lock);
    if (e->done) q->marked++;
    if (waited || (was_empty && atomic_load_explicit(&q->deep, memory_order_seq_cst)))
      pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->lock);
  } else if (was_empty && atomic_load_explicit(&q->deep, memory_order_seq_cst)) {
    lk_cu_wake(q);
  }
  return 0;
}

static uint64_t lk_cu_event_ns(lk_cu_queue_t* q, CUevent ev, float* out_ms) {
  float ms = 0.0f;
  CUresult r = CUDA_ERROR_NOT_SUPPORTED;
  if (q->tref) {
    if (q->api->cuEventElapsedTime_v2) r = q->api->cuEventElapsedTime_v2(&ms, q->tref, ev);
    else if (q->api->cuEventElapsedTime) r = q->api->cuEventElapsedTime(&ms, q->tref, ev);
  }
  if (r != CUDA_SUCCESS) {
    *out_ms = 0.0f;
    return lk_now_ns();
  }
  if (ms < 0.0f) ms = 0.0f;
  *out_ms = ms;
  return q->tref_ns + (uint64_t)((double)ms * 1e6);
}

/* Completes the n entries at the head of the list, in order (the calling
 * thread owns `completing`).  Entries without a failure of their own get
 * batch_status (with batch_msg). */
static void lk_cu_complete_n(lk_cu_queue_t* q, size_t n, lightos_status_t batch_status,
                             const char* batch_msg) {
  lk_cu_entry_t chunk[LK_CU_CHUNK];
  while (n) {
    size_t m = n < LK_CU_CHUNK ? n : LK_CU_CHUNK, marks = 0;
    for (size_t i = 0; i < m; ++i) {
      chunk[i] = lk_cu_pop(q);
      marks += chunk[i].done != NULL;
    }
    atomic_store_explicit(&q->head, atomic_load_explicit(&q->head, memory_order_relaxed) + m,
                          memory_order_release);
    if (marks) {
      pthread_mutex_lock(&q->lock);
      q->marked -= marks;
      pthread_mutex_unlock(&q->lock);
    }
    for (size_t i = 0; i < m; ++i) {
      lk_cu_entry_t* e = &chunk[i];
      lightos_status_t s = e->status ? e->status : batch_status;
      uint64_t t0 = 0, t1 = 0;
      if (s) {
        LK_FAIL_NATIVE(s, "cuda", "", 0, "%s", e->status ? (e->msg ? e->msg : "") : batch_msg);
      } else if (q->profiling && e->cmd && e->cmd->event) {
        float ms0 = 0.0f, ms1 = 0.0f;
        (void)lk_cu_make_current(q->ctx);
        t0 = e->start ? lk_cu_event_ns(q, e->start, &ms0) : lk_now_ns();
        t1 = e->done ? lk_cu_event_ns(q, e->done, &ms1) : t0;
        if (t1 < t0) t1 = t0;
        if (e->done && e->done_timed && ms1 > 1000.0f) {
          /* Re-anchor on this event: the old reference goes back. */
          CUevent old = q->tref;
          q->tref = e->done;
          q->tref_ns = t1;
          e->done = old;
        }
      }
      if (e->cmd) lk_cmd_complete(e->cmd, s, t0, t1);
      free(e->msg);
      if (e->stock) {
        lk_ref_cache_release(e->stock);
        free(e->stock);
      }
    }
    bool events = marks > 0;
    for (size_t i = 0; i < m && !events; ++i) events = chunk[i].start != NULL;
    if (events) {
      pthread_mutex_lock(&q->lock);
      for (size_t i = 0; i < m; ++i) {
        lk_cu_ev_put(q, chunk[i].done_timed ? &q->timed : &q->marks, chunk[i].done);
        lk_cu_ev_put(q, &q->timed, chunk[i].start);
      }
      pthread_mutex_unlock(&q->lock);
    }
    n -= m;
  }
}

/* Waits for the stream and completes the first n entries (the caller owns
 * `completing`); with n = 0 only if `always` (launches that have no entry
 * may be running). */
static void lk_cu_sync_complete(lk_cu_queue_t* q, size_t n, bool always) {
  if (!n && !always) return;
  (void)lk_cu_make_current(q->ctx);
  CUresult r = q->api->cuStreamSynchronize(q->stream);
  lightos_status_t s = LIGHTOS_SUCCESS;
  char msg[512] = "";
  if (r) {
    s = lk_cu_fail(q->ctx, r, "cuStreamSynchronize", "a queued command failed");
    lk_strlcpy(msg, lightos_last_error()->message, sizeof msg);
    lk_cu_record_error(q, s, msg);
  }
  lk_cu_complete_n(q, n, s, msg);
}

/* ---- the completion thread ---------------------------------------------------- */

/* Waits for a marker: polls for spin_ns (when someone may be waiting for
 * it), then blocks. */
static CUresult lk_cu_wait_event(lk_cu_queue_t* q, CUevent ev, bool spin) {
  uint64_t t0 = lk_now_ns();
  while (spin) {
    CUresult r = q->api->cuEventQuery(ev);
    if (r != CUDA_ERROR_NOT_READY) return r;
    if (lk_now_ns() - t0 >= q->spin_ns) break;
    sched_yield();
  }
  return q->api->cuEventSynchronize(ev);
}

static void lk_cu_deadline(struct timespec* ts, unsigned ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_nsec += (long)ms * 1000000L;
  while (ts->tv_nsec >= 1000000000L) {
    ts->tv_nsec -= 1000000000L;
    ts->tv_sec++;
  }
}

/* Waits on the work condition for at most ms (lock held); true when the
 * wait timed out. */
static bool lk_cu_timedwait(lk_cu_queue_t* q, unsigned ms) {
  struct timespec ts;
  lk_cu_deadline(&ts, ms);
  return pthread_cond_timedwait(&q->cv, &q->lock, &ts) == ETIMEDOUT;
}

/* Completes the first n entries on the completion thread (lock held on
 * entry and exit; the thread takes `completing` meanwhile). */
static void lk_cu_completer_run(lk_cu_queue_t* q, size_t n, lightos_status_t s, const char* msg) {
  q->completing = true;
  pthread_mutex_unlock(&q->lock);
  lk_cu_complete_n(q, n, s, msg);
  pthread_mutex_lock(&q->lock);
  q->completing = false;
  pthread_cond_broadcast(&q->done_cv);
}

static void lk_cu_mark_stock(lk_cu_queue_t* q);

static void* lk_cu_completer(void* arg) {
  lk_cu_queue_t* q = arg;
  (void)lk_cu_make_current(q->ctx);
  unsigned backoff = 1;
  pthread_mutex_lock(&q->lock);
  for (;;) {
    /* The pending entries may be read here: the lock is held and nobody
     * else is completing. */
    if (q->completing) {
      pthread_cond_wait(&q->done_cv, &q->lock);
      continue;
    }
    size_t count = lk_cu_count(q);
    if (q->stop && !count) break;
    if (!count) {
      backoff = 1;
      bool stock = atomic_load_explicit(&q->stock_pending, memory_order_seq_cst);
      if (q->idle_rounds < LK_CU_IDLE_ROUNDS || stock) {
        if (lk_cu_timedwait(q, LK_CU_IDLE_MS) && !lk_cu_count(q)) {
          q->idle_rounds++;
          if (atomic_load_explicit(&q->stock_pending, memory_order_acquire)) {
            /* Launches nobody waits for used the stock of references: a
             * marker covers it, and its completion releases it (objects
             * released meanwhile are freed).  Not while a submitter is
             * busy: it records markers itself. */
            pthread_mutex_unlock(&q->lock);
            if (!pthread_mutex_trylock(&q->submit_lock)) {
              lk_cu_mark_stock(q);
              pthread_mutex_unlock(&q->submit_lock);
            }
            pthread_mutex_lock(&q->lock);
          }
        }
      } else {
        /* See lk_cu_push and lk_cu_note_stock: a submitter that finds the
         * list (or the stock) empty looks at `deep` after its store. */
        atomic_store_explicit(&q->deep, true, memory_order_seq_cst);
        if (atomic_load_explicit(&q->tail, memory_order_seq_cst) ==
                atomic_load_explicit(&q->head, memory_order_relaxed) &&
            !atomic_load_explicit(&q->stock_pending, memory_order_seq_cst) && !q->stop)
          pthread_cond_wait(&q->cv, &q->lock);
        atomic_store(&q->deep, false);
        q->idle_rounds = 0;
      }
      continue;
    }
    q->idle_rounds = 0;
    const lk_cu_entry_t* h = lk_cu_pending(q, 0);
    if (h->host_only && !h->done) {
      /* Everything before it is complete: nothing to wait for. */
      lk_cu_completer_run(q, 1, LIGHTOS_SUCCESS, "");
      continue;
    }
    if (q->marked) {
      size_t n = 0;
      const lk_cu_entry_t* m = NULL;
      while (!m) {
        const lk_cu_entry_t* e = lk_cu_pending(q, n++);
        if (e->done) m = e;
      }
      CUevent ev = m->done;
      bool spin = m->cmd && m->cmd->event; /* someone may be waiting */
      q->completing = true;
      pthread_mutex_unlock(&q->lock);
      (void)lk_cu_make_current(q->ctx);
      CUresult r = lk_cu_wait_event(q, ev, spin);
      lightos_status_t s = LIGHTOS_SUCCESS;
      char msg[512] = "";
      if (r) {
        s = lk_cu_fail(q->ctx, r, "cuEventSynchronize", "a queued command failed");
        lk_strlcpy(msg, lightos_last_error()->message, sizeof msg);
        lk_cu_record_error(q, s, msg);
      }
      lk_cu_complete_n(q, n, s, msg);
      pthread_mutex_lock(&q->lock);
      q->completing = false;
      backoff = 1;
      pthread_cond_broadcast(&q->done_cv);
      continue;
    }
    if (q->stop) {
      size_t n = count;
      q->completing = true;
      pthread_mutex_unlock(&q->lock);
      lk_cu_sync_complete(q, n, false);
      pthread_mutex_lock(&q->lock);
      q->completing = false;
      pthread_cond_broadcast(&q->done_cv);
      continue;
    }
    /* Only unmarked device work: sweep it once the stream is idle.  Not
     * while commands keep coming (a marker follows every q->batch): a
     * cuStreamQuery from this thread slows down the launches of a thread
     * that is submitting. */
    size_t seen = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (!lk_cu_timedwait(q, backoff) || q->completing || !lk_cu_count(q) || q->marked || q->stop)
      continue;
    if (atomic_load_explicit(&q->tail, memory_order_acquire) != seen) continue;
    size_t n = lk_cu_count(q);
    q->completing = true;
    pthread_mutex_unlock(&q->lock);
    (void)lk_cu_make_current(q->ctx);
    CUresult r = q->api->cuStreamQuery(q->stream);
    if (r == CUDA_ERROR_NOT_READY) {
      backoff = backoff < 16 ? backoff * 2 : 16;
    } else {
      lightos_status_t s = LIGHTOS_SUCCESS;
      char msg[512] = "";
      if (r) {
        s = lk_cu_fail(q->ctx, r, "cuStreamQuery", "a queued command failed");
        lk_strlcpy(msg, lightos_last_error()->message, sizeof msg);
        lk_cu_record_error(q, s, msg);
      }
      lk_cu_complete_n(q, n, s, msg);
      backoff = 1;
    }
    pthread_mutex_lock(&q->lock);
    q->completing = false;
    pthread_cond_broadcast(&q->done_cv);
  }
  pthread_mutex_unlock(&q->lock);
  return NULL;
}

/* ---- enqueueing -------------------------------------------------------------- */

/* Fills with a pattern: cuMemsetD8/16/32 where the pattern and the address
 * allow, strided 32-bit memsets for longer aligned patterns, else copies of
 * a pattern-filled host block.  Host-visible (pinned) memory is filled by
 * the host once the stream's earlier work is done. */
static lightos_status_t lk_cu_fill(lk_cu_queue_t* q, const lk_cmd_t* c) {
  const lk_cuda_api_t* api = q->api;
  CUdeviceptr d = (CUdeviceptr)(uintptr_t)c->u.fill.dst;
  const uint8_t* p = c->u.fill.pattern;
  size_t ps = c->u.fill.pattern_size, size = c->u.fill.size, n = size / ps;
  bool uniform = true, pinned = c->u.fill.dst_mem && c->u.fill.dst_mem->host_ptr;
  for (size_t i = 1; i < ps; ++i) uniform = uniform && p[i] == p[0];
  CUresult r;
  if (pinned) {
    r = api->cuStreamSynchronize(q->stream);
    if (r) return lk_cu_fail(q->ctx, r, "cuStreamSynchronize", "before filling host-visible memory");
    uint8_t* h = (uint8_t*)c->u.fill.dst_mem->host_ptr + c->u.fill.dst_off;
    for (size_t i = 0; i < size; i += ps) memcpy(h + i, p, ps);
    return LIGHTOS_SUCCESS;
  }
  if (uniform) {
    r = api->cuMemsetD8Async(d, p[0], size, q->stream);
    return r ? lk_cu_fail(q->ctx, r, "cuMemsetD8Async", "") : LIGHTOS_SUCCESS;
  }
  if (ps == 2 && d % 2 == 0) {
    uint16_t v;
    memcpy(&v, p, 2);
    r = api->cuMemsetD16Async(d, v, n, q->stream);
    return r ? lk_cu_fail(q->ctx, r, "cuMemsetD16Async", "") : LIGHTOS_SUCCESS;
  }
  if (ps == 4 && d % 4 == 0) {
    uint32_t v;
    memcpy(&v, p, 4);
    r = api->cuMemsetD32Async(d, v, n, q->stream);
    return r ? lk_cu_fail(q->ctx, r, "cuMemsetD32Async", "") : LIGHTOS_SUCCESS;
  }
  if (ps % 4 == 0 && d % 4 == 0) {
    /* One strided pass per 32-bit word of the pattern. */
    for (size_t w = 0; w < ps / 4; ++w) {
      uint32_t v;
      memcpy(&v, p + 4 * w, 4);
      r = api->cuMemsetD2D32Async(d + 4 * w, ps, v, 1, n, q->stream);
      if (r) return lk_cu_fail(q->ctx, r, "cuMemsetD2D32Async", "");
    }
    return LIGHTOS_SUCCESS;
  }
  /* Unaligned: copy a pattern-filled block from the host.  (A copy from
   * pageable memory returns once the driver has staged the source, so the
   * block can go right after.) */
  size_t block = (size_t)1 << 20;
  block -= block % ps;
  if (block > size) block = size;
  uint8_t* host = malloc(block);
  if (!host) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a fill");
  for (size_t i = 0; i < block; i += ps) memcpy(host + i, p, ps);
  lightos_status_t s = LIGHTOS_SUCCESS;
  for (size_t off = 0; off < size && !s; off += block) {
    size_t len = size - off < block ? size - off : block;
    r = api->cuMemcpyHtoDAsync_v2(d + off, host, len, q->stream);
    if (r) s = lk_cu_fail(q->ctx, r, "cuMemcpyHtoDAsync", "filling a buffer");
  }
  free(host);
  return s;
}

/* A copy touching host-visible (pinned, mapped) memory: cuMemcpyAsync,
 * which tells host from device memory by the unified address itself. */
static lightos_status_t lk_cu_copy_any(lk_cu_queue_t* q, const lk_cmd_t* c) {
  CUresult r = q->api->cuMemcpyAsync((CUdeviceptr)(uintptr_t)c->u.copy.dst,
                                     (CUdeviceptr)(uintptr_t)c->u.copy.src, c->u.copy.size,
                                     q->stream);
  return r ? lk_cu_fail(q->ctx, r, "cuMemcpyAsync", "copying host-visible memory")
           : LIGHTOS_SUCCESS;
}

static bool lk_cu_pinned(const lk_hal_mem_t* m) { return m && m->host_ptr; }

/* The device work of a command (submit_lock held). */
static lightos_status_t lk_cu_enqueue(lk_cu_queue_t* q, const lk_cmd_t* c) {
  const lk_cuda_api_t* api = q->api;
  CUresult r;
  if ((c->kind == LK_CMD_WRITE || c->kind == LK_CMD_READ || c->kind == LK_CMD_COPY) &&
      (lk_cu_pinned(c->u.copy.dst_mem) || lk_cu_pinned(c->u.copy.src_mem)))
    return lk_cu_copy_any(q, c);
  switch (c->kind) {
    case LK_CMD_WRITE:
      r = api->cuMemcpyHtoDAsync_v2((CUdeviceptr)(uintptr_t)c->u.copy.dst, c->u.copy.src,
                                    c->u.copy.size, q->stream);
      return r ? lk_cu_fail(q->ctx, r, "cuMemcpyHtoDAsync", "writing a buffer") : LIGHTOS_SUCCESS;
    case LK_CMD_READ:
      r = api->cuMemcpyDtoHAsync_v2(c->u.copy.dst, (CUdeviceptr)(uintptr_t)c->u.copy.src,
                                    c->u.copy.size, q->stream);
      return r ? lk_cu_fail(q->ctx, r, "cuMemcpyDtoHAsync", "reading a buffer") : LIGHTOS_SUCCESS;
    case LK_CMD_COPY:
      r = api->cuMemcpyDtoDAsync_v2((CUdeviceptr)(uintptr_t)c->u.copy.dst,
                                    (CUdeviceptr)(uintptr_t)c->u.copy.src, c->u.copy.size,
                                    q->stream);
      return r ? lk_cu_fail(q->ctx, r, "cuMemcpyDtoDAsync", "copying between buffers")
               : LIGHTOS_SUCCESS;
    case LK_CMD_FILL:
      return lk_cu_fill(q, c);
    case LK_CMD_KERNEL:
      return lk_cu_launch(q->ctx, q->stream, c);
    case LK_CMD_MARKER:
      return LIGHTOS_SUCCESS;
    case LK_CMD_WAIT:
    case LK_CMD_HOST:
    case LK_CMD_NATIVE:
      break;
  }
  return LK_FAIL(LIGHTOS_INTERNAL, "command kind %d cannot be enqueued on a stream", (int)c->kind);
}

typedef struct lk_cu_saved_err {
  lightos_status_t status;
  char name[64];
  int64_t code;
  char msg[512];
} lk_cu_saved_err_t;

static void lk_cu_err_save(lk_cu_saved_err_t* e) {
  const lightos_error_info_t* i = lightos_last_error();
  e->status = i->status;
  lk_strlcpy(e->name, i->native_name, sizeof e->name);
  e->code = i->native_code;
  lk_strlcpy(e->msg, i->message, sizeof e->msg);
}

static void lk_cu_err_restore(const lk_cu_saved_err_t* e) {
  if (e->status) LK_FAIL_NATIVE(e->status, "cuda", e->name, e->code, "%s", e->msg);
}

static void lk_cu_note_stock(lk_cu_queue_t* q);

/* Whether submitting c needs the queue's context current on this thread:
 * not for a launch of a library kernel without an event (it launches in
 * the stream's context; a marker it is due makes the context current
 * itself, lk_cu_finish_entry). */
static bool lk_cu_needs_ctx(const lk_cmd_t* c) {
  return c->kind != LK_CMD_KERNEL || c->event ||
         !((const lk_cu_kernel_t*)c->u.launch.hal_kernel)->ctx_free;
}

/* Records the markers an entry needs and appends it (submit_lock held).
 * When the list cannot grow, the stream is drained and the entry
 * completed here, still in order. */
static void lk_cu_finish_entry(lk_cu_queue_t* q, lk_cu_entry_t* e, bool device_work) {
  const lk_cuda_api_t* api = q->api;
  bool has_event = e->cmd && e->cmd->event;
  bool timed = q->profiling && has_event;
  if (device_work) q->since_mark++;
  bool want = has_event || q->since_mark >= q->batch;
  e->done_timed = timed;
  /* Events are made and recorded in the queue's context, which a submitter
   * made current only where its command needed it (a launch that did not,
   * or a marker for the stock alone, may come from a thread with another). */
  if (want && (!e->cmd || !lk_cu_needs_ctx(e->cmd)) && lk_cu_make_current(q->ctx)) want = false;
  if (want) {
    pthread_mutex_lock(&q->lock);
    e->done = lk_cu_ev_get(q, timed ? &q->timed : &q->marks);
    pthread_mutex_unlock(&q->lock);
  }
  if (e->done) {
    if (api->cuEventRecord(e->done, q->stream) == CUDA_SUCCESS) {
      q->since_mark = 0;
      /* The stock of references goes with the marker: it is released once
       * the stream has passed every launch that used it. */
      if (lk_ref_cache_any(&q->refs) && (e->stock = malloc(sizeof *e->stock)))
        lk_cu_take_stock(q, e->stock);
    } else {
      pthread_mutex_lock(&q->lock);
      lk_cu_ev_put(q, timed ? &q->timed : &q->marks, e->done);
      pthread_mutex_unlock(&q->lock);
      e->done = NULL;
    }
  }
  if (e->start && !e->done) {
    pthread_mutex_lock(&q->lock);
    lk_cu_ev_put(q, &q->timed, e->start);
    pthread_mutex_unlock(&q->lock);
    e->start = NULL;
  }
  if (!e->done && !e->status && !e->host_only && e->cmd && e->cmd->refs_stock &&
      !e->cmd->event) {
    /* A launch on the stock that nobody waits for needs no entry (the next
     * marker covers its references): its command block goes now, on this
     * thread, and is reused while still in this core's cache. */
    lk_cmd_complete(e->cmd, LIGHTOS_SUCCESS, 0, 0);
    return;
  }
  if (lk_cu_push(q, e) != 0) {
    /* Out of host memory for the pending list: finish everything
     * synchronously (keeping the calling thread's error record). */
    lk_cu_saved_err_t saved;
    lk_cu_err_save(&saved);
    pthread_mutex_lock(&q->lock);
    while (q->completing) pthread_cond_wait(&q->done_cv, &q->lock);
    q->completing = true;
    size_t n = lk_cu_count(q);
    pthread_mutex_unlock(&q->lock);
    lk_cu_sync_complete(q, n, false);
    pthread_mutex_lock(&q->lock);
    q->completing = false;
    pthread_cond_broadcast(&q->done_cv);
    pthread_mutex_unlock(&q->lock);
    lightos_status_t s = e->status;
    if (s) LK_FAIL_NATIVE(s, "cuda", "", 0, "%s", e->msg ? e->msg : "");
    pthread_mutex_lock(&q->lock);
    lk_cu_ev_put(q, timed ? &q->timed : &q->marks, e->done);
    lk_cu_ev_put(q, &q->timed, e->start);
    pthread_mutex_unlock(&q->lock);
    if (e->cmd) lk_cmd_complete(e->cmd, s, 0, 0);
    free(e->msg);
    e->msg = NULL;
    if (e->stock) { /* back to the queue, for the next marker */
      q->refs = *e->stock;
      free(e->stock);
      e->stock = NULL;
      lk_cu_note_stock(q);
    }
    lk_cu_err_restore(&saved);
  }
}

static void lk_cu_set_failure(lk_cu_entry_t* e, lightos_status_t s) {
  e->status = s;
  e->msg = strdup(lightos_last_error()->message);
}

/* The prior failure of the queue as an ABORTED error, or SUCCESS. */
static lightos_status_t lk_cu_prior(lk_cu_queue_t* q) {
  if (!atomic_load_explicit(&q->error, memory_order_acquire)) return LIGHTOS_SUCCESS;
  char msg[512];
  pthread_mutex_lock(&q->lock);
  lk_strlcpy(msg, q->error_msg, sizeof msg);
  pthread_mutex_unlock(&q->lock);
  return LK_FAIL_NATIVE(LIGHTOS_ABORTED, "cuda", "", 0,
                        "skipped: an earlier command on this queue failed (%s)", msg);
}

static bool lk_cu_host_kind(const lk_cmd_t* c) {
  return c->kind == LK_CMD_WAIT || c->kind == LK_CMD_HOST ||
         (c->kind == LK_CMD_COPY && c->u.copy.cross_context);
}

/* Runs a command done on the host (on the queue's host thread, which owns
 * the stream while the queue is gated) and records its entry. */
static void lk_cu_run_host(lk_cu_queue_t* q, lk_cmd_t* c) {
  lk_cu_entry_t e = {.cmd = c, .host_only = true};
  lightos_status_t s = lk_cu_make_current(q->ctx);
  if (!s) s = lk_cu_prior(q);
  if (!s && !(s = lk_cu_check_lost(q->ctx))) {
    if (c->kind == LK_CMD_WAIT) {
      /* Later work cannot start before the event completes; a failed
       * event aborts what follows. */
      if (lk_event_wait_internal(c->wait_event)) {
        s = LK_FAIL_NATIVE(LIGHTOS_ABORTED, "cuda", "", 0, "waited-on event failed: %s",
                           lightos_last_error()->message);
        lk_cu_record_error(q, s, lightos_last_error()->message);
      }
    } else {
      /* In queue order: the stream's earlier work first. */
      CUresult r = q->api->cuStreamSynchronize(q->stream);
      if (r) {
        s = lk_cu_fail(q->ctx, r, "cuStreamSynchronize", "before host work");
        lk_cu_record_error(q, s, lightos_last_error()->message);
      } else if (c->kind == LK_CMD_HOST) {
        s = c->u.host.fn(c->u.host.arg);
        if (s) lk_cu_record_error(q, s, lightos_last_error()->message);
      } else {
        memcpy(c->u.copy.dst, c->u.copy.src, c->u.copy.size);
      }
    }
  }
  if (s) lk_cu_set_failure(&e, s);
  pthread_mutex_lock(&q->submit_lock);
  lk_cu_finish_entry(q, &e, false);
  pthread_mutex_unlock(&q->submit_lock);
}

/* Enqueues a device command (the caller owns the stream: it holds
 * submit_lock).  s: a failure found before (the context). */
static lightos_status_t lk_cu_dispatch(lk_cu_queue_t* q, lk_cmd_t* c, lightos_status_t s) {
  lk_cu_entry_t e = {.cmd = c, .host_only = true};
  bool skipped = false, device_work = false;
  if (!s) s = lk_cu_check_lost(q->ctx);
  if (!s && (s = lk_cu_prior(q))) skipped = true;
  if (!s) {
    if (q->profiling && c->event) {
      pthread_mutex_lock(&q->lock);
      e.start = lk_cu_ev_get(q, &q->timed);
      pthread_mutex_unlock(&q->lock);
      if (e.start && q->api->cuEventRecord(e.start, q->stream) != CUDA_SUCCESS) {
        pthread_mutex_lock(&q->lock);
        lk_cu_ev_put(q, &q->timed, e.start);
        pthread_mutex_unlock(&q->lock);
        e.start = NULL;
      }
    }
    s = lk_cu_enqueue(q, c);
    /* A failure may come after part of the work was enqueued (a later
     * chunk of a launch or a fill): such a command still completes only
     * once the stream has passed it. */
    device_work = c->kind != LK_CMD_MARKER;
    e.host_only = !device_work;
  }
  if (s) lk_cu_set_failure(&e, s);
  lk_cu_finish_entry(q, &e, device_work);
  return skipped ? LIGHTOS_SUCCESS : s;
}

/* Issues fn(stream, arg)'s work and records it as command c's entry (c may
 * be NULL; the caller owns the stream: it holds submit_lock).  s: a
 * failure found before. */
static lightos_status_t lk_cu_issue(lk_cu_queue_t* q, lk_cmd_t* c, lightos_status_t s,
                                    lk_cu_issue_fn fn, void* arg) {
  lk_cu_entry_t e = {.cmd = c, .host_only = true};
  if (!s) s = lk_cu_check_lost(q->ctx);
  if (!s) {
    e.host_only = false;
    s = fn(q->stream, arg);
  }
  if (s) lk_cu_set_failure(&e, s);
  lk_cu_finish_entry(q, &e, !e.host_only); /* c may be gone from here on */
  return s;
}

/* The queue's host thread: runs the deferred commands in order while the
 * queue is gated, then opens the gate. */
static void* lk_cu_gate_main(void* arg) {
  lk_cu_queue_t* q = arg;
  (void)lk_cu_make_current(q->ctx);
  pthread_mutex_lock(&q->submit_lock);
  for (;;) {
    while (!q->dhead && !q->gstop) pthread_cond_wait(&q->gcv, &q->submit_lock);
    if (!q->dhead) break;
    lk_cmd_t* c = q->dhead;
    q->dhead = c->next;
    if (!q->dhead) q->dtail = NULL;
    c->next = NULL;
    if (lk_cu_host_kind(c)) {
      pthread_mutex_unlock(&q->submit_lock);
      lk_cu_run_host(q, c);
      pthread_mutex_lock(&q->submit_lock);
    } else if (c->kind == LK_CMD_NATIVE) {
      void (*done)(void*, lightos_status_t) = c->u.native.done;
      void* job = c->u.native.arg;
      lightos_status_t s = lk_cu_issue(q, c, lk_cu_make_current(q->ctx), c->u.native.fn, job);
      if (s) lk_cu_record_error(q, s, lightos_last_error()->message);
      pthread_mutex_unlock(&q->submit_lock);
      done(job, s);
      pthread_mutex_lock(&q->submit_lock);
    } else {
      /* Its failure was not returned to the submitter: it goes to the
       * command's event and the queue's error. */
      if (lk_cu_dispatch(q, c, lk_cu_make_current(q->ctx)))
        lk_cu_record_error(q, lightos_last_error()->status, lightos_last_error()->message);
    }
    if (!q->dhead) {
      q->gated = false;
      pthread_cond_broadcast(&q->gcv);
    }
  }
  pthread_mutex_unlock(&q->submit_lock);
  return NULL;
}

/* The calling thread is the queue's host thread (a host function calling
 * back into its own queue must not wait for itself). */
static bool lk_cu_on_gate(lk_cu_queue_t* q) {
  return q->gate_started && pthread_equal(q->gate, pthread_self());
}

/* The calling thread's commands wait behind host work: the queue is gated
 * and this is not its host thread (submit_lock held). */
static bool lk_cu_behind_gate(lk_cu_queue_t* q) { return q->gated && !lk_cu_on_gate(q); }

/* Appends a command to the deferred list for the queue's host thread, which
 * runs them in order (submit_lock held; the thread exists). */
static void lk_cu_defer(lk_cu_queue_t* q, lk_cmd_t* c) {
  q->gated = true;
  c->next = NULL;
  if (q->dtail) q->dtail->next = c;
  else q->dhead = c;
  q->dtail = c;
  pthread_cond_broadcast(&q->gcv);
}

/* The stock of references stopped being empty (submit_lock held): the
 * completer covers it with a marker if nothing else does, and is woken
 * from its deep sleep for that (a store and a look at `deep`, both
 * sequentially consistent, against its store of `deep` and look at
 * stock_pending). */
static void lk_cu_note_stock(lk_cu_queue_t* q) {
  atomic_store_explicit(&q->stock_pending, true, memory_order_seq_cst);
  if (atomic_load_explicit(&q->deep, memory_order_seq_cst)) lk_cu_wake(q);
}

/* Gives launch c all its references from the queue's stock (submit_lock
 * held); false when they do not fit.  The completer hears when the stock
 * stops being empty. */
static bool lk_cu_use_stock(lk_cu_queue_t* q, lk_cmd_t* c) {
  bool was_empty = !lk_ref_cache_any(&q->refs);
  if (!lk_cmd_take_stock(c, &q->refs)) return false;
  if (was_empty) lk_cu_note_stock(q);
  return true;
}

/* Submits c with submit_lock held; returns with it released.  s: the
 * context's status. */
static lightos_status_t lk_cu_submit_locked(lk_cu_queue_t* q, lk_cmd_t* c, lightos_status_t s) {
  if (lk_cu_on_gate(q)) {
    /* A host function submitting to its own queue: its commands go
     * before the deferred ones, at once (the host thread owns the
     * stream). */
    if (lk_cu_host_kind(c)) {
      pthread_mutex_unlock(&q->submit_lock);
      lk_cu_run_host(q, c);
      return LIGHTOS_SUCCESS;
    }
    lightos_status_t r = lk_cu_dispatch(q, c, s);
    pthread_mutex_unlock(&q->submit_lock);
    return r;
  }
  if (q->gated || lk_cu_host_kind(c)) {
    if (!q->gate_started && !q->gstop) {
      q->gate_started = pthread_create(&q->gate, NULL, lk_cu_gate_main, q) == 0;
      if (!q->gate_started) {
        /* No host thread: the host work runs here (blocking). */
        pthread_mutex_unlock(&q->submit_lock);
        if (lk_cu_host_kind(c)) {
          lk_cu_run_host(q, c);
          return LIGHTOS_SUCCESS;
        }
        pthread_mutex_lock(&q->submit_lock);
        lightos_status_t r = lk_cu_dispatch(q, c, s);
        pthread_mutex_unlock(&q->submit_lock);
        return r;
      }
    }
    /* Asynchronous from here: a failure reaches the event and finish. */
    lk_cu_defer(q, c);
    pthread_mutex_unlock(&q->submit_lock);
    return LIGHTOS_SUCCESS;
  }
  lightos_status_t r = lk_cu_dispatch(q, c, s);
  pthread_mutex_unlock(&q->submit_lock);
  return r;
}

static lightos_status_t lk_cu_submit(lk_hal_queue_t* hq, lk_cmd_t* c) {
  lk_cu_queue_t* q = (lk_cu_queue_t*)hq;
  lightos_status_t s = lk_cu_needs_ctx(c) ? lk_cu_make_current(q->ctx) : LIGHTOS_SUCCESS;
  pthread_mutex_lock(&q->submit_lock);
  /* A launch issued now uses the queue's stock of references (the next
   * marker covers it); one that waits in the deferred list takes its own,
   * as a marker may be recorded before it is issued. */
  if (c->refs_pending && (lk_cu_behind_gate(q) || !lk_cu_use_stock(q, c))) lk_cmd_take_refs(c);
  return lk_cu_submit_locked(q, c, s);
}

/* vtbl launch_now: a launch nobody waits for, issued on the calling thread
 * with no command block and no entry — the stock of references covers it
 * and goes with the next marker, recorded here every q->batch launches.
 * Not while commands wait in the deferred list (order) or a failure is to
 * be reported (lk_cu_prior), nor when the stock has no room: the caller
 * submits a block then. */
static lightos_status_t lk_cu_launch_now(lk_hal_queue_t* hq, lk_cmd_t* c, bool* issued) {
  lk_cu_queue_t* q = (lk_cu_queue_t*)hq;
  const lk_cu_kernel_t* k = c->u.launch.hal_kernel;
  *issued = false;
  if (c->event) return LIGHTOS_SUCCESS;
  pthread_mutex_lock(&q->submit_lock);
  if (lk_cu_behind_gate(q) || atomic_load_explicit(&q->error, memory_order_acquire) ||
      !lk_cu_use_stock(q, c)) {
    pthread_mutex_unlock(&q->submit_lock);
    return LIGHTOS_SUCCESS;
  }
  *issued = true;
  lightos_status_t s = lk_cu_check_lost(q->ctx);
  if (!s && !k->ctx_free) s = lk_cu_make_current(q->ctx);
  if (!s) s = lk_cu_launch(q->ctx, q->stream, c);
  /* After a failure the next launch records the marker (the caller's error
   * record stays the launch's). */
  if (!s && ++q->since_mark >= q->batch) lk_cu_mark_stock(q);
  pthread_mutex_unlock(&q->submit_lock);
  return s;
}

/* Hands the stock of references to a marker recorded now (submit_lock
 * held): everything issued so far is covered. */
static void lk_cu_mark_stock(lk_cu_queue_t* q) {
  if (!lk_ref_cache_any(&q->refs)) return;
  lk_cu_entry_t e = {.cmd = NULL};
  q->since_mark = q->batch; /* a marker now */
  lk_cu_finish_entry(q, &e, false);
}

/* Waits until the queue's host thread has dispatched everything, and
 * takes the stock of references out: it covers launches issued so far,
 * which the caller's stream synchronisation then waits for. */
static void lk_cu_wait_gate(lk_cu_queue_t* q, lk_ref_cache_t* stock) {
  pthread_mutex_lock(&q->submit_lock);
  while (lk_cu_behind_gate(q)) pthread_cond_wait(&q->gcv, &q->submit_lock);
  lk_cu_take_stock(q, stock);
  pthread_mutex_unlock(&q->submit_lock);
}

/* Completes everything submitted so far on the calling thread, then
 * releases the stock taken out by lk_cu_wait_gate (after the stream
 * synchronisation: its launches have run). */
static void lk_cu_drain_all(lk_cu_queue_t* q, lk_ref_cache_t* stock) {
  pthread_mutex_lock(&q->lock);
  while (q->completing) pthread_cond_wait(&q->done_cv, &q->lock);
  size_t n = lk_cu_count(q);
  q->completing = true;
  pthread_mutex_unlock(&q->lock);
  lk_cu_sync_complete(q, n, lk_ref_cache_any(stock));
  pthread_mutex_lock(&q->lock);
  q->completing = false;
  pthread_cond_broadcast(&q->done_cv);
  pthread_mutex_unlock(&q->lock);
  lk_ref_cache_release(stock);
}

static lightos_status_t lk_cu_finish(lk_hal_queue_t* hq) {
  lk_cu_queue_t* q = (lk_cu_queue_t*)hq;
  lk_ref_cache_t stock;
  lk_cu_wait_gate(q, &stock);
  lk_cu_drain_all(q, &stock);
  pthread_mutex_lock(&q->lock);
  lightos_status_t s = (lightos_status_t)atomic_load(&q->error);
  char msg[512], name[64];
  lk_strlcpy(msg, q->error_msg, sizeof msg);
  lk_strlcpy(name, q->error_name, sizeof name);
  int64_t code = q->error_code;
  atomic_store(&q->error, 0);
  q->error_msg[0] = '\0';
  pthread_mutex_unlock(&q->lock);
  if (s) return LK_FAIL_NATIVE(s, "cuda", name, code, "queued command failed: %s", msg);
  return LIGHTOS_SUCCESS;
}

static void lk_cu_drain(lk_hal_queue_t* hq) {
  lk_cu_queue_t* q = (lk_cu_queue_t*)hq;
  lk_ref_cache_t stock;
  lk_cu_wait_gate(q, &stock);
  lk_cu_drain_all(q, &stock);
}

static void lk_cu_queue_destroy(lk_hal_queue_t* hq) {
  lk_cu_queue_t* q = (lk_cu_queue_t*)hq;
  pthread_mutex_lock(&q->submit_lock);
  q->gstop = true;
  pthread_cond_broadcast(&q->gcv);
  bool gate = q->gate_started;
  pthread_mutex_unlock(&q->submit_lock);
  if (gate) pthread_join(q->gate, NULL);
  lk_ref_cache_t stock;
  lk_cu_wait_gate(q, &stock);
  lk_cu_drain_all(q, &stock);
  pthread_mutex_lock(&q->lock);
  q->stop = true;
  pthread_cond_broadcast(&q->cv);
  pthread_cond_broadcast(&q->done_cv);
  pthread_mutex_unlock(&q->lock);
  pthread_join(q->completer, NULL);
  (void)lk_cu_make_current(q->ctx);
  lk_cuda_blas_queue_destroyed(hq); /* its cuBLAS handle, if it had one */
  lk_cu_pool_free(q, &q->marks);
  lk_cu_pool_free(q, &q->timed);
  if (q->tref) q->api->cuEventDestroy_v2(q->tref);
  q->api->cuStreamDestroy_v2(q->stream);
  while (q->cseg) { /* everything was completed */
    lk_cu_seg_t* next = atomic_load(&q->cseg->next);
    free(q->cseg);
    q->cseg = next;
  }
  free(atomic_load(&q->spare));
  pthread_cond_destroy(&q->cv);
  pthread_cond_destroy(&q->done_cv);
  pthread_cond_destroy(&q->gcv);
  pthread_mutex_destroy(&q->lock);
  pthread_mutex_destroy(&q->submit_lock);
  free(q);
}

static const lk_hal_queue_vtbl_t lk_cu_queue_vtbl = {
    .destroy = lk_cu_queue_destroy,
    .submit = lk_cu_submit,
    .finish = lk_cu_finish,
    .drain = lk_cu_drain,
    .native_gemm = lk_cuda_native_gemm,
    .takes_refs = true,
    .launch_now = lk_cu_launch_now,
};

/* The profiling time reference: an event recorded on the (empty) stream,
 * its host time the midpoint of the record and the wait. */
static lightos_status_t lk_cu_time_anchor(lk_cu_queue_t* q) {
  const lk_cuda_api_t* api = q->api;
  CUresult r = api->cuEventCreate(&q->tref, CU_EVENT_DEFAULT);
  if (r) {
    q->tref = NULL;
    return lk_cu_fail(q->ctx, r, "cuEventCreate", "the profiling time reference");
  }
  uint64_t a = lk_now_ns();
  r = api->cuEventRecord(q->tref, q->stream);
  if (!r) r = api->cuEventSynchronize(q->tref);
  uint64_t b = lk_now_ns();
  if (r) return lk_cu_fail(q->ctx, r, "cuEventRecord", "the profiling time reference");
  q->tref_ns = a + (b - a) / 2;
  return LIGHTOS_SUCCESS;
}

lightos_status_t lk_cu_queue_create(lk_hal_context_t* hc, uint32_t flags, lk_hal_queue_t** out) {
  lk_cu_context_t* c = (lk_cu_context_t*)hc;
  lightos_status_t s = lk_cu_check_lost(c);
  if (!s) s = lk_cu_make_current(c);
  if (s) return s;
  lk_cu_queue_t* q = aligned_alloc(alignof(lk_cu_queue_t), sizeof *q); /* cache lines */
  if (q) memset(q, 0, sizeof *q);
  lk_cu_seg_t* seg = calloc(1, sizeof *seg);
  if (!q || !seg) {
    free(q);
    free(seg);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a queue");
  }
  q->base.vtbl = &lk_cu_queue_vtbl;
  q->base.context = hc;
  q->base.flags = flags;
  q->ctx = c;
  q->api = c->api;
  q->profiling = (flags & LIGHTOS_QUEUE_PROFILING) != 0;
  q->pseg = q->cseg = seg;
  q->marks.flags = CU_EVENT_DISABLE_TIMING | CU_EVENT_BLOCKING_SYNC;
  q->timed.flags = CU_EVENT_BLOCKING_SYNC;
  long spin_us = lk_env_long("LIGHTOS_CUDA_SPIN_US", 100);
  long batch = lk_env_long("LIGHTOS_CUDA_BATCH", LK_CU_BATCH);
  q->batch = batch >= 1 && batch <= 65536 ? (unsigned)batch : LK_CU_BATCH;
  q->spin_ns = spin_us > 0 ? (uint64_t)spin_us * 1000u : 0;
  CUresult r = c->api->cuStreamCreate(&q->stream, CU_STREAM_NON_BLOCKING);
  if (r) {
    free(seg);
    free(q);
    return lk_cu_fail(c, r, "cuStreamCreate", hc->device->info.uri);
  }
  if (q->profiling && (s = lk_cu_time_anchor(q))) {
    if (q->tref) c->api->cuEventDestroy_v2(q->tref);
    c->api->cuStreamDestroy_v2(q->stream);
    free(seg);
    free(q);
    return s;
  }
  pthread_mutex_init(&q->submit_lock, NULL);
  pthread_mutex_init(&q->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&q->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_cond_init(&q->done_cv, NULL);
  pthread_cond_init(&q->gcv, NULL);
  if (pthread_create(&q->completer, NULL, lk_cu_completer, q) != 0) {
    if (q->tref) c->api->cuEventDestroy_v2(q->tref);
    c->api->cuStreamDestroy_v2(q->stream);
    pthread_cond_destroy(&q->cv);
    pthread_cond_destroy(&q->done_cv);
    pthread_cond_destroy(&q->gcv);
    pthread_mutex_destroy(&q->lock);
    pthread_mutex_destroy(&q->submit_lock);
    free(seg);
    free(q);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "could not start a queue thread");
  }
  *out = &q->base;
  return LIGHTOS_SUCCESS;
}

/* ---- for other modules ------------------------------------------------------------ */

lightos_status_t lk_cu_queue_enqueue_native(lk_hal_queue_t* hq, lk_cmd_t* cmd,
                                            lk_cu_issue_fn enqueue, void* arg) {
  lk_cu_queue_t* q = (lk_cu_queue_t*)hq;
  lightos_status_t s = lk_cu_make_current(q->ctx);
  pthread_mutex_lock(&q->submit_lock);
  /* After the deferred commands (waits here while host work runs). */
  while (lk_cu_behind_gate(q)) pthread_cond_wait(&q->gcv, &q->submit_lock);
  s = lk_cu_issue(q, cmd, s, enqueue, arg);
  pthread_mutex_unlock(&q->submit_lock);
  return s;
}

lightos_status_t lk_cu_queue_submit_native(lk_hal_queue_t* hq, lk_cmd_t* cmd) {
  lk_cu_queue_t* q = (lk_cu_queue_t*)hq;
  lightos_status_t s = lk_cu_make_current(q->ctx);
  pthread_mutex_lock(&q->submit_lock);
  if (lk_cu_behind_gate(q)) {
    /* Behind host work: the queue's host thread issues it in order. */
    lk_cu_defer(q, cmd);
    pthread_mutex_unlock(&q->submit_lock);
    return LIGHTOS_SUCCESS;
  }
  void (*done)(void*, lightos_status_t) = cmd->u.native.done;
  void* arg = cmd->u.native.arg;
  s = lk_cu_issue(q, cmd, s, cmd->u.native.fn, arg);
  pthread_mutex_unlock(&q->submit_lock);
  lk_cu_saved_err_t saved;
  lk_cu_err_save(&saved);
  done(arg, s);
  lk_cu_err_restore(&saved);
  return s;
}

typedef struct lk_cu_peer_copy {
  lk_cu_context_t *dst_ctx, *src_ctx;
  CUdeviceptr dst, src;
  size_t size;
} lk_cu_peer_copy_t;

static lightos_status_t lk_cu_peer_copy_enqueue(void* stream, void* arg) {
  lk_cu_peer_copy_t* p = arg;
  CUresult r = p->dst_ctx->api->cuMemcpyPeerAsync(p->dst, p->dst_ctx->ctx, p->src, p->src_ctx->ctx,
                                                  p->size, stream);
  return r ? lk_cu_fail(p->dst_ctx, r, "cuMemcpyPeerAsync", "") : LIGHTOS_SUCCESS;
}

lightos_status_t lk_cuda_copy_peer(lk_hal_queue_t* queue, lk_hal_context_t* dst_ctx,
                                   const lk_hal_mem_t* dst, size_t dst_off,
                                   lk_hal_context_t* src_ctx, const lk_hal_mem_t* src,
                                   size_t src_off, size_t size) {
  if (!queue || !lk_cuda_is_context(queue->context) || !lk_cuda_is_context(dst_ctx) ||
      !lk_cuda_is_context(src_ctx) || !dst || !src)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "peer copy: a queue, memory or context is not CUDA's");
  lk_cu_peer_copy_t p = {(lk_cu_context_t*)dst_ctx, (lk_cu_context_t*)src_ctx,
                         (CUdeviceptr)(uintptr_t)dst->device_ptr + dst_off,
                         (CUdeviceptr)(uintptr_t)src->device_ptr + src_off, size};
  return lk_cu_queue_enqueue_native(queue, NULL, lk_cu_peer_copy_enqueue, &p);
}
