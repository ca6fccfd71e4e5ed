kernel void w(global volatile int* restrict p, const __local double* q)
{
  /* unterminated