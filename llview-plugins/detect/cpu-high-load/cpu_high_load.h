// Detector cpu-high-load (GRASS_DETECT_CPU_HIGH_LOAD, GPUSentinel's rule refined): every CPU at
// least 90 % busy for 5 s of the monitor clock with twice as many runnable tasks as CPUs, not
// explained by a hang or by swapping. Figures: values[0] least busy CPU's share (permille), [1] its
// CPU, [2] span (ns), [3] runnable tasks, [4] CPUs; culprits: CPU time used over the span.
#ifndef GRASS_DETECT_CPU_HIGH_LOAD_H
#define GRASS_DETECT_CPU_HIGH_LOAD_H

#include "detect/detect.h"  // the shared part: detect.h includes this header from its middle

#define GRASS_DETECT_BUSY_PERMILLE 900u          // CPU high load: every CPU at least 90 % busy
#define GRASS_DETECT_BUSY_SPAN_NS 5000000000ull  // ... for 5 s
#define GRASS_DETECT_OVERLOAD_FACTOR 2u          // ... with at least twice as many runnable tasks as CPUs

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

GRASS_HD_CALL void grass_detect_cpu_high_load(const grass_ps_ctx* ps, grass_detect_state* st, const grass_metrics_state* m) {
  const grass_metrics_sample* start = &m->samples[m->latest ^ 1u];
  const grass_metrics_sample* end = &m->samples[m->latest];
  const grass_metrics_cpu* a = m->cpus[m->latest ^ 1u];
  const grass_metrics_cpu* b = m->cpus[m->latest];
  grass_detection* d = &st->results[GRASS_DETECT_CPU_HIGH_LOAD - 1];
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
  if (d->since_ns == 0) {
    // The condition begins with this window: remember each group's CPU time for the culprits.
    d->since_ns = start->monitor_clock_ns;
    st->high_load_swapped = start->pswpin + start->pswpout;
    st->base_count = 0;
    if (!grass_detect_walk(ps, st, d, &count)) return;
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
  if (!grass_detect_walk(ps, st, d, &count)) return;
  if (!d->active) d->detected_ns = end->monitor_clock_ns;
  d->active = 1;
  d->values[0] = least;
  d->values[1] = least_cpu;
  d->values[2] = span;
  d->values[3] = runnable;
  d->values[4] = end->cpu_count;
  grass_detect_cpu_culprits(st, count, span, d);
}

#endif
