// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), written as monitor code so the request
// authenticator is checked where the monitor runs (the GPU for the cuda backend).
#ifndef GRASS_CRYPTO_SHA256_H
#define GRASS_CRYPTO_SHA256_H

#include "grass/hd.h"

struct grass_sha256 {
  uint32_t h[8];
  uint64_t total_bytes;
  uint8_t block[64];
  uint32_t block_bytes;
};

GRASS_HD uint32_t grass_rotr32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

GRASS_HD void grass_sha256_init(grass_sha256* s) {
  const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  for (int i = 0; i < 8; i++) s->h[i] = iv[i];
  s->total_bytes = 0;
  s->block_bytes = 0;
}

GRASS_HD_CALL void grass_sha256_compress_words(uint32_t h[8], const uint32_t m[16]) {
  const uint32_t k[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
      0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
      0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
      0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
      0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
      0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
      0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
  uint32_t w[64];
  GRASS_UNROLL
  for (int i = 0; i < 16; i++)
    w[i] = m[i];
  GRASS_UNROLL
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = grass_rotr32(w[i - 15], 7) ^ grass_rotr32(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = grass_rotr32(w[i - 2], 17) ^ grass_rotr32(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  GRASS_UNROLL
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = hh + (grass_rotr32(e, 6) ^ grass_rotr32(e, 11) ^ grass_rotr32(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
    uint32_t t2 = (grass_rotr32(a, 2) ^ grass_rotr32(a, 13) ^ grass_rotr32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

// One 64-byte block of bytes, as big-endian words.
GRASS_HD void grass_sha256_compress(uint32_t h[8], const uint8_t* p) {
  uint32_t m[16];
  GRASS_UNROLL
  for (int i = 0; i < 16; i++)
    m[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  grass_sha256_compress_words(h, m);
}

GRASS_HD void grass_sha256_update(grass_sha256* s, const void* data, uint64_t n) {
  const uint8_t* p = (const uint8_t*)data;
  s->total_bytes += n;
  while (n > 0) {
    if (s->block_bytes == 0 && n >= 64) {
      grass_sha256_compress(s->h, p);
      p += 64; n -= 64;
      continue;
    }
    uint32_t take = 64 - s->block_bytes;
    if (take > n) take = (uint32_t)n;
    for (uint32_t i = 0; i < take; i++) s->block[s->block_bytes + i] = p[i];
    s->block_bytes += take; p += take; n -= take;
    if (s->block_bytes == 64) {
      grass_sha256_compress(s->h, s->block);
      s->block_bytes = 0;
    }
  }
}

// The state after the last block (padding written into the block in place: on the device a
// byte-at-a-time update of the padding cost more than a compression).
GRASS_HD void grass_sha256_finish(grass_sha256* s) {
  uint64_t bits = s->total_bytes * 8;
  uint32_t n = s->block_bytes;
  s->block[n++] = 0x80;
  if (n > 56) {
    for (; n < 64; n++) s->block[n] = 0;
    grass_sha256_compress(s->h, s->block);
    n = 0;
  }
  for (; n < 56; n++) s->block[n] = 0;
  for (int i = 0; i < 8; i++) s->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
  grass_sha256_compress(s->h, s->block);
  s->block_bytes = 0;
}

GRASS_HD void grass_sha256_final(grass_sha256* s, uint8_t out[32]) {
  grass_sha256_finish(s);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(s->h[i] >> 24); out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(s->h[i] >> 8); out[4 * i + 3] = (uint8_t)s->h[i];
  }
}

// HMAC-SHA256 keyed once: the states after the key's inner (0x36) and outer (0x5c) pad blocks
// are computed when the key is set, so each message costs its own blocks and one outer block
// (RFC 2104 section 4's precomputation), not two more compressions.
struct grass_hmac_key {
  uint32_t inner[8];
  uint32_t outer[8];
};

GRASS_HD void grass_hmac_key_init(grass_hmac_key* hk, const uint8_t* key, uint32_t key_bytes) {
  uint8_t k[64];
  for (int i = 0; i < 64; i++) k[i] = 0;
  if (key_bytes > 64) {
    grass_sha256 s;
    grass_sha256_init(&s);
    grass_sha256_update(&s, key, key_bytes);
    grass_sha256_final(&s, k);
  } else {
    for (uint32_t i = 0; i < key_bytes; i++) k[i] = key[i];
  }
  uint8_t pad[64];
  grass_sha256 s;
  for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
  grass_sha256_init(&s);
  grass_sha256_compress(s.h, pad);
  for (int i = 0; i < 8; i++) hk->inner[i] = s.h[i];
  for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
  grass_sha256_init(&s);
  grass_sha256_compress(s.h, pad);
  for (int i = 0; i < 8; i++) hk->outer[i] = s.h[i];
}

// One message in pieces (no copy): begin, update per piece, final.
struct grass_hmac {
  grass_sha256 inner;
  uint32_t outer[8];
};

GRASS_HD void grass_hmac_begin(grass_hmac* m, const grass_hmac_key* hk) {
  for (int i = 0; i < 8; i++) { m->inner.h[i] = hk->inner[i]; m->outer[i] = hk->outer[i]; }
  m->inner.total_bytes = 64;  // the inner pad block, already compressed
  m->inner.block_bytes = 0;
}

// For a key used once (tests, a client's first request).
GRASS_HD void grass_hmac_init(grass_hmac* m, const uint8_t* key, uint32_t key_bytes) {
  grass_hmac_key hk;
  grass_hmac_key_init(&hk, key, key_bytes);
  grass_hmac_begin(m, &hk);
}

GRASS_HD void grass_hmac_update(grass_hmac* m, const void* data, uint64_t n) { grass_sha256_update(&m->inner, data, n); }

GRASS_HD void grass_hmac_final(grass_hmac* m, uint8_t out[32]) {
  grass_sha256_finish(&m->inner);
  // The outer message is the 32-byte inner digest after the outer pad block: one block, its
  // padding fixed (0x80, zeros, the length 96 bytes in bits).
  uint32_t w[16];
  for (int i = 0; i < 8; i++) w[i] = m->inner.h[i];
  w[8] = 0x80000000u;
  for (int i = 9; i < 15; i++) w[i] = 0;
  w[15] = (64 + 32) * 8;
  grass_sha256_compress_words(m->outer, w);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(m->outer[i] >> 24); out[4 * i + 1] = (uint8_t)(m->outer[i] >> 16);
    out[4 * i + 2] = (uint8_t)(m->outer[i] >> 8); out[4 * i + 3] = (uint8_t)m->outer[i];
  }
}

// Compares in time independent of where the first difference is.
GRASS_HD bool grass_mac_equal(const uint8_t* a, const uint8_t* b, uint32_t n) {
  uint8_t diff = 0;
  for (uint32_t i = 0; i < n; i++) diff |= a[i] ^ b[i];
  return diff == 0;
}

#endif
