// The kernel model on a second kernel: Debian's 6.12 (bookworm's linux-image-6.12-amd64; or
// GRASS_KERNEL_MODEL_KERNEL), booted with KASLR. Since 6.2 the RSS counters are per-CPU
// counters (mm->rss_stat[].count), and 6.12's vmlinuz is zstd-compressed; layouts, addresses and
// the compression all come from the target, nothing from 6.1.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { bootGuest, Guest } from '../../testbed';
import type { ValueNode } from '../../src/types/decoded-value';
import { assertTasksMatchTruth, grass, grassJson, GuestAgent, PsTask, startGuestAgent } from './agent-harness';
import { assertRssMatchesTruth } from './kernel-truth';

function otherKernel(): string {
  if (process.env.GRASS_KERNEL_MODEL_KERNEL) return process.env.GRASS_KERNEL_MODEL_KERNEL;
  const deps = execFileSync('apt-cache', ['depends', 'linux-image-6.12-amd64'], { encoding: 'utf8' });
  const m = /Depends: (linux-image-6\.12\.\S+-amd64)/.exec(deps);
  if (!m) throw new Error(`apt-cache depends linux-image-6.12-amd64 names no image package:\n${deps}`);
  return m[1];
}

let guest: Guest;
let agent: GuestAgent;
let args: string[];

before(async () => {
  guest = await bootGuest({ kernel: otherKernel(), kaslr: true, memMiB: 512, cpus: 2 });
  await guest.spawn(20);
  await guest.spawn(4, { threads: true });
  agent = await startGuestAgent(guest);
  args = ['--target', agent.target, '--key-file', agent.keyFile];
});

after(async () => {
  await agent?.stop();
  await guest?.down();
});

const byPid = (tasks: PsTask[]): PsTask[] => [...tasks].sort((a, b) => a.pid - b.pid || a.tgid - b.tgid);

test('6.12 with KASLR: ps --remote-analysis equals the agent\'s list, /proc, and /proc\'s RSS', async () => {
  const truthBefore = await guest.truth();
  await guest.pause();
  const lists: Record<string, { ours: PsTask[]; agents: PsTask[] }> = {};
  try {
    for (const [label, extra] of [['leaders', []], ['threads', ['--threads']], ['idle', ['--idle']]] as const) {
      lists[label] = {
        ours: (await grassJson<{ tasks: PsTask[] }>(['ps', '--remote-analysis', ...extra, ...args])).tasks,
        agents: (await grassJson<{ tasks: PsTask[] }>(['ps', ...extra, ...args])).tasks,
      };
    }
  } finally {
    await guest.resume();
  }
  const truthAfter = await guest.truth();
  for (const [label, { ours, agents }] of Object.entries(lists)) assert.deepEqual(byPid(ours), byPid(agents), label);
  assert.ok(assertTasksMatchTruth(lists.leaders.ours, truthBefore, truthAfter, false) > 20);
  assertTasksMatchTruth(lists.threads.ours, truthBefore, truthAfter, true);
  const rssCompared = assertRssMatchesTruth(lists.threads.ours, truthBefore, truthAfter);
  assert.ok(rssCompared > 20, `RSS compared for only ${rssCompared} tasks`);
  assert.ok(lists.leaders.ours.some((t) => t.rssBytes > 0), 'some process has a resident set');
});

test('6.12 with KASLR: decode at randomized addresses; the zstd vmlinuz gives the target\'s BTF', async () => {
  const kallsyms = (await guest.exec("grep ' init_task$' /proc/kallsyms")).trim().split(' ')[0];
  const addr = await grassJson<ValueNode>(['decode', '&init_task', ...args]);
  assert.equal(BigInt(addr.value as string), BigInt('0x' + kallsyms));
  const pid1 = await grassJson<ValueNode>(['decode', 'container_of(init_task.tasks.next, struct task_struct, tasks)->pid', ...args]);
  assert.equal(pid1.value, 1);
  const online = await grassJson<{ types: unknown[] }>(['btf', 'mm_struct', ...args]);
  const fromVmlinuz = JSON.parse((await grass(['btf', '--btf', guest.kernelDir.vmlinuz, 'mm_struct', '--json'], {}, 300_000)).stdout) as { types: unknown[] };
  assert.deepEqual(fromVmlinuz.types, online.types);
});
