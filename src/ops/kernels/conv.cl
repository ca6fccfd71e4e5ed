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
 * Launches are 1-d; each work-item handles one row of the innermost
 * dimension (a loop over ow, iw or the last dim), so the index arithmetic
 * is paid once per row.  Every sum (col2im, the bias gradient) runs in a
 * fixed order in one work-item, so the results do not depend on the
 * backend or the launch.
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

/* col[r][n * OHW + oh * OW + ow] = x[n0 + n][c][oh*sh - ph + kh*dh][ow*sw - pw + kw*dw]
 * (0 in the padding).  One work-item per (r, n, oh); launch CKK * nc * OH. */
__kernel void conv_im2col(__global const conv_t* restrict x, long x_off, long xs0, long xs1,
                          long xs2, long xs3, __global conv_t* restrict col, long n0, long nc,
                          long C, long H, long W, long KH, long KW, long OH, long OW, int sh,
                          int sw, int ph, int pw, int dh, int dw) {
  const long id = (long)get_global_id(0);
  if (id >= C * KH * KW * nc * OH) return;
  const long oh = id % OH, n = (id / OH) % nc, r = id / (OH * nc);
  const long kw = r % KW, kh = (r / KW) % KH, c = r / (KW * KH);
  __global conv_t* out = col + r * nc * OH * OW + (n * OH + oh) * OW;
  const long ih = oh * sh - ph + kh * dh;
  if (ih < 0 || ih >= H) {
    for (long ow = 0; ow < OW; ++ow) out[ow] = (conv_t)0;
    return;
  }
  __global const conv_t* in = x + x_off + (n0 + n) * xs0 + c * xs1 + ih * xs2;
  /* iw = ow * sw + t is inside [0, W) for ow in [lo, hi). */
  const long t = kw * dw - pw;
  long lo = t >= 0 ? 0 : (-t + sw - 1) / sw;
  long hi = W - t > 0 ? (W - t + sw - 1) / sw : 0;
  if (lo > OW) lo = OW;
  if (hi > OW) hi = OW;
  if (hi < lo) hi = lo;
  for (long ow = 0; ow < lo; ++ow) out[ow] = (conv_t)0;
  if (sw == 1 && xs3 == 1) {
    for (long ow = lo; ow < hi; ++ow) out[ow] = in[ow + t];
  } else {
    for (long ow = lo; ow < hi; ++ow) out[ow] = in[(ow * sw + t) * xs3];
  }
  for (long ow = hi; ow < OW; ++ow) out[ow] = (conv_t)0;
}

/* out[n0 + n][co][oh][:] = bias[co] (the GEMM then adds W @ col with
 * beta = 1).  One work-item per (n, co, oh); launch nc * Cout * OH. */
__kernel void conv_fill_bias(__global conv_t* restrict out, long o_off, long os0, long os1,
                             long os2, long os3, __global const conv_t* restrict bias,
                             long b_off, long bs0, long n0, long nc, long OH, long OW,
                             long Cout) {
  const long id = (long)get_global_id(0);
  if (id >= nc * Cout * OH) return;
  const long oh = id % OH, co = (id / OH) % Cout, n = id / (OH * Cout);
  const conv_t v = bias[b_off + co * bs0];
  __global conv_t* o = out + o_off + (n0 + n) * os0 + co * os1 + oh * os2;
  for (long ow = 0; ow < OW; ++ow) o[ow * os3] = v;
}

/* gp[co][n * OHW + oh * OW + ow] = g[n0 + n][co][oh][ow]: grad_out packed
 * as a Cout x (nc * OHW) matrix.  One work-item per (co, n, oh); launch
 * Cout * nc * OH. */
__kernel void conv_pack(__global const conv_t* restrict g, long g_off, long gs0, long gs1,
                        long gs2, long gs3, __global conv_t* restrict gp, long n0, long nc,
                        long OH, long OW, long Cout) {
  const long id = (long)get_global_id(0);
  if (id >= Cout * nc * OH) return;
  const long oh = id % OH, n = (id / OH) % nc, co = id / (OH * nc);
  __global const conv_t* in = g + g_off + (n0 + n) * gs0 + co * gs1 + oh * gs2;
  __global conv_t* out = gp + co * nc * OH * OW + (n * OH + oh) * OW;
  for (long ow = 0; ow < OW; ++ow) out[ow] = in[ow * gs3];
}

/* grad_x[n0 + n][c][ih][iw] = sum over kh, then kw (increasing) of the dcol
 * entries that im2col took from this element.  One work-item per
 * (n, c, ih), a loop over iw; launch nc * C * H. */
__kernel void conv_col2im(__global const conv_t* restrict dcol, __global conv_t* restrict gx,
                          long gx_off, long gxs0, long gxs1, long gxs2, long gxs3, long n0,
                          long nc, long C, long H, long W, long KH, long KW, long OH, long OW,
                          int sh, int sw, int ph, int pw, int dh, int dw) {
  const long id = (long)get_global_id(0);
  if (id >= nc * C * H) return;
  const long ih = id % H, c = (id / H) % C, n = id / (H * C);
  const long ohw = OH * OW, ld = nc * ohw;
  __global conv_t* out = gx + gx_off + (n0 + n) * gxs0 + c * gxs1 + ih * gxs2;
  /* Spatial indices fit in int (the host checks): cheap divisions. */
  const int iW = (int)W, iOW = (int)OW, iKW = (int)KW;
  for (int iw = 0; iw < iW; ++iw) {
    conv_acc_t acc = (conv_acc_t)0;
    for (long kh = 0; kh < KH; ++kh) {
      const int th = (int)(ih + ph - kh * dh);
      if (th < 0 || (sh > 1 && th % sh)) continue;
      const int oh = sh > 1 ? th / sh : th;
      if (oh >= (int)OH) continue;
      __global const conv_t* row = dcol + ((c * KH + kh) * KW) * ld + n * ohw + (long)oh * OW;
      for (int kw = 0; kw < iKW; ++kw) {
        const int tw = iw + pw - kw * dw;
        if (tw < 0 || (sw > 1 && tw % sw)) continue;
        const int ow = sw > 1 ? tw / sw : tw;
        if (ow >= iOW) continue;
        acc += CONV_LOAD(row[kw * ld + ow]);
      }
    }
    out[iw * gxs3] = CONV_STORE(acc);
  }
}

/* grad_bias[co] = sum over n, then oh, then ow (increasing) of
 * grad_out[n][co][oh][ow], accumulated in float (double for f64) and
 * rounded once.  Launch Cout. */
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

/* dst = src for 4-d views of one shape (raw element copy).  One work-item
 * per (i0, i1, i2), a loop over i3; launch d0 * d1 * d2. */
__kernel void conv_copy4d(__global const conv_t* restrict src, long s_off, long ss0, long ss1,
                          long ss2, long ss3, __global conv_t* restrict dst, long d_off, long ds0,
                          long ds1, long ds2, long ds3, long d1, long d2, long d3, long n012) {
  const long id = (long)get_global_id(0);
  if (id >= n012) return;
  const long i2 = id % d2, i1 = (id / d2) % d1, i0 = id / (d2 * d1);
  __global const conv_t* s = src + s_off + i0 * ss0 + i1 * ss1 + i2 * ss2;
  __global conv_t* d = dst + d_off + i0 * ds0 + i1 * ds1 + i2 * ds2;
  for (long i3 = 0; i3 < d3; ++i3) d[i3 * ds3] = s[i3 * ss3];
}
