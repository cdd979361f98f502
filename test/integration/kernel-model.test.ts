// The kernel model (BTF, symbols, objects, expressions, decoding, remote-analysis ps) end to end
// on a real Debian kernel: a testbed guest, `grass agent` on its RAM, and the CLI. Truth comes
// from the guest itself (/proc, /proc/kallsyms) and from the agent's own process-list plugin.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bootGuest, Guest } from '../../testbed';
import { connectTarget, ProtocolSession } from '../../src/rdma/connect';
import { KernelModel } from '../../src/kernel/model';
import { listTasks } from '../../src/kernel/tasks/tasks';
import type { ValueNode } from '../../src/types/decoded-value';
import { assertTasksMatchTruth, grass, grassJson, GuestAgent, PsTask, startGuestAgent } from './agent-harness';
import { assertRssMatchesTruth } from './kernel-truth';

let guest: Guest;
let agent: GuestAgent;
let session: ProtocolSession;
let args: string[];

before(async () => {
  guest = await bootGuest({ memMiB: 512, cpus: 2 });
  // Processes with threads, so leaders and threads differ and group times are summed.
  await guest.spawn(20);
  await guest.spawn(6, { threads: true });
  agent = await startGuestAgent(guest);
  args = ['--target', agent.target, '--key-file', agent.keyFile];
  session = await connectTarget(agent.target, { keyFile: agent.keyFile });
});

after(async () => {
  await session?.close();
  await agent?.stop();
  await guest?.down();
});

const byPid = (tasks: PsTask[]): PsTask[] => [...tasks].sort((a, b) => a.pid - b.pid || a.tgid - b.tgid);

async function guestSymbol(name: string): Promise<bigint> {
  const line = (await guest.exec(`grep ' ${name}$' /proc/kallsyms`)).trim().split('\n')[0];
  return BigInt('0x' + line.split(' ')[0]);
}

test('ps --remote-analysis equals the agent\'s list and the guest\'s truth (guest paused)', async () => {
  const truthBefore = await guest.truth();
  await guest.pause();
  const lists: Record<string, { ours: PsTask[]; agents: PsTask[] }> = {};
  try {
    for (const [label, extra] of [['leaders', []], ['threads', ['--threads']], ['idle', ['--idle']]] as const) {
      const ours = (await grassJson<{ tasks: PsTask[] }>(['ps', '--remote-analysis', ...extra, ...args])).tasks;
      const agents = (await grassJson<{ tasks: PsTask[] }>(['ps', ...extra, ...args])).tasks;
      lists[label] = { ours, agents };
    }
  } finally {
    await guest.resume();
  }
  const truthAfter = await guest.truth();
  for (const [label, { ours, agents }] of Object.entries(lists)) {
    assert.deepEqual(byPid(ours), byPid(agents), `${label}: remote analysis and the agent's plugin differ`);
  }
  const compared = assertTasksMatchTruth(lists.leaders.ours, truthBefore, truthAfter, false);
  assertTasksMatchTruth(lists.threads.ours, truthBefore, truthAfter, true);
  assert.ok(compared > 20, `states compared for only ${compared} tasks`);
  const rssCompared = assertRssMatchesTruth(lists.threads.ours, truthBefore, truthAfter);
  assert.ok(rssCompared > 20, `RSS compared with /proc for only ${rssCompared} tasks`);
  assert.ok(lists.threads.ours.length > lists.leaders.ours.length, 'threads listed beyond their leaders');
  const cpus = Number((await guest.exec('nproc')).trim());
  assert.deepEqual(
    lists.idle.ours.filter((t) => t.pid === 0).map((t) => t.comm).sort(),
    Array.from({ length: cpus }, (_, i) => `swapper/${i}`).sort(),
  );
});

test('the process list costs a fixed number of round trips, not one per task', async () => {
  await guest.pause();
  try {
    const model = KernelModel.fromDescription(await session.client.describe(), session.client);
    const few = await listTasks(model, { threads: true });
    await guest.resume();
    await guest.spawn(150);
    await guest.pause();
    const many = await listTasks(model, { threads: true });
    assert.ok(many.tasks.length >= few.tasks.length + 150, `${many.tasks.length} tasks after spawning 150 more (was ${few.tasks.length})`);
    assert.ok(many.stats.rounds <= few.stats.rounds + 1, `rounds of reads grew from ${few.stats.rounds} to ${many.stats.rounds} for ${many.tasks.length - few.tasks.length} more tasks`);
    assert.ok(many.stats.rounds <= 10, `${many.stats.rounds} rounds for ${many.tasks.length} tasks`);
  } finally {
    await guest.resume();
  }
});

/** Every node of a decoded tree has a value or children, and no error. */
function assertFullyDecoded(node: ValueNode, path: string, counts: { leaves: number }): void {
  const here = `${path}${node.name.startsWith('[') ? '' : '.'}${node.name}`;
  assert.equal(node.error, undefined, `${here}: ${node.error}`);
  if (node.children) {
    for (const c of node.children) assertFullyDecoded(c, here, counts);
  } else {
    assert.notEqual(node.value, undefined, `${here} (${node.type}) has no value`);
    counts.leaves++;
  }
}

test('decode init_task --json: comm swapper/0, pid 0, mm NULL, tasks.next leads to pid 1, every member decoded', async () => {
  const tree = await grassJson<ValueNode>(['decode', 'init_task', ...args]);
  const member = (name: string): ValueNode => {
    const found = tree.children!.find((c) => c.name === name);
    assert.ok(found, `init_task has no member ${name}`);
    return found;
  };
  assert.equal(tree.type, 'struct task_struct');
  assert.equal(BigInt(tree.address!), await guestSymbol('init_task'));
  assert.equal(member('comm').value, 'swapper/0');
  assert.equal(member('pid').value, 0);
  assert.equal(member('mm').pointer?.isNull, true);
  const counts = { leaves: 0 };
  assertFullyDecoded(tree, '', counts);
  assert.ok(counts.leaves > 500, `only ${counts.leaves} leaves decoded`);

  const next = member('tasks').children!.find((c) => c.name === 'next')!;
  const first = await grassJson<ValueNode>(['decode', `*container_of((struct list_head *)${next.value}, struct task_struct, tasks)`, ...args]);
  const pid = first.children!.find((c) => c.name === 'pid')!;
  assert.equal(pid.value, 1);
  const init = (await guest.truth()).tasks.find((t) => t.pid === 1)!;
  assert.equal(first.children!.find((c) => c.name === 'comm')!.value, init.comm.slice(0, 15));
});

test('expressions: casts, &, ->, index, per_cpu, container_of, against the guest\'s own values', async () => {
  const initTask = await guestSymbol('init_task');
  const viaCast = await grassJson<ValueNode>(['decode', `(*(struct task_struct *)0x${initTask.toString(16)}).comm`, ...args]);
  assert.equal(viaCast.value, 'swapper/0');
  const addr = await grassJson<ValueNode>(['decode', '&init_task', ...args]);
  assert.equal(BigInt(addr.value as string), initTask);
  assert.equal(addr.pointer?.symbol, 'init_task');
  const c0 = await grassJson<ValueNode>(['decode', 'init_task.comm[0]', ...args]);
  assert.equal(c0.value, 's'.charCodeAt(0));
  const viaArrow = await grassJson<ValueNode>(['decode', 'container_of(init_task.tasks.next, struct task_struct, tasks)->real_parent->pid', ...args]);
  assert.equal(viaArrow.value, 0, 'init was started by the idle task');
  const cpus = Number((await guest.exec('nproc')).trim());
  for (let cpu = 0; cpu < cpus; cpu++) {
    const rqCpu = await grassJson<ValueNode>(['decode', `per_cpu(runqueues, ${cpu}).cpu`, ...args]);
    assert.equal(rqCpu.value, cpu, `runqueues of cpu ${cpu} says cpu ${rqCpu.value}`);
  }
  const raw = await grassJson<{ hex: string }>(['read', 'init_task.comm', '16', ...args]);
  assert.equal(Buffer.from(raw.hex, 'hex').toString('latin1').replace(/\0.*$/s, ''), 'swapper/0', 'grass read takes decode expressions');
  const uts = await grassJson<ValueNode>(['decode', 'init_uts_ns.name.release', ...args]);
  assert.equal(uts.value, (await guest.exec('uname -r')).trim());
});

test('bad addresses and expressions end in clear errors', async () => {
  const unmapped = await grass(['decode', '*(struct task_struct *)0x1000', '--json', ...args]);
  assert.equal(unmapped.code, 1);
  const tree = JSON.parse(unmapped.stdout) as ValueNode;
  assert.match(tree.error!, /0x1000/);
  const leaves: ValueNode[] = [];
  const collectLeaves = (n: ValueNode): void => (n.children ? n.children.forEach(collectLeaves) : void leaves.push(n));
  collectLeaves(tree);
  const unexplained = leaves.filter((n) => n.size > 0 && n.error === undefined).map((n) => n.name);
  assert.deepEqual(unexplained, [], 'every member of an unmapped object carries an error');
  const nullDeref = await grass(['decode', 'init_task.mm->pgd', ...args]);
  assert.notEqual(nullDeref.code, 0);
  assert.match(nullDeref.stderr, /init_task\.mm.*NULL pointer/);
  const noMember = await grass(['decode', 'init_task.no_such_member', ...args]);
  assert.match(noMember.stderr, /init_task \(struct task_struct at 0x[0-9a-f]+\): has no member 'no_such_member'/);
  const noSymbol = await grass(['decode', 'no_such_symbol_xyz', ...args]);
  assert.match(noSymbol.stderr, /no symbol 'no_such_symbol_xyz'/);
  const syntax = await grass(['decode', 'init_task.', ...args]);
  assert.match(syntax.stderr, /expected a member name|unexpected end/);
});

test('grass btf on the target matches the offline BTF of the same kernel', async () => {
  const online = await grassJson<{ types: { name: string; size: number }[] }>(['btf', 'task_struct', ...args]);
  const offline = JSON.parse((await grass(['btf', '--btf', guest.kernelDir.btf, 'task_struct', '--json'])).stdout) as { types: unknown[] };
  assert.deepEqual(online.types, offline.types);
});
