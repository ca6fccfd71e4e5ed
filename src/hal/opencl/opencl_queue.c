/* OpenCL queues: commands become in-order cl_command_queue work; a
 * completion thread waits for their cl_events in order and completes the
 * LightOS commands (events, timestamps, references). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/util.h"
#include "hal/opencl/opencl_backend.h"

typedef struct lk_cl_pending {
  lk_cmd_t* cmd;
  cl_event ev;          /* NULL for work done on the host at submit */
  lightos_status_t status;
  char msg[384];        /* the failure's message, when status fails */
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
  size_t in_flight;         /* submitted and not completed */
  bool stop;
  pthread_t completer;
  lightos_status_t error;   /* first failure since the last finish */
  char error_msg[512];
} lk_cl_queue_t;

static void lk_cl_record_error(lk_cl_queue_t* q, lightos_status_t s) {
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
      if (err != CL_SUCCESS || exec < 0) {
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
    free(p);
    pthread_mutex_lock(&q->lock);
    q->in_flight--;
    pthread_cond_broadcast(&q->cv);
  }
  pthread_mutex_unlock(&q->lock);
  return NULL;
}

/* Waits for a LightOS event of any backend, then releases the user event
 * that holds the queue's barrier: CL_COMPLETE, or an error status when the
 * awaited work failed (the barrier then fails and the queue's later
 * commands complete with LIGHTOS_ABORTED). */
typedef struct lk_cl_waiter {
  const lk_opencl_api_t* api;
  cl_event user;
  struct lk_event* event; /* kept alive by the waiting command until the barrier completes */
} lk_cl_waiter_t;

static void* lk_cl_waiter_main(void* arg) {
  lk_cl_waiter_t* w = arg;
  lightos_status_t s = lk_event_wait_internal(w->event);
  w->api->clSetUserEventStatus(w->user, s ? CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST : CL_COMPLETE);
  w->api->clReleaseEvent(w->user);
  free(w);
  return NULL;
}

/* The host does not block: a barrier waits on a user event that a helper
 * thread completes once the awaited event has. */
static lightos_status_t lk_cl_enqueue_wait(lk_cl_queue_t* q, lk_cmd_t* c, cl_event* ev) {
  const lk_opencl_api_t* api = q->api;
  cl_int err = CL_SUCCESS;
  cl_event user = api->clCreateUserEvent(q->ctx->ctx, &err);
  if (!user) return lk_cl_fail(err, "clCreateUserEvent", "");
  lk_cl_waiter_t* w = malloc(sizeof *w);
  err = w ? api->clEnqueueBarrierWithWaitList(q->q, 1, &user, ev) : CL_OUT_OF_HOST_MEMORY;
  pthread_t tid;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (err == CL_SUCCESS) {
    w->api = api;
    w->user = user;
    w->event = c->wait_event;
    if (pthread_create(&tid, &attr, lk_cl_waiter_main, w) == 0) {
      pthread_attr_destroy(&attr);
      return LIGHTOS_SUCCESS;
    }
    err = CL_OUT_OF_HOST_MEMORY;
  }
  pthread_attr_destroy(&attr);
  /* Nothing will wait: release the barrier at once, as failed. */
  api->clSetUserEventStatus(user, CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST);
  api->clReleaseEvent(user);
  free(w);
  return lk_cl_fail(err, "clEnqueueBarrierWithWaitList", "waiting on an event");
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
    case LK_CMD_HOST: {
      /* Host work in queue order: wait for the queue's earlier work. */
      err = api->clFinish(q->q);
      if (err) return lk_cl_fail(err, "clFinish", "");
      return c->u.host.fn(c->u.host.arg);
    }
    case LK_CMD_WAIT:
      return lk_cl_enqueue_wait(q, c, ev);
  }
  return LK_FAIL(LIGHTOS_INTERNAL, "unknown command kind %d", (int)c->kind);
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
  lightos_status_t prior = q->error;
  char prior_msg[512];
  lk_strlcpy(prior_msg, q->error_msg, sizeof prior_msg);
  q->in_flight++;
  pthread_mutex_unlock(&q->lock);
  lightos_status_t s;
  if (prior)
    s = LK_FAIL_NATIVE(LIGHTOS_ABORTED, "opencl", "", 0,
                       "skipped: an earlier command on this queue failed (%s)", prior_msg);
  else
    s = lk_cl_enqueue(q, c, &p->ev);
  /* A skipped command is an asynchronous failure (its event says so);
   * other failures here happened before anything was queued: the caller
   * gets them directly. */
  bool async_failure = prior;
  p->status = s;
  if (s) lk_strlcpy(p->msg, lightos_last_error()->message, sizeof p->msg);
  pthread_mutex_lock(&q->lock);
  if (q->tail) q->tail->next = p;
  else q->head = p;
  q->tail = p;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->lock);
  return async_failure ? LIGHTOS_SUCCESS : s;
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
