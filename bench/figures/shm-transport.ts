// The shm transport's floor: a bare one-sided word write + read, and bulk read throughput next
// to a plain Buffer.copy of the same size in the same run; for both access methods (mmap
// through koffi, pread/pwrite), which is how docs/protocol.md chose mmap.
import { rmSync, writeFileSync } from 'node:fs';
import type { FigureGroup } from '../lib';
import { openShmTransport, ShmAccess } from '../../src/rdma/shm';

const BUFFER_BYTES = 16 << 20;
const BULK_BYTES = 1 << 20;

export const group: FigureGroup = {
  name: 'shm',
  description: 'shm transport floor: word write+read, bulk read vs Buffer.copy',
  async run(bench) {
    const path = `/dev/shm/grass-bench-${process.pid}`;
    writeFileSync(path, Buffer.alloc(BUFFER_BYTES));
    try {
      const source = Buffer.alloc(BULK_BYTES, 0x5a);
      const target = Buffer.alloc(BULK_BYTES);
      await bench.throughput('memcpy-1MiB', 'Buffer.copy of 1 MiB (the floor for reads)', BULK_BYTES, () => source.copy(target), { inner: 50 });
      for (const access of ['mmap', 'pread'] as ShmAccess[]) {
        const t = await openShmTransport(path, access);
        try {
          let seq = 0n;
          await bench.time(`${access}-word-write-read`, `${access}: one word written then one read (heartbeat floor)`, async () => {
            await t.writeWord(4096, ++seq);
            await t.readWord(4096 + 64);
          }, { inner: 2000 });
          await bench.time(`${access}-read-4KiB`, `${access}: read of 4 KiB`, () => t.read(8192, 4096), { inner: 2000 });
          await bench.throughput(`${access}-read-1MiB`, `${access}: read of 1 MiB`, BULK_BYTES, () => t.read(1 << 20, BULK_BYTES), { inner: 50, versus: 'memcpy-1MiB' });
        } finally {
          await t.close();
        }
      }
    } finally {
      rmSync(path, { force: true });
    }
  },
};
