// A C++ client of the GRASS buffer for the device run (the device machine has no node): signs
// requests with the agent's own HMAC code (checked against OpenSSL by test_crypto), posts them
// into the shm buffer and waits for replies, as the TypeScript client does.
//   grass_probe SHM KEY_FILE dump OUT PAGE_OFFSET_BASE   every reply of a fixed request set, byte for byte
//   grass_probe SHM KEY_FILE bench HEARTBEATS            latencies and throughput, one JSON line
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "../src/server/monitor.h"

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

[[noreturn]] void fail(const std::string& m) {
  fprintf(stderr, "grass_probe: %s\n", m.c_str());
  exit(1);
}

struct Reply {
  grass_reply head;
  std::vector<uint8_t> data;  // the whole result (every chunk fetched)
  bool lost = false;
};

struct Client {
  uint8_t* buf = nullptr;
  grass_buffer_header* hd = nullptr;
  uint8_t key[32];
  uint64_t seq[GRASS_MAX_SLOTS] = {};

  Client(const char* path, const char* key_file) {
    int fd = open(path, O_RDWR);
    if (fd < 0) fail(std::string("cannot open ") + path);
    struct stat st;
    fstat(fd, &st);
    buf = (uint8_t*)mmap(nullptr, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (buf == MAP_FAILED) fail("mmap failed");
    hd = (grass_buffer_header*)buf;
    if (__atomic_load_n(&hd->magic, __ATOMIC_ACQUIRE) != GRASS_MAGIC) fail("no GRASS buffer in the file");
    std::ifstream in(key_file);
    std::string hex;
    in >> hex;
    if (hex.size() != 64) fail("key file: 64 hex digits expected");
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)strtoul(hex.substr(2 * i, 2).c_str(), nullptr, 16);
    for (uint32_t i = 0; i < hd->slot_count; i++) seq[i] = __atomic_load_n(&slot(i)->reply_mark, __ATOMIC_ACQUIRE);
  }
  grass_slot_header* slot(uint32_t i) { return (grass_slot_header*)(buf + GRASS_HEADER_BYTES + (uint64_t)i * hd->slot_bytes); }
  uint8_t* data(uint32_t i) { return (uint8_t*)slot(i) + GRASS_SLOT_DATA_OFFSET; }

  // Posts one request and waits up to timeout for its reply; lost when none came.
  Reply call(uint32_t i, uint32_t op, std::vector<uint64_t> args, uint64_t timeout_ns = 2000000000ull) {
    Reply r;
    call_into(r, i, op, args, timeout_ns);
    return r;
  }
  // The same into r, whose data buffer is kept from one call to the next (as a client reuses its
  // receive buffer), so a throughput run does not time the allocator's page faults.
  void call_into(Reply& r, uint32_t i, uint32_t op, std::vector<uint64_t> args, uint64_t timeout_ns = 2000000000ull) {
    grass_request q{};
    q.seq = ++seq[i];
    q.opcode = op;
    for (size_t k = 0; k < args.size(); k++) q.args[k] = args[k];
    grass_hmac m;
    grass_hmac_init(&m, key, 32);
    grass_hmac_update(&m, &hd->instance, 8);
    grass_hmac_update(&m, &i, 4);
    grass_hmac_update(&m, &q, offsetof(grass_request, mac));
    grass_hmac_final(&m, q.mac);
    grass_slot_header* s = slot(i);
    memcpy(&s->request, &q, sizeof q);
    __atomic_store_n(&s->request_mark, q.seq, __ATOMIC_RELEASE);
    r.lost = false;
    uint64_t start = now_ns();
    while (__atomic_load_n(&s->reply_mark, __ATOMIC_ACQUIRE) != q.seq) {
      if (now_ns() - start > timeout_ns) { r.lost = true; r.data.clear(); return; }
    }
    memcpy(&r.head, &s->reply, sizeof r.head);
    r.data.assign(data(i), data(i) + std::min<uint64_t>(r.head.data_bytes, hd->slot_data_bytes));
  }
  // The whole result: the first chunk, then FETCH_RESULT until total_bytes.
  Reply call_all(uint32_t i, uint32_t op, std::vector<uint64_t> args) {
    Reply r = call(i, op, args);
    while (!r.lost && r.head.status == GRASS_OK && r.data.size() < r.head.total_bytes) {
      Reply c = call(i, GRASS_OP_FETCH_RESULT, {r.head.result_id, r.data.size()});
      if (c.lost || c.head.status != GRASS_OK || c.head.data_bytes == 0) { r.head.status = c.lost ? 0xffffffffu : c.head.status; break; }
      r.data.insert(r.data.end(), c.data.begin(), c.data.end());
    }
    return r;
  }
};

void put(FILE* f, const char* what, const Reply& r) {
  // The reply as it came (seq, status, sizes, result id, detail, CRC), then the result's bytes.
  fprintf(f, "%s lost=%d status=%u total=%llu detail=%llx crc=%08x bytes=%zu\n", what, r.lost, r.head.status,
          (unsigned long long)r.head.total_bytes, (unsigned long long)r.head.detail, r.head.data_crc32, r.data.size());
  fwrite(r.data.data(), 1, r.data.size(), f);
  fputc('\n', f);
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, (size_t)(p * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) fail("usage: grass_probe SHM KEY_FILE dump OUT PAGE_OFFSET_BASE | bench HEARTBEATS | bulk OUT BYTES");
  Client c(argv[1], argv[2]);
  std::string mode = argv[3];
  if (mode == "dump") {
    if (argc < 6) fail("dump needs OUT and PAGE_OFFSET_BASE");
    uint64_t pob = strtoull(argv[5], nullptr, 0);
    FILE* f = fopen(argv[4], "wb");
    put(f, "describe", c.call_all(0, GRASS_OP_DESCRIBE, {}));
    put(f, "process-count", c.call_all(1, GRASS_OP_PROCESS_COUNT, {0}));
    put(f, "process-list", c.call_all(1, GRASS_OP_PROCESS_LIST, {0}));
    put(f, "process-list-threads-idle", c.call_all(2, GRASS_OP_PROCESS_LIST, {GRASS_PS_THREADS | GRASS_PS_IDLE}));
    const uint64_t phys[] = {0, 0x1000, 0x100000, 0x1000000, 0x3000000, 0x7fff000};
    for (uint64_t p : phys) put(f, ("read-phys-" + std::to_string(p)).c_str(), c.call_all(3, GRASS_OP_READ, {GRASS_SPACE_PHYSICAL, p, 4096, 0}));
    put(f, "read-phys-4MiB", c.call_all(3, GRASS_OP_READ, {GRASS_SPACE_PHYSICAL, 0x1000000, 4u << 20, 0}));
    put(f, "read-kernel-direct-map", c.call_all(4, GRASS_OP_READ, {GRASS_SPACE_KERNEL, pob + 0x1000000, 65536, 0}));
    put(f, "read-phys-beyond-ram", c.call_all(4, GRASS_OP_READ, {GRASS_SPACE_PHYSICAL, 0xfff0000000ull, 64, 0}));
    put(f, "read-kernel-unmapped", c.call_all(4, GRASS_OP_READ, {GRASS_SPACE_KERNEL, 0xffffffffff000000ull, 64, 0}));
    fclose(f);
    return 0;
  }
  if (mode == "bench") {
    uint64_t n = strtoull(argv[4], nullptr, 0);
    std::vector<double> hb;
    hb.reserve(n);
    uint64_t lost = 0, stale = 0;
    for (uint64_t k = 0; k < n; k++) {
      uint64_t t0 = now_ns();
      Reply r = c.call(0, GRASS_OP_HEARTBEAT, {}, 1000000000ull);
      uint64_t t1 = now_ns();
      if (r.lost) { lost++; continue; }
      if (r.head.seq != c.seq[0] || r.head.status != GRASS_OK) stale++;
      hb.push_back((t1 - t0) / 1000.0);
    }
    std::vector<double> ps;
    uint64_t tasks = 0;
    for (int k = 0; k < 200; k++) {
      uint64_t t0 = now_ns();
      Reply r = c.call_all(1, GRASS_OP_PROCESS_LIST, {0});
      ps.push_back((now_ns() - t0) / 1000.0);
      tasks = r.data.size() / sizeof(grass_task_record);
    }
    // Physical reads of one slot's data area each (1 MiB by default) over the first 64 MiB.
    uint64_t chunk = c.hd->slot_data_bytes, total = 0;
    Reply r;
    uint64_t t0 = now_ns();
    for (int rep = 0; rep < 4; rep++)
      for (uint64_t p = 0; p < (64ull << 20); p += chunk) {
        c.call_into(r, 2, GRASS_OP_READ, {GRASS_SPACE_PHYSICAL, p, chunk, 0});
        if (r.lost || r.head.status != GRASS_OK) fail("read failed during the throughput run");
        total += r.data.size();
      }
    double read_s = (now_ns() - t0) / 1e9;
    printf("{\"heartbeats\":%llu,\"lost\":%llu,\"stale\":%llu,\"heartbeatUs\":{\"median\":%.2f,\"p99\":%.2f,\"max\":%.2f,\"min\":%.2f},"
           "\"processList\":{\"tasks\":%llu,\"medianUs\":%.1f,\"p99Us\":%.1f},\"read\":{\"chunkBytes\":%llu,\"bytes\":%llu,\"MBps\":%.1f}}\n",
           (unsigned long long)n, (unsigned long long)lost, (unsigned long long)stale, pct(hb, 0.5), pct(hb, 0.99), pct(hb, 1.0), pct(hb, 0.0),
           (unsigned long long)tasks, pct(ps, 0.5), pct(ps, 0.99), (unsigned long long)chunk, (unsigned long long)total, total / read_s / 1e6);
    return 0;
  }
  if (mode == "bulk") {
    // GRASS_OP_BULK_READ of physical [0, BYTES) (every page, no bitmap), one slot data area per
    // request, the bytes written to OUT as they come: the stream that save-vmcore reads.
    if (argc < 6) fail("bulk needs OUT and BYTES");
    uint64_t bytes = strtoull(argv[5], nullptr, 0), chunk = c.hd->slot_data_bytes, total = 0;
    FILE* f = fopen(argv[4], "wb");
    if (!f) fail("cannot write the bulk file");
    Reply r;
    uint64_t t0 = now_ns();
    for (uint64_t p = 0; p < bytes; p += chunk) {
      uint64_t n = bytes - p < chunk ? bytes - p : chunk;
      c.call_into(r, 0, GRASS_OP_BULK_READ, {p, n});
      if (r.lost || r.head.status != GRASS_OK || r.data.size() != n) fail("bulk read failed at " + std::to_string(p));
      fwrite(r.data.data(), 1, r.data.size(), f);
      total += n;
    }
    double s = (now_ns() - t0) / 1e9;
    fclose(f);
    printf("{\"bulk\":{\"chunkBytes\":%llu,\"bytes\":%llu,\"MBps\":%.1f}}\n", (unsigned long long)chunk, (unsigned long long)total, total / s / 1e6);
    return 0;
  }
  fail("unknown mode " + mode);
}
