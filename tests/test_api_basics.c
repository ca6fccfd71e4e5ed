/* Positive-path tests of the public API (CPU backend).
 *
 * Status strings, the error record, backends and devices, selection and
 * its explanation, contexts, buffers (transfers, fills of every pattern
 * size, nested sub-buffers, mapping), queued transfers and events,
 * profiling, reference counts, programs and kernels, the seed API with a
 * one-rank communicator, and LIGHTOS_CPU_DEVICES (checked in a child
 * process started with the variable set).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lightos/lightos.h"
#include "lk_test.h"

extern char** environ;

static lightos_device_t g_dev;
static lightos_device_info_t g_info;
static lightos_context_t g_ctx;

/* ---- status strings and the error record --------------------------------- */

static void test_status_strings(void) {
  static const struct {
    lightos_status_t s;
    const char* name;
  } table[] = {
      {LIGHTOS_SUCCESS, "LIGHTOS_SUCCESS"},
      {LIGHTOS_INVALID_ARGUMENT, "LIGHTOS_INVALID_ARGUMENT"},
      {LIGHTOS_NOT_FOUND, "LIGHTOS_NOT_FOUND"},
      {LIGHTOS_UNAVAILABLE, "LIGHTOS_UNAVAILABLE"},
      {LIGHTOS_UNSUPPORTED, "LIGHTOS_UNSUPPORTED"},
      {LIGHTOS_OUT_OF_MEMORY, "LIGHTOS_OUT_OF_MEMORY"},
      {LIGHTOS_OUT_OF_RANGE, "LIGHTOS_OUT_OF_RANGE"},
      {LIGHTOS_DEVICE_LOST, "LIGHTOS_DEVICE_LOST"},
      {LIGHTOS_TIMEOUT, "LIGHTOS_TIMEOUT"},
      {LIGHTOS_ABORTED, "LIGHTOS_ABORTED"},
      {LIGHTOS_COMPILE_FAILED, "LIGHTOS_COMPILE_FAILED"},
      {LIGHTOS_NOT_READY, "LIGHTOS_NOT_READY"},
      {LIGHTOS_INTERNAL, "LIGHTOS_INTERNAL"},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; ++i) {
    LK_CHECK_INT(table[i].s, (int)i); /* the codes are 0..12 in order */
    LK_CHECK_STR(lightos_status_string(table[i].s), table[i].name);
  }
  LK_CHECK_STR(lightos_status_string((lightos_status_t)13), "LIGHTOS_UNKNOWN_STATUS");
  LK_CHECK_STR(lightos_status_string((lightos_status_t)-5), "LIGHTOS_UNKNOWN_STATUS");
}

static void test_version_and_dtypes(void) {
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", LIGHTOS_VERSION_MAJOR, LIGHTOS_VERSION_MINOR,
           LIGHTOS_VERSION_PATCH);
  const char* v = lightos_version_string();
  LK_REQUIRE(v != NULL);
  LK_CHECK_MSG(strstr(v, want) != NULL, "version \"%s\" does not contain %s", v, want);
  static const struct {
    lightos_dtype_t t;
    size_t size;
    const char* name;
  } d[] = {{LIGHTOS_DTYPE_F32, 4, "f32"}, {LIGHTOS_DTYPE_F64, 8, "f64"},
           {LIGHTOS_DTYPE_F16, 2, "f16"}, {LIGHTOS_DTYPE_BF16, 2, "bf16"},
           {LIGHTOS_DTYPE_I32, 4, "i32"}, {LIGHTOS_DTYPE_I64, 8, "i64"},
           {LIGHTOS_DTYPE_U8, 1, "u8"},   {LIGHTOS_DTYPE_BOOL, 1, "bool"}};
  for (size_t i = 0; i < sizeof d / sizeof d[0]; ++i) {
    LK_CHECK_INT(lightos_dtype_size(d[i].t), d[i].size);
    LK_CHECK_STR(lightos_dtype_name(d[i].t), d[i].name);
  }
}

static void test_error_record(void) {
  lightos_clear_error();
  const lightos_error_info_t* e = lightos_last_error();
  LK_REQUIRE(e != NULL);
  LK_CHECK_INT(e->status, LIGHTOS_SUCCESS);
  LK_CHECK_STR(e->message, "");
  LK_CHECK_STR(e->backend, "");
  LK_CHECK_STR(e->native_name, "");
  LK_CHECK_INT(e->native_code, 0);
  /* a failure fills it */
  LK_CHECK_STATUS(lightos_buffer_alloc(g_ctx, 0, 0, &(lightos_buffer_t){NULL}),
                  LIGHTOS_INVALID_ARGUMENT);
  e = lightos_last_error();
  LK_CHECK_INT(e->status, LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(e->message[0] != '\0');
  LK_CHECK(strstr(e->message, "size") != NULL);
  LK_CHECK(e->file != NULL && e->file[0] != '\0');
  LK_CHECK(e->line > 0);
  char saved[1024];
  snprintf(saved, sizeof saved, "%s", e->message);
  /* a successful call leaves the record as it was */
  uint32_t n = 0;
  LK_CHECK_STATUS(lightos_device_count(&n), LIGHTOS_SUCCESS);
  e = lightos_last_error();
  LK_CHECK_INT(e->status, LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_STR(e->message, saved);
  /* clear resets everything */
  lightos_clear_error();
  e = lightos_last_error();
  LK_CHECK_INT(e->status, LIGHTOS_SUCCESS);
  LK_CHECK_STR(e->message, "");
  LK_CHECK_STR(e->backend, "");
  LK_CHECK_STR(e->native_name, "");
  LK_CHECK_INT(e->native_code, 0);
}

/* ---- backends, devices, selection ---------------------------------------- */

static void test_backends(void) {
  uint32_t nb = 0, nd = 0, sum = 0;
  int cpu_seen = 0;
  LK_REQUIRE_OK(lightos_backend_count(&nb));
  LK_CHECK(nb >= 1);
  LK_REQUIRE_OK(lightos_device_count(&nd));
  for (uint32_t i = 0; i < nb; ++i) {
    lightos_backend_info_t bi;
    memset(&bi, 0xab, sizeof bi);
    LK_REQUIRE_OK(lightos_backend_get_info(i, &bi));
    LK_CHECK(bi.name != NULL && bi.name[0]);
    LK_CHECK(bi.reason != NULL);
    if (bi.available) {
      sum += bi.device_count;
      LK_CHECK_STR(bi.reason, "");
    } else {
      LK_CHECK_MSG(bi.reason[0] != '\0', "backend %s unavailable without a reason", bi.name);
      LK_CHECK_INT(bi.device_count, 0);
    }
    if (bi.backend == LIGHTOS_BACKEND_CPU) {
      cpu_seen = 1;
      LK_CHECK_STR(bi.name, "cpu");
      LK_CHECK(bi.available);
      LK_CHECK(bi.device_count >= 1);
    }
  }
  LK_CHECK(cpu_seen);
  LK_CHECK_INT(sum, nd);
}

static void test_device_info(void) {
  uint32_t nd = 0;
  LK_REQUIRE_OK(lightos_device_count(&nd));
  LK_REQUIRE(nd >= 1);
  LK_CHECK_STR(g_info.uri, "cpu:0");
  LK_CHECK_STR(g_info.backend_name, "cpu");
  LK_CHECK_INT(g_info.backend, LIGHTOS_BACKEND_CPU);
  LK_CHECK_INT(g_info.index, 0);
  LK_CHECK_INT(g_info.type, LIGHTOS_DEVICE_TYPE_CPU);
  LK_CHECK(g_info.name[0] != '\0');
  LK_CHECK(strlen(g_info.name) < sizeof g_info.name);
  LK_CHECK(g_info.global_mem_bytes > 0);
  LK_CHECK(g_info.local_mem_bytes > 0);
  LK_CHECK(g_info.compute_units >= 1);
  LK_CHECK(g_info.max_work_group_size >= 1);
  LK_CHECK(g_info.host_visible_memory);
  /* every device: sane, uris unique, index matches the backend order */
  for (uint32_t i = 0; i < nd; ++i) {
    lightos_device_t d;
    lightos_device_info_t in;
    int64_t score = -5;
    LK_REQUIRE_OK(lightos_device_get(i, &d));
    LK_REQUIRE_OK(lightos_device_get_info(d, &in));
    LK_CHECK(in.name[0] != '\0');
    LK_CHECK(in.uri[0] != '\0');
    LK_CHECK(in.global_mem_bytes > 0);
    LK_CHECK(in.compute_units >= 1);
    LK_CHECK(in.max_work_group_size >= 1);
    LK_CHECK_STATUS(lightos_device_score(d, &score), LIGHTOS_SUCCESS);
    LK_CHECK(score >= -1);
    lightos_device_t back = NULL;
    LK_CHECK_STATUS(lightos_device_from_uri(in.uri, &back), LIGHTOS_SUCCESS);
    LK_CHECK_MSG(back == d, "from_uri(\"%s\") gave another device", in.uri);
    for (uint32_t j = 0; j < i; ++j) {
      lightos_device_t dj;
      lightos_device_info_t ij;
      LK_REQUIRE_OK(lightos_device_get(j, &dj));
      LK_REQUIRE_OK(lightos_device_get_info(dj, &ij));
      LK_CHECK_MSG(strcmp(ij.uri, in.uri) != 0, "uri %s appears twice", in.uri);
    }
  }
  /* a CPU device scores in the CPU band: 1000 + 200 + units + GiB */
  int64_t s = 0;
  LK_REQUIRE_OK(lightos_device_score(g_dev, &s));
  LK_CHECK(s >= 1200 && s <= 1200 + 255 + 255);
}

static void test_device_from_uri(void) {
  lightos_device_t a = NULL, b = NULL, c = NULL, any = NULL, sel = NULL, cpu = NULL;
  const char* env = getenv("LIGHTOS_DEVICE");
  char* saved = env ? strdup(env) : NULL;
  unsetenv("LIGHTOS_DEVICE");
  LK_CHECK_STATUS(lightos_device_from_uri("cpu", &a), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_device_from_uri("cpu:0", &b), LIGHTOS_SUCCESS);
  LK_CHECK(a != NULL && a == b);
  LK_CHECK(a == g_dev);
  LK_CHECK_STATUS(lightos_device_from_uri("any", &any), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_device_select(LIGHTOS_DEVICE_ANY, &sel), LIGHTOS_SUCCESS);
  LK_CHECK(any != NULL && any == sel);
  LK_CHECK_STATUS(lightos_device_select(LIGHTOS_DEVICE_CPU, &cpu), LIGHTOS_SUCCESS);
  lightos_device_info_t in;
  LK_CHECK_STATUS(lightos_device_get_info(cpu, &in), LIGHTOS_SUCCESS);
  LK_CHECK_INT(in.type, LIGHTOS_DEVICE_TYPE_CPU);
  LK_CHECK_STATUS(lightos_device_select(LIGHTOS_DEVICE_BACKEND_CPU, &c), LIGHTOS_SUCCESS);
  LK_CHECK(c == g_dev); /* first device of the backend */
  if (saved) {
    setenv("LIGHTOS_DEVICE", saved, 1);
    free(saved);
  }
}

static void test_env_device_honoured(void) {
  const char* env = getenv("LIGHTOS_DEVICE");
  char* saved = env ? strdup(env) : NULL;
  lightos_device_t d = NULL;
  lightos_context_t c = NULL;
  char text[4096];
  size_t len = 0;
  setenv("LIGHTOS_DEVICE", "cpu", 1);
  LK_CHECK_STATUS(lightos_device_select(LIGHTOS_DEVICE_ANY, &d), LIGHTOS_SUCCESS);
  LK_CHECK(d == g_dev);
  LK_CHECK_STATUS(lightos_context_create(LIGHTOS_DEVICE_ANY, &c), LIGHTOS_SUCCESS);
  if (c) {
    lightos_device_t cd = NULL;
    LK_CHECK_STATUS(lightos_context_get_device(c, &cd), LIGHTOS_SUCCESS);
    LK_CHECK(cd == g_dev);
    lightos_context_release(c);
  }
  LK_CHECK_STATUS(lightos_device_explain_selection(LIGHTOS_DEVICE_ANY, text, sizeof text, &len),
                  LIGHTOS_SUCCESS);
  LK_CHECK_MSG(strstr(text, "LIGHTOS_DEVICE") != NULL, "explanation does not mention "
               "LIGHTOS_DEVICE:\n%s", text);
  setenv("LIGHTOS_DEVICE", "cpu:0", 1);
  d = NULL;
  LK_CHECK_STATUS(lightos_device_select(LIGHTOS_DEVICE_ANY, &d), LIGHTOS_SUCCESS);
  LK_CHECK(d == g_dev);
  /* only ANY honours the variable */
  setenv("LIGHTOS_DEVICE", "cpu:99", 1);
  d = NULL;
  LK_CHECK_STATUS(lightos_device_select(LIGHTOS_DEVICE_CPU, &d), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_device_select(LIGHTOS_DEVICE_ANY, &d), LIGHTOS_NOT_FOUND);
  if (saved) {
    setenv("LIGHTOS_DEVICE", saved, 1);
    free(saved);
  } else {
    unsetenv("LIGHTOS_DEVICE");
  }
}

static void test_explain_selection(void) {
  char text[8192];
  size_t len = 0;
  const char* env = getenv("LIGHTOS_DEVICE");
  char* saved = env ? strdup(env) : NULL;
  lightos_device_t pick = NULL;
  lightos_device_info_t pin;
  unsetenv("LIGHTOS_DEVICE");
  LK_REQUIRE_OK(lightos_device_select(LIGHTOS_DEVICE_ANY, &pick));
  LK_REQUIRE_OK(lightos_device_get_info(pick, &pin));
  LK_REQUIRE_OK(lightos_device_explain_selection(LIGHTOS_DEVICE_ANY, text, sizeof text, &len));
  LK_CHECK_INT(len, strlen(text) + 1);
  LK_CHECK_MSG(strstr(text, "score") != NULL, "no \"score\" in:\n%s", text);
  LK_CHECK_MSG(strstr(text, pin.uri) != NULL, "picked device %s not named in:\n%s", pin.uri, text);
  LK_CHECK_MSG(strstr(text, "picked") != NULL, "no \"picked\" in:\n%s", text);
  /* CPU-only kind: mentions cpu:0 */
  LK_REQUIRE_OK(lightos_device_explain_selection(LIGHTOS_DEVICE_BACKEND_CPU, text, sizeof text,
                                                 NULL));
  LK_CHECK(strstr(text, "cpu:0") != NULL);
  /* truncation: small cap keeps a NUL and reports the full length */
  LK_REQUIRE_OK(lightos_device_explain_selection(LIGHTOS_DEVICE_ANY, text, sizeof text, &len));
  char small[16];
  size_t full = 0;
  memset(small, 'x', sizeof small);
  LK_REQUIRE_OK(lightos_device_explain_selection(LIGHTOS_DEVICE_ANY, small, sizeof small, &full));
  LK_CHECK_INT(full, len);
  LK_CHECK(memchr(small, '\0', sizeof small) != NULL);
  LK_CHECK_INT(strlen(small), sizeof small - 1);
  LK_CHECK(strncmp(small, text, sizeof small - 1) == 0);
  /* length query only */
  full = 0;
  LK_REQUIRE_OK(lightos_device_explain_selection(LIGHTOS_DEVICE_ANY, NULL, 0, &full));
  LK_CHECK_INT(full, len);
  if (saved) {
    setenv("LIGHTOS_DEVICE", saved, 1);
    free(saved);
  }
}

/* ---- contexts -------------------------------------------------------------- */

static void check_context_on(lightos_context_t c, lightos_device_t want) {
  lightos_device_t d = NULL;
  lightos_queue_t q = NULL;
  LK_CHECK_STATUS(lightos_context_get_device(c, &d), LIGHTOS_SUCCESS);
  if (want) LK_CHECK(d == want);
  LK_CHECK_STATUS(lightos_context_default_queue(c, &q), LIGHTOS_SUCCESS);
  LK_CHECK(q != NULL);
  /* usable: a round trip */
  lightos_buffer_t b = NULL;
  int w = 42, r = 0;
  LK_CHECK_STATUS(lightos_buffer_alloc(c, sizeof w, 0, &b), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_write(b, 0, sizeof w, &w), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(b, 0, sizeof r, &r), LIGHTOS_SUCCESS);
  LK_CHECK_INT(r, 42);
  lightos_buffer_release(b);
}

static void test_context_create(void) {
  lightos_context_t c = NULL;
  static const lightos_device_kind_t kinds[] = {LIGHTOS_DEVICE_CPU, LIGHTOS_DEVICE_BACKEND_CPU};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; ++i) {
    c = NULL;
    LK_CHECK_STATUS(lightos_context_create(kinds[i], &c), LIGHTOS_SUCCESS);
    if (!c) continue;
    lightos_device_t d = NULL;
    lightos_device_info_t in;
    LK_CHECK_STATUS(lightos_context_get_device(c, &d), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_device_get_info(d, &in), LIGHTOS_SUCCESS);
    LK_CHECK_INT(in.type, LIGHTOS_DEVICE_TYPE_CPU);
    check_context_on(c, NULL);
    LK_CHECK_STATUS(lightos_context_release(c), LIGHTOS_SUCCESS);
  }
  c = NULL;
  LK_CHECK_STATUS(lightos_context_create(LIGHTOS_DEVICE_ANY, &c), LIGHTOS_SUCCESS);
  if (c) {
    check_context_on(c, NULL);
    lightos_context_release(c);
  }
  c = NULL;
  LK_CHECK_STATUS(lightos_context_create_from_uri("cpu:0", &c), LIGHTOS_SUCCESS);
  if (c) {
    check_context_on(c, g_dev);
    lightos_context_release(c);
  }
  c = NULL;
  LK_CHECK_STATUS(lightos_context_create_from_uri("cpu", &c), LIGHTOS_SUCCESS);
  if (c) {
    check_context_on(c, g_dev);
    lightos_context_release(c);
  }
  c = NULL;
  LK_CHECK_STATUS(lightos_context_create_for_device(g_dev, LIGHTOS_CONTEXT_DETERMINISTIC, &c),
                  LIGHTOS_SUCCESS);
  if (c) {
    check_context_on(c, g_dev);
    lightos_context_release(c);
  }
  /* two contexts on one device are distinct */
  lightos_context_t c1 = NULL, c2 = NULL;
  LK_CHECK_STATUS(lightos_context_create_for_device(g_dev, 0, &c1), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_context_create_for_device(g_dev, 0, &c2), LIGHTOS_SUCCESS);
  LK_CHECK(c1 && c2 && c1 != c2);
  lightos_queue_t q1 = NULL, q2 = NULL;
  LK_CHECK_STATUS(lightos_context_default_queue(c1, &q1), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_context_default_queue(c2, &q2), LIGHTOS_SUCCESS);
  LK_CHECK(q1 != q2);
  if (c1) lightos_context_release(c1);
  if (c2) lightos_context_release(c2);
}

/* ---- buffers ----------------------------------------------------------------- */

static void fill_pattern(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i) p[i] = (unsigned char)((i * 31u + seed * 17u + 5u) & 0xff);
}

static void test_buffer_basics(void) {
  enum { N = 4096 };
  static unsigned char w[N], r[N];
  lightos_buffer_t b = NULL, b2 = NULL;
  size_t sz = 0;
  lightos_context_t c = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, N, 0, &b));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, N, LIGHTOS_BUFFER_HOST_VISIBLE, &b2));
  LK_CHECK_STATUS(lightos_buffer_get_size(b, &sz), LIGHTOS_SUCCESS);
  LK_CHECK_INT(sz, N);
  LK_CHECK_STATUS(lightos_buffer_get_context(b, &c), LIGHTOS_SUCCESS);
  LK_CHECK(c == g_ctx);
  fill_pattern(w, N, 1);
  LK_CHECK_STATUS(lightos_buffer_write(b, 0, N, w), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(b, 0, N, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(w, r, N) == 0);
  /* partial write at an odd offset */
  unsigned char part[7] = {9, 8, 7, 6, 5, 4, 3};
  LK_CHECK_STATUS(lightos_buffer_write(b, 1001, sizeof part, part), LIGHTOS_SUCCESS);
  memcpy(w + 1001, part, sizeof part);
  LK_CHECK_STATUS(lightos_buffer_read(b, 999, 11, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(r, w + 999, 11) == 0);
  /* copy the whole buffer, then a range with offsets */
  LK_CHECK_STATUS(lightos_buffer_copy(b, 0, b2, 0, N), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(b2, 0, N, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(w, r, N) == 0);
  LK_CHECK_STATUS(lightos_buffer_copy(b, 100, b2, 3000, 333), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(b2, 3000, 333, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(r, w + 100, 333) == 0);
  /* copy inside one buffer, non-overlapping */
  LK_CHECK_STATUS(lightos_buffer_copy(b, 0, b, 2048, 2048), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(b, 2048, 2048, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(r, w, 2048) == 0);
  /* adjacent ranges touch but do not overlap */
  LK_CHECK_STATUS(lightos_buffer_copy(b, 0, b, 16, 16), LIGHTOS_SUCCESS);
  lightos_buffer_release(b);
  lightos_buffer_release(b2);
}

static void test_buffer_fill_every_pattern(void) {
  enum { N = 1024 };
  static unsigned char ref[N], r[N];
  unsigned char pat[128];
  lightos_buffer_t b = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, N, 0, &b));
  for (size_t ps = 1; ps <= 128; ps *= 2) {
    fill_pattern(ref, N, (unsigned)ps);
    LK_REQUIRE_OK(lightos_buffer_write(b, 0, N, ref));
    fill_pattern(pat, ps, (unsigned)(ps + 100));
    /* fill [ps*2, ps*2 + ps*3) -- offset and size multiples of ps */
    size_t off = ps * 2, size = ps * 3;
    LK_CHECK_STATUS(lightos_buffer_fill(b, off, size, pat, ps), LIGHTOS_SUCCESS);
    for (size_t i = 0; i < size; ++i) ref[off + i] = pat[i % ps];
    LK_CHECK_STATUS(lightos_buffer_read(b, 0, N, r), LIGHTOS_SUCCESS);
    LK_CHECK_MSG(memcmp(ref, r, N) == 0, "pattern size %zu: contents differ", ps);
    /* the whole buffer */
    LK_CHECK_STATUS(lightos_buffer_fill(b, 0, N, pat, ps), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_buffer_read(b, 0, N, r), LIGHTOS_SUCCESS);
    for (size_t i = 0; i < N; ++i)
      if (r[i] != pat[i % ps]) {
        (void)LK_CHECK_MSG(0, "pattern size %zu: byte %zu is %u, want %u", ps, i, r[i],
                           pat[i % ps]);
        break;
      }
  }
  /* fill through a sub-buffer at an offset: the pattern is aligned to the
   * sub-buffer's start */
  lightos_buffer_t sub = NULL;
  LK_REQUIRE_OK(lightos_buffer_create_sub(b, 100, 64, &sub));
  uint32_t p4 = 0x11223344u;
  unsigned char zero = 0;
  LK_REQUIRE_OK(lightos_buffer_fill(b, 0, N, &zero, 1));
  LK_CHECK_STATUS(lightos_buffer_fill(sub, 4, 32, &p4, 4), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(b, 0, N, r), LIGHTOS_SUCCESS);
  for (size_t i = 0; i < N; ++i) {
    unsigned char want = (i >= 104 && i < 136) ? ((unsigned char*)&p4)[(i - 104) % 4] : 0;
    if (r[i] != want) {
      (void)LK_CHECK_MSG(0, "sub fill: byte %zu is %u, want %u", i, r[i], want);
      break;
    }
  }
  lightos_buffer_release(sub);
  lightos_buffer_release(b);
}

static void test_sub_buffers_nested(void) {
  enum { N = 512 };
  unsigned char w[N], r[N];
  lightos_buffer_t root = NULL, s1 = NULL, s2 = NULL, s3 = NULL;
  size_t sz = 0;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, N, 0, &root));
  fill_pattern(w, N, 3);
  LK_REQUIRE_OK(lightos_buffer_write(root, 0, N, w));
  LK_REQUIRE_OK(lightos_buffer_create_sub(root, 100, 300, &s1)); /* [100, 400) */
  LK_REQUIRE_OK(lightos_buffer_create_sub(s1, 50, 200, &s2));    /* [150, 350) */
  LK_REQUIRE_OK(lightos_buffer_create_sub(s2, 25, 10, &s3));     /* [175, 185) */
  LK_CHECK_STATUS(lightos_buffer_get_size(s2, &sz), LIGHTOS_SUCCESS);
  LK_CHECK_INT(sz, 200);
  LK_CHECK_STATUS(lightos_buffer_get_size(s3, &sz), LIGHTOS_SUCCESS);
  LK_CHECK_INT(sz, 10);
  LK_CHECK_STATUS(lightos_buffer_read(s3, 0, 10, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(r, w + 175, 10) == 0);
  LK_CHECK_STATUS(lightos_buffer_read(s2, 199, 1, r), LIGHTOS_SUCCESS);
  LK_CHECK_INT(r[0], w[349]);
  /* write through the innermost, read through the root */
  unsigned char x[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  LK_CHECK_STATUS(lightos_buffer_write(s3, 0, 10, x), LIGHTOS_SUCCESS);
  memcpy(w + 175, x, 10);
  LK_CHECK_STATUS(lightos_buffer_read(root, 0, N, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(r, w, N) == 0);
  /* the context of a sub-buffer is its parent's */
  lightos_context_t c = NULL;
  LK_CHECK_STATUS(lightos_buffer_get_context(s3, &c), LIGHTOS_SUCCESS);
  LK_CHECK(c == g_ctx);
  /* copy between sibling sub-buffers of one allocation that do not overlap */
  lightos_buffer_t left = NULL, right = NULL;
  LK_REQUIRE_OK(lightos_buffer_create_sub(root, 0, 64, &left));
  LK_REQUIRE_OK(lightos_buffer_create_sub(root, 448, 64, &right));
  LK_CHECK_STATUS(lightos_buffer_copy(left, 0, right, 0, 64), LIGHTOS_SUCCESS);
  memcpy(w + 448, w, 64);
  LK_CHECK_STATUS(lightos_buffer_read(root, 0, N, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(r, w, N) == 0);
  /* a sub-buffer keeps its parent alive */
  LK_CHECK_STATUS(lightos_buffer_release(root), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_release(s1), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(s3, 0, 10, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(r, x, 10) == 0);
  lightos_buffer_release(s2);
  lightos_buffer_release(s3);
  lightos_buffer_release(left);
  lightos_buffer_release(right);
}

static void test_map_unmap(void) {
  enum { N = 256 };
  unsigned char r[N];
  lightos_buffer_t b = NULL, sub = NULL;
  void* p = NULL;
  void* p2 = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, N, LIGHTOS_BUFFER_HOST_VISIBLE, &b));
  LK_REQUIRE_OK(lightos_buffer_map(b, 0, N, &p));
  LK_REQUIRE(p != NULL);
  for (int i = 0; i < N; ++i) ((unsigned char*)p)[i] = (unsigned char)(255 - i);
  LK_CHECK_STATUS(lightos_buffer_unmap(b, p), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(b, 0, N, r), LIGHTOS_SUCCESS);
  for (int i = 0; i < N; ++i)
    if (r[i] != (unsigned char)(255 - i)) {
      (void)LK_CHECK_MSG(0, "byte %d: %u", i, r[i]);
      break;
    }
  /* a mapping at an offset sees the written data */
  unsigned char w[4] = {1, 2, 3, 4};
  LK_CHECK_STATUS(lightos_buffer_write(b, 100, 4, w), LIGHTOS_SUCCESS);
  LK_REQUIRE_OK(lightos_buffer_map(b, 100, 4, &p));
  LK_CHECK(memcmp(p, w, 4) == 0);
  /* two mappings at once */
  LK_REQUIRE_OK(lightos_buffer_map(b, 0, 8, &p2));
  LK_CHECK((unsigned char*)p2 + 100 == (unsigned char*)p);
  LK_CHECK_STATUS(lightos_buffer_unmap(b, p), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_unmap(b, p2), LIGHTOS_SUCCESS);
  /* map of a sub-buffer (and a default buffer: CPU memory is host visible) */
  LK_REQUIRE_OK(lightos_buffer_create_sub(b, 96, 32, &sub));
  LK_REQUIRE_OK(lightos_buffer_map(sub, 4, 4, &p));
  LK_CHECK(memcmp(p, w, 4) == 0);
  LK_CHECK_STATUS(lightos_buffer_unmap(sub, p), LIGHTOS_SUCCESS);
  lightos_buffer_t plain = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, 64, 0, &plain));
  LK_CHECK_STATUS(lightos_buffer_map(plain, 0, 64, &p), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_unmap(plain, p), LIGHTOS_SUCCESS);
  lightos_buffer_release(plain);
  lightos_buffer_release(sub);
  lightos_buffer_release(b);
}

static void test_copy_across_contexts(void) {
  lightos_context_t c2 = NULL;
  lightos_buffer_t a = NULL, b = NULL;
  lightos_queue_t q = NULL;
  int w[64], r[64];
  for (int i = 0; i < 64; ++i) w[i] = i * i - 7;
  LK_REQUIRE_OK(lightos_context_create_for_device(g_dev, 0, &c2));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof w, 0, &a));
  LK_REQUIRE_OK(lightos_buffer_alloc(c2, sizeof w, 0, &b));
  LK_REQUIRE_OK(lightos_buffer_write(a, 0, sizeof w, w));
  LK_REQUIRE_OK(lightos_context_default_queue(g_ctx, &q));
  lightos_event_t e = NULL;
  LK_CHECK_STATUS(lightos_enqueue_copy(q, a, 0, b, 0, sizeof w, &e), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_wait(e), LIGHTOS_SUCCESS);
  lightos_event_release(e);
  memset(r, 0, sizeof r);
  LK_CHECK_STATUS(lightos_buffer_read(b, 0, sizeof r, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(w, r, sizeof r) == 0);
  /* blocking form, the other way */
  LK_CHECK_STATUS(lightos_buffer_fill(a, 0, sizeof w, &(int){0}, sizeof(int)), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_copy(b, 0, a, 0, sizeof w), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(a, 0, sizeof r, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(w, r, sizeof r) == 0);
  lightos_buffer_release(a);
  lightos_buffer_release(b);
  lightos_context_release(c2);
}

/* ---- queues and events ------------------------------------------------------- */

static void test_queued_transfers(void) {
  enum { N = 8192 };
  static int w[N], r[N], r2[N];
  lightos_queue_t q = NULL;
  lightos_buffer_t a = NULL, b = NULL;
  lightos_event_t ew = NULL, ec = NULL, ef = NULL, er = NULL, er2 = NULL;
  for (int i = 0; i < N; ++i) w[i] = i ^ 0x5555;
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &q));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof w, 0, &a));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof w, 0, &b));
  int pat = -3;
  /* in-order: write, copy, fill part, read both */
  LK_REQUIRE_OK(lightos_enqueue_write(q, a, 0, sizeof w, w, &ew));
  LK_REQUIRE_OK(lightos_enqueue_copy(q, a, 0, b, 0, sizeof w, &ec));
  LK_REQUIRE_OK(lightos_enqueue_fill(q, a, 0, 16 * sizeof(int), &pat, sizeof pat, &ef));
  LK_REQUIRE_OK(lightos_enqueue_read(q, a, 0, sizeof r, r, &er));
  LK_REQUIRE_OK(lightos_enqueue_read(q, b, 0, sizeof r2, r2, &er2));
  LK_CHECK_STATUS(lightos_event_wait(er2), LIGHTOS_SUCCESS);
  /* in order: everything before er2 is complete */
  LK_CHECK_STATUS(lightos_event_query(ew), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_query(ec), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_query(ef), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_query(er), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_wait(er), LIGHTOS_SUCCESS);
  for (int i = 0; i < N; ++i) {
    int want = i < 16 ? pat : w[i];
    if (r[i] != want || r2[i] != w[i]) {
      (void)LK_CHECK_MSG(0, "element %d: a=%d (want %d) b=%d (want %d)", i, r[i], want, r2[i],
                         w[i]);
      break;
    }
  }
  /* events outlive a wait; retain/release */
  LK_CHECK_STATUS(lightos_event_retain(ew), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_release(ew), LIGHTOS_SUCCESS);
  lightos_event_t evs[] = {ew, ec, ef, er, er2};
  for (size_t i = 0; i < 5; ++i) LK_CHECK_STATUS(lightos_event_release(evs[i]), LIGHTOS_SUCCESS);
  /* NULL out_event is allowed */
  LK_CHECK_STATUS(lightos_enqueue_write(q, a, 0, sizeof(int), w, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
  /* buffers released while work is queued stay alive for it */
  LK_CHECK_STATUS(lightos_enqueue_write(q, a, 0, sizeof w, w, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_enqueue_copy(q, a, 0, b, 0, sizeof w, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_release(a), LIGHTOS_SUCCESS);
  memset(r, 0, sizeof r);
  LK_CHECK_STATUS(lightos_enqueue_read(q, b, 0, sizeof r, r, NULL), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(r, w, sizeof r) == 0);
  lightos_buffer_release(b);
  LK_CHECK_STATUS(lightos_queue_release(q), LIGHTOS_SUCCESS);
}

/* A kernel that spins until the host sets a flag (CPU memory is coherent),
 * so its event is observably pending. */
static const char* k_spin =
    "__kernel void spin(volatile __global int* flag, __global int* out, const int limit) {\n"
    "  int n = 0;\n"
    "  while (flag[0] == 0 && n < limit) n++;\n"
    "  out[0] = flag[0];\n"
    "}\n";

static void test_event_query_and_record(void) {
  lightos_program_t p = NULL;
  lightos_kernel_t k = NULL;
  lightos_buffer_t flag = NULL, out = NULL;
  lightos_queue_t q = NULL, q2 = NULL;
  lightos_event_t ek = NULL, em = NULL, em2 = NULL;
  int* fp = NULL;
  int zero = 0, res = 0;
  size_t one = 1;
  LK_REQUIRE_OK(lightos_program_create(g_ctx, k_spin, 0, &p));
  LK_REQUIRE_OK(lightos_program_build(p, NULL));
  LK_REQUIRE_OK(lightos_kernel_create(p, "spin", &k));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof(int), LIGHTOS_BUFFER_HOST_VISIBLE, &flag));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof(int), 0, &out));
  LK_REQUIRE_OK(lightos_buffer_write(flag, 0, sizeof zero, &zero));
  LK_REQUIRE_OK(lightos_buffer_write(out, 0, sizeof zero, &zero));
  LK_REQUIRE_OK(lightos_buffer_map(flag, 0, sizeof(int), (void**)&fp));
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &q));
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &q2));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, flag));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 1, out));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(k, 2, 2000000000)); /* a bound, ~seconds */
  LK_REQUIRE_OK(lightos_enqueue_kernel(q, k, 1, &one, NULL, &ek));
  LK_REQUIRE_OK(lightos_event_record(q, &em));
  /* another queue waits on the marker */
  LK_REQUIRE_OK(lightos_queue_wait_event(q2, em));
  LK_REQUIRE_OK(lightos_event_record(q2, &em2));
  usleep(10000);
  LK_CHECK_STATUS(lightos_event_query(ek), LIGHTOS_NOT_READY);
  LK_CHECK_STATUS(lightos_event_query(em), LIGHTOS_NOT_READY);
  LK_CHECK_STATUS(lightos_event_query(em2), LIGHTOS_NOT_READY);
  __atomic_store_n(fp, 1, __ATOMIC_SEQ_CST);
  LK_CHECK_STATUS(lightos_event_wait(em2), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_query(ek), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_query(em), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_wait(ek), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_unmap(flag, fp), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(out, 0, sizeof res, &res), LIGHTOS_SUCCESS);
  LK_CHECK_INT(res, 1);
  /* a marker on an idle queue completes */
  lightos_event_t idle = NULL;
  LK_CHECK_STATUS(lightos_event_record(q, &idle), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_wait(idle), LIGHTOS_SUCCESS);
  lightos_event_release(idle);
  lightos_event_release(ek);
  lightos_event_release(em);
  lightos_event_release(em2);
  lightos_queue_release(q);
  lightos_queue_release(q2);
  lightos_buffer_release(flag);
  lightos_buffer_release(out);
  lightos_kernel_release(k);
  lightos_program_release(p);
}

/* lightos_queue_wait_event only orders the queue: it returns at once while
 * the event is pending, on every backend's queue (the host is not blocked).
 * The pending event is a CPU kernel spinning on a host flag (bounded). */
static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void test_wait_event_does_not_block_host(void) {
  lightos_program_t p = NULL;
  lightos_kernel_t k = NULL;
  lightos_buffer_t flag = NULL, out = NULL;
  lightos_queue_t qc = NULL;
  int* fp = NULL;
  size_t one = 1;
  uint32_t nd = 0;
  LK_REQUIRE_OK(lightos_program_create(g_ctx, k_spin, 0, &p));
  LK_REQUIRE_OK(lightos_program_build(p, NULL));
  LK_REQUIRE_OK(lightos_kernel_create(p, "spin", &k));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof(int), LIGHTOS_BUFFER_HOST_VISIBLE, &flag));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof(int), 0, &out));
  LK_REQUIRE_OK(lightos_buffer_map(flag, 0, sizeof(int), (void**)&fp));
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &qc));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, flag));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 1, out));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(k, 2, 2000000000));
  LK_REQUIRE_OK(lightos_device_count(&nd));
  for (uint32_t i = 0; i < nd; ++i) {
    lightos_device_t d;
    lightos_device_info_t in;
    lightos_context_t c = NULL;
    lightos_queue_t q = NULL;
    lightos_event_t ek = NULL, em = NULL;
    LK_REQUIRE_OK(lightos_device_get(i, &d));
    LK_REQUIRE_OK(lightos_device_get_info(d, &in));
    LK_REQUIRE_OK(lightos_context_create_for_device(d, 0, &c));
    LK_REQUIRE_OK(lightos_queue_create(c, 0, &q));
    *fp = 0;
    LK_REQUIRE_OK(lightos_enqueue_kernel(qc, k, 1, &one, NULL, &ek));
    double t0 = now_s();
    LK_CHECK_STATUS(lightos_queue_wait_event(q, ek), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_event_record(q, &em), LIGHTOS_SUCCESS);
    double dt = now_s() - t0;
    LK_CHECK_MSG(dt < 0.5, "%s: lightos_queue_wait_event/event_record blocked the host for %.2f s "
                 "while the event was pending", in.uri, dt);
    if (em && dt < 0.5) LK_CHECK_STATUS(lightos_event_query(em), LIGHTOS_NOT_READY);
    __atomic_store_n(fp, 1, __ATOMIC_SEQ_CST);
    if (em) LK_CHECK_STATUS(lightos_event_wait(em), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_event_wait(ek), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
    if (em) lightos_event_release(em);
    lightos_event_release(ek);
    lightos_queue_release(q);
    lightos_context_release(c);
  }
  lightos_buffer_unmap(flag, fp);
  lightos_queue_release(qc);
  lightos_buffer_release(flag);
  lightos_buffer_release(out);
  lightos_kernel_release(k);
  lightos_program_release(p);
}

static const char* k_busy =
    "__kernel void busy(__global float* x, const int iters) {\n"
    "  size_t i = get_global_id(0);\n"
    "  float v = x[i];\n"
    "  for (int k = 0; k < iters; ++k) v = v * 0.999f + 1.0f;\n"
    "  x[i] = v;\n"
    "}\n";

static void test_profiling(void) {
  lightos_queue_t q = NULL;
  lightos_program_t p = NULL;
  lightos_kernel_t k = NULL;
  lightos_buffer_t x = NULL;
  lightos_event_t e0 = NULL, ek = NULL, e1 = NULL;
  size_t gs = 256;
  float zero = 0;
  double ms = -1, ms_k = -1;
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, LIGHTOS_QUEUE_PROFILING, &q));
  LK_REQUIRE_OK(lightos_program_create(g_ctx, k_busy, 0, &p));
  LK_REQUIRE_OK(lightos_program_build(p, NULL));
  LK_REQUIRE_OK(lightos_kernel_create(p, "busy", &k));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, gs * sizeof(float), 0, &x));
  LK_REQUIRE_OK(lightos_enqueue_fill(q, x, 0, gs * sizeof(float), &zero, sizeof zero, NULL));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, x));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(k, 1, 20000));
  LK_REQUIRE_OK(lightos_event_record(q, &e0));
  LK_REQUIRE_OK(lightos_enqueue_kernel(q, k, 1, &gs, NULL, &ek));
  LK_REQUIRE_OK(lightos_event_record(q, &e1));
  LK_REQUIRE_OK(lightos_queue_finish(q));
  LK_CHECK_STATUS(lightos_event_elapsed_ms(e0, e1, &ms), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_elapsed_ms(ek, ek, &ms_k), LIGHTOS_SUCCESS);
  LK_CHECK_MSG(ms > 0 && ms < 60000, "elapsed %g ms", ms);
  LK_CHECK_MSG(ms_k > 0 && ms_k <= ms + 1e-6, "kernel %g ms, whole %g ms", ms_k, ms);
  lightos_event_release(e0);
  lightos_event_release(ek);
  lightos_event_release(e1);
  lightos_buffer_release(x);
  lightos_kernel_release(k);
  lightos_program_release(p);
  lightos_queue_release(q);
}

/* Objects in use by queued work outlive their release: a kernel launched
 * after its program's release, a kernel and buffers released right after
 * the launch, and a queue released with work pending (release waits). */
static void test_release_while_in_use(void) {
  lightos_program_t p = NULL;
  lightos_kernel_t k = NULL;
  lightos_buffer_t x = NULL;
  lightos_queue_t q = NULL;
  enum { N = 4096 };
  static float h[N], r[N];
  size_t gs = N;
  for (int i = 0; i < N; ++i) h[i] = (float)(i % 13);
  LK_REQUIRE_OK(lightos_program_create(g_ctx, k_busy, 0, &p));
  LK_REQUIRE_OK(lightos_program_build(p, NULL));
  LK_REQUIRE_OK(lightos_kernel_create(p, "busy", &k));
  LK_CHECK_STATUS(lightos_program_release(p), LIGHTOS_SUCCESS); /* the kernel keeps it */
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof h, 0, &x));
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &q));
  LK_REQUIRE_OK(lightos_enqueue_write(q, x, 0, sizeof h, h, NULL));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, x));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(k, 1, 3000));
  LK_REQUIRE_OK(lightos_enqueue_kernel(q, k, 1, &gs, NULL, NULL));
  memset(r, 0, sizeof r);
  LK_REQUIRE_OK(lightos_enqueue_read(q, x, 0, sizeof r, r, NULL));
  LK_CHECK_STATUS(lightos_kernel_release(k), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_release(x), LIGHTOS_SUCCESS);
  /* release waits for the pending commands: the read has landed after it */
  LK_CHECK_STATUS(lightos_queue_release(q), LIGHTOS_SUCCESS);
  for (int i = 0; i < N; ++i) {
    float v = h[i];
    for (int j = 0; j < 3000; ++j) v = v * 0.999f + 1.0f;
    if (r[i] != v) {
      (void)LK_CHECK_MSG(0, "x[%d] = %g, want %g", i, r[i], v);
      break;
    }
  }
}

/* ---- reference counts ------------------------------------------------------ */

static void test_refcounts(void) {
  lightos_context_t c = NULL;
  lightos_buffer_t b = NULL;
  lightos_queue_t q = NULL;
  lightos_event_t e = NULL;
  lightos_program_t p = NULL;
  lightos_kernel_t k = NULL;
  size_t sz;
  uint32_t n;
  lightos_program_info_t pi;
  lightos_device_t d;
  LK_REQUIRE_OK(lightos_context_create_for_device(g_dev, 0, &c));
  LK_REQUIRE_OK(lightos_buffer_alloc(c, 64, 0, &b));
  LK_REQUIRE_OK(lightos_queue_create(c, 0, &q));
  LK_REQUIRE_OK(lightos_event_record(q, &e));
  LK_REQUIRE_OK(lightos_program_create(c, k_busy, 0, &p));
  LK_REQUIRE_OK(lightos_program_build(p, NULL));
  LK_REQUIRE_OK(lightos_kernel_create(p, "busy", &k));
  /* retain twice: three references each */
  for (int i = 0; i < 2; ++i) {
    LK_CHECK_STATUS(lightos_buffer_retain(b), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_queue_retain(q), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_event_retain(e), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_program_retain(p), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_kernel_retain(k), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_context_retain(c), LIGHTOS_SUCCESS);
  }
  /* release three times; the first two leave every object usable */
  for (int i = 0; i < 3; ++i) {
    LK_CHECK_STATUS(lightos_buffer_get_size(b, &sz), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_event_wait(e), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_program_get_info(p, &pi), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_kernel_get_arg_count(k, &n), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_context_get_device(c, &d), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_kernel_release(k), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_program_release(p), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_event_release(e), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_buffer_release(b), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_queue_release(q), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_context_release(c), LIGHTOS_SUCCESS);
  }
  /* the fourth use is a use after release */
  const char* w = "release";
  LK_CHECK_STATUS(lightos_buffer_get_size(b, &sz), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, w) != NULL);
  LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, w) != NULL);
  LK_CHECK_STATUS(lightos_event_wait(e), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, w) != NULL);
  LK_CHECK_STATUS(lightos_program_get_info(p, &pi), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, w) != NULL);
  LK_CHECK_STATUS(lightos_kernel_get_arg_count(k, &n), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, w) != NULL);
  LK_CHECK_STATUS(lightos_context_get_device(c, &d), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, w) != NULL);
  LK_CHECK_STATUS(lightos_buffer_release(b), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_STATUS(lightos_context_release(c), LIGHTOS_INVALID_ARGUMENT);
}

/* ---- programs and kernels ---------------------------------------------------- */

static const char* k_main =
    "#define SCALE 3\n"
    "float twice(float v) { return v * 2.0f; }\n"
    "__kernel void axpb(__global const float* x, __global float* y, const float a,\n"
    "                   const int b, const uint n) {\n"
    "  size_t i = get_global_id(0);\n"
    "  if (i < n) y[i] = twice(a * x[i]) + (float)(b * SCALE) + (float)OFFSET;\n"
    "}\n"
    "__kernel void ids(__global uint* out, const ulong w, const long h) {\n"
    "  size_t x = get_global_id(0), y = get_global_id(1), z = get_global_id(2);\n"
    "  size_t idx = x + (size_t)w * (y + (size_t)h * z);\n"
    "  out[idx] = (uint)(get_local_id(0) + 10 * get_local_id(1) + 100 * get_local_id(2)\n"
    "             + 1000 * get_group_id(0) + 100000 * get_group_id(1)\n"
    "             + 10000000 * get_group_id(2));\n"
    "}\n"
    "__kernel void groupsum(__global const int* in, __global int* out, __local int* tmp,\n"
    "                       const uint lsz, const uint n) {\n"
    "  __local int total[1];\n"
    "  uint start = (uint)get_group_id(0) * lsz;\n"
    "  uint cnt = n - start < lsz ? n - start : lsz;\n"
    "  LIGHTOS_ITEMS {\n"
    "    tmp[get_local_id(0)] = in[get_global_id(0)];\n"
    "  }\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  LIGHTOS_ITEMS {\n"
    "    if (get_local_id(0) == 0) {\n"
    "      int s = 0;\n"
    "      for (uint j = 0; j < cnt; ++j) s += tmp[j];\n"
    "      total[0] = s;\n"
    "    }\n"
    "  }\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  LIGHTOS_ITEMS {\n"
    "    out[get_global_id(0)] = total[0];\n"
    "  }\n"
    "}\n"
    "__kernel void dbl(__global double* d, const double f) { d[get_global_id(0)] *= f; }\n";

static void test_program_and_args(void) {
  lightos_program_t p = NULL, p2 = NULL;
  lightos_kernel_t k = NULL;
  lightos_program_info_t pi;
  char log[256];
  size_t len = 0;
  uint32_t n = 0;
  lightos_arg_info_t ai;
  LK_REQUIRE_OK(lightos_program_create(g_ctx, k_main, 0, &p));
  LK_CHECK_STATUS(lightos_program_get_info(p, &pi), LIGHTOS_SUCCESS);
  LK_CHECK(!pi.built);
  LK_REQUIRE_OK(lightos_program_build(p, "-D OFFSET=5 -w"));
  LK_CHECK_STATUS(lightos_program_get_info(p, &pi), LIGHTOS_SUCCESS);
  LK_CHECK(pi.built);
  LK_CHECK_INT(pi.kernel_count, 4);
  LK_CHECK(pi.build_ms >= 0);
  LK_CHECK_STATUS(lightos_program_build_log(p, log, sizeof log, &len), LIGHTOS_SUCCESS);
  LK_CHECK(len >= 1);
  LK_CHECK_STATUS(lightos_program_build_log(p, NULL, 0, &len), LIGHTOS_SUCCESS);
  /* the same source and options again: from the on-disk cache (unless
   * disabled) */
  LK_REQUIRE_OK(lightos_program_create(g_ctx, k_main, strlen(k_main), &p2));
  LK_REQUIRE_OK(lightos_program_build(p2, "-D OFFSET=5 -w"));
  LK_CHECK_STATUS(lightos_program_get_info(p2, &pi), LIGHTOS_SUCCESS);
  const char* cache = getenv("LIGHTOS_CACHE");
  if (!cache || strcmp(cache, "0") != 0)
    LK_CHECK_MSG(pi.from_cache, "second identical build did not come from the cache");
  lightos_program_release(p2);

  LK_REQUIRE_OK(lightos_kernel_create(p, "axpb", &k));
  LK_CHECK_STATUS(lightos_kernel_get_arg_count(k, &n), LIGHTOS_SUCCESS);
  LK_CHECK_INT(n, 5);
  static const struct {
    const char* name;
    const char* type;
    lightos_arg_kind_t kind;
    size_t ssize;
  } want[] = {{"x", "__global const float*", LIGHTOS_ARG_GLOBAL, 0},
              {"y", "__global float*", LIGHTOS_ARG_GLOBAL, 0},
              {"a", "const float", LIGHTOS_ARG_SCALAR, 4},
              {"b", "const int", LIGHTOS_ARG_SCALAR, 4},
              {"n", "const uint", LIGHTOS_ARG_SCALAR, 4}};
  for (uint32_t i = 0; i < 5 && i < n; ++i) {
    LK_CHECK_STATUS(lightos_kernel_get_arg_info(k, i, &ai), LIGHTOS_SUCCESS);
    LK_CHECK_STR(ai.name, want[i].name);
    LK_CHECK_STR(ai.type, want[i].type);
    LK_CHECK_INT(ai.kind, want[i].kind);
    LK_CHECK_INT(ai.scalar_size, want[i].ssize);
  }
  /* launch; re-arm and launch again at once (arguments are captured) */
  enum { N = 1000 };
  static float hx[N], hy1[N], hy2[N];
  lightos_buffer_t x = NULL, y1 = NULL, y2 = NULL;
  lightos_queue_t q = NULL;
  for (int i = 0; i < N; ++i) hx[i] = (float)(i % 97) - 40.0f;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof hx, 0, &x));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof hx, 0, &y1));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof hx, 0, &y2));
  LK_REQUIRE_OK(lightos_buffer_write(x, 0, sizeof hx, hx));
  LK_REQUIRE_OK(lightos_queue_create(g_ctx, 0, &q));
  size_t gs = N, ls = 64; /* 1000 is not a multiple of 64 */
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, x));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 1, y1));
  LK_REQUIRE_OK(lightos_kernel_set_arg_f32(k, 2, 1.5f));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(k, 3, -2));
  uint32_t nn = N;
  LK_REQUIRE_OK(lightos_kernel_set_arg_scalar(k, 4, sizeof nn, &nn));
  LK_REQUIRE_OK(lightos_enqueue_kernel(q, k, 1, &gs, &ls, NULL));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 1, y2));
  LK_REQUIRE_OK(lightos_kernel_set_arg_f32(k, 2, -0.5f));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(k, 3, 7));
  LK_REQUIRE_OK(lightos_enqueue_kernel(q, k, 1, &gs, NULL, NULL));
  LK_REQUIRE_OK(lightos_enqueue_read(q, y1, 0, sizeof hy1, hy1, NULL));
  LK_REQUIRE_OK(lightos_enqueue_read(q, y2, 0, sizeof hy2, hy2, NULL));
  LK_REQUIRE_OK(lightos_queue_finish(q));
  for (int i = 0; i < N; ++i) {
    float w1 = (1.5f * hx[i]) * 2.0f + (float)(-2 * 3) + 5.0f;
    float w2 = (-0.5f * hx[i]) * 2.0f + (float)(7 * 3) + 5.0f;
    if (hy1[i] != w1 || hy2[i] != w2) {
      (void)LK_CHECK_MSG(0, "element %d: %g/%g, want %g/%g", i, hy1[i], hy2[i], w1, w2);
      break;
    }
  }
  /* sub-buffers as arguments: the kernel sees the view's first element */
  lightos_buffer_t xs = NULL, ys = NULL;
  LK_REQUIRE_OK(lightos_buffer_create_sub(x, 40 * sizeof(float), 100 * sizeof(float), &xs));
  LK_REQUIRE_OK(lightos_buffer_create_sub(y1, 500 * sizeof(float), 100 * sizeof(float), &ys));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, xs));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 1, ys));
  LK_REQUIRE_OK(lightos_kernel_set_arg_f32(k, 2, 1.0f));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(k, 3, 0));
  LK_REQUIRE_OK(lightos_kernel_set_arg_u32(k, 4, 100));
  gs = 100;
  LK_REQUIRE_OK(lightos_enqueue_kernel(q, k, 1, &gs, NULL, NULL));
  LK_REQUIRE_OK(lightos_enqueue_read(q, y1, 0, sizeof hy1, hy1, NULL));
  LK_REQUIRE_OK(lightos_queue_finish(q));
  for (int i = 0; i < N; ++i) {
    float w1 = (1.5f * hx[i]) * 2.0f + (float)(-2 * 3) + 5.0f;
    if (i >= 500 && i < 600) w1 = (1.0f * hx[i - 500 + 40]) * 2.0f + 5.0f;
    if (hy1[i] != w1) {
      (void)LK_CHECK_MSG(0, "sub-buffer launch: y[%d] = %g, want %g", i, hy1[i], w1);
      break;
    }
  }
  lightos_buffer_release(xs);
  lightos_buffer_release(ys);
  lightos_buffer_release(x);
  lightos_buffer_release(y1);
  lightos_buffer_release(y2);
  lightos_queue_release(q);
  lightos_kernel_release(k);
  lightos_program_release(p);
}

static void test_ndrange_ids(void) {
  lightos_program_t p = NULL;
  lightos_kernel_t k = NULL;
  lightos_buffer_t out = NULL;
  enum { W = 13, H = 7, D = 3 };
  static uint32_t r[W * H * D];
  LK_REQUIRE_OK(lightos_program_create(g_ctx, k_main, 0, &p));
  LK_REQUIRE_OK(lightos_program_build(p, "-DOFFSET=0"));
  LK_REQUIRE_OK(lightos_kernel_create(p, "ids", &k));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof r, 0, &out));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, out));
  LK_REQUIRE_OK(lightos_kernel_set_arg_u64(k, 1, W));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i64(k, 2, H));
  size_t gs[3] = {W, H, D}, ls[3] = {4, 3, 2}; /* non-uniform groups everywhere */
  lightos_queue_t q = NULL;
  LK_REQUIRE_OK(lightos_context_default_queue(g_ctx, &q));
  LK_REQUIRE_OK(lightos_enqueue_kernel(q, k, 3, gs, ls, NULL));
  LK_REQUIRE_OK(lightos_queue_finish(q));
  LK_REQUIRE_OK(lightos_buffer_read(out, 0, sizeof r, r));
  for (uint32_t z = 0; z < D; ++z)
    for (uint32_t y = 0; y < H; ++y)
      for (uint32_t x = 0; x < W; ++x) {
        uint32_t want = (x % 4) + 10 * (y % 3) + 100 * (z % 2) + 1000 * (x / 4) +
                        100000 * (y / 3) + 10000000 * (z / 2);
        uint32_t got = r[x + W * (y + H * z)];
        if (got != want) {
          (void)LK_CHECK_MSG(0, "(%u,%u,%u): %u, want %u", x, y, z, got, want);
          goto done;
        }
      }
done:
  lightos_buffer_release(out);
  lightos_kernel_release(k);
  lightos_program_release(p);
}

static void test_item_blocks_and_local(void) {
  lightos_program_t p = NULL;
  lightos_kernel_t k = NULL;
  lightos_buffer_t in = NULL, out = NULL;
  enum { N = 200, L = 32 };
  static int hin[N], hout[N];
  LK_REQUIRE_OK(lightos_program_create(g_ctx, k_main, 0, &p));
  LK_REQUIRE_OK(lightos_program_build(p, "-D OFFSET=0"));
  LK_REQUIRE_OK(lightos_kernel_create(p, "groupsum", &k));
  for (int i = 0; i < N; ++i) hin[i] = i * 3 - 50;
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof hin, 0, &in));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof hout, 0, &out));
  LK_REQUIRE_OK(lightos_buffer_write(in, 0, sizeof hin, hin));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, in));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 1, out));
  LK_REQUIRE_OK(lightos_kernel_set_arg_local(k, 2, L * sizeof(int)));
  LK_REQUIRE_OK(lightos_kernel_set_arg_u32(k, 3, L));
  LK_REQUIRE_OK(lightos_kernel_set_arg_u32(k, 4, N));
  size_t gs = N, ls = L; /* last group has 200 - 6*32 = 8 items */
  lightos_queue_t q = NULL;
  LK_REQUIRE_OK(lightos_context_default_queue(g_ctx, &q));
  LK_REQUIRE_OK(lightos_enqueue_kernel(q, k, 1, &gs, &ls, NULL));
  LK_REQUIRE_OK(lightos_buffer_read(out, 0, sizeof hout, hout));
  for (int g = 0; g * L < N; ++g) {
    int s = 0, end = (g + 1) * L < N ? (g + 1) * L : N;
    for (int i = g * L; i < end; ++i) s += hin[i];
    for (int i = g * L; i < end; ++i)
      if (hout[i] != s) {
        (void)LK_CHECK_MSG(0, "group %d item %d: %d, want %d", g, i, hout[i], s);
        goto done;
      }
  }
done:
  lightos_buffer_release(in);
  lightos_buffer_release(out);
  lightos_kernel_release(k);
  lightos_program_release(p);
}

static void test_fp64_kernel(void) {
  lightos_program_t p = NULL;
  lightos_kernel_t k = NULL;
  lightos_buffer_t d = NULL;
  double h[8] = {1, 2, 3, 4, 5, 6, 7, 0.1};
  double r[8];
  if (!g_info.fp64) {
    lk_test_skip("device has no fp64");
    return;
  }
  LK_REQUIRE_OK(lightos_program_create(g_ctx, k_main, 0, &p));
  LK_REQUIRE_OK(lightos_program_build(p, "-D OFFSET=1"));
  LK_REQUIRE_OK(lightos_kernel_create(p, "dbl", &k));
  LK_REQUIRE_OK(lightos_buffer_alloc(g_ctx, sizeof h, 0, &d));
  LK_REQUIRE_OK(lightos_buffer_write(d, 0, sizeof h, h));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, d));
  LK_REQUIRE_OK(lightos_kernel_set_arg_f64(k, 1, 1.0 / 3.0));
  LK_REQUIRE_OK(lightos_execute(k, 8, 0));
  LK_REQUIRE_OK(lightos_buffer_read(d, 0, sizeof r, r));
  for (int i = 0; i < 8; ++i) LK_CHECK(r[i] == h[i] * (1.0 / 3.0));
  lightos_buffer_release(d);
  lightos_kernel_release(k);
  lightos_program_release(p);
}

/* ---- seed API ------------------------------------------------------------------ */

static const char* k_seed =
    "__kernel void square(__global float* x, const uint n) {\n"
    "  size_t i = get_global_id(0);\n"
    "  if (i < n) x[i] = x[i] * x[i];\n"
    "}\n";

static void test_seed_api(void) {
  enum { N = 1024 };
  static float h[N], r[N];
  lightos_context_t ctx = lightos_create_context(LIGHTOS_DEVICE_ANY);
  LK_REQUIRE(ctx != NULL);
  lightos_buffer_t buf = lightos_alloc(ctx, sizeof h);
  LK_REQUIRE(buf != NULL);
  size_t sz = 0;
  LK_CHECK_STATUS(lightos_buffer_get_size(buf, &sz), LIGHTOS_SUCCESS);
  LK_CHECK_INT(sz, sizeof h);
  for (int i = 0; i < N; ++i) h[i] = (float)i * 0.25f;
  LK_REQUIRE_OK(lightos_buffer_write(buf, 0, sizeof h, h));
  lightos_program_t p = NULL;
  lightos_kernel_t k = NULL;
  LK_REQUIRE_OK(lightos_program_create(ctx, k_seed, 0, &p));
  LK_REQUIRE_OK(lightos_program_build(p, NULL));
  LK_REQUIRE_OK(lightos_kernel_create(p, "square", &k));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, buf));
  LK_REQUIRE_OK(lightos_kernel_set_arg_u32(k, 1, N));
  LK_CHECK_STATUS(lightos_execute(k, N, 0), LIGHTOS_SUCCESS);     /* runtime picks local */
  LK_CHECK_STATUS(lightos_buffer_read(buf, 0, sizeof r, r), LIGHTOS_SUCCESS);
  for (int i = 0; i < N; ++i)
    if (r[i] != h[i] * h[i]) {
      (void)LK_CHECK_MSG(0, "x[%d] = %g, want %g", i, r[i], h[i] * h[i]);
      break;
    }
  LK_CHECK_STATUS(lightos_execute(k, N + 5, 16), LIGHTOS_SUCCESS); /* non-uniform */
  LK_CHECK_STATUS(lightos_buffer_read(buf, 0, sizeof r, r), LIGHTOS_SUCCESS);
  for (int i = 0; i < N; ++i) {
    float s = h[i] * h[i];
    if (r[i] != s * s) {
      (void)LK_CHECK_MSG(0, "x[%d] = %g, want %g", i, r[i], s * s);
      break;
    }
  }

  /* allreduce on a one-rank communicator */
  lightos_comm_t comm = NULL;
  uint32_t rank = 9, size = 9;
  LK_REQUIRE_OK(lightos_comm_init_all(1, &ctx, &comm));
  LK_CHECK_STATUS(lightos_comm_rank(comm, &rank), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_comm_size(comm, &size), LIGHTOS_SUCCESS);
  LK_CHECK_INT(rank, 0);
  LK_CHECK_INT(size, 1);
  lightos_buffer_t send = lightos_alloc(ctx, sizeof h), recv = lightos_alloc(ctx, sizeof h);
  LK_REQUIRE(send && recv);
  for (int i = 0; i < N; ++i) h[i] = (float)(i - 500) / 7.0f;
  LK_REQUIRE_OK(lightos_buffer_write(send, 0, sizeof h, h));
  float junk = -1;
  LK_REQUIRE_OK(lightos_buffer_fill(recv, 0, sizeof h, &junk, sizeof junk));
  LK_CHECK_STATUS(lightos_allreduce(send, recv, N, LIGHTOS_OP_SUM, comm), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(recv, 0, sizeof r, r), LIGHTOS_SUCCESS);
  LK_CHECK_MSG(memcmp(r, h, sizeof r) == 0, "recv != send after a 1-rank SUM");
  /* the other ops are the identity on one rank too */
  static const lightos_reduce_op_t ops[] = {LIGHTOS_OP_PROD, LIGHTOS_OP_MIN, LIGHTOS_OP_MAX,
                                            LIGHTOS_OP_AVG};
  for (size_t o = 0; o < 4; ++o) {
    LK_REQUIRE_OK(lightos_buffer_fill(recv, 0, sizeof h, &junk, sizeof junk));
    LK_CHECK_STATUS(lightos_allreduce(send, recv, N, ops[o], comm), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_buffer_read(recv, 0, sizeof r, r), LIGHTOS_SUCCESS);
    LK_CHECK_MSG(memcmp(r, h, sizeof r) == 0, "recv != send after op %d", (int)ops[o]);
  }
  /* in place */
  LK_CHECK_STATUS(lightos_allreduce(send, send, N, LIGHTOS_OP_SUM, comm), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(send, 0, sizeof r, r), LIGHTOS_SUCCESS);
  LK_CHECK_MSG(memcmp(r, h, sizeof r) == 0, "in-place allreduce changed the data");
  /* part of the buffer: only count elements are written */
  LK_REQUIRE_OK(lightos_buffer_fill(recv, 0, sizeof h, &junk, sizeof junk));
  LK_CHECK_STATUS(lightos_allreduce(send, recv, 10, LIGHTOS_OP_SUM, comm), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(recv, 0, sizeof r, r), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(r, h, 10 * sizeof(float)) == 0);
  LK_CHECK(r[10] == junk && r[N - 1] == junk);
  /* the general form with an explicit queue and another dtype */
  lightos_queue_t q = NULL;
  LK_REQUIRE_OK(lightos_queue_create(ctx, 0, &q));
  int32_t hi[16], ri[16];
  for (int i = 0; i < 16; ++i) hi[i] = i * 1000 - 3;
  LK_REQUIRE_OK(lightos_buffer_write(send, 0, sizeof hi, hi));
  LK_CHECK_STATUS(
      lightos_comm_allreduce(send, recv, 16, LIGHTOS_DTYPE_I32, LIGHTOS_OP_MAX, comm, q),
      LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_queue_finish(q), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(recv, 0, sizeof ri, ri), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(hi, ri, sizeof hi) == 0);
  LK_CHECK_STATUS(lightos_comm_allreduce(send, recv, 16, LIGHTOS_DTYPE_I32, LIGHTOS_OP_SUM, comm,
                                         NULL),
                  LIGHTOS_SUCCESS);
  lightos_queue_t dq = NULL;
  LK_REQUIRE_OK(lightos_context_default_queue(ctx, &dq));
  LK_CHECK_STATUS(lightos_queue_finish(dq), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_buffer_read(recv, 0, sizeof ri, ri), LIGHTOS_SUCCESS);
  LK_CHECK(memcmp(hi, ri, sizeof hi) == 0);

  LK_CHECK_STATUS(lightos_comm_destroy(comm), LIGHTOS_SUCCESS);
  lightos_queue_release(q);
  lightos_buffer_release(send);
  lightos_buffer_release(recv);
  lightos_kernel_release(k);
  lightos_program_release(p);
  lightos_buffer_release(buf);
  LK_CHECK_STATUS(lightos_context_release(ctx), LIGHTOS_SUCCESS);
}

/* ---- LIGHTOS_CPU_DEVICES ------------------------------------------------------- */

static int online_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* Runs in the child (LIGHTOS_CPU_DEVICES=3); argv[2] is the parent's
 * single-device compute_units. */
static int cpu_devices_child(int whole, int others) {
  lk_t.program = "test_api_basics (LIGHTOS_CPU_DEVICES=3 child)";
  lk_test_begin("cpu_devices_child");
  uint32_t nd = 0, ncpu = 0;
  uint32_t cu[3] = {0, 0, 0};
  LK_CHECK_STATUS(lightos_device_count(&nd), LIGHTOS_SUCCESS);
  for (uint32_t i = 0; i < nd; ++i) {
    lightos_device_t d;
    lightos_device_info_t in;
    if (lightos_device_get(i, &d) || lightos_device_get_info(d, &in)) {
      (void)LK_CHECK_MSG(0, "device %u: %s", i, lightos_last_error()->message);
      continue;
    }
    if (in.backend != LIGHTOS_BACKEND_CPU) continue;
    if (ncpu < 3) {
      char want[16];
      snprintf(want, sizeof want, "cpu:%u", ncpu);
      LK_CHECK_STR(in.uri, want);
      LK_CHECK_INT(in.index, ncpu);
      LK_CHECK(in.compute_units >= 1);
      cu[ncpu] = in.compute_units;
      lightos_device_t back = NULL;
      LK_CHECK_STATUS(lightos_device_from_uri(want, &back), LIGHTOS_SUCCESS);
      LK_CHECK(back == d);
    }
    ncpu++;
  }
  LK_CHECK_INT(ncpu, 3);
  /* the other backends' devices are unchanged: the count is 3 + those */
  if ((int)nd != 3 + others) {
    for (uint32_t i = 0; i < nd; ++i) {
      lightos_device_t dd = NULL;
      lightos_device_info_t ii;
      if (lightos_device_get(i, &dd) == LIGHTOS_SUCCESS &&
          lightos_device_get_info(dd, &ii) == LIGHTOS_SUCCESS)
        fprintf(stderr, "child device %u: %s (%s)\n", i, ii.uri, ii.name);
    }
  }
  /* A GPU the parent holds may be hidden from a second process by its
   * vendor's OpenCL (a GPU in exclusive-process compute mode; seen on an
   * H200 host: CUDA listed it, NVIDIA's OpenCL did not).  Only that may
   * differ: the child then has CUDA devices and no OpenCL GPU. */
  uint32_t ocl_gpus = 0, cudas = 0;
  for (uint32_t i = 0; i < nd; ++i) {
    lightos_device_t dd = NULL;
    lightos_device_info_t ii;
    if (lightos_device_get(i, &dd) || lightos_device_get_info(dd, &ii)) continue;
    cudas += ii.backend == LIGHTOS_BACKEND_CUDA;
    ocl_gpus += ii.backend == LIGHTOS_BACKEND_OPENCL &&
                (ii.type == LIGHTOS_DEVICE_TYPE_GPU_DISCRETE ||
                 ii.type == LIGHTOS_DEVICE_TYPE_GPU_INTEGRATED);
  }
  if ((int)nd < 3 + others && cudas > 0 && ocl_gpus == 0)
    fprintf(stderr, "note: the child sees %u devices, the parent %d: OpenCL GPUs held by the "
            "parent are hidden from it (exclusive-process compute mode?)\n", nd, 3 + others);
  else
    LK_CHECK_INT(nd, 3 + others);
  uint32_t sum = cu[0] + cu[1] + cu[2], mx = cu[0], mn = cu[0];
  for (int i = 1; i < 3; ++i) {
    if (cu[i] > mx) mx = cu[i];
    if (cu[i] < mn) mn = cu[i];
  }
  if (whole >= 3) {
    LK_CHECK_MSG(sum == (uint32_t)whole, "compute units %u+%u+%u do not split %d cores", cu[0],
                 cu[1], cu[2], whole);
    LK_CHECK_MSG(mx - mn <= 1, "uneven split %u/%u/%u", cu[0], cu[1], cu[2]);
  } else {
    /* fewer cores than devices: each device still gets one */
    LK_CHECK_MSG(mx <= (uint32_t)whole && mn >= 1, "split %u/%u/%u of %d cores", cu[0], cu[1],
                 cu[2], whole);
  }
  lightos_device_t d3 = NULL;
  LK_CHECK_STATUS(lightos_device_from_uri("cpu:3", &d3), LIGHTOS_NOT_FOUND);
  /* each device works */
  for (uint32_t i = 0; i < 3; ++i) {
    char uri[16];
    lightos_context_t c = NULL;
    snprintf(uri, sizeof uri, "cpu:%u", i);
    LK_CHECK_STATUS(lightos_context_create_from_uri(uri, &c), LIGHTOS_SUCCESS);
    if (!c) continue;
    lightos_buffer_t b = NULL;
    int w = (int)i + 40, r = 0;
    LK_CHECK_STATUS(lightos_buffer_alloc(c, sizeof w, 0, &b), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_buffer_write(b, 0, sizeof w, &w), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_buffer_read(b, 0, sizeof r, &r), LIGHTOS_SUCCESS);
    LK_CHECK_INT(r, w);
    lightos_buffer_release(b);
    lightos_context_release(c);
  }
  lk_test_end();
  return lk_test_finish();
}

static void test_cpu_devices_env(void) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  LK_REQUIRE(n > 0);
  self[n] = '\0';
  char whole[16];
  snprintf(whole, sizeof whole, "%u", g_info.compute_units);
  /* the single-device CPU covers every usable core */
  LK_CHECK_MSG((int)g_info.compute_units == online_cpus(), "cpu:0 has %u compute units, %d cores",
               g_info.compute_units, online_cpus());
  /* devices of the other backends (OpenCL ...) stay as they are */
  uint32_t nd = 0, others = 0;
  LK_REQUIRE_OK(lightos_device_count(&nd));
  for (uint32_t i = 0; i < nd; ++i) {
    lightos_device_t d;
    lightos_device_info_t in;
    LK_REQUIRE_OK(lightos_device_get(i, &d));
    LK_REQUIRE_OK(lightos_device_get_info(d, &in));
    others += in.backend != LIGHTOS_BACKEND_CPU;
  }
  char nothers[16];
  snprintf(nothers, sizeof nothers, "%u", others);
  char* argv[] = {self, "--cpu-devices-child", whole, nothers, NULL};
  size_t ne = 0;
  while (environ[ne]) ne++;
  char** envp = calloc(ne + 2, sizeof *envp);
  LK_REQUIRE(envp != NULL);
  size_t k = 0;
  for (size_t i = 0; i < ne; ++i)
    if (strncmp(environ[i], "LIGHTOS_CPU_DEVICES=", 20) &&
        strncmp(environ[i], "LIGHTOS_DEVICE=", 15))
      envp[k++] = environ[i];
  envp[k++] = "LIGHTOS_CPU_DEVICES=3";
  envp[k] = NULL;
  pid_t pid;
  int rc = posix_spawn(&pid, self, NULL, NULL, argv, envp);
  free(envp);
  LK_REQUIRE(rc == 0);
  int st = 0;
  LK_REQUIRE(waitpid(pid, &st, 0) == pid);
  LK_CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed: %s %d",
               WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

int main(int argc, char** argv) {
  lk_t.program = "test_api_basics";
  alarm(120);
  if (argc >= 3 && strcmp(argv[1], "--cpu-devices-child") == 0)
    return cpu_devices_child(atoi(argv[2]), argc >= 4 ? atoi(argv[3]) : 0);
  if (lightos_device_from_uri("cpu:0", &g_dev) || lightos_device_get_info(g_dev, &g_info) ||
      lightos_context_create_for_device(g_dev, 0, &g_ctx)) {
    fprintf(stderr, "setup failed: %s\n", lightos_last_error()->message);
    return 1;
  }
  LK_RUN(test_status_strings);
  LK_RUN(test_version_and_dtypes);
  LK_RUN(test_error_record);
  LK_RUN(test_backends);
  LK_RUN(test_device_info);
  LK_RUN(test_device_from_uri);
  LK_RUN(test_env_device_honoured);
  LK_RUN(test_explain_selection);
  LK_RUN(test_context_create);
  LK_RUN(test_buffer_basics);
  LK_RUN(test_buffer_fill_every_pattern);
  LK_RUN(test_sub_buffers_nested);
  LK_RUN(test_map_unmap);
  LK_RUN(test_copy_across_contexts);
  LK_RUN(test_queued_transfers);
  LK_RUN(test_event_query_and_record);
  LK_RUN(test_wait_event_does_not_block_host);
  LK_RUN(test_profiling);
  LK_RUN(test_refcounts);
  LK_RUN(test_release_while_in_use);
  LK_RUN(test_program_and_args);
  LK_RUN(test_ndrange_ids);
  LK_RUN(test_item_blocks_and_local);
  LK_RUN(test_fp64_kernel);
  LK_RUN(test_seed_api);
  LK_RUN(test_cpu_devices_env);
  lightos_context_release(g_ctx);
  return lk_test_finish();
}
