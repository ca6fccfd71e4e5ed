/* The CUDA backend: NVIDIA GPUs through the driver API (libcuda.so.1) and
 * NVRTC, both loaded at run time (cuda_loader.h).
 *
 *   device   one CUdevice; properties read at probe time
 *   context  the device's primary context (retained), an internal
 *            non-blocking stream for the stream-ordered allocator, the
 *            device-lost state
 *   queue    a non-blocking CUstream plus a completion thread
 *            (cuda_queue.c: completion batching)
 *   program  a CUmodule loaded from a cubin NVRTC built from the
 *            rewritten source (cl_codegen.h, lk_cuda_codegen) and the CUDA
 *            prelude; cubins are cached on disk
 *
 * Every entry point makes the primary context current on the calling
 * thread first (lk_cu_make_current): API threads, queue completion threads.
 *
 * A vendor BLAS (native_gemm in the queue vtable) is not here yet: it goes
 * in a cuda_blas.c with its own symbol table (libcublas.so loaded the same
 * way), enqueueing on the queue's stream through
 * lk_cu_queue_enqueue_native(), which also completes its keep_alive command.
 */
#ifndef LIGHTOS_HAL_CUDA_BACKEND_H
#define LIGHTOS_HAL_CUDA_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "hal/cuda/cuda_loader.h"
#include "hal/hal.h"

typedef struct lk_cu_device {
  lk_hal_device_t base;
  const lk_cuda_api_t* api;
  CUdevice dev;
  int ordinal;
  int cc_major, cc_minor;
  int driver_version;      /* cuDriverGetVersion: 13000 = 13.0 */
  int max_threads;         /* per block */
  int max_block[3];
  int max_grid[3];
  int smem_optin;          /* opt-in shared memory per block (0: not used) */
  bool pools;              /* stream-ordered allocator supported */
  char uuid[48];
} lk_cu_device_t;

typedef struct lk_cu_context {
  lk_hal_context_t base;
  lk_cu_device_t* device;
  const lk_cuda_api_t* api;
  CUcontext ctx;           /* the device's primary context (retained) */
  CUstream alloc_stream;   /* cuMemAllocAsync / cuMemFreeAsync */
  atomic_bool use_pool;
  /* LIGHTOS_SUCCESS, or LIGHTOS_DEVICE_LOST after a sticky error (an
   * illegal address, a failed launch ...): the context is unusable. */
  atomic_int lost;
  pthread_mutex_t lost_lock;
  char lost_msg[400];
} lk_cu_context_t;

/* A kernel handle (kernel_get). */
typedef struct lk_cu_kernel {
  CUfunction fn;           /* the function in the program's context (attributes) */
  /* What cuLaunchKernel gets: the library's CUkernel, which launches in
   * the context of the stream it is launched on (ctx_free: no context need
   * be current), or fn (a module's function: the context must be). */
  CUfunction launch;
  bool ctx_free;
  int max_threads;         /* CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK */
  int static_smem;         /* bytes of __shared__ variables */
  const lk_kernel_sig_t* sig;
  struct lk_cu_kernel* next;
} lk_cu_kernel_t;

/* The hidden last kernel parameter (prelude_cuda.h: lk_cu_range_t). */
typedef struct lk_cu_range {
  uint64_t gs[3];          /* the real global size */
  uint64_t go[3];          /* the first group of this launch */
  uint32_t wd;             /* work_dim */
  uint32_t pad;
} lk_cu_range_t;

/* Raises the error of a failed driver call: status from the CUDA error
 * (CUDA_ERROR_OUT_OF_MEMORY -> LIGHTOS_OUT_OF_MEMORY ...), native name and
 * code in lightos_last_error().  A sticky error marks the context lost
 * (c may be NULL). */
lightos_status_t lk_cu_fail(lk_cu_context_t* c, CUresult err, const char* call,
                            const char* what);
/* LIGHTOS_DEVICE_LOST with the original failure when the context is
 * lost, else LIGHTOS_SUCCESS. */
lightos_status_t lk_cu_check_lost(lk_cu_context_t* c);
/* Makes the context's primary context current on this thread. */
lightos_status_t lk_cu_make_current(lk_cu_context_t* c);

lightos_status_t lk_cu_queue_create(lk_hal_context_t* context, uint32_t flags,
                                    lk_hal_queue_t** out_queue);
lightos_status_t lk_cu_program_build(lk_hal_context_t* context, const lk_program_src_t* src,
                                     lk_hal_build_result_t* out);
/* Launches a LK_CMD_KERNEL on a stream (the queue holds its lock). */
lightos_status_t lk_cu_launch(lk_cu_context_t* c, CUstream stream, const lk_cmd_t* cmd);

/* ---- for tests and other modules --------------------------------------------- */

/* True when the HAL context belongs to this backend. */
bool lk_cuda_is_context(const lk_hal_context_t* context);

/* Compiles CUDA C++ source (with the prelude already in it: see
 * lk_cuda_codegen) with NVRTC for `arch` ("sm_90" gives a cubin,
 * "compute_90" PTX), with the backend's fixed options (--fmad=false
 * -default-device --std=c++17) plus `user_options` (validated program
 * options: -D NAME[=VALUE], -I DIR, -w; -cl-std is dropped).  On success
 * *out_image is a malloc'ed cubin (or NUL-terminated PTX) of *out_size
 * bytes.  *out_log (may be NULL) gets NVRTC's malloc'ed log either way.
 * LIGHTOS_UNAVAILABLE when libnvrtc cannot be loaded ("libnvrtc not
 * found ..."), LIGHTOS_COMPILE_FAILED with the first error line. */
lightos_status_t lk_cuda_compile_source(const char* text, size_t len, const char* arch,
                                        const char* user_options, void** out_image,
                                        size_t* out_size, char** out_log);

/* The NVRTC target for a compute capability: "sm_XY" when NVRTC can build
 * a cubin for it, else "compute_XY" of the newest architecture NVRTC
 * knows below it (PTX the driver compiles).  UNAVAILABLE without NVRTC. */
lightos_status_t lk_cuda_arch_for(int cc_major, int cc_minor, char* out, size_t cap);

/* Peer access between the devices of two CUDA contexts (for the
 * collectives): *out_can tells whether a's device can access b's memory;
 * with enable, also enables it for a's context (once; "already enabled"
 * is success).  INVALID_ARGUMENT when a context is not a CUDA one. */
lightos_status_t lk_cuda_peer_access(lk_hal_context_t* a, lk_hal_context_t* b, bool enable,
                                     bool* out_can);

/* Runs enqueue(stream, arg) on the queue's CUstream under the queue's lock
 * (it enqueues driver work, e.g. a cuBLAS call) and records `cmd` (may be
 * NULL) as that work's command: cmd completes in queue order once the work
 * has run, with enqueue's status when that failed.  Takes ownership of cmd.
 * (For native_gemm: cuda_blas.c.) */
typedef lightos_status_t (*lk_cu_issue_fn)(void* stream, void* arg); /* stream: a CUstream */
lightos_status_t lk_cu_queue_enqueue_native(lk_hal_queue_t* queue, lk_cmd_t* cmd,
                                            lk_cu_issue_fn enqueue, void* arg);
lightos_status_t lk_cuda_native_gemm(lk_hal_queue_t* queue, const lk_hal_gemm_t* gemm, lk_cmd_t* keep_alive);

/* The same, without blocking the calling thread: cmd (kind LK_CMD_NATIVE)
 * carries u.native.fn (an lk_cu_issue_fn), done and arg.  fn(stream, arg) issues the work under
 * the queue's lock; done(arg, status) follows with no queue lock held and
 * owns arg.  While the queue's host thread has work ahead of it (a wait for
 * an event of another device, a host function) the command waits in queue
 * order and that thread issues it later: the call returns LIGHTOS_SUCCESS
 * at once, and a failure reaches done, cmd's event and the queue's error.
 * Otherwise it runs now and returns fn's status (done has run).  (For the
 * NCCL path, whose collectives one thread may issue for several ranks:
 * blocking on one rank's queue would keep the others from issuing.) */
lightos_status_t lk_cu_queue_submit_native(lk_hal_queue_t* queue, lk_cmd_t* cmd);

/* Enqueues a device-to-device copy between two CUDA contexts (a peer copy,
 * cuMemcpyPeerAsync) on `queue`, in order with its other work.  The caller
 * keeps both allocations alive until the queue has finished. */
lightos_status_t lk_cuda_copy_peer(lk_hal_queue_t* queue, lk_hal_context_t* dst_ctx,
                                   const lk_hal_mem_t* dst, size_t dst_off,
                                   lk_hal_context_t* src_ctx, const lk_hal_mem_t* src,
                                   size_t src_off, size_t size);

#endif
