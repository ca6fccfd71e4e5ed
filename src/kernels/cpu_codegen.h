/* CPU code generator for the LightOS portable kernel language.
 *
 * Turns a program's source (already parsed by lk_kparse) into one C11
 * translation unit that the CPU backend compiles into a shared object:
 *
 *   #line 1 "lightos_prelude_cpu.h"
 *   <prelude>                          (lk_prelude_cpu, src/kernels/prelude_cpu.h)
 *   #line 1 "lightos_cpu_abi.h"
 *   <copy of lk_cpu_launch_t + _Static_asserts on its layout>
 *   const unsigned lk_abi_version = LK_CPU_ABI_VERSION;   (exported)
 *   #line 1 "kernel.cl"
 *   <the source, each kernel rewritten, #line directives keeping every
 *    user line (and the column of the body's first line) where it was>
 *   #line 1 "lightos_entries.c"
 *   <one exported lk_entry_K per kernel, see src/hal/cpu/cpu_abi.h>
 *
 * Rewriting (everything outside kernel declarations is copied verbatim):
 *  - a kernel without item blocks becomes
 *      static inline __attribute__((always_inline)) void lk_item_K(
 *          const lk_cpu_launch_t* restrict lk_L,
 *          size_t lk_gx, size_t lk_gy, size_t lk_gz,      group id
 *          size_t lk_nx, size_t lk_ny, size_t lk_nz,      this group's size
 *          size_t lk_lx, size_t lk_ly, size_t lk_lz,      local id
 *          <params>)
 *    and its entry loops groups, then z, y, x (x innermost) calling it;
 *  - a kernel with item blocks becomes
 *      static void lk_group_K(const lk_cpu_launch_t* restrict lk_L,
 *          size_t lk_gx, lk_gy, lk_gz, size_t lk_nx, lk_ny, lk_nz, <params>)
 *    called once per group; LIGHTOS_ITEMS (prelude) loops over the items.
 * The parameters keep their names; their types are the parser's type_text
 * without the address-space keyword (__constant pointers point to const),
 * plus `restrict` where the source had it.  Every parameter is "used" with
 * a (void) cast so -Wunused-parameter stays quiet.
 *
 * After each kernel body the generator defines LK_KERNEL_DEFINED_<K>, and
 * each entry is compiled only under it, so a kernel inside a false #if has
 * no entry (dlsym finds nothing) instead of breaking the build.
 *
 * Extra language rule checked here: a kernel that declares a __local
 * variable must use item blocks (its __local storage is per group).
 *
 * Thread-safety: pure function, no global state.
 */
#ifndef LIGHTOS_KERNELS_CPU_CODEGEN_H
#define LIGHTOS_KERNELS_CPU_CODEGEN_H

#include <stddef.h>

#include "kernels/kparse.h"

#ifdef __cplusplus
extern "C" {
#endif

/* File name that #line gives to the user's source in compiler messages. */
#define LK_CPU_CODEGEN_SOURCE_NAME "kernel.cl"

/* Generates the translation unit for `source` (`len` bytes, need not be
 * NUL-terminated) described by `parsed` (from lk_kparse on the same bytes).
 * `prelude` is the NUL-terminated CPU prelude (lk_prelude_cpu).
 * On success returns 0, *out_c = malloc'ed NUL-terminated C text (caller
 * frees) and *out_len = its length without the NUL.
 * On failure returns -1, *out_c = NULL, *out_len = 0, and a one-line message
 * in err (NUL-terminated when err_cap > 0; "line L: ..." when it concerns a
 * place in the source). */
int lk_cpu_codegen(const char* source, size_t len, const lk_kparse_result_t* parsed,
                   const char* prelude, char** out_c, size_t* out_len, char* err,
                   size_t err_cap);

#ifdef __cplusplus
}
#endif
#endif
