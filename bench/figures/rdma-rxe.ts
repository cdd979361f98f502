// RDMA over Soft-RoCE in a QEMU guest (testbed/rdma-guest.ts): the GRASS heartbeat round trip
// and the bare 8-byte WRITE+READ it is built from, through the koffi verbs transport, next to
// perftest's ib_read_lat / ib_write_lat on the same rxe device in the same guest, same run.
// Absolute numbers are TCG-emulated CPU speed; the ratios are what carries over.
import fs from 'node:fs';
import path from 'node:path';
import type { FigureGroup } from '../lib';
import { writeNewKeyFile } from '../../src/rdma/key';
import { bootGuest } from '../../testbed/guest';
import { bootRdmaGuest, RDMA_ADDRESS } from '../../testbed/rdma-guest';

const repo = path.resolve(__dirname, '../..');
const RUNS = 200;
const PERF_ITERATIONS = 1000;

/** perftest's result row: t_min t_max t_typical t_avg … in µs. */
function perftestRow(output: string, tool: string): { min: number; typical: number; avg: number } {
  const m = /^\s*8\s+\d+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)/m.exec(output);
  if (!m) throw new Error(`${tool}: no result row in its output: ${output.slice(-800)}`);
  return { min: Number(m[1]), typical: Number(m[3]), avg: Number(m[4]) };
}

export const group: FigureGroup = {
  name: 'rdma-rxe',
  description: 'heartbeat over rxe (koffi verbs) vs ib_read_lat/ib_write_lat on the same device',
  async run(bench) {
    const work = path.join(repo, '.cache', 'rdma-guest', `bench-${process.pid}`);
    fs.mkdirSync(work, { recursive: true });
    const image = path.join(work, 'ram');
    const map = path.join(work, 'map.json');
    const keyFile = path.join(work, 'key');
    writeNewKeyFile(keyFile);
    try {
      const source = await bootGuest({ memMiB: 128 });
      try {
        await source.pause();
        fs.copyFileSync(source.ramFile, image);
        fs.writeFileSync(map, JSON.stringify({ ...source.memoryMap(), ramFile: image }));
      } finally {
        await source.down();
      }
      const rg = await bootRdmaGuest();
      try {
        const perf = async (tool: string): Promise<string> => {
          const common = `-R -d ${rg.device} -s 8 -n ${PERF_ITERATIONS}`;
          return rg.exec(`(${tool} ${common} > /tmp/${tool}.server 2>&1 &); sleep 2; ${tool} ${common} ${RDMA_ADDRESS}`, { timeoutMs: 120_000 });
        };
        const read = perftestRow(await perf('ib_read_lat'), 'ib_read_lat');
        const write = perftestRow(await perf('ib_write_lat'), 'ib_write_lat');
        bench.record('ib_read_lat', `ib_read_lat -s 8 on rxe (typical of ${PERF_ITERATIONS}; min ${read.min}, avg ${read.avg})`, 'µs', [read.typical]);
        bench.record('ib_write_lat', `ib_write_lat -s 8 on rxe (typical, half a ping-pong; min ${write.min}, avg ${write.avg})`, 'µs', [write.typical]);

        await rg.exec(`cd ${repo} && (setsid gpu/build/grass-agent --memory qemu-ram:${image} --memory-map ${map} --listen rdma://${RDMA_ADDRESS} ` +
          `--peer ${RDMA_ADDRESS} --key-file ${keyFile} --name bench > /tmp/agent.out 2> /tmp/agent.log < /dev/null &) && ` +
          'for i in $(seq 120); do grep -q ready /tmp/agent.out && break; sleep 0.5; done; grep -q ready /tmp/agent.out', { timeoutMs: 90_000 });
        const out = await rg.exec(`cd ${repo} && node --import tsx bench/rdma/probe.ts ${RDMA_ADDRESS} 7471 ${keyFile} ${RUNS}`, { timeoutMs: 300_000 });
        const probe = JSON.parse(out.trim().split('\n').pop()!) as { word: number[]; heartbeat: number[] };
        bench.record('word-write-read', '8-byte RDMA WRITE then READ, koffi verbs transport', 'µs', probe.word, { versus: 'ib_read_lat' });
        bench.record('heartbeat', 'GRASS heartbeat round trip, koffi verbs transport (cpu backend agent)', 'µs', probe.heartbeat, { versus: 'ib_read_lat' });
      } finally {
        await rg.down();
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  },
};
