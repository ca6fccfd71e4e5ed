/* Tensor-op core: tensor checks, the per-context program cache, and the
 * descriptor/view functions of include/lightos/tensor.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "ops/ops_internal.h"

size_t lk_dtype_bytes(lightos_dtype_t dt) {
  switch (dt) {
    case LIGHTOS_DTYPE_F32: return 4;
    case LIGHTOS_DTYPE_F64: return 8;
    case LIGHTOS_DTYPE_F16: return 2;
    case LIGHTOS_DTYPE_BF16: return 2;
    case LIGHTOS_DTYPE_I32: return 4;
    case LIGHTOS_DTYPE_I64: return 8;
    case LIGHTOS_DTYPE_U8: return 1;
    case LIGHTOS_DTYPE_BOOL: return 1;
  }
  return 0;
}

bool lk_ops_deterministic(const lk_context_t* ctx) {
  return ctx && (ctx->flags & LIGHTOS_CONTEXT_DETERMINISTIC) != 0;
}

/* ---- tensor checks ---------------------------------------------------------- */

/* Bytes from the tensor's first element to one past its last (0 when
 * empty); false on overflow. */
static bool lk_tensor_span(const lightos_tensor_t* t, size_t elem, size_t* out) {
  uint64_t last = 0;
  for (uint32_t i = 0; i < t->ndim; ++i) {
    if (t->shape[i] == 0) {
      *out = 0;
      return true;
    }
  }
  for (uint32_t i = 0; i < t->ndim; ++i) {
    uint64_t ext = (uint64_t)(t->shape[i] - 1);
    uint64_t st = (uint64_t)t->strides[i];
    if (ext && st > UINT64_MAX / ext) return false;
    if (last > UINT64_MAX - ext * st) return false;
    last += ext * st;
  }
  if (last >= UINT64_MAX / elem) return false;
  *out = (size_t)((last + 1) * elem);
  return true;
}

lightos_status_t lk_tensor_check(const lightos_tensor_t* t, const char* name,
                                 lk_context_t** out_ctx) {
  if (!name) name = "tensor";
  if (!t) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' is NULL", name);
  char what[96];
  snprintf(what, sizeof what, "buffer of tensor '%s'", name);
  lk_buffer_t* b;
  LK_RESOLVE(b, t->buffer, LK_OBJ_BUFFER, what);
  size_t elem = lk_dtype_bytes(t->dtype);
  if (!elem)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' has an unknown dtype (%d)", name,
                   (int)t->dtype);
  if (t->ndim > LIGHTOS_MAX_DIMS)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' has ndim %u (at most %d)", name,
                   t->ndim, LIGHTOS_MAX_DIMS);
  for (uint32_t i = 0; i < t->ndim; ++i) {
    if (t->shape[i] < 0)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' has a negative size %lld in dim %u",
                     name, (long long)t->shape[i], i);
    if (t->strides[i] < 0)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "tensor '%s' has a negative stride %lld in dim %u (strides must be >= 0)",
                     name, (long long)t->strides[i], i);
  }
  if (t->offset % elem)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "tensor '%s' has byte offset %zu, not a multiple of its element size %zu (%s)",
                   name, t->offset, elem, lightos_dtype_name(t->dtype));
  size_t span, end;
  if (!lk_tensor_span(t, elem, &span) || !lk_add_ok(t->offset, span, &end))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s': its extent overflows", name);
  if (end > b->size || t->offset > b->size)
    return LK_FAIL(LIGHTOS_OUT_OF_RANGE,
                   "tensor '%s' (offset %zu, %zu bytes spanned) does not fit its buffer of %zu "
                   "bytes",
                   name, t->offset, span, b->size);
  if (out_ctx) *out_ctx = b->context;
  return LIGHTOS_SUCCESS;
}

lightos_status_t lk_ops_check_all(lightos_queue_t queue, lk_queue_t** out_q,
                                  const lightos_tensor_t* const* ts, const char* const* names,
                                  int n) {
  lk_queue_t* q;
  LK_RESOLVE(q, queue, LK_OBJ_QUEUE, "queue");
  for (int i = 0; i < n; ++i) {
    if (!ts[i]) continue;
    lk_context_t* c;
    const char* name = names && names[i] ? names[i] : "tensor";
    lightos_status_t s = lk_tensor_check(ts[i], name, &c);
    if (s) return s;
    if (c != q->context)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "tensor '%s' belongs to another context (device %s) than the queue "
                     "(device %s)",
                     name, c->device->hal->info.uri, q->context->device->hal->info.uri);
  }
  if (out_q) *out_q = q;
  return LIGHTOS_SUCCESS;
}

/* The root allocation of a tensor and the byte range it spans in it. */
static void lk_tensor_range(const lightos_tensor_t* t, const lk_buffer_t** root, size_t* lo,
                            size_t* hi) {
  lk_object_t* o = NULL;
  lk_handle_resolve(t->buffer, LK_OBJ_BUFFER, "buffer", &o);
  const lk_buffer_t* b = (const lk_buffer_t*)o;
  size_t span = 0;
  lk_tensor_span(t, lk_dtype_bytes(t->dtype), &span);
  *lo = b->offset + t->offset;
  *hi = *lo + span;
  while (b->parent) b = b->parent;
  *root = b;
}

static bool lk_same_layout(const lightos_tensor_t* a, const lightos_tensor_t* b) {
  if (a->dtype != b->dtype || a->ndim != b->ndim) return false;
  for (uint32_t i = 0; i < a->ndim; ++i) {
    if (a->shape[i] != b->shape[i]) return false;
    if (a->shape[i] > 1 && a->strides[i] != b->strides[i]) return false;
  }
  return true;
}

/* Fails when `out` and `in` (both already checked) share memory, except
 * when identical_ok and both describe exactly the same elements. */
lightos_status_t lk_ops_check_overlap(const lightos_tensor_t* out, const char* out_name,
                                      const lightos_tensor_t* in, const char* in_name,
                                      bool identical_ok) {
  if (!out || !in) return LIGHTOS_SUCCESS;
  const lk_buffer_t *ra, *rb;
  size_t alo, ahi, blo, bhi;
  lk_tensor_range(out, &ra, &alo, &ahi);
  lk_tensor_range(in, &rb, &blo, &bhi);
  if (ra != rb || alo == ahi || blo == bhi || ahi <= blo || bhi <= alo) return LIGHTOS_SUCCESS;
  if (identical_ok && alo == blo && lk_same_layout(out, in)) return LIGHTOS_SUCCESS;
  return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                 "output '%s' overlaps input '%s' (bytes [%zu, %zu) and [%zu, %zu) of one "
                 "buffer)%s",
                 out_name, in_name, alo, ahi, blo, bhi,
                 identical_ok ? " with a different layout; in place needs the identical layout"
                              : "; this op cannot run in place");
}

/* Fails when two elements of `t` share memory (a zero stride, or strides
 * that interleave), which would make the op's writes race. */
lightos_status_t lk_ops_check_writable(const lightos_tensor_t* t, const char* name) {
  int64_t sh[LIGHTOS_MAX_DIMS], st[LIGHTOS_MAX_DIMS];
  int n = 0;
  for (uint32_t i = 0; i < t->ndim; ++i) {
    if (t->shape[i] == 0) return LIGHTOS_SUCCESS;
    if (t->shape[i] == 1) continue;
    /* insertion by stride, ascending */
    int j = n++;
    while (j > 0 && st[j - 1] > t->strides[i]) {
      st[j] = st[j - 1];
      sh[j] = sh[j - 1];
      --j;
    }
    st[j] = t->strides[i];
    sh[j] = t->shape[i];
  }
  int64_t reach = 0; /* max offset spanned by the smaller dims */
  for (int i = 0; i < n; ++i) {
    if (st[i] <= reach)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "output '%s' has overlapping elements (stride %lld of a dim of size %lld; "
                     "an expanded or self-overlapping view cannot be written)",
                     name, (long long)st[i], (long long)sh[i]);
    reach += (sh[i] - 1) * st[i];
  }
  return LIGHTOS_SUCCESS;
}

lightos_status_t lk_ops_device_fp64(lk_context_t* ctx, lightos_dtype_t dt, const char* name) {
  if (dt == LIGHTOS_DTYPE_F64 && !ctx->device->hal->info.fp64)
    return LK_FAIL(LIGHTOS_UNSUPPORTED, "tensor '%s' is f64 but device %s has no fp64", name,
                   ctx->device->hal->info.uri);
  return LIGHTOS_SUCCESS;
}

/* The work-group size for the ops' 1-D launches: 0 (the runtime picks) on
 * the CPU backend, where a group is only a loop; elsewhere one fixed size,
 * so that drivers that compile a kernel per work-group size (PoCL) compile
 * each op kernel once. */
size_t lk_ops_local_size(const lk_context_t* ctx) {
  const lightos_device_info_t* in = &ctx->device->hal->info;
  if (in->backend == LIGHTOS_BACKEND_CPU) return 0;
  size_t l = 128;
  while (l > 1 && l > in->max_work_group_size) l /= 2;
  return l;
}

/* ---- program cache ------------------------------------------------------------ */

#define LK_OPS_MAX_PARTS 8

typedef struct lk_ops_prog {
  const char* parts[LK_OPS_MAX_PARTS];
  int nparts;
  char* options;
  lightos_program_t program;
} lk_ops_prog_t;

typedef struct lk_ops_cache {
  lk_context_t* ctx;
  lk_ops_prog_t* progs;
  size_t n, cap;
} lk_ops_cache_t;

/* Runs from the context's destroy (its reference count is 0).  Every
 * cached program held a reference to the context, which lk_ops_kernel
 * dropped when caching it (else the context would keep itself alive);
 * give those back before the programs return them, plus one that keeps
 * the count from reaching 0 (and the destroy from running) again. */
static void lk_ops_cache_destroy(void* p) {
  lk_ops_cache_t* c = p;
  atomic_fetch_add(&c->ctx->obj.refs, (int)c->n + 1);
  for (size_t i = 0; i < c->n; ++i) {
    lightos_program_release(c->progs[i].program);
    free(c->progs[i].options);
  }
  free(c->progs);
  free(c);
}

static bool lk_ops_prog_match(const lk_ops_prog_t* e, const char* const* parts, int nparts,
                              const char* options) {
  if (e->nparts != nparts || strcmp(e->options, options)) return false;
  for (int i = 0; i < nparts; ++i)
    if (e->parts[i] != parts[i]) return false;
  return true;
}

/* Builds the program; on failure the status with the log's first lines. */
static lightos_status_t lk_ops_build(lk_context_t* ctx, const char* const* parts, int nparts,
                                     const char* options, const char* kernel_name,
                                     lightos_program_t* out) {
  size_t total = 1;
  for (int i = 0; i < nparts; ++i) total += strlen(parts[i]) + 1;
  char* src = malloc(total);
  if (!src) return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for an ops program");
  size_t len = 0;
  for (int i = 0; i < nparts; ++i) {
    size_t l = strlen(parts[i]);
    memcpy(src + len, parts[i], l);
    len += l;
    src[len++] = '\n';
  }
  src[len] = '\0';
  lightos_program_t prog = NULL;
  lightos_status_t s = lightos_program_create(LK_HANDLE(ctx), src, len, &prog);
  free(src);
  if (s)
    return LK_FAIL(s, "creating the ops program for kernel '%s' failed: %s", kernel_name,
                   lightos_last_error()->message);
  s = lightos_program_build(prog, options);
  if (s) {
    char log[4096] = "";
    lightos_program_build_log(prog, log, sizeof log, NULL);
    /* keep the first lines */
    int lines = 0;
    for (char* p = log; *p; ++p)
      if (*p == '\n' && ++lines == 8) {
        *p = '\0';
        break;
      }
    if (log[0] == '\0') lk_strlcpy(log, lightos_last_error()->message, sizeof log);
    lightos_program_release(prog);
    return LK_FAIL(s, "building the ops program for kernel '%s' (options \"%s\") failed on %s: %.1500s",
                   kernel_name, options, ctx->device->hal->info.uri, log);
  }
  *out = prog;
  return LIGHTOS_SUCCESS;
}

lightos_status_t lk_ops_kernel(lk_context_t* ctx, const char* const* parts, int nparts,
                               const char* options, const char* kernel_name,
                               lightos_kernel_t* out) {
  if (!ctx || !parts || nparts < 1 || nparts > LK_OPS_MAX_PARTS || !kernel_name || !out)
    return LK_FAIL(LIGHTOS_INTERNAL, "lk_ops_kernel: bad arguments");
  for (int i = 0; i < nparts; ++i)
    if (!parts[i]) return LK_FAIL(LIGHTOS_INTERNAL, "lk_ops_kernel: part %d is NULL", i);
  if (!options) options = "";
  lightos_status_t s = LIGHTOS_SUCCESS;
  pthread_mutex_lock(&ctx->ops_lock);
  lk_ops_cache_t* c = ctx->ops;
  if (!c) {
    c = calloc(1, sizeof *c);
    if (!c) {
      pthread_mutex_unlock(&ctx->ops_lock);
      return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for the ops cache");
    }
    c->ctx = ctx;
    ctx->ops = c;
    ctx->ops_destroy = lk_ops_cache_destroy;
  }
  lk_ops_prog_t* e = NULL;
  for (size_t i = 0; i < c->n; ++i)
    if (lk_ops_prog_match(&c->progs[i], parts, nparts, options)) {
      e = &c->progs[i];
      break;
    }
  if (!e) {
    if (c->n == c->cap) {
      size_t cap = c->cap ? c->cap * 2 : 16;
      lk_ops_prog_t* np = realloc(c->progs, cap * sizeof *np);
      if (!np) {
        pthread_mutex_unlock(&ctx->ops_lock);
        return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for the ops cache");
      }
      c->progs = np;
      c->cap = cap;
    }
    char* opt = strdup(options);
    lightos_program_t prog = NULL;
    if (!opt) s = LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for the ops cache");
    if (!s) s = lk_ops_build(ctx, parts, nparts, options, kernel_name, &prog);
    if (s) {
      free(opt);
      pthread_mutex_unlock(&ctx->ops_lock);
      return s;
    }
    e = &c->progs[c->n++];
    memset(e, 0, sizeof *e);
    for (int i = 0; i < nparts; ++i) e->parts[i] = parts[i];
    e->nparts = nparts;
    e->options = opt;
    e->program = prog;
    /* The program references the context, which owns the cache: drop
     * that reference (see lk_ops_cache_destroy).  The caller's tensors
     * keep the context alive here. */
    lk_object_unref(&ctx->obj);
  }
  s = lightos_kernel_create(e->program, kernel_name, out);
  pthread_mutex_unlock(&ctx->ops_lock);
  return s;
}

/* ---- descriptors and views ---------------------------------------------------- */

static void lk_contig_strides(uint32_t ndim, const int64_t* shape, int64_t* strides) {
  int64_t st = 1;
  for (uint32_t i = ndim; i-- > 0;) {
    strides[i] = st;
    st *= shape[i] > 1 ? shape[i] : 1;
  }
}

/* Checks ndim/shape and gives numel; false (with the error set) on a bad
 * value or overflow. */
static lightos_status_t lk_check_shape(uint32_t ndim, const int64_t* shape, const char* name,
                                       int64_t* out_numel) {
  if (ndim > LIGHTOS_MAX_DIMS)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "ndim %u is more than %d", ndim, LIGHTOS_MAX_DIMS);
  if (ndim && !shape) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "%s is NULL (ndim %u)", name, ndim);
  int64_t n = 1;
  bool zero = false;
  for (uint32_t i = 0; i < ndim; ++i) {
    if (shape[i] < 0)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "%s[%u] is %lld (sizes must be >= 0)", name, i,
                     (long long)shape[i]);
    if (shape[i] == 0) zero = true;
    else if (n > INT64_MAX / shape[i])
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "%s: the element count overflows", name);
    else n *= shape[i];
  }
  *out_numel = zero ? 0 : n;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_tensor_make(lightos_buffer_t buffer, size_t offset,
                                                 lightos_dtype_t dtype, uint32_t ndim,
                                                 const int64_t* shape, lightos_tensor_t* out) {
  LK_CHECK_OUT(out, "out");
  lk_buffer_t* b;
  LK_RESOLVE(b, buffer, LK_OBJ_BUFFER, "buffer");
  (void)b;
  if (!lk_dtype_bytes(dtype))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "dtype %d is not a LightOS dtype", (int)dtype);
  int64_t n;
  lightos_status_t s = lk_check_shape(ndim, shape, "shape", &n);
  if (s) return s;
  lightos_tensor_t t;
  memset(&t, 0, sizeof t);
  t.buffer = buffer;
  t.offset = offset;
  t.dtype = dtype;
  t.ndim = ndim;
  for (uint32_t i = 0; i < ndim; ++i) t.shape[i] = shape[i];
  lk_contig_strides(ndim, t.shape, t.strides);
  s = lk_tensor_check(&t, "out", NULL);
  if (s) return s;
  *out = t;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_tensor_alloc(lightos_context_t context, lightos_dtype_t dtype,
                                                  uint32_t ndim, const int64_t* shape,
                                                  lightos_tensor_t* out) {
  LK_CHECK_OUT(out, "out");
  lk_context_t* c;
  LK_RESOLVE(c, context, LK_OBJ_CONTEXT, "context");
  (void)c;
  size_t elem = lk_dtype_bytes(dtype);
  if (!elem) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "dtype %d is not a LightOS dtype", (int)dtype);
  int64_t n;
  lightos_status_t s = lk_check_shape(ndim, shape, "shape", &n);
  if (s) return s;
  size_t bytes;
  if (!lk_mul_ok((size_t)n, elem, &bytes))
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "shape: %lld elements of %zu bytes overflow",
                   (long long)n, elem);
  lightos_buffer_t buf;
  /* An empty tensor still gets a (one-element) buffer: buffers are never 0 bytes. */
  s = lightos_buffer_alloc(context, bytes ? bytes : elem, 0, &buf);
  if (s) return s;
  lightos_tensor_t t;
  memset(&t, 0, sizeof t);
  t.buffer = buf;
  t.dtype = dtype;
  t.ndim = ndim;
  for (uint32_t i = 0; i < ndim; ++i) t.shape[i] = shape[i];
  lk_contig_strides(ndim, t.shape, t.strides);
  *out = t;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_tensor_free(lightos_tensor_t* tensor) {
  if (!tensor) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor is NULL");
  lightos_status_t s = lightos_buffer_release(tensor->buffer);
  if (s) return s;
  tensor->buffer = NULL;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API int64_t lightos_tensor_numel(const lightos_tensor_t* t) {
  if (!t || t->ndim > LIGHTOS_MAX_DIMS) return -1;
  int64_t n = 1;
  for (uint32_t i = 0; i < t->ndim; ++i) {
    if (t->shape[i] <= 0) return t->shape[i] == 0 ? 0 : -1;
    if (n > INT64_MAX / t->shape[i]) return -1;
    n *= t->shape[i];
  }
  return n;
}

LIGHTOS_API bool lightos_tensor_is_contiguous(const lightos_tensor_t* t) {
  if (!t || t->ndim > LIGHTOS_MAX_DIMS) return false;
  int64_t st = 1;
  for (uint32_t i = t->ndim; i-- > 0;) {
    if (t->shape[i] == 0) return true;
    if (t->shape[i] == 1) continue;
    if (t->strides[i] != st) return false;
    st *= t->shape[i];
  }
  return true;
}

LIGHTOS_API lightos_status_t lightos_tensor_reshape(const lightos_tensor_t* t, uint32_t ndim,
                                                    const int64_t* shape, lightos_tensor_t* out) {
  lightos_status_t s = lk_tensor_check(t, "t", NULL);
  if (s) return s;
  LK_CHECK_OUT(out, "out");
  if (ndim > LIGHTOS_MAX_DIMS)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "ndim %u is more than %d", ndim, LIGHTOS_MAX_DIMS);
  if (ndim && !shape) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "shape is NULL (ndim %u)", ndim);
  int64_t numel = lightos_tensor_numel(t);
  int64_t ns[LIGHTOS_MAX_DIMS];
  int infer = -1;
  int64_t known = 1;
  bool zero = false;
  for (uint32_t i = 0; i < ndim; ++i) {
    ns[i] = shape[i];
    if (shape[i] == -1) {
      if (infer >= 0)
        return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "shape has more than one -1 (dims %d and %u)",
                       infer, i);
      infer = (int)i;
    } else if (shape[i] < 0) {
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "shape[%u] is %lld", i, (long long)shape[i]);
    } else if (shape[i] == 0) {
      zero = true;
    } else {
      if (known > INT64_MAX / shape[i])
        return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "shape: the element count overflows");
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (zero || numel % known)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "shape: cannot infer dim %d of a view of %lld elements (the other dims "
                     "give %lld)",
                     infer, (long long)numel, zero ? 0LL : (long long)known);
    ns[infer] = numel / known;
  } else {
    int64_t n2 = zero ? 0 : known;
    if (n2 != numel)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "shape has %lld elements but tensor 't' has %lld", (long long)n2,
                     (long long)numel);
  }
  lightos_tensor_t r = *t;
  r.ndim = ndim;
  for (uint32_t i = 0; i < ndim; ++i) r.shape[i] = ns[i];
  for (uint32_t i = ndim; i < LIGHTOS_MAX_DIMS; ++i) r.shape[i] = r.strides[i] = 0;
  if (numel == 0 || lightos_tensor_is_contiguous(t)) {
    lk_contig_strides(ndim, r.shape, r.strides);
    *out = r;
    return LIGHTOS_SUCCESS;
  }
  /* Match runs of old dims that are contiguous among themselves (a
   * "chunk") to runs of new dims with the same element count. */
  int64_t os[LIGHTOS_MAX_DIMS], ost[LIGHTOS_MAX_DIMS];
  int on = 0;
  for (uint32_t i = 0; i < t->ndim; ++i)
    if (t->shape[i] != 1) {
      os[on] = t->shape[i];
      ost[on++] = t->strides[i];
    }
  int oi = 0;
  uint32_t ni = 0;
  while (oi < on) {
    /* old chunk [oi, oj) */
    int oj = oi + 1;
    int64_t csize = os[oi];
    while (oj < on && ost[oj - 1] == ost[oj] * os[oj]) {
      csize *= os[oj];
      ++oj;
    }
    /* new dims whose product is csize; assign strides from the inner stride */
    int64_t prod = 1;
    uint32_t nj = ni;
    while (nj < ndim && prod < csize) prod *= ns[nj++];
    while (nj < ndim && ns[nj] == 1) ++nj; /* trailing 1s may join */
    if (prod != csize)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "tensor 't' cannot be viewed with this shape without a copy (its strides "
                     "do not allow it); use lightos_op_contiguous first");
    int64_t st = ost[oj - 1];
    for (uint32_t k = nj; k-- > ni;) {
      r.strides[k] = st;
      st *= ns[k];
    }
    ni = nj;
    oi = oj;
  }
  for (; ni < ndim; ++ni) r.strides[ni] = 1; /* remaining dims are all size 1 */
  *out = r;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_tensor_permute(const lightos_tensor_t* t, const uint32_t* perm,
                                                    lightos_tensor_t* out) {
  lightos_status_t s = lk_tensor_check(t, "t", NULL);
  if (s) return s;
  LK_CHECK_OUT(out, "out");
  if (t->ndim && !perm) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "perm is NULL");
  bool seen[LIGHTOS_MAX_DIMS] = {false};
  lightos_tensor_t r = *t;
  for (uint32_t i = 0; i < t->ndim; ++i) {
    if (perm[i] >= t->ndim || seen[perm[i]])
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "perm[%u] = %u: perm must be a permutation of 0..%u", i, perm[i],
                     t->ndim - 1);
    seen[perm[i]] = true;
    r.shape[i] = t->shape[perm[i]];
    r.strides[i] = t->strides[perm[i]];
  }
  *out = r;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_tensor_slice(const lightos_tensor_t* t, uint32_t dim,
                                                  int64_t start, int64_t stop, int64_t step,
                                                  lightos_tensor_t* out) {
  lightos_status_t s = lk_tensor_check(t, "t", NULL);
  if (s) return s;
  LK_CHECK_OUT(out, "out");
  if (dim >= t->ndim)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "dim %u is out of range (tensor 't' has %u dims)",
                   dim, t->ndim);
  if (step < 1)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "step %lld must be >= 1", (long long)step);
  int64_t n = t->shape[dim];
  if (start < 0) start = start + n < 0 ? 0 : start + n;
  if (stop < 0) stop = stop + n < 0 ? 0 : stop + n;
  if (start > n) start = n;
  if (stop > n) stop = n;
  int64_t len = stop > start ? (stop - start + step - 1) / step : 0;
  lightos_tensor_t r = *t;
  if (len > 0) r.offset += (size_t)(start * t->strides[dim]) * lk_dtype_bytes(t->dtype);
  r.shape[dim] = len;
  r.strides[dim] = t->strides[dim] * step;
  if (len <= 1) r.strides[dim] = t->strides[dim];
  *out = r;
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_tensor_expand(const lightos_tensor_t* t, uint32_t ndim,
                                                   const int64_t* shape, lightos_tensor_t* out) {
  lightos_status_t s = lk_tensor_check(t, "t", NULL);
  if (s) return s;
  LK_CHECK_OUT(out, "out");
  if (ndim > LIGHTOS_MAX_DIMS)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "ndim %u is more than %d", ndim, LIGHTOS_MAX_DIMS);
  if (ndim < t->ndim)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "ndim %u is less than tensor 't''s %u dims (expand cannot drop dims)", ndim,
                   t->ndim);
  if (ndim && !shape) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "shape is NULL (ndim %u)", ndim);
  lightos_tensor_t r = *t;
  r.ndim = ndim;
  uint32_t lead = ndim - t->ndim;
  for (uint32_t i = 0; i < ndim; ++i) {
    int64_t want = shape[i];
    if (i < lead) {
      if (want < 0)
        return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "shape[%u] is %lld (a new dim needs a size)", i,
                       (long long)want);
      r.shape[i] = want;
      r.strides[i] = 0;
      continue;
    }
    int64_t have = t->shape[i - lead], hst = t->strides[i - lead];
    if (want == -1) want = have;
    if (want < 0)
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "shape[%u] is %lld", i, (long long)want);
    if (have == want) {
      r.shape[i] = have;
      r.strides[i] = hst;
    } else if (have == 1) {
      r.shape[i] = want;
      r.strides[i] = 0;
    } else {
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "cannot expand dim %u of tensor 't' from %lld to %lld (only size-1 dims "
                     "broadcast)",
                     i - lead, (long long)have, (long long)want);
    }
  }
  for (uint32_t i = ndim; i < LIGHTOS_MAX_DIMS; ++i) r.shape[i] = r.strides[i] = 0;
  *out = r;
  return LIGHTOS_SUCCESS;
}

lightos_status_t lk_tensor_same_shape(const lightos_tensor_t* t, const char* name,
                                      const lightos_tensor_t* ref, const char* ref_name) {
  if (t->ndim != ref->ndim)
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "tensor '%s' has %u dims but '%s' has %u", name,
                   t->ndim, ref_name, ref->ndim);
  for (uint32_t i = 0; i < t->ndim; ++i)
    if (t->shape[i] != ref->shape[i])
      return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                     "tensor '%s' has size %lld in dim %u but '%s' has %lld", name,
                     (long long)t->shape[i], i, ref_name, (long long)ref->shape[i]);
  return LIGHTOS_SUCCESS;
}

