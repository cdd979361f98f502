// The cpu backend: a dedicated thread plays the GPU, running the monitor loop over the buffer.
#ifndef GRASS_BACKEND_CPU_H
#define GRASS_BACKEND_CPU_H

#include <atomic>
#include <thread>

#include "server/monitor.h"

namespace grass {

class CpuBackend {
 public:
  explicit CpuBackend(grass_monitor* monitor) : monitor_(monitor) {}
  ~CpuBackend() { stop(); }
  void start();
  void stop();

 private:
  void loop();
  grass_monitor* monitor_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace grass

#endif
