/* Reduction arithmetic of the collectives (comm_reduce.h). */
#include "comm/comm_reduce.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef unsigned __int128 lk_u128;
typedef __int128 lk_i128;

/* ---- Element conversions ------------------------------------------------ */

static inline uint32_t lk_f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static inline float lk_u2f(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static inline uint64_t lk_d2u(double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  return u;
}
static inline double lk_u2d(uint64_t u) {
  double d;
  memcpy(&d, &u, 8);
  return d;
}

static inline int lk_bitlen128(lk_u128 v) {
  uint64_t hi = (uint64_t)(v >> 64);
  if (hi) return 128 - __builtin_clzll(hi);
  uint64_t lo = (uint64_t)v;
  return lo ? 64 - __builtin_clzll(lo) : 0;
}

/* IEEE bits of (neg ? -1 : 1) * mag * 2^exp2, rounded to nearest even
 * (sticky: nonzero bits below mag were dropped before) in a format with
 * mant_bits stored mantissa bits and exp_bits exponent bits. */
static uint64_t lk_round_bits(bool neg, lk_u128 mag, int exp2, bool sticky, int mant_bits,
                              int exp_bits) {
  uint64_t sign = neg ? (uint64_t)1 << (mant_bits + exp_bits) : 0;
  if (mag == 0) return 0; /* +0 */
  const int bias = (1 << (exp_bits - 1)) - 1;
  const int emin = 1 - bias;
  int e = lk_bitlen128(mag) - 1 + exp2; /* value in [2^e, 2^(e+1)) */
  int quantum = (e < emin ? emin : e) - mant_bits;
  int shift = quantum - exp2; /* low bits of mag to drop */
  lk_u128 q;
  if (shift <= 0) {
    q = mag << -shift;
  } else if (shift > 127) {
    q = 0; /* far below the smallest subnormal: rounds to zero */
  } else {
    q = mag >> shift;
    lk_u128 rem = mag & (((lk_u128)1 << shift) - 1);
    lk_u128 half = (lk_u128)1 << (shift - 1);
    bool up = rem > half || (rem == half && (sticky || (q & 1)));
    if (rem == half && !sticky && !(q & 1)) up = false;
    if (up) q++;
  }
  /* q counts quanta; subnormal when below 2^mant_bits (exponent field 0,
   * and a carry into 2^mant_bits is the smallest normal). */
  uint64_t exp_field = e < emin ? 0 : (uint64_t)(e + bias);
  uint64_t bits = e < emin ? (uint64_t)q
                           : (exp_field << mant_bits) + ((uint64_t)q - ((uint64_t)1 << mant_bits));
  uint64_t inf = (((uint64_t)1 << exp_bits) - 1) << mant_bits;
  if (bits >= inf) bits = inf;
  return sign | bits;
}


/* The bits of +-mag * 2^exp2 rounded to nearest even in a binary format
 * of mant_bits/exp_bits: lk_round_bits for 64-bit magnitudes (the STRICT
 * sums of f32, f16, bf16). */
static uint64_t lk_round_bits64(bool neg, uint64_t mag, int exp2, int mant_bits, int exp_bits) {
  if (!mag) return 0;
  const int bias = (1 << (exp_bits - 1)) - 1, emin = 1 - bias;
  const uint64_t sign = neg ? (uint64_t)1 << (mant_bits + exp_bits) : 0;
  const int e = 63 - __builtin_clzll(mag) + exp2;
  const int quantum = (e < emin ? emin : e) - mant_bits;
  const int shift = quantum - exp2;
  uint64_t q;
  if (shift <= 0) {
    q = mag << -shift; /* exact: at most mant_bits + 1 significant bits */
  } else if (shift > 63) {
    q = 0;
  } else {
    q = mag >> shift;
    uint64_t rem = mag & ((1ull << shift) - 1), half = 1ull << (shift - 1);
    q += rem > half || (rem == half && (q & 1));
  }
  uint64_t bits = e < emin ? q : ((uint64_t)(e + bias) << mant_bits) + (q - (1ull << mant_bits));
  const uint64_t inf = (((uint64_t)1 << exp_bits) - 1) << mant_bits;
  if (bits >= inf) bits = inf;
  return sign | bits;
}

/* Exact, without branches (the conversion loops vectorise): the exponent
 * rebias covers normals; infinities and NaNs (made quiet) get the rest of
 * the f32 exponent range; subnormals are renormalised by one exact f32
 * subtraction. */
static inline uint32_t lk_f16_bits_to_f32(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t o0 = (h & 0x7fffu) << 13, exp = o0 & 0x0f800000u;
  const uint32_t o = o0 + ((uint32_t)(127 - 15) << 23);
  const uint32_t big = o + ((uint32_t)(128 - 16) << 23);
  const uint32_t big_q = big | (o0 & 0x7fffffu ? 0x400000u : 0u);
  const uint32_t sub = lk_f2u(lk_u2f(o + (1u << 23)) - lk_u2f(113u << 23));
  const uint32_t r = exp == 0x0f800000u ? big_q : exp == 0 ? sub : o;
  return r | sign;
}

float lk_f16_to_f32(uint16_t h) { return lk_u2f(lk_f16_bits_to_f32(h)); }

/* Round to nearest even, in three cases: too large for f16 (infinity; NaN
 * becomes the quiet NaN 0x7e00 with its sign); below f16's smallest normal
 * (an f32 addition of 0.5 puts the value on f16's subnormal grid, rounding
 * to nearest even in the hardware); normal (the mantissa rounded by adding
 * 0xfff plus its lowest kept bit, the carry running into the exponent).
 * Checked against the exact rounding (lk_round_bits) for all 2^32 inputs. */
static inline uint32_t lk_f32_bits_to_f16(uint32_t u) {
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t x = u & 0x7fffffffu;
  const uint32_t big = x > 0x7f800000u ? 0x7e00u : 0x7c00u;   /* >= 65536, inf, NaN */
  const uint32_t half_bits = 126u << 23;                         /* 0.5f */
  const uint32_t sub = lk_f2u(lk_u2f(x) + lk_u2f(half_bits)) - half_bits; /* < 2^-14 */
  const uint32_t nrm = (x + ((uint32_t)(15 - 127) << 23) + 0xfffu + ((x >> 13) & 1u)) >> 13;
  const uint32_t o = x >= (143u << 23) ? big : x < (113u << 23) ? sub : nrm;
  return o | sign;
}

uint16_t lk_f32_to_f16(float f) { return (uint16_t)lk_f32_bits_to_f16(lk_f2u(f)); }

float lk_bf16_to_f32(uint16_t h) { return lk_u2f((uint32_t)h << 16); }

uint16_t lk_f32_to_bf16(float f) {
  uint32_t u = lk_f2u(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  uint32_t lsb = (u >> 16) & 1;
  return (uint16_t)((u + 0x7fffu + lsb) >> 16);
}

/* ---- Generic element access --------------------------------------------- */

bool lk_red_dtype_is_float(lightos_dtype_t dt) {
  return dt == LIGHTOS_DTYPE_F32 || dt == LIGHTOS_DTYPE_F64 || dt == LIGHTOS_DTYPE_F16 ||
         dt == LIGHTOS_DTYPE_BF16;
}

size_t lk_red_acc_size(lightos_dtype_t dt) {
  switch (dt) {
    case LIGHTOS_DTYPE_F16:
    case LIGHTOS_DTYPE_BF16:
    case LIGHTOS_DTYPE_F32:
    case LIGHTOS_DTYPE_I32:
      return 4;
    case LIGHTOS_DTYPE_F64:
    case LIGHTOS_DTYPE_I64:
      return 8;
    case LIGHTOS_DTYPE_U8:
    case LIGHTOS_DTYPE_BOOL:
      return 1;
  }
  return 0;
}

/* Order-independent min/max (see the header). */
static inline float lk_minf(float a, float b) {
  if (a != a || b != b) return lk_u2f(0x7fc00000u);
  if (a == b) return lk_f2u(a) >> 31 ? a : b;
  return a < b ? a : b;
}
static inline float lk_maxf(float a, float b) {
  if (a != a || b != b) return lk_u2f(0x7fc00000u);
  if (a == b) return lk_f2u(a) >> 31 ? b : a;
  return a > b ? a : b;
}
static inline double lk_mind(double a, double b) {
  if (a != a || b != b) return lk_u2d(0x7ff8000000000000ull);
  if (a == b) return lk_d2u(a) >> 63 ? a : b;
  return a < b ? a : b;
}
static inline double lk_maxd(double a, double b) {
  if (a != a || b != b) return lk_u2d(0x7ff8000000000000ull);
  if (a == b) return lk_d2u(a) >> 63 ? b : a;
  return a > b ? a : b;
}

/* out = a op b over accumulators, element by element (out may be a). */
static void lk_combine3_acc(lightos_dtype_t dt, lightos_reduce_op_t op, void* out, const void* a,
                            const void* b, size_t n) {
#define LK_COMBINE(T, ADD, MUL, MIN, MAX)                                      \
  {                                                                            \
    T* o = out;                                                                \
    const T* x = a;                                                            \
    const T* y = b;                                                            \
    switch (op) {                                                              \
      case LIGHTOS_OP_SUM:                                                     \
      case LIGHTOS_OP_AVG:                                                     \
        for (size_t i = 0; i < n; ++i) o[i] = ADD(x[i], y[i]);                 \
        break;                                                                 \
      case LIGHTOS_OP_PROD:                                                    \
        for (size_t i = 0; i < n; ++i) o[i] = MUL(x[i], y[i]);                 \
        break;                                                                 \
      case LIGHTOS_OP_MIN:                                                     \
        for (size_t i = 0; i < n; ++i) o[i] = MIN(x[i], y[i]);                 \
        break;                                                                 \
      case LIGHTOS_OP_MAX:                                                     \
        for (size_t i = 0; i < n; ++i) o[i] = MAX(x[i], y[i]);                 \
        break;                                                                 \
    }                                                                          \
    return;                                                                    \
  }
#define LK_FADD(x, y) ((x) + (y))
#define LK_FMUL(x, y) ((x) * (y))
/* integers wrap: the arithmetic in the unsigned type */
#define LK_ADD_U32(x, y) ((int32_t)((uint32_t)(x) + (uint32_t)(y)))
#define LK_MUL_U32(x, y) ((int32_t)((uint32_t)(x) * (uint32_t)(y)))
#define LK_ADD_U64(x, y) ((int64_t)((uint64_t)(x) + (uint64_t)(y)))
#define LK_MUL_U64(x, y) ((int64_t)((uint64_t)(x) * (uint64_t)(y)))
#define LK_ADD_U8(x, y) ((uint8_t)((unsigned)(x) + (unsigned)(y)))
#define LK_MUL_U8(x, y) ((uint8_t)((unsigned)(x) * (unsigned)(y)))
#define LK_IMIN(x, y) ((y) < (x) ? (y) : (x))
#define LK_IMAX(x, y) ((y) > (x) ? (y) : (x))
  switch (dt) {
    case LIGHTOS_DTYPE_F16:
    case LIGHTOS_DTYPE_BF16:
    case LIGHTOS_DTYPE_F32:
      LK_COMBINE(float, LK_FADD, LK_FMUL, lk_minf, lk_maxf)
    case LIGHTOS_DTYPE_F64:
      LK_COMBINE(double, LK_FADD, LK_FMUL, lk_mind, lk_maxd)
    case LIGHTOS_DTYPE_I32:
      LK_COMBINE(int32_t, LK_ADD_U32, LK_MUL_U32, LK_IMIN, LK_IMAX)
    case LIGHTOS_DTYPE_I64:
      LK_COMBINE(int64_t, LK_ADD_U64, LK_MUL_U64, LK_IMIN, LK_IMAX)
    case LIGHTOS_DTYPE_U8:
    case LIGHTOS_DTYPE_BOOL:
      LK_COMBINE(uint8_t, LK_ADD_U8, LK_MUL_U8, LK_IMIN, LK_IMAX)
  }
#undef LK_COMBINE
#undef LK_FADD
#undef LK_FMUL
#undef LK_ADD_U32
#undef LK_MUL_U32
#undef LK_ADD_U64
#undef LK_MUL_U64
#undef LK_ADD_U8
#undef LK_MUL_U8
#undef LK_IMIN
#undef LK_IMAX
}

/* a = a op b over accumulators. */
static void lk_combine_acc(lightos_dtype_t dt, lightos_reduce_op_t op, void* a, const void* b,
                           size_t n) {
  lk_combine3_acc(dt, op, a, a, b, n);
}

/* Element type -> accumulator. */
static void lk_to_acc(lightos_dtype_t dt, const void* src, void* acc, size_t n) {
  if (dt == LIGHTOS_DTYPE_F16) {
    const uint16_t* s = src;
    float* d = acc;
    for (size_t i = 0; i < n; ++i) d[i] = lk_u2f(lk_f16_bits_to_f32(s[i]));
  } else if (dt == LIGHTOS_DTYPE_BF16) {
    const uint16_t* s = src;
    float* d = acc;
    for (size_t i = 0; i < n; ++i) d[i] = lk_bf16_to_f32(s[i]);
  } else {
    memcpy(acc, src, n * lk_red_acc_size(dt));
  }
}

static void lk_from_acc(lightos_dtype_t dt, const void* acc, void* dst, size_t n) {
  if (dt == LIGHTOS_DTYPE_F16) {
    const float* s = acc;
    uint16_t* d = dst;
    for (size_t i = 0; i < n; ++i) d[i] = (uint16_t)lk_f32_bits_to_f16(lk_f2u(s[i]));
  } else if (dt == LIGHTOS_DTYPE_BF16) {
    const float* s = acc;
    uint16_t* d = dst;
    for (size_t i = 0; i < n; ++i) d[i] = lk_f32_to_bf16(s[i]);
  } else if (acc != dst) {
    memmove(dst, acc, n * lk_red_acc_size(dt));
  }
}

#define LK_RED_BLOCK 1024

void lk_red_combine(lightos_dtype_t dt, lightos_reduce_op_t op, void* acc, const void* b,
                    size_t n) {
  lk_combine_acc(dt, op, acc, b, n);
}


void lk_red_accum(lightos_dtype_t dt, lightos_reduce_op_t op, void* dst, const void* src,
                  size_t n) {
  if (dt != LIGHTOS_DTYPE_F16 && dt != LIGHTOS_DTYPE_BF16) {
    lk_combine_acc(dt, op, dst, src, n);
    return;
  }
  float a[LK_RED_BLOCK], b[LK_RED_BLOCK];
  for (size_t i = 0; i < n; i += LK_RED_BLOCK) {
    size_t m = n - i < LK_RED_BLOCK ? n - i : LK_RED_BLOCK;
    lk_to_acc(dt, (uint16_t*)dst + i, a, m);
    lk_to_acc(dt, (const uint16_t*)src + i, b, m);
    lk_combine_acc(dt, op, a, b, m);
    lk_from_acc(dt, a, (uint16_t*)dst + i, m);
  }
}

typedef struct lk_tree_ctx {
  lightos_dtype_t dt;
  lightos_reduce_op_t op;
  const void* const* in;
  bool in_acc;
  size_t esize, asize;
  size_t base, len; /* the block: elements [base, base + len) */
  char* tmp;        /* 33 blocks of accumulators */
  /* Spans (NULL: every input is one leaf): input r stands for the aligned
   * leaves [first, first + span[r]); at[p] is the input whose leaves start
   * at leaf p, else UINT32_MAX. */
  const uint32_t* span;
  const uint32_t* at;
} lk_tree_ctx_t;

/* The accumulators of leaf i of the block: the input itself when it is
 * stored in the accumulation type (no copy), else converted into buf. */
static const void* lk_tree_leaf(const lk_tree_ctx_t* t, uint32_t i, void* buf) {
  const char* src = (const char*)t->in[i] + t->base * (t->in_acc ? t->asize : t->esize);
  if (t->in_acc || t->asize == t->esize) return src;
  lk_to_acc(t->dt, src, buf, t->len);
  return buf;
}

/* out = a op b over accumulators (out may be a). */
static void lk_combine3(const lk_tree_ctx_t* t, void* out, const void* a, const void* b) {
  lk_combine3_acc(t->dt, t->op, out, a, b, t->len);
}

/* The input that is exactly the tree's node over leaves [lo, hi), or -1. */
static int64_t lk_tree_input(const lk_tree_ctx_t* t, uint32_t lo, uint32_t hi) {
  if (!t->span) return hi - lo == 1 ? (int64_t)lo : -1;
  const uint32_t r = t->at[lo];
  return r != UINT32_MAX && t->span[r] == hi - lo ? (int64_t)r : -1;
}

/* T over leaves [lo, hi) into out. */
static void lk_tree_rec(const lk_tree_ctx_t* t, uint32_t lo, uint32_t hi, void* out,
                        int depth) {
  char* tmp = t->tmp + (size_t)depth * 2 * LK_RED_BLOCK * t->asize;
  int64_t r = lk_tree_input(t, lo, hi);
  if (r >= 0) {
    const void* leaf = lk_tree_leaf(t, (uint32_t)r, out);
    if (leaf != out) memcpy(out, leaf, t->len * t->asize);
    return;
  }
  uint32_t m = 1;
  while (m * 2 < hi - lo) m *= 2;
  const void* left;
  const void* right;
  if ((r = lk_tree_input(t, lo, lo + m)) >= 0) {
    left = lk_tree_leaf(t, (uint32_t)r, out);
  } else {
    lk_tree_rec(t, lo, lo + m, out, depth + 1);
    left = out;
  }
  if ((r = lk_tree_input(t, lo + m, hi)) >= 0) {
    right = lk_tree_leaf(t, (uint32_t)r, tmp);
  } else {
    lk_tree_rec(t, lo + m, hi, tmp, depth + 1);
    right = tmp;
  }
  lk_combine3(t, out, left, right);
}

/* The tree block by block.  finish false: the accumulators into out;
 * true: each block finished (lk_red_finish) into out, element type, while
 * it is in cache; a block's inputs are read whole before its output is
 * written, so out may then be one of the inputs. */
static lightos_status_t lk_tree_blocks(lightos_dtype_t dt, lightos_reduce_op_t op,
                                       const void* const* in, uint32_t m, bool in_acc, void* out,
                                       size_t n, bool finish, uint64_t ntotal,
                                       const uint32_t* spans) {
  if (m == 0) return LK_FAIL(LIGHTOS_INTERNAL, "a reduction of no inputs");
  lk_tree_ctx_t t = {.dt = dt, .op = op, .in = in, .in_acc = in_acc,
                     .esize = lightos_dtype_size(dt), .asize = lk_red_acc_size(dt)};
  uint32_t leaves = m;
  uint32_t* at = NULL;
  if (spans) {
    /* Every span a power of two, aligned: each is a node of the tree. */
    uint64_t total = 0;
    for (uint32_t r = 0; r < m; ++r) {
      if (!spans[r] || (spans[r] & (spans[r] - 1)) || total % spans[r])
        return LK_FAIL(LIGHTOS_INTERNAL, "input %u's span %u at leaf %llu is not aligned", r,
                       spans[r], (unsigned long long)total);
      total += spans[r];
    }
    if (total > UINT32_MAX / 2) return LK_FAIL(LIGHTOS_INTERNAL, "%llu leaves", (unsigned long long)total);
    leaves = (uint32_t)total;
    at = malloc((size_t)leaves * sizeof *at);
    if (!at) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a reduction");
    for (uint32_t p = 0; p < leaves; ++p) at[p] = UINT32_MAX;
    for (uint32_t r = 0, p = 0; r < m; p += spans[r], ++r) at[p] = r;
    t.span = spans;
    t.at = at;
  }
  size_t levels = 2;
  for (uint32_t v = leaves; v > 1; v = (v + 1) / 2) levels++;
  /* the tree's temporaries, then (finish) one block of accumulators */
  char* mem = malloc((2 * levels + finish) * LK_RED_BLOCK * t.asize);
  if (!mem) {
    free(at);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a reduction");
  }
  t.tmp = mem;
  char* acc = mem + 2 * levels * LK_RED_BLOCK * t.asize;
  for (size_t b = 0; b < n; b += LK_RED_BLOCK) {
    t.base = b;
    t.len = n - b < LK_RED_BLOCK ? n - b : LK_RED_BLOCK;
    if (!finish) {
      lk_tree_rec(&t, 0, leaves, (char*)out + b * t.asize, 0);
      continue;
    }
    lk_tree_rec(&t, 0, leaves, acc, 0);
    lk_red_finish(dt, op, acc, (char*)out + b * t.esize, t.len, ntotal);
  }
  free(mem);
  free(at);
  return LIGHTOS_SUCCESS;
}

lightos_status_t lk_red_tree(lightos_dtype_t dt, lightos_reduce_op_t op, const void* const* in,
                             uint32_t m, bool in_acc, void* out_acc, size_t n) {
  return lk_tree_blocks(dt, op, in, m, in_acc, out_acc, n, false, 0, NULL);
}

lightos_status_t lk_red_tree_finish(lightos_dtype_t dt, lightos_reduce_op_t op,
                                    const void* const* in, uint32_t m, bool in_acc, void* out,
                                    size_t n, uint64_t ntotal) {
  return lk_tree_blocks(dt, op, in, m, in_acc, out, n, true, ntotal, NULL);
}

lightos_status_t lk_red_tree_finish_spans(lightos_dtype_t dt, lightos_reduce_op_t op,
                                          const void* const* in, uint32_t m, bool in_acc,
                                          void* out, size_t n, uint64_t ntotal,
                                          const uint32_t* spans) {
  return lk_tree_blocks(dt, op, in, m, in_acc, out, n, true, ntotal, spans);
}

static void lk_red_finish_raw(lightos_dtype_t dt, lightos_reduce_op_t op, const void* acc,
                              void* dst, size_t n, uint64_t ntotal) {
  if (op == LIGHTOS_OP_AVG && ntotal > 1) {
    /* In place on a copy when dst is narrower than acc. */
    switch (dt) {
      case LIGHTOS_DTYPE_F16:
      case LIGHTOS_DTYPE_BF16: {
        float tmp[LK_RED_BLOCK];
        const float* s = acc;
        const float d = (float)ntotal;
        for (size_t i = 0; i < n; i += LK_RED_BLOCK) {
          size_t m = n - i < LK_RED_BLOCK ? n - i : LK_RED_BLOCK;
          for (size_t j = 0; j < m; ++j) tmp[j] = s[i + j] / d;
          lk_from_acc(dt, tmp, (uint16_t*)dst + i, m);
        }
        return;
      }
      case LIGHTOS_DTYPE_F32: {
        const float* s = acc;
        float* o = dst;
        const float d = (float)ntotal;
        for (size_t i = 0; i < n; ++i) o[i] = s[i] / d;
        return;
      }
      case LIGHTOS_DTYPE_F64: {
        const double* s = acc;
        double* o = dst;
        const double d = (double)ntotal;
        for (size_t i = 0; i < n; ++i) o[i] = s[i] / d;
        return;
      }
      case LIGHTOS_DTYPE_I32: {
        const int32_t* s = acc;
        int32_t* o = dst;
        for (size_t i = 0; i < n; ++i) o[i] = (int32_t)((int64_t)s[i] / (int64_t)ntotal);
        return;
      }
      case LIGHTOS_DTYPE_I64: {
        const int64_t* s = acc;
        int64_t* o = dst;
        for (size_t i = 0; i < n; ++i) o[i] = ntotal > INT64_MAX ? 0 : s[i] / (int64_t)ntotal;
        return;
      }
      case LIGHTOS_DTYPE_U8:
      case LIGHTOS_DTYPE_BOOL: {
        const uint8_t* s = acc;
        uint8_t* o = dst;
        for (size_t i = 0; i < n; ++i) o[i] = (uint8_t)(s[i] / ntotal);
        return;
      }
    }
  }
  lk_from_acc(dt, acc, dst, n);
}

/* dst[i] = src[i] with every NaN made the type's canonical quiet NaN (dst
 * may be src; other types: a copy).  The bits move through memcpy (the
 * data was written as floats), without branches: the loops vectorise. */
static void lk_canon_copy(lightos_dtype_t dt, const void* src, void* dst, size_t n) {
#define LK_CANON(T, ABS, INF, QNAN)                                        \
  for (size_t i = 0; i < n; ++i) {                                         \
    T v;                                                                   \
    memcpy(&v, (const char*)src + i * sizeof(T), sizeof(T));               \
    v = (T)(v & ABS) > INF ? (T)QNAN : v;                                  \
    memcpy((char*)dst + i * sizeof(T), &v, sizeof(T));                     \
  }                                                                        \
  return;
  switch (dt) {
    case LIGHTOS_DTYPE_F32:
      LK_CANON(uint32_t, 0x7fffffffu, 0x7f800000u, 0x7fc00000u)
    case LIGHTOS_DTYPE_F64:
      LK_CANON(uint64_t, 0x7fffffffffffffffull, 0x7ff0000000000000ull, 0x7ff8000000000000ull)
    case LIGHTOS_DTYPE_F16:
      LK_CANON(uint16_t, 0x7fffu, 0x7c00u, 0x7e00u)
    case LIGHTOS_DTYPE_BF16:
      LK_CANON(uint16_t, 0x7fffu, 0x7f80u, 0x7fc0u)
    default:
      if (src != dst) memmove(dst, src, n * lightos_dtype_size(dt));
      return;
  }
#undef LK_CANON
}

/* The result of a reduction: NaNs become the type's canonical quiet NaN
 * (which NaN payload an addition passes on depends on the operand order a
 * compiler or GPU chose; the canonical one does not). */
void lk_red_finish(lightos_dtype_t dt, lightos_reduce_op_t op, const void* acc, void* dst,
                   size_t n, uint64_t ntotal) {
  if ((op != LIGHTOS_OP_AVG || ntotal <= 1) && lk_red_acc_size(dt) == lightos_dtype_size(dt)) {
    lk_canon_copy(dt, acc, dst, n); /* the copy and the canonical NaN in one pass */
    return;
  }
  lk_red_finish_raw(dt, op, acc, dst, n, ntotal);
  lk_canon_copy(dt, dst, dst, n);
}

uint32_t lk_halve_regions(uint32_t n, uint32_t me, size_t base, size_t len, size_t* lo,
                          size_t* hi) {
  uint32_t k = 0;
  lo[0] = base;
  hi[0] = base + len;
  for (; k < LK_HALVE_MAXSTEP && (1u << k) < n; ++k) {
    const size_t mid = lo[k] + (hi[k] - lo[k]) / 2;
    const bool upper = (me >> k) & 1u;
    lo[k + 1] = upper ? mid : lo[k];
    hi[k + 1] = upper ? hi[k] : mid;
  }
  return k;
}

/* ---- STRICT --------------------------------------------------------------- */

size_t lk_strict_fixed_size(lightos_dtype_t dt) {
  switch (dt) {
    case LIGHTOS_DTYPE_F16:
    case LIGHTOS_DTYPE_BF16:
    case LIGHTOS_DTYPE_F32:
      return 8;
    case LIGHTOS_DTYPE_F64:
      return 16;
    default:
      return 0;
  }
}

/* Decomposes a finite value: |x| = m * 2^k (m an integer); returns false
 * for NaN/Inf (class in *special). */
typedef struct lk_fdec {
  bool neg;
  uint64_t m;
  int k;
} lk_fdec_t;

static inline bool lk_dec(lightos_dtype_t dt, const void* p, size_t i, lk_fdec_t* d,
                          uint8_t* special) {
  uint64_t man, exp;
  int mant_bits, bias;
  bool neg;
  switch (dt) {
    case LIGHTOS_DTYPE_F32: {
      uint32_t u;
      memcpy(&u, (const char*)p + 4 * i, 4);
      neg = u >> 31;
      exp = (u >> 23) & 0xff;
      man = u & 0x7fffff;
      mant_bits = 23;
      bias = 127;
      if (exp == 0xff) goto special;
      break;
    }
    case LIGHTOS_DTYPE_F64: {
      uint64_t u;
      memcpy(&u, (const char*)p + 8 * i, 8);
      neg = u >> 63;
      exp = (u >> 52) & 0x7ff;
      man = u & 0xfffffffffffffull;
      mant_bits = 52;
      bias = 1023;
      if (exp == 0x7ff) goto special;
      break;
    }
    case LIGHTOS_DTYPE_F16: {
      uint16_t u;
      memcpy(&u, (const char*)p + 2 * i, 2);
      neg = u >> 15;
      exp = (u >> 10) & 0x1f;
      man = u & 0x3ff;
      mant_bits = 10;
      bias = 15;
      if (exp == 0x1f) goto special;
      break;
    }
    default: { /* bf16 */
      uint16_t u;
      memcpy(&u, (const char*)p + 2 * i, 2);
      neg = u >> 15;
      exp = (u >> 7) & 0xff;
      man = u & 0x7f;
      mant_bits = 7;
      bias = 127;
      if (exp == 0xff) goto special;
      break;
    }
  }
  d->neg = neg;
  d->m = exp ? (man | ((uint64_t)1 << mant_bits)) : man;
  d->k = (exp ? (int)exp : 1) - bias - mant_bits;
  return true;
special:
  *special = man ? LK_SPECIAL_NAN : (neg ? LK_SPECIAL_NINF : LK_SPECIAL_PINF);
  return false;
}

/* f32: the largest magnitude's bits per block (magnitude order is bit
 * order for finite non-negative floats), then its exponent once. */
static bool lk_strict_scan_f32(const uint32_t* u, size_t n, int16_t* exps, uint8_t* special) {
  bool any = false;
  for (size_t b0 = 0; b0 < n; b0 += LK_STRICT_BLOCK) {
    size_t b1 = n - b0 < LK_STRICT_BLOCK ? n : b0 + LK_STRICT_BLOCK;
    uint32_t mx = 0, sp = 0;
    for (size_t i = b0; i < b1; ++i) { /* branch free: vectorised */
      const uint32_t x = u[i] & 0x7fffffffu;
      const uint32_t inf = x >= 0x7f800000u;
      const uint32_t xf = x & (inf - 1u); /* non-finite: 0 */
      sp |= inf;
      mx = xf > mx ? xf : mx;
    }
    if (sp) {
      any = true;
      if (special)
        for (size_t i = b0; i < b1; ++i) {
          uint32_t x = u[i] & 0x7fffffffu;
          if (x >= 0x7f800000u)
            special[i] |= x > 0x7f800000u ? LK_SPECIAL_NAN
                                          : (u[i] >> 31 ? LK_SPECIAL_NINF : LK_SPECIAL_PINF);
        }
    }
    if (!mx) continue;
    uint32_t ex = mx >> 23;
    int e = ex ? (int)ex - 126 : (32 - __builtin_clz(mx)) - 149;
    int16_t* ep = &exps[b0 / LK_STRICT_BLOCK];
    if (e > *ep) *ep = (int16_t)e;
  }
  return any;
}

/* f16/bf16 elements of [b, b + m) as f32 (exact) into buf. */
static void lk_half_to_f32(lightos_dtype_t dt, const uint16_t* h, size_t m, uint32_t* buf) {
  if (dt == LIGHTOS_DTYPE_BF16) {
    for (size_t i = 0; i < m; ++i) buf[i] = (uint32_t)h[i] << 16;
  } else {
    for (size_t i = 0; i < m; ++i) buf[i] = lk_f2u(lk_f16_to_f32(h[i]));
  }
}

/* f16/bf16 go through the f32 code on exact f32 copies, a few blocks at a
 * time: the same values, so the same exponents, classes and fixed-point
 * integers (Q is 48 for all three). */
#define LK_HALF_CHUNK (16 * LK_STRICT_BLOCK)

bool lk_strict_scan(lightos_dtype_t dt, const void* in, size_t n, int16_t* exps,
                    uint8_t* special) {
  if (dt == LIGHTOS_DTYPE_F32) return lk_strict_scan_f32(in, n, exps, special);
  if (dt == LIGHTOS_DTYPE_F16 || dt == LIGHTOS_DTYPE_BF16) {
    uint32_t buf[LK_HALF_CHUNK];
    bool any = false;
    for (size_t b = 0; b < n; b += LK_HALF_CHUNK) {
      const size_t m = n - b < LK_HALF_CHUNK ? n - b : LK_HALF_CHUNK;
      lk_half_to_f32(dt, (const uint16_t*)in + b, m, buf);
      any |= lk_strict_scan_f32(buf, m, exps + b / LK_STRICT_BLOCK, special ? special + b : NULL);
    }
    return any;
  }
  bool any = false;
  for (size_t i = 0; i < n; ++i) {
    lk_fdec_t d;
    uint8_t sp = 0;
    if (!lk_dec(dt, in, i, &d, &sp)) {
      any = true;
      if (special) special[i] |= sp;
      continue;
    }
    if (!d.m) continue;
    int e = 64 - __builtin_clzll(d.m) + d.k; /* |x| < 2^e, >= 2^(e-1) */
    int16_t* ep = &exps[i / LK_STRICT_BLOCK];
    if (e > *ep) *ep = (int16_t)e;
  }
  return any;
}

static inline int lk_strict_q(lightos_dtype_t dt) { return dt == LIGHTOS_DTYPE_F64 ? 110 : 48; }

/* round_even(m * 2^shift) as an unsigned 128-bit integer. */
static inline lk_u128 lk_scale_round(uint64_t m, int shift) {
  if (shift >= 0) return (lk_u128)m << shift;
  int r = -shift;
  if (r > 64) return 0;
  lk_u128 v = m;
  lk_u128 q = v >> r;
  lk_u128 rem = v & (((lk_u128)1 << r) - 1);
  lk_u128 half = (lk_u128)1 << (r - 1);
  if (rem > half || (rem == half && (q & 1))) q++;
  return q;
}

/* f32, by integers: round_even(m * 2^shift) added to fixed[i]. */
static void lk_strict_add_f32_int(const uint32_t* u, size_t lo, size_t hi, int E,
                                  int64_t* fixed) {
  for (size_t i = lo; i < hi; ++i) {
    uint32_t x = u[i] & 0x7fffffffu;
    if (x == 0 || x >= 0x7f800000u) continue;
    uint32_t ex = x >> 23;
    uint64_t m = ex ? ((x & 0x7fffffu) | 0x800000u) : x;
    int shift = (ex ? (int)ex : 1) - 150 + 48 - E;
    uint64_t v;
    if (shift >= 0) {
      v = m << shift;
    } else if (shift < -63) {
      v = 0;
    } else {
      int r = -shift;
      uint64_t q = m >> r, rem = m & ((1ull << r) - 1), half = 1ull << (r - 1);
      v = q + (rem > half || (rem == half && (q & 1)));
    }
    fixed[i] = (int64_t)((uint64_t)fixed[i] + (u[i] >> 31 ? -v : v));
  }
}

/* f32: x * 2^(48 - E) is exact in a double (24 significant bits, below
 * 2^48 since |x| < 2^E, and far above the smallest double for the blocks
 * taken here), and adding and removing 1.5 * 2^52 rounds it to an integer,
 * half to even (round to nearest; this file is built without contraction
 * or reassociation): the integer path's value, without branches.  Blocks
 * with E outside [-100, 128] take the integer path. */
static void lk_strict_add_f32(const uint32_t* u, size_t n, const int16_t* exps, int64_t* fixed) {
  const double magic = 0x1.8p52;
  for (size_t b = 0; b < n; b += LK_STRICT_BLOCK) {
    const size_t end = n - b < LK_STRICT_BLOCK ? n : b + LK_STRICT_BLOCK;
    const int E = exps[b / LK_STRICT_BLOCK];
    if (E == LK_STRICT_EXP_ZERO) continue; /* zeros and non-finite values only */
    if (E < -100 || E > 128) {
      lk_strict_add_f32_int(u, b, end, E, fixed);
      continue;
    }
    const double scale = ldexp(1.0, 48 - E);
    for (size_t i = b; i < end; ++i) {
      float fx;
      memcpy(&fx, &u[i], 4);
      /* non-finite values add nothing (they travel as flags) */
      const double x = (u[i] & 0x7f800000u) == 0x7f800000u ? 0.0 : (double)fx;
      const double r = (x * scale + magic) - magic;
      fixed[i] = (int64_t)((uint64_t)fixed[i] + (uint64_t)(int64_t)r);
    }
  }
}

void lk_strict_add(lightos_dtype_t dt, const void* in, size_t n, const int16_t* exps,
                   void* fixed) {
  if (dt == LIGHTOS_DTYPE_F32) {
    lk_strict_add_f32(in, n, exps, fixed);
    return;
  }
  if (dt == LIGHTOS_DTYPE_F16 || dt == LIGHTOS_DTYPE_BF16) {
    uint32_t buf[LK_HALF_CHUNK];
    for (size_t b = 0; b < n; b += LK_HALF_CHUNK) {
      const size_t m = n - b < LK_HALF_CHUNK ? n - b : LK_HALF_CHUNK;
      lk_half_to_f32(dt, (const uint16_t*)in + b, m, buf);
      lk_strict_add_f32(buf, m, exps + b / LK_STRICT_BLOCK, (int64_t*)fixed + b);
    }
    return;
  }
  const int Q = lk_strict_q(dt);
  for (size_t i = 0; i < n; ++i) {
    lk_fdec_t d;
    uint8_t sp;
    if (!lk_dec(dt, in, i, &d, &sp) || !d.m) continue;
    int E = exps[i / LK_STRICT_BLOCK];
    lk_u128 v = lk_scale_round(d.m, d.k + Q - E);
    if (dt == LIGHTOS_DTYPE_F64) {
      lk_i128* f = (lk_i128*)fixed + i;
      lk_i128 cur;
      memcpy(&cur, f, 16);
      cur = (lk_i128)((lk_u128)cur + (d.neg ? -v : v));
      memcpy(f, &cur, 16);
    } else {
      int64_t* f = (int64_t*)fixed + i;
      uint64_t w = (uint64_t)v;
      *f = (int64_t)((uint64_t)*f + (d.neg ? -w : w));
    }
  }
}

void lk_strict_sum(lightos_dtype_t dt, void* a, const void* b, size_t n) {
  if (dt == LIGHTOS_DTYPE_F64) {
    for (size_t i = 0; i < n; ++i) {
      lk_i128 x, y;
      memcpy(&x, (char*)a + 16 * i, 16);
      memcpy(&y, (const char*)b + 16 * i, 16);
      x = (lk_i128)((lk_u128)x + (lk_u128)y);
      memcpy((char*)a + 16 * i, &x, 16);
    }
    return;
  }
  int64_t* x = a;
  const int64_t* y = b;
  for (size_t i = 0; i < n; ++i) x[i] = (int64_t)((uint64_t)x[i] + (uint64_t)y[i]);
}

static void lk_store_bits(lightos_dtype_t dt, void* out, size_t i, uint64_t bits) {
  switch (dt) {
    case LIGHTOS_DTYPE_F32: {
      uint32_t u = (uint32_t)bits;
      memcpy((char*)out + 4 * i, &u, 4);
      return;
    }
    case LIGHTOS_DTYPE_F64:
      memcpy((char*)out + 8 * i, &bits, 8);
      return;
    default: {
      uint16_t u = (uint16_t)bits;
      memcpy((char*)out + 2 * i, &u, 2);
      return;
    }
  }
}

void lk_strict_finish(lightos_dtype_t dt, lightos_reduce_op_t op, const void* fixed, size_t n,
                      const int16_t* exps, const uint8_t* special, uint64_t ntotal, void* out) {
  const int Q = lk_strict_q(dt);
  int mant_bits, exp_bits;
  uint64_t qnan, pinf;
  switch (dt) {
    case LIGHTOS_DTYPE_F32: mant_bits = 23; exp_bits = 8; qnan = 0x7fc00000u; pinf = 0x7f800000u; break;
    case LIGHTOS_DTYPE_F64: mant_bits = 52; exp_bits = 11; qnan = 0x7ff8000000000000ull; pinf = 0x7ff0000000000000ull; break;
    case LIGHTOS_DTYPE_F16: mant_bits = 10; exp_bits = 5; qnan = 0x7e00; pinf = 0x7c00; break;
    default: mant_bits = 7; exp_bits = 8; qnan = 0x7fc0; pinf = 0x7f80; break;
  }
  const uint64_t sign_bit = (uint64_t)1 << (mant_bits + exp_bits);
  const bool avg = op == LIGHTOS_OP_AVG && ntotal > 1;
  for (size_t i = 0; i < n; ++i) {
    if (special && special[i]) {
      uint8_t s = special[i];
      uint64_t bits = (s & LK_SPECIAL_NAN) || ((s & LK_SPECIAL_PINF) && (s & LK_SPECIAL_NINF))
                          ? qnan
                          : (s & LK_SPECIAL_PINF) ? pinf : (pinf | sign_bit);
      lk_store_bits(dt, out, i, bits);
      continue;
    }
    lk_i128 v;
    if (dt == LIGHTOS_DTYPE_F64) {
      memcpy(&v, (const char*)fixed + 16 * i, 16);
    } else {
      int64_t w;
      memcpy(&w, (const char*)fixed + 8 * i, 8);
      v = w;
    }
    int E = exps[i / LK_STRICT_BLOCK];
    bool neg = v < 0;
    if (dt == LIGHTOS_DTYPE_F32 && !avg) {
      const int64_t w = (int64_t)v;
      if (w) {
        /* The conversion rounds once, to nearest even (24 bits); when the
         * scaled result stays normal, scaling is exact: the correctly
         * rounded value.  Subnormal or overflowing results: the integer
         * path (one rounding at the right quantum). */
        const float fw = (float)w;
        uint32_t b;
        memcpy(&b, &fw, 4);
        const int e = (int)((b >> 23) & 0xffu) - 127 + (E - Q);
        if (e >= -126 && e <= 127) {
          lk_store_bits(dt, out, i, b + ((uint32_t)(E - Q) << 23));
          continue;
        }
      }
      uint64_t m64 = neg ? -(uint64_t)w : (uint64_t)w;
      lk_store_bits(dt, out, i, lk_round_bits64(neg, m64, E - Q, 23, 8));
      continue;
    }
    if (dt != LIGHTOS_DTYPE_F64 && !avg) { /* f16, bf16 */
      const int64_t w = (int64_t)v;
      uint64_t m64 = neg ? -(uint64_t)w : (uint64_t)w;
      lk_store_bits(dt, out, i, lk_round_bits64(neg, m64, E - Q, mant_bits, exp_bits));
      continue;
    }
    lk_u128 mag = neg ? -(lk_u128)v : (lk_u128)v;
    int exp2 = E - Q;
    bool sticky = false;
    if (avg && mag) {
      int sh = 127 - lk_bitlen128(mag);
      lk_u128 num = mag << sh;
      mag = num / ntotal;
      sticky = (num % ntotal) != 0;
      exp2 -= sh;
    }
    lk_store_bits(dt, out, i, lk_round_bits(neg, mag, exp2, sticky, mant_bits, exp_bits));
  }
}
