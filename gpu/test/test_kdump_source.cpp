// The kdump-compressed memory source on dumps laid out here by the format's rules (makedumpfile's
// diskdump_mod.h), their pages compressed by the Debian libraries' own compressors: every
// compression, plain and flattened, pages the dump level left out, a hole in RAM, and broken
// files (truncated, foreign, corrupt headers and pages), which must give a named error.
#include <lzo/lzo1x.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "memory/kdump_source.h"
#include "memory/memory_source.h"

using grass::MemorySource;

namespace {

const uint64_t kPage = 4096, kPages = 64;
const char kVmcoreinfo[] = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\n";

std::string temp_path(const std::string& name) {
  static std::string dir;
  if (dir.empty()) {
    char t[] = "/tmp/grass-kdumptest-XXXXXX";
    dir = mkdtemp(t);
  }
  return dir + "/" + name;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write((const char*)bytes.data(), bytes.size());
}

// Page n carries n in every 8-byte word; page 9 is all zeros (compresses to almost nothing).
std::vector<uint8_t> page_content(uint64_t n) {
  std::vector<uint8_t> p(kPage, 0);
  if (n != 9)
    for (size_t w = 0; w < kPage / 8; w++) memcpy(&p[w * 8], &n, 8);
  return p;
}

bool in_ram(uint64_t pfn) { return pfn < 40 || pfn >= 48; }      // a hole at 40..47
bool in_dump(uint64_t pfn) { return in_ram(pfn) && (pfn < 5 || pfn > 7); }  // 5..7 excluded

std::vector<uint8_t> compress(uint32_t flag, const std::vector<uint8_t>& in) {
  std::vector<uint8_t> out(2 * kPage + 1024);
  size_t n = out.size();
  if (flag == 0x1) {
    uLongf z = n;
    compress2(out.data(), &z, in.data(), in.size(), 6);
    n = z;
  } else if (flag == 0x2) {
    std::vector<uint8_t> work(LZO1X_1_MEM_COMPRESS);
    lzo_uint l = n;
    lzo1x_1_compress(in.data(), in.size(), out.data(), &l, work.data());
    n = l;
  } else if (flag == 0x4) {
    snappy_compress((const char*)in.data(), in.size(), (char*)out.data(), &n);
  } else if (flag == 0x20) {
    n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  } else {
    out = in;
    n = in.size();
  }
  out.resize(n);
  return out;
}

template <typename T>
void put(std::vector<uint8_t>& v, uint64_t at, T x) {
  if (v.size() < at + sizeof x) v.resize(at + sizeof x);
  memcpy(&v[at], &x, sizeof x);
}

// A plain kdump file (header version 6, dump level 31) whose pages use the given compression.
std::vector<uint8_t> kdump_file(uint32_t flag) {
  std::vector<uint8_t> f(kPage * 4, 0);
  memcpy(&f[0], "KDUMP   ", 8);
  put<uint32_t>(f, 8, 6);               // header_version
  memcpy(&f[8 + 4 + 65 * 2], "6.1.0-test", 10);  // utsname.release
  put<uint32_t>(f, 424, flag);          // status: the compression
  put<uint32_t>(f, 428, kPage);         // block_size
  put<uint32_t>(f, 432, 1);             // sub_hdr_size (blocks)
  put<uint32_t>(f, 436, 2);             // bitmap_blocks: one block per bitmap
  put<uint32_t>(f, 440, kPages);        // max_mapnr
  put<uint32_t>(f, 460, 2);             // nr_cpus
  const uint64_t sub = kPage;
  put<uint32_t>(f, sub + 8, 31);        // dump_level
  put<uint64_t>(f, sub + 96, kPages);   // max_mapnr_64
  // VMCOREINFO lies in the sub-header block, after its fields.
  put<uint64_t>(f, sub + 32, sub + 512);  // offset_vmcoreinfo
  put<uint64_t>(f, sub + 40, sizeof kVmcoreinfo - 1);
  memcpy(&f[sub + 512], kVmcoreinfo, sizeof kVmcoreinfo - 1);
  const uint64_t bitmap1 = 2 * kPage, bitmap2 = 3 * kPage;
  uint64_t dumped = 0;
  for (uint64_t pfn = 0; pfn < kPages; pfn++) {
    if (in_ram(pfn)) f[bitmap1 + pfn / 8] |= (uint8_t)(1 << (pfn % 8));
    if (in_dump(pfn)) { f[bitmap2 + pfn / 8] |= (uint8_t)(1 << (pfn % 8)); dumped++; }
  }
  const uint64_t descriptors = 4 * kPage;
  uint64_t data = descriptors + dumped * 24;
  f.resize(data);
  uint64_t index = 0;
  for (uint64_t pfn = 0; pfn < kPages; pfn++) {
    if (!in_dump(pfn)) continue;
    std::vector<uint8_t> c = compress(flag, page_content(pfn));
    uint32_t page_flag = flag;
    if (c.size() >= kPage) { c = page_content(pfn); page_flag = 0; }  // stored as it is, as makedumpfile does
    uint64_t at = descriptors + index++ * 24;
    put<uint64_t>(f, at, data);
    put<uint32_t>(f, at + 8, (uint32_t)c.size());
    put<uint32_t>(f, at + 12, page_flag);
    f.insert(f.end(), c.begin(), c.end());
    data += c.size();
  }
  return f;
}

void put_be64(std::vector<uint8_t>& v, uint64_t x) {
  for (int i = 7; i >= 0; i--) v.push_back((uint8_t)(x >> (8 * i)));
}

// The same dump flattened: records of up to chunk bytes in a shuffled order, one of them
// written twice (the later copy wins), then the end record.
std::vector<uint8_t> flattened(const std::vector<uint8_t>& plain, uint64_t chunk) {
  std::vector<uint8_t> f(4096, 0);
  memcpy(&f[0], "makedumpfile", 12);
  for (int i = 0; i < 2; i++) { uint64_t one = 1; for (int b = 7; b >= 0; b--) f[16 + 8 * i + (7 - b)] = (uint8_t)(one >> (8 * b)); }
  std::vector<uint64_t> starts;
  for (uint64_t at = 0; at < plain.size(); at += chunk) starts.push_back(at);
  std::mt19937 rng(7);
  std::shuffle(starts.begin(), starts.end(), rng);
  auto record = [&](uint64_t at, uint64_t n, uint8_t junk) {
    put_be64(f, at);
    put_be64(f, n);
    for (uint64_t i = 0; i < n; i++) f.push_back(junk ? junk : plain[at + i]);
  };
  record(starts[0], std::min(chunk, plain.size() - starts[0]), 0xee);  // overwritten below
  for (uint64_t at : starts) record(at, std::min(chunk, plain.size() - at), 0);
  put_be64(f, ~0ull);
  put_be64(f, ~0ull);
  return f;
}

uint64_t word_at(const MemorySource& m, uint64_t phys) {
  const uint8_t* p = grass_phys_ptr(&m.phys(), phys, 8);
  uint64_t v = ~0ull;
  if (p) memcpy(&v, p, 8);
  return v;
}

void check_dump(const std::string& path, const char* what) {
  MemorySource m = MemorySource::open("vmcore:" + path, "", false);
  const grass_phys_map& pm = m.phys();
  CHECK(pm.count == 2);
  CHECK(m.ranges()[0].phys_start == 0 && m.ranges()[0].length == 40 * kPage);
  CHECK(m.ranges()[1].phys_start == 48 * kPage && m.ranges()[1].length == 16 * kPage);
  CHECK(m.vmcoreinfo() == kVmcoreinfo);
  CHECK(m.describe().find("dump level 31") != std::string::npos);
  CHECK(m.describe().find(what) != std::string::npos);
  int wrong = 0;
  for (uint64_t pfn = 0; pfn < kPages; pfn++) {
    if (!in_dump(pfn)) continue;
    uint64_t want = pfn == 9 ? 0 : pfn;
    if (word_at(m, pfn * kPage + 8) != want || word_at(m, pfn * kPage + kPage - 8) != want) wrong++;
  }
  CHECK(wrong == 0);
  // Excluded pages: no pointer, and named as excluded; the hole and past the end: out of range.
  CHECK(grass_phys_ptr(&pm, 6 * kPage, 8) == nullptr);
  CHECK(grass_phys_missing(&pm, 6 * kPage, 8) == GRASS_E_EXCLUDED);
  CHECK(grass_phys_ptr(&pm, 4 * kPage, 2 * kPage) == nullptr);  // runs into page 5
  CHECK(grass_phys_missing(&pm, 4 * kPage, 2 * kPage) == GRASS_E_EXCLUDED);
  CHECK(grass_phys_missing(&pm, 42 * kPage, 8) == GRASS_E_OUT_OF_RANGE);
  CHECK(grass_phys_missing(&pm, kPages * kPage, 8) == GRASS_E_OUT_OF_RANGE);
  uint8_t* base = nullptr;
  CHECK(grass_phys_span(&pm, 2 * kPage, 6 * kPage, &base) == 3 * kPage);  // pages 2..4, then excluded
}

}  // namespace

int main() {
  struct { uint32_t flag; const char* name; } kinds[] = {{0, "uncompressed"}, {0x1, "zlib"}, {0x2, "lzo"}, {0x4, "snappy"}, {0x20, "zstd"}};
  for (auto& k : kinds) {
    std::vector<uint8_t> plain = kdump_file(k.flag);
    std::string p = temp_path(std::string("plain-") + k.name), fl = temp_path(std::string("flat-") + k.name);
    write_file(p, plain);
    write_file(fl, flattened(plain, 1000));
    check_dump(p, k.name);
    check_dump(fl, k.name);
    MemorySource flat = MemorySource::open("vmcore:" + fl, "", false);
    CHECK(flat.describe().find("flattened kdump-compressed") != std::string::npos);
  }

  // A small page cache: pages are dropped and read again, with the same contents.
  {
    std::string p = temp_path("plain-zlib");
    grass::KdumpImage img(p, 64);
    const uint64_t* bits = img.dumped_bits();
    CHECK(img.dump_level() == 31 && img.excluded_pages() == 3 && img.dumped_pages() == 53);
    CHECK(!(bits[0] >> 6 & 1) && (bits[0] >> 4 & 1));
    int wrong = 0;
    for (int round = 0; round < 3; round++)
      for (uint64_t pfn = 0; pfn < kPages; pfn++)
        if (in_dump(pfn)) {
          uint64_t v;
          memcpy(&v, img.base() + pfn * kPage + 64, 8);
          if (v != (pfn == 9 ? 0 : pfn)) wrong++;
        }
    CHECK(wrong == 0);
  }

  // Broken files: each a named error.
  std::vector<uint8_t> good = kdump_file(0x1);
  auto cut = [&](uint64_t n) { return std::vector<uint8_t>(good.begin(), good.begin() + n); };
  std::string bad = temp_path("bad");
  write_file(bad, cut(300));
  CHECK_THROWS(MemorySource::open("vmcore:" + bad, "", false), "disk dump header");
  write_file(bad, cut(4 * kPage + 100));
  CHECK_THROWS(MemorySource::open("vmcore:" + bad, "", false), "page descriptors");
  write_file(bad, cut(good.size() - 100));  // cut in the last page's data
  CHECK_THROWS(MemorySource::open("vmcore:" + bad, "", false), "last page's data");
  std::vector<uint8_t> v = good;
  put<uint32_t>(v, 428, 512);
  write_file(bad, v);
  CHECK_THROWS(MemorySource::open("vmcore:" + bad, "", false), "block size 512");
  v = good;
  put<uint64_t>(v, kPage + 96, 1ull << 40);
  write_file(bad, v);
  CHECK_THROWS(MemorySource::open("vmcore:" + bad, "", false), "claims");
  v = good;
  put<uint64_t>(v, kPage + 96, 1ull << 20);  // more pages than the bitmaps cover
  write_file(bad, v);
  CHECK_THROWS(MemorySource::open("vmcore:" + bad, "", false), "too small");
  v = good;
  put<uint32_t>(v, kPage + 12, 1);
  write_file(bad, v);
  CHECK_THROWS(MemorySource::open("vmcore:" + bad, "", false), "split dump");
  std::vector<uint8_t> flat = flattened(good, 1000);
  write_file(bad, std::vector<uint8_t>(flat.begin(), flat.end() - 16));
  CHECK_THROWS(MemorySource::open("vmcore:" + bad, "", false), "no end record");
  v = flat;
  v[4096 + 8] = 0x7f;  // the first record's size: far past the end
  write_file(bad, v);
  CHECK_THROWS(MemorySource::open("vmcore:" + bad, "", false), "past the end of the file");
  write_file(bad, std::vector<uint8_t>(8192, 'x'));
  CHECK_THROWS(MemorySource::open("vmcore:" + bad, "", false), "nor a kdump-compressed dump");  // foreign

  // A corrupt page: its read fails with the reason; the page then reads as excluded.
  v = good;
  uint64_t first_data;
  memcpy(&first_data, &v[4 * kPage], 8);
  for (int i = 0; i < 16; i++) v[first_data + i] ^= 0x5a;
  write_file(bad, v);
  {
    grass::KdumpImage img(bad, 64);
    uint8_t page[4096];
    std::string why;
    CHECK(!img.read_page(0, page, &why));
    CHECK(why.find("zlib data at dump offset") != std::string::npos);
    CHECK(img.read_page(1, page, &why));
  }

  // Fuzzed headers, bitmaps and descriptors: open and read every page, or a named error; never a crash.
  std::mt19937 rng(23);
  int opened = 0, refused = 0;
  for (int round = 0; round < 300; round++) {
    v = good;
    for (int k = 0; k < 8; k++) {
      uint64_t at = rng() % (4 * kPage + 53 * 24);
      v[at] ^= (uint8_t)(1 + rng() % 255);
    }
    write_file(bad, v);
    try {
      grass::KdumpImage img(bad, 64);
      uint8_t page[4096];
      std::string why;
      for (uint64_t pfn = 0; pfn < 1024; pfn++) img.read_page(pfn, page, &why);
      opened++;
    } catch (const std::exception& e) {
      refused += strstr(e.what(), bad.c_str()) != nullptr;  // the error names the file
    }
  }
  CHECK(opened + refused == 300);
  printf("fuzzed kdump files: %d opened, %d refused with a named error\n", opened, refused);
  return check_report("test_kdump_source");
}
