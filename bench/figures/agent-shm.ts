// The agent (cpu backend) over shm, on a testbed guest paused so its vCPUs do not compete for
// the host's cores: heartbeat round trip next to the transport's bare word write + read,
// process count and list, describe, and memory-read throughput next to Buffer.copy of the same
// size measured in the same run.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FigureGroup } from '../lib';
import { bootGuest } from '../../testbed';
import { connectTarget } from '../../src/rdma/connect';
import { writeNewKeyFile } from '../../src/rdma/key';
import { startAgent } from '../../src/rdma/local-agent';
import { openShmTransport } from '../../src/rdma/shm';

const PAPER_PROCESSES = 155;

export const group: FigureGroup = {
  name: 'agent',
  description: 'agent over shm on a paused testbed guest: heartbeat, ps, describe, read throughput',
  async run(bench) {
    const dir = mkdtempSync(path.join(tmpdir(), 'grass-bench-'));
    const keyFile = path.join(dir, 'key');
    const shmPath = `/dev/shm/grass-bench-agent-${process.pid}`;
    const scratchPath = `/dev/shm/grass-bench-scratch-${process.pid}`;
    writeNewKeyFile(keyFile);
    const guest = await bootGuest({ memMiB: 512, cpus: 2 });
    try {
      const agent = await startAgent(['--memory', `qemu-ram:${guest.ramFile}`, '--memory-map', guest.memoryMapFile, '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent'], 120_000);
      try {
        // The paper listed 155 processes: bring the guest to about that many.
        const running = (await guest.exec('ls -d /proc/[0-9]* | wc -l')).trim();
        await guest.spawn(Math.max(1, PAPER_PROCESSES - Number(running)));
        await guest.pause();
        const session = await connectTarget(`shm:${shmPath}`, { keyFile });
        writeFileSync(scratchPath, Buffer.alloc(1 << 20));
        const scratch = await openShmTransport(scratchPath);
        try {
          const { client } = session;
          let seq = 0n;
          await bench.time('word-write-read', `bare word write + read (${scratch.name.replace(/^.*\(/, '(')} floor)`, async () => {
            await scratch.writeWord(4096, ++seq);
            await scratch.readWord(4096 + 64);
          }, { inner: 2000 });
          await bench.time('heartbeat', 'heartbeat round trip', () => client.heartbeatRoundTrip(), {
            inner: 500,
            runs: 21,
            versus: 'word-write-read',
            note: `paper: 75 µs (48 µs to post request and flag, 27 µs more to see read-permit) over RDMA, ConnectX-4 100 GbE to a Quadro M4000; here shm, cpu backend, TCG guest paused`,
          });
          await bench.timed('heartbeat-cold', 'heartbeat round trip, agent idle 50 ms before (it naps when idle)', async () => {
            await new Promise((r) => setTimeout(r, 50));
            return client.heartbeatRoundTrip();
          }, { runs: 21 });
          await bench.time('liveness', 'liveness block read (no request; seqlock)', () => client.liveness(), { inner: 1000 });
          const tasks = (await client.processList()).length;
          await bench.time('process-count', `process count (${tasks} processes)`, () => client.processCount(), { inner: 100, runs: 21 });
          await bench.time('process-list', `process list (${tasks} processes)`, () => client.processList(), {
            inner: 100,
            runs: 21,
            versus: 'process-count',
            note: `paper: the list took 27 µs more than the count, 155 processes, over RDMA; here ${tasks} processes over shm`,
          });
          await bench.time('describe', 'describe: the whole target description (symbols + 4 MB BTF, chunked)', async () => {
            const fresh = await connectTarget(`shm:${shmPath}`, { keyFile });
            try {
              await fresh.client.describe();
            } finally {
              await fresh.close();
            }
          }, { runs: 11, warmup: 1 });

          const physStart = guest.memoryMap().ranges.map((r) => BigInt(r.physStart)).sort((a, b) => (a < b ? -1 : 1))[0] + (1n << 20n);
          for (const size of [64 << 10, 1 << 20, 16 << 20]) {
            const label = size >= 1 << 20 ? `${size >> 20} MiB` : `${size >> 10} KiB`;
            const source = Buffer.alloc(size, 0x5a);
            const target = Buffer.alloc(size);
            const inner = Math.max(2, Math.round((64 << 20) / size / 4));
            await bench.throughput(`memcpy-${label.replace(' ', '')}`, `Buffer.copy of ${label} (floor)`, size, () => source.copy(target), { inner });
            await bench.throughput(`read-phys-${label.replace(' ', '')}`, `physical read of ${label} through the agent`, size, () => client.read({ kind: 'physical' }, physStart, size), {
              inner: Math.max(2, Math.round(inner / 8)),
              versus: `memcpy-${label.replace(' ', '')}`,
            });
          }
        } finally {
          await scratch.close();
          await session.close();
        }
      } finally {
        await agent.stop();
      }
    } finally {
      await guest.down();
      rmSync(shmPath, { force: true });
      rmSync(scratchPath, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
