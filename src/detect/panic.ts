// Whether the target kernel panicked, from its own memory: panic_cpu (panic() claims it first,
// before it prints anything: PANIC_CPU_INVALID, -1, until then), the "Kernel panic - not
// syncing" report of its log, and oops_in_progress (panic() and the x86 die() path raise it
// through bust_spinlocks(1) while they run). A panicked kernel stops every other CPU and spins
// (or is paused by pvpanic) with interrupts off: to the hang classifier, which sees no progress
// on any CPU, that is F1. It is not a hang, and a panic explains CPU-stuck classes (F1 F2 F3 F5);
// classes of waiting (F4) and of memory (F6) are kept, they may have led to the panic.
import { extractFaultReports, type FaultReport } from '../kernel/log/faults';
import { KernelLogFollower } from '../kernel/log/follow';
import { KernelLogReader, type KernelLogRecord } from '../kernel/log/ringbuffer';
import type { KernelModel } from '../kernel/model';
import { Kernel } from '../kernel/objects/object';
import type { GrassClient } from '../rdma/client';
import type { Detection, HangClass } from './detections';

export interface PanicState {
  /** panic_cpu was claimed, or the log holds a panic report. */
  panicked: boolean;
  /** panic_cpu (null: none claimed it, or unreadable: see errors). */
  panicCpu: number | null;
  /** oops_in_progress (null: unreadable); above 0 while panic() or an oops runs. */
  oopsInProgress: number | null;
  /** The log's last panic report (its first, "Kernel panic - not syncing: …", the one that stopped the kernel). */
  report: FaultReport | null;
  /** Every fault report of the log (panic, oops, lockups, hung tasks, RCU stalls, warnings), in log order. */
  reports: FaultReport[];
  /** What could not be read (the rest is still told). */
  errors: string[];
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** panic_cpu and oops_in_progress, one small read each. */
export async function readPanicVariables(model: KernelModel): Promise<{ panicCpu: number | null; oopsInProgress: number | null; errors: string[] }> {
  const kernel = new Kernel(model);
  const errors: string[] = [];
  const [panicCpu, oopsInProgress] = await Promise.all([
    (async () => Number(BigInt.asIntN(32, await (await kernel.variable('panic_cpu').member('counter')).readInt())))().catch((err: unknown) => {
      errors.push(`panic_cpu unreadable: ${message(err)}`);
      return null;
    }),
    (async () => Number(BigInt.asIntN(32, await kernel.variable('oops_in_progress').readInt())))().catch((err: unknown) => {
      errors.push(`oops_in_progress unreadable: ${message(err)}`);
      return null;
    }),
  ]);
  return { panicCpu: panicCpu !== null && panicCpu >= 0 ? panicCpu : null, oopsInProgress, errors };
}

/** The panic state from the variables and a log's records already read (e.g. by a follower). */
export function panicStateOf(vars: { panicCpu: number | null; oopsInProgress: number | null; errors: string[] }, records: readonly KernelLogRecord[] | null, logError?: string): PanicState {
  const reports = records ? extractFaultReports(records) : [];
  // Another CPU may panic meanwhile; panic() lets only the first through (panic_cpu): the
  // first report is the one that stopped the kernel.
  const report = reports.find((r) => r.kind === 'panic') ?? null;
  const errors = [...vars.errors, ...(logError ? [`kernel log unreadable: ${logError}`] : [])];
  return { panicked: vars.panicCpu !== null || report !== null, panicCpu: vars.panicCpu, oopsInProgress: vars.oopsInProgress, report, reports, errors };
}

/** Reads the panic state: the variables, then the whole log for its reports. */
export async function readPanicState(model: KernelModel, client: GrassClient): Promise<PanicState> {
  const vars = await readPanicVariables(model);
  try {
    const log = await new KernelLogReader(client, model.description ?? (await client.describe()), model.btf).read();
    return panicStateOf(vars, log.records);
  } catch (err) {
    return panicStateOf(vars, null, message(err));
  }
}

/** Hang classes a panic explains: the CPUs stopped by panic() look stuck. */
const CPU_STUCK: ReadonlySet<HangClass> = new Set(['F1', 'F2', 'F3', 'F5']);

/** What a panic report says in one line: "Kernel panic - not syncing: sysrq triggered crash". */
export function panicHeadline(p: PanicState): string {
  if (p.report) return p.report.message.split('\n')[0];
  return p.panicCpu !== null ? `panic_cpu is ${p.panicCpu} (no panic report in the kernel log)` : 'no panic';
}

/**
 * The detections as a panicked kernel has them: a hang of a CPU-stuck class is not active and has
 * no class; what the agent classified stays in `superseded`. Unchanged when the kernel did not panic.
 */
export function explainByPanic(detections: Detection[], panic: PanicState): Detection[] {
  if (!panic.panicked) return detections;
  return detections.map((d) => {
    if (d.detector !== 'hang' || !d.hangClass || !CPU_STUCK.has(d.hangClass)) return d;
    const { hangClass, ...rest } = d;
    return {
      ...rest,
      active: false,
      superseded: { by: 'panic' as const, hangClass, reason: `the kernel panicked (${panicHeadline(panic)}): panic() stopped its CPUs, which the classifier read as ${hangClass}` },
    };
  });
}

/** Records kept by a PanicWatch: a ring of the default 256 KiB holds some 3000; a 1 MiB one (log_buf_len=1M) four times that. */
const MAX_WATCHED_RECORDS = 50_000;

/**
 * The panic state of a live target, polled: panic_cpu and oops_in_progress read on each poll,
 * the log followed (only new records read) and its reports re-extracted when it grew.
 */
export class PanicWatch {
  private readonly follower: KernelLogFollower;
  private records: KernelLogRecord[] = [];
  private reports: FaultReport[] = [];

  constructor(private readonly model: KernelModel, client: GrassClient) {
    this.follower = new KernelLogFollower(new KernelLogReader(client, model.description!, model.btf));
  }

  async poll(): Promise<PanicState> {
    const vars = await readPanicVariables(this.model);
    let logError: string | undefined;
    try {
      const { records } = await this.follower.poll();
      if (records.length > 0) {
        this.records = [...this.records, ...records].slice(-MAX_WATCHED_RECORDS);
        this.reports = extractFaultReports(this.records);
      }
    } catch (err) {
      logError = message(err);
    }
    const state = panicStateOf(vars, null, logError);
    const report = this.reports.find((r) => r.kind === 'panic') ?? null;
    return { ...state, panicked: state.panicked || report !== null, report, reports: this.reports };
  }
}
