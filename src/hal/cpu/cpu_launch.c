/* Kernel launches on the CPU: work-groups over the device's thread pool. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/util.h"
#include "hal/cpu/cpu_abi.h"
#include "hal/cpu/cpu_backend.h"

/* Below this estimated run time a launch stays on the calling thread: waking
 * the pool would cost more than it saves. */
#define LK_SERIAL_NS 40000

/* Per-thread arena for __local pointer arguments. */
typedef struct lk_arena {
  void* p;
  size_t size;
} lk_arena_t;

static pthread_key_t lk_arena_key;
static pthread_once_t lk_arena_once = PTHREAD_ONCE_INIT;

static void lk_arena_free(void* a) {
  lk_arena_t* ar = a;
  free(ar->p);
  free(ar);
}

static void lk_arena_init(void) { pthread_key_create(&lk_arena_key, lk_arena_free); }

static void* lk_arena_get(size_t bytes) {
  if (!bytes) return NULL;
  pthread_once(&lk_arena_once, lk_arena_init);
  lk_arena_t* ar = pthread_getspecific(lk_arena_key);
  if (!ar) {
    ar = calloc(1, sizeof *ar);
    if (!ar) return NULL;
    pthread_setspecific(lk_arena_key, ar);
  }
  if (ar->size < bytes) {
    void* p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    free(ar->p);
    ar->p = p;
    ar->size = bytes;
  }
  return ar->p;
}

typedef struct lk_cpu_job {
  lk_cpu_launch_t abi;
  lk_cpu_entry_fn entry;
  size_t local_bytes;
  atomic_int arena_failed;
} lk_cpu_job_t;

static void lk_cpu_run_groups(void* ctx, size_t begin, size_t end, unsigned worker) {
  lk_cpu_job_t* job = ctx;
  void* local = lk_arena_get(job->local_bytes);
  if (job->local_bytes && !local) {
    atomic_store(&job->arena_failed, 1);
    return;
  }
  job->entry(&job->abi, begin, end, local);
}

static void lk_cpu_run_groups_from1(void* ctx, size_t begin, size_t end, unsigned worker) {
  lk_cpu_run_groups(ctx, begin + 1, end + 1, worker);
}

/* Work-group size when the caller gave none.  Plain kernels get large
 * groups (a group is a loop, so bigger is cheaper) while leaving enough
 * groups to spread over the threads; kernels with item blocks get the
 * usual GPU-like shapes. */
static void lk_cpu_pick_local(const lk_cmd_t* c, unsigned threads, size_t local[3]) {
  const size_t* g = c->u.launch.global;
  if (c->u.launch.uses_item_blocks) {
    static const size_t shape[3][3] = {{256, 1, 1}, {16, 16, 1}, {8, 8, 4}};
    const size_t* s = shape[c->u.launch.work_dim - 1];
    for (int d = 0; d < 3; ++d) local[d] = g[d] < s[d] ? g[d] : s[d];
    return;
  }
  size_t want = lk_align_up(g[0] / ((size_t)threads * 8 + 1) + 1, 64);
  if (want < 256) want = 256;
  if (want > 4096) want = 4096;
  local[0] = g[0] < want ? g[0] : want;
  size_t rest = 4096 / local[0];
  local[1] = g[1] < rest ? g[1] : (rest ? rest : 1);
  rest = rest / local[1];
  local[2] = g[2] < rest ? g[2] : (rest ? rest : 1);
}

lightos_status_t lk_cpu_run_kernel(lk_cpu_device_t* dev, lk_cmd_t* c) {
  lk_cpu_job_t job = {0};
  lk_cpu_launch_t* L = &job.abi;
  L->work_dim = c->u.launch.work_dim;
  size_t local[3];
  if (c->u.launch.local[0]) {
    for (int d = 0; d < 3; ++d) local[d] = c->u.launch.local[d];
  } else {
    lk_cpu_pick_local(c, dev->threads, local);
  }
  size_t groups = 1;
  for (int d = 0; d < 3; ++d) {
    L->global_size[d] = c->u.launch.global[d];
    L->local_size[d] = local[d];
    L->num_groups[d] = (L->global_size[d] + local[d] - 1) / local[d];
    L->global_offset[d] = 0;
    groups *= L->num_groups[d];
  }
  L->args = c->u.launch.arg_ptrs;
  job.entry = (lk_cpu_entry_fn)c->u.launch.hal_kernel;
  job.local_bytes = c->u.launch.local_mem_bytes;

  /* Run the first group here and time it: short launches never touch the
   * pool. */
  uint64_t t0 = lk_now_ns();
  lk_cpu_run_groups(&job, 0, 1, 0);
  uint64_t first = lk_now_ns() - t0;
  if (groups > 1) {
    size_t rest = groups - 1;
    if (first * rest < LK_SERIAL_NS || dev->threads == 1) {
      lk_cpu_run_groups(&job, 1, groups, 0);
    } else {
      size_t grain = rest / ((size_t)dev->threads * 16);
      if (grain < 1) grain = 1;
      lk_pool_parallel_for(dev->pool, rest, grain, lk_cpu_run_groups_from1, &job);
    }
  }
  if (atomic_load(&job.arena_failed))
    return LK_FAIL_NATIVE(LIGHTOS_OUT_OF_MEMORY, "cpu", "", 0,
                          "no host memory for %zu bytes of local memory per thread", job.local_bytes);
  return LIGHTOS_SUCCESS;
}
