/* conv2d (NCHW, groups = 1) forward and backward: im2col + lightos_op_gemm.
 *
 * Images are processed in chunks of nc (so that the column matrix stays
 * within LK_CONV_COL_ELEMS elements); for a chunk:
 *   col   [CKK, nc*OHW] = im2col(x)                 (conv_im2col)
 *   out   [n][Cout, OHW] = W [Cout, CKK] @ col[:, n]  (one batched GEMM;
 *         with a bias, out is first filled with it and beta = 1)
 *   gp    [Cout, nc*OHW] = grad_out packed            (conv_pack)
 *   gW    [Cout, CKK]  (+)= gp @ col^T                 (beta = 1 after the
 *                                                       first chunk)
 *   dcol  [CKK, nc*OHW] = W^T @ gp, grad_x = col2im(dcol) (conv_col2im:
 *         one work-item per input element, a fixed order, no atomics)
 * and grad_bias is a fixed-order reduction (conv_bias_grad).  Temporaries
 * come from lightos_buffer_alloc and are released right after enqueueing
 * (queued work keeps its buffers alive).  Weight and output views whose
 * matrix dims cannot be merged go through a contiguous temporary (conv_copy4d).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "ops/ops_internal.h"

extern const char lk_cl_lk_math[];
extern const char lk_cl_conv[];

/* From ops_core.c. */
lightos_status_t lk_ops_check_overlap(const lightos_tensor_t* out, const char* out_name,
                                      const lightos_tensor_t* in, const char* in_name,
                                      bool identical_ok);
lightos_status_t lk_ops_check_writable(const lightos_tensor_t* t, const char* name);
lightos_status_t lk_ops_device_fp64(lk_context_t* ctx, lightos_dtype_t dt, const char* name);

/* Column matrix budget per chunk, in elements. */
#define LK_CONV_COL_ELEMS ((int64_t)1 << 22)

typedef struct lk_conv_geom {
  int64_t n, c, h, w, cout, kh, kw, oh, ow;
  int sh, sw, ph, pw, dh, dw;
} lk_conv_geom_t;

static const char* const lk_conv_dims[4] = {"N", "C", "H", "W"};

static lightos_status_t lk_conv_check_dtype(const lightos_tensor_t* t, const char* name,
                                            lightos_dtype_t want) {
  if (t->dtype != want)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "conv2d: tensor '%s' is %s but 'x' is %s", name,
                   lightos_dtype_name(t->dtype), lightos_dtype_name(want));
  return LIGHTOS_SUCCESS;
}

static lightos_status_t lk_conv_check_shape(const lightos_tensor_t* t, const char* name,
                                            uint32_t nd, const int64_t* want) {
  if (t->ndim != nd)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "conv2d: tensor '%s' has %u dims, expected %u", name,
                   t->ndim, nd);
  for (uint32_t i = 0; i < nd; ++i)
    if (t->shape[i] != want[i]) {
      char ws[96] = "", gs[96] = "";
      size_t wl = 0, gl = 0;
      for (uint32_t j = 0; j < nd; ++j) {
        lk_sbprintf(ws, sizeof ws, &wl, "%s%lld", j ? ", " : "", (long long)want[j]);
        lk_sbprintf(gs, sizeof gs, &gl, "%s%lld", j ? ", " : "", (long long)t->shape[j]);
      }
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "conv2d: tensor '%s' has shape [%s] but [%s] is expected (dim %u)", name, gs,
                     ws, i);
    }
  return LIGHTOS_SUCCESS;
}

/* x [N, C, H, W], weight [Cout, C, KH, KW], parameters -> geometry. */
static lightos_status_t lk_conv_geometry(const lightos_tensor_t* x, const lightos_tensor_t* w,
                                         const lightos_conv2d_params_t* p, lk_conv_geom_t* g) {
  if (!p) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "conv2d: params is NULL");
  for (int i = 0; i < 2; ++i) {
    if (p->stride[i] < 1)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "conv2d: stride[%d] is %d (must be >= 1)", i,
                     (int)p->stride[i]);
    if (p->dilation[i] < 1)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "conv2d: dilation[%d] is %d (must be >= 1)", i,
                     (int)p->dilation[i]);
    if (p->padding[i] < 0)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "conv2d: padding[%d] is %d (must be >= 0)", i,
                     (int)p->padding[i]);
  }
  if (x->ndim != 4)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "conv2d: tensor 'x' has %u dims; expected 4 (NCHW)",
                   x->ndim);
  if (w->ndim != 4)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "conv2d: tensor 'weight' has %u dims; expected 4 [Cout, Cin, KH, KW]", w->ndim);
  if (x->dtype != LIGHTOS_DTYPE_F32 && x->dtype != LIGHTOS_DTYPE_F64 &&
      x->dtype != LIGHTOS_DTYPE_F16 && x->dtype != LIGHTOS_DTYPE_BF16)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "conv2d: dtype %s of 'x' is not supported (f32, f64, f16, bf16)",
                   lightos_dtype_name(x->dtype));
  lightos_status_t s = lk_conv_check_dtype(w, "weight", x->dtype);
  if (s) return s;
  if (w->shape[1] != x->shape[1])
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "conv2d: 'weight' has %lld input channels (dim 1) but 'x' has %lld channels "
                   "(groups = 1 in this release)",
                   (long long)w->shape[1], (long long)x->shape[1]);
  memset(g, 0, sizeof *g);
  g->n = x->shape[0];
  g->c = x->shape[1];
  g->h = x->shape[2];
  g->w = x->shape[3];
  g->cout = w->shape[0];
  g->kh = w->shape[2];
  g->kw = w->shape[3];
  g->sh = p->stride[0];
  g->sw = p->stride[1];
  g->ph = p->padding[0];
  g->pw = p->padding[1];
  g->dh = p->dilation[0];
  g->dw = p->dilation[1];
  const int64_t ext[2] = {(int64_t)g->dh * (g->kh - 1) + 1, (int64_t)g->dw * (g->kw - 1) + 1};
  const int64_t in[2] = {g->h + 2 * (int64_t)g->ph, g->w + 2 * (int64_t)g->pw};
  int64_t outd[2];
  for (int i = 0; i < 2; ++i) {
    if (ext[i] > in[i] || (i == 0 ? g->kh : g->kw) == 0)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "conv2d: the kernel's %s extent %lld (size %lld, dilation %d) is larger than "
                     "the padded input %s %lld (or the kernel is empty)",
                     lk_conv_dims[2 + i], (long long)ext[i], (long long)(i == 0 ? g->kh : g->kw),
                     i == 0 ? g->dh : g->dw, lk_conv_dims[2 + i], (long long)in[i]);
    outd[i] = (in[i] - ext[i]) / (i == 0 ? g->sh : g->sw) + 1;
  }
  g->oh = outd[0];
  g->ow = outd[1];
  /* The kernels do spatial index arithmetic in int. */
  if (in[0] > INT32_MAX / 2 || in[1] > INT32_MAX / 2 || ext[0] > INT32_MAX / 2 ||
      ext[1] > INT32_MAX / 2)
    return LK_FAIL(LIGHTOS_UNSUPPORTED,
                   "conv2d: spatial sizes (padded input %lld x %lld, kernel extent %lld x %lld) "
                   "must stay below 2^30",
                   (long long)in[0], (long long)in[1], (long long)ext[0], (long long)ext[1]);
  return LIGHTOS_SUCCESS;
}

/* ---- kernels ---------------------------------------------------------------- */

typedef struct lk_conv_args {
  lightos_kernel_t k;
  uint32_t i;
  lightos_status_t s;
  size_t elem;
} lk_conv_args_t;

static lightos_status_t lk_conv_kernel(lk_context_t* ctx, lightos_dtype_t dt, const char* name,
                                       lk_conv_args_t* a) {
  memset(a, 0, sizeof *a);
  a->elem = lk_dtype_bytes(dt);
  const char* opt = dt == LIGHTOS_DTYPE_F64    ? "-DCONV_F64"
                    : dt == LIGHTOS_DTYPE_F16  ? "-DCONV_F16"
                    : dt == LIGHTOS_DTYPE_BF16 ? "-DCONV_BF16"
                                               : "-DCONV_F32";
  const bool half = dt == LIGHTOS_DTYPE_F16 || dt == LIGHTOS_DTYPE_BF16;
  const char* parts_half[2] = {lk_cl_lk_math, lk_cl_conv};
  const char* parts_plain[1] = {lk_cl_conv};
  return half ? lk_ops_kernel(ctx, parts_half, 2, opt, name, &a->k)
              : lk_ops_kernel(ctx, parts_plain, 1, opt, name, &a->k);
}

static void ca_buf(lk_conv_args_t* a, lightos_buffer_t b) {
  if (!a->s) a->s = lightos_kernel_set_arg_buffer(a->k, a->i, b);
  a->i++;
}
static void ca_i64(lk_conv_args_t* a, int64_t v) {
  if (!a->s) a->s = lightos_kernel_set_arg_i64(a->k, a->i, v);
  a->i++;
}
static void ca_i32(lk_conv_args_t* a, int32_t v) {
  if (!a->s) a->s = lightos_kernel_set_arg_i32(a->k, a->i, v);
  a->i++;
}
/* buffer, element offset, the first `nd` strides */
static void ca_tensor(lk_conv_args_t* a, const lightos_tensor_t* t, uint32_t nd) {
  ca_buf(a, t->buffer);
  ca_i64(a, (int64_t)(t->offset / a->elem));
  for (uint32_t i = 0; i < nd; ++i) ca_i64(a, t->strides[i]);
}
static void ca_geom(lk_conv_args_t* a, const lk_conv_geom_t* g) {
  ca_i64(a, g->c);
  ca_i64(a, g->h);
  ca_i64(a, g->w);
  ca_i64(a, g->kh);
  ca_i64(a, g->kw);
  ca_i64(a, g->oh);
  ca_i64(a, g->ow);
  ca_i32(a, g->sh);
  ca_i32(a, g->sw);
  ca_i32(a, g->ph);
  ca_i32(a, g->pw);
  ca_i32(a, g->dh);
  ca_i32(a, g->dw);
}

/* Enqueues (when every size is > 0) and releases the kernel. */
static lightos_status_t lk_conv_launch(lk_queue_t* q, lk_conv_args_t* a, uint32_t dims,
                                       const size_t* global) {
  lightos_status_t s = a->s;
  bool empty = false;
  for (uint32_t i = 0; i < dims; ++i)
    if (global[i] == 0) empty = true;
  if (!s && !empty) s = lightos_enqueue_kernel(LK_HANDLE(q), a->k, dims, global, NULL, NULL);
  lightos_kernel_release(a->k);
  return s;
}

/* ---- matrix views and temporaries ------------------------------------------- */

/* Merges dims [d0, nd) of t into one: true and the stride of the merged dim
 * when the layout allows it (dims of size 1 do not matter). */
static bool lk_conv_merge(const lightos_tensor_t* t, uint32_t d0, int64_t* stride) {
  int64_t inner = -1, span = 1;
  for (uint32_t d = t->ndim; d-- > d0;) {
    if (t->shape[d] == 1) continue;
    if (inner < 0) {
      inner = t->strides[d];
    } else if (t->strides[d] != inner * span) {
      return false;
    }
    span *= t->shape[d];
  }
  *stride = inner < 0 ? 1 : inner;
  return true;
}

static lightos_tensor_t lk_conv_view(const lightos_tensor_t* base, size_t add_elems, uint32_t nd,
                                     const int64_t* shape, const int64_t* strides) {
  lightos_tensor_t t;
  memset(&t, 0, sizeof t);
  t.buffer = base->buffer;
  t.dtype = base->dtype;
  t.offset = base->offset + add_elems * lk_dtype_bytes(base->dtype);
  t.ndim = nd;
  for (uint32_t i = 0; i < nd; ++i) {
    t.shape[i] = shape[i];
    t.strides[i] = strides[i];
  }
  return t;
}

/* A temporary contiguous tensor. */
static lightos_status_t lk_conv_temp(lk_queue_t* q, lightos_dtype_t dt, uint32_t nd,
                                     const int64_t* shape, lightos_tensor_t* out) {
  return lightos_tensor_alloc(LK_HANDLE(q->context), dt, nd, shape, out);
}

static void lk_conv_free(lightos_tensor_t* t) {
  if (t->buffer) lightos_tensor_free(t);
  memset(t, 0, sizeof *t);
}

/* dst = src (4-d views of one shape and dtype), with conv_copy4d. */
static lightos_status_t lk_conv_copy(lk_queue_t* q, const lightos_tensor_t* src,
                                     const lightos_tensor_t* dst) {
  lk_conv_args_t a;
  lightos_status_t s = lk_conv_kernel(q->context, src->dtype, "conv_copy4d", &a);
  if (s) return s;
  ca_tensor(&a, src, 4);
  ca_tensor(&a, dst, 4);
  const int64_t rows = src->shape[0] * src->shape[1] * src->shape[2];
  ca_i64(&a, src->shape[1]);
  ca_i64(&a, src->shape[2]);
  ca_i64(&a, src->shape[3]);
  ca_i64(&a, rows);
  const size_t global[1] = {src->shape[3] > 0 ? (size_t)rows : 0};
  return lk_conv_launch(q, &a, 1, global);
}

/* Images per chunk. */
static int64_t lk_conv_chunk(const lk_conv_geom_t* g) {
  int64_t per = g->c * g->kh * g->kw * g->oh * g->ow;
  int64_t per2 = g->cout * g->oh * g->ow;
  if (per2 > per) per = per2;
  if (per <= 0) return g->n > 0 ? g->n : 1;
  int64_t nc = LK_CONV_COL_ELEMS / per;
  if (nc < 1) nc = 1;
  if (nc > g->n) nc = g->n;
  return nc;
}

/* Weight as a [Cout, CKK] matrix, or a contiguous copy of it in *tmp. */
static lightos_status_t lk_conv_weight_matrix(lk_queue_t* q, const lightos_tensor_t* w,
                                              const lk_conv_geom_t* g, lightos_tensor_t* tmp,
                                              lightos_tensor_t* out) {
  const int64_t shape[2] = {g->cout, g->c * g->kh * g->kw};
  int64_t st;
  if (lk_conv_merge(w, 1, &st)) {
    const int64_t strides[2] = {w->strides[0], st};
    *out = lk_conv_view(w, 0, 2, shape, strides);
    return LIGHTOS_SUCCESS;
  }
  lightos_status_t s = lk_conv_temp(q, w->dtype, 4, w->shape, tmp);
  if (!s) s = lk_conv_copy(q, w, tmp);
  if (s) return s;
  const int64_t strides[2] = {shape[1], 1};
  *out = lk_conv_view(tmp, 0, 2, shape, strides);
  return LIGHTOS_SUCCESS;
}

static lightos_status_t lk_conv_im2col(lk_queue_t* q, const lightos_tensor_t* x,
                                       const lk_conv_geom_t* g, const lightos_tensor_t* col,
                                       int64_t n0, int64_t nc) {
  lk_conv_args_t a;
  lightos_status_t s = lk_conv_kernel(q->context, x->dtype, "conv_im2col", &a);
  if (s) return s;
  ca_tensor(&a, x, 4);
  ca_buf(&a, col->buffer);
  ca_i64(&a, n0);
  ca_i64(&a, nc);
  ca_geom(&a, g);
  const size_t global[1] = {(size_t)(g->c * g->kh * g->kw * nc * g->oh)};
  return lk_conv_launch(q, &a, 1, global);
}

/* ---- forward ------------------------------------------------------------------ */

LIGHTOS_API lightos_status_t lightos_op_conv2d(lightos_queue_t queue, const lightos_tensor_t* x,
                                               const lightos_tensor_t* weight,
                                               const lightos_tensor_t* bias,
                                               const lightos_conv2d_params_t* p,
                                               const lightos_tensor_t* out) {
  if (!x) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "conv2d: tensor 'x' is NULL");
  if (!weight) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "conv2d: tensor 'weight' is NULL");
  if (!out) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "conv2d: tensor 'out' is NULL");
  const lightos_tensor_t* ts[4] = {x, weight, bias, out};
  static const char* const names[4] = {"x", "weight", "bias", "out"};
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 4);
  if (s) return s;
  lk_conv_geom_t g;
  if ((s = lk_conv_geometry(x, weight, p, &g))) return s;
  if (bias) {
    const int64_t bshape[1] = {g.cout};
    if ((s = lk_conv_check_dtype(bias, "bias", x->dtype))) return s;
    if ((s = lk_conv_check_shape(bias, "bias", 1, bshape))) return s;
  }
  const int64_t oshape[4] = {g.n, g.cout, g.oh, g.ow};
  if ((s = lk_conv_check_dtype(out, "out", x->dtype))) return s;
  if ((s = lk_conv_check_shape(out, "out", 4, oshape))) return s;
  if ((s = lk_ops_check_writable(out, "out"))) return s;
  for (int i = 0; i < 3; ++i)
    if ((s = lk_ops_check_overlap(out, "out", ts[i], names[i], false))) return s;
  if ((s = lk_ops_device_fp64(q->context, x->dtype, "x"))) return s;
  if (g.n == 0 || g.cout == 0) return LIGHTOS_SUCCESS;

  const int64_t ckk = g.c * g.kh * g.kw, ohw = g.oh * g.ow;
  const int64_t nc = lk_conv_chunk(&g);
  lightos_tensor_t wtmp = {0}, otmp = {0}, col = {0}, wm;
  /* The output as [N, Cout, OHW]. */
  const lightos_tensor_t* o = out;
  int64_t o_sp;
  if (!lk_conv_merge(out, 2, &o_sp)) {
    if ((s = lk_conv_temp(q, out->dtype, 4, oshape, &otmp))) goto done;
    o = &otmp;
    o_sp = 1;
  }
  if ((s = lk_conv_weight_matrix(q, weight, &g, &wtmp, &wm))) goto done;
  {
    const int64_t cshape[2] = {ckk, nc * ohw};
    if ((s = lk_conv_temp(q, x->dtype, 2, cshape, &col))) goto done;
  }
  for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
    const int64_t m = g.n - n0 < nc ? g.n - n0 : nc;
    if ((s = lk_conv_im2col(q, x, &g, &col, n0, m))) goto done;
    if (bias) {
      lk_conv_args_t a;
      if ((s = lk_conv_kernel(q->context, x->dtype, "conv_fill_bias", &a))) goto done;
      ca_tensor(&a, o, 4);
      ca_tensor(&a, bias, 1);
      ca_i64(&a, n0);
      ca_i64(&a, m);
      ca_i64(&a, g.oh);
      ca_i64(&a, g.ow);
      ca_i64(&a, g.cout);
      const size_t global[1] = {(size_t)(m * g.cout * g.oh)};
      if ((s = lk_conv_launch(q, &a, 1, global))) goto done;
    }
    /* out[n] = W @ col[:, n*OHW .. +OHW] for the chunk's images. */
    const int64_t bsh[3] = {m, ckk, ohw}, bst[3] = {ohw, m * ohw, 1};
    lightos_tensor_t bv = lk_conv_view(&col, 0, 3, bsh, bst);
    const int64_t csh[3] = {m, g.cout, ohw}, cst[3] = {o->strides[0], o->strides[1], o_sp};
    lightos_tensor_t cv = lk_conv_view(o, (size_t)(n0 * o->strides[0]), 3, csh, cst);
    if ((s = lightos_op_gemm(LK_HANDLE(q), false, false, 1.0, &wm, &bv, bias ? 1.0 : 0.0, &cv)))
      goto done;
  }
  if (o == &otmp) s = lk_conv_copy(q, &otmp, out);
done:
  lk_conv_free(&col);
  lk_conv_free(&wtmp);
  lk_conv_free(&otmp);
  return s;
}

/* ---- backward ----------------------------------------------------------------- */

LIGHTOS_API lightos_status_t
lightos_op_conv2d_backward(lightos_queue_t queue, const lightos_tensor_t* x,
                           const lightos_tensor_t* weight, const lightos_tensor_t* grad_out,
                           const lightos_conv2d_params_t* p, const lightos_tensor_t* grad_x,
                           const lightos_tensor_t* grad_weight, const lightos_tensor_t* grad_bias) {
  if (!x) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "conv2d_backward: tensor 'x' is NULL");
  if (!weight) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "conv2d_backward: tensor 'weight' is NULL");
  if (!grad_out)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "conv2d_backward: tensor 'grad_out' is NULL");
  const lightos_tensor_t* ts[6] = {x, weight, grad_out, grad_x, grad_weight, grad_bias};
  static const char* const names[6] = {"x",      "weight",      "grad_out",
                                       "grad_x", "grad_weight", "grad_bias"};
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 6);
  if (s) return s;
  lk_conv_geom_t g;
  if ((s = lk_conv_geometry(x, weight, p, &g))) return s;
  const int64_t oshape[4] = {g.n, g.cout, g.oh, g.ow};
  const int64_t bshape[1] = {g.cout};
  if ((s = lk_conv_check_dtype(grad_out, "grad_out", x->dtype))) return s;
  if ((s = lk_conv_check_shape(grad_out, "grad_out", 4, oshape))) return s;
  const int64_t* want[3] = {x->shape, weight->shape, bshape};
  const uint32_t want_nd[3] = {4, 4, 1};
  for (int i = 3; i < 6; ++i) {
    if (!ts[i]) continue;
    if ((s = lk_conv_check_dtype(ts[i], names[i], x->dtype))) return s;
    if ((s = lk_conv_check_shape(ts[i], names[i], want_nd[i - 3], want[i - 3]))) return s;
    if ((s = lk_ops_check_writable(ts[i], names[i]))) return s;
    for (int j = 0; j < 6; ++j)
      if (j != i && (s = lk_ops_check_overlap(ts[i], names[i], ts[j], names[j], false))) return s;
  }
  if ((s = lk_ops_device_fp64(q->context, x->dtype, "x"))) return s;

  const int64_t ckk = g.c * g.kh * g.kw, ohw = g.oh * g.ow;
  lightos_tensor_t wtmp = {0}, gwtmp = {0}, col = {0}, gp = {0}, dcol = {0}, wm, gwm;
  const int64_t nc = lk_conv_chunk(&g);
  const bool need_chunks = g.n > 0 && (grad_x || grad_weight);
  if (grad_weight && (g.n == 0 || ohw == 0)) {
    /* Nothing contributes: the gradient is 0. */
    if ((s = lightos_op_fill(LK_HANDLE(q), grad_weight, 0.0))) goto done;
  }
  if (need_chunks && ohw > 0) {
    const int64_t gpshape[2] = {g.cout, nc * ohw}, cshape[2] = {ckk, nc * ohw};
    if ((s = lk_conv_temp(q, x->dtype, 2, gpshape, &gp))) goto done;
    if ((s = lk_conv_temp(q, x->dtype, 2, cshape, grad_weight ? &col : &dcol))) goto done;
    if (grad_x && grad_weight && (s = lk_conv_temp(q, x->dtype, 2, cshape, &dcol))) goto done;
    if (grad_x && (s = lk_conv_weight_matrix(q, weight, &g, &wtmp, &wm))) goto done;
    if (grad_weight) {
      const int64_t gshape[2] = {g.cout, ckk};
      int64_t st;
      if (lk_conv_merge(grad_weight, 1, &st)) {
        const int64_t gst[2] = {grad_weight->strides[0], st};
        gwm = lk_conv_view(grad_weight, 0, 2, gshape, gst);
      } else {
        if ((s = lk_conv_temp(q, x->dtype, 4, weight->shape, &gwtmp))) goto done;
        const int64_t gst[2] = {ckk, 1};
        gwm = lk_conv_view(&gwtmp, 0, 2, gshape, gst);
      }
    }
    for (int64_t n0 = 0; n0 < g.n; n0 += nc) {
      const int64_t m = g.n - n0 < nc ? g.n - n0 : nc;
      const int64_t np = m * ohw;
      /* gp = grad_out of the chunk as [Cout, m*OHW]. */
      lk_conv_args_t a;
      if ((s = lk_conv_kernel(q->context, x->dtype, "conv_pack", &a))) goto done;
      ca_tensor(&a, grad_out, 4);
      ca_buf(&a, gp.buffer);
      ca_i64(&a, n0);
      ca_i64(&a, m);
      ca_i64(&a, g.oh);
      ca_i64(&a, g.ow);
      ca_i64(&a, g.cout);
      const size_t pglobal[1] = {(size_t)(g.cout * m * g.oh)};
      if ((s = lk_conv_launch(q, &a, 1, pglobal))) goto done;
      const int64_t gpsh[2] = {g.cout, np}, gpst[2] = {np, 1};
      const lightos_tensor_t gpv = lk_conv_view(&gp, 0, 2, gpsh, gpst);
      const int64_t csh[2] = {ckk, np}, cst[2] = {np, 1};
      if (grad_weight) {
        if ((s = lk_conv_im2col(q, x, &g, &col, n0, m))) goto done;
        const lightos_tensor_t cv = lk_conv_view(&col, 0, 2, csh, cst);
        /* gW (+)= gp @ col^T */
        if ((s = lightos_op_gemm(LK_HANDLE(q), false, true, 1.0, &gpv, &cv, n0 ? 1.0 : 0.0, &gwm)))
          goto done;
      }
      if (grad_x) {
        const lightos_tensor_t dv = lk_conv_view(&dcol, 0, 2, csh, cst);
        /* dcol = W^T @ gp, then grad_x = col2im(dcol) */
        if ((s = lightos_op_gemm(LK_HANDLE(q), true, false, 1.0, &wm, &gpv, 0.0, &dv))) goto done;
        if ((s = lk_conv_kernel(q->context, x->dtype, "conv_col2im", &a))) goto done;
        ca_buf(&a, dcol.buffer);
        ca_tensor(&a, grad_x, 4);
        ca_i64(&a, n0);
        ca_i64(&a, m);
        ca_geom(&a, &g);
        const size_t xglobal[1] = {(size_t)(m * g.c * g.h)};
        if ((s = lk_conv_launch(q, &a, 1, xglobal))) goto done;
      }
    }
    if (gwtmp.buffer && (s = lk_conv_copy(q, &gwtmp, grad_weight))) goto done;
  } else if (grad_x && g.n > 0) {
    /* No output positions: nothing reaches x. */
    if ((s = lightos_op_fill(LK_HANDLE(q), grad_x, 0.0))) goto done;
  }
  if (grad_bias && g.cout > 0) {
    lk_conv_args_t a;
    if ((s = lk_conv_kernel(q->context, x->dtype, "conv_bias_grad", &a))) goto done;
    ca_tensor(&a, grad_out, 4);
    ca_tensor(&a, grad_bias, 1);
    ca_i64(&a, g.n);
    ca_i64(&a, g.oh);
    ca_i64(&a, g.ow);
    ca_i64(&a, g.cout);
    const size_t bglobal[1] = {(size_t)g.cout};
    if ((s = lk_conv_launch(q, &a, 1, bglobal))) goto done;
  }
done:
  lk_conv_free(&col);
  lk_conv_free(&gp);
  lk_conv_free(&dcol);
  lk_conv_free(&wtmp);
  lk_conv_free(&gwtmp);
  return s;
}
