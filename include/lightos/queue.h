/* In-order queues and events.
 *
 * A queue runs its commands one after another, asynchronously to the host.
 * Every enqueue call can return an event for its command.  An event
 * completes with the command's status.  When a command fails, every later
 * command of the same queue is skipped and completes with
 * LIGHTOS_ABORTED, as does any command of another queue that waits on a
 * failed event (lightos_queue_wait_event): nothing ever blocks forever on
 * work that failed.  lightos_queue_finish() waits for all commands enqueued
 * so far and returns the first failure since the previous finish (the
 * detail of the original error is in lightos_last_error()); the queue is
 * usable again afterwards.
 *
 * Thread-safety: a queue may be used by several threads at once; commands
 * enqueued by different threads run in the order the enqueue calls
 * returned.  Events may be waited on from any thread.
 */
#ifndef LIGHTOS_QUEUE_H
#define LIGHTOS_QUEUE_H

#include "lightos/buffer.h"

#ifdef __cplusplus
extern "C" {
#endif

enum lightos_queue_flags {
  LIGHTOS_QUEUE_DEFAULT = 0,
  LIGHTOS_QUEUE_PROFILING = 1u << 0  /* events record start/end times */
};

LIGHTOS_API lightos_status_t lightos_queue_create(lightos_context_t context,
                                                  uint32_t flags,
                                                  lightos_queue_t* out_queue);
/* Release waits for the queue's pending commands first. */
LIGHTOS_API lightos_status_t lightos_queue_retain(lightos_queue_t queue);
LIGHTOS_API lightos_status_t lightos_queue_release(lightos_queue_t queue);
LIGHTOS_API lightos_status_t lightos_queue_finish(lightos_queue_t queue);
/* Commands enqueued on `queue` after this call start only once `event`
 * (of any queue, context or backend) has completed; if it failed they
 * complete with LIGHTOS_ABORTED. */
LIGHTOS_API lightos_status_t lightos_queue_wait_event(lightos_queue_t queue,
                                                      lightos_event_t event);
/* An event that completes when everything enqueued before it has. */
LIGHTOS_API lightos_status_t lightos_event_record(lightos_queue_t queue,
                                                  lightos_event_t* out_event);

LIGHTOS_API lightos_status_t lightos_event_retain(lightos_event_t event);
LIGHTOS_API lightos_status_t lightos_event_release(lightos_event_t event);
/* Blocks until the event completes; returns its status. */
LIGHTOS_API lightos_status_t lightos_event_wait(lightos_event_t event);
/* LIGHTOS_NOT_READY while pending, else the command's status. */
LIGHTOS_API lightos_status_t lightos_event_query(lightos_event_t event);
/* Milliseconds from the start of `start`'s command to the end of `end`'s.
 * Both must be complete, from queues created with LIGHTOS_QUEUE_PROFILING
 * or be recorded markers of such queues. */
LIGHTOS_API lightos_status_t lightos_event_elapsed_ms(lightos_event_t start,
                                                      lightos_event_t end,
                                                      double* out_ms);

#ifdef __cplusplus
}
#endif
#endif
