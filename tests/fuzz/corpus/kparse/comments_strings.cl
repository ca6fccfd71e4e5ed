// __kernel void fake1(int x) {
/* __kernel void fake2() { { */
#define OPEN { \
   still the define {
__kernel void real(__global char* s /* } */) {
  const char* t = "__kernel void fake3() {{ \" }";
  char q = '\''; char b = '{';
}
