// The Processes view from connect to a populated tree, on a paused testbed guest holding about
// 1 000 and then 10 000 tasks (testbed `spawn`): a fresh connection to the agent (attach,
// describe, BTF parse), the task list in remote-analysis mode (every thread), the view's model
// (leaders with threads as children, stable ids) and every top-level row's text — what the
// extension host does before VS Code draws the rows. Then a refresh (same connection).
// VS Code's own drawing is not in it (it renders only the rows in sight).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Bench, FigureGroup } from '../lib';
import { bootGuest, type Guest } from '../../testbed';
import { KernelModel } from '../../src/kernel/model';
import { listTasks } from '../../src/kernel/tasks/tasks';
import { connectTarget } from '../../src/rdma/connect';
import { writeNewKeyFile } from '../../src/rdma/key';
import { startAgent } from '../../src/rdma/local-agent';
import { buildProcessTree, processRow } from '../../src/views/processTree';

const SIZES = [1000, 10_000];

async function populate(model: KernelModel, target: string): Promise<number> {
  const { tasks } = await listTasks(model, { threads: true });
  const tree = buildProcessTree(target, tasks);
  for (const p of tree.processes) processRow(p);
  return tasks.length;
}

async function measure(bench: Bench, guest: Guest, shmPath: string, keyFile: string, wanted: number): Promise<void> {
  let tasks = 0;
  const connectToTree = async (): Promise<number> => {
    const session = await connectTarget(`shm:${shmPath}`, { keyFile });
    try {
      return await populate(KernelModel.fromDescription(await session.client.describe(), session.client), 'bench');
    } finally {
      await session.close();
    }
  };
  await guest.pause();
  try {
    tasks = await connectToTree();
    if (tasks < wanted) throw new Error(`the guest lists ${tasks} tasks, fewer than the ${wanted} wanted`);
    await bench.time(`connect-to-tree-${wanted}`, `connect → populated Processes tree (${tasks} tasks)`, connectToTree, { runs: 5, warmup: 1 });
    const session = await connectTarget(`shm:${shmPath}`, { keyFile });
    try {
      const model = KernelModel.fromDescription(await session.client.describe(), session.client);
      await bench.time(`refresh-${wanted}`, `Processes tree refresh, connected (${tasks} tasks)`, () => populate(model, 'bench'), { runs: 5, warmup: 1 });
    } finally {
      await session.close();
    }
  } finally {
    await guest.resume();
  }
}

export const group: FigureGroup = {
  name: 'ui-tree',
  description: `Processes view: connect to populated tree, ${SIZES.join(' and ')} tasks (paused guest)`,
  async run(bench) {
    const dir = mkdtempSync(path.join(tmpdir(), 'grass-bench-ui-tree-'));
    const keyFile = path.join(dir, 'key');
    const shmPath = `/dev/shm/grass-bench-ui-tree-${process.pid}`;
    writeNewKeyFile(keyFile);
    // 10 000 sleeping processes need about 1 GiB of guest memory.
    const guest = await bootGuest({ memMiB: 2048, cpus: 2 });
    try {
      const agent = await startAgent(['--memory', `qemu-ram:${guest.ramFile}`, '--memory-map', guest.memoryMapFile, '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent'], 120_000);
      try {
        let spawned = 0;
        for (const size of SIZES) {
          await guest.spawn(size - spawned, { timeoutMs: 900_000 });
          spawned = size;
          await measure(bench, guest, shmPath, keyFile, size);
        }
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
