#define _GNU_SOURCE
/* Collectives in one process: groups over several CPU devices (and the
 * OpenCL device when there is one), every collective, op, type and
 * determinism level against references computed here; the bitwise
 * guarantees (one hash across rank counts and splits); groups, split,
 * abort, timeouts and bad input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <pthread.h>
#include <time.h>

#include "comm/comm_internal.h"
#include "comm/comm_reduce.h"
#include "core/sha256.h"
#include "core/util.h"
#include "lightos/lightos.h"
#include "lk_test.h"

#define MAXR 4
#define FAILF(...) lk_test_fail(__FILE__, __LINE__, __VA_ARGS__)
static lightos_context_t g_ctx[MAXR];      /* cpu:0..3 */
static lightos_context_t g_ocl;            /* an OpenCL device, or NULL */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return g_rng;
}

static const lightos_dtype_t k_types[] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F64, LIGHTOS_DTYPE_F16,
                                          LIGHTOS_DTYPE_BF16, LIGHTOS_DTYPE_I32, LIGHTOS_DTYPE_I64,
                                          LIGHTOS_DTYPE_U8};
static const lightos_reduce_op_t k_ops[] = {LIGHTOS_OP_SUM, LIGHTOS_OP_PROD, LIGHTOS_OP_MIN,
                                            LIGHTOS_OP_MAX, LIGHTOS_OP_AVG};
static const char* op_name(lightos_reduce_op_t op) {
  static const char* n[] = {"?", "sum", "prod", "min", "max", "avg"};
  return n[op];
}

/* ---- Element helpers (references are computed in double / int64) ---------- */

static double get(lightos_dtype_t dt, const void* p, size_t i) {
  switch (dt) {
    case LIGHTOS_DTYPE_F32: return ((const float*)p)[i];
    case LIGHTOS_DTYPE_F64: return ((const double*)p)[i];
    case LIGHTOS_DTYPE_F16: return (double)((const _Float16*)p)[i];
    case LIGHTOS_DTYPE_BF16: {
      uint32_t u = (uint32_t)((const uint16_t*)p)[i] << 16;
      float f;
      memcpy(&f, &u, 4);
      return f;
    }
    case LIGHTOS_DTYPE_I32: return ((const int32_t*)p)[i];
    case LIGHTOS_DTYPE_I64: return (double)((const int64_t*)p)[i];
    default: return ((const uint8_t*)p)[i];
  }
}

/* Test data: floats with a few bits (so sums in double are exact) and
 * moderate range; small integers. */
static void fill(lightos_dtype_t dt, void* p, size_t n, lightos_reduce_op_t op) {
  for (size_t i = 0; i < n; ++i) {
    int64_t r = (int64_t)(rnd() % 2001) - 1000;
    double v = op == LIGHTOS_OP_PROD ? 1.0 + (double)(rnd() % 4) / 4.0 : (double)r / 64.0;
    if (op == LIGHTOS_OP_PROD && (rnd() & 1)) v = -v;
    switch (dt) {
      case LIGHTOS_DTYPE_F32: ((float*)p)[i] = (float)v; break;
      case LIGHTOS_DTYPE_F64: ((double*)p)[i] = v; break;
      case LIGHTOS_DTYPE_F16: ((_Float16*)p)[i] = (_Float16)v; break;
      case LIGHTOS_DTYPE_BF16: ((uint16_t*)p)[i] = lk_f32_to_bf16((float)v); break;
      case LIGHTOS_DTYPE_I32: ((int32_t*)p)[i] = (int32_t)(op == LIGHTOS_OP_PROD ? r % 7 : r); break;
      case LIGHTOS_DTYPE_I64: ((int64_t*)p)[i] = op == LIGHTOS_OP_PROD ? r % 7 : r * 1000003; break;
      default: ((uint8_t*)p)[i] = (uint8_t)rnd(); break;
    }
  }
}

/* The reference of one element over nr contributions. */
static double ref_elem(lightos_dtype_t dt, lightos_reduce_op_t op, void* const* in, uint32_t nr,
                       size_t i) {
  if (dt == LIGHTOS_DTYPE_I32 || dt == LIGHTOS_DTYPE_I64 || dt == LIGHTOS_DTYPE_U8) {
    int64_t acc = (int64_t)get(dt, in[0], i);
    uint64_t uacc = (uint64_t)acc;
    for (uint32_t r = 1; r < nr; ++r) {
      int64_t v = (int64_t)get(dt, in[r], i);
      switch (op) {
        case LIGHTOS_OP_SUM: case LIGHTOS_OP_AVG: uacc += (uint64_t)v; break;
        case LIGHTOS_OP_PROD: uacc *= (uint64_t)v; break;
        case LIGHTOS_OP_MIN: if (v < (int64_t)uacc) uacc = (uint64_t)v; break;
        case LIGHTOS_OP_MAX: if (v > (int64_t)uacc) uacc = (uint64_t)v; break;
      }
    }
    int64_t res;
    if (dt == LIGHTOS_DTYPE_I32) res = (int32_t)(uint32_t)uacc;
    else if (dt == LIGHTOS_DTYPE_U8) res = (uint8_t)uacc;
    else res = (int64_t)uacc;
    if (op == LIGHTOS_OP_AVG) res /= (int64_t)nr;
    return (double)res;
  }
  double acc = get(dt, in[0], i);
  for (uint32_t r = 1; r < nr; ++r) {
    double v = get(dt, in[r], i);
    switch (op) {
      case LIGHTOS_OP_SUM: case LIGHTOS_OP_AVG: acc += v; break;
      case LIGHTOS_OP_PROD: acc *= v; break;
      case LIGHTOS_OP_MIN: if (v < acc) acc = v; break;
      case LIGHTOS_OP_MAX: if (v > acc) acc = v; break;
    }
  }
  if (op == LIGHTOS_OP_AVG) acc /= nr;
  return acc;
}

/* Tolerance: exact for integers, min/max and (thanks to the data) sums of
 * f32/f64; the type's rounding for the 16-bit types and avg. */
static double tol(lightos_dtype_t dt, lightos_reduce_op_t op, double ref) {
  double a = ref < 0 ? -ref : ref;
  if (op == LIGHTOS_OP_MIN || op == LIGHTOS_OP_MAX) return 0;
  switch (dt) {
    case LIGHTOS_DTYPE_F16: return a * 0x1p-10 + 1e-3;
    case LIGHTOS_DTYPE_BF16: return a * 0x1p-7 + 1e-2;
    case LIGHTOS_DTYPE_F32: return a * 0x1p-22;
    case LIGHTOS_DTYPE_F64: return a * 0x1p-50;
    default: return 0;
  }
}

/* ---- Group helpers -------------------------------------------------------- */

typedef struct group {
  uint32_t n;
  lightos_comm_t comm[MAXR];
  lightos_context_t ctx[MAXR];
} group_t;

static lightos_status_t group_make(group_t* g, uint32_t n, lightos_determinism_t level,
                                   const lightos_context_t* ctxs) {
  memset(g, 0, sizeof *g);
  g->n = n;
  for (uint32_t r = 0; r < n; ++r) g->ctx[r] = ctxs ? ctxs[r] : g_ctx[r];
  lightos_comm_config_t cfg;
  lightos_comm_config_default(&cfg);
  cfg.level = level;
  cfg.timeout_s = 60;
  return lightos_comm_init_all_config(n, g->ctx, &cfg, g->comm);
}

static void group_free(group_t* g) {
  for (uint32_t r = 0; r < g->n; ++r)
    if (g->comm[r]) lightos_comm_destroy(g->comm[r]);
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

static lightos_status_t finish_all(group_t* g) {
  lightos_status_t first = LIGHTOS_SUCCESS;
  for (uint32_t r = 0; r < g->n; ++r) {
    lightos_queue_t q;
    lightos_context_default_queue(g->ctx[r], &q);
    lightos_status_t s = lightos_queue_finish(q);
    if (s && !first) first = s;
  }
  return first;
}

/* ---- Allreduce over every type, op, level and rank count ------------------ */

static void check_allreduce(lightos_determinism_t level, uint32_t nr, bool inplace) {
  const size_t n = 1000; /* not a multiple of the chunking */
  group_t g;
  LK_REQUIRE_OK(group_make(&g, nr, level, NULL));
  for (size_t ti = 0; ti < sizeof k_types / sizeof *k_types; ++ti) {
    lightos_dtype_t dt = k_types[ti];
    size_t es = lightos_dtype_size(dt);
    for (size_t oi = 0; oi < sizeof k_ops / sizeof *k_ops; ++oi) {
      lightos_reduce_op_t op = k_ops[oi];
      bool float_prod_strict = level == LIGHTOS_DETERMINISM_STRICT && op == LIGHTOS_OP_PROD &&
                               lk_red_dtype_is_float(dt);
      void* host[MAXR];
      lightos_buffer_t sb[MAXR] = {0}, rb[MAXR] = {0};
      for (uint32_t r = 0; r < nr; ++r) {
        host[r] = malloc(n * es);
        fill(dt, host[r], n, op);
        sb[r] = buf_with(g.ctx[r], host[r], n * es);
        rb[r] = inplace ? sb[r] : buf_with(g.ctx[r], NULL, n * es);
      }
      bool ok = true;
      for (uint32_t r = 0; r < nr; ++r) {
        lightos_status_t s = lightos_comm_allreduce(sb[r], rb[r], n, dt, op, g.comm[r], NULL);
        if (float_prod_strict) {
          LK_CHECK_MSG(s == LIGHTOS_UNSUPPORTED && strstr(lightos_last_error()->message, "prod"),
                       "prod of %s at STRICT: expected UNSUPPORTED naming prod, got %s",
                       lightos_dtype_name(dt), lightos_status_string(s));
          ok = false;
        } else if (s) {
          FAILF("allreduce %s %s: %s", lightos_dtype_name(dt), op_name(op),
                       lightos_last_error()->message);
          ok = false;
        }
      }
      if (ok) {
        lightos_status_t s = finish_all(&g);
        LK_CHECK_MSG(!s, "finish: %s", lightos_last_error()->message);
        void* out = malloc(n * es);
        void* first = malloc(n * es);
        for (uint32_t r = 0; r < nr && !s; ++r) {
          lightos_buffer_read(rb[r], 0, n * es, out);
          if (r == 0) memcpy(first, out, n * es);
          else
            LK_CHECK_MSG(!memcmp(first, out, n * es), "%s %s %s nr=%u: rank %u's bits differ",
                         lightos_determinism_name(level), lightos_dtype_name(dt), op_name(op), nr,
                         r);
          int bad = 0;
          for (size_t i = 0; i < n && bad < 3; ++i) {
            double want = ref_elem(dt, op, host, nr, i), got = get(dt, out, i);
            double d = got - want;
            if (d < 0) d = -d;
            double mag = 0;
            for (uint32_t k = 0; k < nr; ++k) mag += fabs(get(dt, host[k], i));
            if (op == LIGHTOS_OP_AVG) mag /= nr;
            if (op == LIGHTOS_OP_PROD) mag = fabs(want);
            if (d > tol(dt, op, mag) * nr) {
              FAILF("%s %s %s nr=%u%s rank %u [%zu]: got %.9g want %.9g",
                           lightos_determinism_name(level), lightos_dtype_name(dt), op_name(op),
                           nr, inplace ? " in place" : "", r, i, got, want);
              bad++;
            }
          }
        }
        free(out);
        free(first);
      }
      for (uint32_t r = 0; r < nr; ++r) {
        free(host[r]);
        lightos_buffer_release(sb[r]);
        if (!inplace) lightos_buffer_release(rb[r]);
      }
    }
  }
  group_free(&g);
}

static void test_allreduce_all_levels(void) {
  for (lightos_determinism_t l = LIGHTOS_DETERMINISM_NONE; l <= LIGHTOS_DETERMINISM_STRICT; ++l)
    for (uint32_t nr = 1; nr <= MAXR; ++nr) check_allreduce(l, nr, (nr + l) % 2 == 0);
}

/* ---- Composed groups ---------------------------------------------------------- */

/* Runs one allreduce over the group (in place or not, optionally in a
 * group call) of rank r's data in[r]; rank 0's result into out. */
static int composed_run(group_t* g, void* const* in, size_t count, lightos_dtype_t dt,
                        lightos_reduce_op_t op, bool inplace, bool grouped, void* out) {
  const size_t bytes = count * lightos_dtype_size(dt);
  lightos_buffer_t a[MAXR], b[MAXR];
  int rc = 0;
  for (uint32_t r = 0; r < g->n; ++r) {
    a[r] = buf_with(g->ctx[r], in[r], bytes);
    b[r] = inplace ? a[r] : buf_with(g->ctx[r], NULL, bytes);
  }
  if (grouped) lightos_comm_group_start();
  for (uint32_t r = 0; r < g->n; ++r)
    if (lightos_comm_allreduce(a[r], b[r], count, dt, op, g->comm[r], NULL)) {
      FAILF("rank %u: allreduce: %s", r, lightos_last_error()->message);
      rc = -1;
    }
  if (grouped && lightos_comm_group_end()) rc = -1;
  if (!rc && finish_all(g)) {
    FAILF("finish: %s", lightos_last_error()->message);
    rc = -1;
  }
  char* other = malloc(bytes);
  for (uint32_t r = 0; r < g->n && !rc; ++r) {
    lightos_buffer_read(b[r], 0, bytes, r ? other : out);
    if (r && memcmp(other, out, bytes)) {
      FAILF("rank %u's bits differ from rank 0's", r);
      rc = -1;
    }
  }
  free(other);
  for (uint32_t r = 0; r < g->n; ++r) {
    lightos_buffer_release(a[r]);
    if (!inplace) lightos_buffer_release(b[r]);
  }
  return rc;
}

/* Groups of CPU and OpenCL devices composed by backend
 * (LIGHTOS_COMM_HIERARCHY=1: blocks of every backend, as CUDA blocks with
 * NCCL are by default): the same bits as the flat group for every op and
 * level it takes, in place, in group calls; f16 and STRICT stay flat. */
static void test_composed_groups(void) {
  if (!g_ocl) {
    lk_test_skip("no OpenCL device for a second backend");
    return;
  }
  lightos_context_t ocl2 = NULL;
  LK_REQUIRE_OK(lightos_context_create_from_uri("opencl:0", &ocl2));
  /* Layouts: blocks {0,1} and {2,3}; block {0,1} + rank 2 alone; rank 0
   * alone, rank 1 alone (not aligned), block {2,3}; block {0,1}, ranks 2
   * and 3 alone (the upper level's tree over leaves, (A + (x2 + x3)), is
   * not the tree over its ranks, ((A + x2) + x3)). */
  struct {
    uint32_t n, m;
    lightos_context_t ctx[MAXR];
  } lay[] = {{4, 2, {g_ctx[0], g_ctx[1], g_ocl, ocl2}},
             {3, 2, {g_ctx[0], g_ctx[1], g_ocl, NULL}},
             {4, 3, {g_ocl, g_ctx[0], g_ctx[1], g_ctx[2]}},
             {4, 3, {g_ctx[0], g_ctx[1], g_ocl, g_ctx[2]}}};
  const size_t nlay = sizeof lay / sizeof lay[0];
  const size_t count = 3001;
  static const struct {
    lightos_dtype_t dt;
    lightos_reduce_op_t op;
  } cases[] = {{LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM}, {LIGHTOS_DTYPE_F64, LIGHTOS_OP_SUM},
               {LIGHTOS_DTYPE_F32, LIGHTOS_OP_AVG}, {LIGHTOS_DTYPE_F32, LIGHTOS_OP_PROD},
               {LIGHTOS_DTYPE_F32, LIGHTOS_OP_MAX}, {LIGHTOS_DTYPE_I32, LIGHTOS_OP_SUM},
               {LIGHTOS_DTYPE_F16, LIGHTOS_OP_SUM}};
  void* in[MAXR];
  for (uint32_t r = 0; r < MAXR; ++r) in[r] = malloc(count * 8);
  char* want = malloc(count * 8);
  char* got = malloc(count * 8);
  for (size_t l = 0; l < nlay; ++l) {
    for (lightos_determinism_t lv = LIGHTOS_DETERMINISM_RUN; lv <= LIGHTOS_DETERMINISM_STRICT; ++lv) {
      group_t flat, comp;
      setenv("LIGHTOS_COMM_HIERARCHY", "0", 1);
      LK_REQUIRE_OK(group_make(&flat, lay[l].n, lv, lay[l].ctx));
      setenv("LIGHTOS_COMM_HIERARCHY", "1", 1);
      lightos_status_t made = group_make(&comp, lay[l].n, lv, lay[l].ctx);
      unsetenv("LIGHTOS_COMM_HIERARCHY");
      LK_REQUIRE_OK(made);
      /* Composed (not at STRICT): the upper level has m ranks. */
      uint32_t up = 0;
      for (uint32_t r = 0; r < lay[l].n; ++r) {
        lk_object_t* o = NULL;
        lk_handle_resolve(comp.comm[r], LK_OBJ_COMM, "comm", &o);
        const lk_comm_t* c = (const lk_comm_t*)o;
        if (c->hier_outer) up = c->hier_outer->size;
      }
      LK_CHECK_MSG(up == (lv == LIGHTOS_DETERMINISM_STRICT ? 0 : lay[l].m),
                   "layout %zu, %s: upper level of %u ranks", l, lightos_determinism_name(lv), up);
      for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
        const lightos_dtype_t dt = cases[k].dt;
        const lightos_reduce_op_t op = cases[k].op;
        if (lv == LIGHTOS_DETERMINISM_STRICT && op == LIGHTOS_OP_PROD) continue;
        for (uint32_t r = 0; r < lay[l].n; ++r) {
          for (size_t i = 0; i < count; ++i) {
            float v = ldexpf((float)((int64_t)(rnd() % 2000001) - 1000000) / 1e6f,
                             op == LIGHTOS_OP_PROD ? 0 : (int)(rnd() % 31) - 15);
            if (dt == LIGHTOS_DTYPE_F32) ((float*)in[r])[i] = v;
            else if (dt == LIGHTOS_DTYPE_F64) ((double*)in[r])[i] = (double)v * (1.0 + 1e-9 * (double)i);
            else if (dt == LIGHTOS_DTYPE_I32) ((int32_t*)in[r])[i] = (int32_t)rnd();
            else ((uint16_t*)in[r])[i] = (uint16_t)(0x3000 + rnd() % 0x1000); /* f16 0.125..1 */
          }
        }
        const bool inplace = (k + l) % 2 == 1, grouped = k % 3 == 2;
        const size_t bytes = count * lightos_dtype_size(dt);
        /* RUN promises run-to-run bits, not the flat ring's: floating sums
         * and products against a second composed run. */
        const bool exact = dt == LIGHTOS_DTYPE_I32 || op == LIGHTOS_OP_MAX;
        group_t* ref = lv == LIGHTOS_DETERMINISM_RUN && !exact ? &comp : &flat;
        if (composed_run(ref, in, count, dt, op, inplace, grouped, want) ||
            composed_run(&comp, in, count, dt, op, inplace, !grouped, got))
          continue;
        LK_CHECK_MSG(!memcmp(want, got, bytes), "layout %zu, %s, %s %s: composed != flat", l,
                     lightos_determinism_name(lv), lightos_dtype_name(dt),
                     op == LIGHTOS_OP_SUM ? "sum" : op == LIGHTOS_OP_AVG ? "avg" : op == LIGHTOS_OP_PROD ? "prod" : "max");
      }
      /* Broadcast from every root (in place on the root for odd roots):
       * every rank gets the root's bytes. */
      for (uint32_t root = 0; lv != LIGHTOS_DETERMINISM_STRICT && root < lay[l].n; ++root) {
        const size_t bytes = count * 4;
        for (size_t i = 0; i < count; ++i) ((uint32_t*)in[root])[i] = (uint32_t)rnd();
        lightos_buffer_t sb = buf_with(comp.ctx[root], in[root], bytes), rb[MAXR];
        for (uint32_t r = 0; r < lay[l].n; ++r)
          rb[r] = r == root && root % 2 ? sb : buf_with(comp.ctx[r], NULL, bytes);
        for (uint32_t r = 0; r < lay[l].n; ++r)
          LK_CHECK_STATUS(lightos_comm_broadcast(r == root ? sb : NULL, rb[r], count,
                                                 LIGHTOS_DTYPE_F32, root, comp.comm[r], NULL),
                          LIGHTOS_SUCCESS);
        LK_CHECK_STATUS(finish_all(&comp), LIGHTOS_SUCCESS);
        for (uint32_t r = 0; r < lay[l].n; ++r) {
          lightos_buffer_read(rb[r], 0, bytes, got);
          LK_CHECK_MSG(!memcmp(got, in[root], bytes), "layout %zu: broadcast from %u: rank %u", l,
                       root, r);
          if (rb[r] != sb) lightos_buffer_release(rb[r]);
        }
        lightos_buffer_release(sb);
      }
      group_free(&flat);
      group_free(&comp);
    }
  }
  /* A rank aborted: every other rank's next allreduce fails (at the call
   * or at the queue), none hangs or succeeds. */
  for (uint32_t victim = 0; victim < 4; ++victim) {
    group_t comp;
    setenv("LIGHTOS_COMM_HIERARCHY", "1", 1);
    lightos_status_t made = group_make(&comp, 4, LIGHTOS_DETERMINISM_TOPOLOGY, lay[3].ctx);
    unsetenv("LIGHTOS_COMM_HIERARCHY");
    LK_REQUIRE_OK(made);
    LK_CHECK_STATUS(lightos_comm_abort(comp.comm[victim]), LIGHTOS_SUCCESS);
    lightos_buffer_t b[MAXR];
    for (uint32_t r = 0; r < 4; ++r) b[r] = buf_with(comp.ctx[r], in[0], count * 4);
    lightos_status_t st[MAXR] = {LIGHTOS_SUCCESS};
    const uint64_t t0 = lk_now_ns();
    for (uint32_t r = 0; r < 4; ++r)
      if (r != victim)
        st[r] = lightos_comm_allreduce(b[r], b[r], count, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM,
                                       comp.comm[r], NULL);
    for (uint32_t r = 0; r < 4; ++r) {
      if (r == victim) continue;
      lightos_queue_t q;
      lightos_context_default_queue(comp.ctx[r], &q);
      lightos_status_t f = lightos_queue_finish(q);
      LK_CHECK_MSG(st[r] != LIGHTOS_SUCCESS || f != LIGHTOS_SUCCESS,
                   "rank %u succeeded after rank %u was aborted", r, victim);
    }
    LK_CHECK_MSG(lk_now_ns() - t0 < 10000000000ull, "victim %u: the others took %.1f s to fail",
                 victim, (double)(lk_now_ns() - t0) / 1e9);
    for (uint32_t r = 0; r < 4; ++r) lightos_buffer_release(b[r]);
    group_free(&comp);
  }
  for (uint32_t r = 0; r < MAXR; ++r) free(in[r]);
  free(want);
  free(got);
  lightos_context_release(ocl2);
}

/* ---- Bitwise: one hash across rank counts and splits ------------------- */

#define NCONTRIB 8
#define NELEM 4099

/* Data whose sum depends on the order: wide exponents, mixed signs. */
static void sensitive(float* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    float m = (float)((int64_t)(rnd() % 2000001) - 1000000) / 1e6f;
    int e = (int)(rnd() % 41) - 20;
    p[i] = ldexpf(m, e);
  }
}

/* Runs allreduce_multi of contributions c[0..NCONTRIB) split over ranks as
 * `split` (contributions per rank) and returns rank 0's result's hash;
 * also checks every rank holds the same bits. */
static int run_split(lightos_determinism_t level, const uint32_t* split, uint32_t nr,
                     float* const* c, const lightos_context_t* ctxs, uint8_t digest[32]) {
  group_t g;
  if (group_make(&g, nr, level, ctxs)) {
    FAILF("group: %s", lightos_last_error()->message);
    return -1;
  }
  lightos_buffer_t bufs[NCONTRIB], out[MAXR];
  uint32_t k = 0;
  int rc = 0;
  for (uint32_t r = 0; r < nr; ++r) {
    for (uint32_t j = 0; j < split[r]; ++j, ++k) bufs[k] = buf_with(g.ctx[r], c[k], NELEM * 4);
    out[r] = buf_with(g.ctx[r], NULL, NELEM * 4);
  }
  k = 0;
  for (uint32_t r = 0; r < nr; ++r) {
    if (lightos_comm_allreduce_multi(&bufs[k], split[r], out[r], NELEM, LIGHTOS_DTYPE_F32,
                                     LIGHTOS_OP_SUM, g.comm[r], NULL)) {
      FAILF("allreduce_multi: %s", lightos_last_error()->message);
      rc = -1;
    }
    k += split[r];
  }
  if (!rc && finish_all(&g)) {
    FAILF("finish: %s", lightos_last_error()->message);
    rc = -1;
  }
  float* res = malloc(NELEM * 4);
  for (uint32_t r = 0; r < nr && !rc; ++r) {
    uint8_t d[32];
    lightos_buffer_read(out[r], 0, NELEM * 4, res);
    lk_sha256(res, NELEM * 4, r ? d : digest);
    if (r && memcmp(d, digest, 32)) {
      FAILF("rank %u's bits differ from rank 0's", r);
      rc = -1;
    }
  }
  free(res);
  for (uint32_t i = 0; i < NCONTRIB; ++i) lightos_buffer_release(bufs[i]);
  for (uint32_t r = 0; r < nr; ++r) lightos_buffer_release(out[r]);
  group_free(&g);
  return rc;
}

static void test_bitwise_splits(void) {
  float* c[NCONTRIB];
  for (int i = 0; i < NCONTRIB; ++i) {
    c[i] = malloc(NELEM * 4);
    sensitive(c[i], NELEM);
  }
  /* The data is order sensitive: two summation orders disagree somewhere. */
  int differ = 0;
  for (size_t i = 0; i < NELEM; ++i) {
    float seq = 0, rev = 0;
    for (int j = 0; j < NCONTRIB; ++j) seq += c[j][i];
    for (int j = NCONTRIB - 1; j >= 0; --j) rev += c[j][i];
    differ += seq != rev;
  }
  LK_CHECK_MSG(differ > 100, "test data not order sensitive (%d elements differ)", differ);

  /* Aligned power-of-two splits: TOPOLOGY and STRICT.  From the fourth on
   * the ranks hold different counts, each an aligned block of the 8 leaves. */
  static const uint32_t aligned[][MAXR + 1] = {{1, 8},          {2, 4, 4},    {4, 2, 2, 2, 2},
                                               {4, 4, 2, 1, 1}, {4, 1, 1, 2, 4}, {3, 2, 2, 4},
                                               {4, 2, 1, 1, 4}};
  const size_t naligned = sizeof aligned / sizeof aligned[0];
  /* Any split: STRICT. */
  static const uint32_t any[][MAXR + 1] = {{3, 5, 2, 1}, {2, 1, 7}, {4, 3, 1, 3, 1}, {3, 2, 3, 3}};
  for (lightos_determinism_t l = LIGHTOS_DETERMINISM_TOPOLOGY; l <= LIGHTOS_DETERMINISM_STRICT; ++l) {
    uint8_t ref[32], d[32];
    LK_REQUIRE(run_split(l, &aligned[0][1], aligned[0][0], c, NULL, ref) == 0);
    for (size_t t = 1; t < naligned; ++t) {
      LK_REQUIRE(run_split(l, &aligned[t][1], aligned[t][0], c, NULL, d) == 0);
      LK_CHECK_MSG(!memcmp(ref, d, 32), "%s: split %zu (%u ranks, %u on rank 0) gives other bits than 1 x 8",
                   lightos_determinism_name(l), t, aligned[t][0], aligned[t][1]);
    }
    if (l == LIGHTOS_DETERMINISM_STRICT)
      for (size_t t = 0; t < 4; ++t) {
        LK_REQUIRE(run_split(l, &any[t][1], any[t][0], c, NULL, d) == 0);
        LK_CHECK_MSG(!memcmp(ref, d, 32), "STRICT: split %zu (%u ranks) gives other bits", t,
                     any[t][0]);
      }
    /* Mixed backends: the OpenCL device as rank 1. */
    if (g_ocl) {
      lightos_context_t mixed[2] = {g_ctx[0], g_ocl};
      LK_REQUIRE(run_split(l, &aligned[1][1], 2, c, mixed, d) == 0);
      LK_CHECK_MSG(!memcmp(ref, d, 32), "%s: cpu + opencl gives other bits than cpu alone",
                   lightos_determinism_name(l));
    }
  }
  /* STRICT is the correctly rounded exact sum where the data allows
   * checking: values within 2^24 of each other sum exactly in double. */
  {
    float* e[4];
    for (int i = 0; i < 4; ++i) {
      e[i] = malloc(NELEM * 4);
      for (size_t j = 0; j < NELEM; ++j)
        e[i][j] = ldexpf((float)((int64_t)(rnd() % 16777216) - 8388608), -(int)(rnd() % 8) - 20);
    }
    uint32_t split[4] = {1, 1, 1, 1};
    group_t g;
    LK_REQUIRE_OK(group_make(&g, 4, LIGHTOS_DETERMINISM_STRICT, NULL));
    lightos_buffer_t b[4];
    for (int r = 0; r < 4; ++r) {
      b[r] = buf_with(g.ctx[r], e[r], NELEM * 4);
      LK_CHECK_STATUS(lightos_comm_allreduce(b[r], b[r], NELEM, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM,
                                             g.comm[r], NULL),
                      LIGHTOS_SUCCESS);
    }
    LK_CHECK_STATUS(finish_all(&g), LIGHTOS_SUCCESS);
    float* res = malloc(NELEM * 4);
    lightos_buffer_read(b[2], 0, NELEM * 4, res);
    int bad = 0;
    for (size_t j = 0; j < NELEM; ++j) {
      double exact = (double)e[0][j] + e[1][j] + e[2][j] + e[3][j];
      if (res[j] != (float)exact && bad++ < 3)
        FAILF("STRICT [%zu]: %.9g, the correctly rounded sum is %.9g", j, res[j],
                     (float)exact);
    }
    (void)split;
    free(res);
    for (int r = 0; r < 4; ++r) {
      lightos_buffer_release(b[r]);
      free(e[r]);
    }
    group_free(&g);
  }
  for (int i = 0; i < NCONTRIB; ++i) free(c[i]);
}

/* ---- Large broadcasts: scatter + all-gather -------------------------------- */

/* From 256 KiB on 3+ ranks the host path scatters and all-gathers: every
 * rank gets the root's bytes, for odd sizes, any root, in place at the
 * root and apart. */
static void test_large_broadcast(void) {
  const size_t sizes[] = {((size_t)1 << 20) + 13, (size_t)256 << 10};
  for (uint32_t nr = 2; nr <= MAXR; ++nr)
    for (size_t si = 0; si < 2; ++si)
      for (uint32_t root = 0; root < nr; root += 2) {
        const size_t bytes = sizes[si];
        group_t g;
        LK_REQUIRE_OK(group_make(&g, nr, LIGHTOS_DETERMINISM_TOPOLOGY, NULL));
        uint8_t* src = malloc(bytes);
        uint8_t* out = malloc(bytes);
        for (size_t i = 0; i < bytes; ++i) src[i] = (uint8_t)rnd();
        lightos_buffer_t sb = buf_with(g.ctx[root], src, bytes), rb[MAXR];
        const bool inplace = si == 1;
        for (uint32_t r = 0; r < nr; ++r) {
          rb[r] = r == root && inplace ? sb : buf_with(g.ctx[r], NULL, bytes);
          LK_CHECK_STATUS(lightos_comm_broadcast(r == root ? sb : NULL, rb[r], bytes,
                                                 LIGHTOS_DTYPE_U8, root, g.comm[r], NULL),
                          LIGHTOS_SUCCESS);
        }
        LK_CHECK_STATUS(finish_all(&g), LIGHTOS_SUCCESS);
        for (uint32_t r = 0; r < nr; ++r) {
          memset(out, 0, bytes);
          lightos_buffer_read(rb[r], 0, bytes, out);
          LK_CHECK_MSG(!memcmp(out, src, bytes), "broadcast of %zu bytes from %u over %u ranks: "
                       "rank %u differs", bytes, root, nr, r);
          if (rb[r] != sb) lightos_buffer_release(rb[r]);
        }
        lightos_buffer_release(sb);
        free(src);
        free(out);
        group_free(&g);
      }
}

/* ---- TOPOLOGY by recursive halving = by all-to-all ----------------------- */

/* 4 ranks (recursive halving for types whose accumulator is the element:
 * f32, f64, integers; multi-contribution bf16; LIGHTOS_COMM_HALVING=1)
 * against the all-to-all scheme (the default): the same bits, with order-sensitive
 * values, NaN/Inf/-0 on several ranks, an odd count, in place. */
static int run_halving_case(lightos_dtype_t dt, lightos_reduce_op_t op, bool multi,
                            void* const* in, size_t count, void* const* out) {
  group_t g;
  if (group_make(&g, MAXR, LIGHTOS_DETERMINISM_TOPOLOGY, NULL)) {
    FAILF("group: %s", lightos_last_error()->message);
    return -1;
  }
  const size_t es = lightos_dtype_size(dt);
  lightos_buffer_t b[MAXR][2] = {{0}};
  int rc = 0;
  for (uint32_t r = 0; r < MAXR && !rc; ++r) {
    b[r][0] = buf_with(g.ctx[r], in[r], count * es);
    b[r][1] = buf_with(g.ctx[r], in[(r + 1) % MAXR], count * es);
    lightos_status_t s =
        multi ? lightos_comm_allreduce_multi(b[r], 2, b[r][0], count, dt, op, g.comm[r], NULL)
              : lightos_comm_allreduce(b[r][0], b[r][0], count, dt, op, g.comm[r], NULL);
    if (s) {
      FAILF("allreduce %s %s: %s", lightos_dtype_name(dt), op_name(op),
            lightos_last_error()->message);
      rc = -1;
    }
  }
  if (!rc && finish_all(&g)) {
    FAILF("finish: %s", lightos_last_error()->message);
    rc = -1;
  }
  for (uint32_t r = 0; r < MAXR; ++r) {
    if (!rc) lightos_buffer_read(b[r][0], 0, count * es, out[r]);
    for (int k = 0; k < 2; ++k)
      if (b[r][k]) lightos_buffer_release(b[r][k]);
  }
  group_free(&g);
  return rc;
}

static void test_halving(void) {
  static const lightos_dtype_t types[] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F64, LIGHTOS_DTYPE_I32,
                                          LIGHTOS_DTYPE_BF16};
  static const lightos_reduce_op_t ops[] = {LIGHTOS_OP_SUM, LIGHTOS_OP_MIN, LIGHTOS_OP_AVG,
                                            LIGHTOS_OP_PROD};
  const size_t count = 40961;
  for (size_t ti = 0; ti < sizeof types / sizeof *types; ++ti)
    for (size_t oi = 0; oi < sizeof ops / sizeof *ops; ++oi) {
      const lightos_dtype_t dt = types[ti];
      const lightos_reduce_op_t op = ops[oi];
      const bool multi = dt == LIGHTOS_DTYPE_BF16; /* bf16 partials travel as f32 */
      const size_t es = lightos_dtype_size(dt);
      void *in[MAXR], *h[MAXR], *t[MAXR];
      for (uint32_t r = 0; r < MAXR; ++r) {
        in[r] = malloc(count * es);
        h[r] = malloc(count * es);
        t[r] = malloc(count * es);
        for (size_t i = 0; i < count; ++i) {
          float m = (float)((int64_t)(rnd() % 2000001) - 1000000) / 1e6f;
          float v = ldexpf(m, (int)(rnd() % 41) - 20);
          uint64_t k = rnd() % 200;
          if (k == 0) v = NAN;
          else if (k == 1) v = r % 2 ? INFINITY : -INFINITY;
          else if (k == 2) v = -0.0f;
          if (op == LIGHTOS_OP_PROD) v = k < 3 ? v : 1.0f + m / 4;
          switch (dt) {
            case LIGHTOS_DTYPE_F32: ((float*)in[r])[i] = v; break;
            case LIGHTOS_DTYPE_F64: ((double*)in[r])[i] = (double)v * (1.0 + 0x1p-30 * (double)k); break;
            case LIGHTOS_DTYPE_I32: ((int32_t*)in[r])[i] = (int32_t)(uint32_t)rnd(); break;
            default: ((uint16_t*)in[r])[i] = lk_f32_to_bf16(v); break;
          }
        }
      }
      setenv("LIGHTOS_COMM_HALVING", "1", 1);
      int rc = run_halving_case(dt, op, multi, in, count, h);
      setenv("LIGHTOS_COMM_HALVING", "0", 1);
      rc |= run_halving_case(dt, op, multi, in, count, t);
      unsetenv("LIGHTOS_COMM_HALVING");
      for (uint32_t r = 0; r < MAXR && !rc; ++r)
        LK_CHECK_MSG(!memcmp(h[r], t[r], count * es) && !memcmp(h[r], h[0], count * es),
                     "TOPOLOGY %s %s%s: rank %u, recursive halving and all-to-all differ",
                     lightos_dtype_name(dt), op_name(op), multi ? " (2 contributions)" : "", r);
      for (uint32_t r = 0; r < MAXR; ++r) {
        free(in[r]);
        free(h[r]);
        free(t[r]);
      }
    }
}

/* STRICT's final rounding (the f32 fast path and the generic one) is the
 * correctly rounded value of sum * 2^(E - 48): checked against long double
 * (64-bit mantissa: every int64 sum and its scaling are exact there, and
 * the cast to float/double rounds once). */
static void test_strict_rounding(void) {
  enum { N = 4096 };
  int64_t* fixed = malloc(N * 8);
  int16_t exps[N / LK_STRICT_BLOCK];
  float* out = malloc(N * 4);
  int bad = 0;
  for (int round = 0; round < 8 && bad < 5; ++round) {
    for (int b = 0; b < N / LK_STRICT_BLOCK; ++b) {
      /* Block exponents from deep subnormal results to overflow. */
      exps[b] = (int16_t)((int)(rnd() % 330) - 190);
    }
    for (int i = 0; i < N; ++i) {
      int bits = 1 + (int)(rnd() % 63);
      uint64_t m = rnd() & ((bits == 64 ? 0 : (1ull << bits)) - 1);
      if ((rnd() & 7) == 0) m |= (rnd() & 1) ? 0x8000000000ull : 0x1000001ull; /* near ties */
      int64_t v = (int64_t)(m >> 1);
      fixed[i] = (rnd() & 1) ? -v : v;
    }
    lk_strict_finish(LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, fixed, N, exps, NULL, 1, out);
    for (int i = 0; i < N && bad < 5; ++i) {
      long double x = ldexpl((long double)fixed[i], exps[i / LK_STRICT_BLOCK] - 48);
      float want = (float)x; /* an exact zero is +0; a negative underflow -0, as in IEEE */
      uint32_t wb, gb;
      memcpy(&wb, &want, 4);
      memcpy(&gb, &out[i], 4);
      if (wb != gb) {
        FAILF("STRICT f32 rounding of %lld * 2^%d: %08x, correctly rounded %08x",
              (long long)fixed[i], exps[i / LK_STRICT_BLOCK] - 48, gb, wb);
        bad++;
      }
    }
    /* avg (the 128-bit generic path): sum / 3 against long double. */
    lk_strict_finish(LIGHTOS_DTYPE_F32, LIGHTOS_OP_AVG, fixed, N, exps, NULL, 3, out);
    for (int i = 0; i < N && bad < 5; ++i) {
      long double q = (long double)fixed[i] / 3.0L; /* not exact: compare within one ulp */
      float want = (float)ldexpl(q, exps[i / LK_STRICT_BLOCK] - 48);
      float d = fabsf(out[i] - want);
      float ulp = fabsf(nextafterf(want, INFINITY) - want);
      if (!(d <= ulp) && !(isinf(want) && out[i] == want) && !(want == 0 && out[i] == 0)) {
        FAILF("STRICT f32 avg of %lld * 2^%d / 3: %.9g vs %.9g", (long long)fixed[i],
              exps[i / LK_STRICT_BLOCK] - 48, out[i], want);
        bad++;
      }
    }
  }
  free(fixed);
  free(out);
}

/* Non-finite values at STRICT follow IEEE addition. */
static void test_strict_specials(void) {
  group_t g;
  LK_REQUIRE_OK(group_make(&g, 2, LIGHTOS_DETERMINISM_STRICT, NULL));
  /* Element 300 sits in another exponent block than 0..5 (a huge value
   * would make 1 + 2 vanish below the block's 48-bit quantum). */
  enum { N = 512 };
  float* a = calloc(N, 4);
  float* b = calloc(N, 4);
  float sa[6] = {INFINITY, INFINITY, NAN, 1.0f, -0.0f, 0.0f};
  float sb[6] = {1.0f, -INFINITY, 2.0f, 2.0f, -0.0f, 0.0f};
  memcpy(a, sa, sizeof sa);
  memcpy(b, sb, sizeof sb);
  a[300] = b[300] = 3e38f;
  lightos_buffer_t ba = buf_with(g.ctx[0], a, N * 4), bb = buf_with(g.ctx[1], b, N * 4);
  LK_CHECK_STATUS(lightos_comm_allreduce(ba, ba, N, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g.comm[0], NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_comm_allreduce(bb, bb, N, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g.comm[1], NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(finish_all(&g), LIGHTOS_SUCCESS);
  float* r = calloc(N, 4);
  lightos_buffer_read(bb, 0, N * 4, r);
  LK_CHECK(r[0] == INFINITY);
  LK_CHECK(r[1] != r[1]);
  LK_CHECK(r[2] != r[2]);
  LK_CHECK_MSG(r[3] == 3.0f, "1 + 2 = %g", r[3]);
  LK_CHECK(r[4] == 0.0f);
  LK_CHECK(r[300] == INFINITY); /* overflow rounds to infinity */
  LK_CHECK(r[299] == 0.0f && r[511] == 0.0f);
  lightos_buffer_release(ba);
  lightos_buffer_release(bb);
  free(a);
  free(b);
  free(r);
  group_free(&g);
}

/* ---- The other collectives ----------------------------------------------- */

static void test_other_collectives(void) {
  for (lightos_determinism_t l = LIGHTOS_DETERMINISM_NONE; l <= LIGHTOS_DETERMINISM_STRICT; l += 2) {
    const uint32_t nr = 3;
    const size_t n = 517;
    group_t g;
    LK_REQUIRE_OK(group_make(&g, nr, l, NULL));
    float* src[MAXR];
    lightos_buffer_t s[MAXR], r[MAXR], big[MAXR], big2[MAXR];
    for (uint32_t k = 0; k < nr; ++k) {
      src[k] = malloc(n * nr * 4);
      for (size_t i = 0; i < n * nr; ++i) src[k][i] = (float)(k * 100000 + i);
      s[k] = buf_with(g.ctx[k], src[k], n * nr * 4);
      r[k] = buf_with(g.ctx[k], NULL, n * nr * 4);
      big[k] = buf_with(g.ctx[k], NULL, n * nr * 4);
      big2[k] = buf_with(g.ctx[k], NULL, n * nr * 4);
    }
    float* out = malloc(n * nr * 4);
    /* reduce to root 2 */
    for (uint32_t k = 0; k < nr; ++k)
      LK_CHECK_STATUS(lightos_comm_reduce(s[k], k == 2 ? r[k] : NULL, n, LIGHTOS_DTYPE_F32,
                                          LIGHTOS_OP_MAX, 2, g.comm[k], NULL), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(finish_all(&g), LIGHTOS_SUCCESS);
    lightos_buffer_read(r[2], 0, n * 4, out);
    for (size_t i = 0; i < n; ++i)
      if (!LK_CHECK(out[i] == src[2][i])) break;
    /* broadcast from 1 */
    for (uint32_t k = 0; k < nr; ++k)
      LK_CHECK_STATUS(lightos_comm_broadcast(k == 1 ? s[k] : NULL, r[k], n, LIGHTOS_DTYPE_F32, 1,
                                             g.comm[k], NULL), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(finish_all(&g), LIGHTOS_SUCCESS);
    for (uint32_t k = 0; k < nr; ++k) {
      lightos_buffer_read(r[k], 0, n * 4, out);
      LK_CHECK_MSG(!memcmp(out, src[1], n * 4), "broadcast: rank %u", k);
    }
    /* allgather */
    for (uint32_t k = 0; k < nr; ++k)
      LK_CHECK_STATUS(lightos_comm_allgather(s[k], big[k], n, LIGHTOS_DTYPE_F32, g.comm[k], NULL),
                      LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(finish_all(&g), LIGHTOS_SUCCESS);
    for (uint32_t k = 0; k < nr; ++k) {
      lightos_buffer_read(big[k], 0, n * nr * 4, out);
      for (uint32_t p = 0; p < nr; ++p)
        LK_CHECK_MSG(!memcmp(out + p * n, src[p], n * 4), "allgather: rank %u part %u", k, p);
    }
    /* reduce_scatter (sum) */
    for (uint32_t k = 0; k < nr; ++k)
      LK_CHECK_STATUS(lightos_comm_reduce_scatter(s[k], r[k], n, LIGHTOS_DTYPE_F32,
                                                  LIGHTOS_OP_SUM, g.comm[k], NULL),
                      LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(finish_all(&g), LIGHTOS_SUCCESS);
    for (uint32_t k = 0; k < nr; ++k) {
      lightos_buffer_read(r[k], 0, n * 4, out);
      for (size_t i = 0; i < n; ++i) {
        float want = 0;
        for (uint32_t p = 0; p < nr; ++p) want += src[p][k * n + i];
        if (!LK_CHECK_MSG(out[i] == want, "reduce_scatter rank %u [%zu]: %g vs %g", k, i, out[i], want)) break;
      }
    }
    /* alltoall */
    for (uint32_t k = 0; k < nr; ++k)
      LK_CHECK_STATUS(lightos_comm_alltoall(s[k], big2[k], n, LIGHTOS_DTYPE_F32, g.comm[k], NULL),
                      LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(finish_all(&g), LIGHTOS_SUCCESS);
    for (uint32_t k = 0; k < nr; ++k) {
      lightos_buffer_read(big2[k], 0, n * nr * 4, out);
      for (uint32_t p = 0; p < nr; ++p)
        LK_CHECK_MSG(!memcmp(out + p * n, src[p] + k * n, n * 4), "alltoall: rank %u from %u", k, p);
    }
    /* send/recv around a ring, in one group (one thread drives all ranks) */
    LK_CHECK_STATUS(lightos_comm_group_start(), LIGHTOS_SUCCESS);
    for (uint32_t k = 0; k < nr; ++k) {
      LK_CHECK_STATUS(lightos_comm_send(s[k], n, LIGHTOS_DTYPE_F32, (k + 1) % nr, g.comm[k], NULL), LIGHTOS_SUCCESS);
      LK_CHECK_STATUS(lightos_comm_recv(r[k], n, LIGHTOS_DTYPE_F32, (k + nr - 1) % nr, g.comm[k], NULL), LIGHTOS_SUCCESS);
    }
    LK_CHECK_STATUS(lightos_comm_group_end(), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(finish_all(&g), LIGHTOS_SUCCESS);
    for (uint32_t k = 0; k < nr; ++k) {
      lightos_buffer_read(r[k], 0, n * 4, out);
      LK_CHECK_MSG(!memcmp(out, src[(k + nr - 1) % nr], n * 4), "send/recv: rank %u", k);
    }
    /* barrier */
    for (uint32_t k = 0; k < nr; ++k)
      LK_CHECK_STATUS(lightos_comm_barrier(g.comm[k], NULL), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(finish_all(&g), LIGHTOS_SUCCESS);
    free(out);
    for (uint32_t k = 0; k < nr; ++k) {
      free(src[k]);
      lightos_buffer_release(s[k]);
      lightos_buffer_release(r[k]);
      lightos_buffer_release(big[k]);
      lightos_buffer_release(big2[k]);
    }
    group_free(&g);
  }
}

/* Ordering on the queue: a collective sees the write before it, and the
 * read after it sees the result (stream order without finish in between). */
static void test_stream_order(void) {
  group_t g;
  LK_REQUIRE_OK(group_make(&g, 2, LIGHTOS_DETERMINISM_TOPOLOGY, NULL));
  const size_t n = 1 << 16;
  float* h = malloc(n * 4);
  float* got[2] = {malloc(n * 4), malloc(n * 4)};
  lightos_buffer_t b[2];
  for (int r = 0; r < 2; ++r) b[r] = buf_with(g.ctx[r], NULL, n * 4);
  for (int r = 0; r < 2; ++r) {
    for (size_t i = 0; i < n; ++i) h[i] = (float)(r + 1);
    lightos_queue_t q;
    lightos_context_default_queue(g.ctx[r], &q);
    /* Blocking write semantics are not relied on: enqueue + collective + read. */
    LK_CHECK_STATUS(lightos_enqueue_write(q, b[r], 0, n * 4, h, NULL), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_comm_allreduce(b[r], b[r], n, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g.comm[r], q), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_enqueue_read(q, b[r], 0, n * 4, got[r], NULL), LIGHTOS_SUCCESS);
  }
  LK_CHECK_STATUS(finish_all(&g), LIGHTOS_SUCCESS);
  for (int r = 0; r < 2; ++r)
    LK_CHECK_MSG(got[r][0] == 3.0f && got[r][n - 1] == 3.0f, "rank %d read %g", r, got[r][0]);
  for (int r = 0; r < 2; ++r) {
    lightos_buffer_release(b[r]);
    free(got[r]);
  }
  free(h);
  group_free(&g);
}

typedef struct split_arg {
  lightos_comm_t parent, child;
  int color, key;
  lightos_status_t s;
} split_arg_t;

static void* split_thread(void* p) {
  split_arg_t* a = p;
  a->s = lightos_comm_split(a->parent, a->color, a->key, NULL, &a->child);
  return NULL;
}

static void test_split(void) {
  group_t g;
  LK_REQUIRE_OK(group_make(&g, 4, LIGHTOS_DETERMINISM_TOPOLOGY, NULL));
  /* split blocks until every rank calls it: one thread per rank.  Colors:
   * ranks 0, 2 -> 0; rank 1 -> 1; rank 3 opts out.  Keys reverse order. */
  split_arg_t a[4];
  pthread_t th[4];
  for (int r = 0; r < 4; ++r) {
    a[r] = (split_arg_t){g.comm[r], NULL, r == 3 ? LIGHTOS_COMM_SPLIT_NOCOLOR : r % 2, -r, 0};
    pthread_create(&th[r], NULL, split_thread, &a[r]);
  }
  for (int r = 0; r < 4; ++r) pthread_join(th[r], NULL);
  for (int r = 0; r < 4; ++r)
    LK_CHECK_MSG(a[r].s == LIGHTOS_SUCCESS, "split on rank %d: %s", r, lightos_status_string(a[r].s));
  LK_CHECK(a[3].child == NULL);
  uint32_t rank = 9, size = 9;
  if (a[0].child && a[2].child && a[1].child) {
    lightos_comm_rank(a[0].child, &rank);
    lightos_comm_size(a[0].child, &size);
    LK_CHECK_INT(size, 2);
    LK_CHECK_INT(rank, 1); /* key -0 > key -2 */
    lightos_comm_rank(a[2].child, &rank);
    LK_CHECK_INT(rank, 0);
    lightos_comm_size(a[1].child, &size);
    LK_CHECK_INT(size, 1);
    /* The new group works: sum over ranks 0 and 2. */
    float x0 = 1.5f, x2 = 2.25f, r0 = 0, r2 = 0;
    lightos_buffer_t b0 = buf_with(g.ctx[0], &x0, 4), b2 = buf_with(g.ctx[2], &x2, 4);
    LK_CHECK_STATUS(lightos_comm_allreduce(b0, b0, 1, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, a[0].child, NULL), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_comm_allreduce(b2, b2, 1, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, a[2].child, NULL), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_buffer_read(b0, 0, 4, &r0), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_buffer_read(b2, 0, 4, &r2), LIGHTOS_SUCCESS);
    LK_CHECK(r0 == 3.75f && r2 == 3.75f);
    lightos_buffer_release(b0);
    lightos_buffer_release(b2);
  }
  for (int r = 0; r < 3; ++r)
    if (a[r].child) lightos_comm_destroy(a[r].child);
  group_free(&g);
}

/* A rank that never comes: the others fail within the timeout, and the
 * communicator stays failed; abort fails pending work at once. */
static void test_timeout_and_abort(void) {
  group_t g;
  memset(&g, 0, sizeof g);
  g.n = 2;
  g.ctx[0] = g_ctx[0];
  g.ctx[1] = g_ctx[1];
  lightos_comm_config_t cfg;
  lightos_comm_config_default(&cfg);
  cfg.timeout_s = 0.5;
  LK_REQUIRE_OK(lightos_comm_init_all_config(2, g.ctx, &cfg, g.comm));
  float x = 1;
  lightos_buffer_t b = buf_with(g.ctx[0], &x, 4);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  LK_CHECK_STATUS(lightos_comm_allreduce(b, b, 1, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g.comm[0], NULL), LIGHTOS_SUCCESS);
  lightos_queue_t q0;
  lightos_context_default_queue(g.ctx[0], &q0);
  lightos_status_t s = lightos_queue_finish(q0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double el = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  LK_CHECK_MSG(s != LIGHTOS_SUCCESS && strstr(lightos_last_error()->message, "timed out"),
               "expected a timeout, got %s (%s)", lightos_status_string(s), lightos_last_error()->message);
  LK_CHECK_MSG(el < 5.0, "the timeout took %.2f s (limit 0.5 s)", el);
  /* Later operations on either rank fail at once. */
  LK_CHECK_STATUS(lightos_comm_allreduce(b, b, 1, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g.comm[0], NULL), LIGHTOS_ABORTED);
  lightos_buffer_t b1 = buf_with(g.ctx[1], &x, 4);
  lightos_status_t s1 = lightos_comm_allreduce(b1, b1, 1, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g.comm[1], NULL);
  if (s1 == LIGHTOS_SUCCESS) {
    lightos_queue_t q1;
    lightos_context_default_queue(g.ctx[1], &q1);
    s1 = lightos_queue_finish(q1);
  }
  LK_CHECK_MSG(s1 != LIGHTOS_SUCCESS, "rank 1 after the group failed: %s", lightos_status_string(s1));
  lightos_buffer_release(b);
  lightos_buffer_release(b1);
  group_free(&g);

  /* abort while a rank waits */
  cfg.timeout_s = 60;
  LK_REQUIRE_OK(lightos_comm_init_all_config(2, g.ctx, &cfg, g.comm));
  b = buf_with(g.ctx[0], &x, 4);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  LK_CHECK_STATUS(lightos_comm_allreduce(b, b, 1, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g.comm[0], NULL), LIGHTOS_SUCCESS);
  struct timespec ts = {0, 100 * 1000 * 1000};
  nanosleep(&ts, NULL);
  LK_CHECK_STATUS(lightos_comm_abort(g.comm[1]), LIGHTOS_SUCCESS);
  s = lightos_queue_finish(q0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  el = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  LK_CHECK_MSG(s != LIGHTOS_SUCCESS && strstr(lightos_last_error()->message, "abort"),
               "expected the abort, got %s (%s)", lightos_status_string(s), lightos_last_error()->message);
  LK_CHECK_MSG(el < 5.0, "abort took %.2f s to reach rank 0", el);
  lightos_buffer_release(b);
  group_free(&g);
}

static void test_bad_input(void) {
  group_t g;
  LK_REQUIRE_OK(group_make(&g, 2, LIGHTOS_DETERMINISM_TOPOLOGY, NULL));
  lightos_buffer_t b = buf_with(g.ctx[0], NULL, 64), other = buf_with(g.ctx[1], NULL, 64);
  lightos_comm_t c = g.comm[0];
#define BAD(call, st, word)                                                                \
  do {                                                                                     \
    lightos_status_t s_ = (call);                                                          \
    LK_CHECK_MSG(s_ == (st) && strstr(lightos_last_error()->message, (word)),              \
                 "%s: expected %s naming '%s', got %s (%s)", #call, lightos_status_string(st), \
                 (word), lightos_status_string(s_), lightos_last_error()->message);        \
  } while (0)
  BAD(lightos_comm_allreduce(b, b, 0, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, c, NULL), LIGHTOS_INVALID_ARGUMENT, "count");
  BAD(lightos_comm_allreduce(b, b, 17, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, c, NULL), LIGHTOS_OUT_OF_RANGE, "send");
  BAD(lightos_comm_allreduce(b, b, 4, (lightos_dtype_t)99, LIGHTOS_OP_SUM, c, NULL), LIGHTOS_INVALID_ARGUMENT, "dtype");
  BAD(lightos_comm_allreduce(b, b, 4, LIGHTOS_DTYPE_BOOL, LIGHTOS_OP_SUM, c, NULL), LIGHTOS_INVALID_ARGUMENT, "dtype");
  BAD(lightos_comm_allreduce(b, b, 4, LIGHTOS_DTYPE_F32, (lightos_reduce_op_t)0, c, NULL), LIGHTOS_INVALID_ARGUMENT, "op");
  BAD(lightos_comm_allreduce(other, b, 4, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, c, NULL), LIGHTOS_INVALID_ARGUMENT, "send");
  BAD(lightos_comm_allreduce(b, b, 4, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, NULL, NULL), LIGHTOS_INVALID_ARGUMENT, "comm");
  BAD(lightos_comm_allreduce(b, b, SIZE_MAX / 2, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, c, NULL), LIGHTOS_OUT_OF_RANGE, "count");
  lightos_queue_t q1;
  lightos_context_default_queue(g.ctx[1], &q1);
  BAD(lightos_comm_allreduce(b, b, 4, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, c, q1), LIGHTOS_INVALID_ARGUMENT, "queue");
  BAD(lightos_comm_reduce(b, b, 4, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, 2, c, NULL), LIGHTOS_INVALID_ARGUMENT, "root");
  BAD(lightos_comm_broadcast(b, b, 4, LIGHTOS_DTYPE_F32, 7, c, NULL), LIGHTOS_INVALID_ARGUMENT, "root");
  BAD(lightos_comm_allgather(b, b, 16, LIGHTOS_DTYPE_F32, c, NULL), LIGHTOS_OUT_OF_RANGE, "recv");
  BAD(lightos_comm_alltoall(b, b, 8, LIGHTOS_DTYPE_F32, c, NULL), LIGHTOS_INVALID_ARGUMENT, "in place");
  BAD(lightos_comm_send(b, 4, LIGHTOS_DTYPE_F32, 0, c, NULL), LIGHTOS_INVALID_ARGUMENT, "peer");
  BAD(lightos_comm_recv(b, 4, LIGHTOS_DTYPE_F32, 5, c, NULL), LIGHTOS_INVALID_ARGUMENT, "peer");
  BAD(lightos_comm_allreduce_multi(NULL, 1, b, 4, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, c, NULL), LIGHTOS_INVALID_ARGUMENT, "sends");
  BAD(lightos_comm_allreduce_multi(&b, 0, b, 4, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, c, NULL), LIGHTOS_INVALID_ARGUMENT, "nsends");
  BAD(lightos_comm_group_end(), LIGHTOS_INVALID_ARGUMENT, "group_start");
  BAD(lightos_comm_split(c, -5, 0, NULL, &c), LIGHTOS_INVALID_ARGUMENT, "color");
  lightos_comm_config_t cfg;
  lightos_comm_config_default(&cfg);
  cfg.level = (lightos_determinism_t)9;
  lightos_comm_t nc[2];
  BAD(lightos_comm_init_all_config(2, g.ctx, &cfg, nc), LIGHTOS_INVALID_ARGUMENT, "level");
  cfg.level = LIGHTOS_DETERMINISM_RUN;
  cfg.struct_size = 3;
  BAD(lightos_comm_init_all_config(2, g.ctx, &cfg, nc), LIGHTOS_INVALID_ARGUMENT, "struct_size");
  BAD(lightos_comm_init_all(0, g.ctx, nc), LIGHTOS_INVALID_ARGUMENT, "ncontexts");
  lightos_context_t bad_ctx[2] = {g.ctx[0], (lightos_context_t)(uintptr_t)0x1234};
  BAD(lightos_comm_init_all(2, bad_ctx, nc), LIGHTOS_INVALID_ARGUMENT, "contexts[1]");
  lightos_comm_unique_id_t id;
  memset(&id, 0x5a, sizeof id);
  BAD(lightos_comm_init_rank(2, &id, 0, g.ctx[0], NULL, nc), LIGHTOS_INVALID_ARGUMENT, "id");
  BAD(lightos_comm_init_rank(2, &id, 2, g.ctx[0], NULL, nc), LIGHTOS_INVALID_ARGUMENT, "rank");
  BAD(lightos_comm_init_transport(2, 0, NULL, g.ctx[0], NULL, nc), LIGHTOS_INVALID_ARGUMENT, "ops");
  lightos_comm_transport_ops_t tops;
  memset(&tops, 0, sizeof tops);
  tops.struct_size = 7;
  BAD(lightos_comm_init_transport(2, 0, &tops, g.ctx[0], NULL, nc), LIGHTOS_INVALID_ARGUMENT, "struct_size");
  tops.struct_size = sizeof tops;
  BAD(lightos_comm_init_transport(2, 0, &tops, g.ctx[0], NULL, nc), LIGHTOS_INVALID_ARGUMENT, "isend");
  setenv("LIGHTOS_COMM_LEVEL", "fastest", 1);
  BAD(lightos_comm_config_default(&cfg), LIGHTOS_INVALID_ARGUMENT, "LIGHTOS_COMM_LEVEL");
  unsetenv("LIGHTOS_COMM_LEVEL");
  setenv("LIGHTOS_COMM_TIMEOUT", "-1", 1);
  BAD(lightos_comm_config_default(&cfg), LIGHTOS_INVALID_ARGUMENT, "LIGHTOS_COMM_TIMEOUT");
  unsetenv("LIGHTOS_COMM_TIMEOUT");
#undef BAD
  /* The group still works after all that. */
  float x[2] = {1, 2};
  lightos_buffer_t a0 = buf_with(g.ctx[0], &x[0], 4), a1 = buf_with(g.ctx[1], &x[1], 4);
  LK_CHECK_STATUS(lightos_comm_allreduce(a0, a0, 1, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g.comm[0], NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_comm_allreduce(a1, a1, 1, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g.comm[1], NULL), LIGHTOS_SUCCESS);
  float r = 0;
  LK_CHECK_STATUS(lightos_buffer_read(a1, 0, 4, &r), LIGHTOS_SUCCESS);
  LK_CHECK(r == 3.0f);
  lightos_buffer_release(a0);
  lightos_buffer_release(a1);
  lightos_buffer_release(b);
  lightos_buffer_release(other);
  group_free(&g);
}

/* Check mode: every rank's result hashed and compared. */
static void test_check_mode(void) {
  lightos_comm_config_t cfg;
  lightos_comm_config_default(&cfg);
  cfg.flags = LIGHTOS_COMM_CHECK;
  lightos_comm_t c[3];
  LK_REQUIRE_OK(lightos_comm_init_all_config(3, g_ctx, &cfg, c));
  lightos_buffer_t b[3];
  for (int r = 0; r < 3; ++r) {
    float v[100];
    for (int i = 0; i < 100; ++i) v[i] = (float)(r * i);
    b[r] = buf_with(g_ctx[r], v, sizeof v);
    LK_CHECK_STATUS(lightos_comm_allreduce(b[r], b[r], 100, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, c[r], NULL), LIGHTOS_SUCCESS);
  }
  group_t g = {3, {c[0], c[1], c[2]}, {g_ctx[0], g_ctx[1], g_ctx[2]}};
  LK_CHECK_STATUS(finish_all(&g), LIGHTOS_SUCCESS);
  for (int r = 0; r < 3; ++r) lightos_buffer_release(b[r]);
  group_free(&g);
}

int main(void) {
  lk_t.program = "test_comm";
  setenv("LIGHTOS_CPU_DEVICES", "4", 1);
  setenv("LIGHTOS_CPU_THREADS", "1", 0);
  for (int r = 0; r < MAXR; ++r) {
    char uri[16];
    snprintf(uri, sizeof uri, "cpu:%d", r);
    if (lightos_context_create_from_uri(uri, &g_ctx[r])) {
      fprintf(stderr, "test_comm: cannot open %s: %s\n", uri, lightos_last_error()->message);
      return 1;
    }
  }
  if (lightos_context_create_from_uri("opencl:0", &g_ocl)) {
    fprintf(stderr, "test_comm: no OpenCL device (%s): mixed-backend checks skipped\n",
            lightos_last_error()->message);
    g_ocl = NULL;
  }
  LK_RUN(test_allreduce_all_levels);
  LK_RUN(test_bitwise_splits);
  LK_RUN(test_composed_groups);
  LK_RUN(test_halving);
  LK_RUN(test_strict_rounding);
  LK_RUN(test_strict_specials);
  LK_RUN(test_other_collectives);
  LK_RUN(test_large_broadcast);
  LK_RUN(test_stream_order);
  LK_RUN(test_split);
  LK_RUN(test_timeout_and_abort);
  LK_RUN(test_bad_input);
  LK_RUN(test_check_mode);
  for (int r = 0; r < MAXR; ++r) lightos_context_release(g_ctx[r]);
  if (g_ocl) lightos_context_release(g_ocl);
  return lk_test_finish();
}
