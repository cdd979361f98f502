// The cuda backend's figures, measured on a GPU machine by gpu/device/run.sh (no GPU here) and
// committed as bench/results/gpu-<card>.json: recorded as they were measured (one device run per
// file, so each figure is that run's summary of many requests, not repeated runs), one group per
// card, each figure next to its floor (the bare cudaMemcpyAsync round trip; cudaMemcpy).
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

/** The committed device runs, by tag (the file name's card part). */
export function deviceRuns(): { tag: string; run: DeviceRun }[] {
  return readdirSync(resultsDir).filter((f) => /^gpu-.*\.json$/.test(f)).sort()
    .map((file) => ({ tag: file.replace(/^gpu-|\.json$/g, ''), run: JSON.parse(readFileSync(path.join(resultsDir, file), 'utf8')) as DeviceRun }));
}

const OPCODES: Record<string, string> = { '1': 'heartbeat', '6': 'process list (first chunk)', '3': 'read' };

export const group: FigureGroup = {
  name: 'gpu-device',
  description: 'cuda backend on a GPU (recorded from bench/results/gpu-*.json, made by gpu/device/run.sh)',
  async run(bench) {
    const runs = deviceRuns();
    if (runs.length === 0) throw new Error(`no gpu-*.json in ${resultsDir}: run gpu/device/run.sh on a GPU machine`);
    for (const { tag, run: r } of runs) {
      const card = `${r.card}${r.driver ? `, driver ${r.driver}` : ''}${r.revision ? `, ${r.revision}` : ''}`;
      const images = r.images ? r.images.map((i) => `${i.image} ${i.sameReplies ? 'same' : 'DIFFERENT'} (${i.requests})`).join(', ') : 'image at rest';
      const q = (x: Quantiles) => `min ${x.min}, p99 ${x.p99}, max ${x.max}`;
      bench.record(`${tag}.floor-round-trip`, 'bare cudaMemcpyAsync round trip (floor)', 'µs', [r.floor.roundTripUs.median], { note: card });
      bench.record(`${tag}.heartbeat`, 'heartbeat through the NIC stand-in (median)', 'µs', [r.cuda.heartbeatUs.median], {
        versus: `${tag}.floor-round-trip`,
        note: `${q(r.cuda.heartbeatUs)}; ${r.cuda.lost} lost, ${r.cuda.stale} stale of ${r.cuda.heartbeats}; replies identical to the cpu backend: ${images}`,
      });
      bench.record(`${tag}.heartbeat-cpu-backend`, 'heartbeat, cpu backend on the same machine (median)', 'µs', [r.cpu.heartbeatUs.median], { note: q(r.cpu.heartbeatUs) });
      if (r.reaction) {
        for (const [op, what] of Object.entries(OPCODES)) {
          const x = r.reaction.byOpcode[op];
          if (!x) continue;
          bench.record(`${tag}.reaction-${op === '1' ? 'heartbeat' : op === '6' ? 'process-list' : 'read'}`, `GPU-side reaction, request mark to reply mark: ${what} (median, %globaltimer)`, 'µs',
            [x.globaltimerUs.median], { note: `${x.n} requests; ${q(x.globaltimerUs)}; clock64: median ${x.clock64Us.median}; timer step ${r.reaction.timerStepNs} ns` });
        }
      }
      bench.record(`${tag}.process-list`, `process list, ${r.cuda.processList.tasks} tasks (median)`, 'µs', [r.cuda.processList.medianUs], { note: `p99 ${r.cuda.processList.p99Us}` });
      bench.record(`${tag}.memcpy`, 'cudaMemcpy device to host, 1 MiB', 'MB/s', [r.floor.memcpyDtoH1MiB_MBps], { note: card });
      bench.record(`${tag}.read`, `physical reads of ${r.cuda.read.chunkBytes >> 20} MiB`, 'MB/s', [r.cuda.read.MBps], { versus: `${tag}.memcpy`, note: card });
    }
  },
};
