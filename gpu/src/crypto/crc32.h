// CRC32 (IEEE 802.3, reflected, as zlib's crc32) of reply data, slice-by-8. The tables live in a
// plain struct the host fills once, so the device reads them from the monitor's own memory.
// On the device a large checksum is split over the helper warps (hd.h): each piece's CRC is
// shifted past the bytes after it (multiplied by x^(8*after) modulo the polynomial) and the
// shifted CRCs XORed, which is the CRC of the whole (CRC(A||B) = CRC(A)*x^(8|B|) + CRC(B)).
#ifndef GRASS_CRYPTO_CRC32_H
#define GRASS_CRYPTO_CRC32_H

#include "grass/hd.h"

struct grass_crc32_tables {
  uint32_t t[8][256];
  uint32_t shift[64];  // x^(8*2^k) modulo the polynomial, reflected (bit 31 is x^0)
};

// a*b modulo the CRC polynomial, both reflected.
GRASS_HD uint32_t grass_crc32_mulmod(uint32_t a, uint32_t b) {
  uint32_t p = 0;
  for (uint32_t m = 1u << 31; m; m >>= 1) {
    if (a & m) p ^= b;
    b = (b & 1) ? (b >> 1) ^ 0xedb88320u : b >> 1;
  }
  return p;
}

// crc (of some A) as the term it contributes to CRC(A||B) for |B| = after bytes.
GRASS_HD uint32_t grass_crc32_shift(const grass_crc32_tables* c, uint32_t crc, uint64_t after) {
  for (int k = 0; after; k++, after >>= 1)
    if (after & 1) crc = grass_crc32_mulmod(c->shift[k], crc);
  return crc;
}

// CRC(A||B) from CRC(A), CRC(B) and |B|.
GRASS_HD uint32_t grass_crc32_combine(const grass_crc32_tables* c, uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  return grass_crc32_shift(c, crc_a, len_b) ^ crc_b;
}

GRASS_HD void grass_crc32_tables_init(grass_crc32_tables* c) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t v = i;
    for (int b = 0; b < 8; b++) v = (v >> 1) ^ (0xedb88320u & (0u - (v & 1)));
    c->t[0][i] = v;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int s = 1; s < 8; s++) c->t[s][i] = (c->t[s - 1][i] >> 8) ^ c->t[0][c->t[s - 1][i] & 0xff];
  c->shift[0] = 1u << 23;  // x^8
  for (int k = 1; k < 64; k++) c->shift[k] = grass_crc32_mulmod(c->shift[k - 1], c->shift[k - 1]);
}

GRASS_HD uint32_t grass_crc32_serial(const grass_crc32_tables* c, const void* data, uint64_t n) {
  const uint8_t* p = (const uint8_t*)data;
  uint32_t crc = 0xffffffffu;
  while (n > 0 && ((uintptr_t)p & 7) != 0) { crc = (crc >> 8) ^ c->t[0][(crc ^ *p++) & 0xff]; n--; }
  while (n >= 8) {
    uint64_t w = *(const uint64_t*)p;  // little-endian target and monitor
    uint32_t lo = (uint32_t)w ^ crc, hi = (uint32_t)(w >> 32);
    crc = c->t[7][lo & 0xff] ^ c->t[6][(lo >> 8) & 0xff] ^ c->t[5][(lo >> 16) & 0xff] ^ c->t[4][lo >> 24] ^
          c->t[3][hi & 0xff] ^ c->t[2][(hi >> 8) & 0xff] ^ c->t[1][(hi >> 16) & 0xff] ^ c->t[0][hi >> 24];
    p += 8; n -= 8;
  }
  while (n > 0) { crc = (crc >> 8) ^ c->t[0][(crc ^ *p++) & 0xff]; n--; }
  return crc ^ 0xffffffffu;
}

// The helpers' share of a checksum job: piece `me` of `helpers` equal pieces (16-byte multiples),
// shifted past the bytes after it, XORed into the job's result.
#ifdef __CUDACC__
__device__ inline void grass_crc32_piece(grass_copy_job* job, uint32_t me) {
  const grass_crc32_tables* c = (const grass_crc32_tables*)job->tables;
  uint64_t n = job->units, piece = ((n + job->helpers - 1) / job->helpers + 15) & ~15ull;
  uint64_t start = (uint64_t)me * piece;
  if (start >= n) return;
  uint64_t len = n - start < piece ? n - start : piece;
  uint32_t term = grass_crc32_shift(c, grass_crc32_serial(c, job->src + start, len), n - start - len);
  atomicXor(&job->crc, term);
}
#endif

GRASS_HD uint32_t grass_crc32(const grass_crc32_tables* c, const void* data, uint64_t n) {
#ifdef __CUDA_ARCH__
  grass_copy_job* job = grass_copy_helpers;
  if (job && n >= GRASS_PARALLEL_COPY_MIN) {
    job->src = (const uint8_t*)data;
    job->units = n;
    job->tables = c;
    job->kind = GRASS_JOB_CRC32;
    grass_run_helper_job(job);
    return job->crc;
  }
#endif
  return grass_crc32_serial(c, data, n);
}

#endif
