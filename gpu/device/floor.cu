// The floors the cuda backend is measured against (gpu/device/run.sh), on the same GPU:
// - the bare round trip of its NIC stand-in: a persistent kernel echoes a word that a host
//   thread writes with cudaMemcpyAsync on its own non-blocking stream and polls back the same way;
// - cudaMemcpy bandwidth between pinned host memory and device memory.
// Prints one JSON line.   nvcc -O2 -gencode arch=compute_90,code=sm_90 floor.cu -o floor
#include <cstdio>
#include <algorithm>
#include <vector>
#include <time.h>
#include <cuda_runtime.h>

#define CU(x) do { cudaError_t e = (x); if (e != cudaSuccess) { fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e)); return 1; } } while (0)

static double now_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

__global__ void echo(volatile unsigned long long* req, volatile unsigned long long* rep, const volatile unsigned* stop) {
  unsigned long long last = 0;
  while (*stop == 0) {
    unsigned long long v = *req;
    if (v != last) { __threadfence_system(); *rep = v; __threadfence_system(); last = v; }
  }
}

int main() {
  cudaDeviceProp prop;
  CU(cudaGetDeviceProperties(&prop, 0));
  CU(cudaSetDeviceFlags(cudaDeviceMapHost));
  unsigned long long *d_req, *d_rep, *pin;
  unsigned *stop, *d_stop;
  CU(cudaMalloc(&d_req, 8)); CU(cudaMalloc(&d_rep, 8));
  CU(cudaMemset(d_req, 0, 8)); CU(cudaMemset(d_rep, 0, 8));
  CU(cudaHostAlloc((void**)&pin, 16, cudaHostAllocDefault));
  CU(cudaHostAlloc((void**)&stop, 4, cudaHostAllocMapped));
  CU(cudaHostGetDevicePointer((void**)&d_stop, stop, 0));
  *stop = 0;
  cudaStream_t ks, ns;
  CU(cudaStreamCreateWithFlags(&ks, cudaStreamNonBlocking));
  CU(cudaStreamCreateWithFlags(&ns, cudaStreamNonBlocking));
  echo<<<1, 1, 0, ks>>>(d_req, d_rep, d_stop);
  const int n = 20000;
  std::vector<double> rt;
  for (int k = 1; k <= n; k++) {
    double t0 = now_us();
    pin[0] = k;
    CU(cudaMemcpyAsync(d_req, &pin[0], 8, cudaMemcpyHostToDevice, ns));
    do {
      CU(cudaMemcpyAsync(&pin[1], d_rep, 8, cudaMemcpyDeviceToHost, ns));
      CU(cudaStreamSynchronize(ns));
    } while (pin[1] != (unsigned long long)k);
    rt.push_back(now_us() - t0);
  }
  *(volatile unsigned*)stop = 1;
  CU(cudaStreamSynchronize(ks));
  std::sort(rt.begin(), rt.end());
  printf("{\"device\":\"%s\",\"roundTripUs\":{\"n\":%d,\"median\":%.2f,\"p99\":%.2f,\"max\":%.2f,\"min\":%.2f}", prop.name, n,
         rt[n / 2], rt[n * 99 / 100], rt[n - 1], rt[0]);
  const size_t sizes[] = {1u << 20, 64u << 20};
  for (size_t bytes : sizes) {
    void *h, *d;
    CU(cudaHostAlloc(&h, bytes, cudaHostAllocDefault));
    CU(cudaMalloc(&d, bytes));
    for (int dir = 0; dir < 2; dir++) {
      cudaMemcpyKind kind = dir ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
      CU(cudaMemcpy(dir ? d : h, dir ? h : d, bytes, kind));
      int reps = bytes < (8u << 20) ? 200 : 20;
      double t0 = now_us();
      for (int r = 0; r < reps; r++) CU(cudaMemcpy(dir ? d : h, dir ? h : d, bytes, kind));
      double us = now_us() - t0;
      printf(",\"memcpy%s%zuMiB_MBps\":%.1f", dir ? "HtoD" : "DtoH", bytes >> 20, bytes * (double)reps / us);
    }
    cudaFreeHost(h);
    cudaFree(d);
  }
  printf("}\n");
  return 0;
}
