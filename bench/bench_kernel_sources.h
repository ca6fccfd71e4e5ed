/* Portable kernel sources shared by the benchmarks (bench_kernels: the CPU
 * backend vs PoCL; bench_gpu: OpenCL-on-NVIDIA vs the CUDA backend): the
 * same text on every target. */
#ifndef LIGHTOS_BENCH_KERNEL_SOURCES_H
#define LIGHTOS_BENCH_KERNEL_SOURCES_H

static const char k_saxpy_src[] =
    "__kernel void saxpy(__global float* y, __global const float* x, float a, uint n) {\n"
    "  size_t i = get_global_id(0);\n"
    "  if (i < n) y[i] = a * x[i] + y[i];\n"
    "}\n";

/* Each group of 256 items sums 256*k consecutive floats: item l adds
 * in[base + j*256 + l] for j < k (coalesced on GPUs, unit stride across the
 * items on the CPU), then a __local tree reduction. */
static const char k_reduce_src[] =
    "#define WG 256\n"
    "__kernel void reduce_sum(__global const float* in, __global float* partial, uint k) {\n"
    "  __local float scratch[WG];\n"
    "  size_t grp = get_group_id(0);\n"
    "  size_t base = grp * (size_t)WG * k;\n"
    "  LIGHTOS_ITEMS {\n"
    "    size_t l = get_local_id(0);\n"
    "    float s = 0.0f;\n"
    "    for (uint j = 0; j < k; ++j) s += in[base + (size_t)j * WG + l];\n"
    "    scratch[l] = s;\n"
    "  }\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  for (uint stride = WG / 2; stride > 0; stride >>= 1) {\n"
    "    LIGHTOS_ITEMS {\n"
    "      size_t l = get_local_id(0);\n"
    "      if (l < stride) scratch[l] += scratch[l + stride];\n"
    "    }\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  }\n"
    "  LIGHTOS_ITEMS {\n"
    "    if (get_local_id(0) == 0) partial[grp] = scratch[0];\n"
    "  }\n"
    "}\n";

/* The same reduction with the item loop outermost: each item's running sum
 * is a per-item variable and every j is one item block, so on the CPU the
 * block is a unit-stride loop over the items that the C compiler vectorises
 * (the same additions in the same order as reduce_sum: identical result). */
static const char k_reduce_acc_src[] =
    "#define WG 256\n"
    "__kernel void reduce_sum_acc(__global const float* in, __global float* partial, uint k) {\n"
    "  __local float scratch[WG];\n"
    "  LIGHTOS_PRIVATE(float, acc);\n"
    "  size_t grp = get_group_id(0);\n"
    "  size_t base = grp * (size_t)WG * k;\n"
    "  LIGHTOS_ITEMS { LIGHTOS_P(acc) = 0.0f; }\n"
    "  for (uint j = 0; j < k; ++j) {\n"
    "    LIGHTOS_ITEMS { LIGHTOS_P(acc) += in[base + (size_t)j * WG + get_local_id(0)]; }\n"
    "  }\n"
    "  LIGHTOS_ITEMS { scratch[get_local_id(0)] = LIGHTOS_P(acc); }\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  for (uint stride = WG / 2; stride > 0; stride >>= 1) {\n"
    "    LIGHTOS_ITEMS {\n"
    "      size_t l = get_local_id(0);\n"
    "      if (l < stride) scratch[l] += scratch[l + stride];\n"
    "    }\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  }\n"
    "  LIGHTOS_ITEMS {\n"
    "    if (get_local_id(0) == 0) partial[grp] = scratch[0];\n"
    "  }\n"
    "}\n";

/* C[M x N] = A[M x K] * B[K x N], row-major; M, N, K multiples of 16. */
static const char k_matmul_src[] =
    "#define TS 16\n"
    "__kernel void matmul_tiled(__global const float* A, __global const float* B,\n"
    "                           __global float* C, uint M, uint N, uint K) {\n"
    "  __local float As[TS * TS];\n"
    "  __local float Bs[TS * TS];\n"
    "  LIGHTOS_PRIVATE(float, acc);\n"
    "  size_t col0 = get_group_id(0) * TS;\n"
    "  size_t row0 = get_group_id(1) * TS;\n"
    "  LIGHTOS_ITEMS { LIGHTOS_P(acc) = 0.0f; }\n"
    "  for (uint t = 0; t < K; t += TS) {\n"
    "    LIGHTOS_ITEMS {\n"
    "      size_t lx = get_local_id(0), ly = get_local_id(1);\n"
    "      As[ly * TS + lx] = A[(row0 + ly) * K + t + lx];\n"
    "      Bs[ly * TS + lx] = B[(size_t)(t + ly) * N + col0 + lx];\n"
    "    }\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    LIGHTOS_ITEMS {\n"
    "      size_t lx = get_local_id(0), ly = get_local_id(1);\n"
    "      float s = LIGHTOS_P(acc);\n"
    "      for (int kk = 0; kk < TS; ++kk) s += As[ly * TS + kk] * Bs[kk * TS + lx];\n"
    "      LIGHTOS_P(acc) = s;\n"
    "    }\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  }\n"
    "  LIGHTOS_ITEMS {\n"
    "    C[(row0 + get_local_id(1)) * N + col0 + get_local_id(0)] = LIGHTOS_P(acc);\n"
    "  }\n"
    "}\n";

#endif
