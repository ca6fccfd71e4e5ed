__kernel void d(int a) {}
__kernel void d(struct s v) {}
