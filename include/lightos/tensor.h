/* Tensors and tensor operations.
 *
 * A tensor is a plain descriptor (a value, like DLPack's DLTensor): a
 * buffer, a byte offset into it, a dtype, up to LIGHTOS_MAX_DIMS dims and
 * strides in elements (any sign is not allowed: strides are >= 0; a zero
 * stride broadcasts).  Views (reshape, permute, slice, expand) make new
 * descriptors over the same buffer and never copy.  The descriptor does not
 * own its buffer: lightos_tensor_alloc gives a tensor whose buffer the caller
 * releases with lightos_tensor_free (or lightos_buffer_release).
 *
 * Operations are enqueued on a queue of the context that owns the tensors'
 * buffers and run asynchronously (stream-ordered).  Every op checks its
 * arguments (dtypes, shapes, broadcasting, devices, aliasing where not
 * allowed) and fails with LIGHTOS_INVALID_ARGUMENT and a message naming the
 * tensor and the bad dimension or dtype, before anything is queued.
 *
 * Each op has one portable kernel, so it runs on every backend that runs
 * kernels; backends may register native fast paths (OpenBLAS on the CPU,
 * cuBLAS on CUDA, CLBlast on OpenCL).  In a deterministic context
 * (LIGHTOS_CONTEXT_DETERMINISTIC or LIGHTOS_DETERMINISTIC=1) every op uses a
 * fixed accumulation order and LightOS's own elementary functions, and gives
 * the same bits on every backend; docs/ops.md lists each op and its paths.
 *
 * Thread-safety: descriptors are values; ops may be enqueued from any
 * thread (the queue orders them).
 */
#ifndef LIGHTOS_TENSOR_H
#define LIGHTOS_TENSOR_H

#include "lightos/buffer.h"
#include "lightos/dtype.h"
#include "lightos/queue.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LIGHTOS_MAX_DIMS 8

typedef struct lightos_tensor {
  lightos_buffer_t buffer;
  size_t offset;                       /* bytes from the buffer's start */
  lightos_dtype_t dtype;
  uint32_t ndim;                       /* 0 = scalar (one element)       */
  int64_t shape[LIGHTOS_MAX_DIMS];
  int64_t strides[LIGHTOS_MAX_DIMS];   /* in elements, >= 0              */
} lightos_tensor_t;

/* ---- descriptors and views ------------------------------------------------ */

/* A contiguous (row-major) tensor over an existing buffer. Checks that the
 * extent fits the buffer. */
LIGHTOS_API lightos_status_t lightos_tensor_make(lightos_buffer_t buffer, size_t offset,
                                                 lightos_dtype_t dtype, uint32_t ndim,
                                                 const int64_t* shape, lightos_tensor_t* out);
/* Allocates a contiguous tensor. */
LIGHTOS_API lightos_status_t lightos_tensor_alloc(lightos_context_t context, lightos_dtype_t dtype,
                                                  uint32_t ndim, const int64_t* shape,
                                                  lightos_tensor_t* out);
/* Releases the tensor's buffer (for tensors from lightos_tensor_alloc). */
LIGHTOS_API lightos_status_t lightos_tensor_free(lightos_tensor_t* tensor);
LIGHTOS_API int64_t lightos_tensor_numel(const lightos_tensor_t* t);
LIGHTOS_API bool lightos_tensor_is_contiguous(const lightos_tensor_t* t);
/* View with a new shape; one dim may be -1.  Fails when the layout cannot
 * be expressed without a copy (use lightos_op_contiguous first). */
LIGHTOS_API lightos_status_t lightos_tensor_reshape(const lightos_tensor_t* t, uint32_t ndim,
                                                    const int64_t* shape, lightos_tensor_t* out);
/* View with dims reordered: out.shape[i] = t.shape[perm[i]]. */
LIGHTOS_API lightos_status_t lightos_tensor_permute(const lightos_tensor_t* t, const uint32_t* perm,
                                                    lightos_tensor_t* out);
/* View of [start, stop) with step >= 1 along dim; negative start/stop count
 * from the end (Python rules, clamped). */
LIGHTOS_API lightos_status_t lightos_tensor_slice(const lightos_tensor_t* t, uint32_t dim,
                                                  int64_t start, int64_t stop, int64_t step,
                                                  lightos_tensor_t* out);
/* Broadcast view to `shape` (numpy rules; stride 0 on expanded dims). */
LIGHTOS_API lightos_status_t lightos_tensor_expand(const lightos_tensor_t* t, uint32_t ndim,
                                                   const int64_t* shape, lightos_tensor_t* out);

/* ---- ops ------------------------------------------------------------------
 * All ops: `queue` orders the work; outputs are written fully (never read
 * unless the op says so, e.g. GEMM with beta != 0); an output may not
 * overlap an input unless the op says in-place is allowed (elementwise ops
 * allow out == an input with identical layout). */

typedef enum lightos_binary_op {
  LIGHTOS_BINARY_ADD = 1, LIGHTOS_BINARY_SUB, LIGHTOS_BINARY_MUL, LIGHTOS_BINARY_DIV,
  LIGHTOS_BINARY_MAX, LIGHTOS_BINARY_MIN, LIGHTOS_BINARY_POW
} lightos_binary_op_t;

typedef enum lightos_unary_op {
  LIGHTOS_UNARY_NEG = 1, LIGHTOS_UNARY_ABS, LIGHTOS_UNARY_EXP, LIGHTOS_UNARY_LOG,
  LIGHTOS_UNARY_SQRT, LIGHTOS_UNARY_RSQRT, LIGHTOS_UNARY_TANH, LIGHTOS_UNARY_SIGMOID,
  LIGHTOS_UNARY_RELU, LIGHTOS_UNARY_GELU_TANH, LIGHTOS_UNARY_GELU_ERF, LIGHTOS_UNARY_SILU
} lightos_unary_op_t;

typedef enum lightos_reduce_kind {
  LIGHTOS_REDUCE_SUM = 1, LIGHTOS_REDUCE_MEAN, LIGHTOS_REDUCE_MAX, LIGHTOS_REDUCE_MIN
} lightos_reduce_kind_t;

/* out = a (op) b, numpy broadcasting of a and b to out's shape. */
LIGHTOS_API lightos_status_t lightos_op_binary(lightos_queue_t q, lightos_binary_op_t op,
                                               const lightos_tensor_t* a, const lightos_tensor_t* b,
                                               const lightos_tensor_t* out);
LIGHTOS_API lightos_status_t lightos_op_unary(lightos_queue_t q, lightos_unary_op_t op,
                                              const lightos_tensor_t* x, const lightos_tensor_t* out);
/* grad_x = d op(x)/dx * grad_out. */
LIGHTOS_API lightos_status_t lightos_op_unary_backward(lightos_queue_t q, lightos_unary_op_t op,
                                                       const lightos_tensor_t* x,
                                                       const lightos_tensor_t* grad_out,
                                                       const lightos_tensor_t* grad_x);
/* Reduction over the dims whose bit is set in `axes_mask`; out has those
 * dims of size 1 (keepdim) or removed — the shape of `out` decides. */
LIGHTOS_API lightos_status_t lightos_op_reduce(lightos_queue_t q, lightos_reduce_kind_t kind,
                                               const lightos_tensor_t* x, uint32_t axes_mask,
                                               const lightos_tensor_t* out);
/* Index (i64) of the max along one dim (first on ties). */
LIGHTOS_API lightos_status_t lightos_op_argmax(lightos_queue_t q, const lightos_tensor_t* x,
                                               uint32_t dim, const lightos_tensor_t* out);
LIGHTOS_API lightos_status_t lightos_op_softmax(lightos_queue_t q, const lightos_tensor_t* x,
                                                uint32_t dim, bool log, const lightos_tensor_t* out);
/* grad_x from y = softmax(x) (or log_softmax when log) and grad_y. */
LIGHTOS_API lightos_status_t lightos_op_softmax_backward(lightos_queue_t q,
                                                         const lightos_tensor_t* y,
                                                         const lightos_tensor_t* grad_y, uint32_t dim,
                                                         bool log, const lightos_tensor_t* grad_x);
/* Normalises over the last dim. weight/bias may be NULL. mean and rstd
 * (optional, shape = x without its last dim, f32) are saved for backward. */
LIGHTOS_API lightos_status_t lightos_op_layernorm(lightos_queue_t q, const lightos_tensor_t* x,
                                                  const lightos_tensor_t* weight,
                                                  const lightos_tensor_t* bias, double eps,
                                                  const lightos_tensor_t* out,
                                                  const lightos_tensor_t* mean,
                                                  const lightos_tensor_t* rstd);
LIGHTOS_API lightos_status_t lightos_op_layernorm_backward(
    lightos_queue_t q, const lightos_tensor_t* x, const lightos_tensor_t* weight,
    const lightos_tensor_t* mean, const lightos_tensor_t* rstd, const lightos_tensor_t* grad_out,
    const lightos_tensor_t* grad_x, const lightos_tensor_t* grad_weight,
    const lightos_tensor_t* grad_bias);
LIGHTOS_API lightos_status_t lightos_op_rmsnorm(lightos_queue_t q, const lightos_tensor_t* x,
                                                const lightos_tensor_t* weight, double eps,
                                                const lightos_tensor_t* out,
                                                const lightos_tensor_t* rstd);
LIGHTOS_API lightos_status_t lightos_op_rmsnorm_backward(
    lightos_queue_t q, const lightos_tensor_t* x, const lightos_tensor_t* weight,
    const lightos_tensor_t* rstd, const lightos_tensor_t* grad_out, const lightos_tensor_t* grad_x,
    const lightos_tensor_t* grad_weight);
/* Mean cross-entropy of logits [N, C] against i64 targets [N] into a
 * scalar; backward gives grad_logits = (softmax - onehot) * grad_loss / N. */
LIGHTOS_API lightos_status_t lightos_op_cross_entropy(lightos_queue_t q,
                                                      const lightos_tensor_t* logits,
                                                      const lightos_tensor_t* targets,
                                                      const lightos_tensor_t* loss);
LIGHTOS_API lightos_status_t lightos_op_cross_entropy_backward(
    lightos_queue_t q, const lightos_tensor_t* logits, const lightos_tensor_t* targets,
    const lightos_tensor_t* grad_loss, const lightos_tensor_t* grad_logits);
/* out[i, :] = table[indices[i], :]; backward scatter-adds grad rows into
 * grad_table (fixed order: deterministic). */
LIGHTOS_API lightos_status_t lightos_op_embedding(lightos_queue_t q, const lightos_tensor_t* table,
                                                  const lightos_tensor_t* indices,
                                                  const lightos_tensor_t* out);
LIGHTOS_API lightos_status_t lightos_op_embedding_backward(lightos_queue_t q,
                                                           const lightos_tensor_t* indices,
                                                           const lightos_tensor_t* grad_out,
                                                           const lightos_tensor_t* grad_table);
/* Element-wise conversion between any dtypes (round to nearest even;
 * float->int truncates and saturates, NaN -> 0). Also a contiguous copy
 * when dtypes match. */
LIGHTOS_API lightos_status_t lightos_op_cast(lightos_queue_t q, const lightos_tensor_t* x,
                                             const lightos_tensor_t* out);
LIGHTOS_API lightos_status_t lightos_op_contiguous(lightos_queue_t q, const lightos_tensor_t* x,
                                                   const lightos_tensor_t* out);
LIGHTOS_API lightos_status_t lightos_op_fill(lightos_queue_t q, const lightos_tensor_t* out,
                                             double value);
/* out[i] = start + i * step (flattened order). */
LIGHTOS_API lightos_status_t lightos_op_arange(lightos_queue_t q, const lightos_tensor_t* out,
                                               double start, double step);

/* Counter-based RNG: Philox-4x32-10 keyed by `seed`, element i draws from
 * counter (offset + i); the same numbers on every backend. */
typedef enum lightos_rng_dist {
  LIGHTOS_RNG_UNIFORM = 1,   /* [a, b)                                      */
  LIGHTOS_RNG_NORMAL = 2,    /* mean a, stddev b (Box-Muller)               */
  LIGHTOS_RNG_DROPOUT = 3    /* mask: 0 with probability a, else 1/(1-a)    */
} lightos_rng_dist_t;
LIGHTOS_API lightos_status_t lightos_op_random(lightos_queue_t q, lightos_rng_dist_t dist,
                                               uint64_t seed, uint64_t offset, double a, double b,
                                               const lightos_tensor_t* out);

/* C = alpha * op(A) @ op(B) + beta * C, op = transpose when trans_*.
 * A [.., M, K] (or [.., K, M] transposed), B [.., K, N], C [.., M, N];
 * leading (batch) dims broadcast.  f32, f64, f16, bf16 (f16/bf16 accumulate
 * in f32).  tf32 only with LIGHTOS_ALLOW_TF32=1 on devices that have it. */
LIGHTOS_API lightos_status_t lightos_op_gemm(lightos_queue_t q, bool trans_a, bool trans_b,
                                             double alpha, const lightos_tensor_t* a,
                                             const lightos_tensor_t* b, double beta,
                                             const lightos_tensor_t* c);

/* Optimiser steps, in place on param (and state tensors), f32.
 * SGD: v = momentum*v + grad (+ weight_decay*param); param -= lr*v.
 * AdamW (decoupled weight decay), step >= 1 for bias correction. */
LIGHTOS_API lightos_status_t lightos_op_sgd_step(lightos_queue_t q, const lightos_tensor_t* param,
                                                 const lightos_tensor_t* grad,
                                                 const lightos_tensor_t* velocity, double lr,
                                                 double momentum, double weight_decay);
LIGHTOS_API lightos_status_t lightos_op_adamw_step(lightos_queue_t q, const lightos_tensor_t* param,
                                                   const lightos_tensor_t* grad,
                                                   const lightos_tensor_t* m,
                                                   const lightos_tensor_t* v, double lr,
                                                   double beta1, double beta2, double eps,
                                                   double weight_decay, int64_t step);

/* conv2d, NCHW, weight [Cout, Cin/groups, KH, KW] (groups = 1 in this
 * release), bias [Cout] or NULL; im2col + GEMM. */
typedef struct lightos_conv2d_params {
  int32_t stride[2], padding[2], dilation[2];
} lightos_conv2d_params_t;
LIGHTOS_API lightos_status_t lightos_op_conv2d(lightos_queue_t q, const lightos_tensor_t* x,
                                               const lightos_tensor_t* weight,
                                               const lightos_tensor_t* bias,
                                               const lightos_conv2d_params_t* p,
                                               const lightos_tensor_t* out);
LIGHTOS_API lightos_status_t lightos_op_conv2d_backward(
    lightos_queue_t q, const lightos_tensor_t* x, const lightos_tensor_t* weight,
    const lightos_tensor_t* grad_out, const lightos_conv2d_params_t* p,
    const lightos_tensor_t* grad_x, const lightos_tensor_t* grad_weight,
    const lightos_tensor_t* grad_bias);

#ifdef __cplusplus
}
#endif
#endif
