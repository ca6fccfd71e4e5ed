/* Tests for the CPU code generator and the CPU prelude.
 *
 * Each test parses a kernel program (lk_kparse), generates the C
 * translation unit (lk_cpu_codegen with lk_prelude_cpu), compiles it into a
 * shared object with the system C compiler(s), dlopens it and runs the
 * entry points directly per src/hal/cpu/cpu_abi.h on this thread, checking
 * the results exactly.  Every compiler found among "cc" and "clang" (or the
 * space-separated list in $LK_TEST_CC) is used in turn; with none the
 * compiling tests are skipped.  A failed compile leaves the translation unit
 * and the compiler log in a temporary directory and names them.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <float.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lk_test.h"
#include "hal/cpu/cpu_abi.h"
#include "kernels/cpu_codegen.h"
#include "kernels/kparse.h"
#include "kernels/preludes.h"

#define KFLAGS                                                                   \
  "-std=c11 -O3 -Wall -Wextra -Werror -fno-fast-math -ffp-contract=off "         \
  "-fno-math-errno -fwrapv -fsigned-char -fvisibility=hidden -fPIC -shared"

static char g_dir[256];       /* temporary directory for TUs and objects */
static const char* g_cc = ""; /* compiler in use */
static int g_serial;

/* ---- Building ------------------------------------------------------------ */

typedef struct prog {
  void* so;
  char c_path[512], so_path[512], log_path[512];
} prog_t;

static int write_file(const char* path, const char* data, size_t n) {
  FILE* f = fopen(path, "wb");
  size_t w;
  if (!f) return -1;
  w = fwrite(data, 1, n, f);
  if (fclose(f) != 0 || w != n) return -1;
  return 0;
}

static char* read_file(const char* path, size_t max) {
  FILE* f = fopen(path, "rb");
  char* buf;
  size_t n;
  if (!f) return NULL;
  buf = (char*)malloc(max + 1);
  if (!buf) {
    fclose(f);
    return NULL;
  }
  n = fread(buf, 1, max, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* Parses and generates; returns the malloc'ed TU or NULL (failure recorded). */
static char* generate(const char* src, int line) {
  lk_kparse_result_t pr;
  char err[512];
  char* tu = NULL;
  size_t tul = 0;
  if (lk_kparse(src, strlen(src), &pr, err, sizeof err) != 0) {
    lk_test_fail(__FILE__, line, "lk_kparse failed: %s", err);
    return NULL;
  }
  if (lk_cpu_codegen(src, strlen(src), &pr, lk_prelude_cpu, &tu, &tul, err, sizeof err) != 0) {
    lk_test_fail(__FILE__, line, "lk_cpu_codegen failed: %s", err);
    lk_kparse_free(&pr);
    return NULL;
  }
  lk_kparse_free(&pr);
  if (strlen(tu) != tul) lk_test_fail(__FILE__, line, "out_len %zu != strlen %zu", tul, strlen(tu));
  return tu;
}

/* Compiles `tu` with g_cc; returns the exit status of the compiler. */
static int compile_tu(const char* tu, prog_t* p, const char* tag) {
  char cmd[2048];
  int serial = ++g_serial;
  snprintf(p->c_path, sizeof p->c_path, "%s/%s_%d.c", g_dir, tag, serial);
  snprintf(p->so_path, sizeof p->so_path, "%s/%s_%d.so", g_dir, tag, serial);
  snprintf(p->log_path, sizeof p->log_path, "%s/%s_%d.log", g_dir, tag, serial);
  if (write_file(p->c_path, tu, strlen(tu)) != 0) return -1;
  snprintf(cmd, sizeof cmd, "%s " KFLAGS " -o '%s' '%s' -lm > '%s' 2>&1", g_cc, p->so_path,
           p->c_path, p->log_path);
  return system(cmd);
}

static void cleanup(prog_t* p) {
  if (p->so) dlclose(p->so);
  p->so = NULL;
  remove(p->c_path);
  remove(p->so_path);
  remove(p->log_path);
}

/* Full pipeline; 1 on success (p->so loaded), 0 with the failure recorded. */
static int build_at(const char* src, prog_t* p, const char* tag, int line) {
  char* tu;
  int rc;
  const unsigned* ver;
  memset(p, 0, sizeof *p);
  tu = generate(src, line);
  if (!tu) return 0;
  rc = compile_tu(tu, p, tag);
  free(tu);
  if (rc != 0) {
    char* log = read_file(p->log_path, 4000);
    lk_test_fail(__FILE__, line, "%s failed to compile the generated TU %s (log %s):\n%s", g_cc,
                 p->c_path, p->log_path, log ? log : "(no log)");
    free(log);
    return 0;
  }
  p->so = dlopen(p->so_path, RTLD_NOW | RTLD_LOCAL);
  if (!p->so) {
    lk_test_fail(__FILE__, line, "dlopen(%s): %s (TU %s)", p->so_path, dlerror(), p->c_path);
    return 0;
  }
  ver = (const unsigned*)dlsym(p->so, "lk_abi_version");
  if (!ver || *ver != LK_CPU_ABI_VERSION) {
    lk_test_fail(__FILE__, line, "lk_abi_version missing or wrong in %s", p->so_path);
    return 0;
  }
  return 1;
}
#define BUILD(src, p, tag) build_at((src), (p), (tag), __LINE__)

static lk_cpu_entry_fn entry_at(prog_t* p, const char* kernel, int line) {
  char name[200];
  void* sym;
  lk_cpu_entry_fn fn = NULL;
  snprintf(name, sizeof name, "lk_entry_%s", kernel);
  sym = dlsym(p->so, name);
  if (!sym) {
    lk_test_fail(__FILE__, line, "%s not exported by %s", name, p->so_path);
    return NULL;
  }
  memcpy(&fn, &sym, sizeof fn);
  return fn;
}
#define ENTRY(p, k) entry_at((p), (k), __LINE__)

/* ---- Launching ------------------------------------------------------------ */

typedef struct args {
  void* ptrs[32];
  size_t offs[32];
  void* argv[32];
} args_t;
#define ARG_BUF(A, i, p) ((A).ptrs[i] = (void*)(p), (A).argv[i] = &(A).ptrs[i])
#define ARG_VAL(A, i, v) ((A).argv[i] = (void*)&(v))
#define ARG_LOCAL(A, i, off) ((A).offs[i] = (off), (A).argv[i] = &(A).offs[i])

/* Runs the whole range on this thread: in one call (chunk 0) or in calls of
 * `chunk` groups each (exercising group_begin > 0). */
static void launch(lk_cpu_entry_fn fn, uint32_t dim, const size_t* gsz, const size_t* lsz,
                   const size_t* off, args_t* a, size_t local_bytes, size_t chunk) {
  lk_cpu_launch_t L;
  size_t d, total, g;
  void* arena = NULL;
  if (!fn) return;
  memset(&L, 0, sizeof L);
  L.work_dim = dim;
  for (d = 0; d < 3; d++) {
    L.global_size[d] = d < dim ? gsz[d] : 1;
    L.local_size[d] = d < dim ? lsz[d] : 1;
    L.global_offset[d] = (off && d < dim) ? off[d] : 0;
    L.num_groups[d] = (L.global_size[d] + L.local_size[d] - 1) / L.local_size[d];
  }
  L.args = (void* const*)a->argv;
  total = L.num_groups[0] * L.num_groups[1] * L.num_groups[2];
  if (local_bytes) {
    arena = aligned_alloc(64, (local_bytes + 63) / 64 * 64);
    if (!arena) return;
    memset(arena, 0xA5, (local_bytes + 63) / 64 * 64);
  }
  if (chunk == 0) {
    fn(&L, 0, total, arena);
  } else {
    for (g = 0; g < total; g += chunk) fn(&L, g, g + chunk < total ? g + chunk : total, arena);
  }
  free(arena);
}

/* ---- Kernels ---------------------------------------------------------------- */

static const char* k_saxpy =
    "/* y = a*x + y */\n"
    "__kernel void saxpy(__global float* restrict y, __global const float* restrict x,\n"
    "                    const float a, uint n)\n"
    "{\n"
    "  size_t i = get_global_id(0);\n"
    "  if (i >= n) return;\n"
    "  y[i] = a * x[i] + y[i];\n"
    "}\n";

static void test_saxpy(void) {
  prog_t p;
  lk_cpu_entry_fn fn;
  enum { N = 1000 };
  static float x[N], y[N], want[N];
  float a = 1.75f;
  uint32_t n;
  size_t gsz, lsz = 64, i;
  args_t A;
  int pass;
  if (!BUILD(k_saxpy, &p, "saxpy")) return;
  fn = ENTRY(&p, "saxpy");
  for (pass = 0; pass < 3; pass++) {
    /* pass 0: n = global = 1000 (last group partial); 1: n = 990 < global
     * (early return); 2: as 0 but in chunks of 3 groups. */
    n = pass == 1 ? 990 : N;
    gsz = N;
    for (i = 0; i < N; i++) {
      volatile float prod;
      x[i] = (float)i * 0.37f - 11.0f;
      y[i] = (float)(N - i) * 1.3f;
      prod = a * x[i];
      want[i] = i < n ? prod + y[i] : y[i];
    }
    memset(&A, 0, sizeof A);
    ARG_BUF(A, 0, y);
    ARG_BUF(A, 1, x);
    ARG_VAL(A, 2, a);
    ARG_VAL(A, 3, n);
    launch(fn, 1, &gsz, &lsz, NULL, &A, 0, pass == 2 ? 3 : 0);
    for (i = 0; i < N; i++)
      if (memcmp(&y[i], &want[i], sizeof(float)) != 0) {
        lk_test_fail(__FILE__, __LINE__, "pass %d: y[%zu] = %.9g, want %.9g", pass, i, y[i],
                     want[i]);
        break;
      }
  }
  cleanup(&p);
}

static const char* k_ids =
    "__kernel void ids2d(__global int* out, int w) {\n"
    "  size_t x = get_global_id(0), y = get_global_id(1);\n"
    "  __global int* o = out + (y * w + x) * 12;\n"
    "  o[0] = (int)x; o[1] = (int)y;\n"
    "  o[2] = (int)get_local_id(0); o[3] = (int)get_local_id(1);\n"
    "  o[4] = (int)get_group_id(0); o[5] = (int)get_group_id(1);\n"
    "  o[6] = (int)get_local_size(0); o[7] = (int)get_local_size(1);\n"
    "  o[8] = (int)(get_num_groups(0) * 100 + get_num_groups(1));\n"
    "  o[9] = (int)get_work_dim();\n"
    "  o[10] = (int)(get_global_size(0) * 1000 + get_global_size(1));\n"
    "  o[11] += 1;\n"
    "}\n"
    "__kernel void ids3d(__global int* out, volatile __global int* bad) {\n"
    "  size_t x = get_global_id(0) - get_global_offset(0);\n"
    "  size_t y = get_global_id(1) - get_global_offset(1);\n"
    "  size_t z = get_global_id(2) - get_global_offset(2);\n"
    "  size_t idx = (z * get_global_size(1) + y) * get_global_size(0) + x;\n"
    "  int d = -1;\n"
    "  out[idx * 4 + 0] += 1;\n"
    "  out[idx * 4 + 1] = (int)(get_local_id(0) + 10 * get_local_id(1) + 100 * get_local_id(2));\n"
    "  out[idx * 4 + 2] = (int)(get_group_id(0) + 10 * get_group_id(1) + 100 * get_group_id(2));\n"
    "  out[idx * 4 + 3] = (int)(get_local_size(0) + 10 * get_local_size(1) + 100 * get_local_size(2));\n"
    "  if (get_global_id(3) != 0 || get_local_id(7) != 0 || get_group_id(3) != 0 ||\n"
    "      get_global_offset(3) != 0 || get_local_size(3) != 1 || get_global_size(3) != 1 ||\n"
    "      get_num_groups(3) != 1 || get_enqueued_local_size(3) != 1 || get_work_dim() != 3 ||\n"
    "      get_global_id(d) != 0 || get_local_size(d) != 1)\n"
    "    atomic_inc(bad);\n"
    "  if (get_enqueued_local_size(0) != 2 || get_global_offset(2) != 3) atomic_inc(bad + 1);\n"
    "}\n"
    "/* a private value in a kernel without item blocks is one variable */\n"
    "__kernel void privitem(__global int* out) {\n"
    "  LIGHTOS_PRIVATE(int, t);\n"
    "  LIGHTOS_P(t) = (int)get_global_id(0) * 2;\n"
    "  out[get_global_id(0)] = LIGHTOS_P(t) + (int)sizeof(t);\n"
    "}\n";

static void test_ids_2d_3d(void) {
  prog_t p;
  lk_cpu_entry_fn f2, f3;
  enum { W = 37, H = 23 };
  static int out[W * H * 12];
  static int out3[5 * 7 * 3 * 4];
  int bad[2] = {0, 0};
  int w = W;
  size_t g2[2] = {W, H}, l2[2] = {8, 4};
  size_t g3[3] = {5, 7, 3}, l3[3] = {2, 3, 2}, o3[3] = {1, 2, 3};
  size_t x, y, z;
  args_t A;
  int chunked;
  if (!BUILD(k_ids, &p, "ids")) return;
  f2 = ENTRY(&p, "ids2d");
  f3 = ENTRY(&p, "ids3d");
  for (chunked = 0; chunked < 2; chunked++) {
    memset(out, 0, sizeof out);
    memset(&A, 0, sizeof A);
    ARG_BUF(A, 0, out);
    ARG_VAL(A, 1, w);
    launch(f2, 2, g2, l2, NULL, &A, 0, chunked ? 7 : 0);
    for (y = 0; y < H; y++)
      for (x = 0; x < W; x++) {
        const int* o = out + (y * W + x) * 12;
        int want[12];
        int k;
        want[0] = (int)x; want[1] = (int)y;
        want[2] = (int)(x % 8); want[3] = (int)(y % 4);
        want[4] = (int)(x / 8); want[5] = (int)(y / 4);
        want[6] = x / 8 == 4 ? 5 : 8; /* 37 = 4*8 + 5 */
        want[7] = y / 4 == 5 ? 3 : 4; /* 23 = 5*4 + 3 */
        want[8] = 5 * 100 + 6;
        want[9] = 2;
        want[10] = W * 1000 + H;
        want[11] = 1;
        for (k = 0; k < 12; k++)
          if (o[k] != want[k]) {
            lk_test_fail(__FILE__, __LINE__, "ids2d item (%zu,%zu) field %d: %d, want %d", x, y,
                         k, o[k], want[k]);
            goto next2;
          }
      }
  next2:;
  }
  memset(&A, 0, sizeof A);
  memset(out3, 0, sizeof out3);
  ARG_BUF(A, 0, out3);
  ARG_BUF(A, 1, bad);
  launch(f3, 3, g3, l3, o3, &A, 0, 0);
  LK_CHECK_INT(bad[0], 0);
  LK_CHECK_INT(bad[1], 0);
  {
    lk_cpu_entry_fn fpi = ENTRY(&p, "privitem");
    size_t gp = 50, lp = 16, k;
    memset(&A, 0, sizeof A);
    ARG_BUF(A, 0, out);
    launch(fpi, 1, &gp, &lp, NULL, &A, 0, 0);
    for (k = 0; k < gp; k++) LK_CHECK_INT(out[k], 2 * (int)k + 4);
  }
  for (z = 0; z < 3; z++)
    for (y = 0; y < 7; y++)
      for (x = 0; x < 5; x++) {
        const int* o = out3 + ((z * 7 + y) * 5 + x) * 4;
        size_t lsx = x / 2 == 2 ? 1 : 2, lsy = y / 3 == 2 ? 1 : 3, lsz = z / 2 == 1 ? 1 : 2;
        if (o[0] != 1 || o[1] != (int)(x % 2 + 10 * (y % 3) + 100 * (z % 2)) ||
            o[2] != (int)(x / 2 + 10 * (y / 3) + 100 * (z / 2)) ||
            o[3] != (int)(lsx + 10 * lsy + 100 * lsz)) {
          lk_test_fail(__FILE__, __LINE__, "ids3d item (%zu,%zu,%zu): %d %d %d %d", x, y, z, o[0],
                       o[1], o[2], o[3]);
          return;
        }
      }
  cleanup(&p);
}

static const char* k_reduce =
    "#define WG 64\n"
    "__kernel void reduce(__global const float* in, __global float* out,\n"
    "                     __global float* twice, uint n) {\n"
    "  __local float tile[WG];\n"
    "  LIGHTOS_PRIVATE(float, v);\n"
    "  LIGHTOS_ITEMS {\n"
    "    size_t i = get_global_id(0);\n"
    "    LIGHTOS_P(v) = i < n ? in[i] : 0.0f;\n"
    "    tile[get_local_id(0)] = LIGHTOS_P(v);\n"
    "  }\n"
    "  for (uint l = (uint)get_local_size(0); l < WG; ++l) tile[l] = 0.0f;\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  for (uint s = WG / 2; s > 0; s >>= 1) {\n"
    "    LIGHTOS_ITEMS {\n"
    "      uint l = (uint)get_local_id(0);\n"
    "      if (l >= s) continue;\n"
    "      tile[l] += tile[l + s];\n"
    "    }\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  }\n"
    "  LIGHTOS_ITEMS {\n"
    "    if (get_global_id(0) < n) twice[get_global_id(0)] = 2.0f * LIGHTOS_P(v);\n"
    "    if (get_local_id(0) != 0) continue;\n"
    "    out[get_group_id(0)] = tile[0];\n"
    "  }\n"
    "}\n"
    "/* break leaves the block for the current item only */\n"
    "__kernel void brk(__global int* out) {\n"
    "  LIGHTOS_ITEMS {\n"
    "    if (get_local_id(0) % 2) break;\n"
    "    out[get_global_id(0)] = 1;\n"
    "  }\n"
    "}\n"
    "/* atomics on __local memory */\n"
    "__kernel void lcount(__global int* out) {\n"
    "  __local int cnt;\n"
    "  cnt = 0;\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  LIGHTOS_ITEMS { atomic_inc(&cnt); mem_fence(CLK_LOCAL_MEM_FENCE); }\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  LIGHTOS_ITEMS { if (get_local_id(0) == 0) out[get_group_id(0)] = cnt; }\n"
    "}\n"
    "/* per-item values across barriers in a 2-D, partial group */\n"
    "__kernel void priv2d(__global int* out, int w) {\n"
    "  LIGHTOS_PRIVATE(int, acc);\n"
    "  LIGHTOS_ITEMS { LIGHTOS_P(acc) = 0; }\n"
    "  for (int r = 0; r < 3; ++r) {\n"
    "    LIGHTOS_ITEMS { LIGHTOS_P(acc) += (int)(get_local_id(0) + 10 * get_local_id(1)); }\n"
    "    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);\n"
    "  }\n"
    "  LIGHTOS_ITEMS {\n"
    "    out[get_global_id(1) * w + get_global_id(0)] = LIGHTOS_P(acc) * 1000 +\n"
    "        (int)(get_local_size(0) * get_local_size(1));\n"
    "  }\n"
    "}\n";

static void test_reduce_items(void) {
  prog_t p;
  lk_cpu_entry_fn fr, fb, fp;
  enum { N = 1000, G = 16 };
  static float in[N], out[G], twice[N];
  static int bo[N], po[13 * 7];
  uint32_t n = N;
  int w = 13;
  size_t gsz = N, lsz = 64, g2[2] = {13, 7}, l2[2] = {4, 4};
  size_t i, g, x, y;
  args_t A;
  if (!BUILD(k_reduce, &p, "reduce")) return;
  fr = ENTRY(&p, "reduce");
  fb = ENTRY(&p, "brk");
  fp = ENTRY(&p, "priv2d");
  for (i = 0; i < N; i++) in[i] = (float)(i % 17);
  memset(&A, 0, sizeof A);
  ARG_BUF(A, 0, in);
  ARG_BUF(A, 1, out);
  ARG_BUF(A, 2, twice);
  ARG_VAL(A, 3, n);
  launch(fr, 1, &gsz, &lsz, NULL, &A, 0, 0);
  for (g = 0; g < G; g++) {
    float want = 0.0f;
    for (i = g * 64; i < (g + 1) * 64 && i < N; i++) want += in[i];
    if (out[g] != want) lk_test_fail(__FILE__, __LINE__, "group %zu: sum %g, want %g", g, out[g], want);
  }
  for (i = 0; i < N; i++)
    if (twice[i] != 2.0f * in[i]) {
      lk_test_fail(__FILE__, __LINE__, "twice[%zu] = %g", i, twice[i]);
      break;
    }

  memset(&A, 0, sizeof A);
  memset(bo, 0, sizeof bo);
  ARG_BUF(A, 0, bo);
  gsz = 101;
  lsz = 10;
  launch(fb, 1, &gsz, &lsz, NULL, &A, 0, 4);
  for (i = 0; i < N; i++) {
    int want = i < 101 && (i % 10) % 2 == 0;
    if (bo[i] != want) {
      lk_test_fail(__FILE__, __LINE__, "brk out[%zu] = %d, want %d", i, bo[i], want);
      break;
    }
  }

  {
    lk_cpu_entry_fn fl = ENTRY(&p, "lcount");
    static int lc[4];
    memset(&A, 0, sizeof A);
    ARG_BUF(A, 0, lc);
    gsz = 70;
    lsz = 20;
    launch(fl, 1, &gsz, &lsz, NULL, &A, 0, 0);
    LK_CHECK(lc[0] == 20 && lc[1] == 20 && lc[2] == 20 && lc[3] == 10);
  }
  memset(&A, 0, sizeof A);
  ARG_BUF(A, 0, po);
  ARG_VAL(A, 1, w);
  launch(fp, 2, g2, l2, NULL, &A, 0, 0);
  for (y = 0; y < 7; y++)
    for (x = 0; x < 13; x++) {
      int nx = x >= 12 ? 1 : 4, ny = y >= 4 ? 3 : 4;
      int want = 3 * (int)(x % 4 + 10 * (y % 4)) * 1000 + nx * ny;
      if (po[y * 13 + x] != want) {
        lk_test_fail(__FILE__, __LINE__, "priv2d (%zu,%zu) = %d, want %d", x, y, po[y * 13 + x],
                     want);
        goto done;
      }
    }
done:
  cleanup(&p);
}

static const char* k_localptr =
    "__kernel void lp(__global int* out, __local int* a, __local float* b, int k) {\n"
    "  LIGHTOS_ITEMS {\n"
    "    uint l = (uint)get_local_id(0);\n"
    "    a[l] = (int)l * k;\n"
    "    b[l] = (float)l;\n"
    "  }\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  LIGHTOS_ITEMS {\n"
    "    uint l = (uint)get_local_id(0), n = (uint)get_local_size(0);\n"
    "    out[get_global_id(0)] = a[n - 1 - l] + (int)b[n - 1 - l];\n"
    "  }\n"
    "}\n";

static void test_local_ptr_args(void) {
  prog_t p;
  lk_cpu_entry_fn fn;
  static int out[100];
  int k = 7;
  size_t gsz = 100, lsz = 32, i;
  args_t A;
  if (!BUILD(k_localptr, &p, "localptr")) return;
  fn = ENTRY(&p, "lp");
  memset(&A, 0, sizeof A);
  ARG_BUF(A, 0, out);
  ARG_LOCAL(A, 1, 0);   /* 32 ints = 128 bytes */
  ARG_LOCAL(A, 2, 128); /* 32 floats */
  ARG_VAL(A, 3, k);
  launch(fn, 1, &gsz, &lsz, NULL, &A, 256, 1);
  for (i = 0; i < 100; i++) {
    size_t n = i >= 96 ? 4 : 32, l = i % 32;
    int want = (int)(n - 1 - l) * k + (int)(n - 1 - l);
    if (out[i] != want) {
      lk_test_fail(__FILE__, __LINE__, "out[%zu] = %d, want %d", i, out[i], want);
      break;
    }
  }
  cleanup(&p);
}

static const char* k_helpers =
    "// a comment mentioning __kernel void fake(int x) {}\n"
    "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
    "#define SCALE 3\n"
    "__constant float table[4] = {1.0f, 2.0f, 4.0f, 8.0f};\n"
    "__constant char text[] = \"__kernel void nope() { }\";\n"
    "static float sq(float x) { return x * x; }\n"
    "inline int twice(int x) { return 2 * x; }\n"
    "float addf(float a, float b) { return a + b; }\n"
    "__kernel void proto(__global float* out);\n"
    "__kernel __attribute__((reqd_work_group_size(16, 1, 1)))\n"
    "void helpers(__global float* out, __constant float* tab, __constant const float* tab2)\n"
    "{\n"
    "  size_t i = get_global_id(0);\n"
    "#pragma unroll\n"
    "  for (int r = 0; r < 1; ++r)\n"
    "    out[i] = addf(sq((float)i), table[i % 4]) + (float)twice(SCALE) + tab[i % 4] +\n"
    "             tab2[0] + (float)(text[0] == '_');\n"
    "}\n"
    "float after(float x) { return x + 1.0f; }\n"
    "kernel void uses_after(global float* out, int unused_param) { out[get_global_id(0)] = after(1.0f); }\n"
    "__kernel void no_args(void) { }\n"
    "#if 0\n"
    "__kernel void disabled(__global float* out) { out[0] = not_compiled; }\n"
    "#endif\n"
    "__kernel void a1(__global int* o) { o[0] = 1; } __kernel void a2(__global int* o) { o[0] = 2; }\n"
    "__constant int last_line = 1; /* ends in a line splice, without a newline */ \\";

static void test_helpers(void) {
  prog_t p;
  lk_cpu_entry_fn fh, fa, fn;
  static float out[40], tab[4] = {10.0f, 20.0f, 30.0f, 40.0f};
  static const float tab2[1] = {0.5f};
  static const float table[4] = {1.0f, 2.0f, 4.0f, 8.0f};
  size_t gsz = 40, lsz = 16, i;
  int unused = 0;
  args_t A;
  if (!BUILD(k_helpers, &p, "helpers")) return;
  fh = ENTRY(&p, "helpers");
  fa = ENTRY(&p, "uses_after");
  fn = ENTRY(&p, "no_args");
  LK_CHECK(dlsym(p.so, "lk_entry_proto") == NULL);
  LK_CHECK(dlsym(p.so, "lk_entry_disabled") == NULL);
  {
    int o = 0;
    size_t one = 1;
    memset(&A, 0, sizeof A);
    ARG_BUF(A, 0, &o);
    launch(ENTRY(&p, "a2"), 1, &one, &one, NULL, &A, 0, 0);
    LK_CHECK_INT(o, 2);
    launch(ENTRY(&p, "a1"), 1, &one, &one, NULL, &A, 0, 0);
    LK_CHECK_INT(o, 1);
  }
  memset(&A, 0, sizeof A);
  ARG_BUF(A, 0, out);
  ARG_BUF(A, 1, tab);
  ARG_BUF(A, 2, tab2);
  launch(fh, 1, &gsz, &lsz, NULL, &A, 0, 0);
  for (i = 0; i < 40; i++) {
    float want = ((float)i * (float)i + table[i % 4]) + 6.0f + tab[i % 4] + 0.5f + 1.0f;
    if (out[i] != want) {
      lk_test_fail(__FILE__, __LINE__, "helpers out[%zu] = %g, want %g", i, out[i], want);
      break;
    }
  }
  memset(&A, 0, sizeof A);
  ARG_BUF(A, 0, out);
  ARG_VAL(A, 1, unused);
  gsz = 5;
  launch(fa, 1, &gsz, &lsz, NULL, &A, 0, 0);
  for (i = 0; i < 5; i++) LK_CHECK(out[i] == 2.0f);
  memset(&A, 0, sizeof A);
  launch(fn, 1, &gsz, &lsz, NULL, &A, 0, 0);
  cleanup(&p);
}

static const char* k_scalars =
    "__kernel void scalars(__global long* out, __global double* outd, char c, uchar uc,\n"
    "                      short s, ushort us, int i, uint ui, long l, ulong ul, float f,\n"
    "                      double d, size_t z, bool b, bool b2, unsigned int ui2,\n"
    "                      const int ci, unsigned long long ull) {\n"
    "  if (get_global_id(0) != 0) return;\n"
    "  out[0] = c; out[1] = uc; out[2] = s; out[3] = us; out[4] = i; out[5] = ui;\n"
    "  out[6] = l; out[7] = (long)ul; out[8] = (long)z; out[9] = b ? 1 : 0;\n"
    "  out[10] = b2 ? 1 : 0; out[11] = ui2; out[12] = ci; out[13] = (long)ull;\n"
    "  out[14] = (long)sizeof(c) * 100 + (long)sizeof(s) * 10 + (long)sizeof(l);\n"
    "  outd[0] = f; outd[1] = d;\n"
    "}\n";

static void test_scalar_args(void) {
  prog_t p;
  lk_cpu_entry_fn fn;
  long out[15];
  double outd[2];
  signed char c = -5;
  unsigned char uc = 250, b = 1, b2 = 2;
  short s = -30000;
  unsigned short us = 65000;
  int i = INT_MIN + 1, ci = -77;
  unsigned ui = 4000000000u, ui2 = 123456789u;
  long l = -(1L << 40);
  unsigned long ul = ULONG_MAX - 1;
  float f = 1.5f;
  double d = 1e300;
  size_t z = ((size_t)1 << 40) + 7;
  unsigned long long ull = 0x8000000000000001ull;
  unsigned char unaligned[16];
  size_t gsz = 3, lsz = 2;
  args_t A;
  if (!BUILD(k_scalars, &p, "scalars")) return;
  fn = ENTRY(&p, "scalars");
  memset(out, 0, sizeof out);
  memset(&A, 0, sizeof A);
  ARG_BUF(A, 0, out);
  ARG_BUF(A, 1, outd);
  ARG_VAL(A, 2, c);
  ARG_VAL(A, 3, uc);
  ARG_VAL(A, 4, s);
  ARG_VAL(A, 5, us);
  ARG_VAL(A, 6, i);
  ARG_VAL(A, 7, ui);
  memcpy(unaligned + 1, &l, sizeof l); /* scalars need not be aligned */
  A.argv[8] = unaligned + 1;
  ARG_VAL(A, 9, ul);
  ARG_VAL(A, 10, f);
  ARG_VAL(A, 11, d);
  ARG_VAL(A, 12, z);
  ARG_VAL(A, 13, b);
  ARG_VAL(A, 14, b2);
  ARG_VAL(A, 15, ui2);
  ARG_VAL(A, 16, ci);
  ARG_VAL(A, 17, ull);
  launch(fn, 1, &gsz, &lsz, NULL, &A, 0, 0);
  LK_CHECK_INT(out[0], -5);
  LK_CHECK_INT(out[1], 250);
  LK_CHECK_INT(out[2], -30000);
  LK_CHECK_INT(out[3], 65000);
  LK_CHECK_INT(out[4], INT_MIN + 1);
  LK_CHECK_INT(out[5], 4000000000LL);
  LK_CHECK_INT(out[6], -(1LL << 40));
  LK_CHECK((unsigned long)out[7] == ULONG_MAX - 1);
  LK_CHECK_INT(out[8], (1LL << 40) + 7);
  LK_CHECK_INT(out[9], 1);
  LK_CHECK_INT(out[10], 1);
  LK_CHECK_INT(out[11], 123456789);
  LK_CHECK_INT(out[12], -77);
  LK_CHECK((unsigned long long)out[13] == 0x8000000000000001ull);
  LK_CHECK_INT(out[14], 128);
  LK_CHECK(outd[0] == 1.5);
  LK_CHECK(outd[1] == 1e300);
  cleanup(&p);
}

/* Builtins: every CHK records its kernel.cl line on failure. */
static const char* k_builtins =
    "#define CHK(c) do { if (!(c)) { if (nf < 60) fails[nf] = __LINE__; ++nf; } ++nchk; } while (0)\n"
    "__kernel void builtins(__global int* res, __global const float* in,\n"
    "                       volatile __global int* ai, volatile __global long* al,\n"
    "                       volatile __global float* af) {\n"
    "  int nf = 0, nchk = 0, fails[60];\n"
    "  float fnan = in[0], big = in[1], nbig = in[2], m1 = in[4], m2 = in[5];\n"
    "  if (get_global_id(0) != 0) return;\n"
    /* conversions */
    "  CHK(convert_int_sat(fnan) == 0);\n"
    "  CHK(convert_int_sat(NAN) == 0);\n"
    "  CHK(convert_int_sat(big) == INT_MAX);\n"
    "  CHK(convert_int_sat(nbig) == INT_MIN);\n"
    "  CHK(convert_int(big) == INT_MAX);\n"
    "  CHK(convert_int(fnan) == 0);\n"
    "  CHK(convert_uint_sat(-1.0f) == 0u);\n"
    "  CHK(convert_uint_sat(in[3]) == 0u);\n"
    "  CHK(convert_int(in[3]) == -2);\n"
    "  CHK(convert_int(2.9f) == 2);\n"
    "  CHK(convert_uchar_sat(300) == 255);\n"
    "  CHK(convert_uchar_sat(-5) == 0);\n"
    "  CHK(convert_char_sat(200) == 127);\n"
    "  CHK(convert_char_sat(-200) == -128);\n"
    "  CHK(convert_char(200) == -56);\n"
    "  CHK(convert_uchar(-1) == 255);\n"
    "  CHK(convert_short_sat(70000.0f) == 32767);\n"
    "  CHK(convert_ushort_sat(-3) == 0);\n"
    "  CHK(convert_long_sat((double)-INFINITY) == LONG_MIN);\n"
    "  CHK(convert_ulong_sat(1e30) == ULONG_MAX);\n"
    "  CHK(convert_ulong_sat(-1L) == 0);\n"
    "  CHK(convert_long_sat(ULONG_MAX) == LONG_MAX);\n"
    "  CHK(convert_uint_sat(-1L) == 0u);\n"
    "  CHK(convert_int_sat(4294967296L) == INT_MAX);\n"
    "  CHK(convert_uint_sat(4294967296UL) == UINT_MAX);\n"
    "  CHK(convert_long(9.3e18f) == LONG_MAX);\n"
    "  CHK(convert_ulong_sat(fnan) == 0);\n"
    "  CHK(convert_float(16777217) == 16777216.0f);\n"
    "  CHK(convert_double(1.5f) == 1.5);\n"
    "  CHK(convert_int_sat(2147483520.0f) == 2147483520);\n"
    "  CHK(convert_char_sat(-128.9f) == -128);\n"
    "  CHK(convert_uchar_sat(255.9f) == 255);\n"
    "  CHK(convert_uchar_sat(-0.9f) == 0);\n"
    "  CHK(convert_ulong(3.99) == 3);\n"
    "  CHK(convert_short((uchar)200) == 200);\n"
    /* clamp, min, max */
    "  CHK(clamp(5, 0, 3) == 3);\n"
    "  CHK(clamp(-1, 0, 3) == 0);\n"
    "  CHK(clamp(2u, 3u, 7u) == 3u);\n"
    "  CHK(clamp(-1.5f, 0.0f, 1.0f) == 0.0f);\n"
    "  CHK(clamp(fnan, 0.0f, 1.0f) == 0.0f);\n"
    "  CHK(min(3u, 5u) == 3u);\n"
    "  CHK(max(-1, 2) == 2);\n"
    "  CHK(min(-1, 2) == -1);\n"
    "  CHK(max(-1L, 2L) == 2L);\n"
    "  CHK(min(1.5f, fnan) == 1.5f);\n"
    "  CHK(max(fnan, -2.0f) == -2.0f);\n"
    "  CHK(fmin(fnan, 1.0f) == 1.0f);\n"
    "  CHK(fmax(1.0, 2.0) == 2.0);\n"
    "  CHK(isnan(fmax(fnan, fnan)));\n"
    "  CHK(min(7, 9) == 7 && sizeof(min(7, 9)) == sizeof(int));\n"
    "  CHK(sizeof(min(1.0f, 2.0f)) == sizeof(float));\n"
    "  CHK(sizeof(max(1.0, 2.0)) == sizeof(double));\n"
    "  CHK(max((char)-3, (char)5) == 5);\n"
    "  CHK(min(ULONG_MAX, 1UL) == 1UL);\n"
    /* integer */
    "  CHK(rotate(0x80000001u, 1u) == 3u);\n"
    "  CHK(rotate(0x80000001u, 33u) == 3u);\n"
    "  CHK(rotate((uchar)0x81, (uchar)1) == 0x03);\n"
    "  CHK(rotate(1, -1) == INT_MIN);\n"
    "  CHK(rotate((ulong)1, (ulong)63) == 0x8000000000000000UL);\n"
    "  CHK(rotate((ushort)0x1234, (ushort)4) == 0x2341);\n"
    "  CHK(rotate((char)-127, (char)1) == 3);\n"
    "  CHK(clz(0) == 32); CHK(clz(0u) == 32); CHK(clz(1) == 31); CHK(clz(-1) == 0);\n"
    "  CHK(clz((uchar)1) == 7); CHK(clz((uchar)0) == 8); CHK(clz((short)0) == 16);\n"
    "  CHK(clz((ulong)1) == 63); CHK(clz(0L) == 64);\n"
    "  CHK(popcount(0xFFu) == 8); CHK(popcount(-1) == 32); CHK(popcount(-1L) == 64);\n"
    "  CHK(popcount((char)-1) == 8);\n"
    "  CHK(abs(INT_MIN) == 2147483648u); CHK(abs(-5) == 5u); CHK(abs((char)-128) == 128);\n"
    "  CHK(sizeof(abs((char)-1)) == 1); CHK(abs(7u) == 7u);\n"
    "  CHK(abs(LONG_MIN) == 9223372036854775808UL);\n"
    "  CHK(abs_diff(INT_MIN, INT_MAX) == UINT_MAX);\n"
    "  CHK(abs_diff(3u, 10u) == 7u);\n"
    "  CHK(abs_diff((char)-128, (char)127) == 255);\n"
    "  CHK(add_sat(INT_MAX, 1) == INT_MAX); CHK(add_sat(INT_MIN, -1) == INT_MIN);\n"
    "  CHK(add_sat((uchar)200, (uchar)100) == 255); CHK(sub_sat((uchar)1, (uchar)2) == 0);\n"
    "  CHK(sub_sat(INT_MIN, 1) == INT_MIN); CHK(sub_sat(INT_MAX, -1) == INT_MAX);\n"
    "  CHK(add_sat(LONG_MAX, 1L) == LONG_MAX); CHK(add_sat(ULONG_MAX, 1UL) == ULONG_MAX);\n"
    "  CHK(sub_sat(0u, 1u) == 0u); CHK(add_sat((char)100, (char)100) == 127);\n"
    "  CHK(sub_sat((short)-30000, (short)10000) == -32768); CHK(add_sat(3, 4) == 7);\n"
    "  CHK(hadd(INT_MAX, INT_MAX) == INT_MAX); CHK(hadd(-1, -2) == -2);\n"
    "  CHK(hadd(UINT_MAX, UINT_MAX) == UINT_MAX); CHK(hadd(5, 8) == 6);\n"
    "  CHK(rhadd(1, 2) == 2); CHK(rhadd(-1, -2) == -1); CHK(rhadd((uchar)255, (uchar)255) == 255);\n"
    "  CHK(mul_hi(0x80000000u, 4u) == 2u); CHK(mul_hi(-1, -1) == 0); CHK(mul_hi(-2, 3) == -1);\n"
    "  CHK(mul_hi(ULONG_MAX, ULONG_MAX) == ULONG_MAX - 1); CHK(mul_hi(LONG_MIN, 2L) == -1L);\n"
    "  CHK(mul_hi((uchar)255, (uchar)255) == 254); CHK(mul_hi((short)-32768, (short)-32768) == 16384);\n"
    "  CHK(mad_hi(0x80000000u, 4u, 5u) == 7u);\n"
    "  CHK(mul24(1000, -1000) == -1000000); CHK(mad24(3u, 4u, 5u) == 17u);\n"
    "  { int imax = ai[5]; CHK(imax + 1 == INT_MIN); }\n"
    /* relational, select */
    "  CHK(isnan(fnan) == 1); CHK(isnan(1.0f) == 0); CHK(isnan((double)fnan) == 1);\n"
    "  CHK(isinf(-INFINITY) == 1); CHK(isinf((double)-INFINITY) == 1); CHK(isinf(FLT_MAX) == 0);\n"
    "  CHK(isfinite(FLT_MAX) == 1); CHK(isfinite(fnan) == 0); CHK(isfinite(INFINITY) == 0);\n"
    "  CHK(isnormal(FLT_MIN) == 1); CHK(isnormal(FLT_MIN / 2.0f) == 0); CHK(isnormal(0.0f) == 0);\n"
    "  CHK(signbit(-0.0f) == 1); CHK(signbit(0.0f) == 0); CHK(signbit(-1.0) == 1);\n"
    "  CHK(isequal(fnan, fnan) == 0); CHK(isnotequal(fnan, fnan) == 1);\n"
    "  CHK(isordered(1.0f, fnan) == 0); CHK(isunordered(1.0f, fnan) == 1);\n"
    "  CHK(isgreater(2.0f, 1.0f) == 1); CHK(isless(fnan, 1.0f) == 0);\n"
    "  CHK(islessequal(1.0, 1.0) == 1); CHK(isgreaterequal(0.0f, -0.0f) == 1);\n"
    "  CHK(select(1, 2, 0) == 1); CHK(select(1, 2, 5) == 2); CHK(select(1.5f, 2.5f, -1) == 2.5f);\n"
    "  CHK(select(1L, 2L, 0L) == 1L); CHK(select(3u, 4u, 1u) == 4u);\n"
    "  CHK(bitselect(0xF0F0u, 0x0F0Fu, 0xFF00u) == 0x0FF0u);\n"
    "  CHK(bitselect(1.0f, -1.0f, as_float(0x80000000u)) == -1.0f);\n"
    /* reinterpretation */
    "  CHK(as_uint(1.0f) == 0x3f800000u); CHK(as_float(0x40000000) == 2.0f);\n"
    "  CHK(as_int(-0.0f) == INT_MIN); CHK(as_ulong(1.0) == 0x3ff0000000000000UL);\n"
    "  CHK(as_double(0x4000000000000000L) == 2.0); CHK(as_char((uchar)255) == -1);\n"
    "  CHK(as_ushort((short)-1) == 65535); CHK(as_long(-1.0) < 0);\n"
    "  CHK(as_uint(as_float(0x7fc00001u)) == 0x7fc00001u);\n"
    /* math */
    "  CHK(mad(m1, m1, -m2) == 0.0f); CHK(fma(m1, m1, -m2) == 0x1p-24f);\n"
    "  { float p = m1 * m1; CHK(p - m2 == 0.0f); CHK(m1 * m1 - m2 == 0.0f); }\n"
    "  CHK(rsqrt(4.0f) == 0.5f); CHK(sqrt(2.0) == 1.4142135623730951);\n"
    "  CHK(sizeof(sqrt(2.0f)) == 4); CHK(sizeof(sqrt(2.0)) == 8); CHK(sqrt(in[6]) == 3.0f);\n"
    "  CHK(sqrt(2.0f) == 1.41421354f);\n"
    "  CHK(pown(-2.0f, 3) == -8.0f); CHK(pown(2.0, -2) == 0.25); CHK(isnan(powr(-1.0f, 2.0f)));\n"
    "  CHK(powr(4.0f, 0.5f) == 2.0f); CHK(isnan(powr(0.0f, 0.0f))); CHK(powr(-0.0f, 3.0f) == 0.0f);\n"
    "  CHK(pow(2.0f, 10.0f) == 1024.0f); CHK(pow(-2.0f, 3) == -8.0f); CHK(exp10(2.0f) == 100.0f);\n"
    "  CHK(exp2(3.0f) == 8.0f); CHK(log2(8.0f) == 3.0f); CHK(log10(100.0f) == 2.0f);\n"
    "  CHK(ldexp(1.0f, 10) == 1024.0f); CHK(fabs(-3.5f) == 3.5f); CHK(floor(-1.5f) == -2.0f);\n"
    "  CHK(ceil(-1.5f) == -1.0f); CHK(round(2.5f) == 3.0f); CHK(rint(2.5f) == 2.0f);\n"
    "  CHK(trunc(-2.7f) == -2.0f); CHK(copysign(1.0f, -0.0f) == -1.0f);\n"
    "  CHK(fmod(7.0f, 3.0f) == 1.0f); CHK(remainder(7.0f, 4.0f) == -1.0f);\n"
    "  CHK(hypot(3.0f, 4.0f) == 5.0f); CHK(fdim(5.0f, 3.0f) == 2.0f); CHK(fdim(3.0f, 5.0f) == 0.0f);\n"
    "  CHK(cbrt(27.0f) == 3.0f); CHK(logb(8.0f) == 3.0f);\n"
    "  CHK(nextafter(1.0f, 2.0f) == 1.0f + FLT_EPSILON);\n"
    "  CHK(sign(-0.0f) == 0.0f && signbit(sign(-0.0f))); CHK(sign(-3.0f) == -1.0f);\n"
    "  CHK(sign(fnan) == 0.0f); CHK(sign(2.0) == 1.0);\n"
    "  CHK(step(1.0f, 0.5f) == 0.0f); CHK(step(1.0f, 1.0f) == 1.0f);\n"
    "  CHK(smoothstep(0.0f, 1.0f, 0.5f) == 0.5f); CHK(smoothstep(0.0f, 1.0f, 2.0f) == 1.0f);\n"
    "  CHK(mix(1.0f, 3.0f, 0.5f) == 2.0f);\n"
    "  CHK(fabs(degrees(M_PI_F) - 180.0f) < 1e-4f); CHK(fabs(radians(180.0f) - M_PI_F) < 1e-6f);\n"
    "  CHK(native_recip(4.0f) == 0.25f); CHK(native_divide(1.0f, 4.0f) == 0.25f);\n"
    "  CHK(half_sqrt(16.0f) == 4.0f); CHK(native_exp(0.0f) == 1.0f); CHK(half_rsqrt(0.25f) == 2.0f);\n"
    "  CHK(native_sin(in[7]) == sin(in[7])); CHK(half_powr(2.0f, 3.0f) == 8.0f);\n"
    "  CHK(sin(0.0f) == 0.0f); CHK(cos(0.0) == 1.0); CHK(exp(0.0f) == 1.0f); CHK(log(1.0f) == 0.0f);\n"
    "  CHK(tanh(0.0f) == 0.0f); CHK(atan2(0.0f, 1.0f) == 0.0f); CHK(tgamma(5.0f) == 24.0f);\n"
    "  CHK(lgamma(1.0f) == 0.0f); CHK(erf(0.0f) == 0.0f); CHK(erfc(0.0f) == 1.0f);\n"
    "  CHK(expm1(0.0f) == 0.0f); CHK(log1p(0.0f) == 0.0f); CHK(acos(1.0f) == 0.0f);\n"
    "  CHK(asin(0.0f) == 0.0f); CHK(atan(0.0f) == 0.0f); CHK(acosh(1.0f) == 0.0f);\n"
    "  CHK(asinh(0.0f) == 0.0f); CHK(atanh(0.0f) == 0.0f); CHK(sinh(0.0f) == 0.0f);\n"
    "  CHK(cosh(0.0f) == 1.0f); CHK(tan(0.0f) == 0.0f); CHK(sizeof(sin(1.0f)) == 4);\n"
    "  CHK(sin(in[7]) == sinf(in[7])); CHK(sin((double)in[7]) == sin(0.5));\n"
    /* constants */
    "  CHK(M_PI_F == 3.14159265f); CHK(MAXFLOAT == FLT_MAX); CHK(isinf(HUGE_VALF));\n"
    "  CHK(CHAR_BIT == 8); CHK(INT_MAX == 2147483647); CHK(ULONG_MAX == 18446744073709551615UL);\n"
    "  CHK(LONG_MIN < 0); CHK(DBL_EPSILON < FLT_EPSILON); CHK(M_E_F > 2.718f);\n"
    "  CHK(__LIGHTOS__ == 1); CHK(LIGHTOS_TARGET_CPU == 1); CHK(sizeof(ulong) == 8);\n"
    "  CHK(DBL_MAX > FLT_MAX); CHK(DBL_MIN < FLT_MIN); CHK(FLT_MIN > 0.0f); CHK(INT_MIN < 0);\n"
    "  CHK(UINT_MAX == 4294967295u); CHK(LONG_MAX == 9223372036854775807L);\n"
    /* atomics, one thread */
    "  ai[0] = 10;\n"
    "  CHK(atomic_add(ai, 5) == 10); CHK(ai[0] == 15); CHK(atomic_sub(ai, 3) == 15);\n"
    "  CHK(atomic_inc(ai) == 12); CHK(atomic_dec(ai) == 13); CHK(ai[0] == 12);\n"
    "  CHK(atomic_xchg(ai, 7) == 12); CHK(atomic_cmpxchg(ai, 7, 9) == 7); CHK(ai[0] == 9);\n"
    "  CHK(atomic_cmpxchg(ai, 1, 2) == 9); CHK(ai[0] == 9);\n"
    "  CHK(atomic_min(ai, 4) == 9); CHK(ai[0] == 4); CHK(atomic_max(ai, 3) == 4); CHK(ai[0] == 4);\n"
    "  CHK(atomic_max(ai, -8) == 4); CHK(atomic_max(ai, 11) == 4); CHK(ai[0] == 11);\n"
    "  ai[1] = -1; CHK(atomic_min(&ai[1], 5) == -1); CHK(ai[1] == -1);\n"
    "  { volatile __global uint* au = (volatile __global uint*)(ai + 2); au[0] = 0xFFFFFFFFu;\n"
    "    CHK(atomic_min(au, 5u) == 0xFFFFFFFFu); CHK(au[0] == 5u);\n"
    "    CHK(atomic_max(au, 0x80000000u) == 5u); CHK(au[0] == 0x80000000u); }\n"
    "  ai[0] = 4;\n"
    "  CHK(atomic_and(ai, 6) == 4); CHK(ai[0] == 4); CHK(atomic_or(ai, 3) == 4); CHK(ai[0] == 7);\n"
    "  CHK(atomic_xor(ai, 5) == 7); CHK(ai[0] == 2);\n"
    "  al[0] = 1L << 40; CHK(atom_add(al, 1L) == (1L << 40)); CHK(al[0] == (1L << 40) + 1);\n"
    "  CHK(atom_cmpxchg(al, (1L << 40) + 1, 5L) == (1L << 40) + 1); CHK(atom_max(al, 6L) == 5L);\n"
    "  CHK(al[0] == 6); CHK(atom_inc(al) == 6); CHK(atom_xchg(al, -3L) == 7); CHK(atom_min(al, -4L) == -3);\n"
    "  CHK(atom_add(ai, 1) == 2); CHK(ai[0] == 3);\n"
    "  af[0] = 1.5f; CHK(atomic_xchg(af, 2.5f) == 1.5f); CHK(af[0] == 2.5f);\n"
    "  { int priv = 1; CHK(atomic_add(&priv, 2) == 1); CHK(priv == 3); }\n"
    "  mem_fence(CLK_GLOBAL_MEM_FENCE); read_mem_fence(CLK_LOCAL_MEM_FENCE);\n"
    "  write_mem_fence(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);\n"
    "  res[0] = nf; res[1] = nchk;\n"
    "  for (int k = 0; k < nf && k < 60; ++k) res[2 + k] = fails[k];\n"
    "}\n";

/* Prints line `line` (1-based) of src into buf. */
static void source_line(const char* src, int line, char* buf, size_t cap) {
  const char* p = src;
  size_t n = 0;
  while (--line > 0 && p) {
    p = strchr(p, '\n');
    if (p) p++;
  }
  if (!p) {
    snprintf(buf, cap, "?");
    return;
  }
  while (p[n] && p[n] != '\n' && n + 1 < cap) n++;
  memcpy(buf, p, n);
  buf[n] = '\0';
}

static void test_builtins(void) {
  prog_t p;
  lk_cpu_entry_fn fn;
  int res[64];
  float in[8];
  int ai[6] = {0, 0, 0, 0, 0, INT_MAX};
  long al[2] = {0, 0};
  float af[2] = {0, 0};
  size_t gsz = 2, lsz = 2;
  args_t A;
  int k;
  if (!BUILD(k_builtins, &p, "builtins")) return;
  fn = ENTRY(&p, "builtins");
  in[0] = NAN;
  in[1] = 1e20f;
  in[2] = -1e20f;
  in[3] = -2.7f;
  in[4] = 1.0f + 0x1p-12f; /* m1*m1 = 1 + 2^-11 + 2^-24: rounds to m2 unfused */
  in[5] = 1.0f + 0x1p-11f;
  in[6] = 9.0f;
  in[7] = 0.5f;
  memset(res, 0, sizeof res);
  memset(&A, 0, sizeof A);
  ARG_BUF(A, 0, res);
  ARG_BUF(A, 1, in);
  ARG_BUF(A, 2, ai);
  ARG_BUF(A, 3, al);
  ARG_BUF(A, 4, af);
  launch(fn, 1, &gsz, &lsz, NULL, &A, 0, 0);
  LK_CHECK(res[1] > 250);
  for (k = 0; k < res[0] && k < 60; k++) {
    char text[200];
    source_line(k_builtins, res[2 + k], text, sizeof text);
    lk_test_fail(__FILE__, __LINE__, "[%s] kernel.cl:%d failed: %s", g_cc, res[2 + k], text);
  }
  LK_CHECK_INT(res[0], 0);
  cleanup(&p);
}

/* Compile errors point at the user's lines in kernel.cl. */
static void test_line_mapping(void) {
  const char* src =
      "// line 1\n"
      "float helper(float x) { return x; }\n"
      "__kernel void\n"
      "bad(__global float* out,\n"
      "    int n)\n"
      "{\n"
      "  size_t i = get_global_id(0);\n"
      "  out[i] = undeclared_a;\n"       /* line 8 */
      "}\n"
      "float after(float x) {\n"
      "  return x + undeclared_b;\n"     /* line 11 */
      "}\n"
      "__kernel void bad2(__global int* o) { LIGHTOS_ITEMS { o[0] = undeclared_c; } }\n" /* 13 */
      "__kernel void bad3(__global int* o) { o[get_local_id(0)] = 1; }\n"
      "__kernel void bad4(__global int* o) {\n"
      "  LIGHTOS_ITEMS { o[0] = 1; }\n"
      "  o[get_local_id(0)] = 2;\n" /* line 17: local id outside item blocks */
      "}\n";
  prog_t p;
  char* tu;
  char* log;
  int rc;
  memset(&p, 0, sizeof p);
  tu = generate(src, __LINE__);
  if (!tu) return;
  rc = compile_tu(tu, &p, "lines");
  free(tu);
  LK_CHECK_MSG(rc != 0, "the faulty program compiled (%s)", p.c_path);
  log = read_file(p.log_path, 1 << 16);
  LK_REQUIRE(log != NULL);
  LK_CHECK_MSG(strstr(log, "kernel.cl:8:") != NULL, "no kernel.cl:8 in log %s", p.log_path);
  LK_CHECK_MSG(strstr(log, "kernel.cl:11:") != NULL, "no kernel.cl:11 in log %s", p.log_path);
  LK_CHECK_MSG(strstr(log, "kernel.cl:13:") != NULL, "no kernel.cl:13 in log %s", p.log_path);
  LK_CHECK_MSG(strstr(log, "kernel.cl:17:") != NULL, "no kernel.cl:17 in log %s", p.log_path);
  LK_CHECK_MSG(strstr(log, "kernel.cl:14:") == NULL, "bad3 should compile (log %s)", p.log_path);
  free(log);
  if (lk_t.current_failed == 0) cleanup(&p);
}

/* The prelude alone (a program without kernels) compiles warning-free. */
static void test_prelude_alone(void) {
  prog_t p;
  if (!BUILD("/* nothing */\n", &p, "empty")) return;
  cleanup(&p);
  if (!BUILD("", &p, "empty2")) return;
  cleanup(&p);
}

/* ---- Code generator without a compiler ------------------------------------- */

static void test_codegen_errors(void) {
  const char* src = "__kernel void k(__global float* x) { __local float t[4]; x[0] = t[0]; }\n";
  const char* ok = "__kernel void k(__global float* x) { x[0] = 1.0f; }\n";
  lk_kparse_result_t pr;
  lk_kernel_sig_t sig;
  char err[300];
  char* tu = (char*)1;
  size_t tul = 99;
  int rc;
  LK_REQUIRE(lk_kparse(src, strlen(src), &pr, err, sizeof err) == 0);
  rc = lk_cpu_codegen(src, strlen(src), &pr, lk_prelude_cpu, &tu, &tul, err, sizeof err);
  LK_CHECK_INT(rc, -1);
  LK_CHECK(tu == NULL && tul == 0);
  LK_CHECK_MSG(strstr(err, "line 1:") && strstr(err, "__local") && strstr(err, "LIGHTOS_ITEMS"),
               "message: %s", err);
  lk_kparse_free(&pr);

  /* Offsets that do not match the source. */
  LK_REQUIRE(lk_kparse(ok, strlen(ok), &pr, err, sizeof err) == 0);
  LK_REQUIRE(pr.num_kernels == 1);
  sig = pr.kernels[0];
  pr.kernels[0].body_end = strlen(ok) + 5;
  LK_CHECK_INT(lk_cpu_codegen(ok, strlen(ok), &pr, lk_prelude_cpu, &tu, &tul, err, sizeof err), -1);
  LK_CHECK(strstr(err, "does not match") != NULL);
  pr.kernels[0] = sig;
  strcpy(pr.kernels[0].args[0].name, "lk_x");
  LK_CHECK_INT(lk_cpu_codegen(ok, strlen(ok), &pr, lk_prelude_cpu, &tu, &tul, err, sizeof err), -1);
  LK_CHECK(strstr(err, "reserved") != NULL);
  pr.kernels[0] = sig;
  strcpy(pr.kernels[0].args[0].type_text, "float*; evil");
  LK_CHECK_INT(lk_cpu_codegen(ok, strlen(ok), &pr, lk_prelude_cpu, &tu, &tul, err, sizeof err), -1);
  pr.kernels[0] = sig;
  LK_CHECK_INT(lk_cpu_codegen(ok, strlen(ok), NULL, lk_prelude_cpu, &tu, &tul, err, sizeof err), -1);
  LK_CHECK_INT(lk_cpu_codegen(ok, strlen(ok), &pr, NULL, &tu, &tul, err, sizeof err), -1);
  LK_CHECK_INT(lk_cpu_codegen(ok, strlen(ok), &pr, lk_prelude_cpu, NULL, &tul, err, 0), -1);
  /* A NUL inside the source. */
  {
    char withnul[] = "int a;\n\0__kernel void k(__global float* x) { x[0] = 1.0f; }\n";
    lk_kparse_result_t empty = {0, NULL, 0, NULL};
    LK_CHECK_INT(lk_cpu_codegen(withnul, sizeof withnul - 1, &empty, lk_prelude_cpu, &tu, &tul,
                                err, sizeof err),
                 -1);
    LK_CHECK(strstr(err, "line 2") != NULL);
  }
  /* Success: the text has the pieces the backend relies on. */
  LK_REQUIRE(lk_cpu_codegen(ok, strlen(ok), &pr, lk_prelude_cpu, &tu, &tul, err, sizeof err) == 0);
  LK_CHECK(strstr(tu, "lk_entry_k(") != NULL);
  LK_CHECK(strstr(tu, "lk_item_k(") != NULL);
  LK_CHECK(strstr(tu, "lk_abi_version") != NULL);
  LK_CHECK(strstr(tu, "#line 1 \"kernel.cl\"") != NULL);
  LK_CHECK(strstr(tu, lk_prelude_cpu) != NULL);
  LK_CHECK(strlen(lk_prelude_cpu) == lk_prelude_cpu_len);
  LK_CHECK(strlen(lk_prelude_opencl) == lk_prelude_opencl_len);
  LK_CHECK(strstr(lk_prelude_opencl, "LIGHTOS_TARGET_OPENCL") != NULL);
  free(tu);
  lk_kparse_free(&pr);
}

/* ---- Driver ------------------------------------------------------------------ */

static int have_compiler(const char* cc) {
  char cmd[512];
  size_t i;
  for (i = 0; cc[i]; i++) /* plain names and paths only */
    if (!((cc[i] >= 'a' && cc[i] <= 'z') || (cc[i] >= 'A' && cc[i] <= 'Z') ||
          (cc[i] >= '0' && cc[i] <= '9') || strchr("/._+-", cc[i])))
      return 0;
  snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", cc);
  return system(cmd) == 0;
}

static void skip_no_cc(void) { lk_test_skip("no C compiler (cc or clang) found"); }

static void run_with(const char* cc) {
  char name[128];
  g_cc = cc;
#define RUN_CC(fn)                                       \
  do {                                                   \
    snprintf(name, sizeof name, "%s[%s]", #fn, cc);      \
    LK_RUN_NAMED(name, fn());                            \
  } while (0)
  RUN_CC(test_prelude_alone);
  RUN_CC(test_saxpy);
  RUN_CC(test_ids_2d_3d);
  RUN_CC(test_reduce_items);
  RUN_CC(test_local_ptr_args);
  RUN_CC(test_helpers);
  RUN_CC(test_scalar_args);
  RUN_CC(test_builtins);
  RUN_CC(test_line_mapping);
#undef RUN_CC
}

int main(void) {
  const char* env = getenv("LK_TEST_CC");
  const char* tmp = getenv("TMPDIR");
  char list[512];
  int ncc = 0;
  lk_t.program = "test_cpu_codegen";

  LK_RUN(test_codegen_errors);

  snprintf(g_dir, sizeof g_dir, "%s/lk_cgtest_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_dir)) {
    fprintf(stderr, "mkdtemp(%s) failed\n", g_dir);
    return 1;
  }
  snprintf(list, sizeof list, "%s", env && *env ? env : "cc clang");
  {
    char* save = NULL;
    char* cc = strtok_r(list, " ", &save);
    for (; cc; cc = strtok_r(NULL, " ", &save)) {
      if (!have_compiler(cc)) {
        fprintf(stderr, "note: compiler '%s' not found\n", cc);
        continue;
      }
      ncc++;
      run_with(cc);
    }
  }
  if (ncc == 0) LK_RUN(skip_no_cc);
  rmdir(g_dir); /* only succeeds when every build was cleaned up */
  return lk_test_finish();
}
