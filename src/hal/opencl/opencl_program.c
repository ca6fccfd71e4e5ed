/* OpenCL programs: rewritten source (cl_codegen) built by the driver, the
 * binary cached through CL_PROGRAM_BINARIES; kernel launches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/kcache.h"
#include "core/sha256.h"
#include "core/util.h"
#include "hal/opencl/opencl_backend.h"
#include "kernels/cl_codegen.h"
#include "kernels/preludes.h"

typedef struct lk_cl_kernel {
  cl_kernel k;
  size_t wg_max;            /* CL_KERNEL_WORK_GROUP_SIZE */
  const lk_kernel_sig_t* sig;
  struct lk_cl_kernel* next;
} lk_cl_kernel_t;

typedef struct lk_cl_program {
  lk_hal_program_t base;
  lk_cl_context_t* ctx;
  cl_program prog;
  pthread_mutex_t lock;
  lk_cl_kernel_t* kernels;  /* every cl_kernel made from this program */
} lk_cl_program_t;

static char* lk_cl_build_log(lk_cl_context_t* c, cl_program p) {
  size_t n = 0;
  c->api->clGetProgramBuildInfo(p, c->device->id, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
  char* log = malloc(n + 1);
  if (!log) return NULL;
  if (c->api->clGetProgramBuildInfo(p, c->device->id, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS)
    n = 0;
  log[n] = '\0';
  return log;
}

/* The options the driver gets: the user's, the language version, and
 * correctly rounded division and sqrt where the device offers them (so
 * results match the CPU backend). */
static void lk_cl_options(lk_cl_context_t* c, const char* user, char* out, size_t cap) {
  cl_device_fp_config fp = 0;
  c->api->clGetDeviceInfo(c->device->id, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
  snprintf(out, cap, "%s%s%s", user, strstr(user, "-cl-std=") ? "" : " -cl-std=CL1.2",
           (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) ? " -cl-fp32-correctly-rounded-divide-sqrt"
                                                      : "");
}

static void lk_cl_key(lk_cl_context_t* c, const char* options, const char* text, size_t len,
                      uint8_t key[32]) {
  lk_sha256_t h;
  lk_sha256_init(&h);
  lk_sha256_update_str(&h, "lightos-opencl v1");
  lk_sha256_update_str(&h, c->device->platform_name);
  lk_sha256_update_str(&h, c->base.device->info.name);
  lk_sha256_update_str(&h, c->base.device->info.driver_version);
  lk_sha256_update_str(&h, options);
  lk_sha256_update(&h, text, len);
  lk_sha256_final(&h, key);
}

static void lk_cl_cache_binary(lk_cl_context_t* c, cl_program p, const uint8_t key[32]) {
  size_t size = 0;
  if (c->api->clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS ||
      size == 0)
    return;
  unsigned char* bin = malloc(size);
  if (!bin) return;
  if (c->api->clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS)
    lk_cache_store(key, bin, size);
  free(bin);
}

/* Builds from the cached binary; false when there is none or it fails. */
static bool lk_cl_from_cache(lk_cl_context_t* c, const uint8_t key[32], const char* options,
                             cl_program* out) {
  void* bin = NULL;
  size_t size = 0;
  if (!lk_cache_load(key, &bin, &size)) return false;
  cl_int err = CL_SUCCESS, bstatus = CL_SUCCESS;
  const unsigned char* bins[1] = {bin};
  cl_program p = c->api->clCreateProgramWithBinary(c->ctx, 1, &c->device->id, &size, bins,
                                                   &bstatus, &err);
  free(bin);
  if (!p) return false;
  if (err != CL_SUCCESS || bstatus != CL_SUCCESS ||
      c->api->clBuildProgram(p, 1, &c->device->id, options, NULL, NULL) != CL_SUCCESS) {
    c->api->clReleaseProgram(p);
    return false;
  }
  *out = p;
  return true;
}

static void lk_cl_program_destroy(lk_hal_program_t* hp) {
  lk_cl_program_t* p = (lk_cl_program_t*)hp;
  for (lk_cl_kernel_t *k = p->kernels, *next; k; k = next) {
    next = k->next;
    p->ctx->api->clReleaseKernel(k->k);
    free(k);
  }
  p->ctx->api->clReleaseProgram(p->prog);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

static lightos_status_t lk_cl_kernel_get(lk_hal_program_t* hp, const lk_kernel_sig_t* sig,
                                         void** out) {
  lk_cl_program_t* p = (lk_cl_program_t*)hp;
  lk_cl_kernel_t* k = calloc(1, sizeof *k);
  if (!k) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a kernel");
  cl_int err = CL_SUCCESS;
  k->k = p->ctx->api->clCreateKernel(p->prog, sig->name, &err);
  if (!k->k) {
    free(k);
    return lk_cl_fail(err, "clCreateKernel", sig->name);
  }
  k->sig = sig;
  k->wg_max = hp->context->device->info.max_work_group_size;
  p->ctx->api->clGetKernelWorkGroupInfo(k->k, p->ctx->device->id, CL_KERNEL_WORK_GROUP_SIZE,
                                        sizeof k->wg_max, &k->wg_max, NULL);
  pthread_mutex_lock(&p->lock);
  k->next = p->kernels;
  p->kernels = k;
  pthread_mutex_unlock(&p->lock);
  *out = k;
  return LIGHTOS_SUCCESS;
}

static const lk_hal_program_vtbl_t lk_cl_program_vtbl = {
    .destroy = lk_cl_program_destroy,
    .kernel_get = lk_cl_kernel_get,
};

static lightos_status_t lk_cl_compile(lk_cl_context_t* c, const char* text, size_t len,
                                      const char* options, cl_program* out, char** out_log) {
  cl_int err = CL_SUCCESS;
  const char* srcs[1] = {text};
  cl_program p = c->api->clCreateProgramWithSource(c->ctx, 1, srcs, &len, &err);
  if (!p) return lk_cl_fail(err, "clCreateProgramWithSource", "");
  err = c->api->clBuildProgram(p, 1, &c->device->id, options, NULL, NULL);
  if (err != CL_SUCCESS) {
    *out_log = lk_cl_build_log(c, p);
    c->api->clReleaseProgram(p);
    const char* log = *out_log ? *out_log : "";
    const char* e = strstr(log, "error");
    const char* line = e;
    while (line && line > log && line[-1] != '\n') line--;
    int n = line ? (int)strcspn(line, "\n") : 0;
    if (err == CL_BUILD_PROGRAM_FAILURE)
      return LK_FAIL_NATIVE(LIGHTOS_COMPILE_FAILED, "opencl", lk_opencl_error_name(err), err,
                            "kernel compilation failed: %.*s", n ? n : 18,
                            n ? line : "see the build log");
    return lk_cl_fail(err, "clBuildProgram", log);
  }
  *out_log = lk_cl_build_log(c, p);
  *out = p;
  return LIGHTOS_SUCCESS;
}

lightos_status_t lk_cl_program_build(lk_hal_context_t* hc, const lk_program_src_t* src,
                                     lk_hal_build_result_t* out) {
  lk_cl_context_t* c = (lk_cl_context_t*)hc;
  char* text = NULL;
  size_t len = 0;
  char err[512];
  if (lk_cl_codegen(src->source, src->length, src->sig, lk_prelude_opencl, &text, &len, err,
                    sizeof err) != 0) {
    out->log = strdup(err);
    return LK_FAIL_NATIVE(LIGHTOS_COMPILE_FAILED, "opencl", "", 0, "kernel source: %s", err);
  }
  char options[1024];
  lk_cl_options(c, src->options, options, sizeof options);
  uint8_t key[32];
  lk_cl_key(c, options, text, len, key);
  cl_program prog = NULL;
  lightos_status_t s = LIGHTOS_SUCCESS;
  /* PoCL 5 aborts the process (an assertion in pocl_binary.c) on some of
   * the program binaries it hands out, so they are not reused there; PoCL
   * keeps its own on-disk kernel cache instead. */
  bool reuse = strstr(c->device->platform_name, "Portable Computing Language") == NULL;
  bool hit = reuse && lk_cl_from_cache(c, key, options, &prog);
  if (!hit) {
    s = lk_cl_compile(c, text, len, options, &prog, &out->log);
    if (!s && reuse) lk_cl_cache_binary(c, prog, key);
  }
  free(text);
  if (s) return s;
  lk_cl_program_t* p = calloc(1, sizeof *p);
  if (!p) {
    c->api->clReleaseProgram(prog);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a program");
  }
  p->base.vtbl = &lk_cl_program_vtbl;
  p->base.context = hc;
  p->ctx = c;
  p->prog = prog;
  pthread_mutex_init(&p->lock, NULL);
  out->program = &p->base;
  out->from_cache = hit;
  return LIGHTOS_SUCCESS;
}

/* ---- launches ---------------------------------------------------------------- */

/* Work-group size when the caller gave none: GPU-like shapes within the
 * kernel's limit. */
static void lk_cl_pick_local(const lk_cmd_t* c, size_t wg_max, size_t local[3]) {
  static const size_t shape[3][3] = {{256, 1, 1}, {16, 16, 1}, {8, 8, 4}};
  const size_t* s = shape[c->u.launch.work_dim - 1];
  for (int d = 0; d < 3; ++d) local[d] = s[d];
  while (local[0] * local[1] * local[2] > wg_max) {
    int d = local[0] >= local[1] ? 0 : 1;
    if (local[d] == 1) d = 2;
    if (local[d] == 1) break;
    local[d] /= 2;
  }
  /* No bigger than the range itself (rounded to a power of two). */
  for (int d = 0; d < 3; ++d)
    while (local[d] > 1 && local[d] / 2 >= c->u.launch.global[d]) local[d] /= 2;
}

lightos_status_t lk_cl_enqueue_launch(lk_cl_context_t* c, cl_command_queue q, lk_cmd_t* cmd,
                                      cl_event* out_event) {
  const lk_opencl_api_t* api = c->api;
  lk_cl_kernel_t* k = cmd->u.launch.hal_kernel;
  size_t local[3], global[3];
  if (cmd->u.launch.local[0])
    for (int d = 0; d < 3; ++d) local[d] = cmd->u.launch.local[d];
  else
    lk_cl_pick_local(cmd, k->wg_max, local);
  for (int d = 0; d < 3; ++d)
    global[d] = (cmd->u.launch.global[d] + local[d] - 1) / local[d] * local[d];
  pthread_mutex_lock(&c->launch_lock);
  cl_uint slot = 0;
  cl_int err = CL_SUCCESS;
  for (uint32_t i = 0; i < cmd->u.launch.num_args && err == CL_SUCCESS; ++i) {
    const lk_karg_t* a = &k->sig->args[i];
    const lk_arg_value_t* v = &cmd->u.launch.values[i];
    if (a->kind == LK_KARG_GLOBAL_PTR || a->kind == LK_KARG_CONSTANT_PTR) {
      cl_mem m = (cl_mem)cmd->u.launch.mems[i].mem->native;
      cl_ulong off = cmd->u.launch.mems[i].offset;
      err = api->clSetKernelArg(k->k, slot++, sizeof m, &m);
      if (err == CL_SUCCESS) err = api->clSetKernelArg(k->k, slot++, sizeof off, &off);
    } else if (a->kind == LK_KARG_LOCAL_PTR) {
      /* The runtime packed local arguments at 64-byte aligned offsets;
       * OpenCL allocates each one itself. */
      size_t next = cmd->u.launch.local_mem_bytes;
      for (uint32_t j = i + 1; j < cmd->u.launch.num_args; ++j)
        if (k->sig->args[j].kind == LK_KARG_LOCAL_PTR) {
          next = cmd->u.launch.values[j].local_offset;
          break;
        }
      err = api->clSetKernelArg(k->k, slot++, next - v->local_offset, NULL);
    } else {
      size_t size = a->scalar_size ? a->scalar_size : sizeof v->bytes;
      err = api->clSetKernelArg(k->k, slot++, size, v->bytes);
    }
  }
  for (int d = 0; d < 3 && err == CL_SUCCESS; ++d) {
    cl_ulong gs = cmd->u.launch.global[d];
    err = api->clSetKernelArg(k->k, slot++, sizeof gs, &gs);
  }
  if (err == CL_SUCCESS)
    err = api->clEnqueueNDRangeKernel(q, k->k, cmd->u.launch.work_dim, NULL, global, local, 0, NULL,
                                      out_event);
  pthread_mutex_unlock(&c->launch_lock);
  if (err != CL_SUCCESS) {
    char what[192];
    snprintf(what, sizeof what, "kernel '%s', local size %zux%zux%zu (kernel limit %zu)",
             k->sig->name, local[0], local[1], local[2], k->wg_max);
    return lk_cl_fail(err, "clEnqueueNDRangeKernel", what);
  }
  return LIGHTOS_SUCCESS;
}
