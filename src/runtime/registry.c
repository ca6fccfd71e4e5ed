/* The device registry: probes the backends once, owns the device objects,
 * selects devices by kind, URI and score. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/util.h"
#include "runtime/runtime.h"

static const lk_hal_backend_t* const lk_backends[] = {
    &lk_cpu_backend,
    &lk_opencl_backend,
    &lk_cuda_backend,
    &lk_hip_backend,
};
#define LK_NUM_BACKENDS (sizeof lk_backends / sizeof lk_backends[0])

typedef struct lk_backend_state {
  lightos_backend_info_t info;
  char reason[256];
} lk_backend_state_t;

static pthread_once_t lk_reg_once = PTHREAD_ONCE_INIT;
static lk_backend_state_t lk_bstate[LK_NUM_BACKENDS];
static lk_device_t** lk_devices;
static uint32_t lk_ndevices;
static lightos_status_t lk_reg_status = LIGHTOS_SUCCESS;

static bool lk_same_hardware(const lightos_device_info_t* a, const lightos_device_info_t* b) {
  if (a->pci_bus_id[0] && b->pci_bus_id[0]) return !strcasecmp(a->pci_bus_id, b->pci_bus_id);
  return a->type == b->type && !strcmp(a->name, b->name) && !strcmp(a->vendor, b->vendor);
}

/* An OpenCL view of a device that a native backend also shows is marked
 * same_as the native one (native preferred, both reachable by URI). */
static void lk_link_duplicates(void) {
  for (uint32_t i = 0; i < lk_ndevices; ++i) {
    lk_device_t* d = lk_devices[i];
    if (d->hal->info.backend != LIGHTOS_BACKEND_OPENCL) continue;
    for (uint32_t j = 0; j < lk_ndevices; ++j) {
      lk_device_t* n = lk_devices[j];
      lightos_backend_t b = n->hal->info.backend;
      if (b == LIGHTOS_BACKEND_OPENCL || b == LIGHTOS_BACKEND_CPU) continue;
      if (lk_same_hardware(&d->hal->info, &n->hal->info)) d->same_as = n;
    }
  }
}

/* LIGHTOS_DISABLE_BACKENDS=opencl,cuda skips backends (never the CPU). */
static bool lk_backend_disabled(const char* name) {
  const char* list = getenv("LIGHTOS_DISABLE_BACKENDS");
  if (!list || !strcmp(name, "cpu")) return false;
  size_t n = strlen(name);
  for (const char* p = list; *p;) {
    size_t len = strcspn(p, ", ");
    if (len == n && !strncmp(p, name, n)) return true;
    p += len;
    while (*p == ',' || *p == ' ') p++;
  }
  return false;
}

static void lk_registry_build(void) {
  for (size_t b = 0; b < LK_NUM_BACKENDS; ++b) {
    const lk_hal_backend_t* be = lk_backends[b];
    lk_backend_state_t* st = &lk_bstate[b];
    st->info.backend = be->id;
    st->info.name = be->name;
    st->info.reason = st->reason;
    lk_hal_device_t** devs = NULL;
    uint32_t n = 0;
    if (lk_backend_disabled(be->name)) {
      snprintf(st->reason, sizeof st->reason, "disabled by LIGHTOS_DISABLE_BACKENDS");
      continue;
    }
    lightos_status_t s = be->probe(&devs, &n, st->reason, sizeof st->reason);
    if (s != LIGHTOS_SUCCESS) {
      if (!st->reason[0]) lk_strlcpy(st->reason, lightos_last_error()->message, sizeof st->reason);
      LK_LOG_INFO("backend %s unavailable: %s", be->name, st->reason);
      continue;
    }
    lk_device_t** grown = realloc(lk_devices, (lk_ndevices + n) * sizeof *grown);
    if (!grown && n) {
      lk_reg_status = LIGHTOS_OUT_OF_MEMORY;
      return;
    }
    lk_devices = grown;
    for (uint32_t i = 0; i < n; ++i) {
      lk_device_t* d = calloc(1, sizeof *d);
      if (!d || lk_object_init(&d->obj, LK_OBJ_DEVICE, NULL) != LIGHTOS_SUCCESS) {
        free(d);
        lk_reg_status = LIGHTOS_OUT_OF_MEMORY;
        return;
      }
      d->hal = devs[i];
      d->hal->backend = be;
      d->hal->info.backend = be->id;
      d->hal->info.backend_name = be->name;
      d->registry_index = lk_ndevices;
      lk_devices[lk_ndevices++] = d;
    }
    free(devs);
    st->info.available = true;
    st->info.device_count = n;
    lk_strlcpy(st->reason, "", sizeof st->reason);
  }
  lk_link_duplicates();
}

lightos_status_t lk_registry_init(void) {
  pthread_once(&lk_reg_once, lk_registry_build);
  if (lk_reg_status != LIGHTOS_SUCCESS)
    return LK_FAIL(lk_reg_status, "device registry could not be built (out of memory)");
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_backend_count(uint32_t* out_count) {
  LK_CHECK_OUT(out_count, "out_count");
  lightos_status_t s = lk_registry_init();
  if (s) return s;
  *out_count = (uint32_t)LK_NUM_BACKENDS;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_backend_get_info(uint32_t index,
                                                      lightos_backend_info_t* out_info) {
  LK_CHECK_OUT(out_info, "out_info");
  lightos_status_t s = lk_registry_init();
  if (s) return s;
  if (index >= LK_NUM_BACKENDS)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "index %u is out of range (%u backends)",
                   index, (unsigned)LK_NUM_BACKENDS);
  *out_info = lk_bstate[index].info;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_device_count(uint32_t* out_count) {
  LK_CHECK_OUT(out_count, "out_count");
  lightos_status_t s = lk_registry_init();
  if (s) return s;
  *out_count = lk_ndevices;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_device_get(uint32_t index, lightos_device_t* out_device) {
  LK_CHECK_OUT(out_device, "out_device");
  lightos_status_t s = lk_registry_init();
  if (s) return s;
  if (index >= lk_ndevices)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "index %u is out of range (%u devices)", index,
                   lk_ndevices);
  *out_device = LK_HANDLE(lk_devices[index]);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_device_get_info(lightos_device_t device,
                                                     lightos_device_info_t* out_info) {
  lk_device_t* d = NULL;
  LK_RESOLVE(d, device, LK_OBJ_DEVICE, "device");
  LK_CHECK_OUT(out_info, "out_info");
  *out_info = d->hal->info;
  return LIGHTOS_SUCCESS;
}

/* The documented score (docs/device-selection.md). */
static int64_t lk_score(const lk_device_t* d) {
  const lightos_device_info_t* in = &d->hal->info;
  if (d->same_as) return -1;
  int64_t s = 0;
  switch (in->type) {
    case LIGHTOS_DEVICE_TYPE_GPU_DISCRETE: s = 4000; break;
    case LIGHTOS_DEVICE_TYPE_ACCELERATOR: s = 3000; break;
    case LIGHTOS_DEVICE_TYPE_GPU_INTEGRATED: s = 2000; break;
    case LIGHTOS_DEVICE_TYPE_CPU: s = 1000; break;
  }
  switch (in->backend) {
    case LIGHTOS_BACKEND_CUDA:
    case LIGHTOS_BACKEND_HIP: s += 300; break;
    case LIGHTOS_BACKEND_CPU: s += 200; break;
    case LIGHTOS_BACKEND_OPENCL: break;
  }
  uint64_t gib = in->global_mem_bytes >> 30;
  s += (int64_t)(in->compute_units < 255 ? in->compute_units : 255);
  s += (int64_t)(gib < 255 ? gib : 255);
  return s;
}

LIGHTOS_API lightos_status_t lightos_device_score(lightos_device_t device, int64_t* out_score) {
  lk_device_t* d = NULL;
  LK_RESOLVE(d, device, LK_OBJ_DEVICE, "device");
  LK_CHECK_OUT(out_score, "out_score");
  *out_score = lk_score(d);
  return LIGHTOS_SUCCESS;
}

static bool lk_kind_matches(lightos_device_kind_t kind, const lk_device_t* d) {
  const lightos_device_info_t* in = &d->hal->info;
  switch (kind) {
    case LIGHTOS_DEVICE_ANY: return true;
    case LIGHTOS_DEVICE_CPU: return in->type == LIGHTOS_DEVICE_TYPE_CPU;
    case LIGHTOS_DEVICE_GPU:
      return in->type == LIGHTOS_DEVICE_TYPE_GPU_DISCRETE ||
             in->type == LIGHTOS_DEVICE_TYPE_GPU_INTEGRATED;
    case LIGHTOS_DEVICE_ACCELERATOR: return in->type == LIGHTOS_DEVICE_TYPE_ACCELERATOR;
    case LIGHTOS_DEVICE_BACKEND_CPU: return in->backend == LIGHTOS_BACKEND_CPU;
    case LIGHTOS_DEVICE_BACKEND_OPENCL: return in->backend == LIGHTOS_BACKEND_OPENCL;
    case LIGHTOS_DEVICE_BACKEND_CUDA: return in->backend == LIGHTOS_BACKEND_CUDA;
    case LIGHTOS_DEVICE_BACKEND_HIP: return in->backend == LIGHTOS_BACKEND_HIP;
  }
  return false;
}

static bool lk_kind_valid(lightos_device_kind_t kind) {
  return (kind >= LIGHTOS_DEVICE_ANY && kind <= LIGHTOS_DEVICE_ACCELERATOR) ||
         (kind >= LIGHTOS_DEVICE_BACKEND_CPU && kind <= LIGHTOS_DEVICE_BACKEND_HIP);
}

static const char* lk_kind_name(lightos_device_kind_t kind) {
  switch (kind) {
    case LIGHTOS_DEVICE_ANY: return "any";
    case LIGHTOS_DEVICE_CPU: return "cpu (any backend)";
    case LIGHTOS_DEVICE_GPU: return "gpu";
    case LIGHTOS_DEVICE_ACCELERATOR: return "accelerator";
    case LIGHTOS_DEVICE_BACKEND_CPU: return "cpu backend";
    case LIGHTOS_DEVICE_BACKEND_OPENCL: return "opencl backend";
    case LIGHTOS_DEVICE_BACKEND_CUDA: return "cuda backend";
    case LIGHTOS_DEVICE_BACKEND_HIP: return "hip backend";
  }
  return "?";
}

/* Best device for a kind: per-backend kinds take the backend's first
 * device; the others take the highest score (first on ties), skipping
 * duplicates of native devices. */
static lk_device_t* lk_pick(lightos_device_kind_t kind) {
  lk_device_t* best = NULL;
  int64_t best_score = -1;
  bool per_backend = kind >= LIGHTOS_DEVICE_BACKEND_CPU;
  for (uint32_t i = 0; i < lk_ndevices; ++i) {
    lk_device_t* d = lk_devices[i];
    if (!lk_kind_matches(kind, d)) continue;
    if (per_backend) return d;
    int64_t sc = lk_score(d);
    if (sc > best_score) {
      best = d;
      best_score = sc;
    }
  }
  return best;
}

static const lk_backend_state_t* lk_backend_by_name(const char* name, size_t len) {
  for (size_t b = 0; b < LK_NUM_BACKENDS; ++b)
    if (strlen(lk_bstate[b].info.name) == len && !strncmp(lk_bstate[b].info.name, name, len))
      return &lk_bstate[b];
  return NULL;
}

static lightos_status_t lk_from_uri(const char* uri, const char* what, lk_device_t** out) {
  if (!strcasecmp(uri, "any") || !strcasecmp(uri, "gpu") || !strcasecmp(uri, "accelerator")) {
    lightos_device_kind_t k = !strcasecmp(uri, "any")   ? LIGHTOS_DEVICE_ANY
                              : !strcasecmp(uri, "gpu") ? LIGHTOS_DEVICE_GPU
                                                        : LIGHTOS_DEVICE_ACCELERATOR;
    *out = lk_pick(k);
    if (!*out) return LK_FAIL(LIGHTOS_NOT_FOUND, "%s \"%s\": no such device", what, uri);
    return LIGHTOS_SUCCESS;
  }
  const char* colon = strchr(uri, ':');
  size_t blen = colon ? (size_t)(colon - uri) : strlen(uri);
  unsigned long index = 0;
  if (colon) {
    char* end = NULL;
    if (!colon[1] || colon[1] == '-' || colon[1] == '+')
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "%s \"%s\": expected BACKEND[:INDEX], e.g. \"cuda:0\"", what, uri);
    index = strtoul(colon + 1, &end, 10);
    if (*end || index > 0xffffffffu)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "%s \"%s\": the index \"%s\" is not a number", what, uri, colon + 1);
  }
  const lk_backend_state_t* b = lk_backend_by_name(uri, blen);
  if (!b) {
    bool known = (blen == 4 && !strncmp(uri, "cuda", 4)) || (blen == 3 && !strncmp(uri, "hip", 3)) ||
                 (blen == 6 && !strncmp(uri, "opencl", 6));
    return LK_FAIL(known ? LIGHTOS_NOT_FOUND : LIGHTOS_INVALID_ARGUMENT,
                   known ? "%s \"%s\": backend \"%.*s\" is not built into this library"
                         : "%s \"%s\": unknown backend \"%.*s\" (expected cpu, opencl, cuda, hip, "
                           "any or gpu)",
                   what, uri, (int)blen, uri);
  }
  if (!b->info.available)
    return LK_FAIL(LIGHTOS_NOT_FOUND, "%s \"%s\": backend %s is unavailable: %s", what, uri,
                   b->info.name, b->info.reason);
  uint32_t seen = 0;
  for (uint32_t i = 0; i < lk_ndevices; ++i) {
    if (lk_devices[i]->hal->info.backend != b->info.backend) continue;
    if (seen++ == index) {
      *out = lk_devices[i];
      return LIGHTOS_SUCCESS;
    }
  }
  return LK_FAIL(LIGHTOS_NOT_FOUND, "%s \"%s\": backend %s has %u device(s)", what, uri,
                 b->info.name, b->info.device_count);
}

LIGHTOS_API lightos_status_t lightos_device_from_uri(const char* uri,
                                                     lightos_device_t* out_device) {
  if (!uri) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "uri is NULL");
  LK_CHECK_OUT(out_device, "out_device");
  lightos_status_t s = lk_registry_init();
  if (s) return s;
  lk_device_t* d = NULL;
  s = lk_from_uri(uri, "uri", &d);
  if (s) return s;
  *out_device = LK_HANDLE(d);
  return LIGHTOS_SUCCESS;
}

/* lightos_device_select without output handling; honours LIGHTOS_DEVICE. */
static lightos_status_t lk_select(lightos_device_kind_t kind, lk_device_t** out) {
  if (!lk_kind_valid(kind))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "kind %d is not a lightos_device_kind_t", (int)kind);
  lightos_status_t s = lk_registry_init();
  if (s) return s;
  const char* env = getenv("LIGHTOS_DEVICE");
  if (kind == LIGHTOS_DEVICE_ANY && env && *env)
    return lk_from_uri(env, "LIGHTOS_DEVICE", out);
  *out = lk_pick(kind);
  if (!*out) return LK_FAIL(LIGHTOS_NOT_FOUND, "no %s device found", lk_kind_name(kind));
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_device_select(lightos_device_kind_t kind,
                                                   lightos_device_t* out_device) {
  LK_CHECK_OUT(out_device, "out_device");
  lk_device_t* d = NULL;
  lightos_status_t s = lk_select(kind, &d);
  if (s) return s;
  *out_device = LK_HANDLE(d);
  return LIGHTOS_SUCCESS;
}

lightos_status_t lk_device_select_internal(lightos_device_kind_t kind, lk_device_t** out);
lightos_status_t lk_device_select_internal(lightos_device_kind_t kind, lk_device_t** out) {
  return lk_select(kind, out);
}

lightos_status_t lk_device_from_uri_internal(const char* uri, lk_device_t** out);
lightos_status_t lk_device_from_uri_internal(const char* uri, lk_device_t** out) {
  lightos_status_t s = lk_registry_init();
  return s ? s : lk_from_uri(uri, "uri", out);
}

LIGHTOS_API lightos_status_t lightos_device_explain_selection(lightos_device_kind_t kind,
                                                              char* buf, size_t cap,
                                                              size_t* out_len) {
  if (!buf && cap) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "buf is NULL but cap is %zu", cap);
  if (!lk_kind_valid(kind))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "kind %d is not a lightos_device_kind_t", (int)kind);
  lightos_status_t s = lk_registry_init();
  if (s) return s;
  size_t len = 0;
  if (cap) buf[0] = '\0';
  lk_sbprintf(buf, cap, &len, "selection for %s: score = type (discrete GPU 4000, accelerator "
              "3000, integrated GPU 2000, CPU 1000) + API (CUDA/HIP 300, native CPU 200, "
              "OpenCL 0) + compute units (max 255) + GiB of memory (max 255)\n",
              lk_kind_name(kind));
  for (size_t b = 0; b < LK_NUM_BACKENDS; ++b)
    if (!lk_bstate[b].info.available)
      lk_sbprintf(buf, cap, &len, "  backend %s skipped: %s\n", lk_bstate[b].info.name,
                  lk_bstate[b].reason);
  for (uint32_t i = 0; i < lk_ndevices; ++i) {
    lk_device_t* d = lk_devices[i];
    const lightos_device_info_t* in = &d->hal->info;
    if (!lk_kind_matches(kind, d)) continue;
    if (d->same_as)
      lk_sbprintf(buf, cap, &len, "  %-10s %-40s not a candidate: same hardware as %s\n",
                  in->uri, in->name, d->same_as->hal->info.uri);
    else
      lk_sbprintf(buf, cap, &len, "  %-10s %-40s score %lld\n", in->uri, in->name,
                  (long long)lk_score(d));
  }
  const char* env = getenv("LIGHTOS_DEVICE");
  lk_device_t* pick = NULL;
  lightos_status_t ps = lk_select(kind, &pick);
  if (ps == LIGHTOS_SUCCESS && kind == LIGHTOS_DEVICE_ANY && env && *env)
    lk_sbprintf(buf, cap, &len, "picked %s: LIGHTOS_DEVICE=%s\n", pick->hal->info.uri, env);
  else if (ps == LIGHTOS_SUCCESS)
    lk_sbprintf(buf, cap, &len, "picked %s (%s): highest score%s\n", pick->hal->info.uri,
                pick->hal->info.name, kind >= LIGHTOS_DEVICE_BACKEND_CPU ? " (first of the backend)" : "");
  else
    lk_sbprintf(buf, cap, &len, "no device picked: %s\n", lightos_last_error()->message);
  if (out_len) *out_len = len + 1;
  return LIGHTOS_SUCCESS;
}
