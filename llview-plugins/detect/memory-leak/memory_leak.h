// Detector memory-leak (GRASS_DETECT_MEMORY_LEAK, GPUSentinel's): free RAM and free swap both under
// 30 % (no swap counts as none free). Figures: values[0] free RAM, [1] total RAM, [2] free swap,
// [3] total swap (bytes); culprits: the largest resident sets.
#ifndef GRASS_DETECT_MEMORY_LEAK_H
#define GRASS_DETECT_MEMORY_LEAK_H

#include "detect/detect.h"  // the shared part: detect.h includes this header from its middle

#define GRASS_DETECT_FREE_PERCENT 30u            // memory leak: free RAM and free swap under 30 %

GRASS_HD_CALL void grass_detect_memory_leak(const grass_ps_ctx* ps, grass_detect_state* st, const grass_metrics_state* m) {
  const grass_metrics_sample* end = &m->samples[m->latest];
  grass_detection* d = &st->results[GRASS_DETECT_MEMORY_LEAK - 1];
  bool ram_low = end->free_pages * 100 < end->total_ram_pages * GRASS_DETECT_FREE_PERCENT;
  bool swap_low = end->free_swap_pages * 100 < end->total_swap_pages * GRASS_DETECT_FREE_PERCENT || end->total_swap_pages == 0;
  if (!ram_low || !swap_low) {
    d->since_ns = 0;
    d->active = 0;
    return;
  }
  if (d->since_ns == 0) d->since_ns = end->monitor_clock_ns;
  uint64_t count = 0;
  if (!grass_detect_walk(ps, st, d, &count)) return;
  uint64_t* score = st->base_cpu_ns + st->base_count;
  for (uint64_t i = 0; i < count; i++) score[i] = st->tasks[i].rss_bytes;
  if (!d->active) d->detected_ns = end->monitor_clock_ns;
  d->active = 1;
  d->values[0] = end->free_pages * end->page_size;
  d->values[1] = end->total_ram_pages * end->page_size;
  d->values[2] = end->free_swap_pages * end->page_size;
  d->values[3] = end->total_swap_pages * end->page_size;
  grass_detect_top(st, count, score, d);
}

#endif
