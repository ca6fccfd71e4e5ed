/* Kernel-signature parser for the LightOS portable kernel language.
 *
 * The parser reads a program's source (an OpenCL C 1.2 subset, see
 * docs/kernel-language.md) and finds every `__kernel` / `kernel` function:
 * its name, its parameters with their address space and type, and whether
 * its body uses item blocks (LIGHTOS_ITEMS) and barriers.  It does not parse
 * expressions: it tokenises the whole source (skipping comments, string and
 * character literals and preprocessor lines), tracks brace depth, and reads
 * the declarator of each kernel.
 *
 * The result drives argument checking (lightos_kernel_set_arg_*), the CPU
 * backend's code generation (one entry wrapper per kernel) and early,
 * backend-independent errors (a barrier outside item blocks, `return` inside
 * an item block).
 *
 * Thread-safety: pure functions; no global state.
 * Lifetime: lk_kparse_result_t owns its arrays; free with lk_kparse_free.
 */
#ifndef LIGHTOS_KPARSE_H
#define LIGHTOS_KPARSE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LK_KPARSE_MAX_NAME 128
#define LK_KPARSE_MAX_TYPE 128
#define LK_KPARSE_MAX_ARGS 64

/* What a kernel parameter is. */
typedef enum lk_karg_kind {
  LK_KARG_GLOBAL_PTR = 1, /* __global T*  (also `global`)                 */
  LK_KARG_CONSTANT_PTR,   /* __constant T*                                 */
  LK_KARG_LOCAL_PTR,      /* __local T*: size given at set_arg time        */
  LK_KARG_SCALAR          /* a by-value scalar (char..double, size_t ...)  */
} lk_karg_kind_t;

/* Scalar element type, for scalars and for pointee types. */
typedef enum lk_kscalar {
  LK_KSCALAR_OTHER = 0, /* struct, typedef name, void: only the size rule applies */
  LK_KSCALAR_CHAR, LK_KSCALAR_UCHAR, LK_KSCALAR_SHORT, LK_KSCALAR_USHORT,
  LK_KSCALAR_INT, LK_KSCALAR_UINT, LK_KSCALAR_LONG, LK_KSCALAR_ULONG,
  LK_KSCALAR_FLOAT, LK_KSCALAR_DOUBLE, LK_KSCALAR_HALF,
  LK_KSCALAR_SIZE_T, LK_KSCALAR_BOOL, LK_KSCALAR_VOID
} lk_kscalar_t;

typedef struct lk_karg {
  char name[LK_KPARSE_MAX_NAME];
  /* Canonical type text as written, qualifiers normalised:
   * e.g. "__global const float*", "int", "__local float*", "uint". */
  char type_text[LK_KPARSE_MAX_TYPE];
  lk_karg_kind_t kind;
  lk_kscalar_t scalar;      /* the scalar type, or the pointee type     */
  size_t scalar_size;       /* bytes of a by-value scalar (0 for pointers
                               and for LK_KSCALAR_OTHER)                */
  bool is_const;            /* pointee is const                          */
  bool is_volatile;
  bool is_restrict;
} lk_karg_t;

typedef struct lk_kernel_sig {
  char name[LK_KPARSE_MAX_NAME];
  uint32_t num_args;
  lk_karg_t args[LK_KPARSE_MAX_ARGS];
  bool uses_item_blocks;    /* body contains LIGHTOS_ITEMS              */
  bool uses_barrier;        /* body calls barrier()                      */
  bool uses_local_decl;     /* body declares a __local variable          */
  /* Byte offsets into the source: `body_begin` is the offset of the
   * opening '{' of the kernel body, `body_end` one past its closing '}'.
   * `decl_begin` is the offset of the `__kernel` keyword. */
  size_t decl_begin, body_begin, body_end;
  uint32_t line;            /* 1-based line of the `__kernel` keyword    */
} lk_kernel_sig_t;

/* A kernel prototype (`__kernel void k(...);`): [begin, end) covers the
 * `__kernel` keyword through the ';'.  Code generators that change kernel
 * signatures blank these out. */
typedef struct lk_kproto {
  size_t begin, end;
} lk_kproto_t;

typedef struct lk_kparse_result {
  uint32_t num_kernels;
  lk_kernel_sig_t* kernels; /* heap array of num_kernels entries         */
  uint32_t num_protos;
  lk_kproto_t* protos;      /* heap array of num_protos entries          */
} lk_kparse_result_t;

/* Parses `source` (`len` bytes, need not be NUL-terminated).
 * On success returns 0 and fills *out.
 * On a malformed kernel declaration or a violated language rule returns -1
 * and writes a one-line message "line L: ..." into err (always
 * NUL-terminated when err_cap > 0); *out is then left empty (nothing to
 * free, but calling lk_kparse_free on it is harmless).
 * Rules checked: unbalanced braces/parentheses; a kernel whose return type
 * is not void; more than LK_KPARSE_MAX_ARGS parameters; a name or type
 * longer than the limits; duplicate kernel names; a pointer parameter
 * without an address space (__global/__constant/__local); a by-value
 * parameter of unknown type that is not a plain identifier; barrier() in a
 * kernel that has no LIGHTOS_ITEMS block; `return` inside a LIGHTOS_ITEMS
 * block; `LIGHTOS_ITEMS` nested inside another LIGHTOS_ITEMS block.
 * Never reads past source+len; never crashes on any input (fuzzed). */
int lk_kparse(const char* source, size_t len, lk_kparse_result_t* out,
              char* err, size_t err_cap);

void lk_kparse_free(lk_kparse_result_t* r);

/* Finds a kernel by name; NULL when absent. */
const lk_kernel_sig_t* lk_kparse_find(const lk_kparse_result_t* r,
                                      const char* name);

/* Name of a scalar type as OpenCL C writes it ("float", "uint" ...). */
const char* lk_kscalar_name(lk_kscalar_t s);

#ifdef __cplusplus
}
#endif
#endif
