// grass save-vmcore over RDMA (Soft-RoCE in a QEMU guest, testbed/rdma-guest.ts): the agent on a
// paused testbed guest's RAM image listens on the rxe device and bench/rdma/bulk-probe.ts saves
// vmcores through the koffi verbs transport into the guest's tmpfs, next to two floors on the same
// device in the same run: one-sided reads of a slot's data area through our transport, and
// perftest's ib_read_bw with 1 MiB messages. Absolute numbers are TCG-emulated CPU speed (rxe is
// software); the ratios are what carries over.
import fs from 'node:fs';
import path from 'node:path';
import type { Figure, FigureGroup } from '../lib';
import { writeNewKeyFile } from '../../src/rdma/key';
import { bootGuest } from '../../testbed/guest';
import { bootRdmaGuest, RDMA_ADDRESS } from '../../testbed/rdma-guest';

const repo = path.resolve(__dirname, '../..');
const GUEST_MIB = 128;
/** Each save under TCG-emulated rxe takes about a minute: one run of each. */
const RUNS = 1;

export const group: FigureGroup = {
  name: 'bulk-rxe',
  description: `save-vmcore over rxe (${GUEST_MIB} MiB image) vs one-sided reads and ib_read_bw on the same device`,
  long: 'an rxe guest and two whole-image saves over TCG-emulated Soft-RoCE: about 10 minutes',
  async run(bench) {
    const work = path.join(repo, '.cache', 'rdma-guest', `bench-bulk-${process.pid}`);
    fs.mkdirSync(work, { recursive: true });
    const image = path.join(work, 'ram');
    const map = path.join(work, 'map.json');
    const keyFile = path.join(work, 'key');
    writeNewKeyFile(keyFile);
    try {
      const source = await bootGuest({ memMiB: GUEST_MIB });
      try {
        await source.pause();
        fs.copyFileSync(source.ramFile, image);
        fs.writeFileSync(map, JSON.stringify({ ...source.memoryMap(), ramFile: image }));
      } finally {
        await source.down();
      }
      const rg = await bootRdmaGuest();
      try {
        await rg.exec(`cd ${repo} && (setsid gpu/build/grass-agent --memory qemu-ram:${image} --memory-map ${map} --listen rdma://${RDMA_ADDRESS} ` +
          `--peer ${RDMA_ADDRESS} --key-file ${keyFile} --name bench > /tmp/agent.out 2> /tmp/agent.log < /dev/null &) && ` +
          'for i in $(seq 120); do grep -q ready /tmp/agent.out && break; sleep 0.5; done; grep -q ready /tmp/agent.out', { timeoutMs: 90_000 });
        const out = await rg.exec(`mkdir -p /tmp/bulk && cd ${repo} && node --import tsx bench/rdma/bulk-probe.ts ${RDMA_ADDRESS} 7471 ${keyFile} /tmp/bulk ${GUEST_MIB} ${RUNS}`, { timeoutMs: 1_500_000 });
        const figures = JSON.parse(out.trim().split('\n').pop()!) as Figure[];
        for (const f of figures) {
          const name = f.id.replace(/^bulk-rxe\./, '');
          bench.record(name, f.label, f.unit, f.values, { versus: f.versus ? f.versus.id.replace(/^bulk-rxe\./, '') : undefined, note: f.note });
        }
        // perftest's own floor on the same device, last: its server may need a few tries to come up
        // on a loaded emulated machine.
        let bw = '';
        for (let attempt = 0; attempt < 3 && !/^\s*1048576\s/m.test(bw); attempt++) {
          bw = (await rg.run(`pkill ib_read_bw; (ib_read_bw -R -d ${rg.device} -s 1048576 -n 200 > /tmp/bw.server 2>&1 &); sleep ${3 + 3 * attempt}; ib_read_bw -R -d ${rg.device} -s 1048576 -n 200 ${RDMA_ADDRESS}`, { timeoutMs: 300_000 })).stdout;
        }
        const row = /^\s*1048576\s+\d+\s+([\d.]+)\s+([\d.]+)/m.exec(bw);
        if (!row) throw new Error(`ib_read_bw: no result row in three tries: ${bw.slice(-800)}`);
        // perftest reports MB/s as 2^20 bytes per second; ours are 10^6.
        const ibRead = bench.record('ib_read_bw', 'ib_read_bw -s 1 MiB on rxe (average; the device\'s floor)', 'MB/s', [Number(row[2]) * 1.048576], { note: `peak ${(Number(row[1]) * 1.048576).toFixed(1)} MB/s` });
        const save = bench.figures.find((f) => f.id === 'bulk-rxe.save');
        if (save) save.note = `${(save.median / ibRead.median).toFixed(2)}x of ib_read_bw on the same device`;
      } finally {
        await rg.down();
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  },
};
