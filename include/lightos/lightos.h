/* LightOS: one C API for every AI accelerator.
 *
 * Umbrella header.  The full API is in the headers included below; this
 * file also holds the short "seed" API used by the README's first example:
 *
 *   lightos_context_t ctx = lightos_create_context(LIGHTOS_DEVICE_ANY);
 *   lightos_buffer_t buf = lightos_alloc(ctx, size);
 *   lightos_execute(kernel, global_size, local_size);
 *   lightos_allreduce(sendbuf, recvbuf, count, LIGHTOS_OP_SUM, comm);
 *
 * The seed calls report failure by return value (NULL or a status) and
 * leave the detail in lightos_last_error().
 */
#ifndef LIGHTOS_LIGHTOS_H
#define LIGHTOS_LIGHTOS_H

#include "lightos/status.h"
#include "lightos/dtype.h"
#include "lightos/device.h"
#include "lightos/buffer.h"
#include "lightos/queue.h"
#include "lightos/kernel.h"
#include "lightos/comm.h"
#include "lightos/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LIGHTOS_VERSION_MAJOR 0
#define LIGHTOS_VERSION_MINOR 1
#define LIGHTOS_VERSION_PATCH 0
LIGHTOS_API const char* lightos_version_string(void);

/* A context on the device `kind` selects; NULL on failure. */
LIGHTOS_API lightos_context_t lightos_create_context(lightos_device_kind_t kind);
/* A buffer of `size` bytes in `context`; NULL on failure. */
LIGHTOS_API lightos_buffer_t lightos_alloc(lightos_context_t context, size_t size);
/* Runs `kernel` (its arguments set) over a 1-D range of global_size items
 * in groups of local_size (0: the runtime picks) on its context's default
 * queue, and waits for it. */
LIGHTOS_API lightos_status_t lightos_execute(lightos_kernel_t kernel,
                                             size_t global_size, size_t local_size);
/* Allreduce of `count` floats (f32) over `comm`, on the default queue of
 * the rank's context; waits for completion. */
LIGHTOS_API lightos_status_t lightos_allreduce(lightos_buffer_t sendbuf,
                                               lightos_buffer_t recvbuf, size_t count,
                                               lightos_reduce_op_t op,
                                               lightos_comm_t comm);

#ifdef __cplusplus
}
#endif
#endif
