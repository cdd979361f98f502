// Detection latencies: fault injection to the first detection, both on the monitor's clock
// (CLOCK_MONOTONIC: the cpu backend's clock and this process's), for F1-F6, CPU-high-load and
// memory-leak on testbed guests (cpu backend, 1 GiB, 2 CPUs), next to the paper's (F1-F6 about
// 2.2 s, CPU high load 6.6 s, memory leak 68.6 s). Ids: detect-latency.<fault> (f1..f6,
// cpu-high-load, memory-leak), in seconds. The detection is seen by polling the background area
// every 250 ms, so a figure is the monitor's own detection time, not the poll's.
// GRASS_BENCH_DETECT_RUNS (default 1) repeats each fault on a fresh guest.
import type { FigureGroup } from '../lib';
import { DetectTarget, FAULT_CLASSES, guestShape, injectAndDetect } from '../../test/integration/detect-support';

const WHY: Record<string, string> = {
  f1: 'hang starts delay_ms after insmod; class needs 2 windows with jiffies stopped (1 s each, monitor clock)',
  f2: 'needs 2 windows with the same task current, no switch, and other tasks starving',
  f3: 'as F2, with the preempt count showing preemption off',
  f5: 'as F3; F5 from the kernel log (scheduling while atomic) read at detection',
  f4: 'the 32 readers block at once; needs blk >= 4 with idle disks held for 1.5 s',
  'cpu-high-load': 'every CPU >= 90 % busy for 5 s (the paper\'s rule)',
  'memory-leak': 'grass-guest hog 0 16: 16 MiB/s until free RAM and swap < 30 % (1 GiB RAM, 64 MiB swap)',
};

export const group: FigureGroup = {
  name: 'detect-latency',
  description: 'fault injection to first detection (monitor clock) for F1-F6, cpu-high-load, memory-leak on testbed guests',
  long: 'a fresh guest per fault, F6 and memory-leak take minutes each: about 15 minutes',
  async run(bench) {
    const runs = Number(process.env.GRASS_BENCH_DETECT_RUNS ?? 1);
    if (!Number.isInteger(runs) || runs < 1) throw new Error(`GRASS_BENCH_DETECT_RUNS must be a positive integer, not ${process.env.GRASS_BENCH_DETECT_RUNS}`);
    for (const fault of Object.keys(FAULT_CLASSES)) {
      const values: number[] = [];
      for (let r = 0; r < runs; r++) {
        const t = await DetectTarget.start(guestShape(fault));
        try {
          const run = await injectAndDetect(t, fault, fault === 'f6' ? 300_000 : fault === 'memory-leak' ? 240_000 : 60_000);
          if (run.detected !== run.expected) throw new Error(`${fault}: detected ${run.detected}, expected ${run.expected}`);
          values.push(run.latencySeconds);
        } finally {
          await t.stop();
        }
      }
      bench.record(fault, `detection latency, ${fault} (injection to first detection, monitor clock)`, 's', values, { note: WHY[fault] });
    }
  },
};
