/* Communicators.  This release implements groups of one rank (the
 * collectives are then copies); multi-rank groups come with the
 * collectives module (docs/collectives.md). */
#include <stdlib.h>

#include "runtime/runtime.h"

typedef struct lk_comm {
  lk_object_t obj;
  lk_context_t* context;  /* referenced */
  uint32_t rank, size;
} lk_comm_t;

static void lk_comm_destroy(lk_object_t* obj) {
  lk_comm_t* c = (lk_comm_t*)obj;
  lk_object_unref(&c->context->obj);
  free(c);
}

LIGHTOS_API lightos_status_t lightos_comm_init_all(uint32_t ncontexts,
                                                   const lightos_context_t* contexts,
                                                   lightos_comm_t* out_comms) {
  if (ncontexts == 0) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "ncontexts is 0");
  if (!contexts) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "contexts is NULL");
  LK_CHECK_OUT(out_comms, "out_comms");
  if (ncontexts > 1)
    return LK_FAIL(LIGHTOS_UNSUPPORTED,
                   "ncontexts %u: multi-rank communicators are not in this release yet "
                   "(groups of one rank only)",
                   ncontexts);
  lk_context_t* ctx = NULL;
  LK_RESOLVE(ctx, contexts[0], LK_OBJ_CONTEXT, "contexts[0]");
  lk_comm_t* c = calloc(1, sizeof *c);
  if (!c) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a communicator");
  lightos_status_t s = lk_object_init(&c->obj, LK_OBJ_COMM, lk_comm_destroy);
  if (s) {
    free(c);
    return s;
  }
  lk_object_ref(&ctx->obj);
  c->context = ctx;
  c->rank = 0;
  c->size = 1;
  out_comms[0] = LK_HANDLE(c);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_comm_destroy(lightos_comm_t comm) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  lk_object_ext_release(&c->obj);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_comm_rank(lightos_comm_t comm, uint32_t* out_rank) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  LK_CHECK_OUT(out_rank, "out_rank");
  *out_rank = c->rank;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_comm_size(lightos_comm_t comm, uint32_t* out_size) {
  lk_comm_t* c = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  LK_CHECK_OUT(out_size, "out_size");
  *out_size = c->size;
  return LIGHTOS_SUCCESS;
}

static bool lk_op_valid(lightos_reduce_op_t op) {
  return op >= LIGHTOS_OP_SUM && op <= LIGHTOS_OP_AVG;
}

LIGHTOS_API lightos_status_t lightos_comm_allreduce(lightos_buffer_t send, lightos_buffer_t recv,
                                                    size_t count, lightos_dtype_t dtype,
                                                    lightos_reduce_op_t op, lightos_comm_t comm,
                                                    lightos_queue_t queue) {
  lk_comm_t* c = NULL;
  lk_buffer_t *bs = NULL, *br = NULL;
  LK_RESOLVE(c, comm, LK_OBJ_COMM, "comm");
  LK_RESOLVE(bs, send, LK_OBJ_BUFFER, "send");
  LK_RESOLVE(br, recv, LK_OBJ_BUFFER, "recv");
  size_t esize = lightos_dtype_size(dtype);
  if (!esize) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "dtype %d is not a lightos_dtype_t", (int)dtype);
  if (!lk_op_valid(op)) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "op %d is not a lightos_reduce_op_t", (int)op);
  if (count == 0) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "count is 0");
  size_t bytes;
  if (__builtin_mul_overflow(count, esize, &bytes) || bytes > bs->size || bytes > br->size)
    return LK_FAIL(LIGHTOS_OUT_OF_RANGE,
                   "count %zu of %s (%zu bytes each) does not fit send (%zu bytes) and recv (%zu bytes)",
                   count, lightos_dtype_name(dtype), esize, bs->size, br->size);
  if (bs->context != c->context || br->context != c->context)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "%s buffer is not in the communicator's context (%s)",
                   bs->context != c->context ? "send" : "recv", c->context->device->hal->info.uri);
  lightos_queue_t q = LK_HANDLE(c->context->default_queue);
  if (queue) {
    lk_queue_t* uq = NULL;
    LK_RESOLVE(uq, queue, LK_OBJ_QUEUE, "queue");
    if (uq->context != c->context)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "queue belongs to context %s, not the communicator's (%s)",
                     uq->context->device->hal->info.uri, c->context->device->hal->info.uri);
    q = queue;
  }
  /* One rank: every reduction of a single contribution is the value itself
   * (avg divides by 1). */
  if (bs == br || (bs->mem.device_ptr == br->mem.device_ptr && bs->mem.native == br->mem.native &&
                   bs->offset == br->offset))
    return LIGHTOS_SUCCESS;
  return lightos_enqueue_copy(q, send, 0, recv, 0, bytes, NULL);
}
