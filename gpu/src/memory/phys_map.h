// Layer 1, memory source as the monitor sees it: physical ranges of the target, each backed by
// a mapped pointer (host mapping for the cpu backend, device pointer of the same mapping for cuda).
#ifndef GRASS_MEMORY_PHYS_MAP_H
#define GRASS_MEMORY_PHYS_MAP_H

#include "grass/hd.h"
#include "grass/protocol.h"

#define GRASS_MAX_PHYS_RANGES 64u

struct grass_phys_range {
  uint64_t phys_start;
  uint64_t length;
  uint8_t* base;  // mapped address of phys_start
};

struct grass_phys_map {
  grass_phys_range ranges[GRASS_MAX_PHYS_RANGES];
  uint32_t count;
  uint32_t writable;  // the mapping allows writes (a vmcore is mapped read-only)
  // A dump that left pages out (makedumpfile's dump level): bit pfn % 64 of word pfn / 64 set
  // when the 4 KiB page at pfn is in the dump. Null: every page of the ranges is.
  const uint64_t* dumped;
};

GRASS_HD bool grass_phys_dumped(const grass_phys_map* m, uint64_t phys) {
  uint64_t pfn = phys >> 12;
  return !m->dumped || (m->dumped[pfn >> 6] >> (pfn & 63) & 1);
}

// How many bytes from phys on lie in one range and in the dump (at most len); 0 when phys
// itself does not. *base gets the mapped pointer of phys.
GRASS_HD uint64_t grass_phys_span(const grass_phys_map* m, uint64_t phys, uint64_t len, uint8_t** base) {
  for (uint32_t i = 0; i < m->count; i++) {
    const grass_phys_range* r = &m->ranges[i];
    if (phys >= r->phys_start && phys - r->phys_start < r->length) {
      uint64_t off = phys - r->phys_start, avail = r->length - off;
      if (len > avail) len = avail;
      if (m->dumped) {
        uint64_t got = 0;
        while (got < len && grass_phys_dumped(m, phys + got)) got += 4096 - ((phys + got) & 4095);
        if (got < len) len = got;
      }
      *base = r->base + off;
      return len;
    }
  }
  return 0;
}

// Mapped pointer of [phys, phys+len) when the whole span lies in one range and in the dump, else null.
GRASS_HD uint8_t* grass_phys_ptr(const grass_phys_map* m, uint64_t phys, uint64_t len) {
  uint8_t* base = 0;
  return grass_phys_span(m, phys, len, &base) == len && len ? base : 0;
}

// Why [phys, phys+len) cannot be read: GRASS_E_EXCLUDED when a page of it lies in memory but
// not in the dump, else GRASS_E_OUT_OF_RANGE.
GRASS_HD uint32_t grass_phys_missing(const grass_phys_map* m, uint64_t phys, uint64_t len) {
  uint8_t* base = 0;
  uint64_t got = grass_phys_span(m, phys, len, &base);
  uint64_t first_missing = phys + got;
  if (got == 0 && !m->dumped) return GRASS_E_OUT_OF_RANGE;
  for (uint32_t i = 0; i < m->count; i++) {
    const grass_phys_range* r = &m->ranges[i];
    if (first_missing >= r->phys_start && first_missing - r->phys_start < r->length)
      return grass_phys_dumped(m, first_missing) ? GRASS_E_OUT_OF_RANGE : GRASS_E_EXCLUDED;
  }
  return GRASS_E_OUT_OF_RANGE;
}

GRASS_HD bool grass_phys_read_u64(const grass_phys_map* m, uint64_t phys, uint64_t* out) {
  const uint8_t* p = grass_phys_ptr(m, phys, 8);
  if (!p) return false;
  grass_copy(out, p, 8);
  return true;
}

#endif
