// Layer 3, plugin: GPUSentinel's CPU-high-load and memory-leak detectors and the SHFH hang
// classifier (F1-F6) (GRASS_OP_DETECT). Monitor code, run on every new sample of the metrics plugin
// (so on the monitor's own clock) for the detectors in background mode, on request for the others;
// culprits come from the metrics plugin's per-CPU evidence and the process-list plugin's walk.
// The background area holds the latest results and a history of the metrics windows.
#ifndef GRASS_PLUGIN_DETECT_H
#define GRASS_PLUGIN_DETECT_H

#include "grass/protocol.h"
#include "../metrics/metrics.h"
#include "../process-list/process_list.h"
#include "../../gpu/src/crypto/crc32.h"

#define GRASS_DETECT_BUSY_PERMILLE 900u          // CPU high load: every CPU at least 90 % busy
#define GRASS_DETECT_BUSY_SPAN_NS 5000000000ull  // ... for 5 s
#define GRASS_DETECT_OVERLOAD_FACTOR 2u          // ... with at least twice as many runnable tasks as CPUs
#define GRASS_DETECT_FREE_PERCENT 30u            // memory leak: free RAM and free swap under 30 %
// Hang classifier (docs/detections.md): a CPU is stuck when the same task has been current with no
// context switch for GRASS_HANG_STUCK_SAMPLES windows without returning to user space, and the
// CPU either takes no timer interrupt (or jiffies stopped), or has had other tasks runnable and
// starving for two windows, or has not switched for GRASS_HANG_LONG_SAMPLES windows.
#define GRASS_HANG_STUCK_SAMPLES 2u
#define GRASS_HANG_LONG_SAMPLES 5u
#define GRASS_HANG_PREEMPT_MASK 0xffu            // preempt_count's preemption-disable depth bits
#define GRASS_HANG_HOLD_NS 1500000000ull         // F4, F6: the condition held at every evaluation for this long
#define GRASS_HANG_BLK_MIN 4u                    // F4: at least max(this, CPU count) tasks in I/O wait
#define GRASS_HANG_IDLE_DISK_PERMILLE 100u       // F4: ... while no disk is busy 10 % of the window
// F6: free RAM under 10 % of MemTotal. A thrashing 1 GiB guest keeps 5-6.5 % free (kswapd stops
// at the high watermark, and ZONE_DMA's 16 MiB count as free but serve no ordinary allocation).
#define GRASS_HANG_FREE_PERMILLE 100u
#define GRASS_HANG_SWAP_RATE_DIVISOR 512u        // F6: swap-in and swap-out each >= MemTotal/512 pages per s
#define GRASS_DETECT_ALL_BACKGROUND ((1u << GRASS_DETECTORS) - 1u)

// Host-allocated (the walk's records and the CPU-time baseline are too large for the stack).
struct grass_detect_state {
  grass_detection results[GRASS_DETECTORS];  // [kind - 1]: CPU high load, memory leak, hang
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
  uint64_t least = 1000, least_cpu = 0, runnable = 0;
  for (uint32_t cpu = 0; cpu < end->cpu_count; cpu++) {
    const uint64_t* x = &a[cpu].user_ns;
    const uint64_t* y = &b[cpu].user_ns;
    uint64_t total = 0;
    for (uint32_t k = 0; k < GRASS_METRICS_CPUSTATS; k++) total += y[k] > x[k] ? y[k] - x[k] : 0;
    uint64_t idle = (b[cpu].idle_ns > a[cpu].idle_ns ? b[cpu].idle_ns - a[cpu].idle_ns : 0) +
                    (b[cpu].iowait_ns > a[cpu].iowait_ns ? b[cpu].iowait_ns - a[cpu].iowait_ns : 0);
    uint64_t busy = total ? (total - idle) * 1000 / total : 0;  // a CPU that accounted nothing is asleep
    if (busy < least) { least = busy; least_cpu = cpu; }
    runnable += b[cpu].nr_running;
  }
  // GPUSentinel's rule alone (every CPU busy) also matches a healthy machine running one job per
  // CPU; a high load is demand beyond the CPUs: tasks waiting for one at every window's end.
  bool overloaded = runnable >= GRASS_DETECT_OVERLOAD_FACTOR * (uint64_t)end->cpu_count;
  // A hang explains busy CPUs (they are stuck), and so does heavy swapping (reclaim and faults
  // keep the CPUs busy: the memory classes' symptom, not processes hogging the CPU).
  const grass_detection* hang = &st->results[GRASS_DETECT_HANG - 1];
  bool hang_on_cpus = hang->active && hang->values[0] != GRASS_HANG_F4 && hang->values[0] != GRASS_HANG_F6;
  uint64_t window = end->monitor_clock_ns - start->monitor_clock_ns;
  uint64_t swapped = (end->pswpin - start->pswpin) + (end->pswpout - start->pswpout);
  bool swapping = window && swapped * 1000000000ull / window >= end->total_ram_pages / GRASS_HANG_SWAP_RATE_DIVISOR;
  if (least < GRASS_DETECT_BUSY_PERMILLE || !overloaded || hang_on_cpus || swapping) {
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
    st->high_load_swapped = start->pswpin + start->pswpout;
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
  // Swapping over the span at a tenth of the per-window rate still means reclaim kept the CPUs busy.
  uint64_t span_swapped = end->pswpin + end->pswpout - st->high_load_swapped;
  if (span_swapped * 1000000000ull / span * 10 >= end->total_ram_pages / GRASS_HANG_SWAP_RATE_DIVISOR) return;
  if (!grass_detect_walk(&c, st, &count)) { grass_detect_fault(d, &f); return; }
  if (!d->active) d->detected_ns = end->monitor_clock_ns;
  d->active = 1;
  d->values[0] = least;
  d->values[1] = least_cpu;
  d->values[2] = span;
  d->values[3] = runnable;
  d->values[4] = end->cpu_count;
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

// Share of a CPU's accounted time in a window (permille), for the history and F4's evidence.
GRASS_HD uint64_t grass_detect_delta(uint64_t a, uint64_t b) { return b > a ? b - a : 0; }

// The on-CPU tasks of the stuck CPUs as culprits (pid is the thread's).
GRASS_HD void grass_hang_cpu_culprits(grass_detection* d, const grass_metrics_cpu* b, uint32_t cpus, uint64_t stuck) {
  d->culprit_count = 0;
  for (uint32_t cpu = 0; cpu < cpus && cpu < 64 && d->culprit_count < GRASS_DETECT_CULPRITS; cpu++) {
    if (!(stuck >> cpu & 1)) continue;
    grass_detect_culprit* c = &d->culprits[d->culprit_count++];
    c->pid = b[cpu].curr_pid;
    c->cpu_permille = 0;
    c->rss_bytes = 0;
    grass_copy(c->comm, b[cpu].curr_comm, 16);
    c->cpu = (int32_t)cpu;
    c->reserved0 = 0;
  }
}

// The SHFH hang classifier on the window start..end (docs/detections.md, "F1-F6").
GRASS_HD_CALL void grass_detect_hang(const grass_ps_ctx* ps, grass_detect_state* st, const grass_metrics_state* m) {
  grass_detection* d = &st->results[GRASS_DETECT_HANG - 1];
  const grass_metrics_sample* start = &m->samples[m->latest ^ 1u];
  const grass_metrics_sample* end = &m->samples[m->latest];
  const grass_metrics_cpu* a = m->cpus[m->latest ^ 1u];
  const grass_metrics_cpu* b = m->cpus[m->latest];
  if (!(end->parts & start->parts & GRASS_METRICS_PART_PROGRESS)) { d->status = GRASS_E_UNSUPPORTED; return; }
  uint64_t window = end->monitor_clock_ns - start->monitor_clock_ns;
  uint64_t dj = end->jiffies - start->jiffies;
  st->jiffies_flat = dj == 0 ? st->jiffies_flat + 1 : 0;
  bool timer = (end->parts & GRASS_METRICS_PART_TIMER) != 0;
  uint64_t stuck = 0, irqs_off = 0, preempt_off = 0, lock_waiters = 0, switches = 0, timer_d = 0, waiting = 0;
  for (uint32_t cpu = 0; cpu < end->cpu_count && cpu < 64; cpu++) {
    lock_waiters += b[cpu].lock_waiters;
    if (b[cpu].curr_pid == 0 || b[cpu].curr_samples < GRASS_HANG_STUCK_SAMPLES) continue;  // idle, or switched lately
    if (b[cpu].curr_utime_ns != a[cpu].curr_utime_ns) continue;  // it returns to user space
    bool no_timer = dj == 0 || (timer && b[cpu].timer_irqs == a[cpu].timer_irqs);
    bool starving = a[cpu].nr_running >= 2 && b[cpu].nr_running >= 2;
    if (!no_timer && !starving && b[cpu].curr_samples < GRASS_HANG_LONG_SAMPLES) continue;
    stuck |= 1ull << cpu;
    if (no_timer) irqs_off |= 1ull << cpu;
    // Off at both ends of the window: an interrupt on a preemptible stuck CPU (F2) takes locks
    // too, and a sample that lands in it reads a nonzero depth (seen: F2 read as F3 in 2 of 3).
    if (((uint32_t)a[cpu].preempt_count & GRASS_HANG_PREEMPT_MASK) && ((uint32_t)b[cpu].preempt_count & GRASS_HANG_PREEMPT_MASK)) preempt_off |= 1ull << cpu;
    timer_d += b[cpu].timer_irqs - a[cpu].timer_irqs;
    waiting += b[cpu].nr_running > 0 ? b[cpu].nr_running - 1 : 0;
  }
  for (uint32_t cpu = 0; cpu < end->cpu_count; cpu++) switches += grass_detect_delta(a[cpu].nr_switches, b[cpu].nr_switches);
  uint32_t cls = 0;
  if (st->jiffies_flat >= GRASS_HANG_STUCK_SAMPLES) {
    // No CPU takes the timer: every CPU that runs anything is stuck with interrupts off.
    cls = GRASS_HANG_F1;
    for (uint32_t cpu = 0; cpu < end->cpu_count && cpu < 64; cpu++) {
      if (b[cpu].curr_pid != 0) stuck |= 1ull << cpu, irqs_off |= 1ull << cpu;
    }
  } else if (stuck) {
    bool preempt = (end->parts & GRASS_METRICS_PART_PREEMPT) != 0;
    cls = irqs_off ? GRASS_HANG_F1 : !preempt || preempt_off == 0 ? GRASS_HANG_F2 : lock_waiters ? GRASS_HANG_F5 : GRASS_HANG_F3;
    if (!preempt && !irqs_off) cls = GRASS_HANG_F2;  // without the preempt count F2, F3 and F5 read alike
  }
  // F4: tasks in I/O wait while no disk completes anything.
  uint64_t blk = 0, ticks = 0, iowait = 0, total = 0;
  for (uint32_t cpu = 0; cpu < end->cpu_count; cpu++) {
    blk += b[cpu].nr_iowait;
    const uint64_t* x = &a[cpu].user_ns;
    const uint64_t* y = &b[cpu].user_ns;
    for (uint32_t k = 0; k < GRASS_METRICS_CPUSTATS; k++) total += grass_detect_delta(x[k], y[k]);
    iowait += grass_detect_delta(a[cpu].iowait_ns, b[cpu].iowait_ns);
  }
  const grass_metrics_disk* da = m->disks[m->latest ^ 1u];
  const grass_metrics_disk* db = m->disks[m->latest];
  if (start->disk_count == end->disk_count) {
    for (uint32_t k = 0; k < end->disk_count && k < GRASS_METRICS_MAX_DISKS; k++) {
      uint64_t t = grass_detect_delta(da[k].io_ticks, db[k].io_ticks);
      if (t > ticks) ticks = t;  // the busiest disk
    }
  } else {
    ticks = dj + 1;  // the disks changed: not a window without I/O
  }
  // A stray request (a file system's metadata write) does not make the waiters progress: the
  // disks count as idle while busy under GRASS_HANG_IDLE_DISK_PERMILLE of the window's jiffies.
  uint64_t blk_min = end->cpu_count > GRASS_HANG_BLK_MIN ? end->cpu_count : GRASS_HANG_BLK_MIN;
  bool f4 = blk >= blk_min && ticks * 1000 <= dj * GRASS_HANG_IDLE_DISK_PERMILLE;
  if (!f4) st->f4_since_ns = 0;
  else if (st->f4_since_ns == 0) st->f4_since_ns = start->monitor_clock_ns;
  // F6: swap traffic both ways, scaled to RAM, with RAM nearly exhausted.
  uint64_t in_rate = window ? grass_detect_delta(start->pswpin, end->pswpin) * 1000000000ull / window : 0;
  uint64_t out_rate = window ? grass_detect_delta(start->pswpout, end->pswpout) * 1000000000ull / window : 0;
  uint64_t rate_min = end->total_ram_pages / GRASS_HANG_SWAP_RATE_DIVISOR;
  bool f6 = end->total_swap_pages > 0 && in_rate >= rate_min && out_rate >= rate_min &&
            end->free_pages * 1000 < end->total_ram_pages * GRASS_HANG_FREE_PERMILLE;
  if (!f6) st->f6_since_ns = 0;
  else if (st->f6_since_ns == 0) st->f6_since_ns = start->monitor_clock_ns;
  if (!cls && st->f4_since_ns && end->monitor_clock_ns - st->f4_since_ns >= GRASS_HANG_HOLD_NS) cls = GRASS_HANG_F4;
  if (!cls && st->f6_since_ns && end->monitor_clock_ns - st->f6_since_ns >= GRASS_HANG_HOLD_NS) cls = GRASS_HANG_F6;
  if (!cls) {
    d->active = 0;
    d->since_ns = 0;
    return;
  }
  if (!d->active || d->values[0] != cls) {
    d->detected_ns = end->monitor_clock_ns;
    d->since_ns = start->monitor_clock_ns;
  }
  d->active = 1;
  for (uint32_t k = 0; k < 8; k++) d->values[k] = 0;
  d->values[0] = cls;
  d->culprit_count = 0;
  if (cls == GRASS_HANG_F4 || cls == GRASS_HANG_F6) {
    d->values[1] = cls == GRASS_HANG_F4 ? blk : in_rate;
    d->values[2] = cls == GRASS_HANG_F4 ? ticks : out_rate;
    d->values[3] = cls == GRASS_HANG_F4 ? (total ? iowait * 1000 / total : 0) : end->free_pages * end->page_size;
    d->values[4] = cls == GRASS_HANG_F4 ? end->disk_count : end->total_ram_pages * end->page_size;
    d->values[5] = end->monitor_clock_ns - (cls == GRASS_HANG_F4 ? st->f4_since_ns : st->f6_since_ns);
    // Culprits: the tasks waiting in D state (F4), the largest resident sets (F6).
    uint64_t count = 0;
    grass_fault f = {GRASS_OK, 0};
    grass_ps_ctx c = *ps;
    c.fault = &f;
    if (!grass_detect_walk(&c, st, &count)) { grass_detect_fault(d, &f); return; }
    uint64_t* score = st->base_cpu_ns + st->base_count;
    for (uint64_t i = 0; i < count; i++) score[i] = cls == GRASS_HANG_F4 ? (st->tasks[i].state == 'D') : st->tasks[i].rss_bytes;
    grass_detect_top(st, count, score, d);
    return;
  }
  d->values[1] = stuck;
  d->values[2] = irqs_off;
  d->values[3] = preempt_off;
  d->values[4] = lock_waiters;
  d->values[5] = dj;
  d->values[6] = switches;
  d->values[7] = waiting;
  (void)timer_d;
  grass_hang_cpu_culprits(d, b, end->cpu_count, stuck);
}

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
  // The hang first: CPUs stuck in a hang are busy, and a hang explains that (no cpu-high-load then).
  if (mask & 4u) grass_detect_hang(ps, st, m);
  if (mask & 1u) grass_detect_cpu_high_load(ps, st, start, m->cpus[m->latest ^ 1u], end, m->cpus[m->latest]);
  if (mask & 2u) grass_detect_memory_leak(ps, st, end);
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
