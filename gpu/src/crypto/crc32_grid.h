// The reply checksum of a grid copy (hd.h: grass_copy_grid), taken by the copy blocks while the
// bytes pass through their registers, in 16-byte units. Included by crc32.h after the serial
// code and the shift it builds on; the same polynomial, whatever crc32.h's tables hold.
//
// The arithmetic: with the raw CRC (zero start, no final xor) R(M), which is linear in M,
//   CRC(M) = R(M) ^ shift(~0, |M|) ^ ~0, and R(A||B) = shift(R(A), |B|) ^ R(B).
// A chunk of 1024 units is copied by 256 lanes, lane t taking units t, t+256, t+512, t+768 (a
// warp's loads consecutive). Lane t folds its units by Horner's rule (multiply by x^(8*4096),
// the stride, then add the unit's raw CRC), then multiplies by x^(8*16*(255-t)) to align its sum
// to the chunk's end; the lanes' sums XORed give the chunk's raw CRC. The poster joins the
// chunks' raw CRCs in order (multiply by x^(8*16384) per chunk) when the reply asks for them.
#ifndef GRASS_CRYPTO_CRC32_GRID_H
#define GRASS_CRYPTO_CRC32_GRID_H

#define GRASS_GRID_LANES 256u
#define GRASS_GRID_UNITS_PER_LANE (GRASS_GRID_CHUNK_BYTES / 16u / GRASS_GRID_LANES)

struct grass_crc32_grid_tables {
  uint32_t slice[16][256];     // slice[k][b]: raw CRC of byte b followed by k zero bytes
  uint32_t mul_stride[4][256]; // v * x^(8*16*GRASS_GRID_LANES), by the bytes of v
  uint32_t mul_chunk[4][256];  // v * x^(8*GRASS_GRID_CHUNK_BYTES), by the bytes of v
};

GRASS_HD void grass_crc32_grid_tables_init(const grass_crc32_tables* c, grass_crc32_grid_tables* g) {
  for (uint32_t b = 0; b < 256; b++) {
    g->slice[0][b] = c->t[0][b];
    for (int k = 1; k < 16; k++) g->slice[k][b] = (g->slice[k - 1][b] >> 8) ^ c->t[0][g->slice[k - 1][b] & 0xff];
    for (int j = 0; j < 4; j++) {
      g->mul_stride[j][b] = grass_crc32_shift(c, b << (8 * j), 16ull * GRASS_GRID_LANES);
      g->mul_chunk[j][b] = grass_crc32_shift(c, b << (8 * j), GRASS_GRID_CHUNK_BYTES);
    }
  }
}

// v multiplied by the constant a table was built for.
GRASS_HD uint32_t grass_crc32_mul_by(const uint32_t (*table)[256], uint32_t v) {
  return table[0][v & 0xff] ^ table[1][(v >> 8) & 0xff] ^ table[2][(v >> 16) & 0xff] ^ table[3][v >> 24];
}

// Raw CRC of one 16-byte unit given as four little-endian words (byte j meets slice[15 - j]).
GRASS_HD uint32_t grass_crc32_raw16(const uint32_t (*s)[256], uint32_t x, uint32_t y, uint32_t z, uint32_t w) {
  return s[15][x & 0xff] ^ s[14][(x >> 8) & 0xff] ^ s[13][(x >> 16) & 0xff] ^ s[12][x >> 24] ^
         s[11][y & 0xff] ^ s[10][(y >> 8) & 0xff] ^ s[9][(y >> 16) & 0xff] ^ s[8][y >> 24] ^
         s[7][z & 0xff] ^ s[6][(z >> 8) & 0xff] ^ s[5][(z >> 16) & 0xff] ^ s[4][z >> 24] ^
         s[3][w & 0xff] ^ s[2][(w >> 8) & 0xff] ^ s[1][(w >> 16) & 0xff] ^ s[0][w >> 24];
}

// Lane t's part of a chunk's raw CRC, aligned to the chunk's end: folded is the lane's Horner sum
// over its units (the last at local unit index last), chunk_units the chunk's length in units.
// align_full: x^(8*16*(GRASS_GRID_LANES-1-t)), the alignment of a full chunk's lane t.
GRASS_HD uint32_t grass_crc32_lane_aligned(const grass_crc32_tables* c, uint32_t folded, uint32_t last, uint32_t chunk_units,
                                           uint32_t align_full) {
  if (chunk_units == GRASS_GRID_LANES * GRASS_GRID_UNITS_PER_LANE) return grass_crc32_mulmod(align_full, folded);
  return grass_crc32_shift(c, folded, 16ull * (chunk_units - 1 - last));
}

// The CRC of bytes whose chunks' raw CRCs are chunk_crc[0..], joined in order.
GRASS_HD uint32_t grass_crc32_join_chunks(const grass_crc32_tables* c, const grass_crc32_grid_tables* g,
                                          const volatile uint32_t* chunk_crc, uint64_t bytes) {
  uint32_t raw = 0;
  for (uint64_t at = 0, k = 0; at < bytes; at += GRASS_GRID_CHUNK_BYTES, k++) {
    uint64_t len = bytes - at < GRASS_GRID_CHUNK_BYTES ? bytes - at : GRASS_GRID_CHUNK_BYTES;
    raw = (len == GRASS_GRID_CHUNK_BYTES ? grass_crc32_mul_by(g->mul_chunk, raw) : grass_crc32_shift(c, raw, len)) ^ chunk_crc[k];
  }
  return raw ^ grass_crc32_shift(c, 0xffffffffu, bytes) ^ 0xffffffffu;
}

#ifdef __CUDACC__
// The reply's checksum from the last grid copy when it covered exactly these bytes (a tail of
// fewer than 16 bytes after it is checksummed serially); false: checksum them the usual way. The
// memo is used once.
__device__ inline bool grass_crc32_of_grid_copy(const grass_crc32_tables* c, const void* data, uint64_t n, uint32_t* crc) {
  grass_grid_job* job = grass_copy_grid;
  if (!job || !job->memo_bytes || job->memo_dst != data || n < job->memo_bytes || n - job->memo_bytes >= 16) return false;
  uint64_t body = job->memo_bytes;
  job->memo_bytes = 0;
  *crc = grass_crc32_join_chunks(c, (const grass_crc32_grid_tables*)job->tables, job->chunk_crc, body);
  if (n > body) *crc = grass_crc32_combine(c, *crc, grass_crc32_serial(c, (const uint8_t*)data + body, n - body), n - body);
  return true;
}
#endif

#endif
