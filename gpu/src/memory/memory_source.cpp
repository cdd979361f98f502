#include "memory_source.h"

#include "kdump_source.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace grass {

namespace {

std::runtime_error error(const std::string& what) { return std::runtime_error(what); }

uint64_t parse_number(const std::string& s, const std::string& what) {
  std::string t = s;
  if (t.empty()) throw error(what + ": empty number");
  char* end = nullptr;
  errno = 0;
  uint64_t v = strtoull(t.c_str(), &end, 0);
  if (errno != 0 || *end != '\0') throw error(what + ": not a number: " + s);
  return v;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw error("cannot read " + path + ": " + strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::vector<FileRange> parse_memory_map(const std::string& text, std::string* ram_file) {
  std::smatch m;
  static const std::regex ram_re("\"ramFile\"\\s*:\\s*\"([^\"]*)\"");
  if (ram_file && std::regex_search(text, m, ram_re)) *ram_file = m[1];
  size_t ranges_at = text.find("\"ranges\"");
  if (ranges_at == std::string::npos) throw error("memory map: no \"ranges\" array");
  std::vector<FileRange> out;
  static const std::regex obj_re("\\{([^{}]*)\\}");
  std::string rest = text.substr(ranges_at);
  for (auto it = std::sregex_iterator(rest.begin(), rest.end(), obj_re); it != std::sregex_iterator(); ++it) {
    std::string body = (*it)[1];
    auto field = [&](const char* key) {
      std::regex re(std::string("\"") + key + "\"\\s*:\\s*\"?(0x[0-9a-fA-F]+|[0-9]+)\"?");
      std::smatch fm;
      if (!std::regex_search(body, fm, re)) throw error(std::string("memory map: a range lacks ") + key);
      return parse_number(fm[1], std::string("memory map ") + key);
    };
    out.push_back({field("physStart"), field("length"), field("fileOffset")});
  }
  if (out.empty()) throw error("memory map: \"ranges\" is empty");
  return out;
}

std::vector<FileRange> q35_layout(uint64_t ram_bytes) {
  const uint64_t split_threshold = 0xb0000000ull, low_limit = 0x80000000ull, high_start = 1ull << 32;
  if (ram_bytes < split_threshold) return {{0, ram_bytes, 0}};
  return {{0, low_limit, 0}, {high_start, ram_bytes - low_limit, low_limit}};
}

std::vector<FileRange> elf_core_layout(const uint8_t* file, uint64_t bytes, const std::string& name) {
  if (bytes < sizeof(Elf64_Ehdr) || memcmp(file, ELFMAG, SELFMAG) != 0)
    throw error(name + ": not an ELF file, nor a kdump-compressed dump (no \"KDUMP   \" or \"makedumpfile\" signature)");
  Elf64_Ehdr eh;
  memcpy(&eh, file, sizeof eh);
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    throw error(name + ": not a little-endian ELF64 file");
  if (eh.e_type != ET_CORE) throw error(name + ": ELF type is not ET_CORE (not a vmcore)");
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > bytes ||
      (bytes - eh.e_phoff) / sizeof(Elf64_Phdr) < eh.e_phnum)
    throw error(name + ": program headers lie outside the file");
  std::vector<FileRange> out;
  for (unsigned i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    memcpy(&ph, file + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type != PT_LOAD || ph.p_filesz == 0) continue;
    if (ph.p_offset > bytes || ph.p_filesz > bytes - ph.p_offset)
      throw error(name + ": PT_LOAD " + std::to_string(i) + " extends past the end of the file (truncated vmcore?)");
    out.push_back({ph.p_paddr, ph.p_filesz, ph.p_offset});
  }
  if (out.empty()) throw error(name + ": no PT_LOAD segment with data");
  // A segment whose physical range lies inside another's is a second virtual view of the same
  // memory (the kernel-text segment of kdump's /proc/vmcore and of grass save-vmcore): keep one.
  std::vector<FileRange> physical;
  for (size_t i = 0; i < out.size(); i++) {
    bool alias = false;
    for (size_t j = 0; j < out.size() && !alias; j++) {
      const FileRange &a = out[i], &b = out[j];
      bool inside = a.phys_start >= b.phys_start && a.phys_start + a.length <= b.phys_start + b.length;
      alias = j != i && inside && (a.length < b.length || j < i);
    }
    if (!alias) physical.push_back(out[i]);
  }
  return physical;
}

std::vector<FileRange> elf_core_excluded(const uint8_t* file) {
  std::vector<FileRange> out;
  Elf64_Ehdr eh;
  memcpy(&eh, file, sizeof eh);  // elf_core_layout checked the header and program headers
  for (unsigned i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    memcpy(&ph, file + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type != PT_LOAD || ph.p_memsz <= ph.p_filesz) continue;
    uint64_t start = (ph.p_paddr + ph.p_filesz + 4095) & ~4095ull, end = (ph.p_paddr + ph.p_memsz) & ~4095ull;
    if (end <= start) continue;
    bool seen = false;  // the kernel-text segment repeats a direct-map segment's tail
    for (auto& t : out) seen |= start < t.phys_start + t.length && t.phys_start < end;
    if (!seen) out.push_back({start, end - start, 0});
  }
  return out;
}

void MemorySource::map_file(const std::string& path, bool writable) {
  int fd = ::open(path.c_str(), writable ? O_RDWR : O_RDONLY);
  if (fd < 0) throw error("cannot open " + path + ": " + strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) { ::close(fd); throw error("cannot stat " + path + ": " + strerror(errno)); }
  uint64_t size = (uint64_t)st.st_size;
  if (S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode)) {
    off_t end = lseek(fd, 0, SEEK_END);
    if (end > 0) size = (uint64_t)end;
  }
  if (size == 0) { ::close(fd); throw error(path + ": empty (or size unknown)"); }
  void* p = mmap(nullptr, size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) throw error("cannot map " + path + ": " + strerror(errno));
  map_ = (uint8_t*)p;
  map_bytes_ = size;
  phys_.writable = writable ? 1 : 0;
}

void MemorySource::set_ranges(std::vector<FileRange> ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const FileRange& a, const FileRange& b) { return a.phys_start < b.phys_start; });
  if (ranges.size() > GRASS_MAX_PHYS_RANGES)
    throw error(description_ + ": " + std::to_string(ranges.size()) + " physical ranges, at most " +
                std::to_string(GRASS_MAX_PHYS_RANGES) + " supported");
  for (size_t i = 0; i < ranges.size(); i++) {
    const FileRange& r = ranges[i];
    if (r.length == 0 || r.file_offset > map_bytes_ || r.length > map_bytes_ - r.file_offset)
      throw error(description_ + ": range at phys " + hex(r.phys_start) + " lies outside the file");
    if (i > 0 && ranges[i - 1].phys_start + ranges[i - 1].length > r.phys_start)
      throw error(description_ + ": physical ranges overlap");
    phys_.ranges[i] = {r.phys_start, r.length, map_ + r.file_offset};
  }
  phys_.count = (uint32_t)ranges.size();
  ranges_ = std::move(ranges);
}

MemorySource MemorySource::open(const std::string& spec, const std::string& map_file_arg, bool writable) {
  MemorySource src;
  size_t colon = spec.find(':');
  if (colon == std::string::npos) throw error("--memory " + spec + ": expected qemu-ram:PATH, vmcore:PATH or pmem:PATH");
  std::string kind = spec.substr(0, colon), path = spec.substr(colon + 1), map_file = map_file_arg;
  if (kind == "qemu-ram") {
    size_t q = path.find("?map=");
    if (q != std::string::npos) {
      if (map_file.empty()) map_file = path.substr(q + 5);
      path = path.substr(0, q);
    }
  }
  src.description_ = kind + ":" + path;
  src.info_.kind = kind;
  src.info_.format = kind == "vmcore" ? "elf" : "ram";
  if (kind == "vmcore") {
    src.map_file(path, false);
    src.info_.file_bytes = src.map_bytes_;
    if (KdumpImage::recognises(src.map_, src.map_bytes_)) src.open_kdump(path);
    else src.open_elf(path);
  } else if (kind == "qemu-ram" || kind == "pmem") {
    src.map_file(path, writable);
    src.info_.file_bytes = src.map_bytes_;
    if (!map_file.empty()) {
      std::string ram_file;
      std::vector<FileRange> ranges = parse_memory_map(read_text_file(map_file), &ram_file);
      // A map written for another guest's RAM would give plausible nonsense: refuse it.
      struct stat named, given;
      if (!ram_file.empty() && stat(ram_file.c_str(), &named) == 0 && stat(path.c_str(), &given) == 0 &&
          (named.st_dev != given.st_dev || named.st_ino != given.st_ino))
        throw error("memory map " + map_file + " describes " + ram_file + ", not " + path);
      src.set_ranges(std::move(ranges));
    } else if (kind == "qemu-ram") {
      src.set_ranges(q35_layout(src.map_bytes_));
    } else {
      src.set_ranges({{0, src.map_bytes_, 0}});  // a physical-memory device: offset = physical address
    }
  } else {
    throw error("--memory " + spec + ": unknown kind '" + kind + "' (qemu-ram, vmcore, pmem)");
  }
  return src;
}

// An ELF vmcore whose PT_LOADs end in memory without file data (makedumpfile -E leaves the pages
// its dump level excluded out that way): those pages are ranges too, backed by an anonymous
// read-only mapping (zeros for a scan that walks raw memory) and clear in phys_.dumped, so a
// read of them fails as excluded rather than as outside memory.
void MemorySource::open_elf(const std::string& path) {
  std::vector<FileRange> data = elf_core_layout(map_, map_bytes_, path);
  std::vector<FileRange> tails = elf_core_excluded(map_);
  std::vector<FileRange> kept;
  for (auto& t : tails) {
    bool overlaps = false;
    for (auto& d : data) overlaps |= t.phys_start < d.phys_start + d.length && d.phys_start < t.phys_start + t.length;
    if (!overlaps) kept.push_back(t);
  }
  if (kept.empty() || data.size() + kept.size() > GRASS_MAX_PHYS_RANGES) {
    set_ranges(std::move(data));
    return;
  }
  uint64_t tail_bytes = 0;
  for (auto& t : kept) tail_bytes += t.length;
  void* zeros = mmap(nullptr, tail_bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (zeros == MAP_FAILED) throw error(path + ": cannot reserve address space for its excluded pages: " + strerror(errno));
  excluded_map_ = (uint8_t*)zeros;
  excluded_map_bytes_ = tail_bytes;
  info_.excluded_pages = tail_bytes / 4096;
  set_ranges(data);
  uint64_t end = 0;
  for (auto& r : data) end = std::max(end, r.phys_start + r.length);
  for (auto& t : kept) end = std::max(end, t.phys_start + t.length);
  dumped_bits_.assign((end / 4096 + 63) / 64 + 1, 0);
  for (auto& r : data)
    for (uint64_t pfn = r.phys_start / 4096; pfn * 4096 < r.phys_start + r.length; pfn++) dumped_bits_[pfn / 64] |= 1ull << (pfn % 64);
  struct Placed { FileRange range; uint8_t* base; };
  std::vector<Placed> all;
  for (auto& d : data) all.push_back({d, map_ + d.file_offset});
  uint64_t at = 0;
  for (auto& t : kept) {
    all.push_back({t, excluded_map_ + at});
    at += t.length;
  }
  std::sort(all.begin(), all.end(), [](const Placed& a, const Placed& b) { return a.range.phys_start < b.range.phys_start; });
  ranges_.clear();
  for (size_t i = 0; i < all.size(); i++) {
    const FileRange& r = all[i].range;
    if (i > 0 && ranges_.back().phys_start + ranges_.back().length > r.phys_start) throw error(description_ + ": physical ranges overlap");
    phys_.ranges[i] = {r.phys_start, r.length, all[i].base};
    ranges_.push_back(r);
  }
  phys_.count = (uint32_t)all.size();
  phys_.dumped = dumped_bits_.data();
}

// Resident pages of a compressed dump at most (256 MiB): a task walk touches far fewer.
static const uint64_t kKdumpCachePages = 65536;

void MemorySource::open_kdump(const std::string& path) {
  munmap(map_, map_bytes_);  // the image maps the file itself
  map_ = nullptr;
  map_bytes_ = 0;
  kdump_.reset(new KdumpImage(path, kKdumpCachePages));
  std::vector<FileRange> ranges = kdump_->ranges();
  if (ranges.size() > GRASS_MAX_PHYS_RANGES)
    throw error(path + ": the dump's RAM is " + std::to_string(ranges.size()) + " separate ranges, at most " +
                std::to_string(GRASS_MAX_PHYS_RANGES) + " supported");
  for (size_t i = 0; i < ranges.size(); i++) {
    ranges[i].file_offset = ranges[i].phys_start;  // offset in the image's mapping of physical 0
    phys_.ranges[i] = {ranges[i].phys_start, ranges[i].length, kdump_->base() + ranges[i].phys_start};
  }
  phys_.count = (uint32_t)ranges.size();
  phys_.writable = 0;
  phys_.dumped = kdump_->dumped_bits();
  ranges_ = std::move(ranges);
  vmcoreinfo_ = kdump_->vmcoreinfo();
  description_ += " (" + kdump_->describe() + ")";
  info_.format = "kdump";
  info_.compression = kdump_->compression();
  info_.flattened = kdump_->flattened();
  info_.dump_level = (int)kdump_->dump_level();
  info_.excluded_pages = kdump_->excluded_pages();
}

MemorySource::MemorySource(MemorySource&& o) noexcept
    : description_(std::move(o.description_)), vmcoreinfo_(std::move(o.vmcoreinfo_)), info_(std::move(o.info_)), kdump_(std::move(o.kdump_)), map_(o.map_),
      map_bytes_(o.map_bytes_), ranges_(std::move(o.ranges_)), phys_(o.phys_), dumped_bits_(std::move(o.dumped_bits_)),
      excluded_map_(o.excluded_map_), excluded_map_bytes_(o.excluded_map_bytes_) {
  o.excluded_map_ = nullptr;
  o.map_ = nullptr;
  o.map_bytes_ = 0;
}

MemorySource::~MemorySource() {
  if (map_) munmap(map_, map_bytes_);
  if (excluded_map_) munmap(excluded_map_, excluded_map_bytes_);
}

uint64_t MemorySource::phys_end() const {
  uint64_t end = 0;
  for (auto& r : ranges_) end = std::max(end, r.phys_start + r.length);
  return end;
}

}  // namespace grass
