// Layer 4 on the host: lays out the GRASS buffer, builds the target description, and prepares
// the monitor (grass_monitor) that the backend runs.
#ifndef GRASS_SERVER_BUFFER_SETUP_H
#define GRASS_SERVER_BUFFER_SETUP_H

#include <memory>
#include <string>
#include <vector>

#include "monitor.h"
#include "discovery/btf_types.h"
#include "discovery/discovery.h"

namespace grass {

struct BufferOptions {
  uint32_t slot_count = 8;
  uint32_t slot_data_bytes = 1u << 20;
  uint64_t result_bytes = 16u << 20;  // per slot, for replies streamed in chunks
  bool allow_writes = false;
};

// The description blob (grass_description_header and its sections).
std::vector<uint8_t> build_description(const Target& t, const MemorySource& memory);

// A shared-memory file holding the buffer (shm transport). Removed on destruction.
class ShmBuffer {
 public:
  ShmBuffer(const std::string& path, uint64_t bytes);  // throws naming the path
  ~ShmBuffer();
  ShmBuffer(const ShmBuffer&) = delete;
  uint8_t* data() const { return data_; }
  uint64_t bytes() const { return bytes_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  uint8_t* data_ = nullptr;
  uint64_t bytes_ = 0;
  int fd_ = -1;  // kept open: it holds the agent's lock on the buffer
};

uint64_t buffer_bytes(const BufferOptions& o);
uint32_t slot_stride(const BufferOptions& o);

// Owns the monitor's memory (arenas, scratch, what the plugins allocate) for the cpu backend.
struct MonitorSetup {
  std::unique_ptr<grass_monitor> monitor;
  std::vector<std::unique_ptr<uint8_t[]>> arenas;  // left uninitialised: pages are touched only when used
  std::vector<uint8_t> description;
  std::vector<uint8_t> scratch;
  std::vector<std::shared_ptr<void>> plugin_memory;
};

// Initialises the header (magic last) and the monitor state, every plugin off. key: 32 bytes.
MonitorSetup prepare_monitor(uint8_t* buffer, const BufferOptions& o, const uint8_t key[32], uint64_t instance,
                             const grass_phys_map& mem, const grass_paging& paging, std::vector<uint8_t> description);

// What a plugin's resolve entry point (plugins.h) works on: the target, and the monitor it sets up.
struct PluginSetup {
  const BtfTypes& btf;
  const Target& target;
  MonitorSetup& setup;
  std::vector<std::string> warnings;  // a plugin that resolved only in part, or not at all, says why

  // count zeroed Ts, kept as long as the monitor.
  template <typename T>
  T* allocate(uint64_t count) {
    std::shared_ptr<T> p(new T[count](), std::default_delete<T[]>());
    setup.plugin_memory.push_back(p);
    return p.get();
  }
};

// Resolves every plugin of the list, in its order; throws when a plugin the agent cannot serve
// without (the process list) does not resolve. Returns the warnings.
std::vector<std::string> resolve_plugins(const BtfTypes& btf, const Target& target, MonitorSetup& setup);

}  // namespace grass

#endif
