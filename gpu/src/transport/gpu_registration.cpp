// COMPILE-ONLY HERE (see gpu_registration.h): never run on hardware by this project.
#include "gpu_registration.h"

#include <cuda.h>
#include <infiniband/verbs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace grass {

namespace {

constexpr int kAccess = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;

std::string cu_error(CUresult r) {
  const char* name = nullptr;
  cuGetErrorName(r, &name);
  return name ? name : ("CUresult " + std::to_string((int)r));
}

}  // namespace

ibv_mr* register_gpu_buffer(ibv_pd* pd, uint64_t device_ptr, size_t bytes, std::string* how) {
  // dma-buf needs the range page-aligned on the GPU (64 KiB pages for cudaMalloc'ed memory):
  // the caller allocates the buffer so.
  int fd = -1;
  CUresult r = cuMemGetHandleForAddressRange(&fd, (CUdeviceptr)device_ptr, bytes, CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0);
  std::string dmabuf_failure;
  if (r == CUDA_SUCCESS) {
    ibv_mr* mr = ibv_reg_dmabuf_mr(pd, 0, bytes, device_ptr, fd, kAccess);
    int e = errno;
    close(fd);  // the MR keeps its own reference to the dma-buf
    if (mr) {
      *how = "dma-buf";
      return mr;
    }
    dmabuf_failure = std::string("ibv_reg_dmabuf_mr: ") + strerror(e);
  } else {
    dmabuf_failure = "cuMemGetHandleForAddressRange: " + cu_error(r);
  }
  // nvidia-peermem lets ibv_reg_mr pin GPU memory through the device pointer itself.
  ibv_mr* mr = ibv_reg_mr(pd, (void*)(uintptr_t)device_ptr, bytes, kAccess);
  if (mr) {
    *how = "nvidia-peermem";
    return mr;
  }
  throw std::runtime_error("cannot register the GPU buffer with the NIC: dma-buf failed (" + dmabuf_failure +
                           "), ibv_reg_mr on the device pointer failed (" + strerror(errno) + "; is nvidia-peermem loaded?)");
}

}  // namespace grass
