/* The header every LightOS object starts with, and the handle table.
 *
 * Public handles are not pointers to objects: they encode a slot of a
 * process-wide table and the slot's generation, so that a released handle
 * (or a handle of the wrong type, or garbage) is detected and reported
 * instead of being dereferenced.  Lookups are lock-free.
 *
 * Two counts: `ext_refs` is the user's (retain/release through the API);
 * when it reaches zero the handle dies at once (later use is "use after
 * release").  `refs` keeps the memory alive for internal users (queued
 * commands, child objects); it includes one reference for as long as
 * ext_refs > 0.  `destroy` runs when refs reaches zero.
 */
#ifndef LIGHTOS_CORE_OBJECT_H
#define LIGHTOS_CORE_OBJECT_H

#include <stdatomic.h>
#include <stdint.h>

#include "lightos/status.h"

typedef enum lk_obj_type {
  LK_OBJ_DEVICE = 1,
  LK_OBJ_CONTEXT,
  LK_OBJ_BUFFER,
  LK_OBJ_QUEUE,
  LK_OBJ_EVENT,
  LK_OBJ_PROGRAM,
  LK_OBJ_KERNEL,
  LK_OBJ_COMM,
  LK_OBJ_TYPE_COUNT
} lk_obj_type_t;

typedef struct lk_object lk_object_t;
typedef void (*lk_destroy_fn)(lk_object_t* obj);

struct lk_object {
  lk_destroy_fn destroy;     /* first, as in every vtable */
  lk_obj_type_t type;
  atomic_int refs;
  atomic_int ext_refs;
  uint64_t handle;           /* 0 when the object has no public handle */
};

/* Initialises the header with refs = ext_refs = 1 and registers a handle.
 * Returns OUT_OF_MEMORY when the handle table is full. */
lightos_status_t lk_object_init(lk_object_t* obj, lk_obj_type_t type,
                                lk_destroy_fn destroy);
/* Internal references. */
void lk_object_ref(lk_object_t* obj);
void lk_object_unref(lk_object_t* obj);
/* Drops n internal references at once (n may be 0). */
void lk_object_unref_n(lk_object_t* obj, int n);
/* User references (through the handle). */
void lk_object_ext_retain(lk_object_t* obj);
void lk_object_ext_release(lk_object_t* obj);

/* Resolves a public handle.  `what` names the argument for the message
 * ("buffer 'dst'").  INVALID_ARGUMENT for NULL, garbage, a handle of
 * another type, or a released handle. */
lightos_status_t lk_handle_resolve(const void* handle, lk_obj_type_t type,
                                   const char* what, lk_object_t** out);

const char* lk_obj_type_name(lk_obj_type_t type);

#define LK_HANDLE(obj) ((void*)(uintptr_t)((lk_object_t*)(obj))->handle)

#endif
