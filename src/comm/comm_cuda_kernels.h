/* The reduction kernels of the NCCL device path (comm_nccl.c): CUDA C++
 * that NVRTC compiles for the device's architecture when a group attaches
 * (with the CUDA backend's fixed options: --fmad=false, IEEE division,
 * denormals kept).
 *
 * Bit-exactness.  The device results must equal the host algorithms'
 * (comm_algo.c, comm_reduce.c) bit for bit, so every step of the host
 * arithmetic is reproduced here with integer operations on the IEEE bits
 * wherever the host does more than one IEEE operation:
 *   - f16/bf16 <-> f32 are comm_reduce.c's conversions (round to nearest
 *     even, the same NaN encodings), not the CUDA intrinsics;
 *   - sums and products are single IEEE operations (no contraction); when
 *     the result is NaN it is rebuilt as the host's SSE/AVX rule gives it:
 *     the first NaN operand, quieted, else the second, else the host's
 *     default NaN (measured on the host, a kernel argument).  That is
 *     the bits of a GCC-built host; the only case that can still differ is
 *     two NaNs with different payloads meeting, where the host compiler
 *     swapped the operands (LLVM may);
 *   - min/max are comm_reduce.c's order-independent rules (canonical NaN,
 *     -0 below +0);
 *   - integer sums and products wrap;
 *   - the fixed summation tree over ranks is the host's: split at the
 *     largest power of two below m, left op right (evaluated with a
 *     binary-counter stack: the same pairs in the same order);
 *   - STRICT: the per-block shared exponent, the conversion to 48-bit
 *     fixed point (round half even on the integer mantissa), the exact
 *     int64 sums and the one final rounding (lk_round_bits), in 64-bit
 *     integers only.  For avg the host divides a 127-bit numerator; here
 *     the magnitude is normalised to 64 bits before dividing: both give
 *     the exact quotient's correct rounding (the quotient keeps >= 50
 *     significant bits and the remainder is kept as a sticky bit), so the
 *     bits agree.  The conversion to fixed point happens where the sum is
 *     made (it depends on the element and the shared exponent only), and
 *     the NaN/Inf classes of the n values are OR-ed there: the host's
 *     merged non-finite mask without a mask exchange.
 *
 * Layout.  LK_CUK_ARITH(...) holds the per-element arithmetic, written in
 * the common subset of C11 and CUDA C++.  Normally it becomes the string
 * lk_cuk_arith_src (stringized: comments dropped, whitespace folded); with
 * LK_CUK_HOST defined (tests/test_comm_gpu.c) the very same text is
 * compiled as host C, so the CPU test compares it with comm_reduce.c.  The
 * text may therefore hold no preprocessor directive and no string or
 * character literal.  It uses LK_D (function specifiers), LK_F2U/LK_U2F/
 * LK_D2U/LK_U2D (bit casts) and LK_CLZ64 (count leading zeros of a nonzero
 * 64-bit value), LK_LD8..64 / LK_ST8..64 (loads and stores of user memory
 * at any byte address: a sub-buffer may start at any offset), defined below
 * for the host (memcpy) and in lk_cuk_prelude for the device.
 * lk_cuk_kernels holds the __global__ entry points (grid-stride loops over
 * the element functions).  comm_nccl.c compiles lk_cuk_prelude +
 * lk_cuk_arith_src + lk_cuk_kernels.
 */
#ifndef LK_COMM_CUDA_KERNELS_H
#define LK_COMM_CUDA_KERNELS_H

#ifdef LK_CUK_HOST
#include <string.h>
static inline unsigned int lk_cuk_host_f2u(float f) {
  unsigned int u;
  memcpy(&u, &f, 4);
  return u;
}
static inline float lk_cuk_host_u2f(unsigned int u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static inline unsigned long long lk_cuk_host_d2u(double d) {
  unsigned long long u;
  memcpy(&u, &d, 8);
  return u;
}
static inline double lk_cuk_host_u2d(unsigned long long u) {
  double d;
  memcpy(&d, &u, 8);
  return d;
}
static inline unsigned int lk_cuk_host_ld8(const unsigned char* b) { return b[0]; }
static inline unsigned int lk_cuk_host_ld16(const unsigned char* b) {
  unsigned short v;
  memcpy(&v, b, 2);
  return v;
}
static inline unsigned int lk_cuk_host_ld32(const unsigned char* b) {
  unsigned int v;
  memcpy(&v, b, 4);
  return v;
}
static inline unsigned long long lk_cuk_host_ld64(const unsigned char* b) {
  unsigned long long v;
  memcpy(&v, b, 8);
  return v;
}
static inline void lk_cuk_host_st8(unsigned char* b, unsigned int v) { b[0] = (unsigned char)v; }
static inline void lk_cuk_host_st16(unsigned char* b, unsigned int v) {
  unsigned short w = (unsigned short)v;
  memcpy(b, &w, 2);
}
static inline void lk_cuk_host_st32(unsigned char* b, unsigned int v) { memcpy(b, &v, 4); }
static inline void lk_cuk_host_st64(unsigned char* b, unsigned long long v) { memcpy(b, &v, 8); }
#define LK_D static inline
#define LK_LD8(b) lk_cuk_host_ld8(b)
#define LK_LD16(b) lk_cuk_host_ld16(b)
#define LK_LD32(b) lk_cuk_host_ld32(b)
#define LK_LD64(b) lk_cuk_host_ld64(b)
#define LK_ST8(b, v) lk_cuk_host_st8((b), (v))
#define LK_ST16(b, v) lk_cuk_host_st16((b), (v))
#define LK_ST32(b, v) lk_cuk_host_st32((b), (v))
#define LK_ST64(b, v) lk_cuk_host_st64((b), (v))
#define LK_F2U(x) lk_cuk_host_f2u(x)
#define LK_U2F(x) lk_cuk_host_u2f(x)
#define LK_D2U(x) lk_cuk_host_d2u(x)
#define LK_U2D(x) lk_cuk_host_u2d(x)
#define LK_CLZ64(x) __builtin_clzll(x)
#define LK_CUK_ARITH(...) __VA_ARGS__
#else
#define LK_CUK_STR_(...) #__VA_ARGS__
#define LK_CUK_ARITH(...) static const char lk_cuk_arith_src[] = LK_CUK_STR_(__VA_ARGS__);
#endif

#ifndef LK_CUK_HOST
/* Device definitions of the macros the arithmetic uses. */
static const char lk_cuk_prelude[] =
    "#define LK_D static __device__ __forceinline__\n"
    "#define LK_F2U(x) __float_as_uint(x)\n"
    "#define LK_U2F(x) __uint_as_float(x)\n"
    "#define LK_D2U(x) ((unsigned long long)__double_as_longlong(x))\n"
    "#define LK_U2D(x) __longlong_as_double((long long)(x))\n"
    "#define LK_CLZ64(x) __clzll((long long)(x))\n"
    /* Loads and stores of user memory: aligned when the address allows
     * (always, but for sub-buffers at odd offsets), else byte by byte
     * (little-endian). */
    "static __device__ __forceinline__ unsigned lk_cuk_ld8(const unsigned char* b) {\n"
    "  return b[0];\n"
    "}\n"
    "static __device__ __forceinline__ unsigned lk_cuk_ld16(const unsigned char* b) {\n"
    "  if (!((unsigned long long)b & 1u)) return *(const unsigned short*)b;\n"
    "  return b[0] | ((unsigned)b[1] << 8);\n"
    "}\n"
    "static __device__ __forceinline__ unsigned lk_cuk_ld32(const unsigned char* b) {\n"
    "  if (!((unsigned long long)b & 3u)) return *(const unsigned*)b;\n"
    "  return b[0] | ((unsigned)b[1] << 8) | ((unsigned)b[2] << 16) | ((unsigned)b[3] << 24);\n"
    "}\n"
    "static __device__ __forceinline__ unsigned long long lk_cuk_ld64(const unsigned char* b) {\n"
    "  if (!((unsigned long long)b & 7u)) return *(const unsigned long long*)b;\n"
    "  return lk_cuk_ld32(b) | ((unsigned long long)lk_cuk_ld32(b + 4) << 32);\n"
    "}\n"
    "static __device__ __forceinline__ void lk_cuk_st8(unsigned char* b, unsigned v) {\n"
    "  b[0] = (unsigned char)v;\n"
    "}\n"
    "static __device__ __forceinline__ void lk_cuk_st16(unsigned char* b, unsigned v) {\n"
    "  if (!((unsigned long long)b & 1u)) { *(unsigned short*)b = (unsigned short)v; return; }\n"
    "  b[0] = (unsigned char)v; b[1] = (unsigned char)(v >> 8);\n"
    "}\n"
    "static __device__ __forceinline__ void lk_cuk_st32(unsigned char* b, unsigned v) {\n"
    "  if (!((unsigned long long)b & 3u)) { *(unsigned*)b = v; return; }\n"
    "  for (int k = 0; k < 4; ++k) b[k] = (unsigned char)(v >> (8 * k));\n"
    "}\n"
    "static __device__ __forceinline__ void lk_cuk_st64(unsigned char* b, unsigned long long v) {\n"
    "  if (!((unsigned long long)b & 7u)) { *(unsigned long long*)b = v; return; }\n"
    "  for (int k = 0; k < 8; ++k) b[k] = (unsigned char)(v >> (8 * k));\n"
    "}\n"
    "#define LK_LD8(b) lk_cuk_ld8(b)\n"
    "#define LK_LD16(b) lk_cuk_ld16(b)\n"
    "#define LK_LD32(b) lk_cuk_ld32(b)\n"
    "#define LK_LD64(b) lk_cuk_ld64(b)\n"
    "#define LK_ST8(b, v) lk_cuk_st8((b), (v))\n"
    "#define LK_ST16(b, v) lk_cuk_st16((b), (v))\n"
    "#define LK_ST32(b, v) lk_cuk_st32((b), (v))\n"
    "#define LK_ST64(b, v) lk_cuk_st64((b), (v))\n";
#endif

LK_CUK_ARITH(
typedef unsigned int lk_u32;
typedef unsigned long long lk_u64;
typedef long long lk_i64;

/* lightos_dtype_t and lightos_reduce_op_t values (comm_nccl.c checks them);
 * OR is internal (the STRICT non-finite masks). */
enum {
  LK_CUK_F32 = 1, LK_CUK_F64 = 2, LK_CUK_F16 = 3, LK_CUK_BF16 = 4,
  LK_CUK_I32 = 5, LK_CUK_I64 = 6, LK_CUK_U8 = 7
};
enum {
  LK_CUK_SUM = 1, LK_CUK_PROD = 2, LK_CUK_MIN = 3, LK_CUK_MAX = 4, LK_CUK_AVG = 5,
  LK_CUK_OR = 6
};
/* comm_reduce.h: LK_SPECIAL_*, LK_STRICT_BLOCK, Q, LK_STRICT_EXP_ZERO. */
enum { LK_CUK_NAN = 1, LK_CUK_PINF = 2, LK_CUK_NINF = 4 };
enum { LK_CUK_BLOCK = 256, LK_CUK_Q = 48, LK_CUK_EXP_ZERO = -32768 };

/* Byte address of element i of e bytes. */
LK_D const unsigned char* lk_cuk_at(const void* p, lk_u64 i, lk_u64 e) {
  return (const unsigned char*)p + i * e;
}
LK_D unsigned char* lk_cuk_wat(void* p, lk_u64 i, lk_u64 e) { return (unsigned char*)p + i * e; }

LK_D lk_u64 lk_cuk_esize(int dt) {
  if (dt == LK_CUK_F64 || dt == LK_CUK_I64) return 8u;
  if (dt == LK_CUK_F16 || dt == LK_CUK_BF16) return 2u;
  if (dt == LK_CUK_U8) return 1u;
  return 4u;
}

/* ---- IEEE rounding (comm_reduce.c lk_round_bits, 64-bit magnitudes) ----
 * The bits of (neg ? -1 : 1) * (mag + f) * 2^exp2 rounded to nearest even,
 * f in [0, 1) nonzero exactly when sticky, in a format with mant_bits
 * stored mantissa bits and exp_bits exponent bits; 0 gives +0. */
LK_D lk_u64 lk_cuk_round_bits(int neg, lk_u64 mag, int exp2, int sticky, int mant_bits,
                              int exp_bits) {
  lk_u64 sign = neg ? (lk_u64)1 << (mant_bits + exp_bits) : 0u;
  int bias, emin, e, quantum, shift, up;
  lk_u64 q, exp_field, bits, inf;
  if (mag == 0u) return 0u;
  bias = (1 << (exp_bits - 1)) - 1;
  emin = 1 - bias;
  e = 63 - LK_CLZ64(mag) + exp2;
  quantum = (e < emin ? emin : e) - mant_bits;
  shift = quantum - exp2;
  if (shift <= 0) {
    /* Exact: the result has at most mant_bits + 1 bits, so -shift <= 52. */
    q = mag << -shift;
  } else if (shift >= 64) {
    /* q = 0; the dropped part is all of mag against half = 2^(shift-1). */
    up = shift == 64 && (mag > ((lk_u64)1 << 63) || (mag == ((lk_u64)1 << 63) && sticky));
    q = up ? 1u : 0u;
  } else {
    lk_u64 rem, half;
    q = mag >> shift;
    rem = mag & ((((lk_u64)1) << shift) - 1u);
    half = (lk_u64)1 << (shift - 1);
    up = rem > half || (rem == half && (sticky || (q & 1u)));
    if (up) q++;
  }
  exp_field = e < emin ? 0u : (lk_u64)(e + bias);
  bits = e < emin ? q : (exp_field << mant_bits) + (q - ((lk_u64)1 << mant_bits));
  inf = (((lk_u64)1 << exp_bits) - 1u) << mant_bits;
  if (bits >= inf) bits = inf;
  return sign | bits;
}

/* ---- element conversions (comm_reduce.c) ---- */
LK_D float lk_cuk_f16_to_f32(lk_u32 h) {
  lk_u32 sign = (h & 0x8000u) << 16;
  lk_u32 ex = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (ex == 0x1fu) return LK_U2F(sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0u));
  if (ex == 0u) {
    float v;
    if (!man) return LK_U2F(sign);
    v = (float)man * 0x1p-24f;
    return sign ? -v : v;
  }
  return LK_U2F(sign | ((ex + 112u) << 23) | (man << 13));
}

LK_D lk_u32 lk_cuk_f32_to_f16(float f) {
  lk_u32 u = LK_F2U(f);
  int neg = (int)(u >> 31);
  lk_u32 ex = (u >> 23) & 0xffu, man = u & 0x7fffffu, r;
  lk_u64 m;
  int e2;
  if (ex == 0xffu) return (neg ? 0x8000u : 0u) | 0x7c00u | (man ? 0x200u : 0u);
  if (ex == 0u && man == 0u) return neg ? 0x8000u : 0u;
  m = ex ? (lk_u64)(man | 0x800000u) : (lk_u64)man;
  e2 = (ex ? (int)ex : 1) - 150;
  r = (lk_u32)lk_cuk_round_bits(neg, m, e2, 0, 10, 5) & 0xffffu;
  if (!(r & 0x7fffu) && neg) r = 0x8000u;
  return r;
}

LK_D float lk_cuk_bf16_to_f32(lk_u32 h) { return LK_U2F((h & 0xffffu) << 16); }

LK_D lk_u32 lk_cuk_f32_to_bf16(float f) {
  lk_u32 u = LK_F2U(f), lsb;
  if ((u & 0x7fffffffu) > 0x7f800000u) return ((u >> 16) | 0x40u) & 0xffffu;
  lsb = (u >> 16) & 1u;
  return ((u + 0x7fffu + lsb) >> 16) & 0xffffu;
}

/* ---- combining accumulators ---- */

/* The NaN an SSE/AVX addition or multiplication of a and b gives. */
LK_D float lk_cuk_qnanf(float a, float b, lk_u32 dnan) {
  if (a != a) return LK_U2F(LK_F2U(a) | 0x400000u);
  if (b != b) return LK_U2F(LK_F2U(b) | 0x400000u);
  return LK_U2F(dnan);
}
LK_D double lk_cuk_qnand(double a, double b, lk_u64 dnan) {
  if (a != a) return LK_U2D(LK_D2U(a) | 0x8000000000000ull);
  if (b != b) return LK_U2D(LK_D2U(b) | 0x8000000000000ull);
  return LK_U2D(dnan);
}

/* Order-independent min/max: NaN wins (canonical), -0 < +0. */
LK_D float lk_cuk_minf(float a, float b) {
  if (a != a || b != b) return LK_U2F(0x7fc00000u);
  if (a == b) return (LK_F2U(a) >> 31) ? a : b;
  return a < b ? a : b;
}
LK_D float lk_cuk_maxf(float a, float b) {
  if (a != a || b != b) return LK_U2F(0x7fc00000u);
  if (a == b) return (LK_F2U(a) >> 31) ? b : a;
  return a > b ? a : b;
}
LK_D double lk_cuk_mind(double a, double b) {
  if (a != a || b != b) return LK_U2D(0x7ff8000000000000ull);
  if (a == b) return (LK_D2U(a) >> 63) ? a : b;
  return a < b ? a : b;
}
LK_D double lk_cuk_maxd(double a, double b) {
  if (a != a || b != b) return LK_U2D(0x7ff8000000000000ull);
  if (a == b) return (LK_D2U(a) >> 63) ? b : a;
  return a > b ? a : b;
}

LK_D float lk_cuk_comb_f(int op, float a, float b, lk_u32 dnan) {
  float r;
  if (op == LK_CUK_MIN) return lk_cuk_minf(a, b);
  if (op == LK_CUK_MAX) return lk_cuk_maxf(a, b);
  r = op == LK_CUK_PROD ? a * b : a + b;
  return r != r ? lk_cuk_qnanf(a, b, dnan) : r;
}
LK_D double lk_cuk_comb_d(int op, double a, double b, lk_u64 dnan) {
  double r;
  if (op == LK_CUK_MIN) return lk_cuk_mind(a, b);
  if (op == LK_CUK_MAX) return lk_cuk_maxd(a, b);
  r = op == LK_CUK_PROD ? a * b : a + b;
  return r != r ? lk_cuk_qnand(a, b, dnan) : r;
}
/* Integers: values of the type held in an lk_i64; sums and products wrap. */
LK_D lk_i64 lk_cuk_comb_i(int dt, int op, lk_i64 a, lk_i64 b) {
  lk_u64 r;
  if (op == LK_CUK_MIN) return b < a ? b : a;
  if (op == LK_CUK_MAX) return b > a ? b : a;
  if (op == LK_CUK_OR) return a | b;
  r = op == LK_CUK_PROD ? (lk_u64)a * (lk_u64)b : (lk_u64)a + (lk_u64)b;
  if (dt == LK_CUK_I32) return (lk_i64)(int)(lk_u32)r;
  if (dt == LK_CUK_U8) return (lk_i64)(r & 0xffu);
  return (lk_i64)r;
}

/* ---- loads (element type -> accumulator) ---- */
LK_D float lk_cuk_load_f(const void* p, lk_u64 i, int dt) {
  if (dt == LK_CUK_F16) return lk_cuk_f16_to_f32(LK_LD16(lk_cuk_at(p, i, 2)));
  if (dt == LK_CUK_BF16) return lk_cuk_bf16_to_f32(LK_LD16(lk_cuk_at(p, i, 2)));
  return LK_U2F(LK_LD32(lk_cuk_at(p, i, 4)));
}
LK_D lk_i64 lk_cuk_load_i(const void* p, lk_u64 i, int dt) {
  if (dt == LK_CUK_I32) return (lk_i64)(int)LK_LD32(lk_cuk_at(p, i, 4));
  if (dt == LK_CUK_I64) return (lk_i64)LK_LD64(lk_cuk_at(p, i, 8));
  return (lk_i64)LK_LD8(lk_cuk_at(p, i, 1));
}

/* Input t of a reduction: this rank's own data, or slot t of the received
 * ones (slots + t * stride elements). */
LK_D const void* lk_cuk_in(const void* own, const void* slots, lk_u64 stride, lk_u32 me,
                           lk_u32 t, int dt) {
  if (t == me) return own;
  return (const void*)((const char*)slots + (lk_u64)t * stride * lk_cuk_esize(dt));
}

/* ---- the fixed tree over n inputs, element i ----
 * Leaves are pushed in rank order; after leaf t, ctz(t + 1) merges
 * (left = the earlier partial result) complete the balanced power-of-two
 * subtrees; at the end the remaining partial results (one per set bit of
 * n, largest first) combine right to left: b1 op (b2 op (... op bk)),
 * which is the host's split at the largest power of two below m. */
LK_D float lk_cuk_tree_f(int dt, int op, const void* own, const void* slots, lk_u64 stride,
                         lk_u32 me, lk_u32 n, lk_u64 i, lk_u32 dnan) {
  float st[32];
  float acc;
  int sp = 0;
  lk_u32 t;
  if (n == 2u)
    return lk_cuk_comb_f(op, lk_cuk_load_f(lk_cuk_in(own, slots, stride, me, 0u, dt), i, dt),
                         lk_cuk_load_f(lk_cuk_in(own, slots, stride, me, 1u, dt), i, dt), dnan);
  for (t = 0; t < n; ++t) {
    float v = lk_cuk_load_f(lk_cuk_in(own, slots, stride, me, t, dt), i, dt);
    lk_u32 c = t + 1u;
    while (!(c & 1u)) {
      v = lk_cuk_comb_f(op, st[--sp], v, dnan);
      c >>= 1;
    }
    st[sp++] = v;
  }
  acc = st[--sp];
  while (sp > 0) acc = lk_cuk_comb_f(op, st[--sp], acc, dnan);
  return acc;
}
LK_D double lk_cuk_tree_d(int op, const void* own, const void* slots, lk_u64 stride, lk_u32 me,
                          lk_u32 n, lk_u64 i, lk_u64 dnan) {
  double st[32];
  double acc;
  int sp = 0;
  lk_u32 t;
  for (t = 0; t < n; ++t) {
    double v = LK_U2D(LK_LD64(lk_cuk_at(lk_cuk_in(own, slots, stride, me, t, LK_CUK_F64), i, 8)));
    lk_u32 c = t + 1u;
    while (!(c & 1u)) {
      v = lk_cuk_comb_d(op, st[--sp], v, dnan);
      c >>= 1;
    }
    st[sp++] = v;
  }
  acc = st[--sp];
  while (sp > 0) acc = lk_cuk_comb_d(op, st[--sp], acc, dnan);
  return acc;
}
LK_D lk_i64 lk_cuk_tree_i(int dt, int op, const void* own, const void* slots, lk_u64 stride,
                          lk_u32 me, lk_u32 n, lk_u64 i) {
  lk_i64 st[32];
  lk_i64 acc;
  int sp = 0;
  lk_u32 t;
  for (t = 0; t < n; ++t) {
    lk_i64 v = lk_cuk_load_i(lk_cuk_in(own, slots, stride, me, t, dt), i, dt);
    lk_u32 c = t + 1u;
    while (!(c & 1u)) {
      v = lk_cuk_comb_i(dt, op, st[--sp], v);
      c >>= 1;
    }
    st[sp++] = v;
  }
  acc = st[--sp];
  while (sp > 0) acc = lk_cuk_comb_i(dt, op, st[--sp], acc);
  return acc;
}

/* ---- accumulator -> element (lk_red_finish: avg divides once) ---- */
/* The element bits of a float accumulator, finished (avg: divided once). */
LK_D lk_u32 lk_cuk_finish_f(int dt, int op, float acc, lk_u64 ntotal, lk_u32 dnan) {
  if (op == LK_CUK_AVG && ntotal > 1u) {
    float d = (float)ntotal;
    float r = acc / d;
    acc = r != r ? lk_cuk_qnanf(acc, d, dnan) : r;
  }
  /* Results carry the canonical NaN (lk_red_finish): which payload an
   * addition passes on depends on the operand order chosen by a compiler. */
  if (acc != acc) return dt == LK_CUK_F16 ? 0x7e00u : dt == LK_CUK_BF16 ? 0x7fc0u : 0x7fc00000u;
  if (dt == LK_CUK_F16) return lk_cuk_f32_to_f16(acc);
  if (dt == LK_CUK_BF16) return lk_cuk_f32_to_bf16(acc);
  return LK_F2U(acc);
}
LK_D void lk_cuk_store_f(void* out, lk_u64 i, int dt, int op, float acc, lk_u64 ntotal,
                         lk_u32 dnan) {
  lk_u32 b = lk_cuk_finish_f(dt, op, acc, ntotal, dnan);
  if (dt == LK_CUK_F16 || dt == LK_CUK_BF16) LK_ST16(lk_cuk_wat(out, i, 2), b);
  else LK_ST32(lk_cuk_wat(out, i, 4), b);
}
LK_D lk_u64 lk_cuk_finish_d(int op, double acc, lk_u64 ntotal, lk_u64 dnan) {
  if (op == LK_CUK_AVG && ntotal > 1u) {
    double d = (double)ntotal;
    double r = acc / d;
    acc = r != r ? lk_cuk_qnand(acc, d, dnan) : r;
  }
  return acc != acc ? 0x7ff8000000000000ull : LK_D2U(acc);
}
LK_D void lk_cuk_store_d(void* out, lk_u64 i, int op, double acc, lk_u64 ntotal, lk_u64 dnan) {
  LK_ST64(lk_cuk_wat(out, i, 8), lk_cuk_finish_d(op, acc, ntotal, dnan));
}
/* Finishes element i of an f32 or f64 accumulator array in place (the
 * reduced chunk of the recursive-halving allreduce, whose sums NCCL made):
 * avg divides, NaN becomes canonical; stores only what changes. */
LK_D void lk_cuk_fin_elem(int dt, int op, void* buf, lk_u64 i, lk_u64 ntotal, lk_u32 dnan_f,
                          lk_u64 dnan_d) {
  if (dt == LK_CUK_F64) {
    lk_u64 u = LK_LD64(lk_cuk_at(buf, i, 8));
    lk_u64 b = lk_cuk_finish_d(op, LK_U2D(u), ntotal, dnan_d);
    if (b != u) LK_ST64(lk_cuk_wat(buf, i, 8), b);
  } else {
    lk_u32 u = LK_LD32(lk_cuk_at(buf, i, 4));
    lk_u32 b = lk_cuk_finish_f(LK_CUK_F32, op, LK_U2F(u), ntotal, dnan_f);
    if (b != u) LK_ST32(lk_cuk_wat(buf, i, 4), b);
  }
}
LK_D void lk_cuk_store_i(void* out, lk_u64 i, int dt, int op, lk_i64 acc, lk_u64 ntotal) {
  if (op == LK_CUK_AVG && ntotal > 1u) {
    if (dt == LK_CUK_I32) acc = (lk_i64)(int)(acc / (lk_i64)ntotal);
    else if (dt == LK_CUK_I64) acc = ntotal > 0x7fffffffffffffffull ? 0 : acc / (lk_i64)ntotal;
    else acc = (lk_i64)((lk_u64)acc / ntotal);
  }
  if (dt == LK_CUK_I32) LK_ST32(lk_cuk_wat(out, i, 4), (lk_u32)acc);
  else if (dt == LK_CUK_I64) LK_ST64(lk_cuk_wat(out, i, 8), (lk_u64)acc);
  else LK_ST8(lk_cuk_wat(out, i, 1), (lk_u32)acc & 0xffu);
}

/* out[i] = the tree over the n inputs' element i, finished (TOPOLOGY). */
LK_D void lk_cuk_tree_elem(int dt, int op, const void* own, const void* slots, lk_u64 stride,
                           lk_u32 me, lk_u32 n, void* out, lk_u64 i, lk_u64 ntotal,
                           lk_u32 dnan_f, lk_u64 dnan_d) {
  if (dt == LK_CUK_F32 || dt == LK_CUK_F16 || dt == LK_CUK_BF16)
    lk_cuk_store_f(out, i, dt, op, lk_cuk_tree_f(dt, op, own, slots, stride, me, n, i, dnan_f),
                   ntotal, dnan_f);
  else if (dt == LK_CUK_F64)
    lk_cuk_store_d(out, i, op, lk_cuk_tree_d(op, own, slots, stride, me, n, i, dnan_d), ntotal,
                   dnan_d);
  else
    lk_cuk_store_i(out, i, dt, op, lk_cuk_tree_i(dt, op, own, slots, stride, me, n, i), ntotal);
}

/* Two ranks, one 16-byte pack of a float type (4 f32 or 8 f16/bf16
 * elements, little-endian words): wr = wa op wb, finished (the tree of two
 * leaves: rank 0's value on the left). */
LK_D void lk_cuk_tree2_pack(int dt, int op, const lk_u32* wa, const lk_u32* wb, lk_u32* wr,
                            lk_u64 ntotal, lk_u32 dnan) {
  int k;
  if (dt == LK_CUK_F32) {
    for (k = 0; k < 4; ++k)
      wr[k] = lk_cuk_finish_f(dt, op, lk_cuk_comb_f(op, LK_U2F(wa[k]), LK_U2F(wb[k]), dnan),
                              ntotal, dnan);
    return;
  }
  for (k = 0; k < 4; ++k) wr[k] = 0u;
  for (k = 0; k < 8; ++k) {
    int sh = 16 * (k & 1);
    lk_u32 ha = (wa[k >> 1] >> sh) & 0xffffu, hb = (wb[k >> 1] >> sh) & 0xffffu;
    float a = dt == LK_CUK_F16 ? lk_cuk_f16_to_f32(ha) : lk_cuk_bf16_to_f32(ha);
    float b = dt == LK_CUK_F16 ? lk_cuk_f16_to_f32(hb) : lk_cuk_bf16_to_f32(hb);
    wr[k >> 1] |= (lk_cuk_finish_f(dt, op, lk_cuk_comb_f(op, a, b, dnan), ntotal, dnan) &
                   0xffffu) << sh;
  }
}

/* ---- STRICT (f32, f16, bf16) ---- */

/* |x| = m * 2^k for a finite value (returns 1); NaN/Inf return 0 with
 * *special set (lk_dec). */
LK_D int lk_cuk_dec(int dt, const void* p, lk_u64 i, int* neg, lk_u64* m, int* k,
                    lk_u32* special) {
  lk_u32 u, ex, man, top;
  int mant_bits, bias;
  if (dt == LK_CUK_F32) {
    u = LK_LD32(lk_cuk_at(p, i, 4));
    *neg = (int)(u >> 31);
    ex = (u >> 23) & 0xffu;
    man = u & 0x7fffffu;
    mant_bits = 23;
    bias = 127;
    top = 0xffu;
  } else if (dt == LK_CUK_F16) {
    u = LK_LD16(lk_cuk_at(p, i, 2));
    *neg = (int)(u >> 15);
    ex = (u >> 10) & 0x1fu;
    man = u & 0x3ffu;
    mant_bits = 10;
    bias = 15;
    top = 0x1fu;
  } else {
    u = LK_LD16(lk_cuk_at(p, i, 2));
    *neg = (int)(u >> 15);
    ex = (u >> 7) & 0xffu;
    man = u & 0x7fu;
    mant_bits = 7;
    bias = 127;
    top = 0xffu;
  }
  if (ex == top) {
    *special = man ? (lk_u32)LK_CUK_NAN : *neg ? (lk_u32)LK_CUK_NINF : (lk_u32)LK_CUK_PINF;
    return 0;
  }
  *m = ex ? (lk_u64)(man | (1u << mant_bits)) : (lk_u64)man;
  *k = (ex ? (int)ex : 1) - bias - mant_bits;
  return 1;
}

/* Element i's exponent for the block maximum: floor(log2|x|) + 1 of a
 * finite nonzero value, LK_CUK_EXP_ZERO otherwise; *special gets the
 * NaN/Inf class (0 for finite values). */
LK_D int lk_cuk_strict_e(int dt, const void* p, lk_u64 i, lk_u32* special) {
  int neg, k;
  lk_u64 m;
  *special = 0u;
  if (!lk_cuk_dec(dt, p, i, &neg, &m, &k, special) || !m) return LK_CUK_EXP_ZERO;
  return 64 - LK_CLZ64(m) + k;
}

/* round_even(m * 2^shift) (lk_scale_round; m < 2^53). */
LK_D lk_u64 lk_cuk_scale_round(lk_u64 m, int shift) {
  int r;
  lk_u64 q, rem, half;
  if (shift >= 0) return shift < 64 ? m << shift : 0u;
  r = -shift;
  if (r >= 64) return r == 64 && m > ((lk_u64)1 << 63) ? 1u : 0u;
  q = m >> r;
  rem = m & ((((lk_u64)1) << r) - 1u);
  half = (lk_u64)1 << (r - 1);
  if (rem > half || (rem == half && (q & 1u))) q++;
  return q;
}

/* Element i as fixed point with the block exponent E (lk_strict_add on a
 * zeroed sum: NaN/Inf and zeros give 0); a NaN/Inf's class is OR-ed into
 * *special (lk_strict_scan's flags). */
LK_D lk_i64 lk_cuk_fixed_sp(int dt, const void* p, lk_u64 i, int E, lk_u32* special) {
  int neg, k;
  lk_u64 m, v;
  lk_u32 sp = 0u;
  if (!lk_cuk_dec(dt, p, i, &neg, &m, &k, &sp)) {
    *special |= sp;
    return 0;
  }
  if (!m) return 0;
  v = lk_cuk_scale_round(m, k + LK_CUK_Q - E);
  return (lk_i64)(neg ? (lk_u64)0 - v : v);
}

/* The IEEE bits of a fixed-point sum v with block exponent E, rounded once
 * (avg: divided by ntotal first); special (a non-finite mask entry, 0 for
 * none) decides NaN/Inf results (lk_strict_finish). */
LK_D lk_u64 lk_cuk_strict_bits(int dt, int op, lk_i64 v, int E, lk_u32 special,
                               lk_u64 ntotal) {
  int mant_bits, exp_bits, neg, exp2, sticky = 0;
  lk_u64 qnan, pinf, sign_bit, mag;
  if (dt == LK_CUK_F32) {
    mant_bits = 23;
    exp_bits = 8;
    qnan = 0x7fc00000u;
    pinf = 0x7f800000u;
  } else if (dt == LK_CUK_F16) {
    mant_bits = 10;
    exp_bits = 5;
    qnan = 0x7e00u;
    pinf = 0x7c00u;
  } else {
    mant_bits = 7;
    exp_bits = 8;
    qnan = 0x7fc0u;
    pinf = 0x7f80u;
  }
  sign_bit = (lk_u64)1 << (mant_bits + exp_bits);
  if (special) {
    if ((special & LK_CUK_NAN) || ((special & LK_CUK_PINF) && (special & LK_CUK_NINF)))
      return qnan;
    return (special & LK_CUK_PINF) ? pinf : (pinf | sign_bit);
  }
  neg = v < 0;
  mag = neg ? (lk_u64)0 - (lk_u64)v : (lk_u64)v;
  exp2 = E - LK_CUK_Q;
  if (op == LK_CUK_AVG && ntotal > 1u && mag) {
    /* Normalise to 64 bits, then divide: the quotient keeps >= 50 bits. */
    int s = LK_CLZ64(mag);
    lk_u64 num = mag << s;
    mag = num / ntotal;
    sticky = num % ntotal != 0u;
    exp2 -= s;
  }
  return lk_cuk_round_bits(neg, mag, exp2, sticky, mant_bits, exp_bits);
}

LK_D void lk_cuk_store_bits(void* out, lk_u64 i, int dt, lk_u64 bits) {
  if (dt == LK_CUK_F32) LK_ST32(lk_cuk_wat(out, i, 4), (lk_u32)bits);
  else LK_ST16(lk_cuk_wat(out, i, 2), (lk_u32)bits & 0xffffu);
}

/* out[j] = the STRICT sum (avg) of the n ranks' element j, global index
 * gbase + j: rank t's element is own[j] for t == me, else slots[t * stride
 * + j] (the raw elements of dt, as the all-to-all brought them).  Each is
 * converted to fixed point with the block's shared exponent, the int64
 * sum is exact (wrapping like the host's), the NaN/Inf classes of the n
 * values are OR-ed (the host's merged non-finite mask), rounded once. */
LK_D void lk_cuk_strict_elem(int dt, int op, const void* own, const void* slots, lk_u64 stride,
                             lk_u32 me, lk_u32 n, void* out, lk_u64 j, lk_u64 gbase,
                             const int* exps, lk_u64 ntotal) {
  const int E = exps[(gbase + j) / LK_CUK_BLOCK];
  lk_u64 acc = 0u;
  lk_u32 sp = 0u, t;
  for (t = 0; t < n; ++t)
    acc += (lk_u64)lk_cuk_fixed_sp(dt, lk_cuk_in(own, slots, stride, me, t, dt), j, E, &sp);
  lk_cuk_store_bits(out, j, dt, lk_cuk_strict_bits(dt, op, (lk_i64)acc, E, sp, ntotal));
}
)

#ifndef LK_CUK_HOST
/* The entry points.  Every kernel is a grid-stride loop (any grid size)
 * except lk_cuk_scan_k, which needs blockDim.x == 256 (one thread per
 * element of a 256-element exponent block). */
static const char lk_cuk_kernels[] =
    "\nextern \"C\" __global__ void lk_cuk_tree_k(int dt, int op, const void* own,\n"
    "    const void* slots, unsigned long long stride, unsigned me, unsigned n, void* out,\n"
    "    unsigned long long len, unsigned long long ntotal, unsigned dnan_f,\n"
    "    unsigned long long dnan_d) {\n"
    "  for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
    "       i < len; i += (unsigned long long)gridDim.x * blockDim.x)\n"
    "    lk_cuk_tree_elem(dt, op, own, slots, stride, me, n, out, i, ntotal, dnan_f, dnan_d);\n"
    "}\n"
    /* Two ranks, a float type, a (rank 0's), b and out 16-byte aligned: one
     * 16-byte pack per thread and step, the tail element-wise. */
    "extern \"C\" __global__ void lk_cuk_tree2v_k(int dt, int op, const void* a, const void* b,\n"
    "    void* out, unsigned long long len, unsigned long long ntotal, unsigned dnan_f) {\n"
    "  const unsigned long long epp = dt == LK_CUK_F32 ? 4u : 8u, npk = len / epp;\n"
    "  const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;\n"
    "  const unsigned long long t0 = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  const uint4* pa = (const uint4*)a;\n"
    "  const uint4* pb = (const uint4*)b;\n"
    "  uint4* po = (uint4*)out;\n"
    "  for (unsigned long long q = t0; q < npk; q += step) {\n"
    "    uint4 va = pa[q], vb = pb[q], vr;\n"
    "    unsigned wa[4] = {va.x, va.y, va.z, va.w}, wb[4] = {vb.x, vb.y, vb.z, vb.w}, wr[4];\n"
    "    lk_cuk_tree2_pack(dt, op, wa, wb, wr, ntotal, dnan_f);\n"
    "    vr.x = wr[0]; vr.y = wr[1]; vr.z = wr[2]; vr.w = wr[3];\n"
    "    po[q] = vr;\n"
    "  }\n"
    "  for (unsigned long long i = npk * epp + t0; i < len; i += step)\n"
    "    lk_cuk_store_f(out, i, dt, op,\n"
    "                   lk_cuk_comb_f(op, lk_cuk_load_f(a, i, dt), lk_cuk_load_f(b, i, dt), dnan_f),\n"
    "                   ntotal, dnan_f);\n"
    "}\n"
    /* n = 4 or 8 ranks, f32 or f64, every operand 16-byte aligned (own,
     * slots, the slot stride, out): one 16-byte pack from each rank per
     * thread and step, all n loads in flight at once, the fixed tree of
     * lk_cuk_tree_f/_d unrolled over registers (the same leaves, merges and
     * final right-to-left combination), finished as lk_cuk_store_f/_d; the
     * tail element-wise. */
    "template <int N> __device__ __forceinline__ float lk_cuk_treevals_f(int op, const float* v,\n"
    "    unsigned dnan) {\n"
    "  float st[N];\n"
    "  int sp = 0;\n"
    "#pragma unroll\n"
    "  for (int t = 0; t < N; ++t) {\n"
    "    float x = v[t];\n"
    "#pragma unroll\n"
    "    for (unsigned c = (unsigned)t + 1u; !(c & 1u); c >>= 1) x = lk_cuk_comb_f(op, st[--sp], x, dnan);\n"
    "    st[sp++] = x;\n"
    "  }\n"
    "  float acc = st[sp - 1];\n"
    "#pragma unroll\n"
    "  for (int k = sp - 2; k >= 0; --k) acc = lk_cuk_comb_f(op, st[k], acc, dnan);\n"
    "  return acc;\n"
    "}\n"
    "template <int N> __device__ __forceinline__ double lk_cuk_treevals_d(int op, const double* v,\n"
    "    unsigned long long dnan) {\n"
    "  double st[N];\n"
    "  int sp = 0;\n"
    "#pragma unroll\n"
    "  for (int t = 0; t < N; ++t) {\n"
    "    double x = v[t];\n"
    "#pragma unroll\n"
    "    for (unsigned c = (unsigned)t + 1u; !(c & 1u); c >>= 1) x = lk_cuk_comb_d(op, st[--sp], x, dnan);\n"
    "    st[sp++] = x;\n"
    "  }\n"
    "  double acc = st[sp - 1];\n"
    "#pragma unroll\n"
    "  for (int k = sp - 2; k >= 0; --k) acc = lk_cuk_comb_d(op, st[k], acc, dnan);\n"
    "  return acc;\n"
    "}\n"
    "__device__ __forceinline__ unsigned lk_cuk_u4(const uint4& v, int k) {\n"
    "  return k == 0 ? v.x : k == 1 ? v.y : k == 2 ? v.z : v.w;\n"
    "}\n"
    "template <int N> __device__ __forceinline__ void lk_cuk_treev(int dt, int op, const void* own,\n"
    "    const void* slots, unsigned long long stride, unsigned me, void* out,\n"
    "    unsigned long long len, unsigned long long ntotal, unsigned dnan_f,\n"
    "    unsigned long long dnan_d) {\n"
    "  const unsigned long long es = dt == LK_CUK_F64 ? 8u : 4u, epp = 16u / es, npk = len / epp;\n"
    "  const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;\n"
    "  const unsigned long long t0 = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  const uint4* src[N];\n"
    "#pragma unroll\n"
    "  for (int t = 0; t < N; ++t)\n"
    "    src[t] = (const uint4*)((unsigned)t == me ? own\n"
    "                            : (const void*)((const char*)slots + (unsigned long long)t * stride * es));\n"
    "  uint4* po = (uint4*)out;\n"
    "  for (unsigned long long q = t0; q < npk; q += step) {\n"
    "    uint4 v[N];\n"
    "#pragma unroll\n"
    "    for (int t = 0; t < N; ++t) v[t] = src[t][q];\n"
    /* The lanes in a loop that is not unrolled (unrolled, the tree and the
     * finish over 4 lanes x 2 kernels made NVRTC ten times slower); the
     * result words are selected into registers, not indexed. */
    "    uint4 r = make_uint4(0u, 0u, 0u, 0u);\n"
    "    if (dt == LK_CUK_F64) {\n"
    "#pragma unroll 1\n"
    "      for (int k = 0; k < 2; ++k) {\n"
    "        double a[N];\n"
    "#pragma unroll\n"
    "        for (int t = 0; t < N; ++t)\n"
    "          a[t] = __longlong_as_double((long long)(((unsigned long long)lk_cuk_u4(v[t], 2 * k + 1) << 32) |\n"
    "                                                  lk_cuk_u4(v[t], 2 * k)));\n"
    "        unsigned long long b = lk_cuk_finish_d(op, lk_cuk_treevals_d<N>(op, a, dnan_d), ntotal, dnan_d);\n"
    "        if (k == 0) { r.x = (unsigned)b; r.y = (unsigned)(b >> 32); }\n"
    "        else { r.z = (unsigned)b; r.w = (unsigned)(b >> 32); }\n"
    "      }\n"
    "    } else {\n"
    "#pragma unroll 1\n"
    "      for (int k = 0; k < 4; ++k) {\n"
    "        float a[N];\n"
    "#pragma unroll\n"
    "        for (int t = 0; t < N; ++t) a[t] = __uint_as_float(lk_cuk_u4(v[t], k));\n"
    "        unsigned b = lk_cuk_finish_f(LK_CUK_F32, op, lk_cuk_treevals_f<N>(op, a, dnan_f), ntotal, dnan_f);\n"
    "        r.x = k == 0 ? b : r.x;\n"
    "        r.y = k == 1 ? b : r.y;\n"
    "        r.z = k == 2 ? b : r.z;\n"
    "        r.w = k == 3 ? b : r.w;\n"
    "      }\n"
    "    }\n"
    "    po[q] = r;\n"
    "  }\n"
    "  for (unsigned long long i = npk * epp + t0; i < len; i += step)\n"
    "    lk_cuk_tree_elem(dt, op, own, slots, stride, me, (unsigned)N, out, i, ntotal, dnan_f, dnan_d);\n"
    "}\n"
    "extern \"C\" __global__ void lk_cuk_treev4_k(int dt, int op, const void* own, const void* slots,\n"
    "    unsigned long long stride, unsigned me, void* out, unsigned long long len,\n"
    "    unsigned long long ntotal, unsigned dnan_f, unsigned long long dnan_d) {\n"
    "  lk_cuk_treev<4>(dt, op, own, slots, stride, me, out, len, ntotal, dnan_f, dnan_d);\n"
    "}\n"
    "extern \"C\" __global__ void lk_cuk_treev8_k(int dt, int op, const void* own, const void* slots,\n"
    "    unsigned long long stride, unsigned me, void* out, unsigned long long len,\n"
    "    unsigned long long ntotal, unsigned dnan_f, unsigned long long dnan_d) {\n"
    "  lk_cuk_treev<8>(dt, op, own, slots, stride, me, out, len, ntotal, dnan_f, dnan_d);\n"
    "}\n"
    /* In-place finish of an f32/f64 region (lk_cuk_fin_elem), a pure
     * stream over memory: at a 16-byte aligned address four 16-byte packs
     * per thread and step (enough loads in flight for the memory's
     * bandwidth), a pack written only when it changes.  flag (may be
     * NULL): nothing to do when it holds 0 (lk_cuk_special_k). */
    "__device__ __forceinline__ uint4 lk_cuk_fin_pack(int dt, int op, uint4 v,\n"
    "    unsigned long long ntotal, unsigned dnan_f, unsigned long long dnan_d) {\n"
    "  if (dt == LK_CUK_F64) {\n"
    "    unsigned long long a = ((unsigned long long)v.y << 32) | v.x;\n"
    "    unsigned long long b = ((unsigned long long)v.w << 32) | v.z;\n"
    "    a = lk_cuk_finish_d(op, __longlong_as_double((long long)a), ntotal, dnan_d);\n"
    "    b = lk_cuk_finish_d(op, __longlong_as_double((long long)b), ntotal, dnan_d);\n"
    "    return make_uint4((unsigned)a, (unsigned)(a >> 32), (unsigned)b, (unsigned)(b >> 32));\n"
    "  }\n"
    "  return make_uint4(lk_cuk_finish_f(LK_CUK_F32, op, __uint_as_float(v.x), ntotal, dnan_f),\n"
    "                    lk_cuk_finish_f(LK_CUK_F32, op, __uint_as_float(v.y), ntotal, dnan_f),\n"
    "                    lk_cuk_finish_f(LK_CUK_F32, op, __uint_as_float(v.z), ntotal, dnan_f),\n"
    "                    lk_cuk_finish_f(LK_CUK_F32, op, __uint_as_float(v.w), ntotal, dnan_f));\n"
    "}\n"
    "extern \"C\" __global__ void lk_cuk_fin_k(int dt, int op, void* buf,\n"
    "    unsigned long long len, unsigned long long ntotal, unsigned dnan_f,\n"
    "    unsigned long long dnan_d, const unsigned* flag) {\n"
    "  if (flag && !*(const volatile unsigned*)flag) return;\n"
    "  const unsigned long long nthr = (unsigned long long)gridDim.x * blockDim.x;\n"
    "  const unsigned long long t0 = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  const unsigned epp = dt == LK_CUK_F64 ? 2u : 4u;\n"
    "  unsigned long long done = 0;\n"
    "  if (!((unsigned long long)buf & 15u)) {\n"
    "    uint4* p = (uint4*)buf;\n"
    "    const unsigned long long npk = len / epp;\n"
    "    for (unsigned long long q0 = t0; q0 < npk; q0 += 4u * nthr) {\n"
    "      uint4 v[4];\n"
    "#pragma unroll\n"
    "      for (int u = 0; u < 4; ++u)\n"
    "        if (q0 + u * nthr < npk) v[u] = __ldcs(p + q0 + u * nthr);\n"
    "#pragma unroll\n"
    "      for (int u = 0; u < 4; ++u) {\n"
    "        if (q0 + u * nthr >= npk) continue;\n"
    "        uint4 w = lk_cuk_fin_pack(dt, op, v[u], ntotal, dnan_f, dnan_d);\n"
    "        if ((w.x ^ v[u].x) | (w.y ^ v[u].y) | (w.z ^ v[u].z) | (w.w ^ v[u].w))\n"
    "          p[q0 + u * nthr] = w;\n"
    "      }\n"
    "    }\n"
    "    done = npk * epp;\n"
    "  }\n"
    "  for (unsigned long long i = done + t0; i < len; i += nthr)\n"
    "    lk_cuk_fin_elem(dt, op, buf, i, ntotal, dnan_f, dnan_d);\n"
    "}\n"
    /* Sets *flag when an f32/f64 element is not finite or its magnitude
     * reaches limit (the finishing kernel then has work: no NaN can come
     * out of sums of elements below FLT_MAX / n, or DBL_MAX / n). */
    "__device__ __forceinline__ int lk_cuk_big_pack(int dt, uint4 v, double limit, float lf) {\n"
    "  if (dt == LK_CUK_F64)\n"
    "    return !(fabs(__longlong_as_double((long long)(((unsigned long long)v.y << 32) | v.x))) < limit) |\n"
    "           !(fabs(__longlong_as_double((long long)(((unsigned long long)v.w << 32) | v.z))) < limit);\n"
    "  return !(fabsf(__uint_as_float(v.x)) < lf) | !(fabsf(__uint_as_float(v.y)) < lf) |\n"
    "         !(fabsf(__uint_as_float(v.z)) < lf) | !(fabsf(__uint_as_float(v.w)) < lf);\n"
    "}\n"
    "extern \"C\" __global__ void lk_cuk_special_k(int dt, const void* in,\n"
    "    unsigned long long len, double limit, unsigned* flag) {\n"
    "  const unsigned long long nthr = (unsigned long long)gridDim.x * blockDim.x;\n"
    "  const unsigned long long t0 = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  const unsigned epp = dt == LK_CUK_F64 ? 2u : 4u;\n"
    "  unsigned long long done = 0;\n"
    "  int hit = 0;\n"
    "  const float lf = (float)limit;\n"
    "  if (!((unsigned long long)in & 15u)) {\n"
    "    const uint4* p = (const uint4*)in;\n"
    "    const unsigned long long npk = len / epp;\n"
    "    for (unsigned long long q0 = t0; q0 < npk; q0 += 4u * nthr) {\n"
    "      uint4 v[4];\n"
    "#pragma unroll\n"
    "      for (int u = 0; u < 4; ++u)\n"
    "        v[u] = q0 + u * nthr < npk ? __ldcs(p + q0 + u * nthr) : make_uint4(0u, 0u, 0u, 0u);\n"
    "#pragma unroll\n"
    "      for (int u = 0; u < 4; ++u) hit |= lk_cuk_big_pack(dt, v[u], limit, lf);\n"
    "    }\n"
    "    done = npk * epp;\n"
    "  }\n"
    "  for (unsigned long long i = done + t0; i < len; i += nthr) {\n"
    "    if (dt == LK_CUK_F64) hit |= !(fabs(LK_U2D(LK_LD64(lk_cuk_at(in, i, 8)))) < limit);\n"
    "    else hit |= !(fabsf(LK_U2F(LK_LD32(lk_cuk_at(in, i, 4)))) < lf);\n"
    "  }\n"
    "  if (__syncthreads_or(hit) && threadIdx.x == 0u) atomicOr(flag, 1u);\n"
    "}\n"
    "extern \"C\" __global__ void lk_cuk_scan_k(int dt, const void* in, unsigned long long count,\n"
    "    int* exps) {\n"
    "  __shared__ int wmax[32];\n"
    "  const unsigned long long nblocks = (count + 255u) / 256u;\n"
    "  for (unsigned long long b = blockIdx.x; b < nblocks; b += gridDim.x) {\n"
    "    unsigned long long i = b * 256u + threadIdx.x;\n"
    "    unsigned sp = 0u;\n"
    "    int e = LK_CUK_EXP_ZERO;\n"
    "    if (i < count) e = lk_cuk_strict_e(dt, in, i, &sp);\n"
    "    for (int o = 16; o > 0; o >>= 1) {\n"
    "      int x = __shfl_xor_sync(0xffffffffu, e, o);\n"
    "      e = x > e ? x : e;\n"
    "    }\n"
    "    if ((threadIdx.x & 31u) == 0u) wmax[threadIdx.x >> 5] = e;\n"
    "    __syncthreads();\n"
    "    if (threadIdx.x == 0u) {\n"
    "      int m = wmax[0];\n"
    "      for (unsigned w = 1u; w < (blockDim.x >> 5); ++w) m = wmax[w] > m ? wmax[w] : m;\n"
    "      exps[b] = m;\n"
    "    }\n"
    "    __syncthreads();\n"
    "  }\n"
    "}\n"
    "extern \"C\" __global__ void lk_cuk_strict_k(int dt, int op, const void* own,\n"
    "    const void* slots, unsigned long long stride, unsigned me, unsigned n, void* out,\n"
    "    unsigned long long len, unsigned long long gbase, const int* exps,\n"
    "    unsigned long long ntotal) {\n"
    "  for (unsigned long long j = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
    "       j < len; j += (unsigned long long)gridDim.x * blockDim.x)\n"
    "    lk_cuk_strict_elem(dt, op, own, slots, stride, me, n, out, j, gbase, exps, ntotal);\n"
    "}\n";
#endif

#endif
