// Memory sources: a RAM file with a memory-map JSON, q35's inferred layout, an ELF core file
// (built here with <elf.h>'s structs), and the errors for bad input.
#include <elf.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "memory/memory_source.h"
#include "check.h"

using grass::MemorySource;

static std::string temp_path(const char* name) {
  static std::string dir;
  if (dir.empty()) {
    char t[] = "/tmp/grass-memtest-XXXXXX";
    dir = mkdtemp(t);
  }
  return dir + "/" + name;
}

static void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write((const char*)bytes.data(), bytes.size());
}

static void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Page n of a file carries n in every 8-byte word, so a mapped pointer shows where it points.
static std::vector<uint8_t> pattern_file(size_t pages) {
  std::vector<uint8_t> v(pages * 4096);
  for (size_t p = 0; p < pages; p++)
    for (size_t w = 0; w < 512; w++) memcpy(&v[p * 4096 + w * 8], &p, 8);
  return v;
}

static uint64_t word_at(const MemorySource& m, uint64_t phys) {
  const uint8_t* p = grass_phys_ptr(&m.phys(), phys, 8);
  uint64_t v = ~0ull;
  if (p) memcpy(&v, p, 8);
  return v;
}

int main() {
  // RAM file with an explicit map: phys 0..16K at file 0, phys 1M..1M+16K at file 16K.
  std::string ram = temp_path("ram"), map = temp_path("map.json");
  write_file(ram, pattern_file(8));
  write_text(map, "{\"ramFile\": \"" + ram + "\", \"ranges\": [{\"physStart\": \"0x100000\", \"length\": \"0x4000\", \"fileOffset\": \"0x4000\"},"
                  " {\"physStart\": \"0x0\", \"length\": \"0x4000\", \"fileOffset\": \"0x0\"}]}");
  {
    MemorySource m = MemorySource::open("qemu-ram:" + ram + "?map=" + map, "", false);
    CHECK(m.phys().count == 2);
    CHECK(word_at(m, 0x0) == 0);
    CHECK(word_at(m, 0x3ff8) == 3);
    CHECK(word_at(m, 0x100000) == 4);
    CHECK(word_at(m, 0x103000) == 7);
    CHECK(grass_phys_ptr(&m.phys(), 0x4000, 8) == nullptr);      // hole between the ranges
    CHECK(grass_phys_ptr(&m.phys(), 0x3ffc, 8) == nullptr);      // straddles a range's end
    CHECK(grass_phys_ptr(&m.phys(), 0x104000, 1) == nullptr);    // past the end
    CHECK(m.phys_end() == 0x104000);
    CHECK(m.phys().writable == 0);
  }
  // --memory-map overrides ?map=; pmem without a map is identity.
  {
    MemorySource m = MemorySource::open("pmem:" + ram, "", false);
    CHECK(m.phys().count == 1 && word_at(m, 5 * 4096) == 5);
  }
  // q35 inference from the RAM size (QEMU's split at 2 GiB once RAM reaches 0xb0000000).
  {
    auto small = grass::q35_layout(256u << 20);
    CHECK(small.size() == 1 && small[0].phys_start == 0 && small[0].length == (256u << 20));
    auto under = grass::q35_layout(0xb0000000ull - 4096);
    CHECK(under.size() == 1);
    auto big = grass::q35_layout(3ull << 30);
    CHECK(big.size() == 2 && big[0].length == 0x80000000ull && big[1].phys_start == 1ull << 32 &&
          big[1].length == 1ull << 30 && big[1].file_offset == 0x80000000ull);
    // A sparse 3 GiB file: phys 4 GiB is file offset 2 GiB.
    std::string sparse = temp_path("sparse");
    write_file(sparse, {});
    CHECK(truncate(sparse.c_str(), 3ll << 30) == 0);
    {
      std::fstream f(sparse, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(0x80000000ll);
      uint64_t marker = 0x4444;
      f.write((const char*)&marker, 8);
    }
    MemorySource m = MemorySource::open("qemu-ram:" + sparse, "", false);
    CHECK(m.phys().count == 2 && word_at(m, 1ull << 32) == 0x4444);
    CHECK(grass_phys_ptr(&m.phys(), 0x90000000ull, 8) == nullptr);  // the PCI hole
    unlink(sparse.c_str());
  }
  // ELF core: two PT_LOADs out of order, a PT_NOTE, a PT_LOAD without file bytes, one whose
  // memory runs a page past its file bytes (how makedumpfile -E leaves excluded pages out).
  {
    std::vector<uint8_t> f(0x3000 + 0x2000, 0);
    Elf64_Ehdr eh{};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_CORE;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_phoff = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 4;
    memcpy(f.data(), &eh, sizeof eh);
    Elf64_Phdr ph[4] = {};
    ph[0].p_type = PT_NOTE; ph[0].p_offset = 0x800; ph[0].p_filesz = 0x10;
    ph[1].p_type = PT_LOAD; ph[1].p_paddr = 0x200000; ph[1].p_offset = 0x3000; ph[1].p_filesz = 0x2000; ph[1].p_memsz = 0x3000;
    ph[2].p_type = PT_LOAD; ph[2].p_paddr = 0x0; ph[2].p_offset = 0x1000; ph[2].p_filesz = 0x2000; ph[2].p_memsz = 0x2000;
    ph[3].p_type = PT_LOAD; ph[3].p_paddr = 0x900000; ph[3].p_offset = 0; ph[3].p_filesz = 0; ph[3].p_memsz = 0x1000;
    memcpy(f.data() + sizeof eh, ph, sizeof ph);
    for (uint64_t v : {0x1000ull, 0x2000ull, 0x3000ull, 0x4000ull}) memcpy(&f[v], &v, 8);
    std::string core = temp_path("vmcore");
    write_file(core, f);
    MemorySource m = MemorySource::open("vmcore:" + core, "", true);
    CHECK(m.phys().count == 4);  // two with data, two of excluded pages
    CHECK(word_at(m, 0x0) == 0x1000 && word_at(m, 0x1000) == 0x2000);
    CHECK(word_at(m, 0x200000) == 0x3000 && word_at(m, 0x201000) == 0x4000);
    CHECK(grass_phys_ptr(&m.phys(), 0x900000, 8) == nullptr);
    CHECK(grass_phys_missing(&m.phys(), 0x900000, 8) == GRASS_E_EXCLUDED);
    CHECK(grass_phys_ptr(&m.phys(), 0x202000, 8) == nullptr);
    CHECK(grass_phys_missing(&m.phys(), 0x202000, 8) == GRASS_E_EXCLUDED);
    CHECK(grass_phys_missing(&m.phys(), 0x201ff8, 16) == GRASS_E_EXCLUDED);  // runs into the excluded page
    CHECK(grass_phys_missing(&m.phys(), 0x800000, 8) == GRASS_E_OUT_OF_RANGE);
    CHECK(m.phys_end() == 0x901000);
    CHECK(m.phys().writable == 0);  // a vmcore is never written, whatever was asked

    // Truncated: the second segment runs past the end.
    f.resize(0x4000);
    std::string cut = temp_path("vmcore-cut");
    write_file(cut, f);
    CHECK_THROWS(MemorySource::open("vmcore:" + cut, "", false), "extends past the end");
  }
  {
    std::string other = temp_path("other-ram");
    write_file(other, pattern_file(8));
    CHECK_THROWS(MemorySource::open("qemu-ram:" + other, map, false), "describes");  // the map names ram
    unlink(other.c_str());
  }
  CHECK_THROWS(MemorySource::open("vmcore:" + ram, "", false), "not an ELF file, nor a kdump-compressed dump");
  CHECK_THROWS(MemorySource::open("qemu-ram:/nonexistent/ram", "", false), "/nonexistent/ram");
  CHECK_THROWS(MemorySource::open("floppy:" + ram, "", false), "unknown kind");
  write_text(map, "{\"ranges\": [{\"physStart\": \"0x0\", \"length\": \"0x100000\", \"fileOffset\": \"0x0\"}]}");
  CHECK_THROWS(MemorySource::open("qemu-ram:" + ram, map, false), "outside the file");
  write_text(map, "{\"ranges\": [{\"physStart\": \"0x0\", \"fileOffset\": \"0x0\"}]}");
  CHECK_THROWS(MemorySource::open("qemu-ram:" + ram, map, false), "lacks length");
  write_text(map, "{\"ranges\": [{\"physStart\": \"0x0\", \"length\": \"0x2000\", \"fileOffset\": \"0x0\"}, {\"physStart\": \"0x1000\", \"length\": \"0x1000\", \"fileOffset\": \"0x0\"}]}");
  CHECK_THROWS(MemorySource::open("qemu-ram:" + ram, map, false), "overlap");
  unlink(ram.c_str());
  unlink(map.c_str());
  unlink(temp_path("vmcore").c_str());
  unlink(temp_path("vmcore-cut").c_str());
  rmdir(temp_path("").c_str());
  return check_report("test_memory_source");
}
