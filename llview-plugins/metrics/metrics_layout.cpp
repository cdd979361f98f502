#include "metrics_layout.h"

#include <stdexcept>

namespace grass {

namespace {

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

grass_metrics_layout resolve(const BtfTypes& btf, const Target& target) {
  grass_metrics_layout l{};
  if (target.cpu_count == 0 || target.cpu_count > GRASS_METRICS_MAX_CPUS)
    throw std::runtime_error("the target has " + std::to_string(target.cpu_count) + " CPUs; the plugin handles 1.." + std::to_string(GRASS_METRICS_MAX_CPUS));
  l.cpu_count = target.cpu_count;
  l.page_size = target.page_size;
  l.per_cpu_offset = target.symbol("__per_cpu_offset");
  l.kernel_cpustat = target.symbol("kernel_cpustat");
  l.runqueues = target.symbol("runqueues");
  l.vm_event_states = target.symbol("vm_event_states");
  l.vm_zone_stat = target.symbol("vm_zone_stat");
  l.totalram_pages = target.symbol_or_zero("_totalram_pages");
  if (!l.totalram_pages) l.totalram_pages = target.symbol("totalram_pages");  // before 5.0
  l.nr_swap_pages = target.symbol("nr_swap_pages");
  l.total_swap_pages = target.symbol("total_swap_pages");

  Field cpustat = btf.field("kernel_cpustat", {"cpustat"});
  const char* order[GRASS_METRICS_CPUSTATS] = {"CPUTIME_USER", "CPUTIME_NICE", "CPUTIME_SYSTEM", "CPUTIME_IRQ",
                                               "CPUTIME_SOFTIRQ", "CPUTIME_IDLE", "CPUTIME_IOWAIT", "CPUTIME_STEAL"};
  for (uint32_t k = 0; k < GRASS_METRICS_CPUSTATS; k++) l.cpustat[k] = cpustat.offset + indexed(btf, order[k], 8, cpustat.size, "kernel_cpustat.cpustat");

  Field switches = btf.field("rq", {"nr_switches"});
  if (switches.size != 8) throw std::runtime_error("BTF: rq.nr_switches is not 8 bytes");
  l.rq_nr_switches = switches.offset;
  Field running = btf.field("rq", {"nr_running"});
  l.rq_nr_running = running.offset;
  l.rq_nr_running_bytes = counter_bytes(running, "rq.nr_running");
  Field iowait = btf.field("rq", {"nr_iowait"});
  l.rq_nr_iowait = iowait.offset;
  l.rq_nr_iowait_bytes = counter_bytes(iowait, "rq.nr_iowait");

  Field events = btf.field("vm_event_state", {"event"});
  l.event_pswpin = events.offset + indexed(btf, "PSWPIN", 8, events.size, "vm_event_state.event");
  l.event_pswpout = events.offset + indexed(btf, "PSWPOUT", 8, events.size, "vm_event_state.event");
  // vm_zone_stat is atomic_long_t[NR_VM_ZONE_STAT_ITEMS]; its bound is that enumerator.
  int64_t zone_items = btf.enumerator("NR_VM_ZONE_STAT_ITEMS");
  l.zone_nr_free_pages = indexed(btf, "NR_FREE_PAGES", 8, (uint32_t)(zone_items * 8), "vm_zone_stat");
  l.resolved = 1;
  return l;
}

}  // namespace

grass_metrics_layout resolve_metrics_layout(const BtfTypes& btf, const Target& target, std::string* why) {
  try {
    return resolve(btf, target);
  } catch (const std::exception& e) {
    *why = e.what();
    return grass_metrics_layout{};
  }
}

}  // namespace grass
