/* The numerics library of the tensor ops (src/ops/kernels/lk_math.cl) on
 * every device the registry reports.
 *
 * Small test kernels (appended to the embedded library source lk_cl_lk_math)
 * run the library's functions and the host checks the results:
 *   sweep_*    dense sweeps (every 1024th float bit pattern on CPU-type
 *              devices, every 4096th elsewhere, plus uniform points in each
 *              function's interesting range) against the host's double libm
 *              (long double for the fp64 functions): max ulp error per
 *              function, required <= 2 ulp (pow <= 3);
 *   special_*  special values, compared bit-exactly (signs of zeros, inf,
 *              NaN, overflow/underflow, subnormal inputs and results);
 *   half/bf16  to_float exhaustively over all 65536 patterns; from_float
 *              over a dense sweep plus every tie pattern, against an
 *              independent host reference (double arithmetic + rint);
 *   philox     the Random123 known-answer vectors, and the unit-float map;
 *   macros     LK_EXPF ... give lk_expf ... with -D LK_DETERMINISTIC and the
 *              builtins without it;
 *   identity   the outputs of every function on the common input points
 *              hash (SHA-256) to the same value on every device.
 * Output buffers are poisoned (0xCD) before each launch.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sha256.h"
#include "lightos/lightos.h"
#include "lk_test.h"

extern const char lk_cl_lk_math[];

/* ==== Test kernels ========================================================= */

static const char kTestSrc[] =
    "\n/* ---- test kernels ---- */\n"
    "static inline float nm_f(int fn, float x) {\n"
    "  switch (fn) {\n"
    "    case 0: return lk_expf(x);\n"
    "    case 1: return lk_logf(x);\n"
    "    case 2: return lk_tanhf(x);\n"
    "    case 3: return lk_erff(x);\n"
    "    case 4: return lk_log1pf(x);\n"
    "    case 5: return lk_expm1f(x);\n"
    "  }\n"
    "  return 0.0f;\n"
    "}\n"
    "__kernel void nm_f1(__global const uint* in, __global uint* out, int fn, uint n) {\n"
    "  uint i = (uint)get_global_id(0);\n"
    "  if (i >= n) return;\n"
    "  out[i] = as_uint(nm_f(fn, as_float(in[i])));\n"
    "}\n"
    "__kernel void nm_pow(__global const uint* x, __global const uint* y, __global uint* out,\n"
    "                     uint n) {\n"
    "  uint i = (uint)get_global_id(0);\n"
    "  if (i >= n) return;\n"
    "  out[i] = as_uint(lk_powf(as_float(x[i]), as_float(y[i])));\n"
    "}\n"
    "__kernel void nm_h2f(__global uint* out, uint n) {\n"
    "  uint i = (uint)get_global_id(0);\n"
    "  if (i >= n) return;\n"
    "  out[i] = as_uint(lk_half_to_float((ushort)i));\n"
    "}\n"
    "__kernel void nm_b2f(__global uint* out, uint n) {\n"
    "  uint i = (uint)get_global_id(0);\n"
    "  if (i >= n) return;\n"
    "  out[i] = as_uint(lk_bf16_to_float((ushort)i));\n"
    "}\n"
    "__kernel void nm_f2h(__global const uint* in, __global ushort* out, uint n) {\n"
    "  uint i = (uint)get_global_id(0);\n"
    "  if (i >= n) return;\n"
    "  out[i] = lk_float_to_half(as_float(in[i]));\n"
    "}\n"
    "__kernel void nm_f2b(__global const uint* in, __global ushort* out, uint n) {\n"
    "  uint i = (uint)get_global_id(0);\n"
    "  if (i >= n) return;\n"
    "  out[i] = lk_float_to_bf16(as_float(in[i]));\n"
    "}\n"
    "/* in: 6 words per vector (key0 key1 ctr0..ctr3); out: 4 words */\n"
    "__kernel void nm_philox(__global const uint* in, __global uint* out, uint n) {\n"
    "  uint i = (uint)get_global_id(0);\n"
    "  if (i >= n) return;\n"
    "  uint c[4], r[4];\n"
    "  for (int j = 0; j < 4; ++j) c[j] = in[6 * i + 2 + j];\n"
    "  lk_philox4x32_10(in[6 * i], in[6 * i + 1], c, r);\n"
    "  for (int j = 0; j < 4; ++j) out[4 * i + j] = r[j];\n"
    "}\n"
    "__kernel void nm_unit(__global const uint* in, __global uint* out, uint n) {\n"
    "  uint i = (uint)get_global_id(0);\n"
    "  if (i >= n) return;\n"
    "  out[i] = as_uint(lk_uint_to_unit_float(in[i]));\n"
    "}\n"
    "/* The LK_ macros: 7 outputs per input. */\n"
    "__kernel void nm_macros(__global const uint* in, __global uint* out, uint n) {\n"
    "  uint i = (uint)get_global_id(0);\n"
    "  if (i >= n) return;\n"
    "  float x = as_float(in[i]);\n"
    "  out[7 * i + 0] = as_uint(LK_EXPF(x));\n"
    "  out[7 * i + 1] = as_uint(LK_LOGF(x));\n"
    "  out[7 * i + 2] = as_uint(LK_TANHF(x));\n"
    "  out[7 * i + 3] = as_uint(LK_ERFF(x));\n"
    "  out[7 * i + 4] = as_uint(LK_POWF(x, 1.5f));\n"
    "  out[7 * i + 5] = as_uint(LK_LOG1PF(x));\n"
    "  out[7 * i + 6] = as_uint(LK_EXPM1F(x));\n"
    "}\n"
    "/* The target's builtins, for comparison with the non-deterministic macros. */\n"
    "__kernel void nm_builtins(__global const uint* in, __global uint* out, uint n) {\n"
    "  uint i = (uint)get_global_id(0);\n"
    "  if (i >= n) return;\n"
    "  float x = as_float(in[i]);\n"
    "  out[7 * i + 0] = as_uint(exp(x));\n"
    "  out[7 * i + 1] = as_uint(log(x));\n"
    "  out[7 * i + 2] = as_uint(tanh(x));\n"
    "  out[7 * i + 3] = as_uint(erf(x));\n"
    "  out[7 * i + 4] = as_uint(pow(x, 1.5f));\n"
    "  out[7 * i + 5] = as_uint(log1p(x));\n"
    "  out[7 * i + 6] = as_uint(expm1(x));\n"
    "}\n"
    "#ifdef cl_khr_fp64\n"
    "static inline double nm_d(int fn, double x) {\n"
    "  switch (fn) {\n"
    "    case 0: return lk_exp(x);\n"
    "    case 1: return lk_log(x);\n"
    "    case 2: return lk_tanh(x);\n"
    "    case 3: return lk_erf(x);\n"
    "    case 4: return lk_log1p(x);\n"
    "    case 5: return lk_expm1(x);\n"
    "  }\n"
    "  return 0.0;\n"
    "}\n"
    "__kernel void nm_d1(__global const ulong* in, __global ulong* out, int fn, uint n) {\n"
    "  uint i = (uint)get_global_id(0);\n"
    "  if (i >= n) return;\n"
    "  out[i] = as_ulong(nm_d(fn, as_double(in[i])));\n"
    "}\n"
    "__kernel void nm_dpow(__global const ulong* x, __global const ulong* y,\n"
    "                      __global ulong* out, uint n) {\n"
    "  uint i = (uint)get_global_id(0);\n"
    "  if (i >= n) return;\n"
    "  out[i] = as_ulong(lk_pow(as_double(x[i]), as_double(y[i])));\n"
    "}\n"
    "#endif\n";

/* ==== Functions ============================================================ */

enum { F_EXP, F_LOG, F_TANH, F_ERF, F_LOG1P, F_EXPM1, F_POW, F_COUNT };
static const char* const kFnName[F_COUNT] = {"exp", "log", "tanh", "erf", "log1p", "expm1", "pow"};
/* Interesting range for the uniform points of each function. */
static const double kRange[F_COUNT][2] = {{-105, 90},  {0, 8},     {-10, 10}, {-5, 5},
                                          {-1, 4},     {-20, 90},  {0, 0}};

static double ref_f(int fn, double x) {
  switch (fn) {
    case F_EXP: return exp(x);
    case F_LOG: return log(x);
    case F_TANH: return tanh(x);
    case F_ERF: return erf(x);
    case F_LOG1P: return log1p(x);
    case F_EXPM1: return expm1(x);
  }
  return NAN;
}
static long double ref_d(int fn, long double x) {
  switch (fn) {
    case F_EXP: return expl(x);
    case F_LOG: return logl(x);
    case F_TANH: return tanhl(x);
    case F_ERF: return erfl(x);
    case F_LOG1P: return log1pl(x);
    case F_EXPM1: return expm1l(x);
  }
  return NAN;
}

/* ==== Host helpers ========================================================= */

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
static uint64_t d2u(double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  return u;
}
static double u2d(uint64_t u) {
  double d;
  memcpy(&d, &u, 8);
  return d;
}

static uint64_t g_rng = 0x853c49e6748fea9bull;
static uint64_t rng_next(void) { /* xorshift64* */
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return g_rng * 0x2545F4914F6CDD1Dull;
}
static double rng_unit(void) { return (double)(rng_next() >> 11) * 0x1p-53; }

/* Error of `got` in units in the last place of the exact value `ref`
 * (float: 24-bit significands, subnormal ulp 2^-149).  Infinity counts as
 * 2^128 (one ulp above FLT_MAX); a NaN where none is expected, or the
 * reverse, is an infinite error. */
static double ulp_err_f(float got, double ref) {
  if (isnan(ref) || isnan(got)) return (isnan(ref) && isnan(got)) ? 0.0 : INFINITY;
  if (isinf(got) && isinf((float)ref)) return (signbit(got) == signbit(ref)) ? 0.0 : INFINITY;
  double g = isinf(got) ? copysign(0x1p128, got) : (double)got;
  double r = isinf(ref) ? copysign(0x1p128, ref) : ref;
  double ar = fabs(r), ulp = 0x1p-149;
  if (ar >= 0x1p-126) {
    int e;
    frexp(ar, &e); /* ar in [2^(e-1), 2^e) */
    ulp = ldexp(1.0, e - 24);
  }
  return fabs(g - r) / ulp;
}
static double ulp_err_d(double got, long double ref) {
  if (isnan(ref) || isnan(got)) return (isnan(ref) && isnan(got)) ? 0.0 : INFINITY;
  if (isinf(got) && isinf((double)ref))
    return (signbit(got) == signbit(ref)) ? 0.0 : INFINITY;
  long double g = isinf(got) ? copysignl(0x1p1024L, got) : (long double)got;
  long double r = isinf(ref) ? copysignl(0x1p1024L, ref) : ref;
  long double ar = fabsl(r), ulp = 0x1p-1074L;
  if (ar >= 0x1p-1022L) {
    int e;
    frexpl(ar, &e);
    ulp = ldexpl(1.0L, e - 53);
  }
  return (double)(fabsl(g - r) / ulp);
}

/* ==== Devices ============================================================== */

#define MAX_DEV 8
typedef struct ndev {
  lightos_device_t dev;
  lightos_device_info_t info;
  lightos_context_t ctx;
  lightos_program_t prog;     /* library + test kernels                 */
  lightos_program_t prog_det; /* the same with -D LK_DETERMINISTIC      */
  bool ok;                    /* context and programs built             */
  char skip[512];             /* why not, when !ok                      */
  uint32_t shift;             /* float sweep stride = 2^shift           */
  double maxulp[F_COUNT], maxulp_d[F_COUNT];
  float worst[F_COUNT];
  double worst_d[F_COUNT];
  bool ran[F_COUNT], ran_d[F_COUNT];
  char hash[F_COUNT][65], hash_d[F_COUNT][65], hash_cv[65];
  bool hashed[F_COUNT], hashed_d[F_COUNT], hashed_cv;
} ndev_t;

static ndev_t g_dev[MAX_DEV];
static uint32_t g_ndev;
static uint32_t g_common_shift; /* the largest stride of all devices */

#define NPOW 6 /* pow input sets hashed together */

static bool api_ok(lightos_status_t s, const char* what, int line) {
  if (s == LIGHTOS_SUCCESS) return true;
  lk_test_fail(__FILE__, line, "%s failed: %s (%s)", what, lightos_status_string(s),
               lightos_last_error()->message);
  return false;
}
#define API(call) api_ok((call), #call, __LINE__)
#define CHECKF(...) ((void)LK_CHECK_MSG(__VA_ARGS__))

/* One launch: buffers described by a format string, one letter per
 * kernel argument:  r input buffer (ptr, bytes)   w output buffer (ptr,
 * bytes; poisoned, read back)   i int32   u uint32.  `global` items. */
static bool launch(ndev_t* d, lightos_program_t prog, const char* kname, size_t global,
                   const char* fmt, ...) {
  lightos_kernel_t k = NULL;
  lightos_buffer_t bufs[8] = {0};
  void* outp[8] = {0};
  size_t outb[8] = {0};
  int nb = 0;
  bool ok = API(lightos_kernel_create(prog, kname, &k));
  va_list ap;
  va_start(ap, fmt);
  for (uint32_t a = 0; fmt[a] && ok; ++a) {
    switch (fmt[a]) {
      case 'r':
      case 'w': {
        void* p = va_arg(ap, void*);
        size_t bytes = va_arg(ap, size_t);
        lightos_buffer_t b = NULL;
        ok = API(lightos_buffer_alloc(d->ctx, bytes, 0, &b));
        if (!ok) break;
        bufs[nb] = b;
        if (fmt[a] == 'r') {
          ok = API(lightos_buffer_write(b, 0, bytes, p));
        } else {
          const uint8_t poison = 0xCD;
          ok = API(lightos_buffer_fill(b, 0, bytes, &poison, 1));
          outp[nb] = p;
          outb[nb] = bytes;
        }
        nb++;
        if (ok) ok = API(lightos_kernel_set_arg_buffer(k, a, b));
        break;
      }
      case 'i': ok = API(lightos_kernel_set_arg_i32(k, a, va_arg(ap, int32_t))); break;
      case 'u': ok = API(lightos_kernel_set_arg_u32(k, a, va_arg(ap, uint32_t))); break;
      default: lk_test_fail(__FILE__, __LINE__, "bad launch format '%c'", fmt[a]); ok = false;
    }
  }
  va_end(ap);
  lightos_queue_t q = NULL;
  if (ok) ok = API(lightos_context_default_queue(d->ctx, &q));
  if (ok) ok = API(lightos_enqueue_kernel(q, k, 1, &global, NULL, NULL));
  if (ok) ok = API(lightos_queue_finish(q));
  for (int b = 0; b < nb && ok; ++b)
    if (outp[b]) ok = API(lightos_buffer_read(bufs[b], 0, outb[b], outp[b]));
  for (int b = 0; b < nb; ++b) lightos_buffer_release(bufs[b]);
  if (k) lightos_kernel_release(k);
  return ok;
}

static void hash_hex(const void* data, size_t bytes, char out[65]) {
  uint8_t dg[32];
  lk_sha256(data, bytes, dg);
  lk_sha256_hex(dg, out);
}

/* Hash of the elements of `v` (n of `esz` bytes, sweep stride 2^shift) that
 * lie on the common grid (stride 2^g_common_shift), then the `extra`
 * elements that follow the sweep. */
static void hash_common(const void* v, size_t esz, size_t nsweep, uint32_t shift, size_t extra,
                        char out[65]) {
  lk_sha256_t s;
  lk_sha256_init(&s);
  size_t step = (size_t)1 << (g_common_shift - shift);
  for (size_t i = 0; i < nsweep; i += step) lk_sha256_update(&s, (const uint8_t*)v + i * esz, esz);
  lk_sha256_update(&s, (const uint8_t*)v + nsweep * esz, extra * esz);
  uint8_t dg[32];
  lk_sha256_final(&s, dg);
  lk_sha256_hex(dg, out);
}

/* ==== (a) float sweeps ===================================================== */

#define NUNIF (1u << 18) /* uniform points per function */

static void report_worst(const char* fn, const char* uri, double err, double x, double got,
                         double want, double limit) {
  printf("  %-8s %-6s max %.3f ulp (x=%a: got %a, want %a)\n", uri, fn, err, x, got, want);
  CHECKF(err <= limit, "%s on %s: %.3f ulp > %.1f at x=%a (got %a, want %a)", fn, uri, err,
               limit, x, got, want);
}

static void test_sweep_f32(ndev_t* d, int fn) {
  size_t nsweep = (size_t)1 << (32 - d->shift);
  size_t n = nsweep + NUNIF;
  uint32_t* in = malloc(n * 4);
  uint32_t* out = malloc(n * 4);
  if (!LK_CHECK(in && out)) goto done;
  uint32_t phase = 0x2b7u & ((1u << g_common_shift) - 1u);
  for (size_t i = 0; i < nsweep; ++i) in[i] = (uint32_t)(i << d->shift) + phase;
  g_rng = 0x1234567u + (uint64_t)fn;
  for (size_t i = 0; i < NUNIF; ++i)
    in[nsweep + i] =
        f2u((float)(kRange[fn][0] + (kRange[fn][1] - kRange[fn][0]) * rng_unit()));
  if (!launch(d, d->prog, "nm_f1", n, "rwiu", in, n * 4, out, n * 4, (int32_t)fn, (uint32_t)n))
    goto done;
  double mx = 0;
  size_t wi = 0;
  for (size_t i = 0; i < n; ++i) {
    float x = u2f(in[i]);
    double e = ulp_err_f(u2f(out[i]), ref_f(fn, (double)x));
    if (!(e <= mx)) {
      mx = e;
      wi = i;
    }
  }
  d->maxulp[fn] = mx;
  d->worst[fn] = u2f(in[wi]);
  d->ran[fn] = true;
  report_worst(kFnName[fn], d->info.uri, mx, u2f(in[wi]), u2f(out[wi]),
               ref_f(fn, (double)u2f(in[wi])), 2.0);
  hash_common(out, 4, nsweep, d->shift, NUNIF, d->hash[fn]);
  d->hashed[fn] = true;
done:
  free(in);
  free(out);
}

/* pow: (1) positive x over the bit patterns with a cycle of y values,
 * (2) x log-uniform in [2^-30, 2^30] with y chosen so that y log x is
 * uniform in [-104, 89] (the whole output range, where the product's
 * accuracy matters most), (3) negative x with integer y. */
static const float kPowY[] = {2.5f, -1.5f, 0.5f, 3.0f, -7.0f, 10.25f, 0.33333334f, -0.01f,
                              100.5f, 1e-3f, -2.0f, 1.75f};
static void test_sweep_powf(ndev_t* d) {
  size_t nsweep = (size_t)1 << (31 - d->shift); /* positive patterns only */
  size_t n2 = 1u << 19, n3 = 1u << 16;
  size_t n = nsweep + n2 + n3;
  uint32_t* x = malloc(n * 4);
  uint32_t* y = malloc(n * 4);
  uint32_t* out = malloc(n * 4);
  if (!LK_CHECK(x && y && out)) goto done;
  uint32_t phase = 0x2b7u & ((1u << g_common_shift) - 1u);
  for (size_t i = 0; i < nsweep; ++i) {
    x[i] = (uint32_t)(i << d->shift) + phase;
    /* the y cycle follows the common grid, so every device pairs the same */
    size_t gi = (i << d->shift) >> g_common_shift;
    y[i] = f2u(kPowY[gi % (sizeof kPowY / sizeof kPowY[0])]);
  }
  g_rng = 0xfeedbeefu;
  for (size_t i = 0; i < n2; ++i) {
    float xv = (float)exp2(-30.0 + 60.0 * rng_unit());
    double t = -104.0 + 193.0 * rng_unit();
    float yv = (float)(t / log((double)xv));
    x[nsweep + i] = f2u(xv);
    y[nsweep + i] = f2u(yv);
  }
  for (size_t i = 0; i < n3; ++i) {
    x[nsweep + n2 + i] = f2u((float)-(0.05 + 20.0 * rng_unit()));
    y[nsweep + n2 + i] = f2u((float)((int)(rng_next() % 61) - 30));
  }
  if (!launch(d, d->prog, "nm_pow", n, "rrwu", x, n * 4, y, n * 4, out, n * 4, (uint32_t)n))
    goto done;
  double mx = 0;
  size_t wi = 0;
  for (size_t i = 0; i < n; ++i) {
    double e = ulp_err_f(u2f(out[i]), pow((double)u2f(x[i]), (double)u2f(y[i])));
    if (!(e <= mx)) {
      mx = e;
      wi = i;
    }
  }
  d->maxulp[F_POW] = mx;
  d->worst[F_POW] = u2f(x[wi]);
  d->ran[F_POW] = true;
  printf("  %-8s pow    max %.3f ulp (x=%a y=%a: got %a, want %a)\n", d->info.uri, mx,
         u2f(x[wi]), u2f(y[wi]), u2f(out[wi]), pow((double)u2f(x[wi]), (double)u2f(y[wi])));
  CHECKF(mx <= 3.0, "pow on %s: %.3f ulp > 3 at x=%a y=%a (got %a, want %a)", d->info.uri,
               mx, u2f(x[wi]), u2f(y[wi]), u2f(out[wi]),
               pow((double)u2f(x[wi]), (double)u2f(y[wi])));
  hash_common(out, 4, nsweep, d->shift, n2 + n3, d->hash[F_POW]);
  d->hashed[F_POW] = true;
done:
  free(x);
  free(y);
  free(out);
}

/* ==== (a') double sweeps =================================================== */

#define DSWEEP_SHIFT 44 /* every 2^44-th double bit pattern: 2^20 points */
#define DNUNIF (1u << 17)
static const double kRangeD[F_COUNT][2] = {{-746, 710}, {0, 8},    {-20, 20}, {-6.5, 6.5},
                                           {-1, 4},     {-40, 710}, {0, 0}};

static void test_sweep_f64(ndev_t* d, int fn) {
  if (LDBL_MANT_DIG < 64) {
    lk_test_skip("the host's long double has %d bits: no reference for double", LDBL_MANT_DIG);
    return;
  }
  size_t nsweep = (size_t)1 << (64 - DSWEEP_SHIFT);
  size_t n = nsweep + DNUNIF;
  uint64_t* in = malloc(n * 8);
  uint64_t* out = malloc(n * 8);
  if (!LK_CHECK(in && out)) goto done;
  for (size_t i = 0; i < nsweep; ++i) in[i] = ((uint64_t)i << DSWEEP_SHIFT) + 0x5a5a5a5a5ull;
  g_rng = 0x9876543u + (uint64_t)fn;
  for (size_t i = 0; i < DNUNIF; ++i)
    in[nsweep + i] = d2u(kRangeD[fn][0] + (kRangeD[fn][1] - kRangeD[fn][0]) * rng_unit());
  if (!launch(d, d->prog, "nm_d1", n, "rwiu", in, n * 8, out, n * 8, (int32_t)fn, (uint32_t)n))
    goto done;
  double mx = 0;
  size_t wi = 0;
  for (size_t i = 0; i < n; ++i) {
    double e = ulp_err_d(u2d(out[i]), ref_d(fn, (long double)u2d(in[i])));
    if (!(e <= mx)) {
      mx = e;
      wi = i;
    }
  }
  d->maxulp_d[fn] = mx;
  d->worst_d[fn] = u2d(in[wi]);
  d->ran_d[fn] = true;
  report_worst(kFnName[fn], d->info.uri, mx, u2d(in[wi]), u2d(out[wi]),
               (double)ref_d(fn, (long double)u2d(in[wi])), 2.0);
  hash_hex(out, n * 8, d->hash_d[fn]);
  d->hashed_d[fn] = true;
done:
  free(in);
  free(out);
}

static void test_sweep_pow64(ndev_t* d) {
  if (LDBL_MANT_DIG < 64) {
    lk_test_skip("the host's long double has %d bits: no reference for double", LDBL_MANT_DIG);
    return;
  }
  size_t n1 = 1u << 18, n2 = 1u << 18, n3 = 1u << 14;
  size_t n = n1 + n2 + n3;
  uint64_t* x = malloc(n * 8);
  uint64_t* y = malloc(n * 8);
  uint64_t* out = malloc(n * 8);
  if (!LK_CHECK(x && y && out)) goto done;
  for (size_t i = 0; i < n1; ++i) {
    x[i] = ((uint64_t)i << 45) + 0x3c3c3c3c3ull; /* positive patterns */
    y[i] = d2u((double)kPowY[i % (sizeof kPowY / sizeof kPowY[0])]);
  }
  g_rng = 0xabcdef01u;
  for (size_t i = 0; i < n2; ++i) {
    double xv = exp2(-200.0 + 400.0 * rng_unit());
    double t = -744.0 + 1453.0 * rng_unit();
    x[n1 + i] = d2u(xv);
    y[n1 + i] = d2u(t / log(xv));
  }
  for (size_t i = 0; i < n3; ++i) {
    x[n1 + n2 + i] = d2u(-(0.05 + 20.0 * rng_unit()));
    y[n1 + n2 + i] = d2u((double)((int)(rng_next() % 201) - 100));
  }
  if (!launch(d, d->prog, "nm_dpow", n, "rrwu", x, n * 8, y, n * 8, out, n * 8, (uint32_t)n))
    goto done;
  double mx = 0;
  size_t wi = 0;
  for (size_t i = 0; i < n; ++i) {
    double e = ulp_err_d(u2d(out[i]), powl((long double)u2d(x[i]), (long double)u2d(y[i])));
    if (!(e <= mx)) {
      mx = e;
      wi = i;
    }
  }
  d->maxulp_d[F_POW] = mx;
  d->worst_d[F_POW] = u2d(x[wi]);
  d->ran_d[F_POW] = true;
  printf("  %-8s pow    max %.3f ulp (x=%a y=%a: got %a, want %La)\n", d->info.uri, mx,
         u2d(x[wi]), u2d(y[wi]), u2d(out[wi]), powl((long double)u2d(x[wi]), (long double)u2d(y[wi])));
  CHECKF(mx <= 3.0, "double pow on %s: %.3f ulp > 3 at x=%a y=%a", d->info.uri, mx,
               u2d(x[wi]), u2d(y[wi]));
  hash_hex(out, n * 8, d->hash_d[F_POW]);
  d->hashed_d[F_POW] = true;
done:
  free(x);
  free(y);
  free(out);
}

/* ==== (b) special values =================================================== */

/* Expected bits; NAN_ANY: any NaN.  Each entry is checked bit-exactly. */
#define NAN_ANY 0x7fc00000u
typedef struct {
  int fn;
  float x, y;
  float want;
} fspec_t;

static bool same_f(float got, float want) {
  if (isnan(want)) return isnan(got);
  return f2u(got) == f2u(want);
}

static void test_special_f32(ndev_t* d) {
  const float inf = INFINITY, nan = NAN, den = 0x1p-149f, fmax = FLT_MAX;
  const fspec_t t[] = {
      /* exp */
      {F_EXP, nan, 0, nan}, {F_EXP, inf, 0, inf}, {F_EXP, -inf, 0, 0.0f}, {F_EXP, 0.0f, 0, 1.0f},
      {F_EXP, -0.0f, 0, 1.0f}, {F_EXP, den, 0, 1.0f}, {F_EXP, -den, 0, 1.0f},
      {F_EXP, 89.0f, 0, inf}, {F_EXP, 0x1.62e430p+6f, 0, inf}, {F_EXP, 1000.0f, 0, inf},
      {F_EXP, fmax, 0, inf}, {F_EXP, -104.0f, 0, 0.0f}, {F_EXP, -fmax, 0, 0.0f},
      {F_EXP, -0x1.9fe368p+6f, 0, den}, /* just above ln(2^-150): rounds up to 2^-149 */
      {F_EXP, -0x1.9fe36ap+6f, 0, 0.0f}, /* just below: rounds to 0 */
      {F_EXP, 1.0f, 0, 0x1.5bf0a8p+1f}, {F_EXP, -1.0f, 0, 0x1.78b564p-2f},
      /* log */
      {F_LOG, nan, 0, nan}, {F_LOG, 0.0f, 0, -inf}, {F_LOG, -0.0f, 0, -inf},
      {F_LOG, -1.0f, 0, nan}, {F_LOG, -den, 0, nan}, {F_LOG, -inf, 0, nan}, {F_LOG, inf, 0, inf},
      {F_LOG, 1.0f, 0, 0.0f}, {F_LOG, den, 0, -0x1.9d1da0p+6f}, {F_LOG, 0x1p-140f, 0, -0x1.842994p+6f},
      {F_LOG, fmax, 0, 0x1.62e430p+6f}, {F_LOG, 2.0f, 0, 0x1.62e430p-1f},
      /* tanh */
      {F_TANH, nan, 0, nan}, {F_TANH, inf, 0, 1.0f}, {F_TANH, -inf, 0, -1.0f},
      {F_TANH, 0.0f, 0, 0.0f}, {F_TANH, -0.0f, 0, -0.0f}, {F_TANH, den, 0, den},
      {F_TANH, -den, 0, -den}, {F_TANH, 20.0f, 0, 1.0f}, {F_TANH, -20.0f, 0, -1.0f},
      {F_TANH, fmax, 0, 1.0f}, {F_TANH, 1.0f, 0, 0x1.85efacp-1f},
      /* erf */
      {F_ERF, nan, 0, nan}, {F_ERF, inf, 0, 1.0f}, {F_ERF, -inf, 0, -1.0f},
      {F_ERF, 0.0f, 0, 0.0f}, {F_ERF, -0.0f, 0, -0.0f}, {F_ERF, den, 0, den},
      {F_ERF, -den, 0, -den}, {F_ERF, 0x1p-140f, 0, 0x1.21p-140f},
      {F_ERF, 10.0f, 0, 1.0f}, {F_ERF, -10.0f, 0, -1.0f}, {F_ERF, 1.0f, 0, 0x1.af767ap-1f},
      /* log1p */
      {F_LOG1P, nan, 0, nan}, {F_LOG1P, -1.0f, 0, -inf}, {F_LOG1P, -2.0f, 0, nan},
      {F_LOG1P, -inf, 0, nan}, {F_LOG1P, inf, 0, inf}, {F_LOG1P, 0.0f, 0, 0.0f},
      {F_LOG1P, -0.0f, 0, -0.0f}, {F_LOG1P, den, 0, den}, {F_LOG1P, -den, 0, -den},
      {F_LOG1P, fmax, 0, 0x1.62e430p+6f}, {F_LOG1P, 1.0f, 0, 0x1.62e430p-1f},
      /* expm1 */
      {F_EXPM1, nan, 0, nan}, {F_EXPM1, inf, 0, inf}, {F_EXPM1, -inf, 0, -1.0f},
      {F_EXPM1, 0.0f, 0, 0.0f}, {F_EXPM1, -0.0f, 0, -0.0f}, {F_EXPM1, den, 0, den},
      {F_EXPM1, -den, 0, -den}, {F_EXPM1, 100.0f, 0, inf}, {F_EXPM1, -100.0f, 0, -1.0f},
      {F_EXPM1, 1.0f, 0, 0x1.b7e152p+0f},
      /* pow: the C99/IEEE special cases */
      {F_POW, nan, 0.0f, 1.0f}, {F_POW, nan, -0.0f, 1.0f}, {F_POW, -inf, 0.0f, 1.0f},
      {F_POW, 0.0f, 0.0f, 1.0f}, {F_POW, 1.0f, nan, 1.0f}, {F_POW, 1.0f, inf, 1.0f},
      {F_POW, 1.0f, -inf, 1.0f}, {F_POW, -1.0f, inf, 1.0f}, {F_POW, -1.0f, -inf, 1.0f},
      {F_POW, nan, 1.0f, nan}, {F_POW, 2.0f, nan, nan}, {F_POW, -2.0f, 0.5f, nan},
      {F_POW, -2.0f, -1.5f, nan}, {F_POW, -inf, 0.5f, inf}, {F_POW, -2.0f, 3.0f, -8.0f},
      {F_POW, -2.0f, -3.0f, -0.125f}, {F_POW, -2.0f, 2.0f, 4.0f}, {F_POW, -1.0f, 0x1p30f, 1.0f},
      {F_POW, -1.0f, 7.0f, -1.0f}, {F_POW, 0.0f, -1.0f, inf}, {F_POW, -0.0f, -1.0f, -inf},
      {F_POW, -0.0f, -2.0f, inf}, {F_POW, -0.0f, -0.5f, inf}, {F_POW, 0.0f, 3.0f, 0.0f},
      {F_POW, -0.0f, 3.0f, -0.0f}, {F_POW, -0.0f, 2.0f, 0.0f}, {F_POW, -0.0f, 0.5f, 0.0f},
      {F_POW, 2.0f, inf, inf}, {F_POW, 0.5f, inf, 0.0f}, {F_POW, 2.0f, -inf, 0.0f},
      {F_POW, 0.5f, -inf, inf}, {F_POW, -2.0f, inf, inf}, {F_POW, -0.5f, -inf, inf},
      {F_POW, -inf, 3.0f, -inf}, {F_POW, -inf, 2.0f, inf}, {F_POW, -inf, -3.0f, -0.0f},
      {F_POW, -inf, -2.0f, 0.0f}, {F_POW, inf, -1.0f, 0.0f}, {F_POW, inf, 0.5f, inf},
      {F_POW, 2.0f, 200.0f, inf}, {F_POW, -2.0f, 201.0f, -inf}, {F_POW, 2.0f, -200.0f, 0.0f},
      {F_POW, -2.0f, -201.0f, -0.0f}, {F_POW, 2.0f, -149.0f, den}, {F_POW, 2.0f, -140.5f, 0x1.6ap-141f},
      {F_POW, 2.0f, 10.0f, 1024.0f}, {F_POW, -3.0f, 3.0f, -27.0f}, {F_POW, 4.0f, 0.5f, 2.0f},
      {F_POW, 10.0f, -1.0f, 0.1f}, {F_POW, den, 0.5f, 0x1.6a09e6p-75f},
      {F_POW, den, -1.0f, inf}, {F_POW, 0x1p-140f, -0.5f, 0x1p70f}, {F_POW, 3.0f, 1e-30f, 1.0f},
      {F_POW, fmax, 1.0f, fmax}, {F_POW, 16777215.0f, 1.0f, 16777215.0f},
  };
  const size_t n = sizeof t / sizeof t[0];
  uint32_t x[256];
  size_t nu = 0, np = 0;
  uint32_t xp[128], yp[128], outp[128];
  int idx_u[256], idx_p[128];
  for (size_t i = 0; i < n; ++i) {
    if (t[i].fn == F_POW) {
      xp[np] = f2u(t[i].x);
      yp[np] = f2u(t[i].y);
      idx_p[np++] = (int)i;
    } else {
      x[nu] = f2u(t[i].x);
      idx_u[nu++] = (int)i;
    }
  }
  /* one launch per function (the kernel takes the function as an argument) */
  for (int fn = 0; fn < F_POW; ++fn) {
    uint32_t xin[64], res[64];
    int map[64];
    uint32_t m = 0;
    for (size_t j = 0; j < nu; ++j)
      if (t[idx_u[j]].fn == fn) {
        xin[m] = x[j];
        map[m++] = idx_u[j];
      }
    if (!launch(d, d->prog, "nm_f1", m, "rwiu", xin, (size_t)m * 4, res, (size_t)m * 4,
                (int32_t)fn, m))
      return;
    for (uint32_t j = 0; j < m; ++j) {
      const fspec_t* s = &t[map[j]];
      float got = u2f(res[j]);
      CHECKF(same_f(got, s->want), "%s: %s(%a) = %a (0x%08x), expected %a (0x%08x)",
                   d->info.uri, kFnName[fn], s->x, got, res[j], s->want, f2u(s->want));
    }
  }
  if (!launch(d, d->prog, "nm_pow", np, "rrwu", xp, np * 4, yp, np * 4, outp, np * 4,
              (uint32_t)np))
    return;
  for (size_t j = 0; j < np; ++j) {
    const fspec_t* s = &t[idx_p[j]];
    float got = u2f(outp[j]);
    CHECKF(same_f(got, s->want), "%s: pow(%a, %a) = %a (0x%08x), expected %a (0x%08x)",
                 d->info.uri, s->x, s->y, got, outp[j], s->want, f2u(s->want));
  }
}

typedef struct {
  int fn;
  double x, y, want;
} dspec_t;

static bool same_d(double got, double want) {
  if (isnan(want)) return isnan(got);
  return d2u(got) == d2u(want);
}

static void test_special_f64(ndev_t* d) {
  const double inf = INFINITY, nan = NAN, den = 0x1p-1074, dmax = DBL_MAX;
  const dspec_t t[] = {
      {F_EXP, nan, 0, nan}, {F_EXP, inf, 0, inf}, {F_EXP, -inf, 0, 0.0}, {F_EXP, 0.0, 0, 1.0},
      {F_EXP, -0.0, 0, 1.0}, {F_EXP, den, 0, 1.0}, {F_EXP, 710.0, 0, inf},
      {F_EXP, -746.0, 0, 0.0}, {F_EXP, -745.1332, 0, den}, {F_EXP, 1.0, 0, 0x1.5bf0a8b145769p+1},
      {F_LOG, nan, 0, nan}, {F_LOG, 0.0, 0, -inf}, {F_LOG, -0.0, 0, -inf}, {F_LOG, -1.0, 0, nan},
      {F_LOG, inf, 0, inf}, {F_LOG, -inf, 0, nan}, {F_LOG, 1.0, 0, 0.0},
      {F_LOG, den, 0, -0x1.74385446d71c3p+9}, {F_LOG, dmax, 0, 0x1.62e42fefa39efp+9},
      {F_TANH, nan, 0, nan}, {F_TANH, inf, 0, 1.0}, {F_TANH, -inf, 0, -1.0},
      {F_TANH, -0.0, 0, -0.0}, {F_TANH, den, 0, den}, {F_TANH, 30.0, 0, 1.0},
      {F_ERF, nan, 0, nan}, {F_ERF, inf, 0, 1.0}, {F_ERF, -inf, 0, -1.0}, {F_ERF, -0.0, 0, -0.0},
      {F_ERF, den, 0, den}, {F_ERF, 7.0, 0, 1.0}, {F_ERF, -7.0, 0, -1.0},
      {F_LOG1P, -1.0, 0, -inf}, {F_LOG1P, -2.0, 0, nan}, {F_LOG1P, inf, 0, inf},
      {F_LOG1P, -0.0, 0, -0.0}, {F_LOG1P, den, 0, den},
      {F_EXPM1, -inf, 0, -1.0}, {F_EXPM1, inf, 0, inf}, {F_EXPM1, -0.0, 0, -0.0},
      {F_EXPM1, den, 0, den}, {F_EXPM1, 1000.0, 0, inf}, {F_EXPM1, -100.0, 0, -1.0},
      {F_POW, nan, 0.0, 1.0}, {F_POW, 1.0, nan, 1.0}, {F_POW, -1.0, inf, 1.0},
      {F_POW, -2.0, 0.5, nan}, {F_POW, -2.0, 3.0, -8.0}, {F_POW, -0.0, -1.0, -inf},
      {F_POW, 0.0, -0.5, inf}, {F_POW, -0.0, 3.0, -0.0}, {F_POW, -inf, 3.0, -inf},
      {F_POW, -inf, -3.0, -0.0}, {F_POW, 0.5, inf, 0.0}, {F_POW, 0.5, -inf, inf},
      {F_POW, 2.0, 1100.0, inf}, {F_POW, 2.0, -1074.0, den}, {F_POW, 2.0, -1100.0, 0.0},
      {F_POW, 2.0, 10.0, 1024.0}, {F_POW, 10.0, -1.0, 0.1}, {F_POW, 4.0, 0.5, 2.0},
  };
  const size_t n = sizeof t / sizeof t[0];
  for (int fn = 0; fn < F_COUNT; ++fn) {
    uint64_t xin[32], yin[32], res[32];
    int map[32];
    uint32_t m = 0;
    for (size_t j = 0; j < n; ++j)
      if (t[j].fn == fn) {
        xin[m] = d2u(t[j].x);
        yin[m] = d2u(t[j].y);
        map[m++] = (int)j;
      }
    bool ok = fn == F_POW ? launch(d, d->prog, "nm_dpow", m, "rrwu", xin, (size_t)m * 8, yin,
                                   (size_t)m * 8, res, (size_t)m * 8, m)
                          : launch(d, d->prog, "nm_d1", m, "rwiu", xin, (size_t)m * 8, res,
                                   (size_t)m * 8, (int32_t)fn, m);
    if (!ok) return;
    for (uint32_t j = 0; j < m; ++j) {
      const dspec_t* s = &t[map[j]];
      double got = u2d(res[j]);
      CHECKF(same_d(got, s->want), "%s: double %s(%a, %a) = %a, expected %a", d->info.uri,
                   kFnName[fn], s->x, s->y, got, s->want);
    }
  }
}

/* ==== (c) half / bfloat16 ================================================== */

/* Host references: value arithmetic in double, independent of the bit
 * tricks of the library. */
static uint32_t ref_h2f(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 31) return m ? (sign | 0x7fc00000u | ((uint32_t)m << 13)) : (sign | 0x7f800000u);
  double v = e ? ldexp(1024.0 + m, e - 25) : ldexp((double)m, -24);
  return sign | f2u((float)v);
}
/* RNE of |f| to a format with `mant` fraction bits, minimum normal
 * exponent `emin` and overflow threshold 2^(emax+1); returns the rounded
 * value (or INFINITY). */
static double ref_round(double a, int mant, int emin, int emax) {
  if (a == 0) return 0;
  int e;
  frexp(a, &e);
  int ex = e - 1;
  if (ex < emin) ex = emin;
  double q = ldexp(1.0, ex - mant);
  double r = rint(a / q) * q;
  return r >= ldexp(1.0, emax + 1) ? INFINITY : r;
}
static uint16_t encode_half(double r) { /* r exactly representable, >= 0 */
  if (isinf(r)) return 0x7c00;
  if (r < 0x1p-14) return (uint16_t)(r * 0x1p24);
  int e;
  frexp(r, &e);
  int ex = e - 1;
  return (uint16_t)(((ex + 15) << 10) | (int)(ldexp(r, 10 - ex) - 1024.0));
}
static uint16_t encode_bf16(double r) {
  return (uint16_t)(f2u((float)r) >> 16); /* r is a float with 8 significant bits */
}

static void test_half_to_float(ndev_t* d) {
  static uint32_t out[65536];
  if (!launch(d, d->prog, "nm_h2f", 65536, "wu", out, sizeof out, (uint32_t)65536)) return;
  int bad = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    uint32_t want = ref_h2f((uint16_t)h);
    if (out[h] != want && bad++ < 8)
      CHECKF(0, "%s: half_to_float(0x%04x) = 0x%08x, expected 0x%08x", d->info.uri, h,
                   out[h], want);
  }
  CHECKF(bad == 0, "%s: %d of 65536 half patterns wrong", d->info.uri, bad);
}

static void test_bf16_to_float(ndev_t* d) {
  static uint32_t out[65536];
  if (!launch(d, d->prog, "nm_b2f", 65536, "wu", out, sizeof out, (uint32_t)65536)) return;
  int bad = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    uint32_t want = h << 16; /* exact, NaN payloads included */
    if (out[h] != want && bad++ < 8)
      CHECKF(0, "%s: bf16_to_float(0x%04x) = 0x%08x, expected 0x%08x", d->info.uri, h,
                   out[h], want);
  }
  CHECKF(bad == 0, "%s: %d of 65536 bf16 patterns wrong", d->info.uri, bad);
}

/* Dense sweep + every pattern whose dropped bits are a tie or one off a
 * tie (for each value of the kept bits). */
static void test_from_float(ndev_t* d, bool bf16) {
  const uint32_t drop = bf16 ? 16 : 13;
  const uint32_t half_pt = 1u << (drop - 1);
  size_t nsweep = (size_t)1 << (32 - d->shift);
  size_t nkept = (size_t)1 << (32 - drop);
  size_t n = nsweep + 3 * nkept;
  uint32_t* in = malloc(n * 4);
  uint16_t* out = malloc(n * 2);
  if (!LK_CHECK(in && out)) goto done;
  for (size_t i = 0; i < nsweep; ++i) in[i] = (uint32_t)(i << d->shift) + 0x2b7u;
  for (size_t k = 0; k < nkept; ++k)
    for (uint32_t j = 0; j < 3; ++j)
      in[nsweep + 3 * k + j] = ((uint32_t)k << drop) | (half_pt - 1u + j);
  if (!launch(d, d->prog, bf16 ? "nm_f2b" : "nm_f2h", n, "rwu", in, n * 4, out, n * 2,
              (uint32_t)n))
    goto done;
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    float f = u2f(in[i]);
    uint16_t got = out[i], want;
    uint16_t sign = (uint16_t)((in[i] >> 16) & 0x8000u);
    bool ok;
    if (isnan(f)) {
      /* any NaN of the same sign */
      ok = bf16 ? ((got & 0x7f80u) == 0x7f80u && (got & 0x7fu) && (got & 0x8000u) == sign)
                : ((got & 0x7c00u) == 0x7c00u && (got & 0x3ffu) && (got & 0x8000u) == sign);
      want = bf16 ? (uint16_t)(sign | 0x7fc0u) : (uint16_t)(sign | 0x7e00u);
    } else {
      double r = bf16 ? ref_round(fabs((double)f), 7, -126, 127)
                      : ref_round(fabs((double)f), 10, -14, 15);
      want = (uint16_t)(sign | (bf16 ? encode_bf16(r) : encode_half(r)));
      ok = got == want;
    }
    if (!ok && bad++ < 8)
      CHECKF(0, "%s: float_to_%s(%a = 0x%08x) = 0x%04x, expected 0x%04x", d->info.uri,
                   bf16 ? "bf16" : "half", (double)f, in[i], got, want);
  }
  CHECKF(bad == 0, "%s: %zu of %zu float_to_%s results wrong", d->info.uri, bad, n,
               bf16 ? "bf16" : "half");
  /* conversions are part of the identity check too */
  if (!bf16) {
    hash_common(out, 2, nsweep, d->shift, 3 * nkept, d->hash_cv);
    d->hashed_cv = true;
  }
done:
  free(in);
  free(out);
}

/* ==== (d) Philox =========================================================== */

static void test_philox(ndev_t* d) {
  /* Random123 known-answer vectors for philox4x32-10: key, counter, result */
  static const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u},
      {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du,
       0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu},
      {0xa4093822u, 0x299f31d0u, 0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xd16cfe09u,
       0x94fdccebu, 0x5001e420u, 0x24126ea1u},
  };
  uint32_t in[18], out[12];
  for (int v = 0; v < 3; ++v)
    for (int j = 0; j < 6; ++j) in[6 * v + j] = kat[v][j];
  if (!launch(d, d->prog, "nm_philox", 3, "rwu", in, sizeof in, out, sizeof out, (uint32_t)3))
    return;
  for (int v = 0; v < 3; ++v)
    for (int j = 0; j < 4; ++j)
      CHECKF(out[4 * v + j] == kat[v][6 + j],
                   "%s: philox4x32_10 vector %d word %d = 0x%08x, expected 0x%08x", d->info.uri,
                   v, j, out[4 * v + j], kat[v][6 + j]);

  /* unit float: exactly (u >> 8) * 2^-24, always in [0, 1) */
  enum { NU = 4096 };
  static uint32_t uin[NU], uout[NU];
  const uint32_t fixed[] = {0u, 1u, 255u, 256u, 0x80000000u, 0xffffffffu, 0xffffff00u, 0x7fffffffu};
  g_rng = 42;
  for (uint32_t i = 0; i < NU; ++i)
    uin[i] = i < 8 ? fixed[i] : (uint32_t)(rng_next() >> 32);
  if (!launch(d, d->prog, "nm_unit", NU, "rwu", uin, sizeof uin, uout, sizeof uout, (uint32_t)NU))
    return;
  for (uint32_t i = 0; i < NU; ++i) {
    float want = (float)(uin[i] >> 8) * 0x1p-24f;
    float got = u2f(uout[i]);
    if (!LK_CHECK_MSG(f2u(got) == f2u(want) && got >= 0.0f && got < 1.0f,
                      "%s: uint_to_unit_float(0x%08x) = %a, expected %a", d->info.uri, uin[i],
                      got, want))
      break;
  }
}

/* ==== macros =============================================================== */

static void test_macros(ndev_t* d) {
  enum { NM = 2048 };
  static uint32_t in[NM], det[7 * NM], nondet[7 * NM], bi[7 * NM], lk[7 * NM];
  g_rng = 7;
  for (uint32_t i = 0; i < NM; ++i) in[i] = f2u((float)(-12.0 + 24.0 * rng_unit()));
  in[0] = f2u(0.0f);
  in[1] = f2u(INFINITY);
  in[2] = f2u(NAN);
  if (!launch(d, d->prog_det, "nm_macros", NM, "rwu", in, sizeof in, det, sizeof det,
              (uint32_t)NM) ||
      !launch(d, d->prog, "nm_macros", NM, "rwu", in, sizeof in, nondet, sizeof nondet,
              (uint32_t)NM) ||
      !launch(d, d->prog, "nm_builtins", NM, "rwu", in, sizeof in, bi, sizeof bi, (uint32_t)NM))
    return;
  /* the lk_ functions, through the sweep kernels */
  static uint32_t tmp[NM], ys[NM];
  for (int fn = 0; fn < F_POW; ++fn) {
    static const int slot[F_POW] = {0, 1, 2, 3, 5, 6};
    if (!launch(d, d->prog, "nm_f1", NM, "rwiu", in, sizeof in, tmp, sizeof tmp, (int32_t)fn,
                (uint32_t)NM))
      return;
    for (uint32_t i = 0; i < NM; ++i) lk[7 * i + slot[fn]] = tmp[i];
  }
  for (uint32_t i = 0; i < NM; ++i) ys[i] = f2u(1.5f);
  if (!launch(d, d->prog, "nm_pow", NM, "rrwu", in, sizeof in, ys, sizeof ys, tmp, sizeof tmp,
              (uint32_t)NM))
    return;
  for (uint32_t i = 0; i < NM; ++i) lk[7 * i + 4] = tmp[i];
  size_t bad_det = 0, bad_nd = 0;
  for (size_t i = 0; i < 7 * (size_t)NM; ++i) {
    if (det[i] != lk[i] && bad_det++ < 4)
      CHECKF(0, "%s: with LK_DETERMINISTIC macro %zu of x=%a gave 0x%08x, lk_ gave 0x%08x",
                   d->info.uri, i % 7, (double)u2f(in[i / 7]), det[i], lk[i]);
    bool both_nan = isnan(u2f(nondet[i])) && isnan(u2f(bi[i]));
    if (nondet[i] != bi[i] && !both_nan && bad_nd++ < 4)
      CHECKF(0, "%s: without LK_DETERMINISTIC macro %zu of x=%a gave 0x%08x, builtin 0x%08x",
                   d->info.uri, i % 7, (double)u2f(in[i / 7]), nondet[i], bi[i]);
  }
}

/* ==== (e) identity across devices ========================================== */

static void print_hash_row(const char* what, bool ok_any, char (*hashes)[65], const bool* have) {
  (void)ok_any;
  printf("  %-12s", what);
  for (uint32_t k = 0; k < g_ndev; ++k) printf(" %-18.16s", have[k] ? hashes[k] : "-");
  printf("\n");
}

static void test_identity(void) {
  uint32_t nok = 0;
  for (uint32_t k = 0; k < g_ndev; ++k) nok += g_dev[k].ok;
  printf("bitwise identity (first 16 hex digits of SHA-256 of each function's outputs on the "
         "common inputs):\n  %-12s", "function");
  for (uint32_t k = 0; k < g_ndev; ++k) printf(" %-18s", g_dev[k].info.uri);
  printf("\n");
  int compared = 0;
  for (int pass = 0; pass < 3; ++pass) {
    int nf = pass == 2 ? 1 : F_COUNT;
    for (int fn = 0; fn < nf; ++fn) {
      char hashes[MAX_DEV][65];
      bool have[MAX_DEV];
      const char* first = NULL;
      const char* first_uri = NULL;
      for (uint32_t k = 0; k < g_ndev; ++k) {
        ndev_t* d = &g_dev[k];
        const char* h = pass == 0 ? d->hash[fn] : pass == 1 ? d->hash_d[fn] : d->hash_cv;
        have[k] = pass == 0 ? d->hashed[fn] : pass == 1 ? d->hashed_d[fn] : d->hashed_cv;
        memcpy(hashes[k], h, 65);
        if (!have[k]) continue;
        if (!first) {
          first = h;
          first_uri = d->info.uri;
        } else {
          compared++;
          CHECKF(strcmp(first, h) == 0, "%s%s: %s gives %.16s, %s gives %.16s",
                       pass == 1 ? "double " : "", pass == 2 ? "float_to_half" : kFnName[fn],
                       first_uri, first, d->info.uri, h);
        }
      }
      char label[32];
      snprintf(label, sizeof label, "%s%s", pass == 1 ? "f64 " : "",
               pass == 2 ? "f32->f16" : kFnName[fn]);
      print_hash_row(label, first != NULL, hashes, have);
    }
  }
  if (nok < 2) lk_test_skip("only %u device(s) ran the library: nothing to compare", nok);
  else CHECKF(compared > 0, "no hashes to compare");
}

/* ==== main ================================================================= */

static void setup_device(ndev_t* d, uint32_t index) {
  memset(d, 0, sizeof *d);
  if (!API(lightos_device_get(index, &d->dev))) return;
  if (!API(lightos_device_get_info(d->dev, &d->info))) return;
  d->shift = d->info.type == LIGHTOS_DEVICE_TYPE_CPU ? 10 : 12;
  if (!API(lightos_context_create_for_device(d->dev, 0, &d->ctx))) return;
  size_t la = strlen(lk_cl_lk_math), lb = strlen(kTestSrc);
  char* src = malloc(la + lb + 1);
  if (!LK_CHECK(src)) return;
  memcpy(src, lk_cl_lk_math, la);
  memcpy(src + la, kTestSrc, lb + 1);
  for (int v = 0; v < 2; ++v) {
    lightos_program_t p = NULL;
    if (!API(lightos_program_create(d->ctx, src, 0, &p))) break;
    lightos_status_t s = lightos_program_build(p, v ? "-D LK_DETERMINISTIC" : NULL);
    if (s != LIGHTOS_SUCCESS) {
      snprintf(d->skip, sizeof d->skip, "building the library on %s: %s (%s)", d->info.uri,
               lightos_status_string(s), lightos_last_error()->message);
      if (s == LIGHTOS_UNAVAILABLE) {
        lk_test_skip("%s", d->skip);
      } else {
        char log[4000] = "";
        lightos_program_build_log(p, log, sizeof log, NULL);
        CHECKF(0, "%s\n%s", d->skip, log);
      }
      lightos_program_release(p);
      break;
    }
    if (v) d->prog_det = p;
    else d->prog = p;
  }
  free(src);
  d->ok = d->prog && d->prog_det;
}

static void teardown_device(ndev_t* d) {
  if (d->prog) lightos_program_release(d->prog);
  if (d->prog_det) lightos_program_release(d->prog_det);
  if (d->ctx) lightos_context_release(d->ctx);
}

#define RUN_DEV(d, what, call)                                          \
  do {                                                                  \
    char nm_[128];                                                      \
    snprintf(nm_, sizeof nm_, "%s/%s", (d)->info.uri, what);            \
    if (!(d)->ok) {                                                     \
      LK_RUN_NAMED(nm_, lk_test_skip("%s", (d)->skip[0] ? (d)->skip : "no context")); \
    } else {                                                            \
      LK_RUN_NAMED(nm_, call);                                          \
    }                                                                   \
  } while (0)

int main(void) {
  lk_t.program = "test_numerics";
  double t0 = (double)clock();
  uint32_t count = 0;
  LK_RUN_NAMED("device_count", LK_CHECK(lightos_device_count(&count) == LIGHTOS_SUCCESS));
  if (count > MAX_DEV) count = MAX_DEV;
  g_ndev = count;
  g_common_shift = 10;
  for (uint32_t k = 0; k < g_ndev; ++k) {
    char nm[64];
    snprintf(nm, sizeof nm, "device%u/build", k);
    LK_RUN_NAMED(nm, setup_device(&g_dev[k], k));
    if (g_dev[k].shift > g_common_shift) g_common_shift = g_dev[k].shift;
  }
  for (uint32_t k = 0; k < g_ndev; ++k) {
    ndev_t* d = &g_dev[k];
    printf("%s (%s): float sweeps, %zu bit patterns + %u uniform points per function\n",
           d->info.uri, d->info.name, (size_t)1 << (32 - (d->shift ? d->shift : 10)), NUNIF);
    for (int fn = 0; fn < F_POW; ++fn) {
      char w[32];
      snprintf(w, sizeof w, "sweep_%sf", kFnName[fn]);
      RUN_DEV(d, w, test_sweep_f32(d, fn));
    }
    RUN_DEV(d, "sweep_powf", test_sweep_powf(d));
    RUN_DEV(d, "special_f32", test_special_f32(d));
    RUN_DEV(d, "half_to_float", test_half_to_float(d));
    RUN_DEV(d, "bf16_to_float", test_bf16_to_float(d));
    RUN_DEV(d, "float_to_half", test_from_float(d, false));
    RUN_DEV(d, "float_to_bf16", test_from_float(d, true));
    RUN_DEV(d, "philox", test_philox(d));
    RUN_DEV(d, "macros", test_macros(d));
    if (d->ok && !d->info.fp64) {
      char nm[128];
      snprintf(nm, sizeof nm, "%s/fp64", d->info.uri);
      LK_RUN_NAMED(nm, lk_test_skip("%s has no fp64", d->info.uri));
      continue;
    }
    printf("%s: double sweeps\n", d->info.uri);
    for (int fn = 0; fn < F_POW; ++fn) {
      char w[32];
      snprintf(w, sizeof w, "sweep_%s", kFnName[fn]);
      RUN_DEV(d, w, test_sweep_f64(d, fn));
    }
    RUN_DEV(d, "sweep_pow", test_sweep_pow64(d));
    RUN_DEV(d, "special_f64", test_special_f64(d));
  }
  LK_RUN_NAMED("identity", test_identity());

  printf("max ulp error (float | double):\n  %-8s", "function");
  for (uint32_t k = 0; k < g_ndev; ++k) printf(" %-22s", g_dev[k].info.uri);
  printf("\n");
  for (int fn = 0; fn < F_COUNT; ++fn) {
    printf("  %-8s", kFnName[fn]);
    for (uint32_t k = 0; k < g_ndev; ++k) {
      char a[16] = "-", b[16] = "-";
      if (g_dev[k].ran[fn]) snprintf(a, sizeof a, "%.3f", g_dev[k].maxulp[fn]);
      if (g_dev[k].ran_d[fn]) snprintf(b, sizeof b, "%.3f", g_dev[k].maxulp_d[fn]);
      printf(" %8s | %-11s", a, b);
    }
    printf("\n");
  }
  for (uint32_t k = 0; k < g_ndev; ++k) teardown_device(&g_dev[k]);
  printf("cpu time %.1f s\n", ((double)clock() - t0) / CLOCKS_PER_SEC);
  return lk_test_finish();
}
