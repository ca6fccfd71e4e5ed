/* OpenCL backend: probe, devices, contexts, memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/util.h"
#include "hal/opencl/opencl_backend.h"

#define LK_CL_MAX_DEVICES 64
#ifndef CL_DEVICE_PCI_SLOT_ID_NV
#define CL_DEVICE_PCI_SLOT_ID_NV 0x4009u
#endif

static const char* lk_cl_status_native(cl_int err) { return lk_opencl_error_name(err); }

lightos_status_t lk_cl_fail(cl_int err, const char* call, const char* what) {
  lightos_status_t s = LIGHTOS_INTERNAL;
  switch (err) {
    case CL_OUT_OF_HOST_MEMORY:
    case CL_OUT_OF_RESOURCES:
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: s = LIGHTOS_OUT_OF_MEMORY; break;
    case CL_INVALID_WORK_GROUP_SIZE:
    case CL_INVALID_WORK_ITEM_SIZE:
    case CL_INVALID_BUFFER_SIZE:
    case CL_INVALID_VALUE:
    case CL_INVALID_ARG_SIZE:
    case CL_INVALID_BUILD_OPTIONS: s = LIGHTOS_INVALID_ARGUMENT; break;
    case CL_BUILD_PROGRAM_FAILURE:
    case CL_COMPILE_PROGRAM_FAILURE: s = LIGHTOS_COMPILE_FAILED; break;
    case CL_DEVICE_NOT_AVAILABLE:
    case CL_COMPILER_NOT_AVAILABLE: s = LIGHTOS_UNAVAILABLE; break;
    case CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST: s = LIGHTOS_ABORTED; break;
    default: break;
  }
  return LK_FAIL_NATIVE(s, "opencl", lk_cl_status_native(err), err, "%s failed (%s, %d)%s%s", call,
                        lk_cl_status_native(err), (int)err, what && *what ? ": " : "",
                        what ? what : "");
}

static void lk_cl_str(const lk_opencl_api_t* api, cl_device_id d, cl_device_info what, char* out,
                      size_t cap) {
  out[0] = '\0';
  if (api->clGetDeviceInfo(d, what, cap, out, NULL) != CL_SUCCESS) out[0] = '\0';
  out[cap - 1] = '\0';
}

static bool lk_cl_has_ext(const char* exts, const char* name) {
  size_t n = strlen(name);
  for (const char* p = strstr(exts, name); p; p = strstr(p + 1, name))
    if ((p == exts || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return true;
  return false;
}

static void lk_cl_fill_info(lk_cl_device_t* d, uint32_t index) {
  const lk_opencl_api_t* api = d->api;
  lightos_device_info_t* in = &d->base.info;
  in->index = index;
  snprintf(in->uri, sizeof in->uri, "opencl:%u", index);
  lk_cl_str(api, d->id, CL_DEVICE_NAME, in->name, sizeof in->name);
  lk_cl_str(api, d->id, CL_DEVICE_VENDOR, in->vendor, sizeof in->vendor);
  char drv[64], ver[64];
  lk_cl_str(api, d->id, CL_DRIVER_VERSION, drv, sizeof drv);
  lk_cl_str(api, d->id, CL_DEVICE_VERSION, ver, sizeof ver);
  size_t len = 0;
  lk_sbprintf(in->driver_version, sizeof in->driver_version, &len, "%s, driver %s (%.40s)", ver,
              drv, d->platform_name);
  cl_device_type type = 0;
  cl_bool unified = CL_FALSE;
  api->clGetDeviceInfo(d->id, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  api->clGetDeviceInfo(d->id, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL);
  if (type & CL_DEVICE_TYPE_GPU)
    in->type = unified ? LIGHTOS_DEVICE_TYPE_GPU_INTEGRATED : LIGHTOS_DEVICE_TYPE_GPU_DISCRETE;
  else if (type & CL_DEVICE_TYPE_CPU)
    in->type = LIGHTOS_DEVICE_TYPE_CPU;
  else
    in->type = LIGHTOS_DEVICE_TYPE_ACCELERATOR;
  cl_ulong gmem = 0, lmem = 0;
  cl_uint cu = 0;
  size_t wg = 0;
  api->clGetDeviceInfo(d->id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
  api->clGetDeviceInfo(d->id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
  api->clGetDeviceInfo(d->id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
  api->clGetDeviceInfo(d->id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
  in->global_mem_bytes = gmem;
  in->local_mem_bytes = lmem;
  in->compute_units = cu;
  in->max_work_group_size = wg;
  char* exts = calloc(1, 16384);
  if (exts) {
    lk_cl_str(api, d->id, CL_DEVICE_EXTENSIONS, exts, 16384);
    in->fp64 = lk_cl_has_ext(exts, "cl_khr_fp64");
    in->fp16 = lk_cl_has_ext(exts, "cl_khr_fp16");
    if (lk_cl_has_ext(exts, "cl_nv_device_attribute_query")) {
      cl_uint bus = 0, slot = 0;
      if (api->clGetDeviceInfo(d->id, CL_DEVICE_PCI_BUS_ID_NV, sizeof bus, &bus, NULL) == CL_SUCCESS &&
          api->clGetDeviceInfo(d->id, CL_DEVICE_PCI_SLOT_ID_NV, sizeof slot, &slot, NULL) == CL_SUCCESS)
        snprintf(in->pci_bus_id, sizeof in->pci_bus_id, "0000:%02x:%02x.0", bus & 0xff,
                 slot & 0x1f); /* the NV slot id is the PCI device number */
    }
    free(exts);
  }
  /* Mapping is offered where device memory is host memory (CPUs,
   * integrated GPUs): the mapping then stays valid while kernels run. */
  in->host_visible_memory = unified == CL_TRUE;
}

/* ---- contexts and memory --------------------------------------------------- */

static void lk_cl_context_destroy(lk_hal_context_t* hc) {
  lk_cl_context_t* c = (lk_cl_context_t*)hc;
  if (c->ctx) c->api->clReleaseContext(c->ctx);
  pthread_mutex_destroy(&c->launch_lock);
  free(c);
}

static lightos_status_t lk_cl_mem_alloc(lk_hal_context_t* hc, size_t size, uint32_t flags,
                                        lk_hal_mem_t* out) {
  lk_cl_context_t* c = (lk_cl_context_t*)hc;
  cl_int err = CL_SUCCESS;
  bool visible = (flags & LIGHTOS_BUFFER_HOST_VISIBLE) != 0;
  cl_mem m = c->api->clCreateBuffer(c->ctx, CL_MEM_READ_WRITE | (visible ? CL_MEM_ALLOC_HOST_PTR : 0),
                                    size, NULL, &err);
  if (!m || err != CL_SUCCESS) return lk_cl_fail(err, "clCreateBuffer", hc->device->info.uri);
  out->native = (uintptr_t)m;
  out->device_ptr = NULL;
  out->host_ptr = NULL;
  if (visible) {
    /* A dedicated in-order queue maps the buffer once; it stays mapped
     * for its life (valid on unified-memory devices, the only ones that
     * report host-visible memory). */
    cl_command_queue q = c->api->clCreateCommandQueue(c->ctx, c->device->id, 0, &err);
    void* p = q ? c->api->clEnqueueMapBuffer(q, m, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, size, 0,
                                             NULL, NULL, &err)
                : NULL;
    if (q) c->api->clReleaseCommandQueue(q);
    if (!p) {
      c->api->clReleaseMemObject(m);
      return lk_cl_fail(err, "clEnqueueMapBuffer", "mapping a host-visible buffer");
    }
    out->host_ptr = p;
  }
  return LIGHTOS_SUCCESS;
}

static void lk_cl_mem_free(lk_hal_context_t* hc, lk_hal_mem_t* mem) {
  lk_cl_context_t* c = (lk_cl_context_t*)hc;
  /* Releasing a mapped buffer also drops its mapping. */
  if (mem->native) c->api->clReleaseMemObject((cl_mem)mem->native);
  mem->native = 0;
  mem->host_ptr = NULL;
}

static const lk_hal_context_vtbl_t lk_cl_context_vtbl = {
    .destroy = lk_cl_context_destroy,
    .mem_alloc = lk_cl_mem_alloc,
    .mem_free = lk_cl_mem_free,
    .queue_create = lk_cl_queue_create,
    .program_build = lk_cl_program_build,
};

static lightos_status_t lk_cl_context_create(lk_hal_device_t* hd, uint32_t flags,
                                             lk_hal_context_t** out) {
  lk_cl_device_t* d = (lk_cl_device_t*)hd;
  lk_cl_context_t* c = calloc(1, sizeof *c);
  if (!c) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a context");
  cl_int err = CL_SUCCESS;
  intptr_t props[] = {(intptr_t)CL_CONTEXT_PLATFORM, (intptr_t)d->platform, 0};
  c->ctx = d->api->clCreateContext((void*)props, 1, &d->id, NULL, NULL, &err);
  if (!c->ctx) {
    free(c);
    return lk_cl_fail(err, "clCreateContext", hd->info.uri);
  }
  c->base.vtbl = &lk_cl_context_vtbl;
  c->base.device = hd;
  c->device = d;
  c->api = d->api;
  pthread_mutex_init(&c->launch_lock, NULL);
  *out = &c->base;
  return LIGHTOS_SUCCESS;
}

static const lk_hal_device_vtbl_t lk_cl_device_vtbl = {.context_create = lk_cl_context_create};

/* LIGHTOS_OPENCL_PLATFORMS=NVIDIA,Intel keeps only platforms whose name
 * contains one of the words (unset: every platform). */
static bool lk_cl_platform_wanted(const char* name) {
  const char* list = getenv("LIGHTOS_OPENCL_PLATFORMS");
  if (!list || !*list) return true;
  for (const char* p = list; *p;) {
    size_t n = strcspn(p, ",");
    char word[128];
    if (n > 0 && n < sizeof word) {
      memcpy(word, p, n);
      word[n] = '\0';
      if (strstr(name, word)) return true;
    }
    p += n;
    if (*p == ',') p++;
  }
  return false;
}

static lightos_status_t lk_cl_probe(lk_hal_device_t*** out_devices, uint32_t* out_count,
                                    char* reason, size_t cap) {
  const lk_opencl_api_t* api = lk_opencl_api_get(reason, cap);
  if (!api) return LIGHTOS_UNAVAILABLE;
  cl_uint np = 0;
  cl_platform_id plats[16];
  cl_int err = api->clGetPlatformIDs(16, plats, &np);
  if (err != CL_SUCCESS || np == 0) {
    snprintf(reason, cap, "no OpenCL platform found (clGetPlatformIDs: %s)",
             lk_opencl_error_name(err));
    return LIGHTOS_UNAVAILABLE;
  }
  if (np > 16) np = 16;
  lk_hal_device_t** list = calloc(LK_CL_MAX_DEVICES, sizeof *list);
  if (!list) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory probing OpenCL");
  uint32_t n = 0;
  for (cl_uint p = 0; p < np && n < LK_CL_MAX_DEVICES; ++p) {
    cl_device_id ids[LK_CL_MAX_DEVICES];
    cl_uint nd = 0;
    if (api->clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, LK_CL_MAX_DEVICES, ids, &nd) != CL_SUCCESS)
      continue;
    if (nd > LK_CL_MAX_DEVICES) nd = LK_CL_MAX_DEVICES;
    char pname[128] = "";
    api->clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof pname, pname, NULL);
    pname[sizeof pname - 1] = '\0';
    if (!lk_cl_platform_wanted(pname)) continue;
    for (cl_uint i = 0; i < nd && n < LK_CL_MAX_DEVICES; ++i) {
      lk_cl_device_t* d = calloc(1, sizeof *d);
      if (!d) break;
      d->base.vtbl = &lk_cl_device_vtbl;
      d->api = api;
      d->platform = plats[p];
      d->id = ids[i];
      lk_strlcpy(d->platform_name, pname, sizeof d->platform_name);
      lk_cl_fill_info(d, n);
      list[n++] = &d->base;
    }
  }
  if (n == 0) {
    free(list);
    snprintf(reason, cap, "%u OpenCL platform(s) but no devices", np);
    return LIGHTOS_UNAVAILABLE;
  }
  *out_devices = list;
  *out_count = n;
  return LIGHTOS_SUCCESS;
}

const lk_hal_backend_t lk_opencl_backend = {
    .abi_version = LK_HAL_ABI_VERSION,
    .name = "opencl",
    .id = LIGHTOS_BACKEND_OPENCL,
    .probe = lk_cl_probe,
};
