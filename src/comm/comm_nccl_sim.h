/* Test hook of the NCCL device path: the peer copies of an in-process
 * group on a stand-in driver (tests/test_comm_gpu.c builds one: streams as
 * threads, stream memory operations on host memory, copies as memcpy,
 * kernels as the host build of comm_cuda_kernels.h).  The copies' offsets,
 * flags, all-gather pairs and segment numbers are LightOS's own code. */
#ifndef LIGHTOS_COMM_NCCL_SIM_H
#define LIGHTOS_COMM_NCCL_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hal/cuda/cuda_loader.h"
#include "lightos/comm.h"

/* n ranks, exchange areas of 3 x segb bytes each; k: the handles the
 * driver's cuLaunchKernel receives for lk_cuk_tree_k, lk_cuk_tree2v_k,
 * lk_cuk_treev4_k and lk_cuk_treev8_k.  NULL if n is not 2..64 or memory
 * runs out. */
typedef struct lk_nccl_p2p_sim lk_nccl_p2p_sim_t;
lk_nccl_p2p_sim_t* lk_nccl_p2p_sim_new(const lk_cuda_api_t* api, uint32_t n, size_t segb,
                                       CUfunction const k[4]);
/* One rank's RUN/TOPOLOGY allreduce (or reduce_scatter: count per rank)
 * by peer copies, issued on stream st as lk_nl_issue would. */
lightos_status_t lk_nccl_p2p_sim_issue(lk_nccl_p2p_sim_t* sim, uint32_t rank, CUstream st,
                                       bool reduce_scatter, lightos_dtype_t dt,
                                       lightos_reduce_op_t op, size_t count, CUdeviceptr src,
                                       CUdeviceptr dst);
/* What an abort does to the flags (the watchdog repeats it every
 * millisecond while work is pending). */
void lk_nccl_p2p_sim_release(lk_nccl_p2p_sim_t* sim);
void lk_nccl_p2p_sim_free(lk_nccl_p2p_sim_t* sim);

#endif
