// The cuda backend's device side: a persistent one-thread kernel running the same monitor loop
// as the cpu backend over a buffer in device memory and target memory mapped with
// cudaHostRegister. Built by `make cuda-check` (sm_90) so CI proves the monitor code stays
// device-clean; the host side that launches it (mapping, registration, NIC) is not in this
// build yet.
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
