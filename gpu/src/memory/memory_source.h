// Layer 1 on the host: opens a target's physical memory (a QEMU guest's RAM file with its memory
// map, a /dev/pmem-style device, an ELF vmcore, a kdump-compressed dump) by mapping it, never
// copying it (a compressed dump's pages are decompressed on first touch: kdump_source.h).
#ifndef GRASS_MEMORY_SOURCE_H
#define GRASS_MEMORY_SOURCE_H

#include <stdint.h>
#include <stdio.h>
#include <memory>
#include <string>
#include <vector>
#include "phys_map.h"

namespace grass {

class KdumpImage;

inline std::string hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
  return b;
}

struct FileRange {
  uint64_t phys_start;
  uint64_t length;
  uint64_t file_offset;
};

// What a source is, for the agent's ready line (the extension's Targets view shows it).
struct SourceInfo {
  std::string kind;         // qemu-ram, vmcore, pmem
  std::string format;       // ram, elf, kdump
  std::string compression;  // kdump: zlib, lzo, snappy, zstd (joined by +) or uncompressed; else empty
  bool flattened = false;   // kdump: makedumpfile -F's form
  int dump_level = -1;      // kdump: its header's; -1 where the format records none
  uint64_t file_bytes = 0;
  uint64_t excluded_pages = 0;  // RAM the dump left out
};

class MemorySource {
 public:
  // spec: "qemu-ram:PATH[?map=F]", "vmcore:PATH" (ELF, or makedumpfile's kdump format, plain or
  // flattened) or "pmem:PATH"; map_file overrides ?map=.
  // Throws std::runtime_error naming the file and what is wrong with it.
  static MemorySource open(const std::string& spec, const std::string& map_file, bool writable);
  MemorySource(MemorySource&& o) noexcept;
  MemorySource(const MemorySource&) = delete;
  ~MemorySource();

  const grass_phys_map& phys() const { return phys_; }
  const std::vector<FileRange>& ranges() const { return ranges_; }
  const std::string& describe() const { return description_; }
  const SourceInfo& info() const { return info_; }
  uint64_t phys_end() const;  // highest physical address + 1
  // The dump's own VMCOREINFO (a kdump header holds it), empty when the format has none here.
  const std::string& vmcoreinfo() const { return vmcoreinfo_; }
  // Pages are filled on demand by a thread of the agent's (kdump): no device may map them.
  bool filled_on_demand() const { return kdump_ != nullptr; }

 private:
  MemorySource() = default;
  void map_file(const std::string& path, bool writable);
  void set_ranges(std::vector<FileRange> ranges);
  void open_kdump(const std::string& path);
  void open_elf(const std::string& path);

  std::string description_, vmcoreinfo_;
  SourceInfo info_;
  std::unique_ptr<KdumpImage> kdump_;
  uint8_t* map_ = nullptr;
  uint64_t map_bytes_ = 0;
  std::vector<FileRange> ranges_;
  grass_phys_map phys_{};
  // An ELF vmcore's excluded pages (PT_LOAD memory past its file data): clear in dumped_bits_,
  // backed by excluded_map_ (zeros, for scans of raw memory).
  std::vector<uint64_t> dumped_bits_;
  uint8_t* excluded_map_ = nullptr;
  uint64_t excluded_map_bytes_ = 0;
};

// Parses a memory-map JSON ({"ramFile": ..., "ranges": [{"physStart","length","fileOffset"}]}).
std::vector<FileRange> parse_memory_map(const std::string& json_text, std::string* ram_file);
// q35's layout of a RAM file of this size: all below 4 GiB when RAM < 0xb0000000, else the first
// 2 GiB at 0 and the rest at 4 GiB (QEMU's pc_q35_init).
std::vector<FileRange> q35_layout(uint64_t ram_bytes);
// PT_LOAD segments of an ELF64 core file (p_paddr, p_offset, p_filesz).
std::vector<FileRange> elf_core_layout(const uint8_t* file, uint64_t file_bytes, const std::string& name);
// The whole pages of PT_LOAD memory past each segment's file data (p_filesz to p_memsz): what a
// dump level left out. Call after elf_core_layout accepted the file.
std::vector<FileRange> elf_core_excluded(const uint8_t* file);

}  // namespace grass

#endif
