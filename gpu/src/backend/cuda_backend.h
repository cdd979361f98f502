// The cuda backend: the monitor loop as a persistent kernel on the GPU (one block, one thread
// running the same monitor passes as the cpu backend), target memory as mapped host memory
// (cudaHostRegister of the memory source's mapping), the GRASS buffer in device memory, and a
// stand-in for the NIC: a host thread of this process that mirrors the clients' shm buffer into
// the GPU buffer with one-sided cudaMemcpyAsync copies on its own stream (docs/gpu.md).
// Built only into build/grass-agent-cuda (`make cuda-agent`); no CUDA header here.
#ifndef GRASS_BACKEND_CUDA_H
#define GRASS_BACKEND_CUDA_H

#include <cstdint>
#include <memory>

#include "../server/monitor.h"

namespace grass {

class CudaBackend {
 public:
  // monitor: prepared by prepare_monitor over shm_buffer (the clients' buffer, buffer_bytes long).
  // Throws (naming the CUDA call that failed) when the GPU or the registration is unusable.
  CudaBackend(grass_monitor* monitor, uint8_t* shm_buffer, uint64_t buffer_bytes);
  ~CudaBackend();
  void start();  // launches the persistent kernel and the NIC stand-in thread
  void stop();   // stops both (start() after stop() resumes with the monitor's state kept)
  const char* device_name() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace grass

#endif
