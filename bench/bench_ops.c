/* bench_ops: tensor ops on the LightOS CPU device beside their baselines,
 * in one process.
 *
 *   bench_ops [--markdown FILE] [--reps N] [--max-n N] [--only gemm|softmax|layernorm]...
 *
 * GEMM f32, n x n x n for n = 256 .. 4096 (--max-n to stop earlier):
 *   - lightos_op_gemm on the CPU device (native path: OpenBLAS, loaded by
 *     LightOS) against cblas_sgemm called directly (libopenblas.so.0 opened
 *     here with dlopen: the same library instance, the same threads);
 *     target: LightOS >= 95% of direct OpenBLAS for n >= 1024;
 *   - the portable GEMM kernel (a deterministic context) beside the same
 *     baseline (no target: a fixed-order kernel against a tuned BLAS).
 *   GFLOP/s = 2 n^3 / time; time = enqueue .. lightos_queue_finish.
 * softmax (last dim) and layernorm (with weight and bias) on [rows, cols]
 * f32, default and deterministic contexts: GB/s counting the bytes read
 * and written once (input + output), against memcpy of the same bytes (the
 * roofline: its GB/s counts source + destination).
 *
 * Timing: after a warm-up, --reps repetitions (default 11; 7 for n = 2048,
 * 5 for n = 4096), LightOS and the baseline interleaved; the median.  The
 * ratio column is LightOS / baseline throughput (for GEMM the median of the
 * ratios of back-to-back pairs, which a busy machine disturbs less).  A
 * missed target is marked MISSED; the exit status is 0 unless a result was
 * wrong or a call failed.
 */
#define _GNU_SOURCE 1

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lightos/lightos.h"

/* ---- utilities ---------------------------------------------------------- */

#define BENCH_NAME "bench_ops"
#include "bench_util.h"

/* Uniform in [-1, 1). */
static float rng_sym(void) { return rng_unit() * 2.0f - 1.0f; }

static int failures;

#define CHECK(call)                                                                        \
  do {                                                                                     \
    lightos_status_t s_ = (call);                                                          \
    if (s_) {                                                                              \
      fprintf(stderr, "bench_ops: %s failed: %s (%s)\n", #call, lightos_status_string(s_), \
              lightos_last_error()->message);                                              \
      failures++;                                                                          \
      goto fail;                                                                           \
    }                                                                                      \
  } while (0)

/* ---- the table ---------------------------------------------------------- */

typedef struct row {
  char bench[64];
  char size[32];
  const char* unit; /* of lk / base */
  const char* base_name;
  double lk, base; /* throughput; NAN: not measured */
  double ratio;    /* lk/base when measured pairwise; NAN: lk / base */
  double target;   /* minimum ratio lk/base; 0: none */
  char notes[200];
} row_t;

#define MAX_ROWS 32
static row_t rows[MAX_ROWS];
static int nrows;

static row_t* add_row(const char* bench, const char* size, const char* unit, const char* base_name,
                      double target) {
  row_t* r = &rows[nrows < MAX_ROWS ? nrows++ : MAX_ROWS - 1];
  memset(r, 0, sizeof *r);
  snprintf(r->bench, sizeof r->bench, "%s", bench);
  snprintf(r->size, sizeof r->size, "%s", size);
  r->unit = unit;
  r->base_name = base_name;
  r->lk = r->base = r->ratio = NAN;
  r->target = target;
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

static void cell(char* b, size_t cap, double v, const char* unit) {
  if (isnan(v))
    snprintf(b, cap, "-");
  else
    snprintf(b, cap, "%.1f %s", v, unit);
}

static void print_table(FILE* f, bool markdown) {
  if (markdown) {
    fprintf(f, "| benchmark | size | LightOS | baseline | ratio | target | status | notes |\n");
    fprintf(f, "|---|---|--:|--:|--:|---|---|---|\n");
  } else {
    fprintf(f, "%-44s %-18s %14s %26s %7s %8s %7s  %s\n", "benchmark", "size", "LightOS",
            "baseline", "ratio", "target", "status", "notes");
  }
  for (int i = 0; i < nrows; ++i) {
    const row_t* r = &rows[i];
    char lk[32], base[64], ratio[16], tgt[16], st[16];
    cell(lk, sizeof lk, r->lk, r->unit);
    char bv[32];
    cell(bv, sizeof bv, r->base, r->unit);
    snprintf(base, sizeof base, "%s (%s)", bv, r->base_name);
    double q = isnan(r->ratio) ? r->lk / r->base : r->ratio;
    if (isnan(q) || isinf(q))
      snprintf(ratio, sizeof ratio, "-");
    else
      snprintf(ratio, sizeof ratio, "%.3f", q);
    if (r->target > 0) {
      snprintf(tgt, sizeof tgt, ">= %.2f", r->target);
      snprintf(st, sizeof st, "%s", isnan(q) ? "n/a" : q >= r->target ? "met" : "MISSED");
    } else {
      snprintf(tgt, sizeof tgt, "-");
      st[0] = '\0';
    }
    if (markdown)
      fprintf(f, "| %s | %s | %s | %s | %s | %s | %s%s%s | %s |\n", r->bench, r->size, lk, base,
              ratio, tgt, strcmp(st, "MISSED") ? "" : "**", st, strcmp(st, "MISSED") ? "" : "**",
              r->notes);
    else
      fprintf(f, "%-44s %-18s %14s %26s %7s %8s %7s  %s\n", r->bench, r->size, lk, base, ratio, tgt,
              st, r->notes);
  }
}

/* ---- OpenBLAS, called directly ------------------------------------------- */

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                         const float* a, int lda, const float* b, int ldb, float beta, float* c,
                         int ldc);
typedef int (*get_threads_fn)(void);
static sgemm_fn direct_sgemm;
static get_threads_fn direct_threads;
static const char* blas_name;

static void load_blas(void) {
  static const char* const names[] = {"libopenblas.so.0", "libopenblas.so", "libblas.so.3"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
    void* h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) continue;
    void* f = dlsym(h, "cblas_sgemm");
    if (f) {
      memcpy(&direct_sgemm, &f, sizeof f);
      void* t = dlsym(h, "openblas_get_num_threads");
      if (t) memcpy(&direct_threads, &t, sizeof t);
      blas_name = names[i];
      return;
    }
    dlclose(h);
  }
}

/* ---- GEMM --------------------------------------------------------------- */

typedef struct opts {
  const char* markdown;
  int reps;
  int max_n;
  bool only_set, do_gemm, do_softmax, do_layernorm;
} opts_t;

static int reps_for(const opts_t* o, int n) {
  if (o->reps > 0) return o->reps;
  return n >= 4096 ? 5 : n >= 2048 ? 7 : 11;
}

/* Checks a sample of C against a float64 host product. */
static bool gemm_check(const float* a, const float* b, const float* c, int n, const char* what) {
  for (int s = 0; s < 64; ++s) {
    int i = (s * 7919) % n, j = (s * 104729 + 13) % n;
    double ref = 0, mag = 0;
    for (int k = 0; k < n; ++k) {
      ref += (double)a[(size_t)i * n + k] * b[(size_t)k * n + j];
      mag += fabs((double)a[(size_t)i * n + k] * b[(size_t)k * n + j]);
    }
    double got = c[(size_t)i * n + j];
    if (!(fabs(got - ref) <= 1e-5 * sqrt((double)n) * mag + 1e-30)) {
      fprintf(stderr, "bench_ops: %s n=%d: C[%d][%d] = %.9g, expected %.9g\n", what, n, i, j, got,
              ref);
      return false;
    }
  }
  return true;
}

/* Times one lightos_op_gemm on q (ms). */
static double time_lk_gemm(lightos_queue_t q, lightos_tensor_t* a, lightos_tensor_t* b,
                           lightos_tensor_t* c) {
  double t0 = now_ms();
  if (lightos_op_gemm(q, false, false, 1.0, a, b, 0.0, c) || lightos_queue_finish(q)) {
    fprintf(stderr, "bench_ops: gemm failed: %s\n", lightos_last_error()->message);
    failures++;
    return NAN;
  }
  return now_ms() - t0;
}

static void bench_gemm(const opts_t* o, lightos_context_t ctx, lightos_context_t det_ctx) {
  static const int sizes[] = {256, 512, 1024, 2048, 4096};
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; ++si) {
    const int n = sizes[si];
    if (n > o->max_n) break;
    const size_t bytes = (size_t)n * n * sizeof(float);
    float *ha = xmalloc(bytes), *hb = xmalloc(bytes), *hc = xmalloc(bytes);
    for (size_t i = 0; i < (size_t)n * n; ++i) {
      ha[i] = rng_sym();
      hb[i] = rng_sym();
    }
    char size[32];
    snprintf(size, sizeof size, "%dx%dx%d", n, n, n);
    const double flop = 2.0 * n * (double)n * n;
    const int reps = reps_for(o, n);
    row_t* rn = add_row("gemm f32, native path (LightOS -> OpenBLAS)", size, "GFLOP/s",
                        "cblas_sgemm direct", n >= 1024 ? 0.95 : 0);
    row_t* rp = add_row("gemm f32, portable kernel (deterministic)", size, "GFLOP/s",
                        "cblas_sgemm direct", 0);
    lightos_context_t ctxs[2] = {ctx, det_ctx};
    lightos_tensor_t t[2][3];
    memset(t, 0, sizeof t);
    lightos_queue_t q[2];
    const int64_t shape[2] = {n, n};
    for (int m = 0; m < 2; ++m) {
      CHECK(lightos_context_default_queue(ctxs[m], &q[m]));
      for (int j = 0; j < 3; ++j)
        CHECK(lightos_tensor_alloc(ctxs[m], LIGHTOS_DTYPE_F32, 2, shape, &t[m][j]));
      CHECK(lightos_buffer_write(t[m][0].buffer, 0, bytes, ha));
      CHECK(lightos_buffer_write(t[m][1].buffer, 0, bytes, hb));
    }
    {
      double* tl = xmalloc(sizeof(double) * (size_t)reps);
      double* td = xmalloc(sizeof(double) * (size_t)reps);
      double* tp = xmalloc(sizeof(double) * (size_t)reps);
      /* warm-up: library threads, the kernel's build */
      if (direct_sgemm) direct_sgemm(101, 111, 111, n, n, n, 1.0f, ha, n, hb, n, 0.0f, hc, n);
      time_lk_gemm(q[0], &t[0][0], &t[0][1], &t[0][2]);
      time_lk_gemm(q[1], &t[1][0], &t[1][1], &t[1][2]);
      for (int r = 0; r < reps; ++r) {
        double t0 = now_ms();
        if (direct_sgemm) direct_sgemm(101, 111, 111, n, n, n, 1.0f, ha, n, hb, n, 0.0f, hc, n);
        td[r] = now_ms() - t0;
        tl[r] = time_lk_gemm(q[0], &t[0][0], &t[0][1], &t[0][2]);
        tp[r] = time_lk_gemm(q[1], &t[1][0], &t[1][1], &t[1][2]);
      }
      /* The ratio is the median of the per-repetition ratios: each pair
       * ran back to back, so a change in the machine's load hits both. */
      double* pr = xmalloc(sizeof(double) * (size_t)reps);
      for (int r = 0; r < reps; ++r) pr[r] = td[r] / tl[r];
      rn->ratio = direct_sgemm ? median(pr, reps) : NAN;
      for (int r = 0; r < reps; ++r) pr[r] = td[r] / tp[r];
      rp->ratio = direct_sgemm ? median(pr, reps) : NAN;
      free(pr);
      double md = median(td, reps), ml = median(tl, reps), mp = median(tp, reps);
      if (direct_sgemm) {
        rn->base = rp->base = flop / md / 1e6;
        if (!gemm_check(ha, hb, hc, n, "direct OpenBLAS")) failures++;
      }
      rn->lk = flop / ml / 1e6;
      rp->lk = flop / mp / 1e6;
      note(rn, "medians of %d; ratio: median of the paired ratios", reps);
      note(rp, "medians of %d; ratio: median of the paired ratios", reps);
      float* out = xmalloc(bytes);
      for (int m = 0; m < 2; ++m) {
        if (lightos_buffer_read(t[m][2].buffer, 0, bytes, out) ||
            !gemm_check(ha, hb, out, n, m ? "portable kernel" : "LightOS native"))
          failures++;
      }
      free(out);
      free(tl);
      free(td);
      free(tp);
    }
  fail:
    for (int m = 0; m < 2; ++m)
      for (int j = 0; j < 3; ++j)
        if (t[m][j].buffer) lightos_tensor_free(&t[m][j]);
    free(ha);
    free(hb);
    free(hc);
    fflush(stdout);
  }
}

/* ---- softmax / layernorm ------------------------------------------------- */

typedef enum { OP_SOFTMAX, OP_LAYERNORM } rowop_t;

/* Median ms of memcpy of `bytes`. */
static double time_memcpy(size_t bytes, int reps) {
  char* src = xmalloc(bytes);
  char* dst = xmalloc(bytes);
  memset(src, 1, bytes);
  memset(dst, 2, bytes);
  double* t = xmalloc(sizeof(double) * (size_t)reps);
  memcpy(dst, src, bytes);
  for (int r = 0; r < reps; ++r) {
    double t0 = now_ms();
    memcpy(dst, src, bytes);
    t[r] = now_ms() - t0;
  }
  double m = median(t, reps);
  free(t);
  free(src);
  free(dst);
  return m;
}

static void bench_rowop(const opts_t* o, rowop_t op, lightos_context_t ctx, bool det, int64_t rows_,
                        int64_t cols) {
  const int reps = o->reps > 0 ? o->reps : 15;
  const size_t bytes = (size_t)(rows_ * cols) * sizeof(float);
  char size[32], name[64];
  snprintf(size, sizeof size, "[%lld, %lld]", (long long)rows_, (long long)cols);
  snprintf(name, sizeof name, "%s f32%s", op == OP_SOFTMAX ? "softmax (last dim)" : "layernorm",
           det ? ", deterministic" : "");
  row_t* r = add_row(name, size, "GB/s", "memcpy", 0);
  lightos_queue_t q;
  lightos_tensor_t x = {0}, y = {0}, w = {0}, b = {0};
  const int64_t shape[2] = {rows_, cols}, wshape[1] = {cols};
  float* hx = xmalloc(bytes);
  for (size_t i = 0; i < (size_t)(rows_ * cols); ++i) hx[i] = 4.0f * rng_sym();
  double* t = xmalloc(sizeof(double) * (size_t)reps);
  CHECK(lightos_context_default_queue(ctx, &q));
  CHECK(lightos_tensor_alloc(ctx, LIGHTOS_DTYPE_F32, 2, shape, &x));
  CHECK(lightos_tensor_alloc(ctx, LIGHTOS_DTYPE_F32, 2, shape, &y));
  CHECK(lightos_buffer_write(x.buffer, 0, bytes, hx));
  if (op == OP_LAYERNORM) {
    CHECK(lightos_tensor_alloc(ctx, LIGHTOS_DTYPE_F32, 1, wshape, &w));
    CHECK(lightos_tensor_alloc(ctx, LIGHTOS_DTYPE_F32, 1, wshape, &b));
    CHECK(lightos_op_fill(q, &w, 1.0));
    CHECK(lightos_op_fill(q, &b, 0.0));
  }
  for (int rep = -1; rep < reps; ++rep) { /* -1: warm-up (build) */
    double t0 = now_ms();
    if (op == OP_SOFTMAX)
      CHECK(lightos_op_softmax(q, &x, 1, false, &y));
    else
      CHECK(lightos_op_layernorm(q, &x, &w, &b, 1e-5, &y, NULL, NULL));
    CHECK(lightos_queue_finish(q));
    if (rep >= 0) t[rep] = now_ms() - t0;
  }
  {
    /* Check one row against the host. */
    float* hy = xmalloc(bytes);
    CHECK(lightos_buffer_read(y.buffer, 0, bytes, hy));
    int64_t row = rows_ / 2;
    const float* xr = hx + row * cols;
    const float* yr = hy + row * cols;
    double mx = -INFINITY, sum = 0, mean = 0, var = 0;
    for (int64_t j = 0; j < cols; ++j) mx = xr[j] > mx ? xr[j] : mx;
    for (int64_t j = 0; j < cols; ++j) sum += exp(xr[j] - mx);
    for (int64_t j = 0; j < cols; ++j) mean += xr[j];
    mean /= (double)cols;
    for (int64_t j = 0; j < cols; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    var /= (double)cols;
    for (int64_t j = 0; j < cols; ++j) {
      double ref = op == OP_SOFTMAX ? exp(xr[j] - mx) / sum : (xr[j] - mean) / sqrt(var + 1e-5);
      if (!(fabs(yr[j] - ref) <= 1e-4 * (fabs(ref) + 1e-3))) {
        fprintf(stderr, "bench_ops: %s: y[%lld][%lld] = %.7g, expected %.7g\n", name,
                (long long)row, (long long)j, yr[j], ref);
        failures++;
        break;
      }
    }
    free(hy);
  }
  {
    double ml = median(t, reps);
    double mc = time_memcpy(bytes, reps);
    r->lk = 2.0 * (double)bytes / ml / 1e6;
    r->base = 2.0 * (double)bytes / mc / 1e6;
    note(r, "%.3f ms vs %.3f ms, median of %d", ml, mc, reps);
  }
fail:
  if (x.buffer) lightos_tensor_free(&x);
  if (y.buffer) lightos_tensor_free(&y);
  if (w.buffer) lightos_tensor_free(&w);
  if (b.buffer) lightos_tensor_free(&b);
  free(t);
  free(hx);
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char** argv) {
  opts_t o = {NULL, 0, 4096, false, true, true, true};
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    bool has_val = i + 1 < argc;
    if (!strcmp(a, "--markdown") && has_val) {
      o.markdown = argv[++i];
    } else if (!strcmp(a, "--reps") && has_val) {
      o.reps = atoi(argv[++i]);
    } else if (!strcmp(a, "--max-n") && has_val) {
      o.max_n = atoi(argv[++i]);
    } else if (!strcmp(a, "--only") && has_val) {
      const char* w = argv[++i];
      if (!o.only_set) o.do_gemm = o.do_softmax = o.do_layernorm = false;
      o.only_set = true;
      if (!strcmp(w, "gemm"))
        o.do_gemm = true;
      else if (!strcmp(w, "softmax"))
        o.do_softmax = true;
      else if (!strcmp(w, "layernorm"))
        o.do_layernorm = true;
      else {
        fprintf(stderr, "bench_ops: unknown benchmark '%s' (gemm, softmax, layernorm)\n", w);
        return 2;
      }
    } else {
      fprintf(stderr,
              "usage: bench_ops [--markdown FILE] [--reps N] [--max-n N] "
              "[--only gemm|softmax|layernorm]...\n");
      return 2;
    }
  }
  lightos_device_t dev;
  lightos_context_t ctx = NULL, det = NULL;
  lightos_device_info_t info;
  if (lightos_device_from_uri("cpu:0", &dev) || lightos_device_get_info(dev, &info) ||
      lightos_context_create_for_device(dev, 0, &ctx) ||
      lightos_context_create_for_device(dev, LIGHTOS_CONTEXT_DETERMINISTIC, &det)) {
    fprintf(stderr, "bench_ops: cpu:0: %s\n", lightos_last_error()->message);
    return 1;
  }
  load_blas();
  printf("device: %s (%s), %u threads; OpenBLAS: %s", info.uri, info.name, info.compute_units,
         blas_name ? blas_name : "not found");
  if (direct_threads) printf(" (%d threads)", direct_threads());
  printf("\n");
  fflush(stdout);
  double t_start = now_ms();
  if (o.do_gemm) bench_gemm(&o, ctx, det);
  if (o.do_softmax) {
    bench_rowop(&o, OP_SOFTMAX, ctx, false, 4096, 1024);
    bench_rowop(&o, OP_SOFTMAX, det, true, 4096, 1024);
    bench_rowop(&o, OP_SOFTMAX, ctx, false, 256, 16384);
  }
  if (o.do_layernorm) {
    bench_rowop(&o, OP_LAYERNORM, ctx, false, 4096, 1024);
    bench_rowop(&o, OP_LAYERNORM, det, true, 4096, 1024);
    bench_rowop(&o, OP_LAYERNORM, ctx, false, 256, 16384);
  }
  if (!blas_name)
    for (int i = 0; i < nrows; ++i)
      if (strstr(rows[i].bench, "gemm")) note(&rows[i], "OpenBLAS not installed: no baseline");
  print_table(stdout, false);
  printf("total %.1f s\n", (now_ms() - t_start) / 1e3);
  if (o.markdown) {
    FILE* f = fopen(o.markdown, "w");
    if (!f) {
      fprintf(stderr, "bench_ops: cannot write %s: %s\n", o.markdown, strerror(errno));
      failures++;
    } else {
      print_table(f, true);
      fclose(f);
    }
  }
  lightos_context_release(det);
  lightos_context_release(ctx);
  return failures ? 1 : 0;
}
