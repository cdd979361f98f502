// Text and JSON forms of kernel log records and fault reports, shared by the CLI and the views.

import type { FaultReport } from './faults';
import type { KernelLogRecord, LogCaller } from './ringbuffer';

export const LEVEL_NAMES = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug'] as const;

/** "[   12.345678]" as the kernel's console and dmesg print it (%5lu.%06lu). */
export function formatTimestamp(ns: bigint): string {
  const seconds = ns / 1_000_000_000n;
  const micros = (ns % 1_000_000_000n) / 1000n;
  return `[${seconds.toString().padStart(5)}.${micros.toString().padStart(6, '0')}]`;
}

/** "T123" for a task, "C1" for a CPU in interrupt context, as CONFIG_PRINTK_CALLER prints it. */
export function formatCaller(caller: LogCaller): string {
  return caller.kind === 'thread' ? `T${caller.pid}` : `C${caller.cpu}`;
}

/**
 * One record as dmesg -r prints it, plus the caller: `<6>[    1.234567] [     T1] text`.
 * The syslog priority is (facility << 3) | level; a record with several lines gets the prefix
 * on each, as the kernel's syslog reader does.
 */
export function formatRecord(record: KernelLogRecord): string {
  const priority = record.level === undefined ? '<?>' : `<${((record.facility ?? 0) << 3) | record.level}>`;
  const prefix = `${priority}${formatTimestamp(record.timestampNs)} [${formatCaller(record.caller).padStart(6)}] `;
  return record.text
    .split('\n')
    .map((line) => prefix + line)
    .join('\n');
}

/** The JSON form of a record (`grass dmesg --json`): bigints as numbers of microseconds and nanoseconds. */
export function recordToJson(record: KernelLogRecord): Record<string, unknown> {
  return {
    seq: record.seq,
    timestampNs: Number(record.timestampNs),
    timestampUs: Number(record.timestampNs / 1000n),
    level: record.level ?? null,
    levelName: record.level === undefined ? null : LEVEL_NAMES[record.level],
    facility: record.facility ?? null,
    continuation: record.continuation,
    newline: record.newline,
    caller: record.caller.kind === 'thread' ? { pid: record.caller.pid } : { cpu: record.caller.cpu },
    text: record.text,
    ...(record.subsystem ? { subsystem: record.subsystem } : {}),
    ...(record.device ? { device: record.device } : {}),
    finalized: record.finalized,
  };
}

export function reportToJson(report: FaultReport): Record<string, unknown> {
  return {
    kind: report.kind,
    message: report.message,
    cpu: report.cpu ?? null,
    pid: report.pid ?? null,
    comm: report.comm ?? null,
    taint: report.taint ?? null,
    hardware: report.hardware ?? null,
    rip: report.rip ?? null,
    registers: report.registers,
    code: report.code ?? null,
    modules: report.modules ?? null,
    callTrace: report.callTrace,
    lines: report.lines,
    firstSeq: report.firstSeq,
    lastSeq: report.lastSeq,
    timestampNs: Number(report.timestampNs),
    reporter: report.reporter.kind === 'thread' ? { pid: report.reporter.pid } : { cpu: report.reporter.cpu },
  };
}

/** A report for people: a headline naming kind, CPU and task, then the lines as printed. */
export function formatReport(report: FaultReport): string {
  const who: string[] = [];
  if (report.cpu !== undefined) who.push(`CPU ${report.cpu}`);
  if (report.pid !== undefined) who.push(`task ${report.comm ?? '?'} (pid ${report.pid})`);
  const head = `${report.kind}${who.length ? ' on ' + who.join(', ') : ''} at ${formatTimestamp(report.timestampNs)}, records ${report.firstSeq}..${report.lastSeq}`;
  return [head, ...report.lines.map((l) => '  ' + l)].join('\n');
}
