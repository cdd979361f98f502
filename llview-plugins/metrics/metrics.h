// Layer 3, plugin: SHFH metrics (GRASS_OP_METRICS). The monitor samples the kernel's own
// cumulative counters once per second of its own clock (never the target's, which may have
// stopped) and keeps the last two samples; the remote derives shares and rates from their
// difference. What is read (per-CPU kernel_cpustat and runqueues, per-CPU vm_event_states,
// vm_zone_stat, the swap and RAM totals) is resolved from BTF and symbols by metrics_layout.cpp.
#ifndef GRASS_PLUGIN_METRICS_H
#define GRASS_PLUGIN_METRICS_H

#include "grass/protocol.h"
#include "../../gpu/src/translation/translate.h"

#define GRASS_METRICS_MAX_CPUS 256u
#define GRASS_METRICS_PERIOD_NS 1000000000ull
#define GRASS_METRICS_CPUSTATS 8u  // user nice system irq softirq idle iowait steal, as grass_metrics_cpu

// What the plugin reads, resolved for one target kernel. resolved == 0: the plugin is off (the
// host printed why) and GRASS_OP_METRICS answers GRASS_E_UNSUPPORTED.
struct grass_metrics_layout {
  uint32_t resolved;
  uint32_t cpu_count;
  uint64_t per_cpu_offset;     // __per_cpu_offset[]
  uint64_t kernel_cpustat;     // per-CPU struct kernel_cpustat
  uint64_t runqueues;          // per-CPU struct rq
  uint64_t vm_event_states;    // per-CPU struct vm_event_state
  uint64_t vm_zone_stat;       // atomic_long_t[NR_VM_ZONE_STAT_ITEMS]
  uint64_t totalram_pages, nr_swap_pages, total_swap_pages;  // atomic_long_t / long
  uint64_t page_size;
  // kernel_cpustat.cpustat[] offsets of the grass_metrics_cpu order (enum cpu_usage_stat indexes)
  uint32_t cpustat[GRASS_METRICS_CPUSTATS];
  uint32_t rq_nr_switches, rq_nr_running, rq_nr_iowait;
  uint32_t rq_nr_running_bytes, rq_nr_iowait_bytes;
  uint32_t event_pswpin, event_pswpout;   // offsets in vm_event_state
  uint32_t zone_nr_free_pages;            // offset in vm_zone_stat
};

struct grass_metrics_state {
  grass_metrics_sample samples[2];
  grass_metrics_cpu cpus[2][GRASS_METRICS_MAX_CPUS];
  uint32_t latest;  // index of the newest sample
};

struct grass_metrics_ctx {
  const grass_phys_map* mem;
  const grass_paging* paging;
  const grass_metrics_layout* layout;
  grass_fault* fault;
};

GRASS_HD bool grass_metrics_read(const grass_metrics_ctx* c, uint64_t va, uint32_t bytes, uint64_t* v) {
  *v = 0;
  return grass_read(c->mem, c->paging, GRASS_SPACE_KERNEL, 0, va, v, bytes, c->fault);
}

// A signed kernel counter (atomic_long_t, long) as a count: transiently negative sums read as 0,
// as the kernel's own readers clamp them.
GRASS_HD bool grass_metrics_read_count(const grass_metrics_ctx* c, uint64_t va, uint64_t* v) {
  if (!grass_metrics_read(c, va, 8, v)) return false;
  if ((int64_t)*v < 0) *v = 0;
  return true;
}

// Reads one sample of every counter. False (with the fault) if any read fails.
GRASS_HD_CALL bool grass_metrics_take(const grass_metrics_ctx* c, grass_metrics_sample* s, grass_metrics_cpu* cpus) {
  const grass_metrics_layout* l = c->layout;
  s->cpu_count = l->cpu_count;
  s->page_size = l->page_size;
  s->pswpin = s->pswpout = 0;
  for (uint32_t cpu = 0; cpu < l->cpu_count; cpu++) {
    uint64_t off, v;
    if (!grass_metrics_read(c, l->per_cpu_offset + 8ull * cpu, 8, &off)) return false;
    uint64_t* times = &cpus[cpu].user_ns;
    for (uint32_t k = 0; k < GRASS_METRICS_CPUSTATS; k++) {
      if (!grass_metrics_read(c, l->kernel_cpustat + off + l->cpustat[k], 8, &times[k])) return false;
    }
    uint64_t rq = l->runqueues + off;
    if (!grass_metrics_read(c, rq + l->rq_nr_switches, 8, &cpus[cpu].nr_switches)) return false;
    if (!grass_metrics_read(c, rq + l->rq_nr_running, l->rq_nr_running_bytes, &v)) return false;
    cpus[cpu].nr_running = (uint32_t)v;
    if (!grass_metrics_read(c, rq + l->rq_nr_iowait, l->rq_nr_iowait_bytes, &v)) return false;
    cpus[cpu].nr_iowait = (int32_t)v < 0 ? 0 : (uint32_t)v;
    if (!grass_metrics_read(c, l->vm_event_states + off + l->event_pswpin, 8, &v)) return false;
    s->pswpin += v;
    if (!grass_metrics_read(c, l->vm_event_states + off + l->event_pswpout, 8, &v)) return false;
    s->pswpout += v;
  }
  if (!grass_metrics_read_count(c, l->vm_zone_stat + l->zone_nr_free_pages, &s->free_pages)) return false;
  if (!grass_metrics_read_count(c, l->totalram_pages, &s->total_ram_pages)) return false;
  if (!grass_metrics_read_count(c, l->nr_swap_pages, &s->free_swap_pages)) return false;
  if (!grass_metrics_read_count(c, l->total_swap_pages, &s->total_swap_pages)) return false;
  return true;
}

// Called on every monitor pass: takes a sample when a period of the monitor's clock has passed
// since the last one, into the older of the two.
GRASS_HD_CALL void grass_metrics_tick(const grass_metrics_ctx* c, grass_metrics_state* st, uint64_t now_ns) {
  if (!c->layout->resolved || now_ns == 0) return;
  const grass_metrics_sample* last = &st->samples[st->latest];
  if (last->monitor_clock_ns != 0 && now_ns - last->monitor_clock_ns < GRASS_METRICS_PERIOD_NS) return;
  uint32_t next = st->latest ^ 1u;
  grass_metrics_sample* s = &st->samples[next];
  c->fault->status = GRASS_OK;
  c->fault->address = 0;
  bool ok = grass_metrics_take(c, s, st->cpus[next]);
  s->status = ok ? (uint32_t)GRASS_OK : c->fault->status;
  s->detail = ok ? 0 : c->fault->address;
  s->monitor_clock_ns = now_ns;
  st->latest = next;
}

// The reply of GRASS_OP_METRICS into out (capacity bytes): older sample and its CPUs, then the
// newer. Returns the bytes written, 0 if they do not fit.
GRASS_HD uint64_t grass_metrics_reply(const grass_metrics_state* st, uint32_t cpu_count, uint8_t* out, uint64_t capacity) {
  uint64_t one = sizeof(grass_metrics_sample) + (uint64_t)cpu_count * sizeof(grass_metrics_cpu);
  if (2 * one > capacity) return 0;
  for (uint32_t k = 0; k < 2; k++) {
    uint32_t index = k == 0 ? st->latest ^ 1u : st->latest;
    grass_copy(out + k * one, &st->samples[index], sizeof(grass_metrics_sample));
    grass_copy(out + k * one + sizeof(grass_metrics_sample), st->cpus[index], (uint64_t)cpu_count * sizeof(grass_metrics_cpu));
  }
  return 2 * one;
}

#endif
