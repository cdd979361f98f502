// Who was running: each CPU's current task (per-CPU runqueues.curr), read through the kernel
// model, to show beside a fault report. On a panicked kernel this is the state the CPUs were
// left in (the panicking CPU's task; the others stopped in their NMI/IPI handler's task).

import type { KernelModel } from '../model';
import { Kernel } from '../objects/object';

export interface RunningTask {
  cpu: number;
  pid: number;
  comm: string;
  /** Kernel virtual address of the task_struct. */
  taskAddress: bigint;
}

/** The CPUs' current tasks; a CPU whose runqueue cannot be read is reported by its error. */
export async function runningTasks(model: KernelModel): Promise<(RunningTask | { cpu: number; error: string })[]> {
  const k = new Kernel(model);
  const runqueues = k.variable('runqueues');
  // nr_cpu_ids bounds the loop; Kernel.cpuCount rejects implausible values.
  const cpus = await k.cpuCount();
  const out: (RunningTask | { cpu: number; error: string })[] = [];
  for (let cpu = 0; cpu < cpus; cpu++) {
    try {
      const rq = await k.perCpu(runqueues, cpu);
      const curr = await (await rq.member('curr')).deref();
      const pid = Number(await (await curr.member('pid')).readInt());
      const comm = await (await curr.member('comm')).string(16);
      out.push({ cpu, pid, comm, taskAddress: curr.address ?? 0n });
    } catch (err) {
      out.push({ cpu, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return out;
}
