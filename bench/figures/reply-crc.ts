// What the reply CRC32C costs on each side: the agent's (gpu/src/crypto/crc32.h, compiled here
// with the agent's -O2: the SSE4.2 instruction over three streams, and the slice-by-8 table code
// the device and CPUs without SSE4.2 run) and the client's (@node-rs/crc32), each over 1 MiB and
// 16 MiB, next to Buffer.copy of the same size. Both sides compute it over every reply chunk.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import type { FigureGroup } from '../lib';

const root = path.resolve(__dirname, '../..');

/** Prints, per run, the nanoseconds of one CRC over `bytes` bytes (argv[3] "table": the table code). */
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
  bool table = argc > 3;
  uint32_t acc = 0;
  for (int r = 0; r < runs; r++) {
    auto s = std::chrono::steady_clock::now();
    acc ^= table ? grass_crc32_serial(&t, buf.data(), buf.size()) : grass_crc32(&t, buf.data(), buf.size());
    printf("%lld\\n", (long long)std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - s).count());
  }
  return acc == 0xffffffffu;  // keeps the loop from being optimised away
}
`;

export const group: FigureGroup = {
  name: 'reply-crc',
  description: 'reply CRC32C: the agent\'s (SSE4.2 and table) and the client\'s (@node-rs/crc32), vs Buffer.copy',
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
        bench.record(`agent-${label}`, `agent CRC32C (SSE4.2 crc32, three streams, -O2) of ${size >> 20} MiB`, 'MB/s', agentNs.map((ns) => (size / ns) * 1000), { versus: `memcpy-${label}` });
        const tableNs = execFileSync(exe, [String(size), '15', 'table'], { encoding: 'utf8' }).trim().split('\n').map(Number);
        bench.record(`agent-table-${label}`, `agent CRC32C (slice-by-8 tables, the device's code, -O2) of ${size >> 20} MiB`, 'MB/s', tableNs.map((ns) => (size / ns) * 1000), { versus: `memcpy-${label}` });
        await bench.throughput(`client-${label}`, `client CRC32C (@node-rs/crc32) of ${size >> 20} MiB`, size, () => crc32c(source), { inner: 8, versus: `memcpy-${label}` });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
