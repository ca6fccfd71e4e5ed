/* LightOS kernel language: the CUDA prelude.
 *
 * Prepended (by lk_cuda_codegen, src/kernels/cl_codegen.c) to every program
 * built for a CUDA device; the whole is compiled by NVRTC as CUDA C++17 with
 *     --gpu-architecture=sm_XY --fmad=false -default-device --std=c++17
 * (division and sqrt correctly rounded, denormals kept: NVRTC's defaults).
 * It maps the OpenCL C 1.2 subset of docs/kernel-language.md onto CUDA:
 *   - address spaces: __global/__private vanish, __constant is const,
 *     __local vanishes too: the code generator turns __local variable
 *     declarations into __shared__ ones and __local pointer parameters into
 *     offsets into the dynamic shared memory (lk_smem_);
 *   - work-item functions read blockIdx/blockDim/threadIdx and the hidden
 *     kernel parameter `lk_r` (lk_cu_range_t: the real global size, the
 *     launch's first group and its work_dim), so that non-uniform
 *     work-groups behave as on the CPU;
 *   - builtins are overloaded __device__ functions (lk_*) behind macros
 *     with the OpenCL names, with the same defined results as the CPU
 *     prelude (saturating float->int conversions, NaN -> 0, clz(0) = width,
 *     mad never fused, OpenCL atomics returning the old value ...);
 *   - barrier() is __syncthreads().
 * Everything the CPU prelude provides is provided here.  Names starting
 * with lk_ / LK_ are reserved for the implementation.  Function definitions
 * come first and the macros with builtin names last, so the definitions
 * call CUDA's own functions.
 */
#ifndef LIGHTOS_PRELUDE_CUDA_H
#define LIGHTOS_PRELUDE_CUDA_H 1

/* OpenCL code carries pragmas NVRTC does not know (OPENCL EXTENSION,
 * FP_CONTRACT) and `__constant const` spellings. */
#pragma nv_diag_suppress 161
#pragma nv_diag_suppress 83

#define __LIGHTOS__ 1
#define LIGHTOS_TARGET_CUDA 1
#define cl_khr_fp64 1
#define cl_khr_int64_base_atomics 1
#define cl_khr_int64_extended_atomics 1
#define __ENDIAN_LITTLE__ 1

static_assert(sizeof(long) == 8, "LightOS CUDA kernels need a 64-bit long");
static_assert(sizeof(int) == 4, "LightOS CUDA kernels need a 32-bit int");
static_assert((char)-1 < 0, "LightOS kernels need a signed char");

#define LK_D __device__ __forceinline__

/* ---- Types ------------------------------------------------------------- */

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;
typedef uint cl_mem_fence_flags;
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
typedef long intptr_t;
typedef unsigned long uintptr_t;

/* ---- Constants --------------------------------------------------------- */

#define CHAR_BIT 8
#define SCHAR_MAX 127
#define SCHAR_MIN (-127 - 1)
#define CHAR_MAX SCHAR_MAX
#define CHAR_MIN SCHAR_MIN
#define UCHAR_MAX 255
#define SHRT_MAX 32767
#define SHRT_MIN (-32767 - 1)
#define USHRT_MAX 65535
#define INT_MAX 2147483647
#define INT_MIN (-2147483647 - 1)
#define UINT_MAX 0xffffffffU
#define LONG_MAX 0x7fffffffffffffffL
#define LONG_MIN (-0x7fffffffffffffffL - 1L)
#define ULONG_MAX 0xffffffffffffffffUL
#define LLONG_MAX 0x7fffffffffffffffLL
#define LLONG_MIN (-0x7fffffffffffffffLL - 1LL)
#define ULLONG_MAX 0xffffffffffffffffULL

#define FLT_RADIX 2
#define FLT_DIG 6
#define FLT_MANT_DIG 24
#define FLT_MAX_EXP 128
#define FLT_MIN_EXP (-125)
#define FLT_MAX_10_EXP 38
#define FLT_MIN_10_EXP (-37)
#define FLT_MAX 0x1.fffffep+127f
#define FLT_MIN 0x1p-126f
#define FLT_EPSILON 0x1p-23f
#define DBL_DIG 15
#define DBL_MANT_DIG 53
#define DBL_MAX_EXP 1024
#define DBL_MIN_EXP (-1021)
#define DBL_MAX_10_EXP 308
#define DBL_MIN_10_EXP (-307)
#define DBL_MAX 0x1.fffffffffffffp+1023
#define DBL_MIN 0x1p-1022
#define DBL_EPSILON 0x1p-52

#undef INFINITY
#undef NAN
#undef HUGE_VALF
#undef HUGE_VAL
/* Constant expressions (usable in __constant initialisers). */
#define INFINITY (1.0f / 0.0f)
#if defined(__has_builtin)
#if __has_builtin(__builtin_bit_cast)
#define NAN __builtin_bit_cast(float, 0x7fc00000u)
#endif
#endif
#ifndef NAN
#define NAN (-(0.0f / 0.0f)) /* the host folds 0/0 to the negative quiet NaN */
#endif
#define HUGE_VALF INFINITY
#define HUGE_VAL (1.0 / 0.0)
#define MAXFLOAT FLT_MAX

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

#define CLK_LOCAL_MEM_FENCE 1u
#define CLK_GLOBAL_MEM_FENCE 2u

/* ---- Type machinery ---------------------------------------------------- */

template <class T> struct lk_id_ { typedef T t; };
template <class A, class B> struct lk_same_ { enum { v = 0 }; };
template <class A> struct lk_same_<A, A> { enum { v = 1 }; };

/* Integer traits: the unsigned type of the same size, the width, the
 * signedness.  Not defined for other types, so integer builtins on them
 * fail to compile (as on the CPU). */
template <class T> struct lk_it_;
#define LK_IT_(T, UT, BITS, SGN)        \
  template <> struct lk_it_<T> {        \
    typedef UT u;                       \
    enum { bits = BITS, sgn = SGN };    \
  };
LK_IT_(char, uchar, 8, 1)
LK_IT_(signed char, uchar, 8, 1)
LK_IT_(uchar, uchar, 8, 0)
LK_IT_(short, ushort, 16, 1)
LK_IT_(ushort, ushort, 16, 0)
LK_IT_(int, uint, 32, 1)
LK_IT_(uint, uint, 32, 0)
LK_IT_(long, ulong, 64, 1)
LK_IT_(ulong, ulong, 64, 0)
LK_IT_(long long, unsigned long long, 64, 1)
LK_IT_(unsigned long long, unsigned long long, 64, 0)
#undef LK_IT_

template <class T> LK_D T lk_hi_() {
  typedef typename lk_it_<T>::u U;
  if constexpr (lk_it_<T>::sgn) return (T)((U)~(U)0 >> 1);
  else return (T)~(U)0;
}
template <class T> LK_D T lk_lo_() {
  if constexpr (lk_it_<T>::sgn) return (T)(-lk_hi_<T>() - 1);
  else return (T)0;
}
template <class T> struct lk_isf_ {
  enum { v = lk_same_<T, float>::v || lk_same_<T, double>::v };
};

/* The floating-point type a math builtin computes in: float stays float,
 * everything else becomes double (like <tgmath.h> on the CPU). */
LK_D float lk_ft_(float x) { return x; }
LK_D double lk_ft_(double x) { return x; }
template <class T> LK_D double lk_ft_(T x) { return (double)x; }
#define LK_FT2_(x, y) decltype(lk_ft_((x) + (y)))
#define LK_FT3_(x, y, z) decltype(lk_ft_((x) + (y) + (z)))

/* ---- Bit reinterpretation ---------------------------------------------- */

template <class D, class S> LK_D D lk_as_(S x) {
  static_assert(sizeof(D) == sizeof(S), "as_T: the argument must have the size of T");
  D r;
  memcpy(&r, &x, sizeof r);
  return r;
}

/* ---- Conversions ------------------------------------------------------- */

/* Integer destinations.  From integers: modular without _sat, clamped with
 * _sat.  From floating point (rounding toward zero): always clamped to the
 * destination's range with NaN -> 0. */
template <class D, class S> LK_D D lk_cvt_fi_(S x) {
  /* flo: largest value that saturates low; fhi: smallest that saturates
   * high (both powers of two, or -1, so exact in S). */
  const S flo = lk_it_<D>::sgn ? (S)lk_lo_<D>() : (S)-1;
  const S fhi = lk_it_<D>::sgn ? -(S)lk_lo_<D>() : (S)2 * (S)(lk_hi_<D>() / 2 + 1);
  return !(x > flo) ? (x != x ? (D)0 : lk_lo_<D>()) : x >= fhi ? lk_hi_<D>() : (D)x;
}
template <class D, class S> LK_D D lk_cvt_(S x) {
  if constexpr (lk_isf_<D>::v) return (D)x;
  else if constexpr (lk_isf_<S>::v) return lk_cvt_fi_<D, S>(x);
  else return (D)x;
}
template <class D, class S> LK_D D lk_cvt_sat_(S x) {
  static_assert(!lk_isf_<D>::v, "_sat conversions need an integer destination");
  if constexpr (lk_isf_<S>::v) {
    return lk_cvt_fi_<D, S>(x);
  } else if constexpr (lk_same_<S, bool>::v) {
    return (D)x;
  } else if constexpr (lk_it_<S>::sgn) {
    long long v = (long long)x;
    if (v < (long long)lk_lo_<D>()) return lk_lo_<D>();
    if (v > 0 && (unsigned long long)v > (unsigned long long)lk_hi_<D>()) return lk_hi_<D>();
    return (D)v;
  } else {
    unsigned long long v = (unsigned long long)x;
    return v > (unsigned long long)lk_hi_<D>() ? lk_hi_<D>() : (D)v;
  }
}

/* ---- Math -------------------------------------------------------------- */

#define LK_MF1_(name, ff, fd)                                  \
  LK_D float lk_##name##_(float x) { return ff(x); }           \
  LK_D double lk_##name##_(double x) { return fd(x); }
#define LK_MF2_(name, ff, fd)                                                   \
  LK_D float lk_##name##_(float x, float y) { return ff(x, y); }                \
  LK_D double lk_##name##_(double x, double y) { return fd(x, y); }             \
  template <class A, class B> LK_D auto lk_##name##_g(A x, B y)->LK_FT2_(x, y) {  \
    typedef LK_FT2_(x, y) T;                                                    \
    return lk_##name##_((T)x, (T)y);                                            \
  }
#define LK_MF3_(name, ff, fd)                                                           \
  LK_D float lk_##name##_(float x, float y, float z) { return ff(x, y, z); }            \
  LK_D double lk_##name##_(double x, double y, double z) { return fd(x, y, z); }        \
  template <class A, class B, class C>                                                  \
  LK_D auto lk_##name##_g(A x, B y, C z)->LK_FT3_(x, y, z) {                            \
    typedef LK_FT3_(x, y, z) T;                                                         \
    return lk_##name##_((T)x, (T)y, (T)z);                                              \
  }

LK_MF1_(acos, acosf, acos)
LK_MF1_(acosh, acoshf, acosh)
LK_MF1_(asin, asinf, asin)
LK_MF1_(asinh, asinhf, asinh)
LK_MF1_(atan, atanf, atan)
LK_MF2_(atan2, atan2f, atan2)
LK_MF1_(atanh, atanhf, atanh)
LK_MF1_(cbrt, cbrtf, cbrt)
LK_MF1_(ceil, ceilf, ceil)
LK_MF2_(copysign, copysignf, copysign)
LK_MF1_(cos, cosf, cos)
LK_MF1_(cosh, coshf, cosh)
LK_MF1_(erf, erff, erf)
LK_MF1_(erfc, erfcf, erfc)
LK_MF1_(exp, expf, exp)
LK_MF1_(exp2, exp2f, exp2)
LK_MF1_(exp10, exp10f, exp10)
LK_MF1_(expm1, expm1f, expm1)
LK_MF1_(fabs, fabsf, fabs)
LK_MF2_(fdim, fdimf, fdim)
LK_MF1_(floor, floorf, floor)
LK_MF3_(fma, fmaf, fma)
LK_MF2_(fmod, fmodf, fmod)
LK_MF2_(hypot, hypotf, hypot)
LK_MF1_(lgamma, lgammaf, lgamma)
LK_MF1_(log, logf, log)
LK_MF1_(log2, log2f, log2)
LK_MF1_(log10, log10f, log10)
LK_MF1_(log1p, log1pf, log1p)
LK_MF1_(logb, logbf, logb)
LK_MF2_(nextafter, nextafterf, nextafter)
LK_MF2_(pow, powf, pow)
LK_MF2_(remainder, remainderf, remainder)
LK_MF1_(rint, rintf, rint)
LK_MF1_(round, roundf, round)
LK_MF1_(sin, sinf, sin)
LK_MF1_(sinh, sinhf, sinh)
LK_MF1_(sqrt, sqrtf, sqrt)
LK_MF1_(tan, tanf, tan)
LK_MF1_(tanh, tanhf, tanh)
LK_MF1_(tgamma, tgammaf, tgamma)
LK_MF1_(trunc, truncf, trunc)

LK_D float lk_ldexp_(float x, int n) { return ldexpf(x, n); }
LK_D double lk_ldexp_(double x, int n) { return ldexp(x, n); }

/* fmax/fmin (and max/min/clamp on floating point): IEEE maxNum/minNum, a
 * NaN operand is ignored; the same expression as the CPU prelude. */
LK_D float lk_lfmax_(float x, float y) { return (x < y || x != x) ? y : x; }
LK_D double lk_lfmax_(double x, double y) { return (x < y || x != x) ? y : x; }
LK_D float lk_lfmin_(float x, float y) { return (y < x || x != x) ? y : x; }
LK_D double lk_lfmin_(double x, double y) { return (y < x || x != x) ? y : x; }
LK_MF2_(fmax, lk_lfmax_, lk_lfmax_)
LK_MF2_(fmin, lk_lfmin_, lk_lfmin_)

/* mad: a*b+c with two roundings, never fused. */
LK_D float lk_lmad_(float a, float b, float c) { return __fadd_rn(__fmul_rn(a, b), c); }
LK_D double lk_lmad_(double a, double b, double c) { return __dadd_rn(__dmul_rn(a, b), c); }
LK_MF3_(mad, lk_lmad_, lk_lmad_)

/* pown: x^n for int n (float through double, like the CPU). */
LK_D float lk_pown_(float x, int n) { return (float)pow((double)x, (double)n); }
LK_D double lk_pown_(double x, int n) { return pow(x, (double)n); }

/* powr: x^y for x >= 0 (NaN for x < 0, 0^0, inf^0, 1^inf, NaN operands). */
LK_D float lk_lpowr_(float x, float y) {
  if (x != x || y != y || x < 0.0f) return NAN;
  if (y == 0.0f && (x == 0.0f || x == INFINITY)) return NAN;
  if (x == 1.0f && (y == INFINITY || y == -INFINITY)) return NAN;
  return powf(fabsf(x), y);
}
LK_D double lk_lpowr_(double x, double y) {
  const double inf = HUGE_VAL;
  if (x != x || y != y || x < 0.0) return (double)NAN;
  if (y == 0.0 && (x == 0.0 || x == inf)) return (double)NAN;
  if (x == 1.0 && (y == inf || y == -inf)) return (double)NAN;
  return pow(fabs(x), y);
}
LK_MF2_(powr, lk_lpowr_, lk_lpowr_)

LK_D float lk_lrsqrt_(float x) { return 1.0f / sqrtf(x); }
LK_D double lk_lrsqrt_(double x) { return 1.0 / sqrt(x); }
LK_MF1_(rsqrt, lk_lrsqrt_, lk_lrsqrt_)
LK_D float lk_lrecip_(float x) { return 1.0f / x; }
LK_D double lk_lrecip_(double x) { return 1.0 / x; }
LK_MF1_(recip, lk_lrecip_, lk_lrecip_)
LK_D float lk_ldivide_(float x, float y) { return x / y; }
LK_D double lk_ldivide_(double x, double y) { return x / y; }
LK_MF2_(divide, lk_ldivide_, lk_ldivide_)

/* ---- Common functions -------------------------------------------------- */

LK_D float lk_ldegrees_(float r) { return r * 57.295779513082320876798f; }
LK_D double lk_ldegrees_(double r) { return r * 57.295779513082320876798; }
LK_D float lk_lradians_(float d) { return d * 0.017453292519943295769237f; }
LK_D double lk_lradians_(double d) { return d * 0.017453292519943295769237; }
LK_MF1_(degrees, lk_ldegrees_, lk_ldegrees_)
LK_MF1_(radians, lk_lradians_, lk_lradians_)

LK_D float lk_lmix_(float x, float y, float a) { return x + (y - x) * a; }
LK_D double lk_lmix_(double x, double y, double a) { return x + (y - x) * a; }
LK_MF3_(mix, lk_lmix_, lk_lmix_)

/* sign: 1.0 for x > 0, -1.0 for x < 0, x itself for +-0.0, 0.0 for NaN. */
LK_D float lk_lsign_(float x) { return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x == x ? x : 0.0f; }
LK_D double lk_lsign_(double x) { return x > 0.0 ? 1.0 : x < 0.0 ? -1.0 : x == x ? x : 0.0; }
LK_MF1_(sign, lk_lsign_, lk_lsign_)

LK_D float lk_lstep_(float edge, float x) { return x < edge ? 0.0f : 1.0f; }
LK_D double lk_lstep_(double edge, double x) { return x < edge ? 0.0 : 1.0; }
LK_MF2_(step, lk_lstep_, lk_lstep_)

LK_D float lk_lsmoothstep_(float e0, float e1, float x) {
  float t = lk_lfmin_(lk_lfmax_((x - e0) / (e1 - e0), 0.0f), 1.0f);
  return t * t * (3.0f - 2.0f * t);
}
LK_D double lk_lsmoothstep_(double e0, double e1, double x) {
  double t = lk_lfmin_(lk_lfmax_((x - e0) / (e1 - e0), 0.0), 1.0);
  return t * t * (3.0 - 2.0 * t);
}
LK_MF3_(smoothstep, lk_lsmoothstep_, lk_lsmoothstep_)

/* min / max / clamp on the promoted type of the arguments (C's usual
 * arithmetic conversions); floating point with fmin/fmax semantics. */
template <class T> LK_D T lk_min_(T x, T y) { return y < x ? y : x; }
template <class T> LK_D T lk_max_(T x, T y) { return x < y ? y : x; }
LK_D float lk_min_(float x, float y) { return lk_lfmin_(x, y); }
LK_D double lk_min_(double x, double y) { return lk_lfmin_(x, y); }
LK_D float lk_max_(float x, float y) { return lk_lfmax_(x, y); }
LK_D double lk_max_(double x, double y) { return lk_lfmax_(x, y); }
template <class A, class B> LK_D auto lk_min_g(A x, B y) -> decltype(x + y) {
  typedef decltype(x + y) T;
  return lk_min_((T)x, (T)y);
}
template <class A, class B> LK_D auto lk_max_g(A x, B y) -> decltype(x + y) {
  typedef decltype(x + y) T;
  return lk_max_((T)x, (T)y);
}
template <class A, class B, class C>
LK_D auto lk_clamp_g(A x, B lo, C hi) -> decltype(x + lo + hi) {
  typedef decltype(x + lo + hi) T;
  return lk_min_(lk_max_((T)x, (T)lo), (T)hi);
}

/* ---- Integer functions ------------------------------------------------- */

/* The overload is the exact type of the first argument; the others are
 * converted to it (as the CPU prelude's _Generic dispatch does). */
template <class T> LK_D typename lk_it_<T>::u lk_abs_(T x) {
  typedef typename lk_it_<T>::u U;
  if constexpr (lk_it_<T>::sgn) return x < 0 ? (U)(0u - (U)x) : (U)x;
  else return (U)x;
}
template <class T> LK_D typename lk_it_<T>::u lk_abs_diff_(T x, typename lk_id_<T>::t y) {
  typedef typename lk_it_<T>::u U;
  return x > y ? (U)((U)x - (U)y) : (U)((U)y - (U)x);
}
template <class T> LK_D T lk_add_sat_(T x, typename lk_id_<T>::t y) {
  typedef typename lk_it_<T>::u U;
  T r = (T)(U)((U)x + (U)y);
  if constexpr (lk_it_<T>::sgn) {
    if ((x < 0) == (y < 0) && (r < 0) != (x < 0)) return x < 0 ? lk_lo_<T>() : lk_hi_<T>();
    return r;
  } else {
    return (U)r < (U)x ? lk_hi_<T>() : r;
  }
}
template <class T> LK_D T lk_sub_sat_(T x, typename lk_id_<T>::t y) {
  typedef typename lk_it_<T>::u U;
  T r = (T)(U)((U)x - (U)y);
  if constexpr (lk_it_<T>::sgn) {
    if ((x < 0) != (y < 0) && (r < 0) != (x < 0)) return x < 0 ? lk_lo_<T>() : lk_hi_<T>();
    return r;
  } else {
    return x < y ? (T)0 : r;
  }
}
template <class T> LK_D T lk_hadd_(T x, typename lk_id_<T>::t y) {
  return (T)((x >> 1) + (y >> 1) + (x & y & 1));
}
template <class T> LK_D T lk_rhadd_(T x, typename lk_id_<T>::t y) {
  return (T)((x >> 1) + (y >> 1) + ((x | y) & 1));
}
template <class T> LK_D T lk_clz_(T x) {
  typedef typename lk_it_<T>::u U;
  if constexpr (lk_it_<T>::bits == 64) return (T)__clzll((long long)(U)x);
  else return (T)(__clz((int)(uint)(U)x) - (32 - lk_it_<T>::bits));
}
template <class T> LK_D T lk_popcount_(T x) {
  typedef typename lk_it_<T>::u U;
  if constexpr (lk_it_<T>::bits == 64) return (T)__popcll((unsigned long long)(U)x);
  else return (T)__popc((uint)(U)x);
}
template <class T> LK_D T lk_rotate_(T v, typename lk_id_<T>::t i) {
  typedef typename lk_it_<T>::u U;
  const uint bits = (uint)lk_it_<T>::bits;
  U u = (U)v;
  uint n = (uint)((U)i % bits);
  return (T)(U)((U)(u << n) | (U)(u >> ((bits - n) % bits)));
}
template <class T> LK_D T lk_mul_hi_(T x, typename lk_id_<T>::t y) {
  if constexpr (lk_it_<T>::bits < 32) {
    return (T)(((int)x * (int)y) >> lk_it_<T>::bits);
  } else if constexpr (lk_it_<T>::bits == 32) {
    if constexpr (lk_it_<T>::sgn) return (T)__mulhi((int)x, (int)y);
    else return (T)__umulhi((uint)x, (uint)y);
  } else {
    if constexpr (lk_it_<T>::sgn) return (T)__mul64hi((long long)x, (long long)y);
    else return (T)__umul64hi((unsigned long long)x, (unsigned long long)y);
  }
}
template <class T>
LK_D T lk_mad_hi_(T a, typename lk_id_<T>::t b, typename lk_id_<T>::t c) {
  typedef typename lk_it_<T>::u U;
  return (T)(U)((U)lk_mul_hi_<T>(a, b) + (U)c);
}
/* mul24/mad24 (int and uint): the full 32-bit product, wrapping. */
LK_D int lk_lmul24_(int x, int y) { return (int)((uint)x * (uint)y); }
LK_D uint lk_lmul24_(uint x, uint y) { return x * y; }
LK_D int lk_lmad24_(int x, int y, int z) { return (int)((uint)x * (uint)y + (uint)z); }
LK_D uint lk_lmad24_(uint x, uint y, uint z) { return x * y + z; }
template <class T> LK_D T lk_mul24_(T x, typename lk_id_<T>::t y) {
  static_assert(lk_same_<T, int>::v || lk_same_<T, uint>::v, "mul24 takes int or uint");
  return lk_lmul24_(x, y);
}
template <class T>
LK_D T lk_mad24_(T x, typename lk_id_<T>::t y, typename lk_id_<T>::t z) {
  static_assert(lk_same_<T, int>::v || lk_same_<T, uint>::v, "mad24 takes int or uint");
  return lk_lmad24_(x, y, z);
}

/* ---- Relational functions (scalar forms return int 0 or 1) ------------- */

LK_D int lk_isnan_(float x) { return x != x; }
LK_D int lk_isnan_(double x) { return x != x; }
LK_D int lk_isinf_(float x) { return fabsf(x) == INFINITY; }
LK_D int lk_isinf_(double x) { return fabs(x) == HUGE_VAL; }
LK_D int lk_isfinite_(float x) { return fabsf(x) <= FLT_MAX; }
LK_D int lk_isfinite_(double x) { return fabs(x) <= DBL_MAX; }
LK_D int lk_isnormal_(float x) { return fabsf(x) >= FLT_MIN && fabsf(x) <= FLT_MAX; }
LK_D int lk_isnormal_(double x) { return fabs(x) >= DBL_MIN && fabs(x) <= DBL_MAX; }
LK_D int lk_signbit_(float x) { return (int)((uint)__float_as_int(x) >> 31); }
LK_D int lk_signbit_(double x) {
  return (int)((unsigned long long)__double_as_longlong(x) >> 63);
}
#define LK_REL2_(name, expr)                                      \
  template <class A, class B> LK_D int lk_##name##_g(A a, B b) {  \
    typedef LK_FT2_(a, b) T;                                      \
    T x = (T)a, y = (T)b;                                         \
    return (expr) ? 1 : 0;                                        \
  }
LK_REL2_(isequal, x == y)
LK_REL2_(isnotequal, x != y)
LK_REL2_(isgreater, x > y)
LK_REL2_(isgreaterequal, x >= y)
LK_REL2_(isless, x < y)
LK_REL2_(islessequal, x <= y)
LK_REL2_(isordered, x == x && y == y)
LK_REL2_(isunordered, x != x || y != y)
#undef LK_REL2_

/* select(a, b, c) = c ? b : a (scalar form); bitselect takes each bit
 * from b where c has a 1, else from a. */
template <class A, class B, class C> LK_D auto lk_select_g(A a, B b, C c) -> decltype(a + b) {
  typedef decltype(a + b) T;
  return c != 0 ? (T)b : (T)a;
}
template <class T> LK_D T lk_bitselect_(T a, T b, T c) { return (T)((a & ~c) | (b & c)); }
LK_D float lk_bitselect_(float a, float b, float c) {
  uint m = (uint)__float_as_int(c);
  return __int_as_float((int)(((uint)__float_as_int(a) & ~m) | ((uint)__float_as_int(b) & m)));
}
LK_D double lk_bitselect_(double a, double b, double c) {
  unsigned long long m = (unsigned long long)__double_as_longlong(c);
  return __longlong_as_double(
      (long long)(((unsigned long long)__double_as_longlong(a) & ~m) |
                  ((unsigned long long)__double_as_longlong(b) & m)));
}
template <class A, class B, class C>
LK_D auto lk_bitselect_g(A a, B b, C c) -> decltype(a + b + c) {
  typedef decltype(a + b + c) T;
  return lk_bitselect_((T)a, (T)b, (T)c);
}

/* ---- Atomics ----------------------------------------------------------- */

/* OpenCL semantics: every function returns the old value; atomic_inc /
 * atomic_dec add / subtract 1 (not CUDA's wrapping atomicInc/atomicDec).
 * 64-bit signed operations go through the unsigned (two's complement)
 * forms where CUDA has no signed one.  As in OpenCL 1.2 they promise
 * atomicity, not ordering: put mem_fence(CLK_GLOBAL_MEM_FENCE) first for
 * a "last group to finish" pattern. */
typedef unsigned long long lk_ull_;
#define LK_AP32_(T) volatile T* p
#define LK_ATOMIC32_(T)                                                                       \
  LK_D T lk_atomic_add_(LK_AP32_(T), T v) { return atomicAdd((T*)p, v); }                   \
  LK_D T lk_atomic_sub_(LK_AP32_(T), T v) { return atomicSub((T*)p, v); }                   \
  LK_D T lk_atomic_xchg_(LK_AP32_(T), T v) { return atomicExch((T*)p, v); }                 \
  LK_D T lk_atomic_inc_(LK_AP32_(T)) { return atomicAdd((T*)p, (T)1); }                     \
  LK_D T lk_atomic_dec_(LK_AP32_(T)) { return atomicSub((T*)p, (T)1); }                     \
  LK_D T lk_atomic_cmpxchg_(LK_AP32_(T), T cmp, T v) { return atomicCAS((T*)p, cmp, v); }   \
  LK_D T lk_atomic_min_(LK_AP32_(T), T v) { return atomicMin((T*)p, v); }                   \
  LK_D T lk_atomic_max_(LK_AP32_(T), T v) { return atomicMax((T*)p, v); }                   \
  LK_D T lk_atomic_and_(LK_AP32_(T), T v) { return atomicAnd((T*)p, v); }                   \
  LK_D T lk_atomic_or_(LK_AP32_(T), T v) { return atomicOr((T*)p, v); }                     \
  LK_D T lk_atomic_xor_(LK_AP32_(T), T v) { return atomicXor((T*)p, v); }
LK_ATOMIC32_(int)
LK_ATOMIC32_(uint)
/* 64-bit: T is long or ulong; S the CUDA type used for min/max. */
/* 64-bit min/max: CUDA's own; the HIP prelude supplies its own where HIP
 * has no signed 64-bit overloads. */
#ifndef LK_ATOMIC_MIN64_
#define LK_ATOMIC_MIN64_ atomicMin
#define LK_ATOMIC_MAX64_ atomicMax
#endif
#define LK_ATOMIC64_(T, S)                                                                      \
  LK_D T lk_atomic_add_(volatile T* p, T v) { return (T)atomicAdd((lk_ull_*)p, (lk_ull_)v); }  \
  LK_D T lk_atomic_sub_(volatile T* p, T v) {                                                   \
    return (T)atomicAdd((lk_ull_*)p, (lk_ull_)0 - (lk_ull_)v);                                  \
  }                                                                                             \
  LK_D T lk_atomic_xchg_(volatile T* p, T v) { return (T)atomicExch((lk_ull_*)p, (lk_ull_)v); } \
  LK_D T lk_atomic_inc_(volatile T* p) { return (T)atomicAdd((lk_ull_*)p, (lk_ull_)1); }        \
  LK_D T lk_atomic_dec_(volatile T* p) { return (T)atomicAdd((lk_ull_*)p, ~(lk_ull_)0); }       \
  LK_D T lk_atomic_cmpxchg_(volatile T* p, T cmp, T v) {                                        \
    return (T)atomicCAS((lk_ull_*)p, (lk_ull_)cmp, (lk_ull_)v);                                 \
  }                                                                                             \
  LK_D T lk_atomic_min_(volatile T* p, T v) { return (T)LK_ATOMIC_MIN64_((S*)p, (S)v); }       \
  LK_D T lk_atomic_max_(volatile T* p, T v) { return (T)LK_ATOMIC_MAX64_((S*)p, (S)v); }       \
  LK_D T lk_atomic_and_(volatile T* p, T v) { return (T)atomicAnd((lk_ull_*)p, (lk_ull_)v); }  \
  LK_D T lk_atomic_or_(volatile T* p, T v) { return (T)atomicOr((lk_ull_*)p, (lk_ull_)v); }    \
  LK_D T lk_atomic_xor_(volatile T* p, T v) { return (T)atomicXor((lk_ull_*)p, (lk_ull_)v); }
LK_ATOMIC64_(long, long long)
LK_ATOMIC64_(ulong, lk_ull_)
#undef LK_ATOMIC32_
#undef LK_ATOMIC64_
#undef LK_AP32_
LK_D float lk_atomic_xchg_(volatile float* p, float v) { return atomicExch((float*)p, v); }

/* ---- Synchronisation --------------------------------------------------- */

LK_D void lk_fence_(uint flags) {
  if (flags & CLK_GLOBAL_MEM_FENCE) __threadfence();
  else __threadfence_block();
}

/* ---- Work-item functions ----------------------------------------------- */

/* The hidden last parameter of every kernel (the launch fills it; the
 * same layout as lk_cu_range_t in src/hal/cuda/cuda_backend.h):
 * gs: the real global size; go: the id of the launch's first group (a
 * range larger than the grid limits runs as several launches); wd: the
 * work_dim of the launch. */
struct lk_cu_range_t {
  unsigned long gs[3];
  unsigned long go[3];
  unsigned int wd;
  unsigned int pad;
};
static_assert(sizeof(lk_cu_range_t) == 56, "lk_cu_range_t layout");

LK_D size_t lk_dim_(ulong d, size_t v0, size_t v1, size_t v2, size_t other) {
  return d == 0 ? v0 : d == 1 ? v1 : d == 2 ? v2 : other;
}
#define LK_GRP_(c, i) ((size_t)blockIdx.c + lk_r.go[i])
#define LK_GID_(c, i) (LK_GRP_(c, i) * blockDim.c + threadIdx.c)
#define LK_NGRP_(c, i) ((lk_r.gs[i] + blockDim.c - 1) / blockDim.c)
#define LK_LSZ_(c, i)                                                      \
  (lk_r.gs[i] - LK_GRP_(c, i) * blockDim.c < (size_t)blockDim.c            \
       ? lk_r.gs[i] - LK_GRP_(c, i) * blockDim.c                           \
       : (size_t)blockDim.c)
#define LK_CU_IN_RANGE_ \
  (LK_GID_(x, 0) < lk_r.gs[0] && LK_GID_(y, 1) < lk_r.gs[1] && LK_GID_(z, 2) < lk_r.gs[2])

#define get_work_dim() ((uint)lk_r.wd)
#define get_global_size(d) lk_dim_((ulong)(d), lk_r.gs[0], lk_r.gs[1], lk_r.gs[2], 1)
#define get_global_id(d) lk_dim_((ulong)(d), LK_GID_(x, 0), LK_GID_(y, 1), LK_GID_(z, 2), 0)
#define get_local_id(d) lk_dim_((ulong)(d), threadIdx.x, threadIdx.y, threadIdx.z, 0)
/* The actual size of this work-group (smaller for the last group of a
 * dimension when the global size is not a multiple of the local size). */
#define get_local_size(d) lk_dim_((ulong)(d), LK_LSZ_(x, 0), LK_LSZ_(y, 1), LK_LSZ_(z, 2), 1)
#define get_enqueued_local_size(d) lk_dim_((ulong)(d), blockDim.x, blockDim.y, blockDim.z, 1)
#define get_num_groups(d) \
  lk_dim_((ulong)(d), LK_NGRP_(x, 0), LK_NGRP_(y, 1), LK_NGRP_(z, 2), 1)
#define get_group_id(d) lk_dim_((ulong)(d), LK_GRP_(x, 0), LK_GRP_(y, 1), LK_GRP_(z, 2), 0)
#define get_global_offset(d) ((void)(d), (size_t)0)

/* ---- Item blocks and private values ------------------------------------ */

/* Every work-item runs the whole kernel: an item block is a one-trip loop
 * that items past the real global size skip (they still reach barriers). */
#define LIGHTOS_ITEMS for (int lk_once_ = LK_CU_IN_RANGE_; lk_once_; lk_once_ = 0)
#define LIGHTOS_PRIVATE(T, name) T name[1]
#define LIGHTOS_P(name) ((name)[0])

#define barrier(flags) ((void)(flags), __syncthreads())
#define mem_fence(flags) lk_fence_((uint)(flags))
#define read_mem_fence(flags) lk_fence_((uint)(flags))
#define write_mem_fence(flags) lk_fence_((uint)(flags))

/* ---- Address spaces, qualifiers, C names that C++ reserves ------------- */

/* Only the __ spellings are macros: CUDA's own __global__, __shared__,
 * __constant__ ... expand to attributes named global, shared, constant,
 * so the code generator rewrites the plain spellings (global, local,
 * constant, private, kernel) of the kernel source to the __ ones. */
#define __global
#define __local
#define __private
#define __constant const
#define __kernel
#define restrict __restrict__
#define new lk_kw_new
#define delete lk_kw_delete
#define this lk_kw_this
#define class lk_kw_class
#define template lk_kw_template
#define typename lk_kw_typename
#define namespace lk_kw_namespace
#define operator lk_kw_operator
#define public lk_kw_public
#define protected lk_kw_protected
#define friend lk_kw_friend
#define virtual lk_kw_virtual
#define mutable lk_kw_mutable
#define explicit lk_kw_explicit
#define throw lk_kw_throw
#define try lk_kw_try
#define catch lk_kw_catch
#define using lk_kw_using

/* ---- Builtin names (last: the definitions above call CUDA's own) ------- */

#define as_char(x) lk_as_<char>(x)
#define as_uchar(x) lk_as_<uchar>(x)
#define as_short(x) lk_as_<short>(x)
#define as_ushort(x) lk_as_<ushort>(x)
#define as_int(x) lk_as_<int>(x)
#define as_uint(x) lk_as_<uint>(x)
#define as_long(x) lk_as_<long>(x)
#define as_ulong(x) lk_as_<ulong>(x)
#define as_float(x) lk_as_<float>(x)
#define as_double(x) lk_as_<double>(x)
#define as_size_t(x) lk_as_<size_t>(x)

#define convert_char(x) lk_cvt_<char>(x)
#define convert_char_sat(x) lk_cvt_sat_<char>(x)
#define convert_uchar(x) lk_cvt_<uchar>(x)
#define convert_uchar_sat(x) lk_cvt_sat_<uchar>(x)
#define convert_short(x) lk_cvt_<short>(x)
#define convert_short_sat(x) lk_cvt_sat_<short>(x)
#define convert_ushort(x) lk_cvt_<ushort>(x)
#define convert_ushort_sat(x) lk_cvt_sat_<ushort>(x)
#define convert_int(x) lk_cvt_<int>(x)
#define convert_int_sat(x) lk_cvt_sat_<int>(x)
#define convert_uint(x) lk_cvt_<uint>(x)
#define convert_uint_sat(x) lk_cvt_sat_<uint>(x)
#define convert_long(x) lk_cvt_<long>(x)
#define convert_long_sat(x) lk_cvt_sat_<long>(x)
#define convert_ulong(x) lk_cvt_<ulong>(x)
#define convert_ulong_sat(x) lk_cvt_sat_<ulong>(x)
#define convert_float(x) ((float)(x))
#define convert_double(x) ((double)(x))

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
#undef min
#undef max
#undef abs

#define acos(x) lk_acos_(lk_ft_(x))
#define acosh(x) lk_acosh_(lk_ft_(x))
#define asin(x) lk_asin_(lk_ft_(x))
#define asinh(x) lk_asinh_(lk_ft_(x))
#define atan(x) lk_atan_(lk_ft_(x))
#define atan2(y, x) lk_atan2_g((y), (x))
#define atanh(x) lk_atanh_(lk_ft_(x))
#define cbrt(x) lk_cbrt_(lk_ft_(x))
#define ceil(x) lk_ceil_(lk_ft_(x))
#define copysign(x, y) lk_copysign_g((x), (y))
#define cos(x) lk_cos_(lk_ft_(x))
#define cosh(x) lk_cosh_(lk_ft_(x))
#define erf(x) lk_erf_(lk_ft_(x))
#define erfc(x) lk_erfc_(lk_ft_(x))
#define exp(x) lk_exp_(lk_ft_(x))
#define exp2(x) lk_exp2_(lk_ft_(x))
#define exp10(x) lk_exp10_(lk_ft_(x))
#define expm1(x) lk_expm1_(lk_ft_(x))
#define fabs(x) lk_fabs_(lk_ft_(x))
#define fdim(x, y) lk_fdim_g((x), (y))
#define floor(x) lk_floor_(lk_ft_(x))
#define fma(a, b, c) lk_fma_g((a), (b), (c))
#define fmax(x, y) lk_fmax_g((x), (y))
#define fmin(x, y) lk_fmin_g((x), (y))
#define fmod(x, y) lk_fmod_g((x), (y))
#define hypot(x, y) lk_hypot_g((x), (y))
#define ldexp(x, n) lk_ldexp_(lk_ft_(x), (int)(n))
#define lgamma(x) lk_lgamma_(lk_ft_(x))
#define log(x) lk_log_(lk_ft_(x))
#define log2(x) lk_log2_(lk_ft_(x))
#define log10(x) lk_log10_(lk_ft_(x))
#define log1p(x) lk_log1p_(lk_ft_(x))
#define logb(x) lk_logb_(lk_ft_(x))
#define mad(a, b, c) lk_mad_g((a), (b), (c))
#define nextafter(x, y) lk_nextafter_g((x), (y))
#define pow(x, y) lk_pow_g((x), (y))
#define pown(x, n) lk_pown_(lk_ft_(x), (int)(n))
#define powr(x, y) lk_powr_g((x), (y))
#define remainder(x, y) lk_remainder_g((x), (y))
#define rint(x) lk_rint_(lk_ft_(x))
#define round(x) lk_round_(lk_ft_(x))
#define rsqrt(x) lk_rsqrt_(lk_ft_(x))
#define sin(x) lk_sin_(lk_ft_(x))
#define sinh(x) lk_sinh_(lk_ft_(x))
#define sqrt(x) lk_sqrt_(lk_ft_(x))
#define tan(x) lk_tan_(lk_ft_(x))
#define tanh(x) lk_tanh_(lk_ft_(x))
#define tgamma(x) lk_tgamma_(lk_ft_(x))
#define trunc(x) lk_trunc_(lk_ft_(x))

/* native_* and half_*: the precise functions (the accuracy OpenCL allows
 * them is implementation-defined; precise is within it). */
#define native_cos(x) cos(x)
#define native_divide(x, y) lk_divide_g((x), (y))
#define native_exp(x) exp(x)
#define native_exp2(x) exp2(x)
#define native_exp10(x) exp10(x)
#define native_log(x) log(x)
#define native_log2(x) log2(x)
#define native_log10(x) log10(x)
#define native_powr(x, y) powr(x, y)
#define native_recip(x) lk_recip_(lk_ft_(x))
#define native_rsqrt(x) rsqrt(x)
#define native_sin(x) sin(x)
#define native_sqrt(x) sqrt(x)
#define native_tan(x) tan(x)
#define half_cos(x) cos(x)
#define half_divide(x, y) lk_divide_g((x), (y))
#define half_exp(x) exp(x)
#define half_exp2(x) exp2(x)
#define half_exp10(x) exp10(x)
#define half_log(x) log(x)
#define half_log2(x) log2(x)
#define half_log10(x) log10(x)
#define half_powr(x, y) powr(x, y)
#define half_recip(x) lk_recip_(lk_ft_(x))
#define half_rsqrt(x) rsqrt(x)
#define half_sin(x) sin(x)
#define half_sqrt(x) sqrt(x)
#define half_tan(x) tan(x)

#define degrees(x) lk_degrees_(lk_ft_(x))
#define radians(x) lk_radians_(lk_ft_(x))
#define mix(x, y, a) lk_mix_g((x), (y), (a))
#define sign(x) lk_sign_(lk_ft_(x))
#define step(edge, x) lk_step_g((edge), (x))
#define smoothstep(e0, e1, x) lk_smoothstep_g((e0), (e1), (x))
#define min(x, y) lk_min_g((x), (y))
#define max(x, y) lk_max_g((x), (y))
#define clamp(x, lo, hi) lk_clamp_g((x), (lo), (hi))

#define abs(x) lk_abs_(x)
#define abs_diff(x, y) lk_abs_diff_((x), (y))
#define add_sat(x, y) lk_add_sat_((x), (y))
#define sub_sat(x, y) lk_sub_sat_((x), (y))
#define hadd(x, y) lk_hadd_((x), (y))
#define rhadd(x, y) lk_rhadd_((x), (y))
#define clz(x) lk_clz_(x)
#define popcount(x) lk_popcount_(x)
#define rotate(v, i) lk_rotate_((v), (i))
#define mul_hi(x, y) lk_mul_hi_((x), (y))
#define mad_hi(a, b, c) lk_mad_hi_((a), (b), (c))
#define mul24(x, y) lk_mul24_((x), (y))
#define mad24(x, y, z) lk_mad24_((x), (y), (z))

#define isnan(x) lk_isnan_(lk_ft_(x))
#define isinf(x) lk_isinf_(lk_ft_(x))
#define isfinite(x) lk_isfinite_(lk_ft_(x))
#define isnormal(x) lk_isnormal_(lk_ft_(x))
#define signbit(x) lk_signbit_(lk_ft_(x))
#define isequal(x, y) lk_isequal_g((x), (y))
#define isnotequal(x, y) lk_isnotequal_g((x), (y))
#define isgreater(x, y) lk_isgreater_g((x), (y))
#define isgreaterequal(x, y) lk_isgreaterequal_g((x), (y))
#define isless(x, y) lk_isless_g((x), (y))
#define islessequal(x, y) lk_islessequal_g((x), (y))
#define isordered(x, y) lk_isordered_g((x), (y))
#define isunordered(x, y) lk_isunordered_g((x), (y))
#define select(a, b, c) lk_select_g((a), (b), (c))
#define bitselect(a, b, c) lk_bitselect_g((a), (b), (c))

#define atomic_add(p, v) lk_atomic_add_((p), (v))
#define atomic_sub(p, v) lk_atomic_sub_((p), (v))
#define atomic_xchg(p, v) lk_atomic_xchg_((p), (v))
#define atomic_inc(p) lk_atomic_inc_(p)
#define atomic_dec(p) lk_atomic_dec_(p)
#define atomic_cmpxchg(p, cmp, v) lk_atomic_cmpxchg_((p), (cmp), (v))
#define atomic_min(p, v) lk_atomic_min_((p), (v))
#define atomic_max(p, v) lk_atomic_max_((p), (v))
#define atomic_and(p, v) lk_atomic_and_((p), (v))
#define atomic_or(p, v) lk_atomic_or_((p), (v))
#define atomic_xor(p, v) lk_atomic_xor_((p), (v))
#define atom_add(p, v) lk_atomic_add_((p), (v))
#define atom_sub(p, v) lk_atomic_sub_((p), (v))
#define atom_xchg(p, v) lk_atomic_xchg_((p), (v))
#define atom_inc(p) lk_atomic_inc_(p)
#define atom_dec(p) lk_atomic_dec_(p)
#define atom_cmpxchg(p, cmp, v) lk_atomic_cmpxchg_((p), (cmp), (v))
#define atom_min(p, v) lk_atomic_min_((p), (v))
#define atom_max(p, v) lk_atomic_max_((p), (v))
#define atom_and(p, v) lk_atomic_and_((p), (v))
#define atom_or(p, v) lk_atomic_or_((p), (v))
#define atom_xor(p, v) lk_atomic_xor_((p), (v))

#endif /* LIGHTOS_PRELUDE_CUDA_H */
