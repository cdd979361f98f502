// Who was running: each CPU's current task (per-CPU runqueues.curr), read through the kernel
// model, to show beside a fault report. On a panicked kernel this is the state the CPUs were
// left in (the panicking CPU's task; the others stopped in their NMI/IPI handler's task).

import type { KernelModel } from '../model';
import { Kernel, KObject } from '../objects/object';

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
  // Three rounds whatever the number of CPUs: the runqueues' curr pointers, then the tasks'
  // pid and comm (each CPU's failure stays its own).
  const rqs = await Promise.all(Array.from({ length: cpus }, (_, cpu) => k.perCpu(runqueues, cpu).then((rq) => rq.member('curr')).catch((err: unknown) => err)));
  await k.reader.prefetch(rqs.flatMap((c) => (c instanceof KObject && c.address !== undefined ? [{ address: c.address, length: 8 }] : [])));
  const currs = await Promise.all(rqs.map((c) => (c instanceof KObject ? c.deref().catch((err: unknown) => err) : c)));
  const fields = await Promise.all(currs.map((t) => (t instanceof KObject ? Promise.all([t.member('pid'), t.member('comm')]).catch((err: unknown) => err) : t)));
  await k.reader.prefetch(fields.flatMap((f) => (Array.isArray(f) ? f.map((m) => ({ address: m.address!, length: m.size })) : [])));
  const out: (RunningTask | { cpu: number; error: string })[] = [];
  for (let cpu = 0; cpu < cpus; cpu++) {
    try {
      const f = fields[cpu];
      if (!Array.isArray(f)) throw f;
      const [pidMember, commMember] = f;
      const pid = Number(await pidMember.readInt());
      const comm = await commMember.string(16);
      out.push({ cpu, pid, comm, taskAddress: (currs[cpu] as KObject).address ?? 0n });
    } catch (err) {
      out.push({ cpu, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return out;
}
