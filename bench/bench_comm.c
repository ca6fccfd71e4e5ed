/* bench_comm: LightOS collectives at every determinism level, timed the way
 * nccl-tests times them, beside a baseline called directly in the same run.
 *
 *   bench_comm [--ranks N] [--devices cpu|cuda|opencl|cuda+cpu] [--colls LIST]
 *              [--levels LIST] [--dtype T] [--op OP] [--root R]
 *              [--min SIZE] [--max SIZE] [--step-factor F] [--iters N]
 *              [--warmup N] [--budget-ms MS] [--timeout S] [--quick]
 *              [--no-baseline]
 *   mpirun -np N bench_comm --mpi [--devices cpu|cuda] [...]
 *
 * Modes:
 *   in-process  one process, --ranks devices (cpu: the CPU split into N
 *               devices with LIGHTOS_CPU_DEVICES=N; cuda/opencl: the first
 *               N devices of that backend); lightos_comm_init_all_config per
 *               level; one thread enqueues the operation on every rank (in
 *               a lightos_comm_group_start/end) and then finishes every
 *               rank's queue.  Baseline with cuda: NCCL (libnccl.so.2,
 *               dlopen'ed) on the same buffers' device pointers, on streams
 *               of the same primary contexts, in ncclGroupStart/End across
 *               the devices.  With cuda+cpu (N-1 CUDA devices and the CPU):
 *               the same group not composed (LIGHTOS_COMM_HIERARCHY=0) as
 *               the baseline, "flat".  No baseline on cpu or opencl ("-").
 *   MPI         (a build with MPI; --mpi, or started by mpirun) one rank per
 *               process, lightos_comm_init_mpi over MPI_COMM_WORLD; device
 *               cpu, or cuda:<local rank>.  Baselines: MPI_Allreduce,
 *               MPI_Reduce_scatter_block, MPI_Allgather, MPI_Bcast,
 *               MPI_Reduce, MPI_Alltoall on host memory; with cuda also NCCL
 *               (ncclGetUniqueId on rank 0, MPI_Bcast, ncclCommInitRank).
 *
 * Every operation runs out of place (separate send and receive buffers),
 * LightOS and baselines alike.
 *
 * Timing (both sides the same way): one checked operation, --warmup
 * untimed ones, then the timed iterations, as nccl-tests does: (MPI:
 * barrier,) start the clock, issue the operation on every local rank
 * batch times back to back, wait for all of them, stop the clock; the
 * batch's time over its operations.  Five batches (fewer when fewer
 * iterations fit); the table shows the median batch.  With --sync-each
 * every operation is its own batch (the latency of one operation,
 * including the host's issue).  Under MPI each batch's time is the maximum
 * over the ranks.  The number of timed iterations is what fits in
 * --budget-ms (from the warm-up's time), at least 3 and at most --iters.
 * The last column, "issue us (base)", is LightOS's median time to issue the
 * operation on every local rank (the host's part of the time), and in
 * parentheses the first baseline's.
 *
 * size is the per-rank total buffer as in nccl-tests: the buffer of
 * allreduce, broadcast and reduce, the send buffer of reduce_scatter and
 * alltoall, the receive buffer of allgather; count = size / element size.
 *   algbw = size / time            (GB/s, 1 GB = 1e9 bytes)
 *   busbw = algbw * factor         allreduce 2(n-1)/n; reduce_scatter,
 *                                  allgather, alltoall (n-1)/n;
 *                                  broadcast, reduce 1
 *   ratio = LightOS busbw / baseline busbw  (> 1: LightOS faster)
 *
 * Each size's first operation is checked against values known in closed
 * form (for a sum: rank r holds (r+1)*k, so the result is n(n+1)/2*k,
 * exact in the element type), for LightOS and for each baseline; a wrong
 * result prints a FAIL line, gets no time, and the exit status is 1.
 * Bad arguments: a message and exit status 2.
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

#include "comm/comm_reduce.h" /* lk_f16_to_f32 ... */
#include "core/object.h"
#include "hal/cuda/cuda_backend.h"
#include "lightos/comm.h"
#include "lightos/lightos.h"
#include "runtime/runtime.h"

#ifdef LK_BENCH_MPI
#include <mpi.h>

#include "lightos/comm_mpi.h"
#endif

#define BENCH_NAME "bench_comm"
#include "bench_util.h"

#define MAX_RANKS 64 /* in-process */
#define MAX_SIZES 64

/* ---- Collectives and options ------------------------------------------------ */

enum { C_ALLREDUCE, C_REDUCE_SCATTER, C_ALLGATHER, C_BROADCAST, C_REDUCE, C_ALLTOALL, C_COUNT };
static const char* const coll_name[C_COUNT] = {"allreduce", "reduce_scatter", "allgather",
                                               "broadcast", "reduce",         "alltoall"};
static bool coll_reduces(int c) {
  return c == C_ALLREDUCE || c == C_REDUCE_SCATTER || c == C_REDUCE;
}
static bool coll_rooted(int c) { return c == C_BROADCAST || c == C_REDUCE; }
/* Whether size is split into nranks parts (count per rank = size/n). */
static bool coll_split(int c) {
  return c == C_REDUCE_SCATTER || c == C_ALLGATHER || c == C_ALLTOALL;
}
static double bus_factor(int c, uint32_t n) {
  switch (c) {
    case C_ALLREDUCE: return 2.0 * (n - 1) / n;
    case C_REDUCE_SCATTER:
    case C_ALLGATHER:
    case C_ALLTOALL: return (double)(n - 1) / n;
    default: return 1.0;
  }
}

enum { DEV_CPU, DEV_CUDA, DEV_OPENCL, DEV_MIXED };
static const char* const dev_name[] = {"cpu", "cuda", "opencl", "cuda+cpu"};

typedef struct opts {
  uint32_t ranks;
  bool ranks_set;
  int devices;
  bool mpi;
  unsigned colls;  /* bit per C_* */
  unsigned levels; /* bit per lightos_determinism_t */
  bool levels_set, strict_dropped;
  lightos_dtype_t dtype;
  lightos_reduce_op_t op;
  uint32_t root;
  size_t min_bytes, max_bytes;
  bool max_set;
  double step;
  bool step_set;
  int iters, warmup;
  bool iters_set, warmup_set;
  double budget_ms;
  bool sync_each;
  bool budget_set;
  double timeout_s;
  bool quick;
  bool baseline;
} opts_t;

static opts_t opt = {.ranks = 2,
                     .devices = DEV_CPU,
                     .colls = 1u << C_ALLREDUCE,
                     .levels = 0xfu,
                     .dtype = LIGHTOS_DTYPE_F32,
                     .op = LIGHTOS_OP_SUM,
                     .min_bytes = 8,
                     .step = 2,
                     .iters = 100,
                     .warmup = 2,
                     .budget_ms = 100,
                     .timeout_s = 120,
                     .baseline = true};

static const char* op_name(lightos_reduce_op_t op) {
  switch (op) {
    case LIGHTOS_OP_SUM: return "sum";
    case LIGHTOS_OP_PROD: return "prod";
    case LIGHTOS_OP_MIN: return "min";
    case LIGHTOS_OP_MAX: return "max";
    case LIGHTOS_OP_AVG: return "avg";
  }
  return "?";
}

static void usage(FILE* f) {
  fprintf(f,
          "usage: bench_comm [options]            (in-process: one process, N devices)\n"
          "       mpirun -np N bench_comm --mpi [options]   (one rank per process)\n"
          "\n"
          "  --ranks N          in-process ranks (default 2)\n"
          "  --devices KIND     cpu (default), cuda or opencl: the first N devices of that\n"
          "                     backend (cpu: LIGHTOS_CPU_DEVICES=N); cuda+cpu: the first\n"
          "                     N-1 CUDA devices and the CPU, a composed group, against\n"
          "                     the same group flat; under MPI cpu, or cuda (device =\n"
          "                     the local rank)\n"
          "  --mpi              run under MPI (needs a build with MPI; also automatic\n"
          "                     when started by mpirun)\n"
          "  --colls LIST       allreduce (default), all, or a comma list of allreduce,\n"
          "                     reduce_scatter, allgather, broadcast, reduce, alltoall\n"
          "  --levels LIST      comma list of none, run, topology, strict (default all)\n"
          "  --dtype T          f32 (default), f64, f16, bf16, i32, i64, u8\n"
          "  --op OP            sum (default), prod, min, max, avg\n"
          "  --root R           root of broadcast and reduce (default 0)\n"
          "  --min SIZE         smallest size in bytes (default 8; suffixes K, M, G)\n"
          "  --max SIZE         largest size (default 256M on cpu, 1G with GPUs;\n"
          "                     --quick: 8M)\n"
          "  --step-factor F    sizes grow by this factor (default 2; --quick: 4)\n"
          "  --iters N          at most N timed iterations per size (default 100;\n"
          "                     --quick: 20)\n"
          "  --warmup N         untimed iterations per size (default 2; --quick: 1)\n"
          "  --budget-ms MS     timed iterations per size stop near MS milliseconds\n"
          "                     (default 100; --quick: 20); 0: always --iters\n"
          "  --timeout S        communicator timeout in seconds (default 120)\n"
          "  --sync-each        wait for every operation before issuing the next\n"
          "                     (default: batches back to back, as nccl-tests)\n"
          "  --quick            the short run above\n"
          "  --no-baseline      LightOS only\n"
          "  -h, --help         this text\n"
          "\n"
          "Columns: size = per-rank total buffer (as nccl-tests), count = size/element\n"
          "size, time = median us, algbw = size/time, busbw = algbw * factor\n"
          "(allreduce 2(n-1)/n; reduce_scatter, allgather, alltoall (n-1)/n; broadcast,\n"
          "reduce 1), ratio = LightOS busbw / baseline busbw.  See docs/benchmarks.md.\n");
}

static void bad_arg(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bad_arg(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench_comm: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n(bench_comm --help lists the options)\n");
  va_end(ap);
  exit(2);
}

static long parse_long(const char* s, long lo, long hi, const char* what) {
  char* end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (!*s || !end || *end || errno || v < lo || v > hi)
    bad_arg("%s must be an integer in %ld..%ld (got '%s')", what, lo, hi, s);
  return v;
}

static double parse_double(const char* s, double lo, double hi, const char* what) {
  char* end = NULL;
  double v = strtod(s, &end);
  if (!*s || !end || *end || !(v >= lo && v <= hi))
    bad_arg("%s must be a number in %g..%g (got '%s')", what, lo, hi, s);
  return v;
}

/* "8", "8B", "4K", "4KiB", "64M", "1G" (binary multiples). */
static size_t parse_size(const char* s, const char* what) {
  char* end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (!*s || s[0] == '-' || end == s || errno) bad_arg("%s: '%s' is not a size", what, s);
  unsigned long long mul = 1;
  if (*end == 'K' || *end == 'k') mul = 1ull << 10, end++;
  else if (*end == 'M' || *end == 'm') mul = 1ull << 20, end++;
  else if (*end == 'G' || *end == 'g') mul = 1ull << 30, end++;
  if (mul > 1 && (!strcmp(end, "iB") || !strcmp(end, "B"))) end += strlen(end);
  else if (mul == 1 && (!strcmp(end, "B") || !strcmp(end, "b"))) end++;
  if (*end) bad_arg("%s: '%s' is not a size (a number with an optional K, M or G)", what, s);
  if (v == 0 || v > (1ull << 40) / mul) bad_arg("%s: '%s' must be in 1..1T", what, s);
  return (size_t)(v * mul);
}

static void parse_colls(const char* s) {
  if (!strcmp(s, "all")) {
    opt.colls = (1u << C_COUNT) - 1;
    return;
  }
  opt.colls = 0;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int c = 0;
    while (c < C_COUNT && strcmp(t, coll_name[c])) c++;
    if (c == C_COUNT)
      bad_arg("--colls: '%s' is not all, allreduce, reduce_scatter, allgather, broadcast, "
              "reduce or alltoall", t);
    opt.colls |= 1u << c;
  }
  if (!opt.colls) bad_arg("--colls: '%s' names no collective", s);
}

static void parse_levels(const char* s) {
  if (!strcmp(s, "all")) {
    opt.levels = 0xfu;
    return;
  }
  opt.levels = 0;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int l = 0;
    while (l < 4 && strcmp(t, lightos_determinism_name((lightos_determinism_t)l))) l++;
    if (l == 4) bad_arg("--levels: '%s' is not none, run, topology or strict", t);
    opt.levels |= 1u << l;
  }
  if (!opt.levels) bad_arg("--levels: '%s' names no level", s);
}

static lightos_dtype_t parse_dtype(const char* s) {
  for (int d = LIGHTOS_DTYPE_F32; d <= LIGHTOS_DTYPE_U8; ++d)
    if (!strcmp(s, lightos_dtype_name((lightos_dtype_t)d))) return (lightos_dtype_t)d;
  bad_arg("--dtype: '%s' is not f32, f64, f16, bf16, i32, i64 or u8", s);
}

static lightos_reduce_op_t parse_op(const char* s) {
  for (int o = LIGHTOS_OP_SUM; o <= LIGHTOS_OP_AVG; ++o)
    if (!strcmp(s, op_name((lightos_reduce_op_t)o))) return (lightos_reduce_op_t)o;
  bad_arg("--op: '%s' is not sum, prod, min, max or avg", s);
}

/* ---- Errors ------------------------------------------------------------------- */

static int g_rank;     /* this process's first global rank (MPI: its rank) */
static bool g_printer; /* this process prints the tables */
static int failures;

static const char* lk_err(void) {
  const lightos_error_info_t* e = lightos_last_error();
  static _Thread_local char buf[512];
  snprintf(buf, sizeof buf, "%s: %s", lightos_status_string(e->status), e->message);
  return buf;
}

static void die(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- Element values ------------------------------------------------------------ */

static size_t g_es; /* element size */

static double dt_get(lightos_dtype_t dt, const void* base, size_t i) {
  switch (dt) {
    case LIGHTOS_DTYPE_F32: return ((const float*)base)[i];
    case LIGHTOS_DTYPE_F64: return ((const double*)base)[i];
    case LIGHTOS_DTYPE_F16: return lk_f16_to_f32(((const uint16_t*)base)[i]);
    case LIGHTOS_DTYPE_BF16: return lk_bf16_to_f32(((const uint16_t*)base)[i]);
    case LIGHTOS_DTYPE_I32: return ((const int32_t*)base)[i];
    case LIGHTOS_DTYPE_I64: return (double)((const int64_t*)base)[i];
    case LIGHTOS_DTYPE_U8: return ((const uint8_t*)base)[i];
    default: return NAN;
  }
}

static void dt_put(lightos_dtype_t dt, void* base, size_t i, double v) {
  switch (dt) {
    case LIGHTOS_DTYPE_F32: ((float*)base)[i] = (float)v; break;
    case LIGHTOS_DTYPE_F64: ((double*)base)[i] = v; break;
    case LIGHTOS_DTYPE_F16: ((uint16_t*)base)[i] = lk_f32_to_f16((float)v); break;
    case LIGHTOS_DTYPE_BF16: ((uint16_t*)base)[i] = lk_f32_to_bf16((float)v); break;
    case LIGHTOS_DTYPE_I32: ((int32_t*)base)[i] = (int32_t)(int64_t)v; break;
    case LIGHTOS_DTYPE_I64: ((int64_t*)base)[i] = (int64_t)v; break;
    case LIGHTOS_DTYPE_U8: ((uint8_t*)base)[i] = (uint8_t)(int64_t)v; break;
    default: break;
  }
}

static bool dt_is_int(lightos_dtype_t dt) {
  return dt == LIGHTOS_DTYPE_I32 || dt == LIGHTOS_DTYPE_I64 || dt == LIGHTOS_DTYPE_U8;
}

/* Largest integer the type holds exactly (and every integer below it). */
static double dt_exact_limit(lightos_dtype_t dt) {
  switch (dt) {
    case LIGHTOS_DTYPE_F32: return 16777216.0;
    case LIGHTOS_DTYPE_F64: return 9007199254740992.0;
    case LIGHTOS_DTYPE_F16: return 2048.0;
    case LIGHTOS_DTYPE_BF16: return 256.0;
    case LIGHTOS_DTYPE_I32: return 2147483647.0;
    case LIGHTOS_DTYPE_I64: return 4.0e18;
    case LIGHTOS_DTYPE_U8: return 255.0;
    default: return 1.0;
  }
}

/* An integer result as the type's wrapping arithmetic gives it. */
static double dt_wrap(lightos_dtype_t dt, uint64_t v) {
  switch (dt) {
    case LIGHTOS_DTYPE_I32: return (double)(int32_t)(uint32_t)v;
    case LIGHTOS_DTYPE_U8: return (double)(uint8_t)v;
    default: return (double)(int64_t)v;
  }
}

/* The test values.  Data movement: rank r's element j is a small integer
 * 1 + (131 r + 7 j) mod M.  Reductions: (r+1) * kbase * (1 + j mod m), m
 * the largest (up to 3) with which every result stays exact in the type;
 * when none fits ("sparse"), only rank j mod n holds kbase * (1 + j mod 3)
 * at element j and the others 0.  prod: 2 where (r + j) mod 4 = 0, else 1.
 * avg uses kbase 2 so that (n+1)/2 * k is an integer. */
typedef struct plan {
  lightos_dtype_t dt;
  lightos_reduce_op_t op;
  uint32_t n;
  double kbase;
  uint32_t m;
  bool sparse;
  uint32_t M;
  double* table; /* expected reduction result by j mod period */
  size_t period;
  unsigned char* scratch; /* max(period, M) elements */
} plan_t;

static plan_t g_plan;

static double gen_move(uint32_t r, size_t j) {
  return 1.0 + (double)(((uint64_t)r * 131u + (uint64_t)(j % g_plan.M) * 7u) % g_plan.M);
}

static double gen_reduce(uint32_t r, size_t j) {
  const plan_t* P = &g_plan;
  if (P->op == LIGHTOS_OP_PROD) return ((r + j) % 4 == 0) ? 2.0 : 1.0;
  if (P->sparse) return (j % P->n == r) ? P->kbase * (double)(1 + j % 3) : 0.0;
  return (double)(r + 1) * P->kbase * (double)(1 + j % P->m);
}

/* The reduction over ranks of element j, in the type's arithmetic. */
static double reduce_expected(size_t j) {
  const plan_t* P = &g_plan;
  if (dt_is_int(P->dt)) {
    uint64_t acc = (uint64_t)(int64_t)gen_reduce(0, j);
    for (uint32_t r = 1; r < P->n; ++r) {
      uint64_t v = (uint64_t)(int64_t)gen_reduce(r, j);
      switch (P->op) {
        case LIGHTOS_OP_SUM:
        case LIGHTOS_OP_AVG: acc += v; break;
        case LIGHTOS_OP_PROD: acc *= v; break;
        case LIGHTOS_OP_MIN: acc = (int64_t)v < (int64_t)acc ? v : acc; break;
        case LIGHTOS_OP_MAX: acc = (int64_t)v > (int64_t)acc ? v : acc; break;
      }
    }
    double w = dt_wrap(P->dt, acc);
    if (P->op == LIGHTOS_OP_AVG) w = trunc(w / P->n);
    return w;
  }
  double acc = gen_reduce(0, j);
  for (uint32_t r = 1; r < P->n; ++r) {
    double v = gen_reduce(r, j);
    switch (P->op) {
      case LIGHTOS_OP_SUM:
      case LIGHTOS_OP_AVG: acc += v; break;
      case LIGHTOS_OP_PROD: acc *= v; break;
      case LIGHTOS_OP_MIN: acc = v < acc ? v : acc; break;
      case LIGHTOS_OP_MAX: acc = v > acc ? v : acc; break;
    }
  }
  if (P->op == LIGHTOS_OP_AVG) acc /= P->n;
  unsigned char tmp[8];
  dt_put(P->dt, tmp, 0, acc); /* rounded to the type */
  return dt_get(P->dt, tmp, 0);
}

static void plan_init(lightos_dtype_t dt, lightos_reduce_op_t op, uint32_t n) {
  plan_t* P = &g_plan;
  P->dt = dt;
  P->op = op;
  P->n = n;
  double L = dt_exact_limit(dt);
  P->M = (uint32_t)(L < 251 ? L - 1 : 250);
  P->kbase = op == LIGHTOS_OP_AVG ? 2.0 : 1.0;
  double most = (op == LIGHTOS_OP_SUM || op == LIGHTOS_OP_AVG) ? (double)n * (n + 1) / 2 : n;
  double m = floor(L / (most * P->kbase));
  P->sparse = m < 1;
  P->m = m >= 3 ? 3 : m >= 1 ? (uint32_t)m : 1;
  P->period = (size_t)12 * n; /* a multiple of 3, 4, m and n */
  P->table = xmalloc(P->period * sizeof *P->table);
  for (size_t j = 0; j < P->period; ++j) P->table[j] = reduce_expected(j);
  P->scratch = xmalloc((P->period > P->M ? P->period : P->M) * 8);
}

static bool results_match(double got, double want) {
  if (got == want) return true;
  if (g_plan.op != LIGHTOS_OP_AVG || isnan(got)) return false;
  /* avg: the division may round differently (sum/n in the accumulation
   * type, then to the element type). */
  if (dt_is_int(g_plan.dt)) return fabs(got - want) <= 1.0;
  double rel = g_plan.dt == LIGHTOS_DTYPE_F64   ? 1e-14
               : g_plan.dt == LIGHTOS_DTYPE_F32 ? 1e-6
               : g_plan.dt == LIGHTOS_DTYPE_F16 ? 2e-3
                                                : 1e-2;
  return fabs(got - want) <= rel * fabs(want) + 1e-30;
}

/* Elements of one rank's send and receive buffers for collective c at
 * per-rank count cnt (count of one part for the split collectives). */
static size_t send_elems(int c, size_t cnt, uint32_t n) {
  return (c == C_REDUCE_SCATTER || c == C_ALLTOALL) ? cnt * n : cnt;
}
static size_t recv_elems(int c, size_t cnt, uint32_t n) {
  return (c == C_ALLGATHER || c == C_ALLTOALL) ? cnt * n : cnt;
}

/* Copies the first `period` elements of host over the rest (ne in all):
 * the test values are periodic in the element index. */
static void tile(void* host, size_t period, size_t ne) {
  unsigned char* p = host;
  for (size_t done = period; done < ne;) {
    size_t k = done < ne - done ? done : ne - done;
    memcpy(p + done * g_es, p, k * g_es);
    done += k;
  }
}

/* Rank r's send buffer. */
static void fill_send(int c, uint32_t r, size_t cnt, void* host) {
  size_t ne = send_elems(c, cnt, g_plan.n);
  size_t period = coll_reduces(c) ? g_plan.period : g_plan.M;
  size_t m = ne < period ? ne : period;
  for (size_t j = 0; j < m; ++j)
    dt_put(g_plan.dt, host, j, coll_reduces(c) ? gen_reduce(r, j) : gen_move(r, j));
  tile(host, m, ne);
}

/* Random bytes (the receive buffer before a checked operation). */
static void poison(void* host, size_t bytes) {
  static unsigned char block[4096];
  static bool made;
  if (!made) {
    for (size_t i = 0; i < sizeof block; ++i) block[i] = (unsigned char)(rng_unit() * 256.0f);
    made = true;
  }
  unsigned char* p = host;
  for (size_t i = 0; i < bytes; i += sizeof block)
    memcpy(p + i, block, bytes - i < sizeof block ? bytes - i : sizeof block);
}

/* One block of a receive buffer: what rank q expects in the part that
 * came from rank p (or the whole buffer). */
typedef struct blk {
  int c;
  uint32_t p, q;
  size_t cnt;
} blk_t;

static double want_at(const blk_t* b, size_t i) {
  switch (b->c) {
    case C_ALLREDUCE:
    case C_REDUCE: return g_plan.table[i % g_plan.period];
    case C_REDUCE_SCATTER: return g_plan.table[((size_t)b->q * b->cnt + i) % g_plan.period];
    case C_ALLGATHER:
    case C_BROADCAST: return gen_move(b->p, i);      /* p: the source (root) */
    default: return gen_move(b->p, (size_t)b->q * b->cnt + i); /* alltoall */
  }
}

/* Checks len elements of data against the block's values: whole periods by
 * memcmp against the expected encoding, element by element where that
 * differs (it decides: -0 == +0, avg's tolerance).  off: the block's first
 * element in the receive buffer, for the message. */
static int check_block(const blk_t* b, const unsigned char* data, size_t len, size_t off,
                       char* why, size_t cap) {
  unsigned char* want_bytes = g_plan.scratch;
  size_t period = coll_reduces(b->c) ? g_plan.period : g_plan.M;
  size_t m = len < period ? len : period;
  for (size_t j = 0; j < m; ++j) dt_put(g_plan.dt, want_bytes, j, want_at(b, j));
  for (size_t start = 0; start < len; start += period) {
    size_t k = len - start < period ? len - start : period;
    if (!memcmp(data + start * g_es, want_bytes, k * g_es)) continue;
    for (size_t j = start; j < start + k; ++j) {
      double got = dt_get(g_plan.dt, data, j), want = want_at(b, j);
      if (!results_match(got, want)) {
        snprintf(why, cap, "rank %u element %zu = %.17g, expected %.17g", b->q, off + j, got,
                 want);
        return -1;
      }
    }
  }
  return 0;
}

/* Checks rank q's receive buffer; 0, or -1 with a message in why. */
static int check_recv(int c, uint32_t q, uint32_t root, size_t cnt, const void* host, char* why,
                      size_t cap) {
  const uint32_t n = g_plan.n;
  if (c == C_REDUCE && q != root) return 0;
  if (c == C_ALLGATHER || c == C_ALLTOALL) {
    for (uint32_t p = 0; p < n; ++p) {
      blk_t b = {c, p, q, cnt};
      if (check_block(&b, (const unsigned char*)host + (size_t)p * cnt * g_es, cnt,
                      (size_t)p * cnt, why, cap))
        return -1;
    }
    return 0;
  }
  blk_t b = {c, c == C_BROADCAST ? root : 0, q, cnt};
  return check_block(&b, host, cnt, 0, why, cap);
}

/* ---- NCCL (dlopen'ed) ------------------------------------------------------------ */

typedef int ncclResult_t;
typedef struct nccl_comm_s* ncclComm_t;
typedef struct {
  char internal[128];
} ncclUniqueId;

typedef struct nccl_api {
  void* lib;
  ncclResult_t (*GetUniqueId)(ncclUniqueId*);
  ncclResult_t (*CommInitAll)(ncclComm_t*, int, const int*);
  ncclResult_t (*CommInitRank)(ncclComm_t*, int, ncclUniqueId, int);
  ncclResult_t (*CommDestroy)(ncclComm_t);
  ncclResult_t (*AllReduce)(const void*, void*, size_t, int, int, ncclComm_t, CUstream);
  ncclResult_t (*ReduceScatter)(const void*, void*, size_t, int, int, ncclComm_t, CUstream);
  ncclResult_t (*AllGather)(const void*, void*, size_t, int, ncclComm_t, CUstream);
  ncclResult_t (*Broadcast)(const void*, void*, size_t, int, int, ncclComm_t, CUstream);
  ncclResult_t (*Reduce)(const void*, void*, size_t, int, int, int, ncclComm_t, CUstream);
  ncclResult_t (*Send)(const void*, size_t, int, int, ncclComm_t, CUstream);
  ncclResult_t (*Recv)(void*, size_t, int, int, ncclComm_t, CUstream);
  ncclResult_t (*GroupStart)(void);
  ncclResult_t (*GroupEnd)(void);
  const char* (*GetErrorString)(ncclResult_t);
} nccl_api_t;

static const nccl_api_t* nccl_load(char* why, size_t cap) {
  static nccl_api_t api;
  void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!lib) lib = dlopen("libnccl.so", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    snprintf(why, cap, "libnccl.so.2 not found (%s)", e ? e : "dlopen failed");
    return NULL;
  }
  api.lib = lib;
  struct {
    const char* name;
    void** slot;
  } syms[] = {
      {"ncclGetUniqueId", (void**)&api.GetUniqueId},
      {"ncclCommInitAll", (void**)&api.CommInitAll},
      {"ncclCommInitRank", (void**)&api.CommInitRank},
      {"ncclCommDestroy", (void**)&api.CommDestroy},
      {"ncclAllReduce", (void**)&api.AllReduce},
      {"ncclReduceScatter", (void**)&api.ReduceScatter},
      {"ncclAllGather", (void**)&api.AllGather},
      {"ncclBroadcast", (void**)&api.Broadcast},
      {"ncclReduce", (void**)&api.Reduce},
      {"ncclSend", (void**)&api.Send},
      {"ncclRecv", (void**)&api.Recv},
      {"ncclGroupStart", (void**)&api.GroupStart},
      {"ncclGroupEnd", (void**)&api.GroupEnd},
      {"ncclGetErrorString", (void**)&api.GetErrorString},
  };
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; ++i) {
    void* p = dlsym(lib, syms[i].name);
    if (!p) {
      snprintf(why, cap, "libnccl.so.2: symbol %s missing", syms[i].name);
      dlclose(lib);
      return NULL;
    }
    memcpy(syms[i].slot, &p, sizeof p);
  }
  return &api;
}

static int nccl_dtype(lightos_dtype_t dt) {
  switch (dt) {
    case LIGHTOS_DTYPE_U8: return 1;   /* ncclUint8 */
    case LIGHTOS_DTYPE_I32: return 2;  /* ncclInt32 */
    case LIGHTOS_DTYPE_I64: return 4;  /* ncclInt64 */
    case LIGHTOS_DTYPE_F16: return 6;  /* ncclFloat16 */
    case LIGHTOS_DTYPE_F32: return 7;  /* ncclFloat32 */
    case LIGHTOS_DTYPE_F64: return 8;  /* ncclFloat64 */
    case LIGHTOS_DTYPE_BF16: return 9; /* ncclBfloat16 */
    default: return -1;
  }
}

static int nccl_op(lightos_reduce_op_t op) {
  switch (op) {
    case LIGHTOS_OP_SUM: return 0;  /* ncclSum */
    case LIGHTOS_OP_PROD: return 1; /* ncclProd */
    case LIGHTOS_OP_MAX: return 2;  /* ncclMax */
    case LIGHTOS_OP_MIN: return 3;  /* ncclMin */
    case LIGHTOS_OP_AVG: return 4;  /* ncclAvg */
  }
  return 0;
}

/* ---- The world: this process's ranks --------------------------------------------- */

typedef struct world {
  bool mpi;
  uint32_t n;      /* ranks in the group */
  uint32_t nlocal; /* ranks driven by this process */
  uint32_t rank0;  /* global rank of local rank 0 */
  char devs[512];  /* the devices, for the header */
  lightos_context_t ctx[MAX_RANKS];
  lightos_queue_t q[MAX_RANKS];
  lightos_buffer_t sendb[MAX_RANKS], recvb[MAX_RANKS];
  lightos_comm_t comm[4][MAX_RANKS]; /* by level */
  lightos_comm_t flat[4][MAX_RANKS]; /* cuda+cpu: the same group not composed */
  const char* transport[4];
  size_t cap;     /* bytes of each send and receive buffer */
  void* host;     /* cap bytes of host staging */
  /* CUDA (device pointers of the LightOS buffers, streams for NCCL) */
  bool cuda;
  const lk_cuda_api_t* cu;
  CUcontext cuctx[MAX_RANKS];
  CUstream stream[MAX_RANKS];
  int ordinal[MAX_RANKS];
  void *dsend[MAX_RANKS], *drecv[MAX_RANKS]; /* device pointers of sendb, recvb */
  /* baselines */
  const nccl_api_t* nccl;
  ncclComm_t ncomm[MAX_RANKS];
  char nccl_why[300];
  bool mpi_base;  /* MPI on host memory */
  char mpi_why[200];
  void *msend, *mrecv;
} world_t;

static world_t W;

static void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (W.mpi) fprintf(stderr, "bench_comm [rank %d]: ", g_rank);
  else fprintf(stderr, "bench_comm: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
#ifdef LK_BENCH_MPI
  if (W.mpi) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
  exit(1);
}

static void world_barrier(void) {
#ifdef LK_BENCH_MPI
  if (W.mpi) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

/* Element-wise maximum over the processes. */
static void world_max(double* v, int n) {
#ifdef LK_BENCH_MPI
  if (W.mpi) MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
#else
  (void)v;
  (void)n;
#endif
}

/* A failure message agreed by every process: returns 1 (and the message of
 * the lowest failing rank in why, everywhere) when any process failed. */
static int world_fail(int failed, char* why, size_t cap) {
#ifdef LK_BENCH_MPI
  if (W.mpi) {
    int who = failed ? g_rank : (int)W.n;
    MPI_Allreduce(MPI_IN_PLACE, &who, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (who == (int)W.n) return 0;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", failed ? why : "");
    MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, who, MPI_COMM_WORLD);
    snprintf(why, cap, "%s", msg);
    return 1;
  }
#endif
  (void)why;
  (void)cap;
  return failed != 0;
}

/* Device pointer of a LightOS buffer (for NCCL). */
static void* dev_ptr(lightos_buffer_t b) {
  lk_object_t* o = NULL;
  if (lk_handle_resolve(b, LK_OBJ_BUFFER, "buffer", &o)) die("buffer: %s", lk_err());
  lk_buffer_t* lb = (lk_buffer_t*)o;
  return (char*)lb->mem.device_ptr + lb->offset;
}

/* ---- The sides ---------------------------------------------------------------------- */

enum { SIDE_LK, SIDE_NCCL, SIDE_MPI, SIDE_FLAT };

typedef struct op_args {
  int c;
  size_t cnt; /* elements: the buffer (allreduce, broadcast, reduce) or one part */
  int level;  /* SIDE_LK */
} op_args_t;

static char g_fail[720];

static int lk_issue_on(const op_args_t* a, lightos_comm_t (*comms)[MAX_RANKS]) {
  lightos_comm_group_start();
  int rc = 0;
  for (uint32_t i = 0; i < W.nlocal && !rc; ++i) {
    lightos_comm_t cm = comms[a->level][i];
    lightos_buffer_t s = W.sendb[i], r = W.recvb[i];
    lightos_status_t st;
    switch (a->c) {
      case C_ALLREDUCE:
        st = lightos_comm_allreduce(s, r, a->cnt, opt.dtype, opt.op, cm, W.q[i]);
        break;
      case C_REDUCE_SCATTER:
        st = lightos_comm_reduce_scatter(s, r, a->cnt, opt.dtype, opt.op, cm, W.q[i]);
        break;
      case C_ALLGATHER: st = lightos_comm_allgather(s, r, a->cnt, opt.dtype, cm, W.q[i]); break;
      case C_BROADCAST:
        st = lightos_comm_broadcast(s, r, a->cnt, opt.dtype, opt.root, cm, W.q[i]);
        break;
      case C_REDUCE:
        st = lightos_comm_reduce(s, r, a->cnt, opt.dtype, opt.op, opt.root, cm, W.q[i]);
        break;
      default: st = lightos_comm_alltoall(s, r, a->cnt, opt.dtype, cm, W.q[i]); break;
    }
    if (st) {
      snprintf(g_fail, sizeof g_fail, "lightos_comm_%s (rank %u): %s", coll_name[a->c],
               W.rank0 + i, lk_err());
      rc = -1;
    }
  }
  if (lightos_comm_group_end() && !rc) {
    snprintf(g_fail, sizeof g_fail, "lightos_comm_group_end: %s", lk_err());
    rc = -1;
  }
  return rc;
}

static int lk_issue(const op_args_t* a) { return lk_issue_on(a, W.comm); }

static int lk_wait(void) {
  int rc = 0;
  for (uint32_t i = 0; i < W.nlocal; ++i)
    if (lightos_queue_finish(W.q[i]) && !rc) {
      snprintf(g_fail, sizeof g_fail, "lightos_queue_finish (rank %u): %s", W.rank0 + i,
               lk_err());
      rc = -1;
    }
  return rc;
}

#define NCCL_TRY(call, what)                                                               \
  do {                                                                                     \
    ncclResult_t r_ = (call);                                                              \
    if (r_) {                                                                              \
      snprintf(g_fail, sizeof g_fail, "%s: %s (%d)", what, W.nccl->GetErrorString(r_), r_); \
      rc = -1;                                                                             \
    }                                                                                      \
  } while (0)

static int nccl_issue(const op_args_t* a) {
  const nccl_api_t* N = W.nccl;
  int dt = nccl_dtype(opt.dtype), op = nccl_op(opt.op), rc = 0;
  size_t part = a->cnt * g_es;
  NCCL_TRY(N->GroupStart(), "ncclGroupStart");
  for (uint32_t i = 0; i < W.nlocal && !rc; ++i) {
    const char* s = W.dsend[i];
    char* r = W.drecv[i];
    ncclComm_t cm = W.ncomm[i];
    CUstream st = W.stream[i];
    switch (a->c) {
      case C_ALLREDUCE:
        NCCL_TRY(N->AllReduce(s, r, a->cnt, dt, op, cm, st), "ncclAllReduce");
        break;
      case C_REDUCE_SCATTER:
        NCCL_TRY(N->ReduceScatter(s, r, a->cnt, dt, op, cm, st), "ncclReduceScatter");
        break;
      case C_ALLGATHER: NCCL_TRY(N->AllGather(s, r, a->cnt, dt, cm, st), "ncclAllGather"); break;
      case C_BROADCAST:
        NCCL_TRY(N->Broadcast(s, r, a->cnt, dt, (int)opt.root, cm, st), "ncclBroadcast");
        break;
      case C_REDUCE:
        NCCL_TRY(N->Reduce(s, r, a->cnt, dt, op, (int)opt.root, cm, st), "ncclReduce");
        break;
      default:
        for (uint32_t p = 0; p < W.n && !rc; ++p) {
          NCCL_TRY(N->Send(s + p * part, a->cnt, dt, (int)p, cm, st), "ncclSend");
          NCCL_TRY(N->Recv(r + p * part, a->cnt, dt, (int)p, cm, st), "ncclRecv");
        }
        break;
    }
  }
  NCCL_TRY(N->GroupEnd(), "ncclGroupEnd");
  return rc;
}

static int cuda_wait(void) {
  int rc = 0;
  for (uint32_t i = 0; i < W.nlocal; ++i) {
    W.cu->cuCtxSetCurrent(W.cuctx[i]);
    CUresult r = W.cu->cuStreamSynchronize(W.stream[i]);
    if (r && !rc) {
      snprintf(g_fail, sizeof g_fail, "cuStreamSynchronize (rank %u): %s", W.rank0 + i,
               lk_cuda_error_name(r));
      rc = -1;
    }
  }
  return rc;
}

#ifdef LK_BENCH_MPI
static MPI_Datatype mpi_dtype(lightos_dtype_t dt, bool reduces) {
  switch (dt) {
    case LIGHTOS_DTYPE_F32: return MPI_FLOAT;
    case LIGHTOS_DTYPE_F64: return MPI_DOUBLE;
    case LIGHTOS_DTYPE_I32: return MPI_INT32_T;
    case LIGHTOS_DTYPE_I64: return MPI_INT64_T;
    case LIGHTOS_DTYPE_U8: return MPI_UINT8_T;
    default: return reduces ? MPI_DATATYPE_NULL : MPI_UINT16_T; /* f16, bf16: no MPI type */
  }
}

static MPI_Op mpi_op(lightos_reduce_op_t op) {
  switch (op) {
    case LIGHTOS_OP_PROD: return MPI_PROD;
    case LIGHTOS_OP_MIN: return MPI_MIN;
    case LIGHTOS_OP_MAX: return MPI_MAX;
    default: return MPI_SUM; /* avg: MPI has none */
  }
}

static int mpi_issue(const op_args_t* a) {
  MPI_Datatype dt = mpi_dtype(opt.dtype, coll_reduces(a->c));
  MPI_Op op = mpi_op(opt.op);
  int cnt = (int)a->cnt, rc;
  MPI_Comm w = MPI_COMM_WORLD;
  switch (a->c) {
    case C_ALLREDUCE: rc = MPI_Allreduce(W.msend, W.mrecv, cnt, dt, op, w); break;
    case C_REDUCE_SCATTER: rc = MPI_Reduce_scatter_block(W.msend, W.mrecv, cnt, dt, op, w); break;
    case C_ALLGATHER: rc = MPI_Allgather(W.msend, cnt, dt, W.mrecv, cnt, dt, w); break;
    case C_BROADCAST:
      /* MPI_Bcast works on one buffer: the root's data is copied into it
       * once, untimed, before the checked operation (see run_side). */
      rc = MPI_Bcast(W.mrecv, cnt, dt, (int)opt.root, w);
      break;
    case C_REDUCE: rc = MPI_Reduce(W.msend, W.mrecv, cnt, dt, op, (int)opt.root, w); break;
    default: rc = MPI_Alltoall(W.msend, cnt, dt, W.mrecv, cnt, dt, w); break;
  }
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    snprintf(g_fail, sizeof g_fail, "MPI %s: %s", coll_name[a->c], msg);
    return -1;
  }
  return 0;
}
#endif

static int side_issue(int side, const op_args_t* a) {
  switch (side) {
    case SIDE_LK: return lk_issue(a);
    case SIDE_FLAT: return lk_issue_on(a, W.flat);
    case SIDE_NCCL: return nccl_issue(a);
#ifdef LK_BENCH_MPI
    case SIDE_MPI: return mpi_issue(a);
#endif
    default: return -1;
  }
}

static int side_wait(int side) {
  switch (side) {
    case SIDE_LK:
    case SIDE_FLAT: return lk_wait();
    case SIDE_NCCL: return cuda_wait();
    default: return 0; /* MPI calls are blocking */
  }
}

/* Whether the side can run collective c at all (dtype, op). */
static bool side_supports(int side, int c, size_t cnt, char* why, size_t cap) {
  if (side == SIDE_NCCL && nccl_dtype(opt.dtype) < 0) {
    snprintf(why, cap, "no NCCL type for %s", lightos_dtype_name(opt.dtype));
    return false;
  }
#ifdef LK_BENCH_MPI
  if (side == SIDE_MPI && mpi_dtype(opt.dtype, coll_reduces(c)) == MPI_DATATYPE_NULL) {
    snprintf(why, cap, "MPI has no %s reduction", lightos_dtype_name(opt.dtype));
    return false;
  }
  if (side == SIDE_MPI && coll_reduces(c) && opt.op == LIGHTOS_OP_AVG) {
    snprintf(why, cap, "MPI has no avg");
    return false;
  }
  if (side == SIDE_MPI && cnt > (size_t)INT32_MAX) {
    snprintf(why, cap, "MPI counts are int: from %zu elements on, not measured", cnt);
    return false;
  }
#else
  (void)c;
  (void)cnt;
#endif
  (void)why;
  (void)cap;
  return true;
}

/* Writes the test data: every local rank's send buffer; the receive
 * buffers get random bytes. */
static void side_fill(int side, int c, size_t cnt) {
  size_t sb = send_elems(c, cnt, W.n) * g_es, rb = recv_elems(c, cnt, W.n) * g_es;
  for (uint32_t i = 0; i < W.nlocal; ++i) {
    uint32_t r = W.rank0 + i;
    if (side == SIDE_MPI) {
      fill_send(c, r, cnt, W.msend);
      poison(W.mrecv, rb);
      if (c == C_BROADCAST && r == opt.root) memcpy(W.mrecv, W.msend, sb);
      continue;
    }
    fill_send(c, r, cnt, W.host);
    if (lightos_buffer_write(W.sendb[i], 0, sb, W.host)) die("lightos_buffer_write: %s", lk_err());
    poison(W.host, rb);
    if (lightos_buffer_write(W.recvb[i], 0, rb, W.host)) die("lightos_buffer_write: %s", lk_err());
  }
}

/* Checks every local rank's result; 0, or -1 with why. */
static int side_check(int side, int c, size_t cnt, char* why, size_t cap) {
  size_t rb = recv_elems(c, cnt, W.n) * g_es;
  for (uint32_t i = 0; i < W.nlocal; ++i) {
    uint32_t r = W.rank0 + i;
    if (c == C_REDUCE && r != opt.root) continue;
    const void* data = W.mrecv;
    if (side != SIDE_MPI) {
      if (lightos_buffer_read(W.recvb[i], 0, rb, W.host)) {
        snprintf(why, cap, "lightos_buffer_read: %s", lk_err());
        return -1;
      }
      data = W.host;
    }
    if (check_recv(c, r, opt.root, cnt, data, why, cap)) return -1;
  }
  return 0;
}

/* One measurement.  Returns the median time in us; NAN when the result was
 * wrong (why: FAIL ...) or a call failed (why: ERROR ...). */
typedef struct meas {
  double us;
  double issue_us; /* median time to issue the operation on every local rank */
  int iters;
  bool wrong;
  char why[1024];
} meas_t;

static meas_t run_side(int side, const op_args_t* a) {
  meas_t m = {NAN, NAN, 0, false, ""};
  side_fill(side, a->c, a->cnt);
  world_barrier();
  /* The checked operation. */
  double t0 = now_ms();
  int rc = side_issue(side, a);
  if (!rc) rc = side_wait(side);
  double first = now_ms() - t0;
  char why[1024] = "";
  if (rc) snprintf(why, sizeof why, "ERROR %s", g_fail);
  else if (side_check(side, a->c, a->cnt, why + 5, sizeof why - 5)) memcpy(why, "FAIL ", 5);
  if (world_fail(why[0] != 0, why, sizeof why)) {
    m.wrong = !strncmp(why, "FAIL", 4);
    snprintf(m.why, sizeof m.why, "%s", why);
    return m;
  }
  /* Warm-up, which also estimates the time of one operation. */
  double est = first;
  if (opt.warmup > 0) {
    t0 = now_ms();
    for (int w = 0; w < opt.warmup && !rc; ++w) {
      rc = side_issue(side, a);
      if (!rc) rc = side_wait(side);
    }
    est = (now_ms() - t0) / opt.warmup;
  }
  double v[2] = {est, rc ? 1.0 : 0.0};
  world_max(v, 2);
  int n = opt.iters;
  if (opt.budget_ms > 0 && v[0] > 0) {
    double k = ceil(opt.budget_ms / v[0]);
    n = k < 3 ? 3 : k > opt.iters ? opt.iters : (int)k;
    if (n > opt.iters) n = opt.iters;
  }
  /* nb batches of k operations (k = 1: --sync-each). */
  const int k = opt.sync_each ? 1 : n >= 5 ? n / 5 : 1;
  const int nb = n / k;
  n = nb * k;
  double* t = xmalloc((size_t)nb * sizeof *t);
  double* ti = xmalloc((size_t)n * sizeof *ti);
  /* v[1]: a rank failed in the warm-up (all agree; skip the timing).  A
   * rank that fails while timing keeps calling the barrier, so that every
   * rank reaches the agreement below (the others' operations fail too, at
   * the latest after --timeout). */
  for (int b = 0; b < nb && v[1] == 0; ++b) {
    world_barrier();
    t0 = now_ms();
    for (int i = b * k; i < (b + 1) * k; ++i) {
      const double t1 = now_ms();
      if (!rc) rc = side_issue(side, a);
      ti[i] = (now_ms() - t1) * 1e3;
    }
    if (!rc) rc = side_wait(side);
    t[b] = (now_ms() - t0) * 1e3 / k;
    if (rc && !W.mpi) break;
  }
  snprintf(why, sizeof why, "ERROR %s", g_fail);
  if (world_fail(rc != 0, why, sizeof why)) {
    snprintf(m.why, sizeof m.why, "%s", why);
    free(t);
    free(ti);
    return m;
  }
  world_max(t, nb);
  world_max(ti, n);
  m.us = median(t, (size_t)nb);
  m.issue_us = median(ti, (size_t)n);
  m.iters = n;
  free(t);
  free(ti);
  return m;
}

/* ---- Sizes and tables ---------------------------------------------------------------- */

/* Per-rank elements for collective c at nominal size `bytes`: the buffer's
 * count, or one part's for the split collectives (0: too small). */
static size_t count_for(int c, size_t bytes) {
  size_t e = bytes / g_es;
  return coll_split(c) ? e / W.n : e;
}
static size_t size_of(int c, size_t cnt) { return (coll_split(c) ? cnt * W.n : cnt) * g_es; }

static size_t g_sizes[MAX_SIZES];
static int g_nsizes;

/* Baselines measured once per collective and size (shared by the levels). */
typedef struct base {
  int side;
  const char* name;
  bool on;
  char off_why[300];
} base_t;
static base_t g_base[2];
static int g_nbase;
static meas_t g_base_meas[C_COUNT][MAX_SIZES][2];
static bool g_base_done[C_COUNT][MAX_SIZES][2];

/* The last row of each table, for the summary. */
typedef struct last {
  bool have;
  size_t size;
  double busbw, base_busbw[2];
} last_t;
static last_t g_last[C_COUNT][4];

static void human_size(size_t b, char* out, size_t cap) {
  if (b >= (1u << 30) && b % (1u << 30) == 0) snprintf(out, cap, "%zu GiB", b >> 30);
  else if (b >= (1u << 20) && b % (1u << 20) == 0) snprintf(out, cap, "%zu MiB", b >> 20);
  else if (b >= (1u << 10) && b % (1u << 10) == 0) snprintf(out, cap, "%zu KiB", b >> 10);
  else snprintf(out, cap, "%zu B", b);
}

static void fmt_bw(char* out, size_t cap, double v) {
  if (isnan(v)) snprintf(out, cap, "-");
  else snprintf(out, cap, "%.*f", v >= 100 ? 1 : v >= 1 ? 2 : v >= 0.01 ? 3 : 5, v);
}

static void print_table_head(int c, int level) {
  if (!g_printer) return;
  printf("\n## %s, level %s (transport %s), %u ranks, %s, %s\n\n", coll_name[c],
         lightos_determinism_name((lightos_determinism_t)level), W.transport[level], W.n,
         lightos_dtype_name(opt.dtype), coll_reduces(c) ? op_name(opt.op) : "no op");
  printf("| %12s | %11s | %4s | %5s | %4s | %5s | %11s | %9s | %9s |", "size (B)", "count",
         "type", "redop", "root", "iters", "time (us)", "algbw", "busbw");
  if (g_nbase == 0) printf(" %13s | %6s |", "baseline busbw", "ratio");
  for (int b = 0; b < g_nbase; ++b) {
    char h[48];
    snprintf(h, sizeof h, "%s busbw", g_base[b].name);
    printf(" %14s | %6s |", h, g_nbase > 1 ? (b ? "r/mpi" : "r/nccl") : "ratio");
  }
  printf(" %16s |", "issue us (base)");
  printf("\n|-------------:|------------:|------|-------|-----:|------:|------------:|"
         "----------:|----------:|");
  for (int b = 0; b < (g_nbase ? g_nbase : 1); ++b) printf("---------------:|-------:|");
  printf("-----------------:|\n");
}

static void run_table(int c, int level) {
  print_table_head(c, level);
  for (int si = 0; si < g_nsizes; ++si) {
    size_t cnt = count_for(c, g_sizes[si]);
    if (cnt == 0) continue;
    size_t size = size_of(c, cnt);
    op_args_t a = {c, cnt, level};
    /* Baselines first (once per size), then LightOS. */
    for (int b = 0; b < g_nbase; ++b) {
      if (!g_base[b].on || g_base_done[c][si][b]) continue;
      meas_t* bm = &g_base_meas[c][si][b];
      g_base_done[c][si][b] = true;
      char why[300];
      if (!side_supports(g_base[b].side, c, cnt, why, sizeof why)) {
        /* Not measured: the column says "-". */
        *bm = (meas_t){NAN, NAN, 0, false, ""};
        static bool said[C_COUNT][2];
        if (g_printer && !said[c][b]) printf("(baseline %s: %s)\n", g_base[b].name, why);
        said[c][b] = true;
        continue;
      }
      *bm = run_side(g_base[b].side, &a);
      if (bm->why[0]) {
        if (g_printer)
          printf("%s: baseline %s %s at %zu B: %s\n", bm->wrong ? "FAIL" : "ERROR",
                 g_base[b].name, coll_name[c], size, bm->why + (bm->wrong ? 5 : 6));
        failures++;
      }
    }
    meas_t m = run_side(SIDE_LK, &a);
    const char* lvl = lightos_determinism_name((lightos_determinism_t)level);
    if (m.why[0]) {
      failures++;
      if (g_printer) {
        printf("%s: %s %s at %zu B: %s\n", m.wrong ? "FAIL" : "ERROR", coll_name[c], lvl, size,
               m.why + (m.wrong ? 5 : 6));
        fflush(stdout);
      }
    }
    if (!g_printer) continue;
    double algbw = size / (m.us * 1e-6) / 1e9;
    double busbw = algbw * bus_factor(c, W.n);
    char root[8], tus[24], alg[24], bus[24];
    snprintf(root, sizeof root, "%d", coll_rooted(c) ? (int)opt.root : -1);
    char its[16];
    snprintf(its, sizeof its, m.iters ? "%d" : "-", m.iters);
    if (isnan(m.us)) snprintf(tus, sizeof tus, "%s", m.wrong ? "FAIL" : "ERROR");
    else snprintf(tus, sizeof tus, "%.2f", m.us);
    fmt_bw(alg, sizeof alg, algbw);
    fmt_bw(bus, sizeof bus, busbw);
    printf("| %12zu | %11zu | %4s | %5s | %4s | %5s | %11s | %9s | %9s |", size,
           size / g_es, lightos_dtype_name(opt.dtype), coll_reduces(c) ? op_name(opt.op) : "none",
           root, its, tus, alg, bus);
    last_t* L = &g_last[c][level];
    L->have = true;
    L->size = size;
    L->busbw = busbw;
    if (g_nbase == 0) printf(" %14s | %6s |", "-", "-");
    for (int b = 0; b < g_nbase; ++b) {
      const meas_t* bm = &g_base_meas[c][si][b];
      double bb = NAN;
      if (g_base[b].on && !isnan(bm->us))
        bb = size / (bm->us * 1e-6) / 1e9 * bus_factor(c, W.n);
      char bs[24], rs[24];
      fmt_bw(bs, sizeof bs, bb);
      if (isnan(bb) || isnan(busbw) || bb <= 0) snprintf(rs, sizeof rs, "-");
      else snprintf(rs, sizeof rs, "%.3f", busbw / bb);
      printf(" %14s | %6s |", bs, rs);
      L->base_busbw[b] = bb;
    }
    /* LightOS's issue time, then the first baseline's in parentheses. */
    char is[48];
    if (isnan(m.issue_us)) snprintf(is, sizeof is, "-");
    else snprintf(is, sizeof is, "%.1f", m.issue_us);
    if (g_nbase > 0 && g_base[0].on && !isnan(g_base_meas[c][si][0].issue_us))
      snprintf(is + strlen(is), sizeof is - strlen(is), " (%.1f)", g_base_meas[c][si][0].issue_us);
    printf(" %16s |\n", is);
    fflush(stdout);
  }
}

/* ---- Setup ------------------------------------------------------------------------------ */

static void make_sizes(void) {
  g_nsizes = 0;
  for (double s = (double)opt.min_bytes; s <= (double)opt.max_bytes * (1 + 1e-9); s *= opt.step) {
    if (g_nsizes == MAX_SIZES) break;
    size_t b = (size_t)(s + 0.5);
    if (g_nsizes && b == g_sizes[g_nsizes - 1]) continue;
    g_sizes[g_nsizes++] = b;
  }
}

static void open_contexts_inprocess(void) {
  char uri[32];
  for (uint32_t i = 0; i < W.n; ++i) {
    snprintf(uri, sizeof uri, "%s:%u", dev_name[opt.devices], i);
    /* cuda+cpu: the first n-1 CUDA devices, then the CPU. */
    if (opt.devices == DEV_MIXED) snprintf(uri, sizeof uri, i + 1 < W.n ? "cuda:%u" : "cpu", i);
    if (lightos_context_create_from_uri(uri, &W.ctx[i])) {
      uint32_t nb = 0;
      const char* reason = NULL;
      lightos_backend_t want = opt.devices == DEV_CUDA || opt.devices == DEV_MIXED
                                   ? LIGHTOS_BACKEND_CUDA
                               : opt.devices == DEV_OPENCL ? LIGHTOS_BACKEND_OPENCL
                                                           : LIGHTOS_BACKEND_CPU;
      if (!lightos_backend_count(&nb))
        for (uint32_t k = 0; k < nb; ++k) {
          lightos_backend_info_t bi;
          if (!lightos_backend_get_info(k, &bi) && bi.backend == want && !bi.available)
            reason = bi.reason;
        }
      char msg[600];
      snprintf(msg, sizeof msg, "%s", lk_err());
      if (reason && strstr(msg, reason)) reason = NULL; /* said already */
      /* No such device: as bench_gpu, say why and skip (exit 0); the CPU
       * devices are always there, so a failure there is an error. */
      printf("bench_comm: %s: --ranks %u needs %u %s devices; %s is not there (%s)%s%s\n",
             opt.devices == DEV_CPU ? "error" : "skipped", W.n, W.n, dev_name[opt.devices], uri,
             msg, reason ? "; " : "", reason ? reason : "");
      exit(opt.devices == DEV_CPU ? 1 : 0);
    }
    size_t len = strlen(W.devs);
    snprintf(W.devs + len, sizeof W.devs - len, "%s%s", i ? "," : "", uri);
  }
}

static void open_cuda_side(void) {
  for (uint32_t i = 0; i < W.nlocal; ++i) {
    lk_object_t* o = NULL;
    if (lk_handle_resolve(W.ctx[i], LK_OBJ_CONTEXT, "context", &o)) die("context: %s", lk_err());
    lk_context_t* lc = (lk_context_t*)o;
    if (!lk_cuda_is_context(lc->hal)) return;
    lk_cu_context_t* cc = (lk_cu_context_t*)lc->hal;
    W.cu = cc->api;
    W.cuctx[i] = cc->ctx;
    W.ordinal[i] = cc->device->ordinal;
    CUresult r = W.cu->cuCtxSetCurrent(cc->ctx);
    if (!r) r = W.cu->cuStreamCreate(&W.stream[i], CU_STREAM_NON_BLOCKING);
    if (r) die("cuStreamCreate on %s: %s", W.devs, lk_cuda_error_name(r));
    W.dsend[i] = dev_ptr(W.sendb[i]);
    W.drecv[i] = dev_ptr(W.recvb[i]);
  }
  W.cuda = true;
}

static void alloc_buffers(void) {
  for (uint32_t i = 0; i < W.nlocal; ++i) {
    if (lightos_context_default_queue(W.ctx[i], &W.q[i]) ||
        lightos_buffer_alloc(W.ctx[i], W.cap, 0, &W.sendb[i]) ||
        lightos_buffer_alloc(W.ctx[i], W.cap, 0, &W.recvb[i]))
      die("two buffers of %zu bytes on rank %u: %s (try a smaller --max)", W.cap, W.rank0 + i,
          lk_err());
  }
  W.host = xmalloc(W.cap);
}

static void init_comms(void) {
  for (int l = 0; l < 4; ++l) {
    if (!(opt.levels & (1u << l))) continue;
    lightos_comm_config_t cfg;
    if (lightos_comm_config_default(&cfg)) die("lightos_comm_config_default: %s", lk_err());
    cfg.level = (lightos_determinism_t)l;
    cfg.timeout_s = opt.timeout_s;
    lightos_status_t s;
#ifdef LK_BENCH_MPI
    if (W.mpi) s = lightos_comm_init_mpi(MPI_COMM_WORLD, W.ctx[0], &cfg, &W.comm[l][0]);
    else
#endif
      s = lightos_comm_init_all_config(W.n, W.ctx, &cfg, W.comm[l]);
    if (s)
      die("communicator at level %s: %s", lightos_determinism_name((lightos_determinism_t)l),
          lk_err());
    if (opt.devices == DEV_MIXED) {
      const char* was = getenv("LIGHTOS_COMM_HIERARCHY");
      char keep[32] = "";
      if (was) snprintf(keep, sizeof keep, "%s", was);
      setenv("LIGHTOS_COMM_HIERARCHY", "0", 1);
      s = lightos_comm_init_all_config(W.n, W.ctx, &cfg, W.flat[l]);
      if (was) setenv("LIGHTOS_COMM_HIERARCHY", keep, 1);
      else unsetenv("LIGHTOS_COMM_HIERARCHY");
      if (s) die("flat communicator: %s", lk_err());
    }
    if (lightos_comm_transport(W.comm[l][0], &W.transport[l]))
      die("lightos_comm_transport: %s", lk_err());
  }
}

static void init_nccl(void) {
  if (!W.cuda) {
    snprintf(W.nccl_why, sizeof W.nccl_why, "not CUDA devices");
    return;
  }
  W.nccl = nccl_load(W.nccl_why, sizeof W.nccl_why);
#ifdef LK_BENCH_MPI
  if (W.mpi) {
    /* Every rank must agree on using NCCL. */
    int ok = W.nccl != NULL;
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!ok) {
      if (W.nccl) snprintf(W.nccl_why, sizeof W.nccl_why, "libnccl.so.2 missing on some rank");
      W.nccl = NULL;
      return;
    }
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    int st = 0;
    if (g_rank == 0) st = W.nccl->GetUniqueId(&id);
    MPI_Bcast(&st, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (st) {
      snprintf(W.nccl_why, sizeof W.nccl_why, "ncclGetUniqueId: %d", st);
      W.nccl = NULL;
      return;
    }
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    W.cu->cuCtxSetCurrent(W.cuctx[0]);
    st = W.nccl->CommInitRank(&W.ncomm[0], (int)W.n, id, g_rank);
    int bad = st != 0;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (bad) {
      snprintf(W.nccl_why, sizeof W.nccl_why, "ncclCommInitRank failed (%s)",
               st ? W.nccl->GetErrorString(st) : "on another rank");
      W.nccl = NULL;
    }
    return;
  }
#endif
  if (!W.nccl) return;
  ncclResult_t st = W.nccl->CommInitAll(W.ncomm, (int)W.n, W.ordinal);
  if (st) {
    snprintf(W.nccl_why, sizeof W.nccl_why, "ncclCommInitAll: %s", W.nccl->GetErrorString(st));
    W.nccl = NULL;
  }
}

static void teardown(void) {
  for (int l = 0; l < 4; ++l)
    for (uint32_t i = 0; i < W.nlocal; ++i) {
      if (W.comm[l][i]) lightos_comm_destroy(W.comm[l][i]);
      if (W.flat[l][i]) lightos_comm_destroy(W.flat[l][i]);
    }
  if (W.nccl)
    for (uint32_t i = 0; i < W.nlocal; ++i)
      if (W.ncomm[i]) W.nccl->CommDestroy(W.ncomm[i]);
  if (W.cuda)
    for (uint32_t i = 0; i < W.nlocal; ++i)
      if (W.stream[i]) {
        W.cu->cuCtxSetCurrent(W.cuctx[i]);
        W.cu->cuStreamDestroy_v2(W.stream[i]);
      }
  for (uint32_t i = 0; i < W.nlocal; ++i) {
    if (W.sendb[i]) lightos_buffer_release(W.sendb[i]);
    if (W.recvb[i]) lightos_buffer_release(W.recvb[i]);
    if (W.ctx[i]) lightos_context_release(W.ctx[i]);
  }
  free(W.host);
  free(W.msend);
  free(W.mrecv);
  free(g_plan.table);
  free(g_plan.scratch);
}

static bool mpi_env(void) {
  static const char* const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK",
                                     "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; ++i)
    if (getenv(vars[i])) return true;
  return false;
}

/* ---- main ------------------------------------------------------------------------------- */

static void parse_args(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    char name[64];
    const char* val = NULL;
    const char* eq = strchr(a, '=');
    if (!strncmp(a, "--", 2) && eq && (size_t)(eq - a) < sizeof name) {
      memcpy(name, a, (size_t)(eq - a));
      name[eq - a] = '\0';
      val = eq + 1;
    } else {
      snprintf(name, sizeof name, "%s", a);
    }
#define FLAG(s) (!strcmp(name, s))
#define VALUE()                                                         \
  (val ? val                                                            \
       : (i + 1 < argc ? argv[++i] : (bad_arg("%s needs a value", name), "")))
    if (FLAG("-h") || FLAG("--help")) {
      usage(stdout);
      exit(0);
    } else if (FLAG("--ranks")) {
      opt.ranks = (uint32_t)parse_long(VALUE(), 1, MAX_RANKS, "--ranks");
      opt.ranks_set = true;
    } else if (FLAG("--devices")) {
      const char* v = VALUE();
      if (!strcmp(v, "cpu")) opt.devices = DEV_CPU;
      else if (!strcmp(v, "cuda")) opt.devices = DEV_CUDA;
      else if (!strcmp(v, "opencl")) opt.devices = DEV_OPENCL;
      else if (!strcmp(v, "cuda+cpu")) opt.devices = DEV_MIXED;
      else bad_arg("--devices: '%s' is not cpu, cuda, opencl or cuda+cpu", v);
    } else if (FLAG("--mpi")) {
      opt.mpi = true;
    } else if (FLAG("--colls")) {
      parse_colls(VALUE());
    } else if (FLAG("--levels")) {
      parse_levels(VALUE());
      opt.levels_set = true;
    } else if (FLAG("--dtype")) {
      opt.dtype = parse_dtype(VALUE());
    } else if (FLAG("--op")) {
      opt.op = parse_op(VALUE());
    } else if (FLAG("--root")) {
      opt.root = (uint32_t)parse_long(VALUE(), 0, 65535, "--root");
    } else if (FLAG("--min")) {
      opt.min_bytes = parse_size(VALUE(), "--min");
    } else if (FLAG("--max")) {
      opt.max_bytes = parse_size(VALUE(), "--max");
      opt.max_set = true;
    } else if (FLAG("--step-factor")) {
      opt.step = parse_double(VALUE(), 1.01, 1024, "--step-factor");
      opt.step_set = true;
    } else if (FLAG("--iters")) {
      opt.iters = (int)parse_long(VALUE(), 1, 1000000, "--iters");
      opt.iters_set = true;
    } else if (FLAG("--warmup")) {
      opt.warmup = (int)parse_long(VALUE(), 0, 1000000, "--warmup");
      opt.warmup_set = true;
    } else if (FLAG("--budget-ms")) {
      opt.budget_ms = parse_double(VALUE(), 0, 3.6e6, "--budget-ms");
      opt.budget_set = true;
    } else if (FLAG("--timeout")) {
      opt.timeout_s = parse_double(VALUE(), 0.1, 1e6, "--timeout");
    } else if (FLAG("--sync-each")) {
      opt.sync_each = true;
    } else if (FLAG("--quick")) {
      opt.quick = true;
    } else if (FLAG("--no-baseline")) {
      opt.baseline = false;
    } else {
      bad_arg("unknown argument '%s'", a);
    }
    if (val && (FLAG("--mpi") || FLAG("--quick") || FLAG("--no-baseline")))
      bad_arg("%s takes no value", name);
#undef FLAG
#undef VALUE
  }
  if (opt.quick) {
    if (!opt.max_set) opt.max_bytes = 8u << 20;
    if (!opt.step_set) opt.step = 4;
    if (!opt.iters_set) opt.iters = 20;
    if (!opt.warmup_set) opt.warmup = 1;
    if (!opt.budget_set) opt.budget_ms = 20;
  }
  if (!opt.max_set && !opt.quick)
    opt.max_bytes = opt.devices == DEV_CUDA || opt.devices == DEV_OPENCL ? 1u << 30 : 256u << 20;
  if (opt.min_bytes > opt.max_bytes)
    bad_arg("--min %zu is larger than --max %zu", opt.min_bytes, opt.max_bytes);
  /* A floating-point product has no STRICT form (lightos_comm_* returns
   * UNSUPPORTED): left out by default, an error when asked for. */
  if (opt.op == LIGHTOS_OP_PROD && (opt.levels & (1u << LIGHTOS_DETERMINISM_STRICT)) &&
      (opt.dtype == LIGHTOS_DTYPE_F32 || opt.dtype == LIGHTOS_DTYPE_F64 ||
       opt.dtype == LIGHTOS_DTYPE_F16 || opt.dtype == LIGHTOS_DTYPE_BF16) &&
      (opt.colls & ((1u << C_ALLREDUCE) | (1u << C_REDUCE_SCATTER) | (1u << C_REDUCE)))) {
    if (opt.levels_set)
      bad_arg("--op prod of %s has no strict level (leave strict out of --levels)",
              lightos_dtype_name(opt.dtype));
    opt.levels &= ~(1u << LIGHTOS_DETERMINISM_STRICT);
    opt.strict_dropped = true;
  }
}

int main(int argc, char** argv) {
  parse_args(argc, argv);
  g_es = lightos_dtype_size(opt.dtype);
  g_printer = true;

  bool use_mpi = opt.mpi;
#ifdef LK_BENCH_MPI
  if (!use_mpi && mpi_env()) use_mpi = true;
#else
  if (opt.mpi)
    bad_arg("--mpi: this bench_comm was built without MPI (CMake found no MPI C library)");
  if (mpi_env())
    fprintf(stderr, "bench_comm: started by an MPI launcher, but built without MPI: each "
                    "process runs its own in-process benchmark\n");
#endif

  if (use_mpi) {
#ifdef LK_BENCH_MPI
    if (opt.devices == DEV_OPENCL || opt.devices == DEV_MIXED)
      bad_arg("--devices %s is not offered under MPI", dev_name[opt.devices]);
    int provided = 0; /* MULTIPLE: LightOS's collectives then travel over MPI */
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    int r = 0, n = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    W.mpi = true;
    g_rank = r;
    g_printer = r == 0;
    W.n = (uint32_t)n;
    W.nlocal = 1;
    W.rank0 = (uint32_t)r;
    if (opt.ranks_set && opt.ranks != W.n) {
      if (g_printer)
        fprintf(stderr, "bench_comm: --ranks %u, but MPI started %u processes\n", opt.ranks, W.n);
      MPI_Finalize();
      return 2;
    }
    MPI_Comm local;
    int lr = 0;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, r, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &lr);
    MPI_Comm_free(&local);
    char uri[32];
    snprintf(uri, sizeof uri, "%s", opt.devices == DEV_CUDA ? "cuda:" : "cpu");
    if (opt.devices == DEV_CUDA) snprintf(uri, sizeof uri, "cuda:%d", lr);
    if (lightos_context_create_from_uri(uri, &W.ctx[0]))
      die("device %s (local rank %d): %s", uri, lr, lk_err());
    snprintf(W.devs, sizeof W.devs, "%s in each process",
             opt.devices == DEV_CUDA ? "cuda:<local rank>" : "cpu");
#endif
  } else {
    W.n = opt.ranks;
    W.nlocal = opt.ranks;
    if (opt.devices == DEV_CPU) {
      char v[16];
      snprintf(v, sizeof v, "%u", opt.ranks);
      setenv("LIGHTOS_CPU_DEVICES", v, 1); /* before the first LightOS call */
    }
    open_contexts_inprocess();
  }
  if (opt.root >= W.n && (opt.colls & ((1u << C_BROADCAST) | (1u << C_REDUCE)))) {
    if (g_printer) fprintf(stderr, "bench_comm: --root %u is not below %u ranks\n", opt.root, W.n);
#ifdef LK_BENCH_MPI
    if (W.mpi) MPI_Finalize();
#endif
    return 2;
  }

  make_sizes();
  plan_init(opt.dtype, opt.op, W.n);
  W.cap = 0;
  for (int c = 0; c < C_COUNT; ++c)
    if (opt.colls & (1u << c))
      for (int s = 0; s < g_nsizes; ++s) {
        size_t cnt = count_for(c, g_sizes[s]);
        size_t sb = send_elems(c, cnt, W.n) * g_es, rb = recv_elems(c, cnt, W.n) * g_es;
        if (sb > W.cap) W.cap = sb;
        if (rb > W.cap) W.cap = rb;
      }
  if (W.cap == 0) W.cap = g_es * W.n;
  alloc_buffers();
  if (opt.devices == DEV_CUDA) open_cuda_side();
  init_comms();

  /* Baselines. */
  g_nbase = 0;
  if (opt.baseline && opt.devices == DEV_CUDA) {
    init_nccl();
    g_base[g_nbase++] = (base_t){SIDE_NCCL, "nccl", W.nccl != NULL, ""};
    snprintf(g_base[g_nbase - 1].off_why, sizeof g_base[0].off_why, "%s", W.nccl_why);
  }
  if (opt.baseline && opt.devices == DEV_MIXED)
    g_base[g_nbase++] = (base_t){SIDE_FLAT, "flat", true, ""};
#ifdef LK_BENCH_MPI
  if (opt.baseline && W.mpi) {
    W.msend = xmalloc(W.cap);
    W.mrecv = xmalloc(W.cap);
    g_base[g_nbase++] = (base_t){SIDE_MPI, "mpi", true, ""};
  }
#endif

  /* Header. */
  if (g_printer) {
    char date[64];
    time_t now = time(NULL);
    struct tm tmv;
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", localtime_r(&now, &tmv));
    lightos_device_t d0 = NULL;
    lightos_device_info_t info;
    memset(&info, 0, sizeof info);
    if (!lightos_context_get_device(W.ctx[0], &d0)) lightos_device_get_info(d0, &info);
    printf("# bench_comm: %u ranks, %s, devices %s (%s), %s\n", W.n,
           W.mpi ? "MPI (one rank per process)" : "in-process", W.devs, info.name, date);
    printf("# transport:");
    for (int l = 0; l < 4; ++l)
      if (opt.levels & (1u << l))
        printf(" %s=%s", lightos_determinism_name((lightos_determinism_t)l), W.transport[l]);
    printf("\n# dtype %s, op %s, sizes %zu..%zu B x%g, iterations: %d warm-up, 3..%d timed "
           "within %g ms per size, %s\n",
           lightos_dtype_name(opt.dtype), op_name(opt.op), opt.min_bytes, opt.max_bytes,
           opt.step, opt.warmup, opt.iters, opt.budget_ms,
           opt.sync_each ? "each waited for (--sync-each), median"
                         : "in 5 batches issued back to back, median batch");
    if (opt.strict_dropped)
      printf("# level strict left out: a floating-point product has no strict form\n");
    if (g_nbase == 0)
      printf("# baseline: none%s\n",
             !opt.baseline ? " (--no-baseline)"
             : W.mpi       ? ""
                           : " in-process on this device kind (MPI mode is the CPU baseline)");
    for (int b = 0; b < g_nbase; ++b) {
      const char* what =
          g_base[b].side == SIDE_NCCL   ? "NCCL on the same buffers and devices"
          : g_base[b].side == SIDE_FLAT ? "the same group not composed (LIGHTOS_COMM_HIERARCHY=0)"
                                        : "MPI on host memory";
      if (g_base[b].on) printf("# baseline %s: %s\n", g_base[b].name, what);
      else printf("# baseline %s: not available (%s)\n", g_base[b].name, g_base[b].off_why);
    }
    fflush(stdout);
  }

  for (int l = 0; l < 4; ++l) {
    if (!(opt.levels & (1u << l))) continue;
    for (int c = 0; c < C_COUNT; ++c)
      if (opt.colls & (1u << c)) run_table(c, l);
  }

  if (g_printer) {
    printf("\n# summary (largest size)\n");
    for (int c = 0; c < C_COUNT; ++c)
      for (int l = 0; l < 4; ++l) {
        const last_t* L = &g_last[c][l];
        if (!L->have) continue;
        char sz[32], bw[24], bb[24], rt[24];
        human_size(L->size, sz, sizeof sz);
        fmt_bw(bw, sizeof bw, L->busbw);
        double base = g_nbase ? L->base_busbw[0] : NAN;
        fmt_bw(bb, sizeof bb, base);
        if (isnan(base) || isnan(L->busbw) || base <= 0) snprintf(rt, sizeof rt, "-");
        else snprintf(rt, sizeof rt, "%.3f", L->busbw / base);
        printf("%s %s at %s: busbw %s%s, baseline %s%s, ratio %s", coll_name[c],
               lightos_determinism_name((lightos_determinism_t)l), sz, bw,
               isnan(L->busbw) ? "" : " GB/s", bb, isnan(base) ? "" : " GB/s", rt);
        if (g_nbase) printf(" (%s)", g_base[0].name);
        for (int b = 1; b < g_nbase; ++b) {
          double v = L->base_busbw[b];
          fmt_bw(bb, sizeof bb, v);
          if (isnan(v) || isnan(L->busbw) || v <= 0) snprintf(rt, sizeof rt, "-");
          else snprintf(rt, sizeof rt, "%.3f", L->busbw / v);
          printf("; %s baseline %s%s, ratio %s", g_base[b].name, bb, isnan(v) ? "" : " GB/s",
                 rt);
        }
        printf("\n");
      }
    if (failures) printf("# %d failure(s): see the FAIL / ERROR lines above\n", failures);
    fflush(stdout);
  }
  teardown();
  int bad = failures != 0;
#ifdef LK_BENCH_MPI
  if (W.mpi) {
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
  }
#endif
  return bad ? 1 : 0;
}
