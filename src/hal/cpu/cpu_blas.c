/* The CPU backend's native GEMM: OpenBLAS, loaded at run time.
 *
 * The library is found on first use with dlopen: libopenblas.so.0, then
 * libopenblas.so, then (only when it exports the CBLAS entry points)
 * libblas.so.3.  Nothing is linked and no BLAS header is included: the
 * prototypes below are the project's own (CBLAS, row-major, 32-bit
 * integers as in the LP64 OpenBLAS builds).  When no library is found, or
 * LIGHTOS_CPU_BLAS=0, lk_cpu_native_gemm answers LIGHTOS_UNSUPPORTED and
 * the tensor op runs the portable kernel.
 *
 * A GEMM runs as an LK_CMD_HOST command on the queue, so it is ordered with
 * the queue's other work; batches are a loop of cblas calls.  f16/bf16 are
 * not offered (UNSUPPORTED: the portable kernel runs them).
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "hal/cpu/cpu_backend.h"

/* CBLAS enums (values fixed by the CBLAS standard). */
enum { LK_CBLAS_ROW_MAJOR = 101 };
enum { LK_CBLAS_NO_TRANS = 111, LK_CBLAS_TRANS = 112 };

typedef void (*lk_cblas_sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k,
                                  float alpha, const float* a, int lda, const float* b, int ldb,
                                  float beta, float* c, int ldc);
typedef void (*lk_cblas_dgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k,
                                  double alpha, const double* a, int lda, const double* b, int ldb,
                                  double beta, double* c, int ldc);
typedef int (*lk_openblas_get_num_threads_fn)(void);
typedef void (*lk_openblas_set_num_threads_fn)(int n);

/* The symbols used: X(required, type, name). */
#define LK_CPU_BLAS_SYMBOLS(X)                                       \
  X(true, lk_cblas_sgemm_fn, cblas_sgemm)                            \
  X(true, lk_cblas_dgemm_fn, cblas_dgemm)                            \
  X(false, lk_openblas_get_num_threads_fn, openblas_get_num_threads) \
  X(false, lk_openblas_set_num_threads_fn, openblas_set_num_threads)

typedef struct lk_cpu_blas {
  void* lib;
  const char* name;
#define LK_X(req, type, sym) type sym;
  LK_CPU_BLAS_SYMBOLS(LK_X)
#undef LK_X
} lk_cpu_blas_t;

static lk_cpu_blas_t lk_blas;
static bool lk_blas_ok;
static pthread_once_t lk_blas_once = PTHREAD_ONCE_INIT;
static pthread_once_t lk_blas_threads_once = PTHREAD_ONCE_INIT;
static atomic_uint lk_blas_device_threads;
static atomic_ullong lk_blas_calls;

unsigned long long lk_cpu_blas_call_count(void) { return atomic_load(&lk_blas_calls); }

/* Resolves the symbol table from `lib`; false when a required one is missing. */
static bool lk_cpu_blas_bind(void* lib, lk_cpu_blas_t* t) {
  memset(t, 0, sizeof *t);
  t->lib = lib;
#define LK_X(req, type, sym)               \
  t->sym = (type)lk_dynlib_sym(lib, #sym); \
  if ((req) && !t->sym) return false;
  LK_CPU_BLAS_SYMBOLS(LK_X)
#undef LK_X
  return true;
}

static void lk_cpu_blas_load(void) {
  if (!lk_env_flag("LIGHTOS_CPU_BLAS", true)) {
    lk_log(LK_LOG_INFO, "cpu: native GEMM disabled (LIGHTOS_CPU_BLAS=0)");
    return;
  }
  static const char* const names[] = {"libopenblas.so.0", "libopenblas.so", "libblas.so.3"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
    const char* one[2] = {names[i], NULL};
    char reason[128];
    void* lib = lk_dynlib_open(one, NULL, reason, sizeof reason);
    if (!lib) continue;
    lk_cpu_blas_t t;
    if (lk_cpu_blas_bind(lib, &t)) {
      t.name = names[i];
      lk_blas = t;
      lk_blas_ok = true;
      lk_log(LK_LOG_INFO, "cpu: native GEMM through %s", names[i]);
      return;
    }
    lk_dynlib_close(lib);
  }
  lk_log(LK_LOG_INFO, "cpu: no OpenBLAS (libopenblas.so.0) found; GEMM uses the portable kernel");
}

/* What the host command needs: the GEMM and its resolved host addresses. */
typedef struct lk_cpu_gemm_job {
  lk_hal_gemm_t g;
  char* a;
  char* b;
  char* c;
} lk_cpu_gemm_job_t;

static lightos_status_t lk_cpu_gemm_run(void* arg) {
  const lk_cpu_gemm_job_t* j = arg;
  const lk_hal_gemm_t* g = &j->g;
  const int ta = g->trans_a ? LK_CBLAS_TRANS : LK_CBLAS_NO_TRANS;
  const int tb = g->trans_b ? LK_CBLAS_TRANS : LK_CBLAS_NO_TRANS;
  atomic_fetch_add(&lk_blas_calls, 1);
  for (int64_t i = 0; i < g->batch; ++i) {
    if (g->dtype == LIGHTOS_DTYPE_F32) {
      const float* a = (const float*)(void*)j->a + i * g->a_batch_stride;
      const float* b = (const float*)(void*)j->b + i * g->b_batch_stride;
      float* c = (float*)(void*)j->c + i * g->c_batch_stride;
      lk_blas.cblas_sgemm(LK_CBLAS_ROW_MAJOR, ta, tb, (int)g->m, (int)g->n, (int)g->k,
                          (float)g->alpha, a, (int)g->lda, b, (int)g->ldb, (float)g->beta, c,
                          (int)g->ldc);
    } else {
      const double* a = (const double*)(void*)j->a + i * g->a_batch_stride;
      const double* b = (const double*)(void*)j->b + i * g->b_batch_stride;
      double* c = (double*)(void*)j->c + i * g->c_batch_stride;
      lk_blas.cblas_dgemm(LK_CBLAS_ROW_MAJOR, ta, tb, (int)g->m, (int)g->n, (int)g->k, g->alpha, a,
                          (int)g->lda, b, (int)g->ldb, g->beta, c, (int)g->ldc);
    }
  }
  return LIGHTOS_SUCCESS;
}

/* OpenBLAS starts one thread per core; keep it within the CPU device's
 * threads (LIGHTOS_CPU_THREADS) unless the user sized OpenBLAS itself. */
static void lk_cpu_blas_threads(void) {
  if (!lk_blas.openblas_get_num_threads || !lk_blas.openblas_set_num_threads) return;
  if (getenv("OPENBLAS_NUM_THREADS") || getenv("OMP_NUM_THREADS")) return;
  int have = lk_blas.openblas_get_num_threads();
  unsigned want = atomic_load(&lk_blas_device_threads);
  if (want >= 1 && have > (int)want) lk_blas.openblas_set_num_threads((int)want);
}

static bool lk_fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

static char* lk_cpu_host_addr(const lk_hal_mem_t* mem, size_t off) {
  char* base = mem->host_ptr ? mem->host_ptr : mem->device_ptr;
  return base ? base + off : NULL;
}

lightos_status_t lk_cpu_native_gemm(lk_hal_queue_t* queue, const lk_hal_gemm_t* g,
                                    lk_cmd_t* keep_alive) {
  if (g->dtype != LIGHTOS_DTYPE_F32 && g->dtype != LIGHTOS_DTYPE_F64) return LIGHTOS_UNSUPPORTED;
  /* alpha == 0 must not read A and B (BLAS semantics: NaNs there stay out
   * of C); some OpenBLAS versions compute 0 * NaN anyway (seen with 0.3.26),
   * so that case takes the portable kernel. */
  if (g->alpha == 0.0) return LIGHTOS_UNSUPPORTED;
  /* The CBLAS interface takes int sizes: larger problems go portable. */
  if (!lk_fits_int(g->m) || !lk_fits_int(g->n) || !lk_fits_int(g->k) || !lk_fits_int(g->lda) ||
      !lk_fits_int(g->ldb) || !lk_fits_int(g->ldc) || g->batch < 0)
    return LIGHTOS_UNSUPPORTED;
  pthread_once(&lk_blas_once, lk_cpu_blas_load);
  if (!lk_blas_ok) return LIGHTOS_UNSUPPORTED;
  atomic_store(&lk_blas_device_threads, ((lk_cpu_context_t*)queue->context)->device->threads);
  pthread_once(&lk_blas_threads_once, lk_cpu_blas_threads);

  lk_cpu_gemm_job_t* job = malloc(sizeof *job);
  if (!job) return LIGHTOS_UNSUPPORTED; /* the caller's portable path reports memory */
  job->g = *g;
  job->a = lk_cpu_host_addr(g->a_mem, g->a_off);
  job->b = lk_cpu_host_addr(g->b_mem, g->b_off);
  job->c = lk_cpu_host_addr(g->c_mem, g->c_off);
  if (!job->a || !job->b || !job->c) {
    free(job);
    return LIGHTOS_UNSUPPORTED;
  }
  keep_alive->kind = LK_CMD_HOST;
  keep_alive->u.host.fn = lk_cpu_gemm_run;
  keep_alive->u.host.arg = job;
  return queue->vtbl->submit(queue, keep_alive);
}
