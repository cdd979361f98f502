// A panicked kernel's last words: `echo c > /proc/sysrq-trigger` on a testbed guest (KASLR on,
// its log in a ring allocated at boot), then `grass report`, `grass dmesg`, `grass detect` (says
// panicked, no F1) and `grass bt` of the panicking task (the call trace's functions) through the
// agent on its RAM, and again on an ELF vmcore of it. The serial console (the kernel's own
// rendering) is the truth.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bootGuest, Guest } from '../../testbed';
import { grass, grassJson, GuestAgent, startGuestAgent } from './agent-harness';

let guest: Guest;
let agent: GuestAgent;
let args: string[];
let scratch: string;

before(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), 'grass-klog-panic-'));
  // log_buf_len=: the kernel moves its log to a ring allocated at boot (in the direct map, not
  // the kernel image), 8 times the default size.
  guest = await bootGuest({ memMiB: 256, cpus: 2, kaslr: true, append: ['log_buf_len=1M'] });
  agent = await startGuestAgent(guest);
  args = ['--target', agent.target, '--key-file', agent.keyFile];
});

after(async () => {
  await agent?.stop();
  await guest?.down();
  rmSync(scratch, { recursive: true, force: true });
});

interface Report {
  kind: string;
  message: string;
  cpu: number | null;
  pid: number | null;
  comm: string | null;
  taint: string | null;
  callTrace: string[];
  lines: string[];
}
interface ReportOutput {
  reports: Report[];
  running: ({ cpu: number; pid: number; comm: string } | { cpu: number; error: string })[];
}
interface Dmesg {
  records: { seq: number; text: string }[];
}

/** The console's lines from the panic message to the end of its call trace, without timestamps. */
function consolePanic(): { cpu: number; pid: number; comm: string; trace: string[] } {
  const lines = guest.console().replace(/\r/g, '').split('\n').map((l) => l.replace(/^\[\s*\d+\.\d+\] /, ''));
  const start = lines.findIndex((l) => l.startsWith('Kernel panic - not syncing: sysrq triggered crash'));
  const end = lines.findIndex((l, i) => i > start && l === ' </TASK>');
  assert.ok(start >= 0 && end > start, 'the panic and its call trace are on the console');
  const body = lines.slice(start, end + 1);
  const who = /^CPU: (\d+) PID: (\d+) Comm: (\S+)/.exec(body.find((l) => l.startsWith('CPU: ')) ?? '');
  assert.ok(who, 'the console names the panicking task');
  const from = body.indexOf('Call Trace:');
  const to = body.indexOf(' </TASK>', from);
  return { cpu: Number(who[1]), pid: Number(who[2]), comm: who[3], trace: body.slice(from, to + 1) };
}

let live: ReportOutput;

test('after echo c > /proc/sysrq-trigger, grass report shows the panic, the task and its call trace', async () => {
  const f = await guest.fault('panic');
  assert.equal(f.answered, false, 'the shell never answers after the panic');
  // The testbed's pvpanic device pauses the guest inside panic(), after the stack dump and
  // before the "---[ end Kernel panic" line: the log ends where a hard hang would leave it.
  const deadline = Date.now() + 60_000;
  while ((await guest.status()) !== 'guest-panicked') {
    assert.ok(Date.now() < deadline, `the guest did not panic: ${guest.console().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const truth = consolePanic();
  // The ring is the one allocated at boot: prb no longer points into the kernel image.
  const { records } = await grassJson<Dmesg>(['dmesg', ...args]);
  assert.equal(records[0].seq, 0, 'nothing overwritten in a 1 MiB ring');
  assert.ok(guest.console().includes('log_buf_len: 1048576 bytes'), 'the kernel took log_buf_len');
  live = await grassJson<ReportOutput>(['report', ...args]);
  const panics = live.reports.filter((r) => r.kind === 'panic');
  assert.equal(panics.length, 1, JSON.stringify(live.reports.map((r) => r.kind)));
  const p = panics[0];
  assert.equal(p.message, 'Kernel panic - not syncing: sysrq triggered crash');
  assert.equal(p.cpu, truth.cpu);
  assert.equal(p.pid, truth.pid);
  assert.equal(p.comm, truth.comm);
  assert.equal(p.taint, 'Not tainted');
  assert.deepEqual(p.callTrace, truth.trace);
  assert.ok(p.callTrace.some((l) => /^ sysrq_handle_crash\+0x[0-9a-f]+\/0x[0-9a-f]+$/.test(l)));
  // The panicking CPU is still running the task that panicked.
  const onCpu = live.running.find((c) => c.cpu === truth.cpu);
  assert.ok(onCpu && !('error' in onCpu), JSON.stringify(live.running));
  assert.equal(onCpu.pid, truth.pid);
  const text = await grass(['report', ...args]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^panic on CPU \d+, task \S+ \(pid \d+\) at \[\s*\d+\.\d{6}\], records \d+\.\.\d+\n  Kernel panic - not syncing: sysrq triggered crash\n/);
  assert.match(text.stdout, /^ {2} sysrq_handle_crash\+/m);
});

interface DetectOutput {
  panic: { panicked: boolean; panicCpu: number | null; report: Report | null; errors: string[] };
  detections: { detector: string; active: boolean; hangClass?: string; superseded?: { by: string; hangClass: string; reason: string } }[];
}

test('grass detect says panicked, with the report; the CPUs panic() stopped are not an F1 hang', async () => {
  assert.ok(live, 'the live report ran first');
  const truth = consolePanic();
  // The paused guest's jiffies stand still: the agent's classifier calls that F1 within a few
  // windows. Wait for its verdict, so that what is checked is the remote's reading of it.
  const deadline = Date.now() + 30_000;
  let out: DetectOutput;
  for (;;) {
    out = await grassJson<DetectOutput>(['detect', ...args, '--background']);
    if (out.detections.some((d) => d.detector === 'hang' && (d.superseded || d.active))) break;
    assert.ok(Date.now() < deadline, `the agent never classified the stopped CPUs: ${JSON.stringify(out)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(out.panic.panicked, true, JSON.stringify(out.panic));
  assert.equal(out.panic.panicCpu, truth.cpu);
  assert.deepEqual(out.panic.errors, []);
  assert.equal(out.panic.report?.message, 'Kernel panic - not syncing: sysrq triggered crash');
  assert.equal(out.panic.report?.pid, truth.pid);
  assert.deepEqual(out.panic.report?.callTrace, truth.trace);
  const hang = out.detections.find((d) => d.detector === 'hang')!;
  assert.equal(hang.active, false, JSON.stringify(hang));
  assert.equal(hang.hangClass, undefined);
  assert.equal(hang.superseded?.by, 'panic');
  assert.equal(hang.superseded?.hangClass, 'F1', 'what the agent alone says of a panicked kernel');
  assert.deepEqual(out.detections.filter((d) => d.active), []);
  const text = await grass(['detect', ...args, '--background']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`^panicked on CPU ${truth.cpu}, task ${truth.comm} \\(pid ${truth.pid}\\): Kernel panic - not syncing: sysrq triggered crash\n`));
  assert.match(text.stdout, /^hang: not F1: the kernel panicked/m);
  assert.doesNotMatch(text.stdout, /^hang F1/m);
});

test('grass bt of the panicking task: the functions of the log\'s panic call trace, in order, none of its ? frames', async () => {
  const truth = consolePanic();
  const fn = (line: string): string => line.trim().replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+( \[\S+\])?$/, '$1');
  const printed = truth.trace.map((l) => l.trim()).filter((l) => /^\??\s*\S+\+0x[0-9a-f]+\/0x[0-9a-f]+/.test(l));
  const reliable = printed.filter((l) => !l.startsWith('?')).map(fn);
  const unreliable = new Set(printed.filter((l) => l.startsWith('?')).map((l) => fn(l.slice(1))));
  // The trace was printed by dump_stack() inside panic(): that frame returned long ago; panic()
  // and its callers below are still live.
  assert.equal(reliable.indexOf('panic'), 1, reliable.join(' < '));
  const { traces } = await grassJson<{ traces: { pid: number; method: string; note?: string; frames: { symbol: string; module?: string }[] }[] }>(['bt', ...args, String(truth.pid)]);
  const [t] = traces;
  assert.equal(t.method, 'inferred');
  assert.match(t.note ?? '', /inferred/);
  const names = t.frames.map((f) => fn(f.module ? `${f.symbol} [${f.module}]` : f.symbol));
  console.log(`bt ${truth.pid}: ${names.join(' < ')}\nlog: ${printed.join(' < ')}`);
  assert.deepEqual(names.slice(names.indexOf('panic')), reliable.slice(1), names.join(' < '));
  // Above panic: the functions panic() has called since the dump (its notifiers); none of them
  // a stale address the kernel itself marked unreliable.
  assert.deepEqual(names.filter((n) => unreliable.has(n) && !reliable.includes(n)), []);
});

test('the same report and log from an ELF vmcore of the panicked guest', async () => {
  assert.ok(live, 'the live report ran first');
  const vmcore = path.join(scratch, 'vmcore');
  await guest.dump(vmcore);
  const fromLive = await grassJson<Dmesg>(['dmesg', ...args]);
  const offline = ['--target', `vmcore:${vmcore}`];
  const fromCore = await grassJson<Dmesg>(['dmesg', ...offline]);
  assert.deepEqual(fromCore.records, fromLive.records);
  const report = await grassJson<ReportOutput>(['report', ...offline]);
  assert.deepEqual(report.reports, live.reports);
});
