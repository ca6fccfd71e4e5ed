/* Tests of the CUDA backend.
 *
 * Everywhere (no driver, no toolkit needed):
 *   - the backend is listed by lightos_backend_get_info; without a driver it
 *     is unavailable with a reason naming libcuda.so.1;
 *   - the CUDA code generator (lk_cuda_codegen): kernel headers, __local
 *     variables -> __shared__, __local pointer parameters -> dynamic shared
 *     memory offsets, bool parameters, plain address-space spellings,
 *     reserved names.
 * Where libnvrtc loads (the CUDA toolkit; no driver needed):
 *   - NVRTC compiles, for sm_90, generated CUDA source for conformance-style
 *     kernels: every builtin group, item blocks with barriers, __local
 *     arrays and __local pointer parameters, atomics, every scalar argument
 *     type, program-scope __constant data, -D/-I/-w options; the PTX shows
 *     the kernels, shared memory and unfused a*b+c; a compile error gives
 *     LIGHTOS_COMPILE_FAILED with the log's first error line.
 * With a CUDA device (each one):
 *   - device properties, program build errors, the cubin cache, kernels
 *     over non-uniform ranges, item blocks with barriers and __local
 *     arguments, sub-buffers, fills, host-visible (pinned, mapped) memory,
 *     events in batches, waits across queues, host commands in queue
 *     order, profiling, grids larger than the device's grid limits, peer
 *     access and a peer copy between two GPUs, dispatch timings (printed),
 *     launches after other code changed the thread's current context,
 *     and last a device-lost error (each device's context is lost on
 *     purpose, after everything else).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kcache.h"
#include "core/util.h"
#include "hal/cuda/cuda_backend.h"
#include "kernels/cl_codegen.h"
#include "kernels/kparse.h"
#include "kernels/preludes.h"
#include "lightos/lightos.h"
#include "lk_test.h"
#include "runtime/runtime.h"

/* ---- the backend entry --------------------------------------------------------- */

static lightos_backend_info_t g_cuda;
static bool g_cuda_found;

static void test_backend_listed(void) {
  uint32_t n = 0;
  LK_REQUIRE_OK(lightos_backend_count(&n));
  for (uint32_t i = 0; i < n; ++i) {
    lightos_backend_info_t b;
    LK_REQUIRE_OK(lightos_backend_get_info(i, &b));
    if (b.name && !strcmp(b.name, "cuda")) {
      g_cuda = b;
      g_cuda_found = true;
    }
  }
  LK_REQUIRE(g_cuda_found);
  LK_CHECK_INT(g_cuda.backend, LIGHTOS_BACKEND_CUDA);
  printf("cuda backend: %s%s\n", g_cuda.available ? "available" : "unavailable: ",
         g_cuda.available ? "" : g_cuda.reason);
  if (g_cuda.available) {
    LK_CHECK(g_cuda.device_count > 0);
    return;
  }
  LK_CHECK_INT(g_cuda.device_count, 0);
  LK_CHECK_MSG(g_cuda.reason && g_cuda.reason[0], "an unavailable backend needs a reason");
  /* Where the driver library itself is missing, the reason names it. */
  const char* env = getenv("LIGHTOS_CUDA_LIBRARY");
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib) dlclose(lib);
  if (!lib && !(env && env[0]))
    LK_CHECK_MSG(strstr(g_cuda.reason, "libcuda.so.1") != NULL,
                 "reason \"%s\" should name libcuda.so.1", g_cuda.reason);
  /* A cuda URI fails with the reason. */
  lightos_device_t d;
  LK_CHECK_STATUS(lightos_device_from_uri("cuda:0", &d), LIGHTOS_NOT_FOUND);
  LK_CHECK_MSG(strstr(lightos_last_error()->message, g_cuda.reason) != NULL,
               "message \"%s\" should carry the reason", lightos_last_error()->message);
}

/* ---- the code generator ------------------------------------------------------- */

static char* gen_cuda(const char* src, char* err, size_t cap) {
  lk_kparse_result_t r;
  if (lk_kparse(src, strlen(src), &r, err, cap) != 0) return NULL;
  char* text = NULL;
  size_t len = 0;
  if (lk_cuda_codegen(src, strlen(src), &r, lk_prelude_cuda, &text, &len, err, cap) != 0)
    text = NULL;
  else if (strlen(text) != len) {
    snprintf(err, cap, "length %zu does not match the text (%zu)", len, strlen(text));
    free(text);
    text = NULL;
  }
  lk_kparse_free(&r);
  return text;
}

#define CHECK_HAS(text, s) \
  LK_CHECK_MSG(strstr((text), (s)) != NULL, "generated source lacks \"%s\"", (s))
#define CHECK_LACKS(text, s) \
  LK_CHECK_MSG(strstr((text), (s)) == NULL, "generated source should not contain \"%s\"", (s))

static void test_codegen(void) {
  static const char src[] =
      "constant float k_tab[2] = {1.0f, 2.0f}; /* a local comment */\n"
      "float helper(__local float* p, int i) { return p[i]; }\n"
      "__kernel __attribute__((reqd_work_group_size(64, 1, 1)))\n"
      "void kb(__global float* restrict out, __constant float* c, __local float* scratch,\n"
      "        bool flag, char ch, ulong n) {\n"
      "  __local float tile[64];\n"
      "  local int counts[4], more[2];\n"
      "  LIGHTOS_ITEMS {\n"
      "    local float* p = tile;\n"
      "    const char* s = \"local global\";\n"
      "    p[get_local_id(0)] = c[0] + k_tab[1] + (flag ? 1.0f : 0.0f) + (float)ch;\n"
      "  }\n"
      "  barrier(CLK_LOCAL_MEM_FENCE);\n"
      "  LIGHTOS_ITEMS { out[get_global_id(0)] = helper(tile, 0) + scratch[0] + counts[0]; }\n"
      "}\n"
      "kernel void plain(global int* o) { o[get_global_id(0)] = 1; }\n";
  char err[512];
  char* text = gen_cuda(src, err, sizeof err);
  LK_REQUIRE(LK_CHECK_MSG(text != NULL, "codegen failed: %s", err));
  const char* body = text + lk_prelude_cuda_len;
  LK_CHECK(strncmp(text, lk_prelude_cuda, lk_prelude_cuda_len) == 0);
  CHECK_HAS(body, "#line 1 \"kernel.cl\"");
  CHECK_HAS(body,
            "extern \"C\" __global__ void kb(float* __restrict__ out, const float* c, "
            "size_t lk_l_scratch, unsigned char lk_b_flag, char ch, ulong n, "
            "const lk_cu_range_t lk_r) {");
  CHECK_HAS(body, "extern __shared__ __align__(64) unsigned char lk_smem_[];");
  CHECK_HAS(body, "float* scratch = (float*)(lk_smem_ + lk_l_scratch);");
  CHECK_HAS(body, "bool flag = lk_b_flag != 0;");
  CHECK_HAS(body, "#line 5 \"kernel.cl\"");
  CHECK_HAS(body, "  __shared__ float tile[64];");
  CHECK_HAS(body, "  __shared__ int counts[4], more[2];");
  CHECK_HAS(body, "    __local float* p = tile;");
  CHECK_HAS(body, "\"local global\"");         /* strings untouched */
  CHECK_HAS(body, "/* a local comment */");    /* comments untouched */
  CHECK_HAS(body, "__constant float k_tab[2]");
  CHECK_HAS(body, "float helper(__local float* p, int i)");
  CHECK_HAS(body,
            "extern \"C\" __global__ void plain(int* o, const lk_cu_range_t lk_r) {\n"
            "  if (!(LK_CU_IN_RANGE_)) return;\n");
  CHECK_LACKS(body, "reqd_work_group_size"); /* attributes of the kernel header go */
  CHECK_LACKS(body, "kernel void");
  /* Item-block kernels keep out-of-range items alive for the barriers. */
  const char* kb = strstr(body, "void kb(");
  const char* plain = strstr(body, "void plain(");
  LK_REQUIRE(kb && plain);
  const char* ret = strstr(kb, "if (!(LK_CU_IN_RANGE_)) return;");
  LK_CHECK_MSG(ret == NULL || ret > plain, "kernel kb (item blocks) must not return early");
  free(text);

  /* Reserved parameter names. */
  text = gen_cuda("__kernel void r(__global int* lk_x) { lk_x[0] = 1; }", err, sizeof err);
  LK_CHECK(text == NULL);
  LK_CHECK_MSG(strstr(err, "reserved") != NULL, "message: %s", err);
  free(text);
}

/* ---- NVRTC ---------------------------------------------------------------------- */

/* Conformance-style kernels over every builtin group. */
static const char k_big_src[] =
    "#include \"lk_cuda_test_inc.h\"\n"
    "#ifndef SCALE\n#error SCALE must come from -D\n#endif\n"
    "__constant int k_table[4] = {1, 2, 3, 5};\n"
    "constant float k_ftab[2] = {0.5f, 0.25f};\n"
    "typedef struct { int a; float b; } pair_t;\n"
    "static inline int helper_lookup(__constant const int* t, int i) { return t[i & 3]; }\n"
    "inline float helper_sum(__local const float* p, uint n) {\n"
    "  float s = 0.0f; for (uint i = 0; i < n; ++i) s += p[i]; return s; }\n"
    "\n"
    "__kernel void math_f(__global const float* a, __global const float* b, __global float* o) {\n"
    "  size_t i = get_global_id(0); float x = a[i], y = b[i]; int k = 0;\n"
    "  o[k++ * 1024 + i] = acos(x) + acosh(y) + asin(x) + asinh(x) + atan(x) + atan2(x, y)\n"
    "    + atanh(x) + cbrt(x) + ceil(x) + copysign(x, y) + cos(x) + cosh(x) + erf(x) + erfc(x)\n"
    "    + exp(x) + exp2(x) + exp10(x) + expm1(x) + fabs(x) + fdim(x, y) + floor(x)\n"
    "    + fma(x, y, 1.0f) + fmax(x, y) + fmin(x, y) + fmod(x, y) + hypot(x, y) + ldexp(x, 3)\n"
    "    + lgamma(x) + log(y) + log2(y) + log10(y) + log1p(y) + logb(y) + mad(x, y, x)\n"
    "    + nextafter(x, y) + pow(x, y) + pown(x, 3) + powr(y, x) + remainder(x, y) + rint(x)\n"
    "    + round(x) + rsqrt(y) + sin(x) + sinh(x) + sqrt(y) + tan(x) + tanh(x) + tgamma(y)\n"
    "    + trunc(x) + pow(x, 2) + fmax(x, 1) + sqrt(2);\n"
    "  o[k++ * 1024 + i] = native_cos(x) + native_divide(x, y) + native_exp(x) + native_exp2(x)\n"
    "    + native_exp10(x) + native_log(y) + native_log2(y) + native_log10(y) + native_powr(y, x)\n"
    "    + native_recip(y) + native_rsqrt(y) + native_sin(x) + native_sqrt(y) + native_tan(x)\n"
    "    + half_cos(x) + half_divide(x, y) + half_exp(x) + half_exp2(x) + half_exp10(x)\n"
    "    + half_log(y) + half_log2(y) + half_log10(y) + half_powr(y, x) + half_recip(y)\n"
    "    + half_rsqrt(y) + half_sin(x) + half_sqrt(y) + half_tan(x);\n"
    "  o[k++ * 1024 + i] = clamp(x, 0.0f, 1.0f) + degrees(x) + radians(x) + max(x, y) + min(x, y)\n"
    "    + mix(x, y, 0.5f) + step(x, y) + smoothstep(0.0f, 1.0f, x) + sign(x)\n"
    "    + M_PI_F + M_E_F + M_SQRT2_F + FLT_EPSILON + MAXFLOAT + (float)FLT_MANT_DIG;\n"
    "  o[k++ * 1024 + i] = (float)(isnan(x) + isinf(x) + isfinite(x) + isnormal(x) + signbit(x)\n"
    "    + isequal(x, y) + isnotequal(x, y) + isgreater(x, y) + isgreaterequal(x, y)\n"
    "    + isless(x, y) + islessequal(x, y) + isordered(x, y) + isunordered(x, y))\n"
    "    + select(x, y, (int)i & 1) + bitselect(x, y, 1.0f) + (x == INFINITY ? 1.0f : 0.0f)\n"
    "    + (isnan(NAN) ? 1.0f : 0.0f) + HUGE_VALF;\n"
    "}\n"
    "\n"
    "#ifdef cl_khr_fp64\n"
    "__kernel void math_d(__global const double* a, __global double* o) {\n"
    "  size_t i = get_global_id(0); double x = a[i];\n"
    "  o[i] = sin(x) + pow(x, 2.0) + fma(x, x, x) + mad(x, x, 1.0) + fmin(x, 0.5) + clamp(x, 0.0, 1.0)\n"
    "    + (double)isnan(x) + pown(x, 2) + rsqrt(x) + exp10(x) + M_PI + DBL_EPSILON + HUGE_VAL\n"
    "    + bitselect(x, -x, -0.0) + select(x, 2.0, (long)i) + convert_double((float)x) + as_double(as_long(x));\n"
    "}\n"
    "#endif\n"
    "\n"
    "__kernel void ints(__global int* oi, __global uint* ou, __global long* ol, __global ulong* oul,\n"
    "                   __global char* oc, __global uchar* ouc, __global short* os, __global ushort* ous) {\n"
    "  size_t g = get_global_id(0); int x = (int)g - 7; uint ux = (uint)g * 2654435761u;\n"
    "  long lx = (long)g * -1234567891L; ulong ulx = (ulong)g << 40; char c = (char)g;\n"
    "  uchar uc = (uchar)(g * 3); short s = (short)(g * 1000); ushort us = (ushort)(g * 7000);\n"
    "  oi[g] = (int)abs(x) + (int)abs_diff(x, 3) + add_sat(x, INT_MAX) + sub_sat(x, INT_MIN) + hadd(x, 3)\n"
    "    + rhadd(x, 5) + clz(x) + popcount(x) + rotate(x, 5) + mul_hi(x, 77777) + mad_hi(x, x, 1)\n"
    "    + mul24(x, 3) + mad24(x, 3, 4) + min(x, 2) + max(x, -2) + clamp(x, -3, 3) + select(x, 1, x > 0)\n"
    "    + bitselect(x, ~x, 0x0f0f0f0f) + helper_lookup(k_table, x);\n"
    "  ou[g] = abs(ux) + add_sat(ux, 7u) + sub_sat(ux, 9u) + clz(ux) + popcount(ux) + rotate(ux, 31u)\n"
    "    + mul_hi(ux, ux) + mul24(ux, 2u) + mad24(ux, 2u, 1u) + max(ux, 3u) + hadd(ux, ux) + UINT_MAX;\n"
    "  ol[g] = (long)abs(lx) + add_sat(lx, LONG_MAX) + sub_sat(lx, 1L) + clz(lx) + popcount(lx)\n"
    "    + rotate(lx, 7L) + mul_hi(lx, lx) + mad_hi(lx, lx, 1L) + hadd(lx, 3L) + min(lx, 0L) + LONG_MIN;\n"
    "  oul[g] = clz(ulx) + mul_hi(ulx, ulx) + add_sat(ulx, ULONG_MAX) + rhadd(ulx, 1ul) + abs_diff(ulx, 5ul);\n"
    "  oc[g] = (char)(clz(c) + add_sat(c, (char)100) + abs(c) + rotate(c, (char)3) + mul_hi(c, c) + CHAR_MIN);\n"
    "  ouc[g] = (uchar)(clz(uc) + sub_sat(uc, (uchar)200) + popcount(uc) + rhadd(uc, uc) + UCHAR_MAX);\n"
    "  os[g] = (short)(mul_hi(s, s) + add_sat(s, (short)30000) + clz(s) + SHRT_MIN);\n"
    "  ous[g] = (ushort)(popcount(us) + rotate(us, (ushort)9) + abs_diff(us, (ushort)1) + USHRT_MAX);\n"
    "}\n"
    "\n"
    "__kernel void conv(__global const float* f, __global const double* d, __global long* o) {\n"
    "  size_t g = get_global_id(0); float x = f[g]; double y = d[g]; int i = (int)g - 100;\n"
    "  o[g] = convert_char(x) + convert_char_sat(x) + convert_uchar(x) + convert_uchar_sat(i)\n"
    "    + convert_short(x) + convert_short_sat(y) + convert_ushort(i) + convert_ushort_sat(y)\n"
    "    + convert_int(x) + convert_int_sat(y) + (long)convert_uint(x) + (long)convert_uint_sat(i)\n"
    "    + convert_long(x) + convert_long_sat(y) + (long)convert_ulong(y) + (long)convert_ulong_sat(i)\n"
    "    + (long)convert_float(i) + (long)convert_double(x) + as_int(x) + (long)as_uint(x)\n"
    "    + (long)as_float(i) + as_long(y) + (long)as_ulong(y) + as_char((uchar)i) + as_uchar((char)i)\n"
    "    + as_short((ushort)i) + as_ushort((short)i) + convert_int(true) + convert_char_sat(false);\n"
    "}\n"
    "\n"
    "/* a*b+c must stay two roundings (--fmad=false). */\n"
    "__kernel void muladd(__global const float* a, __global const float* b, __global float* o) {\n"
    "  size_t g = get_global_id(0); o[g] = a[g] * b[g] + o[g];\n"
    "}\n"
    "\n"
    "#define RLS 128\n"
    "__kernel void reduce(__global const int* in, __global int* gsum, __local float* lp,\n"
    "                     __local int* lq) {\n"
    "  __local int s[RLS];\n"
    "  local float t2[4];\n"
    "  LIGHTOS_PRIVATE(int, keep);\n"
    "  LIGHTOS_ITEMS {\n"
    "    size_t l = get_local_id(0);\n"
    "    int v = in[get_global_id(0)];\n"
    "    s[l] = v; lq[l] = v; lp[l] = (float)v;\n"
    "    LIGHTOS_P(keep) = v * 3 + (int)l;\n"
    "    if (l < 4) t2[l] = 1.0f;\n"
    "  }\n"
    "  for (uint l = (uint)get_local_size(0); l < RLS; ++l) s[l] = 0;\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  for (uint stride = RLS / 2; stride > 0; stride >>= 1) {\n"
    "    LIGHTOS_ITEMS {\n"
    "      size_t l = get_local_id(0);\n"
    "      if (l >= stride) continue;\n"
    "      s[l] += s[l + stride];\n"
    "    }\n"
    "    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);\n"
    "  }\n"
    "  LIGHTOS_ITEMS {\n"
    "    if (get_local_id(0) == 0)\n"
    "      gsum[get_group_id(0)] = s[0] + LIGHTOS_P(keep) * 0 + (int)helper_sum(t2, 4) + lq[0]\n"
    "        + (int)lp[0] + (int)get_num_groups(0) + (int)get_enqueued_local_size(0)\n"
    "        + (int)get_global_offset(0) + (int)get_work_dim() + (int)get_global_size(0);\n"
    "  }\n"
    "}\n"
    "\n"
    "__kernel void wi3(__global uint* out) {\n"
    "  size_t x = get_global_id(0), y = get_global_id(1), z = get_global_id(2);\n"
    "  __global uint* o = out + ((z * get_global_size(1) + y) * get_global_size(0) + x) * 8;\n"
    "  for (uint d = 0; d < 4; ++d)\n"
    "    o[d] = (uint)(get_local_id(d) + get_group_id(d) + get_local_size(d) + get_num_groups(d));\n"
    "  o[4] = get_work_dim(); mem_fence(CLK_GLOBAL_MEM_FENCE); read_mem_fence(CLK_LOCAL_MEM_FENCE);\n"
    "  write_mem_fence(CLK_GLOBAL_MEM_FENCE);\n"
    "}\n"
    "\n"
    "__kernel void atoms(volatile __global int* c, volatile __global uint* u, __global long* l,\n"
    "                    __global ulong* ul, __global float* fx, __global int* old) {\n"
    "  __local int h[17];\n"
    "  LIGHTOS_ITEMS { if (get_local_id(0) < 17) h[get_local_id(0)] = 0; }\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  LIGHTOS_ITEMS {\n"
    "    int g = (int)get_global_id(0);\n"
    "    atomic_add(&c[0], 3); old[g] = atomic_inc(&c[1]); atomic_sub(&c[2], 2); atomic_dec(&c[3]);\n"
    "    atomic_xchg(&c[4], g); atomic_cmpxchg(&c[5], g, g + 1); atomic_min(&c[6], -g);\n"
    "    atomic_max(&c[7], g); atomic_and(&c[8], ~(1 << (g % 30))); atomic_or(&c[9], 1 << (g % 30));\n"
    "    atomic_xor(&c[10], g); atomic_min(&u[0], (uint)g); atomic_max(&u[1], (uint)g);\n"
    "    atomic_inc(&u[2]); atomic_dec(&u[3]); atomic_xchg(&fx[0], (float)g);\n"
    "    atom_add(&l[0], 5000000000L); atom_sub(&l[1], 3L); atom_inc(&l[2]); atom_dec(&l[3]);\n"
    "    atom_xchg(&l[4], (long)g); atom_cmpxchg(&l[5], 0L, 1L); atom_min(&l[6], -(long)g);\n"
    "    atom_max(&l[7], (long)g); atom_and(&ul[0], ~1ul); atom_or(&ul[1], 1ul << 40);\n"
    "    atom_xor(&ul[2], (ulong)g); atom_min(&ul[3], (ulong)g); atom_max(&ul[4], (ulong)g);\n"
    "    atom_inc(&ul[5]); atom_add(&c[11], 1); atomic_add(&h[g % 17], 1);\n"
    "  }\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  LIGHTOS_ITEMS { if (get_local_id(0) < 17) atomic_add(&c[12 + (get_local_id(0) & 3)], h[get_local_id(0)]); }\n"
    "}\n"
    "\n"
    "__kernel void scalars(char c, uchar uc, short s, ushort us, int i, uint u, long l, ulong ul,\n"
    "                      float f, double d, size_t z, bool b, my_int_t t, __global long* o,\n"
    "                      __global float* of, __global double* od) {\n"
    "  o[0] = c; o[1] = uc; o[2] = s; o[3] = us; o[4] = i; o[5] = u; o[6] = l; o[7] = (long)ul;\n"
    "  o[8] = (long)z; o[9] = b ? 1 : 0; o[10] = t * SCALE; of[0] = f; od[0] = d;\n"
    "}\n"
    "\n"
    "__kernel void structs(__global pair_t* p, __constant pair_t* q) {\n"
    "  size_t g = get_global_id(0); p[g].a = q[g].a + 1; p[g].b = q[g].b * k_ftab[g & 1];\n"
    "}\n";

static const char k_inc_h[] = "typedef int my_int_t;\n";

static const char* const k_big_kernels[] = {"math_f", "math_d", "ints", "conv", "muladd",
                                            "reduce", "wi3", "atoms", "scalars", "structs"};

/* The text of the .entry NAME( ... ) block in PTX ("" when absent). */
static const char* ptx_entry(const char* ptx, const char* name, size_t* len) {
  char pat[160];
  snprintf(pat, sizeof pat, ".entry %s(", name);
  const char* e = strstr(ptx, pat);
  if (!e) {
    *len = 0;
    return "";
  }
  const char* next = strstr(e + 1, ".entry ");
  *len = next ? (size_t)(next - e) : strlen(e);
  return e;
}

static bool span_has(const char* s, size_t len, const char* what) {
  size_t n = strlen(what);
  for (size_t i = 0; i + n <= len; ++i)
    if (!memcmp(s + i, what, n)) return true;
  return false;
}

static char g_incdir[256];
static void nvrtc_checks(const char* opts);

static void test_nvrtc_compile(void) {
  char why[256];
  if (!lk_nvrtc_api_get(why, sizeof why)) {
    lk_test_skip("NVRTC cannot be loaded here: %s", why);
    return;
  }
  char arch[32];
  LK_REQUIRE_OK(lk_cuda_arch_for(9, 0, arch, sizeof arch));
  LK_CHECK_MSG(!strcmp(arch, "sm_90") || !strncmp(arch, "compute_", 8), "arch for 9.0: %s", arch);
  printf("NVRTC %s: sm_90 builds as %s\n", lk_nvrtc_api_get(NULL, 0)->path, arch);

  /* The include directory for -I. */
  snprintf(g_incdir, sizeof g_incdir, "/tmp/lk_cuda_test_%d", (int)getpid());
  mkdir(g_incdir, 0700);
  char inc[320];
  snprintf(inc, sizeof inc, "%s/lk_cuda_test_inc.h", g_incdir);
  FILE* f = fopen(inc, "w");
  if (LK_CHECK(f != NULL)) {
    fputs(k_inc_h, f);
    fclose(f);
    char opts[512];
    snprintf(opts, sizeof opts, "-D SCALE=3 -DUNUSED -I %s -cl-std=CL1.2", g_incdir);
    nvrtc_checks(opts);
  }
  unlink(inc);
  rmdir(g_incdir);
}

static void nvrtc_checks(const char* opts) {
  char err[512];
  char* text = gen_cuda(k_big_src, err, sizeof err);
  LK_REQUIRE(LK_CHECK_MSG(text != NULL, "codegen failed: %s", err));
  void* image = NULL;
  size_t size = 0;
  char* log = NULL;
  lightos_status_t s = lk_cuda_compile_source(text, strlen(text), "sm_90", opts, &image, &size, &log);
  LK_CHECK_MSG(s == LIGHTOS_SUCCESS, "sm_90 build failed: %s\n%s", lightos_last_error()->message,
               log ? log : "");
  if (!s) {
    LK_CHECK(size > 4 && !memcmp(image, "\x7f" "ELF", 4)); /* a cubin is an ELF image */
    LK_CHECK_MSG(log == NULL || !strstr(log, "warning"), "NVRTC warned:\n%s", log);
  }
  free(image);
  free(log);
  image = NULL;
  log = NULL;

  /* PTX of the same source: the kernels, their parameters, shared memory,
   * and the unfused multiply-add. */
  s = lk_cuda_compile_source(text, strlen(text), "compute_90", opts, &image, &size, &log);
  LK_CHECK_MSG(s == LIGHTOS_SUCCESS, "compute_90 build failed: %s\n%s",
               lightos_last_error()->message, log ? log : "");
  if (!s) {
    const char* ptx = image;
    LK_CHECK(size > 0 && ptx[size - 1] == '\0');
    for (size_t i = 0; i < sizeof k_big_kernels / sizeof k_big_kernels[0]; ++i) {
      size_t n;
      ptx_entry(ptx, k_big_kernels[i], &n);
      LK_CHECK_MSG(n > 0, "PTX lacks .entry %s", k_big_kernels[i]);
    }
    size_t n;
    const char* e = ptx_entry(ptx, "muladd", &n);
    LK_CHECK_MSG(span_has(e, n, "mul.rn.f32") && span_has(e, n, "add.rn.f32") &&
                     !span_has(e, n, "fma.rn.f32"),
                 "muladd should be mul.rn + add.rn, not fma:\n%.*s", (int)n, e);
    e = ptx_entry(ptx, "reduce", &n);
    LK_CHECK_MSG(span_has(e, n, "bar.sync"), "reduce lacks barriers");
    LK_CHECK_MSG(span_has(e, n, ".shared .align 4 .b8") && span_has(e, n, "_param_4[56]"),
                 "reduce: shared arrays / range parameter:\n%.*s", (int)(n < 1500 ? n : 1500), e);
    LK_CHECK_MSG(strstr(ptx, ".extern .shared") != NULL, "no dynamic shared memory in the PTX");
    e = ptx_entry(ptx, "scalars", &n);
    /* char uchar short ushort int uint long ulong float double size_t bool int, 3 pointers, range */
    LK_CHECK_MSG(span_has(e, n, ".param .u8 scalars_param_0") &&
                     span_has(e, n, ".param .u16 scalars_param_2") &&
                     span_has(e, n, ".param .f64 scalars_param_9") &&
                     span_has(e, n, ".param .u64 scalars_param_10") &&
                     span_has(e, n, ".param .u8 scalars_param_11") &&
                     span_has(e, n, "scalars_param_16[56]"),
                 "scalars: unexpected parameters:\n%.*s", (int)(n < 1500 ? n : 1500), e);
    e = ptx_entry(ptx, "atoms", &n);
    LK_CHECK_MSG(span_has(e, n, "atom.global.add.u32") || span_has(e, n, "red.global.add.u32") ||
                     span_has(e, n, "atom.global.add.s32") || span_has(e, n, "red.global.add.s32"),
                 "atoms: no 32-bit global atomic add");
    LK_CHECK_MSG(span_has(e, n, ".shared.") , "atoms: no shared-memory atomics");
  }
  free(image);
  free(log);
  free(text);
  image = NULL;
  log = NULL;

  /* A compile error: COMPILE_FAILED, the first error line, the log. */
  text = gen_cuda("__kernel void broken(__global int* o) {\n  o[0] = undeclared_identifier;\n}\n",
                  err, sizeof err);
  LK_REQUIRE(text != NULL);
  s = lk_cuda_compile_source(text, strlen(text), "sm_90", "", &image, &size, &log);
  LK_CHECK_INT(s, LIGHTOS_COMPILE_FAILED);
  const lightos_error_info_t* ei = lightos_last_error();
  printf("compile error: %s\n", ei->message);
  LK_CHECK_MSG(strstr(ei->message, "kernel.cl(2)") && strstr(ei->message, "undeclared_identifier"),
               "message: %s", ei->message);
  LK_CHECK_STR(ei->native_name, "NVRTC_ERROR_COMPILATION");
  LK_CHECK(image == NULL);
  LK_CHECK_MSG(log && strstr(log, "error"), "log: %s", log ? log : "(none)");
  free(log);
  free(text);
}

/* ---- with a device -------------------------------------------------------------- */

static const char k_dev_src[] =
    "__kernel void fill_idx(__global int* out, int add) {\n"
    "  size_t i = get_global_id(0); out[i] = (int)i * 2 + add; }\n"
    "__kernel void grp(__global const int* in, __global int* out, __local int* tmp) {\n"
    "  LIGHTOS_ITEMS { tmp[get_local_id(0)] = in[get_global_id(0)]; }\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  LIGHTOS_ITEMS { size_t l = get_local_id(0), n = get_local_size(0);\n"
    "    out[get_global_id(0)] = tmp[n - 1 - l] + (int)n * 1000; }\n"
    "}\n"
    "__kernel void inc(__global int* p) { p[get_global_id(0)] += 1; }\n"
    "__kernel void busy(__global float* p, int iters) {\n"
    "  float x = p[get_global_id(0)];\n"
    "  for (int i = 0; i < iters; ++i) x = x * 0.999f + 0.001f;\n"
    "  p[get_global_id(0)] = x; }\n"
    "__kernel void empty(int unused) { }\n"
    "__kernel void gy(__global uint* out) { out[get_global_id(1)] = (uint)get_group_id(1) * 3u + 1u; }\n"
    "__kernel void bad(__global int* p, ulong off) { p[off] = 1; }\n";

typedef struct {
  lightos_device_t dev;
  lightos_device_info_t info;
  lightos_context_t ctx;
  lightos_queue_t q;
  lightos_program_t prog;
} cdev_t;

static cdev_t D;

static lightos_kernel_t kern(const char* name) {
  lightos_kernel_t k = NULL;
  if (lightos_kernel_create(D.prog, name, &k)) return NULL;
  return k;
}

static void test_dev_properties(void) {
  const lightos_device_info_t* in = &D.info;
  printf("%s: %s, %s, PCI %s, %u SMs, %.1f GiB, local %llu KiB, max wg %zu\n", in->uri, in->name,
         in->driver_version, in->pci_bus_id, in->compute_units,
         (double)in->global_mem_bytes / (1u << 30), (unsigned long long)(in->local_mem_bytes >> 10),
         in->max_work_group_size);
  LK_CHECK_INT(in->backend, LIGHTOS_BACKEND_CUDA);
  LK_CHECK(in->compute_units > 0);
  LK_CHECK(in->global_mem_bytes > ((uint64_t)1 << 30));
  LK_CHECK(in->max_work_group_size >= 256);
  LK_CHECK(in->local_mem_bytes >= 48u * 1024);
  LK_CHECK(in->fp64);
  LK_CHECK(in->host_visible_memory);
  LK_CHECK(in->type == LIGHTOS_DEVICE_TYPE_GPU_DISCRETE ||
           in->type == LIGHTOS_DEVICE_TYPE_GPU_INTEGRATED);
  LK_CHECK_MSG(!strncmp(in->driver_version, "sm_", 3), "driver_version \"%s\"", in->driver_version);
  LK_CHECK_STR(in->vendor, "NVIDIA Corporation");
  /* "0000:3b:00.0": lowercase hex, 4:2:2.1 */
  const char* p = in->pci_bus_id;
  bool ok = strlen(p) == 12 && p[4] == ':' && p[7] == ':' && p[10] == '.';
  for (int i = 0; ok && i < 12; ++i)
    if (i != 4 && i != 7 && i != 10)
      ok = (p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f');
  LK_CHECK_MSG(ok, "pci_bus_id \"%s\" is not like 0000:3b:00.0", p);
}

static void test_dev_build(void) {
  lightos_program_t p = NULL;
  LK_REQUIRE_OK(lightos_program_create(D.ctx, "__kernel void b(__global int* o) { o[0] = nope; }",
                                       0, &p));
  LK_CHECK_STATUS(lightos_program_build(p, NULL), LIGHTOS_COMPILE_FAILED);
  LK_CHECK_STR(lightos_last_error()->backend, "cuda");
  char log[4096];
  if (lightos_program_build_log(p, log, sizeof log, NULL) == LIGHTOS_SUCCESS)
    LK_CHECK_MSG(strstr(log, "nope") != NULL, "build log: %s", log);
  lightos_program_release(p);

  /* The cubin cache: a second build of the same source is a hit. */
  const char* src = "__kernel void c1(__global int* o, int v) { o[get_global_id(0)] = v * 5; }";
  lightos_program_info_t pi[2];
  for (int i = 0; i < 2; ++i) {
    LK_REQUIRE_OK(lightos_program_create(D.ctx, src, 0, &p));
    LK_REQUIRE_OK(lightos_program_build(p, "-D UNIQUE_TAG=17"));
    LK_REQUIRE_OK(lightos_program_get_info(p, &pi[i]));
    lightos_program_release(p);
  }
  printf("%s: build %.1f ms (from_cache %d), again %.1f ms (from_cache %d)\n", D.info.uri,
         pi[0].build_ms, pi[0].from_cache, pi[1].build_ms, pi[1].from_cache);
  if (lk_cache_dir())
    LK_CHECK_MSG(pi[1].from_cache, "the second build should come from the cubin cache");
}

static bool read_ints(lightos_buffer_t b, size_t off, size_t n, int* out) {
  return lightos_buffer_read(b, off, n * sizeof(int), out) == LIGHTOS_SUCCESS;
}

static void test_dev_kernels(void) {
  enum { N = 1000 };
  lightos_buffer_t b = NULL, o = NULL, sub = NULL;
  lightos_kernel_t k = kern("fill_idx"), kg = kern("grp");
  LK_REQUIRE(k && kg);
  LK_REQUIRE_OK(lightos_buffer_alloc(D.ctx, (N + 16) * sizeof(int), 0, &b));
  LK_REQUIRE_OK(lightos_buffer_alloc(D.ctx, N * sizeof(int), 0, &o));
  int pat = -5;
  LK_REQUIRE_OK(lightos_buffer_fill(b, 0, (N + 16) * sizeof(int), &pat, sizeof pat));
  /* Non-uniform: 1000 items in groups of 64. */
  size_t gs = N, ls = 64;
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, b));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(k, 1, 7));
  LK_REQUIRE_OK(lightos_enqueue_kernel(D.q, k, 1, &gs, &ls, NULL));
  static int got[N + 16];
  LK_REQUIRE_OK(lightos_queue_finish(D.q));
  LK_REQUIRE(read_ints(b, 0, N + 16, got));
  int bad = 0;
  for (int i = 0; i < N + 16; ++i) {
    int want = i < N ? i * 2 + 7 : -5;
    if (got[i] != want && bad++ < 5) lk_test_fail(__FILE__, __LINE__, "fill_idx[%d]: expected %d, got %d", i, want, got[i]);
  }
  /* A sub-buffer at an offset: kernels see its first element. */
  LK_REQUIRE_OK(lightos_buffer_create_sub(b, 8 * sizeof(int), 100 * sizeof(int), &sub));
  gs = 100;
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, sub));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(k, 1, 1000000));
  LK_REQUIRE_OK(lightos_enqueue_kernel(D.q, k, 1, &gs, NULL, NULL)); /* auto local size */
  LK_REQUIRE(read_ints(b, 0, 120, got));
  for (int i = 0; i < 120; ++i) {
    int want = i >= 8 && i < 108 ? (i - 8) * 2 + 1000000 : i * 2 + 7;
    if (got[i] != want && bad++ < 10) lk_test_fail(__FILE__, __LINE__, "sub-buffer [%d]: expected %d, got %d", i, want, got[i]);
  }
  /* Item blocks + barrier + __local argument over a partial last group. */
  gs = N;
  ls = 128;
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(kg, 0, b));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(kg, 1, o));
  LK_REQUIRE_OK(lightos_kernel_set_arg_local(kg, 2, 128 * sizeof(int)));
  LK_REQUIRE_OK(lightos_enqueue_kernel(D.q, kg, 1, &gs, &ls, NULL));
  int src[N + 16];
  LK_REQUIRE(read_ints(b, 0, N + 16, src));
  LK_REQUIRE(read_ints(o, 0, N, got));
  for (int i = 0; i < N; ++i) {
    int grp0 = i / 128 * 128, n = N - grp0 < 128 ? N - grp0 : 128, l = i - grp0;
    int want = src[grp0 + n - 1 - l] + n * 1000;
    if (got[i] != want && bad++ < 15) lk_test_fail(__FILE__, __LINE__, "grp[%d]: expected %d, got %d", i, want, got[i]);
  }
  /* Fills: an 8-byte pattern, and a 2-byte one at an odd address. */
  uint32_t p8[2] = {0x11223344u, 0xa5a5a5a5u};
  LK_REQUIRE_OK(lightos_buffer_fill(b, 8, 64, p8, 8));
  lightos_buffer_t odd = NULL;
  LK_REQUIRE_OK(lightos_buffer_create_sub(b, 201, 64, &odd));
  uint16_t p2 = 0xbeef;
  LK_REQUIRE_OK(lightos_buffer_fill(odd, 0, 64, &p2, 2));
  unsigned char bytes[300];
  LK_REQUIRE_OK(lightos_buffer_read(b, 0, sizeof bytes, bytes));
  for (int i = 8; i < 72; ++i) {
    unsigned char want = ((const unsigned char*)p8)[(i - 8) % 8];
    if (bytes[i] != want && bad++ < 20) lk_test_fail(__FILE__, __LINE__, "fill8 byte %d: expected %u, got %u", i, want, bytes[i]);
  }
  for (int i = 201; i < 265; ++i) {
    unsigned char want = ((const unsigned char*)&p2)[(i - 201) % 2];
    if (bytes[i] != want && bad++ < 25) lk_test_fail(__FILE__, __LINE__, "fill2 byte %d: expected %u, got %u", i, want, bytes[i]);
  }
  /* A local size beyond the block limit in z. */
  size_t g3[3] = {1, 1, 128}, l3[3] = {1, 1, 128};
  LK_CHECK_STATUS(lightos_enqueue_kernel(D.q, k, 3, g3, l3, NULL), LIGHTOS_INVALID_ARGUMENT);
  lightos_buffer_release(odd);
  lightos_buffer_release(sub);
  lightos_buffer_release(o);
  lightos_buffer_release(b);
  lightos_kernel_release(kg);
  lightos_kernel_release(k);
}

static void test_dev_big_grid(void) {
  /* 70000 groups in y: more than one grid holds (65535). */
  enum { NY = 70000 };
  lightos_kernel_t k = kern("gy");
  LK_REQUIRE(k);
  lightos_buffer_t b = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(D.ctx, NY * sizeof(uint32_t), 0, &b));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, b));
  size_t gs[2] = {1, NY}, ls[2] = {1, 1};
  LK_REQUIRE_OK(lightos_enqueue_kernel(D.q, k, 2, gs, ls, NULL));
  uint32_t* got = malloc(NY * sizeof *got);
  LK_REQUIRE(got);
  if (lightos_buffer_read(b, 0, NY * sizeof *got, got) == LIGHTOS_SUCCESS) {
    int bad = 0;
    for (uint32_t y = 0; y < NY; ++y)
      if (got[y] != y * 3u + 1u && bad++ < 5)
        lk_test_fail(__FILE__, __LINE__, "gy[%u]: expected %u, got %u", y, y * 3u + 1u, got[y]);
  } else {
    lk_test_fail(__FILE__, __LINE__, "read failed: %s", lightos_last_error()->message);
  }
  free(got);
  lightos_buffer_release(b);
  lightos_kernel_release(k);
}

static void test_dev_host_visible(void) {
  enum { N = 4096 };
  lightos_buffer_t b = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(D.ctx, N * sizeof(int), LIGHTOS_BUFFER_HOST_VISIBLE, &b));
  void* m = NULL;
  LK_REQUIRE_OK(lightos_buffer_map(b, 0, N * sizeof(int), &m));
  int* p = m;
  for (int i = 0; i < N; ++i) p[i] = i * 3;
  lightos_kernel_t k = kern("inc");
  LK_REQUIRE(k);
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, b));
  size_t gs = N;
  LK_REQUIRE_OK(lightos_enqueue_kernel(D.q, k, 1, &gs, NULL, NULL));
  LK_REQUIRE_OK(lightos_queue_finish(D.q));
  int bad = 0;
  for (int i = 0; i < N; ++i)
    if (p[i] != i * 3 + 1 && bad++ < 5) lk_test_fail(__FILE__, __LINE__, "mapped[%d]: expected %d, got %d", i, i * 3 + 1, p[i]);
  /* Transfers and fills on pinned memory, seen through the mapping. */
  int v[16], back[16];
  for (int i = 0; i < 16; ++i) v[i] = -i - 100;
  LK_REQUIRE_OK(lightos_buffer_write(b, 64 * sizeof(int), sizeof v, v));
  uint32_t p8[2] = {0xdeadbeefu, 0x01020304u};
  LK_REQUIRE_OK(lightos_buffer_fill(b, 128 * sizeof(int), 32 * sizeof(int), p8, 8));
  int seven = 7;
  LK_REQUIRE_OK(lightos_buffer_fill(b, 256 * sizeof(int), 16 * sizeof(int), &seven, 4));
  LK_REQUIRE_OK(lightos_buffer_read(b, 64 * sizeof(int), sizeof back, back));
  LK_CHECK(memcmp(back, v, sizeof v) == 0);
  LK_CHECK(memcmp(p + 64, v, sizeof v) == 0);
  for (int i = 0; i < 32; ++i)
    if ((uint32_t)p[128 + i] != p8[i & 1] && bad++ < 10)
      lk_test_fail(__FILE__, __LINE__, "fill8 mapped[%d]: expected 0x%x, got 0x%x", i, p8[i & 1], (uint32_t)p[128 + i]);
  for (int i = 0; i < 16; ++i)
    if (p[256 + i] != 7 && bad++ < 15)
      lk_test_fail(__FILE__, __LINE__, "fill4 mapped[%d]: expected 7, got %d", i, p[256 + i]);
  LK_REQUIRE_OK(lightos_buffer_unmap(b, m));
  lightos_kernel_release(k);
  lightos_buffer_release(b);
}

static void test_dev_events(void) {
  enum { N = 256, LAUNCHES = 600 }; /* more than a completion batch (256) */
  lightos_kernel_t k = kern("inc");
  LK_REQUIRE(k);
  lightos_buffer_t b = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(D.ctx, N * sizeof(int), 0, &b));
  int zero = 0;
  LK_REQUIRE_OK(lightos_buffer_fill(b, 0, N * sizeof(int), &zero, sizeof zero));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, b));
  size_t gs = N;
  /* More launches than one completion batch; an event on some of them. */
  lightos_event_t ev[4] = {NULL, NULL, NULL, NULL};
  for (int i = 0; i < LAUNCHES; ++i) {
    lightos_event_t* e = i == 10 ? &ev[0] : i == 40 ? &ev[1] : i == 77 ? &ev[2] : NULL;
    LK_REQUIRE_OK(lightos_enqueue_kernel(D.q, k, 1, &gs, NULL, e));
  }
  LK_REQUIRE_OK(lightos_event_wait(ev[1]));
  LK_CHECK_STATUS(lightos_event_query(ev[0]), LIGHTOS_SUCCESS); /* in order */
  /* A second queue waits for the first one's last command. */
  LK_REQUIRE_OK(lightos_event_record(D.q, &ev[3]));
  lightos_queue_t q2 = NULL;
  LK_REQUIRE_OK(lightos_queue_create(D.ctx, 0, &q2));
  LK_REQUIRE_OK(lightos_queue_wait_event(q2, ev[3]));
  int got[N];
  lightos_event_t rev = NULL;
  LK_REQUIRE_OK(lightos_enqueue_read(q2, b, 0, sizeof got, got, &rev));
  LK_REQUIRE_OK(lightos_event_wait(rev));
  int bad = 0;
  for (int i = 0; i < N; ++i)
    if (got[i] != LAUNCHES && bad++ < 5) lk_test_fail(__FILE__, __LINE__, "inc[%d]: expected %d, got %d", i, LAUNCHES, got[i]);
  LK_CHECK_STATUS(lightos_event_query(ev[2]), LIGHTOS_SUCCESS);
  /* Launches without events complete by themselves (their buffers are
   * released) even without a finish. */
  for (int i = 0; i < 5; ++i) LK_REQUIRE_OK(lightos_enqueue_kernel(D.q, k, 1, &gs, NULL, NULL));
  LK_REQUIRE_OK(lightos_queue_finish(q2));
  LK_REQUIRE_OK(lightos_queue_finish(D.q));
  for (int i = 0; i < 4; ++i) lightos_event_release(ev[i]);
  lightos_event_release(rev);
  lightos_queue_release(q2);
  lightos_buffer_release(b);
  lightos_kernel_release(k);
}

/* A host command (LK_CMD_HOST, used by native library paths) runs in queue
 * order on the queue's host thread; commands its function submits to the
 * same queue (even blocking ones) run at once, before later commands. */
typedef struct {
  int* mapped;
  lightos_buffer_t buf;
  int seen, read_back;
  lightos_status_t st_write, st_read;
} hc_state_t;

static lightos_status_t hc_fn(void* arg) {
  hc_state_t* h = *(hc_state_t**)arg;
  h->seen = h->mapped[5];
  int v = 4242;
  h->st_write = lightos_buffer_write(h->buf, 0, sizeof v, &v);
  h->st_read = lightos_buffer_read(h->buf, 0, sizeof h->read_back, &h->read_back);
  return LIGHTOS_SUCCESS;
}

static void test_dev_host_cmd(void) {
  enum { N = 64 };
  static hc_state_t h;
  memset(&h, 0, sizeof h);
  lightos_buffer_t hv = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(D.ctx, N * sizeof(int), LIGHTOS_BUFFER_HOST_VISIBLE, &hv));
  LK_REQUIRE_OK(lightos_buffer_map(hv, 0, N * sizeof(int), (void**)&h.mapped));
  LK_REQUIRE_OK(lightos_buffer_alloc(D.ctx, N * sizeof(int), 0, &h.buf));
  lightos_kernel_t kf = kern("fill_idx"), ki = kern("inc");
  LK_REQUIRE(kf && ki);
  size_t gs = N;
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(kf, 0, hv));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(kf, 1, 100));
  LK_REQUIRE_OK(lightos_enqueue_kernel(D.q, kf, 1, &gs, NULL, NULL)); /* hv[5] = 110 */
  lk_object_t* oq = NULL;
  LK_REQUIRE_OK(lk_handle_resolve(D.q, LK_OBJ_QUEUE, "queue", &oq));
  lk_cmd_t* c = lk_cmd_new(LK_CMD_HOST);
  hc_state_t** arg = malloc(sizeof *arg);
  LK_REQUIRE(c && arg);
  *arg = &h;
  c->u.host.fn = hc_fn;
  c->u.host.arg = arg;
  lightos_event_t ev = NULL;
  LK_REQUIRE_OK(lk_queue_submit((lk_queue_t*)oq, c, &ev));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(ki, 0, h.buf));
  gs = 1;
  LK_REQUIRE_OK(lightos_enqueue_kernel(D.q, ki, 1, &gs, NULL, NULL)); /* after the host work */
  LK_REQUIRE_OK(lightos_event_wait(ev));
  LK_REQUIRE_OK(lightos_queue_finish(D.q));
  int got = 0;
  LK_REQUIRE_OK(lightos_buffer_read(h.buf, 0, sizeof got, &got));
  LK_CHECK_INT(h.seen, 110);
  LK_CHECK_INT(h.st_write, LIGHTOS_SUCCESS);
  LK_CHECK_INT(h.st_read, LIGHTOS_SUCCESS);
  LK_CHECK_INT(h.read_back, 4242);
  LK_CHECK_INT(got, 4243);
  lightos_event_release(ev);
  LK_REQUIRE_OK(lightos_buffer_unmap(hv, h.mapped));
  lightos_buffer_release(h.buf);
  lightos_buffer_release(hv);
  lightos_kernel_release(kf);
  lightos_kernel_release(ki);
}

static void test_dev_profiling(void) {
  lightos_queue_t pq = NULL;
  LK_REQUIRE_OK(lightos_queue_create(D.ctx, LIGHTOS_QUEUE_PROFILING, &pq));
  lightos_kernel_t k = kern("busy");
  LK_REQUIRE(k);
  enum { N = 1 << 16 };
  lightos_buffer_t b = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(D.ctx, N * sizeof(float), 0, &b));
  float one = 1.0f;
  LK_REQUIRE_OK(lightos_buffer_fill(b, 0, N * sizeof(float), &one, sizeof one));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, b));
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(k, 1, 20000));
  size_t gs = N;
  lightos_event_t a = NULL, z = NULL, kev = NULL;
  LK_REQUIRE_OK(lightos_event_record(pq, &a));
  LK_REQUIRE_OK(lightos_enqueue_kernel(pq, k, 1, &gs, NULL, &kev));
  LK_REQUIRE_OK(lightos_event_record(pq, &z));
  LK_REQUIRE_OK(lightos_event_wait(z));
  double ms = -1.0, kms = -1.0;
  LK_CHECK_STATUS(lightos_event_elapsed_ms(a, z, &ms), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lightos_event_elapsed_ms(kev, kev, &kms), LIGHTOS_SUCCESS);
  printf("%s: profiled kernel %.3f ms (markers around it %.3f ms)\n", D.info.uri, kms, ms);
  LK_CHECK_MSG(kms > 0.0 && ms >= kms * 0.9 && ms < 10000.0, "kernel %.3f ms, markers %.3f ms", kms, ms);
  LK_REQUIRE_OK(lightos_queue_finish(pq));
  lightos_event_release(a);
  lightos_event_release(z);
  lightos_event_release(kev);
  lightos_kernel_release(k);
  lightos_buffer_release(b);
  lightos_queue_release(pq);
}

static void test_dev_dispatch_timing(void) {
  /* Printed for the record (the acceptance numbers are measured by the
   * benchmarks): lightos_enqueue_kernel of an empty kernel against a raw
   * cuLaunchKernel loop, and both round trips. */
  lightos_kernel_t k = kern("empty");
  LK_REQUIRE(k);
  LK_REQUIRE_OK(lightos_kernel_set_arg_i32(k, 0, 0));
  size_t gs = 32, ls = 32;
  enum { ITERS = 20000, RT = 2000 };
  for (int i = 0; i < 100; ++i) LK_REQUIRE_OK(lightos_enqueue_kernel(D.q, k, 1, &gs, &ls, NULL));
  LK_REQUIRE_OK(lightos_queue_finish(D.q));
  uint64_t t0 = lk_now_ns();
  for (int i = 0; i < ITERS; ++i) lightos_enqueue_kernel(D.q, k, 1, &gs, &ls, NULL);
  uint64_t t1 = lk_now_ns();
  LK_REQUIRE_OK(lightos_queue_finish(D.q));
  uint64_t t2 = lk_now_ns();
  for (int i = 0; i < RT; ++i) {
    lightos_enqueue_kernel(D.q, k, 1, &gs, &ls, NULL);
    lightos_queue_finish(D.q);
  }
  uint64_t t3 = lk_now_ns();
  /* The raw loop on the same function. */
  lk_kernel_t* kk = NULL;
  lk_object_t* o = NULL;
  LK_REQUIRE_OK(lk_handle_resolve(k, LK_OBJ_KERNEL, "kernel", &o));
  kk = (lk_kernel_t*)o;
  const lk_cu_kernel_t* ck = kk->hal_kernel;
  const lk_cuda_api_t* api = lk_cuda_api_get(NULL, 0);
  CUstream st = NULL;
  LK_REQUIRE(api->cuStreamCreate(&st, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS);
  int zero = 0;
  lk_cu_range_t range = {{32, 1, 1}, {0, 0, 0}, 1, 0};
  void* params[2] = {&zero, &range};
  uint64_t r0 = lk_now_ns();
  for (int i = 0; i < ITERS; ++i) api->cuLaunchKernel(ck->fn, 1, 1, 1, 32, 1, 1, 0, st, params, NULL);
  uint64_t r1 = lk_now_ns();
  api->cuStreamSynchronize(st);
  uint64_t r2 = lk_now_ns();
  for (int i = 0; i < RT; ++i) {
    api->cuLaunchKernel(ck->fn, 1, 1, 1, 32, 1, 1, 0, st, params, NULL);
    api->cuStreamSynchronize(st);
  }
  uint64_t r3 = lk_now_ns();
  api->cuStreamDestroy_v2(st);
  double lk_us = (double)(t1 - t0) / ITERS / 1e3, raw_us = (double)(r1 - r0) / ITERS / 1e3;
  double lk_rt = (double)(t3 - t2) / RT / 1e3, raw_rt = (double)(r3 - r2) / RT / 1e3;
  printf("%s: dispatch %.3f us/launch (raw cuLaunchKernel %.3f us, ratio %.2f); round trip "
         "%.2f us (raw launch+sync %.2f us, ratio %.2f)\n",
         D.info.uri, lk_us, raw_us, lk_us / raw_us, lk_rt, raw_rt, lk_rt / raw_rt);
  lightos_kernel_release(k);
}

/* Other code on the thread changes the current context behind LightOS's
 * back (no context, another device's): launches still run on this
 * device, in order, with no error. */
static lightos_device_t g_cuda_devs[64];
static uint32_t g_ncuda;

static void test_dev_current_changed(void) {
  enum { N = 256 };
  const lk_cuda_api_t* api = lk_cuda_api_get(NULL, 0);
  lightos_kernel_t k = kern("inc");
  LK_REQUIRE(k && api);
  int zero[N] = {0}, got[N];
  lightos_buffer_t b = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(D.ctx, sizeof zero, 0, &b));
  LK_REQUIRE_OK(lightos_buffer_write(b, 0, sizeof zero, zero));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, b));
  CUcontext others[2] = {NULL, NULL}; /* none current; another device's */
  int nothers = 1;
  lightos_context_t octx = NULL;
  for (uint32_t i = 0; i < g_ncuda && nothers == 1; ++i) {
    if (g_cuda_devs[i] == D.dev || lightos_context_create_for_device(g_cuda_devs[i], 0, &octx))
      continue;
    lk_object_t* o = NULL;
    LK_REQUIRE_OK(lk_handle_resolve(octx, LK_OBJ_CONTEXT, "context", &o));
    others[nothers++] = ((lk_cu_context_t*)((lk_context_t*)o)->hal)->ctx;
  }
  size_t gs = N, ls = 64;
  int want = 0;
  for (int w = 0; w < nothers; ++w) {
    /* The hint: ours. */
    LK_CHECK_STATUS(lightos_enqueue_kernel(D.q, k, 1, &gs, &ls, NULL), LIGHTOS_SUCCESS);
    ++want;
    LK_CHECK(api->cuCtxSetCurrent(others[w]) == CUDA_SUCCESS);
    for (int i = 0; i < 3; ++i, ++want)
      LK_CHECK_STATUS(lightos_enqueue_kernel(D.q, k, 1, &gs, &ls, NULL), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lightos_queue_finish(D.q), LIGHTOS_SUCCESS);
  }
  LK_REQUIRE(read_ints(b, 0, N, got));
  int bad = 0;
  for (int i = 0; i < N; ++i) bad += got[i] != want;
  LK_CHECK_MSG(!bad, "%d of %d items were not incremented %d times (item 0: %d)", bad, N, want,
               got[0]);
  lightos_buffer_release(b);
  lightos_kernel_release(k);
  if (octx) lightos_context_release(octx);
}

static void test_dev_peer(void) {
  uint32_t n = 0, ncuda = 0;
  lightos_device_count(&n);
  lightos_device_t devs[2];
  for (uint32_t i = 0; i < n && ncuda < 2; ++i) {
    lightos_device_t d;
    lightos_device_info_t in;
    if (lightos_device_get(i, &d) || lightos_device_get_info(d, &in)) continue;
    if (in.backend == LIGHTOS_BACKEND_CUDA) devs[ncuda++] = d;
  }
  if (ncuda < 2) {
    lk_test_skip("peer access needs two CUDA devices (%u here)", ncuda);
    return;
  }
  lightos_context_t c[2] = {NULL, NULL};
  LK_REQUIRE_OK(lightos_context_create_for_device(devs[0], 0, &c[0]));
  LK_REQUIRE_OK(lightos_context_create_for_device(devs[1], 0, &c[1]));
  lk_object_t *o0 = NULL, *o1 = NULL;
  LK_REQUIRE_OK(lk_handle_resolve(c[0], LK_OBJ_CONTEXT, "c0", &o0));
  LK_REQUIRE_OK(lk_handle_resolve(c[1], LK_OBJ_CONTEXT, "c1", &o1));
  lk_hal_context_t* h0 = ((lk_context_t*)o0)->hal;
  lk_hal_context_t* h1 = ((lk_context_t*)o1)->hal;
  bool can01 = false, can10 = false;
  LK_CHECK_STATUS(lk_cuda_peer_access(h0, h1, false, &can01), LIGHTOS_SUCCESS);
  LK_CHECK_STATUS(lk_cuda_peer_access(h1, h0, false, &can10), LIGHTOS_SUCCESS);
  printf("peer access: 0->1 %s, 1->0 %s\n", can01 ? "yes" : "no", can10 ? "yes" : "no");
  if (can01) {
    LK_CHECK_STATUS(lk_cuda_peer_access(h0, h1, true, &can01), LIGHTOS_SUCCESS);
    LK_CHECK_STATUS(lk_cuda_peer_access(h0, h1, true, &can01), LIGHTOS_SUCCESS); /* twice */
    /* A peer copy through the helper. */
    lightos_buffer_t a = NULL, b = NULL;
    int v[64], got[64];
    for (int i = 0; i < 64; ++i) v[i] = i * 11 - 3;
    LK_REQUIRE_OK(lightos_buffer_alloc(c[0], sizeof v, 0, &a));
    LK_REQUIRE_OK(lightos_buffer_alloc(c[1], sizeof v, 0, &b));
    LK_REQUIRE_OK(lightos_buffer_write(b, 0, sizeof v, v));
    lk_object_t *oa = NULL, *ob = NULL, *oq = NULL;
    lightos_queue_t q0 = NULL;
    LK_REQUIRE_OK(lightos_context_default_queue(c[0], &q0));
    LK_REQUIRE_OK(lk_handle_resolve(a, LK_OBJ_BUFFER, "a", &oa));
    LK_REQUIRE_OK(lk_handle_resolve(b, LK_OBJ_BUFFER, "b", &ob));
    LK_REQUIRE_OK(lk_handle_resolve(q0, LK_OBJ_QUEUE, "q0", &oq));
    LK_CHECK_STATUS(lk_cuda_copy_peer(((lk_queue_t*)oq)->hal, h0, &((lk_buffer_t*)oa)->mem, 0, h1,
                                      &((lk_buffer_t*)ob)->mem, 0, sizeof v),
                    LIGHTOS_SUCCESS);
    LK_REQUIRE_OK(lightos_queue_finish(q0));
    LK_REQUIRE_OK(lightos_buffer_read(a, 0, sizeof got, got));
    LK_CHECK(memcmp(v, got, sizeof v) == 0);
    lightos_buffer_release(a);
    lightos_buffer_release(b);
  }
  lightos_context_release(c[1]);
  lightos_context_release(c[0]);
}

/* Last: a kernel writes far outside its buffer.  The context is lost
 * (sticky CUDA error) and says so; its own context goes with it. */
static void test_dev_lost(void) {
  lightos_context_t c = NULL;
  LK_REQUIRE_OK(lightos_context_create_for_device(D.dev, 0, &c));
  lightos_program_t p = NULL;
  LK_REQUIRE_OK(lightos_program_create(c, k_dev_src, 0, &p));
  LK_REQUIRE_OK(lightos_program_build(p, NULL));
  lightos_kernel_t k = NULL;
  LK_REQUIRE_OK(lightos_kernel_create(p, "bad", &k));
  lightos_buffer_t b = NULL;
  LK_REQUIRE_OK(lightos_buffer_alloc(c, 4096, 0, &b));
  lightos_queue_t q = NULL;
  LK_REQUIRE_OK(lightos_context_default_queue(c, &q));
  LK_REQUIRE_OK(lightos_kernel_set_arg_buffer(k, 0, b));
  LK_REQUIRE_OK(lightos_kernel_set_arg_u64(k, 1, (uint64_t)1 << 40));
  size_t gs = 1;
  lightos_status_t s = lightos_enqueue_kernel(q, k, 1, &gs, NULL, NULL);
  if (s == LIGHTOS_SUCCESS) s = lightos_queue_finish(q);
  const lightos_error_info_t* e = lightos_last_error();
  printf("%s: out-of-bounds kernel: %s (%s, %lld): %s\n", D.info.uri, lightos_status_string(s),
         e->native_name, (long long)e->native_code, e->message);
  LK_CHECK_INT(s, LIGHTOS_DEVICE_LOST);
  LK_CHECK_MSG(strstr(e->native_name, "CUDA_ERROR_") != NULL, "native_name \"%s\"", e->native_name);
  LK_CHECK_STATUS(lightos_enqueue_kernel(q, k, 1, &gs, NULL, NULL), LIGHTOS_DEVICE_LOST);
  lightos_buffer_release(b);
  lightos_kernel_release(k);
  lightos_program_release(p);
  lightos_context_release(c);
}

#define RUN_DEV(fn)                                        \
  do {                                                     \
    snprintf(name, sizeof name, "%s/%s", D.info.uri, #fn); \
    LK_RUN_NAMED(name, fn());                              \
  } while (0)

static void run_device(lightos_device_t dev) {
  memset(&D, 0, sizeof D);
  D.dev = dev;
  if (lightos_device_get_info(dev, &D.info) || lightos_context_create_for_device(dev, 0, &D.ctx) ||
      lightos_context_default_queue(D.ctx, &D.q) ||
      lightos_program_create(D.ctx, k_dev_src, 0, &D.prog)) {
    fprintf(stderr, "FAIL setup of %s: %s\n", D.info.uri, lightos_last_error()->message);
    lk_t.failed++;
    return;
  }
  if (lightos_program_build(D.prog, NULL)) {
    char log[8192] = "";
    lightos_program_build_log(D.prog, log, sizeof log, NULL);
    fprintf(stderr, "FAIL build on %s: %s\n%s\n", D.info.uri, lightos_last_error()->message, log);
    lk_t.failed++;
    lightos_program_release(D.prog);
    lightos_context_release(D.ctx);
    return;
  }
  char name[128];
  RUN_DEV(test_dev_properties);
  RUN_DEV(test_dev_build);
  RUN_DEV(test_dev_kernels);
  RUN_DEV(test_dev_big_grid);
  RUN_DEV(test_dev_host_visible);
  RUN_DEV(test_dev_events);
  RUN_DEV(test_dev_host_cmd);
  RUN_DEV(test_dev_profiling);
  RUN_DEV(test_dev_dispatch_timing);
  RUN_DEV(test_dev_current_changed);
  lightos_program_release(D.prog);
  lightos_context_release(D.ctx);
}

static void run_lost(lightos_device_t dev) {
  memset(&D, 0, sizeof D);
  D.dev = dev;
  if (lightos_device_get_info(dev, &D.info)) return;
  char name[128];
  RUN_DEV(test_dev_lost);
}

int main(void) {
  lk_t.program = "test_cuda_backend";
  alarm(300);
  LK_RUN(test_backend_listed);
  LK_RUN(test_codegen);
  LK_RUN(test_nvrtc_compile);
  uint32_t n = 0, ncuda = 0;
  lightos_device_t cuda[64];
  lightos_device_count(&n);
  for (uint32_t i = 0; i < n && ncuda < 64; ++i) {
    lightos_device_t d;
    lightos_device_info_t in;
    if (lightos_device_get(i, &d) || lightos_device_get_info(d, &in)) continue;
    if (in.backend == LIGHTOS_BACKEND_CUDA) cuda[ncuda++] = d;
  }
  memcpy(g_cuda_devs, cuda, ncuda * sizeof *cuda);
  g_ncuda = ncuda;
  for (uint32_t i = 0; i < ncuda; ++i) run_device(cuda[i]);
  if (ncuda) {
    LK_RUN(test_dev_peer);
    /* Last: one device's context is lost on purpose.  Only one: after an
     * illegal address the driver may refuse new contexts on the process's
     * other devices too (seen with two H200s: cuDevicePrimaryCtxRetain
     * fails for cuda:1 after cuda:0's fault). */
    run_lost(cuda[ncuda - 1]);
  } else {
    lk_test_begin("cuda devices");
    lk_test_skip("no CUDA device: %s", g_cuda_found ? g_cuda.reason : "backend not listed");
    lk_test_end();
  }
  return lk_test_finish();
}
