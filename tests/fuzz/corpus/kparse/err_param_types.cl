__kernel void pt(__global float* a, unsigned float b, __global int c, int) {}
