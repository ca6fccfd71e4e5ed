/* Collectives across processes started by mpirun: the communicator comes
 * from MPI_COMM_WORLD through lightos/comm_mpi.h.  Every collective at
 * every level against values every rank can compute, the ranks' bits
 * compared with MPI, and one hash across 1, 2 and 4 ranks (the same 8
 * contributions split over them) at TOPOLOGY and STRICT.
 * The bytes travel over MPI (MPI_THREAD_MULTIPLE), or over TCP with
 * LIGHTOS_COMM_MPI=0.
 * Run: mpirun -np 4 --oversubscribe tests/test_comm_mpi */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "lightos/comm_mpi.h"
#include "lightos/lightos.h"

static int g_rank, g_size, g_fail;

#define CHECK(cond, ...)                                            \
  do {                                                              \
    if (!(cond)) {                                                  \
      fprintf(stderr, "FAIL rank %d [%s:%d]: ", g_rank, __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                                 \
      fputc('\n', stderr);                                          \
      g_fail++;                                                     \
    }                                                               \
  } while (0)

#define NELEM 3001
#define NCONTRIB 8

static void contribution(int k, float* p) {
  uint64_t s = 0x9abcdefull * (uint64_t)(k + 3);
  for (size_t i = 0; i < NELEM; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    float m = (float)((int64_t)((s >> 33) % 2000001) - 1000000) / 1e6f;
    p[i] = ldexpf(m, (int)((s >> 20) % 41) - 20);
  }
}

static lightos_status_t finish(lightos_context_t ctx) {
  lightos_queue_t q;
  lightos_context_default_queue(ctx, &q);
  return lightos_queue_finish(q);
}

/* allreduce_multi over a sub-communicator of `n` ranks (MPI split): rank r
 * of it holds contributions [r*8/n, (r+1)*8/n).  Returns the hash. */
static void split_hash(lightos_context_t ctx, int n, lightos_determinism_t level, uint8_t d[32]) {
  MPI_Comm sub;
  int in = g_rank < n;
  MPI_Comm_split(MPI_COMM_WORLD, in ? 0 : 1, g_rank, &sub);
  memset(d, 0, 32);
  if (in) {
    lightos_comm_config_t cfg;
    lightos_comm_config_default(&cfg);
    cfg.level = level;
    cfg.timeout_s = 60;
    lightos_comm_t comm;
    lightos_status_t s = lightos_comm_init_mpi(sub, ctx, &cfg, &comm);
    CHECK(!s, "init_mpi(%d ranks): %s", n, lightos_last_error()->message);
    if (!s) {
      int k = NCONTRIB / n;
      lightos_buffer_t b[NCONTRIB], out;
      float* h = malloc(NELEM * 4);
      for (int j = 0; j < k; ++j) {
        contribution(g_rank * k + j, h);
        lightos_buffer_alloc(ctx, NELEM * 4, 0, &b[j]);
        lightos_buffer_write(b[j], 0, NELEM * 4, h);
      }
      lightos_buffer_alloc(ctx, NELEM * 4, 0, &out);
      s = lightos_comm_allreduce_multi(b, (uint32_t)k, out, NELEM, LIGHTOS_DTYPE_F32,
                                       LIGHTOS_OP_SUM, comm, NULL);
      if (!s) s = lightos_buffer_read(out, 0, NELEM * 4, h);
      CHECK(!s, "allreduce_multi: %s", lightos_last_error()->message);
      lk_sha256(h, NELEM * 4, d);
      free(h);
      for (int j = 0; j < k; ++j) lightos_buffer_release(b[j]);
      lightos_buffer_release(out);
      lightos_comm_destroy(comm);
    }
  }
  MPI_Comm_free(&sub);
}

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  lightos_context_t ctx;
  if (lightos_context_create_from_uri("cpu", &ctx)) {
    fprintf(stderr, "rank %d: no cpu device: %s\n", g_rank, lightos_last_error()->message);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  const int n = g_size;
  for (lightos_determinism_t level = LIGHTOS_DETERMINISM_NONE; level <= LIGHTOS_DETERMINISM_STRICT; ++level) {
    lightos_comm_config_t cfg;
    lightos_comm_config_default(&cfg);
    cfg.level = level;
    cfg.timeout_s = 60;
    lightos_comm_t comm;
    lightos_status_t s = lightos_comm_init_mpi(MPI_COMM_WORLD, ctx, &cfg, &comm);
    CHECK(!s, "init_mpi: %s", lightos_last_error()->message);
    if (s) break;
    const char* tname = "";
    lightos_comm_transport(comm, &tname);
    const char* env = getenv("LIGHTOS_COMM_MPI");
    const char* want_t = provided == MPI_THREAD_MULTIPLE && !(env && env[0] == '0') ? "mpi" : "tcp";
    CHECK(!strcmp(tname, want_t), "transport %s, expected %s", tname, want_t);
    if (level == LIGHTOS_DETERMINISM_NONE && g_rank == 0) printf("test_comm_mpi: transport %s\n", tname);
    uint32_t r = 0, sz = 0;
    lightos_comm_rank(comm, &r);
    lightos_comm_size(comm, &sz);
    CHECK((int)r == g_rank && (int)sz == n, "rank/size %u/%u vs MPI %d/%d", r, sz, g_rank, n);
    const size_t cnt = 1000;
    int32_t* iv = malloc(cnt * n * 4);
    int32_t* ov = malloc(cnt * n * 4);
    lightos_buffer_t a, b;
    lightos_buffer_alloc(ctx, cnt * n * 4, 0, &a);
    lightos_buffer_alloc(ctx, cnt * n * 4, 0, &b);
    for (size_t i = 0; i < cnt * n; ++i) iv[i] = (int32_t)(g_rank * 100000 + (int)i);
    lightos_buffer_write(a, 0, cnt * n * 4, iv);
    /* allreduce sum (in place) */
    s = lightos_comm_allreduce(a, a, cnt, LIGHTOS_DTYPE_I32, LIGHTOS_OP_SUM, comm, NULL);
    if (!s) s = lightos_buffer_read(a, 0, cnt * 4, ov);
    CHECK(!s, "allreduce: %s", lightos_last_error()->message);
    for (size_t i = 0; i < cnt && !s; ++i) {
      int32_t want = 0;
      for (int p = 0; p < n; ++p) want += p * 100000 + (int32_t)i;
      if (ov[i] != want) { CHECK(0, "allreduce [%zu] %d vs %d", i, ov[i], want); break; }
    }
    /* allgather, reduce_scatter, alltoall, broadcast, reduce */
    lightos_buffer_write(a, 0, cnt * n * 4, iv);
    s = lightos_comm_allgather(a, b, cnt, LIGHTOS_DTYPE_I32, comm, NULL);
    if (!s) s = lightos_buffer_read(b, 0, cnt * n * 4, ov);
    for (int p = 0; p < n && !s; ++p)
      for (size_t i = 0; i < cnt; ++i)
        if (ov[p * cnt + i] != p * 100000 + (int32_t)i) { CHECK(0, "allgather part %d", p); p = n; break; }
    s = lightos_comm_alltoall(a, b, cnt, LIGHTOS_DTYPE_I32, comm, NULL);
    if (!s) s = lightos_buffer_read(b, 0, cnt * n * 4, ov);
    for (int p = 0; p < n && !s; ++p)
      for (size_t i = 0; i < cnt; ++i)
        if (ov[p * cnt + i] != p * 100000 + (int32_t)(g_rank * cnt + i)) { CHECK(0, "alltoall from %d", p); p = n; break; }
    s = lightos_comm_reduce_scatter(a, b, cnt, LIGHTOS_DTYPE_I32, LIGHTOS_OP_MAX, comm, NULL);
    if (!s) s = lightos_buffer_read(b, 0, cnt * 4, ov);
    for (size_t i = 0; i < cnt && !s; ++i)
      if (ov[i] != (n - 1) * 100000 + (int32_t)(g_rank * cnt + i)) { CHECK(0, "reduce_scatter [%zu]", i); break; }
    s = lightos_comm_broadcast(a, b, cnt, LIGHTOS_DTYPE_I32, (uint32_t)(n - 1), comm, NULL);
    if (!s) s = lightos_buffer_read(b, 0, cnt * 4, ov);
    for (size_t i = 0; i < cnt && !s; ++i)
      if (ov[i] != (n - 1) * 100000 + (int32_t)i) { CHECK(0, "broadcast [%zu]", i); break; }
    s = lightos_comm_reduce(a, g_rank == 0 ? b : NULL, cnt, LIGHTOS_DTYPE_I32, LIGHTOS_OP_MIN, 0, comm, NULL);
    if (!s) s = finish(ctx);
    if (!s && g_rank == 0) {
      lightos_buffer_read(b, 0, cnt * 4, ov);
      for (size_t i = 0; i < cnt; ++i)
        if (ov[i] != (int32_t)i) { CHECK(0, "reduce [%zu]", i); break; }
    }
    CHECK(!s, "collectives at %s: %s", lightos_determinism_name(level), lightos_last_error()->message);
    /* f32 allreduce: every rank's bits equal (compared through MPI). */
    float* f = malloc(NELEM * 4);
    contribution(g_rank, f);
    lightos_buffer_t fb;
    lightos_buffer_alloc(ctx, NELEM * 4, 0, &fb);
    lightos_buffer_write(fb, 0, NELEM * 4, f);
    s = lightos_comm_allreduce(fb, fb, NELEM, LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, comm, NULL);
    if (!s) s = lightos_buffer_read(fb, 0, NELEM * 4, f);
    uint8_t d[32], d0[32];
    lk_sha256(f, NELEM * 4, d);
    memcpy(d0, d, 32);
    MPI_Bcast(d0, 32, MPI_BYTE, 0, MPI_COMM_WORLD);
    CHECK(!s && !memcmp(d, d0, 32), "f32 allreduce at %s: bits differ from rank 0's",
          lightos_determinism_name(level));
    free(f);
    lightos_buffer_release(fb);
    s = lightos_comm_barrier(comm, NULL);
    if (!s) s = finish(ctx);
    CHECK(!s, "barrier: %s", lightos_last_error()->message);
    free(iv);
    free(ov);
    lightos_buffer_release(a);
    lightos_buffer_release(b);
    lightos_comm_destroy(comm);
  }
  /* One hash across 1, 2 and 4 ranks. */
  if (n >= 4) {
    for (lightos_determinism_t level = LIGHTOS_DETERMINISM_TOPOLOGY; level <= LIGHTOS_DETERMINISM_STRICT; ++level) {
      uint8_t h1[32], h2[32], h4[32];
      split_hash(ctx, 1, level, h1);
      split_hash(ctx, 2, level, h2);
      split_hash(ctx, 4, level, h4);
      MPI_Bcast(h1, 32, MPI_BYTE, 0, MPI_COMM_WORLD);
      MPI_Bcast(h2, 32, MPI_BYTE, 0, MPI_COMM_WORLD);
      CHECK(!memcmp(h1, h2, 32) && !memcmp(h1, h4, 32),
            "%s: 1, 2 and 4 ranks give different bits", lightos_determinism_name(level));
    }
  }
  lightos_context_release(ctx);
  int total = 0;
  MPI_Allreduce(&g_fail, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (g_rank == 0)
    printf("test_comm_mpi: %d ranks, %s\n", n, total ? "FAILED" : "all checks passed");
  MPI_Finalize();
  return total ? 1 : 0;
}
