/* Reductions and row-wise ops: reduce (sum/mean/max/min), argmax, softmax
 * (+ backward), layernorm / rmsnorm (+ backward), cross-entropy
 * (+ backward), embedding (+ backward).
 *
 * Built by src/ops/ops_reduce.c after lk_math.cl, once per dtype family:
 *   -D RD_FAM=0  f32, f16, bf16 (computed and accumulated in float);
 *   -D RD_FAM=1  f64 (double);
 *   -D RD_FAM=2  i32, i64, u8 (long; sums wrap when stored);
 *   -D LK_DETERMINISTIC (float families, deterministic contexts): exp/log
 *                from the numerics library.
 * Four kernels per program (device compilers spend most of their time per
 * kernel): rd_reduce, rd_reduce_wg, rd_rows (float families) and rd_cols,
 * each with a run-time mode; tensors are byte buffers with run-time dtypes
 * (lightos_dtype_t values) within the family; saved statistics are f32.
 *
 * Determinism: no atomics.  Every output element is produced by one
 * work-item looping in a fixed order, or (rd_reduce_wg) by one work-group
 * of exactly RD_WG items: item l combines the blocks of RD_BLK elements
 * l, l + RD_WG, ... of each innermost run in order, then a fixed tree.  The host chooses from
 * shapes and strides only, so an input gives the same order everywhere.
 */

#define RD_WG 64  /* work-group size of rd_reduce_wg */
#define RD_BLK 256 /* rd_reduce_wg: item l takes blocks l, l + RD_WG, ... of RD_BLK elements */
#define RD_EB 64 /* columns per work-item in embedding backward */

#if RD_FAM == 0
typedef float rd_c;
#define K(x) x##f
#define RD_LOWEST (-INFINITY)
#define RD_HIGHEST INFINITY
#define RD_NAN NAN
#define RD_EXP(x) LK_EXPF(x)
#define RD_LOG(x) LK_LOGF(x)
#elif RD_FAM == 1
typedef double rd_c;
#define K(x) x
#define RD_LOWEST (-(double)INFINITY)
#define RD_HIGHEST ((double)INFINITY)
#define RD_NAN ((double)NAN)
#define RD_EXP(x) LK_EXP(x)
#define RD_LOG(x) LK_LOG(x)
#elif RD_FAM == 2
typedef long rd_c;
#define RD_LOWEST LONG_MIN
#define RD_HIGHEST LONG_MAX
#else
#error "RD_FAM must be 0, 1 or 2"
#endif

#define RD_F32(p) ((__global float*)(p))
#define RD_F64(p) ((__global double*)(p))
#define RD_U16(p) ((__global ushort*)(p))
#define RD_I32(p) ((__global int*)(p))
#define RD_I64(p) ((__global long*)(p))
#define RD_U32(p) ((__global uint*)(p))
#define RD_U64(p) ((__global ulong*)(p))

static rd_c rd_ld(__global uchar* p, long i, int dt) {
#if RD_FAM == 0
  if (dt == 1) return RD_F32(p)[i];
  if (dt == 3) return lk_half_to_float(RD_U16(p)[i]);
  return lk_bf16_to_float(RD_U16(p)[i]);
#elif RD_FAM == 1
  return RD_F64(p)[i];
#else
  if (dt == 5) return (long)RD_I32(p)[i];
  if (dt == 6) return RD_I64(p)[i];
  return (long)p[i];
#endif
}

static void rd_st(__global uchar* p, long i, int dt, rd_c v) {
#if RD_FAM == 0
  if (dt == 1) RD_F32(p)[i] = v;
  else if (dt == 3) RD_U16(p)[i] = lk_float_to_half(v);
  else RD_U16(p)[i] = lk_float_to_bf16(v);
#elif RD_FAM == 1
  RD_F64(p)[i] = v;
#else
  if (dt == 5) RD_I32(p)[i] = convert_int(v);
  else if (dt == 6) RD_I64(p)[i] = v;
  else p[i] = convert_uchar(v);
#endif
}

/* ---- sum / mean / max / min / argmax ------------------------------------------- */

/* kind: 1 sum, 2 mean, 3 max, 4 min (max/min propagate NaN). */
static rd_c rd_init(int kind) { return kind == 3 ? RD_LOWEST : kind == 4 ? RD_HIGHEST : (rd_c)0; }

static rd_c rd_combine(int kind, rd_c acc, rd_c v) {
#if RD_FAM == 2
  if (kind <= 2) return (long)((ulong)acc + (ulong)v);
  if (kind == 3) return v > acc ? v : acc;
  return v < acc ? v : acc;
#else
  if (kind <= 2) return acc + v;
  if (kind == 3) return (v != v || v > acc) ? v : acc;
  return (v != v || v < acc) ? v : acc;
#endif
}

static rd_c rd_finish(int kind, rd_c acc, long count) {
#if RD_FAM <= 1
  if (kind == 2) return acc / (rd_c)count;
#endif
  return acc;
}

/* Dims 0..nk-1 are kept (x strides xs, out strides os), nk..nk+nr-1 are
 * reduced (x strides xs); count = the product of the reduced dims.  Each
 * output element is one sequential loop over its reduced elements in
 * row-major order.  Work-item g computes outputs g*per .. g*per+per-1
 * (per <= RD_PER; 1 on GPUs; on the CPU neighbours along the innermost
 * kept dim share the walk over the reduced elements, which does not change
 * any output's order).  kind 5: argmax over the one reduced dim (nr = 1)
 * into i64 (the first maximum; NaN counts as the maximum). */
#define RD_PER 16
__kernel void rd_reduce(__global uchar* out, __global uchar* x, int kind, int dtx, int dto,
                        long per, long nout, long count, int nk, int nr, long ox, long oo, long d0,
                        long d1, long d2, long d3, long d4, long d5, long d6, long d7, long xs0,
                        long xs1, long xs2, long xs3, long xs4, long xs5, long xs6, long xs7,
                        long os0, long os1, long os2, long os3, long os4, long os5, long os6,
                        long os7) {
  long j = (long)get_global_id(0) * per;
  if (j >= nout) return;
  long jend = min(nout, j + per);
  long dm[8] = {d0, d1, d2, d3, d4, d5, d6, d7};
  long xs[8] = {xs0, xs1, xs2, xs3, xs4, xs5, xs6, xs7};
  long os[8] = {os0, os1, os2, os3, os4, os5, os6, os7};
  long kl = nk > 0 ? dm[nk - 1] : 1, kxs = nk > 0 ? xs[nk - 1] : 0, kos = nk > 0 ? os[nk - 1] : 0;
  long inner = nr > 0 ? dm[nk + nr - 1] : 1;
  long ist = nr > 0 ? xs[nk + nr - 1] : 0;
  long outer = inner > 0 ? count / inner : 0;
  while (j < jend) {
    long px = ox, po = oo, r = j;
    for (int d = nk - 1; d >= 0; --d) {
      long c = r % dm[d];
      r /= dm[d];
      px += c * xs[d];
      po += c * os[d];
    }
    long run = min(jend - j, kl - j % kl);
    if (kind == 5) {
      for (long q = 0; q < run; ++q) {
        long st = xs[nk], pq = px + q * kxs;
        rd_c best = rd_ld(x, pq, dtx);
        long bi = 0;
        for (long k = 1; k < count; ++k) {
          rd_c v = rd_ld(x, pq + k * st, dtx);
          if (best == best && (v != v || v > best)) {
            best = v;
            bi = k;
          }
        }
        RD_I64(out)[po + q * kos] = bi;
      }
      j += run;
      continue;
    }
    rd_c acc[RD_PER];
    for (long q = 0; q < run; ++q) acc[q] = rd_init(kind);
    for (long t = 0; t < outer; ++t) {
      long tq = t, base = px;
      for (int d = nk + nr - 2; d >= nk; --d) {
        long c = tq % dm[d];
        tq /= dm[d];
        base += c * xs[d];
      }
      for (long k = 0; k < inner; ++k) {
        long off = base + k * ist;
#if RD_FAM == 0
        if (dtx == 1 && kind <= 2) { /* f32 sums: no per-element dispatch */
          __global const float* px32 = RD_F32(x) + off;
          for (long q = 0; q < run; ++q) acc[q] += px32[q * kxs];
          continue;
        }
#endif
        for (long q = 0; q < run; ++q) acc[q] = rd_combine(kind, acc[q], rd_ld(x, off + q * kxs, dtx));
      }
    }
    for (long q = 0; q < run; ++q) rd_st(out, po + q * kos, dto, rd_finish(kind, acc[q], count));
    j += run;
  }
}

/* The same (kinds 1-4) with one work-group of RD_WG items per output
 * element. */
__kernel void rd_reduce_wg(__global uchar* out, __global uchar* x, int kind, int dtx, int dto,
                           long per, long nout, long count, int nk, int nr, long ox, long oo, long d0,
                           long d1, long d2, long d3, long d4, long d5, long d6, long d7, long xs0,
                           long xs1, long xs2, long xs3, long xs4, long xs5, long xs6, long xs7,
                           long os0, long os1, long os2, long os3, long os4, long os5, long os6,
                           long os7) {
  __local rd_c tile[RD_WG];
  long dm[8] = {d0, d1, d2, d3, d4, d5, d6, d7};
  long xs[8] = {xs0, xs1, xs2, xs3, xs4, xs5, xs6, xs7};
  long os[8] = {os0, os1, os2, os3, os4, os5, os6, os7};
  long px = ox, po = oo, r = (long)get_group_id(0);
  for (int d = nk - 1; d >= 0; --d) {
    long c = r % dm[d];
    r /= dm[d];
    px += c * xs[d];
    po += c * os[d];
  }
  long inner = nr > 0 ? dm[nk + nr - 1] : 1;
  long ist = nr > 0 ? xs[nk + nr - 1] : 0;
  long outer = inner > 0 ? count / inner : 0;
  LIGHTOS_ITEMS {
    long l = (long)get_local_id(0);
    rd_c acc = rd_init(kind);
    for (long t = 0; t < outer; ++t) {
      long q = t, base = px;
      for (int d = nk + nr - 2; d >= nk; --d) {
        long c = q % dm[d];
        q /= dm[d];
        base += c * xs[d];
      }
      for (long k0 = l * RD_BLK; k0 < inner; k0 += RD_WG * RD_BLK) {
        long k1 = min(inner, k0 + RD_BLK);
#if RD_FAM == 0
        if (dtx == 1 && kind <= 2) { /* f32 sums: no per-element dispatch */
          __global const float* px32 = RD_F32(x) + base;
          for (long k = k0; k < k1; ++k) acc += px32[k * ist];
          continue;
        }
#endif
        for (long k = k0; k < k1; ++k) acc = rd_combine(kind, acc, rd_ld(x, base + k * ist, dtx));
      }
    }
    tile[l] = acc;
  }
  for (uint l = (uint)get_local_size(0); l < RD_WG; ++l) tile[l] = rd_init(kind);
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint s = RD_WG / 2; s > 0; s >>= 1) {
    LIGHTOS_ITEMS {
      uint l = (uint)get_local_id(0);
      if (l < s) tile[l] = rd_combine(kind, tile[l], tile[l + s]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  LIGHTOS_ITEMS {
    if (get_local_id(0) == 0) rd_st(out, po, dto, rd_finish(kind, tile[0], count));
  }
}

/* ---- row-wise ops (float families) --------------------------------------------------- */
#if RD_FAM <= 1

#if RD_FAM == 1
#define RD_EPS (as_double(eps_bits))
#else
#define RD_EPS epsf
#endif

/* Tensor k is viewed as [outer, len, inner] with element offset o<k> and
 * strides (a<k> outer, b<k> along the row, c<k> inner); row r = (r /
 * inner, r % inner).  Vectors use a = c = 0, per-row values b = 0.
 *   mode 0 softmax      t0 = out, t1 = x; flags 1: log-softmax
 *   mode 1 softmax bw   t0 = grad_x, t1 = y, t2 = grad_y; flags 1: log
 *        softmax: gx = y * (gy - sum(gy * y)); log: gx = gy - exp(y) * sum(gy)
 *   mode 2 layernorm    t0 = out, t1 = x, t2 = w, t3 = b, t4 = mean, t5 = rstd
 *        (f32); flags 1 w, 2 b, 4 mean, 8 rstd.  mean = sum(x) / D, var =
 *        sum((x - mean)^2) / D, rstd = 1 / sqrt(var + eps),
 *        out = (x - mean) * rstd * w + b
 *   mode 3 layernorm bw t0 = grad_x, t1 = x, t2 = w, t3 = mean, t4 = rstd,
 *        t5 = grad_out; flags 1 w.  gx = rstd * (g - mean(g) - xhat *
 *        mean(g * xhat)), g = gy * w, xhat = (x - mean) * rstd
 *   mode 4 rmsnorm      t0 = out, t1 = x, t2 = w, t5 = rstd; flags 1 w, 8 rstd.
 *        rstd = 1 / sqrt(sum(x^2) / D + eps), out = x * rstd * w
 *   mode 5 rmsnorm bw   t0 = grad_x, t1 = x, t2 = w, t4 = rstd, t5 = grad_out;
 *        flags 1 w.  gx = rstd * g - x * (rstd^3 * sum(g * x) / D)
 *   mode 6 cross-entropy rows: t0 = per-row loss (f32 / f64), t1 = logits,
 *        t2 = targets (i64): logsumexp(x) - x[t]; NaN for t outside [0, len)
 *   mode 7 cross-entropy bw: t0 = grad_logits, t1 = logits, t2 = targets,
 *        t3 = grad_loss: (softmax(x) - onehot(t)) * (grad_loss / N), N = rows
 *        (a target outside [0, len) gives a NaN row) */
__kernel void rd_rows(__global uchar* t0, __global uchar* t1, __global uchar* t2,
                      __global uchar* t3, __global uchar* t4, __global uchar* t5, int mode, int dt,
                      int flags, long rows, long len, long inner, float epsf, ulong eps_bits,
                      long o0, long a0, long b0, long c0, long o1, long a1, long b1, long c1,
                      long o2, long a2, long b2, long c2, long o3, long a3, long b3, long c3,
                      long o4, long a4, long b4, long c4, long o5, long a5, long b5, long c5) {
  long r = (long)get_global_id(0);
  if (r >= rows) return;
  long ro = r / inner, ri = r % inner;
  long q0 = o0 + ro * a0 + ri * c0, q1 = o1 + ro * a1 + ri * c1, q2 = o2 + ro * a2 + ri * c2;
  long q3 = o3 + ro * a3 + ri * c3, q4 = o4 + ro * a4 + ri * c4, q5 = o5 + ro * a5 + ri * c5;
  rd_c D = (rd_c)len;
  /* pass 1: max of row t1 (softmax, cross-entropy) */
  rd_c m = RD_LOWEST;
  if (mode == 0 || mode >= 6) {
    for (long k = 0; k < len; ++k) {
      rd_c v = rd_ld(t1, q1 + k * b1, dt);
      if (v != v || v > m) m = v;
    }
  }
  /* pass 2: the row sums */
  rd_c s = K(0.0), s2 = K(0.0), mu = K(0.0), rs = K(0.0);
  if (mode == 3) mu = (rd_c)RD_F32(t3)[q3];
  if (mode == 3 || mode == 5) rs = (rd_c)RD_F32(t4)[q4];
  for (long k = 0; k < len; ++k) {
    rd_c v = rd_ld(t1, q1 + k * b1, dt);
    switch (mode) {
      case 0: case 6: case 7: s += RD_EXP(v - m); break;
      case 1: {
        rd_c g = rd_ld(t2, q2 + k * b2, dt);
        s += (flags & 1) ? g : g * v;
        break;
      }
      case 2: s += v; break;
      case 3: case 5: {
        rd_c g = rd_ld(t5, q5 + k * b5, dt);
        if (flags & 1) g = g * rd_ld(t2, q2 + k * b2, dt);
        if (mode == 3) {
          rd_c xh = (v - mu) * rs;
          s += g;
          s2 += g * xh;
        } else {
          s2 += g * v;
        }
        break;
      }
      case 4: s += v * v; break;
    }
  }
  if (mode == 2) {
    mu = s / D;
    for (long k = 0; k < len; ++k) {
      rd_c d = rd_ld(t1, q1 + k * b1, dt) - mu;
      s2 += d * d;
    }
    rs = K(1.0) / sqrt(s2 / D + RD_EPS);
    if (flags & 4) RD_F32(t4)[q4] = (float)mu;
    if (flags & 8) RD_F32(t5)[q5] = (float)rs;
  }
  if (mode == 4) {
    rs = K(1.0) / sqrt(s / D + RD_EPS);
    if (flags & 8) RD_F32(t5)[q5] = (float)rs;
  }
  long t = 0;
  rd_c gscale = K(0.0);
  if (mode >= 6) t = RD_I64(t2)[q2];
  if (mode == 6) {
    rd_c xt = (t >= 0 && t < len) ? rd_ld(t1, q1 + t * b1, dt) : RD_NAN;
#if RD_FAM == 1
    RD_F64(t0)[q0] = (RD_LOG(s) + m) - xt;
#else
    RD_F32(t0)[q0] = (RD_LOG(s) + m) - xt;
#endif
    return;
  }
  if (mode == 7) gscale = rd_ld(t3, q3, dt) / (rd_c)rows;
  rd_c ls = (mode == 0 && (flags & 1)) ? RD_LOG(s) : K(0.0);
  rd_c rc = rs * rs * rs * s2 / D; /* rmsnorm bw */
  /* pass 3: write row t0 */
  for (long k = 0; k < len; ++k) {
    rd_c v = rd_ld(t1, q1 + k * b1, dt), y;
    switch (mode) {
      case 0: y = (flags & 1) ? (v - m) - ls : RD_EXP(v - m) / s; break;
      case 1: {
        rd_c g = rd_ld(t2, q2 + k * b2, dt);
        y = (flags & 1) ? g - RD_EXP(v) * s : v * (g - s);
        break;
      }
      case 2: case 4: {
        y = mode == 2 ? (v - mu) * rs : v * rs;
        if (flags & 1) y = y * rd_ld(t2, q2 + k * b2, dt);
        if (mode == 2 && (flags & 2)) y = y + rd_ld(t3, q3 + k * b3, dt);
        break;
      }
      case 3: case 5: {
        rd_c g = rd_ld(t5, q5 + k * b5, dt);
        if (flags & 1) g = g * rd_ld(t2, q2 + k * b2, dt);
        y = mode == 3 ? rs * (g - s / D - ((v - mu) * rs) * (s2 / D)) : rs * g - v * rc;
        break;
      }
      default: {
        rd_c p = RD_EXP(v - m) / s;
        y = (t >= 0 && t < len) ? (p - (k == t ? K(1.0) : K(0.0))) * gscale : RD_NAN;
        break;
      }
    }
    rd_st(t0, q0 + k * b0, dt, y);
  }
}
#endif

/* ---- column-wise ops ----------------------------------------------------------------- */

/* Tensor k as a matrix: element offset o<k>, row stride r<k>, column
 * stride c<k> (vectors: r = 0; per-row values: c = 0).
 *   mode 0 layernorm bw weights: one item per column j; t0 = grad_w, t1 =
 *        grad_b, t2 = x, t3 = mean, t4 = rstd, t5 = grad_out; flags 1 grad_w,
 *        2 grad_b: sums over rows 0, 1, ... of gy * xhat and of gy
 *   mode 1 rmsnorm bw weight: t0 = grad_w, t2 = x, t4 = rstd, t5 = grad_out:
 *        sum over rows of gy * (x * rstd)
 *   mode 2 embedding: launch (D, rows); t0 = out, t1 = table [V, D], t2 =
 *        indices (flags 16: i32, else i64): out[i, j] = table[idx[i], j];
 *        an index outside [0, V) gives NaN (0 for integer tables)
 *   mode 3 embedding bw: launch (ceil(D / RD_EB), V); t0 = acc (f32 / f64),
 *        t2 = indices, t5 = grad_out [rows, D]: item (b, v) owns columns
 *        b*RD_EB ... of row v of acc: zeroes them, then adds grad rows i =
 *        0, 1, ... with idx[i] == v, in order (no atomics) */
__kernel void rd_cols(__global uchar* t0, __global uchar* t1, __global uchar* t2,
                      __global uchar* t3, __global uchar* t4, __global uchar* t5, int mode, int dt,
                      int flags, long rows, long D, long V, long o0, long r0, long c0, long o1,
                      long r1, long c1, long o2, long r2, long c2, long o3, long r3, long c3,
                      long o4, long r4, long c4, long o5, long r5, long c5) {
  long j = (long)get_global_id(0);
  long i = (long)get_global_id(1);
  if (mode == 2) {
    if (j >= D || i >= rows) return;
    long v = (flags & 16) ? (long)RD_I32(t2)[o2 + i * r2] : RD_I64(t2)[o2 + i * r2];
    long po = o0 + i * r0 + j * c0, pt = o1 + v * r1 + j * c1;
    bool ok = v >= 0 && v < V;
    switch (dt) {
      case 1: RD_F32(t0)[po] = ok ? RD_F32(t1)[pt] : NAN; return;
#ifdef cl_khr_fp64
      case 2: RD_F64(t0)[po] = ok ? RD_F64(t1)[pt] : (double)NAN; return;
#endif
      case 3: RD_U16(t0)[po] = ok ? RD_U16(t1)[pt] : (ushort)0x7e00; return;
      case 4: RD_U16(t0)[po] = ok ? RD_U16(t1)[pt] : (ushort)0x7fc0; return;
      case 5: RD_I32(t0)[po] = ok ? RD_I32(t1)[pt] : 0; return;
      case 6: RD_I64(t0)[po] = ok ? RD_I64(t1)[pt] : 0; return;
      default: t0[po] = ok ? t1[pt] : (uchar)0; return;
    }
  }
#if RD_FAM <= 1
  if (mode == 3) {
    long b = j, v = i;
    if (v >= V || b * RD_EB >= D) return;
    long j0 = b * RD_EB, j1 = min(D, j0 + RD_EB);
    long arow = o0 + v * r0;
#if RD_FAM == 1
#define RD_ACC(k) RD_F64(t0)[arow + (k) * c0]
#else
#define RD_ACC(k) RD_F32(t0)[arow + (k) * c0]
#endif
    for (long k = j0; k < j1; ++k) RD_ACC(k) = K(0.0);
    for (long n = 0; n < rows; ++n) {
      long w = (flags & 16) ? (long)RD_I32(t2)[o2 + n * r2] : RD_I64(t2)[o2 + n * r2];
      if (w != v) continue;
      long grow = o5 + n * r5;
      for (long k = j0; k < j1; ++k) RD_ACC(k) += rd_ld(t5, grow + k * c5, dt);
    }
    return;
  }
  if (j >= D) return;
  rd_c sw = K(0.0), sb = K(0.0);
  for (long r = 0; r < rows; ++r) {
    rd_c g = rd_ld(t5, o5 + r * r5 + j * c5, dt);
    rd_c xv = rd_ld(t2, o2 + r * r2 + j * c2, dt);
    rd_c rs = (rd_c)RD_F32(t4)[o4 + r * r4];
    if (mode == 0) {
      sw += g * ((xv - (rd_c)RD_F32(t3)[o3 + r * r3]) * rs);
      sb += g;
    } else {
      sw += g * (xv * rs);
    }
  }
  if (flags & 1) rd_st(t0, o0 + j * c0, dt, sw);
  if (flags & 2) rd_st(t1, o1 + j * c1, dt, sb);
#endif
}
