// grass detect: the agent's detectors (cpu-high-load, memory-leak, the F1-F6 hang classifier), as
// last evaluated; --watch follows the background area.
import type { CliCommand } from '../command';
import { DETECTOR_NAMES, Detection, DetectorName, fetchDetections, readBackground, setDetectorModes } from '../../detect/detections';
import { withLockHolder } from '../../detect/lock-holder';
import { explainByPanic, panicHeadline, readPanicState, readPanicVariables, type PanicState } from '../../detect/panic';
import { reportToJson } from '../../kernel/log/format';
import { KernelModel } from '../../kernel/model';
import type { GrassClient } from '../../rdma/client';
import { positiveIntegerFlag, targetFlagsUsage, targetVerb } from './target-flags';

const usage = `usage: grass detect --target ADDR [--key-file F] [--background | --watch [--interval-ms N]]
                    [--modes background|inline,...] [--json]

The monitor runs its detectors on every 1 s metrics window of its own clock:
  cpu-high-load  every CPU >= 90 % busy for 5 s; culprits: the thread groups that used the most
                 CPU since
  memory-leak    free RAM and free swap both under 30 % (no swap counts as none free);
                 culprits: the largest resident sets
  hang           the SHFH classes from progress evidence (docs/detections.md): F1 CPUs stuck
                 with interrupts off, F2 stuck in the kernel (preemptible), F3 stuck with
                 preemption off, F4 tasks in I/O wait that never completes, F5 CPUs spinning on a
                 lock whose holder slept (the holder named from the kernel's log), F6 swap
                 thrashing; culprits: the stuck CPUs' tasks, the waiters, the largest consumers
A kernel that panicked (its panic_cpu claimed, or a "Kernel panic" report in its log, both
read from its memory) is reported first as "panicked" with the report; its stopped CPUs are not
a hang: a hang of a CPU-stuck class (F1 F2 F3 F5) is then not active (F4 and F6 are kept).
Prints the panic and the active detections (or "no detection"); exit status 0 either way.
--background reads the results the monitor republishes in the buffer header's background area
(seqlocked, CRC-checked; no request). --watch polls that area every --interval-ms (default 1000)
and prints each detection when it starts and ends, and the metric history's new windows with
--json (one JSON object per line), until interrupted.
--modes sets which detectors run in background (evaluated on every window and published) and
which inline (evaluated only when asked), one word per detector in this order:
${DETECTOR_NAMES.join(', ')} (e.g. ${DETECTOR_NAMES.map((_, i) => (i === DETECTOR_NAMES.length - 1 ? 'inline' : 'background')).join(',')}).
--json prints {"panic":{panicked,panicCpu,oopsInProgress,report,errors},"detections":[{detector,
active,detectedAt,holdsSince,evaluatedAt,error,mode,hangClass?,superseded?:{by,hangClass,reason},
figures,culprits:[{pid,comm,role,cpu,cpuPercent,rssBytes}]}]} for every detector (times in
seconds of the monitor's clock; report as grass report --json prints one, or null; --watch
prints {"panic":...} once when the kernel is seen panicked).

${targetFlagsUsage}`;

const mib = (b: number): string => `${(b / 1048576).toFixed(0)} MiB`;

function hangHead(d: Detection): string {
  const f = d.figures as Record<string, number & number[]>;
  const cpus = (xs: number[]): string => (xs.length ? xs.join(',') : 'none');
  switch (d.hangClass) {
    case 'F4':
      return `hang F4 (I/O never completes): ${f.blk} tasks in I/O wait, disks busy ${f.diskIoTicks} jiffies, iowait ${f.iowaitPercent.toFixed(1)} % for ${f.holdsSeconds.toFixed(1)} s`;
    case 'F6':
      return `hang F6 (swap thrashing): swap-in ${f.pswpinPerSecond}/s, swap-out ${f.pswpoutPerSecond}/s, RAM free ${mib(f.memFreeBytes)} of ${mib(f.memTotalBytes)}`;
    default: {
      const what = { F1: 'interrupts off', F2: 'in the kernel, preemptible', F3: 'preemption off', F5: 'spinning on a lock' }[d.hangClass ?? 'F2'];
      return `hang ${d.hangClass} (CPUs stuck, ${what}): stuck CPUs ${cpus(f.stuckCpus)}, timer stopped on ${cpus(f.timerStoppedCpus)}, preemption off on ${cpus(f.preemptOffCpus)}, lock waiters ${f.lockWaiters}, jiffies +${f.jiffies}, switches ${f.contextSwitches}, runnable waiting ${f.runnableWaiting}`;
    }
  }
}

function describe(d: Detection): string {
  const f = d.figures as Record<string, number>;
  const head =
    d.detector === 'cpu-high-load'
      ? `cpu-high-load: every CPU busy for ${f.spanSeconds.toFixed(1)} s (least busy: CPU ${f.leastBusyCpu} at ${f.leastBusyCpuPercent.toFixed(1)} %), ${f.runnableTasks} tasks runnable for ${f.cpuCount} CPUs`
      : d.detector === 'memory-leak'
        ? `memory-leak: RAM free ${mib(f.memFreeBytes)} of ${mib(f.memTotalBytes)}, swap free ${mib(f.swapFreeBytes)} of ${mib(f.swapTotalBytes)}`
        : d.detector === 'hang'
          ? hangHead(d)
          : `${d.detector}: detected, values ${(d.figures.values as number[]).join(' ')}`;
  const culprits = d.culprits.map((c) => {
    const who = `  pid ${c.pid} ${c.comm}`;
    if (c.role === 'cpu') return `${who}: ${c.cpuPercent.toFixed(1)} % CPU`;
    if (c.role === 'memory') return `${who}: ${mib(c.rssBytes)} resident`;
    if (c.role === 'on-cpu') return `${who}: on CPU ${c.cpu}`;
    if (c.role === 'lock-holder') return `${who}: slept holding the lock (kernel log: scheduling while atomic)`;
    if (c.role === 'task') return who;
    return `${who}: waiting`;
  });
  return [head, ...culprits].join('\n');
}

function parseModes(text: string): DetectorName[] {
  const modes = text.split(',');
  if (modes.length !== DETECTOR_NAMES.length || modes.some((m) => m !== 'background' && m !== 'inline'))
    throw new Error(`detect: --modes takes ${DETECTOR_NAMES.length} of background|inline (${DETECTOR_NAMES.join(', ')}), not '${text}'`);
  return DETECTOR_NAMES.filter((_, i) => modes[i] === 'background');
}

export const detectCommand: CliCommand = targetVerb({
  name: 'detect',
  summary: 'detections of the agent\'s monitor: cpu-high-load, memory-leak, hang classes F1-F6',
  usage,
  options: {
    background: { type: 'boolean', default: false },
    watch: { type: 'boolean', default: false },
    'interval-ms': { type: 'string' },
    modes: { type: 'string' },
  },
  prepare: ({ values }) => ({
    intervalMs: positiveIntegerFlag('detect', 'interval-ms', values['interval-ms'], 1000),
    modes: values.modes === undefined ? undefined : parseModes(values.modes as string),
    watch: values.watch === true,
    fromBackground: values.background === true,
  }),
  async run({ client }, { intervalMs, modes, watch: watching, fromBackground }, flags) {
    if (modes) await setDetectorModes(client, modes);
    if (watching) return watch(client, intervalMs, flags.json, flags.timeoutMs);
    const agents = await withLockHolder(client, fromBackground ? (await readBackground(client, flags.timeoutMs)).detections : await fetchDetections(client));
    const panic = await panicState(client);
    const detections = explainByPanic(agents, panic);
    const active = detections.filter((d) => d.active);
    return {
      json: { panic: panicJson(panic), detections },
      text: () => [
        ...panic.errors.map((e) => `panic state: ${e}`),
        ...(panic.panicked ? [describePanic(panic)] : []),
        ...detections.filter((d) => d.error).map((d) => `${d.detector}: could not evaluate: ${d.error}`),
        ...detections.filter((d) => d.superseded).map((d) => `hang: not ${d.superseded!.hangClass}: ${d.superseded!.reason}`),
        ...(active.length ? active.map(describe) : panic.panicked ? [] : ['no detection']),
      ],
    };
  },
});

/** The model for the panic state (BTF, symbols; a target without them has its reason told). */
async function modelOf(client: GrassClient): Promise<KernelModel> {
  return KernelModel.fromDescription(await client.describe(), client);
}

async function panicState(client: GrassClient): Promise<PanicState> {
  try {
    return await readPanicState(await modelOf(client), client);
  } catch (err) {
    return { panicked: false, panicCpu: null, oopsInProgress: null, report: null, reports: [], errors: [err instanceof Error ? err.message : String(err)] };
  }
}

function panicJson(p: PanicState): Record<string, unknown> {
  return { panicked: p.panicked, panicCpu: p.panicCpu, oopsInProgress: p.oopsInProgress, report: p.report ? reportToJson(p.report) : null, errors: p.errors };
}

function describePanic(p: PanicState): string {
  const r = p.report;
  const who = r ? [r.cpu !== undefined ? `CPU ${r.cpu}` : '', r.pid !== undefined ? `task ${r.comm ?? '?'} (pid ${r.pid})` : ''].filter(Boolean).join(', ') : p.panicCpu !== null ? `CPU ${p.panicCpu}` : '';
  return [`panicked${who ? ` on ${who}` : ''}: ${panicHeadline(p)}`, ...(r?.callTrace ?? []).map((l) => `  ${l}`)].join('\n');
}

/** Follows the background area until interrupted (withTarget exits on SIGINT/SIGTERM). */
async function watch(client: Parameters<typeof readBackground>[0], intervalMs: number, json: boolean, timeoutMs?: number): Promise<number> {
  const shown = new Map<DetectorName, string>();
  let lastPoint = 0;
  let panic: PanicState | undefined;
  const model = await modelOf(client).catch(() => undefined);
  for (;;) {
    const area = await readBackground(client, timeoutMs);
    // panic_cpu each poll (one small read); the log only once it is claimed.
    if (!panic && model && (await readPanicVariables(model).catch(() => undefined))?.panicCpu != null) {
      panic = await readPanicState(model, client);
      process.stdout.write((json ? JSON.stringify({ panic: panicJson(panic) }) : describePanic(panic)) + '\n');
    }
    area.detections = panic ? explainByPanic(area.detections, panic) : area.detections;
    for (const p of area.history) {
      if (p.at <= lastPoint) continue;
      lastPoint = p.at;
      if (json) process.stdout.write(JSON.stringify({ window: p }) + '\n');
    }
    for (const d of area.detections) {
      const key = d.active ? `${d.detectedAt}/${d.hangClass ?? ''}` : '';
      if ((shown.get(d.detector) ?? '') === key) continue;
      shown.set(d.detector, key);
      const [withHolder] = d.active ? await withLockHolder(client, [d]) : [d];
      if (json) process.stdout.write(JSON.stringify({ detection: withHolder }) + '\n');
      else process.stdout.write(d.active ? `[${d.detectedAt?.toFixed(1)} s] ${describe(withHolder)}\n` : `[${d.evaluatedAt.toFixed(1)} s] ${d.detector}: ended\n`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
