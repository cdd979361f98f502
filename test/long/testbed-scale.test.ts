// Long testbed runs: 10 000 processes and 10 000 threads in a guest sized for them, read back as
// ground truth; and /proc/kallsyms through the truth reader.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bootGuest, Guest } from '../../testbed';
import { elfSectionAddress, guestLeftovers } from '../integration/testbed-support';

describe('testbed at scale: 10 000 tasks', () => {
  let guest: Guest;
  before(async () => {
    guest = await bootGuest({ memMiB: 2048, cpus: 2 });
  });
  after(async () => {
    if (!guest) return;
    await guest.down();
    assert.deepEqual(guestLeftovers(guest), []);
  });

  it('spawns 10 000 processes and sees every one in the ground truth', async () => {
    const started = Date.now();
    const r = await guest.spawn(10_000, { timeoutMs: 600_000 });
    process.stderr.write(`# 10 000 processes spawned in ${Date.now() - started} ms\n`);
    assert.equal(r.created, 10_000);
    const t0 = Date.now();
    const truth = await guest.truth({ timeoutMs: 300_000 });
    process.stderr.write(`# truth of ${truth.tasks.length} tasks in ${Date.now() - t0} ms\n`);
    const children = truth.tasks.filter((t) => t.ppid === r.holderPid && t.comm === 'grass-spawn');
    assert.equal(children.length, 10_000);
    assert.equal(Number((await guest.exec(`ls /proc | grep -c '^[0-9]'`)).trim()) >= 10_000, true);
    await guest.exec(`kill -9 -${r.holderPid}`, { timeoutMs: 120_000 });
  });

  it('spawns 10 000 threads in one process and sees the thread group', async () => {
    const r = await guest.spawn(10_000, { threads: true, timeoutMs: 600_000 });
    assert.equal(r.created, 10_000);
    const truth = await guest.truth({ timeoutMs: 300_000 });
    const group = truth.tasks.filter((t) => t.tgid === r.holderPid);
    assert.equal(group.length, 10_001);
    for (const t of group) assert.equal(t.threads, 10_001);
    assert.match(await guest.exec(`grep Threads /proc/${r.holderPid}/status`), /Threads:\s+10001/);
    await guest.exec(`kill -9 ${r.holderPid}`, { timeoutMs: 120_000 });
  });

  it('ground truth carries /proc/kallsyms, consistent with vmlinux', async () => {
    const truth = await guest.truth({ kallsyms: true, timeoutMs: 300_000 });
    assert.ok(truth.kallsyms);
    const text = /^([0-9a-f]+) T _text$/m.exec(truth.kallsyms);
    assert.ok(text);
    assert.equal(BigInt('0x' + text[1]), elfSectionAddress(guest.kernelDir.vmlinux, '.text'));
    const lines = truth.kallsyms.trimEnd().split('\n').length;
    assert.equal(lines, Number((await guest.exec('wc -l < /proc/kallsyms', { timeoutMs: 120_000 })).trim()));
  });
});
