// The monitor code running on a real GPU: one device thread runs monitor passes over a buffer
// and a target memory in managed memory, as the cuda backend's persistent kernel will. Requests
// are signed on the host with the same HMAC code test_crypto checks against OpenSSL; replies are
// checked against the host's view of the same memory.
//   nvcc -std=c++17 -arch=sm_90 -Iinclude test/cuda_selftest.cu -o build/cuda_selftest
#include <cstdio>
#include <cstring>
#include <vector>

#include "../src/server/monitor.h"

static int failures = 0, checks = 0;
#define CHECK(c) do { checks++; if (!(c)) { failures++; printf("%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); } } while (0)
#define CUDA(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e)); return 2; } } while (0)

__global__ void one_pass(grass_monitor* mon, uint64_t now) {
  if (threadIdx.x == 0 && blockIdx.x == 0) grass_monitor_pass(mon, now);
}

__global__ void walk_on_device(const grass_phys_map* m, uint64_t root, uint64_t va, uint64_t* out) {
  uint64_t phys = 0, left = 0;
  grass_fault f = {0, 0};
  out[0] = grass_walk(m, root, 4, va, &phys, &left, &f);
  out[1] = phys;
  out[2] = f.status;
}

__device__ uint64_t device_clock_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)::"memory");
  return t;
}

// The heartbeat's path on one device thread, piece by piece on %globaltimer (ns per repetition):
// [0] a pass that answers one new heartbeat (posted by the host before the launch), [1] a pass with
// nothing new, [2] the request's HMAC-SHA-256, [3] one SHA-256 compression, [4] __threadfence_system.
__global__ void time_heartbeat_path(grass_monitor* mon, const grass_request* q, uint64_t* ns, uint32_t reps) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  uint64_t t0 = device_clock_ns();
  grass_monitor_pass(mon, t0);
  uint64_t t1 = device_clock_ns();
  ns[0] = t1 - t0;
  for (uint32_t k = 0; k < reps; k++) grass_monitor_pass(mon, t1);
  uint64_t t2 = device_clock_ns();
  ns[1] = (t2 - t1) / reps;
  uint8_t mac[32];
  uint32_t slot = 0;
  for (uint32_t k = 0; k < reps; k++) {
    grass_hmac m;
    grass_hmac_begin(&m, &mon->key);
    grass_hmac_update(&m, &mon->instance, 8);
    grass_hmac_update(&m, &slot, 4);
    grass_hmac_update(&m, q, offsetof(grass_request, mac));
    grass_hmac_final(&m, mac);
  }
  uint64_t t3 = device_clock_ns();
  ns[2] = (t3 - t2) / reps;
  uint32_t h[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  for (uint32_t k = 0; k < reps; k++) grass_sha256_compress(h, (const uint8_t*)q);
  uint64_t t4 = device_clock_ns();
  ns[3] = (t4 - t3) / reps;
  for (uint32_t k = 0; k < reps; k++) __threadfence_system();
  ns[4] = (device_clock_ns() - t4) / reps;
  ns[5] = mac[1] + h[0];  // so that neither loop is optimized away
}

template <typename T>
static T* managed(size_t n = 1) {
  void* p = nullptr;
  if (cudaMallocManaged(&p, n * sizeof(T)) != cudaSuccess) { printf("cudaMallocManaged failed\n"); exit(2); }
  memset(p, 0, n * sizeof(T));
  return (T*)p;
}

struct Host {
  grass_monitor* mon;
  uint8_t key[32];
  grass_slot_header* slot(uint32_t i) { return grass_slot(mon, i); }
  void post(uint32_t i, uint64_t seq, uint32_t op, std::vector<uint64_t> args, bool forge = false) {
    grass_request q{};
    q.seq = seq;
    q.opcode = op;
    for (size_t k = 0; k < args.size(); k++) q.args[k] = args[k];
    grass_hmac m;
    grass_hmac_init(&m, key, 32);
    grass_hmac_update(&m, &mon->instance, 8);
    grass_hmac_update(&m, &i, 4);
    grass_hmac_update(&m, &q, offsetof(grass_request, mac));
    grass_hmac_final(&m, q.mac);
    if (forge) q.mac[0] ^= 1;
    memcpy(&slot(i)->request, &q, sizeof q);
    slot(i)->request_mark = seq;
  }
  int pass() {
    one_pass<<<1, 1>>>(mon, 1000);
    CUDA(cudaDeviceSynchronize());
    return 0;
  }
};

int main() {
  const uint32_t slots = 2, data_bytes = 4096;
  const uint32_t stride = (GRASS_SLOT_DATA_OFFSET + data_bytes + 4095) & ~4095u;
  uint8_t* buffer = managed<uint8_t>(GRASS_HEADER_BYTES + slots * stride);
  uint8_t* memory = managed<uint8_t>(1 << 20);
  for (int i = 0; i < (1 << 20); i++) memory[i] = (uint8_t)(i * 13 + (i >> 9));
  grass_monitor* mon = managed<grass_monitor>();
  Host h{mon, {}};
  for (int i = 0; i < 32; i++) h.key[i] = (uint8_t)(3 * i + 1);
  mon->buffer = buffer;
  mon->slot_count = slots;
  mon->slot_bytes = stride;
  mon->slot_data_bytes = data_bytes;
  grass_hmac_key_init(&mon->key, h.key, 32);
  mon->instance = 0xabcdef;
  mon->mem.ranges[0] = {0, 1 << 20, memory};
  mon->mem.count = 1;
  grass_crc32_tables_init(&mon->crc);
  for (uint32_t i = 0; i <= slots; i++) mon->arenas[i] = {managed<uint8_t>(64 << 10), 64 << 10, 0, 0};
  mon->arenas[slots].bytes = 5000;
  mon->arenas[slots].id = grass_result_id(mon, slots);
  mon->scratch = managed<uint8_t>(data_bytes);

  // Page tables in the target memory: a 4 KiB page at 0xffffc90000401000 -> phys 0x5000.
  auto set = [&](uint64_t table, uint64_t index, uint64_t entry) { memcpy(memory + table + index * 8, &entry, 8); };
  const uint64_t va = 0xffffc90000401000ull;
  set(0x1000, (va >> 39) & 511, 0x2000 | 1);
  set(0x2000, (va >> 30) & 511, 0x3000 | 1);
  set(0x3000, (va >> 21) & 511, 0x4000 | 1);
  set(0x4000, (va >> 12) & 511, 0x5000 | 1);
  mon->paging = {0x1000, 4, 0, 0, 0};

  uint64_t* out = managed<uint64_t>(3);
  walk_on_device<<<1, 1>>>(&mon->mem, 0x1000, va + 0x18, out);
  CUDA(cudaDeviceSynchronize());
  CHECK(out[0] == 1 && out[1] == 0x5018);

  h.post(0, 1, GRASS_OP_HEARTBEAT, {});
  if (h.pass()) return 2;
  CHECK(h.slot(0)->reply_mark == 1 && h.slot(0)->reply.status == GRASS_OK);
  grass_buffer_header* hd = (grass_buffer_header*)buffer;
  CHECK(hd->liveness_counter == 1 && hd->liveness_version == 2 && hd->requests_served == 1);

  h.post(1, 5, GRASS_OP_HEARTBEAT, {}, true);
  if (h.pass()) return 2;
  CHECK(h.slot(1)->reply.status == GRASS_E_BAD_MAC);
  h.post(0, 1, GRASS_OP_HEARTBEAT, {});
  h.slot(0)->request_mark = 1;
  mon->last_mark[0] = 0;  // make the monitor look at the same seq again: a replay
  if (h.pass()) return 2;
  CHECK(h.slot(0)->reply.status == GRASS_E_REPLAY);

  // A kernel-virtual read through the page tables, with the reply's CRC checked on the host.
  h.post(0, 2, GRASS_OP_READ, {GRASS_SPACE_KERNEL, va + 100, 3000, 0});
  if (h.pass()) return 2;
  grass_reply r = h.slot(0)->reply;
  uint8_t* data = grass_slot_data(mon, 0);
  static grass_crc32_tables crc;
  grass_crc32_tables_init(&crc);
  CHECK(r.status == GRASS_OK && r.data_bytes == 3000 && memcmp(data, memory + 0x5000 + 100, 3000) == 0);
  CHECK(grass_crc32(&crc, data, 3000) == r.data_crc32);
  h.post(0, 3, GRASS_OP_READ, {GRASS_SPACE_KERNEL, va + 4096, 8, 0});
  if (h.pass()) return 2;
  CHECK(h.slot(0)->reply.status == GRASS_E_UNMAPPED && h.slot(0)->reply.detail == va + 4096);
  // Chunked: DESCRIBE's 5000 bytes in a 4096-byte data area.
  h.post(1, 6, GRASS_OP_DESCRIBE, {});
  if (h.pass()) return 2;
  r = h.slot(1)->reply;
  CHECK(r.status == GRASS_OK && r.total_bytes == 5000 && r.data_bytes == 4096);
  h.post(1, 7, GRASS_OP_FETCH_RESULT, {r.result_id, 4096});
  if (h.pass()) return 2;
  CHECK(h.slot(1)->reply.status == GRASS_OK && h.slot(1)->reply.data_bytes == 904 && h.slot(1)->reply.offset == 4096);

  // Where a heartbeat's GPU time goes (one thread, as the persistent kernel's monitor thread).
  uint64_t* ns = managed<uint64_t>(6);
  grass_request* q = managed<grass_request>();
  h.post(0, 100, GRASS_OP_HEARTBEAT, {});
  *q = h.slot(0)->request;
  time_heartbeat_path<<<1, 1>>>(mon, q, ns, 200);
  CUDA(cudaDeviceSynchronize());
  CHECK(h.slot(0)->reply_mark == 100 && h.slot(0)->reply.status == GRASS_OK);
  printf("{\"heartbeatPathNs\":{\"passAnsweringHeartbeat\":%llu,\"passIdle\":%llu,\"requestHmac\":%llu,\"sha256Compress\":%llu,\"threadfenceSystem\":%llu}}\n",
         (unsigned long long)ns[0], (unsigned long long)ns[1], (unsigned long long)ns[2], (unsigned long long)ns[3], (unsigned long long)ns[4]);

  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  printf("cuda_selftest on %s: %d checks, %d failed\n", prop.name, checks, failures);
  return failures ? 1 : 0;
}
