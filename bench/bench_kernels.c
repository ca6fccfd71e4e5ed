/* bench_kernels: the same portable kernels on the LightOS CPU backend and on
 * PoCL (through libOpenCL, loaded with the LightOS OpenCL loader), side by
 * side in one process.
 *
 *   bench_kernels [--markdown FILE] [--reps N] [--iters N] [--only NAME]...
 *                 [--no-pocl] [--no-lightos] [--saxpy-local N] [--reduce-k K]
 *                 [--keep-cache]
 *
 * Benchmarks (NAME for --only):
 *   saxpy     y = a*x + y on 16M floats: kernel time (enqueue .. finish), GB/s
 *   latency   saxpy on 4K floats: enqueue+finish round trip (median of
 *             --iters), and the cost of one enqueue without waiting
 *   reduce    16M floats summed by work-groups of 256 with a __local tree
 *             reduction (item blocks + barriers); checked against a host sum
 *   reduce-acc  the same reduction written with a per-item accumulator and
 *             one item block per step (vectorises on the CPU); no target
 *   matmul    1024^3 f32, 16x16 tiles in __local memory, 16x16 groups;
 *             GFLOP/s; a sample of C checked against the host
 *   build     cold build (fresh LightOS cache directory, source never seen by
 *             either cache), then a second build of the same source (LightOS
 *             must hit its cache); beside PoCL's clBuildProgram times
 *
 * Timing: CLOCK_MONOTONIC around enqueue .. lightos_queue_finish / clFinish,
 * after warm-up runs; the median of --reps repetitions (default 7).
 * The ratio column is PoCL time / LightOS time: > 1 means LightOS is faster.
 * A missed target is marked MISSED; the exit status is 0 unless a kernel
 * gave a wrong result or an API call failed.
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hal/opencl/opencl_loader.h"
#include "kernels/preludes.h"
#include "lightos/lightos.h"

#include "bench_kernel_sources.h"

/* ---- Small utilities ---------------------------------------------------- */

#define BENCH_NAME "bench_kernels"
#include "bench_util.h"

/* ---- Result table ------------------------------------------------------- */

typedef enum { TGT_NONE, TGT_RATIO_MIN, TGT_LK_MAX } tgt_kind_t;

typedef struct row {
  char bench[48];
  char size[24];
  const char* unit; /* of lk / cl: "ms" or "us" */
  double lk, cl;    /* NAN: not measured */
  tgt_kind_t tgt;
  double tgt_value; /* ratio, or LightOS time in `unit` */
  char notes[256];
} row_t;

#define MAX_ROWS 16
static row_t rows[MAX_ROWS];
static int row_count;
static int failures; /* wrong results / API failures */

static row_t* add_row(const char* bench, const char* size, const char* unit, tgt_kind_t tgt,
                      double tgt_value) {
  if (row_count == MAX_ROWS) return &rows[MAX_ROWS - 1];
  row_t* r = &rows[row_count++];
  memset(r, 0, sizeof *r);
  snprintf(r->bench, sizeof r->bench, "%s", bench);
  snprintf(r->size, sizeof r->size, "%s", size);
  r->unit = unit;
  r->lk = NAN;
  r->cl = NAN;
  r->tgt = tgt;
  r->tgt_value = tgt_value;
  return r;
}

static void note(row_t* r, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(row_t* r, const char* fmt, ...) {
  size_t len = strlen(r->notes);
  if (len + 3 >= sizeof r->notes) return;
  if (len) {
    memcpy(r->notes + len, "; ", 3);
    len += 2;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->notes + len, sizeof r->notes - len, fmt, ap);
  va_end(ap);
}

/* "12.3" or "-" for NAN, in a rotating static buffer (for notes). */
static const char* num(double v, int prec) {
  static char bufs[8][32];
  static int next;
  char* b = bufs[next++ & 7];
  if (isnan(v) || isinf(v))
    snprintf(b, 32, "-");
  else
    snprintf(b, 32, "%.*f", prec, v);
  return b;
}

static const char* sci(double v) {
  static char bufs[4][32];
  static int next;
  char* b = bufs[next++ & 3];
  if (isnan(v) || isinf(v))
    snprintf(b, 32, "-");
  else
    snprintf(b, 32, "%.1e", v);
  return b;
}

static void fmt_time(char* buf, size_t cap, double v, const char* unit) {
  if (isnan(v))
    snprintf(buf, cap, "-");
  else if (v < 0.1)
    snprintf(buf, cap, "%.4f %s", v, unit);
  else if (v < 100)
    snprintf(buf, cap, "%.3f %s", v, unit);
  else
    snprintf(buf, cap, "%.1f %s", v, unit);
}

static void fmt_row(const row_t* r, char lk[32], char cl[32], char ratio[16], char tgt[24],
                    char status[16]) {
  fmt_time(lk, 32, r->lk, r->unit);
  fmt_time(cl, 32, r->cl, r->unit);
  double q = r->cl / r->lk;
  if (isnan(q) || isinf(q))
    snprintf(ratio, 16, "-");
  else
    snprintf(ratio, 16, "%.2fx", q);
  switch (r->tgt) {
    case TGT_NONE:
      snprintf(tgt, 24, "-");
      snprintf(status, 16, "%s", "");
      break;
    case TGT_RATIO_MIN:
      snprintf(tgt, 24, ">= %.2fx", r->tgt_value);
      if (isnan(q) || isinf(q))
        snprintf(status, 16, "n/a");
      else
        snprintf(status, 16, "%s", q >= r->tgt_value ? "met" : "MISSED");
      break;
    case TGT_LK_MAX:
      snprintf(tgt, 24, "LightOS < %g %s", r->tgt_value, r->unit);
      if (isnan(r->lk))
        snprintf(status, 16, "n/a");
      else
        snprintf(status, 16, "%s", r->lk < r->tgt_value ? "met" : "MISSED");
      break;
  }
}

static void print_table(FILE* f, bool markdown) {
  static const char* head[8] = {"benchmark", "size",   "LightOS", "PoCL",
                                "ratio",     "target", "status",  "notes"};
  int w[7] = {9, 4, 7, 4, 5, 6, 6};
  char cells[MAX_ROWS][5][32];
  for (int i = 0; i < row_count; ++i) {
    fmt_row(&rows[i], cells[i][0], cells[i][1], cells[i][2], cells[i][3], cells[i][4]);
    int len[7] = {(int)strlen(rows[i].bench), (int)strlen(rows[i].size),
                  (int)strlen(cells[i][0]),   (int)strlen(cells[i][1]),
                  (int)strlen(cells[i][2]),   (int)strlen(cells[i][3]),
                  (int)strlen(cells[i][4])};
    for (int c = 0; c < 7; ++c)
      if (len[c] > w[c]) w[c] = len[c];
  }
  if (markdown) {
    fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", head[0], head[1], head[2],
            head[3], head[4], head[5], head[6], head[7]);
    fprintf(f, "|---|---|--:|--:|--:|---|---|---|\n");
    for (int i = 0; i < row_count; ++i) {
      const char* st = cells[i][4];
      fprintf(f, "| %s | %s | %s | %s | %s | %s | %s%s%s | %s |\n", rows[i].bench,
              rows[i].size, cells[i][0], cells[i][1], cells[i][2], cells[i][3],
              strcmp(st, "MISSED") == 0 ? "**" : "", st, strcmp(st, "MISSED") == 0 ? "**" : "",
              rows[i].notes);
    }
    return;
  }
  fprintf(f, "%-*s  %-*s  %*s  %*s  %*s  %-*s  %-*s  %s\n", w[0], head[0], w[1], head[1], w[2],
          head[2], w[3], head[3], w[4], head[4], w[5], head[5], w[6], head[6], head[7]);
  int total = w[0] + w[1] + w[2] + w[3] + w[4] + w[5] + w[6] + 14 + 5;
  for (int i = 0; i < total; ++i) fputc('-', f);
  fputc('\n', f);
  for (int i = 0; i < row_count; ++i)
    fprintf(f, "%-*s  %-*s  %*s  %*s  %*s  %-*s  %-*s  %s\n", w[0], rows[i].bench, w[1],
            rows[i].size, w[2], cells[i][0], w[3], cells[i][1], w[4], cells[i][2], w[5],
            cells[i][3], w[6], cells[i][4], rows[i].notes);
}

/* ---- The LightOS side --------------------------------------------------- */

typedef struct lk_side {
  bool ok;
  char why[256];
  lightos_context_t ctx;
  lightos_queue_t q;
  char device[256];
  uint32_t compute_units;
} lk_side_t;

static const char* lk_err(void) {
  const lightos_error_info_t* e = lightos_last_error();
  static _Thread_local char buf[600];
  snprintf(buf, sizeof buf, "%s: %s", lightos_status_string(e->status), e->message);
  return buf;
}

/* Evaluates a LightOS call; on failure records why in `err` and jumps to `fail`. */
#define LK_TRY(call)                                                   \
  do {                                                                 \
    lightos_status_t st_ = (call);                                     \
    if (st_ != LIGHTOS_SUCCESS) {                                      \
      snprintf(err, sizeof err, "%s failed: %s", #call, lk_err());     \
      goto fail;                                                       \
    }                                                                  \
  } while (0)

static void lk_side_open(lk_side_t* s) {
  memset(s, 0, sizeof *s);
  char err[700];
  lightos_device_t dev;
  lightos_device_info_t info;
  LK_TRY(lightos_context_create_from_uri("cpu", &s->ctx));
  LK_TRY(lightos_context_get_device(s->ctx, &dev));
  LK_TRY(lightos_device_get_info(dev, &info));
  LK_TRY(lightos_queue_create(s->ctx, LIGHTOS_QUEUE_DEFAULT, &s->q));
  snprintf(s->device, sizeof s->device, "%s", info.name);
  s->compute_units = info.compute_units;
  s->ok = true;
  return;
fail:
  snprintf(s->why, sizeof s->why, "%.250s", err);
  if (s->ctx) lightos_context_release(s->ctx);
  s->ctx = NULL;
}

static void lk_side_close(lk_side_t* s) {
  if (s->q) lightos_queue_release(s->q);
  if (s->ctx) lightos_context_release(s->ctx);
  s->q = NULL;
  s->ctx = NULL;
}

/* Builds `src` and creates kernel `name`.  build_ms / from_cache optional. */
static lightos_status_t lk_build(lk_side_t* s, const char* src, const char* name,
                                 lightos_program_t* out_p, lightos_kernel_t* out_k,
                                 double* build_ms, bool* from_cache, char* err, size_t cap) {
  lightos_program_t p = NULL;
  lightos_status_t st = lightos_program_create(s->ctx, src, 0, &p);
  if (st) {
    snprintf(err, cap, "program_create: %s", lk_err());
    return st;
  }
  double t0 = now_ms();
  st = lightos_program_build(p, NULL);
  double t1 = now_ms();
  if (st) {
    char log[2048] = "";
    lightos_program_build_log(p, log, sizeof log, NULL);
    snprintf(err, cap, "program_build: %s\n%s", lk_err(), log);
    lightos_program_release(p);
    return st;
  }
  if (build_ms) *build_ms = t1 - t0;
  if (from_cache) {
    lightos_program_info_t info;
    *from_cache = lightos_program_get_info(p, &info) == LIGHTOS_SUCCESS && info.from_cache;
  }
  if (out_k) {
    st = lightos_kernel_create(p, name, out_k);
    if (st) {
      snprintf(err, cap, "kernel_create(%s): %s", name, lk_err());
      lightos_program_release(p);
      return st;
    }
  }
  *out_p = p;
  return LIGHTOS_SUCCESS;
}

/* Runs one launch and waits; returns the wall time in ms, or NAN on failure. */
static double lk_launch(lk_side_t* s, lightos_kernel_t k, uint32_t dim, const size_t* g,
                        const size_t* l) {
  double t0 = now_ms();
  if (lightos_enqueue_kernel(s->q, k, dim, g, l, NULL) != LIGHTOS_SUCCESS) return NAN;
  if (lightos_queue_finish(s->q) != LIGHTOS_SUCCESS) return NAN;
  return now_ms() - t0;
}

/* Median of `reps` timed launches after `warm` untimed ones; NAN on failure. */
static double lk_time(lk_side_t* s, lightos_kernel_t k, uint32_t dim, const size_t* g,
                      const size_t* l, int warm, int reps) {
  for (int i = 0; i < warm; ++i)
    if (isnan(lk_launch(s, k, dim, g, l))) return NAN;
  double* t = xmalloc(sizeof(double) * (size_t)reps);
  for (int i = 0; i < reps; ++i) {
    t[i] = lk_launch(s, k, dim, g, l);
    if (isnan(t[i])) {
      free(t);
      return NAN;
    }
  }
  double m = median(t, (size_t)reps);
  free(t);
  return m;
}

static lightos_buffer_t lk_buffer(lk_side_t* s, size_t bytes, const void* init, char* err,
                                  size_t cap) {
  lightos_buffer_t b = NULL;
  if (lightos_buffer_alloc(s->ctx, bytes, LIGHTOS_BUFFER_DEFAULT, &b) != LIGHTOS_SUCCESS) {
    snprintf(err, cap, "buffer_alloc(%zu): %s", bytes, lk_err());
    return NULL;
  }
  if (init && lightos_buffer_write(b, 0, bytes, init) != LIGHTOS_SUCCESS) {
    snprintf(err, cap, "buffer_write(%zu): %s", bytes, lk_err());
    lightos_buffer_release(b);
    return NULL;
  }
  return b;
}

/* ---- The PoCL side ------------------------------------------------------ */

typedef struct cl_side {
  bool ok;
  char why[512];
  lk_opencl_api_t api;
  cl_platform_id platform;
  cl_device_id device;
  cl_context ctx;
  cl_command_queue q;
  char platform_name[256];
  char device_name[256];
  char version[128];
  cl_uint compute_units;
} cl_side_t;

static void cl_side_open(cl_side_t* s) {
  memset(s, 0, sizeof *s);
  if (lk_opencl_api_load(&s->api, s->why, sizeof s->why) != 0) return;
  lk_opencl_api_t* cl = &s->api;
  cl_uint n = 0;
  cl_int e = cl->clGetPlatformIDs(0, NULL, &n);
  if (e != CL_SUCCESS || n == 0) {
    snprintf(s->why, sizeof s->why, "no OpenCL platform (clGetPlatformIDs: %s, %u platforms)",
             lk_opencl_error_name(e), n);
    goto fail;
  }
  cl_platform_id plats[16];
  if (n > 16) n = 16;
  e = cl->clGetPlatformIDs(n, plats, NULL);
  if (e != CL_SUCCESS) {
    snprintf(s->why, sizeof s->why, "clGetPlatformIDs: %s", lk_opencl_error_name(e));
    goto fail;
  }
  /* PoCL first (any device type, CPU preferred), else the first CPU device. */
  for (int pass = 0; pass < 2 && !s->device; ++pass) {
    for (cl_uint i = 0; i < n && !s->device; ++i) {
      char name[256] = "";
      cl->clGetPlatformInfo(plats[i], CL_PLATFORM_NAME, sizeof name, name, NULL);
      bool is_pocl = strstr(name, "Portable Computing Language") != NULL;
      if (pass == 0 && !is_pocl) continue;
      cl_device_id d;
      cl_uint nd = 0;
      e = cl->clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_CPU, 1, &d, &nd);
      if ((e != CL_SUCCESS || nd == 0) && pass == 0)
        e = cl->clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, 1, &d, &nd);
      if (e == CL_SUCCESS && nd > 0) {
        s->platform = plats[i];
        s->device = d;
        snprintf(s->platform_name, sizeof s->platform_name, "%s", name);
      }
    }
  }
  if (!s->device) {
    snprintf(s->why, sizeof s->why,
             "no PoCL platform and no OpenCL CPU device among %u platform(s)", n);
    goto fail;
  }
  cl->clGetDeviceInfo(s->device, CL_DEVICE_NAME, sizeof s->device_name, s->device_name, NULL);
  cl->clGetPlatformInfo(s->platform, CL_PLATFORM_VERSION, sizeof s->version, s->version, NULL);
  cl->clGetDeviceInfo(s->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof s->compute_units,
                      &s->compute_units, NULL);
  cl_context_properties props[3] = {(cl_context_properties)CL_CONTEXT_PLATFORM,
                                    (cl_context_properties)s->platform, 0};
  s->ctx = cl->clCreateContext(props, 1, &s->device, NULL, NULL, &e);
  if (!s->ctx) {
    snprintf(s->why, sizeof s->why, "clCreateContext: %s", lk_opencl_error_name(e));
    goto fail;
  }
  s->q = cl->clCreateCommandQueue(s->ctx, s->device, 0, &e);
  if (!s->q) {
    snprintf(s->why, sizeof s->why, "clCreateCommandQueue: %s", lk_opencl_error_name(e));
    goto fail;
  }
  s->ok = true;
  return;
fail:
  if (s->ctx) cl->clReleaseContext(s->ctx);
  s->ctx = NULL;
  lk_opencl_api_unload(&s->api);
}

static void cl_side_close(cl_side_t* s) {
  if (!s->ok) return;
  s->api.clFinish(s->q);
  s->api.clReleaseCommandQueue(s->q);
  s->api.clReleaseContext(s->ctx);
  lk_opencl_api_unload(&s->api);
  s->ok = false;
}

/* Builds lk_prelude_opencl + src; build_ms (optional) gets the
 * clCreateProgramWithSource + clBuildProgram time. */
static cl_int cl_build(cl_side_t* s, const char* src, const char* name, cl_program* out_p,
                       cl_kernel* out_k, double* build_ms, char* err, size_t cap) {
  lk_opencl_api_t* cl = &s->api;
  const char* strs[2] = {lk_prelude_opencl, src};
  cl_int e;
  double t0 = now_ms();
  cl_program p = cl->clCreateProgramWithSource(s->ctx, 2, strs, NULL, &e);
  if (!p) {
    snprintf(err, cap, "clCreateProgramWithSource: %s", lk_opencl_error_name(e));
    return e;
  }
  e = cl->clBuildProgram(p, 1, &s->device, "-cl-std=CL1.2", NULL, NULL);
  double t1 = now_ms();
  if (e != CL_SUCCESS) {
    char log[2048] = "";
    cl->clGetProgramBuildInfo(p, s->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
    snprintf(err, cap, "clBuildProgram: %s\n%s", lk_opencl_error_name(e), log);
    cl->clReleaseProgram(p);
    return e;
  }
  if (build_ms) *build_ms = t1 - t0;
  if (out_k) {
    *out_k = cl->clCreateKernel(p, name, &e);
    if (!*out_k) {
      snprintf(err, cap, "clCreateKernel(%s): %s", name, lk_opencl_error_name(e));
      cl->clReleaseProgram(p);
      return e;
    }
  }
  *out_p = p;
  return CL_SUCCESS;
}

static double cl_launch(cl_side_t* s, cl_kernel k, cl_uint dim, const size_t* g,
                        const size_t* l) {
  double t0 = now_ms();
  if (s->api.clEnqueueNDRangeKernel(s->q, k, dim, NULL, g, l, 0, NULL, NULL) != CL_SUCCESS)
    return NAN;
  if (s->api.clFinish(s->q) != CL_SUCCESS) return NAN;
  return now_ms() - t0;
}

static double cl_time(cl_side_t* s, cl_kernel k, cl_uint dim, const size_t* g,
                      const size_t* l, int warm, int reps) {
  for (int i = 0; i < warm; ++i)
    if (isnan(cl_launch(s, k, dim, g, l))) return NAN;
  double* t = xmalloc(sizeof(double) * (size_t)reps);
  for (int i = 0; i < reps; ++i) {
    t[i] = cl_launch(s, k, dim, g, l);
    if (isnan(t[i])) {
      free(t);
      return NAN;
    }
  }
  double m = median(t, (size_t)reps);
  free(t);
  return m;
}

static cl_mem cl_buffer(cl_side_t* s, size_t bytes, const void* init, char* err, size_t cap) {
  cl_int e;
  cl_mem m = s->api.clCreateBuffer(s->ctx, CL_MEM_READ_WRITE, bytes, NULL, &e);
  if (!m) {
    snprintf(err, cap, "clCreateBuffer(%zu): %s", bytes, lk_opencl_error_name(e));
    return NULL;
  }
  if (init) {
    e = s->api.clEnqueueWriteBuffer(s->q, m, CL_TRUE, 0, bytes, init, 0, NULL, NULL);
    if (e != CL_SUCCESS) {
      snprintf(err, cap, "clEnqueueWriteBuffer(%zu): %s", bytes, lk_opencl_error_name(e));
      s->api.clReleaseMemObject(m);
      return NULL;
    }
  }
  return m;
}

static cl_int cl_read(cl_side_t* s, cl_mem m, size_t bytes, void* dst) {
  return s->api.clEnqueueReadBuffer(s->q, m, CL_TRUE, 0, bytes, dst, 0, NULL, NULL);
}

#define CL_TRY(call)                                                                \
  do {                                                                              \
    cl_int e_ = (call);                                                             \
    if (e_ != CL_SUCCESS) {                                                         \
      snprintf(err, sizeof err, "%s failed: %s", #call, lk_opencl_error_name(e_)); \
      goto cl_fail;                                                                 \
    }                                                                               \
  } while (0)

/* ---- Options ------------------------------------------------------------ */

typedef struct opts {
  const char* markdown;
  int reps;
  int iters;
  bool no_pocl, no_lightos;
  size_t saxpy_local; /* 0: each runtime picks the 16M saxpy's local size */
  bool keep_cache;    /* leave the temporary kernel cache (for perf) */
  uint32_t reduce_k;  /* floats per item in the reductions */
  const char* only[8];
  int only_count;
} opts_t;

static opts_t opt = {NULL, 7, 2000, false, false, 0, false, 64, {NULL}, 0};

static bool selected(const char* name) {
  if (opt.only_count == 0) return true;
  for (int i = 0; i < opt.only_count; ++i)
    if (strcmp(opt.only[i], name) == 0) return true;
  return false;
}

static void side_error(row_t* r, const char* side, const char* msg) {
  fprintf(stderr, "bench_kernels: %s: %s: %s\n", r->bench, side, msg);
  char first[120];
  snprintf(first, sizeof first, "%s", msg);
  char* nl = strchr(first, '\n');
  if (nl) *nl = '\0';
  note(r, "%s ERROR: %s", side, first);
  failures++;
}

/* ---- a. saxpy 16M ------------------------------------------------------- */

static bool saxpy_check(const float* y, const float* x, const float* y0, float a, size_t n,
                        char* err, size_t cap) {
  for (size_t i = 0; i < n; i += 997) {
    float want = a * x[i] + y0[i];
    if (fabsf(y[i] - want) > 1e-6f * fabsf(want) + 1e-30f) {
      snprintf(err, cap, "saxpy wrong at %zu: got %.9g want %.9g", i, (double)y[i],
               (double)want);
      return false;
    }
  }
  return true;
}

static void bench_saxpy(lk_side_t* L, cl_side_t* C) {
  const size_t n = (size_t)16 << 20;
  const size_t bytes = n * sizeof(float);
  const float a = 0.5f;
  row_t* r = add_row("saxpy kernel", "16M f32", "ms", TGT_RATIO_MIN, 0.95);
  float* x = xmalloc(bytes);
  float* y0 = xmalloc(bytes);
  float* y = xmalloc(bytes);
  for (size_t i = 0; i < n; ++i) {
    x[i] = rng_unit();
    y0[i] = rng_unit();
  }
  size_t g[1] = {n};
  size_t l[1] = {opt.saxpy_local};
  const size_t* local = opt.saxpy_local ? l : NULL;
  double lk_gbs = NAN, cl_gbs = NAN;
  char err[2600];

  if (L->ok) {
    lightos_program_t p = NULL;
    lightos_kernel_t k = NULL;
    lightos_buffer_t bx = NULL, by = NULL;
    if (lk_build(L, k_saxpy_src, "saxpy", &p, &k, NULL, NULL, err, sizeof err)) goto lk_fail;
    if (!(bx = lk_buffer(L, bytes, x, err, sizeof err))) goto lk_fail;
    if (!(by = lk_buffer(L, bytes, y0, err, sizeof err))) goto lk_fail;
    LK_TRY(lightos_kernel_set_arg_buffer(k, 0, by));
    LK_TRY(lightos_kernel_set_arg_buffer(k, 1, bx));
    LK_TRY(lightos_kernel_set_arg_f32(k, 2, a));
    LK_TRY(lightos_kernel_set_arg_u32(k, 3, (uint32_t)n));
    /* One checked run from known data, then the timed runs. */
    if (isnan(lk_launch(L, k, 1, g, local))) {
      snprintf(err, sizeof err, "launch: %s", lk_err());
      goto lk_fail;
    }
    LK_TRY(lightos_buffer_read(by, 0, bytes, y));
    if (!saxpy_check(y, x, y0, a, n, err, sizeof err)) goto lk_fail;
    r->lk = lk_time(L, k, 1, g, local, 3, opt.reps);
    if (isnan(r->lk)) {
      snprintf(err, sizeof err, "launch: %s", lk_err());
      goto lk_fail;
    }
    lk_gbs = 3.0 * (double)bytes / (r->lk * 1e6);
    goto lk_done;
  fail:
  lk_fail:
    r->lk = NAN;
    side_error(r, "LightOS", err);
  lk_done:
    if (bx) lightos_buffer_release(bx);
    if (by) lightos_buffer_release(by);
    if (k) lightos_kernel_release(k);
    if (p) lightos_program_release(p);
  }

  if (C->ok) {
    lk_opencl_api_t* cl = &C->api;
    cl_program p = NULL;
    cl_kernel k = NULL;
    cl_mem bx = NULL, by = NULL;
    cl_uint nn = (cl_uint)n;
    if (cl_build(C, k_saxpy_src, "saxpy", &p, &k, NULL, err, sizeof err)) goto cl_fail;
    if (!(bx = cl_buffer(C, bytes, x, err, sizeof err))) goto cl_fail;
    if (!(by = cl_buffer(C, bytes, y0, err, sizeof err))) goto cl_fail;
    CL_TRY(cl->clSetKernelArg(k, 0, sizeof by, &by));
    CL_TRY(cl->clSetKernelArg(k, 1, sizeof bx, &bx));
    CL_TRY(cl->clSetKernelArg(k, 2, sizeof a, &a));
    CL_TRY(cl->clSetKernelArg(k, 3, sizeof nn, &nn));
    if (isnan(cl_launch(C, k, 1, g, local))) {
      snprintf(err, sizeof err, "clEnqueueNDRangeKernel/clFinish failed");
      goto cl_fail;
    }
    CL_TRY(cl_read(C, by, bytes, y));
    if (!saxpy_check(y, x, y0, a, n, err, sizeof err)) goto cl_fail;
    r->cl = cl_time(C, k, 1, g, local, 3, opt.reps);
    if (isnan(r->cl)) {
      snprintf(err, sizeof err, "clEnqueueNDRangeKernel/clFinish failed");
      goto cl_fail;
    }
    cl_gbs = 3.0 * (double)bytes / (r->cl * 1e6);
    goto cl_done;
  cl_fail:
    r->cl = NAN;
    side_error(r, "PoCL", err);
  cl_done:
    if (bx) cl->clReleaseMemObject(bx);
    if (by) cl->clReleaseMemObject(by);
    if (k) cl->clReleaseKernel(k);
    if (p) cl->clReleaseProgram(p);
  }
  if (!isnan(lk_gbs) || !isnan(cl_gbs))
    note(r, "GB/s: LightOS %s, PoCL %s (12 bytes/elem)", num(lk_gbs, 1), num(cl_gbs, 1));
  if (local)
    note(r, "local size %zu on both", l[0]);
  else
    note(r, "local size: runtime's choice on both");
  free(x);
  free(y0);
  free(y);
}

/* ---- b. saxpy 4K latency ------------------------------------------------ */

/* Per-side measurement: round trip median (us) and enqueue-only cost (us). */
typedef struct lat_result {
  double rt_us, rt_p90_us, enq_us;
} lat_result_t;

static void bench_latency(lk_side_t* L, cl_side_t* C) {
  const size_t n = 4096;
  const size_t bytes = n * sizeof(float);
  const float a = 0.5f;
  const int iters = opt.iters;
  const int warm = iters / 10 + 10;
  row_t* rr = add_row("saxpy round trip", "4K f32", "us", TGT_RATIO_MIN, 2.0);
  row_t* re = add_row("saxpy enqueue only", "4K f32", "us", TGT_NONE, 0);
  float* x = xmalloc(bytes);
  float* y0 = xmalloc(bytes);
  float* y = xmalloc(bytes);
  for (size_t i = 0; i < n; ++i) {
    x[i] = rng_unit();
    y0[i] = rng_unit();
  }
  size_t g[1] = {n};
  double* t = xmalloc(sizeof(double) * (size_t)iters);
  char err[2600];
  lat_result_t lr = {NAN, NAN, NAN}, cr = {NAN, NAN, NAN};

  if (L->ok) {
    lightos_program_t p = NULL;
    lightos_kernel_t k = NULL;
    lightos_buffer_t bx = NULL, by = NULL;
    if (lk_build(L, k_saxpy_src, "saxpy", &p, &k, NULL, NULL, err, sizeof err)) goto lk_fail;
    if (!(bx = lk_buffer(L, bytes, x, err, sizeof err))) goto lk_fail;
    if (!(by = lk_buffer(L, bytes, y0, err, sizeof err))) goto lk_fail;
    LK_TRY(lightos_kernel_set_arg_buffer(k, 0, by));
    LK_TRY(lightos_kernel_set_arg_buffer(k, 1, bx));
    LK_TRY(lightos_kernel_set_arg_f32(k, 2, a));
    LK_TRY(lightos_kernel_set_arg_u32(k, 3, (uint32_t)n));
    if (isnan(lk_launch(L, k, 1, g, NULL))) {
      snprintf(err, sizeof err, "launch: %s", lk_err());
      goto lk_fail;
    }
    LK_TRY(lightos_buffer_read(by, 0, bytes, y));
    if (!saxpy_check(y, x, y0, a, n, err, sizeof err)) goto lk_fail;
    for (int i = 0; i < warm; ++i) lk_launch(L, k, 1, g, NULL);
    for (int i = 0; i < iters; ++i) t[i] = lk_launch(L, k, 1, g, NULL) * 1e3;
    lr.rt_us = median(t, (size_t)iters);
    lr.rt_p90_us = t[(size_t)iters * 9 / 10];
    /* Enqueue cost: `iters` enqueues back to back, then one finish. */
    for (int rep = 0; rep < 5; ++rep) {
      double t0 = now_ms();
      for (int i = 0; i < iters; ++i) LK_TRY(lightos_enqueue_kernel(L->q, k, 1, g, NULL, NULL));
      double t1 = now_ms();
      LK_TRY(lightos_queue_finish(L->q));
      t[rep] = (t1 - t0) * 1e3 / iters;
    }
    lr.enq_us = median(t, 5);
    goto lk_done;
  fail:
  lk_fail:
    side_error(rr, "LightOS", err);
  lk_done:
    lightos_queue_finish(L->q);
    if (bx) lightos_buffer_release(bx);
    if (by) lightos_buffer_release(by);
    if (k) lightos_kernel_release(k);
    if (p) lightos_program_release(p);
  }

  if (C->ok) {
    lk_opencl_api_t* cl = &C->api;
    cl_program p = NULL;
    cl_kernel k = NULL;
    cl_mem bx = NULL, by = NULL;
    cl_uint nn = (cl_uint)n;
    if (cl_build(C, k_saxpy_src, "saxpy", &p, &k, NULL, err, sizeof err)) goto cl_fail;
    if (!(bx = cl_buffer(C, bytes, x, err, sizeof err))) goto cl_fail;
    if (!(by = cl_buffer(C, bytes, y0, err, sizeof err))) goto cl_fail;
    CL_TRY(cl->clSetKernelArg(k, 0, sizeof by, &by));
    CL_TRY(cl->clSetKernelArg(k, 1, sizeof bx, &bx));
    CL_TRY(cl->clSetKernelArg(k, 2, sizeof a, &a));
    CL_TRY(cl->clSetKernelArg(k, 3, sizeof nn, &nn));
    if (isnan(cl_launch(C, k, 1, g, NULL))) {
      snprintf(err, sizeof err, "clEnqueueNDRangeKernel/clFinish failed");
      goto cl_fail;
    }
    CL_TRY(cl_read(C, by, bytes, y));
    if (!saxpy_check(y, x, y0, a, n, err, sizeof err)) goto cl_fail;
    for (int i = 0; i < warm; ++i) cl_launch(C, k, 1, g, NULL);
    for (int i = 0; i < iters; ++i) t[i] = cl_launch(C, k, 1, g, NULL) * 1e3;
    cr.rt_us = median(t, (size_t)iters);
    cr.rt_p90_us = t[(size_t)iters * 9 / 10];
    for (int rep = 0; rep < 5; ++rep) {
      double t0 = now_ms();
      for (int i = 0; i < iters; ++i)
        CL_TRY(cl->clEnqueueNDRangeKernel(C->q, k, 1, NULL, g, NULL, 0, NULL, NULL));
      double t1 = now_ms();
      CL_TRY(cl->clFinish(C->q));
      t[rep] = (t1 - t0) * 1e3 / iters;
    }
    cr.enq_us = median(t, 5);
    goto cl_done;
  cl_fail:
    side_error(rr, "PoCL", err);
  cl_done:
    cl->clFinish(C->q);
    if (bx) cl->clReleaseMemObject(bx);
    if (by) cl->clReleaseMemObject(by);
    if (k) cl->clReleaseKernel(k);
    if (p) cl->clReleaseProgram(p);
  }
  rr->lk = lr.rt_us;
  rr->cl = cr.rt_us;
  re->lk = lr.enq_us;
  re->cl = cr.enq_us;
  note(rr, "median of %d; p90: LightOS %s us, PoCL %s us", iters, num(lr.rt_p90_us, 1),
       num(cr.rt_p90_us, 1));
  note(re, "%d enqueues without waiting, median of 5 batches", iters);
  free(t);
  free(x);
  free(y0);
  free(y);
}

/* ---- c. local-memory reduction ------------------------------------------ */

static void bench_reduce(lk_side_t* L, cl_side_t* C, const char* src, const char* kname,
                         const char* label, tgt_kind_t tgt) {
  const size_t n = (size_t)16 << 20;
  const uint32_t k_per_item = opt.reduce_k;
  const size_t per_group = 256 * (size_t)k_per_item;
  const size_t groups = n / per_group;
  const size_t bytes = n * sizeof(float);
  char size[24];
  snprintf(size, sizeof size, "16M f32, k=%u", k_per_item);
  row_t* r = add_row(label, size, "ms", tgt, 1.5);
  float* in = xmalloc(bytes);
  float* part = xmalloc(groups * sizeof(float));
  double host = 0;
  for (size_t i = 0; i < n; ++i) {
    in[i] = rng_unit();
    host += in[i];
  }
  size_t g[1] = {n / k_per_item}, l[1] = {256};
  char err[2600];
  double lk_sum = NAN, cl_sum = NAN;

  if (L->ok) {
    lightos_program_t p = NULL;
    lightos_kernel_t k = NULL;
    lightos_buffer_t bi = NULL, bp = NULL;
    if (lk_build(L, src, kname, &p, &k, NULL, NULL, err, sizeof err)) goto lk_fail;
    if (!(bi = lk_buffer(L, bytes, in, err, sizeof err))) goto lk_fail;
    if (!(bp = lk_buffer(L, groups * sizeof(float), NULL, err, sizeof err))) goto lk_fail;
    LK_TRY(lightos_kernel_set_arg_buffer(k, 0, bi));
    LK_TRY(lightos_kernel_set_arg_buffer(k, 1, bp));
    LK_TRY(lightos_kernel_set_arg_u32(k, 2, k_per_item));
    r->lk = lk_time(L, k, 1, g, l, 2, opt.reps);
    if (isnan(r->lk)) {
      snprintf(err, sizeof err, "launch: %s", lk_err());
      goto lk_fail;
    }
    LK_TRY(lightos_buffer_read(bp, 0, groups * sizeof(float), part));
    lk_sum = 0;
    for (size_t i = 0; i < groups; ++i) lk_sum += part[i];
    if (!(fabs(lk_sum - host) <= 1e-5 * fabs(host))) {
      snprintf(err, sizeof err, "wrong sum %.9g, host %.9g", lk_sum, host);
      goto lk_fail;
    }
    goto lk_done;
  fail:
  lk_fail:
    r->lk = NAN;
    side_error(r, "LightOS", err);
  lk_done:
    if (bi) lightos_buffer_release(bi);
    if (bp) lightos_buffer_release(bp);
    if (k) lightos_kernel_release(k);
    if (p) lightos_program_release(p);
  }

  if (C->ok) {
    lk_opencl_api_t* cl = &C->api;
    cl_program p = NULL;
    cl_kernel k = NULL;
    cl_mem bi = NULL, bp = NULL;
    if (cl_build(C, src, kname, &p, &k, NULL, err, sizeof err)) goto cl_fail;
    if (!(bi = cl_buffer(C, bytes, in, err, sizeof err))) goto cl_fail;
    if (!(bp = cl_buffer(C, groups * sizeof(float), NULL, err, sizeof err))) goto cl_fail;
    CL_TRY(cl->clSetKernelArg(k, 0, sizeof bi, &bi));
    CL_TRY(cl->clSetKernelArg(k, 1, sizeof bp, &bp));
    CL_TRY(cl->clSetKernelArg(k, 2, sizeof k_per_item, &k_per_item));
    r->cl = cl_time(C, k, 1, g, l, 2, opt.reps);
    if (isnan(r->cl)) {
      snprintf(err, sizeof err, "clEnqueueNDRangeKernel/clFinish failed");
      goto cl_fail;
    }
    CL_TRY(cl_read(C, bp, groups * sizeof(float), part));
    cl_sum = 0;
    for (size_t i = 0; i < groups; ++i) cl_sum += part[i];
    if (!(fabs(cl_sum - host) <= 1e-5 * fabs(host))) {
      snprintf(err, sizeof err, "wrong sum %.9g, host %.9g", cl_sum, host);
      goto cl_fail;
    }
    goto cl_done;
  cl_fail:
    r->cl = NAN;
    side_error(r, "PoCL", err);
  cl_done:
    if (bi) cl->clReleaseMemObject(bi);
    if (bp) cl->clReleaseMemObject(bp);
    if (k) cl->clReleaseKernel(k);
    if (p) cl->clReleaseProgram(p);
  }
  note(r, "GB/s: LightOS %s, PoCL %s", num((double)bytes / (r->lk * 1e6), 1),
       num((double)bytes / (r->cl * 1e6), 1));
  if (!isnan(r->lk) || !isnan(r->cl))
    note(r, "sums checked vs host (rel err LightOS %s, PoCL %s)",
         sci(isnan(r->lk) ? NAN : fabs(lk_sum - host) / host),
         sci(isnan(r->cl) ? NAN : fabs(cl_sum - host) / host));
  free(in);
  free(part);
}

/* ---- d. tiled matmul ---------------------------------------------------- */

static bool matmul_check(const float* A, const float* B, const float* Cm, size_t M, size_t N,
                         size_t K, char* err, size_t cap, double* max_rel) {
  uint64_t saved = rng_state;
  rng_state = 0x1234567ull;
  *max_rel = 0;
  for (int s = 0; s < 256; ++s) {
    size_t i = rng_u32() % M, j = rng_u32() % N;
    double want = 0, mag = 0;
    for (size_t kk = 0; kk < K; ++kk) {
      want += (double)A[i * K + kk] * B[kk * N + j];
      mag += fabs((double)A[i * K + kk] * B[kk * N + j]);
    }
    double rel = fabs(Cm[i * N + j] - want) / (mag > 0 ? mag : 1);
    if (rel > *max_rel) *max_rel = rel;
    if (rel > 1e-4) {
      snprintf(err, cap, "C[%zu][%zu] = %.9g, host %.9g", i, j, (double)Cm[i * N + j], want);
      rng_state = saved;
      return false;
    }
  }
  rng_state = saved;
  return true;
}

static void bench_matmul(lk_side_t* L, cl_side_t* C) {
  const size_t M = 1024, N = 1024, K = 1024;
  const double flops = 2.0 * (double)M * N * K;
  row_t* r = add_row("matmul tiled 16x16", "1024^3 f32", "ms", TGT_RATIO_MIN, 1.5);
  float* A = xmalloc(M * K * sizeof(float));
  float* B = xmalloc(K * N * sizeof(float));
  float* Cm = xmalloc(M * N * sizeof(float));
  for (size_t i = 0; i < M * K; ++i) A[i] = rng_unit() - 0.5f;
  for (size_t i = 0; i < K * N; ++i) B[i] = rng_unit() - 0.5f;
  size_t g[2] = {N, M}, l[2] = {16, 16};
  char err[2600];
  int reps = opt.reps < 5 ? 5 : opt.reps;
  double lk_rel = NAN, cl_rel = NAN;

  if (L->ok) {
    lightos_program_t p = NULL;
    lightos_kernel_t k = NULL;
    lightos_buffer_t ba = NULL, bb = NULL, bc = NULL;
    if (lk_build(L, k_matmul_src, "matmul_tiled", &p, &k, NULL, NULL, err, sizeof err))
      goto lk_fail;
    if (!(ba = lk_buffer(L, M * K * sizeof(float), A, err, sizeof err))) goto lk_fail;
    if (!(bb = lk_buffer(L, K * N * sizeof(float), B, err, sizeof err))) goto lk_fail;
    if (!(bc = lk_buffer(L, M * N * sizeof(float), NULL, err, sizeof err))) goto lk_fail;
    LK_TRY(lightos_kernel_set_arg_buffer(k, 0, ba));
    LK_TRY(lightos_kernel_set_arg_buffer(k, 1, bb));
    LK_TRY(lightos_kernel_set_arg_buffer(k, 2, bc));
    LK_TRY(lightos_kernel_set_arg_u32(k, 3, (uint32_t)M));
    LK_TRY(lightos_kernel_set_arg_u32(k, 4, (uint32_t)N));
    LK_TRY(lightos_kernel_set_arg_u32(k, 5, (uint32_t)K));
    r->lk = lk_time(L, k, 2, g, l, 1, reps);
    if (isnan(r->lk)) {
      snprintf(err, sizeof err, "launch: %s", lk_err());
      goto lk_fail;
    }
    LK_TRY(lightos_buffer_read(bc, 0, M * N * sizeof(float), Cm));
    if (!matmul_check(A, B, Cm, M, N, K, err, sizeof err, &lk_rel)) goto lk_fail;
    goto lk_done;
  fail:
  lk_fail:
    r->lk = NAN;
    side_error(r, "LightOS", err);
  lk_done:
    if (ba) lightos_buffer_release(ba);
    if (bb) lightos_buffer_release(bb);
    if (bc) lightos_buffer_release(bc);
    if (k) lightos_kernel_release(k);
    if (p) lightos_program_release(p);
  }

  if (C->ok) {
    lk_opencl_api_t* cl = &C->api;
    cl_program p = NULL;
    cl_kernel k = NULL;
    cl_mem ba = NULL, bb = NULL, bc = NULL;
    cl_uint m32 = (cl_uint)M, n32 = (cl_uint)N, k32 = (cl_uint)K;
    memset(Cm, 0, M * N * sizeof(float));
    if (cl_build(C, k_matmul_src, "matmul_tiled", &p, &k, NULL, err, sizeof err)) goto cl_fail;
    if (!(ba = cl_buffer(C, M * K * sizeof(float), A, err, sizeof err))) goto cl_fail;
    if (!(bb = cl_buffer(C, K * N * sizeof(float), B, err, sizeof err))) goto cl_fail;
    if (!(bc = cl_buffer(C, M * N * sizeof(float), NULL, err, sizeof err))) goto cl_fail;
    CL_TRY(cl->clSetKernelArg(k, 0, sizeof ba, &ba));
    CL_TRY(cl->clSetKernelArg(k, 1, sizeof bb, &bb));
    CL_TRY(cl->clSetKernelArg(k, 2, sizeof bc, &bc));
    CL_TRY(cl->clSetKernelArg(k, 3, sizeof m32, &m32));
    CL_TRY(cl->clSetKernelArg(k, 4, sizeof n32, &n32));
    CL_TRY(cl->clSetKernelArg(k, 5, sizeof k32, &k32));
    r->cl = cl_time(C, k, 2, g, l, 1, reps);
    if (isnan(r->cl)) {
      snprintf(err, sizeof err, "clEnqueueNDRangeKernel/clFinish failed");
      goto cl_fail;
    }
    CL_TRY(cl_read(C, bc, M * N * sizeof(float), Cm));
    if (!matmul_check(A, B, Cm, M, N, K, err, sizeof err, &cl_rel)) goto cl_fail;
    goto cl_done;
  cl_fail:
    r->cl = NAN;
    side_error(r, "PoCL", err);
  cl_done:
    if (ba) cl->clReleaseMemObject(ba);
    if (bb) cl->clReleaseMemObject(bb);
    if (bc) cl->clReleaseMemObject(bc);
    if (k) cl->clReleaseKernel(k);
    if (p) cl->clReleaseProgram(p);
  }
  note(r, "GFLOP/s: LightOS %s, PoCL %s", num(flops / (r->lk * 1e6), 2),
       num(flops / (r->cl * 1e6), 2));
  if (!isnan(r->lk) || !isnan(r->cl))
    note(r, "256 samples checked (max rel err LightOS %s, PoCL %s)",
         sci(isnan(r->lk) ? NAN : lk_rel), sci(isnan(r->cl) ? NAN : cl_rel));
  free(A);
  free(B);
  free(Cm);
}

/* ---- e. build time ------------------------------------------------------ */

static void bench_build(lk_side_t* L, cl_side_t* C) {
  row_t* rc = add_row("build cold", "matmul src", "ms", TGT_NONE, 0);
  row_t* rh = add_row("build 2nd (cache hit)", "matmul src", "ms", TGT_LK_MAX, 1.0);
  /* Code no cache has seen, so both caches miss on the first build: PoCL
   * keys its cache on the compiled IR, so a comment would not do; a small
   * extra kernel storing a per-run constant does. */
  size_t cap = sizeof k_matmul_src + 256;
  char* src = xmalloc(cap);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  unsigned long nonce = (unsigned long)ts.tv_sec * 1000003ul ^ (unsigned long)ts.tv_nsec ^
                        ((unsigned long)getpid() << 20);
  snprintf(src, cap,
           "%s__kernel void bench_nonce(__global ulong* p) { p[0] = %luul; }\n",
           k_matmul_src, nonce);
  char err[2600];

  if (L->ok) {
    lightos_program_t p1 = NULL, p2 = NULL;
    bool hit1 = true, hit2 = false;
    double t1 = NAN, t2 = NAN;
    double more[5];
    int nmore = 0;
    if (lk_build(L, src, NULL, &p1, NULL, &t1, &hit1, err, sizeof err)) goto lk_fail;
    if (lk_build(L, src, NULL, &p2, NULL, &t2, &hit2, err, sizeof err)) goto lk_fail;
    for (; nmore < 5; ++nmore) {
      lightos_program_t p3 = NULL;
      bool hit3 = false;
      if (lk_build(L, src, NULL, &p3, NULL, &more[nmore], &hit3, err, sizeof err))
        goto lk_fail;
      lightos_program_release(p3);
    }
    rc->lk = t1;
    rh->lk = t2;
    if (hit1) note(rc, "LightOS cold build came from the cache?!");
    if (!hit2) {
      snprintf(err, sizeof err, "second build did not come from the cache (from_cache false)");
      goto lk_fail;
    }
    note(rh, "LightOS from_cache=true; median of 5 more hits %.3f ms", median(more, 5));
    goto lk_done;
  lk_fail:
    side_error(rh, "LightOS", err);
  lk_done:
    if (p1) lightos_program_release(p1);
    if (p2) lightos_program_release(p2);
  }

  if (C->ok) {
    cl_program p1 = NULL, p2 = NULL;
    cl_kernel k1 = NULL;
    double t1 = NAN, t2 = NAN, kt = NAN;
    if (cl_build(C, src, NULL, &p1, NULL, &t1, err, sizeof err)) goto cl_fail;
    /* PoCL generates the machine code per kernel and local size at the
     * first launch; time that part separately. */
    {
      cl_int e;
      double t0 = now_ms();
      k1 = C->api.clCreateKernel(p1, "matmul_tiled", &e);
      if (!k1) {
        snprintf(err, sizeof err, "clCreateKernel: %s", lk_opencl_error_name(e));
        goto cl_fail;
      }
      float zero[256] = {0};
      cl_mem m = cl_buffer(C, sizeof zero, zero, err, sizeof err);
      if (!m) goto cl_fail;
      cl_uint sixteen = 16;
      for (cl_uint i = 0; i < 3; ++i) C->api.clSetKernelArg(k1, i, sizeof m, &m);
      for (cl_uint i = 3; i < 6; ++i) C->api.clSetKernelArg(k1, i, sizeof sixteen, &sixteen);
      size_t g[2] = {16, 16}, l[2] = {16, 16};
      double lt = cl_launch(C, k1, 2, g, l);
      C->api.clReleaseMemObject(m);
      if (isnan(lt)) {
        snprintf(err, sizeof err, "first launch failed");
        goto cl_fail;
      }
      kt = now_ms() - t0;
    }
    if (cl_build(C, src, NULL, &p2, NULL, &t2, err, sizeof err)) goto cl_fail;
    rc->cl = t1;
    rh->cl = t2;
    note(rc, "PoCL compiles kernel code at first launch: +%.1f ms (create kernel + 1st 16x16 launch)",
         kt);
    note(rh, "PoCL 2nd = clBuildProgram again (its own kernel cache)");
    goto cl_done;
  cl_fail:
    side_error(rh, "PoCL", err);
  cl_done:
    if (k1) C->api.clReleaseKernel(k1);
    if (p1) C->api.clReleaseProgram(p1);
    if (p2) C->api.clReleaseProgram(p2);
  }
  free(src);
}

/* ---- main ---------------------------------------------------------------- */

static char cache_dir[256];

static int rm_entry(const char* path, const struct stat* sb, int type, struct FTW* ftw) {
  (void)sb;
  (void)type;
  (void)ftw;
  remove(path);
  return 0;
}

static void usage(FILE* f) {
  fprintf(f,
          "usage: bench_kernels [--markdown FILE] [--reps N] [--iters N] [--only NAME]...\n"
          "                     [--no-pocl] [--no-lightos] [--saxpy-local N] [--reduce-k K]\n"
          "                     [--keep-cache]\n"
          "  NAME: saxpy, latency, reduce, reduce-acc, matmul, build\n");
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    bool has_val = i + 1 < argc;
    if (!strcmp(a, "--markdown") && has_val) {
      opt.markdown = argv[++i];
    } else if (!strcmp(a, "--reps") && has_val) {
      opt.reps = atoi(argv[++i]);
      if (opt.reps < 1) opt.reps = 1;
    } else if (!strcmp(a, "--iters") && has_val) {
      opt.iters = atoi(argv[++i]);
      if (opt.iters < 10) opt.iters = 10;
    } else if (!strcmp(a, "--saxpy-local") && has_val) {
      opt.saxpy_local = (size_t)strtoul(argv[++i], NULL, 10);
    } else if (!strcmp(a, "--only") && has_val) {
      if (opt.only_count < 8) opt.only[opt.only_count++] = argv[++i];
    } else if (!strcmp(a, "--no-pocl")) {
      opt.no_pocl = true;
    } else if (!strcmp(a, "--reduce-k") && has_val) {
      long v = atol(argv[++i]);
      if (v < 1 || v > 65536 || (16l << 20) % (256 * v) != 0) {
        fprintf(stderr, "bench_kernels: --reduce-k must be a power of two in 1..65536\n");
        return 2;
      }
      opt.reduce_k = (uint32_t)v;
    } else if (!strcmp(a, "--keep-cache")) {
      opt.keep_cache = true;
    } else if (!strcmp(a, "--no-lightos")) {
      opt.no_lightos = true;
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }

  /* A fresh kernel cache for this run (the directory is resolved once per
   * process, so this must precede every LightOS call): the first build of
   * each kernel is cold, later builds of the same source hit. */
  const char* tmp = getenv("TMPDIR");
  snprintf(cache_dir, sizeof cache_dir, "%s/lightos-bench-cache-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(cache_dir)) {
    fprintf(stderr, "bench_kernels: mkdtemp(%s): %s\n", cache_dir, strerror(errno));
    return 2;
  }
  setenv("LIGHTOS_CACHE_DIR", cache_dir, 1);
  unsetenv("LIGHTOS_CACHE");

  lk_side_t L;
  cl_side_t C;
  memset(&L, 0, sizeof L);
  memset(&C, 0, sizeof C);
  if (opt.no_lightos)
    snprintf(L.why, sizeof L.why, "disabled by --no-lightos");
  else
    lk_side_open(&L);
  if (opt.no_pocl)
    snprintf(C.why, sizeof C.why, "disabled by --no-pocl");
  else
    cl_side_open(&C);

  char load[64] = "?";
  FILE* lf = fopen("/proc/loadavg", "r");
  if (lf) {
    if (!fgets(load, sizeof load, lf)) snprintf(load, sizeof load, "?");
    fclose(lf);
    char* nl = strchr(load, '\n');
    if (nl) *nl = '\0';
  }
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  char hdr[3][1024];
  if (L.ok)
    snprintf(hdr[0], sizeof hdr[0], "LightOS %s, device cpu: %s (%u compute units)",
             lightos_version_string(), L.device, L.compute_units);
  else
    snprintf(hdr[0], sizeof hdr[0], "LightOS: not run: %s", L.why);
  if (C.ok)
    snprintf(hdr[1], sizeof hdr[1], "PoCL: platform \"%s\" (%s), device %s (%u compute units)",
             C.platform_name, C.version, C.device_name, C.compute_units);
  else
    snprintf(hdr[1], sizeof hdr[1], "PoCL: not run: %s", C.why);
  snprintf(hdr[2], sizeof hdr[2], "host: %ld CPUs online, loadavg %s; median of %d reps", ncpu,
           load, opt.reps);
  for (int i = 0; i < 3; ++i) printf("%s\n", hdr[i]);
  printf("\n");
  fflush(stdout);
  if (!L.ok && !opt.no_lightos) failures++;

  if (L.ok || C.ok) {
    if (selected("saxpy")) bench_saxpy(&L, &C);
    if (selected("latency")) bench_latency(&L, &C);
    /* The target row is the reduction written as docs/kernel-language.md
     * recommends (per-item accumulator, one item block per step); the
     * naive form (a loop inside one item block) is shown beside it. */
    if (selected("reduce-acc"))
      bench_reduce(&L, &C, k_reduce_acc_src, "reduce_sum_acc",
                   "reduce (local tree, per-item accumulator)", TGT_RATIO_MIN);
    if (selected("reduce"))
      bench_reduce(&L, &C, k_reduce_src, "reduce_sum", "reduce (local tree, loop in one block)",
                   TGT_NONE);
    if (selected("matmul")) bench_matmul(&L, &C);
    if (selected("build")) bench_build(&L, &C);
  }

  print_table(stdout, false);
  printf("\nratio = PoCL time / LightOS time (> 1: LightOS faster)\n");
  if (opt.markdown) {
    FILE* f = fopen(opt.markdown, "w");
    if (!f) {
      fprintf(stderr, "bench_kernels: cannot write %s: %s\n", opt.markdown, strerror(errno));
      failures++;
    } else {
      fprintf(f, "# bench_kernels: LightOS CPU backend vs PoCL\n\n");
      for (int i = 0; i < 3; ++i) fprintf(f, "- %s\n", hdr[i]);
      fprintf(f, "\nratio = PoCL time / LightOS time (> 1: LightOS faster)\n\n");
      print_table(f, true);
      fclose(f);
    }
  }

  cl_side_close(&C);
  lk_side_close(&L);
  if (opt.keep_cache)
    fprintf(stderr, "bench_kernels: kernel cache kept in %s\n", cache_dir);
  else
    nftw(cache_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  return failures ? 1 : 0;
}
