__kernel void rb(__global int* x) {
  LIGHTOS_ITEMS {
    if (x[0]) return;
  }
}
