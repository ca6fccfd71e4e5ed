/* Cross-backend determinism of the tensor ops (include/lightos/tensor.h).
 *
 * Every op case runs on every device the registry reports, in a
 * deterministic context (LIGHTOS_CONTEXT_DETERMINISTIC), on fixed inputs
 * from a host PRNG with a per-case seed (the same bytes on every device);
 * the output bytes (all outputs of the op, in a fixed order) are hashed
 * with SHA-256 and the hashes must be identical on every device.
 *
 * Each device runs every case twice: the second time in a fresh context
 * and, on CPU devices, with the f32 GEMM cases on the kernel's GPU tiling
 * (LIGHTOS_GEMM_TILES=gpu), so run-to-run identity (thread scheduling) and
 * tiling independence are checked even when only one device exists.
 *
 * Debugging: LIGHTOS_TEST_VERBOSE=1 prints each case and its hash as it
 * runs, LIGHTOS_TEST_FILTER=text runs only the cases whose name contains
 * it, LIGHTOS_TEST_DEVICES=cpu:0,cuda:0 only those devices.
 *
 * A case an op does not support on a device (LIGHTOS_UNSUPPORTED, e.g. f64
 * without fp64) shows "n/a" and is not compared; any other error fails.
 * The table printed at the end: case x device -> the first 16 hex digits
 * of the hash.  Output tensors are poisoned (0xCD bytes) before each op.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "lightos/lightos.h"
#include "lightos/tensor.h"
#include "lk_test.h"

#define CHECKF(...) ((void)LK_CHECK_MSG(__VA_ARGS__))

/* ==== Host PRNG and conversions ============================================= */

static uint64_t g_rng;
static uint64_t rng_next(void) { /* splitmix64 */
  uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double rng_unit(void) { return (double)(rng_next() >> 11) * 0x1p-53; }

static uint32_t f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
/* Host float -> bf16 / f16, round to nearest even (finite inputs). */
static uint16_t host_f2bf(float f) {
  uint32_t b = f2u(f);
  b += 0x7fffu + ((b >> 16) & 1u);
  return (uint16_t)(b >> 16);
}
static uint16_t host_f2h(float f) {
  double a = fabs((double)f);
  uint16_t sign = (uint16_t)((f2u(f) >> 16) & 0x8000u);
  if (a == 0) return sign;
  int e;
  frexp(a, &e);
  int ex = e - 1 < -14 ? -14 : e - 1;
  double r = rint(ldexp(a, 10 - ex)) * ldexp(1.0, ex - 10);
  if (r >= 65520.0) return (uint16_t)(sign | 0x7c00u);
  if (r < 0x1p-14) return (uint16_t)(sign | (uint16_t)(r * 0x1p24));
  frexp(r, &e);
  ex = e - 1;
  return (uint16_t)(sign | ((ex + 15) << 10) | (int)(ldexp(r, 10 - ex) - 1024.0));
}

/* ==== Per-run environment ==================================================== */

#define MAX_T 40
typedef struct env {
  lightos_context_t ctx;
  lightos_queue_t q;
  const char* uri;
  lightos_tensor_t t[MAX_T];
  int nt;
  uint8_t* out; /* concatenated output bytes of the case */
  size_t len, cap;
  char err[512];
} env_t;

enum fill_kind {
  FILL_POISON, /* 0xCD bytes: an output                        */
  FILL_RAND,   /* uniform [-2, 2)                               */
  FILL_POS,    /* uniform [0.25, 3)                             */
  FILL_SMALL,  /* uniform [-0.5, 0.5)                           */
  FILL_PROB    /* uniform [0, 1)                                */
};

#define FAILS(e, s, ...) (snprintf((e)->err, sizeof (e)->err, __VA_ARGS__), (s))

/* Allocates a contiguous tensor and fills it (floats from the PRNG; integer
 * tensors get values in [0, imax)). */
static lightos_status_t mk_(env_t* e, lightos_tensor_t* t, lightos_dtype_t dt, int fill,
                            int64_t imax, uint32_t nd, ...) {
  int64_t shape[LIGHTOS_MAX_DIMS];
  va_list ap;
  va_start(ap, nd);
  for (uint32_t i = 0; i < nd; ++i) shape[i] = va_arg(ap, int64_t);
  va_end(ap);
  if (e->nt == MAX_T) return FAILS(e, LIGHTOS_OUT_OF_MEMORY, "test bug: too many tensors");
  lightos_status_t s = lightos_tensor_alloc(e->ctx, dt, nd, shape, t);
  if (s) return FAILS(e, s, "lightos_tensor_alloc: %s", lightos_last_error()->message);
  e->t[e->nt++] = *t;
  int64_t n = lightos_tensor_numel(t);
  size_t es = lightos_dtype_size(dt);
  size_t bytes = (size_t)n * es;
  if (bytes == 0) return LIGHTOS_SUCCESS;
  uint8_t* h = malloc(bytes);
  if (!h) return FAILS(e, LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  for (int64_t i = 0; i < n; ++i) {
    double v = 0;
    switch (fill) {
      case FILL_RAND: v = -2.0 + 4.0 * rng_unit(); break;
      case FILL_POS: v = 0.25 + 2.75 * rng_unit(); break;
      case FILL_SMALL: v = -0.5 + rng_unit(); break;
      case FILL_PROB: v = rng_unit(); break;
      default: break;
    }
    uint8_t* p = h + (size_t)i * es;
    switch (dt) {
      case LIGHTOS_DTYPE_F32: {
        float f = (float)v;
        memcpy(p, &f, 4);
        break;
      }
      case LIGHTOS_DTYPE_F64: memcpy(p, &v, 8); break;
      case LIGHTOS_DTYPE_F16: {
        uint16_t u = host_f2h((float)v);
        memcpy(p, &u, 2);
        break;
      }
      case LIGHTOS_DTYPE_BF16: {
        uint16_t u = host_f2bf((float)v);
        memcpy(p, &u, 2);
        break;
      }
      case LIGHTOS_DTYPE_I64: {
        int64_t u = imax > 0 ? (int64_t)(rng_next() % (uint64_t)imax) : 0;
        memcpy(p, &u, 8);
        break;
      }
      case LIGHTOS_DTYPE_I32: {
        int32_t u = imax > 0 ? (int32_t)(rng_next() % (uint64_t)imax) : 0;
        memcpy(p, &u, 4);
        break;
      }
      default: *p = (uint8_t)(imax > 0 ? rng_next() % (uint64_t)imax : 0); break;
    }
  }
  if (fill == FILL_POISON) memset(h, 0xCD, bytes);
  s = lightos_buffer_write(t->buffer, t->offset, bytes, h);
  free(h);
  if (s) return FAILS(e, s, "lightos_buffer_write: %s", lightos_last_error()->message);
  return LIGHTOS_SUCCESS;
}
#define MK(t, dt, fill, imax, nd, ...)                                                  \
  do {                                                                                \
    lightos_status_t s_ = mk_(e, &(t), (dt), (fill), (imax), (nd), __VA_ARGS__);      \
    if (s_) return s_;                                                                \
  } while (0)
#define OP(call)                                                                          \
  do {                                                                                    \
    lightos_status_t s_ = (call);                                                         \
    if (s_) return FAILS(e, s_, "%s: %s", #call, lightos_last_error()->message);           \
  } while (0)

/* Appends the bytes of tensor t (contiguous) to the case's output. */
static lightos_status_t emit(env_t* e, const lightos_tensor_t* t) {
  lightos_status_t s = lightos_queue_finish(e->q);
  if (s) return FAILS(e, s, "lightos_queue_finish: %s", lightos_last_error()->message);
  size_t bytes = (size_t)lightos_tensor_numel(t) * lightos_dtype_size(t->dtype);
  if (e->len + bytes > e->cap) {
    size_t cap = (e->len + bytes) * 2 + 1024;
    uint8_t* p = realloc(e->out, cap);
    if (!p) return FAILS(e, LIGHTOS_OUT_OF_MEMORY, "out of host memory");
    e->out = p;
    e->cap = cap;
  }
  if (bytes) {
    s = lightos_buffer_read(t->buffer, t->offset, bytes, e->out + e->len);
    if (s) return FAILS(e, s, "lightos_buffer_read: %s", lightos_last_error()->message);
  }
  e->len += bytes;
  return LIGHTOS_SUCCESS;
}
#define EMIT(t)                                  \
  do {                                           \
    lightos_status_t s_ = emit(e, &(t));         \
    if (s_) return s_;                           \
  } while (0)

static const lightos_dtype_t F32 = LIGHTOS_DTYPE_F32,
                             F16 = LIGHTOS_DTYPE_F16, BF16 = LIGHTOS_DTYPE_BF16,
                             I64 = LIGHTOS_DTYPE_I64, I32 = LIGHTOS_DTYPE_I32;

/* ==== Cases ================================================================== */

typedef lightos_status_t (*case_fn)(env_t* e, lightos_dtype_t dt, int variant);
typedef struct {
  const char* name;
  case_fn fn;
  lightos_dtype_t dt;
  int variant;
} case_t;

/* binary: a [7,1,13] (op) b [1,5,13] -> [7,5,13]; variant = the op. */
static lightos_status_t c_binary(env_t* e, lightos_dtype_t dt, int op) {
  lightos_tensor_t a, b, o;
  MK(a, dt, op == LIGHTOS_BINARY_POW ? FILL_POS : FILL_RAND, 0, 3, 7, 1, 13);
  MK(b, dt, op == LIGHTOS_BINARY_DIV ? FILL_POS : FILL_RAND, 0, 3, 1, 5, 13);
  MK(o, dt, FILL_POISON, 0, 3, 7, 5, 13);
  OP(lightos_op_binary(e->q, (lightos_binary_op_t)op, &a, &b, &o));
  EMIT(o);
  return LIGHTOS_SUCCESS;
}

/* unary / unary_backward on 1003 elements; variant = op (+100: backward). */
static lightos_status_t c_unary(env_t* e, lightos_dtype_t dt, int variant) {
  int op = variant % 100;
  bool bwd = variant >= 100;
  bool pos = op == LIGHTOS_UNARY_LOG || op == LIGHTOS_UNARY_SQRT || op == LIGHTOS_UNARY_RSQRT;
  lightos_tensor_t x, g, o;
  MK(x, dt, pos ? FILL_POS : FILL_RAND, 0, 1, 1003);
  MK(g, dt, FILL_RAND, 0, 1, 1003);
  MK(o, dt, FILL_POISON, 0, 1, 1003);
  if (bwd) OP(lightos_op_unary_backward(e->q, (lightos_unary_op_t)op, &x, &g, &o));
  else OP(lightos_op_unary(e->q, (lightos_unary_op_t)op, &x, &o));
  EMIT(o);
  return LIGHTOS_SUCCESS;
}

/* All twelve unary ops in one case (f16 / bf16 / f64 rows). */
static lightos_status_t c_unary_all(env_t* e, lightos_dtype_t dt, int bwd) {
  for (int op = LIGHTOS_UNARY_NEG; op <= LIGHTOS_UNARY_SILU; ++op) {
    lightos_status_t s = c_unary(e, dt, op + (bwd ? 100 : 0));
    if (s) return s;
  }
  return LIGHTOS_SUCCESS;
}

/* reduce over x [17, 33, 9]; variant = kind * 16 + axes mask (keepdim when
 * the mask is odd, else dims removed). */
static lightos_status_t c_reduce(env_t* e, lightos_dtype_t dt, int variant) {
  int kind = variant / 16, mask = variant % 16;
  const int64_t shp[3] = {17, 33, 9};
  lightos_tensor_t x, o;
  MK(x, dt, FILL_RAND, 0, 3, shp[0], shp[1], shp[2]);
  int64_t os[3];
  uint32_t nd = 0;
  for (int d = 0; d < 3; ++d) {
    if (!(mask & (1 << d))) os[nd++] = shp[d];
    else if (mask & 1) os[nd++] = 1; /* keepdim */
  }
  switch (nd) {
    case 0: MK(o, dt, FILL_POISON, 0, 0, (int64_t)0); break;
    case 1: MK(o, dt, FILL_POISON, 0, 1, os[0]); break;
    case 2: MK(o, dt, FILL_POISON, 0, 2, os[0], os[1]); break;
    default: MK(o, dt, FILL_POISON, 0, 3, os[0], os[1], os[2]); break;
  }
  OP(lightos_op_reduce(e->q, (lightos_reduce_kind_t)kind, &x, (uint32_t)mask, &o));
  EMIT(o);
  return LIGHTOS_SUCCESS;
}

/* A long reduction (the work-group tree path): sum / mean of 300007
 * elements, and sum over the rows of [3, 100003]. */
static lightos_status_t c_reduce_long(env_t* e, lightos_dtype_t dt, int variant) {
  lightos_tensor_t x, o, x2, o2;
  MK(x, dt, FILL_RAND, 0, 1, (int64_t)300007);
  MK(o, dt, FILL_POISON, 0, 0, (int64_t)0);
  OP(lightos_op_reduce(e->q, variant ? LIGHTOS_REDUCE_MEAN : LIGHTOS_REDUCE_SUM, &x, 1u, &o));
  EMIT(o);
  MK(x2, dt, FILL_RAND, 0, 2, (int64_t)3, (int64_t)100003);
  MK(o2, dt, FILL_POISON, 0, 1, (int64_t)3);
  OP(lightos_op_reduce(e->q, LIGHTOS_REDUCE_SUM, &x2, 2u, &o2));
  EMIT(o2);
  return LIGHTOS_SUCCESS;
}

static lightos_status_t c_argmax(env_t* e, lightos_dtype_t dt, int dim) {
  lightos_tensor_t x, o;
  MK(x, dt, FILL_RAND, 0, 3, 11, 29, 5);
  const int64_t shp[3] = {11, 29, 5};
  int64_t os[2];
  for (int d = 0, j = 0; d < 3; ++d)
    if (d != dim) os[j++] = shp[d];
  MK(o, I64, FILL_POISON, 0, 2, os[0], os[1]);
  OP(lightos_op_argmax(e->q, &x, (uint32_t)dim, &o));
  EMIT(o);
  return LIGHTOS_SUCCESS;
}

/* softmax / log_softmax over dim (variant bit 0: log; bits 1-2: dim) and
 * its backward. */
static lightos_status_t c_softmax(env_t* e, lightos_dtype_t dt, int variant) {
  bool lg = variant & 1;
  uint32_t dim = (uint32_t)(variant >> 1);
  lightos_tensor_t x, y, gy, gx;
  MK(x, dt, FILL_RAND, 0, 3, 6, 37, 5);
  MK(y, dt, FILL_POISON, 0, 3, 6, 37, 5);
  MK(gy, dt, FILL_RAND, 0, 3, 6, 37, 5);
  MK(gx, dt, FILL_POISON, 0, 3, 6, 37, 5);
  OP(lightos_op_softmax(e->q, &x, dim, lg, &y));
  EMIT(y);
  OP(lightos_op_softmax_backward(e->q, &y, &gy, dim, lg, &gx));
  EMIT(gx);
  return LIGHTOS_SUCCESS;
}

static lightos_status_t c_layernorm(env_t* e, lightos_dtype_t dt, int variant) {
  (void)variant;
  lightos_tensor_t x, w, b, o, mean, rstd, go, gx, gw, gb;
  MK(x, dt, FILL_RAND, 0, 2, 9, 77);
  MK(w, dt, FILL_RAND, 0, 1, 77);
  MK(b, dt, FILL_RAND, 0, 1, 77);
  MK(o, dt, FILL_POISON, 0, 2, 9, 77);
  MK(mean, F32, FILL_POISON, 0, 1, 9);
  MK(rstd, F32, FILL_POISON, 0, 1, 9);
  MK(go, dt, FILL_RAND, 0, 2, 9, 77);
  MK(gx, dt, FILL_POISON, 0, 2, 9, 77);
  MK(gw, dt, FILL_POISON, 0, 1, 77);
  MK(gb, dt, FILL_POISON, 0, 1, 77);
  OP(lightos_op_layernorm(e->q, &x, &w, &b, 1e-5, &o, &mean, &rstd));
  EMIT(o);
  EMIT(mean);
  EMIT(rstd);
  OP(lightos_op_layernorm_backward(e->q, &x, &w, &mean, &rstd, &go, &gx, &gw, &gb));
  EMIT(gx);
  EMIT(gw);
  EMIT(gb);
  return LIGHTOS_SUCCESS;
}

static lightos_status_t c_rmsnorm(env_t* e, lightos_dtype_t dt, int variant) {
  (void)variant;
  lightos_tensor_t x, w, o, rstd, go, gx, gw;
  MK(x, dt, FILL_RAND, 0, 2, 9, 77);
  MK(w, dt, FILL_RAND, 0, 1, 77);
  MK(o, dt, FILL_POISON, 0, 2, 9, 77);
  MK(rstd, F32, FILL_POISON, 0, 1, 9);
  MK(go, dt, FILL_RAND, 0, 2, 9, 77);
  MK(gx, dt, FILL_POISON, 0, 2, 9, 77);
  MK(gw, dt, FILL_POISON, 0, 1, 77);
  OP(lightos_op_rmsnorm(e->q, &x, &w, 1e-6, &o, &rstd));
  EMIT(o);
  EMIT(rstd);
  OP(lightos_op_rmsnorm_backward(e->q, &x, &w, &rstd, &go, &gx, &gw));
  EMIT(gx);
  EMIT(gw);
  return LIGHTOS_SUCCESS;
}

static lightos_status_t c_cross_entropy(env_t* e, lightos_dtype_t dt, int variant) {
  (void)variant;
  lightos_tensor_t lg, tg, loss, gl, glg;
  MK(lg, dt, FILL_RAND, 0, 2, 13, 101);
  MK(tg, I64, FILL_RAND, 101, 1, 13);
  MK(loss, dt, FILL_POISON, 0, 0, (int64_t)0);
  MK(gl, dt, FILL_POS, 0, 0, (int64_t)0);
  MK(glg, dt, FILL_POISON, 0, 2, 13, 101);
  OP(lightos_op_cross_entropy(e->q, &lg, &tg, &loss));
  EMIT(loss);
  OP(lightos_op_cross_entropy_backward(e->q, &lg, &tg, &gl, &glg));
  EMIT(glg);
  return LIGHTOS_SUCCESS;
}

/* embedding forward and backward; indices repeat (scatter-add order). */
static lightos_status_t c_embedding(env_t* e, lightos_dtype_t dt, int variant) {
  lightos_dtype_t it = variant ? I32 : I64;
  lightos_tensor_t tab, idx, o, go, gt;
  MK(tab, dt, FILL_RAND, 0, 2, 19, 24);
  MK(idx, it, FILL_RAND, 19, 1, 57);
  MK(o, dt, FILL_POISON, 0, 2, 57, 24);
  MK(go, dt, FILL_RAND, 0, 2, 57, 24);
  MK(gt, dt, FILL_POISON, 0, 2, 19, 24);
  OP(lightos_op_embedding(e->q, &tab, &idx, &o));
  EMIT(o);
  OP(lightos_op_embedding_backward(e->q, &idx, &go, &gt));
  EMIT(gt);
  return LIGHTOS_SUCCESS;
}

/* cast x (dt) to every float dtype and to i32. */
static lightos_status_t c_cast(env_t* e, lightos_dtype_t dt, int variant) {
  (void)variant;
  lightos_tensor_t x;
  MK(x, dt, FILL_RAND, 0, 2, 31, 17);
  const lightos_dtype_t to[4] = {F32, F16, BF16, I32};
  for (int i = 0; i < 4; ++i) {
    lightos_tensor_t o;
    MK(o, to[i], FILL_POISON, 0, 2, 31, 17);
    OP(lightos_op_cast(e->q, &x, &o));
    EMIT(o);
  }
  return LIGHTOS_SUCCESS;
}

/* contiguous copy of a permuted, sliced view. */
static lightos_status_t c_contiguous(env_t* e, lightos_dtype_t dt, int variant) {
  (void)variant;
  lightos_tensor_t x, v, v2, o;
  MK(x, dt, FILL_RAND, 0, 3, 5, 7, 9);
  const uint32_t perm[3] = {2, 0, 1};
  OP(lightos_tensor_permute(&x, perm, &v));
  OP(lightos_tensor_slice(&v, 0, 1, 9, 2, &v2)); /* [4, 5, 7] */
  MK(o, dt, FILL_POISON, 0, 3, 4, 5, 7);
  OP(lightos_op_contiguous(e->q, &v2, &o));
  EMIT(o);
  return LIGHTOS_SUCCESS;
}

static lightos_status_t c_fill_arange(env_t* e, lightos_dtype_t dt, int variant) {
  (void)variant;
  lightos_tensor_t a, b;
  MK(a, dt, FILL_POISON, 0, 2, 3, 41);
  MK(b, dt, FILL_POISON, 0, 1, 1001);
  OP(lightos_op_fill(e->q, &a, 3.25));
  EMIT(a);
  OP(lightos_op_arange(e->q, &b, -2.5, 0.37));
  EMIT(b);
  return LIGHTOS_SUCCESS;
}

/* random: variant = dist. */
static lightos_status_t c_random(env_t* e, lightos_dtype_t dt, int dist) {
  lightos_tensor_t o;
  MK(o, dt, FILL_POISON, 0, 2, 33, 65);
  double a = dist == LIGHTOS_RNG_DROPOUT ? 0.3 : dist == LIGHTOS_RNG_NORMAL ? 0.5 : -1.0;
  double b = dist == LIGHTOS_RNG_NORMAL ? 2.0 : 3.0;
  OP(lightos_op_random(e->q, (lightos_rng_dist_t)dist, 0x1234abcdull, 77, a, b, &o));
  EMIT(o);
  return LIGHTOS_SUCCESS;
}

/* gemm: variant 0: [37x53]x[53x29]; 1: trans_a; 2: trans_b; 3: both, beta
 * 0.5; 4: batched with broadcast [3,1,M,K] x [1,2,K,N]; 5: large-ish
 * 131 x 257 x 97 (several tiles, ragged edges). */
static lightos_status_t c_gemm(env_t* e, lightos_dtype_t dt, int variant) {
  lightos_tensor_t a, b, c;
  int64_t m = 37, k = 53, n = 29;
  bool ta = variant == 1 || variant == 3, tb = variant == 2 || variant == 3;
  double alpha = 1.0, beta = 0.0;
  if (variant == 5) {
    m = 131;
    k = 257;
    n = 97;
    alpha = 0.75;
  }
  if (variant == 4) {
    MK(a, dt, FILL_RAND, 0, 4, 3, 1, m, k);
    MK(b, dt, FILL_RAND, 0, 4, 1, 2, k, n);
    MK(c, dt, FILL_POISON, 0, 4, 3, 2, m, n);
  } else {
    if (ta) MK(a, dt, FILL_RAND, 0, 2, k, m);
    else MK(a, dt, FILL_RAND, 0, 2, m, k);
    if (tb) MK(b, dt, FILL_RAND, 0, 2, n, k);
    else MK(b, dt, FILL_RAND, 0, 2, k, n);
    if (variant == 3) {
      beta = 0.5;
      MK(c, dt, FILL_RAND, 0, 2, m, n);
    } else {
      MK(c, dt, FILL_POISON, 0, 2, m, n);
    }
  }
  OP(lightos_op_gemm(e->q, ta, tb, alpha, &a, &b, beta, &c));
  EMIT(c);
  return LIGHTOS_SUCCESS;
}

/* A few optimiser steps (state carried between them). */
static lightos_status_t c_sgd(env_t* e, lightos_dtype_t dt, int variant) {
  (void)variant;
  lightos_tensor_t p, g, v;
  MK(p, dt, FILL_RAND, 0, 2, 17, 23);
  MK(g, dt, FILL_RAND, 0, 2, 17, 23);
  MK(v, dt, FILL_SMALL, 0, 2, 17, 23);
  for (int i = 0; i < 3; ++i) OP(lightos_op_sgd_step(e->q, &p, &g, &v, 0.05, 0.9, 1e-4));
  EMIT(p);
  EMIT(v);
  return LIGHTOS_SUCCESS;
}

static lightos_status_t c_adamw(env_t* e, lightos_dtype_t dt, int variant) {
  (void)variant;
  lightos_tensor_t p, g, m, v;
  MK(p, dt, FILL_RAND, 0, 2, 17, 23);
  MK(g, dt, FILL_RAND, 0, 2, 17, 23);
  MK(m, dt, FILL_SMALL, 0, 2, 17, 23);
  MK(v, dt, FILL_PROB, 0, 2, 17, 23);
  for (int64_t step = 1; step <= 3; ++step)
    OP(lightos_op_adamw_step(e->q, &p, &g, &m, &v, 1e-3, 0.9, 0.999, 1e-8, 0.01, step));
  EMIT(p);
  EMIT(m);
  EMIT(v);
  return LIGHTOS_SUCCESS;
}

/* conv2d x [2,3,11,9], weight [4,3,3,3], stride (2,1), padding (1,1),
 * dilation (1,2) -> [2,4,6,7]; backward too. variant 1: no bias. */
static lightos_status_t c_conv2d(env_t* e, lightos_dtype_t dt, int variant) {
  lightos_tensor_t x, w, b, o, go, gx, gw, gb;
  lightos_conv2d_params_t p = {{2, 1}, {1, 1}, {1, 2}};
  MK(x, dt, FILL_RAND, 0, 4, 2, 3, 11, 9);
  MK(w, dt, FILL_RAND, 0, 4, 4, 3, 3, 3);
  MK(b, dt, FILL_RAND, 0, 1, 4);
  MK(o, dt, FILL_POISON, 0, 4, 2, 4, 6, 7);
  MK(go, dt, FILL_RAND, 0, 4, 2, 4, 6, 7);
  MK(gx, dt, FILL_POISON, 0, 4, 2, 3, 11, 9);
  MK(gw, dt, FILL_POISON, 0, 4, 4, 3, 3, 3);
  MK(gb, dt, FILL_POISON, 0, 1, 4);
  OP(lightos_op_conv2d(e->q, &x, &w, variant ? NULL : &b, &p, &o));
  EMIT(o);
  OP(lightos_op_conv2d_backward(e->q, &x, &w, &go, &p, &gx, &gw, variant ? NULL : &gb));
  EMIT(gx);
  EMIT(gw);
  if (!variant) EMIT(gb);
  return LIGHTOS_SUCCESS;
}

#define R(kind, mask) ((kind) * 16 + (mask))
static const case_t kCases[] = {
    {"binary add f32 bcast", c_binary, LIGHTOS_DTYPE_F32, LIGHTOS_BINARY_ADD},
    {"binary sub f32", c_binary, LIGHTOS_DTYPE_F32, LIGHTOS_BINARY_SUB},
    {"binary mul f32", c_binary, LIGHTOS_DTYPE_F32, LIGHTOS_BINARY_MUL},
    {"binary div f32", c_binary, LIGHTOS_DTYPE_F32, LIGHTOS_BINARY_DIV},
    {"binary max f32", c_binary, LIGHTOS_DTYPE_F32, LIGHTOS_BINARY_MAX},
    {"binary min f32", c_binary, LIGHTOS_DTYPE_F32, LIGHTOS_BINARY_MIN},
    {"binary pow f32", c_binary, LIGHTOS_DTYPE_F32, LIGHTOS_BINARY_POW},
    {"binary pow f16", c_binary, LIGHTOS_DTYPE_F16, LIGHTOS_BINARY_POW},
    {"binary mul bf16", c_binary, LIGHTOS_DTYPE_BF16, LIGHTOS_BINARY_MUL},
    {"binary pow f64", c_binary, LIGHTOS_DTYPE_F64, LIGHTOS_BINARY_POW},
    {"unary neg f32", c_unary, LIGHTOS_DTYPE_F32, LIGHTOS_UNARY_NEG},
    {"unary abs f32", c_unary, LIGHTOS_DTYPE_F32, LIGHTOS_UNARY_ABS},
    {"unary exp f32", c_unary, LIGHTOS_DTYPE_F32, LIGHTOS_UNARY_EXP},
    {"unary log f32", c_unary, LIGHTOS_DTYPE_F32, LIGHTOS_UNARY_LOG},
    {"unary sqrt f32", c_unary, LIGHTOS_DTYPE_F32, LIGHTOS_UNARY_SQRT},
    {"unary rsqrt f32", c_unary, LIGHTOS_DTYPE_F32, LIGHTOS_UNARY_RSQRT},
    {"unary tanh f32", c_unary, LIGHTOS_DTYPE_F32, LIGHTOS_UNARY_TANH},
    {"unary sigmoid f32", c_unary, LIGHTOS_DTYPE_F32, LIGHTOS_UNARY_SIGMOID},
    {"unary relu f32", c_unary, LIGHTOS_DTYPE_F32, LIGHTOS_UNARY_RELU},
    {"unary gelu_tanh f32", c_unary, LIGHTOS_DTYPE_F32, LIGHTOS_UNARY_GELU_TANH},
    {"unary gelu_erf f32", c_unary, LIGHTOS_DTYPE_F32, LIGHTOS_UNARY_GELU_ERF},
    {"unary silu f32", c_unary, LIGHTOS_DTYPE_F32, LIGHTOS_UNARY_SILU},
    {"unary all f16", c_unary_all, LIGHTOS_DTYPE_F16, 0},
    {"unary all bf16", c_unary_all, LIGHTOS_DTYPE_BF16, 0},
    {"unary all f64", c_unary_all, LIGHTOS_DTYPE_F64, 0},
    {"unary_bwd all f32", c_unary_all, LIGHTOS_DTYPE_F32, 1},
    {"unary_bwd all f16", c_unary_all, LIGHTOS_DTYPE_F16, 1},
    {"unary_bwd all bf16", c_unary_all, LIGHTOS_DTYPE_BF16, 1},
    {"reduce sum f32 ax0", c_reduce, LIGHTOS_DTYPE_F32, R(LIGHTOS_REDUCE_SUM, 1)},
    {"reduce sum f32 ax1", c_reduce, LIGHTOS_DTYPE_F32, R(LIGHTOS_REDUCE_SUM, 2)},
    {"reduce sum f32 ax2", c_reduce, LIGHTOS_DTYPE_F32, R(LIGHTOS_REDUCE_SUM, 4)},
    {"reduce sum f32 ax02", c_reduce, LIGHTOS_DTYPE_F32, R(LIGHTOS_REDUCE_SUM, 5)},
    {"reduce sum f32 all", c_reduce, LIGHTOS_DTYPE_F32, R(LIGHTOS_REDUCE_SUM, 7)},
    {"reduce mean f32 ax12", c_reduce, LIGHTOS_DTYPE_F32, R(LIGHTOS_REDUCE_MEAN, 6)},
    {"reduce max f32 ax1", c_reduce, LIGHTOS_DTYPE_F32, R(LIGHTOS_REDUCE_MAX, 2)},
    {"reduce min f32 ax0", c_reduce, LIGHTOS_DTYPE_F32, R(LIGHTOS_REDUCE_MIN, 1)},
    {"reduce sum f16 ax1", c_reduce, LIGHTOS_DTYPE_F16, R(LIGHTOS_REDUCE_SUM, 2)},
    {"reduce mean bf16 all", c_reduce, LIGHTOS_DTYPE_BF16, R(LIGHTOS_REDUCE_MEAN, 7)},
    {"reduce sum f64 ax02", c_reduce, LIGHTOS_DTYPE_F64, R(LIGHTOS_REDUCE_SUM, 5)},
    {"reduce sum f32 long", c_reduce_long, LIGHTOS_DTYPE_F32, 0},
    {"reduce mean f32 long", c_reduce_long, LIGHTOS_DTYPE_F32, 1},
    {"reduce sum f16 long", c_reduce_long, LIGHTOS_DTYPE_F16, 0},
    {"argmax f32 dim1", c_argmax, LIGHTOS_DTYPE_F32, 1},
    {"argmax bf16 dim2", c_argmax, LIGHTOS_DTYPE_BF16, 2},
    {"softmax f32 dim2 +bwd", c_softmax, LIGHTOS_DTYPE_F32, 2 << 1},
    {"softmax f32 dim1 +bwd", c_softmax, LIGHTOS_DTYPE_F32, 1 << 1},
    {"log_softmax f32 +bwd", c_softmax, LIGHTOS_DTYPE_F32, (2 << 1) | 1},
    {"softmax f16 +bwd", c_softmax, LIGHTOS_DTYPE_F16, 2 << 1},
    {"log_softmax bf16 +bwd", c_softmax, LIGHTOS_DTYPE_BF16, (1 << 1) | 1},
    {"layernorm f32 +bwd", c_layernorm, LIGHTOS_DTYPE_F32, 0},
    {"layernorm bf16 +bwd", c_layernorm, LIGHTOS_DTYPE_BF16, 0},
    {"rmsnorm f32 +bwd", c_rmsnorm, LIGHTOS_DTYPE_F32, 0},
    {"rmsnorm f16 +bwd", c_rmsnorm, LIGHTOS_DTYPE_F16, 0},
    {"cross_entropy f32 +bwd", c_cross_entropy, LIGHTOS_DTYPE_F32, 0},
    {"cross_entropy bf16 +bwd", c_cross_entropy, LIGHTOS_DTYPE_BF16, 0},
    {"embedding f32 +bwd", c_embedding, LIGHTOS_DTYPE_F32, 0},
    {"embedding f16 i32 +bwd", c_embedding, LIGHTOS_DTYPE_F16, 1},
    {"cast f32 -> *", c_cast, LIGHTOS_DTYPE_F32, 0},
    {"cast f64 -> *", c_cast, LIGHTOS_DTYPE_F64, 0},
    {"cast bf16 -> *", c_cast, LIGHTOS_DTYPE_BF16, 0},
    {"contiguous f32", c_contiguous, LIGHTOS_DTYPE_F32, 0},
    {"fill+arange f32", c_fill_arange, LIGHTOS_DTYPE_F32, 0},
    {"fill+arange f16", c_fill_arange, LIGHTOS_DTYPE_F16, 0},
    {"random uniform f32", c_random, LIGHTOS_DTYPE_F32, LIGHTOS_RNG_UNIFORM},
    {"random normal f32", c_random, LIGHTOS_DTYPE_F32, LIGHTOS_RNG_NORMAL},
    {"random dropout f32", c_random, LIGHTOS_DTYPE_F32, LIGHTOS_RNG_DROPOUT},
    {"random normal bf16", c_random, LIGHTOS_DTYPE_BF16, LIGHTOS_RNG_NORMAL},
    {"random normal f64", c_random, LIGHTOS_DTYPE_F64, LIGHTOS_RNG_NORMAL},
    {"gemm f32 nn", c_gemm, LIGHTOS_DTYPE_F32, 0},
    {"gemm f32 tn", c_gemm, LIGHTOS_DTYPE_F32, 1},
    {"gemm f32 nt", c_gemm, LIGHTOS_DTYPE_F32, 2},
    {"gemm f32 tt beta", c_gemm, LIGHTOS_DTYPE_F32, 3},
    {"gemm f32 batch bcast", c_gemm, LIGHTOS_DTYPE_F32, 4},
    {"gemm f32 131x257x97", c_gemm, LIGHTOS_DTYPE_F32, 5},
    {"gemm f16 nn", c_gemm, LIGHTOS_DTYPE_F16, 0},
    {"gemm bf16 tt beta", c_gemm, LIGHTOS_DTYPE_BF16, 3},
    {"gemm f64 131x257x97", c_gemm, LIGHTOS_DTYPE_F64, 5},
    {"sgd_step f32 x3", c_sgd, LIGHTOS_DTYPE_F32, 0},
    {"adamw_step f32 x3", c_adamw, LIGHTOS_DTYPE_F32, 0},
    {"conv2d f32 +bwd", c_conv2d, LIGHTOS_DTYPE_F32, 0},
    {"conv2d f32 nobias +bwd", c_conv2d, LIGHTOS_DTYPE_F32, 1},
    {"conv2d bf16 +bwd", c_conv2d, LIGHTOS_DTYPE_BF16, 0},
};
#define NCASES (sizeof kCases / sizeof kCases[0])

/* ==== Running ================================================================ */

#define MAX_DEV 8
enum { ST_NONE, ST_OK, ST_NA, ST_FAIL };
typedef struct result {
  int state;
  char hex[65];
  char msg[640];
} result_t;

static result_t g_res[MAX_DEV][2][NCASES];
static char g_uri[MAX_DEV][64];
static uint32_t g_ndev;
static bool g_verbose;        /* LIGHTOS_TEST_VERBOSE=1: print each case as it starts */
static const char* g_filter; /* LIGHTOS_TEST_FILTER=text: only the cases naming it  */
static char g_tiles_env[32];  /* LIGHTOS_GEMM_TILES as the test started          */
static const char* g_devices; /* LIGHTOS_TEST_DEVICES=uri,uri: only these devices */

static bool device_selected(const char* uri) {
  if (!g_devices || !g_devices[0]) return true;
  size_t n = strlen(uri);
  for (const char* p = g_devices; *p;) {
    size_t len = strcspn(p, ", ");
    if (len == n && !strncmp(p, uri, n)) return true;
    p += len;
    while (*p == ',' || *p == ' ') p++;
  }
  return false;
}

static uint64_t seed_of(const char* name) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (const char* p = name; *p; ++p) h = (h ^ (uint8_t)*p) * 1099511628211ull;
  return h;
}

/* Runs every case once on `dev` in a fresh deterministic context. */
static void run_all(uint32_t di, lightos_device_t dev, const lightos_device_info_t* info,
                    int run) {
  lightos_context_t ctx = NULL;
  lightos_status_t s = lightos_context_create_for_device(dev, LIGHTOS_CONTEXT_DETERMINISTIC, &ctx);
  if (!LK_CHECK_MSG(s == LIGHTOS_SUCCESS, "%s: deterministic context: %s (%s)", info->uri,
                    lightos_status_string(s), lightos_last_error()->message))
    return;
  lightos_queue_t q = NULL;
  s = lightos_context_default_queue(ctx, &q);
  if (!LK_CHECK_MSG(s == LIGHTOS_SUCCESS, "default queue: %s", lightos_status_string(s))) {
    lightos_context_release(ctx);
    return;
  }
  for (size_t c = 0; c < NCASES; ++c) {
    result_t* r = &g_res[di][run][c];
    env_t e;
    memset(&e, 0, sizeof e);
    e.ctx = ctx;
    e.q = q;
    e.uri = info->uri;
    if (g_filter && !strstr(kCases[c].name, g_filter)) continue;
    g_rng = seed_of(kCases[c].name);
    /* run 2 on a CPU device runs the f32 GEMM cases with the GPU tiling
     * (each tiling is a separate program build, so only f32).  The CPU
     * tiling is not forced on GPUs: its tiles need more local memory than
     * a CUDA block gets by default (96 KiB). */
    if (run == 1 && info->type == LIGHTOS_DEVICE_TYPE_CPU &&
        strncmp(kCases[c].name, "gemm f32", 8) == 0)
      setenv("LIGHTOS_GEMM_TILES", "gpu", 1);
    else if (g_tiles_env[0])
      setenv("LIGHTOS_GEMM_TILES", g_tiles_env, 1);
    else
      unsetenv("LIGHTOS_GEMM_TILES");
    if (g_verbose) fprintf(stderr, "[%s run %d] %s\n", info->uri, run + 1, kCases[c].name);
    lightos_clear_error();
    s = kCases[c].fn(&e, kCases[c].dt, kCases[c].variant);
    (void)lightos_queue_finish(q);
    for (int i = 0; i < e.nt; ++i) lightos_tensor_free(&e.t[i]);
    if (s == LIGHTOS_UNSUPPORTED) {
      r->state = ST_NA;
      snprintf(r->msg, sizeof r->msg, "%s", e.err);
    } else if (s != LIGHTOS_SUCCESS) {
      r->state = ST_FAIL;
      snprintf(r->msg, sizeof r->msg, "%s (%s)", e.err, lightos_status_string(s));
      CHECKF(0, "%s run %d, case '%s': %s", info->uri, run + 1, kCases[c].name, r->msg);
    } else {
      uint8_t dg[32];
      lk_sha256(e.out ? (const void*)e.out : (const void*)"", e.len, dg);
      lk_sha256_hex(dg, r->hex);
      r->state = ST_OK;
      if (g_verbose) fprintf(stderr, "[%s run %d] %s -> %.16s\n", info->uri, run + 1,
                             kCases[c].name, r->hex);
      /* an output still holding the poison pattern was not written */
      size_t run_cd = 0, worst = 0;
      for (size_t i = 0; i < e.len; ++i) {
        run_cd = e.out[i] == 0xCD ? run_cd + 1 : 0;
        if (run_cd > worst) worst = run_cd;
      }
      CHECKF(worst < 16, "%s case '%s': %zu consecutive 0xCD bytes in the output (unwritten?)",
             info->uri, kCases[c].name, worst);
    }
    free(e.out);
  }
  lightos_context_release(ctx);
}

static void test_device(uint32_t index) {
  lightos_device_t dev;
  lightos_device_info_t info;
  LK_REQUIRE_OK(lightos_device_get(index, &dev));
  LK_REQUIRE_OK(lightos_device_get_info(dev, &info));
  snprintf(g_uri[index], sizeof g_uri[index], "%s", info.uri);
  run_all(index, dev, &info, 0);
  run_all(index, dev, &info, 1); /* fresh context; CPU devices: f32 GEMM on GPU tiles */
  if (g_tiles_env[0]) setenv("LIGHTOS_GEMM_TILES", g_tiles_env, 1);
  else unsetenv("LIGHTOS_GEMM_TILES");
  for (size_t c = 0; c < NCASES; ++c) {
    const result_t* a = &g_res[index][0][c];
    const result_t* b = &g_res[index][1][c];
    if (a->state == ST_OK && b->state == ST_OK)
      CHECKF(strcmp(a->hex, b->hex) == 0,
             "%s case '%s' is not reproducible: run 1 %.16s, run 2 %.16s",
             info.uri, kCases[c].name, a->hex, b->hex);
    else
      CHECKF(a->state == b->state, "%s case '%s': run 1 %s, run 2 %s", info.uri, kCases[c].name,
             a->state == ST_OK ? "ran" : a->state == ST_NA ? "unsupported" : "failed",
             b->state == ST_OK ? "ran" : b->state == ST_NA ? "unsupported" : "failed");
  }
}

static void test_cross_device(void) {
  int compared = 0;
  for (size_t c = 0; c < NCASES; ++c) {
    int first = -1;
    for (uint32_t d = 0; d < g_ndev; ++d) {
      const result_t* r = &g_res[d][0][c];
      if (r->state != ST_OK) continue;
      if (first < 0) {
        first = (int)d;
        continue;
      }
      compared++;
      CHECKF(strcmp(g_res[first][0][c].hex, r->hex) == 0, "case '%s': %s gives %.16s, %s gives %.16s",
             kCases[c].name, g_uri[first], g_res[first][0][c].hex, g_uri[d], r->hex);
    }
  }
  uint32_t ran = 0;
  for (uint32_t d = 0; d < g_ndev; ++d) {
    bool any = false;
    for (size_t c = 0; c < NCASES; ++c) any = any || g_res[d][0][c].state == ST_OK;
    ran += any;
  }
  if (ran < 2) lk_test_skip("one device: cross-device identity not checked (run-to-run was)");
  else CHECKF(compared > 0, "no case ran on two devices");
}

int main(void) {
  lk_t.program = "test_ops_determinism";
  g_verbose = getenv("LIGHTOS_TEST_VERBOSE") && atoi(getenv("LIGHTOS_TEST_VERBOSE")) > 0;
  g_filter = getenv("LIGHTOS_TEST_FILTER");
  g_devices = getenv("LIGHTOS_TEST_DEVICES");
  if (getenv("LIGHTOS_GEMM_TILES"))
    snprintf(g_tiles_env, sizeof g_tiles_env, "%s", getenv("LIGHTOS_GEMM_TILES"));
  uint32_t n = 0;
  LK_RUN_NAMED("device_count", LK_CHECK(lightos_device_count(&n) == LIGHTOS_SUCCESS && n > 0));
  g_ndev = n > MAX_DEV ? MAX_DEV : n;
  for (uint32_t d = 0; d < g_ndev; ++d) {
    char nm[96];
    lightos_device_t dev;
    lightos_device_info_t info;
    if (lightos_device_get(d, &dev) == LIGHTOS_SUCCESS &&
        lightos_device_get_info(dev, &info) == LIGHTOS_SUCCESS)
      snprintf(g_uri[d], sizeof g_uri[d], "%s", info.uri);
    snprintf(nm, sizeof nm, "%s/run_to_run", g_uri[d]);
    if (device_selected(g_uri[d])) {
      LK_RUN_NAMED(nm, test_device(d));
    } else {
      LK_RUN_NAMED(nm, lk_test_skip("not in LIGHTOS_TEST_DEVICES=%s", g_devices));
    }
  }
  LK_RUN_NAMED("cross_device", test_cross_device());

  /* the table: case x device -> hash prefix */
  printf("\n%-26s", "op case (deterministic)");
  for (uint32_t d = 0; d < g_ndev; ++d) printf(" %-17s", g_uri[d]);
  printf(" same\n");
  for (size_t c = 0; c < NCASES; ++c) {
    printf("%-26s", kCases[c].name);
    const char* ref = NULL;
    bool same = true;
    int nok = 0;
    for (uint32_t d = 0; d < g_ndev; ++d) {
      const result_t* r = &g_res[d][0][c];
      const char* cell = r->state == ST_OK     ? r->hex
                         : r->state == ST_NA   ? "n/a"
                         : r->state == ST_FAIL ? "FAILED"
                                               : "-";
      printf(" %-17.16s", cell);
      if (r->state == ST_OK) {
        nok++;
        if (!ref) ref = r->hex;
        else if (strcmp(ref, r->hex)) same = false;
        if (g_res[d][1][c].state == ST_OK && strcmp(r->hex, g_res[d][1][c].hex)) same = false;
      }
    }
    printf(" %s\n", nok == 0 ? "-" : same ? "yes" : "NO");
  }
  for (size_t c = 0; c < NCASES; ++c)
    for (uint32_t d = 0; d < g_ndev; ++d)
      if (g_res[d][0][c].state == ST_NA)
        printf("n/a %s on %s: %s\n", kCases[c].name, g_uri[d], g_res[d][0][c].msg);
  return lk_test_finish();
}
