/* Source rewriting for OpenCL devices, and for CUDA devices through the
 * same scheme (lk_cuda_codegen, below).
 *
 * Every kernel gets hidden parameters so that the portable semantics hold
 * on OpenCL 1.2 devices:
 *   - each __global/__constant pointer parameter P becomes (P lk_p_P, ulong
 *     lk_o_P): buffer + byte offset, so sub-buffers need no clCreateSubBuffer
 *     (and no base-address alignment);
 *   - three trailing `ulong lk_gs0..2` carry the real global size: the
 *     launch rounds the global size up to a multiple of the work-group size
 *     and items past the real size do not run (plain kernels return at once;
 *     kernels with item blocks skip their blocks but still reach barriers),
 *     so global sizes need not be multiples of the local size;
 *   - get_global_size() gives the real size and get_local_size() the size of
 *     this (possibly partial) group, as on the CPU backend.
 * Parameter order of the rewritten kernel: for user parameter i, one slot
 * (scalar, local pointer) or two (global/constant pointer: buffer, offset),
 * then lk_gs0, lk_gs1, lk_gs2.
 */
#ifndef LIGHTOS_KERNELS_CL_CODEGEN_H
#define LIGHTOS_KERNELS_CL_CODEGEN_H

#include <stddef.h>

#include "kernels/kparse.h"

/* Generates prelude + rewritten source.  Returns 0 and a malloc'ed,
 * NUL-terminated text, or -1 with a message in err. */
int lk_cl_codegen(const char* source, size_t len, const lk_kparse_result_t* parsed,
                  const char* prelude, char** out, size_t* out_len, char* err, size_t err_cap);

/* The same scheme for CUDA (NVRTC, CUDA C++ with src/kernels/prelude_cuda.h).
 * Differences from the OpenCL rewrite:
 *   - each kernel becomes `extern "C" __global__ void NAME(...)`;
 *   - a __global/__constant pointer parameter stays one pointer: CUDA buffer
 *     arguments are device addresses, and the runtime already adds the
 *     sub-buffer offset (lk_arg_value_t.ptr);
 *   - a __local pointer parameter P becomes `size_t lk_l_P`, its byte offset
 *     in the dynamic shared memory (extern __shared__ lk_smem_), which the
 *     launch sizes to the runtime's packed local arguments;
 *   - a bool parameter B becomes `unsigned char lk_b_B` (any nonzero byte is
 *     true);
 *   - one trailing `const lk_cu_range_t lk_r` (40 bytes: ulong gs[3], the
 *     real global size; uint go[3], the first group of this launch; uint wd,
 *     the work_dim) replaces lk_gs0..2;
 *   - in the source text, the plain spellings global/local/constant/private/
 *     kernel become __global/__local/__constant/__private/__kernel (the
 *     prelude defines only those: CUDA's __global__ and __constant__ expand
 *     to attributes named `global` and `constant`), and a __local variable
 *     declaration (not a pointer) becomes __shared__.
 * Parameter order: user parameter i is slot i, lk_r is slot num_args. */
int lk_cuda_codegen(const char* source, size_t len, const lk_kparse_result_t* parsed,
                    const char* prelude, char** out, size_t* out_len, char* err,
                    size_t err_cap);

#endif
