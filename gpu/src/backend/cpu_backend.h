// The cpu backend: worker threads play the GPU, running the monitor loop over the buffer. Worker 0
// serves slot 0 (the clients' urgent slot: heartbeats, counts) and does the housekeeping (ticks,
// liveness); workers 1.. serve the other slots, split into contiguous ranges, so a heartbeat never
// waits behind a bulk read and bulk reads on several slots run at once. One worker serves them all.
#ifndef GRASS_BACKEND_CPU_H
#define GRASS_BACKEND_CPU_H

#include <atomic>
#include <thread>
#include <vector>

#include "server/monitor.h"

namespace grass {

// How a worker waits for work: it spins spin_ns after its last request, then naps idle_nap_ns
// between passes. The defaults answer a heartbeat fast on a machine of its own; many agents
// sharing a few cores (a fleet on one host: test/integration/fleet-scale.test.ts) need the
// spin off and a longer nap, or their idle passes alone fill the cores.
struct CpuPacing {
  uint64_t spin_ns = 20000000;  // 20 ms
  uint64_t idle_nap_ns = 50000;  // 50 us
};

class CpuBackend {
 public:
  // workers: 1..GRASS_MAX_WORKERS (capped at the slot count); 0: one per CPU of this machine.
  CpuBackend(grass_monitor* monitor, uint32_t workers, CpuPacing pacing = {});
  ~CpuBackend() { stop(); }
  void start();
  void stop();
  uint32_t workers() const { return monitor_->workers; }

 private:
  void loop(uint32_t worker, uint32_t first, uint32_t end);
  grass_monitor* monitor_;
  CpuPacing pacing_;
  std::vector<std::vector<uint8_t>> scratch_;  // workers 1..'s request data copies
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
};

// The default worker count: this machine's CPUs (at least 1, at most GRASS_MAX_WORKERS).
uint32_t default_workers();

}  // namespace grass

#endif
