// Kernel stack traces from memory against the guest's own /proc/<pid>/stack (read with the guest
// alive, then compared with the guest paused), the F4 readers blocked in the fault module's
// read function, and a corrupted copy of a stack that must end with a note, not hang.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bootGuest, Guest } from '../../testbed';
import { connectTarget, ProtocolSession } from '../../src/rdma/connect';
import { KernelModel } from '../../src/kernel/model';
import { frameText, StackContext, stackTraces } from '../../src/kernel/stacks/stacks';
import type { ReadRequest, TargetMemory, AddressSpace } from '../../src/types/target';
import { TargetReadError } from '../../src/types/target';
import { grassJson, GuestAgent, startGuestAgent } from './agent-harness';

let guest: Guest;
let agent: GuestAgent;
let session: ProtocolSession;

before(async () => {
  guest = await bootGuest({ memMiB: 512, cpus: 2 });
  agent = await startGuestAgent(guest);
  session = await connectTarget(agent.target, { keyFile: agent.keyFile });
});

after(async () => {
  await session?.close();
  await agent?.stop();
  await guest?.down();
});

const model = async (memory: TargetMemory = session.client): Promise<KernelModel> => KernelModel.fromDescription(await session.client.describe(), memory);

/** /proc/<pid>/stack lines without the `[<0>] ` prefix. */
const procStack = (text: string): string[] => text.trim().split('\n').filter(Boolean).map((l) => l.replace(/^\[<[0-9a-f]+>\]\s*/, ''));

let sleeperPid = 0;

test('bt of sleeping tasks equals /proc/<pid>/stack frame by frame', async () => {
  sleeperPid = Number((await guest.exec('sleep 1000 >/dev/null 2>&1 & echo $!')).trim());
  await new Promise((r) => setTimeout(r, 500));
  // Kernel threads that sleep for good, init, and the sleep.
  const pids = [1, 2, sleeperPid, ...(await guest.exec("for p in /proc/[0-9]*; do c=$(cat $p/comm); case $c in ksoftirqd/*|kcompactd0|khugepaged|oom_reaper) echo ${p#/proc/};; esac; done")).trim().split('\n').map(Number)];
  const truth = new Map<number, string[]>();
  for (const pid of pids) truth.set(pid, procStack(await guest.exec(`cat /proc/${pid}/stack`)));
  await guest.pause();
  let traces;
  try {
    traces = await stackTraces(await model(), pids);
  } finally {
    await guest.resume();
  }
  let frames = 0;
  for (const t of traces) {
    const want = truth.get(t.pid)!;
    assert.equal(t.method, 'orc', `pid ${t.pid}`);
    assert.equal(t.note, undefined, `pid ${t.pid} (${t.comm}): ${t.note}`);
    assert.deepEqual(t.frames.map(frameText), want, `pid ${t.pid} (${t.comm})`);
    frames += want.length;
  }
  assert.ok(frames >= pids.length * 2, `only ${frames} frames compared`);
  const sleep = traces.find((t) => t.pid === sleeperPid)!;
  assert.ok(sleep.frames.some((f) => f.symbol.startsWith('hrtimer_nanosleep') || f.symbol.startsWith('do_nanosleep')), sleep.frames.map(frameText).join('\n'));
});

test('a corrupted copy of a stack ends the trace with a note, not a hang', async () => {
  const m = await model();
  const [trace] = await stackTraces(m, [sleeperPid]);
  // Overlay: every word of the sleeper's stack above its saved inactive_task_frame reads as a
  // pointer back into the stack (the saved frame stays intact, so the unwind starts normally).
  const ctx = await StackContext.create(m);
  const ts = ctx.kernel.object('struct task_struct', trace.taskAddress);
  const stack = await (await ts.member('stack')).readInt();
  const sp = await (await ts.path('thread.sp')).readInt();
  const garbleFrom = sp + BigInt(m.btf.sizeof(m.typeId('struct inactive_task_frame')));
  const garbleTo = stack + ctx.threadSize;
  const garble = (address: bigint, bytes: Uint8Array): Uint8Array => {
    const out = Uint8Array.from(bytes);
    const view = new DataView(out.buffer);
    for (let i = 0; i + 8 <= out.length; i += 8) {
      const at = address + BigInt(i);
      if (at >= garbleFrom && at < garbleTo) view.setBigUint64(i, garbleFrom + 0x40n, true);
    }
    return out;
  };
  const altered: TargetMemory = {
    read: async (space: AddressSpace, address: bigint, length: number) => garble(address, await session.client.read(space, address, length)),
    readBatch: async (requests: ReadRequest[]) => (await session.client.readBatch(requests)).map((r, i) => (r instanceof TargetReadError ? r : garble(requests[i].address, r))),
  };
  const started = Date.now();
  const [bad] = await stackTraces(await model(altered), [sleeperPid]);
  assert.ok(Date.now() - started < 60_000);
  assert.ok(bad.note, `a corrupt stack gives a note: ${bad.frames.map(frameText).join(', ')}`);
  assert.match(bad.note, /unwinding stopped/);
  assert.ok(bad.frames.length < trace.frames.length + 64);
});

test('after F4, bt --blocked shows the readers in grass_f4_read [grass_f4]', async () => {
  await guest.fault('f4');
  // Wait for the 32 readers to be in D.
  for (let i = 0; i < 50; i++) {
    const n = Number((await guest.exec("grep -l '^State:.D' /proc/[0-9]*/status 2>/dev/null | wc -l")).trim());
    if (n >= 32) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const truth = procStack(await guest.exec("for p in /proc/[0-9]*; do [ \"$(cat $p/comm)\" = cat ] && grep -q '^State:.D' $p/status && { cat $p/stack; break; }; done"));
  await guest.pause();
  let out;
  try {
    out = await grassJson<{
      groups: { frames: { symbol: string; module?: string }[]; tasks: { pid: number; comm: string }[] }[];
      cpus: { cpu: number; comm: string; method: string; note?: string; frames: { symbol: string }[] }[];
    }>(['bt', '--blocked', '--target', agent.target, '--key-file', agent.keyFile]);
  } finally {
    await guest.resume();
  }
  const big = out.groups[0];
  assert.ok(big.tasks.length >= 32, `largest group has ${big.tasks.length} tasks`);
  assert.ok(big.tasks.every((t) => t.comm === 'cat'));
  const f4 = big.frames.find((f) => f.symbol.startsWith('grass_f4_read+'));
  assert.ok(f4, big.frames.map((f) => f.symbol).join('\n'));
  assert.equal(f4.module, 'grass_f4');
  assert.deepEqual(big.frames.map((f) => (f.module ? `${f.symbol} [${f.module}]` : f.symbol)), truth);
  // Each CPU's current task: idle CPUs run swapper/N, on a CPU, so their stacks are inferred.
  assert.equal(out.cpus.length, 2);
  for (const c of out.cpus) {
    if (c.method === 'inferred') assert.match(c.note ?? '', /registers are unknown/);
  }
  const idle = out.cpus.filter((c) => c.comm.startsWith('swapper/'));
  assert.ok(idle.length > 0, `no CPU idle with 32 readers blocked: ${out.cpus.map((c) => c.comm).join(', ')}`);
  for (const c of idle) {
    assert.equal(c.method, 'inferred');
    assert.ok(c.frames.some((f) => f.symbol.startsWith('do_idle+')), `CPU ${c.cpu} idle, inferred: ${c.frames.map((f) => f.symbol).join(', ')}`);
  }
});
