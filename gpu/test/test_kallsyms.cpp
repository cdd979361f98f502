// The kernel's own kallsyms tables decoded from memory: tables laid out here the way
// scripts/kallsyms emits them (token table/index, length-prefixed compressed names with the
// two-byte length form, base-relative offsets), in both offset encodings, found through a
// VMCOREINFO text as the kernel writes it.
#include <cstring>
#include <string>
#include <vector>

#include "discovery/discovery.h"
#include "check.h"

namespace {

const uint64_t kBase = 0xffff888000000000ull;  // the tables live in a direct map over the test memory

struct Image {
  std::vector<uint8_t> mem = std::vector<uint8_t>(1 << 20);
  uint64_t next = 0x1000;
  uint64_t place(const void* p, size_t n) {
    uint64_t at = next;
    memcpy(&mem[at], p, n);
    next = (next + n + 15) & ~15ull;
    return kBase + at;
  }
};

std::string hex_of(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "%llx", (unsigned long long)v);
  return b;
}

struct Sym { const char* name; char type; uint64_t addr; };

// Lays the tables out for syms; relative_percpu selects the offset encoding.
std::unordered_map<std::string, std::string> build(Image& img, const std::vector<Sym>& syms, uint64_t relative_base, bool absolute_percpu) {
  // Tokens: 0..127 are the characters themselves, 200 = "sched_", 201 = "init_" (real tables
  // hold the most frequent substrings).
  std::vector<std::string> tokens(256);
  for (int i = 0; i < 256; i++) tokens[i] = i < 128 && i >= 32 ? std::string(1, (char)i) : std::string("\x01");
  tokens[200] = "sched_";
  tokens[201] = "init_";
  std::string table;
  uint16_t index[256];
  for (int i = 0; i < 256; i++) { index[i] = (uint16_t)table.size(); table += tokens[i]; table += '\0'; }
  std::vector<uint8_t> names;
  std::vector<int32_t> offsets;
  for (auto& s : syms) {
    std::string full = std::string(1, s.type) + s.name;
    std::vector<uint8_t> enc;
    for (size_t k = 0; k < full.size();) {
      if (full.compare(k, 6, "sched_") == 0) { enc.push_back(200); k += 6; }
      else if (full.compare(k, 5, "init_") == 0) { enc.push_back(201); k += 5; }
      else enc.push_back((uint8_t)full[k++]);
    }
    if (enc.size() > 127) { names.push_back((uint8_t)(0x80 | (enc.size() & 0x7f))); names.push_back((uint8_t)(enc.size() >> 7)); }
    else names.push_back((uint8_t)enc.size());
    names.insert(names.end(), enc.begin(), enc.end());
    if (absolute_percpu && s.addr < relative_base) offsets.push_back((int32_t)s.addr);               // per-CPU: absolute
    else if (absolute_percpu) offsets.push_back((int32_t)(-(int64_t)(s.addr - relative_base) - 1));  // base - 1 - offset
    else offsets.push_back((int32_t)(uint32_t)(s.addr - relative_base));
  }
  uint32_t num = (uint32_t)syms.size();
  std::unordered_map<std::string, std::string> vi;
  vi["SYMBOL(kallsyms_num_syms)"] = hex_of(img.place(&num, 4));
  vi["SYMBOL(kallsyms_relative_base)"] = hex_of(img.place(&relative_base, 8));
  vi["SYMBOL(kallsyms_offsets)"] = hex_of(img.place(offsets.data(), offsets.size() * 4));
  vi["SYMBOL(kallsyms_names)"] = hex_of(img.place(names.data(), names.size()));
  vi["SYMBOL(kallsyms_token_table)"] = hex_of(img.place(table.data(), table.size()));
  vi["SYMBOL(kallsyms_token_index)"] = hex_of(img.place(index, sizeof index));
  return vi;
}

}  // namespace

int main() {
  const uint64_t text = 0xffffffffa1000000ull;
  std::string long_name(150, 'x');  // takes the two-byte length form
  std::vector<Sym> syms = {{"fixed_percpu_data", 'A', 0x0}, {"runqueues", 'A', 0x2c000}, {"_stext", 'T', text},
                           {"sched_clock", 'T', text + 0x1230}, {"init_task", 'D', text + 0x1a1aa40},
                           {long_name.c_str(), 't', text + 0x2000}, {"init_uts_ns", 'D', text + 0x1b00000},
                           {"init_top_pgt", 'D', text + 0x1c00000}};
  for (bool absolute : {true, false}) {
    Image img;
    grass_phys_map m{};
    m.ranges[0] = {0, img.mem.size(), img.mem.data()};
    m.count = 1;
    grass_paging pg = {0, 4, 0, kBase, img.mem.size()};
    std::vector<Sym> used = syms;
    if (!absolute) used.erase(used.begin(), used.begin() + 2);  // relative encoding: no absolute per-CPU symbols
    auto vi = build(img, used, text, absolute);
    // VMCOREINFO names some of the symbols (and, like mem_section, some pointer values).
    vi["SYMBOL(_stext)"] = hex_of(text);
    vi["SYMBOL(init_uts_ns)"] = hex_of(text + 0x1b00000);
    vi["SYMBOL(init_top_pgt)"] = hex_of(text + 0x1c00000);
    vi["SYMBOL(mem_section)"] = hex_of(0xffff89da4ffd7000ull);
    std::vector<grass::Symbol> got = grass::decode_kallsyms(m, pg, vi);
    CHECK(got.size() == used.size());
    bool all = got.size() == used.size();
    for (size_t i = 0; all && i < got.size(); i++)
      all = got[i].name == used[i].name && got[i].type == used[i].type && got[i].address == used[i].addr;
    CHECK(all);
    if (!all)
      for (auto& s : got) fprintf(stderr, "  %016llx %c %s\n", (unsigned long long)s.address, s.type, s.name.c_str());
    // Without enough VMCOREINFO symbols to tell the encodings apart, decoding refuses.
    auto bare = vi;
    bare.erase("SYMBOL(_stext)");
    bare.erase("SYMBOL(init_uts_ns)");
    CHECK_THROWS(grass::decode_kallsyms(m, pg, bare), "neither offset encoding");
  }
  // The VMCOREINFO text format, with a negative NUMBER().
  auto vi = grass::parse_vmcoreinfo("OSRELEASE=6.1.0-56-amd64\nPAGESIZE=4096\nNUMBER(phys_base)=-228589568\nKERNELOFFSET=14c00000\n");
  CHECK(vi["OSRELEASE"] == "6.1.0-56-amd64" && vi["NUMBER(phys_base)"] == "-228589568" && vi["KERNELOFFSET"] == "14c00000");
  Image img;
  grass_phys_map m{};
  m.ranges[0] = {0, img.mem.size(), img.mem.data()};
  m.count = 1;
  grass_paging pg = {0, 4, 0, kBase, img.mem.size()};
  CHECK_THROWS(grass::decode_kallsyms(m, pg, vi), "lacks SYMBOL(kallsyms_num_syms)");
  return check_report("test_kallsyms");
}
