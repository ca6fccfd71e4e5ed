/* A stand-in for libcuda.so.1 and libnvrtc, for testing the CUDA backend's
 * own logic (queues, the completion thread, events, host work, copies,
 * errors) on machines without an NVIDIA GPU, CI included.
 *
 * It implements exactly the entry points of src/hal/cuda/cuda_symbols.h
 * that the backend requires (the compiler checks every definition against
 * that table), on the host: device memory is host memory, a stream is a
 * worker thread that runs its operations in order (copies, fills, event
 * records, kernels), events complete when their stream reaches them.
 * Kernels compute nothing; a launch is an operation on the stream, and a
 * kernel whose name starts with
 *   "slow"  takes 2 ms on the stream,
 *   "fault" makes the context's error sticky (CUDA_ERROR_ILLEGAL_ADDRESS),
 * so that tests can order work and lose a device.  "NVRTC" accepts any
 * source but one containing "lk_standin_compile_error", and returns a
 * placeholder image that only this library loads.  LK_STANDIN_DEVICES sets
 * the device count (default 1).
 *
 * Contexts are checked as the driver documents them: a module is loaded
 * into the current context and its functions launch only on that
 * context's streams, with it current; a library (cuLibraryLoadData) is
 * context-independent and its kernels launch in the context of the
 * stream, whichever is current; events are made in the current context
 * and recorded only on its streams.  LK_STANDIN_NO_LIBRARY=1 makes
 * cuLibraryLoadData fail (CUDA_ERROR_NOT_SUPPORTED), as a driver without
 * libraries would.  lk_standin_refused() counts the calls refused for a
 * wrong or missing context (tests read it: the backend may degrade
 * quietly where such a call fails), lk_standin_launches() the launches
 * accepted (when work reached the stream). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hal/cuda/cuda_symbols.h"

/* Every entry point of the table, declared from it: a definition below
 * that does not match its line fails to compile. */
#define X(req, hreq, ret, name, hip, params) ret name params;
LK_CUDA_DRIVER_SYMBOLS(X)
LK_NVRTC_SYMBOLS(X)
#undef X

#define LK_SI_MAXDEV 8
#define LK_SI_IMAGE "LKSTANDIN"

struct lk_CUctx_st {
  int dev;
  atomic_int sticky; /* a sticky error: every later call fails with it */
};
/* A module's function and a library's kernel share this layout (a
 * CUkernel is passed to cuLaunchKernel as a CUfunction). */
enum { LK_SI_FUNC = 0x46554e43, LK_SI_KERNEL = 0x4b45524e };
struct lk_CUfunc_st {
  int tag; /* LK_SI_FUNC or LK_SI_KERNEL */
  struct lk_CUfunc_st* next;
  struct lk_CUctx_st* ctx; /* a function's context */
  char name[128];
};
struct lk_CUkern_st {
  struct lk_CUfunc_st f;
  struct lk_CUfunc_st* funcs; /* its functions in contexts (cuKernelGetFunction) */
};
struct lk_CUmod_st {
  struct lk_CUctx_st* ctx;
  struct lk_CUfunc_st* funcs;
};
struct lk_CUlib_st {
  struct lk_CUfunc_st* kernels; /* CUkernels, then their per-context functions */
};
struct lk_CUevent_st {
  pthread_mutex_t m;
  pthread_cond_t cv;
  unsigned long recorded, reached;
  uint64_t t_ns;
  struct lk_CUctx_st* ctx;
  unsigned inflight; /* records not reached yet */
  bool dead;         /* destroyed: freed when the last record is reached */
};

enum { OP_COPY, OP_SET, OP_KERNEL, OP_EVENT };

typedef struct lk_si_op {
  int kind;
  struct lk_si_op* next;
  void* dst;
  const void* src;
  void* staged; /* a copy of host source data, freed after */
  size_t size, count, pitch;
  uint32_t value;
  unsigned vsize;
  bool slow, fault; /* a kernel's: by its name */
  CUevent ev;
  unsigned long gen;
} lk_si_op_t;

struct lk_CUstream_st {
  pthread_mutex_t m;
  pthread_cond_t cv;
  lk_si_op_t *head, *tail;
  bool busy, stop;
  pthread_t th;
  struct lk_CUctx_st* ctx;
};

static struct lk_CUctx_st lk_si_ctx[LK_SI_MAXDEV];
static _Thread_local struct lk_CUctx_st* lk_si_current;
static atomic_int lk_si_refused_calls;

static atomic_int lk_si_launches;

int lk_standin_refused(void);
int lk_standin_refused(void) { return atomic_load(&lk_si_refused_calls); }
/* Kernel launches accepted so far. */
int lk_standin_launches(void);
int lk_standin_launches(void) { return atomic_load(&lk_si_launches); }

/* A call refused for its context. */
static CUresult lk_si_refuse(CUresult r) {
  atomic_fetch_add(&lk_si_refused_calls, 1);
  return r;
}

static uint64_t lk_si_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int lk_si_ndev(void) {
  const char* v = getenv("LK_STANDIN_DEVICES");
  int n = v ? atoi(v) : 1;
  return n < 0 ? 0 : n > LK_SI_MAXDEV ? LK_SI_MAXDEV : n;
}

/* The calling thread's context's sticky error (any context's when none is
 * current: the stand-in's devices fail together). */
static CUresult lk_si_sticky(const struct lk_CUctx_st* c) {
  if (c) return atomic_load(&c->sticky);
  for (int i = 0; i < LK_SI_MAXDEV; ++i)
    if (atomic_load(&lk_si_ctx[i].sticky)) return atomic_load(&lk_si_ctx[i].sticky);
  return CUDA_SUCCESS;
}

/* ---- streams ---------------------------------------------------------------------- */

static void lk_si_event_free(CUevent e) {
  pthread_mutex_destroy(&e->m);
  pthread_cond_destroy(&e->cv);
  free(e);
}

static void lk_si_run(CUstream s, lk_si_op_t* o) {
  switch (o->kind) {
    case OP_COPY:
      memcpy(o->dst, o->staged ? o->staged : o->src, o->size);
      break;
    case OP_SET:
      for (size_t i = 0; i < o->count; ++i)
        memcpy((char*)o->dst + i * o->pitch, &o->value, o->vsize);
      break;
    case OP_KERNEL:
      if (atomic_load(&s->ctx->sticky)) break;
      if (o->slow) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
      } else if (o->fault) {
        atomic_store(&s->ctx->sticky, CUDA_ERROR_ILLEGAL_ADDRESS);
      }
      break;
    case OP_EVENT: {
      CUevent e = o->ev;
      pthread_mutex_lock(&e->m);
      e->t_ns = lk_si_now();
      if (o->gen > e->reached) e->reached = o->gen;
      bool gone = --e->inflight == 0 && e->dead;
      pthread_cond_broadcast(&e->cv);
      pthread_mutex_unlock(&e->m);
      if (gone) lk_si_event_free(e);
      break;
    }
  }
  free(o->staged);
  free(o);
}

static void* lk_si_worker(void* arg) {
  CUstream s = arg;
  pthread_mutex_lock(&s->m);
  for (;;) {
    while (!s->head && !s->stop) pthread_cond_wait(&s->cv, &s->m);
    if (!s->head) break;
    lk_si_op_t* o = s->head;
    s->head = o->next;
    if (!s->head) s->tail = NULL;
    s->busy = true;
    pthread_mutex_unlock(&s->m);
    lk_si_run(s, o);
    pthread_mutex_lock(&s->m);
    s->busy = false;
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->m);
  return NULL;
}

static CUresult lk_si_push(CUstream s, lk_si_op_t* o) {
  pthread_mutex_lock(&s->m);
  if (s->tail) s->tail->next = o;
  else s->head = o;
  s->tail = o;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->m);
  return CUDA_SUCCESS;
}

static void lk_si_drain(CUstream s) {
  pthread_mutex_lock(&s->m);
  while (s->head || s->busy) pthread_cond_wait(&s->cv, &s->m);
  pthread_mutex_unlock(&s->m);
}

static lk_si_op_t* lk_si_op(int kind) {
  lk_si_op_t* o = calloc(1, sizeof *o);
  if (o) o->kind = kind;
  return o;
}

/* ---- the driver API --------------------------------------------------------------- */

CUresult cuInit(unsigned int flags) { return flags ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS; }

CUresult cuDriverGetVersion(int* version) {
  *version = 13000;
  return CUDA_SUCCESS;
}

static const char* lk_si_err_name(CUresult e) {
  switch (e) {
    case CUDA_SUCCESS: return "CUDA_SUCCESS";
    case CUDA_ERROR_INVALID_VALUE: return "CUDA_ERROR_INVALID_VALUE";
    case CUDA_ERROR_OUT_OF_MEMORY: return "CUDA_ERROR_OUT_OF_MEMORY";
    case CUDA_ERROR_INVALID_IMAGE: return "CUDA_ERROR_INVALID_IMAGE";
    case CUDA_ERROR_INVALID_HANDLE: return "CUDA_ERROR_INVALID_HANDLE";
    case CUDA_ERROR_NOT_FOUND: return "CUDA_ERROR_NOT_FOUND";
    case CUDA_ERROR_NOT_READY: return "CUDA_ERROR_NOT_READY";
    case CUDA_ERROR_ILLEGAL_ADDRESS: return "CUDA_ERROR_ILLEGAL_ADDRESS";
    case CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED: return "CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED";
    default: return NULL;
  }
}

CUresult cuGetErrorName(CUresult error, const char** out) {
  *out = lk_si_err_name(error);
  return *out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult error, const char** out) {
  *out = lk_si_err_name(error) ? "stand-in driver error" : NULL;
  return *out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuDeviceGetCount(int* count) {
  *count = lk_si_ndev();
  return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  if (ordinal < 0 || ordinal >= lk_si_ndev()) return CUDA_ERROR_INVALID_VALUE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  snprintf(name, (size_t)len, "LightOS stand-in GPU %d", dev);
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attrib, CUdevice dev) {
  switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X:
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: *value = 1024; break;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: *value = 64; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: *value = 0x7fffffff; break;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y:
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: *value = 65535; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *value = 48 << 10; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *value = 227 << 10; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *value = 4; break;
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY:
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: *value = 1; break;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *value = 0x10 + dev; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *value = 9; break;
    default: *value = 0; /* integrated, PCI device/domain, minor, memory pools */
  }
  return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  (void)dev;
  *bytes = (size_t)16 << 30;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetPCIBusId(char* id, int len, CUdevice dev) {
  snprintf(id, (size_t)len, "0000:%02X:00.0", 0x10 + dev);
  return CUDA_SUCCESS;
}

CUresult cuDeviceCanAccessPeer(int* can, CUdevice dev, CUdevice peer) {
  *can = dev != peer;
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext* ctx, CUdevice dev) {
  if (dev < 0 || dev >= lk_si_ndev()) return CUDA_ERROR_INVALID_VALUE;
  lk_si_ctx[dev].dev = dev;
  *ctx = &lk_si_ctx[dev];
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  (void)dev;
  return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
  lk_si_current = ctx;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext* ctx) {
  *ctx = lk_si_current;
  return CUDA_SUCCESS;
}

CUresult cuCtxEnablePeerAccess(CUcontext peer, unsigned int flags) {
  (void)peer;
  (void)flags;
  return CUDA_SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytes) {
  CUresult e = lk_si_sticky(lk_si_current);
  if (e) return e;
  void* p = aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
  memset(p, 0xa5, bytes); /* device memory starts with garbage */
  *dptr = (CUdeviceptr)(uintptr_t)p;
  return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr dptr) {
  free((void*)(uintptr_t)dptr);
  return CUDA_SUCCESS;
}

CUresult cuMemHostAlloc(void** pp, size_t bytes, unsigned int flags) {
  (void)flags;
  *pp = aligned_alloc(256, (bytes + 255) / 256 * 256);
  return *pp ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult cuMemFreeHost(void* p) {
  free(p);
  return CUDA_SUCCESS;
}

CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr* dptr, void* p, unsigned int flags) {
  (void)flags;
  *dptr = (CUdeviceptr)(uintptr_t)p;
  return CUDA_SUCCESS;
}

static CUresult lk_si_copy(void* dst, const void* src, size_t n, CUstream s, bool stage) {
  CUresult e = lk_si_sticky(s->ctx);
  if (e) return e;
  lk_si_op_t* o = lk_si_op(OP_COPY);
  if (!o) return CUDA_ERROR_OUT_OF_MEMORY;
  o->dst = dst;
  o->src = src;
  o->size = n;
  if (stage) { /* pageable host memory is staged before the call returns */
    o->staged = malloc(n ? n : 1);
    if (!o->staged) {
      free(o);
      return CUDA_ERROR_OUT_OF_MEMORY;
    }
    memcpy(o->staged, src, n);
  }
  return lk_si_push(s, o);
}

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, CUstream s) {
  return lk_si_copy((void*)(uintptr_t)dst, src, bytes, s, true);
}

CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, CUstream s) {
  return lk_si_copy(dst, (const void*)(uintptr_t)src, bytes, s, false);
}

CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s) {
  return lk_si_copy((void*)(uintptr_t)dst, (const void*)(uintptr_t)src, bytes, s, false);
}

CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s) {
  return lk_si_copy((void*)(uintptr_t)dst, (const void*)(uintptr_t)src, bytes, s, false);
}

CUresult cuMemcpyPeerAsync(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src,
                           CUcontext src_ctx, size_t bytes, CUstream s) {
  (void)dst_ctx;
  (void)src_ctx;
  return lk_si_copy((void*)(uintptr_t)dst, (const void*)(uintptr_t)src, bytes, s, false);
}

static CUresult lk_si_set(CUdeviceptr dst, uint32_t value, unsigned vsize, size_t count,
                          size_t pitch, CUstream s) {
  CUresult e = lk_si_sticky(s->ctx);
  if (e) return e;
  if (dst % vsize || pitch % vsize) return CUDA_ERROR_INVALID_VALUE;
  lk_si_op_t* o = lk_si_op(OP_SET);
  if (!o) return CUDA_ERROR_OUT_OF_MEMORY;
  o->dst = (void*)(uintptr_t)dst;
  o->value = value;
  o->vsize = vsize;
  o->count = count;
  o->pitch = pitch;
  return lk_si_push(s, o);
}

CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, CUstream s) {
  return lk_si_set(dst, v, 1, n, 1, s);
}

CUresult cuMemsetD16Async(CUdeviceptr dst, unsigned short v, size_t n, CUstream s) {
  return lk_si_set(dst, v, 2, n, 2, s);
}

CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int v, size_t n, CUstream s) {
  return lk_si_set(dst, v, 4, n, 4, s);
}

CUresult cuMemsetD2D32Async(CUdeviceptr dst, size_t pitch, unsigned int v, size_t width,
                            size_t height, CUstream s) {
  if (width != 1) return CUDA_ERROR_INVALID_VALUE; /* the only shape LightOS uses */
  return lk_si_set(dst, v, 4, height, pitch, s);
}

CUresult cuStreamCreate(CUstream* ps, unsigned int flags) {
  (void)flags;
  struct lk_CUctx_st* c = lk_si_current;
  if (!c) return CUDA_ERROR_INVALID_CONTEXT;
  CUstream s = calloc(1, sizeof *s);
  if (!s) return CUDA_ERROR_OUT_OF_MEMORY;
  pthread_mutex_init(&s->m, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->ctx = c;
  if (pthread_create(&s->th, NULL, lk_si_worker, s) != 0) {
    free(s);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *ps = s;
  return CUDA_SUCCESS;
}

CUresult cuStreamDestroy_v2(CUstream s) {
  lk_si_drain(s);
  pthread_mutex_lock(&s->m);
  s->stop = true;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->m);
  pthread_join(s->th, NULL);
  pthread_mutex_destroy(&s->m);
  pthread_cond_destroy(&s->cv);
  free(s);
  return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream s) {
  lk_si_drain(s);
  return lk_si_sticky(s->ctx);
}

CUresult cuStreamQuery(CUstream s) {
  pthread_mutex_lock(&s->m);
  bool busy = s->head || s->busy;
  pthread_mutex_unlock(&s->m);
  CUresult e = lk_si_sticky(s->ctx);
  return e ? e : busy ? CUDA_ERROR_NOT_READY : CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent* pe, unsigned int flags) {
  (void)flags;
  if (!lk_si_current) return lk_si_refuse(CUDA_ERROR_INVALID_CONTEXT);
  CUevent e = calloc(1, sizeof *e);
  if (!e) return CUDA_ERROR_OUT_OF_MEMORY;
  e->ctx = lk_si_current;
  pthread_mutex_init(&e->m, NULL);
  pthread_cond_init(&e->cv, NULL);
  *pe = e;
  return CUDA_SUCCESS;
}

/* As the driver does, an event destroyed while a record of it is still
 * queued goes away once the stream reaches it. */
CUresult cuEventDestroy_v2(CUevent e) {
  pthread_mutex_lock(&e->m);
  e->dead = true;
  bool now = e->inflight == 0;
  pthread_mutex_unlock(&e->m);
  if (now) lk_si_event_free(e);
  return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent e, CUstream s) {
  CUresult err = lk_si_sticky(s->ctx);
  if (err) return err;
  if (e->ctx != s->ctx) return lk_si_refuse(CUDA_ERROR_INVALID_HANDLE);
  lk_si_op_t* o = lk_si_op(OP_EVENT);
  if (!o) return CUDA_ERROR_OUT_OF_MEMORY;
  o->ev = e;
  pthread_mutex_lock(&e->m);
  o->gen = ++e->recorded;
  e->inflight++;
  pthread_mutex_unlock(&e->m);
  return lk_si_push(s, o);
}

CUresult cuEventSynchronize(CUevent e) {
  pthread_mutex_lock(&e->m);
  while (e->reached < e->recorded && !lk_si_sticky(NULL)) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 1000000; /* a sticky error is seen within a millisecond */
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_nsec -= 1000000000L;
      ts.tv_sec++;
    }
    pthread_cond_timedwait(&e->cv, &e->m, &ts);
  }
  pthread_mutex_unlock(&e->m);
  return lk_si_sticky(NULL);
}

CUresult cuEventQuery(CUevent e) {
  pthread_mutex_lock(&e->m);
  bool done = e->reached >= e->recorded;
  pthread_mutex_unlock(&e->m);
  CUresult err = lk_si_sticky(NULL);
  return err ? err : done ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult cuEventElapsedTime(float* ms, CUevent start, CUevent end) {
  if (start->reached < start->recorded || end->reached < end->recorded)
    return CUDA_ERROR_NOT_READY;
  *ms = (float)(((double)end->t_ns - (double)start->t_ns) / 1e6);
  return CUDA_SUCCESS;
}

static void lk_si_free_funcs(struct lk_CUfunc_st* f) {
  while (f) {
    struct lk_CUfunc_st* next = f->next;
    if (f->tag == LK_SI_KERNEL) lk_si_free_funcs(((struct lk_CUkern_st*)(void*)f)->funcs);
    free(f);
    f = next;
  }
}

/* A new function or kernel named name, first on *list. */
static struct lk_CUfunc_st* lk_si_func(struct lk_CUfunc_st** list, int tag,
                                       struct lk_CUctx_st* ctx, const char* name) {
  struct lk_CUfunc_st* f = calloc(1, tag == LK_SI_KERNEL ? sizeof(struct lk_CUkern_st) : sizeof *f);
  if (!f) return NULL;
  f->tag = tag;
  f->ctx = ctx;
  snprintf(f->name, sizeof f->name, "%s", name);
  f->next = *list;
  *list = f;
  return f;
}

CUresult cuModuleLoadData(CUmodule* pm, const void* image) {
  if (!lk_si_current) return lk_si_refuse(CUDA_ERROR_INVALID_CONTEXT);
  if (strncmp(image, LK_SI_IMAGE, sizeof LK_SI_IMAGE - 1)) return CUDA_ERROR_INVALID_IMAGE;
  CUmodule m = calloc(1, sizeof *m);
  if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
  m->ctx = lk_si_current;
  *pm = m;
  return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule m) {
  lk_si_free_funcs(m->funcs);
  free(m);
  return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction* pf, CUmodule m, const char* name) {
  CUfunction f = lk_si_func(&m->funcs, LK_SI_FUNC, m->ctx, name);
  if (!f) return CUDA_ERROR_OUT_OF_MEMORY;
  *pf = f;
  return CUDA_SUCCESS;
}

CUresult cuLibraryLoadData(CUlibrary* pl, const void* code, CUjit_option* jit_options,
                           void** jit_values, unsigned int num_jit_options,
                           CUlibraryOption* library_options, void** library_values,
                           unsigned int num_library_options) {
  (void)jit_options;
  (void)jit_values;
  (void)library_options;
  (void)library_values;
  if (num_jit_options || num_library_options) return CUDA_ERROR_INVALID_VALUE;
  const char* off = getenv("LK_STANDIN_NO_LIBRARY");
  if (off && atoi(off)) return CUDA_ERROR_NOT_SUPPORTED;
  if (strncmp(code, LK_SI_IMAGE, sizeof LK_SI_IMAGE - 1)) return CUDA_ERROR_INVALID_IMAGE;
  CUlibrary l = calloc(1, sizeof *l);
  if (!l) return CUDA_ERROR_OUT_OF_MEMORY;
  *pl = l;
  return CUDA_SUCCESS;
}

CUresult cuLibraryUnload(CUlibrary l) {
  lk_si_free_funcs(l->kernels);
  free(l);
  return CUDA_SUCCESS;
}

CUresult cuLibraryGetKernel(CUkernel* pk, CUlibrary l, const char* name) {
  struct lk_CUfunc_st* f = lk_si_func(&l->kernels, LK_SI_KERNEL, NULL, name);
  if (!f) return CUDA_ERROR_OUT_OF_MEMORY;
  *pk = (CUkernel)(void*)f;
  return CUDA_SUCCESS;
}

/* The kernel's function in the current context (kept with the kernel). */
CUresult cuKernelGetFunction(CUfunction* pf, CUkernel k) {
  struct lk_CUfunc_st* kf = &k->f;
  if (kf->tag != LK_SI_KERNEL) return CUDA_ERROR_INVALID_HANDLE;
  if (!lk_si_current) return lk_si_refuse(CUDA_ERROR_INVALID_CONTEXT);
  CUfunction f = lk_si_func(&k->funcs, LK_SI_FUNC, lk_si_current, kf->name);
  if (!f) return CUDA_ERROR_OUT_OF_MEMORY;
  *pf = f;
  return CUDA_SUCCESS;
}

CUresult cuFuncGetAttribute(int* value, CUfunction_attribute attrib, CUfunction f) {
  (void)f;
  *value = attrib == 0 ? 1024 : 0; /* CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK */
  return CUDA_SUCCESS;
}

CUresult cuFuncSetAttribute(CUfunction f, CUfunction_attribute attrib, int value) {
  (void)f;
  (void)attrib;
  (void)value;
  return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                        unsigned int bx, unsigned int by, unsigned int bz, unsigned int smem,
                        CUstream s, void** params, void** extra) {
  (void)params;
  (void)extra;
  CUresult e = lk_si_sticky(s->ctx);
  if (e) return e;
  if (f->tag == LK_SI_FUNC && (f->ctx != s->ctx || lk_si_current != s->ctx))
    return lk_si_refuse(f->ctx != s->ctx ? CUDA_ERROR_INVALID_HANDLE : CUDA_ERROR_INVALID_CONTEXT);
  if (f->tag != LK_SI_FUNC && f->tag != LK_SI_KERNEL) return CUDA_ERROR_INVALID_HANDLE;
  if (!gx || !gy || !gz || !bx || !by || !bz || gy > 65535 || gz > 65535 ||
      (size_t)bx * by * bz > 1024 || bz > 64 || smem > (227u << 10))
    return CUDA_ERROR_INVALID_VALUE;
  lk_si_op_t* o = lk_si_op(OP_KERNEL);
  if (!o) return CUDA_ERROR_OUT_OF_MEMORY;
  atomic_fetch_add(&lk_si_launches, 1);
  o->slow = !strncmp(f->name, "slow", 4);
  o->fault = !strncmp(f->name, "fault", 5);
  return lk_si_push(s, o);
}

/* ---- NVRTC -------------------------------------------------------------------------- */

struct lk_nvrtcProgram_st {
  char* src;
  const char* log;
};

const char* nvrtcGetErrorString(nvrtcResult result) {
  return result == 0 ? "NVRTC_SUCCESS" : result == 6 ? "NVRTC_ERROR_COMPILATION"
                                                     : "NVRTC_ERROR_INVALID_INPUT";
}

nvrtcResult nvrtcVersion(int* major, int* minor) {
  *major = 13;
  *minor = 0;
  return 0;
}

nvrtcResult nvrtcCreateProgram(nvrtcProgram* prog, const char* src, const char* name,
                               int num_headers, const char* const* headers,
                               const char* const* include_names) {
  (void)name;
  (void)num_headers;
  (void)headers;
  (void)include_names;
  nvrtcProgram p = calloc(1, sizeof *p);
  if (!p || !(p->src = strdup(src))) {
    free(p);
    return 1; /* NVRTC_ERROR_OUT_OF_MEMORY */
  }
  p->log = "";
  *prog = p;
  return 0;
}

nvrtcResult nvrtcDestroyProgram(nvrtcProgram* prog) {
  if (*prog) free((*prog)->src);
  free(*prog);
  *prog = NULL;
  return 0;
}

nvrtcResult nvrtcCompileProgram(nvrtcProgram prog, int num_options, const char* const* options) {
  (void)num_options;
  (void)options;
  if (strstr(prog->src, "lk_standin_compile_error")) {
    prog->log = "kernel.cu(1): error: identifier \"lk_standin_compile_error\" is undefined\n";
    return 6;
  }
  return 0;
}

nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram prog, size_t* size) {
  *size = strlen(prog->log) + 1;
  return 0;
}

nvrtcResult nvrtcGetProgramLog(nvrtcProgram prog, char* log) {
  memcpy(log, prog->log, strlen(prog->log) + 1);
  return 0;
}

nvrtcResult nvrtcGetPTXSize(nvrtcProgram prog, size_t* size) {
  (void)prog;
  *size = sizeof LK_SI_IMAGE;
  return 0;
}

nvrtcResult nvrtcGetPTX(nvrtcProgram prog, char* ptx) {
  (void)prog;
  memcpy(ptx, LK_SI_IMAGE, sizeof LK_SI_IMAGE);
  return 0;
}

nvrtcResult nvrtcGetCUBINSize(nvrtcProgram prog, size_t* size) {
  return nvrtcGetPTXSize(prog, size);
}

nvrtcResult nvrtcGetCUBIN(nvrtcProgram prog, char* cubin) { return nvrtcGetPTX(prog, cubin); }
