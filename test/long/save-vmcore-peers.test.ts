// The vmcores of grass save-vmcore (all memory, and --kernel-only) opened by Debian's crash 8.0.2
// and drgn 0.0.22 with the kernel's DWARF: each lists the same tasks as the guest's own /proc
// (read before the panic) and as grass from the same file. Needs the -dbg package's vmlinux (858 MB,
// fetched once into .cache/kernel-dbg/), hence a long test.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bootGuest, GroundTruth, Guest } from '../../testbed';
import { grassJson, GuestAgent, PsTask, sameComm, startGuestAgent } from '../integration/agent-harness';
import { crashTasks, drgnTasks, ensurePeerTools, kernelDebugVmlinux, PeerTask } from './peer-tools';

let guest: Guest;
let agent: GuestAgent;
let scratch: string;
let truths: GroundTruth[];
let vmlinux: string;
const files: Record<string, string> = {};

before(async () => {
  ensurePeerTools();
  scratch = mkdtempSync(path.join(tmpdir(), 'grass-vmcore-peers-'));
  guest = await bootGuest({ memMiB: 256, cpus: 2, kaslr: true });
  agent = await startGuestAgent(guest);
  truths = [await guest.truth(), await guest.truth()];
  const release = (await guest.exec('uname -r')).trim();
  vmlinux = kernelDebugVmlinux(release);
  await guest.fault('panic');
  const deadline = Date.now() + 60_000;
  while ((await guest.status()) !== 'guest-panicked') {
    assert.ok(Date.now() < deadline, 'the guest panicked');
    await new Promise((r) => setTimeout(r, 200));
  }
  const args = ['--target', agent.target, '--key-file', agent.keyFile];
  for (const [name, extra] of [['all', []], ['kernel-only', ['--kernel-only']]] as const) {
    files[name] = path.join(scratch, `${name}.vmcore`);
    await grassJson(['save-vmcore', files[name], ...args, ...extra]);
  }
});

after(async () => {
  await agent?.stop();
  await guest?.down();
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * A peer's list against the truths: every task both truths hold (threads too when the peer lists
 * them) is listed with its comm; anything else listed is newer than every pid the truths saw (the
 * shell the panic ran in) or the idle task.
 */
function assertMatchesGuest(tool: string, listed: PeerTask[], threads: boolean): void {
  const keep = (t: GroundTruth): Map<number, string> => new Map(t.tasks.filter((x) => threads || x.pid === x.tgid).map((x) => [x.pid, x.comm]));
  const [a, b] = truths.map(keep);
  const byPid = new Map(listed.map((t) => [t.pid, t.comm]));
  let compared = 0;
  for (const [pid, comm] of a) {
    if (b.get(pid) !== comm) continue;
    const got = byPid.get(pid);
    assert.ok(got !== undefined, `${tool}: pid ${pid} (${comm}) is in the guest's truth but not listed`);
    assert.ok(sameComm(got, comm), `${tool}: comm of pid ${pid}: ${got} vs the guest's ${comm}`);
    compared++;
  }
  const newest = Math.max(...truths.flatMap((t) => t.tasks.map((x) => x.pid)));
  const later = listed.filter((t) => t.pid !== 0 && !a.has(t.pid) && !b.has(t.pid));
  assert.ok(later.every((t) => t.pid > newest) && later.length <= 3, `${tool}: listed but in neither truth: ${JSON.stringify(later)}`);
  process.stderr.write(`# ${tool}: ${listed.length} tasks listed, ${compared} compared with the guest's truth\n`);
}

for (const name of ['all', 'kernel-only']) {
  test(`${name} vmcore: drgn, crash and grass list the guest's tasks`, async () => {
    const file = files[name];
    const fromGrass = (await grassJson<{ tasks: PsTask[] }>(['ps', '--threads', '--target', `vmcore:${file}`])).tasks;
    assertMatchesGuest(`grass (${name})`, fromGrass, true);
    const drgn = await drgnTasks(file, vmlinux);
    assertMatchesGuest(`drgn (${name}, ${drgn.seconds.toFixed(1)} s, ${Math.round(drgn.peakRssKiB / 1024)} MiB)`, drgn.result, true);
    assert.deepEqual(drgn.result.map((t) => t.pid).sort((x, y) => x - y), fromGrass.map((t) => t.pid).sort((x, y) => x - y), 'drgn and grass list the same pids');
    const initTask = (await grassJson<{ address: string }>(['read', 'init_task', '1', '--target', `vmcore:${file}`])).address;
    const crash = await crashTasks(file, vmlinux, BigInt(initTask));
    assert.equal(crash.result[0].pid, 0, 'crash\'s walk starts at init_task');
    assertMatchesGuest(`crash (${name}, ${crash.seconds.toFixed(1)} s, ${Math.round(crash.peakRssKiB / 1024)} MiB)`, crash.result, false);
    const leaders = fromGrass.filter((t) => t.pid === t.tgid).map((t) => t.pid);
    assert.deepEqual(crash.result.slice(1).map((t) => t.pid).sort((x, y) => x - y), leaders.sort((x, y) => x - y), 'crash and grass list the same processes');
  });
}
