// Agent-side service time of requests, without any client or transport: discovery on a real
// memory image, then requests posted in-process (signed with OpenSSL) and answered by one
// monitor pass each. Prints one line per figure, next to memcpy of the same size.
//   build/bench_monitor --memory qemu-ram:PATH --memory-map F
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "server/buffer_setup.h"

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

struct Poster {
  grass_monitor* mon;
  uint8_t key[32];
  uint64_t seq = 0;
  void post(uint32_t op, std::vector<uint64_t> args) {
    grass_request q{};
    q.seq = ++seq;
    q.opcode = op;
    for (size_t k = 0; k < args.size(); k++) q.args[k] = args[k];
    uint8_t msg[12 + offsetof(grass_request, mac)];
    uint32_t slot = 0;
    memcpy(msg, &mon->instance, 8);
    memcpy(msg + 8, &slot, 4);
    memcpy(msg + 12, &q, offsetof(grass_request, mac));
    unsigned n;
    HMAC(EVP_sha256(), key, 32, msg, sizeof msg, q.mac, &n);
    grass_slot_header* h = grass_slot(mon, 0);
    memcpy(&h->request, &q, sizeof q);
    h->request_mark = q.seq;
  }
  // Median time of post + one pass, in ns.
  double time(uint32_t op, std::vector<uint64_t> args, int runs) {
    std::vector<double> v;
    for (int r = 0; r < runs; r++) {
      uint64_t t0 = now_ns();
      post(op, args);
      grass_monitor_pass(mon, t0);
      v.push_back((double)(now_ns() - t0));
      if (grass_slot(mon, 0)->reply.status != GRASS_OK) { fprintf(stderr, "op %u failed: status %u\n", op, grass_slot(mon, 0)->reply.status); exit(1); }
    }
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string memory, map;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--memory")) memory = argv[i + 1];
    if (!strcmp(argv[i], "--memory-map")) map = argv[i + 1];
  }
  grass::MemorySource src = grass::MemorySource::open(memory, map, false);
  grass::Target t = grass::discover(src, "", "");
  grass::BtfTypes btf(t.btf);
  grass::BufferOptions o;
  std::vector<uint8_t> buffer(grass::buffer_bytes(o));
  Poster p;
  for (int i = 0; i < 32; i++) p.key[i] = (uint8_t)i;
  grass::MonitorSetup setup = grass::prepare_monitor(buffer.data(), o, p.key, 42, src.phys(), t.paging, grass::build_description(t, src));
  // The process list only: the service times of requests, without the metrics and detectors' ticks.
  grass::PluginSetup plugins{btf, t, setup, {}};
  grass::resolve_process_list_plugin(plugins);
  p.mon = setup.monitor.get();
  grass_fault f{};
  grass_ps_ctx c = {&src.phys(), &t.paging, &setup.monitor->ps, &f};
  uint64_t n = 0;
  grass_ps_walk(&c, 0, nullptr, 0, &n);
  printf("heartbeat            %9.1f us\n", p.time(GRASS_OP_HEARTBEAT, {}, 2001) / 1e3);
  printf("process count (%3llu)  %9.1f us\n", (unsigned long long)n, p.time(GRASS_OP_PROCESS_COUNT, {0}, 501) / 1e3);
  printf("process list (%3llu)   %9.1f us\n", (unsigned long long)n, p.time(GRASS_OP_PROCESS_LIST, {0}, 501) / 1e3);
  uint64_t banner = t.symbol("linux_banner");
  printf("kernel read 64 B     %9.1f us\n", p.time(GRASS_OP_READ, {GRASS_SPACE_KERNEL, banner, 64, 0}, 2001) / 1e3);
  std::vector<uint8_t> dst(1 << 20);
  for (uint64_t size : {64ull << 10, 1ull << 20}) {
    double ns = p.time(GRASS_OP_READ, {GRASS_SPACE_PHYSICAL, 1 << 20, size, 0}, 201);
    std::vector<double> m;
    const uint8_t* from = grass_phys_ptr(&src.phys(), 1 << 20, size);
    for (int r = 0; r < 201; r++) {
      uint64_t t0 = now_ns();
      memcpy(dst.data(), from, size);
      __asm__ volatile("" ::: "memory");
      m.push_back((double)(now_ns() - t0));
    }
    std::sort(m.begin(), m.end());
    printf("physical read %4llu KiB %7.1f us = %6.0f MB/s (memcpy %6.0f MB/s, ratio %.2f)\n", (unsigned long long)(size >> 10), ns / 1e3,
           size / ns * 1e3, size / m[100] * 1e3, m[100] / ns);
  }
  return 0;
}
