/* Programs and kernels: build, lookup, argument checking, launch. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "runtime/runtime.h"

static void lk_program_destroy(lk_object_t* obj) {
  lk_program_t* p = (lk_program_t*)obj;
  if (p->hal) p->hal->vtbl->destroy(p->hal);
  lk_kparse_free(&p->sig);
  free(p->source);
  free(p->log);
  pthread_mutex_destroy(&p->lock);
  lk_object_unref(&p->context->obj);
  free(p);
}

LIGHTOS_API lightos_status_t lightos_program_create(lightos_context_t context, const char* source,
                                                    size_t length, lightos_program_t* out_program) {
  lk_context_t* c = NULL;
  LK_RESOLVE(c, context, LK_OBJ_CONTEXT, "context");
  if (!source) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "source is NULL");
  LK_CHECK_OUT(out_program, "out_program");
  if (length == 0) length = strlen(source);
  if (length == 0) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "source is empty");
  lk_program_t* p = calloc(1, sizeof *p);
  char* copy = malloc(length + 1);
  if (!p || !copy) {
    free(p);
    free(copy);
    return LK_FAIL(LIGHTOS_OUT_OF_MEMORY, "out of host memory for a program of %zu bytes", length);
  }
  lightos_status_t s = lk_object_init(&p->obj, LK_OBJ_PROGRAM, lk_program_destroy);
  if (s) {
    free(p);
    free(copy);
    return s;
  }
  memcpy(copy, source, length);
  copy[length] = '\0';
  pthread_mutex_init(&p->lock, NULL);
  lk_object_ref(&c->obj);
  p->context = c;
  p->source = copy;
  p->length = length;
  *out_program = LK_HANDLE(p);
  return LIGHTOS_SUCCESS;
}

/* Accepts -D NAME[=VALUE], -DNAME, -I DIR, -IDIR, -cl-std=CL1.2, -w. */
static lightos_status_t lk_check_options(const char* options) {
  const char* p = options;
  while (*p) {
    while (isspace((unsigned char)*p)) p++;
    if (!*p) break;
    const char* tok = p;
    while (*p && !isspace((unsigned char)*p)) p++;
    size_t n = (size_t)(p - tok);
    if ((n == 2 && (!strncmp(tok, "-D", 2) || !strncmp(tok, "-I", 2)))) {
      while (isspace((unsigned char)*p)) p++;
      if (!*p)
        return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "options: \"%.*s\" needs a value", (int)n, tok);
      while (*p && !isspace((unsigned char)*p)) p++;
      continue;
    }
    if (n > 2 && !strncmp(tok, "-D", 2)) {
      if (!isalpha((unsigned char)tok[2]) && tok[2] != '_')
        return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "options: \"%.*s\" is not a macro definition",
                       (int)n, tok);
      continue;
    }
    if ((n > 2 && !strncmp(tok, "-I", 2)) || (n == 2 && !strncmp(tok, "-w", 2)) ||
        (n == 13 && !strncmp(tok, "-cl-std=CL1.2", 13)))
      continue;
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT,
                   "options: unsupported option \"%.*s\" (allowed: -D NAME[=VALUE], -I DIR, "
                   "-cl-std=CL1.2, -w)",
                   (int)n, tok);
  }
  return LIGHTOS_SUCCESS;
}

static void lk_set_log(lk_program_t* p, char* log) {
  free(p->log);
  p->log = log;
}

/* Developer aid, off by default: with LIGHTOS_DUMP_SOURCES=DIR every
 * successfully built program's source goes to DIR/<hash>.cl and its
 * options to DIR/<hash>.opts (the same source + options, the same files),
 * e.g. for scripts/hip-compile-check.sh.  Errors are ignored. */
static void lk_dump_source(const lk_program_t* p, const char* options) {
  const char* dir = getenv("LIGHTOS_DUMP_SOURCES");
  if (!dir || !dir[0]) return;
  uint64_t h = 1469598103934665603ull; /* FNV-1a over source, NUL, options */
  for (size_t i = 0; i < p->length; ++i) h = (h ^ (unsigned char)p->source[i]) * 1099511628211ull;
  h *= 1099511628211ull;
  for (const char* o = options; *o; ++o) h = (h ^ (unsigned char)*o) * 1099511628211ull;
  char path[4096];
  snprintf(path, sizeof path, "%s/%016llx.cl", dir, (unsigned long long)h);
  FILE* f = fopen(path, "wb");
  if (!f) return;
  fwrite(p->source, 1, p->length, f);
  fclose(f);
  snprintf(path, sizeof path, "%s/%016llx.opts", dir, (unsigned long long)h);
  f = fopen(path, "wb");
  if (!f) return;
  fputs(options, f);
  fclose(f);
}

LIGHTOS_API lightos_status_t lightos_program_build(lightos_program_t program, const char* options) {
  lk_program_t* p = NULL;
  LK_RESOLVE(p, program, LK_OBJ_PROGRAM, "program");
  if (!options) options = "";
  lightos_status_t s = lk_check_options(options);
  if (s) return s;
  pthread_mutex_lock(&p->lock);
  if (p->built) {
    pthread_mutex_unlock(&p->lock);
    return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "program %p is already built", (void*)program);
  }
  uint64_t t0 = lk_now_ns();
  char err[512];
  if (lk_kparse(p->source, p->length, &p->sig, err, sizeof err) != 0) {
    lk_set_log(p, strdup(err));
    pthread_mutex_unlock(&p->lock);
    return LK_FAIL(LIGHTOS_COMPILE_FAILED, "kernel source: %s", err);
  }
  lk_program_src_t src = {p->source, p->length, options, &p->sig};
  lk_hal_build_result_t r = {0};
  s = p->context->hal->vtbl->program_build(p->context->hal, &src, &r);
  lk_set_log(p, r.log);
  if (s == LIGHTOS_SUCCESS) {
    p->hal = r.program;
    p->built = true;
    p->from_cache = r.from_cache;
    p->build_ms = (double)(lk_now_ns() - t0) / 1e6;
    lk_dump_source(p, options);
  } else {
    lk_kparse_free(&p->sig);
  }
  pthread_mutex_unlock(&p->lock);
  return s;
}

LIGHTOS_API lightos_status_t lightos_program_build_log(lightos_program_t program, char* buf,
                                                       size_t cap, size_t* out_len) {
  lk_program_t* p = NULL;
  LK_RESOLVE(p, program, LK_OBJ_PROGRAM, "program");
  if (!buf && cap) return LK_FAIL(LIGHTOS_INVALID_ARGUMENT, "buf is NULL but cap is %zu", cap);
  pthread_mutex_lock(&p->lock);
  const char* log = p->log ? p->log : "";
  if (cap) lk_strlcpy(buf, log, cap);
  if (out_len) *out_len = strlen(log) + 1;
  pthread_mutex_unlock(&p->lock);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_program_get_info(lightos_program_t program,
                                                      lightos_program_info_t* out_info) {
  lk_program_t* p = NULL;
  LK_RESOLVE(p, program, LK_OBJ_PROGRAM, "program");
  LK_CHECK_OUT(out_info, "out_info");
  pthread_mutex_lock(&p->lock);
  out_info->built = p->built;
  out_info->from_cache = p->from_cache;
  out_info->build_ms = p->build_ms;
  out_info->kernel_count = p->built ? p->sig.num_kernels : 0;
  pthread_mutex_unlock(&p->lock);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_program_retain(lightos_program_t program) {
  lk_program_t* p = NULL;
  LK_RESOLVE(p, program, LK_OBJ_PROGRAM, "program");
  lk_object_ext_retain(&p->obj);
  return LIGHTOS_SUCCESS;
}

LIGHTOS_API lightos_status_t lightos_program_release(lightos_program_t program) {
  lk_program_t* p = NULL;
  LK_RESOLVE(p, program, LK_OBJ_PROGRAM, "program");
  lk_object_ext_release(&p->obj);
  return LIGHTOS_SUCCESS;
}
