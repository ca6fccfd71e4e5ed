__kernel void k(__global float* x, int n) { size_t i = get_global_id(0); if (i < n) x[i] = 2.0f * x[i]; }
