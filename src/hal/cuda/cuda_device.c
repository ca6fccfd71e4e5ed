/* CUDA backend: probe, devices, errors, contexts, memory, peer access. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "hal/cuda/cuda_backend.h"

#define LK_CU_MAX_DEVICES 64

/* ---- errors ----------------------------------------------------------------- */

static lightos_status_t lk_cu_status_of(CUresult err) {
  switch (err) {
    case CUDA_ERROR_OUT_OF_MEMORY: return LIGHTOS_OUT_OF_MEMORY;
    case CUDA_ERROR_INVALID_VALUE:
    case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES:
    case CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE: return LIGHTOS_INVALID_ARGUMENT;
    case CUDA_ERROR_NOT_INITIALIZED:
    case CUDA_ERROR_DEINITIALIZED:
    case CUDA_ERROR_STUB_LIBRARY:
    case CUDA_ERROR_INSUFFICIENT_DRIVER:
    case CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER:
    case CUDA_ERROR_DEVICE_UNAVAILABLE:
    case CUDA_ERROR_NO_DEVICE:
    case CUDA_ERROR_INVALID_DEVICE:
    case CUDA_ERROR_DEVICE_NOT_LICENSED:
    case CUDA_ERROR_NOT_PERMITTED:
    case CUDA_ERROR_SYSTEM_NOT_READY:
    case CUDA_ERROR_SYSTEM_DRIVER_MISMATCH:
    case CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE:
    case CUDA_ERROR_OPERATING_SYSTEM: return LIGHTOS_UNAVAILABLE;
    case CUDA_ERROR_INVALID_IMAGE:
    case CUDA_ERROR_NO_BINARY_FOR_GPU:
    case CUDA_ERROR_INVALID_PTX:
    case CUDA_ERROR_JIT_COMPILER_NOT_FOUND:
    case CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
    case CUDA_ERROR_JIT_COMPILATION_DISABLED:
    case CUDA_ERROR_INVALID_SOURCE: return LIGHTOS_COMPILE_FAILED;
    case CUDA_ERROR_NOT_FOUND:
    case CUDA_ERROR_FILE_NOT_FOUND: return LIGHTOS_NOT_FOUND;
    case CUDA_ERROR_NOT_READY: return LIGHTOS_NOT_READY;
    case CUDA_ERROR_TIMEOUT: return LIGHTOS_TIMEOUT;
    case CUDA_ERROR_NOT_SUPPORTED:
    case CUDA_ERROR_PEER_ACCESS_UNSUPPORTED:
    case CUDA_ERROR_TOO_MANY_PEERS: return LIGHTOS_UNSUPPORTED;
    default: return LIGHTOS_INTERNAL;
  }
}

/* Errors after which the context cannot be used any more. */
static bool lk_cu_sticky(CUresult err) {
  switch (err) {
    case CUDA_ERROR_ILLEGAL_ADDRESS:
    case CUDA_ERROR_LAUNCH_TIMEOUT:
    case CUDA_ERROR_CONTEXT_IS_DESTROYED:
    case CUDA_ERROR_ASSERT:
    case CUDA_ERROR_HARDWARE_STACK_ERROR:
    case CUDA_ERROR_ILLEGAL_INSTRUCTION:
    case CUDA_ERROR_MISALIGNED_ADDRESS:
    case CUDA_ERROR_INVALID_ADDRESS_SPACE:
    case CUDA_ERROR_INVALID_PC:
    case CUDA_ERROR_LAUNCH_FAILED:
    case CUDA_ERROR_ECC_UNCORRECTABLE:
    case CUDA_ERROR_NVLINK_UNCORRECTABLE:
    case CUDA_ERROR_CONTAINED: return true;
    default: return false;
  }
}

lightos_status_t lk_cu_fail(lk_cu_context_t* c, CUresult err, const char* call,
                            const char* what) {
  const char* name = lk_cuda_error_name(err);
  const char* text = lk_cuda_error_text(err);
  const char* uri = c ? c->base.device->info.uri : "cuda";
  lightos_status_t s = lk_cu_status_of(err);
  if (lk_cu_sticky(err)) {
    s = LIGHTOS_DEVICE_LOST;
    if (c) {
      pthread_mutex_lock(&c->lost_lock);
      if (!atomic_load(&c->lost)) {
        snprintf(c->lost_msg, sizeof c->lost_msg, "%s failed on %s (%s, %d): %s", call, uri,
                 name, (int)err, text);
        atomic_store(&c->lost, (int)LIGHTOS_DEVICE_LOST);
        LK_LOG_WARN("%s lost: %s", uri, c->lost_msg);
      }
      pthread_mutex_unlock(&c->lost_lock);
    }
  }
  return LK_FAIL_NATIVE(s, "cuda", name, err, "%s failed on %s (%s, %d)%s%s%s%s%s", call, uri, name,
                        (int)err, text[0] ? ": " : "", text,
                        s == LIGHTOS_DEVICE_LOST ? " (the device is lost for this context)" : "",
                        what && *what ? "; " : "", what ? what : "");
}

lightos_status_t lk_cu_check_lost(lk_cu_context_t* c) {
  if (!atomic_load_explicit(&c->lost, memory_order_acquire)) return LIGHTOS_SUCCESS;
  char msg[sizeof c->lost_msg];
  pthread_mutex_lock(&c->lost_lock);
  lk_strlcpy(msg, c->lost_msg, sizeof msg);
  pthread_mutex_unlock(&c->lost_lock);
  return LK_FAIL_NATIVE(LIGHTOS_DEVICE_LOST, "cuda", "", 0,
                        "device %s is lost after an earlier failure: %s",
                        c->base.device->info.uri, msg);
}

lightos_status_t lk_cu_make_current(lk_cu_context_t* c) {
  CUcontext cur = NULL;
  if (c->api->cuCtxGetCurrent(&cur) == CUDA_SUCCESS && cur == c->ctx) return LIGHTOS_SUCCESS;
  CUresult r = c->api->cuCtxSetCurrent(c->ctx);
  return r ? lk_cu_fail(c, r, "cuCtxSetCurrent", "") : LIGHTOS_SUCCESS;
}

/* ---- device properties --------------------------------------------------------- */

static int lk_cu_attr(const lk_cuda_api_t* api, CUdevice dev, CUdevice_attribute a, int def) {
  int v = 0;
  return api->cuDeviceGetAttribute(&v, a, dev) == CUDA_SUCCESS ? v : def;
}

/* The kernel module's version ("580.65.06"), or "" when unknown. */
static void lk_cu_kernel_driver(char* out, size_t cap) {
  out[0] = '\0';
  FILE* f = fopen("/proc/driver/nvidia/version", "r");
  if (!f) return;
  char line[256];
  if (fgets(line, sizeof line, f)) {
    const char* p = strstr(line, "Kernel Module");
    if (p) {
      p += strlen("Kernel Module");
      while (*p == ' ' || *p == '\t') p++;
      size_t n = 0;
      while (p[n] && ((p[n] >= '0' && p[n] <= '9') || p[n] == '.') && n + 1 < cap) n++;
      memcpy(out, p, n);
      out[n] = '\0';
    }
  }
  fclose(f);
}

static void lk_cu_fill_info(lk_cu_device_t* d, uint32_t index, const char* kmod) {
  const lk_cuda_api_t* api = d->api;
  lightos_device_info_t* in = &d->base.info;
  in->index = index;
  snprintf(in->uri, sizeof in->uri, "cuda:%u", index);
  if (api->cuDeviceGetName(in->name, (int)sizeof in->name, d->dev) != CUDA_SUCCESS)
    snprintf(in->name, sizeof in->name, "CUDA device %d", d->ordinal);
  in->name[sizeof in->name - 1] = '\0';
  lk_strlcpy(in->vendor, "NVIDIA Corporation", sizeof in->vendor);
  d->cc_major = lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0);
  d->cc_minor = lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0);
  snprintf(in->driver_version, sizeof in->driver_version, "sm_%d%d, CUDA %d.%d driver%s%s",
           d->cc_major, d->cc_minor, d->driver_version / 1000, (d->driver_version % 1000) / 10,
           kmod[0] ? " " : "", kmod);
  in->type = lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_INTEGRATED, 0)
                 ? LIGHTOS_DEVICE_TYPE_GPU_INTEGRATED
                 : LIGHTOS_DEVICE_TYPE_GPU_DISCRETE;
  size_t total = 0;
  if (api->cuDeviceTotalMem_v2(&total, d->dev) == CUDA_SUCCESS) in->global_mem_bytes = total;
  d->max_threads = lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1024);
  for (int i = 0; i < 3; ++i) {
    d->max_block[i] = lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X + i,
                                 i == 2 ? 64 : 1024);
    d->max_grid[i] = lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X + i,
                                i == 0 ? 0x7fffffff : 65535);
    if (d->max_grid[i] < 1) d->max_grid[i] = 1;
    if (d->max_block[i] < 1) d->max_block[i] = 1;
  }
  int smem = lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 48 << 10);
  int optin = lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 0);
  /* The opt-in maximum needs a function attribute per kernel: kernel_get
   * sets it (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES). */
  d->smem_optin = optin > smem ? optin : 0;
  in->local_mem_bytes = (uint64_t)(d->smem_optin ? d->smem_optin : smem);
  in->compute_units = (uint32_t)lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0);
  in->max_work_group_size = (size_t)d->max_threads;
  in->fp64 = true;
  in->fp16 = d->cc_major > 5 || (d->cc_major == 5 && d->cc_minor >= 3);
  /* Host-visible buffers are pinned, mapped host memory (cuMemHostAlloc
   * with DEVICEMAP), reachable by kernels through unified addressing. */
  in->host_visible_memory = lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY, 0) &&
                            lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 0);
  d->pools = lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, 0) != 0 &&
             api->cuMemAllocAsync && api->cuMemFreeAsync;
  /* PCI bus id, lowercase "0000:3b:00.0" (as the OpenCL NVIDIA view
   * reports it, for de-duplication). */
  char bus[64] = "";
  unsigned dom = 0, b = 0, dv = 0, fn = 0;
  if (api->cuDeviceGetPCIBusId(bus, (int)sizeof bus, d->dev) == CUDA_SUCCESS &&
      sscanf(bus, "%x:%x:%x.%x", &dom, &b, &dv, &fn) == 4) {
    snprintf(in->pci_bus_id, sizeof in->pci_bus_id, "%04x:%02x:%02x.%x", dom, b, dv, fn);
  } else {
    int pb = lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, -1);
    int pd = lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, -1);
    int pdom = lk_cu_attr(api, d->dev, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, 0);
    if (pb >= 0 && pd >= 0)
      snprintf(in->pci_bus_id, sizeof in->pci_bus_id, "%04x:%02x:%02x.0", (unsigned)pdom,
               (unsigned)pb, (unsigned)pd);
  }
  /* The UUID, for logs. */
  CUuuid u;
  if (api->cuDeviceGetUuid_v2 && api->cuDeviceGetUuid_v2(&u, d->dev) == CUDA_SUCCESS) {
    const unsigned char* x = (const unsigned char*)u.bytes;
    snprintf(d->uuid, sizeof d->uuid,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", x[0], x[1],
             x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10], x[11], x[12], x[13], x[14],
             x[15]);
  }
  LK_LOG_INFO("%s: %s, %s, PCI %s, %s", in->uri, in->name, in->driver_version,
              in->pci_bus_id[0] ? in->pci_bus_id : "?", d->uuid[0] ? d->uuid : "no uuid");
}

/* ---- contexts and memory ---------------------------------------------------------- */

/* Allocation kinds, in the low bits of lk_hal_mem_t.native (allocations
 * are at least 256-byte aligned). */
#define LK_CU_MEM_PLAIN 0u
#define LK_CU_MEM_POOL 1u
#define LK_CU_MEM_HOST 2u
#define LK_CU_MEM_KIND(native) ((unsigned)((native) & 3u))
#define LK_CU_MEM_PTR(native) ((CUdeviceptr)((native) & ~(uintptr_t)3u))

static void lk_cu_context_destroy(lk_hal_context_t* hc) {
  lk_cu_context_t* c = (lk_cu_context_t*)hc;
  lightos_status_t cur = lk_cu_make_current(c);
  if (c->alloc_stream) {
    if (!cur) c->api->cuStreamSynchronize(c->alloc_stream);
    c->api->cuStreamDestroy_v2(c->alloc_stream);
  }
  c->api->cuDevicePrimaryCtxRelease_v2(c->device->dev);
  pthread_mutex_destroy(&c->lost_lock);
  free(c);
}

static lightos_status_t lk_cu_mem_alloc(lk_hal_context_t* hc, size_t size, uint32_t flags,
                                        lk_hal_mem_t* out) {
  lk_cu_context_t* c = (lk_cu_context_t*)hc;
  const lk_cuda_api_t* api = c->api;
  lightos_status_t s = lk_cu_check_lost(c);
  if (!s) s = lk_cu_make_current(c);
  if (s) return s;
  char what[96];
  snprintf(what, sizeof what, "allocating %zu bytes", size);
  CUdeviceptr d = 0;
  CUresult r;
  if (flags & LIGHTOS_BUFFER_HOST_VISIBLE) {
    void* p = NULL;
    r = api->cuMemHostAlloc(&p, size, CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP);
    if (r) return lk_cu_fail(c, r, "cuMemHostAlloc", what);
    r = api->cuMemHostGetDevicePointer_v2(&d, p, 0);
    if (r) {
      api->cuMemFreeHost(p);
      return lk_cu_fail(c, r, "cuMemHostGetDevicePointer", what);
    }
    out->host_ptr = p;
    out->device_ptr = (void*)(uintptr_t)d;
    out->native = (uintptr_t)d | LK_CU_MEM_HOST;
    return LIGHTOS_SUCCESS;
  }
  if (atomic_load(&c->use_pool)) {
    /* The stream-ordered pool, synchronised before the memory is handed
     * out, so any stream may use it at once. */
    r = api->cuMemAllocAsync(&d, size, c->alloc_stream);
    if (r == CUDA_ERROR_OUT_OF_MEMORY && !api->cuStreamSynchronize(c->alloc_stream)) {
      /* Frees still pending in the stream go back to the pool first. */
      r = api->cuMemAllocAsync(&d, size, c->alloc_stream);
    }
    if (!r) {
      r = api->cuStreamSynchronize(c->alloc_stream);
      if (r) {
        api->cuMemFreeAsync(d, c->alloc_stream);
        return lk_cu_fail(c, r, "cuStreamSynchronize", what);
      }
      out->host_ptr = NULL;
      out->device_ptr = (void*)(uintptr_t)d;
      out->native = (uintptr_t)d | LK_CU_MEM_POOL;
      return LIGHTOS_SUCCESS;
    }
    if (r != CUDA_ERROR_NOT_SUPPORTED) return lk_cu_fail(c, r, "cuMemAllocAsync", what);
    atomic_store(&c->use_pool, false);
    LK_LOG_INFO("%s: stream-ordered allocation unsupported, using cuMemAlloc", hc->device->info.uri);
  }
  r = api->cuMemAlloc_v2(&d, size);
  if (r) return lk_cu_fail(c, r, "cuMemAlloc", what);
  out->host_ptr = NULL;
  out->device_ptr = (void*)(uintptr_t)d;
  out->native = (uintptr_t)d | LK_CU_MEM_PLAIN;
  return LIGHTOS_SUCCESS;
}

static void lk_cu_mem_free(lk_hal_context_t* hc, lk_hal_mem_t* mem) {
  lk_cu_context_t* c = (lk_cu_context_t*)hc;
  const lk_cuda_api_t* api = c->api;
  if (!mem->native) return;
  (void)lk_cu_make_current(c);
  /* Commands keep their buffers referenced until they completed on the
   * device, so nothing uses the memory any more. */
  switch (LK_CU_MEM_KIND(mem->native)) {
    case LK_CU_MEM_HOST: api->cuMemFreeHost(mem->host_ptr); break;
    case LK_CU_MEM_POOL: api->cuMemFreeAsync(LK_CU_MEM_PTR(mem->native), c->alloc_stream); break;
    default: api->cuMemFree_v2(LK_CU_MEM_PTR(mem->native)); break;
  }
  mem->native = 0;
  mem->device_ptr = NULL;
  mem->host_ptr = NULL;
}

static const lk_hal_context_vtbl_t lk_cu_context_vtbl = {
    .destroy = lk_cu_context_destroy,
    .mem_alloc = lk_cu_mem_alloc,
    .mem_free = lk_cu_mem_free,
    .queue_create = lk_cu_queue_create,
    .program_build = lk_cu_program_build,
};

bool lk_cuda_is_context(const lk_hal_context_t* hc) {
  return hc && hc->vtbl == &lk_cu_context_vtbl;
}

static lightos_status_t lk_cu_context_create(lk_hal_device_t* hd, uint32_t flags,
                                             lk_hal_context_t** out) {
  lk_cu_device_t* d = (lk_cu_device_t*)hd;
  const lk_cuda_api_t* api = d->api;
  lk_cu_context_t* c = calloc(1, sizeof *c);
  if (!c) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a context");
  c->base.vtbl = &lk_cu_context_vtbl;
  c->base.device = hd;
  c->device = d;
  c->api = api;
  pthread_mutex_init(&c->lost_lock, NULL);
  CUresult r = api->cuDevicePrimaryCtxRetain(&c->ctx, d->dev);
  if (r) {
    lightos_status_t s = lk_cu_fail(NULL, r, "cuDevicePrimaryCtxRetain", hd->info.uri);
    pthread_mutex_destroy(&c->lost_lock);
    free(c);
    return s;
  }
  lightos_status_t s = lk_cu_make_current(c);
  if (!s) {
    r = api->cuStreamCreate(&c->alloc_stream, CU_STREAM_NON_BLOCKING);
    if (r) s = lk_cu_fail(c, r, "cuStreamCreate", "the allocation stream");
  }
  if (s) {
    api->cuDevicePrimaryCtxRelease_v2(d->dev);
    pthread_mutex_destroy(&c->lost_lock);
    free(c);
    return s;
  }
  atomic_store(&c->use_pool, d->pools && lk_env_flag("LIGHTOS_CUDA_POOL", true));
  *out = &c->base;
  return LIGHTOS_SUCCESS;
}

lightos_status_t lk_cuda_peer_access(lk_hal_context_t* ha, lk_hal_context_t* hb, bool enable,
                                     bool* out_can) {
  if (!lk_cuda_is_context(ha) || !lk_cuda_is_context(hb))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "peer access: %s and %s are not both CUDA contexts",
                   ha ? ha->device->info.uri : "NULL", hb ? hb->device->info.uri : "NULL");
  if (!out_can) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "out_can is NULL");
  lk_cu_context_t* a = (lk_cu_context_t*)ha;
  lk_cu_context_t* b = (lk_cu_context_t*)hb;
  *out_can = false;
  if (a->device == b->device) {
    *out_can = true; /* the same device: nothing to enable */
    return LIGHTOS_SUCCESS;
  }
  int can = 0;
  CUresult r = a->api->cuDeviceCanAccessPeer(&can, a->device->dev, b->device->dev);
  if (r) return lk_cu_fail(a, r, "cuDeviceCanAccessPeer", b->base.device->info.uri);
  *out_can = can != 0;
  if (!can || !enable) return LIGHTOS_SUCCESS;
  lightos_status_t s = lk_cu_make_current(a);
  if (s) return s;
  r = a->api->cuCtxEnablePeerAccess(b->ctx, 0);
  if (r && r != CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED)
    return lk_cu_fail(a, r, "cuCtxEnablePeerAccess", b->base.device->info.uri);
  return LIGHTOS_SUCCESS;
}

/* ---- probe ------------------------------------------------------------------------ */

static const lk_hal_device_vtbl_t lk_cu_device_vtbl = {.context_create = lk_cu_context_create};

static lightos_status_t lk_cu_probe(lk_hal_device_t*** out_devices, uint32_t* out_count,
                                    char* reason, size_t cap) {
  const lk_cuda_api_t* api = lk_cuda_api_get(reason, cap);
  if (!api) return LIGHTOS_UNAVAILABLE;
  CUresult r = api->cuInit(0);
  if (r) {
    snprintf(reason, cap, "cuInit failed: %s (%d)%s%s", lk_cuda_error_name(r), (int)r,
             lk_cuda_error_text(r)[0] ? ": " : "", lk_cuda_error_text(r));
    return LIGHTOS_UNAVAILABLE;
  }
  int version = 0, count = 0;
  api->cuDriverGetVersion(&version);
  r = api->cuDeviceGetCount(&count);
  if (r || count <= 0) {
    snprintf(reason, cap, "no CUDA device (cuDeviceGetCount: %s, %d device(s))",
             lk_cuda_error_name(r), count);
    return LIGHTOS_UNAVAILABLE;
  }
  if (count > LK_CU_MAX_DEVICES) count = LK_CU_MAX_DEVICES;
  lk_hal_device_t** list = calloc((size_t)count, sizeof *list);
  if (!list) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory probing CUDA");
  char kmod[64];
  lk_cu_kernel_driver(kmod, sizeof kmod);
  uint32_t n = 0;
  for (int i = 0; i < count; ++i) {
    CUdevice dev;
    if (api->cuDeviceGet(&dev, i) != CUDA_SUCCESS) continue;
    lk_cu_device_t* d = calloc(1, sizeof *d);
    if (!d) break;
    d->base.vtbl = &lk_cu_device_vtbl;
    d->api = api;
    d->dev = dev;
    d->ordinal = i;
    d->driver_version = version;
    lk_cu_fill_info(d, n, kmod);
    list[n++] = &d->base;
  }
  if (n == 0) {
    free(list);
    snprintf(reason, cap, "%d CUDA device(s) reported but none could be opened", count);
    return LIGHTOS_UNAVAILABLE;
  }
  *out_devices = list;
  *out_count = n;
  return LIGHTOS_SUCCESS;
}

const lk_hal_backend_t lk_cuda_backend = {
    .abi_version = LK_HAL_ABI_VERSION,
    .name = "cuda",
    .id = LIGHTOS_BACKEND_CUDA,
    .probe = lk_cu_probe,
};

/* ---- HIP (AMD GPUs): the same driver-API calls through the HIP vendor table --------- */

/* The HIP probe loads libamdhip64 through the HIP column of cuda_symbols.h
 * (lk_hip_api_get) and enumerates AMD GPUs.  Kernels for AMD GPUs are
 * compiled in CI only (scripts/hip-compile-check.sh: the HIP prelude with
 * hipcc --genco for gfx90a and gfx1100); the context/queue/program path has
 * never run on AMD hardware, so devices found are reported, not opened. */
static lightos_status_t lk_hip_probe(lk_hal_device_t*** out_devices, uint32_t* out_count,
                                     char* reason, size_t cap) {
  (void)out_devices;
  (void)out_count;
  const lk_cuda_api_t* api = lk_hip_api_get(reason, cap);
  if (!api) return LIGHTOS_UNAVAILABLE;
  int count = 0;
  const char* call = "hipInit";
  CUresult r = api->cuInit(0);
  if (!r) call = "hipGetDeviceCount", r = api->cuDeviceGetCount(&count);
  if (r || count <= 0) {
    snprintf(reason, cap, "no AMD GPU (%s: %s, %d device(s))", call,
             lk_cuda_api_error_name(api, r), r ? 0 : count);
    return LIGHTOS_UNAVAILABLE;
  }
  char name[128] = "";
  CUdevice dev = 0;
  if (api->cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
      api->cuDeviceGetName(name, (int)sizeof name, dev) != CUDA_SUCCESS)
    lk_strlcpy(name, "?", sizeof name);
  name[sizeof name - 1] = '\0';
  snprintf(reason, cap,
           "%d AMD GPU(s) found (%s), but the HIP backend is compile-checked only and has "
           "never run on AMD hardware: not enabled",
           count, name);
  return LIGHTOS_UNAVAILABLE;
}

const lk_hal_backend_t lk_hip_backend = {
    .abi_version = LK_HAL_ABI_VERSION,
    .name = "hip",
    .id = LIGHTOS_BACKEND_HIP,
    .probe = lk_hip_probe,
};
