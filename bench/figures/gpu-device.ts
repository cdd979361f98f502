// The cuda backend's figures, measured on a GPU machine by gpu/device/run.sh (no GPU here) and
// committed as bench/results/gpu-<card>.json: recorded as they were measured, one group per
// card, each figure next to its floor (the bare cudaMemcpyAsync round trip; cudaMemcpy).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FigureGroup } from '../lib';

const resultsDir = path.resolve(__dirname, '../results');

interface Side {
  heartbeats: number; lost: number; stale: number;
  heartbeatUs: { median: number; p99: number; max: number; min: number };
  processList: { tasks: number; medianUs: number; p99Us: number };
  read: { chunkBytes: number; MBps: number };
}
interface DeviceRun {
  card: string; sameReplies: boolean; cuda: Side; cpu: Side;
  floor: { roundTripUs: { median: number; min: number }; memcpyDtoH1MiB_MBps: number };
}

export const group: FigureGroup = {
  name: 'gpu-device',
  description: 'cuda backend on a GPU (recorded from bench/results/gpu-*.json, made by gpu/device/run.sh)',
  async run(bench) {
    const files = readdirSync(resultsDir).filter((f) => /^gpu-.*\.json$/.test(f));
    if (files.length === 0) throw new Error(`no gpu-*.json in ${resultsDir}: run gpu/device/run.sh on a GPU machine`);
    for (const file of files) {
      const r = JSON.parse(readFileSync(path.join(resultsDir, file), 'utf8')) as DeviceRun;
      const tag = file.replace(/^gpu-|\.json$/g, '');
      const note = `${r.card}; replies identical to the cpu backend: ${r.sameReplies}; ${r.cuda.lost} lost, ${r.cuda.stale} stale of ${r.cuda.heartbeats} heartbeats`;
      bench.record(`${tag}.floor-round-trip`, 'bare cudaMemcpyAsync round trip (floor)', 'µs', [r.floor.roundTripUs.median], { note: r.card });
      bench.record(`${tag}.heartbeat`, 'heartbeat through the NIC stand-in (median)', 'µs', [r.cuda.heartbeatUs.median], { versus: `${tag}.floor-round-trip`, note });
      bench.record(`${tag}.process-list`, `process list, ${r.cuda.processList.tasks} tasks (median)`, 'µs', [r.cuda.processList.medianUs], { note: r.card });
      bench.record(`${tag}.memcpy`, 'cudaMemcpy device to host, 1 MiB', 'MB/s', [r.floor.memcpyDtoH1MiB_MBps], { note: r.card });
      bench.record(`${tag}.read`, `physical reads of ${r.cuda.read.chunkBytes >> 20} MiB`, 'MB/s', [r.cuda.read.MBps], { versus: `${tag}.memcpy`, note: r.card });
    }
  },
};
