// CRC32 (IEEE 802.3, reflected, as zlib's crc32) of reply data, slice-by-8. The tables live in a
// plain struct the host fills once, so the device reads them from the monitor's own memory.
#ifndef GRASS_CRYPTO_CRC32_H
#define GRASS_CRYPTO_CRC32_H

#include "grass/hd.h"

struct grass_crc32_tables {
  uint32_t t[8][256];
};

GRASS_HD void grass_crc32_tables_init(grass_crc32_tables* c) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t v = i;
    for (int b = 0; b < 8; b++) v = (v >> 1) ^ (0xedb88320u & (0u - (v & 1)));
    c->t[0][i] = v;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int s = 1; s < 8; s++) c->t[s][i] = (c->t[s - 1][i] >> 8) ^ c->t[0][c->t[s - 1][i] & 0xff];
}

GRASS_HD uint32_t grass_crc32(const grass_crc32_tables* c, const void* data, uint64_t n) {
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

#endif
