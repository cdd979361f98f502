// grass save-vmcore's throughput over the shm transport, from a paused testbed guest's RAM through
// the cpu-backend agent into an ELF vmcore on this machine's temporary disk, next to the
// transport's floor: one-sided reads of a slot's 1 MiB data area with nothing else (no request,
// no agent copy, no CRC, no file). One request in flight against all slots but the heartbeat's
// shows what the parallel slots buy; --kernel-only counts the bytes it actually moved.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Bench, FigureGroup } from '../lib';
import { bootGuest } from '../../testbed';
import { connectTarget } from '../../src/rdma/connect';
import { writeNewKeyFile } from '../../src/rdma/key';
import { startAgent } from '../../src/rdma/local-agent';
import type { GrassClient } from '../../src/rdma/client';
import * as L from '../../src/rdma/protocol/layout';
import { saveVmcore, SaveOptions } from '../../src/vmcore/save';

const GUEST_MIB = 256;
const RUNS = 3;

/** save-vmcore `runs` times into fresh files; MB/s of the bytes fetched, and the last result. */
async function saveRuns(client: GrassClient, dir: string, options: SaveOptions, runs: number): Promise<{ values: number[]; fileBytes: number; fetchedBytes: number }> {
  const values: number[] = [];
  let last = { fileBytes: 0, fetchedBytes: 0 };
  for (let r = 0; r < runs; r++) {
    const out = path.join(dir, `run-${r}.vmcore`);
    const start = process.hrtime.bigint();
    last = await saveVmcore(client, out, options);
    values.push(last.fetchedBytes / (Number(process.hrtime.bigint() - start) / 1e3));
    rmSync(out);
    rmSync(`${out}.manifest.json`);
  }
  return { values, ...last };
}

/** The figures of one transport: its floor first, then save-vmcore against it. */
export async function bulkFigures(bench: Bench, client: GrassClient, dir: string, transport: string, guestMiB = GUEST_MIB, runs = RUNS): Promise<void> {
  const chunk = client.header.slotDataBytes;
  const dataArea = client.header.headerBytes + client.header.slotBytes + L.GRASS_SLOT_DATA_OFFSET;
  await bench.throughput('floor-read', `${transport}: one-sided read of a slot's ${chunk >> 10} KiB data area (the transport's floor)`, chunk, () => client.transport.read(dataArea, chunk), { runs: Math.max(3, runs * 3), inner: 20 });
  const one = await saveRuns(client, dir, { parallel: 1 }, runs);
  bench.record('save-one-slot', `${transport}: save-vmcore of ${guestMiB} MiB, 1 request in flight`, 'MB/s', one.values, { versus: 'floor-read' });
  const all = await saveRuns(client, dir, {}, runs);
  bench.record('save', `${transport}: save-vmcore of ${guestMiB} MiB, ${client.header.slotCount - 1} requests in flight`, 'MB/s', all.values, { versus: 'floor-read' });
  const kernel = await saveRuns(client, dir, { kernelOnly: true }, runs);
  bench.record('save-kernel-only', `${transport}: save-vmcore --kernel-only (bytes moved; file ${(all.fileBytes / kernel.fileBytes).toFixed(1)}x smaller)`, 'MB/s', kernel.values, {
    versus: 'floor-read',
    note: `--kernel-only wrote ${kernel.fileBytes} bytes (fetched ${kernel.fetchedBytes}) against ${all.fileBytes} for all memory: ${(all.fileBytes / kernel.fileBytes).toFixed(2)}x smaller; its MB/s counts the bytes fetched, the struct page scan included in the time`,
  });
}

export const group: FigureGroup = {
  name: 'bulk-shm',
  description: `save-vmcore throughput over shm (${GUEST_MIB} MiB guest, paused) vs the transport's read floor`,
  async run(bench) {
    const dir = mkdtempSync(path.join(tmpdir(), 'grass-bench-bulk-'));
    const keyFile = path.join(dir, 'key');
    const shmPath = `/dev/shm/grass-bench-bulk-${process.pid}`;
    writeNewKeyFile(keyFile);
    const guest = await bootGuest({ memMiB: GUEST_MIB, cpus: 2 });
    try {
      await guest.pause();
      const agent = await startAgent(['--memory', `qemu-ram:${guest.ramFile}`, '--memory-map', guest.memoryMapFile, '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent'], 120_000);
      try {
        const session = await connectTarget(`shm:${shmPath}`, { keyFile });
        try {
          await bulkFigures(bench, session.client, dir, 'shm');
        } finally {
          await session.close();
        }
      } finally {
        await agent.stop();
      }
    } finally {
      await guest.down();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
