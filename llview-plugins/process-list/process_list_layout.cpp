#include "process_list_layout.h"

#include <bpf/btf.h>

#include <stdexcept>

#include "server/buffer_setup.h"

namespace grass {

grass_ps_layout resolve_process_list_layout(const BtfTypes& btf, const Target& target) {
  grass_ps_layout l{};
  l.init_task = target.symbol("init_task");
  l.per_cpu_offset = target.symbol("__per_cpu_offset");
  l.runqueues = target.symbol_or_zero("runqueues");
  l.cpu_count = target.cpu_count;
  l.page_size = (uint32_t)target.page_size;
  l.max_tasks = 1u << 22;   // PID_MAX_LIMIT: no more tasks can exist
  l.max_threads = 1u << 22;

  const char* ts = "task_struct";
  l.task_tasks = btf.field(ts, {"tasks"}).offset;
  l.task_pid = btf.field(ts, {"pid"}).offset;
  l.task_tgid = btf.field(ts, {"tgid"}).offset;
  l.task_comm = btf.field(ts, {"comm"}).offset;
  Field state = btf.field(ts, {"__state", "state"});
  l.task_state = state.offset;
  l.task_state_bytes = state.size;
  if (state.size != 4 && state.size != 8) throw std::runtime_error("BTF: task_struct." + state.name + " has an unexpected size");
  l.task_exit_state = btf.field(ts, {"exit_state"}).offset;
  l.task_real_parent = btf.field(ts, {"real_parent"}).offset;
  l.task_signal = btf.field(ts, {"signal"}).offset;
  l.task_cpu = btf.field(ts, {"cpu", "thread_info.cpu"}).offset;
  l.task_utime = btf.field(ts, {"utime"}).offset;
  l.task_stime = btf.field(ts, {"stime"}).offset;
  l.task_mm = btf.field(ts, {"mm"}).offset;
  if (btf.has_field(ts, "thread_node") && btf.has_field("signal_struct", "thread_head")) {
    l.threads_via = GRASS_THREADS_VIA_SIGNAL_HEAD;
    l.task_threads_link = btf.field(ts, {"thread_node"}).offset;
    l.signal_thread_head = btf.field("signal_struct", {"thread_head"}).offset;
  } else {
    l.threads_via = GRASS_THREADS_VIA_THREAD_GROUP;
    l.task_threads_link = btf.field(ts, {"thread_group"}).offset;
  }
  l.signal_nr_threads = btf.field("signal_struct", {"nr_threads"}).offset;
  l.signal_utime = btf.field("signal_struct", {"utime"}).offset;
  l.signal_stime = btf.field("signal_struct", {"stime"}).offset;

  // RSS: 6.1 has mm->rss_stat.count[] (atomic_long_t); 6.2+ has mm->rss_stat[] (percpu_counter,
  // whose shared count is what /proc reports). RSS = file + anon + shmem pages.
  l.mm_pgd = btf.field("mm_struct", {"pgd"}).offset;
  if (btf.has_field("mm_struct", "rss_stat.count")) {
    Field count = btf.field("mm_struct", {"rss_stat.count"});
    l.mm_rss = count.offset;
    l.rss_stride = 8;
  } else {
    Field rss = btf.field("mm_struct", {"rss_stat"});
    const struct btf_type* t = btf__type_by_id(btf.raw(), rss.type_id);
    if (!t || !btf_is_array(t)) throw std::runtime_error("BTF: mm_struct.rss_stat is neither mm_rss_stat nor an array");
    l.rss_stride = (uint32_t)btf__resolve_size(btf.raw(), btf_array(t)->type);
    l.mm_rss = rss.offset + btf.field("percpu_counter", {"count"}).offset;
  }
  for (const char* counter : {"MM_FILEPAGES", "MM_ANONPAGES", "MM_SHMEMPAGES"}) {
    int64_t index = btf.enumerator(counter);
    if (index < 0 || index >= (int64_t)GRASS_MAX_RSS_COUNTERS) throw std::runtime_error(std::string("BTF: ") + counter + " out of range");
    l.rss_sum_mask |= 1u << index;
  }
  if (l.runqueues) l.rq_idle = btf.field("rq", {"idle"}).offset;
  return l;
}

// The plugin's resolve entry point (plugins.h): required, a target without it throws.
void resolve_process_list_plugin(PluginSetup& s) { s.setup.monitor->ps = resolve_process_list_layout(s.btf, s.target); }

}  // namespace grass
