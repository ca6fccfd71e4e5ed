/* Buffers: allocation, sub-buffers, transfers, mapping. */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "runtime/runtime.h"

static void lk_buffer_destroy(lk_object_t* obj) {
  lk_buffer_t* b = (lk_buffer_t*)obj;
  if (b->parent) lk_object_unref(&b->parent->obj);
  else if (b->mem.device_ptr || b->mem.native) b->context->hal->vtbl->mem_free(b->context->hal, &b->mem);
  lk_object_unref(&b->context->obj);
  pthread_mutex_destroy(&b->map_lock);
  free(b->maps);
  free(b);
}

static lightos_status_t lk_buffer_new(lk_context_t* c, lk_buffer_t** out) {
  lk_buffer_t* b = calloc(1, sizeof *b);
  if (!b) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a buffer object");
  lightos_status_t s = lk_object_init(&b->obj, LK_OBJ_BUFFER, lk_buffer_destroy);
  if (s) {
    free(b);
    return s;
  }
  lk_object_ref(&c->obj);
  b->context = c;
  pthread_mutex_init(&b->map_lock, NULL);
  *out = b;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_buffer_alloc(lightos_context_t context, size_t size,
                                                  uint32_t flags, lightos_buffer_t* out_buffer) {
  lk_context_t* c = NULL;
  LK_RESOLVE(c, context, LK_OBJ_CONTEXT, "context");
  LK_CHECK_OUT(out_buffer, "out_buffer");
  if (size == 0) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "size is 0");
  if (flags & ~(uint32_t)LIGHTOS_BUFFER_HOST_VISIBLE)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "flags 0x%x has unknown bits", flags);
  const lightos_device_info_t* in = &c->device->hal->info;
  if (size > in->global_mem_bytes)
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY,
                   "size %zu is larger than the memory of device %s (%llu bytes)", size,
                   in->uri, (unsigned long long)in->global_mem_bytes);
  if ((flags & LIGHTOS_BUFFER_HOST_VISIBLE) && !in->host_visible_memory)
    return LK_FAIL(LIGHTOS_UNSUPPORTED, "device %s has no host-visible memory", in->uri);
  lk_buffer_t* b = NULL;
  lightos_status_t s = lk_buffer_new(c, &b);
  if (s) return s;
  b->size = size;
  b->flags = flags;
  s = c->hal->vtbl->mem_alloc(c->hal, size, flags, &b->mem);
  if (s) {
    lk_object_ext_release(&b->obj);
    return s;
  }
  *out_buffer = LK_HANDLE(b);
  return LIGHTOS_SUCCESS;
}

/* Checks [offset, offset+size) against a buffer of `total` bytes. */
static lightos_status_t lk_check_range(const char* what, size_t total, size_t offset, size_t size) {
  size_t end;
  if (size == 0) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "size is 0 (%s)", what);
  if (!lk_add_ok(offset, size, &end) || end > total)
    return LK_FAIL(LIGHTOS_OUT_OF_RANGE,
                   "%s: offset %zu + size %zu is past the end of the buffer (%zu bytes)", what,
                   offset, size, total);
  return LIGHTOS_SUCCESS;
}

static lk_buffer_t* lk_root(lk_buffer_t* b) {
  while (b->parent) b = b->parent;
  return b;
}

LIGHTOS_API lightos_status_t lightos_buffer_create_sub(lightos_buffer_t parent, size_t offset,
                                                       size_t size, lightos_buffer_t* out_buffer) {
  lk_buffer_t* p = NULL;
  LK_RESOLVE(p, parent, LK_OBJ_BUFFER, "parent");
  LK_CHECK_OUT(out_buffer, "out_buffer");
  lightos_status_t s = lk_check_range("parent", p->size, offset, size);
  if (s) return s;
  lk_buffer_t* b = NULL;
  s = lk_buffer_new(p->context, &b);
  if (s) return s;
  lk_buffer_t* root = lk_root(p);
  lk_object_ref(&root->obj);
  b->parent = root;
  b->mem = root->mem;
  b->offset = p->offset + offset;
  b->size = size;
  b->flags = root->flags;
  *out_buffer = LK_HANDLE(b);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_buffer_retain(lightos_buffer_t buffer) {
  lk_buffer_t* b = NULL;
  LK_RESOLVE(b, buffer, LK_OBJ_BUFFER, "buffer");
  lk_object_ext_retain(&b->obj);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_buffer_release(lightos_buffer_t buffer) {
  lk_buffer_t* b = NULL;
  LK_RESOLVE(b, buffer, LK_OBJ_BUFFER, "buffer");
  lk_object_ext_release(&b->obj);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_buffer_get_size(lightos_buffer_t buffer, size_t* out_size) {
  lk_buffer_t* b = NULL;
  LK_RESOLVE(b, buffer, LK_OBJ_BUFFER, "buffer");
  LK_CHECK_OUT(out_size, "out_size");
  *out_size = b->size;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_buffer_get_context(lightos_buffer_t buffer,
                                                        lightos_context_t* out_context) {
  lk_buffer_t* b = NULL;
  LK_RESOLVE(b, buffer, LK_OBJ_BUFFER, "buffer");
  LK_CHECK_OUT(out_context, "out_context");
  *out_context = LK_HANDLE(b->context);
  return LIGHTOS_SUCCESS;
}

/* Address of byte `offset` of a buffer for the command's copy fields. */
static void* lk_addr(lk_buffer_t* b, size_t offset) {
  return b->mem.device_ptr ? (char*)b->mem.device_ptr + b->offset + offset : NULL;
}

static lightos_status_t lk_resolve_queue_for(lightos_queue_t queue, lk_buffer_t* b,
                                             const char* bname, lk_queue_t** out) {
  lk_queue_t* q = NULL;
  LK_RESOLVE(q, queue, LK_OBJ_QUEUE, "queue");
  if (b && q->context != b->context)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "buffer '%s' belongs to context %p (%s), not the queue's context %p (%s)",
                   bname, LK_HANDLE(b->context), b->context->device->hal->info.uri,
                   LK_HANDLE(q->context), q->context->device->hal->info.uri);
  *out = q;
  return LIGHTOS_SUCCESS;
}

static lightos_status_t lk_submit_new(lk_queue_t* q, lk_cmd_t* c, lightos_event_t* out_event) {
  return lk_queue_submit(q, c, out_event);
}

static lk_cmd_t* lk_cmd_with(lk_cmd_kind_t kind, lk_buffer_t* b0, lk_buffer_t* b1) {
  lk_cmd_t* c = lk_cmd_new(kind);
  if (!c) return NULL;
  if (b0) lk_object_ref(&b0->obj);
  if (b1) lk_object_ref(&b1->obj);
  c->buf[0] = b0;
  c->buf[1] = b1;
  return c;
}

LIGHTOS_API lightos_status_t lightos_enqueue_write(lightos_queue_t queue, lightos_buffer_t dst,
                                                   size_t offset, size_t size, const void* src,
                                                   lightos_event_t* out_event) {
  lk_buffer_t* b = NULL;
  lk_queue_t* q = NULL;
  LK_RESOLVE(b, dst, LK_OBJ_BUFFER, "dst");
  lightos_status_t s = lk_resolve_queue_for(queue, b, "dst", &q);
  if (s) return s;
  if (!src) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "src is NULL");
  if ((s = lk_check_range("dst", b->size, offset, size))) return s;
  lk_cmd_t* c = lk_cmd_with(LK_CMD_WRITE, b, NULL);
  if (!c) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a command");
  c->u.copy.dst = lk_addr(b, offset);
  c->u.copy.dst_off = b->offset + offset;
  c->u.copy.dst_mem = &b->mem;
  c->u.copy.src = src;
  c->u.copy.size = size;
  return lk_submit_new(q, c, out_event);
}

LIGHTOS_API lightos_status_t lightos_enqueue_read(lightos_queue_t queue, lightos_buffer_t src,
                                                  size_t offset, size_t size, void* dst,
                                                  lightos_event_t* out_event) {
  lk_buffer_t* b = NULL;
  lk_queue_t* q = NULL;
  LK_RESOLVE(b, src, LK_OBJ_BUFFER, "src");
  lightos_status_t s = lk_resolve_queue_for(queue, b, "src", &q);
  if (s) return s;
  if (!dst) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "dst is NULL");
  if ((s = lk_check_range("src", b->size, offset, size))) return s;
  lk_cmd_t* c = lk_cmd_with(LK_CMD_READ, b, NULL);
  if (!c) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a command");
  c->u.copy.dst = dst;
  c->u.copy.src = lk_addr(b, offset);
  c->u.copy.src_off = b->offset + offset;
  c->u.copy.src_mem = &b->mem;
  c->u.copy.size = size;
  return lk_submit_new(q, c, out_event);
}

LIGHTOS_API lightos_status_t lightos_enqueue_copy(lightos_queue_t queue, lightos_buffer_t src,
                                                  size_t src_offset, lightos_buffer_t dst,
                                                  size_t dst_offset, size_t size,
                                                  lightos_event_t* out_event) {
  lk_buffer_t *bs = NULL, *bd = NULL;
  lk_queue_t* q = NULL;
  LK_RESOLVE(bs, src, LK_OBJ_BUFFER, "src");
  LK_RESOLVE(bd, dst, LK_OBJ_BUFFER, "dst");
  lightos_status_t s = lk_resolve_queue_for(queue, NULL, NULL, &q);
  if (s) return s;
  if ((s = lk_check_range("src", bs->size, src_offset, size))) return s;
  if ((s = lk_check_range("dst", bd->size, dst_offset, size))) return s;
  bool cross = bs->context != q->context || bd->context != q->context;
  if (cross && (!bs->mem.host_ptr || !bd->mem.host_ptr))
    return LK_FAIL(LIGHTOS_UNSUPPORTED,
                   "copy between %s and %s: only host-addressable buffers can be copied "
                   "across contexts in this release",
                   bs->context->device->hal->info.uri, bd->context->device->hal->info.uri);
  if (lk_root(bs) == lk_root(bd)) {
    size_t a = bs->offset + src_offset, d = bd->offset + dst_offset;
    if (a < d + size && d < a + size)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "src range [%zu, %zu) and dst range [%zu, %zu) overlap in one allocation",
                     a, a + size, d, d + size);
  }
  lk_cmd_t* c = lk_cmd_with(LK_CMD_COPY, bd, bs);
  if (!c) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a command");
  c->u.copy.dst = cross ? (char*)bd->mem.host_ptr + bd->offset + dst_offset : lk_addr(bd, dst_offset);
  c->u.copy.src = cross ? (char*)bs->mem.host_ptr + bs->offset + src_offset : lk_addr(bs, src_offset);
  c->u.copy.dst_off = bd->offset + dst_offset;
  c->u.copy.src_off = bs->offset + src_offset;
  c->u.copy.dst_mem = &bd->mem;
  c->u.copy.src_mem = &bs->mem;
  c->u.copy.cross_context = cross;
  c->u.copy.size = size;
  return lk_submit_new(q, c, out_event);
}

LIGHTOS_API lightos_status_t lightos_enqueue_fill(lightos_queue_t queue, lightos_buffer_t dst,
                                                  size_t offset, size_t size, const void* pattern,
                                                  size_t pattern_size,
                                                  lightos_event_t* out_event) {
  lk_buffer_t* b = NULL;
  lk_queue_t* q = NULL;
  LK_RESOLVE(b, dst, LK_OBJ_BUFFER, "dst");
  lightos_status_t s = lk_resolve_queue_for(queue, b, "dst", &q);
  if (s) return s;
  if (!pattern) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "pattern is NULL");
  if (pattern_size == 0 || pattern_size > LK_MAX_FILL_PATTERN ||
      (pattern_size & (pattern_size - 1)))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "pattern_size %zu is not one of 1, 2, 4, 8, 16, 32, 64, 128", pattern_size);
  if (offset % pattern_size || size % pattern_size)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "offset %zu and size %zu must be multiples of pattern_size %zu", offset, size,
                   pattern_size);
  if ((s = lk_check_range("dst", b->size, offset, size))) return s;
  lk_cmd_t* c = lk_cmd_with(LK_CMD_FILL, b, NULL);
  if (!c) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a command");
  c->u.fill.dst = lk_addr(b, offset);
  c->u.fill.dst_off = b->offset + offset;
  c->u.fill.dst_mem = &b->mem;
  c->u.fill.size = size;
  memcpy(c->u.fill.pattern, pattern, pattern_size);
  c->u.fill.pattern_size = pattern_size;
  return lk_submit_new(q, c, out_event);
}

/* Blocking forms: enqueue on the default queue and wait for that command. */
static lightos_status_t lk_wait_and_release(lk_buffer_t* b, lightos_status_t s,
                                            const lightos_event_t* ev) {
  return s ? s : lk_queue_wait_and_release(b->context->default_queue, *ev);
}

static lightos_queue_t lk_default_queue_of(lk_buffer_t* b) {
  return LK_HANDLE(b->context->default_queue);
}

LIGHTOS_API lightos_status_t lightos_buffer_write(lightos_buffer_t dst, size_t offset, size_t size,
                                                  const void* src) {
  lk_buffer_t* b = NULL;
  LK_RESOLVE(b, dst, LK_OBJ_BUFFER, "dst");
  lightos_event_t ev = NULL;
  return lk_wait_and_release(b,
      lightos_enqueue_write(lk_default_queue_of(b), dst, offset, size, src, &ev), &ev);
}

LIGHTOS_API lightos_status_t lightos_buffer_read(lightos_buffer_t src, size_t offset, size_t size,
                                                 void* dst) {
  lk_buffer_t* b = NULL;
  LK_RESOLVE(b, src, LK_OBJ_BUFFER, "src");
  lightos_event_t ev = NULL;
  return lk_wait_and_release(b,
      lightos_enqueue_read(lk_default_queue_of(b), src, offset, size, dst, &ev), &ev);
}

LIGHTOS_API lightos_status_t lightos_buffer_copy(lightos_buffer_t src, size_t src_offset,
                                                 lightos_buffer_t dst, size_t dst_offset,
                                                 size_t size) {
  lk_buffer_t* b = NULL;
  LK_RESOLVE(b, dst, LK_OBJ_BUFFER, "dst");
  lightos_event_t ev = NULL;
  return lk_wait_and_release(b, lightos_enqueue_copy(lk_default_queue_of(b), src, src_offset, dst,
                                                  dst_offset, size, &ev), &ev);
}

LIGHTOS_API lightos_status_t lightos_buffer_fill(lightos_buffer_t dst, size_t offset, size_t size,
                                                 const void* pattern, size_t pattern_size) {
  lk_buffer_t* b = NULL;
  LK_RESOLVE(b, dst, LK_OBJ_BUFFER, "dst");
  lightos_event_t ev = NULL;
  return lk_wait_and_release(b, lightos_enqueue_fill(lk_default_queue_of(b), dst, offset, size,
                                                  pattern, pattern_size, &ev), &ev);
}

LIGHTOS_API lightos_status_t lightos_buffer_map(lightos_buffer_t buffer, size_t offset, size_t size,
                                                void** out_ptr) {
  lk_buffer_t* b = NULL;
  LK_RESOLVE(b, buffer, LK_OBJ_BUFFER, "buffer");
  LK_CHECK_OUT(out_ptr, "out_ptr");
  lightos_status_t s = lk_check_range("buffer", b->size, offset, size);
  if (s) return s;
  if (!b->mem.host_ptr)
    return LK_FAIL(LIGHTOS_UNSUPPORTED,
                   "buffer %p is not host visible (allocate with LIGHTOS_BUFFER_HOST_VISIBLE)",
                   (void*)buffer);
  void* p = (char*)b->mem.host_ptr + b->offset + offset;
  pthread_mutex_lock(&b->map_lock);
  if (b->num_maps == b->cap_maps) {
    size_t cap = b->cap_maps ? b->cap_maps * 2 : 4;
    void** grown = realloc(b->maps, cap * sizeof *grown);
    if (!grown) {
      pthread_mutex_unlock(&b->map_lock);
      return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory recording a mapping");
    }
    b->maps = grown;
    b->cap_maps = cap;
  }
  b->maps[b->num_maps++] = p;
  pthread_mutex_unlock(&b->map_lock);
  *out_ptr = p;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_buffer_unmap(lightos_buffer_t buffer, void* ptr) {
  lk_buffer_t* b = NULL;
  LK_RESOLVE(b, buffer, LK_OBJ_BUFFER, "buffer");
  if (!ptr) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "ptr is NULL");
  pthread_mutex_lock(&b->map_lock);
  size_t i = 0;
  while (i < b->num_maps && b->maps[i] != ptr) i++;
  bool found = i < b->num_maps;
  if (found) b->maps[i] = b->maps[--b->num_maps];
  pthread_mutex_unlock(&b->map_lock);
  if (!found)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "ptr %p is not a live mapping of buffer %p (never mapped from it, or already "
                   "unmapped)",
                   ptr, (void*)buffer);
  return LIGHTOS_SUCCESS;
}
