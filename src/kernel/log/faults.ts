// Fault reports out of kernel log records: panics, oopses, BUGs, warnings, soft and hard
// lockups, hung tasks and RCU stalls, as the kernel prints them (kernel/panic.c,
// arch/x86/kernel/dumpstack.c, kernel/watchdog*.c, kernel/hung_task.c, lib/dump_stack.c).
//
// A report is a header record plus the records the same caller (task or CPU, printk's
// caller_id) printed after it: the "CPU: N PID: N Comm: x" line, the registers, the call trace.
// Grouping by caller keeps another CPU's messages, printed meanwhile, out of the report.

import type { KernelLogRecord, LogCaller } from './ringbuffer';

export type FaultKind = 'panic' | 'oops' | 'bug' | 'warning' | 'soft-lockup' | 'hard-lockup' | 'hung-task' | 'rcu-stall';

export interface FaultReport {
  kind: FaultKind;
  /** The header line(s) as printed, e.g. "Kernel panic - not syncing: sysrq triggered crash". */
  message: string;
  /** The CPU the report is about (the stuck CPU for lockups, the faulting one otherwise). */
  cpu?: number;
  /** The task the report is about: the one running (oops, panic, lockup) or blocked (hung task). */
  pid?: number;
  comm?: string;
  /** "Not tainted" or "Tainted: G           OE" as printed. */
  taint?: string;
  hardware?: string;
  /** Register values as printed ("RIP" → "0010:sysrq_handle_crash+0x16/0x20", "RAX" → "0000000000000063"). */
  registers: Record<string, string>;
  /** The symbolic instruction pointer, e.g. "sysrq_handle_crash+0x16/0x20". */
  rip?: string;
  /** The "Code:" bytes line. */
  code?: string;
  /** "Modules linked in:" list. */
  modules?: string;
  /** Lines from "Call Trace:" to its closing "</TASK>", as printed. */
  callTrace: string[];
  /** Every line of the report in order, as printed. */
  lines: string[];
  firstSeq: number;
  lastSeq: number;
  timestampNs: bigint;
  /** Who printed the report (printk's caller: a task, or a CPU in interrupt context). */
  reporter: LogCaller;
}

interface Header {
  kind: FaultKind;
  cpu?: number;
  pid?: number;
  comm?: string;
  /** Opens an event that the next header from the same caller completes (a BUG: line before "Oops:"). */
  leadsInto?: FaultKind;
}

// Oops headers the x86 die() path prints: "Oops: 0002 [#1] ...", "general protection fault, probably
// for non-canonical address 0x...: 0000 [#1]", and since 6.9 "Oops: invalid opcode: 0000 [#1]".
const dieHeader = /^(?:Oops: )?(?:[A-Za-z][A-Za-z ]*[a-z](?:, [^:]*)?: )?[0-9a-f]{4} \[#\d+\]/;

function classify(line: string): Header | undefined {
  let m: RegExpExecArray | null;
  if (line.startsWith('Kernel panic - not syncing:')) return { kind: 'panic' };
  if ((m = /BUG: soft lockup - CPU#(\d+) stuck for \d+s! \[(.*):(\d+)\]/.exec(line))) {
    return { kind: 'soft-lockup', cpu: Number(m[1]), comm: m[2], pid: Number(m[3]) };
  }
  if ((m = /Watchdog detected hard LOCKUP on cpu (\d+)/.exec(line))) return { kind: 'hard-lockup', cpu: Number(m[1]) };
  if ((m = /^INFO: task (.*):(\d+) blocked for more than \d+ seconds\./.exec(line))) {
    return { kind: 'hung-task', comm: m[1], pid: Number(m[2]) };
  }
  if (/^rcu: INFO: \S+ (?:detected stalls? on CPUs\/tasks|self-detected stall on CPU)/.test(line)) return { kind: 'rcu-stall' };
  if ((m = /^WARNING: CPU: (\d+) PID: (\d+) at /.exec(line))) return { kind: 'warning', cpu: Number(m[1]), pid: Number(m[2]) };
  if (/^BUG: (?:kernel NULL pointer dereference|unable to handle page fault|unable to handle kernel)/.test(line)) {
    return { kind: 'oops', leadsInto: 'oops' };
  }
  if (/^kernel BUG at .*!$/.test(line)) return { kind: 'bug', leadsInto: 'oops' };
  if (dieHeader.test(line)) return { kind: 'oops' };
  if (line.startsWith('BUG: ')) return { kind: 'bug' };
  return undefined;
}

/** Lines a report may still carry after its call trace closed. */
const trailer = /^(?:Modules linked in:|CR2: |Kernel Offset:|---\[ end |Unloaded tainted modules:|RIP: |Code: |RSP: |R[A-Z0-9]{1,2}: |FS: |CS: |DR[0-9]: |PKRU: |note: )/;
const registerLine = /^(?:[A-Za-z][A-Za-z0-9]{0,5}:\s*[0-9a-fA-F][0-9a-fx:()]*\s*)+$/;
const cpuLine = /^CPU: (\d+) (?:UID: \d+ )?PID: (\d+) Comm: (.*?) (?:Kdump: loaded )?(Not tainted|Tainted: [A-Z ]*?)\s+\S+ #/;
const taskLine = /^task:(.*?)\s+state:\S+ stack:\s*\d+\s+pid:\s*(\d+)/;
const reportsOnCurrentTask = new Set<FaultKind>(['panic', 'oops', 'bug', 'warning']);
/** More lines than this from one caller is not one report any more. */
const MAX_REPORT_LINES = 400;

function sameCaller(a: LogCaller, b: LogCaller): boolean {
  return a.kind === 'thread' ? b.kind === 'thread' && a.pid === b.pid : b.kind === 'cpu' && a.cpu === b.cpu;
}

class ReportBuilder {
  readonly report: FaultReport;
  private inTrace = false;
  private traceClosed = false;
  done = false;
  /** The header seen so far expects a completing header (BUG: → Oops:). */
  leadsInto: FaultKind | undefined;

  constructor(record: KernelLogRecord, line: string, header: Header) {
    this.report = {
      kind: header.kind,
      message: line,
      cpu: header.cpu,
      pid: header.pid,
      comm: header.comm,
      registers: {},
      callTrace: [],
      lines: [line],
      firstSeq: record.seq,
      lastSeq: record.seq,
      timestampNs: record.timestampNs,
      reporter: record.caller,
    };
    this.leadsInto = header.leadsInto;
  }

  /** Adds a line printed by the report's caller; returns false when the line is not part of it. */
  add(record: KernelLogRecord, line: string): boolean {
    const r = this.report;
    if (r.lines.length >= MAX_REPORT_LINES) return false;
    const trimmed = line.trim();
    if (this.traceClosed && !trailer.test(trimmed)) return false;
    r.lines.push(line);
    r.lastSeq = record.seq;
    if (trimmed.startsWith('---[ end ')) {
      this.done = true;
      return true;
    }
    if (this.inTrace) {
      r.callTrace.push(line.trimEnd());
      if (trimmed === '</TASK>') {
        this.inTrace = false;
        this.traceClosed = true;
      }
      return true;
    }
    if (trimmed === 'Call Trace:') {
      this.inTrace = true;
      r.callTrace.push(trimmed);
      return true;
    }
    let m: RegExpExecArray | null;
    if ((m = cpuLine.exec(trimmed))) {
      // The running task; a lockup header already named the stuck task and CPU, which agree.
      r.cpu ??= Number(m[1]);
      r.pid ??= Number(m[2]);
      r.comm ??= m[3];
      r.taint ??= m[4].trimEnd();
    } else if ((m = taskLine.exec(trimmed))) {
      r.comm ??= m[1];
      r.pid ??= Number(m[2]);
    } else if (/^(?:Not tainted|Tainted: )/.test(trimmed)) {
      r.taint ??= trimmed.replace(/\s+\S+ #.*$/, '').trimEnd();
    } else if (trimmed.startsWith('Hardware name: ')) {
      r.hardware ??= trimmed.slice('Hardware name: '.length);
    } else if (trimmed.startsWith('Modules linked in:')) {
      r.modules ??= trimmed.slice('Modules linked in:'.length).trim();
    } else if (trimmed.startsWith('Code: ')) {
      r.code ??= trimmed.slice('Code: '.length);
    } else if (trimmed.startsWith('RIP: ')) {
      if (r.registers.RIP === undefined) {
        const value = trimmed.slice('RIP: '.length).trim();
        r.registers.RIP = value;
        r.rip = value.replace(/^[0-9a-f]{4}:/, '');
      }
    } else if (registerLine.test(trimmed)) {
      for (const pair of trimmed.matchAll(/([A-Za-z][A-Za-z0-9]*):\s*(\S+)/g)) r.registers[pair[1]] ??= pair[2];
    }
    return true;
  }
}

/**
 * Finds the fault reports in `records` (in sequence order, as readKernelLog returns them).
 * Reports come out in log order; a report cut short by the end of the records has what was there.
 */
export function extractFaultReports(records: readonly KernelLogRecord[]): FaultReport[] {
  const reports: FaultReport[] = [];
  const open: ReportBuilder[] = [];
  for (const record of records) {
    for (const line of record.text.split('\n')) {
      const header = classify(line.trim());
      const current = open.find((b) => sameCaller(b.report.reporter, record.caller));
      if (header) {
        if (current && current.leadsInto === header.kind && current.report.callTrace.length === 0) {
          // "BUG: kernel NULL pointer dereference" then "Oops: 0002 [#1]": one event.
          current.report.message += '\n' + line.trim();
          current.report.lines.push(line);
          current.report.lastSeq = record.seq;
          current.leadsInto = undefined;
          continue;
        }
        if (current) close(current);
        const builder = new ReportBuilder(record, line.trim(), header);
        open.push(builder);
        reports.push(builder.report);
        continue;
      }
      if (!current) continue;
      if (!current.add(record, line) || current.done) close(current);
    }
  }
  for (const r of reports) {
    // Without a "CPU: N PID: N" line (a panic after an oops prints no stack) the printing task
    // is the one the report is about, for the kinds that report on the current task.
    if (r.pid === undefined && r.reporter.kind === 'thread' && reportsOnCurrentTask.has(r.kind)) r.pid = r.reporter.pid;
  }
  return reports;

  function close(builder: ReportBuilder): void {
    open.splice(open.indexOf(builder), 1);
  }
}
