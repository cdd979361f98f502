// The Processes view from connect to a populated tree, on a paused testbed guest holding about
// 1 000 and then 10 000 tasks (testbed `spawn`): a fresh connection to the agent (attach,
// describe, BTF parse), the task list in remote-analysis mode (every thread), the view's model
// (leaders with threads as children, stable ids) and every top-level row's text — what the
// extension host does before VS Code draws the rows. Then a refresh (same connection). Each
// twice: straight to the agent's shared memory, and through a `grass monitor` holding the
// target (as the extension connects). VS Code's own drawing is not in it (it renders only the
// rows in sight).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Bench, FigureGroup } from '../lib';
import { bootGuest, type Guest } from '../../testbed';
import { KernelModel } from '../../src/kernel/model';
import { listTasks } from '../../src/kernel/tasks/tasks';
import { stopRelay } from '../../src/relay/remote';
import type { GrassClient } from '../../src/rdma/client';
import { readKeyFile, writeNewKeyFile } from '../../src/rdma/key';
import { openHeld, openTarget } from '../../src/session/open-target';
import { ensureRelayHolds } from '../../src/session/relay-process';
import { startAgent } from '../../src/rdma/local-agent';
import { buildProcessTree, processRow } from '../../src/views/process-tree';

const SIZES = [1000, 10_000];

async function populate(model: KernelModel, target: string): Promise<number> {
  const { tasks } = await listTasks(model, { threads: true });
  const tree = buildProcessTree(target, tasks);
  for (const p of tree.processes) processRow(p);
  return tasks.length;
}

/** A client to the target: straight to its shared memory, or through the monitor's socket. */
type Connect = () => Promise<GrassClient>;

async function measure(bench: Bench, guest: Guest, connections: [suffix: string, what: string, connect: Connect][], wanted: number): Promise<void> {
  await guest.pause();
  try {
    for (const [suffix, what, connect] of connections) {
      const connectToTree = async (): Promise<number> => {
        const client = await connect();
        try {
          return await populate(KernelModel.fromDescription(await client.describe(), client), 'bench');
        } finally {
          await client.close();
        }
      };
      const tasks = await connectToTree();
      if (tasks < wanted) throw new Error(`the guest lists ${tasks} tasks, fewer than the ${wanted} wanted`);
      await bench.time(`connect-to-tree-${wanted}${suffix}`, `connect → populated Processes tree, ${what} (${tasks} tasks)`, connectToTree, { runs: 5, warmup: 1 });
      const client = await connect();
      try {
        const model = KernelModel.fromDescription(await client.describe(), client);
        await bench.time(`refresh-${wanted}${suffix}`, `Processes tree refresh, ${what} (${tasks} tasks)`, () => populate(model, 'bench'), { runs: 5, warmup: 1 });
      } finally {
        await client.close();
      }
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
      // Liveness republished every 100 ms, as the extension's agents run (see test/extension).
      const agent = await startAgent(
        ['--memory', `qemu-ram:${guest.ramFile}`, '--memory-map', guest.memoryMapFile, '--listen', `shm:${shmPath}`, '--key-file', keyFile, '--exit-with-parent'],
        120_000,
      );
      const cliPath = path.resolve(__dirname, '../../dist/cli.js');
      if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: npm run build first`);
      const socketPath = path.join(dir, 'monitor.sock');
      const key = readKeyFile(keyFile);
      const held = await ensureRelayHolds({ socketPath, cliPath, key }, `shm:${shmPath}`);
      try {
        const direct: Connect = async () => (await openTarget(`shm:${shmPath}`, { keyFile })).client;
        const viaMonitor: Connect = async () => (await openHeld(socketPath, held.status.name, { kind: 'shm', path: shmPath }, key)).client;
        let spawned = 0;
        for (const size of SIZES) {
          await guest.spawn(size - spawned, { timeoutMs: 900_000 });
          spawned = size;
          await measure(bench, guest, [['', 'shm mapped directly', direct], ['-monitor', 'through grass monitor', viaMonitor]], size);
        }
      } finally {
        await stopRelay(socketPath);
        await agent.stop();
      }
    } finally {
      await guest.down();
      rmSync(dir, { recursive: true, force: true });
      rmSync(shmPath, { force: true });
    }
  },
};
