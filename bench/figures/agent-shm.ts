// The agent (cpu backend) over shm, on a testbed guest paused so its vCPUs do not compete for
// the host's cores: heartbeat round trip next to the transport's bare word write + read,
// process count and list, describe, and memory-read throughput next to Buffer.copy of the same
// size measured in the same run. A heartbeat while another process keeps bulk reads in flight is
// measured next to the idle one; with GRASS_BENCH_BASE_REV=REV (bench/base-agent.ts) the agent
// and client of REV give agent.heartbeat-base, next to this revision's measured the same way.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Bench, FigureGroup } from '../lib';
import { buildBaseAgent, probeHeartbeats } from '../base-agent';
import { bootGuest } from '../../testbed';
import { connectTarget } from '../../src/rdma/connect';
import { writeNewKeyFile } from '../../src/rdma/key';
import { startAgent } from '../../src/rdma/local-agent';
import { openShmTransport } from '../../src/rdma/shm';

const PAPER_PROCESSES = 155;
const root = path.resolve(__dirname, '../..');
const BULK_LOAD_BYTES = 1 << 30;

/** agent.heartbeat-during-bulk: heartbeats while bench/bulk-load.ts moves 1 GiB on the other slots. */
async function heartbeatDuringBulk(bench: Bench, heartbeat: () => Promise<unknown>, target: string, keyFile: string, physStart: bigint): Promise<void> {
  const load = spawn(process.execPath, ['--import', 'tsx', 'bench/bulk-load.ts', target, keyFile, String(physStart), String(256 << 20), String(BULK_LOAD_BYTES)], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const exited = new Promise<number | null>((resolve) => load.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    load.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.startsWith('started\n')) resolve();
    });
    void exited.then((code) => reject(new Error(`bench/bulk-load.ts exited (status ${code}) before its first reply`)));
  });
  const figure = await bench.time('heartbeat-during-bulk', 'heartbeat round trip while another process keeps 1 MiB bulk reads in flight on every other slot (1 GiB in all)', heartbeat, { inner: 20, runs: 21, versus: 'heartbeat' });
  const inFlight = load.exitCode === null;
  const code = await exited;
  const result = JSON.parse(out.trim().split('\n').pop()!) as { bytes: number; seconds: number };
  if (code !== 0) throw new Error(`bench/bulk-load.ts failed (status ${code})`);
  figure.note = `the load moved ${result.bytes} bytes in ${result.seconds.toFixed(2)} s (${(result.bytes / result.seconds / 1e6).toFixed(0)} MB/s) and was ${inFlight ? 'in flight for every run' : 'over before the last run: fewer heartbeats overlapped it'}`;
}

export const group: FigureGroup = {
  name: 'agent',
  description: 'agent over shm on a paused testbed guest: heartbeat, ps, describe, read throughput',
  async run(bench) {
    const dir = mkdtempSync(path.join(tmpdir(), 'grass-bench-'));
    const keyFile = path.join(dir, 'key');
    const shmPath = `/dev/shm/grass-bench-agent-${process.pid}`;
    const scratchPath = `/dev/shm/grass-bench-scratch-${process.pid}`;
    writeNewKeyFile(keyFile);
    const base = buildBaseAgent();  // built before any figure is measured
    const guest = await bootGuest({ memMiB: 512, cpus: 2 });
    try {
      const agentArgs = (shm: string) => ['--memory', `qemu-ram:${guest.ramFile}`, '--memory-map', guest.memoryMapFile, '--listen', `shm:${shm}`, '--key-file', keyFile, '--exit-with-parent'];
      const agent = await startAgent(agentArgs(shmPath), 120_000);
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
          if (base) {
            const baseShm = `/dev/shm/grass-bench-base-${process.pid}`;
            const old = await startAgent(agentArgs(baseShm), 120_000, base.binary);
            try {
              bench.record('heartbeat-base', `heartbeat round trip, agent and client of ${base.revision} (${base.commit}), in a process of their own`, 'µs', base.heartbeats(`shm:${baseShm}`, keyFile, 500, 21));
            } finally {
              await old.stop();
              rmSync(baseShm, { force: true });
            }
            bench.record('heartbeat-process', 'heartbeat round trip, this revision, in a process of its own (as heartbeat-base)', 'µs', probeHeartbeats(root, `shm:${shmPath}`, keyFile, 500, 21), { versus: 'heartbeat-base' });
          }
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
          await heartbeatDuringBulk(bench, () => client.heartbeatRoundTrip(), `shm:${shmPath}`, keyFile, physStart);
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
      base?.remove();
    }
  },
};
