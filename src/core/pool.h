/* A fixed-size thread pool for data-parallel loops.
 *
 * lk_pool_parallel_for splits [0, n) into chunks of `grain` and runs them
 * on the pool's workers and on the calling thread, returning when every
 * chunk is done.  Workers spin briefly after a job (so back-to-back
 * launches do not pay a wake-up) and then sleep.  A worker that wakes late
 * never delays the caller: completion counts finished items, not threads.
 *
 * Thread-safety: parallel_for calls on one pool are serialised by the pool
 * (one job at a time); any thread may call it.  Not re-entrant from inside
 * a job.
 */
#ifndef LIGHTOS_CORE_POOL_H
#define LIGHTOS_CORE_POOL_H

#include <stddef.h>

typedef struct lk_pool lk_pool_t;

/* fn runs items [begin, end); `worker` is 0 for the calling thread and
 * 1..size-1 for pool threads (an index for per-thread scratch memory). */
typedef void (*lk_pool_fn)(void* ctx, size_t begin, size_t end, unsigned worker);

/* A pool of `threads` threads in all, the caller counted (so threads-1
 * are created).  NULL when threads cannot be created. */
lk_pool_t* lk_pool_create(unsigned threads);
void lk_pool_destroy(lk_pool_t* pool);
unsigned lk_pool_size(const lk_pool_t* pool);
void lk_pool_parallel_for(lk_pool_t* pool, size_t n, size_t grain, lk_pool_fn fn,
                          void* ctx);

#endif
