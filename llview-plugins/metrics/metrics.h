// Layer 3, plugin: SHFH metrics (GRASS_OP_METRICS). The monitor samples the kernel's own
// cumulative counters once per second of its own clock (never the target's, which may have
// stopped) and keeps the last two samples; the remote derives shares and rates from their
// difference. What is read (per-CPU kernel_cpustat and runqueues, per-CPU vm_event_states,
// vm_zone_stat, the swap and RAM totals) is resolved from BTF and symbols by metrics_layout.cpp.
#ifndef GRASS_PLUGIN_METRICS_H
#define GRASS_PLUGIN_METRICS_H

#include "grass/protocol.h"
#include "translation/translate.h"

#define GRASS_METRICS_MAX_CPUS 256u
#define GRASS_METRICS_PERIOD_NS 1000000000ull
#define GRASS_METRICS_CPUSTATS 8u  // user nice system irq softirq idle iowait steal, as grass_metrics_cpu

// What the plugin reads, resolved for one target kernel. parts == 0: the plugin is off (the host
// printed why) and GRASS_OP_METRICS answers GRASS_E_UNSUPPORTED. Each GRASS_METRICS_PART_* other
// than CORE resolves on its own: one that does not is reported and left out, the others run.
struct grass_metrics_layout {
  uint32_t parts;
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
  // PROGRESS
  uint64_t jiffies;                       // jiffies (or jiffies_64)
  uint64_t kstat;                         // per-CPU struct kernel_stat
  uint32_t kstat_irqs_sum;
  uint32_t rq_curr;
  uint32_t task_pid, task_tgid, task_comm, task_utime, task_stime;
  // PREEMPT: per-CPU int (__preempt_count, or pcpu_hot.preempt_count)
  uint64_t preempt_count;
  // TIMER: per-CPU irq_stat.apic_timer_irqs (4 bytes)
  uint64_t timer_irqs;
  // LOCKQ: per-CPU qnodes[0].mcs.count (4 bytes)
  uint64_t lock_waiters;
  // DISKS: the bdev pseudo-filesystem's inodes, each inside a struct bdev_inode
  uint64_t blockdev_superblock;           // struct super_block *
  uint32_t sb_inodes, inode_sb_list;      // super_block.s_inodes, inode.i_sb_list
  uint32_t bdev_inode_vfs_inode;          // bdev_inode.vfs_inode (the bdev is at offset 0)
  uint32_t bdev_stats, bdev_disk;         // block_device.bd_stats (per-CPU), .bd_disk
  uint32_t disk_part0, disk_name;         // gendisk.part0, .disk_name
  uint32_t stats_io_ticks, stats_ios;     // disk_stats.io_ticks, .ios[4]
  uint32_t stats_ios_count;
};

#define GRASS_METRICS_MAX_INODES 4096u  // bound of the bdev inode walk

struct grass_metrics_state {
  grass_metrics_sample samples[2];
  grass_metrics_cpu cpus[2][GRASS_METRICS_MAX_CPUS];
  grass_metrics_disk disks[2][GRASS_METRICS_MAX_DISKS];
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

// The whole disks (a bdev whose gendisk's part0 is itself) among the bdev filesystem's inodes,
// at most GRASS_METRICS_MAX_DISKS, the walk bounded by GRASS_METRICS_MAX_INODES.
GRASS_HD_CALL bool grass_metrics_disks(const grass_metrics_ctx* c, grass_metrics_disk* disks, uint32_t* count) {
  const grass_metrics_layout* l = c->layout;
  *count = 0;
  uint64_t sb, head, node;
  if (!grass_metrics_read(c, l->blockdev_superblock, 8, &sb)) return false;
  if (sb == 0) return true;  // no block layer set up
  head = sb + l->sb_inodes;
  if (!grass_metrics_read(c, head, 8, &node)) return false;
  for (uint32_t n = 0; node != head; n++) {
    if (n == GRASS_METRICS_MAX_INODES) return grass_fail(c->fault, GRASS_E_TARGET, head);
    uint64_t bdev = node - l->inode_sb_list - l->bdev_inode_vfs_inode, disk = 0, part0 = 0, stats = 0;
    if (!grass_metrics_read(c, bdev + l->bdev_disk, 8, &disk)) return false;
    if (disk && !grass_metrics_read(c, disk + l->disk_part0, 8, &part0)) return false;
    if (disk && part0 == bdev && *count < GRASS_METRICS_MAX_DISKS) {
      grass_metrics_disk* d = &disks[(*count)++];
      if (!grass_read(c->mem, c->paging, GRASS_SPACE_KERNEL, 0, disk + l->disk_name, d->name, sizeof d->name, c->fault)) return false;
      d->name[sizeof d->name - 1] = 0;
      d->io_ticks = d->ios = 0;
      if (!grass_metrics_read(c, bdev + l->bdev_stats, 8, &stats)) return false;
      for (uint32_t cpu = 0; stats && cpu < l->cpu_count; cpu++) {
        uint64_t off, v;
        if (!grass_metrics_read(c, l->per_cpu_offset + 8ull * cpu, 8, &off)) return false;
        if (!grass_metrics_read(c, stats + off + l->stats_io_ticks, 8, &v)) return false;
        d->io_ticks += v;
        for (uint32_t k = 0; k < l->stats_ios_count; k++) {
          if (!grass_metrics_read(c, stats + off + l->stats_ios + 8 * k, 8, &v)) return false;
          d->ios += v;
        }
      }
    }
    if (!grass_metrics_read(c, node, 8, &node)) return false;
  }
  return true;
}

// The CPU's current task and the evidence that it (and the CPU) still progress. prev: the same
// CPU in the previous sample (for how long this task has been current without a switch).
GRASS_HD_CALL bool grass_metrics_progress(const grass_metrics_ctx* c, uint64_t off, grass_metrics_cpu* cpu, const grass_metrics_cpu* prev) {
  const grass_metrics_layout* l = c->layout;
  uint64_t v;
  if (!grass_metrics_read(c, l->kstat + off + l->kstat_irqs_sum, 8, &cpu->irqs)) return false;
  if (!grass_metrics_read(c, l->runqueues + off + l->rq_curr, 8, &cpu->curr_task)) return false;
  uint64_t t = cpu->curr_task;
  if (!grass_metrics_read(c, t + l->task_pid, 4, &v)) return false;
  cpu->curr_pid = (int32_t)v;
  if (!grass_metrics_read(c, t + l->task_tgid, 4, &v)) return false;
  cpu->curr_tgid = (int32_t)v;
  if (!grass_read(c->mem, c->paging, GRASS_SPACE_KERNEL, 0, t + l->task_comm, cpu->curr_comm, 16, c->fault)) return false;
  cpu->curr_comm[15] = 0;
  if (!grass_metrics_read(c, t + l->task_utime, 8, &cpu->curr_utime_ns)) return false;
  if (!grass_metrics_read(c, t + l->task_stime, 8, &cpu->curr_stime_ns)) return false;
  bool same = prev->curr_task == t && prev->nr_switches == cpu->nr_switches && prev->curr_task != 0;
  cpu->curr_samples = same ? prev->curr_samples + 1 : 0;
  if (l->parts & GRASS_METRICS_PART_PREEMPT) {
    if (!grass_metrics_read(c, l->preempt_count + off, 4, &v)) return false;
    cpu->preempt_count = (int32_t)v;
  }
  if (l->parts & GRASS_METRICS_PART_TIMER) {
    if (!grass_metrics_read(c, l->timer_irqs + off, 4, &cpu->timer_irqs)) return false;
  }
  if (l->parts & GRASS_METRICS_PART_LOCKQ) {
    if (!grass_metrics_read(c, l->lock_waiters + off, 4, &v)) return false;
    cpu->lock_waiters = (uint32_t)v;
  }
  return true;
}

// Reads one sample of every counter. False (with the fault) if any read fails. prev: the previous
// sample's CPUs.
GRASS_HD_CALL bool grass_metrics_take(const grass_metrics_ctx* c, grass_metrics_sample* s, grass_metrics_cpu* cpus,
                                      const grass_metrics_cpu* prev, grass_metrics_disk* disks) {
  const grass_metrics_layout* l = c->layout;
  s->cpu_count = l->cpu_count;
  s->page_size = l->page_size;
  s->parts = l->parts;
  s->pswpin = s->pswpout = 0;
  s->jiffies = 0;
  s->disk_count = 0;
  for (uint32_t cpu = 0; cpu < l->cpu_count; cpu++) {
    uint64_t off, v;
    grass_metrics_cpu* r = &cpus[cpu];
    grass_zero(r, sizeof *r);
    if (!grass_metrics_read(c, l->per_cpu_offset + 8ull * cpu, 8, &off)) return false;
    uint64_t* times = &r->user_ns;
    for (uint32_t k = 0; k < GRASS_METRICS_CPUSTATS; k++) {
      if (!grass_metrics_read(c, l->kernel_cpustat + off + l->cpustat[k], 8, &times[k])) return false;
    }
    uint64_t rq = l->runqueues + off;
    if (!grass_metrics_read(c, rq + l->rq_nr_switches, 8, &r->nr_switches)) return false;
    if (!grass_metrics_read(c, rq + l->rq_nr_running, l->rq_nr_running_bytes, &v)) return false;
    r->nr_running = (uint32_t)v;
    if (!grass_metrics_read(c, rq + l->rq_nr_iowait, l->rq_nr_iowait_bytes, &v)) return false;
    r->nr_iowait = (int32_t)v < 0 ? 0 : (uint32_t)v;
    if (!grass_metrics_read(c, l->vm_event_states + off + l->event_pswpin, 8, &v)) return false;
    s->pswpin += v;
    if (!grass_metrics_read(c, l->vm_event_states + off + l->event_pswpout, 8, &v)) return false;
    s->pswpout += v;
    if ((l->parts & GRASS_METRICS_PART_PROGRESS) && !grass_metrics_progress(c, off, r, &prev[cpu])) return false;
  }
  if (!grass_metrics_read_count(c, l->vm_zone_stat + l->zone_nr_free_pages, &s->free_pages)) return false;
  if (!grass_metrics_read_count(c, l->totalram_pages, &s->total_ram_pages)) return false;
  if (!grass_metrics_read_count(c, l->nr_swap_pages, &s->free_swap_pages)) return false;
  if (!grass_metrics_read_count(c, l->total_swap_pages, &s->total_swap_pages)) return false;
  if ((l->parts & GRASS_METRICS_PART_PROGRESS) && !grass_metrics_read(c, l->jiffies, 8, &s->jiffies)) return false;
  if ((l->parts & GRASS_METRICS_PART_DISKS) && !grass_metrics_disks(c, disks, &s->disk_count)) return false;
  return true;
}

// Called on every monitor pass: takes a sample when a period of the monitor's clock has passed
// since the last one, into the older of the two.
GRASS_HD_CALL void grass_metrics_tick(const grass_metrics_ctx* c, grass_metrics_state* st, uint64_t now_ns) {
  if (!c->layout->parts || now_ns == 0) return;
  const grass_metrics_sample* last = &st->samples[st->latest];
  if (last->monitor_clock_ns != 0 && now_ns - last->monitor_clock_ns < GRASS_METRICS_PERIOD_NS) return;
  uint32_t next = st->latest ^ 1u;
  grass_metrics_sample* s = &st->samples[next];
  c->fault->status = GRASS_OK;
  c->fault->address = 0;
  bool ok = grass_metrics_take(c, s, st->cpus[next], st->cpus[st->latest], st->disks[next]);
  s->status = ok ? (uint32_t)GRASS_OK : c->fault->status;
  s->detail = ok ? 0 : c->fault->address;
  s->monitor_clock_ns = now_ns;
  st->latest = next;
}

// The reply of GRASS_OP_METRICS into out (capacity bytes): older sample, its CPUs and disks, then
// the newer. Returns the bytes written, 0 if they do not fit.
GRASS_HD uint64_t grass_metrics_reply(const grass_metrics_state* st, uint32_t cpu_count, uint8_t* out, uint64_t capacity) {
  uint64_t at = 0;
  for (uint32_t k = 0; k < 2; k++) {
    uint32_t index = k == 0 ? st->latest ^ 1u : st->latest;
    const grass_metrics_sample* s = &st->samples[index];
    uint32_t disks = s->disk_count <= GRASS_METRICS_MAX_DISKS ? s->disk_count : 0;
    // A sample not taken yet says 0 CPUs: its reply carries none (the remote sizes it by the header).
    uint32_t sample_cpus = s->cpu_count <= cpu_count ? s->cpu_count : 0;
    uint64_t cpus = (uint64_t)sample_cpus * sizeof(grass_metrics_cpu), disk_bytes = (uint64_t)disks * sizeof(grass_metrics_disk);
    if (at + sizeof(grass_metrics_sample) + cpus + disk_bytes > capacity) return 0;
    grass_copy(out + at, s, sizeof(grass_metrics_sample));
    ((grass_metrics_sample*)(out + at))->disk_count = disks;
    at += sizeof(grass_metrics_sample);
    grass_copy(out + at, st->cpus[index], cpus);
    at += cpus;
    grass_copy(out + at, st->disks[index], disk_bytes);
    at += disk_bytes;
  }
  return at;
}

#endif
