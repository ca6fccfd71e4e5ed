/* CPU code generator: see cpu_codegen.h for the contract and the shape of
 * the generated translation unit, src/kernels/prelude_cpu.h for the macros
 * the generated functions rely on (lk_L, lk_g*, lk_n*, lk_l*, lk_li) and
 * src/hal/cpu/cpu_abi.h for the entry-point ABI.
 */
#include "kernels/cpu_codegen.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hal/cpu/cpu_abi.h"

#if defined(__GNUC__) || defined(__clang__)
#define CG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CG_PRINTF(a, b)
#endif

/* ---- Growing output buffer ---------------------------------------------- */

typedef struct cg_buf {
  char* p;
  size_t n, cap;
  int oom;
} cg_buf_t;

static void cg_put(cg_buf_t* b, const char* s, size_t n) {
  if (b->oom || n == 0) return;
  if (n > SIZE_MAX - b->n - 1) {
    b->oom = 1;
    return;
  }
  if (b->n + n + 1 > b->cap) {
    size_t ncap = b->cap ? b->cap : 4096;
    char* np;
    while (ncap < b->n + n + 1) {
      if (ncap > SIZE_MAX / 2) {
        ncap = b->n + n + 1;
        break;
      }
      ncap *= 2;
    }
    np = (char*)realloc(b->p, ncap);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = ncap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void cg_puts(cg_buf_t* b, const char* s) { cg_put(b, s, strlen(s)); }

static void cg_printf(cg_buf_t* b, const char* fmt, ...) CG_PRINTF(2, 3);
static void cg_printf(cg_buf_t* b, const char* fmt, ...) {
  char small[512];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->oom = 1;
    return;
  }
  if ((size_t)n < sizeof small) {
    cg_put(b, small, (size_t)n);
  } else {
    char* big = (char*)malloc((size_t)n + 1);
    if (!big) {
      b->oom = 1;
      return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    cg_put(b, big, (size_t)n);
    free(big);
  }
}

static int cg_fail(char* err, size_t err_cap, const char* fmt, ...) CG_PRINTF(3, 4);
static int cg_fail(char* err, size_t err_cap, const char* fmt, ...) {
  if (err && err_cap > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_cap, fmt, ap);
    va_end(ap);
    err[err_cap - 1] = '\0';
  }
  return -1;
}

/* ---- Source positions ----------------------------------------------------- */

/* Tracks the 1-based line of an offset, moving forward only. */
typedef struct cg_pos {
  const char* src;
  size_t off;
  unsigned long line;
} cg_pos_t;

static unsigned long cg_line_at(cg_pos_t* p, size_t off) {
  while (p->off < off) {
    if (p->src[p->off] == '\n') p->line++;
    p->off++;
  }
  return p->line;
}

/* Emits whitespace reaching the column of `off` on its line (tabs kept). */
static void cg_pad_to(cg_buf_t* b, const char* src, size_t off) {
  size_t s = off;
  while (s > 0 && src[s - 1] != '\n') s--;
  for (; s < off; s++) cg_put(b, src[s] == '\t' ? "\t" : " ", 1);
}

static void cg_line_directive(cg_buf_t* b, unsigned long line, const char* file) {
  cg_printf(b, "\n#line %lu \"%s\"\n", line, file);
}

/* ---- Names and types ------------------------------------------------------- */

static int cg_is_ident(const char* s, size_t cap) {
  size_t i;
  if (!s || !s[0] || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (i = 0; i < cap && s[i]; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_'))
      return 0;
  }
  return i < cap; /* NUL-terminated within the field */
}

/* Type text: words, spaces and '*' only, NUL-terminated within the field. */
static int cg_is_type_text(const char* s, size_t cap) {
  size_t i;
  if (!s || !s[0]) return 0;
  for (i = 0; i < cap && s[i]; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == ' ' || c == '*'))
      return 0;
  }
  return i < cap;
}

/* Does the word `w` occur as a whole word in s? */
static int cg_has_word(const char* s, const char* w) {
  size_t wl = strlen(w);
  const char* p = s;
  while ((p = strstr(p, w)) != NULL) {
    int before = p == s || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                             (p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= '0' && p[-1] <= '9'));
    char a = p[wl];
    int after = !(a == '_' || (a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z') ||
                  (a >= '0' && a <= '9'));
    if (before && after) return 1;
    p += wl;
  }
  return 0;
}

/* The C type of a parameter: the parser's text without its address-space
 * keyword; pointers to __constant point to const; `restrict` kept. */
static void cg_param_type(const lk_karg_t* a, char* out, size_t cap) {
  static const char* const spaces[] = {"__global ", "global ",  "__constant ", "constant ",
                                       "__local ",  "local ",   "__private ",  "private "};
  const char* t = a->type_text;
  size_t i;
  int is_ptr = a->kind != LK_KARG_SCALAR;
  for (i = 0; i < sizeof spaces / sizeof spaces[0]; i++) {
    size_t n = strlen(spaces[i]);
    if (strncmp(t, spaces[i], n) == 0) {
      t += n;
      break;
    }
  }
  while (*t == ' ') t++;
  snprintf(out, cap, "%s%s%s",
           (a->kind == LK_KARG_CONSTANT_PTR && !cg_has_word(t, "const")) ? "const " : "", t,
           (is_ptr && a->is_restrict && !cg_has_word(t, "restrict")) ? " restrict" : "");
}

/* A by-value scalar's plain C type, for the unaligned load; NULL when the
 * type is not a known scalar (then the value is read through a pointer). */
static const char* cg_scalar_ctype(lk_kscalar_t s) {
  switch (s) {
    case LK_KSCALAR_CHAR: return "signed char";
    case LK_KSCALAR_UCHAR: return "unsigned char";
    case LK_KSCALAR_SHORT: return "short";
    case LK_KSCALAR_USHORT: return "unsigned short";
    case LK_KSCALAR_INT: return "int";
    case LK_KSCALAR_UINT: return "unsigned int";
    case LK_KSCALAR_LONG: return "long";
    case LK_KSCALAR_ULONG: return "unsigned long";
    case LK_KSCALAR_FLOAT: return "float";
    case LK_KSCALAR_DOUBLE: return "double";
    case LK_KSCALAR_SIZE_T: return "size_t";
    default: return NULL;
  }
}

/* ---- Validation ------------------------------------------------------------- */

static int cg_check_kernel(const char* source, size_t len, const lk_kernel_sig_t* k,
                           char* err, size_t err_cap) {
  uint32_t i, j;
  if (!cg_is_ident(k->name, sizeof k->name))
    return cg_fail(err, err_cap, "line %lu: kernel name is not a valid identifier",
                   (unsigned long)k->line);
  if (!(k->decl_begin < k->body_begin && k->body_begin < k->body_end && k->body_end <= len) ||
      source[k->body_begin] != '{' || source[k->body_end - 1] != '}')
    return cg_fail(err, err_cap,
                   "line %lu: kernel '%s': parse result does not match the source (offsets "
                   "%lu/%lu/%lu of %lu bytes)",
                   (unsigned long)k->line, k->name, (unsigned long)k->decl_begin,
                   (unsigned long)k->body_begin, (unsigned long)k->body_end,
                   (unsigned long)len);
  if (k->num_args > LK_KPARSE_MAX_ARGS)
    return cg_fail(err, err_cap, "line %lu: kernel '%s' has too many parameters",
                   (unsigned long)k->line, k->name);
  if (k->uses_local_decl && !k->uses_item_blocks)
    return cg_fail(err, err_cap,
                   "line %lu: kernel '%s' declares __local memory but has no LIGHTOS_ITEMS "
                   "block; __local variables are shared by a work-group, so declare them "
                   "outside item blocks in a kernel that uses item blocks (see "
                   "docs/kernel-language.md)",
                   (unsigned long)k->line, k->name);
  for (i = 0; i < k->num_args; i++) {
    const lk_karg_t* a = &k->args[i];
    if (!cg_is_ident(a->name, sizeof a->name))
      return cg_fail(err, err_cap, "line %lu: kernel '%s': parameter %u has no valid name",
                     (unsigned long)k->line, k->name, (unsigned)(i + 1));
    if (strncmp(a->name, "lk_", 3) == 0 || strncmp(a->name, "LK_", 3) == 0)
      return cg_fail(err, err_cap,
                     "line %lu: kernel '%s': parameter name '%s' is reserved (names starting "
                     "with lk_ belong to the implementation)",
                     (unsigned long)k->line, k->name, a->name);
    for (j = 0; j < i; j++)
      if (strcmp(k->args[j].name, a->name) == 0)
        return cg_fail(err, err_cap, "line %lu: kernel '%s': two parameters are named '%s'",
                       (unsigned long)k->line, k->name, a->name);
    if (!cg_is_type_text(a->type_text, sizeof a->type_text))
      return cg_fail(err, err_cap, "line %lu: kernel '%s': parameter '%s' has no valid type",
                     (unsigned long)k->line, k->name, a->name);
    if (a->kind < LK_KARG_GLOBAL_PTR || a->kind > LK_KARG_SCALAR)
      return cg_fail(err, err_cap, "line %lu: kernel '%s': parameter '%s' has an unknown kind",
                     (unsigned long)k->line, k->name, a->name);
    if (a->scalar == LK_KSCALAR_HALF)
      return cg_fail(err, err_cap,
                     "line %lu: kernel '%s': parameter '%s' uses half, which the kernel "
                     "language does not support",
                     (unsigned long)k->line, k->name, a->name);
  }
  return 0;
}

/* ---- Emission ----------------------------------------------------------------- */

static void cg_emit_abi(cg_buf_t* b) {
  cg_puts(b,
          "\n#line 1 \"lightos_cpu_abi.h\"\n"
          "typedef struct lk_cpu_launch {\n"
          "  uint32_t work_dim;\n"
          "  uint32_t pad_;\n"
          "  size_t global_size[3];\n"
          "  size_t local_size[3];\n"
          "  size_t num_groups[3];\n"
          "  size_t global_offset[3];\n"
          "  void* const* args;\n"
          "} lk_cpu_launch_t;\n");
  /* The runtime's layout, checked by the kernel compiler. */
  cg_printf(b, "_Static_assert(sizeof(lk_cpu_launch_t) == %luu, \"lk_cpu_launch_t size\");\n",
            (unsigned long)sizeof(lk_cpu_launch_t));
#define CG_OFF(f)                                                                       \
  cg_printf(b, "_Static_assert(offsetof(lk_cpu_launch_t, " #f ") == %luu, \"lk_cpu_launch_t." #f \
            " offset\");\n",                                                            \
            (unsigned long)offsetof(lk_cpu_launch_t, f))
  CG_OFF(work_dim);
  CG_OFF(global_size);
  CG_OFF(local_size);
  CG_OFF(num_groups);
  CG_OFF(global_offset);
  CG_OFF(args);
#undef CG_OFF
  cg_printf(b,
            "__attribute__((visibility(\"default\"))) extern const unsigned lk_abi_version;\n"
            "__attribute__((visibility(\"default\"))) const unsigned lk_abi_version = %uu;\n",
            (unsigned)LK_CPU_ABI_VERSION);
}

static void cg_emit_params(cg_buf_t* b, const lk_kernel_sig_t* k) {
  uint32_t i;
  char t[LK_KPARSE_MAX_TYPE + 32];
  for (i = 0; i < k->num_args; i++) {
    cg_param_type(&k->args[i], t, sizeof t);
    cg_printf(b, ", %s %s", t, k->args[i].name);
  }
}

/* The replacement declaration and the (void) prologue that follows '{'. */
static void cg_emit_decl(cg_buf_t* b, const lk_kernel_sig_t* k) {
  if (k->uses_item_blocks) {
    cg_printf(b,
              "static void lk_group_%s(const lk_cpu_launch_t* restrict lk_L, size_t lk_gx, "
              "size_t lk_gy, size_t lk_gz, size_t lk_nx, size_t lk_ny, size_t lk_nz",
              k->name);
  } else {
    cg_printf(b,
              "static inline __attribute__((always_inline)) void lk_item_%s(const "
              "lk_cpu_launch_t* restrict lk_L, size_t lk_gx, size_t lk_gy, size_t lk_gz, "
              "size_t lk_nx, size_t lk_ny, size_t lk_nz, size_t lk_lx, size_t lk_ly, "
              "size_t lk_lz",
              k->name);
  }
  cg_emit_params(b, k);
  cg_puts(b, ")");
}

static void cg_emit_prologue(cg_buf_t* b, const lk_kernel_sig_t* k) {
  uint32_t i;
  cg_puts(b, " (void)lk_L; (void)lk_gx; (void)lk_gy; (void)lk_gz; (void)lk_nx; (void)lk_ny; "
             "(void)lk_nz;");
  if (k->uses_item_blocks) {
    /* Outside item blocks there is no current work-item: get_local_id(),
     * get_global_id() and LIGHTOS_P() fail with a message naming the rule.
     * LIGHTOS_PRIVATE arrays have one element per item of the group. */
    cg_puts(b, " struct lk_work_item_functions_need_a_LIGHTOS_ITEMS_block { char lk_; } lk_lx = "
               "{0}, lk_ly = {0}, lk_lz = {0}, lk_li = {0}; (void)lk_lx; (void)lk_ly; "
               "(void)lk_lz; (void)lk_li; const size_t lk_pn = lk_nx * lk_ny * lk_nz; "
               "(void)lk_pn;");
  } else {
    /* One item: a LIGHTOS_PRIVATE value is a one-element array. */
    cg_puts(b, " (void)lk_lx; (void)lk_ly; (void)lk_lz; enum { lk_pn = 1, lk_li = 0 };");
  }
  for (i = 0; i < k->num_args; i++) cg_printf(b, " (void)%s;", k->args[i].name);
}

static void cg_emit_entry(cg_buf_t* b, const lk_kernel_sig_t* k) {
  uint32_t i;
  char t[LK_KPARSE_MAX_TYPE + 32];
  const char* sig =
      "__attribute__((visibility(\"default\"))) void lk_entry_%s(const lk_cpu_launch_t* lk_Lp, "
      "size_t lk_gbegin, size_t lk_gend, void* lk_local_mem)";

  cg_printf(b, "\n#ifdef LK_KERNEL_DEFINED_%s\n", k->name);
  cg_printf(b, sig, k->name);
  cg_puts(b, ";\n");
  cg_printf(b, sig, k->name);
  cg_puts(b,
          " {\n"
          "  if (lk_gbegin >= lk_gend) return;\n"
          "  /* A private copy: the compiler knows kernel stores cannot change it. */\n"
          "  const lk_cpu_launch_t lk_Lc = *lk_Lp;\n"
          "  const lk_cpu_launch_t* const lk_L = &lk_Lc;\n"
          "  void* const* const lk_args = lk_Lc.args;\n"
          "  (void)lk_args; (void)lk_local_mem;\n");
  /* Arguments, unpacked once per call. */
  for (i = 0; i < k->num_args; i++) {
    const lk_karg_t* a = &k->args[i];
    cg_param_type(a, t, sizeof t);
    cg_printf(b, "  typedef %s lk_t%u;\n", t, (unsigned)i);
    switch (a->kind) {
      case LK_KARG_GLOBAL_PTR:
      case LK_KARG_CONSTANT_PTR:
        cg_printf(b, "  lk_t%u lk_a%u = (lk_t%u)*(void* const*)lk_args[%u];\n", (unsigned)i,
                  (unsigned)i, (unsigned)i, (unsigned)i);
        break;
      case LK_KARG_LOCAL_PTR:
        cg_printf(b,
                  "  lk_t%u lk_a%u = (lk_t%u)(void*)((char*)lk_local_mem + *(const "
                  "size_t*)lk_args[%u]);\n",
                  (unsigned)i, (unsigned)i, (unsigned)i, (unsigned)i);
        break;
      default:
        if (a->scalar == LK_KSCALAR_BOOL) {
          cg_printf(b, "  lk_t%u lk_a%u = *(const unsigned char*)lk_args[%u] != 0;\n",
                    (unsigned)i, (unsigned)i, (unsigned)i);
        } else if (cg_scalar_ctype(a->scalar)) {
          /* memcpy: the value's bytes need not be aligned. */
          cg_printf(b,
                    "  %s lk_v%u; memcpy(&lk_v%u, lk_args[%u], sizeof lk_v%u);\n"
                    "  lk_t%u lk_a%u = lk_v%u;\n",
                    cg_scalar_ctype(a->scalar), (unsigned)i, (unsigned)i, (unsigned)i,
                    (unsigned)i, (unsigned)i, (unsigned)i, (unsigned)i);
        } else {
          cg_printf(b, "  lk_t%u lk_a%u = *(const lk_t%u*)lk_args[%u];\n", (unsigned)i,
                    (unsigned)i, (unsigned)i, (unsigned)i);
        }
        break;
    }
  }
  cg_puts(b,
          "  const size_t lk_ngx = lk_Lc.num_groups[0], lk_ngy = lk_Lc.num_groups[1];\n"
          "  const size_t lk_lsx = lk_Lc.local_size[0], lk_lsy = lk_Lc.local_size[1], "
          "lk_lsz = lk_Lc.local_size[2];\n"
          "  const size_t lk_gsx = lk_Lc.global_size[0], lk_gsy = lk_Lc.global_size[1], "
          "lk_gsz = lk_Lc.global_size[2];\n"
          "  size_t lk_gx = lk_gbegin % lk_ngx, lk_gy = lk_gbegin / lk_ngx % lk_ngy, "
          "lk_gz = lk_gbegin / lk_ngx / lk_ngy;\n"
          "  for (size_t lk_g = lk_gbegin; lk_g < lk_gend; ++lk_g) {\n"
          "    /* Items of this group per dimension: the last group may be partial. */\n"
          "    const size_t lk_bx = lk_gx * lk_lsx, lk_by = lk_gy * lk_lsy, lk_bz = lk_gz * "
          "lk_lsz;\n"
          "    const size_t lk_rx = lk_gsx > lk_bx ? lk_gsx - lk_bx : 0;\n"
          "    const size_t lk_ry = lk_gsy > lk_by ? lk_gsy - lk_by : 0;\n"
          "    const size_t lk_rz = lk_gsz > lk_bz ? lk_gsz - lk_bz : 0;\n"
          "    const size_t lk_nx = lk_rx < lk_lsx ? lk_rx : lk_lsx;\n"
          "    const size_t lk_ny = lk_ry < lk_lsy ? lk_ry : lk_lsy;\n"
          "    const size_t lk_nz = lk_rz < lk_lsz ? lk_rz : lk_lsz;\n");
  if (k->uses_item_blocks) {
    cg_printf(b, "    if (lk_nx && lk_ny && lk_nz) lk_group_%s(lk_L, lk_gx, lk_gy, lk_gz, "
                 "lk_nx, lk_ny, lk_nz",
              k->name);
    for (i = 0; i < k->num_args; i++) cg_printf(b, ", lk_a%u", (unsigned)i);
    cg_puts(b, ");\n");
  } else {
    cg_printf(b,
              "    for (size_t lk_lz = 0; lk_lz < lk_nz; ++lk_lz)\n"
              "      for (size_t lk_ly = 0; lk_ly < lk_ny; ++lk_ly)\n"
              "        for (size_t lk_lx = 0; lk_lx < lk_nx; ++lk_lx)\n"
              "          lk_item_%s(lk_L, lk_gx, lk_gy, lk_gz, lk_nx, lk_ny, lk_nz, lk_lx, "
              "lk_ly, lk_lz",
              k->name);
    for (i = 0; i < k->num_args; i++) cg_printf(b, ", lk_a%u", (unsigned)i);
    cg_puts(b, ");\n");
  }
  cg_puts(b,
          "    if (++lk_gx == lk_ngx) {\n"
          "      lk_gx = 0;\n"
          "      if (++lk_gy == lk_ngy) {\n"
          "        lk_gy = 0;\n"
          "        ++lk_gz;\n"
          "      }\n"
          "    }\n"
          "  }\n"
          "}\n"
          "#endif\n");
}

/* ---- Entry point ---------------------------------------------------------------- */

int lk_cpu_codegen(const char* source, size_t len, const lk_kparse_result_t* parsed,
                   const char* prelude, char** out_c, size_t* out_len, char* err,
                   size_t err_cap) {
  cg_buf_t b = {NULL, 0, 0, 0};
  cg_pos_t pos;
  const lk_kernel_sig_t** order = NULL;
  uint32_t nk, i;
  size_t copied = 0, plen;

  if (err && err_cap > 0) err[0] = '\0';
  if (out_c) *out_c = NULL;
  if (out_len) *out_len = 0;
  if (!out_c) return cg_fail(err, err_cap, "no output pointer given");
  if (!source && len > 0) return cg_fail(err, err_cap, "no source given");
  if (!parsed) return cg_fail(err, err_cap, "no parse result given");
  if (!prelude) return cg_fail(err, err_cap, "no prelude given");
  nk = parsed->num_kernels;
  if (nk > 0 && !parsed->kernels) return cg_fail(err, err_cap, "parse result has no kernels array");
  if (len > 0 && memchr(source, '\0', len)) {
    cg_pos_t p0 = {source, 0, 1};
    return cg_fail(err, err_cap, "line %lu: the source contains a NUL byte",
                   cg_line_at(&p0, (size_t)((const char*)memchr(source, '\0', len) - source)));
  }

  /* Kernels in source order; check each and that they do not overlap. */
  if (nk > 0) {
    order = (const lk_kernel_sig_t**)malloc(nk * sizeof *order);
    if (!order) return cg_fail(err, err_cap, "out of memory");
    for (i = 0; i < nk; i++) {
      const lk_kernel_sig_t* k = &parsed->kernels[i];
      uint32_t j = i;
      if (cg_check_kernel(source, len, k, err, err_cap)) {
        free(order);
        return -1;
      }
      while (j > 0 && order[j - 1]->decl_begin > k->decl_begin) {
        order[j] = order[j - 1];
        j--;
      }
      order[j] = k;
    }
    for (i = 0; i < nk; i++) {
      uint32_t j;
      if (i > 0 && order[i - 1]->body_end > order[i]->decl_begin) {
        cg_fail(err, err_cap, "line %lu: kernels '%s' and '%s' overlap in the parse result",
                (unsigned long)order[i]->line, order[i - 1]->name, order[i]->name);
        free(order);
        return -1;
      }
      for (j = 0; j < i; j++)
        if (strcmp(order[j]->name, order[i]->name) == 0) {
          cg_fail(err, err_cap, "line %lu: duplicate kernel '%s'",
                  (unsigned long)order[i]->line, order[i]->name);
          free(order);
          return -1;
        }
    }
  }

  /* Prelude and ABI. */
  cg_puts(&b, "/* Generated by LightOS (src/kernels/cpu_codegen.c); do not edit. */\n"
              "#line 1 \"lightos_prelude_cpu.h\"\n");
  plen = strlen(prelude);
  cg_put(&b, prelude, plen);
  cg_emit_abi(&b);

  /* The user's source with the kernels rewritten. */
  cg_puts(&b, "#line 1 \"" LK_CPU_CODEGEN_SOURCE_NAME "\"\n");
  pos.src = source;
  pos.off = 0;
  pos.line = 1;
  for (i = 0; i < nk; i++) {
    const lk_kernel_sig_t* k = order[i];
    cg_put(&b, source + copied, k->decl_begin - copied);
    cg_line_directive(&b, cg_line_at(&pos, k->decl_begin), LK_CPU_CODEGEN_SOURCE_NAME);
    cg_emit_decl(&b, k);
    cg_line_directive(&b, cg_line_at(&pos, k->body_begin), LK_CPU_CODEGEN_SOURCE_NAME);
    cg_pad_to(&b, source, k->body_begin);
    cg_put(&b, "{", 1);
    cg_emit_prologue(&b, k);
    cg_put(&b, source + k->body_begin + 1, k->body_end - k->body_begin - 1);
    copied = k->body_end;
    /* Marks the kernel as compiled: one inside a false #if gets no entry. */
    cg_printf(&b, "\n#define LK_KERNEL_DEFINED_%s 1", k->name);
    cg_line_directive(&b, cg_line_at(&pos, copied), LK_CPU_CODEGEN_SOURCE_NAME);
    cg_pad_to(&b, source, copied);
  }
  cg_put(&b, source + copied, len - copied);

  /* Entry points (two newlines: the source may end in a backslash). */
  cg_puts(&b, "\n\n#line 1 \"lightos_entries.c\"\n");
  for (i = 0; i < nk; i++) cg_emit_entry(&b, order[i]);
  free(order);

  if (b.oom || !b.p) {
    free(b.p);
    return cg_fail(err, err_cap, "out of memory generating the CPU translation unit");
  }
  *out_c = b.p;
  if (out_len) *out_len = b.n;
  return 0;
}
