/* Stand-ins for the NCCL device path when comm_nccl.c is not built in:
 * communicators then use the host path. */
#include "comm/comm_internal.h"
__attribute__((weak)) lightos_status_t lk_nccl_attach_all(lk_comm_t* const* comms, uint32_t n) { (void)comms; (void)n; return LIGHTOS_UNSUPPORTED; }
__attribute__((weak)) lightos_status_t lk_nccl_attach_rank(lk_comm_t* c) { (void)c; return LIGHTOS_UNSUPPORTED; }
