__kernel void unbalanced(int a) {
  if (a) {
}
