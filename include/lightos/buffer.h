/* Device buffers.
 *
 * A buffer is a range of device memory owned by one context.  A sub-buffer
 * is a view of a range of its parent (it keeps the parent alive).  Every
 * size and offset is checked: zero sizes, ranges past the end and
 * overflowing offset+size give LIGHTOS_INVALID_ARGUMENT or
 * LIGHTOS_OUT_OF_RANGE with a message naming the argument and the values.
 *
 * Queued transfers (lightos_enqueue_*) return at once; the host memory they
 * read or write must stay valid until the returned event (or a later
 * lightos_queue_finish) completes.  The blocking forms run on the context's
 * default queue and return when the data has arrived.
 *
 * Thread-safety: all functions may be called from any thread; concurrent
 * transfers into the same bytes give unspecified contents (as in OpenCL).
 */
#ifndef LIGHTOS_BUFFER_H
#define LIGHTOS_BUFFER_H

#include "lightos/device.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lightos_buffer_s* lightos_buffer_t;
typedef struct lightos_event_s* lightos_event_t;

enum lightos_buffer_flags {
  LIGHTOS_BUFFER_DEFAULT = 0,
  /* Memory the host can map (lightos_buffer_map).  Always true on the CPU
   * backend; pinned/mapped memory on GPUs where supported, else
   * LIGHTOS_UNSUPPORTED. */
  LIGHTOS_BUFFER_HOST_VISIBLE = 1u << 0
};

LIGHTOS_API lightos_status_t lightos_buffer_alloc(lightos_context_t context,
                                                  size_t size, uint32_t flags,
                                                  lightos_buffer_t* out_buffer);
/* A view of [offset, offset+size) of `parent`. Sub-buffers of sub-buffers
 * are allowed; offsets compose. */
LIGHTOS_API lightos_status_t lightos_buffer_create_sub(lightos_buffer_t parent,
                                                       size_t offset, size_t size,
                                                       lightos_buffer_t* out_buffer);
LIGHTOS_API lightos_status_t lightos_buffer_retain(lightos_buffer_t buffer);
/* Drops a reference.  The memory is freed once no reference and no queued
 * work that uses it remain. */
LIGHTOS_API lightos_status_t lightos_buffer_release(lightos_buffer_t buffer);
LIGHTOS_API lightos_status_t lightos_buffer_get_size(lightos_buffer_t buffer,
                                                     size_t* out_size);
LIGHTOS_API lightos_status_t lightos_buffer_get_context(lightos_buffer_t buffer,
                                                        lightos_context_t* out_context);

/* Blocking transfers on the context's default queue. */
LIGHTOS_API lightos_status_t lightos_buffer_write(lightos_buffer_t dst, size_t offset,
                                                  size_t size, const void* src);
LIGHTOS_API lightos_status_t lightos_buffer_read(lightos_buffer_t src, size_t offset,
                                                 size_t size, void* dst);
LIGHTOS_API lightos_status_t lightos_buffer_copy(lightos_buffer_t src, size_t src_offset,
                                                 lightos_buffer_t dst, size_t dst_offset,
                                                 size_t size);
/* Fills with a repeating pattern of 1, 2, 4, 8, 16, 32, 64 or 128 bytes;
 * offset and size must be multiples of pattern_size. */
LIGHTOS_API lightos_status_t lightos_buffer_fill(lightos_buffer_t dst, size_t offset,
                                                 size_t size, const void* pattern,
                                                 size_t pattern_size);

/* Queued transfers.  out_event may be NULL. */
LIGHTOS_API lightos_status_t lightos_enqueue_write(lightos_queue_t queue,
                                                   lightos_buffer_t dst, size_t offset,
                                                   size_t size, const void* src,
                                                   lightos_event_t* out_event);
LIGHTOS_API lightos_status_t lightos_enqueue_read(lightos_queue_t queue,
                                                  lightos_buffer_t src, size_t offset,
                                                  size_t size, void* dst,
                                                  lightos_event_t* out_event);
/* src and dst may be in different contexts (and backends): the runtime
 * stages through the host when no direct path exists. */
LIGHTOS_API lightos_status_t lightos_enqueue_copy(lightos_queue_t queue,
                                                  lightos_buffer_t src, size_t src_offset,
                                                  lightos_buffer_t dst, size_t dst_offset,
                                                  size_t size, lightos_event_t* out_event);
LIGHTOS_API lightos_status_t lightos_enqueue_fill(lightos_queue_t queue,
                                                  lightos_buffer_t dst, size_t offset,
                                                  size_t size, const void* pattern,
                                                  size_t pattern_size,
                                                  lightos_event_t* out_event);

/* Maps [offset, offset+size) of a host-visible buffer into the host address
 * space.  No synchronisation is implied: finish the queues that write the
 * buffer first.  Unmap with the same pointer. */
LIGHTOS_API lightos_status_t lightos_buffer_map(lightos_buffer_t buffer, size_t offset,
                                                size_t size, void** out_ptr);
LIGHTOS_API lightos_status_t lightos_buffer_unmap(lightos_buffer_t buffer, void* ptr);

#ifdef __cplusplus
}
#endif
#endif
