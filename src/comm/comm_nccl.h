/* The NCCL device path of the collectives (comm_nccl.c): internal pieces
 * that the tests reach (tests/test_comm_gpu.c).
 *
 * A pipelined reduction (TOPOLOGY/RUN floats, STRICT) cuts the elements
 * into segments and each segment into one chunk per rank.  Per segment:
 * an all-to-all brings every rank's part of chunk r to rank r (into the
 * exchange slots: one slot per rank), rank r reduces its chunk over the
 * ranks with the fixed tree (or the exact STRICT sum), and an all-gather
 * returns the reduced chunks (allreduce; reduce_scatter keeps them).  The
 * plan says which elements each rank reduces in each segment; the
 * arithmetic of an element does not depend on it. */
#ifndef LK_COMM_NCCL_H
#define LK_COMM_NCCL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lightos/status.h"

typedef struct lk_nccl_plan {
  uint32_t n, me;
  bool rs;          /* reduce_scatter: count is recvcount, rank p's block starts at p * count */
  size_t count;
  size_t segc;      /* elements per rank's chunk in a full segment (a multiple of 64) */
  size_t nseg;
  bool gather_all;  /* allreduce of few bytes: one all-gather of the inputs, every rank
                       reduces every element (one segment, no chunks) */
} lk_nccl_plan_t;

/* A plan whose segments need at most `segb` bytes of exchange slots
 * (n * slot * xes, xes = bytes per exchanged element).  segb must be at
 * least n * 64 * xes. */
void lk_nccl_plan_make(lk_nccl_plan_t* pl, uint32_t n, uint32_t me, bool rs, size_t count,
                       size_t xes, size_t segb);
/* Segment s: allreduce: the contiguous input range [*base, *base + *len);
 * reduce_scatter: the range [*base, *base + *len) of every rank's block. */
void lk_nccl_plan_seg(const lk_nccl_plan_t* pl, size_t s, size_t* base, size_t* len);
/* Rank p's chunk of segment s: input elements [*in_off, *in_off + *len),
 * written at output element *out_off. */
void lk_nccl_plan_chunk(const lk_nccl_plan_t* pl, size_t s, uint32_t p, size_t* in_off,
                        size_t* len, size_t* out_off);
/* Elements per exchange slot in segment s (>= every chunk's length). */
size_t lk_nccl_plan_slot(const lk_nccl_plan_t* pl, size_t s);
/* True when every chunk of segment s has the same length (the all-gather
 * is one ncclAllGather; else grouped sends and receives). */
bool lk_nccl_plan_equal(const lk_nccl_plan_t* pl, size_t s);

/* Recursive halving (RUN/TOPOLOGY f32/f64 sum, avg, prod allreduce on
 * n = 2^K ranks).  Step k pairs rank r with r ^ 2^k (pair index
 * lk_nccl_halve_pair(r, k) of n / 2; in the pair, the rank with bit k clear
 * is index 0 and, in a reduce-scatter step (k < K-1), keeps the lower half
 * of the region both hold; step K-1 allreduces the pair's region).
 * The elements [0, body) go in segments of segc elements (both multiples
 * of 64 n); the rest through the tree pipeline. */
#define LK_NCCL_MAXSTEP 16
/* The regions: lk_halve_regions (comm_reduce.h); segments' lengths are
 * multiples of n, so every region of step k holds len >> k elements. */
uint32_t lk_nccl_halve_pair(uint32_t i, uint32_t k);
size_t lk_nccl_halve_body(uint32_t n, size_t count);
/* Elements per segment for segments of about segb bytes. */
size_t lk_nccl_halve_segc(uint32_t n, size_t es, size_t segb);
/* Allreduces issued by recursive halving so far in this process. */
uint64_t lk_nccl_halving_ops(void);
/* Operations whose exchange went by peer copies so far in this process
 * (one per rank and operation). */
uint64_t lk_nccl_p2p_ops(void);

/* libnccl: its version code (e.g. 22809 for 2.28.9), or 0 with the reason
 * why it cannot be used. */
int lk_nccl_library_version(char* why, size_t cap);

/* The reduction kernels (comm_cuda_kernels.h) built by NVRTC for `arch`
 * ("sm_90"), through the on-disk kernel cache; *image is malloc'ed. */
lightos_status_t lk_nccl_compile_kernels(const char* arch, int driver_version, bool use_cache,
                                         void** image, size_t* size);

/* The host's default NaN (what inf - inf gives), f32 and f64 bits. */
uint32_t lk_nccl_host_nan_f32(void);
uint64_t lk_nccl_host_nan_f64(void);

#endif
