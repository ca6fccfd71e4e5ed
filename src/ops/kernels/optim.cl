/* Optimiser steps, f32, contiguous tensors (element offsets *o), one
 * work-item per element.  Built by src/ops/ops_elementwise.c with no
 * options; only + - * / sqrt, so every backend gives the same bits.
 *
 * SGD:   g' = g (+ wd * p when wd != 0);
 *        with velocity: v = momentum * v + g'; p = p - lr * v
 *        without:       p = p - lr * g'
 * AdamW: m = b1 * m + omb1 * g;  v = b2 * v + omb2 * (g * g);
 *        p = p * decay - lr * ((m / bc1) / (sqrt(v / bc2) + eps))
 *        with omb1 = 1 - b1, omb2 = 1 - b2, decay = 1 - lr * wd,
 *        bc1 = 1 - b1^step, bc2 = 1 - b2^step computed by the host in
 *        double and rounded to float.
 */

__kernel void opt_sgd(__global float* p, __global const float* g, __global float* v, long po,
                      long go, long vo, long n, float lr, float momentum, float wd, int has_v) {
  long i = (long)get_global_id(0);
  if (i >= n) return;
  float pi = p[po + i];
  float gi = g[go + i];
  if (wd != 0.0f) gi = gi + wd * pi;
  if (has_v) {
    float vi = momentum * v[vo + i] + gi;
    v[vo + i] = vi;
    gi = vi;
  }
  p[po + i] = pi - lr * gi;
}

__kernel void opt_adamw(__global float* p, __global const float* g, __global float* m,
                        __global float* v, long po, long go, long mo, long vo, long n, float lr,
                        float b1, float omb1, float b2, float omb2, float eps, float decay,
                        float bc1, float bc2) {
  long i = (long)get_global_id(0);
  if (i >= n) return;
  float gi = g[go + i];
  float mi = b1 * m[mo + i] + omb1 * gi;
  float vi = b2 * v[vo + i] + omb2 * (gi * gi);
  m[mo + i] = mi;
  v[vo + i] = vi;
  float pi = p[po + i];
  p[po + i] = pi * decay - lr * ((mi / bc1) / (sqrt(vi / bc2) + eps));
}
