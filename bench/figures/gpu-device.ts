// The cuda backend's figures, measured on a GPU machine by gpu/device/run.sh (no GPU here) and
// committed as bench/results/gpu-<card>.json: recorded as they were measured, one value per
// device run (each run's own median over its many requests), figures per card, each next to its
// floor (the bare cudaMemcpyAsync round trip; cudaMemcpy).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FigureGroup } from '../lib';

const resultsDir = path.resolve(__dirname, '../results');

interface Quantiles { min: number; median: number; p99: number; max: number }
interface Side {
  heartbeats: number; lost: number; stale: number;
  heartbeatUs: Quantiles;
  processList: { tasks: number; medianUs: number; p99Us: number };
  read: { chunkBytes: number; MBps: number };
}
interface ImageCheck { image: string; sameReplies: boolean; requests: number }
/** The cuda agent's watcher warp: request mark seen to reply mark seen, per opcode, on the GPU. */
interface Reaction {
  timerStepNs: number;
  byOpcode: Record<string, { n: number; globaltimerUs: Quantiles; clock64Us: Quantiles }>;
}
export interface DeviceRun {
  card: string; driver?: string; revision?: string; sameReplies: boolean;
  images?: ImageCheck[]; cuda: Side; cpu: Side; reaction?: Reaction;
  floor: { roundTripUs: { median: number; min: number; p99: number }; memcpyDtoH1MiB_MBps: number; memcpyDtoH64MiB_MBps?: number };
}

/** The committed device runs, by tag (the file name's card part): a file holds one run or {runs: [...]}. */
export function deviceRuns(): { tag: string; runs: DeviceRun[] }[] {
  return readdirSync(resultsDir).filter((f) => /^gpu-.*\.json$/.test(f)).sort().map((file) => {
    const parsed = JSON.parse(readFileSync(path.join(resultsDir, file), 'utf8')) as DeviceRun | { runs: DeviceRun[] };
    return { tag: file.replace(/^gpu-|\.json$/g, ''), runs: 'runs' in parsed ? parsed.runs : [parsed] };
  });
}

const REACTIONS: [opcode: string, name: string, what: string][] = [
  ['1', 'reaction-heartbeat', 'heartbeat'], ['6', 'reaction-process-list', 'process list'], ['3', 'reaction-read', 'read of 1 MiB'],
];

export const group: FigureGroup = {
  name: 'gpu-device',
  description: 'cuda backend on a GPU (recorded from bench/results/gpu-*.json, made by gpu/device/run.sh; one value per device run)',
  async run(bench) {
    const files = deviceRuns();
    if (files.length === 0) throw new Error(`no gpu-*.json in ${resultsDir}: run gpu/device/run.sh on a GPU machine`);
    for (const { tag, runs } of files) {
      const r = runs[0];
      const card = `${r.card}${r.driver ? `, driver ${r.driver}` : ''}${r.revision ? `, built from ${r.revision}` : ''}; ${runs.length} device run(s)`;
      const each = (f: (x: DeviceRun) => number) => runs.map(f);
      const images = runs.flatMap((x) => x.images ?? [{ image: 'rest', sameReplies: x.sameReplies, requests: 0 }]);
      const differing = images.filter((i) => !i.sameReplies).map((i) => i.image);
      const checks = `${differing.length ? `DIFFERENT on ${differing.join(', ')}` : 'identical'} (images ${[...new Set(images.map((i) => i.image))].join(', ')}, every run)`;
      const lost = runs.reduce((n, x) => n + x.cuda.lost + x.cuda.stale, 0), beats = runs.reduce((n, x) => n + x.cuda.heartbeats, 0);
      bench.record(`${tag}.floor-round-trip`, 'bare cudaMemcpyAsync round trip (floor)', 'µs', each((x) => x.floor.roundTripUs.median), { note: card });
      bench.record(`${tag}.heartbeat`, 'heartbeat through the NIC stand-in (median)', 'µs', each((x) => x.cuda.heartbeatUs.median), {
        versus: `${tag}.floor-round-trip`,
        note: `p99 ${each((x) => x.cuda.heartbeatUs.p99).join('/')}; ${lost} lost or stale of ${beats}; replies vs the cpu backend's: ${checks}`,
      });
      bench.record(`${tag}.heartbeat-cpu-backend`, 'heartbeat, cpu backend on the same machine (median)', 'µs', each((x) => x.cpu.heartbeatUs.median));
      for (const [op, name, what] of REACTIONS) {
        if (!runs.every((x) => x.reaction?.byOpcode[op])) continue;
        const q = (x: DeviceRun) => x.reaction!.byOpcode[op];
        bench.record(`${tag}.${name}`, `GPU-side reaction, request mark to reply mark: ${what} (median, %globaltimer)`, 'µs', each((x) => q(x).globaltimerUs.median), {
          note: `p99 ${each((x) => q(x).globaltimerUs.p99).join('/')}; clock64 median ${each((x) => q(x).clock64Us.median).join('/')}; timer step ${r.reaction!.timerStepNs} ns`,
        });
      }
      bench.record(`${tag}.process-list`, `process list, ${r.cuda.processList.tasks} tasks (median)`, 'µs', each((x) => x.cuda.processList.medianUs), { note: `cpu backend: ${each((x) => x.cpu.processList.medianUs).join('/')} µs` });
      bench.record(`${tag}.memcpy`, 'cudaMemcpy device to host, 1 MiB', 'MB/s', each((x) => x.floor.memcpyDtoH1MiB_MBps));
      bench.record(`${tag}.read`, `physical reads of ${r.cuda.read.chunkBytes >> 20} MiB`, 'MB/s', each((x) => x.cuda.read.MBps), { versus: `${tag}.memcpy` });
    }
  },
};
