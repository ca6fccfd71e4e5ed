/* libFuzzer target for the program-build path: arbitrary bytes as kernel
 * source through lightos_program_create + lightos_program_build on the CPU
 * device, then kernel lookup and argument introspection for every kernel.
 * Anything may fail with a status; nothing may crash, leak or hang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lightos/lightos.h>

static lightos_context_t ctx;

int LLVMFuzzerInitialize(int* argc, char*** argv);
int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)argc;
  (void)argv;
  /* Compiling every valid input would make the fuzzer crawl: the cache
   * keeps repeated inputs cheap. */
  if (lightos_context_create(LIGHTOS_DEVICE_BACKEND_CPU, &ctx) != LIGHTOS_SUCCESS) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 4096) return 0;
  char* src = malloc(size);
  memcpy(src, data, size);
  lightos_program_t prog = NULL;
  if (lightos_program_create(ctx, src, size, &prog) == LIGHTOS_SUCCESS) {
    lightos_status_t s = lightos_program_build(prog, "-w");
    char log[256];
    lightos_program_build_log(prog, log, sizeof log, NULL);
    if (s == LIGHTOS_SUCCESS) {
      lightos_program_info_t info;
      lightos_program_get_info(prog, &info);
      /* Kernel names are not exposed by index; probe a common one. */
      lightos_kernel_t k;
      if (lightos_kernel_create(prog, "k", &k) == LIGHTOS_SUCCESS) {
        uint32_t n = 0;
        lightos_kernel_get_arg_count(k, &n);
        for (uint32_t i = 0; i < n; ++i) {
          lightos_arg_info_t ai;
          lightos_kernel_get_arg_info(k, i, &ai);
        }
        lightos_kernel_release(k);
      }
    }
    lightos_program_release(prog);
  }
  free(src);
  return 0;
}
