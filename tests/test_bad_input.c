/* Bad-input tests for every public function in the include/lightos headers.
 *
 * Each case is one counted check (LK_RUN_NAMED): it clears the thread's
 * error record, makes one bad call, and checks
 *   - the exact status,
 *   - that lightos_last_error() has that status and a non-empty message,
 *   - that the message contains the given words (the argument's name and/or
 *     the bad value).
 * After each group of bad calls a "sanity" case checks that the objects the
 * bad calls were made on still work (round trips, a kernel launch with the
 * right answer).
 *
 * Handles used: NULL, garbage ((T)0x1234, all-ones, a pointer to a stack
 * variable, a forged tagged handle), a handle of another type, and stale
 * handles (released objects of every type).
 *
 * Groups: registry/devices/URIs, contexts (and LIGHTOS_DEVICE), buffers
 * and sub-buffers, queues/events/queued transfers, programs (options,
 * syntax errors, parser rules, LIGHTOS_CC), kernels/arguments/launches, the
 * seed API and communicators, tensors and tensor ops.
 *
 * Cases that may crash the process (use of objects that outlive their
 * context) run in a child process (this program with "--case NAME"), so a
 * crash is one failed case and the rest still run.
 *
 * One section is white-box (it includes runtime/runtime.h): the public API
 * has no way to make queued work fail (every check is made at enqueue time;
 * CPU commands cannot fail and the OpenCL backend reports enqueue errors to
 * the caller), so the failure-propagation tests inject a failing event with
 * lk_event_create / lk_event_signal and check how the real queues of every
 * device propagate it.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lightos/lightos.h"
#include "lk_test.h"
#include "runtime/runtime.h" /* white-box: lk_event_create / lk_event_signal */

extern char** environ;

/* ---- The checker ---------------------------------------------------------- */

static void expect_(const char* file, int line, const char* call, lightos_status_t got,
                    lightos_status_t want, ...) {
  const lightos_error_info_t* e = lightos_last_error();
  va_list ap;
  const char* w;
  if (got != want) {
    lk_test_fail(file, line, "%s: expected %s, got %s (message: \"%s\")", call,
                 lightos_status_string(want), lightos_status_string(got),
                 e && e->message ? e->message : "(null)");
    return;
  }
  if (want == LIGHTOS_SUCCESS) return;
  if (!e) {
    lk_test_fail(file, line, "%s: lightos_last_error() is NULL", call);
    return;
  }
  if (e->status != want)
    lk_test_fail(file, line, "%s: last_error()->status is %s, expected %s", call,
                 lightos_status_string(e->status), lightos_status_string(want));
  if (!e->message || !e->message[0]) {
    lk_test_fail(file, line, "%s: last_error()->message is empty", call);
    return;
  }
  va_start(ap, want);
  while ((w = va_arg(ap, const char*)) != NULL)
    if (!strstr(e->message, w))
      lk_test_fail(file, line, "%s: expected \"%s\" in the message \"%s\"", call, w, e->message);
  va_end(ap);
}

/* EXPECT(call, status, words...): clears the error record, runs call. */
#define EXPECT(call, want, ...)                                                         \
  expect_(__FILE__, __LINE__, #call, (lightos_clear_error(), (call)), (want), __VA_ARGS__, \
          (const char*)NULL)
/* One counted case. */
#define BAD(name, call, want, ...) LK_RUN_NAMED(name, EXPECT(call, want, __VA_ARGS__))

/* Seed calls return NULL on failure. */
static void expect_null_(const char* file, int line, const char* call, const void* got,
                         lightos_status_t want, const char* word) {
  const lightos_error_info_t* e = lightos_last_error();
  if (got != NULL) {
    lk_test_fail(file, line, "%s: expected NULL, got %p", call, got);
    return;
  }
  if (e->status != want)
    lk_test_fail(file, line, "%s: last_error()->status is %s, expected %s (\"%s\")", call,
                 lightos_status_string(e->status), lightos_status_string(want), e->message);
  if (!e->message[0]) lk_test_fail(file, line, "%s: empty message", call);
  else if (word && !strstr(e->message, word))
    lk_test_fail(file, line, "%s: expected \"%s\" in the message \"%s\"", call, word, e->message);
}
#define BAD_NULL(name, call, want, word)                                                   \
  LK_RUN_NAMED(name, expect_null_(__FILE__, __LINE__, #call,                               \
                                  (lightos_clear_error(), (const void*)(call)), want, word))

/* ---- Fixture -------------------------------------------------------------- */

#define NV 1000 /* vadd length */
#define BUF 256 /* g_buf size   */

static const char* k_src =
    "__kernel void vadd(__global const float* src_a, __global const float* src_b,\n"
    "                   __global float* dst_c, const uint count) {\n"
    "  size_t i = get_global_id(0);\n"
    "  if (i < count) dst_c[i] = src_a[i] + src_b[i];\n"
    "}\n"
    "__kernel void types(__global int* out, int ival, uint uval, long lval, ulong ulval,\n"
    "                    float fval, double dval, __local int* scratch,\n"
    "                    __constant int* cst) {\n"
    "  size_t g = get_global_id(0);\n"
    "  scratch[get_local_id(0)] = (int)g + 1;\n"
    "  if (g == 0)\n"
    "    out[0] = ival + (int)uval + (int)lval + (int)ulval + (int)fval + (int)dval +\n"
    "             cst[0] + scratch[0];\n"
    "}\n"
    "__kernel void twolocal(__global int* out, __local int* la, __local int* lb) {\n"
    "  la[0] = 1; lb[0] = 2;\n"
    "  out[get_global_id(0)] = la[0] + lb[0];\n"
    "}\n";

static int* g_stackp;                  /* a stack variable of main */
static lightos_device_t g_dev;
static lightos_device_info_t g_info;
static uint32_t g_ndev;
static int g_have_gpu, g_have_cuda;
static lightos_context_t g_ctx, g_ctx2;
static lightos_queue_t g_q, g_q2, g_defq, g_pq;
static lightos_buffer_t g_buf, g_sub, g_subsub, g_buf2, g_a, g_b, g_c, g_out, g_cst;
static lightos_program_t g_prog, g_prog2, g_unbuilt;
static lightos_kernel_t g_vadd, g_types, g_twolocal, g_vadd2, g_unset;
static lightos_event_t g_ev, g_pev1, g_pev2;
static lightos_comm_t g_comm;
/* Stale handles: released objects of every type. */
static lightos_context_t s_ctx;
static lightos_buffer_t s_buf, s_sub;
static lightos_queue_t s_queue;
static lightos_event_t s_event;
static lightos_program_t s_prog;
static lightos_kernel_t s_kernel;
static lightos_comm_t s_comm;

#define GARBAGE(T) ((T)(uintptr_t)0x1234)
#define ALLONES(T) ((T)(uintptr_t)UINTPTR_MAX)
#define STACKH(T) ((T)(void*)g_stackp)
#define AS(T, h) ((T)(void*)(h))
/* Tagged like a real handle (bit 60, type bits of a buffer = 3, slot 1) but
 * with a generation no object ever had. */
#define FORGED_BUFFER ((lightos_buffer_t)(uintptr_t)((1ull << 60) | (0xabcdeull << 28) | \
                                                     (3ull << 24) | 1ull))

static float g_ha[NV], g_hb[NV];

static int setup(void) {
#define S(call)                                                                       \
  do {                                                                                \
    lightos_status_t s_ = (call);                                                     \
    if (s_) {                                                                         \
      fprintf(stderr, "setup: %s failed: %s (%s)\n", #call, lightos_status_string(s_), \
              lightos_last_error()->message);                                         \
      return -1;                                                                      \
    }                                                                                 \
  } while (0)
  S(lightos_device_count(&g_ndev));
  for (uint32_t i = 0; i < g_ndev; ++i) {
    lightos_device_t d;
    lightos_device_info_t in;
    S(lightos_device_get(i, &d));
    S(lightos_device_get_info(d, &in));
    if (in.type == LIGHTOS_DEVICE_TYPE_GPU_DISCRETE ||
        in.type == LIGHTOS_DEVICE_TYPE_GPU_INTEGRATED)
      g_have_gpu = 1;
    if (in.backend == LIGHTOS_BACKEND_CUDA) g_have_cuda = 1;
  }
  S(lightos_device_from_uri("cpu:0", &g_dev));
  S(lightos_device_get_info(g_dev, &g_info));
  S(lightos_context_create_for_device(g_dev, 0, &g_ctx));
  S(lightos_context_create_for_device(g_dev, 0, &g_ctx2));
  S(lightos_queue_create(g_ctx, 0, &g_q));
  S(lightos_queue_create(g_ctx2, 0, &g_q2));
  S(lightos_queue_create(g_ctx, LIGHTOS_QUEUE_PROFILING, &g_pq));
  S(lightos_context_default_queue(g_ctx, &g_defq));
  S(lightos_buffer_alloc(g_ctx, BUF, 0, &g_buf));
  S(lightos_buffer_create_sub(g_buf, 64, 64, &g_sub));
  S(lightos_buffer_create_sub(g_sub, 16, 32, &g_subsub)); /* bytes [80, 112) of g_buf */
  S(lightos_buffer_alloc(g_ctx2, BUF, 0, &g_buf2));
  S(lightos_buffer_alloc(g_ctx, NV * sizeof(float), 0, &g_a));
  S(lightos_buffer_alloc(g_ctx, NV * sizeof(float), 0, &g_b));
  S(lightos_buffer_alloc(g_ctx, NV * sizeof(float), 0, &g_c));
  S(lightos_buffer_alloc(g_ctx, 64 * sizeof(int), 0, &g_out));
  S(lightos_buffer_alloc(g_ctx, sizeof(int), 0, &g_cst));
  for (int i = 0; i < NV; ++i) {
    g_ha[i] = (float)i;
    g_hb[i] = (float)(2 * i + 1);
  }
  S(lightos_buffer_write(g_a, 0, sizeof g_ha, g_ha));
  S(lightos_buffer_write(g_b, 0, sizeof g_hb, g_hb));
  int seven = 7;
  S(lightos_buffer_write(g_cst, 0, sizeof seven, &seven));

  S(lightos_program_create(g_ctx, k_src, 0, &g_prog));
  S(lightos_program_build(g_prog, "-cl-std=CL1.2"));
  S(lightos_program_create(g_ctx2, k_src, 0, &g_prog2));
  S(lightos_program_build(g_prog2, NULL));
  S(lightos_program_create(g_ctx, k_src, 0, &g_unbuilt));
  S(lightos_kernel_create(g_prog, "vadd", &g_vadd));
  S(lightos_kernel_create(g_prog, "types", &g_types));
  S(lightos_kernel_create(g_prog, "twolocal", &g_twolocal));
  S(lightos_kernel_create(g_prog, "vadd", &g_unset));
  S(lightos_kernel_create(g_prog2, "vadd", &g_vadd2));
  S(lightos_kernel_set_arg_buffer(g_vadd, 0, g_a));
  S(lightos_kernel_set_arg_buffer(g_vadd, 1, g_b));
  S(lightos_kernel_set_arg_buffer(g_vadd, 2, g_c));
  S(lightos_kernel_set_arg_u32(g_vadd, 3, NV));

  S(lightos_event_record(g_q, &g_ev));
  S(lightos_event_wait(g_ev));
  S(lightos_event_record(g_pq, &g_pev1));
  S(lightos_enqueue_fill(g_pq, g_c, 0, NV * sizeof(float), &(float){0}, 4, NULL));
  S(lightos_event_record(g_pq, &g_pev2));
  S(lightos_queue_finish(g_pq));
  S(lightos_comm_init_all(1, &g_ctx, &g_comm));

  /* Stale handles. */
  {
    lightos_kernel_t k;
    lightos_buffer_t b, sb;
    S(lightos_context_create_for_device(g_dev, 0, &s_ctx));
    S(lightos_context_release(s_ctx));
    S(lightos_buffer_alloc(g_ctx, 64, 0, &b));
    S(lightos_buffer_create_sub(b, 0, 32, &sb));
    S(lightos_buffer_release(sb));
    S(lightos_buffer_release(b));
    s_buf = b;
    s_sub = sb;
    S(lightos_queue_create(g_ctx, 0, &s_queue));
    S(lightos_queue_release(s_queue));
    S(lightos_event_record(g_q, &s_event));
    S(lightos_event_wait(s_event));
    S(lightos_event_release(s_event));
    S(lightos_program_create(g_ctx, k_src, 0, &s_prog));
    S(lightos_program_release(s_prog));
    S(lightos_kernel_create(g_prog, "vadd", &k));
    S(lightos_kernel_release(k));
    s_kernel = k;
    S(lightos_comm_init_all(1, &g_ctx, &s_comm));
    S(lightos_comm_destroy(s_comm));
  }
  return 0;
#undef S
}

static void teardown(void) {
  lightos_comm_destroy(g_comm);
  lightos_event_release(g_ev);
  lightos_event_release(g_pev1);
  lightos_event_release(g_pev2);
  lightos_kernel_release(g_vadd);
  lightos_kernel_release(g_types);
  lightos_kernel_release(g_twolocal);
  lightos_kernel_release(g_unset);
  lightos_kernel_release(g_vadd2);
  lightos_program_release(g_prog);
  lightos_program_release(g_prog2);
  lightos_program_release(g_unbuilt);
  lightos_buffer_release(g_subsub);
  lightos_buffer_release(g_sub);
  lightos_buffer_release(g_buf);
  lightos_buffer_release(g_buf2);
  lightos_buffer_release(g_a);
  lightos_buffer_release(g_b);
  lightos_buffer_release(g_c);
  lightos_buffer_release(g_out);
  lightos_buffer_release(g_cst);
  lightos_queue_release(g_q);
  lightos_queue_release(g_q2);
  lightos_queue_release(g_pq);
  lightos_context_release(g_ctx);
  lightos_context_release(g_ctx2);
}

/* ---- Sanity checks: objects still work after bad calls --------------------- */

static void sanity_buffers(void) {
  unsigned char w[BUF], r[BUF];
  for (int i = 0; i < BUF; ++i) w[i] = (unsigned char)(i * 7 + 3);
  LK_REQUIRE_OK(lightos_buffer_write(g_buf, 0, BUF, w));
  memset(r, 0, sizeof r);
  LK_REQUIRE_OK(lightos_buffer_read(g_buf, 0, BUF, r));
  LK_CHECK(memcmp(w, r, BUF) == 0);
  /* sub-buffers see the parent's bytes at composed offsets */
  LK_REQUIRE_OK(lightos_buffer_read(g_sub, 0, 64, r));
  LK_CHECK(memcmp(r, w + 64, 64) == 0);
  LK_REQUIRE_OK(lightos_buffer_read(g_subsub, 0, 32, r));
  LK_CHECK(memcmp(r, w + 80, 32) == 0);
  /* non-overlapping copy in one allocation */
  LK_REQUIRE_OK(lightos_buffer_copy(g_buf, 0, g_buf, 128, 64));
  LK_REQUIRE_OK(lightos_buffer_read(g_buf, 128, 64, r));
  LK_CHECK(memcmp(r, w, 64) == 0);
  uint32_t pat = 0xdeadbeefu;
  LK_REQUIRE_OK(lightos_buffer_fill(g_sub, 0, 64, &pat, 4));
  LK_REQUIRE_OK(lightos_buffer_read(g_buf, 0, BUF, r));
  for (int i = 0; i < BUF; ++i) {
    unsigned char want = i >= 64 && i < 128 ? ((unsigned char*)&pat)[i % 4]
                         : i >= 128 && i < 192 ? w[i - 128]
                                                : w[i];
    if (r[i] != want) {
      (void)LK_CHECK_MSG(0, "byte %d: got %u, want %u", i, r[i], want);
      break;
    }
  }
  size_t sz = 0;
  LK_REQUIRE_OK(lightos_buffer_get_size(g_subsub, &sz));
  LK_CHECK_INT(sz, 32);
  lightos_context_t c = NULL;
  LK_REQUIRE_OK(lightos_buffer_get_context(g_sub, &c));
  LK_CHECK(c == g_ctx);
}

static void check_vadd_on(lightos_queue_t q) {
  static float hc[NV];
  memset(hc, 0, sizeof hc);
  float zero = 0;
  size_t gs = NV, ls = 64;
  LK_REQUIRE_OK(lightos_enqueue_fill(q, g_c, 0, sizeof hc, &zero, sizeof zero, NULL));
  LK_REQUIRE_OK(lightos_enqueue_kernel(q, g_vadd, 1, &gs, &ls, NULL));
  lightos_event_t ev = NULL;
  LK_REQUIRE_OK(lightos_enqueue_read(q, g_c, 0, sizeof hc, hc, &ev));
  LK_CHECK_STATUS(lightos_event_wait(ev), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_release(ev), LIGHTOS_SUCCESS);
  for (int i = 0; i < NV; ++i)
    if (hc[i] != g_ha[i] + g_hb[i]) {
      (void)LK_CHECK_MSG(0, "c[%d] = %g, want %g", i, hc[i], g_ha[i] + g_hb[i]);
      return;
    }
}

static void sanity_kernel(void) {
  check_vadd_on(g_q);
  check_vadd_on(g_defq);
}

static void sanity_types_kernel(void) {
  /* arguments set with every typed setter and a local size; the kernel sums
   * them: 1 + 2 + 3 + 4 + 5 + 6 + cst 7 + scratch[0] 1 = 29 */
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(g_types, 0, g_out));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(g_types, 1, 1));
  LK_REQUIRE_OK(lightos_kernel_set_arg_u32(g_types, 2, 2));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i64(g_types, 3, 3));
  LK_REQUIRE_OK(lightos_kernel_set_arg_u64(g_types, 4, 4));
  LK_REQUIRE_OK(lightos_kernel_set_arg_f32(g_types, 5, 5.5f));
  LK_REQUIRE_OK(lightos_kernel_set_arg_f64(g_types, 6, 6.25));
  LK_REQUIRE_OK(lightos_kernel_set_arg_local(g_types, 7, 16 * sizeof(int)));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(g_types, 8, g_cst));
  int res = 0;
  size_t gs = 4, ls = 4;
  LK_REQUIRE_OK(lightos_enqueue_kernel(g_q, g_types, 1, &gs, &ls, NULL));
  LK_REQUIRE_OK(lightos_enqueue_read(g_q, g_out, 0, sizeof res, &res, NULL));
  LK_REQUIRE_OK(lightos_queue_finish(g_q));
  LK_CHECK_INT(res, 29);
}

static void sanity_queues(void) {
  lightos_event_t e = NULL;
  LK_REQUIRE_OK(lightos_event_record(g_q, &e));
  LK_CHECK_STATUS(lightos_event_wait(e), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_query(e), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_release(e), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(g_q), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(g_q2), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(g_defq), LIGHTOS_SUCCESS);
  double ms = -1;
  LK_CHECK_STATUS(lightos_event_elapsed_ms(g_pev1, g_pev2, &ms), LIGHTOS_SUCCESS);
  LK_CHECK(ms >= 0);
}

/* ---- Registry, devices, selection --------------------------------------- */

static void case_select_gpu_missing(void) {
  lightos_device_t d;
  if (g_have_gpu) {
    lk_test_skip("a GPU is present");
    return;
  }
  EXPECT(lightos_device_select(LIGHTOS_DEVICE_GPU, &d), LIGHTOS_NOT_FOUND, "gpu");
}

static void case_select_cuda_missing(void) {
  lightos_device_t d;
  if (g_have_cuda) {
    lk_test_skip("a CUDA device is present");
    return;
  }
  EXPECT(lightos_device_select(LIGHTOS_DEVICE_BACKEND_CUDA, &d), LIGHTOS_NOT_FOUND, "cuda");
}

static void case_uri_cuda_missing(void) {
  lightos_device_t d;
  if (g_have_cuda) {
    lk_test_skip("a CUDA device is present");
    return;
  }
  EXPECT(lightos_device_from_uri("cuda:0", &d), LIGHTOS_NOT_FOUND, "cuda:0");
}

static void case_device_get_past_end(void) {
  lightos_device_t d;
  char num[16];
  snprintf(num, sizeof num, "%u", g_ndev);
  EXPECT(lightos_device_get(g_ndev, &d), LIGHTOS_INVALID_ARGUMENT, "index", num);
}

static void case_unknown_dtype(void) {
  LK_CHECK_INT(lightos_dtype_size((lightos_dtype_t)99), 0);
  LK_CHECK_INT(lightos_dtype_size((lightos_dtype_t)0), 0);
  LK_CHECK_STR(lightos_dtype_name((lightos_dtype_t)99), "unknown");
}

static void case_unknown_status(void) {
  LK_CHECK_STR(lightos_status_string((lightos_status_t)999), "LIGHTOS_UNKNOWN_STATUS");
  LK_CHECK_STR(lightos_status_string((lightos_status_t)-1), "LIGHTOS_UNKNOWN_STATUS");
}

static void group_registry(void) {
  lightos_backend_info_t bi;
  lightos_device_t d;
  lightos_device_info_t info;
  int64_t score;
  char buf[64];
  BAD("backend_count: NULL out_count", lightos_backend_count(NULL), LIGHTOS_INVALID_ARGUMENT,
      "out_count");
  BAD("backend_get_info: NULL out_info", lightos_backend_get_info(0, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_info");
  BAD("backend_get_info: index 999", lightos_backend_get_info(999, &bi),
      LIGHTOS_INVALID_ARGUMENT, "index", "999");
  BAD("device_count: NULL out_count", lightos_device_count(NULL), LIGHTOS_INVALID_ARGUMENT,
      "out_count");
  BAD("device_get: NULL out_device", lightos_device_get(0, NULL), LIGHTOS_INVALID_ARGUMENT,
      "out_device");
  LK_RUN_NAMED("device_get: index == device count", case_device_get_past_end());
  BAD("device_get: index UINT32_MAX", lightos_device_get(UINT32_MAX, &d),
      LIGHTOS_INVALID_ARGUMENT, "index", "4294967295");
  BAD("device_get_info: NULL device", lightos_device_get_info(NULL, &info),
      LIGHTOS_INVALID_ARGUMENT, "device", "NULL");
  BAD("device_get_info: garbage handle 0x1234",
      lightos_device_get_info(GARBAGE(lightos_device_t), &info), LIGHTOS_INVALID_ARGUMENT,
      "device", "0x1234");
  BAD("device_get_info: all-ones handle",
      lightos_device_get_info(ALLONES(lightos_device_t), &info), LIGHTOS_INVALID_ARGUMENT,
      "device");
  BAD("device_get_info: pointer to a stack variable",
      lightos_device_get_info(STACKH(lightos_device_t), &info), LIGHTOS_INVALID_ARGUMENT,
      "device");
  BAD("device_get_info: a context passed as a device",
      lightos_device_get_info(AS(lightos_device_t, g_ctx), &info), LIGHTOS_INVALID_ARGUMENT,
      "device", "context");
  BAD("device_get_info: NULL out_info", lightos_device_get_info(g_dev, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_info");
  BAD("device_score: NULL device", lightos_device_score(NULL, &score), LIGHTOS_INVALID_ARGUMENT,
      "device");
  BAD("device_score: a queue passed as a device",
      lightos_device_score(AS(lightos_device_t, g_q), &score), LIGHTOS_INVALID_ARGUMENT, "device",
      "queue");
  BAD("device_score: NULL out_score", lightos_device_score(g_dev, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_score");
  BAD("device_select: NULL out_device", lightos_device_select(LIGHTOS_DEVICE_ANY, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_device");
  BAD("device_select: kind 99", lightos_device_select((lightos_device_kind_t)99, &d),
      LIGHTOS_INVALID_ARGUMENT, "kind", "99");
  BAD("device_select: kind -1", lightos_device_select((lightos_device_kind_t)-1, &d),
      LIGHTOS_INVALID_ARGUMENT, "kind", "-1");
  BAD("device_select: kind 4 (gap between kinds)",
      lightos_device_select((lightos_device_kind_t)4, &d), LIGHTOS_INVALID_ARGUMENT, "kind",
      "4");
  LK_RUN_NAMED("device_select: GPU on a machine without one", case_select_gpu_missing());
  LK_RUN_NAMED("device_select: CUDA backend without CUDA", case_select_cuda_missing());
  BAD("device_from_uri: NULL uri", lightos_device_from_uri(NULL, &d), LIGHTOS_INVALID_ARGUMENT,
      "uri");
  BAD("device_from_uri: NULL out_device", lightos_device_from_uri("cpu", NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_device");
  BAD("device_from_uri: \"\"", lightos_device_from_uri("", &d), LIGHTOS_INVALID_ARGUMENT,
      "uri");
  BAD("device_from_uri: \"cuda:\"", lightos_device_from_uri("cuda:", &d),
      LIGHTOS_INVALID_ARGUMENT, "cuda:");
  BAD("device_from_uri: \"cpu:\"", lightos_device_from_uri("cpu:", &d), LIGHTOS_INVALID_ARGUMENT,
      "cpu:");
  BAD("device_from_uri: \"cpu:-1\"", lightos_device_from_uri("cpu:-1", &d),
      LIGHTOS_INVALID_ARGUMENT, "cpu:-1");
  BAD("device_from_uri: \"cpu:99\"", lightos_device_from_uri("cpu:99", &d), LIGHTOS_NOT_FOUND,
      "cpu:99");
  BAD("device_from_uri: \"nonsense:0\"", lightos_device_from_uri("nonsense:0", &d),
      LIGHTOS_INVALID_ARGUMENT, "nonsense");
  BAD("device_from_uri: \"cpu:1x\"", lightos_device_from_uri("cpu:1x", &d),
      LIGHTOS_INVALID_ARGUMENT, "1x");
  BAD("device_from_uri: \"cpu:+0\"", lightos_device_from_uri("cpu:+0", &d),
      LIGHTOS_INVALID_ARGUMENT, "cpu:+0");
  BAD("device_from_uri: index above UINT32_MAX",
      lightos_device_from_uri("cpu:99999999999", &d), LIGHTOS_INVALID_ARGUMENT, "99999999999");
  LK_RUN_NAMED("device_from_uri: \"cuda:0\" without CUDA", case_uri_cuda_missing());
  BAD("explain_selection: NULL buf with cap 64",
      lightos_device_explain_selection(LIGHTOS_DEVICE_ANY, NULL, 64, NULL),
      LIGHTOS_INVALID_ARGUMENT, "buf");
  BAD("explain_selection: kind 77",
      lightos_device_explain_selection((lightos_device_kind_t)77, buf, sizeof buf, NULL),
      LIGHTOS_INVALID_ARGUMENT, "kind", "77");
  LK_RUN_NAMED("dtype_size/dtype_name: unknown dtype 99", case_unknown_dtype());
  LK_RUN_NAMED("status_string: unknown status 999", case_unknown_status());
}

/* ---- Contexts ------------------------------------------------------------- */

static void with_env(const char* name, const char* value, lightos_status_t want, const char* w1,
                     const char* w2) {
  const char* old = getenv(name);
  char* saved = old ? strdup(old) : NULL;
  lightos_context_t c = NULL;
  setenv(name, value, 1);
  EXPECT(lightos_context_create(LIGHTOS_DEVICE_ANY, &c), want, w1, w2);
  if (saved) {
    setenv(name, saved, 1);
    free(saved);
  } else {
    unsetenv(name);
  }
  if (c) lightos_context_release(c);
  /* restored: ANY works again */
  c = NULL;
  LK_CHECK_STATUS(lightos_context_create(LIGHTOS_DEVICE_ANY, &c), LIGHTOS_SUCCESS);
  if (c) lightos_context_release(c);
}

static void sanity_contexts(void) {
  lightos_device_t d = NULL;
  LK_REQUIRE_OK(lightos_context_get_device(g_ctx, &d));
  LK_CHECK(d == g_dev);
  lightos_context_t c = NULL;
  LK_REQUIRE_OK(lightos_context_create_from_uri("cpu:0", &c));
  LK_REQUIRE_OK(lightos_context_retain(c));
  LK_CHECK_STATUS(lightos_context_release(c), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_context_release(c), LIGHTOS_SUCCESS);
  sanity_buffers();
}

static void group_context(void) {
  lightos_context_t c;
  lightos_device_t d;
  lightos_queue_t q;
  BAD("context_create: NULL out_context", lightos_context_create(LIGHTOS_DEVICE_CPU, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_context");
  BAD("context_create: kind 42", lightos_context_create((lightos_device_kind_t)42, &c),
      LIGHTOS_INVALID_ARGUMENT, "kind", "42");
  LK_RUN_NAMED("context_create(ANY): LIGHTOS_DEVICE=cpu:99 (missing device)",
               with_env("LIGHTOS_DEVICE", "cpu:99", LIGHTOS_NOT_FOUND, "LIGHTOS_DEVICE", "cpu:99"));
  LK_RUN_NAMED("context_create(ANY): LIGHTOS_DEVICE=nonsense:0 (bad URI)",
               with_env("LIGHTOS_DEVICE", "nonsense:0", LIGHTOS_INVALID_ARGUMENT, "LIGHTOS_DEVICE",
                        "nonsense"));
  BAD("context_create_for_device: NULL device", lightos_context_create_for_device(NULL, 0, &c),
      LIGHTOS_INVALID_ARGUMENT, "device");
  BAD("context_create_for_device: garbage device",
      lightos_context_create_for_device(GARBAGE(lightos_device_t), 0, &c),
      LIGHTOS_INVALID_ARGUMENT, "device", "0x1234");
  BAD("context_create_for_device: a buffer passed as a device",
      lightos_context_create_for_device(AS(lightos_device_t, g_buf), 0, &c),
      LIGHTOS_INVALID_ARGUMENT, "device", "buffer");
  BAD("context_create_for_device: unknown flag bits 0x80",
      lightos_context_create_for_device(g_dev, 0x80, &c), LIGHTOS_INVALID_ARGUMENT, "flags",
      "0x80");
  BAD("context_create_for_device: NULL out_context",
      lightos_context_create_for_device(g_dev, 0, NULL), LIGHTOS_INVALID_ARGUMENT, "out_context");
  BAD("context_create_from_uri: NULL uri", lightos_context_create_from_uri(NULL, &c),
      LIGHTOS_INVALID_ARGUMENT, "uri");
  BAD("context_create_from_uri: \"cpu:99\"", lightos_context_create_from_uri("cpu:99", &c),
      LIGHTOS_NOT_FOUND, "cpu:99");
  BAD("context_create_from_uri: \"nonsense:0\"",
      lightos_context_create_from_uri("nonsense:0", &c), LIGHTOS_INVALID_ARGUMENT, "nonsense");
  BAD("context_create_from_uri: NULL out_context", lightos_context_create_from_uri("cpu", NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_context");
  BAD("context_retain: NULL", lightos_context_retain(NULL), LIGHTOS_INVALID_ARGUMENT, "context");
  BAD("context_retain: use after release", lightos_context_retain(s_ctx),
      LIGHTOS_INVALID_ARGUMENT, "context", "release");
  BAD("context_release: garbage handle", lightos_context_release(GARBAGE(lightos_context_t)),
      LIGHTOS_INVALID_ARGUMENT, "context", "0x1234");
  BAD("context_release: use after release (double release)", lightos_context_release(s_ctx),
      LIGHTOS_INVALID_ARGUMENT, "context", "release");
  BAD("context_release: a queue passed as a context",
      lightos_context_release(AS(lightos_context_t, g_q)), LIGHTOS_INVALID_ARGUMENT, "context",
      "queue");
  BAD("context_get_device: NULL out_device", lightos_context_get_device(g_ctx, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_device");
  BAD("context_get_device: use after release", lightos_context_get_device(s_ctx, &d),
      LIGHTOS_INVALID_ARGUMENT, "context", "release");
  BAD("context_default_queue: NULL out_queue", lightos_context_default_queue(g_ctx, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_queue");
  BAD("context_default_queue: stack pointer as context",
      lightos_context_default_queue(STACKH(lightos_context_t), &q), LIGHTOS_INVALID_ARGUMENT,
      "context");
  LK_RUN_NAMED("sanity: contexts still work after bad context calls", sanity_contexts());
}

/* ---- Buffers -------------------------------------------------------------- */

static void case_alloc_over_device_memory(void) {
  lightos_buffer_t b = NULL;
  if (g_info.global_mem_bytes >= (uint64_t)SIZE_MAX) {
    lk_test_skip("device memory is not below SIZE_MAX");
    return;
  }
  EXPECT(lightos_buffer_alloc(g_ctx, (size_t)g_info.global_mem_bytes + 1, 0, &b),
         LIGHTOS_OUT_OF_MEMORY, "size");
  LK_CHECK(b == NULL);
}

static void case_unmap_foreign(void) {
  int local_var = 0;
  EXPECT(lightos_buffer_unmap(g_buf, &local_var), LIGHTOS_INVALID_ARGUMENT, "ptr");
}

static void case_unmap_other_buffers_ptr(void) {
  void* p = NULL;
  LK_REQUIRE_OK(lightos_buffer_map(g_a, 0, 16, &p));
  EXPECT(lightos_buffer_unmap(g_buf, p), LIGHTOS_INVALID_ARGUMENT, "ptr");
  LK_CHECK_STATUS(lightos_buffer_unmap(g_a, p), LIGHTOS_SUCCESS);
}

static void case_unmap_twice(void) {
  void* p = NULL;
  LK_REQUIRE_OK(lightos_buffer_map(g_buf, 0, 16, &p));
  LK_REQUIRE_OK(lightos_buffer_unmap(g_buf, p));
  EXPECT(lightos_buffer_unmap(g_buf, p), LIGHTOS_INVALID_ARGUMENT, "ptr");
}

/* The second unmap of a pointer must fail even while another mapping of
 * the same buffer is live. */
static void case_unmap_twice_other_mapping_live(void) {
  void *p1 = NULL, *p2 = NULL;
  LK_REQUIRE_OK(lightos_buffer_map(g_buf, 0, 16, &p1));
  LK_REQUIRE_OK(lightos_buffer_map(g_buf, 32, 16, &p2));
  LK_REQUIRE_OK(lightos_buffer_unmap(g_buf, p1));
  EXPECT(lightos_buffer_unmap(g_buf, p1), LIGHTOS_INVALID_ARGUMENT, "ptr");
  lightos_buffer_unmap(g_buf, p2); /* may fail if the bad unmap above was accepted */
}

/* A pointer inside the buffer that map never returned. */
static void case_unmap_unmapped_interior(void) {
  void* p = NULL;
  LK_REQUIRE_OK(lightos_buffer_map(g_buf, 0, 64, &p));
  EXPECT(lightos_buffer_unmap(g_buf, (char*)p + 4), LIGHTOS_INVALID_ARGUMENT, "ptr");
  lightos_buffer_unmap(g_buf, p);
}

static void case_unmap_never_mapped(void) {
  lightos_buffer_t b = NULL;
  void* p = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, 64, 0, &b));
  /* find the address through a mapping of another buffer is not possible:
   * map and unmap once, then unmap again */
  LK_REQUIRE_OK(lightos_buffer_map(b, 0, 64, &p));
  LK_REQUIRE_OK(lightos_buffer_unmap(b, p));
  EXPECT(lightos_buffer_unmap(b, p), LIGHTOS_INVALID_ARGUMENT, "ptr");
  lightos_buffer_release(b);
}

static void case_sub_of_sub_past_its_end(void) {
  lightos_buffer_t b = NULL;
  /* g_sub is [64,128) of a 256-byte buffer: [60, 68) of g_sub lies inside
   * the parent but past g_sub's end. */
  EXPECT(lightos_buffer_create_sub(g_sub, 60, 8, &b), LIGHTOS_OUT_OF_RANGE, "60", "8");
  LK_CHECK(b == NULL);
}

static void group_buffer(void) {
  lightos_buffer_t b = NULL;
  size_t sz;
  lightos_context_t c;
  unsigned char data[BUF * 2];
  void* p;
  uint32_t pat4 = 0x01020304u;
  unsigned char pat256[256];
  memset(data, 0x5a, sizeof data);
  memset(pat256, 1, sizeof pat256);
  /* alloc */
  BAD("buffer_alloc: NULL context", lightos_buffer_alloc(NULL, 16, 0, &b),
      LIGHTOS_INVALID_ARGUMENT, "context");
  BAD("buffer_alloc: a queue passed as a context",
      lightos_buffer_alloc(AS(lightos_context_t, g_q), 16, 0, &b), LIGHTOS_INVALID_ARGUMENT,
      "context", "queue");
  BAD("buffer_alloc: use after release of the context", lightos_buffer_alloc(s_ctx, 16, 0, &b),
      LIGHTOS_INVALID_ARGUMENT, "context", "release");
  BAD("buffer_alloc: size 0", lightos_buffer_alloc(g_ctx, 0, 0, &b), LIGHTOS_INVALID_ARGUMENT,
      "size");
  BAD("buffer_alloc: NULL out_buffer", lightos_buffer_alloc(g_ctx, 16, 0, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_buffer");
  BAD("buffer_alloc: unknown flag bits 0x100", lightos_buffer_alloc(g_ctx, 16, 0x100, &b),
      LIGHTOS_INVALID_ARGUMENT, "flags", "0x100");
  BAD("buffer_alloc: size SIZE_MAX", lightos_buffer_alloc(g_ctx, SIZE_MAX, 0, &b),
      LIGHTOS_OUT_OF_MEMORY, "size");
  BAD("buffer_alloc: size SIZE_MAX/2", lightos_buffer_alloc(g_ctx, SIZE_MAX / 2, 0, &b),
      LIGHTOS_OUT_OF_MEMORY, "size");
  LK_RUN_NAMED("buffer_alloc: device memory + 1 bytes", case_alloc_over_device_memory());
  /* sub-buffers */
  BAD("buffer_create_sub: NULL parent", lightos_buffer_create_sub(NULL, 0, 16, &b),
      LIGHTOS_INVALID_ARGUMENT, "parent");
  BAD("buffer_create_sub: parent used after release", lightos_buffer_create_sub(s_buf, 0, 16, &b),
      LIGHTOS_INVALID_ARGUMENT, "parent", "release");
  BAD("buffer_create_sub: a kernel passed as the parent",
      lightos_buffer_create_sub(AS(lightos_buffer_t, g_vadd), 0, 16, &b),
      LIGHTOS_INVALID_ARGUMENT, "parent", "kernel");
  BAD("buffer_create_sub: size 0", lightos_buffer_create_sub(g_buf, 0, 0, &b),
      LIGHTOS_INVALID_ARGUMENT, "size");
  BAD("buffer_create_sub: size one past the end", lightos_buffer_create_sub(g_buf, 0, BUF + 1, &b),
      LIGHTOS_OUT_OF_RANGE, "size", "257");
  BAD("buffer_create_sub: offset == size", lightos_buffer_create_sub(g_buf, BUF, 1, &b),
      LIGHTOS_OUT_OF_RANGE, "offset", "256");
  BAD("buffer_create_sub: offset SIZE_MAX (offset+size overflows)",
      lightos_buffer_create_sub(g_buf, SIZE_MAX, 1, &b), LIGHTOS_OUT_OF_RANGE, "offset");
  BAD("buffer_create_sub: size SIZE_MAX", lightos_buffer_create_sub(g_buf, 1, SIZE_MAX, &b),
      LIGHTOS_OUT_OF_RANGE, "size");
  LK_RUN_NAMED("buffer_create_sub: sub of a sub past the sub's end",
               case_sub_of_sub_past_its_end());
  BAD("buffer_create_sub: NULL out_buffer", lightos_buffer_create_sub(g_buf, 0, 16, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_buffer");
  /* retain/release/getters */
  BAD("buffer_retain: NULL", lightos_buffer_retain(NULL), LIGHTOS_INVALID_ARGUMENT, "buffer");
  BAD("buffer_retain: use after release", lightos_buffer_retain(s_buf), LIGHTOS_INVALID_ARGUMENT,
      "buffer", "release");
  BAD("buffer_release: garbage handle", lightos_buffer_release(GARBAGE(lightos_buffer_t)),
      LIGHTOS_INVALID_ARGUMENT, "buffer", "0x1234");
  BAD("buffer_release: forged tagged handle", lightos_buffer_release(FORGED_BUFFER),
      LIGHTOS_INVALID_ARGUMENT, "buffer");
  BAD("buffer_release: sub-buffer used after release", lightos_buffer_release(s_sub),
      LIGHTOS_INVALID_ARGUMENT, "buffer", "release");
  BAD("buffer_release: an event passed as a buffer",
      lightos_buffer_release(AS(lightos_buffer_t, g_ev)), LIGHTOS_INVALID_ARGUMENT, "buffer",
      "event");
  BAD("buffer_get_size: NULL out_size", lightos_buffer_get_size(g_buf, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_size");
  BAD("buffer_get_size: a queue passed as a buffer",
      lightos_buffer_get_size(AS(lightos_buffer_t, g_q), &sz), LIGHTOS_INVALID_ARGUMENT, "buffer",
      "queue");
  BAD("buffer_get_size: use after release", lightos_buffer_get_size(s_buf, &sz),
      LIGHTOS_INVALID_ARGUMENT, "buffer", "release");
  BAD("buffer_get_context: NULL out_context", lightos_buffer_get_context(g_buf, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_context");
  BAD("buffer_get_context: stack pointer as buffer",
      lightos_buffer_get_context(STACKH(lightos_buffer_t), &c), LIGHTOS_INVALID_ARGUMENT, "buffer");
  /* blocking write */
  BAD("buffer_write: NULL dst", lightos_buffer_write(NULL, 0, 16, data), LIGHTOS_INVALID_ARGUMENT,
      "dst");
  BAD("buffer_write: a kernel passed as dst",
      lightos_buffer_write(AS(lightos_buffer_t, g_vadd), 0, 16, data), LIGHTOS_INVALID_ARGUMENT,
      "dst", "kernel");
  BAD("buffer_write: dst used after release", lightos_buffer_write(s_buf, 0, 16, data),
      LIGHTOS_INVALID_ARGUMENT, "dst", "release");
  BAD("buffer_write: NULL src", lightos_buffer_write(g_buf, 0, 16, NULL),
      LIGHTOS_INVALID_ARGUMENT, "src");
  BAD("buffer_write: size 0", lightos_buffer_write(g_buf, 0, 0, data), LIGHTOS_INVALID_ARGUMENT,
      "size");
  BAD("buffer_write: range past the end", lightos_buffer_write(g_buf, 250, 16, data),
      LIGHTOS_OUT_OF_RANGE, "offset", "250");
  BAD("buffer_write: size bigger than the buffer", lightos_buffer_write(g_buf, 0, BUF + 1, data),
      LIGHTOS_OUT_OF_RANGE, "size", "257");
  BAD("buffer_write: offset SIZE_MAX", lightos_buffer_write(g_buf, SIZE_MAX, 1, data),
      LIGHTOS_OUT_OF_RANGE, "offset");
  BAD("buffer_write: size SIZE_MAX", lightos_buffer_write(g_buf, 1, SIZE_MAX, data),
      LIGHTOS_OUT_OF_RANGE, "size");
  BAD("buffer_write: sub-buffer past its end (inside the parent)",
      lightos_buffer_write(g_sub, 0, 65, data), LIGHTOS_OUT_OF_RANGE, "size", "65");
  BAD("buffer_write: nested sub-buffer past its end",
      lightos_buffer_write(g_subsub, 16, 17, data), LIGHTOS_OUT_OF_RANGE, "offset", "16");
  /* blocking read */
  BAD("buffer_read: NULL src", lightos_buffer_read(NULL, 0, 16, data), LIGHTOS_INVALID_ARGUMENT,
      "src");
  BAD("buffer_read: NULL dst pointer", lightos_buffer_read(g_buf, 0, 16, NULL),
      LIGHTOS_INVALID_ARGUMENT, "dst");
  BAD("buffer_read: size 0", lightos_buffer_read(g_buf, 0, 0, data), LIGHTOS_INVALID_ARGUMENT,
      "size");
  BAD("buffer_read: offset == size", lightos_buffer_read(g_buf, BUF, 1, data),
      LIGHTOS_OUT_OF_RANGE, "offset", "256");
  BAD("buffer_read: sub-buffer past its end", lightos_buffer_read(g_sub, 60, 8, data),
      LIGHTOS_OUT_OF_RANGE, "offset", "60");
  BAD("buffer_read: offset SIZE_MAX/2 + size SIZE_MAX/2 + 2 overflows",
      lightos_buffer_read(g_buf, SIZE_MAX / 2, SIZE_MAX / 2 + 2, data), LIGHTOS_OUT_OF_RANGE,
      "offset");
  /* blocking copy */
  BAD("buffer_copy: NULL src", lightos_buffer_copy(NULL, 0, g_buf, 0, 16),
      LIGHTOS_INVALID_ARGUMENT, "src");
  BAD("buffer_copy: NULL dst", lightos_buffer_copy(g_buf, 0, NULL, 0, 16),
      LIGHTOS_INVALID_ARGUMENT, "dst");
  BAD("buffer_copy: src used after release", lightos_buffer_copy(s_buf, 0, g_buf, 0, 16),
      LIGHTOS_INVALID_ARGUMENT, "src", "release");
  BAD("buffer_copy: size 0", lightos_buffer_copy(g_a, 0, g_b, 0, 0), LIGHTOS_INVALID_ARGUMENT,
      "size");
  BAD("buffer_copy: src range past the end", lightos_buffer_copy(g_buf, 200, g_a, 0, 100),
      LIGHTOS_OUT_OF_RANGE, "src", "200");
  BAD("buffer_copy: dst range past the end", lightos_buffer_copy(g_a, 0, g_buf, 200, 100),
      LIGHTOS_OUT_OF_RANGE, "dst", "200");
  BAD("buffer_copy: src_offset SIZE_MAX", lightos_buffer_copy(g_buf, SIZE_MAX, g_a, 0, 1),
      LIGHTOS_OUT_OF_RANGE, "src");
  BAD("buffer_copy: dst_offset SIZE_MAX", lightos_buffer_copy(g_a, 0, g_buf, SIZE_MAX, 1),
      LIGHTOS_OUT_OF_RANGE, "dst");
  BAD("buffer_copy: overlapping ranges of one buffer", lightos_buffer_copy(g_buf, 0, g_buf, 8, 16),
      LIGHTOS_INVALID_ARGUMENT, "overlap");
  BAD("buffer_copy: same range of one buffer", lightos_buffer_copy(g_buf, 32, g_buf, 32, 16),
      LIGHTOS_INVALID_ARGUMENT, "overlap");
  BAD("buffer_copy: sub-buffer onto its overlapping parent range",
      lightos_buffer_copy(g_sub, 0, g_buf, 80, 32), LIGHTOS_INVALID_ARGUMENT, "overlap");
  BAD("buffer_copy: nested sub-buffer onto its grand-parent range",
      lightos_buffer_copy(g_buf, 70, g_subsub, 0, 16), LIGHTOS_INVALID_ARGUMENT, "overlap");
  /* blocking fill */
  BAD("buffer_fill: NULL dst", lightos_buffer_fill(NULL, 0, 16, &pat4, 4),
      LIGHTOS_INVALID_ARGUMENT, "dst");
  BAD("buffer_fill: NULL pattern", lightos_buffer_fill(g_buf, 0, 16, NULL, 4),
      LIGHTOS_INVALID_ARGUMENT, "pattern");
  BAD("buffer_fill: pattern_size 0", lightos_buffer_fill(g_buf, 0, 16, &pat4, 0),
      LIGHTOS_INVALID_ARGUMENT, "pattern_size", "0");
  BAD("buffer_fill: pattern_size 3", lightos_buffer_fill(g_buf, 0, 12, &pat4, 3),
      LIGHTOS_INVALID_ARGUMENT, "pattern_size", "3");
  BAD("buffer_fill: pattern_size 256", lightos_buffer_fill(g_buf, 0, 256, pat256, 256),
      LIGHTOS_INVALID_ARGUMENT, "pattern_size", "256");
  BAD("buffer_fill: pattern_size 24 (not a power of two)",
      lightos_buffer_fill(g_buf, 0, 48, pat256, 24), LIGHTOS_INVALID_ARGUMENT, "pattern_size",
      "24");
  BAD("buffer_fill: offset 2 not a multiple of pattern_size 4",
      lightos_buffer_fill(g_buf, 2, 16, &pat4, 4), LIGHTOS_INVALID_ARGUMENT, "offset", "2");
  BAD("buffer_fill: size 6 not a multiple of pattern_size 4",
      lightos_buffer_fill(g_buf, 0, 6, &pat4, 4), LIGHTOS_INVALID_ARGUMENT, "size", "6");
  BAD("buffer_fill: size 0", lightos_buffer_fill(g_buf, 0, 0, &pat4, 4), LIGHTOS_INVALID_ARGUMENT,
      "size");
  BAD("buffer_fill: range past the end", lightos_buffer_fill(g_buf, 240, 32, &pat4, 4),
      LIGHTOS_OUT_OF_RANGE, "offset", "240");
  BAD("buffer_fill: sub-buffer past its end", lightos_buffer_fill(g_sub, 0, 128, &pat4, 4),
      LIGHTOS_OUT_OF_RANGE, "size", "128");
  BAD("buffer_fill: offset SIZE_MAX-3 (aligned, overflowing)",
      lightos_buffer_fill(g_buf, SIZE_MAX - 3, 4, &pat4, 4), LIGHTOS_OUT_OF_RANGE, "offset");
  /* map/unmap */
  BAD("buffer_map: NULL buffer", lightos_buffer_map(NULL, 0, 16, &p), LIGHTOS_INVALID_ARGUMENT,
      "buffer");
  BAD("buffer_map: NULL out_ptr", lightos_buffer_map(g_buf, 0, 16, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_ptr");
  BAD("buffer_map: size 0", lightos_buffer_map(g_buf, 0, 0, &p), LIGHTOS_INVALID_ARGUMENT, "size");
  BAD("buffer_map: range past the end", lightos_buffer_map(g_buf, 248, 16, &p),
      LIGHTOS_OUT_OF_RANGE, "offset", "248");
  BAD("buffer_map: offset SIZE_MAX", lightos_buffer_map(g_buf, SIZE_MAX, 1, &p),
      LIGHTOS_OUT_OF_RANGE, "offset");
  BAD("buffer_map: sub-buffer past its end", lightos_buffer_map(g_sub, 32, 64, &p),
      LIGHTOS_OUT_OF_RANGE, "offset", "32");
  BAD("buffer_map: use after release", lightos_buffer_map(s_buf, 0, 16, &p),
      LIGHTOS_INVALID_ARGUMENT, "buffer", "release");
  BAD("buffer_unmap: NULL buffer", lightos_buffer_unmap(NULL, data), LIGHTOS_INVALID_ARGUMENT,
      "buffer");
  BAD("buffer_unmap: NULL ptr", lightos_buffer_unmap(g_buf, NULL), LIGHTOS_INVALID_ARGUMENT,
      "ptr");
  LK_RUN_NAMED("buffer_unmap: foreign pointer (a stack variable)", case_unmap_foreign());
  LK_RUN_NAMED("buffer_unmap: pointer mapped from another buffer", case_unmap_other_buffers_ptr());
  LK_RUN_NAMED("buffer_unmap: unmap twice", case_unmap_twice());
  LK_RUN_NAMED("buffer_unmap: unmap twice while another mapping is live",
               case_unmap_twice_other_mapping_live());
  LK_RUN_NAMED("buffer_unmap: interior pointer map never returned",
               case_unmap_unmapped_interior());
  LK_RUN_NAMED("buffer_unmap: buffer with no mapping", case_unmap_never_mapped());
  LK_RUN_NAMED("sanity: buffers still round-trip after bad buffer calls", sanity_buffers());
}

/* ---- Queues, queued transfers, events ------------------------------------ */

static void case_release_default_queue(void) {
  EXPECT(lightos_queue_release(g_defq), LIGHTOS_INVALID_ARGUMENT, "default");
  /* still usable */
  LK_CHECK_STATUS(lightos_queue_finish(g_defq), LIGHTOS_SUCCESS);
  sanity_buffers();
}

static void case_elapsed_non_profiling(void) {
  lightos_event_t e1 = NULL, e2 = NULL;
  double ms = 0;
  LK_REQUIRE_OK(lightos_event_record(g_q, &e1));
  LK_REQUIRE_OK(lightos_event_record(g_q, &e2));
  LK_REQUIRE_OK(lightos_event_wait(e2));
  LK_REQUIRE_OK(lightos_event_wait(e1));
  EXPECT(lightos_event_elapsed_ms(e1, e2, &ms), LIGHTOS_INVALID_ARGUMENT, "PROFILING");
  lightos_event_release(e1);
  lightos_event_release(e2);
}

static void case_elapsed_mixed(void) {
  double ms = 0;
  EXPECT(lightos_event_elapsed_ms(g_pev1, g_ev, &ms), LIGHTOS_INVALID_ARGUMENT, "end",
         "PROFILING");
}

static void group_queue(void) {
  lightos_queue_t q;
  lightos_event_t e;
  double ms;
  unsigned char data[64];
  uint32_t pat4 = 7;
  memset(data, 1, sizeof data);
  BAD("queue_create: NULL context", lightos_queue_create(NULL, 0, &q), LIGHTOS_INVALID_ARGUMENT,
      "context");
  BAD("queue_create: context used after release", lightos_queue_create(s_ctx, 0, &q),
      LIGHTOS_INVALID_ARGUMENT, "context", "release");
  BAD("queue_create: unknown flag bits 0x10", lightos_queue_create(g_ctx, 0x10, &q),
      LIGHTOS_INVALID_ARGUMENT, "flags", "0x10");
  BAD("queue_create: NULL out_queue", lightos_queue_create(g_ctx, 0, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_queue");
  BAD("queue_retain: NULL", lightos_queue_retain(NULL), LIGHTOS_INVALID_ARGUMENT, "queue");
  BAD("queue_retain: use after release", lightos_queue_retain(s_queue), LIGHTOS_INVALID_ARGUMENT,
      "queue", "release");
  BAD("queue_release: garbage", lightos_queue_release(GARBAGE(lightos_queue_t)),
      LIGHTOS_INVALID_ARGUMENT, "queue", "0x1234");
  BAD("queue_release: a buffer passed as a queue",
      lightos_queue_release(AS(lightos_queue_t, g_buf)), LIGHTOS_INVALID_ARGUMENT, "queue",
      "buffer");
  LK_RUN_NAMED("queue_release: the context's default queue", case_release_default_queue());
  BAD("queue_finish: NULL", lightos_queue_finish(NULL), LIGHTOS_INVALID_ARGUMENT, "queue");
  BAD("queue_finish: use after release", lightos_queue_finish(s_queue), LIGHTOS_INVALID_ARGUMENT,
      "queue", "release");
  BAD("queue_wait_event: NULL queue", lightos_queue_wait_event(NULL, g_ev),
      LIGHTOS_INVALID_ARGUMENT, "queue");
  BAD("queue_wait_event: NULL event", lightos_queue_wait_event(g_q, NULL),
      LIGHTOS_INVALID_ARGUMENT, "event");
  BAD("queue_wait_event: event used after release", lightos_queue_wait_event(g_q, s_event),
      LIGHTOS_INVALID_ARGUMENT, "event", "release");
  BAD("queue_wait_event: a buffer passed as an event",
      lightos_queue_wait_event(g_q, AS(lightos_event_t, g_buf)), LIGHTOS_INVALID_ARGUMENT,
      "event", "buffer");
  BAD("event_record: NULL queue", lightos_event_record(NULL, &e), LIGHTOS_INVALID_ARGUMENT,
      "queue");
  BAD("event_record: NULL out_event", lightos_event_record(g_q, NULL), LIGHTOS_INVALID_ARGUMENT,
      "out_event");
  BAD("event_retain: NULL", lightos_event_retain(NULL), LIGHTOS_INVALID_ARGUMENT, "event");
  BAD("event_release: use after release", lightos_event_release(s_event),
      LIGHTOS_INVALID_ARGUMENT, "event", "release");
  BAD("event_wait: NULL", lightos_event_wait(NULL), LIGHTOS_INVALID_ARGUMENT, "event");
  BAD("event_wait: use after release", lightos_event_wait(s_event), LIGHTOS_INVALID_ARGUMENT,
      "event", "release");
  BAD("event_wait: a queue passed as an event", lightos_event_wait(AS(lightos_event_t, g_q)),
      LIGHTOS_INVALID_ARGUMENT, "event", "queue");
  BAD("event_query: garbage", lightos_event_query(GARBAGE(lightos_event_t)),
      LIGHTOS_INVALID_ARGUMENT, "event", "0x1234");
  BAD("event_query: use after release", lightos_event_query(s_event), LIGHTOS_INVALID_ARGUMENT,
      "event", "release");
  BAD("event_elapsed_ms: NULL out_ms", lightos_event_elapsed_ms(g_pev1, g_pev2, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_ms");
  BAD("event_elapsed_ms: NULL start", lightos_event_elapsed_ms(NULL, g_pev2, &ms),
      LIGHTOS_INVALID_ARGUMENT, "start");
  BAD("event_elapsed_ms: NULL end", lightos_event_elapsed_ms(g_pev1, NULL, &ms),
      LIGHTOS_INVALID_ARGUMENT, "end");
  BAD("event_elapsed_ms: start used after release", lightos_event_elapsed_ms(s_event, g_pev2, &ms),
      LIGHTOS_INVALID_ARGUMENT, "start", "release");
  LK_RUN_NAMED("event_elapsed_ms: events of a non-profiling queue", case_elapsed_non_profiling());
  LK_RUN_NAMED("event_elapsed_ms: end from a non-profiling queue", case_elapsed_mixed());
  /* queued transfers */
  BAD("enqueue_write: NULL queue", lightos_enqueue_write(NULL, g_buf, 0, 16, data, NULL),
      LIGHTOS_INVALID_ARGUMENT, "queue");
  BAD("enqueue_write: queue used after release",
      lightos_enqueue_write(s_queue, g_buf, 0, 16, data, NULL), LIGHTOS_INVALID_ARGUMENT, "queue",
      "release");
  BAD("enqueue_write: dst of another context",
      lightos_enqueue_write(g_q, g_buf2, 0, 16, data, NULL), LIGHTOS_INVALID_ARGUMENT, "dst",
      "context");
  BAD("enqueue_write: range past the end", lightos_enqueue_write(g_q, g_buf, 255, 2, data, NULL),
      LIGHTOS_OUT_OF_RANGE, "offset", "255");
  BAD("enqueue_write: NULL src", lightos_enqueue_write(g_q, g_buf, 0, 2, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "src");
  BAD("enqueue_read: src of another context", lightos_enqueue_read(g_q2, g_buf, 0, 16, data, NULL),
      LIGHTOS_INVALID_ARGUMENT, "src", "context");
  BAD("enqueue_read: offset SIZE_MAX", lightos_enqueue_read(g_q, g_buf, SIZE_MAX, 16, data, NULL),
      LIGHTOS_OUT_OF_RANGE, "offset");
  BAD("enqueue_read: NULL dst pointer", lightos_enqueue_read(g_q, g_buf, 0, 16, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "dst");
  BAD("enqueue_copy: a buffer passed as the queue",
      lightos_enqueue_copy(AS(lightos_queue_t, g_buf), g_a, 0, g_b, 0, 16, NULL),
      LIGHTOS_INVALID_ARGUMENT, "queue", "buffer");
  BAD("enqueue_copy: overlapping ranges", lightos_enqueue_copy(g_q, g_buf, 16, g_buf, 0, 32, NULL),
      LIGHTOS_INVALID_ARGUMENT, "overlap");
  BAD("enqueue_copy: size SIZE_MAX", lightos_enqueue_copy(g_q, g_a, 0, g_b, 0, SIZE_MAX, NULL),
      LIGHTOS_OUT_OF_RANGE, "size");
  BAD("enqueue_fill: dst of another context",
      lightos_enqueue_fill(g_q2, g_buf, 0, 16, &pat4, 4, NULL), LIGHTOS_INVALID_ARGUMENT, "dst",
      "context");
  BAD("enqueue_fill: pattern_size 3", lightos_enqueue_fill(g_q, g_buf, 0, 12, &pat4, 3, NULL),
      LIGHTOS_INVALID_ARGUMENT, "pattern_size", "3");
  BAD("enqueue_fill: misaligned offset 1", lightos_enqueue_fill(g_q, g_buf, 1, 8, &pat4, 2, NULL),
      LIGHTOS_INVALID_ARGUMENT, "offset", "1");
  LK_RUN_NAMED("sanity: queues and events still work after bad queue calls", sanity_queues());
  LK_RUN_NAMED("sanity: kernel launch correct on the queues after bad calls", sanity_kernel());
}

/* ---- Programs ------------------------------------------------------------- */

/* Builds `src` and expects `want` with every word in the message and the
 * log containing `log_word` (when not NULL). */
static void build_fails(const char* src, const char* options, lightos_status_t want,
                        const char* msg_word, const char* log_word, unsigned line) {
  lightos_program_t p = NULL;
  char log[8192];
  size_t len = 0;
  LK_REQUIRE_OK(lightos_program_create(g_ctx, src, 0, &p));
  EXPECT(lightos_program_build(p, options), want, msg_word);
  if (want == LIGHTOS_COMPILE_FAILED) {
    char msg0[1024];
    snprintf(msg0, sizeof msg0, "%s", lightos_last_error()->message);
    LK_CHECK_STATUS(lightos_program_build_log(p, log, sizeof log, &len), LIGHTOS_SUCCESS);
    LK_CHECK_MSG(len > 1 && log[0], "build log is empty");
    if (log_word)
      LK_CHECK_MSG(strstr(log, log_word) != NULL, "no \"%s\" in the log:\n%s", log_word, log);
    if (line) {
      char l1[32], l2[32];
      snprintf(l1, sizeof l1, ":%u:", line);
      snprintf(l2, sizeof l2, "line %u", line);
      LK_CHECK_MSG(strstr(log, l1) || strstr(log, l2),
                   "the build log does not name line %u:\n%s", line, log);
      LK_CHECK_MSG(strstr(msg0, l1) || strstr(msg0, l2),
                   "the error message does not name line %u: \"%s\"", line, msg0);
    }
    /* kernel_create on the failed program */
    lightos_kernel_t k = NULL;
    EXPECT(lightos_kernel_create(p, "k", &k), LIGHTOS_INVALID_ARGUMENT, "built");
    lightos_program_info_t pi;
    LK_CHECK_STATUS(lightos_program_get_info(p, &pi), LIGHTOS_SUCCESS);
    LK_CHECK(!pi.built);
  }
  lightos_program_release(p);
}

static void case_unbalanced(void) {
  build_fails("__kernel void k(__global int* x) {\n  if (x[0]) {\n    x[0] = 1;\n}\n", NULL,
              LIGHTOS_COMPILE_FAILED, "line", NULL, 0);
}

static void case_c_syntax_error(void) {
  /* the error is on line 3 */
  build_fails("__kernel void k(__global int* x) {\n  int y = 1;\n  x[0] = y +* ;\n}\n", NULL,
              LIGHTOS_COMPILE_FAILED, "3", "error", 3);
}

static void case_undeclared_identifier(void) {
  build_fails("__kernel void k(__global int* x) {\n\n\n\n  x[0] = no_such_variable;\n}\n", NULL,
              LIGHTOS_COMPILE_FAILED, "no_such_variable", "no_such_variable", 5);
}

static void case_barrier_without_items(void) {
  build_fails("__kernel void k(__global int* x) {\n  x[get_global_id(0)] = 1;\n"
              "  barrier(CLK_LOCAL_MEM_FENCE);\n}\n",
              NULL, LIGHTOS_COMPILE_FAILED, "barrier", "barrier", 3);
}

static void case_return_in_items(void) {
  build_fails("__kernel void k(__global int* x) {\n  LIGHTOS_ITEMS {\n"
              "    if (x[0]) return;\n    x[get_global_id(0)] = 1;\n  }\n"
              "  barrier(CLK_LOCAL_MEM_FENCE);\n}\n",
              NULL, LIGHTOS_COMPILE_FAILED, "return", "return", 3);
}

static void case_nested_items(void) {
  build_fails("__kernel void k(__global int* x) {\n  LIGHTOS_ITEMS {\n"
              "    LIGHTOS_ITEMS { x[0] = 1; }\n  }\n}\n",
              NULL, LIGHTOS_COMPILE_FAILED, "LIGHTOS_ITEMS", NULL, 3);
}

static void case_pointer_without_address_space(void) {
  build_fails("__kernel void k(int* x) {\n  x[0] = 1;\n}\n", NULL, LIGHTOS_COMPILE_FAILED, "x",
              NULL, 1);
}

static void case_bad_option_then_good_build(void) {
  lightos_program_t p = NULL;
  lightos_kernel_t k = NULL;
  LK_REQUIRE_OK(lightos_program_create(g_ctx, k_src, 0, &p));
  EXPECT(lightos_program_build(p, "-O3"), LIGHTOS_INVALID_ARGUMENT, "-O3");
  /* the program is untouched: a good build works */
  LK_CHECK_STATUS(lightos_program_build(p, "-D FOO=1"), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_kernel_create(p, "vadd", &k), LIGHTOS_SUCCESS);
  if (k) lightos_kernel_release(k);
  lightos_program_release(p);
}

/* A missing compiler: LIGHTOS_CC names a file that does not exist. */
static void case_missing_compiler(void) {
  char src[256];
  lightos_program_t p = NULL;
  const char* old = getenv("LIGHTOS_CC");
  char* saved = old ? strdup(old) : NULL;
  /* a source seen by no cache before */
  snprintf(src, sizeof src,
           "__kernel void k(__global int* x) { x[0] = %ld; } /* nonce %ld %ld */\n",
           (long)getpid(), (long)time(NULL), (long)clock());
  LK_REQUIRE_OK(lightos_program_create(g_ctx, src, 0, &p));
  setenv("LIGHTOS_CC", "/nonexistent/cc", 1);
  EXPECT(lightos_program_build(p, NULL), LIGHTOS_UNAVAILABLE, "LIGHTOS_CC");
  const char* m = lightos_last_error()->message;
  LK_CHECK_MSG(strstr(m, "compiler") != NULL, "message does not say no C compiler: \"%s\"", m);
  if (saved) {
    setenv("LIGHTOS_CC", saved, 1);
    free(saved);
  } else {
    unsetenv("LIGHTOS_CC");
  }
  /* with the compiler back, the same program builds */
  LK_CHECK_STATUS(lightos_program_build(p, NULL), LIGHTOS_SUCCESS);
  lightos_program_release(p);
}

static void case_unknown_kernel_name(void) {
  lightos_kernel_t k = NULL;
  EXPECT(lightos_kernel_create(g_prog, "nosuch", &k), LIGHTOS_NOT_FOUND, "nosuch", "vadd",
         "types", "twolocal");
  LK_CHECK(k == NULL);
}

static void sanity_programs(void) {
  lightos_program_info_t info;
  lightos_kernel_t k = NULL;
  LK_CHECK_STATUS(lightos_program_get_info(g_prog, &info), LIGHTOS_SUCCESS);
  LK_CHECK(info.built);
  LK_CHECK_INT(info.kernel_count, 3);
  LK_CHECK_STATUS(lightos_program_get_info(g_unbuilt, &info), LIGHTOS_SUCCESS);
  LK_CHECK(!info.built);
  /* the unbuilt program that saw bad options still builds */
  LK_CHECK_STATUS(lightos_kernel_create(g_prog, "types", &k), LIGHTOS_SUCCESS);
  if (k) lightos_kernel_release(k);
  sanity_kernel();
}

static void group_program(void) {
  lightos_program_t p;
  lightos_kernel_t k;
  lightos_program_info_t pi;
  char log[64];
  BAD("program_create: NULL context", lightos_program_create(NULL, k_src, 0, &p),
      LIGHTOS_INVALID_ARGUMENT, "context");
  BAD("program_create: context used after release", lightos_program_create(s_ctx, k_src, 0, &p),
      LIGHTOS_INVALID_ARGUMENT, "context", "release");
  BAD("program_create: NULL source", lightos_program_create(g_ctx, NULL, 0, &p),
      LIGHTOS_INVALID_ARGUMENT, "source");
  BAD("program_create: empty source", lightos_program_create(g_ctx, "", 0, &p),
      LIGHTOS_INVALID_ARGUMENT, "source");
  BAD("program_create: NULL out_program", lightos_program_create(g_ctx, k_src, 0, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_program");
  BAD("program_build: NULL program", lightos_program_build(NULL, NULL), LIGHTOS_INVALID_ARGUMENT,
      "program");
  BAD("program_build: use after release", lightos_program_build(s_prog, NULL),
      LIGHTOS_INVALID_ARGUMENT, "program", "release");
  BAD("program_build: a kernel passed as the program",
      lightos_program_build(AS(lightos_program_t, g_vadd), NULL), LIGHTOS_INVALID_ARGUMENT,
      "program", "kernel");
  BAD("program_build: unsupported option -O3", lightos_program_build(g_unbuilt, "-O3"),
      LIGHTOS_INVALID_ARGUMENT, "-O3");
  BAD("program_build: unsupported option --foo after a good one",
      lightos_program_build(g_unbuilt, "-DX=1 --foo"), LIGHTOS_INVALID_ARGUMENT, "--foo");
  BAD("program_build: -D without a value", lightos_program_build(g_unbuilt, "-D"),
      LIGHTOS_INVALID_ARGUMENT, "-D");
  BAD("program_build: -D1BAD (not a macro name)", lightos_program_build(g_unbuilt, "-D1BAD"),
      LIGHTOS_INVALID_ARGUMENT, "-D1BAD");
  BAD("program_build: -cl-std=CL2.0", lightos_program_build(g_unbuilt, "-cl-std=CL2.0"),
      LIGHTOS_INVALID_ARGUMENT, "-cl-std=CL2.0");
  BAD("program_build: building twice", lightos_program_build(g_prog, NULL),
      LIGHTOS_INVALID_ARGUMENT, "already built");
  LK_RUN_NAMED("program_build: bad option leaves the program buildable",
               case_bad_option_then_good_build());
  LK_RUN_NAMED("program_build: unbalanced braces", case_unbalanced());
  LK_RUN_NAMED("program_build: C syntax error in a body (line 3)", case_c_syntax_error());
  LK_RUN_NAMED("program_build: undeclared identifier (line 5)", case_undeclared_identifier());
  LK_RUN_NAMED("program_build: barrier without LIGHTOS_ITEMS", case_barrier_without_items());
  LK_RUN_NAMED("program_build: return inside LIGHTOS_ITEMS", case_return_in_items());
  LK_RUN_NAMED("program_build: nested LIGHTOS_ITEMS", case_nested_items());
  LK_RUN_NAMED("program_build: pointer parameter without address space",
               case_pointer_without_address_space());
  LK_RUN_NAMED("program_build: LIGHTOS_CC=/nonexistent/cc", case_missing_compiler());
  BAD("program_build_log: NULL program", lightos_program_build_log(NULL, log, sizeof log, NULL),
      LIGHTOS_INVALID_ARGUMENT, "program");
  BAD("program_build_log: NULL buf with cap 64", lightos_program_build_log(g_prog, NULL, 64, NULL),
      LIGHTOS_INVALID_ARGUMENT, "buf");
  BAD("program_get_info: NULL out_info", lightos_program_get_info(g_prog, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_info");
  BAD("program_get_info: use after release", lightos_program_get_info(s_prog, &pi),
      LIGHTOS_INVALID_ARGUMENT, "program", "release");
  BAD("program_retain: garbage", lightos_program_retain(GARBAGE(lightos_program_t)),
      LIGHTOS_INVALID_ARGUMENT, "program", "0x1234");
  BAD("program_release: use after release", lightos_program_release(s_prog),
      LIGHTOS_INVALID_ARGUMENT, "program", "release");
  /* kernel_create */
  BAD("kernel_create: NULL program", lightos_kernel_create(NULL, "vadd", &k),
      LIGHTOS_INVALID_ARGUMENT, "program");
  BAD("kernel_create: program used after release", lightos_kernel_create(s_prog, "vadd", &k),
      LIGHTOS_INVALID_ARGUMENT, "program", "release");
  BAD("kernel_create: unbuilt program", lightos_kernel_create(g_unbuilt, "vadd", &k),
      LIGHTOS_INVALID_ARGUMENT, "built");
  BAD("kernel_create: NULL name", lightos_kernel_create(g_prog, NULL, &k),
      LIGHTOS_INVALID_ARGUMENT, "name");
  BAD("kernel_create: NULL out_kernel", lightos_kernel_create(g_prog, "vadd", NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_kernel");
  LK_RUN_NAMED("kernel_create: unknown name lists the kernels", case_unknown_kernel_name());
  BAD("kernel_create: empty name", lightos_kernel_create(g_prog, "", &k), LIGHTOS_NOT_FOUND,
      "vadd");
  LK_RUN_NAMED("sanity: programs and kernels after bad program calls", sanity_programs());
}

/* ---- Kernels, arguments and launches -------------------------------------- */

static void case_local_sum_too_big(void) {
  size_t gs = 1;
  size_t each = (size_t)g_info.local_mem_bytes;
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(g_twolocal, 0, g_out));
  LK_REQUIRE_OK(lightos_kernel_set_arg_local(g_twolocal, 1, each));
  LK_REQUIRE_OK(lightos_kernel_set_arg_local(g_twolocal, 2, each));
  EXPECT(lightos_enqueue_kernel(g_q, g_twolocal, 1, &gs, NULL, NULL), LIGHTOS_INVALID_ARGUMENT,
         "twolocal", "local");
  /* fixed, it runs */
  LK_REQUIRE_OK(lightos_kernel_set_arg_local(g_twolocal, 2, 64));
  LK_REQUIRE_OK(lightos_kernel_set_arg_local(g_twolocal, 1, 64));
  int r = 0;
  LK_CHECK_STATUS(lightos_enqueue_kernel(g_q, g_twolocal, 1, &gs, NULL, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_enqueue_read(g_q, g_out, 0, sizeof r, &r, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(g_q), LIGHTOS_SUCCESS);
  LK_CHECK_INT(r, 3);
}

static void group_kernel(void) {
  lightos_arg_info_t ai;
  uint32_t n;
  int32_t iv = 1;
  int64_t lv = 1;
  size_t four = 4, zero = 0;
  size_t g2[2] = {4, 0}, l2[2] = {1, 0}, big2[2] = {SIZE_MAX, SIZE_MAX};
  size_t gs = NV, ls_big[1], g3[3] = {2, 2, 2};
  size_t l3_big[3];
  ls_big[0] = g_info.max_work_group_size + 1;
  l3_big[0] = g_info.max_work_group_size;
  l3_big[1] = 2;
  l3_big[2] = 1;
  BAD("kernel_retain: NULL", lightos_kernel_retain(NULL), LIGHTOS_INVALID_ARGUMENT, "kernel");
  BAD("kernel_retain: use after release", lightos_kernel_retain(s_kernel),
      LIGHTOS_INVALID_ARGUMENT, "kernel", "release");
  BAD("kernel_release: a program passed as a kernel",
      lightos_kernel_release(AS(lightos_kernel_t, g_prog)), LIGHTOS_INVALID_ARGUMENT, "kernel",
      "program");
  BAD("kernel_get_arg_count: NULL out_count", lightos_kernel_get_arg_count(g_vadd, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_count");
  BAD("kernel_get_arg_count: use after release", lightos_kernel_get_arg_count(s_kernel, &n),
      LIGHTOS_INVALID_ARGUMENT, "kernel", "release");
  BAD("kernel_get_arg_info: index 4 of 4", lightos_kernel_get_arg_info(g_vadd, 4, &ai),
      LIGHTOS_INVALID_ARGUMENT, "index", "4");
  BAD("kernel_get_arg_info: NULL out_info", lightos_kernel_get_arg_info(g_vadd, 0, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_info");
  BAD("set_arg_buffer: index out of range", lightos_kernel_set_arg_buffer(g_vadd, 9, g_a),
      LIGHTOS_INVALID_ARGUMENT, "index", "9");
  BAD("set_arg_buffer: index UINT32_MAX", lightos_kernel_set_arg_buffer(g_vadd, UINT32_MAX, g_a),
      LIGHTOS_INVALID_ARGUMENT, "index", "4294967295");
  BAD("set_arg_buffer: NULL kernel", lightos_kernel_set_arg_buffer(NULL, 0, g_a),
      LIGHTOS_INVALID_ARGUMENT, "kernel");
  BAD("set_arg_buffer: NULL buffer", lightos_kernel_set_arg_buffer(g_vadd, 0, NULL),
      LIGHTOS_INVALID_ARGUMENT, "buffer");
  BAD("set_arg_buffer: buffer used after release", lightos_kernel_set_arg_buffer(g_vadd, 0, s_buf),
      LIGHTOS_INVALID_ARGUMENT, "buffer", "release");
  BAD("set_arg_buffer: a queue passed as the buffer",
      lightos_kernel_set_arg_buffer(g_vadd, 0, AS(lightos_buffer_t, g_q)),
      LIGHTOS_INVALID_ARGUMENT, "buffer", "queue");
  BAD("set_arg_buffer: buffer of another context", lightos_kernel_set_arg_buffer(g_vadd, 0, g_buf2),
      LIGHTOS_INVALID_ARGUMENT, "context", "vadd");
  BAD("set_arg_buffer: buffer to a scalar (uint count)",
      lightos_kernel_set_arg_buffer(g_vadd, 3, g_a), LIGHTOS_INVALID_ARGUMENT, "count", "uint");
  BAD("set_arg_buffer: buffer to a __local parameter",
      lightos_kernel_set_arg_buffer(g_types, 7, g_a), LIGHTOS_INVALID_ARGUMENT, "scratch");
  BAD("set_arg_scalar: scalar to a buffer parameter",
      lightos_kernel_set_arg_scalar(g_vadd, 0, sizeof iv, &iv), LIGHTOS_INVALID_ARGUMENT, "src_a");
  BAD("set_arg_scalar: size 8 for a uint", lightos_kernel_set_arg_scalar(g_vadd, 3, 8, &lv),
      LIGHTOS_INVALID_ARGUMENT, "size", "8");
  BAD("set_arg_scalar: size 0", lightos_kernel_set_arg_scalar(g_vadd, 3, 0, &iv),
      LIGHTOS_INVALID_ARGUMENT, "size", "0");
  BAD("set_arg_scalar: size 2 for a double", lightos_kernel_set_arg_scalar(g_types, 6, 2, &lv),
      LIGHTOS_INVALID_ARGUMENT, "size", "dval");
  BAD("set_arg_scalar: NULL value", lightos_kernel_set_arg_scalar(g_vadd, 3, 4, NULL),
      LIGHTOS_INVALID_ARGUMENT, "value");
  BAD("set_arg_scalar: index out of range", lightos_kernel_set_arg_scalar(g_vadd, 4, 4, &iv),
      LIGHTOS_INVALID_ARGUMENT, "index", "4");
  BAD("set_arg_f32: on an int parameter", lightos_kernel_set_arg_f32(g_types, 1, 1.0f),
      LIGHTOS_INVALID_ARGUMENT, "ival", "int");
  BAD("set_arg_u64: on a float parameter", lightos_kernel_set_arg_u64(g_types, 5, 1),
      LIGHTOS_INVALID_ARGUMENT, "fval", "float");
  BAD("set_arg_i32: on a uint parameter", lightos_kernel_set_arg_i32(g_types, 2, 1),
      LIGHTOS_INVALID_ARGUMENT, "uval", "uint");
  BAD("set_arg_u32: on an int parameter", lightos_kernel_set_arg_u32(g_types, 1, 1),
      LIGHTOS_INVALID_ARGUMENT, "ival");
  BAD("set_arg_i64: on a ulong parameter", lightos_kernel_set_arg_i64(g_types, 4, 1),
      LIGHTOS_INVALID_ARGUMENT, "ulval", "ulong");
  BAD("set_arg_u64: on a long parameter", lightos_kernel_set_arg_u64(g_types, 3, 1),
      LIGHTOS_INVALID_ARGUMENT, "lval", "long");
  BAD("set_arg_f64: on a float parameter", lightos_kernel_set_arg_f64(g_types, 5, 1.0),
      LIGHTOS_INVALID_ARGUMENT, "fval");
  BAD("set_arg_f32: on a double parameter", lightos_kernel_set_arg_f32(g_types, 6, 1.0f),
      LIGHTOS_INVALID_ARGUMENT, "dval", "double");
  BAD("set_arg_f32: on a buffer parameter", lightos_kernel_set_arg_f32(g_vadd, 0, 1.0f),
      LIGHTOS_INVALID_ARGUMENT, "src_a");
  BAD("set_arg_i32: on a __local parameter", lightos_kernel_set_arg_i32(g_types, 7, 1),
      LIGHTOS_INVALID_ARGUMENT, "scratch");
  BAD("set_arg_u32: kernel used after release", lightos_kernel_set_arg_u32(s_kernel, 3, 1),
      LIGHTOS_INVALID_ARGUMENT, "kernel", "release");
  BAD("set_arg_local: 0 bytes", lightos_kernel_set_arg_local(g_types, 7, 0),
      LIGHTOS_INVALID_ARGUMENT, "bytes", "0");
  BAD("set_arg_local: more than the device's local memory",
      lightos_kernel_set_arg_local(g_types, 7, (size_t)g_info.local_mem_bytes + 1),
      LIGHTOS_INVALID_ARGUMENT, "bytes", "scratch");
  BAD("set_arg_local: SIZE_MAX bytes", lightos_kernel_set_arg_local(g_types, 7, SIZE_MAX),
      LIGHTOS_INVALID_ARGUMENT, "bytes");
  BAD("set_arg_local: on a scalar parameter", lightos_kernel_set_arg_local(g_types, 1, 16),
      LIGHTOS_INVALID_ARGUMENT, "ival");
  BAD("set_arg_local: on a __global parameter", lightos_kernel_set_arg_local(g_vadd, 0, 16),
      LIGHTOS_INVALID_ARGUMENT, "src_a");
  BAD("set_arg_local: index out of range", lightos_kernel_set_arg_local(g_types, 9, 16),
      LIGHTOS_INVALID_ARGUMENT, "index", "9");
  /* launches */
  BAD("enqueue_kernel: unset arguments", lightos_enqueue_kernel(g_q, g_unset, 1, &gs, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "src_a", "not set");
  BAD("enqueue_kernel: NULL queue", lightos_enqueue_kernel(NULL, g_vadd, 1, &gs, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "queue");
  BAD("enqueue_kernel: NULL kernel", lightos_enqueue_kernel(g_q, NULL, 1, &gs, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "kernel");
  BAD("enqueue_kernel: kernel used after release",
      lightos_enqueue_kernel(g_q, s_kernel, 1, &gs, NULL, NULL), LIGHTOS_INVALID_ARGUMENT,
      "kernel", "release");
  BAD("enqueue_kernel: a buffer passed as the kernel",
      lightos_enqueue_kernel(g_q, AS(lightos_kernel_t, g_buf), 1, &gs, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "kernel", "buffer");
  BAD("enqueue_kernel: kernel of another context (queue of ctx1)",
      lightos_enqueue_kernel(g_q, g_vadd2, 1, &gs, NULL, NULL), LIGHTOS_INVALID_ARGUMENT,
      "context", "vadd");
  BAD("enqueue_kernel: kernel of another context (queue of ctx2)",
      lightos_enqueue_kernel(g_q2, g_vadd, 1, &gs, NULL, NULL), LIGHTOS_INVALID_ARGUMENT,
      "context", "vadd");
  BAD("enqueue_kernel: work_dim 0", lightos_enqueue_kernel(g_q, g_vadd, 0, &gs, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "work_dim", "0");
  BAD("enqueue_kernel: work_dim 4", lightos_enqueue_kernel(g_q, g_vadd, 4, g3, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "work_dim", "4");
  BAD("enqueue_kernel: NULL global_size", lightos_enqueue_kernel(g_q, g_vadd, 1, NULL, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "global_size");
  BAD("enqueue_kernel: global size 0", lightos_enqueue_kernel(g_q, g_vadd, 1, &zero, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "global_size");
  BAD("enqueue_kernel: global size 0 in dimension 1",
      lightos_enqueue_kernel(g_q, g_vadd, 2, g2, NULL, NULL), LIGHTOS_INVALID_ARGUMENT,
      "global_size[1]");
  BAD("enqueue_kernel: global size SIZE_MAX x SIZE_MAX",
      lightos_enqueue_kernel(g_q, g_vadd, 2, big2, NULL, NULL), LIGHTOS_INVALID_ARGUMENT,
      "global");
  BAD("enqueue_kernel: local size 0", lightos_enqueue_kernel(g_q, g_vadd, 1, &four, &zero, NULL),
      LIGHTOS_INVALID_ARGUMENT, "local_size");
  BAD("enqueue_kernel: local size 0 in dimension 1",
      lightos_enqueue_kernel(g_q, g_vadd, 2, g3, l2, NULL), LIGHTOS_INVALID_ARGUMENT,
      "local_size[1]");
  BAD("enqueue_kernel: local size above max_work_group_size",
      lightos_enqueue_kernel(g_q, g_vadd, 1, &gs, ls_big, NULL), LIGHTOS_INVALID_ARGUMENT,
      "max_work_group_size");
  BAD("enqueue_kernel: local product above max_work_group_size (3-D)",
      lightos_enqueue_kernel(g_q, g_vadd, 3, g3, l3_big, NULL), LIGHTOS_INVALID_ARGUMENT,
      "max_work_group_size");
  LK_RUN_NAMED("enqueue_kernel: __local arguments together above local memory",
               case_local_sum_too_big());
  /* seed launch */
  BAD("lightos_execute: NULL kernel", lightos_execute(NULL, 16, 0), LIGHTOS_INVALID_ARGUMENT,
      "kernel");
  BAD("lightos_execute: kernel used after release", lightos_execute(s_kernel, 16, 0),
      LIGHTOS_INVALID_ARGUMENT, "kernel", "release");
  BAD("lightos_execute: global size 0", lightos_execute(g_vadd, 0, 0), LIGHTOS_INVALID_ARGUMENT,
      "global_size");
  BAD("lightos_execute: local size above max_work_group_size",
      lightos_execute(g_vadd, NV, g_info.max_work_group_size + 1), LIGHTOS_INVALID_ARGUMENT,
      "max_work_group_size");
  BAD("lightos_execute: unset arguments", lightos_execute(g_unset, 16, 0),
      LIGHTOS_INVALID_ARGUMENT, "not set");
  LK_RUN_NAMED("sanity: kernels still launch correctly after bad kernel calls", sanity_kernel());
  LK_RUN_NAMED("sanity: every typed setter still works after bad setter calls",
               sanity_types_kernel());
}

/* ---- Seed API and communicators ------------------------------------------- */

static void sanity_allreduce(void) {
  static float r[NV];
  uint32_t rank = 9, size = 9;
  LK_CHECK_STATUS(lightos_comm_rank(g_comm, &rank), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_comm_size(g_comm, &size), LIGHTOS_SUCCESS);
  LK_CHECK_INT(rank, 0);
  LK_CHECK_INT(size, 1);
  LK_CHECK_STATUS(lightos_allreduce(g_a, g_c, NV, LIGHTOS_OP_SUM, g_comm), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(g_c, 0, sizeof r, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(r, g_ha, sizeof r) == 0);
}

static void group_seed_comm(void) {
  lightos_comm_t comms[2];
  lightos_context_t two[2];
  uint32_t u;
  two[0] = g_ctx;
  two[1] = g_ctx2;
  BAD_NULL("lightos_create_context: kind 99",
           lightos_create_context((lightos_device_kind_t)99), LIGHTOS_INVALID_ARGUMENT, "kind");
  BAD_NULL("lightos_alloc: NULL context", lightos_alloc(NULL, 16), LIGHTOS_INVALID_ARGUMENT,
           "context");
  BAD_NULL("lightos_alloc: context used after release", lightos_alloc(s_ctx, 16),
           LIGHTOS_INVALID_ARGUMENT, "release");
  BAD_NULL("lightos_alloc: size 0", lightos_alloc(g_ctx, 0), LIGHTOS_INVALID_ARGUMENT, "size");
  BAD_NULL("lightos_alloc: size SIZE_MAX", lightos_alloc(g_ctx, SIZE_MAX), LIGHTOS_OUT_OF_MEMORY,
           "size");
  BAD("comm_init_all: 0 contexts", lightos_comm_init_all(0, two, comms), LIGHTOS_INVALID_ARGUMENT,
      "ncontexts");
  BAD("comm_init_all: NULL contexts", lightos_comm_init_all(1, NULL, comms),
      LIGHTOS_INVALID_ARGUMENT, "contexts");
  BAD("comm_init_all: NULL out_comms", lightos_comm_init_all(1, two, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out_comms");
  BAD("comm_init_all: context used after release", lightos_comm_init_all(1, &s_ctx, comms),
      LIGHTOS_INVALID_ARGUMENT, "context", "release");
  BAD("comm_init_all: 70000 contexts", lightos_comm_init_all(70000, two, comms),
      LIGHTOS_INVALID_ARGUMENT, "ncontexts", "70000");
  BAD("comm_destroy: NULL", lightos_comm_destroy(NULL), LIGHTOS_INVALID_ARGUMENT, "comm");
  BAD("comm_destroy: use after destroy", lightos_comm_destroy(s_comm), LIGHTOS_INVALID_ARGUMENT,
      "comm", "release");
  BAD("comm_rank: NULL out_rank", lightos_comm_rank(g_comm, NULL), LIGHTOS_INVALID_ARGUMENT,
      "out_rank");
  BAD("comm_rank: a context passed as the comm",
      lightos_comm_rank(AS(lightos_comm_t, g_ctx), &u), LIGHTOS_INVALID_ARGUMENT, "comm",
      "context");
  BAD("comm_size: NULL out_size", lightos_comm_size(g_comm, NULL), LIGHTOS_INVALID_ARGUMENT,
      "out_size");
  BAD("comm_size: use after destroy", lightos_comm_size(s_comm, &u), LIGHTOS_INVALID_ARGUMENT,
      "comm", "release");
  BAD("comm_allreduce: NULL send",
      lightos_comm_allreduce(NULL, g_c, 4, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g_comm, NULL),
      LIGHTOS_INVALID_ARGUMENT, "send");
  BAD("comm_allreduce: NULL recv",
      lightos_comm_allreduce(g_a, NULL, 4, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g_comm, NULL),
      LIGHTOS_INVALID_ARGUMENT, "recv");
  BAD("comm_allreduce: NULL comm",
      lightos_comm_allreduce(g_a, g_c, 4, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "comm");
  BAD("comm_allreduce: unknown dtype 99",
      lightos_comm_allreduce(g_a, g_c, 4, (lightos_dtype_t)99, LIGHTOS_OP_SUM, g_comm, NULL),
      LIGHTOS_INVALID_ARGUMENT, "dtype", "99");
  BAD("comm_allreduce: unknown op 0",
      lightos_comm_allreduce(g_a, g_c, 4, LIGHTOS_DTYPE_F32, (lightos_reduce_op_t)0, g_comm, NULL),
      LIGHTOS_INVALID_ARGUMENT, "op");
  BAD("comm_allreduce: count past the end of the buffers",
      lightos_comm_allreduce(g_a, g_c, NV + 1, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g_comm, NULL),
      LIGHTOS_OUT_OF_RANGE, "count");
  BAD("comm_allreduce: count SIZE_MAX (count*4 overflows)",
      lightos_comm_allreduce(g_a, g_c, SIZE_MAX, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g_comm, NULL),
      LIGHTOS_OUT_OF_RANGE, "count");
  BAD("comm_allreduce: buffer of another context",
      lightos_comm_allreduce(g_buf2, g_buf2, 4, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g_comm, NULL),
      LIGHTOS_INVALID_ARGUMENT, "context");
  BAD("comm_allreduce: queue of another context",
      lightos_comm_allreduce(g_a, g_c, 4, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, g_comm, g_q2),
      LIGHTOS_INVALID_ARGUMENT, "queue");
  BAD("lightos_allreduce: NULL sendbuf", lightos_allreduce(NULL, g_c, 4, LIGHTOS_OP_SUM, g_comm),
      LIGHTOS_INVALID_ARGUMENT, "send");
  BAD("lightos_allreduce: comm used after destroy",
      lightos_allreduce(g_a, g_c, 4, LIGHTOS_OP_SUM, s_comm), LIGHTOS_INVALID_ARGUMENT, "comm");
  BAD("lightos_allreduce: count past the end",
      lightos_allreduce(g_a, g_c, NV + 1, LIGHTOS_OP_SUM, g_comm), LIGHTOS_OUT_OF_RANGE, "count");
  LK_RUN_NAMED("sanity: allreduce on the 1-rank comm after bad calls", sanity_allreduce());
}

/* ---- Tensors and tensor ops ------------------------------------------------ */

static lightos_tensor_t T_a, T_b, T_out, T_bad, T_i32, T_other, T_idx, T_w, T_row, T_f64;

static void tensor_setup_ok(int* ok) {
  const int64_t s48[2] = {4, 8}, s38[2] = {3, 8}, s4[1] = {4}, s8[1] = {8};
  *ok = 0;
  LK_REQUIRE_OK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 2, s48, &T_a));
  LK_REQUIRE_OK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 2, s48, &T_b));
  LK_REQUIRE_OK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 2, s48, &T_out));
  LK_REQUIRE_OK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 2, s38, &T_bad));
  LK_REQUIRE_OK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_I32, 2, s48, &T_i32));
  LK_REQUIRE_OK(lightos_tensor_alloc(g_ctx2, LIGHTOS_DTYPE_F32, 2, s48, &T_other));
  LK_REQUIRE_OK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_I64, 1, s4, &T_idx));
  LK_REQUIRE_OK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 1, s8, &T_w));
  LK_REQUIRE_OK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 1, s4, &T_row));
  LK_REQUIRE_OK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F64, 2, s48, &T_f64));
  LK_REQUIRE_OK(lightos_op_fill(g_q, &T_a, 1.5));
  LK_REQUIRE_OK(lightos_op_fill(g_q, &T_b, 2.25));
  LK_REQUIRE_OK(lightos_queue_finish(g_q));
  *ok = 1;
}

static void case_tensor_free_twice(void) {
  const int64_t s[1] = {16};
  lightos_tensor_t t, copy;
  LK_REQUIRE_OK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 1, s, &t));
  copy = t;
  LK_REQUIRE_OK(lightos_tensor_free(&t));
  LK_CHECK(t.buffer == NULL);
  EXPECT(lightos_tensor_free(&t), LIGHTOS_INVALID_ARGUMENT, "buffer");
  /* a copy of the descriptor holds the released handle */
  EXPECT(lightos_tensor_free(&copy), LIGHTOS_INVALID_ARGUMENT, "release");
  EXPECT(lightos_op_fill(g_q, &copy, 1.0), LIGHTOS_INVALID_ARGUMENT, "release");
}

static void case_tensor_numel_bad(void) {
  lightos_tensor_t t = T_a;
  LK_CHECK_INT(lightos_tensor_numel(NULL), -1);
  LK_CHECK(!lightos_tensor_is_contiguous(NULL));
  t.shape[1] = -2;
  LK_CHECK_INT(lightos_tensor_numel(&t), -1);
  t = T_a;
  t.ndim = LIGHTOS_MAX_DIMS + 1;
  LK_CHECK_INT(lightos_tensor_numel(&t), -1);
  LK_CHECK(!lightos_tensor_is_contiguous(&t));
}

static void case_reshape_non_contiguous(void) {
  const uint32_t perm[2] = {1, 0};
  const int64_t flat[1] = {32};
  lightos_tensor_t tp, r;
  LK_REQUIRE_OK(lightos_tensor_permute(&T_a, perm, &tp));
  LK_CHECK(!lightos_tensor_is_contiguous(&tp));
  EXPECT(lightos_tensor_reshape(&tp, 1, flat, &r), LIGHTOS_INVALID_ARGUMENT, "contiguous");
}

static void case_binary_out_overlaps_input(void) {
  const uint32_t perm[2] = {1, 0};
  const int64_t s88[2] = {8, 8};
  lightos_tensor_t sq, sqt;
  lightos_buffer_t b = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, 64 * sizeof(float), 0, &b));
  LK_REQUIRE_OK(lightos_tensor_make(b, 0, LIGHTOS_DTYPE_F32, 2, s88, &sq));
  LK_REQUIRE_OK(lightos_tensor_permute(&sq, perm, &sqt));
  /* out = a + a^T with out being a's transpose view of the same memory */
  EXPECT(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &sq, &sq, &sqt), LIGHTOS_INVALID_ARGUMENT,
         "overlap");
  /* identical layout in place is allowed */
  LK_CHECK_STATUS(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &sq, &sq, &sq), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(g_q), LIGHTOS_SUCCESS);
  lightos_buffer_release(b);
}

static void case_binary_out_expanded(void) {
  const int64_t s48[2] = {4, 8};
  lightos_tensor_t row8, e;
  const int64_t one8[2] = {1, 8};
  LK_REQUIRE_OK(lightos_tensor_reshape(&T_w, 2, one8, &row8));
  LK_REQUIRE_OK(lightos_tensor_expand(&row8, 2, s48, &e));
  EXPECT(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &T_a, &T_b, &e), LIGHTOS_INVALID_ARGUMENT,
         "'out'", "overlapping");
}

static void case_tensor_stale_buffer(void) {
  lightos_tensor_t t = T_a;
  t.buffer = s_buf;
  EXPECT(lightos_op_fill(g_q, &t, 0.0), LIGHTOS_INVALID_ARGUMENT, "'out'", "release");
}

static void case_tensor_negative_stride(void) {
  lightos_tensor_t t = T_out;
  t.strides[1] = -1;
  EXPECT(lightos_op_fill(g_q, &t, 0.0), LIGHTOS_INVALID_ARGUMENT, "'out'", "stride");
}

static void case_tensor_extent_past_buffer(void) {
  lightos_tensor_t t = T_out;
  t.shape[0] = 5; /* one row more than the buffer holds */
  EXPECT(lightos_op_fill(g_q, &t, 0.0), LIGHTOS_OUT_OF_RANGE, "'out'");
}

static void sanity_tensors(void) {
  static float r[32];
  LK_REQUIRE_OK(lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &T_a, &T_b, &T_out));
  LK_REQUIRE_OK(lightos_queue_finish(g_q));
  LK_REQUIRE_OK(lightos_buffer_read(T_out.buffer, 0, sizeof r, r));
  for (int i = 0; i < 32; ++i)
    if (r[i] != 3.75f) {
      (void)LK_CHECK_MSG(0, "out[%d] = %g, want 3.75", i, r[i]);
      break;
    }
  /* gemm [4,8] x [8,4]^T... a @ b^T = 8 * 1.5 * 2.25 = 27 */
  lightos_tensor_t c;
  const int64_t s44[2] = {4, 4};
  LK_REQUIRE_OK(lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 2, s44, &c));
  LK_REQUIRE_OK(lightos_op_gemm(g_q, false, true, 1.0, &T_a, &T_b, 0.0, &c));
  LK_REQUIRE_OK(lightos_queue_finish(g_q));
  LK_REQUIRE_OK(lightos_buffer_read(c.buffer, 0, 16 * sizeof(float), r));
  for (int i = 0; i < 16; ++i)
    if (r[i] != 27.0f) {
      (void)LK_CHECK_MSG(0, "c[%d] = %g, want 27", i, r[i]);
      break;
    }
  lightos_tensor_free(&c);
}

static void group_tensor(void) {
  int ok = 0;
  lightos_tensor_t t;
  lightos_conv2d_params_t cp = {{1, 1}, {0, 0}, {1, 1}};
  lightos_conv2d_params_t cp_bad = {{0, 1}, {0, 0}, {1, 1}};
  const int64_t s48[2] = {4, 8}, s4[1] = {4}, sneg[2] = {4, -3}, shuge[2] = {INT64_MAX, 2};
  const int64_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  const int64_t s_big[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
  const int64_t s31[2] = {3, -1}, s_2m1[2] = {-1, -1}, s_bad_count[1] = {33};
  const int64_t s58[2] = {5, 8}, s3[1] = {3};
  const uint32_t perm_dup[2] = {0, 0}, perm_big[2] = {0, 2};
  LK_RUN_NAMED("tensor setup", tensor_setup_ok(&ok));
  if (!ok) return;
  BAD("tensor_make: NULL out", lightos_tensor_make(g_buf, 0, LIGHTOS_DTYPE_F32, 1, s4, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out");
  BAD("tensor_make: NULL buffer", lightos_tensor_make(NULL, 0, LIGHTOS_DTYPE_F32, 1, s4, &t),
      LIGHTOS_INVALID_ARGUMENT, "buffer");
  BAD("tensor_make: buffer used after release",
      lightos_tensor_make(s_buf, 0, LIGHTOS_DTYPE_F32, 1, s4, &t), LIGHTOS_INVALID_ARGUMENT,
      "buffer", "release");
  BAD("tensor_make: a queue passed as the buffer",
      lightos_tensor_make(AS(lightos_buffer_t, g_q), 0, LIGHTOS_DTYPE_F32, 1, s4, &t),
      LIGHTOS_INVALID_ARGUMENT, "buffer", "queue");
  BAD("tensor_make: dtype 99", lightos_tensor_make(g_buf, 0, (lightos_dtype_t)99, 1, s4, &t),
      LIGHTOS_INVALID_ARGUMENT, "dtype", "99");
  BAD("tensor_make: ndim 9", lightos_tensor_make(g_buf, 0, LIGHTOS_DTYPE_U8, 9, s9, &t),
      LIGHTOS_INVALID_ARGUMENT, "ndim", "9");
  BAD("tensor_make: NULL shape with ndim 2",
      lightos_tensor_make(g_buf, 0, LIGHTOS_DTYPE_F32, 2, NULL, &t), LIGHTOS_INVALID_ARGUMENT,
      "shape");
  BAD("tensor_make: negative size", lightos_tensor_make(g_buf, 0, LIGHTOS_DTYPE_F32, 2, sneg, &t),
      LIGHTOS_INVALID_ARGUMENT, "shape[1]", "-3");
  BAD("tensor_make: element count overflows",
      lightos_tensor_make(g_buf, 0, LIGHTOS_DTYPE_U8, 2, shuge, &t), LIGHTOS_INVALID_ARGUMENT,
      "overflow");
  BAD("tensor_make: extent past the buffer (65 floats in 256 bytes)",
      lightos_tensor_make(g_buf, 4, LIGHTOS_DTYPE_F32, 1, (const int64_t[]){64}, &t),
      LIGHTOS_OUT_OF_RANGE, "256");
  BAD("tensor_make: offset not a multiple of the element size",
      lightos_tensor_make(g_buf, 2, LIGHTOS_DTYPE_F32, 1, s4, &t), LIGHTOS_INVALID_ARGUMENT,
      "offset", "2");
  BAD("tensor_make: offset SIZE_MAX - 3",
      lightos_tensor_make(g_buf, SIZE_MAX - 3, LIGHTOS_DTYPE_F32, 1, s4, &t),
      LIGHTOS_INVALID_ARGUMENT, "overflow");
  BAD("tensor_alloc: NULL context", lightos_tensor_alloc(NULL, LIGHTOS_DTYPE_F32, 2, s48, &t),
      LIGHTOS_INVALID_ARGUMENT, "context");
  BAD("tensor_alloc: context used after release",
      lightos_tensor_alloc(s_ctx, LIGHTOS_DTYPE_F32, 2, s48, &t), LIGHTOS_INVALID_ARGUMENT,
      "context", "release");
  BAD("tensor_alloc: dtype 0", lightos_tensor_alloc(g_ctx, (lightos_dtype_t)0, 2, s48, &t),
      LIGHTOS_INVALID_ARGUMENT, "dtype", "0");
  BAD("tensor_alloc: NULL out", lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 2, s48, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out");
  BAD("tensor_alloc: 2^80 elements", lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 2, s_big, &t),
      LIGHTOS_INVALID_ARGUMENT, "overflow");
  BAD("tensor_alloc: 2^40 floats (more than the device memory)",
      lightos_tensor_alloc(g_ctx, LIGHTOS_DTYPE_F32, 1, (const int64_t[]){(int64_t)1 << 40}, &t),
      LIGHTOS_OUT_OF_MEMORY, "size");
  BAD("tensor_free: NULL", lightos_tensor_free(NULL), LIGHTOS_INVALID_ARGUMENT, "tensor");
  LK_RUN_NAMED("tensor_free: twice, and through a stale copy", case_tensor_free_twice());
  LK_RUN_NAMED("tensor_numel/is_contiguous: NULL, negative size, ndim 9", case_tensor_numel_bad());
  BAD("tensor_reshape: element count differs",
      lightos_tensor_reshape(&T_a, 1, s_bad_count, &t), LIGHTOS_INVALID_ARGUMENT, "33", "32");
  BAD("tensor_reshape: two -1 dims", lightos_tensor_reshape(&T_a, 2, s_2m1, &t),
      LIGHTOS_INVALID_ARGUMENT, "-1");
  BAD("tensor_reshape: -1 that does not divide", lightos_tensor_reshape(&T_a, 2, s31, &t),
      LIGHTOS_INVALID_ARGUMENT, "infer");
  BAD("tensor_reshape: NULL tensor", lightos_tensor_reshape(NULL, 1, s4, &t),
      LIGHTOS_INVALID_ARGUMENT, "'t'");
  BAD("tensor_reshape: NULL out", lightos_tensor_reshape(&T_a, 2, s48, NULL),
      LIGHTOS_INVALID_ARGUMENT, "out");
  LK_RUN_NAMED("tensor_reshape: transposed view needs a copy", case_reshape_non_contiguous());
  BAD("tensor_permute: repeated index", lightos_tensor_permute(&T_a, perm_dup, &t),
      LIGHTOS_INVALID_ARGUMENT, "perm");
  BAD("tensor_permute: index past ndim", lightos_tensor_permute(&T_a, perm_big, &t),
      LIGHTOS_INVALID_ARGUMENT, "perm[1]", "2");
  BAD("tensor_permute: NULL perm", lightos_tensor_permute(&T_a, NULL, &t),
      LIGHTOS_INVALID_ARGUMENT, "perm");
  BAD("tensor_slice: dim out of range", lightos_tensor_slice(&T_a, 2, 0, 1, 1, &t),
      LIGHTOS_INVALID_ARGUMENT, "dim", "2");
  BAD("tensor_slice: step 0", lightos_tensor_slice(&T_a, 0, 0, 4, 0, &t),
      LIGHTOS_INVALID_ARGUMENT, "step", "0");
  BAD("tensor_expand: non-1 dim to another size", lightos_tensor_expand(&T_a, 2, s58, &t),
      LIGHTOS_INVALID_ARGUMENT, "dim 0", "5");
  BAD("tensor_expand: fewer dims", lightos_tensor_expand(&T_a, 1, s4, &t),
      LIGHTOS_INVALID_ARGUMENT, "ndim", "1");
  /* ops */
  BAD("op_binary: NULL queue", lightos_op_binary(NULL, LIGHTOS_BINARY_ADD, &T_a, &T_b, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "queue");
  BAD("op_binary: queue used after release",
      lightos_op_binary(s_queue, LIGHTOS_BINARY_ADD, &T_a, &T_b, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "queue", "release");
  BAD("op_binary: NULL a", lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, NULL, &T_b, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "'a'");
  BAD("op_binary: NULL out", lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &T_a, &T_b, NULL),
      LIGHTOS_INVALID_ARGUMENT, "'out'");
  BAD("op_binary: op 0", lightos_op_binary(g_q, (lightos_binary_op_t)0, &T_a, &T_b, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "op", "0");
  BAD("op_binary: shapes that do not broadcast",
      lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &T_a, &T_bad, &T_out), LIGHTOS_INVALID_ARGUMENT,
      "'b'", "broadcast");
  BAD("op_binary: dtype mismatch (i32 + f32)",
      lightos_op_binary(g_q, LIGHTOS_BINARY_MUL, &T_i32, &T_b, &T_out), LIGHTOS_INVALID_ARGUMENT,
      "'a'", "i32");
  BAD("op_binary: tensor of another context",
      lightos_op_binary(g_q, LIGHTOS_BINARY_ADD, &T_a, &T_other, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "'b'", "context");
  LK_RUN_NAMED("op_binary: output overlapping an input with another layout",
               case_binary_out_overlaps_input());
  LK_RUN_NAMED("op_binary: expanded (stride 0) output", case_binary_out_expanded());
  LK_RUN_NAMED("op_fill: tensor whose buffer was released", case_tensor_stale_buffer());
  LK_RUN_NAMED("op_fill: negative stride", case_tensor_negative_stride());
  LK_RUN_NAMED("op_fill: extent past the buffer", case_tensor_extent_past_buffer());
  BAD("op_unary: op 99", lightos_op_unary(g_q, (lightos_unary_op_t)99, &T_a, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "op", "99");
  BAD("op_unary: out shape differs", lightos_op_unary(g_q, LIGHTOS_UNARY_EXP, &T_a, &T_bad),
      LIGHTOS_INVALID_ARGUMENT, "'out'");
  BAD("op_unary_backward: NULL grad_out",
      lightos_op_unary_backward(g_q, LIGHTOS_UNARY_TANH, &T_a, NULL, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "'grad_out'");
  BAD("op_reduce: axes_mask past ndim",
      lightos_op_reduce(g_q, LIGHTOS_REDUCE_SUM, &T_a, 0x4, &T_row), LIGHTOS_INVALID_ARGUMENT,
      "axes_mask", "0x4");
  BAD("op_reduce: kind 9", lightos_op_reduce(g_q, (lightos_reduce_kind_t)9, &T_a, 0x2, &T_row),
      LIGHTOS_INVALID_ARGUMENT, "kind", "9");
  BAD("op_reduce: out of the wrong shape",
      lightos_op_reduce(g_q, LIGHTOS_REDUCE_SUM, &T_a, 0x2, &T_w), LIGHTOS_INVALID_ARGUMENT,
      "'out'");
  BAD("op_argmax: dim out of range", lightos_op_argmax(g_q, &T_a, 2, &T_idx),
      LIGHTOS_INVALID_ARGUMENT, "dim", "2");
  BAD("op_argmax: f32 output", lightos_op_argmax(g_q, &T_a, 1, &T_row), LIGHTOS_INVALID_ARGUMENT,
      "'out'", "i64");
  BAD("op_softmax: dim out of range", lightos_op_softmax(g_q, &T_a, 5, false, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "dim", "5");
  BAD("op_softmax_backward: NULL grad_y",
      lightos_op_softmax_backward(g_q, &T_a, NULL, 1, false, &T_out), LIGHTOS_INVALID_ARGUMENT,
      "'grad_y'");
  BAD("op_layernorm: weight of the wrong size",
      lightos_op_layernorm(g_q, &T_a, &T_row, NULL, 1e-5, &T_out, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "'weight'");
  BAD("op_layernorm: negative eps",
      lightos_op_layernorm(g_q, &T_a, NULL, NULL, -1.0, &T_out, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "eps");
  BAD("op_layernorm_backward: NULL x",
      lightos_op_layernorm_backward(g_q, NULL, NULL, &T_row, &T_row, &T_b, &T_out, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "'x'");
  BAD("op_rmsnorm: NaN eps", lightos_op_rmsnorm(g_q, &T_a, NULL, NAN, &T_out, NULL),
      LIGHTOS_INVALID_ARGUMENT, "eps");
  BAD("op_rmsnorm_backward: NULL grad_out",
      lightos_op_rmsnorm_backward(g_q, &T_a, NULL, &T_row, NULL, &T_out, NULL),
      LIGHTOS_INVALID_ARGUMENT, "'grad_out'");
  BAD("op_cross_entropy: f32 targets",
      lightos_op_cross_entropy(g_q, &T_a, &T_row, &T_row), LIGHTOS_INVALID_ARGUMENT, "'targets'");
  BAD("op_cross_entropy_backward: NULL logits",
      lightos_op_cross_entropy_backward(g_q, NULL, &T_idx, &T_row, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "'logits'");
  BAD("op_embedding: f32 indices", lightos_op_embedding(g_q, &T_a, &T_row, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "'indices'");
  BAD("op_embedding_backward: NULL grad_table",
      lightos_op_embedding_backward(g_q, &T_idx, &T_out, NULL), LIGHTOS_INVALID_ARGUMENT,
      "'grad_table'");
  BAD("op_cast: NULL x", lightos_op_cast(g_q, NULL, &T_out), LIGHTOS_INVALID_ARGUMENT, "'x'");
  BAD("op_cast: shapes differ", lightos_op_cast(g_q, &T_i32, &T_bad), LIGHTOS_INVALID_ARGUMENT,
      "'out'");
  BAD("op_contiguous: shapes differ", lightos_op_contiguous(g_q, &T_a, &T_bad),
      LIGHTOS_INVALID_ARGUMENT, "'out'");
  BAD("op_fill: NULL out", lightos_op_fill(g_q, NULL, 1.0), LIGHTOS_INVALID_ARGUMENT, "'out'");
  BAD("op_arange: NaN start", lightos_op_arange(g_q, &T_w, NAN, 1.0), LIGHTOS_INVALID_ARGUMENT,
      "start");
  BAD("op_random: dist 9", lightos_op_random(g_q, (lightos_rng_dist_t)9, 1, 0, 0, 1, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "dist", "9");
  BAD("op_random: uniform with a > b",
      lightos_op_random(g_q, LIGHTOS_RNG_UNIFORM, 1, 0, 2.0, 1.0, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "a (2)");
  BAD("op_random: dropout probability 1.5",
      lightos_op_random(g_q, LIGHTOS_RNG_DROPOUT, 1, 0, 1.5, 0, &T_out), LIGHTOS_INVALID_ARGUMENT,
      "1.5");
  BAD("op_gemm: inner dims differ",
      lightos_op_gemm(g_q, false, false, 1.0, &T_a, &T_a, 0.0, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "inner");
  BAD("op_gemm: i32 tensors", lightos_op_gemm(g_q, false, true, 1.0, &T_i32, &T_i32, 0.0, &T_i32),
      LIGHTOS_INVALID_ARGUMENT, "i32");
  BAD("op_gemm: 1-D a", lightos_op_gemm(g_q, false, false, 1.0, &T_w, &T_a, 0.0, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "'a'");
  BAD("op_gemm: NULL c", lightos_op_gemm(g_q, false, true, 1.0, &T_a, &T_b, 0.0, NULL),
      LIGHTOS_INVALID_ARGUMENT, "'c'");
  BAD("op_sgd_step: f64 param",
      lightos_op_sgd_step(g_q, &T_f64, &T_b, NULL, 0.1, 0.0, 0.0), LIGHTOS_INVALID_ARGUMENT,
      "'param'", "f32");
  BAD("op_sgd_step: NULL grad", lightos_op_sgd_step(g_q, &T_a, NULL, NULL, 0.1, 0.0, 0.0),
      LIGHTOS_INVALID_ARGUMENT, "'grad'");
  BAD("op_adamw_step: step 0",
      lightos_op_adamw_step(g_q, &T_a, &T_b, &T_out, &T_f64, 1e-3, 0.9, 0.999, 1e-8, 0.0, 0),
      LIGHTOS_INVALID_ARGUMENT, "step", "0");
  BAD("op_conv2d: NULL params", lightos_op_conv2d(g_q, &T_a, &T_a, NULL, NULL, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "params");
  BAD("op_conv2d: stride 0", lightos_op_conv2d(g_q, &T_a, &T_a, NULL, &cp_bad, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "stride[0]", "0");
  BAD("op_conv2d: 2-D x", lightos_op_conv2d(g_q, &T_a, &T_a, NULL, &cp, &T_out),
      LIGHTOS_INVALID_ARGUMENT, "'x'", "4");
  BAD("op_conv2d_backward: NULL grad_out",
      lightos_op_conv2d_backward(g_q, &T_a, &T_a, NULL, &cp, &T_out, NULL, NULL),
      LIGHTOS_INVALID_ARGUMENT, "'grad_out'");
  (void)s3;
  LK_RUN_NAMED("sanity: tensor ops still correct after bad tensor calls", sanity_tensors());
  lightos_tensor_t* all[] = {&T_a,     &T_b,   &T_out, &T_bad, &T_i32,
                             &T_other, &T_idx, &T_w,   &T_row, &T_f64};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) lightos_tensor_free(all[i]);
}

/* ---- Use after release of a context that still has objects ----------------
 * A buffer keeps its context alive ("freed when ... everything created from
 * it has been released"), so a buffer of a released context stays usable. */
static void case_buffer_outlives_context(void) {
  lightos_context_t c = NULL;
  lightos_buffer_t b = NULL;
  int w[4] = {1, 2, 3, 4}, r[4] = {0};
  LK_REQUIRE_OK(lightos_context_create_for_device(g_dev, 0, &c));
  LK_REQUIRE_OK(lightos_buffer_alloc(c, sizeof w, 0, &b));
  LK_REQUIRE_OK(lightos_context_release(c));
  EXPECT(lightos_context_retain(c), LIGHTOS_INVALID_ARGUMENT, "release");
  /* queued form on a queue of the buffer's context is impossible now (no
   * queue); the blocking forms use the context's default queue */
  LK_CHECK_STATUS(lightos_buffer_write(b, 0, sizeof w, w), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(b, 0, sizeof r, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(w, r, sizeof w) == 0);
  LK_CHECK_STATUS(lightos_buffer_release(b), LIGHTOS_SUCCESS);
}

/* The default queue is owned by its context.  Retaining it and using it
 * after the context's last release must either be refused or keep working;
 * never touch freed memory (run in a child: an ASan build catches it). */
static lightos_context_t g_ctx_child;

static void case_retained_default_queue(void) {
  lightos_context_t c = NULL;
  lightos_queue_t dq = NULL;
  lightos_event_t e = NULL;
  LK_REQUIRE_OK(lightos_context_create_for_device(g_dev, 0, &c));
  LK_REQUIRE_OK(lightos_context_default_queue(c, &dq));
  lightos_status_t s = lightos_queue_retain(dq);
  LK_REQUIRE_OK(lightos_context_release(c));
  if (s != LIGHTOS_SUCCESS) return; /* refused: fine */
  /* retained: the queue must still be a working queue */
  LK_CHECK_STATUS(lightos_event_record(dq, &e), LIGHTOS_SUCCESS);
  if (e) {
    LK_CHECK_STATUS(lightos_event_wait(e), LIGHTOS_SUCCESS);
    lightos_event_release(e);
  }
  LK_CHECK_STATUS(lightos_queue_finish(dq), LIGHTOS_SUCCESS);
  /* a buffer of another context is refused with a message naming both */
  lightos_buffer_t b = NULL;
  int v = 1;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx_child, sizeof v, 0, &b));
  EXPECT(lightos_enqueue_write(dq, b, 0, sizeof v, &v, NULL), LIGHTOS_INVALID_ARGUMENT, "dst");
  lightos_buffer_release(b);
  /* and releasable: the reference was the caller's */
  LK_CHECK_STATUS(lightos_queue_release(dq), LIGHTOS_SUCCESS);
}

/* ---- Failure propagation through queues (white-box) ----------------------- */

static void case_failure_propagation(void) {
  lk_event_t* fe = NULL;
  lightos_queue_t qb = NULL, qc = NULL;
  lightos_event_t e_write = NULL, e_kernel = NULL, e_marker = NULL, e_c = NULL;
  int before[4] = {11, 12, 13, 14}, attempt[4] = {-1, -1, -1, -1}, r[4] = {0};
  size_t gs = NV;
  LK_REQUIRE_OK(lightos_buffer_write(g_out, 0, sizeof before, before));
  LK_REQUIRE(lk_event_create(&fe) == LIGHTOS_SUCCESS);
  lightos_event_t fh = LK_HANDLE(fe);
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &qb));
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &qc));
  /* queue B waits on the (pending) event, then has work queued */
  LK_REQUIRE_OK(lightos_queue_wait_event(qb, fh));
  LK_REQUIRE_OK(lightos_enqueue_write(qb, g_out, 0, sizeof attempt, attempt, &e_write));
  LK_REQUIRE_OK(lightos_enqueue_kernel(qb, g_vadd, 1, &gs, NULL, &e_kernel));
  LK_REQUIRE_OK(lightos_event_record(qb, &e_marker));
  /* queue C waits on one of B's events */
  LK_REQUIRE_OK(lightos_queue_wait_event(qc, e_kernel));
  LK_REQUIRE_OK(lightos_event_record(qc, &e_c));
  usleep(20000);
  LK_CHECK_STATUS(lightos_event_query(e_write), LIGHTOS_NOT_READY);
  LK_CHECK_STATUS(lightos_event_query(e_c), LIGHTOS_NOT_READY);
  /* the dependency fails */
  lk_event_signal(fe, LIGHTOS_DEVICE_LOST, "injected failure", "cpu", 0, 0);
  EXPECT(lightos_event_wait(e_write), LIGHTOS_ABORTED, "");
  EXPECT(lightos_event_wait(e_kernel), LIGHTOS_ABORTED, "");
  EXPECT(lightos_event_wait(e_marker), LIGHTOS_ABORTED, "");
  EXPECT(lightos_event_query(e_marker), LIGHTOS_ABORTED, "");
  EXPECT(lightos_event_wait(e_c), LIGHTOS_ABORTED, "");
  /* the skipped write did not happen */
  LK_CHECK_STATUS(lightos_buffer_read(g_out, 0, sizeof r, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(r, before, sizeof r) == 0);
  /* finish reports the failure once, then the queue is usable again */
  EXPECT(lightos_queue_finish(qb), LIGHTOS_ABORTED, "");
  LK_CHECK_STATUS(lightos_queue_finish(qb), LIGHTOS_SUCCESS);
  EXPECT(lightos_queue_finish(qc), LIGHTOS_ABORTED, "");
  LK_CHECK_STATUS(lightos_queue_finish(qc), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_enqueue_write(qb, g_out, 0, sizeof attempt, attempt, NULL),
                  LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_enqueue_read(qb, g_out, 0, sizeof r, r, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(qb), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(r, attempt, sizeof r) == 0);
  /* a queue that waits on an already-failed event: aborted at once */
  LK_CHECK_STATUS(lightos_queue_wait_event(g_defq, e_write), LIGHTOS_SUCCESS);
  EXPECT(lightos_buffer_write(g_out, 0, sizeof before, before), LIGHTOS_ABORTED, "");
  EXPECT(lightos_queue_finish(g_defq), LIGHTOS_ABORTED, "");
  LK_CHECK_STATUS(lightos_queue_finish(g_defq), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_write(g_out, 0, sizeof before, before), LIGHTOS_SUCCESS);
  lightos_event_release(e_write);
  lightos_event_release(e_kernel);
  lightos_event_release(e_marker);
  lightos_event_release(e_c);
  lightos_event_release(fh);
  lightos_queue_release(qb);
  lightos_queue_release(qc);
}

/* The same on every device's queues, the failure signalled from another
 * thread 100 ms later (so a backend whose lightos_queue_wait_event blocks
 * the host still gets through). */
typedef struct {
  lk_event_t* ev;
} signaller_arg_t;

static void* signaller(void* arg) {
  signaller_arg_t* a = arg;
  usleep(100000);
  lk_event_signal(a->ev, LIGHTOS_DEVICE_LOST, "injected failure", "test", 0, 0);
  return NULL;
}

static void propagation_on_device(lightos_device_t d) {
  lightos_device_info_t in;
  lightos_context_t c = NULL;
  lightos_queue_t qb = NULL, qc = NULL;
  lightos_buffer_t b = NULL;
  lightos_event_t ew = NULL, ef = NULL, em = NULL, ec = NULL;
  lk_event_t* fe = NULL;
  pthread_t th;
  signaller_arg_t sa;
  int before[8] = {1, 2, 3, 4, 5, 6, 7, 8}, attempt[8] = {0}, r[8] = {0}, pat = -1;
  LK_REQUIRE_OK(lightos_device_get_info(d, &in));
  LK_REQUIRE_OK(lightos_context_create_for_device(d, 0, &c));
  LK_REQUIRE_OK(lightos_queue_create(c, 0, &qb));
  LK_REQUIRE_OK(lightos_queue_create(c, 0, &qc));
  LK_REQUIRE_OK(lightos_buffer_alloc(c, sizeof before, 0, &b));
  LK_REQUIRE_OK(lightos_buffer_write(b, 0, sizeof before, before));
  LK_REQUIRE(lk_event_create(&fe) == LIGHTOS_SUCCESS);
  lightos_event_t fh = LK_HANDLE(fe);
  sa.ev = fe;
  LK_REQUIRE(pthread_create(&th, NULL, signaller, &sa) == 0);
  LK_CHECK_STATUS(lightos_queue_wait_event(qb, fh), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_enqueue_write(qb, b, 0, sizeof attempt, attempt, &ew), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_enqueue_fill(qb, b, 0, sizeof attempt, &pat, sizeof pat, &ef),
                  LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_record(qb, &em), LIGHTOS_SUCCESS);
  if (em) LK_CHECK_STATUS(lightos_queue_wait_event(qc, em), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_record(qc, &ec), LIGHTOS_SUCCESS);
  pthread_join(th, NULL);
  if (ew) EXPECT(lightos_event_wait(ew), LIGHTOS_ABORTED, "");
  if (ef) EXPECT(lightos_event_wait(ef), LIGHTOS_ABORTED, "");
  if (em) EXPECT(lightos_event_wait(em), LIGHTOS_ABORTED, "");
  if (ec) EXPECT(lightos_event_wait(ec), LIGHTOS_ABORTED, "");
  EXPECT(lightos_queue_finish(qb), LIGHTOS_ABORTED, "");
  EXPECT(lightos_queue_finish(qc), LIGHTOS_ABORTED, "");
  LK_CHECK_STATUS(lightos_queue_finish(qb), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(qc), LIGHTOS_SUCCESS);
  /* nothing skipped ran; the queues work again */
  LK_CHECK_STATUS(lightos_buffer_read(b, 0, sizeof r, r), LIGHTOS_SUCCESS);
  LK_CHECK_MSG(memcmp(r, before, sizeof r) == 0, "%s: a skipped command wrote the buffer", in.uri);
  LK_CHECK_STATUS(lightos_enqueue_fill(qb, b, 0, sizeof r, &pat, sizeof pat, NULL),
                  LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_enqueue_read(qb, b, 0, sizeof r, r, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(qb), LIGHTOS_SUCCESS);
  LK_CHECK(r[0] == -1 && r[7] == -1);
  lightos_event_t evs[] = {ew, ef, em, ec, fh};
  for (size_t i = 0; i < 5; ++i)
    if (evs[i]) lightos_event_release(evs[i]);
  lightos_buffer_release(b);
  lightos_queue_release(qb);
  lightos_queue_release(qc);
  lightos_context_release(c);
}

static void case_failure_propagation_all_devices(void) {
  uint32_t n = 0;
  LK_REQUIRE_OK(lightos_device_count(&n));
  for (uint32_t i = 0; i < n; ++i) {
    lightos_device_t d;
    LK_REQUIRE_OK(lightos_device_get(i, &d));
    propagation_on_device(d);
  }
}

/* elapsed_ms with an event that has not completed: NOT_READY. */
static void case_elapsed_pending(void) {
  lk_event_t* fe = NULL;
  lightos_event_t pend = NULL;
  double ms = 0;
  LK_REQUIRE(lk_event_create(&fe) == LIGHTOS_SUCCESS);
  lightos_event_t fh = LK_HANDLE(fe);
  LK_REQUIRE_OK(lightos_queue_wait_event(g_pq, fh));
  LK_REQUIRE_OK(lightos_event_record(g_pq, &pend));
  EXPECT(lightos_event_elapsed_ms(g_pev1, pend, &ms), LIGHTOS_NOT_READY, "end");
  lk_event_signal(fe, LIGHTOS_SUCCESS, "", "", 0, 0);
  LK_CHECK_STATUS(lightos_event_wait(pend), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(g_pq), LIGHTOS_SUCCESS);
  lightos_event_release(pend);
  lightos_event_release(fh);
}

static void sanity_all(void) {
  sanity_buffers();
  sanity_kernel();
  sanity_queues();
}

/* Cases that may crash the process run in a child (this program started
 * again with "--case NAME"), so a crash is one failed case. */
static const struct {
  const char* name;
  void (*fn)(void);
} child_cases[] = {
    {"buffer_outlives_context", case_buffer_outlives_context},
    {"retained_default_queue", case_retained_default_queue},
};

static void run_in_child(const char* name) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  LK_REQUIRE(n > 0);
  self[n] = '\0';
  char* argv[] = {self, "--case", (char*)name, NULL};
  pid_t pid;
  LK_REQUIRE(posix_spawn(&pid, self, NULL, NULL, argv, environ) == 0);
  int st = 0;
  LK_REQUIRE(waitpid(pid, &st, 0) == pid);
  if (WIFSIGNALED(st))
    (void)LK_CHECK_MSG(0, "the child crashed with signal %d (%s)", WTERMSIG(st),
                       strsignal(WTERMSIG(st)));
  else
    LK_CHECK_MSG(WEXITSTATUS(st) == 0, "the child failed (exit status %d)", WEXITSTATUS(st));
}

static int child_main(const char* name) {
  lk_t.program = "test_bad_input (child)";
  for (size_t i = 0; i < sizeof child_cases / sizeof child_cases[0]; ++i)
    if (!strcmp(child_cases[i].name, name)) {
      if (lightos_device_from_uri("cpu:0", &g_dev)) return 2;
      if (lightos_context_create_for_device(g_dev, 0, &g_ctx_child)) return 2;
      LK_RUN_NAMED(name, child_cases[i].fn());
      return lk_test_finish();
    }
  fprintf(stderr, "no case %s\n", name);
  return 2;
}

int main(int argc, char** argv) {
  int stack_var = 0;
  if (argc == 3 && !strcmp(argv[1], "--case")) return child_main(argv[2]);
  g_stackp = &stack_var;
  lk_t.program = "test_bad_input";
  alarm(120); /* never hang forever */
  if (setup() != 0) {
    lk_t.failed++;
    return lk_test_finish();
  }
  group_registry();
  group_context();
  group_buffer();
  group_queue();
  group_program();
  group_kernel();
  group_seed_comm();
  group_tensor();
  LK_RUN_NAMED("context_release: buffers of a released context stay usable (child process)",
               run_in_child("buffer_outlives_context"));
  LK_RUN_NAMED("queue_retain: the default queue outliving its context (child process)",
               run_in_child("retained_default_queue"));
  LK_RUN_NAMED("queue failure: waiters and later commands complete with ABORTED (white-box)",
               case_failure_propagation());
  LK_RUN_NAMED("queue failure: propagation on every device's queues (white-box)",
               case_failure_propagation_all_devices());
  LK_RUN_NAMED("event_elapsed_ms: pending end event gives NOT_READY (white-box)",
               case_elapsed_pending());
  LK_RUN_NAMED("sanity: everything still works at the end", sanity_all());
  teardown();
  return lk_test_finish();
}
