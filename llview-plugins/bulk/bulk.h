// GRASS_OP_BULK_READ: physical pages streamed through the slot's data area for bulk transfer
// (grass save-vmcore). Each reply is one chunk in the slot itself, so a remote with N slots has
// N transfers in flight and each costs one round trip; the remote chooses the pages (the
// kernel-only filter reads the target's struct page array beforehand) and the agent copies
// only those; DUMP_MAP tells beforehand which pages a dump left out. The bulk plugin's entry
// points (plugins.h); monitor code, included by the plugin list.
#ifndef GRASS_PLUGIN_BULK_H
#define GRASS_PLUGIN_BULK_H

// Copies the selected pages of [addr, addr + len) to dst (capacity bytes), runs of adjacent
// pages in one copy. bitmap == 0: every page.
GRASS_HD_CALL void grass_op_bulk_read(grass_monitor* mon, uint32_t i, const grass_request* q, grass_outcome* o) {
  uint64_t addr = q->args[0], len = q->args[1];
  const uint64_t page = GRASS_BULK_PAGE_BYTES;
  uint64_t pages = len / page;
  const uint8_t* bitmap = q->data_bytes ? grass_request_data(mon, i) : 0;
  if (len == 0 || addr % page || len % page || pages > 8ull * mon->slot_data_bytes ||
      (bitmap && q->data_bytes < (pages + 7) / 8) || addr + len < addr) {
    o->status = GRASS_E_MALFORMED;
    o->detail = len;
    return;
  }
  uint8_t* dst = grass_slot_data(mon, i);
  uint64_t at = 0;
  for (uint64_t k = 0; k < pages;) {
    if (bitmap && !(bitmap[k / 8] >> (k % 8) & 1)) { k++; continue; }
    uint64_t run = 1;
    while (k + run < pages && (!bitmap || (bitmap[(k + run) / 8] >> ((k + run) % 8) & 1))) run++;
    if (at + run * page > mon->slot_data_bytes) { o->status = GRASS_E_MALFORMED; o->detail = len; return; }
    // A run may cross from one memory range into the next: copy range by range.
    for (uint64_t done = 0; done < run * page;) {
      uint64_t phys = addr + k * page + done, piece = run * page - done;
      uint8_t* src = 0;
      uint64_t avail = grass_phys_span(&mon->mem, phys, piece, &src);
      if (!avail) { o->status = grass_phys_missing(&mon->mem, phys, piece); o->detail = phys; return; }
      piece = avail;
      grass_copy(dst + at + done, src, piece);
      done += piece;
    }
    at += run * page;
    k += run;
  }
  o->inline_bytes = at;
}

// Which pages of [addr, addr + pages pages) the memory source holds, a bit each: a dump that left
// pages out (its dump level) says so before a bulk transfer asks for them.
GRASS_HD_CALL void grass_op_dump_map(grass_monitor* mon, uint32_t i, const grass_request* q, grass_outcome* o) {
  uint64_t addr = q->args[0], pages = q->args[1];
  const uint64_t page = GRASS_BULK_PAGE_BYTES;
  if (pages == 0 || addr % page || pages > 8ull * mon->slot_data_bytes || addr + pages * page < addr) {
    o->status = GRASS_E_MALFORMED;
    o->detail = pages;
    return;
  }
  uint8_t* dst = grass_slot_data(mon, i);
  uint64_t bytes = (pages + 7) / 8;
  for (uint64_t b = 0; b < bytes; b++) dst[b] = 0;
  for (uint64_t k = 0; k < pages; k++) {
    uint8_t* src = 0;
    if (grass_phys_span(&mon->mem, addr + k * page, page, &src) == page) dst[k / 8] |= (uint8_t)(1u << (k % 8));
  }
  o->inline_bytes = bytes;
}

#define GRASS_BULK_OPS(Y) Y(GRASS_OP_BULK_READ, grass_op_bulk_read) Y(GRASS_OP_DUMP_MAP, grass_op_dump_map)

#endif
