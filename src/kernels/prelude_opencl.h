/* LightOS kernel language: the OpenCL prelude.
 *
 * Prepended to every program built for an OpenCL device (valid OpenCL C
 * 1.2).  The device compiler provides the language itself; this only adds
 * the LightOS macros (see docs/kernel-language.md):
 *   LIGHTOS_ITEMS        on a GPU every work-item runs the whole kernel, so
 *                        an item block is a one-trip loop (`continue` and
 *                        `break` leave it, as on the CPU);
 *   LIGHTOS_PRIVATE(T,n) a per-item variable: one element;
 *   LIGHTOS_P(n)         that element;
 * the target macros, fp64 and the 64-bit atomics (atom_*) when the device
 * has them, and strict floating point: no contraction of a*b+c into an fma,
 * and mad(a,b,c) computed as a*b+c (OpenCL's own mad may be fused or less
 * accurate), matching the CPU target.
 */
#ifndef LIGHTOS_PRELUDE_OPENCL_H
#define LIGHTOS_PRELUDE_OPENCL_H 1

#ifndef __LIGHTOS__
#define __LIGHTOS__ 1
#endif
#define LIGHTOS_TARGET_OPENCL 1

#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
/* atom_* on 32-bit int/uint (OpenCL 1.0 names) and on long/ulong. */
#ifdef cl_khr_global_int32_base_atomics
#pragma OPENCL EXTENSION cl_khr_global_int32_base_atomics : enable
#endif
#ifdef cl_khr_global_int32_extended_atomics
#pragma OPENCL EXTENSION cl_khr_global_int32_extended_atomics : enable
#endif
#ifdef cl_khr_local_int32_base_atomics
#pragma OPENCL EXTENSION cl_khr_local_int32_base_atomics : enable
#endif
#ifdef cl_khr_local_int32_extended_atomics
#pragma OPENCL EXTENSION cl_khr_local_int32_extended_atomics : enable
#endif
#ifdef cl_khr_int64_base_atomics
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
#endif
#ifdef cl_khr_int64_extended_atomics
#pragma OPENCL EXTENSION cl_khr_int64_extended_atomics : enable
#endif

/* Strict floating point, as on the CPU target. */
#pragma OPENCL FP_CONTRACT OFF
/* NVIDIA's OpenCL gives sign(-0) = +0 and maps NaN to the type's minimum in
 * the saturating float->integer conversions; OpenCL requires -0 and 0.  The
 * inner names are the builtins (a macro does not expand inside itself). */
#if defined(cl_nv_device_attribute_query) || defined(cl_nv_pragma_unroll)
#define sign(x) ((x) == 0 ? (x) : sign(x))
#define LK_CL_SAT_NAN0_(T, x) ((x) != (x) ? (T)0 : convert_##T##_sat(x))
#define convert_char_sat(x) LK_CL_SAT_NAN0_(char, x)
#define convert_uchar_sat(x) LK_CL_SAT_NAN0_(uchar, x)
#define convert_short_sat(x) LK_CL_SAT_NAN0_(short, x)
#define convert_ushort_sat(x) LK_CL_SAT_NAN0_(ushort, x)
#define convert_int_sat(x) LK_CL_SAT_NAN0_(int, x)
#define convert_uint_sat(x) LK_CL_SAT_NAN0_(uint, x)
#define convert_long_sat(x) LK_CL_SAT_NAN0_(long, x)
#define convert_ulong_sat(x) LK_CL_SAT_NAN0_(ulong, x)
#endif

#undef mad
#define mad(a, b, c) ((a) * (b) + (c))

#define LIGHTOS_ITEMS for (int lk_once_ = 1; lk_once_; lk_once_ = 0)
#define LIGHTOS_PRIVATE(T, name) T name[1]
#define LIGHTOS_P(name) ((name)[0])

#endif /* LIGHTOS_PRELUDE_OPENCL_H */
