/* conv2d helper kernels (NCHW, groups = 1), used by src/ops/ops_conv.c
 * around lightos_op_gemm.
 *
 * -D CONV_F32 / CONV_F64 / CONV_F16 / CONV_BF16 choose the element type
 * (f16/bf16 are stored as ushort; the numerics library lk_math.cl comes
 * first for their conversions).  Tensors are passed as (buffer, element
 * offset, element strides), so any view works.
 *
 * A chunk of nc images starting at image n0 is processed at a time; its
 * column matrix is col[r][j], r = (c * KH + kh) * KW + kw (CKK rows),
 * j = n * OHW + oh * OW + ow (nc * OHW columns, row stride ld = nc * OHW).
 *
 * Every sum (col2im, the bias gradient) runs in a fixed order in one
 * work-item, so the results do not depend on the backend or the launch.
 */

#if defined(CONV_F64)
typedef double conv_t;
typedef double conv_acc_t;
#define CONV_LOAD(x) (x)
#define CONV_STORE(v) (v)
#elif defined(CONV_F16)
typedef ushort conv_t;
typedef float conv_acc_t;
#define CONV_LOAD(x) lk_half_to_float(x)
#define CONV_STORE(v) lk_float_to_half(v)
#elif defined(CONV_BF16)
typedef ushort conv_t;
typedef float conv_acc_t;
#define CONV_LOAD(x) lk_bf16_to_float(x)
#define CONV_STORE(v) lk_float_to_bf16(v)
#else
typedef float conv_t;
typedef float conv_acc_t;
#define CONV_LOAD(x) (x)
#define CONV_STORE(v) (v)
#endif

/* col[r][j] = x[n0 + n][c][oh*sh - ph + kh*dh][ow*sw - pw + kw*dw], 0 in the
 * padding.  Launch (nc * OHW, CKK). */
__kernel void conv_im2col(__global const conv_t* restrict x, long x_off, long xs0, long xs1,
                          long xs2, long xs3, __global conv_t* restrict col, long n0, long nc,
                          long C, long H, long W, long KH, long KW, long OH, long OW, int sh,
                          int sw, int ph, int pw, int dh, int dw) {
  const long j = (long)get_global_id(0), r = (long)get_global_id(1);
  const long ohw = OH * OW;
  if (j >= nc * ohw || r >= C * KH * KW) return;
  const long n = j / ohw, p = j % ohw, oh = p / OW, ow = p % OW;
  const long kw = r % KW, kh = (r / KW) % KH, c = r / (KW * KH);
  const long ih = oh * sh - ph + kh * dh, iw = ow * sw - pw + kw * dw;
  conv_t v = (conv_t)0;
  if (ih >= 0 && ih < H && iw >= 0 && iw < W)
    v = x[x_off + (n0 + n) * xs0 + c * xs1 + ih * xs2 + iw * xs3];
  col[r * nc * ohw + j] = v;
}

/* out[n0 + n][co][oh][ow] = bias[co] (the GEMM then adds W @ col with
 * beta = 1).  Launch (OHW, Cout, nc). */
__kernel void conv_fill_bias(__global conv_t* restrict out, long o_off, long os0, long os1,
                             long os2, long os3, __global const conv_t* restrict bias,
                             long b_off, long bs0, long n0, long OH, long OW, long Cout) {
  const long p = (long)get_global_id(0), co = (long)get_global_id(1), n = (long)get_global_id(2);
  if (p >= OH * OW || co >= Cout) return;
  out[o_off + (n0 + n) * os0 + co * os1 + (p / OW) * os2 + (p % OW) * os3] =
      bias[b_off + co * bs0];
}

/* gp[co][n * OHW + p] = g[n0 + n][co][oh][ow]: grad_out packed as a
 * Cout x (nc * OHW) matrix.  Launch (nc * OHW, Cout). */
__kernel void conv_pack(__global const conv_t* restrict g, long g_off, long gs0, long gs1,
                        long gs2, long gs3, __global conv_t* restrict gp, long n0, long nc,
                        long OH, long OW, long Cout) {
  const long j = (long)get_global_id(0), co = (long)get_global_id(1);
  const long ohw = OH * OW;
  if (j >= nc * ohw || co >= Cout) return;
  const long n = j / ohw, p = j % ohw;
  gp[co * nc * ohw + j] = g[g_off + (n0 + n) * gs0 + co * gs1 + (p / OW) * gs2 + (p % OW) * gs3];
}

/* grad_x[n0 + n][c][ih][iw] = sum over kh, then kw (increasing) of the
 * dcol entries that im2col took from this element.  One work-item per input
 * element; launch (W, H, nc * C). */
__kernel void conv_col2im(__global const conv_t* restrict dcol, __global conv_t* restrict gx,
                          long gx_off, long gxs0, long gxs1, long gxs2, long gxs3, long n0,
                          long nc, long C, long H, long W, long KH, long KW, long OH, long OW,
                          int sh, int sw, int ph, int pw, int dh, int dw) {
  const long iw = (long)get_global_id(0), ih = (long)get_global_id(1), nci = (long)get_global_id(2);
  if (iw >= W || ih >= H || nci >= nc * C) return;
  const long n = nci / C, c = nci % C;
  const long ohw = OH * OW, ld = nc * ohw;
  conv_acc_t acc = (conv_acc_t)0;
  for (long kh = 0; kh < KH; ++kh) {
    const long th = ih + ph - kh * dh;
    if (th < 0 || th % sh) continue;
    const long oh = th / sh;
    if (oh >= OH) continue;
    for (long kw = 0; kw < KW; ++kw) {
      const long tw = iw + pw - kw * dw;
      if (tw < 0 || tw % sw) continue;
      const long ow = tw / sw;
      if (ow >= OW) continue;
      const long r = (c * KH + kh) * KW + kw;
      acc += CONV_LOAD(dcol[r * ld + n * ohw + oh * OW + ow]);
    }
  }
  gx[gx_off + (n0 + n) * gxs0 + c * gxs1 + ih * gxs2 + iw * gxs3] = CONV_STORE(acc);
}

/* grad_bias[co] = sum over n, then oh, then ow (increasing) of
 * grad_out[n][co][oh][ow], accumulated in float (double for f64) and
 * rounded once.  Launch (Cout). */
__kernel void conv_bias_grad(__global const conv_t* restrict g, long g_off, long gs0, long gs1,
                             long gs2, long gs3, __global conv_t* restrict gb, long gb_off,
                             long gbs0, long N, long OH, long OW, long Cout) {
  const long co = (long)get_global_id(0);
  if (co >= Cout) return;
  conv_acc_t acc = (conv_acc_t)0;
  for (long n = 0; n < N; ++n)
    for (long oh = 0; oh < OH; ++oh)
      for (long ow = 0; ow < OW; ++ow)
        acc += CONV_LOAD(g[g_off + n * gs0 + co * gs1 + oh * gs2 + ow * gs3]);
  gb[gb_off + co * gbs0] = CONV_STORE(acc);
}

/* dst = src for 4-d views of one shape (raw element copy).  Launch
 * (d3, d2, d0 * d1). */
__kernel void conv_copy4d(__global const conv_t* restrict src, long s_off, long ss0, long ss1,
                          long ss2, long ss3, __global conv_t* restrict dst, long d_off, long ds0,
                          long ds1, long ds2, long ds3, long d1, long d2, long d3, long n01) {
  const long i3 = (long)get_global_id(0), i2 = (long)get_global_id(1), i01 = (long)get_global_id(2);
  if (i3 >= d3 || i2 >= d2 || i01 >= n01) return;
  const long i0 = i01 / d1, i1 = i01 % d1;
  dst[d_off + i0 * ds0 + i1 * ds1 + i2 * ds2 + i3 * ds3] =
      src[s_off + i0 * ss0 + i1 * ss1 + i2 * ss2 + i3 * ss3];
}
