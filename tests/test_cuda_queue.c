/* The CUDA backend's queues on a stand-in driver (tests/standin/cuda_standin.c:
 * host memory, one worker thread per stream, kernels that compute nothing),
 * so that CI — which has no NVIDIA GPU — runs the backend's own logic under
 * the sanitizers.  What the driver would do on a GPU is not tested here
 * (test_cuda_backend on the GPU machine does that); what is:
 *   - order: copies, fills and 600 launches on one queue (batch markers,
 *     the ring growing), data and every event right, events completed in
 *     order;
 *   - a wait for another queue's event: the later copy sees the data;
 *   - profiling: events carry the stream's times;
 *   - device work a backend's function issues (lk_cu_queue_submit_native,
 *     the NCCL path) behind host work on its queue: the call returns at
 *     once, the queue's host thread issues it after the host work, its
 *     done callback gets its status, a failure reaches finish; with no
 *     host work ahead it runs on the calling thread;
 *   - the completion thread finds device work nobody waits for (no event,
 *     no finish) and releases its buffers — while idle and after its deep
 *     sleep;
 *   - launches nobody waits for reach the stream before enqueue returns,
 *     but not past host work ahead of them; a buffer given twice;
 *   - launches take their references from the queue's stock: objects
 *     released under pending launches outlive them, more objects than the
 *     stock holds, finish waits for launches that have no entry, and
 *     nothing is kept past finish, a batch of other launches, or the
 *     queue's release;
 *   - launches from a thread where no context or another device's is
 *     current: a library's kernels launch without the queue's context
 *     being made current, a module's functions (a driver without
 *     libraries) with it; batch markers and events are made and recorded
 *     in the queue's context either way (the stand-in refuses, and counts,
 *     every call made in the wrong context);
 *   - a kernel that faults: the context is lost, later work fails with
 *     LIGHTOS_DEVICE_LOST, nothing hangs. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "hal/cuda/cuda_backend.h"
#include "lightos/lightos.h"
#include "lk_test.h"
#include "runtime/runtime.h"

static const char* k_src =
    "__kernel void k(__global int* p) { }\n"
    "__kernel void slow(__global int* p) { }\n"
    "__kernel void fault(__global int* p) { }\n"
    "__kernel void k2(__global int* p, __global int* q) { }\n";

static lightos_context_t g_ctx;
static lightos_program_t g_prog;

static lightos_kernel_t kern(const char* name, lightos_buffer_t arg) {
  lightos_kernel_t k = NULL;
  if (lightos_kernel_create(g_prog, name, &k)) return NULL;
  if (lightos_kernel_set_arg_buffer(k, 0, arg)) {
    lightos_kernel_release(k);
    return NULL;
  }
  return k;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- order on one queue ------------------------------------------------------------ */

static void test_order(void) {
  enum { N = 4096, LAUNCHES = 600 };
  static int pat[N], got[N];
  for (int i = 0; i < N; ++i) pat[i] = i * 7 + 1;
  lightos_buffer_t a = NULL, b = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof pat, 0, &a));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof pat, 0, &b));
  lightos_queue_t q = NULL;
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &q));
  lightos_kernel_t k = kern("k", a);
  LK_REQUIRE(k);
  LK_REQUIRE_OK(lightos_enqueue_write(q, a, 0, sizeof pat, pat, NULL));
  lightos_event_t ev[LAUNCHES / 100] = {0};
  size_t gs = 256, ls = 64;
  for (int i = 0; i < LAUNCHES; ++i) {
    lightos_event_t* e = i % 100 == 99 ? &ev[i / 100] : NULL;
    LK_CHECK_STATUS(lightos_enqueue_kernel(q, k, 1, &gs, &ls, e), LIGHTOS_SUCCESS);
    if (i == 300) LK_CHECK_STATUS(lightos_enqueue_copy(q, a, 0, b, 0, sizeof pat, NULL),
                                  LIGHTOS_SUCCESS);
    if (i == 450) {
      const int seven = 7;
      LK_CHECK_STATUS(lightos_enqueue_fill(q, a, 0, sizeof pat, &seven, sizeof seven, NULL),
                      LIGHTOS_SUCCESS);
    }
  }
  /* The last event: every earlier one is complete with it. */
  LK_CHECK_STATUS(lightos_event_wait(ev[LAUNCHES / 100 - 1]), LIGHTOS_SUCCESS);
  for (int i = 0; i < LAUNCHES / 100; ++i)
    LK_CHECK_MSG(lightos_event_query(ev[i]) == LIGHTOS_SUCCESS, "event %d not complete", i);
  LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
  LK_REQUIRE_OK(lightos_buffer_read(b, 0, sizeof got, got));
  LK_CHECK_MSG(!memcmp(got, pat, sizeof pat), "the copy after 300 launches saw other data");
  LK_REQUIRE_OK(lightos_buffer_read(a, 0, sizeof got, got));
  int bad = 0;
  for (int i = 0; i < N; ++i) bad += got[i] != 7;
  LK_CHECK_MSG(!bad, "%d items of the fill are wrong", bad);
  for (int i = 0; i < LAUNCHES / 100; ++i) lightos_event_release(ev[i]);
  lightos_kernel_release(k);
  lightos_queue_release(q);
  lightos_buffer_release(a);
  lightos_buffer_release(b);
}

/* ---- a wait for another queue's event ---------------------------------------------- */

static void test_cross_queue(void) {
  enum { N = 1024 };
  static int got[N];
  lightos_buffer_t x = NULL, y = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof got, 0, &x));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof got, 0, &y));
  lightos_queue_t q1 = NULL, q2 = NULL;
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &q1));
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &q2));
  lightos_kernel_t slow = kern("slow", x);
  LK_REQUIRE(slow);
  size_t gs = 64;
  for (int i = 0; i < 3; ++i)
    LK_CHECK_STATUS(lightos_enqueue_kernel(q1, slow, 1, &gs, NULL, NULL), LIGHTOS_SUCCESS);
  const int five = 5;
  lightos_event_t e = NULL;
  LK_CHECK_STATUS(lightos_enqueue_fill(q1, x, 0, sizeof got, &five, sizeof five, &e),
                  LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_wait_event(q2, e), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_enqueue_copy(q2, x, 0, y, 0, sizeof got, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(q2), LIGHTOS_SUCCESS);
  LK_REQUIRE_OK(lightos_buffer_read(y, 0, sizeof got, got));
  int bad = 0;
  for (int i = 0; i < N; ++i) bad += got[i] != 5;
  LK_CHECK_MSG(!bad, "%d items copied before the other queue's fill", bad);
  LK_CHECK_STATUS(lightos_queue_finish(q1), LIGHTOS_SUCCESS);
  lightos_event_release(e);
  lightos_kernel_release(slow);
  lightos_queue_release(q1);
  lightos_queue_release(q2);
  lightos_buffer_release(x);
  lightos_buffer_release(y);
}

/* ---- profiling ------------------------------------------------------------------------- */

/* A profiling queue's events carry the stream's times: a "slow" kernel
 * takes at least its 2 ms on the stand-in's stream, three in a row at
 * least 6 ms, and a later command does not end before an earlier one. */
static void test_profiling(void) {
  lightos_queue_t q = NULL;
  lightos_buffer_t b = NULL;
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, LIGHTOS_QUEUE_PROFILING, &q));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, 256, 0, &b));
  lightos_kernel_t slow = kern("slow", b), k = kern("k", b);
  LK_REQUIRE(slow && k);
  size_t gs = 64;
  lightos_event_t e[5] = {0};
  LK_CHECK_STATUS(lightos_enqueue_kernel(q, k, 1, &gs, NULL, &e[0]), LIGHTOS_SUCCESS);
  for (int i = 1; i < 4; ++i)
    LK_CHECK_STATUS(lightos_enqueue_kernel(q, slow, 1, &gs, NULL, &e[i]), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_record(q, &e[4]), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_wait(e[4]), LIGHTOS_SUCCESS);
  double one = 0, three = 0, order = 0;
  LK_CHECK_STATUS(lightos_event_elapsed_ms(e[1], e[1], &one), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_elapsed_ms(e[1], e[3], &three), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_elapsed_ms(e[0], e[4], &order), LIGHTOS_SUCCESS);
  LK_CHECK_MSG(one >= 1.9 && three >= 5.9 && order >= three,
               "profiled times: one slow kernel %.3f ms, three %.3f ms, all %.3f ms", one, three,
               order);
  for (int i = 0; i < 5; ++i) lightos_event_release(e[i]);
  lightos_kernel_release(slow);
  lightos_kernel_release(k);
  lightos_buffer_release(b);
  lightos_queue_release(q);
}

/* ---- native work behind host work ---------------------------------------------------- */

static pthread_mutex_t g_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static bool g_release;
static atomic_int g_seq;

typedef struct {
  atomic_int at;        /* g_seq when it ran (0: not yet) */
  pthread_t thread;
  lightos_status_t fail; /* what fn returns */
  atomic_int done_calls;
  lightos_status_t done_status;
} native_t;

/* A host function's argument (freed with its command): where to note
 * when it ran. */
typedef struct {
  atomic_int* at;
} host_arg_t;

static lightos_status_t blocker(void* arg) {
  host_arg_t* h = arg;
  pthread_mutex_lock(&g_m);
  while (!g_release) pthread_cond_wait(&g_cv, &g_m);
  pthread_mutex_unlock(&g_m);
  atomic_store(h->at, atomic_fetch_add(&g_seq, 1) + 1);
  return LIGHTOS_SUCCESS;
}

static lightos_status_t native_fn(void* stream, void* arg) {
  native_t* n = arg;
  (void)stream;
  n->thread = pthread_self();
  atomic_store(&n->at, atomic_fetch_add(&g_seq, 1) + 1);
  if (n->fail) return LK_FAIL(n->fail, "stand-in native work failed on purpose");
  return LIGHTOS_SUCCESS;
}

static void native_done(void* arg, lightos_status_t s) {
  native_t* n = arg;
  n->done_status = s;
  atomic_fetch_add(&n->done_calls, 1);
}

/* Gates q with a host function that blocks until released, which notes
 * in *at when it ran.  Returns whether it was submitted. */
static bool gate(lk_queue_t* q, atomic_int* at) {
  g_release = false;
  atomic_store(at, 0);
  host_arg_t* a = malloc(sizeof *a); /* freed with the command */
  lk_cmd_t* h = lk_cmd_new(LK_CMD_HOST);
  if (!a || !h) {
    free(a);
    free(h);
    return false;
  }
  a->at = at;
  h->u.host.fn = blocker;
  h->u.host.arg = a;
  return lk_queue_submit(q, h, NULL) == LIGHTOS_SUCCESS;
}

static void open_gate(void) {
  pthread_mutex_lock(&g_m);
  g_release = true;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_m);
}

static lightos_status_t submit_native(lk_queue_t* q, native_t* n) {
  lk_cmd_t* c = lk_cmd_new(LK_CMD_NATIVE);
  if (!c) return LIGHTOS_OUT_OF_MEMORY;
  c->u.native.fn = native_fn;
  c->u.native.done = native_done;
  c->u.native.arg = n;
  return lk_cu_queue_submit_native(q->hal, c);
}

/* A new queue (returned: its runtime object), a 256-byte buffer and
 * kernel "k" taking it; NULL if any fails (what was made is released). */
static lk_queue_t* queue_with_kernel(lightos_queue_t* qh, lightos_buffer_t* b,
                                     lightos_kernel_t* k) {
  lk_object_t* o = NULL;
  if (!lightos_queue_create(g_ctx, 0, qh) && !lk_handle_resolve(*qh, LK_OBJ_QUEUE, "queue", &o) &&
      !lightos_buffer_alloc(g_ctx, 256, 0, b) && (*k = kern("k", *b)))
    return (lk_queue_t*)o;
  if (*b) lightos_buffer_release(*b);
  if (*qh) lightos_queue_release(*qh);
  *b = NULL;
  *qh = NULL;
  return NULL;
}

static void test_native_behind_host_work(void) {
  lightos_queue_t qh = NULL;
  lightos_buffer_t b = NULL;
  lightos_kernel_t k = NULL;
  lk_queue_t* q = queue_with_kernel(&qh, &b, &k);
  LK_REQUIRE(q);
  size_t gs = 64;

  /* No host work ahead: now, on this thread, done before the return. */
  static native_t now;
  memset(&now, 0, sizeof now);
  LK_CHECK_STATUS(submit_native(q, &now), LIGHTOS_SUCCESS);
  LK_CHECK(atomic_load(&now.at) != 0 && pthread_equal(now.thread, pthread_self()));
  LK_CHECK_INT(atomic_load(&now.done_calls), 1);

  /* Behind a blocked host function: the call returns, the work waits. */
  static native_t later;
  memset(&later, 0, sizeof later);
  static atomic_int host_at;
  LK_REQUIRE(gate(q, &host_at));
  LK_CHECK_STATUS(submit_native(q, &later), LIGHTOS_SUCCESS);
  lightos_event_t ev = NULL;
  LK_CHECK_STATUS(lightos_enqueue_kernel(qh, k, 1, &gs, NULL, &ev), LIGHTOS_SUCCESS);
  sleep_ms(20);
  LK_CHECK_MSG(atomic_load(&later.at) == 0 && atomic_load(&later.done_calls) == 0,
               "native work ran before the host work ahead of it");
  LK_CHECK_MSG(lightos_event_query(ev) == LIGHTOS_NOT_READY, "a later launch completed early");
  open_gate();
  LK_CHECK_STATUS(lightos_queue_finish(qh), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_wait(ev), LIGHTOS_SUCCESS);
  const int h_at = atomic_load(&host_at), n_at = atomic_load(&later.at);
  LK_CHECK_MSG(h_at && n_at > h_at, "order: host work %d, native work %d", h_at, n_at);
  LK_CHECK_MSG(!pthread_equal(later.thread, pthread_self()),
               "deferred native work ran on the submitting thread");
  LK_CHECK_INT(atomic_load(&later.done_calls), 1);
  LK_CHECK_STATUS(later.done_status, LIGHTOS_SUCCESS);
  lightos_event_release(ev);

  /* A deferred failure reaches done and finish; the queue works after. */
  static native_t bad;
  memset(&bad, 0, sizeof bad);
  bad.fail = LIGHTOS_INTERNAL;
  LK_REQUIRE(gate(q, &host_at));
  LK_CHECK_STATUS(submit_native(q, &bad), LIGHTOS_SUCCESS);
  open_gate();
  lightos_status_t s = lightos_queue_finish(qh);
  LK_CHECK_MSG(s != LIGHTOS_SUCCESS, "finish should report the deferred failure");
  LK_CHECK_MSG(strstr(lightos_last_error()->message, "failed on purpose") != NULL,
               "finish's message: %s", lightos_last_error()->message);
  LK_CHECK_INT(atomic_load(&bad.done_calls), 1);
  LK_CHECK_STATUS(bad.done_status, LIGHTOS_INTERNAL);
  LK_CHECK_STATUS(lightos_enqueue_kernel(qh, k, 1, &gs, NULL, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(qh), LIGHTOS_SUCCESS);

  /* Released with deferred work still waiting: it runs, nothing leaks. */
  static native_t last;
  memset(&last, 0, sizeof last);
  LK_REQUIRE(gate(q, &host_at));
  LK_CHECK_STATUS(submit_native(q, &last), LIGHTOS_SUCCESS);
  open_gate();
  lightos_queue_release(qh);
  LK_CHECK_INT(atomic_load(&last.done_calls), 1);
  lightos_kernel_release(k);
  lightos_buffer_release(b);
}

/* ---- the completion thread's sweep ------------------------------------------------- */

/* Enqueues launches that use a fresh buffer, releases the buffer, and
 * waits (up to 10 s) until nothing but this test holds it. */
static bool swept(lightos_queue_t q) {
  lightos_buffer_t b = NULL;
  if (lightos_buffer_alloc(g_ctx, 1024, 0, &b)) return false;
  lk_object_t* o = NULL;
  if (lk_handle_resolve(b, LK_OBJ_BUFFER, "buffer", &o)) return false;
  lk_object_ref(o);
  lightos_kernel_t k = kern("k", b);
  size_t gs = 64;
  for (int i = 0; k && i < 10; ++i) (void)lightos_enqueue_kernel(q, k, 1, &gs, NULL, NULL);
  lightos_kernel_release(k);
  lightos_buffer_release(b);
  bool ok = false;
  for (int t = 0; t < 1000 && !ok; ++t) {
    ok = atomic_load(&o->refs) == 1;
    if (!ok) sleep_ms(10);
  }
  lk_object_unref(o);
  return ok;
}

static void test_idle_sweep(void) {
  lightos_queue_t q = NULL;
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &q));
  LK_CHECK_MSG(swept(q), "unwaited launches kept their buffer (queue busy before)");
  /* Past the completion thread's idle period: it sleeps until woken. */
  sleep_ms(1500);
  LK_CHECK_MSG(swept(q), "unwaited launches kept their buffer (after a long idle period)");
  lightos_queue_release(q);
}

/* ---- references from the queue's stock ---------------------------------------------- */

/* An internal reference on a public object, to watch its count. */
static lk_object_t* watch(void* handle, lk_obj_type_t type) {
  lk_object_t* o = NULL;
  if (lk_handle_resolve(handle, type, "object", &o)) return NULL;
  lk_object_ref(o);
  return o;
}

/* Launches take their references from the queue's stock (hal.h): objects
 * released while launches are pending live until those complete (ASan
 * would see a use after free), and nothing is kept beyond finish, a batch
 * of launches, or the queue's release. */
static void test_ref_stock(void) {
  enum { NB = 12 }; /* more objects than the stock has slots */
  lightos_queue_t q = NULL;
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &q));
  size_t gs = 64;

  /* Released under pending launches; finish lets them go. */
  lightos_buffer_t b[NB] = {0};
  lightos_kernel_t k[NB] = {0};
  lk_object_t *ob[NB] = {0}, *ok[NB] = {0};
  for (int i = 0; i < NB; ++i) {
    LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, 256, 0, &b[i]));
    k[i] = kern(i % 3 ? "k" : "slow", b[i]);
    LK_REQUIRE(k[i]);
    ob[i] = watch(b[i], LK_OBJ_BUFFER);
    ok[i] = watch(k[i], LK_OBJ_KERNEL);
    LK_REQUIRE(ob[i] && ok[i]);
  }
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < NB; ++i)
      LK_CHECK_STATUS(lightos_enqueue_kernel(q, k[i], 1, &gs, NULL, NULL), LIGHTOS_SUCCESS);
  for (int i = 0; i < NB; ++i) {
    lightos_kernel_release(k[i]);
    lightos_buffer_release(b[i]);
  }
  LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
  for (int i = 0; i < NB; ++i) { /* a kernel holds its buffer: kernels first */
    LK_CHECK_MSG(atomic_load(&ok[i]->refs) == 1, "kernel %d: %d references after finish", i,
                 atomic_load(&ok[i]->refs));
    lk_object_unref(ok[i]);
    LK_CHECK_MSG(atomic_load(&ob[i]->refs) == 1, "buffer %d: %d references after finish", i,
                 atomic_load(&ob[i]->refs));
    lk_object_unref(ob[i]);
  }

  /* Launches nobody waits for have no entry of their own: finish still
   * waits for them (5 slow launches of 2 ms on the stand-in). */
  {
    lightos_buffer_t x = NULL;
    LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, 256, 0, &x));
    lightos_kernel_t ks = kern("slow", x);
    LK_REQUIRE(ks);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 5; ++i)
      LK_CHECK_STATUS(lightos_enqueue_kernel(q, ks, 1, &gs, NULL, NULL), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    LK_CHECK_MSG(ms >= 9.5, "finish returned after %.1f ms, before 5 launches of 2 ms ran", ms);
    lightos_kernel_release(ks);
    lightos_buffer_release(x);
  }

  /* A released buffer is let go within a batch of launches while the queue
   * stays busy with others (no finish). */
  lightos_buffer_t a = NULL, c = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, 256, 0, &a));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, 256, 0, &c));
  lightos_kernel_t ka = kern("k", a), kc = kern("k", c);
  LK_REQUIRE(ka && kc);
  lk_object_t* oa = watch(a, LK_OBJ_BUFFER);
  LK_REQUIRE(oa);
  lightos_event_t ev = NULL;
  for (int i = 0; i < 10; ++i)
    LK_CHECK_STATUS(lightos_enqueue_kernel(q, ka, 1, &gs, NULL, i == 9 ? &ev : NULL),
                    LIGHTOS_SUCCESS);
  lightos_kernel_release(ka);
  lightos_buffer_release(a);
  LK_CHECK_STATUS(lightos_event_wait(ev), LIGHTOS_SUCCESS);
  lightos_event_release(ev);
  /* The stock that covered a's launches goes with a marker within a batch
   * (or when the completion thread finds the queue idle); the marker's
   * completion releases it. */
  bool gone = false;
  for (int i = 0; i < 300; ++i)
    LK_CHECK_STATUS(lightos_enqueue_kernel(q, kc, 1, &gs, NULL, NULL), LIGHTOS_SUCCESS);
  for (int t = 0; t < 500 && !gone; ++t) {
    gone = atomic_load(&oa->refs) == 1;
    if (!gone) sleep_ms(2);
  }
  LK_CHECK_MSG(gone, "a released buffer kept %d references over a batch of other launches",
               atomic_load(&oa->refs));
  lk_object_unref(oa);

  /* Released queue: its stock goes back (LeakSanitizer checks the rest). */
  lk_object_t* oc = watch(c, LK_OBJ_BUFFER);
  LK_REQUIRE(oc);
  lightos_buffer_release(c);
  lightos_queue_release(q);
  lightos_kernel_release(kc);
  LK_CHECK_MSG(atomic_load(&oc->refs) == 1, "buffer: %d references after the queue's release",
               atomic_load(&oc->refs));
  lk_object_unref(oc);
}

/* ---- the thread's current context ----------------------------------------------------- */

/* One of the stand-in's counters (lk_standin_refused: calls refused for
 * their context; lk_standin_launches: launches accepted); -1 if missing. */
static int standin_count(const char* name) {
  void* h = dlopen(LK_STANDIN_LIBRARY, RTLD_NOW | RTLD_NOLOAD);
  int (*fn)(void) = NULL;
  if (h) {
    void* sym = dlsym(h, name);
    memcpy(&fn, &sym, sizeof fn);
  }
  int n = fn ? fn() : -1;
  if (h) dlclose(h);
  return n;
}

static int refused_calls(void) { return standin_count("lk_standin_refused"); }

/* The CUDA backend's handle of kernel k. */
static const lk_cu_kernel_t* hal_kernel(lightos_kernel_t k) {
  lk_object_t* o = NULL;
  if (lk_handle_resolve(k, LK_OBJ_KERNEL, "kernel", &o)) return NULL;
  return ((lk_kernel_t*)o)->hal_kernel;
}

/* Launches (600: two batch markers, then one with an event) from this
 * thread with no context current, then with another device's: they run
 * and complete, and no call was made in the wrong context — with the
 * kernels of a library (launched in their stream's context) and of a
 * module (the queue makes its context current). */
static void test_foreign_context(void) {
  const lk_cuda_api_t* api = lk_cuda_api_get(NULL, 0);
  LK_REQUIRE(api);
  lightos_context_t other = NULL;
  LK_REQUIRE_OK(lightos_context_create_from_uri("cuda:1", &other));
  lk_object_t* oo = NULL;
  LK_REQUIRE_OK(lk_handle_resolve(other, LK_OBJ_CONTEXT, "context", &oo));
  CUcontext octx = ((lk_cu_context_t*)((lk_context_t*)oo)->hal)->ctx;
  lightos_buffer_t b = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, 256, 0, &b));
  int refused0 = refused_calls();
  LK_CHECK_MSG(refused0 >= 0, "the stand-in has no lk_standin_refused");
  LK_REQUIRE(refused0 >= 0);
  size_t gs = 64;
  for (int lib = 1; lib >= 0; --lib) {
    setenv("LK_STANDIN_NO_LIBRARY", lib ? "0" : "1", 1);
    /* Distinct sources: a build of the same one may be shared. */
    const char* src = lib ? "__kernel void k(__global int* p) { }\n"
                          : "__kernel void k(__global int* p) { } /* as a module */\n";
    lightos_program_t p = NULL;
    LK_REQUIRE_OK(lightos_program_create(g_ctx, src, 0, &p));
    LK_REQUIRE_OK(lightos_program_build(p, NULL));
    lightos_kernel_t k = NULL;
    LK_REQUIRE_OK(lightos_kernel_create(p, "k", &k));
    LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, b));
    const lk_cu_kernel_t* hk = hal_kernel(k);
    LK_REQUIRE(hk);
    LK_CHECK_MSG(hk->ctx_free == (lib == 1), "kernel from a %s: ctx_free = %d",
                 lib ? "library" : "module", (int)hk->ctx_free);
    for (int w = 0; w < 2; ++w) {
      lightos_queue_t q = NULL; /* new: its event pool is empty */
      LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &q));
      LK_CHECK(api->cuCtxSetCurrent(w ? octx : NULL) == CUDA_SUCCESS);
      lightos_event_t ev = NULL;
      for (int i = 0; i < 600; ++i)
        LK_CHECK_STATUS(lightos_enqueue_kernel(q, k, 1, &gs, NULL, i == 599 ? &ev : NULL),
                        LIGHTOS_SUCCESS);
      LK_CHECK_STATUS(lightos_event_wait(ev), LIGHTOS_SUCCESS);
      LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
      LK_CHECK_MSG(refused_calls() == refused0,
                   "%s, %s current: %d driver calls made in the wrong context",
                   lib ? "library" : "module", w ? "another device's context" : "no context",
                   refused_calls() - refused0);
      refused0 = refused_calls();
      lightos_event_release(ev);
      lightos_queue_release(q);
    }
    lightos_kernel_release(k);
    lightos_program_release(p);
  }
  unsetenv("LK_STANDIN_NO_LIBRARY");
  lightos_buffer_release(b);
  lightos_context_release(other);
}

/* Launches nobody waits for are issued at once on the calling thread (no
 * command block, vtbl launch_now), but not past host work ahead of them on
 * the queue; a kernel given one buffer twice uses two of the stock's
 * credits per launch, across refills (600 launches), and the buffer is
 * let go after finish. */
static void test_launch_now(void) {
  lightos_queue_t qh = NULL;
  lightos_buffer_t b = NULL;
  lightos_kernel_t k = NULL;
  lk_queue_t* q = queue_with_kernel(&qh, &b, &k);
  LK_REQUIRE(q);
  size_t gs = 64;
  int l0 = standin_count("lk_standin_launches");
  LK_REQUIRE(l0 >= 0);
  for (int i = 0; i < 3; ++i)
    LK_CHECK_STATUS(lightos_enqueue_kernel(qh, k, 1, &gs, NULL, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_MSG(standin_count("lk_standin_launches") == l0 + 3,
               "%d of 3 launches reached the stream before enqueue returned",
               standin_count("lk_standin_launches") - l0);
  static atomic_int host_at;
  LK_REQUIRE(gate(q, &host_at));
  for (int i = 0; i < 5; ++i)
    LK_CHECK_STATUS(lightos_enqueue_kernel(qh, k, 1, &gs, NULL, NULL), LIGHTOS_SUCCESS);
  sleep_ms(20);
  LK_CHECK_MSG(standin_count("lk_standin_launches") == l0 + 3,
               "%d launches went to the stream past host work that had not run",
               standin_count("lk_standin_launches") - l0 - 3);
  open_gate();
  LK_CHECK_STATUS(lightos_queue_finish(qh), LIGHTOS_SUCCESS);
  LK_CHECK_INT(standin_count("lk_standin_launches"), l0 + 8);
  LK_CHECK(atomic_load(&host_at) != 0);

  lightos_kernel_t k2 = NULL;
  LK_REQUIRE_OK(lightos_kernel_create(g_prog, "k2", &k2));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k2, 0, b));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k2, 1, b));
  lk_object_t* ob = watch(b, LK_OBJ_BUFFER);
  LK_REQUIRE(ob);
  int before = atomic_load(&ob->refs);
  for (int i = 0; i < 600; ++i)
    LK_CHECK_STATUS(lightos_enqueue_kernel(qh, k2, 1, &gs, NULL, NULL), LIGHTOS_SUCCESS);
  lightos_kernel_release(k2); /* its two references to b go */
  LK_CHECK_STATUS(lightos_queue_finish(qh), LIGHTOS_SUCCESS);
  LK_CHECK_MSG(atomic_load(&ob->refs) == before - 2,
               "buffer given twice: %d references after finish, %d expected",
               atomic_load(&ob->refs), before - 2);
  lk_object_unref(ob);
  lightos_kernel_release(k);
  lightos_buffer_release(b);
  lightos_queue_release(qh);
}

/* ---- a device lost ------------------------------------------------------------------ */

static void test_fault(void) {
  lightos_queue_t q = NULL;
  lightos_buffer_t b = NULL;
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &q));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, 256, 0, &b));
  lightos_kernel_t f = kern("fault", b), k = kern("k", b);
  LK_REQUIRE(f && k);
  size_t gs = 64;
  lightos_event_t ev = NULL;
  LK_CHECK_STATUS(lightos_enqueue_kernel(q, f, 1, &gs, NULL, NULL), LIGHTOS_SUCCESS);
  (void)lightos_enqueue_kernel(q, k, 1, &gs, NULL, &ev);
  LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_DEVICE_LOST);
  if (ev) LK_CHECK_MSG(lightos_event_wait(ev) != LIGHTOS_SUCCESS, "work after a fault succeeded");
  LK_CHECK_STATUS(lightos_enqueue_kernel(q, k, 1, &gs, NULL, NULL), LIGHTOS_DEVICE_LOST);
  if (ev) lightos_event_release(ev);
  lightos_kernel_release(f);
  lightos_kernel_release(k);
  lightos_buffer_release(b);
  lightos_queue_release(q);
}

int main(void) {
  lk_t.program = "test_cuda_queue";
  alarm(240); /* a queue that blocks its caller would hang here */
  setenv("LIGHTOS_CUDA_LIBRARY", LK_STANDIN_LIBRARY, 1);
  setenv("LIGHTOS_NVRTC_LIBRARY", LK_STANDIN_LIBRARY, 1);
  setenv("LIGHTOS_CACHE", "0", 1); /* its images must never meet a real driver */
  setenv("LIGHTOS_CUDA_BLAS", "0", 1);
  setenv("LK_STANDIN_DEVICES", "2", 1);
  lk_test_begin("stand-in device");
  if (lightos_context_create_from_uri("cuda:0", &g_ctx) ||
      lightos_program_create(g_ctx, k_src, 0, &g_prog) || lightos_program_build(g_prog, NULL)) {
    fprintf(stderr, "FAIL setup on the stand-in driver (%s): %s\n", LK_STANDIN_LIBRARY,
            lightos_last_error()->message);
    lk_t.failed++;
    return lk_test_finish();
  }
  lk_test_end();
  LK_RUN(test_order);
  LK_RUN(test_cross_queue);
  LK_RUN(test_profiling);
  LK_RUN(test_native_behind_host_work);
  LK_RUN(test_launch_now);
  LK_RUN(test_idle_sweep);
  LK_RUN(test_ref_stock);
  LK_RUN(test_foreign_context);
  LK_RUN(test_fault); /* last: the context is lost */
  lightos_program_release(g_prog);
  lightos_context_release(g_ctx);
  return lk_test_finish();
}
