/* LightOS kernel language: the HIP prelude (AMD GPUs).
 *
 * For HIP the source is this prelude, then the CUDA prelude
 * (prelude_cuda.h), then the kernels rewritten by lk_cuda_codegen: HIP's
 * device language is CUDA's (blockIdx/threadIdx, __shared__, __syncthreads,
 * atomicAdd/CAS/..., __int_as_float, extern "C" __global__ kernels), so the
 * CUDA prelude serves both.  This part only adapts the compiler:
 *   - hiprtc includes the HIP runtime itself; hipcc (--genco, used by the
 *     compile check scripts/hip-compile-check.sh) gets it here;
 *   - unannotated functions become device functions (NVRTC's
 *     -default-device) through clang's force_cuda_host_device pragma;
 *   - HIP 5.x lacks signed 64-bit atomicMin/atomicMax (CAS loops here);
 *   - clang does not know NVRTC's `#pragma nv_diag_suppress`, and the
 *     prelude redefines a few macros (INT_MAX ...) that HIP's headers
 *     already define with the same values.
 * Status: compiled for gfx90a and gfx1100 in CI, never run on AMD hardware.
 */
#ifndef LIGHTOS_PRELUDE_HIP_H
#define LIGHTOS_PRELUDE_HIP_H 1

#if !defined(__HIPCC_RTC__)
#include <hip/hip_runtime.h>
#endif

#pragma clang diagnostic ignored "-Wunknown-pragmas"
#pragma clang diagnostic ignored "-Wmacro-redefined"

#define LIGHTOS_TARGET_HIP 1

/* HIP 5.x has atomicMin/atomicMax for unsigned 64-bit only: the signed
 * ones are compare-and-swap loops (the CUDA prelude uses these names). */
__device__ static inline long long lk_hip_atomic_min64_(long long* p, long long v) {
  unsigned long long* u = (unsigned long long*)p;
  unsigned long long old = *u, seen;
  while ((long long)old > v && (seen = atomicCAS(u, old, (unsigned long long)v)) != old) old = seen;
  return (long long)old;
}
__device__ static inline long long lk_hip_atomic_max64_(long long* p, long long v) {
  unsigned long long* u = (unsigned long long*)p;
  unsigned long long old = *u, seen;
  while ((long long)old < v && (seen = atomicCAS(u, old, (unsigned long long)v)) != old) old = seen;
  return (long long)old;
}
__device__ static inline unsigned long long lk_hip_atomic_min64_(unsigned long long* p,
                                                                 unsigned long long v) {
  return atomicMin(p, v);
}
__device__ static inline unsigned long long lk_hip_atomic_max64_(unsigned long long* p,
                                                                 unsigned long long v) {
  return atomicMax(p, v);
}
#define LK_ATOMIC_MIN64_ lk_hip_atomic_min64_
#define LK_ATOMIC_MAX64_ lk_hip_atomic_max64_

/* NVRTC's -default-device: the kernel source's unannotated functions
 * (helpers such as lk_math.cl's) must be device functions.  clang makes
 * every unannotated function from here on __host__ __device__; only the
 * device side is ever compiled. */
#pragma clang force_cuda_host_device begin

#endif
