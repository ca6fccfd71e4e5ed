#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/pool.h"

/* The ticket packs the job generation (high 24 bits) and the next item
 * index (low 40 bits), so a worker can only ever claim a chunk of the job
 * it read the parameters of. */
#define LK_IDX_BITS 40
#define LK_IDX_MASK ((1ull << LK_IDX_BITS) - 1)
#define LK_SPIN_ITERS 4000

struct lk_pool {
  unsigned size;
  pthread_t* threads;
  pthread_mutex_t job_lock; /* one job at a time */
  pthread_mutex_t sleep_lock;
  pthread_cond_t sleep_cv;
  atomic_int sleepers;
  atomic_bool stop;
  _Atomic uint64_t ticket;
  atomic_size_t done;
  /* The current job.  Written only while the ticket is sealed (index
   * LK_IDX_MASK: nothing to claim), before the ticket is opened, so a
   * worker's successful claim always pairs with this job's fields. */
  _Atomic(lk_pool_fn) fn;
  _Atomic(void*) ctx;
  atomic_size_t n;
  atomic_size_t grain;
};

typedef struct lk_worker_arg {
  lk_pool_t* pool;
  unsigned index;
} lk_worker_arg_t;

static inline void lk_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Claims and runs chunks of job `gen` until none is left. */
static void lk_pool_work(lk_pool_t* p, uint64_t gen, unsigned worker) {
  for (;;) {
    uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    if ((t >> LK_IDX_BITS) != gen) return;
    size_t begin = (size_t)(t & LK_IDX_MASK);
    if (begin == LK_IDX_MASK) return; /* sealed: the job is being set up */
    size_t n = atomic_load_explicit(&p->n, memory_order_relaxed);
    size_t grain = atomic_load_explicit(&p->grain, memory_order_relaxed);
    if (begin >= n) return;
    size_t end = begin + grain < n ? begin + grain : n;
    if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t,
                                               (gen << LK_IDX_BITS) | end,
                                               memory_order_acq_rel,
                                               memory_order_relaxed))
      continue;
    lk_pool_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
    fn(atomic_load_explicit(&p->ctx, memory_order_relaxed), begin, end, worker);
    atomic_fetch_add_explicit(&p->done, end - begin, memory_order_release);
  }
}

/* The generation of the current job when its ticket is open; while it is
 * sealed, the previous generation (so waiting workers keep waiting). */
static uint64_t lk_pool_open_gen(lk_pool_t* p) {
  uint64_t t = atomic_load(&p->ticket);
  uint64_t gen = t >> LK_IDX_BITS;
  if ((t & LK_IDX_MASK) == LK_IDX_MASK) gen = (gen - 1) & ((1ull << 24) - 1);
  return gen;
}

static void* lk_pool_thread(void* arg) {
  lk_worker_arg_t* wa = arg;
  lk_pool_t* p = wa->pool;
  unsigned index = wa->index;
  free(wa);
  uint64_t seen = 0;
  while (!atomic_load(&p->stop)) {
    /* A new job is an open ticket of a generation not yet worked on (a
     * sealed ticket is a job still being set up). */
    uint64_t gen = lk_pool_open_gen(p);
    for (int i = 0; gen == seen && i < LK_SPIN_ITERS; ++i) {
      lk_cpu_relax();
      gen = lk_pool_open_gen(p);
    }
    if (gen == seen) {
      pthread_mutex_lock(&p->sleep_lock);
      atomic_fetch_add(&p->sleepers, 1);
      while ((gen = lk_pool_open_gen(p)) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->sleep_cv, &p->sleep_lock);
      atomic_fetch_sub(&p->sleepers, 1);
      pthread_mutex_unlock(&p->sleep_lock);
      if (atomic_load(&p->stop)) break;
    }
    seen = gen;
    lk_pool_work(p, gen, index);
  }
  return NULL;
}

lk_pool_t* lk_pool_create(unsigned threads) {
  if (threads == 0) threads = 1;
  lk_pool_t* p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->size = threads;
  pthread_mutex_init(&p->job_lock, NULL);
  pthread_mutex_init(&p->sleep_lock, NULL);
  pthread_cond_init(&p->sleep_cv, NULL);
  atomic_init(&p->ticket, 0);
  if (threads > 1) {
    p->threads = calloc(threads - 1, sizeof *p->threads);
    if (!p->threads) {
      lk_pool_destroy(p);
      return NULL;
    }
  }
  for (unsigned i = 1; i < threads; ++i) {
    lk_worker_arg_t* wa = malloc(sizeof *wa);
    if (wa) {
      wa->pool = p;
      wa->index = i;
    }
    if (!wa || pthread_create(&p->threads[i - 1], NULL, lk_pool_thread, wa) != 0) {
      free(wa);
      p->size = i; /* the threads created so far */
      lk_pool_destroy(p);
      return NULL;
    }
  }
  return p;
}

void lk_pool_destroy(lk_pool_t* p) {
  if (!p) return;
  pthread_mutex_lock(&p->sleep_lock);
  atomic_store(&p->stop, true);
  pthread_cond_broadcast(&p->sleep_cv);
  pthread_mutex_unlock(&p->sleep_lock);
  for (unsigned i = 1; i < p->size && p->threads; ++i) pthread_join(p->threads[i - 1], NULL);
  free(p->threads);
  pthread_cond_destroy(&p->sleep_cv);
  pthread_mutex_destroy(&p->sleep_lock);
  pthread_mutex_destroy(&p->job_lock);
  free(p);
}

unsigned lk_pool_size(const lk_pool_t* p) { return p->size; }

void lk_pool_parallel_for(lk_pool_t* p, size_t n, size_t grain, lk_pool_fn fn, void* ctx) {
  if (n == 0) return;
  if (grain == 0) grain = 1;
  if (p->size == 1 || n <= grain) {
    fn(ctx, 0, n, 0);
    return;
  }
  pthread_mutex_lock(&p->job_lock);
  uint64_t gen = ((atomic_load(&p->ticket) >> LK_IDX_BITS) + 1) & ((1ull << 24) - 1);
  if (gen == 0) gen = 1; /* 0 is the workers' initial "seen" */
  /* Seal first: a worker still holding the previous generation fails its
   * claim from here on, so it can never pair the old ticket with the new
   * fields. */
  atomic_store(&p->ticket, (gen << LK_IDX_BITS) | LK_IDX_MASK);
  atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
  atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
  atomic_store_explicit(&p->n, n, memory_order_relaxed);
  atomic_store_explicit(&p->grain, grain, memory_order_relaxed);
  atomic_store_explicit(&p->done, 0, memory_order_relaxed);
  atomic_store(&p->ticket, gen << LK_IDX_BITS);
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->sleep_lock);
    pthread_cond_broadcast(&p->sleep_cv);
    pthread_mutex_unlock(&p->sleep_lock);
  }
  lk_pool_work(p, gen, 0);
  for (unsigned spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) < n; ++spins) {
    if (spins < 100000) lk_cpu_relax();
    else sched_yield();
  }
  pthread_mutex_unlock(&p->job_lock);
}
