// Walks of kernel data on memory images laid out with a real kernel's BTF: list_head rings,
// hlists, the PID IDR's XArray and the whole remote-analysis process list, healthy (10 000 tasks
// in a bounded number of batched reads) and corrupt (cycles, NULL and wild pointers, unmapped
// pages, lists changing under the walk, length limits): every walk ends, with an error that
// names the object and the address.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Btf } from '../../src/kernel/btf/btf';
import { collect, hlistForEachEntry, ListChangedError, listForEachEntry } from '../../src/kernel/objects/lists';
import { Kernel, ObjectError } from '../../src/kernel/objects/object';
import { xarrayEntries } from '../../src/kernel/objects/xarray';
import { findTask, forEachTask, listTasks, taskLayout, TaskListError } from '../../src/kernel/tasks/tasks';
import type { KernelSymbol } from '../../src/types/target';
import { debianKernel, HOST_BTF } from './btf-fixtures';
import { Allocator, ImageMemory, modelOver } from './kernel-fixtures';

function kernelBtf(): Btf | undefined {
  const file = existsSync(HOST_BTF) ? HOST_BTF : debianKernel()?.btf;
  return file ? new Btf(new Uint8Array(readFileSync(file)), { source: file }) : undefined;
}

const btf = kernelBtf();
const skip = btf ? false : 'no kernel BTF on this machine';

function offsetOf(struct: string, member: string): bigint {
  const m = btf!.findMember(btf!.findByName(struct, 'struct')!, member);
  assert.ok(m, `${struct}.${member}`);
  return BigInt(m.bitsOffset / 8);
}

const sizeOf = (struct: string): number => btf!.sizeof(btf!.findByName(struct, 'struct')!);

/** A ring of `n` task_structs linked through `tasks`, headed by a list_head of its own. */
function taskRing(n: number): { memory: ImageMemory; head: bigint; tasks: bigint[]; kernel: (limit?: number) => Kernel } {
  const memory = new ImageMemory();
  const alloc = new Allocator();
  const tasksOff = offsetOf('task_struct', 'tasks');
  const pidOff = offsetOf('task_struct', 'pid');
  const head = alloc.alloc(16);
  memory.map(head, 16);
  const tasks = Array.from({ length: n }, () => {
    const t = alloc.alloc(sizeOf('task_struct'));
    memory.map(t, sizeOf('task_struct'));
    return t;
  });
  const nodes = [head, ...tasks.map((t) => t + tasksOff)];
  nodes.forEach((node, i) => {
    memory.u64(node, nodes[(i + 1) % nodes.length]);
    memory.u64(node + 8n, nodes[(i + nodes.length - 1) % nodes.length]);
  });
  tasks.forEach((t, i) => memory.u32(t + pidOff, 100 + i));
  const symbols: KernelSymbol[] = [{ name: 'the_list', address: head, type: 'D' }];
  return { memory, head, tasks, kernel: (limit?: number) => new Kernel(modelOver(btf!, memory, symbols, limit)) };
}

describe('list_head and hlist walks', { skip }, () => {
  it('visits every entry of a ring in order and reads members through container_of', async () => {
    const ring = taskRing(5);
    const k = ring.kernel();
    const head = k.object('struct list_head', ring.head, 'the_list');
    const entries = await collect(listForEachEntry(head, 'struct task_struct', 'tasks'));
    assert.deepEqual(entries.map((e) => e.address), ring.tasks);
    const pids = await Promise.all(entries.map(async (e) => (await e.member('pid')).readInt()));
    assert.deepEqual(pids, [100n, 101n, 102n, 103n, 104n]);
  });

  it('a cycle that misses the head is reported with the node', async () => {
    const ring = taskRing(5);
    const tasksOff = offsetOf('task_struct', 'tasks');
    ring.memory.u64(ring.tasks[3] + tasksOff, ring.tasks[1] + tasksOff); // 3 -> 1
    ring.memory.u64(ring.tasks[1] + tasksOff + 8n, ring.tasks[3] + tasksOff); // keep prev consistent
    const head = ring.kernel().object('struct list_head', ring.head, 'the_list');
    await assert.rejects(collect(listForEachEntry(head, 'struct task_struct', 'tasks', { checkLinks: false })), (err: unknown) => err instanceof ObjectError && /list the_list \(head 0x[0-9a-f]+\): cycle at node 0x[0-9a-f]+/.test(err.message));
  });

  it('NULL and unmapped next pointers end the walk with the offending node named', async () => {
    const ring = taskRing(4);
    const tasksOff = offsetOf('task_struct', 'tasks');
    ring.memory.u64(ring.tasks[2] + tasksOff, 0n);
    const k = ring.kernel();
    await assert.rejects(collect(listForEachEntry(k.object('struct list_head', ring.head, 'the_list'), 'struct task_struct', 'tasks')), /entry 3 has a NULL next pointer \(after node 0x/);
    const wild = 0xffff8880dead0000n;
    ring.memory.u64(ring.tasks[2] + tasksOff, wild);
    const k2 = ring.kernel();
    await assert.rejects(collect(listForEachEntry(k2.object('struct list_head', ring.head, 'the_list'), 'struct task_struct', 'tasks')), (err: unknown) => err instanceof ObjectError && err.message.includes(`node 0x${wild.toString(16)} unreadable`) && err.message.includes('not mapped'));
  });

  it('a node whose back link disagrees is reported as a list changing under the walk', async () => {
    const ring = taskRing(4);
    const tasksOff = offsetOf('task_struct', 'tasks');
    ring.memory.u64(ring.tasks[2] + tasksOff + 8n, ring.tasks[0] + tasksOff);
    const head = ring.kernel().object('struct list_head', ring.head, 'the_list');
    await assert.rejects(collect(listForEachEntry(head, 'struct task_struct', 'tasks')), (err: unknown) => err instanceof ListChangedError && /changed during the walk or is corrupt/.test(err.message));
  });

  it('stops at the length limit', async () => {
    const ring = taskRing(6);
    const head = ring.kernel(4).object('struct list_head', ring.head, 'the_list');
    await assert.rejects(collect(listForEachEntry(head, 'struct task_struct', 'tasks')), /longer than the limit of 4 entries/);
  });

  it('hlist: entries to the NULL end, cycles reported', async () => {
    const memory = new ImageMemory();
    const alloc = new Allocator();
    const linkOff = offsetOf('task_struct', 'pid_links');
    const head = alloc.alloc(8);
    memory.map(head, 8);
    const tasks = [0, 1, 2].map(() => {
      const t = alloc.alloc(sizeOf('task_struct'));
      memory.map(t, sizeOf('task_struct'));
      return t;
    });
    memory.u64(head, tasks[0] + linkOff);
    memory.u64(tasks[0] + linkOff, tasks[1] + linkOff);
    memory.u64(tasks[1] + linkOff, tasks[2] + linkOff);
    const k = new Kernel(modelOver(btf!, memory));
    const entries = await collect(hlistForEachEntry(k.object('struct hlist_head', head, 'chain'), 'struct task_struct', 'pid_links'));
    assert.deepEqual(entries.map((e) => e.address), tasks);
    memory.u64(tasks[2] + linkOff, tasks[0] + linkOff);
    const k2 = new Kernel(modelOver(btf!, memory));
    await assert.rejects(collect(hlistForEachEntry(k2.object('struct hlist_head', head, 'chain'), 'struct task_struct', 'pid_links')), /hlist chain \(head 0x[0-9a-f]+\): cycle at node/);
  });
});

interface Image {
  memory: ImageMemory;
  symbols: KernelSymbol[];
  tasks: bigint[];
  nodes: bigint[];
}

/**
 * A kernel image with `count` processes (pids 1..count) reachable the way the kernel keeps
 * them: init_pid_ns.idr (an XArray of struct pid), pid->tasks[PIDTYPE_PID] → task_struct,
 * each with its signal_struct and, for every other one, an mm_struct with RSS counters.
 */
function processImage(count: number): Image {
  const memory = new ImageMemory();
  const alloc = new Allocator();
  const l = taskLayout(btf!);
  const nodeSize = sizeOf('xa_node');
  const slotsOff = offsetOf('xa_node', 'slots');
  const shiftOff = offsetOf('xa_node', 'shift');
  const headOff = offsetOf('xarray', 'xa_head');
  const taskSize = sizeOf('task_struct');
  const ns = alloc.alloc(sizeOf('pid_namespace'));
  memory.map(ns, sizeOf('pid_namespace'));
  const tasks: bigint[] = [];
  const pids: bigint[] = [];
  for (let pid = 1; pid <= count; pid++) {
    const task = alloc.alloc(taskSize);
    memory.map(task, taskSize);
    const signal = alloc.alloc(sizeOf('signal_struct'));
    memory.map(signal, sizeOf('signal_struct'));
    const pidStruct = alloc.alloc(sizeOf('pid'));
    memory.map(pidStruct, sizeOf('pid'));
    memory.u32(task + BigInt(l.pid.offset), pid);
    memory.u32(task + BigInt(l.tgid.offset), pid);
    memory.write(task + BigInt(l.comm.offset), new TextEncoder().encode(`proc-${pid}\0`));
    memory.u32(task + BigInt(l.state.offset), pid % 2); // R or S
    memory.u64(task + BigInt(l.signal.offset), signal);
    memory.u32(signal + BigInt(l.signalNrThreads.offset), 1);
    if (pid % 2 === 0) {
      const mm = alloc.alloc(sizeOf('mm_struct'));
      memory.map(mm, sizeOf('mm_struct'));
      memory.u64(mm + BigInt(l.rssCounters[1]), BigInt(pid)); // anon pages
      memory.u64(task + BigInt(l.mm.offset), mm);
    }
    memory.u64(pidStruct + BigInt(l.pidTasks.offset), task + BigInt(l.pidLink.offset));
    tasks.push(task);
    pids.push(pidStruct);
  }
  // Parents: pid 1 is everyone's parent, pid 1's own parent is itself (as init_task would be).
  for (const t of tasks) memory.u64(t + BigInt(l.realParent.offset), tasks[0]);
  // The XArray: leaves of 64 slots, interior nodes above, root shift as deep as needed.
  const chunk = 64;
  const nodes: bigint[] = [];
  const build = (base: number, shift: number): bigint => {
    const node = alloc.alloc(nodeSize);
    memory.map(node, nodeSize);
    nodes.push(node);
    memory.u8(node + shiftOff, shift);
    for (let i = 0; i < chunk; i++) {
      const index = base + i * 2 ** shift;
      if (index > count) break;
      let entry: bigint;
      if (shift === 0) {
        if (index === 0) continue;
        entry = pids[index - 1];
      } else {
        entry = build(index, shift - 6) | 2n;
      }
      memory.u64(node + slotsOff + BigInt(i * 8), entry);
    }
    return node;
  };
  let rootShift = 0;
  while (2 ** (rootShift + 6) <= count) rootShift += 6;
  const root = build(0, rootShift);
  memory.u64(ns + BigInt(l.nsIdrXarray) + headOff, root | 2n);
  return { memory, symbols: [{ name: 'init_pid_ns', address: ns, type: 'D' }], tasks, nodes };
}

describe('the PID IDR and the process list, remote analysis', { skip }, () => {
  it('10 000 tasks in a handful of batched reads, every field right', async () => {
    const image = processImage(10_000);
    const model = modelOver(btf!, image.memory, image.symbols);
    const result = await listTasks(model);
    assert.equal(result.tasks.length, 10_000);
    assert.ok(result.stats.rounds <= 10, `${result.stats.rounds} rounds of reads for 10 000 tasks`);
    assert.ok(image.memory.batches <= 2 * result.stats.rounds, `${image.memory.batches} readBatch calls in ${result.stats.rounds} rounds`);
    assert.equal(result.stats.batches, image.memory.batches);
    process.stdout.write(`10 000 tasks: ${result.stats.rounds} rounds, ${result.stats.batches} readBatch calls, ${result.stats.ranges} ranges, ${result.stats.bytes} bytes\n`);
    const byPid = new Map(result.tasks.map((t) => [t.pid, t]));
    for (const pid of [1, 2, 64, 65, 4096, 4097, 9999, 10_000]) {
      const t = byPid.get(pid)!;
      assert.equal(t.comm, `proc-${pid}`);
      assert.equal(t.tgid, pid);
      assert.equal(t.ppid, pid === 1 ? 0 : 1);
      assert.equal(t.state, pid % 2 ? 'S' : 'R');
      assert.equal(t.rssBytes, pid % 2 ? 0n : BigInt(pid) * 4096n);
      assert.equal(t.threads, 1);
      assert.equal(t.taskAddress, image.tasks[pid - 1]);
    }
  });

  it('forEachTask yields each task_struct as an object; findTask finds one by pid, or none', async () => {
    const image = processImage(200);
    const model = modelOver(btf!, image.memory, image.symbols);
    const seen: number[] = [];
    for await (const task of forEachTask(model)) {
      seen.push(task.record.pid);
      assert.equal(task.object.address, image.tasks[task.record.pid - 1]);
      assert.equal(task.object.typeName, 'struct task_struct');
    }
    assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1));
    const found = await findTask(model, 65);
    assert.ok(found, 'pid 65');
    assert.equal(found.object.address, image.tasks[64]);
    // The object reads members on its own, past the fields the walk read.
    assert.equal(await (await found.object.member('comm')).string(), 'proc-65');
    assert.equal(await (await found.object.member('pid')).readInt(), 65n);
    assert.equal(await findTask(model, 201), undefined);
  });

  it('XArray nodes reached twice, pointing back at an ancestor, or in a leaf: reported, not followed', async () => {
    const slotsOff = offsetOf('xa_node', 'slots');
    const xa = (image: Image): bigint => image.symbols[0].address + BigInt(taskLayout(btf!).nsIdrXarray);
    const cases: [string, (image: Image) => void, RegExp][] = [
      ['one child in two slots', (im) => im.memory.u64(im.nodes[0] + slotsOff + 8n * 3n, im.nodes[1] | 2n), /init_pid_ns\.idr: node 0x[0-9a-f]+ reached twice \(cycle\)/],
      ['an interior node pointing at the root', (im) => im.memory.u64(im.nodes[1] + slotsOff + 8n * 5n, im.nodes[0] | 2n), /init_pid_ns\.idr: node 0x[0-9a-f]+ (reached twice \(cycle\)|has shift 12, expected 0)/],
      ['a leaf slot holding a node', (im) => im.memory.u64(im.nodes[2] + slotsOff + 8n * 5n, im.nodes[0] | 2n), /init_pid_ns\.idr: leaf node 0x[0-9a-f]+ slot 5 points at another node/],
      ['a shift that is no multiple of 6', (im) => im.memory.u8(im.nodes[0] + offsetOf('xa_node', 'shift'), 7), /init_pid_ns\.idr: node 0x[0-9a-f]+ has invalid shift 7/],
    ];
    for (const [label, corrupt, pattern] of cases) {
      const image = processImage(5000);
      corrupt(image);
      const k = new Kernel(modelOver(btf!, image.memory, image.symbols));
      await assert.rejects(xarrayEntries(k, xa(image), 'init_pid_ns.idr'), pattern, label);
    }
  });

  it('an unmapped XArray node and a wild struct pid end in errors naming the address', async () => {
    const image = processImage(200);
    image.memory.unmap(image.nodes[2]);
    const model = modelOver(btf!, image.memory, image.symbols);
    await assert.rejects(listTasks(model), /init_pid_ns\.idr: node 0x[0-9a-f]+ unreadable: .*is not mapped/);

    const image2 = processImage(200);
    const slotsOff = offsetOf('xa_node', 'slots');
    // A leaf slot (pid 70's) pointing into unmapped memory.
    const leaf = image2.nodes[2];
    image2.memory.u64(leaf + slotsOff + 8n * 6n, 0xffff8880dead0000n);
    await assert.rejects(listTasks(modelOver(btf!, image2.memory, image2.symbols)), (err: unknown) => err instanceof TaskListError && /0xffff8880dead0000/.test(err.message));
  });

  it('a task whose pid disagrees with its IDR slot: retried, then reported as changing', async () => {
    const image = processImage(100);
    const l = taskLayout(btf!);
    image.memory.u32(image.tasks[41] + BigInt(l.pid.offset), 4242);
    const model = modelOver(btf!, image.memory, image.symbols);
    await assert.rejects(listTasks(model, { retries: 2 }), (err: unknown) => err instanceof TaskListError && /changed during each of 3 reads/.test(err.message) && /pid 42 leads to task 0x[0-9a-f]+ whose pid is 4242/.test(err.message));
  });
});
