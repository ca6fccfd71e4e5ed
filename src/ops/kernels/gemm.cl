/* The portable GEMM kernel: C = alpha * op(A) op(B) + beta * C.
 *
 * Built by src/ops/ops_gemm.c after lk_math.cl (f16/bf16 conversions) with
 *   one of -D GEMM_F32 / GEMM_F64 / GEMM_F16 / GEMM_BF16 (the element type;
 *       f16 and bf16 are stored as ushort and computed in float),
 *   -D GEMM_BM, GEMM_BN  the block tile of C a work-group computes,
 *   -D GEMM_BK           the k step staged in local memory per barrier pair,
 *   -D GEMM_TM, GEMM_TN  the register block of C one work-item computes,
 *   -D GEMM_VM, GEMM_VN  how many of those rows / columns are adjacent (TM
 *       and TN: one contiguous block, which the CPU's C compiler turns into
 *       vector loads; 1 or 4 on GPUs: rows/columns interleaved with the
 *       other items', free of local-memory bank conflicts),
 *   -D GEMM_ROWS_X=1     local dim 0 walks the row blocks (CPU: consecutive
 *       items of the item loop reuse one column panel of B from L1), else the
 *       column blocks (GPUs: consecutive threads write consecutive columns),
 *   -D GEMM_CHUNKED=1    each item stages whole lines of a tile (CPU: plain
 *       copies the C compiler vectorises); 0: every NT-th element per item
 *       (GPUs: coalesced loads), fetched into registers one k step ahead so
 *       that the loads overlap the arithmetic,
 *   -D GEMM_PAD          padding of a local tile row (GPUs: 4, which keeps
 *       16-byte alignment and makes the transposing stores conflict-free;
 *       0 on the CPU),
 *   -D GEMM_UNROLL=1     also unroll the k loop and the epilogue (GPUs: the
 *       accumulators must be indexed by constants to stay in registers),
 *   -D GEMM_A_KFAST, GEMM_B_NFAST (optional, with GEMM_CHUNKED=0) fix the
 *       staging order at build time (the a_kfast / b_nfast arguments are
 *       then ignored).
 * Launch: local size (BM/TM, BN/TN) when GEMM_ROWS_X else (BN/TN, BM/TM);
 * global = local * (ceil(N/BN), ceil(M/BM), batch): uniform groups; group
 * id 0 is the column tile, 1 the row tile, 2 the batch index.
 *
 * op(A) is described as an M x K matrix by (a_sm, a_sk) strides and op(B)
 * as K x N by (b_sk, b_sn): a transpose is a swap of the strides, so every
 * layout (row-major, column-major, any permuted view, broadcast rows) takes
 * the same code.  a_kfast / b_nfast only choose the staging order, so that
 * neighbouring loads read neighbouring memory.  The batch index z splits as
 * z = z0 * nb1 + z1 with strides (sb0, sb1) per matrix.
 *
 * Determinism: every element of C is one fma() chain over k = 0, 1, ..
 * K-1 in increasing order starting from +0 (fma is correctly rounded on
 * every target), then alpha * acc (+ beta * C): the result does not depend
 * on the tile sizes, the work-group shape or the backend.  Tiles past K are
 * never read (the partial last step stops at K).  beta == 0 never reads C;
 * alpha == 0 never uses A and B (BLAS semantics).
 */

#if defined(GEMM_F64)
typedef double gemm_in_t;
typedef double gemm_acc_t;
#define GEMM_CVT(x) (x)
#define GEMM_OUT(v) (v)
#define GEMM_SCALAR(bits) as_double(bits)
#elif defined(GEMM_F16)
typedef ushort gemm_in_t;
typedef float gemm_acc_t;
#define GEMM_CVT(x) lk_half_to_float(x)
#define GEMM_OUT(v) lk_float_to_half(v)
#define GEMM_SCALAR(bits) as_float((uint)(bits))
#elif defined(GEMM_BF16)
typedef ushort gemm_in_t;
typedef float gemm_acc_t;
#define GEMM_CVT(x) lk_bf16_to_float(x)
#define GEMM_OUT(v) lk_float_to_bf16(v)
#define GEMM_SCALAR(bits) as_float((uint)(bits))
#else
typedef float gemm_in_t;
typedef float gemm_acc_t;
#define GEMM_CVT(x) (x)
#define GEMM_OUT(v) (v)
#define GEMM_SCALAR(bits) as_float((uint)(bits))
#endif

#ifndef GEMM_BM
#define GEMM_BM 64
#endif
#ifndef GEMM_BN
#define GEMM_BN 64
#endif
#ifndef GEMM_BK
#define GEMM_BK 64
#endif
#ifndef GEMM_TM
#define GEMM_TM 4
#endif
#ifndef GEMM_TN
#define GEMM_TN 16
#endif
#ifndef GEMM_VM
#define GEMM_VM GEMM_TM
#endif
#ifndef GEMM_VN
#define GEMM_VN GEMM_TN
#endif
#ifndef GEMM_ROWS_X
#define GEMM_ROWS_X 1
#endif
#ifndef GEMM_CHUNKED
#define GEMM_CHUNKED 1
#endif
#ifndef GEMM_PAD
#define GEMM_PAD 0
#endif
#ifndef GEMM_UNROLL
#define GEMM_UNROLL 0 /* unroll the k loop too (GPUs) */
#endif

#define GEMM_NR (GEMM_BM / GEMM_TM) /* items along the rows    */
#define GEMM_NC (GEMM_BN / GEMM_TN) /* items along the columns */
#define GEMM_NT (GEMM_NR * GEMM_NC)

#if GEMM_BM % GEMM_TM || GEMM_BN % GEMM_TN || GEMM_TM % GEMM_VM || GEMM_TN % GEMM_VN
#error "gemm.cl: BM/BN must be multiples of TM/TN, and TM/TN of VM/VN"
#endif
#if !GEMM_CHUNKED && ((GEMM_BM * GEMM_BK) % GEMM_NT || (GEMM_BK * GEMM_BN) % GEMM_NT)
#error "gemm.cl: the tiles must split evenly over the work-items"
#endif
#if GEMM_CHUNKED && GEMM_PAD
#error "gemm.cl: GEMM_CHUNKED tiles are not padded"
#endif

/* Row (within the block tile) of the item's i-th row, column of its j-th. */
#define GEMM_ROW(ri, i) \
  (((i) / GEMM_VM) * (GEMM_NR * GEMM_VM) + (ri) * GEMM_VM + ((i) % GEMM_VM))
#define GEMM_COL(ci, j) \
  (((j) / GEMM_VN) * (GEMM_NC * GEMM_VN) + (ci) * GEMM_VN + ((j) % GEMM_VN))

/* Full unrolling of the register-block loops (their trip counts are
 * constants): the accumulators then live in registers, and on the CPU the
 * C compiler turns each row of the block into vector FMAs. */
#if defined(LIGHTOS_TARGET_CPU) && defined(__GNUC__) && !defined(__clang__)
#define GEMM_UNROLL_FULL _Pragma("GCC unroll 128")
#else
#define GEMM_UNROLL_FULL _Pragma("unroll")
#endif
/* The epilogue indexes the accumulators by its loop counters: unrolled on
 * GPUs (so they stay in registers), a plain loop on CPUs (where they are
 * memory anyway), which keeps the f16 conversions out of 2*TM*TN copies. */
#if GEMM_UNROLL
#define GEMM_UNROLL_EPI GEMM_UNROLL_FULL
#else
#define GEMM_UNROLL_EPI
#endif

/* One k step of the register block: ap / bp point at the item's first row
 * of As / column of Bs for this k; as_sm is As's row stride. */
#define GEMM_STEP(ap, bp)                                                     \
  do {                                                                        \
    gemm_acc_t av_[GEMM_TM], bv_[GEMM_TN];                                    \
    GEMM_UNROLL_FULL for (int i_ = 0; i_ < GEMM_TM; ++i_)                     \
      av_[i_] = (ap)[GEMM_ROW(0, i_) * as_sm];                                \
    GEMM_UNROLL_FULL for (int j_ = 0; j_ < GEMM_TN; ++j_)                     \
      bv_[j_] = (bp)[GEMM_COL(0, j_)];                                        \
    GEMM_UNROLL_FULL for (int i_ = 0; i_ < GEMM_TM; ++i_)                     \
      GEMM_UNROLL_FULL for (int j_ = 0; j_ < GEMM_TN; ++j_)                   \
        acc[i_ * GEMM_TN + j_] = fma(av_[i_], bv_[j_], acc[i_ * GEMM_TN + j_]); \
  } while (0)

#if GEMM_CHUNKED
/* Stages lines first, first+step, ... of a tile: line l holds `len`
 * elements; element e comes from src[base + l*s_line + e*s_elem] (0 from
 * line lines_ok or element len_ok on) and goes to dst[l*d_line + e*d_elem].
 * A line that is unit-stride on both sides and whole is a plain copy,
 * which the C compiler vectorises. */
static inline void gemm_stage(__local gemm_acc_t* dst, int d_line, int d_elem,
                              __global const gemm_in_t* src, long base, long s_line,
                              long s_elem, int lines, int len, int lines_ok, int len_ok,
                              int first, int step) {
  for (int l = first; l < lines; l += step) {
    __local gemm_acc_t* d = dst + l * d_line;
    if (l >= lines_ok) {
      for (int e = 0; e < len; ++e) d[e * d_elem] = (gemm_acc_t)0;
      continue;
    }
    __global const gemm_in_t* p = src + (base + (long)l * s_line);
    if (len_ok >= len && s_elem == 1 && d_elem == 1) {
      for (int e = 0; e < len; ++e) d[e] = GEMM_CVT(p[e]);
    } else {
      for (int e = 0; e < len; ++e)
        d[e * d_elem] = e < len_ok ? GEMM_CVT(p[e * s_elem]) : (gemm_acc_t)0;
    }
  }
}
#define GEMM_A_SIZE (GEMM_BM * GEMM_BK)
#define GEMM_B_SIZE (GEMM_BK * GEMM_BN)
#else
#define GEMM_AS_LD (GEMM_BM + GEMM_PAD)
#define GEMM_BS_LD (GEMM_BN + GEMM_PAD)
#define GEMM_A_SIZE (GEMM_BK * GEMM_AS_LD)
#define GEMM_B_SIZE (GEMM_BK * GEMM_BS_LD)
#define GEMM_PER_A (GEMM_BM * GEMM_BK / GEMM_NT)
#define GEMM_PER_B (GEMM_BK * GEMM_BN / GEMM_NT)
/* The staging order, fixed at build time when the host passes it (GPUs:
 * the index arithmetic then folds; about 9% faster on an H100). */
#if defined(GEMM_A_KFAST)
#define GEMM_AKF GEMM_A_KFAST
#else
#define GEMM_AKF a_kfast
#endif
#if defined(GEMM_B_NFAST)
#define GEMM_BNF GEMM_B_NFAST
#else
#define GEMM_BNF b_nfast
#endif
/* Element r of an item's share of a tile: every NT-th element, so that
 * neighbouring items read neighbouring addresses along the unit-stride
 * direction (coalesced); (m, kk) of A and (kk, n) of B. */
#define GEMM_A_MK(r, m, kk)                                                  \
  const int e_##r = (r) * GEMM_NT + li;                                      \
  const int m = GEMM_AKF ? e_##r / GEMM_BK : e_##r % GEMM_BM;                \
  const int kk = GEMM_AKF ? e_##r % GEMM_BK : e_##r / GEMM_BM
#define GEMM_B_KN(r, kk, n)                                                  \
  const int e_##r = (r) * GEMM_NT + li;                                      \
  const int kk = GEMM_BNF ? e_##r / GEMM_BN : e_##r % GEMM_BK;               \
  const int n = GEMM_BNF ? e_##r % GEMM_BN : e_##r / GEMM_BK
/* Loads the item's share of the tiles of the k step at k0v (kt valid k)
 * into registers: issued before the previous step's arithmetic, so the
 * memory latency overlaps it. */
#define GEMM_FETCH(k0v, ktv)                                                 \
  do {                                                                       \
    GEMM_UNROLL_FULL for (int r = 0; r < GEMM_PER_A; ++r) {                  \
      GEMM_A_MK(r, m, kk);                                                   \
      gemm_acc_t v = (gemm_acc_t)0;                                          \
      if (row0 + m < M && kk < (ktv))                                        \
        v = GEMM_CVT(A[a_base + (long)m * a_sm + (long)((k0v) + kk) * a_sk]); \
      LIGHTOS_P(pa)[r] = v;                                                  \
    }                                                                        \
    GEMM_UNROLL_FULL for (int r = 0; r < GEMM_PER_B; ++r) {                  \
      GEMM_B_KN(r, kk, n);                                                   \
      gemm_acc_t v = (gemm_acc_t)0;                                          \
      if (col0 + n < N && kk < (ktv))                                        \
        v = GEMM_CVT(B[b_base + (long)((k0v) + kk) * b_sk + (long)n * b_sn]); \
      LIGHTOS_P(pb)[r] = v;                                                  \
    }                                                                        \
  } while (0)
/* Stores the fetched registers into the local tiles. */
#define GEMM_STORE()                                                         \
  do {                                                                       \
    GEMM_UNROLL_FULL for (int r = 0; r < GEMM_PER_A; ++r) {                  \
      GEMM_A_MK(r, m, kk);                                                   \
      As[kk * GEMM_AS_LD + m] = LIGHTOS_P(pa)[r];                            \
    }                                                                        \
    GEMM_UNROLL_FULL for (int r = 0; r < GEMM_PER_B; ++r) {                  \
      GEMM_B_KN(r, kk, n);                                                   \
      Bs[kk * GEMM_BS_LD + n] = LIGHTOS_P(pb)[r];                            \
    }                                                                        \
  } while (0)
typedef gemm_acc_t gemm_fetch_a_t[GEMM_PER_A];
typedef gemm_acc_t gemm_fetch_b_t[GEMM_PER_B];
#endif

typedef gemm_acc_t gemm_block_t[GEMM_TM * GEMM_TN];

__kernel void gemm(__global const gemm_in_t* restrict A, __global const gemm_in_t* restrict B,
                   __global gemm_in_t* restrict C, int M, int N, int K,
                   long a_off, long a_sm, long a_sk, long b_off, long b_sk, long b_sn,
                   long c_off, long c_sm, long c_sn, int nb1, long a_sb0, long a_sb1,
                   long b_sb0, long b_sb1, long c_sb0, long c_sb1, ulong alpha_bits,
                   ulong beta_bits, int a_kfast, int b_nfast) {
  __local gemm_acc_t As[GEMM_A_SIZE];
  __local gemm_acc_t Bs[GEMM_B_SIZE];
  LIGHTOS_PRIVATE(gemm_block_t, accp);

  const int row0 = (int)get_group_id(1) * GEMM_BM;
  const int col0 = (int)get_group_id(0) * GEMM_BN;
  const int z = (int)get_group_id(2);
  const int z0 = z / nb1, z1 = z % nb1;
  const long a_base = a_off + (long)z0 * a_sb0 + (long)z1 * a_sb1 + (long)row0 * a_sm;
  const long b_base = b_off + (long)z0 * b_sb0 + (long)z1 * b_sb1 + (long)col0 * b_sn;
  const long c_base = c_off + (long)z0 * c_sb0 + (long)z1 * c_sb1;
  const gemm_acc_t alpha = GEMM_SCALAR(alpha_bits);
  const gemm_acc_t beta = GEMM_SCALAR(beta_bits);
  /* alpha == 0: A and B are not read at all (no k steps). */
  const int nsteps = alpha == (gemm_acc_t)0 ? 0 : (K + GEMM_BK - 1) / GEMM_BK;
  /* Layout of As: element (m, kk) at m * as_sm + kk * as_sk.  Bs is always
   * [kk][n] with row stride GEMM_BN (+ pad). */
#if GEMM_CHUNKED
  const int as_sm = a_kfast ? GEMM_BK : 1;
  const int as_sk = a_kfast ? 1 : GEMM_BM;
  const int bs_sk = GEMM_BN;
#else
  const int as_sm = 1;
  const int as_sk = GEMM_AS_LD;
  const int bs_sk = GEMM_BS_LD;
#endif

  LIGHTOS_ITEMS {
    GEMM_UNROLL_FULL for (int q = 0; q < GEMM_TM * GEMM_TN; ++q) LIGHTOS_P(accp)[q] = (gemm_acc_t)0;
  }
#if !GEMM_CHUNKED
  LIGHTOS_PRIVATE(gemm_fetch_a_t, pa);
  LIGHTOS_PRIVATE(gemm_fetch_b_t, pb);
  if (nsteps > 0) {
    LIGHTOS_ITEMS {
      const int li = (int)(get_local_id(1) * get_local_size(0) + get_local_id(0));
      GEMM_FETCH(0, K < GEMM_BK ? K : GEMM_BK);
    }
  }
#endif

  for (int step = 0; step < nsteps; ++step) {
    const int k0 = step * GEMM_BK;
    const int kt = K - k0 < GEMM_BK ? K - k0 : GEMM_BK;

    /* Stage op(A)[row0.., k0..] and op(B)[k0.., col0..] in local memory,
     * converted to the accumulation type; outside the matrices: 0. */
    LIGHTOS_ITEMS {
      const int li = (int)(get_local_id(1) * get_local_size(0) + get_local_id(0));
#if GEMM_CHUNKED
      /* Lines run along the unit-stride direction of the source. */
      const long a_at = a_base + (long)k0 * a_sk;
      const long b_at = b_base + (long)k0 * b_sk;
      if (a_kfast)
        gemm_stage(As, GEMM_BK, 1, A, a_at, a_sm, a_sk, GEMM_BM, GEMM_BK, M - row0, kt, li,
                   GEMM_NT);
      else
        gemm_stage(As, GEMM_BM, 1, A, a_at, a_sk, a_sm, GEMM_BK, GEMM_BM, kt, M - row0, li,
                   GEMM_NT);
      if (b_nfast)
        gemm_stage(Bs, GEMM_BN, 1, B, b_at, b_sk, b_sn, GEMM_BK, GEMM_BN, kt, N - col0, li,
                   GEMM_NT);
      else
        gemm_stage(Bs, 1, GEMM_BN, B, b_at, b_sn, b_sk, GEMM_BN, GEMM_BK, N - col0, kt, li,
                   GEMM_NT);
#else
      GEMM_STORE();
#endif
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    LIGHTOS_ITEMS {
#if GEMM_ROWS_X
      const int ri = (int)get_local_id(0), ci = (int)get_local_id(1);
#else
      const int ci = (int)get_local_id(0), ri = (int)get_local_id(1);
#endif
#if !GEMM_CHUNKED
      if (step + 1 < nsteps) {
        const int li = (int)(get_local_id(1) * get_local_size(0) + get_local_id(0));
        const int k1 = k0 + GEMM_BK;
        GEMM_FETCH(k1, K - k1 < GEMM_BK ? K - k1 : GEMM_BK);
      }
#endif
      gemm_acc_t acc[GEMM_TM * GEMM_TN];
      GEMM_UNROLL_FULL for (int q = 0; q < GEMM_TM * GEMM_TN; ++q) acc[q] = LIGHTOS_P(accp)[q];
      __local const gemm_acc_t* ap = As + GEMM_ROW(ri, 0) * as_sm;
      __local const gemm_acc_t* bp = Bs + GEMM_COL(ci, 0);
      if (kt == GEMM_BK) {
#if GEMM_UNROLL
#pragma unroll
#endif
        for (int kk = 0; kk < GEMM_BK; ++kk, ap += as_sk, bp += bs_sk) GEMM_STEP(ap, bp);
      } else {
        for (int kk = 0; kk < kt; ++kk, ap += as_sk, bp += bs_sk) GEMM_STEP(ap, bp);
      }
      GEMM_UNROLL_FULL for (int q = 0; q < GEMM_TM * GEMM_TN; ++q) LIGHTOS_P(accp)[q] = acc[q];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  LIGHTOS_ITEMS {
#if GEMM_ROWS_X
    const int ri = (int)get_local_id(0), ci = (int)get_local_id(1);
#else
    const int ci = (int)get_local_id(0), ri = (int)get_local_id(1);
#endif
    GEMM_UNROLL_EPI for (int i = 0; i < GEMM_TM; ++i) {
      const int row = row0 + GEMM_ROW(ri, i);
      if (row >= M) continue;
      GEMM_UNROLL_EPI for (int j = 0; j < GEMM_TN; ++j) {
        const int col = col0 + GEMM_COL(ci, j);
        if (col >= N) continue;
        const long idx = c_base + (long)row * c_sm + (long)col * c_sn;
        gemm_acc_t v;
        if (alpha == (gemm_acc_t)0) {
          v = beta == (gemm_acc_t)0 ? (gemm_acc_t)0 : beta * GEMM_CVT(C[idx]);
        } else {
          v = alpha * LIGHTOS_P(accp)[i * GEMM_TN + j];
          if (beta != (gemm_acc_t)0) v = v + beta * GEMM_CVT(C[idx]);
        }
        C[idx] = GEMM_OUT(v);
      }
    }
  }
}
