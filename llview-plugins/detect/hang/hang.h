// Detector hang (GRASS_DETECT_HANG): the SHFH hang classifier, classes F1-F6 (GRASS_HANG_* of
// protocol.h, in values[0]) from the metrics plugin's progress evidence; the rest of values[] per
// class (docs/detections.md).
#ifndef GRASS_DETECT_HANG_H
#define GRASS_DETECT_HANG_H

#include "detect/detect.h"  // the shared part: detect.h includes this header from its middle

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
    if (!grass_detect_walk(ps, st, d, &count)) return;
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

#endif
