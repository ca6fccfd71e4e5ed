/* Element-wise tensor ops: binary, unary (+ backward), copy, cast, fill,
 * arange, random — all in one kernel, ew_main, chosen by `mode`.
 *
 * Built by src/ops/ops_elementwise.c after lk_math.cl, once per dtype
 * family, with
 *   -D EW_FAM=0  f32, f16, bf16 (computed in float; f16/bf16 stored as
 *                ushort, converted with the numerics library, results
 *                rounded once to nearest even);
 *   -D EW_FAM=1  f64 (computed in double);
 *   -D EW_FAM=2  i32, i64, u8, bool (computed in long; stores wrap to the
 *                dtype: two's complement for i32, modulo 256 for u8,
 *                != 0 for bool);
 *   -D LK_DETERMINISTIC  (float families, deterministic contexts) the
 *                numerics library's elementary functions instead of the
 *                device's.
 * One kernel per program keeps the build cheap (device compilers spend
 * most of their time per kernel); the dtype of each tensor is a run-time
 * argument (lightos_dtype_t values: 1 f32, 2 f64, 3 f16, 4 bf16, 5 i32,
 * 6 i64, 7 u8, 8 bool) within the family, so buffers are passed as bytes.
 *
 * Indexing: one work-item per element of the output (launch size n, 1-D).
 * The work-item index gi is the row-major (flattened) index of the element
 * in the output.  Operands are found through a collapsed view: up to 8
 * dims d0..d7 (rank of them used, the innermost last), an element offset
 * o<k> and strides s<k>0..s<k>7 per operand k (0 = the output, 1 and 2 =
 * the inputs; stride 0 broadcasts).
 *
 * Modes (dta: the input dtype, dto: the output dtype):
 *   0 binary   out = a (op) b; op 1 add 2 sub 3 mul 4 div 5 max 6 min 7 pow
 *   1 unary    out = f(a); op 1 neg 2 abs 3 exp 4 log 5 sqrt 6 rsqrt 7 tanh
 *              8 sigmoid 9 relu 10 gelu_tanh 11 gelu_erf 12 silu
 *   2 backward out = f'(a) * b (same ops)
 *   3 copy     out = a, the bits as they are
 *   4 cast     out = a converted to dto: float -> int truncates and
 *              saturates (NaN -> 0), int -> int wraps, -> bool is != 0,
 *              -> f16/bf16 round to nearest even (from f64 and wide
 *              integers through a round-to-odd float, so once)
 *   5 fill     out = the storage bits u0 (the host converted the value)
 *   6 arange   out = start + gi * step, computed in double where the device
 *              has it (u0, u1 = the bits of start and step), else in float
 *              (f0, f1), stored with cast semantics
 *   7 random   Philox-4x32-10 keyed by u0 (low word first) at counter
 *              (u1 + gi, 0, 0); op 1 uniform [a, b), 2 normal (mean a,
 *              stddev b, Box-Muller), 3 dropout mask (0 when the uniform
 *              < a, else b); a, b = f0, f1 (float family) or the doubles
 *              with bits u2, u3 (f64)
 */

#if EW_FAM == 0
typedef float ew_c;
#define K(x) x##f
#elif EW_FAM == 1
typedef double ew_c;
#define K(x) x
#elif EW_FAM == 2
typedef long ew_c;
#else
#error "EW_FAM must be 0, 1 or 2"
#endif

#if EW_FAM == 0
#ifdef LK_DETERMINISTIC
#define EW_EXP(x) lk_expf(x)
#define EW_LOG(x) lk_logf(x)
#define EW_TANH(x) lk_tanhf(x)
#define EW_ERF(x) lk_erff(x)
#define EW_POW(x, y) lk_powf(x, y)
#else
#define EW_EXP(x) exp(x)
#define EW_LOG(x) log(x)
#define EW_TANH(x) tanh(x)
#define EW_ERF(x) erf(x)
#define EW_POW(x, y) pow(x, y)
#endif
#elif EW_FAM == 1
#ifdef LK_DETERMINISTIC
#define EW_EXP(x) lk_exp(x)
#define EW_LOG(x) lk_log(x)
#define EW_TANH(x) lk_tanh(x)
#define EW_ERF(x) lk_erf(x)
#define EW_POW(x, y) lk_pow(x, y)
#else
#define EW_EXP(x) exp(x)
#define EW_LOG(x) log(x)
#define EW_TANH(x) tanh(x)
#define EW_ERF(x) erf(x)
#define EW_POW(x, y) pow(x, y)
#endif
#endif

/* ---- typed access ------------------------------------------------------------ */

#define EW_F32(p) ((__global float*)(p))
#define EW_F64(p) ((__global double*)(p))
#define EW_U16(p) ((__global ushort*)(p))
#define EW_I32(p) ((__global int*)(p))
#define EW_I64(p) ((__global long*)(p))
#define EW_U32(p) ((__global uint*)(p))
#define EW_U64(p) ((__global ulong*)(p))

/* Element i of a buffer of dtype dt (of this family) as the compute type. */
static ew_c ew_ld(__global uchar* p, long i, int dt) {
#if EW_FAM == 0
  if (dt == 1) return EW_F32(p)[i];
  if (dt == 3) return lk_half_to_float(EW_U16(p)[i]);
  return lk_bf16_to_float(EW_U16(p)[i]);
#elif EW_FAM == 1
  return EW_F64(p)[i];
#else
  if (dt == 5) return (long)EW_I32(p)[i];
  if (dt == 6) return EW_I64(p)[i];
  if (dt == 7) return (long)p[i];
  return p[i] != 0 ? 1 : 0;
#endif
}

/* long -> float rounded to odd (truncate, set the last bit when inexact):
 * rounding that to f16/bf16 (11 or 8 bits) afterwards is correct. */
static float ew_i2f_odd(long x) {
  ulong a = x < 0 ? (ulong)0 - (ulong)x : (ulong)x;
  if (a < ((ulong)1 << 24)) return convert_float(x);
  int sh = 64 - (int)clz(a) - 24;
  ulong m = a >> sh;
  if (a & (((ulong)1 << sh) - 1)) m |= 1;
  float f = ldexp(convert_float(m), sh);
  return x < 0 ? -f : f;
}

#ifdef cl_khr_fp64
/* double -> float rounded to odd (see above). */
static float ew_d2f_odd(double d) {
  float f = convert_float(d);
  if (isinf(f) || isnan(d) || convert_double(f) == d) return f;
  uint u = as_uint(f);
  if ((u & 1u) == 0u) {
    if (fabs(convert_double(f)) > fabs(d)) u -= 1u;
    else u += 1u;
  }
  return as_float(u);
}
#endif

/* Stores v (compute type) to element i of a buffer of dtype dt, with cast
 * semantics when dt is another family's. */
static void ew_st(__global uchar* p, long i, int dt, ew_c v) {
#if EW_FAM == 0
  switch (dt) {
    case 1: EW_F32(p)[i] = v; return;
#ifdef cl_khr_fp64
    case 2: EW_F64(p)[i] = convert_double(v); return;
#endif
    case 3: EW_U16(p)[i] = lk_float_to_half(v); return;
    case 4: EW_U16(p)[i] = lk_float_to_bf16(v); return;
    case 5: EW_I32(p)[i] = convert_int_sat(v); return;
    case 6: EW_I64(p)[i] = convert_long_sat(v); return;
    case 7: p[i] = convert_uchar_sat(v); return;
    default: p[i] = (uchar)(v != 0.0f); return;
  }
#elif EW_FAM == 1
  switch (dt) {
    case 1: EW_F32(p)[i] = convert_float(v); return;
    case 2: EW_F64(p)[i] = v; return;
    case 3: EW_U16(p)[i] = lk_float_to_half(ew_d2f_odd(v)); return;
    case 4: EW_U16(p)[i] = lk_float_to_bf16(ew_d2f_odd(v)); return;
    case 5: EW_I32(p)[i] = convert_int_sat(v); return;
    case 6: EW_I64(p)[i] = convert_long_sat(v); return;
    case 7: p[i] = convert_uchar_sat(v); return;
    default: p[i] = (uchar)(v != 0.0); return;
  }
#else
  switch (dt) {
    case 1: EW_F32(p)[i] = convert_float(v); return;
#ifdef cl_khr_fp64
    case 2: EW_F64(p)[i] = convert_double(v); return;
#endif
    case 3: EW_U16(p)[i] = lk_float_to_half(ew_i2f_odd(v)); return;
    case 4: EW_U16(p)[i] = lk_float_to_bf16(ew_i2f_odd(v)); return;
    case 5: EW_I32(p)[i] = convert_int(v); return;
    case 6: EW_I64(p)[i] = v; return;
    case 7: p[i] = convert_uchar(v); return;
    default: p[i] = (uchar)(v != 0); return;
  }
#endif
}

/* ---- binary ------------------------------------------------------------------- */

#if EW_FAM == 2
static long ew_ipow(long base, long e) {
  if (e < 0) {
    if (base == 1) return 1;
    if (base == -1) return (e & 1) ? -1 : 1;
    return 0;
  }
  ulong r = 1, b = (ulong)base, k = (ulong)e;
  while (k) {
    if (k & 1) r *= b;
    b *= b;
    k >>= 1;
  }
  return (long)r;
}
#endif

static ew_c ew_binop(int op, ew_c a, ew_c b) {
  switch (op) {
#if EW_FAM == 2
    case 1: return (long)((ulong)a + (ulong)b);
    case 2: return (long)((ulong)a - (ulong)b);
    case 3: return (long)((ulong)a * (ulong)b);
    /* x / 0 = 0; MIN / -1 wraps to MIN (the store truncates i32 and u8) */
    case 4: return b == 0 ? 0 : b == -1 ? (long)((ulong)0 - (ulong)a) : a / b;
    case 5: return a > b ? a : b;
    case 6: return a < b ? a : b;
    case 7: return ew_ipow(a, b);
#else
    case 1: return a + b;
    case 2: return a - b;
    case 3: return a * b;
    case 4: return a / b;
    /* max/min propagate NaN */
    case 5: return (a != a || b != b) ? a + b : (a > b ? a : b);
    case 6: return (a != a || b != b) ? a + b : (a < b ? a : b);
    case 7: return EW_POW(a, b);
#endif
  }
  return a;
}

/* ---- unary ---------------------------------------------------------------------- */

#if EW_FAM <= 1
#define EW_GK0 K(0.7978845608028654) /* sqrt(2/pi) */
#define EW_GK1 K(0.044715)

/* op(x) (bw = 0) or d op(x) / dx * g (bw = 1).  Each elementary function
 * has one call site (device compilers inline them: this keeps programs
 * small and their builds fast). */
static ew_c ew_unary(int op, int bw, ew_c x, ew_c g) {
  ew_c ea = K(0.0), ta = K(0.0), ra = K(0.0), ev = K(0.0), tv = K(0.0), rv = K(0.0), lv = K(0.0);
  int ue = 0, ut = 0, ur = 0;
  switch (op) {
    case 3: ue = 1; ea = x; break;
    case 7: ut = 1; ta = x; break;
    case 8: case 12: ue = 1; ea = -x; break;
    case 10: ut = 1; ta = EW_GK0 * (x + EW_GK1 * x * x * x); break;
    case 11: ur = 1; ra = x * K(0.7071067811865476); ue = bw; ea = K(-0.5) * x * x; break;
  }
  if (ue) ev = EW_EXP(ea);
  if (ut) tv = EW_TANH(ta);
  if (ur) rv = EW_ERF(ra);
  if (op == 4 && !bw) lv = EW_LOG(x);
  if (!bw) {
    switch (op) {
      case 1: return -x;
      case 2: return fabs(x);
      case 3: return ev;
      case 4: return lv;
      case 5: return sqrt(x);
      case 6: return K(1.0) / sqrt(x);
      case 7: return tv;
      case 8: return K(1.0) / (K(1.0) + ev);
      case 9: return x < K(0.0) ? K(0.0) : x;
      case 10: return K(0.5) * x * (K(1.0) + tv);
      case 11: return K(0.5) * x * (K(1.0) + rv);
      case 12: return x / (K(1.0) + ev);
    }
    return x;
  }
  switch (op) {
    case 1: return -g;
    case 2: return x > K(0.0) ? g : (x < K(0.0) ? -g : K(0.0));
    case 3: return ev * g;
    case 4: return g / x;
    case 5: return g / (K(2.0) * sqrt(x));
    case 6: return K(-0.5) * (K(1.0) / sqrt(x)) / x * g;
    case 7: return (K(1.0) - tv * tv) * g;
    case 8: {
      ew_c sg = K(1.0) / (K(1.0) + ev);
      return sg * (K(1.0) - sg) * g;
    }
    case 9: return x > K(0.0) ? g : K(0.0);
    case 10: {
      ew_c du = EW_GK0 * (K(1.0) + K(3.0) * EW_GK1 * (x * x));
      return (K(0.5) * (K(1.0) + tv) + K(0.5) * x * (K(1.0) - tv * tv) * du) * g;
    }
    case 11: return (K(0.5) * (K(1.0) + rv) + x * (ev * K(0.3989422804014327))) * g;
    case 12: {
      ew_c sg = K(1.0) / (K(1.0) + ev);
      return sg * (K(1.0) + x * (K(1.0) - sg)) * g;
    }
  }
  return g;
}
#else
/* Integers: neg, abs, relu (wrapping: abs(MIN) = MIN after the store). */
static long ew_unary(int op, int bw, long x, long g) {
  switch (op) {
    case 1: return (long)((ulong)0 - (ulong)x);
    case 2: return x < 0 ? (long)((ulong)0 - (ulong)x) : x;
    case 9: return x < 0 ? 0 : x;
  }
  return x;
}
#endif

/* ---- random ----------------------------------------------------------------------- */

#if EW_FAM == 0
/* cos(2 pi u) for u in [0, 1) (a multiple of 2^-24) from + - * only, so
 * every target gives the same bits: u = q/4 + r with |r| <= 1/8 (exact),
 * then a Taylor polynomial of sin or cos at x = 2 pi r, |x| <= pi/4. */
static float ew_cos2pi_f(float u) {
  float q = rint(u * 4.0f);
  float x = (u - q * 0.25f) * 6.2831853071795865f;
  float x2 = x * x;
  float c = 1.0f + x2 * (-0.5f + x2 * (1.0f / 24.0f + x2 * (-1.0f / 720.0f +
                      x2 * (1.0f / 40320.0f + x2 * (-1.0f / 3628800.0f)))));
  float s = x * (1.0f + x2 * (-1.0f / 6.0f + x2 * (1.0f / 120.0f + x2 * (-1.0f / 5040.0f +
                      x2 * (1.0f / 362880.0f)))));
  int k = (int)q & 3;
  return k == 0 ? c : k == 1 ? -s : k == 2 ? -c : s;
}
#endif

#if EW_FAM == 1
static double ew_cos2pi_d(double u) {
  double q = rint(u * 4.0);
  double x = (u - q * 0.25) * 6.283185307179586476925;
  double x2 = x * x;
  double c = 1.0 + x2 * (-1.0 / 2.0 + x2 * (1.0 / 24.0 + x2 * (-1.0 / 720.0 + x2 * (1.0 / 40320.0 +
             x2 * (-1.0 / 3628800.0 + x2 * (1.0 / 479001600.0 + x2 * (-1.0 / 87178291200.0 +
             x2 * (1.0 / 20922789888000.0 + x2 * (-1.0 / 6402373705728000.0 +
             x2 * (1.0 / 2432902008176640000.0))))))))));
  double s = x * (1.0 + x2 * (-1.0 / 6.0 + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0 +
             x2 * (1.0 / 362880.0 + x2 * (-1.0 / 39916800.0 + x2 * (1.0 / 6227020800.0 +
             x2 * (-1.0 / 1307674368000.0 + x2 * (1.0 / 355687428096000.0 +
             x2 * (-1.0 / 121645100408832000.0 + x2 * (1.0 / 51090942171709440000.0)))))))))));
  int kq = (int)q & 3;
  return kq == 0 ? c : kq == 1 ? -s : kq == 2 ? -c : s;
}

/* 53 random bits from two words, in [0, 1). */
static double ew_unit_d(uint hi, uint lo) {
  return convert_double((ulong)(hi >> 5) * (ulong)67108864 + (ulong)(lo >> 6)) *
         (1.0 / 9007199254740992.0);
}
#endif

/* ---- the kernel ------------------------------------------------------------------- */

/* One element: gi its flattened index, p0..p2 its operands' offsets. */
static void ew_one(__global uchar* out, __global uchar* a, __global uchar* b, int mode, int op,
                   int dta, int dto, ulong u0, ulong u1, ulong u2, ulong u3, float f0, float f1,
                   long gi, long p0, long p1, long p2) {
  if (mode == 3 || mode == 5) { /* raw bits */
    switch (dto) {
      case 2: case 6: EW_U64(out)[p0] = mode == 3 ? EW_U64(a)[p1] : u0; return;
      case 1: case 5: EW_U32(out)[p0] = mode == 3 ? EW_U32(a)[p1] : (uint)u0; return;
      case 3: case 4: EW_U16(out)[p0] = mode == 3 ? EW_U16(a)[p1] : (ushort)u0; return;
      default: out[p0] = mode == 3 ? a[p1] : (uchar)u0; return;
    }
  }
  ew_c x = 0, y = 0, r = 0;
  if (mode <= 2 || mode == 4) x = ew_ld(a, p1, dta);
  if (mode == 0 || mode == 2) y = ew_ld(b, p2, dta);
  switch (mode) {
    case 0: r = ew_binop(op, x, y); break;
    case 1: case 2: r = ew_unary(op, mode - 1, x, y); break;
    case 4: r = x; break;
    case 6: {
#ifdef cl_khr_fp64
      double v = as_double(u0) + convert_double(gi) * as_double(u1);
#if EW_FAM == 0
      r = dto == 1 ? convert_float(v) : ew_d2f_odd(v);
#elif EW_FAM == 1
      r = v;
#else
      r = dto == 8 ? (long)(v != 0.0) : convert_long_sat(v);
#endif
#else
      float v = f0 + convert_float(gi) * f1;
#if EW_FAM == 0
      r = v;
#else
      r = dto == 8 ? (long)(v != 0.0f) : convert_long_sat(v);
#endif
#endif
#if EW_FAM == 2
      /* saturate to the dtype (the store would wrap) */
      if (dto == 5) r = clamp(r, (long)INT_MIN, (long)INT_MAX);
      else if (dto == 7) r = clamp(r, 0L, 255L);
#endif
      break;
    }
#if EW_FAM <= 1
    case 7: {
      ulong ctrv = u1 + (ulong)gi;
      uint ctr[4];
      uint rr[4];
      ctr[0] = (uint)ctrv;
      ctr[1] = (uint)(ctrv >> 32);
      ctr[2] = 0u;
      ctr[3] = 0u;
      lk_philox4x32_10((uint)u0, (uint)(u0 >> 32), ctr, rr);
#if EW_FAM == 1
      double ra = as_double(u2), rb = as_double(u3);
      double u = ew_unit_d(rr[0], rr[1]);
      if (op == 1) r = ra + (rb - ra) * u;
      else if (op == 2) r = ra + rb * (sqrt(-2.0 * lk_log(1.0 - u)) * ew_cos2pi_d(ew_unit_d(rr[2], rr[3])));
      else r = u < ra ? 0.0 : rb;
#else
      float u = lk_uint_to_unit_float(rr[0]);
      if (op == 1) r = f0 + (f1 - f0) * u;
      else if (op == 2)
        r = f0 + f1 * (sqrt(-2.0f * lk_logf(1.0f - u)) * ew_cos2pi_f(lk_uint_to_unit_float(rr[1])));
      else r = u < f0 ? 0.0f : f1;
#endif
      break;
    }
#endif
  }
  ew_st(out, p0, dto, r);
}

/* Work-item g handles the elements [g * per, g * per + per) in order (per
 * is 1 on GPUs; larger on the CPU, where a work-item is a loop). */
__kernel void ew_main(__global uchar* out, __global uchar* a, __global uchar* b, int mode, int op,
                      int dta, int dto, ulong u0, ulong u1, ulong u2, ulong u3, float f0,
                      float f1, long per, long n, int rank, long o0, long o1, long o2, long d0,
                      long d1, long d2, long d3, long d4, long d5, long d6, long d7, long s00,
                      long s01, long s02, long s03, long s04, long s05, long s06, long s07,
                      long s10, long s11, long s12, long s13, long s14, long s15, long s16,
                      long s17, long s20, long s21, long s22, long s23, long s24, long s25,
                      long s26, long s27) {
  long first = (long)get_global_id(0) * per;
  if (first >= n) return;
  long last = min(n, first + per);
  long dm[8] = {d0, d1, d2, d3, d4, d5, d6, d7};
  long t0[8] = {s00, s01, s02, s03, s04, s05, s06, s07};
  long t1[8] = {s10, s11, s12, s13, s14, s15, s16, s17};
  long t2[8] = {s20, s21, s22, s23, s24, s25, s26, s27};
  int in = rank - 1;
  long dl = dm[in], i0 = t0[in], i1 = t1[in], i2 = t2[in];
  long gi = first;
  while (gi < last) {
    /* offsets of gi; then walk the innermost dim */
    long p0 = o0, p1 = o1, p2 = o2, r = gi;
    for (int d = in; d > 0; --d) {
      long c = r % dm[d];
      r /= dm[d];
      p0 += c * t0[d];
      p1 += c * t1[d];
      p2 += c * t2[d];
    }
    p0 += r * t0[0];
    p1 += r * t1[0];
    p2 += r * t2[0];
    long run = min(last - gi, dl - gi % dl);
#if EW_FAM == 0
    /* f32 add/sub/mul/div: a loop the C compiler can vectorise */
    if (mode == 0 && dta == 1 && op <= 4) {
      __global float* po = EW_F32(out) + p0;
      __global const float* pa = EW_F32(a) + p1;
      __global const float* pb = EW_F32(b) + p2;
      switch (op) {
        case 1: for (long k = 0; k < run; ++k) po[k * i0] = pa[k * i1] + pb[k * i2]; break;
        case 2: for (long k = 0; k < run; ++k) po[k * i0] = pa[k * i1] - pb[k * i2]; break;
        case 3: for (long k = 0; k < run; ++k) po[k * i0] = pa[k * i1] * pb[k * i2]; break;
        default: for (long k = 0; k < run; ++k) po[k * i0] = pa[k * i1] / pb[k * i2]; break;
      }
      gi += run;
      continue;
    }
#endif
    /* raw copies and fills of 4-byte elements */
    if ((mode == 3 || mode == 5) && (dto == 1 || dto == 5)) {
      __global uint* po = EW_U32(out) + p0;
      __global const uint* pa = EW_U32(a) + p1;
      if (mode == 3)
        for (long k = 0; k < run; ++k) po[k * i0] = pa[k * i1];
      else
        for (long k = 0; k < run; ++k) po[k * i0] = (uint)u0;
      gi += run;
      continue;
    }
    for (long k = 0; k < run; ++k)
      ew_one(out, a, b, mode, op, dta, dto, u0, u1, u2, u3, f0, f1, gi + k, p0 + k * i0,
             p1 + k * i1, p2 + k * i2);
    gi += run;
  }
}
