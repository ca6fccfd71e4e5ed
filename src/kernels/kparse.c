/* Kernel-signature parser: see kparse.h for the contract.
 *
 * Three passes over the source:
 *   1. tokenise: identifiers, pp-numbers, literals (kept as one opaque
 *      token), single-byte punctuation; comments and preprocessor lines are
 *      skipped; every token records its byte offset and 1-based line;
 *   2. match ( [ { with ) ] } using an explicit stack (no recursion), which
 *      reports unbalanced brackets and gives every bracket its partner;
 *   3. walk the top level (skipping every bracketed group) looking for
 *      `__kernel` / `kernel`, read each kernel's declarator and parameters
 *      and scan its body for item blocks, barriers and __local.
 */
#include "kernels/kparse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Tokens -------------------------------------------------------------- */

enum { KP_IDENT = 1, KP_NUMBER, KP_LITERAL, KP_PUNCT };

#define KP_NONE ((size_t)-1)

typedef struct kp_tok {
  size_t off, len;
  size_t match;   /* partner bracket index for ( ) [ ] { }, else KP_NONE */
  uint32_t line;
  uint8_t kind;
} kp_tok_t;

typedef struct kp_ctx {
  const char* src;
  size_t len;
  kp_tok_t* tok;
  size_t ntok, tcap;
  char* err;
  size_t err_cap;
  lk_kernel_sig_t* kernels;
  uint32_t nk;
  size_t kcap;
  lk_kproto_t* protos;
  uint32_t np;
  size_t pcap;
} kp_ctx_t;

#if defined(__GNUC__) || defined(__clang__)
#define KP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KP_PRINTF(a, b)
#endif

static int kp_fail(kp_ctx_t* c, uint32_t line, const char* fmt, ...) KP_PRINTF(3, 4);

/* Writes "line L: <message>" into the caller's buffer; returns -1. */
static int kp_fail(kp_ctx_t* c, uint32_t line, const char* fmt, ...) {
  if (c->err && c->err_cap > 0) {
    int n = snprintf(c->err, c->err_cap, "line %lu: ", (unsigned long)line);
    if (n >= 0 && (size_t)n < c->err_cap) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(c->err + n, c->err_cap - (size_t)n, fmt, ap);
      va_end(ap);
    }
    c->err[c->err_cap - 1] = '\0';
  }
  return -1;
}

static int kp_is_ident_start(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}
static int kp_is_digit(unsigned char ch) { return ch >= '0' && ch <= '9'; }
static int kp_is_ident_char(unsigned char ch) {
  return kp_is_ident_start(ch) || kp_is_digit(ch);
}

static int kp_push(kp_ctx_t* c, uint8_t kind, size_t off, size_t len, uint32_t line) {
  if (c->ntok == c->tcap) {
    size_t ncap = c->tcap ? c->tcap * 2 : 256;
    kp_tok_t* t;
    if (ncap > SIZE_MAX / sizeof(kp_tok_t)) return kp_fail(c, line, "out of memory");
    t = (kp_tok_t*)realloc(c->tok, ncap * sizeof(kp_tok_t));
    if (!t) return kp_fail(c, line, "out of memory");
    c->tok = t;
    c->tcap = ncap;
  }
  c->tok[c->ntok].off = off;
  c->tok[c->ntok].len = len;
  c->tok[c->ntok].match = KP_NONE;
  c->tok[c->ntok].line = line;
  c->tok[c->ntok].kind = kind;
  c->ntok++;
  return 0;
}

/* If s[i] starts a backslash-newline (or backslash-CR-LF), returns the index
 * just past it; otherwise 0. */
static size_t kp_splice(const char* s, size_t n, size_t i) {
  if (i < n && s[i] == '\\') {
    if (i + 1 < n && s[i + 1] == '\n') return i + 2;
    if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
  }
  return 0;
}

/* Skips a block comment starting at s[*pi] == '/', s[*pi+1] == '*'. */
static int kp_skip_block_comment(kp_ctx_t* c, size_t* pi, uint32_t* line) {
  const char* s = c->src;
  size_t n = c->len, j;
  uint32_t start = *line;
  for (j = *pi + 2; j < n; j++) {
    if (s[j] == '*' && j + 1 < n && s[j + 1] == '/') {
      *pi = j + 2;
      return 0;
    }
    if (s[j] == '\n') (*line)++;
  }
  return kp_fail(c, start, "unterminated /* comment");
}

/* Skips a line comment starting at s[*pi]; stops at the newline that ends
 * it (not consumed), following backslash continuations. */
static void kp_skip_line_comment(kp_ctx_t* c, size_t* pi, uint32_t* line) {
  const char* s = c->src;
  size_t n = c->len, j = *pi + 2;
  while (j < n && s[j] != '\n') {
    size_t k = kp_splice(s, n, j);
    if (k) {
      j = k;
      (*line)++;
      continue;
    }
    j++;
  }
  *pi = j;
}

/* Skips a string or character literal starting at the quote s[*pi].  An
 * unterminated literal ends at the end of its line (the newline is not
 * consumed), like a compiler's recovery; escapes are honoured, including an
 * escaped newline. */
static void kp_skip_literal(kp_ctx_t* c, size_t* pi, uint32_t* line) {
  const char* s = c->src;
  size_t n = c->len, j = *pi + 1;
  char q = s[*pi];
  while (j < n) {
    char ch = s[j];
    if (ch == q) {
      j++;
      break;
    }
    if (ch == '\n') break;
    if (ch == '\\' && j + 1 < n) {
      if (s[j + 1] == '\n') {
        (*line)++;
        j += 2;
      } else if (s[j + 1] == '\r' && j + 2 < n && s[j + 2] == '\n') {
        (*line)++;
        j += 3;
      } else {
        j += 2;
      }
      continue;
    }
    j++;
  }
  *pi = j;
}

/* Skips a preprocessor directive from its '#' to the end of its logical
 * line (backslash continuations included; comments inside it may span
 * lines).  The final newline is not consumed. */
static int kp_skip_directive(kp_ctx_t* c, size_t* pi, uint32_t* line) {
  const char* s = c->src;
  size_t n = c->len, j = *pi + 1;
  while (j < n && s[j] != '\n') {
    size_t k = kp_splice(s, n, j);
    if (k) {
      j = k;
      (*line)++;
      continue;
    }
    if (s[j] == '/' && j + 1 < n && s[j + 1] == '*') {
      if (kp_skip_block_comment(c, &j, line)) return -1;
      continue;
    }
    if (s[j] == '/' && j + 1 < n && s[j + 1] == '/') {
      kp_skip_line_comment(c, &j, line);
      break;
    }
    if (s[j] == '"' || s[j] == '\'') {
      kp_skip_literal(c, &j, line);
      continue;
    }
    j++;
  }
  *pi = j;
  return 0;
}

static int kp_tokenize(kp_ctx_t* c) {
  const char* s = c->src;
  size_t n = c->len, i = 0;
  uint32_t line = 1;
  int bol = 1; /* only whitespace/comments so far on this line */
  while (i < n) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '\n') {
      line++;
      bol = 1;
      i++;
      continue;
    }
    if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f') {
      i++;
      continue;
    }
    if (ch == '/' && i + 1 < n && s[i + 1] == '/') {
      kp_skip_line_comment(c, &i, &line);
      continue;
    }
    if (ch == '/' && i + 1 < n && s[i + 1] == '*') {
      if (kp_skip_block_comment(c, &i, &line)) return -1;
      continue;
    }
    if (ch == '#' && bol) {
      if (kp_skip_directive(c, &i, &line)) return -1;
      continue;
    }
    bol = 0;
    if (kp_is_ident_start(ch)) {
      size_t j = i + 1;
      while (j < n && kp_is_ident_char((unsigned char)s[j])) j++;
      if (kp_push(c, KP_IDENT, i, j - i, line)) return -1;
      i = j;
      continue;
    }
    if (kp_is_digit(ch) || (ch == '.' && i + 1 < n && kp_is_digit((unsigned char)s[i + 1]))) {
      size_t j = i + 1;
      while (j < n) {
        unsigned char d = (unsigned char)s[j];
        if ((d == '+' || d == '-') &&
            (s[j - 1] == 'e' || s[j - 1] == 'E' || s[j - 1] == 'p' || s[j - 1] == 'P')) {
          j++;
          continue;
        }
        if (!kp_is_ident_char(d) && d != '.') break;
        j++;
      }
      if (kp_push(c, KP_NUMBER, i, j - i, line)) return -1;
      i = j;
      continue;
    }
    if (ch == '"' || ch == '\'') {
      size_t start = i;
      uint32_t start_line = line;
      kp_skip_literal(c, &i, &line);
      if (kp_push(c, KP_LITERAL, start, i - start, start_line)) return -1;
      continue;
    }
    if (kp_push(c, KP_PUNCT, i, 1, line)) return -1;
    i++;
  }
  return 0;
}

/* ---- Token helpers ------------------------------------------------------- */

static int kp_punct(const kp_ctx_t* c, size_t i, char ch) {
  return i < c->ntok && c->tok[i].kind == KP_PUNCT && c->src[c->tok[i].off] == ch;
}

static int kp_ident(const kp_ctx_t* c, size_t i) {
  return i < c->ntok && c->tok[i].kind == KP_IDENT;
}

static int kp_word(const kp_ctx_t* c, size_t i, const char* w) {
  size_t wl;
  if (!kp_ident(c, i)) return 0;
  wl = strlen(w);
  return c->tok[i].len == wl && memcmp(c->src + c->tok[i].off, w, wl) == 0;
}

static int kp_word2(const kp_ctx_t* c, size_t i, const char* a, const char* b) {
  return kp_word(c, i, a) || kp_word(c, i, b);
}

/* Length to print for a token in a message (long identifiers are cut). */
static int kp_plen(const kp_ctx_t* c, size_t i) {
  size_t l = c->tok[i].len;
  return (int)(l > 40 ? 40 : l);
}

/* Describes the token at i for a message, e.g. "'['" or "byte 0x00". */
static void kp_describe(const kp_ctx_t* c, size_t i, char* buf, size_t cap) {
  const kp_tok_t* t;
  if (i >= c->ntok) {
    snprintf(buf, cap, "end of input");
    return;
  }
  t = &c->tok[i];
  if (t->kind == KP_PUNCT) {
    unsigned char ch = (unsigned char)c->src[t->off];
    if (ch >= 0x21 && ch < 0x7f) snprintf(buf, cap, "'%c'", (char)ch);
    else snprintf(buf, cap, "byte 0x%02x", (unsigned)ch);
  } else if (t->kind == KP_LITERAL) {
    snprintf(buf, cap, "a literal");
  } else {
    snprintf(buf, cap, "'%.*s%s'", kp_plen(c, i), c->src + t->off, t->len > 40 ? "..." : "");
  }
}

/* ---- Bracket matching ---------------------------------------------------- */

static const char* kp_bracket_word(char ch) {
  switch (ch) {
    case '(': case ')': return "parentheses";
    case '[': case ']': return "brackets";
    default: return "braces";
  }
}

static int kp_match(kp_ctx_t* c) {
  size_t* stack;
  size_t sp = 0, i;
  if (c->ntok == 0) return 0;
  stack = (size_t*)malloc(c->ntok * sizeof(size_t));
  if (!stack) return kp_fail(c, 1, "out of memory");
  for (i = 0; i < c->ntok; i++) {
    char ch, open, want;
    if (c->tok[i].kind != KP_PUNCT) continue;
    ch = c->src[c->tok[i].off];
    if (ch == '(' || ch == '[' || ch == '{') {
      stack[sp++] = i;
      continue;
    }
    if (ch != ')' && ch != ']' && ch != '}') continue;
    want = ch == ')' ? '(' : ch == ']' ? '[' : '{';
    if (sp == 0) {
      free(stack);
      return kp_fail(c, c->tok[i].line, "unbalanced %s: '%c' has no matching '%c'",
                     kp_bracket_word(ch), ch, want);
    }
    open = c->src[c->tok[stack[sp - 1]].off];
    if (open != want) {
      uint32_t ol = c->tok[stack[sp - 1]].line;
      free(stack);
      return kp_fail(c, c->tok[i].line,
                     "unbalanced %s and %s: '%c' does not match the '%c' opened on line %lu",
                     kp_bracket_word(open), kp_bracket_word(ch), ch, open, (unsigned long)ol);
    }
    sp--;
    c->tok[i].match = stack[sp];
    c->tok[stack[sp]].match = i;
  }
  if (sp > 0) {
    size_t o = stack[sp - 1];
    char open = c->src[c->tok[o].off];
    free(stack);
    return kp_fail(c, c->tok[o].line, "unbalanced %s: '%c' is never closed",
                   kp_bracket_word(open), open);
  }
  free(stack);
  return 0;
}

/* ---- Types --------------------------------------------------------------- */

static const char* const kp_scalar_names[] = {
    "other", "char",   "uchar", "short", "ushort", "int",    "uint", "long",
    "ulong", "float",  "double", "half", "size_t", "bool",   "void"};

const char* lk_kscalar_name(lk_kscalar_t s) {
  if ((unsigned)s < sizeof(kp_scalar_names) / sizeof(kp_scalar_names[0]))
    return kp_scalar_names[s];
  return "invalid";
}

static size_t kp_scalar_size(lk_kscalar_t s) {
  switch (s) {
    case LK_KSCALAR_CHAR: case LK_KSCALAR_UCHAR: case LK_KSCALAR_BOOL: return 1;
    case LK_KSCALAR_SHORT: case LK_KSCALAR_USHORT: case LK_KSCALAR_HALF: return 2;
    case LK_KSCALAR_INT: case LK_KSCALAR_UINT: case LK_KSCALAR_FLOAT: return 4;
    case LK_KSCALAR_LONG: case LK_KSCALAR_ULONG: case LK_KSCALAR_DOUBLE:
    case LK_KSCALAR_SIZE_T: return 8;
    default: return 0;
  }
}

static const struct {
  const char* word;
  lk_kscalar_t s;
} kp_type_words[] = {
    {"char", LK_KSCALAR_CHAR},     {"uchar", LK_KSCALAR_UCHAR},   {"short", LK_KSCALAR_SHORT},
    {"ushort", LK_KSCALAR_USHORT}, {"int", LK_KSCALAR_INT},       {"uint", LK_KSCALAR_UINT},
    {"long", LK_KSCALAR_LONG},     {"ulong", LK_KSCALAR_ULONG},   {"float", LK_KSCALAR_FLOAT},
    {"double", LK_KSCALAR_DOUBLE}, {"half", LK_KSCALAR_HALF},     {"size_t", LK_KSCALAR_SIZE_T},
    {"bool", LK_KSCALAR_BOOL},     {"_Bool", LK_KSCALAR_BOOL},    {"void", LK_KSCALAR_VOID}};

/* The scalar a keyword names, or -1 when the identifier is not a type
 * keyword. */
static int kp_type_keyword(const kp_ctx_t* c, size_t i) {
  size_t k;
  for (k = 0; k < sizeof(kp_type_words) / sizeof(kp_type_words[0]); k++)
    if (kp_word(c, i, kp_type_words[k].word)) return (int)kp_type_words[k].s;
  return -1;
}

static lk_kscalar_t kp_unsigned_of(lk_kscalar_t s) {
  switch (s) {
    case LK_KSCALAR_CHAR: return LK_KSCALAR_UCHAR;
    case LK_KSCALAR_SHORT: return LK_KSCALAR_USHORT;
    case LK_KSCALAR_INT: return LK_KSCALAR_UINT;
    case LK_KSCALAR_LONG: return LK_KSCALAR_ULONG;
    default: return s;
  }
}

/* ---- Parameters ---------------------------------------------------------- */

enum { KP_AS_NONE = 0, KP_AS_GLOBAL, KP_AS_CONSTANT, KP_AS_LOCAL, KP_AS_PRIVATE };

static const char* const kp_as_text[] = {"", "__global", "__constant", "__local", "__private"};

static int kp_addr_space(const kp_ctx_t* c, size_t i) {
  if (kp_word2(c, i, "__global", "global")) return KP_AS_GLOBAL;
  if (kp_word2(c, i, "__constant", "constant")) return KP_AS_CONSTANT;
  if (kp_word2(c, i, "__local", "local")) return KP_AS_LOCAL;
  if (kp_word2(c, i, "__private", "private")) return KP_AS_PRIVATE;
  return KP_AS_NONE;
}

static int kp_is_attribute(const kp_ctx_t* c, size_t i) {
  return kp_word2(c, i, "__attribute__", "__attribute");
}

/* At an __attribute__ token: moves *pi past `__attribute__ ( ... )`. */
static int kp_skip_attribute(kp_ctx_t* c, size_t* pi, size_t limit) {
  size_t i = *pi;
  if (i + 1 < limit && kp_punct(c, i + 1, '(')) {
    *pi = c->tok[i + 1].match + 1;
    return 0;
  }
  return kp_fail(c, c->tok[i].line, "expected '(' after __attribute__");
}

#define KP_MAX_WORDS 8

/* Parses one parameter from tokens [a, b) into *arg. `index` is 0-based. */
static int kp_parse_param(kp_ctx_t* c, const lk_kernel_sig_t* k, size_t a, size_t b,
                          uint32_t index, lk_karg_t* arg) {
  size_t words[KP_MAX_WORDS];
  int words_after_ptr[KP_MAX_WORDS];
  size_t nwords = 0, i, last_sig = KP_NONE, name_tok, ntype = 0;
  size_t tag_kw = KP_NONE, tag_name = KP_NONE;
  int as = KP_AS_NONE, ptr = 0, is_const = 0, is_vol = 0, is_restrict = 0;
  int is_uns = 0, is_sgn = 0;
  uint32_t line = c->tok[a].line;
  lk_kscalar_t scalar = LK_KSCALAR_OTHER;
  size_t other_tok = KP_NONE;
  char desc[48];
  char base[LK_KPARSE_MAX_TYPE];
  char text[LK_KPARSE_MAX_TYPE + 64];
  int tn;

  for (i = a; i < b;) {
    const kp_tok_t* t = &c->tok[i];
    if (t->kind == KP_IDENT) {
      int sp;
      if (kp_is_attribute(c, i)) {
        if (kp_skip_attribute(c, &i, b)) return -1;
        continue;
      }
      last_sig = i;
      sp = kp_addr_space(c, i);
      if (sp != KP_AS_NONE) {
        if (ptr > 0 && sp != KP_AS_PRIVATE)
          return kp_fail(c, t->line,
                         "parameter %u of kernel '%s': address space '%.*s' must come "
                         "before the '*'",
                         (unsigned)(index + 1), k->name, kp_plen(c, i), c->src + t->off);
        if (ptr > 0) { /* `T* __private p`: the pointer itself is private */
          i++;
          continue;
        }
        if (as != KP_AS_NONE && as != sp)
          return kp_fail(c, t->line,
                         "parameter %u of kernel '%s' has two address spaces (%s and %s)",
                         (unsigned)(index + 1), k->name, kp_as_text[as], kp_as_text[sp]);
        as = sp;
      } else if (kp_word2(c, i, "const", "__const")) {
        if (ptr == 0) is_const = 1; /* after '*': a const pointer, not pointee */
      } else if (kp_word2(c, i, "volatile", "__volatile")) {
        if (ptr == 0) is_vol = 1;
      } else if (kp_word2(c, i, "restrict", "__restrict") || kp_word(c, i, "__restrict__")) {
        is_restrict = 1;
      } else if (kp_word2(c, i, "unsigned", "signed")) {
        if (ptr > 0) goto unexpected;
        if (kp_word(c, i, "unsigned")) is_uns = 1;
        else is_sgn = 1;
        if (is_uns && is_sgn)
          return kp_fail(c, t->line, "parameter %u of kernel '%s' is both signed and unsigned",
                         (unsigned)(index + 1), k->name);
      } else if (kp_word(c, i, "struct") || kp_word(c, i, "union") || kp_word(c, i, "enum")) {
        if (ptr > 0 || tag_kw != KP_NONE || nwords > 0 || !kp_ident(c, i + 1) || i + 1 >= b)
          goto unexpected;
        tag_kw = i;
        tag_name = i + 1;
        last_sig = i + 1;
        i += 2;
        continue;
      } else {
        if (nwords == KP_MAX_WORDS) goto unexpected;
        words_after_ptr[nwords] = ptr > 0;
        words[nwords++] = i;
      }
      i++;
      continue;
    }
    if (t->kind == KP_PUNCT && c->src[t->off] == '*') {
      ptr++;
      last_sig = i;
      i++;
      continue;
    }
    if (t->kind == KP_PUNCT && c->src[t->off] == '[')
      return kp_fail(c, t->line,
                     "parameter %u of kernel '%s' is an array; use a __global pointer "
                     "instead",
                     (unsigned)(index + 1), k->name);
  unexpected:
    kp_describe(c, i, desc, sizeof desc);
    return kp_fail(c, c->tok[i].line, "unexpected %s in parameter %u of kernel '%s'", desc,
                   (unsigned)(index + 1), k->name);
  }

  /* The name is the last identifier, and nothing may follow it. */
  if (nwords == 0 || kp_punct(c, last_sig, '*') || kp_type_keyword(c, words[nwords - 1]) >= 0)
    return kp_fail(c, line, "parameter %u of kernel '%s' has no name", (unsigned)(index + 1),
                   k->name);
  if (last_sig != words[nwords - 1]) {
    kp_describe(c, last_sig, desc, sizeof desc);
    return kp_fail(c, c->tok[last_sig].line,
                   "unexpected %s after the name of parameter %u of kernel '%s'", desc,
                   (unsigned)(index + 1), k->name);
  }
  name_tok = words[--nwords];
  line = c->tok[name_tok].line;
  if (c->tok[name_tok].len >= LK_KPARSE_MAX_NAME)
    return kp_fail(c, line, "parameter name '%.32s...' of kernel '%s' is too long (at most %d "
                   "characters)",
                   c->src + c->tok[name_tok].off, k->name, LK_KPARSE_MAX_NAME - 1);
  memcpy(arg->name, c->src + c->tok[name_tok].off, c->tok[name_tok].len);
  arg->name[c->tok[name_tok].len] = '\0';

  /* Base type: the words before the name, all before any '*'. */
  ntype = nwords;
  for (i = 0; i < ntype; i++)
    if (words_after_ptr[i]) {
      kp_describe(c, words[i], desc, sizeof desc);
      return kp_fail(c, c->tok[words[i]].line,
                     "unexpected %s after '*' in parameter '%s' of kernel '%s'", desc,
                     arg->name, k->name);
    }

  if (tag_kw != KP_NONE) {
    if (ntype > 0 || is_uns || is_sgn) goto bad_type;
    if (ptr == 0)
      return kp_fail(c, line,
                     "by-value parameter '%s' of kernel '%s' has type '%.*s %.*s'; a by-value "
                     "parameter must be a scalar or a plain type name",
                     arg->name, k->name, kp_plen(c, tag_kw), c->src + c->tok[tag_kw].off,
                     kp_plen(c, tag_name), c->src + c->tok[tag_name].off);
    scalar = LK_KSCALAR_OTHER;
    if (c->tok[tag_kw].len + 1 + c->tok[tag_name].len >= LK_KPARSE_MAX_TYPE) goto too_long;
    snprintf(base, sizeof base, "%.*s %.*s", (int)c->tok[tag_kw].len,
             c->src + c->tok[tag_kw].off, (int)c->tok[tag_name].len,
             c->src + c->tok[tag_name].off);
  } else if (ntype == 0) {
    if (!is_uns && !is_sgn)
      return kp_fail(c, line, "parameter '%s' of kernel '%s' has no type", arg->name, k->name);
    scalar = is_uns ? LK_KSCALAR_UINT : LK_KSCALAR_INT;
  } else if (ntype == 1) {
    int kw = kp_type_keyword(c, words[0]);
    if (kw < 0) {
      if (is_uns || is_sgn) goto bad_type;
      scalar = LK_KSCALAR_OTHER;
      other_tok = words[0];
    } else {
      scalar = (lk_kscalar_t)kw;
      if (is_uns || is_sgn) {
        if (scalar != LK_KSCALAR_CHAR && scalar != LK_KSCALAR_SHORT && scalar != LK_KSCALAR_INT &&
            scalar != LK_KSCALAR_LONG)
          goto bad_type;
        if (is_uns) scalar = kp_unsigned_of(scalar);
      }
    }
  } else {
    /* short int, long int, long long, long long int */
    int nshort = 0, nlong = 0, nint = 0;
    for (i = 0; i < ntype; i++) {
      if (kp_word(c, words[i], "short")) nshort++;
      else if (kp_word(c, words[i], "long")) nlong++;
      else if (kp_word(c, words[i], "int")) nint++;
      else goto bad_type;
    }
    if (nint > 1 || nshort > 1 || nlong > 2 || (nshort && nlong)) goto bad_type;
    scalar = nshort ? LK_KSCALAR_SHORT : nlong ? LK_KSCALAR_LONG : LK_KSCALAR_INT;
    if (is_uns) scalar = kp_unsigned_of(scalar);
  }
  if (tag_kw == KP_NONE) {
    if (other_tok != KP_NONE) {
      if (c->tok[other_tok].len >= LK_KPARSE_MAX_TYPE) goto too_long;
      snprintf(base, sizeof base, "%.*s", (int)c->tok[other_tok].len, c->src + c->tok[other_tok].off);
    } else {
      snprintf(base, sizeof base, "%s", lk_kscalar_name(scalar));
    }
  }

  if (ptr > 1)
    return kp_fail(c, line,
                   "parameter '%s' of kernel '%s' is a pointer to a pointer; only one level "
                   "of pointer is allowed",
                   arg->name, k->name);
  if (ptr == 1) {
    if (as == KP_AS_NONE || as == KP_AS_PRIVATE)
      return kp_fail(c, line,
                     "pointer parameter '%s' of kernel '%s' needs an address space (__global, "
                     "__constant or __local)",
                     arg->name, k->name);
    arg->kind = as == KP_AS_GLOBAL     ? LK_KARG_GLOBAL_PTR
                : as == KP_AS_CONSTANT ? LK_KARG_CONSTANT_PTR
                                       : LK_KARG_LOCAL_PTR;
    arg->scalar_size = 0;
  } else {
    if (as != KP_AS_NONE && as != KP_AS_PRIVATE)
      return kp_fail(c, line,
                     "by-value parameter '%s' of kernel '%s' cannot be in the %s address "
                     "space (only pointers can)",
                     arg->name, k->name, kp_as_text[as]);
    if (scalar == LK_KSCALAR_VOID)
      return kp_fail(c, line, "parameter '%s' of kernel '%s' has type void", arg->name, k->name);
    arg->kind = LK_KARG_SCALAR;
    arg->scalar_size = kp_scalar_size(scalar);
  }
  arg->scalar = scalar;
  arg->is_const = is_const != 0;
  arg->is_volatile = is_vol != 0;
  arg->is_restrict = is_restrict != 0;

  tn = snprintf(text, sizeof text, "%s%s%s%s%s%s",
                (ptr && as != KP_AS_PRIVATE) ? kp_as_text[as] : "",
                (ptr && as != KP_AS_PRIVATE) ? " " : "", is_const ? "const " : "",
                is_vol ? "volatile " : "", base, ptr ? "*" : "");
  if (tn < 0 || (size_t)tn >= LK_KPARSE_MAX_TYPE) goto too_long;
  memcpy(arg->type_text, text, (size_t)tn + 1);
  return 0;

too_long:
  return kp_fail(c, line, "type of parameter '%s' of kernel '%s' is too long (at most %d "
                 "characters)",
                 arg->name, k->name, LK_KPARSE_MAX_TYPE - 1);
bad_type : {
  /* Rebuild the written type for the message. */
  char wt[96];
  size_t used = 0;
  wt[0] = '\0';
  if (is_uns || is_sgn) used += (size_t)snprintf(wt, sizeof wt, "%s", is_uns ? "unsigned" : "signed");
  if (tag_kw != KP_NONE && used < sizeof wt)
    used += (size_t)snprintf(wt + used, sizeof wt - used, "%s%.*s %.*s", used ? " " : "",
                             kp_plen(c, tag_kw), c->src + c->tok[tag_kw].off, kp_plen(c, tag_name),
                             c->src + c->tok[tag_name].off);
  for (i = 0; i < ntype && used < sizeof wt; i++)
    used += (size_t)snprintf(wt + used, sizeof wt - used, "%s%.*s", used ? " " : "",
                             kp_plen(c, words[i]), c->src + c->tok[words[i]].off);
  return kp_fail(c, line,
                 "parameter '%s' of kernel '%s' has unsupported type '%s' (not a scalar type or "
                 "a plain type name)",
                 arg->name, k->name, wt);
}
}

/* Parses the parameter list between the parentheses at p and q. */
static int kp_parse_params(kp_ctx_t* c, lk_kernel_sig_t* k, size_t p, size_t q) {
  size_t start = p + 1, i = p + 1;
  k->num_args = 0;
  if (start == q) return 0;                                /* () */
  if (start + 1 == q && kp_word(c, start, "void")) return 0; /* (void) */
  for (;;) {
    if (i == q || kp_punct(c, i, ',')) {
      if (i == start)
        return kp_fail(c, c->tok[i].line, "empty parameter %u in the parameter list of kernel '%s'",
                       (unsigned)(k->num_args + 1), k->name);
      if (k->num_args == LK_KPARSE_MAX_ARGS)
        return kp_fail(c, c->tok[start].line, "kernel '%s' has more than %d parameters", k->name,
                       LK_KPARSE_MAX_ARGS);
      if (kp_parse_param(c, k, start, i, k->num_args, &k->args[k->num_args])) return -1;
      k->num_args++;
      if (i == q) return 0;
      start = i + 1;
      i = start;
      continue;
    }
    if (c->tok[i].match != KP_NONE && c->tok[i].match > i) i = c->tok[i].match; /* skip group */
    i++;
  }
}

/* ---- Kernel bodies ------------------------------------------------------- */

/* Scans the body between the braces at b and e. */
static int kp_scan_body(kp_ctx_t* c, lk_kernel_sig_t* k, size_t b, size_t e) {
  size_t i, items_end = KP_NONE;
  uint32_t items_line = 0, first_barrier = 0;
  for (i = b + 1; i < e; i++) {
    const kp_tok_t* t = &c->tok[i];
    if (i == items_end) {
      items_end = KP_NONE;
      continue;
    }
    if (t->kind != KP_IDENT) continue;
    if (kp_word(c, i, "LIGHTOS_ITEMS")) {
      size_t n = i + 1;
      if (items_end != KP_NONE)
        return kp_fail(c, t->line,
                       "LIGHTOS_ITEMS block nested inside another LIGHTOS_ITEMS block (opened "
                       "on line %lu) in kernel '%s'; item blocks cannot nest",
                       (unsigned long)items_line, k->name);
      k->uses_item_blocks = true;
      if (n < e && kp_punct(c, n, '(')) n = c->tok[n].match + 1;
      if (n >= e || !kp_punct(c, n, '{'))
        return kp_fail(c, t->line,
                       "LIGHTOS_ITEMS in kernel '%s' must be followed by a { ... } block",
                       k->name);
      items_end = c->tok[n].match;
      items_line = t->line;
      i = n; /* the block's '{' */
    } else if (kp_word(c, i, "return")) {
      if (items_end != KP_NONE)
        return kp_fail(c, t->line,
                       "'return' inside a LIGHTOS_ITEMS block of kernel '%s' (use 'continue' "
                       "to leave the block)",
                       k->name);
    } else if (kp_word(c, i, "barrier") && kp_punct(c, i + 1, '(')) {
      k->uses_barrier = true;
      if (items_end != KP_NONE)
        return kp_fail(c, t->line,
                       "barrier() inside a LIGHTOS_ITEMS block of kernel '%s' (opened on line "
                       "%lu); barriers go between item blocks",
                       k->name, (unsigned long)items_line);
      if (!first_barrier) first_barrier = t->line;
    } else if (kp_word2(c, i, "__local", "local")) {
      k->uses_local_decl = true;
    }
  }
  if (k->uses_barrier && !k->uses_item_blocks)
    return kp_fail(c, first_barrier,
                   "kernel '%s' calls barrier() but has no LIGHTOS_ITEMS block; see "
                   "docs/kernel-language.md",
                   k->name);
  return 0;
}

/* ---- Kernels ------------------------------------------------------------- */

static int kp_reserve_kernel(kp_ctx_t* c, uint32_t line) {
  if (c->nk == c->kcap) {
    size_t ncap = c->kcap ? c->kcap * 2 : 4;
    lk_kernel_sig_t* nk;
    if (ncap > SIZE_MAX / sizeof(lk_kernel_sig_t) || ncap > UINT32_MAX)
      return kp_fail(c, line, "too many kernels");
    nk = (lk_kernel_sig_t*)realloc(c->kernels, ncap * sizeof(lk_kernel_sig_t));
    if (!nk) return kp_fail(c, line, "out of memory");
    c->kernels = nk;
    c->kcap = ncap;
  }
  return 0;
}

/* Parses the kernel whose `__kernel` keyword is token kw; *pnext gets the
 * index of the first token after it. */
static int kp_parse_kernel(kp_ctx_t* c, size_t kw, size_t* pnext) {
  const kp_tok_t* kt = &c->tok[kw];
  size_t j = kw + 1, name_tok = KP_NONE, nret = 0, p, q, b;
  int ret_void = 0;
  lk_kernel_sig_t* k;
  uint32_t i;
  char desc[48];

  /* [attributes] void [attributes] NAME ( */
  while (j < c->ntok) {
    if (kp_is_attribute(c, j)) {
      if (kp_skip_attribute(c, &j, c->ntok)) return -1;
      continue;
    }
    if (kp_ident(c, j) && kp_punct(c, j + 1, '(')) {
      name_tok = j;
      break;
    }
    if (kp_ident(c, j) || kp_punct(c, j, '*')) {
      if (nret == 0 && kp_word(c, j, "void")) ret_void = 1;
      nret++;
      j++;
      continue;
    }
    break;
  }
  if (name_tok == KP_NONE) {
    kp_describe(c, j, desc, sizeof desc);
    return kp_fail(c, j < c->ntok ? c->tok[j].line : kt->line,
                   "malformed kernel declaration: expected 'void NAME(...)' after '%.*s', found %s",
                   (int)kt->len, c->src + kt->off, desc);
  }
  if (c->tok[name_tok].len >= LK_KPARSE_MAX_NAME)
    return kp_fail(c, kt->line, "kernel name '%.32s...' is too long (at most %d characters)",
                   c->src + c->tok[name_tok].off, LK_KPARSE_MAX_NAME - 1);
  p = name_tok + 1;
  q = c->tok[p].match;
  j = q + 1;
  while (kp_is_attribute(c, j))
    if (kp_skip_attribute(c, &j, c->ntok)) return -1;
  if (kp_punct(c, j, ';')) { /* a prototype: only its extent is recorded */
    if (c->np == c->pcap) {
      size_t ncap = c->pcap ? c->pcap * 2 : 4;
      lk_kproto_t* np = (lk_kproto_t*)realloc(c->protos, ncap * sizeof *np);
      if (!np) return kp_fail(c, kt->line, "out of memory");
      c->protos = np;
      c->pcap = ncap;
    }
    c->protos[c->np].begin = kt->off;
    c->protos[c->np].end = c->tok[j].off + 1;
    c->np++;
    *pnext = j + 1;
    return 0;
  }
  if (!kp_punct(c, j, '{')) {
    kp_describe(c, j, desc, sizeof desc);
    return kp_fail(c, j < c->ntok ? c->tok[j].line : c->tok[q].line,
                   "expected '{' after the parameter list of kernel '%.*s', found %s",
                   (int)c->tok[name_tok].len, c->src + c->tok[name_tok].off, desc);
  }
  b = j;
  if (!ret_void || nret != 1)
    return kp_fail(c, kt->line, "kernel '%.*s' must return void", (int)c->tok[name_tok].len,
                   c->src + c->tok[name_tok].off);

  if (kp_reserve_kernel(c, kt->line)) return -1;
  k = &c->kernels[c->nk];
  memset(k, 0, sizeof *k);
  memcpy(k->name, c->src + c->tok[name_tok].off, c->tok[name_tok].len);
  k->name[c->tok[name_tok].len] = '\0';
  for (i = 0; i < c->nk; i++)
    if (strcmp(c->kernels[i].name, k->name) == 0)
      return kp_fail(c, kt->line, "duplicate kernel '%s' (first defined on line %lu)", k->name,
                     (unsigned long)c->kernels[i].line);
  k->line = kt->line;
  k->decl_begin = kt->off;
  k->body_begin = c->tok[b].off;
  k->body_end = c->tok[c->tok[b].match].off + 1;
  if (kp_parse_params(c, k, p, q)) return -1;
  if (kp_scan_body(c, k, b, c->tok[b].match)) return -1;
  c->nk++;
  *pnext = c->tok[b].match + 1;
  return 0;
}

static int kp_scan(kp_ctx_t* c) {
  size_t i = 0;
  while (i < c->ntok) {
    const kp_tok_t* t = &c->tok[i];
    if (t->match != KP_NONE && t->match > i) { /* skip any bracketed group */
      i = t->match + 1;
      continue;
    }
    if (kp_word2(c, i, "__kernel", "kernel")) {
      if (kp_parse_kernel(c, i, &i)) return -1;
      continue;
    }
    i++;
  }
  return 0;
}

/* ---- Public API ---------------------------------------------------------- */

int lk_kparse(const char* source, size_t len, lk_kparse_result_t* out, char* err,
              size_t err_cap) {
  kp_ctx_t c;
  int rc;
  memset(&c, 0, sizeof c);
  c.src = source;
  c.len = len;
  c.err = err;
  c.err_cap = err_cap;
  if (err && err_cap > 0) err[0] = '\0';
  if (!out) return kp_fail(&c, 0, "no result structure given");
  out->num_kernels = 0;
  out->kernels = NULL;
  out->num_protos = 0;
  out->protos = NULL;
  if (!source && len > 0) return kp_fail(&c, 0, "no source given");
  rc = kp_tokenize(&c);
  if (rc == 0) rc = kp_match(&c);
  if (rc == 0) rc = kp_scan(&c);
  free(c.tok);
  if (rc != 0 || c.nk == 0) {
    free(c.kernels);
    free(c.protos);
    return rc != 0 ? -1 : 0;
  }
  out->kernels = c.kernels;
  out->num_kernels = c.nk;
  out->protos = c.protos;
  out->num_protos = c.np;
  return 0;
}

void lk_kparse_free(lk_kparse_result_t* r) {
  if (!r) return;
  free(r->kernels);
  r->kernels = NULL;
  r->num_kernels = 0;
  free(r->protos);
  r->protos = NULL;
  r->num_protos = 0;
}

const lk_kernel_sig_t* lk_kparse_find(const lk_kparse_result_t* r, const char* name) {
  uint32_t i;
  if (!r || !name || !r->kernels) return NULL;
  for (i = 0; i < r->num_kernels; i++)
    if (strcmp(r->kernels[i].name, name) == 0) return &r->kernels[i];
  return NULL;
}
