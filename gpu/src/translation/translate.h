// Layer 2, address translation: kernel virtual / user virtual -> physical -> mapped pointer.
// x86-64 4- and 5-level paging with 2 MiB and 1 GiB pages, walked in the target's own tables.
#ifndef GRASS_TRANSLATION_TRANSLATE_H
#define GRASS_TRANSLATION_TRANSLATE_H

#include "memory/phys_map.h"

#define GRASS_PTE_PRESENT 0x1ull
#define GRASS_PTE_HUGE 0x80ull                 // PS bit in a PUD (1 GiB) or PMD (2 MiB) entry
#define GRASS_PTE_ADDR 0x000ffffffffff000ull   // bits 12..51 of an entry: the next level's frame

struct grass_paging {
  uint64_t root_phys;         // the kernel's top-level table (init_top_pgt)
  uint32_t levels;            // 4 or 5
  uint32_t reserved0;
  uint64_t page_offset_base;  // start of the direct map
  uint64_t direct_map_bytes;  // span of the direct map taken as a fast path (end of physical memory)
};

// Result of one translation or read: a grass_status and the address that failed.
struct grass_fault {
  uint32_t status;
  uint64_t address;
};

GRASS_HD bool grass_fail(grass_fault* f, uint32_t status, uint64_t address) {
  f->status = status;
  f->address = address;
  return false;
}

// Walks the tables at root for va. On success gives the physical address and how many bytes of
// the same page follow it (so a reader knows where the next translation is due).
GRASS_HD_CALL bool grass_walk(const grass_phys_map* m, uint64_t root, uint32_t levels, uint64_t va,
                         uint64_t* phys, uint64_t* bytes_left_in_page, grass_fault* f) {
  uint32_t va_bits = levels == 5 ? 57 : 48;
  uint64_t high = (uint64_t)((int64_t)(va << (64 - va_bits)) >> (64 - va_bits));
  if (high != va) return grass_fail(f, GRASS_E_UNMAPPED, va);  // not canonical
  uint64_t table = root & GRASS_PTE_ADDR;
  for (int level = (int)levels; level >= 1; level--) {
    uint32_t shift = 12 + 9 * (level - 1);
    uint64_t index = (va >> shift) & 511;
    uint64_t entry;
    if (!grass_phys_read_u64(m, table + index * 8, &entry)) return grass_fail(f, grass_phys_missing(m, table + index * 8, 8), va);
    if (!(entry & GRASS_PTE_PRESENT)) return grass_fail(f, GRASS_E_UNMAPPED, va);
    bool leaf = level == 1 || ((level == 2 || level == 3) && (entry & GRASS_PTE_HUGE));
    if (leaf) {
      uint64_t page_bytes = 1ull << shift;
      uint64_t frame = entry & GRASS_PTE_ADDR & ~(page_bytes - 1);
      uint64_t in_page = va & (page_bytes - 1);
      *phys = frame + in_page;
      *bytes_left_in_page = page_bytes - in_page;
      return true;
    }
    table = entry & GRASS_PTE_ADDR;
  }
  return grass_fail(f, GRASS_E_UNMAPPED, va);
}

// Kernel virtual -> physical: the direct map by arithmetic, everything else (kernel image,
// vmalloc, per-CPU, vmemmap) through the kernel's page tables.
GRASS_HD bool grass_kernel_to_phys(const grass_phys_map* m, const grass_paging* pg, uint64_t va,
                                   uint64_t* phys, uint64_t* bytes_left, grass_fault* f) {
  if (va >= pg->page_offset_base && va - pg->page_offset_base < pg->direct_map_bytes) {
    *phys = va - pg->page_offset_base;
    *bytes_left = 4096 - (va & 4095);
    return true;
  }
  return grass_walk(m, pg->root_phys, pg->levels, va, phys, bytes_left, f);
}

// Reads len bytes at addr of a space into dst, page by page. root is the page table for
// GRASS_SPACE_USER (a process's mm->pgd, physical); unused otherwise.
GRASS_HD_CALL bool grass_read(const grass_phys_map* m, const grass_paging* pg, uint32_t space, uint64_t root,
                         uint64_t addr, void* dst, uint64_t len, grass_fault* f) {
  uint8_t* out = (uint8_t*)dst;
  while (len > 0) {
    uint64_t phys, run;
    if (space == GRASS_SPACE_PHYSICAL) {
      phys = addr;
      run = len;
    } else if (space == GRASS_SPACE_KERNEL) {
      if (!grass_kernel_to_phys(m, pg, addr, &phys, &run, f)) return false;
    } else {
      if (!grass_walk(m, root, pg->levels, addr, &phys, &run, f)) return false;
    }
    if (run > len) run = len;
    if (space == GRASS_SPACE_PHYSICAL) {
      // A physical span may cross from one range into the next: copy what this range holds.
      uint8_t* p = 0;
      uint64_t avail = grass_phys_span(m, phys, run, &p);
      if (!avail) return grass_fail(f, grass_phys_missing(m, phys, run), addr);
      run = avail;
      grass_copy(out, p, run);
    } else {
      const uint8_t* p = grass_phys_ptr(m, phys, run);
      if (!p) return grass_fail(f, grass_phys_missing(m, phys, run), addr);
      grass_copy(out, p, run);
    }
    out += run; addr += run; len -= run;
  }
  return true;
}

// Writes len bytes from src at addr (same spaces as grass_read); the caller checked permission.
GRASS_HD_CALL bool grass_write(const grass_phys_map* m, const grass_paging* pg, uint32_t space, uint64_t root,
                          uint64_t addr, const void* src, uint64_t len, grass_fault* f) {
  const uint8_t* in = (const uint8_t*)src;
  while (len > 0) {
    uint64_t phys, run;
    if (space == GRASS_SPACE_PHYSICAL) {
      phys = addr;
      run = 4096 - (addr & 4095);
    } else if (space == GRASS_SPACE_KERNEL) {
      if (!grass_kernel_to_phys(m, pg, addr, &phys, &run, f)) return false;
    } else {
      if (!grass_walk(m, root, pg->levels, addr, &phys, &run, f)) return false;
    }
    if (run > len) run = len;
    uint8_t* p = grass_phys_ptr(m, phys, run);
    if (!p) return grass_fail(f, grass_phys_missing(m, phys, run), addr);
    grass_copy(p, in, run);
    in += run; addr += run; len -= run;
  }
  return true;
}

#endif
