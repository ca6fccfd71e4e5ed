#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cl_codegen.h"

typedef struct lk_sb {
  char* p;
  size_t len, cap;
  int oom;
} lk_sb_t;

static void lk_sb_put(lk_sb_t* b, const char* s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char* np = realloc(b->p, cap);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void lk_sb_printf(lk_sb_t* b, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void lk_sb_printf(lk_sb_t* b, const char* fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    lk_sb_put(b, tmp, (size_t)n);
    return;
  }
  char* big = malloc((size_t)n + 1);
  if (!big) {
    b->oom = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  lk_sb_put(b, big, (size_t)n);
  free(big);
}

static unsigned lk_line_at(const char* s, size_t off) {
  unsigned line = 1;
  for (size_t i = 0; i < off; ++i) line += s[i] == '\n';
  return line;
}

/* Work-item functions with the portable semantics, defined once before
 * the user's code.  The builtins are captured in functions first, since
 * the macros below take their names. */
static const char lk_cl_support[] =
    "size_t lk_cl_local_size_(uint d) { return get_local_size(d); }\n"
    "size_t lk_cl_part_(size_t real_size, size_t group_size, size_t group) {\n"
    "  size_t left = real_size - group * group_size;\n"
    "  return left < group_size ? left : group_size;\n"
    "}\n"
    "#define LK_CL_REAL_(d) ((d) == 0 ? (size_t)lk_gs0 : (d) == 1 ? (size_t)lk_gs1 : "
    "(d) == 2 ? (size_t)lk_gs2 : (size_t)1)\n"
    "size_t lk_cl_num_groups_(uint d) { return get_num_groups(d); }\n"
    "#define get_global_size(d) LK_CL_REAL_(d)\n"
    "#define get_num_groups(d) ((d) > 2 ? (size_t)1 : lk_cl_num_groups_(d))\n"
    "#define get_enqueued_local_size(d) lk_cl_local_size_(d)\n"
    "#define get_local_size(d) ((d) > 2 ? (size_t)1 : lk_cl_part_(LK_CL_REAL_(d), "
    "lk_cl_local_size_(d), get_group_id(d)))\n"
    "#define LK_CL_IN_RANGE_ (get_global_id(0) < lk_gs0 && get_global_id(1) < lk_gs1 && "
    "get_global_id(2) < lk_gs2)\n"
    "#undef LIGHTOS_ITEMS\n"
    "#define LIGHTOS_ITEMS for (int lk_once_ = LK_CL_IN_RANGE_; lk_once_; lk_once_ = 0)\n";

static const char* lk_space(const lk_karg_t* a) {
  return a->kind == LK_KARG_CONSTANT_PTR ? "__constant" : "__global";
}

static void lk_emit_header(lk_sb_t* b, const lk_kernel_sig_t* k) {
  lk_sb_printf(b, "__kernel void %s(", k->name);
  for (uint32_t i = 0; i < k->num_args; ++i) {
    const lk_karg_t* a = &k->args[i];
    if (a->kind == LK_KARG_GLOBAL_PTR || a->kind == LK_KARG_CONSTANT_PTR)
      lk_sb_printf(b, "%s lk_p_%s, ulong lk_o_%s, ", a->type_text, a->name, a->name);
    else if (a->kind == LK_KARG_SCALAR && a->scalar == LK_KSCALAR_BOOL)
      lk_sb_printf(b, "uchar lk_b_%s, ", a->name); /* OpenCL C forbids bool parameters */
    else if (a->kind == LK_KARG_SCALAR && a->scalar == LK_KSCALAR_SIZE_T)
      lk_sb_printf(b, "ulong lk_z_%s, ", a->name); /* ... and size_t ones */
    else
      lk_sb_printf(b, "%s %s, ", a->type_text, a->name);
  }
  lk_sb_printf(b, "ulong lk_gs0, ulong lk_gs1, ulong lk_gs2) {\n");
  for (uint32_t i = 0; i < k->num_args; ++i) {
    const lk_karg_t* a = &k->args[i];
    if (a->kind == LK_KARG_GLOBAL_PTR || a->kind == LK_KARG_CONSTANT_PTR)
      lk_sb_printf(b, "  %s %s = (%s)((%s uchar*)lk_p_%s + lk_o_%s);\n", a->type_text, a->name,
                   a->type_text, lk_space(a), a->name, a->name);
    else if (a->kind == LK_KARG_SCALAR && a->scalar == LK_KSCALAR_BOOL)
      lk_sb_printf(b, "  %s %s = lk_b_%s != 0;\n", a->type_text, a->name, a->name);
    else if (a->kind == LK_KARG_SCALAR && a->scalar == LK_KSCALAR_SIZE_T)
      lk_sb_printf(b, "  %s %s = (size_t)lk_z_%s;\n", a->type_text, a->name, a->name);
  }
  lk_sb_printf(b, "  (void)lk_gs0; (void)lk_gs1; (void)lk_gs2;\n");
  if (!k->uses_item_blocks) lk_sb_printf(b, "  if (!LK_CL_IN_RANGE_) return;\n");
}

/* Copies source[from, to), blanking kernel prototypes (their parameter
 * lists no longer match the rewritten kernels) but keeping line breaks. */
static void lk_copy_text(lk_sb_t* b, const char* src, size_t from, size_t to,
                         const lk_kparse_result_t* parsed) {
  for (uint32_t i = 0; i < parsed->num_protos && from < to; ++i) {
    const lk_kproto_t* p = &parsed->protos[i];
    if (p->end <= from || p->begin >= to) continue;
    lk_sb_put(b, src + from, p->begin - from);
    for (size_t j = p->begin; j < p->end; ++j) lk_sb_put(b, src[j] == '\n' ? "\n" : " ", 1);
    from = p->end;
  }
  if (from < to) lk_sb_put(b, src + from, to - from);
}

int lk_cl_codegen(const char* source, size_t len, const lk_kparse_result_t* parsed,
                  const char* prelude, char** out, size_t* out_len, char* err, size_t err_cap) {
  lk_sb_t b = {0};
  lk_sb_put(&b, prelude, strlen(prelude));
  lk_sb_put(&b, "\n", 1);
  lk_sb_put(&b, lk_cl_support, sizeof lk_cl_support - 1);
  size_t at = 0;
  lk_sb_printf(&b, "#line 1 \"kernel.cl\"\n");
  for (uint32_t i = 0; i < parsed->num_kernels; ++i) {
    const lk_kernel_sig_t* k = &parsed->kernels[i];
    if (k->decl_begin < at || k->body_begin >= len || k->body_end > len) {
      snprintf(err, err_cap, "kernel '%s': inconsistent source offsets", k->name);
      free(b.p);
      return -1;
    }
    lk_copy_text(&b, source, at, k->decl_begin, parsed);
    lk_emit_header(&b, k);
    lk_sb_printf(&b, "#line %u \"kernel.cl\"\n", lk_line_at(source, k->body_begin));
    /* The body after its '{' (the header above opened the brace). */
    lk_sb_put(&b, source + k->body_begin + 1, k->body_end - k->body_begin - 1);
    at = k->body_end;
  }
  lk_copy_text(&b, source, at, len, parsed);
  if (b.oom) {
    free(b.p);
    snprintf(err, err_cap, "out of memory generating OpenCL source");
    return -1;
  }
  *out = b.p;
  *out_len = b.len;
  return 0;
}

/* ---- CUDA ------------------------------------------------------------------- */

static int lk_cu_ident_start(char c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int lk_cu_ident_char(char c) { return lk_cu_ident_start(c) || (c >= '0' && c <= '9'); }

/* Skips a comment starting at s[i] ('/' followed by '/' or '*'); returns
 * the index after it. */
static size_t lk_cu_skip_comment(const char* s, size_t i, size_t end) {
  if (s[i + 1] == '/') {
    while (i < end && s[i] != '\n') i++;
    return i;
  }
  i += 2;
  while (i + 1 < end && !(s[i] == '*' && s[i + 1] == '/')) i++;
  return i + 1 < end ? i + 2 : end;
}

/* Decides whether the __local at s[i..] (i just past the keyword) starts
 * the declaration of a variable (array or scalar: true) rather than a
 * pointer (false).  Stops at the first '*' (pointer) or at one of
 * ; = [ ( ) , { } (variable); within a preprocessor directive the end of
 * the line also stops (then: a pointer, i.e. nothing changes). */
static int lk_cu_local_is_variable(const char* s, size_t i, size_t end, int in_directive) {
  while (i < end) {
    char c = s[i];
    if (c == '/' && i + 1 < end && (s[i + 1] == '/' || s[i + 1] == '*')) {
      i = lk_cu_skip_comment(s, i, end);
      continue;
    }
    if (c == '\\' && i + 1 < end && s[i + 1] == '\n') {
      i += 2;
      continue;
    }
    if (c == '\n' && in_directive) return 0;
    if (c == '*') return 0;
    if (c == ';' || c == '=' || c == '[' || c == '(' || c == ')' || c == ',' || c == '{' ||
        c == '}')
      return 1;
    i++;
  }
  return 0;
}

/* Copies source[begin, end) with the CUDA token rewrites (see
 * cl_codegen.h); comments, string and character literals and #include /
 * #pragma / #line lines are copied unchanged. */
static void lk_cu_put_rewritten(lk_sb_t* b, const char* s, size_t begin, size_t end) {
  size_t i = begin, flushed = begin;
  int line_start = 1, in_directive = 0, skip_directive = 0;
  while (i < end) {
    char c = s[i];
    if (c == '\n') {
      if (!(i > begin && s[i - 1] == '\\')) in_directive = skip_directive = 0;
      line_start = 1;
      i++;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      i++;
      continue;
    }
    if (line_start && c == '#') {
      size_t j = i + 1;
      while (j < end && (s[j] == ' ' || s[j] == '\t')) j++;
      size_t w = j;
      while (j < end && lk_cu_ident_char(s[j])) j++;
      in_directive = 1;
      skip_directive = (j - w == 7 && !strncmp(s + w, "include", 7)) ||
                       (j - w == 6 && !strncmp(s + w, "pragma", 6)) ||
                       (j - w == 4 && !strncmp(s + w, "line", 4));
      line_start = 0;
      i = j;
      continue;
    }
    line_start = 0;
    if (skip_directive) {
      i++;
      continue;
    }
    if (c == '/' && i + 1 < end && (s[i + 1] == '/' || s[i + 1] == '*')) {
      i = lk_cu_skip_comment(s, i, end);
      continue;
    }
    if (c == '"' || c == '\'') {
      i++;
      while (i < end && s[i] != c && s[i] != '\n') i += (s[i] == '\\' && i + 1 < end) ? 2 : 1;
      if (i < end && s[i] == c) i++;
      continue;
    }
    if (c >= '0' && c <= '9') {
      while (i < end && (lk_cu_ident_char(s[i]) || s[i] == '.')) i++;
      continue;
    }
    if (!lk_cu_ident_start(c)) {
      i++;
      continue;
    }
    size_t w = i;
    while (i < end && lk_cu_ident_char(s[i])) i++;
    size_t n = i - w;
    const char* repl = NULL;
    if ((n == 5 && !strncmp(s + w, "local", 5)) || (n == 7 && !strncmp(s + w, "__local", 7)))
      repl = lk_cu_local_is_variable(s, i, end, in_directive) ? "__shared__" : "__local";
    else if (n == 6 && !strncmp(s + w, "global", 6))
      repl = "__global";
    else if (n == 8 && !strncmp(s + w, "constant", 8))
      repl = "__constant";
    else if (n == 7 && !strncmp(s + w, "private", 7))
      repl = "__private";
    else if (n == 6 && !strncmp(s + w, "kernel", 6))
      repl = "__kernel";
    if (repl && !(n == strlen(repl) && !strncmp(s + w, repl, n))) {
      lk_sb_put(b, s + flushed, w - flushed);
      lk_sb_put(b, repl, strlen(repl));
      flushed = i;
    }
  }
  lk_sb_put(b, s + flushed, end - flushed);
}

/* The CUDA type of a pointer parameter: the parser's text without its
 * address space; __constant pointees are const. */
static void lk_cu_ptr_type(const lk_karg_t* a, char* out, size_t cap) {
  static const char* const spaces[] = {"__global ", "__constant ", "__local "};
  const char* t = a->type_text;
  for (size_t i = 0; i < sizeof spaces / sizeof spaces[0]; ++i) {
    size_t n = strlen(spaces[i]);
    if (!strncmp(t, spaces[i], n)) {
      t += n;
      break;
    }
  }
  snprintf(out, cap, "%s%s%s",
           a->kind == LK_KARG_CONSTANT_PTR && !a->is_const ? "const " : "", t,
           a->is_restrict && a->kind != LK_KARG_LOCAL_PTR ? " __restrict__" : "");
}

static int lk_cu_emit_header(lk_sb_t* b, const lk_kernel_sig_t* k, char* err, size_t err_cap) {
  char t[LK_KPARSE_MAX_TYPE + 32];
  bool has_local = false;
  for (uint32_t i = 0; i < k->num_args; ++i)
    if (!strncmp(k->args[i].name, "lk_", 3) || !strncmp(k->args[i].name, "LK_", 3)) {
      snprintf(err, err_cap,
               "line %lu: kernel '%s': parameter name '%s' is reserved (names starting with "
               "lk_ belong to the implementation)",
               (unsigned long)k->line, k->name, k->args[i].name);
      return -1;
    }
  lk_sb_printf(b, "extern \"C\" __global__ void %s(", k->name);
  for (uint32_t i = 0; i < k->num_args; ++i) {
    const lk_karg_t* a = &k->args[i];
    switch (a->kind) {
      case LK_KARG_GLOBAL_PTR:
      case LK_KARG_CONSTANT_PTR:
        lk_cu_ptr_type(a, t, sizeof t);
        lk_sb_printf(b, "%s %s, ", t, a->name);
        break;
      case LK_KARG_LOCAL_PTR:
        lk_sb_printf(b, "size_t lk_l_%s, ", a->name);
        has_local = true;
        break;
      default:
        if (a->scalar == LK_KSCALAR_BOOL)
          lk_sb_printf(b, "unsigned char lk_b_%s, ", a->name);
        else
          lk_sb_printf(b, "%s %s, ", a->type_text, a->name);
        break;
    }
  }
  lk_sb_printf(b, "const lk_cu_range_t lk_r) {\n");
  if (has_local) lk_sb_printf(b, "  extern __shared__ __align__(64) unsigned char lk_smem_[];\n");
  for (uint32_t i = 0; i < k->num_args; ++i) {
    const lk_karg_t* a = &k->args[i];
    if (a->kind == LK_KARG_LOCAL_PTR) {
      lk_cu_ptr_type(a, t, sizeof t);
      lk_sb_printf(b, "  %s %s = (%s)(lk_smem_ + lk_l_%s);\n", t, a->name, t, a->name);
    } else if (a->kind == LK_KARG_SCALAR && a->scalar == LK_KSCALAR_BOOL) {
      lk_sb_printf(b, "  %s %s = lk_b_%s != 0;\n", a->type_text, a->name, a->name);
    }
  }
  if (!k->uses_item_blocks) lk_sb_printf(b, "  if (!(LK_CU_IN_RANGE_)) return;\n");
  return 0;
}

int lk_cuda_codegen(const char* source, size_t len, const lk_kparse_result_t* parsed,
                    const char* prelude, char** out, size_t* out_len, char* err,
                    size_t err_cap) {
  lk_sb_t b = {0};
  lk_sb_put(&b, prelude, strlen(prelude));
  lk_sb_put(&b, "\n#line 1 \"kernel.cl\"\n", 21);
  size_t at = 0;
  for (uint32_t i = 0; i < parsed->num_kernels; ++i) {
    const lk_kernel_sig_t* k = &parsed->kernels[i];
    if (k->decl_begin < at || k->body_begin >= len || k->body_end > len ||
        k->body_begin < k->decl_begin || k->body_end <= k->body_begin) {
      snprintf(err, err_cap, "kernel '%s': inconsistent source offsets", k->name);
      free(b.p);
      return -1;
    }
    lk_cu_put_rewritten(&b, source, at, k->decl_begin);
    if (lk_cu_emit_header(&b, k, err, err_cap) != 0) {
      free(b.p);
      return -1;
    }
    lk_sb_printf(&b, "#line %u \"kernel.cl\"\n", lk_line_at(source, k->body_begin));
    /* The body after its '{' (the header above opened the brace). */
    lk_cu_put_rewritten(&b, source, k->body_begin + 1, k->body_end);
    at = k->body_end;
  }
  lk_cu_put_rewritten(&b, source, at, len);
  if (b.oom) {
    free(b.p);
    snprintf(err, err_cap, "out of memory generating CUDA source");
    return -1;
  }
  *out = b.p;
  *out_len = b.len;
  return 0;
}
