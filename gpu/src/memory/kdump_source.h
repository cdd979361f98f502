// Layer 1 on the host: makedumpfile's kdump-compressed dump ("KDUMP   ", the diskdump format
// crash and makedumpfile share), plain or flattened ("makedumpfile" header and records, as
// makedumpfile -F and QEMU's kdump formats write it), served as memory that fills itself: one
// anonymous mapping of the dump's physical address space whose pages a userfaultfd thread
// decompresses from the file on first touch. At most cache_pages of it are resident (the oldest
// are dropped and refilled on their next touch), so a dump of any size opens in place, without
// unpacking it. Pages the dump left out (the dump level) are clear in dumped_bits(), which
// grass_phys_ptr consults, so they read as "excluded", never as zeros.
#ifndef GRASS_MEMORY_KDUMP_SOURCE_H
#define GRASS_MEMORY_KDUMP_SOURCE_H

#include <stdint.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace grass {

struct FileRange;

class KdumpImage {
 public:
  // "KDUMP   " (plain) or "makedumpfile" (flattened) at the start of the file.
  static bool recognises(const uint8_t* head, uint64_t bytes);
  // Throws std::runtime_error naming the file and the part of it that is wrong.
  KdumpImage(const std::string& path, uint64_t cache_pages);
  ~KdumpImage();
  KdumpImage(const KdumpImage&) = delete;

  uint8_t* base() const { return region_; }           // physical address 0 of the mapping
  const uint64_t* dumped_bits() const { return dumped_.data(); }  // bit per pfn: page is in the dump
  const std::vector<FileRange>& ranges() const { return ranges_; }  // RAM the dump describes (1st bitmap)
  const std::string& vmcoreinfo() const { return vmcoreinfo_; }
  uint32_t dump_level() const { return dump_level_; }
  const std::string& compression() const { return compression_; }  // zlib, lzo, snappy, zstd (+-joined), uncompressed
  bool flattened() const { return flattened_; }
  const std::string& describe() const { return description_; }  // format, compression, dump level
  uint64_t dumped_pages() const { return dumped_pages_; }
  uint64_t excluded_pages() const { return excluded_pages_; }

  // Decompresses page pfn into out (4096 bytes); false with *why on a bad page. Thread-safe.
  bool read_page(uint64_t pfn, uint8_t* out, std::string* why) const;

 private:
  struct Piece { uint64_t logical, length, file_offset; };
  void open_flattened();
  // Copies [logical, logical+n) of the dump (as the plain format lays it out) into out.
  bool read_logical(uint64_t logical, uint64_t n, uint8_t* out) const;
  const uint8_t* logical_ptr(uint64_t logical, uint64_t n) const;  // in-place view, plain files only
  void read_or_throw(uint64_t logical, uint64_t n, void* out, const std::string& what) const;
  void parse();
  void start_filler();
  void fill_loop();
  void release();

  std::string path_, description_, vmcoreinfo_, compression_;
  const uint8_t* file_ = nullptr;
  uint64_t file_bytes_ = 0, logical_bytes_ = 0;
  bool flattened_ = false;
  std::vector<Piece> pieces_;  // flattened: disjoint, sorted by logical offset
  uint32_t block_size_ = 0, dump_level_ = 0;
  uint64_t max_mapnr_ = 0, descriptors_at_ = 0, dumped_pages_ = 0, excluded_pages_ = 0;
  std::vector<uint64_t> dumped_;       // 2nd bitmap (in the dump) as words
  std::vector<uint64_t> present_;      // 1st bitmap (RAM) as words
  std::vector<uint64_t> rank_;         // descriptors before word k of the 2nd bitmap
  std::vector<FileRange> ranges_;
  uint8_t* region_ = nullptr;
  uint64_t region_bytes_ = 0, cache_pages_ = 0;
  int uffd_ = -1, stop_fd_ = -1;
  std::thread filler_;
};

}  // namespace grass

#endif
