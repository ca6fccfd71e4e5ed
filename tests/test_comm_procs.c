#define _GNU_SOURCE
/* Collectives across processes: forked children; rank 0 makes the group
 * id (lightos_comm_get_unique_id) and passes it to the others through
 * pipes (any channel works), every child calls lightos_comm_init_rank
 * (TCP).  The parent never starts a LightOS thread, so children are forked
 * from a single-threaded process.
 * Checks results and the cross-process bitwise guarantees, and that when
 * one rank is killed every other rank fails within the timeout.
 *
 * Devices: CPU by default.  LIGHTOS_TEST_PROCS_DEVICES="cuda:0,cuda:1,..."
 * gives rank r the (r mod count)-th device: with CUDA devices the group
 * runs on NCCL ("nccl" transport) and, between processes of one machine,
 * by peer copies from three processes; LIGHTOS_TEST_REQUIRE_P2P=1 then
 * requires every such TOPOLOGY allreduce to have taken them (set
 * LIGHTOS_NCCL_P2P_MIN_KB=0 so that the test's small buffers qualify). */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "comm/comm_internal.h"
#include "comm/comm_nccl.h"
#include "core/sha256.h"
#include "lightos/lightos.h"
#include "lk_test.h"

#define NELEM 5000
#define NCONTRIB 8
/* Elements of the one-buffer TOPOLOGY check: enough that the CUDA path
 * exchanges them (smaller allreduces gather every input on every rank). */
#define NTREE 100003

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The device of rank r (LIGHTOS_TEST_PROCS_DEVICES, default "cpu"). */
static void rank_device(uint32_t r, char* uri, size_t cap) {
  const char* list = getenv("LIGHTOS_TEST_PROCS_DEVICES");
  if (!list || !list[0]) list = "cpu";
  uint32_t count = 1;
  for (const char* p = list; *p; ++p) count += *p == ',';
  const char* p = list;
  for (uint32_t k = r % count; k > 0; --k) p = strchr(p, ',') + 1;
  size_t len = strcspn(p, ",");
  snprintf(uri, cap, "%.*s", (int)len, p);
}

/* Whether the group's ranks are on CUDA devices, one rank each: then it
 * runs on NCCL (which takes one rank per GPU), else on the host path. */
static bool group_on_nccl(uint32_t nranks) {
  char a[64], b[64];
  for (uint32_t r = 0; r < nranks; ++r) {
    rank_device(r, a, sizeof a);
    if (strncmp(a, "cuda", 4)) return false;
    for (uint32_t k = 0; k < r; ++k) {
      rank_device(k, b, sizeof b);
      if (!strcmp(a, b)) return false;
    }
  }
  return true;
}

static lightos_status_t rank_context(uint32_t r, lightos_context_t* ctx) {
  char uri[64];
  rank_device(r, uri, sizeof uri);
  lightos_status_t s = lightos_context_create_from_uri(uri, ctx);
  if (s) fprintf(stderr, "rank %u: no device %s: %s\n", r, uri, lightos_last_error()->message);
  return s;
}

/* Contribution k of the global data (order sensitive: 40 binades). */
static void contribution_n(int k, float* p, size_t n) {
  uint64_t s = 0x1234567ull * (uint64_t)(k + 1);
  for (size_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    float m = (float)((int64_t)((s >> 33) % 2000001) - 1000000) / 1e6f;
    p[i] = ldexpf(m, (int)((s >> 20) % 41) - 20);
  }
}

/* Id pipes: rank 0 writes the id once per other rank. */
static int g_idpipe[8][2];

static int id_pipes_open(uint32_t n) {
  for (uint32_t r = 1; r < n; ++r)
    if (pipe(g_idpipe[r])) return -1;
  return 0;
}

/* In the child of rank r: the group's id (rank 0 makes it). */
static int id_get(uint32_t n, uint32_t r, lightos_comm_unique_id_t* id) {
  int rc = 0;
  if (r == 0) {
    if (lightos_comm_get_unique_id(id)) return -1;
    for (uint32_t p = 1; p < n; ++p)
      if (write(g_idpipe[p][1], id, sizeof *id) != (ssize_t)sizeof *id) rc = -1;
  } else if (read(g_idpipe[r][0], id, sizeof *id) != (ssize_t)sizeof *id) {
    rc = -1;
  }
  return rc;
}

static void id_pipes_close(uint32_t n) {
  for (uint32_t r = 1; r < n; ++r) {
    close(g_idpipe[r][0]);
    close(g_idpipe[r][1]);
  }
}

static void contribution(int k, float* p) { contribution_n(k, p, NELEM); }

/* The balanced pairwise tree over contributions [lo, hi) (a power of two
 * of them): TOPOLOGY's tree for one contribution per rank. */
static void host_tree(uint32_t lo, uint32_t hi, float* out) {
  if (hi - lo == 1) {
    contribution_n((int)lo, out, NTREE);
    return;
  }
  uint32_t mid = lo + (hi - lo) / 2;
  float* right = malloc(NTREE * sizeof *right);
  host_tree(lo, mid, out);
  host_tree(mid, hi, right);
  for (size_t i = 0; i < NTREE; ++i) out[i] += right[i];
  free(right);
}

/* TOPOLOGY allreduce of one buffer per rank (contribution `rank`), out of
 * place: the bits of the host tree.  On CUDA devices: recursive halving
 * with two processes, peer copies with four (LIGHTOS_TEST_REQUIRE_P2P=1
 * requires them).  Returns 0 or an exit status. */
static int check_tree(lightos_context_t ctx, lightos_comm_t comm, uint32_t nranks, uint32_t rank) {
  if (nranks & (nranks - 1)) return 0;
  float* h = malloc(NTREE * sizeof *h);
  float* want = malloc(NTREE * sizeof *want);
  contribution_n((int)rank, h, NTREE);
  host_tree(0, nranks, want);
  lightos_buffer_t in = NULL, out = NULL;
  const uint64_t p2p_before = lk_nccl_p2p_ops();
  int rc = 0;
  if (lightos_buffer_alloc(ctx, NTREE * 4, 0, &in) || lightos_buffer_alloc(ctx, NTREE * 4, 0, &out) ||
      lightos_buffer_write(in, 0, NTREE * 4, h) ||
      lightos_comm_allreduce(in, out, NTREE, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, comm, NULL) ||
      lightos_buffer_read(out, 0, NTREE * 4, h)) {
    fprintf(stderr, "rank %u: one-buffer allreduce: %s\n", rank, lightos_last_error()->message);
    rc = 17;
  }
  if (!rc && memcmp(h, want, NTREE * sizeof *h)) {
    size_t i = 0;
    while (i < NTREE && !memcmp(&h[i], &want[i], sizeof *h)) ++i;
    fprintf(stderr, "rank %u of %u: TOPOLOGY allreduce [%zu] %a, the host tree gives %a\n", rank,
            nranks, i, (double)h[i], (double)want[i]);
    rc = 18;
  }
  /* LIGHTOS_TEST_REQUIRE_COMPOSED=1: groups of 4 processes must have been
   * composed by backend (LIGHTOS_COMM_HIERARCHY=1 with a device list that
   * mixes backends). */
  const char* want_comp = getenv("LIGHTOS_TEST_REQUIRE_COMPOSED");
  if (!rc && nranks == 4 && want_comp && atoi(want_comp)) {
    lk_object_t* o = NULL;
    lk_handle_resolve(comm, LK_OBJ_COMM, "comm", &o);
    const lk_comm_t* c = (const lk_comm_t*)o;
    if (!c->hier_inner && !c->hier_outer) {
      fprintf(stderr, "rank %u of %u: the group was not composed\n", rank, nranks);
      rc = 20;
    }
  }
  const char* req = getenv("LIGHTOS_TEST_REQUIRE_P2P");
  if (!rc && nranks > 2 && req && atoi(req) && group_on_nccl(nranks) &&
      lk_nccl_p2p_ops() == p2p_before) {
    fprintf(stderr, "rank %u of %u: the allreduce did not take peer copies\n", rank, nranks);
    rc = 19;
  }
  lightos_buffer_release(in);
  lightos_buffer_release(out);
  free(h);
  free(want);
  return rc;
}

/* A child: rank `rank` of nranks holding contributions [first, first+k);
 * writes the SHA-256 of its allreduce_multi result to fd.  Exit status 0
 * on success. */
static int child_allreduce(uint32_t nranks, uint32_t rank, uint32_t first, uint32_t k,
                           lightos_determinism_t level, int fd) {
  lightos_comm_unique_id_t idv;
  if (id_get(nranks, rank, &idv)) return 9;
  const lightos_comm_unique_id_t* id = &idv;
  lightos_context_t ctx;
  if (rank_context(rank, &ctx)) return 10;
  lightos_comm_config_t cfg;
  lightos_comm_config_default(&cfg);
  cfg.level = level;
  cfg.timeout_s = 60;
  lightos_comm_t comm;
  if (lightos_comm_init_rank(nranks, id, rank, ctx, &cfg, &comm)) {
    fprintf(stderr, "rank %u: init_rank: %s\n", rank, lightos_last_error()->message);
    return 11;
  }
  lightos_buffer_t bufs[NCONTRIB], out;
  float* h = malloc(NELEM * 4);
  for (uint32_t j = 0; j < k; ++j) {
    contribution((int)(first + j), h);
    lightos_buffer_alloc(ctx, NELEM * 4, 0, &bufs[j]);
    lightos_buffer_write(bufs[j], 0, NELEM * 4, h);
  }
  lightos_buffer_alloc(ctx, NELEM * 4, 0, &out);
  int rc = 0;
  if (lightos_comm_allreduce_multi(bufs, k, out, NELEM, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, comm,
                                   NULL) ||
      lightos_buffer_read(out, 0, NELEM * 4, h)) {
    fprintf(stderr, "rank %u: allreduce: %s\n", rank, lightos_last_error()->message);
    rc = 12;
  }
  /* A second collective over the same sockets: allgather of ranks. */
  if (!rc) {
    lightos_buffer_t one, all;
    int32_t me = (int32_t)rank * 7, got[16];
    lightos_buffer_alloc(ctx, 4, 0, &one);
    lightos_buffer_alloc(ctx, 4 * nranks, 0, &all);
    lightos_buffer_write(one, 0, 4, &me);
    if (lightos_comm_allgather(one, all, 1, LIGHTOS_DTYPE_I32, comm, NULL) ||
        lightos_buffer_read(all, 0, 4 * nranks, got))
      rc = 13;
    for (uint32_t r = 0; r < nranks && !rc; ++r)
      if (got[r] != (int32_t)r * 7) rc = 14;
    lightos_buffer_release(one);
    lightos_buffer_release(all);
  }
  uint8_t d[32] = {0};
  lk_sha256(h, NELEM * 4, d);
  if (!rc && level == LIGHTOS_DETERMINISM_TOPOLOGY) rc = check_tree(ctx, comm, nranks, rank);
  if (write(fd, d, 32) != 32) rc = 15;
  const char* want_t = group_on_nccl(nranks) ? "nccl" : "tcp";
  const char* tname = "";
  lightos_comm_transport(comm, &tname);
  if (strcmp(tname, want_t) != 0) {
    fprintf(stderr, "rank %u: transport %s, expected %s\n", rank, tname, want_t);
    rc = 16;
  }
  free(h);
  for (uint32_t j = 0; j < k; ++j) lightos_buffer_release(bufs[j]);
  lightos_buffer_release(out);
  lightos_comm_destroy(comm);
  lightos_context_release(ctx);
  return rc;
}

/* Runs a split over processes; returns 0 and the hashes of every rank. */
static int run_split(const uint32_t* split, uint32_t nranks, lightos_determinism_t level,
                     uint8_t hashes[][32]) {
  if (id_pipes_open(nranks)) return -1;
  int fds[8][2];
  pid_t pids[8];
  uint32_t first = 0;
  for (uint32_t r = 0; r < nranks; ++r) {
    if (pipe(fds[r])) return -1;
    pids[r] = fork();
    if (pids[r] == 0) {
      alarm(120); /* a hung child dies and the parent reports it */
      close(fds[r][0]);
      _exit(child_allreduce(nranks, r, first, split[r], level, fds[r][1]));
    }
    close(fds[r][1]);
    first += split[r];
  }
  id_pipes_close(nranks);
  int rc = 0;
  for (uint32_t r = 0; r < nranks; ++r) {
    if (read(fds[r][0], hashes[r], 32) != 32) rc = -1;
    close(fds[r][0]);
    int st = 0;
    waitpid(pids[r], &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      lk_test_fail(__FILE__, __LINE__, "rank %u exited with status %d", r,
                   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
      rc = -1;
    }
  }
  return rc;
}

static void test_processes_bitwise(void) {
  static const uint32_t aligned[][5] = {{2, 4, 4}, {4, 2, 2, 2, 2}, {4, 4, 2, 1, 1}};
  static const uint32_t any[][5] = {{3, 5, 2, 1}, {4, 3, 1, 3, 1}};
  for (lightos_determinism_t l = LIGHTOS_DETERMINISM_TOPOLOGY; l <= LIGHTOS_DETERMINISM_STRICT; ++l) {
    /* The reference: one process holding all 8 contributions.  (The
     * parent process itself never opens a device: children are forked
     * from a process without LightOS threads.) */
    static const uint32_t all8[1] = {8};
    uint8_t ref[32], one[1][32];
    if (run_split(all8, 1, l, one)) continue;
    memcpy(ref, one[0], 32);
    uint8_t hashes[8][32];
    for (size_t t = 0; t < sizeof aligned / sizeof aligned[0]; ++t) {
      if (run_split(&aligned[t][1], aligned[t][0], l, hashes)) continue;
      for (uint32_t r = 0; r < aligned[t][0]; ++r)
        LK_CHECK_MSG(!memcmp(hashes[r], ref, 32), "%s: %u processes, rank %u: other bits",
                     lightos_determinism_name(l), aligned[t][0], r);
    }
    if (l == LIGHTOS_DETERMINISM_STRICT)
      for (size_t t = 0; t < 2; ++t) {
        if (run_split(&any[t][1], any[t][0], l, hashes)) continue;
        for (uint32_t r = 0; r < any[t][0]; ++r)
          LK_CHECK_MSG(!memcmp(hashes[r], ref, 32), "STRICT: unaligned split %zu rank %u", t, r);
      }
  }
}

/* One of 4 processes is killed while the others run collectives: each of
 * the others gets an error, long before the (generous) timeout. */
static void test_killed_rank(void) {
  const uint32_t n = 4, victim = 2;
  LK_REQUIRE(id_pipes_open(n) == 0);
  const double timeout = 20.0;
  int fds[4][2];
  pid_t pids[4];
  for (uint32_t r = 0; r < n; ++r) {
    LK_REQUIRE(pipe(fds[r]) == 0);
    pids[r] = fork();
    if (pids[r] == 0) {
      alarm(120);
      close(fds[r][0]);
      lightos_comm_unique_id_t id;
      if (id_get(n, r, &id)) _exit(9);
      lightos_context_t ctx;
      if (rank_context(r, &ctx)) _exit(10);
      lightos_comm_config_t cfg;
      lightos_comm_config_default(&cfg);
      cfg.timeout_s = timeout;
      lightos_comm_t comm;
      if (lightos_comm_init_rank(n, &id, r, ctx, &cfg, &comm)) _exit(11);
      lightos_buffer_t b;
      lightos_buffer_alloc(ctx, 1 << 20, 0, &b);
      /* Report "ready", then loop on allreduce until it fails. */
      char c = 'r';
      if (write(fds[r][1], &c, 1) != 1) _exit(12);
      double t_fail = 0;
      lightos_status_t s = LIGHTOS_SUCCESS;
      for (int it = 0; it < 100000 && !s; ++it) {
        s = lightos_comm_allreduce(b, b, (1 << 20) / 4, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, comm,
                                   NULL);
        if (!s) {
          lightos_queue_t q;
          lightos_context_default_queue(ctx, &q);
          s = lightos_queue_finish(q);
        }
        t_fail = now_s();
      }
      double info[2] = {(double)s, t_fail};
      if (write(fds[r][1], info, sizeof info) != (ssize_t)sizeof info) _exit(13);
      lightos_comm_destroy(comm);
      _exit(s ? 0 : 14);
    }
    close(fds[r][1]);
  }
  id_pipes_close(n);
  char c;
  for (uint32_t r = 0; r < n; ++r) LK_CHECK(read(fds[r][0], &c, 1) == 1);
  struct timespec ts = {0, 200 * 1000 * 1000};
  nanosleep(&ts, NULL);
  double t_kill = now_s();
  kill(pids[victim], SIGKILL);
  for (uint32_t r = 0; r < n; ++r) {
    int st = 0;
    if (r != victim) {
      double info[2] = {0, 0};
      LK_CHECK_MSG(read(fds[r][0], info, sizeof info) == (ssize_t)sizeof info,
                   "rank %u reported nothing", r);
      LK_CHECK_MSG(info[0] != 0, "rank %u: no error after rank %u died", r, victim);
      LK_CHECK_MSG(info[1] - t_kill < timeout, "rank %u failed %.2f s after the kill (timeout %.0f s)",
                   r, info[1] - t_kill, timeout);
      fprintf(stderr, "test_killed_rank: rank %u failed %.3f s after the kill\n", r,
              info[1] - t_kill);
    }
    waitpid(pids[r], &st, 0);
    if (r != victim)
      LK_CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rank %u exit status %d", r,
                   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    close(fds[r][0]);
  }
}

static void test_bad_ids(void) {
  lightos_context_t ctx;
  LK_REQUIRE_OK(lightos_context_create_from_uri("cpu", &ctx));
  lightos_comm_unique_id_t id;
  lightos_comm_t comm;
  memset(&id, 0, sizeof id);
  LK_CHECK_STATUS(lightos_comm_init_rank(2, &id, 0, ctx, NULL, &comm), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_STATUS(lightos_comm_init_rank(2, NULL, 0, ctx, NULL, &comm), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK_STATUS(lightos_comm_get_unique_id(NULL), LIGHTOS_INVALID_ARGUMENT);
  /* A rank alone in a 2-rank group times out with a message naming the
   * missing rank. */
  LK_REQUIRE_OK(lightos_comm_get_unique_id(&id));
  lightos_comm_config_t cfg;
  lightos_comm_config_default(&cfg);
  cfg.timeout_s = 1;
  double t0 = now_s();
  lightos_status_t s = lightos_comm_init_rank(2, &id, 0, ctx, &cfg, &comm);
  LK_CHECK_MSG(s == LIGHTOS_TIMEOUT, "expected TIMEOUT, got %s (%s)", lightos_status_string(s),
               lightos_last_error()->message);
  LK_CHECK(now_s() - t0 < 10);
  lightos_context_release(ctx);
}

int main(void) {
  lk_t.program = "test_comm_procs";
  signal(SIGPIPE, SIG_IGN);
  LK_RUN(test_processes_bitwise);
  LK_RUN(test_killed_rank);
  LK_RUN(test_bad_ids);
  return lk_test_finish();
}
