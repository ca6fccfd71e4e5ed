/* Deterministic allreduce over several devices of one process.
 *
 *   allreduce_example [N] [cpu|cuda|any]
 *
 * Opens N devices (cpu: the CPU shown as N devices; cuda: the first N
 * CUDA devices; any: the first N devices of any backends, mixed), makes a
 * communicator per determinism level, and allreduces the same data on every
 * level.  It prints, per level, the transport and the SHA-256 of the result,
 * and checks that every rank holds the same bits and that the result is
 * close to the sum computed in double precision.  Run it with different N:
 * TOPOLOGY's hash is the same for N = 1, 2, 4 (the data is split over the
 * ranks in aligned parts) and STRICT's for any N. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lightos/lightos.h>

#define PARTS 8         /* the global data: 8 contributions ...        */
#define COUNT (1 << 20) /* ... of 1 Mi floats each                     */

static int fail(const char* what) {
  fprintf(stderr, "allreduce_example: %s: %s\n", what, lightos_last_error()->message);
  return 1;
}

/* Contribution k: values over 40 binades, so the summation order shows. */
static void part(int k, float* p) {
  unsigned long long s = 88172645463325252ull + (unsigned long long)k * 7919u;
  for (size_t i = 0; i < COUNT; ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    p[i] = ldexpf((float)(int)(s % 2000001u) / 1e6f - 1.0f, (int)((s >> 32) % 41u) - 20);
  }
}

/* A small FNV-1a digest of the result, enough to compare runs by eye. */
static unsigned long long digest(const void* p, size_t n) {
  const unsigned char* b = p;
  unsigned long long h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 2;
  const char* kind = argc > 2 ? argv[2] : "cpu";
  if (n < 1 || n > PARTS || (PARTS % n) != 0) {
    fprintf(stderr, "allreduce_example: N must divide %d (got %s)\n", PARTS, argc > 1 ? argv[1] : "");
    return 2;
  }
  if (!strcmp(kind, "cpu")) {
    char v[8];
    snprintf(v, sizeof v, "%d", n);
    setenv("LIGHTOS_CPU_DEVICES", v, 1); /* before the first LightOS call */
  }
  lightos_context_t ctx[PARTS];
  uint32_t ndev = 0;
  if (lightos_device_count(&ndev)) return fail("lightos_device_count");
  int have = 0;
  for (uint32_t i = 0; i < ndev && have < n; ++i) {
    lightos_device_t d;
    lightos_device_info_t info;
    if (lightos_device_get(i, &d) || lightos_device_get_info(d, &info)) continue;
    if (!strcmp(kind, "cpu") && info.backend != LIGHTOS_BACKEND_CPU) continue;
    if (!strcmp(kind, "cuda") && info.backend != LIGHTOS_BACKEND_CUDA) continue;
    if (lightos_context_create_for_device(d, 0, &ctx[have])) return fail("context");
    printf("rank %d: %s (%s)\n", have, info.uri, info.name);
    have++;
  }
  if (have < n) {
    fprintf(stderr, "allreduce_example: %d %s device(s) found, %d asked for\n", have, kind, n);
    return 2;
  }
  const int per = PARTS / n;
  float* host = malloc(sizeof(float) * COUNT);
  float* result = malloc(sizeof(float) * COUNT);
  double* exact = calloc(COUNT, sizeof(double));
  double* mag = calloc(COUNT, sizeof(double)); /* sum of |terms|: the error's scale */
  double* bmax = calloc(COUNT / 256, sizeof(double)); /* largest |term| of each 256-block */
  lightos_buffer_t parts[PARTS], out[PARTS];
  for (int k = 0; k < PARTS; ++k) {
    part(k, host);
    for (size_t i = 0; i < COUNT; ++i) {
      exact[i] += host[i];
      mag[i] += fabs(host[i]);
      if (fabs(host[i]) > bmax[i / 256]) bmax[i / 256] = fabs(host[i]);
    }
    if (lightos_buffer_alloc(ctx[k / per], sizeof(float) * COUNT, 0, &parts[k]) ||
        lightos_buffer_write(parts[k], 0, sizeof(float) * COUNT, host))
      return fail("buffer");
  }
  for (int r = 0; r < n; ++r)
    if (lightos_buffer_alloc(ctx[r], sizeof(float) * COUNT, 0, &out[r])) return fail("buffer");

  int bad = 0;
  for (lightos_determinism_t level = LIGHTOS_DETERMINISM_NONE;
       level <= LIGHTOS_DETERMINISM_STRICT; ++level) {
    lightos_comm_config_t cfg;
    if (lightos_comm_config_default(&cfg)) return fail("config");
    cfg.level = level;
    lightos_comm_t comm[PARTS];
    if (lightos_comm_init_all_config((uint32_t)n, ctx, &cfg, comm)) return fail("communicators");
    /* One thread drives every rank: the calls only enqueue. */
    for (int r = 0; r < n; ++r)
      if (lightos_comm_allreduce_multi(&parts[r * per], (uint32_t)per, out[r], COUNT,
                                       LIGHTOS_DTYPE_F32, LIGHTOS_OP_SUM, comm[r], NULL))
        return fail("allreduce");
    unsigned long long h0 = 0;
    double worst = 0;
    for (int r = 0; r < n; ++r) {
      if (lightos_buffer_read(out[r], 0, sizeof(float) * COUNT, result)) return fail("read");
      unsigned long long h = digest(result, sizeof(float) * COUNT);
      if (r == 0) h0 = h;
      else if (h != h0) {
        printf("  rank %d holds other bits than rank 0\n", r);
        bad = 1;
      }
      for (size_t i = 0; i < COUNT; ++i) {
        /* STRICT's error is bounded by its block's largest term (the
         * fixed-point quantum, docs/determinism.md); the others' by the
         * element's own terms. */
        double scale = level == LIGHTOS_DETERMINISM_STRICT ? bmax[i / 256] : mag[i];
        double err = fabs(result[i] - exact[i]) / (scale + 1e-300);
        if (err > worst) worst = err;
      }
    }
    const char* transport = "";
    lightos_comm_transport(comm[0], &transport);
    printf("%-9s %d rank(s) x %d part(s), %-6s result %016llx, worst error %.2g (relative to the terms)\n",
           lightos_determinism_name(level), n, per, transport, h0, worst);
    if (worst > 1e-5) bad = 1;
    for (int r = 0; r < n; ++r) lightos_comm_destroy(comm[r]);
  }
  for (int k = 0; k < PARTS; ++k) lightos_buffer_release(parts[k]);
  for (int r = 0; r < n; ++r) {
    lightos_buffer_release(out[r]);
    lightos_context_release(ctx[r]);
  }
  free(host);
  free(result);
  free(exact);
  free(mag);
  free(bmax);
  if (bad) fprintf(stderr, "allreduce_example: FAILED\n");
  return bad;
}
