/* libFuzzer target for the kernel-signature parser.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I src -I include \
 *       src/kernels/kparse.c tests/fuzz/fuzz_kparse.c -o fuzz_kparse
 *   ./fuzz_kparse -max_total_time=60 CORPUS_COPY tests/fuzz/corpus/kparse
 *
 * The input is copied into an exact-size heap block (no terminating NUL) so
 * that AddressSanitizer reports any read past source+len.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kparse.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  char err[160];
  lk_kparse_result_t r;
  char* src = (char*)malloc(size ? size : 1);
  uint32_t i;
  if (!src) return 0;
  if (size) memcpy(src, data, size);
  memset(err, 0x55, sizeof err);
  if (lk_kparse(src, size, &r, err, sizeof err) == 0) {
    for (i = 0; i < r.num_kernels; i++) {
      const lk_kernel_sig_t* k = &r.kernels[i];
      uint32_t a;
      /* invariants the callers rely on */
      if (lk_kparse_find(&r, k->name) != k) abort(); /* names are unique */
      if (k->num_args > LK_KPARSE_MAX_ARGS) abort();
      if (k->decl_begin >= k->body_begin || k->body_begin >= k->body_end ||
          k->body_end > size || src[k->body_begin] != '{' || src[k->body_end - 1] != '}')
        abort();
      if (memchr(k->name, '\0', sizeof k->name) == NULL) abort();
      for (a = 0; a < k->num_args; a++) {
        const lk_karg_t* g = &k->args[a];
        if (memchr(g->name, '\0', sizeof g->name) == NULL) abort();
        if (memchr(g->type_text, '\0', sizeof g->type_text) == NULL) abort();
        if (g->kind < LK_KARG_GLOBAL_PTR || g->kind > LK_KARG_SCALAR) abort();
        (void)lk_kscalar_name(g->scalar);
      }
    }
  } else {
    /* the message is terminated, starts with "line " and the result is empty */
    if (memchr(err, '\0', sizeof err) == NULL || strncmp(err, "line ", 5) != 0) abort();
    if (r.num_kernels != 0 || r.kernels != NULL) abort();
  }
  lk_kparse_free(&r);
  lk_kparse_free(&r);
  free(src);
  return 0;
}
