// One grass monitor holding a fleet (issue 24): 200 real agents over one saved image of a testbed
// guest (test/integration/fleet-support.ts: their own shm buffers, --spin-us 0 --idle-nap-us
// 20000 so that they fit two cores), the monitor's targets file rewritten to name 10, then 100,
// then 200 of them. At each size, over 12 s of steady state: the heartbeat sweep's time (one
// heartbeat to every target at once, until all answered), the monitor's CPU and its memory per
// target (RSS growth over the empty monitor; the live JS heap after a full collection); then the
// largest fleet once more with heartbeats alone (observations off), for their share of the CPU.
// From the measured per-target costs, a line for 10 000 targets on paper.
import type { FigureGroup } from '../lib';
import { median } from '../lib';
import { AGENT_MIB, AgentFleet, availableMiB, FleetMonitor, measureSweeps, processMemoryKiB } from '../../test/integration/fleet-support';

export const FLEET_SIZES = [10, 100, 200];
const PAPER_SIZE = 10_000;
const MEASURE_MS = 12_000;

export const group: FigureGroup = {
  name: 'fleet',
  description: `one monitor's heartbeat sweep, CPU and memory at ${FLEET_SIZES.join(' / ')} targets (real agents over one saved image), and ${PAPER_SIZE} on paper`,
  long: `${Math.max(...FLEET_SIZES)} agents at once (about ${Math.round((Math.max(...FLEET_SIZES) * AGENT_MIB) / 1024)} GiB of memory) and four settled fleets: about 4 minutes`,
  async run(bench) {
    const largest = Math.max(...FLEET_SIZES);
    const need = largest * AGENT_MIB + 2048;
    if (availableMiB() < need) throw new Error(`needs about ${need} MiB available for ${largest} agents; ${Math.round(availableMiB())} MiB here`);
    const fleet = await AgentFleet.capture(`/dev/shm/grass-bench-fleet-${process.pid}`);
    try {
      await fleet.grow(largest);
      const monitor = await FleetMonitor.start(fleet.dir, []);
      try {
        await monitor.settle(0, 30_000);
        const heap0 = (await monitor.memory()).heapUsed;
        const rss0 = processMemoryKiB(monitor.pid).rss;
        const perTarget: { n: number; sweepMs: number; cpuUs: number; rssKiB: number }[] = [];
        for (const n of FLEET_SIZES) {
          monitor.retarget(fleet.entries(n));
          await monitor.settle(n, 300_000);
          await new Promise((r) => setTimeout(r, 5000)); // the descriptions fetched: steady state
          const w = await measureSweeps(monitor, MEASURE_MS);
          if (w.targets.some((t) => t !== n)) throw new Error(`sweeps of ${n} targets left some out: ${JSON.stringify(w.targets)}`);
          const ms = w.seconds.map((s) => s * 1000);
          bench.record(`sweep-${n}`, `heartbeat sweep of ${n} targets (one heartbeat to each at once, until all answered; agents nap 20 ms)`, 'ms', ms);
          const cpuUs = (w.cpuCores / n) * 1e6;
          bench.record(`cpu-${n}`, `monitor CPU per target, ${n} targets (heartbeat every 1 s, observation every 5 s)`, 'µs/s', [cpuUs]);
          const rssKiB = (processMemoryKiB(monitor.pid).rss - rss0) / n;
          const heapKiB = ((await monitor.memory()).heapUsed - heap0) / 1024 / n;
          bench.record(`rss-${n}`, `monitor RSS per target, ${n} targets (growth over the empty monitor; includes the buffer pages it mapped)`, 'KiB', [rssKiB]);
          bench.record(`heap-${n}`, `monitor live JS heap per target after a full GC, ${n} targets`, 'KiB', [heapKiB]);
          perTarget.push({ n, sweepMs: median(ms), cpuUs, rssKiB });
        }
        // On paper: the sweep as a line through the measured sizes (least squares); CPU and memory
        // at the largest size's cost per target, an upper bound (it still carries a share of the
        // monitor's fixed costs; the marginal cost between two sizes is lost in the CPU's noise).
        const xs = perTarget.map((p) => p.n);
        const ys = perTarget.map((p) => p.sweepMs);
        const mx = xs.reduce((a, b) => a + b) / xs.length;
        const my = ys.reduce((a, b) => a + b) / ys.length;
        const slope = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0) / xs.reduce((a, x) => a + (x - mx) ** 2, 0);
        const top = perTarget[perTarget.length - 1];
        const note = `on paper, from the ${FLEET_SIZES.join('/')} runs: not measured`;
        bench.record(`sweep-${PAPER_SIZE}-paper`, `heartbeat sweep of ${PAPER_SIZE} targets: the measured line (${my.toFixed(1)} ms at ${mx.toFixed(0)} targets, ${(slope * 1000).toFixed(1)} µs more per target)`, 'ms',
          [Math.max(ys[0], my + slope * (PAPER_SIZE - mx))], { note });
        bench.record(`cpu-${PAPER_SIZE}-paper`, `monitor CPU for ${PAPER_SIZE} targets at ${top.cpuUs.toFixed(0)} µs/s per target (cores, at most; one Node thread serves at most one)`, 'cores', [(top.cpuUs * PAPER_SIZE) / 1e6], { note });
        bench.record(`rss-${PAPER_SIZE}-paper`, `monitor memory for ${PAPER_SIZE} targets at ${top.rssKiB.toFixed(0)} KiB per target (at most; shm buffers' pages included)`, 'MiB', [(top.rssKiB * PAPER_SIZE) / 1024], { note });
      } finally {
        await monitor.stop();
      }
      // The heartbeats' own share: the largest fleet again under a monitor that observes each
      // target once (at its first answer) and then only heartbeats.
      const beating = await FleetMonitor.start(fleet.dir, fleet.entries(largest), ['--observe-ms', String(3_600_000)]);
      try {
        await beating.settle(largest, 300_000);
        await new Promise((r) => setTimeout(r, 5000));
        const w = await measureSweeps(beating, MEASURE_MS);
        bench.record(`sweep-${largest}-heartbeats-only`, `heartbeat sweep of ${largest} targets, no observations running`, 'ms', w.seconds.map((x) => x * 1000), { versus: `sweep-${largest}` });
        const cpuUs = (w.cpuCores / largest) * 1e6;
        bench.record(`cpu-${largest}-heartbeats-only`, `monitor CPU per target, ${largest} targets, heartbeats alone (every 1 s)`, 'µs/s', [cpuUs], { versus: `cpu-${largest}` });
        bench.record(`cpu-${PAPER_SIZE}-heartbeats-only-paper`, `monitor CPU for ${PAPER_SIZE} targets' heartbeats alone at ${cpuUs.toFixed(0)} µs/s per target`, 'cores', [(cpuUs * PAPER_SIZE) / 1e6], { note: `on paper, from the ${largest}-target run: not measured` });
      } finally {
        await beating.stop();
      }
    } finally {
      await fleet.stop();
    }
  },
};
