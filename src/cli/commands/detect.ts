// grass detect: the agent's CPU-high-load and memory-leak detectors, as last evaluated.
import type { CliCommand } from '../command';
import { Detection, fetchDetections, readBackgroundDetections } from '../../detect/detections';
import { parseTargetArgs, printJson, targetFlagsUsage, withTarget } from './targetFlags';

const usage = `usage: grass detect --target ADDR [--key-file F] [--background] [--json]

The monitor runs its detectors on every 1 s metrics window of its own clock: cpu-high-load
(every CPU >= 90 % busy for 5 s; culprits: the thread groups that used the most CPU since) and
memory-leak (free RAM and free swap both under 30 %, no swap counting as none free; culprits:
the largest resident sets). Prints the active detections (or "no detection"); exit status 0
either way. --json prints {"detections":[{detector,active,detectedAt,holdsSince,evaluatedAt,
error,figures,culprits:[{pid,comm,cpuPercent,rssBytes}]}]} for every detector (times in
seconds of the monitor's clock). --background reads the results the monitor republishes in the
buffer header's background area after each evaluation, with no request (seqlocked, CRC-checked).

${targetFlagsUsage}`;

function describe(d: Detection): string {
  const mib = (b: number): string => `${(b / 1048576).toFixed(0)} MiB`;
  const f = d.figures;
  const head =
    d.detector === 'cpu-high-load'
      ? `cpu-high-load: every CPU busy for ${f.spanSeconds.toFixed(1)} s (least busy: CPU ${f.leastBusyCpu} at ${f.leastBusyCpuPercent.toFixed(1)} %)`
      : `memory-leak: RAM free ${mib(f.memFreeBytes)} of ${mib(f.memTotalBytes)}, swap free ${mib(f.swapFreeBytes)} of ${mib(f.swapTotalBytes)}`;
  const culprits = d.culprits.map((c) =>
    d.detector === 'cpu-high-load' ? `  pid ${c.pid} ${c.comm}: ${c.cpuPercent.toFixed(1)} % CPU` : `  pid ${c.pid} ${c.comm}: ${mib(c.rssBytes)} resident`,
  );
  return [head, ...culprits].join('\n');
}

export const detectCommand: CliCommand = {
  name: 'detect',
  summary: 'CPU-high-load and memory-leak detections of the agent\'s monitor',
  usage,
  async run(argv) {
    const { flags, values } = parseTargetArgs('detect', argv, { background: { type: 'boolean', default: false } });
    return withTarget('detect', flags, async (session) => {
      const detections = values.background === true ? await readBackgroundDetections(session.client, flags.timeoutMs) : await fetchDetections(session.client);
      if (flags.json) {
        printJson({ detections });
        return 0;
      }
      const lines = detections.filter((d) => d.error).map((d) => `${d.detector}: could not evaluate: ${d.error}`);
      const active = detections.filter((d) => d.active);
      lines.push(...(active.length ? active.map(describe) : ['no detection']));
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    });
  },
};
