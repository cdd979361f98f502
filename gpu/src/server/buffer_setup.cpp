#include "buffer_setup.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace grass {

namespace {

uint64_t align8(uint64_t v) { return (v + 7) & ~7ull; }

}  // namespace

std::vector<uint8_t> build_description(const Target& t, const MemorySource& memory) {
  grass_description_header h{};
  std::vector<uint8_t> out(align8(sizeof h));
  auto append = [&](const void* p, uint64_t n, uint64_t* offset, uint64_t* bytes) {
    *offset = out.size();
    if (bytes) *bytes = n;
    out.insert(out.end(), (const uint8_t*)p, (const uint8_t*)p + n);
    out.resize(align8(out.size()));
  };
  h.version = GRASS_PROTOCOL_VERSION;
  h.paging_levels = t.paging.levels;
  h.kaslr_offset = t.kaslr_offset;
  h.phys_base = t.phys_base;
  h.page_offset_base = t.paging.page_offset_base;
  h.page_table_root = t.paging.root_phys;
  h.cpu_count = t.cpu_count;
  std::vector<grass_memory_range> ranges;
  for (auto& r : memory.ranges()) ranges.push_back({r.phys_start, r.length});
  h.memory_range_count = (uint32_t)ranges.size();
  append(ranges.data(), ranges.size() * sizeof(grass_memory_range), &h.memory_map_offset, nullptr);
  append(t.release.data(), t.release.size(), &h.release_offset, &h.release_bytes);
  append(t.vmcoreinfo.data(), t.vmcoreinfo.size(), &h.vmcoreinfo_offset, &h.vmcoreinfo_bytes);
  append(t.symbols_text.data(), t.symbols_text.size(), &h.symbols_offset, &h.symbols_bytes);
  append(t.btf.data(), t.btf.size(), &h.btf_offset, &h.btf_bytes);
  memcpy(out.data(), &h, sizeof h);
  return out;
}

uint32_t slot_stride(const BufferOptions& o) {
  return (uint32_t)((GRASS_SLOT_DATA_OFFSET + (uint64_t)o.slot_data_bytes + 4095) & ~4095ull);
}

uint64_t buffer_bytes(const BufferOptions& o) { return GRASS_HEADER_BYTES + (uint64_t)o.slot_count * slot_stride(o); }

ShmBuffer::ShmBuffer(const std::string& path, uint64_t bytes) : path_(path), bytes_(bytes) {
  unlink(path.c_str());  // a stale buffer of an earlier agent must not be mistaken for ours
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) throw std::runtime_error("cannot create the buffer file " + path + ": " + strerror(errno));
  if (ftruncate(fd, (off_t)bytes) != 0) {
    int e = errno;
    close(fd);
    unlink(path.c_str());
    throw std::runtime_error("cannot size the buffer file " + path + ": " + strerror(e));
  }
  // A read lock on the first word, held while this process lives (the kernel drops it when the
  // process dies): clients tell a dead agent from a stuck one with F_OFD_GETLK (src/rdma/shm.ts).
  struct flock alive = {};
  alive.l_type = F_RDLCK;
  alive.l_whence = SEEK_SET;
  alive.l_len = 8;
  void* p = fcntl(fd, F_OFD_SETLK, &alive) == 0 ? mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  if (p == MAP_FAILED) {
    int e = errno;
    close(fd);
    unlink(path.c_str());
    throw std::runtime_error("cannot lock or map the buffer file " + path + ": " + strerror(e));
  }
  fd_ = fd;
  data_ = (uint8_t*)p;
}

ShmBuffer::~ShmBuffer() {
  munmap(data_, bytes_);
  unlink(path_.c_str());
  close(fd_);
}

MonitorSetup prepare_monitor(uint8_t* buffer, const BufferOptions& o, const uint8_t key[32], uint64_t instance,
                             const grass_phys_map& mem, const grass_paging& paging, std::vector<uint8_t> description) {
  if (o.slot_count == 0 || o.slot_count > GRASS_MAX_SLOTS) throw std::runtime_error("slot count must be 1.." + std::to_string(GRASS_MAX_SLOTS));
  if (o.slot_data_bytes < 4096) throw std::runtime_error("slot data area must be at least 4096 bytes");
  MonitorSetup s;
  s.monitor.reset(new grass_monitor());
  grass_monitor* m = s.monitor.get();
  memset(m, 0, sizeof *m);
  m->buffer = buffer;
  m->slot_count = o.slot_count;
  m->slot_bytes = slot_stride(o);
  m->slot_data_bytes = o.slot_data_bytes;
  m->allow_writes = o.allow_writes ? 1 : 0;
  grass_hmac_key_init(&m->key, key, 32);
  m->instance = instance;
  m->mem = mem;
  m->paging = paging;
  grass_crc32_tables_init(&m->crc);
  for (uint32_t i = 0; i < o.slot_count; i++) {
    s.arenas.emplace_back(new uint8_t[o.result_bytes]);
    m->arenas[i] = {s.arenas[i].get(), o.result_bytes, 0, 0};
  }
  s.description = std::move(description);
  grass_result_arena* d = &m->arenas[o.slot_count];
  *d = {s.description.data(), s.description.size(), 0, s.description.size()};
  d->id = grass_result_id(m, o.slot_count);
  s.scratch.resize(o.slot_data_bytes);
  m->scratch = s.scratch.data();

  memset(buffer, 0, buffer_bytes(o));
  grass_buffer_header* h = (grass_buffer_header*)buffer;
  h->version = GRASS_PROTOCOL_VERSION;
  h->header_bytes = GRASS_HEADER_BYTES;
  h->buffer_bytes = buffer_bytes(o);
  h->slot_count = o.slot_count;
  h->slot_bytes = m->slot_bytes;
  h->slot_data_bytes = o.slot_data_bytes;
  h->flags = o.allow_writes && mem.writable ? GRASS_AGENT_WRITES_ALLOWED : 0;
  h->instance = instance;
  grass_fence();
  grass_store_mark(&h->magic, GRASS_MAGIC);  // last: a client that sees the magic sees the rest
  grass_fence();
  return s;
}

std::vector<std::string> resolve_plugins(const BtfTypes& btf, const Target& target, MonitorSetup& setup) {
  PluginSetup s{btf, target, setup, {}};
#define GRASS_PLUGIN_RESOLVE_(Y, name, resolve, tick, ops) resolve(s);
  GRASS_PLUGIN_LIST(GRASS_PLUGIN_RESOLVE_, )
#undef GRASS_PLUGIN_RESOLVE_
  return s.warnings;
}

}  // namespace grass
