// The cuda backend (cuda_backend.h). Orderings, made explicit:
// - monitor side: the same monitor code as the cpu backend; grass_fence() is
//   __threadfence_system() and marks are volatile (uncached) loads and stores, so a request is
//   read only after its mark and a reply's data and reply are visible before its mark.
// - NIC stand-in: on one stream (copies of a stream run one after another) it writes a
//   request's data, then the request, then its mark into device memory, and reads a reply's mark,
//   then (once the mark is new) the reply and its data. A real NIC's writes would arrive over
//   PCIe through GPUDirect RDMA, whose ordering against the kernel's polling this stand-in
//   cannot show (a copy engine is not a NIC; docs/gpu.md).
#include "cuda_backend.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

#include <cuda_runtime.h>

namespace grass {

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("cuda backend: ") + what + ": " + cudaGetErrorString(e));
}
#define CU(x) check((x), #x)

__device__ uint64_t device_cycles() { return (uint64_t)clock64(); }

// The GPU-side reaction time, measured beside the monitor: the watcher warp's lane i polls slot
// i's request_mark and reply_mark in the device buffer and records, on the GPU's clocks, when a
// new request mark appeared and when the matching reply mark did (GRASS_CUDA_REACTION_FILE).
struct reaction_entry {
  uint64_t request_ns, reply_ns;          // %globaltimer
  uint64_t request_cycles, reply_cycles;  // clock64 of the watcher's SM
  uint32_t slot, opcode;
};
struct reaction_ring {
  uint64_t count;        // entries recorded (the ring keeps the first kReactionCapacity)
  uint64_t replaced;     // requests whose mark was overwritten before their reply mark came
  uint64_t timer_step_ns;  // the smallest step seen between two %globaltimer reads
  uint64_t calibration_ns, calibration_cycles;  // clock64 against %globaltimer over 10 ms
};
constexpr uint32_t kReactionCapacity = 1u << 18;

// The persistent kernel, one block of 256 threads: thread 0 runs monitor passes until *stop
// (mapped host memory); warp 1 is the reaction-time watcher; warps 2-7 take shares of thread
// 0's large copies (grass_copy_helpers), so reads of mapped target memory are issued in parallel
// rather than one dependent load at a time. __launch_bounds__ lets the compiler give each thread
// up to 65536/256 registers (a 288-thread block did not fit the monitor's register count).
constexpr int kMonitorThreads = 256;
constexpr int kFirstHelper = 64;

__device__ void watch_reactions(uint8_t* buffer, uint32_t slots, uint64_t slot_bytes, reaction_ring* ring,
                                reaction_entry* entries, const volatile int* quit) {
  uint32_t lane = threadIdx.x & 31;
  if (lane == 0) {  // the timer's step, for reading the figures' resolution
    uint64_t step = ~0ull, t = grass_device_ns();
    for (int seen = 0; seen < 16;) {
      uint64_t u = grass_device_ns();
      if (u != t) { step = u - t < step ? u - t : step; t = u; seen++; }
    }
    ring->timer_step_ns = step;
    uint64_t t0 = grass_device_ns(), c0 = device_cycles(), t1;
    while ((t1 = grass_device_ns()) - t0 < 10000000) {}
    ring->calibration_cycles = device_cycles() - c0;
    ring->calibration_ns = t1 - t0;
  }
  grass_slot_header* s = (grass_slot_header*)(buffer + GRASS_HEADER_BYTES + (uint64_t)lane * slot_bytes);
  bool mine = lane < slots;
  uint64_t seen = mine ? grass_load_mark(&s->request_mark) : 0, pending = 0;
  uint64_t t_req = 0, c_req = 0;
  uint32_t opcode = 0;
  while (*quit == 0) {
    if (!mine) continue;
    uint64_t m = grass_load_mark(&s->request_mark);
    if (m != seen) {
      uint64_t t = grass_device_ns(), c = device_cycles();
      if (pending) atomicAdd((unsigned long long*)&ring->replaced, 1ull);
      seen = pending = m, t_req = t, c_req = c;
      opcode = ((volatile grass_request*)&s->request)->opcode;
    }
    if (pending && grass_load_mark(&s->reply_mark) == pending) {
      uint64_t t = grass_device_ns(), c = device_cycles();
      uint64_t i = atomicAdd((unsigned long long*)&ring->count, 1ull);
      if (i < kReactionCapacity) entries[i] = {t_req, t, c_req, c, lane, opcode};
      pending = 0;
    }
  }
}

// A helper's share of a copy: units me, me + helpers, ... (a warp's loads are consecutive), kCopyDepth
// loads issued before their stores so that that many PCIe reads per helper are in flight. Loads
// bypass the caches (__ldcv): target memory changes under the monitor.
constexpr int kCopyDepth = 8;
template <typename T>
__device__ void copy_share(const T* src, T* dst, uint64_t units, uint32_t me, uint32_t helpers) {
  for (uint64_t base = me; base < units; base += (uint64_t)helpers * kCopyDepth) {
    T v[kCopyDepth];
#pragma unroll
    for (int u = 0; u < kCopyDepth; u++) {
      uint64_t k = base + (uint64_t)u * helpers;
      if (k < units) v[u] = __ldcv(src + k);
    }
#pragma unroll
    for (int u = 0; u < kCopyDepth; u++) {
      uint64_t k = base + (uint64_t)u * helpers;
      if (k < units) dst[k] = v[u];
    }
  }
}

// The copy grid (hd.h: grass_grid_job): persistent blocks beside the monitor's kernel, each
// claiming 16 KiB chunks of a posted copy from the job's ticket, copying them with every lane's
// loads in flight at once and taking the chunk's raw CRC on the way (crypto/crc32_grid.h).
__device__ void copy_grid_chunk(grass_grid_job* job, const grass_crc32_tables* crc, const grass_crc32_grid_tables* g,
                                uint32_t chunk, uint32_t align_full, uint32_t* warp_crc) {
  const volatile grass_grid_job* v = job;
  const uint4* src = (const uint4*)v->src;
  uint4* dst = (uint4*)v->dst;
  uint64_t units = v->bytes / 16, first = (uint64_t)chunk * (GRASS_GRID_CHUNK_BYTES / 16);
  uint32_t chunk_units = (uint32_t)(units - first < GRASS_GRID_CHUNK_BYTES / 16 ? units - first : GRASS_GRID_CHUNK_BYTES / 16);
  uint32_t t = threadIdx.x;
  uint4 w[GRASS_GRID_UNITS_PER_LANE];
#pragma unroll
  for (uint32_t r = 0; r < GRASS_GRID_UNITS_PER_LANE; r++) {
    uint32_t u = r * GRASS_GRID_LANES + t;
    if (u < chunk_units) w[r] = __ldcv(src + first + u);
  }
  uint32_t folded = 0, last = 0;
  bool any = false;
#pragma unroll
  for (uint32_t r = 0; r < GRASS_GRID_UNITS_PER_LANE; r++) {
    uint32_t u = r * GRASS_GRID_LANES + t;
    if (u < chunk_units) {
      dst[first + u] = w[r];
      folded = grass_crc32_mul_by(g->mul_stride, folded) ^ grass_crc32_raw16(g->slice, w[r].x, w[r].y, w[r].z, w[r].w);
      last = u;
      any = true;
    }
  }
  uint32_t part = any ? grass_crc32_lane_aligned(crc, folded, last, chunk_units, align_full) : 0;
  for (int o = 16; o; o >>= 1) part ^= __shfl_xor_sync(0xffffffffu, part, o);
  if ((t & 31) == 0) warp_crc[t / 32] = part;
  __syncthreads();
  if (t == 0) {
    uint32_t sum = 0;
    for (uint32_t k = 0; k < GRASS_GRID_LANES / 32; k++) sum ^= warp_crc[k];
    ((volatile uint32_t*)job->chunk_crc)[chunk] = sum;
    __threadfence();
    atomicAdd(&job->chunks_done, 1u);
  }
}

__global__ void __launch_bounds__(GRASS_GRID_LANES)
copy_grid(grass_grid_job* job, const grass_crc32_tables* crc, const grass_crc32_grid_tables* tables) {
  __shared__ grass_crc32_grid_tables g;  // 20 KiB of the 24 the struct holds are looked up here
  __shared__ uint32_t warp_crc[GRASS_GRID_LANES / 32];
  __shared__ long long claimed;          // the chunk this block copies next; -1: the grid stops
  for (uint32_t k = threadIdx.x; k < sizeof g / 4; k += blockDim.x) ((uint32_t*)&g)[k] = ((const uint32_t*)tables)[k];
  uint32_t align_full = grass_crc32_shift(crc, 1u << 31, 16ull * (GRASS_GRID_LANES - 1 - threadIdx.x));
  volatile grass_grid_job* v = job;
  __syncthreads();
  for (;;) {
    if (threadIdx.x == 0) {
      // Claim the next chunk of the posted copy: the ticket names the job's generation and the
      // next unclaimed chunk; claiming is a compare-and-swap, so a block that read an old ticket
      // claims nothing of a newer job.
      for (;;) {
        if (v->quit) { claimed = -1; break; }
        unsigned long long ticket = v->ticket;
        uint64_t chunks = (v->bytes + GRASS_GRID_CHUNK_BYTES - 1) / GRASS_GRID_CHUNK_BYTES;
        if ((ticket >> 32) == 0 || (uint32_t)ticket >= chunks) continue;
        if (atomicCAS(&job->ticket, ticket, ticket + 1) == ticket) { claimed = (uint32_t)ticket; break; }
      }
      __threadfence();
    }
    __syncthreads();
    if (claimed < 0) return;
    copy_grid_chunk(job, crc, &g, (uint32_t)claimed, align_full, warp_crc);
    __syncthreads();
  }
}

// The monitor's own loop on the GPU: the first warp's lanes read every slot's request mark at
// once (one memory latency, not one per slot), and lane 0 answers only the slots whose mark moved
// (heartbeats first); the whole pass, with the plugins' tick and the liveness block, runs every
// kFullPassNs. The cpu backend's loop sweeps every slot each pass instead, which costs it nothing.
constexpr uint64_t kFullPassNs = 20000;

// A grid copy's checksum serves only the request whose reply it was taken for: the remote may
// rewrite the slot's data (its next request's) without the monitor copying into it.
__device__ void grid_memo_forget() {
  if (grass_copy_grid) grass_copy_grid->memo_bytes = 0;
}

__device__ void serve_slot(grass_monitor* mon, uint32_t i, uint64_t now) {
  grid_memo_forget();
  grass_serve_slot(mon, i, now, false);
}

__device__ void serve_on_warp(grass_monitor* mon, const volatile uint32_t* stop) {
  uint32_t lane = threadIdx.x & 31, slots = mon->slot_count;
  const volatile uint64_t* last_mark = mon->last_mark;
  uint64_t last_full = 0;
  // Lane 0's reading of the stop flag decides for the whole warp (the ballots need every lane).
  while (__shfl_sync(0xffffffffu, *stop, 0) == 0) {
    uint64_t now = grass_device_ns();
    for (uint32_t group = 0; group < slots; group += 32) {
      uint32_t i = group + lane;
      bool moved = false, heartbeat = false;
      if (i < slots) {
        grass_slot_header* h = grass_slot(mon, i);
        moved = grass_load_mark(&h->request_mark) != last_mark[i];
        heartbeat = moved && ((volatile grass_request*)&h->request)->opcode == GRASS_OP_HEARTBEAT;
      }
      uint32_t moved_mask = __ballot_sync(0xffffffffu, moved), heartbeat_mask = __ballot_sync(0xffffffffu, heartbeat);
      if (lane == 0) {
        for (uint32_t m = heartbeat_mask; m; m &= m - 1) serve_slot(mon, group + __ffs(m) - 1, now);
        for (uint32_t m = moved_mask & ~heartbeat_mask; m; m &= m - 1) serve_slot(mon, group + __ffs(m) - 1, now);
      }
      __syncwarp();
    }
    if (lane == 0 && now - last_full >= kFullPassNs) {
      grid_memo_forget();
      grass_monitor_pass(mon, now);
      last_full = now;
    }
    __syncwarp();
  }
}

__global__ void __launch_bounds__(kMonitorThreads, 1)
persistent_monitor(grass_monitor* mon, const volatile uint32_t* stop, reaction_ring* ring, reaction_entry* entries,
                   grass_grid_job* grid, volatile uint32_t* started) {
  __shared__ grass_copy_job job;
  __shared__ volatile int quit;
  if (threadIdx.x == 0) {
    job = {};
    job.helpers = blockDim.x - kFirstHelper;
    grass_copy_helpers = &job;
    grass_copy_grid = grid;
    quit = 0;
    *started = 1;  // the host launches the copy grid only now (CudaBackend::start)
    __threadfence_system();
  }
  __syncthreads();
  if (threadIdx.x < 32) {
    serve_on_warp(mon, stop);
    if (threadIdx.x != 0) return;
    if (grid) ((volatile grass_grid_job*)grid)->quit = 1;  // the copy grid leaves
    quit = 1;  // the watcher leaves
    job.kind = 0;  // the helpers leave
    __threadfence_block();
    atomicAdd(&job.generation, 1u);
    return;
  }
  if (threadIdx.x < kFirstHelper) {
    watch_reactions(mon->buffer, mon->slot_count, mon->slot_bytes, ring, entries, &quit);
    return;
  }
  volatile grass_copy_job* vj = &job;
  uint32_t seen = 0, me = threadIdx.x - kFirstHelper, helpers = blockDim.x - kFirstHelper;
  for (;;) {
    uint32_t g;
    while ((g = atomicAdd(&job.generation, 0u)) == seen) {}
    seen = g;
    __threadfence_block();
    uint32_t kind = vj->kind;
    if (kind == 0) return;
    if (kind == GRASS_JOB_CRC32) grass_crc32_piece(&job, me);
    else if (kind == GRASS_JOB_PS_RECORDS) grass_ps_fill_share(&job, me);
    else if (kind == GRASS_JOB_COPY16) copy_share((const uint4*)vj->src, (uint4*)vj->dst, vj->units, me, helpers);
    else copy_share((const unsigned long long*)vj->src, (unsigned long long*)vj->dst, vj->units, me, helpers);
    __threadfence();
    atomicAdd(&job.done, 1u);
  }
}

uint64_t host_clock_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

constexpr uint64_t kSpinAfterRequestNs = 20000000;  // like the cpu backend: spin 20 ms after a request
constexpr long kIdleNapNs = 50000;                  // then nap 50 us between sweeps
constexpr uint64_t kLivenessMirrorNs = 1000000;     // the header's liveness block copied back each 1 ms

}  // namespace

struct CudaBackend::State {
  grass_monitor* host_mon;
  uint8_t* shm;
  uint64_t bytes;
  uint32_t slots;
  grass_monitor* d_mon = nullptr;
  uint8_t* d_buffer = nullptr;
  std::vector<void*> device_allocations;
  std::vector<void*> registered;
  uint32_t* stop_flag = nullptr;  // mapped host memory
  uint32_t* d_stop_flag = nullptr;
  uint32_t* started_flag = nullptr;  // mapped host memory: the monitor's block is resident
  uint32_t* d_started_flag = nullptr;
  reaction_ring* d_ring = nullptr;
  reaction_entry* d_entries = nullptr;
  cudaStream_t kernel_stream = nullptr, nic_stream = nullptr, grid_stream = nullptr;
  grass_grid_job* d_grid = nullptr;
  const grass_crc32_grid_tables* d_grid_tables = nullptr;
  int grid_blocks = 0;
  bool grid_launched = false;
  // Pinned staging for the stand-in: the forwarded marks, the polled reply marks, a reply, the header.
  uint64_t* pin_request_mark = nullptr;
  uint64_t* pin_reply_mark = nullptr;
  grass_reply* pin_reply = nullptr;
  grass_buffer_header* pin_header = nullptr;
  std::atomic<bool> stopping{false};
  std::thread nic;
  bool running = false;
  cudaDeviceProp prop{};

  void* device_alloc(uint64_t n) {
    void* p = nullptr;
    CU(cudaMalloc(&p, n ? n : 1));
    CU(cudaMemset(p, 0, n ? n : 1));
    device_allocations.push_back(p);
    return p;
  }
  grass_slot_header* shm_slot(uint32_t i) { return (grass_slot_header*)(shm + GRASS_HEADER_BYTES + (uint64_t)i * host_mon->slot_bytes); }
  grass_slot_header* dev_slot(uint32_t i) { return (grass_slot_header*)(d_buffer + GRASS_HEADER_BYTES + (uint64_t)i * host_mon->slot_bytes); }
  void nic_loop();
  void write_reactions(const char* file);
  void mirror_header(uint64_t* last_liveness, uint64_t* last_background);
};

CudaBackend::CudaBackend(grass_monitor* monitor, uint8_t* shm_buffer, uint64_t buffer_bytes) : s_(new State) {
  State& s = *s_;
  s.host_mon = monitor;
  s.shm = shm_buffer;
  s.bytes = buffer_bytes;
  s.slots = monitor->slot_count;
  int count = 0;
  CU(cudaGetDeviceCount(&count));
  CU(cudaGetDeviceProperties(&s.prop, 0));
  CU(cudaSetDeviceFlags(cudaDeviceMapHost));
  CU(cudaDeviceSetLimit(cudaLimitStackSize, 32768));  // the monitor's frames (HMAC, walks) live on the stack

  grass_monitor dm = *monitor;
  // Target memory: the memory source's mapping, registered as mapped host memory (read-only
  // when the source is). Ranges of one mapping are registered once.
  for (uint32_t r = 0; r < dm.mem.count; r++) {
    grass_phys_range* range = &dm.mem.ranges[r];
    void* dptr = nullptr;
    if (cudaHostGetDevicePointer(&dptr, range->base, 0) != cudaSuccess) {
      cudaGetLastError();
      unsigned flags = cudaHostRegisterMapped | (dm.mem.writable ? 0 : cudaHostRegisterReadOnly);
      CU(cudaHostRegister(range->base, range->length, flags));
      s.registered.push_back(range->base);
      CU(cudaHostGetDevicePointer(&dptr, range->base, 0));
    }
    range->base = (uint8_t*)dptr;
  }
  // Result arenas and scratch in device memory; the description (built on the host) copied in.
  for (uint32_t i = 0; i < s.slots; i++) dm.arenas[i].data = (uint8_t*)s.device_alloc(dm.arenas[i].capacity);
  grass_result_arena* desc = &dm.arenas[s.slots];
  uint8_t* d_desc = (uint8_t*)s.device_alloc(desc->bytes);
  CU(cudaMemcpy(d_desc, desc->data, desc->bytes, cudaMemcpyHostToDevice));
  desc->data = d_desc;
  dm.scratch = (uint8_t*)s.device_alloc(dm.slot_data_bytes);
#ifdef GRASS_PLUGIN_DETECT_H
  if (dm.detect) {  // the detectors' walk buffers, in device memory
    grass_detect_state dd = *dm.detect;
    dd.tasks = (grass_task_record*)s.device_alloc(dd.task_capacity * sizeof(grass_task_record));
    dd.base_pid = (int32_t*)s.device_alloc(dd.task_capacity * sizeof(int32_t));
    dd.base_cpu_ns = (uint64_t*)s.device_alloc(2 * dd.task_capacity * sizeof(uint64_t));
    grass_detect_state* d_detect = (grass_detect_state*)s.device_alloc(sizeof dd);
    CU(cudaMemcpy(d_detect, &dd, sizeof dd, cudaMemcpyHostToDevice));
    dm.detect = d_detect;
  }
#endif
  // The GRASS buffer in device memory, starting as the host laid it out; the clients' shm copy
  // is registered so the stand-in's copies are DMA, as a NIC's would be.
  ((grass_buffer_header*)s.shm)->flags |= GRASS_AGENT_BACKEND_CUDA;
  s.d_buffer = (uint8_t*)s.device_alloc(s.bytes);
  CU(cudaMemcpy(s.d_buffer, s.shm, s.bytes, cudaMemcpyHostToDevice));
  CU(cudaHostRegister(s.shm, s.bytes, cudaHostRegisterDefault));
  s.registered.push_back(s.shm);
  dm.buffer = s.d_buffer;
  s.d_mon = (grass_monitor*)s.device_alloc(sizeof dm);
  CU(cudaMemcpy(s.d_mon, &dm, sizeof dm, cudaMemcpyHostToDevice));

  // The copy grid: its job, the chunks' CRCs and the CRC tables it looks up (built here from the
  // monitor's own tables, so any polynomial they hold). One block per multiprocessor but the
  // monitor's: whichever are resident serve the work queue.
  grass_crc32_grid_tables* tables = new grass_crc32_grid_tables;
  grass_crc32_grid_tables_init(&monitor->crc, tables);
  grass_grid_job grid = {};
  grid.chunk_crc = (uint32_t*)s.device_alloc(GRASS_GRID_MAX_CHUNKS * sizeof(uint32_t));
  grid.tables = s.device_alloc(sizeof *tables);
  CU(cudaMemcpy((void*)grid.tables, tables, sizeof *tables, cudaMemcpyHostToDevice));
  delete tables;
  s.d_grid_tables = (const grass_crc32_grid_tables*)grid.tables;
  s.d_grid = (grass_grid_job*)s.device_alloc(sizeof grid);
  CU(cudaMemcpy(s.d_grid, &grid, sizeof grid, cudaMemcpyHostToDevice));
  s.grid_blocks = s.prop.multiProcessorCount > 1 ? s.prop.multiProcessorCount - 1 : 1;

  s.d_ring = (reaction_ring*)s.device_alloc(sizeof(reaction_ring));
  s.d_entries = (reaction_entry*)s.device_alloc(kReactionCapacity * sizeof(reaction_entry));
  CU(cudaHostAlloc((void**)&s.stop_flag, sizeof(uint32_t), cudaHostAllocMapped));
  CU(cudaHostGetDevicePointer((void**)&s.d_stop_flag, s.stop_flag, 0));
  CU(cudaHostAlloc((void**)&s.started_flag, sizeof(uint32_t), cudaHostAllocMapped));
  CU(cudaHostGetDevicePointer((void**)&s.d_started_flag, s.started_flag, 0));
  CU(cudaHostAlloc((void**)&s.pin_request_mark, s.slots * sizeof(uint64_t), cudaHostAllocDefault));
  CU(cudaHostAlloc((void**)&s.pin_reply_mark, s.slots * sizeof(uint64_t), cudaHostAllocDefault));
  CU(cudaHostAlloc((void**)&s.pin_reply, s.slots * sizeof(grass_reply), cudaHostAllocDefault));
  CU(cudaHostAlloc((void**)&s.pin_header, sizeof(grass_buffer_header), cudaHostAllocDefault));
  CU(cudaStreamCreateWithFlags(&s.kernel_stream, cudaStreamNonBlocking));
  CU(cudaStreamCreateWithFlags(&s.nic_stream, cudaStreamNonBlocking));
  CU(cudaStreamCreateWithFlags(&s.grid_stream, cudaStreamNonBlocking));
}

CudaBackend::~CudaBackend() {
  stop();
  State& s = *s_;
  cudaStreamDestroy(s.nic_stream);
  cudaStreamDestroy(s.grid_stream);
  cudaStreamDestroy(s.kernel_stream);
  for (void* p : s.device_allocations) cudaFree(p);
  for (void* p : s.registered) cudaHostUnregister(p);
  cudaFreeHost(s.stop_flag);
  cudaFreeHost(s.started_flag);
  cudaFreeHost(s.pin_request_mark);
  cudaFreeHost(s.pin_reply_mark);
  cudaFreeHost(s.pin_reply);
  cudaFreeHost(s.pin_header);
}

const char* CudaBackend::device_name() const { return s_->prop.name; }

void CudaBackend::start() {
  State& s = *s_;
  if (s.running) return;
  *(volatile uint32_t*)s.stop_flag = 0;
  CU(cudaMemset(&s.d_grid->quit, 0, sizeof(uint32_t)));  // after a stop (SIGUSR2), the grid serves again
  CU(cudaDeviceSynchronize());
  *(volatile uint32_t*)s.started_flag = 0;
  // GRASS_CUDA_GRID=0: no grid (large copies stay on the monitor block's helpers), to compare.
  const char* grid_setting = getenv("GRASS_CUDA_GRID");
  s.grid_launched = !(grid_setting && strcmp(grid_setting, "0") == 0);
  persistent_monitor<<<1, kMonitorThreads, 0, s.kernel_stream>>>(s.d_mon, s.d_stop_flag, s.d_ring, s.d_entries,
                                                                  s.grid_launched ? s.d_grid : nullptr, s.d_started_flag);
  CU(cudaGetLastError());
  // The monitor's block takes a whole multiprocessor's registers: launched together, the grid's
  // blocks (which never leave) could take a share of every multiprocessor first and keep the
  // monitor from ever starting. So the grid goes on only once the monitor runs.
  for (uint64_t t0 = host_clock_ns(); *(volatile uint32_t*)s.started_flag == 0;) {
    if (host_clock_ns() - t0 > 10000000000ull) throw std::runtime_error("cuda backend: the monitor kernel did not start within 10 s");
    timespec nap = {0, 100000};
    nanosleep(&nap, nullptr);
  }
  if (s.grid_launched) {
    copy_grid<<<s.grid_blocks, GRASS_GRID_LANES, 0, s.grid_stream>>>(s.d_grid, &s.d_mon->crc, s.d_grid_tables);
    CU(cudaGetLastError());
  }
  s.stopping = false;
  s.nic = std::thread([&s] { s.nic_loop(); });
  s.running = true;
}

void CudaBackend::stop() {
  State& s = *s_;
  if (!s.running) return;
  s.stopping = true;
  if (s.nic.joinable()) s.nic.join();
  *(volatile uint32_t*)s.stop_flag = 1;
  cudaStreamSynchronize(s.kernel_stream);
  cudaStreamSynchronize(s.grid_stream);
  s.running = false;
  if (const char* file = getenv("GRASS_CUDA_REACTION_FILE")) s.write_reactions(file);
}

// The watcher's record as JSON, per opcode: reaction times (request mark seen to reply mark
// seen) on %globaltimer and on the SM's cycle counter, min/median/p99/max in microseconds.
void CudaBackend::State::write_reactions(const char* file) {
  reaction_ring ring;
  CU(cudaMemcpy(&ring, d_ring, sizeof ring, cudaMemcpyDeviceToHost));
  uint64_t n = std::min<uint64_t>(ring.count, kReactionCapacity);
  std::vector<reaction_entry> e(n);
  if (n) CU(cudaMemcpy(e.data(), d_entries, n * sizeof(reaction_entry), cudaMemcpyDeviceToHost));
  FILE* f = fopen(file, "w");
  if (!f) { fprintf(stderr, "grass-agent: cannot write %s\n", file); return; }
  double cycles_per_us = ring.calibration_ns ? ring.calibration_cycles * 1000.0 / ring.calibration_ns : 1;
  fprintf(f, "{\"recorded\":%llu,\"kept\":%llu,\"replaced\":%llu,\"timerStepNs\":%llu,\"smClockMHz\":%.0f,\"byOpcode\":{",
          (unsigned long long)ring.count, (unsigned long long)n, (unsigned long long)ring.replaced,
          (unsigned long long)ring.timer_step_ns, cycles_per_us);
  bool first = true;
  for (uint32_t op = 0; op < 64; op++) {
    std::vector<double> ns, cyc;
    for (const reaction_entry& r : e)
      if (r.opcode == op) ns.push_back((r.reply_ns - r.request_ns) / 1000.0), cyc.push_back((r.reply_cycles - r.request_cycles) / cycles_per_us);
    if (ns.empty()) continue;
    auto stats = [](std::vector<double>& v) {
      std::sort(v.begin(), v.end());
      char b[160];
      snprintf(b, sizeof b, "{\"min\":%.3f,\"median\":%.3f,\"p99\":%.3f,\"max\":%.3f}", v[0], v[v.size() / 2],
               v[std::min(v.size() - 1, v.size() * 99 / 100)], v.back());
      return std::string(b);
    };
    fprintf(f, "%s\"%u\":{\"n\":%zu,\"globaltimerUs\":%s,\"clock64Us\":%s}", first ? "" : ",", op, ns.size(),
            stats(ns).c_str(), stats(cyc).c_str());
    first = false;
  }
  grass_grid_job grid;
  CU(cudaMemcpy(&grid, d_grid, sizeof grid, cudaMemcpyDeviceToHost));
  fprintf(f, "},\"grid\":{\"launched\":%s,\"blocks\":%d,\"copies\":%llu,\"chunksByGrid\":%llu,\"chunksByPoster\":%llu,\"stalls\":%llu}}\n",
          grid_launched ? "true" : "false", grid_blocks, grid.copies, grid.chunks_by_grid, grid.chunks_by_poster, grid.stalls);
  fclose(f);
}

// Copies the header's liveness and background blocks (each seqlocked by its version) back to
// the clients' buffer when the monitor republished them, keeping each seqlock's protocol there.
void CudaBackend::State::mirror_header(uint64_t* last_liveness, uint64_t* last_background) {
  CU(cudaMemcpyAsync(pin_header, d_buffer, sizeof(grass_buffer_header), cudaMemcpyDeviceToHost, nic_stream));
  CU(cudaStreamSynchronize(nic_stream));
  grass_buffer_header* d = pin_header;
  grass_buffer_header* h = (grass_buffer_header*)shm;
  uint64_t v = d->liveness_version;
  if (v % 2 == 0 && v != *last_liveness) {
    __atomic_store_n(&h->liveness_version, v - 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    h->liveness_counter = d->liveness_counter;
    h->monitor_clock_ns = d->monitor_clock_ns;
    h->requests_served = d->requests_served;
    h->requests_refused = d->requests_refused;
    __atomic_store_n(&h->liveness_version, v, __ATOMIC_RELEASE);
    *last_liveness = v;
  }
  uint64_t b = d->background_version;
  if (b % 2 == 0 && b != *last_background && d->background_offset + d->background_capacity <= bytes) {
    __atomic_store_n(&h->background_version, b - 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    CU(cudaMemcpyAsync(shm + d->background_offset, d_buffer + d->background_offset, d->background_bytes, cudaMemcpyDeviceToHost, nic_stream));
    CU(cudaStreamSynchronize(nic_stream));
    h->background_bytes = d->background_bytes;
    h->background_crc32 = d->background_crc32;
    __atomic_store_n(&h->background_version, b, __ATOMIC_RELEASE);
    *last_background = b;
  }
}

void CudaBackend::State::nic_loop() {
  std::vector<uint64_t> forwarded(slots, 0), answered(slots, 0);
  for (uint32_t i = 0; i < slots; i++) forwarded[i] = answered[i] = __atomic_load_n(&shm_slot(i)->request_mark, __ATOMIC_ACQUIRE);
  uint64_t last_request = 0, last_mirror = 0, last_liveness = 0, last_background = 0;
  const uint32_t data_bytes = host_mon->slot_data_bytes;
  while (!stopping.load(std::memory_order_relaxed)) {
    uint64_t now = host_clock_ns();
    bool outstanding = false, moved = false;
    // The remote's writes: request data, request, then its mark (one stream: in that order).
    for (uint32_t i = 0; i < slots; i++) {
      grass_slot_header* h = shm_slot(i);
      uint64_t mark = __atomic_load_n(&h->request_mark, __ATOMIC_ACQUIRE);
      if (mark != forwarded[i]) {
        uint32_t n = h->request.data_bytes < data_bytes ? h->request.data_bytes : data_bytes;
        grass_slot_header* d = dev_slot(i);
        if (n) CU(cudaMemcpyAsync((uint8_t*)d + GRASS_SLOT_DATA_OFFSET, (uint8_t*)h + GRASS_SLOT_DATA_OFFSET, n, cudaMemcpyHostToDevice, nic_stream));
        CU(cudaMemcpyAsync(&d->request, &h->request, sizeof(grass_request), cudaMemcpyHostToDevice, nic_stream));
        pin_request_mark[i] = mark;
        CU(cudaMemcpyAsync(&d->request_mark, &pin_request_mark[i], 8, cudaMemcpyHostToDevice, nic_stream));
        forwarded[i] = mark;
        moved = true;
      }
      if (forwarded[i] != answered[i]) {
        outstanding = true;
        CU(cudaMemcpyAsync(&pin_reply_mark[i], &dev_slot(i)->reply_mark, 8, cudaMemcpyDeviceToHost, nic_stream));
      }
    }
    if (outstanding) {
      CU(cudaStreamSynchronize(nic_stream));
      // The remote's reads of a new reply: its mark first, then the reply and the data it names.
      for (uint32_t i = 0; i < slots; i++) {
        if (forwarded[i] == answered[i] || pin_reply_mark[i] == answered[i] || pin_reply_mark[i] == 0) continue;
        grass_slot_header* d = dev_slot(i);
        grass_slot_header* h = shm_slot(i);
        CU(cudaMemcpyAsync(&pin_reply[i], &d->reply, sizeof(grass_reply), cudaMemcpyDeviceToHost, nic_stream));
        CU(cudaStreamSynchronize(nic_stream));
        uint32_t n = pin_reply[i].data_bytes < data_bytes ? pin_reply[i].data_bytes : data_bytes;
        if (n) {
          CU(cudaMemcpyAsync((uint8_t*)h + GRASS_SLOT_DATA_OFFSET, (uint8_t*)d + GRASS_SLOT_DATA_OFFSET, n, cudaMemcpyDeviceToHost, nic_stream));
          CU(cudaStreamSynchronize(nic_stream));
        }
        memcpy(&h->reply, &pin_reply[i], sizeof(grass_reply));
        __atomic_store_n(&h->reply_mark, pin_reply_mark[i], __ATOMIC_RELEASE);
        answered[i] = pin_reply_mark[i];
        moved = true;
      }
    } else if (moved) {
      CU(cudaStreamSynchronize(nic_stream));
    }
    if (moved || outstanding) last_request = now;
    if (now - last_mirror > kLivenessMirrorNs) {  // not per reply: each copy back costs a round trip
      mirror_header(&last_liveness, &last_background);
      last_mirror = now;
    }
    if (!outstanding && now - last_request > kSpinAfterRequestNs) {
      timespec nap = {0, kIdleNapNs};
      nanosleep(&nap, nullptr);
    }
  }
}

}  // namespace grass
