// Page walks over hand-built x86-64 page tables: 4 KiB, 2 MiB and 1 GiB pages, 4 and 5
// levels, reads across pages, and the errors for unmapped, non-canonical and out-of-range input.
#include <cstring>
#include <vector>

#include "translation/translate.h"
#include "check.h"

static const uint64_t P = GRASS_PTE_PRESENT | 0x2 /* RW */, PS = GRASS_PTE_HUGE, NX = 1ull << 63;

struct Phys {
  std::vector<uint8_t> low = std::vector<uint8_t>(1 << 20);        // phys 0 .. 1 MiB: tables and 4K frames
  std::vector<uint8_t> two_mib = std::vector<uint8_t>(8192);       // phys 0x200000 .. +8K: start of a 2 MiB page
  std::vector<uint8_t> one_gib = std::vector<uint8_t>(8192);       // phys 0x40000000 .. +8K: start of a 1 GiB page
  grass_phys_map map{};
  Phys() {
    map.ranges[0] = {0, low.size(), low.data()};
    map.ranges[1] = {0x200000, two_mib.size(), two_mib.data()};
    map.ranges[2] = {0x40000000, one_gib.size(), one_gib.data()};
    map.count = 3;
  }
  void set(uint64_t table, uint64_t index, uint64_t entry) { memcpy(&low[table + index * 8], &entry, 8); }
};

static uint64_t idx(uint64_t va, int level) { return (va >> (12 + 9 * (level - 1))) & 511; }

int main() {
  Phys m;
  const uint64_t pml4 = 0x1000, pdpt = 0x2000, pd = 0x3000, pt = 0x4000;
  const uint64_t va4k = 0xffffc90000401234ull, va2m = 0xffffc90000601234ull, va1g = 0xffffc90040000abcull;
  m.set(pml4, idx(va4k, 4), pdpt | P);
  m.set(pdpt, idx(va4k, 3), pd | P);
  m.set(pd, idx(va4k, 2), pt | P);
  m.set(pt, idx(va4k, 1), 0x5000 | P | NX);              // NX and other high bits are not address
  m.set(pt, idx(va4k, 1) + 1, 0x9000 | P);               // the next page is elsewhere
  m.set(pd, idx(va2m, 2), 0x200000 | P | PS);
  m.set(pdpt, idx(va1g, 3), 0x40000000 | P | PS);
  memcpy(&m.low[0x5ff8], "ABCDEFGH", 8);
  memcpy(&m.low[0x9000], "IJKLMNOP", 8);

  grass_fault f{};
  uint64_t phys = 0, left = 0;
  CHECK(grass_walk(&m.map, pml4, 4, va4k, &phys, &left, &f) && phys == 0x5234 && left == 4096 - 0x234);
  CHECK(grass_walk(&m.map, pml4, 4, va2m, &phys, &left, &f) && phys == 0x201234 && left == (2u << 20) - 0x1234);
  CHECK(grass_walk(&m.map, pml4, 4, va1g, &phys, &left, &f) && phys == 0x40000abc && left == (1u << 30) - 0xabc);

  // A read that crosses into a page mapped to another frame.
  grass_paging pg{pml4, 4, 0, 0, 0};
  char buf[17] = {};
  uint64_t cross = (va4k & ~4095ull) + 4096 - 8;
  CHECK(grass_read(&m.map, &pg, GRASS_SPACE_KERNEL, 0, cross, buf, 16, &f) && memcmp(buf, "ABCDEFGHIJKLMNOP", 16) == 0);

  // Not present at each level names the address asked for.
  uint64_t hole = va4k + 2 * 4096;
  CHECK(!grass_walk(&m.map, pml4, 4, hole, &phys, &left, &f) && f.status == GRASS_E_UNMAPPED && f.address == hole);
  CHECK(!grass_walk(&m.map, pml4, 4, 0xffff800000000000ull, &phys, &left, &f) && f.status == GRASS_E_UNMAPPED);
  CHECK(!grass_read(&m.map, &pg, GRASS_SPACE_KERNEL, 0, cross + 4096, buf, 16, &f) && f.status == GRASS_E_UNMAPPED && f.address == cross + 4096 + 8);
  // Not canonical for 4 levels.
  CHECK(!grass_walk(&m.map, pml4, 4, 0x0000900000000000ull, &phys, &left, &f) && f.status == GRASS_E_UNMAPPED);
  // A table entry pointing outside physical memory.
  uint64_t wild = 0xffffc90080000000ull;
  m.set(pdpt, idx(wild, 3), 0x7700000000ull | P);
  CHECK(!grass_walk(&m.map, pml4, 4, wild, &phys, &left, &f) && f.status == GRASS_E_OUT_OF_RANGE && f.address == wild);
  // A leaf pointing outside physical memory: translation works, the read fails.
  uint64_t wild_leaf = va4k + 3 * 4096;
  m.set(pt, idx(wild_leaf, 1), 0x7700000000ull | P);
  CHECK(!grass_read(&m.map, &pg, GRASS_SPACE_KERNEL, 0, wild_leaf, buf, 8, &f) && f.status == GRASS_E_OUT_OF_RANGE && f.address == wild_leaf);

  // 5 levels: an address only a 57-bit space has, through a PML5 above the same PML4.
  const uint64_t pml5 = 0x7000, va5 = 0xff11c90000401234ull;
  m.set(pml5, idx(va5, 5), pml4 | P);
  m.set(pml4, idx(va5, 4), pdpt | P);
  CHECK(grass_walk(&m.map, pml5, 5, va5, &phys, &left, &f) && phys == 0x5234);
  CHECK(!grass_walk(&m.map, pml4, 4, va5, &phys, &left, &f));                 // not canonical with 4 levels
  CHECK(!grass_walk(&m.map, pml5, 5, 0xff00000000000000ull, &phys, &left, &f) && f.status == GRASS_E_UNMAPPED);

  // The direct map by arithmetic, without tables; beyond its span, the tables decide.
  grass_paging dm{pml4, 4, 0, 0xffff888000000000ull, 1 << 20};
  CHECK(grass_kernel_to_phys(&m.map, &dm, 0xffff888000005ff8ull, &phys, &left, &f) && phys == 0x5ff8 && left == 8);
  CHECK(!grass_kernel_to_phys(&m.map, &dm, 0xffff888000000000ull + (2 << 20), &phys, &left, &f));

  // User space through another root; physical reads spanning two ranges fail where memory ends.
  const uint64_t user_pml4 = 0x8000, user_va = 0x00007f0000000ff8ull;
  m.set(user_pml4, idx(user_va, 4), pdpt | P);
  m.set(pdpt, idx(user_va, 3), pd | P);
  m.set(pd, idx(user_va, 2), pt | P);
  m.set(pt, idx(user_va, 1), 0x5000 | P);
  CHECK(grass_read(&m.map, &pg, GRASS_SPACE_USER, user_pml4, user_va, buf, 8, &f) && memcmp(buf, "ABCDEFGH", 8) == 0);
  CHECK(grass_read(&m.map, &pg, GRASS_SPACE_PHYSICAL, 0, 0x9000, buf, 8, &f) && memcmp(buf, "IJKLMNOP", 8) == 0);
  CHECK(!grass_read(&m.map, &pg, GRASS_SPACE_PHYSICAL, 0, (1 << 20) - 4, buf, 8, &f) && f.status == GRASS_E_OUT_OF_RANGE && f.address == 1 << 20);
  return check_report("test_translate");
}
