/* The CUDA backend's native GEMM: cuBLAS, loaded at run time (cuda_blas.h).
 *
 * One cuBLAS handle per queue, created on the queue's first GEMM with the
 * device's primary context current (the context LightOS uses), and used
 * only under the queue's submit lock, with the queue's stream.  The handle
 * holds a reference on the primary context (cuDevicePrimaryCtxRetain), so
 * the context cannot be reset under it; lk_cuda_blas_queue_destroyed drops
 * both.
 *
 * LightOS matrices are row-major; cuBLAS's are column-major.  A row-major
 * M x N matrix with leading dimension ld is, read column-major, its N x M
 * transpose with the same ld, so C = op(A) op(B) is computed as
 *     C^T = op(B)^T op(A)^T
 * i.e. cuBLAS gets (m, n) = (N, M), B as its first operand and A as its
 * second, each with its own transpose flag and leading dimension.
 *
 * Types: f32 (CUBLAS_COMPUTE_32F; CUBLAS_COMPUTE_32F_FAST_TF32 only with
 * LIGHTOS_ALLOW_TF32=1), f16 and bf16 inputs and outputs accumulating in
 * f32 (CUBLAS_COMPUTE_32F, with reductions kept in f32:
 * CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION), f64
 * (CUBLAS_COMPUTE_64F).  alpha and beta are passed in the compute type.
 * A batch is one cublasGemmStridedBatchedEx call (the HAL's batch strides
 * are regular).  Sizes past INT_MAX use the _64 entry points when the
 * library has them.
 *
 * Ordering: the GEMM is enqueued on the stream at submit time through
 * lk_cu_queue_enqueue_native (in the queue's ring, with no command), then
 * keep_alive (an LK_CMD_MARKER holding the buffers) goes through the
 * queue's normal submit: the ring completes entries in order, so the
 * marker completes, and the buffers are released, only after the GEMM has
 * run.  When cuBLAS refuses the case at enqueue time (NOT_SUPPORTED,
 * ARCH_MISMATCH: nothing was enqueued) the answer is LIGHTOS_UNSUPPORTED
 * and keep_alive stays the caller's; any other failure completes
 * keep_alive in order with that failure.
 *
 * LIGHTOS_CUDA_BLAS=0 turns the path off (the portable kernel runs), as
 * does a HIP device (the HIP backend shares this code; no hipBLAS here).
 */
#include "hal/cuda/cuda_blas.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "hal/cuda/cuda_backend.h"

_Static_assert(sizeof(void*) == sizeof(void (*)(void)),
               "function and object pointers must have the same size");

/* ---- loading ---------------------------------------------------------------- */

static pthread_once_t lk_cb_once = PTHREAD_ONCE_INIT;
static lk_cublas_api_t lk_cb_api;
static const lk_cublas_api_t* lk_cb_loaded;
static char lk_cb_reason[320];
static atomic_ullong lk_cb_calls;

/* Resolves every symbol of an opened library into t; 0 on success, else
 * the reason in why. */
static int lk_cb_resolve(void* lib, const char* path, lk_cublas_api_t* t, char* why,
                         size_t cap) {
  memset(t, 0, sizeof *t);
  void* sym;
#define LK_CB_RESOLVE_(req, ret, fn, params)                    \
  (void)dlerror();                                              \
  sym = dlsym(lib, #fn);                                        \
  if (!sym && (req)) {                                          \
    snprintf(why, cap, "%s: symbol %s missing", path, #fn);     \
    memset(t, 0, sizeof *t);                                    \
    return -1;                                                  \
  }                                                             \
  memcpy(&t->fn, &sym, sizeof sym);
  LK_CUBLAS_SYMBOLS(LK_CB_RESOLVE_)
#undef LK_CB_RESOLVE_
  t->lib = lib;
  lk_strlcpy(t->path, path, sizeof t->path);
  if (t->cublasGetProperty) {
    if (t->cublasGetProperty(LK_CUBLAS_MAJOR_VERSION, &t->major) != CUBLAS_STATUS_SUCCESS)
      t->major = 0;
    if (t->cublasGetProperty(LK_CUBLAS_MINOR_VERSION, &t->minor) != CUBLAS_STATUS_SUCCESS)
      t->minor = 0;
    if (t->cublasGetProperty(LK_CUBLAS_PATCH_LEVEL, &t->patch) != CUBLAS_STATUS_SUCCESS)
      t->patch = 0;
  }
  return 0;
}

/* Opens and resolves `path`; 0 on success.  driver_major: the newest CUDA
 * major version the driver supports (0: unknown). */
static int lk_cb_try(const char* path, int driver_major, char* why, size_t cap) {
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(why, cap, "%s not found", path);
    return -1;
  }
  lk_cublas_api_t t;
  if (lk_cb_resolve(lib, path, &t, why, cap) != 0) {
    dlclose(lib);
    return -1;
  }
  if (driver_major > 0 && t.major > driver_major) {
    snprintf(why, cap, "%s is cuBLAS %d.%d, which needs a CUDA %d driver (this driver: CUDA %d)",
             path, t.major, t.minor, t.major, driver_major);
    dlclose(lib);
    return -1;
  }
  lk_cb_api = t;
  lk_cb_loaded = &lk_cb_api;
  return 0;
}

static void lk_cb_load(void) {
  if (!lk_env_flag("LIGHTOS_CUDA_BLAS", true)) {
    snprintf(lk_cb_reason, sizeof lk_cb_reason, "cuBLAS disabled (LIGHTOS_CUDA_BLAS=0)");
    return;
  }
  int driver_major = 0;
  const lk_cuda_api_t* cu = lk_cuda_api_get(NULL, 0);
  int v = 0;
  if (cu && cu->cuDriverGetVersion(&v) == CUDA_SUCCESS && v > 0) driver_major = v / 1000;
  char why[256] = "";
  const char* env = getenv("LIGHTOS_CUBLAS_LIBRARY");
  if (env && env[0]) {
    if (lk_cb_try(env, driver_major, why, sizeof why) != 0)
      snprintf(lk_cb_reason, sizeof lk_cb_reason, "%s", why);
    return;
  }
  static const struct {
    const char* name;
    int major; /* of a versioned name, 0 unknown */
  } names[] = {{"libcublas.so.13", 13}, {"libcublas.so.12", 12}, {"libcublas.so", 0}};
  char skipped[200] = "";
  size_t len = 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
    if (driver_major > 0 && names[i].major > driver_major) {
      lk_sbprintf(skipped, sizeof skipped, &len, "%s%s", len ? ", " : "", names[i].name);
      continue;
    }
    if (lk_cb_try(names[i].name, driver_major, why, sizeof why) == 0) {
      LK_LOG_INFO("cuda: native GEMM through %s (cuBLAS %d.%d.%d)", lk_cb_api.path,
                  lk_cb_api.major, lk_cb_api.minor, lk_cb_api.patch);
      return;
    }
    /* A library that exists but cannot be used says more than "not found". */
    if (!strstr(why, "not found")) {
      snprintf(lk_cb_reason, sizeof lk_cb_reason, "%s", why);
      continue;
    }
  }
  if (!lk_cb_reason[0])
    snprintf(lk_cb_reason, sizeof lk_cb_reason,
             "libcublas not found (tried libcublas.so.13, libcublas.so.12, libcublas.so%s%s%s)",
             len ? "; skipped " : "", skipped, len ? " as too new for the driver" : "");
}

const lk_cublas_api_t* lk_cublas_api_get(char* reason, size_t cap) {
  pthread_once(&lk_cb_once, lk_cb_load);
  if (!lk_cb_loaded && reason && cap) snprintf(reason, cap, "%s", lk_cb_reason);
  return lk_cb_loaded;
}

static const char* lk_cb_own_name(cublasStatus_t s) {
  switch (s) {
#define LK_CB_NAME_(n) \
  case n:              \
    return #n;
    LK_CB_NAME_(CUBLAS_STATUS_SUCCESS)
    LK_CB_NAME_(CUBLAS_STATUS_NOT_INITIALIZED)
    LK_CB_NAME_(CUBLAS_STATUS_ALLOC_FAILED)
    LK_CB_NAME_(CUBLAS_STATUS_INVALID_VALUE)
    LK_CB_NAME_(CUBLAS_STATUS_ARCH_MISMATCH)
    LK_CB_NAME_(CUBLAS_STATUS_MAPPING_ERROR)
    LK_CB_NAME_(CUBLAS_STATUS_EXECUTION_FAILED)
    LK_CB_NAME_(CUBLAS_STATUS_INTERNAL_ERROR)
    LK_CB_NAME_(CUBLAS_STATUS_NOT_SUPPORTED)
    LK_CB_NAME_(CUBLAS_STATUS_LICENSE_ERROR)
#undef LK_CB_NAME_
    default:
      return "CUBLAS_STATUS_UNKNOWN";
  }
}

const char* lk_cublas_status_name(cublasStatus_t s) {
  if (lk_cb_loaded && lk_cb_loaded->cublasGetStatusName) {
    const char* n = lk_cb_loaded->cublasGetStatusName(s);
    if (n && n[0]) return n;
  }
  return lk_cb_own_name(s);
}

static const char* lk_cb_status_text(cublasStatus_t s) {
  if (lk_cb_loaded && lk_cb_loaded->cublasGetStatusString) {
    const char* t = lk_cb_loaded->cublasGetStatusString(s);
    if (t) return t;
  }
  return "";
}

static lightos_status_t lk_cb_status_of(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_ALLOC_FAILED: return LIGHTOS_OUT_OF_MEMORY;
    case CUBLAS_STATUS_INVALID_VALUE: return LIGHTOS_INVALID_ARGUMENT;
    case CUBLAS_STATUS_NOT_INITIALIZED:
    case CUBLAS_STATUS_LICENSE_ERROR: return LIGHTOS_UNAVAILABLE;
    case CUBLAS_STATUS_ARCH_MISMATCH:
    case CUBLAS_STATUS_NOT_SUPPORTED: return LIGHTOS_UNSUPPORTED;
    default: return LIGHTOS_INTERNAL;
  }
}

/* Raises a cuBLAS failure: the cuBLAS status name and code as the native
 * error. */
static lightos_status_t lk_cb_fail(const lk_cu_context_t* c, cublasStatus_t st, const char* call,
                                   const char* what) {
  const char* text = lk_cb_status_text(st);
  return LK_FAIL_NATIVE(lk_cb_status_of(st), "cuda", lk_cublas_status_name(st), st,
                        "%s failed on %s (%s, %d)%s%s%s%s", call,
                        c ? c->base.device->info.uri : "cuda", lk_cublas_status_name(st), (int)st,
                        text[0] ? ": " : "", text, what && what[0] ? "; " : "", what ? what : "");
}

unsigned long long lk_cuda_blas_call_count(void) { return atomic_load(&lk_cb_calls); }

/* ---- handles, one per queue ---------------------------------------------------- */

typedef struct lk_cb_slot {
  const lk_hal_queue_t* queue;
  const lk_cuda_api_t* cu;
  CUdevice dev;
  CUcontext ctx;          /* the primary context the handle belongs to */
  bool retained;          /* we hold a cuDevicePrimaryCtxRetain */
  cublasHandle_t handle;  /* NULL: creation failed (the queue goes portable) */
  CUstream stream;        /* set on the handle (under the queue's submit lock) */
  bool stream_set;
} lk_cb_slot_t;

static pthread_mutex_t lk_cb_lock = PTHREAD_MUTEX_INITIALIZER;
static lk_cb_slot_t** lk_cb_slots;
static size_t lk_cb_nslots, lk_cb_capslots;
static atomic_bool lk_cb_warned;

/* Destroys a slot's handle and drops its context reference (lock held).
 * Leaves the thread's current context as it was. */
static void lk_cb_slot_release(lk_cb_slot_t* s) {
  const lk_cuda_api_t* cu = s->cu;
  if (s->handle) {
    CUcontext cur = NULL;
    bool have_cur = cu->cuCtxGetCurrent(&cur) == CUDA_SUCCESS;
    if (cu->cuCtxSetCurrent(s->ctx) == CUDA_SUCCESS) {
      cublasStatus_t st = lk_cb_api.cublasDestroy_v2(s->handle);
      if (st) LK_LOG_DEBUG("cuda: cublasDestroy: %s", lk_cublas_status_name(st));
    }
    if (have_cur) cu->cuCtxSetCurrent(cur);
  }
  s->handle = NULL;
  if (s->retained) cu->cuDevicePrimaryCtxRelease_v2(s->dev);
  s->retained = false;
  s->stream = NULL;
  s->stream_set = false;
}

/* Creates the handle of a slot for context c (lock held, c current). */
static void lk_cb_slot_create(lk_cb_slot_t* s, lk_cu_context_t* c) {
  const lk_cuda_api_t* cu = c->api;
  s->cu = cu;
  s->dev = c->device->dev;
  s->ctx = c->ctx;
  s->handle = NULL;
  s->stream = NULL;
  s->stream_set = false;
  CUcontext pc = NULL;
  CUresult r = cu->cuDevicePrimaryCtxRetain(&pc, s->dev);
  s->retained = r == CUDA_SUCCESS;
  cublasStatus_t st = CUBLAS_STATUS_NOT_INITIALIZED;
  if (s->retained && pc == c->ctx) st = lk_cb_api.cublasCreate_v2(&s->handle);
  if (st == CUBLAS_STATUS_SUCCESS) {
    /* f16/bf16 results: reductions (split-K) stay in f32. */
    st = lk_cb_api.cublasSetMathMode(
        s->handle, CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
    if (st != CUBLAS_STATUS_SUCCESS) {
      lk_cb_api.cublasDestroy_v2(s->handle);
      s->handle = NULL;
    }
  } else {
    s->handle = NULL;
  }
  if (!s->handle) {
    if (!atomic_exchange(&lk_cb_warned, true))
      LK_LOG_WARN("%s: cuBLAS (%s) cannot be used (%s: %s%s%s); GEMMs use the portable kernel",
                  c->base.device->info.uri, lk_cb_api.path,
                  r != CUDA_SUCCESS ? "cuDevicePrimaryCtxRetain" : "cublasCreate",
                  r != CUDA_SUCCESS ? lk_cuda_error_name(r) : lk_cublas_status_name(st),
                  r == CUDA_SUCCESS && lk_cb_status_text(st)[0] ? ", " : "",
                  r == CUDA_SUCCESS ? lk_cb_status_text(st) : "");
    if (s->retained) cu->cuDevicePrimaryCtxRelease_v2(s->dev);
    s->retained = false;
  }
}

/* The queue's slot, created on first use; NULL when the queue has no
 * usable handle (the caller then answers UNSUPPORTED). */
static lk_cb_slot_t* lk_cb_slot_get(lk_hal_queue_t* hq, lk_cu_context_t* c) {
  pthread_mutex_lock(&lk_cb_lock);
  lk_cb_slot_t* s = NULL;
  for (size_t i = 0; i < lk_cb_nslots; ++i)
    if (lk_cb_slots[i]->queue == hq) {
      s = lk_cb_slots[i];
      break;
    }
  if (s && s->ctx == c->ctx && s->dev == c->device->dev) {
    pthread_mutex_unlock(&lk_cb_lock);
    return s->handle ? s : NULL;
  }
  if (s) {
    /* A queue at the address of a destroyed one, on another device. */
    lk_cb_slot_release(s);
  } else {
    if (lk_cb_nslots == lk_cb_capslots) {
      size_t cap = lk_cb_capslots ? lk_cb_capslots * 2 : 8;
      lk_cb_slot_t** grown = realloc(lk_cb_slots, cap * sizeof *grown);
      if (!grown) {
        pthread_mutex_unlock(&lk_cb_lock);
        return NULL;
      }
      lk_cb_slots = grown;
      lk_cb_capslots = cap;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
      pthread_mutex_unlock(&lk_cb_lock);
      return NULL;
    }
    s->queue = hq;
    lk_cb_slots[lk_cb_nslots++] = s;
  }
  lk_cb_slot_create(s, c);
  pthread_mutex_unlock(&lk_cb_lock);
  return s->handle ? s : NULL;
}

void lk_cuda_blas_queue_destroyed(lk_hal_queue_t* hq) {
  pthread_mutex_lock(&lk_cb_lock);
  for (size_t i = 0; i < lk_cb_nslots; ++i) {
    if (lk_cb_slots[i]->queue != hq) continue;
    lk_cb_slot_t* s = lk_cb_slots[i];
    lk_cb_slot_release(s);
    free(s);
    lk_cb_slots[i] = lk_cb_slots[--lk_cb_nslots];
    break;
  }
  pthread_mutex_unlock(&lk_cb_lock);
}

/* ---- the GEMM -------------------------------------------------------------------- */

/* One cuBLAS call, in cuBLAS's (column-major) terms. */
typedef struct lk_cb_job {
  lk_cu_context_t* ctx;
  lk_cb_slot_t* slot;
  int op_a, op_b;
  int64_t m, n, k;
  const void* a;
  int64_t lda;
  long long stride_a;
  const void* b;
  int64_t ldb;
  long long stride_b;
  void* c;
  int64_t ldc;
  long long stride_c;
  int64_t batch;
  int dtype;   /* cudaDataType of A, B and C */
  int compute; /* cublasComputeType_t */
  bool wide;   /* the _64 entry points */
  union {
    float f;
    double d;
  } alpha, beta;
} lk_cb_job_t;

static bool lk_cb_fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

static int64_t lk_cb_max1(int64_t v) { return v > 1 ? v : 1; }

/* Fills the cuBLAS description of a HAL GEMM (row-major, see the top of
 * the file); false when cuBLAS cannot take it.  cc: the device's compute
 * capability (major * 10 + minor); wide_ok: the _64 entry points exist. */
static bool lk_cb_plan(const lk_hal_gemm_t* g, int cc, bool wide_ok, bool tf32,
                       lk_cb_job_t* j) {
  memset(j, 0, sizeof *j);
  switch (g->dtype) {
    case LIGHTOS_DTYPE_F32:
      j->dtype = CUDA_R_32F;
      j->compute = tf32 && cc >= 80 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
      break;
    case LIGHTOS_DTYPE_F64:
      j->dtype = CUDA_R_64F;
      j->compute = CUBLAS_COMPUTE_64F;
      break;
    case LIGHTOS_DTYPE_F16:
      if (cc < 53) return false;
      j->dtype = CUDA_R_16F;
      j->compute = CUBLAS_COMPUTE_32F;
      break;
    case LIGHTOS_DTYPE_BF16:
      if (cc < 80) return false;
      j->dtype = CUDA_R_16BF;
      j->compute = CUBLAS_COMPUTE_32F;
      break;
    default:
      return false;
  }
  if (g->m <= 0 || g->n <= 0 || g->k <= 0 || g->batch < 1) return false;
  /* Row-major leading dimensions: A is m x k (k x m when transposed), B is
   * k x n (n x k), C is m x n. */
  if (g->lda < lk_cb_max1(g->trans_a ? g->m : g->k) ||
      g->ldb < lk_cb_max1(g->trans_b ? g->k : g->n) || g->ldc < lk_cb_max1(g->n))
    return false;
  if (g->batch > 1 && (g->a_batch_stride < 0 || g->b_batch_stride < 0 || g->c_batch_stride <= 0))
    return false;
  if (!g->a_mem || !g->b_mem || !g->c_mem || !g->a_mem->device_ptr || !g->b_mem->device_ptr ||
      !g->c_mem->device_ptr)
    return false;
  /* C^T = op(B)^T op(A)^T, column-major. */
  j->m = g->n;
  j->n = g->m;
  j->k = g->k;
  j->op_a = g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  j->a = (const char*)g->b_mem->device_ptr + g->b_off;
  j->lda = g->ldb;
  j->stride_a = g->batch > 1 ? (long long)g->b_batch_stride : 0;
  j->op_b = g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  j->b = (const char*)g->a_mem->device_ptr + g->a_off;
  j->ldb = g->lda;
  j->stride_b = g->batch > 1 ? (long long)g->a_batch_stride : 0;
  j->c = (char*)g->c_mem->device_ptr + g->c_off;
  j->ldc = g->ldc;
  j->stride_c = g->batch > 1 ? (long long)g->c_batch_stride : 0;
  j->batch = g->batch;
  const bool narrow = lk_cb_fits_int(j->m) && lk_cb_fits_int(j->n) && lk_cb_fits_int(j->k) &&
                      lk_cb_fits_int(j->lda) && lk_cb_fits_int(j->ldb) &&
                      lk_cb_fits_int(j->ldc) && lk_cb_fits_int(j->batch);
  if (!narrow && !wide_ok) return false;
  j->wide = !narrow;
  if (j->compute == CUBLAS_COMPUTE_64F) {
    j->alpha.d = g->alpha;
    j->beta.d = g->beta;
  } else {
    j->alpha.f = (float)g->alpha;
    j->beta.f = (float)g->beta;
  }
  return true;
}

/* Runs on the queue's stream under its submit lock (lk_cu_queue_enqueue_native).
 * LIGHTOS_UNSUPPORTED without an error when cuBLAS refused the case
 * (nothing was enqueued). */
static lightos_status_t lk_cb_enqueue(void* stream, void* arg) {
  lk_cb_job_t* j = arg;
  const lk_cublas_api_t* api = &lk_cb_api;
  lk_cb_slot_t* s = j->slot;
  cublasStatus_t st;
  if (!s->stream_set || s->stream != stream) {
    st = api->cublasSetStream_v2(s->handle, stream);
    if (st) return lk_cb_fail(j->ctx, st, "cublasSetStream", "");
    s->stream = stream;
    s->stream_set = true;
  }
  const char* call;
  if (j->batch == 1) {
    call = j->wide ? "cublasGemmEx_64" : "cublasGemmEx";
    if (j->wide)
      st = api->cublasGemmEx_64(s->handle, j->op_a, j->op_b, j->m, j->n, j->k, &j->alpha, j->a,
                                j->dtype, j->lda, j->b, j->dtype, j->ldb, &j->beta, j->c,
                                j->dtype, j->ldc, j->compute, CUBLAS_GEMM_DEFAULT);
    else
      st = api->cublasGemmEx(s->handle, j->op_a, j->op_b, (int)j->m, (int)j->n, (int)j->k,
                             &j->alpha, j->a, j->dtype, (int)j->lda, j->b, j->dtype, (int)j->ldb,
                             &j->beta, j->c, j->dtype, (int)j->ldc, j->compute,
                             CUBLAS_GEMM_DEFAULT);
  } else {
    call = j->wide ? "cublasGemmStridedBatchedEx_64" : "cublasGemmStridedBatchedEx";
    if (j->wide)
      st = api->cublasGemmStridedBatchedEx_64(
          s->handle, j->op_a, j->op_b, j->m, j->n, j->k, &j->alpha, j->a, j->dtype, j->lda,
          j->stride_a, j->b, j->dtype, j->ldb, j->stride_b, &j->beta, j->c, j->dtype, j->ldc,
          j->stride_c, j->batch, j->compute, CUBLAS_GEMM_DEFAULT);
    else
      st = api->cublasGemmStridedBatchedEx(
          s->handle, j->op_a, j->op_b, (int)j->m, (int)j->n, (int)j->k, &j->alpha, j->a,
          j->dtype, (int)j->lda, j->stride_a, j->b, j->dtype, (int)j->ldb, j->stride_b,
          &j->beta, j->c, j->dtype, (int)j->ldc, j->stride_c, (int)j->batch, j->compute,
          CUBLAS_GEMM_DEFAULT);
  }
  if (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_ARCH_MISMATCH) {
    LK_LOG_DEBUG("cuda: %s refused a %lldx%lldx%lld GEMM (%s): portable kernel", call,
                 (long long)j->m, (long long)j->n, (long long)j->k, lk_cublas_status_name(st));
    return LIGHTOS_UNSUPPORTED;
  }
  if (st) {
    char what[128];
    snprintf(what, sizeof what, "a %lldx%lldx%lld GEMM, batch %lld", (long long)j->n,
             (long long)j->m, (long long)j->k, (long long)j->batch);
    return lk_cb_fail(j->ctx, st, call, what);
  }
  atomic_fetch_add(&lk_cb_calls, 1);
  return LIGHTOS_SUCCESS;
}

/* A thread's error record, to raise again later. */
typedef struct lk_cb_saved_err {
  lightos_status_t status;
  char name[64];
  int64_t code;
  char msg[512];
} lk_cb_saved_err_t;

static void lk_cb_err_save(lk_cb_saved_err_t* e) {
  const lightos_error_info_t* i = lightos_last_error();
  e->status = i->status;
  lk_strlcpy(e->name, i->native_name, sizeof e->name);
  e->code = i->native_code;
  lk_strlcpy(e->msg, i->message, sizeof e->msg);
}

static lightos_status_t lk_cb_err_raise(const lk_cb_saved_err_t* e) {
  return LK_FAIL_NATIVE(e->status, "cuda", e->name, e->code, "%s", e->msg);
}

/* Completes keep_alive in queue order with the saved failure. */
static lightos_status_t lk_cb_failed_enqueue(void* stream, void* arg) {
  (void)stream;
  return lk_cb_err_raise(arg);
}

lightos_status_t lk_cuda_native_gemm(lk_hal_queue_t* queue, const lk_hal_gemm_t* g,
                                     lk_cmd_t* keep_alive) {
  if (!queue || !g || !keep_alive || !lk_cuda_is_context(queue->context))
    return LIGHTOS_UNSUPPORTED;
  /* NVIDIA only: a HIP device (the same backend code) has no cuBLAS. */
  if (queue->context->device->info.backend != LIGHTOS_BACKEND_CUDA) return LIGHTOS_UNSUPPORTED;
  /* alpha == 0 must not read A and B (BLAS semantics); cuBLAS 13 computes
   * 0 * NaN for f16/bf16 (seen on an H200), so that case goes portable. */
  if (g->alpha == 0.0) return LIGHTOS_UNSUPPORTED;
  lk_cu_context_t* c = (lk_cu_context_t*)queue->context;
  const int cc = c->device->cc_major * 10 + c->device->cc_minor;
  const lk_cublas_api_t* api = lk_cublas_api_get(NULL, 0);
  if (!api) return LIGHTOS_UNSUPPORTED;
  lk_cb_job_t job;
  const bool wide_ok = api->cublasGemmEx_64 && api->cublasGemmStridedBatchedEx_64;
  if (!lk_cb_plan(g, cc, wide_ok, lk_env_flag("LIGHTOS_ALLOW_TF32", false), &job))
    return LIGHTOS_UNSUPPORTED;
  /* The context current before the handle is made (cublasCreate binds to
   * it); a lost context is the portable path's to report. */
  if (atomic_load(&c->lost)) return LIGHTOS_UNSUPPORTED;
  lk_cb_saved_err_t before;
  lk_cb_err_save(&before);
  if (lk_cu_make_current(c) != LIGHTOS_SUCCESS) {
    if (before.status) lk_cb_err_raise(&before);
    else lightos_clear_error();
    return LIGHTOS_UNSUPPORTED;
  }
  job.ctx = c;
  job.slot = lk_cb_slot_get(queue, c);
  if (!job.slot) return LIGHTOS_UNSUPPORTED;

  lightos_status_t s = lk_cu_queue_enqueue_native(queue, NULL, lk_cb_enqueue, &job);
  if (s == LIGHTOS_UNSUPPORTED) {
    /* cuBLAS refused it and nothing was enqueued: the caller takes the
     * portable kernel (and still owns keep_alive). */
    if (before.status) lk_cb_err_raise(&before);
    else lightos_clear_error();
    return LIGHTOS_UNSUPPORTED;
  }
  if (s != LIGHTOS_SUCCESS) {
    /* keep_alive completes in order, with the failure. */
    lk_cb_saved_err_t err;
    lk_cb_err_save(&err);
    err.status = s;
    (void)lk_cu_queue_enqueue_native(queue, keep_alive, lk_cb_failed_enqueue, &err);
    return lk_cb_err_raise(&err);
  }
  keep_alive->kind = LK_CMD_MARKER;
  return queue->vtbl->submit(queue, keep_alive);
}
