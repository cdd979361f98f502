// Remote analysis of a kernel that keeps changing under it: a testbed guest left running while
// a shell loop forks short-lived processes, read repeatedly through the agent. Each process
// list and each walk of init_task.tasks must end — with a list, or with an error that says the
// data changed or could not be read — within a bounded time; never hang, never another kind of
// exception. Prints the counts.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bootGuest, Guest } from '../../testbed';
import { connectTarget, ProtocolSession } from '../../src/rdma/connect';
import { KernelModel } from '../../src/kernel/model';
import { collect, listForEachEntry } from '../../src/kernel/objects/lists';
import { Kernel, ObjectError } from '../../src/kernel/objects/object';
import { listTasks } from '../../src/kernel/tasks/tasks';
import { GuestAgent, startGuestAgent } from '../integration/agent-harness';

const ROUNDS = 40;
const BOUND_MS = 20_000;

let guest: Guest;
let agent: GuestAgent;
let session: ProtocolSession;
let model: KernelModel;

before(async () => {
  guest = await bootGuest({ memMiB: 512, cpus: 2 });
  await guest.spawn(100);
  // Churn: processes forking and exiting for the rest of the test.
  await guest.exec('(while :; do /bin/true & /bin/true & wait; done) >/dev/null 2>&1 &');
  agent = await startGuestAgent(guest);
  session = await connectTarget(agent.target, { keyFile: agent.keyFile });
  model = KernelModel.fromDescription(await session.client.describe(), session.client);
});

after(async () => {
  await session?.close();
  await agent?.stop();
  await guest?.down();
});

async function bounded<T>(what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end within ${BOUND_MS} ms`)), BOUND_MS);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

test(`process list of a running, forking guest, ${ROUNDS} times: a list or a clear error, always bounded`, async () => {
  const counts = { listed: 0, changed: 0, unreadable: 0 };
  for (let i = 0; i < ROUNDS; i++) {
    try {
      const { tasks } = await bounded(`list ${i}`, listTasks(model, { threads: true }));
      assert.ok(tasks.length > 100, `list ${i}: only ${tasks.length} tasks`);
      assert.ok(tasks.some((t) => t.pid === 1), `list ${i}: no init`);
      counts.listed++;
    } catch (err) {
      assert.ok(err instanceof ObjectError, `list ${i}: ${String(err)}`);
      if (/changed/.test(err.message)) counts.changed++;
      else counts.unreadable++;
    }
  }
  process.stdout.write(`live process lists: ${ROUNDS} rounds: ${counts.listed} listed, ${counts.changed} reported changing, ${counts.unreadable} reported unreadable\n`);
  assert.ok(counts.listed > ROUNDS / 2, 'most lists succeed on a moderately busy guest');
});

test(`walks of init_task.tasks on the running guest, ${ROUNDS} times: bounded, errors name the node`, async () => {
  const counts = { walked: 0, failed: 0 };
  for (let i = 0; i < ROUNDS; i++) {
    const kernel = new Kernel(model);
    const head = kernel.variable('init_task').memberOf('tasks');
    try {
      const entries = await bounded(`walk ${i}`, collect(listForEachEntry(head, 'struct task_struct', 'tasks')));
      assert.ok(entries.length > 100);
      counts.walked++;
    } catch (err) {
      assert.ok(err instanceof ObjectError, `walk ${i}: ${String(err)}`);
      assert.match(err.message, /list init_task\.tasks \(head 0x[0-9a-f]+\)/);
      counts.failed++;
    }
  }
  process.stdout.write(`live task-list walks: ${ROUNDS} rounds: ${counts.walked} complete, ${counts.failed} ended with a clear error\n`);
  assert.ok(counts.walked > 0);
});
