__kernel void bn(__global int* x) {
  barrier(CLK_LOCAL_MEM_FENCE);
}
