/* CPU queues: an in-order command list run by a worker thread.  finish()
 * and the blocking calls run pending commands on the calling thread when
 * the worker has not taken them yet, so a short enqueue+finish round trip
 * costs no thread hand-off. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/util.h"
#include "hal/cpu/cpu_backend.h"

typedef struct lk_cpu_queue {
  lk_hal_queue_t base;
  lk_cpu_device_t* device;
  pthread_mutex_t lock;
  pthread_cond_t work_cv;   /* the worker waits for commands    */
  pthread_cond_t idle_cv;   /* finishers wait for the queue idle */
  lk_cmd_t* head;
  lk_cmd_t* tail;
  bool running;             /* a thread is executing commands    */
  bool stop;
  bool worker_sleeping;
  pthread_t worker;
  /* First failure since the last finish; later commands are skipped. */
  lightos_status_t error;
  char error_msg[512];
  char error_backend[16];
} lk_cpu_queue_t;

static lightos_status_t lk_cpu_exec(lk_cpu_queue_t* q, lk_cmd_t* c) {
  switch (c->kind) {
    case LK_CMD_WRITE:
    case LK_CMD_READ:
    case LK_CMD_COPY:
      memcpy(c->u.copy.dst, c->u.copy.src, c->u.copy.size);
      return LIGHTOS_SUCCESS;
    case LK_CMD_FILL: {
      size_t ps = c->u.fill.pattern_size;
      unsigned char* d = c->u.fill.dst;
      if (ps == 1) {
        memset(d, c->u.fill.pattern[0], c->u.fill.size);
        return LIGHTOS_SUCCESS;
      }
      /* Write one pattern, then double the filled prefix. */
      size_t done = ps;
      memcpy(d, c->u.fill.pattern, ps);
      while (done < c->u.fill.size) {
        size_t n = done < c->u.fill.size - done ? done : c->u.fill.size - done;
        memcpy(d + done, d, n);
        done += n;
      }
      return LIGHTOS_SUCCESS;
    }
    case LK_CMD_KERNEL:
      return lk_cpu_run_kernel(q->device, c);
    case LK_CMD_MARKER:
      return LIGHTOS_SUCCESS;
    case LK_CMD_HOST:
      return c->u.host.fn(c->u.host.arg);
    case LK_CMD_NATIVE:
      break;
    case LK_CMD_WAIT: {
      lightos_status_t s = lk_event_wait_internal(c->wait_event);
      if (s)
        return LK_FAIL_NATIVE(LIGHTOS_ABORTED, "cpu", "", 0, "waited-on event failed: %s",
                              lightos_last_error()->message);
      return LIGHTOS_SUCCESS;
    }
  }
  return LK_FAIL(LIGHTOS_INTERNAL, "unknown command kind %d", (int)c->kind);
}

/* Runs commands until the list is empty.  Called with the lock held and
 * `running` set by the caller; returns with the lock held. */
static void lk_cpu_run_pending(lk_cpu_queue_t* q) {
  while (q->head) {
    lk_cmd_t* c = q->head;
    q->head = c->next;
    if (!q->head) q->tail = NULL;
    lightos_status_t prior = q->error;
    pthread_mutex_unlock(&q->lock);
    uint64_t t0 = lk_now_ns();
    lightos_status_t s;
    if (prior)
      s = LK_FAIL_NATIVE(LIGHTOS_ABORTED, "cpu", "", 0,
                         "skipped: an earlier command on this queue failed (%s)", q->error_msg);
    else
      s = lk_cpu_exec(q, c);
    uint64_t t1 = lk_now_ns();
    if (s && !prior) {
      pthread_mutex_lock(&q->lock);
      q->error = s;
      lk_strlcpy(q->error_msg, lightos_last_error()->message, sizeof q->error_msg);
      lk_strlcpy(q->error_backend, lightos_last_error()->backend, sizeof q->error_backend);
      pthread_mutex_unlock(&q->lock);
    }
    lk_cmd_complete(c, s, t0, t1);
    pthread_mutex_lock(&q->lock);
  }
}

static void* lk_cpu_queue_worker(void* arg) {
  lk_cpu_queue_t* q = arg;
  pthread_mutex_lock(&q->lock);
  for (;;) {
    while ((!q->head || q->running) && !q->stop) {
      q->worker_sleeping = true;
      pthread_cond_wait(&q->work_cv, &q->lock);
      q->worker_sleeping = false;
    }
    if (q->stop && (!q->head || q->running)) break;
    q->running = true;
    lk_cpu_run_pending(q);
    q->running = false;
    pthread_cond_broadcast(&q->idle_cv);
  }
  pthread_mutex_unlock(&q->lock);
  return NULL;
}

static lightos_status_t lk_cpu_queue_submit(lk_hal_queue_t* hq, lk_cmd_t* c) {
  lk_cpu_queue_t* q = (lk_cpu_queue_t*)hq;
  c->next = NULL;
  pthread_mutex_lock(&q->lock);
  if (q->tail) q->tail->next = c;
  else q->head = c;
  q->tail = c;
  if (q->worker_sleeping && !q->running) pthread_cond_signal(&q->work_cv);
  pthread_mutex_unlock(&q->lock);
  return LIGHTOS_SUCCESS;
}

/* Waits until the queue is empty and idle, running commands itself when
 * nobody else is.  Called with the lock held. */
static void lk_cpu_queue_settle(lk_cpu_queue_t* q) {
  while (q->head || q->running) {
    if (!q->running) {
      q->running = true;
      lk_cpu_run_pending(q);
      q->running = false;
      pthread_cond_broadcast(&q->idle_cv);
    } else {
      pthread_cond_wait(&q->idle_cv, &q->lock);
    }
  }
}

static void lk_cpu_queue_drain(lk_hal_queue_t* hq) {
  lk_cpu_queue_t* q = (lk_cpu_queue_t*)hq;
  pthread_mutex_lock(&q->lock);
  lk_cpu_queue_settle(q);
  pthread_mutex_unlock(&q->lock);
}

static lightos_status_t lk_cpu_queue_finish(lk_hal_queue_t* hq) {
  lk_cpu_queue_t* q = (lk_cpu_queue_t*)hq;
  pthread_mutex_lock(&q->lock);
  lk_cpu_queue_settle(q);
  lightos_status_t s = q->error;
  char msg[512], backend[16];
  lk_strlcpy(msg, q->error_msg, sizeof msg);
  lk_strlcpy(backend, q->error_backend, sizeof backend);
  q->error = LIGHTOS_SUCCESS;
  q->error_msg[0] = '\0';
  pthread_mutex_unlock(&q->lock);
  if (s) return LK_FAIL_NATIVE(s, backend, "", 0, "queued command failed: %s", msg);
  return LIGHTOS_SUCCESS;
}

static void lk_cpu_queue_destroy(lk_hal_queue_t* hq) {
  lk_cpu_queue_t* q = (lk_cpu_queue_t*)hq;
  pthread_mutex_lock(&q->lock);
  q->stop = true;
  pthread_cond_broadcast(&q->work_cv);
  pthread_mutex_unlock(&q->lock);
  pthread_join(q->worker, NULL);
  pthread_cond_destroy(&q->work_cv);
  pthread_cond_destroy(&q->idle_cv);
  pthread_mutex_destroy(&q->lock);
  free(q);
}

static const lk_hal_queue_vtbl_t lk_cpu_queue_vtbl = {
    .destroy = lk_cpu_queue_destroy,
    .submit = lk_cpu_queue_submit,
    .finish = lk_cpu_queue_finish,
    .drain = lk_cpu_queue_drain,
    .native_gemm = lk_cpu_native_gemm,
};

lightos_status_t lk_cpu_queue_create(lk_hal_context_t* context, uint32_t flags,
                                     lk_hal_queue_t** out) {
  lk_cpu_queue_t* q = calloc(1, sizeof *q);
  if (!q) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a queue");
  q->base.vtbl = &lk_cpu_queue_vtbl;
  q->base.context = context;
  q->base.flags = flags;
  q->device = ((lk_cpu_context_t*)context)->device;
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->work_cv, NULL);
  pthread_cond_init(&q->idle_cv, NULL);
  if (pthread_create(&q->worker, NULL, lk_cpu_queue_worker, q) != 0) {
    pthread_cond_destroy(&q->work_cv);
    pthread_cond_destroy(&q->idle_cv);
    pthread_mutex_destroy(&q->lock);
    free(q);
    return LK_FAIL_NATIVE(LIGHTOS_OUT_OF_MEMORY, "cpu", "", 0, "could not start a queue thread");
  }
  *out = &q->base;
  return LIGHTOS_SUCCESS;
}
