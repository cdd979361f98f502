// The monitor loop as a minimal one-thread kernel, built by `make cuda-check` (sm_90) wherever
// nvcc is, so CI without a GPU proves the monitor code stays device-clean. The kernel the cuda
// backend runs (persistent block, watcher and copy warps, NIC stand-in) is cuda_backend.cu.
#include "../server/monitor.h"

__device__ uint64_t grass_device_clock_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Runs until *stop becomes non-zero (written by the host through mapped memory).
__global__ void grass_monitor_kernel(grass_monitor* mon, const volatile uint32_t* stop) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  while (*stop == 0) grass_monitor_pass(mon, grass_device_clock_ns());
}
