/* Contexts: one device opened for use. */
#include <stdlib.h>

#include "core/util.h"
#include "runtime/runtime.h"

lightos_status_t lk_device_select_internal(lightos_device_kind_t kind, lk_device_t** out);
lightos_status_t lk_device_from_uri_internal(const char* uri, lk_device_t** out);
lightos_status_t lk_queue_create_internal(lk_context_t* c, uint32_t flags, bool is_default,
                                          lk_queue_t** out);

static void lk_context_destroy(lk_object_t* obj) {
  lk_context_t* c = (lk_context_t*)obj;
  /* The default queue holds no reference on its context (it would keep
   * the context alive forever); it goes first. */
  if (c->default_queue) lk_object_ext_release(&c->default_queue->obj);
  if (c->ops && c->ops_destroy) c->ops_destroy(c->ops);
  pthread_mutex_destroy(&c->ops_lock);
  if (c->hal) c->hal->vtbl->destroy(c->hal);
  free(c);
}

static lightos_status_t lk_context_open(lk_device_t* d, uint32_t flags, lightos_context_t* out) {
  if (flags & ~(uint32_t)LIGHTOS_CONTEXT_DETERMINISTIC)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "flags 0x%x has unknown bits", flags);
  lk_context_t* c = calloc(1, sizeof *c);
  if (!c) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a context");
  lightos_status_t s = lk_object_init(&c->obj, LK_OBJ_CONTEXT, lk_context_destroy);
  if (s) {
    free(c);
    return s;
  }
  c->device = d;
  pthread_mutex_init(&c->ops_lock, NULL);
  if (lk_env_flag("LIGHTOS_DETERMINISTIC", false)) flags |= LIGHTOS_CONTEXT_DETERMINISTIC;
  c->flags = flags;
  s = d->hal->vtbl->context_create(d->hal, flags, &c->hal);
  if (!s) {
    s = lk_queue_create_internal(c, 0, true, &c->default_queue);
  }
  if (s) {
    lk_object_ext_release(&c->obj);
    return s;
  }
  *out = LK_HANDLE(c);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_context_create(lightos_device_kind_t kind,
                                                    lightos_context_t* out_context) {
  LK_CHECK_OUT(out_context, "out_context");
  lk_device_t* d = NULL;
  lightos_status_t s = lk_device_select_internal(kind, &d);
  if (s) return s;
  return lk_context_open(d, 0, out_context);
}

LIGHTOS_API lightos_status_t lightos_context_create_for_device(lightos_device_t device,
                                                               uint32_t flags,
                                                               lightos_context_t* out_context) {
  lk_device_t* d = NULL;
  LK_RESOLVE(d, device, LK_OBJ_DEVICE, "device");
  LK_CHECK_OUT(out_context, "out_context");
  return lk_context_open(d, flags, out_context);
}

LIGHTOS_API lightos_status_t lightos_context_create_from_uri(const char* uri,
                                                             lightos_context_t* out_context) {
  if (!uri) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "uri is NULL");
  LK_CHECK_OUT(out_context, "out_context");
  lk_device_t* d = NULL;
  lightos_status_t s = lk_device_from_uri_internal(uri, &d);
  if (s) return s;
  return lk_context_open(d, 0, out_context);
}

LIGHTOS_API lightos_status_t lightos_context_retain(lightos_context_t context) {
  lk_context_t* c = NULL;
  LK_RESOLVE(c, context, LK_OBJ_CONTEXT, "context");
  lk_object_ext_retain(&c->obj);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_context_release(lightos_context_t context) {
  lk_context_t* c = NULL;
  LK_RESOLVE(c, context, LK_OBJ_CONTEXT, "context");
  lk_object_ext_release(&c->obj);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_context_get_device(lightos_context_t context,
                                                        lightos_device_t* out_device) {
  lk_context_t* c = NULL;
  LK_RESOLVE(c, context, LK_OBJ_CONTEXT, "context");
  LK_CHECK_OUT(out_device, "out_device");
  *out_device = LK_HANDLE(c->device);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_context_default_queue(lightos_context_t context,
                                                           lightos_queue_t* out_queue) {
  lk_context_t* c = NULL;
  LK_RESOLVE(c, context, LK_OBJ_CONTEXT, "context");
  LK_CHECK_OUT(out_queue, "out_queue");
  *out_queue = LK_HANDLE(c->default_queue);
  return LIGHTOS_SUCCESS;
}
