__kernel void nest(__global int* x) {
  LIGHTOS_ITEMS { LIGHTOS_ITEMS { x[0] = 1; } }
}
