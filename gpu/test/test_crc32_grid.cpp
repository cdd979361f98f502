// The cuda backend's copy-grid checksum (crypto/crc32_grid.h), its arithmetic run on the host
// lane by lane as the grid's blocks run it: each chunk's lanes fold their strided units, align
// to the chunk's end and are XORed; the chunks are joined in order; a short tail is combined
// after. Checked against CRC32C from its definition (check.h) for whole, partial and tailed sizes.
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "crypto/crc32.h"

namespace {

// One chunk of a grid copy, as copy_grid_chunk computes it with GRASS_GRID_LANES lanes.
uint32_t chunk_raw_crc(const grass_crc32_tables* c, const grass_crc32_grid_tables* g, const uint8_t* chunk, uint32_t chunk_units) {
  uint32_t sum = 0;
  for (uint32_t t = 0; t < GRASS_GRID_LANES; t++) {
    uint32_t align_full = grass_crc32_shift(c, 1u << 31, 16ull * (GRASS_GRID_LANES - 1 - t));
    uint32_t folded = 0, last = 0;
    bool any = false;
    for (uint32_t r = 0; r < GRASS_GRID_UNITS_PER_LANE; r++) {
      uint32_t u = r * GRASS_GRID_LANES + t;
      if (u >= chunk_units) continue;
      uint32_t w[4];
      memcpy(w, chunk + 16ull * u, 16);
      folded = grass_crc32_mul_by(g->mul_stride, folded) ^ grass_crc32_raw16(g->slice, w[0], w[1], w[2], w[3]);
      last = u;
      any = true;
    }
    if (any) sum ^= grass_crc32_lane_aligned(c, folded, last, chunk_units, align_full);
  }
  return sum;
}

// The reply checksum of n bytes copied by the grid: the 16-byte body by chunks, the tail serially.
uint32_t grid_crc(const grass_crc32_tables* c, const grass_crc32_grid_tables* g, const uint8_t* data, uint64_t n) {
  uint64_t body = n & ~15ull;
  std::vector<uint32_t> chunks;
  for (uint64_t at = 0; at < body; at += GRASS_GRID_CHUNK_BYTES) {
    uint64_t len = body - at < GRASS_GRID_CHUNK_BYTES ? body - at : GRASS_GRID_CHUNK_BYTES;
    chunks.push_back(chunk_raw_crc(c, g, data + at, (uint32_t)(len / 16)));
  }
  uint32_t crc = grass_crc32_join_chunks(c, g, chunks.data(), body);
  if (n > body) crc = grass_crc32_combine(c, crc, grass_crc32_serial(c, data + body, n - body), n - body);
  return crc;
}

}  // namespace

int main() {
  static grass_crc32_tables crc;
  grass_crc32_tables_init(&crc);
  static grass_crc32_grid_tables grid;
  grass_crc32_grid_tables_init(&crc, &grid);
  std::mt19937_64 rng(20261207);
  std::vector<uint8_t> buf((1u << 20) + 64);
  for (auto& b : buf) b = (uint8_t)rng();
  int mismatches = 0, sizes = 0;
  const unsigned long long chunk = GRASS_GRID_CHUNK_BYTES;
  for (uint64_t n : {16ull, 32ull, 4096ull, 4112ull, chunk - 16, chunk, chunk + 16, chunk + 21, 3 * chunk + 48 + 7,
                     65536ull, 65536ull + 15, 1ull << 20, (1ull << 20) + 5, (1ull << 20) - 4096 + 16}) {
    sizes++;
    if (grid_crc(&crc, &grid, buf.data(), n) != reference_crc32c(buf.data(), n)) {
      mismatches++;
      fprintf(stderr, "grid CRC differs at %llu bytes\n", (unsigned long long)n);
    }
  }
  CHECK(sizes == 14 && mismatches == 0);
  // A changed byte anywhere changes the grid's checksum as it changes the serial one.
  uint32_t before = grid_crc(&crc, &grid, buf.data(), 65536);
  buf[40000] ^= 1;
  CHECK(grid_crc(&crc, &grid, buf.data(), 65536) != before);
  CHECK(grid_crc(&crc, &grid, buf.data(), 65536) == reference_crc32c(buf.data(), 65536));
  return check_report("test_crc32_grid");
}
