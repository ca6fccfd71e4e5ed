/* bench_gpu: LightOS on an NVIDIA GPU (the CUDA backend) beside the baseline
 * of each benchmark, in one process, on the same card.
 *
 *   bench_gpu [--markdown FILE] [--reps N] [--only NAME]... [--device URI]
 *             [--opencl URI] [--max-n N] [--copy-mib N] [--saxpy-m N]
 *             [--matmul-n N] [--launches N] [--iters N]
 *   bench_gpu --check-nvrtc [ARCH]
 *
 * Benchmarks (NAME for --only):
 *   dispatch  an empty kernel (one buffer argument, one block of 256):
 *             the host cost of one launch (--launches launches back to back
 *             without waiting, then one finish, untimed), and the round trip
 *             of one launch + wait.  LightOS (lightos_enqueue_kernel,
 *             lightos_queue_finish) against cuLaunchKernel (+
 *             cuStreamSynchronize) on a cubin NVRTC builds here at run time.
 *             Target: LightOS at most 10% slower (ratio >= 0.91).  A third
 *             row (a diagnostic, no target) sets the same LightOS batches
 *             against a raw kernel with LightOS's parameter list (the
 *             pointer and the hidden 56-byte range).
 *   gemm      lightos_op_gemm (native path: cuBLAS, loaded by LightOS)
 *             against cublasGemmEx called directly (the same library, the
 *             same math mode), f32 and bf16 (f32 accumulation), n x n x n for
 *             n = 1024, 4096, 8192.  Target >= 0.98 at 4096 and 8192.
 *   sgemm     the portable GEMM kernel (lightos_op_gemm in a
 *             LIGHTOS_CONTEXT_DETERMINISTIC context) against cuBLAS FP32 at
 *             the same sizes.  Target >= 0.60 (goal 0.80).  Its result is
 *             compared with cuBLAS's (relative Frobenius error).
 *   copy      host-to-device and device-to-host (pageable and pinned host
 *             memory) and device-to-device, --copy-mib MiB (default 256):
 *             lightos_enqueue_write/read/copy against cuMemcpy*Async.
 *             Target >= 0.95.
 *   opencl    portable kernels from bench_kernels.c (the same text) through
 *             the public API on the CUDA device and on the OpenCL view of
 *             the same card (NVIDIA's OpenCL; the device with the same PCI
 *             bus id or name, or --opencl URI): saxpy on --saxpy-m M floats
 *             (default 256M), the local-memory reductions over the same
 *             floats, the 16x16 tiled matmul at --matmul-n (default 4096).
 *             ratio = CUDA time / OpenCL time; target >= 0.90.
 *
 * Timing: wall clock (CLOCK_MONOTONIC) around a batch of operations and the
 * wait for them (lightos_queue_finish / cuStreamSynchronize), per
 * operation; batches of the two sides interleaved, after warm-up; the
 * median of --reps batches (default 7).  Inputs are random (not zero).
 * ratio = baseline time / LightOS time (> 1: LightOS faster).
 *
 * A missed target is marked MISSED; the exit status is 0 unless a result
 * was wrong or a call failed.  Without a CUDA device the program says why
 * and exits 0.  With --device naming a non-CUDA device (e.g. cpu:0) the
 * LightOS side of every benchmark runs without baselines (a test of this
 * program); --check-nvrtc only builds the raw-launch kernel with NVRTC
 * (default sm_90), which needs no GPU.
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/util.h"
#include "hal/cuda/cuda_backend.h"
#include "hal/cuda/cuda_blas.h"
#include "lightos/lightos.h"

/* ---- Kernel sources ------------------------------------------------------- */

/* The raw baseline's empty kernel (CUDA C++, built with NVRTC), and a
 * diagnostic twin with the parameters of LightOS's generated kernel: the
 * pointer and the hidden 56-byte range (lk_cu_range_t, prelude_cuda.h). */
static const char k_raw_empty_src[] =
    "struct lk_bench_range { unsigned long gs[3], go[3]; unsigned int wd, pad; };\n"
    "extern \"C\" __global__ void lk_empty(int* p) { }\n"
    "extern \"C\" __global__ void lk_empty_r(int* p, const lk_bench_range r) { }\n";

/* The same kernel in the portable language. */
static const char k_empty_src[] = "__kernel void lk_empty(__global int* p) { }\n";

/* saxpy, the reductions and the tiled matmul: the same text as bench_kernels. */
#include "bench_kernel_sources.h"

/* ---- Small utilities ------------------------------------------------------- */

#define BENCH_NAME "bench_gpu"
#include "bench_util.h"

static uint16_t f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even (no NaNs here) */
  return (uint16_t)(u >> 16);
}

static float bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static const char* lk_err(void) {
  const lightos_error_info_t* e = lightos_last_error();
  static _Thread_local char buf[700];
  snprintf(buf, sizeof buf, "%s: %s", lightos_status_string(e->status), e->message);
  return buf;
}

/* The last failure inside a timed function (its message). */
static char g_fail[800];

static int failures;

/* ---- Options -------------------------------------------------------------- */

typedef struct opts {
  const char* markdown;
  const char* device;
  const char* opencl;
  int reps;
  int max_n;
  int copy_mib;
  int saxpy_m;
  int matmul_n;
  int launches;
  int iters;
  const char* only[8];
  int only_count;
} opts_t;

static opts_t opt = {NULL, "cuda:0", NULL, 7, 8192, 256, 256, 4096, 500, 2000, {NULL}, 0};

static bool selected(const char* name) {
  if (opt.only_count == 0) return true;
  for (int i = 0; i < opt.only_count; ++i)
    if (!strcmp(opt.only[i], name)) return true;
  return false;
}

/* ---- The table ------------------------------------------------------------- */

typedef struct row {
  char bench[72];
  char size[32];
  char base_name[40];
  double lk_ms, base_ms;   /* per operation; NAN: not measured */
  double work;             /* bytes or flops per operation (0: none) */
  const char* work_unit;   /* "GB/s", "TFLOP/s" or NULL */
  double target, goal;     /* minimum ratio base/lk (0: none); goal (0: none) */
  char notes[480];
} row_t;

#define MAX_ROWS 48
static row_t rows[MAX_ROWS];
static int nrows;

static row_t* add_row(const char* bench, const char* size, const char* base_name, double target) {
  row_t* r = &rows[nrows < MAX_ROWS ? nrows++ : MAX_ROWS - 1];
  memset(r, 0, sizeof *r);
  snprintf(r->bench, sizeof r->bench, "%s", bench);
  snprintf(r->size, sizeof r->size, "%s", size);
  snprintf(r->base_name, sizeof r->base_name, "%s", base_name);
  r->lk_ms = r->base_ms = NAN;
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

/* A failure: counted, printed, and noted in the row. */
static void row_error(row_t* r, const char* side, const char* msg) {
  fprintf(stderr, "bench_gpu: %s [%s]: %s: %s\n", r->bench, r->size, side, msg);
  char first[160];
  snprintf(first, sizeof first, "%s", msg);
  char* nl = strchr(first, '\n');
  if (nl) *nl = '\0';
  note(r, "%s ERROR: %s", side, first);
  failures++;
}

static void set_work(row_t* r, double work, const char* unit) {
  r->work = work;
  r->work_unit = unit;
}

static double rate(const row_t* r, double ms) {
  if (!r->work_unit || isnan(ms) || ms <= 0) return NAN;
  return !strcmp(r->work_unit, "TFLOP/s") ? r->work / (ms * 1e9) : r->work / (ms * 1e6);
}

static void cell(char* b, size_t cap, const row_t* r, double ms) {
  if (isnan(ms)) {
    snprintf(b, cap, "-");
    return;
  }
  char t[32];
  if (ms < 1.0)
    snprintf(t, sizeof t, "%.2f us", ms * 1e3);
  else if (ms < 1000.0)
    snprintf(t, sizeof t, "%.3f ms", ms);
  else
    snprintf(t, sizeof t, "%.2f s", ms / 1e3);
  double v = rate(r, ms);
  if (isnan(v))
    snprintf(b, cap, "%s", t);
  else
    snprintf(b, cap, "%s (%.*f %s)", t, v >= 100 ? 0 : v >= 10 ? 1 : 2, v, r->work_unit);
}

static const char* status_of(const row_t* r, double q) {
  if (r->target <= 0) return "";
  if (isnan(q) || isinf(q)) return "n/a";
  return q >= r->target ? "met" : "MISSED";
}

static void print_table(FILE* f, bool md) {
  if (md) {
    fprintf(f, "| benchmark | size | LightOS | baseline | ratio | target | status | notes |\n");
    fprintf(f, "|---|---|--:|--:|--:|---|---|---|\n");
  } else {
    fprintf(f, "%-46s %-14s %28s %44s %7s %17s %7s  %s\n", "benchmark", "size", "LightOS",
            "baseline", "ratio", "target", "status", "notes");
  }
  for (int i = 0; i < nrows; ++i) {
    const row_t* r = &rows[i];
    char lk[64], bv[64], base[112], ratio[16], tgt[40];
    cell(lk, sizeof lk, r, r->lk_ms);
    cell(bv, sizeof bv, r, r->base_ms);
    snprintf(base, sizeof base, "%s (%s)", bv, r->base_name);
    double q = r->base_ms / r->lk_ms;
    if (isnan(q) || isinf(q))
      snprintf(ratio, sizeof ratio, "-");
    else
      snprintf(ratio, sizeof ratio, "%.3f", q);
    if (r->target > 0 && r->goal > 0)
      snprintf(tgt, sizeof tgt, ">= %.2f (goal %.2f)", r->target, r->goal);
    else if (r->target > 0)
      snprintf(tgt, sizeof tgt, ">= %.2f", r->target);
    else
      snprintf(tgt, sizeof tgt, "-");
    const char* st = status_of(r, q);
    bool missed = !strcmp(st, "MISSED");
    if (md)
      fprintf(f, "| %s | %s | %s | %s | %s | %s | %s%s%s | %s |\n", r->bench, r->size, lk, base,
              ratio, tgt, missed ? "**" : "", st, missed ? "**" : "", r->notes);
    else
      fprintf(f, "%-46s %-14s %28s %44s %7s %17s %7s  %s\n", r->bench, r->size, lk, base, ratio,
              tgt, st, r->notes);
  }
}

/* ---- Interleaved timing --------------------------------------------------- */

/* Runs n operations and waits for them; returns ms per operation, or NAN
 * after writing the failure into g_fail. */
typedef double (*op_fn)(void* arg, int n);

typedef struct side {
  op_fn fn;      /* NULL: this side is not run */
  void* arg;
  int n;         /* operations per batch */
  double ms;     /* result: median ms per operation */
  double p90;
  char fail[800];
} side_t;

/* `warm` untimed batches of each side, then `batches` timed ones, the sides
 * interleaved.  A side that fails stops (ms NAN, fail says why). */
static void measure(side_t* s, int count, int warm, int batches) {
  double* t = xmalloc(sizeof(double) * (size_t)count * (size_t)batches);
  for (int i = 0; i < count; ++i) { /* a side that failed before stays stopped */
    s[i].ms = s[i].p90 = NAN;
    if (s[i].n < 1) s[i].n = 1;
  }
  for (int w = 0; w < warm; ++w)
    for (int i = 0; i < count; ++i)
      if (s[i].fn && !s[i].fail[0] && isnan(s[i].fn(s[i].arg, s[i].n)))
        snprintf(s[i].fail, sizeof s[i].fail, "%s", g_fail);
  for (int b = 0; b < batches; ++b)
    for (int i = 0; i < count; ++i) {
      if (!s[i].fn || s[i].fail[0]) continue;
      double v = s[i].fn(s[i].arg, s[i].n);
      if (isnan(v)) snprintf(s[i].fail, sizeof s[i].fail, "%s", g_fail);
      t[(size_t)i * (size_t)batches + (size_t)b] = v;
    }
  for (int i = 0; i < count; ++i) {
    if (!s[i].fn || s[i].fail[0]) continue;
    double* v = t + (size_t)i * (size_t)batches;
    s[i].ms = median(v, batches);
    s[i].p90 = v[(size_t)(batches - 1) * 9 / 10];
  }
  free(t);
}

/* Operations per batch so that a batch takes about `batch_ms`. */
static int ops_for(double one_ms, double batch_ms, int max_ops) {
  if (isnan(one_ms) || one_ms <= 0) return 1;
  double n = ceil(batch_ms / one_ms);
  if (n < 1) n = 1;
  if (n > max_ops) n = max_ops;
  return (int)n;
}

/* ---- The CUDA baseline ------------------------------------------------------ */

typedef struct raw {
  bool ok;
  char why[300];
  const lk_cuda_api_t* cu;
  CUdevice dev;
  CUcontext ctx; /* the device's primary context (the one LightOS uses) */
  bool retained;
  CUstream stream;
  int cc_major, cc_minor;
  const lk_cublas_api_t* blas; /* NULL: no cuBLAS */
  char blas_why[320];
} raw_t;

#define CU_FAIL(call, r)                                                                 \
  (snprintf(g_fail, sizeof g_fail, "%s failed: %s (%d)", call, lk_cuda_error_name(r), \
            (int)(r)),                                                                   \
   NAN)

static void raw_current(const raw_t* R) { R->cu->cuCtxSetCurrent(R->ctx); }

/* Opens the driver side on the CUdevice that is LightOS's `info`. */
static void raw_open(raw_t* R, const lightos_device_info_t* info) {
  memset(R, 0, sizeof *R);
  if (info->backend != LIGHTOS_BACKEND_CUDA) {
    snprintf(R->why, sizeof R->why, "%s is not a CUDA device", info->uri);
    return;
  }
  char why[256];
  R->cu = lk_cuda_api_get(why, sizeof why);
  if (!R->cu) {
    snprintf(R->why, sizeof R->why, "%s", why);
    return;
  }
  const lk_cuda_api_t* cu = R->cu;
  CUresult r = cu->cuInit(0);
  int count = 0;
  if (!r) r = cu->cuDeviceGetCount(&count);
  if (r) {
    snprintf(R->why, sizeof R->why, "cuInit/cuDeviceGetCount: %s", lk_cuda_error_name(r));
    return;
  }
  bool found = false;
  for (int i = 0; i < count && !found; ++i) {
    CUdevice d;
    char bus[64] = "", norm[64] = "";
    unsigned dom = 0, b = 0, dv = 0, fn = 0;
    if (cu->cuDeviceGet(&d, i)) continue;
    if (!cu->cuDeviceGetPCIBusId(bus, (int)sizeof bus, d) &&
        sscanf(bus, "%x:%x:%x.%x", &dom, &b, &dv, &fn) == 4)
      snprintf(norm, sizeof norm, "%04x:%02x:%02x.%x", dom, b, dv, fn);
    if (info->pci_bus_id[0] ? !strcasecmp(norm, info->pci_bus_id) : (uint32_t)i == info->index) {
      R->dev = d;
      found = true;
    }
  }
  if (!found) {
    snprintf(R->why, sizeof R->why, "no CUdevice with PCI bus id %s", info->pci_bus_id);
    return;
  }
  cu->cuDeviceGetAttribute(&R->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, R->dev);
  cu->cuDeviceGetAttribute(&R->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, R->dev);
  r = cu->cuDevicePrimaryCtxRetain(&R->ctx, R->dev);
  if (r) {
    snprintf(R->why, sizeof R->why, "cuDevicePrimaryCtxRetain: %s", lk_cuda_error_name(r));
    return;
  }
  R->retained = true;
  r = cu->cuCtxSetCurrent(R->ctx);
  if (!r) r = cu->cuStreamCreate(&R->stream, CU_STREAM_NON_BLOCKING);
  if (r) {
    snprintf(R->why, sizeof R->why, "cuCtxSetCurrent/cuStreamCreate: %s", lk_cuda_error_name(r));
    return;
  }
  R->blas = lk_cublas_api_get(R->blas_why, sizeof R->blas_why);
  R->ok = true;
}

static void raw_close(raw_t* R) {
  if (R->stream) {
    raw_current(R);
    R->cu->cuStreamDestroy_v2(R->stream);
  }
  if (R->retained) R->cu->cuDevicePrimaryCtxRelease_v2(R->dev);
  memset(R, 0, sizeof *R);
}

/* Builds the raw empty kernel with NVRTC for `arch` ("sm_90": a cubin;
 * "compute_90": PTX).  0 on success. */
static int nvrtc_build(const char* arch, void** image, size_t* size, char* err, size_t cap) {
  char why[256];
  const lk_nvrtc_api_t* rtc = lk_nvrtc_api_get(why, sizeof why);
  *image = NULL;
  *size = 0;
  if (!rtc) {
    snprintf(err, cap, "%s", why);
    return -1;
  }
  nvrtcProgram prog = NULL;
  nvrtcResult r = rtc->nvrtcCreateProgram(&prog, k_raw_empty_src, "lk_empty.cu", 0, NULL, NULL);
  if (r) {
    snprintf(err, cap, "nvrtcCreateProgram: %s", rtc->nvrtcGetErrorString(r));
    return -1;
  }
  char archopt[64];
  snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
  const char* opts[1] = {archopt};
  r = rtc->nvrtcCompileProgram(prog, 1, opts);
  if (r) {
    size_t ls = 0;
    char log[1024] = "";
    if (!rtc->nvrtcGetProgramLogSize(prog, &ls) && ls > 1 && ls < sizeof log)
      rtc->nvrtcGetProgramLog(prog, log);
    snprintf(err, cap, "nvrtcCompileProgram(%s): %s %s", arch, rtc->nvrtcGetErrorString(r), log);
    rtc->nvrtcDestroyProgram(&prog);
    return -1;
  }
  bool cubin = !strncmp(arch, "sm_", 3) && rtc->nvrtcGetCUBINSize && rtc->nvrtcGetCUBIN;
  r = cubin ? rtc->nvrtcGetCUBINSize(prog, size) : rtc->nvrtcGetPTXSize(prog, size);
  if (!r) {
    *image = xmalloc(*size);
    r = cubin ? rtc->nvrtcGetCUBIN(prog, *image) : rtc->nvrtcGetPTX(prog, *image);
  }
  rtc->nvrtcDestroyProgram(&prog);
  if (r) {
    free(*image);
    *image = NULL;
    snprintf(err, cap, "nvrtcGet%s: %s", cubin ? "CUBIN" : "PTX", rtc->nvrtcGetErrorString(r));
    return -1;
  }
  return 0;
}

/* ---- The LightOS side -------------------------------------------------------- */

typedef struct lk {
  lightos_device_t dev;
  lightos_device_info_t info;
  lightos_context_t ctx;  /* default flags: native paths */
  lightos_queue_t q;
  lightos_context_t det;  /* LIGHTOS_CONTEXT_DETERMINISTIC: the portable GEMM */
  lightos_queue_t det_q;
  bool is_cuda;
} lk_t;

static lightos_status_t lk_build(lightos_context_t ctx, const char* src, const char* name,
                                 lightos_program_t* out_p, lightos_kernel_t* out_k, char* err,
                                 size_t cap) {
  lightos_program_t p = NULL;
  lightos_status_t st = lightos_program_create(ctx, src, 0, &p);
  if (st) {
    snprintf(err, cap, "lightos_program_create: %s", lk_err());
    return st;
  }
  st = lightos_program_build(p, NULL);
  if (st) {
    char log[1500] = "";
    lightos_program_build_log(p, log, sizeof log, NULL);
    snprintf(err, cap, "lightos_program_build(%s): %s\n%s", name, lk_err(), log);
    lightos_program_release(p);
    return st;
  }
  st = lightos_kernel_create(p, name, out_k);
  if (st) {
    snprintf(err, cap, "lightos_kernel_create(%s): %s", name, lk_err());
    lightos_program_release(p);
    return st;
  }
  *out_p = p;
  return LIGHTOS_SUCCESS;
}

#define LK_FAIL_RET(what)                                                 \
  (snprintf(g_fail, sizeof g_fail, "%s failed: %s", (what), lk_err()), NAN)

/* ---- a. dispatch -------------------------------------------------------------- */

typedef struct disp {
  lightos_queue_t q;
  lightos_kernel_t k;
  const raw_t* R;
  CUfunction f;
  void* params[1];
  CUdeviceptr dp;
  CUfunction fr;        /* lk_empty_r: LightOS's parameter list */
  void* rparams[2];
  lk_cu_range_t range;
} disp_t;

static const size_t disp_g[1] = {256}, disp_l[1] = {256};

static double lk_enqueue_only(void* arg, int n) {
  disp_t* d = arg;
  double t0 = now_ms();
  for (int i = 0; i < n; ++i)
    if (lightos_enqueue_kernel(d->q, d->k, 1, disp_g, disp_l, NULL))
      return LK_FAIL_RET("lightos_enqueue_kernel");
  double t1 = now_ms();
  if (lightos_queue_finish(d->q)) return LK_FAIL_RET("lightos_queue_finish");
  return (t1 - t0) / n;
}

static double raw_enqueue_only(void* arg, int n) {
  disp_t* d = arg;
  const lk_cuda_api_t* cu = d->R->cu;
  raw_current(d->R);
  double t0 = now_ms();
  for (int i = 0; i < n; ++i) {
    CUresult r = cu->cuLaunchKernel(d->f, 1, 1, 1, 256, 1, 1, 0, d->R->stream, d->params, NULL);
    if (r) return CU_FAIL("cuLaunchKernel", r);
  }
  double t1 = now_ms();
  CUresult r = cu->cuStreamSynchronize(d->R->stream);
  if (r) return CU_FAIL("cuStreamSynchronize", r);
  return (t1 - t0) / n;
}

/* The raw loop with LightOS's kernel parameters (diagnostic: what the
 * driver's marshalling of the hidden range costs, apart from the runtime). */
static double rawr_enqueue_only(void* arg, int n) {
  disp_t* d = arg;
  const lk_cuda_api_t* cu = d->R->cu;
  raw_current(d->R);
  double t0 = now_ms();
  for (int i = 0; i < n; ++i) {
    CUresult r = cu->cuLaunchKernel(d->fr, 1, 1, 1, 256, 1, 1, 0, d->R->stream, d->rparams, NULL);
    if (r) return CU_FAIL("cuLaunchKernel", r);
  }
  double t1 = now_ms();
  CUresult r = cu->cuStreamSynchronize(d->R->stream);
  if (r) return CU_FAIL("cuStreamSynchronize", r);
  return (t1 - t0) / n;
}

static double lk_round_trip(void* arg, int n) {
  disp_t* d = arg;
  (void)n;
  double t0 = now_ms();
  if (lightos_enqueue_kernel(d->q, d->k, 1, disp_g, disp_l, NULL))
    return LK_FAIL_RET("lightos_enqueue_kernel");
  if (lightos_queue_finish(d->q)) return LK_FAIL_RET("lightos_queue_finish");
  return now_ms() - t0;
}

static double raw_round_trip(void* arg, int n) {
  disp_t* d = arg;
  const lk_cuda_api_t* cu = d->R->cu;
  (void)n;
  double t0 = now_ms();
  CUresult r = cu->cuLaunchKernel(d->f, 1, 1, 1, 256, 1, 1, 0, d->R->stream, d->params, NULL);
  if (r) return CU_FAIL("cuLaunchKernel", r);
  r = cu->cuStreamSynchronize(d->R->stream);
  if (r) return CU_FAIL("cuStreamSynchronize", r);
  return now_ms() - t0;
}

static void bench_dispatch(lk_t* L, raw_t* R) {
  fprintf(stderr, "bench_gpu: dispatch\n");
  char size[32];
  snprintf(size, sizeof size, "%d launches", opt.launches);
  row_t* re = add_row("dispatch: enqueue, no wait (per launch)", size, "cuLaunchKernel",
                      1.0 / 1.1);
  row_t* rr = add_row("dispatch: launch + wait round trip", "1 launch",
                      "cuLaunchKernel+cuStreamSynchronize", 1.0 / 1.1);
  row_t* rd = add_row("dispatch: enqueue, no wait; baseline with LightOS's parameters", size,
                      "cuLaunchKernel (ptr + range)", 0);
  char err[2048];
  disp_t d;
  memset(&d, 0, sizeof d);
  d.R = R;
  lightos_program_t p = NULL;
  lightos_buffer_t buf = NULL;
  CUmodule mod = NULL;
  void* image = NULL;
  size_t image_size = 0;
  char arch[32] = "";
  bool lk_ok = false, raw_ok = false;

  if (lk_build(L->ctx, k_empty_src, "lk_empty", &p, &d.k, err, sizeof err)) {
    row_error(re, "LightOS", err);
  } else if (lightos_buffer_alloc(L->ctx, 256, 0, &buf) ||
             lightos_kernel_set_arg_buffer(d.k, 0, buf)) {
    row_error(re, "LightOS", lk_err());
  } else {
    d.q = L->q;
    lk_ok = true;
  }

  if (R->ok) {
    const lk_cuda_api_t* cu = R->cu;
    raw_current(R);
    CUresult r;
    if (lk_cuda_arch_for(R->cc_major, R->cc_minor, arch, sizeof arch)) {
      row_error(re, "baseline", lk_err());
    } else if (nvrtc_build(arch, &image, &image_size, err, sizeof err)) {
      row_error(re, "baseline", err);
    } else if ((r = cu->cuModuleLoadData(&mod, image)) ||
               (r = cu->cuModuleGetFunction(&d.f, mod, "lk_empty")) ||
               (r = cu->cuModuleGetFunction(&d.fr, mod, "lk_empty_r")) ||
               (r = cu->cuMemAlloc_v2(&d.dp, 256))) {
      snprintf(err, sizeof err, "cuModuleLoadData/cuModuleGetFunction/cuMemAlloc: %s",
               lk_cuda_error_name(r));
      row_error(re, "baseline", err);
    } else {
      d.params[0] = &d.dp;
      d.rparams[0] = &d.dp;
      d.rparams[1] = &d.range;
      d.range.gs[0] = 256;
      d.range.gs[1] = d.range.gs[2] = 1;
      d.range.wd = 1;
      raw_ok = true;
    }
  } else {
    note(re, "no baseline: %s", R->why);
  }

  int batches = opt.reps * 3 < 21 ? 21 : opt.reps * 3;
  side_t s[3];
  memset(s, 0, sizeof s);
  s[0] = (side_t){lk_ok ? lk_enqueue_only : NULL, &d, opt.launches, NAN, NAN, ""};
  s[1] = (side_t){raw_ok ? raw_enqueue_only : NULL, &d, opt.launches, NAN, NAN, ""};
  s[2] = (side_t){raw_ok ? rawr_enqueue_only : NULL, &d, opt.launches, NAN, NAN, ""};
  measure(s, 3, 3, batches);
  re->lk_ms = rd->lk_ms = s[0].ms;
  re->base_ms = s[1].ms;
  rd->base_ms = s[2].ms;
  if (s[0].fail[0]) row_error(re, "LightOS", s[0].fail);
  if (s[1].fail[0]) row_error(re, "baseline", s[1].fail);
  if (s[2].fail[0]) row_error(rd, "baseline", s[2].fail);
  note(re, "median of %d batches (each then waited for, untimed)", batches);
  note(rd, "diagnostic: the same LightOS batches; the raw kernel takes LightOS's parameters "
       "(one pointer and the hidden 56-byte range), so the ratio leaves out what the driver "
       "spends on the larger parameter block");

  s[0] = (side_t){lk_ok ? lk_round_trip : NULL, &d, 1, NAN, NAN, ""};
  s[1] = (side_t){raw_ok ? raw_round_trip : NULL, &d, 1, NAN, NAN, ""};
  measure(s, 2, opt.iters / 10 + 10, opt.iters);
  rr->lk_ms = s[0].ms;
  rr->base_ms = s[1].ms;
  if (s[0].fail[0]) row_error(rr, "LightOS", s[0].fail);
  if (s[1].fail[0]) row_error(rr, "baseline", s[1].fail);
  char p90a[32] = "-", p90b[32] = "-";
  if (!isnan(s[0].p90)) snprintf(p90a, sizeof p90a, "%.2f us", s[0].p90 * 1e3);
  if (!isnan(s[1].p90)) snprintf(p90b, sizeof p90b, "%.2f us", s[1].p90 * 1e3);
  note(rr, "median of %d; p90: LightOS %s, baseline %s", opt.iters, p90a, p90b);
  if (raw_ok) {
    note(re, "raw kernel: NVRTC %s %s", arch, arch[0] == 's' ? "cubin" : "PTX");
    note(rr, "the same empty kernel, 1 block of 256, one pointer argument");
  }

  if (d.k) lightos_kernel_release(d.k);
  if (p) lightos_program_release(p);
  if (buf) lightos_buffer_release(buf);
  if (R->ok) {
    raw_current(R);
    if (d.dp) R->cu->cuMemFree_v2(d.dp);
    if (mod) R->cu->cuModuleUnload(mod);
  }
  free(image);
}

/* ---- b, c. GEMM ---------------------------------------------------------------- */

typedef struct gemm_lk {
  lightos_queue_t q;
  lightos_tensor_t a, b, c;
} gemm_lk_t;

static double gemm_lk_run(void* arg, int n) {
  gemm_lk_t* g = arg;
  double t0 = now_ms();
  for (int i = 0; i < n; ++i)
    if (lightos_op_gemm(g->q, false, false, 1.0, &g->a, &g->b, 0.0, &g->c))
      return LK_FAIL_RET("lightos_op_gemm");
  if (lightos_queue_finish(g->q)) return LK_FAIL_RET("lightos_queue_finish");
  return (now_ms() - t0) / n;
}

typedef struct gemm_raw {
  const raw_t* R;
  cublasHandle_t h;
  CUdeviceptr a, b, c;
  int n;
  int dtype, compute;
} gemm_raw_t;

/* C = A B, row-major, as LightOS computes it: C^T = B^T A^T column-major. */
static double gemm_raw_run(void* arg, int n) {
  gemm_raw_t* g = arg;
  const lk_cublas_api_t* cb = g->R->blas;
  const float alpha = 1.0f, beta = 0.0f;
  raw_current(g->R);
  double t0 = now_ms();
  for (int i = 0; i < n; ++i) {
    cublasStatus_t st = cb->cublasGemmEx(
        g->h, CUBLAS_OP_N, CUBLAS_OP_N, g->n, g->n, g->n, &alpha, (const void*)(uintptr_t)g->b,
        g->dtype, g->n, (const void*)(uintptr_t)g->a, g->dtype, g->n, &beta,
        (void*)(uintptr_t)g->c, g->dtype, g->n, g->compute, CUBLAS_GEMM_DEFAULT);
    if (st) {
      snprintf(g_fail, sizeof g_fail, "cublasGemmEx failed: %s (%d)", lk_cublas_status_name(st),
               (int)st);
      return NAN;
    }
  }
  CUresult r = g->R->cu->cuStreamSynchronize(g->R->stream);
  if (r) return CU_FAIL("cuStreamSynchronize", r);
  return (now_ms() - t0) / n;
}

/* Host float copy of an n x n result (f32 or bf16 bits). */
static float* to_float(const void* raw, size_t count, bool bf16) {
  float* f = xmalloc(count * sizeof(float));
  if (bf16) {
    const uint16_t* h = raw;
    for (size_t i = 0; i < count; ++i) f[i] = bf16_to_f32(h[i]);
  } else {
    memcpy(f, raw, count * sizeof(float));
  }
  return f;
}

/* Largest sample error of C against a float64 host product, in units of
 * the tolerance (<= 1 passes).  a, b: the inputs as the GPU sees them. */
static double gemm_sample_err(const float* a, const float* b, const float* c, int n, bool bf16,
                              bool tf32, int* bad_i, int* bad_j, double* bad_ref) {
  double worst = 0;
  for (int s = 0; s < 64; ++s) {
    int i = (int)(((long long)s * 7919) % n), j = (int)(((long long)s * 104729 + 13) % n);
    double ref = 0, mag = 0;
    for (int k = 0; k < n; ++k) {
      double p = (double)a[(size_t)i * n + k] * b[(size_t)k * n + j];
      ref += p;
      mag += fabs(p);
    }
    double tol = 1e-6 * sqrt((double)n) * mag + 1e-30;
    if (tf32) tol += 2e-3 * mag;
    if (bf16) tol += 4e-3 * fabs(ref);
    double e = fabs((double)c[(size_t)i * n + j] - ref) / tol;
    if (!(e <= worst)) { /* also catches NaN */
      worst = isnan(e) ? INFINITY : e;
      *bad_i = i;
      *bad_j = j;
      *bad_ref = ref;
    }
  }
  return worst;
}

static double rel_frobenius(const float* x, const float* ref, size_t count) {
  double num = 0, den = 0;
  for (size_t i = 0; i < count; ++i) {
    double d = (double)x[i] - ref[i];
    num += d * d;
    den += (double)ref[i] * ref[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Reads a tensor's n*n elements into host floats (NULL on failure). */
static float* read_tensor(const lightos_tensor_t* t, size_t count, bool bf16) {
  size_t bytes = count * (bf16 ? 2 : 4);
  void* raw = xmalloc(bytes);
  if (lightos_buffer_read(t->buffer, t->offset, bytes, raw)) {
    free(raw);
    return NULL;
  }
  float* f = to_float(raw, count, bf16);
  free(raw);
  return f;
}

static void check_samples(row_t* r, const char* side, const float* a, const float* b,
                          const float* c, int n, bool bf16, bool tf32) {
  int bi = 0, bj = 0;
  double bref = 0;
  double e = gemm_sample_err(a, b, c, n, bf16, tf32, &bi, &bj, &bref);
  if (e > 1.0) {
    char msg[200];
    snprintf(msg, sizeof msg, "wrong result: C[%d][%d] = %.9g, float64 host product %.9g", bi, bj,
             (double)c[(size_t)bi * n + bj], bref);
    row_error(r, side, msg);
  }
}

static void bench_gemm(lk_t* L, raw_t* R, bool do_native, bool do_portable) {
  static const int all_sizes[] = {1024, 4096, 8192};
  int sizes[3], nsizes = 0;
  for (int i = 0; i < 3; ++i)
    if (all_sizes[i] <= opt.max_n) sizes[nsizes++] = all_sizes[i];
  if (nsizes == 0) sizes[nsizes++] = opt.max_n;
  /* As cuda_blas.c decides it. */
  const bool tf32 = lk_env_flag("LIGHTOS_ALLOW_TF32", false) && R->cc_major >= 8;
  const bool have_blas = R->ok && R->blas;
  cublasHandle_t h = NULL;
  if (have_blas) {
    raw_current(R);
    cublasStatus_t st = R->blas->cublasCreate_v2(&h);
    if (!st) st = R->blas->cublasSetStream_v2(h, R->stream);
    /* The math mode LightOS sets on its handles (cuda_blas.c). */
    if (!st)
      st = R->blas->cublasSetMathMode(
          h, CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
    if (st) {
      fprintf(stderr, "bench_gpu: cublasCreate/SetStream/SetMathMode: %s\n",
              lk_cublas_status_name(st));
      failures++;
      if (h) R->blas->cublasDestroy_v2(h);
      h = NULL;
    }
  }

  for (int dti = 0; dti < 2; ++dti) {
    const bool bf16 = dti == 1;
    if (bf16 && !do_native) continue;
    if (bf16 && R->ok && R->cc_major < 8) {
      row_t* r = add_row("gemm bf16 native (lightos_op_gemm -> cuBLAS)", "-", "cublasGemmEx", 0);
      note(r, "skipped: bf16 GEMM needs sm_80 or newer (this is sm_%d%d)", R->cc_major,
           R->cc_minor);
      continue;
    }
    const lightos_dtype_t dt = bf16 ? LIGHTOS_DTYPE_BF16 : LIGHTOS_DTYPE_F32;
    const size_t esz = bf16 ? 2 : 4;
    for (int si = 0; si < nsizes; ++si) {
      const int n = sizes[si];
      const size_t count = (size_t)n * n, bytes = count * esz;
      const double flops = 2.0 * n * (double)n * n;
      fprintf(stderr, "bench_gpu: gemm %s n=%d\n", bf16 ? "bf16" : "f32", n);
      char size[32], name[96];
      snprintf(size, sizeof size, "%dx%dx%d", n, n, n);
      row_t *rn = NULL, *rp = NULL;
      if (do_native) {
        snprintf(name, sizeof name, "gemm %s native (lightos_op_gemm -> cuBLAS)",
                 bf16 ? "bf16" : "f32");
        rn = add_row(name, size, "cublasGemmEx", n >= 4096 ? 0.98 : 0);
        set_work(rn, flops, "TFLOP/s");
      }
      if (do_portable && !bf16) {
        rp = add_row("gemm f32 portable kernel (deterministic ctx)", size, "cuBLAS FP32", 0.60);
        rp->goal = 0.80;
        set_work(rp, flops, "TFLOP/s");
      }
      row_t* r0 = rn ? rn : rp;
      /* Inputs: uniform in [-1, 1), rounded to bf16 for bf16 (fa/fb hold
       * the values the GPU sees). */
      float* fa = xmalloc(count * sizeof(float));
      float* fb = xmalloc(count * sizeof(float));
      void* ha = xmalloc(bytes);
      void* hb = xmalloc(bytes);
      for (size_t i = 0; i < count; ++i) {
        fa[i] = 2.0f * rng_unit() - 1.0f;
        fb[i] = 2.0f * rng_unit() - 1.0f;
        if (bf16) {
          uint16_t x = f32_to_bf16(fa[i]), y = f32_to_bf16(fb[i]);
          ((uint16_t*)ha)[i] = x;
          ((uint16_t*)hb)[i] = y;
          fa[i] = bf16_to_f32(x);
          fb[i] = bf16_to_f32(y);
        }
      }
      if (!bf16) {
        memcpy(ha, fa, bytes);
        memcpy(hb, fb, bytes);
      }
      const int64_t shape[2] = {n, n};
      gemm_lk_t gl, gp;
      memset(&gl, 0, sizeof gl);
      memset(&gp, 0, sizeof gp);
      gemm_raw_t gr;
      memset(&gr, 0, sizeof gr);
      bool lk_ok = false, port_ok = false, raw_ok = false;
      const uint32_t zero = 0;
      char err[1024];
      if (rn) {
        gl.q = L->q;
        if (lightos_tensor_alloc(L->ctx, dt, 2, shape, &gl.a) ||
            lightos_tensor_alloc(L->ctx, dt, 2, shape, &gl.b) ||
            lightos_tensor_alloc(L->ctx, dt, 2, shape, &gl.c) ||
            lightos_buffer_write(gl.a.buffer, 0, bytes, ha) ||
            lightos_buffer_write(gl.b.buffer, 0, bytes, hb) ||
            lightos_buffer_fill(gl.c.buffer, 0, bytes, &zero, 4))
          row_error(rn, "LightOS", lk_err());
        else
          lk_ok = true;
      }
      if (rp) {
        gp.q = L->det_q;
        if (!L->det || lightos_tensor_alloc(L->det, dt, 2, shape, &gp.a) ||
            lightos_tensor_alloc(L->det, dt, 2, shape, &gp.b) ||
            lightos_tensor_alloc(L->det, dt, 2, shape, &gp.c) ||
            lightos_buffer_write(gp.a.buffer, 0, bytes, ha) ||
            lightos_buffer_write(gp.b.buffer, 0, bytes, hb) ||
            lightos_buffer_fill(gp.c.buffer, 0, bytes, &zero, 4))
          row_error(rp, "LightOS", L->det ? lk_err() : "no deterministic context");
        else
          port_ok = true;
      }
      if (h) {
        const lk_cuda_api_t* cu = R->cu;
        raw_current(R);
        gr.R = R;
        gr.h = h;
        gr.n = n;
        gr.dtype = bf16 ? CUDA_R_16BF : CUDA_R_32F;
        gr.compute = tf32 && !bf16 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
        CUresult r;
        if ((r = cu->cuMemAlloc_v2(&gr.a, bytes)) || (r = cu->cuMemAlloc_v2(&gr.b, bytes)) ||
            (r = cu->cuMemAlloc_v2(&gr.c, bytes)) ||
            (r = cu->cuMemcpyHtoDAsync_v2(gr.a, ha, bytes, R->stream)) ||
            (r = cu->cuMemcpyHtoDAsync_v2(gr.b, hb, bytes, R->stream)) ||
            (r = cu->cuMemsetD8Async(gr.c, 0, bytes, R->stream)) ||
            (r = cu->cuStreamSynchronize(R->stream))) {
          snprintf(err, sizeof err, "cuMemAlloc/cuMemcpyHtoDAsync: %s", lk_cuda_error_name(r));
          row_error(r0, "baseline", err);
        } else {
          raw_ok = true;
        }
      } else {
        note(r0, "no baseline: %s",
             !R->ok ? R->why : R->blas ? "cuBLAS handle failed" : R->blas_why);
      }

      /* Warm-up (library handles, kernel builds, clocks), then one timed
       * operation each to size the batches (~60 ms). */
      unsigned long long calls0 = L->is_cuda ? lk_cuda_blas_call_count() : 0;
      side_t s[3];
      memset(s, 0, sizeof s);
      s[0] = (side_t){raw_ok ? gemm_raw_run : NULL, &gr, 1, NAN, NAN, ""};
      s[1] = (side_t){lk_ok ? gemm_lk_run : NULL, &gl, 1, NAN, NAN, ""};
      s[2] = (side_t){port_ok ? gemm_lk_run : NULL, &gp, 1, NAN, NAN, ""};
      measure(s, 3, 1, 1);
      for (int i = 0; i < 3; ++i) s[i].n = ops_for(s[i].ms, 60.0, 1000);
      if (raw_ok && lk_ok) s[0].n = s[1].n = s[0].n > s[1].n ? s[0].n : s[1].n;
      measure(s, 3, 1, opt.reps);
      unsigned long long calls = L->is_cuda ? lk_cuda_blas_call_count() - calls0 : 0;
      if (s[0].fail[0]) row_error(r0, "baseline", s[0].fail);
      if (rn) {
        rn->lk_ms = s[1].ms;
        rn->base_ms = s[0].ms;
        if (s[1].fail[0]) row_error(rn, "LightOS", s[1].fail);
        note(rn, "median of %d batches of %d", opt.reps, s[1].n);
        if (L->is_cuda && lk_ok && !s[1].fail[0]) {
          if (calls)
            note(rn, "LightOS cuBLAS calls: %llu", calls);
          else if (!lk_env_flag("LIGHTOS_CUDA_BLAS", true) || !R->blas)
            note(rn, "LightOS ran its portable kernel (%s)",
                 R->blas ? "LIGHTOS_CUDA_BLAS=0" : "no cuBLAS");
          else
            row_error(rn, "LightOS",
                      "lightos_op_gemm did not go through cuBLAS (portable kernel ran)");
        }
      }
      if (rp) {
        rp->lk_ms = s[2].ms;
        rp->base_ms = s[0].ms;
        if (s[2].fail[0]) row_error(rp, "LightOS", s[2].fail);
        note(rp, "median of %d batches of %d", opt.reps, s[2].n);
      }
      if (tf32 && !bf16) note(r0, "TF32 allowed (LIGHTOS_ALLOW_TF32) on both sides");

      /* Results: each against a float64 host product (64 samples), LightOS
       * against cuBLAS in full (relative Frobenius error). */
      float* c_raw = NULL;
      if (raw_ok && !s[0].fail[0]) {
        void* rawc = xmalloc(bytes);
        raw_current(R);
        CUresult r = R->cu->cuMemcpyDtoHAsync_v2(rawc, gr.c, bytes, R->stream);
        if (!r) r = R->cu->cuStreamSynchronize(R->stream);
        if (r) {
          snprintf(err, sizeof err, "cuMemcpyDtoH: %s", lk_cuda_error_name(r));
          row_error(r0, "baseline", err);
        } else {
          c_raw = to_float(rawc, count, bf16);
          check_samples(r0, "baseline", fa, fb, c_raw, n, bf16, tf32 && !bf16);
        }
        free(rawc);
      }
      float* c_lk = NULL;
      if (rn && lk_ok && !s[1].fail[0]) {
        c_lk = read_tensor(&gl.c, count, bf16);
        if (!c_lk) {
          row_error(rn, "LightOS", lk_err());
        } else {
          check_samples(rn, "LightOS", fa, fb, c_lk, n, bf16, tf32 && !bf16);
          if (c_raw) {
            double e = rel_frobenius(c_lk, c_raw, count);
            note(rn, "rel err vs cuBLAS %.1e", e);
            if (!(e <= (bf16 || tf32 ? 1e-2 : 1e-5)))
              row_error(rn, "LightOS", "result differs from cuBLAS's");
          }
        }
      }
      if (rp && port_ok && !s[2].fail[0]) {
        float* c_p = read_tensor(&gp.c, count, false);
        if (!c_p) {
          row_error(rp, "LightOS", lk_err());
        } else {
          check_samples(rp, "LightOS", fa, fb, c_p, n, false, false);
          const float* ref = c_raw ? c_raw : c_lk;
          if (ref) {
            double e = rel_frobenius(c_p, ref, count);
            note(rp, "rel err vs %s %.1e", c_raw ? "cuBLAS" : "LightOS native", e);
            if (!(e <= (tf32 ? 1e-2 : 1e-4)))
              row_error(rp, "LightOS", "portable kernel result differs from the reference");
          }
          free(c_p);
        }
      }
      double q = rp ? rp->base_ms / rp->lk_ms : NAN;
      if (rp && !isnan(q)) note(rp, "goal 0.80 %s", q >= 0.80 ? "met" : "not met");
      free(c_raw);
      free(c_lk);
      lightos_tensor_t* ts[6] = {&gl.a, &gl.b, &gl.c, &gp.a, &gp.b, &gp.c};
      for (int i = 0; i < 6; ++i)
        if (ts[i]->buffer) lightos_tensor_free(ts[i]);
      if (R->ok) {
        raw_current(R);
        CUdeviceptr ps[3] = {gr.a, gr.b, gr.c};
        for (int i = 0; i < 3; ++i)
          if (ps[i]) R->cu->cuMemFree_v2(ps[i]);
      }
      free(fa);
      free(fb);
      free(ha);
      free(hb);
      fflush(stdout);
    }
  }
  if (h) {
    raw_current(R);
    R->blas->cublasDestroy_v2(h);
  }
}

/* ---- d. copies ------------------------------------------------------------------ */

enum { CP_H2D, CP_D2H, CP_D2D };

typedef struct cp {
  int kind;
  size_t size;
  void* host;
  lightos_queue_t q;
  lightos_buffer_t la, lb;
  const raw_t* R;
  CUdeviceptr da, db;
} cp_t;

static double cp_lk_run(void* arg, int n) {
  cp_t* c = arg;
  double t0 = now_ms();
  for (int i = 0; i < n; ++i) {
    lightos_status_t s;
    if (c->kind == CP_H2D)
      s = lightos_enqueue_write(c->q, c->la, 0, c->size, c->host, NULL);
    else if (c->kind == CP_D2H)
      s = lightos_enqueue_read(c->q, c->la, 0, c->size, c->host, NULL);
    else
      s = lightos_enqueue_copy(c->q, c->la, 0, c->lb, 0, c->size, NULL);
    if (s) return LK_FAIL_RET("lightos_enqueue_write/read/copy");
  }
  if (lightos_queue_finish(c->q)) return LK_FAIL_RET("lightos_queue_finish");
  return (now_ms() - t0) / n;
}

static double cp_raw_run(void* arg, int n) {
  cp_t* c = arg;
  const lk_cuda_api_t* cu = c->R->cu;
  CUstream st = c->R->stream;
  raw_current(c->R);
  double t0 = now_ms();
  for (int i = 0; i < n; ++i) {
    CUresult r = c->kind == CP_H2D   ? cu->cuMemcpyHtoDAsync_v2(c->da, c->host, c->size, st)
                 : c->kind == CP_D2H ? cu->cuMemcpyDtoHAsync_v2(c->host, c->da, c->size, st)
                                     : cu->cuMemcpyDtoDAsync_v2(c->db, c->da, c->size, st);
    if (r) return CU_FAIL("cuMemcpy*Async", r);
  }
  CUresult r = cu->cuStreamSynchronize(st);
  if (r) return CU_FAIL("cuStreamSynchronize", r);
  return (now_ms() - t0) / n;
}

static void bench_copy(lk_t* L, raw_t* R) {
  fprintf(stderr, "bench_gpu: copies\n");
  const size_t size = (size_t)opt.copy_mib << 20;
  char sz[32];
  snprintf(sz, sizeof sz, "%d MiB", opt.copy_mib);
  row_t* rows_cp[5];
  rows_cp[0] = add_row("copy host-to-device, pageable", sz, "cuMemcpyHtoDAsync", 0.95);
  rows_cp[1] = add_row("copy host-to-device, pinned", sz, "cuMemcpyHtoDAsync", 0.95);
  rows_cp[2] = add_row("copy device-to-host, pageable", sz, "cuMemcpyDtoHAsync", 0.95);
  rows_cp[3] = add_row("copy device-to-host, pinned", sz, "cuMemcpyDtoHAsync", 0.95);
  rows_cp[4] = add_row("copy device-to-device", sz, "cuMemcpyDtoDAsync", 0.95);
  for (int i = 0; i < 5; ++i) set_work(rows_cp[i], (double)size, "GB/s");
  note(rows_cp[4], "GB/s counts the bytes copied once");
  char err[512];

  /* Host memory: pageable (malloc, touched) and pinned (cuMemHostAlloc). */
  unsigned char* pageable = xmalloc(size);
  unsigned char* check = xmalloc(size);
  for (size_t i = 0; i < size; i += 4) {
    uint32_t v = rng_u32();
    memcpy(pageable + i, &v, size - i < 4 ? size - i : 4);
  }
  memset(check, 0, size);
  void* pinned = NULL;
  if (R->ok) {
    raw_current(R);
    CUresult r = R->cu->cuMemHostAlloc(&pinned, size, CU_MEMHOSTALLOC_PORTABLE);
    if (r) {
      snprintf(err, sizeof err, "cuMemHostAlloc(%zu): %s", size, lk_cuda_error_name(r));
      row_error(rows_cp[1], "baseline", err);
      pinned = NULL;
    } else {
      memcpy(pinned, pageable, size);
    }
  } else {
    for (int i = 0; i < 5; ++i) note(rows_cp[i], "no baseline: %s", R->why);
    note(rows_cp[1], "not pinned: no CUDA driver");
    note(rows_cp[3], "not pinned: no CUDA driver");
  }
  void* pinned_or = pinned ? pinned : (void*)check;

  cp_t c;
  memset(&c, 0, sizeof c);
  c.size = size;
  c.q = L->q;
  c.R = R;
  bool lk_ok = false, raw_ok = false;
  if (lightos_buffer_alloc(L->ctx, size, 0, &c.la) ||
      lightos_buffer_alloc(L->ctx, size, 0, &c.lb)) {
    row_error(rows_cp[0], "LightOS", lk_err());
  } else {
    /* Round trip check: host -> a -> b -> host. */
    memset(check, 0, size);
    if (lightos_enqueue_write(L->q, c.la, 0, size, pageable, NULL) ||
        lightos_enqueue_copy(L->q, c.la, 0, c.lb, 0, size, NULL) ||
        lightos_enqueue_read(L->q, c.lb, 0, size, check, NULL) || lightos_queue_finish(L->q))
      row_error(rows_cp[0], "LightOS", lk_err());
    else if (memcmp(check, pageable, size))
      row_error(rows_cp[0], "LightOS", "write + copy + read gave different bytes");
    else
      lk_ok = true;
  }
  if (R->ok) {
    const lk_cuda_api_t* cu = R->cu;
    raw_current(R);
    memset(check, 0, size);
    CUresult r;
    if ((r = cu->cuMemAlloc_v2(&c.da, size)) || (r = cu->cuMemAlloc_v2(&c.db, size)) ||
        (r = cu->cuMemcpyHtoDAsync_v2(c.da, pageable, size, R->stream)) ||
        (r = cu->cuMemcpyDtoDAsync_v2(c.db, c.da, size, R->stream)) ||
        (r = cu->cuMemcpyDtoHAsync_v2(check, c.db, size, R->stream)) ||
        (r = cu->cuStreamSynchronize(R->stream))) {
      snprintf(err, sizeof err, "cuMemAlloc/cuMemcpy: %s", lk_cuda_error_name(r));
      row_error(rows_cp[0], "baseline", err);
    } else if (memcmp(check, pageable, size)) {
      row_error(rows_cp[0], "baseline", "HtoD + DtoD + DtoH gave different bytes");
    } else {
      raw_ok = true;
    }
  }
  static const int kinds[5] = {CP_H2D, CP_H2D, CP_D2H, CP_D2H, CP_D2D};
  for (int i = 0; i < 5; ++i) {
    row_t* r = rows_cp[i];
    const bool pin = i == 1 || i == 3;
    if (pin && R->ok && !pinned) continue;
    c.kind = kinds[i];
    if (kinds[i] == CP_D2D)
      c.host = NULL;
    else if (pin)
      c.host = pinned_or;
    else
      c.host = kinds[i] == CP_H2D ? (void*)pageable : (void*)check;
    side_t s[2];
    memset(s, 0, sizeof s);
    s[0] = (side_t){raw_ok ? cp_raw_run : NULL, &c, 1, NAN, NAN, ""};
    s[1] = (side_t){lk_ok ? cp_lk_run : NULL, &c, 1, NAN, NAN, ""};
    measure(s, 2, 1, 1);
    int ops = ops_for(s[0].fn ? s[0].ms : s[1].ms, 60.0, 500);
    s[0].n = s[1].n = ops;
    measure(s, 2, 1, opt.reps);
    r->lk_ms = s[1].ms;
    r->base_ms = s[0].ms;
    if (s[0].fail[0]) row_error(r, "baseline", s[0].fail);
    if (s[1].fail[0]) row_error(r, "LightOS", s[1].fail);
    note(r, "median of %d batches of %d", opt.reps, ops);
    if (pin && pinned) note(r, "host memory from cuMemHostAlloc (both sides)");
  }
  if (c.la) lightos_buffer_release(c.la);
  if (c.lb) lightos_buffer_release(c.lb);
  if (R->ok) {
    raw_current(R);
    if (c.da) R->cu->cuMemFree_v2(c.da);
    if (c.db) R->cu->cuMemFree_v2(c.db);
    if (pinned) R->cu->cuMemFreeHost(pinned);
  }
  free(pageable);
  free(check);
}

/* ---- e. portable kernels: OpenCL vs CUDA backends ------------------------------- */

typedef struct kside {
  const char* label;  /* "OpenCL" / "CUDA" */
  char uri[64];
  lightos_context_t ctx;
  lightos_queue_t q;
  bool own;           /* ctx and q created here */
} kside_t;

typedef struct krun {
  lightos_queue_t q;
  lightos_kernel_t k;
  uint32_t dim;
  size_t g[2], l[2];
} krun_t;

static double krun_run(void* arg, int n) {
  krun_t* k = arg;
  double t0 = now_ms();
  for (int i = 0; i < n; ++i)
    if (lightos_enqueue_kernel(k->q, k->k, k->dim, k->g, k->l, NULL))
      return LK_FAIL_RET("lightos_enqueue_kernel");
  if (lightos_queue_finish(k->q)) return LK_FAIL_RET("lightos_queue_finish");
  return (now_ms() - t0) / n;
}

/* Picks the OpenCL device that is the same card as `cuda` (PCI bus id,
 * else the name); 0 on success. */
static int find_opencl_twin(const lightos_device_info_t* cuda, char* uri, size_t cap, char* why,
                            size_t wcap) {
  uint32_t count = 0;
  if (lightos_device_count(&count)) {
    snprintf(why, wcap, "lightos_device_count: %s", lk_err());
    return -1;
  }
  char seen[300] = "";
  size_t len = 0;
  for (uint32_t i = 0; i < count; ++i) {
    lightos_device_t d;
    lightos_device_info_t info;
    if (lightos_device_get(i, &d) || lightos_device_get_info(d, &info)) continue;
    if (info.backend != LIGHTOS_BACKEND_OPENCL) continue;
    bool same = cuda->pci_bus_id[0] && info.pci_bus_id[0]
                    ? !strcasecmp(cuda->pci_bus_id, info.pci_bus_id)
                    : !strcmp(cuda->name, info.name);
    if (same) {
      snprintf(uri, cap, "%s", info.uri);
      return 0;
    }
    int w = snprintf(seen + len, sizeof seen - len, "%s%s (%s)", len ? ", " : "", info.uri,
                     info.name);
    if (w > 0 && (size_t)w < sizeof seen - len) len += (size_t)w;
  }
  uint32_t nb = 0;
  const char* cl_reason = NULL;
  if (!lightos_backend_count(&nb))
    for (uint32_t i = 0; i < nb; ++i) {
      lightos_backend_info_t bi;
      if (!lightos_backend_get_info(i, &bi) && bi.backend == LIGHTOS_BACKEND_OPENCL &&
          !bi.available)
        cl_reason = bi.reason;
    }
  if (cl_reason)
    snprintf(why, wcap, "no NVIDIA OpenCL device: the OpenCL backend is unavailable (%s)",
             cl_reason);
  else
    snprintf(why, wcap, "no NVIDIA OpenCL device matching %s (PCI %s); OpenCL devices: %s",
             cuda->name, cuda->pci_bus_id[0] ? cuda->pci_bus_id : "?", len ? seen : "none");
  return -1;
}

static lightos_buffer_t kbuf(kside_t* s, size_t bytes, const void* init, row_t* r) {
  lightos_buffer_t b = NULL;
  if (lightos_buffer_alloc(s->ctx, bytes, 0, &b)) {
    row_error(r, s->label, lk_err());
    return NULL;
  }
  if (init && lightos_buffer_write(b, 0, bytes, init)) {
    row_error(r, s->label, lk_err());
    lightos_buffer_release(b);
    return NULL;
  }
  return b;
}

static void bench_opencl(lk_t* L) {
  fprintf(stderr, "bench_gpu: portable kernels, OpenCL vs CUDA\n");
  const char* reasons = NULL;
  char why[700] = "", cl_uri[64] = "";
  if (opt.opencl) {
    snprintf(cl_uri, sizeof cl_uri, "%s", opt.opencl);
  } else if (!L->is_cuda) {
    reasons = "no --opencl URI given (the device is not a CUDA device)";
  } else if (find_opencl_twin(&L->info, cl_uri, sizeof cl_uri, why, sizeof why)) {
    reasons = why;
  }
  if (reasons) {
    printf("opencl: skipped: %s\n", reasons);
    row_t* r = add_row("portable kernels: OpenCL vs CUDA backend", "-", L->info.uri, 0.90);
    note(r, "skipped: %s", reasons);
    return;
  }
  kside_t S[2];
  memset(S, 0, sizeof S);
  S[0].label = "OpenCL";
  S[1].label = "CUDA";
  snprintf(S[0].uri, sizeof S[0].uri, "%s", cl_uri);
  snprintf(S[1].uri, sizeof S[1].uri, "%s", L->info.uri);
  S[1].ctx = L->ctx;
  S[1].q = L->q;
  if (!L->is_cuda) S[1].label = L->info.uri;
  lightos_device_t cd;
  row_t* r_sx = add_row("saxpy (OpenCL vs CUDA backend)", "", S[1].uri, 0.90);
  if (lightos_device_from_uri(cl_uri, &cd) ||
      lightos_context_create_for_device(cd, LIGHTOS_CONTEXT_DEFAULT, &S[0].ctx) ||
      lightos_queue_create(S[0].ctx, LIGHTOS_QUEUE_DEFAULT, &S[0].q)) {
    row_error(r_sx, "OpenCL", lk_err());
    if (S[0].ctx) lightos_context_release(S[0].ctx);
    return;
  }
  S[0].own = true;
  lightos_device_info_t cinfo;
  if (!lightos_device_get_info(cd, &cinfo))
    printf("opencl: %s: %s (%s)\n", cinfo.uri, cinfo.name, cinfo.driver_version);

  const size_t n = (size_t)opt.saxpy_m << 20;
  const size_t bytes = n * sizeof(float);
  const float a = 0.5f;
  char size[32];
  snprintf(size, sizeof size, "%dM f32", opt.saxpy_m);
  snprintf(r_sx->size, sizeof r_sx->size, "%s", size);
  set_work(r_sx, 3.0 * (double)bytes, "GB/s");
  float* x = xmalloc(bytes);
  float* y0 = xmalloc(bytes);
  float* y = xmalloc(bytes);
  double host_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    x[i] = rng_unit();
    y0[i] = rng_unit();
  }
  /* The reductions: the largest multiple of 256 * 64 floats of x. */
  const uint32_t kk = 64;
  const size_t per_group = 256 * (size_t)kk;
  const size_t rn = n / per_group * per_group, groups = rn / per_group;
  for (size_t i = 0; i < rn; ++i) host_sum += x[i];

  /* saxpy */
  {
    krun_t kr[2];
    lightos_program_t p[2] = {NULL, NULL};
    lightos_buffer_t bx[2] = {NULL, NULL}, by[2] = {NULL, NULL};
    bool ok[2] = {false, false};
    char err[2048];
    memset(kr, 0, sizeof kr);
    for (int sI = 0; sI < 2; ++sI) {
      kside_t* s = &S[sI];
      if (lk_build(s->ctx, k_saxpy_src, "saxpy", &p[sI], &kr[sI].k, err, sizeof err)) {
        row_error(r_sx, s->label, err);
        continue;
      }
      if (!(bx[sI] = kbuf(s, bytes, x, r_sx)) || !(by[sI] = kbuf(s, bytes, y0, r_sx))) continue;
      kr[sI] = (krun_t){s->q, kr[sI].k, 1, {n, 1}, {256, 1}};
      if (lightos_kernel_set_arg_buffer(kr[sI].k, 0, by[sI]) ||
          lightos_kernel_set_arg_buffer(kr[sI].k, 1, bx[sI]) ||
          lightos_kernel_set_arg_f32(kr[sI].k, 2, a) ||
          lightos_kernel_set_arg_u32(kr[sI].k, 3, (uint32_t)n)) {
        row_error(r_sx, s->label, lk_err());
        continue;
      }
      /* One checked run from known data, then the timed runs. */
      if (isnan(krun_run(&kr[sI], 1))) {
        row_error(r_sx, s->label, g_fail);
        continue;
      }
      if (lightos_buffer_read(by[sI], 0, bytes, y)) {
        row_error(r_sx, s->label, lk_err());
        continue;
      }
      bool good = true;
      for (size_t i = 0; i < n && good; i += 997) {
        float want = a * x[i] + y0[i];
        if (fabsf(y[i] - want) > 1e-6f * fabsf(want) + 1e-30f) {
          snprintf(err, sizeof err, "saxpy wrong at %zu: got %.9g want %.9g", i, (double)y[i],
                   (double)want);
          row_error(r_sx, s->label, err);
          good = false;
        }
      }
      ok[sI] = good;
    }
    side_t sd[2];
    memset(sd, 0, sizeof sd);
    for (int sI = 0; sI < 2; ++sI)
      sd[sI] = (side_t){ok[sI] ? krun_run : NULL, &kr[sI], 1, NAN, NAN, ""};
    measure(sd, 2, 1, 1);
    int ops = ops_for(sd[1].fn ? sd[1].ms : sd[0].ms, 60.0, 200);
    sd[0].n = sd[1].n = ops;
    measure(sd, 2, 1, opt.reps);
    r_sx->lk_ms = sd[0].ms;
    r_sx->base_ms = sd[1].ms;
    for (int sI = 0; sI < 2; ++sI)
      if (sd[sI].fail[0]) row_error(r_sx, S[sI].label, sd[sI].fail);
    note(r_sx, "LightOS = %s, baseline = %s, the same source; local size 256; median of %d "
               "batches of %d",
         S[0].uri, S[1].uri, opt.reps, ops);
    for (int sI = 0; sI < 2; ++sI) {
      if (bx[sI]) lightos_buffer_release(bx[sI]);
      if (by[sI]) lightos_buffer_release(by[sI]);
      if (kr[sI].k) lightos_kernel_release(kr[sI].k);
      if (p[sI]) lightos_program_release(p[sI]);
    }
  }

  /* reductions (over the first rn floats of x) */
  for (int v = 0; v < 2; ++v) {
    const char* src = v == 0 ? k_reduce_acc_src : k_reduce_src;
    const char* kname = v == 0 ? "reduce_sum_acc" : "reduce_sum";
    char label[80], rsize[40];
    snprintf(label, sizeof label, "reduce (local tree, %s)",
             v == 0 ? "per-item accumulator" : "loop in one block");
    snprintf(rsize, sizeof rsize, "%zuM f32, k=%u", rn >> 20, kk);
    row_t* r = add_row(label, rsize, S[1].uri, 0.90);
    set_work(r, (double)rn * sizeof(float), "GB/s");
    krun_t kr[2];
    lightos_program_t p[2] = {NULL, NULL};
    lightos_buffer_t bi[2] = {NULL, NULL}, bp[2] = {NULL, NULL};
    bool ok[2] = {false, false};
    double sums[2] = {NAN, NAN};
    float* part = xmalloc(groups * sizeof(float));
    char err[2048];
    memset(kr, 0, sizeof kr);
    for (int sI = 0; sI < 2; ++sI) {
      kside_t* s = &S[sI];
      if (lk_build(s->ctx, src, kname, &p[sI], &kr[sI].k, err, sizeof err)) {
        row_error(r, s->label, err);
        continue;
      }
      if (!(bi[sI] = kbuf(s, rn * sizeof(float), x, r)) ||
          !(bp[sI] = kbuf(s, groups * sizeof(float), NULL, r)))
        continue;
      kr[sI] = (krun_t){s->q, kr[sI].k, 1, {rn / kk, 1}, {256, 1}};
      if (lightos_kernel_set_arg_buffer(kr[sI].k, 0, bi[sI]) ||
          lightos_kernel_set_arg_buffer(kr[sI].k, 1, bp[sI]) ||
          lightos_kernel_set_arg_u32(kr[sI].k, 2, kk)) {
        row_error(r, s->label, lk_err());
        continue;
      }
      ok[sI] = true;
    }
    side_t sd[2];
    memset(sd, 0, sizeof sd);
    for (int sI = 0; sI < 2; ++sI)
      sd[sI] = (side_t){ok[sI] ? krun_run : NULL, &kr[sI], 1, NAN, NAN, ""};
    measure(sd, 2, 1, 1);
    int ops = ops_for(sd[1].fn ? sd[1].ms : sd[0].ms, 60.0, 500);
    sd[0].n = sd[1].n = ops;
    measure(sd, 2, 1, opt.reps);
    r->lk_ms = sd[0].ms;
    r->base_ms = sd[1].ms;
    for (int sI = 0; sI < 2; ++sI) {
      if (sd[sI].fail[0]) {
        row_error(r, S[sI].label, sd[sI].fail);
        continue;
      }
      if (!ok[sI]) continue;
      if (lightos_buffer_read(bp[sI], 0, groups * sizeof(float), part)) {
        row_error(r, S[sI].label, lk_err());
        continue;
      }
      double sum = 0;
      for (size_t i = 0; i < groups; ++i) sum += part[i];
      sums[sI] = sum;
      if (!(fabs(sum - host_sum) <= 1e-5 * fabs(host_sum))) {
        snprintf(err, sizeof err, "wrong sum %.9g, host %.9g", sum, host_sum);
        row_error(r, S[sI].label, err);
      }
    }
    note(r, "sums checked vs host (rel err %s %.1e, %s %.1e); median of %d batches of %d",
         S[0].label, fabs(sums[0] - host_sum) / host_sum, S[1].label,
         fabs(sums[1] - host_sum) / host_sum, opt.reps, ops);
    for (int sI = 0; sI < 2; ++sI) {
      if (bi[sI]) lightos_buffer_release(bi[sI]);
      if (bp[sI]) lightos_buffer_release(bp[sI]);
      if (kr[sI].k) lightos_kernel_release(kr[sI].k);
      if (p[sI]) lightos_program_release(p[sI]);
    }
    free(part);
  }
  free(x);
  free(y0);
  free(y);

  /* tiled matmul */
  {
    const size_t M = (size_t)opt.matmul_n / 16 * 16, N = M, K = M;
    char msize[32];
    snprintf(msize, sizeof msize, "%zu^3 f32", M);
    row_t* r = add_row("matmul tiled 16x16", msize, S[1].uri, 0.90);
    set_work(r, 2.0 * (double)M * N * K, "TFLOP/s");
    float* A = xmalloc(M * K * sizeof(float));
    float* B = xmalloc(K * N * sizeof(float));
    float* C = xmalloc(M * N * sizeof(float));
    for (size_t i = 0; i < M * K; ++i) A[i] = rng_unit() - 0.5f;
    for (size_t i = 0; i < K * N; ++i) B[i] = rng_unit() - 0.5f;
    krun_t kr[2];
    lightos_program_t p[2] = {NULL, NULL};
    lightos_buffer_t ba[2] = {NULL, NULL}, bb[2] = {NULL, NULL}, bc[2] = {NULL, NULL};
    bool ok[2] = {false, false};
    double max_rel[2] = {NAN, NAN};
    char err[2048];
    memset(kr, 0, sizeof kr);
    for (int sI = 0; sI < 2; ++sI) {
      kside_t* s = &S[sI];
      if (lk_build(s->ctx, k_matmul_src, "matmul_tiled", &p[sI], &kr[sI].k, err, sizeof err)) {
        row_error(r, s->label, err);
        continue;
      }
      if (!(ba[sI] = kbuf(s, M * K * sizeof(float), A, r)) ||
          !(bb[sI] = kbuf(s, K * N * sizeof(float), B, r)) ||
          !(bc[sI] = kbuf(s, M * N * sizeof(float), NULL, r)))
        continue;
      kr[sI] = (krun_t){s->q, kr[sI].k, 2, {N, M}, {16, 16}};
      if (lightos_kernel_set_arg_buffer(kr[sI].k, 0, ba[sI]) ||
          lightos_kernel_set_arg_buffer(kr[sI].k, 1, bb[sI]) ||
          lightos_kernel_set_arg_buffer(kr[sI].k, 2, bc[sI]) ||
          lightos_kernel_set_arg_u32(kr[sI].k, 3, (uint32_t)M) ||
          lightos_kernel_set_arg_u32(kr[sI].k, 4, (uint32_t)N) ||
          lightos_kernel_set_arg_u32(kr[sI].k, 5, (uint32_t)K)) {
        row_error(r, s->label, lk_err());
        continue;
      }
      ok[sI] = true;
    }
    side_t sd[2];
    memset(sd, 0, sizeof sd);
    for (int sI = 0; sI < 2; ++sI)
      sd[sI] = (side_t){ok[sI] ? krun_run : NULL, &kr[sI], 1, NAN, NAN, ""};
    measure(sd, 2, 1, 1);
    int ops = ops_for(sd[1].fn ? sd[1].ms : sd[0].ms, 60.0, 100);
    sd[0].n = sd[1].n = ops;
    measure(sd, 2, 1, opt.reps);
    r->lk_ms = sd[0].ms;
    r->base_ms = sd[1].ms;
    for (int sI = 0; sI < 2; ++sI) {
      if (sd[sI].fail[0]) {
        row_error(r, S[sI].label, sd[sI].fail);
        continue;
      }
      if (!ok[sI]) continue;
      if (lightos_buffer_read(bc[sI], 0, M * N * sizeof(float), C)) {
        row_error(r, S[sI].label, lk_err());
        continue;
      }
      max_rel[sI] = 0;
      for (int smp = 0; smp < 256; ++smp) {
        size_t i = rng_u32() % M, j = rng_u32() % N;
        double want = 0, mag = 0;
        for (size_t q = 0; q < K; ++q) {
          want += (double)A[i * K + q] * B[q * N + j];
          mag += fabs((double)A[i * K + q] * B[q * N + j]);
        }
        double rel = fabs(C[i * N + j] - want) / (mag > 0 ? mag : 1);
        if (rel > max_rel[sI]) max_rel[sI] = rel;
        if (!(rel <= 1e-4)) {
          snprintf(err, sizeof err, "C[%zu][%zu] = %.9g, host %.9g", i, j, (double)C[i * N + j],
                   want);
          row_error(r, S[sI].label, err);
          break;
        }
      }
    }
    note(r, "256 samples checked (max rel err %s %.1e, %s %.1e); median of %d batches of %d",
         S[0].label, max_rel[0], S[1].label, max_rel[1], opt.reps, ops);
    for (int sI = 0; sI < 2; ++sI) {
      if (ba[sI]) lightos_buffer_release(ba[sI]);
      if (bb[sI]) lightos_buffer_release(bb[sI]);
      if (bc[sI]) lightos_buffer_release(bc[sI]);
      if (kr[sI].k) lightos_kernel_release(kr[sI].k);
      if (p[sI]) lightos_program_release(p[sI]);
    }
    free(A);
    free(B);
    free(C);
  }
  if (S[0].own) {
    lightos_queue_release(S[0].q);
    lightos_context_release(S[0].ctx);
  }
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(FILE* f) {
  fprintf(f,
          "usage: bench_gpu [--markdown FILE] [--reps N] [--only NAME]... [--device URI]\n"
          "                 [--opencl URI] [--max-n N] [--copy-mib N] [--saxpy-m N]\n"
          "                 [--matmul-n N] [--launches N] [--iters N]\n"
          "       bench_gpu --check-nvrtc [ARCH]\n"
          "  NAME: dispatch, gemm, sgemm, copy, opencl\n");
}

static int check_nvrtc(const char* arch) {
  void* image = NULL;
  size_t size = 0;
  char err[1400];
  char why[256];
  const lk_nvrtc_api_t* rtc = lk_nvrtc_api_get(why, sizeof why);
  if (!rtc) {
    printf("bench_gpu: NVRTC not available: %s\n", why);
    return 0;
  }
  if (nvrtc_build(arch, &image, &size, err, sizeof err)) {
    printf("bench_gpu: NVRTC %d.%d (%s): building the raw-launch kernel for %s failed: %s\n",
           rtc->major, rtc->minor, rtc->path, arch, err);
    return 1;
  }
  const unsigned char* b = image;
  bool elf = size > 4 && b[0] == 0x7f && b[1] == 'E' && b[2] == 'L' && b[3] == 'F';
  printf("bench_gpu: NVRTC %d.%d (%s): built the raw-launch kernel for %s: %zu bytes (%s)\n",
         rtc->major, rtc->minor, rtc->path, arch, size,
         elf ? "an ELF cubin" : arch[0] == 'c' ? "PTX" : "not an ELF image");
  free(image);
  return elf || arch[0] == 'c' ? 0 : 1;
}

static int parse_int(const char* s, int lo, int hi, const char* what) {
  char* end = NULL;
  long v = strtol(s, &end, 10);
  if (!end || *end || v < lo || v > hi) {
    fprintf(stderr, "bench_gpu: %s must be an integer in %d..%d (got '%s')\n", what, lo, hi, s);
    exit(2);
  }
  return (int)v;
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    bool hv = i + 1 < argc;
    if (!strcmp(a, "--markdown") && hv) {
      opt.markdown = argv[++i];
    } else if (!strcmp(a, "--reps") && hv) {
      opt.reps = parse_int(argv[++i], 1, 1000, "--reps");
    } else if (!strcmp(a, "--only") && hv) {
      const char* w = argv[++i];
      if (strcmp(w, "dispatch") && strcmp(w, "gemm") && strcmp(w, "sgemm") && strcmp(w, "copy") &&
          strcmp(w, "opencl")) {
        usage(stderr);
        return 2;
      }
      if (opt.only_count < 8) opt.only[opt.only_count++] = w;
    } else if (!strcmp(a, "--device") && hv) {
      opt.device = argv[++i];
    } else if (!strcmp(a, "--opencl") && hv) {
      opt.opencl = argv[++i];
    } else if (!strcmp(a, "--max-n") && hv) {
      opt.max_n = parse_int(argv[++i], 16, 32768, "--max-n");
    } else if (!strcmp(a, "--copy-mib") && hv) {
      opt.copy_mib = parse_int(argv[++i], 1, 16384, "--copy-mib");
    } else if (!strcmp(a, "--saxpy-m") && hv) {
      opt.saxpy_m = parse_int(argv[++i], 1, 4095, "--saxpy-m");
    } else if (!strcmp(a, "--matmul-n") && hv) {
      opt.matmul_n = parse_int(argv[++i], 16, 32768, "--matmul-n");
    } else if (!strcmp(a, "--launches") && hv) {
      opt.launches = parse_int(argv[++i], 1, 1000000, "--launches");
    } else if (!strcmp(a, "--iters") && hv) {
      opt.iters = parse_int(argv[++i], 10, 10000000, "--iters");
    } else if (!strcmp(a, "--check-nvrtc")) {
      const char* arch = hv && argv[i + 1][0] != '-' ? argv[++i] : "sm_90";
      return check_nvrtc(arch);
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }

  lk_t L;
  memset(&L, 0, sizeof L);
  if (lightos_device_from_uri(opt.device, &L.dev) || lightos_device_get_info(L.dev, &L.info)) {
    /* No such device: say why (the CUDA backend's reason) and skip. */
    char msg[600];
    snprintf(msg, sizeof msg, "%s", lk_err());
    const char* reason = NULL;
    uint32_t nb = 0;
    if (!lightos_backend_count(&nb))
      for (uint32_t i = 0; i < nb; ++i) {
        lightos_backend_info_t bi;
        if (!lightos_backend_get_info(i, &bi) && bi.backend == LIGHTOS_BACKEND_CUDA)
          reason = bi.available ? "the CUDA backend is available but has no such device"
                                : bi.reason;
      }
    if (reason && strstr(msg, reason)) reason = NULL; /* said already */
    printf("bench_gpu: skipped: %s is not available (%s)%s%s\n", opt.device, msg,
           reason ? "; cuda backend: " : "", reason ? reason : "");
    return 0;
  }
  L.is_cuda = L.info.backend == LIGHTOS_BACKEND_CUDA;
  if (lightos_context_create_for_device(L.dev, LIGHTOS_CONTEXT_DEFAULT, &L.ctx) ||
      lightos_queue_create(L.ctx, LIGHTOS_QUEUE_DEFAULT, &L.q)) {
    fprintf(stderr, "bench_gpu: %s: %s\n", opt.device, lk_err());
    return 1;
  }
  if (lightos_context_create_for_device(L.dev, LIGHTOS_CONTEXT_DETERMINISTIC, &L.det) ||
      lightos_queue_create(L.det, LIGHTOS_QUEUE_DEFAULT, &L.det_q)) {
    fprintf(stderr, "bench_gpu: %s (deterministic context): %s\n", opt.device, lk_err());
    failures++;
    if (L.det) lightos_context_release(L.det);
    L.det = NULL;
  }
  raw_t R;
  raw_open(&R, &L.info);
  if (L.is_cuda && !R.ok) {
    fprintf(stderr, "bench_gpu: the CUDA baseline cannot run: %s\n", R.why);
    failures++;
  }

  char hdr[4][1200];
  snprintf(hdr[0], sizeof hdr[0], "LightOS %s, device %s: %s (%s), %u compute units, %.1f GiB",
           lightos_version_string(), L.info.uri, L.info.name, L.info.driver_version,
           L.info.compute_units, (double)L.info.global_mem_bytes / (1u << 30));
  if (R.ok) {
    char nv[300] = "NVRTC not found";
    char why[256];
    const lk_nvrtc_api_t* rtc = lk_nvrtc_api_get(why, sizeof why);
    if (rtc) snprintf(nv, sizeof nv, "NVRTC %d.%d (%s)", rtc->major, rtc->minor, rtc->path);
    char bl[400];
    if (R.blas)
      snprintf(bl, sizeof bl, "cuBLAS %d.%d.%d (%s)", R.blas->major, R.blas->minor,
               R.blas->patch, R.blas->path);
    else
      snprintf(bl, sizeof bl, "no cuBLAS: %s", R.blas_why);
    snprintf(hdr[1], sizeof hdr[1],
             "baseline: the CUDA driver API on the same primary context (sm_%d%d), %s, %s",
             R.cc_major, R.cc_minor, bl, nv);
  } else {
    snprintf(hdr[1], sizeof hdr[1], "baseline: none (%s): LightOS side only", R.why);
  }
  snprintf(hdr[2], sizeof hdr[2],
           "timing: wall clock around a batch and its wait, per operation; sides interleaved; "
           "median of %d batches; ratio = baseline time / LightOS time",
           opt.reps);
  snprintf(hdr[3], sizeof hdr[3], "environment: LIGHTOS_ALLOW_TF32=%s, LIGHTOS_CUDA_BLAS=%s",
           getenv("LIGHTOS_ALLOW_TF32") ? getenv("LIGHTOS_ALLOW_TF32") : "(unset)",
           getenv("LIGHTOS_CUDA_BLAS") ? getenv("LIGHTOS_CUDA_BLAS") : "(unset)");
  for (int i = 0; i < 4; ++i) printf("%s\n", hdr[i]);
  printf("\n");
  fflush(stdout);

  double t_start = now_ms();
  if (selected("dispatch")) bench_dispatch(&L, &R);
  if (selected("gemm") || selected("sgemm"))
    bench_gemm(&L, &R, selected("gemm"), selected("sgemm"));
  if (selected("copy")) bench_copy(&L, &R);
  if (selected("opencl")) bench_opencl(&L);

  printf("\n");
  print_table(stdout, false);
  printf("\nratio = baseline time / LightOS time (> 1: LightOS faster); total %.1f s; "
         "%d error(s)\n",
         (now_ms() - t_start) / 1e3, failures);
  if (opt.markdown) {
    FILE* f = fopen(opt.markdown, "w");
    if (!f) {
      fprintf(stderr, "bench_gpu: cannot write %s: %s\n", opt.markdown, strerror(errno));
      failures++;
    } else {
      fprintf(f, "# bench_gpu: LightOS CUDA backend vs direct CUDA\n\n");
      for (int i = 0; i < 4; ++i) fprintf(f, "- %s\n", hdr[i]);
      fprintf(f, "\nratio = baseline time / LightOS time (> 1: LightOS faster)\n\n");
      print_table(f, true);
      fclose(f);
    }
  }

  raw_close(&R);
  if (L.det_q) lightos_queue_release(L.det_q);
  if (L.det) lightos_context_release(L.det);
  lightos_queue_release(L.q);
  lightos_context_release(L.ctx);
  return failures ? 1 : 0;
}
