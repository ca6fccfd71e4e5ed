/* GEMM and conv2d on every device.
 *
 * GEMM: every dtype (f32, f64, f16, bf16) x every transpose combination x
 * shapes 1x1x1, 7x13x5, 65x33x129, against a float64 host reference with
 * tolerances by dtype; batched GEMM with broadcast batch dims (coalescible
 * and not, and more batch dims than a launch takes); non-contiguous views
 * (transposed storage, strided rows and columns, padded rows with an
 * offset, column-major C); alpha/beta, beta == 0 over a NaN-poisoned C,
 * alpha == 0 over NaN inputs.  Each case runs on the native path (default
 * context: OpenBLAS on the CPU device when installed; the test checks that
 * the library was called) and on the portable kernel (deterministic
 * context).  Memory of C outside the view is checked untouched.  The
 * portable kernel must give bitwise-identical results on every device,
 * and with its GPU tiling (LIGHTOS_GEMM_TILES=gpu) as with its CPU tiling.
 *
 * conv2d: forward and backward against a naive float64 host reference for
 * several stride / padding / dilation combinations, finite-difference
 * checks of the gradients, and bitwise agreement across devices in
 * deterministic mode.
 *
 * Bad input: shape, dtype and batch mismatches, overlap, expanded outputs,
 * NULL tensors, bad conv parameters.
 */
#define _GNU_SOURCE
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hal/cpu/cpu_backend.h"
#include "lightos/lightos.h"
#include "lk_test.h"

#define MAX_DEV 8

static uint32_t g_ndev;
static lightos_device_t g_devs[MAX_DEV];
static lightos_device_info_t g_info[MAX_DEV];
static lightos_context_t g_ctx[MAX_DEV][2]; /* [device][deterministic] */
static bool g_blas;                         /* the CPU device's native GEMM is available */

/* ---- host numerics ------------------------------------------------------------ */

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint32_t rnd_u32(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 32);
}
/* Uniform in [-1, 1). */
static double rnd_unit(void) { return (double)(rnd_u32() >> 8) / 8388608.0 - 1.0; }

static uint32_t f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float u2f(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 0x1f) return u2f(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    float v = (float)m * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return u2f(sign | ((e + 112) << 23) | (m << 13));
}

/* Round to nearest even; only used on values well inside the f16 range. */
static uint16_t float_to_half(float f) {
  uint32_t u = f2u(f), sign = (u >> 16) & 0x8000;
  float a = fabsf(f);
  if (a != a) return (uint16_t)(sign | 0x7e00);
  if (a >= 65520.0f) return (uint16_t)(sign | 0x7c00);
  if (a < 6.103515625e-05f) { /* subnormal half */
    float q = rintf(a * 16777216.0f);
    return (uint16_t)(sign | (uint32_t)q);
  }
  uint32_t au = f2u(a);
  uint32_t mant = au & 0x7fffff, exp = (au >> 23) - 112;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

static float bf16_to_float(uint16_t h) { return u2f((uint32_t)h << 16); }
static uint16_t float_to_bf16(float f) {
  uint32_t u = f2u(f);
  if (f != f) return (uint16_t)((u >> 16) | 0x40);
  uint32_t rest = u & 0xffff, h = u >> 16;
  if (rest > 0x8000 || (rest == 0x8000 && (h & 1))) h++;
  return (uint16_t)h;
}

static size_t dt_size(lightos_dtype_t dt) { return lightos_dtype_size(dt); }

static double load_el(const void* base, lightos_dtype_t dt, int64_t i) {
  switch (dt) {
    case LIGHTOS_DTYPE_F32:
      return ((const float*)base)[i];
    case LIGHTOS_DTYPE_F64:
      return ((const double*)base)[i];
    case LIGHTOS_DTYPE_F16:
      return half_to_float(((const uint16_t*)base)[i]);
    case LIGHTOS_DTYPE_BF16:
      return bf16_to_float(((const uint16_t*)base)[i]);
    default:
      return NAN;
  }
}

static void store_el(void* base, lightos_dtype_t dt, int64_t i, double v) {
  switch (dt) {
    case LIGHTOS_DTYPE_F32:
      ((float*)base)[i] = (float)v;
      break;
    case LIGHTOS_DTYPE_F64:
      ((double*)base)[i] = v;
      break;
    case LIGHTOS_DTYPE_F16:
      ((uint16_t*)base)[i] = float_to_half((float)v);
      break;
    case LIGHTOS_DTYPE_BF16:
      ((uint16_t*)base)[i] = float_to_bf16((float)v);
      break;
    default:
      break;
  }
}

/* A value exactly representable in every dtype for f16/bf16 (k/8 with
 * |k| <= 8), a full-precision random value for f32/f64. */
static double rnd_value(lightos_dtype_t dt) {
  if (dt == LIGHTOS_DTYPE_F16 || dt == LIGHTOS_DTYPE_BF16)
    return (double)((int)(rnd_u32() % 17) - 8) / 8.0;
  if (dt == LIGHTOS_DTYPE_F32) return (double)(float)rnd_unit();
  return rnd_unit();
}

static const char* dt_name(lightos_dtype_t dt) { return lightos_dtype_name(dt); }

/* ---- host-side tensors over device buffers ---------------------------------- */

typedef enum layout {
  L_CONTIG,  /* row-major                                               */
  L_TRANS,   /* the last two dims stored transposed (column-major)       */
  L_STRIDED, /* every other column, rows padded: no unit stride at all   */
  L_PADDED   /* row stride cols + 5, 7 elements of offset                 */
} layout_t;

static const char* layout_name(layout_t l) {
  static const char* const n[] = {"contig", "trans", "strided", "padded"};
  return n[l];
}

typedef struct htensor {
  lightos_tensor_t t;
  lightos_dtype_t dt;
  size_t storage_elems;   /* elements in the buffer */
  unsigned char* storage; /* host copy of the whole buffer */
  int64_t numel;
  double* val; /* logical values, row-major over the shape */
} htensor_t;

static int64_t numel_of(uint32_t nd, const int64_t* shape) {
  int64_t n = 1;
  for (uint32_t i = 0; i < nd; ++i) n *= shape[i];
  return n;
}

/* Storage offset (elements, from the buffer start) of logical element i. */
static int64_t storage_index(const htensor_t* h, int64_t i) {
  int64_t off = (int64_t)(h->t.offset / dt_size(h->dt));
  for (int d = (int)h->t.ndim - 1; d >= 0; --d) {
    int64_t s = h->t.shape[d];
    off += (i % s) * h->t.strides[d];
    i /= s;
  }
  return off;
}

static bool ht_fill(htensor_t* h, lightos_context_t ctx, size_t storage_elems, size_t off,
                    bool random, double fill);

/* Allocates a tensor of logical shape `shape` with layout `l` in ctx;
 * storage is filled with `fill` (bit pattern for everything outside the
 * view), the view with random values when `random`, else with `fill` too. */
static bool ht_make(htensor_t* h, lightos_context_t ctx, lightos_dtype_t dt, uint32_t nd,
                    const int64_t* shape, layout_t l, bool random, double fill) {
  memset(h, 0, sizeof *h);
  h->dt = dt;
  h->t.dtype = dt;
  h->t.ndim = nd;
  memcpy(h->t.shape, shape, nd * sizeof *shape);
  const int64_t rows = shape[nd - 2], cols = shape[nd - 1];
  int64_t off = 0, rs, cs, mat;
  switch (l) {
    case L_TRANS:
      rs = 1;
      cs = rows;
      mat = rows * cols;
      break;
    case L_STRIDED:
      cs = 2;
      rs = 2 * cols + 3;
      mat = rs * rows;
      break;
    case L_PADDED:
      cs = 1;
      rs = cols + 5;
      off = 7;
      mat = rs * rows;
      break;
    default:
      cs = 1;
      rs = cols;
      mat = rows * cols;
      break;
  }
  h->t.strides[nd - 1] = cs;
  h->t.strides[nd - 2] = rs;
  int64_t st = mat;
  for (int d = (int)nd - 3; d >= 0; --d) {
    h->t.strides[d] = st;
    st *= shape[d];
  }
  return ht_fill(h, ctx, (size_t)(off + st + 1), (size_t)off, random, fill);
}

/* With the shape and strides set in h->t: allocates storage_elems elements
 * (offset `off`), fills them with `fill` and the view with random values
 * (or `fill`), and uploads. */
static bool ht_fill(htensor_t* h, lightos_context_t ctx, size_t storage_elems, size_t off,
                    bool random, double fill) {
  lightos_dtype_t dt = h->dt;
  h->storage_elems = storage_elems;
  h->t.offset = off * dt_size(dt);
  h->numel = numel_of(h->t.ndim, h->t.shape);
  size_t bytes = h->storage_elems * dt_size(dt);
  h->storage = malloc(bytes);
  h->val = malloc((size_t)(h->numel ? h->numel : 1) * sizeof(double));
  if (!h->storage || !h->val) return false;
  for (size_t i = 0; i < h->storage_elems; ++i) store_el(h->storage, dt, (int64_t)i, fill);
  for (int64_t i = 0; i < h->numel; ++i) {
    double v = random ? rnd_value(dt) : fill;
    store_el(h->storage, dt, storage_index(h, i), v);
    h->val[i] = load_el(h->storage, dt, storage_index(h, i));
  }
  if (lightos_buffer_alloc(ctx, bytes, 0, &h->t.buffer)) return false;
  return lightos_buffer_write(h->t.buffer, 0, bytes, h->storage) == LIGHTOS_SUCCESS;
}

/* A tensor whose storage holds the logical dims in the order perm (storage
 * dim i is logical dim perm[i]), contiguous except that the innermost
 * storage dim is padded by `pad` elements, at an offset of 3 elements. */
static bool ht_make_perm(htensor_t* h, lightos_context_t ctx, lightos_dtype_t dt, uint32_t nd,
                         const int64_t* shape, const uint32_t* perm, int64_t pad, bool random,
                         double fill) {
  memset(h, 0, sizeof *h);
  h->dt = dt;
  h->t.dtype = dt;
  h->t.ndim = nd;
  memcpy(h->t.shape, shape, nd * sizeof *shape);
  int64_t st = 1;
  for (int i = (int)nd - 1; i >= 0; --i) {
    h->t.strides[perm[i]] = st;
    st *= shape[perm[i]] + (i == (int)nd - 1 ? pad : 0);
  }
  return ht_fill(h, ctx, (size_t)(st + 3 + 1), 3, random, fill);
}

/* Reads the buffer back; *outside_ok tells whether storage outside the view
 * kept its bits. */
static bool ht_read(htensor_t* h, bool* outside_ok) {
  size_t bytes = h->storage_elems * dt_size(h->dt);
  unsigned char* now = malloc(bytes);
  if (!now) return false;
  if (lightos_buffer_read(h->t.buffer, 0, bytes, now)) {
    free(now);
    return false;
  }
  char* inside = calloc(h->storage_elems, 1);
  for (int64_t i = 0; i < h->numel; ++i) {
    int64_t s = storage_index(h, i);
    h->val[i] = load_el(now, h->dt, s);
    if (inside) inside[s] = 1;
  }
  bool ok = true;
  size_t es = dt_size(h->dt);
  for (size_t i = 0; inside && i < h->storage_elems; ++i)
    if (!inside[i] && memcmp(now + i * es, h->storage + i * es, es)) ok = false;
  if (outside_ok) *outside_ok = ok;
  free(inside);
  free(now);
  return true;
}

static void ht_free(htensor_t* h) {
  if (h->t.buffer) lightos_buffer_release(h->t.buffer);
  free(h->storage);
  free(h->val);
  memset(h, 0, sizeof *h);
}

/* ---- GEMM reference and checks --------------------------------------------- */

typedef struct gemm_case {
  lightos_dtype_t dt;
  bool ta, tb;
  int64_t m, n, k;
  uint32_t a_nd, b_nd, c_nd;
  int64_t a_batch[4], b_batch[4], c_batch[4]; /* batch shapes (left part) */
  layout_t la, lb, lc;
  double alpha, beta;
  bool nan_c; /* poison C with NaN (beta must be 0) */
  bool nan_a; /* put NaN into A (alpha must be 0) */
} gemm_case_t;

/* Logical index of a batch position: `bidx` indexes c's batch shape; t has
 * its own (right-aligned, broadcast) batch shape. */
static int64_t bcast_batch(const int64_t* cb, uint32_t cnb, const int64_t* tb, uint32_t tnb,
                           int64_t bidx) {
  int64_t idx[8], r = bidx;
  for (int d = (int)cnb - 1; d >= 0; --d) {
    idx[d] = r % cb[d];
    r /= cb[d];
  }
  int64_t out = 0;
  for (uint32_t d = 0; d < tnb; ++d) {
    int cd = (int)d + (int)cnb - (int)tnb;
    int64_t i = cd >= 0 && tb[d] != 1 ? idx[cd] : 0;
    out = out * tb[d] + i;
  }
  return out;
}

static double tol_rel(lightos_dtype_t dt, int64_t k) {
  double sk = sqrt((double)(k > 1 ? k : 1));
  switch (dt) {
    case LIGHTOS_DTYPE_F64:
      return 1e-13 * sk;
    case LIGHTOS_DTYPE_F32:
      return 1e-5 * sk;
    default:
      return 1e-5 * sk; /* f32 accumulation; the output rounding is separate */
  }
}

/* Output rounding of the dtype, relative. */
static double out_ulp(lightos_dtype_t dt) {
  switch (dt) {
    case LIGHTOS_DTYPE_F16:
      return 1.0 / 2048.0;
    case LIGHTOS_DTYPE_BF16:
      return 1.0 / 256.0;
    case LIGHTOS_DTYPE_F32:
      return 1.2e-7;
    default:
      return 2.3e-16;
  }
}

/* Runs one case on (device, mode) and checks it. */
static void run_gemm_case(int di, int det, const gemm_case_t* gc, const char* label) {
  lightos_context_t ctx = g_ctx[di][det];
  lightos_queue_t q;
  LK_REQUIRE_OK(lightos_context_default_queue(ctx, &q));
  int64_t ashape[6], bshape[6], cshape[6];
  uint32_t anb = gc->a_nd - 2, bnb = gc->b_nd - 2, cnb = gc->c_nd - 2;
  memcpy(ashape, gc->a_batch, anb * sizeof(int64_t));
  memcpy(bshape, gc->b_batch, bnb * sizeof(int64_t));
  memcpy(cshape, gc->c_batch, cnb * sizeof(int64_t));
  ashape[anb] = gc->ta ? gc->k : gc->m;
  ashape[anb + 1] = gc->ta ? gc->m : gc->k;
  bshape[bnb] = gc->tb ? gc->n : gc->k;
  bshape[bnb + 1] = gc->tb ? gc->k : gc->n;
  cshape[cnb] = gc->m;
  cshape[cnb + 1] = gc->n;
  htensor_t A, B, C;
  bool ok = ht_make(&A, ctx, gc->dt, gc->a_nd, ashape, gc->la, true, 0.0) &&
            ht_make(&B, ctx, gc->dt, gc->b_nd, bshape, gc->lb, true, 0.0) &&
            ht_make(&C, ctx, gc->dt, gc->c_nd, cshape, gc->lc, !gc->nan_c, gc->nan_c ? NAN : 3.0);
  if (ok && gc->nan_a && A.numel) {
    /* NaN into every element of A: alpha == 0 must not read it. */
    for (int64_t i = 0; i < A.numel; ++i) store_el(A.storage, gc->dt, storage_index(&A, i), NAN);
    ok = lightos_buffer_write(A.t.buffer, 0, A.storage_elems * dt_size(gc->dt), A.storage) == 0;
  }
  if (!ok) {
    lk_test_fail(__FILE__, __LINE__, "%s: setting up the tensors failed: %s", label,
                 lightos_last_error()->message);
    ht_free(&A);
    ht_free(&B);
    ht_free(&C);
    return;
  }
  double* c0 = malloc((size_t)(C.numel ? C.numel : 1) * sizeof(double));
  memcpy(c0, C.val, (size_t)C.numel * sizeof(double));

  unsigned long long calls0 = lk_cpu_blas_call_count();
  lightos_status_t s = lightos_op_gemm(q, gc->ta, gc->tb, gc->alpha, &A.t, &B.t, gc->beta, &C.t);
  if (!s) s = lightos_queue_finish(q);
  unsigned long long calls = lk_cpu_blas_call_count() - calls0;
  if (s) {
    lk_test_fail(__FILE__, __LINE__, "%s: gemm failed: %s (%s)", label, lightos_status_string(s),
                 lightos_last_error()->message);
    goto done;
  }
  /* Path: the native library on the CPU device when it is there, for the
   * dtypes it takes and layouts BLAS can describe; never in deterministic
   * mode. */
  {
    bool blas_layout_ok = gc->la != L_STRIDED && gc->lb != L_STRIDED && gc->lc != L_STRIDED;
    bool want_native = !det && g_blas && g_info[di].backend == LIGHTOS_BACKEND_CPU &&
                       (gc->dt == LIGHTOS_DTYPE_F32 || gc->dt == LIGHTOS_DTYPE_F64) &&
                       blas_layout_ok && gc->k > 0 && C.numel > 0 &&
                       gc->alpha != 0.0; /* alpha = 0 must not read A, B: portable */
    if (det || g_info[di].backend != LIGHTOS_BACKEND_CPU)
      LK_CHECK_MSG(calls == 0, "%s: the native library was called %llu times", label, calls);
    else if (want_native)
      LK_CHECK_MSG(calls > 0, "%s: expected the native path, the library was not called", label);
  }
  bool outside_ok = false;
  if (!ht_read(&C, &outside_ok)) {
    lk_test_fail(__FILE__, __LINE__, "%s: reading C failed", label);
    goto done;
  }
  LK_CHECK_MSG(outside_ok, "%s: gemm wrote memory of C outside the view", label);
  int64_t batch = numel_of(cnb, gc->c_batch);
  const int64_t M = gc->m, N = gc->n, K = gc->k;
  int bad = 0;
  for (int64_t z = 0; z < batch && bad < 5; ++z) {
    int64_t za = bcast_batch(gc->c_batch, cnb, gc->a_batch, anb, z);
    int64_t zb = bcast_batch(gc->c_batch, cnb, gc->b_batch, bnb, z);
    const double* av = A.val + za * M * K;
    const double* bv = B.val + zb * K * N;
    for (int64_t i = 0; i < M && bad < 5; ++i)
      for (int64_t j = 0; j < N && bad < 5; ++j) {
        double sum = 0, mag = 0;
        if (gc->alpha != 0.0) {
          for (int64_t kk = 0; kk < K; ++kk) {
            double x = gc->ta ? av[kk * M + i] : av[i * K + kk];
            double y = gc->tb ? bv[j * K + kk] : bv[kk * N + j];
            sum += x * y;
            mag += fabs(x * y);
          }
        }
        double cin = c0[z * M * N + i * N + j];
        double ref = gc->alpha * sum + (gc->beta != 0.0 ? gc->beta * cin : 0.0);
        double cterm = gc->beta != 0.0 ? fabs(gc->beta * cin) : 0.0;
        double bound = tol_rel(gc->dt, K) * (fabs(gc->alpha) * mag + cterm) +
                       out_ulp(gc->dt) * fabs(ref) + 1e-300;
        double got = C.val[z * M * N + i * N + j];
        if (!(fabs(got - ref) <= bound)) {
          lk_test_fail(__FILE__, __LINE__,
                       "%s: C[batch %lld][%lld][%lld]: expected %.9g (+-%.3g), got %.9g", label,
                       (long long)z, (long long)i, (long long)j, ref, bound, got);
          bad++;
        }
      }
  }
done:
  free(c0);
  ht_free(&A);
  ht_free(&B);
  ht_free(&C);
}

static void gemm_case_init(gemm_case_t* gc, lightos_dtype_t dt, bool ta, bool tb, int64_t m,
                           int64_t n, int64_t k) {
  memset(gc, 0, sizeof *gc);
  gc->dt = dt;
  gc->ta = ta;
  gc->tb = tb;
  gc->m = m;
  gc->n = n;
  gc->k = k;
  gc->a_nd = gc->b_nd = gc->c_nd = 2;
  gc->alpha = 1.0;
  gc->beta = 0.0;
}

static bool dev_fp64(int di) { return g_info[di].fp64; }

static const lightos_dtype_t k_dtypes[4] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F64, LIGHTOS_DTYPE_F16,
                                            LIGHTOS_DTYPE_BF16};

static void name_case(char* buf, size_t cap, int di, int det, const char* what,
                      const gemm_case_t* gc) {
  snprintf(buf, cap, "%s/%s %s %s %s%s %lldx%lldx%lld", g_info[di].uri, det ? "det" : "native",
           what, dt_name(gc->dt), gc->ta ? "T" : "N", gc->tb ? "T" : "N", (long long)gc->m,
           (long long)gc->n, (long long)gc->k);
}

/* Every dtype x transposes x shapes. */
static void test_gemm_grid(int di, int det) {
  static const int64_t shapes[3][3] = {{1, 1, 1}, {7, 13, 5}, {65, 33, 129}};
  char label[160];
  for (int d = 0; d < 4; ++d) {
    if (k_dtypes[d] == LIGHTOS_DTYPE_F64 && !dev_fp64(di)) continue;
    for (int t = 0; t < 4; ++t)
      for (int s = 0; s < 3; ++s) {
        gemm_case_t gc;
        gemm_case_init(&gc, k_dtypes[d], t & 1, (t >> 1) & 1, shapes[s][0], shapes[s][1],
                       shapes[s][2]);
        gc.alpha = s == 2 ? 0.75 : 1.0;
        gc.beta = s == 1 ? -0.5 : 0.0;
        name_case(label, sizeof label, di, det, "grid", &gc);
        run_gemm_case(di, det, &gc, label);
      }
  }
}

/* Batched, with broadcast batch dims. */
static void test_gemm_batched(int di, int det) {
  char label[160];
  for (int d = 0; d < 4; ++d) {
    lightos_dtype_t dt = k_dtypes[d];
    if (dt == LIGHTOS_DTYPE_F64 && !dev_fp64(di)) continue;
    gemm_case_t gc;
    /* a [2,3,M,K] x b [3,K,N] -> c [2,3,M,N]: coalesces to one batch dim
     * for c and a, b broadcast over the outer. */
    gemm_case_init(&gc, dt, false, true, 9, 17, 11);
    gc.a_nd = 4;
    gc.b_nd = 3;
    gc.c_nd = 4;
    gc.a_batch[0] = 2, gc.a_batch[1] = 3;
    gc.b_batch[0] = 3;
    gc.c_batch[0] = 2, gc.c_batch[1] = 3;
    gc.beta = 0.5;
    name_case(label, sizeof label, di, det, "batch[2,3]x[3]", &gc);
    run_gemm_case(di, det, &gc, label);
    /* a [2,1,M,K] x b [2,3,K,N]: a broadcast on the inner batch dim only. */
    gemm_case_init(&gc, dt, true, false, 5, 70, 33);
    gc.a_nd = gc.b_nd = gc.c_nd = 4;
    gc.a_batch[0] = 2, gc.a_batch[1] = 1;
    gc.b_batch[0] = 2, gc.b_batch[1] = 3;
    gc.c_batch[0] = 2, gc.c_batch[1] = 3;
    name_case(label, sizeof label, di, det, "batch[2,1]x[2,3]", &gc);
    run_gemm_case(di, det, &gc, label);
    /* Three batch dims that cannot merge: the host loops the outer ones. */
    gemm_case_init(&gc, dt, false, false, 3, 4, 66);
    gc.a_nd = gc.b_nd = gc.c_nd = 5;
    gc.a_batch[0] = 2, gc.a_batch[1] = 1, gc.a_batch[2] = 3;
    gc.b_batch[0] = 1, gc.b_batch[1] = 2, gc.b_batch[2] = 3;
    gc.c_batch[0] = 2, gc.c_batch[1] = 2, gc.c_batch[2] = 3;
    gc.alpha = -1.25;
    name_case(label, sizeof label, di, det, "batch[2,1,3]x[1,2,3]", &gc);
    run_gemm_case(di, det, &gc, label);
    /* A batch of size 0 in c: nothing to do, nothing touched. */
    gemm_case_init(&gc, dt, false, false, 3, 4, 5);
    gc.a_nd = gc.b_nd = gc.c_nd = 3;
    gc.a_batch[0] = 0, gc.b_batch[0] = 1, gc.c_batch[0] = 0;
    name_case(label, sizeof label, di, det, "batch[0]", &gc);
    run_gemm_case(di, det, &gc, label);
  }
}

/* Non-contiguous views, alpha/beta, NaN poisoning. */
static void test_gemm_views(int di, int det) {
  char label[200];
  static const layout_t ls[4] = {L_CONTIG, L_TRANS, L_STRIDED, L_PADDED};
  for (int d = 0; d < 4; ++d) {
    lightos_dtype_t dt = k_dtypes[d];
    if (dt == LIGHTOS_DTYPE_F64 && !dev_fp64(di)) continue;
    for (int la = 0; la < 4; ++la)
      for (int lc = 0; lc < 4; ++lc) {
        gemm_case_t gc;
        gemm_case_init(&gc, dt, la == 3, false, 19, 23, 71);
        gc.la = ls[la];
        gc.lb = ls[(la + lc) % 4];
        gc.lc = ls[lc];
        gc.alpha = 1.5;
        gc.beta = lc == 2 ? 0.0 : -2.0;
        char what[64];
        snprintf(what, sizeof what, "views a=%s b=%s c=%s", layout_name(gc.la), layout_name(gc.lb),
                 layout_name(gc.lc));
        name_case(label, sizeof label, di, det, what, &gc);
        run_gemm_case(di, det, &gc, label);
      }
    /* beta == 0 over a NaN C: C is not read. */
    gemm_case_t gc;
    gemm_case_init(&gc, dt, false, true, 33, 17, 40);
    gc.nan_c = true;
    gc.beta = 0.0;
    gc.alpha = 2.0;
    name_case(label, sizeof label, di, det, "beta=0 NaN C", &gc);
    run_gemm_case(di, det, &gc, label);
    /* alpha == 0 over NaN A: C = beta * C. */
    gemm_case_init(&gc, dt, true, false, 12, 31, 9);
    gc.nan_a = true;
    gc.alpha = 0.0;
    gc.beta = 0.5;
    name_case(label, sizeof label, di, det, "alpha=0 NaN A", &gc);
    run_gemm_case(di, det, &gc, label);
    /* K == 0: C = beta * C. */
    gemm_case_init(&gc, dt, false, false, 6, 7, 0);
    gc.beta = -1.0;
    name_case(label, sizeof label, di, det, "K=0", &gc);
    run_gemm_case(di, det, &gc, label);
  }
}

/* ---- bitwise determinism across devices and tilings -------------------- */

typedef struct det_out {
  unsigned char* bytes;
  size_t n;
} det_out_t;

/* Runs one deterministic GEMM on device di; returns C's bytes. */
static bool det_run(int di, lightos_dtype_t dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                    uint64_t seed, det_out_t* out) {
  rng = seed;
  lightos_context_t ctx = g_ctx[di][1];
  lightos_queue_t q;
  if (lightos_context_default_queue(ctx, &q)) return false;
  int64_t as[2] = {ta ? k : m, ta ? m : k}, bs[2] = {tb ? n : k, tb ? k : n}, cs[2] = {m, n};
  htensor_t A, B, C;
  bool ok = ht_make(&A, ctx, dt, 2, as, L_CONTIG, true, 0) &&
            ht_make(&B, ctx, dt, 2, bs, L_CONTIG, true, 0) &&
            ht_make(&C, ctx, dt, 2, cs, L_CONTIG, true, 0);
  ok = ok && lightos_op_gemm(q, ta, tb, 0.8125, &A.t, &B.t, -0.375, &C.t) == 0 &&
       lightos_queue_finish(q) == 0;
  if (ok) {
    out->n = (size_t)(m * n) * dt_size(dt);
    out->bytes = malloc(out->n);
    ok = out->bytes && lightos_buffer_read(C.t.buffer, 0, out->n, out->bytes) == 0;
  }
  ht_free(&A);
  ht_free(&B);
  ht_free(&C);
  return ok;
}

static void test_gemm_bitwise(void) {
  static const struct {
    int64_t m, n, k;
    bool ta, tb;
  } cases[] = {{37, 41, 300, false, false},
               {130, 67, 129, true, false},
               {64, 64, 64, false, true},
               {3, 200, 17, true, true}};
  int compared = 0;
  for (int d = 0; d < 4; ++d)
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
      det_out_t ref = {0};
      int ref_dev = -1;
      for (int di = 0; di < (int)g_ndev; ++di) {
        if (k_dtypes[d] == LIGHTOS_DTYPE_F64 && !dev_fp64(di)) continue;
        /* The CPU tiling, then (on OpenCL devices) the GPU tiling. */
        for (int tiling = 0; tiling < 2; ++tiling) {
          if (tiling == 1 && g_info[di].backend != LIGHTOS_BACKEND_OPENCL) continue;
          /* The GPU tiling on a CPU OpenCL device: f32, NN and TN only, to
           * keep the test's compile time down (LIGHTOS_GEMM_TILES=gpu runs
           * the whole test with it). */
          if (tiling == 1 && (k_dtypes[d] != LIGHTOS_DTYPE_F32 || c >= 2)) continue;
          if (tiling == 1) setenv("LIGHTOS_GEMM_TILES", "gpu", 1);
          det_out_t o = {0};
          bool ok = det_run(di, k_dtypes[d], cases[c].ta, cases[c].tb, cases[c].m, cases[c].n,
                            cases[c].k, 0x1234567ull + c, &o);
          unsetenv("LIGHTOS_GEMM_TILES");
          if (!ok) {
            lk_test_fail(__FILE__, __LINE__, "%s %s: deterministic gemm failed: %s", g_info[di].uri,
                         dt_name(k_dtypes[d]), lightos_last_error()->message);
            free(o.bytes);
            continue;
          }
          if (ref_dev < 0) {
            ref = o;
            ref_dev = di;
            continue;
          }
          size_t es = dt_size(k_dtypes[d]), first = SIZE_MAX;
          for (size_t i = 0; i < o.n; i += es)
            if (memcmp(o.bytes + i, ref.bytes + i, es)) {
              first = i / es;
              break;
            }
          compared++;
          if (first != SIZE_MAX) {
            double x = load_el(ref.bytes, k_dtypes[d], (int64_t)first);
            double y = load_el(o.bytes, k_dtypes[d], (int64_t)first);
            lk_test_fail(__FILE__, __LINE__,
                         "%s %lldx%lldx%lld: %s (%s tiling) differs from %s at element %zu: "
                         "%.17g vs %.17g",
                         dt_name(k_dtypes[d]), (long long)cases[c].m, (long long)cases[c].n,
                         (long long)cases[c].k, g_info[di].uri, tiling ? "GPU" : "CPU",
                         g_info[ref_dev].uri, first, y, x);
          }
          free(o.bytes);
        }
      }
      free(ref.bytes);
    }
  if (compared == 0) lk_test_skip("only one device and no OpenCL device: nothing to compare");
}

/* ---- bad input -------------------------------------------------------------- */

static lightos_tensor_t mk(lightos_buffer_t buf, lightos_dtype_t dt, uint32_t nd, int64_t d0,
                           int64_t d1, int64_t d2) {
  lightos_tensor_t t;
  memset(&t, 0, sizeof t);
  t.buffer = buf;
  t.dtype = dt;
  t.ndim = nd;
  int64_t dims[3] = {d0, d1, d2};
  memcpy(t.shape, dims, nd * sizeof(int64_t));
  int64_t st = 1;
  for (int d = (int)nd - 1; d >= 0; --d) {
    t.strides[d] = st;
    st *= t.shape[d];
  }
  return t;
}

#define EXPECT_FAIL(call, want_status, substr)                                                  \
  do {                                                                                          \
    lightos_status_t s_ = (call);                                                               \
    const char* m_ = lightos_last_error()->message;                                             \
    if (s_ != (want_status))                                                                    \
      lk_test_fail(__FILE__, __LINE__, "%s: expected %s, got %s (%s)", #call,                   \
                   lightos_status_string(want_status), lightos_status_string(s_), m_);          \
    else if (!strstr(m_, (substr)))                                                             \
      lk_test_fail(__FILE__, __LINE__, "%s: message \"%s\" does not mention \"%s\"", #call, m_, \
                   (substr));                                                                   \
  } while (0)

static void test_gemm_bad_input(int di) {
  lightos_context_t ctx = g_ctx[di][0];
  lightos_queue_t q;
  LK_REQUIRE_OK(lightos_context_default_queue(ctx, &q));
  lightos_buffer_t ba, bb, bc, bi;
  LK_REQUIRE_OK(lightos_buffer_alloc(ctx, 4096, 0, &ba));
  LK_REQUIRE_OK(lightos_buffer_alloc(ctx, 4096, 0, &bb));
  LK_REQUIRE_OK(lightos_buffer_alloc(ctx, 4096, 0, &bc));
  LK_REQUIRE_OK(lightos_buffer_alloc(ctx, 4096, 0, &bi));
  const lightos_dtype_t F = LIGHTOS_DTYPE_F32;
  lightos_tensor_t a = mk(ba, F, 2, 4, 5, 0), b = mk(bb, F, 2, 5, 6, 0), c = mk(bc, F, 2, 4, 6, 0);
  /* A valid call first, so the failures below are about what they change. */
  LK_CHECK_STATUS(lightos_op_gemm(q, false, false, 1, &a, &b, 0, &c), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
  lightos_tensor_t x;
  /* inner dims */
  x = mk(bb, F, 2, 4, 6, 0);
  EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, &a, &x, 0, &c), LIGHTOS_INVALID_ARGUMENT,
              "inner dims");
  EXPECT_FAIL(lightos_op_gemm(q, true, false, 1, &a, &b, 0, &c), LIGHTOS_INVALID_ARGUMENT,
              "inner dims");
  /* c shape */
  x = mk(bc, F, 2, 4, 7, 0);
  EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, &a, &b, 0, &x), LIGHTOS_INVALID_ARGUMENT,
              "'c' is 4 x 7");
  /* dtypes */
  x = mk(bb, LIGHTOS_DTYPE_F64, 2, 5, 6, 0);
  EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, &a, &x, 0, &c), LIGHTOS_INVALID_ARGUMENT,
              "'b' is f64 but 'c' is f32");
  lightos_tensor_t ia = mk(ba, LIGHTOS_DTYPE_I32, 2, 4, 5, 0),
                   ib = mk(bb, LIGHTOS_DTYPE_I32, 2, 5, 6, 0),
                   ic = mk(bc, LIGHTOS_DTYPE_I32, 2, 4, 6, 0);
  EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, &ia, &ib, 0, &ic), LIGHTOS_INVALID_ARGUMENT,
              "dtype i32");
  /* ndim */
  x = mk(ba, F, 1, 20, 0, 0);
  EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, &x, &b, 0, &c), LIGHTOS_INVALID_ARGUMENT,
              "'a' has 1 dims");
  /* batch broadcast */
  lightos_tensor_t a3 = mk(ba, F, 3, 2, 4, 5), b3 = mk(bb, F, 3, 3, 5, 6),
                   c3 = mk(bc, F, 3, 3, 4, 6);
  EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, &a3, &b3, 0, &c3), LIGHTOS_INVALID_ARGUMENT,
              "does not broadcast");
  EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, &a3, &b, 0, &c), LIGHTOS_INVALID_ARGUMENT,
              "extra dim");
  /* overlap: c over a's memory, and c inside b */
  x = mk(ba, F, 2, 4, 6, 0);
  EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, &a, &b, 0, &x), LIGHTOS_INVALID_ARGUMENT,
              "overlaps input 'a'");
  x = mk(bb, F, 2, 4, 6, 0);
  x.offset = 40;
  EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, &a, &b, 0, &x), LIGHTOS_INVALID_ARGUMENT,
              "overlaps input 'b'");
  /* an expanded c (stride 0) */
  x = c;
  x.strides[0] = 0;
  EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, &a, &b, 0, &x), LIGHTOS_INVALID_ARGUMENT,
              "overlapping elements");
  /* NULLs, a foreign buffer, a tensor past its buffer */
  EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, NULL, &b, 0, &c), LIGHTOS_INVALID_ARGUMENT,
              "'a' is NULL");
  EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, &a, &b, 0, NULL), LIGHTOS_INVALID_ARGUMENT,
              "'c' is NULL");
  EXPECT_FAIL(lightos_op_gemm(NULL, false, false, 1, &a, &b, 0, &c), LIGHTOS_INVALID_ARGUMENT,
              "queue");
  x = mk(bc, F, 2, 40, 60, 0);
  lightos_tensor_t xa = mk(ba, F, 2, 40, 5, 0);
  EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, &xa, &b, 0, &x), LIGHTOS_OUT_OF_RANGE,
              "does not fit");
  if (g_ndev > 1) {
    int other = di == 0 ? 1 : 0;
    lightos_buffer_t fb;
    if (lightos_buffer_alloc(g_ctx[other][0], 4096, 0, &fb) == 0) {
      x = mk(fb, F, 2, 4, 6, 0);
      EXPECT_FAIL(lightos_op_gemm(q, false, false, 1, &a, &b, 0, &x), LIGHTOS_INVALID_ARGUMENT,
                  "another context");
      lightos_buffer_release(fb);
    }
  }
  /* The queue still works. */
  LK_CHECK_STATUS(lightos_op_gemm(q, false, false, 1, &a, &b, 0, &c), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
  lightos_buffer_release(ba);
  lightos_buffer_release(bb);
  lightos_buffer_release(bc);
  lightos_buffer_release(bi);
}

/* ---- conv2d ------------------------------------------------------------------- */

typedef struct conv_case {
  int64_t n, c, h, w, cout, kh, kw;
  int s[2], p[2], d[2];
  bool bias;
} conv_case_t;

static int64_t conv_out_dim(int64_t in, int64_t k, int s, int p, int d) {
  return (in + 2 * p - (int64_t)d * (k - 1) - 1) / s + 1;
}

static lightos_conv2d_params_t conv_params(const conv_case_t* cc) {
  lightos_conv2d_params_t p;
  for (int i = 0; i < 2; ++i) {
    p.stride[i] = cc->s[i];
    p.padding[i] = cc->p[i];
    p.dilation[i] = cc->d[i];
  }
  return p;
}

/* Naive float64 reference: forward (out, and |terms| in mag) and the
 * gradients for grad_out g (gx, gw, gb and their |terms|). */
static void conv_ref(const conv_case_t* cc, const double* x, const double* w, const double* b,
                     const double* g, double* out, double* omag, double* gx, double* gxm,
                     double* gw, double* gwm, double* gb, double* gbm) {
  const int64_t OH = conv_out_dim(cc->h, cc->kh, cc->s[0], cc->p[0], cc->d[0]);
  const int64_t OW = conv_out_dim(cc->w, cc->kw, cc->s[1], cc->p[1], cc->d[1]);
  const int64_t C = cc->c, H = cc->h, W = cc->w, KH = cc->kh, KW = cc->kw, CO = cc->cout;
  if (gx) memset(gx, 0, (size_t)(cc->n * C * H * W) * sizeof(double));
  if (gxm) memset(gxm, 0, (size_t)(cc->n * C * H * W) * sizeof(double));
  if (gw) memset(gw, 0, (size_t)(CO * C * KH * KW) * sizeof(double));
  if (gwm) memset(gwm, 0, (size_t)(CO * C * KH * KW) * sizeof(double));
  if (gb) memset(gb, 0, (size_t)CO * sizeof(double));
  if (gbm) memset(gbm, 0, (size_t)CO * sizeof(double));
  for (int64_t n = 0; n < cc->n; ++n)
    for (int64_t co = 0; co < CO; ++co)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t oi = ((n * CO + co) * OH + oh) * OW + ow;
          double sum = b ? b[co] : 0.0, mag = b ? fabs(b[co]) : 0.0;
          const double gv = g ? g[oi] : 0.0;
          if (gb) {
            gb[co] += gv;
            gbm[co] += fabs(gv);
          }
          for (int64_t c = 0; c < C; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t ih = oh * cc->s[0] - cc->p[0] + kh * cc->d[0];
                const int64_t iw = ow * cc->s[1] - cc->p[1] + kw * cc->d[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t xi = ((n * C + c) * H + ih) * W + iw;
                const int64_t wi = ((co * C + c) * KH + kh) * KW + kw;
                sum += x[xi] * w[wi];
                mag += fabs(x[xi] * w[wi]);
                if (gx) {
                  gx[xi] += gv * w[wi];
                  gxm[xi] += fabs(gv * w[wi]);
                }
                if (gw) {
                  gw[wi] += gv * x[xi];
                  gwm[wi] += fabs(gv * x[xi]);
                }
              }
          if (out) {
            out[oi] = sum;
            omag[oi] = mag;
          }
        }
}

static int conv_compare(const char* label, const char* what, lightos_dtype_t dt, int64_t n,
                        const double* got, const double* ref, const double* mag, int64_t terms) {
  int bad = 0;
  for (int64_t i = 0; i < n && bad < 4; ++i) {
    double bound = tol_rel(dt, terms) * mag[i] + out_ulp(dt) * fabs(ref[i]) + 1e-300;
    if (dt == LIGHTOS_DTYPE_F16 || dt == LIGHTOS_DTYPE_BF16) bound += out_ulp(dt) * mag[i];
    if (!(fabs(got[i] - ref[i]) <= bound)) {
      lk_test_fail(__FILE__, __LINE__, "%s: %s[%lld]: expected %.9g (+-%.3g), got %.9g", label,
                   what, (long long)i, ref[i], bound, got[i]);
      bad++;
    }
  }
  return bad;
}

static const conv_case_t k_conv_cases[] = {
    {2, 3, 9, 8, 4, 3, 3, {1, 1}, {0, 0}, {1, 1}, true},
    {2, 3, 9, 8, 5, 3, 3, {2, 2}, {1, 1}, {1, 1}, false},
    {1, 2, 11, 10, 3, 3, 3, {1, 1}, {2, 2}, {2, 2}, true},
    {3, 4, 7, 9, 2, 2, 3, {2, 1}, {0, 1}, {1, 2}, true},
    {2, 5, 6, 6, 3, 1, 1, {1, 1}, {0, 0}, {1, 1}, true},
    {1, 1, 5, 5, 1, 5, 5, {1, 1}, {0, 0}, {1, 1}, false},
};

/* One case: forward then backward, layouts chosen by `variant` (0: all
 * contiguous; 1: x in NHWC storage, weight [Cout, KH, KW, C] storage, out
 * and grad tensors with padded rows). */
static void run_conv_case(int di, int det, lightos_dtype_t dt, const conv_case_t* cc, int variant,
                          const char* label) {
  lightos_context_t ctx = g_ctx[di][det];
  lightos_queue_t q;
  LK_REQUIRE_OK(lightos_context_default_queue(ctx, &q));
  const int64_t OH = conv_out_dim(cc->h, cc->kh, cc->s[0], cc->p[0], cc->d[0]);
  const int64_t OW = conv_out_dim(cc->w, cc->kw, cc->s[1], cc->p[1], cc->d[1]);
  const int64_t xs[4] = {cc->n, cc->c, cc->h, cc->w}, ws[4] = {cc->cout, cc->c, cc->kh, cc->kw};
  const int64_t os[4] = {cc->n, cc->cout, OH, OW}, bs[1] = {cc->cout};
  static const uint32_t id4[4] = {0, 1, 2, 3}, nhwc[4] = {0, 2, 3, 1}, id1[1] = {0};
  const uint32_t* xp = variant ? nhwc : id4;
  const int64_t pad = variant ? 2 : 0;
  htensor_t X, Wt, B, O, G, GX, GW, GB;
  memset(&B, 0, sizeof B);
  bool ok = ht_make_perm(&X, ctx, dt, 4, xs, xp, 0, true, 0) &&
            ht_make_perm(&Wt, ctx, dt, 4, ws, xp, 0, true, 0) &&
            (!cc->bias || ht_make_perm(&B, ctx, dt, 1, bs, id1, 0, true, 0)) &&
            ht_make_perm(&O, ctx, dt, 4, os, id4, pad, false, NAN) &&
            ht_make_perm(&G, ctx, dt, 4, os, xp, 0, true, 0) &&
            ht_make_perm(&GX, ctx, dt, 4, xs, id4, pad, false, NAN) &&
            ht_make_perm(&GW, ctx, dt, 4, ws, id4, pad, false, NAN) &&
            ht_make_perm(&GB, ctx, dt, 1, bs, id1, 0, false, NAN);
  const int64_t xn = X.numel, wn = Wt.numel, on = O.numel;
  double* ref = malloc(sizeof(double) * (size_t)(on + 2 * xn + 2 * wn + 2 * cc->cout + on));
  if (!ok || !ref) {
    lk_test_fail(__FILE__, __LINE__, "%s: setting up the tensors failed: %s", label,
                 lightos_last_error()->message);
    goto done;
  }
  {
    double *omag = ref + on, *gx = omag + on, *gxm = gx + xn, *gw = gxm + xn, *gwm = gw + wn,
           *gb = gwm + wn, *gbm = gb + cc->cout;
    lightos_conv2d_params_t prm = conv_params(cc);
    lightos_status_t s = lightos_op_conv2d(q, &X.t, &Wt.t, cc->bias ? &B.t : NULL, &prm, &O.t);
    if (!s) s = lightos_op_conv2d_backward(q, &X.t, &Wt.t, &G.t, &prm, &GX.t, &GW.t, &GB.t);
    if (!s) s = lightos_queue_finish(q);
    if (s) {
      lk_test_fail(__FILE__, __LINE__, "%s: conv2d failed: %s (%s)", label,
                   lightos_status_string(s), lightos_last_error()->message);
      goto done;
    }
    bool o1 = false, o2 = false, o3 = false, o4 = false;
    if (!ht_read(&O, &o1) || !ht_read(&GX, &o2) || !ht_read(&GW, &o3) || !ht_read(&GB, &o4)) {
      lk_test_fail(__FILE__, __LINE__, "%s: reading results failed", label);
      goto done;
    }
    LK_CHECK_MSG(o1 && o2 && o3 && o4, "%s: memory outside an output view was written", label);
    conv_ref(cc, X.val, Wt.val, cc->bias ? B.val : NULL, G.val, ref, omag, gx, gxm, gw, gwm, gb,
             gbm);
    const int64_t ckk = cc->c * cc->kh * cc->kw;
    conv_compare(label, "out", dt, on, O.val, ref, omag, ckk);
    conv_compare(label, "grad_x", dt, xn, GX.val, gx, gxm, cc->cout * cc->kh * cc->kw);
    conv_compare(label, "grad_weight", dt, wn, GW.val, gw, gwm, cc->n * OH * OW);
    conv_compare(label, "grad_bias", dt, cc->cout, GB.val, gb, gbm, cc->n * OH * OW);
  }
done:
  free(ref);
  ht_free(&X);
  ht_free(&Wt);
  ht_free(&B);
  ht_free(&O);
  ht_free(&G);
  ht_free(&GX);
  ht_free(&GW);
  ht_free(&GB);
}

static void test_conv(int di, int det) {
  char label[200];
  static const lightos_dtype_t dts[3] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F64, LIGHTOS_DTYPE_F16};
  for (size_t c = 0; c < sizeof k_conv_cases / sizeof k_conv_cases[0]; ++c)
    for (int d = 0; d < 3; ++d) {
      if (dts[d] == LIGHTOS_DTYPE_F64 && !dev_fp64(di)) continue;
      if (dts[d] == LIGHTOS_DTYPE_F16 && c % 3) continue; /* a few f16 cases */
      const conv_case_t* cc = &k_conv_cases[c];
      int variant = (int)((c + (size_t)d) % 2);
      snprintf(label, sizeof label,
               "%s/%s conv %s n%lld c%lld %lldx%lld co%lld k%lldx%lld s%d,%d p%d,%d d%d,%d%s %s",
               g_info[di].uri, det ? "det" : "native", dt_name(dts[d]), (long long)cc->n,
               (long long)cc->c, (long long)cc->h, (long long)cc->w, (long long)cc->cout,
               (long long)cc->kh, (long long)cc->kw, cc->s[0], cc->s[1], cc->p[0], cc->p[1],
               cc->d[0], cc->d[1], cc->bias ? " bias" : "", variant ? "strided" : "contig");
      run_conv_case(di, det, dts[d], cc, variant, label);
    }
  /* Large enough for more than one chunk of images (the column matrix is
   * capped at 2^22 elements: 2 images, then 1), f32. */
  const conv_case_t big = {3, 24, 86, 84, 2, 3, 3, {1, 1}, {0, 0}, {1, 1}, true};
  snprintf(label, sizeof label, "%s/%s conv f32 chunked n3 c24 86x84 co2 k3x3", g_info[di].uri,
           det ? "det" : "native");
  run_conv_case(di, det, LIGHTOS_DTYPE_F32, &big, 0, label);
}

/* sum(conv2d(x, w, b) * r) on the device, in f64. */
static double conv_loss(lightos_queue_t q, const conv_case_t* cc, htensor_t* X, htensor_t* Wt,
                        htensor_t* B, htensor_t* O, const double* r, bool* ok) {
  lightos_conv2d_params_t prm = conv_params(cc);
  size_t xb = X->storage_elems * 8, wb = Wt->storage_elems * 8, bb = B->storage_elems * 8;
  *ok = lightos_buffer_write(X->t.buffer, 0, xb, X->storage) == 0 &&
        lightos_buffer_write(Wt->t.buffer, 0, wb, Wt->storage) == 0 &&
        lightos_buffer_write(B->t.buffer, 0, bb, B->storage) == 0 &&
        lightos_op_conv2d(q, &X->t, &Wt->t, &B->t, &prm, &O->t) == 0 &&
        lightos_queue_finish(q) == 0 && ht_read(O, NULL);
  double l = 0;
  for (int64_t i = 0; i < O->numel; ++i) l += O->val[i] * r[i];
  return l;
}

/* Finite differences of L = sum(conv2d(x, w, b) * r) against the
 * backward's gradients (grad_out = r), f64. */
static void test_conv_fd(int di, int det) {
  if (!dev_fp64(di)) {
    lk_test_skip("%s has no fp64", g_info[di].uri);
    return;
  }
  lightos_context_t ctx = g_ctx[di][det];
  lightos_queue_t q;
  LK_REQUIRE_OK(lightos_context_default_queue(ctx, &q));
  const conv_case_t cc = {2, 3, 7, 6, 2, 3, 2, {2, 1}, {1, 0}, {1, 2}, true};
  const lightos_dtype_t dt = LIGHTOS_DTYPE_F64;
  const int64_t OH = conv_out_dim(cc.h, cc.kh, cc.s[0], cc.p[0], cc.d[0]);
  const int64_t OW = conv_out_dim(cc.w, cc.kw, cc.s[1], cc.p[1], cc.d[1]);
  const int64_t xs[4] = {cc.n, cc.c, cc.h, cc.w}, ws[4] = {cc.cout, cc.c, cc.kh, cc.kw};
  const int64_t os[4] = {cc.n, cc.cout, OH, OW}, bs[1] = {cc.cout};
  static const uint32_t id4[4] = {0, 1, 2, 3}, id1[1] = {0};
  htensor_t X, Wt, B, O, G, GX, GW, GB;
  bool ok = ht_make_perm(&X, ctx, dt, 4, xs, id4, 0, true, 0) &&
            ht_make_perm(&Wt, ctx, dt, 4, ws, id4, 0, true, 0) &&
            ht_make_perm(&B, ctx, dt, 1, bs, id1, 0, true, 0) &&
            ht_make_perm(&O, ctx, dt, 4, os, id4, 0, false, 0) &&
            ht_make_perm(&G, ctx, dt, 4, os, id4, 0, true, 0) &&
            ht_make_perm(&GX, ctx, dt, 4, xs, id4, 0, false, NAN) &&
            ht_make_perm(&GW, ctx, dt, 4, ws, id4, 0, false, NAN) &&
            ht_make_perm(&GB, ctx, dt, 1, bs, id1, 0, false, NAN);
  lightos_conv2d_params_t prm = conv_params(&cc);
  ok = ok && lightos_op_conv2d_backward(q, &X.t, &Wt.t, &G.t, &prm, &GX.t, &GW.t, &GB.t) == 0 &&
       lightos_queue_finish(q) == 0 && ht_read(&GX, NULL) && ht_read(&GW, NULL) &&
       ht_read(&GB, NULL);
  if (!ok) {
    lk_test_fail(__FILE__, __LINE__, "%s: conv2d_backward failed: %s", g_info[di].uri,
                 lightos_last_error()->message);
  } else {
    htensor_t* ins[3] = {&X, &Wt, &B};
    htensor_t* grads[3] = {&GX, &GW, &GB};
    static const char* const nm[3] = {"x", "weight", "bias"};
    for (int t = 0; t < 3 && ok; ++t)
      for (int rep = 0; rep < 4 && ok; ++rep) {
        htensor_t* h = ins[t];
        int64_t i = (int64_t)(rnd_u32() % (uint32_t)h->numel);
        int64_t si = storage_index(h, i);
        const double v0 = h->val[i], eps = 1e-3;
        store_el(h->storage, dt, si, v0 + eps);
        double lp = conv_loss(q, &cc, &X, &Wt, &B, &O, G.val, &ok);
        store_el(h->storage, dt, si, v0 - eps);
        double lm = conv_loss(q, &cc, &X, &Wt, &B, &O, G.val, &ok);
        store_el(h->storage, dt, si, v0);
        double fd = (lp - lm) / (2 * eps), an = grads[t]->val[i];
        LK_CHECK_MSG(ok, "%s: forward for the finite difference failed: %s", g_info[di].uri,
                     lightos_last_error()->message);
        LK_CHECK_MSG(fabs(fd - an) <= 1e-7 * (1 + fabs(an)),
                     "%s: d loss / d %s[%lld]: finite difference %.12g, backward %.12g",
                     g_info[di].uri, nm[t], (long long)i, fd, an);
      }
  }
  ht_free(&X);
  ht_free(&Wt);
  ht_free(&B);
  ht_free(&O);
  ht_free(&G);
  ht_free(&GX);
  ht_free(&GW);
  ht_free(&GB);
}

/* Deterministic conv2d (forward + backward, f32) gives the same bits on
 * every device. */
static void test_conv_bitwise(void) {
  const conv_case_t cc = {3, 4, 10, 9, 5, 3, 3, {2, 1}, {1, 1}, {1, 2}, true};
  const int64_t OH = conv_out_dim(cc.h, cc.kh, cc.s[0], cc.p[0], cc.d[0]);
  const int64_t OW = conv_out_dim(cc.w, cc.kw, cc.s[1], cc.p[1], cc.d[1]);
  const int64_t xs[4] = {cc.n, cc.c, cc.h, cc.w}, ws[4] = {cc.cout, cc.c, cc.kh, cc.kw};
  const int64_t os[4] = {cc.n, cc.cout, OH, OW}, bs[1] = {cc.cout};
  static const uint32_t id4[4] = {0, 1, 2, 3}, id1[1] = {0};
  const lightos_dtype_t dt = LIGHTOS_DTYPE_F32;
  double* first[4] = {NULL, NULL, NULL, NULL};
  int64_t counts[4] = {0, 0, 0, 0};
  int compared = 0;
  for (uint32_t di = 0; di < g_ndev; ++di) {
    lightos_context_t ctx = g_ctx[di][1];
    lightos_queue_t q;
    LK_REQUIRE_OK(lightos_context_default_queue(ctx, &q));
    rng = 0xC0FFEEull;
    htensor_t X, Wt, B, O, G, GX, GW, GB;
    bool ok = ht_make_perm(&X, ctx, dt, 4, xs, id4, 0, true, 0) &&
              ht_make_perm(&Wt, ctx, dt, 4, ws, id4, 0, true, 0) &&
              ht_make_perm(&B, ctx, dt, 1, bs, id1, 0, true, 0) &&
              ht_make_perm(&O, ctx, dt, 4, os, id4, 0, false, 0) &&
              ht_make_perm(&G, ctx, dt, 4, os, id4, 0, true, 0) &&
              ht_make_perm(&GX, ctx, dt, 4, xs, id4, 0, false, 0) &&
              ht_make_perm(&GW, ctx, dt, 4, ws, id4, 0, false, 0) &&
              ht_make_perm(&GB, ctx, dt, 1, bs, id1, 0, false, 0);
    lightos_conv2d_params_t prm = conv_params(&cc);
    ok = ok && lightos_op_conv2d(q, &X.t, &Wt.t, &B.t, &prm, &O.t) == 0 &&
         lightos_op_conv2d_backward(q, &X.t, &Wt.t, &G.t, &prm, &GX.t, &GW.t, &GB.t) == 0 &&
         lightos_queue_finish(q) == 0 && ht_read(&O, NULL) && ht_read(&GX, NULL) &&
         ht_read(&GW, NULL) && ht_read(&GB, NULL);
    if (!ok) {
      lk_test_fail(__FILE__, __LINE__, "%s: deterministic conv2d failed: %s", g_info[di].uri,
                   lightos_last_error()->message);
    } else {
      htensor_t* outs[4] = {&O, &GX, &GW, &GB};
      static const char* const nm[4] = {"out", "grad_x", "grad_weight", "grad_bias"};
      for (int t = 0; t < 4; ++t) {
        if (!first[t]) {
          counts[t] = outs[t]->numel;
          first[t] = malloc((size_t)counts[t] * sizeof(double));
          memcpy(first[t], outs[t]->val, (size_t)counts[t] * sizeof(double));
          continue;
        }
        compared++;
        for (int64_t i = 0; i < counts[t]; ++i)
          if (memcmp(&first[t][i], &outs[t]->val[i], sizeof(double))) {
            lk_test_fail(__FILE__, __LINE__, "%s %s[%lld]: %.9g differs from %s's %.9g",
                         g_info[di].uri, nm[t], (long long)i, outs[t]->val[i], g_info[0].uri,
                         first[t][i]);
            break;
          }
      }
    }
    ht_free(&X);
    ht_free(&Wt);
    ht_free(&B);
    ht_free(&O);
    ht_free(&G);
    ht_free(&GX);
    ht_free(&GW);
    ht_free(&GB);
  }
  for (int t = 0; t < 4; ++t) free(first[t]);
  if (!compared) lk_test_skip("one device only: nothing to compare");
}

static void test_conv_bad_input(int di) {
  lightos_context_t ctx = g_ctx[di][0];
  lightos_queue_t q;
  LK_REQUIRE_OK(lightos_context_default_queue(ctx, &q));
  const lightos_dtype_t F = LIGHTOS_DTYPE_F32;
  lightos_tensor_t x, w, b, o, gx;
  const int64_t xs[4] = {2, 3, 8, 8}, ws[4] = {4, 3, 3, 3}, bs[1] = {4}, os[4] = {2, 4, 6, 6};
  LK_REQUIRE_OK(lightos_tensor_alloc(ctx, F, 4, xs, &x));
  LK_REQUIRE_OK(lightos_tensor_alloc(ctx, F, 4, ws, &w));
  LK_REQUIRE_OK(lightos_tensor_alloc(ctx, F, 1, bs, &b));
  LK_REQUIRE_OK(lightos_tensor_alloc(ctx, F, 4, os, &o));
  LK_REQUIRE_OK(lightos_tensor_alloc(ctx, F, 4, xs, &gx));
  lightos_conv2d_params_t p = {{1, 1}, {0, 0}, {1, 1}};
  LK_CHECK_STATUS(lightos_op_conv2d(q, &x, &w, &b, &p, &o), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
  lightos_conv2d_params_t bad = p;
  bad.stride[1] = 0;
  EXPECT_FAIL(lightos_op_conv2d(q, &x, &w, &b, &bad, &o), LIGHTOS_INVALID_ARGUMENT,
              "stride[1] is 0");
  bad = p;
  bad.padding[0] = -1;
  EXPECT_FAIL(lightos_op_conv2d(q, &x, &w, &b, &bad, &o), LIGHTOS_INVALID_ARGUMENT, "padding[0]");
  bad = p;
  bad.dilation[0] = 5; /* extent 11 > 8 */
  EXPECT_FAIL(lightos_op_conv2d(q, &x, &w, &b, &bad, &o), LIGHTOS_INVALID_ARGUMENT, "larger than");
  EXPECT_FAIL(lightos_op_conv2d(q, &x, &w, &b, NULL, &o), LIGHTOS_INVALID_ARGUMENT, "params");
  lightos_tensor_t t = w;
  t.shape[1] = 2;
  EXPECT_FAIL(lightos_op_conv2d(q, &x, &t, &b, &p, &o), LIGHTOS_INVALID_ARGUMENT, "input channels");
  t = o;
  t.shape[3] = 5;
  EXPECT_FAIL(lightos_op_conv2d(q, &x, &w, &b, &p, &t), LIGHTOS_INVALID_ARGUMENT,
              "'out' has shape [2, 4, 6, 5]");
  t = b;
  t.shape[0] = 3;
  EXPECT_FAIL(lightos_op_conv2d(q, &x, &w, &t, &p, &o), LIGHTOS_INVALID_ARGUMENT,
              "'bias' has shape");
  t = w;
  t.dtype = LIGHTOS_DTYPE_F16;
  EXPECT_FAIL(lightos_op_conv2d(q, &x, &t, &b, &p, &o), LIGHTOS_INVALID_ARGUMENT,
              "'weight' is f16");
  t = x;
  t.ndim = 3;
  EXPECT_FAIL(lightos_op_conv2d(q, &t, &w, &b, &p, &o), LIGHTOS_INVALID_ARGUMENT, "expected 4");
  t = o;
  t.buffer = x.buffer;
  EXPECT_FAIL(lightos_op_conv2d(q, &x, &w, &b, &p, &t), LIGHTOS_INVALID_ARGUMENT,
              "overlaps input 'x'");
  EXPECT_FAIL(lightos_op_conv2d(q, NULL, &w, &b, &p, &o), LIGHTOS_INVALID_ARGUMENT, "'x' is NULL");
  /* backward: grad_out shape, grad_x overlapping grad_out */
  t = o;
  t.shape[2] = 5;
  EXPECT_FAIL(lightos_op_conv2d_backward(q, &x, &w, &t, &p, &gx, NULL, NULL),
              LIGHTOS_INVALID_ARGUMENT, "'grad_out' has shape");
  t = gx;
  t.buffer = x.buffer;
  EXPECT_FAIL(lightos_op_conv2d_backward(q, &x, &w, &o, &p, &t, NULL, NULL),
              LIGHTOS_INVALID_ARGUMENT, "overlaps input 'x'");
  t = w;
  t.buffer = o.buffer;
  EXPECT_FAIL(lightos_op_conv2d_backward(q, &x, &w, &o, &p, NULL, &t, NULL),
              LIGHTOS_INVALID_ARGUMENT, "overlaps input 'grad_out'");
  EXPECT_FAIL(lightos_op_conv2d_backward(q, &x, &w, &o, &p, &gx, &w, NULL),
              LIGHTOS_INVALID_ARGUMENT, "overlaps input 'weight'");
  LK_CHECK_STATUS(lightos_op_conv2d_backward(q, &x, &w, &o, &p, &gx, NULL, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
  lightos_tensor_free(&x);
  lightos_tensor_free(&w);
  lightos_tensor_free(&b);
  lightos_tensor_free(&o);
  lightos_tensor_free(&gx);
}

/* ---- main ---------------------------------------------------------------- */

static int g_di, g_det;

static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs a test and prints its wall time (first runs build the kernels). */
#define RUN_TIMED(name, call)                          \
  do {                                                 \
    double t0_ = wall_s();                             \
    LK_RUN_NAMED(name, call);                          \
    printf("  %-52s %6.2f s\n", name, wall_s() - t0_); \
    fflush(stdout);                                    \
  } while (0)
static void run_grid(void) { test_gemm_grid(g_di, g_det); }
static void run_batched(void) { test_gemm_batched(g_di, g_det); }
static void run_views(void) { test_gemm_views(g_di, g_det); }
static void run_bad(void) { test_gemm_bad_input(g_di); }
static void run_conv(void) { test_conv(g_di, g_det); }
static void run_conv_fd(void) { test_conv_fd(g_di, g_det); }
static void run_conv_bad(void) { test_conv_bad_input(g_di); }

int main(void) {
  lk_t.program = "test_ops_gemm";
  if (lightos_device_count(&g_ndev) || g_ndev == 0) {
    fprintf(stderr, "no devices\n");
    return 1;
  }
  if (g_ndev > MAX_DEV) g_ndev = MAX_DEV;
  for (uint32_t i = 0; i < g_ndev; ++i) {
    if (lightos_device_get(i, &g_devs[i]) || lightos_device_get_info(g_devs[i], &g_info[i]) ||
        lightos_context_create_for_device(g_devs[i], 0, &g_ctx[i][0]) ||
        lightos_context_create_for_device(g_devs[i], LIGHTOS_CONTEXT_DETERMINISTIC, &g_ctx[i][1])) {
      fprintf(stderr, "device %u: %s\n", i, lightos_last_error()->message);
      return 1;
    }
  }
  /* Is the CPU device's native GEMM there?  One f32 GEMM tells. */
  for (uint32_t i = 0; i < g_ndev; ++i) {
    if (g_info[i].backend != LIGHTOS_BACKEND_CPU) continue;
    lightos_queue_t q;
    lightos_tensor_t a, b, c;
    int64_t sh[2] = {2, 2};
    unsigned long long before = lk_cpu_blas_call_count();
    if (!lightos_context_default_queue(g_ctx[i][0], &q) &&
        !lightos_tensor_alloc(g_ctx[i][0], LIGHTOS_DTYPE_F32, 2, sh, &a) &&
        !lightos_tensor_alloc(g_ctx[i][0], LIGHTOS_DTYPE_F32, 2, sh, &b) &&
        !lightos_tensor_alloc(g_ctx[i][0], LIGHTOS_DTYPE_F32, 2, sh, &c)) {
      if (!lightos_op_gemm(q, false, false, 1, &a, &b, 0, &c) && !lightos_queue_finish(q))
        g_blas = lk_cpu_blas_call_count() > before;
      lightos_tensor_free(&a);
      lightos_tensor_free(&b);
      lightos_tensor_free(&c);
    }
    printf("cpu native GEMM: %s\n", g_blas ? "OpenBLAS" : "not available (portable kernel)");
    break;
  }
  char name[128];
  for (uint32_t i = 0; i < g_ndev; ++i) {
    g_di = (int)i;
    for (int det = 0; det < 2; ++det) {
      g_det = det;
      const char* mode = det ? "deterministic" : "default";
      snprintf(name, sizeof name, "gemm_grid %s %s", g_info[i].uri, mode);
      RUN_TIMED(name, run_grid());
      snprintf(name, sizeof name, "gemm_batched %s %s", g_info[i].uri, mode);
      RUN_TIMED(name, run_batched());
      snprintf(name, sizeof name, "gemm_views %s %s", g_info[i].uri, mode);
      RUN_TIMED(name, run_views());
      snprintf(name, sizeof name, "conv2d %s %s", g_info[i].uri, mode);
      RUN_TIMED(name, run_conv());
      snprintf(name, sizeof name, "conv2d_finite_differences %s %s", g_info[i].uri, mode);
      RUN_TIMED(name, run_conv_fd());
    }
    snprintf(name, sizeof name, "gemm_bad_input %s", g_info[i].uri);
    RUN_TIMED(name, run_bad());
    snprintf(name, sizeof name, "conv2d_bad_input %s", g_info[i].uri);
    RUN_TIMED(name, run_conv_bad());
  }
  RUN_TIMED("test_gemm_bitwise", test_gemm_bitwise());
  RUN_TIMED("test_conv_bitwise", test_conv_bitwise());
  for (uint32_t i = 0; i < g_ndev; ++i) {
    lightos_context_release(g_ctx[i][0]);
    lightos_context_release(g_ctx[i][1]);
  }
  return lk_test_finish();
}
