#include "cpu_backend.h"

#include <time.h>
#include <unistd.h>

namespace grass {

namespace {

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

}  // namespace

// Half the CPUs: each worker spins for a while after a request, and the clients (the CLI, the
// extension host) share the machine. One worker per CPU on a 2-core machine made a heartbeat
// 16x slower (813 us against 51 us, the node client starved).
uint32_t default_workers() {
  long half = sysconf(_SC_NPROCESSORS_ONLN) / 2;
  return half < 1 ? 1 : half > (long)GRASS_MAX_WORKERS ? GRASS_MAX_WORKERS : (uint32_t)half;
}

CpuBackend::CpuBackend(grass_monitor* monitor, uint32_t workers, CpuPacing pacing) : monitor_(monitor), pacing_(pacing) {
  if (workers == 0) workers = default_workers();
  if (workers > GRASS_MAX_WORKERS) workers = GRASS_MAX_WORKERS;
  if (workers > monitor->slot_count) workers = monitor->slot_count;
  monitor->workers = workers;
  // Worker 0: slot 0; workers 1..: slots 1.. in contiguous ranges (any remainder to the first ones).
  for (uint32_t i = 0; i < monitor->slot_count; i++)
    monitor->slot_worker[i] = workers == 1 || i == 0 ? 0 : (uint8_t)(1 + (uint64_t)(i - 1) * (workers - 1) / (monitor->slot_count - 1));
  scratch_.resize(workers);
  for (uint32_t w = 1; w < workers; w++) {
    scratch_[w].resize(monitor->slot_data_bytes);
    monitor->worker_scratch[w] = scratch_[w].data();
  }
}

void CpuBackend::start() {
  stopping_ = false;  // start() after stop() resumes the loop (SIGUSR2 in the agent)
  for (uint32_t w = 0; w < monitor_->workers; w++) {
    uint32_t first = monitor_->slot_count, end = 0;
    for (uint32_t i = 0; i < monitor_->slot_count; i++)
      if (monitor_->slot_worker[i] == w) first = i < first ? i : first, end = i + 1;
    threads_.emplace_back([this, w, first, end] { loop(w, first, end); });
  }
}

void CpuBackend::stop() {
  stopping_ = true;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void CpuBackend::loop(uint32_t worker, uint32_t first, uint32_t end) {
  uint64_t last_request = 0;
  while (!stopping_.load(std::memory_order_relaxed)) {
    uint64_t now = monotonic_ns();
    uint32_t answered = first < end ? grass_serve_slots(monitor_, first, end, now) : 0;
    if (worker == 0) grass_monitor_housekeeping(monitor_, now);
    if (answered > 0) {
      last_request = now;
    } else if (now - last_request >= pacing_.spin_ns) {
      // A GPU core polls without pause; on a shared CPU a worker spins only while requests keep
      // coming and otherwise naps between passes, so an idle agent does not take a whole core.
      timespec nap = {(time_t)(pacing_.idle_nap_ns / 1000000000), (long)(pacing_.idle_nap_ns % 1000000000)};
      nanosleep(&nap, nullptr);
    }
  }
}

}  // namespace grass
