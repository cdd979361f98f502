// Host-side discovery of the target kernel from nothing but its physical memory (files used when
// given): VMCOREINFO (or the banner), paging, symbols (kallsyms tables or text), BTF.
#ifndef GRASS_DISCOVERY_H
#define GRASS_DISCOVERY_H

#include <stdint.h>
#include <string>
#include <set>
#include <unordered_map>
#include <vector>

#include "memory/memory_source.h"
#include "translation/translate.h"

namespace grass {

// x86-64's fixed base of the kernel image mapping (__START_KERNEL_map): an architecture
// constant, the same for every kernel; the image's offset from it is phys_base + KASLR.
constexpr uint64_t kStartKernelMap = 0xffffffff80000000ull;

struct Symbol {
  uint64_t address;
  char type;
  std::string name;
};

struct Target {
  std::string method;             // "vmcoreinfo" or "banner"
  std::string release;            // OSRELEASE
  std::string vmcoreinfo;         // the text as found (empty with the banner fallback)
  uint64_t vmcoreinfo_phys = 0;
  uint64_t kaslr_offset = 0;
  uint64_t phys_base = 0;
  uint64_t page_size = 4096;
  grass_paging paging{};
  std::set<uint64_t> direct_map_pages;  // page sizes seen by the direct-map check
  uint32_t cpu_count = 0;         // nr_cpu_ids
  std::string symbols_source;     // "memory" (kallsyms tables) or the --kallsyms file
  std::string symbols_text;       // kallsyms text "ADDR T name\n"
  std::unordered_map<std::string, uint64_t> symbols;
  std::string btf_source;         // "memory" (.BTF section) or the --btf file
  std::vector<uint8_t> btf;       // raw BTF

  uint64_t symbol(const std::string& name) const;         // throws naming the symbol
  uint64_t symbol_or_zero(const std::string& name) const;
};

// Reads kernel-virtual memory for host-side set-up; throws naming the address on failure.
void read_kernel(const grass_phys_map& m, const grass_paging& pg, uint64_t va, void* dst, uint64_t len, const char* what);
template <typename T>
T read_kernel_value(const grass_phys_map& m, const grass_paging& pg, uint64_t va, const char* what) {
  T v;
  read_kernel(m, pg, va, &v, sizeof v, what);
  return v;
}

// VMCOREINFO "KEY=value" lines.
std::unordered_map<std::string, std::string> parse_vmcoreinfo(const std::string& text);
// Decodes the kernel's own kallsyms tables (6.1 layout; base-relative offsets, absolute or
// relative per-CPU encoding chosen by checking known symbols). vmcoreinfo supplies the tables'
// addresses and the check symbols.
std::vector<Symbol> decode_kallsyms(const grass_phys_map& m, const grass_paging& pg,
                                    const std::unordered_map<std::string, std::string>& vmcoreinfo);
std::vector<Symbol> parse_kallsyms_text(const std::string& text, const std::string& name);

// Everything at once; throws std::runtime_error naming what could not be found.
Target discover(const MemorySource& memory, const std::string& kallsyms_file, const std::string& btf_file);

}  // namespace grass

#endif
