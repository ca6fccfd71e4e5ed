/* SHA-256 as specified in FIPS 180-4.  Byte order is handled explicitly
 * (big-endian loads/stores by shifting), so the code makes no assumption
 * about the host's endianness or alignment. */
#include "core/sha256.h"

#include <string.h>

static const uint32_t lk_sha256_k[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u,
    0x923f82a4u, 0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u,
    0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u,
    0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u,
    0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u,
    0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au,
    0x5b9cca4fu, 0x682e6ff3u, 0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
    0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u};

static inline uint32_t rotr32(uint32_t x, unsigned n) {
  return (x >> n) | (x << (32u - n));
}

static inline uint32_t load_be32(const uint8_t* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
         (uint32_t)p[3];
}

static inline void store_be32(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void sha256_compress(uint32_t h[8], const uint8_t blk[64]) {
  uint32_t w[64];
  for (unsigned t = 0; t < 16; t++) w[t] = load_be32(blk + 4u * t);
  for (unsigned t = 16; t < 64; t++) {
    uint32_t s0 = rotr32(w[t - 15], 7) ^ rotr32(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = rotr32(w[t - 2], 17) ^ rotr32(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
  uint32_t e = h[4], f = h[5], g = h[6], hh = h[7];
  for (unsigned t = 0; t < 64; t++) {
    uint32_t big_s1 = rotr32(e, 6) ^ rotr32(e, 11) ^ rotr32(e, 25);
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t t1 = hh + big_s1 + ch + lk_sha256_k[t] + w[t];
    uint32_t big_s0 = rotr32(a, 2) ^ rotr32(a, 13) ^ rotr32(a, 22);
    uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = big_s0 + maj;
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

void lk_sha256_init(lk_sha256_t* s) {
  static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
  memcpy(s->h, iv, sizeof iv);
  s->total_len = 0;
  s->block_len = 0;
  memset(s->block, 0, sizeof s->block);
}

void lk_sha256_update(lk_sha256_t* s, const void* data, size_t len) {
  const uint8_t* p = (const uint8_t*)data;
  if (len == 0) return;
  s->total_len += (uint64_t)len;
  if (s->block_len > 0) {
    size_t take = 64 - s->block_len;
    if (take > len) take = len;
    memcpy(s->block + s->block_len, p, take);
    s->block_len += take;
    p += take;
    len -= take;
    if (s->block_len < 64) return;
    sha256_compress(s->h, s->block);
    s->block_len = 0;
  }
  while (len >= 64) {
    sha256_compress(s->h, p);
    p += 64;
    len -= 64;
  }
  if (len > 0) {
    memcpy(s->block, p, len);
    s->block_len = len;
  }
}

void lk_sha256_update_str(lk_sha256_t* s, const char* str) {
  size_t n = str ? strlen(str) : 0;
  uint8_t prefix[8];
  uint64_t n64 = (uint64_t)n;
  for (unsigned i = 0; i < 8; i++) prefix[i] = (uint8_t)(n64 >> (8u * i));
  lk_sha256_update(s, prefix, sizeof prefix);
  if (n) lk_sha256_update(s, str, n);
}

void lk_sha256_final(lk_sha256_t* s, uint8_t out[32]) {
  uint64_t bits = s->total_len * 8u;
  size_t n = s->block_len;
  s->block[n++] = 0x80;
  if (n > 56) {
    memset(s->block + n, 0, 64 - n);
    sha256_compress(s->h, s->block);
    n = 0;
  }
  memset(s->block + n, 0, 56 - n);
  for (unsigned i = 0; i < 8; i++) s->block[56 + i] = (uint8_t)(bits >> (56u - 8u * i));
  sha256_compress(s->h, s->block);
  for (unsigned i = 0; i < 8; i++) store_be32(out + 4u * i, s->h[i]);
  /* Leave the context wiped; it must be re-initialised before reuse. */
  memset(s, 0, sizeof *s);
}

void lk_sha256(const void* data, size_t len, uint8_t out[32]) {
  lk_sha256_t s;
  lk_sha256_init(&s);
  lk_sha256_update(&s, data, len);
  lk_sha256_final(&s, out);
}

void lk_sha256_hex(const uint8_t digest[32], char out[65]) {
  static const char hex[] = "0123456789abcdef";
  for (unsigned i = 0; i < 32; i++) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 0x0f];
  }
  out[64] = '\0';
}
