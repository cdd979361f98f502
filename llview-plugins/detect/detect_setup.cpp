// Host side of the detectors plugin: its walk buffers, and the detectors on when the metrics plugin is.
#include "server/buffer_setup.h"

namespace grass {

// The plugin's resolve entry point (plugins.h). The detectors read the metrics plugin's samples:
// without its core they stay off (its warning says why).
void resolve_detect_plugin(PluginSetup& s) {
  grass_monitor* m = s.setup.monitor.get();
  if (!m->metrics.parts) return;
  const uint64_t tasks = 32768;  // room for PID_MAX_DEFAULT thread groups
  grass_detect_state* d = s.allocate<grass_detect_state>(1);
  d->tasks = s.allocate<grass_task_record>(tasks);
  d->task_capacity = tasks;
  d->base_pid = s.allocate<int32_t>(tasks);
  d->base_cpu_ns = s.allocate<uint64_t>(2 * tasks);  // baseline, then scores
  grass_detect_init(d);
  m->detect = d;
}

}  // namespace grass
