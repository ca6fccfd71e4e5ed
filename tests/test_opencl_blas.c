/* The OpenCL backend's native GEMM (CLBlast, src/hal/opencl/opencl_blas.c).
 *
 * GEMMs through the tensor API on the first OpenCL device (opencl:0),
 * against a float64 host reference: f32 and f64 (when the device has it),
 * every transpose combination, alpha/beta, beta == 0 over a NaN-poisoned C,
 * alpha == 0 over NaN inputs, operands at offsets inside sub-buffers (the
 * memory around C checked untouched), strided batches and a broadcast A.
 * Ordering: write -> gemm -> read queued without a finish in between, and
 * the same behind a wait on a pending event (the queue holds the commands
 * back on the host: the GEMM must not reach the device before the write
 * that precedes it).
 *
 * Each GEMM checks CLBlast's call counter: with the path on it must have
 * been called (so the test cannot pass on the portable kernel alone), with
 * LIGHTOS_OPENCL_BLAS=0 never.  The program runs itself a second time with
 * LIGHTOS_OPENCL_BLAS=0, so one run covers both.  Without libclblast the
 * native checks are skipped with the reason.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hal/opencl/opencl_blas.h"
#include "lightos/lightos.h"
#include "lk_test.h"
#include "runtime/runtime.h" /* white-box: lk_event_create / lk_event_signal */

static lightos_context_t g_ctx;
static lightos_device_info_t g_info;
static lightos_queue_t g_q;
static bool g_env_on;  /* LIGHTOS_OPENCL_BLAS not 0 */
static bool g_native;  /* CLBlast loaded: GEMMs must go through it */
static char g_why[256];

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double rnd_unit(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 40) / 8388608.0 - 1.0;
}

/* Host data kept as doubles; converted to the dtype for transfers. */
static void to_dev(lightos_dtype_t dt, const double* src, size_t n, void* dst) {
  for (size_t i = 0; i < n; ++i) {
    if (dt == LIGHTOS_DTYPE_F32) ((float*)dst)[i] = (float)src[i];
    else ((double*)dst)[i] = src[i];
  }
}
static void from_dev(lightos_dtype_t dt, const void* src, size_t n, double* dst) {
  for (size_t i = 0; i < n; ++i)
    dst[i] = dt == LIGHTOS_DTYPE_F32 ? (double)((const float*)src)[i] : ((const double*)src)[i];
}

typedef struct gcase {
  lightos_dtype_t dt;
  bool ta, tb;
  int64_t m, n, k;
  int64_t batch;   /* 1: 2-D tensors */
  bool bcast_a;    /* A is 2-D, broadcast over the batch */
  double alpha, beta;
  bool nan_c;      /* C holds NaN (with beta == 0) */
  bool nan_ab;     /* A and B hold NaN (with alpha == 0) */
} gcase_t;

/* Elements before a tensor in its root buffer: the sub-buffer's offset
 * plus the tensor's offset in it. */
enum { SUB_OFF = 5, TEN_OFF = 3, PRE = SUB_OFF + TEN_OFF, POST = 6 };
static const double GUARD = 7777.0;

typedef struct operand {
  lightos_buffer_t root, sub;
  lightos_tensor_t t;
  size_t numel, total;  /* tensor elements; root elements with guards */
  double* host;         /* total elements */
  void* raw;            /* total elements in the dtype */
} operand_t;

static bool operand_make(operand_t* o, lightos_dtype_t dt, uint32_t ndim, const int64_t* shape) {
  memset(o, 0, sizeof *o);
  size_t es = lightos_dtype_size(dt);
  o->numel = 1;
  for (uint32_t i = 0; i < ndim; ++i) o->numel *= (size_t)shape[i];
  o->total = PRE + o->numel + POST;
  o->host = calloc(o->total, sizeof(double));
  o->raw = calloc(o->total, es);
  if (!o->host || !o->raw) return false;
  for (size_t i = 0; i < o->total; ++i) o->host[i] = GUARD;
  if (lightos_buffer_alloc(g_ctx, o->total * es, 0, &o->root) ||
      lightos_buffer_create_sub(o->root, SUB_OFF * es, (o->total - SUB_OFF) * es, &o->sub) ||
      lightos_tensor_make(o->sub, TEN_OFF * es, dt, ndim, shape, &o->t))
    return false;
  return true;
}

static void operand_free(operand_t* o) {
  if (o->sub) lightos_buffer_release(o->sub);
  if (o->root) lightos_buffer_release(o->root);
  free(o->host);
  free(o->raw);
}

/* Element (r, c) of matrix `b` of a row-major [batch] x rows x cols operand. */
static double at(const operand_t* o, int64_t b, int64_t rows, int64_t cols, int64_t r,
                 int64_t c) {
  return o->host[PRE + (size_t)((b * rows + r) * cols + c)];
}

static const char* dt_name(lightos_dtype_t dt) { return dt == LIGHTOS_DTYPE_F32 ? "f32" : "f64"; }

/* Whether CLBlast is expected to run this case. */
static bool expect_native(const gcase_t* g) {
  return g_native && g->alpha != 0.0 && (g->dt == LIGHTOS_DTYPE_F32 || g_info.fp64);
}

/* Runs one GEMM and checks it.  held: queue it behind a wait on a pending
 * event, which is signalled only after checking that nothing ran. */
static void run_case(const gcase_t* g, bool held) {
  char name[160];
  snprintf(name, sizeof name, "%s %s%s m=%lld n=%lld k=%lld batch=%lld%s alpha=%g beta=%g%s",
           dt_name(g->dt), g->ta ? "T" : "N", g->tb ? "T" : "N", (long long)g->m,
           (long long)g->n, (long long)g->k, (long long)g->batch, g->bcast_a ? " (A broadcast)" : "",
           g->alpha, g->beta, held ? " held" : "");
  if (g->dt == LIGHTOS_DTYPE_F64 && !g_info.fp64) {
    fprintf(stderr, "  (%s: no fp64 on this device, not run)\n", name);
    return;
  }
  const bool batched = g->batch > 1;
  const int64_t ar = g->ta ? g->k : g->m, ac = g->ta ? g->m : g->k;
  const int64_t br = g->tb ? g->n : g->k, bc = g->tb ? g->k : g->n;
  int64_t sa[3] = {g->batch, ar, ac}, sb[3] = {g->batch, br, bc}, sc[3] = {g->batch, g->m, g->n};
  const bool a3 = batched && !g->bcast_a;
  operand_t A, B, C;
  memset(&A, 0, sizeof A);
  memset(&B, 0, sizeof B);
  memset(&C, 0, sizeof C);
  lightos_event_t done = NULL;
  lk_event_t* gate = NULL;
  lightos_event_t gate_h = NULL;
  bool signalled = false;
  size_t es = lightos_dtype_size(g->dt);
  if (!LK_CHECK_MSG(operand_make(&A, g->dt, a3 ? 3 : 2, a3 ? sa : sa + 1) &&
                        operand_make(&B, g->dt, batched ? 3 : 2, batched ? sb : sb + 1) &&
                        operand_make(&C, g->dt, batched ? 3 : 2, batched ? sc : sc + 1),
                    "%s: setup failed: %s", name, lightos_last_error()->message))
    goto out;
  for (size_t i = 0; i < A.numel; ++i) A.host[PRE + i] = g->nan_ab && i % 3 == 0 ? NAN : rnd_unit();
  for (size_t i = 0; i < B.numel; ++i) B.host[PRE + i] = g->nan_ab && i % 4 == 1 ? NAN : rnd_unit();
  for (size_t i = 0; i < C.numel; ++i) C.host[PRE + i] = g->nan_c ? NAN : rnd_unit();
  double* ref = calloc(C.numel, sizeof(double));
  double* got = calloc(C.total, sizeof(double));
  double* bound = calloc(C.numel, sizeof(double));
  if (!LK_CHECK(ref && got && bound)) {
    free(ref);
    free(got);
    free(bound);
    goto out;
  }
  for (int64_t b = 0; b < g->batch; ++b)
    for (int64_t i = 0; i < g->m; ++i)
      for (int64_t j = 0; j < g->n; ++j) {
        double s = 0, mag = 0;
        if (g->alpha != 0.0)
          for (int64_t p = 0; p < g->k; ++p) {
            int64_t ba = a3 ? b : 0;
            double x = g->ta ? at(&A, ba, ar, ac, p, i) : at(&A, ba, ar, ac, i, p);
            double y = g->tb ? at(&B, b, br, bc, j, p) : at(&B, b, br, bc, p, j);
            s += x * y;
            mag += fabs(x * y);
          }
        size_t ci = (size_t)((b * g->m + i) * g->n + j);
        double c0 = C.host[PRE + ci];
        ref[ci] = g->alpha * s + (g->beta != 0.0 ? g->beta * c0 : 0.0);
        bound[ci] = fabs(g->alpha) * mag + (g->beta != 0.0 ? fabs(g->beta * c0) : 0.0);
      }

  /* The path's counter, and a queue with a pending gate for `held`. */
  unsigned long long calls0 = lk_cl_blas_call_count();
  if (held) {
    if (!LK_CHECK(lk_event_create(&gate) == LIGHTOS_SUCCESS)) goto out2;
    gate_h = LK_HANDLE(gate);
    LK_CHECK_STATUS(lightos_queue_wait_event(g_q, gate_h), LIGHTOS_SUCCESS);
  }
  to_dev(g->dt, A.host, A.total, A.raw);
  to_dev(g->dt, B.host, B.total, B.raw);
  to_dev(g->dt, C.host, C.total, C.raw);
  memset(got, 0, C.total * sizeof(double));
  void* craw = calloc(C.total, es);
  if (!LK_CHECK(craw != NULL)) goto out2;
  /* write -> gemm -> read, no finish in between. */
  LK_CHECK_STATUS(lightos_enqueue_write(g_q, A.root, 0, A.total * es, A.raw, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_enqueue_write(g_q, B.root, 0, B.total * es, B.raw, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_enqueue_write(g_q, C.root, 0, C.total * es, C.raw, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_op_gemm(g_q, g->ta, g->tb, g->alpha, &A.t, &B.t, g->beta, &C.t),
                  LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_enqueue_read(g_q, C.root, 0, C.total * es, craw, &done),
                  LIGHTOS_SUCCESS);
  if (held) {
    usleep(20000);
    LK_CHECK_MSG(lightos_event_query(done) == LIGHTOS_NOT_READY, "%s: read ran before the gate",
                 name);
    LK_CHECK_MSG(lk_cl_blas_call_count() == calls0,
                 "%s: CLBlast was called while its GEMM was held back", name);
    lk_event_signal(gate, LIGHTOS_SUCCESS, NULL, NULL, 0, 0);
    signalled = true;
  }
  LK_CHECK_STATUS(lightos_queue_finish(g_q), LIGHTOS_SUCCESS);
  from_dev(g->dt, craw, C.total, got);
  free(craw);
  unsigned long long calls = lk_cl_blas_call_count() - calls0;
  if (expect_native(g))
    LK_CHECK_MSG(calls >= 1, "%s: CLBlast was not called", name);
  else
    LK_CHECK_MSG(calls == 0, "%s: CLBlast was called %llu times", name, calls);

  const double eps = g->dt == LIGHTOS_DTYPE_F32 ? 1.2e-7 : 2.3e-16;
  int bad = 0;
  for (size_t i = 0; i < C.numel && bad < 5; ++i) {
    double v = got[PRE + i], tol = 4.0 * eps * ((double)g->k + 2.0) * bound[i] + 1e-30;
    if (!(fabs(v - ref[i]) <= tol)) {
      lk_test_fail(__FILE__, __LINE__, "%s: C[%zu] = %.17g, want %.17g (tol %.3g)", name, i, v,
                   ref[i], tol);
      ++bad;
    }
  }
  for (size_t i = 0; i < PRE; ++i)
    LK_CHECK_MSG(got[i] == GUARD, "%s: memory before C changed at %zu: %g", name, i, got[i]);
  for (size_t i = PRE + C.numel; i < C.total; ++i)
    LK_CHECK_MSG(got[i] == GUARD, "%s: memory after C changed at %zu: %g", name, i, got[i]);
out2:
  free(ref);
  free(got);
  free(bound);
out:
  if (done) lightos_event_release(done);
  if (gate_h) {
    if (!signalled) lk_event_signal(gate, LIGHTOS_SUCCESS, NULL, NULL, 0, 0);
    lightos_queue_finish(g_q);
    lightos_event_release(gate_h);
  }
  operand_free(&A);
  operand_free(&B);
  operand_free(&C);
}

static const lightos_dtype_t DTS[2] = {LIGHTOS_DTYPE_F32, LIGHTOS_DTYPE_F64};

static void test_shapes_and_transposes(void) {
  static const int64_t shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {65, 33, 129}};
  for (int d = 0; d < 2; ++d)
    for (int s = 0; s < 3; ++s)
      for (int t = 0; t < 4; ++t) {
        gcase_t g = {DTS[d], t & 1, (t >> 1) & 1, shapes[s][0], shapes[s][1], shapes[s][2],
                     1, false, 1.0, 0.0, false, false};
        run_case(&g, false);
      }
}

static void test_alpha_beta(void) {
  for (int d = 0; d < 2; ++d) {
    gcase_t g = {DTS[d], false, true, 17, 9, 23, 1, false, 0.75, -1.5, false, false};
    run_case(&g, false);
    g.ta = true;
    g.alpha = -2.0;
    g.beta = 1.0;
    run_case(&g, false);
    /* beta == 0: C is not read (NaN there stays out). */
    gcase_t z = {DTS[d], false, false, 12, 10, 8, 1, false, 1.25, 0.0, true, false};
    run_case(&z, false);
    /* alpha == 0: A and B are not read (the portable kernel runs it). */
    gcase_t a0 = {DTS[d], false, false, 6, 5, 4, 1, false, 0.0, 0.5, false, true};
    run_case(&a0, false);
  }
}

static void test_batched(void) {
  for (int d = 0; d < 2; ++d) {
    gcase_t g = {DTS[d], false, false, 9, 11, 7, 4, false, 1.0, 0.5, false, false};
    run_case(&g, false);
    g.ta = g.tb = true;
    run_case(&g, false);
    g.bcast_a = true;
    g.ta = false;
    run_case(&g, false);
  }
}

static void test_ordering(void) {
  /* Held back behind a pending event: write -> gemm -> read in order. */
  for (int d = 0; d < 2; ++d) {
    gcase_t g = {DTS[d], false, true, 33, 17, 40, 1, false, 1.0, 1.0, false, false};
    run_case(&g, true);
    gcase_t b = {DTS[d], true, false, 8, 6, 5, 3, false, 0.5, 0.0, true, false};
    run_case(&b, true);
  }
  /* Back to back on one queue, one finish at the end: each GEMM reads the
   * previous one's output. */
  const int64_t n = 24;
  int64_t sh[2] = {n, n};
  lightos_tensor_t x = {0}, y = {0}, z = {0};
  float* hx = calloc((size_t)(n * n), sizeof(float));
  float* hz = calloc((size_t)(n * n), sizeof(float));
  if (!LK_CHECK(hx && hz) || !LK_CHECK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 2, sh, &x) ==
                                           LIGHTOS_SUCCESS) ||
      !LK_CHECK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 2, sh, &y) == LIGHTOS_SUCCESS) ||
      !LK_CHECK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 2, sh, &z) == LIGHTOS_SUCCESS))
    goto out;
  /* x = 2 I; y = x x = 4 I; z = y x = 8 I; then y = z z = 64 I; read y. */
  for (int64_t i = 0; i < n; ++i) hx[i * n + i] = 2.0f;
  size_t bytes = (size_t)(n * n) * sizeof(float);
  unsigned long long c0 = lk_cl_blas_call_count();
  LK_CHECK_STATUS(lightos_enqueue_write(g_q, x.buffer, 0, bytes, hx, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_op_gemm(g_q, false, false, 1.0, &x, &x, 0.0, &y), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_op_gemm(g_q, false, false, 1.0, &y, &x, 0.0, &z), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_op_gemm(g_q, false, false, 1.0, &z, &z, 0.0, &y), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_enqueue_read(g_q, y.buffer, 0, bytes, hz, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(g_q), LIGHTOS_SUCCESS);
  unsigned long long calls = lk_cl_blas_call_count() - c0;
  if (g_native) LK_CHECK_MSG(calls == 3, "CLBlast called %llu times for 3 GEMMs", calls);
  else LK_CHECK_INT(calls, 0);
  int bad = 0;
  for (int64_t i = 0; i < n * n && bad < 5; ++i) {
    float want = i % (n + 1) == 0 ? 64.0f : 0.0f;
    if (hz[i] != want) {
      lk_test_fail(__FILE__, __LINE__, "chain: y[%lld] = %g, want %g", (long long)i, hz[i], want);
      ++bad;
    }
  }
out:
  free(hx);
  free(hz);
  if (x.buffer) lightos_tensor_free(&x);
  if (y.buffer) lightos_tensor_free(&y);
  if (z.buffer) lightos_tensor_free(&z);
}

/* Runs this program again with LIGHTOS_OPENCL_BLAS=0: the portable path
 * must give the same answers, and CLBlast must not be called. */
static void test_path_off(void) {
  pid_t pid = fork();
  if (!LK_CHECK(pid >= 0)) return;
  if (pid == 0) {
    setenv("LIGHTOS_OPENCL_BLAS", "0", 1);
    char* argv[] = {(char*)"test_opencl_blas", NULL};
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  int st = 0;
  LK_REQUIRE(waitpid(pid, &st, 0) == pid);
  LK_CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
               "the run with LIGHTOS_OPENCL_BLAS=0 failed (status %d)", st);
}

int main(void) {
  const char* env = getenv("LIGHTOS_OPENCL_BLAS");
  g_env_on = !(env && strcmp(env, "0") == 0);
  lk_t.program = g_env_on ? "test_opencl_blas" : "test_opencl_blas (LIGHTOS_OPENCL_BLAS=0)";
  lightos_device_t dev = NULL;
  if (lightos_context_create_from_uri("opencl:0", &g_ctx) ||
      lightos_context_get_device(g_ctx, &dev) || lightos_device_get_info(dev, &g_info) ||
      lightos_queue_create(g_ctx, 0, &g_q)) {
    fprintf(stderr, "SKIP test_opencl_blas: no OpenCL device (%s)\n",
            lightos_last_error()->message);
    if (g_ctx) lightos_context_release(g_ctx);
    return 0;
  }
  g_native = lk_cl_blas_available(g_why, sizeof g_why);
  fprintf(stderr, "%s: %s, CLBlast %s%s\n", lk_t.program, g_info.name,
          g_native ? "in use" : "not in use: ", g_native ? "" : g_why);
  if (!g_native && g_env_on) {
    lk_test_begin("clblast_available");
    lk_test_skip("%s; the GEMMs below check the portable path only", g_why);
    lk_test_end();
  }
  LK_RUN(test_shapes_and_transposes);
  LK_RUN(test_alpha_beta);
  LK_RUN(test_batched);
  LK_RUN(test_ordering);
  if (g_env_on) LK_RUN(test_path_off);
  lightos_queue_release(g_q);
  lightos_context_release(g_ctx);
  return lk_test_finish();
}
