#include "discovery.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace grass {

namespace {

std::runtime_error error(const std::string& what) { return std::runtime_error(what); }

uint64_t parse_hex(const std::string& s, const std::string& what) {
  char* end = nullptr;
  errno = 0;
  uint64_t v = strtoull(s.c_str(), &end, 16);
  if (s.empty() || errno || *end) throw error(what + ": not a hex number: '" + s + "'");
  return v;
}

uint64_t parse_signed_decimal(const std::string& s, const std::string& what) {
  char* end = nullptr;
  errno = 0;
  long long v = strtoll(s.c_str(), &end, 10);
  if (s.empty() || errno || *end) throw error(what + ": not a decimal number: '" + s + "'");
  return (uint64_t)v;  // negative values (phys_base under KASLR) are taken mod 2^64
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error("cannot read " + path + ": " + strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string* find_key(const std::unordered_map<std::string, std::string>& vi, const std::string& key) {
  auto it = vi.find(key);
  return it == vi.end() ? nullptr : &it->second;
}

uint64_t vmcoreinfo_symbol(const std::unordered_map<std::string, std::string>& vi, const std::string& name) {
  const std::string* v = find_key(vi, "SYMBOL(" + name + ")");
  if (!v) throw error("VMCOREINFO lacks SYMBOL(" + name + ") (older kernels do not publish the kallsyms tables there: pass --kallsyms FILE)");
  return parse_hex(*v, "VMCOREINFO SYMBOL(" + name + ")");
}

// The kernel's page-table root found from an image address of it and phys_base; checked by
// translating that same address through the tables it names (the image maps itself).
bool paging_from_image_root(const grass_phys_map& m, uint64_t root_va, uint64_t phys_base, uint32_t levels,
                            grass_paging* out) {
  grass_paging pg{};
  pg.root_phys = root_va - kStartKernelMap + phys_base;
  pg.levels = levels;
  if (!grass_phys_ptr(&m, pg.root_phys, 4096)) return false;
  uint64_t phys, left;
  grass_fault f{};
  if (!grass_walk(&m, pg.root_phys, levels, root_va, &phys, &left, &f) || phys != pg.root_phys) return false;
  *out = pg;
  return true;
}

// VMCOREINFO text at phys, if the bytes there look like it (printable lines, NUL-terminated).
bool vmcoreinfo_text_at(const grass_phys_map& m, uint64_t phys, std::string* text) {
  const uint64_t max_bytes = 16384;
  std::string t;
  for (uint64_t i = 0; i < max_bytes; i++) {
    const uint8_t* p = grass_phys_ptr(&m, phys + i, 1);
    if (!p) return false;
    if (*p == 0) break;
    if (*p != '\n' && (*p < 0x20 || *p > 0x7e)) return false;
    t.push_back((char)*p);
  }
  if (t.size() < 64 || t.find("PAGESIZE=") == std::string::npos) return false;
  *text = t;
  return true;
}

// Checks one VMCOREINFO text and fills t from it; why_not says what was wrong with it.
bool take_vmcoreinfo(const grass_phys_map& m, const std::string& text, uint64_t phys, Target* t, std::string* why_not) {
  auto vi = parse_vmcoreinfo(text);
  const std::string* release = find_key(vi, "OSRELEASE");
  const std::string* offset = find_key(vi, "KERNELOFFSET");
  const std::string* phys_base = find_key(vi, "NUMBER(phys_base)");
  const std::string* root = find_key(vi, "SYMBOL(init_top_pgt)");
  if (!root) root = find_key(vi, "SYMBOL(swapper_pg_dir)");
  if (!release || !offset || !phys_base || !root) {
    *why_not = "VMCOREINFO at " + hex(phys) + " lacks OSRELEASE, KERNELOFFSET, NUMBER(phys_base) or the page-table root";
    return false;
  }
  const std::string* l5 = find_key(vi, "NUMBER(pgtable_l5_enabled)");
  uint32_t levels = l5 && *l5 == "1" ? 5 : 4;
  uint64_t pb = parse_signed_decimal(*phys_base, "VMCOREINFO NUMBER(phys_base)");
  grass_paging pg;
  if (!paging_from_image_root(m, parse_hex(*root, "VMCOREINFO page-table root"), pb, levels, &pg)) {
    *why_not = "VMCOREINFO at " + hex(phys) + ": its page-table root does not map itself (stale copy?)";
    return false;
  }
  t->method = "vmcoreinfo";
  t->release = *release;
  t->vmcoreinfo = text;
  t->vmcoreinfo_phys = phys;
  t->kaslr_offset = parse_hex(*offset, "VMCOREINFO KERNELOFFSET");
  t->phys_base = pb;
  if (const std::string* ps = find_key(vi, "PAGESIZE")) t->page_size = parse_signed_decimal(*ps, "VMCOREINFO PAGESIZE");
  t->paging = pg;
  return true;
}

// The first VMCOREINFO text in physical memory that checks out. vmcoreinfo_data is a page of
// its own: page starts are looked at first (cheap), then every offset (the ELF note copy,
// vmcoreinfo_note, is not page-aligned).
bool discover_from_vmcoreinfo(const grass_phys_map& m, Target* t, std::string* why_not) {
  static const char kKey[] = "OSRELEASE=";
  const size_t key_len = sizeof kKey - 1;
  *why_not = "no VMCOREINFO text (OSRELEASE=...) in physical memory";
  auto try_at = [&](uint64_t phys) {
    std::string text;
    return vmcoreinfo_text_at(m, phys, &text) && take_vmcoreinfo(m, text, phys, t, why_not);
  };
  for (uint32_t i = 0; i < m.count; i++) {
    const grass_phys_range& r = m.ranges[i];
    for (uint64_t off = (4096 - (r.phys_start & 4095)) & 4095; off + key_len <= r.length; off += 4096)
      if (memcmp(r.base + off, kKey, key_len) == 0 && try_at(r.phys_start + off)) return true;
  }
  for (uint32_t i = 0; i < m.count; i++) {
    const grass_phys_range& r = m.ranges[i];
    for (const uint8_t* p = r.base; p < r.base + r.length;) {
      const uint8_t* hit = (const uint8_t*)memmem(p, r.base + r.length - p, kKey, key_len);
      if (!hit) break;
      if (try_at(r.phys_start + (hit - r.base))) return true;
      p = hit + 1;
    }
  }
  return false;
}

// Fallback without VMCOREINFO: symbols from a kallsyms file place the banner relative to _text;
// the banner copy whose implied _text is 2 MiB-aligned is the kernel image's.
bool discover_from_banner(const grass_phys_map& m, Target* t, std::string* why_not) {
  auto need = [&](const char* n) { return t->symbol(n); };
  uint64_t banner_va = need("linux_banner"), text_va = need("_text"), root_va = need("init_top_pgt");
  static const char kBanner[] = "Linux version ";
  for (uint32_t i = 0; i < m.count; i++) {
    const grass_phys_range& r = m.ranges[i];
    const uint8_t* p = r.base;
    const uint8_t* end = r.base + r.length;
    while (p < end) {
      const uint8_t* hit = (const uint8_t*)memmem(p, end - p, kBanner, sizeof kBanner - 1);
      if (!hit) break;
      p = hit + 1;
      uint64_t text_phys = r.phys_start + (hit - r.base) - (banner_va - text_va);
      if (text_phys & ((2u << 20) - 1)) continue;
      uint64_t phys_base = text_phys - (text_va - kStartKernelMap);
      uint64_t l5_va = t->symbol_or_zero("__pgtable_l5_enabled");
      for (uint32_t levels : {4u, 5u}) {
        grass_paging pg;
        if (!paging_from_image_root(m, root_va, phys_base, levels, &pg)) continue;
        if (l5_va) {
          uint32_t l5 = 0;
          grass_fault f;
          if (grass_read(&m, &pg, GRASS_SPACE_KERNEL, 0, l5_va, &l5, 4, &f) && (l5 ? 5u : 4u) != levels) continue;
        }
        const char* rel = (const char*)hit + sizeof kBanner - 1;
        size_t n = 0;
        while (n < 64 && rel + n < (const char*)end && rel[n] != ' ' && rel[n]) n++;
        t->method = "banner";
        t->release.assign(rel, n);
        t->phys_base = phys_base;
        // __START_KERNEL is __START_KERNEL_map + CONFIG_PHYSICAL_START, 16 MiB on x86-64 kernels
        // built with the default; the slide is only informative here.
        t->kaslr_offset = text_va - (kStartKernelMap + (16u << 20));
        t->paging = pg;
        return true;
      }
    }
  }
  *why_not = "no 'Linux version' banner whose implied _text is 2 MiB-aligned and maps itself";
  return false;
}

// Page-granular reader of kernel-virtual memory for the set-up code (kallsyms names).
class KernelByteReader {
 public:
  KernelByteReader(const grass_phys_map& m, const grass_paging& pg) : m_(m), pg_(pg) {}
  uint8_t at(uint64_t va) {
    uint64_t page = va & ~4095ull;
    if (page != page_va_) {
      read_kernel(m_, pg_, page, page_, 4096, "kallsyms_names");
      page_va_ = page;
    }
    return page_[va & 4095];
  }

 private:
  const grass_phys_map& m_;
  const grass_paging& pg_;
  uint64_t page_va_ = 1;
  uint8_t page_[4096];
};

bool maps_root_at(const grass_phys_map& m, const grass_paging& pg, uint64_t base) {
  uint64_t phys, left;
  grass_fault f;
  return grass_walk(&m, pg.root_phys, pg.levels, base + pg.root_phys, &phys, &left, &f) && phys == pg.root_phys;
}

// The first kernel-half top-level slot whose start maps physical 0 onwards (checked at the
// page-table root's own physical address); 0 if none.
uint64_t find_direct_map(const grass_phys_map& m, const grass_paging& pg) {
  uint32_t shift = 12 + 9 * (pg.levels - 1), va_bits = pg.levels == 5 ? 57 : 48;
  for (uint64_t index = 256; index < 512; index++) {
    uint64_t base = (uint64_t)((int64_t)((index << shift) << (64 - va_bits)) >> (64 - va_bits));
    if (maps_root_at(m, pg, base)) return base;
  }
  return 0;
}

// Reads of the direct map skip the page tables (phys = va - page_offset_base). Checks that
// assumption by walking the tables 2 MiB + 4 KiB past every GiB of RAM (clear of the first
// 2 MiB's special mappings), noting the page sizes the kernel used there (what is left of the
// page from that offset tells 4 KiB, 2 MiB and 1 GiB apart). A disagreement turns the shortcut off.
void check_direct_map(const grass_phys_map& m, Target* t) {
  const uint64_t gib = 1ull << 30, mib2 = 2ull << 20, probe = mib2 + 4096;
  for (uint32_t i = 0; i < m.count; i++) {
    const grass_phys_range& r = m.ranges[i];
    for (uint64_t phys = (r.phys_start + gib - 1) / gib * gib + probe; phys + 4096 <= r.phys_start + r.length; phys += gib) {
      uint64_t va = t->paging.page_offset_base + phys, got, left;
      grass_fault f;
      if (!grass_walk(&m, t->paging.root_phys, t->paging.levels, va, &got, &left, &f)) continue;  // not mapped (mem=, holes)
      if (got != phys) {
        t->paging.direct_map_bytes = 0;
        t->direct_map_pages.clear();
        fprintf(stderr, "grass-agent: warning: the direct map at %s maps %s, not %s: reading it through the page tables\n",
                hex(va).c_str(), hex(got).c_str(), hex(phys).c_str());
        return;
      }
      if (left == 4096) t->direct_map_pages.insert(4096);
      else if (left == mib2 - 4096) t->direct_map_pages.insert(mib2);
      else if (left == gib - probe) t->direct_map_pages.insert(gib);
    }
  }
}

}  // namespace

uint64_t Target::symbol(const std::string& name) const {
  auto it = symbols.find(name);
  if (it == symbols.end()) throw error("symbol '" + name + "' not found in the target's symbols (" + symbols_source + ")");
  return it->second;
}

uint64_t Target::symbol_or_zero(const std::string& name) const {
  auto it = symbols.find(name);
  return it == symbols.end() ? 0 : it->second;
}

void read_kernel(const grass_phys_map& m, const grass_paging& pg, uint64_t va, void* dst, uint64_t len, const char* what) {
  grass_fault f{};
  if (!grass_read(&m, &pg, GRASS_SPACE_KERNEL, 0, va, dst, len, &f))
    throw error(std::string("reading ") + what + " at " + hex(va) + ": address " + hex(f.address) +
                (f.status == GRASS_E_UNMAPPED ? " is not mapped" : " is outside physical memory"));
}

std::unordered_map<std::string, std::string> parse_vmcoreinfo(const std::string& text) {
  std::unordered_map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) out.emplace(line.substr(0, eq), line.substr(eq + 1));
  }
  return out;
}

std::vector<Symbol> decode_kallsyms(const grass_phys_map& m, const grass_paging& pg,
                                    const std::unordered_map<std::string, std::string>& vi) {
  uint64_t num_va = vmcoreinfo_symbol(vi, "kallsyms_num_syms"), names_va = vmcoreinfo_symbol(vi, "kallsyms_names");
  uint64_t table_va = vmcoreinfo_symbol(vi, "kallsyms_token_table"), index_va = vmcoreinfo_symbol(vi, "kallsyms_token_index");
  uint64_t offsets_va = vmcoreinfo_symbol(vi, "kallsyms_offsets"), base_va = vmcoreinfo_symbol(vi, "kallsyms_relative_base");
  uint32_t num = read_kernel_value<uint32_t>(m, pg, num_va, "kallsyms_num_syms");
  if (num == 0 || num > (1u << 23)) throw error("kallsyms_num_syms at " + hex(num_va) + " = " + std::to_string(num) + " is implausible");
  uint16_t token_index[256];
  read_kernel(m, pg, index_va, token_index, sizeof token_index, "kallsyms_token_index");
  uint32_t table_bytes = 0;
  for (uint16_t ix : token_index) table_bytes = std::max<uint32_t>(table_bytes, ix);
  table_bytes += 256;
  std::vector<char> table(table_bytes + 1, 0);
  read_kernel(m, pg, table_va, table.data(), table_bytes, "kallsyms_token_table");
  std::string tokens[256];
  for (int i = 0; i < 256; i++) {
    const char* s = table.data() + token_index[i];
    size_t n = strnlen(s, table.data() + table_bytes - s);
    if (s + n >= table.data() + table_bytes) throw error("kallsyms_token_table at " + hex(table_va) + ": token " + std::to_string(i) + " is not terminated");
    tokens[i].assign(s, n);
  }
  std::vector<int32_t> offsets(num);
  read_kernel(m, pg, offsets_va, offsets.data(), num * 4ull, "kallsyms_offsets");
  uint64_t relative_base = read_kernel_value<uint64_t>(m, pg, base_va, "kallsyms_relative_base");

  std::vector<Symbol> syms(num);
  KernelByteReader names(m, pg);
  uint64_t at = names_va;
  // A corrupt table must not yield names that break the published symbol text (one
  // "ADDR TYPE NAME" line each) nor make the walk long: KSYM_NAME_LEN (512) bounds every name.
  const uint32_t max_name = 512;
  for (uint32_t i = 0; i < num; i++) {
    uint64_t entry = at;
    uint32_t len = names.at(at++);
    if (len & 0x80) len = (len & 0x7f) | ((uint32_t)names.at(at++) << 7);  // "big" symbol names (6.1+)
    if (len > max_name) throw error("kallsyms_names: entry " + std::to_string(i) + " at " + hex(entry) + " is " + std::to_string(len) + " tokens long (corrupt table)");
    std::string s;
    for (uint32_t k = 0; k < len && s.size() <= max_name; k++) s += tokens[names.at(at++)];
    bool printable = s.size() >= 2 && s.size() <= max_name;
    for (size_t k = 0; k < s.size() && printable; k++) printable = s[k] > ' ' && s[k] < 0x7f;
    if (!printable) throw error("kallsyms_names: entry " + std::to_string(i) + " at " + hex(entry) + " does not decode to a type letter and a printable name (corrupt table)");
    syms[i].type = s[0];
    syms[i].name = s.substr(1);
  }
  // Two encodings of kallsyms_offsets exist (CONFIG_KALLSYMS_ABSOLUTE_PERCPU or not; 6.1 on x86
  // uses the first, later kernels dropped it). Take the one that places more of VMCOREINFO's
  // symbols (some SYMBOL() lines hold a pointer's value, e.g. mem_section, so misses are normal).
  auto absolute_percpu = [&](int32_t o) { return o >= 0 ? (uint64_t)o : relative_base - 1 - (uint64_t)(int64_t)o; };
  auto relative = [&](int32_t o) { return relative_base + (uint32_t)o; };
  int score[2] = {0, 0};
  for (uint32_t i = 0; i < num; i++) {
    const std::string* v = find_key(vi, "SYMBOL(" + syms[i].name + ")");
    if (!v) continue;
    uint64_t want = parse_hex(*v, "VMCOREINFO SYMBOL(" + syms[i].name + ")");
    score[0] += absolute_percpu(offsets[i]) == want;
    score[1] += relative(offsets[i]) == want;
  }
  int pick = score[0] >= score[1] ? 0 : 1;
  if (score[pick] < 3) throw error("kallsyms: neither offset encoding places VMCOREINFO's symbols (tables corrupt or unknown layout)");
  for (uint32_t i = 0; i < num; i++) syms[i].address = pick == 0 ? absolute_percpu(offsets[i]) : relative(offsets[i]);
  return syms;
}

std::vector<Symbol> parse_kallsyms_text(const std::string& text, const std::string& name) {
  std::vector<Symbol> out;
  std::istringstream in(text);
  std::string line;
  bool any_nonzero = false;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string addr, type, sym;
    if (!(ls >> addr >> type >> sym) || type.size() != 1) continue;
    uint64_t a = parse_hex(addr, name + " address");
    any_nonzero |= a != 0;
    out.push_back({a, type[0], sym});
  }
  if (out.empty()) throw error(name + ": no symbols (expected /proc/kallsyms lines)");
  if (!any_nonzero) throw error(name + ": every address is 0 (kptr_restrict: read /proc/kallsyms as root)");
  return out;
}

Target discover(const MemorySource& memory, const std::string& kallsyms_file, const std::string& btf_file) {
  const grass_phys_map& m = memory.phys();
  Target t;
  std::vector<Symbol> syms;
  if (!kallsyms_file.empty()) {
    t.symbols_source = kallsyms_file;
    t.symbols_text = read_file(kallsyms_file);
    syms = parse_kallsyms_text(t.symbols_text, kallsyms_file);
    for (auto& s : syms) t.symbols.emplace(s.name, s.address);
  }
  std::string why_vmcoreinfo, why_banner;
  // A dump's header copy of VMCOREINFO first: scanning a compressed dump would decompress all of it.
  bool found = !memory.vmcoreinfo().empty() && take_vmcoreinfo(m, memory.vmcoreinfo(), 0, &t, &why_vmcoreinfo);
  if (!found && !discover_from_vmcoreinfo(m, &t, &why_vmcoreinfo)) {
    if (kallsyms_file.empty())
      throw error("kernel not found in " + memory.describe() + ": " + why_vmcoreinfo +
                  " (the banner fallback needs --kallsyms to place the banner)");
    if (!discover_from_banner(m, &t, &why_banner))
      throw error("kernel not found in " + memory.describe() + ": " + why_vmcoreinfo + "; " + why_banner);
  }
  if (kallsyms_file.empty()) {
    t.symbols_source = "memory";
    syms = decode_kallsyms(m, t.paging, parse_vmcoreinfo(t.vmcoreinfo));
    std::string text;
    text.reserve(syms.size() * 40);
    char line[32];
    for (auto& s : syms) {
      t.symbols.emplace(s.name, s.address);
      snprintf(line, sizeof line, "%016llx %c ", (unsigned long long)s.address, s.type);
      text += line;
      text += s.name;
      text += '\n';
    }
    t.symbols_text = std::move(text);
  }
  // The direct map's base: the kernel's page_offset_base variable, or (kernels built without
  // it) the start of the top-level slot that maps the page-table root at its own offset.
  // Either way checked by mapping the page-table root through it.
  uint64_t pob = 0;
  if (uint64_t pob_va = t.symbol_or_zero("page_offset_base")) {
    pob = read_kernel_value<uint64_t>(m, t.paging, pob_va, "page_offset_base");
    if (!maps_root_at(m, t.paging, pob))
      throw error("page_offset_base " + hex(pob) + " does not map the page-table root (inconsistent target)");
  } else {
    pob = find_direct_map(m, t.paging);
  }
  if (pob) {
    t.paging.page_offset_base = pob;
    t.paging.direct_map_bytes = memory.phys_end();
    check_direct_map(m, &t);
  } else {
    fprintf(stderr, "grass-agent: warning: no direct map found; every kernel address goes through the page tables\n");
  }
  t.cpu_count = read_kernel_value<uint32_t>(m, t.paging, t.symbol("nr_cpu_ids"), "nr_cpu_ids");

  if (!btf_file.empty()) {
    struct btf* b = btf__parse(btf_file.c_str(), nullptr);
    if (!b) throw error("--btf " + btf_file + ": not a BTF or ELF file with .BTF (" + strerror(errno) + ")");
    uint32_t size = 0;
    const uint8_t* raw = (const uint8_t*)btf__raw_data(b, &size);
    t.btf.assign(raw, raw + size);
    btf__free(b);
    t.btf_source = btf_file;
  } else {
    uint64_t start = t.symbol("__start_BTF"), stop = t.symbol("__stop_BTF");
    if (stop <= start || stop - start > (256u << 20)) throw error("__start_BTF..__stop_BTF spans an implausible size");
    t.btf.resize(stop - start);
    read_kernel(m, t.paging, start, t.btf.data(), t.btf.size(), ".BTF section");
    t.btf_source = "memory";
    // Checked here, where the section's address is known, so a corrupt one is named.
    struct btf* parsed = btf__new(t.btf.data(), (uint32_t)t.btf.size());
    if (!parsed) throw error(".BTF section at " + hex(start) + " (" + std::to_string(t.btf.size()) + " bytes) does not parse: " + strerror(errno) + " (corrupt BTF)");
    btf__free(parsed);
  }
  return t;
}

}  // namespace grass
