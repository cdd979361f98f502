// GRASS next to Debian's own kernel-dump tools on one ELF vmcore of a testbed guest holding more
// than 1000 tasks (saved by grass save-vmcore from the paused guest): from launch to a full,
// correct process list, and to one decoded task_struct (init_task), for
//  - grass, from nothing but the image (the offline agent finds the kernel, its symbols and BTF
//    in the memory itself): `grass ps --threads --json`, `grass decode init_task --json`;
//  - drgn 0.0.22 (python3-drgn) with the -dbg vmlinux: for_each_task, print(init_task);
//  - crash 8.0.2 with the same vmlinux: `list task_struct.tasks` from init_task (its `ps` is
//    wrong on this kernel: shared/notes/peers.md), `struct task_struct`.
// The same memory saved as a kdump-compressed file (zstd) too: grass ps, drgn and crash's list on it,
// and random page reads through the offline agent from the ELF and the kdump file.
// Each run under /usr/bin/time -v: wall time and peak RSS (of the largest process: for grass the
// CLI or the offline agent it starts). Each list is checked against the guest's /proc.
// Off unless GRASS_BENCH_PEERS=1: it needs the 858 MB -dbg package (fetched once, announced,
// cached in .cache/kernel-dbg/) and crash takes tens of seconds per launch.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FigureGroup } from '../lib';
import { bootGuest, GroundTruth } from '../../testbed';
import { connectTarget } from '../../src/rdma/connect';
import { writeNewKeyFile } from '../../src/rdma/key';
import { startAgent } from '../../src/rdma/local-agent';
import { saveVmcore } from '../../src/vmcore/save';
import { crashDecodeInitTask, crashTasks, drgnDecodeInitTask, drgnTasks, ensurePeerTools, kernelDebugVmlinux, PeerRun, PeerTask, timed } from '../../test/long/peer-tools';
import { cliCommand } from './btf';

const SPAWNED = 1000;
const RANDOM_PAGES = 16384;

/** MB/s of random whole-page physical reads through an offline agent on the file, one figure a run. */
async function randomPageReads(file: string, count: number): Promise<number[]> {
  const session = await connectTarget(`vmcore:${file}`);
  try {
    const ram = (await session.client.describe()).memoryMap;
    const pages = ram.map((r) => ({ first: r.physStart / 4096n, count: Number(r.length / 4096n) }));
    const total = pages.reduce((n, r) => n + r.count, 0);
    let seed = 23;
    const pick = (): bigint => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      let k = seed % total;
      for (const r of pages) {
        if (k < r.count) return (r.first + BigInt(k)) * 4096n;
        k -= r.count;
      }
      throw new Error('unreachable: k < total');
    };
    const out: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const started = process.hrtime.bigint();
      for (let done = 0; done < count; done += 64) {
        const batch = Array.from({ length: Math.min(64, count - done) }, () => ({ space: { kind: 'physical' as const }, address: pick(), length: 4096 }));
        for (const r of await session.client.readBatch(batch)) if (!(r instanceof Uint8Array)) throw new Error(`random page read failed: ${r.message}`);
      }
      out.push((count * 4096) / (Number(process.hrtime.bigint() - started) / 1e9) / 1e6);
    }
    return out;
  } finally {
    await session.close();
  }
}
const RUNS = 3;
const CRASH_RUNS = 1;

/**
 * Every task in both truths (taken one after the other before the pause; the truth's own helper
 * processes come and go) must be listed with its comm, and nothing but the idle task may be
 * listed that neither truth holds. Returns how many tasks were compared.
 */
function checkList(tool: string, listed: PeerTask[], truths: GroundTruth[], threads: boolean): number {
  const [a, b] = truths.map((t) => new Map(t.tasks.filter((x) => threads || x.pid === x.tgid).map((x) => [x.pid, x.comm])));
  const byPid = new Map(listed.map((t) => [t.pid, t.comm]));
  let compared = 0;
  for (const [pid, comm] of a) {
    if (b.get(pid) !== comm) continue;
    const got = byPid.get(pid);
    if (got === undefined) throw new Error(`${tool}: pid ${pid} (${comm}) is in the guest's truth but not listed`);
    if (got !== comm.slice(0, 15) && !(got.startsWith('kworker') && comm.startsWith(got))) throw new Error(`${tool}: comm of pid ${pid}: ${got} vs ${comm}`);
    compared++;
  }
  const extra = listed.filter((t) => t.pid !== 0 && !a.has(t.pid) && !b.has(t.pid));
  if (extra.length) throw new Error(`${tool}: listed but in neither truth: ${JSON.stringify(extra.slice(0, 5))}`);
  return compared;
}

export const group: FigureGroup = {
  name: 'peers',
  description: `grass vs drgn and crash on one vmcore (> ${SPAWNED} tasks): launch to process list and to a decoded task_struct, peak RSS (GRASS_BENCH_PEERS=1)`,
  async run(bench) {
    if (process.env.GRASS_BENCH_PEERS !== '1') {
      process.stderr.write('bench: peers: not run (set GRASS_BENCH_PEERS=1: it fetches the 858 MB -dbg package once and runs crash)\n');
      return;
    }
    ensurePeerTools();
    const dir = mkdtempSync(path.join(tmpdir(), 'grass-bench-peers-'));
    const keyFile = path.join(dir, 'key');
    const shmPath = `/dev/shm/grass-bench-peers-${process.pid}`;
    const vmcore = path.join(dir, 'guest.vmcore');
    // The same memory as makedumpfile's kdump-compressed format (zstd pages), as a crashed
    // machine's kdump leaves it: grass and crash on it too, and grass's random page reads from both.
    const kdump = path.join(dir, 'guest.kdump');
    writeNewKeyFile(keyFile);
    let truths: GroundTruth[];
    let release: string;
    const guest = await bootGuest({ memMiB: 768, cpus: 2, kaslr: true });
    try {
      await guest.spawn(SPAWNED, { timeoutMs: 300_000 });
      release = (await guest.exec('uname -r')).trim();
      truths = [await guest.truth({ timeoutMs: 300_000 }), await guest.truth({ timeoutMs: 300_000 })];
      await guest.pause();
      const agent = await startAgent(['--memory', `qemu-ram:${guest.ramFile}`, '--memory-map', guest.memoryMapFile, '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent'], 120_000);
      try {
        const session = await connectTarget(`shm:${shmPath}`, { keyFile });
        try {
          await saveVmcore(session.client, vmcore);
          await saveVmcore(session.client, kdump, { format: 'kdump' });
        } finally {
          await session.close();
        }
      } finally {
        await agent.stop();
      }
    } finally {
      await guest.down();
    }
    try {
      const vmlinux = kernelDebugVmlinux(release);
      const cli = await cliCommand();
      const grassRun = (args: string[]): Promise<PeerRun<string>> => timed(process.execPath, [...cli, ...args, '--target', `vmcore:${vmcore}`], 300_000);
      const series = async <T>(runs: number, once: () => Promise<PeerRun<T>>, check: (r: T) => void): Promise<{ seconds: number[]; mib: number[] }> => {
        const seconds: number[] = [];
        const mib: number[] = [];
        for (let r = 0; r < runs; r++) {
          const run = await once();
          check(run.result);
          seconds.push(run.seconds);
          mib.push(run.peakRssKiB / 1024);
        }
        return { seconds, mib };
      };
      const listed = (tool: string, n: number): string => `${tool}: launch to the full process list (${n} tasks, checked against the guest's /proc)`;
      let n = 0;
      const grassList = await series(RUNS, () => grassRun(['ps', '--threads', '--json']), (out) => {
        n = checkList('grass', (JSON.parse(out) as { tasks: PeerTask[] }).tasks, truths, true);
      });
      bench.record('grass-ps', listed('grass ps --threads (from the image alone)', n), 's', grassList.seconds);
      bench.record('grass-ps-rss', 'grass ps: peak RSS (CLI or its offline agent)', 'MiB', grassList.mib);
      const drgnList = await series(RUNS, () => drgnTasks(vmcore, vmlinux), (tasks) => void checkList('drgn', tasks, truths, true));
      bench.record('drgn-ps', listed('drgn 0.0.22 for_each_task, -dbg vmlinux', n), 's', drgnList.seconds, { versus: 'grass-ps' });
      bench.record('drgn-ps-rss', 'drgn for_each_task: peak RSS', 'MiB', drgnList.mib, { versus: 'grass-ps-rss' });
      const initTask = BigInt((JSON.parse((await grassRun(['read', 'init_task', '1', '--json'])).result) as { address: string }).address);
      let processes = 0;
      const crashList = await series(CRASH_RUNS, () => crashTasks(vmcore, vmlinux, initTask), (tasks) => {
        processes = checkList('crash', tasks, truths, false);
      });
      bench.record('crash-ps', `crash 8.0.2 list task_struct.tasks from init_task: launch to the full list (${processes} processes: the list holds thread-group leaders; checked against the guest's /proc)`, 's', crashList.seconds, { versus: 'grass-ps' });
      bench.record('crash-ps-rss', 'crash list: peak RSS', 'MiB', crashList.mib, { versus: 'grass-ps-rss' });

      const kdumpRun = (args: string[]): Promise<PeerRun<string>> => timed(process.execPath, [...cli, ...args, '--target', `vmcore:${kdump}`], 300_000);
      const grassKdump = await series(RUNS, () => kdumpRun(['ps', '--threads', '--json']), (out) => void checkList('grass on kdump', (JSON.parse(out) as { tasks: PeerTask[] }).tasks, truths, true));
      bench.record('grass-ps-kdump', listed(`grass ps --threads on the kdump file (zstd, ${(statSync(kdump).size / 2 ** 20).toFixed(0)} MiB; the ELF is ${(statSync(vmcore).size / 2 ** 20).toFixed(0)} MiB)`, n), 's', grassKdump.seconds, { versus: 'grass-ps' });
      const drgnKdump = await series(RUNS, () => drgnTasks(kdump, vmlinux), (tasks) => void checkList('drgn on kdump', tasks, truths, true));
      bench.record('drgn-ps-kdump', listed('drgn 0.0.22 for_each_task on the kdump file (libkdumpfile)', n), 's', drgnKdump.seconds, { versus: 'grass-ps-kdump' });
      const crashKdump = await series(CRASH_RUNS, () => crashTasks(kdump, vmlinux, initTask), (tasks) => void checkList('crash on kdump', tasks, truths, false));
      bench.record('crash-ps-kdump', 'crash 8.0.2 list task_struct.tasks on the kdump file: launch to the full list', 's', crashKdump.seconds, { versus: 'grass-ps-kdump' });
      for (const [name, file] of [['elf', vmcore], ['kdump', kdump]] as const) {
        const pages = await randomPageReads(file, RANDOM_PAGES);
        bench.record(`grass-random-pages-${name}`, `grass: ${RANDOM_PAGES} random 4 KiB physical pages read from the ${name === 'kdump' ? 'kdump file (each decompressed on first touch, 256 MiB page cache)' : 'ELF file (mapped)'}, in batches of 64`, 'MB/s', pages, name === 'kdump' ? { versus: 'grass-random-pages-elf' } : {});
      }

      const decoded = (tool: string): string => `${tool}: launch to init_task decoded`;
      const hasSwapper = (tool: string) => (text: string): void => {
        if (!/swapper\/0/.test(text)) throw new Error(`${tool}: init_task's comm (swapper/0) not in its output: ${text.slice(0, 400)}`);
      };
      const grassDecode = await series(RUNS, () => grassRun(['decode', 'init_task', '--json']), hasSwapper('grass decode'));
      bench.record('grass-decode', decoded('grass decode init_task'), 's', grassDecode.seconds);
      bench.record('grass-decode-rss', 'grass decode: peak RSS', 'MiB', grassDecode.mib);
      const drgnDecode = await series(RUNS, () => drgnDecodeInitTask(vmcore, vmlinux), hasSwapper('drgn'));
      bench.record('drgn-decode', decoded('drgn print(init_task)'), 's', drgnDecode.seconds, { versus: 'grass-decode' });
      bench.record('drgn-decode-rss', 'drgn print(init_task): peak RSS', 'MiB', drgnDecode.mib, { versus: 'grass-decode-rss' });
      const crashDecode = await series(CRASH_RUNS, () => crashDecodeInitTask(vmcore, vmlinux, initTask), hasSwapper('crash'));
      bench.record('crash-decode', decoded('crash struct task_struct'), 's', crashDecode.seconds, { versus: 'grass-decode' });
      bench.record('crash-decode-rss', 'crash struct task_struct: peak RSS', 'MiB', crashDecode.mib, { versus: 'grass-decode-rss' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(`${vmcore}.manifest.json`, { force: true });
      rmSync(`${kdump}.manifest.json`, { force: true });
    }
  },
};
