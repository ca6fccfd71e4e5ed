/* Tensor ops (include/lightos/tensor.h, src/ops): every op and dtype
 * against a float64 host reference, on every device.
 *
 * Inputs are fresh random values (a fixed seed per run, printed) that are
 * exactly representable in the dtype under test; outputs are poisoned with
 * 0xff bytes (NaN for floats) before each op.  Shapes include odd sizes
 * (1, 7, 129), broadcasting, non-contiguous views (permute, slice with a
 * step, expand) and empty tensors.  Tolerances: exact for integer ops,
 * + - * /, sqrt, casts, fill, arange, max/min, argmax, uniform random and
 * the optimisers; a few ulp (plus a few epsilon absolute, for functions
 * with cancellation) for transcendental ops; sums within the accumulation
 * error bound.  Every backward op is also checked by central finite
 * differences in f64.  Bad inputs must fail with LIGHTOS_INVALID_ARGUMENT
 * and a message naming the tensor.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lightos/lightos.h"
#include "lk_test.h"
#include "ops/ops_internal.h" /* white-box: lk_ops_kernel */

#define LK_PI 3.14159265358979323846

/* ---- the device under test ------------------------------------------------ */

static lightos_context_t g_ctx;
static lightos_queue_t g_q;
static char g_dev[64];
static bool g_fp64;

static const lightos_dtype_t k_all[8] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F64, LIGHTOS_DTYPE_F16,
                                         LIGHTOS_DTYPE_BF16, LIGHTOS_DTYPE_I32, LIGHTOS_DTYPE_I64,
                                         LIGHTOS_DTYPE_U8,  LIGHTOS_DTYPE_BOOL};
static const lightos_dtype_t k_float[4] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F64, LIGHTOS_DTYPE_F16,
                                           LIGHTOS_DTYPE_BF16};

static bool is_float(lightos_dtype_t dt) {
  return dt == LIGHTOS_DTYPE_F32 || dt == LIGHTOS_DTYPE_F64 || dt == LIGHTOS_DTYPE_F16 ||
         dt == LIGHTOS_DTYPE_BF16;
}
static size_t dsize(lightos_dtype_t dt) { return lightos_dtype_size(dt); }
static const char* dname(lightos_dtype_t dt) { return lightos_dtype_name(dt); }

/* ---- random numbers (xorshift64*, seeded per run) ------------------------- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd_u64(void) {
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return g_rng * 0x2545f4914f6cdd1dull;
}
static double rnd_unit(void) { return (double)(rnd_u64() >> 11) * 0x1p-53; }
static double rnd_range(double lo, double hi) { return lo + (hi - lo) * rnd_unit(); }
static int64_t rnd_int(int64_t lo, int64_t hi) { /* inclusive */
  return lo + (int64_t)(rnd_u64() % (uint64_t)(hi - lo + 1));
}

/* ---- host formats ------------------------------------------------------------ */

/* Round x to a binary format with p mantissa bits (implicit bit included),
 * minimum normal exponent emin and maximum exponent emax; RNE. */
static double round_fmt(double x, int p, int emin, int emax) {
  if (isnan(x) || isinf(x) || x == 0) return x;
  int e;
  frexp(fabs(x), &e);
  e -= 1;
  if (e < emin) e = emin;
  double ulp = ldexp(1.0, e - (p - 1));
  double r = rint(x / ulp) * ulp;
  double maxf = ldexp(2.0 - ldexp(1.0, 1 - p), emax);
  if (fabs(r) > maxf) return copysign(INFINITY, x);
  return r;
}

/* The value x converted to a float dtype (round to nearest even). */
static double round_to(lightos_dtype_t dt, double x) {
  switch (dt) {
    case LIGHTOS_DTYPE_F32: return (double)(float)x;
    case LIGHTOS_DTYPE_F16: return round_fmt(x, 11, -14, 15);
    case LIGHTOS_DTYPE_BF16: return round_fmt(x, 8, -126, 127);
    default: return x;
  }
}

static double half_to_double(uint16_t h) {
  int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 0) v = ldexp((double)m, -24);
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = ldexp(1.0 + m / 1024.0, e - 15);
  return s ? -v : v;
}
static uint16_t double_to_half(double v) { /* v representable (or NaN/inf) */
  uint16_t s = signbit(v) ? 0x8000 : 0;
  if (isnan(v)) return 0x7e00;
  if (isinf(v)) return s | 0x7c00;
  double a = fabs(v);
  if (a == 0) return s;
  int e;
  frexp(a, &e);
  e -= 1;
  if (e < -14) return (uint16_t)(s | (uint16_t)ldexp(a, 24));
  return (uint16_t)(s | (uint16_t)((e + 15) << 10) | (uint16_t)((ldexp(a, -e) - 1.0) * 1024.0));
}
static double bf16_to_double(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static uint16_t double_to_bf16(double v) { /* v representable (or NaN/inf) */
  float f = (float)v;
  uint32_t u;
  memcpy(&u, &f, 4);
  if (isnan(v)) return 0x7fc0;
  return (uint16_t)(u >> 16);
}

/* ulp of a value in a float dtype */
static double ulp_of(lightos_dtype_t dt, double v) {
  int p = dt == LIGHTOS_DTYPE_F32 ? 24 : dt == LIGHTOS_DTYPE_F64 ? 53 : dt == LIGHTOS_DTYPE_F16 ? 11 : 8;
  int emin = dt == LIGHTOS_DTYPE_F64 ? -1022 : dt == LIGHTOS_DTYPE_F16 ? -14 : -126;
  int e = 0;
  if (v != 0 && isfinite(v)) {
    frexp(fabs(v), &e);
    e -= 1;
  }
  if (e < emin) e = emin;
  return ldexp(1.0, e - (p - 1));
}
static double eps_of(lightos_dtype_t dt) { return ulp_of(dt, 1.0); }

/* ---- host mirrors of device buffers ------------------------------------------- */

/* A device buffer of n elements of dtype dt with a host copy of its values
 * (f for float dtypes, i for the others). */
typedef struct hb {
  lightos_buffer_t buf;
  lightos_dtype_t dt;
  int64_t n;
  double* f;
  int64_t* i;
} hb_t;

static hb_t hb_new(lightos_dtype_t dt, int64_t n) {
  hb_t h;
  memset(&h, 0, sizeof h);
  h.dt = dt;
  h.n = n;
  size_t bytes = (size_t)(n > 0 ? n : 1) * dsize(dt);
  if (lightos_buffer_alloc(g_ctx, bytes, 0, &h.buf) != LIGHTOS_SUCCESS) {
    fprintf(stderr, "buffer alloc failed: %s\n", lightos_last_error()->message);
    exit(2);
  }
  h.f = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
  h.i = calloc((size_t)(n > 0 ? n : 1), sizeof(int64_t));
  return h;
}
static void hb_free(hb_t* h) {
  if (h->buf) lightos_buffer_release(h->buf);
  free(h->f);
  free(h->i);
  memset(h, 0, sizeof *h);
}

/* Encodes the host values and writes the whole buffer. */
static void hb_upload(hb_t* h) {
  size_t es = dsize(h->dt);
  unsigned char* raw = calloc((size_t)(h->n > 0 ? h->n : 1), es);
  for (int64_t k = 0; k < h->n; ++k) {
    unsigned char* p = raw + (size_t)k * es;
    switch (h->dt) {
      case LIGHTOS_DTYPE_F32: { float v = (float)h->f[k]; memcpy(p, &v, 4); break; }
      case LIGHTOS_DTYPE_F64: memcpy(p, &h->f[k], 8); break;
      case LIGHTOS_DTYPE_F16: { uint16_t v = double_to_half(h->f[k]); memcpy(p, &v, 2); break; }
      case LIGHTOS_DTYPE_BF16: { uint16_t v = double_to_bf16(h->f[k]); memcpy(p, &v, 2); break; }
      case LIGHTOS_DTYPE_I32: { int32_t v = (int32_t)h->i[k]; memcpy(p, &v, 4); break; }
      case LIGHTOS_DTYPE_I64: memcpy(p, &h->i[k], 8); break;
      default: *p = (unsigned char)h->i[k]; break;
    }
  }
  if (h->n > 0 && lightos_buffer_write(h->buf, 0, (size_t)h->n * es, raw) != LIGHTOS_SUCCESS) {
    fprintf(stderr, "buffer write failed: %s\n", lightos_last_error()->message);
    exit(2);
  }
  free(raw);
}

/* Reads the whole buffer back into the host values; false on an error. */
static bool hb_download(hb_t* h) {
  size_t es = dsize(h->dt);
  if (h->n == 0) return true;
  unsigned char* raw = malloc((size_t)h->n * es);
  lightos_status_t s = lightos_buffer_read(h->buf, 0, (size_t)h->n * es, raw);
  if (s) {
    lk_test_fail(__FILE__, __LINE__, "buffer read failed on %s: %s", g_dev, lightos_last_error()->message);
    free(raw);
    return false;
  }
  for (int64_t k = 0; k < h->n; ++k) {
    unsigned char* p = raw + (size_t)k * es;
    switch (h->dt) {
      case LIGHTOS_DTYPE_F32: { float v; memcpy(&v, p, 4); h->f[k] = v; break; }
      case LIGHTOS_DTYPE_F64: memcpy(&h->f[k], p, 8); break;
      case LIGHTOS_DTYPE_F16: { uint16_t v; memcpy(&v, p, 2); h->f[k] = half_to_double(v); break; }
      case LIGHTOS_DTYPE_BF16: { uint16_t v; memcpy(&v, p, 2); h->f[k] = bf16_to_double(v); break; }
      case LIGHTOS_DTYPE_I32: { int32_t v; memcpy(&v, p, 4); h->i[k] = v; break; }
      case LIGHTOS_DTYPE_I64: memcpy(&h->i[k], p, 8); break;
      default: h->i[k] = *p; break;
    }
  }
  free(raw);
  return true;
}

/* Poisons the device buffer (0xff bytes: NaN for floats, -1 / 255 for
 * integers). */
static void hb_poison(hb_t* h) {
  if (h->n == 0) return;
  unsigned char ff = 0xff;
  lightos_buffer_fill(h->buf, 0, (size_t)h->n * dsize(h->dt), &ff, 1);
}

/* Random representable values; float range [lo, hi]. */
static void hb_random(hb_t* h, double lo, double hi) {
  for (int64_t k = 0; k < h->n; ++k) {
    switch (h->dt) {
      case LIGHTOS_DTYPE_I32:
        h->i[k] = (k % 11 == 3) ? (rnd_u64() & 1 ? INT32_MIN : INT32_MAX) : rnd_int(-1000, 1000);
        break;
      case LIGHTOS_DTYPE_I64:
        h->i[k] = (k % 11 == 3) ? (int64_t)rnd_u64() : rnd_int(-100000, 100000);
        break;
      case LIGHTOS_DTYPE_U8: h->i[k] = rnd_int(0, 255); break;
      case LIGHTOS_DTYPE_BOOL: h->i[k] = rnd_int(0, 1); break;
      default: h->f[k] = round_to(h->dt, rnd_range(lo, hi)); break;
    }
  }
  hb_upload(h);
}

/* A contiguous tensor over the buffer, starting at element `start`. */
static lightos_tensor_t hb_tensor(const hb_t* h, int64_t start, uint32_t ndim, const int64_t* shape) {
  lightos_tensor_t t;
  lightos_status_t s = lightos_tensor_make(h->buf, (size_t)start * dsize(h->dt), h->dt, ndim, shape, &t);
  if (s) {
    fprintf(stderr, "tensor_make failed: %s\n", lightos_last_error()->message);
    exit(2);
  }
  return t;
}

static int64_t numel(const lightos_tensor_t* t) { return lightos_tensor_numel(t); }

/* Element offset of logical (row-major) index k of view t. */
static int64_t view_off(const lightos_tensor_t* t, int64_t k) {
  int64_t off = (int64_t)(t->offset / dsize(t->dtype));
  for (uint32_t d = t->ndim; d-- > 0;) {
    int64_t c = k % t->shape[d];
    k /= t->shape[d];
    off += c * t->strides[d];
  }
  return off;
}
static double getf(const hb_t* h, const lightos_tensor_t* t, int64_t k) {
  return h->f[view_off(t, k)];
}
static int64_t geti(const hb_t* h, const lightos_tensor_t* t, int64_t k) {
  return h->i[view_off(t, k)];
}
/* Value as double (floats, or integers). */
static double getv(const hb_t* h, const lightos_tensor_t* t, int64_t k) {
  return is_float(h->dt) ? getf(h, t, k) : (double)geti(h, t, k);
}

/* Compares a float output with a reference: exact when ulps == 0 and
 * abs_eps == 0, else |got - want| <= ulps * ulp(want) + abs_eps * eps * scale.
 * NaN matches NaN.  Prints the first few mismatches. */
static int g_mismatch_budget;
static bool close_f(lightos_dtype_t dt, double got, double want, double ulps, double abs_eps,
                    double scale) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  if (isnan(got) || isinf(got)) return false;
  if (ulps == 0 && abs_eps == 0) return got == want && signbit(got) == signbit(want);
  double tol = ulps * ulp_of(dt, want) + abs_eps * eps_of(dt) * scale;
  return fabs(got - want) <= tol;
}

#define CHECK_F(dt, got, want, ulps, abs_eps, scale, ...)                                   \
  do {                                                                                      \
    double g__ = (got), w__ = (want);                                                       \
    if (!close_f((dt), g__, w__, (ulps), (abs_eps), (scale))) {                             \
      if (g_mismatch_budget-- > 0) {                                                        \
        char m__[200];                                                                      \
        snprintf(m__, sizeof m__, __VA_ARGS__);                                             \
        lk_test_fail(__FILE__, __LINE__, "%s [%s %s]: expected %.17g, got %.17g", m__,    \
                     g_dev, dname(dt), w__, g__);                                           \
      } else {                                                                              \
        lk_t.current_failed++;                                                              \
      }                                                                                     \
    }                                                                                       \
  } while (0)

#define CHECK_I(got, want, ...)                                                             \
  do {                                                                                      \
    long long g__ = (long long)(got), w__ = (long long)(want);                             \
    if (g__ != w__) {                                                                       \
      if (g_mismatch_budget-- > 0) {                                                        \
        char m__[200];                                                                      \
        snprintf(m__, sizeof m__, __VA_ARGS__);                                             \
        lk_test_fail(__FILE__, __LINE__, "%s [%s]: expected %lld, got %lld", m__, g_dev,  \
                     w__, g__);                                                             \
      } else {                                                                              \
        lk_t.current_failed++;                                                              \
      }                                                                                     \
    }                                                                                       \
  } while (0)

#define OK(call)                                                                             \
  do {                                                                                       \
    lightos_status_t s__ = (call);                                                           \
    if (s__ != LIGHTOS_SUCCESS) {                                                            \
      lk_test_fail(__FILE__, __LINE__, "%s failed on %s: %s (%s)", #call, g_dev,            \
                   lightos_status_string(s__), lightos_last_error()->message);              \
      goto cleanup;                                                                          \
    }                                                                                        \
  } while (0)

/* Expects INVALID_ARGUMENT (or `want`) with `word` in the message. */
static void expect_fail_(const char* file, int line, const char* call, lightos_status_t got,
                         lightos_status_t want, const char* word) {
  const char* msg = lightos_last_error()->message;
  if (got != want)
    lk_test_fail(file, line, "%s on %s: expected %s, got %s (%s)", call, g_dev,
                 lightos_status_string(want), lightos_status_string(got), msg);
  else if (word && !strstr(msg, word))
    lk_test_fail(file, line, "%s on %s: expected \"%s\" in the message \"%s\"", call, g_dev,
                 word, msg);
}
#define EXPECT_FAIL(call, want, word) \
  expect_fail_(__FILE__, __LINE__, #call, (lightos_clear_error(), (call)), (want), (word))

static bool skip_dtype(lightos_dtype_t dt) { return dt == LIGHTOS_DTYPE_F64 && !g_fp64; }

/* ---- descriptors and views ------------------------------------------------------ */

static void test_views(void) {
  hb_t h = hb_new(LIGHTOS_DTYPE_F32, 2 * 3 * 4);
  int64_t shp[3] = {2, 3, 4};
  lightos_tensor_t t = hb_tensor(&h, 0, 3, shp), v;
  LK_CHECK_INT(numel(&t), 24);
  LK_CHECK(lightos_tensor_is_contiguous(&t));
  LK_CHECK_INT(t.strides[0], 12);
  LK_CHECK_INT(t.strides[2], 1);
  /* permute */
  uint32_t perm[3] = {2, 0, 1};
  LK_REQUIRE(lightos_tensor_permute(&t, perm, &v) == LIGHTOS_SUCCESS);
  LK_CHECK_INT(v.shape[0], 4);
  LK_CHECK_INT(v.strides[0], 1);
  LK_CHECK_INT(v.strides[1], 12);
  LK_CHECK(!lightos_tensor_is_contiguous(&v));
  int64_t flat[1] = {24};
  EXPECT_FAIL(lightos_tensor_reshape(&v, 1, flat, &v), LIGHTOS_INVALID_ARGUMENT, "copy");
  uint32_t badperm[3] = {0, 0, 1};
  EXPECT_FAIL(lightos_tensor_permute(&t, badperm, &v), LIGHTOS_INVALID_ARGUMENT, "perm[1]");
  /* reshape with -1, of a contiguous and of a sliced view */
  int64_t rs[2] = {-1, 4};
  LK_REQUIRE(lightos_tensor_reshape(&t, 2, rs, &v) == LIGHTOS_SUCCESS);
  LK_CHECK_INT(v.shape[0], 6);
  LK_CHECK_INT(v.strides[0], 4);
  lightos_tensor_t s;
  LK_REQUIRE(lightos_tensor_slice(&t, 2, 1, 3, 1, &s) == LIGHTOS_SUCCESS); /* [2,3,2] */
  LK_CHECK_INT(s.offset, 4);
  int64_t rs2[2] = {6, 2};
  LK_REQUIRE(lightos_tensor_reshape(&s, 2, rs2, &v) == LIGHTOS_SUCCESS);
  LK_CHECK_INT(v.strides[0], 4);
  LK_CHECK_INT(v.strides[1], 1);
  int64_t rs3[1] = {12};
  EXPECT_FAIL(lightos_tensor_reshape(&s, 1, rs3, &v), LIGHTOS_INVALID_ARGUMENT, "copy");
  int64_t rs4[2] = {5, 5};
  EXPECT_FAIL(lightos_tensor_reshape(&t, 2, rs4, &v), LIGHTOS_INVALID_ARGUMENT, "25");
  /* slice: negative indices, step, clamping, empty */
  LK_REQUIRE(lightos_tensor_slice(&t, 2, -3, 100, 2, &s) == LIGHTOS_SUCCESS);
  LK_CHECK_INT(s.shape[2], 2);
  LK_CHECK_INT(s.strides[2], 2);
  LK_CHECK_INT(s.offset, 4);
  LK_REQUIRE(lightos_tensor_slice(&t, 1, 2, 1, 1, &s) == LIGHTOS_SUCCESS);
  LK_CHECK_INT(s.shape[1], 0);
  LK_CHECK_INT(numel(&s), 0);
  EXPECT_FAIL(lightos_tensor_slice(&t, 3, 0, 1, 1, &s), LIGHTOS_INVALID_ARGUMENT, "dim 3");
  EXPECT_FAIL(lightos_tensor_slice(&t, 0, 0, 1, 0, &s), LIGHTOS_INVALID_ARGUMENT, "step");
  /* expand */
  int64_t one[2] = {3, 1};
  lightos_tensor_t c = hb_tensor(&h, 0, 2, one);
  int64_t ex[3] = {2, 3, 5};
  LK_REQUIRE(lightos_tensor_expand(&c, 3, ex, &v) == LIGHTOS_SUCCESS);
  LK_CHECK_INT(v.strides[0], 0);
  LK_CHECK_INT(v.strides[1], 1);
  LK_CHECK_INT(v.strides[2], 0);
  int64_t exbad[2] = {4, 5};
  EXPECT_FAIL(lightos_tensor_expand(&c, 2, exbad, &v), LIGHTOS_INVALID_ARGUMENT, "from 3 to 4");
  /* make: out of range, misaligned */
  int64_t big[1] = {25};
  EXPECT_FAIL(lightos_tensor_make(h.buf, 0, LIGHTOS_DTYPE_F32, 1, big, &v), LIGHTOS_OUT_OF_RANGE,
              "does not fit");
  EXPECT_FAIL(lightos_tensor_make(h.buf, 2, LIGHTOS_DTYPE_F32, 1, flat, &v),
              LIGHTOS_INVALID_ARGUMENT, "offset");
  EXPECT_FAIL(lightos_tensor_make(h.buf, 0, (lightos_dtype_t)99, 1, flat, &v),
              LIGHTOS_INVALID_ARGUMENT, "dtype");
  /* alloc / free, empty tensors */
  lightos_tensor_t a;
  int64_t z[2] = {0, 5};
  LK_REQUIRE(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_I64, 2, z, &a) == LIGHTOS_SUCCESS);
  LK_CHECK_INT(numel(&a), 0);
  LK_CHECK(lightos_tensor_free(&a) == LIGHTOS_SUCCESS);
  LK_CHECK(a.buffer == NULL);
  int64_t neg[1] = {-2};
  EXPECT_FAIL(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 1, neg, &a), LIGHTOS_INVALID_ARGUMENT,
              "-2");
  /* a scalar */
  LK_REQUIRE(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 0, NULL, &a) == LIGHTOS_SUCCESS);
  LK_CHECK_INT(numel(&a), 1);
  lightos_tensor_free(&a);
  hb_free(&h);
}

/* ---- binary ------------------------------------------------------------------------ */

static int64_t wrap_to(lightos_dtype_t dt, uint64_t v) {
  switch (dt) {
    case LIGHTOS_DTYPE_I32: return (int64_t)(int32_t)(uint32_t)v;
    case LIGHTOS_DTYPE_I64: return (int64_t)v;
    case LIGHTOS_DTYPE_BOOL: return v != 0;
    default: return (int64_t)(v & 255u);
  }
}

static int64_t ref_binary_i(lightos_dtype_t dt, int op, int64_t a, int64_t b) {
  uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
  bool sgn = dt == LIGHTOS_DTYPE_I32 || dt == LIGHTOS_DTYPE_I64;
  switch (op) {
    case LIGHTOS_BINARY_ADD: return wrap_to(dt, ua + ub);
    case LIGHTOS_BINARY_SUB: return wrap_to(dt, ua - ub);
    case LIGHTOS_BINARY_MUL: return wrap_to(dt, ua * ub);
    case LIGHTOS_BINARY_DIV:
      if (b == 0) return 0;
      if (sgn && b == -1) return wrap_to(dt, 0 - ua);
      return a / b;
    case LIGHTOS_BINARY_MAX: return a > b ? a : b;
    case LIGHTOS_BINARY_MIN: return a < b ? a : b;
    default: { /* pow */
      if (sgn && b < 0) return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0;
      uint64_t r = 1, base = ua, e = ub;
      while (e) {
        if (e & 1) r *= base;
        base *= base;
        e >>= 1;
      }
      return wrap_to(dt, r);
    }
  }
}

static double ref_binary_f(int op, double a, double b) {
  switch (op) {
    case LIGHTOS_BINARY_ADD: return a + b;
    case LIGHTOS_BINARY_SUB: return a - b;
    case LIGHTOS_BINARY_MUL: return a * b;
    case LIGHTOS_BINARY_DIV: return a / b;
    case LIGHTOS_BINARY_MAX: return (isnan(a) || isnan(b)) ? NAN : (a > b ? a : b);
    case LIGHTOS_BINARY_MIN: return (isnan(a) || isnan(b)) ? NAN : (a < b ? a : b);
    default: return pow(a, b);
  }
}

/* One binary case: out/a/b views over three buffers, by case number. */
typedef struct bcase {
  hb_t ho, ha, hb;
  lightos_tensor_t out, a, b;
  const char* what;
} bcase_t;

#define NUM_BCASES 8
static void bcase_make(bcase_t* c, int k, lightos_dtype_t dt) {
  memset(c, 0, sizeof *c);
  switch (k) {
    case 0: { /* [7] contiguous */
      int64_t s[1] = {7};
      c->ho = hb_new(dt, 7); c->ha = hb_new(dt, 7); c->hb = hb_new(dt, 7);
      c->out = hb_tensor(&c->ho, 0, 1, s); c->a = hb_tensor(&c->ha, 0, 1, s);
      c->b = hb_tensor(&c->hb, 0, 1, s);
      c->what = "[7]";
      break;
    }
    case 1: { /* broadcasting [3,1,5] and [4,1] to [3,4,5] */
      int64_t so[3] = {3, 4, 5}, sa[3] = {3, 1, 5}, sb[2] = {4, 1};
      c->ho = hb_new(dt, 60); c->ha = hb_new(dt, 15); c->hb = hb_new(dt, 4);
      c->out = hb_tensor(&c->ho, 0, 3, so); c->a = hb_tensor(&c->ha, 0, 3, sa);
      c->b = hb_tensor(&c->hb, 0, 2, sb);
      c->what = "broadcast [3,1,5] x [4,1]";
      break;
    }
    case 2: { /* a permuted, b sliced with a step, out a row slice (offset) */
      int64_t sa[2] = {5, 6}, sb[2] = {6, 10}, so[2] = {7, 5};
      uint32_t perm[2] = {1, 0};
      c->ho = hb_new(dt, 35); c->ha = hb_new(dt, 30); c->hb = hb_new(dt, 60);
      lightos_tensor_t ta = hb_tensor(&c->ha, 0, 2, sa), tb = hb_tensor(&c->hb, 0, 2, sb),
                       to = hb_tensor(&c->ho, 0, 2, so);
      lightos_tensor_permute(&ta, perm, &c->a);
      lightos_tensor_slice(&tb, 1, 1, 10, 2, &c->b);
      lightos_tensor_slice(&to, 0, 1, 7, 1, &c->out);
      c->what = "permuted a, stepped b, offset out";
      break;
    }
    case 3: { /* out permuted (non-contiguous output) */
      int64_t so[2] = {5, 6}, s[2] = {6, 5};
      uint32_t perm[2] = {1, 0};
      c->ho = hb_new(dt, 30); c->ha = hb_new(dt, 30); c->hb = hb_new(dt, 30);
      lightos_tensor_t to = hb_tensor(&c->ho, 0, 2, so);
      lightos_tensor_permute(&to, perm, &c->out);
      c->a = hb_tensor(&c->ha, 0, 2, s); c->b = hb_tensor(&c->hb, 0, 2, s);
      c->what = "permuted out";
      break;
    }
    case 4: { /* scalars */
      c->ho = hb_new(dt, 1); c->ha = hb_new(dt, 1); c->hb = hb_new(dt, 1);
      c->out = hb_tensor(&c->ho, 0, 0, NULL); c->a = hb_tensor(&c->ha, 0, 0, NULL);
      c->b = hb_tensor(&c->hb, 0, 0, NULL);
      c->what = "scalars";
      break;
    }
    case 5: { /* empty */
      int64_t s[2] = {0, 3};
      c->ho = hb_new(dt, 1); c->ha = hb_new(dt, 1); c->hb = hb_new(dt, 1);
      c->out = hb_tensor(&c->ho, 0, 2, s); c->a = hb_tensor(&c->ha, 0, 2, s);
      c->b = hb_tensor(&c->hb, 0, 2, s);
      c->what = "empty [0,3]";
      break;
    }
    case 6: { /* [129] with b expanded from [1] */
      int64_t s[1] = {129}, one[1] = {1};
      c->ho = hb_new(dt, 129); c->ha = hb_new(dt, 129); c->hb = hb_new(dt, 1);
      c->out = hb_tensor(&c->ho, 0, 1, s); c->a = hb_tensor(&c->ha, 0, 1, s);
      lightos_tensor_t tb = hb_tensor(&c->hb, 0, 1, one);
      lightos_tensor_expand(&tb, 1, s, &c->b);
      c->what = "[129] x expanded [1]";
      break;
    }
    default: { /* in place: out is a (3-D, 1 x 7 x 3) */
      int64_t s[3] = {1, 7, 3};
      c->ho = hb_new(dt, 21); c->ha = hb_new(dt, 1); c->hb = hb_new(dt, 21);
      c->out = hb_tensor(&c->ho, 0, 3, s); c->a = c->out; c->b = hb_tensor(&c->hb, 0, 3, s);
      c->what = "in place (out == a)";
      break;
    }
  }
}
static void bcase_free(bcase_t* c) {
  hb_free(&c->ho);
  hb_free(&c->ha);
  hb_free(&c->hb);
}

static void fill_inputs(hb_t* h, lightos_dtype_t dt, int op) {
  if (!is_float(dt)) {
    hb_random(h, 0, 0);
    if (op == LIGHTOS_BINARY_POW && dt != LIGHTOS_DTYPE_U8)
      for (int64_t k = 0; k < h->n; ++k) h->i[k] = h->i[k] % 13; /* small exponents/bases */
    if (op == LIGHTOS_BINARY_DIV)
      for (int64_t k = 0; k < h->n; k += 5)
        h->i[k] = (k % 10 == 0) ? 0 : (dt == LIGHTOS_DTYPE_U8 ? 1 : -1); /* x/0, x/-1 */
    hb_upload(h);
    return;
  }
  if (op == LIGHTOS_BINARY_POW) hb_random(h, 0.25, 3.0);
  else hb_random(h, -8.0, 8.0);
  if (op == LIGHTOS_BINARY_MAX || op == LIGHTOS_BINARY_MIN) {
    if (h->n > 2) h->f[1] = NAN; /* NaN propagates */
    hb_upload(h);
  }
}

static void test_binary_dtype(lightos_dtype_t dt) {
  if (skip_dtype(dt)) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  for (int op = LIGHTOS_BINARY_ADD; op <= LIGHTOS_BINARY_POW; ++op) {
    if (dt == LIGHTOS_DTYPE_BOOL && op != LIGHTOS_BINARY_MAX && op != LIGHTOS_BINARY_MIN) {
      bcase_t c;
      bcase_make(&c, 0, dt);
      EXPECT_FAIL(lightos_op_binary(g_q, (lightos_binary_op_t)op, &c.a, &c.b, &c.out),
                  LIGHTOS_INVALID_ARGUMENT, "bool");
      bcase_free(&c);
      continue;
    }
    for (int k = 0; k < NUM_BCASES; ++k) {
      bcase_t c;
      bcase_make(&c, k, dt);
      fill_inputs(&c.ha, dt, op);
      fill_inputs(&c.hb, dt, op);
      if (k == NUM_BCASES - 1) fill_inputs(&c.ho, dt, op); /* in place: out holds a */
      else hb_poison(&c.ho);
      /* the reference reads the inputs before the op (a may be out) */
      int64_t n = numel(&c.out);
      double* want = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
      int64_t* wanti = calloc((size_t)(n > 0 ? n : 1), sizeof(int64_t));
      const hb_t* ha = k == NUM_BCASES - 1 ? &c.ho : &c.ha;
      /* broadcast: logical index of out -> indices of a and b */
      for (int64_t i = 0; i < n; ++i) {
        int64_t ia = 0, ib = 0, r = i, ma = 1, mb = 1;
        for (int d = (int)c.out.ndim - 1; d >= 0; --d) {
          int64_t coord = r % c.out.shape[d];
          r /= c.out.shape[d];
          int da = d - ((int)c.out.ndim - (int)c.a.ndim), db = d - ((int)c.out.ndim - (int)c.b.ndim);
          if (da >= 0) {
            if (c.a.shape[da] != 1) ia += coord * ma;
            ma *= c.a.shape[da];
          }
          if (db >= 0) {
            if (c.b.shape[db] != 1) ib += coord * mb;
            mb *= c.b.shape[db];
          }
        }
        if (is_float(dt)) want[i] = round_to(dt, ref_binary_f(op, getf(ha, &c.a, ia), getf(&c.hb, &c.b, ib)));
        else wanti[i] = ref_binary_i(dt, op, geti(ha, &c.a, ia), geti(&c.hb, &c.b, ib));
      }
      OK(lightos_op_binary(g_q, (lightos_binary_op_t)op, &c.a, &c.b, &c.out));
      if (!hb_download(&c.ho)) goto cleanup;
      for (int64_t i = 0; i < n; ++i) {
        if (is_float(dt)) {
          bool tr = op == LIGHTOS_BINARY_POW;
          double ulps = tr ? (dt == LIGHTOS_DTYPE_F32 || dt == LIGHTOS_DTYPE_F64 ? 4 : 1) : 0;
          CHECK_F(dt, getf(&c.ho, &c.out, i), want[i], ulps, 0, 1, "binary op %d, %s, element %lld",
                  op, c.what, (long long)i);
        } else {
          CHECK_I(geti(&c.ho, &c.out, i), wanti[i], "binary op %d %s, %s, element %lld", op,
                  dname(dt), c.what, (long long)i);
        }
      }
    cleanup:
      free(want);
      free(wanti);
      bcase_free(&c);
    }
  }
}

/* ---- unary ---------------------------------------------------------------------- */

static double ref_unary(int op, double x) {
  switch (op) {
    case LIGHTOS_UNARY_NEG: return -x;
    case LIGHTOS_UNARY_ABS: return fabs(x);
    case LIGHTOS_UNARY_EXP: return exp(x);
    case LIGHTOS_UNARY_LOG: return log(x);
    case LIGHTOS_UNARY_SQRT: return sqrt(x);
    case LIGHTOS_UNARY_RSQRT: return 1.0 / sqrt(x);
    case LIGHTOS_UNARY_TANH: return tanh(x);
    case LIGHTOS_UNARY_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case LIGHTOS_UNARY_RELU: return x < 0 ? 0.0 : x;
    case LIGHTOS_UNARY_GELU_TANH:
      return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case LIGHTOS_UNARY_GELU_ERF: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    default: return x / (1.0 + exp(-x));
  }
}

static double ref_unary_grad(int op, double x) {
  switch (op) {
    case LIGHTOS_UNARY_NEG: return -1;
    case LIGHTOS_UNARY_ABS: return x > 0 ? 1 : x < 0 ? -1 : 0;
    case LIGHTOS_UNARY_EXP: return exp(x);
    case LIGHTOS_UNARY_LOG: return 1 / x;
    case LIGHTOS_UNARY_SQRT: return 0.5 / sqrt(x);
    case LIGHTOS_UNARY_RSQRT: return -0.5 / (x * sqrt(x));
    case LIGHTOS_UNARY_TANH: return 1 - tanh(x) * tanh(x);
    case LIGHTOS_UNARY_SIGMOID: {
      double s = 1 / (1 + exp(-x));
      return s * (1 - s);
    }
    case LIGHTOS_UNARY_RELU: return x > 0 ? 1 : 0;
    case LIGHTOS_UNARY_GELU_TANH: {
      double k0 = 0.7978845608028654, k1 = 0.044715;
      double t = tanh(k0 * (x + k1 * x * x * x));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k0 * (1 + 3 * k1 * x * x);
    }
    case LIGHTOS_UNARY_GELU_ERF:
      return 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2 * LK_PI);
    default: {
      double s = 1 / (1 + exp(-x));
      return s * (1 + x * (1 - s));
    }
  }
}

static bool unary_exact(int op) {
  return op == LIGHTOS_UNARY_NEG || op == LIGHTOS_UNARY_ABS || op == LIGHTOS_UNARY_RELU ||
         op == LIGHTOS_UNARY_SQRT;
}
static bool unary_positive(int op) {
  return op == LIGHTOS_UNARY_LOG || op == LIGHTOS_UNARY_SQRT || op == LIGHTOS_UNARY_RSQRT;
}

/* Random inputs for op, away from kinks (|x| > 0.05) so derivatives are
 * smooth where checked. */
static void unary_inputs(hb_t* h, int op) {
  hb_random(h, unary_positive(op) ? 0.05 : -4.0, unary_positive(op) ? 6.0 : 4.0);
  for (int64_t k = 0; k < h->n; ++k)
    if (fabs(h->f[k]) < 0.05) h->f[k] = round_to(h->dt, 0.5);
  hb_upload(h);
}

static void test_unary_dtype(lightos_dtype_t dt) {
  if (skip_dtype(dt)) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  bool fl = is_float(dt);
  for (int op = LIGHTOS_UNARY_NEG; op <= LIGHTOS_UNARY_SILU; ++op) {
    bool int_op = op == LIGHTOS_UNARY_NEG || op == LIGHTOS_UNARY_ABS || op == LIGHTOS_UNARY_RELU;
    /* base [3, 43] viewed transposed ([43, 3]) -> out [43, 3] sliced from [44, 3] */
    int64_t bs[2] = {3, 43}, os[2] = {44, 3};
    uint32_t perm[2] = {1, 0};
    hb_t hx = hb_new(dt, 129), ho = hb_new(dt, 132), hg = hb_new(dt, 129), hgx = hb_new(dt, 129);
    double* want = calloc(129, sizeof(double));
    lightos_tensor_t xb = hb_tensor(&hx, 0, 2, bs), x, ob = hb_tensor(&ho, 0, 2, os), out;
    lightos_tensor_permute(&xb, perm, &x);
    lightos_tensor_slice(&ob, 0, 1, 44, 1, &out);
    if (!fl && !(int_op && dt != LIGHTOS_DTYPE_BOOL)) {
      EXPECT_FAIL(lightos_op_unary(g_q, (lightos_unary_op_t)op, &x, &out),
                  LIGHTOS_INVALID_ARGUMENT, dname(dt));
      goto cleanup;
    }
    if (fl) unary_inputs(&hx, op);
    else hb_random(&hx, 0, 0);
    hb_poison(&ho);
    OK(lightos_op_unary(g_q, (lightos_unary_op_t)op, &x, &out));
    if (!hb_download(&ho)) goto cleanup;
    for (int64_t i = 0; i < 129; ++i) {
      if (!fl) {
        int64_t v = geti(&hx, &x, i), w;
        if (op == LIGHTOS_UNARY_NEG) w = wrap_to(dt, 0 - (uint64_t)v);
        else if (op == LIGHTOS_UNARY_ABS) w = v < 0 ? wrap_to(dt, 0 - (uint64_t)v) : v;
        else w = v < 0 ? 0 : v;
        CHECK_I(geti(&ho, &out, i), w, "unary %d %s element %lld (x = %lld)", op, dname(dt),
                (long long)i, (long long)v);
        continue;
      }
      double xv = getf(&hx, &x, i);
      double w = round_to(dt, ref_unary(op, xv));
      bool half = dt == LIGHTOS_DTYPE_F16 || dt == LIGHTOS_DTYPE_BF16;
      double ulps = unary_exact(op) ? 0 : (half ? 1 : 4);
      double abs_eps = unary_exact(op) ? 0 : (half ? 1 : 8);
      if (op == LIGHTOS_UNARY_RSQRT) abs_eps = 0;
      CHECK_F(dt, getf(&ho, &out, i), w, ulps, abs_eps, 1.0, "unary %d element %lld (x = %.9g)",
              op, (long long)i, xv);
    }
    if (!fl) goto cleanup;
    /* backward: grad_x = f'(x) * g, contiguous [129] */
    {
      int64_t n1[1] = {129};
      lightos_tensor_t xc = hb_tensor(&hx, 0, 1, n1), g = hb_tensor(&hg, 0, 1, n1),
                       gx = hb_tensor(&hgx, 0, 1, n1);
      hb_random(&hg, -2.0, 2.0);
      hb_poison(&hgx);
      OK(lightos_op_unary_backward(g_q, (lightos_unary_op_t)op, &xc, &g, &gx));
      if (!hb_download(&hgx)) goto cleanup;
      for (int64_t i = 0; i < 129; ++i) {
        double xv = hx.f[i], gv = hg.f[i];
        double w = round_to(dt, ref_unary_grad(op, xv) * gv);
        if (op == LIGHTOS_UNARY_RELU) w = xv > 0 ? gv : 0.0;
        if (op == LIGHTOS_UNARY_ABS) w = xv > 0 ? gv : xv < 0 ? -gv : 0.0;
        bool exact = op == LIGHTOS_UNARY_NEG || op == LIGHTOS_UNARY_ABS || op == LIGHTOS_UNARY_RELU;
        double scale = fmax(1.0, fabs(gv)) * fmax(1.0, fabs(ref_unary_grad(op, xv)));
        CHECK_F(dt, hgx.f[i], w, exact ? 0 : 4, exact ? 0 : 16, scale,
                "unary_backward %d element %lld (x = %.9g, g = %.9g)", op, (long long)i, xv, gv);
      }
    }
  cleanup:
    free(want);
    hb_free(&hx);
    hb_free(&ho);
    hb_free(&hg);
    hb_free(&hgx);
  }
}

/* Gradient of every unary op by central differences in f64 (elementwise:
 * all elements perturbed at once). */
static void test_unary_fd(void) {
  if (!g_fp64) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  const int n = 64;
  int64_t sh[1] = {n};
  for (int op = LIGHTOS_UNARY_NEG; op <= LIGHTOS_UNARY_SILU; ++op) {
    hb_t hx = hb_new(LIGHTOS_DTYPE_F64, n), hp = hb_new(LIGHTOS_DTYPE_F64, n),
         hm = hb_new(LIGHTOS_DTYPE_F64, n), hg = hb_new(LIGHTOS_DTYPE_F64, n),
         hgx = hb_new(LIGHTOS_DTYPE_F64, n), hy = hb_new(LIGHTOS_DTYPE_F64, n);
    lightos_tensor_t x = hb_tensor(&hx, 0, 1, sh), xp = hb_tensor(&hp, 0, 1, sh),
                     xm = hb_tensor(&hm, 0, 1, sh), g = hb_tensor(&hg, 0, 1, sh),
                     gx = hb_tensor(&hgx, 0, 1, sh), y = hb_tensor(&hy, 0, 1, sh);
    unary_inputs(&hx, op);
    hb_random(&hg, -2, 2);
    double h[64];
    for (int i = 0; i < n; ++i) {
      h[i] = 1e-6 * fmax(1.0, fabs(hx.f[i]));
      hp.f[i] = hx.f[i] + h[i];
      hm.f[i] = hx.f[i] - h[i];
    }
    hb_upload(&hp);
    hb_upload(&hm);
    double* fp = calloc((size_t)n, sizeof(double));
    OK(lightos_op_unary(g_q, (lightos_unary_op_t)op, &xp, &y));
    if (!hb_download(&hy)) goto cleanup;
    memcpy(fp, hy.f, (size_t)n * sizeof(double));
    OK(lightos_op_unary(g_q, (lightos_unary_op_t)op, &xm, &y));
    if (!hb_download(&hy)) goto cleanup;
    OK(lightos_op_unary_backward(g_q, (lightos_unary_op_t)op, &x, &g, &gx));
    if (!hb_download(&hgx)) goto cleanup;
    for (int i = 0; i < n; ++i) {
      double num = hg.f[i] * (fp[i] - hy.f[i]) / ((hp.f[i] - hm.f[i]));
      double tol = 1e-6 * fmax(1.0, fabs(num));
      if (fabs(hgx.f[i] - num) > tol && g_mismatch_budget-- > 0)
        lk_test_fail(__FILE__, __LINE__,
                     "unary %d backward vs finite differences [%s], x = %.17g: analytic %.17g, "
                     "numeric %.17g",
                     op, g_dev, hx.f[i], hgx.f[i], num);
    }
  cleanup:
    free(fp);
    hb_free(&hx); hb_free(&hp); hb_free(&hm); hb_free(&hg); hb_free(&hgx); hb_free(&hy);
  }
}

/* ---- cast ------------------------------------------------------------------------- */

/* Round a 64-bit integer to p mantissa bits (RNE), overflow past maxf to inf. */
static double round_int_fmt(int64_t v, int p, double maxf) {
  uint64_t a = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  int bits = 0;
  while (bits < 64 && (a >> bits)) bits++;
  double r;
  if (bits <= p) {
    r = (double)a;
  } else {
    int sh = bits - p;
    uint64_t m = a >> sh, rem = a & ((1ull << sh) - 1), half = 1ull << (sh - 1);
    if (rem > half || (rem == half && (m & 1))) m++;
    r = ldexp((double)m, sh);
  }
  if (r > maxf) r = INFINITY;
  return v < 0 ? -r : r;
}

/* The result of casting value (float v or integer iv, of dtype from) to dtype to,
 * as a double (floats) or integer (*out_i). */
static void ref_cast(lightos_dtype_t from, double v, int64_t iv, lightos_dtype_t to, double* of,
                     int64_t* oi) {
  *of = 0;
  *oi = 0;
  if (from == LIGHTOS_DTYPE_BOOL) iv = iv != 0;
  if (is_float(to)) {
    if (is_float(from)) {
      *of = round_to(to, v);
    } else {
      switch (to) {
        case LIGHTOS_DTYPE_F32: *of = (double)(float)iv; break;
        case LIGHTOS_DTYPE_F64: *of = (double)iv; break;
        case LIGHTOS_DTYPE_F16: *of = round_int_fmt(iv, 11, 65504.0); break;
        default: *of = round_int_fmt(iv, 8, ldexp(255.0, 120)); break;
      }
    }
    return;
  }
  if (to == LIGHTOS_DTYPE_BOOL) {
    *oi = is_float(from) ? (v != 0) : (iv != 0);
    return;
  }
  if (!is_float(from)) {
    *oi = wrap_to(to, (uint64_t)iv);
    return;
  }
  if (isnan(v)) return;
  double t = trunc(v);
  double lo = to == LIGHTOS_DTYPE_I32 ? -2147483648.0 : to == LIGHTOS_DTYPE_I64 ? -9223372036854775808.0 : 0;
  double hi = to == LIGHTOS_DTYPE_I32 ? 2147483647.0 : to == LIGHTOS_DTYPE_I64 ? 9223372036854775807.0 : 255;
  if (t <= lo) *oi = to == LIGHTOS_DTYPE_I32 ? INT32_MIN : to == LIGHTOS_DTYPE_I64 ? INT64_MIN : 0;
  else if (t >= hi) *oi = to == LIGHTOS_DTYPE_I32 ? INT32_MAX : to == LIGHTOS_DTYPE_I64 ? INT64_MAX : 255;
  else *oi = (int64_t)t;
}

static void cast_inputs(hb_t* h) {
  static const double fspecial[] = {
      0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 255.5, 256.0, -129.0, 1e10, -1e10, 3e38,
      NAN, INFINITY, -INFINITY, 65504.0, 65519.0, 65520.0, 1.0 + 0x1p-11, 1.0 + 3 * 0x1p-11,
      0x1p-25, 3 * 0x1p-26, 0x1p-24, 1e-30, 2147483647.5, -2147483648.5, 9.3e18, -9.3e18,
      1.0 + 0x1p-11 + 0x1p-40, 1.0 + 0x1p-8 + 0x1p-40, 1.0 + 0x1p-24 + 0x1p-50, 3.4e38, -7.9};
  static const int64_t ispecial[] = {0, 1, -1, 127, 128, 255, 256, -129, INT32_MIN, INT32_MAX,
                                     65504, 65520, 16777217, (1 << 30) + (1 << 22) + 1,
                                     -((1 << 30) + (1 << 22) + 1), 2049, 2051, INT64_MIN,
                                     INT64_MAX, (1ll << 53) + 1, (1ll << 60) + (1ll << 36) + 1,
                                     -4611686018427387905ll};
  int nf = (int)(sizeof fspecial / sizeof fspecial[0]), ni = (int)(sizeof ispecial / sizeof ispecial[0]);
  hb_random(h, -300.0, 300.0);
  for (int64_t k = 0; k < h->n; ++k) {
    switch (h->dt) {
      case LIGHTOS_DTYPE_I32:
        if (k < ni) h->i[k] = (int32_t)ispecial[k];
        break;
      case LIGHTOS_DTYPE_I64:
        if (k < ni) h->i[k] = ispecial[k];
        else h->i[k] = (int64_t)rnd_u64() >> (rnd_u64() % 60);
        break;
      case LIGHTOS_DTYPE_U8: break;
      case LIGHTOS_DTYPE_BOOL: h->i[k] = k % 4 == 0 ? 0 : k % 4 == 1 ? 1 : k % 4 == 2 ? 2 : 255; break;
      default:
        if (k < nf) h->f[k] = round_to(h->dt, fspecial[k]);
        break;
    }
  }
  hb_upload(h);
}

static void test_cast_from(lightos_dtype_t from) {
  if (skip_dtype(from)) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  const int64_t n = 96;
  for (int ti = 0; ti < 8; ++ti) {
    lightos_dtype_t to = k_all[ti];
    if (skip_dtype(to)) continue;
    hb_t hx = hb_new(from, n), ho = hb_new(to, n + 4);
    cast_inputs(&hx);
    hb_poison(&ho);
    /* x [96] contiguous; out a stepped view [96] of [2 * 50 - ...]: use
     * [12, 8] -> permuted [8, 12] x and out [8, 12] at an offset */
    int64_t xs[2] = {12, 8}, osh[2] = {8, 12};
    uint32_t perm[2] = {1, 0};
    lightos_tensor_t xb = hb_tensor(&hx, 0, 2, xs), x, out = hb_tensor(&ho, 4, 2, osh);
    lightos_tensor_permute(&xb, perm, &x);
    OK(lightos_op_cast(g_q, &x, &out));
    if (!hb_download(&ho)) goto cleanup;
    for (int64_t i = 0; i < n; ++i) {
      double wf;
      int64_t wi;
      int64_t off = view_off(&x, i);
      ref_cast(from, hx.f[off], hx.i[off], to, &wf, &wi);
      if (to == from) { /* the same dtype copies the bits */
        wf = hx.f[off];
        wi = hx.i[off];
      }
      if (is_float(to))
        CHECK_F(to, getf(&ho, &out, i), wf, 0, 0, 1, "cast %s -> %s of element %lld (%.17g / %lld)",
                dname(from), dname(to), (long long)i, hx.f[off], (long long)hx.i[off]);
      else
        CHECK_I(geti(&ho, &out, i), wi, "cast %s -> %s of element %lld (%.17g / %lld)", dname(from),
                dname(to), (long long)i, hx.f[off], (long long)hx.i[off]);
    }
    /* contiguous: the same dtype copies the bits (NaN payloads too) */
    if (to == from) {
      lightos_tensor_t x2 = hb_tensor(&hx, 0, 2, xs), o2 = hb_tensor(&ho, 0, 2, xs);
      OK(lightos_op_contiguous(g_q, &x2, &o2));
      if (!hb_download(&ho)) goto cleanup;
      for (int64_t i = 0; i < n; ++i) {
        if (is_float(to))
          CHECK_F(to, ho.f[i], hx.f[i], 0, 0, 1, "contiguous element %lld", (long long)i);
        else
          CHECK_I(ho.i[i], hx.i[i], "contiguous element %lld", (long long)i);
      }
    }
  cleanup:
    hb_free(&hx);
    hb_free(&ho);
  }
  /* empty */
  {
    hb_t hx = hb_new(from, 1), ho = hb_new(LIGHTOS_DTYPE_F32, 1);
    int64_t z[2] = {3, 0};
    lightos_tensor_t x = hb_tensor(&hx, 0, 2, z), out = hb_tensor(&ho, 0, 2, z);
    LK_CHECK_STATUS(lightos_op_cast(g_q, &x, &out), LIGHTOS_SUCCESS);
    hb_free(&hx);
    hb_free(&ho);
  }
}

/* ---- fill / arange ---------------------------------------------------------------- */

static void test_fill_arange(lightos_dtype_t dt) {
  if (skip_dtype(dt)) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  static const double vals[] = {1.5, -2.7, NAN, 1e10, -1e10, 0.1, 300.0, -0.0, 65519.0};
  hb_t ho = hb_new(dt, 40);
  int64_t bs[2] = {3, 5};
  uint32_t perm[2] = {1, 0};
  lightos_tensor_t ob = hb_tensor(&ho, 2, 2, bs), out;
  lightos_tensor_permute(&ob, perm, &out); /* [5, 3], non-contiguous */
  for (size_t k = 0; k < sizeof vals / sizeof vals[0]; ++k) {
    hb_poison(&ho);
    OK(lightos_op_fill(g_q, &out, vals[k]));
    if (!hb_download(&ho)) goto cleanup;
    double wf;
    int64_t wi;
    ref_cast(LIGHTOS_DTYPE_F64, vals[k], 0, dt, &wf, &wi);
    for (int64_t i = 0; i < 15; ++i) {
      if (is_float(dt)) CHECK_F(dt, getf(&ho, &out, i), wf, 0, 0, 1, "fill %g element %lld", vals[k], (long long)i);
      else CHECK_I(geti(&ho, &out, i), wi, "fill %g element %lld", vals[k], (long long)i);
    }
    /* the elements around the view are untouched */
    if (is_float(dt)) LK_CHECK(isnan(ho.f[0]) && isnan(ho.f[1]) && isnan(ho.f[17]));
    else {
      int64_t poison = (dt == LIGHTOS_DTYPE_U8 || dt == LIGHTOS_DTYPE_BOOL) ? 255 : -1;
      LK_CHECK(ho.i[0] == poison && ho.i[1] == poison && ho.i[17] == poison);
    }
  }
  {
    static const double ar[][2] = {{-3.5, 0.75}, {5, 3}, {250, 1}, {0, 0.1}, {-1e9, 3e8}};
    for (size_t k = 0; k < sizeof ar / sizeof ar[0]; ++k) {
      hb_poison(&ho);
      OK(lightos_op_arange(g_q, &out, ar[k][0], ar[k][1]));
      if (!hb_download(&ho)) goto cleanup;
      for (int64_t i = 0; i < 15; ++i) {
        double wf;
        int64_t wi;
        ref_cast(LIGHTOS_DTYPE_F64, ar[k][0] + (double)i * ar[k][1], 0, dt, &wf, &wi);
        if (is_float(dt)) CHECK_F(dt, getf(&ho, &out, i), wf, 0, 0, 1, "arange(%g, %g) element %lld", ar[k][0], ar[k][1], (long long)i);
        else CHECK_I(geti(&ho, &out, i), wi, "arange(%g, %g) element %lld", ar[k][0], ar[k][1], (long long)i);
      }
    }
  }
  /* empty and expanded outputs */
  {
    int64_t z[1] = {0}, one[1] = {1}, five[1] = {5};
    lightos_tensor_t e = hb_tensor(&ho, 0, 1, z), o1 = hb_tensor(&ho, 0, 1, one), ex;
    LK_CHECK_STATUS(lightos_op_fill(g_q, &e, 1.0), LIGHTOS_SUCCESS);
    lightos_tensor_expand(&o1, 1, five, &ex);
    EXPECT_FAIL(lightos_op_fill(g_q, &ex, 1.0), LIGHTOS_INVALID_ARGUMENT, "'out'");
  }
cleanup:
  hb_free(&ho);
}

/* ---- random ------------------------------------------------------------------------ */

static void philox_ref(uint32_t k0, uint32_t k1, const uint32_t ctr[4], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  for (int i = 0; i < 10; ++i) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

static void test_random_dtype(lightos_dtype_t dt) {
  if (skip_dtype(dt)) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  const int64_t n = 4096;
  const uint64_t seed = 0x0123456789abcdefull, off = 77;
  hb_t ho = hb_new(dt, n);
  int64_t sh[2] = {64, 64};
  uint32_t perm[2] = {1, 0};
  lightos_tensor_t ob = hb_tensor(&ho, 0, 2, sh), out;
  lightos_tensor_permute(&ob, perm, &out); /* element i is the flattened index of the view */
  for (int dist = 1; dist <= 3; ++dist) {
    double a = dist == 1 ? -2.0 : dist == 2 ? 1.5 : 0.3, b = dist == 1 ? 3.0 : dist == 2 ? 2.0 : 0;
    hb_poison(&ho);
    OK(lightos_op_random(g_q, (lightos_rng_dist_t)dist, seed, off, a, b, &out));
    if (!hb_download(&ho)) goto cleanup;
    double sum = 0, sum2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      uint64_t c = off + (uint64_t)i;
      uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), 0, 0}, r[4];
      philox_ref((uint32_t)seed, (uint32_t)(seed >> 32), ctr, r);
      double got = getf(&ho, &out, i), want;
      double tol_abs = 0;
      if (dt == LIGHTOS_DTYPE_F64) {
        double u = (double)(((uint64_t)(r[0] >> 5) << 26) + (r[1] >> 6)) * 0x1p-53;
        double u2 = (double)(((uint64_t)(r[2] >> 5) << 26) + (r[3] >> 6)) * 0x1p-53;
        if (dist == 1) want = a + (b - a) * u;
        else if (dist == 2) { want = a + b * sqrt(-2 * log(1 - u)) * cos(2 * LK_PI * u2); tol_abs = 1e-12; }
        else want = u < a ? 0.0 : 1.0 / (1.0 - a);
      } else {
        float u = (float)(r[0] >> 8) * 0x1p-24f, u2 = (float)(r[1] >> 8) * 0x1p-24f;
        float af = (float)a, bf = (float)b, scale = (float)(1.0 / (1.0 - a));
        if (dist == 1) want = round_to(dt, (double)(af + (bf - af) * u));
        else if (dist == 2) { want = round_to(dt, af + bf * sqrt(-2 * log(1 - (double)u)) * cos(2 * LK_PI * u2)); tol_abs = 2e-5; }
        else want = round_to(dt, u < af ? 0.0 : scale);
      }
      sum += got;
      sum2 += got * got;
      double ulps = (dist == 2 && dt != LIGHTOS_DTYPE_F32 && dt != LIGHTOS_DTYPE_F64) ? 1 : 0;
      if (tol_abs > 0 || ulps > 0) {
        if (!(fabs(got - want) <= tol_abs * fmax(1, fabs(want)) + ulps * ulp_of(dt, want)) && g_mismatch_budget-- > 0)
          lk_test_fail(__FILE__, __LINE__, "random dist %d element %lld [%s %s]: expected %.9g, got %.9g", dist, (long long)i, g_dev, dname(dt), want, got);
      } else {
        CHECK_F(dt, got, want, 0, 0, 1, "random dist %d element %lld", dist, (long long)i);
      }
    }
    double mean = sum / n, sd = sqrt(sum2 / n - mean * mean);
    if (dist == 1) LK_CHECK_MSG(fabs(mean - 0.5) < 0.1 && fabs(sd - 5 / sqrt(12.0)) < 0.1, "uniform mean %g sd %g", mean, sd);
    if (dist == 2) LK_CHECK_MSG(fabs(mean - 1.5) < 0.1 && fabs(sd - 2.0) < 0.1, "normal mean %g sd %g", mean, sd);
    if (dist == 3) LK_CHECK_MSG(fabs(mean - 1.0) < 0.06, "dropout mean %g", mean);
  }
  /* the counter: offset k gives elements k.. of offset 0 */
  {
    hb_t h2 = hb_new(dt, 16);
    int64_t s16[1] = {16};
    lightos_tensor_t o2 = hb_tensor(&h2, 0, 1, s16);
    OK(lightos_op_random(g_q, LIGHTOS_RNG_UNIFORM, seed, off + 5, 0.0, 1.0, &o2));
    OK(lightos_op_random(g_q, LIGHTOS_RNG_UNIFORM, seed, off, 0.0, 1.0, &out));
    bool ok2 = hb_download(&h2) && hb_download(&ho);
    for (int64_t i = 0; ok2 && i < 16; ++i)
      CHECK_F(dt, h2.f[i], getf(&ho, &out, i + 5), 0, 0, 1, "random offset element %lld", (long long)i);
    hb_free(&h2);
  }
  EXPECT_FAIL(lightos_op_random(g_q, LIGHTOS_RNG_DROPOUT, 1, 0, 1.5, 0, &out), LIGHTOS_INVALID_ARGUMENT, "1.5");
cleanup:
  hb_free(&ho);
}

/* ---- reduce / argmax -------------------------------------------------------------------- */

/* A reduction case: x of shape xs (optionally a permuted view of a base of
 * the reversed shape), mask, keepdim. */
typedef struct rcase {
  int ndim;
  int64_t shape[4];
  uint32_t mask;
  bool keep, permuted;
} rcase_t;

static const rcase_t k_rcases[] = {
    {1, {7}, 1, false, false},          {2, {3, 129}, 2, false, false},
    {2, {3, 129}, 1, true, false},      {4, {2, 3, 4, 5}, 10, false, true},
    {2, {4, 3}, 0, false, false},       {2, {2, 3000}, 2, false, false},
    {2, {2, 3000}, 3, true, true},      {2, {0, 4}, 1, false, false},
    {2, {3, 0}, 1, false, false},       {3, {5, 1, 6}, 5, true, true},
};

static void rcase_make(const rcase_t* c, lightos_dtype_t dt, hb_t* hx, hb_t* ho,
                       lightos_tensor_t* x, lightos_tensor_t* out) {
  int64_t n = 1, rev[4];
  for (int i = 0; i < c->ndim; ++i) {
    n *= c->shape[i];
    rev[i] = c->shape[c->ndim - 1 - i];
  }
  *hx = hb_new(dt, n);
  if (c->permuted) {
    uint32_t perm[4];
    for (int i = 0; i < c->ndim; ++i) perm[i] = (uint32_t)(c->ndim - 1 - i);
    lightos_tensor_t b = hb_tensor(hx, 0, (uint32_t)c->ndim, rev);
    lightos_tensor_permute(&b, perm, x);
  } else {
    *x = hb_tensor(hx, 0, (uint32_t)c->ndim, c->shape);
  }
  int64_t os[4], on = 1;
  int k = 0;
  for (int i = 0; i < c->ndim; ++i) {
    if (c->mask & (1u << i)) {
      if (c->keep) os[k++] = 1;
    } else {
      os[k++] = c->shape[i];
      on *= c->shape[i];
    }
  }
  *ho = hb_new(dt, on + 1);
  *out = hb_tensor(ho, 1, (uint32_t)k, os);
}

static void test_reduce_dtype(lightos_dtype_t dt) {
  if (skip_dtype(dt)) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  bool fl = is_float(dt);
  for (size_t ci = 0; ci < sizeof k_rcases / sizeof k_rcases[0]; ++ci) {
    const rcase_t* c = &k_rcases[ci];
    for (int kind = LIGHTOS_REDUCE_SUM; kind <= LIGHTOS_REDUCE_MIN; ++kind) {
      hb_t hx, ho;
      lightos_tensor_t x, out;
      rcase_make(c, dt, &hx, &ho, &x, &out);
      hb_random(&hx, -4.0, 4.0);
      hb_poison(&ho);
      int64_t nx = numel(&x), no = numel(&out), count = no ? nx / (no ? no : 1) : 0;
      if (no > 0 && nx == 0) count = 0;
      lightos_status_t s = lightos_op_reduce(g_q, (lightos_reduce_kind_t)kind, &x, c->mask, &out);
      if (kind == LIGHTOS_REDUCE_MEAN && !fl) {
        EXPECT_FAIL(lightos_op_reduce(g_q, (lightos_reduce_kind_t)kind, &x, c->mask, &out), LIGHTOS_INVALID_ARGUMENT, "mean");
        goto next;
      }
      if (count == 0 && no > 0 && kind >= LIGHTOS_REDUCE_MAX) {
        EXPECT_FAIL(lightos_op_reduce(g_q, (lightos_reduce_kind_t)kind, &x, c->mask, &out), LIGHTOS_INVALID_ARGUMENT, "empty");
        goto next;
      }
      if (s) {
        lk_test_fail(__FILE__, __LINE__, "reduce %d case %zu on %s: %s", kind, ci, g_dev, lightos_last_error()->message);
        goto next;
      }
      if (!hb_download(&ho)) goto next;
      for (int64_t j = 0; j < no; ++j) {
        /* output j's coordinates over the kept dims; walk the reduced ones */
        int64_t kc[4] = {0}, r = j;
        for (int d = c->ndim - 1; d >= 0; --d)
          if (!(c->mask & (1u << d))) {
            kc[d] = r % c->shape[d];
            r /= c->shape[d];
          }
        double sum = 0, asum = 0, best = NAN;
        uint64_t isum = 0;
        int64_t ibest = 0;
        bool first = true;
        for (int64_t t = 0; t < nx; ++t) {
          int64_t cc[4], rr = t;
          bool match = true;
          for (int d = c->ndim - 1; d >= 0; --d) {
            cc[d] = rr % c->shape[d];
            rr /= c->shape[d];
            if (!(c->mask & (1u << d)) && cc[d] != kc[d]) match = false;
          }
          if (!match) continue;
          if (fl) {
            double v = getf(&hx, &x, t);
            sum += v;
            asum += fabs(v);
            if (first || (kind == LIGHTOS_REDUCE_MAX ? v > best : v < best)) best = v;
          } else {
            int64_t v = geti(&hx, &x, t);
            isum += (uint64_t)v;
            if (first || (kind == LIGHTOS_REDUCE_MAX ? v > ibest : v < ibest)) ibest = v;
          }
          first = false;
        }
        if (fl) {
          double want = kind == LIGHTOS_REDUCE_SUM ? sum
                        : kind == LIGHTOS_REDUCE_MEAN ? (count ? sum / (double)count : NAN)
                                                      : best;
          bool acc_d = dt == LIGHTOS_DTYPE_F64;
          double tol = (double)count * (acc_d ? 0x1p-53 : 0x1p-24) * asum;
          if (kind == LIGHTOS_REDUCE_MEAN && count) tol /= (double)count;
          want = round_to(dt, want);
          double got = getf(&ho, &out, j);
          bool ok = (isnan(want) && isnan(got)) ||
                    (kind >= LIGHTOS_REDUCE_MAX ? got == want
                                               : fabs(got - want) <= tol + ulp_of(dt, want));
          if (!ok && g_mismatch_budget-- > 0)
            lk_test_fail(__FILE__, __LINE__, "reduce kind %d case %zu [%s %s] output %lld: expected %.17g, got %.17g", kind, ci, g_dev, dname(dt), (long long)j, want, got);
        } else {
          int64_t want = kind == LIGHTOS_REDUCE_SUM ? wrap_to(dt, isum) : ibest;
          CHECK_I(geti(&ho, &out, j), want, "reduce kind %d case %zu %s output %lld", kind, ci, dname(dt), (long long)j);
        }
      }
    next:
      hb_free(&hx);
      hb_free(&ho);
    }
  }
}

static void test_argmax_dtype(lightos_dtype_t dt) {
  if (skip_dtype(dt)) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  /* x [4, 9, 5] (a permuted view of [5, 9, 4]); argmax over dim 1 */
  int64_t rev[3] = {5, 9, 4};
  uint32_t perm[3] = {2, 1, 0};
  for (int keep = 0; keep < 2; ++keep) {
    hb_t hx = hb_new(dt, 180), ho = hb_new(LIGHTOS_DTYPE_I64, 21);
    lightos_tensor_t xb = hb_tensor(&hx, 0, 3, rev), x, out;
    lightos_tensor_permute(&xb, perm, &x);
    int64_t os[3] = {4, 1, 5}, os2[2] = {4, 5};
    out = keep ? hb_tensor(&ho, 1, 3, os) : hb_tensor(&ho, 1, 2, os2);
    hb_random(&hx, -3, 3);
    for (int64_t k = 0; k < 180; ++k) { /* ties */
      if (is_float(dt)) hx.f[k] = round_to(dt, (double)(rnd_int(0, 5)) * 0.5);
      else hx.i[k] = dt == LIGHTOS_DTYPE_I64 ? rnd_int(-3, 3) * 1000000000000ll : rnd_int(0, 6);
    }
    if (is_float(dt)) hx.f[view_off(&x, 2 * 45 + 3 * 5 + 1)] = NAN; /* row (2, *, 1) has a NaN at 3 */
    hb_upload(&hx);
    hb_poison(&ho);
    OK(lightos_op_argmax(g_q, &x, 1, &out));
    if (!hb_download(&ho)) goto cleanup;
    for (int64_t a = 0; a < 4; ++a)
      for (int64_t c = 0; c < 5; ++c) {
        int64_t bi = 0;
        double best = getv(&hx, &x, a * 45 + c);
        for (int64_t k = 1; k < 9; ++k) {
          double v = getv(&hx, &x, a * 45 + k * 5 + c);
          if (!isnan(best) && (isnan(v) || v > best)) {
            best = v;
            bi = k;
          }
        }
        CHECK_I(geti(&ho, &out, a * 5 + c), bi, "argmax row (%lld, %lld) keepdim %d", (long long)a, (long long)c, keep);
      }
  cleanup:
    hb_free(&hx);
    hb_free(&ho);
  }
}

/* ---- softmax ----------------------------------------------------------------------------- */

/* x of shape sh (3-D, a permuted view when perm != NULL); softmax over dim. */
static void ref_softmax(const hb_t* hx, const lightos_tensor_t* x, uint32_t dim, bool lg, double* y) {
  int64_t outer = 1, inner = 1, len = x->shape[dim];
  for (uint32_t i = 0; i < dim; ++i) outer *= x->shape[i];
  for (uint32_t i = dim + 1; i < x->ndim; ++i) inner *= x->shape[i];
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t c = 0; c < inner; ++c) {
      double m = -INFINITY, s = 0;
      for (int64_t k = 0; k < len; ++k) m = fmax(m, getf(hx, x, (a * len + k) * inner + c));
      for (int64_t k = 0; k < len; ++k) s += exp(getf(hx, x, (a * len + k) * inner + c) - m);
      for (int64_t k = 0; k < len; ++k) {
        int64_t i = (a * len + k) * inner + c;
        double v = getf(hx, x, i);
        y[i] = lg ? (v - m) - log(s) : exp(v - m) / s;
      }
    }
}

typedef struct scase {
  int ndim;
  int64_t shape[3];
  uint32_t dim;
  bool permuted;
} scase_t;

static const scase_t k_scases[] = {{2, {5, 129}, 1, false}, {2, {5, 129}, 0, false},
                                   {3, {2, 3, 4}, 1, true}, {3, {3, 7, 2}, 2, true},
                                   {1, {1}, 0, false}};

static void scase_view(const scase_t* c, hb_t* h, lightos_tensor_t* t) {
  if (c->permuted) { /* base of the reversed shape, permuted back */
    int64_t rev[3];
    uint32_t perm[3];
    for (int i = 0; i < c->ndim; ++i) {
      rev[i] = c->shape[c->ndim - 1 - i];
      perm[i] = (uint32_t)(c->ndim - 1 - i);
    }
    lightos_tensor_t b = hb_tensor(h, 0, (uint32_t)c->ndim, rev);
    lightos_tensor_permute(&b, perm, t);
  } else {
    *t = hb_tensor(h, 0, (uint32_t)c->ndim, c->shape);
  }
}

static void test_softmax_dtype(lightos_dtype_t dt) {
  if (skip_dtype(dt)) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  bool half = dt == LIGHTOS_DTYPE_F16 || dt == LIGHTOS_DTYPE_BF16;
  for (size_t ci = 0; ci < sizeof k_scases / sizeof k_scases[0]; ++ci) {
    const scase_t* c = &k_scases[ci];
    int64_t n = 1;
    for (int i = 0; i < c->ndim; ++i) n *= c->shape[i];
    for (int lg = 0; lg < 2; ++lg) {
      hb_t hx = hb_new(dt, n), hy = hb_new(dt, n), hg = hb_new(dt, n), hgx = hb_new(dt, n);
      lightos_tensor_t x, y, g, gx;
      scase_view(c, &hx, &x);
      scase_view(c, &hy, &y); /* non-contiguous outputs too */
      scase_view(c, &hg, &g);
      gx = hb_tensor(&hgx, 0, (uint32_t)c->ndim, c->shape);
      double* want = calloc((size_t)n, sizeof(double));
      hb_random(&hx, -5, 5);
      hb_random(&hg, -1, 1);
      hb_poison(&hy);
      hb_poison(&hgx);
      ref_softmax(&hx, &x, c->dim, lg, want);
      OK(lightos_op_softmax(g_q, &x, c->dim, lg, &y));
      if (!hb_download(&hy)) goto cleanup;
      for (int64_t i = 0; i < n; ++i)
        CHECK_F(dt, getf(&hy, &y, i), round_to(dt, want[i]), half ? 1 : 4, half ? 1 : 8,
                fmax(1.0, fabs(want[i])), "softmax case %zu log %d element %lld", ci, lg, (long long)i);
      /* backward from the device's y */
      OK(lightos_op_softmax_backward(g_q, &y, &g, c->dim, lg, &gx));
      if (!hb_download(&hgx)) goto cleanup;
      {
        int64_t outer = 1, inner = 1, len = c->shape[c->dim];
        for (uint32_t i = 0; i < c->dim; ++i) outer *= c->shape[i];
        for (int i = (int)c->dim + 1; i < c->ndim; ++i) inner *= c->shape[i];
        for (int64_t a = 0; a < outer; ++a)
          for (int64_t cc = 0; cc < inner; ++cc) {
            double s = 0, ss = 0, sabs = 0, ssabs = 0;
            for (int64_t k = 0; k < len; ++k) {
              int64_t i = (a * len + k) * inner + cc;
              s += getf(&hg, &g, i) * getf(&hy, &y, i);
              sabs += fabs(getf(&hg, &g, i) * getf(&hy, &y, i));
              ss += getf(&hg, &g, i);
              ssabs += fabs(getf(&hg, &g, i));
            }
            for (int64_t k = 0; k < len; ++k) {
              int64_t i = (a * len + k) * inner + cc;
              double yv = getf(&hy, &y, i), gv = getf(&hg, &g, i);
              double w = lg ? gv - exp(yv) * ss : yv * (gv - s);
              double scale = lg ? exp(yv) * ssabs + fabs(gv) : fabs(yv) * (sabs + fabs(gv));
              CHECK_F(dt, hgx.f[i], round_to(dt, w), half ? 1 : 4, half ? 2 : 2 * (double)len + 8,
                      scale, "softmax_backward case %zu log %d element %lld", ci, lg, (long long)i);
            }
          }
      }
    cleanup:
      free(want);
      hb_free(&hx); hb_free(&hy); hb_free(&hg); hb_free(&hgx);
    }
  }
  /* in place */
  {
    hb_t h = hb_new(dt, 12);
    int64_t sh[2] = {3, 4};
    lightos_tensor_t t = hb_tensor(&h, 0, 2, sh);
    hb_random(&h, -2, 2);
    double want[12];
    ref_softmax(&h, &t, 1, false, want);
    LK_CHECK_STATUS(lightos_op_softmax(g_q, &t, 1, false, &t), LIGHTOS_SUCCESS);
    if (hb_download(&h))
      for (int i = 0; i < 12; ++i)
        CHECK_F(dt, h.f[i], round_to(dt, want[i]), half ? 1 : 4, half ? 1 : 8, 1, "softmax in place %d", i);
    hb_free(&h);
  }
}

/* Gradient checks in f64 by central differences of L = sum(w * f(x)) for
 * a few elements of x (and of the other differentiable inputs). */
typedef struct fd_ctx {
  hb_t* hx;      /* the perturbed input buffer */
  hb_t* hy;      /* the output read back */
  const lightos_tensor_t* y;
  const double* w;
  int64_t ny;
} fd_ctx_t;

static double fd_loss(const fd_ctx_t* f) {
  double L = 0;
  for (int64_t i = 0; i < f->ny; ++i) L += f->w[i] * getf(f->hy, f->y, i);
  return L;
}

static void test_softmax_fd(void) {
  if (!g_fp64) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  const lightos_dtype_t dt = LIGHTOS_DTYPE_F64;
  int64_t sh[2] = {3, 6};
  for (int lg = 0; lg < 2; ++lg) {
    hb_t hx = hb_new(dt, 18), hy = hb_new(dt, 18), hw = hb_new(dt, 18), hgx = hb_new(dt, 18);
    lightos_tensor_t x = hb_tensor(&hx, 0, 2, sh), y = hb_tensor(&hy, 0, 2, sh),
                     w = hb_tensor(&hw, 0, 2, sh), gx = hb_tensor(&hgx, 0, 2, sh);
    hb_random(&hx, -2, 2);
    hb_random(&hw, -1, 1);
    fd_ctx_t f = {&hx, &hy, &y, hw.f, 18};
    OK(lightos_op_softmax(g_q, &x, 1, lg, &y));
    OK(lightos_op_softmax_backward(g_q, &y, &w, 1, lg, &gx));
    if (!hb_download(&hgx)) goto cleanup;
    for (int j = 0; j < 18; j += 5) {
      double x0 = hx.f[j], h = 1e-6, Lp, Lm;
      hx.f[j] = x0 + h; hb_upload(&hx);
      OK(lightos_op_softmax(g_q, &x, 1, lg, &y));
      if (!hb_download(&hy)) goto cleanup;
      Lp = fd_loss(&f);
      hx.f[j] = x0 - h; hb_upload(&hx);
      OK(lightos_op_softmax(g_q, &x, 1, lg, &y));
      if (!hb_download(&hy)) goto cleanup;
      Lm = fd_loss(&f);
      hx.f[j] = x0; hb_upload(&hx);
      double num = (Lp - Lm) / (2 * h);
      LK_CHECK_MSG(fabs(num - hgx.f[j]) < 1e-6 * fmax(1, fabs(num)), "softmax (log %d) grad[%d] [%s]: analytic %.12g numeric %.12g", lg, j, g_dev, hgx.f[j], num);
    }
  cleanup:
    hb_free(&hx); hb_free(&hy); hb_free(&hw); hb_free(&hgx);
  }
}

/* ---- layernorm / rmsnorm ------------------------------------------------------------------ */

typedef struct ncase {
  int ndim;
  int64_t shape[3];
  bool permuted, affine;
} ncase_t;

static const ncase_t k_ncases[] = {{2, {4, 33}, false, true}, {3, {2, 3, 17}, true, false},
                                   {2, {5, 1}, false, true}, {2, {3, 129}, true, true}};

static void test_norm_dtype_(lightos_dtype_t dt, bool rms) {
  if (skip_dtype(dt)) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  bool half = dt == LIGHTOS_DTYPE_F16 || dt == LIGHTOS_DTYPE_BF16;
  const double eps = 1e-5;
  for (size_t ci = 0; ci < sizeof k_ncases / sizeof k_ncases[0]; ++ci) {
    const ncase_t* c = &k_ncases[ci];
    int64_t n = 1, D = c->shape[c->ndim - 1], rows;
    for (int i = 0; i < c->ndim; ++i) n *= c->shape[i];
    rows = n / D;
    scase_t sc = {c->ndim, {c->shape[0], c->shape[1], c->shape[2]}, 0, c->permuted};
    hb_t hx = hb_new(dt, n), hy = hb_new(dt, n), hw = hb_new(dt, D), hb_ = hb_new(dt, D),
         hm = hb_new(LIGHTOS_DTYPE_F32, rows), hr = hb_new(LIGHTOS_DTYPE_F32, rows),
         hg = hb_new(dt, n), hgx = hb_new(dt, n), hgw = hb_new(dt, D), hgb = hb_new(dt, D);
    lightos_tensor_t x, y, g, gx;
    scase_view(&sc, &hx, &x);
    scase_view(&sc, &hg, &g);
    y = hb_tensor(&hy, 0, (uint32_t)c->ndim, c->shape);
    gx = hb_tensor(&hgx, 0, (uint32_t)c->ndim, c->shape);
    int64_t dsh[1] = {D};
    lightos_tensor_t w = hb_tensor(&hw, 0, 1, dsh), b = hb_tensor(&hb_, 0, 1, dsh),
                     gw = hb_tensor(&hgw, 0, 1, dsh), gb = hb_tensor(&hgb, 0, 1, dsh);
    lightos_tensor_t m = hb_tensor(&hm, 0, (uint32_t)c->ndim - 1, c->shape),
                     r = hb_tensor(&hr, 0, (uint32_t)c->ndim - 1, c->shape);
    const lightos_tensor_t* pw = c->affine ? &w : NULL;
    const lightos_tensor_t* pb = c->affine ? &b : NULL;
    hb_random(&hx, -3, 3);
    hb_random(&hw, 0.5, 1.5);
    hb_random(&hb_, -1, 1);
    hb_random(&hg, -1, 1);
    hb_poison(&hy);
    hb_poison(&hm);
    hb_poison(&hr);
    hb_poison(&hgx);
    hb_poison(&hgw);
    hb_poison(&hgb);
    if (rms) OK(lightos_op_rmsnorm(g_q, &x, pw, eps, &y, &r));
    else OK(lightos_op_layernorm(g_q, &x, pw, pb, eps, &y, &m, &r));
    if (!hb_download(&hy) || !hb_download(&hm) || !hb_download(&hr)) goto cleanup;
    for (int64_t row = 0; row < rows; ++row) {
      double mu = 0, var = 0, ms = 0;
      for (int64_t k = 0; k < D; ++k) {
        double v = getf(&hx, &x, row * D + k);
        mu += v;
        ms += v * v;
      }
      mu /= (double)D;
      for (int64_t k = 0; k < D; ++k) {
        double d = getf(&hx, &x, row * D + k) - mu;
        var += d * d;
      }
      var /= (double)D;
      double rs = rms ? 1 / sqrt(ms / (double)D + eps) : 1 / sqrt(var + eps);
      if (!rms) CHECK_F(LIGHTOS_DTYPE_F32, hm.f[row], (double)(float)mu, 2, 64, 3, "layernorm mean row %lld", (long long)row);
      CHECK_F(LIGHTOS_DTYPE_F32, hr.f[row], (double)(float)rs, 8, 0, 1, "%s rstd row %lld", rms ? "rmsnorm" : "layernorm", (long long)row);
      for (int64_t k = 0; k < D; ++k) {
        double v = getf(&hx, &x, row * D + k);
        double xh = rms ? v * rs : (v - mu) * rs;
        double want = xh * (c->affine ? hw.f[k] : 1) + (c->affine && !rms ? hb_.f[k] : 0);
        CHECK_F(dt, hy.f[row * D + k], round_to(dt, want), half ? 1 : 4, half ? 2 : 16 + (double)D,
                (fabs(xh) + 1) * 2, "%s case %zu element (%lld, %lld)", rms ? "rmsnorm" : "layernorm", ci, (long long)row, (long long)k);
      }
    }
    /* backward, from the device's statistics */
    if (rms) OK(lightos_op_rmsnorm_backward(g_q, &x, pw, &r, &g, &gx, c->affine ? &gw : NULL));
    else OK(lightos_op_layernorm_backward(g_q, &x, pw, &m, &r, &g, &gx, c->affine ? &gw : NULL, c->affine ? &gb : NULL));
    if (!hb_download(&hgx) || !hb_download(&hgw) || !hb_download(&hgb)) goto cleanup;
    {
      double* sw = calloc((size_t)D, sizeof(double));
      double* sb = calloc((size_t)D, sizeof(double));
      double* swa = calloc((size_t)D, sizeof(double));
      for (int64_t row = 0; row < rows; ++row) {
        double mu = rms ? 0 : hm.f[row], rs = hr.f[row], s1 = 0, s2 = 0, a1 = 0, a2 = 0;
        for (int64_t k = 0; k < D; ++k) {
          double v = getf(&hx, &x, row * D + k), gy = getf(&hg, &g, row * D + k);
          double gg = gy * (c->affine ? hw.f[k] : 1), xh = (v - mu) * rs;
          s1 += gg;
          s2 += rms ? gg * v : gg * xh;
          a1 += fabs(gg);
          a2 += rms ? fabs(gg * v) : fabs(gg * xh);
          sw[k] += gy * xh;
          swa[k] += fabs(gy * xh) + fabs(gy);
          sb[k] += gy;
        }
        for (int64_t k = 0; k < D; ++k) {
          double v = getf(&hx, &x, row * D + k), gy = getf(&hg, &g, row * D + k);
          double gg = gy * (c->affine ? hw.f[k] : 1), xh = (v - mu) * rs, want, scale;
          if (rms) {
            want = rs * gg - v * rs * rs * rs * s2 / (double)D;
            scale = rs * (fabs(gg) + fabs(v) * rs * rs * a2 / (double)D);
          } else {
            want = rs * (gg - s1 / (double)D - xh * s2 / (double)D);
            scale = rs * (fabs(gg) + a1 / (double)D + fabs(xh) * a2 / (double)D);
          }
          CHECK_F(dt, hgx.f[row * D + k], round_to(dt, want), half ? 1 : 4, half ? 4 : 8 + 2 * (double)D,
                  scale + 1e-30, "%s_backward grad_x case %zu (%lld, %lld)", rms ? "rmsnorm" : "layernorm", ci, (long long)row, (long long)k);
        }
      }
      for (int64_t k = 0; c->affine && k < D; ++k) {
        CHECK_F(dt, hgw.f[k], round_to(dt, sw[k]), half ? 1 : 4, half ? 2 : 8 + 2 * (double)rows, swa[k], "grad_weight case %zu [%lld]", ci, (long long)k);
        if (!rms) CHECK_F(dt, hgb.f[k], round_to(dt, sb[k]), half ? 1 : 4, half ? 2 : 8 + 2 * (double)rows, swa[k], "grad_bias case %zu [%lld]", ci, (long long)k);
      }
      free(sw);
      free(sb);
      free(swa);
    }
  cleanup:
    hb_free(&hx); hb_free(&hy); hb_free(&hw); hb_free(&hb_); hb_free(&hm); hb_free(&hr);
    hb_free(&hg); hb_free(&hgx); hb_free(&hgw); hb_free(&hgb);
  }
}
static void test_layernorm_dtype(lightos_dtype_t dt) { test_norm_dtype_(dt, false); }
static void test_rmsnorm_dtype(lightos_dtype_t dt) { test_norm_dtype_(dt, true); }

/* d/dx, d/dw, d/db by central differences in f64: L = sum(u * norm(x)). */
static void test_norm_fd(void) {
  if (!g_fp64) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  const lightos_dtype_t dt = LIGHTOS_DTYPE_F64;
  int64_t sh[2] = {3, 8}, dsh[1] = {8};
  for (int rms = 0; rms < 2; ++rms) {
    hb_t hx = hb_new(dt, 24), hy = hb_new(dt, 24), hu = hb_new(dt, 24), hw = hb_new(dt, 8),
         hb_ = hb_new(dt, 8), hm = hb_new(LIGHTOS_DTYPE_F32, 3), hr = hb_new(LIGHTOS_DTYPE_F32, 3),
         hgx = hb_new(dt, 24), hgw = hb_new(dt, 8), hgb = hb_new(dt, 8);
    lightos_tensor_t x = hb_tensor(&hx, 0, 2, sh), y = hb_tensor(&hy, 0, 2, sh),
                     u = hb_tensor(&hu, 0, 2, sh), w = hb_tensor(&hw, 0, 1, dsh),
                     b = hb_tensor(&hb_, 0, 1, dsh), m = hb_tensor(&hm, 0, 1, sh),
                     r = hb_tensor(&hr, 0, 1, sh), gx = hb_tensor(&hgx, 0, 2, sh),
                     gw = hb_tensor(&hgw, 0, 1, dsh), gb = hb_tensor(&hgb, 0, 1, dsh);
    hb_random(&hx, -2, 2);
    hb_random(&hu, -1, 1);
    hb_random(&hw, 0.5, 1.5);
    hb_random(&hb_, -1, 1);
    fd_ctx_t f = {&hx, &hy, &y, hu.f, 24};
    hb_t* params[3] = {&hx, &hw, &hb_};
    hb_t* grads[3] = {&hgx, &hgw, &hgb};
#define NORM_FWD() (rms ? lightos_op_rmsnorm(g_q, &x, &w, 1e-5, &y, &r) \
                        : lightos_op_layernorm(g_q, &x, &w, &b, 1e-5, &y, &m, &r))
    OK(NORM_FWD());
    if (rms) OK(lightos_op_rmsnorm_backward(g_q, &x, &w, &r, &u, &gx, &gw));
    else OK(lightos_op_layernorm_backward(g_q, &x, &w, &m, &r, &u, &gx, &gw, &gb));
    if (!hb_download(&hgx) || !hb_download(&hgw) || !hb_download(&hgb)) goto cleanup;
    for (int pi = 0; pi < (rms ? 2 : 3); ++pi) {
      hb_t* hp = params[pi];
      for (int64_t j = 0; j < hp->n; j += (pi == 0 ? 5 : 3)) {
        double p0 = hp->f[j], h = 1e-6, Lp, Lm;
        hp->f[j] = p0 + h; hb_upload(hp);
        OK(NORM_FWD());
        if (!hb_download(&hy)) goto cleanup;
        Lp = fd_loss(&f);
        hp->f[j] = p0 - h; hb_upload(hp);
        OK(NORM_FWD());
        if (!hb_download(&hy)) goto cleanup;
        Lm = fd_loss(&f);
        hp->f[j] = p0; hb_upload(hp);
        double num = (Lp - Lm) / (2 * h), an = grads[pi]->f[j];
        LK_CHECK_MSG(fabs(num - an) < 1e-5 * fmax(1, fabs(num)), "%s grad of param %d [%lld] [%s]: analytic %.12g numeric %.12g", rms ? "rmsnorm" : "layernorm", pi, (long long)j, g_dev, an, num);
      }
    }
#undef NORM_FWD
  cleanup:
    hb_free(&hx); hb_free(&hy); hb_free(&hu); hb_free(&hw); hb_free(&hb_); hb_free(&hm);
    hb_free(&hr); hb_free(&hgx); hb_free(&hgw); hb_free(&hgb);
  }
}

/* ---- cross-entropy --------------------------------------------------------------------- */

static void test_cross_entropy_dtype(lightos_dtype_t dt) {
  if (skip_dtype(dt)) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  bool half = dt == LIGHTOS_DTYPE_F16 || dt == LIGHTOS_DTYPE_BF16;
  static const int64_t cases[][3] = {{5, 7, 0}, {1, 129, 0}, {3, 4, 1}, {0, 5, 0}, {70, 3, 0}};
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ++ci) {
    int64_t N = cases[ci][0], C = cases[ci][1];
    bool bad_target = cases[ci][2] != 0;
    hb_t hx = hb_new(dt, N * C), ht = hb_new(LIGHTOS_DTYPE_I64, N), hl = hb_new(dt, 1),
         hgl = hb_new(dt, 1), hg = hb_new(dt, N * C);
    int64_t rev[2] = {C, N}, sh[2] = {N, C}, tsh[1] = {N};
    uint32_t perm[2] = {1, 0};
    lightos_tensor_t xb = hb_tensor(&hx, 0, 2, rev), x, t = hb_tensor(&ht, 0, 1, tsh),
                     loss = hb_tensor(&hl, 0, 0, NULL), gl = hb_tensor(&hgl, 0, 0, NULL),
                     g = hb_tensor(&hg, 0, 2, sh);
    lightos_tensor_permute(&xb, perm, &x); /* [N, C], column-major */
    hb_random(&hx, -4, 4);
    for (int64_t i = 0; i < N; ++i) ht.i[i] = rnd_int(0, C - 1);
    if (bad_target) ht.i[1] = C; /* out of range: NaN */
    hb_upload(&ht);
    hb_random(&hgl, 0.5, 2);
    hb_poison(&hl);
    hb_poison(&hg);
    OK(lightos_op_cross_entropy(g_q, &x, &t, &loss));
    OK(lightos_op_cross_entropy_backward(g_q, &x, &t, &gl, &g));
    if (!hb_download(&hl) || !hb_download(&hg)) goto cleanup;
    {
      double L = 0, Labs = 0;
      for (int64_t i = 0; i < N; ++i) {
        double m = -INFINITY, s = 0;
        for (int64_t k = 0; k < C; ++k) m = fmax(m, getf(&hx, &x, i * C + k));
        for (int64_t k = 0; k < C; ++k) s += exp(getf(&hx, &x, i * C + k) - m);
        int64_t tg = ht.i[i];
        double li = (tg >= 0 && tg < C) ? log(s) + m - getf(&hx, &x, i * C + tg) : NAN;
        L += li;
        Labs += fabs(li) + fabs(m) + 1;
        for (int64_t k = 0; k < C; ++k) {
          double p = exp(getf(&hx, &x, i * C + k) - m) / s;
          double want = (tg >= 0 && tg < C) ? (p - (k == tg)) * hgl.f[0] / (double)N : NAN;
          CHECK_F(dt, hg.f[i * C + k], round_to(dt, want), half ? 1 : 4, half ? 2 : 8 + (double)C,
                  hgl.f[0] / (double)N, "cross_entropy_backward case %zu (%lld, %lld)", ci, (long long)i, (long long)k);
        }
      }
      double want = N ? L / (double)N : NAN;
      CHECK_F(dt, hl.f[0], round_to(dt, want), half ? 1 : 4, half ? 2 : 8 + (double)(C + N),
              N ? Labs / (double)N : 1, "cross_entropy case %zu (N %lld, C %lld)", ci, (long long)N, (long long)C);
    }
  cleanup:
    hb_free(&hx); hb_free(&ht); hb_free(&hl); hb_free(&hgl); hb_free(&hg);
  }
}

static void test_cross_entropy_fd(void) {
  if (!g_fp64) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  const lightos_dtype_t dt = LIGHTOS_DTYPE_F64;
  int64_t sh[2] = {4, 5}, tsh[1] = {4};
  hb_t hx = hb_new(dt, 20), ht = hb_new(LIGHTOS_DTYPE_I64, 4), hl = hb_new(dt, 1),
       hgl = hb_new(dt, 1), hg = hb_new(dt, 20);
  lightos_tensor_t x = hb_tensor(&hx, 0, 2, sh), t = hb_tensor(&ht, 0, 1, tsh),
                   loss = hb_tensor(&hl, 0, 0, NULL), gl = hb_tensor(&hgl, 0, 0, NULL),
                   g = hb_tensor(&hg, 0, 2, sh);
  hb_random(&hx, -2, 2);
  for (int i = 0; i < 4; ++i) ht.i[i] = rnd_int(0, 4);
  hb_upload(&ht);
  hgl.f[0] = 1.7;
  hb_upload(&hgl);
  OK(lightos_op_cross_entropy_backward(g_q, &x, &t, &gl, &g));
  if (!hb_download(&hg)) goto cleanup;
  for (int j = 0; j < 20; j += 3) {
    double x0 = hx.f[j], h = 1e-6, Lp, Lm;
    hx.f[j] = x0 + h; hb_upload(&hx);
    OK(lightos_op_cross_entropy(g_q, &x, &t, &loss));
    if (!hb_download(&hl)) goto cleanup;
    Lp = hl.f[0];
    hx.f[j] = x0 - h; hb_upload(&hx);
    OK(lightos_op_cross_entropy(g_q, &x, &t, &loss));
    if (!hb_download(&hl)) goto cleanup;
    Lm = hl.f[0];
    hx.f[j] = x0; hb_upload(&hx);
    double num = 1.7 * (Lp - Lm) / (2 * h);
    LK_CHECK_MSG(fabs(num - hg.f[j]) < 1e-6 * fmax(1, fabs(num)), "cross_entropy grad[%d] [%s]: analytic %.12g numeric %.12g", j, g_dev, hg.f[j], num);
  }
cleanup:
  hb_free(&hx); hb_free(&ht); hb_free(&hl); hb_free(&hgl); hb_free(&hg);
}

/* ---- embedding ------------------------------------------------------------------------- */

static void test_embedding_dtype(lightos_dtype_t dt) {
  if (skip_dtype(dt)) {
    lk_test_skip("no fp64 on %s", g_dev);
    return;
  }
  const int64_t V = 10, D = 7;
  bool half = dt == LIGHTOS_DTYPE_F16 || dt == LIGHTOS_DTYPE_BF16;
  for (int i32 = 0; i32 < 2; ++i32) {
    lightos_dtype_t idt = i32 ? LIGHTOS_DTYPE_I32 : LIGHTOS_DTYPE_I64;
    int64_t N = 12;
    hb_t htab = hb_new(dt, V * D), hidx = hb_new(idt, N), ho = hb_new(dt, N * D),
         hg = hb_new(dt, N * D), hgt = hb_new(dt, V * D);
    int64_t rev[2] = {D, V}, ish[2] = {3, 4}, osh[3] = {3, 4, D};
    uint32_t perm[2] = {1, 0};
    lightos_tensor_t tb = hb_tensor(&htab, 0, 2, rev), table, idx = hb_tensor(&hidx, 0, 2, ish),
                     out = hb_tensor(&ho, 0, 3, osh), g = hb_tensor(&hg, 0, 3, osh), gtb, gt;
    lightos_tensor_permute(&tb, perm, &table); /* [V, D] column-major */
    gtb = hb_tensor(&hgt, 0, 2, rev);
    lightos_tensor_permute(&gtb, perm, &gt);
    hb_random(&htab, -3, 3);
    for (int64_t i = 0; i < N; ++i) hidx.i[i] = rnd_int(0, 3); /* repeats */
    hidx.i[5] = 9;
    hidx.i[7] = -1; /* out of range */
    hidx.i[9] = V;
    hb_upload(&hidx);
    hb_poison(&ho);
    OK(lightos_op_embedding(g_q, &table, &idx, &out));
    if (!hb_download(&ho)) goto cleanup;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < D; ++j) {
        int64_t v = hidx.i[i];
        bool ok = v >= 0 && v < V;
        if (is_float(dt))
          CHECK_F(dt, ho.f[i * D + j], ok ? getf(&htab, &table, v * D + j) : NAN, 0, 0, 1, "embedding (%lld, %lld)", (long long)i, (long long)j);
        else
          CHECK_I(ho.i[i * D + j], ok ? geti(&htab, &table, v * D + j) : 0, "embedding %s (%lld, %lld)", dname(dt), (long long)i, (long long)j);
      }
    if (!is_float(dt)) {
      EXPECT_FAIL(lightos_op_embedding_backward(g_q, &idx, &out, &table), LIGHTOS_INVALID_ARGUMENT, "grad_table");
      goto cleanup;
    }
    hb_random(&hg, -1, 1);
    hb_poison(&hgt);
    OK(lightos_op_embedding_backward(g_q, &idx, &g, &gt));
    if (!hb_download(&hgt)) goto cleanup;
    for (int64_t v = 0; v < V; ++v)
      for (int64_t j = 0; j < D; ++j) {
        double s = 0, sa = 0;
        for (int64_t i = 0; i < N; ++i)
          if (hidx.i[i] == v) {
            s += hg.f[i * D + j];
            sa += fabs(hg.f[i * D + j]);
          }
        CHECK_F(dt, getf(&hgt, &gt, v * D + j), round_to(dt, s), half ? 1 : 0, half ? 0 : 2 * (double)N,
                sa, "embedding_backward (%lld, %lld)", (long long)v, (long long)j);
      }
  cleanup:
    hb_free(&htab); hb_free(&hidx); hb_free(&ho); hb_free(&hg); hb_free(&hgt);
  }
}

/* ---- optimisers ------------------------------------------------------------------------ */

static void test_optim(void) {
  const int64_t n = 37;
  int64_t sh[1] = {n};
  hb_t hp = hb_new(LIGHTOS_DTYPE_F32, n), hg = hb_new(LIGHTOS_DTYPE_F32, n),
       hv = hb_new(LIGHTOS_DTYPE_F32, n), hm = hb_new(LIGHTOS_DTYPE_F32, n);
  lightos_tensor_t p = hb_tensor(&hp, 0, 1, sh), g = hb_tensor(&hg, 0, 1, sh),
                   v = hb_tensor(&hv, 0, 1, sh), m = hb_tensor(&hm, 0, 1, sh);
  float P[37], G[37], Vv[37], M[37];
  /* SGD with momentum and weight decay, two steps */
  hb_random(&hp, -1, 1);
  hb_random(&hg, -1, 1);
  hb_random(&hv, -0.1, 0.1);
  for (int i = 0; i < n; ++i) { P[i] = (float)hp.f[i]; G[i] = (float)hg.f[i]; Vv[i] = (float)hv.f[i]; }
  for (int step = 0; step < 2; ++step) {
    OK(lightos_op_sgd_step(g_q, &p, &g, &v, 0.1, 0.9, 0.01));
    for (int i = 0; i < n; ++i) {
      float gi = G[i] + 0.01f * P[i];
      Vv[i] = 0.9f * Vv[i] + gi;
      P[i] = P[i] - 0.1f * Vv[i];
    }
  }
  if (!hb_download(&hp) || !hb_download(&hv)) goto cleanup;
  for (int i = 0; i < n; ++i) {
    CHECK_F(LIGHTOS_DTYPE_F32, hp.f[i], P[i], 0, 0, 1, "sgd param %d", i);
    CHECK_F(LIGHTOS_DTYPE_F32, hv.f[i], Vv[i], 0, 0, 1, "sgd velocity %d", i);
  }
  /* SGD without velocity */
  OK(lightos_op_sgd_step(g_q, &p, &g, NULL, 0.5, 0.0, 0.0));
  for (int i = 0; i < n; ++i) P[i] = P[i] - 0.5f * G[i];
  if (!hb_download(&hp)) goto cleanup;
  for (int i = 0; i < n; ++i) CHECK_F(LIGHTOS_DTYPE_F32, hp.f[i], P[i], 0, 0, 1, "plain sgd param %d", i);
  EXPECT_FAIL(lightos_op_sgd_step(g_q, &p, &g, NULL, 0.5, 0.9, 0.0), LIGHTOS_INVALID_ARGUMENT, "velocity");
  /* AdamW, steps 1..3 */
  hb_random(&hm, -0.1, 0.1);
  hb_random(&hv, 0.0, 0.1);
  for (int i = 0; i < n; ++i) { M[i] = (float)hm.f[i]; Vv[i] = (float)hv.f[i]; }
  for (int step = 1; step <= 3; ++step) {
    double lr = 1e-2, b1 = 0.9, b2 = 0.999, e = 1e-8, wd = 0.1;
    OK(lightos_op_adamw_step(g_q, &p, &g, &m, &v, lr, b1, b2, e, wd, step));
    float bc1 = (float)(1.0 - pow(b1, step)), bc2 = (float)(1.0 - pow(b2, step));
    float decay = (float)(1.0 - lr * wd);
    for (int i = 0; i < n; ++i) {
      M[i] = 0.9f * M[i] + (float)(1.0 - b1) * G[i];
      Vv[i] = 0.999f * Vv[i] + (float)(1.0 - b2) * (G[i] * G[i]);
      P[i] = P[i] * decay - 0.01f * ((M[i] / bc1) / (sqrtf(Vv[i] / bc2) + 1e-8f));
    }
  }
  if (!hb_download(&hp) || !hb_download(&hm) || !hb_download(&hv)) goto cleanup;
  for (int i = 0; i < n; ++i) {
    CHECK_F(LIGHTOS_DTYPE_F32, hp.f[i], P[i], 0, 0, 1, "adamw param %d", i);
    CHECK_F(LIGHTOS_DTYPE_F32, hm.f[i], M[i], 0, 0, 1, "adamw m %d", i);
    CHECK_F(LIGHTOS_DTYPE_F32, hv.f[i], Vv[i], 0, 0, 1, "adamw v %d", i);
  }
  EXPECT_FAIL(lightos_op_adamw_step(g_q, &p, &g, &m, &v, 1e-3, 0.9, 0.999, 1e-8, 0, 0), LIGHTOS_INVALID_ARGUMENT, "step");
  EXPECT_FAIL(lightos_op_adamw_step(g_q, &p, &g, &p, &v, 1e-3, 0.9, 0.999, 1e-8, 0, 1), LIGHTOS_INVALID_ARGUMENT, "overlaps");
cleanup:
  hb_free(&hp); hb_free(&hg); hb_free(&hv); hb_free(&hm);
}

/* ---- bad inputs ---------------------------------------------------------------------------- */

static void test_bad_inputs(void) {
  int64_t s34[2] = {3, 4}, s43[2] = {4, 3}, s3[1] = {3}, s5[1] = {5};
  hb_t ha = hb_new(LIGHTOS_DTYPE_F32, 12), hb2 = hb_new(LIGHTOS_DTYPE_F32, 12),
       hi = hb_new(LIGHTOS_DTYPE_I32, 12), hl = hb_new(LIGHTOS_DTYPE_I64, 12);
  lightos_tensor_t a = hb_tensor(&ha, 0, 2, s34), b = hb_tensor(&hb2, 0, 2, s34),
                   bt = hb_tensor(&hb2, 0, 2, s43), ai = hb_tensor(&hi, 0, 2, s34),
                   v3 = hb_tensor(&ha, 0, 1, s3), v5 = hb_tensor(&hb2, 0, 1, s5),
                   l3 = hb_tensor(&hl, 0, 1, s3), at;
  uint32_t perm[2] = {1, 0};
  lightos_tensor_permute(&a, perm, &at);
  /* shapes and dtypes */
  EXPECT_FAIL(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &a, &bt, &b), LIGHTOS_INVALID_ARGUMENT, "'b' (dim 0");
  EXPECT_FAIL(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &bt, &a, &b), LIGHTOS_INVALID_ARGUMENT, "'a' (dim 0");
  EXPECT_FAIL(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &a, &v5, &b), LIGHTOS_INVALID_ARGUMENT, "'b'");
  EXPECT_FAIL(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &a, &ai, &b), LIGHTOS_INVALID_ARGUMENT, "'b' is i32");
  EXPECT_FAIL(lightos_op_binary(g_q, (lightos_binary_op_t)99, &a, &a, &b), LIGHTOS_INVALID_ARGUMENT, "op 99");
  EXPECT_FAIL(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, NULL, &a, &b), LIGHTOS_INVALID_ARGUMENT, "'a'");
  EXPECT_FAIL(lightos_op_unary(g_q, LIGHTOS_UNARY_EXP, &ai, &ai), LIGHTOS_INVALID_ARGUMENT, "exp");
  EXPECT_FAIL(lightos_op_unary(g_q, LIGHTOS_UNARY_EXP, &a, &bt), LIGHTOS_INVALID_ARGUMENT, "'x'");
  EXPECT_FAIL(lightos_op_cast(g_q, &a, &v3), LIGHTOS_INVALID_ARGUMENT, "'x'");
  EXPECT_FAIL(lightos_op_contiguous(g_q, &a, &ai), LIGHTOS_INVALID_ARGUMENT, "'x' is f32");
  /* out aliasing an input with another layout; overlapping outputs */
  EXPECT_FAIL(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &at, &bt, &at), LIGHTOS_SUCCESS, NULL);
  EXPECT_FAIL(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &a, &b, &b), LIGHTOS_SUCCESS, NULL);
  {
    lightos_tensor_t a2 = hb_tensor(&ha, 0, 2, s43);
    EXPECT_FAIL(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &at, &bt, &a2), LIGHTOS_INVALID_ARGUMENT, "overlaps input 'a'");
    EXPECT_FAIL(lightos_op_unary(g_q, LIGHTOS_UNARY_NEG, &at, &a2), LIGHTOS_INVALID_ARGUMENT, "overlaps input 'x'");
    lightos_tensor_t e;
    int64_t one[2] = {3, 1};
    lightos_tensor_t c = hb_tensor(&ha, 0, 2, one);
    lightos_tensor_expand(&c, 2, s34, &e);
    EXPECT_FAIL(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &b, &b, &e), LIGHTOS_INVALID_ARGUMENT, "overlapping elements");
  }
  /* reductions */
  EXPECT_FAIL(lightos_op_reduce(g_q, LIGHTOS_REDUCE_SUM, &a, 4, &v3), LIGHTOS_INVALID_ARGUMENT, "axes_mask");
  EXPECT_FAIL(lightos_op_reduce(g_q, LIGHTOS_REDUCE_SUM, &a, 2, &v5), LIGHTOS_INVALID_ARGUMENT, "'out'");
  EXPECT_FAIL(lightos_op_reduce(g_q, LIGHTOS_REDUCE_SUM, &a, 2, &l3), LIGHTOS_INVALID_ARGUMENT, "'out'");
  EXPECT_FAIL(lightos_op_argmax(g_q, &a, 2, &l3), LIGHTOS_INVALID_ARGUMENT, "dim 2");
  EXPECT_FAIL(lightos_op_argmax(g_q, &a, 1, &v3), LIGHTOS_INVALID_ARGUMENT, "'out'");
  EXPECT_FAIL(lightos_op_softmax(g_q, &a, 2, false, &b), LIGHTOS_INVALID_ARGUMENT, "dim 2");
  EXPECT_FAIL(lightos_op_softmax(g_q, &ai, 1, false, &ai), LIGHTOS_INVALID_ARGUMENT, "'x'");
  EXPECT_FAIL(lightos_op_layernorm(g_q, &a, &v3, NULL, 1e-5, &b, NULL, NULL), LIGHTOS_INVALID_ARGUMENT, "'weight'");
  EXPECT_FAIL(lightos_op_layernorm(g_q, &a, NULL, NULL, -1, &b, NULL, NULL), LIGHTOS_INVALID_ARGUMENT, "eps");
  EXPECT_FAIL(lightos_op_rmsnorm(g_q, &a, NULL, 1e-5, &b, &v5), LIGHTOS_INVALID_ARGUMENT, "'rstd'");
  {
    lightos_tensor_t sc = hb_tensor(&hb2, 0, 0, NULL), t3i = hb_tensor(&hi, 0, 1, s3);
    EXPECT_FAIL(lightos_op_cross_entropy(g_q, &a, &t3i, &sc), LIGHTOS_INVALID_ARGUMENT, "'targets'");
    EXPECT_FAIL(lightos_op_cross_entropy(g_q, &a, &l3, &v3), LIGHTOS_INVALID_ARGUMENT, "'loss'");
    EXPECT_FAIL(lightos_op_embedding(g_q, &a, &v3, &b), LIGHTOS_INVALID_ARGUMENT, "'indices'");
    EXPECT_FAIL(lightos_op_embedding(g_q, &a, &l3, &v5), LIGHTOS_INVALID_ARGUMENT, "'out'");
  }
  /* a tensor of another context (same device) */
  {
    lightos_device_t dev;
    lightos_context_t c2;
    lightos_buffer_t buf2;
    lightos_context_get_device(g_ctx, &dev);
    if (lightos_context_create_for_device(dev, 0, &c2) == LIGHTOS_SUCCESS) {
      if (lightos_buffer_alloc(c2, 48, 0, &buf2) == LIGHTOS_SUCCESS) {
        lightos_tensor_t o;
        lightos_tensor_make(buf2, 0, LIGHTOS_DTYPE_F32, 2, s34, &o);
        EXPECT_FAIL(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &a, &o, &b), LIGHTOS_INVALID_ARGUMENT, "'b' belongs to another context");
        EXPECT_FAIL(lightos_op_softmax(g_q, &a, 1, false, &o), LIGHTOS_INVALID_ARGUMENT, "'out' belongs to another context");
        lightos_buffer_release(buf2);
        /* a released buffer */
        EXPECT_FAIL(lightos_op_fill(g_q, &o, 1.0), LIGHTOS_INVALID_ARGUMENT, "released");
      }
      lightos_context_release(c2);
    }
  }
  hb_free(&ha); hb_free(&hb2); hb_free(&hi); hb_free(&hl);
}

/* ---- deterministic contexts ---------------------------------------------------------------- */

/* The same f32 ops in a deterministic context on every device; the bytes
 * must agree across devices (and with the reference within tolerance). */
#define DET_N 520
static float g_det[4][6][DET_N];
static int g_det_devices;

static void test_deterministic(void) {
  lightos_device_t dev;
  lightos_context_t dc;
  lightos_queue_t dq;
  lightos_context_get_device(g_ctx, &dev);
  if (lightos_context_create_for_device(dev, LIGHTOS_CONTEXT_DETERMINISTIC, &dc) != LIGHTOS_SUCCESS) {
    lk_test_fail(__FILE__, __LINE__, "deterministic context on %s: %s", g_dev, lightos_last_error()->message);
    return;
  }
  lightos_context_default_queue(dc, &dq);
  lightos_context_t saved = g_ctx;
  g_ctx = dc; /* hb_new allocates in g_ctx */
  int slot = g_det_devices < 4 ? g_det_devices++ : 3;
  int64_t sh[1] = {DET_N}, sh2[2] = {8, DET_N / 8}, big[2] = {1, 1024};
  hb_t hx = hb_new(LIGHTOS_DTYPE_F32, DET_N), hy = hb_new(LIGHTOS_DTYPE_F32, DET_N),
       hbig = hb_new(LIGHTOS_DTYPE_F32, 1024), hs = hb_new(LIGHTOS_DTYPE_F32, 1);
  lightos_tensor_t x = hb_tensor(&hx, 0, 1, sh), y = hb_tensor(&hy, 0, 1, sh),
                   x2 = hb_tensor(&hx, 0, 2, sh2), y2 = hb_tensor(&hy, 0, 2, sh2),
                   xb = hb_tensor(&hbig, 0, 2, big), s1 = hb_tensor(&hs, 0, 0, NULL);
  uint64_t saved_rng = g_rng;
  g_rng = 0xfeedbeefull; /* the same inputs on every device */
  hb_random(&hx, -6, 6);
  hb_random(&hbig, -1, 1);
  g_rng = saved_rng;
  static const int ops[4] = {LIGHTOS_UNARY_EXP, LIGHTOS_UNARY_TANH, LIGHTOS_UNARY_GELU_ERF, LIGHTOS_UNARY_SILU};
  for (int k = 0; k < 4; ++k) {
    OK(lightos_op_unary(dq, (lightos_unary_op_t)ops[k], &x, &y));
    if (!hb_download(&hy)) goto cleanup;
    for (int i = 0; i < DET_N; ++i) {
      g_det[slot][k][i] = (float)hy.f[i];
      CHECK_F(LIGHTOS_DTYPE_F32, hy.f[i], (double)(float)ref_unary(ops[k], hx.f[i]), 4, 8, 1, "deterministic unary %d element %d", ops[k], i);
    }
  }
  OK(lightos_op_softmax(dq, &x2, 1, false, &y2));
  if (!hb_download(&hy)) goto cleanup;
  for (int i = 0; i < DET_N; ++i) g_det[slot][4][i] = (float)hy.f[i];
  OK(lightos_op_reduce(dq, LIGHTOS_REDUCE_SUM, &xb, 3, &s1));
  OK(lightos_op_random(dq, LIGHTOS_RNG_NORMAL, 42, 0, 0, 1, &y));
  if (!hb_download(&hs) || !hb_download(&hy)) goto cleanup;
  for (int i = 0; i < DET_N; ++i) g_det[slot][5][i] = i == 0 ? (float)hs.f[0] : (float)hy.f[i];
  if (slot > 0)
    for (int k = 0; k < 6; ++k)
      LK_CHECK_MSG(memcmp(g_det[0][k], g_det[slot][k], sizeof g_det[0][k]) == 0,
                   "deterministic results of op group %d differ between the first device and %s", k, g_dev);
cleanup:
  hb_free(&hx); hb_free(&hy); hb_free(&hbig); hb_free(&hs);
  g_ctx = saved;
  lightos_context_release(dc);
}

/* ---- the program cache (white-box) ------------------------------------------------------ */

static const char k_good_src[] = "__kernel void k_one(__global float* x) { x[0] = 1.0f; }\n"
                                 "__kernel void k_two(__global float* x) { x[0] = 2.0f; }\n";
static const char k_bad_src[] = "__kernel void k_bad(__global float* x) { x[0] = undefined_name; }\n";

static void test_program_cache(void) {
  lk_context_t* ctx;
  lk_object_t* o;
  LK_REQUIRE(lk_handle_resolve(g_ctx, LK_OBJ_CONTEXT, "context", &o) == LIGHTOS_SUCCESS);
  ctx = (lk_context_t*)o;
  const char* parts[1] = {k_good_src};
  lightos_kernel_t k1 = NULL, k2 = NULL, k3 = NULL;
  LK_CHECK_STATUS(lk_ops_kernel(ctx, parts, 1, "-DX=1", "k_one", &k1), LIGHTOS_SUCCESS);
  lightos_program_t p1 = NULL;
  /* the second kernel of the same (parts, options) comes from the cached program */
  LK_CHECK_STATUS(lk_ops_kernel(ctx, parts, 1, "-DX=1", "k_two", &k2), LIGHTOS_SUCCESS);
  if (k1 && k2) {
    lk_kernel_t *a, *b;
    lk_handle_resolve(k1, LK_OBJ_KERNEL, "k1", &o);
    a = (lk_kernel_t*)o;
    lk_handle_resolve(k2, LK_OBJ_KERNEL, "k2", &o);
    b = (lk_kernel_t*)o;
    LK_CHECK(a->program == b->program);
    p1 = LK_HANDLE(a->program);
  }
  /* other options: another program */
  LK_CHECK_STATUS(lk_ops_kernel(ctx, parts, 1, "-DX=2", "k_one", &k3), LIGHTOS_SUCCESS);
  if (k3 && p1) {
    lk_handle_resolve(k3, LK_OBJ_KERNEL, "k3", &o);
    LK_CHECK(LK_HANDLE(((lk_kernel_t*)o)->program) != p1);
  }
  LK_CHECK_STATUS(lk_ops_kernel(ctx, parts, 1, "-DX=1", "no_such_kernel", &k3), LIGHTOS_NOT_FOUND);
  /* a build failure: the status and the log's first lines, and no caching */
  const char* bad[1] = {k_bad_src};
  lightos_kernel_t kb = NULL;
  for (int i = 0; i < 2; ++i) {
    lightos_clear_error();
    lightos_status_t s = lk_ops_kernel(ctx, bad, 1, "", "k_bad", &kb);
    LK_CHECK_INT(s, LIGHTOS_COMPILE_FAILED);
    LK_CHECK_MSG(strstr(lightos_last_error()->message, "k_bad") &&
                 strstr(lightos_last_error()->message, "undefined_name"),
                 "build failure message: %s", lightos_last_error()->message);
  }
  if (k1) lightos_kernel_release(k1);
  if (k2) lightos_kernel_release(k2);
  if (k3) lightos_kernel_release(k3);
  LK_CHECK(lk_dtype_bytes(LIGHTOS_DTYPE_BF16) == 2 && lk_dtype_bytes((lightos_dtype_t)0) == 0);
}

/* ---- main ---------------------------------------------------------------------------- */

typedef void (*dt_test_fn)(lightos_dtype_t);

static void run_dtypes(const char* name, dt_test_fn fn, const lightos_dtype_t* dts, int n) {
  char full[128];
  for (int i = 0; i < n; ++i) {
    snprintf(full, sizeof full, "%s/%s/%s", name, dname(dts[i]), g_dev);
    g_mismatch_budget = 8;
    LK_RUN_NAMED(full, fn(dts[i]));
  }
}

static void run_one(const char* name, void (*fn)(void)) {
  char full[128];
  snprintf(full, sizeof full, "%s/%s", name, g_dev);
  g_mismatch_budget = 8;
  LK_RUN_NAMED(full, fn());
}

int main(void) {
  lk_t.program = "test_ops";
  const char* seed_env = getenv("LIGHTOS_TEST_SEED");
  uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : 0x5eed0f0b5ull;
  printf("test_ops: seed 0x%llx (set LIGHTOS_TEST_SEED to change it)\n", (unsigned long long)seed);
  uint32_t ndev = 0;
  if (lightos_device_count(&ndev) != LIGHTOS_SUCCESS || ndev == 0) {
    fprintf(stderr, "no devices\n");
    return 1;
  }
  const lightos_dtype_t k_reduce[7] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F64, LIGHTOS_DTYPE_F16,
                                       LIGHTOS_DTYPE_BF16, LIGHTOS_DTYPE_I32, LIGHTOS_DTYPE_I64,
                                       LIGHTOS_DTYPE_U8};
  for (uint32_t d = 0; d < ndev; ++d) {
    lightos_device_t dev;
    lightos_device_info_t info;
    if (lightos_device_get(d, &dev) || lightos_device_get_info(dev, &info)) return 1;
    snprintf(g_dev, sizeof g_dev, "%s", info.uri);
    const char* only = getenv("LIGHTOS_TEST_DEVICE");
    if (only && *only && strcmp(only, info.uri) != 0) continue;
    g_fp64 = info.fp64;
    g_rng = seed ^ (0x1234567ull * (d + 1));
    if (lightos_context_create_for_device(dev, 0, &g_ctx) != LIGHTOS_SUCCESS ||
        lightos_context_default_queue(g_ctx, &g_q) != LIGHTOS_SUCCESS) {
      fprintf(stderr, "context on %s: %s\n", g_dev, lightos_last_error()->message);
      return 1;
    }
    run_one("views", test_views);
    run_one("program_cache", test_program_cache);
    run_dtypes("binary", test_binary_dtype, k_all, 8);
    run_dtypes("unary", test_unary_dtype, k_all, 8);
    run_one("unary_fd", test_unary_fd);
    run_dtypes("cast_from", test_cast_from, k_all, 8);
    run_dtypes("fill_arange", test_fill_arange, k_all, 8);
    run_dtypes("random", test_random_dtype, k_float, 4);
    run_dtypes("reduce", test_reduce_dtype, k_reduce, 7);
    run_dtypes("argmax", test_argmax_dtype, k_reduce, 7);
    run_dtypes("softmax", test_softmax_dtype, k_float, 4);
    run_one("softmax_fd", test_softmax_fd);
    run_dtypes("layernorm", test_layernorm_dtype, k_float, 4);
    run_dtypes("rmsnorm", test_rmsnorm_dtype, k_float, 4);
    run_one("norm_fd", test_norm_fd);
    run_dtypes("cross_entropy", test_cross_entropy_dtype, k_float, 4);
    run_one("cross_entropy_fd", test_cross_entropy_fd);
    run_dtypes("embedding", test_embedding_dtype, k_all, 8);
    run_one("optim", test_optim);
    run_one("bad_inputs", test_bad_inputs);
    run_one("deterministic", test_deterministic);
    lightos_context_release(g_ctx);
  }
  return lk_test_finish();
}
