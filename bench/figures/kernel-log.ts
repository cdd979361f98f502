// The kernel log read from memory on a paused testbed guest whose log wrapped: the whole ring in
// process (reads counted) next to one read of the ring's three arrays in full (the floor a naive
// reader would pay), an incremental poll, and `grass dmesg --json` from launch, through the agent
// and on an ELF vmcore, next to `grass describe --json` (connect and fetch the description: the
// part of dmesg that is not the log). No peer runs here: crash and drgn need the 858 MB -dbg
// package, and makedumpfile 1.7.2 --dump-dmesg refuses QEMU's ELF dumps, paged or not ("Can't
// get the number of PT_LOAD": 65745 program headers with paging=true, PN_XNUM).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FigureGroup } from '../lib';
import { bootGuest } from '../../testbed';
import { connectTarget } from '../../src/rdma/connect';
import { writeNewKeyFile } from '../../src/rdma/key';
import { startAgent } from '../../src/rdma/local-agent';
import { KernelLogReader } from '../../src/kernel/log/ringbuffer';
import type { ReadRequest, TargetMemory } from '../../src/types/target';
import { cliCommand } from './btf';

const root = path.resolve(__dirname, '../..');

/** Counts the round trips and bytes of the reads it passes on. */
class CountingMemory implements TargetMemory {
  batches = 0;
  bytes = 0;
  constructor(private readonly inner: TargetMemory) {}
  read(...a: Parameters<TargetMemory['read']>): ReturnType<TargetMemory['read']> {
    this.batches++;
    this.bytes += a[2];
    return this.inner.read(...a);
  }
  readBatch(requests: ReadRequest[]): ReturnType<TargetMemory['readBatch']> {
    this.batches++;
    for (const r of requests) this.bytes += r.length;
    return this.inner.readBatch(requests);
  }
}

export const group: FigureGroup = {
  name: 'kernel-log',
  description: 'kernel log from memory on a paused guest with a wrapped ring: full read, polls, dmesg launch (agent, vmcore)',
  async run(bench) {
    const dir = mkdtempSync(path.join(tmpdir(), 'grass-bench-klog-'));
    const keyFile = path.join(dir, 'key');
    const shmPath = `/dev/shm/grass-bench-klog-${process.pid}`;
    writeNewKeyFile(keyFile);
    const guest = await bootGuest({ memMiB: 256, cpus: 2, append: ['printk.devkmsg=on'] });
    try {
      await guest.exec(`i=0; while [ $i -lt 250 ]; do echo "grass bench filler $i ${'z'.repeat(800)}" > /dev/kmsg; i=$((i+1)); done`, { timeoutMs: 300_000 });
      const agent = await startAgent(['--memory', `qemu-ram:${guest.ramFile}`, '--memory-map', guest.memoryMapFile, '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent'], 120_000);
      try {
        await guest.pause();
        const session = await connectTarget(`shm:${shmPath}`, { keyFile });
        let records = 0;
        try {
          const memory = new CountingMemory(session.client);
          const reader = new KernelLogReader(memory, await session.client.describe());
          const first = await reader.read();
          records = first.records.length;
          const fullBatches = memory.batches;
          const fullBytes = memory.bytes;
          // The floor: the three arrays in full, one batch (what reading the ring blindly costs).
          const l = reader.layout;
          const prb = (await session.client.read({ kind: 'kernel' }, l.prbAddress, 8)) as Uint8Array;
          const rbAddr = new DataView(prb.buffer, prb.byteOffset).getBigUint64(0, true);
          const rb = await session.client.read({ kind: 'kernel' }, rbAddr, l.ringbuffer.size);
          const rv = new DataView(rb.buffer, rb.byteOffset, rb.byteLength);
          const dr = l.ringbuffer.descRing;
          const tr = l.ringbuffer.textDataRing;
          const count = 2 ** rv.getUint32(dr + l.descRing.countBits, true);
          const arrays: ReadRequest[] = [
            { space: { kind: 'kernel' }, address: rv.getBigUint64(dr + l.descRing.descs, true), length: count * l.desc.size },
            { space: { kind: 'kernel' }, address: rv.getBigUint64(dr + l.descRing.infos, true), length: count * l.info.size },
            { space: { kind: 'kernel' }, address: rv.getBigUint64(tr + l.dataRing.data, true), length: 2 ** rv.getUint32(tr + l.dataRing.sizeBits, true) },
          ];
          const arrayBytes = arrays.reduce((n, r) => n + r.length, 0);
          await bench.time('arrays-floor', `one batch reading the ring's three arrays in full (${(arrayBytes / 1024).toFixed(0)} KiB)`, () => session.client.readBatch(arrays), { runs: 21 });
          await bench.time('full-read', `whole log in process (${records} records, ${fullBatches} batches, ${(fullBytes / 1024).toFixed(0)} KiB read)`, () => reader.read(), { runs: 21, versus: 'arrays-floor' });
          const since = first.headSeq - 3;
          memory.batches = 0;
          memory.bytes = 0;
          await reader.read({ sinceSeq: since });
          await bench.time('poll-3', `incremental read of the last 3 records (${memory.batches} batches, ${memory.bytes} bytes read)`, () => reader.read({ sinceSeq: since }), { runs: 21 });
          await bench.time('poll-none', 'incremental read when nothing is new', () => reader.read({ sinceSeq: first.headSeq }), { runs: 21 });
        } finally {
          await session.close();
        }
        const vmcore = path.join(dir, 'vmcore');
        await guest.dump(vmcore);
        const cli = await cliCommand();
        const micros = (command: string, args: string[]): number => {
          const start = process.hrtime.bigint();
          execFileSync(command, args, { maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'] });
          return Number(process.hrtime.bigint() - start) / 1000;
        };
        const target = ['--target', `shm:${shmPath}`, '--key-file', keyFile];
        const live: number[] = [];
        const core: number[] = [];
        const describe: number[] = [];
        for (let r = 0; r < 7; r++) {
          describe.push(micros(process.execPath, [...cli, 'describe', '--json', ...target]));
          live.push(micros(process.execPath, [...cli, 'dmesg', '--json', ...target]));
          core.push(micros(process.execPath, [...cli, 'dmesg', '--json', '--target', `vmcore:${vmcore}`]));
        }
        bench.record('launch-describe', 'grass describe --json through the running agent, process', 'µs', describe);
        bench.record('launch-agent', `grass dmesg --json through the running agent, launch to full log (${records} records)`, 'µs', live, { versus: 'launch-describe' });
        bench.record('launch-vmcore', 'grass dmesg --json on an ELF vmcore of the guest (local agent started), process', 'µs', core, { versus: 'launch-agent' });
      } finally {
        await agent.stop();
      }
    } finally {
      await guest.down();
      rmSync(dir, { recursive: true, force: true });
      rmSync(shmPath, { force: true });
    }
  },
};
