/* The device path of the collectives for groups of CUDA devices: NCCL,
 * loaded at run time (dlopen libnccl.so.2, LightOS's own declarations of
 * the subset used), plus reduction kernels of LightOS's own
 * (comm_cuda_kernels.h, built by NVRTC) where the result must be the host
 * algorithms' bits.
 *
 * What runs where (lk_nl_route, a function of the operation and the
 * communicator's configuration only, so every rank takes the same path):
 *   NONE                 the NCCL collective (allreduce, reduce,
 *                        reduce_scatter; sum prod min max avg).
 *   broadcast, allgather, alltoall, barrier: NCCL at every level (no
 *                        arithmetic; alltoall as grouped send/recv).
 *   integer sum/prod/min/max at any level: the NCCL collective (wrapping
 *                        integer arithmetic is order independent: the
 *                        host's bits).
 *   RUN, TOPOLOGY f32/f64 sum, avg, prod allreduce on 2^K ranks:
 *                        recursive halving (lk_nl_halve_op): K-1 pairwise
 *                        NCCL reduce-scatters, a pairwise ncclAllReduce
 *                        (a pair's combination is commutative, so NCCL's
 *                        order cannot change a bit: the host's pairwise
 *                        tree), a finishing kernel, K-1 all-gathers.  Two
 *                        ranks: ncclAllReduce and the finishing kernel.
 *   RUN, TOPOLOGY otherwise (and STRICT min/max, integer avg): allreduce and
 *                        reduce_scatter as the host does them
 *                        (comm_algo.c): an all-to-all of chunks (grouped
 *                        ncclSend/ncclRecv), the fixed tree over ranks in a
 *                        kernel, an ncclAllGather of the reduced chunks,
 *                        pipelined over segments (comm_nccl.h).
 *   STRICT float sum/avg allreduce, reduce, reduce_scatter: run() on the
 *                        proxy thread, entirely on the GPUs (see
 *                        lk_nl_strict; reduce and reduce_scatter as the
 *                        allreduce of the whole send buffer, part kept).
 *   reduce above NONE (not STRICT sums): the allreduce's path, the
 *                        result kept on the root (the others' goes to
 *                        lane scratch).
 *   the rest (send/recv, multi-contribution allreduce, LIGHTOS_COMM_CHECK
 *   on the checked collectives): LIGHTOS_UNSUPPORTED, the host path.
 *
 * Stream order.  enqueue() issues the work on the caller's queue's stream
 * (lk_cu_queue_submit_native), with a keep-alive command holding the
 * buffers until the stream has passed it: at once from the calling thread,
 * or — while the queue holds host work (a wait for an event, e.g. behind a
 * host-path collective on the same queue, as in a composed group's steps)
 * — later from the queue's host thread, in queue order, so that one thread
 * driving several ranks never blocks on one rank's queue.  A rank's later
 * operations on another queue wait until those are issued (nissue), so
 * NCCL sees every rank's operations in one order.  NCCL executes one
 * communicator's operations in call order; the kernels run on a second
 * stream ("aux") ordered with CUevents, so that segment s's reduction
 * overlaps segment s+1's all-to-all.
 *
 * Two NCCL communicators per rank ("lanes"): the enqueue lane, driven by
 * the threads that enqueue, made when the group attaches; the STRICT lane,
 * driven by the communicator's proxy thread (run()), made collectively on
 * the first STRICT allreduce.  Each lane's NCCL calls are issued in the
 * order of the operations on the communicator, the same on every rank, and
 * never interleave with the other lane's.
 *
 * One thread may drive every rank of an in-process group: NCCL would
 * connect peers lazily at their first operation, and a lazy connection
 * blocks until the peer's thread arrives.  So NCCL_RUNTIME_CONNECT is set
 * to 0 (unless set by the user) before NCCL is first used, and attaching
 * runs a grouped send/recv between every pair of ranks (p2p connections
 * are always made on first use).
 *
 * Faults.  A watchdog thread per rank follows the enqueued operations
 * (CUevents before and after each): one that has started and not finished
 * within the communicator's timeout aborts the NCCL communicators
 * (ncclCommAbort makes their kernels return) and the communicator: later
 * operations fail with LIGHTOS_ABORTED and the message.  The operation that
 * timed out completes on its queue with undefined results.  The watchdog
 * also aborts when the communicator was aborted by other means (the host
 * path's transport failed) while device work was pending.  abort() aborts
 * the NCCL communicators of every rank of an in-process group.
 *
 * Buffers: the device address is mem.device_ptr + offset.  The in-place
 * forms of comm.h (allreduce send == recv, allgather with recv as send,
 * broadcast/reduce on root) are handled; other overlaps of send and recv
 * are undefined here, as in NCCL.
 *
 * Environment (read when a group attaches): LIGHTOS_COMM_NCCL=0 turns the
 * path off; LIGHTOS_NCCL_LIBRARY names the library to open (only that
 * one).  Tuning of the pipelines (RUN/TOPOLOGY, STRICT), neither changes
 * a result bit:
 *   LIGHTOS_NCCL_SEGMENT_KB   exchange bytes of one pipeline segment over
 *                             all ranks (KiB, default 131072 = 128 MiB;
 *                             STRICT uses half).  Measured on 2 x H200,
 *                             256 MiB f32, share of NCCL's busbw at
 *                             TOPOLOGY: 16 MiB 0.45, 32 MiB 0.59, 64 MiB
 *                             0.71, 128 MiB 0.83, 256 MiB 0.78: NCCL's
 *                             grouped send/recv has a high cost per call.
 *                             Smaller: more overlap of the
 *                             reduction with the transfers, more NCCL
 *                             calls.  Rank 0's value is used by every
 *                             rank.  Each lane holds LK_NL_NX segments of
 *                             exchange memory.
 *   LIGHTOS_NCCL_HALVING=0    no recursive halving: the tree pipeline
 *                             serves those allreduces too (same bits).
 *                             With 2^K >= 4 ranks, halving takes K more
 *                             NCCL communicators of two ranks per rank,
 *                             made when the group attaches.
 *   LIGHTOS_NCCL_HALVING_SEGMENT_KB  bytes of one halving segment
 *                             (KiB; default: one segment; rank 0's).
 *   LIGHTOS_NCCL_HALVING_SCAN_KB  sums of at least this many KiB scan
 *                             their input so that the finishing kernel
 *                             runs only where it has work (default 131072;
 *                             rank 0's).
 *   LIGHTOS_NCCL_KERNEL_CTAS  blocks (of 512 threads) of the reduction
 *                             kernels, default 3/4 of the SMs: the rest
 *                             stay free for NCCL's kernels that run at the
 *                             same time.
 */
#include "comm/comm_nccl.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "comm/comm_cuda_kernels.h"
#include "comm/comm_internal.h"
#include "comm/comm_nccl_sim.h"
#include "comm/comm_reduce.h"
#include "core/error.h"
#include "core/kcache.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/util.h"
#include "hal/cuda/cuda_backend.h"

_Static_assert(sizeof(void*) == sizeof(void (*)(void)),
               "function and object pointers must have the same size");
_Static_assert(LIGHTOS_DTYPE_F32 == 1 && LIGHTOS_DTYPE_F64 == 2 && LIGHTOS_DTYPE_F16 == 3 &&
                   LIGHTOS_DTYPE_BF16 == 4 && LIGHTOS_DTYPE_I32 == 5 &&
                   LIGHTOS_DTYPE_I64 == 6 && LIGHTOS_DTYPE_U8 == 7,
               "the kernels' dtype codes");
_Static_assert(LIGHTOS_OP_SUM == 1 && LIGHTOS_OP_PROD == 2 && LIGHTOS_OP_MIN == 3 &&
                   LIGHTOS_OP_MAX == 4 && LIGHTOS_OP_AVG == 5,
               "the kernels' op codes");
_Static_assert(LK_STRICT_BLOCK == 256 && LK_STRICT_EXP_ZERO == -32768,
               "the kernels' STRICT constants");

/* ---- NCCL: LightOS's own declarations (nccl.h values) ------------------------ */

typedef int ncclResult_t; /* ncclSuccess = 0 */
typedef struct lk_ncclComm_st* ncclComm_t;
typedef struct lk_nccl_uid {
  char internal[128];
} lk_nccl_uid_t; /* ncclUniqueId, passed by value */
_Static_assert(sizeof(lk_nccl_uid_t) == 128, "ncclUniqueId is 128 bytes");

/* ncclDataType_t */
#define LK_NCCL_INT8 0
#define LK_NCCL_UINT8 1
#define LK_NCCL_INT32 2
#define LK_NCCL_INT64 4
#define LK_NCCL_FLOAT16 6
#define LK_NCCL_FLOAT32 7
#define LK_NCCL_FLOAT64 8
#define LK_NCCL_BFLOAT16 9
/* ncclRedOp_t */
#define LK_NCCL_SUM 0
#define LK_NCCL_PROD 1
#define LK_NCCL_MAX 2
#define LK_NCCL_MIN 3
#define LK_NCCL_AVG 4

/* The oldest NCCL used: grouped p2p with collectives, avg, bf16,
 * ncclCommInitRank inside a group. */
#define LK_NCCL_MIN_VERSION 21200

/* X(required, return type, symbol, (parameters)); enums pass as int. */
#define LK_NCCL_SYMBOLS(X)                                                                   \
  X(1, ncclResult_t, ncclGetVersion, (int* version))                                         \
  X(1, ncclResult_t, ncclGetUniqueId, (lk_nccl_uid_t * id))                                  \
  X(1, ncclResult_t, ncclCommInitRank,                                                       \
    (ncclComm_t * comm, int nranks, lk_nccl_uid_t id, int rank))                             \
  X(0, ncclResult_t, ncclCommInitAll, (ncclComm_t * comms, int ndev, const int* devlist))   \
  X(1, ncclResult_t, ncclCommDestroy, (ncclComm_t comm))                                     \
  X(1, ncclResult_t, ncclCommAbort, (ncclComm_t comm))                                       \
  X(1, ncclResult_t, ncclCommGetAsyncError, (ncclComm_t comm, ncclResult_t * error))        \
  X(1, const char*, ncclGetErrorString, (ncclResult_t result))                               \
  X(0, const char*, ncclGetLastError, (ncclComm_t comm))                                     \
  X(1, ncclResult_t, ncclAllReduce,                                                          \
    (const void* send, void* recv, size_t count, int dtype, int op, ncclComm_t comm,         \
     CUstream stream))                                                                       \
  X(1, ncclResult_t, ncclReduce,                                                             \
    (const void* send, void* recv, size_t count, int dtype, int op, int root,                \
     ncclComm_t comm, CUstream stream))                                                      \
  X(1, ncclResult_t, ncclBroadcast,                                                          \
    (const void* send, void* recv, size_t count, int dtype, int root, ncclComm_t comm,       \
     CUstream stream))                                                                       \
  X(1, ncclResult_t, ncclAllGather,                                                          \
    (const void* send, void* recv, size_t sendcount, int dtype, ncclComm_t comm,             \
     CUstream stream))                                                                       \
  X(1, ncclResult_t, ncclReduceScatter,                                                      \
    (const void* send, void* recv, size_t recvcount, int dtype, int op, ncclComm_t comm,     \
     CUstream stream))                                                                       \
  X(1, ncclResult_t, ncclSend,                                                               \
    (const void* send, size_t count, int dtype, int peer, ncclComm_t comm, CUstream stream)) \
  X(1, ncclResult_t, ncclRecv,                                                               \
    (void* recv, size_t count, int dtype, int peer, ncclComm_t comm, CUstream stream))       \
  X(1, ncclResult_t, ncclGroupStart, (void))                                                 \
  X(1, ncclResult_t, ncclGroupEnd, (void))

typedef struct lk_nccl_api {
  void* lib;
  char path[256];
  int version;
#define LK_NCCL_FIELD_(req, ret, name, params) ret(*name) params;
  LK_NCCL_SYMBOLS(LK_NCCL_FIELD_)
#undef LK_NCCL_FIELD_
} lk_nccl_api_t;

static pthread_once_t lk_nccl_once = PTHREAD_ONCE_INIT;
static lk_nccl_api_t lk_nccl_api_s;
static const lk_nccl_api_t* lk_nccl_loaded;
static char lk_nccl_reason[400];

static int lk_nccl_try(const char* path, char* why, size_t cap) {
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(why, cap, "%s not found", path);
    return -1;
  }
  lk_nccl_api_t t;
  memset(&t, 0, sizeof t);
  void* sym;
#define LK_NCCL_RESOLVE_(req, ret, fn, params)              \
  sym = dlsym(lib, #fn);                                    \
  if (!sym && (req)) {                                      \
    snprintf(why, cap, "%s: symbol %s missing", path, #fn); \
    dlclose(lib);                                           \
    return -1;                                              \
  }                                                         \
  memcpy(&t.fn, &sym, sizeof sym);
  LK_NCCL_SYMBOLS(LK_NCCL_RESOLVE_)
#undef LK_NCCL_RESOLVE_
  t.lib = lib;
  lk_strlcpy(t.path, path, sizeof t.path);
  if (t.ncclGetVersion(&t.version) != 0) t.version = 0;
  if (t.version < LK_NCCL_MIN_VERSION) {
    snprintf(why, cap, "%s is NCCL version code %d; LightOS needs 2.12 or newer", path,
             t.version);
    dlclose(lib);
    return -1;
  }
  lk_nccl_api_s = t;
  lk_nccl_loaded = &lk_nccl_api_s;
  return 0;
}

static void lk_nccl_load(void) {
  /* Every algorithm's connections at init rather than at first use (see
   * the top of the file); before NCCL reads its parameters. */
  setenv("NCCL_RUNTIME_CONNECT", "0", 0);
  char why[300] = "";
  const char* env = getenv("LIGHTOS_NCCL_LIBRARY");
  if (env && env[0]) {
    if (lk_nccl_try(env, why, sizeof why) != 0)
      snprintf(lk_nccl_reason, sizeof lk_nccl_reason, "%s", why);
    return;
  }
  static const char* const names[] = {"libnccl.so.2", "libnccl.so",
                                      "/usr/local/cuda/lib64/libnccl.so.2"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
    if (lk_nccl_try(names[i], why, sizeof why) == 0) {
      LK_LOG_INFO("comm: NCCL %d from %s", lk_nccl_api_s.version, lk_nccl_api_s.path);
      return;
    }
    /* A library that exists but cannot be used says more than "not found". */
    if (!strstr(why, "not found")) snprintf(lk_nccl_reason, sizeof lk_nccl_reason, "%s", why);
  }
  if (!lk_nccl_reason[0])
    snprintf(lk_nccl_reason, sizeof lk_nccl_reason,
             "libnccl not found (tried libnccl.so.2, libnccl.so, "
             "/usr/local/cuda/lib64/libnccl.so.2; LIGHTOS_NCCL_LIBRARY names another)");
}

static const lk_nccl_api_t* lk_nccl_api_get(char* why, size_t cap) {
  pthread_once(&lk_nccl_once, lk_nccl_load);
  if (!lk_nccl_loaded && why && cap) snprintf(why, cap, "%s", lk_nccl_reason);
  return lk_nccl_loaded;
}

int lk_nccl_library_version(char* why, size_t cap) {
  const lk_nccl_api_t* api = lk_nccl_api_get(why, cap);
  return api ? api->version : 0;
}

/* ---- host facts the kernels need ------------------------------------------------ */

uint32_t lk_nccl_host_nan_f32(void) {
  volatile float a = INFINITY, b = INFINITY;
  float r = a - b;
  uint32_t u;
  memcpy(&u, &r, 4);
  return u;
}

uint64_t lk_nccl_host_nan_f64(void) {
  volatile double a = INFINITY, b = INFINITY;
  double r = a - b;
  uint64_t u;
  memcpy(&u, &r, 8);
  return u;
}

/* ---- the plan of a pipelined reduction (comm_nccl.h) ----------------------------- */

/* Allreduce inputs up to this many bytes over all ranks go as one
 * all-gather (latency: one NCCL call instead of two). */
#define LK_NL_GATHER_MAX ((size_t)256 << 10)

void lk_nccl_plan_make(lk_nccl_plan_t* pl, uint32_t n, uint32_t me, bool rs, size_t count,
                       size_t xes, size_t segb) {
  memset(pl, 0, sizeof *pl);
  pl->n = n ? n : 1;
  pl->me = me;
  pl->rs = rs;
  pl->count = count;
  size_t segc = segb / ((size_t)pl->n * xes);
  segc -= segc % 64;
  if (segc < 64) segc = 64;
  pl->segc = segc;
  if (rs) {
    pl->nseg = (count + segc - 1) / segc;
    return;
  }
  size_t total;
  pl->gather_all = pl->n > 1 && lk_mul_ok(count, (size_t)pl->n * xes, &total) &&
                   total <= LK_NL_GATHER_MAX && total <= segb;
  const size_t sege = (size_t)pl->n * segc;
  pl->nseg = pl->gather_all ? 1 : (count + sege - 1) / sege;
}

void lk_nccl_plan_seg(const lk_nccl_plan_t* pl, size_t s, size_t* base, size_t* len) {
  if (pl->gather_all) {
    *base = 0;
    *len = pl->count;
    return;
  }
  const size_t step = pl->rs ? pl->segc : (size_t)pl->n * pl->segc;
  *base = s * step;
  *len = pl->count - *base < step ? pl->count - *base : step;
}

void lk_nccl_plan_chunk(const lk_nccl_plan_t* pl, size_t s, uint32_t p, size_t* in_off,
                        size_t* len, size_t* out_off) {
  size_t base, seglen;
  lk_nccl_plan_seg(pl, s, &base, &seglen);
  if (pl->rs) {
    *in_off = (size_t)p * pl->count + base;
    *len = seglen;
    *out_off = base;
    return;
  }
  if (pl->gather_all) { /* every rank reduces everything */
    *in_off = 0;
    *len = pl->count;
    *out_off = 0;
    return;
  }
  if (seglen == (size_t)pl->n * pl->segc) {
    *in_off = base + (size_t)p * pl->segc;
    *len = pl->segc;
  } else { /* the last segment: lk_partition's split, in elements */
    size_t c = seglen / pl->n, extra = seglen % pl->n;
    *in_off = base + (size_t)p * c + (p < extra ? p : extra);
    *len = c + (p < extra ? 1 : 0);
  }
  *out_off = *in_off;
}

size_t lk_nccl_plan_slot(const lk_nccl_plan_t* pl, size_t s) {
  if (pl->rs) return pl->segc;
  if (pl->gather_all) return pl->count;
  size_t base, seglen;
  lk_nccl_plan_seg(pl, s, &base, &seglen);
  if (seglen == (size_t)pl->n * pl->segc) return pl->segc;
  return seglen / pl->n + (seglen % pl->n ? 1 : 0);
}

bool lk_nccl_plan_equal(const lk_nccl_plan_t* pl, size_t s) {
  if (pl->rs || pl->gather_all) return true;
  size_t base, seglen;
  lk_nccl_plan_seg(pl, s, &base, &seglen);
  return seglen % pl->n == 0;
}

/* ---- the kernels' source and images ---------------------------------------------- */

static pthread_once_t lk_nl_src_once = PTHREAD_ONCE_INIT;
static char* lk_nl_src;
static size_t lk_nl_src_len;

static void lk_nl_src_build(void) {
  size_t a = strlen(lk_cuk_prelude), b = strlen(lk_cuk_arith_src), c = strlen(lk_cuk_kernels);
  lk_nl_src = malloc(a + b + c + 2);
  if (!lk_nl_src) return;
  memcpy(lk_nl_src, lk_cuk_prelude, a);
  memcpy(lk_nl_src + a, lk_cuk_arith_src, b);
  lk_nl_src[a + b] = '\n';
  memcpy(lk_nl_src + a + b + 1, lk_cuk_kernels, c + 1);
  lk_nl_src_len = a + b + 1 + c;
}

lightos_status_t lk_nccl_compile_kernels(const char* arch, int driver_version, bool use_cache,
                                         void** image, size_t* size) {
  pthread_once(&lk_nl_src_once, lk_nl_src_build);
  if (!lk_nl_src) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for kernel source");
  const lk_nvrtc_api_t* rtc = lk_nvrtc_api_get(NULL, 0);
  char ver[96];
  snprintf(ver, sizeof ver, "nvrtc %d.%d driver %d", rtc ? rtc->major : 0, rtc ? rtc->minor : 0,
           driver_version);
  uint8_t key[32];
  lk_sha256_t h;
  lk_sha256_init(&h);
  lk_sha256_update_str(&h, "lightos-nccl-kernels v1");
  lk_sha256_update_str(&h, arch);
  lk_sha256_update_str(&h, ver);
  lk_sha256_update(&h, lk_nl_src, lk_nl_src_len);
  lk_sha256_final(&h, key);
  if (use_cache && lk_cache_load(key, image, size)) return LIGHTOS_SUCCESS;
  char* log = NULL;
  lightos_status_t s =
      lk_cuda_compile_source(lk_nl_src, lk_nl_src_len, arch, "", image, size, &log);
  if (s && log && log[0]) LK_LOG_WARN("comm: the NCCL path's kernels did not build:\n%s", log);
  free(log);
  if (!s) lk_cache_store(key, *image, *size);
  return s;
}

/* ---- per-rank state ---------------------------------------------------------------- */

/* Exchange areas of a pipelined reduction: the all-to-all of segment s
 * fills area s % LK_NL_NX, so up to LK_NL_NX - 1 all-to-alls are queued
 * ahead of the reduction that frees an area (see lk_nl_pipe_run). */
#define LK_NL_NX 3

#define LK_NL_MAXSTEP LK_NCCL_MAXSTEP

typedef struct lk_nl_pend {
  CUevent start, end;
  uint64_t started_ns; /* when start was seen complete; 0: not yet */
} lk_nl_pend_t;

/* One NCCL communicator with its streams, events and scratch. */
typedef struct lk_nl_lane {
  const char* name;
  pthread_mutex_t lock; /* held while issuing work (NCCL calls, launches) */
  ncclComm_t nc;        /* NULL: not made yet, or aborted */
  CUstream main;        /* the STRICT lane's own stream (the enqueue lane uses the caller's) */
  CUstream aux;         /* the reduction kernels */
  CUevent ev_a[LK_NL_NX], ev_r, ev_tail, ev_host;
  CUdeviceptr x;        /* exchange areas: LK_NL_NX of x_one bytes */
  size_t x_one;
  CUdeviceptr e;        /* STRICT: block exponents */
  size_t e_bytes;
  CUdeviceptr small;    /* a few bytes: barrier, warm-up */
  /* Recursive halving (enqueue lane, 2^K ranks, K >= 2): sub[k] pairs
   * this rank with rank ^ (1 << k); two ranks use nc itself. */
  ncclComm_t sub[LK_NL_MAXSTEP];
  uint32_t nsub;
  CUdeviceptr red;      /* a reduce's result off the root */
  size_t red_bytes;
  CUdeviceptr stg;      /* halving: a misaligned rank's segments (two areas) */
  size_t stg_bytes;
  CUdeviceptr* retired; /* grown-out buffers, freed with the lane */
  size_t nretired, capretired;
} lk_nl_lane_t;

typedef struct lk_nl_group lk_nl_group_t;

/* Peer copies: groups of up to this many GPUs; each rank's flags take 512
 * bytes: PUSH, DONE and RED 64 bytes apart, then AG[q] for each rank q. */
#define LK_NL_P2P_MAX 64
#define LK_NL_FLAG_WORDS 128
#define LK_NL_FLAG_PUSH 0
#define LK_NL_FLAG_DONE 16
#define LK_NL_FLAG_RED 32
#define LK_NL_FLAG_AG 64

/* A rank's receive buffers of its operations by peer copies, by operation
 * index, from `base` (group lock). */
typedef struct lk_nl_pub {
  CUdeviceptr* outs;
  uint64_t base, count, cap;
} lk_nl_pub_t;

typedef struct lk_nl_dev {
  lk_comm_t* c;
  lk_cu_context_t* cu;
  const lk_cuda_api_t* api;
  const lk_nccl_api_t* nccl;
  CUresult (*wait_event)(CUstream stream, CUevent event, unsigned int flags);
  CUmodule mod;
  CUfunction k_tree, k_tree2v, k_treev4, k_treev8, k_scan, k_strict, k_fin, k_special;
  int sms;
  unsigned ctas;       /* the pipeline kernels' grid cap (LIGHTOS_NCCL_KERNEL_CTAS) */
  unsigned p2p_ctas;   /* the peer-copy reduction's (two blocks per SM) */
  size_t segb;         /* exchange bytes of one pipeline segment */
  bool halve;          /* recursive halving for float sums (same on every rank) */
  size_t hsegb;        /* bytes of one halving segment (rank 0's) */
  size_t scan_min;     /* halving sums scan from this many bytes (rank 0's) */
  uint32_t dnan_f;     /* the host's default NaNs */
  uint64_t dnan_d;
  lk_nl_lane_t q;      /* the enqueue lane */
  lk_nl_lane_t p;      /* the STRICT lane */
  int p_state;         /* 0: not made yet; 1: ready; -1: not usable (every rank agreed) */
  atomic_bool dead;    /* the NCCL communicators were aborted */
  /* the watchdog */
  pthread_mutex_t wlock; /* taken after a lane lock, never before one */
  pthread_cond_t wcv;
  pthread_cond_t wdrained;
  lk_nl_pend_t* pend;
  size_t npend, cappend;
  CUevent* evfree;
  size_t nevfree, capevfree;
  bool wstop, wd_started;
  pthread_t wd;
  lk_nl_group_t* group;
  /* Peer copies (lk_nl_p2p_*): set for every rank of an in-process group
   * or for none. */
  bool p2p;
  size_t p2p_min;      /* bytes of input from which an operation takes them */
  uint32_t p2p_seq;    /* segments exchanged so far (enqueue lane lock) */
  /* LIGHTOS_NCCL_P2P_PROFILE=1: GPU times of the steps of an operation
   * by peer copies, printed when the next one starts (rank 0). */
  CUevent prof[6];
  bool prof_on, prof_have;
  /* LIGHTOS_NCCL_ISSUE_PROFILE=1: the host's time in the steps of issuing
   * an operation (lk_nl_enqueue), summed; printed when the group goes. */
  bool iprof_on;
  uint64_t iprof_ops, iprof_ns[5];
  /* Operations handed to a queue and not issued yet (lk_nl_enqueue): a
   * queue whose host thread has work ahead issues them later, so this
   * rank's later operations wait unless they go to that same queue (NCCL
   * needs every rank's operations in one order). */
  pthread_mutex_t ilock;
  pthread_cond_t icv;
  uint32_t nissue;
  const lk_queue_t* issue_q;
} lk_nl_dev_t;

/* The ranks of one lightos_comm_init_all, for aborting them together. */
struct lk_nl_group {
  pthread_mutex_t lock; /* taken with no lane lock and no wlock held */
  uint32_t n, live;
  /* Peer copies: per rank a PUSH and a DONE word (LK_NL_FLAG_*), in
   * pinned host memory every GPU of the group polls; NULL: none. */
  volatile uint32_t* flags;
  CUdeviceptr flags_dev;  /* the same words as the GPUs address them */
  const lk_cuda_api_t* api;
  /* A group of processes (lk_nl_p2p_setup_ranks): the flags are a POSIX
   * shared memory segment registered with CUDA, the peers' exchange areas
   * are opened from CUDA IPC handles, and the all-gather is NCCL's. */
  bool ranks;
  void* shm;
  size_t shm_bytes;
  atomic_uint release_value; /* what an abort sets every flag to (0: none yet) */
  bool leak_flags;       /* a rank went with work unfinished (lock) */
  CUdeviceptr x[LK_NL_P2P_MAX]; /* every rank's exchange areas */
  /* The all-gather's copies from rank r to rank q run on xs[r * n + q], a
   * stream of r's GPU (NULL once r is destroyed); the ranks' contexts. */
  CUstream* xs;
  lk_cu_context_t* cu[LK_NL_P2P_MAX];
  lk_nl_pub_t pub[LK_NL_P2P_MAX];
  lk_nl_dev_t* devs[];
};

static const lk_comm_dev_vtbl_t lk_nl_vtbl;

static uint64_t lk_nl_deadline(const lk_comm_t* c) {
  double ns = c->config.timeout_s * 1e9;
  uint64_t now = lk_now_ns();
  return ns >= (double)(UINT64_MAX - now) ? UINT64_MAX : now + (uint64_t)ns;
}

static CUdeviceptr lk_nl_ptr(const lk_buffer_t* b) {
  return b ? (CUdeviceptr)(uintptr_t)b->mem.device_ptr + b->offset : 0;
}

static bool lk_nl_same_memory(const lk_buffer_t* a, const lk_buffer_t* b) {
  return a == b || (a && b && a->mem.device_ptr == b->mem.device_ptr &&
                    a->mem.native == b->mem.native && a->offset == b->offset);
}

/* A thread's error record, kept across clean-up that may raise others. */
typedef struct lk_nl_err {
  lightos_status_t status;
  char backend[16], name[64];
  int64_t code;
  char msg[512];
} lk_nl_err_t;

static void lk_nl_err_save(lk_nl_err_t* e) {
  const lightos_error_info_t* i = lightos_last_error();
  e->status = i->status;
  lk_strlcpy(e->backend, i->backend, sizeof e->backend);
  lk_strlcpy(e->name, i->native_name, sizeof e->name);
  e->code = i->native_code;
  lk_strlcpy(e->msg, i->message, sizeof e->msg);
}

static lightos_status_t lk_nl_err_raise(const lk_nl_err_t* e) {
  if (!e->status) {
    lightos_clear_error();
    return LIGHTOS_SUCCESS;
  }
  return LK_FAIL_NATIVE(e->status, e->backend, e->name, e->code, "%s", e->msg);
}

static lightos_status_t lk_nl_nccl_fail(const lk_nl_dev_t* d, const lk_nl_lane_t* l,
                                        ncclResult_t r, const char* call) {
  const lk_nccl_api_t* api = d->nccl;
  const char* text = api->ncclGetErrorString(r);
  const char* last = api->ncclGetLastError && l && l->nc ? api->ncclGetLastError(l->nc) : NULL;
  lightos_status_t s;
  switch (r) {
    case 4: /* ncclInvalidArgument */
    case 5: /* ncclInvalidUsage */
      s = LIGHTOS_INVALID_ARGUMENT;
      break;
    case 6: /* ncclRemoteError */
      s = LIGHTOS_ABORTED;
      break;
    default:
      s = LIGHTOS_INTERNAL;
  }
  return LK_FAIL_NATIVE(s, "nccl", text ? text : "", r, "%s failed on rank %u of %u (%s, %d)%s%s",
                        call, d->c->rank, d->c->size, text ? text : "?", (int)r,
                        last && last[0] ? ": " : "", last ? last : "");
}

/* ---- aborting ------------------------------------------------------------------------ */

/* Aborts (or, free_memory, destroys) the halving communicators of a lane. */
static void lk_nl_subs_free(lk_nl_dev_t* d, lk_nl_lane_t* l, bool free_memory) {
  for (uint32_t k = 0; k < l->nsub; ++k) {
    if (!l->sub[k]) continue;
    ncclResult_t r =
        free_memory ? d->nccl->ncclCommDestroy(l->sub[k]) : d->nccl->ncclCommAbort(l->sub[k]);
    if (r) LK_LOG_DEBUG("comm: freeing halving communicator %u (rank %u): %d", k, d->c->rank, r);
    l->sub[k] = NULL;
  }
  l->nsub = 0;
}

/* Takes a lane's communicators out of it (they are to be aborted): the
 * lane issues nothing from now on.  Returns how many went to out. */
static uint32_t lk_nl_lane_take(lk_nl_lane_t* l, ncclComm_t* out) {
  uint32_t n = 0;
  pthread_mutex_lock(&l->lock);
  for (uint32_t k = 0; k < l->nsub; ++k)
    if (l->sub[k]) out[n++] = l->sub[k];
  memset(l->sub, 0, sizeof l->sub);
  l->nsub = 0;
  if (l->nc) out[n++] = l->nc;
  l->nc = NULL;
  pthread_mutex_unlock(&l->lock);
  return n;
}

typedef struct lk_nl_abort_job {
  const lk_nl_dev_t* d;
  ncclComm_t nc;
} lk_nl_abort_job_t;

static void* lk_nl_abort_one(void* arg) {
  const lk_nl_abort_job_t* j = arg;
  (void)lk_cu_make_current(j->d->cu);
  ncclResult_t r = j->d->nccl->ncclCommAbort(j->nc);
  if (r) LK_LOG_DEBUG("comm: ncclCommAbort (rank %u): %d", j->d->c->rank, r);
  return NULL;
}

/* Aborts a rank's NCCL communicators all at once, a thread each.  One
 * after another can hang: NCCL's abort waits for its streams, and these
 * can wait behind a kernel of another communicator of the same GPU that
 * only that communicator's abort stops (seen with NCCL 2.28.3: the main
 * communicator's abort waiting behind a halving communicator's kernel
 * after a process of the group was killed). */
static void lk_nl_abort_all(const lk_nl_dev_t* d, const ncclComm_t* comms, uint32_t n) {
  enum { MAXC = 2 * (LK_NL_MAXSTEP + 1) };
  lk_nl_abort_job_t jobs[MAXC];
  pthread_t th[MAXC];
  bool started[MAXC] = {false};
  if (n > MAXC) n = MAXC;
  for (uint32_t i = 0; i < n; ++i) {
    jobs[i] = (lk_nl_abort_job_t){d, comms[i]};
    if (i > 0) started[i] = pthread_create(&th[i], NULL, lk_nl_abort_one, &jobs[i]) == 0;
  }
  for (uint32_t i = n; i-- > 0;)
    if (!started[i]) (void)lk_nl_abort_one(&jobs[i]);
  for (uint32_t i = 1; i < n; ++i)
    if (started[i]) pthread_join(th[i], NULL);
}

/* Aborts this rank's NCCL communicators and the communicator (why: the
 * reason); with siblings, every rank of its in-process group too.  Call
 * with no lane lock and no wlock held.  Keeps the thread's error record. */
static void lk_nl_p2p_release(lk_nl_group_t* g);
static void lk_nl_p2p_ranks_undo(lk_nl_dev_t* d, lk_nl_group_t* g);

static void lk_nl_fatal(lk_nl_dev_t* d, const char* why, bool siblings) {
  lk_nl_err_t saved;
  lk_nl_err_save(&saved);
  atomic_store(&d->dead, true);
  lk_comm_set_aborted(d->c, why);
  /* The peer-copy flags first: NCCL's abort may wait for a stream that
   * waits on them. */
  lk_nl_group_t* g = d->group;
  lk_nl_p2p_release(g);
  ncclComm_t comms[2 * (LK_NL_MAXSTEP + 1)];
  uint32_t nc = lk_nl_lane_take(&d->q, comms);
  nc += lk_nl_lane_take(&d->p, comms + nc);
  lk_nl_abort_all(d, comms, nc);
  d->c->xport->vtbl->abort(d->c->xport, why);
  if (d->c->hier_owner) lk_hier_break(d->c, why); /* a CUDA block of a composed group */
  if (siblings && g) {
    char msg[sizeof d->c->abort_msg];
    snprintf(msg, sizeof msg, "rank %u of the group: %s", d->c->rank, why);
    pthread_mutex_lock(&g->lock);
    for (uint32_t i = 0; i < g->n; ++i)
      if (g->devs[i] && g->devs[i] != d && !atomic_load(&g->devs[i]->dead))
        lk_nl_fatal(g->devs[i], msg, false);
    pthread_mutex_unlock(&g->lock);
  }
  (void)lk_nl_err_raise(&saved);
}

/* ---- the watchdog -------------------------------------------------------------------- */

/* An event of the pool (wlock held; the context current). */
static CUevent lk_nl_ev_get(lk_nl_dev_t* d) {
  if (d->nevfree) return d->evfree[--d->nevfree];
  CUevent e = NULL;
  if (d->api->cuEventCreate(&e, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) return NULL;
  return e;
}

static void lk_nl_ev_put(lk_nl_dev_t* d, CUevent e) {
  if (!e) return;
  if (d->nevfree == d->capevfree) {
    size_t cap = d->capevfree ? d->capevfree * 2 : 16;
    CUevent* grown = realloc(d->evfree, cap * sizeof *grown);
    if (!grown) {
      d->api->cuEventDestroy_v2(e);
      return;
    }
    d->evfree = grown;
    d->capevfree = cap;
  }
  d->evfree[d->nevfree++] = e;
}

/* Records the start of watched work on st (lane lock held). */
static lightos_status_t lk_nl_watch_begin(lk_nl_dev_t* d, CUstream st, CUevent* out) {
  pthread_mutex_lock(&d->wlock);
  CUevent e = lk_nl_ev_get(d);
  pthread_mutex_unlock(&d->wlock);
  if (!e) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "cuEventCreate failed for the NCCL watchdog");
  CUresult r = d->api->cuEventRecord(e, st);
  if (r) {
    pthread_mutex_lock(&d->wlock);
    lk_nl_ev_put(d, e);
    pthread_mutex_unlock(&d->wlock);
    return lk_cu_fail(d->cu, r, "cuEventRecord", "the NCCL watchdog");
  }
  *out = e;
  return LIGHTOS_SUCCESS;
}

/* Records the end of the work begun with start and hands both to the
 * watchdog (lane lock held).  Without an end event the work is not
 * watched. */
static void lk_nl_watch_end(lk_nl_dev_t* d, CUstream st, CUevent start) {
  pthread_mutex_lock(&d->wlock);
  CUevent end = lk_nl_ev_get(d);
  bool ok = end && d->api->cuEventRecord(end, st) == CUDA_SUCCESS;
  if (ok && d->npend == d->cappend) {
    size_t cap = d->cappend ? d->cappend * 2 : 32;
    lk_nl_pend_t* grown = realloc(d->pend, cap * sizeof *grown);
    if (grown) {
      d->pend = grown;
      d->cappend = cap;
    } else {
      ok = false;
    }
  }
  if (ok) {
    d->pend[d->npend++] = (lk_nl_pend_t){start, end, 0};
    /* Only an idle watchdog needs waking: with work pending it polls every
     * millisecond anyway (a wake per operation cost the issuing thread a
     * system call, and the watchdog's event queries contend with it). */
    if (d->npend == 1) pthread_cond_broadcast(&d->wcv);
  } else {
    /* Not watched (the events may still be in use by the stream: they
     * are only recorded again after a stream wait, never destroyed). */
    lk_nl_ev_put(d, start);
    lk_nl_ev_put(d, end);
  }
  pthread_mutex_unlock(&d->wlock);
}

/* The first asynchronous NCCL error of a lane, as text; false if none. */
static bool lk_nl_async_error(lk_nl_dev_t* d, lk_nl_lane_t* l, char* why, size_t cap) {
  bool bad = false;
  pthread_mutex_lock(&l->lock);
  for (uint32_t k = 0; k <= l->nsub && !bad; ++k) {
    ncclComm_t nc = k < l->nsub ? l->sub[k] : l->nc;
    if (!nc) continue;
    ncclResult_t e = 0;
    ncclResult_t r = d->nccl->ncclCommGetAsyncError(nc, &e);
    if (r == 0 && e != 0 && e != 7 /* ncclInProgress */) {
      const char* text = d->nccl->ncclGetErrorString(e);
      snprintf(why, cap, "NCCL reported an asynchronous error on rank %u (%s lane%s): %s (%d)",
               d->c->rank, l->name, k < l->nsub ? ", halving communicator" : "",
               text ? text : "?", (int)e);
      bad = true;
    }
  }
  pthread_mutex_unlock(&l->lock);
  return bad;
}

static void* lk_nl_watchdog(void* arg) {
  lk_nl_dev_t* d = arg;
  (void)lk_cu_make_current(d->cu);
  lightos_clear_error();
  const double tmo_s = d->c->config.timeout_s;
  const uint64_t tmo = tmo_s * 1e9 >= 1.8e19 ? UINT64_MAX : (uint64_t)(tmo_s * 1e9);
  uint64_t last_async = 0, lost_ns = 0;
  pthread_mutex_lock(&d->wlock);
  for (;;) {
    while (!d->wstop && d->npend == 0) pthread_cond_wait(&d->wcv, &d->wlock);
    if (d->npend == 0) break; /* stopping, nothing pending */
    const uint64_t now = lk_now_ns();
    char why[sizeof d->c->abort_msg] = "";
    for (size_t i = 0; i < d->npend;) {
      lk_nl_pend_t* p = &d->pend[i];
      CUresult r = d->api->cuEventQuery(p->end);
      if (r != CUDA_ERROR_NOT_READY) {
        /* Done (or failed: the queue reports that). */
        lk_nl_ev_put(d, p->start);
        lk_nl_ev_put(d, p->end);
        d->pend[i] = d->pend[--d->npend];
        continue;
      }
      if (!p->started_ns) {
        if (d->api->cuEventQuery(p->start) == CUDA_SUCCESS) p->started_ns = now;
      } else if (now - p->started_ns > tmo && !why[0] && !atomic_load(&d->dead)) {
        snprintf(why, sizeof why,
                 "a collective on rank %u of %u did not complete within %g s (did every rank "
                 "issue it?); the NCCL communicators were aborted",
                 d->c->rank, d->c->size, tmo_s);
      }
      ++i;
    }
    if (d->npend == 0) pthread_cond_broadcast(&d->wdrained);
    /* Aborted with work pending: keep the peer-copy flags released. */
    if (d->npend && atomic_load(&d->dead)) lk_nl_p2p_release(d->group);
    if (!why[0] && d->npend && atomic_load(&d->c->aborted) && !atomic_load(&d->dead)) {
      pthread_mutex_lock(&d->c->lock);
      snprintf(why, sizeof why, "%s", d->c->abort_msg);
      pthread_mutex_unlock(&d->c->lock);
    }
    bool check_async = d->npend && now - last_async > 100000000ull;
    pthread_mutex_unlock(&d->wlock);
    if (!why[0] && check_async) {
      last_async = now;
      if (!lk_nl_async_error(d, &d->q, why, sizeof why))
        (void)lk_nl_async_error(d, &d->p, why, sizeof why);
    }
    /* A process of the group gone (its host connection closed) while work
     * is pending: that work cannot finish.  A peer that destroyed its
     * communicator closes too, but only after its part of every operation:
     * ours then ends soon after, so it is given a grace (1 s, at most the
     * timeout) before the abort. */
    const lk_xport_vtbl_t* xv = d->c->xport ? d->c->xport->vtbl : NULL;
    if (!why[0] && check_async && xv && xv->peer_lost && !atomic_load(&d->dead)) {
      char lw[256];
      if (xv->peer_lost(d->c->xport, lw, sizeof lw)) {
        const uint64_t grace = tmo < 1000000000ull ? tmo : 1000000000ull;
        if (!lost_ns) {
          lost_ns = now;
        } else if (now - lost_ns >= grace) {
          snprintf(why, sizeof why,
                   "%s; rank %u of %u still had collectives pending %.1f s later: the NCCL "
                   "communicators were aborted",
                   lw, d->c->rank, d->c->size, (double)(now - lost_ns) / 1e9);
        }
      }
    }
    if (why[0]) {
      LK_LOG_WARN("comm: %s", why);
      lk_nl_fatal(d, why, true);
    }
    pthread_mutex_lock(&d->wlock);
    if (d->npend && !d->wstop) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 1000000; /* 1 ms */
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&d->wcv, &d->wlock, &ts);
    } else if (d->npend) {
      /* Stopping with work pending: poll until it drains. */
      pthread_mutex_unlock(&d->wlock);
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
      pthread_mutex_lock(&d->wlock);
    }
  }
  pthread_cond_broadcast(&d->wdrained);
  pthread_mutex_unlock(&d->wlock);
  return NULL;
}

/* ---- small helpers for issuing -------------------------------------------------------- */

static lightos_status_t lk_nl_record(lk_nl_dev_t* d, CUevent e, CUstream st) {
  CUresult r = d->api->cuEventRecord(e, st);
  return r ? lk_cu_fail(d->cu, r, "cuEventRecord", "NCCL path") : LIGHTOS_SUCCESS;
}

static lightos_status_t lk_nl_wait_on(lk_nl_dev_t* d, CUstream st, CUevent e) {
  CUresult r = d->wait_event(st, e, 0);
  return r ? lk_cu_fail(d->cu, r, "cuStreamWaitEvent", "NCCL path") : LIGHTOS_SUCCESS;
}

/* Threads per block of the pipeline kernels. */
#define LK_NL_BLOCK 512

/* A pipeline kernel's grid: enough blocks for the items, at most d->ctas
 * (fewer blocks than SMs by default: the reduction of segment s runs while
 * NCCL's kernels move segment s+1, and NCCL's blocks need SMs of their
 * own to run at full speed). */
static unsigned lk_nl_grid(uint64_t items, unsigned cap) {
  uint64_t g = (items + LK_NL_BLOCK - 1) / LK_NL_BLOCK;
  if (g > (cap ? cap : 1u)) g = cap ? cap : 1u;
  return g ? (unsigned)g : 1u;
}

/* A launch of at most cap blocks. */
static lightos_status_t lk_nl_launch_on(lk_nl_dev_t* d, CUfunction f, uint64_t items,
                                        unsigned cap, CUstream st, void** args,
                                        const char* what) {
  CUresult r = d->api->cuLaunchKernel(f, lk_nl_grid(items, cap), 1, 1, LK_NL_BLOCK, 1, 1, 0, st,
                                      args, NULL);
  return r ? lk_cu_fail(d->cu, r, "cuLaunchKernel", what) : LIGHTOS_SUCCESS;
}

static lightos_status_t lk_nl_launch(lk_nl_dev_t* d, CUfunction f, uint64_t items, CUstream st,
                                     void** args, const char* what) {
  return lk_nl_launch_on(d, f, items, d->ctas, st, args, what);
}

/* out[0..len) = the fixed tree over n inputs (own for rank me, slots + t *
 * stride for the others), finished (avg over ntotal), in at most cap
 * blocks.  Two ranks of a float type with 16-byte aligned operands: the
 * 16-byte pack kernel. */
static lightos_status_t lk_nl_tree(lk_nl_dev_t* d, CUstream st, unsigned cap, int dt, int op,
                                   CUdeviceptr own, CUdeviceptr slots, uint64_t stride,
                                   uint32_t me, uint32_t n, CUdeviceptr out, uint64_t len,
                                   uint64_t ntotal) {
  if (!len) return LIGHTOS_SUCCESS;
  const size_t es = lightos_dtype_size((lightos_dtype_t)dt);
  if (n == 2 && lk_red_dtype_is_float((lightos_dtype_t)dt) && dt != LIGHTOS_DTYPE_F64) {
    CUdeviceptr a = me == 0 ? own : slots, b = me == 1 ? own : slots + (CUdeviceptr)(stride * es);
    if (!((a | b | out) & 15u)) {
      int kdt = dt, kop = op;
      unsigned dnf = d->dnan_f;
      unsigned long long klen = len, knt = ntotal;
      void* args[] = {&kdt, &kop, &a, &b, &out, &klen, &knt, &dnf};
      return lk_nl_launch_on(d, d->k_tree2v, len / (16 / es) + 1, cap, st, args,
                             "the reduction kernel");
    }
  }
  int kdt = dt, kop = op;
  unsigned kme = me, kn = n, dnf = d->dnan_f;
  unsigned long long kstride = stride, klen = len, knt = ntotal, dnd = d->dnan_d;
  if ((n == 4 || n == 8) && (dt == LIGHTOS_DTYPE_F32 || dt == LIGHTOS_DTYPE_F64) &&
      !((own | slots | out | (CUdeviceptr)(stride * es)) & 15u)) {
    /* 16-byte packs, the n loads of a pack in flight together */
    void* args[] = {&kdt, &kop, &own, &slots, &kstride, &kme, &out, &klen, &knt, &dnf, &dnd};
    return lk_nl_launch_on(d, n == 4 ? d->k_treev4 : d->k_treev8, len / (16 / es) + 1, cap, st,
                           args, "the reduction kernel");
  }
  void* args[] = {&kdt, &kop, &own, &slots, &kstride, &kme, &kn, &out, &klen, &knt, &dnf, &dnd};
  return lk_nl_launch_on(d, d->k_tree, len, cap, st, args, "the reduction kernel");
}

/* out[0..len) = the STRICT sums of the n ranks' raw elements (own for rank
 * me, slots + t * stride for the others), global index gbase + j. */
static lightos_status_t lk_nl_strict_sum(lk_nl_dev_t* d, CUstream st, int dt, int op,
                                         CUdeviceptr own, CUdeviceptr slots, uint64_t stride,
                                         uint32_t me, uint32_t n, CUdeviceptr out, uint64_t len,
                                         uint64_t gbase, CUdeviceptr exps, uint64_t ntotal) {
  if (!len) return LIGHTOS_SUCCESS;
  int kdt = dt, kop = op;
  unsigned kme = me, kn = n;
  unsigned long long ks = stride, kl = len, kg = gbase, knt = ntotal;
  void* args[] = {&kdt, &kop, &own, &slots, &ks, &kme, &kn, &out, &kl, &kg, &exps, &knt};
  return lk_nl_launch(d, d->k_strict, len, st, args, "the STRICT sum kernel");
}

/* Grows a device buffer of the STRICT lane to `copies` x at least `need`
 * bytes (*have: the bytes of one copy).  The old buffer is kept until the
 * lane goes (work issued before may still use it).  Lane lock held. */
static lightos_status_t lk_nl_grow(lk_nl_dev_t* d, lk_nl_lane_t* l, CUdeviceptr* buf,
                                   size_t* have, size_t need, size_t copies) {
  if (*buf && *have >= need) return LIGHTOS_SUCCESS;
  if (need == 0) need = 1;
  size_t want = *have * 2 > need ? *have * 2 : need, bytes;
  if (!lk_mul_ok(want, copies, &bytes)) want = need;
  if (!lk_mul_ok(want, copies, &bytes))
    return LK_FAIL(LIGHTOS_OUT_OF_RANGE, "NCCL path scratch of %zu x %zu bytes", copies, need);
  if (*buf && l->nretired == l->capretired) {
    size_t cap = l->capretired ? l->capretired * 2 : 8;
    CUdeviceptr* grown = realloc(l->retired, cap * sizeof *grown);
    if (!grown) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
    l->retired = grown;
    l->capretired = cap;
  }
  CUdeviceptr p = 0;
  CUresult r = d->api->cuMemAlloc_v2(&p, bytes);
  if (r == CUDA_ERROR_OUT_OF_MEMORY && want > need) {
    want = need;
    bytes = want * copies;
    r = d->api->cuMemAlloc_v2(&p, bytes);
  }
  if (r) {
    char what[96];
    snprintf(what, sizeof what, "NCCL path scratch of %zu bytes", bytes);
    return lk_cu_fail(d->cu, r, "cuMemAlloc", what);
  }
  if (*buf) l->retired[l->nretired++] = *buf;
  *buf = p;
  *have = want;
  return LIGHTOS_SUCCESS;
}

/* ---- the pipelined reductions ----------------------------------------------------------- */

typedef struct lk_nl_pipe {
  lk_nl_dev_t* d;
  lk_nl_lane_t* l;
  CUstream M;            /* NCCL calls (the caller's stream, or the STRICT lane's) */
  const lk_nccl_plan_t* pl;
  bool strict;           /* the STRICT sum (the exchange carries the raw elements) */
  int dt, op;
  CUdeviceptr src;       /* the input */
  CUdeviceptr out;       /* the result (allreduce: count elements; rs: recvcount) */
  bool ag;               /* all-gather the reduced chunks */
  uint64_t ntotal;
  CUdeviceptr exps;      /* strict: the shared block exponents */
  uint32_t seq0;         /* peer copies: the segments exchanged before this operation */
} lk_nl_pipe_t;

/* Bytes per exchanged element: the element itself at every level (STRICT
 * converts to fixed point where it sums). */
static size_t lk_nl_xes(const lk_nl_pipe_t* p) {
  return lightos_dtype_size((lightos_dtype_t)p->dt);
}

/* Exchange area of segment s. */
static CUdeviceptr lk_nl_xarea(const lk_nl_pipe_t* p, size_t s) {
  return p->l->x + (CUdeviceptr)((s % LK_NL_NX) * p->l->x_one);
}

/* Segment s's all-to-all: this rank's part of chunk q to rank q, rank q's
 * part of this rank's chunk into slot q (one NCCL group). */
static lightos_status_t lk_nl_pipe_a2a(const lk_nl_pipe_t* p, size_t s) {
  lk_nl_dev_t* d = p->d;
  const lk_nccl_api_t* api = d->nccl;
  const lk_nccl_plan_t* pl = p->pl;
  const size_t xes = lk_nl_xes(p), stride = lk_nccl_plan_slot(pl, s);
  const CUdeviceptr xbase = lk_nl_xarea(p, s);
  size_t my_off, my_len, unused;
  lk_nccl_plan_chunk(pl, s, pl->me, &my_off, &my_len, &unused);
  if (pl->n == 1) return LIGHTOS_SUCCESS;
  ncclResult_t r = api->ncclGroupStart();
  if (r) return lk_nl_nccl_fail(d, p->l, r, "ncclGroupStart");
  ncclResult_t first = 0;
  const char* call = "";
  for (uint32_t q = 0; q < pl->n; ++q) {
    if (q == pl->me) continue;
    size_t off, len;
    lk_nccl_plan_chunk(pl, s, q, &off, &len, &unused);
    if (len && !first) {
      first = api->ncclSend((const void*)(uintptr_t)(p->src + (CUdeviceptr)(off * xes)),
                            len * xes, LK_NCCL_INT8, (int)q, p->l->nc, p->M);
      call = "ncclSend";
    }
    if (my_len && !first) {
      first = api->ncclRecv((void*)(uintptr_t)(xbase + (CUdeviceptr)((size_t)q * stride * xes)),
                            my_len * xes, LK_NCCL_INT8, (int)q, p->l->nc, p->M);
      call = "ncclRecv";
    }
  }
  r = api->ncclGroupEnd();
  if (first) return lk_nl_nccl_fail(d, p->l, first, call);
  return r ? lk_nl_nccl_fail(d, p->l, r, "ncclGroupEnd (all-to-all)") : LIGHTOS_SUCCESS;
}

/* Segment s's reduction of this rank's chunk, on stream st. */
static lightos_status_t lk_nl_pipe_red(const lk_nl_pipe_t* p, size_t s, CUstream st) {
  const lk_nccl_plan_t* pl = p->pl;
  const size_t xes = lk_nl_xes(p), oes = lightos_dtype_size((lightos_dtype_t)p->dt);
  const size_t stride = lk_nccl_plan_slot(pl, s);
  const CUdeviceptr xbase = lk_nl_xarea(p, s);
  size_t off, len, out_off;
  lk_nccl_plan_chunk(pl, s, pl->me, &off, &len, &out_off);
  const CUdeviceptr own = p->src + (CUdeviceptr)(off * xes);
  const CUdeviceptr out = p->out + (CUdeviceptr)(out_off * oes);
  if (p->strict)
    return lk_nl_strict_sum(p->d, st, p->dt, p->op, own, xbase, stride, pl->me, pl->n, out, len,
                            off, p->exps, p->ntotal);
  return lk_nl_tree(p->d, st, p->d->ctas, p->dt, p->op, own, xbase, stride, pl->me, pl->n, out,
                    len, p->ntotal);
}

/* Segment s's all-gather of the reduced chunks (allreduce). */
static lightos_status_t lk_nl_pipe_ag(const lk_nl_pipe_t* p, size_t s) {
  lk_nl_dev_t* d = p->d;
  const lk_nccl_api_t* api = d->nccl;
  const lk_nccl_plan_t* pl = p->pl;
  const size_t oes = lightos_dtype_size((lightos_dtype_t)p->dt);
  if (pl->n == 1) return LIGHTOS_SUCCESS;
  size_t my_off, my_len, unused;
  lk_nccl_plan_chunk(pl, s, pl->me, &my_off, &my_len, &unused);
  if (lk_nccl_plan_equal(pl, s)) {
    size_t seg_base, seg_len;
    lk_nccl_plan_seg(pl, s, &seg_base, &seg_len);
    if (!my_len) return LIGHTOS_SUCCESS;
    /* In place: rank r's chunk is at seg_base + r * my_len. */
    ncclResult_t r = api->ncclAllGather((const void*)(uintptr_t)(p->out + my_off * oes),
                                        (void*)(uintptr_t)(p->out + seg_base * oes), my_len * oes,
                                        LK_NCCL_INT8, p->l->nc, p->M);
    return r ? lk_nl_nccl_fail(d, p->l, r, "ncclAllGather") : LIGHTOS_SUCCESS;
  }
  ncclResult_t r = api->ncclGroupStart();
  if (r) return lk_nl_nccl_fail(d, p->l, r, "ncclGroupStart");
  ncclResult_t first = 0;
  const char* call = "";
  for (uint32_t q = 0; q < pl->n; ++q) {
    if (q == pl->me) continue;
    size_t off, len;
    lk_nccl_plan_chunk(pl, s, q, &off, &len, &unused);
    if (my_len && !first) {
      first = api->ncclSend((const void*)(uintptr_t)(p->out + my_off * oes), my_len * oes,
                            LK_NCCL_INT8, (int)q, p->l->nc, p->M);
      call = "ncclSend";
    }
    if (len && !first) {
      first = api->ncclRecv((void*)(uintptr_t)(p->out + off * oes), len * oes, LK_NCCL_INT8,
                            (int)q, p->l->nc, p->M);
      call = "ncclRecv";
    }
  }
  r = api->ncclGroupEnd();
  if (first) return lk_nl_nccl_fail(d, p->l, first, call);
  return r ? lk_nl_nccl_fail(d, p->l, r, "ncclGroupEnd (all-gather)") : LIGHTOS_SUCCESS;
}

/* Small allreduce: all-gather every rank's input, every rank reduces
 * every element (on M). */
static lightos_status_t lk_nl_pipe_gather_all(const lk_nl_pipe_t* p) {
  lk_nl_dev_t* d = p->d;
  const lk_nccl_plan_t* pl = p->pl;
  const size_t xes = lk_nl_xes(p);
  const size_t count = pl->count;
  ncclResult_t r = d->nccl->ncclAllGather((const void*)(uintptr_t)p->src,
                                          (void*)(uintptr_t)p->l->x, count * xes, LK_NCCL_INT8,
                                          p->l->nc, p->M);
  if (r) return lk_nl_nccl_fail(d, p->l, r, "ncclAllGather");
  if (p->strict)
    return lk_nl_strict_sum(d, p->M, p->dt, p->op, p->src, p->l->x, count, pl->me, pl->n,
                            p->out, count, 0, p->exps, p->ntotal);
  return lk_nl_tree(d, p->M, d->ctas, p->dt, p->op, p->src, p->l->x, count, pl->me, pl->n,
                    p->out, count, p->ntotal);
}

/* ---- peer copies: an in-process group's exchanges by copy engines ---------------------
 *
 * When one process drives every GPU of the group and each pair has peer
 * access, the tree pipeline's transfers are done by the copy engines, as
 * pushes over NVLink into the receiver's memory (a copy engine writing to a
 * peer runs at the link's speed; one reading from a peer does not), which
 * leaves the SMs free and needs no NCCL kernel.  The reduction kernel is
 * the tree pipeline's, so the bits are the same.  The ranks never wait on
 * the host: they meet through flags in pinned host memory, with stream
 * memory operations (writes, and waits for "greater or equal" modulo 2^32,
 * a write and the waits after it as one cuStreamBatchMemOp) on one
 * group-wide segment number S.  The segments (as large as all of a rank's
 * exchange areas together) run one after another; segment S = seq0 + i + 1
 * of an operation, on each rank's stream M (the caller's):
 *
 *   DONE[me] = S - 1 (seq0 for the first: M has passed this rank's earlier
 *   work, ev_tail included, so its areas and buffers are free), wait
 *   DONE[q] >= S - 1 for every peer q; copy this rank's part of q's chunk
 *   into q's area (slot me), peers in rotated order (me + 1, me + 2, ...:
 *   at each moment every GPU receives from one peer); PUSH[me] = S, wait
 *   PUSH[q] >= S (every peer's copies have landed); reduce; RED[me] = S.
 *
 * All-gather (allreduce): rank r's reduced chunk goes to rank q by a copy
 * on xs[r][q] (r's GPU) straight into q's receive buffer: wait RED[r] >= S,
 * copy, and after the last segment AG[r][q] = S; r's copies go to r + 1,
 * r + 2, ... one after another (each waits for the previous one's AG flag),
 * again so that every GPU receives from one peer at a time.  Those copies
 * need every receive buffer, so each rank publishes its own per operation
 * under the group lock, and the last one to do so issues them all.  M
 * ends waiting for AG[p][me] and AG[me][p] of every peer p: its buffer is
 * complete and its chunk delivered.  Groups of processes
 * (lk_nl_p2p_setup_ranks) all-gather with NCCL instead.
 *
 * Nothing depends on the order in which the ranks' calls reach the host,
 * so one thread may issue rank after rank, or one thread per rank.  An
 * abort sets every flag far ahead (lk_nl_p2p_release, repeated by the
 * watchdog) so that no stream waits for ever.  tests/test_comm_gpu.c runs
 * this code on a stand-in driver (lk_nccl_p2p_sim, below). */

static CUdeviceptr lk_nl_flag(const lk_nl_group_t* g, uint32_t rank, uint32_t which) {
  return g->flags_dev + (CUdeviceptr)(((size_t)rank * LK_NL_FLAG_WORDS + which) * 4u);
}

/* A list of stream memory operations: writes and waits (>=) of flags. */
typedef struct lk_nl_memops {
  CUstreamBatchMemOpParams op[2 * LK_NL_P2P_MAX];
  uint32_t n;
} lk_nl_memops_t;

static void lk_nl_memop(lk_nl_memops_t* m, bool write, CUdeviceptr addr, uint32_t value) {
  CUstreamBatchMemOpParams* o = &m->op[m->n++];
  memset(o, 0, sizeof *o);
  o->value.operation = write ? CU_STREAM_MEM_OP_WRITE_VALUE_32 : CU_STREAM_MEM_OP_WAIT_VALUE_32;
  o->value.address = addr;
  o->value.v.value = value;
  o->value.flags = write ? CU_STREAM_WRITE_VALUE_DEFAULT : CU_STREAM_WAIT_VALUE_GEQ;
}

/* Issues the list on st (one call where the driver batches; the context
 * of st current). */
static lightos_status_t lk_nl_memops_issue(lk_cu_context_t* cu, CUstream st,
                                           const lk_nl_memops_t* m) {
  const lk_cuda_api_t* api = cu->api;
  CUresult r = CUDA_SUCCESS;
  if (!m->n) return LIGHTOS_SUCCESS;
  if (api->cuStreamBatchMemOp_v2) {
    r = api->cuStreamBatchMemOp_v2(st, m->n, (CUstreamBatchMemOpParams*)m->op, 0);
    return r ? lk_cu_fail(cu, r, "cuStreamBatchMemOp", "peer copies") : LIGHTOS_SUCCESS;
  }
  for (uint32_t k = 0; k < m->n && !r; ++k) {
    const CUstreamBatchMemOpParams* o = &m->op[k];
    r = o->value.operation == CU_STREAM_MEM_OP_WRITE_VALUE_32
            ? api->cuStreamWriteValue32_v2(st, o->value.address, o->value.v.value, o->value.flags)
            : api->cuStreamWaitValue32_v2(st, o->value.address, o->value.v.value, o->value.flags);
  }
  return r ? lk_cu_fail(cu, r, "cuStreamWaitValue32/cuStreamWriteValue32", "peer copies")
           : LIGHTOS_SUCCESS;
}

/* On st: flag `which` of this rank = value, then wait until every peer's
 * flag `which` >= value. */
static lightos_status_t lk_nl_flag_meet(lk_nl_dev_t* d, CUstream st, uint32_t which,
                                        uint32_t value) {
  lk_nl_memops_t m = {.n = 0};
  const uint32_t n = d->c->size, me = d->c->rank;
  lk_nl_memop(&m, true, lk_nl_flag(d->group, me, which), value);
  for (uint32_t q = 0; q < n; ++q)
    if (q != me) lk_nl_memop(&m, false, lk_nl_flag(d->group, q, which), value);
  return lk_nl_memops_issue(d->cu, st, &m);
}

static atomic_ullong lk_nl_p2ps; /* operations exchanged by peer copies (tests) */

uint64_t lk_nccl_p2p_ops(void) {
  return atomic_load(&lk_nl_p2ps);
}

/* Publishes this rank's receive buffer of its operation number k (group
 * lock held); entries every rank has passed are dropped to make room. */
static lightos_status_t lk_nl_pub_add(lk_nl_group_t* g, uint32_t me, CUdeviceptr out) {
  lk_nl_pub_t* pb = &g->pub[me];
  if (pb->count == pb->cap) {
    uint64_t low = UINT64_MAX;
    for (uint32_t q = 0; q < g->n; ++q)
      if (g->pub[q].base + g->pub[q].count < low) low = g->pub[q].base + g->pub[q].count;
    const uint64_t drop = low > pb->base ? low - pb->base : 0;
    if (drop) {
      memmove(pb->outs, pb->outs + drop, (size_t)(pb->count - drop) * sizeof *pb->outs);
      pb->base += drop;
      pb->count -= drop;
    }
  }
  if (pb->count == pb->cap) {
    const uint64_t cap = pb->cap ? pb->cap * 2 : 16;
    CUdeviceptr* grown = realloc(pb->outs, (size_t)cap * sizeof *grown);
    if (!grown) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for peer copies");
    pb->outs = grown;
    pb->cap = cap;
  }
  pb->outs[pb->count++] = out;
  return LIGHTOS_SUCCESS;
}

/* The all-gather copies from rank r to rank q of the operation number k
 * (both published; group lock held), on xs[r][q] in r's context. */
static lightos_status_t lk_nl_p2p_ag_pair(lk_nl_group_t* g, const lk_nccl_plan_t* pl,
                                          uint32_t seq0, size_t es, uint32_t r, uint32_t q,
                                          uint64_t k) {
  const CUstream X = g->xs ? g->xs[(size_t)r * g->n + q] : NULL;
  if (!X)
    return LK_FAIL(LIGHTOS_ABORTED, "peer copies: rank %u of the group was destroyed", r);
  const CUdeviceptr from = g->pub[r].outs[k - g->pub[r].base];
  const CUdeviceptr to = g->pub[q].outs[k - g->pub[q].base];
  const uint32_t n = g->n, step = (q + n - r) % n, last = seq0 + (uint32_t)pl->nseg;
  lk_cu_context_t* cu = g->cu[r];
  lightos_status_t s = lk_cu_make_current(cu);
  for (size_t i = 0; i < pl->nseg && !s; ++i) {
    size_t off, len, out_off;
    lk_nccl_plan_chunk(pl, i, r, &off, &len, &out_off);
    lk_nl_memops_t m = {.n = 0};
    /* r sends to r + 1, r + 2, ... one after another, whatever order the
     * host issued them in: at each moment every GPU receives from one
     * peer (all at once, the copies to one GPU share its links). */
    if (i == 0 && step > 1)
      lk_nl_memop(&m, false, lk_nl_flag(g, r, LK_NL_FLAG_AG + (r + step - 1) % n), last);
    lk_nl_memop(&m, false, lk_nl_flag(g, r, LK_NL_FLAG_RED), seq0 + (uint32_t)i + 1u);
    s = lk_nl_memops_issue(cu, X, &m);
    if (!s && len) {
      const CUdeviceptr at = (CUdeviceptr)(out_off * es);
      CUresult rr = cu->api->cuMemcpyAsync(to + at, from + at, len * es, X);
      if (rr) s = lk_cu_fail(cu, rr, "cuMemcpyAsync", "an all-gather peer copy");
    }
  }
  if (!s) {
    lk_nl_memops_t m = {.n = 0};
    lk_nl_memop(&m, true, lk_nl_flag(g, r, LK_NL_FLAG_AG + q), last);
    s = lk_nl_memops_issue(cu, X, &m);
  }
  return s;
}

/* LIGHTOS_NCCL_P2P_PROFILE=1 (rank 0): prints the GPU times of the steps
 * of the previous operation's first segment, if it has finished, and
 * readies the events for this one (false: none to record). */
static bool lk_nl_p2p_profile(lk_nl_dev_t* d) {
  const lk_cuda_api_t* api = d->api;
  if (d->prof_have && api->cuEventQuery(d->prof[5]) == CUDA_SUCCESS) {
    float ms[5] = {0};
    for (int k = 0; k < 5; ++k) {
      if (api->cuEventElapsedTime_v2)
        api->cuEventElapsedTime_v2(&ms[k], d->prof[k], d->prof[k + 1]);
      else if (api->cuEventElapsedTime)
        api->cuEventElapsedTime(&ms[k], d->prof[k], d->prof[k + 1]);
    }
    fprintf(stderr,
            "lightos: peer copies, rank 0 (us): meet %.1f, copies %.1f, landed %.1f, "
            "reduce %.1f, all-gather %.1f\n",
            ms[0] * 1e3, ms[1] * 1e3, ms[2] * 1e3, ms[3] * 1e3, ms[4] * 1e3);
  }
  for (int k = 0; k < 6; ++k)
    if (!d->prof[k] && api->cuEventCreate(&d->prof[k], 0)) return d->prof_have = false;
  return d->prof_have = true;
}

/* Runs a reduction exchanged by peer copies, all on M (lane lock held;
 * the plan's segments fit all of the lane's exchange areas). */
static lightos_status_t lk_nl_p2p_run(const lk_nl_pipe_t* p) {
  lk_nl_dev_t* d = p->d;
  const lk_nccl_plan_t* pl = p->pl;
  lk_nl_group_t* g = d->group;
  const CUstream M = p->M;
  const uint32_t n = pl->n, me = pl->me;
  const size_t xes = lk_nl_xes(p), oes = lightos_dtype_size((lightos_dtype_t)p->dt);
  lightos_status_t s = lk_nl_wait_on(d, M, p->l->ev_tail);
  const bool prof = d->prof_on && me == 0 && !s && lk_nl_p2p_profile(d);
#define LK_NL_PROF(k, when) \
  do { if (prof && !s && (when)) (void)d->api->cuEventRecord(d->prof[k], M); } while (0)
  for (size_t i = 0; i < pl->nseg && !s; ++i) {
    const uint32_t S = p->seq0 + (uint32_t)i + 1u;
    const size_t stride = lk_nccl_plan_slot(pl, i);
    LK_NL_PROF(0, i == 0);
    s = lk_nl_flag_meet(d, M, LK_NL_FLAG_DONE, S - 1u);
    LK_NL_PROF(1, i == 0);
    for (uint32_t k = 1; k < n && !s; ++k) {
      const uint32_t q = (me + k) % n;
      size_t off, len, unused;
      lk_nccl_plan_chunk(pl, i, q, &off, &len, &unused);
      if (!len) continue;
      const CUdeviceptr dst = g->x[q] + (CUdeviceptr)((size_t)me * stride * xes);
      CUresult r = d->api->cuMemcpyAsync(dst, p->src + (CUdeviceptr)(off * xes), len * xes, M);
      if (r) s = lk_cu_fail(d->cu, r, "cuMemcpyAsync", "a peer copy");
    }
    LK_NL_PROF(2, i == 0);
    if (!s) s = lk_nl_flag_meet(d, M, LK_NL_FLAG_PUSH, S);
    LK_NL_PROF(3, i == 0);
    if (!s) {
      size_t off, len, out_off;
      lk_nccl_plan_chunk(pl, i, me, &off, &len, &out_off);
      /* Nothing else runs on the SMs now: the whole GPU (on 4 x H200 the
       * reduction of a 64 MiB chunk took 118 us in 3/4 of the SMs, 91-94
       * us in two blocks per SM). */
      s = lk_nl_tree(d, M, d->p2p_ctas, p->dt, p->op, p->src + (CUdeviceptr)(off * xes),
                     p->l->x, stride, me, n, p->out + (CUdeviceptr)(out_off * oes), len,
                     p->ntotal);
    }
    if (!s && p->ag && g->ranks) {
      LK_NL_PROF(4, i == 0);
      s = lk_nl_pipe_ag(p, i); /* processes: NCCL's all-gather */
      continue;
    }
    if (!s && p->ag) {
      lk_nl_memops_t m = {.n = 0};
      lk_nl_memop(&m, true, lk_nl_flag(g, me, LK_NL_FLAG_RED), S);
      s = lk_nl_memops_issue(d->cu, M, &m);
    }
    LK_NL_PROF(4, i == 0);
  }
  if (!s && p->ag && !g->ranks) {
    /* Publish this rank's receive buffer; the last rank to publish it
     * issues every copy of the all-gather (the others' issue ends sooner,
     * so the ranks meet sooner; the copies wait for the reductions anyway). */
    pthread_mutex_lock(&g->lock);
    const uint64_t k = g->pub[me].base + g->pub[me].count;
    s = lk_nl_pub_add(g, me, p->out);
    bool last_in = true;
    for (uint32_t q = 0; q < n; ++q) last_in = last_in && g->pub[q].base + g->pub[q].count > k;
    for (uint32_t r = 0; r < n && !s && last_in; ++r)
      for (uint32_t j = 1; j < n && !s; ++j)
        s = lk_nl_p2p_ag_pair(g, pl, p->seq0, oes, r, (r + j) % n, k);
    pthread_mutex_unlock(&g->lock);
    lightos_status_t c = lk_cu_make_current(d->cu);
    if (!s) s = c;
    const uint32_t last = p->seq0 + (uint32_t)pl->nseg;
    lk_nl_memops_t m = {.n = 0};
    for (uint32_t q = 0; q < n; ++q) {
      if (q == me) continue;
      lk_nl_memop(&m, false, lk_nl_flag(g, q, LK_NL_FLAG_AG + me), last);
      lk_nl_memop(&m, false, lk_nl_flag(g, me, LK_NL_FLAG_AG + q), last);
    }
    if (!s) s = lk_nl_memops_issue(d->cu, M, &m);
  }
  LK_NL_PROF(5, true);
#undef LK_NL_PROF
  return s;
}

/* After an abort: every flag set far ahead of any value a stream waits
 * for (2^30 past the largest flag at the first call), so that the group's
 * streams run on, their results unused.  A stream still running may write
 * a flag back to an ordinary value: the watchdog of every rank with work
 * pending calls this again every millisecond until its work drains. */
static void lk_nl_p2p_release(lk_nl_group_t* g) {
  if (!g || !g->flags) return;
  const size_t words = (size_t)g->n * LK_NL_FLAG_WORDS;
  uint32_t v = atomic_load(&g->release_value);
  if (!v) {
    uint32_t top = g->flags[0];
    for (size_t w = 1; w < words; ++w)
      if ((int32_t)(g->flags[w] - top) > 0) top = g->flags[w];
    v = top + 0x40000000u;
    if (!v) v = 1;
    uint32_t expect = 0;
    if (!atomic_compare_exchange_strong(&g->release_value, &expect, v)) v = expect;
  }
  for (size_t w = 0; w < words; ++w) g->flags[w] = v;
  atomic_thread_fence(memory_order_seq_cst);
}

/* Runs a pipelined reduction (lane lock held).  Streams: the NCCL calls on
 * M, the kernels on the lane's aux stream A.  With K = LK_NL_NX exchange
 * areas, M holds
 *
 *   a2a(0) .. a2a(K-2), then per segment i:  a2a(i+K-1) |red(i)| ag(i)
 *
 * (|x|: M waits for x) and A runs red(i) behind a2a(i).  So NCCL always has
 * the next transfers queued while a reduction runs, and segment i's
 * all-gather follows the all-to-alls issued ahead of it.  Reuse of the
 * areas: a2a(i+K-1) fills the area of segment i-1, whose reduction M
 * waited for before ag(i-1).  M starts behind everything the lane's A ran
 * before (ev_tail), and ends behind everything A runs here (M waits for
 * the last reduction). */
static lightos_status_t lk_nl_pipe_run(const lk_nl_pipe_t* p) {
  lk_nl_dev_t* d = p->d;
  lk_nl_lane_t* l = p->l;
  const CUstream M = p->M, A = l->aux;
  const size_t nseg = p->pl->nseg, ahead = LK_NL_NX - 1;
  lightos_status_t s = lk_nl_wait_on(d, M, l->ev_tail);
  if (s) return s;
  if (p->pl->gather_all) return lk_nl_pipe_gather_all(p);
  for (size_t k = 0; k < ahead && k < nseg; ++k)
    if ((s = lk_nl_pipe_a2a(p, k)) || (s = lk_nl_record(d, l->ev_a[k % LK_NL_NX], M))) return s;
  for (size_t i = 0; i < nseg; ++i) {
    const size_t nx = i + ahead;
    if (nx < nseg) {
      if ((s = lk_nl_pipe_a2a(p, nx)) || (s = lk_nl_record(d, l->ev_a[nx % LK_NL_NX], M)))
        return s;
    }
    if ((s = lk_nl_wait_on(d, A, l->ev_a[i % LK_NL_NX])) || (s = lk_nl_pipe_red(p, i, A)) ||
        (s = lk_nl_record(d, l->ev_r, A)) || (s = lk_nl_wait_on(d, M, l->ev_r)))
      return s;
    if (p->ag && (s = lk_nl_pipe_ag(p, i))) return s;
  }
  return lk_nl_record(d, l->ev_tail, A);
}

/* ---- enqueue: the operations on the caller's stream ----------------------------------- */

enum { LK_NL_HOST = 0, LK_NL_DIRECT, LK_NL_TREE, LK_NL_HALVE, LK_NL_P2P };

/* Whether the tree pipeline exchanges by peer copies: an in-process group
 * that has them, from d->p2p_min bytes of input (every rank decides alike). */
static bool lk_nl_p2p_fits(const lk_comm_t* c, const lk_coll_desc_t* op) {
  const lk_nl_dev_t* d = c->dev;
  if (!d || !d->p2p) return false;
  size_t bytes;
  const size_t per = op->kind == LK_COLL_REDUCE_SCATTER ? c->size : 1;
  return lk_mul_ok(op->count, lightos_dtype_size(op->dtype) * per, &bytes) &&
         bytes >= d->p2p_min;
}

/* Allreduces the recursive halving takes (lk_nl_halve_op): f32/f64 sum,
 * avg, prod, when the group set it up (d->halve, the same on every rank). */
static bool lk_nl_halving(const lk_comm_t* c, const lk_coll_desc_t* op) {
  const lk_nl_dev_t* d = c->dev;
  return d && d->halve && (op->dtype == LIGHTOS_DTYPE_F32 || op->dtype == LIGHTOS_DTYPE_F64) &&
         (op->op == LIGHTOS_OP_SUM || op->op == LIGHTOS_OP_AVG || op->op == LIGHTOS_OP_PROD);
}

/* Where an operation runs: a function of the operation and the
 * configuration only (every rank decides alike). */
static int lk_nl_route(const lk_comm_t* c, const lk_coll_desc_t* op) {
  const lightos_determinism_t lv = c->config.level;
  const bool check = (c->config.flags & LIGHTOS_COMM_CHECK) != 0;
  const bool flt = lk_red_dtype_is_float(op->dtype);
  const bool exact_int = !flt && op->op != LIGHTOS_OP_AVG;
  const bool strict_sum = lv == LIGHTOS_DETERMINISM_STRICT && flt &&
                          (op->op == LIGHTOS_OP_SUM || op->op == LIGHTOS_OP_AVG);
  switch (op->kind) {
    case LK_COLL_BARRIER:
    case LK_COLL_ALLTOALL:
      return LK_NL_DIRECT;
    case LK_COLL_BROADCAST:
    case LK_COLL_ALLGATHER:
      return check ? LK_NL_HOST : LK_NL_DIRECT;
    case LK_COLL_ALLREDUCE:
      if (op->multi || op->nsends != 1 || check) return LK_NL_HOST;
      if (lv == LIGHTOS_DETERMINISM_NONE || exact_int) return LK_NL_DIRECT;
      if (strict_sum) return LK_NL_HOST;
      if (lk_nl_p2p_fits(c, op)) return LK_NL_P2P;
      return lk_nl_halving(c, op) ? LK_NL_HALVE : LK_NL_TREE;
    case LK_COLL_REDUCE_SCATTER:
      if (lv == LIGHTOS_DETERMINISM_NONE || exact_int) return LK_NL_DIRECT;
      if (strict_sum) return LK_NL_HOST;
      return lk_nl_p2p_fits(c, op) ? LK_NL_P2P : LK_NL_TREE;
    case LK_COLL_REDUCE:
      /* Above NONE: the allreduce's algorithms, into scratch off the root. */
      if (op->nsends != 1) return LK_NL_HOST;
      if (lv == LIGHTOS_DETERMINISM_NONE || exact_int) return LK_NL_DIRECT;
      if (strict_sum) return LK_NL_HOST;
      if (lk_nl_p2p_fits(c, op)) return LK_NL_P2P;
      return lk_nl_halving(c, op) ? LK_NL_HALVE : LK_NL_TREE;
    default:
      return LK_NL_HOST; /* send, recv (the host path batches them) */
  }
}

static int lk_nl_ndt(lightos_dtype_t dt) {
  switch (dt) {
    case LIGHTOS_DTYPE_F32: return LK_NCCL_FLOAT32;
    case LIGHTOS_DTYPE_F64: return LK_NCCL_FLOAT64;
    case LIGHTOS_DTYPE_F16: return LK_NCCL_FLOAT16;
    case LIGHTOS_DTYPE_BF16: return LK_NCCL_BFLOAT16;
    case LIGHTOS_DTYPE_I32: return LK_NCCL_INT32;
    case LIGHTOS_DTYPE_I64: return LK_NCCL_INT64;
    default: return LK_NCCL_UINT8;
  }
}

static int lk_nl_nop(lightos_reduce_op_t op) {
  switch (op) {
    case LIGHTOS_OP_PROD: return LK_NCCL_PROD;
    case LIGHTOS_OP_MIN: return LK_NCCL_MIN;
    case LIGHTOS_OP_MAX: return LK_NCCL_MAX;
    case LIGHTOS_OP_AVG: return LK_NCCL_AVG;
    default: return LK_NCCL_SUM;
  }
}

typedef struct lk_nl_job {
  lk_nl_dev_t* d;
  lk_coll_desc_t op;  /* the operation's scalars (its buffer pointers are cleared) */
  int route;
  CUdeviceptr sp, rp; /* send data (adjusted for in-place allgather), recv */
  uint64_t t0, t[5];  /* LIGHTOS_NCCL_ISSUE_PROFILE: handed over, each step's end */
} lk_nl_job_t;

/* One NCCL collective on stream st (lane lock held). */
static lightos_status_t lk_nl_direct(lk_nl_dev_t* d, lk_nl_lane_t* l, CUstream st,
                                     const lk_nl_job_t* j) {
  const lk_nccl_api_t* api = d->nccl;
  const lk_coll_desc_t* op = &j->op;
  const lk_comm_t* c = d->c;
  const size_t es = lightos_dtype_size(op->dtype);
  const void* sp = (const void*)(uintptr_t)j->sp;
  void* rp = (void*)(uintptr_t)j->rp;
  ncclResult_t r = 0;
  const char* call = "";
  /* One rank: every op's result is the input.  NCCL's avg would run its
   * one-rank multiply-by-1/n kernel, which (NCCL 2.28.3 at least) splits
   * the elements over its blocks in whole 16-byte packs and leaves the
   * last few elements unwritten for some counts (e.g. 100003 f32: the
   * last 3); its sum is a plain copy. */
  const int nop = c->size == 1 ? LK_NCCL_SUM : lk_nl_nop(op->op);
  switch (op->kind) {
    case LK_COLL_ALLREDUCE:
      call = "ncclAllReduce";
      r = api->ncclAllReduce(sp, rp, op->count, lk_nl_ndt(op->dtype), nop, l->nc, st);
      break;
    case LK_COLL_REDUCE:
      call = "ncclReduce";
      r = api->ncclReduce(sp, c->rank == op->root ? rp : NULL, op->count, lk_nl_ndt(op->dtype),
                          nop, (int)op->root, l->nc, st);
      break;
    case LK_COLL_REDUCE_SCATTER:
      call = "ncclReduceScatter";
      r = api->ncclReduceScatter(sp, rp, op->count, lk_nl_ndt(op->dtype), nop, l->nc, st);
      break;
    case LK_COLL_BROADCAST:
      call = "ncclBroadcast";
      r = api->ncclBroadcast(c->rank == op->root ? sp : rp, rp, op->count * es, LK_NCCL_INT8,
                             (int)op->root, l->nc, st);
      break;
    case LK_COLL_ALLGATHER:
      call = "ncclAllGather";
      r = api->ncclAllGather(sp, rp, op->count * es, LK_NCCL_INT8, l->nc, st);
      break;
    case LK_COLL_BARRIER:
      call = "ncclAllReduce (barrier)";
      r = api->ncclAllReduce((const void*)(uintptr_t)l->small, (void*)(uintptr_t)l->small, 1,
                             LK_NCCL_INT32, LK_NCCL_SUM, l->nc, st);
      break;
    case LK_COLL_ALLTOALL: {
      const size_t bytes = op->count * es;
      r = api->ncclGroupStart();
      if (r) return lk_nl_nccl_fail(d, l, r, "ncclGroupStart");
      ncclResult_t first = 0;
      for (uint32_t q = 0; q < c->size && !first; ++q) {
        call = "ncclSend";
        first = api->ncclSend((const char*)sp + (size_t)q * bytes, bytes, LK_NCCL_INT8, (int)q,
                              l->nc, st);
        if (!first) {
          call = "ncclRecv";
          first = api->ncclRecv((char*)rp + (size_t)q * bytes, bytes, LK_NCCL_INT8, (int)q,
                                l->nc, st);
        }
      }
      r = api->ncclGroupEnd();
      if (first) return lk_nl_nccl_fail(d, l, first, call);
      call = "ncclGroupEnd (all-to-all)";
      break;
    }
    default:
      return LK_FAIL(LIGHTOS_INTERNAL, "NCCL path: operation kind %d has no NCCL form",
                     (int)op->kind);
  }
  return r ? lk_nl_nccl_fail(d, l, r, call) : LIGHTOS_SUCCESS;
}

/* The fixed-tree allreduce / reduce_scatter of count elements (per rank
 * chunk for reduce_scatter) from sp to rp on stream st (lane lock held). */
static lightos_status_t lk_nl_tree_run(lk_nl_dev_t* d, lk_nl_lane_t* l, CUstream st,
                                       const lk_coll_desc_t* op, CUdeviceptr sp, CUdeviceptr rp,
                                       size_t count, bool p2p) {
  const bool rs = op->kind == LK_COLL_REDUCE_SCATTER;
  lk_nccl_plan_t pl;
  /* Peer copies: one segment fills all of the exchange areas. */
  lk_nccl_plan_make(&pl, d->c->size, d->c->rank, rs, count, lightos_dtype_size(op->dtype),
                    p2p ? LK_NL_NX * d->segb : d->segb);
  lk_nl_pipe_t p = {.d = d,
                    .l = l,
                    .M = st,
                    .pl = &pl,
                    .strict = false,
                    .dt = (int)op->dtype,
                    .op = (int)op->op,
                    .src = sp,
                    .out = rp,
                    .ag = !rs,
                    .ntotal = d->c->size,
                    .seq0 = d->p2p_seq};
  if (!p2p || pl.gather_all) return lk_nl_pipe_run(&p);
  lightos_status_t s = lk_nl_p2p_run(&p);
  /* Every rank counts the same segments, issued or not (a failure here
   * aborts the group). */
  d->p2p_seq += (uint32_t)pl.nseg;
  atomic_fetch_add(&lk_nl_p2ps, 1);
  return s;
}

static lightos_status_t lk_nl_tree_op(lk_nl_dev_t* d, lk_nl_lane_t* l, CUstream st,
                                      const lk_nl_job_t* j) {
  return lk_nl_tree_run(d, l, st, &j->op, j->sp, j->rp, j->op.count, j->route == LK_NL_P2P);
}

/* ---- recursive halving (RUN/TOPOLOGY float sums on 2^K ranks) --------------------------
 *
 * Step k (k = 0 .. K-1) pairs rank r with r ^ 2^k (communicator sub[k];
 * with two ranks the enqueue lane's own).  Steps 0 .. K-2 are NCCL
 * reduce-scatters of the pair: each halves the region both hold, the rank
 * with bit k clear keeping the lower half; step K-1 is an NCCL allreduce of
 * the pair on the last region.  After step k a rank holds, on its region,
 * the sum over the aligned block of 2^(k+1) ranks it belongs to: its own
 * block's sum combined with its partner's.  A pair's combination is one
 * IEEE addition (or multiplication) of two values, which is commutative:
 * whatever order NCCL's kernels take, the bits are those of the fixed
 * pairwise tree over rank index ((r0 + r1) + (r2 + r3)) ..., the host's
 * tree for 2^K ranks.  The finishing kernel (avg's division, canonical NaN)
 * runs on the allreduced region, then all-gathers undo the halving, step
 * K-2 first.  Bytes sent per rank and direction: those of a ring allreduce
 * ((n-1)/n of the data each way); with two ranks it is one ncclAllReduce
 * and the finishing kernel.
 *
 * The first count - count % (64 x 2^K) elements go this way, the rest
 * through the tree pipeline.  By default they go as one segment; with
 * LIGHTOS_NCCL_HALVING_SEGMENT_KB they are cut into segments, and segment
 * s's finishing kernel (on the aux stream) overlaps segment s+1's
 * transfers (slower on 2 x H200: NCCL's cost per call outweighs it).
 * NCCL's typed reductions need element-aligned addresses: a rank whose
 * buffers are not (a sub-buffer at an odd offset) runs each segment in a
 * staging buffer of its own (a copy in and out, the buffer grown to the
 * segment); its NCCL calls are the same as the other ranks'. */

uint32_t lk_nccl_halve_pair(uint32_t i, uint32_t k) {
  return ((i >> (k + 1)) << k) | (i & ((1u << k) - 1u));
}

size_t lk_nccl_halve_body(uint32_t n, size_t count) {
  const size_t unit = (size_t)n * 64;
  return count - count % unit;
}

size_t lk_nccl_halve_segc(uint32_t n, size_t es, size_t segb) {
  const size_t unit = (size_t)n * 64;
  size_t segc = segb / es;
  segc -= segc % unit;
  return segc < unit ? unit : segc;
}

static atomic_ullong lk_nl_halvings; /* allreduces issued by halving (tests) */

/* Sums from this many bytes scan for work of the finishing kernel
 * (LIGHTOS_NCCL_HALVING_SCAN_KB, rank 0's; default 128 MiB). */
#define LK_NL_SCAN_MIN_KB_DEFAULT 131072

uint64_t lk_nccl_halving_ops(void) {
  return atomic_load(&lk_nl_halvings);
}

static ncclComm_t lk_nl_step_comm(const lk_nl_lane_t* l, uint32_t n, uint32_t k) {
  return n == 2 ? l->nc : l->sub[k];
}

/* One segment's buffers: in (the input), out (the result), base (the
 * segment's first element, the offset of the regions within in/out). */
typedef struct lk_nl_hseg {
  CUdeviceptr in, out;
  size_t base, len;
  CUdeviceptr user_in, user_out; /* staged: the user's segment */
  bool staged;
} lk_nl_hseg_t;

static lk_nl_hseg_t lk_nl_hseg(const lk_nl_lane_t* l, const lk_nl_job_t* j, size_t segc,
                               size_t body, size_t i, bool stage) {
  const size_t es = lightos_dtype_size(j->op.dtype);
  lk_nl_hseg_t g;
  g.len = body - i * segc < segc ? body - i * segc : segc;
  g.user_in = j->sp + (CUdeviceptr)(i * segc * es);
  g.user_out = j->rp + (CUdeviceptr)(i * segc * es);
  g.staged = stage;
  if (stage) { /* down(i + 1) is issued before up(i): two areas */
    g.in = g.out = l->stg + (CUdeviceptr)((i % 2) * segc * es);
    g.base = 0;
  } else {
    g.in = j->sp;
    g.out = j->rp;
    g.base = i * segc;
  }
  return g;
}

/* The reduce-scatters and the pair allreduce of a segment, on M. */
static lightos_status_t lk_nl_halve_down(lk_nl_dev_t* d, lk_nl_lane_t* l, CUstream M,
                                         const lk_nl_job_t* j, const lk_nl_hseg_t* g) {
  const uint32_t n = d->c->size;
  const size_t es = lightos_dtype_size(j->op.dtype);
  const int ndt = lk_nl_ndt(j->op.dtype);
  const int nop = j->op.op == LIGHTOS_OP_PROD ? LK_NCCL_PROD : LK_NCCL_SUM;
  if (g->staged) {
    CUresult r = d->api->cuMemcpyDtoDAsync_v2(g->in, g->user_in, g->len * es, M);
    if (r) return lk_cu_fail(d->cu, r, "cuMemcpyDtoDAsync", "staging a misaligned buffer");
  }
  size_t off[LK_HALVE_MAXSTEP + 1], hi[LK_HALVE_MAXSTEP + 1];
  const uint32_t steps = lk_halve_regions(n, d->c->rank, g->base, g->len, off, hi);
  CUdeviceptr in = g->in + (CUdeviceptr)(g->base * es);
  for (uint32_t k = 0; k + 1 < steps; ++k) {
    const CUdeviceptr out = g->out + (CUdeviceptr)(off[k + 1] * es);
    ncclResult_t r = d->nccl->ncclReduceScatter((const void*)(uintptr_t)in, (void*)(uintptr_t)out,
                                                g->len >> (k + 1), ndt, nop,
                                                lk_nl_step_comm(l, n, k), M);
    if (r) return lk_nl_nccl_fail(d, l, r, "ncclReduceScatter (recursive halving)");
    in = out;
  }
  const CUdeviceptr last = g->out + (CUdeviceptr)(off[steps - 1] * es);
  ncclResult_t r = d->nccl->ncclAllReduce((const void*)(uintptr_t)in, (void*)(uintptr_t)last,
                                          g->len >> (steps - 1), ndt, nop,
                                          lk_nl_step_comm(l, n, steps - 1), M);
  return r ? lk_nl_nccl_fail(d, l, r, "ncclAllReduce (recursive halving)") : LIGHTOS_SUCCESS;
}

/* The finishing kernel on the allreduced region of a segment, on st. */
static lightos_status_t lk_nl_halve_fin(lk_nl_dev_t* d, CUstream st, const lk_nl_job_t* j,
                                        const lk_nl_hseg_t* g, CUdeviceptr flag) {
  size_t off[LK_HALVE_MAXSTEP + 1], hi[LK_HALVE_MAXSTEP + 1];
  const uint32_t steps = lk_halve_regions(d->c->size, d->c->rank, g->base, g->len, off, hi);
  const size_t es = lightos_dtype_size(j->op.dtype);
  int kdt = (int)j->op.dtype, kop = (int)j->op.op;
  CUdeviceptr buf = g->out + (CUdeviceptr)(off[steps - 1] * es);
  unsigned long long klen = g->len >> (steps - 1), knt = d->c->size, dnd = d->dnan_d;
  unsigned dnf = d->dnan_f;
  void* args[] = {&kdt, &kop, &buf, &klen, &knt, &dnf, &dnd, &flag};
  /* A stream over memory: every SM, four blocks each (NCCL's own blocks,
   * launched before, are resident already). */
  const uint64_t items = klen / (kdt == LIGHTOS_DTYPE_F32 ? 16 : 8) + 1; /* 4 packs a thread */
  uint64_t grid = (items + LK_NL_BLOCK - 1) / LK_NL_BLOCK, cap = (uint64_t)d->sms * 4;
  if (grid > cap) grid = cap;
  CUresult r = d->api->cuLaunchKernel(d->k_fin, (unsigned)(grid ? grid : 1), 1, 1, LK_NL_BLOCK,
                                      1, 1, 0, st, args, NULL);
  return r ? lk_cu_fail(d->cu, r, "cuLaunchKernel", "the finishing kernel") : LIGHTOS_SUCCESS;
}

/* The all-gathers of a segment, step K-2 first (in place), on M. */
static lightos_status_t lk_nl_halve_up(lk_nl_dev_t* d, lk_nl_lane_t* l, CUstream M,
                                       const lk_nl_job_t* j, const lk_nl_hseg_t* g) {
  const uint32_t n = d->c->size;
  const size_t es = lightos_dtype_size(j->op.dtype);
  size_t off[LK_HALVE_MAXSTEP + 1], hi[LK_HALVE_MAXSTEP + 1];
  const uint32_t steps = lk_halve_regions(n, d->c->rank, g->base, g->len, off, hi);
  for (uint32_t k = steps - 1; k-- > 0;) {
    ncclResult_t r = d->nccl->ncclAllGather(
        (const void*)(uintptr_t)(g->out + (CUdeviceptr)(off[k + 1] * es)),
        (void*)(uintptr_t)(g->out + (CUdeviceptr)(off[k] * es)), (g->len >> (k + 1)) * es,
        LK_NCCL_INT8, lk_nl_step_comm(l, n, k), M);
    if (r) return lk_nl_nccl_fail(d, l, r, "ncclAllGather (recursive halving)");
  }
  if (g->staged) {
    CUresult r = d->api->cuMemcpyDtoDAsync_v2(g->user_out, g->out, g->len * es, M);
    if (r) return lk_cu_fail(d->cu, r, "cuMemcpyDtoDAsync", "staging a misaligned buffer");
  }
  return LIGHTOS_SUCCESS;
}

/* The allreduce by recursive halving on the caller's stream M (lane lock
 * held).  M: down(0), then per segment i: down(i+1) |fin(i)| up(i); the
 * aux stream A runs fin(i) behind down(i). */
static lightos_status_t lk_nl_halve_op(lk_nl_dev_t* d, lk_nl_lane_t* l, CUstream M,
                                       const lk_nl_job_t* j) {
  const lk_coll_desc_t* op = &j->op;
  const size_t es = lightos_dtype_size(op->dtype);
  const size_t body = lk_nccl_halve_body(d->c->size, op->count);
  size_t segc = lk_nccl_halve_segc(d->c->size, es, d->hsegb);
  if (segc > body) segc = body;
  const size_t nseg = body ? (body + segc - 1) / segc : 0;
  const bool stage = (j->sp | j->rp) % es != 0;
  const CUstream A = l->aux;
  lightos_status_t s = LIGHTOS_SUCCESS;
  if (stage && body)
    s = lk_nl_grow(d, l, &l->stg, &l->stg_bytes, segc * es * (nseg > 1 ? 2 : 1), 1);
  if (!s) s = lk_nl_wait_on(d, M, l->ev_tail);
  /* Sums: the finishing kernel has work only where an input is not finite
   * or so large that a partial sum may overflow (then NaN may come out of
   * finite inputs); a scan of the input on A, while NCCL moves it, and a
   * one-word allreduce tell every rank (flag: 0, nothing to do).  Worth
   * it from d->scan_min bytes: below, the finishing pass costs less than
   * the extra allreduce. */
  const bool scan = op->op == LIGHTOS_OP_SUM && body && body * es >= d->scan_min;
  /* One segment and no scan: nothing to overlap, everything on M. */
  const bool direct = nseg == 1 && !scan;
  const CUdeviceptr flag = scan ? l->small + 256 : 0;
  if (!s && scan) {
    int kdt = (int)op->dtype;
    CUdeviceptr kin = j->sp;
    unsigned long long klen = body;
    double limit = (op->dtype == LIGHTOS_DTYPE_F32 ? (double)FLT_MAX : DBL_MAX) / d->c->size;
    CUdeviceptr kflag = flag;
    void* args[] = {&kdt, &kin, &klen, &limit, &kflag};
    CUresult r;
    if ((s = lk_nl_record(d, l->ev_host, M)) || (s = lk_nl_wait_on(d, A, l->ev_host))) {
    } else if ((r = d->api->cuMemsetD8Async(flag, 0, 4, A)) != CUDA_SUCCESS) {
      s = lk_cu_fail(d->cu, r, "cuMemsetD8Async", "the halving flag");
    } else if (!(s = lk_nl_launch(d, d->k_special, body / 16 + 1, A, args, "the scan kernel"))) {
      s = lk_nl_record(d, l->ev_r, A);
    }
  }
  for (size_t i = 0; !s && i <= nseg; ++i) {
    if (i < nseg) {
      const lk_nl_hseg_t g = lk_nl_hseg(l, j, segc, body, i, stage);
      s = lk_nl_halve_down(d, l, M, j, &g);
      if (!s && i == 0 && scan) {
        ncclResult_t r = 0;
        if (!(s = lk_nl_wait_on(d, M, l->ev_r)) &&
            (r = d->nccl->ncclAllReduce((const void*)(uintptr_t)flag, (void*)(uintptr_t)flag, 1,
                                        LK_NCCL_INT32, LK_NCCL_MAX, l->nc, M)) != 0)
          s = lk_nl_nccl_fail(d, l, r, "ncclAllReduce (halving flag)");
      }
      if (!s && !direct) s = lk_nl_record(d, l->ev_a[i % LK_NL_NX], M);
    }
    if (!s && i > 0 && direct) {
      const lk_nl_hseg_t g = lk_nl_hseg(l, j, segc, body, i - 1, stage);
      if (!(s = lk_nl_halve_fin(d, M, j, &g, 0))) s = lk_nl_halve_up(d, l, M, j, &g);
    } else if (!s && i > 0) {
      const lk_nl_hseg_t g = lk_nl_hseg(l, j, segc, body, i - 1, stage);
      if ((s = lk_nl_wait_on(d, A, l->ev_a[(i - 1) % LK_NL_NX])) ||
          (s = lk_nl_halve_fin(d, A, j, &g, flag)) || (s = lk_nl_record(d, l->ev_r, A)) ||
          (s = lk_nl_wait_on(d, M, l->ev_r)))
        break;
      s = lk_nl_halve_up(d, l, M, j, &g);
    }
  }
  if (!s && !direct) s = lk_nl_record(d, l->ev_tail, A);
  if (!s && body) atomic_fetch_add(&lk_nl_halvings, 1);
  if (!s && body < op->count)
    s = lk_nl_tree_run(d, l, M, op, j->sp + (CUdeviceptr)(body * es),
                       j->rp + (CUdeviceptr)(body * es), op->count - body, false);
  return s;
}

/* Runs on the queue's stream under its submit lock (lk_cu_queue_submit_native). */
static lightos_status_t lk_nl_issue(void* stream, void* arg) {
  CUstream st = stream;
  lk_nl_job_t* j = arg;
  lk_nl_dev_t* d = j->d;
  lk_nl_lane_t* l = &d->q;
  pthread_mutex_lock(&l->lock);
  if (!l->nc) {
    pthread_mutex_unlock(&l->lock);
    pthread_mutex_lock(&d->c->lock);
    char msg[sizeof d->c->abort_msg];
    lk_strlcpy(msg, d->c->abort_msg, sizeof msg);
    pthread_mutex_unlock(&d->c->lock);
    return LK_FAIL(LIGHTOS_ABORTED, "communicator (rank %u of %u) was aborted: %s", d->c->rank,
                   d->c->size, msg[0] ? msg : "its NCCL communicator is gone");
  }
  CUevent start = NULL;
  lightos_status_t s = LIGHTOS_SUCCESS;
  if (j->op.kind == LK_COLL_REDUCE && j->route != LK_NL_DIRECT && d->c->rank != j->op.root) {
    /* Off the root a reduce computes the allreduce into lane scratch (kept
     * until the lane goes, so later work may reuse it in stream order). */
    s = lk_cu_make_current(d->cu);
    if (!s)
      s = lk_nl_grow(d, l, &l->red, &l->red_bytes,
                     j->op.count * lightos_dtype_size(j->op.dtype), 1);
    j->rp = l->red;
  }
  if (d->iprof_on) j->t[0] = lk_now_ns();
  if (!s) s = lk_nl_watch_begin(d, st, &start);
  if (d->iprof_on) j->t[1] = lk_now_ns();
  if (!s) {
    switch (j->route) {
      case LK_NL_TREE:
      case LK_NL_P2P: s = lk_nl_tree_op(d, l, st, j); break;
      case LK_NL_HALVE: s = lk_nl_halve_op(d, l, st, j); break;
      default: s = lk_nl_direct(d, l, st, j);
    }
  }
  if (d->iprof_on) j->t[2] = lk_now_ns();
  if (start) lk_nl_watch_end(d, st, start);
  if (d->iprof_on) j->t[3] = lk_now_ns();
  pthread_mutex_unlock(&l->lock);
  return s;
}

static void lk_nl_iprof_print(const lk_nl_dev_t* d) {
  if (!d->iprof_ops) return;
  const double k = 1e-3 / (double)d->iprof_ops;
  fprintf(stderr,
          "lightos: issue profile, rank %u, %llu operations (us each): to the stream %.2f, "
          "start event %.2f, collective %.2f, end event %.2f, queue %.2f\n",
          d->c->rank, (unsigned long long)d->iprof_ops, (double)d->iprof_ns[0] * k,
          (double)d->iprof_ns[1] * k, (double)d->iprof_ns[2] * k, (double)d->iprof_ns[3] * k,
          (double)d->iprof_ns[4] * k);
}

/* After an operation was issued (or failed to be), with no queue lock held:
 * the issue profile, a broken sequence, the count of operations not yet
 * issued. */
static void lk_nl_issued(void* arg, lightos_status_t s) {
  lk_nl_job_t* j = arg;
  lk_nl_dev_t* d = j->d;
  lk_comm_t* c = d->c;
  if (d->iprof_on && j->t[3]) { /* one thread issues for a rank at a time */
    const uint64_t t4 = lk_now_ns();
    d->iprof_ns[0] += j->t[0] - j->t0;
    for (int k = 1; k < 4; ++k) d->iprof_ns[k] += j->t[k] - j->t[k - 1];
    d->iprof_ns[4] += t4 - j->t[3];
    d->iprof_ops++;
  }
  if (s && !atomic_load(&d->dead)) {
    /* The other ranks issued theirs: this rank's sequence is broken. */
    char why[sizeof c->abort_msg];
    snprintf(why, sizeof why, "a collective failed on rank %u after the others issued it: %s",
             c->rank, lightos_last_error()->message);
    lk_nl_fatal(d, why, true);
  }
  pthread_mutex_lock(&d->ilock);
  if (--d->nissue == 0) {
    d->issue_q = NULL;
    pthread_cond_broadcast(&d->icv);
  }
  pthread_mutex_unlock(&d->ilock);
  free(j);
}

static lightos_status_t lk_nl_enqueue(lk_comm_t* c, const lk_coll_desc_t* op, lk_queue_t* q) {
  lk_nl_dev_t* d = c->dev;
  const int route = lk_nl_route(c, op);
  if (route == LK_NL_HOST) return LIGHTOS_UNSUPPORTED;
  if (atomic_load(&c->aborted)) {
    pthread_mutex_lock(&c->lock);
    char msg[sizeof c->abort_msg];
    lk_strlcpy(msg, c->abort_msg, sizeof msg);
    pthread_mutex_unlock(&c->lock);
    return LK_FAIL(LIGHTOS_ABORTED, "communicator (rank %u of %u) was aborted: %s", c->rank,
                   c->size, msg);
  }
  lk_buffer_t* send = op->nsends ? op->sends[0] : NULL;
  /* The buffers stay referenced until the stream has passed the work. */
  lk_cmd_t* keep = lk_cmd_new(LK_CMD_NATIVE);
  lk_buffer_t** bufs = malloc(2 * sizeof *bufs);
  lk_nl_job_t* j = malloc(sizeof *j);
  if (!keep || !bufs || !j) {
    free(keep);
    free(bufs);
    free(j);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a collective");
  }
  *j = (lk_nl_job_t){.d = d, .op = *op, .route = route, .sp = lk_nl_ptr(send),
                     .rp = lk_nl_ptr(op->recv)};
  j->op.sends = NULL;
  j->op.nsends = 0;
  j->op.recv = NULL;
  if (op->kind == LK_COLL_ALLGATHER && lk_nl_same_memory(send, op->recv))
    j->sp = j->rp + (CUdeviceptr)((size_t)c->rank * op->count * lightos_dtype_size(op->dtype));
  uint32_t nb = 0;
  if (send) bufs[nb++] = send;
  if (op->recv && op->recv != send) bufs[nb++] = op->recv;
  for (uint32_t i = 0; i < nb; ++i) lk_object_ref(&bufs[i]->obj);
  keep->launch_bufs = bufs;
  keep->num_launch_bufs = nb;
  keep->u.native.fn = lk_nl_issue;
  keep->u.native.done = lk_nl_issued;
  keep->u.native.arg = j;
  /* In this rank's order: behind operations another queue has not issued
   * yet, this one waits for them. */
  pthread_mutex_lock(&d->ilock);
  while (d->nissue && d->issue_q != q) pthread_cond_wait(&d->icv, &d->ilock);
  d->nissue++;
  d->issue_q = q;
  pthread_mutex_unlock(&d->ilock);
  j->t0 = d->iprof_on ? lk_now_ns() : 0;
  return lk_cu_queue_submit_native(q->hal, keep);
}

/* ---- run: STRICT allreduce on the proxy thread --------------------------------------- */

/* STRICT float sums on the GPUs: allreduce, and reduce and reduce_scatter
 * as the host defines them (comm_algo.c): the STRICT allreduce of the
 * whole send buffer, the root (reduce) or this rank's part (reduce_scatter)
 * kept. */
static bool lk_nl_strict_route(const lk_comm_t* c, const lk_coll_desc_t* op) {
  return (op->kind == LK_COLL_ALLREDUCE || op->kind == LK_COLL_REDUCE ||
          op->kind == LK_COLL_REDUCE_SCATTER) &&
         !op->multi && op->nsends == 1 &&
         c->config.level == LIGHTOS_DETERMINISM_STRICT &&
         !(c->config.flags & LIGHTOS_COMM_CHECK) &&
         (op->dtype == LIGHTOS_DTYPE_F32 || op->dtype == LIGHTOS_DTYPE_F16 ||
          op->dtype == LIGHTOS_DTYPE_BF16) &&
         (op->op == LIGHTOS_OP_SUM || op->op == LIGHTOS_OP_AVG) &&
         c->size <= LK_STRICT_MAX_CONTRIB;
}

static lightos_status_t lk_nl_aborted_error(const lk_nl_dev_t* d) {
  char msg[sizeof d->c->abort_msg];
  pthread_mutex_lock(&d->c->lock);
  lk_strlcpy(msg, d->c->abort_msg, sizeof msg);
  pthread_mutex_unlock(&d->c->lock);
  return LK_FAIL(LIGHTOS_ABORTED, "communicator (rank %u of %u) was aborted: %s", d->c->rank,
                 d->c->size, msg[0] ? msg : "its NCCL communicator is gone");
}

/* Waits for an event until deadline (the context current). */
static lightos_status_t lk_nl_wait_event(lk_nl_dev_t* d, CUevent e, uint64_t deadline,
                                         const char* what) {
  for (unsigned i = 0;; ++i) {
    CUresult r = d->api->cuEventQuery(e);
    if (r == CUDA_SUCCESS) return LIGHTOS_SUCCESS;
    if (r != CUDA_ERROR_NOT_READY) return lk_cu_fail(d->cu, r, "cuEventQuery", what);
    if (atomic_load(&d->dead)) return lk_nl_aborted_error(d);
    if (lk_now_ns() >= deadline)
      return LK_FAIL(LIGHTOS_TIMEOUT,
                     "rank %u of %u: %s did not complete within %g s (did every rank issue "
                     "it?); the NCCL communicators were aborted",
                     d->c->rank, d->c->size, what, d->c->config.timeout_s);
    if (i < 64) {
      sched_yield();
    } else {
      struct timespec ts = {0, i < 2000 ? 20000 : 200000};
      nanosleep(&ts, NULL);
    }
  }
}

/* Waits for a stream until deadline (the context current). */
static lightos_status_t lk_nl_wait_stream(lk_nl_dev_t* d, CUstream st, uint64_t deadline,
                                          const char* what) {
  for (unsigned i = 0;; ++i) {
    CUresult r = d->api->cuStreamQuery(st);
    if (r == CUDA_SUCCESS) return LIGHTOS_SUCCESS;
    if (r != CUDA_ERROR_NOT_READY) return lk_cu_fail(d->cu, r, "cuStreamQuery", what);
    if (lk_now_ns() >= deadline)
      return LK_FAIL(LIGHTOS_TIMEOUT, "rank %u of %u: %s did not complete within %g s",
                     d->c->rank, d->c->size, what, d->c->config.timeout_s);
    struct timespec ts = {0, i < 100 ? 20000 : 200000};
    nanosleep(&ts, NULL);
  }
}

/* Streams and events of a lane (the context current). */
static lightos_status_t lk_nl_lane_init(lk_nl_dev_t* d, lk_nl_lane_t* l, bool own_main) {
  const lk_cuda_api_t* api = d->api;
  CUresult r = CUDA_SUCCESS;
  if (!l->aux) r = api->cuStreamCreate(&l->aux, CU_STREAM_NON_BLOCKING);
  if (!r && own_main && !l->main) r = api->cuStreamCreate(&l->main, CU_STREAM_NON_BLOCKING);
  if (r) return lk_cu_fail(d->cu, r, "cuStreamCreate", "NCCL path");
  CUevent* evs[LK_NL_NX + 3] = {&l->ev_r, &l->ev_tail, &l->ev_host};
  for (size_t i = 0; i < LK_NL_NX; ++i) evs[3 + i] = &l->ev_a[i];
  for (size_t i = 0; i < sizeof evs / sizeof evs[0]; ++i)
    if (!*evs[i] && (r = api->cuEventCreate(evs[i], CU_EVENT_DISABLE_TIMING)) != CUDA_SUCCESS)
      return lk_cu_fail(d->cu, r, "cuEventCreate", "NCCL path");
  return LIGHTOS_SUCCESS;
}

/* Makes the STRICT lane's communicator, collectively over the host
 * transport; every rank ends with the same p_state. */
static lightos_status_t lk_nl_lane_p_setup(lk_nl_dev_t* d, const lk_algo_t* a) {
  lk_comm_t* c = d->c;
  const uint32_t n = c->size;
  uint8_t* oks = calloc(n, 1);
  if (!oks) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  lightos_status_t s = lk_cu_make_current(d->cu);
  if (!s) s = lk_nl_lane_init(d, &d->p, true);
  if (s) {
    LK_LOG_INFO("comm: rank %u cannot make the STRICT NCCL lane: %s", c->rank,
                lightos_last_error()->message);
    lightos_clear_error();
  }
  oks[c->rank] = s == LIGHTOS_SUCCESS;
  lightos_status_t t = lk_algo_allgather(a, &oks[c->rank], oks, 1);
  bool all = !t;
  for (uint32_t r = 0; all && r < n; ++r) all = oks[r] != 0;
  struct {
    uint32_t ok;
    lk_nccl_uid_t id;
  } msg;
  memset(&msg, 0, sizeof msg);
  if (all && c->rank == 0) msg.ok = d->nccl->ncclGetUniqueId(&msg.id) == 0;
  if (all) t = lk_algo_broadcast(a, &msg, sizeof msg, 0);
  ncclComm_t nc = NULL;
  if (!t && all && msg.ok) {
    (void)lk_cu_make_current(d->cu);
    ncclResult_t r = d->nccl->ncclCommInitRank(&nc, (int)n, msg.id, (int)c->rank);
    if (r) {
      LK_LOG_INFO("comm: rank %u: ncclCommInitRank (STRICT lane): %s", c->rank,
                  d->nccl->ncclGetErrorString(r));
      nc = NULL;
    }
    memset(oks, 0, n);
    oks[c->rank] = nc != NULL;
    t = lk_algo_allgather(a, &oks[c->rank], oks, 1);
    for (uint32_t r2 = 0; !t && all && r2 < n; ++r2) all = oks[r2] != 0;
  }
  free(oks);
  if (!t && all && msg.ok && nc) {
    pthread_mutex_lock(&d->p.lock);
    if (!atomic_load(&d->dead)) {
      d->p.nc = nc;
      nc = NULL;
      d->p_state = 1;
    }
    pthread_mutex_unlock(&d->p.lock);
  }
  if (nc) (void)d->nccl->ncclCommAbort(nc);
  if (t) return t; /* the transport failed: so does the operation */
  if (d->p_state != 1) {
    d->p_state = -1;
    if (!atomic_load(&d->dead))
      LK_LOG_INFO("comm: STRICT allreduce stays on the host path (no NCCL lane on every rank)");
  }
  return LIGHTOS_SUCCESS;
}

/* STRICT allreduce (lk_allreduce_strict) on the GPUs, on the STRICT lane's
 * streams (the queue's earlier work is complete, its later work waits):
 *   1. per 256-element block, the largest exponent of this rank's finite
 *      values; ncclAllReduce(max) over the ranks: the shared exponents;
 *   2. the pipeline (comm_nccl.h) over the raw elements: all-to-all, then
 *      per element of this rank's chunk every rank's value converted to
 *      48-bit fixed point with the shared exponent, summed exactly, the
 *      NaN/Inf classes OR-ed (the host's merged non-finite mask) and the
 *      result rounded once; all-gather of the results.
 * The conversion is a function of the element and the shared exponent
 * only, so converting where the sum is made gives the host's fixed-point
 * values, and the exchange moves the elements' own bytes (2 or 4), not 8.
 * Nothing waits for the host in between. */
static lightos_status_t lk_nl_strict(lk_nl_dev_t* d, const lk_coll_desc_t* op,
                                     uint64_t deadline) {
  lk_comm_t* c = d->c;
  lk_nl_lane_t* l = &d->p;
  const bool rs = op->kind == LK_COLL_REDUCE_SCATTER;
  const size_t es = lightos_dtype_size(op->dtype);
  const size_t count = rs ? op->count * c->size : op->count; /* the allreduce's */
  const size_t nblocks = (count + LK_STRICT_BLOCK - 1) / LK_STRICT_BLOCK;
  const CUdeviceptr src = lk_nl_ptr(op->sends[0]);
  /* reduce off the root and reduce_scatter: the result in lane scratch */
  const bool scratch = rs || (op->kind == LK_COLL_REDUCE && c->rank != op->root);
  CUdeviceptr out = scratch ? 0 : lk_nl_ptr(op->recv);
  const CUstream M = l->main;
  /* STRICT's sum kernel is heavier than the tree: half the segment of the
   * RUN/TOPOLOGY pipeline overlaps it better (2 x H200, 256 MiB f32:
   * 64 MiB segments 0.52 of NCCL's busbw, 128 MiB 0.45). */
  const size_t sseg = d->segb >= ((size_t)256 << 10) ? d->segb / 2 : d->segb;
  lk_nccl_plan_t pl;
  lk_nccl_plan_make(&pl, c->size, c->rank, false, count, es, sseg);

  pthread_mutex_lock(&l->lock);
  lightos_status_t s = l->nc ? lk_cu_make_current(d->cu) : lk_nl_aborted_error(d);
  if (!s && scratch) {
    s = lk_nl_grow(d, l, &l->red, &l->red_bytes, count * es, 1);
    out = l->red;
  }
  if (!s) s = lk_nl_grow(d, l, &l->e, &l->e_bytes, nblocks * 4, 1);
  if (!s && c->size > 1) s = lk_nl_grow(d, l, &l->x, &l->x_one, sseg, LK_NL_NX);
  if (!s) {
    /* One thread per element of a 256-element block (blockDim 256). */
    int kdt = (int)op->dtype;
    unsigned long long kc = count;
    CUdeviceptr ksrc = src, ke = l->e;
    void* args[] = {&kdt, &ksrc, &kc, &ke};
    uint64_t g = nblocks ? nblocks : 1, cap = (uint64_t)d->sms * 8;
    CUresult r = d->api->cuLaunchKernel(d->k_scan, (unsigned)(g < cap ? g : cap), 1, 1, 256, 1,
                                        1, 0, M, args, NULL);
    if (r) s = lk_cu_fail(d->cu, r, "cuLaunchKernel", "the STRICT scan kernel");
  }
  if (!s && c->size > 1) {
    ncclResult_t r = d->nccl->ncclAllReduce((const void*)(uintptr_t)l->e, (void*)(uintptr_t)l->e,
                                            nblocks, LK_NCCL_INT32, LK_NCCL_MAX, l->nc, M);
    if (r) s = lk_nl_nccl_fail(d, l, r, "ncclAllReduce (STRICT exponents)");
  }
  if (!s) {
    lk_nl_pipe_t sp = {.d = d, .l = l, .M = M, .pl = &pl, .strict = true, .dt = (int)op->dtype,
                       .op = (int)op->op, .src = src, .out = out, .ag = true,
                       .ntotal = c->size, .exps = l->e};
    s = lk_nl_pipe_run(&sp);
  }
  if (!s && rs) {
    CUresult r = d->api->cuMemcpyDtoDAsync_v2(
        lk_nl_ptr(op->recv), out + (CUdeviceptr)((size_t)c->rank * op->count * es),
        op->count * es, M);
    if (r) s = lk_cu_fail(d->cu, r, "cuMemcpyDtoDAsync", "the STRICT reduce_scatter's part");
  }
  if (!s) s = lk_nl_record(d, l->ev_host, M);
  pthread_mutex_unlock(&l->lock);
  if (!s) s = lk_nl_wait_event(d, l->ev_host, deadline, "the STRICT allreduce");
  if (s && !atomic_load(&d->dead)) {
    /* The ranks' sequences no longer match: abort them all. */
    char why[sizeof c->abort_msg];
    snprintf(why, sizeof why, "STRICT allreduce failed on rank %u: %s", c->rank,
             lightos_last_error()->message);
    lk_nl_fatal(d, why, true);
  }
  return s;
}

static lightos_status_t lk_nl_run(lk_comm_t* c, const lk_coll_desc_t* op) {
  lk_nl_dev_t* d = c->dev;
  if (!lk_nl_strict_route(c, op) || d->p_state < 0) return LIGHTOS_UNSUPPORTED;
  if (atomic_load(&d->dead)) return lk_nl_aborted_error(d);
  lk_algo_t a = {.x = c->xport,
                 .rank = c->rank,
                 .size = c->size,
                 .level = c->config.level,
                 .deadline_ns = lk_nl_deadline(c)};
  if (d->p_state == 0) {
    lightos_status_t s = lk_nl_lane_p_setup(d, &a);
    if (s) return s;
    if (d->p_state < 0) return LIGHTOS_UNSUPPORTED;
  }
  return lk_nl_strict(d, op, a.deadline_ns);
}

/* ---- making and freeing the per-rank state ---------------------------------------------- */

typedef struct lk_nl_image {
  char arch[32];
  void* image;
  size_t size;
  struct lk_nl_image* next;
} lk_nl_image_t;

static pthread_mutex_t lk_nl_img_lock = PTHREAD_MUTEX_INITIALIZER;
static lk_nl_image_t* lk_nl_images; /* built images, per architecture, for the process */

/* Loads the kernels into the rank's context (current). */
static lightos_status_t lk_nl_module_load(lk_nl_dev_t* d) {
  const lk_cu_device_t* dev = d->cu->device;
  char arch[32];
  lightos_status_t s = lk_cuda_arch_for(dev->cc_major, dev->cc_minor, arch, sizeof arch);
  if (s) return s;
  pthread_mutex_lock(&lk_nl_img_lock);
  lk_nl_image_t* im = lk_nl_images;
  while (im && strcmp(im->arch, arch)) im = im->next;
  for (int attempt = 0; attempt < 2 && !s; ++attempt) {
    if (!im) {
      im = calloc(1, sizeof *im);
      if (!im) {
        s = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
        break;
      }
      s = lk_nccl_compile_kernels(arch, dev->driver_version, attempt == 0, &im->image, &im->size);
      if (s) {
        free(im);
        im = NULL;
        break;
      }
      lk_strlcpy(im->arch, arch, sizeof im->arch);
      im->next = lk_nl_images;
      lk_nl_images = im;
    }
    CUresult r = d->api->cuModuleLoadData(&d->mod, im->image);
    if (r == CUDA_SUCCESS) break;
    d->mod = NULL;
    if (attempt == 1 || lk_cu_check_lost(d->cu)) {
      s = lk_cu_fail(d->cu, r, "cuModuleLoadData", "the NCCL path's kernels");
      break;
    }
    /* A bad cached image: build it again, bypassing the disk cache. */
    lk_nl_image_t** pp = &lk_nl_images;
    while (*pp != im) pp = &(*pp)->next;
    *pp = im->next;
    free(im->image);
    free(im);
    im = NULL;
  }
  pthread_mutex_unlock(&lk_nl_img_lock);
  if (s) return s;
  struct {
    CUfunction* fn;
    const char* name;
  } fns[] = {{&d->k_tree, "lk_cuk_tree_k"},
             {&d->k_tree2v, "lk_cuk_tree2v_k"},
             {&d->k_treev4, "lk_cuk_treev4_k"},
             {&d->k_treev8, "lk_cuk_treev8_k"},
             {&d->k_fin, "lk_cuk_fin_k"},
             {&d->k_special, "lk_cuk_special_k"},
             {&d->k_scan, "lk_cuk_scan_k"},
             {&d->k_strict, "lk_cuk_strict_k"}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; ++i) {
    CUresult r = d->api->cuModuleGetFunction(fns[i].fn, d->mod, fns[i].name);
    if (r) return lk_cu_fail(d->cu, r, "cuModuleGetFunction", fns[i].name);
  }
  return LIGHTOS_SUCCESS;
}

/* Frees a lane.  free_memory false: work may still use its memory (the
 * watchdog could not see it finish): the device memory is left alone. */
static void lk_nl_lane_free(lk_nl_dev_t* d, lk_nl_lane_t* l, bool free_memory) {
  const lk_cuda_api_t* api = d->api;
  lk_nl_subs_free(d, l, free_memory);
  if (l->nc) {
    ncclResult_t r =
        free_memory ? d->nccl->ncclCommDestroy(l->nc) : d->nccl->ncclCommAbort(l->nc);
    if (r) LK_LOG_DEBUG("comm: freeing the NCCL communicator (%s lane): %d", l->name, r);
    l->nc = NULL;
  }
  if (free_memory) {
    if (l->main) (void)api->cuStreamSynchronize(l->main);
    if (l->aux) (void)api->cuStreamSynchronize(l->aux);
    CUdeviceptr bufs[] = {l->x, l->e, l->small, l->stg, l->red};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; ++i)
      if (bufs[i]) api->cuMemFree_v2(bufs[i]);
    for (size_t i = 0; i < l->nretired; ++i) api->cuMemFree_v2(l->retired[i]);
    CUevent evs[LK_NL_NX + 3] = {l->ev_r, l->ev_tail, l->ev_host};
    for (size_t i = 0; i < LK_NL_NX; ++i) evs[3 + i] = l->ev_a[i];
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; ++i)
      if (evs[i]) api->cuEventDestroy_v2(evs[i]);
    if (l->main) api->cuStreamDestroy_v2(l->main);
    if (l->aux) api->cuStreamDestroy_v2(l->aux);
  }
  free(l->retired);
  pthread_mutex_destroy(&l->lock);
}

/* Frees the per-rank state (keeps the thread's error record). */
static void lk_nl_dev_free(lk_nl_dev_t* d, bool free_memory) {
  if (!d) return;
  lk_nl_err_t saved;
  lk_nl_err_save(&saved);
  (void)lk_cu_make_current(d->cu);
  lk_nl_lane_free(d, &d->q, free_memory);
  lk_nl_lane_free(d, &d->p, free_memory);
  if (free_memory) {
    for (size_t i = 0; i < d->nevfree; ++i) d->api->cuEventDestroy_v2(d->evfree[i]);
    for (size_t i = 0; i < d->npend; ++i) {
      d->api->cuEventDestroy_v2(d->pend[i].start);
      d->api->cuEventDestroy_v2(d->pend[i].end);
    }
    if (d->mod) d->api->cuModuleUnload(d->mod);
    for (int k = 0; k < 6; ++k)
      if (d->prof[k]) d->api->cuEventDestroy_v2(d->prof[k]);
  }
  free(d->evfree);
  free(d->pend);
  pthread_mutex_destroy(&d->wlock);
  pthread_cond_destroy(&d->wcv);
  pthread_cond_destroy(&d->wdrained);
  pthread_mutex_destroy(&d->ilock);
  pthread_cond_destroy(&d->icv);
  free(d);
  (void)lk_nl_err_raise(&saved);
}

/* The CUDA context of a communicator, or NULL when it is not a CUDA one. */
static lk_cu_context_t* lk_nl_cuda_ctx(const lk_comm_t* c) {
  const lk_context_t* ctx = c ? c->context : NULL;
  if (!ctx || !ctx->device || !ctx->device->hal || !ctx->hal ||
      ctx->device->hal->info.backend != LIGHTOS_BACKEND_CUDA || !lk_cuda_is_context(ctx->hal))
    return NULL;
  return (lk_cu_context_t*)ctx->hal;
}

/* Exchange bytes per pipeline segment: LIGHTOS_NCCL_SEGMENT_KB (default
 * 128 MiB; 64 KiB to 4 GiB), at least 64 elements of 8 bytes per rank. */
#define LK_NL_SEGMENT_KB_DEFAULT 131072
static size_t lk_nl_segment_bytes(uint32_t n) {
  long kb = lk_env_long("LIGHTOS_NCCL_SEGMENT_KB", LK_NL_SEGMENT_KB_DEFAULT);
  if (kb < 64) kb = 64;
  if (kb > (4L << 20)) kb = 4L << 20;
  size_t b = (size_t)kb << 10, min = (size_t)n * 64 * 8;
  return b < min ? min : b;
}

/* Bytes of a recursive-halving segment: LIGHTOS_NCCL_HALVING_SEGMENT_KB
 * (64 KiB to 4 GiB); default 0: one segment, whatever the size.  Measured
 * on 2 x H200, 256 MiB f32, share of NCCL's busbw: 64 MiB segments 0.78,
 * 128 MiB 0.86, one segment 0.93 (each NCCL call has a cost of its own
 * that the overlap of the finishing kernel does not repay). */
static size_t lk_nl_halving_segment_bytes(void) {
  long kb = lk_env_long("LIGHTOS_NCCL_HALVING_SEGMENT_KB", 0);
  if (kb <= 0) return SIZE_MAX;
  if (kb < 64) kb = 64;
  if (kb > (4L << 20)) kb = 4L << 20;
  return (size_t)kb << 10;
}

/* Whether this rank would take recursive halving (RUN and TOPOLOGY, a
 * power of two of at least 2 ranks, LIGHTOS_NCCL_HALVING not 0). */
static bool lk_nl_halving_wanted(const lk_comm_t* c) {
  const uint32_t n = c->size;
  return (c->config.level == LIGHTOS_DETERMINISM_RUN ||
          c->config.level == LIGHTOS_DETERMINISM_TOPOLOGY) &&
         n >= 2 && (n & (n - 1)) == 0 && n <= (1u << LK_NL_MAXSTEP) &&
         lk_env_flag("LIGHTOS_NCCL_HALVING", true);
}

/* The per-rank state, up to (not including) the NCCL communicators. */
static lightos_status_t lk_nl_dev_new(lk_comm_t* c, const lk_nccl_api_t* api, size_t segb,
                                      lk_nl_dev_t** out) {
  *out = NULL;
  lk_nl_dev_t* d = calloc(1, sizeof *d);
  if (!d) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for the NCCL path");
  pthread_mutex_init(&d->q.lock, NULL);
  pthread_mutex_init(&d->p.lock, NULL);
  pthread_mutex_init(&d->wlock, NULL);
  pthread_cond_init(&d->wcv, NULL);
  pthread_cond_init(&d->wdrained, NULL);
  pthread_mutex_init(&d->ilock, NULL);
  pthread_cond_init(&d->icv, NULL);
  d->q.name = "enqueue";
  d->p.name = "STRICT";
  d->c = c;
  d->cu = lk_nl_cuda_ctx(c);
  d->api = d->cu->api;
  d->nccl = api;
  d->segb = segb;
  d->halve = lk_nl_halving_wanted(c);
  d->hsegb = lk_nl_halving_segment_bytes();
  d->prof_on = lk_env_flag("LIGHTOS_NCCL_P2P_PROFILE", false);
  d->iprof_on = lk_env_flag("LIGHTOS_NCCL_ISSUE_PROFILE", false);
  long scan_kb = lk_env_long("LIGHTOS_NCCL_HALVING_SCAN_KB", LK_NL_SCAN_MIN_KB_DEFAULT);
  d->scan_min = scan_kb < 0 ? 0 : (size_t)scan_kb << 10;
  d->dnan_f = lk_nccl_host_nan_f32();
  d->dnan_d = lk_nccl_host_nan_f64();
  lightos_status_t s = LIGHTOS_SUCCESS;
  void* sym = d->api->lib ? dlsym(d->api->lib, "cuStreamWaitEvent") : NULL;
  if (!sym) s = LK_FAIL(LIGHTOS_UNAVAILABLE, "the CUDA driver has no cuStreamWaitEvent");
  else memcpy(&d->wait_event, &sym, sizeof sym);
  if (!s) s = lk_cu_make_current(d->cu);
  if (!s) {
    int v = 0;
    d->sms = d->api->cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                                          d->cu->device->dev) == CUDA_SUCCESS && v > 0
                 ? v
                 : 32;
    long ctas = lk_env_long("LIGHTOS_NCCL_KERNEL_CTAS", 0);
    if (ctas <= 0) ctas = d->sms - d->sms / 4;
    if (ctas > 65535) ctas = 65535;
    d->ctas = ctas > 0 ? (unsigned)ctas : 1u;
    d->p2p_ctas = 2u * (unsigned)d->sms;
    s = lk_nl_module_load(d);
  }
  if (!s) s = lk_nl_lane_init(d, &d->q, false);
  if (!s) {
    CUresult r = d->api->cuMemAlloc_v2(&d->q.small, 4096);
    if (!r) r = d->api->cuMemsetD8Async(d->q.small, 0, 4096, d->q.aux);
    if (r) s = lk_cu_fail(d->cu, r, "cuMemAlloc", "NCCL path");
  }
  if (!s && c->size > 1) {
    CUresult r = d->api->cuMemAlloc_v2(&d->q.x, LK_NL_NX * segb);
    if (r) s = lk_cu_fail(d->cu, r, "cuMemAlloc", "NCCL path exchange slots");
    else d->q.x_one = segb;
  }
  if (s) {
    lk_nl_err_t e;
    lk_nl_err_save(&e);
    lk_nl_dev_free(d, true);
    return lk_nl_err_raise(&e);
  }
  *out = d;
  return LIGHTOS_SUCCESS;
}

static void lk_nl_start_watchdog(lk_nl_dev_t* d) {
  d->wd_started = pthread_create(&d->wd, NULL, lk_nl_watchdog, d) == 0;
  if (!d->wd_started)
    LK_LOG_WARN("comm: rank %u: no watchdog thread; NCCL operations are not timed",
                d->c->rank);
}

/* Connects every pair of ranks (grouped send/recv: NCCL connects p2p
 * peers at their first use) and runs one tiny allreduce, then waits.
 * devs: the ranks this thread drives (all of them for attach_all, this
 * one for attach_rank). */
static lightos_status_t lk_nl_warmup(lk_nl_dev_t* const* devs, uint32_t nd, bool p2p,
                                     uint64_t deadline) {
  const lk_nccl_api_t* api = devs[0]->nccl;
  for (int round = p2p ? 0 : 1; round < 2; ++round) {
    ncclResult_t r = api->ncclGroupStart(), first = 0;
    if (r) return lk_nl_nccl_fail(devs[0], &devs[0]->q, r, "ncclGroupStart");
    for (uint32_t i = 0; i < nd && !first; ++i) {
      lk_nl_dev_t* d = devs[i];
      (void)lk_cu_make_current(d->cu);
      const uint32_t me = d->c->rank, n = d->c->size;
      if (round == 0) {
        for (uint32_t q = 0; q < n && !first; ++q) {
          if (q == me) continue;
          first = api->ncclSend((const void*)(uintptr_t)d->q.small, 1, LK_NCCL_INT8, (int)q,
                                d->q.nc, d->q.aux);
          if (!first)
            first = api->ncclRecv((void*)(uintptr_t)(d->q.small + 1024 + q % 2048), 1,
                                  LK_NCCL_INT8, (int)q, d->q.nc, d->q.aux);
        }
      } else {
        first = api->ncclAllReduce((const void*)(uintptr_t)d->q.small,
                                   (void*)(uintptr_t)d->q.small, 1, LK_NCCL_INT32, LK_NCCL_SUM,
                                   d->q.nc, d->q.aux);
      }
    }
    r = api->ncclGroupEnd();
    if (first || r)
      return lk_nl_nccl_fail(devs[0], &devs[0]->q, first ? first : r,
                             round == 0 ? "warm-up send/recv" : "warm-up allreduce");
  }
  for (uint32_t i = 0; i < nd; ++i) {
    (void)lk_cu_make_current(devs[i]->cu);
    lightos_status_t s = lk_nl_wait_stream(devs[i], devs[i]->q.aux, deadline, "the NCCL warm-up");
    if (s) return s;
  }
  return LIGHTOS_SUCCESS;
}

/* A tiny allreduce on each halving communicator of the ranks this thread
 * drives (one group), then waits: a broken one fails here, not later. */
static lightos_status_t lk_nl_subs_warmup(lk_nl_dev_t* const* devs, uint32_t nd,
                                          uint64_t deadline) {
  const lk_nccl_api_t* api = devs[0]->nccl;
  ncclResult_t r = api->ncclGroupStart(), first = 0;
  if (r) return lk_nl_nccl_fail(devs[0], &devs[0]->q, r, "ncclGroupStart");
  for (uint32_t i = 0; i < nd && !first; ++i) {
    lk_nl_dev_t* d = devs[i];
    (void)lk_cu_make_current(d->cu);
    for (uint32_t k = 0; k < d->q.nsub && !first; ++k)
      first = api->ncclAllReduce((const void*)(uintptr_t)(d->q.small + 64),
                                 (void*)(uintptr_t)(d->q.small + 64), 1, LK_NCCL_INT32,
                                 LK_NCCL_SUM, d->q.sub[k], d->q.aux);
  }
  r = api->ncclGroupEnd();
  if (first || r)
    return lk_nl_nccl_fail(devs[0], &devs[0]->q, first ? first : r, "halving warm-up");
  for (uint32_t i = 0; i < nd; ++i) {
    (void)lk_cu_make_current(devs[i]->cu);
    lightos_status_t s =
        lk_nl_wait_stream(devs[i], devs[i]->q.aux, deadline, "the halving warm-up");
    if (s) return s;
  }
  return LIGHTOS_SUCCESS;
}

/* Makes the halving communicators of every rank of an in-process group
 * (one thread; a group call per step, two ranks each).  On failure no rank
 * halves (the tree pipeline serves), and the reason is logged. */
static void lk_nl_subs_make_all(lk_nl_dev_t* const* devs, uint32_t n, uint64_t deadline) {
  const lk_nccl_api_t* api = devs[0]->nccl;
  lk_nccl_uid_t* ids = malloc((size_t)n / 2 * sizeof *ids);
  lightos_status_t s = ids ? LIGHTOS_SUCCESS : LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  for (uint32_t k = 0; !s && (1u << k) < n; ++k) {
    ncclResult_t r = 0, first = 0;
    for (uint32_t p = 0; p < n / 2 && !r; ++p) r = api->ncclGetUniqueId(&ids[p]);
    if (r) {
      s = lk_nl_nccl_fail(devs[0], NULL, r, "ncclGetUniqueId");
      break;
    }
    if ((r = api->ncclGroupStart()) != 0) {
      s = lk_nl_nccl_fail(devs[0], NULL, r, "ncclGroupStart");
      break;
    }
    for (uint32_t i = 0; i < n && !first; ++i) {
      (void)lk_cu_make_current(devs[i]->cu);
      first = api->ncclCommInitRank(&devs[i]->q.sub[k], 2, ids[lk_nccl_halve_pair(i, k)],
                                    (int)((i >> k) & 1u));
      devs[i]->q.nsub = k + 1;
    }
    r = api->ncclGroupEnd();
    if (first || r) s = lk_nl_nccl_fail(devs[0], NULL, first ? first : r, "ncclCommInitRank (halving)");
    for (uint32_t i = 0; i < n && !s; ++i)
      if (!devs[i]->q.sub[k]) s = LK_FAIL(LIGHTOS_INTERNAL, "ncclCommInitRank made no communicator");
  }
  free(ids);
  if (!s) s = lk_nl_subs_warmup(devs, n, deadline);
  if (!s) return;
  LK_LOG_INFO("comm: no recursive halving (the tree pipeline serves): %s",
              lightos_last_error()->message);
  lightos_clear_error();
  for (uint32_t i = 0; i < n; ++i) {
    (void)lk_cu_make_current(devs[i]->cu);
    lk_nl_subs_free(devs[i], &devs[i]->q, false);
    devs[i]->halve = false;
  }
}

/* The same for one rank of a multi-process (or thread-per-rank) group:
 * rank 0 makes the ids, every rank joins its pair's communicator step by
 * step, and every rank learns whether all succeeded.  Fails only when
 * the host transport does. */
static lightos_status_t lk_nl_subs_make_rank(lk_nl_dev_t* d, const lk_algo_t* a) {
  const lk_nccl_api_t* api = d->nccl;
  const uint32_t n = d->c->size, me = d->c->rank;
  uint32_t steps = 0;
  while ((1u << steps) < n) ++steps;
  const size_t nids = (size_t)steps * (n / 2);
  lk_nccl_uid_t* ids = calloc(nids + 1, sizeof *ids);
  if (!ids) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  /* ids[nids]: a flag from rank 0 that the ids were made */
  if (me == 0) {
    bool ok = true;
    for (size_t i = 0; i < nids && ok; ++i) ok = api->ncclGetUniqueId(&ids[i]) == 0;
    ids[nids].internal[0] = ok ? 1 : 0;
  }
  lightos_status_t s = lk_algo_broadcast(a, ids, (nids + 1) * sizeof *ids, 0);
  uint8_t ok = !s && ids[nids].internal[0] == 1;
  char why[300] = "rank 0 could not make NCCL unique ids";
  (void)lk_cu_make_current(d->cu);
  for (uint32_t k = 0; ok && k < steps; ++k) {
    ncclResult_t r = api->ncclCommInitRank(&d->q.sub[k], 2, ids[(size_t)k * (n / 2) + lk_nccl_halve_pair(me, k)],
                                           (int)((me >> k) & 1u));
    d->q.nsub = k + 1;
    if (r || !d->q.sub[k]) {
      lk_nl_nccl_fail(d, NULL, r, "ncclCommInitRank (halving)");
      ok = 0;
    }
  }
  if (ok) {
    lk_nl_dev_t* one[1] = {d};
    ok = lk_nl_subs_warmup(one, 1, a->deadline_ns) == LIGHTOS_SUCCESS;
  }
  if (!ok && d->q.nsub) snprintf(why, sizeof why, "%s", lightos_last_error()->message);
  free(ids);
  lightos_clear_error();
  if (s) return s;
  uint8_t* oks = calloc(n, 1);
  if (!oks) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  oks[me] = ok;
  s = lk_algo_allgather(a, &oks[me], oks, 1);
  bool all = !s;
  for (uint32_t r = 0; all && r < n; ++r) all = oks[r] != 0;
  free(oks);
  if (!all) {
    if (!s && me == 0) LK_LOG_INFO("comm: no recursive halving (the tree pipeline serves)%s%s",
                                   ok ? "" : ": ", ok ? "" : why);
    lk_nl_subs_free(d, &d->q, false);
    d->halve = false;
  }
  return s;
}

/* ---- the vtable ------------------------------------------------------------------------ */

static void lk_nl_abort(lk_comm_t* c) {
  lk_nl_dev_t* d = c->dev;
  char why[sizeof c->abort_msg];
  pthread_mutex_lock(&c->lock);
  lk_strlcpy(why, c->abort_msg[0] ? c->abort_msg : "aborted", sizeof why);
  pthread_mutex_unlock(&c->lock);
  lk_nl_fatal(d, why, true);
}

static void lk_nl_destroy(lk_comm_t* c) {
  lk_nl_dev_t* d = c->dev;
  if (!d) return;
  lk_nl_iprof_print(d);
  lk_nl_group_t* g = d->group;
  if (g) { /* no abort reaches this rank from now on */
    pthread_mutex_lock(&g->lock);
    for (uint32_t i = 0; i < g->n; ++i)
      if (g->devs[i] == d) g->devs[i] = NULL;
    pthread_mutex_unlock(&g->lock);
  }
  /* Operations a queue has not issued yet (behind host work that ends or
   * fails within the timeout) are issued first: they use this state. */
  pthread_mutex_lock(&d->ilock);
  while (d->nissue) pthread_cond_wait(&d->icv, &d->ilock);
  pthread_mutex_unlock(&d->ilock);
  /* The enqueued work finishes (or times out: the watchdog aborts it). */
  bool drained = true;
  if (d->wd_started) {
    const double wait_s = c->config.timeout_s + 30.0;
    const uint64_t limit = lk_now_ns() + (wait_s >= 1.8e10 ? (uint64_t)1.8e19 : (uint64_t)(wait_s * 1e9));
    pthread_mutex_lock(&d->wlock);
    while (d->npend && lk_now_ns() < limit) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += 1;
      pthread_cond_timedwait(&d->wdrained, &d->wlock, &ts);
    }
    drained = d->npend == 0;
    d->wstop = true;
    pthread_cond_broadcast(&d->wcv);
    pthread_mutex_unlock(&d->wlock);
    if (!drained) {
      /* Work that never ends: leave its memory alone. */
      LK_LOG_WARN("comm: rank %u: %zu NCCL operations did not finish; their memory is leaked",
                  c->rank, d->npend);
      lk_nl_fatal(d, "destroyed with NCCL operations that did not finish", false);
      pthread_mutex_lock(&d->wlock);
      d->npend = 0; /* the watchdog stops polling them */
      pthread_mutex_unlock(&d->wlock);
    }
    pthread_join(d->wd, NULL);
  } else {
    /* No watchdog: wait here (bounded) for what was enqueued. */
    lk_nl_err_t saved;
    lk_nl_err_save(&saved);
    (void)lk_cu_make_current(d->cu);
    const uint64_t limit = lk_nl_deadline(c);
    for (size_t i = 0; i < d->npend && drained; ++i)
      drained = lk_nl_wait_event(d, d->pend[i].end, limit, "an NCCL operation") ==
                LIGHTOS_SUCCESS;
    if (!drained) {
      lk_nl_fatal(d, "destroyed with NCCL operations that did not finish", false);
      d->npend = 0;
    }
    (void)lk_nl_err_raise(&saved);
  }
  bool last = false;
  if (g) {
    pthread_mutex_lock(&g->lock);
    last = --g->live == 0;
    if (!drained) g->leak_flags = true; /* a GPU may still poll them */
    /* This rank's all-gather streams (drained with its operations). */
    for (uint32_t q = 0; g->xs && q < g->n; ++q) {
      CUstream* x = &g->xs[(size_t)c->rank * g->n + q];
      if (*x && drained && !lk_cu_make_current(d->cu)) d->api->cuStreamDestroy_v2(*x);
      *x = NULL;
    }
    pthread_mutex_unlock(&g->lock);
    if (last && g->ranks && !g->leak_flags) lk_nl_p2p_ranks_undo(d, g);
    else if (last && g->flags && !g->leak_flags && !lk_cu_make_current(d->cu))
      g->api->cuMemFreeHost((void*)g->flags);
    if (last) {
      free(g->xs);
      for (uint32_t r = 0; r < g->n; ++r) free(g->pub[r].outs);
    }
  }
  d->group = NULL;
  lk_nl_dev_free(d, drained);
  c->dev = NULL;
  if (last) {
    pthread_mutex_destroy(&g->lock);
    free(g);
  }
}

static const lk_comm_dev_vtbl_t lk_nl_vtbl = {
    .name = "nccl",
    .enqueue = lk_nl_enqueue,
    .run = lk_nl_run,
    .abort = lk_nl_abort,
    .destroy = lk_nl_destroy,
};

/* ---- test hook: the peer copies on a stand-in driver -------------------------------------
 *
 * tests/test_comm_gpu.c runs the peer-copy path of an in-process group
 * against a driver of its own (streams as threads, stream memory operations
 * on host memory, copies as memcpy, kernels as the host build of
 * comm_cuda_kernels.h), issuing the ranks in any order or from a thread each:
 * the copies' offsets, the flags, the all-gather pairs and the segment
 * numbers are LightOS's own code, only the driver is not. */
struct lk_nccl_p2p_sim {
  uint32_t n;
  lk_comm_t* comms;
  lk_cu_context_t* cus;
  lk_nl_dev_t** devs;
  lk_nl_group_t* g;
};

static CUresult lk_nl_sim_wait_event(CUstream st, CUevent e, unsigned flags) {
  (void)st;
  (void)e;
  (void)flags;
  return CUDA_SUCCESS;
}

lk_nccl_p2p_sim_t* lk_nccl_p2p_sim_new(const lk_cuda_api_t* api, uint32_t n, size_t segb,
                                       CUfunction const k[4]) {
  if (n < 2 || n > LK_NL_P2P_MAX) return NULL;
  lk_nccl_p2p_sim_t* sim = calloc(1, sizeof *sim);
  if (!sim) return NULL;
  sim->n = n;
  sim->comms = calloc(n, sizeof *sim->comms);
  sim->cus = calloc(n, sizeof *sim->cus);
  sim->devs = calloc(n, sizeof *sim->devs);
  sim->g = calloc(1, sizeof *sim->g + (size_t)n * sizeof(lk_nl_dev_t*));
  bool ok = sim->comms && sim->cus && sim->devs && sim->g;
  lk_nl_group_t* g = sim->g;
  if (ok) {
    g->n = g->live = n;
    g->api = api;
    pthread_mutex_init(&g->lock, NULL);
    g->flags = calloc((size_t)n * LK_NL_FLAG_WORDS, sizeof(uint32_t));
    g->xs = calloc((size_t)n * n, sizeof *g->xs);
    ok = g->flags && g->xs;
    if (ok) g->flags_dev = (CUdeviceptr)(uintptr_t)g->flags;
  }
  for (uint32_t r = 0; ok && r < n; ++r) {
    lk_comm_t* c = &sim->comms[r];
    c->rank = r;
    c->size = n;
    c->config.level = LIGHTOS_DETERMINISM_TOPOLOGY;
    lk_cu_context_t* cu = &sim->cus[r];
    cu->api = api;
    cu->ctx = (CUcontext)(uintptr_t)(r + 1);
    lk_nl_dev_t* d = sim->devs[r] = calloc(1, sizeof *d);
    if (!d) {
      ok = false;
      break;
    }
    pthread_mutex_init(&d->q.lock, NULL);
    d->c = c;
    d->cu = cu;
    d->api = api;
    d->wait_event = lk_nl_sim_wait_event;
    d->k_tree = k[0];
    d->k_tree2v = k[1];
    d->k_treev4 = k[2];
    d->k_treev8 = k[3];
    d->sms = 4;
    d->ctas = 3;
    d->p2p_ctas = 8;
    d->segb = segb;
    d->dnan_f = lk_nccl_host_nan_f32();
    d->dnan_d = lk_nccl_host_nan_f64();
    d->q.x_one = segb;
    d->q.x = (CUdeviceptr)(uintptr_t)malloc(LK_NL_NX * segb);
    d->group = g;
    d->p2p = true;
    g->devs[r] = d;
    g->cu[r] = cu;
    g->x[r] = d->q.x;
    ok = d->q.x != 0;
    for (uint32_t q = 0; q < n && ok; ++q)
      if (q != r) ok = !api->cuStreamCreate(&g->xs[(size_t)r * n + q], 0);
  }
  if (!ok) {
    lk_nccl_p2p_sim_free(sim);
    return NULL;
  }
  return sim;
}

lightos_status_t lk_nccl_p2p_sim_issue(lk_nccl_p2p_sim_t* sim, uint32_t rank, CUstream st,
                                       bool reduce_scatter, lightos_dtype_t dt,
                                       lightos_reduce_op_t op, size_t count, CUdeviceptr src,
                                       CUdeviceptr dst) {
  lk_nl_dev_t* d = sim->devs[rank];
  size_t total;
  if (!reduce_scatter && lk_mul_ok(count, (size_t)sim->n * lightos_dtype_size(dt), &total) &&
      total <= LK_NL_GATHER_MAX)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "count %zu: small enough for one NCCL all-gather, not peer copies", count);
  lk_coll_desc_t desc = {.kind = reduce_scatter ? LK_COLL_REDUCE_SCATTER : LK_COLL_ALLREDUCE,
                         .count = count,
                         .dtype = dt,
                         .op = op};
  pthread_mutex_lock(&d->q.lock);
  lightos_status_t s = lk_nl_tree_run(d, &d->q, st, &desc, src, dst, count, true);
  pthread_mutex_unlock(&d->q.lock);
  return s;
}

void lk_nccl_p2p_sim_release(lk_nccl_p2p_sim_t* sim) {
  lk_nl_p2p_release(sim->g);
}

void lk_nccl_p2p_sim_free(lk_nccl_p2p_sim_t* sim) {
  if (!sim) return;
  lk_nl_group_t* g = sim->g;
  for (uint32_t r = 0; sim->devs && r < sim->n; ++r) {
    lk_nl_dev_t* d = sim->devs[r];
    if (!d) continue;
    for (uint32_t q = 0; g && g->xs && q < sim->n; ++q) {
      CUstream x = g->xs[(size_t)r * sim->n + q];
      if (x) sim->cus[r].api->cuStreamDestroy_v2(x);
    }
    free((void*)(uintptr_t)d->q.x);
    pthread_mutex_destroy(&d->q.lock);
    free(d);
  }
  if (g) {
    for (uint32_t r = 0; r < g->n; ++r) free(g->pub[r].outs);
    free((void*)g->flags);
    free(g->xs);
    pthread_mutex_destroy(&g->lock);
    free(g);
  }
  free(sim->devs);
  free(sim->cus);
  free(sim->comms);
  free(sim);
}

/* ---- attaching --------------------------------------------------------------------------- */

/* Peer copies for an in-process group (lk_nl_p2p_push): every pair of
 * GPUs with peer access (enabled here), the stream memory operations, and
 * flags in pinned host memory that a trial write and wait on every GPU
 * proved usable.  LIGHTOS_NCCL_P2P=0 turns them off; operations from
 * LIGHTOS_NCCL_P2P_MIN_KB of input (default 32 MiB) take them: measured on
 * 2 x H200 against recursive halving, 16 MiB 0.76 vs 0.83 of NCCL, 64 MiB
 * 0.92 vs 0.88, 256 MiB 1.00 vs 0.95.  Anything missing: logged, and the
 * group runs without (recursive halving or the tree pipeline over NCCL). */
#define LK_NL_P2P_MIN_KB_DEFAULT 32768
/* Whether rank's GPU can write and wait on the group's flags: it writes its
 * DONE word, waits for it and the host sees it (then back to 0). */
static CUresult lk_nl_flag_probe(lk_nl_dev_t* d, lk_nl_group_t* g, uint32_t rank) {
  const lk_cuda_api_t* api = d->api;
  volatile uint32_t* word = g->flags + (size_t)rank * LK_NL_FLAG_WORDS + LK_NL_FLAG_DONE;
  CUresult r = lk_cu_make_current(d->cu) ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
  if (!r)
    r = api->cuStreamWriteValue32_v2(d->q.aux, lk_nl_flag(g, rank, LK_NL_FLAG_DONE), 1u,
                                     CU_STREAM_WRITE_VALUE_DEFAULT);
  if (!r)
    r = api->cuStreamWaitValue32_v2(d->q.aux, lk_nl_flag(g, rank, LK_NL_FLAG_DONE), 1u,
                                    CU_STREAM_WAIT_VALUE_GEQ);
  if (!r) r = api->cuStreamSynchronize(d->q.aux);
  if (!r && *word != 1u) r = CUDA_ERROR_INVALID_VALUE;
  *word = 0;
  return r;
}

/* Bytes of input from which operations take peer copies. */
static size_t lk_nl_p2p_min_bytes(void) {
  long kb = lk_env_long("LIGHTOS_NCCL_P2P_MIN_KB", LK_NL_P2P_MIN_KB_DEFAULT);
  return kb <= 0 ? 0 : (size_t)kb << 10;
}

static void lk_nl_p2p_setup(lk_nl_group_t* g, lk_nl_dev_t* const* devs, uint32_t n) {
  if (n < 2 || !lk_env_flag("LIGHTOS_NCCL_P2P", true)) return;
  const lk_cuda_api_t* api = devs[0]->api;
  const char* why = NULL;
  char buf[160];
  if (n > LK_NL_P2P_MAX) why = "more ranks than peer copies serve";
  else if (!api->cuStreamWaitValue32_v2 || !api->cuStreamWriteValue32_v2 || !api->cuMemcpyAsync)
    why = "the driver has no cuStreamWaitValue32_v2/cuStreamWriteValue32_v2";
  for (uint32_t i = 0; i < n && !why; ++i)
    for (uint32_t k = 0; k < n && !why; ++k) {
      if (i == k) continue;
      bool can = false;
      if (lk_cuda_peer_access(&devs[i]->cu->base, &devs[k]->cu->base, true, &can) || !can) {
        snprintf(buf, sizeof buf, "no peer access from rank %u to rank %u", i, k);
        why = buf;
      }
    }
  /* The all-gather copies write into the peers' receive buffers, which
   * come from each GPU's stream-ordered pool: every peer gets access to it
   * (for the pool's present and future allocations). */
  for (uint32_t i = 0; i < n && !why; ++i) {
    if (!atomic_load(&devs[i]->cu->use_pool)) continue;
    CUmemoryPool pool = NULL;
    CUmemAccessDesc acc[LK_NL_P2P_MAX];
    uint32_t na = 0;
    for (uint32_t k = 0; k < n; ++k)
      if (k != i)
        acc[na++] = (CUmemAccessDesc){{CU_MEM_LOCATION_TYPE_DEVICE, devs[k]->cu->device->dev},
                                      CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CUresult r = CUDA_ERROR_NOT_SUPPORTED;
    if (api->cuDeviceGetMemPool && api->cuMemPoolSetAccess && !lk_cu_make_current(devs[i]->cu))
      r = api->cuDeviceGetMemPool(&pool, devs[i]->cu->device->dev);
    if (!r) r = api->cuMemPoolSetAccess(pool, acc, na);
    if (r) {
      snprintf(buf, sizeof buf, "peers cannot be given access to rank %u's memory pool (%s)", i,
               lk_cuda_error_name(r));
      why = buf;
    }
  }
  void* host = NULL;
  const size_t bytes = (size_t)n * LK_NL_FLAG_WORDS * sizeof(uint32_t);
  if (!why && (lk_cu_make_current(devs[0]->cu) ||
               api->cuMemHostAlloc(&host, bytes,
                                   CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP))) {
    host = NULL;
    why = "no pinned host memory for the flags";
  }
  if (!why) {
    CUdeviceptr dp = 0;
    if (api->cuMemHostGetDevicePointer_v2(&dp, host, 0) || dp != (CUdeviceptr)(uintptr_t)host)
      why = "the flags' device address differs from the host's (no unified addressing)";
  }
  if (!why) {
    memset(host, 0, bytes);
    g->flags = host;
    g->flags_dev = (CUdeviceptr)(uintptr_t)host;
    g->api = api;
    /* Unified addressing: the host address is the device address in
     * every context. */
    for (uint32_t i = 0; i < n && !why; ++i) {
      CUresult r = lk_nl_flag_probe(devs[i], g, i);
      if (r) {
        snprintf(buf, sizeof buf, "stream memory operations failed on rank %u: %s", i,
                 lk_cuda_error_name(r));
        why = buf;
      }
    }
  }
  /* The all-gather's streams: xs[r][q] on r's GPU. */
  if (!why && !(g->xs = calloc((size_t)n * n, sizeof *g->xs))) why = "out of host memory";
  for (uint32_t r = 0; r < n && !why; ++r) {
    g->cu[r] = devs[r]->cu;
    CUresult rr = lk_cu_make_current(devs[r]->cu) ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
    for (uint32_t q = 0; q < n && !rr; ++q)
      if (q != r) rr = api->cuStreamCreate(&g->xs[(size_t)r * n + q], CU_STREAM_NON_BLOCKING);
    if (rr) {
      snprintf(buf, sizeof buf, "cuStreamCreate on rank %u: %s", r, lk_cuda_error_name(rr));
      why = buf;
    }
  }
  if (why) {
    for (uint32_t r = 0; g->xs && r < n; ++r) {
      (void)lk_cu_make_current(devs[r]->cu);
      for (uint32_t q = 0; q < n; ++q)
        if (g->xs[(size_t)r * n + q]) api->cuStreamDestroy_v2(g->xs[(size_t)r * n + q]);
    }
    free(g->xs);
    g->xs = NULL;
    if (host) {
      (void)lk_cu_make_current(devs[0]->cu);
      api->cuMemFreeHost(host);
    }
    g->flags = NULL;
    LK_LOG_INFO("comm: no peer copies for %u CUDA ranks: %s", n, why);
    return;
  }
  const size_t min = lk_nl_p2p_min_bytes();
  for (uint32_t i = 0; i < n; ++i) {
    g->x[i] = devs[i]->q.x;
    devs[i]->p2p = true;
    devs[i]->p2p_min = min;
  }
  LK_LOG_INFO("comm: %u CUDA ranks exchange by peer copies from %zu KiB", n, min >> 10);
}

lightos_status_t lk_nccl_attach_all(lk_comm_t* const* comms, uint32_t n) {
  if (!comms || n == 0 || n > (uint32_t)INT_MAX) return LIGHTOS_UNSUPPORTED;
  if (!lk_env_flag("LIGHTOS_COMM_NCCL", true)) return LIGHTOS_UNSUPPORTED;
  for (uint32_t i = 0; i < n; ++i)
    if (!lk_nl_cuda_ctx(comms[i])) return LIGHTOS_UNSUPPORTED;
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t j = i + 1; j < n; ++j)
      if (lk_nl_cuda_ctx(comms[i])->device->dev == lk_nl_cuda_ctx(comms[j])->device->dev)
        return LK_FAIL(LIGHTOS_UNAVAILABLE,
                       "ranks %u and %u are on the same GPU (%s): NCCL takes one rank per "
                       "device",
                       i, j, comms[i]->context->device->hal->info.uri);
  char why[400];
  const lk_nccl_api_t* api = lk_nccl_api_get(why, sizeof why);
  if (!api) return LK_FAIL(LIGHTOS_UNAVAILABLE, "%s", why);
  const char* rc = getenv("NCCL_RUNTIME_CONNECT");
  if (rc && strcmp(rc, "0"))
    LK_LOG_WARN("comm: NCCL_RUNTIME_CONNECT=%s: NCCL connects lazily, which can block a "
                "thread that drives several ranks (use group calls)",
                rc);
  const size_t segb = lk_nl_segment_bytes(n);
  lk_nl_dev_t** devs = calloc(n, sizeof *devs);
  lk_nl_group_t* g = calloc(1, sizeof *g + (size_t)n * sizeof(lk_nl_dev_t*));
  if (!devs || !g) {
    free(devs);
    free(g);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  }
  lightos_status_t s = LIGHTOS_SUCCESS;
  for (uint32_t i = 0; i < n && !s; ++i) s = lk_nl_dev_new(comms[i], api, segb, &devs[i]);
  if (!s) {
    /* One thread makes every rank's communicator: a group call. */
    lk_nccl_uid_t id;
    ncclResult_t r = api->ncclGetUniqueId(&id);
    if (r) s = lk_nl_nccl_fail(devs[0], NULL, r, "ncclGetUniqueId");
    if (!s && (r = api->ncclGroupStart()) != 0) s = lk_nl_nccl_fail(devs[0], NULL, r, "ncclGroupStart");
    if (!s) {
      ncclResult_t first = 0;
      for (uint32_t i = 0; i < n && !first; ++i) {
        (void)lk_cu_make_current(devs[i]->cu);
        first = api->ncclCommInitRank(&devs[i]->q.nc, (int)n, id, (int)i);
      }
      r = api->ncclGroupEnd();
      if (first || r) s = lk_nl_nccl_fail(devs[0], NULL, first ? first : r, "ncclCommInitRank");
      for (uint32_t i = 0; i < n && !s; ++i)
        if (!devs[i]->q.nc) s = LK_FAIL(LIGHTOS_INTERNAL, "ncclCommInitRank made no communicator");
    }
    if (!s) s = lk_nl_warmup(devs, n, n > 1, lk_nl_deadline(comms[0]));
    if (!s && devs[0]->halve && n >= 4) lk_nl_subs_make_all(devs, n, lk_nl_deadline(comms[0]));
  }
  if (s) {
    lk_nl_err_t e;
    lk_nl_err_save(&e);
    for (uint32_t i = 0; i < n; ++i) {
      if (devs[i] && (devs[i]->q.nc || devs[i]->q.nsub)) {
        (void)lk_cu_make_current(devs[i]->cu);
        lk_nl_subs_free(devs[i], &devs[i]->q, false);
        if (devs[i]->q.nc) (void)api->ncclCommAbort(devs[i]->q.nc);
        devs[i]->q.nc = NULL;
      }
    }
    for (uint32_t i = 0; i < n; ++i) lk_nl_dev_free(devs[i], true);
    free(devs);
    free(g);
    return lk_nl_err_raise(&e);
  }
  pthread_mutex_init(&g->lock, NULL);
  g->n = g->live = n;
  lk_nl_p2p_setup(g, devs, n);
  for (uint32_t i = 0; i < n; ++i) {
    g->devs[i] = devs[i];
    devs[i]->group = g;
    lk_nl_start_watchdog(devs[i]);
    comms[i]->dev = devs[i];
    comms[i]->dev_vtbl = &lk_nl_vtbl;
  }
  free(devs);
  LK_LOG_INFO("comm: %u ranks on NCCL %d (%s)", n, api->version, api->path);
  return LIGHTOS_SUCCESS;
}

/* What each rank says before a multi-process group takes NCCL. */
typedef struct lk_nl_hello {
  uint32_t ok;
  int32_t version;
  uint64_t segb;
  uint64_t hsegb;
  uint64_t scan_min;
  uint32_t halve;
  char uuid[48];
} lk_nl_hello_t;

/* Peer copies for a group of processes on one machine (lightos_comm_init_rank,
 * lightos_comm_init_mpi), collectively over the host transport: each rank
 * exports its exchange areas (cuIpcGetMemHandle) and opens the others'
 * (peer access enabled by the driver), rank 0 creates the flags as a POSIX
 * shared memory segment that every rank maps and registers with CUDA; the
 * all-gather stays NCCL's (receive buffers come from each process's own
 * memory pool, which other processes cannot open).  On by default from
 * three processes (LIGHTOS_NCCL_P2P_RANKS=0 on every rank: off); 4 x H200
 * under mpirun: 0.91-0.93 of NCCL at 256 MiB where recursive halving gives
 * 0.78.  Any rank that cannot: every rank goes without, logged. */
typedef struct lk_nl_p2p_hello {
  uint32_t want, pid;
  uint64_t key;            /* rank 0's: the segment's name */
  char host[64], boot[40]; /* one machine */
  CUipcMemHandle x;
} lk_nl_p2p_hello_t;

static void lk_nl_p2p_shm_name(char* name, size_t cap, uint64_t key) {
  snprintf(name, cap, "/lightos-p2p-%016llx", (unsigned long long)key);
}

static void lk_nl_p2p_ranks_undo(lk_nl_dev_t* d, lk_nl_group_t* g) {
  const lk_cuda_api_t* api = d->api;
  (void)lk_cu_make_current(d->cu);
  for (uint32_t q = 0; q < g->n; ++q)
    if (q != d->c->rank && g->x[q]) api->cuIpcCloseMemHandle(g->x[q]);
  if (g->flags_dev) api->cuMemHostUnregister(g->shm);
  if (g->shm) munmap(g->shm, g->shm_bytes);
  g->shm = NULL;
  g->flags = NULL;
  g->flags_dev = 0;
}

static lightos_status_t lk_nl_p2p_setup_ranks(lk_nl_dev_t* d, const lk_algo_t* a) {
  const lk_cuda_api_t* api = d->api;
  const uint32_t n = d->c->size, me = d->c->rank;
  const size_t bytes = (size_t)n * LK_NL_FLAG_WORDS * sizeof(uint32_t);
  lk_nl_p2p_hello_t mine;
  memset(&mine, 0, sizeof mine);
  /* Not for two processes: there recursive halving is one ncclAllReduce
   * (0.97 of NCCL at 256 MiB on 2 x H200 under mpirun, peer copies with
   * NCCL's all-gather 0.90-0.91). */
  mine.want = lk_env_flag("LIGHTOS_NCCL_P2P_RANKS", true) &&
              lk_env_flag("LIGHTOS_NCCL_P2P", true) && n >= 3 && n <= LK_NL_P2P_MAX && d->q.x &&
              api->cuIpcGetMemHandle && api->cuIpcOpenMemHandle_v2 && api->cuIpcCloseMemHandle &&
              api->cuMemHostRegister_v2 && api->cuMemHostUnregister &&
              api->cuStreamWaitValue32_v2 && api->cuStreamWriteValue32_v2 && api->cuMemcpyAsync;
  mine.pid = (uint32_t)getpid();
  if (mine.want && (lk_cu_make_current(d->cu) || api->cuIpcGetMemHandle(&mine.x, d->q.x)))
    mine.want = 0;
  gethostname(mine.host, sizeof mine.host - 1);
  FILE* f = fopen("/proc/sys/kernel/random/boot_id", "r");
  if (f) {
    if (!fgets(mine.boot, sizeof mine.boot, f)) mine.boot[0] = 0;
    fclose(f);
  }
  char name[64] = "";
  int fd = -1;
  if (me == 0 && mine.want) {
    /* A name nobody else holds: the time, the process and an address. */
    mine.key = (lk_now_ns() * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)mine.pid << 32) ^
               (uint64_t)(uintptr_t)&mine;
    lk_nl_p2p_shm_name(name, sizeof name, mine.key);
    fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) name[0] = 0; /* not ours to unlink */
    if (fd < 0 || ftruncate(fd, (off_t)bytes)) mine.want = 0; /* zero filled */
  }
  lk_nl_p2p_hello_t* all = calloc(n, sizeof *all);
  lightos_status_t s = all ? LIGHTOS_SUCCESS : LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  if (!s) {
    all[me] = mine;
    s = lk_algo_allgather(a, &all[me], all, sizeof mine);
  }
  bool go = !s;
  for (uint32_t r = 0; go && r < n; ++r) {
    go = all[r].want && !strcmp(all[r].host, all[0].host) && !strcmp(all[r].boot, all[0].boot);
    for (uint32_t q = r + 1; go && q < n; ++q) go = all[r].pid != all[q].pid;
  }
  lk_nl_group_t* g = go ? calloc(1, sizeof *g + (size_t)n * sizeof(lk_nl_dev_t*)) : NULL;
  uint8_t ok = g != NULL;
  if (ok) {
    g->n = n;
    g->live = 1;
    g->api = api;
    g->ranks = true;
    g->shm_bytes = bytes;
    if (me != 0) {
      char theirs[64];
      lk_nl_p2p_shm_name(theirs, sizeof theirs, all[0].key);
      fd = shm_open(theirs, O_RDWR, 0600);
    }
    void* m = fd >= 0 ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    ok = m != MAP_FAILED;
    if (ok) g->shm = m;
    CUdeviceptr dp = 0;
    if (ok && (lk_cu_make_current(d->cu) ||
               api->cuMemHostRegister_v2(m, bytes, CU_MEMHOSTREGISTER_PORTABLE |
                                                       CU_MEMHOSTREGISTER_DEVICEMAP)))
      ok = 0;
    if (ok && api->cuMemHostGetDevicePointer_v2(&dp, m, 0)) {
      api->cuMemHostUnregister(m);
      ok = 0;
    }
    if (ok) {
      g->flags = m;
      g->flags_dev = dp;
    }
    g->x[me] = d->q.x;
    for (uint32_t q = 0; q < n && ok; ++q)
      if (q != me &&
          api->cuIpcOpenMemHandle_v2(&g->x[q], all[q].x, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS)) {
        g->x[q] = 0;
        ok = 0;
      }
    if (ok) ok = lk_nl_flag_probe(d, g, me) == CUDA_SUCCESS; /* on the segment */
  }
  if (fd >= 0) close(fd);
  if (go) { /* every rank that went this far, and only those, agrees here */
    uint8_t oks[LK_NL_P2P_MAX];
    oks[me] = ok;
    s = lk_algo_allgather(a, &oks[me], oks, 1);
    for (uint32_t r = 0; r < n; ++r) ok = ok && !s && oks[r];
  } else {
    ok = 0;
  }
  if (me == 0 && name[0]) shm_unlink(name); /* every rank has it mapped, or gave up */
  if (!ok) {
    if (g) {
      lk_nl_p2p_ranks_undo(d, g);
      free(g);
    }
    if (go || mine.want)
      LK_LOG_INFO("comm: rank %u: no peer copies between the processes", me);
    free(all);
    return s;
  }
  free(all);
  /* Every rank's GPU waits for every other one's flags from now on. */
  g->devs[me] = d;
  pthread_mutex_init(&g->lock, NULL);
  d->group = g;
  d->p2p = true;
  d->p2p_min = lk_nl_p2p_min_bytes();
  if (me == 0)
    LK_LOG_INFO("comm: %u processes exchange by peer copies from %zu KiB", n, d->p2p_min >> 10);
  return LIGHTOS_SUCCESS;
}

lightos_status_t lk_nccl_attach_rank(lk_comm_t* c) {
  if (!c || !c->xport) return LIGHTOS_UNSUPPORTED;
  const uint32_t n = c->size, me = c->rank;
  lk_algo_t a = {
      .x = c->xport, .rank = me, .size = n, .level = c->config.level, .deadline_ns = lk_nl_deadline(c)};
  lk_nl_hello_t mine;
  memset(&mine, 0, sizeof mine);
  lk_nl_dev_t* d = NULL;
  const lk_nccl_api_t* api = NULL;
  char why[400] = "";
  lightos_status_t s = LIGHTOS_SUCCESS;
  lk_cu_context_t* cu = lk_nl_cuda_ctx(c);
  if (lk_env_flag("LIGHTOS_COMM_NCCL", true) && cu) {
    api = lk_nccl_api_get(why, sizeof why);
    if (api) s = lk_nl_dev_new(c, api, lk_nl_segment_bytes(n), &d);
    if (api && s) snprintf(why, sizeof why, "%s", lightos_last_error()->message);
    if (d) {
      mine.ok = 1;
      mine.version = api->version;
      mine.segb = d->segb;
      mine.hsegb = d->hsegb;
      mine.scan_min = d->scan_min;
      mine.halve = d->halve;
      lk_strlcpy(mine.uuid, cu->device->uuid, sizeof mine.uuid);
    }
  }
  lightos_clear_error();
  lk_nl_hello_t* all = calloc(n, sizeof *all);
  if (!all) {
    lk_nl_dev_free(d, true);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  }
  all[me] = mine;
  s = lk_algo_allgather(&a, &all[me], all, sizeof mine);
  bool ok = !s;
  uint32_t bad = me;
  for (uint32_t r = 0; ok && r < n; ++r) {
    ok = all[r].ok && all[r].version == all[0].version;
    if (!ok) bad = r;
    for (uint32_t q = r + 1; ok && q < n; ++q)
      if (all[r].uuid[0] && !strncmp(all[r].uuid, all[q].uuid, sizeof all[r].uuid)) ok = false;
  }
  const uint64_t segb = ok ? all[0].segb : 0;
  if (ok) { /* rank 0's choice for every rank */
    d->halve = all[0].halve != 0;
    d->hsegb = all[0].hsegb;
    d->scan_min = all[0].scan_min;
  }
  free(all);
  if (s || !ok) {
    lk_nl_dev_free(d, true);
    if (s) return s;
    if (!mine.ok)
      return why[0] ? LK_FAIL(LIGHTOS_UNAVAILABLE, "%s", why) : LIGHTOS_UNSUPPORTED;
    return LK_FAIL(LIGHTOS_UNAVAILABLE,
                   "not every rank can use NCCL (rank %u cannot, or the ranks differ in NCCL "
                   "version or share a GPU)",
                   bad);
  }
  if (segb != d->segb && n > 1) {
    /* Every rank cuts the same segments: rank 0's size. */
    (void)lk_cu_make_current(d->cu);
    d->api->cuMemFree_v2(d->q.x);
    d->q.x = 0;
    d->q.x_one = 0;
    CUresult r = d->api->cuMemAlloc_v2(&d->q.x, LK_NL_NX * (size_t)segb);
    if (r) {
      lk_cu_fail(d->cu, r, "cuMemAlloc", "NCCL path exchange slots");
      snprintf(why, sizeof why, "%s", lightos_last_error()->message);
      d->q.x = 0;
    } else {
      d->q.x_one = segb;
    }
  }
  d->segb = segb;
  struct {
    uint32_t ok;
    lk_nccl_uid_t id;
  } msg;
  memset(&msg, 0, sizeof msg);
  if (me == 0) msg.ok = api->ncclGetUniqueId(&msg.id) == 0;
  s = lk_algo_broadcast(&a, &msg, sizeof msg, 0);
  if (!s && !msg.ok) {
    bad = 0;
    snprintf(why, sizeof why, "ncclGetUniqueId failed");
  }
  uint8_t done = 0;
  if (!s && msg.ok) {
    (void)lk_cu_make_current(d->cu);
    ncclResult_t r = api->ncclCommInitRank(&d->q.nc, (int)n, msg.id, (int)me);
    if (r) {
      lk_nl_nccl_fail(d, NULL, r, "ncclCommInitRank");
      d->q.nc = NULL;
    } else {
      /* Ranks of one process may be driven by one thread: connect now. */
      bool inproc = !strcmp(c->xport->vtbl->name, "inproc");
      done = lk_nl_warmup(&d, 1, inproc && n > 1, a.deadline_ns) == LIGHTOS_SUCCESS;
      /* (Made even when the slots are missing: the others wait for it.) */
      if (n > 1 && !d->q.x) done = 0;
    }
    if (!done) snprintf(why, sizeof why, "%s", lightos_last_error()->message);
  }
  uint8_t* dones = s || !msg.ok ? NULL : calloc(n, 1);
  if (dones) {
    dones[me] = done;
    s = lk_algo_allgather(&a, &dones[me], dones, 1);
    for (uint32_t r = 0; !s && r < n; ++r)
      if (!dones[r]) {
        done = 0;
        bad = r;
      }
    free(dones);
  } else if (!s && msg.ok) {
    s = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  }
  if (!s && msg.ok && done && d->halve && n >= 4) s = lk_nl_subs_make_rank(d, &a);
  /* Processes (not threads of one process) of one machine: peer copies
   * where every rank can and asks for them (collective, so always run). */
  if (!s && msg.ok && done && n > 1 && strcmp(c->xport->vtbl->name, "inproc"))
    s = lk_nl_p2p_setup_ranks(d, &a);
  if (s || !msg.ok || !done) {
    lk_nl_err_t e;
    lk_nl_err_save(&e);
    (void)lk_cu_make_current(d->cu);
    lk_nl_subs_free(d, &d->q, false);
    if (d->q.nc) {
      (void)api->ncclCommAbort(d->q.nc);
      d->q.nc = NULL;
    }
    lk_nl_dev_free(d, true);
    if (s) return lk_nl_err_raise(&e);
    return LK_FAIL(LIGHTOS_UNAVAILABLE, "NCCL could not be set up on rank %u%s%s", bad,
                   why[0] ? ": " : "", why);
  }
  lk_nl_start_watchdog(d);
  c->dev = d;
  c->dev_vtbl = &lk_nl_vtbl;
  if (me == 0) LK_LOG_INFO("comm: %u ranks on NCCL %d (%s)", n, api->version, api->path);
  return LIGHTOS_SUCCESS;
}
