#include "metrics_layout.h"

#include <bpf/btf.h>

#include <cstdlib>
#include <stdexcept>

#include "server/buffer_setup.h"

namespace grass {

namespace {

// Test hook: GRASS_PLUGIN_HIDE="struct.field,symbol,..." makes those names absent, so a test can
// show what happens on a kernel that lacks them (the plugin part is reported, the rest run).
bool hidden(const std::string& name) {
  const char* list = getenv("GRASS_PLUGIN_HIDE");
  if (!list) return false;
  std::string all = std::string(",") + list + ",";
  return all.find("," + name + ",") != std::string::npos;
}

// A field by its alternatives (the first that exists and is not hidden wins).
Field field(const BtfTypes& btf, const char* type, std::initializer_list<const char*> alternatives) {
  std::string tried;
  for (const char* a : alternatives) {
    if (!hidden(std::string(type) + "." + a) && btf.has_field(type, a)) return btf.field(type, {a});
    tried += tried.empty() ? a : std::string(" / ") + a;
  }
  throw std::runtime_error(std::string("BTF: struct ") + type + " has no field " + tried);
}

uint64_t symbol(const Target& target, const char* name) {
  if (hidden(name)) throw std::runtime_error(std::string("no symbol ") + name);
  return target.symbol(name);
}

uint64_t symbol_or_zero(const Target& target, const char* name) { return hidden(name) ? 0 : target.symbol_or_zero(name); }

// Offset of element `enumerator` in an array of `element_bytes` elements indexed by a BTF enum.
uint32_t indexed(const BtfTypes& btf, const char* enumerator, uint32_t element_bytes, uint32_t array_bytes, const char* array) {
  int64_t index = btf.enumerator(enumerator);
  if (index < 0 || (uint64_t)(index + 1) * element_bytes > array_bytes)
    throw std::runtime_error(std::string("BTF: ") + enumerator + " = " + std::to_string(index) + " lies outside " + array);
  return (uint32_t)index * element_bytes;
}

uint32_t counter_bytes(const Field& f, const char* what) {
  if (f.size != 4 && f.size != 8) throw std::runtime_error(std::string("BTF: ") + what + " has an unexpected size " + std::to_string(f.size));
  return f.size;
}

void expect_size(const Field& f, uint32_t size, const char* what) {
  if (f.size != size) throw std::runtime_error(std::string("BTF: ") + what + " is " + std::to_string(f.size) + " bytes, not " + std::to_string(size));
}

// A member of a struct named only through a typedef (irq_cpustat_t), with libbpf directly.
uint32_t typedef_member(const BtfTypes& btf, const char* type, const char* member, uint32_t size) {
  if (hidden(std::string(type) + "." + member)) throw std::runtime_error(std::string("BTF: ") + type + " has no field " + member);
  const struct btf* b = btf.raw();
  int32_t id = btf__find_by_name_kind(b, type, BTF_KIND_TYPEDEF);
  if (id < 0) throw std::runtime_error(std::string("BTF has no typedef ") + type);
  int32_t sid = btf__resolve_type(b, id);
  const struct btf_type* t = sid < 0 ? nullptr : btf__type_by_id(b, sid);
  if (!t || !btf_is_struct(t)) throw std::runtime_error(std::string("BTF: ") + type + " is not a struct");
  const struct btf_member* m = btf_members(t);
  for (uint16_t i = 0; i < btf_vlen(t); i++, m++) {
    if (std::string(btf__name_by_offset(b, m->name_off)) != member) continue;
    if (btf__resolve_size(b, m->type) != size) throw std::runtime_error(std::string("BTF: ") + type + "." + member + " has an unexpected size");
    return btf_member_bit_offset(t, i) / 8;
  }
  throw std::runtime_error(std::string("BTF: ") + type + " has no field " + member);
}

void resolve_core(const BtfTypes& btf, const Target& target, grass_metrics_layout& l) {
  if (target.cpu_count == 0 || target.cpu_count > GRASS_METRICS_MAX_CPUS)
    throw std::runtime_error("the target has " + std::to_string(target.cpu_count) + " CPUs; the plugin handles 1.." + std::to_string(GRASS_METRICS_MAX_CPUS));
  l.cpu_count = target.cpu_count;
  l.page_size = target.page_size;
  l.per_cpu_offset = symbol(target, "__per_cpu_offset");
  l.kernel_cpustat = symbol(target, "kernel_cpustat");
  l.runqueues = symbol(target, "runqueues");
  l.vm_event_states = symbol(target, "vm_event_states");
  l.vm_zone_stat = symbol(target, "vm_zone_stat");
  l.totalram_pages = symbol_or_zero(target, "_totalram_pages");
  if (!l.totalram_pages) l.totalram_pages = symbol(target, "totalram_pages");  // before 5.0
  l.nr_swap_pages = symbol(target, "nr_swap_pages");
  l.total_swap_pages = symbol(target, "total_swap_pages");

  Field cpustat = field(btf, "kernel_cpustat", {"cpustat"});
  const char* order[GRASS_METRICS_CPUSTATS] = {"CPUTIME_USER", "CPUTIME_NICE", "CPUTIME_SYSTEM", "CPUTIME_IRQ",
                                               "CPUTIME_SOFTIRQ", "CPUTIME_IDLE", "CPUTIME_IOWAIT", "CPUTIME_STEAL"};
  for (uint32_t k = 0; k < GRASS_METRICS_CPUSTATS; k++) l.cpustat[k] = cpustat.offset + indexed(btf, order[k], 8, cpustat.size, "kernel_cpustat.cpustat");

  Field switches = field(btf, "rq", {"nr_switches"});
  expect_size(switches, 8, "rq.nr_switches");
  l.rq_nr_switches = switches.offset;
  Field running = field(btf, "rq", {"nr_running"});
  l.rq_nr_running = running.offset;
  l.rq_nr_running_bytes = counter_bytes(running, "rq.nr_running");
  Field iowait = field(btf, "rq", {"nr_iowait"});
  l.rq_nr_iowait = iowait.offset;
  l.rq_nr_iowait_bytes = counter_bytes(iowait, "rq.nr_iowait");

  Field events = field(btf, "vm_event_state", {"event"});
  l.event_pswpin = events.offset + indexed(btf, "PSWPIN", 8, events.size, "vm_event_state.event");
  l.event_pswpout = events.offset + indexed(btf, "PSWPOUT", 8, events.size, "vm_event_state.event");
  // vm_zone_stat is atomic_long_t[NR_VM_ZONE_STAT_ITEMS]; its bound is that enumerator.
  int64_t zone_items = btf.enumerator("NR_VM_ZONE_STAT_ITEMS");
  l.zone_nr_free_pages = indexed(btf, "NR_FREE_PAGES", 8, (uint32_t)(zone_items * 8), "vm_zone_stat");
}

void resolve_progress(const BtfTypes& btf, const Target& target, grass_metrics_layout& l) {
  l.jiffies = symbol_or_zero(target, "jiffies_64");  // the same word as jiffies on 64-bit
  if (!l.jiffies) l.jiffies = symbol(target, "jiffies");
  l.kstat = symbol(target, "kstat");
  Field irqs = field(btf, "kernel_stat", {"irqs_sum"});
  expect_size(irqs, 8, "kernel_stat.irqs_sum");
  l.kstat_irqs_sum = irqs.offset;
  Field curr = field(btf, "rq", {"curr"});
  expect_size(curr, 8, "rq.curr");
  l.rq_curr = curr.offset;
  Field pid = field(btf, "task_struct", {"pid"}), tgid = field(btf, "task_struct", {"tgid"});
  expect_size(pid, 4, "task_struct.pid");
  expect_size(tgid, 4, "task_struct.tgid");
  Field comm = field(btf, "task_struct", {"comm"});
  expect_size(comm, 16, "task_struct.comm");
  Field utime = field(btf, "task_struct", {"utime"}), stime = field(btf, "task_struct", {"stime"});
  expect_size(utime, 8, "task_struct.utime");
  expect_size(stime, 8, "task_struct.stime");
  l.task_pid = pid.offset;
  l.task_tgid = tgid.offset;
  l.task_comm = comm.offset;
  l.task_utime = utime.offset;
  l.task_stime = stime.offset;
}

// x86: a per-CPU int __preempt_count until 6.1, a member of per-CPU pcpu_hot from 6.2.
void resolve_preempt(const BtfTypes& btf, const Target& target, grass_metrics_layout& l) {
  l.preempt_count = symbol_or_zero(target, "__preempt_count");
  if (l.preempt_count) return;
  uint64_t hot = symbol_or_zero(target, "pcpu_hot");
  if (!hot) throw std::runtime_error("no symbol __preempt_count or pcpu_hot");
  Field count = field(btf, "pcpu_hot", {"preempt_count"});
  expect_size(count, 4, "pcpu_hot.preempt_count");
  l.preempt_count = hot + count.offset;
}

void resolve_timer(const BtfTypes& btf, const Target& target, grass_metrics_layout& l) {
  l.timer_irqs = symbol(target, "irq_stat") + typedef_member(btf, "irq_cpustat_t", "apic_timer_irqs", 4);
}

// qnodes[MAX_NODES] (kernel/locking/qspinlock.c): a CPU's nesting in the slow path is
// qnodes[0].mcs.count.
void resolve_lockq(const BtfTypes& btf, const Target& target, grass_metrics_layout& l) {
  uint64_t qnodes = symbol(target, "qnodes");
  Field count = field(btf, "qnode", {"mcs.count"});
  expect_size(count, 4, "qnode.mcs.count");
  l.lock_waiters = qnodes + count.offset;
}

void resolve_disks(const BtfTypes& btf, const Target& target, grass_metrics_layout& l) {
  l.blockdev_superblock = symbol(target, "blockdev_superblock");
  l.sb_inodes = field(btf, "super_block", {"s_inodes"}).offset;
  l.inode_sb_list = field(btf, "inode", {"i_sb_list"}).offset;
  l.bdev_inode_vfs_inode = field(btf, "bdev_inode", {"vfs_inode"}).offset;
  if (field(btf, "bdev_inode", {"bdev"}).offset != 0) throw std::runtime_error("BTF: bdev_inode.bdev is not at offset 0");
  l.bdev_stats = field(btf, "block_device", {"bd_stats"}).offset;
  l.bdev_disk = field(btf, "block_device", {"bd_disk"}).offset;
  l.disk_part0 = field(btf, "gendisk", {"part0"}).offset;
  Field name = field(btf, "gendisk", {"disk_name"});
  if (name.size != 32) throw std::runtime_error("BTF: gendisk.disk_name is not 32 bytes");
  l.disk_name = name.offset;
  Field ticks = field(btf, "disk_stats", {"io_ticks"});
  expect_size(ticks, 8, "disk_stats.io_ticks");
  l.stats_io_ticks = ticks.offset;
  Field ios = field(btf, "disk_stats", {"ios"});
  if (ios.size % 8 || ios.size == 0 || ios.size > 64) throw std::runtime_error("BTF: disk_stats.ios has an unexpected size");
  l.stats_ios = ios.offset;
  l.stats_ios_count = ios.size / 8;
}

}  // namespace

grass_metrics_layout resolve_metrics_layout(const BtfTypes& btf, const Target& target, std::string* why) {
  grass_metrics_layout l{};
  try {
    resolve_core(btf, target, l);
  } catch (const std::exception& e) {
    *why = std::string("metrics plugin off: ") + e.what();
    return grass_metrics_layout{};
  }
  l.parts = GRASS_METRICS_PART_CORE;
  struct Part {
    uint32_t bit;
    const char* name;
    void (*resolve)(const BtfTypes&, const Target&, grass_metrics_layout&);
  };
  const Part parts[] = {{GRASS_METRICS_PART_PROGRESS, "progress", resolve_progress}, {GRASS_METRICS_PART_PREEMPT, "preempt", resolve_preempt},
                        {GRASS_METRICS_PART_TIMER, "timer", resolve_timer},          {GRASS_METRICS_PART_LOCKQ, "lockq", resolve_lockq},
                        {GRASS_METRICS_PART_DISKS, "disks", resolve_disks}};
  for (const Part& p : parts) {
    try {
      // The preempt count, timer and lock-queue readings are read with the progress evidence.
      if (p.bit != GRASS_METRICS_PART_DISKS && p.bit != GRASS_METRICS_PART_PROGRESS && !(l.parts & GRASS_METRICS_PART_PROGRESS))
        throw std::runtime_error("needs the progress part");
      p.resolve(btf, target, l);
      l.parts |= p.bit;
    } catch (const std::exception& e) {
      *why += std::string(why->empty() ? "" : "; ") + "metrics part " + p.name + " off: " + e.what();
    }
  }
  return l;
}

// The plugin's resolve entry point (plugins.h): what did not resolve is a warning.
void resolve_metrics_plugin(PluginSetup& s) {
  std::string why;
  s.setup.monitor->metrics = resolve_metrics_layout(s.btf, s.target, &why);
  if (!why.empty()) s.warnings.push_back(why);
}

}  // namespace grass
