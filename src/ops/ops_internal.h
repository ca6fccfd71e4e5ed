/* Shared internals of the tensor ops (src/ops/).
 *
 * Each op is: validate (lk_tensor_check ...), pick a path (a native fast
 * path registered by the backend, else the portable kernel), and enqueue.
 * Portable kernels live in src/ops/kernels/NAME.cl (embedded at build time,
 * like the preludes) and are built once per context and kernel variant
 * (dtype, deterministic mode ...) through lk_ops_kernel(), which caches
 * the built programs in the context.
 */
#ifndef LIGHTOS_OPS_INTERNAL_H
#define LIGHTOS_OPS_INTERNAL_H

#include "lightos/lightos.h"
#include "runtime/runtime.h"

/* Resolves and checks a tensor: buffer handle, dtype, ndim, non-negative
 * shape and strides, and that the extent fits the buffer.  `name` is the
 * argument name used in messages ("a", "grad_out").  *out_ctx (optional)
 * gets its context. */
lightos_status_t lk_tensor_check(const lightos_tensor_t* t, const char* name,
                                 lk_context_t** out_ctx);

/* Resolves the queue and checks every tensor in `ts` (n of them, names in
 * `names`, NULL entries skipped) belongs to the queue's context. */
lightos_status_t lk_ops_check_all(lightos_queue_t queue, lk_queue_t** out_q,
                                  const lightos_tensor_t* const* ts, const char* const* names,
                                  int n);

/* True when the context runs ops deterministically. */
bool lk_ops_deterministic(const lk_context_t* ctx);

/* A kernel `kernel_name` of the program built from the concatenation of
 * `parts` (nparts strings, e.g. {lk_cl_lk_math, lk_cl_elementwise}) with
 * `options` in `ctx`.  Programs are cached per context by (the part
 * pointers, options), so every part must have static storage (the embedded
 * .cl files, lk_cl_<name>, generated from src/ops/kernels/<name>.cl).
 * The caller owns the returned kernel (lightos_kernel_release after
 * enqueueing; arguments are captured at enqueue). */
lightos_status_t lk_ops_kernel(lk_context_t* ctx, const char* const* parts, int nparts,
                               const char* options, const char* kernel_name,
                               lightos_kernel_t* out);

/* `out` must not overlap `in` (unless `identical_ok` and the two have the
 * identical layout: in place). */
lightos_status_t lk_ops_check_overlap(const lightos_tensor_t* out, const char* out_name,
                                      const lightos_tensor_t* in, const char* in_name,
                                      bool identical_ok);
/* `t` must be writable: no two elements at one address (no zero strides). */
lightos_status_t lk_ops_check_writable(const lightos_tensor_t* t, const char* name);
/* f64 tensors need a device with fp64. */
lightos_status_t lk_ops_device_fp64(lk_context_t* ctx, lightos_dtype_t dt, const char* name);
/* Work-group size for op kernels: fixed off the CPU (one compiled variant
 * per kernel), 0 (runtime's choice) on the CPU backend. */
size_t lk_ops_local_size(const lk_context_t* ctx);

/* `t` must have exactly `ref`'s shape; the message names both tensors. */
lightos_status_t lk_tensor_same_shape(const lightos_tensor_t* t, const char* name,
                                      const lightos_tensor_t* ref, const char* ref_name);

/* Byte size of a dtype, 0 when unknown. */
size_t lk_dtype_bytes(lightos_dtype_t dt);

#endif
