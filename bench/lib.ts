// The benchmark harness's shared parts: repeated measurement, the record of one run (machine,
// git revision, figures), the table. Figure groups live in bench/figures/, one module each,
// exporting a FigureGroup; bench/run.ts runs them in one process and writes the results.
import { execFileSync } from 'node:child_process';
import os from 'node:os';

export interface Figure {
  /** Stable id, "group.name", used to compare runs. */
  id: string;
  label: string;
  unit: string;
  /** One value per repeated run, in `unit`. */
  values: number[];
  min: number;
  median: number;
  /** For figures measured next to a floor or a peer: that figure's id and median ratio. */
  versus?: { id: string; ratio: number };
  note?: string;
}

export interface FigureGroup {
  name: string;
  description: string;
  /**
   * Set for a group that takes minutes (several guests, fault runs, software RDMA under TCG): why
   * and about how long. Long groups are left out of the default run, which must stay short on a
   * 2-core machine; `--all` or `--only NAME` runs them.
   */
  long?: string;
  /** Measures and records its figures; throws (with the reason) when it cannot run here. */
  run(bench: Bench): Promise<void>;
}

export interface MeasureOptions {
  /** Repeated runs; each gives one value (default 15). */
  runs?: number;
  /** Operations per run, the value being the per-operation mean of the run (default 1). */
  inner?: number;
  /** Unrecorded runs before measuring (default 2). */
  warmup?: number;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export class Bench {
  readonly figures: Figure[] = [];
  constructor(private readonly group: string) {}

  /** Records values measured elsewhere (e.g. by a peer tool). */
  record(name: string, label: string, unit: string, values: number[], extra: { versus?: string; note?: string } = {}): Figure {
    if (values.length === 0) throw new Error(`figure ${name}: no values`);
    const figure: Figure = { id: `${this.group}.${name}`, label, unit, values, min: Math.min(...values), median: median(values), note: extra.note };
    if (extra.versus) {
      const base = this.figures.find((f) => f.id === extra.versus || f.id === `${this.group}.${extra.versus}`);
      if (!base) throw new Error(`figure ${name}: no figure ${extra.versus} to compare with`);
      figure.versus = { id: base.id, ratio: figure.median / base.median };
    }
    this.figures.push(figure);
    return figure;
  }

  /** Time per operation in µs over repeated runs of `inner` operations. */
  async time(name: string, label: string, op: () => unknown, options: MeasureOptions & { versus?: string; note?: string } = {}): Promise<Figure> {
    const values = await repeat(op, options);
    return this.record(name, label, 'µs', values.map((ns) => ns / 1000), options);
  }

  /** Time in µs of runs that measure themselves (`measure` returns nanoseconds), e.g. after a pause. */
  async timed(name: string, label: string, measure: () => Promise<bigint>, options: { runs?: number; warmup?: number; versus?: string; note?: string } = {}): Promise<Figure> {
    const { runs = 15, warmup = 2 } = options;
    const values: number[] = [];
    for (let r = -warmup; r < runs; r++) {
      const ns = await measure();
      if (r >= 0) values.push(Number(ns) / 1000);
    }
    return this.record(name, label, 'µs', values, options);
  }

  /** Throughput in MB/s (10^6 bytes) of an operation moving `bytes` bytes. */
  async throughput(name: string, label: string, bytes: number, op: () => unknown, options: MeasureOptions & { versus?: string; note?: string } = {}): Promise<Figure> {
    const values = await repeat(op, options);
    return this.record(name, label, 'MB/s', values.map((ns) => bytes / ns * 1000), options);
  }
}

/** Nanoseconds per operation for each run. */
async function repeat(op: () => unknown, { runs = 15, inner = 1, warmup = 2 }: MeasureOptions): Promise<number[]> {
  const values: number[] = [];
  for (let r = -warmup; r < runs; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < inner; i++) await op();
    const ns = Number(process.hrtime.bigint() - start) / inner;
    if (r >= 0) values.push(ns);
  }
  return values;
}

export interface Machine {
  hostname: string;
  cpu: string;
  cpus: number;
  memoryBytes: number;
  kernel: string;
  node: string;
  /** 1-minute load average when the run started: other work on the host skews every figure. */
  loadAverage: number;
}

export function machine(): Machine {
  return { hostname: os.hostname(), cpu: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length, memoryBytes: os.totalmem(), kernel: os.release(), node: process.version, loadAverage: os.loadavg()[0] };
}

export function gitRevision(root: string): string {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${rev}-dirty` : rev;
  } catch {
    return 'unknown';
  }
}

export function formatValue(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** Two decimals, or two significant digits for ratios far under 1 (a read at 0.0021× its floor). */
export function formatRatio(ratio: number): string {
  return ratio >= 0.1 ? ratio.toFixed(2) : ratio.toPrecision(2);
}

export function table(figures: Figure[]): string {
  const rows = figures.map((f) => [f.id, f.label, f.unit, formatValue(f.min), formatValue(f.median), f.values.length.toString(), f.versus ? `${formatRatio(f.versus.ratio)}× ${f.versus.id}` : '']);
  const head = ['figure', 'what', 'unit', 'min', 'median', 'runs', 'vs (median ratio)'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i >= 3 && i <= 5 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
