#define _GNU_SOURCE
/* The collectives' device path for groups of CUDA devices (comm_nccl.c).
 *
 * On any machine (no GPU needed):
 *   - the reduction kernels' arithmetic (comm_cuda_kernels.h, compiled
 *     here as host C) against comm_reduce.c, bit for bit: conversions, the
 *     fixed tree for every type and op (also the two-rank 16-byte pack),
 *     STRICT fixed point and rounding;
 *   - the pipeline plan (every element reduced exactly once, slots fit)
 *     and a host simulation of the pipelined allreduce / reduce_scatter /
 *     STRICT allreduce through that plan (STRICT: NaN/Inf of every rank in
 *     every rank's chunks, in place and apart) against the definition;
 *   - the CPU group's STRICT allreduce (the reference of the GPU tests)
 *     with NaN/Inf in every rank's chunk against the definition;
 *   - the kernel source builds with NVRTC (when NVRTC is installed), and
 *     libnccl loads (when installed).
 * With CUDA devices (skipped, saying why, without): groups of 1 and of up
 * to 4 GPUs against the same groups on CPU devices: allreduce bit for bit
 * at TOPOLOGY and STRICT, within tolerance at NONE, run to run at RUN;
 * the other collectives exact; one hash across splits; stream order;
 * LIGHTOS_COMM_NCCL=0; the transport name; timeouts and abort; and the
 * bandwidth of a 256 MiB allreduce at every level (printed). */
#define LK_CUK_HOST
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/comm_cuda_kernels.h"
#include "comm/comm_internal.h"
#include "comm/comm_nccl.h"
#include "comm/comm_nccl_sim.h"
#include "comm/comm_reduce.h"
#include "core/sha256.h"
#include "lightos/lightos.h"
#include "lk_test.h"

/* GPUs (and CPU devices for the reference groups) the tests use at most. */
#define MAXR 8
#define FAILF(...) lk_test_fail(__FILE__, __LINE__, __VA_ARGS__)
/* The GPU tests say when they start and how long they took (a slow or
 * stuck one shows in a log). */
#define GPU_RUN(fn)                                                                      \
  do {                                                                                   \
    struct timespec t0_, t1_;                                                            \
    clock_gettime(CLOCK_MONOTONIC, &t0_);                                                \
    if (g_ngpu) fprintf(stderr, "test_comm_gpu: %s\n", #fn);                            \
    LK_RUN(fn);                                                                          \
    clock_gettime(CLOCK_MONOTONIC, &t1_);                                                \
    if (g_ngpu)                                                                          \
      fprintf(stderr, "test_comm_gpu: %s took %.1f s\n", #fn,                           \
              (double)(t1_.tv_sec - t0_.tv_sec) + 1e-9 * (double)(t1_.tv_nsec - t0_.tv_nsec)); \
  } while (0)

static lightos_context_t g_cpu[MAXR];
static lightos_context_t g_gpu[MAXR];
static bool g_require_p2p; /* LIGHTOS_TEST_REQUIRE_P2P=1 */
static uint32_t g_ngpu;
static char g_nogpu_why[300];
static int g_nccl_version;
static char g_nccl_why[400];

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return g_rng;
}

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

/* NaN payloads of sums and products: the kernels rebuild the host's
 * (first NaN operand, quieted), which is what GCC's code gives; LLVM may
 * commute the operands of a float add/multiply, so with clang only the
 * NaN-ness is compared. */
#if defined(__clang__)
static const bool k_nan_payload_exact = false;
#else
static const bool k_nan_payload_exact = true;
#endif

/* Element i of dt is a NaN. */
static bool is_nan_bits(lightos_dtype_t dt, const uint8_t* p, size_t i) {
  uint64_t v = 0;
  switch (dt) {
    case LIGHTOS_DTYPE_F32: memcpy(&v, p + 4 * i, 4); return (v & 0x7fffffffu) > 0x7f800000u;
    case LIGHTOS_DTYPE_F64:
      memcpy(&v, p + 8 * i, 8);
      return (v & 0x7fffffffffffffffull) > 0x7ff0000000000000ull;
    case LIGHTOS_DTYPE_F16: memcpy(&v, p + 2 * i, 2); return (v & 0x7fffu) > 0x7c00u;
    case LIGHTOS_DTYPE_BF16: memcpy(&v, p + 2 * i, 2); return (v & 0x7fffu) > 0x7f80u;
    default: return false;
  }
}

static const lightos_dtype_t k_all_types[] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F64,
                                              LIGHTOS_DTYPE_F16, LIGHTOS_DTYPE_BF16,
                                              LIGHTOS_DTYPE_I32, LIGHTOS_DTYPE_I64,
                                              LIGHTOS_DTYPE_U8};
static const char* op_name(int op) {
  static const char* n[] = {"?", "sum", "prod", "min", "max", "avg", "or"};
  return op >= 1 && op <= 6 ? n[op] : "?";
}

/* ---- test data ------------------------------------------------------------------------ */

/* A float of every class: mostly ordinary values over a wide range, some
 * zeros of both signs, subnormals, huge values, infinities, NaNs (when
 * nan). */
static float gen_f32(bool specials, bool nan) {
  uint32_t k = (uint32_t)(rnd() % 100);
  uint32_t sign = (uint32_t)(rnd() & 1) << 31;
  if (specials && k < 4) return u2f(sign | 0x7f800000u);
  if (specials && nan && k < 6) return u2f(sign | 0x7fc00000u | (uint32_t)(rnd() % 0x3fffff));
  if (k < 10) return u2f(sign);
  if (k < 16) return u2f(sign | (uint32_t)(rnd() % 0x7fffff + 1)); /* subnormal */
  if (k < 22) return u2f(sign | ((uint32_t)(250 + rnd() % 4) << 23) | (uint32_t)(rnd() & 0x7fffff));
  int e = (int)(rnd() % 60) - 30;
  float m = (float)((int64_t)(rnd() % 2000001) - 1000000) / 1e6f;
  return ldexpf(m, e);
}

/* Fills n elements of dt; floats per gen_f32 (through the type's
 * conversion), integers small or full range. */
static void gen(lightos_dtype_t dt, void* p, size_t n, bool specials, bool nan) {
  for (size_t i = 0; i < n; ++i) {
    switch (dt) {
      case LIGHTOS_DTYPE_F32: ((float*)p)[i] = gen_f32(specials, nan); break;
      case LIGHTOS_DTYPE_F64: {
        float f = gen_f32(specials, nan);
        double d = (double)f;
        if (f == f && rnd() % 3 == 0) d = d * (1.0 + ldexp((double)(rnd() % 1000), -40));
        ((double*)p)[i] = d;
        break;
      }
      case LIGHTOS_DTYPE_F16:
        ((uint16_t*)p)[i] = lk_f32_to_f16(ldexpf(gen_f32(specials, nan), -10));
        break;
      case LIGHTOS_DTYPE_BF16: ((uint16_t*)p)[i] = lk_f32_to_bf16(gen_f32(specials, nan)); break;
      case LIGHTOS_DTYPE_I32:
        ((int32_t*)p)[i] = rnd() & 1 ? (int32_t)(uint32_t)rnd() : (int32_t)(rnd() % 201) - 100;
        break;
      case LIGHTOS_DTYPE_I64: ((int64_t*)p)[i] = (int64_t)rnd(); break;
      default: ((uint8_t*)p)[i] = (uint8_t)rnd(); break;
    }
  }
}

/* ---- Part A: the kernels' arithmetic on the host ----------------------------------------- */

static void test_conversions(void) {
  int bad = 0;
  for (uint32_t h = 0; h < 65536 && bad < 5; ++h) {
    if (f2u(lk_cuk_f16_to_f32(h)) != f2u(lk_f16_to_f32((uint16_t)h)) && bad++ < 5)
      FAILF("f16 %04x -> f32: %08x, host %08x", h, f2u(lk_cuk_f16_to_f32(h)),
            f2u(lk_f16_to_f32((uint16_t)h)));
    if (f2u(lk_cuk_bf16_to_f32(h)) != f2u(lk_bf16_to_f32((uint16_t)h)) && bad++ < 5)
      FAILF("bf16 %04x -> f32 differs", h);
  }
  /* f32 -> f16/bf16: every exponent and sign with the mantissas around the
   * rounding points, and random bits. */
  static const uint32_t mans[] = {0,        1,        2,        3,        0x7fffff, 0x7ffffe,
                                  0x400000, 0x3fffff, 0x000fff, 0x001000, 0x001001, 0x002000,
                                  0x003000, 0x001fff, 0x007fff, 0x008000, 0x008001, 0x018000,
                                  0x010000, 0x00ffff, 0x7fe000, 0x7ff000, 0x7f8000, 0x7fefff};
  size_t tried = 0;
  for (uint32_t e = 0; e < 256; ++e)
    for (uint32_t sg = 0; sg < 2; ++sg)
      for (size_t m = 0; m < sizeof mans / sizeof mans[0]; ++m) {
        float f = u2f(sg << 31 | e << 23 | mans[m]);
        tried++;
        if (lk_cuk_f32_to_f16(f) != lk_f32_to_f16(f) && bad++ < 5)
          FAILF("f32 %08x -> f16: %04x, host %04x", f2u(f), lk_cuk_f32_to_f16(f),
                lk_f32_to_f16(f));
        if (lk_cuk_f32_to_bf16(f) != lk_f32_to_bf16(f) && bad++ < 5)
          FAILF("f32 %08x -> bf16: %04x, host %04x", f2u(f), lk_cuk_f32_to_bf16(f),
                lk_f32_to_bf16(f));
      }
  for (int i = 0; i < 2000000 && bad < 5; ++i) {
    float f = u2f((uint32_t)rnd());
    if (lk_cuk_f32_to_f16(f) != lk_f32_to_f16(f) || lk_cuk_f32_to_bf16(f) != lk_f32_to_bf16(f)) {
      FAILF("f32 %08x: f16 %04x/%04x bf16 %04x/%04x", f2u(f), lk_cuk_f32_to_f16(f),
            lk_f32_to_f16(f), lk_cuk_f32_to_bf16(f), lk_f32_to_bf16(f));
      bad++;
    }
  }
  LK_CHECK(tried > 10000);
}

/* The tree of lk_cuk_tree_elem against lk_red_tree + lk_red_finish (the
 * host's single-contribution allreduce), every type, op and rank count. */
static void test_tree_arith(void) {
  enum { L = 97 };
  const uint32_t dnf = lk_nccl_host_nan_f32();
  const uint64_t dnd = lk_nccl_host_nan_f64();
  static const uint32_t ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17};
  int bad = 0;
  for (size_t ti = 0; ti < sizeof k_all_types / sizeof *k_all_types; ++ti) {
    const lightos_dtype_t dt = k_all_types[ti];
    const size_t es = lightos_dtype_size(dt);
    for (int op = LIGHTOS_OP_SUM; op <= 6; ++op) {
      if (op == 6 && dt != LIGHTOS_DTYPE_U8) continue;
      for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ++ni) {
        const uint32_t n = ns[ni];
        for (int pass = 0; pass < 3; ++pass) {
          /* pass 0: ordinary data; 1: with specials; 2: random bit patterns */
          uint8_t* slots = malloc((size_t)n * L * es);
          const void* in[17];
          for (uint32_t t = 0; t < n; ++t) {
            uint8_t* p = slots + (size_t)t * L * es;
            if (pass == 2)
              for (size_t b = 0; b < L * es; ++b) p[b] = (uint8_t)rnd();
            else
              gen(dt, p, L, pass == 1, true);
            in[t] = p;
          }
          const uint32_t me = (uint32_t)(rnd() % n);
          /* own data and the result at odd addresses on the third pass
           * (a sub-buffer may start anywhere) */
          uint8_t* own_mem = malloc(L * es + 1);
          uint8_t* own = own_mem + (pass == 2);
          memcpy(own, in[me], L * es);
          uint8_t* own_ref = malloc(L * es); /* the host code needs aligned data */
          memcpy(own_ref, in[me], L * es);
          memset(slots + (size_t)me * L * es, 0xa5, L * es); /* never read */
          uint8_t* want = malloc(L * es);
          uint8_t* got_mem = malloc(L * es + 1);
          uint8_t* got = got_mem + (pass == 2);
          uint8_t* acc = malloc(L * 8);
          const void* in2[17];
          for (uint32_t t = 0; t < n; ++t) in2[t] = t == me ? own_ref : in[t];
          if (op == 6) {
            for (size_t i = 0; i < L; ++i) {
              uint8_t v = 0;
              for (uint32_t t = 0; t < n; ++t) v |= ((const uint8_t*)in2[t])[i];
              want[i] = v;
            }
          } else {
            LK_CHECK_STATUS(lk_red_tree(dt, (lightos_reduce_op_t)op, in2, n, false, acc, L),
                            LIGHTOS_SUCCESS);
            lk_red_finish(dt, (lightos_reduce_op_t)op, acc, want, L, n);
          }
          for (size_t i = 0; i < L; ++i)
            lk_cuk_tree_elem((int)dt, op, own, slots, L, me, n, got, i, n, dnf, dnd);
          for (size_t i = 0; i < L && bad < 8; ++i)
            if (memcmp(got + i * es, want + i * es, es) &&
                (k_nan_payload_exact || !is_nan_bits(dt, got, i) || !is_nan_bits(dt, want, i))) {
              uint64_t g = 0, w = 0;
              memcpy(&g, got + i * es, es);
              memcpy(&w, want + i * es, es);
              FAILF("tree %s %s n=%u pass %d [%zu]: %llx, host %llx", lightos_dtype_name(dt),
                    op_name(op), n, pass, i, (unsigned long long)g, (unsigned long long)w);
              bad++;
            }
          free(slots);
          free(own_mem);
          free(own_ref);
          free(want);
          free(got_mem);
          free(acc);
        }
      }
    }
  }
}

/* The two-rank 16-byte pack of lk_cuk_tree2v_k against the element tree:
 * every float type and op, ordinary data, specials, random bits. */
static void test_tree2_pack(void) {
  static const lightos_dtype_t types[] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F16,
                                          LIGHTOS_DTYPE_BF16};
  const uint32_t dnf = lk_nccl_host_nan_f32();
  const uint64_t dnd = lk_nccl_host_nan_f64();
  enum { P = 64 }; /* packs */
  int bad = 0;
  for (size_t ti = 0; ti < 3; ++ti)
    for (int op = LIGHTOS_OP_SUM; op <= LIGHTOS_OP_AVG; ++op)
      for (int pass = 0; pass < 3; ++pass) {
        const lightos_dtype_t dt = types[ti];
        const size_t es = lightos_dtype_size(dt), L = P * 16 / es;
        uint32_t a[P * 4], b[P * 4], got[P * 4];
        uint8_t* want = malloc(L * es);
        if (pass == 2) {
          for (size_t i = 0; i < P * 4; ++i) {
            a[i] = (uint32_t)rnd();
            b[i] = (uint32_t)rnd();
          }
        } else {
          gen(dt, a, L, pass == 1, true);
          gen(dt, b, L, pass == 1, false);
        }
        uint8_t slots[P * 16 * 2];
        memcpy(slots, a, P * 16);
        memcpy(slots + P * 16, b, P * 16);
        for (size_t i = 0; i < L; ++i) /* rank 0's view: own = a, slot 1 = b */
          lk_cuk_tree_elem((int)dt, op, a, slots, L, 0, 2, want, i, 2, dnf, dnd);
        for (size_t q = 0; q < P; ++q)
          lk_cuk_tree2_pack((int)dt, op, a + 4 * q, b + 4 * q, got + 4 * q, 2, dnf);
        for (size_t i = 0; i < L && bad < 6; ++i)
          if (memcmp((uint8_t*)got + i * es, want + i * es, es)) {
            uint32_t g = 0, w = 0;
            memcpy(&g, (uint8_t*)got + i * es, es);
            memcpy(&w, want + i * es, es);
            FAILF("tree2 pack %s %s pass %d [%zu]: %x, element tree %x", lightos_dtype_name(dt),
                  op_name(op), pass, i, g, w);
            bad++;
          }
        free(want);
      }
}

/* STRICT: block exponents, fixed point, sums and rounding against the
 * host's lk_strict_* sequence (lk_allreduce_strict). */
static void test_strict_arith(void) {
  static const lightos_dtype_t types[] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F16,
                                          LIGHTOS_DTYPE_BF16};
  enum { L = 700 }; /* three exponent blocks, the last partial */
  const size_t nb = (L + LK_STRICT_BLOCK - 1) / LK_STRICT_BLOCK;
  int bad = 0;
  for (size_t ti = 0; ti < 3; ++ti) {
    const lightos_dtype_t dt = types[ti];
    const size_t es = lightos_dtype_size(dt);
    for (uint32_t n = 1; n <= 7; ++n)
      for (int op = LIGHTOS_OP_SUM; op <= LIGHTOS_OP_AVG; op += LIGHTOS_OP_AVG - LIGHTOS_OP_SUM)
        for (int pass = 0; pass < 4; ++pass) {
          /* 0: ordinary; 1: specials; 2: random bits; 3: narrow (ties) */
          uint8_t* data = malloc((size_t)n * L * es);
          for (uint32_t t = 0; t < n; ++t) {
            uint8_t* p = data + (size_t)t * L * es;
            if (pass == 2) {
              for (size_t b = 0; b < L * es; ++b) p[b] = (uint8_t)rnd();
            } else if (pass == 3) {
              for (size_t i = 0; i < L; ++i) {
                float v = ldexpf((float)((int)(rnd() % 64) - 32), (int)(rnd() % 3) - 24);
                if (i % 256 == 0) v = ldexpf(1.0f, 20); /* a block's big value */
                if (dt == LIGHTOS_DTYPE_F32) ((float*)p)[i] = v;
                else if (dt == LIGHTOS_DTYPE_F16) ((uint16_t*)p)[i] = lk_f32_to_f16(ldexpf(v, -8));
                else ((uint16_t*)p)[i] = lk_f32_to_bf16(v);
              }
            } else {
              gen(dt, p, L, pass == 1, true);
            }
          }
          /* host reference */
          int16_t* exps = malloc(nb * sizeof *exps);
          for (size_t b = 0; b < nb; ++b) exps[b] = LK_STRICT_EXP_ZERO;
          bool any = false;
          for (uint32_t t = 0; t < n; ++t)
            any |= lk_strict_scan(dt, data + (size_t)t * L * es, L, exps, NULL);
          uint8_t* special = calloc(L, 1);
          if (any) {
            for (uint32_t t = 0; t < n; ++t)
              for (size_t b = 0; b < L; b += LK_STRICT_BLOCK) {
                int16_t dummy = INT16_MAX;
                size_t m = L - b < LK_STRICT_BLOCK ? L - b : LK_STRICT_BLOCK;
                lk_strict_scan(dt, data + ((size_t)t * L + b) * es, m, &dummy, special + b);
              }
          }
          int64_t* fixed = calloc(L, 8);
          for (uint32_t t = 0; t < n; ++t) lk_strict_add(dt, data + (size_t)t * L * es, L, exps, fixed);
          uint8_t* want = malloc(L * es);
          lk_strict_finish(dt, (lightos_reduce_op_t)op, fixed, L, exps, any ? special : NULL, n,
                           want);
          /* the kernels' functions */
          int* kexps = malloc(nb * sizeof *kexps);
          for (size_t b = 0; b < nb; ++b) kexps[b] = LK_CUK_EXP_ZERO;
          bool kany = false;
          for (uint32_t t = 0; t < n; ++t)
            for (size_t i = 0; i < L; ++i) {
              unsigned sp = 0;
              int e = lk_cuk_strict_e((int)dt, data + (size_t)t * L * es, i, &sp);
              if (e > kexps[i / 256]) kexps[i / 256] = e;
              kany |= sp != 0;
            }
          LK_CHECK(kany == any);
          for (size_t b = 0; b < nb; ++b)
            if (kexps[b] != exps[b] && bad++ < 8)
              FAILF("strict %s block %zu: exponent %d, host %d", lightos_dtype_name(dt), b,
                    kexps[b], exps[b]);
          /* the kernel's element: rank me's data apart, the others' slots
           * (rank me's slot never read) */
          const uint32_t me = (uint32_t)(rnd() % n);
          uint8_t* own = malloc(L * es);
          memcpy(own, data + (size_t)me * L * es, L * es);
          uint8_t* slots = malloc((size_t)n * L * es);
          memcpy(slots, data, (size_t)n * L * es);
          memset(slots + (size_t)me * L * es, 0xff, L * es);
          uint8_t* got = malloc(L * es);
          for (size_t j = 0; j < L; ++j)
            lk_cuk_strict_elem((int)dt, op, own, slots, L, me, n, got, j, 0, kexps, n);
          for (size_t i = 0; i < L && bad < 8; ++i)
            if (memcmp(got + i * es, want + i * es, es)) {
              uint32_t g = 0, w = 0;
              memcpy(&g, got + i * es, es);
              memcpy(&w, want + i * es, es);
              FAILF("strict %s %s n=%u pass %d [%zu]: %x, host %x", lightos_dtype_name(dt),
                    op_name(op), n, pass, i, g, w);
              bad++;
            }
          free(data);
          free(exps);
          free(special);
          free(fixed);
          free(want);
          free(kexps);
          free(own);
          free(slots);
          free(got);
        }
  }
  /* avg where the kernels' 64-bit quotient ends in exactly half an ulp
   * with a nonzero remainder: only the sticky bit rounds it correctly.
   * mag = (3q + r) / 2 with q = M.1000..0 (p + 1 significant bits ahead
   * of the half) and r in {1, 2}: mag * 2 / 3 = q + r/3. */
  for (int i = 0; i < 3000 && bad < 8; ++i) {
    const lightos_dtype_t dt = types[i % 3];
    const int p = dt == LIGHTOS_DTYPE_F32 ? 24 : dt == LIGHTOS_DTYPE_F16 ? 11 : 8;
    const int k = 62 - p;
    uint64_t M = ((uint64_t)1 << (p - 1)) | (rnd() & (((uint64_t)1 << (p - 1)) - 1));
    if (M < ((uint64_t)3 << (p - 2))) M += (uint64_t)1 << (p - 2);
    uint64_t q = (M << k) | ((uint64_t)1 << (k - 1));
    uint64_t num = 3 * q + 1;
    if (num & 1) num += 1; /* r = 2 */
    if (!(num >> 63)) continue;
    int64_t v = (int64_t)(num >> 1);
    if (rnd() & 1) v = -v;
    int16_t e16 = dt == LIGHTOS_DTYPE_F16 ? -12 : 0;
    uint8_t want[4] = {0};
    lk_strict_finish(dt, LIGHTOS_OP_AVG, &v, 1, &e16, NULL, 3, want);
    uint64_t bits = lk_cuk_strict_bits((int)dt, LIGHTOS_OP_AVG, v, e16, 0, 3);
    uint32_t w = 0;
    memcpy(&w, want, lightos_dtype_size(dt));
    if (bits != w) {
      FAILF("strict avg tie %s v=%lld: %llx, host %x", lightos_dtype_name(dt), (long long)v,
            (unsigned long long)bits, w);
      bad++;
    }
  }
  /* The rounding on its own: random sums and exponents, avg by 1..16384. */
  for (int i = 0; i < 300000 && bad < 8; ++i) {
    const lightos_dtype_t dt = types[rnd() % 3];
    int64_t v = (int64_t)rnd() >> (rnd() % 64);
    if (rnd() & 1) v = -v;
    if (i < 16) v = i & 1 ? INT64_MIN : INT64_MAX >> (i / 2);
    int E = (int)(rnd() % 300) - 160;
    uint64_t nt = rnd() % 4 ? 1 + rnd() % 16 : 1 + rnd() % LK_STRICT_MAX_CONTRIB;
    int op = rnd() & 1 ? LIGHTOS_OP_AVG : LIGHTOS_OP_SUM;
    int16_t e16 = (int16_t)E;
    uint8_t want[4] = {0};
    lk_strict_finish(dt, (lightos_reduce_op_t)op, &v, 1, &e16, NULL, nt, want);
    uint64_t bits = lk_cuk_strict_bits((int)dt, op, v, E, 0, nt);
    uint32_t w = 0;
    memcpy(&w, want, lightos_dtype_size(dt));
    if (bits != w) {
      FAILF("strict rounding %s %s v=%lld E=%d n=%llu: %llx, host %x", lightos_dtype_name(dt),
            op_name(op), (long long)v, E, (unsigned long long)nt, (unsigned long long)bits, w);
      bad++;
    }
  }
}

/* ---- Part A: the plan and a host simulation of the pipelines ----------------------------- */

static void test_plan(void) {
  static const uint32_t ns[] = {1, 2, 3, 4, 5, 8};
  static const size_t counts[] = {1, 2, 3, 5, 63, 64, 65, 127, 1000, 4099, 65536, 200003};
  static const size_t xess[] = {1, 2, 4, 8};
  int bad = 0;
  for (size_t a = 0; a < sizeof ns / sizeof *ns; ++a)
    for (size_t b = 0; b < sizeof counts / sizeof *counts; ++b)
      for (size_t x = 0; x < 4; ++x)
        for (int rs = 0; rs < 2; ++rs)
          for (int sz = 0; sz < 2; ++sz) {
            const uint32_t n = ns[a];
            const size_t count = counts[b], xes = xess[x];
            const size_t segb = sz ? (size_t)n * 64 * 8 : (size_t)1 << 20;
            lk_nccl_plan_t pl, pl2;
            lk_nccl_plan_make(&pl, n, 0, rs, count, xes, segb);
            lk_nccl_plan_make(&pl2, n, n - 1, rs, count, xes, segb);
            LK_CHECK(pl.segc % 64 == 0 && pl.segc >= 64);
            LK_CHECK(pl.nseg == pl2.nseg && pl.gather_all == pl2.gather_all);
            LK_CHECK(!pl.gather_all || (n > 1 && !rs && n * count * xes <= segb));
            const size_t total = rs ? count * n : count;
            uint8_t* seen = calloc(total, 1);
            for (size_t s = 0; s < pl.nseg; ++s) {
              const size_t slot = lk_nccl_plan_slot(&pl, s);
              if (!pl.gather_all && n * slot * xes > segb && bad++ < 5)
                FAILF("plan n=%u count=%zu xes=%zu segb=%zu: slot %zu too big", n, count, xes,
                      segb, slot);
              size_t len0 = 0, prev_end = 0, base, slen;
              bool equal = true;
              lk_nccl_plan_seg(&pl, s, &base, &slen);
              for (uint32_t p = 0; p < n; ++p) {
                size_t off, len, out, off2, len2, out2;
                lk_nccl_plan_chunk(&pl, s, p, &off, &len, &out);
                lk_nccl_plan_chunk(&pl2, s, p, &off2, &len2, &out2);
                if ((off != off2 || len != len2 || out != out2) && bad++ < 5)
                  FAILF("plan depends on the rank");
                if (len > slot && bad++ < 5) FAILF("chunk longer than the slot");
                if (p == 0) len0 = len;
                equal &= len == len0;
                if (pl.gather_all) {
                  if (p == 0)
                    for (size_t i = 0; i < count; ++i) seen[i]++;
                  continue;
                }
                if (!rs) {
                  if (p == 0 && off != base && bad++ < 5) FAILF("chunk 0 not at the segment base");
                  if (p > 0 && off != prev_end && bad++ < 5) FAILF("chunks not contiguous");
                  prev_end = off + len;
                  if (out != off && bad++ < 5) FAILF("allreduce out_off != in_off");
                } else if ((off != (size_t)p * count + base || out != base || len != slen) &&
                           bad++ < 5) {
                  FAILF("reduce_scatter chunk layout");
                }
                for (size_t i = 0; i < len; ++i)
                  if (off + i < total) seen[off + i]++;
              }
              if (!rs && !pl.gather_all && prev_end != base + slen && bad++ < 5)
                FAILF("segment not covered");
              if (equal != lk_nccl_plan_equal(&pl, s) && bad++ < 5) FAILF("plan_equal wrong");
            }
            for (size_t i = 0; i < total && bad < 5; ++i)
              if (seen[i] != 1) {
                FAILF("plan n=%u count=%zu rs=%d: element %zu reduced %u times", n, count, rs, i,
                      seen[i]);
                bad++;
              }
            free(seen);
          }
}

/* The pipelined tree allreduce / reduce_scatter of comm_nccl.c, run on the
 * host through the plan with the kernels' element functions: all-to-all
 * into slots, each rank's chunk reduced, all-gather. */
static void sim_tree(uint32_t n, bool rs, lightos_dtype_t dt, int op, size_t count, size_t segb,
                     uint8_t* const* in, uint8_t** out) {
  const size_t es = lightos_dtype_size(dt);
  const uint32_t dnf = lk_nccl_host_nan_f32();
  const uint64_t dnd = lk_nccl_host_nan_f64();
  lk_nccl_plan_t pl[MAXR * 2];
  for (uint32_t r = 0; r < n; ++r) lk_nccl_plan_make(&pl[r], n, r, rs, count, es, segb);
  if (pl[0].gather_all) {
    uint8_t* all = malloc((size_t)n * count * es);
    for (uint32_t r = 0; r < n; ++r) memcpy(all + (size_t)r * count * es, in[r], count * es);
    for (uint32_t me = 0; me < n; ++me)
      for (size_t i = 0; i < count; ++i)
        lk_cuk_tree_elem((int)dt, op, in[me], all, count, me, n, out[me], i, n, dnf, dnd);
    free(all);
    return;
  }
  for (size_t s = 0; s < pl[0].nseg; ++s) {
    const size_t stride = lk_nccl_plan_slot(&pl[0], s);
    uint8_t* x[MAXR * 2];
    for (uint32_t me = 0; me < n; ++me) {
      x[me] = calloc((size_t)n * stride * es + 1, 1);
      size_t off, len, o;
      lk_nccl_plan_chunk(&pl[me], s, me, &off, &len, &o);
      for (uint32_t q = 0; q < n; ++q) {
        if (q == me) continue;
        size_t qoff, qlen, qo; /* q's view of my chunk: what q sends me */
        lk_nccl_plan_chunk(&pl[q], s, me, &qoff, &qlen, &qo);
        memcpy(x[me] + (size_t)q * stride * es, in[q] + qoff * es, qlen * es);
      }
    }
    for (uint32_t me = 0; me < n; ++me) {
      size_t off, len, o;
      lk_nccl_plan_chunk(&pl[me], s, me, &off, &len, &o);
      for (size_t j = 0; j < len; ++j)
        lk_cuk_tree_elem((int)dt, op, in[me] + off * es, x[me], stride, me, n, out[me] + o * es,
                         j, n, dnf, dnd);
    }
    if (!rs)
      for (uint32_t me = 0; me < n; ++me)
        for (uint32_t q = 0; q < n; ++q) {
          size_t off, len, o;
          lk_nccl_plan_chunk(&pl[q], s, q, &off, &len, &o);
          if (q != me) memcpy(out[me] + o * es, out[q] + o * es, len * es);
        }
    for (uint32_t me = 0; me < n; ++me) free(x[me]);
  }
}

static void test_pipeline_sim(void) {
  static const size_t counts[] = {1, 3, 100, 4099, 20000, 70001};
  int bad = 0;
  for (uint32_t n = 1; n <= 5; ++n)
    for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ++ci)
      for (int rs = 0; rs < 2; ++rs) {
        const lightos_dtype_t dt = ci & 1 ? LIGHTOS_DTYPE_BF16 : LIGHTOS_DTYPE_F32;
        const size_t es = lightos_dtype_size(dt), count = counts[ci];
        const size_t total = rs ? count * n : count;
        const size_t segb = (size_t)n * 64 * 8 * (1 + ci % 3);
        uint8_t *in[MAXR * 2], *out[MAXR * 2];
        for (uint32_t r = 0; r < n; ++r) {
          in[r] = malloc(total * es);
          gen(dt, in[r], total, true, false);
          out[r] = malloc(total * es + 1);
          memset(out[r], 0x5a, total * es);
        }
        sim_tree(n, rs, dt, LIGHTOS_OP_SUM, count, segb, in, out);
        /* reference: the host tree per element */
        uint8_t* want = malloc(count * es);
        float* acc = malloc(count * 4);
        for (uint32_t p = 0; p < (rs ? n : 1); ++p) {
          const void* ins[MAXR * 2];
          for (uint32_t r = 0; r < n; ++r) ins[r] = in[r] + (rs ? (size_t)p * count * es : 0);
          lk_red_tree(dt, LIGHTOS_OP_SUM, ins, n, false, acc, count);
          lk_red_finish(dt, LIGHTOS_OP_SUM, acc, want, count, n);
          for (uint32_t r = 0; r < n && bad < 5; ++r) {
            if (rs && r != p) continue;
            if (memcmp(out[r], want, count * es)) {
              FAILF("simulated %s n=%u count=%zu segb=%zu: rank %u differs from the host",
                    rs ? "reduce_scatter" : "allreduce", n, count, segb, r);
              bad++;
            }
          }
        }
        free(want);
        free(acc);
        for (uint32_t r = 0; r < n; ++r) {
          free(in[r]);
          free(out[r]);
        }
      }
}

/* One pair's combination of element i, in an order chosen at random:
 * NCCL's order inside its reduce-scatter is not known. */
static void halve_comb(lightos_dtype_t dt, int op, const uint8_t* a, const uint8_t* b,
                       uint8_t* out, size_t i) {
  const bool swap = rnd() & 1;
  if (swap) {
    const uint8_t* t = a;
    a = b;
    b = t;
  }
  if (dt == LIGHTOS_DTYPE_F64) {
    double x, y, r;
    memcpy(&x, a + 8 * i, 8);
    memcpy(&y, b + 8 * i, 8);
    r = op == LIGHTOS_OP_PROD ? x * y : x + y;
    memcpy(out + 8 * i, &r, 8);
  } else {
    float x, y, r;
    memcpy(&x, a + 4 * i, 4);
    memcpy(&y, b + 4 * i, 4);
    r = op == LIGHTOS_OP_PROD ? x * y : x + y;
    memcpy(out + 4 * i, &r, 4);
  }
}

/* The recursive-halving allreduce of comm_nccl.c run on the host: per
 * segment the pairwise reduce-scatters (step k pairs r and r ^ 2^k, on the
 * regions lk_halve_regions gives), the pair allreduce of the last
 * step, the finishing kernel's element function on the allreduced region,
 * the all-gathers in reverse; the tail through sim_tree.  inplace: out[r]
 * holds the input. */
static void sim_halve(uint32_t n, lightos_dtype_t dt, int op, size_t count, size_t segb,
                      uint8_t* const* in, uint8_t** out, bool inplace) {
  const size_t es = lightos_dtype_size(dt);
  const uint32_t dnf = lk_nccl_host_nan_f32();
  const uint64_t dnd = lk_nccl_host_nan_f64();
  const size_t body = lk_nccl_halve_body(n, count), segc = lk_nccl_halve_segc(n, es, segb);
  uint8_t* const* src = inplace ? out : in;
  for (size_t base = 0; base < body; base += segc) {
    const size_t len = body - base < segc ? body - base : segc;
    size_t off[MAXR * 2][LK_HALVE_MAXSTEP + 1], hi[LK_HALVE_MAXSTEP + 1];
    uint32_t steps = 0;
    for (uint32_t r = 0; r < n; ++r) steps = lk_halve_regions(n, r, base, len, off[r], hi);
    for (uint32_t k = 0; k < steps; ++k) {
      const size_t half = len >> (k + 1);
      const bool last = k + 1 == steps;
      for (uint32_t a = 0; a < n; ++a) {
        const uint32_t b = a | (1u << k);
        if (a & (1u << k)) continue;
        if (lk_nccl_halve_pair(a, k) != lk_nccl_halve_pair(b, k) || off[a][k] != off[b][k] ||
            off[a][k + 1] != off[a][k] || off[b][k + 1] != off[b][k] + half) {
          FAILF("halving n=%u step %u: ranks %u and %u do not share a region", n, k, a, b);
          return;
        }
        const uint8_t* sa = k ? out[a] + off[a][k] * es : src[a] + base * es;
        const uint8_t* sb = k ? out[b] + off[b][k] * es : src[b] + base * es;
        if (last) { /* the pair allreduce: both get every element */
          for (size_t i = 0; i < 2 * half; ++i) {
            halve_comb(dt, op, sa, sb, out[a] + off[a][k] * es, i);
            memcpy(out[b] + (off[b][k] + i) * es, out[a] + (off[a][k] + i) * es, es);
          }
          continue;
        }
        for (size_t i = 0; i < half; ++i) {
          halve_comb(dt, op, sa, sb, out[a] + off[a][k] * es, i);
          halve_comb(dt, op, sa + half * es, sb + half * es, out[b] + off[b][k + 1] * es, i);
        }
      }
    }
    for (uint32_t r = 0; r < n; ++r)
      for (size_t i = 0; i < (len >> (steps - 1)); ++i)
        lk_cuk_fin_elem((int)dt, op, out[r] + off[r][steps - 1] * es, i, n, dnf, dnd);
    for (uint32_t k = steps - 1; k-- > 0;) {
      const size_t piece = (len >> (k + 1)) * es;
      for (uint32_t a = 0; a < n; ++a) {
        const uint32_t b = a | (1u << k);
        if (a & (1u << k)) continue;
        memcpy(out[b] + off[a][k + 1] * es, out[a] + off[a][k + 1] * es, piece);
        memcpy(out[a] + off[b][k + 1] * es, out[b] + off[b][k + 1] * es, piece);
      }
    }
  }
  /* every pair index below n / 2, one pair per index */
  for (uint32_t k = 0; (1u << k) < n; ++k)
    for (uint32_t a = 0; a < n; ++a)
      for (uint32_t b = 0; b < n; ++b) {
        const bool same = lk_nccl_halve_pair(a, k) == lk_nccl_halve_pair(b, k);
        if (lk_nccl_halve_pair(a, k) >= n / 2 || same != (a == b || (a ^ b) == (1u << k)))
          FAILF("halving n=%u step %u: pair index of ranks %u, %u", n, k, a, b);
      }
  if (body < count) {
    uint8_t *ti[MAXR * 2], *to[MAXR * 2];
    for (uint32_t r = 0; r < n; ++r) {
      ti[r] = src[r] + body * es;
      to[r] = out[r] + body * es;
    }
    sim_tree(n, false, dt, op, count - body, (size_t)n * 64 * 8, ti, to);
  }
}

static void test_halving_sim(void) {
  static const size_t counts[] = {1, 100, 1000, 4099, 70001};
  static const int ops[] = {LIGHTOS_OP_SUM, LIGHTOS_OP_AVG, LIGHTOS_OP_PROD};
  int bad = 0;
  for (uint32_t n = 2; n <= 8; n *= 2)
    for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ++ci)
      for (int di = 0; di < 2; ++di)
        for (size_t oi = 0; oi < sizeof ops / sizeof *ops; ++oi) {
          const lightos_dtype_t dt = di ? LIGHTOS_DTYPE_F64 : LIGHTOS_DTYPE_F32;
          const int op = ops[oi];
          const size_t es = lightos_dtype_size(dt), count = counts[ci];
          const size_t segb = (size_t)n * 64 * es * (1 + (ci + oi) % 3);
          const bool inplace = (ci + oi + di) % 2 == 1;
          uint8_t *in[MAXR * 2], *out[MAXR * 2];
          const void* ins[MAXR * 2];
          for (uint32_t r = 0; r < n; ++r) {
            in[r] = malloc(count * es);
            /* NaNs with payloads on every rank: the result's NaN is canonical */
            gen(dt, in[r], count, true, true);
            out[r] = malloc(count * es + 1);
            if (inplace) memcpy(out[r], in[r], count * es);
            else memset(out[r], 0x5a, count * es);
            ins[r] = in[r];
          }
          sim_halve(n, dt, op, count, segb, in, out, inplace);
          uint8_t* want = malloc(count * es);
          void* acc = malloc(count * lk_red_acc_size(dt));
          lk_red_tree(dt, (lightos_reduce_op_t)op, ins, n, false, acc, count);
          lk_red_finish(dt, (lightos_reduce_op_t)op, acc, want, count, n);
          for (uint32_t r = 0; r < n && bad < 5; ++r)
            if (memcmp(out[r], want, count * es)) {
              FAILF("simulated halving %s %s n=%u count=%zu segb=%zu%s: rank %u differs from the "
                    "host tree",
                    lightos_dtype_name(dt), op_name(op), n, count, segb,
                    inplace ? " in place" : "", r);
              bad++;
            }
          free(want);
          free(acc);
          for (uint32_t r = 0; r < n; ++r) {
            free(in[r]);
            free(out[r]);
          }
        }
}

/* The host's STRICT allreduce of n ranks' inputs, written out from its
 * definition (comm_reduce.c's pieces): shared block exponents, every
 * rank's NaN/Inf classes OR-ed per element, exact fixed-point sums, one
 * rounding. */
static void strict_ref(lightos_dtype_t dt, int op, uint32_t n, uint8_t* const* in, size_t count,
                       uint8_t* want) {
  const size_t es = lightos_dtype_size(dt), nb = (count + 255) / 256;
  int16_t* e16 = malloc(nb * 2);
  uint8_t* mask = calloc(count + 1, 1);
  int64_t* fixed = calloc(count + 1, 8);
  for (size_t b = 0; b < nb; ++b) e16[b] = LK_STRICT_EXP_ZERO;
  bool any = false;
  for (uint32_t r = 0; r < n; ++r) any |= lk_strict_scan(dt, in[r], count, e16, NULL);
  for (uint32_t r = 0; r < n && any; ++r)
    for (size_t b = 0; b < count; b += LK_STRICT_BLOCK) {
      int16_t dummy = INT16_MAX;
      size_t m = count - b < LK_STRICT_BLOCK ? count - b : LK_STRICT_BLOCK;
      lk_strict_scan(dt, in[r] + b * es, m, &dummy, mask + b);
    }
  for (uint32_t r = 0; r < n; ++r) lk_strict_add(dt, in[r], count, e16, fixed);
  lk_strict_finish(dt, (lightos_reduce_op_t)op, fixed, count, e16, any ? mask : NULL, n, want);
  free(e16);
  free(mask);
  free(fixed);
}

/* STRICT test inputs: ordinary values, huge ones, zeros, subnormals; with
 * specials, random NaN/+-Inf on every rank and, on rank r, NaN/+-Inf at the
 * first and last element of every 64-element run whose index / 64 has r
 * in it (so every rank's chunk of every segment holds some, from every
 * rank, with NaN and Inf meeting). */
static void strict_inputs(lightos_dtype_t dt, uint32_t n, size_t count, bool specials,
                          uint8_t** in) {
  const size_t es = lightos_dtype_size(dt);
  for (uint32_t r = 0; r < n; ++r) {
    gen(dt, in[r], count, specials, specials);
    if (!specials) continue;
    for (size_t i = 0; i < count; ++i) {
      const size_t run = i / 64, pos = i % 64;
      if ((pos != 0 && pos != 63 && pos != 17) || run % (n + 1) != r) continue;
      const uint32_t kind = (uint32_t)((run / (n + 1) + pos + r) % 3);
      uint32_t bits32 = kind == 0 ? 0x7f800000u : kind == 1 ? 0xff800000u : 0x7fc00123u;
      if (es == 4) {
        memcpy(in[r] + 4 * i, &bits32, 4);
      } else {
        uint16_t h = dt == LIGHTOS_DTYPE_F16 ? lk_f32_to_f16(u2f(bits32))
                                             : lk_f32_to_bf16(u2f(bits32));
        memcpy(in[r] + 2 * i, &h, 2);
      }
    }
  }
}

/* The STRICT allreduce of comm_nccl.c (lk_nl_strict) run on the host, step
 * by step as the GPUs do it: every rank's plan (raw elements exchanged),
 * the scan kernel's block exponents and their max over the ranks, then per
 * segment the all-to-all into the exchange slots, lk_cuk_strict_elem over
 * this rank's chunk (global index for the exponents), the all-gather;
 * outputs in place (out[r] == in[r]) or apart. */
static void sim_strict(uint32_t n, lightos_dtype_t dt, int op, size_t count, size_t segb,
                       uint8_t* const* in, uint8_t** out) {
  const size_t es = lightos_dtype_size(dt), nb = (count + 255) / 256;
  int* exps = malloc((nb + 1) * sizeof *exps);
  for (size_t b = 0; b < nb; ++b) exps[b] = LK_CUK_EXP_ZERO;
  for (uint32_t r = 0; r < n; ++r) /* lk_cuk_scan_k, then ncclAllReduce(max) */
    for (size_t i = 0; i < count; ++i) {
      unsigned sp;
      int e = lk_cuk_strict_e((int)dt, in[r], i, &sp);
      if (e > exps[i / 256]) exps[i / 256] = e;
    }
  lk_nccl_plan_t pl[MAXR];
  for (uint32_t r = 0; r < n; ++r) lk_nccl_plan_make(&pl[r], n, r, false, count, es, segb);
  if (pl[0].gather_all) {
    uint8_t* all = malloc((size_t)n * count * es);
    for (uint32_t r = 0; r < n; ++r) memcpy(all + (size_t)r * count * es, in[r], count * es);
    uint8_t* own = malloc(count * es);
    for (uint32_t me = 0; me < n; ++me) {
      memcpy(own, in[me], count * es);
      for (size_t j = 0; j < count; ++j)
        lk_cuk_strict_elem((int)dt, op, own, all, count, me, n, out[me], j, 0, exps, n);
    }
    free(own);
    free(all);
    free(exps);
    return;
  }
  for (size_t s = 0; s < pl[0].nseg; ++s) {
    const size_t stride = lk_nccl_plan_slot(&pl[0], s);
    uint8_t* x[MAXR];
    for (uint32_t me = 0; me < n; ++me) { /* a2a(s): what every q sends me */
      x[me] = malloc((size_t)n * stride * es + 1);
      memset(x[me], 0xee, (size_t)n * stride * es + 1);
      for (uint32_t q = 0; q < n; ++q) {
        size_t qoff, qlen, qo;
        lk_nccl_plan_chunk(&pl[q], s, me, &qoff, &qlen, &qo);
        if (q != me) memcpy(x[me] + (size_t)q * stride * es, in[q] + qoff * es, qlen * es);
      }
    }
    for (uint32_t me = 0; me < n; ++me) { /* red(s) */
      size_t off, len, o;
      lk_nccl_plan_chunk(&pl[me], s, me, &off, &len, &o);
      for (size_t j = 0; j < len; ++j)
        lk_cuk_strict_elem((int)dt, op, in[me] + off * es, x[me], stride, me, n,
                           out[me] + o * es, j, off, exps, n);
    }
    for (uint32_t me = 0; me < n; ++me) /* ag(s) */
      for (uint32_t q = 0; q < n; ++q) {
        size_t off, len, o;
        lk_nccl_plan_chunk(&pl[q], s, q, &off, &len, &o);
        if (q != me) memcpy(out[me] + o * es, out[q] + o * es, len * es);
      }
    for (uint32_t me = 0; me < n; ++me) free(x[me]);
  }
  free(exps);
}

/* The simulated STRICT pipeline against the host's definition: every type,
 * sum and avg, 1 to 4 ranks, small segments (many segments and chunks,
 * ragged ends), specials in every rank's chunks of every segment, in place
 * and apart. */
static void test_strict_sim(void) {
  static const size_t counts[] = {5, 300, 9000, 33333, 70001};
  static const lightos_dtype_t types[] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F16,
                                          LIGHTOS_DTYPE_BF16};
  int bad = 0;
  for (uint32_t n = 1; n <= 4; ++n)
    for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ++ci)
      for (size_t ti = 0; ti < 3; ++ti)
        for (int op = LIGHTOS_OP_SUM; op <= LIGHTOS_OP_AVG; op += LIGHTOS_OP_AVG - LIGHTOS_OP_SUM) {
          const lightos_dtype_t dt = types[ti];
          const size_t es = lightos_dtype_size(dt), count = counts[ci];
          const size_t segb = (size_t)n * 64 * 8 * (1 + (ci + ti) % 3);
          const bool specials = (ci + ti + (size_t)op) % 4 != 0, inplace = (ci + ti) % 2 == 1;
          uint8_t *in[MAXR], *out[MAXR], *keep[MAXR];
          for (uint32_t r = 0; r < n; ++r) {
            in[r] = malloc(count * es);
            keep[r] = malloc(count * es);
            out[r] = inplace ? in[r] : malloc(count * es);
          }
          strict_inputs(dt, n, count, specials, in);
          for (uint32_t r = 0; r < n; ++r) memcpy(keep[r], in[r], count * es);
          uint8_t* want = malloc(count * es);
          strict_ref(dt, op, n, keep, count, want);
          sim_strict(n, dt, op, count, segb, in, out);
          for (uint32_t r = 0; r < n && bad < 6; ++r)
            for (size_t i = 0; i < count; ++i)
              if (memcmp(out[r] + i * es, want + i * es, es)) {
                uint32_t g = 0, w = 0;
                memcpy(&g, out[r] + i * es, es);
                memcpy(&w, want + i * es, es);
                FAILF("simulated STRICT %s %s n=%u count=%zu segb=%zu%s rank %u [%zu]: %x, "
                      "host %x", lightos_dtype_name(dt), op_name(op), n, count, segb,
                      inplace ? " in place" : "", r, i, g, w);
                bad++;
                break;
              }
          free(want);
          for (uint32_t r = 0; r < n; ++r) {
            if (!inplace) free(out[r]);
            free(in[r]);
            free(keep[r]);
          }
        }
}

/* ---- the peer copies on a stand-in driver (any machine) ----------------------------------
 *
 * lk_nccl_p2p_sim runs LightOS's peer-copy code for n ranks against the
 * driver below: each stream is a thread that runs its operations in order;
 * stream memory operations wait and write on the flags in host memory; a
 * copy is memcpy; a kernel is the host build of comm_cuda_kernels.h.  So the
 * copies' offsets, the flags (a deadlock shows as a wait past the deadline),
 * the all-gather pairs, the segment numbers and in-place hazards are tested
 * for every issue order, from one thread or a thread per rank. */
enum { SIM_WAIT, SIM_WRITE, SIM_COPY, SIM_KERNEL };
enum { SIM_K_TREE, SIM_K_TREE2V, SIM_K_TREEV4, SIM_K_TREEV8 };
static char g_sim_k[4];
static atomic_int g_sim_fail;
static uint64_t g_sim_deadline_ns;

typedef struct sim_op {
  int kind;
  volatile uint32_t* flag;
  uint32_t value;
  void* dst;
  const void* src;
  size_t bytes;
  /* a kernel */
  int kk, dt, op;
  const void *own, *slots;
  unsigned long long stride, len, ntotal, dnan_d;
  unsigned me, n, dnan_f;
  void* out;
} sim_op_t;

typedef struct sim_stream {
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  sim_op_t* ops;
  size_t head, tail, cap;
  bool stop, busy;
} sim_stream_t;

static uint64_t sim_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void sim_run(const sim_op_t* o) {
  switch (o->kind) {
    case SIM_WAIT:
      for (unsigned spins = 0;
           (int32_t)(__atomic_load_n(o->flag, __ATOMIC_ACQUIRE) - o->value) < 0; ++spins) {
        if (atomic_load(&g_sim_fail)) return;
        if (sim_now_ns() > g_sim_deadline_ns) {
          atomic_store(&g_sim_fail, 1);
          return;
        }
        if (spins < 64) {
          sched_yield();
        } else { /* many streams on few cores: sleep rather than spin */
          struct timespec ts = {0, 50000};
          nanosleep(&ts, NULL);
        }
      }
      return;
    case SIM_WRITE: __atomic_store_n(o->flag, o->value, __ATOMIC_RELEASE); return;
    case SIM_COPY: memmove(o->dst, o->src, o->bytes); return;
    default:
      for (unsigned long long i = 0; i < o->len; ++i)
        lk_cuk_tree_elem(o->dt, o->op, o->own, o->slots, o->stride, o->me, o->n, o->out, i,
                         o->ntotal, o->dnan_f, o->dnan_d);
  }
}

static void* sim_stream_main(void* arg) {
  sim_stream_t* st = arg;
  pthread_mutex_lock(&st->mu);
  for (;;) {
    while (st->head == st->tail && !st->stop) pthread_cond_wait(&st->cv, &st->mu);
    if (st->head == st->tail) break;
    sim_op_t o = st->ops[st->head % st->cap];
    st->busy = true;
    pthread_mutex_unlock(&st->mu);
    sim_run(&o);
    pthread_mutex_lock(&st->mu);
    st->head++;
    st->busy = false;
    pthread_cond_broadcast(&st->cv);
  }
  pthread_mutex_unlock(&st->mu);
  return NULL;
}

static CUresult sim_push(CUstream h, const sim_op_t* o) {
  sim_stream_t* st = (sim_stream_t*)h;
  pthread_mutex_lock(&st->mu);
  if (st->tail - st->head == st->cap) {
    size_t cap = st->cap * 2;
    sim_op_t* grown = malloc(cap * sizeof *grown);
    if (!grown) {
      pthread_mutex_unlock(&st->mu);
      return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (size_t i = st->head; i < st->tail; ++i) grown[i % cap] = st->ops[i % st->cap];
    free(st->ops);
    st->ops = grown;
    st->cap = cap;
  }
  st->ops[st->tail++ % st->cap] = *o;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  return CUDA_SUCCESS;
}

static _Thread_local CUcontext g_sim_ctx;
static CUresult sim_ctx_get(CUcontext* c) {
  *c = g_sim_ctx;
  return CUDA_SUCCESS;
}
static CUresult sim_ctx_set(CUcontext c) {
  g_sim_ctx = c;
  return CUDA_SUCCESS;
}
static CUresult sim_stream_create(CUstream* out, unsigned flags) {
  (void)flags;
  sim_stream_t* st = calloc(1, sizeof *st);
  if (!st) return CUDA_ERROR_OUT_OF_MEMORY;
  st->cap = 64;
  st->ops = malloc(st->cap * sizeof *st->ops);
  pthread_mutex_init(&st->mu, NULL);
  pthread_cond_init(&st->cv, NULL);
  if (!st->ops || pthread_create(&st->th, NULL, sim_stream_main, st)) {
    free(st->ops);
    free(st);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *out = (CUstream)st;
  return CUDA_SUCCESS;
}
static CUresult sim_stream_sync(CUstream h) {
  sim_stream_t* st = (sim_stream_t*)h;
  pthread_mutex_lock(&st->mu);
  while (st->head != st->tail || st->busy) pthread_cond_wait(&st->cv, &st->mu);
  pthread_mutex_unlock(&st->mu);
  return CUDA_SUCCESS;
}
static CUresult sim_stream_destroy(CUstream h) {
  sim_stream_t* st = (sim_stream_t*)h;
  pthread_mutex_lock(&st->mu);
  st->stop = true;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  pthread_join(st->th, NULL);
  pthread_mutex_destroy(&st->mu);
  pthread_cond_destroy(&st->cv);
  free(st->ops);
  free(st);
  return CUDA_SUCCESS;
}
static CUresult sim_wait32(CUstream h, CUdeviceptr a, unsigned v, unsigned f) {
  (void)f;
  sim_op_t o = {.kind = SIM_WAIT, .flag = (volatile uint32_t*)(uintptr_t)a, .value = v};
  return sim_push(h, &o);
}
static CUresult sim_write32(CUstream h, CUdeviceptr a, unsigned v, unsigned f) {
  (void)f;
  sim_op_t o = {.kind = SIM_WRITE, .flag = (volatile uint32_t*)(uintptr_t)a, .value = v};
  return sim_push(h, &o);
}
static CUresult sim_batch(CUstream h, unsigned count, CUstreamBatchMemOpParams* p, unsigned f) {
  (void)f;
  CUresult r = CUDA_SUCCESS;
  for (unsigned i = 0; i < count && !r; ++i)
    r = p[i].value.operation == CU_STREAM_MEM_OP_WRITE_VALUE_32
            ? sim_write32(h, p[i].value.address, p[i].value.v.value, 0)
            : sim_wait32(h, p[i].value.address, p[i].value.v.value, 0);
  return r;
}
static CUresult sim_copy(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream h) {
  sim_op_t o = {.kind = SIM_COPY,
                .dst = (void*)(uintptr_t)dst,
                .src = (const void*)(uintptr_t)src,
                .bytes = bytes};
  return sim_push(h, &o);
}
/* The arguments as comm_nccl.c passes them (lk_nl_tree). */
static CUresult sim_launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                           unsigned by, unsigned bz, unsigned smem, CUstream h, void** a,
                           void** extra) {
  (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)smem, (void)extra;
  sim_op_t o = {.kind = SIM_KERNEL};
  o.dt = *(int*)a[0];
  o.op = *(int*)a[1];
#define SIM_PTR(i) ((void*)(uintptr_t) * (CUdeviceptr*)a[i])
  if (f == (CUfunction)&g_sim_k[SIM_K_TREE2V]) { /* a, b, out, len, ntotal, dnan_f */
    o.own = SIM_PTR(2);
    o.slots = SIM_PTR(3);
    o.out = SIM_PTR(4);
    o.len = *(unsigned long long*)a[5];
    o.ntotal = *(unsigned long long*)a[6];
    o.dnan_f = *(unsigned*)a[7];
    o.me = 0;
    o.n = 2;
    o.stride = 0; /* rank 1's element i: slots[i] */
  } else {
    const bool v = f != (CUfunction)&g_sim_k[SIM_K_TREE];
    o.own = SIM_PTR(2);
    o.slots = SIM_PTR(3);
    o.stride = *(unsigned long long*)a[4];
    o.me = *(unsigned*)a[5];
    o.n = v ? (f == (CUfunction)&g_sim_k[SIM_K_TREEV4] ? 4u : 8u) : *(unsigned*)a[6];
    o.out = SIM_PTR(v ? 6 : 7);
    o.len = *(unsigned long long*)a[v ? 7 : 8];
    o.ntotal = *(unsigned long long*)a[v ? 8 : 9];
    o.dnan_f = *(unsigned*)a[v ? 9 : 10];
    o.dnan_d = *(unsigned long long*)a[v ? 10 : 11];
  }
#undef SIM_PTR
  return sim_push(h, &o);
}

static lk_cuda_api_t g_sim_api = {
    .cuCtxGetCurrent = sim_ctx_get,
    .cuCtxSetCurrent = sim_ctx_set,
    .cuStreamCreate = sim_stream_create,
    .cuStreamDestroy_v2 = sim_stream_destroy,
    .cuStreamSynchronize = sim_stream_sync,
    .cuStreamWaitValue32_v2 = sim_wait32,
    .cuStreamWriteValue32_v2 = sim_write32,
    .cuStreamBatchMemOp_v2 = sim_batch,
    .cuMemcpyAsync = sim_copy,
    .cuLaunchKernel = sim_launch,
};

typedef struct sim_job {
  lk_nccl_p2p_sim_t* sim;
  uint32_t rank, nops;
  CUstream st;
  bool rs;
  lightos_dtype_t dt;
  lightos_reduce_op_t op;
  size_t count;
  uint8_t** src; /* per operation */
  uint8_t** dst;
  int rc;
} sim_job_t;

static void* sim_rank_main(void* arg) {
  sim_job_t* j = arg;
  for (uint32_t k = 0; k < j->nops && !j->rc; ++k)
    j->rc = lk_nccl_p2p_sim_issue(j->sim, j->rank, j->st, j->rs, j->dt, j->op, j->count,
                                  (CUdeviceptr)(uintptr_t)j->src[k],
                                  (CUdeviceptr)(uintptr_t)j->dst[k]) != LIGHTOS_SUCCESS;
  return NULL;
}

/* nops operations on n ranks, issued in `order` (0: rank by rank, 1: last
 * rank first, 2: random interleaving with ranks running ahead, 3: a thread
 * per rank); every result against the host tree. */
static void sim_case(uint32_t n, lightos_dtype_t dt, lightos_reduce_op_t op, bool rs,
                     bool inplace, size_t count, size_t segb, uint32_t nops, int order) {
  enum { SIM_MAXR = 8, SIM_MAXOPS = 24 };
  CUfunction k[4] = {(CUfunction)&g_sim_k[0], (CUfunction)&g_sim_k[1], (CUfunction)&g_sim_k[2],
                     (CUfunction)&g_sim_k[3]};
  lk_nccl_p2p_sim_t* sim = lk_nccl_p2p_sim_new(&g_sim_api, n, segb, k);
  LK_REQUIRE(sim != NULL);
  const size_t es = lightos_dtype_size(dt), in_count = rs ? count * n : count;
  sim_job_t jobs[SIM_MAXR];
  uint8_t *src[SIM_MAXR][SIM_MAXOPS], *dst[SIM_MAXR][SIM_MAXOPS], *in[SIM_MAXR][SIM_MAXOPS];
  for (uint32_t r = 0; r < n; ++r) {
    for (uint32_t k2 = 0; k2 < nops; ++k2) {
      in[r][k2] = malloc(in_count * es);
      gen(dt, in[r][k2], in_count, k2 % 2 == 1, r == 0 && k2 % 2 == 1);
      src[r][k2] = malloc(in_count * es);
      memcpy(src[r][k2], in[r][k2], in_count * es);
      dst[r][k2] = inplace ? src[r][k2] : calloc(in_count, es);
    }
    jobs[r] = (sim_job_t){sim, r, nops, NULL, rs, dt, op, count, src[r], dst[r], 0};
    LK_REQUIRE(sim_stream_create(&jobs[r].st, 0) == CUDA_SUCCESS);
  }
  atomic_store(&g_sim_fail, 0);
  g_sim_deadline_ns = sim_now_ns() + 20000000000ull;
  if (order == 3) {
    pthread_t th[SIM_MAXR];
    for (uint32_t r = 0; r < n; ++r) pthread_create(&th[r], NULL, sim_rank_main, &jobs[r]);
    for (uint32_t r = 0; r < n; ++r) pthread_join(th[r], NULL);
  } else {
    uint32_t next[SIM_MAXR] = {0}, left = n * nops;
    while (left) {
      uint32_t r = order == 0 ? 0 : order == 1 ? n - 1 : (uint32_t)(rnd() % n);
      while (next[r] == nops) r = order == 1 ? (r + n - 1) % n : (r + 1) % n;
      uint32_t burst = order == 2 ? 1 + (uint32_t)(rnd() % 3) : 1;
      for (; burst && next[r] < nops; --burst, --left, ++next[r]) {
        jobs[r].nops = 1;
        jobs[r].src = &src[r][next[r]];
        jobs[r].dst = &dst[r][next[r]];
        sim_rank_main(&jobs[r]);
      }
    }
  }
  for (uint32_t r = 0; r < n; ++r) LK_CHECK_MSG(!jobs[r].rc, "rank %u: issue failed", r);
  for (uint32_t r = 0; r < n; ++r) sim_stream_sync(jobs[r].st);
  lk_nccl_p2p_sim_free(sim); /* its all-gather streams drain first */
  LK_CHECK_MSG(!atomic_load(&g_sim_fail), "n=%u %s %s order %d: a stream waited past the deadline",
               n, lightos_dtype_name(dt), op_name(op), order);
  const uint32_t dnf = lk_nccl_host_nan_f32();
  const uint64_t dnd = lk_nccl_host_nan_f64();
  uint8_t* all = malloc(n * count * es);
  uint8_t* want = malloc(count * es);
  int bad = 0;
  for (uint32_t k2 = 0; k2 < nops && bad < 3 && !atomic_load(&g_sim_fail); ++k2)
    for (uint32_t r = 0; r < n && bad < 3; ++r) {
      /* rank r's result: allreduce, every element; reduce_scatter, block r */
      for (uint32_t t = 0; t < n; ++t)
        memcpy(all + (size_t)t * count * es, in[t][k2] + (rs ? (size_t)r * count * es : 0),
               count * es);
      for (size_t i = 0; i < count; ++i)
        lk_cuk_tree_elem((int)dt, (int)op, all, all, count, 0, n, want, i, n, dnf, dnd);
      if (memcmp(dst[r][k2], want, count * es)) {
        FAILF("n=%u %s %s %s%s order %d op %u: rank %u's result is not the host tree's", n,
              rs ? "reduce_scatter" : "allreduce", lightos_dtype_name(dt), op_name(op),
              inplace ? " in place" : "", order, k2, r);
        bad++;
      }
    }
  free(all);
  free(want);
  for (uint32_t r = 0; r < n; ++r) {
    sim_stream_destroy(jobs[r].st);
    for (uint32_t k2 = 0; k2 < nops; ++k2) {
      if (!inplace) free(dst[r][k2]);
      free(src[r][k2]);
      free(in[r][k2]);
    }
  }
}

static bool sim_idle(CUstream h) {
  sim_stream_t* st = (sim_stream_t*)h;
  pthread_mutex_lock(&st->mu);
  bool idle = st->head == st->tail && !st->busy;
  pthread_mutex_unlock(&st->mu);
  return idle;
}

/* A rank that never issues: the others' streams wait on the flags until an
 * abort releases them; released again while they run (a stream may write a
 * flag back), every stream drains. */
static void test_p2p_sim_abort(void) {
  enum { N = 4 };
  CUfunction k[4] = {(CUfunction)&g_sim_k[0], (CUfunction)&g_sim_k[1], (CUfunction)&g_sim_k[2],
                     (CUfunction)&g_sim_k[3]};
  lk_nccl_p2p_sim_t* sim = lk_nccl_p2p_sim_new(&g_sim_api, N, 64 << 10, k);
  LK_REQUIRE(sim != NULL);
  const size_t count = 40000;
  CUstream st[N - 1];
  float* buf[N - 1][2];
  atomic_store(&g_sim_fail, 0);
  g_sim_deadline_ns = sim_now_ns() + 20000000000ull;
  for (uint32_t r = 0; r + 1 < N; ++r) {
    LK_REQUIRE(sim_stream_create(&st[r], 0) == CUDA_SUCCESS);
    for (int b = 0; b < 2; ++b) buf[r][b] = calloc(count, sizeof(float));
    for (int op = 0; op < 2; ++op) /* two operations each: the second waits behind the first */
      LK_CHECK(lk_nccl_p2p_sim_issue(sim, r, st[r], false, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM,
                                     count, (CUdeviceptr)(uintptr_t)buf[r][0],
                                     (CUdeviceptr)(uintptr_t)buf[r][1]) == LIGHTOS_SUCCESS);
  }
  struct timespec ms = {0, 1000000};
  nanosleep(&ms, NULL);
  for (uint32_t r = 0; r + 1 < N; ++r)
    LK_CHECK_MSG(!sim_idle(st[r]), "rank %u finished without rank %u", r, N - 1);
  bool idle = false;
  for (int i = 0; i < 5000 && !idle; ++i) { /* the watchdog's loop, at most 5 s */
    lk_nccl_p2p_sim_release(sim);
    nanosleep(&ms, NULL);
    idle = true;
    for (uint32_t r = 0; r + 1 < N; ++r) idle = idle && sim_idle(st[r]);
  }
  LK_CHECK_MSG(idle, "the streams still wait after the release");
  LK_CHECK(!atomic_load(&g_sim_fail));
  lk_nccl_p2p_sim_free(sim);
  for (uint32_t r = 0; r + 1 < N; ++r) {
    sim_stream_destroy(st[r]);
    for (int b = 0; b < 2; ++b) free(buf[r][b]);
  }
}

static void test_p2p_sim(void) {
  /* Sizes above the one-all-gather limit (256 KiB over all ranks), ragged,
   * many segments (64 KiB areas) and one; enough operations to wrap the
   * publication table (16 entries). */
  for (uint32_t n = 2; n <= 8; n = n == 4 ? 8 : n + 1)
    for (int order = 0; order < 4; ++order) {
      /* some 300-400 KiB over all ranks */
      const size_t c1 = (96u << 10) / n + 13, c2 = (200u << 10) / n + 3;
      sim_case(n, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, false, order % 2 == 1, c1, 64 << 10, 3,
               order);
      sim_case(n, order < 2 ? LIGHTOS_DTYPE_F64 : LIGHTOS_DTYPE_BF16, LIGHTOS_OP_AVG, false,
               order % 2 == 0, c2, 1 << 20, 2, order);
      sim_case(n, LIGHTOS_DTYPE_I32, LIGHTOS_OP_MAX, true, false, c1 / n + 1, 64 << 10, 2, order);
    }
  sim_case(4, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, false, false, (24u << 10) + 17, 64 << 10, 20, 2);
}

static void test_nvrtc_builds_kernels(void) {
  void* img = NULL;
  size_t size = 0;
  /* The first architecture this NVRTC knows (the source is the same for
   * every one; the GPU machine builds for its own at run time). */
  static const char* const archs[] = {"sm_90", "sm_80"};
  for (int i = 0; i < 2; ++i) {
    lightos_status_t s = lk_nccl_compile_kernels(archs[i], 0, false, &img, &size);
    if (s == LIGHTOS_UNAVAILABLE) {
      lk_test_skip("NVRTC not available: %s", lightos_last_error()->message);
      return;
    }
    if (s == LIGHTOS_UNSUPPORTED) continue; /* an NVRTC too new or old for this arch */
    LK_CHECK_MSG(s == LIGHTOS_SUCCESS && img && size > 1000, "NVRTC %s: %s", archs[i],
                 lightos_last_error()->message);
    free(img);
    return;
  }
  FAILF("NVRTC builds for none of sm_90, sm_80");
}

static void test_nccl_library(void) {
  if (!g_nccl_version) {
    lk_test_skip("%s", g_nccl_why);
    return;
  }
  LK_CHECK(g_nccl_version >= 21200);
  fprintf(stderr, "test_comm_gpu: NCCL version code %d\n", g_nccl_version);
}

/* ---- Part B: groups of GPUs ----------------------------------------------------------------- */

typedef struct grp {
  uint32_t n;
  lightos_comm_t comm[MAXR];
  lightos_context_t ctx[MAXR];
} grp_t;

static lightos_status_t grp_make(grp_t* g, uint32_t n, const lightos_context_t* ctxs,
                                 lightos_determinism_t level, double timeout) {
  memset(g, 0, sizeof *g);
  g->n = n;
  memcpy(g->ctx, ctxs, n * sizeof *ctxs);
  lightos_comm_config_t cfg;
  lightos_comm_config_default(&cfg);
  cfg.level = level;
  cfg.timeout_s = timeout;
  return lightos_comm_init_all_config(n, g->ctx, &cfg, g->comm);
}

static void grp_free(grp_t* g) {
  for (uint32_t r = 0; r < g->n; ++r)
    if (g->comm[r]) lightos_comm_destroy(g->comm[r]);
  memset(g, 0, sizeof *g);
}

static lightos_status_t grp_finish(grp_t* g) {
  lightos_status_t first = LIGHTOS_SUCCESS;
  for (uint32_t r = 0; r < g->n; ++r) {
    lightos_queue_t q;
    lightos_context_default_queue(g->ctx[r], &q);
    lightos_status_t s = lightos_queue_finish(q);
    if (s && !first) first = s;
  }
  return first;
}

static lightos_buffer_t buf_with(lightos_context_t ctx, const void* data, size_t bytes) {
  lightos_buffer_t b = NULL;
  if (lightos_buffer_alloc(ctx, bytes, 0, &b)) return NULL;
  if (data && lightos_buffer_write(b, 0, bytes, data)) {
    lightos_buffer_release(b);
    return NULL;
  }
  return b;
}

static bool need_gpus(uint32_t n) {
  if (g_ngpu >= n) return true;
  if (!g_ngpu) lk_test_skip("%s", g_nogpu_why);
  else lk_test_skip("needs %u CUDA devices, found %u", n, g_ngpu);
  return false;
}

/* The kinds of collective run_coll knows. */
enum { C_ALLREDUCE, C_REDUCE_SCATTER, C_ALLGATHER, C_ALLTOALL, C_BROADCAST, C_REDUCE };

/* Runs one collective on every rank of g (issued rank by rank, one
 * operation for all ranks at a time), in[r] holding the send data; out[r]
 * gets the receive buffer's bytes.  Returns 0 on success. */
static int run_coll(grp_t* g, int kind, lightos_dtype_t dt, lightos_reduce_op_t op, size_t count,
                    uint8_t* const* in, uint8_t** out, bool inplace) {
  const uint32_t n = g->n;
  const size_t es = lightos_dtype_size(dt);
  size_t sbytes = count * es, rbytes = count * es;
  if (kind == C_REDUCE_SCATTER || kind == C_ALLTOALL) sbytes *= n;
  if (kind == C_ALLGATHER || kind == C_ALLTOALL) rbytes *= n;
  lightos_buffer_t sb[MAXR] = {0}, rb[MAXR] = {0};
  int rc = 0;
  for (uint32_t r = 0; r < n && !rc; ++r) {
    if (inplace && kind == C_ALLGATHER) {
      uint8_t* tmp = calloc(rbytes, 1);
      memcpy(tmp + (size_t)r * sbytes, in[r], sbytes);
      rb[r] = buf_with(g->ctx[r], tmp, rbytes);
      free(tmp);
      sb[r] = rb[r];
    } else {
      sb[r] = buf_with(g->ctx[r], in[r], sbytes);
      rb[r] = inplace ? sb[r] : buf_with(g->ctx[r], NULL, rbytes);
    }
    if (!sb[r] || !rb[r]) {
      FAILF("buffers: %s", lightos_last_error()->message);
      rc = -1;
    }
  }
  for (uint32_t r = 0; r < n && !rc; ++r) {
    lightos_status_t s = LIGHTOS_SUCCESS;
    switch (kind) {
      case C_ALLREDUCE: s = lightos_comm_allreduce(sb[r], rb[r], count, dt, op, g->comm[r], NULL); break;
      case C_REDUCE_SCATTER:
        s = lightos_comm_reduce_scatter(sb[r], rb[r], count, dt, op, g->comm[r], NULL);
        break;
      case C_ALLGATHER: s = lightos_comm_allgather(sb[r], rb[r], count, dt, g->comm[r], NULL); break;
      case C_ALLTOALL: s = lightos_comm_alltoall(sb[r], rb[r], count, dt, g->comm[r], NULL); break;
      case C_BROADCAST:
        s = lightos_comm_broadcast(r == 1 % n ? sb[r] : NULL, rb[r], count, dt, 1 % n, g->comm[r],
                                   NULL);
        break;
      case C_REDUCE:
        s = lightos_comm_reduce(sb[r], r == 0 ? rb[r] : NULL, count, dt, op, 0, g->comm[r], NULL);
        break;
    }
    if (s) {
      FAILF("collective %d %s %s on rank %u: %s", kind, lightos_dtype_name(dt), op_name(op), r,
            lightos_last_error()->message);
      rc = -1;
    }
  }
  if (!rc && grp_finish(g)) {
    FAILF("finish: %s", lightos_last_error()->message);
    rc = -1;
  }
  for (uint32_t r = 0; r < n; ++r) {
    if (!rc && out && out[r] && !(kind == C_REDUCE && r != 0))
      lightos_buffer_read(rb[r], 0, rbytes, out[r]);
    if (rb[r] && rb[r] != sb[r]) lightos_buffer_release(rb[r]);
    if (sb[r]) lightos_buffer_release(sb[r]);
  }
  return rc;
}

/* The CPU group's STRICT allreduce (comm_algo.c lk_allreduce_strict, the
 * reference the GPU tests compare with) against the definition, with
 * NaN/Inf in every rank's chunk: a non-finite value of rank r inside rank
 * q's chunk (q != 0) must reach every rank's result. */
static void test_cpu_strict_specials(void) {
  static const lightos_dtype_t types[] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F16,
                                          LIGHTOS_DTYPE_BF16};
  const size_t count = 3001;
  for (uint32_t n = 2; n <= 4; ++n) {
    grp_t g;
    if (grp_make(&g, n, g_cpu, LIGHTOS_DETERMINISM_STRICT, 60)) {
      FAILF("CPU group of %u: %s", n, lightos_last_error()->message);
      return;
    }
    for (size_t ti = 0; ti < 3; ++ti) {
      const lightos_dtype_t dt = types[ti];
      const size_t es = lightos_dtype_size(dt);
      const int op = ti == 1 ? LIGHTOS_OP_AVG : LIGHTOS_OP_SUM;
      uint8_t *in[MAXR], *got[MAXR];
      for (uint32_t r = 0; r < n; ++r) {
        in[r] = malloc(count * es);
        got[r] = malloc(count * es);
      }
      strict_inputs(dt, n, count, true, in);
      uint8_t* want = malloc(count * es);
      strict_ref(dt, op, n, in, count, want);
      if (!run_coll(&g, C_ALLREDUCE, dt, (lightos_reduce_op_t)op, count, in, got, false))
        for (uint32_t r = 0; r < n; ++r)
          for (size_t i = 0; i < count; ++i)
            if (memcmp(got[r] + i * es, want + i * es, es)) {
              uint32_t gv = 0, wv = 0;
              memcpy(&gv, got[r] + i * es, es);
              memcpy(&wv, want + i * es, es);
              FAILF("CPU group STRICT %s %s n=%u rank %u [%zu]: %x, definition %x",
                    lightos_dtype_name(dt), op_name(op), n, r, i, gv, wv);
              break;
            }
      free(want);
      for (uint32_t r = 0; r < n; ++r) {
        free(in[r]);
        free(got[r]);
      }
    }
    grp_free(&g);
  }
}

static double getd(lightos_dtype_t dt, const void* p, size_t i) {
  switch (dt) {
    case LIGHTOS_DTYPE_F32: return ((const float*)p)[i];
    case LIGHTOS_DTYPE_F64: return ((const double*)p)[i];
    case LIGHTOS_DTYPE_F16: return lk_f16_to_f32(((const uint16_t*)p)[i]);
    case LIGHTOS_DTYPE_BF16: return lk_bf16_to_f32(((const uint16_t*)p)[i]);
    case LIGHTOS_DTYPE_I32: return ((const int32_t*)p)[i];
    case LIGHTOS_DTYPE_I64: return (double)((const int64_t*)p)[i];
    default: return ((const uint8_t*)p)[i];
  }
}

/* GPU results against the CPU group's: bit for bit, or (NONE floats)
 * within the type's rounding of the magnitudes.  n ranks' results are
 * checked; element i of rank r reduced the terms in[t][r * in_stride + i]
 * for t < nterms (in_stride: the count for reduce_scatter, else 0). */
static void compare_terms(const char* what, lightos_dtype_t dt, lightos_reduce_op_t op,
                          size_t count, uint32_t n, uint32_t nterms, size_t in_stride,
                          uint8_t* const* in, uint8_t* const* got, uint8_t* const* want,
                          size_t bytes, bool exact) {
  int bad = 0;
  for (uint32_t r = 0; r < n && bad < 4; ++r) {
    if (exact) {
      for (size_t i = 0; i < bytes && bad < 4; ++i)
        if (got[r][i] != want[r][i]) {
          size_t es = lightos_dtype_size(dt), e = i / es;
          if (!k_nan_payload_exact && is_nan_bits(dt, got[r], e) && is_nan_bits(dt, want[r], e)) {
            i = (e + 1) * es - 1;
            continue;
          }
          uint64_t gv = 0, wv = 0;
          memcpy(&gv, got[r] + e * es, es);
          memcpy(&wv, want[r] + e * es, es);
          FAILF("%s %s %s n=%u rank %u [%zu]: %llx (%g), CPU group %llx (%g)", what,
                lightos_dtype_name(dt), op_name(op), n, r, e, (unsigned long long)gv,
                getd(dt, got[r], e), (unsigned long long)wv, getd(dt, want[r], e));
          bad++;
          i = (e + 1) * es - 1;
        }
      continue;
    }
    for (size_t i = 0; i < count && bad < 4; ++i) {
      double g = getd(dt, got[r], i), w = getd(dt, want[r], i), mag = 0, up = 1, lo = 1;
      for (uint32_t t = 0; t < nterms; ++t) {
        const double x = fabs(getd(dt, in[t], r * in_stride + i));
        mag += x;
        up *= x > 1 ? x : 1;
        lo *= x < 1 ? x : 1;
      }
      /* Where the order of the steps decides whether a partial sum or
       * product overflows (or a product underflows to zero), the vendor's
       * order may give Inf, NaN or 0 where the tree's is finite, or the
       * reverse: NONE promises nothing there. */
      const double tmax = dt == LIGHTOS_DTYPE_F16    ? 65504.0
                          : dt == LIGHTOS_DTYPE_BF16 ? 0x1.fep127
                          : dt == LIGHTOS_DTYPE_F32  ? FLT_MAX
                                                     : DBL_MAX;
      const double tmin = dt == LIGHTOS_DTYPE_F16    ? 0x1p-14
                          : dt == LIGHTOS_DTYPE_F64  ? DBL_MIN
                                                     : FLT_MIN;
      const bool order_decides = op == LIGHTOS_OP_PROD ? (up > tmax || (lo > 0 && lo < tmin))
                                                       : mag > tmax;
      if (order_decides) continue;
      double ulp = dt == LIGHTOS_DTYPE_F16 ? 0x1p-9 : dt == LIGHTOS_DTYPE_BF16 ? 0x1p-6 : 0x1p-20;
      /* NONE makes no bitwise promise: the vendor may round each step in
       * the element type (NCCL's avg multiplies every input by 1/n in
       * half precision first), which near zero costs whole subnormal
       * steps: a few of the type's smallest subnormal on top. */
      double tiny = dt == LIGHTOS_DTYPE_F16    ? 0x1p-24
                    : dt == LIGHTOS_DTYPE_BF16 ? 0x1p-133
                    : dt == LIGHTOS_DTYPE_F32  ? 0x1p-149
                                               : 0x1p-1074;
      if (fabs(w) > mag) mag = fabs(w); /* products */
      bool ok = (g != g && w != w) || g == w ||
                fabs(g - w) <= mag * ulp * nterms + 2.0 * (nterms + 1) * tiny + 1e-30 ||
                (isinf(w) && fabs(g) > 1e30) || (isinf(g) && fabs(w) > 1e30);
      if (!ok) {
        FAILF("%s %s %s n=%u rank %u [%zu]: %.9g, CPU group %.9g", what, lightos_dtype_name(dt),
              op_name(op), n, r, i, g, w);
        bad++;
      }
    }
  }
}

static void compare(const char* what, lightos_dtype_t dt, lightos_reduce_op_t op, size_t count,
                    uint32_t n, uint8_t* const* in, uint8_t* const* got, uint8_t* const* want,
                    size_t bytes, bool exact) {
  compare_terms(what, dt, op, count, n, n, 0, in, got, want, bytes, exact);
}

/* The same allreduce on the GPU group gg and the CPU group gc (as many
 * ranks; gc at TOPOLOGY when gg is at NONE). */
static void allreduce_vs_cpu(grp_t* gg, grp_t* gc, lightos_determinism_t level,
                             lightos_dtype_t dt, lightos_reduce_op_t op, size_t count,
                             bool specials, bool inplace) {
  const uint32_t n = gg->n;
  const size_t es = lightos_dtype_size(dt), bytes = count * es;
  uint8_t *in[MAXR], *got[MAXR], *want[MAXR], *again[MAXR];
  for (uint32_t r = 0; r < n; ++r) {
    in[r] = malloc(bytes);
    got[r] = malloc(bytes);
    want[r] = malloc(bytes);
    again[r] = malloc(bytes);
    /* NaN at most on one rank per element: its payload is then the
     * host's whatever the operand order. */
    gen(dt, in[r], count, specials, specials && r == 0);
  }
  char what[96];
  snprintf(what, sizeof what, "allreduce %s%s", lightos_determinism_name(level),
           inplace ? " in place" : "");
  if (!run_coll(gg, C_ALLREDUCE, dt, op, count, in, got, inplace) &&
      !run_coll(gc, C_ALLREDUCE, dt, op, count, in, want, false)) {
    bool exact = level != LIGHTOS_DETERMINISM_NONE || !lk_red_dtype_is_float(dt);
    if (level != LIGHTOS_DETERMINISM_RUN || !lk_red_dtype_is_float(dt))
      compare(what, dt, op, count, n, in, got, want, bytes, exact);
    /* every rank holds the same bits, and a second run repeats them */
    for (uint32_t r = 1; r < n; ++r)
      if (level != LIGHTOS_DETERMINISM_NONE && memcmp(got[r], got[0], bytes))
        FAILF("%s %s %s: rank %u's bits differ from rank 0's", what, lightos_dtype_name(dt),
              op_name(op), r);
    if (level == LIGHTOS_DETERMINISM_RUN &&
        !run_coll(gg, C_ALLREDUCE, dt, op, count, in, again, inplace))
      for (uint32_t r = 0; r < n; ++r)
        if (memcmp(again[r], got[r], bytes))
          FAILF("%s %s %s: a second run gives other bits on rank %u", what,
                lightos_dtype_name(dt), op_name(op), r);
  }
  for (uint32_t r = 0; r < n; ++r) {
    free(in[r]);
    free(got[r]);
    free(want[r]);
    free(again[r]);
  }
}

static void allreduce_matrix(uint32_t n) {
  static const lightos_dtype_t types[] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F16, LIGHTOS_DTYPE_BF16,
                                          LIGHTOS_DTYPE_I32, LIGHTOS_DTYPE_F64};
  static const lightos_reduce_op_t ops[] = {LIGHTOS_OP_SUM, LIGHTOS_OP_AVG, LIGHTOS_OP_MIN,
                                            LIGHTOS_OP_MAX, LIGHTOS_OP_PROD};
  /* A small count (one all-gather) and one of many segments with a ragged
   * end (64 KiB segments: LIGHTOS_NCCL_SEGMENT_KB, set in main). */
  static const size_t counts[] = {1001, 100003};
  for (lightos_determinism_t l = LIGHTOS_DETERMINISM_NONE; l <= LIGHTOS_DETERMINISM_STRICT; ++l) {
    grp_t gg, gc;
    if (grp_make(&gg, n, g_gpu, l, 60)) {
      FAILF("GPU group of %u: %s", n, lightos_last_error()->message);
      return;
    }
    if (grp_make(&gc, n, g_cpu, l == LIGHTOS_DETERMINISM_NONE ? LIGHTOS_DETERMINISM_TOPOLOGY : l,
                 60)) {
      FAILF("CPU group of %u: %s", n, lightos_last_error()->message);
      grp_free(&gg);
      return;
    }
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ++ti)
      for (size_t oi = 0; oi < sizeof ops / sizeof *ops; ++oi) {
        const lightos_dtype_t dt = types[ti];
        const lightos_reduce_op_t op = ops[oi];
        if (op == LIGHTOS_OP_PROD && (l == LIGHTOS_DETERMINISM_STRICT || dt == LIGHTOS_DTYPE_F16))
          continue; /* float prod at STRICT is refused; f16 products overflow at once */
        if (dt == LIGHTOS_DTYPE_F64 && l != LIGHTOS_DETERMINISM_TOPOLOGY) continue;
        for (size_t ci = 0; ci < 2; ++ci) {
          bool specials = op == LIGHTOS_OP_MIN || op == LIGHTOS_OP_MAX || ci == 1;
          if (l == LIGHTOS_DETERMINISM_NONE) specials = false;
          allreduce_vs_cpu(&gg, &gc, l, dt, op, counts[ci], specials, (ci + oi) % 2 == 1);
        }
      }
    grp_free(&gg);
    grp_free(&gc);
  }
}

static void test_gpu_allreduce_one(void) {
  if (!need_gpus(1)) return;
  allreduce_matrix(1);
}

static void test_gpu_allreduce_group(void) {
  if (!need_gpus(2)) return;
  uint32_t n = g_ngpu < MAXR ? g_ngpu : MAXR;
  allreduce_matrix(n);
  if (n > 2) allreduce_matrix(2);
}

static void test_gpu_transport(void) {
  if (!need_gpus(1)) return;
  uint32_t n = g_ngpu < MAXR ? g_ngpu : MAXR;
  grp_t g;
  LK_REQUIRE_OK(grp_make(&g, n, g_gpu, LIGHTOS_DETERMINISM_TOPOLOGY, 60));
  const char* name = NULL;
  LK_CHECK_STATUS(lightos_comm_transport(g.comm[0], &name), LIGHTOS_SUCCESS);
  if (g_nccl_version) LK_CHECK_STR(name, "nccl");
  else fprintf(stderr, "test_gpu_transport: no NCCL (%s): transport %s\n", g_nccl_why, name);
  grp_free(&g);
  setenv("LIGHTOS_COMM_NCCL", "0", 1);
  LK_REQUIRE_OK(grp_make(&g, n, g_gpu, LIGHTOS_DETERMINISM_TOPOLOGY, 60));
  LK_CHECK_STATUS(lightos_comm_transport(g.comm[0], &name), LIGHTOS_SUCCESS);
  LK_CHECK_STR(name, "inproc");
  /* the host path still gives the CPU group's bits */
  grp_free(&g);
  unsetenv("LIGHTOS_COMM_NCCL");
}

static void test_gpu_host_path_matches(void) {
  if (!need_gpus(2)) return;
  setenv("LIGHTOS_COMM_NCCL", "0", 1);
  grp_t gg, gc;
  lightos_status_t s = grp_make(&gg, 2, g_gpu, LIGHTOS_DETERMINISM_TOPOLOGY, 60);
  unsetenv("LIGHTOS_COMM_NCCL");
  LK_REQUIRE(s == LIGHTOS_SUCCESS);
  const char* name = NULL;
  lightos_comm_transport(gg.comm[0], &name);
  LK_CHECK_STR(name, "inproc");
  if (grp_make(&gc, 2, g_cpu, LIGHTOS_DETERMINISM_TOPOLOGY, 60)) {
    FAILF("CPU group: %s", lightos_last_error()->message);
    grp_free(&gg);
    return;
  }
  allreduce_vs_cpu(&gg, &gc, LIGHTOS_DETERMINISM_TOPOLOGY, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM,
                   5000, true, false);
  grp_free(&gg);
  grp_free(&gc);
}

/* Groups of GPUs and CPU devices: the GPUs' aligned block sums over NCCL,
 * the upper level on the host path with the block as one node of the tree
 * (comm.c, lk_hier_setup), the block's broadcast hands the result back.
 * The bits equal the flat host path's (LIGHTOS_COMM_HIERARCHY=0) for f32,
 * f64 and i32 sums and f32 avg at TOPOLOGY, i32 at NONE; every rank holds
 * the same bits.  Broadcast from every root reaches every rank. */
static void test_gpu_composed(void) {
  if (!need_gpus(2)) return;
  const size_t count = ((size_t)1 << 20) + 3;
  /* {GPU block, CPU}; {GPU block, CPU, CPU}: the upper level's tree over
   * leaves is not the tree over its ranks; {4 GPUs, CPU} with 4 GPUs. */
  struct {
    uint32_t n, ngpu, m;
  } lay[] = {{3, 2, 2}, {4, 2, 3}, {5, 4, 2}};
  static const struct {
    lightos_determinism_t lv;
    lightos_dtype_t dt;
    lightos_reduce_op_t op;
  } cases[] = {{LIGHTOS_DETERMINISM_TOPOLOGY, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM},
               {LIGHTOS_DETERMINISM_TOPOLOGY, LIGHTOS_DTYPE_F64, LIGHTOS_OP_SUM},
               {LIGHTOS_DETERMINISM_TOPOLOGY, LIGHTOS_DTYPE_F32, LIGHTOS_OP_AVG},
               {LIGHTOS_DETERMINISM_TOPOLOGY, LIGHTOS_DTYPE_I32, LIGHTOS_OP_SUM},
               {LIGHTOS_DETERMINISM_NONE, LIGHTOS_DTYPE_I32, LIGHTOS_OP_SUM}};
  uint8_t *in[MAXR], *want[MAXR], *got[MAXR];
  for (uint32_t r = 0; r < MAXR; ++r) {
    in[r] = malloc(count * 8);
    want[r] = malloc(count * 8);
    got[r] = malloc(count * 8);
  }
  for (size_t l = 0; l < sizeof lay / sizeof lay[0]; ++l) {
    if (g_ngpu < lay[l].ngpu) continue;
    lightos_context_t ctx[MAXR];
    for (uint32_t r = 0; r < lay[l].n; ++r)
      ctx[r] = r < lay[l].ngpu ? g_gpu[r] : g_cpu[r - lay[l].ngpu];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
      grp_t flat, comp;
      setenv("LIGHTOS_COMM_HIERARCHY", "0", 1);
      lightos_status_t s = grp_make(&flat, lay[l].n, ctx, cases[k].lv, 60);
      unsetenv("LIGHTOS_COMM_HIERARCHY");
      LK_REQUIRE_OK(s);
      LK_REQUIRE_OK(grp_make(&comp, lay[l].n, ctx, cases[k].lv, 60));
      uint32_t up = 0;
      for (uint32_t r = 0; r < lay[l].n; ++r) {
        lk_object_t* o = NULL;
        lk_handle_resolve(comp.comm[r], LK_OBJ_COMM, "comm", &o);
        if (((const lk_comm_t*)o)->hier_outer) up = ((const lk_comm_t*)o)->hier_outer->size;
      }
      LK_CHECK_MSG(up == lay[l].m, "layout %zu: the upper level has %u ranks, expected %u", l,
                   up, lay[l].m);
      const lightos_dtype_t dt = cases[k].dt;
      const size_t bytes = count * lightos_dtype_size(dt);
      for (uint32_t r = 0; r < lay[l].n; ++r)
        for (size_t i = 0; i < count; ++i) {
          float v = ldexpf((float)((int64_t)(rand() % 2000001) - 1000000) / 1e6f, rand() % 31 - 15);
          if (dt == LIGHTOS_DTYPE_F32) ((float*)in[r])[i] = v;
          else if (dt == LIGHTOS_DTYPE_F64) ((double*)in[r])[i] = (double)v * (1.0 + 1e-9 * (double)i);
          else ((int32_t*)in[r])[i] = rand();
        }
      if (!run_coll(&flat, C_ALLREDUCE, dt, cases[k].op, count, in, want, k % 2 == 1) &&
          !run_coll(&comp, C_ALLREDUCE, dt, cases[k].op, count, in, got, k % 2 == 0)) {
        for (uint32_t r = 0; r < lay[l].n; ++r)
          LK_CHECK_MSG(!memcmp(want[0], got[r], bytes),
                       "layout %zu, case %zu: rank %u's composed result differs from the flat "
                       "group's", l, k, r);
      } else {
        FAILF("layout %zu, case %zu: %s", l, k, lightos_last_error()->message);
      }
      grp_free(&flat);
      grp_free(&comp);
    }
    /* Broadcast from every root: every rank gets the root's bytes. */
    grp_t comp;
    LK_REQUIRE_OK(grp_make(&comp, lay[l].n, ctx, LIGHTOS_DETERMINISM_TOPOLOGY, 60));
    for (uint32_t root = 0; root < lay[l].n; ++root) {
      const size_t bytes = count * 4;
      for (size_t i = 0; i < count; ++i) ((uint32_t*)in[root])[i] = (uint32_t)rand();
      lightos_buffer_t sb = buf_with(ctx[root], in[root], bytes), rb[MAXR];
      for (uint32_t r = 0; r < lay[l].n; ++r) rb[r] = buf_with(ctx[r], NULL, bytes);
      for (uint32_t r = 0; r < lay[l].n; ++r)
        LK_CHECK_STATUS(lightos_comm_broadcast(r == root ? sb : NULL, rb[r], count,
                                               LIGHTOS_DTYPE_F32, root, comp.comm[r], NULL),
                        LIGHTOS_SUCCESS);
      LK_CHECK_STATUS(grp_finish(&comp), LIGHTOS_SUCCESS);
      for (uint32_t r = 0; r < lay[l].n; ++r) {
        lightos_buffer_read(rb[r], 0, bytes, got[0]);
        LK_CHECK_MSG(!memcmp(got[0], in[root], bytes), "layout %zu: broadcast from %u: rank %u",
                     l, root, r);
        lightos_buffer_release(rb[r]);
      }
      lightos_buffer_release(sb);
    }
    grp_free(&comp);
  }
  for (uint32_t r = 0; r < MAXR; ++r) {
    free(in[r]);
    free(want[r]);
    free(got[r]);
  }
}

/* One allreduce by three algorithms: recursive halving (the default on
 * 2^K GPUs), the tree pipeline (LIGHTOS_NCCL_HALVING=0) and the host path
 * (LIGHTOS_COMM_NCCL=0) give the same bits, on 2 and 4 GPUs, at RUN and
 * TOPOLOGY, for data with NaN/Inf, finite data (the finishing kernel has
 * nothing to do) and finite data whose partial sums overflow (+Inf and
 * -Inf meet: NaN from finite inputs); the halving counter proves which
 * path ran.  Halving scans the input for work of its finishing kernel
 * (LIGHTOS_NCCL_HALVING_SCAN_KB=0; one segment, or 256 KiB segments for
 * the odd cases). */
static void test_gpu_algorithms(void) {
  if (!need_gpus(2)) return;
  enum { NA = 4 };
  static const char* const names[NA] = {"recursive halving", "tree pipeline", "host path",
                                        "peer copies"};
  for (uint32_t n = 2; n <= g_ngpu && n <= MAXR; n *= 2)
    for (int di = 0; di < 2; ++di)
      for (int oi = 0; oi < 4; ++oi) {
        const lightos_dtype_t dt = di ? LIGHTOS_DTYPE_F64 : LIGHTOS_DTYPE_F32;
        const lightos_reduce_op_t op = oi == 3 ? LIGHTOS_OP_AVG : LIGHTOS_OP_SUM;
        const lightos_determinism_t lv = oi & 1 ? LIGHTOS_DETERMINISM_RUN : LIGHTOS_DETERMINISM_TOPOLOGY;
        const size_t count = ((size_t)1 << 20) + 77; /* a tail too */
        const size_t bytes = count * lightos_dtype_size(dt);
        if (!(oi & 1)) unsetenv("LIGHTOS_NCCL_HALVING_SEGMENT_KB");
        uint8_t *in[MAXR], *out[NA][MAXR];
        for (uint32_t r = 0; r < n; ++r) {
          in[r] = malloc(bytes);
          gen(dt, in[r], count, oi == 0 || oi == 3, oi == 0 || oi == 3);
          if (oi == 2) /* +max on the lower half of the ranks, -max on the upper */
            for (size_t i = 0; i < count; i += 1 + i % 97) {
              const double v = (r < n / 2 ? 1.0 : -1.0) * (dt == LIGHTOS_DTYPE_F64 ? DBL_MAX : FLT_MAX);
              if (dt == LIGHTOS_DTYPE_F64) ((double*)in[r])[i] = v;
              else ((float*)in[r])[i] = (float)v;
            }
          for (int a = 0; a < NA; ++a) out[a][r] = malloc(bytes);
        }
        for (int a = 0; a < NA; ++a) {
          setenv("LIGHTOS_NCCL_HALVING_SCAN_KB", "0", 1);
          if (a < 2) setenv("LIGHTOS_NCCL_P2P", "0", 1);
          if (a == 1) setenv("LIGHTOS_NCCL_HALVING", "0", 1);
          if (a == 2) setenv("LIGHTOS_COMM_NCCL", "0", 1);
          grp_t g;
          lightos_status_t s = grp_make(&g, n, g_gpu, lv, 60);
          unsetenv("LIGHTOS_NCCL_HALVING");
          unsetenv("LIGHTOS_COMM_NCCL");
          unsetenv("LIGHTOS_NCCL_HALVING_SCAN_KB");
          unsetenv("LIGHTOS_NCCL_P2P");
          LK_REQUIRE(s == LIGHTOS_SUCCESS);
          const uint64_t before = lk_nccl_halving_ops(), p2p_before = lk_nccl_p2p_ops();
          int rc = run_coll(&g, C_ALLREDUCE, dt, op, count, in, out[a], a == 1);
          const uint64_t ran = lk_nccl_halving_ops() - before;
          const uint64_t p2p = lk_nccl_p2p_ops() - p2p_before;
          grp_free(&g);
          if (rc) continue;
          if (a == 0 && g_nccl_version)
            LK_CHECK_MSG(ran == n, "%u GPUs %s: %llu of %u ranks took recursive halving", n,
                         lightos_dtype_name(dt), (unsigned long long)ran, n);
          if (a != 0)
            LK_CHECK_MSG(ran == 0, "%s ran recursive halving", names[a]);
          if (a != 3)
            LK_CHECK_MSG(p2p == 0, "%s exchanged by peer copies", names[a]);
          else if (g_nccl_version && p2p != n) {
            /* Peer copies need peer access between every pair of GPUs;
             * scripts/gpu-check.sh requires them where NVLink joins the GPUs. */
            if (g_require_p2p)
              FAILF("%u GPUs: %llu of %u ranks exchanged by peer copies", n,
                    (unsigned long long)p2p, n);
            else
              printf("NOTE %u GPUs: no peer copies here (LIGHTOS_LOG=info says why)\n", n);
          }
          /* RUN on the host path is the ring, another order once there are
           * more than 2 ranks: it promises the same bits run to run only. */
          if (a == 2 && lv == LIGHTOS_DETERMINISM_RUN && n > 2) continue;
          for (uint32_t r = 0; r < n; ++r)
            LK_CHECK_MSG(!memcmp(out[a][r], out[0][0], bytes),
                         "%u GPUs %s %s %s: rank %u of the %s differs from rank 0 of the %s", n,
                         lightos_determinism_name(lv), lightos_dtype_name(dt), op_name(op), r,
                         names[a], names[0]);
        }
        for (uint32_t r = 0; r < n; ++r) {
          free(in[r]);
          for (int a = 0; a < NA; ++a) free(out[a][r]);
        }
        setenv("LIGHTOS_NCCL_HALVING_SEGMENT_KB", "256", 1);
      }
}

/* broadcast, allgather (also in place), alltoall exact; reduce_scatter
 * and reduce against the CPU group. */
static void test_gpu_other_collectives(void) {
  if (!need_gpus(1)) return;
  const uint32_t n = g_ngpu < MAXR ? g_ngpu : MAXR;
  for (lightos_determinism_t l = LIGHTOS_DETERMINISM_NONE; l <= LIGHTOS_DETERMINISM_STRICT; ++l) {
    grp_t gg, gc;
    LK_REQUIRE_OK(grp_make(&gg, n, g_gpu, l, 60));
    if (grp_make(&gc, n, g_cpu, l == LIGHTOS_DETERMINISM_NONE ? LIGHTOS_DETERMINISM_TOPOLOGY : l, 60)) {
      FAILF("CPU group: %s", lightos_last_error()->message);
      grp_free(&gg);
      return;
    }
    static const size_t counts[] = {7, 30011};
    for (size_t ci = 0; ci < 2; ++ci) {
      const size_t count = counts[ci];
      for (int kind = C_REDUCE_SCATTER; kind <= C_REDUCE; ++kind) {
        /* reduce: i32 (NCCL's own at every level), then f32 (above NONE
         * the allreduce's path, the result on the root) */
        const lightos_dtype_t dt = kind == C_REDUCE ? (ci ? LIGHTOS_DTYPE_F32 : LIGHTOS_DTYPE_I32)
                                   : ci ? LIGHTOS_DTYPE_I32 : LIGHTOS_DTYPE_F32;
        const lightos_dtype_t dt2 = kind == C_REDUCE_SCATTER ? (ci ? LIGHTOS_DTYPE_BF16 : LIGHTOS_DTYPE_F32) : dt;
        const size_t es = lightos_dtype_size(dt2);
        const size_t sb = count * es * (kind == C_REDUCE_SCATTER || kind == C_ALLTOALL ? n : 1);
        const size_t rb = count * es * (kind == C_ALLGATHER || kind == C_ALLTOALL ? n : 1);
        uint8_t *in[MAXR], *got[MAXR], *want[MAXR];
        for (uint32_t r = 0; r < n; ++r) {
          in[r] = malloc(sb);
          got[r] = calloc(rb, 1);
          want[r] = calloc(rb, 1);
          gen(dt2, in[r], sb / es, false, false);
        }
        for (int inplace = 0; inplace < (kind == C_ALLGATHER ? 2 : 1); ++inplace) {
          if (!run_coll(&gg, kind, dt2, LIGHTOS_OP_SUM, count, in, got, inplace) &&
              !run_coll(&gc, kind, dt2, LIGHTOS_OP_SUM, count, in, want, false)) {
            bool exact = !(l == LIGHTOS_DETERMINISM_NONE && lk_red_dtype_is_float(dt2) &&
                           (kind == C_REDUCE_SCATTER || kind == C_REDUCE));
            char what[64];
            snprintf(what, sizeof what, "collective %d%s %s", kind, inplace ? " in place" : "",
                     lightos_determinism_name(l));
            uint8_t *g1[MAXR], *w1[MAXR];
            uint32_t m = 0;
            for (uint32_t r = 0; r < n; ++r)
              if (kind != C_REDUCE || r == 0) {
                g1[m] = got[r];
                w1[m++] = want[r];
              }
            compare_terms(what, dt2, LIGHTOS_OP_SUM, rb / es, m, n,
                          kind == C_REDUCE_SCATTER ? count : 0, in, g1, w1, rb, exact);
          }
        }
        for (uint32_t r = 0; r < n; ++r) {
          free(in[r]);
          free(got[r]);
          free(want[r]);
        }
      }
    }
    /* barrier */
    for (uint32_t r = 0; r < n; ++r)
      LK_CHECK_STATUS(lightos_comm_barrier(gg.comm[r], NULL), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(grp_finish(&gg), LIGHTOS_SUCCESS);
    grp_free(&gg);
    grp_free(&gc);
  }
}

/* One hash: allreduce_multi (the host path) of the same contributions
 * split over 1, 2, 4 GPUs and the CPU; and at TOPOLOGY/STRICT the device
 * path (one contribution per GPU) against one rank holding them all. */
static uint32_t run_split(const lightos_context_t* ctxs, uint32_t nr, const uint32_t* split,
                          lightos_determinism_t level, float* const* c, size_t nelem,
                          bool single, uint8_t digest[32]) {
  grp_t g;
  if (grp_make(&g, nr, ctxs, level, 60)) {
    FAILF("group: %s", lightos_last_error()->message);
    return 1;
  }
  lightos_buffer_t bufs[8], out[MAXR];
  uint32_t k = 0, rc = 0;
  for (uint32_t r = 0; r < nr; ++r) {
    for (uint32_t j = 0; j < split[r]; ++j, ++k) bufs[k] = buf_with(g.ctx[r], c[k], nelem * 4);
    out[r] = buf_with(g.ctx[r], NULL, nelem * 4);
  }
  k = 0;
  for (uint32_t r = 0; r < nr; ++r) {
    lightos_status_t s =
        single ? lightos_comm_allreduce(bufs[k], out[r], nelem, LIGHTOS_DTYPE_F32,
                                        LIGHTOS_OP_SUM, g.comm[r], NULL)
               : lightos_comm_allreduce_multi(&bufs[k], split[r], out[r], nelem,
                                              LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g.comm[r], NULL);
    if (s) {
      FAILF("allreduce: %s", lightos_last_error()->message);
      rc = 1;
    }
    k += split[r];
  }
  if (!rc && grp_finish(&g)) {
    FAILF("finish: %s", lightos_last_error()->message);
    rc = 1;
  }
  float* res = malloc(nelem * 4);
  for (uint32_t r = 0; r < nr && !rc; ++r) {
    uint8_t d[32];
    lightos_buffer_read(out[r], 0, nelem * 4, res);
    lk_sha256(res, nelem * 4, r ? d : digest);
    if (r && memcmp(d, digest, 32)) {
      FAILF("rank %u's bits differ from rank 0's", r);
      rc = 1;
    }
  }
  free(res);
  for (uint32_t i = 0; i < k; ++i) lightos_buffer_release(bufs[i]);
  for (uint32_t r = 0; r < nr; ++r) lightos_buffer_release(out[r]);
  grp_free(&g);
  return rc;
}

static void test_gpu_bitwise_splits(void) {
  if (!need_gpus(1)) return;
  enum { NC = 8 };
  const size_t nelem = 40961;
  float* c[NC];
  for (int i = 0; i < NC; ++i) {
    c[i] = malloc(nelem * 4);
    for (size_t j = 0; j < nelem; ++j)
      c[i][j] = ldexpf((float)((int64_t)(rnd() % 2000001) - 1000000) / 1e6f, (int)(rnd() % 41) - 20);
  }
  static const uint32_t s1[] = {8}, s2[] = {4, 4}, s4[] = {2, 2, 2, 2},
                        s8[] = {1, 1, 1, 1, 1, 1, 1, 1};
  static const uint32_t* splits[] = {s1, s2, NULL, s4, NULL, NULL, NULL, s8};
  for (lightos_determinism_t l = LIGHTOS_DETERMINISM_TOPOLOGY; l <= LIGHTOS_DETERMINISM_STRICT; ++l) {
    uint8_t ref[32], d[32];
    LK_REQUIRE(run_split(g_cpu, 1, s1, l, c, nelem, false, ref) == 0);
    for (uint32_t nr = 1; nr <= MAXR && nr <= g_ngpu; nr *= 2) {
      LK_REQUIRE(run_split(g_gpu, nr, splits[nr - 1], l, c, nelem, false, d) == 0);
      LK_CHECK_MSG(!memcmp(ref, d, 32), "%s: %u GPUs x %u contributions: other bits than 1 CPU x 8",
                   lightos_determinism_name(l), nr, 8 / nr);
    }
    /* The device path: m GPUs with one contribution each against one CPU
     * rank holding the m contributions. */
    for (uint32_t m = 2; m <= MAXR && m <= g_ngpu; m *= 2) {
      uint32_t one[MAXR], all[1] = {m};
      for (uint32_t r = 0; r < MAXR; ++r) one[r] = 1;
      LK_REQUIRE(run_split(g_cpu, 1, all, l, c, nelem, false, ref) == 0);
      LK_REQUIRE(run_split(g_gpu, m, one, l, c, nelem, true, d) == 0);
      LK_CHECK_MSG(!memcmp(ref, d, 32), "%s: %u GPUs (device path) give other bits than 1 CPU x %u",
                   lightos_determinism_name(l), m, m);
    }
  }
  for (int i = 0; i < NC; ++i) free(c[i]);
}

/* STRICT with NaN/Inf on the GPUs: the CPU group's bits. */
static void test_gpu_strict_specials(void) {
  if (!need_gpus(2)) return;
  enum { N = 1030 };
  float* in[2] = {calloc(N, 4), calloc(N, 4)};
  for (int r = 0; r < 2; ++r)
    for (int i = 0; i < N; ++i) in[r][i] = gen_f32(false, false);
  float sa[6] = {INFINITY, INFINITY, NAN, 1.0f, -0.0f, 3e38f};
  float sb[6] = {1.0f, -INFINITY, 2.0f, 2.0f, -0.0f, 3e38f};
  memcpy(in[0] + 10, sa, sizeof sa);
  memcpy(in[1] + 10, sb, sizeof sb);
  in[1][700] = -INFINITY;
  for (int pass = 0; pass < 2; ++pass) {
    if (pass) { /* no specials at all: the mask path is skipped */
      in[0][10] = in[0][11] = in[0][12] = in[1][11] = in[1][700] = 1.0f;
    }
    grp_t gg, gc;
    LK_REQUIRE_OK(grp_make(&gg, 2, g_gpu, LIGHTOS_DETERMINISM_STRICT, 60));
    LK_REQUIRE_OK(grp_make(&gc, 2, g_cpu, LIGHTOS_DETERMINISM_STRICT, 60));
    uint8_t *got[2] = {malloc(N * 4), malloc(N * 4)}, *want[2] = {malloc(N * 4), malloc(N * 4)};
    uint8_t* ins[2] = {(uint8_t*)in[0], (uint8_t*)in[1]};
    for (int op = LIGHTOS_OP_SUM; op <= LIGHTOS_OP_AVG; op += 4)
      if (!run_coll(&gg, C_ALLREDUCE, LIGHTOS_DTYPE_F32, (lightos_reduce_op_t)op, N, ins, got, false) &&
          !run_coll(&gc, C_ALLREDUCE, LIGHTOS_DTYPE_F32, (lightos_reduce_op_t)op, N, ins, want, false))
        compare("STRICT specials", LIGHTOS_DTYPE_F32, (lightos_reduce_op_t)op, N, 2, ins, got, want,
                N * 4, true);
    for (int r = 0; r < 2; ++r) {
      free(got[r]);
      free(want[r]);
    }
    grp_free(&gg);
    grp_free(&gc);
  }
  free(in[0]);
  free(in[1]);
}

/* Sub-buffers at odd byte offsets: the kernels' loads and stores. */
static void test_gpu_unaligned(void) {
  if (!need_gpus(2)) return;
  const size_t n = 20011, bytes = n * 4;
  for (lightos_determinism_t l = LIGHTOS_DETERMINISM_RUN; l <= LIGHTOS_DETERMINISM_STRICT; ++l) {
    grp_t gg, gc;
    LK_REQUIRE_OK(grp_make(&gg, 2, g_gpu, l, 60));
    LK_REQUIRE_OK(grp_make(&gc, 2, g_cpu, l, 60));
    uint8_t *in[2], *got[2], *want[2];
    lightos_buffer_t par[2], sub[2];
    for (int r = 0; r < 2; ++r) {
      in[r] = malloc(bytes);
      got[r] = malloc(bytes);
      want[r] = malloc(bytes);
      gen(LIGHTOS_DTYPE_F32, in[r], n, false, false);
      par[r] = buf_with(gg.ctx[r], NULL, bytes + 8);
      LK_REQUIRE_OK(lightos_buffer_create_sub(par[r], 1 + 2 * (size_t)r, bytes, &sub[r]));
      LK_REQUIRE_OK(lightos_buffer_write(sub[r], 0, bytes, in[r]));
    }
    for (int r = 0; r < 2; ++r) /* in place on the odd sub-buffers */
      LK_CHECK_STATUS(lightos_comm_allreduce(sub[r], sub[r], n, LIGHTOS_DTYPE_F32,
                                             LIGHTOS_OP_SUM, gg.comm[r], NULL),
                      LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(grp_finish(&gg), LIGHTOS_SUCCESS);
    for (int r = 0; r < 2; ++r) lightos_buffer_read(sub[r], 0, bytes, got[r]);
    if (l != LIGHTOS_DETERMINISM_RUN &&
        !run_coll(&gc, C_ALLREDUCE, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, n, in, want, false))
      compare("unaligned allreduce", LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, n, 2, in, got, want,
              bytes, true);
    LK_CHECK_MSG(!memcmp(got[0], got[1], bytes), "%s: the ranks' bits differ",
                 lightos_determinism_name(l));
    for (int r = 0; r < 2; ++r) {
      lightos_buffer_release(sub[r]);
      lightos_buffer_release(par[r]);
      free(in[r]);
      free(got[r]);
      free(want[r]);
    }
    grp_free(&gg);
    grp_free(&gc);
  }
}

/* Stream order: a write, the collective and a read on one queue with no
 * finish between; a STRICT allreduce (proxy thread) and a broadcast
 * (enqueued) in turn. */
static void test_gpu_stream_order(void) {
  if (!need_gpus(2)) return;
  for (lightos_determinism_t l = LIGHTOS_DETERMINISM_TOPOLOGY; l <= LIGHTOS_DETERMINISM_STRICT; ++l) {
    grp_t g;
    LK_REQUIRE_OK(grp_make(&g, 2, g_gpu, l, 60));
    const size_t n = (size_t)1 << 20;
    float* h[2] = {malloc(n * 4), malloc(n * 4)};
    float* got[2] = {malloc(n * 4), malloc(n * 4)};
    float* got2[2] = {malloc(n * 4), malloc(n * 4)};
    lightos_buffer_t b[2], c2[2];
    lightos_queue_t q[2];
    for (int r = 0; r < 2; ++r) {
      for (size_t i = 0; i < n; ++i) h[r][i] = (float)(r + 1);
      b[r] = buf_with(g.ctx[r], NULL, n * 4);
      c2[r] = buf_with(g.ctx[r], NULL, n * 4);
      LK_REQUIRE_OK(lightos_queue_create(g.ctx[r], 0, &q[r]));
      LK_CHECK_STATUS(lightos_enqueue_write(q[r], b[r], 0, n * 4, h[r], NULL), LIGHTOS_SUCCESS);
    }
    for (int r = 0; r < 2; ++r)
      LK_CHECK_STATUS(lightos_comm_allreduce(b[r], b[r], n, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM,
                                             g.comm[r], q[r]),
                      LIGHTOS_SUCCESS);
    for (int r = 0; r < 2; ++r)
      LK_CHECK_STATUS(lightos_comm_broadcast(r == 1 ? b[r] : NULL, c2[r], n, LIGHTOS_DTYPE_F32, 1,
                                             g.comm[r], q[r]),
                      LIGHTOS_SUCCESS);
    for (int r = 0; r < 2; ++r) {
      LK_CHECK_STATUS(lightos_enqueue_read(q[r], b[r], 0, n * 4, got[r], NULL), LIGHTOS_SUCCESS);
      LK_CHECK_STATUS(lightos_enqueue_read(q[r], c2[r], 0, n * 4, got2[r], NULL), LIGHTOS_SUCCESS);
    }
    for (int r = 0; r < 2; ++r) LK_CHECK_STATUS(lightos_queue_finish(q[r]), LIGHTOS_SUCCESS);
    for (int r = 0; r < 2; ++r) {
      LK_CHECK_MSG(got[r][0] == 3.0f && got[r][n - 1] == 3.0f, "%s rank %d read %g",
                   lightos_determinism_name(l), r, got[r][0]);
      LK_CHECK_MSG(got2[r][0] == 3.0f && got2[r][n / 2] == 3.0f, "%s rank %d broadcast %g",
                   lightos_determinism_name(l), r, got2[r][0]);
    }
    for (int r = 0; r < 2; ++r) {
      lightos_buffer_release(b[r]);
      lightos_buffer_release(c2[r]);
      lightos_queue_release(q[r]);
      free(h[r]);
      free(got[r]);
      free(got2[r]);
    }
    grp_free(&g);
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 256 MiB of f32 on 2 GPUs at every level: bus bandwidth (printed), and
 * the TOPOLOGY/STRICT results against the CPU group. */
static void test_gpu_bandwidth(void) {
  if (!need_gpus(2)) return;
  const size_t n = (size_t)64 << 20, bytes = n * 4;
  const uint32_t nr = 2;
  unsetenv("LIGHTOS_NCCL_SEGMENT_KB"); /* the default segments */
  unsetenv("LIGHTOS_NCCL_HALVING_SEGMENT_KB");
  float* h[2] = {malloc(bytes), malloc(bytes)};
  for (uint32_t r = 0; r < nr; ++r)
    for (size_t i = 0; i < n; ++i)
      h[r][i] = (float)((int)((i * 2654435761u + r) % 2001) - 1000) / (float)(1u << (i % 7));
  uint8_t *got[2] = {malloc(bytes), malloc(bytes)}, *want[2] = {malloc(bytes), malloc(bytes)};
  double busbw[4] = {0};
  for (lightos_determinism_t l = LIGHTOS_DETERMINISM_NONE; l <= LIGHTOS_DETERMINISM_STRICT; ++l) {
    grp_t g;
    LK_REQUIRE_OK(grp_make(&g, nr, g_gpu, l, 120));
    lightos_buffer_t b[2];
    for (uint32_t r = 0; r < nr; ++r) b[r] = buf_with(g.ctx[r], h[r], bytes);
    const int warm = 2, iters = 5;
    double t0 = 0;
    for (int it = 0; it < warm + iters; ++it) {
      if (it == warm) {
        LK_CHECK_STATUS(grp_finish(&g), LIGHTOS_SUCCESS);
        t0 = now_s();
      }
      for (uint32_t r = 0; r < nr; ++r)
        LK_CHECK_STATUS(lightos_comm_allreduce(b[r], b[r], n, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM,
                                               g.comm[r], NULL),
                        LIGHTOS_SUCCESS);
    }
    LK_CHECK_STATUS(grp_finish(&g), LIGHTOS_SUCCESS);
    double t = (now_s() - t0) / iters;
    busbw[l] = 2.0 * (nr - 1) / nr * (double)bytes / t / 1e9;
    const char* tr = "";
    lightos_comm_transport(g.comm[0], &tr);
    fprintf(stderr, "PERF allreduce f32 256 MiB x %u GPUs %-8s (%s): %.3f ms, busbw %.1f GB/s\n",
            nr, lightos_determinism_name(l), tr, t * 1e3, busbw[l]);
    for (uint32_t r = 0; r < nr; ++r) lightos_buffer_release(b[r]);
    grp_free(&g);
  }
  if (busbw[0] > 0)
    fprintf(stderr,
            "PERF share of NONE's bus bandwidth: RUN %.0f%%, TOPOLOGY %.0f%%, STRICT %.0f%% "
            "(targets: TOPOLOGY >= 90%%, STRICT >= 45%%)\n",
            100 * busbw[1] / busbw[0], 100 * busbw[2] / busbw[0], 100 * busbw[3] / busbw[0]);
  /* One large allreduce, checked against the CPU group. */
  for (lightos_determinism_t l = LIGHTOS_DETERMINISM_TOPOLOGY; l <= LIGHTOS_DETERMINISM_STRICT; ++l) {
    const size_t m = ((size_t)24 << 20) + 77;
    uint8_t* in[2] = {malloc(m * 4), malloc(m * 4)};
    for (int r = 0; r < 2; ++r) gen(LIGHTOS_DTYPE_F32, in[r], m, false, false);
    grp_t gg, gc;
    LK_REQUIRE_OK(grp_make(&gg, 2, g_gpu, l, 120));
    LK_REQUIRE_OK(grp_make(&gc, 2, g_cpu, l, 120));
    if (!run_coll(&gg, C_ALLREDUCE, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, m, in, got, false) &&
        !run_coll(&gc, C_ALLREDUCE, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, m, in, want, false))
      compare("large allreduce", LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, m, 2, in, got, want, m * 4, true);
    grp_free(&gg);
    grp_free(&gc);
    free(in[0]);
    free(in[1]);
  }
  setenv("LIGHTOS_NCCL_SEGMENT_KB", "64", 1);
  setenv("LIGHTOS_NCCL_HALVING_SEGMENT_KB", "256", 1);
  free(h[0]);
  free(h[1]);
  for (int r = 0; r < 2; ++r) {
    free(got[r]);
    free(want[r]);
  }
}

/* A collective only rank 0 issues: the watchdog aborts it after the
 * timeout, the queue finishes, later collectives fail with ABORTED on
 * every rank; lightos_comm_abort fails the other ranks' device path too. */
static void test_gpu_timeout_and_abort(void) {
  if (!need_gpus(2)) return;
  if (!g_nccl_version) {
    lk_test_skip("no NCCL (%s)", g_nccl_why);
    return;
  }
  grp_t g;
  LK_REQUIRE_OK(grp_make(&g, 2, g_gpu, LIGHTOS_DETERMINISM_TOPOLOGY, 3));
  const size_t n = 4096;
  lightos_buffer_t b[2] = {buf_with(g.ctx[0], NULL, n * 4), buf_with(g.ctx[1], NULL, n * 4)};
  double t0 = now_s();
  LK_CHECK_STATUS(lightos_comm_allreduce(b[0], b[0], n, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM,
                                         g.comm[0], NULL),
                  LIGHTOS_SUCCESS);
  lightos_queue_t q0;
  lightos_context_default_queue(g.ctx[0], &q0);
  (void)lightos_queue_finish(q0); /* returns once the watchdog aborted the collective */
  double waited = now_s() - t0;
  LK_CHECK_MSG(waited >= 2.5 && waited < 60, "the lone collective ended after %.1f s (timeout 3 s)",
               waited);
  for (int r = 0; r < 2; ++r) {
    lightos_status_t s = lightos_comm_allreduce(b[r], b[r], n, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM,
                                                g.comm[r], NULL);
    LK_CHECK_MSG(s == LIGHTOS_ABORTED, "rank %d after the timeout: %s (%s)", r,
                 lightos_status_string(s), lightos_last_error()->message);
  }
  (void)grp_finish(&g);
  for (int r = 0; r < 2; ++r) lightos_buffer_release(b[r]);
  grp_free(&g);
  /* lightos_comm_abort on an idle group */
  LK_REQUIRE_OK(grp_make(&g, 2, g_gpu, LIGHTOS_DETERMINISM_TOPOLOGY, 30));
  LK_CHECK_STATUS(lightos_comm_abort(g.comm[0]), LIGHTOS_SUCCESS);
  lightos_buffer_t x = buf_with(g.ctx[1], NULL, 64);
  lightos_status_t s = lightos_comm_broadcast(NULL, x, 16, LIGHTOS_DTYPE_F32, 0, g.comm[1], NULL);
  LK_CHECK_MSG(s == LIGHTOS_ABORTED, "rank 1 after rank 0's abort: %s", lightos_status_string(s));
  (void)grp_finish(&g);
  lightos_buffer_release(x);
  grp_free(&g);
}

int main(void) {
  lk_t.program = "test_comm_gpu";
  setenv("LIGHTOS_CPU_DEVICES", "8", 1); /* MAXR */
  setenv("LIGHTOS_CPU_THREADS", "1", 0);
  setenv("LIGHTOS_NCCL_SEGMENT_KB", "64", 1); /* many pipeline segments on small data */
  setenv("LIGHTOS_NCCL_HALVING_SEGMENT_KB", "256", 1); /* and halving segments */
  /* In-process groups exchange by peer copies whatever the size (where the
   * GPUs have peer access); test_gpu_algorithms also runs without. */
  setenv("LIGHTOS_NCCL_P2P_MIN_KB", "0", 1);
  g_require_p2p = getenv("LIGHTOS_TEST_REQUIRE_P2P") && atoi(getenv("LIGHTOS_TEST_REQUIRE_P2P"));
  setenv("NCCL_NVLS_ENABLE", "0", 0);          /* NVLink multicast is not what is tested */
  for (int r = 0; r < MAXR; ++r) {
    char uri[16];
    snprintf(uri, sizeof uri, "cpu:%d", r);
    if (lightos_context_create_from_uri(uri, &g_cpu[r])) {
      fprintf(stderr, "test_comm_gpu: cannot open %s: %s\n", uri, lightos_last_error()->message);
      return 1;
    }
  }
  uint32_t ndev = 0;
  lightos_device_count(&ndev);
  for (uint32_t i = 0; i < ndev && g_ngpu < MAXR; ++i) {
    lightos_device_t dev;
    lightos_device_info_t info;
    if (lightos_device_get(i, &dev) || lightos_device_get_info(dev, &info)) continue;
    if (info.backend != LIGHTOS_BACKEND_CUDA) continue;
    if (lightos_context_create_for_device(dev, 0, &g_gpu[g_ngpu])) {
      fprintf(stderr, "test_comm_gpu: cannot open %s: %s\n", info.uri,
              lightos_last_error()->message);
      continue;
    }
    g_ngpu++;
  }
  if (!g_ngpu) {
    snprintf(g_nogpu_why, sizeof g_nogpu_why, "no CUDA device");
    uint32_t nb = 0;
    lightos_backend_count(&nb);
    for (uint32_t i = 0; i < nb; ++i) {
      lightos_backend_info_t bi;
      if (!lightos_backend_get_info(i, &bi) && bi.backend == LIGHTOS_BACKEND_CUDA)
        snprintf(g_nogpu_why, sizeof g_nogpu_why, "no CUDA device (cuda backend: %s)",
                 bi.available ? "no devices" : bi.reason);
    }
  }
  g_nccl_version = lk_nccl_library_version(g_nccl_why, sizeof g_nccl_why);
  fprintf(stderr, "test_comm_gpu: %u CUDA device(s)%s%s\n", g_ngpu, g_ngpu ? "" : ": ",
          g_ngpu ? "" : g_nogpu_why);

  LK_RUN(test_conversions);
  LK_RUN(test_tree_arith);
  LK_RUN(test_tree2_pack);
  LK_RUN(test_strict_arith);
  LK_RUN(test_plan);
  LK_RUN(test_pipeline_sim);
  LK_RUN(test_halving_sim);
  LK_RUN(test_p2p_sim);
  LK_RUN(test_p2p_sim_abort);
  LK_RUN(test_strict_sim);
  LK_RUN(test_cpu_strict_specials);
  LK_RUN(test_nvrtc_builds_kernels);
  LK_RUN(test_nccl_library);

  GPU_RUN(test_gpu_transport);
  GPU_RUN(test_gpu_allreduce_one);
  GPU_RUN(test_gpu_allreduce_group);
  GPU_RUN(test_gpu_host_path_matches);
  GPU_RUN(test_gpu_composed);
  GPU_RUN(test_gpu_algorithms);
  GPU_RUN(test_gpu_other_collectives);
  GPU_RUN(test_gpu_bitwise_splits);
  GPU_RUN(test_gpu_strict_specials);
  GPU_RUN(test_gpu_unaligned);
  GPU_RUN(test_gpu_stream_order);
  GPU_RUN(test_gpu_bandwidth);
  GPU_RUN(test_gpu_timeout_and_abort);

  for (uint32_t r = 0; r < g_ngpu; ++r) lightos_context_release(g_gpu[r]);
  for (int r = 0; r < MAXR; ++r) lightos_context_release(g_cpu[r]);
  return lk_test_finish();
}
