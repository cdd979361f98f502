// grass-agent: reads a target kernel's memory from outside and serves it through the GRASS
// buffer (DESIGN.md §3.1-3.3, §6). Host-only set-up; the monitor loop runs on the backend.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/random.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "backend/backend.h"
#include "discovery/btf_types.h"
#include "discovery/discovery.h"
#include "memory/memory_source.h"
#include "server/buffer_setup.h"
#include "transport/rdma_endpoint.h"

namespace {

const char kUsage[] =
    "usage: grass-agent --memory <qemu-ram:PATH[?map=F]|vmcore:PATH|pmem:PATH> [--memory-map F]\n"
    "                   [--kallsyms F] [--btf F] (--listen shm:PATH | --listen rdma://HOST[:PORT] --peer ADDR...\n"
    "                   | --connect rdma://MONITOR[:PORT]) [--name NAME] --key-file F [--allow-writes]\n"
    "                   [--liveness-period-ms N]   (liveness republished at most every N ms; RDMA: 100)\n"
    "                   [--backend cpu|cuda] [--slots N] [--slot-data-bytes N] [--exit-with-parent]\n"
    "                   [--workers N]   (cpu backend: monitor threads, default half the CPUs, at most 16)\n"
    "                   [--spin-us N] [--idle-nap-us N]   (cpu backend: spin N us after a request, default\n"
    "                   20000, then nap N us between passes, default 50; many agents on few cores: 0, 20000)\n"
    "                   [--watch-pid PID]   (exit when that process, e.g. the guest's QEMU, exits)\n";

struct Options {
  std::string memory, memory_map, kallsyms, btf, listen, key_file, backend = "cpu";
  grass::RdmaOptions rdma;  // --connect rdma://, or --listen rdma:// with --peer (docs/rdma.md)
  uint32_t liveness_period_ms = 0;  // 0: every pass (shm), 100 ms over RDMA unless given
  uint32_t workers = 0;             // 0: grass::default_workers()
  grass::CpuPacing pacing;
  grass::BufferOptions buffer;
  bool exit_with_parent = false;
  int watch_pid = 0;
};

[[noreturn]] void usage_error(const std::string& msg) {
  fprintf(stderr, "grass-agent: %s\n%s", msg.c_str(), kUsage);
  exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    auto number = [&]() -> uint32_t {
      std::string v = value();
      char* end;
      unsigned long n = strtoul(v.c_str(), &end, 0);
      if (v.empty() || *end) usage_error(a + ": not a number: " + v);
      return (uint32_t)n;
    };
    if (a == "--memory") o.memory = value();
    else if (a == "--memory-map") o.memory_map = value();
    else if (a == "--kallsyms") o.kallsyms = value();
    else if (a == "--btf") o.btf = value();
    else if (a == "--listen") o.listen = value();
    else if (a == "--connect") o.listen = value(), o.rdma.connect_out = true;
    else if (a == "--peer") o.rdma.peers.push_back(value());
    else if (a == "--name") o.rdma.name = value();
    else if (a == "--liveness-period-ms") o.liveness_period_ms = number();
    else if (a == "--key-file") o.key_file = value();
    else if (a == "--allow-writes") o.buffer.allow_writes = true;
    else if (a == "--backend") o.backend = value();
    else if (a == "--slots") o.buffer.slot_count = number();
    else if (a == "--workers") {
      o.workers = number();
      if (o.workers < 1 || o.workers > GRASS_MAX_WORKERS) usage_error("--workers: expected 1.." + std::to_string(GRASS_MAX_WORKERS));
    }
    else if (a == "--spin-us") o.pacing.spin_ns = (uint64_t)number() * 1000;
    else if (a == "--idle-nap-us") {
      uint32_t us = number();
      if (us < 1 || us > 1000000) usage_error("--idle-nap-us: expected 1..1000000");
      o.pacing.idle_nap_ns = (uint64_t)us * 1000;
    }
    else if (a == "--slot-data-bytes") o.buffer.slot_data_bytes = number();
    else if (a == "--exit-with-parent") o.exit_with_parent = true;
    else if (a == "--watch-pid") o.watch_pid = (int)number();
    else if (a == "--help" || a == "-h") { fputs(kUsage, stdout); exit(0); }
    else usage_error("unknown argument " + a);
  }
  if (o.memory.empty()) usage_error("--memory is required");
  if (o.key_file.empty()) usage_error("--key-file is required");
  if (o.listen.empty()) usage_error("--listen or --connect is required");
#ifndef GRASS_WITH_CUDA
  if (o.backend == "cuda") usage_error("--backend cuda: only build/grass-agent-cuda has it (make cuda-agent)");
#endif
  if (o.backend == "cuda" && o.listen.rfind("shm:", 0) != 0) usage_error("--backend cuda serves shm only (through its NIC stand-in; docs/gpu.md)");
  if (o.backend != "cpu" && o.backend != "cuda") usage_error("--backend " + o.backend + ": expected cpu or cuda");
  if (o.listen.rfind("rdma://", 0) == 0) {
    try {
      o.rdma.address = grass::parse_rdma_address(o.listen);
    } catch (const std::exception& e) {
      usage_error(e.what());
    }
  } else if (o.rdma.connect_out || o.listen.rfind("shm:", 0) != 0) {
    usage_error((o.rdma.connect_out ? "--connect " : "--listen ") + o.listen + ": expected " + (o.rdma.connect_out ? "rdma://MONITOR[:PORT]" : "shm:PATH or rdma://HOST[:PORT]"));
  }
  return o;
}

// 64 hex digits (surrounding whitespace allowed). The key is never printed.
void read_key(const std::string& path, uint8_t key[32]) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the key file " + path + ": " + strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string hex;
  for (char c : ss.str())
    if (!isspace((unsigned char)c)) hex += c;
  if (hex.size() != 64) throw std::runtime_error("key file " + path + ": expected 64 hex digits (32 bytes), found " + std::to_string(hex.size()) + " characters");
  for (int i = 0; i < 32; i++) {
    auto nibble = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      c = (char)tolower((unsigned char)c);
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      throw std::runtime_error("key file " + path + ": not hexadecimal");
    };
    key[i] = (uint8_t)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') { out += '\\'; out += c; }
    else if ((unsigned char)c < 0x20) { char b[8]; snprintf(b, sizeof b, "\\u%04x", c); out += b; }
    else out += c;
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  if (o.exit_with_parent) prctl(PR_SET_PDEATHSIG, SIGTERM);
  // Signals are taken by sigwait below, so the monitor thread never sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  // SIGUSR1 stops the monitor loop and SIGUSR2 starts it again; the transport stays up (drills:
  // the remote must report "monitor dead" while RDMA still works; docs/rdma.md).
  sigaddset(&stop_signals, SIGUSR1);
  sigaddset(&stop_signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  try {
    signal(SIGPIPE, SIG_IGN);  // a reader of stdout/stderr that went away must not kill the agent
    int watch_fd = -1;
    if (o.watch_pid > 0) {
      watch_fd = (int)syscall(SYS_pidfd_open, o.watch_pid, 0);
      if (watch_fd < 0) throw std::runtime_error("--watch-pid " + std::to_string(o.watch_pid) + ": " + strerror(errno));
    }
    uint8_t key[32];
    read_key(o.key_file, key);
    grass::MemorySource memory = grass::MemorySource::open(o.memory, o.memory_map, o.buffer.allow_writes);
    if (memory.filled_on_demand() && o.backend != "cpu")
      throw std::runtime_error(o.memory + ": a kdump-compressed dump is decompressed on the host as it is read; serve it with --backend cpu");
    grass::Target target = grass::discover(memory, o.kallsyms, o.btf);
    grass::BtfTypes btf(target.btf);
    uint64_t instance;
    if (getrandom(&instance, sizeof instance, 0) != sizeof instance) throw std::runtime_error("getrandom failed");
    bool over_rdma = o.listen.rfind("rdma://", 0) == 0;
    std::unique_ptr<grass::ShmBuffer> shm;
    std::unique_ptr<grass::HostBuffer> host;
    if (over_rdma) host.reset(new grass::HostBuffer(grass::buffer_bytes(o.buffer)));
    else shm.reset(new grass::ShmBuffer(o.listen.substr(4), grass::buffer_bytes(o.buffer)));
    uint8_t* buffer_data = over_rdma ? host->data() : shm->data();
    grass::MonitorSetup setup = grass::prepare_monitor(buffer_data, o.buffer, key, instance, memory.phys(), target.paging,
                                                       grass::build_description(target, memory));
    memset(key, 0, sizeof key);
    for (const std::string& w : grass::resolve_plugins(btf, target, setup)) fprintf(stderr, "grass-agent: warning: %s\n", w.c_str());

    // Check the process list once on the host; a broken one is reported, not fatal (reads still work).
    grass_fault f{};
    grass_ps_ctx ctx = {&memory.phys(), &target.paging, &setup.monitor->ps, &f};
    uint64_t processes = 0;
    bool ps_ok = grass_ps_walk(&ctx, 0, nullptr, 0, &processes);
    if (!ps_ok) fprintf(stderr, "grass-agent: warning: the task list does not walk (status %u at %s)\n", f.status, grass::hex(f.address).c_str());
    uint32_t liveness_ms = o.liveness_period_ms ? o.liveness_period_ms : over_rdma ? 100 : 0;
    setup.monitor->liveness_period_ns = (uint64_t)liveness_ms * 1000000;  // see grass_monitor
    grass::Backend backend(o.backend, setup.monitor.get(), buffer_data, grass::buffer_bytes(o.buffer), o.workers, o.pacing);
    backend.start();
    std::unique_ptr<grass::RdmaEndpoint> rdma;
    if (over_rdma) {
      if (o.rdma.name.empty()) o.rdma.name = target.release;
      rdma.reset(new grass::RdmaEndpoint(o.rdma, buffer_data, grass::buffer_bytes(o.buffer)));
      rdma->start();
    }

    std::string page_sizes = "[";
    for (uint64_t size : target.direct_map_pages) page_sizes += (page_sizes.size() > 1 ? "," : "") + std::to_string(size);
    page_sizes += "]";
    // What the memory source is (the Targets view shows it for an offline image).
    const grass::SourceInfo& si = memory.info();
    std::string source = "{\"kind\":" + json_string(si.kind) + ",\"format\":" + json_string(si.format) +
                         ",\"compression\":" + (si.compression.empty() ? std::string("null") : json_string(si.compression)) +
                         ",\"flattened\":" + (si.flattened ? "true" : "false") +
                         ",\"dumpLevel\":" + (si.dump_level < 0 ? std::string("null") : std::to_string(si.dump_level)) +
                         ",\"fileBytes\":" + std::to_string(si.file_bytes) + ",\"excludedPages\":" + std::to_string(si.excluded_pages) + "}";
    printf("{\"ready\":true,\"target\":%s,\"backend\":%s,\"memory\":%s,\"source\":%s,\"discovery\":%s,\"release\":%s,"
           "\"kaslrOffset\":\"%s\",\"physBase\":\"%s\",\"pageOffsetBase\":\"%s\",\"pageTableRoot\":\"%s\",\"pagingLevels\":%u,"
           "\"directMapPageSizes\":%s,\"cpus\":%u,\"symbols\":{\"source\":%s,\"count\":%zu},\"btf\":{\"source\":%s,\"bytes\":%zu},"
           "\"processes\":%s,\"slots\":%u,\"slotDataBytes\":%u,\"workers\":%u,\"writesAllowed\":%s,\"pid\":%d}\n",
           json_string(o.listen).c_str(), json_string(o.backend).c_str(), json_string(memory.describe()).c_str(), source.c_str(), json_string(target.method).c_str(),
           json_string(target.release).c_str(), grass::hex(target.kaslr_offset).c_str(), grass::hex(target.phys_base).c_str(),
           grass::hex(target.paging.page_offset_base).c_str(), grass::hex(target.paging.root_phys).c_str(), target.paging.levels,
           page_sizes.c_str(), target.cpu_count, json_string(target.symbols_source).c_str(), target.symbols.size(),
           json_string(target.btf_source).c_str(), target.btf.size(), ps_ok ? std::to_string(processes).c_str() : "null",
           o.buffer.slot_count, o.buffer.slot_data_bytes, backend.workers(),
           (o.buffer.allow_writes && memory.phys().writable) ? "true" : "false", (int)getpid());
    fflush(stdout);
    fprintf(stderr, "grass-agent: serving %s on %s (%s, %s)\n", memory.describe().c_str(), o.listen.c_str(), target.release.c_str(), target.method.c_str());

    // Serve until a stop signal, or until the watched process (the guest) is gone.
    for (;;) {
      timespec tick = {0, 250000000};
      int sig = sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig == SIGUSR1) { backend.stop(); fprintf(stderr, "grass-agent: monitor loop stopped (SIGUSR1); the transport stays up\n"); continue; }
      if (sig == SIGUSR2) { backend.stop(); backend.start(); fprintf(stderr, "grass-agent: monitor loop running again (SIGUSR2)\n"); continue; }
      if (sig > 0) { fprintf(stderr, "grass-agent: stopping (signal %d)\n", sig); break; }
      if (watch_fd >= 0) {
        pollfd p = {watch_fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0) { fprintf(stderr, "grass-agent: stopping (process %d exited)\n", o.watch_pid); break; }
      }
    }
    backend.stop();
    return 0;
  } catch (const std::exception& e) {
    fprintf(stderr, "grass-agent: %s\n", e.what());
    return 1;
  }
}
