/* CPU backend: probe, devices, contexts, memory. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/util.h"
#include "hal/cpu/cpu_abi.h"
#include "hal/cpu/cpu_backend.h"

#define LK_CPU_MAX_DEVICES 64
#define LK_CPU_MAX_WG 4096
#define LK_CPU_LOCAL_MEM (256u * 1024u)

static unsigned lk_cpu_cores(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return (unsigned)n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1;
}

/* "model name" and "vendor_id" from /proc/cpuinfo where there is one. */
static void lk_cpu_identify(char* name, size_t name_cap, char* vendor, size_t vendor_cap) {
  lk_strlcpy(name, "Host CPU", name_cap);
  lk_strlcpy(vendor, "Unknown", vendor_cap);
  FILE* f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  bool got_name = false, got_vendor = false;
  while ((!got_name || !got_vendor) && fgets(line, sizeof line, f)) {
    char* colon = strchr(line, ':');
    if (!colon) continue;
    char* val = colon + 1;
    while (*val == ' ' || *val == '\t') val++;
    val[strcspn(val, "\n")] = '\0';
    if (!got_name && (!strncmp(line, "model name", 10) || !strncmp(line, "Model", 5))) {
      lk_strlcpy(name, val, name_cap);
      got_name = true;
    } else if (!got_vendor && (!strncmp(line, "vendor_id", 9) || !strncmp(line, "CPU implementer", 15))) {
      if (!strcmp(val, "GenuineIntel")) val = "Intel";
      else if (!strcmp(val, "AuthenticAMD")) val = "AMD";
      else if (!strcmp(val, "0x41")) val = "ARM";
      lk_strlcpy(vendor, val, vendor_cap);
      got_vendor = true;
    }
  }
  fclose(f);
}

static void lk_cpu_context_destroy(lk_hal_context_t* c) { free(c); }

static lightos_status_t lk_cpu_mem_alloc(lk_hal_context_t* c, size_t size, uint32_t flags,
                                         lk_hal_mem_t* out) {
  void* p = NULL;
  size_t align = size >= (1u << 20) ? 4096 : 64;
  if (posix_memalign(&p, align, lk_align_up(size, align)) != 0 || !p)
    return LK_FAIL_NATIVE(LIGHTOS_OUT_OF_MEMORY, "cpu", "ENOMEM", 12,
                          "size %zu: out of host memory on %s", size, c->device->info.uri);
  out->device_ptr = p;
  out->host_ptr = p;
  out->native = 0;
  return LIGHTOS_SUCCESS;
}

static void lk_cpu_mem_free(lk_hal_context_t* c, lk_hal_mem_t* mem) {
  free(mem->device_ptr);
  mem->device_ptr = mem->host_ptr = NULL;
}

static const lk_hal_context_vtbl_t lk_cpu_context_vtbl = {
    .destroy = lk_cpu_context_destroy,
    .mem_alloc = lk_cpu_mem_alloc,
    .mem_free = lk_cpu_mem_free,
    .queue_create = lk_cpu_queue_create,
    .program_build = lk_cpu_program_build,
};

static lightos_status_t lk_cpu_context_create(lk_hal_device_t* d, uint32_t flags,
                                              lk_hal_context_t** out) {
  lk_cpu_device_t* dev = (lk_cpu_device_t*)d;
  pthread_mutex_lock(&dev->pool_lock);
  if (!dev->pool) dev->pool = lk_pool_create(dev->threads);
  bool ok = dev->pool != NULL;
  pthread_mutex_unlock(&dev->pool_lock);
  if (!ok)
    return LK_FAIL_NATIVE(LIGHTOS_OUT_OF_MEMORY, "cpu", "", 0,
                          "could not start %u worker threads for %s", dev->threads, d->info.uri);
  lk_cpu_context_t* c = calloc(1, sizeof *c);
  if (!c) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a context");
  c->base.vtbl = &lk_cpu_context_vtbl;
  c->base.device = d;
  c->device = dev;
  *out = &c->base;
  return LIGHTOS_SUCCESS;
}

static const lk_hal_device_vtbl_t lk_cpu_device_vtbl = {.context_create = lk_cpu_context_create};

/* LIGHTOS_CPU_DEVICES=N shows the CPU as N devices sharing out its cores;
 * LIGHTOS_CPU_THREADS sets the threads of each. */
static lightos_status_t lk_cpu_probe(lk_hal_device_t*** out_devices, uint32_t* out_count,
                                     char* reason, size_t cap) {
  unsigned cores = lk_cpu_cores();
  long ndev = lk_env_long("LIGHTOS_CPU_DEVICES", 1);
  if (ndev < 1) ndev = 1;
  if (ndev > LK_CPU_MAX_DEVICES) ndev = LK_CPU_MAX_DEVICES;
  long fixed = lk_env_long("LIGHTOS_CPU_THREADS", 0);
  if (fixed > 1024) fixed = 1024;
  long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  uint64_t mem = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : (1ull << 30);

  lk_hal_device_t** list = calloc((size_t)ndev, sizeof *list);
  if (!list) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory probing the CPU");
  for (long i = 0; i < ndev; ++i) {
    lk_cpu_device_t* d = calloc(1, sizeof *d);
    if (!d) {
      for (long j = 0; j < i; ++j) free(list[j]);
      free(list);
      return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory probing the CPU");
    }
    /* Cores shared out: the first (cores % N) devices get one more. */
    long threads = fixed >= 1 ? fixed : (long)(cores / (unsigned)ndev) + (i < (long)(cores % (unsigned)ndev));
    if (threads < 1) threads = 1;
    d->base.vtbl = &lk_cpu_device_vtbl;
    d->threads = (unsigned)threads;
    pthread_mutex_init(&d->pool_lock, NULL);
    lightos_device_info_t* in = &d->base.info;
    in->index = (uint32_t)i;
    snprintf(in->uri, sizeof in->uri, "cpu:%ld", i);
    lk_cpu_identify(in->name, sizeof in->name, in->vendor, sizeof in->vendor);
    snprintf(in->driver_version, sizeof in->driver_version,
             "LightOS CPU backend %d.%d.%d (kernel ABI %d)", LIGHTOS_VERSION_MAJOR,
             LIGHTOS_VERSION_MINOR, LIGHTOS_VERSION_PATCH, LK_CPU_ABI_VERSION);
    in->type = LIGHTOS_DEVICE_TYPE_CPU;
    in->global_mem_bytes = mem;
    in->local_mem_bytes = LK_CPU_LOCAL_MEM;
    in->compute_units = (uint32_t)threads;
    in->max_work_group_size = LK_CPU_MAX_WG;
    in->fp16 = false;
    in->fp64 = true;
    in->host_visible_memory = true;
    list[i] = &d->base;
  }
  (void)reason;
  (void)cap;
  *out_devices = list;
  *out_count = (uint32_t)ndev;
  return LIGHTOS_SUCCESS;
}

const lk_hal_backend_t lk_cpu_backend = {
    .abi_version = LK_HAL_ABI_VERSION,
    .name = "cpu",
    .id = LIGHTOS_BACKEND_CPU,
    .probe = lk_cpu_probe,
};
