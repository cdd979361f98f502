// What the reply CRC32 costs on each side: the agent's slice-by-8 CRC (gpu/src/crypto/crc32.h,
// compiled here with the agent's -O2) and the client's zlib crc32, each over 1 MiB and 16 MiB,
// next to Buffer.copy of the same size. The agent computes it over every reply chunk, so it
// caps bulk reads.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { FigureGroup } from '../lib';

const root = path.resolve(__dirname, '../..');

/** Prints, per run, the nanoseconds of one CRC over `bytes` bytes. */
const program = `#include "crypto/crc32.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
int main(int argc, char** argv) {
  static grass_crc32_tables t;
  grass_crc32_tables_init(&t);
  std::vector<uint8_t> buf(strtoull(argv[1], 0, 10), 0x5a);
  int runs = atoi(argv[2]);
  uint32_t acc = 0;
  for (int r = 0; r < runs; r++) {
    auto s = std::chrono::steady_clock::now();
    acc ^= grass_crc32(&t, buf.data(), buf.size());
    printf("%lld\\n", (long long)std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - s).count());
  }
  return acc == 0xffffffffu;  // keeps the loop from being optimised away
}
`;

export const group: FigureGroup = {
  name: 'reply-crc',
  description: 'reply CRC32: the agent\'s slice-by-8 and the client\'s zlib, vs Buffer.copy',
  async run(bench) {
    const dir = mkdtempSync(path.join(tmpdir(), 'grass-bench-crc-'));
    try {
      const exe = path.join(dir, 'crc');
      writeFileSync(path.join(dir, 'crc.cpp'), program);
      execFileSync('g++', ['-O2', '-std=c++17', '-I', path.join(root, 'gpu/include'), '-I', path.join(root, 'gpu/src'), '-o', exe, path.join(dir, 'crc.cpp')]);
      for (const size of [1 << 20, 16 << 20]) {
        const label = `${size >> 20}MiB`;
        const source = Buffer.alloc(size, 0x5a);
        const target = Buffer.alloc(size);
        await bench.throughput(`memcpy-${label}`, `Buffer.copy of ${size >> 20} MiB (floor)`, size, () => source.copy(target), { inner: 8 });
        const agentNs = execFileSync(exe, [String(size), '15'], { encoding: 'utf8' }).trim().split('\n').map(Number);
        bench.record(`agent-${label}`, `agent CRC32 (slice-by-8, -O2) of ${size >> 20} MiB`, 'MB/s', agentNs.map((ns) => (size / ns) * 1000), { versus: `memcpy-${label}` });
        await bench.throughput(`client-${label}`, `client CRC32 (zlib) of ${size >> 20} MiB`, size, () => crc32(source), { inner: 8, versus: `memcpy-${label}` });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
