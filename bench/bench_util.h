/* Small utilities shared by the benchmarks: a monotonic clock, medians, a
 * deterministic xorshift generator for input data, checked allocation.
 * Define BENCH_NAME (the program's name, for messages) before including. */
#ifndef LIGHTOS_BENCH_UTIL_H
#define LIGHTOS_BENCH_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v); NaN when n is 0. */
static double median(double* v, size_t n) {
  if (n == 0) return NAN;
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng_u32(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  rng_state = x;
  return (uint32_t)(x >> 32);
}
/* Uniform in [0, 1) with 24 random bits. */
static float rng_unit(void) { return (float)(rng_u32() >> 8) * (1.0f / 16777216.0f); }

static void* xmalloc(size_t n) {
  void* p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "%s: out of host memory (%zu bytes)\n", BENCH_NAME, n);
    exit(2);
  }
  return p;
}

#endif
