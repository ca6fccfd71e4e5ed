/* Multi-threaded use of one context and one queue.
 *
 * 8 threads share a context, a queue, a program and a read-only buffer.
 * Each thread builds its own program too, creates its own kernel objects
 * and buffers, enqueues writes + kernels + reads on the shared queue, on
 * its own queue, and across the two (its own queue's event waited on by
 * the shared queue), waits on its own events and checks its results
 * exactly.  Alongside: concurrent retain/release of one shared buffer,
 * concurrent context create/release, thread-local error records, and the
 * concurrent last release of a shared context.
 *
 * Thread failures are collected with a lock (the lk_test harness is not
 * thread-safe) and reported by the main thread.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "lightos/lightos.h"
#include "lk_test.h"

#define NT 8
#define ITERS 64       /* per thread: 512 iterations in all */
#define RETAINS 64     /* retain/release pairs per iteration on the shared buffer */
#define CTX_EVERY 4    /* a context create/release every CTX_EVERY iterations */
#define SHARED_N 2048  /* elements of the shared read-only buffer */

static const char* k_src =
    "__kernel void saxpy(__global const int* x, __global const int* y, __global int* out,\n"
    "                    const int a, const uint n) {\n"
    "  size_t i = get_global_id(0);\n"
    "  if (i < n) out[i] = a * x[i] + y[i] + BIAS;\n"
    "}\n";

static lightos_context_t g_ctx;
static lightos_queue_t g_shared_q;
static lightos_program_t g_prog;      /* BIAS=0 */
static lightos_buffer_t g_shared_buf; /* y_s[i] = 7*i - 3, never written by threads */
static pthread_barrier_t g_start;

static pthread_mutex_t g_fail_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_failures;

static void tfail(int tid, int line, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
static void tfail(int tid, int line, const char* fmt, ...) {
  va_list ap;
  int n = atomic_fetch_add(&g_failures, 1);
  if (n >= 20) return; /* enough output */
  pthread_mutex_lock(&g_fail_lock);
  fprintf(stderr, "FAIL thread %d [%s:%d]: ", tid, __FILE__, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  pthread_mutex_unlock(&g_fail_lock);
}

/* Checks a call in a thread; on failure records it and jumps to `out`. */
#define T_OK(call)                                                                       \
  do {                                                                                   \
    lightos_status_t s_ = (call);                                                        \
    if (s_ != LIGHTOS_SUCCESS) {                                                         \
      tfail(tid, __LINE__, "%s: %s (%s)", #call, lightos_status_string(s_),             \
            lightos_last_error()->message);                                              \
      goto out;                                                                          \
    }                                                                                    \
  } while (0)
#define T_CHECK(cond, ...)                           \
  do {                                               \
    if (!(cond)) {                                   \
      tfail(tid, __LINE__, __VA_ARGS__);             \
      goto out;                                      \
    }                                                \
  } while (0)

static int y_shared(int i) { return 7 * i - 3; }

/* Enqueues write x, write y (unless y_buf is given), kernel, read on q;
 * waits on the read's event and checks out = a*x + y + bias exactly. */
static int run_saxpy(int tid, lightos_queue_t q, lightos_kernel_t k, int* hx, int* hy, int* hout,
                     uint32_t n, int a, int bias, lightos_buffer_t y_buf) {
  lightos_buffer_t x = NULL, y = NULL, o = NULL;
  lightos_event_t ew = NULL, ek = NULL, er = NULL;
  int ok = 0;
  size_t bytes = (size_t)n * sizeof(int);
  size_t gs = n, ls = 32 + (size_t)(tid % 3) * 16;
  T_OK(lightos_buffer_alloc(g_ctx, bytes, 0, &x));
  T_OK(lightos_buffer_alloc(g_ctx, bytes, 0, &o));
  if (!y_buf) {
    T_OK(lightos_buffer_alloc(g_ctx, bytes, 0, &y));
    T_OK(lightos_enqueue_write(q, y, 0, bytes, hy, NULL));
  }
  T_OK(lightos_enqueue_write(q, x, 0, bytes, hx, &ew));
  T_OK(lightos_kernel_set_arg_buffer(k, 0, x));
  T_OK(lightos_kernel_set_arg_buffer(k, 1, y_buf ? y_buf : y));
  T_OK(lightos_kernel_set_arg_buffer(k, 2, o));
  T_OK(lightos_kernel_set_arg_i32(k, 3, a));
  T_OK(lightos_kernel_set_arg_u32(k, 4, n));
  T_OK(lightos_enqueue_kernel(q, k, 1, &gs, (tid & 1) ? &ls : NULL, &ek));
  memset(hout, 0, bytes);
  T_OK(lightos_enqueue_read(q, o, 0, bytes, hout, &er));
  /* our buffers can go now: queued work keeps them alive */
  T_OK(lightos_buffer_release(x));
  x = NULL;
  T_OK(lightos_event_wait(er));
  T_CHECK(lightos_event_query(ew) == LIGHTOS_SUCCESS, "write event not complete after the read");
  T_CHECK(lightos_event_query(ek) == LIGHTOS_SUCCESS, "kernel event not complete after the read");
  for (uint32_t i = 0; i < n; ++i) {
    int yi = y_buf ? y_shared((int)i) : hy[i];
    int want = a * hx[i] + yi + bias;
    T_CHECK(hout[i] == want, "n=%u a=%d bias=%d: out[%u] = %d, want %d", n, a, bias, i, hout[i],
            want);
  }
  ok = 1;
out:
  if (ew) lightos_event_release(ew);
  if (ek) lightos_event_release(ek);
  if (er) lightos_event_release(er);
  if (x) lightos_buffer_release(x);
  if (y) lightos_buffer_release(y);
  if (o) lightos_buffer_release(o);
  return ok;
}

/* The cross-queue path: x is written on the thread's own queue; the shared
 * queue waits on that write's marker before the kernel reads x. */
static int run_cross(int tid, lightos_queue_t own, lightos_kernel_t k, int* hx, int* hout,
                     uint32_t n, int a) {
  lightos_buffer_t x = NULL, o = NULL;
  lightos_event_t mark = NULL, er = NULL;
  int ok = 0;
  size_t bytes = (size_t)n * sizeof(int), gs = n;
  T_OK(lightos_buffer_alloc(g_ctx, bytes, 0, &x));
  T_OK(lightos_buffer_alloc(g_ctx, bytes, 0, &o));
  T_OK(lightos_enqueue_write(own, x, 0, bytes, hx, NULL));
  T_OK(lightos_event_record(own, &mark));
  T_OK(lightos_kernel_set_arg_buffer(k, 0, x));
  T_OK(lightos_kernel_set_arg_buffer(k, 1, g_shared_buf));
  T_OK(lightos_kernel_set_arg_buffer(k, 2, o));
  T_OK(lightos_kernel_set_arg_i32(k, 3, a));
  T_OK(lightos_kernel_set_arg_u32(k, 4, n));
  /* Commands this thread enqueues after the wait start after the marker;
   * other threads' commands in between only wait longer. */
  T_OK(lightos_queue_wait_event(g_shared_q, mark));
  T_OK(lightos_enqueue_kernel(g_shared_q, k, 1, &gs, NULL, NULL));
  memset(hout, 0, bytes);
  T_OK(lightos_enqueue_read(g_shared_q, o, 0, bytes, hout, &er));
  T_OK(lightos_event_wait(er));
  T_CHECK(lightos_event_query(mark) == LIGHTOS_SUCCESS, "marker not complete");
  for (uint32_t i = 0; i < n; ++i) {
    int want = a * hx[i] + y_shared((int)i);
    T_CHECK(hout[i] == want, "cross n=%u: out[%u] = %d, want %d", n, i, hout[i], want);
  }
  ok = 1;
out:
  if (mark) lightos_event_release(mark);
  if (er) lightos_event_release(er);
  if (x) lightos_buffer_release(x);
  if (o) lightos_buffer_release(o);
  return ok;
}

static int context_round_trip(int tid, int it) {
  lightos_context_t c = NULL;
  lightos_buffer_t b = NULL;
  int ok = 0;
  int w[16], r[16];
  for (int i = 0; i < 16; ++i) w[i] = tid * 1000 + it * 16 + i;
  T_OK(lightos_context_create(LIGHTOS_DEVICE_CPU, &c));
  T_OK(lightos_buffer_alloc(c, sizeof w, 0, &b));
  T_OK(lightos_buffer_write(b, 0, sizeof w, w));
  T_OK(lightos_buffer_read(b, 0, sizeof r, r));
  T_CHECK(memcmp(w, r, sizeof w) == 0, "context round trip differs");
  ok = 1;
out:
  if (b) lightos_buffer_release(b);
  if (c) lightos_context_release(c);
  return ok;
}

/* Errors are per thread: a failure made here keeps its own message even
 * while the other threads fail with other values. */
static int thread_local_error(int tid, int it) {
  lightos_buffer_t b = NULL;
  char want[64];
  int ok = 0;
  int v = 0;
  size_t bad = (size_t)1000000 + (size_t)tid * 1000 + (size_t)it;
  T_OK(lightos_buffer_alloc(g_ctx, 64, 0, &b));
  lightos_status_t s = lightos_buffer_write(b, 0, bad, &v);
  T_CHECK(s == LIGHTOS_OUT_OF_RANGE, "expected OUT_OF_RANGE, got %s", lightos_status_string(s));
  snprintf(want, sizeof want, "%zu", bad);
  sched_yield();
  T_CHECK(strstr(lightos_last_error()->message, want) != NULL,
          "thread's error message \"%s\" lost its value %s", lightos_last_error()->message, want);
  T_CHECK(lightos_last_error()->status == LIGHTOS_OUT_OF_RANGE, "status changed");
  ok = 1;
out:
  if (b) lightos_buffer_release(b);
  return ok;
}

typedef struct worker {
  int tid;
  pthread_t th;
  int done_iters;
} worker_t;

static void* worker_main(void* arg) {
  worker_t* w = arg;
  int tid = w->tid;
  lightos_queue_t own = NULL;
  lightos_program_t mine = NULL;
  lightos_kernel_t k_mine = NULL;
  enum { MAXN = 1536 };
  int* hx = malloc(MAXN * sizeof(int));
  int* hy = malloc(MAXN * sizeof(int));
  int* hout = malloc(MAXN * sizeof(int));
  char opts[32];
  pthread_barrier_wait(&g_start);
  if (!hx || !hy || !hout) {
    tfail(tid, __LINE__, "out of memory");
    goto out;
  }
  /* each thread builds its own program (concurrent builds) */
  snprintf(opts, sizeof opts, "-D BIAS=%d", tid + 1);
  T_OK(lightos_program_create(g_ctx, k_src, 0, &mine));
  T_OK(lightos_program_build(mine, opts));
  T_OK(lightos_kernel_create(mine, "saxpy", &k_mine));
  T_OK(lightos_queue_create(g_ctx, 0, &own));
  for (int it = 0; it < ITERS; ++it) {
    uint32_t n = 256 + (uint32_t)((tid * 37 + it * 113) % (MAXN - 256));
    int a = (tid + 2) * (it % 5 + 1) - 7;
    lightos_kernel_t k_shared = NULL;
    for (uint32_t i = 0; i < n; ++i) {
      hx[i] = tid * 100000 + it * 1000 + (int)i;
      hy[i] = (int)i * 3 - tid;
    }
    /* a fresh kernel object from the shared program */
    T_OK(lightos_kernel_create(g_prog, "saxpy", &k_shared));
    if (!run_saxpy(tid, g_shared_q, k_shared, hx, hy, hout, n, a, 0, NULL)) {
      lightos_kernel_release(k_shared);
      goto out;
    }
    if (!run_saxpy(tid, own, k_mine, hx, hy, hout, n, a, tid + 1, NULL)) {
      lightos_kernel_release(k_shared);
      goto out;
    }
    if (!run_saxpy(tid, own, k_shared, hx, hy, hout, n, -a, 0, g_shared_buf)) {
      lightos_kernel_release(k_shared);
      goto out;
    }
    if (!run_cross(tid, own, k_shared, hx, hout, n < SHARED_N ? n : SHARED_N, a + 1)) {
      lightos_kernel_release(k_shared);
      goto out;
    }
    T_OK(lightos_kernel_release(k_shared));
    /* retain/release the shared buffer */
    for (int r = 0; r < RETAINS; ++r) T_OK(lightos_buffer_retain(g_shared_buf));
    size_t sz = 0;
    T_OK(lightos_buffer_get_size(g_shared_buf, &sz));
    T_CHECK(sz == SHARED_N * sizeof(int), "shared buffer size %zu", sz);
    for (int r = 0; r < RETAINS; ++r) T_OK(lightos_buffer_release(g_shared_buf));
    if (it % CTX_EVERY == tid % CTX_EVERY && !context_round_trip(tid, it)) goto out;
    if (it % 8 == 0 && !thread_local_error(tid, it)) goto out;
    w->done_iters++;
  }
  T_OK(lightos_queue_finish(own));
out:
  if (k_mine) lightos_kernel_release(k_mine);
  if (mine) lightos_program_release(mine);
  if (own) lightos_queue_release(own);
  free(hx);
  free(hy);
  free(hout);
  return NULL;
}

static void test_shared_context_and_queue(void) {
  worker_t w[NT];
  int ys[SHARED_N];
  for (int i = 0; i < SHARED_N; ++i) ys[i] = y_shared(i);
  atomic_store(&g_failures, 0);
  LK_REQUIRE_OK(lightos_context_create(LIGHTOS_DEVICE_CPU, &g_ctx));
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &g_shared_q));
  LK_REQUIRE_OK(lightos_program_create(g_ctx, k_src, 0, &g_prog));
  LK_REQUIRE_OK(lightos_program_build(g_prog, "-D BIAS=0"));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof ys, 0, &g_shared_buf));
  LK_REQUIRE_OK(lightos_buffer_write(g_shared_buf, 0, sizeof ys, ys));
  LK_REQUIRE(pthread_barrier_init(&g_start, NULL, NT) == 0);
  for (int t = 0; t < NT; ++t) {
    w[t].tid = t;
    w[t].done_iters = 0;
    LK_REQUIRE(pthread_create(&w[t].th, NULL, worker_main, &w[t]) == 0);
  }
  int total = 0;
  for (int t = 0; t < NT; ++t) {
    pthread_join(w[t].th, NULL);
    total += w[t].done_iters;
  }
  pthread_barrier_destroy(&g_start);
  LK_CHECK_INT(atomic_load(&g_failures), 0);
  LK_CHECK_INT(total, NT * ITERS);
  /* the shared objects are intact */
  LK_CHECK_STATUS(lightos_queue_finish(g_shared_q), LIGHTOS_SUCCESS);
  int r[SHARED_N];
  LK_CHECK_STATUS(lightos_buffer_read(g_shared_buf, 0, sizeof r, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(r, ys, sizeof r) == 0);
  /* exactly one reference is left on the shared buffer */
  LK_CHECK_STATUS(lightos_buffer_release(g_shared_buf), LIGHTOS_SUCCESS);
  size_t sz;
  LK_CHECK_STATUS(lightos_buffer_get_size(g_shared_buf, &sz), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_STATUS(lightos_program_release(g_prog), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_release(g_shared_q), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_context_release(g_ctx), LIGHTOS_SUCCESS);
}

/* ---- many threads waiting on one event, and concurrent kernel_create ------- */

typedef struct waiter {
  pthread_t th;
  lightos_event_t ev;
  lightos_program_t prog;
  lightos_status_t status;
  int kernels_ok;
} waiter_t;

static void* waiter_main(void* arg) {
  waiter_t* w = arg;
  pthread_barrier_wait(&g_start);
  for (int i = 0; i < 20; ++i) {
    lightos_kernel_t k = NULL;
    if (lightos_kernel_create(w->prog, "saxpy", &k) == LIGHTOS_SUCCESS) {
      w->kernels_ok++;
      lightos_kernel_release(k);
    }
  }
  w->status = lightos_event_wait(w->ev);
  return NULL;
}

static void test_many_waiters(void) {
  lightos_context_t c = NULL;
  lightos_queue_t q = NULL;
  lightos_program_t p = NULL;
  lightos_buffer_t b = NULL;
  lightos_event_t ev = NULL;
  waiter_t w[NT];
  enum { N = 1 << 20 };
  LK_REQUIRE_OK(lightos_context_create(LIGHTOS_DEVICE_CPU, &c));
  LK_REQUIRE_OK(lightos_queue_create(c, 0, &q));
  LK_REQUIRE_OK(lightos_program_create(c, k_src, 0, &p));
  LK_REQUIRE_OK(lightos_program_build(p, "-D BIAS=0"));
  LK_REQUIRE_OK(lightos_buffer_alloc(c, N, 0, &b));
  /* some work, then a marker every thread waits on */
  uint32_t pat = 0xabcdef01u;
  for (int i = 0; i < 8; ++i) LK_REQUIRE_OK(lightos_enqueue_fill(q, b, 0, N, &pat, 4, NULL));
  LK_REQUIRE_OK(lightos_event_record(q, &ev));
  LK_REQUIRE(pthread_barrier_init(&g_start, NULL, NT) == 0);
  for (int t = 0; t < NT; ++t) {
    w[t].ev = ev;
    w[t].prog = p;
    w[t].status = LIGHTOS_INTERNAL;
    w[t].kernels_ok = 0;
    LK_REQUIRE(pthread_create(&w[t].th, NULL, waiter_main, &w[t]) == 0);
  }
  for (int t = 0; t < NT; ++t) {
    pthread_join(w[t].th, NULL);
    LK_CHECK_INT(w[t].status, LIGHTOS_SUCCESS);
    LK_CHECK_INT(w[t].kernels_ok, 20);
  }
  pthread_barrier_destroy(&g_start);
  lightos_event_release(ev);
  lightos_buffer_release(b);
  lightos_program_release(p);
  lightos_queue_release(q);
  lightos_context_release(c);
}

/* ---- one program built from 8 threads at once: exactly one build wins --- */

typedef struct builder {
  pthread_t th;
  lightos_program_t prog;
  lightos_status_t status;
  char msg[256];
} builder_t;

static void* builder_main(void* arg) {
  builder_t* b = arg;
  pthread_barrier_wait(&g_start);
  b->status = lightos_program_build(b->prog, "-D BIAS=2");
  snprintf(b->msg, sizeof b->msg, "%s", b->status ? lightos_last_error()->message : "");
  return NULL;
}

static void test_concurrent_build_of_one_program(void) {
  lightos_context_t c = NULL;
  lightos_program_t p = NULL;
  builder_t b[NT];
  LK_REQUIRE_OK(lightos_context_create(LIGHTOS_DEVICE_CPU, &c));
  LK_REQUIRE_OK(lightos_program_create(c, k_src, 0, &p));
  LK_REQUIRE(pthread_barrier_init(&g_start, NULL, NT) == 0);
  for (int t = 0; t < NT; ++t) {
    b[t].prog = p;
    LK_REQUIRE(pthread_create(&b[t].th, NULL, builder_main, &b[t]) == 0);
  }
  int ok = 0;
  for (int t = 0; t < NT; ++t) {
    pthread_join(b[t].th, NULL);
    if (b[t].status == LIGHTOS_SUCCESS) ok++;
    else
      LK_CHECK_MSG(b[t].status == LIGHTOS_INVALID_ARGUMENT && strstr(b[t].msg, "already built"),
                   "thread %d: %s (%s)", t, lightos_status_string(b[t].status), b[t].msg);
  }
  pthread_barrier_destroy(&g_start);
  LK_CHECK_INT(ok, 1);
  /* the program works */
  lightos_kernel_t k = NULL;
  lightos_buffer_t x = NULL, o = NULL;
  int hx[64], ho[64];
  size_t gs = 64;
  for (int i = 0; i < 64; ++i) hx[i] = i;
  LK_REQUIRE_OK(lightos_kernel_create(p, "saxpy", &k));
  LK_REQUIRE_OK(lightos_buffer_alloc(c, sizeof hx, 0, &x));
  LK_REQUIRE_OK(lightos_buffer_alloc(c, sizeof ho, 0, &o));
  LK_REQUIRE_OK(lightos_buffer_write(x, 0, sizeof hx, hx));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, x));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 1, x));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 2, o));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(k, 3, 3));
  LK_REQUIRE_OK(lightos_kernel_set_arg_u32(k, 4, 64));
  lightos_queue_t q = NULL;
  LK_REQUIRE_OK(lightos_context_default_queue(c, &q));
  LK_REQUIRE_OK(lightos_enqueue_kernel(q, k, 1, &gs, NULL, NULL));
  LK_REQUIRE_OK(lightos_buffer_read(o, 0, sizeof ho, ho));
  for (int i = 0; i < 64; ++i) LK_CHECK_INT(ho[i], 4 * i + 2);
  lightos_kernel_release(k);
  lightos_buffer_release(x);
  lightos_buffer_release(o);
  lightos_program_release(p);
  lightos_context_release(c);
}

/* ---- concurrent context create/release, and the last release of a shared
 * context racing between threads ------------------------------------------ */

typedef struct ctx_worker {
  pthread_t th;
  int tid;
  lightos_context_t shared;
  int ok;
} ctx_worker_t;

static int use_shared_context(int tid, lightos_context_t shared) {
  lightos_buffer_t b = NULL;
  int v = tid, r = -1, ok = 0;
  T_OK(lightos_buffer_alloc(shared, sizeof v, 0, &b));
  T_OK(lightos_buffer_write(b, 0, sizeof v, &v));
  T_OK(lightos_buffer_read(b, 0, sizeof r, &r));
  T_CHECK(r == v, "shared context round trip: %d", r);
  ok = 1;
out:
  if (b) lightos_buffer_release(b);
  return ok;
}

static void* ctx_worker_main(void* arg) {
  ctx_worker_t* w = arg;
  int tid = w->tid, ok = 1;
  pthread_barrier_wait(&g_start);
  for (int i = 0; i < 6 && ok; ++i) ok = context_round_trip(tid, i);
  if (ok) ok = use_shared_context(tid, w->shared);
  /* drop this thread's reference to the shared context at the same time as
   * every other thread: the last of these releases frees it */
  pthread_barrier_wait(&g_start);
  lightos_status_t s = lightos_context_release(w->shared);
  if (s) {
    tfail(tid, __LINE__, "release of the shared context: %s", lightos_status_string(s));
    ok = 0;
  }
  w->ok = ok;
  return NULL;
}

static void test_concurrent_contexts(void) {
  ctx_worker_t w[NT];
  lightos_context_t shared = NULL;
  atomic_store(&g_failures, 0);
  for (int round = 0; round < 3; ++round) {
    LK_REQUIRE_OK(lightos_context_create(LIGHTOS_DEVICE_CPU, &shared));
    for (int t = 1; t < NT; ++t) LK_REQUIRE_OK(lightos_context_retain(shared));
    LK_REQUIRE(pthread_barrier_init(&g_start, NULL, NT) == 0);
    for (int t = 0; t < NT; ++t) {
      w[t].tid = t;
      w[t].shared = shared;
      w[t].ok = 0;
      LK_REQUIRE(pthread_create(&w[t].th, NULL, ctx_worker_main, &w[t]) == 0);
    }
    for (int t = 0; t < NT; ++t) {
      pthread_join(w[t].th, NULL);
      LK_CHECK_MSG(w[t].ok, "round %d thread %d failed", round, t);
    }
    pthread_barrier_destroy(&g_start);
    /* every reference is gone */
    LK_CHECK_STATUS(lightos_context_retain(shared), LIGHTOS_INVALID_ARGUMENT);
  }
  LK_CHECK_INT(atomic_load(&g_failures), 0);
}

int main(void) {
  lk_t.program = "test_threads";
  alarm(120);
  LK_RUN(test_shared_context_and_queue);
  LK_RUN(test_many_waiters);
  LK_RUN(test_concurrent_build_of_one_program);
  LK_RUN(test_concurrent_contexts);
  return lk_test_finish();
}
