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
};

// Mapped pointer of [phys, phys+len) when the whole span lies in one range, else null.
GRASS_HD uint8_t* grass_phys_ptr(const grass_phys_map* m, uint64_t phys, uint64_t len) {
  for (uint32_t i = 0; i < m->count; i++) {
    const grass_phys_range* r = &m->ranges[i];
    if (phys >= r->phys_start && phys - r->phys_start < r->length) {
      uint64_t off = phys - r->phys_start;
      if (len > r->length - off) return 0;
      return r->base + off;
    }
  }
  return 0;
}

GRASS_HD bool grass_phys_read_u64(const grass_phys_map* m, uint64_t phys, uint64_t* out) {
  const uint8_t* p = grass_phys_ptr(m, phys, 8);
  if (!p) return false;
  grass_copy(out, p, 8);
  return true;
}

#endif
