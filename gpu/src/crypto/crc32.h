// CRC32C (Castagnoli, reflected polynomial 0x82f63b78, as iSCSI and SSE4.2's crc32 instruction
// compute it) of reply data. Protocol v3 replaced CRC32 (IEEE) by it: on the host the checksum is
// the CPU's crc32 instruction over three interleaved streams (a table fallback where the CPU has
// no SSE4.2); on the device the table code below, slice-by-8, gives the same values. The tables
// live in a plain struct the host fills once, so the device reads them from the monitor's own
// memory. On the device a large checksum is split over the helper warps (hd.h): each piece's CRC
// is shifted past the bytes after it (multiplied by x^(8*after) modulo the polynomial) and the
// shifted CRCs XORed, which is the CRC of the whole (CRC(A||B) = CRC(A)*x^(8|B|) + CRC(B)); the
// host joins its three streams the same way.
#ifndef GRASS_CRYPTO_CRC32_H
#define GRASS_CRYPTO_CRC32_H

#include "grass/hd.h"

#if !defined(__CUDA_ARCH__) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#define GRASS_CRC32C_X86 1
#endif

#define GRASS_CRC32C_POLY 0x82f63b78u  // reflected

struct grass_crc32_tables {
  uint32_t t[8][256];
  uint32_t shift[64];  // x^(8*2^k) modulo the polynomial, reflected (bit 31 is x^0)
  uint32_t hardware;   // host: 1 where the CPU has SSE4.2 (set by grass_crc32_tables_init)
};

// a*b modulo the CRC polynomial, both reflected.
GRASS_HD uint32_t grass_crc32_mulmod(uint32_t a, uint32_t b) {
  uint32_t p = 0;
  for (uint32_t m = 1u << 31; m; m >>= 1) {
    if (a & m) p ^= b;
    b = (b & 1) ? (b >> 1) ^ GRASS_CRC32C_POLY : b >> 1;
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

// Whether this CPU has SSE4.2's crc32 instruction (host only).
GRASS_HD uint32_t grass_crc32_cpu_has_instruction() {
#ifdef GRASS_CRC32C_X86
  unsigned eax, ebx, ecx, edx;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_SSE4_2) ? 1u : 0u;
#else
  return 0;
#endif
}

GRASS_HD void grass_crc32_tables_init(grass_crc32_tables* c) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t v = i;
    for (int b = 0; b < 8; b++) v = (v >> 1) ^ (GRASS_CRC32C_POLY & (0u - (v & 1)));
    c->t[0][i] = v;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int s = 1; s < 8; s++) c->t[s][i] = (c->t[s - 1][i] >> 8) ^ c->t[0][c->t[s - 1][i] & 0xff];
  c->shift[0] = 1u << 23;  // x^8
  for (int k = 1; k < 64; k++) c->shift[k] = grass_crc32_mulmod(c->shift[k - 1], c->shift[k - 1]);
  c->hardware = grass_crc32_cpu_has_instruction();
}

// The table code: slice-by-8, on the device and on hosts without the instruction.
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

#ifdef GRASS_CRC32C_X86
// The CRC register (no pre- or post-inversion) advanced over n bytes with the crc32 instruction
// (GNU assembler mnemonics: no -msse4.2 needed, the caller checked the CPU).
inline uint32_t grass_crc32c_hw_run(uint32_t crc, const uint8_t* p, uint64_t n) {
  uint64_t r = crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    __asm__("crc32q %1, %0" : "+r"(r) : "rm"(w));
  }
  uint32_t r32 = (uint32_t)r;
  for (; n > 0; n--, p++) __asm__("crc32b %1, %0" : "+r"(r32) : "rm"(*p));
  return r32;
}

// Three streams at once (the instruction's latency is three times its issue rate), joined by
// shifting the first two past the bytes after them.
inline uint32_t grass_crc32c_hw(const grass_crc32_tables* c, const void* data, uint64_t n) {
  const uint8_t* p = (const uint8_t*)data;
  const uint64_t kStreamsFrom = 3 * 1024;
  if (n < kStreamsFrom) return grass_crc32c_hw_run(0xffffffffu, p, n) ^ 0xffffffffu;
  uint64_t third = n / 3 & ~7ull;
  const uint8_t *pa = p, *pb = p + third, *pc = p + 2 * third;
  uint64_t a = 0xffffffffu, b = 0, cc = 0;
  for (uint64_t k = 0; k < third; k += 8) {
    uint64_t wa, wb, wc;
    memcpy(&wa, pa + k, 8);
    memcpy(&wb, pb + k, 8);
    memcpy(&wc, pc + k, 8);
    __asm__("crc32q %3, %0\n\tcrc32q %4, %1\n\tcrc32q %5, %2" : "+r"(a), "+r"(b), "+r"(cc) : "rm"(wa), "rm"(wb), "rm"(wc));
  }
  uint32_t last = grass_crc32c_hw_run((uint32_t)cc, pc + third, n - 3 * third);
  uint32_t joined = grass_crc32_shift(c, grass_crc32_shift(c, (uint32_t)a, third) ^ (uint32_t)b, n - 2 * third) ^ last;
  return joined ^ 0xffffffffu;
}
#endif

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

// The checksum a grid copy took on the way (the cuda backend's large copies).
#include "crypto/crc32_grid.h"

// The reply checksum (CRC32C), by the fastest means where it runs.
GRASS_HD uint32_t grass_crc32(const grass_crc32_tables* c, const void* data, uint64_t n) {
#ifdef __CUDA_ARCH__
  uint32_t from_grid;
  if (grass_crc32_of_grid_copy(c, data, n, &from_grid)) return from_grid;
  grass_copy_job* job = grass_copy_helpers;
  if (job && n >= GRASS_PARALLEL_COPY_MIN) {
    job->src = (const uint8_t*)data;
    job->units = n;
    job->tables = c;
    job->kind = GRASS_JOB_CRC32;
    grass_run_helper_job(job);
    return job->crc;
  }
#elif defined(GRASS_CRC32C_X86)
  if (c->hardware) return grass_crc32c_hw(c, data, n);
#endif
  return grass_crc32_serial(c, data, n);
}

#endif
