// Layer 3, plugin: the detectors (GRASS_OP_DETECT), one folder each under detect/ (GPUSentinel's
// CPU-high-load and memory-leak, the SHFH hang classifier F1-F6), listed in grass/detectors.h; this
// file is what they share (state, the task walk, culprits, history, publishing). Monitor code, run on every new sample of the metrics plugin
// (so on the monitor's own clock) for the detectors in background mode, on request for the others;
// culprits come from the metrics plugin's per-CPU evidence and the process-list plugin's walk.
// The background area holds the latest results and a history of the metrics windows.
#ifndef GRASS_PLUGIN_DETECT_H
#define GRASS_PLUGIN_DETECT_H

#include "grass/protocol.h"
#include "metrics/metrics.h"
#include "process-list/process_list.h"
#include "crypto/crc32.h"

// Heavy swapping (hang F6; and what explains busy CPUs to cpu-high-load): swap-in and swap-out
// each >= MemTotal/512 pages per s.
#define GRASS_HANG_SWAP_RATE_DIVISOR 512u
#define GRASS_DETECT_ALL_BACKGROUND ((1u << GRASS_DETECTORS) - 1u)

// Host-allocated (the walk's records and the CPU-time baseline are too large for the stack).
struct grass_detect_state {
  grass_detection results[GRASS_DETECTORS];  // [kind - 1] (grass/detectors.h)
  grass_task_record* tasks;                  // the walk's output, task_capacity records
  uint64_t task_capacity;
  int32_t* base_pid;                         // CPU time of every thread group when the high load began
  uint64_t* base_cpu_ns;
  uint64_t base_count;
  uint64_t evaluated_sample_ns;              // the newest metrics sample already evaluated
  uint32_t background_mask;                  // bit kind-1: the detector runs in background mode
  uint32_t jiffies_flat;                     // consecutive windows in which jiffies did not move
  uint64_t f4_since_ns, f6_since_ns;         // monitor clock since which F4's, F6's condition holds
  uint64_t high_load_swapped;                // pswpin + pswpout when the CPU high load began
  grass_background area;                     // what grass_detect_publish copies to the buffer
};

GRASS_HD void grass_detect_init(grass_detect_state* st) {
  st->background_mask = GRASS_DETECT_ALL_BACKGROUND;
  for (uint32_t k = 0; k < GRASS_DETECTORS; k++) st->results[k].background = 1;
  st->area.layout = GRASS_BACKGROUND_LAYOUT;
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
    c->cpu = -1;
    c->reserved0 = 0;
    grass_copy(c->comm, t->comm, 16);
    d->culprit_count = k + 1;
  }
}

GRASS_HD void grass_detect_fault(grass_detection* d, const grass_fault* f) {
  d->status = f->status;
  d->detail = f->address;
}

// Walks the thread-group leaders into st->tasks for detector d. The walk's fault is its own (the
// process-list plugin's context is shared); false, with the fault in d's status, when the list
// does not walk.
GRASS_HD bool grass_detect_walk(const grass_ps_ctx* ps, grass_detect_state* st, grass_detection* d, uint64_t* count) {
  grass_fault f = {GRASS_OK, 0};
  grass_ps_ctx c = *ps;
  c.fault = &f;
  if (grass_ps_walk(&c, 0, st->tasks, st->task_capacity, count)) return true;
  grass_detect_fault(d, &f);
  return false;
}

// Share of a CPU's accounted time in a window (permille), for the history and F4's evidence.
GRASS_HD uint64_t grass_detect_delta(uint64_t a, uint64_t b) { return b > a ? b - a : 0; }

GRASS_HD uint16_t grass_detect_permille(uint64_t part, uint64_t whole) { return (uint16_t)(whole ? part * 1000 / whole : 0); }

// One point of the metric history in the background area.
GRASS_HD void grass_detect_history(grass_detect_state* st, const grass_metrics_state* m) {
  const grass_metrics_sample* s0 = &m->samples[m->latest ^ 1u];
  const grass_metrics_sample* s1 = &m->samples[m->latest];
  const grass_metrics_cpu* a = m->cpus[m->latest ^ 1u];
  const grass_metrics_cpu* b = m->cpus[m->latest];
  grass_history_point* p = &st->area.history[st->area.history_next];
  grass_zero(p, sizeof *p);
  p->monitor_clock_ns = s1->monitor_clock_ns;
  p->window_ms = (uint32_t)((s1->monitor_clock_ns - s0->monitor_clock_ns) / 1000000);
  uint64_t usr = 0, sys = 0, iowait = 0, idle = 0, total = 0, switches = 0, run = 0, blk = 0;
  for (uint32_t cpu = 0; cpu < s1->cpu_count; cpu++) {
    const uint64_t* x = &a[cpu].user_ns;
    const uint64_t* y = &b[cpu].user_ns;
    for (uint32_t k = 0; k < GRASS_METRICS_CPUSTATS; k++) total += grass_detect_delta(x[k], y[k]);
    usr += grass_detect_delta(x[0], y[0]) + grass_detect_delta(x[1], y[1]);
    sys += grass_detect_delta(x[2], y[2]) + grass_detect_delta(x[3], y[3]) + grass_detect_delta(x[4], y[4]);
    idle += grass_detect_delta(x[5], y[5]);
    iowait += grass_detect_delta(x[6], y[6]);
    switches += grass_detect_delta(a[cpu].nr_switches, b[cpu].nr_switches);
    run += b[cpu].nr_running;
    blk += b[cpu].nr_iowait;
  }
  p->usr_permille = grass_detect_permille(usr, total);
  p->sys_permille = grass_detect_permille(sys, total);
  p->iowait_permille = grass_detect_permille(iowait, total);
  p->idle_permille = grass_detect_permille(idle, total);
  p->context_switches = (uint32_t)switches;
  p->pswpin = (uint32_t)grass_detect_delta(s0->pswpin, s1->pswpin);
  p->pswpout = (uint32_t)grass_detect_delta(s0->pswpout, s1->pswpout);
  p->free_mib = (uint32_t)(s1->free_pages * s1->page_size >> 20);
  p->run = (uint16_t)(run < 65535 ? run : 65535);
  p->blk = (uint16_t)(blk < 65535 ? blk : 65535);
  uint64_t dj = grass_detect_delta(s0->jiffies, s1->jiffies);
  p->jiffies = (uint16_t)(dj < 65535 ? dj : 65535);
  if (s0->disk_count == s1->disk_count) {
    for (uint32_t k = 0; k < s1->disk_count && k < GRASS_METRICS_MAX_DISKS; k++) {
      uint64_t u = grass_detect_permille(grass_detect_delta(m->disks[m->latest ^ 1u][k].io_ticks, m->disks[m->latest][k].io_ticks), dj);
      if (u > 1000) u = 1000;
      if (u > p->util_permille) p->util_permille = (uint16_t)u;
    }
  }
  st->area.history_next = (st->area.history_next + 1) % GRASS_HISTORY_POINTS;
  if (st->area.history_count < GRASS_HISTORY_POINTS) st->area.history_count++;
}

// Every detector's folder (detect/<name>/<name>.h: grass_detect_<symbol>(ps, st, metrics) and its
// figures), listed by gpu/Makefile from the folders; each registers in grass/detectors.h.
#include "detectors.inc"

// Evaluates the detectors selected by mask on the metrics plugin's latest window.
GRASS_HD_CALL void grass_detect_evaluate(const grass_ps_ctx* ps, grass_detect_state* st, const grass_metrics_state* m, uint32_t mask) {
  const grass_metrics_sample* end = &m->samples[m->latest];
  const grass_metrics_sample* start = &m->samples[m->latest ^ 1u];
  for (uint32_t k = 0; k < GRASS_DETECTORS; k++) {
    if (!(mask >> k & 1)) continue;
    st->results[k].kind = k + 1;
    st->results[k].evaluated_ns = end->monitor_clock_ns;
    st->results[k].status = GRASS_OK;
    st->results[k].detail = 0;
  }
  if (end->status != GRASS_OK || start->monitor_clock_ns == 0 || start->status != GRASS_OK) {
    for (uint32_t k = 0; k < GRASS_DETECTORS; k++) {
      if (mask >> k & 1) { st->results[k].status = end->status != GRASS_OK ? end->status : start->status; st->results[k].detail = end->detail; }
    }
    return;
  }
  // In the list's order (grass/detectors.h): a detector may read the records of those before it.
#define GRASS_DETECT_RUN_(NAME, symbol, kind, name) \
  if (mask >> ((kind) - 1) & 1u) grass_detect_##symbol(ps, st, m);
  GRASS_DETECTOR_LIST(GRASS_DETECT_RUN_)
#undef GRASS_DETECT_RUN_
}

// Runs the background detectors once per new metrics sample and records the window in the
// history; true when it did.
GRASS_HD_CALL bool grass_detect_tick(const grass_ps_ctx* ps, grass_detect_state* st, const grass_metrics_state* m) {
  const grass_metrics_sample* end = &m->samples[m->latest];
  const grass_metrics_sample* start = &m->samples[m->latest ^ 1u];
  if (end->monitor_clock_ns == 0 || end->monitor_clock_ns == st->evaluated_sample_ns) return false;
  st->evaluated_sample_ns = end->monitor_clock_ns;
  if (start->monitor_clock_ns != 0 && start->status == GRASS_OK && end->status == GRASS_OK) grass_detect_history(st, m);
  grass_detect_evaluate(ps, st, m, st->background_mask);
  return true;
}

// Inline mode: evaluates the detectors not in background mode on the latest window (once per
// window), for a GRASS_OP_DETECT request.
GRASS_HD_CALL void grass_detect_inline(const grass_ps_ctx* ps, grass_detect_state* st, const grass_metrics_state* m) {
  uint32_t inline_mask = ~st->background_mask & GRASS_DETECT_ALL_BACKGROUND, due = 0;
  const grass_metrics_sample* end = &m->samples[m->latest];
  for (uint32_t k = 0; k < GRASS_DETECTORS; k++) {
    if ((inline_mask >> k & 1) && st->results[k].evaluated_ns != end->monitor_clock_ns) due |= 1u << k;
  }
  if (due && end->monitor_clock_ns != 0) grass_detect_evaluate(ps, st, m, due);
}

GRASS_HD void grass_detect_set_modes(grass_detect_state* st, uint32_t background_mask) {
  st->background_mask = background_mask & GRASS_DETECT_ALL_BACKGROUND;
  for (uint32_t k = 0; k < GRASS_DETECTORS; k++) st->results[k].background = st->background_mask >> k & 1;
}

// Background mode: the results and the history into the header's background area, seqlocked by
// background_version (odd while written), so a remote reads them with one read and no request.
GRASS_HD_CALL void grass_detect_publish(uint8_t* buffer, const grass_crc32_tables* crc, grass_detect_state* st) {
  for (uint32_t k = 0; k < GRASS_DETECTORS; k++) st->results[k].background = st->background_mask >> k & 1;
  grass_copy(st->area.detections, st->results, sizeof st->results);
  grass_buffer_header* h = (grass_buffer_header*)buffer;
  uint64_t v = grass_load_mark(&h->background_version);
  grass_store_mark(&h->background_version, v + 1);
  grass_fence();
  grass_copy(buffer + GRASS_BACKGROUND_OFFSET, &st->area, sizeof st->area);
  h->background_offset = GRASS_BACKGROUND_OFFSET;
  h->background_capacity = GRASS_HEADER_BYTES - GRASS_BACKGROUND_OFFSET;
  h->background_bytes = sizeof st->area;
  h->background_crc32 = grass_crc32(crc, &st->area, sizeof st->area);
  grass_fence();
  grass_store_mark(&h->background_version, v + 2);
  grass_fence();
}

#endif
