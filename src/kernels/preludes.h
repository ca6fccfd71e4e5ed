/* The kernel-language preludes, embedded in the library as C strings.
 *
 * Generated at build time by cmake/embed.cmake (lk_embed_text) from
 * src/kernels/prelude_cpu.h, src/kernels/prelude_opencl.h and
 * src/kernels/prelude_cuda.h; each array is
 * NUL-terminated and *_len is its length without the NUL.
 *   lk_prelude_cpu     prepended by the CPU code generator (cpu_codegen.h)
 *   lk_prelude_opencl  prepended to the source built for OpenCL devices
 *   lk_prelude_cuda    prepended to the source NVRTC builds for CUDA devices
 * The prelude text is part of the kernel binary-cache key.
 */
#ifndef LIGHTOS_KERNELS_PRELUDES_H
#define LIGHTOS_KERNELS_PRELUDES_H

#ifdef __cplusplus
extern "C" {
#endif

extern const char lk_prelude_cpu[];
extern const unsigned long lk_prelude_cpu_len;
extern const char lk_prelude_opencl[];
extern const unsigned long lk_prelude_opencl_len;
extern const char lk_prelude_hip[];
extern const unsigned long lk_prelude_hip_len;
extern const char lk_prelude_cuda[];
extern const unsigned long lk_prelude_cuda_len;

#ifdef __cplusplus
}
#endif
#endif
