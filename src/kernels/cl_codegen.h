/* Source rewriting for OpenCL devices (and later CUDA/HIP through the
 * same scheme).
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

#endif
