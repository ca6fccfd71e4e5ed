/* Refcounted object header and the generation-checked handle table. */
#include <pthread.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/object.h"

/* Handle layout: bits 0..23 slot index + 1, bits 24..27 type, bits 28..59
 * generation, bit 60 set (so a handle never looks like a small integer or
 * a typical heap pointer). */
#define LK_SLOT_BITS 24
#define LK_TYPE_SHIFT 24
#define LK_GEN_SHIFT 28
#define LK_GEN_MASK 0xffffffffull
#define LK_HANDLE_TAG (1ull << 60)
#define LK_PAGE_SLOTS 4096u
#define LK_MAX_PAGES 4096u /* 16M live objects */

typedef struct lk_slot {
  _Atomic(lk_object_t*) obj;
  atomic_uint gen;
  uint32_t next_free;
} lk_slot_t;

static _Atomic(lk_slot_t*) lk_pages[LK_MAX_PAGES];
static pthread_mutex_t lk_table_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t lk_free_head; /* slot index + 1; 0 = empty */
static uint32_t lk_slots_used;

static lk_slot_t* lk_slot_at(uint32_t index) {
  lk_slot_t* page = atomic_load_explicit(&lk_pages[index / LK_PAGE_SLOTS],
                                         memory_order_acquire);
  return page ? &page[index % LK_PAGE_SLOTS] : NULL;
}

static int lk_slot_alloc(uint32_t* out_index) {
  pthread_mutex_lock(&lk_table_lock);
  if (lk_free_head) {
    *out_index = lk_free_head - 1;
    lk_free_head = lk_slot_at(*out_index)->next_free;
    pthread_mutex_unlock(&lk_table_lock);
    return 1;
  }
  uint32_t index = lk_slots_used;
  uint32_t page = index / LK_PAGE_SLOTS;
  if (page >= LK_MAX_PAGES) {
    pthread_mutex_unlock(&lk_table_lock);
    return 0;
  }
  if (!atomic_load(&lk_pages[page])) {
    lk_slot_t* p = calloc(LK_PAGE_SLOTS, sizeof *p);
    if (!p) {
      pthread_mutex_unlock(&lk_table_lock);
      return 0;
    }
    atomic_store_explicit(&lk_pages[page], p, memory_order_release);
  }
  lk_slots_used++;
  *out_index = index;
  pthread_mutex_unlock(&lk_table_lock);
  return 1;
}

static void lk_slot_free(uint64_t handle) {
  uint32_t index = (uint32_t)(handle & ((1u << LK_SLOT_BITS) - 1)) - 1;
  lk_slot_t* s = lk_slot_at(index);
  if (!s) return;
  pthread_mutex_lock(&lk_table_lock);
  atomic_store(&s->obj, NULL);
  atomic_fetch_add(&s->gen, 1);
  s->next_free = lk_free_head;
  lk_free_head = index + 1;
  pthread_mutex_unlock(&lk_table_lock);
}

lightos_status_t lk_object_init(lk_object_t* obj, lk_obj_type_t type,
                                lk_destroy_fn destroy) {
  obj->destroy = destroy;
  obj->type = type;
  atomic_init(&obj->refs, 1);
  atomic_init(&obj->ext_refs, 1);
  obj->handle = 0;
  uint32_t index;
  if (!lk_slot_alloc(&index) || index + 1 >= (1u << LK_SLOT_BITS))
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "handle table full (%u objects alive)",
                   lk_slots_used);
  lk_slot_t* s = lk_slot_at(index);
  if (!s) return LK_FAIL(LIGHTOS_INTERNAL, "handle table slot %u missing", index);
  uint64_t gen = atomic_load(&s->gen) & LK_GEN_MASK;
  obj->handle = LK_HANDLE_TAG | (gen << LK_GEN_SHIFT) |
                ((uint64_t)type << LK_TYPE_SHIFT) | (uint64_t)(index + 1);
  atomic_store_explicit(&s->obj, obj, memory_order_release);
  return LIGHTOS_SUCCESS;
}

void lk_object_ref(lk_object_t* obj) { atomic_fetch_add(&obj->refs, 1); }

void lk_object_unref(lk_object_t* obj) {
  if (atomic_fetch_sub(&obj->refs, 1) == 1 && obj->destroy) obj->destroy(obj);
}

void lk_object_unref_n(lk_object_t* obj, int n) {
  if (n > 0 && atomic_fetch_sub(&obj->refs, n) == n && obj->destroy) obj->destroy(obj);
}

void lk_object_ext_retain(lk_object_t* obj) { atomic_fetch_add(&obj->ext_refs, 1); }

void lk_object_ext_release(lk_object_t* obj) {
  if (atomic_fetch_sub(&obj->ext_refs, 1) != 1) return;
  if (obj->handle) lk_slot_free(obj->handle);
  lk_object_unref(obj);
}

const char* lk_obj_type_name(lk_obj_type_t type) {
  static const char* names[LK_OBJ_TYPE_COUNT] = {
      "invalid", "device", "context", "buffer", "queue",
      "event",   "program", "kernel", "communicator"};
  return (unsigned)type < LK_OBJ_TYPE_COUNT ? names[type] : "invalid";
}

lightos_status_t lk_handle_resolve(const void* handle, lk_obj_type_t type,
                                   const char* what, lk_object_t** out) {
  uint64_t h = (uint64_t)(uintptr_t)handle;
  if (!h) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "%s is NULL", what);
  uint32_t index = (uint32_t)(h & ((1u << LK_SLOT_BITS) - 1));
  lk_obj_type_t htype = (lk_obj_type_t)((h >> LK_TYPE_SHIFT) & 0xf);
  lk_slot_t* s = NULL;
  if ((h >> 60) == 1 && index > 0 &&
      index - 1 < LK_MAX_PAGES * LK_PAGE_SLOTS)
    s = lk_slot_at(index - 1);
  if (!s)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "%s (%p) is not a LightOS handle", what, handle);
  if (htype != type)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "%s (%p) is a %s handle, not a %s",
                   what, handle, lk_obj_type_name(htype), lk_obj_type_name(type));
  lk_object_t* obj = atomic_load_explicit(&s->obj, memory_order_acquire);
  uint64_t gen = atomic_load_explicit(&s->gen, memory_order_acquire) & LK_GEN_MASK;
  if (!obj || gen != ((h >> LK_GEN_SHIFT) & LK_GEN_MASK) || obj->handle != h)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "%s (%p) was released (use after release)", what, handle);
  *out = obj;
  return LIGHTOS_SUCCESS;
}
