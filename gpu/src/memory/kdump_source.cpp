#include "kdump_source.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <lzo/lzo1x.h>
#include <poll.h>
#include <snappy-c.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>

#include "memory_source.h"

namespace grass {

namespace {

const uint64_t kPage = 4096;
// The dump's page-descriptor flags (makedumpfile's diskdump_mod.h, QEMU's dump.h).
const uint32_t kZlib = 0x1, kLzo = 0x2, kSnappy = 0x4, kZstd = 0x20;
// Bounds on what a header may claim, so a corrupt one gives an error, not a huge allocation:
// 16 TiB of 4 KiB pages.
const uint64_t kMaxMapnr = 1ull << 32;
const uint64_t kFlatHeaderBytes = 4096;  // makedumpfile's MAX_SIZE_MDF_HEADER

struct PageDescriptor {
  uint64_t offset;
  uint32_t size;
  uint32_t flags;
  uint64_t page_flags;
};
static_assert(sizeof(PageDescriptor) == 24, "kdump page descriptor is 24 bytes");

uint64_t be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

template <typename T>
T le_at(const uint8_t* p) {
  T v;
  memcpy(&v, p, sizeof v);
  return v;
}

std::string compression_names(uint32_t flags) {
  std::string s;
  auto add = [&](uint32_t bit, const char* name) {
    if (flags & bit) s += (s.empty() ? "" : "+") + std::string(name);
  };
  add(kZlib, "zlib");
  add(kLzo, "lzo");
  add(kSnappy, "snappy");
  add(kZstd, "zstd");
  return s.empty() ? "uncompressed" : s;
}

}  // namespace

bool KdumpImage::recognises(const uint8_t* head, uint64_t bytes) {
  return (bytes >= 8 && memcmp(head, "KDUMP   ", 8) == 0) || (bytes >= 13 && memcmp(head, "makedumpfile", 13) == 0);
}

KdumpImage::KdumpImage(const std::string& path, uint64_t cache_pages) : path_(path), cache_pages_(std::max<uint64_t>(cache_pages, 64)) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    ::close(fd);
    throw std::runtime_error(path + ": empty or unreadable");
  }
  file_bytes_ = (uint64_t)st.st_size;
  void* p = mmap(nullptr, file_bytes_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) throw std::runtime_error("cannot map " + path + ": " + strerror(errno));
  file_ = (const uint8_t*)p;
  try {
    flattened_ = file_bytes_ >= 13 && memcmp(file_, "makedumpfile", 13) == 0;
    if (flattened_) open_flattened();
    else logical_bytes_ = file_bytes_;
    parse();
    start_filler();
  } catch (...) {
    release();
    throw;
  }
}

KdumpImage::~KdumpImage() { release(); }

void KdumpImage::release() {
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof one) < 0) perror("grass-agent: stopping the kdump page filler");
  }
  if (filler_.joinable()) filler_.join();
  if (uffd_ >= 0) ::close(uffd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
  if (region_) munmap(region_, region_bytes_);
  if (file_) munmap((void*)file_, file_bytes_);
  uffd_ = stop_fd_ = -1;
  region_ = nullptr;
  file_ = nullptr;
}

// The flattened form is a 4 KiB header, then records (big-endian offset and size, then the
// bytes) of what the plain file holds at that offset, ended by offset -1. Indexed here once;
// the bytes are read where they lie. A later record over an earlier one's bytes wins, as it
// would in a file written in that order.
void KdumpImage::open_flattened() {
  if (file_bytes_ < kFlatHeaderBytes + 16)
    throw std::runtime_error(path_ + ": flattened dump shorter than its header (truncated?)");
  uint64_t type = be64(file_ + 16), version = be64(file_ + 24);
  if (type != 1 || version != 1)
    throw std::runtime_error(path_ + ": flattened dump of type " + std::to_string(type) + " version " + std::to_string(version) +
                             " (only type 1 version 1 is known)");
  struct Record { uint64_t logical, length, file_offset; };
  std::vector<Record> records;
  bool ended = false;
  for (uint64_t at = kFlatHeaderBytes; at + 16 <= file_bytes_;) {
    uint64_t offset = be64(file_ + at), size = be64(file_ + at + 8);
    if (offset == ~0ull) { ended = true; break; }
    at += 16;
    if ((int64_t)offset < 0 || size > file_bytes_ - at)
      throw std::runtime_error(path_ + ": flattened record at file offset " + hex(at - 16) + " claims " + std::to_string(size) +
                               " bytes at " + hex(offset) + ", past the end of the file (truncated or corrupt)");
    if (size > 0) records.push_back({offset, size, at});
    at += size;
  }
  if (!ended) throw std::runtime_error(path_ + ": flattened dump has no end record (truncated?)");
  // Newest first: each record adds the parts of its span no newer record covers.
  std::map<uint64_t, Piece> by_start;
  for (size_t i = records.size(); i-- > 0;) {
    const Record& r = records[i];
    uint64_t start = r.logical, end = r.logical + r.length;
    auto it = by_start.upper_bound(start);
    if (it != by_start.begin()) {
      auto prev = std::prev(it);
      if (prev->second.logical + prev->second.length > start) start = prev->second.logical + prev->second.length;
    }
    while (start < end) {
      uint64_t stop = end;
      it = by_start.lower_bound(start);
      if (it != by_start.end() && it->first < stop) stop = it->first;
      if (stop > start) by_start[start] = {start, stop - start, r.file_offset + (start - r.logical)};
      if (it == by_start.end() || it->first >= end) break;
      start = it->second.logical + it->second.length;
    }
  }
  for (auto& kv : by_start) pieces_.push_back(kv.second);
  logical_bytes_ = pieces_.empty() ? 0 : pieces_.back().logical + pieces_.back().length;
}

const uint8_t* KdumpImage::logical_ptr(uint64_t logical, uint64_t n) const {
  if (flattened_ || logical > file_bytes_ || n > file_bytes_ - logical) return nullptr;
  return file_ + logical;
}

bool KdumpImage::read_logical(uint64_t logical, uint64_t n, uint8_t* out) const {
  if (!flattened_) {
    const uint8_t* p = logical_ptr(logical, n);
    if (!p) return false;
    memcpy(out, p, n);
    return true;
  }
  auto it = std::upper_bound(pieces_.begin(), pieces_.end(), logical, [](uint64_t v, const Piece& p) { return v < p.logical; });
  if (it == pieces_.begin()) return false;
  --it;
  while (n > 0) {
    if (it == pieces_.end() || logical < it->logical || logical >= it->logical + it->length) return false;
    uint64_t take = std::min(n, it->logical + it->length - logical);
    memcpy(out, file_ + it->file_offset + (logical - it->logical), take);
    out += take;
    logical += take;
    n -= take;
    ++it;
  }
  return true;
}

void KdumpImage::read_or_throw(uint64_t logical, uint64_t n, void* out, const std::string& what) const {
  if (!read_logical(logical, n, (uint8_t*)out))
    throw std::runtime_error(path_ + ": " + what + " (" + std::to_string(n) + " bytes at dump offset " + hex(logical) +
                             ") lies outside the file (truncated?)");
}

void KdumpImage::parse() {
  uint8_t h[464];
  read_or_throw(0, sizeof h, h, "the disk dump header");
  if (memcmp(h, "KDUMP   ", 8) != 0)
    throw std::runtime_error(path_ + ": no \"KDUMP   \" signature" + std::string(flattened_ ? " in the flattened data" : ""));
  uint32_t version = le_at<uint32_t>(h + 8);
  block_size_ = le_at<uint32_t>(h + 428);
  uint32_t sub_hdr_blocks = le_at<uint32_t>(h + 432), bitmap_blocks = le_at<uint32_t>(h + 436);
  uint32_t status = le_at<uint32_t>(h + 424);
  if (version < 1 || version > 64) throw std::runtime_error(path_ + ": kdump header version " + std::to_string(version) + " (not a dump this reader knows)");
  if (block_size_ != kPage)
    throw std::runtime_error(path_ + ": kdump block size " + std::to_string(block_size_) + " (only 4096-byte pages are supported)");
  uint8_t sub[104] = {};
  read_or_throw(block_size_, std::min<uint64_t>(sizeof sub, (uint64_t)sub_hdr_blocks * block_size_), sub, "the kdump sub-header");
  dump_level_ = le_at<uint32_t>(sub + 8);
  uint32_t split = le_at<uint32_t>(sub + 12);
  if (split) throw std::runtime_error(path_ + ": a split dump (makedumpfile --split): one of its parts alone does not hold all memory");
  max_mapnr_ = le_at<uint32_t>(h + 440);
  if (version >= 6) max_mapnr_ = le_at<uint64_t>(sub + 96);
  if (max_mapnr_ == 0 || max_mapnr_ > kMaxMapnr)
    throw std::runtime_error(path_ + ": kdump header claims " + std::to_string(max_mapnr_) + " pages (corrupt header?)");
  if (version >= 3) {
    uint64_t at = le_at<uint64_t>(sub + 32), size = le_at<uint64_t>(sub + 40);
    if (size > 1 << 20) throw std::runtime_error(path_ + ": VMCOREINFO of " + std::to_string(size) + " bytes (corrupt sub-header?)");
    if (size > 0) {
      vmcoreinfo_.resize(size);
      read_or_throw(at, size, &vmcoreinfo_[0], "VMCOREINFO");
      vmcoreinfo_.resize(strnlen(vmcoreinfo_.data(), size));
    }
  }
  // The bitmaps: the first marks the pages of RAM, the second those the dump holds (a page
  // descriptor each, in pfn order, after the bitmaps).
  uint64_t bitmap_bytes = (uint64_t)bitmap_blocks * block_size_ / 2, words = (max_mapnr_ + 63) / 64;
  if (bitmap_bytes * 8 < max_mapnr_)
    throw std::runtime_error(path_ + ": kdump bitmaps (" + std::to_string(bitmap_blocks) + " blocks) are too small for " +
                             std::to_string(max_mapnr_) + " pages (corrupt header?)");
  uint64_t bitmap_at = (1 + (uint64_t)sub_hdr_blocks) * block_size_;
  if (bitmap_at + 2 * bitmap_bytes > logical_bytes_)
    throw std::runtime_error(path_ + ": the kdump bitmaps (" + std::to_string(2 * bitmap_bytes) + " bytes at dump offset " + hex(bitmap_at) +
                             ") run past the end of the file (truncated?)");
  present_.assign(words, 0);
  dumped_.assign(words, 0);
  read_or_throw(bitmap_at, (max_mapnr_ + 7) / 8, present_.data(), "the first bitmap");
  read_or_throw(bitmap_at + bitmap_bytes, (max_mapnr_ + 7) / 8, dumped_.data(), "the second bitmap");
  if (max_mapnr_ % 64) {
    uint64_t keep = (1ull << (max_mapnr_ % 64)) - 1;
    present_.back() &= keep;
    dumped_.back() &= keep;
  }
  descriptors_at_ = bitmap_at + 2 * bitmap_bytes;
  rank_.resize(words);
  uint64_t count = 0, excluded = 0;
  for (uint64_t w = 0; w < words; w++) {
    rank_[w] = count;
    count += (uint64_t)__builtin_popcountll(dumped_[w]);
    excluded += (uint64_t)__builtin_popcountll(present_[w] & ~dumped_[w]);
  }
  dumped_pages_ = count;
  excluded_pages_ = excluded;
  if (count == 0) throw std::runtime_error(path_ + ": the dump holds no page");
  if (descriptors_at_ + count * sizeof(PageDescriptor) > logical_bytes_)
    throw std::runtime_error(path_ + ": " + std::to_string(count) + " page descriptors at dump offset " + hex(descriptors_at_) +
                             " run past the end of the file (truncated?)");
  // makedumpfile writes the pages in pfn order after the descriptors: the last one's data ending
  // past the end of the file means the file was cut short (each page is checked again when read).
  PageDescriptor last;
  read_or_throw(descriptors_at_ + (count - 1) * sizeof last, sizeof last, &last, "the last page descriptor");
  if (last.offset > logical_bytes_ || last.size > logical_bytes_ - last.offset)
    throw std::runtime_error(path_ + ": the last page's data (" + std::to_string(last.size) + " bytes at dump offset " + hex(last.offset) +
                             ") lies past the end of the file (" + std::to_string(logical_bytes_) + " bytes): truncated?");
  // RAM as runs of the first bitmap (a page the second has and the first lacks is not RAM).
  for (uint64_t pfn = 0; pfn < max_mapnr_;) {
    uint64_t w = pfn / 64;
    if (!(present_[w] >> (pfn % 64) & 1)) {
      if (present_[w] >> (pfn % 64) == 0) pfn = (w + 1) * 64;
      else pfn++;
      continue;
    }
    uint64_t start = pfn;
    while (pfn < max_mapnr_ && (present_[pfn / 64] >> (pfn % 64) & 1)) pfn++;
    ranges_.push_back({start * kPage, (pfn - start) * kPage, 0});
  }
  // Which compression the pages use: the header's status flags, else the first descriptor's.
  uint32_t kinds = status & (kZlib | kLzo | kSnappy | kZstd);
  if (!kinds) {
    PageDescriptor d;
    read_or_throw(descriptors_at_, sizeof d, &d, "the first page descriptor");
    kinds = d.flags & (kZlib | kLzo | kSnappy | kZstd);
  }
  compression_ = compression_names(kinds);
  description_ = std::string(flattened_ ? "flattened " : "") + "kdump-compressed, " + compression_ + ", dump level " +
                 std::to_string(dump_level_) + ", " + std::to_string(count) + " pages in the dump, " + std::to_string(excluded) +
                 " excluded";
}

bool KdumpImage::read_page(uint64_t pfn, uint8_t* out, std::string* why) const {
  if (pfn >= max_mapnr_ || !(dumped_[pfn / 64] >> (pfn % 64) & 1)) { *why = "not in this dump"; return false; }
  uint64_t index = rank_[pfn / 64] + (uint64_t)__builtin_popcountll(dumped_[pfn / 64] & ((1ull << (pfn % 64)) - 1));
  PageDescriptor d;
  if (!read_logical(descriptors_at_ + index * sizeof d, sizeof d, (uint8_t*)&d)) { *why = "its page descriptor lies outside the file"; return false; }
  if (d.size == 0 || d.size > block_size_ || d.offset > logical_bytes_ || d.size > logical_bytes_ - d.offset) {
    *why = "its page descriptor (offset " + hex(d.offset) + ", " + std::to_string(d.size) + " bytes) points outside the file";
    return false;
  }
  uint8_t staged[kPage];
  const uint8_t* src = logical_ptr(d.offset, d.size);
  if (!src) {
    if (!read_logical(d.offset, d.size, staged)) { *why = "its data is in no record of the flattened file"; return false; }
    src = staged;
  }
  uint32_t kind = d.flags & (kZlib | kLzo | kSnappy | kZstd);
  bool ok = false;
  std::string name = compression_names(kind);
  if (kind == 0) {
    ok = d.size == kPage;
    if (ok) memcpy(out, src, kPage);
  } else if (kind == kZlib) {
    uLongf n = kPage;
    ok = uncompress(out, &n, src, d.size) == Z_OK && n == kPage;
  } else if (kind == kLzo) {
    lzo_uint n = kPage;
    ok = lzo1x_decompress_safe(src, d.size, out, &n, nullptr) == LZO_E_OK && n == kPage;
  } else if (kind == kSnappy) {
    size_t n = kPage;
    ok = snappy_uncompress((const char*)src, d.size, (char*)out, &n) == SNAPPY_OK && n == kPage;
  } else if (kind == kZstd) {
    size_t n = ZSTD_decompress(out, kPage, src, d.size);
    ok = !ZSTD_isError(n) && n == kPage;
  } else {
    *why = "its page descriptor has flags " + hex(d.flags) + " (more than one compression)";
    return false;
  }
  if (!ok) *why = name + " data at dump offset " + hex(d.offset) + " (" + std::to_string(d.size) + " bytes) does not decompress to one page";
  return ok;
}

// The mapping's pages are filled by a thread of ours on first touch (userfaultfd), so the
// monitor reads the dump through plain pointers as it reads any other memory source. User-mode
// faults only: the agent never hands these pages to the kernel (no write(2) from them).
void KdumpImage::start_filler() {
  if (lzo_init() != LZO_E_OK) throw std::runtime_error("lzo_init failed");
  region_bytes_ = max_mapnr_ * kPage;
  void* p = mmap(nullptr, region_bytes_, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error(path_ + ": cannot reserve " + std::to_string(region_bytes_ >> 20) + " MiB of address space: " + strerror(errno));
  region_ = (uint8_t*)p;
  uffd_ = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  if (uffd_ < 0) uffd_ = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (uffd_ < 0)
    throw std::runtime_error(path_ + ": kdump-compressed dumps are served through userfaultfd, which this system refuses (" +
                             strerror(errno) + "; see sysctl vm.unprivileged_userfaultfd)");
  uffdio_api api{};
  api.api = UFFD_API;
  if (ioctl(uffd_, UFFDIO_API, &api) != 0) throw std::runtime_error(path_ + ": userfaultfd API handshake failed: " + strerror(errno));
  uffdio_register reg{};
  reg.range.start = (uint64_t)region_;
  reg.range.len = region_bytes_;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (ioctl(uffd_, UFFDIO_REGISTER, &reg) != 0) throw std::runtime_error(path_ + ": userfaultfd register failed: " + strerror(errno));
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  if (stop_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + strerror(errno));
  filler_ = std::thread([this] { fill_loop(); });
}

void KdumpImage::fill_loop() {
  std::vector<uint64_t> resident(cache_pages_);  // pfns in the order they were filled
  uint64_t oldest = 0, count = 0;
  alignas(4096) static thread_local uint8_t page[kPage];
  for (;;) {
    pollfd fds[2] = {{uffd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      perror("grass-agent: kdump page filler: poll");
      return;
    }
    if (fds[1].revents) return;
    uffd_msg msg;
    ssize_t got = read(uffd_, &msg, sizeof msg);
    if (got != (ssize_t)sizeof msg || msg.event != UFFD_EVENT_PAGEFAULT) continue;
    uint64_t at = msg.arg.pagefault.address & ~(kPage - 1);
    uint64_t pfn = (at - (uint64_t)region_) / kPage;
    if (count == cache_pages_) {  // full: drop the oldest; a later touch fills it again
      madvise(region_ + resident[oldest] * kPage, kPage, MADV_DONTNEED);
      oldest = (oldest + 1) % cache_pages_;
      count--;
    }
    std::string why;
    bool in_dump = pfn < max_mapnr_ && (dumped_[pfn / 64] >> (pfn % 64) & 1);
    bool filled = in_dump && read_page(pfn, page, &why);
    if (in_dump && !filled) {
      // The reader checked the page was in the dump before touching it; from now on it is not.
      fprintf(stderr, "grass-agent: %s: page at physical %s: %s; it reads as excluded from now on\n", path_.c_str(), hex(pfn * kPage).c_str(), why.c_str());
      __atomic_fetch_and((uint64_t*)&dumped_[pfn / 64], ~(1ull << (pfn % 64)), __ATOMIC_SEQ_CST);
    }
    int rc;
    if (filled) {
      uffdio_copy copy{};
      copy.dst = at;
      copy.src = (uint64_t)page;
      copy.len = kPage;
      rc = ioctl(uffd_, UFFDIO_COPY, &copy);
    } else {
      // Not dumped (a scan over raw memory touched it, or it just failed): zeros, so nothing
      // waits; grass_phys_ptr keeps reporting it as excluded.
      uffdio_zeropage zero{};
      zero.range.start = at;
      zero.range.len = kPage;
      rc = ioctl(uffd_, UFFDIO_ZEROPAGE, &zero);
    }
    if (rc != 0 && errno != EEXIST) {
      fprintf(stderr, "grass-agent: %s: cannot fill the page at physical %s: %s\n", path_.c_str(), hex(pfn * kPage).c_str(), strerror(errno));
      continue;
    }
    resident[(oldest + count) % cache_pages_] = pfn;
    count++;
  }
}

}  // namespace grass
