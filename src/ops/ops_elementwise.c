/* Element-wise ops: binary, unary (+ backward), cast, contiguous, fill,
 * arange, random, and the optimiser steps.  Kernels: kernels/elementwise.cl
 * (one kernel, ew_main, built once per dtype family: f32/f16/bf16, f64,
 * integers/bool) and kernels/optim.cl.
 *
 * Dtypes (a, b and out of one op share one dtype; lightos_op_cast converts):
 *   binary add/sub/mul/div/pow: f32 f64 f16 bf16 i32 i64 u8;
 *          max/min: those and bool (max = or, min = and).
 *          Integers wrap on overflow; integer x / 0 = 0 and MIN / -1 = MIN;
 *          integer pow by repeated multiplication (wrapping), a negative
 *          exponent gives 0 except for bases 1 and -1.  Float max/min
 *          propagate NaN.  f16/bf16 compute in f32 and round once (so
 *          + - * / are correctly rounded).  Inputs broadcast (numpy rules)
 *          to out's shape.
 *   unary: every op on f32 f64 f16 bf16; neg, abs, relu also on i32 i64 u8
 *          (neg wraps; abs(MIN) = MIN; on u8 abs and relu are the identity).
 *          relu(NaN) = NaN; relu/abs backward at 0 give 0.
 *   unary_backward: f32 f64 f16 bf16; x, grad_out, grad_x of one shape.
 *   cast: every pair of the 8 dtypes: float -> int truncates and saturates
 *          (NaN -> 0), int -> int wraps, -> bool is != 0 (NaN -> true),
 *          bool -> 0/1, -> f16/bf16 rounds once to nearest even (also from
 *          f64 and 64-bit integers); the same dtype copies the bits.
 *   contiguous: any dtype (x and out of one dtype and shape; copies bits).
 *   fill, arange: every dtype; the value converts with cast semantics
 *          (arange computes start + i * step in f64 where the device has it).
 *   random: f32 f64 f16 bf16; Philox-4x32-10 keyed by the seed, element i
 *          (flattened index of out) at counter offset + i; uniform and
 *          dropout use the top 24 bits of the first word (53 bits of two
 *          words for f64); normal is Box-Muller from two uniforms with
 *          LightOS's own log and cos: the same numbers on every backend.
 *   sgd/adamw: f32, contiguous tensors of one shape (formulas in optim.cl).
 * Any strides (permuted, sliced, expanded inputs; an output may be any
 * non-self-overlapping view); out may be an input only with the identical
 * layout.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/ops_internal.h"

extern const char lk_cl_lk_math[];
extern const char lk_cl_elementwise[];
extern const char lk_cl_optim[];

static bool ew_is_float(lightos_dtype_t dt) {
  return dt == LIGHTOS_DTYPE_F32 || dt == LIGHTOS_DTYPE_F64 || dt == LIGHTOS_DTYPE_F16 ||
         dt == LIGHTOS_DTYPE_BF16;
}

/* The program of a dtype's family (see elementwise.cl). */
static lightos_status_t ew_kernel(lk_context_t* ctx, lightos_dtype_t dt, lightos_kernel_t* k) {
  int fam = dt == LIGHTOS_DTYPE_F64 ? 1 : ew_is_float(dt) ? 0 : 2;
  char opts[64];
  snprintf(opts, sizeof opts, "-DEW_FAM=%d%s", fam,
           lk_ops_deterministic(ctx) && fam < 2 ? " -DLK_DETERMINISTIC" : "");
  const char* parts[2] = {lk_cl_lk_math, lk_cl_elementwise};
  return lk_ops_kernel(ctx, parts, 2, opts, "ew_main", k);
}

/* ---- collapsed views ---------------------------------------------------------- */

typedef struct ew_view {
  int64_t n;                   /* elements */
  int rank;
  int64_t dims[LIGHTOS_MAX_DIMS];
  int64_t st[3][LIGHTOS_MAX_DIMS];
  int64_t off[3];
} ew_view_t;

/* Strides of tensor t broadcast (numpy rules) to `shape`; fails naming t. */
static lightos_status_t ew_bcast(const lightos_tensor_t* t, const char* name, uint32_t ndim,
                                 const int64_t* shape, const char* to_name, int64_t* st) {
  if (t->ndim > ndim)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "tensor '%s' has %u dims, more than '%s' (%u): it cannot broadcast to it",
                   name, t->ndim, to_name, ndim);
  uint32_t lead = ndim - t->ndim;
  for (uint32_t i = 0; i < ndim; ++i) {
    if (i < lead) {
      st[i] = 0;
      continue;
    }
    int64_t have = t->shape[i - lead];
    if (have == shape[i]) st[i] = t->strides[i - lead];
    else if (have == 1) st[i] = 0;
    else
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "tensor '%s' (dim %u of size %lld) does not broadcast to '%s' (dim %u of "
                     "size %lld)",
                     name, i - lead, (long long)have, to_name, i, (long long)shape[i]);
  }
  return LIGHTOS_SUCCESS;
}

/* Collapses `shape` (ndim dims) with per-operand strides st[k] (nops of
 * them): drops size-1 dims and merges neighbours that are contiguous in
 * every operand.  The flattened order is kept. */
static void ew_collapse(ew_view_t* v, uint32_t ndim, const int64_t* shape, int nops,
                        int64_t st[3][LIGHTOS_MAX_DIMS]) {
  int r = 0;
  v->n = 1;
  for (uint32_t i = 0; i < ndim; ++i) v->n *= shape[i];
  for (uint32_t i = 0; i < ndim; ++i) {
    if (shape[i] == 1) continue;
    bool merge = r > 0;
    for (int k = 0; k < nops && merge; ++k)
      if (v->st[k][r - 1] != st[k][i] * shape[i]) merge = false;
    if (merge) {
      v->dims[r - 1] *= shape[i];
      for (int k = 0; k < nops; ++k) v->st[k][r - 1] = st[k][i];
    } else {
      v->dims[r] = shape[i];
      for (int k = 0; k < nops; ++k) v->st[k][r] = st[k][i];
      ++r;
    }
  }
  if (r == 0) {
    v->dims[0] = 1;
    for (int k = 0; k < nops; ++k) v->st[k][0] = 0;
    r = 1;
  }
  v->rank = r;
  for (int i = r; i < LIGHTOS_MAX_DIMS; ++i) {
    v->dims[i] = 1;
    for (int k = 0; k < 3; ++k) v->st[k][i] = 0;
  }
  for (int k = nops; k < 3; ++k)
    for (int i = 0; i < LIGHTOS_MAX_DIMS; ++i) v->st[k][i] = 0;
}

/* A view of nops tensors (ts[0] the output, whose shape rules; the others
 * broadcast to it). */
static lightos_status_t ew_make_view(ew_view_t* v, int nops, const lightos_tensor_t* const* ts,
                                     const char* const* names) {
  int64_t st[3][LIGHTOS_MAX_DIMS];
  memset(v, 0, sizeof *v);
  const lightos_tensor_t* o = ts[0];
  for (int k = 0; k < nops; ++k) {
    lightos_status_t s = ew_bcast(ts[k], names[k], o->ndim, o->shape, names[0], st[k]);
    if (s) return s;
    v->off[k] = (int64_t)(ts[k]->offset / lk_dtype_bytes(ts[k]->dtype));
  }
  ew_collapse(v, o->ndim, o->shape, nops, st);
  return LIGHTOS_SUCCESS;
}

/* ---- kernel arguments ------------------------------------------------------------ */

typedef struct ew_args {
  lightos_kernel_t k;
  uint32_t i;
  lightos_status_t s;
} ew_args_t;

static void arg_buf(ew_args_t* a, const lightos_tensor_t* t) {
  if (!a->s) a->s = lightos_kernel_set_arg_buffer(a->k, a->i, t->buffer);
  a->i++;
}
static void arg_i32(ew_args_t* a, int32_t v) {
  if (!a->s) a->s = lightos_kernel_set_arg_i32(a->k, a->i, v);
  a->i++;
}
static void arg_i64(ew_args_t* a, int64_t v) {
  if (!a->s) a->s = lightos_kernel_set_arg_i64(a->k, a->i, v);
  a->i++;
}
static void arg_u64(ew_args_t* a, uint64_t v) {
  if (!a->s) a->s = lightos_kernel_set_arg_u64(a->k, a->i, v);
  a->i++;
}
static void arg_f32(ew_args_t* a, float v) {
  if (!a->s) a->s = lightos_kernel_set_arg_f32(a->k, a->i, v);
  a->i++;
}
static uint64_t bits_of_double(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

static void arg_view(ew_args_t* a, const ew_view_t* v) {
  arg_i64(a, v->n);
  arg_i32(a, v->rank);
  for (int k = 0; k < 3; ++k) arg_i64(a, v->off[k]);
  for (int i = 0; i < LIGHTOS_MAX_DIMS; ++i) arg_i64(a, v->dims[i]);
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < LIGHTOS_MAX_DIMS; ++i) arg_i64(a, v->st[k][i]);
}

enum { EW_BINARY, EW_UNARY, EW_BACKWARD, EW_COPY, EW_CAST, EW_FILL, EW_ARANGE, EW_RANDOM };

/* Runs ew_main of the program of family `fam_dt`: mode, op, tensors (a and
 * b may be NULL), the extra scalars, over the view v. */
typedef struct ew_extra {
  uint64_t u[4];
  float f[2];
} ew_extra_t;

static lightos_status_t ew_run(lk_queue_t* q, lightos_dtype_t fam_dt, int mode, int op,
                               const lightos_tensor_t* out, const lightos_tensor_t* a,
                               const lightos_tensor_t* b, const ew_extra_t* x,
                               const ew_view_t* v) {
  ew_args_t ar = {0};
  lightos_status_t s = ew_kernel(q->context, fam_dt, &ar.k);
  if (s) return s;
  arg_buf(&ar, out);
  arg_buf(&ar, a ? a : out);
  arg_buf(&ar, b ? b : out);
  arg_i32(&ar, mode);
  arg_i32(&ar, op);
  arg_i32(&ar, (int32_t)(a ? a->dtype : out->dtype));
  arg_i32(&ar, (int32_t)out->dtype);
  for (int i = 0; i < 4; ++i) arg_u64(&ar, x ? x->u[i] : 0);
  for (int i = 0; i < 2; ++i) arg_f32(&ar, x ? x->f[i] : 0.0f);
  /* elements per work-item: 1 on GPUs; runs of 4096 on the CPU backend,
   * where work-items are loops (lk_ops_local_size is 0 there) */
  int64_t per = lk_ops_local_size(q->context) ? 1 : 4096;
  arg_i64(&ar, per);
  arg_view(&ar, v);
  s = ar.s;
  if (!s) {
    size_t global = (size_t)((v->n + per - 1) / per), local = lk_ops_local_size(q->context);
    s = lightos_enqueue_kernel(LK_HANDLE(q), ar.k, 1, &global, local ? &local : NULL, NULL);
  }
  lightos_kernel_release(ar.k);
  return s;
}

/* ---- binary ------------------------------------------------------------------------ */

static const char* ew_binary_name(lightos_binary_op_t op) {
  static const char* names[] = {"?", "add", "sub", "mul", "div", "max", "min", "pow"};
  return (op >= 1 && op <= 7) ? names[op] : "?";
}

LIGHTOS_API lightos_status_t lightos_op_binary(lightos_queue_t queue, lightos_binary_op_t op,
                                               const lightos_tensor_t* a, const lightos_tensor_t* b,
                                               const lightos_tensor_t* out) {
  const lightos_tensor_t* ts[3] = {out, a, b};
  const char* names[3] = {"out", "a", "b"};
  for (int i = 0; i < 3; ++i)
    if (!ts[i]) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is NULL", names[i]);
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 3);
  if (s) return s;
  if ((int)op < LIGHTOS_BINARY_ADD || (int)op > LIGHTOS_BINARY_POW)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "op %d is not a lightos_binary_op_t", (int)op);
  for (int i = 1; i < 3; ++i)
    if (ts[i]->dtype != out->dtype)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "tensor '%s' is %s but 'out' is %s (binary ops take one dtype; convert "
                     "with lightos_op_cast)",
                     names[i], lightos_dtype_name(ts[i]->dtype), lightos_dtype_name(out->dtype));
  if (out->dtype == LIGHTOS_DTYPE_BOOL && op != LIGHTOS_BINARY_MAX && op != LIGHTOS_BINARY_MIN)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "binary %s does not take bool tensors ('out' is bool; only max and min do)",
                   ew_binary_name(op));
  ew_view_t v;
  if ((s = ew_make_view(&v, 3, ts, names))) return s;
  if ((s = lk_ops_check_writable(out, "out"))) return s;
  if ((s = lk_ops_check_overlap(out, "out", a, "a", true))) return s;
  if ((s = lk_ops_check_overlap(out, "out", b, "b", true))) return s;
  if ((s = lk_ops_device_fp64(q->context, out->dtype, "out"))) return s;
  if (v.n == 0) return LIGHTOS_SUCCESS;
  return ew_run(q, out->dtype, EW_BINARY, (int)op, out, a, b, NULL, &v);
}

/* ---- unary ----------------------------------------------------------------------------- */

static const char* ew_unary_name(lightos_unary_op_t op) {
  static const char* names[] = {"?",    "neg",     "abs",  "exp",       "log",      "sqrt", "rsqrt",
                                "tanh", "sigmoid", "relu", "gelu_tanh", "gelu_erf", "silu"};
  return (op >= 1 && op <= 12) ? names[op] : "?";
}

static lightos_status_t ew_unary_common(lightos_queue_t queue, lightos_unary_op_t op,
                                        const lightos_tensor_t* x, const lightos_tensor_t* g,
                                        const lightos_tensor_t* out, bool backward) {
  const char* oname = backward ? "grad_x" : "out";
  const lightos_tensor_t* ts[3] = {out, x, g};
  const char* names[3] = {oname, "x", "grad_out"};
  int nops = backward ? 3 : 2;
  for (int i = 0; i < nops; ++i)
    if (!ts[i]) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is NULL", names[i]);
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, nops);
  if (s) return s;
  if ((int)op < LIGHTOS_UNARY_NEG || (int)op > LIGHTOS_UNARY_SILU)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "op %d is not a lightos_unary_op_t", (int)op);
  for (int i = 1; i < nops; ++i) {
    if (ts[i]->dtype != out->dtype)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is %s but '%s' is %s", names[i],
                     lightos_dtype_name(ts[i]->dtype), oname, lightos_dtype_name(out->dtype));
    if ((s = lk_tensor_same_shape(ts[i], names[i], out, oname))) return s;
  }
  lightos_dtype_t dt = out->dtype;
  bool int_ok = op == LIGHTOS_UNARY_NEG || op == LIGHTOS_UNARY_ABS || op == LIGHTOS_UNARY_RELU;
  bool is_int = dt == LIGHTOS_DTYPE_I32 || dt == LIGHTOS_DTYPE_I64 || dt == LIGHTOS_DTYPE_U8;
  if (!ew_is_float(dt) && !(is_int && int_ok && !backward))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "unary %s%s does not take %s tensors ('%s'); it takes f32, f64, f16, bf16%s",
                   ew_unary_name(op), backward ? " backward" : "", lightos_dtype_name(dt), oname,
                   int_ok && !backward ? ", i32, i64, u8" : "");
  ew_view_t v;
  if ((s = ew_make_view(&v, nops, ts, names))) return s;
  if ((s = lk_ops_check_writable(out, oname))) return s;
  for (int i = 1; i < nops; ++i)
    if ((s = lk_ops_check_overlap(out, oname, ts[i], names[i], true))) return s;
  if ((s = lk_ops_device_fp64(q->context, dt, oname))) return s;
  if (v.n == 0) return LIGHTOS_SUCCESS;
  return ew_run(q, dt, backward ? EW_BACKWARD : EW_UNARY, (int)op, out, x, g, NULL, &v);
}

LIGHTOS_API lightos_status_t lightos_op_unary(lightos_queue_t q, lightos_unary_op_t op,
                                              const lightos_tensor_t* x, const lightos_tensor_t* out) {
  return ew_unary_common(q, op, x, NULL, out, false);
}

LIGHTOS_API lightos_status_t lightos_op_unary_backward(lightos_queue_t q, lightos_unary_op_t op,
                                                       const lightos_tensor_t* x,
                                                       const lightos_tensor_t* grad_out,
                                                       const lightos_tensor_t* grad_x) {
  return ew_unary_common(q, op, x, grad_out, grad_x, true);
}

/* ---- cast / contiguous ------------------------------------------------------------------- */

static lightos_status_t ew_copy_common(lightos_queue_t queue, const lightos_tensor_t* x,
                                       const lightos_tensor_t* out, bool cast) {
  const lightos_tensor_t* ts[2] = {out, x};
  const char* names[2] = {"out", "x"};
  for (int i = 0; i < 2; ++i)
    if (!ts[i]) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is NULL", names[i]);
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 2);
  if (s) return s;
  if (!cast && x->dtype != out->dtype)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "tensor 'x' is %s but 'out' is %s (contiguous copies one dtype; use "
                   "lightos_op_cast)",
                   lightos_dtype_name(x->dtype), lightos_dtype_name(out->dtype));
  if ((s = lk_tensor_same_shape(x, "x", out, "out"))) return s;
  ew_view_t v;
  if ((s = ew_make_view(&v, 2, ts, names))) return s;
  if ((s = lk_ops_check_writable(out, "out"))) return s;
  if ((s = lk_ops_check_overlap(out, "out", x, "x", true))) return s;
  if ((s = lk_ops_device_fp64(q->context, x->dtype, "x"))) return s;
  if ((s = lk_ops_device_fp64(q->context, out->dtype, "out"))) return s;
  if (v.n == 0) return LIGHTOS_SUCCESS;
  if (x->dtype == out->dtype) return ew_run(q, out->dtype, EW_COPY, 0, out, x, NULL, NULL, &v);
  return ew_run(q, x->dtype, EW_CAST, 0, out, x, NULL, NULL, &v);
}

LIGHTOS_API lightos_status_t lightos_op_cast(lightos_queue_t q, const lightos_tensor_t* x,
                                             const lightos_tensor_t* out) {
  return ew_copy_common(q, x, out, true);
}

LIGHTOS_API lightos_status_t lightos_op_contiguous(lightos_queue_t q, const lightos_tensor_t* x,
                                                   const lightos_tensor_t* out) {
  return ew_copy_common(q, x, out, false);
}

/* ---- fill / arange ----------------------------------------------------------------------- */

/* double -> binary16 / bfloat16 bits, round to nearest even. */
static uint16_t ew_small_float_bits(double v, int mbits, int ebits) {
  uint16_t sign = signbit(v) ? (uint16_t)0x8000 : 0;
  uint16_t expall = (uint16_t)(((1u << ebits) - 1u) << mbits);
  if (isnan(v)) return (uint16_t)(sign | expall | (1u << (mbits - 1)));
  double a = fabs(v);
  if (a == 0.0) return sign;
  int bias = (1 << (ebits - 1)) - 1;
  int emin = 1 - bias;
  if (isinf(a)) return (uint16_t)(sign | expall);
  int ex;
  frexp(a, &ex);
  int e = ex - 1;
  if (e < emin) e = emin;
  double r = rint(ldexp(a, mbits - e));
  double one = ldexp(1.0, mbits);
  if (r >= 2.0 * one) {
    r /= 2.0;
    e++;
  }
  if (e > bias) return (uint16_t)(sign | expall);
  if (r < one) return (uint16_t)(sign | (uint16_t)r);
  return (uint16_t)(sign | (uint16_t)((unsigned)(e + bias) << mbits) | (uint16_t)(r - one));
}

static int64_t ew_sat(double v, double lo, double hi, int64_t ilo, int64_t ihi) {
  if (isnan(v)) return 0;
  if (v <= lo) return ilo;
  if (v >= hi) return ihi;
  return (int64_t)v; /* truncates */
}

/* The storage bits of `value` converted to dt with cast semantics. */
static uint64_t ew_value_bits(lightos_dtype_t dt, double value) {
  switch (dt) {
    case LIGHTOS_DTYPE_F32: {
      float f = (float)value;
      uint32_t u;
      memcpy(&u, &f, 4);
      return u;
    }
    case LIGHTOS_DTYPE_F64: return bits_of_double(value);
    case LIGHTOS_DTYPE_F16: return ew_small_float_bits(value, 10, 5);
    case LIGHTOS_DTYPE_BF16: return ew_small_float_bits(value, 7, 8);
    case LIGHTOS_DTYPE_I32:
      return (uint32_t)(int32_t)ew_sat(value, -2147483648.0, 2147483647.0, INT32_MIN, INT32_MAX);
    case LIGHTOS_DTYPE_I64:
      /* 2^63 is the first double past INT64_MAX */
      return (uint64_t)ew_sat(value, -9223372036854775808.0, 9223372036854775808.0, INT64_MIN,
                              INT64_MAX);
    case LIGHTOS_DTYPE_U8: return (uint64_t)ew_sat(value, 0.0, 255.0, 0, 255);
    case LIGHTOS_DTYPE_BOOL: return value != 0.0 ? 1 : 0;
  }
  return 0;
}

static lightos_status_t ew_out_only(lightos_queue_t queue, const lightos_tensor_t* out,
                                    lk_queue_t** q, ew_view_t* v) {
  if (!out) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'out' is NULL");
  const lightos_tensor_t* ts[1] = {out};
  const char* names[1] = {"out"};
  lightos_status_t s = lk_ops_check_all(queue, q, ts, names, 1);
  if (s) return s;
  if ((s = ew_make_view(v, 1, ts, names))) return s;
  if ((s = lk_ops_check_writable(out, "out"))) return s;
  return lk_ops_device_fp64((*q)->context, out->dtype, "out");
}

LIGHTOS_API lightos_status_t lightos_op_fill(lightos_queue_t queue, const lightos_tensor_t* out,
                                             double value) {
  lk_queue_t* q;
  ew_view_t v;
  lightos_status_t s = ew_out_only(queue, out, &q, &v);
  if (s) return s;
  if (v.n == 0) return LIGHTOS_SUCCESS;
  ew_extra_t x = {{ew_value_bits(out->dtype, value), 0, 0, 0}, {0, 0}};
  return ew_run(q, out->dtype, EW_FILL, 0, out, NULL, NULL, &x, &v);
}

LIGHTOS_API lightos_status_t lightos_op_arange(lightos_queue_t queue, const lightos_tensor_t* out,
                                               double start, double step) {
  lk_queue_t* q;
  ew_view_t v;
  lightos_status_t s = ew_out_only(queue, out, &q, &v);
  if (s) return s;
  if (!isfinite(start) || !isfinite(step))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "start %g and step %g must be finite", start, step);
  if (v.n == 0) return LIGHTOS_SUCCESS;
  ew_extra_t x = {{bits_of_double(start), bits_of_double(step), 0, 0},
                  {(float)start, (float)step}};
  return ew_run(q, out->dtype, EW_ARANGE, 0, out, NULL, NULL, &x, &v);
}

/* ---- random ------------------------------------------------------------------------------ */

LIGHTOS_API lightos_status_t lightos_op_random(lightos_queue_t queue, lightos_rng_dist_t dist,
                                               uint64_t seed, uint64_t offset, double a, double b,
                                               const lightos_tensor_t* out) {
  lk_queue_t* q;
  ew_view_t v;
  lightos_status_t s = ew_out_only(queue, out, &q, &v);
  if (s) return s;
  if (!ew_is_float(out->dtype))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "tensor 'out' is %s; random takes f32, f64, f16 or bf16",
                   lightos_dtype_name(out->dtype));
  if (!isfinite(a) || !isfinite(b))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "a (%g) and b (%g) must be finite", a, b);
  switch (dist) {
    case LIGHTOS_RNG_UNIFORM:
      if (a > b)
        return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "uniform [a, b): a (%g) > b (%g)", a, b);
      break;
    case LIGHTOS_RNG_NORMAL:
      if (b < 0)
        return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "normal: stddev b (%g) is negative", b);
      break;
    case LIGHTOS_RNG_DROPOUT:
      if (a < 0 || a > 1)
        return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "dropout: probability a (%g) is not in [0, 1]",
                       a);
      b = a < 1 ? 1.0 / (1.0 - a) : 0.0;
      break;
    default:
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "dist %d is not a lightos_rng_dist_t", (int)dist);
  }
  if (v.n == 0) return LIGHTOS_SUCCESS;
  ew_extra_t x = {{seed, offset, bits_of_double(a), bits_of_double(b)}, {(float)a, (float)b}};
  return ew_run(q, out->dtype, EW_RANDOM, (int)dist, out, NULL, NULL, &x, &v);
}

/* ---- optimiser steps --------------------------------------------------------------------- */

/* Checks the optimiser tensors: f32, one shape, contiguous; a tensor the
 * step writes (bit i of `written`) overlaps no other. */
static lightos_status_t opt_check(lightos_queue_t queue, lk_queue_t** q, int n,
                                  const lightos_tensor_t* const* ts, const char* const* names,
                                  unsigned written) {
  lightos_status_t s = lk_ops_check_all(queue, q, ts, names, n);
  if (s) return s;
  for (int i = 0; i < n; ++i) {
    if (!ts[i]) continue;
    if (ts[i]->dtype != LIGHTOS_DTYPE_F32)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is %s; optimiser steps take f32",
                     names[i], lightos_dtype_name(ts[i]->dtype));
    if ((s = lk_tensor_same_shape(ts[i], names[i], ts[0], names[0]))) return s;
    if (!lightos_tensor_is_contiguous(ts[i]))
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "tensor '%s' is not contiguous (optimiser steps need contiguous tensors)",
                     names[i]);
  }
  for (int i = 0; i < n; ++i) {
    if (!ts[i] || !(written & (1u << i))) continue;
    for (int j = 0; j < n; ++j) {
      if (j == i || !ts[j]) continue;
      if ((s = lk_ops_check_overlap(ts[i], names[i], ts[j], names[j], false))) return s;
    }
  }
  return LIGHTOS_SUCCESS;
}

static lightos_status_t opt_kernel(lk_context_t* ctx, const char* name, lightos_kernel_t* k) {
  const char* parts[1] = {lk_cl_optim};
  return lk_ops_kernel(ctx, parts, 1, "", name, k);
}

static lightos_status_t opt_launch(lk_queue_t* q, ew_args_t* a, int64_t n) {
  lightos_status_t s = a->s;
  if (!s) {
    size_t global = (size_t)n, local = lk_ops_local_size(q->context);
    s = lightos_enqueue_kernel(LK_HANDLE(q), a->k, 1, &global, local ? &local : NULL, NULL);
  }
  lightos_kernel_release(a->k);
  return s;
}

static int64_t opt_off(const lightos_tensor_t* t) { return (int64_t)(t->offset / 4); }

LIGHTOS_API lightos_status_t lightos_op_sgd_step(lightos_queue_t queue, const lightos_tensor_t* param,
                                                 const lightos_tensor_t* grad,
                                                 const lightos_tensor_t* velocity, double lr,
                                                 double momentum, double weight_decay) {
  if (!param) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'param' is NULL");
  if (!grad) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'grad' is NULL");
  if (!velocity && momentum != 0.0)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "tensor 'velocity' is NULL but momentum is %g (NULL only with momentum 0)",
                   momentum);
  if (!isfinite(lr) || !isfinite(momentum) || !isfinite(weight_decay))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "lr (%g), momentum (%g) and weight_decay (%g) must "
                   "be finite", lr, momentum, weight_decay);
  const lightos_tensor_t* ts[3] = {param, grad, velocity};
  const char* names[3] = {"param", "grad", "velocity"};
  lk_queue_t* q;
  lightos_status_t s = opt_check(queue, &q, 3, ts, names, 1u | 4u);
  if (s) return s;
  int64_t n = lightos_tensor_numel(param);
  if (n == 0) return LIGHTOS_SUCCESS;
  ew_args_t ar = {0};
  if ((s = opt_kernel(q->context, "opt_sgd", &ar.k))) return s;
  arg_buf(&ar, param);
  arg_buf(&ar, grad);
  arg_buf(&ar, velocity ? velocity : param);
  arg_i64(&ar, opt_off(param));
  arg_i64(&ar, opt_off(grad));
  arg_i64(&ar, velocity ? opt_off(velocity) : 0);
  arg_i64(&ar, n);
  arg_f32(&ar, (float)lr);
  arg_f32(&ar, (float)momentum);
  arg_f32(&ar, (float)weight_decay);
  arg_i32(&ar, velocity ? 1 : 0);
  return opt_launch(q, &ar, n);
}

LIGHTOS_API lightos_status_t lightos_op_adamw_step(lightos_queue_t queue, const lightos_tensor_t* param,
                                                   const lightos_tensor_t* grad,
                                                   const lightos_tensor_t* m,
                                                   const lightos_tensor_t* v, double lr,
                                                   double beta1, double beta2, double eps,
                                                   double weight_decay, int64_t step) {
  const lightos_tensor_t* ts[4] = {param, grad, m, v};
  const char* names[4] = {"param", "grad", "m", "v"};
  for (int i = 0; i < 4; ++i)
    if (!ts[i]) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is NULL", names[i]);
  if (step < 1)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "step %lld must be >= 1", (long long)step);
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "beta1 (%g) and beta2 (%g) must be in [0, 1)",
                   beta1, beta2);
  if (!isfinite(lr) || !isfinite(weight_decay) || !(eps >= 0) || !isfinite(eps))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "lr (%g) and weight_decay (%g) must be finite, eps (%g) finite and >= 0", lr,
                   weight_decay, eps);
  lk_queue_t* q;
  lightos_status_t s = opt_check(queue, &q, 4, ts, names, 1u | 4u | 8u);
  if (s) return s;
  int64_t n = lightos_tensor_numel(param);
  if (n == 0) return LIGHTOS_SUCCESS;
  ew_args_t ar = {0};
  if ((s = opt_kernel(q->context, "opt_adamw", &ar.k))) return s;
  for (int i = 0; i < 4; ++i) arg_buf(&ar, ts[i]);
  for (int i = 0; i < 4; ++i) arg_i64(&ar, opt_off(ts[i]));
  arg_i64(&ar, n);
  arg_f32(&ar, (float)lr);
  arg_f32(&ar, (float)beta1);
  arg_f32(&ar, (float)(1.0 - beta1));
  arg_f32(&ar, (float)beta2);
  arg_f32(&ar, (float)(1.0 - beta2));
  arg_f32(&ar, (float)eps);
  arg_f32(&ar, (float)(1.0 - lr * weight_decay));
  arg_f32(&ar, (float)(1.0 - pow(beta1, (double)step)));
  arg_f32(&ar, (float)(1.0 - pow(beta2, (double)step)));
  return opt_launch(q, &ar, n);
}
