/* CUDA programs: the rewritten source (cl_codegen.h, lk_cuda_codegen) with
 * the CUDA prelude, compiled by NVRTC to a cubin for the device's
 * architecture, cached on disk, loaded as a context-independent library
 * (cuLibraryLoadData, CUDA 12.0+) or, where the driver has none, as a
 * module of the context; kernel launches.
 *
 * A library's kernel (CUkernel) launches in the context of the stream it
 * is launched on, so a launch needs no look at the thread's current
 * context (cuCtxGetCurrent costs about 1 % of an empty kernel's launch);
 * a module's function needs its context current. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/kcache.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/util.h"
#include "hal/cuda/cuda_backend.h"
#include "kernels/cl_codegen.h"
#include "kernels/preludes.h"

/* The options every build gets: correctly rounded division and sqrt and
 * kept denormals are NVRTC's defaults; a*b+c is never contracted into an
 * fma; functions without __device__ are device functions. */
static const char* const lk_cu_fixed_options[] = {"--fmad=false", "-default-device",
                                                  "--std=c++17"};
#define LK_CU_NFIXED (sizeof lk_cu_fixed_options / sizeof lk_cu_fixed_options[0])
#define LK_CU_MAX_OPTIONS 160

typedef struct lk_cu_program {
  lk_hal_program_t base;
  lk_cu_context_t* ctx;
  CUlibrary library; /* or, where the driver has no libraries: */
  CUmodule module;
  pthread_mutex_t lock;
  lk_cu_kernel_t* kernels; /* every handle made from this program */
} lk_cu_program_t;

/* ---- NVRTC -------------------------------------------------------------------- */

lightos_status_t lk_cuda_arch_for(int cc_major, int cc_minor, char* out, size_t cap) {
  char why[256];
  const lk_nvrtc_api_t* rtc = lk_nvrtc_api_get(why, sizeof why);
  if (!rtc) return LK_FAIL_NATIVE(LIGHTOS_UNAVAILABLE, "cuda", "", 0, "%s", why);
  int want = cc_major * 10 + cc_minor;
  if (!rtc->nvrtcGetNumSupportedArchs || !rtc->nvrtcGetSupportedArchs) {
    /* Before NVRTC 11.2: trust it with the device's architecture. */
    snprintf(out, cap, "%s_%d", rtc->nvrtcGetCUBIN ? "sm" : "compute", want);
    return LIGHTOS_SUCCESS;
  }
  int n = 0;
  if (rtc->nvrtcGetNumSupportedArchs(&n) != NVRTC_SUCCESS || n <= 0 || n > 256)
    return LK_FAIL(LIGHTOS_UNAVAILABLE, "NVRTC %d.%d reports no supported architecture",
                   rtc->major, rtc->minor);
  int archs[256];
  if (rtc->nvrtcGetSupportedArchs(archs) != NVRTC_SUCCESS)
    return LK_FAIL(LIGHTOS_UNAVAILABLE, "NVRTC %d.%d: nvrtcGetSupportedArchs failed", rtc->major,
                   rtc->minor);
  int best = 0;
  for (int i = 0; i < n; ++i) {
    if (archs[i] == want && rtc->nvrtcGetCUBIN) {
      snprintf(out, cap, "sm_%d", want);
      return LIGHTOS_SUCCESS;
    }
    if (archs[i] <= want && archs[i] > best) best = archs[i];
  }
  if (!best)
    return LK_FAIL(LIGHTOS_UNSUPPORTED,
                   "NVRTC %d.%d (%s) cannot build for sm_%d (its oldest architecture is sm_%d)",
                   rtc->major, rtc->minor, rtc->path, want, archs[0]);
  /* A newer GPU than this NVRTC knows: PTX the driver compiles. */
  snprintf(out, cap, "compute_%d", best);
  return LIGHTOS_SUCCESS;
}

/* Splits the validated user options into NVRTC options (strings in buf). */
static int lk_cu_user_options(const char* opts, char* buf, size_t cap, const char** argv,
                              int max) {
  int n = 0;
  size_t used = 0;
  const char* p = opts ? opts : "";
  while (*p && n < max) {
    while (isspace((unsigned char)*p)) p++;
    if (!*p) break;
    const char* tok = p;
    while (*p && !isspace((unsigned char)*p)) p++;
    size_t len = (size_t)(p - tok);
    const char* prefix = NULL;
    const char* val = NULL;
    size_t vlen = 0;
    if (len == 2 && (!strncmp(tok, "-D", 2) || !strncmp(tok, "-I", 2))) {
      while (isspace((unsigned char)*p)) p++;
      val = p;
      while (*p && !isspace((unsigned char)*p)) p++;
      vlen = (size_t)(p - val);
      prefix = tok[1] == 'D' ? "-D" : "--include-path=";
    } else if (len > 2 && !strncmp(tok, "-D", 2)) {
      prefix = "-D", val = tok + 2, vlen = len - 2;
    } else if (len > 2 && !strncmp(tok, "-I", 2)) {
      prefix = "--include-path=", val = tok + 2, vlen = len - 2;
    } else if (len == 2 && !strncmp(tok, "-w", 2)) {
      prefix = "-w", val = "", vlen = 0;
    } else {
      continue; /* -cl-std=CL1.2: the only language version anyway */
    }
    size_t need = strlen(prefix) + vlen + 1;
    if (used + need > cap) break;
    char* dst = buf + used;
    snprintf(dst, need, "%s%.*s", prefix, (int)vlen, val);
    argv[n++] = dst;
    used += need;
  }
  return n;
}

/* The first line of the log that reports an error (or the first line). */
static void lk_cu_first_error(const char* log, char* out, size_t cap) {
  const char* e = log ? strstr(log, "error") : NULL;
  const char* line = e ? e : log;
  if (!line || !*line) {
    lk_strlcpy(out, "see the build log", cap);
    return;
  }
  while (e && line > log && line[-1] != '\n') line--;
  size_t n = strcspn(line, "\n");
  snprintf(out, cap, "%.*s", (int)n, line);
}

lightos_status_t lk_cuda_compile_source(const char* text, size_t len, const char* arch,
                                        const char* user_options, void** out_image,
                                        size_t* out_size, char** out_log) {
  if (out_log) *out_log = NULL;
  if (!text || !arch || !out_image || !out_size)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "lk_cuda_compile_source: %s is NULL",
                   !text ? "text" : !arch ? "arch" : !out_image ? "out_image" : "out_size");
  *out_image = NULL;
  *out_size = 0;
  char why[256];
  const lk_nvrtc_api_t* rtc = lk_nvrtc_api_get(why, sizeof why);
  if (!rtc) {
    if (out_log) *out_log = strdup(why);
    return LK_FAIL_NATIVE(LIGHTOS_UNAVAILABLE, "cuda", "", 0, "%s", why);
  }
  char* src = malloc(len + 1);
  char* optbuf = malloc(8192);
  const char** argv = malloc(LK_CU_MAX_OPTIONS * sizeof *argv);
  if (!src || !optbuf || !argv) {
    free(src);
    free(optbuf);
    free(argv);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory compiling a CUDA program");
  }
  memcpy(src, text, len);
  src[len] = '\0';
  int argc = 0;
  char archopt[64];
  snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
  argv[argc++] = archopt;
  for (size_t i = 0; i < LK_CU_NFIXED; ++i) argv[argc++] = lk_cu_fixed_options[i];
  argc += lk_cu_user_options(user_options, optbuf, 8192, argv + argc, LK_CU_MAX_OPTIONS - argc);

  lightos_status_t s = LIGHTOS_SUCCESS;
  nvrtcProgram prog = NULL;
  nvrtcResult r = rtc->nvrtcCreateProgram(&prog, src, "kernel.cu", 0, NULL, NULL);
  if (r != NVRTC_SUCCESS) {
    s = LK_FAIL_NATIVE(r == NVRTC_ERROR_OUT_OF_MEMORY ? LIGHTOS_OUT_OF_MEMORY : LIGHTOS_INTERNAL,
                       "cuda", rtc->nvrtcGetErrorString(r), r, "nvrtcCreateProgram failed (%s)",
                       rtc->nvrtcGetErrorString(r));
    goto done;
  }
  r = rtc->nvrtcCompileProgram(prog, argc, argv);
  size_t log_size = 0;
  char* log = NULL;
  if (rtc->nvrtcGetProgramLogSize(prog, &log_size) == NVRTC_SUCCESS && log_size > 1 &&
      (log = malloc(log_size + 1)) != NULL) {
    if (rtc->nvrtcGetProgramLog(prog, log) != NVRTC_SUCCESS) log[0] = '\0';
    log[log_size] = '\0';
  }
  if (r != NVRTC_SUCCESS) {
    char first[400];
    lk_cu_first_error(log, first, sizeof first);
    if (r == NVRTC_ERROR_COMPILATION)
      s = LK_FAIL_NATIVE(LIGHTOS_COMPILE_FAILED, "cuda", rtc->nvrtcGetErrorString(r), r,
                         "kernel compilation failed: %s", first);
    else
      s = LK_FAIL_NATIVE(r == NVRTC_ERROR_OUT_OF_MEMORY ? LIGHTOS_OUT_OF_MEMORY
                                                        : LIGHTOS_COMPILE_FAILED,
                         "cuda", rtc->nvrtcGetErrorString(r), r,
                         "nvrtcCompileProgram failed (%s, %s): %s", rtc->nvrtcGetErrorString(r),
                         archopt, first);
  } else {
    bool cubin = !strncmp(arch, "sm_", 3);
    size_t size = 0;
    r = cubin ? rtc->nvrtcGetCUBINSize(prog, &size) : rtc->nvrtcGetPTXSize(prog, &size);
    void* image = r == NVRTC_SUCCESS && size ? malloc(size) : NULL;
    if (image)
      r = cubin ? rtc->nvrtcGetCUBIN(prog, image) : rtc->nvrtcGetPTX(prog, image);
    if (!image || r != NVRTC_SUCCESS) {
      free(image);
      s = r != NVRTC_SUCCESS
              ? LK_FAIL_NATIVE(LIGHTOS_INTERNAL, "cuda", rtc->nvrtcGetErrorString(r), r,
                               "reading the compiled %s failed (%s)", cubin ? "cubin" : "PTX",
                               rtc->nvrtcGetErrorString(r))
              : LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a %zu-byte image", size);
    } else {
      *out_image = image;
      *out_size = size;
    }
  }
  if (out_log) *out_log = log;
  else free(log);
done:
  if (prog) rtc->nvrtcDestroyProgram(&prog);
  free(src);
  free(optbuf);
  free(argv);
  return s;
}

/* ---- programs ------------------------------------------------------------------- */

static void lk_cu_program_destroy(lk_hal_program_t* hp) {
  lk_cu_program_t* p = (lk_cu_program_t*)hp;
  for (lk_cu_kernel_t *k = p->kernels, *next; k; k = next) {
    next = k->next;
    free(k);
  }
  (void)lk_cu_make_current(p->ctx);
  if (p->library) p->ctx->api->cuLibraryUnload(p->library);
  else p->ctx->api->cuModuleUnload(p->module);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

static lightos_status_t lk_cu_kernel_get(lk_hal_program_t* hp, const lk_kernel_sig_t* sig,
                                         void** out) {
  lk_cu_program_t* p = (lk_cu_program_t*)hp;
  lk_cu_context_t* c = p->ctx;
  const lk_cuda_api_t* api = c->api;
  lightos_status_t s = lk_cu_make_current(c);
  if (s) return s;
  CUfunction fn = NULL;
  CUkernel lk = NULL;
  const char* call = p->library ? "cuLibraryGetKernel" : "cuModuleGetFunction";
  CUresult r = p->library ? api->cuLibraryGetKernel(&lk, p->library, sig->name)
                          : api->cuModuleGetFunction(&fn, p->module, sig->name);
  if (r == CUDA_ERROR_NOT_FOUND)
    return LK_FAIL_NATIVE(LIGHTOS_NOT_FOUND, "cuda", lk_cuda_error_name(r), r,
                          "kernel '%s' is not in the built program (inside a false #if?)",
                          sig->name);
  /* The library's kernel in this context (loaded into it now, not at the
   * first launch): its attributes are set there. */
  if (!r && lk && (r = api->cuKernelGetFunction(&fn, lk))) call = "cuKernelGetFunction";
  if (r) return lk_cu_fail(c, r, call, sig->name);
  lk_cu_kernel_t* k = calloc(1, sizeof *k);
  if (!k) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a kernel");
  k->fn = fn;
  k->launch = lk ? (CUfunction)(void*)lk : fn;
  k->ctx_free = lk != NULL;
  k->sig = sig;
  k->max_threads = c->device->max_threads;
  if (api->cuFuncGetAttribute(&k->max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, fn) ||
      k->max_threads <= 0)
    k->max_threads = c->device->max_threads;
  if (api->cuFuncGetAttribute(&k->static_smem, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, fn))
    k->static_smem = 0;
  if (c->device->smem_optin > k->static_smem) {
    /* Lets launches use the opt-in shared memory the device reports. */
    r = api->cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                c->device->smem_optin - k->static_smem);
    if (r)
      LK_LOG_DEBUG("kernel %s: cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES) failed: %s",
                   sig->name, lk_cuda_error_name(r));
  }
  pthread_mutex_lock(&p->lock);
  k->next = p->kernels;
  p->kernels = k;
  pthread_mutex_unlock(&p->lock);
  *out = k;
  return LIGHTOS_SUCCESS;
}

static const lk_hal_program_vtbl_t lk_cu_program_vtbl = {
    .destroy = lk_cu_program_destroy,
    .kernel_get = lk_cu_kernel_get,
};

static void lk_cu_key(const lk_cu_context_t* c, const char* arch, const char* options,
                      const char* text, size_t len, uint8_t key[32]) {
  const lk_nvrtc_api_t* rtc = lk_nvrtc_api_get(NULL, 0);
  char ver[64];
  snprintf(ver, sizeof ver, "nvrtc %d.%d driver %d", rtc ? rtc->major : 0, rtc ? rtc->minor : 0,
           c->device->driver_version);
  lk_sha256_t h;
  lk_sha256_init(&h);
  lk_sha256_update_str(&h, "lightos-cuda v1");
  lk_sha256_update_str(&h, arch);
  lk_sha256_update_str(&h, ver);
  for (size_t i = 0; i < LK_CU_NFIXED; ++i) lk_sha256_update_str(&h, lk_cu_fixed_options[i]);
  lk_sha256_update_str(&h, options);
  lk_sha256_update(&h, text, len);
  lk_sha256_final(&h, key);
}

/* Loads an image into the current context: as a library where the driver
 * has them (LIGHTOS_CUDA_MODULES=1: never), else, or when the driver
 * refuses the library, as a module.  Returns the module's result when
 * both fail. */
static CUresult lk_cu_load(const lk_cuda_api_t* api, const void* image, CUlibrary* lib,
                           CUmodule* mod) {
  *lib = NULL;
  *mod = NULL;
  if (api->cuLibraryLoadData && api->cuLibraryUnload && api->cuLibraryGetKernel &&
      api->cuKernelGetFunction && lk_env_long("LIGHTOS_CUDA_MODULES", 0) == 0) {
    CUresult r = api->cuLibraryLoadData(lib, image, NULL, NULL, 0, NULL, NULL, 0);
    if (r == CUDA_SUCCESS) return r;
    *lib = NULL;
    LK_LOG_DEBUG("cuLibraryLoadData failed (%s): loading a module", lk_cuda_error_name(r));
  }
  return api->cuModuleLoadData(mod, image);
}

lightos_status_t lk_cu_program_build(lk_hal_context_t* hc, const lk_program_src_t* src,
                                     lk_hal_build_result_t* out) {
  lk_cu_context_t* c = (lk_cu_context_t*)hc;
  const lk_cuda_api_t* api = c->api;
  lightos_status_t s = lk_cu_check_lost(c);
  if (!s) s = lk_cu_make_current(c);
  if (s) return s;
  char arch[32];
  s = lk_cuda_arch_for(c->device->cc_major, c->device->cc_minor, arch, sizeof arch);
  if (s) {
    out->log = strdup(lightos_last_error()->message);
    return s;
  }
  char* text = NULL;
  size_t len = 0;
  char err[512];
  if (lk_cuda_codegen(src->source, src->length, src->sig, lk_prelude_cuda, &text, &len, err,
                      sizeof err) != 0) {
    out->log = strdup(err);
    return LK_FAIL_NATIVE(LIGHTOS_COMPILE_FAILED, "cuda", "", 0, "kernel source: %s", err);
  }
  const char* options = src->options ? src->options : "";
  uint8_t key[32];
  lk_cu_key(c, arch, options, text, len, key);
  CUmodule module = NULL;
  CUlibrary library = NULL;
  bool hit = false;
  void* image = NULL;
  size_t size = 0;
  if (lk_cache_load(key, &image, &size)) {
    CUresult r = lk_cu_load(api, image, &library, &module);
    free(image);
    image = NULL;
    if (r == CUDA_SUCCESS) {
      hit = true;
    } else {
      s = lk_cu_check_lost(c);
      if (s) {
        free(text);
        return s;
      }
      LK_LOG_DEBUG("cached CUDA binary rejected (%s): rebuilding", lk_cuda_error_name(r));
      module = NULL;
    }
  }
  if (!hit) {
    s = lk_cuda_compile_source(text, len, arch, options, &image, &size, &out->log);
    if (!s) {
      CUresult r = lk_cu_load(api, image, &library, &module);
      if (r) {
        char what[96];
        snprintf(what, sizeof what, "loading the %s built for %s", arch[0] == 's' ? "cubin" : "PTX",
                 arch);
        s = lk_cu_fail(c, r, "cuModuleLoadData", what);
      } else {
        lk_cache_store(key, image, size);
      }
      free(image);
    }
  }
  free(text);
  if (s) return s;
  lk_cu_program_t* p = calloc(1, sizeof *p);
  if (!p) {
    if (library) api->cuLibraryUnload(library);
    else api->cuModuleUnload(module);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a program");
  }
  p->base.vtbl = &lk_cu_program_vtbl;
  p->base.context = hc;
  p->ctx = c;
  p->library = library;
  p->module = module;
  pthread_mutex_init(&p->lock, NULL);
  out->program = &p->base;
  out->from_cache = hit;
  return LIGHTOS_SUCCESS;
}

/* ---- launches ------------------------------------------------------------------ */

/* Work-group size when the caller gave none: GPU shapes (256, 16x16,
 * 8x8x4) within the kernel's limit, no bigger than the range (rounded to a
 * power of two), as the OpenCL backend picks them. */
static void lk_cu_pick_local(const lk_cmd_t* c, size_t max_threads, const int max_block[3],
                             size_t local[3]) {
  static const size_t shape[3][3] = {{256, 1, 1}, {16, 16, 1}, {8, 8, 4}};
  const size_t* s = shape[c->u.launch.work_dim - 1];
  for (int d = 0; d < 3; ++d) {
    local[d] = s[d];
    while (local[d] > 1 && local[d] > (size_t)max_block[d]) local[d] /= 2;
  }
  while (local[0] * local[1] * local[2] > max_threads) {
    int d = local[0] >= local[1] ? 0 : 1;
    if (local[d] == 1) d = 2;
    if (local[d] == 1) break;
    local[d] /= 2;
  }
  for (int d = 0; d < 3; ++d)
    while (local[d] > 1 && local[d] / 2 >= c->u.launch.global[d]) local[d] /= 2;
}

lightos_status_t lk_cu_launch(lk_cu_context_t* c, CUstream stream, const lk_cmd_t* cmd) {
  const lk_cu_kernel_t* k = cmd->u.launch.hal_kernel;
  const lk_cu_device_t* d = c->device;
  size_t local[3];
  if (cmd->u.launch.local[0]) {
    for (int i = 0; i < 3; ++i) local[i] = cmd->u.launch.local[i];
  } else {
    lk_cu_pick_local(cmd, (size_t)k->max_threads, d->max_block, local);
  }
  size_t threads = local[0] * local[1] * local[2];
  if (threads > (size_t)k->max_threads)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "local size %zux%zux%zu (%zu items) exceeds the limit of kernel '%s' on %s "
                   "(%d items, set by its registers and shared memory)",
                   local[0], local[1], local[2], threads, k->sig->name, c->base.device->info.uri,
                   k->max_threads);
  for (int i = 0; i < 3; ++i)
    if (local[i] > (size_t)d->max_block[i])
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "local_size[%d] = %zu exceeds the block limit %d of %s in that dimension",
                     i, local[i], d->max_block[i], c->base.device->info.uri);
  size_t groups[3];
  for (int i = 0; i < 3; ++i) {
    /* Work-group sizes are mostly powers of two: a shift, not a division
     * (tens of cycles, on the path of every launch). */
    size_t g = cmd->u.launch.global[i], l = local[i];
    groups[i] = (l & (l - 1)) == 0 ? (g + l - 1) >> __builtin_ctzll(l) : (g + l - 1) / l;
  }
  lk_cu_range_t range = {{cmd->u.launch.global[0], cmd->u.launch.global[1],
                          cmd->u.launch.global[2]},
                         {0, 0, 0},
                         cmd->u.launch.work_dim,
                         0};
  /* The argument pointers were prepared by the runtime (arg_ptrs[i] points
   * at the captured value: a device address, a local offset or a scalar);
   * the hidden range goes last. */
  void* params[LK_KPARSE_MAX_ARGS + 1];
  uint32_t n = cmd->u.launch.num_args;
  if (n) memcpy(params, cmd->u.launch.arg_ptrs, n * sizeof *params);
  params[n] = &range;
  unsigned smem = (unsigned)cmd->u.launch.local_mem_bytes;
  const lk_cuda_api_t* api = c->api;
  CUresult r;
  if (groups[0] <= (size_t)d->max_grid[0] && groups[1] <= (size_t)d->max_grid[1] &&
      groups[2] <= (size_t)d->max_grid[2]) {
    r = api->cuLaunchKernel(k->launch, (unsigned)groups[0], (unsigned)groups[1], (unsigned)groups[2],
                            (unsigned)local[0], (unsigned)local[1], (unsigned)local[2], smem,
                            stream, params, NULL);
  } else {
    /* More groups than one grid holds: several launches, each told its
     * first group (lk_r.go). */
    r = CUDA_SUCCESS;
    for (size_t z = 0; z < groups[2] && !r; z += (size_t)d->max_grid[2])
      for (size_t y = 0; y < groups[1] && !r; y += (size_t)d->max_grid[1])
        for (size_t x = 0; x < groups[0] && !r; x += (size_t)d->max_grid[0]) {
          size_t gx = groups[0] - x, gy = groups[1] - y, gz = groups[2] - z;
          if (gx > (size_t)d->max_grid[0]) gx = (size_t)d->max_grid[0];
          if (gy > (size_t)d->max_grid[1]) gy = (size_t)d->max_grid[1];
          if (gz > (size_t)d->max_grid[2]) gz = (size_t)d->max_grid[2];
          range.go[0] = x;
          range.go[1] = y;
          range.go[2] = z;
          r = api->cuLaunchKernel(k->launch, (unsigned)gx, (unsigned)gy, (unsigned)gz,
                                  (unsigned)local[0], (unsigned)local[1], (unsigned)local[2],
                                  smem, stream, params, NULL);
        }
  }
  if (r) {
    char what[256];
    snprintf(what, sizeof what,
             "kernel '%s', global %zux%zux%zu, local %zux%zux%zu, %u bytes of local arguments",
             k->sig->name, cmd->u.launch.global[0], cmd->u.launch.global[1],
             cmd->u.launch.global[2], local[0], local[1], local[2], smem);
    return lk_cu_fail(c, r, "cuLaunchKernel", what);
  }
  return LIGHTOS_SUCCESS;
}
