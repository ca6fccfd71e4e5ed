/* CPU programs: portable kernel -> C (cpu_codegen) -> the system C compiler
 * -> a shared object, cached on disk and loaded with dlopen; and kernel
 * launches over the device's thread pool. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "core/kcache.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/util.h"
#include "hal/cpu/cpu_abi.h"
#include "hal/cpu/cpu_backend.h"
#include "kernels/cpu_codegen.h"
#include "kernels/preludes.h"

extern char** environ;

/* Flags every kernel is compiled with: strict IEEE arithmetic (no
 * fast-math, no contraction into FMA), wrapping signed overflow as the
 * language spec says, and code for this machine's CPU. */
static const char* const lk_cpu_cflags[] = {
    "-std=c11", "-O3", "-march=native", "-fsigned-char", "-fno-fast-math", "-ffp-contract=off",
    "-fno-math-errno", "-fwrapv", "-fPIC", "-shared", "-fvisibility=hidden",
    "-fno-semantic-interposition", NULL};

typedef struct lk_cpu_program {
  lk_hal_program_t base;
  void* so;
  int fd;  /* the memfd the object was loaded from, open while loaded */
} lk_cpu_program_t;

/* ---- compiler discovery -------------------------------------------------- */

static bool lk_find_in_path(const char* name, char* out, size_t cap) {
  if (strchr(name, '/')) {
    if (access(name, X_OK) != 0) return false;
    lk_strlcpy(out, name, cap);
    return true;
  }
  const char* path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  while (*path) {
    size_t n = strcspn(path, ":");
    char cand[PATH_MAX];
    if (n && n + strlen(name) + 2 < sizeof cand) {
      snprintf(cand, sizeof cand, "%.*s/%s", (int)n, path, name);
      if (access(cand, X_OK) == 0) {
        lk_strlcpy(out, cand, cap);
        return true;
      }
    }
    path += n;
    if (*path == ':') path++;
  }
  return false;
}

/* LIGHTOS_CC, then cc, gcc, clang. */
static lightos_status_t lk_find_compiler(char* out, size_t cap) {
  const char* env = getenv("LIGHTOS_CC");
  if (env && *env) {
    if (lk_find_in_path(env, out, cap)) return LIGHTOS_SUCCESS;
    return LK_FAIL_NATIVE(LIGHTOS_UNAVAILABLE, "cpu", "", 0,
                          "no C compiler for the CPU backend: LIGHTOS_CC=%s was not found or is "
                          "not executable",
                          env);
  }
  static const char* const names[] = {"cc", "gcc", "clang"};
  for (size_t i = 0; i < 3; ++i)
    if (lk_find_in_path(names[i], out, cap)) return LIGHTOS_SUCCESS;
  return LK_FAIL_NATIVE(LIGHTOS_UNAVAILABLE, "cpu", "", 0,
                        "no C compiler for the CPU backend: none of cc, gcc, clang is in PATH; "
                        "install one (e.g. apt-get install gcc) or set LIGHTOS_CC");
}

/* ---- cache key --------------------------------------------------------- */

static void lk_cpu_key(const char* compiler, const char* options, const char* tu, size_t tu_len,
                       const char* cpu_name, uint8_t key[32]) {
  lk_sha256_t h;
  lk_sha256_init(&h);
  char buf[256];
  snprintf(buf, sizeof buf, "lightos-cpu abi=%d hal=%d", LK_CPU_ABI_VERSION, LK_HAL_ABI_VERSION);
  lk_sha256_update_str(&h, buf);
  char real[PATH_MAX];
  if (!realpath(compiler, real)) lk_strlcpy(real, compiler, sizeof real);
  lk_sha256_update_str(&h, real);
  struct stat st;
  if (stat(real, &st) == 0) {
    snprintf(buf, sizeof buf, "%lld:%lld:%lld", (long long)st.st_size, (long long)st.st_mtime,
             (long long)st.st_ino);
    lk_sha256_update_str(&h, buf);
  }
  for (const char* const* f = lk_cpu_cflags; *f; ++f) lk_sha256_update_str(&h, *f);
  lk_sha256_update_str(&h, options);
  lk_sha256_update_str(&h, cpu_name);
  lk_sha256_update(&h, tu, tu_len);
  lk_sha256_final(&h, key);
}

/* ---- loading ------------------------------------------------------------- */

/* Loads a shared object from memory.  The memfd stays open while the
 * object is loaded: dlopen recognises objects by path, and a closed fd's
 * number (so its /proc path) would be reused by the next program. */
static void* lk_dlopen_bytes(const void* data, size_t len, int* out_fd, char* err, size_t cap) {
  int fd = memfd_create("lightos-kernel", MFD_CLOEXEC);
  if (fd < 0) {
    snprintf(err, cap, "memfd_create: %s", strerror(errno));
    return NULL;
  }
  const char* p = data;
  size_t left = len;
  while (left) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      snprintf(err, cap, "writing the kernel object: %s", strerror(errno));
      close(fd);
      return NULL;
    }
    p += w;
    left -= (size_t)w;
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  void* so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!so) {
    snprintf(err, cap, "dlopen: %s", dlerror());
    close(fd);
    return NULL;
  }
  *out_fd = fd;
  return so;
}

static bool lk_read_file(const char* path, void** out, size_t* out_len) {
  FILE* f = fopen(path, "rb");
  if (!f) return false;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void* buf = n > 0 ? malloc((size_t)n) : NULL;
  bool ok = buf && fread(buf, 1, (size_t)n, f) == (size_t)n;
  fclose(f);
  if (!ok) {
    free(buf);
    return false;
  }
  *out = buf;
  *out_len = (size_t)n;
  return true;
}

static bool lk_write_file(const char* path, const char* data, size_t len) {
  FILE* f = fopen(path, "wb");
  if (!f) return false;
  bool ok = fwrite(data, 1, len, f) == len;
  return fclose(f) == 0 && ok;
}

/* ---- compiling ----------------------------------------------------------- */

/* Splits the validated user options into argv entries ("-D X", "-DX"...). */
static int lk_split_options(char* opts, char** argv, int max) {
  int n = 0;
  char* save = NULL;
  for (char* t = strtok_r(opts, " \t\n", &save); t && n < max; t = strtok_r(NULL, " \t\n", &save)) {
    if (!strcmp(t, "-cl-std=CL1.2")) continue;
    argv[n++] = t;
  }
  return n;
}

/* Runs the compiler; the output of the compiler goes into *out_log. */
static lightos_status_t lk_run_compiler(const char* cc, const char* options, const char* src_path,
                                        const char* so_path, const char* log_path, char** out_log) {
  char* opts = strdup(options);
  if (!opts) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  char* argv[96];
  int argc = 0;
  argv[argc++] = (char*)cc;
  for (const char* const* f = lk_cpu_cflags; *f; ++f) argv[argc++] = (char*)*f;
  argc += lk_split_options(opts, argv + argc, 64);
  argv[argc++] = "-o";
  argv[argc++] = (char*)so_path;
  argv[argc++] = (char*)src_path;
  argv[argc++] = "-lm";
  argv[argc] = NULL;

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid;
  int rc = posix_spawn(&pid, cc, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  free(opts);
  if (rc != 0)
    return LK_FAIL_NATIVE(LIGHTOS_UNAVAILABLE, "cpu", "", rc, "could not run the C compiler %s: %s",
                          cc, strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  void* log = NULL;
  size_t log_len = 0;
  if (lk_read_file(log_path, &log, &log_len)) {
    char* s = realloc(log, log_len + 1);
    if (s) {
      s[log_len] = '\0';
      *out_log = s;
    } else {
      free(log);
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    /* The first error line makes the message; the full log is kept. */
    const char* first = *out_log ? strstr(*out_log, "error") : NULL;
    const char* line = first;
    while (line && line > *out_log && line[-1] != '\n') line--;
    int n = line ? (int)strcspn(line, "\n") : 0;
    return LK_FAIL_NATIVE(LIGHTOS_COMPILE_FAILED, "cpu", "", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                          "kernel compilation failed: %.*s", n ? n : 15,
                          n ? line : "see the build log");
  }
  return LIGHTOS_SUCCESS;
}

static void lk_rm_tree(const char* dir, const char* const* files) {
  char p[PATH_MAX + 32];
  for (const char* const* f = files; *f; ++f) {
    snprintf(p, sizeof p, "%s/%s", dir, *f);
    unlink(p);
  }
  rmdir(dir);
}

/* Compiles `tu` into a shared object; returns its bytes. */
static lightos_status_t lk_compile_tu(const char* cc, const char* options, const char* tu,
                                      size_t tu_len, void** out_so, size_t* out_len,
                                      char** out_log) {
  const char* tmp = getenv("TMPDIR");
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/lightos-build-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir))
    return LK_FAIL_NATIVE(LIGHTOS_UNAVAILABLE, "cpu", "", errno,
                          "cannot create a build directory %s: %s", dir, strerror(errno));
  char src[PATH_MAX + 16], so[PATH_MAX + 16], log[PATH_MAX + 16];
  snprintf(src, sizeof src, "%s/kernel.c", dir);
  snprintf(so, sizeof so, "%s/kernel.so", dir);
  snprintf(log, sizeof log, "%s/build.log", dir);
  static const char* const files[] = {"kernel.c", "kernel.so", "build.log", NULL};
  lightos_status_t s;
  if (!lk_write_file(src, tu, tu_len))
    s = LK_FAIL_NATIVE(LIGHTOS_UNAVAILABLE, "cpu", "", errno, "cannot write %s: %s", src,
                       strerror(errno));
  else
    s = lk_run_compiler(cc, options, src, so, log, out_log);
  if (!s && !lk_read_file(so, out_so, out_len))
    s = LK_FAIL_NATIVE(LIGHTOS_INTERNAL, "cpu", "", 0, "the compiler wrote no %s", so);
  lk_rm_tree(dir, files);
  return s;
}

/* ---- the program vtable ----------------------------------------------------- */

static void lk_cpu_program_destroy(lk_hal_program_t* hp) {
  lk_cpu_program_t* p = (lk_cpu_program_t*)hp;
  if (p->so) dlclose(p->so);
  if (p->fd >= 0) close(p->fd);
  free(p);
}

static lightos_status_t lk_cpu_kernel_get(lk_hal_program_t* hp, const lk_kernel_sig_t* sig,
                                          void** out) {
  lk_cpu_program_t* p = (lk_cpu_program_t*)hp;
  char sym[LK_KPARSE_MAX_NAME + 16];
  snprintf(sym, sizeof sym, "lk_entry_%s", sig->name);
  void* fn = dlsym(p->so, sym);
  if (!fn)
    return LK_FAIL_NATIVE(LIGHTOS_INTERNAL, "cpu", "", 0, "kernel '%s': entry %s missing from the "
                          "compiled program", sig->name, sym);
  *out = fn;
  return LIGHTOS_SUCCESS;
}

static const lk_hal_program_vtbl_t lk_cpu_program_vtbl = {
    .destroy = lk_cpu_program_destroy,
    .kernel_get = lk_cpu_kernel_get,
};

lightos_status_t lk_cpu_program_build(lk_hal_context_t* context, const lk_program_src_t* src,
                                      lk_hal_build_result_t* out) {
  char cc[PATH_MAX];
  lightos_status_t s = lk_find_compiler(cc, sizeof cc);
  if (s) {
    out->log = strdup(lightos_last_error()->message);
    return s;
  }
  char* tu = NULL;
  size_t tu_len = 0;
  char err[512];
  if (lk_cpu_codegen(src->source, src->length, src->sig, lk_prelude_cpu, &tu, &tu_len, err,
                     sizeof err) != 0) {
    out->log = strdup(err);
    return LK_FAIL_NATIVE(LIGHTOS_COMPILE_FAILED, "cpu", "", 0, "kernel source: %s", err);
  }
  uint8_t key[32];
  lk_cpu_key(cc, src->options, tu, tu_len, context->device->info.name, key);
  void* so_bytes = NULL;
  size_t so_len = 0;
  bool hit = lk_cache_load(key, &so_bytes, &so_len);
  if (!hit) {
    s = lk_compile_tu(cc, src->options, tu, tu_len, &so_bytes, &so_len, &out->log);
    if (!s) lk_cache_store(key, so_bytes, so_len);
  }
  free(tu);
  if (s) return s;
  lk_cpu_program_t* p = calloc(1, sizeof *p);
  if (!p) {
    free(so_bytes);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a program");
  }
  p->fd = -1;
  p->so = lk_dlopen_bytes(so_bytes, so_len, &p->fd, err, sizeof err);
  free(so_bytes);
  const unsigned* abi = p->so ? dlsym(p->so, "lk_abi_version") : NULL;
  if (!p->so || !abi || *abi != LK_CPU_ABI_VERSION) {
    if (p->so) snprintf(err, sizeof err, "%s", abi ? "kernel ABI version mismatch" : "no lk_abi_version");
    lk_cpu_program_destroy(&p->base);
    return LK_FAIL_NATIVE(LIGHTOS_INTERNAL, "cpu", "", 0, "loading the compiled kernels failed: %s",
                          err);
  }
  p->base.vtbl = &lk_cpu_program_vtbl;
  p->base.context = context;
  out->program = &p->base;
  out->from_cache = hit;
  return LIGHTOS_SUCCESS;
}
