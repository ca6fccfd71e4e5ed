/* The TCP transport (src/comm/xport_tcp.c) on 127.0.0.1: groups of ranks in
 * threads and in forked processes; data patterns checked byte for byte;
 * bad ids and arguments; group-size disagreement, a rank joining twice, a
 * rank that never joins; length mismatches; a peer that never posts; a
 * rank killed mid-run; abort() from another thread; leaked descriptors. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "comm/xport.h"
#include "core/util.h"
#include "lightos/lightos.h"
#include "lk_test.h"

#define MiB (1024u * 1024u)

static uint64_t deadline_in(double s) { return lk_now_ns() + (uint64_t)(s * 1e9); }
static double since(uint64_t t0) { return (double)(lk_now_ns() - t0) / 1e9; }
static void nap(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int count_fds(void) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  struct dirent* e;
  while ((e = readdir(d))) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

/* ---- data patterns ---------------------------------------------------------- */

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Bytes that depend on who sent them to whom and which message it was. */
static void fill(unsigned char* p, size_t n, uint32_t src, uint32_t dst, uint32_t tag) {
  uint64_t s = mix(((uint64_t)src << 40) ^ ((uint64_t)dst << 20) ^ tag);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t v = s ^ (s >> 29);
    memcpy(p + i, &v, 8);
  }
  if (i < n) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t v = s ^ (s >> 29);
    memcpy(p + i, &v, n - i);
  }
}

static int check(const unsigned char* p, size_t n, uint32_t src, uint32_t dst, uint32_t tag,
                 char* err, size_t cap) {
  unsigned char* want = malloc(n ? n : 1);
  if (!want) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  fill(want, n, src, dst, tag);
  int rc = 0;
  if (n && memcmp(p, want, n) != 0) {
    size_t i = 0;
    while (p[i] == want[i]) i++;
    snprintf(err, cap, "message %u from rank %u to rank %u (%zu bytes): byte %zu is 0x%02x, "
             "expected 0x%02x", tag, src, dst, n, i, p[i], want[i]);
    rc = -1;
  }
  free(want);
  return rc;
}

static int xchg(lk_xport_t* x, lk_xop_t* ops, size_t n, const char* what, char* err, size_t cap) {
  lightos_status_t s = x->vtbl->exchange(x, ops, n, deadline_in(60));
  if (s) {
    snprintf(err, cap, "%s: rank %u: %s (%s)", what, x->rank, lightos_status_string(s),
             lightos_last_error()->message);
    return -1;
  }
  return 0;
}

/* A ring of 0, 1, 1e6 and `big` bytes, then three rounds of all-to-all with
 * four messages per ordered pair (one empty) in one batch, self included. */
static int run_patterns(lk_xport_t* x, size_t big, char* err, size_t cap) {
  const uint32_t r = x->rank, n = x->size;
  if (strcmp(x->vtbl->name, "tcp") != 0) {
    snprintf(err, cap, "transport name is \"%s\"", x->vtbl->name);
    return -1;
  }
  if (xchg(x, NULL, 0, "empty exchange", err, cap)) return -1;
  const size_t sizes[] = {0, 1, 1000000, big};
  for (uint32_t k = 0; k < 4; k++) {
    size_t sz = sizes[k];
    if (k == 3 && !big) continue;
    uint32_t next = (r + 1) % n, prev = (r + n - 1) % n;
    unsigned char* s = malloc(sz + 1);
    unsigned char* d = malloc(sz + 1);
    if (!s || !d) {
      free(s);
      free(d);
      snprintf(err, cap, "out of memory");
      return -1;
    }
    fill(s, sz, r, next, 100 + k);
    memset(d, 0xee, sz + 1);
    lk_xop_t ops[2] = {{false, prev, d, sz}, {true, next, s, sz}};
    int rc = xchg(x, ops, 2, "ring", err, cap);
    if (!rc) rc = check(d, sz, prev, r, 100 + k, err, cap);
    if (!rc && d[sz] != 0xee) {
      snprintf(err, cap, "ring of %zu bytes: the byte after the buffer was written", sz);
      rc = -1;
    }
    free(s);
    free(d);
    if (rc) return rc;
  }
  enum { K = 4 };
  for (uint32_t round = 0; round < 3; round++) {
    size_t nops = (size_t)2 * K * n;
    lk_xop_t* ops = calloc(nops, sizeof *ops);
    unsigned char** bufs = calloc(nops, sizeof *bufs);
    int rc = ops && bufs ? 0 : -1;
    size_t m = 0;
    for (uint32_t k = 0; k < K && !rc; k++) {
      for (uint32_t j = 0; j < n && !rc; j++) {
        uint32_t to = (r + j) % n, from = (r + n - j) % n;
        uint32_t tag_to = round * 16 + k, tag_from = round * 16 + k;
        size_t sz_to = k == 2 ? 0 : 1 + mix(((uint64_t)r << 32) ^ (to << 8) ^ tag_to) % 70000;
        size_t sz_from =
            k == 2 ? 0 : 1 + mix(((uint64_t)from << 32) ^ (r << 8) ^ tag_from) % 70000;
        unsigned char* s = malloc(sz_to + 1);
        unsigned char* d = malloc(sz_from + 1);
        bufs[m] = s;
        ops[m++] = (lk_xop_t){true, to, s, sz_to};
        bufs[m] = d;
        ops[m++] = (lk_xop_t){false, from, d, sz_from};
        if (!s || !d) rc = -1;
        else fill(s, sz_to, r, to, tag_to);
      }
    }
    if (rc) snprintf(err, cap, "out of memory");
    if (!rc) rc = xchg(x, ops, m, "all-to-all", err, cap);
    for (size_t i = 0; i < m && !rc; i++)
      if (!ops[i].is_send)
        rc = check(ops[i].buf, ops[i].bytes, ops[i].peer, r, round * 16 + (uint32_t)(i / (2 * n)),
                   err, cap);
    for (size_t i = 0; i < m; i++) free(bufs[i]);
    free(ops);
    free(bufs);
    if (rc) return rc;
  }
  return 0;
}

/* ---- groups in threads ------------------------------------------------------- */

typedef struct trank trank_t;
typedef int (*body_fn)(trank_t* t);

struct trank {
  const lk_xport_id_t* id;
  uint32_t nranks, rank;   /* as passed to join */
  double join_timeout;
  body_fn body;
  void* arg;
  size_t big;
  lk_xport_t* x;
  lightos_status_t join_status;
  char join_msg[1024];
  double join_secs;
  char err[1024];          /* set by a failing body */
};

static void* trank_main(void* a) {
  trank_t* t = a;
  uint64_t t0 = lk_now_ns();
  t->join_status = lk_tcp_join(t->id, t->nranks, t->rank, deadline_in(t->join_timeout), &t->x);
  t->join_secs = since(t0);
  if (t->join_status) {
    snprintf(t->join_msg, sizeof t->join_msg, "%s", lightos_last_error()->message);
    return NULL;
  }
  if (t->body && t->body(t) != 0 && !t->err[0]) snprintf(t->err, sizeof t->err, "failed");
  t->x->vtbl->destroy(t->x);
  t->x = NULL;
  return NULL;
}

/* Runs ranks[i] in threads; each joins (as its fields say) and runs its body. */
static void run_threads(trank_t* ranks, uint32_t n) {
  pthread_t tid[16];
  for (uint32_t i = 0; i < n; i++) pthread_create(&tid[i], NULL, trank_main, &ranks[i]);
  for (uint32_t i = 0; i < n; i++) pthread_join(tid[i], NULL);
}

static void init_ranks(trank_t* t, uint32_t n, const lk_xport_id_t* id, body_fn body, void* arg) {
  memset(t, 0, n * sizeof *t);
  for (uint32_t i = 0; i < n; i++) {
    t[i].id = id;
    t[i].nranks = n;
    t[i].rank = i;
    t[i].join_timeout = 20;
    t[i].body = body;
    t[i].arg = arg;
  }
}

static int body_patterns(trank_t* t) { return run_patterns(t->x, t->big, t->err, sizeof t->err); }

static void check_ranks_ok(const trank_t* t, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    LK_CHECK_MSG(t[i].join_status == LIGHTOS_SUCCESS, "rank %u: join: %s (%s)", i,
                 lightos_status_string(t[i].join_status), t[i].join_msg);
    LK_CHECK_MSG(!t[i].err[0], "rank %u: %s", i, t[i].err);
  }
}

/* Thread groups of 2, 3, 4 ranks; every descriptor is given back (the
 * rendezvous thread closes its own shortly after answering). */
static void test_threads_patterns_no_leaks(void) {
  int fds0 = count_fds();
  LK_REQUIRE(fds0 > 0);
  for (uint32_t n = 2; n <= 4; n++) {
    lk_xport_id_t id;
    LK_REQUIRE_OK(lk_tcp_new_id(&id));
    LK_CHECK_INT(id.magic, LK_XPORT_ID_MAGIC);
    LK_CHECK_INT(id.kind, LK_XPORT_TCP);
    trank_t t[4];
    init_ranks(t, n, &id, body_patterns, NULL);
    for (uint32_t i = 0; i < n; i++) t[i].big = 8 * MiB;
    run_threads(t, n);
    check_ranks_ok(t, n);
  }
  int fds1 = count_fds();
  for (int i = 0; i < 300 && fds1 > fds0; i++) {
    nap(0.01);
    fds1 = count_fds();
  }
  LK_CHECK_MSG(fds1 == fds0, "%d descriptors open before, %d after", fds0, fds1);
}

/* A group of one: messages to self, in posting order. */
static void test_one_rank_group(void) {
  lk_xport_id_t id;
  LK_REQUIRE_OK(lk_tcp_new_id(&id));
  lk_xport_t* x = NULL;
  LK_REQUIRE_OK(lk_tcp_join(&id, 1, 0, deadline_in(10), &x));
  char err[512] = "";
  LK_CHECK_MSG(run_patterns(x, 0, err, sizeof err) == 0, "%s", err);
  x->vtbl->destroy(x);
  /* The group is complete: its rendezvous is gone. */
  uint64_t t0 = lk_now_ns();
  LK_CHECK_STATUS(lk_tcp_join(&id, 1, 0, deadline_in(10), &x), LIGHTOS_UNAVAILABLE);
  LK_CHECK(strstr(lightos_last_error()->message, "connection refused") != NULL);
  LK_CHECK(since(t0) < 5);
  LK_CHECK(x == NULL);
}

/* The default address: the first non-loopback interface (or 127.0.0.1). */
static void test_default_address(void) {
  char saved[64] = "";
  const char* v = getenv("LIGHTOS_COMM_ADDR");
  if (v) snprintf(saved, sizeof saved, "%s", v);
  unsetenv("LIGHTOS_COMM_ADDR");
  lk_xport_id_t id;
  lightos_status_t s = lk_tcp_new_id(&id);
  if (saved[0]) setenv("LIGHTOS_COMM_ADDR", saved, 1);
  LK_REQUIRE(s == LIGHTOS_SUCCESS);
  LK_CHECK(id.data[0] != 0);
  trank_t t[2];
  init_ranks(t, 2, &id, body_patterns, NULL);
  run_threads(t, 2);
  check_ranks_ok(t, 2);
}

/* ---- groups in processes ----------------------------------------------------- */

typedef int (*child_fn)(lk_xport_t* x, void* arg, char* err, size_t cap);

/* Forks a process per rank; each joins and exits with child()'s result.
 * status[r] gets the wait status (-1: did not end within a minute). */
static bool run_forked(uint32_t n, child_fn child, void* arg, int* status) {
  lk_xport_id_t id;
  lightos_status_t s = lk_tcp_new_id(&id);
  if (s != LIGHTOS_SUCCESS) {
    lk_test_fail(__FILE__, __LINE__, "new_id: %s", lightos_last_error()->message);
    return false;
  }
  pid_t pid[16];
  fflush(stdout);
  fflush(stderr);
  for (uint32_t r = 0; r < n; r++) {
    pid[r] = fork();
    if (pid[r] == 0) {
      lk_xport_t* x = NULL;
      lightos_status_t js = lk_tcp_join(&id, n, r, deadline_in(30), &x);
      if (js) {
        fprintf(stderr, "rank %u: join: %s (%s)\n", r, lightos_status_string(js),
                lightos_last_error()->message);
        _exit(90);
      }
      char err[1024] = "";
      int rc = child(x, arg, err, sizeof err);
      if (rc && err[0]) fprintf(stderr, "rank %u: %s\n", r, err);
      x->vtbl->destroy(x);
      _exit(rc);
    }
    if (pid[r] < 0) {
      lk_test_fail(__FILE__, __LINE__, "fork failed");
      for (uint32_t i = 0; i < r; i++) kill(pid[i], SIGKILL);
      for (uint32_t i = 0; i < r; i++) waitpid(pid[i], NULL, 0);
      return false;
    }
  }
  uint64_t t0 = lk_now_ns();
  uint32_t left = n;
  for (uint32_t r = 0; r < n; r++) status[r] = -1;
  while (left) {
    for (uint32_t r = 0; r < n; r++) {
      if (status[r] != -1) continue;
      int st = 0;
      pid_t w = waitpid(pid[r], &st, WNOHANG);
      if (w == pid[r]) {
        status[r] = st;
        left--;
      }
    }
    if (left && since(t0) > 60) {
      for (uint32_t r = 0; r < n; r++)
        if (status[r] == -1) {
          kill(pid[r], SIGKILL);
          waitpid(pid[r], NULL, 0);
        }
      lk_test_fail(__FILE__, __LINE__, "ranks still running after 60 s");
      return false;
    }
    if (left) nap(0.002);
  }
  return true;
}

static bool exited_ok(int st) { return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0; }

static int child_patterns(lk_xport_t* x, void* arg, char* err, size_t cap) {
  return run_patterns(x, *(const size_t*)arg, err, cap) ? 1 : 0;
}

static void test_forked_patterns(void) {
  for (uint32_t n = 2; n <= 4; n++) {
    size_t big = n == 3 ? 4 * MiB : 64 * MiB;
    int st[4];
    if (!run_forked(n, child_patterns, &big, st)) return;
    for (uint32_t r = 0; r < n; r++)
      LK_CHECK_MSG(exited_ok(st[r]), "%u ranks: rank %u ended with status 0x%x", n, r, st[r]);
  }
}

/* One rank dies mid-run (SIGKILL, or _exit); every other rank's exchange
 * fails within moments, long before its deadline: each rank waits on its
 * ring predecessor, so the failure travels the ring. */
typedef struct kill_arg {
  uint32_t victim;
  bool sigkill;
} kill_arg_t;

static int child_killed(lk_xport_t* x, void* arg, char* err, size_t cap) {
  const kill_arg_t* k = arg;
  const uint32_t r = x->rank, n = x->size;
  unsigned char small[1000];
  memset(small, (int)r, sizeof small);
  unsigned char in[1000];
  lk_xop_t warm[2] = {{true, (r + 1) % n, small, sizeof small},
                      {false, (r + n - 1) % n, in, sizeof in}};
  if (xchg(x, warm, 2, "warm-up ring", err, cap)) return 1;
  if (r == k->victim) {
    nap(0.1);
    if (k->sigkill) raise(SIGKILL);
    _exit(0);
  }
  size_t big = 64 * MiB;
  unsigned char* d = malloc(MiB);
  unsigned char* s = malloc(big);
  if (!d || !s) {
    free(d);
    free(s);
    return 2;
  }
  memset(s, 1, big);
  uint32_t prev = (r + n - 1) % n;
  lk_xop_t ops[2] = {{false, prev, d, MiB}, {true, prev, s, big}};
  /* The victim's successor only receives; the next rank also pushes 64 MiB
   * that nobody reads (it learns of the failure as a writer). */
  size_t nops = r == (k->victim + 2) % n ? 2 : 1;
  uint64_t t0 = lk_now_ns();
  lightos_status_t st = x->vtbl->exchange(x, ops, nops, deadline_in(30));
  double secs = since(t0);
  const char* msg = lightos_last_error()->message;
  int rc = 0;
  char want[64];
  snprintf(want, sizeof want, "rank %u is gone", prev);
  if (st != LIGHTOS_ABORTED || !strstr(msg, want)) {
    snprintf(err, cap, "expected LIGHTOS_ABORTED naming \"%s\", got %s (%s)", want,
             lightos_status_string(st), msg);
    rc = 3;
  } else if (secs > 10) {
    snprintf(err, cap, "the failure took %.2f s to arrive", secs);
    rc = 4;
  } else if (x->vtbl->exchange(x, ops, 1, deadline_in(30)) != LIGHTOS_ABORTED) {
    snprintf(err, cap, "a later exchange did not fail at once");
    rc = 5;
  }
  free(d);
  free(s);
  return rc;
}

static void test_killed_rank(void) {
  const kill_arg_t cases[] = {{3, true}, {1, false}};
  for (size_t c = 0; c < 2; c++) {
    int st[4];
    if (!run_forked(4, child_killed, (void*)&cases[c], st)) return;
    for (uint32_t r = 0; r < 4; r++) {
      if (r == cases[c].victim) {
        if (cases[c].sigkill)
          LK_CHECK_MSG(st[r] != -1 && WIFSIGNALED(st[r]) && WTERMSIG(st[r]) == SIGKILL,
                       "victim rank %u ended with status 0x%x", r, st[r]);
        else
          LK_CHECK_MSG(exited_ok(st[r]), "victim rank %u ended with status 0x%x", r, st[r]);
      } else {
        LK_CHECK_MSG(exited_ok(st[r]), "%s of rank %u: rank %u ended with status 0x%x",
                     cases[c].sigkill ? "SIGKILL" : "_exit", cases[c].victim, r, st[r]);
      }
    }
  }
}

/* ---- failures, in threads ------------------------------------------------------ */

typedef struct shared {
  atomic_int step;
} shared_t;

static void wait_step(shared_t* s, int step) {
  for (int i = 0; i < 3000 && atomic_load(&s->step) < step; i++) nap(0.002);
}

/* A new TCP group of n ranks in threads, each running body with one shared
 * step counter; every rank must join and succeed. */
static void run_shared(uint32_t n, body_fn body) {
  lk_xport_id_t id;
  LK_REQUIRE_OK(lk_tcp_new_id(&id));
  shared_t sh;
  atomic_init(&sh.step, 0);
  trank_t t[8];
  init_ranks(t, n, &id, body, &sh);
  run_threads(t, n);
  check_ranks_ok(t, n);
}


/* Rank 1 receives 200 bytes where rank 0 sends 100. */
static int body_mismatch(trank_t* t) {
  lk_xport_t* x = t->x;
  unsigned char buf[300];
  memset(buf, 7, sizeof buf);
  if (t->rank == 0) {
    lk_xop_t op = {true, 1, buf, 100};
    if (x->vtbl->exchange(x, &op, 1, deadline_in(20)) != LIGHTOS_SUCCESS) {
      snprintf(t->err, sizeof t->err, "rank 0: the send failed: %s",
               lightos_last_error()->message);
      return 1;
    }
    /* Rank 1 fails, so rank 0's next exchange does too, at once. */
    lk_xop_t back = {false, 1, buf, 8};
    uint64_t t0 = lk_now_ns();
    lightos_status_t s = x->vtbl->exchange(x, &back, 1, deadline_in(20));
    if (s != LIGHTOS_ABORTED || !strstr(lightos_last_error()->message, "rank 1 is gone") ||
        since(t0) > 5) {
      snprintf(t->err, sizeof t->err, "rank 0: expected \"rank 1 is gone\" soon, got %s (%s) "
               "after %.2f s", lightos_status_string(s), lightos_last_error()->message,
               since(t0));
      return 1;
    }
    return 0;
  }
  lk_xop_t op = {false, 0, buf, 200};
  lightos_status_t s = x->vtbl->exchange(x, &op, 1, deadline_in(20));
  const char* want = "rank 1 expected 200 bytes from rank 0, got 100";
  if (s != LIGHTOS_INVALID_ARGUMENT || !strstr(lightos_last_error()->message, want)) {
    snprintf(t->err, sizeof t->err, "rank 1: expected \"%s\", got %s (%s)", want,
             lightos_status_string(s), lightos_last_error()->message);
    return 1;
  }
  lightos_clear_error();
  s = x->vtbl->exchange(x, &op, 1, deadline_in(20));
  if (s != LIGHTOS_INVALID_ARGUMENT || !strstr(lightos_last_error()->message, want)) {
    snprintf(t->err, sizeof t->err, "rank 1: a later exchange gave %s (%s)",
             lightos_status_string(s), lightos_last_error()->message);
    return 1;
  }
  return 0;
}

static void test_length_mismatch(void) {
  lk_xport_id_t id;
  LK_REQUIRE_OK(lk_tcp_new_id(&id));
  trank_t t[2];
  init_ranks(t, 2, &id, body_mismatch, NULL);
  run_threads(t, 2);
  check_ranks_ok(t, 2);
}

/* Rank 0 waits for a message rank 1 never sends: TIMEOUT naming rank 1;
 * rank 1 then finds rank 0 gone. */
static int body_timeout(trank_t* t) {
  lk_xport_t* x = t->x;
  shared_t* sh = t->arg;
  unsigned char buf[100];
  if (t->rank == 0) {
    lk_xop_t op = {false, 1, buf, sizeof buf};
    uint64_t t0 = lk_now_ns();
    lightos_status_t s = x->vtbl->exchange(x, &op, 1, deadline_in(0.3));
    double secs = since(t0);
    const char* msg = lightos_last_error()->message;
    atomic_store(&sh->step, 1);
    if (s != LIGHTOS_TIMEOUT || !strstr(msg, "rank 1 (receive: 0 of 100 bytes")) {
      snprintf(t->err, sizeof t->err, "rank 0: expected a timeout naming rank 1, got %s (%s)",
               lightos_status_string(s), msg);
      return 1;
    }
    if (secs < 0.29 || secs > 5) {
      snprintf(t->err, sizeof t->err, "rank 0: the 0.3 s timeout came after %.3f s", secs);
      return 1;
    }
    return 0;
  }
  wait_step(sh, 1);
  lk_xop_t op = {false, 0, buf, sizeof buf};
  uint64_t t0 = lk_now_ns();
  lightos_status_t s = x->vtbl->exchange(x, &op, 1, deadline_in(20));
  if (s != LIGHTOS_ABORTED || !strstr(lightos_last_error()->message, "rank 0 is gone") ||
      since(t0) > 5) {
    snprintf(t->err, sizeof t->err, "rank 1: expected \"rank 0 is gone\" soon, got %s (%s)",
             lightos_status_string(s), lightos_last_error()->message);
    return 1;
  }
  return 0;
}

static void test_peer_never_posts(void) { run_shared(2, body_timeout); }

static void* aborter(void* a) {
  lk_xport_t* x = a;
  nap(0.2);
  x->vtbl->abort(x, "stopped by the test");
  x->vtbl->abort(x, "twice");
  return NULL;
}

/* abort() from another thread wakes rank 0's blocked exchange; rank 1's
 * exchange then fails too. */
static int body_abort(trank_t* t) {
  lk_xport_t* x = t->x;
  unsigned char buf[64];
  lk_xop_t op = {false, 1 - t->rank, buf, sizeof buf};
  uint64_t t0 = lk_now_ns();
  if (t->rank == 0) {
    pthread_t th;
    pthread_create(&th, NULL, aborter, x);
    lightos_status_t s = x->vtbl->exchange(x, &op, 1, deadline_in(20));
    double secs = since(t0);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", lightos_last_error()->message);
    pthread_join(th, NULL);
    if (s != LIGHTOS_ABORTED || !strstr(msg, "stopped by the test") || secs > 5) {
      snprintf(t->err, sizeof t->err, "rank 0: expected the abort, got %s (%s) after %.2f s",
               lightos_status_string(s), msg, secs);
      return 1;
    }
    if (x->vtbl->exchange(x, &op, 1, deadline_in(20)) != LIGHTOS_ABORTED) {
      snprintf(t->err, sizeof t->err, "rank 0: an exchange after abort did not fail");
      return 1;
    }
    return 0;
  }
  lightos_status_t s = x->vtbl->exchange(x, &op, 1, deadline_in(20));
  if (s != LIGHTOS_ABORTED || !strstr(lightos_last_error()->message, "rank 0 is gone") ||
      since(t0) > 5) {
    snprintf(t->err, sizeof t->err, "rank 1: expected \"rank 0 is gone\" soon, got %s (%s)",
             lightos_status_string(s), lightos_last_error()->message);
    return 1;
  }
  return 0;
}

static void test_abort_from_thread(void) {
  lk_xport_id_t id;
  LK_REQUIRE_OK(lk_tcp_new_id(&id));
  trank_t t[2];
  init_ranks(t, 2, &id, body_abort, NULL);
  run_threads(t, 2);
  check_ranks_ok(t, 2);
}

/* abort() on an endpoint no exchange is running on: the peers still learn
 * of it at once (rank 0 destroys its endpoint only after rank 1 is done). */
static int body_abort_idle(trank_t* t) {
  lk_xport_t* x = t->x;
  shared_t* sh = t->arg;
  unsigned char buf[64];
  if (t->rank == 0) {
    nap(0.1);
    x->vtbl->abort(x, NULL);
    wait_step(sh, 1);
    lk_xop_t op = {true, 1, buf, sizeof buf};
    lightos_status_t s = x->vtbl->exchange(x, &op, 1, deadline_in(20));
    if (s != LIGHTOS_ABORTED || !strstr(lightos_last_error()->message, "aborted")) {
      snprintf(t->err, sizeof t->err, "rank 0: expected LIGHTOS_ABORTED, got %s (%s)",
               lightos_status_string(s), lightos_last_error()->message);
      return 1;
    }
    return 0;
  }
  lk_xop_t op = {false, 0, buf, sizeof buf};
  uint64_t t0 = lk_now_ns();
  lightos_status_t s = x->vtbl->exchange(x, &op, 1, deadline_in(20));
  atomic_store(&sh->step, 1);
  if (s != LIGHTOS_ABORTED || !strstr(lightos_last_error()->message, "rank 0 is gone") ||
      since(t0) > 5) {
    snprintf(t->err, sizeof t->err, "rank 1: expected \"rank 0 is gone\" soon, got %s (%s)",
             lightos_status_string(s), lightos_last_error()->message);
    return 1;
  }
  return 0;
}

static void test_abort_idle(void) { run_shared(2, body_abort_idle); }

/* peer_lost: false while every peer is connected (also after exchanges);
 * once rank 2 destroys its endpoint, true on ranks 0 and 1 within a
 * second, naming rank 2, without reading anything (an exchange between
 * ranks 0 and 1 still works afterwards). */
static int body_peer_lost(trank_t* t) {
  lk_xport_t* x = t->x;
  shared_t* sh = t->arg;
  char why[256] = "";
  unsigned char buf[16] = {0};
  if (!x->vtbl->peer_lost) {
    snprintf(t->err, sizeof t->err, "tcp has no peer_lost");
    return 1;
  }
  /* Everybody exchanges once, then nobody is lost. */
  lk_xop_t ops[2] = {{true, (t->rank + 1) % 3, buf, 8}, {false, (t->rank + 2) % 3, buf + 8, 8}};
  if (x->vtbl->exchange(x, ops, 2, deadline_in(20))) {
    snprintf(t->err, sizeof t->err, "rank %u: exchange: %s", t->rank, lightos_last_error()->message);
    return 1;
  }
  if (x->vtbl->peer_lost(x, why, sizeof why)) {
    snprintf(t->err, sizeof t->err, "rank %u: lost a peer while all are there: %s", t->rank, why);
    return 1;
  }
  atomic_fetch_add(&sh->step, 1);
  if (t->rank == 2) {
    wait_step(sh, 3);
    return 0; /* the caller destroys the endpoint */
  }
  uint64_t t0 = lk_now_ns();
  bool lost = false;
  while (!(lost = x->vtbl->peer_lost(x, why, sizeof why)) && since(t0) < 10) nap(0.005);
  /* Both look before either leaves (a rank's exit would be seen too). */
  atomic_fetch_add(&sh->step, 1);
  wait_step(sh, 5);
  if (!lost || since(t0) > 5 || !strstr(why, "rank 2")) {
    snprintf(t->err, sizeof t->err, "rank %u: rank 2's exit seen: %d after %.2f s (%s)", t->rank,
             lost, since(t0), why);
    return 1;
  }
  lk_xop_t op = {t->rank == 0, t->rank == 0 ? 1u : 0u, buf, 8};
  if (x->vtbl->exchange(x, &op, 1, deadline_in(20))) {
    snprintf(t->err, sizeof t->err, "rank %u: exchange after rank 2 left: %s", t->rank,
             lightos_last_error()->message);
    return 1;
  }
  return 0;
}

static void test_peer_lost(void) { run_shared(3, body_peer_lost); }

/* Joins that cannot succeed fail on every rank, quickly, saying why. */
static void expect_join_failure(trank_t* t, uint32_t n, lightos_status_t want, const char* text,
                                double max_secs) {
  for (uint32_t i = 0; i < n; i++) {
    LK_CHECK_MSG(t[i].join_status == want && strstr(t[i].join_msg, text),
                 "rank %u (joined as %u of %u): expected %s with \"%s\", got %s (%s)", i,
                 t[i].rank, t[i].nranks, lightos_status_string(want), text,
                 lightos_status_string(t[i].join_status), t[i].join_msg);
    LK_CHECK_MSG(t[i].join_secs < max_secs, "rank %u: the join took %.2f s to fail", i,
                 t[i].join_secs);
  }
}

static void test_join_failures(void) {
  lk_xport_id_t id;
  trank_t t[3];

  /* The ranks disagree on the group size. */
  LK_REQUIRE_OK(lk_tcp_new_id(&id));
  init_ranks(t, 3, &id, NULL, NULL);
  t[2].nranks = 4;
  run_threads(t, 3);
  expect_join_failure(t, 3, LIGHTOS_INVALID_ARGUMENT, "disagree on the group size", 5);

  /* A rank joins twice. */
  LK_REQUIRE_OK(lk_tcp_new_id(&id));
  init_ranks(t, 3, &id, NULL, NULL);
  t[2].rank = 1;
  run_threads(t, 3);
  expect_join_failure(t, 3, LIGHTOS_INVALID_ARGUMENT, "rank 1 joined the group twice", 5);

  /* Rank 2 never comes. */
  LK_REQUIRE_OK(lk_tcp_new_id(&id));
  init_ranks(t, 2, &id, NULL, NULL);
  t[0].nranks = t[1].nranks = 3;
  t[0].join_timeout = t[1].join_timeout = 0.5;
  run_threads(t, 2);
  expect_join_failure(t, 2, LIGHTOS_TIMEOUT, "never joined: rank 2", 4);

  /* A stale id (another group's nonce). */
  LK_REQUIRE_OK(lk_tcp_new_id(&id));
  lk_xport_id_t stale = id;
  stale.nonce ^= 1;
  lk_xport_t* x = NULL;
  LK_CHECK_STATUS(lk_tcp_join(&stale, 1, 0, deadline_in(10), &x), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, "stale or foreign id") != NULL);
  LK_CHECK(x == NULL);
  /* ... leaves the real group alone. */
  LK_CHECK_STATUS(lk_tcp_join(&id, 1, 0, deadline_in(10), &x), LIGHTOS_SUCCESS);
  if (x) x->vtbl->destroy(x);
}

/* ---- bad input -------------------------------------------------------------------- */

static void expect_env_rejected(const char* name, const char* value, const char* text) {
  char saved[128] = "";
  const char* v = getenv(name);
  if (v) snprintf(saved, sizeof saved, "%s", v);
  setenv(name, value, 1);
  lk_xport_id_t id;
  lightos_status_t s = lk_tcp_new_id(&id);
  const char* msg = lightos_last_error()->message;
  LK_CHECK_MSG(s == LIGHTOS_INVALID_ARGUMENT && strstr(msg, name) && strstr(msg, text),
               "%s=%s: expected LIGHTOS_INVALID_ARGUMENT naming it, got %s (%s)", name, value,
               lightos_status_string(s), msg);
  if (saved[0]) setenv(name, saved, 1);
  else unsetenv(name);
}

static void test_bad_ids_and_args(void) {
  lk_xport_t* x = (lk_xport_t*)&x; /* must come back NULL */
  LK_CHECK_STATUS(lk_tcp_new_id(NULL), LIGHTOS_INVALID_ARGUMENT);

  lk_xport_id_t id;
  memset(&id, 0, sizeof id);
  id.magic = LK_XPORT_ID_MAGIC;
  id.kind = LK_XPORT_TCP;
  id.data[0] = 127;
  id.data[3] = 1;
  id.data[4] = 0;
  id.data[5] = 9; /* port 9: nothing is asked of it */
  id.data[6] = 1;

  LK_CHECK_STATUS(lk_tcp_join(NULL, 2, 0, deadline_in(5), &x), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(x == NULL);
  LK_CHECK_STATUS(lk_tcp_join(&id, 2, 0, deadline_in(5), NULL), LIGHTOS_INVALID_ARGUMENT);

  lk_xport_id_t bad = id;
  bad.magic = 0x12345678u;
  LK_CHECK_STATUS(lk_tcp_join(&bad, 2, 0, deadline_in(5), &x), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, "magic") != NULL);
  bad = id;
  bad.kind = LK_XPORT_INPROC;
  LK_CHECK_STATUS(lk_tcp_join(&bad, 2, 0, deadline_in(5), &x), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, "kind 1") != NULL);
  bad = id;
  bad.data[6] = 77;
  LK_CHECK_STATUS(lk_tcp_join(&bad, 2, 0, deadline_in(5), &x), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, "version 77") != NULL);
  bad = id;
  bad.data[4] = bad.data[5] = 0;
  LK_CHECK_STATUS(lk_tcp_join(&bad, 2, 0, deadline_in(5), &x), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, "no rendezvous address") != NULL);

  LK_CHECK_STATUS(lk_tcp_join(&id, 0, 0, deadline_in(5), &x), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, "nranks is 0") != NULL);
  LK_CHECK_STATUS(lk_tcp_join(&id, 2, 2, deadline_in(5), &x), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, "rank is 2") != NULL);
  LK_CHECK(x == NULL);

  expect_env_rejected("LIGHTOS_COMM_ADDR", "not-an-address", "IPv4");
  expect_env_rejected("LIGHTOS_COMM_ADDR", "300.1.2.3", "IPv4");
  expect_env_rejected("LIGHTOS_COMM_ADDR", "203.0.113.7", "no interface");
  expect_env_rejected("LIGHTOS_COMM_PORT", "70000", "1..65535");
  expect_env_rejected("LIGHTOS_COMM_PORT", "http", "1..65535");
  expect_env_rejected("LIGHTOS_COMM_TIMEOUT", "-3", "seconds");

  /* Bad operations fail the endpoint (so that its peers learn of it). */
  unsigned char buf[32];
  const struct {
    lk_xop_t op;
    const char* text;
  } cases[] = {
      {{true, 5, buf, 4}, "names peer 5 in a group of 1"},
      {{false, 0, NULL, 4}, "NULL buffer"},
      {{true, 0, buf, 10}, "1 sends to itself and 0 receives"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    LK_REQUIRE_OK(lk_tcp_new_id(&id));
    LK_REQUIRE_OK(lk_tcp_join(&id, 1, 0, deadline_in(10), &x));
    LK_CHECK_STATUS(x->vtbl->exchange(x, &cases[c].op, 1, deadline_in(5)),
                    LIGHTOS_INVALID_ARGUMENT);
    LK_CHECK_MSG(strstr(lightos_last_error()->message, cases[c].text), "expected \"%s\" in \"%s\"",
                 cases[c].text, lightos_last_error()->message);
    lk_xop_t ok = {true, 0, buf, 0};
    LK_CHECK_STATUS(x->vtbl->exchange(x, &ok, 1, deadline_in(5)), LIGHTOS_INVALID_ARGUMENT);
    x->vtbl->destroy(x);
  }
  /* A length mismatch between messages to self. */
  LK_REQUIRE_OK(lk_tcp_new_id(&id));
  LK_REQUIRE_OK(lk_tcp_join(&id, 1, 0, deadline_in(10), &x));
  lk_xop_t two[2] = {{true, 0, buf, 10}, {false, 0, buf + 10, 20}};
  LK_CHECK_STATUS(x->vtbl->exchange(x, two, 2, deadline_in(5)), LIGHTOS_INVALID_ARGUMENT);
  LK_CHECK(strstr(lightos_last_error()->message, "rank 0 expected 20 bytes from rank 0, got 10") !=
           NULL);
  x->vtbl->destroy(x);
}

int main(int argc, char** argv) {
  (void)argc;
  lk_t.program = argv[0];
  setenv("LIGHTOS_COMM_ADDR", "127.0.0.1", 1);
  setenv("LIGHTOS_COMM_TIMEOUT", "5", 1);
  LK_RUN(test_threads_patterns_no_leaks); /* first: no rendezvous of another test is open */
  LK_RUN(test_one_rank_group);
  LK_RUN(test_default_address);
  LK_RUN(test_forked_patterns);
  LK_RUN(test_killed_rank);
  LK_RUN(test_length_mismatch);
  LK_RUN(test_peer_never_posts);
  LK_RUN(test_abort_from_thread);
  LK_RUN(test_abort_idle);
  LK_RUN(test_peer_lost);
  LK_RUN(test_join_failures);
  LK_RUN(test_bad_ids_and_args);
  return lk_test_finish();
}
