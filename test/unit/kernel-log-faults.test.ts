// The fault-report extractor on real kernel output: records decoded from testbed guests' memory
// after a hung task, an oops, a soft lockup and a panic (test/fixtures/kernel-log/capture.ts),
// with the guests' serial consoles as the kernel's own rendering of the same records.

import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { extractFaultReports, type FaultReport } from '../../src/kernel/log/faults';
import { formatRecord, formatReport, formatTimestamp, reportToJson } from '../../src/kernel/log/format';
import type { KernelLogRecord } from '../../src/kernel/log/ringbuffer';

const dir = join(__dirname, '../fixtures/kernel-log');

interface JsonRecord {
  seq: number;
  timestampNs: number;
  level: number;
  facility: number;
  continuation: boolean;
  newline: boolean;
  caller: { pid: number } | { cpu: number };
  text: string;
  finalized: boolean;
}

function load(name: string, release = '6.1.0-56-amd64'): { records: KernelLogRecord[]; console: string } {
  const json = JSON.parse(readFileSync(join(dir, `${name}-${release}.json`), 'utf8')) as { records: JsonRecord[] };
  const records = json.records.map(
    (r): KernelLogRecord => ({
      seq: r.seq,
      timestampNs: BigInt(r.timestampNs),
      level: r.level,
      facility: r.facility,
      continuation: r.continuation,
      newline: r.newline,
      caller: 'pid' in r.caller ? { kind: 'thread', pid: r.caller.pid } : { kind: 'cpu', cpu: r.caller.cpu },
      text: r.text,
      subsystem: '',
      device: '',
      finalized: r.finalized,
    }),
  );
  // The serial console ends lines with CR LF.
  return { records, console: readFileSync(join(dir, `${name}-${release}.console`), 'latin1').replace(/\r\n/g, '\n') };
}

const faults = load('faults');
const panic = load('panic');
const hang = load('hang');
// Debian's 6.12: "CPU: N UID: N PID: N", "Oops: Oops: 0000 [#1]", hung-task lines with tgid.
const faults612 = load('faults', '6.12.117+deb12-amd64');

test('the decoded records are what the kernel printed on its console (timestamps formatted alike)', () => {
  for (const { records, console } of [faults, panic, hang, faults612]) {
    let at = 0;
    for (const r of records) {
      // Console lines carry no level or caller: "[   12.345678] text".
      const line = `${formatTimestamp(r.timestampNs)} ${r.text}`;
      const found = console.indexOf(line + '\n', at);
      assert.ok(found >= 0, `record ${r.seq} not on the console after offset ${at}: ${line}`);
      at = found + line.length;
    }
  }
});

function only(reports: FaultReport[], kind: FaultReport['kind']): FaultReport {
  const of = reports.filter((r) => r.kind === kind);
  assert.equal(of.length, 1, `${of.length} ${kind} reports`);
  return of[0];
}

test('hung task, oops, soft lockup and panic are found, in log order', () => {
  const reports = extractFaultReports(faults.records);
  assert.deepEqual(
    reports.map((r) => r.kind),
    ['hung-task', 'oops', 'soft-lockup', 'panic'],
  );
});

test('hung task: the blocked task (not khungtaskd, who printed it) and its call trace', () => {
  const r = only(extractFaultReports(faults.records), 'hung-task');
  assert.equal(r.message, 'INFO: task cat:104 blocked for more than 3 seconds.');
  assert.equal(r.comm, 'cat');
  assert.equal(r.pid, 104);
  assert.equal(r.cpu, undefined);
  assert.equal(r.taint, 'Tainted: G           OE');
  assert.deepEqual(r.reporter, { kind: 'thread', pid: 28 });
  assert.equal(r.callTrace[0], 'Call Trace:');
  assert.equal(r.callTrace[1], ' <TASK>');
  assert.ok(r.callTrace.includes(' grass_f4_read+0x1c/0x1000 [grass_f4]'));
  assert.equal(r.callTrace[r.callTrace.length - 1], ' </TASK>');
  assert.equal(r.firstSeq, 339);
  assert.equal(r.lastSeq, 373);
  // Only user-mode registers appear, inside the trace; the report has no kernel registers.
  assert.deepEqual(r.registers, {});
});

test('oops: BUG and Oops lines are one report with the faulting task, registers and trace', () => {
  const r = only(extractFaultReports(faults.records), 'oops');
  assert.equal(r.message, 'BUG: kernel NULL pointer dereference, address: 0000000000000000\nOops: 0000 [#1] PREEMPT SMP NOPTI');
  assert.equal(r.cpu, 0);
  assert.equal(r.pid, 107);
  assert.equal(r.comm, 'insmod');
  assert.equal(r.taint, 'Tainted: G           OE');
  assert.equal(r.hardware, 'QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2-debian-1.16.2-1 04/01/2014');
  assert.equal(r.rip, 'grass_oops_init+0x18/0x1000 [grass_oops]');
  assert.equal(r.registers.RIP, '0010:grass_oops_init+0x18/0x1000 [grass_oops]');
  assert.equal(r.registers.RSP, '0018:ffffc900003f3cd0');
  assert.equal(r.registers.EFLAGS, '00000246');
  assert.equal(r.registers.RAX, '0000000000000000');
  assert.equal(r.registers.RBX, 'ffffffffc024c000');
  assert.equal(r.registers.R15, '0000000000000000');
  assert.equal(r.registers.CR2, 'ffffffffc024bfee');
  assert.equal(r.registers.FS, '0000000031b533c0(0000)');
  assert.equal(r.code, 'Unable to access opcode bytes at 0xffffffffc024bfee.');
  assert.match(r.modules ?? '', /^grass_oops\(OE\+\) grass_f4\(OE\)/);
  assert.deepEqual(r.callTrace.slice(0, 3), ['Call Trace:', ' <TASK>', ' do_one_initcall+0x59/0x220']);
  assert.equal(r.callTrace[r.callTrace.length - 1], ' </TASK>');
  assert.equal(r.firstSeq, 375);
  // Up to the end-of-trace marker; the register summary printed after it is not repeated.
  assert.equal(r.lastSeq, 414);
  assert.equal(r.lines[r.lines.length - 1], '---[ end trace 0000000000000000 ]---');
});

test('soft lockup: the stuck CPU and task from the watchdog line, registers from the interrupted code', () => {
  const r = only(extractFaultReports(faults.records), 'soft-lockup');
  assert.equal(r.message, 'watchdog: BUG: soft lockup - CPU#0 stuck for 6s! [grass_softlocku:110]');
  assert.equal(r.cpu, 0);
  assert.equal(r.pid, 110);
  assert.equal(r.comm, 'grass_softlocku');
  assert.deepEqual(r.reporter, { kind: 'cpu', cpu: 0 });
  assert.equal(r.rip, 'grass_softlockup_thread+0x3c/0x63 [grass_softlockup]');
  assert.deepEqual(r.callTrace, ['Call Trace:', ' <TASK>', ' kthread+0xda/0x100', ' ? kthread_complete_and_exit+0x20/0x20', ' ret_from_fork+0x22/0x30', ' </TASK>']);
  // The module's own "CPU released" line, printed by the task later, is not part of it.
  assert.equal(r.lastSeq, 447);
});

test('a panic after an oops: no stack of its own, the panicking task from the printk caller', () => {
  const r = only(extractFaultReports(faults.records), 'panic');
  assert.equal(r.message, 'Kernel panic - not syncing: sysrq triggered crash');
  assert.equal(r.pid, 112);
  assert.deepEqual(r.callTrace, []);
  assert.equal(r.lastSeq, 452);
});

test('sysrq panic in a clean kernel: message, CPU, task and its call trace', () => {
  const reports = extractFaultReports(panic.records);
  assert.equal(reports.length, 1);
  const r = reports[0];
  assert.equal(r.kind, 'panic');
  assert.equal(r.message, 'Kernel panic - not syncing: sysrq triggered crash');
  assert.equal(r.cpu, 1);
  assert.equal(r.pid, 102);
  assert.equal(r.comm, 'sh');
  assert.equal(r.taint, 'Not tainted');
  assert.ok(r.callTrace.includes(' sysrq_handle_crash+0x16/0x20'));
  assert.deepEqual(r.callTrace.slice(0, 4), ['Call Trace:', ' <TASK>', ' dump_stack_lvl+0x44/0x5c', ' panic+0x118/0x2f4']);
  assert.equal(r.callTrace[r.callTrace.length - 1], ' </TASK>');
  assert.deepEqual(r.registers, {});
  assert.equal(r.firstSeq, 338);
  assert.equal(r.lastSeq, 379);
  const text = formatReport(r);
  assert.match(text.split('\n')[0], /^panic on CPU 1, task sh \(pid 102\) at \[\s+\d+\.\d{6}\], records 338\.\.379$/);
  assert.ok(text.includes('sysrq triggered crash'));
  assert.equal(reportToJson(r).message, 'Kernel panic - not syncing: sysrq triggered crash');
});

test("another CPU's records printed in the middle of a report stay out of it", () => {
  // The soft lockup (printed by CPU 0 in interrupt context) interleaved record by record with
  // the hung-task report (printed by khungtaskd), as two CPUs printing at once would.
  const lockup = faults.records.filter((r) => r.caller.kind === 'cpu');
  const hung = faults.records.filter((r) => r.seq >= 339 && r.seq <= 373);
  const mixed: KernelLogRecord[] = [];
  for (let i = 0; i < Math.max(lockup.length, hung.length); i++) {
    if (i < hung.length) mixed.push(hung[i]);
    if (i < lockup.length) mixed.push(lockup[i]);
  }
  const reports = extractFaultReports(mixed);
  const alone = extractFaultReports([...hung, ...lockup]);
  assert.deepEqual(reports.map((r) => r.kind).sort(), ['hung-task', 'soft-lockup']);
  for (const kind of ['hung-task', 'soft-lockup'] as const) {
    assert.deepEqual(only(reports, kind).lines, only(alone, kind).lines);
    assert.deepEqual(only(reports, kind).registers, only(alone, kind).registers);
  }
});

test('a report cut off by the end of the records keeps what was there', () => {
  const cut = panic.records.filter((r) => r.seq <= 350);
  const [r] = extractFaultReports(cut);
  assert.equal(r.kind, 'panic');
  assert.equal(r.lastSeq, 350);
  assert.equal(r.callTrace[r.callTrace.length - 1], ' vfs_write+0xc7/0x3f0');
});

test('no reports in an ordinary boot log', () => {
  const ordinary = faults.records.filter((r) => r.seq < 339 || (r.text.startsWith('grass fault') && !r.text.includes('BUG')));
  assert.deepEqual(extractFaultReports(ordinary), []);
});

test('dmesg text: syslog priority, console timestamp, caller', () => {
  const r = panic.records.find((x) => x.seq === 338)!;
  assert.match(formatRecord(r), /^<0>\[\s+\d+\.\d{6}\] \[  T102\] Kernel panic - not syncing: sysrq triggered crash$/);
  const lockup = faults.records.find((x) => x.seq === 427)!;
  assert.match(formatRecord(lockup), /^<0>\[\s+\d+\.\d{6}\] \[    C0\] watchdog: BUG: soft lockup/);
});

test('F3 hang: two CPUs report soft lockups at once, their lines interleaved; each report keeps its own', () => {
  const reports = extractFaultReports(hang.records);
  assert.deepEqual(reports.map((r) => [r.kind, r.cpu, r.pid, r.comm]), [
    ['soft-lockup', 1, 103, 'grass_f3/1'],
    ['soft-lockup', 0, 102, 'grass_f3/0'],
  ]);
  const [cpu1, cpu0] = reports;
  // The registers each CPU printed (CR3 and R12 differ between the two).
  assert.equal(cpu0.registers.CR3, '0000000002a10000');
  assert.equal(cpu1.registers.CR3, '0000000005a7e000');
  assert.equal(cpu0.registers.R12, 'ffff888006440000');
  assert.equal(cpu1.registers.R12, 'ffff888006446100');
  for (const r of reports) {
    assert.equal(r.rip, 'grass_f3_thread+0x19/0x1000 [grass_f3]');
    assert.deepEqual(r.callTrace, ['Call Trace:', ' <TASK>', ' kthread+0xda/0x100', ' ? kthread_complete_and_exit+0x20/0x20', ' ret_from_fork+0x22/0x30', ' </TASK>']);
    // Every line of a report was printed by its CPU.
    const own = hang.records.filter((x) => x.seq >= r.firstSeq && x.seq <= r.lastSeq && x.caller.kind === 'cpu' && x.caller.cpu === r.cpu);
    assert.deepEqual(r.lines, own.map((x) => x.text));
  }
  assert.deepEqual([cpu1.firstSeq, cpu1.lastSeq, cpu0.firstSeq, cpu0.lastSeq], [344, 385, 349, 381]);
});

test('the same faults on Debian 6.12: its formats give the same reports', () => {
  const reports = extractFaultReports(faults612.records);
  assert.deepEqual(reports.map((r) => [r.kind, r.cpu ?? null, r.pid, r.comm ?? null]), [
    ['hung-task', null, 156, 'cat'],
    ['oops', 1, 159, 'insmod'],
    ['soft-lockup', 0, 162, 'grass_softlocku'],
    ['soft-lockup', 0, 162, 'grass_softlocku'],
    ['panic', null, 164, null],
  ]);
  const oops = reports[1];
  assert.equal(oops.message, 'BUG: kernel NULL pointer dereference, address: 0000000000000000\nOops: Oops: 0000 [#1] PREEMPT SMP NOPTI');
  assert.equal(oops.taint, 'Tainted: G           OE');
  assert.match(oops.rip ?? '', /^grass_oops_init\+0x[0-9a-f]+\/0x[0-9a-f]+ \[grass_oops\]$/);
  assert.equal(oops.registers.CR3, '0000000005662000');
  assert.deepEqual(oops.callTrace.slice(0, 3), ['Call Trace:', ' <TASK>', ' do_one_initcall+0x5b/0x320']);
  assert.equal(oops.lines[oops.lines.length - 1], '---[ end trace 0000000000000000 ]---');
  assert.deepEqual(reports[2].callTrace.slice(2), [' kthread+0xd2/0x100', ' ? __pfx_kthread+0x10/0x10', ' ret_from_fork+0x34/0x50', ' ? __pfx_kthread+0x10/0x10', ' ret_from_fork_asm+0x1a/0x30', ' </TASK>']);
  assert.ok(reports[0].callTrace.includes(' grass_f4_read+0x22/0xff0 [grass_f4]'));
});
