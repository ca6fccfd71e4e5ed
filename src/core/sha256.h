/* SHA-256 (FIPS 180-4), incremental.  Used for binary-cache keys and entry
 * checksums.  Pure; thread-safe per context. */
#ifndef LIGHTOS_CORE_SHA256_H
#define LIGHTOS_CORE_SHA256_H
#include <stddef.h>
#include <stdint.h>

typedef struct lk_sha256 {
  uint32_t h[8];
  uint64_t total_len;
  uint8_t block[64];
  size_t block_len;
} lk_sha256_t;

void lk_sha256_init(lk_sha256_t* s);
void lk_sha256_update(lk_sha256_t* s, const void* data, size_t len);
/* Adds a length-prefixed string (so "ab"+"c" and "a"+"bc" differ);
 * NULL counts as the empty string. */
void lk_sha256_update_str(lk_sha256_t* s, const char* str);
void lk_sha256_final(lk_sha256_t* s, uint8_t out[32]);
void lk_sha256(const void* data, size_t len, uint8_t out[32]);
/* Writes 64 lowercase hex digits and a NUL into out[65]. */
void lk_sha256_hex(const uint8_t digest[32], char out[65]);

#endif
