// Registration of a GRASS buffer in GPU memory with the RDMA NIC (the cuda backend; DESIGN.md
// §3.3): dma-buf first (cuMemGetHandleForAddressRange + ibv_reg_dmabuf_mr, upstream kernels, no
// extra module), else nvidia-peermem's ibv_reg_mr on the device pointer.
//
// COMPILE-ONLY HERE: no machine of this project has a GPU and an RNIC together, so this path is
// built (`make rdma-cuda-check`) but has never run. Verify on real hardware before relying on it.
#ifndef GRASS_TRANSPORT_GPU_REGISTRATION_H
#define GRASS_TRANSPORT_GPU_REGISTRATION_H

#include <cstddef>
#include <cstdint>
#include <string>

struct ibv_pd;
struct ibv_mr;

namespace grass {

// Registers [device_ptr, device_ptr + bytes) for remote read and write. `how` says which way
// worked ("dma-buf" or "nvidia-peermem"). Throws naming both failures.
ibv_mr* register_gpu_buffer(ibv_pd* pd, uint64_t device_ptr, size_t bytes, std::string* how);

}  // namespace grass

#endif
