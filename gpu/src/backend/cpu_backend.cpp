#include "cpu_backend.h"

#include <time.h>

namespace grass {

namespace {

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// A GPU core polls without pause; on a shared CPU the loop spins only while requests keep
// coming and otherwise naps between passes, so an idle agent does not take a whole core.
constexpr uint64_t kSpinAfterRequestNs = 20000000;  // 20 ms
constexpr long kIdleNapNs = 50000;                  // 50 us

}  // namespace

void CpuBackend::start() {
  stopping_ = false;  // start() after stop() resumes the loop (SIGUSR2 in the agent)
  thread_ = std::thread([this] { loop(); });
}

void CpuBackend::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void CpuBackend::loop() {
  uint64_t last_request = 0;
  while (!stopping_.load(std::memory_order_relaxed)) {
    uint64_t now = monotonic_ns();
    if (grass_monitor_pass(monitor_, now) > 0) {
      last_request = now;
    } else if (now - last_request > kSpinAfterRequestNs) {
      timespec nap = {0, kIdleNapNs};
      nanosleep(&nap, nullptr);
    }
  }
}

}  // namespace grass
