/* Host algorithms of the collectives, over a transport's exchange().
 *
 * Reductions at TOPOLOGY and STRICT are one scheme: the element range is
 * cut into one chunk per rank; an all-to-all brings every rank's part of
 * chunk r to rank r; rank r reduces its chunk with all contributions in
 * hand, in rank order (the fixed tree, or exact integer sums); an
 * all-gather returns the reduced chunks to everyone.  Which rank reduces
 * which chunk, and how the bytes travel, never changes the arithmetic.
 * The bytes moved per rank are those of a ring allreduce.
 *
 * NONE and RUN use the classic ring (reduce-scatter then all-gather, the
 * partial sums travelling around the ring): the same bytes, and results
 * that repeat run to run but depend on the rank count. */
#include <stdlib.h>
#include <string.h>

#include "comm/comm_internal.h"
#include "comm/comm_reduce.h"
#include "core/error.h"
#include "core/util.h"

void lk_scratch_free(lk_scratch_t* s) {
  for (int i = 0; i < LK_SCRATCH_SLOTS; ++i) {
    free(s->p[i]);
    s->p[i] = NULL;
    s->cap[i] = 0;
  }
}

/* A work buffer of at least `bytes` (contents undefined). */
static void* lk_tmp(const lk_algo_t* a, int slot, size_t bytes) {
  if (!bytes) bytes = 1;
  if (!a->scratch) return malloc(bytes);
  lk_scratch_t* s = a->scratch;
  if (s->cap[slot] < bytes) {
    free(s->p[slot]);
    s->p[slot] = malloc(bytes);
    s->cap[slot] = s->p[slot] ? bytes : 0;
  }
  return s->p[slot];
}

static void lk_tmp_done(const lk_algo_t* a, void* p) {
  if (!a->scratch) free(p);
}

/* Chunk offsets (size + 1 entries) of count elements in units of align. */
static void lk_partition(size_t count, size_t align, uint32_t size, size_t* offs) {
  size_t units = (count + align - 1) / align;
  size_t base = units / size, extra = units % size, u = 0;
  for (uint32_t r = 0; r <= size; ++r) {
    size_t o = u * align;
    offs[r] = o < count ? o : count;
    if (r < size) u += base + (r < extra ? 1 : 0);
  }
}

/* Called with every rank's part of this rank's chunk, in rank order. */
typedef lightos_status_t (*lk_chunk_fn)(void* user, const void* const* in, uint32_t m,
                                        size_t off, size_t len, void* out);

enum { LK_AG_ALL, LK_AG_ROOT, LK_AG_NONE };

typedef struct lk_rs_args {
  const void* data;   /* count elements of in_esize */
  size_t in_esize;
  const size_t* offs; /* chunk offsets, size + 1 */
  lk_chunk_fn fn;
  void* user;
  void* out;          /* AG_ALL/AG_ROOT: count elements; AG_NONE: this rank's chunk */
  size_t out_esize;
  int mode;
  uint32_t root;
} lk_rs_args_t;

static lightos_status_t lk_rs_ag(const lk_algo_t* a, const lk_rs_args_t* r) {
  const uint32_t me = a->rank, n = a->size;
  const size_t my_off = r->offs[me], my_len = r->offs[me + 1] - my_off;
  size_t slot = my_len * r->in_esize;
  char* scratch = NULL;
  lightos_status_t s = LIGHTOS_SUCCESS;
  const void** in = malloc(n * sizeof *in);
  lk_xop_t* ops = malloc(2 * (size_t)n * sizeof *ops);
  if (n > 1 && slot) scratch = lk_tmp(a, LK_SCR_RECV, slot * (n - 1));
  if (!in || !ops || (n > 1 && slot && !scratch)) {
    s = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a %zu-byte reduction buffer",
                slot * (n - 1));
    goto out;
  }
  /* All-to-all: my part of chunk p to p; p's part of my chunk from p. */
  size_t k = 0;
  for (uint32_t p = 0, j = 0; p < n; ++p) {
    if (p == me) {
      in[p] = (const char*)r->data + my_off * r->in_esize;
      continue;
    }
    in[p] = scratch + slot * j++;
    ops[k++] = (lk_xop_t){true, p, (char*)r->data + r->offs[p] * r->in_esize,
                          (r->offs[p + 1] - r->offs[p]) * r->in_esize};
    ops[k++] = (lk_xop_t){false, p, (void*)in[p], slot};
  }
  s = a->x->vtbl->exchange(a->x, ops, k, a->deadline_ns);
  if (s) goto out;
  void* my_out = r->mode == LK_AG_NONE ? r->out : (char*)r->out + my_off * r->out_esize;
  if (my_len) s = r->fn(r->user, in, n, my_off, my_len, my_out);
  if (s) goto out;
  if (r->mode == LK_AG_NONE) goto out;
  k = 0;
  for (uint32_t p = 0; p < n; ++p) {
    if (p == me) continue;
    size_t pbytes = (r->offs[p + 1] - r->offs[p]) * r->out_esize;
    if (r->mode == LK_AG_ALL || p == r->root)
      ops[k++] = (lk_xop_t){true, p, my_out, my_len * r->out_esize};
    if (r->mode == LK_AG_ALL || me == r->root)
      ops[k++] = (lk_xop_t){false, p, (char*)r->out + r->offs[p] * r->out_esize, pbytes};
  }
  s = a->x->vtbl->exchange(a->x, ops, k, a->deadline_ns);
out:
  if (scratch) lk_tmp_done(a, scratch);
  free(in);
  free(ops);
  return s;
}

/* ---- Chunk reductions ----------------------------------------------------- */

typedef struct lk_tree_user {
  const lk_algo_t* a;
  lightos_dtype_t dt;
  lightos_reduce_op_t op;
  bool in_acc;
  uint64_t ntotal;
  const uint32_t* spans; /* leaves per rank (NULL: the tree over ranks) */
} lk_tree_user_t;

static lightos_status_t lk_chunk_tree(void* user, const void* const* in, uint32_t m, size_t off,
                                      size_t len, void* out) {
  (void)off;
  lk_tree_user_t* u = user;
  if (u->spans)
    return lk_red_tree_finish_spans(u->dt, u->op, in, m, u->in_acc, out, len, u->ntotal,
                                    u->spans);
  return lk_red_tree_finish(u->dt, u->op, in, m, u->in_acc, out, len, u->ntotal);
}

typedef struct lk_strict_user {
  const lk_algo_t* a;
  bool raw;              /* the inputs are elements (converted here), not fixed point */
  lightos_dtype_t dt;
  lightos_reduce_op_t op;
  const int16_t* exps;   /* whole range */
  const uint8_t* special; /* whole range, or NULL */
  uint64_t ntotal;
} lk_strict_user_t;

static lightos_status_t lk_chunk_strict(void* user, const void* const* in, uint32_t m, size_t off,
                                        size_t len, void* out) {
  lk_strict_user_t* u = user;
  size_t fsize = lk_strict_fixed_size(u->dt);
  void* sum = lk_tmp(u->a, LK_SCR_SUM, len * fsize);
  if (!sum) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for %zu sums", len);
  if (u->raw) {
    /* The conversion depends only on the element and the shared block
     * exponent, so the summing rank does it: elements travel, not the
     * twice-as-wide integers. */
    memset(sum, 0, len * fsize);
    for (uint32_t i = 0; i < m; ++i)
      lk_strict_add(u->dt, in[i], len, u->exps + off / LK_STRICT_BLOCK, sum);
  } else {
    memcpy(sum, in[0], len * fsize);
    for (uint32_t i = 1; i < m; ++i) lk_strict_sum(u->dt, sum, in[i], len);
  }
  lk_strict_finish(u->dt, u->op, sum, len, u->exps + off / LK_STRICT_BLOCK,
                   u->special ? u->special + off : NULL, u->ntotal, out);
  lk_tmp_done(u->a, sum);
  return LIGHTOS_SUCCESS;
}

static lightos_status_t lk_chunk_or(void* user, const void* const* in, uint32_t m, size_t off,
                                    size_t len, void* out) {
  (void)user;
  (void)off;
  uint8_t* o = out;
  /* in[rank] is out itself: read every input's j before writing o[j]. */
  for (size_t j = 0; j < len; ++j) {
    uint8_t v = 0;
    for (uint32_t i = 0; i < m; ++i) v |= ((const uint8_t*)in[i])[j];
    o[j] = v;
  }
  return LIGHTOS_SUCCESS;
}

/* ---- Allreduce ------------------------------------------------------------ */

/* Every rank's value of a uint64 (an all-gather); out has size entries. */
static lightos_status_t lk_gather_u64(const lk_algo_t* a, uint64_t mine, uint64_t* out) {
  out[a->rank] = mine;
  return lk_algo_allgather(a, &out[a->rank], out, sizeof(uint64_t));
}

static lightos_status_t lk_allreduce_ring(const lk_algo_t* a, const void* const* sends,
                                          uint32_t nsends, void* recv, size_t count,
                                          lightos_dtype_t dt, lightos_reduce_op_t op,
                                          uint64_t ntotal) {
  const size_t es = lightos_dtype_size(dt);
  const uint32_t n = a->size, me = a->rank;
  if (nsends > 1) {
    /* recv may be one of the later contributions: sum aside first. */
    void* local = lk_tmp(a, LK_SCR_LOCAL, count * es);
    if (!local) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a local sum");
    memcpy(local, sends[0], count * es);
    for (uint32_t i = 1; i < nsends; ++i)
      lk_red_accum(dt, op == LIGHTOS_OP_AVG ? LIGHTOS_OP_SUM : op, local, sends[i], count);
    memcpy(recv, local, count * es);
    lk_tmp_done(a, local);
  } else if (recv != sends[0]) {
    memmove(recv, sends[0], count * es);
  }
  lightos_status_t s = LIGHTOS_SUCCESS;
  if (n > 1) {
    size_t* offs = malloc((n + 1) * sizeof *offs);
    if (!offs) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
    lk_partition(count, 64, n, offs);
    size_t maxlen = 0;
    for (uint32_t r = 0; r < n; ++r)
      if (offs[r + 1] - offs[r] > maxlen) maxlen = offs[r + 1] - offs[r];
    char* tmp = lk_tmp(a, LK_SCR_RECV, maxlen * es + 1);
    if (!tmp) {
      free(offs);
      return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a ring buffer");
    }
    const uint32_t next = (me + 1) % n, prev = (me + n - 1) % n;
    for (uint32_t step = 0; step + 1 < n && !s; ++step) {
      uint32_t sc = (me + n - step) % n, rc = (me + 2 * n - step - 1) % n;
      lk_xop_t ops[2] = {
          {true, next, (char*)recv + offs[sc] * es, (offs[sc + 1] - offs[sc]) * es},
          {false, prev, tmp, (offs[rc + 1] - offs[rc]) * es}};
      s = a->x->vtbl->exchange(a->x, ops, 2, a->deadline_ns);
      if (!s) lk_red_accum(dt, op, (char*)recv + offs[rc] * es, tmp, offs[rc + 1] - offs[rc]);
    }
    for (uint32_t step = 0; step + 1 < n && !s; ++step) {
      uint32_t sc = (me + 1 + n - step) % n, rc = (me + n - step) % n;
      lk_xop_t ops[2] = {
          {true, next, (char*)recv + offs[sc] * es, (offs[sc + 1] - offs[sc]) * es},
          {false, prev, (char*)recv + offs[rc] * es, (offs[rc + 1] - offs[rc]) * es}};
      s = a->x->vtbl->exchange(a->x, ops, 2, a->deadline_ns);
    }
    lk_tmp_done(a, tmp);
    free(offs);
  }
  if (!s && op == LIGHTOS_OP_AVG && ntotal > 1) {
    /* The sums, divided once. */
    size_t asize = lk_red_acc_size(dt);
    char acc[4096 * 8];
    size_t per = sizeof acc / asize;
    for (size_t i = 0; i < count; i += per) {
      size_t m = count - i < per ? count - i : per;
      const void* one = (char*)recv + i * es;
      s = lk_red_tree(dt, LIGHTOS_OP_SUM, &one, 1, false, acc, m);
      if (s) break;
      lk_red_finish(dt, op, acc, (char*)recv + i * es, m, ntotal);
    }
  }
  return s;
}

/* raw: every rank has one contribution (all ranks must agree on it). */
static lightos_status_t lk_allreduce_strict(const lk_algo_t* a, const void* const* sends,
                                            uint32_t nsends, bool raw, void* recv, size_t count,
                                            lightos_dtype_t dt, lightos_reduce_op_t op,
                                            uint64_t ntotal_in, const size_t* offs) {
  const uint32_t n = a->size;
  const size_t nblocks = (count + LK_STRICT_BLOCK - 1) / LK_STRICT_BLOCK;
  const size_t fsize = lk_strict_fixed_size(dt);
  lightos_status_t s = LIGHTOS_SUCCESS;
  int16_t* exps = malloc(nblocks * sizeof *exps);
  int16_t* all = malloc(nblocks * n * sizeof *all);
  void* fixed = !raw ? lk_tmp(a, LK_SCR_FIXED, count * fsize) : NULL;
  if (fixed) memset(fixed, 0, count * fsize);
  uint8_t* special = NULL;
  uint64_t* flags = malloc(n * sizeof *flags);
  if (!exps || !all || (!raw && !fixed) || !flags) {
    s = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for %zu fixed-point sums", count);
    goto out;
  }
  for (size_t b = 0; b < nblocks; ++b) exps[b] = LK_STRICT_EXP_ZERO;
  bool any_special = false;
  for (uint32_t i = 0; i < nsends; ++i)
    any_special |= lk_strict_scan(dt, sends[i], count, exps, NULL);
  /* Shared exponents: the maximum over every rank; and whether anyone has
   * NaN/Inf. */
  s = lk_gather_u64(a, any_special, flags);
  if (s) goto out;
  memcpy(all + nblocks * a->rank, exps, nblocks * sizeof *exps);
  s = lk_algo_allgather(a, all + nblocks * a->rank, all, nblocks * sizeof *exps);
  if (s) goto out;
  for (uint32_t r = 0; r < n; ++r)
    for (size_t b = 0; b < nblocks; ++b)
      if (all[nblocks * r + b] > exps[b]) exps[b] = all[nblocks * r + b];
  any_special = false;
  for (uint32_t r = 0; r < n; ++r) any_special |= flags[r] != 0;
  if (any_special) {
    special = calloc(count, 1);
    if (!special) {
      s = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for %zu flags", count);
      goto out;
    }
    int16_t dummy[1];
    for (uint32_t i = 0; i < nsends; ++i) {
      /* Flags only: exponents are final already. */
      for (size_t b = 0; b < count; b += LK_STRICT_BLOCK) {
        size_t m = count - b < LK_STRICT_BLOCK ? count - b : LK_STRICT_BLOCK;
        dummy[0] = INT16_MAX;
        lk_strict_scan(dt, (const char*)sends[i] + b * lightos_dtype_size(dt), m, dummy,
                       special + b);
      }
    }
    lk_rs_args_t ra = {special, 1, offs, lk_chunk_or, NULL, special, 1, LK_AG_ALL, 0};
    s = lk_rs_ag(a, &ra);
    if (s) goto out;
  }
  /* One contribution per rank: its elements travel and the summing rank
   * converts them.  Several: their exact local sum travels, in fixed point. */
  if (!raw)
    for (uint32_t i = 0; i < nsends; ++i) lk_strict_add(dt, sends[i], count, exps, fixed);
  lk_strict_user_t u = {a, raw, dt, op, exps, special, ntotal_in};
  lk_rs_args_t ra = {raw ? sends[0] : fixed, raw ? lightos_dtype_size(dt) : fsize, offs,
                     lk_chunk_strict, &u, recv, lightos_dtype_size(dt), LK_AG_ALL, 0};
  s = lk_rs_ag(a, &ra);
out:
  free(exps);
  free(all);
  if (fixed) lk_tmp_done(a, fixed);
  free(special);
  free(flags);
  return s;
}

/* ---- TOPOLOGY by recursive halving (2^K ranks) ------------------------------
 *
 * The same pairwise tree over rank index as the all-to-all scheme, built
 * from pairs (Rabenseifner's reduce-scatter + all-gather): step k pairs
 * rank r with r ^ 2^k; both hold partial results over their aligned blocks
 * of 2^k ranks on the same region; the rank with bit k clear keeps the
 * lower half, the other the upper, each sends the other half and combines
 * what it receives.  A pair's combination a op b is commutative (sums and
 * products are single IEEE operations, min/max are order independent,
 * NaNs end canonical), so after step k a rank holds, on its region, the
 * result over its aligned block of 2^(k+1) ranks: T's subtree.  Then the
 * finishing pass and all-gathers in reverse.  Bytes per rank: those of a
 * ring; messages per rank: 2 log2(n) instead of 2(n-1), for large groups
 * that span machines.  Its steps run one after the other, so it is opt-in
 * (LIGHTOS_COMM_HALVING=1, the same on every rank): on 4 processes of a
 * 2-core machine over MPI it was slower than the all-to-all, whose
 * exchanges all run at once (16 MiB: 21-22 ms vs 14-17 ms).  Partials
 * travel in the accumulation type, so this runs where that is the element
 * type (or multi-contribution data, which the all-to-all moves in the
 * accumulation type too). */

static bool lk_halving_applies(const lk_algo_t* a, size_t in_esize, lightos_dtype_t dt,
                               size_t count) {
  const uint32_t n = a->size;
  return n >= 4 && (n & (n - 1)) == 0 && n <= (1u << 30) && count >= n &&
         in_esize == lk_red_acc_size(dt) && lk_env_flag("LIGHTOS_COMM_HALVING", false);
}

/* The part of this rank's step-k region that it gives away (its
 * partner's region after step k): [*glo, *ghi). */
static void lk_halve_other(const size_t* lo, const size_t* hi, uint32_t k, size_t* glo,
                           size_t* ghi) {
  const bool lower = lo[k + 1] == lo[k];
  *glo = lower ? hi[k + 1] : lo[k];
  *ghi = lower ? hi[k] : lo[k + 1];
}

static lightos_status_t lk_allreduce_halving(const lk_algo_t* a, const void* data, void* recv,
                                             size_t count, lightos_dtype_t dt,
                                             lightos_reduce_op_t op, uint64_t ntotal) {
  const uint32_t n = a->size, me = a->rank;
  const size_t asize = lk_red_acc_size(dt), esize = lightos_dtype_size(dt);
  size_t lo[LK_HALVE_MAXSTEP + 1], hi[LK_HALVE_MAXSTEP + 1];
  const uint32_t steps = lk_halve_regions(n, me, 0, count, lo, hi);
  /* The working partials: recv itself when the types agree. */
  char* w = asize == esize ? recv : lk_tmp(a, LK_SCR_ACC, count * asize);
  char* r = lk_tmp(a, LK_SCR_RECV, (count - count / 2) * asize);
  if (!w || !r) {
    if (w && w != recv) lk_tmp_done(a, w);
    if (r) lk_tmp_done(a, r);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a %zu-element reduction",
                   count);
  }
  if (w != data) memmove(w, data, count * asize);
  lightos_status_t s = LIGHTOS_SUCCESS;
  for (uint32_t k = 0; k < steps && !s; ++k) {
    const uint32_t peer = me ^ (1u << k);
    size_t glo, ghi;
    lk_halve_other(lo, hi, k, &glo, &ghi);
    const size_t keep = hi[k + 1] - lo[k + 1];
    lk_xop_t ops[2] = {{true, peer, w + glo * asize, (ghi - glo) * asize},
                       {false, peer, r, keep * asize}};
    s = a->x->vtbl->exchange(a->x, ops, 2, a->deadline_ns);
    if (!s) lk_red_combine(dt, op, w + lo[k + 1] * asize, r, keep);
  }
  if (!s) {
    lk_red_finish(dt, op, w + lo[steps] * asize, (char*)recv + lo[steps] * esize,
                  hi[steps] - lo[steps], ntotal);
    for (uint32_t k = steps; k-- > 0 && !s;) {
      const uint32_t peer = me ^ (1u << k);
      size_t glo, ghi;
      lk_halve_other(lo, hi, k, &glo, &ghi);
      lk_xop_t ops[2] = {
          {true, peer, (char*)recv + lo[k + 1] * esize, (hi[k + 1] - lo[k + 1]) * esize},
          {false, peer, (char*)recv + glo * esize, (ghi - glo) * esize}};
      s = a->x->vtbl->exchange(a->x, ops, 2, a->deadline_ns);
    }
  }
  if (w != recv) lk_tmp_done(a, w);
  lk_tmp_done(a, r);
  return s;
}

static bool lk_strict_applies(lightos_determinism_t level, lightos_dtype_t dt,
                              lightos_reduce_op_t op) {
  return level == LIGHTOS_DETERMINISM_STRICT && lk_red_dtype_is_float(dt) &&
         (op == LIGHTOS_OP_SUM || op == LIGHTOS_OP_AVG);
}

lightos_status_t lk_algo_allreduce(const lk_algo_t* a, const void* const* sends, uint32_t nsends,
                                   bool multi, void* recv, size_t count, lightos_dtype_t dt,
                                   lightos_reduce_op_t op) {
  const uint32_t n = a->size;
  uint64_t ntotal = (uint64_t)n * nsends, maxk = nsends;
  lightos_status_t s;
  /* TOPOLOGY with contributions per rank that differ but each make an
   * aligned power-of-two block of leaves (4, 2, 1, 1): rank r's tree is a
   * node of the tree over all the leaves, which the ranks' trees then
   * complete (spans).  Equal counts need no spans: the tree over ranks is
   * that tree already. */
  const uint32_t* spans = NULL;
  uint32_t* own = NULL; /* spans made here (multi) */
  if (a->spans && !multi) {
    /* The upper level of a composed group: rank r's buffer is its block's
     * subtree over a->spans[r] leaves. */
    ntotal = 0;
    for (uint32_t r = 0; r < n; ++r) ntotal += a->spans[r];
    if (a->level >= LIGHTOS_DETERMINISM_TOPOLOGY && !lk_strict_applies(a->level, dt, op))
      spans = a->spans;
  }
  if (multi) {
    /* Contributions per rank may differ: the total decides avg (and the
     * STRICT headroom). */
    uint64_t* ks = malloc(n * sizeof *ks);
    if (!ks) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
    s = lk_gather_u64(a, nsends, ks);
    ntotal = 0;
    bool aligned = true, equal = true;
    for (uint32_t r = 0; r < n; ++r) {
      aligned = aligned && ks[r] && !(ks[r] & (ks[r] - 1)) && ntotal % ks[r] == 0 &&
                ks[r] <= UINT32_MAX / 2;
      equal = equal && ks[r] == ks[0];
      ntotal += ks[r];
      if (ks[r] > maxk) maxk = ks[r];
    }
    if (!s && aligned && !equal && ntotal <= UINT32_MAX / 2 &&
        a->level >= LIGHTOS_DETERMINISM_TOPOLOGY && !lk_strict_applies(a->level, dt, op)) {
      spans = own = malloc(n * sizeof *own);
      if (!own) s = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
      for (uint32_t r = 0; own && r < n; ++r) own[r] = (uint32_t)ks[r];
    }
    free(ks);
    if (s) return s;
  }
  if (a->level <= LIGHTOS_DETERMINISM_RUN)
    return lk_allreduce_ring(a, sends, nsends, recv, count, dt, op, ntotal);

  size_t* offs = malloc((n + 1) * sizeof *offs);
  if (!offs) {
    free(own);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  }
  if (lk_strict_applies(a->level, dt, op)) {
    if (ntotal > LK_STRICT_MAX_CONTRIB) {
      free(offs);
      return LK_FAIL(LIGHTOS_UNSUPPORTED,
                     "%llu contributions: STRICT sums hold at most %d without overflow",
                     (unsigned long long)ntotal, LK_STRICT_MAX_CONTRIB);
    }
    lk_partition(count, LK_STRICT_BLOCK, n, offs);
    s = lk_allreduce_strict(a, sends, nsends, maxk == 1, recv, count, dt, op, ntotal, offs);
    free(offs);
    return s;
  }
  /* TOPOLOGY (and STRICT for integers, min, max: already order independent). */
  lk_partition(count, 64, n, offs);
  lk_tree_user_t u = {a, dt, op, multi, ntotal, spans};
  const void* data = sends[0];
  void* acc = NULL;
  if (multi) {
    /* A rank's contributions are the first leaves of its subtree: their
     * tree, in the accumulation type, is what travels. */
    acc = lk_tmp(a, LK_SCR_LOCAL, count * lk_red_acc_size(dt) + 1);
    if (!acc) {
      free(offs);
      free(own);
      return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for %zu accumulators", count);
    }
    s = lk_red_tree(dt, op == LIGHTOS_OP_AVG ? LIGHTOS_OP_SUM : op, sends, nsends, false, acc,
                    count);
    if (s) {
      lk_tmp_done(a, acc);
      free(offs);
      free(own);
      return s;
    }
    data = acc;
  }
  const size_t in_esize = multi ? lk_red_acc_size(dt) : lightos_dtype_size(dt);
  /* (Recursive halving pairs ranks: not with spans.) */
  if (!spans && lk_halving_applies(a, in_esize, dt, count)) {
    s = lk_allreduce_halving(a, data, recv, count, dt, op, ntotal);
  } else {
    lk_rs_args_t ra = {data, in_esize, offs, lk_chunk_tree, &u, recv, lightos_dtype_size(dt),
                       LK_AG_ALL, 0};
    s = lk_rs_ag(a, &ra);
  }
  if (acc) lk_tmp_done(a, acc);
  free(offs);
  free(own);
  return s;
}

lightos_status_t lk_algo_reduce(const lk_algo_t* a, const void* send, void* recv, size_t count,
                                lightos_dtype_t dt, lightos_reduce_op_t op, uint32_t root) {
  const uint32_t n = a->size;
  size_t* offs = malloc((n + 1) * sizeof *offs);
  if (!offs) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  lightos_status_t s;
  if (lk_strict_applies(a->level, dt, op)) {
    /* Exponents and flags need every rank's data: the allreduce, with the
     * result kept on root only. */
    lk_partition(count, LK_STRICT_BLOCK, n, offs);
    void* tmp = a->rank == root ? recv : malloc(count * lightos_dtype_size(dt) + 1);
    if (!tmp) {
      free(offs);
      return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
    }
    s = lk_allreduce_strict(a, &send, 1, true, tmp, count, dt, op, n, offs);
    if (tmp != recv) free(tmp);
    free(offs);
    return s;
  }
  lk_partition(count, 64, n, offs);
  lk_tree_user_t u = {a, dt, op, false, n, NULL};
  /* Non-root ranks reduce their chunk into a scratch copy and send it to root. */
  void* out = recv;
  if (a->rank != root) {
    out = malloc(count * lightos_dtype_size(dt) + 1);
    if (!out) {
      free(offs);
      return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
    }
  }
  lk_rs_args_t ra = {send, lightos_dtype_size(dt), offs, lk_chunk_tree, &u, out,
                     lightos_dtype_size(dt), LK_AG_ROOT, root};
  s = lk_rs_ag(a, &ra);
  if (out != recv) free(out);
  free(offs);
  return s;
}

/* Broadcasts from this many bytes on 3 or more ranks go as a scatter and
 * an all-gather: the root sends about 2 buffers instead of n - 1. */
#define LK_BCAST_SPLIT_MIN ((size_t)256 << 10)

/* Scatter + all-gather (van de Geijn): chunk p goes from the root to rank
 * p, then every rank passes its chunk to every other (the root's chunk from
 * the root; nobody sends to the root, which has everything).  One batch
 * per phase. */
static lightos_status_t lk_bcast_split(const lk_algo_t* a, void* buf, size_t bytes,
                                       uint32_t root) {
  const uint32_t n = a->size, me = a->rank;
  size_t* offs = malloc((n + 1) * sizeof *offs);
  lk_xop_t* ops = malloc(2 * (size_t)n * sizeof *ops);
  if (!offs || !ops) {
    free(offs);
    free(ops);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  }
  lk_partition(bytes, 64, n, offs);
  char* b = buf;
  size_t k = 0;
  for (uint32_t p = 0; p < n; ++p) {
    if (p == root) continue;
    if (me == root) ops[k++] = (lk_xop_t){true, p, b + offs[p], offs[p + 1] - offs[p]};
    else if (me == p) ops[k++] = (lk_xop_t){false, root, b + offs[p], offs[p + 1] - offs[p]};
  }
  lightos_status_t s = a->x->vtbl->exchange(a->x, ops, k, a->deadline_ns);
  k = 0;
  for (uint32_t p = 0; p < n && !s; ++p) {
    if (p == me) continue;
    if (p != root) ops[k++] = (lk_xop_t){true, p, b + offs[me], offs[me + 1] - offs[me]};
    if (me != root) ops[k++] = (lk_xop_t){false, p, b + offs[p], offs[p + 1] - offs[p]};
  }
  if (!s) s = a->x->vtbl->exchange(a->x, ops, k, a->deadline_ns);
  free(offs);
  free(ops);
  return s;
}

lightos_status_t lk_algo_broadcast(const lk_algo_t* a, void* buf, size_t bytes, uint32_t root) {
  const uint32_t n = a->size, me = a->rank;
  if (n == 1 || !bytes) return LIGHTOS_SUCCESS;
  if (n >= 3 && bytes >= LK_BCAST_SPLIT_MIN) return lk_bcast_split(a, buf, bytes, root);
  if (me != root) {
    lk_xop_t op = {false, root, buf, bytes};
    return a->x->vtbl->exchange(a->x, &op, 1, a->deadline_ns);
  }
  lk_xop_t* ops = malloc(n * sizeof *ops);
  if (!ops) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  size_t k = 0;
  for (uint32_t p = 0; p < n; ++p)
    if (p != me) ops[k++] = (lk_xop_t){true, p, buf, bytes};
  lightos_status_t s = a->x->vtbl->exchange(a->x, ops, k, a->deadline_ns);
  free(ops);
  return s;
}

/* Every rank sends to and receives from every other in one batch: to peer
 * p goes send + p * send_stride, from p comes recv + p * bytes. */
static lightos_status_t lk_all_pairs(const lk_algo_t* a, const void* send, size_t send_stride,
                                     void* recv, size_t bytes) {
  const uint32_t n = a->size, me = a->rank;
  lk_xop_t* ops = malloc(2 * (size_t)n * sizeof *ops);
  if (!ops) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  size_t k = 0;
  for (uint32_t p = 0; p < n; ++p) {
    if (p == me) continue;
    ops[k++] = (lk_xop_t){true, p, (char*)send + (size_t)p * send_stride, bytes};
    ops[k++] = (lk_xop_t){false, p, (char*)recv + (size_t)p * bytes, bytes};
  }
  lightos_status_t s = a->x->vtbl->exchange(a->x, ops, k, a->deadline_ns);
  free(ops);
  return s;
}

lightos_status_t lk_algo_allgather(const lk_algo_t* a, const void* send, void* recv,
                                   size_t bytes) {
  char* mine = (char*)recv + (size_t)a->rank * bytes;
  if (send != mine && bytes) memmove(mine, send, bytes);
  if (a->size == 1 || !bytes) return LIGHTOS_SUCCESS;
  return lk_all_pairs(a, mine, 0, recv, bytes);
}

lightos_status_t lk_algo_reduce_scatter(const lk_algo_t* a, const void* send, void* recv,
                                        size_t recvcount, lightos_dtype_t dt,
                                        lightos_reduce_op_t op) {
  const uint32_t n = a->size;
  size_t* offs = malloc((n + 1) * sizeof *offs);
  if (!offs) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  for (uint32_t r = 0; r <= n; ++r) offs[r] = (size_t)r * recvcount;
  lightos_status_t s;
  if (lk_strict_applies(a->level, dt, op)) {
    /* Chunks of recvcount need not fall on exponent blocks: the full
     * allreduce, keeping this rank's part. */
    size_t count = recvcount * n, es = lightos_dtype_size(dt);
    size_t* boffs = malloc((n + 1) * sizeof *boffs);
    void* tmp = malloc(count * es + 1);
    if (!tmp || !boffs) {
      free(tmp);
      free(boffs);
      free(offs);
      return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
    }
    lk_partition(count, LK_STRICT_BLOCK, n, boffs);
    s = lk_allreduce_strict(a, &send, 1, true, tmp, count, dt, op, n, boffs);
    if (!s) memcpy(recv, (char*)tmp + (size_t)a->rank * recvcount * es, recvcount * es);
    free(tmp);
    free(boffs);
    free(offs);
    return s;
  }
  lk_tree_user_t u = {a, dt, op, false, n, NULL};
  lk_rs_args_t ra = {send, lightos_dtype_size(dt), offs, lk_chunk_tree, &u, recv,
                     lightos_dtype_size(dt), LK_AG_NONE, 0};
  s = lk_rs_ag(a, &ra);
  free(offs);
  return s;
}

lightos_status_t lk_algo_alltoall(const lk_algo_t* a, const void* send, void* recv,
                                  size_t bytes) {
  const size_t mine = (size_t)a->rank * bytes;
  if (bytes) memmove((char*)recv + mine, (const char*)send + mine, bytes);
  if (a->size == 1 || !bytes) return LIGHTOS_SUCCESS;
  return lk_all_pairs(a, send, bytes, recv, bytes);
}

lightos_status_t lk_algo_barrier(const lk_algo_t* a) {
  if (a->size == 1) return LIGHTOS_SUCCESS;
  unsigned char* tok = calloc(a->size, 1);
  if (!tok) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory");
  tok[a->rank] = 1;
  lightos_status_t s = lk_all_pairs(a, &tok[a->rank], 0, tok, 1);
  free(tok);
  return s;
}
