/* LightOS kernel language: the CPU prelude.
 *
 * This text is prepended (by src/kernels/cpu_codegen.c) to every program
 * built for the CPU backend; the whole is compiled as C11 by the system C
 * compiler (gcc or clang) with
 *     -std=c11 -O3 -fno-fast-math -ffp-contract=off -fno-math-errno -fwrapv
 *     -fsigned-char -fvisibility=hidden -fPIC -shared ... -lm
 * It maps the OpenCL C 1.2 subset of docs/kernel-language.md onto C:
 * address-space keywords become nothing (or const), work-item functions
 * read the locals of the function generated for each kernel, builtins are
 * type-generic macros (_Generic) over static inline functions, atomics use
 * the __atomic builtins.  Everything here is defined for every input (no
 * undefined behaviour in the builtins themselves).
 *
 * It must compile without a warning under -Wall -Wextra with gcc >= 12 and
 * clang >= 14 even when the kernel source uses none of it.  Names starting
 * with lk_ / LK_ are reserved for the implementation.
 *
 * The generated code provides, in every kernel function:
 *   lk_L                    const lk_cpu_launch_t* (see cpu_abi.h)
 *   lk_gx, lk_gy, lk_gz     this work-group's id
 *   lk_nx, lk_ny, lk_nz     this work-group's actual size (the last group in
 *                           a dimension may be smaller than local_size)
 * and, for each work-item (in item kernels: parameters; in kernels with item
 * blocks: the loop variables of LIGHTOS_ITEMS):
 *   lk_lx, lk_ly, lk_lz     local id;  lk_li  linear local id (item
 *                           blocks only; 0 in item kernels).
 * and lk_pn, the length of a LIGHTOS_PRIVATE array.
 */
#ifndef LIGHTOS_PRELUDE_CPU_H
#define LIGHTOS_PRELUDE_CPU_H 1

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* OpenCL C code legitimately carries pragmas (OPENCL EXTENSION, unroll),
 * attributes and `__constant const` spellings that a C compiler flags. */
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#pragma GCC diagnostic ignored "-Wattributes"
#ifdef __clang__
#pragma clang diagnostic ignored "-Wunknown-pragmas"
#pragma clang diagnostic ignored "-Wunknown-attributes"
#pragma clang diagnostic ignored "-Wignored-attributes"
#pragma clang diagnostic ignored "-Wduplicate-decl-specifier"
#pragma clang diagnostic ignored "-Wkeyword-macro" /* `inline`, below */
#pragma STDC FP_CONTRACT OFF
#endif

#define __LIGHTOS__ 1
#define LIGHTOS_TARGET_CPU 1
/* What an OpenCL device would report; doubles and 64-bit atomics always work. */
#define cl_khr_fp64 1
#define cl_khr_int64_base_atomics 1
#define cl_khr_int64_extended_atomics 1
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define __ENDIAN_LITTLE__ 1
#endif

_Static_assert(sizeof(long) == 8, "LightOS CPU kernels need a 64-bit long (LP64)");
_Static_assert(sizeof(int) == 4 && CHAR_BIT == 8, "LightOS CPU kernels need 32-bit int");

/* Every helper is static, inline and marked unused: clang warns about
 * unused static inline functions of the main file, and the prelude is part
 * of the main file. */
#define LK_INLINE static inline __attribute__((__unused__))

/* ---- Types ------------------------------------------------------------- */

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;
typedef uint cl_mem_fence_flags;
__extension__ typedef __int128 lk_i128_t;
__extension__ typedef unsigned __int128 lk_u128_t;

/* ---- Address spaces and qualifiers ------------------------------------- */

#define __global
#define global
#define __local
#define local
#define __private
#define private
#define __constant const
#define constant const
#define __kernel
#define kernel

/* ---- Work-item functions ----------------------------------------------- */

LK_INLINE size_t lk_dim_(ulong d, size_t v0, size_t v1, size_t v2, size_t other) {
  return d == 0 ? v0 : d == 1 ? v1 : d == 2 ? v2 : other;
}
#define get_work_dim() ((uint)lk_L->work_dim)
#define get_global_size(d) \
  lk_dim_((ulong)(d), lk_L->global_size[0], lk_L->global_size[1], lk_L->global_size[2], 1)
#define get_global_id(d)                                                            \
  lk_dim_((ulong)(d), lk_L->global_offset[0] + lk_gx * lk_L->local_size[0] + lk_lx, \
          lk_L->global_offset[1] + lk_gy * lk_L->local_size[1] + lk_ly,             \
          lk_L->global_offset[2] + lk_gz * lk_L->local_size[2] + lk_lz, 0)
#define get_local_id(d) lk_dim_((ulong)(d), lk_lx, lk_ly, lk_lz, 0)
/* The actual size of this work-group (smaller for the last group of a
 * dimension when the global size is not a multiple of the local size). */
#define get_local_size(d) lk_dim_((ulong)(d), lk_nx, lk_ny, lk_nz, 1)
/* The local size given at launch (the same for every group). */
#define get_enqueued_local_size(d) \
  lk_dim_((ulong)(d), lk_L->local_size[0], lk_L->local_size[1], lk_L->local_size[2], 1)
#define get_num_groups(d) \
  lk_dim_((ulong)(d), lk_L->num_groups[0], lk_L->num_groups[1], lk_L->num_groups[2], 1)
#define get_group_id(d) lk_dim_((ulong)(d), lk_gx, lk_gy, lk_gz, 0)
#define get_global_offset(d) \
  lk_dim_((ulong)(d), lk_L->global_offset[0], lk_L->global_offset[1], lk_L->global_offset[2], 0)

/* ---- Item blocks ------------------------------------------------------- */

/* Runs the block once per work-item of the group (x fastest).  The
 * innermost one-trip loop gives every item its linear id lk_li, and makes
 * both `continue` and `break` in the block move on to the next item. */
#define LIGHTOS_ITEMS                                       \
  for (size_t lk_lz = 0; lk_lz < lk_nz; ++lk_lz)            \
    for (size_t lk_ly = 0; lk_ly < lk_ny; ++lk_ly)          \
      for (size_t lk_lx = 0; lk_lx < lk_nx; ++lk_lx)        \
        for (size_t lk_li = (lk_lz * lk_ny + lk_ly) * lk_nx + lk_lx, lk_once_ = 1; lk_once_; \
             lk_once_ = 0, (void)lk_li)
/* One value per work-item of the group, living across barriers: lk_pn is
 * the group's item count in kernels with item blocks, and the constant 1
 * (with lk_li the constant 0) in kernels without, where a private value
 * is just a variable. */
#define LIGHTOS_PRIVATE(T, name) T name[lk_pn]
#define LIGHTOS_P(name) ((name)[lk_li])

/* ---- Synchronisation --------------------------------------------------- */

#define CLK_LOCAL_MEM_FENCE 1u
#define CLK_GLOBAL_MEM_FENCE 2u
/* The items of a group run one after another on one thread, so a barrier
 * between item blocks has nothing left to do. */
#define barrier(flags) ((void)(flags))
#define mem_fence(flags) ((void)(flags))
#define read_mem_fence(flags) ((void)(flags))
#define write_mem_fence(flags) ((void)(flags))

/* ---- Constants --------------------------------------------------------- */

#ifndef MAXFLOAT
#define MAXFLOAT FLT_MAX
#endif
#define M_E_F 2.71828182845904523536f
#define M_LOG2E_F 1.44269504088896340736f
#define M_LOG10E_F 0.434294481903251827651f
#define M_LN2_F 0.693147180559945309417f
#define M_LN10_F 2.30258509299404568402f
#define M_PI_F 3.14159265358979323846f
#define M_PI_2_F 1.57079632679489661923f
#define M_PI_4_F 0.785398163397448309616f
#define M_1_PI_F 0.318309886183790671538f
#define M_2_PI_F 0.636619772367581343076f
#define M_2_SQRTPI_F 1.12837916709551257390f
#define M_SQRT2_F 1.41421356237309504880f
#define M_SQRT1_2_F 0.707106781186547524401f
#ifndef M_E
#define M_E 2.71828182845904523536
#define M_LOG2E 1.44269504088896340736
#define M_LOG10E 0.434294481903251827651
#define M_LN2 0.693147180559945309417
#define M_LN10 2.30258509299404568402
#define M_PI 3.14159265358979323846
#define M_PI_2 1.57079632679489661923
#define M_PI_4 0.785398163397448309616
#define M_1_PI 0.318309886183790671538
#define M_2_PI 0.636619772367581343076
#define M_2_SQRTPI 1.12837916709551257390
#define M_SQRT2 1.41421356237309504880
#define M_SQRT1_2 0.707106781186547524401
#endif

/* ---- Type-generic dispatch helpers ------------------------------------- */

/* float -> fn##f, anything else -> fn (double), like <tgmath.h>. */
#define LK_M1(fn, x) _Generic((x), float: fn##f, default: fn)(x)
#define LK_M2(fn, x, y) _Generic((x) + (y), float: fn##f, default: fn)((x), (y))
#define LK_M3(fn, x, y, z) _Generic((x) + (y) + (z), float: fn##f, default: fn)((x), (y), (z))
/* Own functions lk_<fn>_f / lk_<fn>_d. */
#define LK_F1(fn, x) _Generic((x), float: fn##_f, default: fn##_d)(x)
#define LK_F2(fn, x, y) _Generic((x) + (y), float: fn##_f, default: fn##_d)((x), (y))
#define LK_F3(fn, x, y, z) \
  _Generic((x) + (y) + (z), float: fn##_f, default: fn##_d)((x), (y), (z))

/* Integer functions on the exact type of x (8/16/32/64-bit, signed or not). */
#if CHAR_MIN < 0
#define LK_CHAR_(fn) fn##_sc
#else
#define LK_CHAR_(fn) fn##_uc
#endif
#define LK_IGEN(fn, x)                                                                \
  _Generic((x), char: LK_CHAR_(fn), signed char: fn##_sc, unsigned char: fn##_uc,     \
           short: fn##_ss, unsigned short: fn##_us, int: fn##_si, unsigned int: fn##_ui, \
           long: fn##_sl, unsigned long: fn##_ul, long long: fn##_sl,                 \
           unsigned long long: fn##_ul)
/* Numeric functions on the promoted type of an expression. */
#define LK_NGEN(fn, e)                                                           \
  _Generic((e), int: fn##_si, unsigned int: fn##_ui, long: fn##_sl,              \
           unsigned long: fn##_ul, long long: fn##_sl, unsigned long long: fn##_ul, \
           float: fn##_f, double: fn##_d)

/* (suffix, type, unsigned type, bits, min, max) */
#define LK_SINTS(X)                                   \
  X(sc, signed char, uchar, 8, SCHAR_MIN, SCHAR_MAX)  \
  X(ss, short, ushort, 16, SHRT_MIN, SHRT_MAX)        \
  X(si, int, uint, 32, INT_MIN, INT_MAX)              \
  X(sl, long, ulong, 64, LONG_MIN, LONG_MAX)
#define LK_UINTS(X)                       \
  X(uc, uchar, uchar, 8, 0, UCHAR_MAX)    \
  X(us, ushort, ushort, 16, 0, USHRT_MAX) \
  X(ui, uint, uint, 32, 0, UINT_MAX)      \
  X(ul, ulong, ulong, 64, 0, ULONG_MAX)

/* ---- Bit reinterpretation ---------------------------------------------- */

LK_INLINE uint lk_bits_f(float x) { uint u; memcpy(&u, &x, sizeof u); return u; }
LK_INLINE ulong lk_bits_d(double x) { ulong u; memcpy(&u, &x, sizeof u); return u; }
LK_INLINE float lk_float_of(uint u) { float x; memcpy(&x, &u, sizeof x); return x; }
LK_INLINE double lk_double_of(ulong u) { double x; memcpy(&x, &u, sizeof x); return x; }
LK_INLINE signed char lk_as_sc(uchar x) { return (signed char)x; }
LK_INLINE uchar lk_as_uc(uchar x) { return x; }
LK_INLINE short lk_as_ss(ushort x) { return (short)x; }
LK_INLINE ushort lk_as_us(ushort x) { return x; }
LK_INLINE int lk_as_si(uint x) { return (int)x; }
LK_INLINE uint lk_as_ui(uint x) { return x; }
LK_INLINE long lk_as_sl(ulong x) { return (long)x; }
LK_INLINE ulong lk_as_ul(ulong x) { return x; }
LK_INLINE float lk_as_f(float x) { return x; }
LK_INLINE double lk_as_d(double x) { return x; }
LK_INLINE int lk_as_si_f(float x) { return (int)lk_bits_f(x); }
LK_INLINE long lk_as_sl_d(double x) { return (long)lk_bits_d(x); }

#define LK_AS8(fn, x) \
  _Generic((x), char: fn, signed char: fn, unsigned char: fn)(x)
#define LK_AS16(fn, x) _Generic((x), short: fn, unsigned short: fn)(x)
#define as_char(x) LK_AS8(lk_as_sc, x)
#define as_uchar(x) LK_AS8(lk_as_uc, x)
#define as_short(x) LK_AS16(lk_as_ss, x)
#define as_ushort(x) LK_AS16(lk_as_us, x)
#define as_int(x) _Generic((x), int: lk_as_si, unsigned int: lk_as_si, float: lk_as_si_f)(x)
#define as_uint(x) _Generic((x), int: lk_as_ui, unsigned int: lk_as_ui, float: lk_bits_f)(x)
#define as_float(x) \
  _Generic((x), int: lk_float_of, unsigned int: lk_float_of, float: lk_as_f)(x)
#define LK_AS64(fd, fi, x)                                                    \
  _Generic((x), long: fi, unsigned long: fi, long long: fi, unsigned long long: fi, \
           double: fd)(x)
#define as_long(x) LK_AS64(lk_as_sl_d, lk_as_sl, x)
#define as_ulong(x) LK_AS64(lk_bits_d, lk_as_ul, x)
#define as_double(x) LK_AS64(lk_as_d, lk_double_of, x)
#define as_size_t(x) as_ulong(x)

/* ---- Conversions ------------------------------------------------------- */

/* Integer destinations.  From integers: modular without _sat, clamped with
 * _sat.  From floating point (rounding toward zero): always clamped to the
 * destination's range with NaN -> 0, so out-of-range values are defined. */
#define LK_DEF_CVT(D, T, LO, HI, FLO, FHI)                                            \
  LK_INLINE T lk_cvt_##D##_s(long long v) { return (T)v; }                        \
  LK_INLINE T lk_cvt_##D##_u(unsigned long long v) { return (T)v; }               \
  LK_INLINE T lk_cvt_##D##_sat_s(long long v) {                                   \
    return v < (long long)(LO) ? (T)(LO)                                             \
           : (v > 0 && (unsigned long long)v > (unsigned long long)(HI)) ? (T)(HI)   \
                                                                          : (T)v;    \
  }                                                                                  \
  LK_INLINE T lk_cvt_##D##_sat_u(unsigned long long v) {                          \
    return v > (unsigned long long)(HI) ? (T)(HI) : (T)v;                             \
  }                                                                                  \
  LK_INLINE T lk_cvt_##D##_sat_f(float x) {                                       \
    return !(x > (float)(FLO)) ? (x != x ? (T)0 : (T)(LO))                           \
           : x >= (float)(FHI) ? (T)(HI)                                              \
                               : (T)x;                                                \
  }                                                                                  \
  LK_INLINE T lk_cvt_##D##_sat_d(double x) {                                      \
    return !(x > (double)(FLO)) ? (x != x ? (T)0 : (T)(LO))                          \
           : x >= (double)(FHI) ? (T)(HI)                                             \
                                : (T)x;                                               \
  }                                                                                  \
  LK_INLINE T lk_cvt_##D##_f(float x) { return lk_cvt_##D##_sat_f(x); }           \
  LK_INLINE T lk_cvt_##D##_d(double x) { return lk_cvt_##D##_sat_d(x); }

/* FLO: largest value that saturates low; FHI: smallest that saturates high
 * (both exact powers of two, or -1). */
LK_DEF_CVT(char, signed char, SCHAR_MIN, SCHAR_MAX, -128.0, 128.0)
LK_DEF_CVT(uchar, uchar, 0, UCHAR_MAX, -1.0, 256.0)
LK_DEF_CVT(short, short, SHRT_MIN, SHRT_MAX, -32768.0, 32768.0)
LK_DEF_CVT(ushort, ushort, 0, USHRT_MAX, -1.0, 65536.0)
LK_DEF_CVT(int, int, INT_MIN, INT_MAX, -2147483648.0, 2147483648.0)
LK_DEF_CVT(uint, uint, 0, UINT_MAX, -1.0, 4294967296.0)
LK_DEF_CVT(long, long, LONG_MIN, LONG_MAX, -9223372036854775808.0, 9223372036854775808.0)
LK_DEF_CVT(ulong, ulong, 0, ULONG_MAX, -1.0, 18446744073709551616.0)

#define LK_CVT(D, x)                                                                   \
  _Generic((x), float: lk_cvt_##D##_f, double: lk_cvt_##D##_d, char: lk_cvt_##D##_s,   \
           signed char: lk_cvt_##D##_s, short: lk_cvt_##D##_s, int: lk_cvt_##D##_s,     \
           long: lk_cvt_##D##_s, long long: lk_cvt_##D##_s, _Bool: lk_cvt_##D##_u,      \
           unsigned char: lk_cvt_##D##_u, unsigned short: lk_cvt_##D##_u,               \
           unsigned int: lk_cvt_##D##_u, unsigned long: lk_cvt_##D##_u,                 \
           unsigned long long: lk_cvt_##D##_u)(x)
#define convert_char(x) LK_CVT(char, x)
#define convert_char_sat(x) LK_CVT(char_sat, x)
#define convert_uchar(x) LK_CVT(uchar, x)
#define convert_uchar_sat(x) LK_CVT(uchar_sat, x)
#define convert_short(x) LK_CVT(short, x)
#define convert_short_sat(x) LK_CVT(short_sat, x)
#define convert_ushort(x) LK_CVT(ushort, x)
#define convert_ushort_sat(x) LK_CVT(ushort_sat, x)
#define convert_int(x) LK_CVT(int, x)
#define convert_int_sat(x) LK_CVT(int_sat, x)
#define convert_uint(x) LK_CVT(uint, x)
#define convert_uint_sat(x) LK_CVT(uint_sat, x)
#define convert_long(x) LK_CVT(long, x)
#define convert_long_sat(x) LK_CVT(long_sat, x)
#define convert_ulong(x) LK_CVT(ulong, x)
#define convert_ulong_sat(x) LK_CVT(ulong_sat, x)
/* Floating destinations: round to nearest even (C's conversion). */
#define convert_float(x) ((float)(x))
#define convert_double(x) ((double)(x))

/* ---- Math -------------------------------------------------------------- */

#define acos(x) LK_M1(acos, x)
#define acosh(x) LK_M1(acosh, x)
#define asin(x) LK_M1(asin, x)
#define asinh(x) LK_M1(asinh, x)
#define atan(x) LK_M1(atan, x)
#define atan2(y, x) LK_M2(atan2, y, x)
#define atanh(x) LK_M1(atanh, x)
#define cbrt(x) LK_M1(cbrt, x)
#define ceil(x) LK_M1(ceil, x)
#define copysign(x, y) LK_M2(copysign, x, y)
#define cos(x) LK_M1(cos, x)
#define cosh(x) LK_M1(cosh, x)
#define erf(x) LK_M1(erf, x)
#define erfc(x) LK_M1(erfc, x)
#define exp(x) LK_M1(exp, x)
#define exp2(x) LK_M1(exp2, x)
#define expm1(x) LK_M1(expm1, x)
#define fabs(x) LK_M1(fabs, x)
#define fdim(x, y) LK_M2(fdim, x, y)
#define floor(x) LK_M1(floor, x)
#define fma(a, b, c) LK_M3(fma, a, b, c)
#define fmod(x, y) LK_M2(fmod, x, y)
#define hypot(x, y) LK_M2(hypot, x, y)
#define ldexp(x, n) _Generic((x), float: ldexpf, default: ldexp)((x), (int)(n))
#define lgamma(x) LK_M1(lgamma, x)
#define log(x) LK_M1(log, x)
#define log2(x) LK_M1(log2, x)
#define log10(x) LK_M1(log10, x)
#define log1p(x) LK_M1(log1p, x)
#define logb(x) LK_M1(logb, x)
#define nextafter(x, y) LK_M2(nextafter, x, y)
#define pow(x, y) LK_M2(pow, x, y)
#define remainder(x, y) LK_M2(remainder, x, y)
#define rint(x) LK_M1(rint, x)
#define round(x) LK_M1(round, x)
#define sin(x) LK_M1(sin, x)
#define sinh(x) LK_M1(sinh, x)
#define sqrt(x) LK_M1(sqrt, x)
#define tan(x) LK_M1(tan, x)
#define tanh(x) LK_M1(tanh, x)
#define tgamma(x) LK_M1(tgamma, x)
#define trunc(x) LK_M1(trunc, x)

/* fmax/fmin (and max/min/clamp on floating point): IEEE maxNum/minNum, a
 * NaN operand is ignored; written inline so that loops vectorise. */
LK_INLINE float lk_fmax_f(float x, float y) { return (x < y || x != x) ? y : x; }
LK_INLINE double lk_fmax_d(double x, double y) { return (x < y || x != x) ? y : x; }
LK_INLINE float lk_fmin_f(float x, float y) { return (y < x || x != x) ? y : x; }
LK_INLINE double lk_fmin_d(double x, double y) { return (y < x || x != x) ? y : x; }
#define fmax(x, y) LK_F2(lk_fmax, x, y)
#define fmin(x, y) LK_F2(lk_fmin, x, y)

/* mad: a*b+c with two roundings (never fused; needs -ffp-contract=off). */
LK_INLINE float lk_mad_f(float a, float b, float c) { return a * b + c; }
LK_INLINE double lk_mad_d(double a, double b, double c) { return a * b + c; }
#define mad(a, b, c) LK_F3(lk_mad, a, b, c)

LK_INLINE float lk_exp10_f(float x) { return powf(10.0f, x); }
LK_INLINE double lk_exp10_d(double x) { return pow(10.0, x); }
#define exp10(x) LK_F1(lk_exp10, x)

LK_INLINE float lk_pown_f(float x, int n) { return (float)pow((double)x, (double)n); }
LK_INLINE double lk_pown_d(double x, int n) { return pow(x, (double)n); }
#define pown(x, n) _Generic((x), float: lk_pown_f, default: lk_pown_d)((x), (int)(n))

/* powr: x^y for x >= 0 (NaN for x < 0, 0^0, inf^0, 1^inf, NaN operands). */
LK_INLINE float lk_powr_f(float x, float y) {
  if (x != x || y != y || x < 0.0f) return NAN;
  if (y == 0.0f && (x == 0.0f || x == INFINITY)) return NAN;
  if (x == 1.0f && (y == INFINITY || y == -INFINITY)) return NAN;
  return powf(fabsf(x), y);
}
LK_INLINE double lk_powr_d(double x, double y) {
  if (x != x || y != y || x < 0.0) return (double)NAN;
  if (y == 0.0 && (x == 0.0 || x == (double)INFINITY)) return (double)NAN;
  if (x == 1.0 && (y == (double)INFINITY || y == -(double)INFINITY)) return (double)NAN;
  return pow(fabs(x), y);
}
#define powr(x, y) LK_F2(lk_powr, x, y)

LK_INLINE float lk_rsqrt_f(float x) { return 1.0f / sqrtf(x); }
LK_INLINE double lk_rsqrt_d(double x) { return 1.0 / sqrt(x); }
#define rsqrt(x) LK_F1(lk_rsqrt, x)
LK_INLINE float lk_recip_f(float x) { return 1.0f / x; }
LK_INLINE double lk_recip_d(double x) { return 1.0 / x; }
LK_INLINE float lk_divide_f(float x, float y) { return x / y; }
LK_INLINE double lk_divide_d(double x, double y) { return x / y; }

/* native_* and half_*: the precise functions on the CPU. */
#define native_cos(x) cos(x)
#define native_divide(x, y) LK_F2(lk_divide, x, y)
#define native_exp(x) exp(x)
#define native_exp2(x) exp2(x)
#define native_exp10(x) exp10(x)
#define native_log(x) log(x)
#define native_log2(x) log2(x)
#define native_log10(x) log10(x)
#define native_powr(x, y) powr(x, y)
#define native_recip(x) LK_F1(lk_recip, x)
#define native_rsqrt(x) rsqrt(x)
#define native_sin(x) sin(x)
#define native_sqrt(x) sqrt(x)
#define native_tan(x) tan(x)
#define half_cos(x) cos(x)
#define half_divide(x, y) LK_F2(lk_divide, x, y)
#define half_exp(x) exp(x)
#define half_exp2(x) exp2(x)
#define half_exp10(x) exp10(x)
#define half_log(x) log(x)
#define half_log2(x) log2(x)
#define half_log10(x) log10(x)
#define half_powr(x, y) powr(x, y)
#define half_recip(x) LK_F1(lk_recip, x)
#define half_rsqrt(x) rsqrt(x)
#define half_sin(x) sin(x)
#define half_sqrt(x) sqrt(x)
#define half_tan(x) tan(x)

/* ---- Common functions -------------------------------------------------- */

LK_INLINE float lk_degrees_f(float r) { return r * 57.295779513082320876798f; }
LK_INLINE double lk_degrees_d(double r) { return r * 57.295779513082320876798; }
LK_INLINE float lk_radians_f(float d) { return d * 0.017453292519943295769237f; }
LK_INLINE double lk_radians_d(double d) { return d * 0.017453292519943295769237; }
#define degrees(x) LK_F1(lk_degrees, x)
#define radians(x) LK_F1(lk_radians, x)

LK_INLINE float lk_mix_f(float x, float y, float a) { return x + (y - x) * a; }
LK_INLINE double lk_mix_d(double x, double y, double a) { return x + (y - x) * a; }
#define mix(x, y, a) LK_F3(lk_mix, x, y, a)

/* sign: 1.0 for x > 0, -1.0 for x < 0, x itself for +-0.0, 0.0 for NaN. */
LK_INLINE float lk_sign_f(float x) {
  return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x == x ? x : 0.0f;
}
LK_INLINE double lk_sign_d(double x) {
  return x > 0.0 ? 1.0 : x < 0.0 ? -1.0 : x == x ? x : 0.0;
}
#define sign(x) LK_F1(lk_sign, x)

LK_INLINE float lk_step_f(float edge, float x) { return x < edge ? 0.0f : 1.0f; }
LK_INLINE double lk_step_d(double edge, double x) { return x < edge ? 0.0 : 1.0; }
#define step(edge, x) LK_F2(lk_step, edge, x)

LK_INLINE float lk_smoothstep_f(float e0, float e1, float x) {
  float t = lk_fmin_f(lk_fmax_f((x - e0) / (e1 - e0), 0.0f), 1.0f);
  return t * t * (3.0f - 2.0f * t);
}
LK_INLINE double lk_smoothstep_d(double e0, double e1, double x) {
  double t = lk_fmin_d(lk_fmax_d((x - e0) / (e1 - e0), 0.0), 1.0);
  return t * t * (3.0 - 2.0 * t);
}
#define smoothstep(e0, e1, x) LK_F3(lk_smoothstep, e0, e1, x)

/* min / max / clamp: integer overloads on the promoted type of the
 * arguments (as C's usual arithmetic conversions pick it), floating-point
 * overloads with fmin/fmax semantics. */
#define LK_DEF_MINMAX(s, T)                                                         \
  LK_INLINE T lk_min_##s(T x, T y) { return y < x ? y : x; }                    \
  LK_INLINE T lk_max_##s(T x, T y) { return x < y ? y : x; }                    \
  LK_INLINE T lk_clamp_##s(T x, T lo, T hi) { return lk_min_##s(lk_max_##s(x, lo), hi); }
LK_DEF_MINMAX(si, int)
LK_DEF_MINMAX(ui, uint)
LK_DEF_MINMAX(sl, long)
LK_DEF_MINMAX(ul, ulong)
LK_INLINE float lk_min_f(float x, float y) { return lk_fmin_f(x, y); }
LK_INLINE double lk_min_d(double x, double y) { return lk_fmin_d(x, y); }
LK_INLINE float lk_max_f(float x, float y) { return lk_fmax_f(x, y); }
LK_INLINE double lk_max_d(double x, double y) { return lk_fmax_d(x, y); }
LK_INLINE float lk_clamp_f(float x, float lo, float hi) {
  return lk_fmin_f(lk_fmax_f(x, lo), hi);
}
LK_INLINE double lk_clamp_d(double x, double lo, double hi) {
  return lk_fmin_d(lk_fmax_d(x, lo), hi);
}
#undef min
#undef max
#define min(x, y) LK_NGEN(lk_min, (x) + (y))((x), (y))
#define max(x, y) LK_NGEN(lk_max, (x) + (y))((x), (y))
#define clamp(x, lo, hi) LK_NGEN(lk_clamp, (x) + (lo) + (hi))((x), (lo), (hi))

/* ---- Integer functions ------------------------------------------------- */

/* Shared by every integer type (computations in the unsigned type or with
 * overflow builtins: no signed overflow anywhere). */
#define LK_DEF_INT(s, T, UT, BITS, MIN, MAX)                                        \
  LK_INLINE T lk_add_sat_##s(T x, T y) {                                        \
    T r;                                                                            \
    return __builtin_add_overflow(x, y, &r) ? (y > 0 ? (T)(MAX) : (T)(MIN)) : r;    \
  }                                                                                 \
  LK_INLINE T lk_sub_sat_##s(T x, T y) {                                        \
    T r;                                                                            \
    return __builtin_sub_overflow(x, y, &r) ? (y > 0 ? (T)(MIN) : (T)(MAX)) : r;    \
  }                                                                                 \
  LK_INLINE T lk_hadd_##s(T x, T y) {                                           \
    return (T)((x >> 1) + (y >> 1) + (x & y & 1));                                  \
  }                                                                                 \
  LK_INLINE T lk_rhadd_##s(T x, T y) {                                          \
    return (T)((x >> 1) + (y >> 1) + ((x | y) & 1));                                \
  }                                                                                 \
  LK_INLINE T lk_clz_##s(T x) {                                                 \
    ulong u = (ulong)(UT)x;                                                         \
    return (T)(u == 0 ? (BITS) : __builtin_clzl(u) - (64 - (BITS)));                \
  }                                                                                 \
  LK_INLINE T lk_popcount_##s(T x) { return (T)__builtin_popcountl((ulong)(UT)x); } \
  LK_INLINE T lk_rotate_##s(T v, T i) {                                         \
    UT u = (UT)v;                                                                   \
    uint n = (uint)((UT)i % (BITS));                                                \
    return (T)(UT)((UT)(u << n) | (UT)(u >> (((BITS) - n) % (BITS))));             \
  }
LK_SINTS(LK_DEF_INT)
LK_UINTS(LK_DEF_INT)

/* abs returns the unsigned type; abs_diff |x - y| without overflow. */
#define LK_DEF_SABS(s, T, UT, BITS, MIN, MAX)                                        \
  LK_INLINE UT lk_abs_##s(T x) { return x < 0 ? (UT)(0u - (UT)x) : (UT)x; }      \
  LK_INLINE UT lk_abs_diff_##s(T x, T y) {                                       \
    return x > y ? (UT)((UT)x - (UT)y) : (UT)((UT)y - (UT)x);                        \
  }
#define LK_DEF_UABS(s, T, UT, BITS, MIN, MAX)                                        \
  LK_INLINE UT lk_abs_##s(T x) { return x; }                                     \
  LK_INLINE UT lk_abs_diff_##s(T x, T y) { return x > y ? (UT)(x - y) : (UT)(y - x); }
LK_SINTS(LK_DEF_SABS)
LK_UINTS(LK_DEF_UABS)

/* mul_hi: the high half of the full product; mad_hi adds c (wrapping). */
LK_INLINE signed char lk_mul_hi_sc(signed char x, signed char y) { return (signed char)((x * y) >> 8); }
LK_INLINE uchar lk_mul_hi_uc(uchar x, uchar y) { return (uchar)(((uint)x * y) >> 8); }
LK_INLINE short lk_mul_hi_ss(short x, short y) { return (short)((x * y) >> 16); }
LK_INLINE ushort lk_mul_hi_us(ushort x, ushort y) { return (ushort)(((uint)x * y) >> 16); }
LK_INLINE int lk_mul_hi_si(int x, int y) { return (int)(((long)x * y) >> 32); }
LK_INLINE uint lk_mul_hi_ui(uint x, uint y) { return (uint)(((ulong)x * y) >> 32); }
LK_INLINE long lk_mul_hi_sl(long x, long y) { return (long)(((lk_i128_t)x * y) >> 64); }
LK_INLINE ulong lk_mul_hi_ul(ulong x, ulong y) { return (ulong)(((lk_u128_t)x * y) >> 64); }
#define LK_DEF_MADHI(s, T, UT, BITS, MIN, MAX)                                       \
  LK_INLINE T lk_mad_hi_##s(T a, T b, T c) {                                     \
    return (T)(UT)((UT)lk_mul_hi_##s(a, b) + (UT)c);                                 \
  }
LK_SINTS(LK_DEF_MADHI)
LK_UINTS(LK_DEF_MADHI)

/* mul24/mad24 (int and uint): the full 32-bit product, wrapping. */
LK_INLINE int lk_mul24_si(int x, int y) { return (int)((uint)x * (uint)y); }
LK_INLINE uint lk_mul24_ui(uint x, uint y) { return x * y; }
LK_INLINE int lk_mad24_si(int x, int y, int z) { return (int)((uint)x * (uint)y + (uint)z); }
LK_INLINE uint lk_mad24_ui(uint x, uint y, uint z) { return x * y + z; }

#undef abs
#define abs(x) LK_IGEN(lk_abs, x)(x)
#define abs_diff(x, y) LK_IGEN(lk_abs_diff, x)((x), (y))
#define add_sat(x, y) LK_IGEN(lk_add_sat, x)((x), (y))
#define sub_sat(x, y) LK_IGEN(lk_sub_sat, x)((x), (y))
#define hadd(x, y) LK_IGEN(lk_hadd, x)((x), (y))
#define rhadd(x, y) LK_IGEN(lk_rhadd, x)((x), (y))
#define clz(x) LK_IGEN(lk_clz, x)(x)
#define popcount(x) LK_IGEN(lk_popcount, x)(x)
#define rotate(v, i) LK_IGEN(lk_rotate, v)((v), (i))
#define mul_hi(x, y) LK_IGEN(lk_mul_hi, x)((x), (y))
#define mad_hi(a, b, c) LK_IGEN(lk_mad_hi, a)((a), (b), (c))
#define mul24(x, y) _Generic((x), int: lk_mul24_si, unsigned int: lk_mul24_ui)((x), (y))
#define mad24(x, y, z) _Generic((x), int: lk_mad24_si, unsigned int: lk_mad24_ui)((x), (y), (z))

/* ---- Relational functions (scalar forms return int 0 or 1) ------------- */

#define LK_DEF_REL(s, T, ABS, MINV, MAXV)                                              \
  LK_INLINE int lk_isnan_##s(T x) { return x != x; }                               \
  LK_INLINE int lk_isinf_##s(T x) { return ABS(x) == (T)INFINITY; }                \
  LK_INLINE int lk_isfinite_##s(T x) { return ABS(x) <= (MAXV); }                  \
  LK_INLINE int lk_isnormal_##s(T x) { return ABS(x) >= (MINV) && ABS(x) <= (MAXV); } \
  LK_INLINE int lk_isequal_##s(T x, T y) { return x == y; }                        \
  LK_INLINE int lk_isnotequal_##s(T x, T y) { return x != y; }                     \
  LK_INLINE int lk_isgreater_##s(T x, T y) { return x > y; }                       \
  LK_INLINE int lk_isgreaterequal_##s(T x, T y) { return x >= y; }                 \
  LK_INLINE int lk_isless_##s(T x, T y) { return x < y; }                          \
  LK_INLINE int lk_islessequal_##s(T x, T y) { return x <= y; }                    \
  LK_INLINE int lk_isordered_##s(T x, T y) { return x == x && y == y; }            \
  LK_INLINE int lk_isunordered_##s(T x, T y) { return x != x || y != y; }
LK_DEF_REL(f, float, fabsf, FLT_MIN, FLT_MAX)
LK_DEF_REL(d, double, fabs, DBL_MIN, DBL_MAX)
LK_INLINE int lk_signbit_f(float x) { return (int)(lk_bits_f(x) >> 31); }
LK_INLINE int lk_signbit_d(double x) { return (int)(lk_bits_d(x) >> 63); }

#undef isnan
#undef isinf
#undef isfinite
#undef isnormal
#undef signbit
#undef isgreater
#undef isgreaterequal
#undef isless
#undef islessequal
#undef isunordered
#define isnan(x) LK_F1(lk_isnan, x)
#define isinf(x) LK_F1(lk_isinf, x)
#define isfinite(x) LK_F1(lk_isfinite, x)
#define isnormal(x) LK_F1(lk_isnormal, x)
#define signbit(x) LK_F1(lk_signbit, x)
#define isequal(x, y) LK_F2(lk_isequal, x, y)
#define isnotequal(x, y) LK_F2(lk_isnotequal, x, y)
#define isgreater(x, y) LK_F2(lk_isgreater, x, y)
#define isgreaterequal(x, y) LK_F2(lk_isgreaterequal, x, y)
#define isless(x, y) LK_F2(lk_isless, x, y)
#define islessequal(x, y) LK_F2(lk_islessequal, x, y)
#define isordered(x, y) LK_F2(lk_isordered, x, y)
#define isunordered(x, y) LK_F2(lk_isunordered, x, y)

/* select(a, b, c) = c ? b : a (scalar form), every argument evaluated once;
 * bitselect takes each bit from b where c has a 1, else from a. */
#define LK_DEF_SEL(s, T)                                                             \
  LK_INLINE T lk_select_##s(T a, T b, int c) { return c ? b : a; }
LK_DEF_SEL(si, int)
LK_DEF_SEL(ui, uint)
LK_DEF_SEL(sl, long)
LK_DEF_SEL(ul, ulong)
LK_DEF_SEL(f, float)
LK_DEF_SEL(d, double)
#define select(a, b, c) LK_NGEN(lk_select, (a) + (b))((a), (b), (c) != 0)
#define LK_DEF_BITSEL(s, T)                                                          \
  LK_INLINE T lk_bitselect_##s(T a, T b, T c) { return (T)((a & ~c) | (b & c)); }
LK_DEF_BITSEL(si, int)
LK_DEF_BITSEL(ui, uint)
LK_DEF_BITSEL(sl, long)
LK_DEF_BITSEL(ul, ulong)
LK_INLINE float lk_bitselect_f(float a, float b, float c) {
  uint m = lk_bits_f(c);
  return lk_float_of((lk_bits_f(a) & ~m) | (lk_bits_f(b) & m));
}
LK_INLINE double lk_bitselect_d(double a, double b, double c) {
  ulong m = lk_bits_d(c);
  return lk_double_of((lk_bits_d(a) & ~m) | (lk_bits_d(b) & m));
}
#define bitselect(a, b, c) LK_NGEN(lk_bitselect, (a) + (b) + (c))((a), (b), (c))

/* ---- Atomics ----------------------------------------------------------- */

/* Every read-modify-write is sequentially consistent (on x86 the same
 * instruction as relaxed), so that the "last group to finish" pattern works
 * without fences.  Each returns the old value. */
#define LK_DEF_ATOMIC(s, T)                                                               \
  LK_INLINE T lk_atomic_add_##s(volatile T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); } \
  LK_INLINE T lk_atomic_sub_##s(volatile T* p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); } \
  LK_INLINE T lk_atomic_xchg_##s(volatile T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); } \
  LK_INLINE T lk_atomic_inc_##s(volatile T* p) { return __atomic_fetch_add(p, (T)1, __ATOMIC_SEQ_CST); } \
  LK_INLINE T lk_atomic_dec_##s(volatile T* p) { return __atomic_fetch_sub(p, (T)1, __ATOMIC_SEQ_CST); } \
  LK_INLINE T lk_atomic_and_##s(volatile T* p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); } \
  LK_INLINE T lk_atomic_or_##s(volatile T* p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); } \
  LK_INLINE T lk_atomic_xor_##s(volatile T* p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); } \
  LK_INLINE T lk_atomic_cmpxchg_##s(volatile T* p, T cmp, T v) {                     \
    T old = cmp;                                                                         \
    __atomic_compare_exchange_n(p, &old, v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);      \
    return old;                                                                          \
  }                                                                                      \
  LK_INLINE T lk_atomic_min_##s(volatile T* p, T v) {                                \
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);                                        \
    while (v < old &&                                                                    \
           !__atomic_compare_exchange_n(p, &old, v, 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) { \
    }                                                                                    \
    return old;                                                                          \
  }                                                                                      \
  LK_INLINE T lk_atomic_max_##s(volatile T* p, T v) {                                \
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);                                        \
    while (old < v &&                                                                    \
           !__atomic_compare_exchange_n(p, &old, v, 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) { \
    }                                                                                    \
    return old;                                                                          \
  }
LK_DEF_ATOMIC(si, int)
LK_DEF_ATOMIC(ui, uint)
LK_DEF_ATOMIC(sl, long)
LK_DEF_ATOMIC(ul, ulong)
LK_INLINE float lk_atomic_xchg_f(volatile float* p, float v) {
  float old;
  __atomic_exchange(p, &v, &old, __ATOMIC_SEQ_CST);
  return old;
}

/* Dispatch on the pointee type (qualifiers dropped by _Generic).  As in
 * OpenCL 1.2, atomic_* take 32-bit int/uint (and float for xchg) only;
 * atom_* (cl_khr_{global,local}_int32_*, cl_khr_int64_*) take 32 or 64 bit. */
#define LK_AGEN32(fn, p) _Generic(*(p), int: fn##_si, unsigned int: fn##_ui)
#define LK_AGEN64(fn, p)                                                             \
  _Generic(*(p), int: fn##_si, unsigned int: fn##_ui, long: fn##_sl,                 \
           unsigned long: fn##_ul)
#define atomic_add(p, v) LK_AGEN32(lk_atomic_add, p)((p), (v))
#define atomic_sub(p, v) LK_AGEN32(lk_atomic_sub, p)((p), (v))
#define atomic_xchg(p, v)                                                            \
  _Generic(*(p), int: lk_atomic_xchg_si, unsigned int: lk_atomic_xchg_ui,            \
           float: lk_atomic_xchg_f)((p), (v))
#define atomic_inc(p) LK_AGEN32(lk_atomic_inc, p)(p)
#define atomic_dec(p) LK_AGEN32(lk_atomic_dec, p)(p)
#define atomic_cmpxchg(p, cmp, v) LK_AGEN32(lk_atomic_cmpxchg, p)((p), (cmp), (v))
#define atomic_min(p, v) LK_AGEN32(lk_atomic_min, p)((p), (v))
#define atomic_max(p, v) LK_AGEN32(lk_atomic_max, p)((p), (v))
#define atomic_and(p, v) LK_AGEN32(lk_atomic_and, p)((p), (v))
#define atomic_or(p, v) LK_AGEN32(lk_atomic_or, p)((p), (v))
#define atomic_xor(p, v) LK_AGEN32(lk_atomic_xor, p)((p), (v))
#define atom_add(p, v) LK_AGEN64(lk_atomic_add, p)((p), (v))
#define atom_sub(p, v) LK_AGEN64(lk_atomic_sub, p)((p), (v))
#define atom_xchg(p, v) LK_AGEN64(lk_atomic_xchg, p)((p), (v))
#define atom_inc(p) LK_AGEN64(lk_atomic_inc, p)(p)
#define atom_dec(p) LK_AGEN64(lk_atomic_dec, p)(p)
#define atom_cmpxchg(p, cmp, v) LK_AGEN64(lk_atomic_cmpxchg, p)((p), (cmp), (v))
#define atom_min(p, v) LK_AGEN64(lk_atomic_min, p)((p), (v))
#define atom_max(p, v) LK_AGEN64(lk_atomic_max, p)((p), (v))
#define atom_and(p, v) LK_AGEN64(lk_atomic_and, p)((p), (v))
#define atom_or(p, v) LK_AGEN64(lk_atomic_or, p)((p), (v))
#define atom_xor(p, v) LK_AGEN64(lk_atomic_xor, p)((p), (v))

/* ---- Last: OpenCL `inline` ---------------------------------------------- */

/* In OpenCL C a plain `inline` function (no static/extern) is an ordinary
 * definition; in C99 it would be an inline definition with no external
 * one, an undefined symbol when the call is not inlined.  GNU89 inline
 * semantics give OpenCL's meaning.  (Defined after the prelude's own
 * LK_INLINE functions.) */
#define inline __inline__ __attribute__((__gnu_inline__))

#endif /* LIGHTOS_PRELUDE_CPU_H */
