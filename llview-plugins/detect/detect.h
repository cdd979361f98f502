// Layer 3, plugin: GPUSentinel's CPU-high-load and memory-leak detectors (GRASS_OP_DETECT).
// Monitor code, run on every new sample of the metrics plugin (so on the monitor's own clock);
// culprits come from the process-list plugin's walk. The remote asks for the latest state.
#ifndef GRASS_PLUGIN_DETECT_H
#define GRASS_PLUGIN_DETECT_H

#include "grass/protocol.h"
#include "../metrics/metrics.h"
#include "../process-list/process_list.h"
#include "../../gpu/src/crypto/crc32.h"

#define GRASS_DETECT_BUSY_PERMILLE 900u          // CPU high load: every CPU at least 90 % busy
#define GRASS_DETECT_BUSY_SPAN_NS 5000000000ull  // ... for 5 s
#define GRASS_DETECT_FREE_PERCENT 30u            // memory leak: free RAM and free swap under 30 %

// Host-allocated (the walk's records and the CPU-time baseline are too large for the stack).
struct grass_detect_state {
  grass_detection results[GRASS_DETECTORS];  // [0] CPU high load, [1] memory leak
  grass_task_record* tasks;                  // the walk's output, task_capacity records
  uint64_t task_capacity;
  int32_t* base_pid;                         // CPU time of every thread group when the high load began
  uint64_t* base_cpu_ns;
  uint64_t base_count;
  uint64_t evaluated_sample_ns;              // the newest metrics sample already evaluated
};

// Walks the thread-group leaders into st->tasks; false (fault set) when the list does not walk.
GRASS_HD bool grass_detect_walk(const grass_ps_ctx* ps, grass_detect_state* st, uint64_t* count) {
  return grass_ps_walk(ps, 0, st->tasks, st->task_capacity, count);
}

// Keeps the GRASS_DETECT_CULPRITS largest scores (descending) among the walked tasks.
GRASS_HD void grass_detect_top(const grass_detect_state* st, uint64_t count, const uint64_t* score, grass_detection* d) {
  d->culprit_count = 0;
  uint64_t chosen[GRASS_DETECT_CULPRITS];
  for (uint32_t k = 0; k < GRASS_DETECT_CULPRITS; k++) {
    uint64_t best = count;
    for (uint64_t i = 0; i < count; i++) {
      bool taken = false;
      for (uint32_t j = 0; j < k; j++) taken |= chosen[j] == i;
      if (!taken && score[i] > 0 && (best == count || score[i] > score[best])) best = i;
    }
    if (best == count) break;
    chosen[k] = best;
    const grass_task_record* t = &st->tasks[best];
    grass_detect_culprit* c = &d->culprits[k];
    c->pid = t->tgid;
    c->cpu_permille = 0;
    c->rss_bytes = t->rss_bytes;
    grass_copy(c->comm, t->comm, 16);
    d->culprit_count = k + 1;
  }
}

GRASS_HD void grass_detect_fault(grass_detection* d, const grass_fault* f) {
  d->status = f->status;
  d->detail = f->address;
}

// CPU time of each walked group since the baseline (a group born since counts whole).
GRASS_HD_CALL void grass_detect_cpu_culprits(grass_detect_state* st, uint64_t count, uint64_t span_ns, grass_detection* d) {
  uint64_t* score = st->base_cpu_ns + st->base_count;  // the baseline array's free tail
  for (uint64_t i = 0; i < count; i++) {
    const grass_task_record* t = &st->tasks[i];
    uint64_t now = t->utime_ns + t->stime_ns, then = 0;
    for (uint64_t j = 0; j < st->base_count; j++) {
      if (st->base_pid[j] == t->tgid) { then = st->base_cpu_ns[j]; break; }
    }
    score[i] = now > then ? now - then : 0;
  }
  grass_detect_top(st, count, score, d);
  for (uint32_t k = 0; k < d->culprit_count; k++) {
    uint64_t used = 0;
    for (uint64_t i = 0; i < count; i++) {
      if (st->tasks[i].tgid == d->culprits[k].pid) { used = score[i]; break; }
    }
    d->culprits[k].cpu_permille = span_ns ? (uint32_t)(used * 1000 / span_ns) : 0;
  }
}

GRASS_HD_CALL void grass_detect_cpu_high_load(const grass_ps_ctx* ps, grass_detect_state* st, const grass_metrics_sample* start,
                                              const grass_metrics_cpu* a, const grass_metrics_sample* end, const grass_metrics_cpu* b) {
  grass_detection* d = &st->results[0];
  uint64_t least = 1000, least_cpu = 0;
  for (uint32_t cpu = 0; cpu < end->cpu_count; cpu++) {
    const uint64_t* x = &a[cpu].user_ns;
    const uint64_t* y = &b[cpu].user_ns;
    uint64_t total = 0;
    for (uint32_t k = 0; k < GRASS_METRICS_CPUSTATS; k++) total += y[k] > x[k] ? y[k] - x[k] : 0;
    uint64_t idle = (b[cpu].idle_ns > a[cpu].idle_ns ? b[cpu].idle_ns - a[cpu].idle_ns : 0) +
                    (b[cpu].iowait_ns > a[cpu].iowait_ns ? b[cpu].iowait_ns - a[cpu].iowait_ns : 0);
    uint64_t busy = total ? (total - idle) * 1000 / total : 0;  // a CPU that accounted nothing is asleep
    if (busy < least) { least = busy; least_cpu = cpu; }
  }
  if (least < GRASS_DETECT_BUSY_PERMILLE) {
    d->since_ns = 0;
    d->active = 0;
    return;
  }
  uint64_t count = 0;
  grass_fault f = {GRASS_OK, 0};
  grass_ps_ctx c = *ps;
  c.fault = &f;
  if (d->since_ns == 0) {
    // The condition begins with this window: remember each group's CPU time for the culprits.
    d->since_ns = start->monitor_clock_ns;
    st->base_count = 0;
    if (!grass_detect_walk(&c, st, &count)) { grass_detect_fault(d, &f); return; }
    for (uint64_t i = 0; i < count; i++) {
      st->base_pid[i] = st->tasks[i].tgid;
      st->base_cpu_ns[i] = st->tasks[i].utime_ns + st->tasks[i].stime_ns;
    }
    st->base_count = count;
  }
  uint64_t span = end->monitor_clock_ns - d->since_ns;
  if (span < GRASS_DETECT_BUSY_SPAN_NS) return;
  if (!grass_detect_walk(&c, st, &count)) { grass_detect_fault(d, &f); return; }
  if (!d->active) d->detected_ns = end->monitor_clock_ns;
  d->active = 1;
  d->values[0] = least;
  d->values[1] = least_cpu;
  d->values[2] = span;
  d->values[3] = 0;
  grass_detect_cpu_culprits(st, count, span, d);
}

GRASS_HD_CALL void grass_detect_memory_leak(const grass_ps_ctx* ps, grass_detect_state* st, const grass_metrics_sample* end) {
  grass_detection* d = &st->results[1];
  bool ram_low = end->free_pages * 100 < end->total_ram_pages * GRASS_DETECT_FREE_PERCENT;
  bool swap_low = end->free_swap_pages * 100 < end->total_swap_pages * GRASS_DETECT_FREE_PERCENT || end->total_swap_pages == 0;
  if (!ram_low || !swap_low) {
    d->since_ns = 0;
    d->active = 0;
    return;
  }
  if (d->since_ns == 0) d->since_ns = end->monitor_clock_ns;
  uint64_t count = 0;
  grass_fault f = {GRASS_OK, 0};
  grass_ps_ctx c = *ps;
  c.fault = &f;
  if (!grass_detect_walk(&c, st, &count)) { grass_detect_fault(d, &f); return; }
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

// Runs the detectors once per new metrics sample; true when it did.
GRASS_HD_CALL bool grass_detect_tick(const grass_ps_ctx* ps, grass_detect_state* st, const grass_metrics_state* m) {
  const grass_metrics_sample* end = &m->samples[m->latest];
  const grass_metrics_sample* start = &m->samples[m->latest ^ 1u];
  if (end->monitor_clock_ns == 0 || end->monitor_clock_ns == st->evaluated_sample_ns) return false;
  st->evaluated_sample_ns = end->monitor_clock_ns;
  for (uint32_t k = 0; k < GRASS_DETECTORS; k++) {
    st->results[k].kind = k + 1;
    st->results[k].evaluated_ns = end->monitor_clock_ns;
    st->results[k].status = GRASS_OK;
    st->results[k].detail = 0;
  }
  if (end->status != GRASS_OK || start->monitor_clock_ns == 0 || start->status != GRASS_OK) {
    for (uint32_t k = 0; k < GRASS_DETECTORS; k++) { st->results[k].status = end->status; st->results[k].detail = end->detail; }
    return true;
  }
  grass_detect_cpu_high_load(ps, st, start, m->cpus[m->latest ^ 1u], end, m->cpus[m->latest]);
  grass_detect_memory_leak(ps, st, end);
  return true;
}

// Background mode: the results into the header's background area, seqlocked by
// background_version (odd while written), so a remote reads them with no request.
GRASS_HD_CALL void grass_detect_publish(uint8_t* buffer, const grass_crc32_tables* crc, const grass_detect_state* st) {
  grass_buffer_header* h = (grass_buffer_header*)buffer;
  uint64_t v = grass_load_mark(&h->background_version);
  grass_store_mark(&h->background_version, v + 1);
  grass_fence();
  grass_copy(buffer + GRASS_BACKGROUND_OFFSET, st->results, sizeof st->results);
  h->background_offset = GRASS_BACKGROUND_OFFSET;
  h->background_capacity = GRASS_HEADER_BYTES - GRASS_BACKGROUND_OFFSET;
  h->background_bytes = sizeof st->results;
  h->background_crc32 = grass_crc32(crc, st->results, sizeof st->results);
  grass_fence();
  grass_store_mark(&h->background_version, v + 2);
  grass_fence();
}

#endif
