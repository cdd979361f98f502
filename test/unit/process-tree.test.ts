// The Processes view's refresh: which rows a fresh reading re-renders (src/views/process-tree.ts).
// Each re-rendered row costs VS Code's extension host memory until the view is disposed, so a
// reading that changes nothing must re-render nothing, and one that changes a row only that row.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TaskRecord } from '../../src/types/task-record';
import { buildProcessTree, processRow, updateProcessTree } from '../../src/views/process-tree';

function task(pid: number, tgid: number, over: Partial<TaskRecord> = {}): TaskRecord {
  return {
    pid, tgid, ppid: 1, comm: `task${tgid}`, state: 'S', cpu: 0, utimeNs: 0n, stimeNs: 0n,
    rssBytes: 4096n, threads: 1, taskAddress: 0xffff888000000000n + BigInt(pid) * 0x1000n, ...over,
  };
}

const reading = (): TaskRecord[] => [task(1, 1), task(2, 2), task(10, 10, { threads: 2 }), task(11, 10, { threads: 2 })];

test('a reading that shows nothing new changes no row and keeps every item', () => {
  const current = buildProcessTree('t', reading());
  const items = [...current.byId.values()];
  assert.deepEqual(updateProcessTree(current, buildProcessTree('t', reading())), []);
  assert.deepEqual([...current.byId.values()], items);
});

test('a changed row (a thread woke up, a task used CPU) re-renders only that row, in its old item', () => {
  const current = buildProcessTree('t', reading());
  const thread = current.byId.get('grass.process/t/10/11')!;
  const leader = current.byId.get('grass.process/t/2')!;
  const fresh = reading();
  fresh[3] = task(11, 10, { threads: 2, state: 'R', cpu: 1 });
  fresh[1] = task(2, 2, { utimeNs: 20_000_000n });
  const changed = updateProcessTree(current, buildProcessTree('t', fresh));
  assert.deepEqual(new Set(changed), new Set([thread, leader]));
  assert.equal(processRow(thread).description, 'running · CPU 1 · 4 KiB');
  assert.match(processRow(leader).tooltip.join('\n'), /user 0\.02 s/);
  assert.equal(current.byId.get('grass.process/t/10/11'), thread, 'the item stays the one the view knows');
});

test('a task that came or went, or a thread that moved, is a new list', () => {
  const current = buildProcessTree('t', reading());
  assert.equal(updateProcessTree(current, buildProcessTree('t', [...reading(), task(12, 12)])), undefined);
  assert.equal(updateProcessTree(current, buildProcessTree('t', reading().slice(0, 3))), undefined);
  assert.equal(updateProcessTree(current, buildProcessTree('t', [task(1, 1), task(2, 2), task(10, 10, { threads: 2 }), task(12, 10, { threads: 2 })])), undefined);
});
