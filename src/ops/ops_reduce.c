/* Reductions and row-wise ops (kernels/reduce.cl, one program per dtype).
 *
 * Dtypes:
 *   reduce sum/max/min: f32 f64 f16 bf16 i32 i64 u8 (integer sums wrap);
 *          mean: f32 f64 f16 bf16.  out has x's dtype.  Empty reductions:
 *          sum = 0, mean = NaN, max/min fail (LIGHTOS_INVALID_ARGUMENT).
 *          Float max/min propagate NaN.
 *   argmax: f32 f64 f16 bf16 i32 i64 u8 -> i64 (first maximum; NaN is the
 *          maximum); an empty dim fails.
 *   softmax, layernorm, rmsnorm, cross_entropy (+ backward) and
 *          embedding_backward: f32 f64 f16 bf16 (f16/bf16 compute in f32).
 *          layernorm mean/rstd and rmsnorm rstd are f32.
 *   embedding: any table dtype; indices i64 or i32.  An index outside
 *          [0, V) gives a row of NaN (0 for integer tables) forward and is
 *          skipped backward.  cross_entropy: targets i64; a target outside
 *          [0, C) gives a NaN loss (and NaN gradient row): kernels cannot
 *          raise errors, so only dtypes and shapes are checked.
 *
 * Order: every output element is computed by one work-item (or, for
 * large reductions, one 64-item work-group with a fixed tree) in a fixed
 * order; no atomics.  The choice depends on the shape and strides only, so
 * a given input gives the same bits on every device (in deterministic
 * contexts, where exp/log come from the numerics library).
 *
 * Layouts: any strides.  Row-wise ops view each tensor as [outer, len,
 * inner] around the op's dim; a tensor whose outer (or inner) dims do not
 * collapse into one stride is copied to a contiguous temporary first (an
 * output is written through one and copied back).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/ops_internal.h"

extern const char lk_cl_lk_math[];
extern const char lk_cl_reduce[];

#define RD_WG 64 /* as in reduce.cl */
#define RD_EB 64

static bool rd_is_float(lightos_dtype_t dt) {
  return dt == LIGHTOS_DTYPE_F32 || dt == LIGHTOS_DTYPE_F64 || dt == LIGHTOS_DTYPE_F16 ||
         dt == LIGHTOS_DTYPE_BF16;
}

/* The program of a dtype's family (see reduce.cl). */
static lightos_status_t rd_kernel(lk_context_t* ctx, lightos_dtype_t dt, const char* name,
                                  lightos_kernel_t* k) {
  int fam = dt == LIGHTOS_DTYPE_F64 ? 1 : rd_is_float(dt) ? 0 : 2;
  char opts[64];
  snprintf(opts, sizeof opts, "-DRD_FAM=%d%s", fam,
           lk_ops_deterministic(ctx) && fam < 2 ? " -DLK_DETERMINISTIC" : "");
  const char* parts[2] = {lk_cl_lk_math, lk_cl_reduce};
  return lk_ops_kernel(ctx, parts, 2, opts, name, k);
}

static lightos_status_t rd_need_float(const lightos_tensor_t* t, const char* name, const char* op) {
  if (!rd_is_float(t->dtype))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is %s; %s takes f32, f64, f16 or bf16",
                   name, lightos_dtype_name(t->dtype), op);
  return LIGHTOS_SUCCESS;
}

static lightos_status_t rd_same_dtype(const lightos_tensor_t* t, const char* name,
                                      const lightos_tensor_t* ref, const char* ref_name) {
  if (t->dtype != ref->dtype)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is %s but '%s' is %s", name,
                   lightos_dtype_name(t->dtype), ref_name, lightos_dtype_name(ref->dtype));
  return LIGHTOS_SUCCESS;
}

/* t must have shape ref.shape[:ndim-1] (or that with a trailing 1). */
static lightos_status_t rd_rows_shape(const lightos_tensor_t* t, const char* name,
                                      const lightos_tensor_t* ref, const char* ref_name) {
  uint32_t n = ref->ndim - 1;
  bool ok = (t->ndim == n) || (t->ndim == ref->ndim && t->shape[n] == 1);
  for (uint32_t i = 0; ok && i < n; ++i) ok = t->shape[i] == ref->shape[i];
  if (!ok)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "tensor '%s' must have the shape of '%s' without its last dim (%u dims)",
                   name, ref_name, n);
  return LIGHTOS_SUCCESS;
}

static lightos_status_t rd_vec_shape(const lightos_tensor_t* t, const char* name, int64_t n,
                                     const char* what) {
  if (t->ndim != 1 || t->shape[0] != n)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' must be 1-D of size %lld (%s)", name,
                   (long long)n, what);
  return LIGHTOS_SUCCESS;
}

static int64_t rd_elem_off(const lightos_tensor_t* t) {
  return (int64_t)(t->offset / lk_dtype_bytes(t->dtype));
}

/* ---- kernel arguments ------------------------------------------------------- */

typedef struct rd_args {
  lightos_kernel_t k;
  uint32_t i;
  lightos_status_t s;
} rd_args_t;

static void arg_buf(rd_args_t* a, lightos_buffer_t b) {
  if (!a->s) a->s = lightos_kernel_set_arg_buffer(a->k, a->i, b);
  a->i++;
}
static void arg_i32(rd_args_t* a, int32_t v) {
  if (!a->s) a->s = lightos_kernel_set_arg_i32(a->k, a->i, v);
  a->i++;
}
static void arg_i64(rd_args_t* a, int64_t v) {
  if (!a->s) a->s = lightos_kernel_set_arg_i64(a->k, a->i, v);
  a->i++;
}
static void arg_u64(rd_args_t* a, uint64_t v) {
  if (!a->s) a->s = lightos_kernel_set_arg_u64(a->k, a->i, v);
  a->i++;
}
static void arg_f32(rd_args_t* a, float v) {
  if (!a->s) a->s = lightos_kernel_set_arg_f32(a->k, a->i, v);
  a->i++;
}

/* local NULL: the ops' fixed work-group size (lk_ops_local_size). */
static lightos_status_t rd_launch(lk_queue_t* q, rd_args_t* a, uint32_t dims, const size_t* global,
                                  const size_t* local) {
  size_t fixed[2] = {lk_ops_local_size(q->context), 1};
  if (!local && fixed[0]) local = fixed;
  lightos_status_t s = a->s;
  if (!s) s = lightos_enqueue_kernel(LK_HANDLE(q), a->k, dims, global, local, NULL);
  lightos_kernel_release(a->k);
  a->k = NULL;
  return s;
}

/* ---- views and temporaries ----------------------------------------------------- */

/* Collapses dims [a, b) of t into one stride; false when they do not. */
static bool rd_collapse_range(const lightos_tensor_t* t, uint32_t a, uint32_t b, int64_t* st) {
  int64_t expect = -1;
  *st = 0;
  for (uint32_t i = b; i-- > a;) {
    if (t->shape[i] == 1) continue;
    if (expect < 0) {
      *st = t->strides[i];
      expect = t->strides[i] * t->shape[i];
    } else {
      if (t->strides[i] != expect) return false;
      expect *= t->shape[i];
    }
  }
  return true;
}

/* t as [outer, len, inner] around dim (dim == ndim: [all, -, -]). */
typedef struct rd_v3 {
  int64_t off, so, sd, si;
} rd_v3_t;

static bool rd_view3(const lightos_tensor_t* t, uint32_t dim, rd_v3_t* v) {
  v->off = rd_elem_off(t);
  v->sd = dim < t->ndim ? t->strides[dim] : 0;
  if (!rd_collapse_range(t, 0, dim < t->ndim ? dim : t->ndim, &v->so)) return false;
  if (dim < t->ndim && !rd_collapse_range(t, dim + 1, t->ndim, &v->si)) return false;
  if (dim >= t->ndim) v->si = 0;
  return true;
}

#define RD_MAX_TMP 8

/* Temporaries of one op call: inputs copied to contiguous tensors before
 * the kernels, outputs written to contiguous tensors and copied back. */
typedef struct rd_tmps {
  lk_queue_t* q;
  int n;
  lightos_tensor_t t[RD_MAX_TMP];
  const lightos_tensor_t* back[RD_MAX_TMP]; /* copy t[i] into back[i] at the end */
} rd_tmps_t;

static lightos_status_t rd_tmp_alloc(rd_tmps_t* c, const lightos_tensor_t* like,
                                     lightos_dtype_t dt, lightos_tensor_t** out) {
  if (c->n == RD_MAX_TMP) return LK_FAIL(LIGHTOS_INTERNAL, "too many temporaries");
  lightos_tensor_t* t = &c->t[c->n];
  lightos_status_t s =
      lightos_tensor_alloc(LK_HANDLE(c->q->context), dt, like->ndim, like->shape, t);
  if (s) return s;
  c->back[c->n++] = NULL;
  *out = t;
  return LIGHTOS_SUCCESS;
}

/* *use = t when t views as [outer, len, inner] around dim, else a
 * contiguous copy of it. */
static lightos_status_t rd_use_in(rd_tmps_t* c, const lightos_tensor_t* t, uint32_t dim,
                                  const lightos_tensor_t** use, rd_v3_t* v) {
  *use = t;
  if (!t || rd_view3(t, dim, v)) return LIGHTOS_SUCCESS;
  lightos_tensor_t* tmp;
  lightos_status_t s = rd_tmp_alloc(c, t, t->dtype, &tmp);
  if (s) return s;
  if ((s = lightos_op_contiguous(LK_HANDLE(c->q), t, tmp))) return s;
  rd_view3(tmp, dim, v);
  *use = tmp;
  return LIGHTOS_SUCCESS;
}

static lightos_status_t rd_use_out(rd_tmps_t* c, const lightos_tensor_t* t, uint32_t dim,
                                   const lightos_tensor_t** use, rd_v3_t* v) {
  *use = t;
  if (!t || rd_view3(t, dim, v)) return LIGHTOS_SUCCESS;
  lightos_tensor_t* tmp;
  lightos_status_t s = rd_tmp_alloc(c, t, t->dtype, &tmp);
  if (s) return s;
  c->back[c->n - 1] = t;
  rd_view3(tmp, dim, v);
  *use = tmp;
  return LIGHTOS_SUCCESS;
}

/* Copies outputs back (when s is success) and frees the temporaries (the
 * queued commands keep their buffers until they have run). */
static lightos_status_t rd_tmps_end(rd_tmps_t* c, lightos_status_t s) {
  for (int i = 0; i < c->n; ++i) {
    if (!s && c->back[i]) {
      lightos_tensor_t view = c->t[i];
      s = lightos_op_contiguous(LK_HANDLE(c->q), &view, c->back[i]);
    }
    lightos_tensor_free(&c->t[i]);
  }
  c->n = 0;
  return s;
}

/* ---- reduce / argmax ------------------------------------------------------------ */

/* Drops size-1 dims and merges neighbours contiguous in every operand. */
static int rd_collapse(int n, const int64_t* shape, int nops, int64_t st[2][LIGHTOS_MAX_DIMS],
                       int64_t* oshape, int64_t ost[2][LIGHTOS_MAX_DIMS]) {
  int r = 0;
  for (int i = 0; i < n; ++i) {
    if (shape[i] == 1) continue;
    bool merge = r > 0;
    for (int k = 0; k < nops && merge; ++k)
      if (ost[k][r - 1] != st[k][i] * shape[i]) merge = false;
    if (merge) {
      oshape[r - 1] *= shape[i];
      for (int k = 0; k < nops; ++k) ost[k][r - 1] = st[k][i];
    } else {
      oshape[r] = shape[i];
      for (int k = 0; k < nops; ++k) ost[k][r] = st[k][i];
      ++r;
    }
  }
  return r;
}

/* The kept and reduced dims of x for `mask`, checked against out's shape. */
typedef struct rd_plan {
  int nk, nr;
  int64_t dims[LIGHTOS_MAX_DIMS], xs[LIGHTOS_MAX_DIMS], os[LIGHTOS_MAX_DIMS];
  int64_t nout, count;
} rd_plan_t;

static lightos_status_t rd_make_plan(const lightos_tensor_t* x, uint32_t mask,
                                     const lightos_tensor_t* out, bool collapse_reduced,
                                     rd_plan_t* p) {
  uint32_t nred = 0;
  for (uint32_t i = 0; i < x->ndim; ++i)
    if (mask & (1u << i)) nred++;
  bool keep = out->ndim == x->ndim;
  if (!keep && out->ndim != x->ndim - nred)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "tensor 'out' has %u dims; reducing %u of the %u dims of 'x' needs %u (or %u "
                   "with keepdim)",
                   out->ndim, nred, x->ndim, x->ndim - nred, x->ndim);
  int64_t kshape[LIGHTOS_MAX_DIMS], kst[2][LIGHTOS_MAX_DIMS];
  int64_t rshape[LIGHTOS_MAX_DIMS], rst[2][LIGHTOS_MAX_DIMS];
  int nk = 0, nr = 0;
  uint32_t oi = 0;
  p->nout = 1;
  p->count = 1;
  for (uint32_t i = 0; i < x->ndim; ++i) {
    bool red = (mask >> i) & 1u;
    if (red) {
      if (keep && out->shape[i] != 1)
        return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                       "tensor 'out' has size %lld in reduced dim %u (keepdim needs 1)",
                       (long long)out->shape[i], i);
      rshape[nr] = x->shape[i];
      rst[0][nr] = x->strides[i];
      nr++;
      p->count *= x->shape[i];
      if (keep) oi++;
      continue;
    }
    if (out->shape[oi] != x->shape[i])
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "tensor 'out' has size %lld in dim %u but 'x' has %lld in its dim %u",
                     (long long)out->shape[oi], oi, (long long)x->shape[i], i);
    kshape[nk] = x->shape[i];
    kst[0][nk] = x->strides[i];
    kst[1][nk] = out->strides[oi];
    nk++;
    p->nout *= x->shape[i];
    oi++;
  }
  int64_t cst[2][LIGHTOS_MAX_DIMS];
  p->nk = rd_collapse(nk, kshape, 2, kst, p->dims, cst);
  for (int i = 0; i < p->nk; ++i) {
    p->xs[i] = cst[0][i];
    p->os[i] = cst[1][i];
  }
  if (collapse_reduced) {
    p->nr = rd_collapse(nr, rshape, 1, rst, p->dims + p->nk, cst);
    for (int i = 0; i < p->nr; ++i) p->xs[p->nk + i] = cst[0][i];
  } else {
    p->nr = nr;
    for (int i = 0; i < nr; ++i) {
      p->dims[p->nk + i] = rshape[i];
      p->xs[p->nk + i] = rst[0][i];
    }
  }
  if (p->count == 0) { /* keep the dims; the kernel loops zero times */
    p->nr = 0;
  }
  for (int i = p->nk + p->nr; i < LIGHTOS_MAX_DIMS; ++i) p->dims[i] = 1, p->xs[i] = 0;
  for (int i = p->nk; i < LIGHTOS_MAX_DIMS; ++i) p->os[i] = 0;
  return LIGHTOS_SUCCESS;
}

static lightos_status_t rd_run_plan(lk_queue_t* q, bool wg, int kind, const rd_plan_t* p,
                                    lightos_buffer_t xbuf, lightos_dtype_t dtx, int64_t ox,
                                    lightos_buffer_t obuf, lightos_dtype_t dto, int64_t oo) {
  rd_args_t a = {0};
  lightos_status_t s = rd_kernel(q->context, dtx, wg ? "rd_reduce_wg" : "rd_reduce", &a.k);
  if (s) return s;
  arg_buf(&a, obuf);
  arg_buf(&a, xbuf);
  arg_i32(&a, kind);
  arg_i32(&a, (int32_t)dtx);
  arg_i32(&a, (int32_t)dto);
  /* outputs per work-item (rd_reduce): 1 on GPUs, up to 16 neighbours on
   * the CPU backend (lk_ops_local_size 0), where work-items are loops */
  int64_t per = (!wg && lk_ops_local_size(q->context) == 0) ? 16 : 1;
  arg_i64(&a, per);
  arg_i64(&a, p->nout);
  arg_i64(&a, p->count);
  arg_i32(&a, p->nk);
  arg_i32(&a, p->nr);
  arg_i64(&a, ox);
  arg_i64(&a, oo);
  for (int i = 0; i < LIGHTOS_MAX_DIMS; ++i) arg_i64(&a, p->dims[i]);
  for (int i = 0; i < LIGHTOS_MAX_DIMS; ++i) arg_i64(&a, p->xs[i]);
  for (int i = 0; i < LIGHTOS_MAX_DIMS; ++i) arg_i64(&a, p->os[i]);
  if (wg) {
    size_t global = (size_t)p->nout * RD_WG, local = RD_WG;
    return rd_launch(q, &a, 1, &global, &local);
  }
  size_t global = (size_t)((p->nout + per - 1) / per);
  return rd_launch(q, &a, 1, &global, NULL);
}

static const char* rd_kind_name(lightos_reduce_kind_t k) {
  static const char* names[] = {"?", "sum", "mean", "max", "min"};
  return (k >= 1 && k <= 4) ? names[k] : "?";
}

static bool rd_wg_ok(lk_queue_t* q) {
  return q->context->device->hal->info.max_work_group_size >= RD_WG;
}

LIGHTOS_API lightos_status_t lightos_op_reduce(lightos_queue_t queue, lightos_reduce_kind_t kind,
                                               const lightos_tensor_t* x, uint32_t axes_mask,
                                               const lightos_tensor_t* out) {
  const lightos_tensor_t* ts[2] = {x, out};
  const char* names[2] = {"x", "out"};
  for (int i = 0; i < 2; ++i)
    if (!ts[i]) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is NULL", names[i]);
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 2);
  if (s) return s;
  if ((int)kind < LIGHTOS_REDUCE_SUM || (int)kind > LIGHTOS_REDUCE_MIN)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "kind %d is not a lightos_reduce_kind_t", (int)kind);
  if ((s = rd_same_dtype(out, "out", x, "x"))) return s;
  lightos_dtype_t dt = x->dtype;
  if (dt == LIGHTOS_DTYPE_BOOL || (kind == LIGHTOS_REDUCE_MEAN && !rd_is_float(dt)))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "reduce %s does not take %s tensors ('x')%s",
                   rd_kind_name(kind), lightos_dtype_name(dt),
                   kind == LIGHTOS_REDUCE_MEAN ? "; mean takes f32, f64, f16, bf16" : "");
  if (x->ndim < 32 && (axes_mask >> x->ndim) != 0)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "axes_mask 0x%x names dims past the %u dims of tensor 'x'", axes_mask, x->ndim);
  rd_plan_t p;
  if ((s = rd_make_plan(x, axes_mask, out, true, &p))) return s;
  if (p.count == 0 && p.nout > 0 && (kind == LIGHTOS_REDUCE_MAX || kind == LIGHTOS_REDUCE_MIN))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "reduce %s over an empty set: tensor 'x' has size 0 in a reduced dim",
                   rd_kind_name(kind));
  if ((s = lk_ops_check_writable(out, "out"))) return s;
  if ((s = lk_ops_check_overlap(out, "out", x, "x", false))) return s;
  if ((s = lk_ops_device_fp64(q->context, dt, "x"))) return s;
  if (p.nout == 0) return LIGHTOS_SUCCESS;
  /* Few outputs with long contiguous runs to reduce: a work-group per
   * output element (a choice made from the shape and strides only, so
   * every device takes the same one and sums in the same order). */
  int64_t inner = p.nr > 0 ? p.dims[p.nk + p.nr - 1] : 1;
  int64_t ist = p.nr > 0 ? p.xs[p.nk + p.nr - 1] : 0;
  bool wg = inner >= 1024 && ist == 1 && p.nout <= 1024 && rd_wg_ok(q);
  return rd_run_plan(q, wg, (int)kind, &p, x->buffer, dt, rd_elem_off(x), out->buffer, dt,
                     rd_elem_off(out));
}

LIGHTOS_API lightos_status_t lightos_op_argmax(lightos_queue_t queue, const lightos_tensor_t* x,
                                               uint32_t dim, const lightos_tensor_t* out) {
  const lightos_tensor_t* ts[2] = {x, out};
  const char* names[2] = {"x", "out"};
  for (int i = 0; i < 2; ++i)
    if (!ts[i]) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is NULL", names[i]);
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 2);
  if (s) return s;
  if (dim >= x->ndim)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "dim %u is out of range (tensor 'x' has %u dims)",
                   dim, x->ndim);
  if (x->dtype == LIGHTOS_DTYPE_BOOL)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "argmax does not take bool tensors ('x')");
  if (out->dtype != LIGHTOS_DTYPE_I64)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'out' is %s; argmax writes i64",
                   lightos_dtype_name(out->dtype));
  rd_plan_t p;
  if ((s = rd_make_plan(x, 1u << dim, out, false, &p))) return s;
  if (p.count == 0 && p.nout > 0)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "argmax over dim %u of size 0 of tensor 'x'", dim);
  if ((s = lk_ops_check_writable(out, "out"))) return s;
  if ((s = lk_ops_check_overlap(out, "out", x, "x", false))) return s;
  if ((s = lk_ops_device_fp64(q->context, x->dtype, "x"))) return s;
  if (p.nout == 0) return LIGHTOS_SUCCESS;
  return rd_run_plan(q, false, 5, &p, x->buffer, x->dtype, rd_elem_off(x), out->buffer,
                     LIGHTOS_DTYPE_I64, rd_elem_off(out));
}

/* ---- the row and column kernels ------------------------------------------------------ */

/* Up to 6 tensors (NULL: unused) with their views (rows: offset, outer,
 * along-row, inner strides; cols: offset, row, column strides). */
typedef struct rd_six {
  const lightos_tensor_t* t[6];
  rd_v3_t v[6];
} rd_six_t;

static lightos_status_t rd_run_six(lk_queue_t* q, bool rows_kernel, int mode, lightos_dtype_t dt,
                                   int flags, int64_t n0, int64_t n1, int64_t n2, double eps,
                                   const rd_six_t* six, uint32_t dims, const size_t* global) {
  rd_args_t a = {0};
  lightos_status_t s = rd_kernel(q->context, dt, rows_kernel ? "rd_rows" : "rd_cols", &a.k);
  if (s) return s;
  lightos_buffer_t dummy = NULL;
  for (int i = 0; i < 6 && !dummy; ++i)
    if (six->t[i]) dummy = six->t[i]->buffer;
  for (int i = 0; i < 6; ++i) arg_buf(&a, six->t[i] ? six->t[i]->buffer : dummy);
  arg_i32(&a, mode);
  arg_i32(&a, (int32_t)dt);
  arg_i32(&a, flags);
  arg_i64(&a, n0);
  arg_i64(&a, n1);
  arg_i64(&a, n2);
  if (rows_kernel) {
    arg_f32(&a, (float)eps);
    uint64_t bits;
    memcpy(&bits, &eps, sizeof bits);
    arg_u64(&a, bits);
  }
  for (int i = 0; i < 6; ++i) {
    const rd_v3_t* v = &six->v[i];
    bool on = six->t[i] != NULL;
    arg_i64(&a, on ? v->off : 0);
    arg_i64(&a, on ? v->so : 0);
    arg_i64(&a, on ? v->sd : 0);
    if (rows_kernel) arg_i64(&a, on ? v->si : 0);
  }
  return rd_launch(q, &a, dims, global, NULL);
}

/* A vector [D] as a row view: (offset, 0, stride, 0). */
static rd_v3_t rd_vec_view(const lightos_tensor_t* t) {
  rd_v3_t v = {0, 0, 0, 0};
  if (t) {
    v.off = rd_elem_off(t);
    v.sd = t->strides[0];
  }
  return v;
}

/* ---- softmax ------------------------------------------------------------------------- */

static void rd_outer_inner(const lightos_tensor_t* t, uint32_t dim, int64_t* outer, int64_t* len,
                           int64_t* inner) {
  *outer = 1;
  *inner = 1;
  for (uint32_t i = 0; i < dim; ++i) *outer *= t->shape[i];
  for (uint32_t i = dim + 1; i < t->ndim; ++i) *inner *= t->shape[i];
  *len = t->shape[dim];
}

LIGHTOS_API lightos_status_t lightos_op_softmax(lightos_queue_t queue, const lightos_tensor_t* x,
                                                uint32_t dim, bool log, const lightos_tensor_t* out) {
  const lightos_tensor_t* ts[2] = {x, out};
  const char* names[2] = {"x", "out"};
  for (int i = 0; i < 2; ++i)
    if (!ts[i]) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is NULL", names[i]);
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 2);
  if (s) return s;
  if ((s = rd_need_float(x, "x", "softmax"))) return s;
  if ((s = rd_same_dtype(out, "out", x, "x"))) return s;
  if ((s = lk_tensor_same_shape(out, "out", x, "x"))) return s;
  if (dim >= x->ndim)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "dim %u is out of range (tensor 'x' has %u dims)",
                   dim, x->ndim);
  if ((s = lk_ops_check_writable(out, "out"))) return s;
  if ((s = lk_ops_check_overlap(out, "out", x, "x", true))) return s;
  if ((s = lk_ops_device_fp64(q->context, x->dtype, "x"))) return s;
  if (lightos_tensor_numel(x) == 0) return LIGHTOS_SUCCESS;
  int64_t outer, len, inner;
  rd_outer_inner(x, dim, &outer, &len, &inner);
  rd_tmps_t c = {q, 0, {{0}}, {0}};
  rd_six_t six;
  memset(&six, 0, sizeof six);
  if (!(s = rd_use_in(&c, x, dim, &six.t[1], &six.v[1])) &&
      !(s = rd_use_out(&c, out, dim, &six.t[0], &six.v[0]))) {
    size_t global = (size_t)(outer * inner);
    s = rd_run_six(q, true, 0, x->dtype, log ? 1 : 0, outer * inner, len, inner, 0, &six, 1,
                   &global);
  }
  return rd_tmps_end(&c, s);
}

LIGHTOS_API lightos_status_t lightos_op_softmax_backward(lightos_queue_t queue,
                                                         const lightos_tensor_t* y,
                                                         const lightos_tensor_t* grad_y, uint32_t dim,
                                                         bool log, const lightos_tensor_t* grad_x) {
  const lightos_tensor_t* ts[3] = {y, grad_y, grad_x};
  const char* names[3] = {"y", "grad_y", "grad_x"};
  for (int i = 0; i < 3; ++i)
    if (!ts[i]) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is NULL", names[i]);
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 3);
  if (s) return s;
  if ((s = rd_need_float(y, "y", "softmax_backward"))) return s;
  for (int i = 1; i < 3; ++i) {
    if ((s = rd_same_dtype(ts[i], names[i], y, "y"))) return s;
    if ((s = lk_tensor_same_shape(ts[i], names[i], y, "y"))) return s;
  }
  if (dim >= y->ndim)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "dim %u is out of range (tensor 'y' has %u dims)",
                   dim, y->ndim);
  if ((s = lk_ops_check_writable(grad_x, "grad_x"))) return s;
  if ((s = lk_ops_check_overlap(grad_x, "grad_x", y, "y", true))) return s;
  if ((s = lk_ops_check_overlap(grad_x, "grad_x", grad_y, "grad_y", true))) return s;
  if ((s = lk_ops_device_fp64(q->context, y->dtype, "y"))) return s;
  if (lightos_tensor_numel(y) == 0) return LIGHTOS_SUCCESS;
  int64_t outer, len, inner;
  rd_outer_inner(y, dim, &outer, &len, &inner);
  rd_tmps_t c = {q, 0, {{0}}, {0}};
  rd_six_t six;
  memset(&six, 0, sizeof six);
  if (!(s = rd_use_in(&c, y, dim, &six.t[1], &six.v[1])) &&
      !(s = rd_use_in(&c, grad_y, dim, &six.t[2], &six.v[2])) &&
      !(s = rd_use_out(&c, grad_x, dim, &six.t[0], &six.v[0]))) {
    size_t global = (size_t)(outer * inner);
    s = rd_run_six(q, true, 1, y->dtype, log ? 1 : 0, outer * inner, len, inner, 0, &six, 1,
                   &global);
  }
  return rd_tmps_end(&c, s);
}

/* ---- layernorm / rmsnorm ------------------------------------------------------------- */

static lightos_status_t rd_check_stat(const lightos_tensor_t* t, const char* name,
                                      const lightos_tensor_t* x) {
  if (!t) return LIGHTOS_SUCCESS;
  if (t->dtype != LIGHTOS_DTYPE_F32)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is %s; saved statistics are f32", name,
                   lightos_dtype_name(t->dtype));
  return rd_rows_shape(t, name, x, "x");
}

/* Per-row statistics: every dim collapses into one stride. */
static lightos_status_t rd_use_stat(rd_tmps_t* c, const lightos_tensor_t* t, bool out,
                                    const lightos_tensor_t** use, rd_v3_t* v) {
  if (!t) {
    *use = NULL;
    return LIGHTOS_SUCCESS;
  }
  return out ? rd_use_out(c, t, t->ndim, use, v) : rd_use_in(c, t, t->ndim, use, v);
}

static lightos_status_t rd_norm_fwd(lightos_queue_t queue, bool rms, const lightos_tensor_t* x,
                                    const lightos_tensor_t* weight, const lightos_tensor_t* bias,
                                    double eps, const lightos_tensor_t* out,
                                    const lightos_tensor_t* mean, const lightos_tensor_t* rstd) {
  const char* op = rms ? "rmsnorm" : "layernorm";
  const lightos_tensor_t* ts[6] = {x, weight, bias, out, mean, rstd};
  const char* names[6] = {"x", "weight", "bias", "out", "mean", "rstd"};
  if (!x) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'x' is NULL");
  if (!out) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'out' is NULL");
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 6);
  if (s) return s;
  if ((s = rd_need_float(x, "x", op))) return s;
  if (x->ndim < 1)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'x' is a scalar; %s needs >= 1 dim", op);
  if (!isfinite(eps) || eps < 0)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "eps %g must be finite and >= 0", eps);
  int64_t D = x->shape[x->ndim - 1];
  if ((s = rd_same_dtype(out, "out", x, "x")) || (s = lk_tensor_same_shape(out, "out", x, "x"))) return s;
  for (int i = 1; i < 3; ++i) {
    if (!ts[i]) continue;
    if ((s = rd_same_dtype(ts[i], names[i], x, "x"))) return s;
    if ((s = rd_vec_shape(ts[i], names[i], D, "the last dim of 'x'"))) return s;
  }
  if ((s = rd_check_stat(mean, "mean", x)) || (s = rd_check_stat(rstd, "rstd", x))) return s;
  for (int i = 3; i < 6; ++i) {
    if (!ts[i]) continue;
    if ((s = lk_ops_check_writable(ts[i], names[i]))) return s;
    for (int j = 0; j < 6; ++j) {
      if (j == i || !ts[j]) continue;
      if ((s = lk_ops_check_overlap(ts[i], names[i], ts[j], names[j], i == 3 && j == 0)))
        return s;
    }
  }
  if ((s = lk_ops_device_fp64(q->context, x->dtype, "x"))) return s;
  int64_t rows = 1;
  for (uint32_t i = 0; i + 1 < x->ndim; ++i) rows *= x->shape[i];
  if (rows == 0) return LIGHTOS_SUCCESS;
  uint32_t last = x->ndim - 1;
  rd_tmps_t c = {q, 0, {{0}}, {0}};
  rd_six_t six;
  memset(&six, 0, sizeof six);
  /* layernorm: t0 out, t1 x, t2 w, t3 b, t4 mean, t5 rstd; rmsnorm: no b, mean */
  six.t[2] = weight;
  six.v[2] = rd_vec_view(weight);
  if (!rms) {
    six.t[3] = bias;
    six.v[3] = rd_vec_view(bias);
  }
  if (!(s = rd_use_in(&c, x, last, &six.t[1], &six.v[1])) &&
      !(s = rd_use_out(&c, out, last, &six.t[0], &six.v[0])) &&
      !(s = rd_use_stat(&c, rms ? NULL : mean, true, &six.t[4], &six.v[4])) &&
      !(s = rd_use_stat(&c, rstd, true, &six.t[5], &six.v[5]))) {
    int flags = (weight ? 1 : 0) | (!rms && bias ? 2 : 0) | (six.t[4] ? 4 : 0) |
                (six.t[5] ? 8 : 0);
    size_t global = (size_t)rows;
    s = rd_run_six(q, true, rms ? 4 : 2, x->dtype, flags, rows, D, 1, eps, &six, 1, &global);
  }
  return rd_tmps_end(&c, s);
}

LIGHTOS_API lightos_status_t lightos_op_layernorm(lightos_queue_t q, const lightos_tensor_t* x,
                                                  const lightos_tensor_t* weight,
                                                  const lightos_tensor_t* bias, double eps,
                                                  const lightos_tensor_t* out,
                                                  const lightos_tensor_t* mean,
                                                  const lightos_tensor_t* rstd) {
  return rd_norm_fwd(q, false, x, weight, bias, eps, out, mean, rstd);
}

LIGHTOS_API lightos_status_t lightos_op_rmsnorm(lightos_queue_t q, const lightos_tensor_t* x,
                                                const lightos_tensor_t* weight, double eps,
                                                const lightos_tensor_t* out,
                                                const lightos_tensor_t* rstd) {
  return rd_norm_fwd(q, true, x, weight, NULL, eps, out, NULL, rstd);
}

static lightos_status_t rd_norm_bwd(lightos_queue_t queue, bool rms, const lightos_tensor_t* x,
                                    const lightos_tensor_t* weight, const lightos_tensor_t* mean,
                                    const lightos_tensor_t* rstd, const lightos_tensor_t* grad_out,
                                    const lightos_tensor_t* grad_x,
                                    const lightos_tensor_t* grad_weight,
                                    const lightos_tensor_t* grad_bias) {
  const char* op = rms ? "rmsnorm_backward" : "layernorm_backward";
  const lightos_tensor_t* ts[8] = {x, weight, mean, rstd, grad_out, grad_x, grad_weight, grad_bias};
  const char* names[8] = {"x",        "weight", "mean",        "rstd",
                          "grad_out", "grad_x", "grad_weight", "grad_bias"};
  if (!x) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'x' is NULL");
  if (!rms && !mean) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'mean' is NULL");
  if (!rstd) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'rstd' is NULL");
  if (!grad_out) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'grad_out' is NULL");
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 8);
  if (s) return s;
  if ((s = rd_need_float(x, "x", op))) return s;
  if (x->ndim < 1)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'x' is a scalar; %s needs >= 1 dim", op);
  int64_t D = x->shape[x->ndim - 1];
  if ((s = rd_check_stat(mean, "mean", x)) || (s = rd_check_stat(rstd, "rstd", x))) return s;
  const int vec[3] = {1, 6, 7}, full[2] = {4, 5};
  for (int k = 0; k < 3; ++k) {
    int i = vec[k];
    if (!ts[i]) continue;
    if ((s = rd_same_dtype(ts[i], names[i], x, "x"))) return s;
    if ((s = rd_vec_shape(ts[i], names[i], D, "the last dim of 'x'"))) return s;
  }
  for (int k = 0; k < 2; ++k) {
    int i = full[k];
    if (!ts[i]) continue;
    if ((s = rd_same_dtype(ts[i], names[i], x, "x")) || (s = lk_tensor_same_shape(ts[i], names[i], x, "x")))
      return s;
  }
  for (int i = 5; i < 8; ++i) {
    if (!ts[i]) continue;
    if ((s = lk_ops_check_writable(ts[i], names[i]))) return s;
    for (int j = 0; j < 8; ++j) {
      if (j == i || !ts[j]) continue;
      /* grad_x may be grad_out or x (the column kernel runs first) */
      bool same_ok = i == 5 && (j == 4 || j == 0);
      if ((s = lk_ops_check_overlap(ts[i], names[i], ts[j], names[j], same_ok))) return s;
    }
  }
  if ((s = lk_ops_device_fp64(q->context, x->dtype, "x"))) return s;
  int64_t rows = 1;
  for (uint32_t i = 0; i + 1 < x->ndim; ++i) rows *= x->shape[i];
  uint32_t last = x->ndim - 1;
  bool do_rows = grad_x && rows > 0 && D > 0;
  bool do_cols = (grad_weight || (!rms && grad_bias)) && D > 0;
  if (!do_rows && !do_cols) return LIGHTOS_SUCCESS;
  rd_tmps_t c = {q, 0, {{0}}, {0}};
  const lightos_tensor_t *xu, *gu, *mu = NULL, *ru;
  rd_v3_t xv, gv, mv = {0, 0, 0, 0}, rv;
  if ((s = rd_use_in(&c, x, last, &xu, &xv)) || (s = rd_use_in(&c, grad_out, last, &gu, &gv)) ||
      (s = rd_use_stat(&c, rms ? NULL : mean, false, &mu, &mv)) ||
      (s = rd_use_stat(&c, rstd, false, &ru, &rv)))
    return rd_tmps_end(&c, s);
  if (do_cols) { /* t0 grad_w, t1 grad_b, t2 x, t3 mean, t4 rstd, t5 grad_out */
    rd_six_t six;
    memset(&six, 0, sizeof six);
    six.t[0] = grad_weight;
    six.v[0] = rd_vec_view(grad_weight);
    if (!rms) {
      six.t[1] = grad_bias;
      six.v[1] = rd_vec_view(grad_bias);
      six.t[3] = mu;
      six.v[3] = mv;
    }
    six.t[2] = xu;
    six.v[2] = xv;
    six.t[4] = ru;
    six.v[4] = rv;
    six.t[5] = gu;
    six.v[5] = gv;
    /* the column kernel reads (off, row stride, column stride) = (off, so, sd) */
    int flags = (grad_weight ? 1 : 0) | (!rms && grad_bias ? 2 : 0);
    size_t global = (size_t)D;
    if ((s = rd_run_six(q, false, rms ? 1 : 0, x->dtype, flags, rows, D, 0, 0, &six, 1, &global)))
      return rd_tmps_end(&c, s);
  }
  if (do_rows) { /* t0 grad_x, t1 x, t2 w, t3 mean, t4 rstd, t5 grad_out */
    rd_six_t six;
    memset(&six, 0, sizeof six);
    if ((s = rd_use_out(&c, grad_x, last, &six.t[0], &six.v[0]))) return rd_tmps_end(&c, s);
    six.t[1] = xu;
    six.v[1] = xv;
    six.t[2] = weight;
    six.v[2] = rd_vec_view(weight);
    if (!rms) {
      six.t[3] = mu;
      six.v[3] = mv;
    }
    six.t[4] = ru;
    six.v[4] = rv;
    six.t[5] = gu;
    six.v[5] = gv;
    size_t global = (size_t)rows;
    s = rd_run_six(q, true, rms ? 5 : 3, x->dtype, weight ? 1 : 0, rows, D, 1, 0, &six, 1,
                   &global);
  }
  return rd_tmps_end(&c, s);
}

LIGHTOS_API lightos_status_t lightos_op_layernorm_backward(
    lightos_queue_t q, const lightos_tensor_t* x, const lightos_tensor_t* weight,
    const lightos_tensor_t* mean, const lightos_tensor_t* rstd, const lightos_tensor_t* grad_out,
    const lightos_tensor_t* grad_x, const lightos_tensor_t* grad_weight,
    const lightos_tensor_t* grad_bias) {
  return rd_norm_bwd(q, false, x, weight, mean, rstd, grad_out, grad_x, grad_weight, grad_bias);
}

LIGHTOS_API lightos_status_t lightos_op_rmsnorm_backward(
    lightos_queue_t q, const lightos_tensor_t* x, const lightos_tensor_t* weight,
    const lightos_tensor_t* rstd, const lightos_tensor_t* grad_out, const lightos_tensor_t* grad_x,
    const lightos_tensor_t* grad_weight) {
  return rd_norm_bwd(q, true, x, weight, NULL, rstd, grad_out, grad_x, grad_weight, NULL);
}

/* ---- cross-entropy ------------------------------------------------------------------ */

static lightos_status_t rd_check_scalar(const lightos_tensor_t* t, const char* name,
                                        const lightos_tensor_t* like) {
  lightos_status_t s = rd_same_dtype(t, name, like, "logits");
  if (s) return s;
  if (lightos_tensor_numel(t) != 1)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' must hold one element (it has %lld)",
                   name, (long long)lightos_tensor_numel(t));
  return LIGHTOS_SUCCESS;
}

static lightos_status_t rd_check_ce(const lightos_tensor_t* logits, const lightos_tensor_t* targets) {
  lightos_status_t s = rd_need_float(logits, "logits", "cross_entropy");
  if (s) return s;
  if (logits->ndim != 2)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'logits' has %u dims; it must be [N, C]",
                   logits->ndim);
  if (logits->shape[1] == 0)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'logits' has 0 classes (dim 1 is 0)");
  if (targets->dtype != LIGHTOS_DTYPE_I64)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'targets' is %s; it must be i64",
                   lightos_dtype_name(targets->dtype));
  if (targets->ndim != 1 || targets->shape[0] != logits->shape[0])
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "tensor 'targets' must be 1-D of size N = %lld (the rows of 'logits')",
                   (long long)logits->shape[0]);
  return LIGHTOS_SUCCESS;
}

/* [N, C] logits (and their gradient) and [N] targets as row views. */
static rd_v3_t rd_mat_view(const lightos_tensor_t* t) {
  rd_v3_t v = {rd_elem_off(t), t->strides[0], t->strides[1], 0};
  return v;
}
static rd_v3_t rd_rowval_view(const lightos_tensor_t* t) {
  rd_v3_t v = {rd_elem_off(t), t->ndim ? t->strides[0] : 0, 0, 0};
  return v;
}

LIGHTOS_API lightos_status_t lightos_op_cross_entropy(lightos_queue_t queue,
                                                      const lightos_tensor_t* logits,
                                                      const lightos_tensor_t* targets,
                                                      const lightos_tensor_t* loss) {
  const lightos_tensor_t* ts[3] = {logits, targets, loss};
  const char* names[3] = {"logits", "targets", "loss"};
  for (int i = 0; i < 3; ++i)
    if (!ts[i]) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is NULL", names[i]);
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 3);
  if (s) return s;
  if ((s = rd_check_ce(logits, targets)) || (s = rd_check_scalar(loss, "loss", logits))) return s;
  if ((s = lk_ops_check_overlap(loss, "loss", logits, "logits", false)) ||
      (s = lk_ops_check_overlap(loss, "loss", targets, "targets", false)))
    return s;
  if ((s = lk_ops_device_fp64(q->context, logits->dtype, "logits"))) return s;
  if (!rd_wg_ok(q))
    return LK_FAIL(LIGHTOS_UNSUPPORTED, "device %s: work-groups of %d items are needed",
                   q->context->device->hal->info.uri, RD_WG);
  int64_t N = logits->shape[0], C = logits->shape[1];
  /* per-row losses in f32 (f64 for f64 logits), then their mean by one
   * work-group with a fixed tree */
  lightos_dtype_t acc = logits->dtype == LIGHTOS_DTYPE_F64 ? LIGHTOS_DTYPE_F64 : LIGHTOS_DTYPE_F32;
  lightos_tensor_t tmp;
  int64_t tshape[1] = {N};
  if ((s = lightos_tensor_alloc(LK_HANDLE(q->context), acc, 1, tshape, &tmp))) return s;
  if (N > 0) {
    rd_six_t six;
    memset(&six, 0, sizeof six);
    six.t[0] = &tmp;
    six.v[0] = rd_rowval_view(&tmp);
    six.t[1] = logits;
    six.v[1] = rd_mat_view(logits);
    six.t[2] = targets;
    six.v[2] = rd_rowval_view(targets);
    size_t global = (size_t)N;
    s = rd_run_six(q, true, 6, logits->dtype, 0, N, C, 1, 0, &six, 1, &global);
  }
  if (!s) {
    rd_plan_t p;
    memset(&p, 0, sizeof p);
    p.nk = 0;
    p.nr = 1;
    p.nout = 1;
    p.count = N;
    p.dims[0] = N;
    p.xs[0] = 1;
    for (int i = 1; i < LIGHTOS_MAX_DIMS; ++i) p.dims[i] = 1;
    s = rd_run_plan(q, true, LIGHTOS_REDUCE_MEAN, &p, tmp.buffer, acc, 0, loss->buffer,
                    logits->dtype, rd_elem_off(loss));
  }
  lightos_tensor_free(&tmp);
  return s;
}

LIGHTOS_API lightos_status_t lightos_op_cross_entropy_backward(
    lightos_queue_t queue, const lightos_tensor_t* logits, const lightos_tensor_t* targets,
    const lightos_tensor_t* grad_loss, const lightos_tensor_t* grad_logits) {
  const lightos_tensor_t* ts[4] = {logits, targets, grad_loss, grad_logits};
  const char* names[4] = {"logits", "targets", "grad_loss", "grad_logits"};
  for (int i = 0; i < 4; ++i)
    if (!ts[i]) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is NULL", names[i]);
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 4);
  if (s) return s;
  if ((s = rd_check_ce(logits, targets)) || (s = rd_check_scalar(grad_loss, "grad_loss", logits)))
    return s;
  if ((s = rd_same_dtype(grad_logits, "grad_logits", logits, "logits")) ||
      (s = lk_tensor_same_shape(grad_logits, "grad_logits", logits, "logits")))
    return s;
  if ((s = lk_ops_check_writable(grad_logits, "grad_logits"))) return s;
  if ((s = lk_ops_check_overlap(grad_logits, "grad_logits", logits, "logits", true)) ||
      (s = lk_ops_check_overlap(grad_logits, "grad_logits", targets, "targets", false)) ||
      (s = lk_ops_check_overlap(grad_logits, "grad_logits", grad_loss, "grad_loss", false)))
    return s;
  if ((s = lk_ops_device_fp64(q->context, logits->dtype, "logits"))) return s;
  int64_t N = logits->shape[0], C = logits->shape[1];
  if (N == 0) return LIGHTOS_SUCCESS;
  rd_six_t six;
  memset(&six, 0, sizeof six);
  six.t[0] = grad_logits;
  six.v[0] = rd_mat_view(grad_logits);
  six.t[1] = logits;
  six.v[1] = rd_mat_view(logits);
  six.t[2] = targets;
  six.v[2] = rd_rowval_view(targets);
  six.t[3] = grad_loss;
  six.v[3].off = rd_elem_off(grad_loss);
  size_t global = (size_t)N;
  return rd_run_six(q, true, 7, logits->dtype, 0, N, C, 1, 0, &six, 1, &global);
}

/* ---- embedding ---------------------------------------------------------------------- */

static lightos_status_t rd_check_indices(const lightos_tensor_t* idx) {
  if (idx->dtype != LIGHTOS_DTYPE_I64 && idx->dtype != LIGHTOS_DTYPE_I32)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor 'indices' is %s; it must be i64 or i32",
                   lightos_dtype_name(idx->dtype));
  if (idx->ndim >= LIGHTOS_MAX_DIMS)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "tensor 'indices' has %u dims; at most %d (the output adds one)", idx->ndim,
                   LIGHTOS_MAX_DIMS - 1);
  return LIGHTOS_SUCCESS;
}

/* t must have shape indices.shape + [D]. */
static lightos_status_t rd_check_rows_of(const lightos_tensor_t* t, const char* name,
                                         const lightos_tensor_t* idx, int64_t D) {
  bool ok = t->ndim == idx->ndim + 1 && t->shape[idx->ndim] == D;
  for (uint32_t i = 0; ok && i < idx->ndim; ++i) ok = t->shape[i] == idx->shape[i];
  if (!ok)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "tensor '%s' must have the shape of 'indices' (%u dims) plus a last dim of "
                   "size D = %lld",
                   name, idx->ndim, (long long)D);
  return LIGHTOS_SUCCESS;
}

/* The checks embedding and its backward share.  ts/names: the three
 * tensors in the op's argument order; mat, ix, rows: which of them is the
 * [V, D] table, the indices and the [indices..., D] rows; the op writes
 * the table (write_mat, the backward) or the rows.  float_op: the op's
 * name when the table must be a float type, else NULL. */
static lightos_status_t rd_embedding_checks(lightos_queue_t queue,
                                            const lightos_tensor_t* const ts[3],
                                            const char* const names[3], int mat, int ix, int rows,
                                            bool write_mat, const char* float_op,
                                            lk_queue_t** out_q) {
  for (int i = 0; i < 3; ++i)
    if (!ts[i]) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is NULL", names[i]);
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 3);
  if (s) return s;
  const lightos_tensor_t *t = ts[mat], *indices = ts[ix], *r = ts[rows];
  if (float_op && (s = rd_need_float(t, names[mat], float_op))) return s;
  if (t->ndim != 2)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' has %u dims; it must be [V, D]",
                   names[mat], t->ndim);
  if ((s = rd_check_indices(indices))) return s;
  if ((s = rd_same_dtype(r, names[rows], t, names[mat])) ||
      (s = rd_check_rows_of(r, names[rows], indices, t->shape[1])))
    return s;
  int w = write_mat ? mat : rows, other = write_mat ? rows : mat;
  if ((s = lk_ops_check_writable(ts[w], names[w])) ||
      (s = lk_ops_check_overlap(ts[w], names[w], ts[other], names[other], false)) ||
      (s = lk_ops_check_overlap(ts[w], names[w], indices, names[ix], false)))
    return s;
  if ((s = lk_ops_device_fp64(q->context, t->dtype, names[mat]))) return s;
  *out_q = q;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_op_embedding(lightos_queue_t queue, const lightos_tensor_t* table,
                                                  const lightos_tensor_t* indices,
                                                  const lightos_tensor_t* out) {
  const lightos_tensor_t* ts[3] = {table, indices, out};
  const char* names[3] = {"table", "indices", "out"};
  lk_queue_t* q;
  lightos_status_t s = rd_embedding_checks(queue, ts, names, 0, 1, 2, false, NULL, &q);
  if (s) return s;
  int64_t V = table->shape[0], D = table->shape[1];
  int64_t N = lightos_tensor_numel(indices);
  if (N == 0 || D == 0) return LIGHTOS_SUCCESS;
  rd_tmps_t c = {q, 0, {{0}}, {0}};
  rd_six_t six;
  memset(&six, 0, sizeof six);
  six.t[1] = table;
  six.v[1] = rd_mat_view(table);
  if (!(s = rd_use_in(&c, indices, indices->ndim, &six.t[2], &six.v[2])) &&
      !(s = rd_use_out(&c, out, out->ndim - 1, &six.t[0], &six.v[0]))) {
    size_t global[2] = {(size_t)D, (size_t)N};
    int flags = indices->dtype == LIGHTOS_DTYPE_I32 ? 16 : 0;
    s = rd_run_six(q, false, 2, table->dtype, flags, N, D, V, 0, &six, 2, global);
  }
  return rd_tmps_end(&c, s);
}

LIGHTOS_API lightos_status_t lightos_op_embedding_backward(lightos_queue_t queue,
                                                           const lightos_tensor_t* indices,
                                                           const lightos_tensor_t* grad_out,
                                                           const lightos_tensor_t* grad_table) {
  const lightos_tensor_t* ts[3] = {indices, grad_out, grad_table};
  const char* names[3] = {"indices", "grad_out", "grad_table"};
  lk_queue_t* q;
  lightos_status_t s =
      rd_embedding_checks(queue, ts, names, 2, 0, 1, true, "embedding_backward", &q);
  if (s) return s;
  int64_t V = grad_table->shape[0], D = grad_table->shape[1];
  int64_t N = lightos_tensor_numel(indices);
  if (V == 0 || D == 0) return LIGHTOS_SUCCESS;
  rd_tmps_t c = {q, 0, {{0}}, {0}};
  rd_six_t six;
  memset(&six, 0, sizeof six);
  if (N > 0) {
    if ((s = rd_use_in(&c, indices, indices->ndim, &six.t[2], &six.v[2])) ||
        (s = rd_use_in(&c, grad_out, grad_out->ndim - 1, &six.t[5], &six.v[5])))
      return rd_tmps_end(&c, s);
  }
  /* Accumulate in f32 (f64): into grad_table itself, or an f32 temporary
   * converted to f16/bf16 afterwards. */
  lightos_tensor_t* accbuf = NULL;
  bool half = grad_table->dtype == LIGHTOS_DTYPE_F16 || grad_table->dtype == LIGHTOS_DTYPE_BF16;
  if (half && (s = rd_tmp_alloc(&c, grad_table, LIGHTOS_DTYPE_F32, &accbuf)))
    return rd_tmps_end(&c, s);
  const lightos_tensor_t* acc = half ? accbuf : grad_table;
  six.t[0] = acc;
  six.v[0] = rd_mat_view(acc);
  size_t global[2] = {(size_t)((D + RD_EB - 1) / RD_EB), (size_t)V};
  int flags = indices->dtype == LIGHTOS_DTYPE_I32 ? 16 : 0;
  s = rd_run_six(q, false, 3, grad_table->dtype, flags, N, D, V, 0, &six, 2, global);
  if (!s && half) s = lightos_op_cast(LK_HANDLE(q), accbuf, grad_table);
  return rd_tmps_end(&c, s);
}
