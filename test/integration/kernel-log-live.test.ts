// The kernel log read from a live testbed guest's memory through the agent (`grass dmesg`,
// `grass report`), against the guest's own /dev/kmsg and serial console. One guest for the file;
// the guest is paused for every exact comparison.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { bootGuest, Guest } from '../../testbed';
import { parseKmsg, type KmsgTruth } from '../unit/kernel-log-kmsg';
import { grass, grassJson, GuestAgent, root, startGuestAgent } from './agent-harness';

let guest: Guest;
let agent: GuestAgent;
let args: string[];

before(async () => {
  // printk.devkmsg=on: writes to /dev/kmsg are not rate-limited (the test writes thousands).
  guest = await bootGuest({ memMiB: 256, cpus: 2, append: ['printk.devkmsg=on'] });
  agent = await startGuestAgent(guest);
  args = ['--target', agent.target, '--key-file', agent.keyFile];
});

after(async () => {
  await agent?.stop();
  await guest?.down();
});

interface DmesgRecord {
  seq: number;
  timestampUs: number;
  level: number;
  facility: number;
  continuation: boolean;
  caller: { pid: number } | { cpu: number };
  text: string;
  subsystem?: string;
  device?: string;
  finalized: boolean;
}
interface Dmesg {
  records: DmesgRecord[];
  firstSeq: number;
  headSeq: number;
  resumeAfterSeq: number;
  notes: string[];
}

async function kmsg(): Promise<KmsgTruth[]> {
  return parseKmsg(await guest.exec('grass-guest kmsg', { timeoutMs: 60_000 }));
}

function assertSame(records: DmesgRecord[], truth: KmsgTruth[]): void {
  const bySeq = new Map(records.map((r) => [r.seq, r]));
  for (const k of truth) {
    const r = bySeq.get(k.seq);
    assert.ok(r, `record ${k.seq} (${k.text.slice(0, 80)}) missing from memory`);
    assert.equal(r.text, k.text, `record ${k.seq} text`);
    assert.equal(r.facility * 8 + r.level, k.priority, `record ${k.seq} priority`);
    assert.equal(r.timestampUs, k.timestampUs, `record ${k.seq} timestamp`);
    assert.equal(r.continuation, k.continuation, `record ${k.seq} LOG_CONT`);
    assert.equal(r.subsystem ?? '', k.fields.SUBSYSTEM ?? '', `record ${k.seq} subsystem`);
    assert.equal(r.device ?? '', k.fields.DEVICE ?? '', `record ${k.seq} device`);
  }
}

test('the log read from memory equals the guest\'s /dev/kmsg, after the ring wrapped (guest paused)', async () => {
  // ~200 KiB of records, more than the 128 KiB text ring: old records are overwritten and some
  // data blocks wrap around the end of the ring.
  await guest.exec(`i=0; while [ $i -lt 250 ]; do echo "<$((i % 8))>grass live filler $i ${'y'.repeat(800)}" > /dev/kmsg; i=$((i+1)); done`, { timeoutMs: 300_000 });
  const truth = await kmsg();
  await guest.pause();
  try {
    const log = await grassJson<Dmesg>(['dmesg', ...args]);
    assert.deepEqual(log.notes, []);
    assert.ok(truth[0].seq > 0, 'the ring wrapped');
    // Nothing logs between reading /dev/kmsg and the pause but the serial shell's own commands
    // (none print to the kernel log), so the two hold the same records.
    assert.deepEqual(log.records.map((r) => r.seq), truth.map((k) => k.seq));
    assertSame(log.records, truth);
    assert.ok(log.records.every((r) => r.finalized));
    // The text form: one line per record line, dmesg -r style with the caller.
    const text = await grass(['dmesg', ...args]);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trimEnd().split('\n');
    assert.equal(lines.length, log.records.reduce((n, r) => n + r.text.split('\n').length, 0));
    const last = log.records[log.records.length - 1];
    assert.match(lines[lines.length - 1], new RegExp(`^<${last.facility * 8 + last.level}>\\[\\s*\\d+\\.\\d{6}\\] \\[\\s*[TC]\\d+\\] ${escapeRegExp(last.text)}$`));
  } finally {
    await guest.resume();
  }
});

test('--since returns only the records after a sequence number', async () => {
  const before = await grassJson<Dmesg>(['dmesg', ...args, '--since', '1000000']);
  assert.deepEqual(before.records, []);
  const head = before.headSeq;
  await guest.exec('for w in one two three; do echo "grass since $w" > /dev/kmsg; done');
  await guest.pause();
  try {
    const log = await grassJson<Dmesg>(['dmesg', ...args, '--since', String(head)]);
    assert.deepEqual(log.records.map((r) => r.text), ['grass since one', 'grass since two', 'grass since three']);
    assert.deepEqual(log.records.map((r) => r.seq), [head + 1, head + 2, head + 3]);
    assert.equal(log.resumeAfterSeq, head + 3);
  } finally {
    await guest.resume();
  }
  assertSame((await grassJson<Dmesg>(['dmesg', ...args, '--since', String(head)])).records, (await kmsg()).filter((k) => k.seq > head));
});

test('--follow prints records as the kernel logs them', async () => {
  const { headSeq } = await grassJson<Dmesg>(['dmesg', ...args, '--since', '1000000']);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'dmesg', ...args, '--follow', '--since', String(headSeq), '--interval-ms', '200', '--json'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const seen: DmesgRecord[] = [];
    const lines = createInterface({ input: child.stdout! });
    const got = new Promise<void>((resolve) => {
      lines.on('line', (l) => {
        seen.push(JSON.parse(l) as DmesgRecord);
        if (seen.some((r) => r.text === 'grass follow 3')) resolve();
      });
    });
    for (const n of [1, 2, 3]) {
      await guest.exec(`echo "grass follow ${n}" > /dev/kmsg`);
      await new Promise((r) => setTimeout(r, 300));
    }
    await Promise.race([got, new Promise((_, reject) => setTimeout(() => reject(new Error(`follow saw ${JSON.stringify(seen.map((r) => r.text))}`)), 30_000))]);
    const ours = seen.filter((r) => r.text.startsWith('grass follow'));
    assert.deepEqual(ours.map((r) => r.text), ['grass follow 1', 'grass follow 2', 'grass follow 3']);
    // In order, each once.
    assert.deepEqual(seen.map((r) => r.seq), [...new Set(seen.map((r) => r.seq))].sort((a, b) => a - b));
  } finally {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    // Interrupted, it detaches and exits as every target verb does (128 + SIGINT).
    assert.equal(await exited, 130);
  }
});

interface Report {
  kind: string;
  message: string;
  cpu: number | null;
  pid: number | null;
  comm: string | null;
  rip: string | null;
  registers: Record<string, string>;
  callTrace: string[];
  firstSeq: number;
  lastSeq: number;
}
interface ReportOutput {
  reports: Report[];
  running: ({ cpu: number; pid: number; comm: string } | { cpu: number; error: string })[];
}

test('after the testbed\'s oops module: an oops report naming insmod, its CPU, registers and trace', async () => {
  await guest.fault('oops');
  // The kernel's own rendering of the report, on the serial console.
  const [, cpu, pid] = await guest.waitForConsole(/CPU: (\d+) PID: (\d+) Comm: insmod /, 30_000);
  await guest.waitForConsole(/---\[ end trace/, 30_000);
  const out = await grassJson<ReportOutput>(['report', ...args]);
  const oops = out.reports.filter((r) => r.kind === 'oops');
  assert.equal(oops.length, 1, JSON.stringify(out.reports.map((r) => r.kind)));
  const r = oops[0];
  assert.match(r.message, /^BUG: kernel NULL pointer dereference, address: 0000000000000000\nOops: /);
  assert.equal(r.comm, 'insmod');
  assert.equal(r.pid, Number(pid));
  assert.equal(r.cpu, Number(cpu));
  assert.match(r.rip ?? '', /^grass_oops_init\+0x[0-9a-f]+\/0x[0-9a-f]+ \[grass_oops\]$/);
  assert.match(r.registers.RSP, /^0018:ffff[0-9a-f]{12}$/);
  assert.ok(r.callTrace.some((l) => /^ do_one_initcall\+/.test(l)), r.callTrace.join('\n'));
  // Each CPU's current task is readable on the live guest.
  assert.equal(out.running.length, 2);
  for (const c of out.running) assert.ok(!('error' in c), JSON.stringify(c));
});

test('after the testbed\'s soft-lockup fault: a soft-lockup report naming the stuck CPU and task', async () => {
  await guest.fault('softlockup');
  const [, cpu, , comm, pid] = await guest.waitForConsole(/watchdog: BUG: soft lockup - CPU#(\d+) stuck for (\d+)s! \[(.+):(\d+)\]/, 120_000);
  await guest.waitForConsole(/grass fault softlockup: CPU released/, 120_000);
  const out = await grassJson<ReportOutput>(['report', ...args]);
  const lockups = out.reports.filter((r) => r.kind === 'soft-lockup');
  assert.ok(lockups.length >= 1);
  for (const r of lockups) {
    assert.equal(r.cpu, Number(cpu));
    assert.equal(r.pid, Number(pid));
    assert.equal(r.comm, comm);
    assert.match(comm, /^grass_softlocku/);
    assert.match(r.rip ?? '', /^grass_softlockup_thread\+/);
    assert.ok(r.callTrace.includes(' </TASK>'));
  }
  // The oops before it is still reported, before it in log order.
  assert.deepEqual(out.reports.map((r) => r.kind).filter((k) => k !== 'soft-lockup'), ['oops']);
  const text = await grass(['report', ...args]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`^soft-lockup on CPU ${cpu}, task ${escapeRegExp(comm)} \\(pid ${pid}\\)`, 'm'));
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
