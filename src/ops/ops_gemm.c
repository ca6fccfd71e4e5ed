/* lightos_op_gemm: C = alpha * op(A) op(B) + beta * C.
 *
 * Validation (dtypes, shapes with transposes and broadcast batch dims,
 * strides, aliasing), then one of two paths:
 *   - the backend's native GEMM (queue vtable native_gemm: OpenBLAS on the
 *     CPU, ...), when the context is not deterministic, the backend offers
 *     one and every matrix has a BLAS layout (one unit stride per matrix);
 *   - the portable kernel (src/ops/kernels/gemm.cl) otherwise: any strides,
 *     a fixed accumulation order (one fma chain per element over k in
 *     increasing order), so it gives the same bits on every backend.
 * Batch dims are coalesced where the strides allow; the native path takes
 * one batch dim per call and the kernel two per launch, the rest loop here.
 *
 * LIGHTOS_GEMM_TILES=cpu|gpu forces the kernel's CPU or GPU tiling (the
 * default follows the device type); tests use it to run the GPU variant on
 * a CPU OpenCL device.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "ops/ops_internal.h"

extern const char lk_cl_lk_math[];
extern const char lk_cl_gemm[];

/* From ops_core.c. */
lightos_status_t lk_ops_check_overlap(const lightos_tensor_t* out, const char* out_name,
                                      const lightos_tensor_t* in, const char* in_name,
                                      bool identical_ok);
lightos_status_t lk_ops_check_writable(const lightos_tensor_t* t, const char* name);
lightos_status_t lk_ops_device_fp64(lk_context_t* ctx, lightos_dtype_t dt, const char* name);

/* A validated GEMM: element strides and offsets, batch dims coalesced. */
typedef struct lk_gemm_plan {
  lightos_dtype_t dtype;
  size_t elem;
  int64_t m, n, k;
  int64_t a_sm, a_sk, b_sk, b_sn, c_sm, c_sn;
  int64_t a_off, b_off, c_off; /* elements from the start of each tensor's buffer */
  int nb;                      /* batch dims after coalescing (sizes > 1 only) */
  bool empty;                  /* some dim is 0: nothing to compute */
  int64_t bshape[LIGHTOS_MAX_DIMS];
  int64_t a_bs[LIGHTOS_MAX_DIMS], b_bs[LIGHTOS_MAX_DIMS], c_bs[LIGHTOS_MAX_DIMS];
} lk_gemm_plan_t;

static bool lk_gemm_dtype_ok(lightos_dtype_t dt) {
  return dt == LIGHTOS_DTYPE_F32 || dt == LIGHTOS_DTYPE_F64 || dt == LIGHTOS_DTYPE_F16 ||
         dt == LIGHTOS_DTYPE_BF16;
}

static lightos_status_t lk_gemm_validate(bool trans_a, bool trans_b, const lightos_tensor_t* a,
                                         const lightos_tensor_t* b, const lightos_tensor_t* c,
                                         lk_gemm_plan_t* p) {
  memset(p, 0, sizeof *p);
  const lightos_tensor_t* ts[3] = {a, b, c};
  static const char* const names[3] = {"a", "b", "c"};
  for (int i = 0; i < 3; ++i)
    if (ts[i]->ndim < 2)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "gemm: tensor '%s' has %u dims; it needs at least 2 (a matrix, with "
                     "optional leading batch dims)",
                     names[i], ts[i]->ndim);
  if (!lk_gemm_dtype_ok(c->dtype))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "gemm: dtype %s of 'c' is not supported (f32, f64, f16, bf16)",
                   lightos_dtype_name(c->dtype));
  for (int i = 0; i < 2; ++i)
    if (ts[i]->dtype != c->dtype)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "gemm: tensor '%s' is %s but 'c' is %s; a, b and c need one dtype", names[i],
                     lightos_dtype_name(ts[i]->dtype), lightos_dtype_name(c->dtype));
  p->dtype = c->dtype;
  p->elem = lk_dtype_bytes(c->dtype);

  const uint32_t an = a->ndim, bn = b->ndim, cn = c->ndim;
  /* op(A) is M x K, op(B) is K x N: a transpose swaps the last two dims. */
  const int64_t am = trans_a ? a->shape[an - 1] : a->shape[an - 2];
  const int64_t ak = trans_a ? a->shape[an - 2] : a->shape[an - 1];
  const int64_t bk = trans_b ? b->shape[bn - 1] : b->shape[bn - 2];
  const int64_t bnn = trans_b ? b->shape[bn - 2] : b->shape[bn - 1];
  if (ak != bk)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "gemm: inner dims differ: op(a) is %lld x %lld (trans_a=%d) but op(b) is "
                   "%lld x %lld (trans_b=%d)",
                   (long long)am, (long long)ak, (int)trans_a, (long long)bk, (long long)bnn,
                   (int)trans_b);
  if (c->shape[cn - 2] != am || c->shape[cn - 1] != bnn)
    return LK_FAIL(
        LIGHTOS_INVALID_ARGUMENT, "gemm: 'c' is %lld x %lld but op(a) @ op(b) is %lld x %lld",
        (long long)c->shape[cn - 2], (long long)c->shape[cn - 1], (long long)am, (long long)bnn);
  p->m = am;
  p->n = bnn;
  p->k = ak;
  p->a_sm = trans_a ? a->strides[an - 1] : a->strides[an - 2];
  p->a_sk = trans_a ? a->strides[an - 2] : a->strides[an - 1];
  p->b_sk = trans_b ? b->strides[bn - 1] : b->strides[bn - 2];
  p->b_sn = trans_b ? b->strides[bn - 2] : b->strides[bn - 1];
  p->c_sm = c->strides[cn - 2];
  p->c_sn = c->strides[cn - 1];
  p->a_off = (int64_t)(a->offset / p->elem);
  p->b_off = (int64_t)(b->offset / p->elem);
  p->c_off = (int64_t)(c->offset / p->elem);

  /* Batch dims: c's decide; a's and b's align from the right and broadcast
   * (size 1 or missing); extra leading dims of a or b must be 1. */
  const int cb = (int)cn - 2;
  for (int i = 0; i < 2; ++i) {
    const lightos_tensor_t* t = ts[i];
    const int tb = (int)t->ndim - 2;
    for (int d = 0; d < tb - cb; ++d)
      if (t->shape[d] != 1)
        return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                       "gemm: tensor '%s' has %d batch dims but 'c' has %d, and its extra dim "
                       "%d has size %lld (only size 1 can be dropped)",
                       names[i], tb, cb, d, (long long)t->shape[d]);
  }
  int nb = 0;
  for (int d = 0; d < cb; ++d) {
    const int64_t size = c->shape[d];
    int64_t st[2] = {0, 0};
    for (int i = 0; i < 2; ++i) {
      const lightos_tensor_t* t = ts[i];
      const int td = d - (cb - ((int)t->ndim - 2));
      if (td < 0) continue;
      if (t->shape[td] != size && t->shape[td] != 1)
        return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                       "gemm: batch dim %d of '%s' has size %lld, which does not broadcast to "
                       "size %lld of 'c' (dim %d)",
                       td, names[i], (long long)t->shape[td], (long long)size, d);
      st[i] = t->shape[td] == 1 ? 0 : t->strides[td];
    }
    if (size == 0) p->empty = true;
    if (size <= 1) continue;
    /* Merge into the previous dim when all three continue its layout. */
    if (nb > 0 && p->a_bs[nb - 1] == st[0] * size && p->b_bs[nb - 1] == st[1] * size &&
        p->c_bs[nb - 1] == c->strides[d] * size) {
      p->bshape[nb - 1] *= size;
      p->a_bs[nb - 1] = st[0];
      p->b_bs[nb - 1] = st[1];
      p->c_bs[nb - 1] = c->strides[d];
      continue;
    }
    p->bshape[nb] = size;
    p->a_bs[nb] = st[0];
    p->b_bs[nb] = st[1];
    p->c_bs[nb] = c->strides[d];
    nb++;
  }
  p->nb = nb;
  if (p->m == 0 || p->n == 0) p->empty = true;
  return LIGHTOS_SUCCESS;
}

/* ---- iteration over the batch dims a path does not take itself ---------- */

/* Visits every index of the first `outer` batch dims; each visit gets the
 * element offsets of that index. */
typedef lightos_status_t (*lk_gemm_visit_fn)(void* ctx, int64_t da, int64_t db, int64_t dc);

static lightos_status_t lk_gemm_for_outer(const lk_gemm_plan_t* p, int outer, lk_gemm_visit_fn fn,
                                          void* ctx) {
  int64_t idx[LIGHTOS_MAX_DIMS] = {0};
  for (;;) {
    int64_t da = 0, db = 0, dc = 0;
    for (int d = 0; d < outer; ++d) {
      da += idx[d] * p->a_bs[d];
      db += idx[d] * p->b_bs[d];
      dc += idx[d] * p->c_bs[d];
    }
    lightos_status_t s = fn(ctx, da, db, dc);
    if (s) return s;
    int d = outer - 1;
    while (d >= 0 && ++idx[d] == p->bshape[d]) idx[d--] = 0;
    if (d < 0) return LIGHTOS_SUCCESS;
  }
}

/* ---- the native path ------------------------------------------------------ */

/* Describes a rows x cols matrix with strides (rs, cs) the BLAS way: a
 * row-major matrix (trans false: element (i, j) at i*ld + j) or the
 * transpose of one (trans true: at j*ld + i).  False when neither fits. */
static bool lk_blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, bool* trans,
                           int64_t* ld) {
  const int64_t rmin = rows > 1 ? rows : 1, cmin = cols > 1 ? cols : 1;
  if (cs == 1 || cols == 1) {
    int64_t l = rows == 1 ? cmin : rs;
    if (l >= cmin) {
      *trans = false;
      *ld = l;
      return true;
    }
  }
  if (rs == 1 || rows == 1) {
    int64_t l = cols == 1 ? rmin : cs;
    if (l >= rmin) {
      *trans = true;
      *ld = l;
      return true;
    }
  }
  return false;
}

static lk_buffer_t* lk_gemm_buffer(const lightos_tensor_t* t) {
  lk_object_t* o = NULL;
  if (lk_handle_resolve(t->buffer, LK_OBJ_BUFFER, "buffer", &o)) return NULL;
  return (lk_buffer_t*)o;
}

typedef struct lk_gemm_native {
  lk_queue_t* q;
  const lk_gemm_plan_t* p;
  lk_buffer_t* buf[3];
  lk_hal_gemm_t g; /* everything but the offsets */
  bool swap;       /* C is column-major: computed as C^T = op(B)^T op(A)^T */
  int64_t done;    /* library calls enqueued */
} lk_gemm_native_t;

static lightos_status_t lk_gemm_native_one(void* ctx, int64_t da, int64_t db, int64_t dc) {
  lk_gemm_native_t* nat = ctx;
  const lk_gemm_plan_t* p = nat->p;
  lk_hal_gemm_t g = nat->g;
  const size_t e = p->elem;
  /* Byte offsets from the root allocations. */
  size_t off[3] = {nat->buf[0]->offset + (size_t)(p->a_off + da) * e,
                   nat->buf[1]->offset + (size_t)(p->b_off + db) * e,
                   nat->buf[2]->offset + (size_t)(p->c_off + dc) * e};
  const int ia = nat->swap ? 1 : 0, ib = nat->swap ? 0 : 1;
  g.a_mem = &nat->buf[ia]->mem;
  g.a_off = off[ia];
  g.b_mem = &nat->buf[ib]->mem;
  g.b_off = off[ib];
  g.c_mem = &nat->buf[2]->mem;
  g.c_off = off[2];

  lk_cmd_t* cmd = lk_cmd_new(LK_CMD_MARKER);
  lk_buffer_t** bufs = malloc(3 * sizeof *bufs);
  if (!cmd || !bufs) {
    free(cmd);
    free(bufs);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a gemm command");
  }
  for (int i = 0; i < 3; ++i) {
    bufs[i] = nat->buf[i];
    lk_object_ref(&bufs[i]->obj);
  }
  cmd->launch_bufs = bufs;
  cmd->num_launch_bufs = 3;
  lightos_status_t s = nat->q->hal->vtbl->native_gemm(nat->q->hal, &g, cmd);
  if (s == LIGHTOS_UNSUPPORTED) {
    lk_cmd_free_unsubmitted(cmd);
    /* Part of the batch is queued already: no quiet fallback now. */
    if (nat->done)
      return LK_FAIL(LIGHTOS_OUT_OF_MEMORY,
                     "gemm: the native library refused batch part %lld after taking the first",
                     (long long)nat->done);
    return s;
  }
  if (!s) nat->done++;
  return s;
}

/* Runs the GEMM through the backend's library.  LIGHTOS_UNSUPPORTED (no
 * error raised, nothing enqueued) when it cannot. */
static lightos_status_t lk_gemm_native(lk_queue_t* q, const lk_gemm_plan_t* p, double alpha,
                                       double beta, const lightos_tensor_t* a,
                                       const lightos_tensor_t* b, const lightos_tensor_t* c) {
  if (!q->hal->vtbl->native_gemm || p->k == 0) return LIGHTOS_UNSUPPORTED;
  lk_gemm_native_t nat;
  memset(&nat, 0, sizeof nat);
  nat.q = q;
  nat.p = p;
  nat.buf[0] = lk_gemm_buffer(a);
  nat.buf[1] = lk_gemm_buffer(b);
  nat.buf[2] = lk_gemm_buffer(c);
  if (!nat.buf[0] || !nat.buf[1] || !nat.buf[2]) return LIGHTOS_UNSUPPORTED;

  lk_hal_gemm_t* g = &nat.g;
  bool ta, tb, tc;
  int64_t lda, ldb, ldc;
  if (!lk_blas_layout(p->m, p->n, p->c_sm, p->c_sn, &tc, &ldc)) return LIGHTOS_UNSUPPORTED;
  if (!tc) {
    if (!lk_blas_layout(p->m, p->k, p->a_sm, p->a_sk, &ta, &lda) ||
        !lk_blas_layout(p->k, p->n, p->b_sk, p->b_sn, &tb, &ldb))
      return LIGHTOS_UNSUPPORTED;
    g->m = p->m;
    g->n = p->n;
  } else {
    /* C^T (N x M, row-major) = op(B)^T (N x K) op(A)^T (K x M). */
    nat.swap = true;
    if (!lk_blas_layout(p->n, p->k, p->b_sn, p->b_sk, &ta, &lda) ||
        !lk_blas_layout(p->k, p->m, p->a_sk, p->a_sm, &tb, &ldb))
      return LIGHTOS_UNSUPPORTED;
    g->m = p->n;
    g->n = p->m;
  }
  g->dtype = p->dtype;
  g->trans_a = ta;
  g->trans_b = tb;
  g->k = p->k;
  g->alpha = alpha;
  g->beta = beta;
  g->lda = lda;
  g->ldb = ldb;
  g->ldc = ldc;
  /* The innermost batch dim goes to the library; outer ones loop here. */
  g->batch = 1;
  int outer = p->nb;
  if (p->nb > 0) {
    outer = p->nb - 1;
    g->batch = p->bshape[outer];
    g->a_batch_stride = nat.swap ? p->b_bs[outer] : p->a_bs[outer];
    g->b_batch_stride = nat.swap ? p->a_bs[outer] : p->b_bs[outer];
    g->c_batch_stride = p->c_bs[outer];
  }
  return lk_gemm_for_outer(p, outer, lk_gemm_native_one, &nat);
}

/* ---- the portable kernel ---------------------------------------------------- */

typedef struct lk_gemm_tiles {
  int bm, bn, bk, tm, tn, vm, vn;
  int rows_x, chunked, pad, unroll;
} lk_gemm_tiles_t;

/* Tile sizes by device type.  CPU: big block tiles staged with vector
 * copies (64 rows when M is small), 4 x 16 (f32) / 4 x 8 (f64) register
 * blocks that the C compiler keeps in vector registers.  GPU: classic SGEMM tiling, 128 x 128
 * blocks, k step 16, 8 x 8 per work-item (two 4-wide strips per direction: 16-byte local loads, no
 * bank conflicts), 256 work-items, the next k step fetched into registers during the arithmetic of
 * the current one; 128 x 64 blocks when 128 x 128 ones would leave compute units idle, 64 x 64
 * where work-groups are small.  The staging order is then a build constant. (Measured on an H100
 * with the kernel compiled as CUDA: 68-69% of cuBLAS SGEMM for n = 2048 .. 8192, 74% at n = 1024
 * with the 128 x 64 blocks.) */
static lk_gemm_tiles_t lk_gemm_pick_tiles0(const lightos_device_info_t* info, lightos_dtype_t dt,
                                           const lk_gemm_plan_t* p, int64_t batch) {
  const char* env = getenv("LIGHTOS_GEMM_TILES");
  bool gpu = info->type != LIGHTOS_DEVICE_TYPE_CPU;
  if (env && !strcmp(env, "gpu")) gpu = true;
  if (env && !strcmp(env, "cpu")) gpu = false;
  const bool f64 = dt == LIGHTOS_DTYPE_F64;
  if (!gpu)
    return f64 || p->m <= 64
               ? (lk_gemm_tiles_t){64, 64, 128, 4, f64 ? 8 : 16, 4, f64 ? 8 : 16, 1, 1, 0, 0}
               : (lk_gemm_tiles_t){128, 64, 128, 4, 16, 4, 16, 1, 1, 0, 0};
  const bool big = info->max_work_group_size >= 256;
  if (f64)
    return big ? (lk_gemm_tiles_t){64, 64, 8, 4, 4, 4, 4, 0, 0, 2, 1}
               : (lk_gemm_tiles_t){32, 32, 8, 4, 4, 4, 4, 0, 0, 2, 1};
  if (!big) return (lk_gemm_tiles_t){64, 64, 8, 8, 8, 4, 4, 0, 0, 4, 1};
  const int64_t tiles = ((p->m + 127) / 128) * ((p->n + 127) / 128) * batch;
  if (tiles < (int64_t)info->compute_units)
    return (lk_gemm_tiles_t){128, 64, 16, 8, 4, 4, 4, 0, 0, 4, 1};
  return (lk_gemm_tiles_t){128, 128, 16, 8, 8, 4, 4, 0, 0, 4, 1};
}

/* The tiles, with the k step halved until the local tiles fit the device's
 * local memory. */
static lk_gemm_tiles_t lk_gemm_pick_tiles(const lightos_device_info_t* info, lightos_dtype_t dt,
                                          const lk_gemm_plan_t* p, int64_t batch) {
  lk_gemm_tiles_t t = lk_gemm_pick_tiles0(info, dt, p, batch);
  const uint64_t acc = dt == LIGHTOS_DTYPE_F64 ? 8 : 4;
  while (t.bk > 8 &&
         (uint64_t)t.bk * (uint64_t)(t.bm + t.bn + 2 * t.pad) * acc > info->local_mem_bytes)
    t.bk /= 2;
  return t;
}

typedef struct lk_gemm_portable {
  lk_queue_t* q;
  const lk_gemm_plan_t* p;
  lightos_kernel_t k;
  const lightos_tensor_t *a, *b, *c;
  lk_gemm_tiles_t t;
  uint64_t alpha_bits, beta_bits;
  int inner;            /* batch dims the launch takes (0, 1 or 2) */
  int a_kfast, b_nfast; /* staging order: along the unit (else smaller) stride */
} lk_gemm_portable_t;

static lightos_status_t lk_gemm_launch(void* ctx, int64_t da, int64_t db, int64_t dc) {
  lk_gemm_portable_t* pt = ctx;
  const lk_gemm_plan_t* p = pt->p;
  lightos_kernel_t k = pt->k;
  /* Inner batch dims: z = z0 * nb1 + z1. */
  int64_t nb0 = 1, nb1 = 1, sb[3][2] = {{0, 0}, {0, 0}, {0, 0}};
  const int o = p->nb - pt->inner;
  if (pt->inner >= 1) {
    const int d1 = p->nb - 1;
    nb1 = p->bshape[d1];
    sb[0][1] = p->a_bs[d1];
    sb[1][1] = p->b_bs[d1];
    sb[2][1] = p->c_bs[d1];
  }
  if (pt->inner == 2) {
    nb0 = p->bshape[o];
    sb[0][0] = p->a_bs[o];
    sb[1][0] = p->b_bs[o];
    sb[2][0] = p->c_bs[o];
  }
  uint32_t i = 0;
  lightos_status_t s = LIGHTOS_SUCCESS;
#define LK_ARG(call)    \
  do {                  \
    if (!s) s = (call); \
    ++i;                \
  } while (0)
  LK_ARG(lightos_kernel_set_arg_buffer(k, i, pt->a->buffer));
  LK_ARG(lightos_kernel_set_arg_buffer(k, i, pt->b->buffer));
  LK_ARG(lightos_kernel_set_arg_buffer(k, i, pt->c->buffer));
  LK_ARG(lightos_kernel_set_arg_i32(k, i, (int32_t)p->m));
  LK_ARG(lightos_kernel_set_arg_i32(k, i, (int32_t)p->n));
  LK_ARG(lightos_kernel_set_arg_i32(k, i, (int32_t)p->k));
  const int64_t longs[9] = {p->a_off + da, p->a_sm,       p->a_sk, p->b_off + db, p->b_sk,
                            p->b_sn,       p->c_off + dc, p->c_sm, p->c_sn};
  for (int j = 0; j < 9; ++j) LK_ARG(lightos_kernel_set_arg_i64(k, i, longs[j]));
  LK_ARG(lightos_kernel_set_arg_i32(k, i, (int32_t)nb1));
  for (int j = 0; j < 3; ++j) {
    LK_ARG(lightos_kernel_set_arg_i64(k, i, sb[j][0]));
    LK_ARG(lightos_kernel_set_arg_i64(k, i, sb[j][1]));
  }
  LK_ARG(lightos_kernel_set_arg_u64(k, i, pt->alpha_bits));
  LK_ARG(lightos_kernel_set_arg_u64(k, i, pt->beta_bits));
  LK_ARG(lightos_kernel_set_arg_i32(k, i, pt->a_kfast));
  LK_ARG(lightos_kernel_set_arg_i32(k, i, pt->b_nfast));
#undef LK_ARG
  if (s) return s;
  const lk_gemm_tiles_t* t = &pt->t;
  const size_t nr = (size_t)(t->bm / t->tm), nc = (size_t)(t->bn / t->tn);
  size_t local[3] = {t->rows_x ? nr : nc, t->rows_x ? nc : nr, 1};
  size_t global[3] = {(size_t)((p->n + t->bn - 1) / t->bn) * local[0],
                      (size_t)((p->m + t->bm - 1) / t->bm) * local[1], (size_t)(nb0 * nb1)};
  return lightos_enqueue_kernel(LK_HANDLE(pt->q), k, 3, global, local, NULL);
}

static lightos_status_t lk_gemm_portable(lk_queue_t* q, const lk_gemm_plan_t* p, double alpha,
                                         double beta, const lightos_tensor_t* a,
                                         const lightos_tensor_t* b, const lightos_tensor_t* c) {
  const lightos_device_info_t* info = &q->context->device->hal->info;
  /* Index arithmetic in the kernel is 32-bit within a matrix and a batch. */
  if (p->m > INT_MAX || p->n > INT_MAX || p->k > INT_MAX)
    return LK_FAIL(LIGHTOS_UNSUPPORTED,
                   "gemm: %lld x %lld x %lld is too large for the portable kernel (each of M, N, "
                   "K must be < 2^31)",
                   (long long)p->m, (long long)p->n, (long long)p->k);
  lk_gemm_portable_t pt;
  memset(&pt, 0, sizeof pt);
  pt.q = q;
  pt.p = p;
  pt.a = a;
  pt.b = b;
  pt.c = c;
  pt.inner = p->nb < 2 ? p->nb : 2;
  int64_t inner_batch = 1;
  for (int d = p->nb - pt.inner; d < p->nb; ++d) inner_batch *= p->bshape[d];
  pt.t = lk_gemm_pick_tiles(info, p->dtype, p, inner_batch);
  if (inner_batch > INT_MAX)
    return LK_FAIL(LIGHTOS_UNSUPPORTED,
                   "gemm: %lld batched matrices in one launch (at most 2^31-1)",
                   (long long)inner_batch);
  /* K == 0: C = beta * C, exactly as alpha == 0. */
  const double al = p->k == 0 ? 0.0 : alpha;
  if (p->dtype == LIGHTOS_DTYPE_F64) {
    memcpy(&pt.alpha_bits, &al, 8);
    memcpy(&pt.beta_bits, &beta, 8);
  } else {
    float fa = (float)al, fb = (float)beta;
    uint32_t ua, ub;
    memcpy(&ua, &fa, 4);
    memcpy(&ub, &fb, 4);
    pt.alpha_bits = ua;
    pt.beta_bits = ub;
  }

  const char* dt = p->dtype == LIGHTOS_DTYPE_F64    ? "F64"
                   : p->dtype == LIGHTOS_DTYPE_F16  ? "F16"
                   : p->dtype == LIGHTOS_DTYPE_BF16 ? "BF16"
                                                    : "F32";
  /* Staging order: along the unit (else the smaller) stride. */
  pt.a_kfast = p->a_sk == 1 ? 1 : p->a_sm == 1 ? 0 : p->a_sk <= p->a_sm;
  pt.b_nfast = p->b_sn == 1 ? 1 : p->b_sk == 1 ? 0 : p->b_sn <= p->b_sk;
  const lk_gemm_tiles_t* t = &pt.t;
  char opts[360];
  int len = snprintf(opts, sizeof opts,
                     "-DGEMM_%s -DGEMM_BM=%d -DGEMM_BN=%d -DGEMM_BK=%d -DGEMM_TM=%d -DGEMM_TN=%d "
                     "-DGEMM_VM=%d -DGEMM_VN=%d -DGEMM_ROWS_X=%d -DGEMM_CHUNKED=%d -DGEMM_PAD=%d "
                     "-DGEMM_UNROLL=%d",
                     dt, t->bm, t->bn, t->bk, t->tm, t->tn, t->vm, t->vn, t->rows_x, t->chunked,
                     t->pad, t->unroll);
  /* GPUs: the staging order as a constant (one program per layout). */
  if (!t->chunked && len > 0 && (size_t)len < sizeof opts)
    snprintf(opts + len, sizeof opts - (size_t)len, " -DGEMM_A_KFAST=%d -DGEMM_B_NFAST=%d",
             pt.a_kfast, pt.b_nfast);
  /* f16/bf16 need the conversions of the numerics library. */
  const bool half = p->dtype == LIGHTOS_DTYPE_F16 || p->dtype == LIGHTOS_DTYPE_BF16;
  const char* parts_half[2] = {lk_cl_lk_math, lk_cl_gemm};
  const char* parts_plain[1] = {lk_cl_gemm};
  lightos_status_t s = half ? lk_ops_kernel(q->context, parts_half, 2, opts, "gemm", &pt.k)
                            : lk_ops_kernel(q->context, parts_plain, 1, opts, "gemm", &pt.k);
  if (s) return s;
  s = lk_gemm_for_outer(p, p->nb - pt.inner, lk_gemm_launch, &pt);
  lightos_kernel_release(pt.k);
  return s;
}

LIGHTOS_API lightos_status_t lightos_op_gemm(lightos_queue_t queue, bool trans_a, bool trans_b,
                                             double alpha, const lightos_tensor_t* a,
                                             const lightos_tensor_t* b, double beta,
                                             const lightos_tensor_t* c) {
  if (!a) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "gemm: tensor 'a' is NULL");
  if (!b) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "gemm: tensor 'b' is NULL");
  if (!c) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "gemm: tensor 'c' is NULL");
  const lightos_tensor_t* ts[3] = {a, b, c};
  static const char* const names[3] = {"a", "b", "c"};
  lk_queue_t* q;
  lightos_status_t s = lk_ops_check_all(queue, &q, ts, names, 3);
  if (s) return s;
  lk_gemm_plan_t p;
  s = lk_gemm_validate(trans_a, trans_b, a, b, c, &p);
  if (s) return s;
  s = lk_ops_check_writable(c, "c");
  if (s) return s;
  s = lk_ops_check_overlap(c, "c", a, "a", false);
  if (s) return s;
  s = lk_ops_check_overlap(c, "c", b, "b", false);
  if (s) return s;
  s = lk_ops_device_fp64(q->context, p.dtype, "c");
  if (s) return s;
  if (p.empty) return LIGHTOS_SUCCESS; /* nothing to compute */

  if (!lk_ops_deterministic(q->context)) {
    s = lk_gemm_native(q, &p, alpha, beta, a, b, c);
    if (s != LIGHTOS_UNSUPPORTED) return s;
  }
  return lk_gemm_portable(q, &p, alpha, beta, a, b, c);
}
