/* Tests of the HIP backend (AMD GPUs through libamdhip64, the HIP column of
 * src/hal/cuda/cuda_symbols.h).  It is compile-checked only
 * (scripts/hip-compile-check.sh) and has never run on AMD hardware.
 *   - the backend "hip" is listed (id LIGHTOS_BACKEND_HIP);
 *   - without libamdhip64 it is unavailable with a reason naming it;
 *   - with libamdhip64 and no AMD GPU, the vendor table loads, and the
 *     backend is unavailable with "no AMD GPU (...)" and zero devices;
 *     the table has the required entries and NULL for calls HIP lacks;
 *   - with an AMD GPU it is unavailable too (not enabled yet), with the
 *     count in the reason;
 *   - no device of any backend is a HIP device; a probe via the registry
 *     is repeatable.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lightos/lightos.h>

#include "hal/cuda/cuda_loader.h"
#include "lk_test.h"

/* Whether the loader will find libamdhip64 (the same names, the same
 * LIGHTOS_HIP_LIBRARY override). */
static int lk_hip_present(void) {
  static const char* const names[] = {"libamdhip64.so.6", "libamdhip64.so.5", "libamdhip64.so"};
  const char* env = getenv("LIGHTOS_HIP_LIBRARY");
  if (env && env[0]) {
    void* h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
    if (h) dlclose(h);
    return h != NULL;
  }
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
    void* h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (h) {
      dlclose(h);
      return 1;
    }
  }
  return 0;
}

static void test_listed(void) {
  uint32_t nb = 0;
  LK_REQUIRE_OK(lightos_backend_count(&nb));
  int found = 0;
  for (uint32_t i = 0; i < nb; ++i) {
    lightos_backend_info_t b;
    LK_REQUIRE_OK(lightos_backend_get_info(i, &b));
    if (strcmp(b.name, "hip") != 0) continue;
    found++;
    LK_CHECK_INT((int)b.backend, (int)LIGHTOS_BACKEND_HIP);
    LK_CHECK_MSG(!b.available, "hip backend available (%u devices): expected unavailable",
                 b.device_count);
    LK_CHECK_INT((int)b.device_count, 0);
    LK_CHECK_MSG(b.reason[0] != '\0', "hip backend unavailable without a reason");
    if (lk_hip_present()) {
      LK_CHECK_MSG(strstr(b.reason, "AMD GPU") != NULL,
                   "libamdhip64 present: expected a reason about AMD GPUs, got \"%s\"", b.reason);
    } else {
      LK_CHECK_MSG(strstr(b.reason, "libamdhip64") != NULL,
                   "libamdhip64 absent: expected a reason naming it, got \"%s\"", b.reason);
    }
    printf("  hip: %s\n", b.reason);
  }
  LK_CHECK_INT(found, 1);
  uint32_t nd = 0;
  LK_REQUIRE_OK(lightos_device_count(&nd));
  for (uint32_t i = 0; i < nd; ++i) {
    lightos_device_t d;
    lightos_device_info_t in;
    LK_REQUIRE_OK(lightos_device_get(i, &d));
    LK_REQUIRE_OK(lightos_device_get_info(d, &in));
    LK_CHECK_MSG(in.backend != LIGHTOS_BACKEND_HIP, "device %s is a HIP device", in.uri);
  }
  lightos_device_t d = NULL;
  LK_CHECK_MSG(lightos_device_from_uri("hip:0", &d) != LIGHTOS_SUCCESS,
               "hip:0 resolved without an AMD GPU");
}

static void test_vendor_table(void) {
  char why[256] = "";
  const lk_cuda_api_t* api = lk_hip_api_get(why, sizeof why);
  if (!lk_hip_present()) {
    LK_CHECK(api == NULL);
    LK_CHECK_MSG(strstr(why, "libamdhip64") != NULL, "reason \"%s\"", why);
    lk_test_skip("libamdhip64 not installed (apt-get install libamdhip64-5)");
    return;
  }
  LK_REQUIRE(api != NULL);
  LK_CHECK_INT(api->hip, 1);
  LK_CHECK(api->cuInit && api->cuDeviceGetCount && api->cuLaunchKernel &&
           api->cuModuleLoadData && api->cuMemcpyHtoDAsync_v2 && api->hip_error_name);
  /* No ABI-compatible HIP twin: left NULL. */
  LK_CHECK(api->cuMemcpyPeerAsync == NULL && api->cuMemsetD2D32Async == NULL &&
           api->cuFuncSetAttribute == NULL && api->cuMemcpyAsync == NULL);
  LK_CHECK_STR(lk_cuda_api_error_name(api, 100), "hipErrorNoDevice");
  /* Attribute values differ from CUDA's. */
  LK_CHECK_INT(lk_cuda_attr_for(api, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK), 56);
  LK_CHECK_INT(lk_cuda_attr_for(api, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z), 28);
  LK_CHECK_INT(lk_cuda_attr_for(NULL, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z),
               CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z);
  int count = -1;
  CUresult r = api->cuInit(0);
  if (!r) r = api->cuDeviceGetCount(&count);
  printf("  hipInit/hipGetDeviceCount: %s, count %d\n", lk_cuda_api_error_name(api, r), count);
  LK_CHECK_MSG(r != 0 || count >= 0, "count %d", count);
  const lk_nvrtc_api_t* rtc = lk_hiprtc_api_get(why, sizeof why);
  LK_CHECK_MSG(rtc != NULL, "hiprtc: %s", why);
  if (rtc) {
    LK_CHECK(rtc->nvrtcCreateProgram && rtc->nvrtcGetCUBIN && rtc->nvrtcGetPTX == NULL);
    printf("  hiprtc %d.%d from %s\n", rtc->major, rtc->minor, rtc->path);
  }
}

int main(int argc, char** argv) {
  (void)argc;
  lk_t.program = argv[0];
  LK_RUN(test_listed);
  LK_RUN(test_vendor_table);
  return lk_test_finish();
}
