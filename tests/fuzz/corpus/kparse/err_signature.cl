__kernel int notvoid(float* p, __global float** pp, int arr[4]) { return 0; }
