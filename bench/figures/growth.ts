// How the process list grows with the number of tasks: one paused testbed guest brought to about
// 100, 1 000 and 10 000 processes in turn (grass-guest spawn, the guest resumed only to spawn
// more), and at each size the agent's process count and process list over shm (the remote `ps`
// of the paper) and the same list in remote-analysis mode (the kernel model walking the tasks
// through batched reads). Each list is checked for its size against what the guest holds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FigureGroup } from '../lib';
import { bootGuest } from '../../testbed';
import { connectTarget } from '../../src/rdma/connect';
import { writeNewKeyFile } from '../../src/rdma/key';
import { startAgent } from '../../src/rdma/local-agent';
import { KernelModel } from '../../src/kernel/model';
import { listTasks } from '../../src/kernel/tasks/tasks';

/** Processes in the guest at each step, the boot's own included (rounded: the count varies by a few). */
export const GROWTH_SIZES = [100, 1000, 10_000];

/**
 * The guest's /proc (read by grass-truth just before the pause) against a list: every listed pid
 * must be there, and every process there must be listed except the truth tool's own (grass-truth
 * and the commands it runs, gone by the pause: the newest pids, above every listed one).
 */
function checkAgainstTruth(who: string, pids: number[], truth: Map<number, string>): void {
  const extra = pids.filter((p) => !truth.has(p));
  const listed = new Set(pids);
  const newestListed = Math.max(...pids);
  const missing = [...truth].filter(([pid]) => !listed.has(pid) && pid < newestListed);
  if (extra.length > 0 || missing.length > 0) {
    throw new Error(`growth: ${who} listed ${pids.length} processes, the guest's /proc held ${truth.size}: ${extra.length} not in /proc (${extra.slice(0, 5).join(' ')}), ${missing.length} missing (${missing.slice(0, 5).map(([p, c]) => `${p} ${c}`).join(', ')})`);
  }
}

export const group: FigureGroup = {
  name: 'growth',
  description: `process count and list through the agent over shm, and in remote-analysis mode, at ${GROWTH_SIZES.join(' / ')} processes (one paused guest)`,
  async run(bench) {
    const dir = mkdtempSync(path.join(tmpdir(), 'grass-bench-growth-'));
    const keyFile = path.join(dir, 'key');
    const shmPath = `/dev/shm/grass-bench-growth-${process.pid}`;
    writeNewKeyFile(keyFile);
    // 10 000 sleeping processes take about 1 GiB of kernel stacks, page tables and task structs.
    const guest = await bootGuest({ memMiB: 2048, cpus: 2 });
    try {
      const agent = await startAgent(['--memory', `qemu-ram:${guest.ramFile}`, '--memory-map', guest.memoryMapFile, '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent'], 120_000);
      try {
        for (const size of GROWTH_SIZES) {
          const running = Number((await guest.exec('ls -d /proc/[0-9]* | wc -l')).trim());
          if (running < size) await guest.spawn(size - running, { timeoutMs: 60_000 + (size - running) * 40 });
          const truth = new Map((await guest.truth()).tasks.filter((t) => t.pid === t.tgid).map((t) => [t.pid, t.comm]));
          await guest.pause();
          const session = await connectTarget(`shm:${shmPath}`, { keyFile });
          try {
            const { client } = session;
            const pids = (await client.processList()).map((t) => t.pid);
            checkAgainstTruth('the agent', pids, truth);
            const listed = pids.length;
            const runs = size >= 10_000 ? 7 : 15;
            const inner = Math.max(1, Math.round(1000 / size));
            const count = await bench.time(`process-count-${size}`, `process count through the agent (${listed} processes)`, () => client.processCount(), { runs, inner });
            await bench.time(`process-list-${size}`, `process list through the agent (${listed} processes)`, () => client.processList(), {
              runs, inner, versus: count.id,
            });
            const model = KernelModel.fromDescription(await client.describe(), client);
            const first = await listTasks(model, {});
            checkAgainstTruth('remote analysis', first.tasks.map((t) => t.pid), truth);
            const { rounds, batches, ranges, bytes } = first.stats;
            const tasks = first.tasks.length;
            await bench.time(`remote-analysis-${size}`, `process list in remote-analysis mode (${tasks} processes, ${rounds} rounds of reads)`, () => listTasks(model, {}), {
              runs: size >= 10_000 ? 5 : 11, warmup: 1, versus: `growth.process-list-${size}`,
              note: `${rounds} rounds, ${batches} READ_BATCH calls, ${ranges} ranges, ${bytes} bytes: ${(ranges / tasks).toFixed(1)} ranges and ${Math.round(bytes / tasks)} bytes per task`,
            });
            // What one list costs the wire, one reading each (the same for every run of a paused guest).
            bench.record(`remote-analysis-${size}-rounds`, `remote-analysis list: dependent rounds of reads (${tasks} processes)`, 'rounds', [rounds]);
            bench.record(`remote-analysis-${size}-bytes-per-task`, `remote-analysis list: bytes read per process (${ranges} ranges in all)`, 'B/task', [bytes / tasks]);
          } finally {
            await session.close();
          }
          await guest.resume();
        }
      } finally {
        await agent.stop();
      }
    } finally {
      await guest.down();
      rmSync(shmPath, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
