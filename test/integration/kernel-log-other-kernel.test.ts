// The kernel log on a kernel other than the testbed's default: Debian's 6.12 (bookworm's
// linux-image-6.12-amd64; GRASS_KERNEL_LOG_KERNEL names another package). Its printk ring has
// moved on since 6.1 (last_finalized_seq in prb_desc_ring) and its reports print
// "CPU: N UID: N PID: N"; the layout still comes from its own VMCOREINFO and BTF.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { bootGuest, Guest } from '../../testbed';
import { parseKmsg } from '../unit/kernel-log-kmsg';
import { grassJson, GuestAgent, startGuestAgent } from './agent-harness';

/** The concrete image package behind bookworm's 6.12 meta-package, from the local apt index. */
function otherKernel(): string {
  if (process.env.GRASS_KERNEL_LOG_KERNEL) return process.env.GRASS_KERNEL_LOG_KERNEL;
  const deps = execFileSync('apt-cache', ['depends', 'linux-image-6.12-amd64'], { encoding: 'utf8' });
  const m = /Depends: (linux-image-6\.12\.\S+-amd64)/.exec(deps);
  if (!m) throw new Error(`apt-cache depends linux-image-6.12-amd64 names no image package:\n${deps}`);
  return m[1];
}

let guest: Guest;
let agent: GuestAgent;
let args: string[];

before(async () => {
  guest = await bootGuest({ kernel: otherKernel(), memMiB: 256, cpus: 2, append: ['printk.devkmsg=on'] });
  agent = await startGuestAgent(guest);
  args = ['--target', agent.target, '--key-file', agent.keyFile];
});

after(async () => {
  await agent?.stop();
  await guest?.down();
});

interface Dmesg {
  records: { seq: number; timestampUs: number; level: number; facility: number; continuation: boolean; text: string; finalized: boolean }[];
  notes: string[];
}
interface ReportOutput {
  reports: { kind: string; message: string; cpu: number | null; pid: number | null; comm: string | null; rip: string | null; callTrace: string[] }[];
}

test('the log read from memory equals /dev/kmsg on this kernel too (guest paused)', async () => {
  assert.match((await guest.exec('uname -r')).trim(), /^6\.12\./);
  // Records from user space, one of them empty.
  await guest.exec(`echo "<5>grass other kernel" > /dev/kmsg; printf '\\n' > /dev/kmsg; echo "<3>grass after empty" > /dev/kmsg`);
  const truth = parseKmsg(await guest.exec('grass-guest kmsg', { timeoutMs: 60_000 }));
  await guest.pause();
  try {
    const log = await grassJson<Dmesg>(['dmesg', ...args]);
    assert.deepEqual(log.notes, []);
    assert.deepEqual(log.records.map((r) => r.seq), truth.map((k) => k.seq));
    for (const [i, k] of truth.entries()) {
      const r = log.records[i];
      assert.equal(r.text, k.text, `record ${k.seq}`);
      assert.equal(r.facility * 8 + r.level, k.priority, `record ${k.seq}`);
      assert.equal(r.timestampUs, k.timestampUs, `record ${k.seq}`);
      assert.equal(r.continuation, k.continuation, `record ${k.seq}`);
    }
    assert.ok(truth.some((k) => k.text === 'grass after empty'));
    assert.ok(truth.some((k) => k.text === ''), 'an empty record');
  } finally {
    await guest.resume();
  }
});

test('soft lockup, then a sysrq panic with its call trace, reported from memory', async () => {
  await guest.fault('softlockup');
  const [, cpu, , comm, pid] = await guest.waitForConsole(/watchdog: BUG: soft lockup - CPU#(\d+) stuck for (\d+)s! \[(.+):(\d+)\]/, 120_000);
  await guest.waitForConsole(/grass fault softlockup: CPU released/, 120_000);
  await guest.fault('panic');
  const deadline = Date.now() + 60_000;
  while ((await guest.status()) !== 'guest-panicked') {
    assert.ok(Date.now() < deadline, 'the guest did not panic');
    await new Promise((r) => setTimeout(r, 200));
  }
  const [, panicCpu, panicPid] = await guest.waitForConsole(/Kernel panic - not syncing: sysrq triggered crash\r?\n.*CPU: (\d+) UID: \d+ PID: (\d+) Comm: sh /, 5_000);
  const out = await grassJson<ReportOutput>(['report', ...args]);
  assert.deepEqual([...new Set(out.reports.map((r) => r.kind))], ['soft-lockup', 'panic']);
  for (const r of out.reports.filter((x) => x.kind === 'soft-lockup')) {
    assert.equal(r.cpu, Number(cpu));
    assert.equal(r.pid, Number(pid));
    assert.equal(r.comm, comm);
  }
  const panic = out.reports.find((r) => r.kind === 'panic')!;
  assert.equal(panic.message, 'Kernel panic - not syncing: sysrq triggered crash');
  assert.equal(panic.cpu, Number(panicCpu));
  assert.equal(panic.pid, Number(panicPid));
  assert.equal(panic.comm, 'sh');
  assert.ok(panic.callTrace.some((l) => /^ sysrq_handle_crash\+/.test(l)), panic.callTrace.join('\n'));
});
