// The "against the paper" table: the paper's own figures (DESIGN.md §1: Quadro M4000 + ConnectX-4,
// 100 GbE) next to this run's figures for the same quantity, each with its ratio to the paper's.
// Only figures measured by a bench run are quoted: this run's, or for detection latencies (a long
// group left out of the default run) the newest saved run that has them, named as such.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Figure } from './lib';

export interface PaperRow {
  what: string;
  /** The paper's figure, in `unit`, and how the paper states it. */
  paper: number;
  paperText: string;
  unit: 'µs' | 's';
  /** Ours: median and min in `unit`, the figure ids it comes from, and where it differs in set-up. */
  ours?: { median: number; min: number; from: string; setup: string };
  /** Why there is no figure of ours (no such group in the run, not measured). */
  missing?: string;
}

export const SETUP_DIFFERENCES =
  'Paper: a real host, Quadro M4000 GPU running the monitor, ConnectX-4 100 GbE RDMA between remote and GPU. ' +
  'Here: the target is a QEMU TCG guest (no KVM) on a 2-core VM; the agent runs the monitor on its cpu backend and reads the guest RAM file; ' +
  'the remote reaches it over shared memory (no NIC) or Soft-RoCE (rxe, a software NIC); the GPU rows ran the cuda backend on the named card ' +
  'with a host thread standing in for the NIC (cudaMemcpyAsync), over a saved guest image. Differences are differences of the medians (and of the mins).';

const DETECTIONS: { kind: string; what: string; paper: number }[] = [
  ...['f1', 'f2', 'f3', 'f4', 'f5', 'f6'].map((kind) => ({ kind, what: `detection latency, ${kind.toUpperCase()} hang`, paper: 2.2 })),
  { kind: 'cpu-high-load', what: 'detection latency, CPU high load', paper: 6.6 },
  { kind: 'memory-leak', what: 'detection latency, memory leak', paper: 68.6 },
];

const TO_MICROS: Record<string, number> = { 'ns': 1e-3, 'µs': 1, 'us': 1, 'ms': 1e3, 's': 1e6 };

function inUnit(f: Figure, unit: 'µs' | 's', v: number): number {
  const scale = TO_MICROS[f.unit];
  if (scale === undefined) throw new Error(`paper table: figure ${f.id} has unit ${f.unit}, not a time`);
  return (v * scale) / (unit === 's' ? 1e6 : 1);
}

/** A detection figure: detect-latency.<kind> or detect-latency.<kind>-… */
function detectionFigure(figures: Figure[], kind: string): Figure | undefined {
  return figures.find((f) => f.id === `detect-latency.${kind}`) ?? figures.find((f) => f.id.startsWith(`detect-latency.${kind}-`));
}

interface SavedRun { date: string; revision: string; figures: Figure[] }

/**
 * The newest saved run holding detection latencies: bench/results/*.json (committed runs, e.g.
 * latest.json or a copy of a `--only detect-latency` run) or bench/results/local/*.json.
 */
function savedDetectionRun(resultsDir: string): SavedRun | undefined {
  const files = readdirSync(resultsDir).filter((f) => f.endsWith('.json')).map((f) => path.join(resultsDir, f));
  const local = path.join(resultsDir, 'local');
  if (existsSync(local)) files.push(...readdirSync(local).filter((f) => f.endsWith('.json')).map((f) => path.join(local, f)));
  let best: SavedRun | undefined;
  for (const file of files.filter((f) => existsSync(f))) {
    let run: SavedRun;
    try {
      run = JSON.parse(readFileSync(file, 'utf8')) as SavedRun;
    } catch {
      continue;  // a run being written, or not a run
    }
    if (!Array.isArray(run.figures) || !run.figures.some((f) => f.id.startsWith('detect-latency.'))) continue;
    if (!best || run.date > best.date) best = run;
  }
  return best;
}

export function paperRows(figures: Figure[], resultsDir: string): PaperRow[] {
  const byId = (id: string) => figures.find((f) => f.id === id);
  const rows: PaperRow[] = [];
  const heartbeat = { paper: 75, paperText: '75 µs (48 + 27; ping 95 µs)' };
  const heartbeats: [string, string, string][] = [
    ['agent.heartbeat', 'heartbeat round trip, shm', 'cpu backend, shm (no NIC), TCG guest paused'],
    ['rdma-rxe.heartbeat', 'heartbeat round trip, RDMA', 'cpu backend, Soft-RoCE (rxe) in a TCG guest: a software NIC'],
  ];
  for (const [id, what, setup] of heartbeats) {
    const f = byId(id);
    rows.push({ what, ...heartbeat, unit: 'µs', ...(f ? { ours: { median: f.median, min: f.min, from: id, setup } } : { missing: `no ${id} figure in this run` }) });
  }
  const gpu = figures.filter((f) => /^gpu-device\.[^.]+\.heartbeat$/.test(f.id));
  for (const f of gpu) {
    const card = f.id.split('.')[1].toUpperCase();
    rows.push({ what: `heartbeat round trip, GPU (${card})`, ...heartbeat, unit: 'µs', ours: { median: f.median, min: f.min, from: f.id, setup: `cuda backend on an ${card}, NIC stand-in (host thread, cudaMemcpyAsync), saved guest image; committed device runs` } });
  }
  if (gpu.length === 0) rows.push({ what: 'heartbeat round trip, GPU', ...heartbeat, unit: 'µs', missing: 'no gpu-device figures in this run' });

  const count = byId('agent.process-count');
  const list = byId('agent.process-list');
  const processes = /\((\d+) processes\)/.exec(list?.label ?? '')?.[1];
  rows.push({
    what: `process list minus process count (${processes ?? '?'} processes; paper 155)`, paper: 27, paperText: '27 µs (155 processes)', unit: 'µs',
    ...(count && list
      ? { ours: { median: list.median - count.median, min: list.min - count.min, from: `${list.id} − ${count.id}`, setup: 'cpu backend, shm, TCG guest paused' } }
      : { missing: 'no agent.process-count/process-list figures in this run' }),
  });

  for (const f of figures.filter((x) => /^growth\.process-list-\d+$/.test(x.id))) {
    const c = byId(f.id.replace('process-list', 'process-count'));
    const n = /\((\d+) processes\)/.exec(f.label)?.[1] ?? '?';
    if (c) rows.push({ what: `process list minus process count (${n} processes)`, paper: 27, paperText: '27 µs (155 processes)', unit: 'µs', ours: { median: f.median - c.median, min: f.min - c.min, from: `${f.id} − ${c.id}`, setup: 'cpu backend, shm, TCG guest paused' } });
  }

  const inRun = figures.some((f) => f.id.startsWith('detect-latency.'));
  const saved = inRun ? undefined : savedDetectionRun(resultsDir);
  const source = inRun ? figures : saved?.figures ?? [];
  const where = inRun ? 'this run' : saved ? `saved run ${saved.revision} of ${saved.date}` : '';
  for (const d of DETECTIONS) {
    const f = detectionFigure(source, d.kind);
    const paperText = d.kind.startsWith('f') ? 'about 2.2 s (each of F1–F6)' : `${d.paper} s`;
    rows.push({
      what: d.what, paper: d.paper, paperText, unit: 's',
      ...(f
        ? { ours: { median: inUnit(f, 's', f.median), min: inUnit(f, 's', f.min), from: `${f.id} (${where})`, setup: 'cpu backend, shm, TCG guest running the fault' } }
        : { missing: 'not measured' }),
    });
  }
  return rows;
}

function fmt(v: number, unit: string): string {
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${unit}`;
}

/** Markdown, for the terminal and the README alike. */
export function paperTable(rows: PaperRow[]): string {
  const lines = ['| what | paper | here: median (min) | × paper | from | set-up here |', '|---|---|---|---|---|---|'];
  for (const r of rows) {
    if (r.ours) {
      lines.push(`| ${r.what} | ${r.paperText} | ${fmt(r.ours.median, r.unit)} (${fmt(r.ours.min, r.unit)}) | ${(r.ours.median / r.paper).toFixed(2)}× | \`${r.ours.from}\` | ${r.ours.setup} |`);
    } else {
      lines.push(`| ${r.what} | ${r.paperText} | ${r.missing} | | | |`);
    }
  }
  return `${lines.join('\n')}\n\n${SETUP_DIFFERENCES}`;
}
