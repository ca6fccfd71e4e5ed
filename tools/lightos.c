/* The lightos command-line tool.
 *   lightos info       backends (found and skipped, with the reason),
 *                      devices and their properties, and what ANY picks
 *   lightos selftest   the conformance suite on every device found
 *   lightos version
 */
#include <stdio.h>
#include <string.h>

#include <lightos/lightos.h>

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

int main(int argc, char** argv) {
  const char* cmd = argc > 1 ? argv[1] : "info";
  if (!strcmp(cmd, "info")) return lk_cmd_info();
  if (!strcmp(cmd, "selftest")) return lk_conformance_run() ? 1 : 0;
  if (!strcmp(cmd, "version")) {
    printf("%s\n", lightos_version_string());
    return 0;
  }
  fprintf(stderr,
          "usage: lightos [info|selftest|version]\n"
          "  info      backends, devices and their properties, and what ANY picks\n"
          "  selftest  the conformance suite on every device found\n");
  return !strcmp(cmd, "help") || !strcmp(cmd, "--help") ? 0 : 2;
}
