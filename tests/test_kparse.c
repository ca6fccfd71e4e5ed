/* Unit tests for the kernel-signature parser (src/kernels/kparse.c). */
#include "kernels/kparse.h"
#include "lk_test.h"

static char g_err[512];

/* Parses a NUL-terminated source; returns lk_kparse's result. */
static int parse(const char* src, lk_kparse_result_t* r) {
  memset(g_err, 'x', sizeof g_err);
  return lk_kparse(src, strlen(src), r, g_err, sizeof g_err);
}

/* Parses `src`, expecting failure with a message that starts with
 * "line <line>: " and contains every word in the NULL-terminated list. */
static void expect_error_(const char* file, int fline, const char* src, unsigned line, ...) {
  lk_kparse_result_t r;
  char prefix[32];
  va_list ap;
  const char* w;
  r.num_kernels = 77;
  r.kernels = (lk_kernel_sig_t*)&r; /* garbage the parser must overwrite */
  if (parse(src, &r) != -1) {
    lk_test_fail(file, fline, "expected a parse error for:\n%s", src);
    lk_kparse_free(&r);
    return;
  }
  if (r.num_kernels != 0 || r.kernels != NULL)
    lk_test_fail(file, fline, "result not left empty after an error");
  if (strlen(g_err) >= sizeof g_err) lk_test_fail(file, fline, "message not terminated");
  snprintf(prefix, sizeof prefix, "line %u: ", line);
  if (strncmp(g_err, prefix, strlen(prefix)) != 0)
    lk_test_fail(file, fline, "expected message to start with \"%s\", got \"%s\"", prefix, g_err);
  va_start(ap, line);
  while ((w = va_arg(ap, const char*)) != NULL)
    if (!strstr(g_err, w))
      lk_test_fail(file, fline, "expected \"%s\" in message \"%s\"", w, g_err);
  va_end(ap);
  lk_kparse_free(&r); /* harmless on the emptied result */
}
#define EXPECT_ERROR(src, line, ...) \
  expect_error_(__FILE__, __LINE__, (src), (line), __VA_ARGS__, (const char*)NULL)

/* ---- Signatures ---------------------------------------------------------- */

static void test_simple_kernel(void) {
  const char* src =
      "__kernel void vadd(__global const float* a, __global const float* b,\n"
      "                   __global float* c, const uint n) {\n"
      "  size_t i = get_global_id(0);\n"
      "  if (i < n) c[i] = a[i] + b[i];\n"
      "}\n";
  lk_kparse_result_t r;
  const lk_kernel_sig_t* k;
  LK_REQUIRE(parse(src, &r) == 0);
  LK_CHECK_STR(g_err, "");
  LK_REQUIRE(r.num_kernels == 1);
  k = &r.kernels[0];
  LK_CHECK_STR(k->name, "vadd");
  LK_CHECK_INT(k->num_args, 4);
  LK_CHECK_INT(k->line, 1);
  LK_CHECK_STR(k->args[0].name, "a");
  LK_CHECK_STR(k->args[0].type_text, "__global const float*");
  LK_CHECK_INT(k->args[0].kind, LK_KARG_GLOBAL_PTR);
  LK_CHECK_INT(k->args[0].scalar, LK_KSCALAR_FLOAT);
  LK_CHECK_INT(k->args[0].scalar_size, 0);
  LK_CHECK(k->args[0].is_const);
  LK_CHECK(!k->args[0].is_restrict);
  LK_CHECK_STR(k->args[2].type_text, "__global float*");
  LK_CHECK(!k->args[2].is_const);
  LK_CHECK_STR(k->args[3].name, "n");
  LK_CHECK_STR(k->args[3].type_text, "const uint");
  LK_CHECK_INT(k->args[3].kind, LK_KARG_SCALAR);
  LK_CHECK_INT(k->args[3].scalar, LK_KSCALAR_UINT);
  LK_CHECK_INT(k->args[3].scalar_size, 4);
  LK_CHECK(!k->uses_item_blocks);
  LK_CHECK(!k->uses_barrier);
  LK_CHECK(!k->uses_local_decl);
  /* offsets */
  LK_CHECK_INT(k->decl_begin, 0);
  LK_CHECK(src[k->body_begin] == '{');
  LK_CHECK(src[k->body_end - 1] == '}');
  LK_CHECK_INT(k->body_end, strlen(src) - 1); /* a newline follows */
  lk_kparse_free(&r);
  LK_CHECK(r.kernels == NULL && r.num_kernels == 0);
}

static void test_multiple_kernels_and_keywords(void) {
  const char* src =
      "kernel void first(global int* p) { p[0] = 1; }\n"
      "\n"
      "  __kernel void second(void) { }\n"
      "__kernel\n"
      "void\n"
      "third() {}\n";
  lk_kparse_result_t r;
  const lk_kernel_sig_t* k;
  LK_REQUIRE(parse(src, &r) == 0);
  LK_REQUIRE(r.num_kernels == 3);
  LK_CHECK_STR(r.kernels[0].name, "first");
  LK_CHECK_STR(r.kernels[0].args[0].type_text, "__global int*");
  LK_CHECK_INT(r.kernels[0].args[0].kind, LK_KARG_GLOBAL_PTR);
  LK_CHECK_STR(r.kernels[1].name, "second");
  LK_CHECK_INT(r.kernels[1].num_args, 0);
  LK_CHECK_INT(r.kernels[1].line, 3);
  LK_CHECK_INT(r.kernels[1].decl_begin, (size_t)(strstr(src, "__kernel void second") - src));
  LK_CHECK_INT(r.kernels[2].num_args, 0);
  LK_CHECK_INT(r.kernels[2].line, 4);
  k = lk_kparse_find(&r, "second");
  LK_CHECK(k == &r.kernels[1]);
  LK_CHECK(lk_kparse_find(&r, "fourth") == NULL);
  LK_CHECK(lk_kparse_find(&r, NULL) == NULL);
  LK_CHECK(lk_kparse_find(NULL, "first") == NULL);
  lk_kparse_free(&r);
  lk_kparse_free(&r); /* idempotent */
  LK_CHECK(r.kernels == NULL);
}

static void test_address_spaces(void) {
  const char* src =
      "__kernel void k(__global float* g, global float* g2, __constant float* c,\n"
      "                constant int* c2, __local float* l, local uchar* l2,\n"
      "                __private int pv, private float pf) {}\n";
  lk_kparse_result_t r;
  const lk_karg_t* a;
  LK_REQUIRE(parse(src, &r) == 0);
  LK_REQUIRE(r.num_kernels == 1 && r.kernels[0].num_args == 8);
  a = r.kernels[0].args;
  LK_CHECK_INT(a[0].kind, LK_KARG_GLOBAL_PTR);
  LK_CHECK_INT(a[1].kind, LK_KARG_GLOBAL_PTR);
  LK_CHECK_STR(a[1].type_text, "__global float*");
  LK_CHECK_INT(a[2].kind, LK_KARG_CONSTANT_PTR);
  LK_CHECK_STR(a[2].type_text, "__constant float*");
  LK_CHECK_INT(a[3].kind, LK_KARG_CONSTANT_PTR);
  LK_CHECK_STR(a[3].type_text, "__constant int*");
  LK_CHECK_INT(a[4].kind, LK_KARG_LOCAL_PTR);
  LK_CHECK_STR(a[4].type_text, "__local float*");
  LK_CHECK_INT(a[5].kind, LK_KARG_LOCAL_PTR);
  LK_CHECK_STR(a[5].type_text, "__local uchar*");
  LK_CHECK_INT(a[5].scalar, LK_KSCALAR_UCHAR);
  LK_CHECK_INT(a[6].kind, LK_KARG_SCALAR);
  LK_CHECK_STR(a[6].type_text, "int");
  LK_CHECK_INT(a[7].scalar_size, 4);
  LK_CHECK_STR(a[7].type_text, "float");
  lk_kparse_free(&r);
}

static void test_qualifier_positions(void) {
  const char* src =
      "__kernel void q(const __global float* restrict x,\n"
      "                __global float const *p,\n"
      "                __global volatile int* __restrict v,\n"
      "                __global float* const cp,\n"
      "                volatile __local const double *vl,\n"
      "                __global void* raw,\n"
      "                __global mystruct_t* ms,\n"
      "                __global struct node* nodes) {}\n";
  lk_kparse_result_t r;
  const lk_karg_t* a;
  LK_REQUIRE(parse(src, &r) == 0);
  LK_REQUIRE(r.num_kernels == 1 && r.kernels[0].num_args == 8);
  a = r.kernels[0].args;
  LK_CHECK_STR(a[0].type_text, "__global const float*");
  LK_CHECK(a[0].is_const && a[0].is_restrict && !a[0].is_volatile);
  LK_CHECK_STR(a[0].name, "x");
  LK_CHECK_STR(a[1].type_text, "__global const float*");
  LK_CHECK(a[1].is_const && !a[1].is_restrict);
  LK_CHECK_STR(a[1].name, "p");
  LK_CHECK_STR(a[2].type_text, "__global volatile int*");
  LK_CHECK(a[2].is_volatile && a[2].is_restrict && !a[2].is_const);
  /* const after '*' makes the pointer const, not the pointee */
  LK_CHECK_STR(a[3].type_text, "__global float*");
  LK_CHECK(!a[3].is_const);
  LK_CHECK_STR(a[4].type_text, "__local const volatile double*");
  LK_CHECK_INT(a[4].kind, LK_KARG_LOCAL_PTR);
  LK_CHECK_INT(a[5].scalar, LK_KSCALAR_VOID);
  LK_CHECK_STR(a[5].type_text, "__global void*");
  LK_CHECK_INT(a[6].scalar, LK_KSCALAR_OTHER);
  LK_CHECK_STR(a[6].type_text, "__global mystruct_t*");
  LK_CHECK_INT(a[6].scalar_size, 0);
  LK_CHECK_STR(a[7].type_text, "__global struct node*");
  LK_CHECK_STR(a[7].name, "nodes");
  lk_kparse_free(&r);
}

static void test_scalar_types(void) {
  static const struct {
    const char* decl;
    const char* text;
    lk_kscalar_t s;
    size_t size;
  } cases[] = {
      {"char a", "char", LK_KSCALAR_CHAR, 1},
      {"uchar a", "uchar", LK_KSCALAR_UCHAR, 1},
      {"unsigned char a", "uchar", LK_KSCALAR_UCHAR, 1},
      {"signed char a", "char", LK_KSCALAR_CHAR, 1},
      {"short a", "short", LK_KSCALAR_SHORT, 2},
      {"unsigned short a", "ushort", LK_KSCALAR_USHORT, 2},
      {"ushort a", "ushort", LK_KSCALAR_USHORT, 2},
      {"int a", "int", LK_KSCALAR_INT, 4},
      {"unsigned a", "uint", LK_KSCALAR_UINT, 4},
      {"unsigned int a", "uint", LK_KSCALAR_UINT, 4},
      {"uint a", "uint", LK_KSCALAR_UINT, 4},
      {"long a", "long", LK_KSCALAR_LONG, 8},
      {"long long a", "long", LK_KSCALAR_LONG, 8},
      {"unsigned long a", "ulong", LK_KSCALAR_ULONG, 8},
      {"ulong a", "ulong", LK_KSCALAR_ULONG, 8},
      {"float a", "float", LK_KSCALAR_FLOAT, 4},
      {"double a", "double", LK_KSCALAR_DOUBLE, 8},
      {"half a", "half", LK_KSCALAR_HALF, 2},
      {"size_t a", "size_t", LK_KSCALAR_SIZE_T, 8},
      {"bool a", "bool", LK_KSCALAR_BOOL, 1},
      {"float4 a", "float4", LK_KSCALAR_OTHER, 0},
      {"const volatile int a", "const volatile int", LK_KSCALAR_INT, 4},
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char src[256];
    lk_kparse_result_t r;
    snprintf(src, sizeof src, "__kernel void s(%s) {}", cases[i].decl);
    if (!LK_CHECK_MSG(parse(src, &r) == 0, "'%s' failed: %s", cases[i].decl, g_err)) continue;
    if (LK_CHECK(r.num_kernels == 1 && r.kernels[0].num_args == 1)) {
      const lk_karg_t* a = &r.kernels[0].args[0];
      LK_CHECK_STR(a->name, "a");
      LK_CHECK_STR(a->type_text, cases[i].text);
      LK_CHECK_MSG(a->scalar == cases[i].s, "'%s': scalar %d", cases[i].decl, (int)a->scalar);
      LK_CHECK_MSG(a->scalar_size == cases[i].size, "'%s': size %zu", cases[i].decl,
                   a->scalar_size);
      LK_CHECK_INT(a->kind, LK_KARG_SCALAR);
    }
    lk_kparse_free(&r);
  }
}

static void test_scalar_names(void) {
  LK_CHECK_STR(lk_kscalar_name(LK_KSCALAR_FLOAT), "float");
  LK_CHECK_STR(lk_kscalar_name(LK_KSCALAR_UINT), "uint");
  LK_CHECK_STR(lk_kscalar_name(LK_KSCALAR_SIZE_T), "size_t");
  LK_CHECK_STR(lk_kscalar_name(LK_KSCALAR_OTHER), "other");
  LK_CHECK_STR(lk_kscalar_name(LK_KSCALAR_ULONG), "ulong");
  LK_CHECK_STR(lk_kscalar_name(LK_KSCALAR_VOID), "void");
  LK_CHECK(lk_kscalar_name((lk_kscalar_t)999) != NULL);
}

/* ---- Lexical robustness -------------------------------------------------- */

static void test_comments_and_strings(void) {
  const char* src =
      "// __kernel void commented(int x) {\n"
      "/* __kernel void block(int y) { {{ */\n"
      "__kernel void real(/* int z, */ __global char* s // trailing }\n"
      ") {\n"
      "  const char* t = \"__kernel void fake() { {\";\n"
      "  char b = '{'; char q = '\\''; char e = '\\\\';\n"
      "  const char* u = \"}} \\\" __kernel\";\n"
      "}\n";
  lk_kparse_result_t r;
  LK_REQUIRE(parse(src, &r) == 0);
  LK_REQUIRE(r.num_kernels == 1);
  LK_CHECK_STR(r.kernels[0].name, "real");
  LK_CHECK_INT(r.kernels[0].line, 3);
  LK_CHECK_INT(r.kernels[0].num_args, 1);
  LK_CHECK_STR(r.kernels[0].args[0].type_text, "__global char*");
  LK_CHECK_INT(r.kernels[0].body_end, strlen(src) - 1);
  lk_kparse_free(&r);
}

static void test_preprocessor_lines(void) {
  const char* src =
      "#define OPEN {\n"
      "  #  define CLOSE }} \\\n"
      "     ((( \\\n"
      "     __kernel void nope(int a) {\n"
      "#include \"foo{.h\" /* { spans\n"
      "   lines } */\n"
      "#pragma unroll // {\n"
      "__kernel void after(int a) { int x = 1 # 2; }\n";
  lk_kparse_result_t r;
  LK_REQUIRE(parse(src, &r) == 0);
  LK_REQUIRE(r.num_kernels == 1);
  LK_CHECK_STR(r.kernels[0].name, "after");
  LK_CHECK_INT(r.kernels[0].line, 8);
  lk_kparse_free(&r);
}

static void test_helpers_and_prototypes(void) {
  const char* src =
      "typedef struct { float x, y; } pt_t;\n"
      "float helper(float a, float b) { if (a > b) { return a; } return b; }\n"
      "__kernel void later(__global float* x);\n"
      "static int tbl[3] = {1, 2, 3};\n"
      "void kernel_like(int kernel_count) { }\n"
      "__kernel __attribute__((reqd_work_group_size(64, 1, 1))) void later(__global float* x) {\n"
      "  x[0] = helper(x[0], 1.0f);\n"
      "}\n"
      "__attribute__((always_inline)) __kernel void __attribute__((vec_type_hint(float4)))\n"
      "  attr2(__global pt_t* pts, pt_t by_value) { }\n";
  lk_kparse_result_t r;
  LK_REQUIRE(parse(src, &r) == 0);
  LK_REQUIRE(r.num_kernels == 2);
  LK_CHECK_STR(r.kernels[0].name, "later");
  LK_CHECK_INT(r.kernels[0].line, 6);
  LK_CHECK_STR(r.kernels[1].name, "attr2");
  LK_CHECK_INT(r.kernels[1].num_args, 2);
  LK_CHECK_STR(r.kernels[1].args[1].type_text, "pt_t");
  LK_CHECK_INT(r.kernels[1].args[1].scalar, LK_KSCALAR_OTHER);
  LK_CHECK_INT(r.kernels[1].args[1].kind, LK_KARG_SCALAR);
  lk_kparse_free(&r);
}

static void test_body_analysis(void) {
  const char* src =
      "__kernel void plain(__global float* x) { x[0] = 1; }\n"
      "__kernel void items(__global float* x, __local float* tmp) {\n"
      "  __local float scratch[64];\n"
      "  LIGHTOS_ITEMS { tmp[get_local_id(0)] = x[get_global_id(0)]; }\n"
      "  barrier(CLK_LOCAL_MEM_FENCE);\n"
      "  LIGHTOS_ITEMS {\n"
      "    if (get_local_id(0) == 0) continue;\n"
      "    { x[get_global_id(0)] = tmp[0] + scratch[0]; }\n"
      "  }\n"
      "  return;\n"
      "}\n"
      "__kernel void loc(int barrier) { local int a[4]; a[0] = barrier; }\n";
  lk_kparse_result_t r;
  const lk_kernel_sig_t* k;
  LK_REQUIRE(parse(src, &r) == 0);
  LK_REQUIRE(r.num_kernels == 3);
  k = lk_kparse_find(&r, "plain");
  LK_REQUIRE(k != NULL);
  LK_CHECK(!k->uses_item_blocks && !k->uses_barrier && !k->uses_local_decl);
  k = lk_kparse_find(&r, "items");
  LK_REQUIRE(k != NULL);
  LK_CHECK(k->uses_item_blocks);
  LK_CHECK(k->uses_barrier);
  LK_CHECK(k->uses_local_decl);
  LK_CHECK_INT(k->line, 2);
  k = lk_kparse_find(&r, "loc");
  LK_REQUIRE(k != NULL);
  LK_CHECK(k->uses_local_decl);
  LK_CHECK(!k->uses_barrier); /* `barrier` not followed by '(' */
  LK_CHECK(!k->uses_item_blocks);
  lk_kparse_free(&r);
}

static void test_edge_inputs(void) {
  lk_kparse_result_t r;
  static const char nul_src[] = "__kernel void z(int a) { char c = 0; }\0\0 garbage {";
  char err[8];
  LK_CHECK(lk_kparse("", 0, &r, g_err, sizeof g_err) == 0);
  LK_CHECK(r.num_kernels == 0 && r.kernels == NULL);
  LK_CHECK(lk_kparse(NULL, 0, &r, NULL, 0) == 0);
  LK_CHECK(lk_kparse("int x;", 6, &r, NULL, 0) == 0);
  LK_CHECK(r.num_kernels == 0);
  LK_CHECK(lk_kparse("x", 1, NULL, NULL, 0) == -1);
  /* length limits the input: the text after len is never looked at */
  LK_CHECK(lk_kparse(nul_src, strlen(nul_src), &r, g_err, sizeof g_err) == 0);
  LK_CHECK(r.num_kernels == 1);
  lk_kparse_free(&r);
  /* the embedded NULs and the unbalanced brace after them are seen */
  LK_CHECK(lk_kparse(nul_src, sizeof nul_src - 1, &r, g_err, sizeof g_err) == -1);
  LK_CHECK(strstr(g_err, "never closed") != NULL);
  /* a small error buffer is still terminated */
  LK_CHECK(lk_kparse("}", 1, &r, err, sizeof err) == -1);
  LK_CHECK(strlen(err) == sizeof err - 1);
  LK_CHECK(strncmp(err, "line 1:", 7) == 0);
  {
    lk_kparse_result_t z;
    memset(&z, 0, sizeof z);
    lk_kparse_free(&z);
    lk_kparse_free(NULL);
    LK_CHECK(z.kernels == NULL);
  }
  /* windows line endings */
  LK_CHECK(parse("\r\n\r\n__kernel void crlf(int a)\r\n{\r\n}\r\n", &r) == 0);
  LK_CHECK(r.num_kernels == 1 && r.kernels[0].line == 3);
  lk_kparse_free(&r);
}

static void test_deep_nesting(void) {
  enum { DEPTH = 20000 };
  char* src = (char*)malloc(DEPTH * 2 + 64);
  lk_kparse_result_t r;
  size_t n = 0, i;
  LK_REQUIRE(src != NULL);
  n += (size_t)sprintf(src, "__kernel void deep(int a) ");
  for (i = 0; i < DEPTH; i++) src[n++] = '{';
  for (i = 0; i < DEPTH; i++) src[n++] = '}';
  LK_CHECK(lk_kparse(src, n, &r, g_err, sizeof g_err) == 0);
  LK_CHECK(r.num_kernels == 1);
  lk_kparse_free(&r);
  free(src);
}

static void test_max_args(void) {
  char src[4096];
  size_t n;
  int i;
  lk_kparse_result_t r;
  n = (size_t)sprintf(src, "__kernel void many(");
  for (i = 0; i < LK_KPARSE_MAX_ARGS; i++)
    n += (size_t)sprintf(src + n, "%sint a%d", i ? ", " : "", i);
  sprintf(src + n, ") {}");
  LK_REQUIRE(parse(src, &r) == 0);
  LK_CHECK_INT(r.kernels[0].num_args, LK_KPARSE_MAX_ARGS);
  LK_CHECK_STR(r.kernels[0].args[63].name, "a63");
  lk_kparse_free(&r);
  sprintf(src + n, ",\nint extra) {}");
  EXPECT_ERROR(src, 2, "many", "more than 64");
}

/* ---- Errors -------------------------------------------------------------- */

static void test_error_balance(void) {
  EXPECT_ERROR("__kernel void a(int x) {\n  if (x) {\n}\n", 1, "unbalanced", "brace");
  EXPECT_ERROR("int f(void) { return 0; }\n}\n", 2, "unbalanced", "'}'");
  EXPECT_ERROR("void f(int a {\n)\n}\n", 2, "unbalanced", "line 1");
  EXPECT_ERROR("\n\n__kernel void a(int x {}\n", 3, "unbalanced", "parenthes");
  EXPECT_ERROR("/* unterminated\n comment", 1, "comment");
}

static void test_error_return_type(void) {
  EXPECT_ERROR("\n__kernel int bad(__global int* x) { return 0; }", 2, "'bad'", "void");
  EXPECT_ERROR("__kernel void* badp(int a) { return 0; }", 1, "'badp'", "void");
  EXPECT_ERROR("__kernel badn(int a) { }", 1, "'badn'", "void");
  EXPECT_ERROR("__kernel void;\n", 1, "malformed");
}

static void test_error_params(void) {
  EXPECT_ERROR("__kernel void k(\n  float* p) {}", 2, "'p'", "'k'", "address space");
  EXPECT_ERROR("__kernel void k(__private float* p) {}", 1, "address space", "__global");
  EXPECT_ERROR("__kernel void k(int a,\n __global float** pp) {}", 2, "'pp'", "pointer");
  EXPECT_ERROR("__kernel void k(__global float a[10]) {}", 1, "array");
  EXPECT_ERROR("__kernel void k(\n\n struct foo s) {}", 3, "'s'", "by-value");
  EXPECT_ERROR("__kernel void k(my type x) {}", 1, "'x'", "unsupported type");
  EXPECT_ERROR("__kernel void k(unsigned float x) {}", 1, "'x'", "unsupported type");
  EXPECT_ERROR("__kernel void k(__global int x) {}", 1, "'x'", "__global");
  EXPECT_ERROR("__kernel void k(int) {}", 1, "no name");
  EXPECT_ERROR("__kernel void k(__global float*) {}", 1, "no name");
  EXPECT_ERROR("__kernel void k(int a, , int b) {}", 1, "empty parameter");
  EXPECT_ERROR("__kernel void k(void v) {}", 1, "void");
  EXPECT_ERROR("__kernel void k(int a = 3) {}", 1, "unexpected", "'='");
  EXPECT_ERROR("__kernel void k(__global __local float* p) {}", 1, "two address spaces");
}

static void test_error_long_names(void) {
  char src[1024], name[200];
  memset(name, 'n', 150);
  name[150] = '\0';
  snprintf(src, sizeof src, "\n__kernel void %s(int a) {}", name);
  EXPECT_ERROR(src, 2, "too long", "kernel name");
  snprintf(src, sizeof src, "__kernel void k(\nint %s) {}", name);
  EXPECT_ERROR(src, 2, "too long", "parameter name");
  snprintf(src, sizeof src, "__kernel void k(__global %s* p) {}", name);
  EXPECT_ERROR(src, 1, "too long", "type");
  /* 127 characters is fine */
  name[127] = '\0';
  snprintf(src, sizeof src, "__kernel void %s(int a) {}", name);
  {
    lk_kparse_result_t r;
    LK_CHECK(parse(src, &r) == 0);
    LK_CHECK(r.num_kernels == 1 && strlen(r.kernels[0].name) == 127);
    lk_kparse_free(&r);
  }
}

static void test_error_duplicate(void) {
  EXPECT_ERROR("__kernel void dup(int a) {}\n\n__kernel void dup(int b) {}\n", 3, "'dup'",
               "duplicate", "line 1");
}

static void test_error_item_blocks(void) {
  EXPECT_ERROR("__kernel void rb(__global int* x) {\n"
               "  LIGHTOS_ITEMS {\n"
               "    if (x[0]) { return; }\n"
               "  }\n"
               "}\n",
               3, "'return'", "LIGHTOS_ITEMS", "'rb'", "continue");
  EXPECT_ERROR("__kernel void nb(__global int* x) {\n"
               "  LIGHTOS_ITEMS {\n"
               "    LIGHTOS_ITEMS { x[0] = 1; }\n"
               "  }\n"
               "}\n",
               3, "nested", "'nb'", "line 2");
  EXPECT_ERROR("__kernel void bn(__global int* x) {\n"
               "  x[0] = 1;\n"
               "  barrier(CLK_GLOBAL_MEM_FENCE);\n"
               "}\n",
               3, "'bn'", "barrier()", "LIGHTOS_ITEMS", "docs/kernel-language.md");
  EXPECT_ERROR("__kernel void bi(__global int* x) {\n"
               "  LIGHTOS_ITEMS {\n"
               "    x[0] = 1;\n"
               "    barrier(CLK_GLOBAL_MEM_FENCE);\n"
               "  }\n"
               "}\n",
               4, "barrier", "'bi'", "between item blocks");
  EXPECT_ERROR("__kernel void nob(__global int* x) {\n  LIGHTOS_ITEMS x[0] = 1;\n}\n", 2,
               "LIGHTOS_ITEMS", "block");
  /* `return` after an item block is fine, and so is a helper's barrier */
  {
    lk_kparse_result_t r;
    LK_CHECK(parse("void h(void) { barrier(0); return; }\n"
                   "__kernel void ok(__global int* x) { LIGHTOS_ITEMS { x[0] = 1; } return; }\n",
                   &r) == 0);
    LK_CHECK(r.num_kernels == 1);
    lk_kparse_free(&r);
  }
}

int main(void) {
  lk_t.program = "test_kparse";
  LK_RUN(test_simple_kernel);
  LK_RUN(test_multiple_kernels_and_keywords);
  LK_RUN(test_address_spaces);
  LK_RUN(test_qualifier_positions);
  LK_RUN(test_scalar_types);
  LK_RUN(test_scalar_names);
  LK_RUN(test_comments_and_strings);
  LK_RUN(test_preprocessor_lines);
  LK_RUN(test_helpers_and_prototypes);
  LK_RUN(test_body_analysis);
  LK_RUN(test_edge_inputs);
  LK_RUN(test_deep_nesting);
  LK_RUN(test_max_args);
  LK_RUN(test_error_balance);
  LK_RUN(test_error_return_type);
  LK_RUN(test_error_params);
  LK_RUN(test_error_long_names);
  LK_RUN(test_error_duplicate);
  LK_RUN(test_error_item_blocks);
  return lk_test_finish();
}
