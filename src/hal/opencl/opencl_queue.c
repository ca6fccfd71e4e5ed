/* OpenCL queues: commands become in-order cl_command_queue work; a
 * completion thread waits for their cl_events in order and completes the
 * LightOS commands (events, timestamps, references).  A library's work
 * (CLBlast's GEMM, lk_cl_queue_submit_native) goes through the same
 * dispatch, so it too waits its turn behind held-back commands. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/util.h"
#include "hal/opencl/opencl_backend.h"
#include "hal/opencl/opencl_blas.h"

typedef struct lk_cl_pending {
  lk_cmd_t* cmd;
  cl_event ev;          /* NULL for work done on the host at submit */
  lightos_status_t status;
  char msg[384];        /* the failure's message, when status fails */
  lk_cl_native_fn native; /* library work (lk_cl_queue_submit_native), else NULL */
  void* native_arg;       /* freed with the entry */
  struct lk_cl_pending* next;
} lk_cl_pending_t;

typedef struct lk_cl_queue {
  lk_hal_queue_t base;
  lk_cl_context_t* ctx;
  const lk_opencl_api_t* api;
  cl_command_queue q;
  pthread_mutex_t lock;
  pthread_cond_t cv;        /* new pending work, or idle */
  lk_cl_pending_t *head, *tail;
  lk_cl_pending_t *dhead, *dtail; /* held back behind a pending wait */
  bool waiting;             /* a wait on another event is pending */
  size_t in_flight;         /* submitted and not completed */
  bool stop;
  pthread_t completer;
  lightos_status_t error;   /* first failure since the last finish */
  char error_msg[512];
} lk_cl_queue_t;

static void lk_cl_record_error(struct lk_cl_queue* q, lightos_status_t s) {
  pthread_mutex_lock(&q->lock);
  if (!q->error) {
    q->error = s;
    lk_strlcpy(q->error_msg, lightos_last_error()->message, sizeof q->error_msg);
  }
  pthread_mutex_unlock(&q->lock);
}

static void* lk_cl_completer(void* arg) {
  lk_cl_queue_t* q = arg;
  pthread_mutex_lock(&q->lock);
  for (;;) {
    while (!q->head && !q->stop) pthread_cond_wait(&q->cv, &q->lock);
    if (!q->head) break;
    lk_cl_pending_t* p = q->head;
    q->head = p->next;
    if (!q->head) q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    lightos_status_t s = p->status;
    pthread_mutex_lock(&q->lock);
    lightos_status_t earlier = q->error;
    char earlier_msg[256];
    lk_strlcpy(earlier_msg, q->error_msg, sizeof earlier_msg);
    pthread_mutex_unlock(&q->lock);
    uint64_t t0 = 0, t1 = 0;
    if (p->ev && earlier && s == LIGHTOS_SUCCESS) {
      /* In order after a failure: reported as skipped (ABORTED). */
      q->api->clWaitForEvents(1, &p->ev);
      q->api->clReleaseEvent(p->ev);
      s = LK_FAIL_NATIVE(LIGHTOS_ABORTED, "opencl", "", 0,
                         "skipped: an earlier command on this queue failed (%s)", earlier_msg);
    } else if (p->ev) {
      cl_int err = q->api->clWaitForEvents(1, &p->ev);
      cl_int exec = CL_COMPLETE;
      q->api->clGetEventInfo(p->ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof exec, &exec, NULL);
      if ((err != CL_SUCCESS || exec < 0) && p->cmd->kind == LK_CMD_WAIT) {
        s = LK_FAIL_NATIVE(LIGHTOS_ABORTED, "opencl", "", 0, "waited-on event failed");
        lk_cl_record_error(q, s);
      } else if (err != CL_SUCCESS || exec < 0) {
        s = lk_cl_fail(exec < 0 ? exec : err, "queued OpenCL command", q->base.context->device->info.uri);
        lk_cl_record_error(q, s);
      } else if (q->base.flags & LIGHTOS_QUEUE_PROFILING) {
        cl_ulong a = 0, b = 0;
        q->api->clGetEventProfilingInfo(p->ev, CL_PROFILING_COMMAND_START, sizeof a, &a, NULL);
        q->api->clGetEventProfilingInfo(p->ev, CL_PROFILING_COMMAND_END, sizeof b, &b, NULL);
        t0 = a;
        t1 = b;
      }
      q->api->clReleaseEvent(p->ev);
    } else if (s) {
      LK_FAIL_NATIVE(s, "opencl", "", 0, "%s", p->msg);
    } else {
      t0 = t1 = lk_now_ns();
    }
    lk_cmd_complete(p->cmd, s, t0, t1);
    free(p->native_arg);
    free(p);
    pthread_mutex_lock(&q->lock);
    q->in_flight--;
    pthread_cond_broadcast(&q->cv);
  }
  pthread_mutex_unlock(&q->lock);
  return NULL;
}

/* Enqueues the OpenCL work of a command; *ev is its event (or NULL when
 * the command was done on the host). */
static lightos_status_t lk_cl_enqueue(lk_cl_queue_t* q, lk_cmd_t* c, cl_event* ev) {
  const lk_opencl_api_t* api = q->api;
  cl_int err = CL_SUCCESS;
  *ev = NULL;
  switch (c->kind) {
    case LK_CMD_WRITE:
      err = api->clEnqueueWriteBuffer(q->q, (cl_mem)c->u.copy.dst_mem->native, CL_FALSE,
                                      c->u.copy.dst_off, c->u.copy.size, c->u.copy.src, 0, NULL, ev);
      return err ? lk_cl_fail(err, "clEnqueueWriteBuffer", "") : LIGHTOS_SUCCESS;
    case LK_CMD_READ:
      err = api->clEnqueueReadBuffer(q->q, (cl_mem)c->u.copy.src_mem->native, CL_FALSE,
                                     c->u.copy.src_off, c->u.copy.size, c->u.copy.dst, 0, NULL, ev);
      return err ? lk_cl_fail(err, "clEnqueueReadBuffer", "") : LIGHTOS_SUCCESS;
    case LK_CMD_COPY:
      if (c->u.copy.cross_context) {
        /* Host-addressable buffers of two contexts: copy on the host once
         * the queue's earlier work is done. */
        err = api->clFinish(q->q);
        if (err) return lk_cl_fail(err, "clFinish", "");
        memcpy(c->u.copy.dst, c->u.copy.src, c->u.copy.size);
        return LIGHTOS_SUCCESS;
      }
      err = api->clEnqueueCopyBuffer(q->q, (cl_mem)c->u.copy.src_mem->native,
                                     (cl_mem)c->u.copy.dst_mem->native, c->u.copy.src_off,
                                     c->u.copy.dst_off, c->u.copy.size, 0, NULL, ev);
      return err ? lk_cl_fail(err, "clEnqueueCopyBuffer", "") : LIGHTOS_SUCCESS;
    case LK_CMD_FILL:
      err = api->clEnqueueFillBuffer(q->q, (cl_mem)c->u.fill.dst_mem->native, c->u.fill.pattern,
                                     c->u.fill.pattern_size, c->u.fill.dst_off, c->u.fill.size, 0,
                                     NULL, ev);
      return err ? lk_cl_fail(err, "clEnqueueFillBuffer", "") : LIGHTOS_SUCCESS;
    case LK_CMD_KERNEL:
      return lk_cl_enqueue_launch(q->ctx, q->q, c, ev);
    case LK_CMD_MARKER:
      err = api->clEnqueueMarkerWithWaitList(q->q, 0, NULL, ev);
      return err ? lk_cl_fail(err, "clEnqueueMarkerWithWaitList", "") : LIGHTOS_SUCCESS;
    case LK_CMD_NATIVE:
      break;
    case LK_CMD_HOST: {
      /* Host work in queue order: wait for the queue's earlier work. */
      err = api->clFinish(q->q);
      if (err) return lk_cl_fail(err, "clFinish", "");
      return c->u.host.fn(c->u.host.arg);
    }
    case LK_CMD_WAIT:
      break; /* handled by lk_cl_dispatch */
  }
  return LK_FAIL(LIGHTOS_INTERNAL, "unknown command kind %d", (int)c->kind);
}

/* Appends a pending entry for the completion thread.  Lock held. */
static void lk_cl_push(lk_cl_queue_t* q, lk_cl_pending_t* p) {
  p->next = NULL;
  if (q->tail) q->tail->next = p;
  else q->head = p;
  q->tail = p;
  pthread_cond_broadcast(&q->cv);
}

static void lk_cl_fail_entry(lk_cl_pending_t* p, lightos_status_t s) {
  p->status = s;
  lk_strlcpy(p->msg, lightos_last_error()->message, sizeof p->msg);
}

static lightos_status_t lk_cl_dispatch(lk_cl_queue_t* q, lk_cl_pending_t* p);

/* A wait on a LightOS event of any backend does not block the host: a
 * helper thread waits, and until it is done the queue holds back the
 * commands that follow (they are not sent to the device), so they start
 * only after the event, or are skipped (LIGHTOS_ABORTED) when it failed. */
typedef struct lk_cl_waiter {
  lk_cl_queue_t* q;
  lk_cl_pending_t* p; /* the WAIT command's entry */
} lk_cl_waiter_t;

/* The awaited event completed with `s`: complete the WAIT command and send
 * the held-back commands.  Lock held. */
static void lk_cl_wait_done(lk_cl_queue_t* q, lk_cl_pending_t* p, lightos_status_t s) {
  if (s) {
    LK_FAIL_NATIVE(LIGHTOS_ABORTED, "opencl", "", 0, "waited-on event failed: %s",
                   lightos_last_error()->message);
    lk_cl_fail_entry(p, LIGHTOS_ABORTED);
    if (!q->error) {
      q->error = LIGHTOS_ABORTED;
      lk_strlcpy(q->error_msg, p->msg, sizeof q->error_msg);
    }
  }
  lk_cl_push(q, p);
  q->waiting = false;
  while (q->dhead && !q->waiting) {
    lk_cl_pending_t* d = q->dhead;
    q->dhead = d->next;
    if (!q->dhead) q->dtail = NULL;
    if (lk_cl_dispatch(q, d) != LIGHTOS_SUCCESS && !q->error) {
      q->error = d->status;
      lk_strlcpy(q->error_msg, d->msg, sizeof q->error_msg);
    }
  }
}

static void* lk_cl_waiter_main(void* arg) {
  lk_cl_waiter_t* w = arg;
  lightos_status_t s = lk_event_wait_internal(w->p->cmd->wait_event);
  pthread_mutex_lock(&w->q->lock);
  lk_cl_wait_done(w->q, w->p, s);
  pthread_mutex_unlock(&w->q->lock);
  free(w);
  return NULL;
}

/* Sends one command to the device (or completes it at once) in queue
 * order.  Lock held.  Returns the status for the enqueue call: failures to
 * queue the command; an asynchronous failure (a skipped command) is
 * reported through its event instead. */
static lightos_status_t lk_cl_dispatch(lk_cl_queue_t* q, lk_cl_pending_t* p) {
  lk_cmd_t* c = p->cmd;
  if (q->waiting) { /* held back behind a wait */
    p->next = NULL;
    if (q->dtail) q->dtail->next = p;
    else q->dhead = p;
    q->dtail = p;
    return LIGHTOS_SUCCESS;
  }
  if (q->error) {
    LK_FAIL_NATIVE(LIGHTOS_ABORTED, "opencl", "", 0,
                   "skipped: an earlier command on this queue failed (%s)", q->error_msg);
    lk_cl_fail_entry(p, LIGHTOS_ABORTED);
    lk_cl_push(q, p);
    return LIGHTOS_SUCCESS;
  }
  if (c->kind == LK_CMD_WAIT) {
    q->waiting = true;
    lk_cl_waiter_t* w = malloc(sizeof *w);
    pthread_t tid;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool started = false;
    if (w) {
      w->q = q;
      w->p = p;
      started = pthread_create(&tid, &attr, lk_cl_waiter_main, w) == 0;
    }
    pthread_attr_destroy(&attr);
    if (!started) { /* no thread: wait here */
      free(w);
      pthread_mutex_unlock(&q->lock);
      lightos_status_t s = lk_event_wait_internal(c->wait_event);
      pthread_mutex_lock(&q->lock);
      lk_cl_wait_done(q, p, s);
    }
    return LIGHTOS_SUCCESS;
  }
  lightos_status_t s;
  if (p->native) {
    s = p->native(p->native_arg, q->q, &p->ev);
    if (s == LIGHTOS_UNSUPPORTED) /* too late to take another path */
      s = LK_FAIL(LIGHTOS_UNSUPPORTED,
                  "the native library refused a command that was held back behind a wait");
  } else {
    s = lk_cl_enqueue(q, c, &p->ev);
  }
  if (s) lk_cl_fail_entry(p, s);
  lk_cl_push(q, p);
  return s;
}

static lightos_status_t lk_cl_submit(lk_hal_queue_t* hq, lk_cmd_t* c) {
  lk_cl_queue_t* q = (lk_cl_queue_t*)hq;
  lk_cl_pending_t* p = calloc(1, sizeof *p);
  if (!p) {
    lightos_status_t s = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a command");
    lk_cmd_complete(c, s, 0, 0);
    return s;
  }
  p->cmd = c;
  pthread_mutex_lock(&q->lock);
  q->in_flight++;
  lightos_status_t s = lk_cl_dispatch(q, p);
  pthread_mutex_unlock(&q->lock);
  return s;
}

lightos_status_t lk_cl_queue_submit_native(lk_hal_queue_t* hq, lk_cmd_t* keep_alive,
                                           lk_cl_native_fn fn, void* arg) {
  lk_cl_queue_t* q = (lk_cl_queue_t*)hq;
  lk_cl_pending_t* p = calloc(1, sizeof *p);
  if (!p) {
    free(arg);
    return LIGHTOS_UNSUPPORTED; /* the caller's portable path reports memory */
  }
  p->cmd = keep_alive;
  p->native = fn;
  p->native_arg = arg;
  pthread_mutex_lock(&q->lock);
  lightos_status_t s;
  if (!q->waiting && !q->error) {
    /* Its turn now: a refusal can still go back to the caller. */
    s = fn(arg, q->q, &p->ev);
    if (s == LIGHTOS_UNSUPPORTED) {
      pthread_mutex_unlock(&q->lock);
      free(arg);
      free(p);
      return s;
    }
    q->in_flight++;
    if (s) lk_cl_fail_entry(p, s);
    lk_cl_push(q, p);
  } else {
    q->in_flight++;
    s = lk_cl_dispatch(q, p);
  }
  pthread_mutex_unlock(&q->lock);
  return s;
}

static lightos_status_t lk_cl_finish(lk_hal_queue_t* hq) {
  lk_cl_queue_t* q = (lk_cl_queue_t*)hq;
  q->api->clFinish(q->q);
  pthread_mutex_lock(&q->lock);
  while (q->in_flight) pthread_cond_wait(&q->cv, &q->lock);
  lightos_status_t s = q->error;
  char msg[512];
  lk_strlcpy(msg, q->error_msg, sizeof msg);
  q->error = LIGHTOS_SUCCESS;
  q->error_msg[0] = '\0';
  pthread_mutex_unlock(&q->lock);
  if (s) return LK_FAIL_NATIVE(s, "opencl", "", 0, "queued command failed: %s", msg);
  return LIGHTOS_SUCCESS;
}

static void lk_cl_queue_destroy(lk_hal_queue_t* hq) {
  lk_cl_queue_t* q = (lk_cl_queue_t*)hq;
  pthread_mutex_lock(&q->lock);
  q->stop = true;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->lock);
  pthread_join(q->completer, NULL);
  q->api->clReleaseCommandQueue(q->q);
  pthread_cond_destroy(&q->cv);
  pthread_mutex_destroy(&q->lock);
  free(q);
}

static const lk_hal_queue_vtbl_t lk_cl_queue_vtbl = {
    .destroy = lk_cl_queue_destroy,
    .submit = lk_cl_submit,
    .finish = lk_cl_finish,
    .drain = NULL,
    .native_gemm = lk_cl_native_gemm,
};

lightos_status_t lk_cl_queue_create(lk_hal_context_t* hc, uint32_t flags, lk_hal_queue_t** out) {
  lk_cl_context_t* c = (lk_cl_context_t*)hc;
  lk_cl_queue_t* q = calloc(1, sizeof *q);
  if (!q) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a queue");
  cl_int err = CL_SUCCESS;
  q->q = c->api->clCreateCommandQueue(c->ctx, c->device->id,
                                      (flags & LIGHTOS_QUEUE_PROFILING) ? CL_QUEUE_PROFILING_ENABLE : 0,
                                      &err);
  if (!q->q) {
    free(q);
    return lk_cl_fail(err, "clCreateCommandQueue", hc->device->info.uri);
  }
  q->base.vtbl = &lk_cl_queue_vtbl;
  q->base.context = hc;
  q->base.flags = flags;
  q->ctx = c;
  q->api = c->api;
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->cv, NULL);
  if (pthread_create(&q->completer, NULL, lk_cl_completer, q) != 0) {
    c->api->clReleaseCommandQueue(q->q);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->lock);
    free(q);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "could not start a queue thread");
  }
  *out = &q->base;
  return LIGHTOS_SUCCESS;
}
