/* The seed API: a thin convenience layer over the full API. */
#include "runtime/runtime.h"

LIGHTOS_API const char* lightos_version_string(void) { return "0.1.0"; }

LIGHTOS_API size_t lightos_dtype_size(lightos_dtype_t dtype) {
  switch (dtype) {
    case LIGHTOS_DTYPE_F32: return 4;
    case LIGHTOS_DTYPE_F64: return 8;
    case LIGHTOS_DTYPE_F16: return 2;
    case LIGHTOS_DTYPE_BF16: return 2;
    case LIGHTOS_DTYPE_I32: return 4;
    case LIGHTOS_DTYPE_I64: return 8;
    case LIGHTOS_DTYPE_U8: return 1;
    case LIGHTOS_DTYPE_BOOL: return 1;
  }
  return 0;
}

LIGHTOS_API const char* lightos_dtype_name(lightos_dtype_t dtype) {
  switch (dtype) {
    case LIGHTOS_DTYPE_F32: return "f32";
    case LIGHTOS_DTYPE_F64: return "f64";
    case LIGHTOS_DTYPE_F16: return "f16";
    case LIGHTOS_DTYPE_BF16: return "bf16";
    case LIGHTOS_DTYPE_I32: return "i32";
    case LIGHTOS_DTYPE_I64: return "i64";
    case LIGHTOS_DTYPE_U8: return "u8";
    case LIGHTOS_DTYPE_BOOL: return "bool";
  }
  return "unknown";
}

LIGHTOS_API lightos_context_t lightos_create_context(lightos_device_kind_t kind) {
  lightos_context_t c = NULL;
  return lightos_context_create(kind, &c) == LIGHTOS_SUCCESS ? c : NULL;
}

LIGHTOS_API lightos_buffer_t lightos_alloc(lightos_context_t context, size_t size) {
  lightos_buffer_t b = NULL;
  return lightos_buffer_alloc(context, size, 0, &b) == LIGHTOS_SUCCESS ? b : NULL;
}

LIGHTOS_API lightos_status_t lightos_execute(lightos_kernel_t kernel, size_t global_size,
                                             size_t local_size) {
  lk_kernel_t* k = NULL;
  LK_RESOLVE(k, kernel, LK_OBJ_KERNEL, "kernel");
  lk_queue_t* q = k->program->context->default_queue;
  lightos_event_t ev = NULL;
  size_t g[1] = {global_size}, l[1] = {local_size};
  lightos_status_t s =
      lightos_enqueue_kernel(LK_HANDLE(q), kernel, 1, g, local_size ? l : NULL, &ev);
  return s ? s : lk_queue_wait_and_release(q, ev);
}

LIGHTOS_API lightos_status_t lightos_allreduce(lightos_buffer_t sendbuf, lightos_buffer_t recvbuf,
                                               size_t count, lightos_reduce_op_t op,
                                               lightos_comm_t comm) {
  lk_buffer_t* b = NULL;
  LK_RESOLVE(b, recvbuf, LK_OBJ_BUFFER, "recvbuf");
  lk_queue_t* q = b->context->default_queue;
  lightos_status_t s = lightos_comm_allreduce(sendbuf, recvbuf, count, LIGHTOS_DTYPE_F32, op, comm,
                                              LK_HANDLE(q));
  if (s) return s;
  lightos_event_t ev = NULL;
  s = lightos_event_record(LK_HANDLE(q), &ev);
  return s ? s : lk_queue_wait_and_release(q, ev);
}
