/* The OpenCL backend's native GEMM: CLBlast, loaded at run time.
 *
 * libclblast.so.1 (then libclblast.so; or only the file named by
 * LIGHTOS_CLBLAST_LIBRARY when it is set and not empty) is opened with
 * dlopen on the first GEMM.  Nothing is linked and no CLBlast header is
 * included: the declarations below are the project's own, of the C API
 * (clblast_c.h) entry points used.  LIGHTOS_OPENCL_BLAS=0 turns the path
 * off; then, as when the library is missing, lk_cl_native_gemm answers
 * LIGHTOS_UNSUPPORTED and the tensor op runs the portable kernel.
 *
 * CLBlast takes row-major matrices with leading dimensions and offsets in
 * elements, so the HAL's GEMM maps onto it directly: one CLBlastXgemm call,
 * or one CLBlastXgemmStridedBatched call for a batch.  f32 and f64 (on
 * devices with cl_khr_fp64) only: CLBlast's half-precision GEMM
 * accumulates in half, less than the f32 accumulation the portable kernel
 * gives, so f16/bf16 take the portable kernel.  alpha == 0 also does: BLAS
 * semantics say A and B are not read then (NaNs there stay out of C).
 *
 * Ordering: the queue can hold commands back on the host behind a wait on
 * another event, so CLBlast must not enqueue straight onto the
 * cl_command_queue at submit time.  The call goes through the queue's own
 * dispatch (lk_cl_queue_submit_native): it runs when its turn comes, on
 * the queue's cl_command_queue, and keep_alive (the command holding the
 * buffers) completes once the event of CLBlast's last kernel has.  When
 * CLBlast refuses the case before enqueuing anything (not implemented, no
 * fp64, a kernel that does not build ...) and the call could run at
 * submit, the answer is LIGHTOS_UNSUPPORTED and the portable kernel runs.
 */
#include "hal/opencl/opencl_blas.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/util.h"

/* CLBlast's enumerations (values fixed by clblast_c.h). */
enum { LK_CLBLAST_ROW_MAJOR = 101 };
enum { LK_CLBLAST_TRANS_NO = 111, LK_CLBLAST_TRANS_YES = 112 };
enum {
  LK_CLBLAST_SUCCESS = 0,
  LK_CLBLAST_NOT_IMPLEMENTED = -1024,
  LK_CLBLAST_INVALID_MATRIX_C = -1020,   /* -1022 .. -1020: A, B, C not valid buffers */
  LK_CLBLAST_INVALID_DIMENSION = -1017,  /* -1017 .. -1014: dimensions, leading dims */
  LK_CLBLAST_INVALID_LEAD_DIM_C = -1014,
  LK_CLBLAST_INSUFFICIENT_A = -1011,     /* -1011 .. -1009: buffers too small */
  LK_CLBLAST_INSUFFICIENT_C = -1009,
  LK_CLBLAST_INVALID_BATCH_COUNT = -2049,
  LK_CLBLAST_INVALID_LOCAL_MEM = -2046,
  LK_CLBLAST_NO_HALF = -2045,
  LK_CLBLAST_NO_DOUBLE = -2044,
  LK_CLBLAST_DATABASE_ERROR = -2041,
};

typedef int (*lk_clblast_sgemm_fn)(int layout, int ta, int tb, size_t m, size_t n, size_t k,
                                   float alpha, cl_mem a, size_t a_off, size_t a_ld, cl_mem b,
                                   size_t b_off, size_t b_ld, float beta, cl_mem c, size_t c_off,
                                   size_t c_ld, cl_command_queue* queue, cl_event* event);
typedef int (*lk_clblast_dgemm_fn)(int layout, int ta, int tb, size_t m, size_t n, size_t k,
                                   double alpha, cl_mem a, size_t a_off, size_t a_ld, cl_mem b,
                                   size_t b_off, size_t b_ld, double beta, cl_mem c, size_t c_off,
                                   size_t c_ld, cl_command_queue* queue, cl_event* event);
typedef int (*lk_clblast_sgemm_sb_fn)(int layout, int ta, int tb, size_t m, size_t n, size_t k,
                                      float alpha, cl_mem a, size_t a_off, size_t a_ld,
                                      size_t a_stride, cl_mem b, size_t b_off, size_t b_ld,
                                      size_t b_stride, float beta, cl_mem c, size_t c_off,
                                      size_t c_ld, size_t c_stride, size_t batch,
                                      cl_command_queue* queue, cl_event* event);
typedef int (*lk_clblast_dgemm_sb_fn)(int layout, int ta, int tb, size_t m, size_t n, size_t k,
                                      double alpha, cl_mem a, size_t a_off, size_t a_ld,
                                      size_t a_stride, cl_mem b, size_t b_off, size_t b_ld,
                                      size_t b_stride, double beta, cl_mem c, size_t c_off,
                                      size_t c_ld, size_t c_stride, size_t batch,
                                      cl_command_queue* queue, cl_event* event);

/* The symbols used: X(required, type, name). */
#define LK_CLBLAST_SYMBOLS(X)                                   \
  X(true, lk_clblast_sgemm_fn, CLBlastSgemm)                    \
  X(true, lk_clblast_dgemm_fn, CLBlastDgemm)                    \
  X(false, lk_clblast_sgemm_sb_fn, CLBlastSgemmStridedBatched)  \
  X(false, lk_clblast_dgemm_sb_fn, CLBlastDgemmStridedBatched)

typedef struct lk_clblast {
  void* lib;
  char name[160];
#define LK_X(req, type, sym) type sym;
  LK_CLBLAST_SYMBOLS(LK_X)
#undef LK_X
} lk_clblast_t;

static lk_clblast_t lk_clb;
static bool lk_clb_ok;
static char lk_clb_reason[256];
static pthread_once_t lk_clb_once = PTHREAD_ONCE_INIT;
static atomic_ullong lk_clb_calls;

unsigned long long lk_cl_blas_call_count(void) { return atomic_load(&lk_clb_calls); }

/* Resolves the symbol table from `lib`; NULL, or the first required
 * symbol missing. */
static const char* lk_clb_bind(void* lib, lk_clblast_t* t) {
  memset(t, 0, sizeof *t);
  t->lib = lib;
#define LK_X(req, type, sym)               \
  t->sym = (type)lk_dynlib_sym(lib, #sym); \
  if ((req) && !t->sym) return #sym;
  LK_CLBLAST_SYMBOLS(LK_X)
#undef LK_X
  return NULL;
}

static void lk_clb_load(void) {
  if (!lk_env_flag("LIGHTOS_OPENCL_BLAS", true)) {
    snprintf(lk_clb_reason, sizeof lk_clb_reason, "CLBlast disabled (LIGHTOS_OPENCL_BLAS=0)");
    lk_log(LK_LOG_INFO, "opencl: native GEMM disabled (LIGHTOS_OPENCL_BLAS=0)");
    return;
  }
  const char* env = getenv("LIGHTOS_CLBLAST_LIBRARY");
  static const char* const defaults[] = {"libclblast.so.1", "libclblast.so", NULL};
  const char* only[2] = {env, NULL};
  const char* const* names = env && env[0] ? only : defaults;
  for (const char* const* n = names; *n; ++n) {
    const char* one[2] = {*n, NULL};
    void* lib = lk_dynlib_open(one, NULL, NULL, 0);
    if (!lib) continue;
    lk_clblast_t t;
    const char* missing = lk_clb_bind(lib, &t);
    if (!missing) {
      lk_strlcpy(t.name, *n, sizeof t.name);
      lk_clb = t;
      lk_clb_ok = true;
      lk_log(LK_LOG_INFO, "opencl: native GEMM through %s", *n);
      return;
    }
    snprintf(lk_clb_reason, sizeof lk_clb_reason, "%s: symbol %s missing", *n, missing);
    lk_dynlib_close(lib);
  }
  if (!lk_clb_reason[0])
    snprintf(lk_clb_reason, sizeof lk_clb_reason, "%s not found",
             env && env[0] ? env : "libclblast.so.1");
  lk_log(LK_LOG_INFO, "opencl: %s; GEMM uses the portable kernel", lk_clb_reason);
}

bool lk_cl_blas_available(char* reason, size_t cap) {
  pthread_once(&lk_clb_once, lk_clb_load);
  if (!lk_clb_ok && reason && cap) lk_strlcpy(reason, lk_clb_reason, cap);
  return lk_clb_ok;
}

/* One GEMM, resolved to CLBlast's arguments. */
typedef struct lk_clb_job {
  const lk_opencl_api_t* api;
  bool f64;
  int ta, tb;
  size_t m, n, k, batch;
  double alpha, beta;
  cl_mem a, b, c;
  size_t a_off, b_off, c_off;       /* in elements */
  size_t lda, ldb, ldc;
  size_t a_bs, b_bs, c_bs;          /* batch strides in elements */
  char uri[64];
} lk_clb_job_t;

/* Whether a CLBlast status says it refused the case before enqueuing
 * anything: argument checks, capabilities, kernel builds. */
static bool lk_clb_refused(int st) {
  return st == LK_CLBLAST_NOT_IMPLEMENTED ||
         (st >= LK_CLBLAST_NOT_IMPLEMENTED && st <= LK_CLBLAST_INSUFFICIENT_C) ||
         (st >= LK_CLBLAST_INVALID_BATCH_COUNT && st <= LK_CLBLAST_DATABASE_ERROR) ||
         st == -3 /* CL_COMPILER_NOT_AVAILABLE */ || st == -11 /* CL_BUILD_PROGRAM_FAILURE */ ||
         (st <= -42 && st >= -47); /* invalid binary, options, program, kernel name ... */
}

static lightos_status_t lk_clb_run(void* arg, cl_command_queue queue, cl_event* ev) {
  const lk_clb_job_t* j = arg;
  cl_command_queue q = queue;
  cl_event e = NULL;
  int st;
  const char* call;
  if (j->batch == 1) {
    call = j->f64 ? "CLBlastDgemm" : "CLBlastSgemm";
    if (j->f64)
      st = lk_clb.CLBlastDgemm(LK_CLBLAST_ROW_MAJOR, j->ta, j->tb, j->m, j->n, j->k, j->alpha, j->a,
                               j->a_off, j->lda, j->b, j->b_off, j->ldb, j->beta, j->c, j->c_off,
                               j->ldc, &q, &e);
    else
      st = lk_clb.CLBlastSgemm(LK_CLBLAST_ROW_MAJOR, j->ta, j->tb, j->m, j->n, j->k,
                               (float)j->alpha, j->a, j->a_off, j->lda, j->b, j->b_off, j->ldb,
                               (float)j->beta, j->c, j->c_off, j->ldc, &q, &e);
  } else {
    call = j->f64 ? "CLBlastDgemmStridedBatched" : "CLBlastSgemmStridedBatched";
    if (j->f64)
      st = lk_clb.CLBlastDgemmStridedBatched(LK_CLBLAST_ROW_MAJOR, j->ta, j->tb, j->m, j->n, j->k,
                                             j->alpha, j->a, j->a_off, j->lda, j->a_bs, j->b,
                                             j->b_off, j->ldb, j->b_bs, j->beta, j->c, j->c_off,
                                             j->ldc, j->c_bs, j->batch, &q, &e);
    else
      st = lk_clb.CLBlastSgemmStridedBatched(
          LK_CLBLAST_ROW_MAJOR, j->ta, j->tb, j->m, j->n, j->k, (float)j->alpha, j->a, j->a_off,
          j->lda, j->a_bs, j->b, j->b_off, j->ldb, j->b_bs, (float)j->beta, j->c, j->c_off, j->ldc,
          j->c_bs, j->batch, &q, &e);
  }
  if (st == LK_CLBLAST_SUCCESS) {
    atomic_fetch_add(&lk_clb_calls, 1);
    LK_LOG_DEBUG("opencl: %s m=%zu n=%zu k=%zu batch=%zu on %s", call, j->m, j->n, j->k,
                 j->batch, j->uri);
    *ev = e;
    return LIGHTOS_SUCCESS;
  }
  if (e) j->api->clReleaseEvent(e);
  *ev = NULL;
  if (lk_clb_refused(st)) {
    LK_LOG_DEBUG("opencl: %s refused the case (CLBlast status %d) on %s", call, st, j->uri);
    return LIGHTOS_UNSUPPORTED;
  }
  if (st > -1000) return lk_cl_fail(st, call, j->uri); /* an OpenCL error code */
  return LK_FAIL_NATIVE(LIGHTOS_INTERNAL, "opencl", "CLBlastStatusCode", st,
                        "%s failed on %s (CLBlast status %d)", call, j->uri, st);
}

static bool lk_clb_elems(size_t bytes, size_t elem, size_t* out) {
  if (bytes % elem) return false;
  *out = bytes / elem;
  return true;
}

lightos_status_t lk_cl_native_gemm(lk_hal_queue_t* queue, const lk_hal_gemm_t* g,
                                   lk_cmd_t* keep_alive) {
  const lk_cl_context_t* ctx = (const lk_cl_context_t*)queue->context;
  const lightos_device_info_t* info = &queue->context->device->info;
  if (g->dtype != LIGHTOS_DTYPE_F32 && g->dtype != LIGHTOS_DTYPE_F64) return LIGHTOS_UNSUPPORTED;
  if (g->dtype == LIGHTOS_DTYPE_F64 && !info->fp64) return LIGHTOS_UNSUPPORTED;
  if (g->alpha == 0.0) return LIGHTOS_UNSUPPORTED;
  if (g->m < 1 || g->n < 1 || g->k < 1 || g->batch < 1 || g->lda < 1 || g->ldb < 1 ||
      g->ldc < 1)
    return LIGHTOS_UNSUPPORTED;
  if (g->batch > 1 && (g->a_batch_stride < 0 || g->b_batch_stride < 0 || g->c_batch_stride < 1))
    return LIGHTOS_UNSUPPORTED;
  if (!g->a_mem->native || !g->b_mem->native || !g->c_mem->native) return LIGHTOS_UNSUPPORTED;
  if (!lk_cl_blas_available(NULL, 0)) return LIGHTOS_UNSUPPORTED;
  const bool f64 = g->dtype == LIGHTOS_DTYPE_F64;
  if (g->batch > 1 && !(f64 ? (void*)lk_clb.CLBlastDgemmStridedBatched
                            : (void*)lk_clb.CLBlastSgemmStridedBatched))
    return LIGHTOS_UNSUPPORTED;

  lk_clb_job_t* j = calloc(1, sizeof *j);
  if (!j) return LIGHTOS_UNSUPPORTED; /* the caller's portable path reports memory */
  const size_t elem = f64 ? 8 : 4;
  j->api = ctx->api;
  j->f64 = f64;
  j->ta = g->trans_a ? LK_CLBLAST_TRANS_YES : LK_CLBLAST_TRANS_NO;
  j->tb = g->trans_b ? LK_CLBLAST_TRANS_YES : LK_CLBLAST_TRANS_NO;
  j->m = (size_t)g->m;
  j->n = (size_t)g->n;
  j->k = (size_t)g->k;
  j->batch = (size_t)g->batch;
  j->alpha = g->alpha;
  j->beta = g->beta;
  j->a = (cl_mem)g->a_mem->native;
  j->b = (cl_mem)g->b_mem->native;
  j->c = (cl_mem)g->c_mem->native;
  j->lda = (size_t)g->lda;
  j->ldb = (size_t)g->ldb;
  j->ldc = (size_t)g->ldc;
  j->a_bs = (size_t)(g->batch > 1 ? g->a_batch_stride : 0);
  j->b_bs = (size_t)(g->batch > 1 ? g->b_batch_stride : 0);
  j->c_bs = (size_t)(g->batch > 1 ? g->c_batch_stride : 0);
  lk_strlcpy(j->uri, info->uri, sizeof j->uri);
  if (!lk_clb_elems(g->a_off, elem, &j->a_off) || !lk_clb_elems(g->b_off, elem, &j->b_off) ||
      !lk_clb_elems(g->c_off, elem, &j->c_off)) {
    free(j);
    return LIGHTOS_UNSUPPORTED;
  }
  return lk_cl_queue_submit_native(queue, keep_alive, lk_clb_run, j);
}
