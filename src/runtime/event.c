/* Events: completion records of queued commands. */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "runtime/runtime.h"

static void lk_event_destroy(lk_object_t* obj) {
  lk_event_t* e = (lk_event_t*)obj;
  pthread_cond_destroy(&e->cv);
  pthread_mutex_destroy(&e->lock);
  free(e);
}

lightos_status_t lk_event_create(lk_event_t** out) {
  lk_event_t* e = calloc(1, sizeof *e);
  if (!e) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for an event");
  pthread_mutex_init(&e->lock, NULL);
  pthread_cond_init(&e->cv, NULL);
  lightos_status_t s = lk_object_init(&e->obj, LK_OBJ_EVENT, lk_event_destroy);
  if (s) {
    lk_event_destroy(&e->obj);
    return s;
  }
  *out = e;
  return LIGHTOS_SUCCESS;
}

void lk_event_signal(lk_event_t* e, lightos_status_t status, const char* message,
                     const char* backend, uint64_t t_start, uint64_t t_end) {
  pthread_mutex_lock(&e->lock);
  e->status = status;
  e->t_start_ns = t_start;
  e->t_end_ns = t_end;
  if (status != LIGHTOS_SUCCESS) {
    lk_strlcpy(e->message, message, sizeof e->message);
    lk_strlcpy(e->backend, backend, sizeof e->backend);
  }
  atomic_store_explicit(&e->done, 1, memory_order_release);
  pthread_cond_broadcast(&e->cv);
  pthread_mutex_unlock(&e->lock);
}

/* Re-raises a failed event's error on the calling thread. */
static lightos_status_t lk_event_result(lk_event_t* e) {
  if (e->status == LIGHTOS_SUCCESS) return LIGHTOS_SUCCESS;
  return LK_FAIL_NATIVE(e->status, e->backend, "", 0, "queued command failed: %s", e->message);
}

lightos_status_t lk_event_wait_internal(lk_event_t* e) {
  if (!atomic_load_explicit(&e->done, memory_order_acquire)) {
    pthread_mutex_lock(&e->lock);
    while (!atomic_load(&e->done)) pthread_cond_wait(&e->cv, &e->lock);
    pthread_mutex_unlock(&e->lock);
  }
  return lk_event_result(e);
}

LIGHTOS_API lightos_status_t lightos_event_retain(lightos_event_t event) {
  lk_event_t* e = NULL;
  LK_RESOLVE(e, event, LK_OBJ_EVENT, "event");
  lk_object_ext_retain(&e->obj);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_event_release(lightos_event_t event) {
  lk_event_t* e = NULL;
  LK_RESOLVE(e, event, LK_OBJ_EVENT, "event");
  lk_object_ext_release(&e->obj);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_event_wait(lightos_event_t event) {
  lk_event_t* e = NULL;
  LK_RESOLVE(e, event, LK_OBJ_EVENT, "event");
  return lk_event_wait_internal(e);
}

LIGHTOS_API lightos_status_t lightos_event_query(lightos_event_t event) {
  lk_event_t* e = NULL;
  LK_RESOLVE(e, event, LK_OBJ_EVENT, "event");
  if (!atomic_load_explicit(&e->done, memory_order_acquire)) return LIGHTOS_NOT_READY;
  return lk_event_result(e);
}

LIGHTOS_API lightos_status_t lightos_event_elapsed_ms(lightos_event_t start, lightos_event_t end,
                                                      double* out_ms) {
  lk_event_t *a = NULL, *b = NULL;
  LK_RESOLVE(a, start, LK_OBJ_EVENT, "start");
  LK_RESOLVE(b, end, LK_OBJ_EVENT, "end");
  LK_CHECK_OUT(out_ms, "out_ms");
  if (!atomic_load(&a->done) || !atomic_load(&b->done))
    return LK_FAIL(LIGHTOS_NOT_READY, "%s has not completed yet",
                   atomic_load(&a->done) ? "end" : "start");
  if (!a->profiled || !b->profiled)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "%s comes from a queue created without LIGHTOS_QUEUE_PROFILING",
                   a->profiled ? "end" : "start");
  if (a->status || b->status)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "%s failed: it has no timing",
                   a->status ? "start" : "end");
  *out_ms = ((double)b->t_end_ns - (double)a->t_start_ns) / 1e6;
  return LIGHTOS_SUCCESS;
}
