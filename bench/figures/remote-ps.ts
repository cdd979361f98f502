// The process list in remote-analysis mode on a paused testbed guest holding more than 1000
// tasks: from launching `grass ps --remote-analysis --json` to the full list, next to the same
// process asking the agent's own process-list plugin, plus the in-process parts (description
// and BTF parse, then the list itself) and how many batches of reads the list took.
// Peer: drgn 0.0.22 took 0.21 s warm from launch for a pid/comm listing of 134 tasks
// (shared/notes/peers.md; it needs the 858 MB -dbg package, so it is not run here).
import { execFileSync } from 'node:child_process';
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
import { cliCommand } from './btf';

const SPAWNED = 1000;

export const group: FigureGroup = {
  name: 'remote-ps',
  description: `remote-analysis ps on a paused guest with > ${SPAWNED} tasks: launch to full list, vs the agent's plugin`,
  async run(bench) {
    const dir = mkdtempSync(path.join(tmpdir(), 'grass-bench-ps-'));
    const keyFile = path.join(dir, 'key');
    const shmPath = `/dev/shm/grass-bench-remote-ps-${process.pid}`;
    writeNewKeyFile(keyFile);
    const guest = await bootGuest({ memMiB: 768, cpus: 2 });
    try {
      await guest.spawn(SPAWNED, { timeoutMs: 300_000 });
      const agent = await startAgent(['--memory', `qemu-ram:${guest.ramFile}`, '--memory-map', guest.memoryMapFile, '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent'], 120_000);
      try {
        await guest.pause();
        const target = ['--target', `shm:${shmPath}`, '--key-file', keyFile];
        const session = await connectTarget(`shm:${shmPath}`, { keyFile });
        let tasks = 0;
        let batches = 0;
        try {
          const model = KernelModel.fromDescription(await session.client.describe(), session.client);
          const first = await listTasks(model, { threads: true });
          tasks = first.tasks.length;
          batches = first.stats.rounds;
          await bench.time('list-in-process', `listTasks, every thread (${tasks} tasks, ${batches} rounds of reads)`, () => listTasks(model, { threads: true }), { runs: 11 });
          await bench.time('model', 'describe + BTF parse + model (fresh client)', async () => {
            const fresh = await connectTarget(`shm:${shmPath}`, { keyFile });
            try {
              KernelModel.fromDescription(await fresh.client.describe(), fresh.client).btf.findByName('task_struct', 'struct');
            } finally {
              await fresh.close();
            }
          }, { runs: 7, warmup: 1 });
        } finally {
          await session.close();
        }
        const cli = await cliCommand();
        const launch = (extra: string[]): number => {
          const start = process.hrtime.bigint();
          const out = execFileSync(process.execPath, [...cli, 'ps', '--threads', '--json', ...extra, ...target], { maxBuffer: 1 << 28 }).toString();
          const n = (JSON.parse(out) as { tasks: unknown[] }).tasks.length;
          if (n < SPAWNED) throw new Error(`grass ps listed ${n} tasks, fewer than the ${SPAWNED} spawned`);
          return Number(process.hrtime.bigint() - start) / 1000;
        };
        const agentRuns: number[] = [];
        const ours: number[] = [];
        launch(['--remote-analysis']);
        for (let r = 0; r < 7; r++) {
          agentRuns.push(launch([]));
          ours.push(launch(['--remote-analysis']));
        }
        bench.record('launch-agent-plugin', `grass ps --threads --json, agent's plugin, launch to full list (${tasks} tasks)`, 'µs', agentRuns);
        bench.record('launch-remote-analysis', `grass ps --remote-analysis --threads --json, launch to full list (${tasks} tasks; drgn and crash: the peers group)`, 'µs', ours, {
          versus: 'launch-agent-plugin',
          note: 'drgn 0.0.22: 0.21 s warm from launch for 134 tasks (shared/notes/peers.md)',
        });
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
