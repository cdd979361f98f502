// grass metrics: the SHFH metrics of the monitor's last 1 s window (its own clock).
import type { CliCommand } from '../command';
import { fetchMetrics } from '../../detect/metrics';
import { targetFlagsUsage, targetVerb } from './target-flags';

const usage = `usage: grass metrics --target ADDR [--key-file F] [--json]

The agent's metrics plugin samples the kernel's counters once per second of the monitor's own
clock; this prints the last window: per CPU usr (user+nice), sys (system+irq+softirq), iowait,
idle and steal shares in percent; context switches and pswpout per second; run and blk task
counts; free and total RAM and swap; util (busy share) per whole disk; and per CPU the evidence
of progress: the current task, how many windows it has stayed current without a switch, the
context switches, local timer and device interrupts of the window, the preempt count.
--json prints {"windowSeconds","windowEnd" (monitor-clock seconds at the window's end: which
window it is, on the detections' clock),"cpus":[{cpu,usr,sys,iowait,idle,steal}],
"contextSwitchesPerSecond","run","blk","pswpoutPerSecond","pswpinPerSecond" (pages/s),
"memFreeBytes","memTotalBytes","swapFreeBytes","swapTotalBytes","pageBytes",
"disks":[{name,util,iosPerSecond}],"jiffies",
"progress":[{cpu,pid,comm,sameTaskWindows,switches,irqs,timerIrqs,preemptCount,lockWaiters}],
"parts":[names of the plugin parts that resolved on this kernel]}.

${targetFlagsUsage}`;

export const metricsCommand: CliCommand = targetVerb({
  name: 'metrics',
  summary: 'CPU shares, context switches, run/blk, swap-out and free memory of the target (1 s window)',
  usage,
  async run(session) {
    const m = await fetchMetrics(session.client);
    const pct = (x: number): string => x.toFixed(1).padStart(6);
    const mib = (b: number): string => `${(b / 1048576).toFixed(0)} MiB`;
    return {
      json: m,
      text: () => [
        `window ${m.windowSeconds.toFixed(3)} s (monitor clock)`,
        'CPU   usr%   sys%  iowt%  idle% steal%',
        ...m.cpus.map((c) => `${String(c.cpu).padStart(3)} ${pct(c.usr)} ${pct(c.sys)} ${pct(c.iowait)} ${pct(c.idle)} ${pct(c.steal)}`),
        `context switches ${m.contextSwitchesPerSecond.toFixed(0)}/s  run ${m.run}  blk ${m.blk}  pswpout ${m.pswpoutPerSecond.toFixed(0)}/s  pswpin ${m.pswpinPerSecond.toFixed(0)}/s`,
        `memory free ${mib(m.memFreeBytes)} of ${mib(m.memTotalBytes)}  swap free ${mib(m.swapFreeBytes)} of ${mib(m.swapTotalBytes)}`,
        `disks ${m.disks.length ? m.disks.map((d) => `${d.name} util ${d.util.toFixed(1)} % (${d.iosPerSecond.toFixed(0)} req/s)`).join('  ') : 'none read'}`,
        `jiffies +${m.jiffies}  plugin parts: ${m.parts.join(' ')}`,
        'CPU  current task                 same  switches timer irqs  preempt',
        ...m.progress.map((p) => `${String(p.cpu).padStart(3)}  ${`${p.pid} ${p.comm}`.padEnd(28)} ${String(p.sameTaskWindows).padStart(4)} ${String(p.switches).padStart(9)} ${String(p.timerIrqs).padStart(5)} ${String(p.irqs).padStart(4)}  0x${(p.preemptCount >>> 0).toString(16)}`),
      ],
    };
  },
});
