/* Queues: the runtime side.  Commands are built here and handed to the
 * backend's queue, which runs them in order and completes them through
 * lk_cmd_complete(). */
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

lk_cmd_t* lk_cmd_new(lk_cmd_kind_t kind) {
  lk_cmd_t* c = calloc(1, sizeof *c);
  if (c) c->kind = kind;
  return c;
}

static void lk_cmd_drop_refs(lk_cmd_t* c) {
  for (int i = 0; i < 2; ++i)
    if (c->buf[i]) lk_object_unref(&c->buf[i]->obj);
  if (c->kernel) lk_object_unref(&c->kernel->obj);
  if (c->wait_event) lk_object_unref(&c->wait_event->obj);
  for (uint32_t i = 0; i < c->num_launch_bufs; ++i) lk_object_unref(&c->launch_bufs[i]->obj);
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
  free(c);
}

void lk_cmd_complete(lk_cmd_t* c, lightos_status_t status, uint64_t t_start, uint64_t t_end) {
  if (c->event) {
    const lightos_error_info_t* e = lightos_last_error();
    lk_event_signal(c->event, status, status ? e->message : "", status ? e->backend : "",
                    t_start, t_end);
    lk_object_unref(&c->event->obj);
  }
  lk_cmd_drop_refs(c);
  free(c);
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
