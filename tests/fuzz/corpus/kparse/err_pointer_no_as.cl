__kernel void pa(__global float* ok,
  float* no_address_space) {}
