// The agent's choice of backend (--backend): cpu everywhere; cuda in build/grass-agent-cuda
// (`make cuda-agent`, compiled with GRASS_WITH_CUDA), which needs a GPU to run.
#ifndef GRASS_BACKEND_BACKEND_H
#define GRASS_BACKEND_BACKEND_H

#include <memory>
#include <string>

#include "cpu_backend.h"
#ifdef GRASS_WITH_CUDA
#include "cuda_backend.h"
#endif

namespace grass {

class Backend {
 public:
  // kind: "cpu" or "cuda" (checked by the caller). buffer: the clients' buffer (shm). workers:
  // the cpu backend's threads (0: one per CPU; the cuda backend runs one monitor); pacing: how
  // they wait for work (cpu backend only).
  Backend(const std::string& kind, grass_monitor* monitor, uint8_t* buffer, uint64_t buffer_bytes, uint32_t workers, CpuPacing pacing = {}) {
#ifdef GRASS_WITH_CUDA
    if (kind == "cuda") { cuda_.reset(new CudaBackend(monitor, buffer, buffer_bytes)); return; }
#endif
    (void)kind, (void)buffer, (void)buffer_bytes;
    cpu_.reset(new CpuBackend(monitor, workers, pacing));
  }
  void start() {
#ifdef GRASS_WITH_CUDA
    if (cuda_) { cuda_->start(); return; }
#endif
    cpu_->start();
  }
  // Monitor threads serving the buffer.
  uint32_t workers() const { return cpu_ ? cpu_->workers() : 1; }
  void stop() {
#ifdef GRASS_WITH_CUDA
    if (cuda_) { cuda_->stop(); return; }
#endif
    cpu_->stop();
  }

 private:
  std::unique_ptr<CpuBackend> cpu_;
#ifdef GRASS_WITH_CUDA
  std::unique_ptr<CudaBackend> cuda_;
#endif
};

}  // namespace grass

#endif
