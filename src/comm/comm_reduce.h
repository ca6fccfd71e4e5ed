/* Reduction arithmetic of the collectives, on host memory.
 *
 * Accumulation types: f16, bf16 and f32 accumulate in f32, f64 in f64,
 * integers in their own type with wrapping arithmetic.  Results are
 * rounded to the element type once, at the end.
 *
 * min and max are fully order independent: NaN wins (returned as the
 * type's canonical quiet NaN), and between equal values -0 is smaller than
 * +0.  Integer sums and products wrap (two's complement), so they are
 * order independent too.
 *
 * The fixed summation tree (TOPOLOGY): over m inputs, split at the largest
 * power of two below m, reduce each side the same way, combine left op
 * right.  For m a power of two this is the balanced pairwise tree, so a
 * rank that pre-reduces 2^k aligned inputs computes exactly a subtree.
 *
 * STRICT (float sum and avg): each block of LK_STRICT_BLOCK elements (by
 * global element index) has a shared exponent E, the largest over every
 * contribution of floor(log2|x|) + 1; each x becomes the integer
 * round_even(x * 2^(Q - E)) (Q = 48 in an int64 for f16/bf16/f32; Q = 110
 * in an int128 for f64).  Integer sums are exact and order independent;
 * the total is rounded once to the element type.  Up to
 * LK_STRICT_MAX_CONTRIB contributions fit without overflow.  Non-finite
 * inputs travel as a per-element mask (NaN, +Inf, -Inf) and give NaN, +Inf
 * or -Inf as IEEE addition would; a zero result is +0. */
#ifndef LK_COMM_REDUCE_H
#define LK_COMM_REDUCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lightos/comm.h"

#define LK_STRICT_BLOCK 256
#define LK_STRICT_MAX_CONTRIB 16384
#define LK_STRICT_EXP_ZERO INT16_MIN /* a block of zeros */

enum { LK_SPECIAL_NAN = 1, LK_SPECIAL_PINF = 2, LK_SPECIAL_NINF = 4 };

bool lk_red_dtype_is_float(lightos_dtype_t dt);
/* Bytes per accumulator element. */
size_t lk_red_acc_size(lightos_dtype_t dt);

/* dst[i] = dst[i] op src[i], element type (the ring); avg adds. */
void lk_red_accum(lightos_dtype_t dt, lightos_reduce_op_t op, void* dst, const void* src,
                  size_t n);
/* acc[i] = acc[i] op b[i], both in the accumulation type (avg adds). */
void lk_red_combine(lightos_dtype_t dt, lightos_reduce_op_t op, void* acc, const void* b,
                    size_t n);
/* out_acc = the fixed tree over in[0..m) (each n elements of the element
 * type, or of the accumulation type when in_acc).  out_acc may not alias
 * an input. */
lightos_status_t lk_red_tree(lightos_dtype_t dt, lightos_reduce_op_t op, const void* const* in,
                             uint32_t m, bool in_acc, void* out_acc, size_t n);
/* lk_red_tree then lk_red_finish, block by block while the block is in
 * cache, into out (element type; may be one of the inputs). */
lightos_status_t lk_red_tree_finish(lightos_dtype_t dt, lightos_reduce_op_t op,
                                    const void* const* in, uint32_t m, bool in_acc, void* out,
                                    size_t n, uint64_t ntotal);
/* The same where input r stands for spans[r] leaves of the tree (each span
 * a power of two starting at a multiple of itself, counting leaves in input
 * order): every such block is a node of T over all the leaves, so the result
 * is T's over the leaves when input r is T over its own.  Other spans:
 * LIGHTOS_INTERNAL. */
lightos_status_t lk_red_tree_finish_spans(lightos_dtype_t dt, lightos_reduce_op_t op,
                                          const void* const* in, uint32_t m, bool in_acc,
                                          void* out, size_t n, uint64_t ntotal,
                                          const uint32_t* spans);
/* acc -> element type (rounded once); for avg, divided by ntotal first. */
void lk_red_finish(lightos_dtype_t dt, lightos_reduce_op_t op, const void* acc, void* dst,
                   size_t n, uint64_t ntotal);

/* Recursive halving over n = 2^K ranks (the fixed tree built from pairs,
 * host path and CUDA path): step k pairs rank r with r ^ 2^k, and the pair
 * splits the region both hold, the rank with bit k clear keeping the lower
 * part (the shorter one when the length is odd).  Rank me's region before
 * step k is [lo[k], hi[k]), k = 0 .. K, starting from [base, base + len);
 * returns K (at most LK_HALVE_MAXSTEP: the arrays hold K + 1 entries). */
#define LK_HALVE_MAXSTEP 31
uint32_t lk_halve_regions(uint32_t n, uint32_t me, size_t base, size_t len, size_t* lo,
                          size_t* hi);

/* STRICT.  Bytes per fixed-point element (8 or 16). */
size_t lk_strict_fixed_size(lightos_dtype_t dt);
/* Merges in[0..n) (starting at a block boundary) into exps (max) and,
 * when special is not NULL, ORs non-finite flags into special[0..n).
 * Returns true when a non-finite value was seen. */
bool lk_strict_scan(lightos_dtype_t dt, const void* in, size_t n, int16_t* exps,
                    uint8_t* special);
/* fixed[i] += to_fixed(in[i]) with the block exponents exps (indexed from
 * the block of in[0]). */
void lk_strict_add(lightos_dtype_t dt, const void* in, size_t n, const int16_t* exps,
                   void* fixed);
/* a[i] += b[i] (fixed point). */
void lk_strict_sum(lightos_dtype_t dt, void* a, const void* b, size_t n);
/* out[i] = the fixed sum rounded once (avg: divided by ntotal first),
 * special (may be NULL) deciding non-finite results. */
void lk_strict_finish(lightos_dtype_t dt, lightos_reduce_op_t op, const void* fixed, size_t n,
                      const int16_t* exps, const uint8_t* special, uint64_t ntotal, void* out);

/* Element conversions (round to nearest even; NaN stays NaN). */
float lk_f16_to_f32(uint16_t h);
uint16_t lk_f32_to_f16(float f);
float lk_bf16_to_f32(uint16_t h);
uint16_t lk_f32_to_bf16(float f);

#endif
