/* The lightos command-line tool.
 *   lightos info       backends (found and skipped, with the reason),
 *                      devices and their properties, and what ANY picks
 *   lightos selftest   the conformance suite on every device found
 *   lightos topo [--devices URI,URI,...]
 *                      NUMA/PCI placement of the devices, the links between
 *                      them, and the ring order the collectives use
 *   lightos version
 *   lightos codegen --target cuda|hip|opencl|cpu FILE.cl   (developer, not in
 *                      the usage text) prints the source a backend compiles
 *                      for a kernel file: prelude + rewritten kernels
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lightos/lightos.h>

#include "comm/topo.h"
#include "kernels/cl_codegen.h"
#include "kernels/cpu_codegen.h"
#include "kernels/kparse.h"
#include "kernels/preludes.h"

/* The HIP prelude (src/kernels/prelude_hip.h, embedded like the others):
 * prepended to the CUDA prelude for AMD GPUs. */
extern const char lk_prelude_hip[];

int lk_conformance_run(void);
#ifdef LK_NO_CONFORMANCE
int lk_conformance_run(void) {
  fprintf(stderr, "lightos: this build has no conformance suite\n");
  return 1;
}
#endif

static const char* lk_type_name(lightos_device_type_t t) {
  switch (t) {
    case LIGHTOS_DEVICE_TYPE_CPU: return "CPU";
    case LIGHTOS_DEVICE_TYPE_GPU_DISCRETE: return "discrete GPU";
    case LIGHTOS_DEVICE_TYPE_GPU_INTEGRATED: return "integrated GPU";
    case LIGHTOS_DEVICE_TYPE_ACCELERATOR: return "accelerator";
  }
  return "?";
}

static int lk_fail(const char* what) {
  const lightos_error_info_t* e = lightos_last_error();
  fprintf(stderr, "lightos: %s: %s: %s\n", what, lightos_status_string(e->status), e->message);
  return 1;
}

static int lk_cmd_info(void) {
  uint32_t nb = 0, nd = 0;
  if (lightos_backend_count(&nb)) return lk_fail("backends");
  printf("LightOS %s\n\nBackends:\n", lightos_version_string());
  for (uint32_t i = 0; i < nb; ++i) {
    lightos_backend_info_t b;
    lightos_backend_get_info(i, &b);
    if (b.available)
      printf("  %-8s available, %u device(s)\n", b.name, b.device_count);
    else
      printf("  %-8s skipped: %s\n", b.name, b.reason);
  }
  if (lightos_device_count(&nd)) return lk_fail("devices");
  printf("\nDevices:\n");
  for (uint32_t i = 0; i < nd; ++i) {
    lightos_device_t d;
    lightos_device_info_t in;
    int64_t score = 0;
    lightos_device_get(i, &d);
    lightos_device_get_info(d, &in);
    lightos_device_score(d, &score);
    printf("  [%u] %s  %s\n", i, in.uri, in.name);
    printf("      backend %s, vendor %s, type %s, driver %s\n", in.backend_name, in.vendor,
           lk_type_name(in.type), in.driver_version);
    printf("      memory %.1f GiB, local memory %llu KiB, compute units %u, max work-group %zu\n",
           (double)in.global_mem_bytes / (1u << 30), (unsigned long long)(in.local_mem_bytes >> 10),
           in.compute_units, in.max_work_group_size);
    printf("      fp16 %s, fp64 %s, host-visible memory %s, PCI bus id %s, score %lld\n",
           in.fp16 ? "yes" : "no", in.fp64 ? "yes" : "no", in.host_visible_memory ? "yes" : "no",
           in.pci_bus_id[0] ? in.pci_bus_id : "n/a", (long long)score);
  }
  char why[4096];
  lightos_device_explain_selection(LIGHTOS_DEVICE_ANY, why, sizeof why, NULL);
  printf("\nDevice selection (LIGHTOS_DEVICE_ANY):\n%s", why);
  return 0;
}

static char* lk_read_file(const char* path, size_t* out_len) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char* buf = malloc(cap + 1);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    char* nb = realloc(buf, 2 * cap + 1);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb, cap *= 2;
  }
  int bad = ferror(f);
  fclose(f);
  if (!buf || bad) {
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  *out_len = n;
  return buf;
}

static int lk_cmd_codegen(int argc, char** argv) {
  const char* target = NULL;
  const char* file = NULL;
  for (int i = 2; i < argc; ++i) {
    if (!strcmp(argv[i], "--target") && i + 1 < argc)
      target = argv[++i];
    else if (!strncmp(argv[i], "--target=", 9))
      target = argv[i] + 9;
    else if (!file)
      file = argv[i];
    else
      file = NULL, i = argc; /* two files: usage error */
  }
  if (!target || !file ||
      (strcmp(target, "cuda") && strcmp(target, "hip") && strcmp(target, "opencl") &&
       strcmp(target, "cpu"))) {
    fprintf(stderr, "usage: lightos codegen --target cuda|hip|opencl|cpu FILE.cl\n");
    return 2;
  }
  size_t len = 0;
  char* src = lk_read_file(file, &len);
  if (!src) {
    fprintf(stderr, "lightos codegen: cannot read \"%s\"\n", file);
    return 1;
  }
  char err[512] = "";
  lk_kparse_result_t parsed;
  memset(&parsed, 0, sizeof parsed);
  if (lk_kparse(src, len, &parsed, err, sizeof err) != 0) {
    fprintf(stderr, "lightos codegen: %s: %s\n", file, err);
    free(src);
    return 1;
  }
  char* out = NULL;
  size_t out_len = 0;
  int rc;
  if (!strcmp(target, "cpu")) {
    rc = lk_cpu_codegen(src, len, &parsed, lk_prelude_cpu, &out, &out_len, err, sizeof err);
  } else if (!strcmp(target, "opencl")) {
    rc = lk_cl_codegen(src, len, &parsed, lk_prelude_opencl, &out, &out_len, err, sizeof err);
  } else if (!strcmp(target, "cuda")) {
    rc = lk_cuda_codegen(src, len, &parsed, lk_prelude_cuda, &out, &out_len, err, sizeof err);
  } else {
    size_t a = strlen(lk_prelude_hip), b = strlen(lk_prelude_cuda);
    char* prelude = malloc(a + b + 2);
    rc = -1;
    if (prelude) {
      memcpy(prelude, lk_prelude_hip, a);
      prelude[a] = '\n';
      memcpy(prelude + a + 1, lk_prelude_cuda, b + 1);
      rc = lk_cuda_codegen(src, len, &parsed, prelude, &out, &out_len, err, sizeof err);
      free(prelude);
    } else {
      snprintf(err, sizeof err, "out of memory");
    }
  }
  lk_kparse_free(&parsed);
  free(src);
  if (rc != 0) {
    fprintf(stderr, "lightos codegen: %s: %s\n", file, err);
    return 1;
  }
  fwrite(out, 1, out_len, stdout);
  free(out);
  return ferror(stdout) ? 1 : 0;
}

/* lightos topo [--devices URI,URI,...]: every device, or the listed ones
 * (in that order: rank i is the i-th; a device may be listed twice). */
static int lk_cmd_topo(int argc, char** argv) {
  const char* list = NULL;
  for (int i = 2; i < argc; ++i) {
    if (!strcmp(argv[i], "--devices") && i + 1 < argc) {
      list = argv[++i];
    } else if (!strncmp(argv[i], "--devices=", 10)) {
      list = argv[i] + 10;
    } else {
      fprintf(stderr, "usage: lightos topo [--devices URI,URI,...]\n");
      return 2;
    }
  }
  uint32_t n = 0;
  lightos_device_t* devs = NULL;
  if (list) {
    size_t cap = 1;
    for (const char* p = list; *p; ++p) cap += *p == ',';
    devs = calloc(cap, sizeof *devs);
    if (!devs) {
      fprintf(stderr, "lightos topo: out of memory\n");
      return 1;
    }
    for (const char* p = list; *p;) {
      size_t len = strcspn(p, ",");
      char uri[64];
      if (len == 0 || len >= sizeof uri) {
        fprintf(stderr, "lightos topo: bad device URI \"%.*s\" in --devices\n", (int)len, p);
        free(devs);
        return 2;
      }
      memcpy(uri, p, len);
      uri[len] = '\0';
      if (lightos_device_from_uri(uri, &devs[n])) {
        free(devs);
        return lk_fail(uri);
      }
      n++;
      p += len;
      if (*p == ',') p++;
    }
    if (n == 0) {
      fprintf(stderr, "lightos topo: --devices lists no device\n");
      free(devs);
      return 2;
    }
  } else {
    if (lightos_device_count(&n)) return lk_fail("devices");
    devs = calloc(n ? n : 1, sizeof *devs);
    if (!devs) {
      fprintf(stderr, "lightos topo: out of memory\n");
      return 1;
    }
    for (uint32_t i = 0; i < n; ++i)
      if (lightos_device_get(i, &devs[i])) {
        free(devs);
        return lk_fail("devices");
      }
  }
  lk_topo_t* t = NULL;
  if (lk_topo_discover(devs, n, &t)) {
    free(devs);
    return lk_fail("topology");
  }
  free(devs);
  int rc = lk_topo_print(stdout, t) ? lk_fail("topology") : 0;
  lk_topo_free(t);
  return rc;
}

int main(int argc, char** argv) {
  const char* cmd = argc > 1 ? argv[1] : "info";
  if (!strcmp(cmd, "codegen")) return lk_cmd_codegen(argc, argv);
  if (!strcmp(cmd, "info")) return lk_cmd_info();
  if (!strcmp(cmd, "selftest")) return lk_conformance_run() ? 1 : 0;
  if (!strcmp(cmd, "topo")) return lk_cmd_topo(argc, argv);
  if (!strcmp(cmd, "version")) {
    printf("%s\n", lightos_version_string());
    return 0;
  }
  fprintf(stderr,
          "usage: lightos [info|selftest|topo|version]\n"
          "  info      backends, devices and their properties, and what ANY picks\n"
          "  selftest  the conformance suite on every device found\n"
          "  topo      [--devices URI,URI,...] NUMA/PCI placement, links, and the ring\n"
          "            order of the collectives\n");
  return !strcmp(cmd, "help") || !strcmp(cmd, "--help") ? 0 : 2;
}
