/* Kernels: lookup, checked arguments, launches. */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "runtime/runtime.h"

static void lk_kernel_destroy(lk_object_t* obj) {
  lk_kernel_t* k = (lk_kernel_t*)obj;
  if (k->args)
    for (uint32_t i = 0; i < k->sig->num_args; ++i)
      if (k->args[i].buffer) lk_object_unref(&k->args[i].buffer->obj);
  free(k->args);
  lk_object_unref(&k->program->obj);
  free(k);
}

LIGHTOS_API lightos_status_t lightos_kernel_create(lightos_program_t program, const char* name,
                                                   lightos_kernel_t* out_kernel) {
  lk_program_t* p = NULL;
  LK_RESOLVE(p, program, LK_OBJ_PROGRAM, "program");
  if (!name) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "name is NULL");
  LK_CHECK_OUT(out_kernel, "out_kernel");
  pthread_mutex_lock(&p->lock);
  bool built = p->built;
  pthread_mutex_unlock(&p->lock);
  if (!built)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "program %p is not built (call lightos_program_build)",
                   (void*)program);
  const lk_kernel_sig_t* sig = lk_kparse_find(&p->sig, name);
  if (!sig) {
    char names[256];
    size_t len = 0;
    names[0] = '\0';
    for (uint32_t i = 0; i < p->sig.num_kernels; ++i)
      lk_sbprintf(names, sizeof names, &len, "%s%s", i ? ", " : "", p->sig.kernels[i].name);
    return LK_FAIL(LIGHTOS_NOT_FOUND, "name \"%s\": no such kernel in the program (it has: %s)",
                   name, p->sig.num_kernels ? names : "none");
  }
  void* hk = NULL;
  lightos_status_t s = p->hal->vtbl->kernel_get(p->hal, sig, &hk);
  if (s) return s;
  lk_kernel_t* k = calloc(1, sizeof *k);
  lk_kernel_arg_t* args = calloc(sig->num_args ? sig->num_args : 1, sizeof *args);
  if (!k || !args) {
    free(k);
    free(args);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a kernel");
  }
  if ((s = lk_object_init(&k->obj, LK_OBJ_KERNEL, lk_kernel_destroy))) {
    free(k);
    free(args);
    return s;
  }
  lk_object_ref(&p->obj);
  k->program = p;
  k->sig = sig;
  k->hal_kernel = hk;
  k->args = args;
  *out_kernel = LK_HANDLE(k);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_kernel_retain(lightos_kernel_t kernel) {
  lk_kernel_t* k = NULL;
  LK_RESOLVE(k, kernel, LK_OBJ_KERNEL, "kernel");
  lk_object_ext_retain(&k->obj);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_kernel_release(lightos_kernel_t kernel) {
  lk_kernel_t* k = NULL;
  LK_RESOLVE(k, kernel, LK_OBJ_KERNEL, "kernel");
  lk_object_ext_release(&k->obj);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_kernel_get_arg_count(lightos_kernel_t kernel,
                                                          uint32_t* out_count) {
  lk_kernel_t* k = NULL;
  LK_RESOLVE(k, kernel, LK_OBJ_KERNEL, "kernel");
  LK_CHECK_OUT(out_count, "out_count");
  *out_count = k->sig->num_args;
  return LIGHTOS_SUCCESS;
}

static lightos_arg_kind_t lk_public_kind(lk_karg_kind_t k) {
  switch (k) {
    case LK_KARG_GLOBAL_PTR: return LIGHTOS_ARG_GLOBAL;
    case LK_KARG_CONSTANT_PTR: return LIGHTOS_ARG_CONSTANT;
    case LK_KARG_LOCAL_PTR: return LIGHTOS_ARG_LOCAL;
    case LK_KARG_SCALAR: break;
  }
  return LIGHTOS_ARG_SCALAR;
}

/* Resolves the kernel and the argument index. */
static lightos_status_t lk_kernel_arg(lightos_kernel_t kernel, uint32_t index, lk_kernel_t** out_k,
                                      const lk_karg_t** out_a) {
  lk_kernel_t* k = NULL;
  LK_RESOLVE(k, kernel, LK_OBJ_KERNEL, "kernel");
  if (index >= k->sig->num_args)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "index %u is out of range: kernel '%s' has %u argument(s)",
                   index, k->sig->name, k->sig->num_args);
  *out_k = k;
  *out_a = &k->sig->args[index];
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_kernel_get_arg_info(lightos_kernel_t kernel, uint32_t index,
                                                         lightos_arg_info_t* out_info) {
  lk_kernel_t* k = NULL;
  const lk_karg_t* a = NULL;
  lightos_status_t s = lk_kernel_arg(kernel, index, &k, &a);
  if (s) return s;
  LK_CHECK_OUT(out_info, "out_info");
  out_info->name = a->name;
  out_info->type = a->type_text;
  out_info->kind = lk_public_kind(a->kind);
  out_info->scalar_size = a->kind == LK_KARG_SCALAR ? a->scalar_size : 0;
  return LIGHTOS_SUCCESS;
}

static lightos_status_t lk_wrong_kind(const lk_kernel_t* k, uint32_t index, const lk_karg_t* a,
                                      const char* given) {
  return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                 "argument %u ('%s') of kernel '%s' has type %s; it cannot be set with %s", index,
                 a->name, k->sig->name, a->type_text, given);
}

static void lk_arg_clear(lk_kernel_arg_t* slot) {
  if (slot->buffer) lk_object_unref(&slot->buffer->obj);
  memset(slot, 0, sizeof *slot);
}

LIGHTOS_API lightos_status_t lightos_kernel_set_arg_buffer(lightos_kernel_t kernel, uint32_t index,
                                                           lightos_buffer_t buffer) {
  lk_kernel_t* k = NULL;
  const lk_karg_t* a = NULL;
  lightos_status_t s = lk_kernel_arg(kernel, index, &k, &a);
  if (s) return s;
  lk_buffer_t* b = NULL;
  LK_RESOLVE(b, buffer, LK_OBJ_BUFFER, "buffer");
  if (a->kind != LK_KARG_GLOBAL_PTR && a->kind != LK_KARG_CONSTANT_PTR)
    return lk_wrong_kind(k, index, a, "a buffer");
  if (b->context != k->program->context)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "buffer %p belongs to another context (%s) than kernel '%s' (%s)",
                   (void*)buffer, b->context->device->hal->info.uri, k->sig->name,
                   k->program->context->device->hal->info.uri);
  lk_kernel_arg_t* slot = &k->args[index];
  lk_object_ref(&b->obj);
  lk_arg_clear(slot);
  slot->buffer = b;
  slot->set = true;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_kernel_set_arg_local(lightos_kernel_t kernel, uint32_t index,
                                                          size_t bytes) {
  lk_kernel_t* k = NULL;
  const lk_karg_t* a = NULL;
  lightos_status_t s = lk_kernel_arg(kernel, index, &k, &a);
  if (s) return s;
  if (a->kind != LK_KARG_LOCAL_PTR) return lk_wrong_kind(k, index, a, "a local-memory size");
  uint64_t limit = k->program->context->device->hal->info.local_mem_bytes;
  if (bytes == 0 || bytes > limit)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "bytes %zu for local argument %u ('%s') must be in 1..%llu (the device's local "
                   "memory)",
                   bytes, index, a->name, (unsigned long long)limit);
  lk_kernel_arg_t* slot = &k->args[index];
  lk_arg_clear(slot);
  slot->local_bytes = bytes;
  slot->set = true;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_kernel_set_arg_scalar(lightos_kernel_t kernel, uint32_t index,
                                                           size_t size, const void* value) {
  lk_kernel_t* k = NULL;
  const lk_karg_t* a = NULL;
  lightos_status_t s = lk_kernel_arg(kernel, index, &k, &a);
  if (s) return s;
  if (!value) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "value is NULL");
  if (a->kind != LK_KARG_SCALAR) return lk_wrong_kind(k, index, a, "a scalar value");
  size_t want = a->scalar_size;
  if (want ? size != want : (size == 0 || size > sizeof(lk_arg_value_t)))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "size %zu does not match argument %u ('%s', %s) of kernel '%s' (%zu bytes)",
                   size, index, a->name, a->type_text, k->sig->name, want ? want : (size_t)8);
  lk_kernel_arg_t* slot = &k->args[index];
  lk_arg_clear(slot);
  memcpy(slot->value.bytes, value, size);
  slot->set = true;
  return LIGHTOS_SUCCESS;
}

/* Typed setters accept exactly the matching OpenCL scalar types. */
static lightos_status_t lk_set_typed(lightos_kernel_t kernel, uint32_t index, const void* v,
                                     size_t size, lk_kscalar_t t1, lk_kscalar_t t2,
                                     const char* setter) {
  lk_kernel_t* k = NULL;
  const lk_karg_t* a = NULL;
  lightos_status_t s = lk_kernel_arg(kernel, index, &k, &a);
  if (s) return s;
  if (a->kind != LK_KARG_SCALAR || (a->scalar != t1 && a->scalar != t2))
    return lk_wrong_kind(k, index, a, setter);
  return lightos_kernel_set_arg_scalar(kernel, index, size, v);
}

LIGHTOS_API lightos_status_t lightos_kernel_set_arg_i32(lightos_kernel_t k, uint32_t i, int32_t v) {
  return lk_set_typed(k, i, &v, 4, LK_KSCALAR_INT, LK_KSCALAR_INT, "lightos_kernel_set_arg_i32 (int)");
}
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_u32(lightos_kernel_t k, uint32_t i, uint32_t v) {
  return lk_set_typed(k, i, &v, 4, LK_KSCALAR_UINT, LK_KSCALAR_UINT, "lightos_kernel_set_arg_u32 (uint)");
}
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_i64(lightos_kernel_t k, uint32_t i, int64_t v) {
  return lk_set_typed(k, i, &v, 8, LK_KSCALAR_LONG, LK_KSCALAR_LONG, "lightos_kernel_set_arg_i64 (long)");
}
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_u64(lightos_kernel_t k, uint32_t i, uint64_t v) {
  return lk_set_typed(k, i, &v, 8, LK_KSCALAR_ULONG, LK_KSCALAR_SIZE_T,
                      "lightos_kernel_set_arg_u64 (ulong/size_t)");
}
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_f32(lightos_kernel_t k, uint32_t i, float v) {
  return lk_set_typed(k, i, &v, 4, LK_KSCALAR_FLOAT, LK_KSCALAR_FLOAT, "lightos_kernel_set_arg_f32 (float)");
}
LIGHTOS_API lightos_status_t lightos_kernel_set_arg_f64(lightos_kernel_t k, uint32_t i, double v) {
  return lk_set_typed(k, i, &v, 8, LK_KSCALAR_DOUBLE, LK_KSCALAR_DOUBLE,
                      "lightos_kernel_set_arg_f64 (double)");
}

/* Checks the range and fills the launch fields of a command. */
static lightos_status_t lk_check_range_args(const lk_kernel_t* k, const lightos_device_info_t* in,
                                            uint32_t work_dim, const size_t* global,
                                            const size_t* local, lk_cmd_t* c) {
  if (work_dim < 1 || work_dim > 3)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "work_dim %u is not 1, 2 or 3", work_dim);
  if (!global) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "global_size is NULL");
  size_t total = 1, group = 1;
  for (uint32_t d = 0; d < 3; ++d) {
    size_t g = d < work_dim ? global[d] : 1;
    size_t l = d < work_dim && local ? local[d] : (local ? 1 : 0);
    if (g == 0)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "global_size[%u] is 0", d);
    if (!lk_mul_ok(total, g, &total) || total > ((size_t)1 << 48))
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "global size %zu x ... is too large (at most 2^48 items)",
                     g);
    if (local && l == 0) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "local_size[%u] is 0", d);
    if (local && !lk_mul_ok(group, l, &group))
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "local_size[%u] = %zu is too large", d, l);
    c->u.launch.global[d] = g;
    c->u.launch.local[d] = l;
  }
  if (local && group > in->max_work_group_size)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "local_size product %zu exceeds the device's max_work_group_size %zu "
                   "(kernel '%s')",
                   group, in->max_work_group_size, k->sig->name);
  c->u.launch.work_dim = work_dim;
  return LIGHTOS_SUCCESS;
}

/* Captures the argument values into the command. */
static lightos_status_t lk_capture_args(lk_kernel_t* k, const lightos_device_info_t* in, lk_cmd_t* c) {
  uint32_t n = k->sig->num_args;
  c->u.launch.num_args = n;
  size_t local_total = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const lk_kernel_arg_t* a = &k->args[i];
    if (!a->set)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "argument %u ('%s') of kernel '%s' is not set", i,
                     k->sig->args[i].name, k->sig->name);
    lk_arg_value_t* v = &c->u.launch.values[i];
    if (a->buffer) {
      v->ptr = (char*)a->buffer->mem.device_ptr + a->buffer->offset;
      c->u.launch.mems[i].mem = &a->buffer->mem;
      c->u.launch.mems[i].offset = a->buffer->offset;
      c->u.launch.mems[i].size = a->buffer->size;
    } else if (a->local_bytes) {
      v->local_offset = local_total;
      local_total += lk_align_up(a->local_bytes, 64);
    } else {
      *v = a->value;
    }
    c->u.launch.arg_ptrs[i] = v;
  }
  if (local_total > in->local_mem_bytes)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "kernel '%s': local arguments need %zu bytes, the device has %llu", k->sig->name,
                   local_total, (unsigned long long)in->local_mem_bytes);
  c->u.launch.local_mem_bytes = local_total;
  return LIGHTOS_SUCCESS;
}

/* Fills a launch command whose argument arrays are set (values, arg_ptrs,
 * mems, launch_bufs): the range, the captured arguments, the kernel and its
 * buffers (references pending). */
static lightos_status_t lk_fill_launch(lk_kernel_t* k, const lightos_device_info_t* in,
                                       uint32_t work_dim, const size_t* global_size,
                                       const size_t* local_size, lk_cmd_t* c) {
  c->kind = LK_CMD_KERNEL;
  lightos_status_t s = lk_check_range_args(k, in, work_dim, global_size, local_size, c);
  if (!s) s = lk_capture_args(k, in, c);
  if (s) return s;
  c->kernel = k;
  c->u.launch.hal_kernel = k->hal_kernel;
  c->u.launch.uses_item_blocks = k->sig->uses_item_blocks;
  for (uint32_t i = 0; i < k->sig->num_args; ++i)
    if (k->args[i].buffer) c->launch_bufs[c->num_launch_bufs++] = k->args[i].buffer;
  /* The references: taken by the queue from its stock where it can (the
   * caller's own references keep everything alive until then). */
  c->refs_pending = true;
  return LIGHTOS_SUCCESS;
}

/* A launch nobody waits for, issued at once by a backend that can
 * (launch_now): the command and its arrays live on this stack, nothing is
 * allocated or kept.  *issued false: the queue cannot now (the caller
 * submits a command block instead). */
static lightos_status_t lk_launch_now(lk_queue_t* q, lk_kernel_t* k,
                                      const lightos_device_info_t* in, uint32_t work_dim,
                                      const size_t* global_size, const size_t* local_size,
                                      bool* issued) {
  lk_arg_value_t values[LK_KPARSE_MAX_ARGS];
  void* arg_ptrs[LK_KPARSE_MAX_ARGS];
  lk_hal_arg_mem_t mems[LK_KPARSE_MAX_ARGS];
  lk_buffer_t* bufs[LK_KPARSE_MAX_ARGS];
  lk_cmd_t c;
  memset(&c, 0, sizeof c);
  c.u.launch.values = values;
  c.u.launch.arg_ptrs = arg_ptrs;
  c.u.launch.mems = mems;
  c.launch_bufs = bufs;
  *issued = false;
  lightos_status_t s = lk_fill_launch(k, in, work_dim, global_size, local_size, &c);
  return s ? s : q->hal->vtbl->launch_now(q->hal, &c, issued);
}

/* The command references the kernel and each buffer argument, so that a
 * later set_arg or release cannot free memory a queued launch uses. */
LIGHTOS_API lightos_status_t lightos_enqueue_kernel(lightos_queue_t queue, lightos_kernel_t kernel,
                                                    uint32_t work_dim, const size_t* global_size,
                                                    const size_t* local_size,
                                                    lightos_event_t* out_event) {
  lk_queue_t* q = NULL;
  lk_kernel_t* k = NULL;
  LK_RESOLVE(q, queue, LK_OBJ_QUEUE, "queue");
  LK_RESOLVE(k, kernel, LK_OBJ_KERNEL, "kernel");
  if (q->context != k->program->context)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "kernel '%s' belongs to another context (%s) than the queue (%s)", k->sig->name,
                   k->program->context->device->hal->info.uri, q->context->device->hal->info.uri);
  const lightos_device_info_t* in = &q->context->device->hal->info;
  if (!out_event && q->hal->vtbl->launch_now) {
    bool issued = false;
    lightos_status_t s = lk_launch_now(q, k, in, work_dim, global_size, local_size, &issued);
    if (issued || s) return s;
  }
  /* One block per launch: the command, then its argument arrays and the
   * list of buffers it keeps alive (the dispatch path stays short); small
   * blocks are recycled by queue.c rather than malloc'ed and freed. */
  uint32_t n = k->sig->num_args, nb = 0;
  for (uint32_t i = 0; i < n; ++i) nb += k->args[i].buffer != NULL;
  size_t head = lk_align_up(sizeof(lk_cmd_t), 16);
  size_t bytes = head + n * (sizeof(lk_arg_value_t) + sizeof(void*) + sizeof(lk_hal_arg_mem_t)) +
                 nb * sizeof(lk_buffer_t*);
  /* queue.c: a zeroed launch command of `bytes` bytes (inline_arrays set),
   * from its pool of command blocks; NULL when out of memory. */
  lk_cmd_t* c = lk_cmd_new_launch(bytes);
  if (!c) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a command");
  char* at = (char*)c + head;
  c->u.launch.values = (lk_arg_value_t*)(void*)at;
  at += n * sizeof(lk_arg_value_t);
  c->u.launch.arg_ptrs = (void**)(void*)at;
  at += n * sizeof(void*);
  c->u.launch.mems = (lk_hal_arg_mem_t*)(void*)at;
  at += n * sizeof(lk_hal_arg_mem_t);
  c->launch_bufs = (lk_buffer_t**)(void*)at;
  lightos_status_t s = lk_fill_launch(k, in, work_dim, global_size, local_size, c);
  if (s) {
    lk_cmd_free_unsubmitted(c);
    return s;
  }
  if (!q->hal->vtbl->takes_refs) lk_cmd_take_refs(c);
  return lk_queue_submit(q, c, out_event);
}
