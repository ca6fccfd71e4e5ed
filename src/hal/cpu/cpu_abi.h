/* The call interface between the CPU backend and the shared objects it
 * compiles from portable kernels.  The generated C code includes a copy of
 * this struct (emitted by the code generator, see src/kernels/cpu_codegen.c)
 * so that both sides agree; LK_CPU_ABI_VERSION guards the layout and is part
 * of the binary-cache key.
 */
#ifndef LIGHTOS_CPU_ABI_H
#define LIGHTOS_CPU_ABI_H

#include <stddef.h>
#include <stdint.h>

#define LK_CPU_ABI_VERSION 1

typedef struct lk_cpu_launch {
  uint32_t work_dim;           /* 1, 2 or 3                                  */
  uint32_t pad_;
  size_t global_size[3];       /* unused dims are 1                          */
  size_t local_size[3];        /* work-group size; unused dims are 1         */
  size_t num_groups[3];        /* ceil(global / local) per dim               */
  size_t global_offset[3];     /* usually 0                                  */
  /* args[i] points at the value of argument i:
   *   __global/__constant pointer: a `void*` holding the device address;
   *   scalar:                     the scalar's bytes;
   *   __local pointer:            a `size_t` byte offset into local_mem.  */
  void* const* args;
} lk_cpu_launch_t;

/* Each kernel K in a program is exported as
 *   void lk_entry_K(const lk_cpu_launch_t* L, size_t group_begin,
 *                   size_t group_end, void* local_mem);
 * which runs the work-groups with linear ids [group_begin, group_end)
 * (linear id = gx + ngx*(gy + ngy*gz)) one after another on the calling
 * thread.  `local_mem` is a 64-byte-aligned per-thread arena at least
 * `local_mem_bytes` long (the sum of the __local pointer arguments' sizes,
 * each rounded up to 64); static __local arrays live on the stack.
 * The last group in each dimension may be smaller than local_size
 * (non-uniform work-groups): items with global id >= global_size never run.
 *
 * The shared object also exports
 *   const unsigned lk_abi_version = LK_CPU_ABI_VERSION;
 */
typedef void (*lk_cpu_entry_fn)(const lk_cpu_launch_t* L, size_t group_begin,
                                size_t group_end, void* local_mem);

#endif
